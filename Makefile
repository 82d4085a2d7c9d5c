# casegate - email-to-case gateway.  Plain GNU make; see README.md.
#
#   make            build build/casegated and build/casectl
#   make check      unit and integration tests (TAP, run by prove)
#   make check-san  the same with ASan + UBSan (build-san/)
#   make demo       private Dovecot + Postfix, casegated, sample mail
#   make bench      benchmark (optimised build)
#   make torture    the crash test at full size (TORTURE_N, TORTURE_KILLS)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
DATADIR	?= $(PREFIX)/share/casegate
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system
STATEDIR ?= /var/lib/casegate
SPOOLDIR ?= /var/spool/casegate

CC	?= cc
PKG_CONFIG ?= pkg-config
PKGS	:= gmime-3.0 sqlite3 libconfig libpcre2-8 gnutls libxml-2.0 libytnef

ifeq ($(SAN),1)
B	?= build-san
OPT	?= -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
else
B	?= build
OPT	?= -O2 -g
SANFLAGS :=
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) libetpan)
# libetpan's .pc adds -specs=.../no-pie-link.specs, which would link a
# non-PIE binary: drop it (docs/VIOLATIONS.md, "libraries").
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS)) \
	$(filter-out -specs=%,$(shell $(PKG_CONFIG) --libs libetpan))

ALL_CFLAGS = -std=gnu11 $(OPT) $(SANFLAGS) -Wall -Wextra -Werror \
	-Wno-unused-parameter -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
	-iquote include $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) -Wl,-z,relro -Wl,-z,now $(LDFLAGS)

MAINS	:= src/casegated.c src/casectl.c
LIB_SRC	:= $(filter-out $(MAINS),$(wildcard src/*.c))
LIB_OBJ	:= $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRC))
LIB	:= $(B)/libcasegate.a
BINS	:= $(B)/casegated $(B)/casectl

TEST_SRC := $(wildcard tests/test-*.c)
TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
TEST_SCRIPTS := $(sort $(wildcard tests/[0-9]*.t))
# Programs the integration scripts drive: tests/NAME-driver.c
TEST_TOOLS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/*-driver.c))

.SECONDARY:
.PHONY: all check check-unit check-san demo bench bench-tools torture install clean
all: $(BINS)

$(B)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/%: $(B)/obj/%.o $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

$(B)/tests/%: tests/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

# Tests: unit programs (GLib g_test, TAP) and integration scripts
# (TAP shell, real Dovecot and Postfix on loopback), all under prove.
# TESTS=... narrows the run, e.g. make check TESTS=tests/0100-e2e.t
TESTS ?= $(TEST_BINS) $(TEST_SCRIPTS)
check: $(BINS) $(TEST_BINS) $(TEST_TOOLS)
	CG_BUILD=$(abspath $(B)) CG_TOP=$(CURDIR) ASAN_OPTIONS=detect_leaks=1 \
	  prove --exec $(CURDIR)/tests/lib/tap-exec $(PROVEFLAGS) $(TESTS)

check-unit: $(TEST_BINS)
	CG_BUILD=$(abspath $(B)) CG_TOP=$(CURDIR) \
	  prove --exec $(CURDIR)/tests/lib/tap-exec $(PROVEFLAGS) $(TEST_BINS)

check-san:
	$(MAKE) SAN=1 check

demo: $(BINS)
	CG_BUILD=$(abspath $(B)) CG_TOP=$(CURDIR) bash tests/demo.sh

# bench/README.md.  Two daemons: group commit (the default) and
# casegated-g1, one transaction per message, to compare in one run.
BENCH_TOOLS := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

$(B)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

$(B)/casegated-g1: src/casegated.c $(LIB)
	$(CC) $(ALL_CFLAGS) -DCG_COMMIT_GROUP=1 $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

bench-tools: $(BENCH_TOOLS) $(B)/casegated-g1

# tests/0610-crash.t runs 200 messages and 30 SIGKILLs inside make check;
# this is the long version.
TORTURE_N ?= 3000
TORTURE_KILLS ?= 60
torture: $(BINS)
	CG_BUILD=$(abspath $(B)) CG_TOP=$(CURDIR) TORTURE_N=$(TORTURE_N) \
	  TORTURE_KILLS=$(TORTURE_KILLS) \
	  prove -v --exec $(CURDIR)/tests/lib/tap-exec tests/0610-crash.t

bench:
	$(MAKE) B=build-bench OPT="-O2 -g -DNDEBUG" all bench-tools
	CG_BUILD=$(abspath build-bench) CG_TOP=$(CURDIR) bash bench/run.sh

install: $(BINS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(B)/casegated $(DESTDIR)$(SBINDIR)/casegated
	install -m 755 $(B)/casectl $(DESTDIR)$(BINDIR)/casectl
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 644 man/casectl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/casegate.conf.5 man/casegate.rules.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 man/casegated.8 $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(SYSCONFDIR)/casegate/templates
	install -m 640 casegate.conf.example $(DESTDIR)$(SYSCONFDIR)/casegate/casegate.conf.example
	install -m 644 rules/default.rules $(DESTDIR)$(SYSCONFDIR)/casegate/casegate.rules.example
	# one directory per language: templates/en, templates/fr (casegate.conf(5))
	for d in templates/*/; do l=$$(basename "$$d"); \
	  install -d $(DESTDIR)$(SYSCONFDIR)/casegate/templates/$$l && \
	  install -m 644 "$$d"*.txt $(DESTDIR)$(SYSCONFDIR)/casegate/templates/$$l/ || exit 1; \
	done
	install -d $(DESTDIR)$(DATADIR)
	install -m 644 rules/default.rules $(DESTDIR)$(DATADIR)/default.rules
	install -d $(DESTDIR)$(UNITDIR)
	install -m 644 systemd/casegated.service $(DESTDIR)$(UNITDIR)/casegated.service
	install -d $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 644 systemd/casegate.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/casegate.conf
	install -m 644 systemd/casegate.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/casegate.conf
	install -d -m 750 $(DESTDIR)$(STATEDIR) $(DESTDIR)$(SPOOLDIR)

# Fuzzing: libFuzzer targets tests/fuzz-*.c built with clang into
# build-fuzz/ and each run for FUZZ_TIME seconds, seeded from
# tests/corpus and tests/rules (not part of make check; tests/test-fuzz.c
# replays the same entry points there).  Crashes land in
# build-fuzz/artifacts/; keep each as tests/fuzz/<target>/<bug-name>.
FUZZ_TIME ?= 60
FUZZERS	:= $(patsubst tests/%.c,%,$(wildcard tests/fuzz-*.c))

.PHONY: fuzz fuzz-build
fuzz-build:
	$(MAKE) B=build-fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" CFLAGS="-Wno-error" \
	  $(addprefix build-fuzz/,$(FUZZERS))

fuzz: fuzz-build
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_TIME) $(FUZZERS)

$(B)/fuzz-%: tests/fuzz-%.c $(LIB)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

clean:
	rm -rf build build-san build-bench build-fuzz

-include $(LIB_OBJ:.o=.d) $(B)/obj/casegated.d $(B)/obj/casectl.d $(TEST_BINS:=.d) $(TEST_TOOLS:=.d) $(BENCH_TOOLS:=.d)
