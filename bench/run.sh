#!/bin/sh
# `make bench`: speed of plain decoding and of batched passes on TinyLlama-1.1B-shaped
# random-weight models (celer synth, Llama 2 vocabulary), next to llama.cpp's figures from
# shared/docs/BENCHMARKING.md; then every other bench program in BENCH_DIR.
#
#   sh bench/run.sh CELER_BIN BENCH_DIR
#
# Environment: CELER_DATA (default ../shared), CELER_BENCH_MODELS (model cache, default
# bench-models beside CELER_BIN, e.g. build/bench-models; files are made only when missing), BENCH_TYPES (default
# "Q4_0 Q8_0 Q4_K_M"), BENCH_REPS (runs per measurement, default 3), BENCH_THREADS
# (default "1 2"), LLAMA_LIB_DIR (a folder with a built llama.cpp, libllama.so and libggml.so:
# when set, LLAMA_PEER (build/llama-peer, from bench/peer/llama_peer.c) measures llama.cpp on
# each file right after celer, the same way, and a same-run table compares the two),
# LLAMA_BENCH (path of llama.cpp's llama-bench: when set, it also runs on the same files).
set -u
CELER=${1:?usage: sh bench/run.sh CELER_BIN BENCH_DIR}
BENCH_DIR=${2:-}
DATA=${CELER_DATA:-../shared}
MODELS=${CELER_BENCH_MODELS:-$(dirname "$CELER")/bench-models}
TYPES=${BENCH_TYPES:-Q4_0 Q8_0 Q4_K_M}
REPS=${BENCH_REPS:-3}
THREADS=${BENCH_THREADS:-1 2}
VOCAB=$DATA/vocab/ggml-vocab-llama-spm.gguf
PRESET=tinyllama-1.1b

# llama.cpp's figures (BENCHMARKING.md; llama-bench, 2 cores AMD EPYC Zen 4, 2026-11-25):
# decode 1 thread, decode 2 threads, prompt 512 at 2 threads, cost of k = 2 4 8 16.
peer() {
    case $1 in
    F16) echo "13.8 20.7 90.8 1.31 1.45 2.19 3.28" ;;
    Q8_0) echo "17.5 27.7 104.6 1.64 1.98 3.03 5.09" ;;
    Q4_0) echo "31.1 53.5 127.5 1.60 2.36 4.23 6.31" ;;
    Q4_K_M) echo "34.2 52.6 123.4 1.53 2.54 4.60 6.54" ;;
    *) echo "- - - - - - -" ;;
    esac
}

# Flat number of a key in a one-line JSON object: val JSON KEY
val() { printf '%s' "$1" | sed -n "s/.*\"$2\": \([-0-9.eE+]*\).*/\1/p"; }
# Text inside a nested object: obj JSON KEY
obj() { printf '%s' "$1" | sed -n "s/.*\"$2\": {\([^}]*\)}.*/\1/p"; }
# printf-rounded number, or "?" when missing
fmt() { if [ -n "$2" ]; then printf "%.${1}f" "$2"; else printf '?'; fi; }

if [ ! -x "$CELER" ]; then echo "bench: $CELER is not built" >&2; exit 1; fi
if [ ! -f "$VOCAB" ]; then echo "bench: missing $VOCAB (set CELER_DATA)" >&2; exit 1; fi
mkdir -p "$MODELS" || exit 1

echo "## Machine"
echo
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
isa=$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')
echo "- CPU: ${cpu:-unknown}, $(nproc 2>/dev/null || echo '?') logical cores, ${mem:-? GiB} memory; ISA: ${isa:-?}"
echo "- load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)"
echo

results=""
peers=""
for t in $TYPES; do
    f=$MODELS/$PRESET-$t.gguf
    if [ ! -f "$f" ]; then
        echo "bench: synthesizing $f ..." >&2
        "$CELER" synth --like $PRESET --vocab "$VOCAB" --type "$t" --seed 1 -o "$f" >&2 || exit 1
    fi
    echo "bench: celer bench --plain on $f ..." >&2
    # shellcheck disable=SC2086
    j=$("$CELER" bench --plain --json --reps "$REPS" -t $THREADS -m "$f") || {
        echo "bench: celer bench failed on $f" >&2
        continue
    }
    results="$results$t	$j
