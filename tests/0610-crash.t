#!/bin/bash
# 0610-crash.t - the torture test: nothing lost, nothing doubled.
#
# N member messages arrive in waves while casegated is killed with
# SIGKILL at random moments (fixed seed), during ingest and during
# delivery, and restarted each time; now and then Dovecot is kicked or
# restarted and Postfix stopped for a while.  At the end every message
# is exactly one case, sits in Processed exactly once, INBOX is empty,
# every acknowledgement row is sent and every member received exactly
# one distinct acknowledgement (same Message-ID if it came twice).
#
# SMTP cannot be exactly-once: a kill between the relay's 250 and our
# commit sends the same spool file again on restart (same Message-ID,
# so mail clients drop the copy).  Those resends are counted, and there
# can be at most one per kill and SMTP connection (smtp.connections,
# default 2: each connection may be between a 250 and its commit).
#
# Then a UIDVALIDITY change with processed mail copied back into INBOX:
# no new case, no new acknowledgement, the copies are moved.
#
#   TORTURE_N (200), TORTURE_KILLS (30), TORTURE_SEED (6); make torture
#   runs the long version.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"
. "$CG_TOP/tests/lib/faults.sh"

N=${TORTURE_N:-200}
KILLS=${TORTURE_KILLS:-30}
SEED=${TORTURE_SEED:-6}
WAVES=$(( KILLS / 5 > 1 ? KILLS / 5 : 2 ))
RANDOM=$SEED

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cg_conf_set "$conf" imap timeout 5
cg_conf_set "$conf" imap idle_restart 10
cg_conf_set "$conf" imap fetch_batch 20
cg_conf_set "$conf" smtp timeout 5
sed -i 's/^outbox = .*/outbox = { retry_min = 1; retry_max = 2; max_attempts = 1000; };/' "$conf"
# Members write from another domain: Postfix files every acknowledgement
# into the user "sink", where they are counted.  The team notifications
# (rules/default.rules: example.org team addresses) land there too; they
# answer no message, so ack_ids leaves out mail without In-Reply-To.
ack_ids() { maildir_ids sink INBOX | grep -v '^- '; }
members_domain=members.test

q() { cg_sql "$1"; }
# Return once k more log lines match ERE, or after ms milliseconds.
kill_after_events() {	# k ere ms
	wait_for_log $(( $(grep -cE "$2" "$CG_T/casegated.log" 2>/dev/null) + $1 )) "$2" "$3"
}
wait_for_log() {	# count ere ms: until count lines match ERE
	local end=$(( $(now_us) + $3 * 1000 ))
	while [ "$(grep -cE "$2" "$CG_T/casegated.log" 2>/dev/null)" -lt "$1" ] &&
	    [ "$(now_us)" -lt "$end" ]; do
		sleep 0.005
	done
}
settled() {
	[ "$(q "SELECT count(*) FROM cases")" = "$N" ] &&
	[ "$(q "SELECT count(*) FROM outbox WHERE state <> 'sent'")" = 0 ] &&
	[ "$(mbox_count members INBOX)" = 0 ]
}
acks_arrived() {
	postfix_queue_empty && [ "$(ack_ids | wc -l)" -ge "$N" ]
}

mkdir -p "$CG_T/mail"
for ((i = 1; i <= N; i++)); do
	w=$(( (i - 1) * WAVES / N ))
	mkdir -p "$CG_T/mail/$w"
	cat >"$CG_T/mail/$w/$(printf %05d "$i").eml" <<-EOF
	From: Member $i <m$i@$members_domain>
	To: Member Services <members@example.test>
	Subject: Torture $i: royalties for my song
	Message-ID: <torture-$i@$members_domain>
	Date: Mon, 02 Mar 2026 10:00:00 +0000
	MIME-Version: 1.0
	Content-Type: text/plain; charset=utf-8

	Hello, message $i: I have not received my royalties.
	Work title: Song $i
	EOF
done

