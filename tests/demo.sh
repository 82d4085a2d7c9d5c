#!/bin/bash
# demo.sh - `make demo`: the whole job once, on this machine.
#
# Installs what is missing (Debian 12, as root), starts a private
# Dovecot and Postfix on loopback in a temporary directory, starts
# casegated against them, sends a few member emails through Postfix,
# then prints the cases (casectl list, casectl show) and one
# acknowledgement as the member receives it.  Stops everything it
# started, also on Ctrl-C.
set -u
CG_TOP=${CG_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
CG_BUILD=${CG_BUILD:-$CG_TOP/build}
cd "$CG_TOP" || exit 1

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: run as root (Postfix refuses to start otherwise)" >&2
	exit 1
fi
bash tests/lib/deps.sh || exit 1
[ -x "$CG_BUILD/casegated" ] || make -s || exit 1

. tests/lib/tap.sh
. tests/lib/servers.sh
. tests/lib/casegate.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting a private Dovecot and Postfix on 127.0.0.1"
servers_start || exit 1
mail_user_add carol pw-carol
conf=$CG_T/casegate.conf
cg_conf_write "$conf"
echo "IMAPS 127.0.0.1:$IMAPS_PORT, SMTP 127.0.0.1:$SMTP_PORT, files in $CG_T"
"$CASEGATED" -n -f "$conf" || exit 1

say "starting casegated -f $conf"
cg_start "$conf"

say "three members write to members@example.test"
smtp_send alice@example.test members@example.test tests/mail/royalties.eml
cat >"$CG_T/address.eml" <<'MAIL'
From: Bob Writer <bob@example.test>
To: members@example.test
Subject: Change of address
Message-ID: <address-1.bob@example.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello, I moved. My new address is 12 Rue des Lilas, Montréal.
Please update my account.
MAIL
smtp_send bob@example.test members@example.test "$CG_T/address.eml"
cat >"$CG_T/question.eml" <<'MAIL'
From: Carole Chanson <carol@example.test>
To: members@example.test
Subject: =?UTF-8?B?UXVlc3Rpb24gc3VyIG1vbiByZWxldsOp?=
Message-ID: <question-1.carol@example.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Bonjour, je ne comprends pas mon relev=E9 de droits.
MAIL
smtp_send carol@example.test members@example.test "$CG_T/question.eml"

say "waiting for the cases and the acknowledgements"
acks_sent() { [ "$(cg_sql "SELECT count(*) FROM outbox WHERE state = 'sent' AND kind = 'ack'")" = "$1" ]; }
alice_has_mail() { [ "$(mbox_count alice INBOX)" -ge 1 ]; }
wait_until 30 acks_sent 3 ||
	{ echo "demo: not all acknowledgements were sent; the log:"; tail -n 30 "$CG_T/casegated.log"; exit 1; }
wait_until 10 alice_has_mail

say "casectl list"
"$CASECTL" -f "$conf" list
say "casectl show CASE-000001"
"$CASECTL" -f "$conf" show CASE-000001
say "the acknowledgement as alice@example.test received it (IMAP, her INBOX)"
mbox_dump alice INBOX | sed -n '2,$p'
say "casegated's log"
cat "$CG_T/casegated.log"
say "stopping everything"
cg_stop
echo "demo finished: 3 member emails became 3 cases with 3 acknowledgements."
