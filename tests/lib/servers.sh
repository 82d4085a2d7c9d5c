# servers.sh - a private Dovecot and Postfix on loopback for the
# integration tests and `make demo`.  Source it from bash, as root.
#
#   servers_start            certs, Dovecot (IMAP, IMAPS, LMTP, auth) and
#                            Postfix (SMTP, SMTPS, submission) in a fresh
#                            /tmp/cgt.XXXXXX; stopped by an EXIT trap
#   mail_user_add NAME PW    NAME@example.test in Dovecot and Postfix
#   mbox_put USER FOLDER FILE|-   drop a message into a Maildir folder
#   mbox_count USER FOLDER   number of messages (0 if no such folder)
#   mbox_dump USER FOLDER    every message, each after a "=== uid N" line
#   mbox_header [-d] USER FOLDER HEADER   that header of each message
#   mbox_wait_count USER FOLDER N [SECS]  until FOLDER holds N messages
#   mbox_uids USER FOLDER    the UIDs, one a line
#   smtp_send FROM TO[,TO] FILE|-    SMTP to Postfix, fails unless 250
#   wait_until SECS CMD...|'SNIPPET'   poll every 0.1 s
#   bad_dovecot_start selfsigned|expired|wronghost   (one at a time)
#   bad_dovecot_stop
#   servers_procs [DIR]      PIDs still running for the instance
#   servers_cleanup_add CMD  run CMD (eval) first at teardown
#   servers_stop             the teardown, also run by the EXIT trap
#
# Exports: CG_T, IMAP_PORT, IMAPS_PORT, LMTP_PORT, AUTH_PORT, SMTP_PORT,
# SMTPS_PORT, SUBMIT_PORT, CA_PEM, DOVECOT_CONF, POSTFIX_CONF, MAIL_DOMAIN;
# BAD_IMAP_PORT and BAD_IMAPS_PORT after bad_dovecot_start.  Users
# members, alice, bob, staff and sink exist; the password of each is in
# $CG_T/pw/NAME (mode 0600, one line), ready for password_file.
#
# Why it looks like this (facts in the project notes on test servers):
# - Dovecot refuses mail access as root, so mail runs as nobody:nogroup.
# - Postfix needs root and does not notice a port clash, so each script
#   claims a block of ten ports with a lock (/tmp/cgt-ports/BASE, a
#   symlink naming the owner's PID) and checks it with ss.
# - Postfix starts in about 0.1 s instead of 2.5 s: its config files are
#   backdated (it re-reads a file modified this very second every 0.3 s),
#   the queue is copied from a skeleton cached in /tmp/cgt-postfix-skel-*
#   and a quick-start file skips postfix-script's integrity checks.
# - Dovecot's auth penalty is off: after one failed login from 127.0.0.1
#   every later login, SMTP AUTH included, would wait 2-15 s.
# - Dovecot notices a new line in its users file up to a second late, so
#   mail_user_add waits until the user is known (LMTP would bounce).
# - SIGTERM to Dovecot's whole process group stops it in 0.1 s; SIGTERM
#   to the master alone takes 1-10 s.
# - Mail to any domain but example.test lands in the user "sink", so
#   nothing ever waits in the queue for a transport that does not exist.
# - SMTP AUTH is offered on SMTPS and submission only: if Dovecot's auth
#   port is down, smtpd dies on every connection where AUTH is enabled,
#   and tests that stop Dovecot still need plain SMTP.
# - smtp_send uses perl's Net::SMTP, not swaks: swaks rewrites %TOKENS%
#   and backslash-n inside the data, which would spoil hostile test mail.
#
# Port block: base+0 IMAP, +1 IMAPS, +2 LMTP, +3 SMTP, +4 SMTPS,
# +5 submission (STARTTLS required), +6 Dovecot auth, +7/+8 the "bad"
# Dovecot, +9 spare.

MAIL_DOMAIN=example.test
_cg_ports_dir=/tmp/cgt-ports
_cg_cleanup=()
_cg_dovecot_pid=
_cg_bad_pid=
_cg_dovecot_pids=()	# every Dovecot started, for the teardown
_cg_port_lock=
_cg_bad_dir=
_cg_mbox_seq=0

_cg_err() { printf '%s\n' "$@" | sed 's/^/# /' >&2; }