# --- kill, restart, repeat ----------------------------------------------
t0=$(now_us)
kills=0 wave=0 in_ingest=0 in_delivery=0 kicks=0 restarts=0 pf_stops=0 pf_down=0
while [ "$kills" -lt "$KILLS" ]; do
	if [ "$wave" -lt "$WAVES" ]; then
		mbox_put_many members INBOX "$CG_T/mail/$wave" || break
		wave=$((wave + 1))
	fi
	logins=$(( $(grep -c 'connected to' "$CG_T/casegated.log" 2>/dev/null) + 1 ))
	cg_start "$conf"
	case $((RANDOM % 3)) in
	0)	# 0-400 ms after the start: before login, in SELECT, mid-fetch.
		sleep "$(printf '0.%03d' $((RANDOM % 400)))" ;;
	1)	# 0-150 ms after login: fetching, ingesting, committing, moving.
		wait_for_log "$logins" 'connected to' 2000
		sleep "$(printf '0.%03d' $((RANDOM % 150)))" ;;
	2)	# Right after the k-th next acknowledgement went out: the
		# middle of delivery, often between a 250 and its commit.
		kill_after_events $((1 + RANDOM % 15)) 'sent ack to' 1500 ;;
	esac
	case $((kills % 10)) in
	3)	_cg_doveadm kick members >/dev/null 2>&1 && kicks=$((kicks + 1))
		sleep "0.$((RANDOM % 5))" ;;
	6)	dovecot_stop && dovecot_start && restarts=$((restarts + 1)) ;;
	8)	if [ "$pf_down" = 0 ]; then
			postfix_stop; pf_down=1; pf_stops=$((pf_stops + 1))
		fi ;;
	esac
	cg_kill9
	# What the kill interrupted, read from the state it left behind.
	[ "$(q "SELECT count(*) FROM outbox WHERE state = 'queued'")" -gt 0 ] &&
	    in_delivery=$((in_delivery + 1))
	[ "$(mbox_count members INBOX)" -gt 0 ] && in_ingest=$((in_ingest + 1))
	kills=$((kills + 1))
	# Postfix stays down for two rounds.
	if [ "$pf_down" -gt 0 ] && [ $((kills % 10)) = 0 ]; then
		postfix_start || diag "postfix did not come back"
		pf_down=0
	fi
done
[ "$pf_down" = 0 ] || postfix_start
while [ "$wave" -lt "$WAVES" ]; do
	mbox_put_many members INBOX "$CG_T/mail/$wave"
	wave=$((wave + 1))
done
diag "$kills SIGKILLs in $(ms_since "$t0") ms ($in_delivery with acknowledgements" \
    "queued, $in_ingest with mail in INBOX); $kicks kicks, $restarts Dovecot" \
    "restarts, $pf_stops Postfix outages"

cg_start "$conf"
ok "wait_until 180 settled" "after $kills kills everything settled ($N cases, outbox sent, INBOX empty)"
# 120 s: each case also sends a team notification, twice the mail of before
ok "wait_until 120 acks_arrived" "Postfix delivered every acknowledgement"
ok "cg_stop" "casegated exits 0 on SIGTERM"

# --- none lost, none doubled ---------------------------------------------
is "$(q "SELECT count(*) FROM cases")" "$N" "exactly $N cases"
is "$(q "SELECT count(*) || '/' || count(DISTINCT message_id) FROM messages
    WHERE direction = 'in'")" "$N/$N" "one stored message per Message-ID"
is "$(q "SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id
    WHERE m.direction = 'in' AND m.from_addr = c.member")" "$N" \
    "each member's message is in its own case"
is "$(mbox_count members INBOX)" 0 "INBOX is empty"
processed=$(maildir_ids members Processed)
is "$(wc -l <<<"$processed")" "$N" "Processed holds $N messages"
is "$(awk '{ print $2 }' <<<"$processed" | sort -u | grep -c '^<torture-')" "$N" \
    "each member message is in Processed exactly once"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'sent'")" "$N" \
    "every case's acknowledgement row is sent"
is "$(q "SELECT count(DISTINCT case_id) FROM outbox WHERE kind = 'ack'")" "$N" \
    "one acknowledgement row per case"

