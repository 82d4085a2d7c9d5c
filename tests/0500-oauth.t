#!/bin/bash
# 0500-oauth.t - OAuth2 (XOAUTH2) against Dovecot's oauth2 passdb, which
# validates HS256 JWTs locally, and Postfix whose SMTP AUTH goes through
# that Dovecot: IMAP AUTHENTICATE XOAUTH2 and SMTP AUTH XOAUTH2 with
# tokens from a command or a file, refresh before expiry, and each way
# it fails - the token command, the expiry, the server's refusal - named
# as such, with no login attempted when there is no usable token.
# Ends with casegated itself on OAuth2 for both IMAP and SMTP.
#
# tests/oauth-driver exits 0 ok, 75 temporary, 76 permanent, 78 config.
export CG_TOP=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
export CG_BUILD=${CG_BUILD:-$CG_TOP/build}
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"
. "$CG_TOP/tests/lib/oauth.sh"

driver=$CG_BUILD/tests/oauth-driver
[ -x "$driver" ] || skip_all "$driver not built (make $driver)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root for Postfix"
servers_start || { echo "Bail out! servers_start failed"; exit 1; }
oauth_dovecot_enable || { echo "Bail out! Dovecot with an oauth2 passdb did not start"; exit 1; }

dlog=$CG_T/dovecot/dovecot.log
plog=$CG_T/postfix/maillog
tok=$CG_T/oauth
mkdir -m 700 "$tok"
now=$(date +%s)
good=$(oauth_jwt members $((now + 3600)))
expired=$(oauth_jwt members $((now - 120)))
alices=$(oauth_jwt alice $((now + 3600)))
long=$(oauth_jwt members $((now + 3600)) 1800)	# as long as a Microsoft 365 token
diag "token sizes: ${#good} bytes, long one ${#long} bytes"

# A token command: a script in the private directory.
mkcmd() {		# name body
	printf '#!/bin/sh\n%s\n' "$2" >"$tok/$1"
	chmod 700 "$tok/$1"
}
mkcmd good "echo $good"
mkcmd json "printf '{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":3599}' $good"
mkcmd expired-plain "echo $expired"
# The provider says an hour, the token itself says otherwise: the server decides.
mkcmd expired-json "printf '{\"access_token\":\"%s\",\"expires_in\":3600}' $expired"
mkcmd alices "echo $alices"
mkcmd long "echo $long"
mkcmd failing "echo 'AADSTS70008: the refresh token has expired' >&2; exit 2"
mkcmd counter "printf x >>$tok/runs; printf '{\"access_token\":\"%s\",\"expires_in\":%s}' $good \${EXPIRES:-3600}"

# run EXPECTED-STATUS NAME ARGS...: output in $out
run() {
	local want=$1 name=$2 st
	shift 2
	out=$("$driver" -c "$CA_PEM" "$@" 2>&1)
	st=$?
	is "$st" "$want" "$name (exit status)" || diag "$out"
}
logins() { grep -c "imap-login: Info: Login: user=<members>, method=XOAUTH2" "$dlog"; }
# Every connection to imap-login ends in a line naming its session.
sessions() { grep -c "imap-login: .*session=<" "$dlog"; }
runs() { local r; r=$(cat "$tok/runs" 2>/dev/null); echo "${#r}"; }

# Dovecot's login process buffers little while its auth process is not
# ready; wait until the greeting announces XOAUTH2.
ok "wait_until 10 _cg_greets $IMAP_PORT '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2'" \
    "Dovecot offers AUTH=XOAUTH2"

# --- IMAP ----------------------------------------------------------------
n0=$(logins)
run 0 "IMAPS: XOAUTH2 with a JWT from a token command" -t "$tok/good" \
    imap members localhost "$IMAPS_PORT" implicit
is "$out" "login 1 ok" "logged in"
is "$(logins)" $((n0 + 1)) "Dovecot logged a login by XOAUTH2"

run 0 "STARTTLS: XOAUTH2 with the provider's JSON answer" -t "$tok/json" \
    imap members localhost "$IMAP_PORT" starttls

printf '{"access_token":"%s","expires_in":3600}\n' "$good" >"$tok/file"
chmod 600 "$tok/file"
run 0 "a token file (mode 0600)" -f "$tok/file" imap members localhost "$IMAPS_PORT" implicit

