# casegate.sh - run the programs under test against the servers that
# servers.sh started.  Source after servers.sh and tap.sh.
#
#   cg_conf_write FILE [TLS PORT HOST]   a casegated config for these servers
#                                        (IMAP TLS implicit on IMAPS_PORT, host
#                                        localhost, by default)
#   cg_start CONF      start casegated -d -v in the background (CG_PID),
#                      log in $CG_T/casegated.log
#   cg_stop            SIGTERM, wait up to 10 s; returns its exit status
#   cg_sql SQL         run SQL on the test database (read-only)
#   cg_log_has ERE     the daemon log matches ERE
#
# CG_BUILD (set by make check) says which build is under test, so the
# sanitizer build runs the same scripts.

CG_TOP=${CG_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CG_BUILD=${CG_BUILD:-$CG_TOP/build}
CASEGATED=$CG_BUILD/casegated
CASECTL=$CG_BUILD/casectl
CG_PID=

cg_conf_write() {	# file [tls port host]
	local f=$1 tls=${2:-implicit} port=${3:-$IMAPS_PORT} host=${4:-localhost}
	mkdir -p "$CG_T/cg"
	cat >"$f" <<CONF
# written by tests/lib/casegate.sh
gateway = {
  address = "members@example.test";
  name = "Member Services";
  domain = "example.test";
};
imap = {
  name = "members";
  host = "$host";
  port = $port;
  tls = "$tls";
  ca_file = "$CA_PEM";
  system_ca = false;
  user = "members";
  password_file = "$CG_T/pw/members";
  folder = "INBOX";
  processed_folder = "Processed";
  timeout = 10;
  poll_interval = 2;
};
smtp = {
  host = "localhost";
  port = $SMTP_PORT;
  tls = "starttls";
  ca_file = "$CA_PEM";
  system_ca = false;
  timeout = 10;
};
outbox = { retry_min = 1; retry_max = 5; };
database = "$CG_T/cg/casegate.db";
spool = "$CG_T/cg/spool";
rules = "$CG_TOP/rules/default.rules";
templates = "$CG_TOP/templates";
CONF
	CG_CONF=$f
}

cg_start() {		# conf
	CG_CONF=$1
	"$CASEGATED" -d -v -f "$1" >>"$CG_T/casegated.log" 2>&1 &
	CG_PID=$!
	servers_cleanup_add 'cg_stop'
}

cg_stop() {
	local i st
	[ -n "$CG_PID" ] || return 0
	kill -TERM "$CG_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$CG_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$CG_PID" 2>/dev/null; then
		diag "casegated did not stop within 10 s; killing it"
		kill -KILL "$CG_PID"
	fi
	wait "$CG_PID"
	st=$?
	CG_PID=
	return $st
}

cg_sql() { sqlite3 -readonly "$CG_T/cg/casegate.db" "$1" 2>/dev/null; }

cg_log_has() { grep -Eq -- "$1" "$CG_T/casegated.log"; }

# Show the daemon log when a test failed, so CI output explains itself.
cg_log_diag() {
	[ -f "$CG_T/casegated.log" ] && diag "--- casegated.log (last 40 lines)" \
	    "$(tail -n 40 "$CG_T/casegated.log")"
}
