#!/bin/bash
# 0200-conversation.t - a case as a conversation, over a real Dovecot and
# Postfix: the team notification, a member's follow-up, a staff reply
# from staff@ relayed to the member (trimmed, attachment kept, threaded),
# #note, a forged staff From, #resolve and its notice, one thread in the
# member's mailbox (UID THREAD REFERENCES), a reply that reopens, a reply
# after the reopen window (a new linked case), a stranger with a copied
# token, a failing command (transcript), and "status" / "statut".
#
# Postfix here adds no Authentication-Results, so a staff message carries
# the one the trusted server (authserv-id mx.example.test) would add;
# the forged one carries none.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cat >>"$conf" <<'CONF'
staff = {
  addresses = [ "staff@example.test" ];
  authserv_id = "mx.example.test";
  require_auth = true;
};
cases = { reopen_days = 14; };
CONF
M=$CG_T/mail
mkdir -p "$M"
# Read-write, for the one UPDATE that moves a resolution into the past.
cg_sql() { sqlite3 "$CG_T/cg/casegate.db" "$1"; }
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
cases() { cg_sql "SELECT count(*) FROM cases"; }
sql_is() { [ "$(cg_sql "$1")" = "$2" ]; }	# re-run by wait_until

# The headers and text of the newest message in a mailbox, or its UID THREAD.
imap() {	# user thread|last
	python3 - "$1" "$2" "$IMAPS_PORT" "$CA_PEM" "$(cat "$CG_T/pw/$1")" <<'PY'
import imaplib, ssl, sys
user, what, port, ca, pw = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
m.login(user, pw)
m.select("INBOX")
if what == "thread":
    typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    print(data[0].decode())
else:
    typ, data = m.uid("SEARCH", None, "ALL")
    uid = data[0].split()[-1]
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[])")
    sys.stdout.write(data[0][1].decode("utf-8", "replace"))
m.logout()
PY
}
header_of() {	# header, message on stdin (unfolded)
	tr -d '\r' | awk -v h="$1" '/^$/ { exit }
	    /^[ \t]/ { if (on) { sub(/^[ \t]+/, " "); v = v $0 }; next }
	    { if (on) exit; on = (tolower(substr($0, 1, length(h) + 1)) == tolower(h) ":");
	      if (on) v = substr($0, length(h) + 3) } END { print v }'
}
AR="Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=staff@example.test"

# staff_mail FILE IN-REPLY-TO SUBJECT BODY [AR]
staff_mail() {
	{
		[ -n "$5" ] && echo "$5"
		echo "From: Sam Staff <staff@example.test>"
		echo "To: members@example.test"
		echo "Subject: $3"
		echo "Message-ID: <staff-$RANDOM$RANDOM@example.test>"
		echo "In-Reply-To: <$2>"
		echo "References: <$2>"
		echo "MIME-Version: 1.0"
		echo "Content-Type: text/plain; charset=utf-8"
		echo
		printf '%s\n' "$4"
	} >"$1"
}

# --- a new case notifies its team ------------------------------------------
cg_start "$conf"
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
ok "wait_until 15 count_is alice INBOX 1" "the member gets her acknowledgement"
ok "wait_until 15 count_is sink INBOX 1" "the team address (outside example.test: the sink) gets a notification"
team=$(cg_sql "SELECT rcpt FROM outbox WHERE kind = 'notify'")
like "$team" '@example\.org$' "the notification went to the team address from the rules ($team)"
note=$(imap sink last)
like "$(header_of subject <<<"$note")" 'New case: Missing royalties for my song \[CASE-000001\]' \
    "its subject names the case"
like "$(header_of reply-to <<<"$note")" 'members@example\.test' "its Reply-To is the gateway"
like "$note" 'Blue River' "it carries the member's text"
like "$note" 'Royalties' "and the case type"
notify_id=$(cg_sql "SELECT message_id FROM outbox WHERE kind = 'notify'")
ack_id=$(cg_sql "SELECT message_id FROM outbox WHERE kind = 'ack'")

# --- the member follows up ---------------------------------------------------
cat >"$M/follow.eml" <<EOF
From: Alice Member <alice@example.test>
To: members@example.test
Subject: Re: Missing royalties for my song [CASE-000001]
Message-ID: <follow-1.alice@example.test>
In-Reply-To: <$ack_id>
References: <royalties-1.alice@example.test> <$ack_id>

I forgot: it was also played on the radio.