run 0 "a 2.6 KB token (Microsoft size) over IMAP" -t "$tok/long" \
    imap members localhost "$IMAPS_PORT" implicit

sleep 0.5	# let Dovecot's log catch up before counting
s0=$(sessions)
chmod 644 "$tok/file"
run 78 "a token file readable by others is refused" -f "$tok/file" \
    imap members localhost "$IMAPS_PORT" implicit
like "$out" "OAuth2 token file $tok/file is readable by group or others \(mode 0644\); run chmod 600" \
    "the error says why and what to do"

run 75 "a failing token command" -t "$tok/failing" imap members localhost "$IMAPS_PORT" implicit
like "$out" "^oauth-driver: imap members@localhost:$IMAPS_PORT: OAuth2 token command $tok/failing exited with status 2 \(its stderr: \"AADSTS70008: the refresh token has expired\"\)" \
    "the error names the token command, its exit status and its complaint"

run 78 "a token that expired already" -t "$tok/expired-plain" \
    imap members localhost "$IMAPS_PORT" implicit
like "$out" "OAuth2 token from command $tok/expired-plain expired at [0-9-]+ [0-9:]+ UTC \(1[0-9]{2} s ago, by the JWT exp claim\)" \
    "the error says the token expired, when, and how that is known"
is "$(sessions)" "$s0" "without a usable token no connection was made at all"

run 78 "a token the server refuses (expired, by its own clock)" -t "$tok/expired-json" \
    imap members localhost "$IMAPS_PORT" implicit
like "$out" "imap members@localhost:$IMAPS_PORT: server refused the OAuth2 token: Authentication failed\. \(status 401, schemes bearer, scope mail\)" \
    "the error says the server refused the token, with its challenge"
ok "grep -q 'oauth2(members,.*Token has expired' '$dlog'" "Dovecot refused it as expired"

run 78 "another user's token is refused" -t "$tok/alices" \
    imap members localhost "$IMAPS_PORT" implicit
like "$out" "server refused the OAuth2 token" "as a refusal"
secrets=$(grep -cF -e "$good" -e "$expired" -e "$alices" <<<"$out")
is "$secrets" 0 "no error quotes a token"

out=$("$driver" -v -v -c "$CA_PEM" -t "$tok/good" imap members localhost "$IMAPS_PORT" \
    implicit 2>&1)
like "$out" "C: 2 CAPABILITY" "with -vv the protocol trace is on"
is "$(grep -cF -e "$good" -e AUTHENTICATE <<<"$out")" 0 \
    "but it shows neither the token nor the AUTHENTICATE line"

# --- refresh -------------------------------------------------------------
rm -f "$tok/runs"
run 0 "three logins in one process" -n 3 -t "$tok/counter" \
    imap members localhost "$IMAPS_PORT" implicit
is "$(runs)" 1 "share one token: the command ran once"
rm -f "$tok/runs"
out=$(EXPIRES=3 "$driver" -c "$CA_PEM" -n 3 -w 2 -r 2 -t "$tok/counter" \
    imap members localhost "$IMAPS_PORT" implicit 2>&1)
is "$?" 0 "three logins 2 s apart with a 3 s token, refreshed with 2 s left"
is "$(runs)" 3 "a fresh token was fetched before each login"

# --- SMTP ----------------------------------------------------------------
msg=$CG_T/msg.eml
printf '%s\r\n' "From: Member Services <members@example.test>" \
    "To: alice@example.test" "Subject: oauth test 0500" \
    "Message-ID: <t0500.1@example.test>" "" "sent with XOAUTH2" >"$msg"
count_is() { local c; c=$(mbox_count alice INBOX); [ "${c##*[!0-9]}" = "$1" ]; }

run 0 "SMTPS: AUTH XOAUTH2 (token as initial response)" -t "$tok/good" \
    -s "members@example.test,alice@example.test,$msg" \
    smtp members localhost "$SMTPS_PORT" implicit
ok "wait_until 10 count_is 1" "the mail reached alice"
ok "grep -q 'sasl_method=XOAUTH2, sasl_username=members' '$plog'" \
    "Postfix logged the XOAUTH2 login"

run 0 "submission (STARTTLS): a 2.6 KB token after a 334" -t "$tok/long" \
    -s "members@example.test,alice@example.test,$msg" \
    smtp members localhost "$SUBMIT_PORT" starttls
