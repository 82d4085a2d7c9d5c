# tap.sh - tiny TAP helpers for the bash integration tests (tests/*.t).
#
#   plan N | skip_all REASON | done_testing
#   ok STATUS|EXPR NAME    STATUS 0 passes; anything not a number is
#                          eval'ed and its exit status used
#   is GOT WANT NAME       string equality
#   like GOT ERE NAME      bash =~ match
#   run_ok NAME CMD...     CMD must exit 0; its output is shown if not
#   diag MSG...            "# MSG" on stderr
#
# Failures print "#   got: ..." lines on stderr, where prove shows them.
# done_testing exits with the number of failures (at most 254), so a
# script ends with it and its EXIT trap still runs.

_tap_n=0
_tap_failed=0
_tap_planned=

plan() { _tap_planned=$1; echo "1..$1"; }

skip_all() { echo "1..0 # SKIP $*"; exit 0; }

# Each argument is one or more lines.
diag() { printf '%s\n' "$@" | sed 's/^/# /' >&2; }

_tap_result() {		# status name
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $2"
		return 0
	fi
	echo "not ok $_tap_n - $2"
	_tap_failed=$((_tap_failed + 1))
	diag "  Failed test '$2' (${BASH_SOURCE[2]##*/} line ${BASH_LINENO[1]})"
	return 1
}

ok() {
	local st=$1
	case "$st" in
	''|*[!0-9]*) eval "$st"; st=$? ;;
	esac
	_tap_result "$st" "$2"
}

is() {
	[ "$1" = "$2" ]
	_tap_result $? "$3" && return 0
	diag "     got: '$1'" "expected: '$2'"
	return 1
}

like() {
	[[ $1 =~ $2 ]]
	_tap_result $? "$3" && return 0
	diag "                  '$1'" "    doesn't match '$2'"
	return 1
}

run_ok() {
	local name=$1 out st
	shift
	out=$("$@" 2>&1)
	st=$?
	_tap_result "$st" "$name" && return 0
	diag "  command: $* (exit $st)" "$out"
	return 1
}

done_testing() {
	[ -n "$_tap_planned" ] || echo "1..$_tap_n"
	if [ -n "$_tap_planned" ] && [ "$_tap_planned" -ne "$_tap_n" ]; then
		diag "planned $_tap_planned tests but ran $_tap_n"
		[ "$_tap_failed" -gt 0 ] || _tap_failed=255
	fi
	[ "$_tap_failed" -le 254 ] || _tap_failed=254
	exit "$_tap_failed"
}
