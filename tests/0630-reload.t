#!/bin/bash
# 0630-reload.t - SIGHUP with a configuration that loads but cannot be
# put to work (its database cannot be opened): casegated says why, goes
# back to the configuration it had, and keeps making cases.
. "$CG_TOP/tests/lib/tap.sh"
. "$CG_TOP/tests/lib/servers.sh"
. "$CG_TOP/tests/lib/casegate.sh"

servers_start || { echo "Bail out! the test servers did not start"; exit 1; }
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
cases_is() { [ "$(cg_sql 'SELECT count(*) FROM cases')" = "$1" ]; }
cg_start "$conf"
smtp_send alice@example.test members@example.test "$CG_TOP/tests/mail/royalties.eml"
ok "wait_until 15 cases_is 1" "the first mail becomes a case"

# a file that loads (so -n passes) but whose "database" is a directory
mkdir -p "$CG_T/dbdir"
sed -i "s|^database = .*|database = \"$CG_T/dbdir\";|" "$conf"
kill -HUP "$CG_PID"
ok "wait_until 10 cg_log_has 'reload failed: .*previous configuration is kept'" \
    "a reload whose database cannot be opened is refused with the reason"
ok "kill -0 $CG_PID" "casegated is still running"
sed -e 's/^Message-ID: .*/Message-ID: <after-reload.bob@example.test>/' \
    -e 's/^From: .*/From: Bob <bob@example.test>/' \
    "$CG_TOP/tests/mail/royalties.eml" >"$CG_T/bob.eml"
smtp_send bob@example.test members@example.test "$CG_T/bob.eml"
ok "wait_until 15 cases_is 2" "and keeps making cases in the database it had"
ok "cg_stop" "casegated exits cleanly"
[ "$_tap_failed" -eq 0 ] || cg_log_diag
done_testing
