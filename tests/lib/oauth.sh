# oauth.sh - OAuth2 (XOAUTH2) on the servers servers.sh started: Dovecot's
# oauth2 passdb validating JWTs locally, and tokens to feed casegate.
# Source after servers.sh, once servers_start has run.
#
#   oauth_dovecot_enable     add an oauth2 passdb (mechanisms xoauth2 and
#                            oauthbearer) to the harness's Dovecot and
#                            reload it; Postfix's SMTP AUTH (SMTPS,
#                            submission) goes through that Dovecot, so it
#                            offers XOAUTH2 too
#   oauth_jwt USER EXP [PAD]  an HS256 JWT for USER expiring at EXP (epoch
#                            seconds), signed with the test key; PAD bytes
#                            of filler claim make it as long as a
#                            Microsoft 365 token
#
# How Dovecot 2.3 validates (its lib-oauth2/oauth2-jwt.c): the JWT header
# names alg and kid (kid "default" when absent); the key is looked up in
# local_validation_key_dict as shared/<azp>/<alg>/<kid>, azp being
# "default" when the token has none, and holds the base64 of the raw
# HMAC key.  With fs:posix:prefix=DIR/ a shared key is the file
# DIR/<azp>/<alg>/<kid>.  exp in the past is refused ("Token has
# expired"); sub is required; username_attribute names the claim that
# must match the user who logs in.

OAUTH_KEY_HEX=
OAUTH_KID=casegate-test

_oauth_b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

oauth_dovecot_enable() {
	local d=$CG_T/dovecot keys
	keys=$d/oauth2-keys
	OAUTH_KEY_HEX=$(openssl rand -hex 32) || return 1
	mkdir -p "$keys/default/HS256"
	perl -e 'print pack("H*", $ARGV[0])' "$OAUTH_KEY_HEX" | openssl base64 -A \
	    >"$keys/default/HS256/$OAUTH_KID"
	# The auth process reads the keys as the dovecot user.
	chmod -R a+rX "$keys"
	cat >"$d/dovecot-oauth2.conf.ext" <<-EOF
	introspection_mode = local
	local_validation_key_dict = fs:posix:prefix=$keys/
	username_attribute = email
	EOF
	sed -i 's/^auth_mechanisms = .*/auth_mechanisms = plain login xoauth2 oauthbearer/' \
	    "$DOVECOT_CONF"
	cat >>"$DOVECOT_CONF" <<-EOF
	passdb {
	  driver = oauth2
	  mechanisms = xoauth2 oauthbearer
	  args = $d/dovecot-oauth2.conf.ext
	}
	auth_verbose = yes
	EOF
	if ! doveconf -c "$DOVECOT_CONF" -n >/dev/null 2>"$d/doveconf.err"; then
		_cg_fail "oauth_dovecot_enable: config refused" "$d/doveconf.err"
		return 1
	fi
	doveadm -c "$DOVECOT_CONF" reload || return 1
	sleep 0.3
	export OAUTH_KEY_HEX OAUTH_KID
}

oauth_jwt() {		# user exp [pad]
	local hdr body sig pad=
	[ -n "$OAUTH_KEY_HEX" ] || { _cg_err "oauth_jwt: no key"; return 1; }
	[ -z "${3:-}" ] || pad=,\"pad\":\"$(head -c "$3" /dev/zero | tr '\0' x)\"
	hdr=$(printf '{"alg":"HS256","typ":"JWT","kid":"%s"}' "$OAUTH_KID" |
	    _oauth_b64url)
	body=$(printf '{"sub":"%s","email":"%s","iat":%d,"exp":%d%s}' \
	    "$1" "$1" "$(( $2 - 3600 ))" "$2" "$pad" | _oauth_b64url)
	sig=$(printf '%s.%s' "$hdr" "$body" |
	    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$OAUTH_KEY_HEX" -binary |
	    _oauth_b64url)
	printf '%s.%s.%s\n' "$hdr" "$body" "$sig"
}