On Sun, 29 Nov 2026, Member Services wrote:
> We have opened case CASE-000001 for it.
EOF
smtp_send alice@example.test members@example.test "$M/follow.eml"
ok "wait_until 15 sql_is \"SELECT count(*) FROM messages WHERE case_id = 1 AND direction = 'in'\" 2" "the member's follow-up joins the case"
is "$(cases)" 1 "and opens no new case"
is "$(cg_sql "SELECT visible FROM messages WHERE message_id = 'follow-1.alice@example.test'")" \
    "I forgot: it was also played on the radio." "its visible text is stored without the quote"
ok "wait_until 15 count_is sink INBOX 2" "the team hears about the follow-up"

# --- a staff reply from the staff member's own mail client -------------------
{
	echo "$AR"
	cat <<EOF
From: Sam Staff <staff@example.test>
To: members@example.test
Subject: Re: New case: Missing royalties for my song [CASE-000001]
Message-ID: <staff-1@example.test>
In-Reply-To: <$notify_id>
References: <$notify_id>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Dear Alice, we found the missing statement; it is attached.

Sam

On Sun, 29 Nov 2026, Member Services <members@example.test> wrote:
> New case CASE-000001 for team distribution.
> The member wrote: I have not been paid
--b1
Content-Type: application/pdf; name="statement.pdf"
Content-Disposition: attachment; filename="statement.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKc3RhdGVtZW50Cg==
--b1--
EOF
} >"$M/staff1.eml"
smtp_send staff@example.test members@example.test "$M/staff1.eml"
ok "wait_until 15 count_is alice INBOX 2" "the staff reply reaches the member"
relay=$(imap alice last)
like "$(header_of from <<<"$relay")" '"?Sam Staff via Member Services"? <members@example\.test>' \
    "From is \"Staff Name via Member Services\" at the gateway's address"
[[ $relay != *"staff@example.test"* ]]
ok $? "the staff address is not exposed"
like "$(header_of subject <<<"$relay")" '\[CASE-000001\]' "the subject carries the case token"
is "$(header_of in-reply-to <<<"$relay")" "<follow-1.alice@example.test>" \
    "it is threaded under the member's last message"
like "$relay" 'we found the missing statement' "it carries the staff member's new text"
[[ $relay != *"The member wrote"* && $relay != *"wrote:"* ]]
ok $? "without the quoted history"
like "$relay" 'filename="?statement\.pdf' "the attachment is kept"
is "$(cg_sql "SELECT role FROM messages WHERE direction = 'out' AND message_id = (SELECT message_id FROM outbox WHERE kind = 'reply')")" \
    "staff" "the relay is recorded on the case as a staff message"

# --- #note stays internal ------------------------------------------------------
staff_mail "$M/note.eml" "$notify_id" "Re: [CASE-000001]" $'#note\nCalled her, she will send the contract.' "$AR"
smtp_send staff@example.test members@example.test "$M/note.eml"
ok "wait_until 15 sql_is \"SELECT count(*) FROM events WHERE kind = 'note'\" 1" \
    "#note is recorded as a note"
sleep 2
is "$(mbox_count alice INBOX)" 2 "and nothing is relayed to the member"

# --- a forged staff From -------------------------------------------------------
staff_mail "$M/forged.eml" "$notify_id" "Re: [CASE-000001]" $'Please send your bank details to evil@example.net.' ""
smtp_send mallory@example.net members@example.test "$M/forged.eml"
ok "wait_until 15 sql_is \"SELECT count(*) FROM messages WHERE role = 'unknown' AND direction = 'in'\" 1" \
    "a staff From without a trusted Authentication-Results is recorded as unknown"
sleep 2
is "$(mbox_count alice INBOX)" 2 "and is not relayed"

# --- an unknown command: transcript, nothing relayed ------------------------
staff_mail "$M/bad.eml" "$notify_id" "Re: [CASE-000001]" $'#resolv\nAll done.' "$AR"
smtp_send staff@example.test members@example.test "$M/bad.eml"
ok "wait_until 15 count_is staff INBOX 1" "a failing command sends the staff member a transcript"
like "$(imap staff last)" 'unknown command' "which says what failed"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Active" "nothing was applied"
is "$(mbox_count alice INBOX)" 2 "and nothing relayed"

