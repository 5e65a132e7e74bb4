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
# LLAMA_BENCH (path of llama.cpp's llama-bench: when set, it also runs on the same files),
# BENCH_ROUNDS (default 1: how many times each file is measured, celer and llama-peer taking
# turns; every figure printed is then the median over the rounds, and each celer / llama.cpp
# ratio the median of the per-round ratios, so that a slow minute of a shared machine does
# not decide a comparison).
set -u
CELER=${1:?usage: sh bench/run.sh CELER_BIN BENCH_DIR}
BENCH_DIR=${2:-}
DATA=${CELER_DATA:-../shared}
MODELS=${CELER_BENCH_MODELS:-$(dirname "$CELER")/bench-models}
TYPES=${BENCH_TYPES:-Q4_0 Q8_0 Q4_K_M}
REPS=${BENCH_REPS:-3}
ROUNDS=${BENCH_ROUNDS:-1}
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
# a ratio as "1.23x", or "?" when missing
xratio() { if [ -n "$1" ]; then printf '%.2fx' "$1"; else printf '?'; fi; }
# Median of the numbers on standard input (empty when there are none)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# Number KEY of a JSON object, or of KEY inside its nested object OBJ: field JSON KEY [OBJ]
field() { if [ -n "${3:-}" ]; then val "$(obj "$1" "$3")" "$2"; else val "$1" "$2"; fi; }
# Median over the rounds' JSON objects in FILE (one per line): med FILE KEY [OBJ]
med() {
    while IFS= read -r x; do
        v=$(field "$x" "$2" "${3:-}")
        [ -n "$v" ] && echo "$v"
    done <"$1" | median
}
# Median over the rounds of A / B, A from FILE_A and B from FILE_B (same line = same round):
# medratio FILE_A FILE_B KEY [OBJ]
medratio() {
    while IFS= read -r a && IFS= read -r b <&3; do
        awk -v a="$(field "$a" "$3" "${4:-}")" -v b="$(field "$b" "$3" "${4:-}")" \
            'BEGIN { if (a > 0 && b > 0) print a / b }'
    done <"$1" 3<"$2" | median
}

case $ROUNDS in
'' | *[!0-9]* | 0) echo "bench: BENCH_ROUNDS must be a positive whole number, not '$ROUNDS'" >&2; exit 1 ;;
esac
if [ ! -x "$CELER" ]; then echo "bench: $CELER is not built" >&2; exit 1; fi
if [ ! -f "$VOCAB" ]; then echo "bench: missing $VOCAB (set CELER_DATA)" >&2; exit 1; fi
mkdir -p "$MODELS" || exit 1

echo "## Machine"
echo
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
isa=$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')
# A VM often names its CPU only "AMD EPYC": the family and model numbers and the cache sizes
# tell the generations apart (AMD family 25 is Zen 3/4, 26 is Zen 5).
fam=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
caches=""
for d in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ -r "$d/size" ] || continue
    case $(cat "$d/type") in
    Instruction) continue ;;
    Data) kind=d ;;
    *) kind="" ;;
    esac
    caches="$caches${caches:+, }L$(cat "$d/level")$kind $(cat "$d/size")"
done
echo "- CPU: ${cpu:-unknown} (family ${fam:-?}, model ${model:-?}; caches ${caches:-?}), $(nproc 2>/dev/null || echo '?') logical cores, ${mem:-? GiB} memory; ISA: ${isa:-?}"
echo "- load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)"
echo

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM # so that the EXIT trap runs on a signal too
# Per type: $TMP/celer-T (celer bench's JSON, one line per round) and, with LLAMA_LIB_DIR,
# $TMP/llama-T (llama-peer's, same rounds).
measured=""
for t in $TYPES; do
    f=$MODELS/$PRESET-$t.gguf
    if [ ! -f "$f" ]; then
        echo "bench: synthesizing $f ..." >&2
        "$CELER" synth --like $PRESET --vocab "$VOCAB" --type "$t" --seed 1 -o "$f" >&2 || exit 1
    fi
    : >"$TMP/celer-$t"
    peer_ok=${LLAMA_LIB_DIR:+yes}
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        echo "bench: celer bench --plain on $f (round $r of $ROUNDS) ..." >&2
        # shellcheck disable=SC2086
        j=$("$CELER" bench --plain --json --reps "$REPS" -t $THREADS -m "$f") || {
            echo "bench: celer bench failed on $f" >&2
            break
        }
        if [ -n "$peer_ok" ]; then
            echo "bench: llama.cpp (llama-peer) on $f (round $r of $ROUNDS) ..." >&2
            if p=$("${LLAMA_PEER:-$(dirname "$CELER")/llama-peer}" "$LLAMA_LIB_DIR" "$f" "$REPS" 2>/dev/null); then
                printf '%s\n' "$p" >>"$TMP/llama-$t"
            else
                # no same-run row for this file: its ratios would not pair up round by round
                echo "bench: llama-peer failed on $f (run it by hand to see why)" >&2
                peer_ok=""
                rm -f "$TMP/llama-$t"
            fi
        fi
        printf '%s\n' "$j" >>"$TMP/celer-$t"
        r=$((r + 1))
    done
    [ -s "$TMP/celer-$t" ] && measured="$measured $t"
done

