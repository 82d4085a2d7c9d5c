#!/bin/bash
# 0600-outages.t - servers going away: casegated keeps ingesting while
# SMTP is down and keeps delivering while IMAP is down, reconnects
# after a BYE (doveadm kick), a killed or hung (SIGSTOP) imap process
# and a Dovecot restart, without spinning, and tells a relay's 4xx
# (retry with backoff) from its 5xx (failed, recorded on the case).
# Recovery times and CPU use are printed as diagnostics.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"
. "$CG_TOP/tests/lib/faults.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cg_conf_set "$conf" imap timeout 3
cg_conf_set "$conf" imap idle_restart 10
cg_conf_set "$conf" smtp timeout 5
sed -i 's/^outbox = .*/outbox = { retry_min = 1; retry_max = 4; };/' "$conf"
mail_user_add carol pw-carol

q() { cg_sql "$1"; }
seq_no=0
# A member message from ADDR, into members' INBOX; prints its Message-ID.
member_mail() {		# addr
	seq_no=$((seq_no + 1))
	cat >"$CG_T/m$seq_no.eml" <<-EOF
	From: <$1>
	To: Member Services <members@example.test>
	Subject: Outage test $seq_no
	Message-ID: <outage-$seq_no@example.test>
	Date: Mon, 02 Mar 2026 10:00:00 +0000

	Where are my royalties? ($seq_no)
	EOF
	mbox_put members INBOX "$CG_T/m$seq_no.eml"
}
cases_is() { [ "$(q "SELECT count(*) FROM cases")" = "$1" ]; }
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
ack_state() {		# case-number: state of its acknowledgement
	q "SELECT state FROM outbox WHERE kind = 'ack' AND case_id = $1"
}
ack_is() { [ "$(ack_state "$1")" = "$2" ]; }
ack_attempts_at_least() {
	[ "$(q "SELECT attempts FROM outbox WHERE kind = 'ack' AND case_id = $1")" -ge "$2" ]
}
connects() { grep -c 'connected to localhost' "$CG_T/casegated.log"; }
connects_above() { [ "$(connects)" -gt "$1" ]; }
# Reconnected since mark, and the new session takes mail: a new message
# becomes case n.  Prints the recovery times as a diagnostic.
recovers() {		# what mark t0 n
	local what=$1 mark=$2 t0=$3 n=$4 t1
	ok "wait_until 40 connects_above $mark" "$what: casegated reconnects"
	diag "$what: reconnected after $(ms_since "$t0") ms"
	t1=$(now_us)
	member_mail "member$n@example.test"
	ok "wait_until 20 cases_is $n" "$what: and a new message becomes a case"
	diag "$what: new message to case in $(ms_since "$t1") ms"
}

# --- baseline --------------------------------------------------------------
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
cg_start "$conf"
ok "wait_until 15 cases_is 1" "a first message becomes a case"
ok "wait_until 15 count_is alice INBOX 1" "and alice gets her acknowledgement"
ok "cg_log_has 'connected to localhost:$IMAPS_PORT as members \(IDLE\)'" "the session uses IDLE"

