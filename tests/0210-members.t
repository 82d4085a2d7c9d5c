#!/bin/bash
# 0210-members.t - the member directory and mail in the member's
# language, over a real Dovecot and Postfix: casectl members import
# (bad files give file:line, exit 65 and change nothing), list and
# show; a French member gets French mail (acknowledgement, staff relay,
# resolution notice, status list) even when writing in English; an
# unknown sender writing in French gets French, one writing in English
# English, Content-Language decides over the words; members.unknown =
# flag tags the case (casectl and the team notification show it);
# members.unknown = hold quarantines the mail with no case and no
# acknowledgement, and casectl quarantine release then makes the case,
# whether the sender was imported meanwhile or not.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
for u in claire dave erin frank gina; do
	mail_user_add "$u" "pw-$u" || { echo "Bail out! cannot add user $u"; exit 1; }
done
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
base=$(cat "$conf")
write_conf() {	# members.unknown
	cat >"$conf" <<CONF
$base
staff = {
  addresses = [ "staff@example.test" ];
  authserv_id = "mx.example.test";
  require_auth = true;
};
members = { unknown = "$1"; };
CONF
}
write_conf flag
M=$CG_T/mail
mkdir -p "$M"
ctl() { "$CASECTL" -f "$conf" "$@"; }
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
sql_is() { [ "$(cg_sql "$1")" = "$2" ]; }

# The newest message of a mailbox: "Subject: ..." and its text part, decoded.
last_mail() {	# user
	python3 - "$1" "$IMAPS_PORT" "$CA_PEM" "$(cat "$CG_T/pw/$1")" <<'PY'
import email, email.policy, imaplib, ssl, sys
user, port, ca, pw = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx)
m.login(user, pw)
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "ALL")
uid = data[0].split()[-1]
typ, data = m.uid("FETCH", uid, "(BODY.PEEK[])")
msg = email.message_from_bytes(data[0][1], policy=email.policy.default)
print("Subject: " + str(msg["Subject"]))
print("From: " + str(msg["From"]))
print()
print(msg.get_body(preferencelist=("plain",)).get_content())
m.logout()
PY
}

# mail FILE FROM-NAME FROM-ADDR SUBJECT BODY [EXTRA-HEADER]
mail() {
	{
		echo "From: $2 <$3>"
		echo "To: members@example.test"
		echo "Subject: $4"
		echo "Message-ID: <m-$RANDOM$RANDOM@example.test>"
		[ -n "$6" ] && echo "$6"
		echo "MIME-Version: 1.0"
		echo "Content-Type: text/plain; charset=utf-8"
		echo "Content-Transfer-Encoding: 8bit"
		echo
		printf '%s\n' "$5"
	} >"$1"
}
FR_TEXT=$'Bonjour,\n\nje n\'ai pas reçu mes droits pour ma chanson « Rivière » diffusée à la radio.\nPouvez-vous vérifier ?\n\nCordialement,\nClaire'
EN_TEXT=$'Hello,\n\nI have not been paid for my song that was played on the radio.\nCould you please check?\n\nRegards'

cg_start "$conf"
ok "wait_until 10 test -s '$CG_T/cg/casegate.db'" "casegated created its database"
ok "wait_until 10 'ctl members list >/dev/null 2>&1'" "casectl members list works on the new database"

# --- import: errors give file:line and change nothing --------------------------
cat >"$M/dup.csv" <<'CSV'
member number,name,email addresses,language
1001,Élodie Roy,bob@example.test,fr
1002,Alice Martin,alice@example.test;BOB@example.test,en
CSV
out=$(ctl members import "$M/dup.csv" 2>&1)
st=$?
is "$st" 65 "a file giving one address to two members: exit 65"
like "$out" "dup\\.csv:3: address bob@example\\.test is also given for member 1001 on line 2" \
    "the error names file:line, the address and the other member"
is "$(ctl members list --json)" "[]" "and nothing is imported"
printf 'member number,name,email addresses,language\n1001,"Élodie Roy,bob@example.test,fr\n' >"$M/open.csv"
out=$(ctl members import "$M/open.csv" 2>&1)
is "$?" 65 "an unterminated quote: exit 65"
like "$out" 'open\.csv:2: a quoted field that starts on this row is never closed' "with file:line"
printf 'member number,name,email addresses,language\n1001,\xc9lodie,bob@example.test,fr\n' >"$M/latin1.csv"
out=$(ctl members import "$M/latin1.csv" 2>&1)
like "$out" 'latin1\.csv:2: field 2 is not valid UTF-8' "a Latin-1 file is refused with file:line"
is "$(cg_sql 'SELECT count(*) FROM members')" 0 "the directory is still empty"

# --- import, list, show ------------------------------------------------------------
printf '\xef\xbb\xbfMember Number,Name,Email Addresses,Language\r\n1001,"Roy, Élodie",bob@example.test,fr\r\n1002,Alice Martin,alice@example.test,en\r\n' >"$M/members.csv"
run_ok "a good file (BOM, CRLF, quoted name) imports" ctl members import "$M/members.csv"
json=$(ctl members list --json)
like "$json" '"number":"1001","name":"Roy, Élodie","language":"fr","addresses":\["bob@example\.test"\]' \
    "members list --json shows the French member"
