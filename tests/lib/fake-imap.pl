#!/usr/bin/perl
# fake-imap.pl - a plaintext IMAP server that misbehaves on purpose, for
# tests/0020-imap.t.  Serves one connection, logs every line it receives
# to LOGFILE ("C: ..."), then exits.
#
#   fake-imap.pl PORT LOGFILE nostarttls|inject [CERT KEY]
#
#   nostarttls  STARTTLS is not advertised (a stripping man in the
#               middle): the client must give up before LOGIN.
#   inject      STARTTLS is advertised, and the OK reply carries a
#               plaintext response in the same packet (CVE-2020-15953
#               style): the client must not read it as if protected.
#               Debian's libetpan 1.9.4 (CVE-2020-15953 patch) stops
#               before the handshake; for a build without that patch
#               the handshake completes (CERT and KEY, Net::SSLeay), so
#               only imap.c's own check can stop the client.
use strict;
use warnings;
use IO::Socket::INET;

my ($port, $logfile, $mode, $cert, $key) = @ARGV;
die "usage: fake-imap.pl PORT LOGFILE nostarttls|inject [CERT KEY]\n" unless $mode;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 1, ReuseAddr => 1) or die "fake-imap: listen $port: $!\n";
open(my $log, '>>', $logfile) or die "fake-imap: $logfile: $!\n";
$log->autoflush(1);
print $log "ready\n";

local $SIG{ALRM} = sub { exit 0 };
alarm 30;
my $c = $srv->accept or exit 1;
$c->autoflush(1);
my $caps = $mode eq 'inject' ? 'IMAP4rev1 STARTTLS AUTH=PLAIN' : 'IMAP4rev1 AUTH=PLAIN';
print $c "* OK [CAPABILITY $caps] fake ready\r\n";
while (my $line = <$c>) {
	$line =~ s/\r?\n$//;
	print $log "C: $line\n";
	my ($tag, $cmd) = split / /, $line, 3;
	$cmd = uc($cmd // '');
	if ($cmd eq 'CAPABILITY') {
		print $c "* CAPABILITY $caps\r\n$tag OK done\r\n";
	} elsif ($cmd eq 'STARTTLS' && $mode eq 'inject') {
		print $c "$tag OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n";
		tls_serve($c);
		last;
	} elsif ($cmd eq 'LOGOUT') {
		print $c "* BYE\r\n$tag OK bye\r\n";
		last;
	} else {
		print $c "$tag NO not here\r\n";
	}
}
close $c;
exit 0;

# Complete the handshake, then log whatever the client sends over TLS
# until it closes.
sub tls_serve {
	my ($c) = @_;
	require Net::SSLeay;
	Net::SSLeay::initialize();
	my $ctx = Net::SSLeay::CTX_new() or die "fake-imap: CTX_new\n";
	Net::SSLeay::CTX_use_certificate_chain_file($ctx, $cert) or die "fake-imap: cert\n";
	Net::SSLeay::CTX_use_PrivateKey_file($ctx, $key, &Net::SSLeay::FILETYPE_PEM)
	    or die "fake-imap: key\n";
	my $ssl = Net::SSLeay::new($ctx);
	Net::SSLeay::set_fd($ssl, fileno($c));
	if (Net::SSLeay::accept($ssl) <= 0) {
		print $log "tls handshake failed\n";
		return;
	}
	print $log "tls up\n";
	while (defined(my $data = Net::SSLeay::read($ssl))) {
		last if $data eq '';
		print $log "C(tls): $_\n" for split /\r?\n/, $data;
	}
}
