#!/bin/bash
# 0620-signals-deliver.t - signals, MTA pipe delivery and a database
# that cannot be written.
#
#  - SIGTERM in the middle of a batch: exit 0 within seconds, every
#    committed message moved, the rest still in INBOX; a restart takes
#    the rest, no case twice.
#  - SIGHUP with a broken rules file keeps the old rules (and says so);
#    a fixed file is picked up and changes the next classification.
#  - casegated --deliver: exit 0 and a case; the same message again:
#    exit 0, no second case; a full disk or a read-only database: exit
#    75 (EX_TEMPFAIL, the MTA retries) and nothing half-stored.
#  - In daemon mode a full disk, a read-only database and a database
#    locked by another process leave the message on the server; the
#    daemon logs it, keeps running, and stores it once it can.
#
# How the faults are made (the tests run as root, so chmod is no use):
#  - full disk: RLIMIT_FSIZE, `ulimit -f` for --deliver and `prlimit
#    --pid` on the running daemon, which ignores SIGXFSZ, so a write
#    past the limit fails with EFBIG like a write to a full disk;
#  - read-only database: `chattr +i` on the database files (ext4), which
#    makes even writes through descriptors opened before fail (EPERM);
#  - locked database: the sqlite3 shell holding BEGIN IMMEDIATE longer
#    than the daemon's busy timeout (5 s).
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"
. "$CG_TOP/tests/lib/faults.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cg_conf_set "$conf" imap timeout 5
sed -i 's/^outbox = .*/outbox = { retry_min = 1; retry_max = 2; };/' "$conf"
cp "$CG_TOP/rules/default.rules" "$CG_T/my.rules"
sed -i "s|^rules = .*|rules = \"$CG_T/my.rules\";|" "$conf"
db=$CG_T/cg/casegate.db

q() { cg_sql "$1"; }
cases() { q "SELECT count(*) FROM cases"; }
cases_is() { [ "$(cases)" = "$1" ]; }
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
alive() { [ -n "$CG_PID" ] && kill -0 "$CG_PID" 2>/dev/null; }
exited() { ! kill -0 "$1" 2>/dev/null; }
# A small member message (under 1 KiB); prints nothing.
mk_mail() {		# file n from
	cat >"$1" <<-EOF
	From: <$3>
	To: Member Services <members@example.test>
	Subject: Signals test $2
	Message-ID: <signals-$2@example.test>
	Date: Mon, 02 Mar 2026 10:00:00 +0000

	Question number $2.
	EOF
}
put_mail() { mk_mail "$CG_T/s$1.eml" "$1" "${2:-member$1@example.test}"; mbox_put members INBOX "$CG_T/s$1.eml"; }

# --- SIGTERM in the middle of a batch ------------------------------------
B=300
mkdir -p "$CG_T/batch"
for ((i = 1; i <= B; i++)); do
	mk_mail "$CG_T/batch/$(printf %05d "$i").eml" "b$i" "b$i@members.test"
done
mbox_put_many members INBOX "$CG_T/batch"
# The daemon logs through a pipe, not straight into the file: under the
# file size limit below its own log writes would fail too (in production
# it logs to the journal or syslog, which are sockets).
cg_start_piped() {
	"$CASEGATED" -d -v -f "$1" > >(cat >>"$CG_T/casegated.log") 2>&1 &
	CG_PID=$!
	servers_cleanup_add 'cg_stop'
}
cg_start_piped "$conf"
ok "wait_until 20 cg_log_has 'new-case'" "casegated starts on a batch of $B"
pid=$CG_PID
t0=$(now_us)
kill -TERM "$pid"
ok "wait_until 10 exited $pid" "SIGTERM mid-batch: it exits"
wait "$pid"; st=$?; CG_PID=
ms=$(ms_since "$t0")
is "$st" 0 "with status 0"
ok "[ $ms -lt 5000 ]" "within seconds ($ms ms)"
c=$(cases); p=$(mbox_count members Processed); i=$(mbox_count members INBOX)
diag "SIGTERM after $c of $B cases: stopped in $ms ms, $p moved, $i left in INBOX"
ok "[ $c -gt 0 ] && [ $c -lt $B ]" "it stopped in the middle ($c of $B)"
is "$p" "$c" "every committed message was moved before exiting"
is "$i" "$((B - c))" "the rest is still in INBOX"
cg_start_piped "$conf"
ok "wait_until 60 count_is members INBOX 0" "after a restart INBOX empties"
is "$(cases)" "$B" "exactly $B cases"
is "$(mbox_count members Processed)" "$B" "and $B messages in Processed"
is "$(q "SELECT count(DISTINCT message_id) FROM messages WHERE direction = 'in'")" "$B" \
    "each stored once"
