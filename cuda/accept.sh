#!/usr/bin/env bash
# cuda/accept.sh — the CUDA port's acceptance run: the first thing to run on
# a machine lent with a GPU. Under 8 minutes, build included; its output
# alone says what to fix. In order it prints:
#   1. the GPU, driver and memory (and the CUDA runtime's own view);
#   2. every suite of `make TARGET=cuda` under a timeout: summary, first failures;
#   3. compute-sanitizer memcheck and racecheck on a short forward and a short
#      generation (when the tool is there);
#   4. CPU-vs-GPU logits of synthesized gpt2 (1024 ids) and gpt2-xl (256 ids),
#      f32 and bf16 weights (the CPU build made in the same tree);
#   5. token equality on the GPU: greedy and sampled, batch 1 = batch 64 =
#      batch 64 without the KV cache;
#   6. decode tok/s and % of the device bandwidth bound, gpt2 and gpt2-large
#      in bf16 (kvgpt bench; its bandwidth probe reads device memory), and
#      gpt2 with decode graphs off (KVGPT_CUDA_GRAPHS=0) beside it;
# then one line: VERDICT: PASS or FAIL, with what failed.
#
# Usage: cuda/accept.sh [--host-only]
#   --host-only  the steps a machine without a GPU can do (builds, models,
#                CPU logits); every device step is reported SKIPPED.
# On a lent machine, carry .carry/ (made here by cuda/carry.sh): the fixtures,
# and the Unicode data and Check library, used when the machine lacks them.
# Environment: KVGPT_FIXTURES (else ../shared/fixtures, shared/fixtures or
# .carry/fixtures: the fixtures do not travel by themselves), ACCEPT_MODELS
# (synthesized models; default build/accept-models), JOBS (default nproc).
# Logs go to build/accept; when OUT is set (the lent machine's output
# folder), the small ones also to $OUT/accept-logs.tgz at the end.
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s)
HOST_ONLY=0
[ "${1:-}" = --host-only ] && HOST_ONLY=1
LOG=build/accept
MODELS=${ACCEPT_MODELS:-build/accept-models}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
rm -rf "$LOG"   # nothing of an earlier run may pass for this one's
mkdir -p "$LOG" "$MODELS"
FAILED=()    # correctness: what to fix
MISSED=()    # performance targets not met
SKIPPED=()

