#!/bin/bash
# 0700-service.t - running casegate like a service: make install with
# DESTDIR/PREFIX and FHS paths, the hardened unit, systemd notify and
# watchdog, journald log prefixes, one log line per message without body
# text or secrets, secrets as systemd credentials, and two mailboxes
# (members@ and royalties@) in one daemon, each with its own folders and
# default routing.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

# --- make install ---------------------------------------------------------
dest=$(mktemp -d /tmp/cgi.XXXXXX)
servers_cleanup_add "rm -rf '$dest'"
make -s -C "$CG_TOP" B="${CG_BUILD#$CG_TOP/}" install DESTDIR="$dest" PREFIX=/usr >"$dest.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr succeeds"
missing=
for f in usr/sbin/casegated usr/bin/casectl usr/share/man/man8/casegated.8 \
    usr/share/man/man1/casectl.1 usr/share/man/man5/casegate.conf.5 \
    usr/share/man/man5/casegate.rules.5 lib/systemd/system/casegated.service \
    usr/lib/sysusers.d/casegate.conf usr/lib/tmpfiles.d/casegate.conf \
    etc/casegate/casegate.conf.example etc/casegate/casegate.rules.example \
    etc/casegate/templates/en/ack.txt etc/casegate/templates/fr/ack.txt \
    etc/casegate/templates/fr/relay.txt usr/share/casegate/default.rules; do
	[ -e "$dest/$f" ] || missing="$missing $f"
done
is "$missing" "" "every file is installed in its FHS place"
ok "[ -d '$dest/var/lib/casegate' ] && [ -d '$dest/var/spool/casegate' ]" \
    "state and spool directories exist"
ok "[ -x '$dest/usr/sbin/casegated' ]" "the daemon is executable"
for m in "$dest"/usr/share/man/man*/*; do
	w=$(LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$m" 2>&1 >/dev/null)
	is "$w" "" "man page ${m##*/} renders without warnings"
done
exp=$(systemd-analyze security --offline=true "$CG_TOP/systemd/casegated.service" 2>/dev/null |
    sed -n 's/.*exposure level for casegated.service: \([0-9.]*\).*/\1/p')
diag "systemd-analyze security exposure: ${exp:-none}"
ok "awk 'BEGIN { exit !(\"$exp\" != \"\" && $exp + 0 <= 2.0) }'" \
    "the unit's exposure (systemd-analyze security) is 2.0 or lower (${exp:-not measured})"

# --- two mailboxes, notify, logs ------------------------------------------
servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
mail_user_add royalties pw-royalties
conf=$CG_T/two.conf
cg_conf_write "$conf"
# replace the single imap group by two mailboxes
perl -0 -i -pe 's/imap = \{.*?\n\};\n//s' "$conf"
cat >>"$conf" <<CONF
mailboxes = (
  { name = "members"; host = "localhost"; port = $IMAPS_PORT; ca_file = "$CA_PEM";
    system_ca = false; user = "members"; password_file = "credential:members-pw";
    processed_folder = "Done"; timeout = 10; },
  { name = "royalties"; address = "royalties@example.test"; host = "localhost";
    port = $IMAPS_PORT; ca_file = "$CA_PEM"; system_ca = false; user = "royalties";
    password_file = "$CG_T/pw/royalties"; processed_folder = "Filed"; timeout = 10;
    default = { type = "Royalties"; team = "distribution"; }; }
);
CONF
creds=$CG_T/creds
mkdir -p "$creds" && cp "$CG_T/pw/members" "$creds/members-pw" && chmod 600 "$creds/members-pw"
export CREDENTIALS_DIRECTORY=$creds

out=$("$CASEGATED" -n -f "$conf" 2>&1)
is "$out" "configuration OK" "a config with two mailboxes and a credential passes -n"

# a datagram socket standing in for systemd's NOTIFY_SOCKET
sock=$CG_T/notify.sock
perl -MSocket -MIO::Socket::UNIX -e '
	my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $ARGV[0]) or die $!;
	open(my $out, ">>", $ARGV[1]) or die $!; $out->autoflush(1);
	while (defined $s->recv(my $buf, 4096)) { print $out "$buf\n--\n" }
' "$sock" "$CG_T/notify.log" &
servers_cleanup_add "kill $!"
wait_until 5 test -S "$sock"

cat >"$CG_T/roy.eml" <<'MAIL'
From: Carl Composer <bob@example.test>
To: royalties@example.test
Subject: Question about my account
Message-ID: <roy-1.bob@example.test>

Hello, see the subject. Secret body marker XYZZY-7431.
MAIL
smtp_send bob@example.test royalties@example.test "$CG_T/roy.eml"
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"

NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 JOURNAL_STREAM=8:1234 \
    "$CASEGATED" -v -f "$conf" >>"$CG_T/casegated.log" 2>&1 &
CG_PID=$!
servers_cleanup_add 'cg_stop'
cases_is() { [ "$(cg_sql 'SELECT count(*) FROM cases')" = "$1" ]; }
ok "wait_until 20 cases_is 2" "one daemon makes cases from both mailboxes"
is "$(cg_sql "SELECT type || '|' || team FROM cases WHERE member = 'bob@example.test'")" \
    "Royalties|distribution" "royalties@ mail no rule claims gets that mailbox's default routing"
count_is() { [ "$(mbox_count "$1" "$2")" = "$3" ]; }
ok "wait_until 10 count_is royalties Filed 1" "royalties@ mail goes to its own processed folder"
ok "wait_until 10 count_is members Done 1" "members@ mail goes to its own processed folder"
ok "wait_until 10 grep -q READY=1 '$CG_T/notify.log'" "systemd is told READY=1"
ok "wait_until 10 grep -q WATCHDOG=1 '$CG_T/notify.log'" "and fed the watchdog"
like "$(grep -m1 READY=1 -A1 "$CG_T/notify.log")" "STATUS=watching 2 mailboxes" \
    "with a status line"

ok "grep -Eq '^<6>imap royalties: uid [0-9]+: <roy-1\\.bob@example\\.test>: CASE-[0-9]+ new-case: .* \\([0-9]+ ms\\)\$' '$CG_T/casegated.log'" \
    "one journald-prefixed line per message: uid, Message-ID, case, decision, time"
ok "! grep -q XYZZY-7431 '$CG_T/casegated.log'" "no body text in the log"
ok "! grep -q -e pw-members -e pw-royalties '$CG_T/casegated.log'" "no password in the log"
is "$(grep -cv '^<[0-7]>' "$CG_T/casegated.log")" 0 "every line carries a priority prefix"

cg_stop
is "$?" 0 "casegated stops cleanly"
ok "grep -q STOPPING=1 '$CG_T/notify.log'" "and tells systemd it is stopping"
[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
