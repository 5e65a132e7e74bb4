# celer — plain Makefile. Targets: all test asan bench fuzz run install clean
# Every .c under src/<layer>/ goes into libceler.a; src/cli/ builds the celer binary;
# tests/*.c build one test runner whose table is generated from TEST(name) lines.

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
CELER_DATA ?= ../shared
export CELER_DATA

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter
BASEFLAGS:= -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) -pthread -fPIC -fopenmp-simd
# -fvect-cost-model=dynamic (gcc's -O3 model): at -O2 gcc 12 vectorizes a loop only where no
# run-time alias check or remainder loop is needed, which left the model layer's row loops
# (norms, residual adds, copies) scalar. Vectorizing never reorders float operations (no
# -ffast-math), so results are bit for bit the same; a whole Q4_K_M pass on one thread took
# 0.98-0.995 of the time at k = 1..16 (paired, no cached prefix).
OPT      ?= -O2 -g -fvect-cost-model=dynamic
CFLAGS_ALL = $(BASEFLAGS) $(OPT) $(EXTRA_CFLAGS)
LDLIBS   := -lm -pthread $(shell pkg-config --libs libpcre2-8 2>/dev/null || echo -lpcre2-8)
# libcurl for `celer pull`; libcrypto (OpenSSL) for its SHA-256 checks.
LDLIBS   += $(shell pkg-config --libs libcurl libcrypto 2>/dev/null || echo -lcurl -lcrypto)

# Per-ISA kernel files carry their own target flags so one binary runs anywhere;
# the choice among them is made once at run time from cpuid (src/tensor/dispatch.c).
ISA_AVX2   := -mavx2 -mfma -mf16c
ISA_AVX512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mavx512vbmi

LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ:= $(BENCH_SRC:%.c=$(BUILD)/%.o)

LIB      := $(BUILD)/libceler.a
BIN      := $(BUILD)/celer
TESTBIN  := $(BUILD)/celer-tests
BENCHBINS:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
PEER     := $(BUILD)/llama-peer
DEPS_OK  := $(BUILD)/.deps-ok

.PHONY: all lib test asan bench fuzz run install clean deps
all: $(BIN) $(TESTBIN)

# Install Debian packages only when something is missing (scripts/install-deps.sh checks first).
$(DEPS_OK): scripts/install-deps.sh
	@mkdir -p $(BUILD)
	@sh scripts/install-deps.sh
	@touch $@
deps: $(DEPS_OK)

$(BUILD)/%.o: %.c $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(if $(findstring _avx512,$<),$(ISA_AVX512),$(if $(findstring _avx2,$<),$(ISA_AVX2),)) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# The test table is generated from every `TEST(name)` line in tests/*.c.
$(BUILD)/tests/test_table.h: $(TEST_SRC)
	@mkdir -p $(dir $@)
	@sed -n 's/^TEST(\([A-Za-z0-9_]*\)).*/\1/p' $(TEST_SRC) > $@.names
	@{ sed 's/.*/void test_&(void);/' $@.names; echo 'static const struct test_entry test_table[] = {'; \
	   sed 's/.*/    {"&", test_&},/' $@.names; echo '};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/runner.o: $(BUILD)/tests/test_table.h
$(BUILD)/tests/%.o: CFLAGS_ALL += -I$(BUILD)/tests -Itests

$(TESTBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

# Each bench/NAME.c is its own program, build/bench/NAME.
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS)

# `make test` runs every unit, golden and CLI test; the runner prints "N passed, N failed".
test: $(BIN) $(TESTBIN) $(PEER)
	CELER_BIN=$(abspath $(BIN)) $(TESTBIN) $(T)

# ASan+UBSan build of everything, same test suite.
asan:
	CELER_SANITIZE=1 $(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

run: $(BIN)
	sh scripts/run-default.sh $(BIN)

# llama.cpp's side of a same-run race (bench/peer/llama_peer.c, run by bench/run.sh when
# LLAMA_LIB_DIR names a built llama.cpp): it reaches llama.cpp through dlopen, so it builds
# without llama.cpp's headers or libraries.
$(PEER): bench/peer/llama_peer.c $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< -ldl

bench: $(BIN) $(BENCHBINS) $(PEER)
	LLAMA_PEER=$(PEER) sh bench/run.sh $(BIN) $(BUILD)/bench

# libFuzzer targets (clang from Debian), each run for a bounded time under ASan+UBSan.
FUZZ_SECONDS ?= 60
# Build folder of the fuzz build (override to keep parallel runs apart).
FUZZ_BUILD ?= build-fuzz
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wno-pass-failed
lib: $(LIB)
fuzz: $(DEPS_OK)
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" lib
	@mkdir -p $(FUZZ_BUILD)/bin
	@for t in $(FUZZ_TARGETS); do \
	  clang $(BASEFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $(FUZZ_BUILD)/bin/$$t fuzz/$$t.c $(FUZZ_BUILD)/libceler.a $(LDLIBS) || exit 1; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  $(FUZZ_BUILD)/bin/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
	    $(FUZZ_BUILD)/corpus/$$t fuzz/seeds/$$t || exit 1; \
	done

install: $(BIN) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/celer
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libceler.a
	install -m 644 include/celer.h $(DESTDIR)$(PREFIX)/include/celer.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' celer.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/celer.pc

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
