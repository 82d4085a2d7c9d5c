#!/bin/bash
# 0020-imap.t - imap.c and tls.c against the harness's Dovecot: IMAPS
# and STARTTLS login, listing, batched and one-by-one fetch (byte for
# byte), a zero-length and a 50 MB message (memory stays flat), MOVE,
# IDLE and polling (including mail announced during the MOVE before the
# wait); and every refusal: host-name mismatch, self-signed and expired
# certificates (with no login attempt reaching the server), a wrong
# password, STARTTLS missing or followed by injected plaintext, plain
# IMAP, and a folder name carrying CR/LF.
#
# tests/imap-driver exits 0 ok, 75 temporary, 78 config.
top=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
build=${CG_BUILD:-$top/build}
. "$top/tests/lib/tap.sh"
. "$top/tests/lib/servers.sh"

driver=$build/tests/imap-driver
[ -x "$driver" ] || skip_all "$driver not built (make $driver)"
[ "$(id -u)" -eq 0 ] || skip_all "needs root for the test servers"
servers_start || { echo "Bail out! servers_start failed"; exit 1; }

common=(--host localhost --ca "$CA_PEM" --user members
    --password-file "$CG_T/pw/members" --timeout 10 --spool "$CG_T/spool")
imaps=(--port "$IMAPS_PORT" --tls implicit)
starttls=(--port "$IMAP_PORT" --tls starttls)
dlog=$CG_T/dovecot/dovecot.log

# run WANT NAME ARGS...: stdout in $out, stderr in $err, status checked
run() {
	local want=$1 name=$2 st
	shift 2
	out=$("$driver" "$@" 2>"$CG_T/driver.err")
	st=$?
	err=$(cat "$CG_T/driver.err")
	is "$st" "$want" "$name (exit status)" || diag "$err"
}

count() {	# folder: messages in members' folder
	local c
	c=$(doveadm -c "$DOVECOT_CONF" -f flow mailbox status -u members \
	    messages "$1" 2>/dev/null) || { echo 0; return; }
	echo "${c##*=}"
}

# Successful logins of members in a Dovecot log, after the log process
# has caught up.
logins() { sleep 0.3; grep -c 'Login: user=<members>' "$1" 2>/dev/null; }

ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# servers.sh runs one "bad" Dovecot at a time and has no stop for it
# yet: stop the last Dovecot it started.
bad_stop() {
	_cg_dovecot_kill "${_cg_dovecot_pids[-1]}"
	_cg_bad_dir=
}

# --- test mail: three messages, one with 8-bit text and a long line ----
mkdir -p "$CG_T/msgs"
for i in 1 2 3; do
	{
		printf 'From: Alice <alice@example.test>\nTo: members@example.test\n'
		printf 'Subject: imap test %s\nMessage-ID: <t0020.%s@example.test>\n' "$i" "$i"
		printf 'Content-Type: text/plain; charset=utf-8\n\n'
		printf 'Grüße, message %s.\n' "$i"
		head -c $((i * 3000)) /dev/zero | tr '\0' x
		printf '\n.\n..leading dots\nend\n'
	} >"$CG_T/msgs/m$i"
	mbox_put members INBOX "$CG_T/msgs/m$i"
done
# RFC822.SIZE counts CRLF line ends; Maildir stores LF.
vsize() { echo $(( $(wc -c <"$1") + $(wc -l <"$1") )); }

# --- login ----------------------------------------------------------
run 0 "IMAPS login" "${imaps[@]}" "${common[@]}" login
is "$out" ok "IMAPS login prints ok"
run 0 "STARTTLS login" "${starttls[@]}" "${common[@]}" -vv login
like "$err" "C: 1 STARTTLS" "STARTTLS is the first command"
like "$err" "C: [0-9]+ CAPABILITY.*C: [0-9]+ CAPABILITY" \
    "CAPABILITY asked again after STARTTLS and after LOGIN"
ok "! grep -q 'pw-members' '$CG_T/driver.err'" "the password is not in the -vv trace"
like "$err" "MOVE yes, UIDPLUS yes" "MOVE and UIDPLUS seen after login"