echo "## celer bench --plain: $PRESET shape, Llama 2 vocabulary (llama.cpp in parentheses)"
echo
echo "Decoding: tok/s of one-token steps after a 32-token prompt (median of $REPS). Prompt: one"
echo "batch of 512 tokens. Batch cost: one pass of k tokens after 128, as a multiple of k = 1"
echo "(logits for every row; the median over at least 7 rounds, k values taking turns, of each"
echo "round's ratio). Prompt and batch cost use the largest thread count."
[ "$ROUNDS" -gt 1 ] && echo "Each figure: the median over $ROUNDS rounds."
echo
echo "| type | file MiB | decode 1 thr | decode 2 thr | prompt 512 | k=2 | k=4 | k=8 | k=16 | RSS MiB (file + KV) | load s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for t in $measured; do
    c=$TMP/celer-$t
    set -- $(peer "$t")
    size=$(med "$c" file_size)
    kv=$(med "$c" kv_bytes)
    sizemib=$(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }')
    budget=$(awk -v s="$size" -v k="$kv" 'BEGIN { printf "%.0f + %.0f", s / 1048576, k / 1048576 }')
    printf '| %s | %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s |\n' \
        "$t" "$sizemib" \
        "$(fmt 1 "$(med "$c" 1 decode_tps)")" "$1" "$(fmt 1 "$(med "$c" 2 decode_tps)")" "$2" \
        "$(fmt 1 "$(med "$c" prompt_tps)")" "$3" \
        "$(fmt 2 "$(med "$c" 2 batch_cost)")" "$4" "$(fmt 2 "$(med "$c" 4 batch_cost)")" "$5" \
        "$(fmt 2 "$(med "$c" 8 batch_cost)")" "$6" "$(fmt 2 "$(med "$c" 16 batch_cost)")" "$7" \
        "$(fmt 0 "$(med "$c" rss_mb)")" "$budget" "$(fmt 3 "$(med "$c" load_s)")"
done
echo
echo "| type | kernels | bandwidth GB/s 1 / 2 thr | MB read per token | roofline tok/s 1 / 2 thr | batch ms k=1 / 8 / 16 |"
echo "|---|---|---|---|---|---|"
for t in $measured; do
    c=$TMP/celer-$t
    kern=$(head -n 1 "$c" | sed -n 's/.*"kernels": "\([^"]*\)".*/\1/p')
    printf '| %s | %s | %s / %s | %s | %s / %s | %s / %s / %s |\n' "$t" "$kern" \
        "$(fmt 1 "$(med "$c" bandwidth_1t_gbs)")" "$(fmt 1 "$(med "$c" bandwidth_gbs)")" \
        "$(awk -v b="$(med "$c" bytes_per_token)" 'BEGIN { printf "%.0f", b / 1e6 }')" \
        "$(fmt 1 "$(med "$c" roofline_1t_tps)")" "$(fmt 1 "$(med "$c" roofline_tps)")" \
        "$(fmt 1 "$(med "$c" 1 batch_ms)")" "$(fmt 1 "$(med "$c" 8 batch_ms)")" "$(fmt 1 "$(med "$c" 16 batch_ms)")"
done
echo
echo "llama.cpp's figures were measured on another machine (see BENCHMARKING.md: 2 cores AMD"
echo "EPYC Zen 4); compare ratios, and rerun llama-bench on the same files here for a fair race."
echo

# celer and llama.cpp (llama-peer) on the same files, same run, measured the same way.
raced=""
for t in $measured; do [ -s "$TMP/llama-$t" ] && raced="$raced $t"; done
if [ -n "$raced" ]; then
    echo "## Same run: celer and llama.cpp on the same files (llama.cpp in $LLAMA_LIB_DIR)"
    echo
    echo "Both measured by the definitions above, llama.cpp right after celer on each file, $ROUNDS"
    echo "round(s) taking turns (medians over the rounds). Last row of each type: celer's speed over"
    echo "llama.cpp's (decode, prompt) and llama.cpp's pass time over celer's (k = 8 and 16), each"
    echo "the median of the per-round ratios."
    echo
    echo "| type | engine | decode 1 thr | decode 2 thr | prompt 512 | k=2 | k=4 | k=8 | k=16 | batch ms k=1 / 8 / 16 |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for t in $raced; do
        c=$TMP/celer-$t l=$TMP/llama-$t
        for e in celer llama.cpp; do
            if [ $e = celer ]; then x=$c; else x=$l; fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$t" "$e" \
                "$(fmt 1 "$(med "$x" 1 decode_tps)")" "$(fmt 1 "$(med "$x" 2 decode_tps)")" \
                "$(fmt 1 "$(med "$x" prompt_tps)")" "$(fmt 2 "$(med "$x" 2 batch_cost)")" \
                "$(fmt 2 "$(med "$x" 4 batch_cost)")" "$(fmt 2 "$(med "$x" 8 batch_cost)")" \
                "$(fmt 2 "$(med "$x" 16 batch_cost)")" "$(fmt 1 "$(med "$x" 1 batch_ms)")" \
                "$(fmt 1 "$(med "$x" 8 batch_ms)")" "$(fmt 1 "$(med "$x" 16 batch_ms)")"
        done
        printf '| %s | celer / llama.cpp | %s | %s | %s | | | %s | %s | |\n' "$t" \
            "$(xratio "$(medratio "$c" "$l" 1 decode_tps)")" "$(xratio "$(medratio "$c" "$l" 2 decode_tps)")" \
            "$(xratio "$(medratio "$c" "$l" prompt_tps)")" \
            "$(xratio "$(medratio "$l" "$c" 8 batch_ms)")" "$(xratio "$(medratio "$l" "$c" 16 batch_ms)")"
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