like "$(ctl members list)" '1002 +en +Alice Martin +alice@example\.test' "members list shows a table"
like "$(ctl members show BOB@example.test)" 'Member: +1001' "members show finds a member by address"
like "$(ctl members show 1002)" 'Addresses: +alice@example\.test' "and by number"
ctl members show 9999 >/dev/null 2>&1
is "$?" 1 "members show of an unknown member: exit 1"
# an address of member 1002, who is not in the file: refused as a whole
printf 'number,email\n1003,carl@example.test\n1004,alice@example.test\n' >"$M/steal.csv"
out=$(ctl members import "$M/steal.csv" 2>&1)
is "$?" 65 "a file taking another member's address: exit 65"
like "$out" 'steal\.csv:3: address alice@example\.test belongs to member 1002' "with file:line"
is "$(cg_sql 'SELECT group_concat(number) FROM members')" "1001,1002" "and member 1003 was not added"

# --- a French member gets French mail, even writing in English ----------------------
mail "$M/bob.eml" "Bob" bob@example.test "Missing royalties" "$EN_TEXT"
smtp_send bob@example.test members@example.test "$M/bob.eml"
ok "wait_until 20 count_is bob INBOX 1" "the French member gets an acknowledgement"
ack=$(last_mail bob)
like "$ack" 'Nous avons bien reçu votre message « Missing royalties »' "in French (the directory decides)"
like "$ack" 'Bonjour Roy, Élodie,' "addressed by the directory's name"
bob_case=$(cg_sql "SELECT public_id FROM cases WHERE member = 'bob@example.test'")
is "$(cg_sql "SELECT member_number || '|' || lang FROM cases WHERE public_id = '$bob_case'")" \
    "1001|fr" "the case is linked to member 1001, language fr"
like "$(ctl show --json "$bob_case")" '"member_number":"1001","language":"fr","tags":\[\]' \
    "casectl show --json displays the member number"
like "$(ctl list --json)" "\"id\":\"$bob_case\"[^}]*\"member_number\":\"1001\"" \
    "and casectl list --json too"
like "$(ctl show "$bob_case")" 'Member no\.: +1001' "casectl show names the member number"

# a staff reply and #resolve: relayed and announced in French
notify_id=$(cg_sql "SELECT o.message_id FROM outbox o JOIN cases c ON c.id = o.case_id WHERE o.kind = 'notify' AND c.public_id = '$bob_case'")
cat >"$M/staff.eml" <<EOF
Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=staff@example.test
From: Sam Staff <staff@example.test>
To: members@example.test
Subject: Re: New case: Missing royalties [$bob_case]
Message-ID: <staff-fr-1@example.test>
In-Reply-To: <$notify_id>
References: <$notify_id>

#resolve
Le paiement est parti hier.
EOF
smtp_send staff@example.test members@example.test "$M/staff.eml"
ok "wait_until 20 count_is bob INBOX 3" "the staff reply and the resolution notice reach the member"
relay=$(cg_sql "SELECT text FROM messages WHERE direction = 'out' AND role = 'staff'")
like "$relay" 'Le paiement est parti hier\.' "the relay carries the staff text"
like "$relay" 'Pour nous répondre, il vous suffit de répondre à ce message\.' \
    "wrapped in the French relay template"
like "$(last_mail bob)" 'est désormais traitée' "the resolution notice is French"

# status in French
mail "$M/statut.eml" "Bob" bob@example.test "statut" "merci"
n=$(mbox_count bob INBOX)
smtp_send bob@example.test members@example.test "$M/statut.eml"
ok "wait_until 20 count_is bob INBOX $((n + 1))" "a status request is answered"
st_mail=$(last_mail bob)
like "$st_mail" 'Voici vos demandes' "in French"
like "$st_mail" "$bob_case +Résolu" "with the status in French"

# --- unknown senders: language from their mail; flag mode ------------------------
mail "$M/claire.eml" "Claire" claire@example.test "Droits non reçus" "$FR_TEXT"
smtp_send claire@example.test members@example.test "$M/claire.eml"
ok "wait_until 20 count_is claire INBOX 1" "an unknown sender writing in French gets an acknowledgement"
like "$(last_mail claire)" 'Nous avons bien reçu votre message' "in French (detected)"
claire_case=$(cg_sql "SELECT public_id FROM cases WHERE member = 'claire@example.test'")
is "$(cg_sql "SELECT coalesce(member_number, '-') || '|' || tags FROM cases WHERE public_id = '$claire_case'")" \
    "-|unknown-member" "members.unknown = flag: no member, tagged unknown-member"
