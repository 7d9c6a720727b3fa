# forge — build, test, bench.  `make` builds build/forged, build/forgectl;
# `make test` runs every test; `make bench` every benchmark.
# Missing Debian packages are installed first when run as root (tools/deps.sh).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-missing-field-initializers
BASE    := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -pthread $(WARN)
# pkg-config name and the Debian package that provides it
PKGS    := libcurl jansson yaml-0.1 libsystemd libmicrohttpd
DEB_libcurl       := libcurl4-openssl-dev
DEB_jansson       := libjansson-dev
DEB_yaml-0.1      := libyaml-dev
DEB_libsystemd    := libsystemd-dev
DEB_libmicrohttpd := libmicrohttpd-dev
PKG_CONFIG ?= pkg-config
DEB_ARCH   ?=

# tools/deps.sh runs while the Makefile is read, before pkg-config is asked
# below: a prerequisite would run too late (the flags are already computed)
# and, under -j, beside the compiles.  A plain build asks pkg-config only
# (no dpkg-query): deps.sh runs when a library is missing, and for the goals
# that run tests (their tools: jq, wrk, curl, fiu, clang).  Goals that build
# nothing skip both; sub-makes inherit FORGE_DEPS_CHECKED and skip deps.sh.
NO_DEPS_GOALS := clean deps test-fresh unit-aarch64 deb test-package
TEST_GOALS    := test unit integration bench run asan tsan fuzz
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
  ifndef FORGE_DEPS_CHECKED
    ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS))$(if $(shell $(PKG_CONFIG) --exists $(PKGS) 2>/dev/null && echo ok),,missing),)
      ifneq ($(shell sh tools/deps.sh >&2 && echo ok),ok)
        $(error forge: Debian packages are missing (see above))
      endif
    endif
    export FORGE_DEPS_CHECKED := 1
  endif
  PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
  PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo PKG_CONFIG_FAILED)
  ifneq ($(filter PKG_CONFIG_FAILED,$(PKG_LIBS)),)
    PKG_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) && echo y),,$(p))))
    $(error forge: $(PKG_CONFIG) cannot find $(or $(PKG_MISSING),$(PKGS)); \
      install $(foreach p,$(or $(PKG_MISSING),$(PKGS)),$(DEB_$(p))$(DEB_ARCH)) \
      (apt-get install, as root))
  endif
endif
LIBS    := $(PKG_LIBS) -lm -pthread
B       ?= build
EXTRA   ?=

# One folder per role (README.md, "Where things are"); each folder's files
# are its sources.  forged's main is supervisor/forged.c; forgectl is cli/.
LIB_DIRS := base region agent worker workflows gateway supervisor
LIB_SRC  := $(filter-out src/supervisor/forged.c,$(wildcard $(LIB_DIRS:%=src/%/*.c)))
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:src/%.c=$(B)/obj/%.o)
HDRS     := $(wildcard include/forge/*.h src/*/*.h)
DEPFLAGS := -MMD -MP

TESTS   := test_ring test_region test_session test_config test_llm test_mcp
BENCHES := bench_ring

.PHONY: all deps test unit integration bench asan tsan clean install testbin run fuzz \
	test-fresh unit-aarch64 deb test-package

all: $(B)/forged $(B)/forgectl $(B)/mock-llm

deps:
	@sh tools/deps.sh

# Each object depends on the headers it includes (-MMD -MP: build/obj/*.d).
$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE) -I$(B)/gen $(DEPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) -c $< -o $@

# GET /openapi.json serves docs/openapi.json, compiled in as a C string
$(B)/gen/openapi.h: docs/openapi.json
	@mkdir -p $(dir $@)
	sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $< > $@
$(B)/obj/gateway/openapi.o: $(B)/gen/openapi.h
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(B)/obj/supervisor/forged.d

# Made anew each time: `ar r` never drops a member, so an object whose
# source moved or went away would stay in the archive and could be linked.
$(B)/libforge.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/forged: $(B)/obj/supervisor/forged.o $(B)/libforge.a
	$(CC) $(CFLAGS) $(EXTRA) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/forgectl: $(CLI_OBJ) $(B)/libforge.a
	$(CC) $(CFLAGS) $(EXTRA) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/mock-llm: tools/mock-llm.c
	$(CC) $(BASE) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) $(LDFLAGS) -o $@ $< $(LIBS)

$(B)/notify-listen: tests/notify_listen.c
	$(CC) $(BASE) $(CFLAGS) -o $@ $<

# what a power loss leaves of a file (tests/integration/durability.sh)
$(B)/tear: tests/tear.c
	$(CC) $(BASE) $(CFLAGS) -o $@ $<

# libfiu preload for the epoll waits (tests/integration/syscall_faults.sh)
$(B)/fiu_epoll.so: tests/fiu_epoll.c
	$(CC) $(BASE) $(CFLAGS) -shared -fPIC -o $@ $< -ldl -lfiu

$(B)/tests/%: tests/%.c $(B)/libforge.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) -o $@ $< $(B)/libforge.a $(LIBS) -lcmocka

$(B)/bench/%: bench/%.c $(B)/libforge.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) -o $@ $< $(B)/libforge.a $(LIBS)

# The test build: crash points compiled in.
testbin:
	@$(MAKE) --no-print-directory B=build/test CFLAGS="-O1 -g" EXTRA=-DFG_CRASHPOINTS \
		build/test/forged build/test/forgectl