elapsed() { echo $(($(date +%s) - T0)); }
section() { printf '\n==== %s  [%d s]\n' "$1" "$(elapsed)"; }
fail() { FAILED+=("$1"); echo "FAIL: $1"; }
skip() { SKIPPED+=("$1"); echo "SKIPPED: $1"; }
verdict() {
    echo
    local v="PASS"
    [ ${#FAILED[@]} -gt 0 ] && v="FAIL: $(IFS=';'; echo "${FAILED[*]}")"
    [ ${#MISSED[@]} -gt 0 ] && v="$v; performance targets missed: $(IFS=';'; echo "${MISSED[*]}")"
    [ ${#SKIPPED[@]} -gt 0 ] && v="$v; skipped: $(IFS=';'; echo "${SKIPPED[*]}")"
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        tar czf "$OUT/accept-logs.tgz" --exclude='*.f32' --exclude='*.safetensors' -C build accept 2>/dev/null
    fi
    echo "VERDICT ($(elapsed) s): $v"
    [ ${#FAILED[@]} -eq 0 ] || exit 1
    exit 0
}
# The last lines of a log, indented.
tail_of() { tail -n "${2:-15}" "$1" | sed 's/^/    | /'; }

# ---- fixtures: without them most suites would pass by skipping ----
FIX=""
for d in "${KVGPT_FIXTURES:-}" ../shared/fixtures shared/fixtures .carry/fixtures; do
    [ -n "$d" ] && [ -f "$d/shakespeare_char/model.safetensors" ] && FIX=$(cd "$d" && pwd) && break
done

# ---- 1. the GPU ----
section "1. GPU, driver, memory"
ARCH=""
if [ $HOST_ONLY = 1 ]; then
    skip "GPU steps (--host-only)"
elif ! command -v nvidia-smi >/dev/null; then
    fail "no nvidia-smi on this machine: no NVIDIA driver (run with --host-only where no GPU is expected)"
    verdict
elif ! nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,compute_cap,clocks.sm,clocks.max.sm \
        --format=csv >"$LOG/gpu.csv" 2>&1; then
    fail "nvidia-smi sees no GPU: $(tail -n 1 "$LOG/gpu.csv")"
    verdict
else
    cat "$LOG/gpu.csv"
    CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
    ARCH="-gencode arch=compute_${CAP},code=sm_${CAP}"
    echo "building for this GPU only: $ARCH"
    nvidia-smi --query-gpu=persistence_mode,power.limit,power.draw,temperature.gpu --format=csv 2>/dev/null
fi
[ -n "$FIX" ] && echo "fixtures: $FIX" || fail "no fixtures (KVGPT_FIXTURES, ../shared/fixtures, shared/fixtures, .carry/fixtures): run cuda/carry.sh before the device call and carry .carry"
export KVGPT_FIXTURES=$FIX

# ---- build: the CPU tool and the CUDA library, tool and suites, at once ----
section "build (cpu and cuda, -j$JOBS)"
MAKE_VARS=()   # what this machine lacks, from .carry/ (cuda/carry.sh)
if [ ! -f /usr/share/unicode/UnicodeData.txt ] && [ -f .carry/unicode/UnicodeData.txt ]; then
    MAKE_VARS+=("UNICODE_DIR=$PWD/.carry/unicode")
fi
if ! echo '#include <check.h>' | gcc -E -x c - >/dev/null 2>&1 && [ -f .carry/check/include/check.h ]; then
    MAKE_VARS+=("CHECK_CFLAGS=-I$PWD/.carry/check/include"
                "CHECK_LIBS=-L$PWD/.carry/check/lib -lcheck -lsubunit -lrt -lpthread -lm")
fi
[ ${#MAKE_VARS[@]} -gt 0 ] && echo "from .carry: ${MAKE_VARS[*]}"
( make -j"$JOBS" TARGET=cpu "${MAKE_VARS[@]}" all >"$LOG/build-cpu.log" 2>&1; echo $? >"$LOG/build-cpu.rc" ) &
CUDA_MAKE=(make -j"$JOBS" TARGET=cuda "${MAKE_VARS[@]}")
[ -n "$ARCH" ] && CUDA_MAKE+=("CUDA_ARCH=$ARCH")
"${CUDA_MAKE[@]}" all tests >"$LOG/build-cuda.log" 2>&1
CUDA_RC=$?
wait
CPU_RC=$(cat "$LOG/build-cpu.rc")
echo "cpu build: exit $CPU_RC; cuda build: exit $CUDA_RC"
[ "$CPU_RC" = 0 ] || { fail "make TARGET=cpu all (log: $LOG/build-cpu.log)"; tail_of "$LOG/build-cpu.log"; }
[ "$CUDA_RC" = 0 ] || { fail "make TARGET=cuda all tests (log: $LOG/build-cuda.log)"; tail_of "$LOG/build-cuda.log"; }
[ "$CPU_RC" = 0 ] && [ "$CUDA_RC" = 0 ] || verdict
CPU_TOOL=build/cpu/kvgpt
GPU_TOOL=build/cuda/kvgpt

DEVICE=0
if [ $HOST_ONLY = 0 ]; then
    build/cuda/cuda-probe >"$LOG/probe.txt" 2>&1
    rc=$?
    cat "$LOG/probe.txt"
    if [ $rc = 0 ]; then
        DEVICE=1
    else
        fail "the CUDA runtime finds no usable device: $(tail -n 1 "$LOG/probe.txt")"
    fi
fi

# ---- models and the CPU's logits, in the background while the suites run ----
ids() {   # $1 ids: a fixed pseudo-random sequence below 50257
    python3 -c "import sys; n=int(sys.argv[1]); print(','.join(str((i*7919+13)%50257) for i in range(n)))" "$1"
}
IDS1024=$(ids 1024)
IDS256=$(ids 256)
synth() {   # shape: bf16 files (half the bytes to write; the f32 runs widen them exactly)
    [ -f "$MODELS/$1/model.safetensors" ] || $CPU_TOOL synth --shape "$1" --dtype bf16 --out "$MODELS/$1" >/dev/null
}
(
    set -e
    synth gpt2
    synth gpt2-xl
    synth gpt2-large
    for dt in f32 bf16; do
        $CPU_TOOL logits --model "$MODELS/gpt2" --ids "$IDS1024" --dtype $dt --out "$LOG/gpt2-$dt.cpu.f32" >/dev/null
        $CPU_TOOL logits --model "$MODELS/gpt2-xl" --ids "$IDS256" --dtype $dt --out "$LOG/gpt2-xl-$dt.cpu.f32" >/dev/null
    done
    echo done >"$LOG/host-work.done"
) >"$LOG/host-work.log" 2>&1 &
HOST_WORK=$!

# ---- compute-sanitizer, in the background while the suites run ----
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
SAN_PID="" SAN_SKIP=""
if [ $DEVICE = 0 ]; then
    SAN_SKIP="compute-sanitizer (no device)"
elif [ -z "$SAN" ]; then
    SAN_SKIP="compute-sanitizer (not installed)"
elif [ -z "$FIX" ]; then
    SAN_SKIP="compute-sanitizer (no fixtures)"
else
    (
        fwd=(logits --model "$FIX/gpt2_tiny_hf" --ids 464,3290,318,257,1332,286,262,1994,13,198,464,2068)
        gen=(sample --model "$FIX/shakespeare_char" --start-ids 18,47,56 --num_samples 2 --batch 2 --max_new_tokens 70)
        for run in memcheck:forward memcheck:generation racecheck:forward racecheck:generation initcheck:forward; do
            tool=${run%%:*} what=${run#*:}
            if [ "$what" = forward ]; then args=("${fwd[@]}"); else args=("${gen[@]}"); fi
            timeout -k 10 180 "$SAN" --tool "$tool" --error-exitcode 99 $GPU_TOOL "${args[@]}" \
                >"$LOG/san-$tool-$what.log" 2>&1
            echo $? >"$LOG/san-$tool-$what.rc"
        done
    ) &
    SAN_PID=$!
fi

# ---- 2. the suites ----
section "2. suites (make TARGET=cuda tests), each under a timeout"
SUITE_TIMEOUT=${SUITE_TIMEOUT:-240}
if [ $DEVICE = 1 ]; then
    SUITES=$(find build/cuda/tests -maxdepth 1 -name 'test_*' -type f -perm -u+x | sort)
    # Three at a time: the GPU has room, and the suites are mostly host work.
    # MAKEFLAGS as make would pass it: test_install's nested make installs this build.
    run_suite() {
        n=$(basename "$1")
        KVGPT_TOOL=build/cuda/kvgpt KVGPT_REQUIRE_FIXTURES=1 MAKEFLAGS="-- TARGET=cuda" \
            timeout -k 10 "$SUITE_TIMEOUT" "$1" >"$LOG/$n.log" 2>&1
        echo $? >"$LOG/$n.rc"
    }
    export -f run_suite
    export LOG SUITE_TIMEOUT
    printf '%s\n' $SUITES | xargs -P 3 -I{} bash -c 'run_suite "$1"' _ {}
    for t in $SUITES; do
        n=$(basename "$t")
        rc=$(cat "$LOG/$n.rc")
        sum=$(grep -E '[0-9]+%: Checks: ' "$LOG/$n.log" | tail -n 1)
        skips=$(grep -c '^SKIP: ' "$LOG/$n.log")
        [ "$skips" = 0 ] || sum="$sum; $skips skipped: $(grep -m 1 '^SKIP: ' "$LOG/$n.log" | cut -c7-80)"
        printf '  %-22s exit %-3s %s\n' "$n" "$rc" "${sum:-(no summary)}"
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            fail "$n timed out after $SUITE_TIMEOUT s (log: $LOG/$n.log)"
            tail_of "$LOG/$n.log" 8
        elif [ "$rc" != 0 ]; then
            fail "$n (log: $LOG/$n.log)"
            grep -E ':[0-9]+:[EF]:' "$LOG/$n.log" | head -n 5 | sed 's/^/    | /'
            grep -qE ':[0-9]+:[EF]:' "$LOG/$n.log" || tail_of "$LOG/$n.log" 8
        fi
    done
    grep -h "device free memory\|device streaming read\|draws equal\|cases (" "$LOG"/test_cuda_*.log 2>/dev/null | sed 's/^/  /'
else
    skip "suites (no device)"
fi

# ---- 3. compute-sanitizer (printed here, run beside the suites) ----
section "3. compute-sanitizer"
[ -n "$SAN_SKIP" ] && skip "$SAN_SKIP"
if [ -n "$SAN_PID" ]; then
    wait "$SAN_PID"
    for f in "$LOG"/san-*.rc; do
        n=$(basename "$f" .rc)
        rc=$(cat "$f")
        summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$LOG/$n.log" | tail -n 1)
        printf '  %-26s exit %-3s %s\n' "${n#san-}" "$rc" "${summary:-}"
        if [ "$rc" != 0 ]; then
            fail "compute-sanitizer ${n#san-} (log: $LOG/$n.log)"
            grep -E "^========= +(Invalid|Race|Error|Uninitialized|Program hit|Saved host backtrace)|^========= [A-Z]" \
                "$LOG/$n.log" | head -n 6 | sed 's/^/    | /'
        fi
    done
fi

# ---- 4. CPU-vs-GPU logits ----
section "4. CPU vs GPU logits (synthesized weights; tolerance 1e-3 of each position's largest |logit|)"
wait $HOST_WORK
if [ ! -f "$LOG/host-work.done" ]; then
    fail "synthesizing models or the CPU logits (log: $LOG/host-work.log)"
    tail_of "$LOG/host-work.log" 8
elif [ $DEVICE = 0 ]; then
    ls -la "$LOG"/*.cpu.f32 | sed 's/^/  /'
    skip "GPU logits (no device)"
else
    for m in gpt2:"$IDS1024" gpt2-xl:"$IDS256"; do
        shape=${m%%:*}
        for dt in f32 bf16; do
            out=$($GPU_TOOL logits --model "$MODELS/$shape" --ids "${m#*:}" --dtype $dt \
                --compare "$LOG/$shape-$dt.cpu.f32" --tol 1e-3 2>&1)
            rc=$?
            line=$(echo "$out" | grep '^compare' | sed "s|$LOG/||")
            printf '  %-8s %-4s %s\n' "$shape" "$dt" "${line:-$(echo "$out" | tail -n 1)}"
            [ $rc = 0 ] || fail "$shape $dt logits differ from the CPU's"
        done
    done
fi

# ---- 5. token equality on the GPU ----
section "5. tokens: batch 1 = batch 64 (64 samples) = no cache (the first 16), gpt2, 150-token prompt, 24 new"
if [ $DEVICE = 0 ]; then
    skip "token equality (no device)"
else
    PROMPT=$(ids 150)
    for mode in greedy sampled; do
        if [ $mode = greedy ]; then s=(--temperature 0); else s=(--temperature 0.8 --top_k 200 --seed 1337); fi
        base=(sample --model "$MODELS/gpt2" --start-ids "$PROMPT" --max_new_tokens 24 "${s[@]}")
        $GPU_TOOL "${base[@]}" --num_samples 64 --batch 1 >"$LOG/tok-$mode-b1.txt" 2>"$LOG/tok-$mode-b1.err"
        r1=$?
        $GPU_TOOL "${base[@]}" --num_samples 64 --batch 64 >"$LOG/tok-$mode-b64.txt" 2>"$LOG/tok-$mode-b64.err"
        r2=$?
        $GPU_TOOL "${base[@]}" --num_samples 16 --batch 16 --kv-cache off >"$LOG/tok-$mode-nocache.txt" \
            2>"$LOG/tok-$mode-nocache.err"
        r3=$?
        distinct=$(grep -v -- '---------------' "$LOG/tok-$mode-b1.txt" | sort -u | wc -l)
        if [ $r1$r2$r3 != 000 ]; then
            fail "kvgpt sample ($mode) exited $r1/$r2/$r3"
            tail -n 2 "$LOG/tok-$mode-b1.err" "$LOG/tok-$mode-b64.err" "$LOG/tok-$mode-nocache.err" | sed 's/^/    | /'
        elif ! cmp -s "$LOG/tok-$mode-b1.txt" "$LOG/tok-$mode-b64.txt"; then
            fail "$mode tokens: batch 64 differs from batch 1 (diff $LOG/tok-$mode-b1.txt $LOG/tok-$mode-b64.txt)"
        elif ! head -n 32 "$LOG/tok-$mode-b1.txt" | cmp -s - "$LOG/tok-$mode-nocache.txt"; then
            fail "$mode tokens: without the cache they differ (diff <(head -n 32 $LOG/tok-$mode-b1.txt) $LOG/tok-$mode-nocache.txt)"
        else
            echo "  $mode: identical in all three runs ($distinct distinct samples of 64)"
        fi
        grep -h "average" "$LOG/tok-$mode-b1.err" "$LOG/tok-$mode-b64.err" "$LOG/tok-$mode-nocache.err" |
            sed 's/^kvgpt sample: /    /'
    done
fi

# ---- 6. speed ----
section "6. decode speed, bf16, batch 1 (kvgpt bench; bound = device read probe / weight bytes per token)"
if [ $DEVICE = 0 ]; then
    skip "bench (no device)"
else
    $GPU_TOOL bench --models "$MODELS" --shapes gpt2,gpt2-large --dtype bf16 --no-nocache --tokens 256 --reps 3 \
        --out "$LOG/bench" >"$LOG/bench.md" 2>"$LOG/bench.err"
    rc=$?
    KVGPT_CUDA_GRAPHS=0 $GPU_TOOL bench --models "$MODELS" --shapes gpt2 --dtype bf16 --no-nocache --tokens 256 \
        --reps 2 --out "$LOG/bench-nographs" >/dev/null 2>"$LOG/bench-nographs.err"
    if [ $rc != 0 ]; then
        fail "kvgpt bench exited $rc (log: $LOG/bench.err)"
        tail_of "$LOG/bench.err" 6
    else
        grep -E "tok/s with the cache" "$LOG/bench.err" | sed 's/^kvgpt bench: /  /'
        grep -E "tok/s with the cache" "$LOG/bench-nographs.err" | sed 's/^kvgpt bench: /  graphs off: /'
        grep -E '^\| (gpt2|model)' "$LOG/bench.md" | sed 's/^/  /'
        # Targets (set for an H100; an H200's bound is ~1.4x higher, its launch overhead the same).
        tok() {   # "TOK_S PERCENT" of shape $1
            grep -E "^kvgpt bench: $1: [0-9.]+ tok/s with the cache" "$LOG/bench.err" |
                sed -E 's/.*: ([0-9.]+) tok\/s with the cache \(([0-9]+)%.*/\1 \2/'
        }
        read -r s_tok s_pct <<<"$(tok gpt2)"
        read -r l_tok l_pct <<<"$(tok gpt2-large)"
        echo "  targets: gpt2 >= 3000 tok/s: ${s_tok:-?}; gpt2-large >= 1000 tok/s: ${l_tok:-?}, >= 60% of bound: ${l_pct:-?}%"
        awk -v t="${s_tok:-0}" 'BEGIN { exit !(t >= 3000) }' || MISSED+=("gpt2 bf16 ${s_tok:-?} tok/s < 3000")
        awk -v t="${l_tok:-0}" 'BEGIN { exit !(t >= 1000) }' || MISSED+=("gpt2-large bf16 ${l_tok:-?} tok/s < 1000")
        awk -v t="${l_pct:-0}" 'BEGIN { exit !(t >= 60) }' || MISSED+=("gpt2-large ${l_pct:-?}% of the bandwidth bound < 60%")
    fi
fi
verdict