# --- #resolve tells the member -------------------------------------------------
staff_mail "$M/resolve.eml" "$notify_id" "Re: [CASE-000001]" $'#resolve\nThe payment is on its way.' "$AR"
smtp_send staff@example.test members@example.test "$M/resolve.eml"
ok "wait_until 15 count_is alice INBOX 4" "#resolve: the reply and a resolution notice reach the member"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Resolved" "the case is Resolved"
like "$(imap alice last)" 'has been resolved' "the last mail is the resolution notice"
thread=$(imap alice thread)
# top-level threads: each "(" at depth 0 starts one
threads=0 depth=0
for ((i = 0; i < ${#thread}; i++)); do
	case ${thread:i:1} in
	"(") [ $depth -eq 0 ] && threads=$((threads + 1)); depth=$((depth + 1)) ;;
	")") depth=$((depth - 1)) ;;
	esac
done
is "$threads" 1 "UID THREAD REFERENCES: acknowledgement, staff replies and notice are one thread ($thread)"
like "$thread" '1.*2.*3.*4' "holding all four messages"

# --- a member reply reopens within the window ------------------------------------
resolved_id=$(cg_sql "SELECT message_id FROM outbox WHERE kind = 'resolved'")
cat >"$M/reopen.eml" <<EOF
From: Alice Member <alice@example.test>
To: members@example.test
Subject: Re: Missing royalties for my song [CASE-000001]
Message-ID: <reopen-1.alice@example.test>
In-Reply-To: <$resolved_id>

Sorry, one more question about the statement.
EOF
smtp_send alice@example.test members@example.test "$M/reopen.eml"
ok "wait_until 15 sql_is 'SELECT status FROM cases WHERE id = 1' Active" \
    "a member's reply to the resolved case reopens it"
is "$(cases)" 1 "and opens no new case"

# --- after the window: a new case linked to the old one -------------------------
staff_mail "$M/resolve2.eml" "$notify_id" "Re: [CASE-000001]" $'#resolve' "$AR"
smtp_send staff@example.test members@example.test "$M/resolve2.eml"
ok "wait_until 15 sql_is 'SELECT status FROM cases WHERE id = 1' Resolved" \
    "resolved again"
cg_sql "UPDATE events SET at = at - 30 * 86400 WHERE case_id = 1 AND kind = 'resolved'" 2>&1
sed -e 's/reopen-1/late-1/' -e 's/one more question/a late question/' "$M/reopen.eml" >"$M/late.eml"
smtp_send alice@example.test members@example.test "$M/late.eml"
ok "wait_until 15 sql_is 'SELECT count(*) FROM cases' 2" "a reply after the reopen window opens a new case"
is "$(cg_sql "SELECT linked_to || '|' || status FROM cases WHERE id = 2")" "1|Active" \
    "linked to the old one"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Resolved" "the old case stays resolved"

# --- a stranger copies a token ------------------------------------------------------
cat >"$M/stranger.eml" <<EOF
From: Bob <bob@example.test>
To: members@example.test
Subject: Re: Missing royalties for my song [CASE-000001]
Message-ID: <stranger-1.bob@example.test>

Please change the bank account of this case to mine.
EOF
smtp_send bob@example.test members@example.test "$M/stranger.eml"
ok "wait_until 15 sql_is 'SELECT count(*) FROM cases' 3" "a stranger with a copied token opens a new case"
is "$(cg_sql "SELECT member FROM cases WHERE id = 3")" "bob@example.test" "the new case is his"
is "$(cg_sql "SELECT count(*) FROM messages WHERE case_id = 1 AND from_addr = 'bob@example.test'")" 0 \
    "nothing of his lands on the case he named"
like "$(cg_sql "SELECT detail FROM events WHERE case_id = 3 AND kind = 'claim-refused'")" \
    'copied subject token' "the new case records the refused claim"

# --- status, in English and in French ------------------------------------------------
n=$(mbox_count alice INBOX)
printf 'From: Alice Member <alice@example.test>\nTo: members@example.test\nSubject: Status\nMessage-ID: <status-1.alice@example.test>\n\nplease\n' >"$M/status.eml"
smtp_send alice@example.test members@example.test "$M/status.eml"
ok "wait_until 15 count_is alice INBOX $((n + 1))" "\"Status\" gets a reply"
st=$(imap alice last)
like "$st" 'CASE-000001 +Resolved' "listing her resolved case"
like "$st" 'CASE-000002 +Active' "and her active one"
is "$(header_of in-reply-to <<<"$st")" "<status-1.alice@example.test>" "threaded under her request"
is "$(cases)" 3 "a status request opens no case"
nb=$(mbox_count bob INBOX)
printf 'From: Bob <bob@example.test>\nTo: members@example.test\nSubject: Re: statut ?\nMessage-ID: <statut-1.bob@example.test>\n\nmerci\n' >"$M/statut.eml"
smtp_send bob@example.test members@example.test "$M/statut.eml"
ok "wait_until 15 count_is bob INBOX $((nb + 1))" "\"statut\" (French) gets a reply too"
like "$(imap bob last)" 'CASE-000003' "listing bob's case"
is "$(cases)" 3 "and opens no case"

ok "cg_stop" "casegated exits cleanly"
[ "$_tap_failed" -eq 0 ] || { cg_log_diag; cp "$CG_T/casegated.log" /tmp/conv-last.log; }
done_testing