"
    if [ -n "${LLAMA_LIB_DIR:-}" ]; then
        echo "bench: llama.cpp (llama-peer) on $f ..." >&2
        if p=$("${LLAMA_PEER:-$(dirname "$CELER")/llama-peer}" "$LLAMA_LIB_DIR" "$f" "$REPS" 2>/dev/null); then
            peers="$peers$t	$j	$p
"
        else
            echo "bench: llama-peer failed on $f (run it by hand to see why)" >&2
        fi
    fi
done

echo "## celer bench --plain: $PRESET shape, Llama 2 vocabulary (llama.cpp in parentheses)"
echo
echo "Decoding: tok/s of one-token steps after a 32-token prompt (median of $REPS). Prompt: one"
echo "batch of 512 tokens. Batch cost: one pass of k tokens after 128, as a multiple of k = 1"
echo "(logits for every row). Prompt and batch cost use the largest thread count."
echo
echo "| type | file MiB | decode 1 thr | decode 2 thr | prompt 512 | k=2 | k=4 | k=8 | k=16 | RSS MiB (file + KV) | load s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s' "$results" | while IFS='	' read -r t j; do
    [ -n "$t" ] || continue
    set -- $(peer "$t")
    dec=$(obj "$j" decode_tps)
    bc=$(obj "$j" batch_cost)
    size=$(val "$j" file_size)
    kv=$(val "$j" kv_bytes)
    sizemib=$(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }')
    budget=$(awk -v s="$size" -v k="$kv" 'BEGIN { printf "%.0f + %.0f", s / 1048576, k / 1048576 }')
    printf '| %s | %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s |\n' \
        "$t" "$sizemib" \
        "$(fmt 1 "$(val "$dec" 1)")" "$1" "$(fmt 1 "$(val "$dec" 2)")" "$2" \
        "$(fmt 1 "$(val "$j" prompt_tps)")" "$3" \
        "$(fmt 2 "$(val "$bc" 2)")" "$4" "$(fmt 2 "$(val "$bc" 4)")" "$5" \
        "$(fmt 2 "$(val "$bc" 8)")" "$6" "$(fmt 2 "$(val "$bc" 16)")" "$7" \
        "$(fmt 0 "$(val "$j" rss_mb)")" "$budget" "$(fmt 3 "$(val "$j" load_s)")"
done
echo
echo "| type | kernels | bandwidth GB/s 1 / 2 thr | MB read per token | roofline tok/s 1 / 2 thr | batch ms k=1 / 8 / 16 |"
echo "|---|---|---|---|---|---|"
printf '%s' "$results" | while IFS='	' read -r t j; do
    [ -n "$t" ] || continue
    ms=$(obj "$j" batch_ms)
    kern=$(printf '%s' "$j" | sed -n 's/.*"kernels": "\([^"]*\)".*/\1/p')
    printf '| %s | %s | %s / %s | %s | %s / %s | %s / %s / %s |\n' "$t" "$kern" \
        "$(fmt 1 "$(val "$j" bandwidth_1t_gbs)")" "$(fmt 1 "$(val "$j" bandwidth_gbs)")" \
        "$(awk -v b="$(val "$j" bytes_per_token)" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(fmt 1 "$(val "$j" roofline_1t_tps)")" "$(fmt 1 "$(val "$j" roofline_tps)")" \
        "$(fmt 1 "$(val "$ms" 1)")" "$(fmt 1 "$(val "$ms" 8)")" "$(fmt 1 "$(val "$ms" 16)")"
done
echo
echo "llama.cpp's figures were measured on another machine (see BENCHMARKING.md: 2 cores AMD"
echo "EPYC Zen 4); compare ratios, and rerun llama-bench on the same files here for a fair race."
echo