# --- SMTP down: ingest goes on, acks wait with backoff ------------------------
postfix_stop
t0=$(now_us)
member_mail bob@example.test
ok "wait_until 15 cases_is 2" "with Postfix down a new message still becomes a case"
ok "wait_until 15 count_is members INBOX 0" "and leaves INBOX"
ok "wait_until 15 ack_attempts_at_least 2 2" "its acknowledgement is retried"
sleep 6
row=$(q "SELECT state || '|' || attempts || '|' || last_error FROM outbox WHERE kind = 'ack' AND case_id = 2")
like "$row" '^queued\|[0-9]+\|.*(refused|connect)' "it stays queued with the connection error recorded"
attempts=${row#*|}; attempts=${attempts%%|*}
elapsed=$(ms_since "$t0")
# retry_min 1, retry_max 4, doubling with +-20 % jitter: about 1+2+4+4...
ok "[ $attempts -ge 3 ] && [ $attempts -le 7 ]" \
    "the retries back off ($attempts attempts in $elapsed ms, not one a second)"
diag "SMTP down: $attempts delivery attempts in $elapsed ms (retry_min 1 s, retry_max 4 s)"

# --- and IMAP down too; SMTP back: delivery goes on without IMAP ---------------
dovecot_stop
ok "wait_until 15 cg_log_has 'connection dropped|cannot connect'" "casegated notices IMAP is gone"
mark=$(connects)
cpu0=$(cg_cpu_ticks "$CG_PID"); tc=$(now_us)
postfix_start || diag "postfix did not start"
t0=$(now_us)
ok "wait_until 20 ack_is 2 sent" "with IMAP down the queued acknowledgement is delivered once Postfix is back"
diag "SMTP back: queued acknowledgement handed to Postfix after $(ms_since "$t0") ms"
sleep 3
cpu=$(( $(cg_cpu_ticks "$CG_PID") - cpu0 )); el=$(ms_since "$tc")
ok "[ $((cpu * 10)) -lt $((el / 20)) ]" "no spinning while IMAP is down (${cpu}0 ms CPU in $el ms)"
t0=$(now_us)
dovecot_start
recovers "Dovecot back" "$mark" "$t0" 3
ok "wait_until 15 count_is bob INBOX 1" "bob's acknowledgement reached him"

# --- BYE from the server: doveadm kick ---------------------------------------
mark=$(connects); t0=$(now_us)
_cg_doveadm kick members >/dev/null
ok "wait_until 10 cg_log_has 'connection dropped'" "a kick drops the session"
recovers "kick" "$mark" "$t0" 4

# --- the imap process killed -------------------------------------------------
mark=$(connects)
pids=$(dovecot_imap_pids members)
ok "[ -n '$pids' ]" "the members session has an imap process"
t0=$(now_us)
kill -KILL $pids
recovers "imap process killed" "$mark" "$t0" 5

# --- a hung server: the imap process stopped ---------------------------------
mark=$(connects)
pids=$(dovecot_imap_pids members)
cpu0=$(cg_cpu_ticks "$CG_PID")
t0=$(now_us)
kill -STOP $pids
member_mail member6@example.test
ok "wait_until 40 cases_is 6" "mail that arrives while the server hangs is taken over a new connection"
el=$(ms_since "$t0")
cpu=$(( $(cg_cpu_ticks "$CG_PID") - cpu0 ))
ok "cg_log_has 'IDLE DONE: connection lost or timed out|timed out'" "the hung session timed out"
ok "connects_above $mark" "and casegated reconnected"
diag "hung server: mail taken after $el ms (idle_restart 10 s + timeout 3 s + backoff);" \
    "casegated used ${cpu}0 ms CPU meanwhile"
ok "[ $((cpu * 10)) -lt $((el / 20)) ]" "casegated did not spin while the server hung (${cpu}0 ms CPU in $el ms)"
kill -CONT $pids

# --- Dovecot restart -----------------------------------------------------------
mark=$(connects); t0=$(now_us)
dovecot_stop && dovecot_start
recovers "Dovecot restart" "$mark" "$t0" 7

# --- 4xx from the relay: retried with backoff, delivered later ------------------
printf 'carol@example.test 450 4.2.0 carol: try again later\n' >"$POSTFIX_CONF/rcpt_access"
postconf -c "$POSTFIX_CONF" -e \
    "smtpd_recipient_restrictions = check_recipient_access texthash:$POSTFIX_CONF/rcpt_access"
postfix -c "$POSTFIX_CONF" reload >/dev/null 2>&1
member_mail carol@example.test
ok "wait_until 15 cases_is 8" "carol's mail becomes a case"
ok "wait_until 20 ack_attempts_at_least 8 3" "a 450 for her acknowledgement is retried"
like "$(q "SELECT state || '|' || last_error FROM outbox WHERE kind = 'ack' AND case_id = 8")" \
    '^queued\|.*450' "it stays queued with the 450 recorded"
: >"$POSTFIX_CONF/rcpt_access"
postfix -c "$POSTFIX_CONF" reload >/dev/null 2>&1
t0=$(now_us)
ok "wait_until 20 ack_is 8 sent" "once the relay accepts, it is delivered"
diag "4xx: delivered $(ms_since "$t0") ms after the map was emptied," \
    "after $(q "SELECT attempts FROM outbox WHERE kind = 'ack' AND case_id = 8") failed attempts"
ok "wait_until 15 count_is carol INBOX 1" "and carol has it"

# --- 5xx from the relay: failed, recorded on the case ----------------------------
member_mail dave@example.test
ok "wait_until 15 cases_is 9" "dave's mail becomes a case"
ok "wait_until 15 ack_is 9 failed" "the relay's 550 (unknown user) fails his acknowledgement"
is "$(q "SELECT attempts FROM outbox WHERE kind = 'ack' AND case_id = 9")" 1 "without retrying"
like "$(q "SELECT detail FROM events WHERE case_id = 9 AND kind = 'delivery-failed'")" \
    '550' "the case records the failure with the relay's reply"
ok "cg_stop" "casegated exits 0 on SIGTERM after all that"

[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