# --- list -----------------------------------------------------------
want_list=$(for i in 1 2 3; do echo "$i $(vsize "$CG_T/msgs/m$i")"; done)
run 0 "list over STARTTLS" "${starttls[@]}" "${common[@]}" list
is "$out" "$want_list" "list: UIDs 1-3 with RFC822.SIZE"
run 0 "list from 3" "${imaps[@]}" "${common[@]}" list 3
is "$out" "3 $(vsize "$CG_T/msgs/m3")" "list from 3 gives only UID 3"
run 0 "list from 99" "${imaps[@]}" "${common[@]}" list 99
is "$out" "" "list from 99 is empty (the n:* quirk filtered out)"

# --- fetch ----------------------------------------------------------
# check_fetch OUTPUT: each "UID SIZE PATH" line matches message UID
check_fetch() {
	local uid size path bad=0 n=0
	while read -r uid size path; do
		n=$((n + 1))
		[ "$size" = "$(vsize "$CG_T/msgs/m$uid")" ] || { diag "uid $uid: size $size"; bad=1; }
		cmp -s <(tr -d '\r' <"$path") "$CG_T/msgs/m$uid" || { diag "uid $uid: content differs"; bad=1; }
		grep -q $'\r$' "$path" || { diag "uid $uid: no CRLF in $path"; bad=1; }
	done <<<"$1"
	[ "$n" = 3 ] && [ "$bad" = 0 ]
}
run 0 "batched fetch over IMAPS" "${imaps[@]}" "${common[@]}" -vv fetch all
ok "check_fetch \"\$out\"" "fetched messages are byte-identical (modulo CRLF)"
is "$(grep -c 'BODY.PEEK\[\]' <<<"$err")" 1 "three messages in one UID FETCH"
batched=$out
run 0 "one-by-one fetch over STARTTLS" "${starttls[@]}" "${common[@]}" -vv fetch-each all
is "$out" "$batched" "one-by-one fetch gives the same files"
is "$(grep -c 'BODY.PEEK\[\]' <<<"$err")" 3 "one UID FETCH per message"
run 0 "batch size 2" "${imaps[@]}" "${common[@]}" --batch 2 -vv fetch all
is "$out" "$batched" "batches of 2 give the same files"
like "$err" "UID FETCH 1:2 .*UID FETCH 3 " "batches are 1:2 and 3"
run 0 "fetch of gone and repeated UIDs" "${imaps[@]}" "${common[@]}" fetch 2 2 77
is "$(cut -d' ' -f1 <<<"$out")" 2 "only UID 2 comes back, once"

: | mbox_put members Empty -
run 0 "fetch a zero-length message" "${imaps[@]}" "${common[@]}" --folder Empty fetch all
read -r uid size path <<<"$out"
ok "[ '$uid $size' = '1 0' ] && [ -f '$path' ] && [ ! -s '$path' ]" \
    "a zero-length message becomes an empty spool file"

# --- move -----------------------------------------------------------
run 0 "ensure Processed" "${imaps[@]}" "${common[@]}" ensure Processed
run 0 "ensure Processed again" "${imaps[@]}" "${common[@]}" ensure Processed
run 0 "move UID 1" "${imaps[@]}" "${common[@]}" -vv move Processed 1
like "$err" "UID MOVE 1 Processed" "UID MOVE is used"
is "$(count INBOX) $(count Processed)" "2 1" "1 moved: 2 in INBOX, 1 in Processed"
run 0 "move the rest" "${starttls[@]}" "${common[@]}" move Processed all
is "$(count INBOX) $(count Processed)" "0 3" "INBOX empty, 3 in Processed"
run 0 "non-ASCII folder" "${imaps[@]}" "${common[@]}" -vv ensure "Entwürfe"
like "$err" "Entw&APw-rfe" "folder name sent as modified UTF-7"

# --- idle -----------------------------------------------------------
"$driver" "${imaps[@]}" "${common[@]}" -vv idle 20 >"$CG_T/idle.out" 2>"$CG_T/idle.err" &
idle_pid=$!
servers_cleanup_add "kill $idle_pid"
ok "wait_until 10 grep -q 'C: [0-9]* IDLE' '$CG_T/idle.err'" "driver is in IDLE"
t0=$(ms)
mbox_put members INBOX "$CG_T/msgs/m1"
wait "$idle_pid"
elapsed=$(( $(ms) - t0 ))
is "$(cat "$CG_T/idle.out")" newmail "IDLE reports new mail"
ok "[ $elapsed -lt 3000 ]" "within 3 s of delivery (took $elapsed ms)"

