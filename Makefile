# lockbox - one non-recursive Makefile.
#
#   make            build/lockbox
#   make run        install packages, build, init ./demo if absent, serve it
#   make test       normal + ASan/UBSan + fuzz builds (-j2), static analysis,
#                   unit tests (plain and under ASan/UBSan), fuzz corpora,
#                   integration tests
#   make bench      benchmarks against peers, one summary line each
#   make fuzz       every libFuzzer harness for FUZZ_TIME seconds,
#                   FUZZ_JOBS at a time
#   make valgrind   the unit tests under valgrind memcheck
#   make asan       the sanitizer build only
#   make analyze    cppcheck and clang-tidy over $(BUILD)/compile_commands.json
#   make install    PREFIX=/usr/local

PREFIX    ?= /usr/local
CC        ?= cc
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_JOBS ?= 2
TEST_JOBS ?= 2
BUILD     := build

PKGS      := openssl sqlite3 libmicrohttpd gnutls jansson libcurl ldap lber
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lgfshare -lpthread

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2
DEFS      := -D_GNU_SOURCE -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c17 $(WARN) $(DEFS) -I. -I$(BUILD)/gen $(PKG_CFLAGS) \
             -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -MMD -MP
LDFLAGS   += -pie -Wl,-z,relro,-z,now
ASAN_FLAGS := -std=c17 -O1 -g -fno-omit-frame-pointer \
             -fsanitize=address,undefined -fno-sanitize-recover=undefined \
             $(WARN) $(DEFS) -I. -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP

MODULES   := core ca directory crl archive enroll web
LIB_SRCS  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
CLI_SRCS  := $(wildcard cli/*.c)
GEN_SRCS  := $(BUILD)/gen/schema.c
SCHEMA    := $(sort $(wildcard schema/*.sql))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRCS := $(wildcard bench/*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/schema.o
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
ALIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/asan/%.o) $(BUILD)/asan/gen/schema.o
ACLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/asan/%.o)
FLIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzzobj/%.o) $(BUILD)/fuzzobj/gen/schema.o

UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
AUNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run test bench fuzz asan analyze compdb clean install unit \
        valgrind

all: $(BUILD)/lockbox

deps:
	@sh scripts/deps.sh build

$(BUILD)/gen/schema.c: $(SCHEMA) scripts/embed.sh
	@mkdir -p $(@D)
	sh scripts/embed.sh $@ $(SCHEMA)

$(BUILD)/obj/gen/schema.o: $(BUILD)/gen/schema.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/asan/gen/schema.o: $(BUILD)/gen/schema.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_FLAGS) -c -o $@ $<
$(BUILD)/fuzzobj/gen/schema.o: $(BUILD)/gen/schema.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ASAN_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC asan $<"
	@$(CC) $(ASAN_FLAGS) -c -o $@ $<
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC fuzz $<"
	@$(FUZZ_CC) $(ASAN_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/lockbox: $(CLI_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(BUILD)/asan/lockbox: $(ACLI_OBJS) $(ALIB_OBJS)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka
$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/unit/%.o $(ALIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(PKG_LIBS) -lcmocka

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FLIB_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ASAN_FLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(PKG_LIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

asan: $(BUILD)/asan/lockbox $(AUNIT_BINS)

unit: $(UNIT_BINS) $(TOOL_BINS)

run:
	@sh scripts/deps.sh build
	$(MAKE) all
	@# the demo administrator's passphrase: made once, kept outside demo/
	@if [ ! -f demo.pass ]; then (umask 077 && openssl rand -hex 16 >demo.pass); fi
	@if [ ! -f demo/ca.pem ]; then $(BUILD)/lockbox init --dir demo --name "lockbox Demo S/MIME CA" --p12-pass-file demo.pass; fi
	$(BUILD)/lockbox serve --dir demo

# CI calls `make test` without -j: build the three variants TEST_JOBS wide
# unless the caller already runs a parallel make.  tests/run.sh runs the
# static analysis and the unit tests (plain, ASan/UBSan) in the background
# while the integration tests run.
test:
	@sh scripts/deps.sh test
	$(MAKE) $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(TEST_JOBS)) \
	    all unit asan $(FUZZ_BINS)
	@BUILD=$(BUILD) ANALYZE=1 sh tests/run.sh

# The unit tests under valgrind memcheck (CI runs it after make test).
valgrind:
	@sh scripts/deps.sh test
	$(MAKE) $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(TEST_JOBS)) unit
	@BUILD=$(BUILD) VALGRIND=only sh tests/run.sh

bench:
	@sh scripts/deps.sh bench
	$(MAKE) all $(BENCH_BINS)
	@sh bench/run.sh

fuzz: $(FUZZ_BINS)
	@BUILD=$(BUILD) JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh $(FUZZ_TIME)

# The compile database is written from the normal build's own command line
# (scripts/compdb.sh); nothing is compiled for it.
compdb:
	@mkdir -p $(BUILD)
	@sh scripts/compdb.sh "$(CURDIR)" "$(BUILD)/obj" "$(CC) $(CFLAGS)" \
	    $(LIB_SRCS) $(CLI_SRCS) >$(BUILD)/compile_commands.json.tmp
	@mv $(BUILD)/compile_commands.json.tmp $(BUILD)/compile_commands.json

analyze:
	@BUILD=$(BUILD) sh scripts/analyze.sh

install: $(BUILD)/lockbox
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/lockbox $(DESTDIR)$(PREFIX)/bin/lockbox

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
