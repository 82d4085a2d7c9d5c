#!/bin/bash
# 0310-oversize.t - mail over limits.max_message_size is judged by its
# RFC822.SIZE before fetching: only its header is fetched, it still
# becomes a case, the acknowledgement says the message was too large,
# and it leaves the INBOX like any other.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
echo 'limits = { max_message_size = 20000; };' >>"$conf"
out=$("$CASEGATED" -n -f "$conf" 2>&1)
is "$out" "configuration OK" "a 20000-byte message limit is accepted"

{
	printf 'From: Alice Member <alice@example.test>\nTo: members@example.test\n'
	printf 'Subject: Huge statement scan\nMessage-ID: <big-1.alice@example.test>\n'
	printf 'MIME-Version: 1.0\nContent-Type: text/plain\n\n'
	for i in $(seq 1 1500); do echo "line $i of a very long body that goes on and on"; done
} >"$CG_T/big.eml"
mbox_put members INBOX "$CG_T/big.eml"
size=$(stat -c %s "$CG_T/big.eml")
cases_is() { [ "$(cg_sql 'SELECT count(*) FROM cases')" = "$1" ]; }
acked() { [ "$(mbox_count alice INBOX)" = 1 ]; }
cg_start "$conf"
ok "wait_until 15 cases_is 1" "a ${size}-byte message over the limit still becomes a case"
ok "wait_until 15 acked" "and the member gets an acknowledgement"
ok "cg_log_has 'uid [0-9]+: <big-1\\.alice@example\\.test>: CASE-000001 .*header only'" \
    "the log says only the header was fetched"
digest=$(cg_sql "SELECT raw_digest FROM messages WHERE direction = 'in'")
raw=$CG_T/cg/spool/raw/${digest:0:2}/$digest
spooled=$(stat -c %s "$raw" 2>/dev/null || echo missing)
ok "[ '$spooled' != missing ] && [ '$spooled' -lt 2000 ]" \
    "the spool holds the header only ($spooled of $size bytes)"
like "$(mbox_dump alice INBOX)" 'larger than the' "the acknowledgement names what was dropped"
like "$(cg_sql "SELECT detail FROM events WHERE kind = 'dropped'")" 'whole message' \
    "the case records it"
processed_one() { [ "$(mbox_count members Processed)" = 1 ] && [ "$(mbox_count members INBOX)" = 0 ]; }
ok "wait_until 10 processed_one" "the message moves from INBOX to Processed"
ok "cg_stop" "casegated stops cleanly"
done_testing
