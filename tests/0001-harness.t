#!/bin/bash
# 0001-harness.t - the test servers themselves: if this fails, every other
# integration test would fail for reasons that are not casegate's.
# Checks delivery SMTP -> Postfix -> LMTP -> Maildir, the TLS facts the
# IMAP and SMTP tests rely on (the test CA verifies "localhost" but not
# 127.0.0.1; the bad servers are refused), direct Maildir writes, and a
# teardown that leaves no process, directory or port lock behind.

top=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top/tests/lib/tap.sh"
. "$top/tests/lib/servers.sh"

[ "$(id -u)" -eq 0 ] || skip_all "needs root (Postfix)"
t_begin=$(_cg_now_us)
ms_since() { echo $(( ($(_cg_now_us) - $1) / 1000 )); }

t0=$(_cg_now_us)
servers_start || { echo "Bail out! servers_start failed"; exit 1; }
diag "servers_start took $(ms_since "$t0") ms"

# --- the environment a test gets -----------------------------------------

ports="$IMAP_PORT $IMAPS_PORT $LMTP_PORT $SMTP_PORT $SMTPS_PORT $SUBMIT_PORT $AUTH_PORT"
is "$(echo $ports | wc -w)" 7 "seven ports exported"
is "$(printf '%s\n' $ports | sort -u | wc -l)" 7 "ports are distinct"
ok '[ -d "$CG_T" ] && [ -s "$CA_PEM" ] && [ -s "$DOVECOT_CONF" ]' \
    "CG_T, CA_PEM and DOVECOT_CONF exist"
is "$(stat -c %a "$CG_T/pw/members")" 600 "password file is mode 0600"
is "$(cat "$CG_T/pw/alice")" pw-alice "password file holds the password"

# Plain IMAP LOGIN over loopback with that password.
imap_login() {		# port user password
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	read -r -t 5 line <&3
	printf 'a LOGIN %s %s\r\nb LOGOUT\r\n' "$2" "$3" >&3
	while read -r -t 5 line <&3; do
		case "$line" in
		a\ *) exec 3<&- 3>&-; [[ $line == "a OK"* ]]; return ;;
		esac
	done
	exec 3<&- 3>&-
	return 1
}
ok 'imap_login "$IMAP_PORT" alice "$(cat "$CG_T/pw/alice")"' "IMAP LOGIN alice"
ok '! imap_login "$IMAP_PORT" alice wrong' "IMAP LOGIN with a wrong password fails"
# Dovecot's auth penalty would delay every later login from 127.0.0.1
# by 2 s or more; the harness turns it off.
t0=$(_cg_now_us)
imap_login "$IMAP_PORT" bob pw-bob
ok $? "IMAP LOGIN bob right after a failure"
ok "$(( $(ms_since "$t0") > 1900 ))" "... without an auth penalty delay"

# --- SMTP -> Postfix -> Dovecot --------------------------------------------

msg=$CG_T/m1.eml
# Hostile bits on purpose: a lone dot, a dot-started line, %TOKENS% and a
# literal backslash-n must all arrive unchanged.
printf '%s\n' "From: Alice <alice@example.test>" "To: members@example.test" \
    "Subject: harness test" "Message-ID: <h1@example.test>" "" \
    "first line" "." ".leading dot" "%DATE% and \\n stay" >"$msg"
t0=$(_cg_now_us)
ok 'smtp_send alice@example.test members@example.test "$msg"' \
    "smtp_send alice -> members"
ok 'mbox_wait_count members INBOX 1 10' "message delivered to members/INBOX"
diag "SMTP to mailbox took $(ms_since "$t0") ms"
is "$(mbox_header members INBOX subject)" "harness test" "mbox_header subject"
is "$(mbox_header members INBOX message-id)" "<h1@example.test>" \
    "mbox_header message-id"
