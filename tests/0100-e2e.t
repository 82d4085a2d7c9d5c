#!/bin/bash
# 0100-e2e.t - the spine: a member's mail over IMAP becomes exactly one
# case in SQLite and one threaded acknowledgement over SMTP, through a
# real Dovecot and a real Postfix, with verified TLS; a restart or a
# re-delivered copy creates nothing new; a bad certificate means no login.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
logins() { grep -c "imap-login: Login: user=<members>" "$1" 2>/dev/null; }
cases() { cg_sql "SELECT count(*) FROM cases"; }
# Predicates for wait_until, evaluated afresh at every poll.
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
cases_is() { [ "$(cases)" = "$1" ]; }
connects_above() { [ "$(grep -c 'connected to' "$CG_T/casegated.log")" -gt "$1" ]; }

# --- configuration check ---------------------------------------------
out=$("$CASEGATED" -n -f "$conf" 2>&1)
is "$?:$out" "0:configuration OK" "casegated -n accepts the test configuration"

sed -e 's/^  port = [0-9]*;/  port = "993";/' -e 's/^  tls = "implicit";/  tls = "plain";/' \
    "$conf" >"$CG_T/bad.conf"
out=$("$CASEGATED" -n -f "$CG_T/bad.conf" 2>&1)
st=$?
is "$st" 78 "casegated -n exits 78 on a bad configuration"
like "$out" "bad\.conf:[0-9]+: \"imap\.port\" must be an integer" "and names file:line of a wrong type"
like "$out" "bad\.conf:[0-9]+: \"imap\.tls\" must be" "and reports every error at once"
out=$("$CASEGATED" -n -f "$CG_T/missing.conf" 2>&1)
is "$?:$out" "78:$CG_T/missing.conf: cannot open: No such file or directory" \
    "a missing config file is a clear error"

# --- one member message -----------------------------------------------
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
ok "wait_until 10 count_is members INBOX 1" \
    "the member's mail reached members@ through Postfix and Dovecot"
t0=$(date +%s%N)
cg_start "$conf"
ok "wait_until 15 cases_is 1" "exactly one case exists"
ok "wait_until 15 count_is alice INBOX 1" \
    "the member received an acknowledgement"
diag "mail in mailbox to acknowledgement delivered: $(( ($(date +%s%N) - t0) / 1000000 )) ms (includes daemon start)"
ok "wait_until 10 count_is members Processed 1" \
    "the original sits in the processed folder"
is "$(mbox_count members INBOX)" 0 "and no longer in INBOX"

subject=$(mbox_header alice INBOX subject)
like "$subject" 'Missing royalties for my song \[CASE-000001\]' \
    "the acknowledgement's subject carries the original subject and the case ID"
like "$(mbox_header alice INBOX in-reply-to)" '<royalties-1\.alice@example\.test>' \
    "its In-Reply-To is the member's Message-ID"
like "$(mbox_header alice INBOX references)" '<royalties-1\.alice@example\.test>' \
    "its References name the member's Message-ID"
like "$(mbox_header alice INBOX message-id)" '<CASE-000001\.[0-9a-f]{32}@example\.test>' \
    "its Message-ID carries the case ID and a random part"
like "$(mbox_header alice INBOX auto-submitted)" 'auto-replied' \
    "it is marked Auto-Submitted: auto-replied"
like "$(mbox_header alice INBOX from)" 'Member Services.*<members@example\.test>' \
    "it comes from the gateway"
body=$(mbox_dump alice INBOX)
like "$body" 'CASE-000001' "the acknowledgement's body states the case ID"
is "$(cg_sql "SELECT state FROM outbox WHERE kind = 'ack'")" "sent" "the acknowledgement's outbox row is marked sent"
is "$(cg_sql "SELECT member || '|' || status || '|' || subject FROM cases")" \
    "alice@example.test|Active|Missing royalties for my song" \
    "the case records member, status and subject"

json=$("$CASECTL" -f "$conf" list --json)
like "$json" '"id":"CASE-000001"' "casectl list --json shows the case"
show=$("$CASECTL" -f "$conf" show CASE-000001)
like "$show" 'Member: +Alice Member <alice@example.test>' "casectl show shows the member"
like "$show" 'Blue River' "casectl show shows the message text"
"$CASECTL" -f "$conf" show CASE-000099 >/dev/null 2>&1
is "$?" 1 "casectl show of a missing case exits 1"