n=$B

# --- SIGHUP: a broken rules file keeps the old rules -----------------------
prio_of() { q "SELECT priority FROM cases WHERE id = $1"; }
put_mail $((n + 1))
ok "wait_until 15 cases_is $((n + 1))" "a general question becomes a case"
is "$(prio_of $((n + 1)))" normal "with the default rule's priority"
printf '\nthis is { not a rule file\n' >>"$CG_T/my.rules"
kill -HUP "$CG_PID"
ok "wait_until 10 cg_log_has 'reload failed: the running configuration is kept'" \
    "SIGHUP with a broken rules file: the log says the old rules are kept"
ok "cg_log_has 'my\.rules:[0-9]+'" "and names the broken file and line"
ok "alive" "casegated keeps running"
put_mail $((n + 2))
ok "wait_until 15 cases_is $((n + 2))" "the next mail still becomes a case"
is "$(prio_of $((n + 2)))" normal "classified by the old rules"
sed -e '/^this is { not a rule file$/d' \
    -e '/^default = {/,/^};/s/priority = "normal"/priority = "high"/' \
    "$CG_TOP/rules/default.rules" >"$CG_T/my.rules"
kill -HUP "$CG_PID"
ok "wait_until 10 cg_log_has 'configuration reloaded'" "SIGHUP with a fixed file reloads"
put_mail $((n + 3))
ok "wait_until 20 cases_is $((n + 3))" "the next mail becomes a case"
is "$(prio_of $((n + 3)))" high "classified by the new rules"
n=$((n + 3))

# --- daemon: full disk ---------------------------------------------------------
blocked() {		# what: the message stays in INBOX, the daemon lives
	sleep 4
	is "$(mbox_count members INBOX)" 1 "$1: the message stays on the server"
	is "$(cases)" "$n" "$1: no case yet"
	ok "alive" "$1: casegated keeps running"
}
stored() {		# what t0
	ok "wait_until 60 cases_is $((n + 1))" "$2: once it can write, the message is stored"
	ok "wait_until 15 count_is members INBOX 0" "$2: and moved"
	diag "$2: stored $(ms_since "$1") ms after the fault was lifted"
	n=$((n + 1))
}
log_mark() { wc -l <"$CG_T/casegated.log"; }
log_since() { tail -n "+$(( $1 + 1 ))" "$CG_T/casegated.log" | grep -Eq -- "$2"; }

mark=$(log_mark)
prlimit --pid "$CG_PID" --fsize=1024: || diag "prlimit failed"
cpu0=$(cg_cpu_ticks "$CG_PID"); t0=$(now_us)
put_mail $((n + 1))
blocked "disk full (RLIMIT_FSIZE 1 KiB)"
cpu=$(( $(cg_cpu_ticks "$CG_PID") - cpu0 )); el=$(ms_since "$t0")
ok "[ $((cpu * 10)) -lt $((el / 10)) ]" "disk full: no spinning (${cpu}0 ms CPU in $el ms)"
ok "log_since $mark 'not (stored|committed).*retry|I/O error|File too large|full'" \
    "disk full: the log says the database cannot be written"
prlimit --pid "$CG_PID" --fsize=unlimited:
stored "$(now_us)" "disk full"

# --- daemon: read-only database -------------------------------------------------
ro_files() { ls "$db" "$db-wal" "$db-shm" 2>/dev/null; }
# The running daemon keeps -shm writable: SQLite maps it shared, and a
# first write to a mapped page of an immutable file is a SIGBUS, not an
# error (seen here); a real read-only database is found at open time.
ro_files_live() { ls "$db" "$db-wal" 2>/dev/null; }
mark=$(log_mark)
chattr +i $(ro_files_live)
servers_cleanup_add "chattr -i $(ro_files | tr '\n' ' ')"
put_mail $((n + 1))
blocked "read-only database"
ok "log_since $mark 'not (stored|committed).*retry'" \
    "read-only database: the log says the message was not stored and will be retried"
