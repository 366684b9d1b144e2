# kvgpt — build. `make` (TARGET=cpu) → build/cpu/libkvgpt.a and build/cpu/kvgpt.
# make test | make bench | make run | make TARGET=cuda | make test SAN=address,undefined
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

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  := -std=c99 $(OPT) -g $(ARCH) -ffp-contract=fast -fopenmp $(WARN) \
           -D_POSIX_C_SOURCE=200809L -Iinclude -I. -I$(BUILD)/gen -MMD -MP
LDLIBS  := -fopenmp -lm
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS  += -fsanitize=$(SAN)
endif

# The library: everything but the port is target-independent.
CORE_SRC := $(wildcard common/*.c arena/*.c loader/*.c cache/*.c model/*.c tokenizer/*.c)
CPU_SRC  := $(wildcard ops/*.c) port/cpu.c
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

.PHONY: all lib tool test bench run clean
.SECONDARY:
all: $(LIB) $(TOOL)
lib: $(LIB)
tool: $(TOOL)

ifeq ($(TARGET),cuda)
all lib tool test bench run:
	@echo "make TARGET=cuda: the CUDA port is not built yet (issue: CUDA port); refusing to build the CPU library under build/cuda." >&2
	@exit 1
endif

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
# unless KVGPT_FIXTURES says otherwise.
test: $(TEST_BIN) $(TOOL)
	@fail=0; for t in $(TEST_BIN); do echo "== $$t"; \
	  KVGPT_TOOL=$(TOOL) $$t || fail=1; done; \
	if [ $$fail = 0 ]; then echo "all suites passed"; else echo "SOME SUITES FAILED"; exit 1; fi

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
