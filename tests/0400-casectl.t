#!/bin/bash
# 0400-casectl.t - staff and admins at the command line: search, resolve,
# reopen, note, reply, set-type, assign, export, outbox, stats, status,
# against a database that casegated built from real mail (Dovecot and
# Postfix on loopback).  Checks outputs, JSON validity, exit codes, CSV
# quoting of hostile subjects, and that a reply and a resolution notice
# reach the member's mailbox threaded under her own message.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
db=$CG_T/cg/casegate.db
ctl() { "$CASECTL" -f "$conf" "$@"; }
# Exit status of a casectl call, its output thrown away.
st() { "$CASECTL" -f "$conf" "$@" >/dev/null 2>&1; echo $?; }
# Writes by the test itself, only while casegated is stopped.
sql_rw() { sqlite3 "$db" "$1"; }
# "wait_until N eq WANT CMD...": CMD's output is WANT.  (A $(...) inside
# the string given to ok would be expanded once, before the waiting.)
eq() { [ "$("${@:2}")" = "$1" ]; }
ncases() { cg_sql "SELECT count(*) FROM cases"; }
nsent() { cg_sql "SELECT count(*) FROM outbox WHERE state = 'sent' AND kind = 'ack'"; }
nunsent() { cg_sql "SELECT count(*) FROM outbox WHERE state != 'sent'"; }
json_ok() { python3 -m json.tool >/dev/null 2>&1; }
jq_py() {	# python expression over the JSON on stdin, bound to j
	python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# --- a database built by casegated from two members' mail ----------------
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
sed -e 's/^Message-ID: .*/Message-ID: <invoice-1.bob@example.test>/' \
    -e 's/^From: .*/From: Bob Member <bob@example.test>/' \
    -e 's/^Subject: .*/Subject: Invoice, "urgent"; zebraquartz/' \
    -e 's/Blue River/Green Valley/' \
    "$CG_TOP/tests/mail/royalties.eml" >"$CG_T/bob.eml"
smtp_send bob@example.test members@example.test "$CG_T/bob.eml"
ok "wait_until 10 eq 2 mbox_count members INBOX" "two members' mail reached members@"
cg_start "$conf"
ok "wait_until 15 eq 2 ncases" "casegated made two cases"
ok "wait_until 15 eq 2 nsent" \
    "and sent both acknowledgements"
ok "cg_stop" "casegated stops cleanly"
bob=$(cg_sql "SELECT public_id FROM cases WHERE member = 'bob@example.test'")
alice=$(cg_sql "SELECT public_id FROM cases WHERE member = 'alice@example.test'")
is "$alice:$bob" "CASE-000001:CASE-000002" "alice has CASE-000001, bob CASE-000002"

# --- usage, bad IDs, missing database ---------------------------------------
is "$(st frobnicate)" 64 "an unknown command exits 64"
is "$(st note)" 64 "note without arguments exits 64"
is "$(st note CASE-000099 hello)" 1 "note on a missing case exits 1"
err=$(ctl resolve $'CASE-\e[31m1' 2>&1)
is "$?" 1 "resolve of a bad case ID exits 1"
like "$err" 'no case "CASE-\\033\[31m1" \(case IDs look like CASE-000123' \
    "the error shows the ID escaped and what an ID looks like"
sed -e "s|^database = .*|database = \"$CG_T/nowhere/casegate.db\";|" "$conf" >"$CG_T/missing.conf"
err=$("$CASECTL" -f "$CG_T/missing.conf" list 2>&1)
is "$?" 66 "list with a missing database exits 66"
like "$err" 'nowhere/casegate\.db' "and names the database"
err=$("$CASECTL" -f "$CG_T/missing.conf" resolve CASE-000001 2>&1)
is "$?" 66 "resolve with a missing database exits 66"
like "$err" 'does not exist' "and says it does not exist"
ok "[ ! -e \"$CG_T/nowhere/casegate.db\" ]" "and does not create it"
printf 'gateway = { address = "x"; };\nbogus = 1;\n' >"$CG_T/bad.conf"
is "$("$CASECTL" -f "$CG_T/bad.conf" stats >/dev/null 2>&1; echo $?)" 78 \
    "a broken configuration exits 78"

# --- search --------------------------------------------------------------------
out=$(ctl search zebraquartz)
is "$?" 0 "search exits 0"
like "$out" 'CASE-000002' "search finds bob's case by a word of its subject"
ok "! grep -q CASE-000001 <<<\"\$out\"" "and not alice's"
like "$(ctl search blue river)" 'CASE-000001' "words of the text are ANDed and found"
out=$(ctl search --json green)
ok "json_ok <<<\"\$out\"" "search --json is valid JSON"
is "$(jq_py '[c["id"] for c in j]' <<<"$out")" "['CASE-000002']" "and lists exactly bob's case"
is "$(ctl search --json '"AND OR NEAR(' | jq_py 'len(j)')" 0 \
    "FTS syntax in the search text is taken literally, no error"
is "$(st search)" 64 "search without text exits 64"

# --- note, set-type, assign ------------------------------------------------------
out=$(ctl note CASE-000001 "Called Alice, she will send the statement")
is "$?:$out" "0:CASE-000001: note added" "note records an internal note"
ev=$(cg_sql "SELECT kind || '|' || detail FROM events WHERE kind = 'note'")
is "$ev" "note|Called Alice, she will send the statement" "as a note event with the text"
like "$(cg_sql "SELECT actor FROM events WHERE kind = 'note'")" 'via casectl' \
    "naming who wrote it"
is "$(cg_sql "SELECT count(*) FROM outbox WHERE kind NOT IN ('ack', 'notify')")" 0 "a note sends no mail"

out=$(ctl set-type 2 "Royalties / Statement Question")
is "$?" 0 "set-type by case number exits 0"
is "$(cg_sql "SELECT type || '/' || sub_type || '/' || ifnull(update_type, '-') FROM cases WHERE id = 2")" \
    "Royalties/Statement Question/-" "the type is stored"
out=$(ctl set-type CASE-000001 "Account Update / Member Account / Banking")
is "$?" 0 "set-type with an update type exits 0"
like "$(cg_sql "SELECT detail FROM events WHERE kind = 'type' AND case_id = 1")" \
    ' -> Account Update / Member Account / Banking$' "the change is an event with before and after"
err=$(ctl set-type CASE-000001 "Royalties / Banking" 2>&1)
is "$?" 65 "an unknown sub type exits 65"
like "$err" 'unknown sub type "Banking" of case type "Royalties" \(known: "Missing Royalties"' \
    "and the error lists the sub types there are"
is "$(st set-type CASE-000001 "Nonsense")" 65 "an unknown type exits 65"
is "$(st set-type CASE-000001 "Royalties //")" 65 "an empty part exits 65"
is "$(st set-type CASE-000099 "Royalties")" 1 "set-type of a missing case exits 1"
is "$(cg_sql "SELECT update_type FROM cases WHERE id = 1")" "Banking" \
    "failed set-type calls changed nothing"

is "$(st assign CASE-000001 licensing)" 0 "assign to a team of the rules exits 0"
is "$(cg_sql "SELECT team FROM cases WHERE id = 1")" "licensing" "the team is stored"
err=$(ctl assign CASE-000001 royalty 2>&1)
is "$?" 65 "assign to an unknown team exits 65"
like "$err" 'unknown team "royalty" \(known: "distribution", "membership"' \
    "and the error lists the teams"

# --- reply -----------------------------------------------------------------------
out=$(ctl reply CASE-000001 --from-name "Jane Staff" \
    "Dear Alice, we found the missing performances and will pay them in March.")
is "$?" 0 "reply exits 0"
like "$out" '^CASE-000001: reply to alice@example.test queued \(outbox [0-9]+\)$' "and says it is queued"
is "$(cg_sql "SELECT direction || '|' || role || '|' || to_addrs FROM messages WHERE case_id = 1 AND role = 'staff'")" \
    "out|staff|alice@example.test" "the reply is recorded on the case as a staff message"
is "$(cg_sql "SELECT state FROM outbox WHERE kind = 'reply'")" "queued" "and queued in the outbox"
printf 'Second answer from a file.\nWith two lines, and "quotes".\n' >"$CG_T/reply.txt"
is "$(st reply --file "$CG_T/reply.txt" CASE-000002)" 0 "reply --file exits 0"
is "$(cg_sql "SELECT text FROM messages WHERE case_id = 2 AND role = 'staff'")" \
    "$(cat "$CG_T/reply.txt")" "the text of the file is the reply"
is "$(st reply CASE-000001 "   ")" 65 "a blank reply exits 65"
printf '\xff\xfe bad' >"$CG_T/bad.txt"
is "$(st reply --file "$CG_T/bad.txt" CASE-000001)" 65 "a reply that is not UTF-8 exits 65"
is "$(st reply --file "$CG_T/none.txt" CASE-000001)" 66 "a missing reply file exits 66"
is "$(st reply CASE-000001)" 64 "a reply without text exits 64"
is "$(cg_sql "SELECT count(*) FROM outbox WHERE kind = 'reply'")" 2 "failed replies queued nothing"

# --- resolve and reopen ---------------------------------------------------------------
out=$(ctl resolve CASE-000001)
is "$?" 0 "resolve exits 0"
like "$out" 'Resolved; notice to alice@example.test queued' "and queues a notice"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Resolved" "the case is Resolved"
is "$(cg_sql "SELECT count(*) FROM events WHERE case_id = 1 AND kind = 'resolved'")" 1 \
    "a resolved event is recorded"
like "$(ctl resolve CASE-000001)" 'already Resolved' "resolving again changes nothing"
is "$(cg_sql "SELECT count(*) FROM outbox WHERE kind = 'resolved'")" 1 "and queues no second notice"
is "$(st reopen CASE-000001)" 0 "reopen exits 0"
is "$(cg_sql "SELECT status FROM cases WHERE id = 1")" "Active" "the case is Active again"
is "$(cg_sql "SELECT count(*) FROM events WHERE case_id = 1 AND kind = 'reopened'")" 1 \
    "a reopened event is recorded"
is "$(st resolve --no-notice CASE-000001)" 0 "resolve --no-notice exits 0"
is "$(cg_sql "SELECT status || '|' || (SELECT count(*) FROM outbox WHERE kind = 'resolved') FROM cases WHERE id = 1")" \
    "Resolved|1" "it resolves without a second notice"
is "$(st reopen)" 64 "reopen without a case exits 64"

# --- show: the new events ---------------------------------------------------------------
out=$(ctl show --json CASE-000001)
ok "json_ok <<<\"\$out\"" "show --json is valid JSON"
is "$(ctl show CASE-000001 --json | jq_py 'j["id"]')" "CASE-000001" \
    "options may also follow the case ID"
is "$(jq_py '",".join(e["kind"] for e in j["events"] if e["actor"] and "casectl" in e["actor"])' <<<"$out")" \
    "note,type,team,reply,resolved,reopened,resolved" "show lists every staff change in order"

# --- export: hostile subjects ------------------------------------------------------------
# A subject no mail header can carry (CR, LF), put in place directly.
sql_rw "UPDATE cases SET subject = 'Line one' || char(13, 10) || 'line \"two\", and three' WHERE id = 1"
ctl export --format csv >"$CG_T/export.csv"
is "$?" 0 "export --format csv exits 0"
is "$(head -c 300 "$CG_T/export.csv" | head -n 1 | od -An -c | tr -s ' ' | grep -o '\\r \\n' | head -n 1)" \
    '\r \n' "CSV lines end with CRLF"
got=$(python3 - "$CG_T/export.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))
by = {r['id']: r for r in rows}
print(len(rows))
print(repr(by['CASE-000001']['subject']))
print(repr(by['CASE-000002']['subject']))
print(by['CASE-000001']['team'], by['CASE-000002']['type'], by['CASE-000002']['sub_type'])
print(by['CASE-000001']['field:work_titles'], '|', by['CASE-000002']['field:work_titles'])
print(by['CASE-000001']['status'], by['CASE-000001']['created'][-1])
EOF
)
is "$got" "2
'Line one\\r\\nline \"two\", and three'
'Invoice, \"urgent\"; zebraquartz'
licensing Royalties Statement Question
Blue River | Green Valley
Resolved Z" "a CSV parser reads back every hostile subject exactly, fields as columns"
out=$(ctl export --format json)
ok "json_ok <<<\"\$out\"" "export --format json is valid JSON"
is "$(jq_py 'j[0]["subject"] + "|" + j[0]["fields"]["work_titles"]' <<<"$out")" \
    'Invoice, "urgent"; zebraquartz|Green Valley' "with the subject and the fields"
is "$(ctl export --format json --status resolved | jq_py '[c["id"] for c in j]')" \
    "['CASE-000001']" "export takes the list filters"
is "$(st export)" 64 "export without --format exits 64"
is "$(st export --format xml)" 64 "export with an unknown format exits 64"
is "$(st export --format csv --status maybe)" 64 "export with a bad filter exits 64"

# --- outbox -----------------------------------------------------------------------------------
out=$(ctl outbox list)
like "$out" 'reply +queued' "outbox list shows the queued reply"
out=$(ctl outbox list --json)
ok "json_ok <<<\"\$out\"" "outbox list --json is valid JSON"
is "$(jq_py 'sorted(set((o["kind"], o["state"]) for o in j))' <<<"$out")" \
    "[('ack', 'sent'), ('notify', 'sent'), ('reply', 'queued'), ('resolved', 'queued')]" "with every row's kind and state"
ack2=$(cg_sql "SELECT id FROM outbox WHERE kind = 'ack' AND case_id = 2")
sql_rw "UPDATE outbox SET state = 'failed', attempts = 20, last_error = '550 5.1.1 test refusal' WHERE id = $ack2"
sql_rw "INSERT INTO events (case_id, at, kind, actor, detail) VALUES (2, strftime('%s'), 'delivery-failed', 'casegated', 'to <bob@example.test>: 550 5.1.1 test refusal')"
is "$(ctl outbox list --json --state failed | jq_py '[o["id"] for o in j]')" "[$ack2]" \
    "outbox list --state failed shows only the failed row"
is "$(st outbox list --state maybe)" 64 "an unknown --state exits 64"
is "$(st outbox retry 9999)" 1 "retry of a missing row exits 1"
is "$(st outbox retry abc)" 64 "retry of a non-number exits 64"
queued=$(cg_sql "SELECT id FROM outbox WHERE kind = 'reply' AND case_id = 1")
is "$(st outbox retry "$queued")" 65 "retry of a queued row exits 65"
is "$(ctl outbox retry "$ack2")" "1 failed mail queued again; casegated sends it on its next round" \
    "retry of the failed row queues it again"
is "$(cg_sql "SELECT state || '|' || attempts || '|' || (next_attempt <= strftime('%s')) FROM outbox WHERE id = $ack2")" \
    "queued|0|1" "it is queued, due now, with a fresh retry schedule"
like "$(cg_sql "SELECT detail FROM events WHERE kind = 'requeued'")" "after 20 attempts: 550 5.1.1" \
    "the retry is an event that keeps the old error"
is "$(ctl outbox retry --all-failed)" "0 failed mails queued again; casegated sends them on its next round" \
    "retry --all-failed with nothing failed does nothing"

# --- stats ------------------------------------------------------------------------------------
out=$(ctl stats --json)
ok "json_ok <<<\"\$out\"" "stats --json is valid JSON"
is "$(jq_py 'j["cases"]["total"], j["cases"]["by_status"], j["cases"]["by_team"]["licensing"]' <<<"$out")" \
    "(2, {'Active': 1, 'Resolved': 1}, 1)" "stats counts cases by status and team"
is "$(jq_py 'j["cases"]["by_type"]' <<<"$out")" \
    "{'Account Update / Member Account': 1, 'Royalties / Statement Question': 1}" "and by type"
is "$(jq_py 'j["first_staff_reply"]["cases"], j["first_staff_reply"]["median_seconds"] >= 0' <<<"$out")" \
    "(2, True)" "the median time to the first staff reply covers both replied cases"
is "$(jq_py 'j["backlog"]' <<<"$out")" \
    "{'active_cases': 1, 'outbox_queued': 4, 'outbox_failed': 0}" "the backlog counts active cases and queued mail"
out=$(ctl stats)
like "$out" 'First staff reply: median [0-9]+s \(over 2 cases\)' "stats for people shows the median"
like "$out" 'Backlog: 1 active case, 4 mails queued, 0 failed' "and the backlog"

# --- status -----------------------------------------------------------------------------------
out=$(ctl status)
like "$out" 'members: pid [0-9]+ \(not running\), last poll .*, 0 messages waiting' \
    "status shows the stopped daemon's last report on its mailbox"
like "$out" 'Outbox: 4 queued' "status shows the outbox queue"
like "$out" 'delivery-failed +to <bob@example.test>: 550 5.1.1 test refusal' "and the last errors"
sql_rw "INSERT OR REPLACE INTO daemon_status (account, pid, started, last_poll, waiting, last_error, updated) VALUES ('members', $$, strftime('%s') - 100, strftime('%s') - 5, 3, 'imap members: connection refused', strftime('%s'))"
out=$(ctl status --json)
ok "json_ok <<<\"\$out\"" "status --json is valid JSON"
is "$(jq_py '[(d["account"], d["waiting"], d["pid_alive"], d["last_error"]) for d in j["daemon"]]' <<<"$out")" \
    "[('members', 3, True, 'imap members: connection refused')]" "status shows what the daemon reported"
is "$(jq_py 'j["outbox"]["queued"], j["outbox"]["failed"], j["errors"][0]["kind"]' <<<"$out")" \
    "(4, 0, 'delivery-failed')" "with the outbox counts and the errors"
like "$(ctl status)" 'members: pid [0-9]+ \(running\), last poll .* \([0-9]+s ago\), 3 messages waiting' \
    "status for people reads as a sentence"

# --- delivery: the member gets the reply and the notice, threaded -------------------------------
cg_start "$conf"
ok "wait_until 20 eq 3 mbox_count alice INBOX" \
    "alice receives the acknowledgement, the reply and the resolution notice"
ok "wait_until 20 eq 3 mbox_count bob INBOX" \
    "bob receives his reply and the acknowledgement sent again"
ok "wait_until 10 eq 0 nunsent" \
    "every outbox row is sent"
ok "cg_stop" "casegated stops cleanly"
irt=$(mbox_header alice INBOX in-reply-to | sort | uniq -c | tr -s ' ')
is "$irt" " 3 <royalties-1.alice@example.test>" \
    "all three mails to alice answer her own message (In-Reply-To)"
is "$(mbox_header alice INBOX references | sort | uniq -c | tr -s ' ')" \
    " 3 <royalties-1.alice@example.test>" \
    "and their References name it"
like "$(mbox_header alice INBOX subject | tr '\n' ' ')" '(\[CASE-000001\].*){3}' \
    "every subject carries the case token"
like "$(mbox_header alice INBOX from | tr '\n' '|')" 'Jane Staff via Member Services <members@example\.test>' \
    "the reply comes from the staff name via the gateway"
body=$(mbox_dump alice INBOX)
like "$body" 'we found the missing performances' "the reply's text reaches alice"
like "$body" 'CASE-000001\) has been resolved' "the resolution notice reaches alice"
auto=$(mbox_header alice INBOX auto-submitted | tr '\n' ' ')
like "$auto" 'auto-generated' "the notice is marked Auto-Submitted: auto-generated"
is "$(ctl outbox list --json --state queued | jq_py 'len(j)')" 0 "outbox list shows nothing queued"

[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