acks=$(ack_ids)
total=$(wc -l <<<"$acks")
pairs=$(sort -u <<<"$acks")
is "$(awk '{ print $1 }' <<<"$pairs" | sort -u | grep -c '^<torture-')" "$N" \
    "every member received an acknowledgement"
is "$(awk '{ print $1 }' <<<"$pairs" | sort | uniq -d | wc -l)" 0 \
    "each member's acknowledgements all carry one Message-ID (clients dedupe)"
q "SELECT m.message_id || ' ' || o.message_id FROM outbox o
    JOIN messages m ON m.case_id = o.case_id AND m.direction = 'in' WHERE o.kind = 'ack'" |
    sed 's/\([^ ]*\) \(.*\)/<\1> <\2>/' | sort >"$CG_T/want"
is "$(comm -3 "$CG_T/want" <(printf '%s\n' "$pairs") | wc -l)" 0 \
    "and it is the Message-ID the outbox recorded for that case"
resends=$((total - N))
conns=$(sed -n 's/^  connections = \([0-9]*\);/\1/p' "$conf")
conns=${conns:-2}
ok "[ $resends -ge 0 ] && [ $resends -le $((kills * conns)) ]" \
    "deliveries $total <= $N + $kills kills x $conns connections (resends: $resends)"
# Team notifications go out through the same outbox: count every copy.
all_mail=$(maildir_ids sink INBOX | awk '{ print $2 }')
dups=$(( $(wc -l <<<"$all_mail") - $(sort -u <<<"$all_mail" | wc -l) ))
is "$(q "SELECT count(*) FROM outbox WHERE state = 'sent'")" \
    "$(sort -u <<<"$all_mail" | wc -l)" "every mail the outbox marked sent arrived (acks and notifications)"
ok "[ $dups -le $((kills * conns)) ]" \
    "resends of any outbox mail $dups <= $kills kills x $conns connections"
refetched=$(grep -c 'duplicate: already stored' "$CG_T/casegated.log")
diag "figures: messages $N, kills $kills, Dovecot restarts $restarts, kicks $kicks," \
    "Postfix outages $pf_stops, lost 0, doubled cases 0," \
    "doubled acknowledgements (resent after a kill between 250 and commit) $resends," \
    "messages fetched again after their commit (kill before the move) $refetched"

# --- UIDVALIDITY change: processed mail back in INBOX -----------------------
K=10
uv_before=$(_cg_doveadm -f flow mailbox status -u members uidvalidity INBOX)
dovecot_stop
md=$(_cg_maildir members INBOX)
mkdir -p "$CG_T/back"
find "$(_cg_maildir members Processed)/cur" "$(_cg_maildir members Processed)/new" \
    -type f | sort | head -n "$K" | xargs -r cp -t "$CG_T/back"
rm -f "$md"/dovecot-uidlist "$md"/dovecot.index* "$md"/dovecot.list.index* \
    "$md"/dovecot-uidvalidity*
dovecot_start
mbox_put_many members INBOX "$CG_T/back"
uv_after=$(_cg_doveadm -f flow mailbox status -u members uidvalidity INBOX)
ok "[ '$uv_before' != '$uv_after' ]" "Dovecot gave INBOX a new UIDVALIDITY ($uv_before -> $uv_after)"
is "$(mbox_count members INBOX)" "$K" "$K processed messages are back in INBOX"
inbox_empty() { [ "$(mbox_count members INBOX)" = 0 ]; }
cg_start "$conf"
ok "wait_until 30 inbox_empty" "casegated moves them out again"
ok "cg_log_has 'UIDVALIDITY of INBOX changed'" "the log names the UIDVALIDITY change"
is "$(q "SELECT count(*) FROM cases")" "$N" "no new case"
is "$(mbox_count members Processed)" "$((N + K))" "the copies went to Processed"
sleep 1
ok "postfix_queue_empty" "nothing waits in Postfix"
is "$(ack_ids | wc -l)" "$total" "and no acknowledgement was sent for them"
ok "cg_stop" "casegated exits 0"

[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