ok "wait_until 10 count_is 2" "that mail reached alice too"

run 78 "SMTP: the server refuses an expired token" -t "$tok/expired-json" \
    smtp members localhost "$SMTPS_PORT" implicit
like "$out" "smtp localhost:$SMTPS_PORT: server refused the OAuth2 token: 535 5\.7\.8 .*\(status 401, schemes bearer, scope mail\)" \
    "the error says the server refused the token"

run 78 "SMTP: a relay without AUTH XOAUTH2" -t "$tok/good" \
    smtp members localhost "$SMTP_PORT" starttls
like "$out" "relay does not offer AUTH XOAUTH2" "is named as such"

run 75 "SMTP: a failing token command" -t "$tok/failing" \
    smtp members localhost "$SMTPS_PORT" implicit
like "$out" "^oauth-driver: smtp localhost:$SMTPS_PORT: OAuth2 token command $tok/failing exited with status 2" \
    "names the token command"

# --- casegated on OAuth2 -------------------------------------------------
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
# IMAP: token command; SMTP: submission with a token file.
printf '%s\n' "$good" >"$tok/smtp-token"
chmod 600 "$tok/smtp-token"
awk -v cmd="$tok/counter" -v port="$SUBMIT_PORT" -v file="$tok/smtp-token" '
	/^imap = \{/ { sect = "imap" }
	/^smtp = \{/ { sect = "smtp" }
	sect == "imap" && /password_file/ {
		print "  auth = \"oauth2\";"; print "  token_command = \"" cmd "\";"; next }
	sect == "smtp" && /^  port =/ {
		print "  port = " port ";"; print "  user = \"members\";"
		print "  auth = \"oauth2\";"; print "  token_file = \"" file "\";"; next }
	{ print }' "$conf" >"$conf.new" && mv "$conf.new" "$conf"
out=$("$CASEGATED" -n -f "$conf" 2>&1)
is "$?:$out" "0:configuration OK" "casegated -n accepts auth = \"oauth2\" for IMAP and SMTP"

members_is() { local c; c=$(mbox_count members INBOX); [ "${c##*[!0-9]}" = "$1" ]; }
smtp_send bob@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
ok "wait_until 10 members_is 1" "a member's mail waits in members@"
cases_is() { [ "$(cg_sql "SELECT count(*) FROM cases" 2>/dev/null)" = "$1" ]; }
# every outbox row sent (the acknowledgement, and whatever else the daemon queued)
outbox_sent() {
	[ "$(cg_sql "SELECT count(*) > 0 AND count(*) = sum(state = 'sent') FROM outbox" \
	    2>/dev/null)" = 1 ]
}
rm -f "$tok/runs"
n0=$(logins)
x0=$(grep -c 'sasl_method=XOAUTH2' "$plog")
cg_start "$conf"
ok "wait_until 20 cases_is 1" "casegated logged in with XOAUTH2 and made a case"
ok "wait_until 20 outbox_sent" "its acknowledgement went out through SMTP AUTH XOAUTH2"
ok "wait_until 10 count_is 3" "and reached the member"
ok "[ $(logins) -gt $n0 ]" "Dovecot saw casegated's XOAUTH2 login"
ok "[ $(grep -c 'sasl_method=XOAUTH2' "$plog") -gt $x0 ]" "Postfix saw casegated's XOAUTH2 login"
cg_stop
ok "! grep -qF -e '$good' '$CG_T/casegated.log'" "the daemon's log holds no token"

# The token command fails: the daemon says so, and never tries to log in.
sed -i "s|token_command = \"$tok/counter\"|token_command = \"$tok/failing\"|" "$conf"
sleep 0.5
s0=$(sessions)
: >"$CG_T/casegated.log"
cg_start "$conf"
ok "wait_until 10 cg_log_has 'OAuth2 token command $tok/failing exited with status 2'" \
    "casegated logs the failing token command"
cg_stop
is "$(sessions)" "$s0" "and made no IMAP connection"

# The server refuses the token: the log line says so.
sed -i "s|token_command = \"$tok/failing\"|token_command = \"$tok/expired-json\"|" "$conf"
: >"$CG_T/casegated.log"
cg_start "$conf"
ok "wait_until 10 cg_log_has 'server refused the OAuth2 token: '" \
    "casegated logs \"server refused the OAuth2 token: ...\""
cg_stop
done_testing