# celer and llama.cpp (llama-peer) on the same files, same run, measured the same way.
# a / b as "1.23x", or "?" when either is missing: ratio A B
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else printf "?" }'; }
if [ -n "$peers" ]; then
    echo "## Same run: celer and llama.cpp on the same files (llama.cpp in $LLAMA_LIB_DIR)"
    echo
    echo "Both measured by the definitions above, llama.cpp right after celer on each file."
    echo "Last row of each type: celer's speed over llama.cpp's (decode, prompt) and llama.cpp's"
    echo "pass time over celer's (k = 8 and 16)."
    echo
    echo "| type | engine | decode 1 thr | decode 2 thr | prompt 512 | k=2 | k=4 | k=8 | k=16 | batch ms k=1 / 8 / 16 |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s' "$peers" | while IFS='	' read -r t j p; do
        [ -n "$t" ] || continue
        for e in celer llama.cpp; do
            if [ $e = celer ]; then x=$j; else x=$p; fi
            dec=$(obj "$x" decode_tps)
            bc=$(obj "$x" batch_cost)
            ms=$(obj "$x" batch_ms)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$t" "$e" \
                "$(fmt 1 "$(val "$dec" 1)")" "$(fmt 1 "$(val "$dec" 2)")" "$(fmt 1 "$(val "$x" prompt_tps)")" \
                "$(fmt 2 "$(val "$bc" 2)")" "$(fmt 2 "$(val "$bc" 4)")" "$(fmt 2 "$(val "$bc" 8)")" \
                "$(fmt 2 "$(val "$bc" 16)")" "$(fmt 1 "$(val "$ms" 1)")" "$(fmt 1 "$(val "$ms" 8)")" \
                "$(fmt 1 "$(val "$ms" 16)")"
        done
        dj=$(obj "$j" decode_tps)
        dp=$(obj "$p" decode_tps)
        mj=$(obj "$j" batch_ms)
        mp=$(obj "$p" batch_ms)
        printf '| %s | celer / llama.cpp | %s | %s | %s | | | %s | %s | |\n' "$t" \
            "$(ratio "$(val "$dj" 1)" "$(val "$dp" 1)")" "$(ratio "$(val "$dj" 2)" "$(val "$dp" 2)")" \
            "$(ratio "$(val "$j" prompt_tps)" "$(val "$p" prompt_tps)")" \
            "$(ratio "$(val "$mp" 8)" "$(val "$mj" 8)")" "$(ratio "$(val "$mp" 16)" "$(val "$mj" 16)")"
    done
    echo
fi

# llama.cpp on the same files, same run (only when LLAMA_BENCH names its llama-bench).
if [ -n "${LLAMA_BENCH:-}" ] && [ -x "$LLAMA_BENCH" ]; then
    echo "## llama.cpp llama-bench on the same files (same run)"
    echo
    for t in $TYPES; do
        f=$MODELS/$PRESET-$t.gguf
        [ -f "$f" ] || continue
        tl=$(echo $THREADS | tr ' ' ',')
        "$LLAMA_BENCH" -m "$f" -t "$tl" -p 512 -n 64 -r "$REPS" 2>/dev/null | grep '^|'
        # Batch cost as celer measures it: k tokens after a 128-token context, 2 threads.
        "$LLAMA_BENCH" -m "$f" -t 2 -p 1,2,4,8,16 -n 0 -d 128 -ub 16 -b 16 -r "$REPS" 2>/dev/null | grep '^| llama'
        echo
    done
fi

# Other bench programs (bench/*.c, each a standalone program in BENCH_DIR).
if [ -n "$BENCH_DIR" ] && [ -d "$BENCH_DIR" ]; then
    for p in "$BENCH_DIR"/*; do
        case $p in *.o | *.d) continue ;; esac
        [ -f "$p" ] && [ -x "$p" ] || continue
        echo "## $(basename "$p")"
        echo
        echo '```'
        "$p" || echo "($(basename "$p") exited with status $?)"
        echo '```'
        echo
    done
fi