chattr -i $(ro_files_live)
stored "$(now_us)" "read-only database"

# --- daemon: the database locked by another process ------------------------------
mark=$(log_mark)
# Longer than the daemon's patience: busy_timeout 5 s, 4 tries to BEGIN.
{ echo 'BEGIN IMMEDIATE;'; sleep 24; echo 'COMMIT;'; } | sqlite3 "$db" &
locker=$!
servers_cleanup_add "kill $locker"
sleep 0.5
put_mail $((n + 1))
ok "wait_until 23 log_since $mark 'locked|busy'" "a locked database: the log says so"
is "$(mbox_count members INBOX)" 1 "locked database: the message stays on the server"
wait "$locker"
stored "$(now_us)" "locked database"
none_queued() { [ "$(q "SELECT count(*) FROM outbox WHERE state = 'queued'")" = 0 ]; }
ok "wait_until 20 none_queued" "every outbox row is recorded as sent or failed"
ok "cg_stop" "casegated exits 0"
# The backlog's acknowledgements were going out while the database could
# not be written: each went out once and was recorded once writable.
unrec=$(grep -c 'cannot record state sent' "$CG_T/casegated.log")
late=$(grep -c 'recorded as sent (it went out before' "$CG_T/casegated.log")
diag "sent while the database could not record it: $unrec; recorded later: $late"
is "$(grep -oE 'outbox [0-9]+: sent ' "$CG_T/casegated.log" | sort | uniq -d | wc -l)" 0 \
    "no outbox row was sent twice while the database could not be written"

# --- MTA pipe delivery -------------------------------------------------------------
deliver() { "$CASEGATED" -f "$conf" --deliver "$@" 2>>"$CG_T/deliver.log"; }
mk_mail "$CG_T/d1.eml" d1 pipe1@example.test
deliver <"$CG_T/d1.eml"
is "$?" 0 "--deliver: exit 0"
is "$(cases)" "$((n + 1))" "and a case"
deliver --recipient members@example.test <"$CG_T/d1.eml"
is "$?" 0 "the same message again: exit 0"
is "$(cases)" "$((n + 1))" "and no second case"
n=$((n + 1))
msgs=$(q "SELECT count(*) FROM messages")

# A full disk: a small message (the spool write fits, the database's
# does not) and a large one (the spool write fails first).
mk_mail "$CG_T/d2.eml" d2 pipe2@example.test
{ cat "$CG_T/d2.eml"; head -c 20000 /dev/zero | tr '\0' 'x' | fold -w 70; } >"$CG_T/d3.eml"
sed -i 's/signals-d2@/signals-d3@/' "$CG_T/d3.eml"
( ulimit -f 1; deliver <"$CG_T/d2.eml" )
is "$?" 75 "--deliver with a full disk (database write): exit 75"
( ulimit -f 1; deliver <"$CG_T/d3.eml" )
is "$?" 75 "--deliver with a full disk (spool write): exit 75"
is "$(cases)/$(q "SELECT count(*) FROM messages")" "$n/$msgs" "nothing was stored"
is "$(q "PRAGMA integrity_check")" ok "the database is intact"
chattr +i $(ro_files)
deliver <"$CG_T/d2.eml"
is "$?" 75 "--deliver with a read-only database: exit 75"
chattr -i $(ro_files)
is "$(cases)/$(q "SELECT count(*) FROM messages")" "$n/$msgs" "nothing was stored"
deliver <"$CG_T/d2.eml"
is "$?" 0 "once writable: exit 0"
deliver <"$CG_T/d3.eml"
is "$?" 0 "and the large one too"
is "$(cases)" "$((n + 2))" "each stored once"

[ "$_tap_failed" -eq 0 ] || { cg_log_diag; diag "$(tail -n 20 "$CG_T/deliver.log")"; }
done_testing
