# faults.sh - break the test servers and the daemon on purpose, for the
# outage, crash and signal tests (tests/06*.t).  Source after
# servers.sh, tap.sh and casegate.sh.
#
#   dovecot_stop / dovecot_start   the main Dovecot (IMAP, LMTP, auth)
#   dovecot_imap_pids USER         its post-login imap processes for USER
#   postfix_stop / postfix_start   the test Postfix
#   postfix_queue_empty            nothing waits in its queue
#   cg_kill9                       SIGKILL the daemon, reap it
#   cg_cpu_ticks PID               user+system CPU time in clock ticks
#   cg_conf_set CONF SECTION KEY VALUE   add or replace a key in a section
#   ms_since T0                    milliseconds since T0 (from now_us)
#
# These use servers.sh internals (_cg_dovecot_pids, _cg_dovecot_run,
# _cg_wait_greeting); they live here so servers.sh stays small.

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $(( ($(now_us) - $1) / 1000 )); }

# servers.sh keeps the main Dovecot's PID in _cg_dovecot_pid (newer
# harness: one variable, stopped with _cg_group_kill) or first in the
# array _cg_dovecot_pids (older one, _cg_dovecot_kill); both work.
dovecot_stop() {
	if declare -F _cg_group_kill >/dev/null; then
		[ -z "$_cg_dovecot_pid" ] || _cg_group_kill "$_cg_dovecot_pid"
		_cg_dovecot_pid=
		return 0
	fi
	[ -n "${_cg_dovecot_pids[0]}" ] || return 0
	_cg_dovecot_kill "${_cg_dovecot_pids[0]}"
	_cg_dovecot_pids=("${_cg_dovecot_pids[@]:1}")
}

dovecot_start() {
	local pid
	if declare -F _cg_group_kill >/dev/null; then
		_cg_dovecot_run "$CG_T/dovecot" "$IMAP_PORT" _cg_dovecot_pid
		return
	fi
	_cg_dovecot_run "$CG_T/dovecot" "$IMAP_PORT" || return 1
	# The new master went last; the teardown stops them all anyway.
	pid=${_cg_dovecot_pids[-1]}
	unset '_cg_dovecot_pids[-1]'
	_cg_dovecot_pids=("$pid" "${_cg_dovecot_pids[@]}")
}

# The post-login imap processes of USER in this test's Dovecot (other
# scripts may run their own at the same time): doveadm who asks this
# instance's anvil.  /proc/PID/environ is unreadable once Dovecot has
# dropped privileges, so the user cannot be told from there.
dovecot_imap_pids() {	# user
	_cg_doveadm -f tab who -1 "$1" 2>/dev/null |
	    awk -F '\t' -v u="$1" '$1 == u && $2 == "imap" { print $3 }'
}

postfix_stop() { _cg_postfix_stop; }

# A restart right after a group kill can find the old master not quite
# gone; try again a few times and say why each attempt failed.
postfix_start() {
	local i out
	for i in 1 2 3 4 5; do
		out=$(postfix -c "$POSTFIX_CONF" start 2>&1)
		_cg_wait_greeting "" "$SMTP_PORT" "220 " && return 0
		diag "postfix start, attempt $i: ${out:-no output}" \
		    "$(tail -n 3 "$CG_T/postfix/maillog" 2>/dev/null)"
		_cg_postfix_stop
		sleep 1
	done
	return 1
}

postfix_queue_empty() {
	[ "$(postqueue -c "$POSTFIX_CONF" -j 2>/dev/null | wc -l)" = 0 ]
}

cg_kill9() {
	[ -n "$CG_PID" ] || return 0
	kill -KILL "$CG_PID" 2>/dev/null
	wait "$CG_PID" 2>/dev/null
	CG_PID=
}

# Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the
# ")" that ends the command name, which may itself hold spaces.
cg_cpu_ticks() {	# pid
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	set -- $s
	echo $(( ${12} + ${13} ))
}

# Insert "KEY = VALUE;" into "SECTION = {" of a libconfig file written by
# cg_conf_write, replacing an existing KEY in that section.
cg_conf_set() {		# conf section key value
	SEC=$2 KEY=$3 VAL=$4 perl -0pi -e '
		s{^($ENV{SEC} = \{\n)(.*?)(^\};)}{
			my ($h, $b, $t) = ($1, $2, $3);
			$b =~ s/^  \Q$ENV{KEY}\E = .*\n//m;
			"$h$b  $ENV{KEY} = $ENV{VAL};\n$t"
		}mse' "$1"
}

# Drop every file in DIR into a Maildir folder at once (mbox_put does a
# chown -R per message, quadratic for hundreds); the name order is the
# UID order.  The names must be unique across calls: a second call in
# the same second would otherwise replace files Dovecot has not seen.
mbox_put_many() {	# user folder dir
	local d f home=$CG_T/dovecot/home/${1,,} now
	d=$(_cg_maildir "$1" "$2")
	mkdir -p "$d/cur" "$d/new" "$d/tmp" || return 1
	[ "$d" = "$home/Maildir" ] || touch "$d/maildirfolder"
	now=$(now_us)
	for f in "$3"/*; do
		_cg_mbox_seq=$((_cg_mbox_seq + 1))
		cp -- "$f" "$d/tmp/${now:0:-6}.M$(printf %06d "$_cg_mbox_seq")P$BASHPID.cgt,S=$(stat -c %s "$f")" ||
		    return 1
	done
	chown -R nobody:nogroup "$home"
	for f in "$d"/tmp/*P$BASHPID.cgt,*; do
		mv -- "$f" "$d/new/" || return 1
	done
}

# "In-Reply-To Message-ID" of every message in a Maildir folder, read
# from the files (one doveadm call per message would take minutes).
maildir_ids() {		# user folder
	local d
	d=$(_cg_maildir "$1" "$2")
	find "$d/cur" "$d/new" -type f -print0 2>/dev/null | xargs -0r perl -e '
		for my $f (@ARGV) {
			open(my $fh, "<", $f) or next;
			local $/ = "";
			my $h = <$fh> // "";
			$h =~ s/\r?\n[ \t]+/ /g;
			my ($m) = $h =~ /^Message-ID:[ \t]*(\S+)/mi;
			my ($r) = $h =~ /^In-Reply-To:[ \t]*(\S+)/mi;
			print(($r // "-"), " ", ($m // "-"), "\n");
		}'
}
