#!/bin/sh
# run.sh BUILD SECONDS TARGET... - run each libFuzzer target for SECONDS,
# seeded from the project's own test data, and summarise executions and
# findings.  Called by `make fuzz`.
set -u
build=$1 secs=$2
shift 2
top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$build/artifacts"
status=0
for t in "$@"; do
	name=${t#fuzz-}
	work="$build/corpus/$name"
	mkdir -p "$work"
	case $name in
	rules)	seeds="$top/tests/rules $top/rules" ;;
	thread)	seeds="$top/tests/fuzz/thread" ;;
	*)	seeds="$top/tests/corpus $top/tests/fuzz/$name" ;;
	esac
	log="$build/$t.log"
	# -rss_limit_mb: GMime on a hostile message must stay bounded too
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp" \
	    "$build/$t" -max_total_time="$secs" -timeout=20 \
	    -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
	    -artifact_prefix="$build/artifacts/$name-" "$work" $seeds >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	crashes=$(ls "$build/artifacts" 2>/dev/null | grep -c "^$name-" || true)
	echo "$t: ${execs:-?} executions in ${secs}s, exit $rc, artifacts: $crashes (log: $log)"
	[ "$rc" -eq 0 ] || status=1
done
exit $status
