# tests/fuzz/fuzz.mk — libFuzzer targets (Debian's clang), included by the Makefile.
#   make fuzz                      → build/fuzz/fuzz_* (ASan + UBSan + libFuzzer)
#   make fuzz-run FUZZ_SECONDS=N   → each target N seconds on its seed corpus;
#                                    prints executions and coverage per target
#   make fuzz-regress              → each target once over tests/fuzz/regress/NAME/
# The library sources a target needs are compiled here with clang and the
# fuzz instrumentation (not taken from the gcc-built libkvgpt.a), into an
# archive so that each target links only what it uses.
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_RSS_MB  ?= 2048
FUZZ_TIMEOUT ?= 10
FUZZ_SAN     := address,undefined
FUZZ_CFLAGS  := -std=c99 -g -O1 -fopenmp -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
                -D_POSIX_C_SOURCE=200809L -Iinclude -I. -MMD -MP \
                -Wno-pass-failed
# The whole library (the Makefile's own lists, every kernel set) and the tool's
# option parser, with OpenMP: the archive lets each target link only what it uses.
FUZZ_LIB_SRC := $(CORE_SRC) $(CPU_SRC) tools/cli.c
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRC)) \
                $(foreach s,$(OPS_SETS),$(patsubst %.c,$(FUZZ_DIR)/obj/%.$(s).o,$(OPS_SET_SRC)))
FUZZ_LIB     := $(FUZZ_DIR)/libkvgpt_fuzz.a
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# The nanoGPT checkpoint readers only where the tree has them.
FUZZ_NAMES   := $(if $(wildcard loader/ckpt.h),$(FUZZ_NAMES),$(filter-out ckpt meta,$(FUZZ_NAMES)))
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-run fuzz-regress
fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@

define FUZZ_SET_RULE
$$(FUZZ_DIR)/obj/ops/%.$(1).o: ops/%.c
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(OPS_FLAGS_$(1)) -DOPS_SET=$(1) -fsanitize=fuzzer-no-link,$$(FUZZ_SAN) -c $$< -o $$@
endef
$(foreach s,$(OPS_SETS),$(eval $(call FUZZ_SET_RULE,$(s))))

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -Werror -fsanitize=fuzzer,$(FUZZ_SAN) $< $(FUZZ_LIB) -lm -o $@

# One target at a time (the machine's cores are shared). New inputs go to
# build/fuzz/corpus/NAME; the committed seeds in tests/fuzz/corpus/NAME are
# only read. Crashes land in build/fuzz/artifacts/NAME/ and fail the target.
fuzz-run: $(FUZZ_BINS)
	@fail=0; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/artifacts/$$n; \
	  dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
	  seeds=; [ -d tests/fuzz/corpus/$$n ] && seeds=tests/fuzz/corpus/$$n; \
	  $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) \
	    -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 $$dict \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$n/ $(FUZZ_DIR)/corpus/$$n $$seeds \
	    > $(FUZZ_DIR)/fuzz_$$n.log 2>&1; rc=$$?; \
	  last=$$(grep -E '^#[0-9]+' $(FUZZ_DIR)/fuzz_$$n.log | tail -1); \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/fuzz_$$n.log); \
	  rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_DIR)/fuzz_$$n.log); \
	  printf '%-12s rc=%d executions=%s exec/s=%s | %s\n' $$n $$rc "$$execs" "$$rate" "$$last"; \
	  if [ $$rc != 0 ]; then fail=1; grep -E 'ERROR|SUMMARY|kvgpt fuzz|artifact' $(FUZZ_DIR)/fuzz_$$n.log | head -8; fi; \
	done; \
	if [ $$fail = 0 ]; then echo "fuzz-run: no crashes"; else echo "fuzz-run: CRASHES (see build/fuzz/artifacts/)"; exit 1; fi

# Every input a fuzzer ever crashed on, replayed once (also done by tests/test_overflow.c with gcc).
fuzz-regress: $(FUZZ_BINS)
	@fail=0; for n in $(FUZZ_NAMES); do \
	  files=$$(ls tests/fuzz/regress/$$n/* 2>/dev/null); [ -z "$$files" ] && continue; \
	  $(FUZZ_DIR)/fuzz_$$n $$files > $(FUZZ_DIR)/fuzz_$$n.regress.log 2>&1 || { fail=1; echo "$$n: FAILED (see $(FUZZ_DIR)/fuzz_$$n.regress.log)"; }; \
	  echo "$$n: $$(echo $$files | wc -w) regression inputs replayed"; \
	done; exit $$fail

# The fuzz objects' own dependency files.
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