# Print a failure with the tail of a log and return 1.
_cg_fail() {		# message [logfile]
	_cg_err "servers.sh: $1"
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		_cg_err "--- last lines of $2:"
		tail -n 20 "$2" | sed 's/^/#   /' >&2
	fi
	return 1
}

_cg_now_us() { echo "${EPOCHREALTIME/./}"; }

# --- ports -------------------------------------------------------------

_cg_ports_free() {	# base: no listener on base..base+9
	[ -z "$(ss -Hltn "sport >= :$1 and sport <= :$(($1 + 9))")" ]
}

_cg_ports_claim() {
	local try base lock owner
	mkdir -p "$_cg_ports_dir"
	for try in $(seq 1 200); do
		base=$((24000 + 10 * (RANDOM % 100)))
		lock=$_cg_ports_dir/$base
		if ! ln -s "$BASHPID" "$lock" 2>/dev/null; then
			owner=$(readlink "$lock" 2>/dev/null) || continue
			# A lock whose owner is gone is stale: drop it, and
			# let a later round pick it up again.
			kill -0 "$owner" 2>/dev/null || rm -f "$lock"
			continue
		fi
		if ! _cg_ports_free "$base"; then
			rm -f "$lock"
			continue
		fi
		_cg_port_lock=$lock
		IMAP_PORT=$base IMAPS_PORT=$((base + 1)) LMTP_PORT=$((base + 2))
		SMTP_PORT=$((base + 3)) SMTPS_PORT=$((base + 4))
		SUBMIT_PORT=$((base + 5)) AUTH_PORT=$((base + 6))
		BAD_IMAP_PORT=$((base + 7)) BAD_IMAPS_PORT=$((base + 8))
		export IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_PORT SMTPS_PORT
		export SUBMIT_PORT AUTH_PORT
		return 0
	done
	_cg_fail "no free port block in 24000-24999 (locks in $_cg_ports_dir)"
}

# --- certificates ------------------------------------------------------

_cg_ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes; }

