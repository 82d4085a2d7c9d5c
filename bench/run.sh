#!/bin/bash
# run.sh - `make bench`: casegated against the raw IMAP baseline, in one
# run on one machine, so ratios mean something on a shared, noisy box.
# See bench/README.md for what each figure means and how it is taken.
#
# Phases, in this order (later ones must not compete with earlier ones
# for the two cores):
#   corpus    gen-corpus: 10,000 member messages + one of 50 MB, written
#             as Maildir files, hard-linked into three backlog users
#   rules     rules-bench: the corpus against 500 rules, in-process
#   baseline  imap-baseline: UID FETCH of every body over verified TLS;
#             then on the third user the same with each batch UID MOVEd
#             after its fetch (a': what the server costs casegated)
#   ingest    casegated (group commit) on the first backlog, then
#             casegated-g1 (one transaction per message) on the second:
#             wall, msgs/s, CPU per message, peak RSS (VmHWM)
#   latency   casegated in IDLE, 200 messages through Postfix one at a
#             time: 250 -> case committed, 250 -> ack in the mailbox
#   outbox    5,000 acknowledgements re-queued, casegated delivers them
#             through Postfix (STARTTLS): messages per second, once per
#             smtp.connections value (1 and 2)
# Prints a table and writes bench/results.json.
#
# Knobs (environment): BENCH_COUNT (10000), BENCH_BIG_MB (50), BENCH_SEED
# (8), BENCH_LATENCY (200), BENCH_OUTBOX (5000), BENCH_RULES (500),
# BENCH_OUTBOX_CONNECTIONS ("1 2": smtp.connections of each outbox run),
# BENCH_OUT (bench/results.json), CG_KEEP=1 keeps the temp dir.
#
# During the ingest runs acknowledgements go to a local smtp-sink, a
# relay that accepts everything at once: the daemon does all of its
# outbox work (compose, send, mark sent) but Postfix's own queue and
# LMTP delivery do not eat the CPU the ingest is measured on; the outbox
# phase then measures delivery through the real Postfix.
set -u

CG_TOP=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
CG_BUILD=${CG_BUILD:-$CG_TOP/build-bench}
. "$CG_TOP/tests/lib/servers.sh"

