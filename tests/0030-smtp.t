#!/bin/bash
# 0030-smtp.t - smtp.c against the harness's Postfix: STARTTLS, implicit
# TLS, loopback plaintext, certificate name mismatch, 5xx for an unknown
# recipient (and RSET reuse after it), AUTH PLAIN over TLS.
#
# tests/smtp-driver exits 0 sent, 75 temporary, 76 permanent, 78 config.
top=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
build=${CG_BUILD:-$top/build}
. "$top/tests/lib/tap.sh"
. "$top/tests/lib/servers.sh"

driver=$build/tests/smtp-driver
[ -x "$driver" ] || skip_all "$driver not built (make $driver)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root for Postfix"
servers_start || { echo "Bail out! servers_start failed"; exit 1; }

msg=$CG_T/msg.eml
printf '%s\r\n' "From: Member Services <members@example.test>" \
    "To: alice@example.test" "Subject: smtp test 0030" \
    "Message-ID: <t0030.1@example.test>" "" "line one" ".leading dot" \
    "last line" >"$msg"

# run EXPECTED-STATUS NAME ARGS...: output in $out, status checked
run() {
	local want=$1 name=$2 st
	shift 2
	out=$("$driver" -c "$CA_PEM" -H casegate.example.test "$@" 2>&1)
	st=$?
	is "$st" "$want" "$name (exit status)" || diag "$out"
}

# the last number mbox_count prints (its format has varied)
count_is() { local c; c=$(mbox_count alice INBOX); [ "${c##*[!0-9]}" = "$1" ]; }

run 0 "STARTTLS to localhost" localhost "$SMTP_PORT" starttls - alice@example.test "$msg"
ok "wait_until 10 count_is 1" "STARTTLS mail reached alice's INBOX"
like "$(mbox_header alice INBOX return-path)" "<>" "null sender arrives as Return-Path <>"
dump=$(mbox_dump alice INBOX)
like "$dump" $'\n.leading dot' "dot-stuffing undone by the server"
like "$dump" "Received: from casegate\\.example\\.test " \
    "EHLO used our name, not gethostname()"

run 0 "implicit TLS to localhost" localhost "$SMTPS_PORT" implicit \
    members@example.test alice@example.test "$msg"
ok "wait_until 10 count_is 2" "implicit TLS mail reached alice's INBOX"

run 0 "plaintext to a loopback relay" 127.0.0.1 "$SMTP_PORT" none - alice@example.test "$msg"
ok "wait_until 10 count_is 3" "plaintext loopback mail reached alice's INBOX"

run 78 "plaintext to a remote relay refused" mx.example.test 25 none - alice@example.test "$msg"
like "$out" "only allowed for a loopback relay" "the refusal says why"

run 78 "STARTTLS to 127.0.0.1: certificate is for localhost" 127.0.0.1 "$SMTP_PORT" \
    starttls - alice@example.test "$msg"
like "$out" "name mismatch" "the refusal names the mismatch"
run 78 "implicit TLS to 127.0.0.1 refused too" 127.0.0.1 "$SMTPS_PORT" implicit \
    - alice@example.test "$msg"

out=$("$driver" -H casegate.example.test localhost "$SMTP_PORT" starttls - \
    alice@example.test "$msg" 2>&1)
is "$?" 78 "no trust anchor: certificate refused"
like "$out" "trust anchor|issuer unknown|not trusted" "the refusal says the issuer is unknown"

run 75 "implicit TLS against a plaintext port is temporary" localhost "$SMTP_PORT" \
    implicit - alice@example.test "$msg"

run 76 "unknown recipient is permanent" localhost "$SMTP_PORT" starttls - \
    nobody@example.test "$msg"
like "$out" "smtp localhost:$SMTP_PORT: RCPT TO <nobody@example.test>: 550 " \
    "the error names the step, the code and the server's text"

run 76 "two failures over one connection: RSET in between" -n 2 localhost \
    "$SMTP_PORT" starttls - nobody@example.test "$msg"
is "$(grep -c 'RCPT TO <nobody@example.test>: 550' <<<"$out")" 2 \
    "the second transaction got the same 550, not a sequence error"
like "$out" "alive=1" "the connection is still usable"

run 76 "CR/LF in the recipient never reaches the wire" localhost "$SMTP_PORT" \
    starttls - $'alice@example.test>\r\nRCPT TO:<bob@example.test' "$msg"
like "$out" "invalid recipient" "refused as an invalid address"

run 0 "AUTH PLAIN over implicit TLS" -u alice -p pw-alice localhost "$SMTPS_PORT" \
    implicit - alice@example.test "$msg"
ok "wait_until 10 count_is 4" "authenticated mail reached alice's INBOX"
run 0 "AUTH PLAIN after STARTTLS (submission)" -u alice -p pw-alice localhost \
    "$SUBMIT_PORT" starttls - alice@example.test "$msg"
ok "wait_until 10 count_is 5" "submission mail reached alice's INBOX"
run 78 "wrong password is a configuration error" -u alice -p wrong localhost \
    "$SMTPS_PORT" implicit - alice@example.test "$msg"
like "$out" "refused: 535" "the error shows the server's 535"
run 78 "no password over plaintext" -u alice -p pw-alice 127.0.0.1 "$SMTP_PORT" none \
    - alice@example.test "$msg"

done_testing