_cg_ca_make() {		# dir
	openssl req -x509 $(_cg_ec) -keyout "$1/ca.key" -out "$1/ca.pem" \
	    -days 3650 -subj "/CN=casegate test CA" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

_cg_leaf_ext() {	# dns-name
	printf '%s\n' "subjectAltName=DNS:$1" \
	    "basicConstraints=critical,CA:FALSE" \
	    "keyUsage=critical,digitalSignature" \
	    "extendedKeyUsage=serverAuth" \
	    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"
}

# A leaf signed by the test CA in certs/, valid for dns-name only.
_cg_leaf_make() {	# certs-dir name dns-name
	openssl req -new $(_cg_ec) -keyout "$1/$2.key" -subj "/CN=$3" \
	    2>/dev/null |
	openssl x509 -req -CA "$1/ca.pem" -CAkey "$1/ca.key" -days 3650 \
	    -extfile <(_cg_leaf_ext "$3") -out "$1/$2.pem" 2>/dev/null
}

# Signed by the test CA, valid only in January 2020.  openssl x509 has
# no start date option in 3.0, so this goes through a throwaway "ca".
_cg_expired_make() {	# certs-dir name
	local d=$1/ca-db
	mkdir -p "$d" && : >"$d/index" && echo 01 >"$d/serial" || return 1
	cat >"$d/ca.cnf" <<-EOF
	[ca]
	default_ca = t
	[t]
	database = $d/index
	serial = $d/serial
	new_certs_dir = $d
	default_md = sha256
	policy = p
	unique_subject = no
	[p]
	commonName = supplied
	EOF
	openssl req -new $(_cg_ec) -keyout "$1/$2.key" -subj "/CN=localhost" \
	    -out "$d/$2.csr" 2>/dev/null &&
	openssl ca -batch -config "$d/ca.cnf" -cert "$1/ca.pem" \
	    -keyfile "$1/ca.key" -startdate 20200101000000Z \
	    -enddate 20200131000000Z -extfile <(_cg_leaf_ext localhost) \
	    -in "$d/$2.csr" -out "$1/$2.pem" -notext 2>/dev/null
}

_cg_selfsigned_make() {	# certs-dir name
	openssl req -x509 $(_cg_ec) -keyout "$1/$2.key" -out "$1/$2.pem" \
	    -days 3650 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost" 2>/dev/null
}

# --- Dovecot -----------------------------------------------------------

_cg_dovecot_conf() {	# dir imap imaps lmtp auth cert key
	cat <<-EOF
	# written by tests/lib/servers.sh
	base_dir = $1/run
	state_dir = $1/state
	log_path = $1/dovecot.log
	instance_name = $(echo "${1#/tmp/}" | tr / -)
	protocols = imap lmtp
	listen = 127.0.0.1
	hostname = imap.$MAIL_DOMAIN
	ssl = yes
	ssl_cert = <$6
	ssl_key = <$7
	disable_plaintext_auth = no
	auth_mechanisms = plain login
	auth_username_format = %Ln
	auth_failure_delay = 0
	mail_location = maildir:~/Maildir
	mail_uid = nobody
	mail_gid = nogroup
	mail_fsync = never
	passdb {
	  driver = passwd-file
	  args = scheme=PLAIN $CG_T/users
	}
	userdb {
	  driver = static
	  args = home=$1/home/%u
	}
	namespace inbox {
	  inbox = yes
	  separator = /
	  mailbox Sent {
	    special_use = \\Sent
	    auto = subscribe
	  }
	  mailbox Drafts {
	    special_use = \\Drafts
	    auto = subscribe
	  }
	  mailbox Trash {
	    special_use = \\Trash
	    auto = subscribe
	  }
	}
	# No auth penalty: after one failed login from 127.0.0.1 every
	# later login from it (SMTP AUTH too) would wait 2-15 s.
	service anvil {
	  unix_listener anvil-auth-penalty {
	    mode = 0
	  }
	}
	service imap-login {
	  inet_listener imap {
	    port = $2
	  }
	  inet_listener imaps {
	    port = $3
	    ssl = yes
	  }
	}
	EOF
	[ "$4" = 0 ] || cat <<-EOF
	service lmtp {
	  inet_listener lmtp {
	    address = 127.0.0.1
	    port = $4
	  }
	}
	EOF
	[ "$5" = 0 ] || cat <<-EOF
	service auth {
	  inet_listener auth {
	    address = 127.0.0.1
	    port = $5
	  }
	}
	EOF
}

# Read the greeting of a server: succeeds once it starts with want.
_cg_greets() {		# port want
	local line
	{
		exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
		IFS= read -r -t 2 line <&3
		exec 3<&- 3>&-
		[[ $line == "$2"* ]]
	} 2>/dev/null
}

# Wait up to 10 s for the greeting; give up at once if pid (when given)
# has exited.
_cg_wait_greeting() {	# pid port want
	local end=$(( $(_cg_now_us) + 10000000 ))
	until _cg_greets "$2" "$3"; do
		if [ -n "$1" ] && ! _cg_alive "$1"; then
			_cg_err "servers.sh: process $1 exited"
			return 1
		fi
		[ "$(_cg_now_us)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# Start Dovecot in the foreground as its own session, so teardown can
# signal the whole group; wait for the IMAP greeting.
_cg_dovecot_run() {	# dir imap-port [pid-variable]
	local conf=$1/dovecot.conf pid
	mkdir -p "$1/run" "$1/state" "$1/home"
	chown nobody:nogroup "$1/home"
	if ! doveconf -c "$conf" -n >/dev/null 2>"$1/dovecot.err"; then
		_cg_fail "Dovecot config $conf is invalid" "$1/dovecot.err"
		return 1
	fi
	setsid dovecot -F -c "$conf" </dev/null >>"$1/dovecot.err" 2>&1 &
	pid=$!
	# Recorded before waiting, so a failed start is still stopped by
	# the teardown.
	_cg_dovecot_pids+=("$pid")
	[ -z "${3:-}" ] || printf -v "$3" %s "$pid"
	if ! _cg_wait_greeting "$pid" "$2" "* OK"; then
		cat "$1/dovecot.err" >>"$1/dovecot.log" 2>/dev/null
		_cg_fail "Dovecot in $1 gave no IMAP greeting on port $2" \
		    "$1/dovecot.log"
		return 1
	fi
}

# Live (not zombie) members of a process group: PIDs, one a line.
_cg_group() {		# pgid
	ps -eo pid=,pgid=,stat= | awk -v g="$1" '$2 == g && $3 !~ /^Z/ { print $1 }'
}

_cg_alive() {		# pid: running, not a zombie
	local st
	{ st=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	st=${st##*) }
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}

# SIGTERM to a whole process group, wait for it to be empty, SIGKILL
# after 5 s.  Dovecot is done in 0.1 s this way, where SIGTERM to its
# master alone takes 1-10 s.
_cg_group_kill() {	# pgid
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for i in $(seq 100); do
		[ -n "$(_cg_group "$1")" ] || break
		sleep 0.05
	done
	if [ -n "$(_cg_group "$1")" ]; then
		_cg_err "servers.sh: process group $1 ignored SIGTERM, killing"
		kill -KILL -- "-$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	return 0
}

# The name older scripts use.
_cg_dovecot_kill() { _cg_group_kill "$@"; }

# A process group this instance started and that may be signalled: its
# leader is gone (Linux does not reuse a PID still in use as a group
# ID) or still runs from $CG_T.
_cg_ours() {		# pgid
	local cmd
	[ -e "/proc/$1" ] || return 0
	{ cmd=$(tr '\0' ' ' <"/proc/$1/cmdline"); } 2>/dev/null || return 0
	[[ $cmd == *"$CG_T/"* ]]
}

# --- Postfix -----------------------------------------------------------

_cg_postfix_conf() {	# dir
	local p=$1
	cat >"$p/etc/main.cf" <<-EOF
	# written by tests/lib/servers.sh
	compatibility_level = 3.6
	queue_directory = $p/spool
	data_directory = $p/data
	maillog_file = $p/maillog
	maillog_file_prefixes = /tmp
	myhostname = mx.$MAIL_DOMAIN
	mydomain = $MAIL_DOMAIN
	mydestination =
	alias_maps =
	alias_database =
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	smtpd_peername_lookup = no
	smtpd_banner = \$myhostname ESMTP casegate-test
	biff = no
	virtual_mailbox_domains = $MAIL_DOMAIN
	virtual_mailbox_maps = texthash:$p/etc/vmailbox
	virtual_alias_domains =
	virtual_alias_maps = regexp:$p/etc/catchall
	virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
	smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
	local_header_rewrite_clients =
	queue_run_delay = 1s
	minimal_backoff_time = 1s
	maximal_backoff_time = 2s
	service_throttle_time = 1s
	message_size_limit = 104857600
	mailbox_size_limit = 0
	virtual_mailbox_limit = 0
	smtpd_tls_cert_file = $CG_T/certs/server.pem
	smtpd_tls_key_file = $CG_T/certs/server.key
	smtpd_tls_security_level = may
	smtpd_sasl_type = dovecot
	smtpd_sasl_path = inet:127.0.0.1:$AUTH_PORT
	smtpd_sasl_auth_enable = no
	EOF
	printf '%s\n' "!/@${MAIL_DOMAIN//./\\.}\$/ sink@$MAIL_DOMAIN" \
	    >"$p/etc/catchall"
	cat >"$p/etc/master.cf" <<-EOF
	# written by tests/lib/servers.sh; chroot "n" everywhere
	127.0.0.1:$SMTP_PORT inet n - n - - smtpd
	127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
	  -o smtpd_tls_wrappermode=yes
	  -o smtpd_sasl_auth_enable=yes
	127.0.0.1:$SUBMIT_PORT inet n - n - - smtpd
	  -o smtpd_tls_security_level=encrypt
	  -o smtpd_sasl_auth_enable=yes
	pickup unix n - n 60 1 pickup
	cleanup unix n - n - 0 cleanup
	qmgr unix n - n 300 1 qmgr
	tlsmgr unix - - n 1000? 1 tlsmgr
	rewrite unix - - n - - trivial-rewrite
	bounce unix - - n - 0 bounce
	defer unix - - n - 0 bounce
	trace unix - - n - 0 bounce
	verify unix - - n - 1 verify
	flush unix n - n 1000? 0 flush
	proxymap unix - - n - - proxymap
	showq unix n - n - - showq
	error unix - - n - - error
	retry unix - - n - - error
	discard unix - - n - - discard
	lmtp unix - - n - - lmtp
	anvil unix - - n - 1 anvil
	scache unix - - n - 1 scache
	postlog unix-dgram n - n - 1 postlogd
	EOF
}

# Postfix re-reads a config file whose mtime is this very second, every
# 0.3 s until it is not: 1-2 s lost per start.  So backdate them.
_cg_postfix_age() {	# file...
	touch -d "@$(( $(date +%s) - 5 ))" "$@"
}

# The queue skeleton: `postfix check` creates the queue directories,
# which is what makes a first start slow.  Built once per Postfix version
# and owner ids, then copied into each new queue.
_cg_postfix_skel() {	# dir
	local v skel tmp
	v=$(postconf -c "$1/etc" -h mail_version 2>/dev/null)
	skel=/tmp/cgt-postfix-skel-$v-$(id -u postfix)-$(getent group postdrop | cut -d: -f3)
	if [ ! -d "$skel" ]; then
		tmp=$(mktemp -d /tmp/cgt-skel.XXXXXX) || return 1
		mkdir -p "$tmp/etc" "$tmp/spool" "$tmp/data"
		cp "$1/etc/main.cf" "$1/etc/master.cf" "$1/etc/vmailbox" \
		    "$1/etc/catchall" "$tmp/etc/"
		sed -i "s|$1/|$tmp/|g" "$tmp/etc/main.cf"
		chown postfix:postfix "$tmp/data"
		postfix -c "$tmp/etc" check >"$tmp/check.out" 2>&1 ||
		    _cg_err "servers.sh: postfix check: $(cat "$tmp/check.out")"
		rm -f "$tmp/spool/pid/"* 2>/dev/null
		# Whoever renames first wins; the loser's copy is dropped.
		mv -T "$tmp/spool" "$skel" 2>/dev/null
		rm -rf "$tmp"
	fi
	rmdir "$1/spool" && cp -a "$skel" "$1/spool" || return 1
	# postfix-script skips its integrity checks (2 s, mostly find(1)
	# over the whole installation) when this file exists; the skeleton
	# was checked when it was made.
	touch "$1/spool/quick-start"
}

_cg_postfix_run() {	# dir
	local p=$1
	mkdir -p "$p/etc" "$p/spool" "$p/data"
	chown postfix:postfix "$p/data"
	_cg_postfix_conf "$p"
	_cg_postfix_age "$p/etc"/*
	_cg_postfix_skel "$p" || return 1
	if ! postfix -c "$p/etc" start >"$p/start.out" 2>&1; then
		cat "$p/start.out" >>"$p/maillog" 2>/dev/null
		_cg_fail "postfix -c $p/etc start failed (re-run it under" \
		    "\`script -qc\` to see why)" "$p/maillog"
		return 1
	fi
	if ! _cg_wait_greeting "" "$SMTP_PORT" "220 "; then
		_cg_fail "Postfix gave no 220 greeting on port $SMTP_PORT" \
		    "$p/maillog"
		return 1
	fi
}

# `postfix stop` polls once a second; signalling master ourselves and
# polling faster saves up to a second per script.  Master is a session
# leader and takes its children down with it.
_cg_postfix_stop() {
	local pid
	pid=$(sed -n '1s/ //gp' "$CG_T/postfix/spool/pid/master.pid" 2>/dev/null)
	[ -n "$pid" ] && _cg_alive "$pid" || return 0
	_cg_group_kill "$pid"
}

# --- start and stop ----------------------------------------------------

servers_start() {
	local t0 u
	t0=$(_cg_now_us)
	if [ "$(id -u)" -ne 0 ]; then
		_cg_fail "servers_start needs root (Postfix refuses otherwise)"
		return 1
	fi
	CG_T=$(mktemp -d /tmp/cgt.XXXXXX) || return 1
	export CG_T
	trap servers_stop EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# Dovecot's mail processes run as nobody and must reach home/.
	chmod 755 "$CG_T"
	mkdir -p "$CG_T/certs" "$CG_T/pw" "$CG_T/dovecot" "$CG_T/postfix/etc"
	chmod 700 "$CG_T/pw"
	_cg_ports_claim || return 1

	CA_PEM=$CG_T/certs/ca.pem
	DOVECOT_CONF=$CG_T/dovecot/dovecot.conf
	POSTFIX_CONF=$CG_T/postfix/etc
	export CA_PEM DOVECOT_CONF POSTFIX_CONF MAIL_DOMAIN
	if ! _cg_ca_make "$CG_T/certs" ||
	   ! _cg_leaf_make "$CG_T/certs" server localhost; then
		_cg_fail "making the test certificates failed"
		return 1
	fi

	: >"$CG_T/users"
	chmod 644 "$CG_T/users"
	_cg_dovecot_conf "$CG_T/dovecot" "$IMAP_PORT" "$IMAPS_PORT" \
	    "$LMTP_PORT" "$AUTH_PORT" "$CG_T/certs/server.pem" \
	    "$CG_T/certs/server.key" >"$DOVECOT_CONF"
	mkdir -p "$POSTFIX_CONF"
	: >"$POSTFIX_CONF/vmailbox"
	for u in members alice bob staff sink; do
		mail_user_add "$u" "pw-$u" || return 1
	done
	_cg_dovecot_run "$CG_T/dovecot" "$IMAP_PORT" _cg_dovecot_pid ||
	    return 1
	_cg_postfix_run "$CG_T/postfix" || return 1
	_cg_err "servers_start: $CG_T, ports $IMAP_PORT-$BAD_IMAPS_PORT, ready in $(( ($(_cg_now_us) - t0) / 1000 )) ms"
}

# Run CMD (with eval) at teardown, before the servers stop: for the
# daemon under test and anything else a script started.
servers_cleanup_add() { _cg_cleanup+=("$*"); }

servers_stop() {
	local st=$? i pid
	trap - EXIT
	for ((i = ${#_cg_cleanup[@]} - 1; i >= 0; i--)); do
		eval "${_cg_cleanup[i]}" >/dev/null 2>&1
	done
	_cg_cleanup=()
	if [ -n "${CG_T:-}" ]; then
		_cg_postfix_stop
		for pid in "${_cg_dovecot_pids[@]}"; do
			_cg_ours "$pid" && _cg_group_kill "$pid"
		done
		_cg_dovecot_pids=()
		_cg_sweep
		_cg_dovecot_pid=
		_cg_bad_pid=
		_cg_bad_dir=
		if [ "${CG_KEEP:-0}" = 1 ]; then
			_cg_err "servers_stop: kept $CG_T"
		else
			rm -rf "$CG_T"
		fi
	fi
	[ -z "$_cg_port_lock" ] || rm -f "$_cg_port_lock"
	_cg_port_lock=
	return $st
}

# Last resort at teardown: whatever still runs from $CG_T (a server a
# script restarted behind the harness's back, a daemon it forgot).  A
# group leader started from $CG_T takes its group with it; anything
# else is signalled alone, never its process group, which may be the
# test's own or prove's.
_cg_sweep() {
	local left pid i
	left=$(servers_procs "$CG_T")
	[ -n "$left" ] || return 0
	_cg_err "servers_stop: stopping what still runs from $CG_T:" \
	    "$(ps -o pid=,args= -p "$(echo $left | tr ' ' ,)" | cut -c1-100)"
	for pid in $left; do
		if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] &&
		   _cg_ours "$pid"; then
			kill -TERM -- "-$pid"
		else
			kill -TERM "$pid"
		fi
	done 2>/dev/null
	for i in $(seq 40); do
		left=$(servers_procs "$CG_T")
		[ -n "$left" ] || return 0
		sleep 0.05
	done
	kill -KILL $left 2>/dev/null
	return 0
}

# PIDs of live processes that belong to the instance in dir (default
# $CG_T): dir in their command line (Dovecot), their working directory
# under it or MAIL_CONFIG pointing into it (Postfix).  Empty after a
# clean teardown.
servers_procs() {	# [dir]
	local dir=${1:-$CG_T} pid
	[ -n "$dir" ] || return 1
	# The patterns come through a pipe, so that grep's own command
	# line does not match.
	{
		grep -lsF -f <(echo "$dir") /proc/[0-9]*/cmdline
		grep -lsxz -f <(echo "MAIL_CONFIG=$dir/postfix/etc") \
		    /proc/[0-9]*/environ
		stat -c %N /proc/[0-9]*/cwd |
		    grep -F -f <(printf '%s\n' "-> '$dir'" "-> '$dir/")
	} 2>/dev/null | cut -d/ -f3 | sort -un |
	while read -r pid; do
		[ "$pid" != "$$" ] && [ "$pid" != "$BASHPID" ] &&
		    _cg_alive "$pid" && echo "$pid"
	done
}

# --- users and mailboxes -----------------------------------------------

mail_user_add() {	# name password
	local name=${1,,} pw=$2
	if [[ ! $name =~ ^[a-z0-9][a-z0-9._-]*$ ]]; then
		_cg_fail "mail_user_add: bad user name '$1'"
		return 1
	fi
	if [[ $pw == *[:$'\n']* || -z $pw ]]; then
		_cg_fail "mail_user_add: password must be non-empty, without ':' or newline"
		return 1
	fi
	printf '%s:{PLAIN}%s::::::\n' "$name" "$pw" >>"$CG_T/users"
	( umask 077; printf '%s\n' "$pw" >"$CG_T/pw/$name" )
	echo "$name@$MAIL_DOMAIN x" >>"$POSTFIX_CONF/vmailbox"
	_cg_postfix_age "$POSTFIX_CONF/vmailbox"
	# smtpd caches maps; a reload makes new ones see the user.
	if [ -f "$CG_T/postfix/spool/pid/master.pid" ]; then
		postfix -c "$POSTFIX_CONF" reload >/dev/null 2>&1
	fi
	# Dovecot re-reads the users file at most once a second: a lookup
	# in the second of the change can still miss the user, and LMTP
	# then bounces mail for it (550).  Wait until it is visible.
	if [ -n "$_cg_dovecot_pid" ] &&
	   ! wait_until 5 _cg_user_known "$name"; then
		_cg_fail "mail_user_add: Dovecot does not know $name"
		return 1
	fi
	return 0
}

_cg_user_known() {
	_cg_doveadm mailbox status -u "$1" messages INBOX >/dev/null 2>&1
}

# Maildir++ with the namespace separator "/": INBOX is ~/Maildir itself,
# "A/B" is ~/Maildir/.A.B
_cg_maildir() {		# user folder
	local d=$CG_T/dovecot/home/${1,,}/Maildir
	case "${2^^}" in
	INBOX) echo "$d" ;;
	*) echo "$d/.${2//\//.}" ;;
	esac
}

mbox_put() {		# user folder file|-
	local d name tmp now size home=$CG_T/dovecot/home/${1,,}
	d=$(_cg_maildir "$1" "$2")
	mkdir -p "$d/cur" "$d/new" "$d/tmp" || return 1
	[ "$d" = "$home/Maildir" ] || touch "$d/maildirfolder"
	chown -R nobody:nogroup "$home"
	now=$(_cg_now_us)
	_cg_mbox_seq=$((_cg_mbox_seq + 1))
	# secs.Musecs orders the UIDs; P and Q make the name unique.
	name=${now:0:-6}.M${now: -6}P${BASHPID}Q${_cg_mbox_seq}.cgt
	tmp=$d/tmp/$name
	if [ "$3" = - ]; then cat >"$tmp"; else cat -- "$3" >"$tmp"; fi ||
	    { rm -f "$tmp"; return 1; }
	size=$(stat -c %s "$tmp")
	chown nobody:nogroup "$tmp"
	mv "$tmp" "$d/new/$name,S=$size"
}

_cg_doveadm() { doveadm -c "$DOVECOT_CONF" "$@"; }

mbox_count() {		# user folder
	local out
	if out=$(_cg_doveadm -f flow mailbox status -u "$1" messages "$2" 2>&1); then
		echo "${out##*messages=}"
		return 0
	fi
	if [[ $out == *"Mailbox doesn't exist"* ]]; then
		echo 0
		return 0
	fi
	_cg_fail "mbox_count $1 $2: $out"
}

mbox_uids() {		# user folder: one UID a line
	_cg_doveadm search -u "$1" mailbox "$2" all 2>/dev/null |
	    awk '{ print $2 }'
}

mbox_dump() {		# user folder
	local uid
	for uid in $(mbox_uids "$1" "$2"); do
		echo "=== uid $uid"
		_cg_doveadm -f pager fetch -u "$1" text mailbox "$2" uid "$uid" |
		    sed '1{/^text:$/d};${/^\f$/d}'
	done
}

# One line per occurrence of the header in each message, in UID order
# (an empty line for a message without it), folded lines unfolded.  Raw
# as stored; with -d, MIME encoded-words are decoded to UTF-8.
mbox_header() {		# [-d] user folder header
	local uid field
	if [ "$1" = -d ]; then
		shift
		field=hdr.${3,,}.utf8
	else
		field=hdr.${3,,}
	fi
	for uid in $(mbox_uids "$1" "$2"); do
		_cg_doveadm -f pager fetch -u "$1" "$field" mailbox "$2" \
		    uid "$uid" |
		awk -v p="$field: " '
			NR == 1 { line = substr($0, length(p) + 1); next }
			/^[ \t]/ { line = line $0; next }
			/^\f$/ { next }
			{ print line; line = $0 }
			END { print line }'
	done
}

# Wait until folder holds exactly n messages; say how many if it never
# does.
mbox_wait_count() {	# user folder n [secs, default 10]
	local end=$(( $(_cg_now_us) + ${4:-10} * 1000000 )) n
	while n=$(mbox_count "$1" "$2") && [ "$n" != "$3" ]; do
		if [ "$(_cg_now_us)" -ge "$end" ]; then
			_cg_err "mbox_wait_count: $1 $2 has $n messages, not $3"
			return 1
		fi
		sleep 0.1
	done
	[ "$n" = "$3" ]
}

# --- SMTP --------------------------------------------------------------

smtp_send() {		# from to[,to...] file|-
	local file=$3
	[ "$file" != - ] || file=/dev/stdin
	CG_SMTP_PORT=$SMTP_PORT perl -MNet::SMTP -e '
		my ($from, $to, $file) = @ARGV;
		open(my $fh, "<:raw", $file) or die "smtp_send: $file: $!\n";
		my $data = do { local $/; <$fh> };
		my $s = Net::SMTP->new("127.0.0.1", Port => $ENV{CG_SMTP_PORT},
		    Hello => "client.example.test", Timeout => 30)
		    or die "smtp_send: cannot connect: $@\n";
		sub fail { die "smtp_send: $_[0]: " . $s->code . " " .
		    join("", $s->message) }
		$s->mail($from) or fail("MAIL FROM:<$from>");
		for my $r (split /,/, $to) {
			$s->to($r) or fail("RCPT TO:<$r>");
		}
		$s->data() or fail("DATA");
		$s->datasend($data) if length $data;
		$s->dataend() or fail("end of DATA");
		$s->quit;
	' "$1" "$2" "$file" 2>&1 | sed 's/^/# /' >&2
	[ "${PIPESTATUS[0]}" -eq 0 ]
}

# --- helpers -----------------------------------------------------------

# Poll every 0.1 s until the command succeeds.  One argument is a shell
# snippet, eval'ed each time, so $(...) inside it is re-run:
#   wait_until 5 '[ "$(mbox_count members INBOX)" = 1 ]'
#   wait_until 5 test -s "$CG_T/casegated.pid"
wait_until() {		# secs cmd... | secs 'snippet'
	local end=$(( $(_cg_now_us) + $1 * 1000000 ))
	shift
	while :; do
		if [ $# -eq 1 ]; then eval "$1"; else "$@"; fi && return 0
		if [ "$(_cg_now_us)" -ge "$end" ]; then
			_cg_err "wait_until: timed out: $*"
			return 1
		fi
		sleep 0.1
	done
}

bad_dovecot_stop() {
	[ -z "$_cg_bad_pid" ] || ! _cg_ours "$_cg_bad_pid" ||
	    _cg_group_kill "$_cg_bad_pid"
	_cg_bad_pid=
	_cg_bad_dir=
}

# An extra Dovecot with a bad certificate on BAD_IMAP_PORT (STARTTLS)
# and BAD_IMAPS_PORT; the users are the same, the mailboxes its own.
# Replaces the one running, if any.
bad_dovecot_start() {	# selfsigned|expired|wronghost
	local d=$CG_T/bad-$1 c=$CG_T/certs
	bad_dovecot_stop
	rm -rf "$d"
	case "$1" in
	selfsigned) _cg_selfsigned_make "$c" "bad-$1" ;;
	expired) _cg_expired_make "$c" "bad-$1" ;;
	wronghost) _cg_leaf_make "$c" "bad-$1" other.example ;;
	*) _cg_fail "bad_dovecot_start: unknown kind '$1'"; return 1 ;;
	esac || { _cg_fail "bad_dovecot_start: making the $1 cert failed"; return 1; }
	mkdir -p "$d"
	_cg_dovecot_conf "$d" "$BAD_IMAP_PORT" "$BAD_IMAPS_PORT" 0 0 \
	    "$c/bad-$1.pem" "$c/bad-$1.key" >"$d/dovecot.conf"
	_cg_bad_dir=$d
	_cg_dovecot_run "$d" "$BAD_IMAP_PORT" _cg_bad_pid || return 1
	export BAD_IMAP_PORT BAD_IMAPS_PORT
}