body=$(mbox_dump members INBOX | sed '1,/^$/d')
is "$body" "$(sed '1,/^$/d' "$msg")" "body arrives byte for byte"
like "$(mbox_dump members INBOX)" $'^=== uid 1\n' "mbox_dump starts with the uid line"
is "$(mbox_count members INBOX)" 1 "mbox_count INBOX"
is "$(mbox_count members NoSuchFolder)" 0 "mbox_count of a missing folder is 0"
ok '! mbox_count nosuchuser INBOX 2>/dev/null' "mbox_count of an unknown user fails"
ok '! smtp_send alice@example.test nobody@example.test "$msg" 2>/dev/null' \
    "smtp_send to an unknown user fails"
ok 'smtp_send alice@example.test someone@elsewhere.example "$msg"' \
    "mail to another domain is accepted"
ok 'mbox_wait_count sink INBOX 1 10' "... and lands in sink"

ok 'mail_user_add Carol pw-carol' "mail_user_add Carol"
ok 'smtp_send bob@example.test carol@example.test "$msg"' "smtp_send to the new user"
ok 'mbox_wait_count carol INBOX 1 10' "delivered to carol"
ok 'wait_until 5 "[ \"\$(mbox_count carol INBOX)\" = 1 ]"' "wait_until with a snippet"

# --- direct Maildir writes ---------------------------------------------------

printf 'Subject: put one\nMessage-ID: <p1@example.test>\n\nbody\n' >"$CG_T/p1.eml"
printf 'Subject: put two\nMessage-ID: <p2@example.test>\n\nbody\n' |
    mbox_put members Processed -
ok 'mbox_put members Processed "$CG_T/p1.eml"' "mbox_put into a new folder"
is "$(mbox_count members Processed)" 2 "mbox_count Processed"
is "$(mbox_header members Processed message-id | tr '\n' ' ')" \
    "<p2@example.test> <p1@example.test> " "UIDs follow the order of mbox_put"
ok '[ -d "$CG_T/dovecot/home/members/Maildir/.Processed/new" ]' \
    "folder Processed is Maildir/.Processed"
ok 'mbox_put members Archive/2024 "$CG_T/p1.eml"' "mbox_put into Archive/2024"
like "$(doveadm -c "$DOVECOT_CONF" mailbox list -u members)" \
    $'(^|\n)Archive/2024(\n|$)' "Dovecot lists Archive/2024 with separator /"

# --- TLS -----------------------------------------------------------------------

# s_client: the verify result decides, stdin is closed at once.
tls_try() {		# extra s_client args...
	timeout 10 openssl s_client -CAfile "$CA_PEM" -verify_return_error \
	    "$@" </dev/null 2>&1
}
out=$(tls_try -connect "127.0.0.1:$IMAPS_PORT" -servername localhost \
    -verify_hostname localhost)
ok $? "IMAPS verifies as localhost with the test CA"
like "$out" "Verify return code: 0 \\(ok\\)" "... verify return code 0"
out=$(tls_try -connect "127.0.0.1:$IMAPS_PORT" -verify_ip 127.0.0.1)
ok $(( ! $? )) "IMAPS does not verify as 127.0.0.1 (no IP SAN)"
like "$out" "IP address mismatch" "... IP address mismatch"
out=$(tls_try -connect "127.0.0.1:$IMAPS_PORT" -verify_hostname 127.0.0.1)
ok $(( ! $? )) "IMAPS does not verify with host name 127.0.0.1"
out=$(tls_try -starttls imap -connect "127.0.0.1:$IMAP_PORT" \
    -servername localhost -verify_hostname localhost)
ok $? "IMAP STARTTLS verifies"
out=$(tls_try -starttls smtp -connect "127.0.0.1:$SMTP_PORT" \
    -servername localhost -verify_hostname localhost)
ok $? "SMTP STARTTLS verifies"
out=$(tls_try -connect "127.0.0.1:$SMTPS_PORT" -servername localhost \
    -verify_hostname localhost)
ok $? "SMTPS (implicit TLS) verifies"
out=$(tls_try -starttls smtp -connect "127.0.0.1:$SUBMIT_PORT" \
    -servername localhost -verify_hostname localhost)