t0=$(ms)
run 0 "IDLE woken by the self-pipe" "${imaps[@]}" "${common[@]}" --wake-after 1 idle 20
is "$out" woken "IDLE returns woken"
elapsed=$(( $(ms) - t0 ))
ok "[ $elapsed -lt 4000 ]" "woken after about 1 s (took $elapsed ms)"
run 0 "IDLE times out" "${imaps[@]}" "${common[@]}" idle 1
is "$out" timeout "nothing new: timeout"

# Without IDLE: sleep for the poll interval, then NOOP.
"$driver" "${imaps[@]}" "${common[@]}" --no-idle --poll 1 -vv idle 20 \
    >"$CG_T/poll.out" 2>"$CG_T/poll.err" &
poll_pid=$!
servers_cleanup_add "kill $poll_pid"
ok "wait_until 10 grep -q 'C: [0-9]* SELECT' '$CG_T/poll.err'" "polling driver has selected INBOX"
mbox_put members INBOX "$CG_T/msgs/m2"
wait "$poll_pid"
is "$(cat "$CG_T/poll.out")" newmail "NOOP polling reports new mail"
ok "grep -q 'C: [0-9]* NOOP' '$CG_T/poll.err' && ! grep -q 'C: [0-9]* IDLE' '$CG_T/poll.err'" \
    "polling used NOOP, not IDLE"
run 0 "polling times out" "${imaps[@]}" "${common[@]}" --no-idle --poll 1 idle 1
is "$out" timeout "polling, nothing new: timeout"

# Mail that comes while the daemon is moving what it listed is announced
# in the MOVE's response ("* n EXISTS"); libetpan forgets that when
# IDLE starts, and Dovecot does not say it again: the wait must report
# it at once rather than sleep until the next IDLE restart.
run 0 "ensure Race" "${imaps[@]}" "${common[@]}" ensure Race
for mode in idle poll; do
	extra=()
	[ $mode = poll ] && extra=(--no-idle --poll 30)
	mkfifo "$CG_T/go.$mode"
	"$driver" "${imaps[@]}" "${common[@]}" "${extra[@]}" -vv move-then-idle Race 20 \
	    <"$CG_T/go.$mode" >"$CG_T/race.out" 2>"$CG_T/race.err" &
	race_pid=$!
	servers_cleanup_add "kill $race_pid"
	exec 5>"$CG_T/go.$mode"
	ok "wait_until 10 grep -q '^listed [1-9]' '$CG_T/race.out'" "$mode: the pass has listed INBOX"
	mbox_put members INBOX "$CG_T/msgs/m3"
	t0=$(ms)
	echo go >&5
	exec 5>&-
	wait "$race_pid"
	elapsed=$(( $(ms) - t0 ))
	is "$(tail -n 1 "$CG_T/race.out")" newmail "$mode: the wait reports it"
	ok "[ $elapsed -lt 5000 ]" "$mode: at once, not after the wait ($elapsed ms)"
done

# libetpan select()s: a socket numbered >= FD_SETSIZE would abort the
# process ("bit out of range"), so imap.c refuses first.
run 75 "socket fd would be >= FD_SETSIZE" "${imaps[@]}" "${common[@]}" --fill-fds 1100 login
like "$err" "lowest free file descriptor is [0-9]+: libetpan cannot wait on descriptors >= 1024" \
    "refused with a reason, no abort"

# --- refusals: certificates, before any login -------------------------
n0=$(logins "$dlog")
run 78 "IMAPS to 127.0.0.1 (cert is for localhost)" "${imaps[@]}" "${common[@]}" \
    --host 127.0.0.1 login
like "$err" "imap members@127\\.0\\.0\\.1:$IMAPS_PORT: certificate for 127\\.0\\.0\\.1 not trusted: name mismatch" \
    "IMAPS: name mismatch, with account prefix"
run 78 "STARTTLS to 127.0.0.1" "${starttls[@]}" "${common[@]}" --host 127.0.0.1 login
like "$err" "certificate for 127\\.0\\.0\\.1 not trusted: name mismatch" "STARTTLS: name mismatch"
run 78 "no CA given" "${imaps[@]}" "${common[@]}" --ca /dev/null login
like "$err" "CA file" "an unusable CA file is named"
run 78 "system CAs only" "${imaps[@]}" --host localhost --user members \
    --password-file "$CG_T/pw/members" login
like "$err" "not trusted: issuer unknown" "test CA unknown to the system store"
is "$(logins "$dlog")" "$n0" "Dovecot saw no login from the refused connections"

