#!/bin/bash
# 0640-outbox-parallel.t - parallel delivery (smtp.connections = 2)
# through the test Postfix: 200 acknowledgements are queued while the
# relay is down (they stay queued and are retried, by both connections),
# then, with the relay back, each is delivered exactly once (200 in the
# member's INBOX, 200 distinct Message-IDs, 200 messages accepted by
# Postfix) over two connections that Postfix saw open at the same time.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"
. "$CG_TOP/tests/lib/faults.sh"

N=200
servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cg_conf_set "$conf" smtp timeout 5
cg_conf_set "$conf" smtp connections 2
# every message is acknowledged: alice sends them all, and the daily cap
# per member (5) would skip most acknowledgements
printf 'guard = { autoreply_per_day = 0; };\n' >>"$conf"
run_ok "the configuration with smtp.connections = 2 is valid" "$CASEGATED" -n -f "$conf"

q() { cg_sql "$1"; }
queued() { q "SELECT count(*) FROM outbox WHERE state = 'queued'"; }
acks_queued_tried() {	# every ack queued, each tried at least $1 times
	[ "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'queued'
	    AND attempts >= $1")" = "$N" ]
}
sent_is() { [ "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'sent'")" = "$1" ]; }
all_sent() {
	[ "$(q "SELECT count(*) FROM outbox WHERE state = 'sent'")" = \
	    "$(q "SELECT count(*) FROM outbox")" ]
}
acks_are() { [ "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack'")" = "$1" ]; }
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }

mkdir -p "$CG_T/batch"
for ((i = 1; i <= N; i++)); do
	cat >"$CG_T/batch/$(printf %04d "$i").eml" <<-EOF
	From: Alice <alice@example.test>
	To: Member Services <members@example.test>
	Subject: Parallel outbox $i
	Message-ID: <parallel-$i@example.test>
	Date: Mon, 02 Mar 2026 10:00:00 +0000

	Statement question number $i.
	EOF
done

# --- relay down: acknowledgements stay queued and are retried ----------------
postfix_stop
mbox_put_many members INBOX "$CG_T/batch" || diag "mbox_put_many failed"
cg_start "$conf"
ok "wait_until 60 acks_are $N" "$N cases, $N acknowledgements queued"
ok "wait_until 30 acks_queued_tried 2" "relay down: all $N stay queued and are retried"
is "$(q "SELECT count(*) FROM outbox WHERE state = 'sent'")" 0 "nothing counts as sent"
ok "cg_log_has 'outbox: delivering over 2 connections'" "the daemon says it uses 2 connections"
ok "cg_log_has 'outbox connection 1 of 2: [0-9]+ due, relay unreachable'" \
    "connection 1 saw the relay down"
ok "cg_log_has 'outbox connection 2 of 2: [0-9]+ due, relay unreachable'" \
    "connection 2 saw the relay down"

# --- relay back: each row sent exactly once, over two connections -----------
mark=$(wc -l <"$CG_T/postfix/maillog" 2>/dev/null || echo 0)
postfix_start || diag "postfix did not start"
t0=$(now_us)
ok "wait_until 60 sent_is $N" "relay back: all $N acknowledgements sent"
diag "$N acknowledgements delivered in $(ms_since "$t0") ms after the relay came back"
total=$(q "SELECT count(*) FROM outbox")
diag "outbox rows: $total (the acknowledgements and the team notifications)"
ok "wait_until 30 all_sent" "and the team notifications too"
is "$(queued)" 0 "none left queued"
is "$(q "SELECT count(*) FROM outbox WHERE state = 'failed'")" 0 "none failed"
ok "wait_until 60 count_is alice INBOX $N" "alice's INBOX holds $N acknowledgements"
ids=$(maildir_ids alice INBOX)
is "$(awk '{ print $2 }' <<<"$ids" | sort -u | grep -c '<')" "$N" \
    "$N distinct Message-IDs: no acknowledgement delivered twice"
is "$(awk '{ print $1 }' <<<"$ids" | sort -u | grep -c '<parallel-')" "$N" \
    "each answers a different member message"
ok "cg_log_has 'outbox connection 1 of 2: [0-9]+ of [0-9]+ due sent'" \
    "connection 1 delivered mail"
ok "cg_log_has 'outbox connection 2 of 2: [0-9]+ of [0-9]+ due sent'" \
    "connection 2 delivered mail"

# Postfix logs each SMTP session's connect and disconnect in order: the
# most sessions open at once since the restart.
max_open=$(tail -n +"$((mark + 1))" "$CG_T/postfix/maillog" | awk '
	/postfix\/smtpd\[[0-9]+\]: connect from / { n++; if (n > max) max = n }
	/postfix\/smtpd\[[0-9]+\]: disconnect from / { if (n > 0) n-- }
	END { print max + 0 }')
# (at least 2: a session's "disconnect" may be logged after the next
# round's "connect", when smtpd logs it after casegated has gone)
ok "[ $max_open -ge 2 ]" "Postfix saw 2 SMTP sessions from casegated at once"
diag "most sessions open at once in Postfix's log: $max_open"
sessions=$(tail -n +"$((mark + 1))" "$CG_T/postfix/maillog" | grep -c 'smtpd\[[0-9]*\]: connect from')
diag "Postfix sessions since the relay came back: $sessions"
mails=$(tail -n +"$((mark + 1))" "$CG_T/postfix/maillog" |
    grep -c 'postfix/cleanup\[[0-9]*\]: [0-9A-F]*: message-id=<.*example.test>')
is "$mails" "$total" "Postfix accepted each of the $total messages once, no more"
ok "cg_stop" "casegated exits 0 on SIGTERM"

[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