# --- restart: nothing new -----------------------------------------------
t1=$(date +%s%N)
cg_stop
st=$?
is "$st" 0 "SIGTERM stops casegated with exit status 0"
ms=$(( ($(date +%s%N) - t1) / 1000000 ))
ok "[ $ms -lt 5000 ]" "it stops within seconds ($ms ms)"
n=$(grep -c "connected to" "$CG_T/casegated.log")
cg_start "$conf"
ok "wait_until 15 connects_above $n" \
    "casegated restarts and reconnects"
sleep 2
is "$(cases)" 1 "a restart creates no second case"
is "$(mbox_count alice INBOX)" 1 "and sends no second acknowledgement"

# --- crash window: the same message again, as if the move had been lost --
digest=$(cg_sql "SELECT raw_digest FROM messages WHERE direction = 'in'")
mbox_put members INBOX "$CG_T/cg/spool/raw/${digest:0:2}/$digest"
ok "wait_until 15 count_is members Processed 2" \
    "a second copy of a stored message is moved out of INBOX"
is "$(cases)" 1 "it creates no second case"
sleep 1
is "$(mbox_count alice INBOX)" 1 "and no second acknowledgement"
ok "cg_log_has 'duplicate'" "the log says it was a duplicate"
ok "cg_stop" "casegated exits cleanly"

# --- STARTTLS on the plain IMAP port -------------------------------------
sed -e 's/^Message-ID: .*/Message-ID: <starttls-1.bob@example.test>/' \
    -e 's/^From: .*/From: Bob <bob@example.test>/' \
    -e 's/^Subject: .*/Subject: Change of address/' \
    "$CG_TOP/tests/mail/royalties.eml" >"$CG_T/bob.eml"
smtp_send bob@example.test members@example.test "$CG_T/bob.eml"
cg_conf_write "$CG_T/starttls.conf" starttls "$IMAP_PORT"
cg_start "$CG_T/starttls.conf"
ok "wait_until 15 cases_is 2" "over STARTTLS the second member's mail becomes a case"
ok "wait_until 15 count_is bob INBOX 1" "and bob gets his acknowledgement"
like "$(mbox_header bob INBOX subject)" '\[CASE-000002\]' "with the next case ID"
ok "cg_stop" "casegated exits cleanly"

# --- certificate for another name: refused before LOGIN --------------------
sed -e 's/^Message-ID: .*/Message-ID: <tls-2.bob@example.test>/' "$CG_T/bob.eml" >"$CG_T/bob2.eml"
mbox_put members INBOX "$CG_T/bob2.eml"
before=$(logins "$CG_T/dovecot/dovecot.log")
cg_conf_write "$CG_T/ip.conf" implicit "$IMAPS_PORT" 127.0.0.1
cg_start "$CG_T/ip.conf"
ok "wait_until 10 cg_log_has 'certificate.*127\.0\.0\.1.*(name|host)'" \
    "connecting to 127.0.0.1 (certificate for localhost only) is refused with a reason"
sleep 0.5
is "$(logins "$CG_T/dovecot/dovecot.log")" "$before" "no LOGIN reached the server"
is "$(mbox_count members INBOX)" 1 "nothing was fetched or moved"
is "$(cases)" 2 "and no case was created"
ok "cg_stop" "casegated stays up while refusing and exits cleanly"

# --- self-signed certificate: refused -----------------------------------
bad_dovecot_start selfsigned
: >"$CG_T/casegated.log"
cg_conf_write "$CG_T/self.conf" implicit "$BAD_IMAPS_PORT"
cg_start "$CG_T/self.conf"
ok "wait_until 10 cg_log_has 'certificate.*not trusted'" \
    "a self-signed certificate is refused with a reason"
sleep 0.5
is "$(logins "$CG_T/bad-selfsigned/dovecot.log")" 0 "no LOGIN reached the self-signed server"
ok "cg_stop" "casegated exits cleanly"

[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
