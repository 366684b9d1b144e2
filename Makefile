# kvgpt — build. `make` (TARGET=cpu) → build/cpu/libkvgpt.a and build/cpu/kvgpt.
# make test | make bench | make run | make TARGET=cuda | make test SAN=address,undefined
SHELL  := /bin/bash
TARGET ?= cpu
SAN    ?=
CC     := gcc
ARCH   ?= -march=native
OPT    ?= -O3

ifneq ($(TARGET),cpu)
ifneq ($(TARGET),cuda)
$(error TARGET must be cpu or cuda, not '$(TARGET)')
endif
endif

BUILD := build/$(TARGET)$(if $(SAN),-san)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-psabi
CFLAGS  := -std=c99 $(OPT) -g $(ARCH) -ffp-contract=fast -fopenmp $(WARN) \
           -D_POSIX_C_SOURCE=200809L -Iinclude -I. -I$(BUILD)/gen -MMD -MP
LDLIBS  := -fopenmp -lm
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS  += -fsanitize=$(SAN)
endif

# The library: everything but the port is target-independent.
CORE_SRC := $(wildcard common/*.c arena/*.c loader/*.c cache/*.c model/*.c tokenizer/*.c)
CPU_SRC  := $(wildcard ops/*.c) port/cpu.c port/governor.c
GEN_SRC  := $(BUILD)/gen/unicode_tables.c
LIB_SRC  := $(CORE_SRC) $(CPU_SRC)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/unicode_tables.o
LIB      := $(BUILD)/libkvgpt.a

TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TOOL_SRC))
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
# to BUILD/test-logs, prints one "N passed, N failed" line; fails if any failed.
SUITE_TIMEOUT ?= 1200
define RUN_SUITES
fail=0; for t in $(TEST_BIN); do echo "== $$t"; \
  KVGPT_TOOL=$(TOOL) KVGPT_MEMCHECK_TOOL=$(MEMCHECK_TOOL) timeout -k 10 $(SUITE_TIMEOUT) $$t 2>&1 | tee $(BUILD)/test-logs/$${t##*/}.log; \
  rc=$${PIPESTATUS[0]}; [ $$rc = 124 -o $$rc = 137 ] && echo "TIMED OUT after $(SUITE_TIMEOUT) s: $$t" | tee -a $(BUILD)/test-logs/$${t##*/}.log; \
  [ $$rc = 0 ] || { fail=$$((fail + 1)); echo "FAILED: $$t"; }; done; \
cat $(BUILD)/test-logs/*.log | awk -v suites_failed=$$fail '/Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ { \
  gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($$i == "Checks:") c += $$(i+1); \
  if ($$i == "Failures:" || $$i == "Errors:") f += $$(i+1) } } \
  END { if (f == 0) f = suites_failed; printf "%d passed, %d failed\n", c - f, f }'; \
[ $$fail = 0 ] || { echo "SOME SUITES FAILED"; exit 1; }
endef

.SECONDARY:
all: $(LIB) $(TOOL)
lib: $(LIB)
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
# What the host side needs of ops/ whatever the backend: f16/bf16 conversion
# (loader, synth), the machine probes and ops_threads (bench).
CUDA_HOST_OPS := ops/probe.c ops/rowwise.c
CUDA_SRC := $(wildcard cuda/*.cu)
LIB_SRC  := $(CORE_SRC) $(CUDA_HOST_OPS)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/unicode_tables.o \
            $(patsubst %.cu,$(BUILD)/obj/%.o,$(CUDA_SRC))
CFLAGS   += -I$(CUDA_HOME)/include
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++ -ldl -lpthread -lrt
# Suites of the CPU port's own parts (ops/ kernels, the thread governor) test the CPU build only.
CUDA_SKIP_TESTS := tests/test_ops.c tests/test_governor.c
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
CUDA_OPS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard ops/*.c)) $(BUILD)/obj/tests/cuda_fexp.o
$(BUILD)/tests/test_cuda_ops: $(BUILD)/obj/tests/test_cuda_ops.o $(TEST_SUPPORT_OBJ) $(CUDA_OPS_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(TEST_SUPPORT_OBJ) $(CUDA_OPS_OBJ) $(LIB) $(CHECK_LIBS) $(LDLIBS) -ldl -o $@

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
	  echo "NO USABLE CUDA DEVICE: every GPU check is SKIPPED, not passed: the suites (built against $(LIB), not run): $(notdir $(filter-out $(CUDA_NO_DEVICE_TESTS),$(TEST_BIN)))"; \
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

# Unicode classes for the GPT-2 pre-tokenizer, generated from Debian's unicode-data.
UNICODE_DIR ?= /usr/share/unicode
$(GEN_SRC): tools/gen_unicode.py
	@mkdir -p $(dir $@)
	python3 tools/gen_unicode.py $(UNICODE_DIR) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/unicode_tables.o: $(GEN_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(TOOL): $(TOOL_OBJ) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(TOOL_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $< $(TEST_SUPPORT_OBJ) $(LIB) $(CHECK_LIBS) $(LDLIBS) -ldl -o $@

# Every suite runs; the target fails if any failed. Fixtures: ../shared/fixtures
# unless KVGPT_FIXTURES says otherwise. (TARGET=cuda has its own test rule above.)
ifneq ($(TARGET),cuda)
# valgrind 3.19 decodes no AVX-512: tests/test_memcheck.c runs a copy of the
# tool built for x86-64-v3 (AVX2, FMA, F16C) in its own folder. Not under the
# sanitizers (ASan does not run under valgrind; LeakSanitizer checks there).
MEMCHECK_BUILD := build/memcheck
MEMCHECK_ARCH  ?= $(if $(filter x86_64,$(shell uname -m)),-march=x86-64-v3,$(ARCH))
ifeq ($(SAN),)
MEMCHECK_TOOL  := $(MEMCHECK_BUILD)/kvgpt
.PHONY: memcheck-tool
memcheck-tool:
	@$(MAKE) --no-print-directory BUILD=$(MEMCHECK_BUILD) ARCH=$(MEMCHECK_ARCH) $(MEMCHECK_TOOL)
endif

test: $(TEST_BIN) $(TOOL) $(if $(MEMCHECK_TOOL),memcheck-tool)
	@rm -rf $(BUILD)/test-logs; mkdir -p $(BUILD)/test-logs; $(RUN_SUITES)
endif

MODELS ?= models
FIXTURES ?= ../shared/fixtures
# Synthesized GPT-2 small (random weights: no real weights can be downloaded
# here), with the real GPT-2 tokenizer files when the fixtures are at hand.
$(MODELS)/gpt2/model.safetensors: | $(TOOL)
	$(TOOL) synth --shape gpt2 --out $(MODELS)/gpt2 \
	  $(if $(wildcard $(FIXTURES)/gpt2_tiny_hf/merges.txt),--tokenizer $(FIXTURES)/gpt2_tiny_hf)

# The seed's experiment: one sample with and without the KV cache, both times and the speed-up.
RUN_PROMPT ?= What is the answer to life, the universe, and everything?
run: $(TOOL) $(MODELS)/gpt2/model.safetensors
	if [ -f $(MODELS)/gpt2/merges.txt ]; then set -- --start "$(RUN_PROMPT)"; else set -- --start-ids 50256; fi; \
	$(TOOL) sample --model $(MODELS)/gpt2 "$$@" --num_samples 1 --max_new_tokens 128 --compare

bench: $(TOOL)
	$(TOOL) bench --models $(MODELS) --out bench-out

clean:
	rm -rf build

# Fuzz targets (libFuzzer, clang): make fuzz → build/fuzz/.
-include tests/fuzz/fuzz.mk

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- install / pkg-config ------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: lib/libkvgpt.a, include/kvgpt.h,
# lib/pkgconfig/kvgpt.pc and bin/kvgpt. A host then needs nothing else:
#   cc host.c $(pkg-config --static --cflags --libs kvgpt)
# Libs.private is exactly what this target links its own programs with
# (-fopenmp -lm for cpu; the CUDA runtime for cuda).
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
	    -e 's|@LIBS_PRIVATE@|$(strip $(LDLIBS))|g' kvgpt.pc.in > $(INSTALL_DIR)/lib/pkgconfig/kvgpt.pc

uninstall:
	rm -f $(INSTALL_DIR)/lib/libkvgpt.a $(INSTALL_DIR)/include/kvgpt.h \
	      $(INSTALL_DIR)/lib/pkgconfig/kvgpt.pc $(INSTALL_DIR)/bin/kvgpt

# The embedding example, built with every `make` against the public header only.
EXAMPLES := $(BUILD)/examples/host
examples: $(EXAMPLES)
all: $(EXAMPLES)
$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(filter-out -I. -I$(BUILD)/gen,$(CFLAGS)) $< $(LIB) $(LDLIBS) -o $@
