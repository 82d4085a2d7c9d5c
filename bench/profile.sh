#!/bin/bash
# profile.sh - where the ingest path spends its time (issue 8, point 4).
#
#   make B=build-bench OPT="-O2 -g -DNDEBUG" bench-tools
#   bash bench/profile.sh [COUNT]        # default 1000 messages
#
# No servers: bench/ingest-profile spools and ingests the messages of a
# generated Maildir exactly as the daemon's worker does (minus IMAP).
#   1. wall and CPU, one transaction per message against groups of 50,
#      and groups of 50 with an fsync per spool file (before batch mode)
#   2. strace -c -w: wall time spent in syscalls (fsync) in these modes
#   3. callgrind (perf cannot count instructions in this VM) on 300
#      messages, group commit: the top functions, inclusive and self
# Output in $TMPDIR/cg-profile.XXXXXX (kept), summary on stdout.
set -eu

CG_TOP=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
CG_BUILD=${CG_BUILD:-$CG_TOP/build-bench}
TOOLS=$CG_BUILD/bench
COUNT=${1:-1000}
P=$(mktemp -d "${TMPDIR:-/tmp}/cg-profile.XXXXXX")

[ -x "$TOOLS/ingest-profile" ] || { echo "run: make B=build-bench bench-tools" >&2; exit 1; }
"$TOOLS/gen-corpus" "$P/maildir" "$COUNT" 8 0 >"$P/corpus.json"
( umask 077; echo unused >"$P/pw" )

conf() {		# name
	mkdir -p "$P/$1"
	cat >"$P/$1/casegate.conf" <<-EOF
	gateway = { address = "members@example.test"; name = "Member Services"; domain = "example.test"; };
	imap = { name = "profile"; host = "localhost"; user = "x"; password_file = "$P/pw"; };
	smtp = { host = "localhost"; port = 25; tls = "none"; };
	database = "$P/$1/casegate.db";
	spool = "$P/$1/spool";
	rules = "$CG_TOP/rules/default.rules";
	templates = "$CG_TOP/templates";
	EOF
	echo "$P/$1/casegate.conf"
}

echo "== 1. ingest-profile, $COUNT messages (no network)"
g1=$("$TOOLS/ingest-profile" "$(conf g1)" "$P/maildir" "$COUNT" 1)
g50=$("$TOOLS/ingest-profile" "$(conf g50)" "$P/maildir" "$COUNT" 50)
f50=$("$TOOLS/ingest-profile" "$(conf f50)" "$P/maildir" "$COUNT" 50 fsync)
echo "one transaction per message:     $g1"
echo "groups of 50:                    $g50"
echo "groups of 50, fsync per file:    $f50"
w1=$(sed -n 's/.*"wall_ms":\([0-9.]*\).*/\1/p' <<<"$g1")
w50=$(sed -n 's/.*"wall_ms":\([0-9.]*\).*/\1/p' <<<"$g50")
wf=$(sed -n 's/.*"wall_ms":\([0-9.]*\).*/\1/p' <<<"$f50")
awk -v a="$w1" -v b="$w50" 'BEGIN { printf "wall ratio one/group: %.2f\n", a / b }'
awk -v a="$wf" -v b="$w50" 'BEGIN { printf "wall ratio fsync-per-file/batch: %.2f\n", a / b }'

if command -v strace >/dev/null; then
	echo "== 2. strace -c -w (wall time in syscalls), $COUNT messages"
	for g in 1 50 50f; do
		rm -rf "$P/s$g"
		strace -f -c -w -o "$P/strace-$g.txt" "$TOOLS/ingest-profile" "$(conf "s$g")" \
		    "$P/maildir" "$COUNT" "${g%f}" $([ "$g" != 50f ] || echo fsync) >/dev/null
		echo "-- group $g: top syscalls by time"
		sed -n '1,2p;3,10p' "$P/strace-$g.txt"
	done
fi

if command -v valgrind >/dev/null; then
	n=$((COUNT < 300 ? COUNT : 300))
	echo "== 3. callgrind, $n messages, groups of 50"
	valgrind --tool=callgrind --callgrind-out-file="$P/callgrind.out" \
	    "$TOOLS/ingest-profile" "$(conf cg)" "$P/maildir" "$n" 50 >/dev/null 2>"$P/valgrind.err"
	echo "-- inclusive (top 30)"
	callgrind_annotate --inclusive=yes "$P/callgrind.out" 2>/dev/null |
	    sed -n '/^Ir/,$p' | sed -n '3,32p'
	echo "-- self (top 20)"
	callgrind_annotate "$P/callgrind.out" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '3,22p'
fi
echo "== kept in $P"
