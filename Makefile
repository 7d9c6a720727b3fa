# forge — build, test, bench.  `make` builds build/forged, build/forgectl;
# `make test` runs every test; `make bench` every benchmark.
# Missing Debian packages are installed first when run as root (tools/deps.sh).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-missing-field-initializers
BASE    := -std=c11 -D_GNU_SOURCE -Iinclude -pthread $(WARN)
PKGS    := libcurl jansson yaml-0.1 libsystemd libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS    := $(PKG_LIBS) -lm -pthread
B       ?= build
EXTRA   ?=

LIB_SRC := src/log.c src/util.c src/crash.c src/region.c src/ring.c src/session.c src/conv.c src/tool.c src/llm.c src/http.c src/workflow.c src/rate.c src/inspect.c src/gateway.c src/gwreq.c \
           src/registry.c src/config.c src/worker.c src/supervisor.c
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
HDRS    := $(wildcard include/forge/*.h src/*.h)

TESTS   := test_ring test_region test_session test_config test_llm
BENCHES := bench_ring

.PHONY: all deps test unit integration bench asan tsan clean install testbin run fuzz

all: deps $(B)/forged $(B)/forgectl $(B)/mock-llm

deps:
	@sh tools/deps.sh

$(B)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) -c $< -o $@

$(B)/libforge.a: $(LIB_OBJ)
	ar rcs $@ $^

$(B)/forged: $(B)/obj/forged.o $(B)/libforge.a
	$(CC) $(CFLAGS) $(EXTRA) -o $@ $^ $(LIBS)

$(B)/forgectl: $(B)/obj/forgectl.o $(B)/libforge.a
	$(CC) $(CFLAGS) $(EXTRA) -o $@ $^ $(LIBS)

$(B)/mock-llm: tools/mock-llm.c
	$(CC) $(BASE) $(PKG_CFLAGS) $(CFLAGS) $(EXTRA) -o $@ $< $(LIBS)

$(B)/notify-listen: tests/notify_listen.c
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

unit: deps $(TESTS:%=$(B)/tests/%)
	@sh tests/run_unit.sh $(B)/tests $(TESTS)

integration: all testbin $(B)/notify-listen $(B)/fiu_epoll.so
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

# libFuzzer targets (clang): each runs FUZZ_SECONDS from its seed corpus
# (fuzz/corpus/NAME); findings are written to build/fuzz/ and fail the run.
FUZZ_TARGETS := fuzz_config fuzz_llm fuzz_region fuzz_tools fuzz_gateway
FUZZ_SECONDS ?= 10
FUZZ_SRC := $(filter-out src/worker.c src/supervisor.c src/gateway.c,$(LIB_SRC))
build/fuzz/%: fuzz/%.c $(FUZZ_SRC) $(HDRS)
	@mkdir -p build/fuzz
	clang -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 $(PKG_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< $(FUZZ_SRC) $(LIBS)

fuzz: deps $(FUZZ_TARGETS:%=build/fuzz/%)
	@sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

PREFIX  ?= /usr/local
DESTDIR ?=
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/forge $(DESTDIR)/lib/systemd/system
	install -m 755 $(B)/forged $(B)/forgectl $(B)/mock-llm $(DESTDIR)$(PREFIX)/bin/
	install -m 644 config/forge.yaml $(DESTDIR)/etc/forge/forge.yaml
	install -m 644 systemd/forge.service $(DESTDIR)/lib/systemd/system/forge.service

clean:
	rm -rf build