for kind in selfsigned expired; do
	bad_dovecot_start "$kind" || { echo "Bail out! bad_dovecot_start $kind"; exit 1; }
	case $kind in
	selfsigned) why="self-signed, issuer unknown" ;;
	expired) why="expired" ;;
	esac
	run 78 "$kind certificate, IMAPS" --port "$BAD_IMAPS_PORT" --tls implicit "${common[@]}" login
	like "$err" "certificate for localhost not trusted: $why" "$kind: IMAPS refused ($why)"
	run 78 "$kind certificate, STARTTLS" --port "$BAD_IMAP_PORT" --tls starttls "${common[@]}" login
	like "$err" "certificate for localhost not trusted: $why" "$kind: STARTTLS refused"
	is "$(logins "$CG_T/bad-$kind/dovecot.log")" 0 "$kind: the server saw no login"
	bad_stop
done

# --- refusals: login, plaintext, STARTTLS tricks ------------------------
( umask 077; echo wrong-password >"$CG_T/pw/wrong" )
run 78 "wrong password" "${imaps[@]}" "${common[@]}" --password-file "$CG_T/pw/wrong" login
like "$err" "imap members@localhost:$IMAPS_PORT: login refused: .*Authentication failed" \
    "wrong password: login refused with the server's text"
run 78 "plain IMAP" --port "$IMAP_PORT" --tls none "${common[@]}" login
like "$err" "plaintext IMAP is not supported" "plain IMAP refused"

fake_port=$((IMAP_PORT + 9))
for mode in nostarttls inject; do
	flog=$CG_T/fake-$mode.log
	: >"$flog"
	perl "$top/tests/lib/fake-imap.pl" "$fake_port" "$flog" "$mode" \
	    "$CG_T/certs/server.pem" "$CG_T/certs/server.key" 2>>"$flog" &
	fpid=$!
	servers_cleanup_add "kill $fpid"
	wait_until 5 grep -q ready "$flog"
	run 78 "fake server: $mode" --port "$fake_port" --tls starttls "${common[@]}" login
	case $mode in
	nostarttls) like "$err" "server does not offer STARTTLS; refusing to log in over plaintext" \
	    "STARTTLS missing: refused" ;;
	inject) like "$err" "sent data after its STARTTLS reply" "injected plaintext after STARTTLS: refused" ;;
	esac
	wait "$fpid" 2>/dev/null
	ok "! grep -qi 'LOGIN' '$flog'" "$mode: no LOGIN reached the server"
done

# --- folder names -----------------------------------------------------
run 78 "folder with CR/LF" "${imaps[@]}" "${common[@]}" -vv \
    --folder $'INBOX\r\n9 DELETE Processed' select
like "$err" "folder name .* refused" "CR/LF folder refused"
ok "! grep -q 'C: .*\\(SELECT\\|DELETE\\)' '$CG_T/driver.err'" "no SELECT was sent"
run 78 "move to a folder with LF" "${imaps[@]}" "${common[@]}" -vv move $'P\n9 DELETE INBOX' all
ok "! grep -q 'C: .*\\(MOVE\\|DELETE\\)' '$CG_T/driver.err'" "no MOVE was sent"
is "$(count Processed)" 3 "Processed still there"

# --- a 50 MB message: streamed, memory flat -----------------------------
big=$CG_T/msgs/big
{
	printf 'From: alice@example.test\nTo: members@example.test\nSubject: big\n\n'
	head -c 37500000 /dev/urandom | base64 -w 76
} >"$big"
mbox_put members Big "$big"
run 0 "fetch a 50 MB message" "${imaps[@]}" "${common[@]}" --folder Big fetch all
read -r uid size path <<<"$out"
ok "cmp -s <(tr -d '\\r' <'$path') '$big'" "50 MB message byte-identical"
rss=$(sed -n 's/.*max RSS \([0-9]*\) kB.*/\1/p' <<<"$err")
diag "50 MB message ($size bytes): $err"
if grep -qa __asan_init "$driver"; then
	# ASan's shadow memory and quarantine dwarf what is measured here.
	ok 0 "peak RSS ($rss kB) # SKIP not meaningful under ASan"
else
	ok "[ '${rss:-999999}' -lt 40000 ]" "peak RSS stays under 40 MB (${rss} kB)"
fi

done_testing