ok $? "submission STARTTLS verifies"
if perl -MNet::SSLeay -e 1 2>/dev/null; then
	out=$(swaks --server "127.0.0.1:$SMTPS_PORT" --tls-on-connect \
	    --auth PLAIN --auth-user alice --auth-password pw-alice \
	    --from alice@example.test --to bob@example.test 2>&1)
	ok $? "SMTPS AUTH PLAIN as alice (swaks)"
	ok 'mbox_wait_count bob INBOX 1 10' "... delivered to bob"
else
	ok 0 "# SKIP swaks has no TLS (libnet-ssleay-perl)"
	ok 0 "# SKIP swaks has no TLS"
fi

for kind in selfsigned expired wronghost; do
	ok 'bad_dovecot_start $kind' "bad_dovecot_start $kind"
	out=$(tls_try -connect "127.0.0.1:$BAD_IMAPS_PORT" \
	    -servername localhost -verify_hostname localhost)
	ok $(( ! $? )) "$kind: IMAPS refused by verification"
	case $kind in
	selfsigned) want="self-signed certificate" ;;
	expired) want="certificate has expired" ;;
	wronghost) want="hostname mismatch" ;;
	esac
	like "${out,,}" "$want" "$kind: $want"
	out=$(tls_try -starttls imap -connect "127.0.0.1:$BAD_IMAP_PORT" \
	    -servername localhost -verify_hostname localhost)
	ok $(( ! $? )) "$kind: STARTTLS refused by verification"
	bad_dovecot_stop
done
ok '! _cg_greets "$BAD_IMAP_PORT" "* OK"' "bad_dovecot_stop stopped it"

# --- teardown, in a child shell that starts and exits ---------------------------

child=$(bash -c '. "$1/tests/lib/servers.sh"
	servers_start 2>/dev/null || exit 1
	bad_dovecot_start selfsigned 2>/dev/null || exit 1
	# Something the harness does not know about, as a script that
	# restarts a server itself might leave: the teardown sweeps it.
	(cd "$CG_T" && exec sleep 300) </dev/null >/dev/null 2>&1 &
	echo "$!" >"$CG_T/stray.pid"
	echo "$CG_T $IMAP_PORT $SMTP_PORT $BAD_IMAP_PORT $_cg_port_lock $(cat "$CG_T/stray.pid")"
	echo "procs $(servers_procs | wc -l)"
	echo "stop_begin $(_cg_now_us)" ' _ "$top" 2>"$CG_T/child.err")
read -r c_dir c_imap c_smtp c_bad c_lock c_stray <<<"$(sed -n 1p <<<"$child")"
t_end=$(_cg_now_us)
like "$(sed -n 2p <<<"$child")" '^procs [1-9]' "child instance had processes" ||
    diag "$(cat "$CG_T/child.err")"
like "$(cat "$CG_T/child.err")" "stopping what still runs from $c_dir:.*sleep 300" \
    "... and its teardown said what it swept"
stop_begin=$(sed -n 's/^stop_begin //p' <<<"$child")
[ -z "$stop_begin" ] || diag "child teardown took about $(( (t_end - stop_begin) / 1000 )) ms"
ok '[ -n "$c_dir" ] && [ ! -e "$c_dir" ]' "child's temp dir removed"
is "$(servers_procs "$c_dir" | wc -l)" 0 "no process of the child's instance remains"
ok '! _cg_greets "$c_imap" "* OK" && ! _cg_greets "$c_smtp" "220 " && ! _cg_greets "$c_bad" "* OK"' \
    "child's ports are closed"
ok '[ -n "$c_lock" ] && [ ! -L "$c_lock" ]' "child's port lock released"
ok '[ -n "$c_stray" ] && ! _cg_alive "$c_stray"' \
    "a process the harness did not start, running from the temp dir, is stopped too"

diag "0001-harness.t took $(ms_since "$t_begin") ms before its own teardown"
done_testing