like "$(ctl show "$claire_case")" 'Tags: +unknown-member' "casectl show displays the tag"
like "$(ctl list --json)" '"tags":\["unknown-member"\]' "casectl list --json too"
like "$(ctl list)" "$claire_case.*\\[unknown-member\\]" "and casectl list"
ok "wait_until 20 'cg_sql \"SELECT count(*) FROM outbox o JOIN cases c ON c.id = o.case_id WHERE o.kind = '\\''notify'\\'' AND o.state = '\\''sent'\\'' AND c.public_id = '\\''$claire_case'\\''\" | grep -qx 1'" \
    "the team is notified"
notify_text=$(cg_sql "SELECT m.text FROM messages m JOIN cases c ON c.id = m.case_id WHERE m.direction = 'out' AND m.subject LIKE 'New case:%' AND c.public_id = '$claire_case'")
like "$notify_text" 'Flags: +unknown-member \(the sender is not in the member directory\)' \
    "the team notification shows the flag"
like "$notify_text" 'Member no: -' "and that there is no member number"

mail "$M/dave.eml" "Dave" dave@example.test "Missing royalties" "$EN_TEXT"
smtp_send dave@example.test members@example.test "$M/dave.eml"
ok "wait_until 20 count_is dave INBOX 1" "an unknown sender writing in English gets an acknowledgement"
dave_ack=$(last_mail dave)
like "$dave_ack" 'thank you for your message "Missing royalties"' "in English (detected)"
[[ $dave_ack != *"Nous avons"* ]]
ok $? "with no French in it"
is "$(cg_sql "SELECT detail FROM events e JOIN cases c ON c.id = e.case_id WHERE e.kind = 'language' AND c.member = 'dave@example.test'")" \
    "en (detected)" "the case records the language and why"

mail "$M/erin.eml" "Erin" erin@example.test "Missing royalties" "$EN_TEXT" "Content-Language: fr-CA"
smtp_send erin@example.test members@example.test "$M/erin.eml"
ok "wait_until 20 count_is erin INBOX 1" "an unknown sender with Content-Language: fr-CA gets an acknowledgement"
like "$(last_mail erin)" 'Nous avons bien reçu' "in French (Content-Language beats the words)"

# --- hold mode -----------------------------------------------------------------------
ok "cg_stop" "casegated stops for the config change"
write_conf hold
cg_start "$conf"
cases_before=$(cg_sql 'SELECT count(*) FROM cases')
mail "$M/frank.eml" "Frank" frank@example.test "Missing royalties" "$EN_TEXT"
smtp_send frank@example.test members@example.test "$M/frank.eml"
mail "$M/gina.eml" "Gina" gina@example.test "Droits non reçus" "$FR_TEXT"
smtp_send gina@example.test members@example.test "$M/gina.eml"
ok "wait_until 20 sql_is \"SELECT count(*) FROM quarantine WHERE state = 'held'\" 2" \
    "members.unknown = hold: mail from unknown senders goes to the quarantine"
like "$(ctl quarantine list --json)" '"reason":"unknown sender[^"]*","from":"frank@example\.test"' \
    "with the reason \"unknown sender\""
mail "$M/alice.eml" "Alice" alice@example.test "Another question" "$EN_TEXT"
smtp_send alice@example.test members@example.test "$M/alice.eml"
ok "wait_until 20 count_is alice INBOX 1" "a known member still gets a case and an acknowledgement"
is "$(cg_sql 'SELECT count(*) FROM cases')" "$((cases_before + 1))" "the held mail made no case"
is "$(mbox_count frank INBOX)" 0 "and no acknowledgement"

# released while still unknown: an admin's decision, not held again, but flagged
fq=$(cg_sql "SELECT id FROM quarantine WHERE from_addr = 'frank@example.test'")
run_ok "casectl quarantine release of the unknown sender" ctl quarantine release "$fq"
ok "wait_until 20 count_is frank INBOX 1" "the release makes the case and sends the acknowledgement"
is "$(cg_sql "SELECT coalesce(member_number, '-') || '|' || tags || '|' || lang FROM cases WHERE member = 'frank@example.test'")" \
    "-|unknown-member|en" "the case is tagged unknown-member, in English"
# imported meanwhile: the release links the case to the member
printf 'member number,name,email addresses,language\n1005,Gina Bellini,gina@example.test,\n' >"$M/gina.csv"
run_ok "the sender is imported meanwhile" ctl members import "$M/gina.csv"
gq=$(cg_sql "SELECT id FROM quarantine WHERE from_addr = 'gina@example.test'")
run_ok "casectl quarantine release" ctl quarantine release "$gq"
ok "wait_until 20 count_is gina INBOX 1" "the release acknowledges"
is "$(cg_sql "SELECT member_number || '|' || coalesce(tags, '-') || '|' || lang FROM cases WHERE member = 'gina@example.test'")" \
    "1005|-|fr" "linked to the member just imported, not tagged, French from her mail"
like "$(last_mail gina)" 'Bonjour Gina Bellini,' "addressed by the directory's name, in French"

ok "cg_stop" "casegated exits cleanly"
[ "$_tap_failed" -eq 0 ] || { cg_log_diag; cp "$CG_T/casegated.log" /tmp/members-last.log; }
done_testing
