#!/bin/bash
# 0300-hygiene.t - mail hygiene against the real Dovecot and Postfix:
# an auto-reply to an acknowledgement is recorded on its case without an
# answer or a reopen; a bounce for an acknowledgement is matched and
# recorded as a delivery failure; repeated hard bounces stop mail to the
# address; list mail is recorded but not answered; over-limit mail still
# becomes a case whose acknowledgement names what was left out; spam
# goes to the quarantine, which casectl lists, shows, releases (as new
# mail) and deletes; and an auto-responder ping-pong over a simulated
# day gets no more acknowledgements than the daily cap.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
mail_user_add robot pw-robot || { echo "Bail out! no robot user"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cat >>"$conf" <<'CONF'
limits = { max_message_size = 200000; max_attachment_size = 20000;
           max_attachments = 3; max_mime_depth = 10; max_parts = 100; };
guard = { autoreply_per_day = 5; bounce_limit = 2; bounce_window_days = 7;
          suppress_days = 30; blocked_senders = [ "*@blocked.example" ]; };
spam = { header = "X-Spam-Flag"; score_header = "X-Spam-Score"; threshold = 6.5; };
CONF
db=$CG_T/cg/casegate.db
processed() { mbox_count members Processed; }
n_processed=0
# Drop a message into members' INBOX; wait until the daemon moved it.
deliver() {		# file
	mbox_put members INBOX "$1" || return 1
	n_processed=$((n_processed + 1))
	wait_until 20 "test \"\$(processed)\" -ge $n_processed"
}
events() { cg_sql "SELECT kind || ': ' || coalesce(detail, '') FROM events WHERE case_id = $1"; }
unlike() { if [[ $1 =~ $2 ]]; then ok false "$3"; else ok true "$3"; fi; }
# The decoded text of every message in a mailbox (quoted-printable undone).
texts() { mbox_dump "$1" INBOX | tr -d '\r' | sed -e ':a' -e '/=$/N; s/=\n//; ta'; }

out=$("$CASEGATED" -n -f "$conf" 2>&1)
is "$?:$out" "0:configuration OK" "the hygiene settings are valid configuration"

# --- a case and its acknowledgement ------------------------------------
cg_start "$conf"
ok "deliver '$CG_TOP/tests/mail/royalties.eml'" "alice's mail is processed"
ok "wait_until 15 'test \"\$(mbox_count alice INBOX)\" = 1'" "alice gets her acknowledgement"
ack_id=$(mbox_header alice INBOX message-id | tr -d '<> ')
like "$ack_id" '^CASE-000001\.' "the acknowledgement's Message-ID names the case"
"$CASECTL" -f "$conf" resolve --no-notice CASE-000001 >/dev/null 2>&1
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Resolved" "staff resolve the case"

# --- an out-of-office reply to the acknowledgement ---------------------------
cat >"$CG_T/ooo.eml" <<OOO
From: Alice Member <alice@example.test>
To: members@example.test
Subject: Automatic reply: Missing royalties for my song [CASE-000001]
Message-ID: <ooo-1.alice@example.test>
In-Reply-To: <$ack_id>
References: <$ack_id>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Date: Sun, 29 Nov 2026 11:00:00 +0000

I am out of the office until Monday.
OOO
ok "deliver '$CG_T/ooo.eml'" "the auto-reply is processed"
like "$(events 1)" 'auto-reply: auto-reply from alice@example\.test' \
    "it is recorded on the case it answers (matched by Message-ID)"
is "$(cg_sql "SELECT role FROM messages WHERE message_id = 'ooo-1.alice@example.test'")" \
    "auto-reply" "the message is stored as an auto-reply"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Resolved" "the case is not reopened"
is "$(cg_sql "SELECT count(*) FROM cases")" 1 "no new case"
sleep 1
is "$(mbox_count alice INBOX)" 1 "and no answer goes out"

# --- bounces for the acknowledgement: recorded, then suppression ---------------
dsn() {		# n
	cat <<DSN
From: Mail Delivery System <MAILER-DAEMON@mx.example.test>
To: members@example.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-$1@mx.example.test>
Return-Path: <>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B$1"

--B$1
Content-Type: text/plain

Your message could not be delivered.
--B$1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test

Final-Recipient: rfc822; alice@example.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.test>: mailbox unavailable

--B$1
Content-Type: text/rfc822-headers

From: Member Services <members@example.test>
To: alice@example.test
Message-ID: <$ack_id>

--B$1--
DSN
}
dsn 1 >"$CG_T/dsn1.eml"
ok "deliver '$CG_T/dsn1.eml'" "a bounce for the acknowledgement is processed"
like "$(events 1)" 'delivery-failure: to <alice@example\.test>: 5\.1\.1: .*mailbox unavailable \(permanent\)' \
    "it is matched to the acknowledgement and recorded as a delivery failure"
is "$(cg_sql "SELECT count(*) FROM cases")" 1 "a bounce opens no case"
is "$(cg_sql "SELECT count(*) FROM suppressed")" 0 "one hard bounce suppresses nothing yet"
dsn 2 >"$CG_T/dsn2.eml"
ok "deliver '$CG_T/dsn2.eml'" "a second hard bounce is processed"
is "$(cg_sql "SELECT addr FROM suppressed WHERE until > strftime('%s','now') + 29 * 86400")" \
    "alice@example.test" "two hard bounces suppress the address for the configured period"
like "$(events 1)" 'suppressed: no more mail to <alice@example\.test>' "the case says so"
sed -e 's/^Message-ID: .*/Message-ID: <royalties-2.alice@example.test>/' \
    -e 's/^Subject: .*/Subject: Another question/' \
    "$CG_TOP/tests/mail/royalties.eml" >"$CG_T/alice2.eml"
ok "deliver '$CG_T/alice2.eml'" "alice writes again"
alice2=$(cg_sql "SELECT case_id FROM messages WHERE message_id = 'royalties-2.alice@example.test'")
like "$(events "$alice2")" 'no-ack: mail to alice@example\.test is suppressed until' \
    "her new case is recorded but not acknowledged"
sleep 1
is "$(mbox_count alice INBOX)" 1 "no mail went to the suppressed address"

# --- list mail --------------------------------------------------------------
cat >"$CG_T/list.eml" <<'LIST'
From: Bob Member <bob@example.test>
To: members@example.test
Subject: [music-list] weekly digest
Message-ID: <list-1.bob@example.test>
List-Id: Music list <music.lists.example.test>
List-Unsubscribe: <mailto:leave@lists.example.test>
Precedence: list

Digest of the week.
LIST
ok "deliver '$CG_T/list.eml'" "list mail is processed"
# rules/default.rules ignores list mail, so it is held with the rule's
# reason; without that rule it would be a case with a no-ack event.
like "$(cg_sql "SELECT reason FROM quarantine WHERE message_id = 'list-1.bob@example.test'")" \
    'ignored by rule "lists and bulk mail"' "it is recorded, with the reason"
is "$(cg_sql "SELECT count(*) FROM outbox o JOIN messages m ON o.case_id = m.case_id WHERE m.message_id = 'list-1.bob@example.test'")" \
    0 "and not acknowledged"
sed -e '/^List-Id: /d' -e '/^Precedence: /d' \
    -e 's/^Subject: .*/Subject: Digest/' -e 's/list-1\./list-2./' "$CG_T/list.eml" >"$CG_T/bulk.eml"
ok "deliver '$CG_T/bulk.eml'" "list mail that no rule ignores (List-Unsubscribe only) is processed"
bulk_case=$(cg_sql "SELECT case_id FROM messages WHERE message_id = 'list-2.bob@example.test'")
like "$(events "$bulk_case")" 'no-ack: mailing list \(List-Unsubscribe\)' \
    "it is a case, recorded without an acknowledgement"
sleep 1
is "$(mbox_count bob INBOX)" 0 "bob gets nothing for list mail"

# --- over the limits --------------------------------------------------------
{
	printf 'From: Bob Member <bob@example.test>\nTo: members@example.test\n'
	printf 'Subject: My statements\nMessage-ID: <att-1.bob@example.test>\n'
	printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n'
	printf -- '--XX\nContent-Type: text/plain\n\nMy statements are attached.\n'
	for i in 0 1 2 3 4; do
		printf -- '--XX\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n'
		printf 'Content-Disposition: attachment; filename="statement-%d.pdf"\n\n' "$i"
		if [ "$i" = 0 ]; then head -c 30000 /dev/urandom | base64; else echo UEsDBA==; fi
	done
	printf -- '--XX--\n'
} >"$CG_T/att.eml"
ok "deliver '$CG_T/att.eml'" "mail over the attachment limits is processed"
att_case=$(cg_sql "SELECT case_id FROM messages WHERE message_id = 'att-1.bob@example.test'")
ok "[ -n '$att_case' ]" "it still becomes a case"
like "$(events "$att_case")" 'dropped: attachment "statement-0\.pdf" \([0-9.]+ kB\): larger than the 20\.0 kB limit' \
    "the oversized attachment is recorded as dropped"
like "$(events "$att_case")" 'dropped: attachment "statement-4\.pdf": more than 3 attachments' \
    "so is the one over the count"
is "$(cg_sql "SELECT count(*) FROM attachments a JOIN messages m ON a.message_row = m.id WHERE m.message_id = 'att-1.bob@example.test'")" \
    3 "the three that fit are kept"
ok "wait_until 15 'test \"\$(mbox_count bob INBOX)\" = 1'" "bob gets an acknowledgement"
body=$(texts bob)
like "$body" 'statement-0\.pdf' "it names the attachment that was too large"
like "$body" 'more than 3 attachments' "and the one that was one too many"

{
	printf 'From: Bob Member <bob@example.test>\nTo: members@example.test\n'
	printf 'Subject: Huge recording\nMessage-ID: <big-1.bob@example.test>\n'
	printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=YY\n\n'
	printf -- '--YY\nContent-Type: text/plain\n\nListen.\n--YY\n'
	printf 'Content-Type: audio/mpeg\nContent-Transfer-Encoding: base64\n\n'
	head -c 300000 /dev/urandom | base64
	printf -- '--YY--\n'
} >"$CG_T/big.eml"
ok "deliver '$CG_T/big.eml'" "mail over the message size limit is processed"
big_case=$(cg_sql "SELECT case_id FROM messages WHERE message_id = 'big-1.bob@example.test'")
like "$(events "$big_case")" 'dropped: the whole message \([0-9.]+ kB\): larger than the 200\.0 kB limit' \
    "it becomes a case from its header, with what was dropped"
ok "wait_until 15 'test \"\$(mbox_count bob INBOX)\" = 2'" "bob gets an acknowledgement for it"
like "$(texts bob)" 'the whole message .*only its header was read' "which says it was too large"

# --- spam, blocked senders and the quarantine -----------------------------------
spam() {	# n header
	printf 'From: Winner <prize@lottery.example>\nTo: members@example.test\n'
	printf 'Subject: You won %s\nMessage-ID: <spam-%s@lottery.example>\n%s\n\n' "$1" "$1" "$2"
	printf 'Claim your prize \033[31mnow\033[0m.\n'
}
spam 1 "X-Spam-Flag: YES" >"$CG_T/spam1.eml"
spam 2 "X-Spam-Score: 9.2" >"$CG_T/spam2.eml"
spam 3 "X-Spam-Score: 1.0" >"$CG_T/spam3.eml"
ok "deliver '$CG_T/spam1.eml' && deliver '$CG_T/spam2.eml' && deliver '$CG_T/spam3.eml'" \
    "three mails with spam headers are processed"
list=$("$CASECTL" -f "$conf" quarantine list)
like "$list" 'spam \(X-Spam-Flag: YES\)' "casectl quarantine list shows X-Spam-Flag: YES"
like "$list" 'spam \(X-Spam-Score: 9\.2, threshold 6\.5\)' "and a score over the configured threshold"
is "$(cg_sql "SELECT count(*) FROM quarantine WHERE message_id = 'spam-3@lottery.example'")" 0 \
    "a score below it is not spam"
is "$(cg_sql "SELECT count(*) FROM messages WHERE message_id = 'spam-3@lottery.example'")" 1 \
    "that one became a case"
cases_before=$(cg_sql "SELECT count(*) FROM cases")
q1=$(cg_sql "SELECT id FROM quarantine WHERE message_id = 'spam-1@lottery.example'")
q2=$(cg_sql "SELECT id FROM quarantine WHERE message_id = 'spam-2@lottery.example'")
like "$("$CASECTL" -f "$conf" quarantine list --json)" "\"id\":$q1,\"state\":\"held\"" \
    "--json lists the entries"
show=$("$CASECTL" -f "$conf" quarantine show "$q1")
like "$show" 'Reason: +spam \(X-Spam-Flag: YES\)' "show names the reason"
like "$show" 'Claim your prize \\x1b\[31mnow' "and the raw message, terminal escapes defused"
"$CASECTL" -f "$conf" quarantine show 9999 >/dev/null 2>&1
is "$?" 1 "show of an unknown entry exits 1"
out=$("$CASECTL" -f "$conf" quarantine release "$q1" 2>&1)
like "$out" "released entry $q1: CASE-[0-9]+ new-case" "release processes it as new mail"
is "$(cg_sql "SELECT state FROM quarantine WHERE id = $q1")" "released" "the entry is marked released"
is "$(cg_sql "SELECT count(*) FROM cases")" "$((cases_before + 1))" "and it is a case now"
"$CASECTL" -f "$conf" quarantine release "$q1" >/dev/null 2>&1
is "$?" 1 "it cannot be released twice"
digest=$(cg_sql "SELECT raw_digest FROM quarantine WHERE id = $q2")
ok "[ -f '$CG_T/cg/spool/raw/${digest:0:2}/$digest' ]" "a held message's raw copy is in the spool"
out=$("$CASECTL" -f "$conf" quarantine delete "$q2" 2>&1)
is "$out" "deleted entry $q2" "delete removes an entry"
is "$(cg_sql "SELECT state FROM quarantine WHERE id = $q2")" "deleted" "it is marked deleted"
ok "[ ! -e '$CG_T/cg/spool/raw/${digest:0:2}/$digest' ]" "and its raw copy is gone"
sed -e 's/^From: .*/From: Someone <x@blocked.example>/' -e 's/spam-3/blocked-1/' \
    -e '/^X-Spam/d' "$CG_T/spam3.eml" >"$CG_T/blocked.eml"
ok "deliver '$CG_T/blocked.eml'" "mail from a blocked sender is processed"
like "$("$CASECTL" -f "$conf" quarantine list)" 'blocked sender \(\*@blocked\.example\)' \
    "and held in the quarantine"

# --- auto-responder ping-pong over a simulated day -------------------------------
# The robot answers everything with a new mail (no auto-reply headers,
# no references: the worst kind).  Each round is an hour: the log of
# automatic mail is shifted back by 3600 s.  23 rounds stay within one
# day, so at most autoreply_per_day acknowledgements may reach it.
robot_mail() {	# n
	printf 'From: Robot <robot@example.test>\nTo: members@example.test\n'
	printf 'Subject: Thank you for your mail (%s)\nMessage-ID: <robot-%s@example.test>\n\n' "$1" "$1"
	printf 'Your message has been received.\n'
}
rounds=0
for r in $(seq 1 23); do
	robot_mail "$r" | smtp_send robot@example.test members@example.test - || break
	n_processed=$((n_processed + 1))
	wait_until 20 "test \"\$(processed)\" -ge $n_processed" || break
	for try in 1 2 3 4 5; do
		sqlite3 "$db" "PRAGMA busy_timeout = 5000; UPDATE autoreply_log SET at = at - 3600" \
		    >/dev/null 2>&1 && break
		sleep 0.2
	done
	rounds=$r
done
is "$rounds" 23 "the robot's 23 mails of a simulated day were all processed"
sleep 2
is "$(mbox_count robot INBOX)" 5 "it received no more acknowledgements than the daily cap (5)"
is "$(cg_sql "SELECT count(*) FROM events WHERE kind = 'no-ack' AND detail LIKE 'daily cap reached%robot@example.test%'")" \
    18 "the other 18 were recorded, with the cap as the reason"
is "$(cg_sql "SELECT count(*) FROM outbox WHERE rcpt = 'robot@example.test'")" 5 \
    "and nothing else was queued for it"

ok "cg_stop" "casegated exits cleanly"
[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