# Runs the mock LLM and forged in the foreground on config/forge.yaml
# (Ctrl-C drains and stops it).
run: all
	@sh tools/run.sh

unit: $(TESTS:%=$(B)/tests/%)
	@sh tests/run_unit.sh $(B)/tests $(TESTS)

integration: all testbin $(B)/notify-listen $(B)/fiu_epoll.so $(B)/tear
	@sh tests/run_integration.sh

test: unit integration

bench: all $(BENCHES:%=$(B)/bench/%)
	@sh bench/run.sh

asan:
	@$(MAKE) --no-print-directory B=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		EXTRA="-fsanitize=address,undefined -fno-sanitize-recover=all -DFG_CRASHPOINTS" \
		build/asan/forged build/asan/forgectl $(TESTS:%=build/asan/tests/%)
	@sh tests/run_unit.sh build/asan/tests $(TESTS)

tsan:
	@$(MAKE) --no-print-directory B=build/tsan CFLAGS="-O1 -g" EXTRA="-fsanitize=thread" \
		build/tsan/tests/test_ring
	@sh tests/run_unit.sh build/tsan/tests test_ring

# The first `make` on a fresh Debian tree (debootstrap minbase with make, gcc
# and libc6-dev only) builds: tests/fresh_machine.sh.  Root, a Debian mirror;
# about 40 s with its cached tree, 70 s without; not in `make test`.
test-fresh:
	@sh tests/fresh_machine.sh

# The unit tests cross-compiled for aarch64 into build/aarch64 and run under
# qemu-aarch64; tools/deps-aarch64.sh installs the cross compiler, qemu and
# the arm64 -dev packages (multiarch).  qemu runs them without -L: the
# multiarch libc6:arm64 brings its own /lib/ld-linux-aarch64.so.1, and
# -L /usr/aarch64-linux-gnu would pair the cross ld.so with that libc.so.6,
# another glibc build (a forked child then loops forever inside fork()).
AARCH64_PC_LIBDIR := /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
unit-aarch64:
	@sh tools/deps-aarch64.sh
	@PKG_CONFIG_LIBDIR=$(AARCH64_PC_LIBDIR) $(MAKE) --no-print-directory B=build/aarch64 \
		CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar DEB_ARCH=:arm64 \
		FORGE_DEPS_CHECKED=1 $(TESTS:%=build/aarch64/tests/%)
	@UNIT_RUNNER=qemu-aarch64 \
		sh tests/run_unit.sh build/aarch64/tests $(TESTS)

# libFuzzer targets (clang): each runs FUZZ_SECONDS from its seed corpus
# (fuzz/corpus/NAME); findings are written to build/fuzz/ and fail the run.
FUZZ_TARGETS := fuzz_config fuzz_llm fuzz_region fuzz_tools fuzz_gateway
FUZZ_SECONDS ?= 10
FUZZ_SRC := $(filter-out src/worker/% src/workflows/% src/supervisor/% src/gateway/%,$(LIB_SRC)) src/gateway/body.c
build/fuzz/%: fuzz/%.c $(FUZZ_SRC) $(HDRS)
	@mkdir -p build/fuzz
	clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -g -O1 $(PKG_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< $(FUZZ_SRC) $(LIBS)

fuzz: $(FUZZ_TARGETS:%=build/fuzz/%)
	@sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# make install [PREFIX=/usr/local] [DESTDIR=] [FORGE_USER=]: the programs,
# their man pages, the README, /etc/forge/forge.yaml (the region in
# /var/lib/forge, durability batch) and the systemd unit (its paths under
# PREFIX).  FORGE_USER (the Debian package: forge) runs the service as that
# user and group, with the region's mode 0660 so that the group's members
# use forgectl; without it the service runs as root.
PREFIX  ?= /usr/local
DESTDIR ?=
FORGE_USER ?=
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/forge $(DESTDIR)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/doc/forge
	install -m 755 $(B)/forged $(B)/forgectl $(B)/mock-llm $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/forgectl.1 man/mock-llm.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/forged.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/forge/
	sed -e 's|^  path: /dev/shm/forge$$|  path: /var/lib/forge/region|; s|^  durability: none$$|  durability: batch|' \
		$(if $(FORGE_USER),-e 's|^  mode: "0600"$$|  mode: "0660"|') \
		config/forge.yaml > $(B)/forge.yaml.installed
	install -m 644 $(B)/forge.yaml.installed $(DESTDIR)/etc/forge/forge.yaml
	sed -e 's|/usr/local/|$(PREFIX)/|g' \
		$(if $(FORGE_USER),-e 's|^\[Service\]$$|[Service]\nUser=$(FORGE_USER)\nGroup=$(FORGE_USER)|') \
		systemd/forge.service > $(B)/forge.service.installed
	install -m 644 $(B)/forge.service.installed $(DESTDIR)/lib/systemd/system/forge.service

# The Debian package, built with debhelper from a copy of the source tree
# (tools/deb.sh): build/deb/forge_VERSION_ARCH.deb, then lintian.
deb:
	@sh tools/deb.sh

# The package installed with apt into a fresh Debian tree booted with
# systemd-nspawn, used, upgraded with sessions in flight, removed and
# purged (tests/package.sh; root, a Debian mirror, minutes).
test-package:
	@sh tests/package.sh

clean:
	rm -rf build
