#!/bin/bash
# 0800-rules-cli.t - the admin's view of the rules through the real
# casectl binary: `rules check` (exit 0, or 78 with every error as
# file:line), `rules test` (decision and why, text and JSON), and that a
# dry run touches neither the database nor the mail.
. "$CG_TOP/tests/lib/tap.sh"

t=$(mktemp -d /tmp/cgr.XXXXXX)
trap 'rm -rf "$t"' EXIT
CASECTL=${CG_BUILD:-$CG_TOP/build}/casectl
cd "$CG_TOP" || exit 1

out=$("$CASECTL" rules check rules/default.rules 2>&1)
is "$?" 0 "rules check of the default rules exits 0"
like "$out" 'rules OK' "and says so"

out=$("$CASECTL" rules check tests/rules/9.rules 2>&1)
st=$?
is "$st" 78 "rules check of a file with errors exits 78"
is "$out" "$(cat tests/rules/9.ok)"$'\n'"tests/rules/9.rules: 16 errors" \
    "and prints every error as file:line: message, all at once, then a count"
n=$(grep -c '^tests/rules/9.rules:[0-9]*: ' <<<"$out")
ok "[ $n -ge 2 ]" "more than one error is reported ($n)"

out=$("$CASECTL" rules check "$t/missing.rules" 2>&1)
is "$?" 78 "a missing rules file exits 78"
like "$out" "$t/missing.rules" "and names the file"

# rules test needs a config naming the rules; no database may appear
mkdir -p "$t/tpl" && echo x >"$t/tpl/ack.txt"
cat >"$t/c.conf" <<CONF
gateway = { address = "members@example.test"; };
imap = { host = "localhost"; user = "u"; password_file = "$t/pw"; };
smtp = { host = "localhost"; tls = "none"; port = 25; };
database = "$t/cases.db";
spool = "$t/spool";
rules = "$CG_TOP/rules/default.rules";
templates = "$t/tpl";
CONF
echo pw >"$t/pw" && chmod 600 "$t/pw"
out=$("$CASECTL" -f "$t/c.conf" rules test tests/rules/msg/missing-royalties.eml 2>&1)
is "$?" 0 "rules test exits 0"
like "$out" 'type: +Royalties' "it prints the decision"
like "$out" 'why: +rule "missing royalties" \(.*default\.rules:[0-9]+\): subject ~ /.*/i matched "Missing royalt"' \
    "and which condition matched which text"
like "$out" 'missing: +Date\(s\) of performance or use' "and the fields still missing"
json=$("$CASECTL" -f "$t/c.conf" rules test --json tests/rules/msg/missing-royalties.eml \
    tests/rules/msg/banking.eml 2>&1)
ok "perl -MJSON::PP -e 'my \$j = decode_json(join q(), <STDIN>); exit !(ref \$j eq q(ARRAY) && @\$j == 2)' <<<\"\$json\"" \
    "rules test --json prints one JSON object per message"
ok "[ ! -e '$t/cases.db' ] && [ ! -e '$t/spool' ]" "a dry run creates no database and no spool"
"$CASECTL" -f "$t/c.conf" rules test "$t/nope.eml" >/dev/null 2>&1
is "$?" 66 "rules test of a missing message file exits 66"
done_testing