COUNT=${BENCH_COUNT:-10000}
BIG_MB=${BENCH_BIG_MB:-50}
SEED=${BENCH_SEED:-8}
LAT_N=${BENCH_LATENCY:-200}
OUT_N=${BENCH_OUTBOX:-5000}
RULES_N=${BENCH_RULES:-500}
OUT=${BENCH_OUT:-$CG_TOP/bench/results.json}
TOOLS=$CG_BUILD/bench
TOTAL=$((COUNT + (BIG_MB > 0 ? 1 : 0)))
CLK_TCK=$(getconf CLK_TCK)

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
json_get() { sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" <<<"$1"; }	# json key

for f in "$CG_BUILD/casegated" "$CG_BUILD/casegated-g1" "$TOOLS/gen-corpus" \
    "$TOOLS/imap-baseline" "$TOOLS/rules-bench" "$TOOLS/latency"; do
	[ -x "$f" ] || die "$f is missing: run make bench"
done
command -v smtp-sink >/dev/null || die "smtp-sink (package postfix) is missing"

T0=$(now_ms)
servers_start || die "the test servers did not start"
SINK_PORT=$((IMAP_PORT + 9))	# the spare port of our block
DC() { doveadm -c "$DOVECOT_CONF" "$@"; }
inbox_count() { DC -f flow mailbox status -u "$1" messages "${2:-INBOX}" 2>>"$CG_T/doveadm.err" |
    sed -n 's/.*messages=\([0-9]*\).*/\1/p'; }

# --- corpus -------------------------------------------------------------
CORPUS=$CG_T/corpus
say "corpus: $COUNT messages + ${BIG_MB} MB, seed $SEED"
t=$(now_ms)
corpus_json=$("$TOOLS/gen-corpus" "$CORPUS" "$COUNT" "$SEED" "$BIG_MB") ||
    die "gen-corpus failed"
chown -R nobody:nogroup "$CORPUS"
for u in benchg bench1 benchm; do
	mail_user_add "$u" "pw-$u" || die "mail_user_add $u"
	h=$CG_T/dovecot/home/$u
	mkdir -p "$h/Maildir/cur" "$h/Maildir/new" "$h/Maildir/tmp"
	cp -al "$CORPUS/cur/." "$h/Maildir/cur/"	# same files, no copy
	chown -R nobody:nogroup "$h"
	# the first look also builds Dovecot's index; retry a busy moment
	for i in 1 2 3 4 5; do
		n=$(inbox_count "$u")
		[ "$n" = "$TOTAL" ] && break
		sleep 0.5
	done
	[ "$n" = "$TOTAL" ] || die "$u: $n messages in INBOX, expected $TOTAL"
done
corpus_ms=$(( $(now_ms) - t ))
say "corpus: $corpus_json in $corpus_ms ms"

# --- rules --------------------------------------------------------------
say "rules: $COUNT messages against $RULES_N rules"
rules_json=$("$TOOLS/rules-bench" "$CG_TOP/rules/default.rules" "$CORPUS" "$COUNT" \
    "$RULES_N") || die "rules-bench failed"

# --- baseline -----------------------------------------------------------
say "baseline: UID FETCH of every body (user benchg)"
sync
base_json=$("$TOOLS/imap-baseline" localhost "$IMAPS_PORT" benchg "$CG_T/pw/benchg" \
    "$CA_PEM" INBOX 50) || die "imap-baseline failed: $base_json"
base_ms=$(json_get "$base_json" wall_ms)

# The same fetch, each batch then moved to Processed (user benchm, its
# own copy): the IMAP work casegated cannot avoid, with no processing.
say "baseline: UID FETCH and UID MOVE of every body (user benchm)"
sync
move_json=$("$TOOLS/imap-baseline" localhost "$IMAPS_PORT" benchm "$CG_T/pw/benchm" \
    "$CA_PEM" INBOX 50 Processed) || die "imap-baseline (move) failed: $move_json"
move_ms=$(json_get "$move_json" wall_ms)

# --- casegated configurations ---------------------------------------------
conf_write() {		# file user dbdir smtp-port smtp-tls
	mkdir -p "$3"
	{
	cat <<-EOF
	gateway = {
	  address = "members@example.test";
	  name = "Member Services";
	  domain = "example.test";
	};
	imap = {
	  name = "$2";
	  host = "localhost";
	  port = $IMAPS_PORT;
	  tls = "implicit";
	  ca_file = "$CA_PEM";
	  system_ca = false;
	  user = "$2";
	  password_file = "$CG_T/pw/$2";
	  folder = "INBOX";
	  processed_folder = "Processed";
	  timeout = 30;
	  poll_interval = 2;
	};
	EOF
	if [ "$5" = none ]; then
		printf 'smtp = { host = "localhost"; port = %s; tls = "none"; timeout = 30; };\n' "$4"
	else
		printf 'smtp = { host = "localhost"; port = %s; tls = "%s"; ca_file = "%s"; system_ca = false; timeout = 30; };\n' "$4" "$5" "$CA_PEM"
	fi
	cat <<-EOF
	outbox = { retry_min = 1; retry_max = 5; };
	# every message is acknowledged: the daily cap per member (5) would
	# stop the latency run at its sixth message and skip acks in the
	# backlog, making the ingest do less than it would for real members
	guard = { autoreply_per_day = 0; };
	database = "$3/casegate.db";
	spool = "$3/spool";
	rules = "$CG_TOP/rules/default.rules";
	templates = "$CG_TOP/templates";
	EOF
	} >"$1"
	"$CG_BUILD/casegated" -n -f "$1" >/dev/null 2>"$1.err" ||
	    die "casegated -n refuses $1: $(cat "$1.err")"
}

DAEMON_PID=
daemon_start() {	# binary conf log
	"$1" -d -f "$2" >>"$3" 2>&1 &
	DAEMON_PID=$!
	servers_cleanup_add "daemon_stop"
}
daemon_stop() {
	local i
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
sink_start() {
	smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >"$CG_T/sink.log" 2>&1 &
	SINK_PID=$!
	servers_cleanup_add "kill $SINK_PID"
	wait_until 5 _cg_greets "$SINK_PORT" 220 || die "smtp-sink did not start"
}

# --- ingest ---------------------------------------------------------------
# Sets ING_<label>_*: wall_ms cpu_ms rss_kb cases moved sent
ingest_run() {		# label binary user
	local label=$1 bin=$2 user=$3 dir=$CG_T/$1 t0 t1 t2 n stat utime stime rss
	conf_write "$CG_T/$label.conf" "$user" "$dir" "$SINK_PORT" none
	say "ingest ($label): $TOTAL messages, $(basename "$bin")"
	# no phase pays for another's dirty pages: the daemon's syncfs before
	# each COMMIT would write out the corpus or the previous run's spool
	sync
	t0=$(now_ms)
	daemon_start "$bin" "$CG_T/$label.conf" "$CG_T/$label.log"
	while :; do
		n=$(inbox_count "$user")
		[ "$n" = 0 ] && break
		kill -0 "$DAEMON_PID" 2>/dev/null || die "casegated ($label) died: $(tail -5 "$CG_T/$label.log")"
		[ $(( $(now_ms) - t0 )) -lt 900000 ] || die "ingest ($label): still $n in INBOX after 15 min"
		sleep 0.2
	done
	t1=$(now_ms)
	stat=$(cut -d' ' -f14,15 "/proc/$DAEMON_PID/stat")
	utime=${stat% *}
	stime=${stat#* }
	# All the work, too: acknowledgements and notifications are composed
	# when sent, so keep going until the outbox is empty (smtp-sink).
	while [ "$(sqlite3 -readonly "$dir/casegate.db" "SELECT count(*) FROM outbox WHERE state = 'queued'" 2>/dev/null)" != 0 ]; do
		[ $(( $(now_ms) - t0 )) -lt 900000 ] || die "ingest ($label): outbox not drained after 15 min"
		sleep 0.2
	done
	t2=$(now_ms)
	stat=$(cut -d' ' -f14,15 "/proc/$DAEMON_PID/stat")
	rss=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$DAEMON_PID/status")
	daemon_stop
	printf -v "ING_${label}_all_wall" %s $((t2 - t0))
	printf -v "ING_${label}_all_cpu" %s $(( (${stat% *} + ${stat#* }) * 1000 / CLK_TCK ))
	printf -v "ING_${label}_wall" %s $((t1 - t0))
	printf -v "ING_${label}_cpu" %s $(( (utime + stime) * 1000 / CLK_TCK ))
	printf -v "ING_${label}_rss" %s "$rss"
	printf -v "ING_${label}_cases" %s "$(sqlite3 -readonly "$dir/casegate.db" "SELECT count(*) FROM cases")"
	printf -v "ING_${label}_msgs" %s "$(sqlite3 -readonly "$dir/casegate.db" "SELECT count(*) FROM messages WHERE direction = 'in'")"
	printf -v "ING_${label}_moved" %s "$(inbox_count "$user" Processed)"
	printf -v "ING_${label}_sent" %s "$(sqlite3 -readonly "$dir/casegate.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")"
}

sink_start
ingest_run group "$CG_BUILD/casegated" benchg
ingest_run single "$CG_BUILD/casegated-g1" bench1
kill "$SINK_PID" 2>/dev/null

# --- latency --------------------------------------------------------------
say "latency: $LAT_N messages through Postfix, one at a time"
conf_write "$CG_T/lat.conf" members "$CG_T/lat" "$SMTP_PORT" starttls
daemon_start "$CG_BUILD/casegated" "$CG_T/lat.conf" "$CG_T/lat.log"
wait_until 15 grep -q "connected to" "$CG_T/lat.log" || die "latency: casegated did not connect"
sleep 1		# into IDLE
lat_json=$("$TOOLS/latency" "$SMTP_PORT" alice@example.test members@example.test \
    "$CG_T/lat/casegate.db" "$CG_T/dovecot/home/alice/Maildir" "$LAT_N") ||
    say "latency: some messages were lost (see above)"
daemon_stop

# --- outbox ---------------------------------------------------------------
# Once per smtp.connections value in BENCH_OUTBOX_CONNECTIONS ("1 2"),
# the same acknowledgements re-queued each time, after Postfix has
# delivered the previous run's mail (its LMTP deliveries would compete
# for the CPU).  What (b) left queued (the daemon stops once INBOX is
# empty) goes out first, untimed, so every run sends the same mail.
# The figure (e) is the daemon's default, 2 connections (its last run).
db=$CG_T/group/casegate.db
queued() { sqlite3 -readonly "$db" "SELECT count(*) FROM outbox WHERE state = 'queued'" 2>/dev/null; }
postfix_idle() { [ "$(postqueue -c "$POSTFIX_CONF" -j 2>/dev/null | wc -l)" = 0 ]; }
outbox_drain() {	# connections: start casegated, wait until nothing is queued; sets out_run_ms
	local t0
	conf_write "$CG_T/outbox.conf" benchg "$CG_T/group" "$SMTP_PORT" starttls
	sed -i "s/^\(smtp = {.*\) };\$/\1 connections = $1; };/" "$CG_T/outbox.conf"
	grep -q "connections = $1;" "$CG_T/outbox.conf" || die "outbox: connections not set"
	t0=$(now_ms)
	daemon_start "$CG_BUILD/casegated" "$CG_T/outbox.conf" "$CG_T/outbox.log"
	while [ "$(queued)" != 0 ]; do
		[ $(( $(now_ms) - t0 )) -lt 300000 ] || { say "outbox: not drained in 5 min"; break; }
		sleep 0.1
	done
	out_run_ms=$(( $(now_ms) - t0 ))
	daemon_stop
}
left_over=$(queued)
if [ "${left_over:-0}" -gt 0 ]; then
	say "outbox: $left_over mails left queued by (b) go out first (not timed)"
	outbox_drain 2
fi
OUT_CONNS=${BENCH_OUTBOX_CONNECTIONS:-1 2}
out_runs=() out_rates=()
for conns in $OUT_CONNS; do
	wait_until 300 postfix_idle || say "outbox: Postfix's queue is not empty"
	say "outbox: $OUT_N acknowledgements through Postfix, $conns connection(s)"
	# next_attempt "now", as when queued: a 0 reads as "nothing due" to the
	# outbox thread (store_outbox_next_due), which would then sleep 60 s
	sqlite3 "$db" "UPDATE outbox SET state = 'queued', next_attempt = strftime('%s', 'now'), attempts = 0, sent_at = NULL
	    WHERE id IN (SELECT id FROM outbox WHERE kind = 'ack' ORDER BY id LIMIT $OUT_N)"
	q_n=$(queued)
	outbox_drain "$conns"
	left=$(queued)
	n_sent=$((q_n - left))
	rate_c=$(awk -v n="$n_sent" -v ms="$out_run_ms" 'BEGIN { if (ms > 0) printf "%.1f", n * 1000 / ms; else print "null" }')
	say "outbox: $conns connection(s): $n_sent sent in $out_run_ms ms, $rate_c msgs/s"
	out_runs+=("{\"connections\": $conns, \"queued\": $q_n, \"sent\": $n_sent, \"wall_ms\": $out_run_ms, \"msgs_per_s\": $rate_c}")
	out_rates+=("$conns:$rate_c")
	# (e) is the last run with the default's 2 connections, else the last run
	if [ "$conns" = 2 ] || [ "${out_main:-}" != 2 ]; then
		out_q=$q_n out_sent=$n_sent out_ms=$out_run_ms out_main=$conns
	fi
done
out_runs_json=$(IFS=,; echo "${out_runs[*]}")

# --- report ---------------------------------------------------------------
total_ms=$(( $(now_ms) - T0 ))
r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "null" }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.1f", n * 1000 / ms; else print "null" }'; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", a / n; else print "null" }'; }

g_rate=$(rate "$TOTAL" "$ING_group_wall")
s_rate=$(rate "$TOTAL" "$ING_single_wall")
g_cpu=$(per "$ING_group_cpu" "$TOTAL")
g_all_cpu=$(per "$ING_group_all_cpu" "$TOTAL")
g_all_ratio=$(r "$ING_group_all_wall" "$base_ms")
s_cpu=$(per "$ING_single_cpu" "$TOTAL")
ratio_g=$(r "$ING_group_wall" "$base_ms")
ratio_move=$(r "$move_ms" "$base_ms")
ratio_g_move=$(r "$ING_group_wall" "$move_ms")
ratio_s=$(r "$ING_single_wall" "$base_ms")
gc_speedup=$(r "$ING_single_wall" "$ING_group_wall")
gc_cpu=$(r "$ING_single_cpu" "$ING_group_cpu")
out_rate=$(rate "$out_sent" "$out_ms")
lat_c50=$(sed -n 's/.*"to_commit":{[^}]*"p50_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
lat_c95=$(sed -n 's/.*"to_commit":{[^}]*"p95_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
lat_c99=$(sed -n 's/.*"to_commit":{[^}]*"p99_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
lat_a50=$(sed -n 's/.*"to_ack":{[^}]*"p50_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
lat_a95=$(sed -n 's/.*"to_ack":{[^}]*"p95_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
lat_a99=$(sed -n 's/.*"to_ack":{[^}]*"p99_ms":\([-0-9.]*\).*/\1/p' <<<"$lat_json")
rules_rate=$(json_get "$rules_json" msgs_per_s)

{
printf '\n%-52s %14s %14s\n' "casegate bench ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))" "value" "target"
printf '%-52s %14s %14s\n' "corpus: messages (+ ${BIG_MB} MB one)" "$TOTAL" ""
printf '%-52s %14s %14s\n' "(a) baseline UID FETCH, wall ms" "$base_ms" ""
printf '%-52s %14s %14s\n' "(a') UID FETCH + UID MOVE per batch: wall ms, a'/a" "$move_ms, $ratio_move" ""
printf '%-52s %14s %14s\n' "(b) ingest, group commit: wall ms" "$ING_group_wall" ""
printf '%-52s %14s %14s\n' "    messages/s" "$g_rate" ""
printf '%-52s %14s %14s\n' "    CPU ms per message" "$g_cpu" ""
printf '%-52s %14s %14s\n' "    peak RSS KB (VmHWM)" "$ING_group_rss" "<= 65536"
printf '%-52s %14s %14s\n' "    cases / messages / moved / acks sent" \
    "$ING_group_cases/$ING_group_msgs/$ING_group_moved/$ING_group_sent" ""
printf '%-52s %14s %14s\n' "    until its outbox is sent too: wall ms, b/a" "$ING_group_all_wall, $g_all_ratio" ""
printf '%-52s %14s %14s\n' "    CPU ms per message, all work" "$g_all_cpu" ""
printf '%-52s %14s %14s\n' "(c) ratio b/a" "$ratio_g" "<= 1.5"
printf '%-52s %14s %14s\n' "    ratio b/a' (against fetch + move)" "$ratio_g_move" ""
printf '%-52s %14s %14s\n' "(b') ingest, one transaction per message: wall ms" "$ING_single_wall" ""
printf '%-52s %14s %14s\n' "    messages/s" "$s_rate" ""
printf '%-52s %14s %14s\n' "    CPU ms per message" "$s_cpu" ""
printf '%-52s %14s %14s\n' "    peak RSS KB (VmHWM)" "$ING_single_rss" ""
printf '%-52s %14s %14s\n' "    ratio b'/a" "$ratio_s" ""
printf '%-52s %14s %14s\n' "    group commit speed-up: wall b'/b, CPU b'/b" "$gc_speedup, $gc_cpu" ""
printf '%-52s %14s %14s\n' "(d) 250 -> case committed p50/p95/p99 ms" "$lat_c50/$lat_c95/$lat_c99" "p99 <= 1000"
printf '%-52s %14s %14s\n' "    250 -> ack in mailbox p50/p95/p99 ms" "$lat_a50/$lat_a95/$lat_a99" ""
printf '%-52s %14s %14s\n' "(e) outbox through Postfix: msgs/s ($out_sent sent, $out_main conn.)" "$out_rate" ">= 300"
for r in "${out_rates[@]}"; do
	printf '%-52s %14s %14s\n' "    run with ${r%%:*} SMTP connection(s): msgs/s" "${r#*:}" ""
done
printf '%-52s %14s %14s\n' "(f) rules: msgs/s ($RULES_N rules)" "$rules_rate" ">= 20000"
printf '%-52s %14s %14s\n' "whole bench, s" "$((total_ms / 1000))" "<= 600"
} | tee "$CG_T/table.txt"

cat >"$OUT" <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "host": {"cores": $(nproc), "kernel": "$(uname -r)"},
  "commit": "$(git -C "$CG_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)",
  "corpus": $corpus_json,
  "a_baseline": $base_json,
  "a_fetch_and_move": $move_json,
  "ratio_a_move_over_a": $ratio_move,
  "ratio_b_over_a_move": $ratio_g_move,
  "b_ingest_group_commit": {"wall_ms": $ING_group_wall, "msgs_per_s": $g_rate, "cpu_ms": $ING_group_cpu, "cpu_ms_per_msg": $g_cpu, "peak_rss_kb": $ING_group_rss, "outbox_drained_wall_ms": $ING_group_all_wall, "outbox_drained_cpu_ms_per_msg": $g_all_cpu, "cases": $ING_group_cases, "messages": $ING_group_msgs, "moved": $ING_group_moved, "acks_sent": $ING_group_sent},
  "b_ingest_one_txn_per_msg": {"wall_ms": $ING_single_wall, "msgs_per_s": $s_rate, "cpu_ms": $ING_single_cpu, "cpu_ms_per_msg": $s_cpu, "peak_rss_kb": $ING_single_rss, "cases": $ING_single_cases, "messages": $ING_single_msgs, "moved": $ING_single_moved, "acks_sent": $ING_single_sent},
  "c_ratio_b_over_a": $ratio_g,
  "c_ratio_one_txn_over_a": $ratio_s,
  "group_commit_speedup": {"wall": $gc_speedup, "cpu": $gc_cpu},
  "d_latency": ${lat_json:-null},
  "e_outbox": {"queued": $out_q, "sent": $out_sent, "wall_ms": $out_ms, "msgs_per_s": $out_rate, "connections": $out_main},
  "e_outbox_runs": [$out_runs_json],
  "f_rules": $rules_json,
  "targets": {"ratio_b_over_a_max": 1.5, "peak_rss_kb_max": 65536, "commit_p99_ms_max": 1000, "outbox_msgs_per_s_min": 300, "rules_msgs_per_s_min": 20000},
  "total_s": $((total_ms / 1000))
}
EOF
say "wrote $OUT"
