/*
 * AVX-512 (F/BW/VL/DQ) + VNNI + VBMI kernel set, "avx512-vnni". Built with ISA_AVX512 flags;
 * only reached through dispatch.c after cpuid says the CPU has these features.
 *
 * Layout of the quantized products ("one scale per lane"): a weight tile is decoded into
 * registers W[0..S) whose 16 int32 lanes each belong to exactly one weight scale, and the
 * activations are re-laid out the same way once per call (prep_*), so
 *     s_i = corr_i + sum_j vpdpbusd(W[j], A[j])_i
 * is an exact integer partial dot product under one scale: no horizontal sum per block, one
 * int->float conversion and one FMA per tile and activation row.
 *   Q8_0: 16 blocks per tile, lane = block, 8 steps (in-lane dword transposes);
 *   Q5_K: two super-blocks per tile, lane = one 32-value sub-block (order k4_sub),
 *     8 steps (in-lane dword transposes, then one vpermt2d per step; the 6-bit scales and mins
 *     of both super-blocks unpacked by two vpermb);
 *   Q6_K: one super-block, lane = 16-value sub-block, 4 steps (vpermt2d + vpermd per step).
 * (Q4_0 and Q4_K put weight rows in lanes instead: see their section below. Q4_K used these
 * tiles until the twelfth session.)
 * vpdpbusd multiplies unsigned by signed bytes, so weights are decoded unsigned (q + off) and
 * corr_i = -off * sum(a) (from the activations) removes the offset exactly. Q5_K mins
 * are one more FMA with the activation's per-sub-block sums. Neither weights nor activations
 * are gathered (a zmm gather costs ~22 cycles on AMD Zen 4): only loads and permutes.
 *
 * Strategy for k activation rows (the batch of a verification pass):
 *   - activations of up to KB = 16 rows are prepared once per call for a fixed span of
 *     columns (SC_VALUES, independent of k) into a stack scratch (at most ~150 KB);
 *   - rows are taken in blocks of RB; the columns of the span in sub-chunks small enough that
 *     the sub-chunk's prepared activations for all k rows stay in L1 while the RB weight rows
 *     pass over them; each weight tile is decoded once into registers and applied to up to 8
 *     activation rows (for 9..16 rows the decoded tile is kept in an L1 buffer and applied to
 *     the rest), so weights stream from memory once for k <= 16; two weight rows are decoded
 *     together and share every activation load (one row at a time: 6-26 % slower at k = 1..16
 *     on AMD Zen 4, measured when Q4_0 still used these tiles: twice the activation loads and
 *     loop work per vpdpbusd; Zen 4 loads one zmm per cycle, so one zmm load per vpdpbusd
 *     alone runs at full speed, 1.25 per vpdpbusd already 30 % slower);
 *   - every (weight row, activation row) pair owns one 16-lane float accumulator that sums
 *     its tiles in column order; it is reduced by one fixed tree (hsum8), and a row longer
 *     than one span adds the spans' sums to the output in span order. The float operations
 *     for a pair are therefore the same whatever k, the other rows or the row range is:
 *     results are bit-identical between k = 1 and any batch (required by batched decoding).
 *     (Integer parts may be split or reordered freely: integer sums are exact.)
 * F32/F16/BF16 use the same driver shape with 16- or 32-element tiles (one register) and one
 * accumulator per pair, in register blocks of up to 4 weight x 6 activation rows; F16 and
 * (without AVX512_BF16) BF16 activations are converted to F32 once per call.
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/tensor.h"
#include "tensor/exp_avx512.h"
#include "tensor/scales_x86.h"

#define LANES 16
#define TG 8           /* activation rows applied to one decoded tile in registers */
#define KB 16          /* activation rows per pass over the weights */
#define RB 8           /* weight rows per block (L1 blocking for k > 1) */
#define SC_VALUES 6144 /* columns per prepared span (fixed: the summation order depends on it) */
#ifndef L1_ACT
#define L1_ACT 24576 /* bytes of prepared activations a sub-chunk may use */
#endif
/* Software prefetch of the weight stream, PF_DIST bytes ahead (PF_HINT_*, below): the hardware
 * prefetchers stop at 4 KB pages, and walking the page tables ahead (costly in a VM) raised
 * single-thread streaming from ~8 to ~10 GB/s on the development machine. On that machine
 * (a 2-core Sapphire Rapids VM) streaming and VNNI work barely overlap: at k = 8 a pass
 * costs about the sum of its memory and compute times. For quantized products over at most
 * TG activation rows, prefetching PF_DIST_FEW = 32 KB ahead gave 5-20% at k = 1..8 from
 * memory (bench_kernels, cold); prompt batches (k > TG) kept 8 KB, which measured better. */
#ifndef PF_DIST
#define PF_DIST 8192
#endif
#ifndef PF_DIST_FEW
#define PF_DIST_FEW 32768
#endif
/* F32/F16/BF16 products over at most TG activation rows stream RF weight rows side by side,
 * so their prefetch runs PF_ROWS_F whole rows ahead (two register blocks) rather than a
 * fixed distance: 32 KB is less than one block ahead for rows of 11 KB (F16, 5632 columns)
 * and fetched lines the block was already reading. F16 decoding of a TinyLlama-shaped file on
 * Zen 4, old and new alternating: 1 thread faster in 6 of 6 pairs (8.1-8.7 -> 9.1-9.6 tok/s),
 * 2 threads in 3 of 4 (-7 % to +7 %); kernel from memory, 5632 columns: 23 % less time. */
#ifndef PF_ROWS_F
#define PF_ROWS_F 8
#endif
/* Quantized products prefetch into L1 (prefetcht0) on AMD and into L2 (prefetcht1) on Intel
 * (pf_q below); F32/F16/BF16 into L2 everywhere. With the whole model on AMD Zen 4 (two builds
 * in one process, passes alternating, 31-61 rounds of 3-4 passes per k, median of the paired
 * ratios; the same harness with two identical builds gave 1.00 +- 0.03), L1 against L2, k = 1
 * / 2 / 4 / 8 / 16: Q4_K_M 2 threads 0.95 / 0.94 / 0.99 / 0.99 / 0.97, 1 thread 0.94 / 0.94 /
 * 0.99 / 0.97 / 0.99; Q8_0 0.96 / 0.97 / 0.96 / 0.99 / 0.96; Q4_0 0.98 / 0.97 / 1.01 / 1.01 /
 * 0.99. On an Intel Emerald Rapids VM (2 cores, 2 MB L2 each; the same kind of harness, 15
 * rounds; two identical builds 0.98-1.01 in 9) it was the other way round, L2 against L1 at 2
 * threads: Q4_0 0.90 / 0.91 / 0.93 / 0.95 / 0.96, Q8_0 0.95 / 0.95 / 0.96 / 0.97 / 1.00,
 * Q4_K_M 0.95 / 0.91 / 0.92 / 0.92 / 0.95; 1 thread (9 rounds) Q4_0 0.88 / 0.91 / 0.92 / 0.92
 * / 0.99, Q4_K_M 0.92 / 0.91 / 0.93 / 0.91 / 0.96. (Prefetching two row groups ahead, or
 * 64 KB instead of 32 KB, on top of L2 there: 0.99-1.04.) */
#define PF_HINT_F _MM_HINT_T1

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Whether quantized weights are prefetched into L2 (Intel) rather than L1 (AMD), measured as
 * above: a pure function of cpuid (libgcc's copy of it, filled before main; dispatch.c
 * initialises it before any kernel runs), a predictable branch at each prefetch. */
ALWAYS_INLINE int pf_q_to_l2(void) { return __builtin_cpu_is("intel"); }

/* Prefetch of a quantized weight line, into the level pf_q_to_l2 picks. */
ALWAYS_INLINE void pf_q(const void *p) {
    if (pf_q_to_l2()) _mm_prefetch(p, _MM_HINT_T1);
    else _mm_prefetch(p, _MM_HINT_T0);
}

enum { TY_Q8_0, TY_Q5_K, TY_Q6_K }; /* Q4_0 and Q4_K have a layout of their own (below) */

/* Q8_0: a tile is 16 blocks (512 values), lane i = block i, 8 dpbusd steps.
 * Q5_K: a tile is two super-blocks (512 values) and 8 steps; lane 8s + g holds
 * the 32-value sub-block g of super-block s. Q6_K: a tile is one super-block and 4 steps, a
 * lane one 16-value sub-block. Either way every lane has exactly one weight scale, and the
 * float work (one conversion and one or two FMAs per lane and activation row) is paid once
 * per 8 dpbusd steps where the scales allow it (Q6_K's 16-value scales do not). */
ALWAYS_INLINE int is_k4(int ty) { return ty == TY_Q5_K; }
ALWAYS_INLINE int eight_steps(int ty) { return ty != TY_Q6_K; }
ALWAYS_INLINE int tile_values(int ty) { return ty == TY_Q6_K ? QK_K : 512; }
/* dpbusd steps per tile and activation row */
ALWAYS_INLINE int steps(int ty) { return eight_steps(ty) ? 8 : 4; }
/* The step of W[u] of part q (of 2) for the 8-step tiles: parts take steps 2q, 2q + 1 and
 * 2q + 4, 2q + 5, so that two rows' decoded weights fit the registers together. */
ALWAYS_INLINE int step8(int q, int u) { return 4 * (u >> 1) + 2 * q + (u & 1); }
#define TILE_BLOCKS 16 /* Q8_0 blocks per tile */
ALWAYS_INLINE int has_min(int ty) { return ty == TY_Q5_K; }
ALWAYS_INLINE int has_corr(int ty) { return !has_min(ty); }
/* zmm per prepared activation tile: q[steps], da, aux (corr as int32 or dsum as float) */
ALWAYS_INLINE int azmm(int ty) { return steps(ty) + 2; }
/* Bytes of weights per (full) tile. */
ALWAYS_INLINE size_t tile_bytes(int ty) {
    switch (ty) {
    case TY_Q8_0: return 16 * sizeof(block_q8_0);
    case TY_Q5_K: return 2 * sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

/* Two Q5_K super-blocks make a tile; lane i holds sub-block k4_sub[i] % 8 of super-block
 * k4_sub[i] / 8: the order the weight decoder's in-lane transposes give (k4_pair_nibbles). */
static const int32_t k4_sub[16] = {0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15};

/* ---------------------------------------------------------------- reductions */

/* Lane t of the result = sum of the 16 lanes of a[t], by the same tree for every t:
 * ((S0 + S1) + (S2 + S3)) with S_L = (e4L + e4L+2) + (e4L+1 + e4L+3). Each output depends
 * only on its own input (float addition is commutative), never on the others. */
ALWAYS_INLINE __m256 hsum8(const __m512 *a) {
    __m512 b[4];
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++)
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    __m512 c[2];
#pragma GCC unroll 8
    for (int i = 0; i < 2; i++) {
        __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
        c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    __m512 f = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 g = _mm512_add_ps(_mm512_shuffle_f32x4(f, f, _MM_SHUFFLE(3, 1, 2, 0)),
                             _mm512_shuffle_f32x4(f, f, _MM_SHUFFLE(2, 0, 3, 1)));
    return _mm512_castps512_ps256(g);
}

/* Reduce the accumulators of a block of nr (<= 8) weight rows x kp activation rows
 * (acc[i*kp + t]) and store (add when `add`) to out[t*ld + r0 + i]: per activation row, one
 * hsum8 over the nr weight rows and one masked store of nr contiguous floats. */
static void reduce_store(const __m512 *acc, int nr, int kp, float *out, int64_t ld, int64_t r0, int add) {
    const __mmask8 m = (__mmask8)((1u << nr) - 1);
    for (int t = 0; t < kp; t++) {
        __m512 a[8];
        /* a full block (the usual case) loads straight into registers: the general loop went
         * through a stack copy, half of reduce_store's time at k = 8 */
        if (nr == 8)
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) a[i] = acc[i * kp + t];
        else
            for (int i = 0; i < 8; i++) a[i] = i < nr ? acc[i * kp + t] : _mm512_setzero_ps();
        float *o = out + (int64_t)t * ld + r0;
        __m256 s = hsum8(a);
        if (add) s = _mm256_add_ps(s, _mm256_maskz_loadu_ps(m, o));
        _mm256_mask_storeu_ps(o, m, s);
    }
}

/* ---------------------------------------------------------------- activation prep */

/* 16 runs of 32 quant bytes as 8 dpbusd steps: step j, lane i holds dword j of run i; runs
 * 0..7 start at b0 + i * stride, runs 8..15 at b1 + (i - 8) * stride (16 Q8_0 blocks, or the
 * 32-value sub-blocks of two Q8_K super-blocks). A transpose of 16 runs x 8 dwords in three
 * vpermt2d rounds: Z[p] = runs 2p, 2p+1; U[q][k] = dwords 4k..4k+3 of runs 4q..4q+3 (lane
 * 4(j%4) + run%4); V[r][k][m] = dwords 4k+2m, 4k+2m+1 of runs 8r..8r+7 (lane 8(j%2) +
 * run%8); then each step. */
ALWAYS_INLINE void runs_steps8(const int8_t *b0, const int8_t *b1, size_t stride, __m512i *P) {
    __m512i Z[8], U[4][2], V[2][2][2];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        const int8_t *r = (p < 4 ? b0 : b1) + (size_t)(2 * p % 8) * stride;
        Z[p] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)r)),
                                  _mm256_loadu_si256((const __m256i *)(r + stride)), 1);
    }
    const __m512i ia[2] = {_mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27),
                           _mm512_setr_epi32(4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31)};
    const __m512i ib[2] = {_mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23),
                           _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31)};
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) U[q][k] = _mm512_permutex2var_epi32(Z[2 * q], ia[k], Z[2 * q + 1]);
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++)
#pragma GCC unroll 2
            for (int m = 0; m < 2; m++) V[r][k][m] = _mm512_permutex2var_epi32(U[2 * r][k], ib[m], U[2 * r + 1][k]);
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
#pragma GCC unroll 2
        for (int m = 0; m < 2; m++) {
            P[4 * k + 2 * m] = _mm512_shuffle_i64x2(V[0][k][m], V[1][k][m], _MM_SHUFFLE(1, 0, 1, 0));
            P[4 * k + 2 * m + 1] = _mm512_shuffle_i64x2(V[0][k][m], V[1][k][m], _MM_SHUFFLE(3, 2, 3, 2));
        }
}

/* Q8_0 activations for a Q8_0 tile (weight offset 128): lane i = block i, step j = its dword
 * j; nvalid blocks, the rest read as zero blocks. Shuffles only: no gathers (slow on AMD). */
static void prep_q8_0(const block_q8_0 *a, int nvalid, __m512i *p) {
    _Alignas(64) block_q8_0 pad[16];
    if (nvalid < 16) {
        memset(pad, 0, sizeof pad);
        memcpy(pad, a, (size_t)nvalid * sizeof *a);
        a = pad;
    }
    runs_steps8(a[0].qs, a[8].qs, sizeof *a, p);
    const __m512 d = _mm512_cvtph_ps(_mm256_set_m128i(fp16_scales8(a + 8, sizeof *a), fp16_scales8(a, sizeof *a)));
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i sum = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++) sum = _mm512_dpbusd_epi32(sum, ones, p[j]);
    p[8] = _mm512_castps_si512(d);
    p[9] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7));
}

/* Q8_K activations for Q5_K, two super-blocks (nvalid of them, a missing second one
 * reads as zeros): lane 8s + g = sub-block g of super-block s, step j its dword j; then the
 * scales d_s and the scaled sub-block sums d_s * sum(a) that meet the mins. */
static void prep_q8_K_pair(const block_q8_K *a, int nvalid, __m512i *p) {
    block_q8_K pad[2];
    if (nvalid < 2) {
        memset(pad, 0, sizeof pad);
        pad[0] = a[0];
        a = pad;
    }
    runs_steps8(a[0].qs, a[1].qs, 32, p); /* lane 8s + g */
    const __m512i order = _mm512_loadu_si512(k4_sub);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) p[j] = _mm512_permutexvar_epi32(order, p[j]);
    const __m256i ones = _mm256_set1_epi16(1);
    const __m512i sum = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[0].bsums), ones)),
        _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[1].bsums), ones), 1);
    const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(a[0].d), _mm256_set1_ps(a[1].d), 1);
    p[8] = _mm512_castps_si512(_mm512_permutexvar_ps(order, d));
    p[9] = _mm512_castps_si512(_mm512_permutexvar_ps(order, _mm512_mul_ps(d, _mm512_cvtepi32_ps(sum))));
}

/* Q8_K activations for Q6_K: groups of 16, one super-block per tile, offset 32. */
static void prep_q8_K_16(const block_q8_K *a, __m512i *p) {
    /* lane i takes dword 4i + j: lanes 0..7 from quants 0..127, 8..15 from 128..255 */
    const __m512i q0 = _mm512_loadu_si512(a->qs), q1 = _mm512_loadu_si512(a->qs + 64);
    const __m512i q2 = _mm512_loadu_si512(a->qs + 128), q3 = _mm512_loadu_si512(a->qs + 192);
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for (int j = 0; j < 4; j++) {
        const __m512i ij = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
        p[j] = _mm512_mask_blend_epi32(0xFF00, _mm512_permutex2var_epi32(q0, ij, q1),
                                       _mm512_permutex2var_epi32(q2, ij, q3));
    }
    __m512i sum = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)a->bsums));
    p[4] = _mm512_castps_si512(_mm512_set1_ps(a->d));
    p[5] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 5));
}

/* Prepare tile `tile` of one activation row of n values into p[0 .. azmm). */
ALWAYS_INLINE void prep_tile(int ty, const void *act, int64_t n, int64_t tile, __m512i *p) {
    switch (ty) {
    case TY_Q8_0: {
        const int64_t tb = TILE_BLOCKS, b0 = tile * tb, nb = n / QK8_0;
        const int nvalid = (int)(nb - b0 < tb ? nb - b0 : tb);
        prep_q8_0((const block_q8_0 *)act + b0, nvalid, p);
        break;
    }
    case TY_Q6_K: prep_q8_K_16((const block_q8_K *)act + tile, p); break;
    default: {
        const int64_t left = n / QK_K - 2 * tile;
        prep_q8_K_pair((const block_q8_K *)act + 2 * tile, left < 2 ? (int)left : 2, p);
        break;
    }
    }
}

/* ---------------------------------------------------------------- weight tile decoders */

/* 16 Q8_0 weight blocks, lane i = block i, bytes biased to unsigned (q + 128), part q:
 * W[u] = step j = 4m + d with m = u >> 1, d = 2q + (u & 1) (step_of), dword j of each block's
 * quants. Y[p] = the quants of blocks a and a + 4 (a = p < 4 ? p : p + 4); a 4x4 dword
 * transpose inside each 128-bit lane (unpacks) gives, per d, B[h] with lane 4L + c = dword
 * 4 (L % 2) + d of block a(4h + c) + 4 (L / 2); one vshufi64x2 joins the lanes with L % 2 = m
 * of B[0] and B[1] in block order. In-lane shuffles only: on Zen 4 the vpermt2d of a full
 * transpose compete with vpdpbusd, these do not. */
ALWAYS_INLINE void dec_q8_0(const block_q8_0 *x, int q, __m512i *W, __m512 *D) {
    __m512i Y[8], A[4];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        const int a = p < 4 ? p : p + 4;
        Y[p] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[a].qs)),
                                  _mm256_loadu_si256((const __m256i *)x[a + 4].qs), 1);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
        A[k] = q ? _mm512_unpackhi_epi32(Y[2 * k], Y[2 * k + 1]) : _mm512_unpacklo_epi32(Y[2 * k], Y[2 * k + 1]);
    const __m512i B[2][2] = {{_mm512_unpacklo_epi64(A[0], A[1]), _mm512_unpacklo_epi64(A[2], A[3])},
                             {_mm512_unpackhi_epi64(A[0], A[1]), _mm512_unpackhi_epi64(A[2], A[3])}};
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    W[0] = _mm512_xor_si512(_mm512_shuffle_i64x2(B[0][0], B[0][1], _MM_SHUFFLE(2, 0, 2, 0)), bias);
    W[1] = _mm512_xor_si512(_mm512_shuffle_i64x2(B[1][0], B[1][1], _MM_SHUFFLE(2, 0, 2, 0)), bias);
    W[2] = _mm512_xor_si512(_mm512_shuffle_i64x2(B[0][0], B[0][1], _MM_SHUFFLE(3, 1, 3, 1)), bias);
    W[3] = _mm512_xor_si512(_mm512_shuffle_i64x2(B[1][0], B[1][1], _MM_SHUFFLE(3, 1, 3, 1)), bias);
    if (q == 0) *D = _mm512_cvtph_ps(_mm256_set_m128i(fp16_scales8(x + 8, sizeof *x), fp16_scales8(x, sizeof *x)));
}

/* Header byte picked for lane i of the scales (i < 16) and mins (i >= 16) of two super-blocks,
 * H = [header of super-block 0 | header of 1] (16 bytes each: fp16 d, fp16 dmin, 12 bytes s;
 * sub-block g = k4_sub[i % 16] % 8 of super-block sb = k4_sub[i % 16] / 8, base = 16 sb + 4):
 *   k4_lo: scales base + (g < 4 ? g : g + 4), mins base + g + 4 (s[g], s[g+4] of k4_scales8)
 *   k4_hi: the byte whose top two bits complete g >= 4: scales base + g - 4, mins base + g
 * (lanes with g < 4, the odd ones, are zeroed instead). */
static const uint8_t k4_lo[32] = {4, 12, 20, 28, 6, 14, 22, 30, 5, 13, 21, 29, 7, 15, 23, 31,
                                  8, 12, 24, 28, 10, 14, 26, 30, 9, 13, 25, 29, 11, 15, 27, 31};
static const uint8_t k4_hi[32] = {0, 4, 0, 20, 0, 6, 0, 22, 0, 5, 0, 21, 0, 7, 0, 23,
                                  0, 8, 0, 24, 0, 10, 0, 26, 0, 9, 0, 25, 0, 11, 0, 27};

/* Q5_K scales d*sc and negated mins -dmin*m (as k4_scales8, the same float operations)
 * of two super-blocks `bytes` apart, in the tile's lane order: the 6-bit fields of both
 * headers unpacked by two byte permutes and a few logic operations, instead of two rounds of
 * general-register work (which took a quarter of a one-row pass). */
ALWAYS_INLINE void k4_scales_pair(const uint8_t *hdr, size_t bytes, __m512 *D, __m512 *M) {
    const __m256i H = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)hdr)),
                                              _mm_loadu_si128((const __m128i *)(hdr + bytes)), 1);
    const __m256i lo = _mm256_permutexvar_epi8(_mm256_loadu_si256((const __m256i *)k4_lo), H);
    const __m256i hi = _mm256_maskz_permutexvar_epi8(0xAAAAAAAAu, _mm256_loadu_si256((const __m256i *)k4_hi), H);
    /* g < 4: 6 bits of lo; g >= 4: 4 bits of lo (the mins' high nibble) and 2 of hi */
    __m256i v = _mm256_and_si256(lo, _mm256_set1_epi16(0x0f3f));
    v = _mm256_mask_blend_epi8(0xAAAA0000u, v, _mm256_and_si256(_mm256_srli_epi16(lo, 4), _mm256_set1_epi8(0x0f)));
    v = _mm256_or_si256(v, _mm256_and_si256(_mm256_srli_epi16(hi, 2), _mm256_set1_epi8(0x30)));
    uint32_t w[2];
    memcpy(&w[0], hdr, 4);
    memcpy(&w[1], hdr + bytes, 4);
    const __m512 dd = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)(w[0] | (uint64_t)w[1] << 32))));
    const __m512i sb2 = _mm512_set4_epi32(2, 2, 0, 0); /* 2 * super-block of each lane */
    const __m512 d = _mm512_permutexvar_ps(sb2, dd);
    const __m512 dmin = _mm512_permutexvar_ps(_mm512_add_epi32(sb2, _mm512_set1_epi32(1)), dd);
    *D = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(v))), d);
    *M = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(v, 1))),
                       _mm512_sub_ps(_mm512_setzero_ps(), dmin));
}

/* Nibbles of two Q5_K super-blocks (quants at qs0, qs1), part q: W[u] = step
 * j = 4h + j' with h = u >> 1, j' = 2q + (u & 1) (step_of), i.e. values 4j .. 4j + 3 of each
 * lane's sub-block. Sub-block g is the low (even g) or high (odd g) nibbles of the 32-byte
 * chunk g / 2. X[p] = bytes 64 (p % 2) .. + 63 of super-block p / 2; a 4x4 dword transpose
 * inside each 128-bit lane L (unpacks) gives Z[j' % 2] with lane 4L + p = dword 4 (L % 2) + j'
 * of chunk 2 (p % 2) + L / 2 of super-block p / 2. Step (h, j') takes the 8 lanes with
 * L % 2 = h, twice: lanes i < 8 keep the low nibbles, i >= 8 the high ones, which is the lane
 * order of k4_sub (lane i = 8 nib + 4 (L / 2) + p): one vpermt2d per step picks from Z
 * and Z >> 4. (vpermd, a masked shift and an and, which do not compete with vpdpbusd on Zen 4,
 * measured the same at every k.) */
ALWAYS_INLINE void k4_pair_nibbles(const uint8_t *qs0, const uint8_t *qs1, int q, __m512i *W) {
    const __m512i X0 = _mm512_loadu_si512(qs0), X1 = _mm512_loadu_si512(qs0 + 64);
    const __m512i X2 = _mm512_loadu_si512(qs1), X3 = _mm512_loadu_si512(qs1 + 64);
    const __m512i a01 = q ? _mm512_unpackhi_epi32(X0, X1) : _mm512_unpacklo_epi32(X0, X1);
    const __m512i a23 = q ? _mm512_unpackhi_epi32(X2, X3) : _mm512_unpacklo_epi32(X2, X3);
    const __m512i Z[2] = {_mm512_unpacklo_epi64(a01, a23), _mm512_unpackhi_epi64(a01, a23)};
    const __m512i Zs[2] = {_mm512_srli_epi32(Z[0], 4), _mm512_srli_epi32(Z[1], 4)};
    /* lanes i < 8 from Z, i >= 8 from Z >> 4 (index + 16) */
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    const __m512i lo = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
        const __m512i idx = _mm512_add_epi32(idx0, _mm512_set1_epi32(4 * (u >> 1)));
        W[u] = _mm512_and_si512(_mm512_permutex2var_epi32(Z[u & 1], idx, Zs[u & 1]), lo);
    }
}

/* Q5_K: the fifth bit of value l of sub-block g is bit g of qh[l]; at step j a lane covers
 * l = 4j .. 4j + 3, i.e. dword j of its super-block's qh. */
ALWAYS_INLINE void dec_q5_K(const block_q5_K *x, int q, __m512i *W, __m512 *D, __m512 *M) {
    k4_pair_nibbles(x[0].qs, x[1].qs, q, W);
    const __m512i qh = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qh)),
                                          _mm256_loadu_si256((const __m256i *)x[1].qh), 1);
    const __m512i sub = _mm512_loadu_si512(k4_sub);
    const __m512i hidx = _mm512_andnot_si512(_mm512_set1_epi32(7), sub); /* 8 * super-block */
    /* one rotation right by g - 4 brings bit g of every byte to its bit 4 */
    const __m512i g = _mm512_and_si512(sub, _mm512_set1_epi32(7));
    const __m512i rot = _mm512_and_si512(_mm512_sub_epi32(g, _mm512_set1_epi32(4)), _mm512_set1_epi32(31));
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
        const __m512i h = _mm512_permutexvar_epi32(_mm512_add_epi32(hidx, _mm512_set1_epi32(step8(q, u))), qh);
        W[u] = _mm512_ternarylogic_epi32(_mm512_rorv_epi32(h, rot), _mm512_set1_epi8(0x10), W[u], 0xEA);
    }
    if (q == 0) k4_scales_pair((const uint8_t *)x, sizeof *x, D, M);
}

/* One Q6_K super-block = 16 groups of 16. Group i: half n = i/8, quarter qq = (i%8)/2,
 * l0 = 16*(i%2); byte m: low 4 bits = nibble (qq/2) of ql[64n + 32*(qq%2) + l0 + m],
 * high 2 bits = bits 2qq..2qq+1 of qh[32n + l0 + m]. ql is two registers, qh one, so each
 * step is one vpermt2d and one vpermd. The high bits are moved to bits 4..5 of their byte by
 * one dword rotation (left by 4 - 2qq, i.e. right by (2qq - 4) mod 32: bits that cross into
 * the next byte are masked off) and merged with the nibble by one vpternlogd. */
ALWAYS_INLINE void dec_q6_K(const block_q6_K *x, __m512i *W, __m512 *D) {
    const __m512i ql0 = _mm512_loadu_si512(x->ql), ql1 = _mm512_loadu_si512(x->ql + 64);
    const __m512i qh = _mm512_loadu_si512(x->qh);
    const __m512i ql_idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 16, 20, 24, 28, 16, 20, 24, 28);
    const __m512i ql_sh = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4);
    const __m512i qh_idx = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 8, 12, 8, 12, 8, 12, 8, 12);
    const __m512i qh_rot = _mm512_setr_epi32(28, 28, 30, 30, 0, 0, 2, 2, 28, 28, 30, 30, 0, 0, 2, 2);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i jj = _mm512_set1_epi32(j);
        __m512i l = _mm512_permutex2var_epi32(ql0, _mm512_add_epi32(ql_idx, jj), ql1);
        __m512i h = _mm512_permutexvar_epi32(_mm512_add_epi32(qh_idx, jj), qh);
        l = _mm512_and_si512(_mm512_srlv_epi32(l, ql_sh), _mm512_set1_epi8(0x0f));
        h = _mm512_rorv_epi32(h, qh_rot);
        W[j] = _mm512_ternarylogic_epi32(h, _mm512_set1_epi8(0x30), l, 0xEA); /* (h & 0x30) | l */
    }
    uint16_t d;
    memcpy(&d, &x->d, sizeof d);
    const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x->scales)));
    *D = _mm512_mul_ps(sc, _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(d))));
}

/* Parts a tile is decoded in (4 steps each) and the activation step of W[u] of part q. */
ALWAYS_INLINE int parts(int ty) { return eight_steps(ty) ? 2 : 1; }
ALWAYS_INLINE int step_of(int ty, int q, int u) { return eight_steps(ty) ? step8(q, u) : u; }

/* Bytes of tile `tile` of a weight row of n values; a partial last tile (Q8_0, or a
 * lone last Q5_K super-block) is copied to `pad` with zero blocks after it (zero scales
 * make the padding contribute exactly nothing). */
#define PAD_BYTES (16 * sizeof(block_q8_0)) /* >= 2 K-quant blocks */
ALWAYS_INLINE const char *tile_src(int ty, const char *row, int64_t tile, int64_t n, char *pad) {
    const char *src = row + tile * (int64_t)tile_bytes(ty);
    if (ty == TY_Q6_K) return src;
    const int64_t per = is_k4(ty) ? 2 : TILE_BLOCKS; /* blocks per tile */
    const int64_t left = is_k4(ty) ? n / QK_K - 2 * tile : n / QK8_0 - tile * per;
    if (left >= per) return src;
    memset(pad, 0, PAD_BYTES);
    memcpy(pad, src, (size_t)left * (tile_bytes(ty) / (size_t)per));
    return pad;
}

/* Part q of a tile: W[0..3] for steps step_of(ty, q, 0..3); part 0 also sets D (and M). */
ALWAYS_INLINE void dec_part(int ty, const char *src, int q, __m512i *W, __m512 *D, __m512 *M) {
    switch (ty) {
    case TY_Q8_0: dec_q8_0((const block_q8_0 *)src, q, W, D); return;
    case TY_Q5_K: dec_q5_K((const block_q5_K *)src, q, W, D, M); return;
    default: dec_q6_K((const block_q6_K *)src, W, D); return;
    }
}

/* ---------------------------------------------------------------- quantized driver */

/* Decoded-tile buffer use, for k > TG; WB_NONE_SUB is WB_NONE for rows walked in several
 * sub-chunks, prefetched in the order the tiles are walked (see row_tiles). */
enum { WB_NONE, WB_STORE, WB_LOAD, WB_NONE_SUB };
#define WZ 10                        /* zmm per decoded tile in the buffer: W[8], D, M */

/* Tiles [tile0, tile0 + cn) of R (1 or 2) weight rows, wstride bytes apart, against T
 * activation rows. sa: prepared tile tile0 of the first of the T rows; tiles are tstride zmm
 * apart, rows azmm apart. io: the accumulators, [R][T] with the rows' T-runs iostride apart
 * (read unless `first`). WB_NONE_SUB: the span's tiles are [span0, span1), walked in
 * sub-chunks of sub_tiles by blocks of RB rows. Two weight rows share every activation load
 * (one row alone: 6-26 % slower, see the top of the file); tiles are decoded in parts of 4
 * steps so that two rows' weights (8 zmm) and 2T sums fit the 32 registers; the float
 * accumulators stay in io (L1), read and written once per tile. */
ALWAYS_INLINE void row_tiles(int ty, int R, int T, const char *row, size_t wstride, int64_t tile0,
                             int cn, int64_t n, const __m512i *sa, size_t tstride, __m512 *io,
                             size_t iostride, int first, int mode, __m512i *wbuf, int64_t sub_tiles,
                             int64_t span0, int64_t span1) {
    const int S = steps(ty), AZ = azmm(ty), P = parts(ty);
    /* For few sums the float accumulators stay in registers for the whole run of tiles: in
     * memory, each tile's FMAs would wait for the previous tile's store to be forwarded (the
     * vector types may alias, so gcc cannot keep them in registers itself), which bounds k = 1,
     * and a zmm store costs more than a vpdpbusd on Zen 4. Up to 8 sums fit beside two rows'
     * weights (k = 3, 4: 2-6 % faster than in io); for more, the accumulators live in io (L1). */
    const int in_regs = R * T <= 8;
    __m512 racc[8];
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) racc[u] = _mm512_setzero_ps();
    if (in_regs && !first)
#pragma GCC unroll 8
        for (int u = 0; u < R * T; u++) racc[u] = io[(u / T) * iostride + u % T];
    for (int c = 0; c < cn; c++) {
        _Alignas(64) char pad[2][PAD_BYTES];
        const char *src[2] = {NULL, NULL};
        __m512 D[2], M[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        const __m512i *a = sa + (size_t)c * tstride;
        /* Integer sums are exact, so how the dpbusd chains are split cannot change a result:
         * interleave the rows (step outer) and, for few rows, use two chains per row, so that
         * enough independent dpbusd are in flight. */
        const int NC = R * T <= 2 ? 2 : 1;
        __m512i s[2][2 * TG];
        /* every sum is set, also those R and T leave unused (dead stores once unrolled): gcc 12
         * otherwise warns that the sums may be used uninitialized */
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++)
#pragma GCC unroll 16
            for (int u = 0; u < 2 * TG; u++)
                s[r][u] = has_corr(ty) && u < T ? a[u * AZ + S + 1] : _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            if (mode != WB_LOAD) {
                const char *rw = row + r * wstride;
                const char *pf = rw + (tile0 + c) * (int64_t)tile_bytes(ty) +
                                 (mode == WB_NONE ? PF_DIST_FEW : PF_DIST); /* WB_NONE: kp <= TG */
                if (mode == WB_NONE_SUB) { /* this row's tile one sub-chunk on, or from the
                                              * last sub-chunk, the first of the next block */
                    const int64_t u = tile0 + c + sub_tiles;
                    pf = u < span1 ? rw + u * (int64_t)tile_bytes(ty)
                                   : rw + RB * (int64_t)wstride + (span0 + u - span1) * (int64_t)tile_bytes(ty);
                }
                for (size_t o = 0; o < tile_bytes(ty); o += 64) pf_q(pf + o);
                src[r] = tile_src(ty, rw, tile0 + c, n, pad[r]);
            }
        }
#pragma GCC unroll 2
        for (int q = 0; q < P; q++) {
            __m512i W[2][4];
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                __m512i *wb = wbuf + ((size_t)c * R + r) * WZ;
                if (mode == WB_LOAD) {
#pragma GCC unroll 4
                    for (int u = 0; u < 4; u++) W[r][u] = wb[4 * q + u];
                    if (q == 0) D[r] = _mm512_castsi512_ps(wb[8]), M[r] = _mm512_castsi512_ps(wb[9]);
                } else {
                    dec_part(ty, src[r], q, W[r], &D[r], &M[r]);
                    if (mode == WB_STORE) {
#pragma GCC unroll 4
                        for (int u = 0; u < 4; u++) wb[4 * q + u] = W[r][u];
                        if (q == 0) wb[8] = _mm512_castps_si512(D[r]), wb[9] = _mm512_castps_si512(M[r]);
                    }
                }
            }
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++)
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    const int j = step_of(ty, q, u), ch = t + T * ((q * 4 + u) % NC);
                    __m512i av = _mm512_load_si512(&a[t * AZ + j]);
                    /* one register load for both rows: gcc would otherwise fold the load into
                     * each dpbusd, loading it twice */
                    if (R == 2) __asm__("" : "+v"(av));
#pragma GCC unroll 2
                    for (int r = 0; r < R; r++) s[r][ch] = _mm512_dpbusd_epi32(s[r][ch], W[r][u], av);
                }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m512i *at = a + t * AZ;
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                const __m512i st = NC == 2 ? _mm512_add_epi32(s[r][t], s[r][t + T]) : s[r][t];
                /* the first tile of a run adds to zero without reading io: zeroing io
                 * first compiled to `rep stos` (5 % of an 8-token pass in perf) */
                const __m512 prev = in_regs           ? racc[r * T + t]
                                    : first && c == 0 ? _mm512_setzero_ps()
                                                      : io[r * iostride + t];
                __m512 acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st),
                                             _mm512_mul_ps(D[r], _mm512_castsi512_ps(at[S])), prev);
                if (has_min(ty)) acc = _mm512_fmadd_ps(M[r], _mm512_castsi512_ps(at[S + 1]), acc);
                if (in_regs) racc[r * T + t] = acc;
                else io[r * iostride + t] = acc;
            }
        }
    }
    if (in_regs)
#pragma GCC unroll 8
        for (int u = 0; u < R * T; u++) io[(u / T) * iostride + u % T] = racc[u];
}

#define ROW_TILES_T(R, T, MODE)                                                                \
    row_tiles(ty, R, T, row, w_stride, s0 + c0, cn, n, scratch + ((size_t)c0 * kp + tg0) * AZ, \
              (size_t)kp * AZ, accb + (size_t)i * kp + tg0, (size_t)kp, c0 == 0, MODE, wb, C, s0, s0 + ns)
/* row_tiles for the R and the T (in scope) at hand, both compile-time inside */
#define ROW_TILES_R(R, MODE)                                                                   \
    do {                                                                                       \
        switch (T) {                                                                           \
        case 1: ROW_TILES_T(R, 1, MODE); break;                                                \
        case 2: ROW_TILES_T(R, 2, MODE); break;                                                \
        case 3: ROW_TILES_T(R, 3, MODE); break;                                                \
        case 4: ROW_TILES_T(R, 4, MODE); break;                                                \
        case 5: ROW_TILES_T(R, 5, MODE); break;                                                \
        case 6: ROW_TILES_T(R, 6, MODE); break;                                                \
        case 7: ROW_TILES_T(R, 7, MODE); break;                                                \
        default: ROW_TILES_T(R, 8, MODE); break;                                               \
        }                                                                                      \
    } while (0)
#define ROW_TILES(R, MODE)                                                                     \
    do {                                                                                       \
        if ((R) == 2) ROW_TILES_R(2, MODE);                                                    \
        else ROW_TILES_R(1, MODE);                                                             \
    } while (0)

ALWAYS_INLINE int64_t n_tiles(int ty, int64_t n) { return (n + tile_values(ty) - 1) / tile_values(ty); }

/* Where the prepared activations of rows t0 .. t0 + KB (one group of at most KB rows) start in
 * a whole product's preparation: groups of ntiles x KB x azmm zmm, inside a group [tile][row]
 * [azmm] with as many rows as the group has. */
ALWAYS_INLINE size_t prep_group_zmm(int ty, int64_t n, int64_t t0) {
    return (size_t)(t0 / KB) * (size_t)n_tiles(ty, n) * KB * (size_t)azmm(ty);
}

ALWAYS_INLINE size_t prep_bytes(int ty, int64_t n, int32_t k) {
    return prep_group_zmm(ty, n, (int64_t)k + KB - 1) * sizeof(__m512i);
}

/* Tiles [c0, c0 + nc) of activation rows t0 .. t0 + kp into dst ([tile][row][azmm]). */
ALWAYS_INLINE void prep_tiles(int ty, int64_t n, const void *act, size_t act_stride, int64_t t0, int kp,
                              int64_t c0, int64_t nc, __m512i *dst) {
    const int AZ = azmm(ty);
    const char *a0 = (const char *)act + (size_t)t0 * act_stride;
    for (int64_t c = 0; c < nc; c++)
        for (int t = 0; t < kp; t++) prep_tile(ty, a0 + (size_t)t * act_stride, n, c0 + c, dst + ((size_t)c * kp + t) * AZ);
}

/* Activation rows [t0, t1) of the k rows into their places in a whole product's preparation. */
ALWAYS_INLINE void prep_rows(int ty, int64_t n, const void *act, size_t act_stride, int32_t k, int32_t t0,
                             int32_t t1, void *dst) {
    const int AZ = azmm(ty);
    const int64_t nt = n_tiles(ty, n);
    for (int32_t t = t0; t < t1; t++) {
        const int64_t g0 = t - t % KB;
        const int kp = (int)(k - g0 < KB ? k - g0 : KB);
        __m512i *group = (__m512i *)dst + prep_group_zmm(ty, n, g0);
        const char *a = (const char *)act + (size_t)t * act_stride;
        for (int64_t c = 0; c < nt; c++) prep_tile(ty, a, n, c, group + ((size_t)c * kp + (size_t)(t - g0)) * AZ);
    }
}

typedef void (*mul_mat_q_fn)(int64_t n, const void *restrict w, size_t w_stride, int64_t r0, int64_t r1,
                             const void *restrict act, size_t act_stride, const void *restrict prepped,
                             int32_t k, float *restrict out, int64_t ld);

/* Tiles per sub-chunk for kp activation rows: as many as keep their prepared activations in L1. */
ALWAYS_INLINE int sub_chunk_tiles(int ty, int kp, int64_t ns) {
    int C = L1_ACT / (kp * azmm(ty) * 64);
    if (C < 1) C = 1;
    return C > ns ? (int)ns : C;
}

/* The product over rows [r0, r1) from activations in the vec_dot type (act, prepared here span
 * by span) or already prepared for the whole product (prepped, from prep_rows). sub_fn: the
 * type's instance with sub = 1 (below), or NULL where the type does not take it. */
ALWAYS_INLINE void mul_mat_q(int ty, int sub, int64_t n, const void *restrict w, size_t w_stride,
                             int64_t r0, int64_t r1, const void *restrict act, size_t act_stride,
                             const void *restrict prepped, int32_t k, float *restrict out, int64_t ld,
                             mul_mat_q_fn sub_fn) {
    if (r1 <= r0 || k <= 0) return;
    const int AZ = azmm(ty);
    const int64_t ntiles = n_tiles(ty, n);
    const int64_t st = SC_VALUES / tile_values(ty); /* tiles per span */
    const int64_t ns0 = ntiles < st ? ntiles : st;
    /* At most TG activation rows and rows walked in several sub-chunks: the walk jumps between
     * rows, so a fixed prefetch distance lands on tiles read much later; instead each tile's
     * prefetch is the tile read one sub-chunk pass later (WB_NONE_SUB). That case is a separate
     * instance (sub = 1), so that its code leaves the register allocation of the others alone. */
    if (!sub && sub_fn && k <= TG && sub_chunk_tiles(ty, k, ns0) < ns0) {
        sub_fn(n, w, w_stride, r0, r1, act, act_stride, prepped, k, out, ld);
        return;
    }
    for (int64_t t0 = 0; t0 < k; t0 += KB) {
        const int kp = (int)(k - t0 < KB ? k - t0 : KB);
        float *o0 = out + t0 * ld;
        for (int64_t s0 = 0; s0 < ntiles; s0 += st) {
            const int ns = (int)(ntiles - s0 < st ? ntiles - s0 : st);
            /* prepared activations of the span: [tile][row][azmm] */
            __m512i local[prepped ? 1 : (size_t)ns * kp * AZ];
            const __m512i *scratch = local;
            if (prepped)
                scratch = (const __m512i *)prepped + prep_group_zmm(ty, n, t0) + (size_t)s0 * kp * AZ;
            else
                prep_tiles(ty, n, act, act_stride, t0, kp, s0, ns, local);
            const int C = sub_chunk_tiles(ty, kp, ns);
            __m512 accb[RB * KB];
            __m512i wbuf[(kp > TG ? 2 * C : 1) * WZ]; /* decoded tiles of a row pair when kp > TG */
            for (int64_t rb = r0; rb < r1; rb += RB) {
                const int nr = (int)(r1 - rb < RB ? r1 - rb : RB);
                for (int c0 = 0; c0 < ns; c0 += C) {
                    const int cn = ns - c0 < C ? ns - c0 : C;
                    for (int i = 0; i < nr;) {
                        const char *row = (const char *)w + (size_t)(rb + i) * w_stride;
                        /* row pairs share activation loads; a lone last row goes alone */
                        const int R = nr - i >= 2 ? 2 : 1;
                        for (int tg0 = 0; tg0 < kp; tg0 += TG) {
                            const int T = kp - tg0 < TG ? kp - tg0 : TG;
                            __m512i *wb = wbuf;
                            /* the mode as a constant where it matters most (k <= TG: decoding
                             * and verification), so that its branches vanish from the loop */
                            if (sub && C < ns) ROW_TILES(R, WB_NONE_SUB);
                            else if (sub || kp <= TG) ROW_TILES(R, WB_NONE); /* sub: k <= TG */
                            else ROW_TILES(R, tg0 == 0 ? WB_STORE : WB_LOAD);
                        }
                        i += R;
                    }
                }
                reduce_store(accb, nr, kp, o0, ld, rb, s0 > 0);
            }
        }
    }
}

/* The Q8_0 products are compiled with gcc's instruction scheduling before register allocation
 * (-fschedule-insns with register pressure in mind, off by default on x86), which spreads the
 * decoder's many independent shuffles and scale loads among the vpdpbusd. Kernel A/B on one
 * core (same results bit for bit): Q8_0 5-14 % less time at k = 2..8; Q4_0 (then on these
 * tiles) no better at k >= 4; Q4_K and Q6_K 8-19 % slower at k = 8; Q5_K 6-9 % faster at
 * k = 8 but 5 % slower at k = 16. So only Q8_0 takes it. Other compilers ignore the hint. */
#if defined(__GNUC__) && !defined(__clang__)
#define PRE_RA_SCHEDULED __attribute__((optimize("schedule-insns", "sched-pressure")))
#else
#define PRE_RA_SCHEDULED
#endif

/* The instance of mul_mat_q for few activation rows walked in sub-chunks (sub = 1). Q8_0,
 * 2048 x 5632 from memory (huge pages, as the page cache maps model files), one core: k = 4
 * 0.87, k = 8 0.75 of the time; whole model 0.93-0.96 at k = 8 (paired runs, 1 and 2 threads),
 * k = 1 unchanged. Q6_K does not take it: its kernel gained less (k = 4 0.93-0.96, k = 8
 * 0.97-0.98) and whole Q4_K_M passes nothing (0.98-1.00 at k = 4 and 8). */
#define DEFINE_Q_SUB(name, ty, ATTR)                                                              \
    __attribute__((noinline)) ATTR static void mul_mat_sub_##name(                               \
        int64_t n, const void *restrict w, size_t w_stride, int64_t r0, int64_t r1,               \
        const void *restrict act, size_t act_stride, const void *restrict prepped, int32_t k,     \
        float *restrict out, int64_t ld) {                                                        \
        mul_mat_q(ty, 1, n, w, w_stride, r0, r1, act, act_stride, prepped, k, out, ld, NULL);     \
    }

/* SUB_FN: the type's mul_mat_sub_ or NULL */
#define DEFINE_Q(name, ty, ATTR, SUB_FN)                                                          \
    ATTR static void mul_mat_##name(int64_t n, const void *restrict w, size_t w_stride,           \
                                    int64_t r0, int64_t r1, const void *restrict act,             \
                                    size_t act_stride, int32_t k, float *restrict out,            \
                                    int64_t ld) {                                                 \
        mul_mat_q(ty, 0, n, w, w_stride, r0, r1, act, act_stride, NULL, k, out, ld, SUB_FN);      \
    }                                                                                             \
    ATTR static void mul_mat_prepped_##name(int64_t n, const void *restrict w, size_t w_stride,   \
                                            int64_t r0, int64_t r1, const void *restrict prepped, \
                                            int32_t k, float *restrict out, int64_t ld) {         \
        mul_mat_q(ty, 0, n, w, w_stride, r0, r1, NULL, 0, prepped, k, out, ld, SUB_FN);           \
    }                                                                                             \
    static size_t prep_size_##name(int64_t n, int32_t k) { return prep_bytes(ty, n, k); }         \
    static void prep_rows_##name(int64_t n, const void *restrict act, size_t act_stride,          \
                                 int32_t k, int32_t t0, int32_t t1, void *restrict dst) {         \
        prep_rows(ty, n, act, act_stride, k, t0, t1, dst);                                        \
    }                                                                                             \
    static void vec_dot_##name(int64_t n, float *restrict s, const void *restrict x,              \
                               const void *restrict y) {                                          \
        mul_mat_##name(n, x, 0, 0, 1, y, 0, 1, s, 1);                                             \
    }

DEFINE_Q_SUB(q8_0, TY_Q8_0, PRE_RA_SCHEDULED)
DEFINE_Q(q8_0, TY_Q8_0, PRE_RA_SCHEDULED, mul_mat_sub_q8_0)
DEFINE_Q(q5_K, TY_Q5_K, , NULL)
DEFINE_Q(q6_K, TY_Q6_K, , NULL)

/* ---------------------------------------------------------------- weight rows in lanes */

/* Q4_0 and Q4_K products use a second layout, "rows in lanes": lane i of every register
 * belongs to weight row i of a group of 16, and an activation dword is broadcast to all lanes.
 * 16 bytes of each of the 16 rows (16 xmm loads and an in-lane 4x4 dword transpose) give 4
 * registers of weights, each applied to up to RL_TG activation rows: vpdpbusd(s_t, W,
 * bcast(a_t dword)). Why: on Zen 4 a core loads one zmm per cycle (1.25 zmm loads per vpdpbusd
 * ran 30 % slower than none), and the tiles above need about one per vpdpbusd at 8 activation
 * rows (activations, float accumulators in L1, weights); their inline-assembly copy ran 12 %
 * faster without the activation loads. This layout broadcasts the activations from L1 (1.5
 * dword broadcasts per vpdpbusd still run at full speed), keeps the float sums of 16 rows x 8
 * activation rows in registers and needs no horizontal reduction: 1.35 against 1.56 cycles
 * per vpdpbusd in assembly copies of both inner loops (Q4_0). The price is a heavier decoder,
 * which one activation row does not amortize; decoding (k = 1) is bound by memory.
 *
 * Q4_0: a block column (block b of the 16 rows) is 8 steps: one conversion, one multiply (the
 * rows' scales by the activation block's) and one FMA per activation row and block.
 * Q4_K: Q8_K has one activation scale per super-block, so the 8 sub-block sums of an
 * activation row meet the rows' scales d * sc_g (shared by the activation rows) in one FMA
 * each and the activation scale once per super-block; the mins go in integer:
 *   acc = -dmin * float(sum_g m_g B_g)      (4 vpdpwssd: (m_2p, m_2p+1) against (B_2p, B_2p+1))
 *   acc += float(S_g) * (d * sc_g)          (g = 0 .. 7, one FMA per 8 vpdpbusd)
 *   f += acc * d_a
 * about 14 operations on Zen 5's multiply pipes (which vpdpbusd also uses) per 64 vpdpbusd,
 * against the tiles' 24.
 *
 * The result of a (weight row, activation row) pair is its blocks' (super-blocks') float
 * terms added in block order into one float, whatever k, the row range or the chunking is (a
 * chunk's sums go through `out` exactly), so batches reproduce single steps bit for bit. */
/* Q4_0 rows are read eight blocks (144 bytes, 9 x 16) at a time while a chunk has eight left
 * (q40_rl_unit); the activation quants of the even blocks of those units are stored rotated
 * to match (q40_prep_row). Chunks start at multiples of eight blocks. */
#define Q40_UNIT 8

typedef struct {
    int8_t qs[QK8_0]; /* the activation block's quants, in order (rotated: q40_rl_unit) */
    int32_t corr;     /* -8 * sum(qs): the weights are decoded as unsigned nibbles q = value + 8 */
    float d;          /* the activation block's scale */
} q40_act;            /* 40 bytes: every dword aligned, so no broadcast spans two cache lines */

typedef struct {
    int8_t qs[QK_K];  /* the activation super-block's quants, in order */
    int16_t bsum[8];  /* sums of the quants of each 32-value sub-block (they meet the mins) */
    float d;          /* the super-block's scale */
} q4k_act;            /* 276 bytes, dwords aligned */

enum { RL_Q4_0, RL_Q4_K };
#define RL_ROWS 16  /* weight rows per group, one per lane */
#define RL_TG 8     /* activation rows applied to decoded weights in registers */
#define RL_KB 16    /* activation rows mul_mat prepares at a time (mul_mat_prepped: all) */
/* Bytes of a chunk in one weight row: 64 Q4_0 blocks or 8 Q4_K super-blocks (2048 values);
 * the chunk's activations for RL_TG rows (20 or 17 KB) stay in L1 for every group. */
#define RL_CHUNK_BYTES 1152

ALWAYS_INLINE size_t rl_block_bytes(int rt) { return rt == RL_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q4_K); }
ALWAYS_INLINE size_t rl_act_bytes(int rt) { return rt == RL_Q4_0 ? sizeof(q40_act) : sizeof(q4k_act); }
ALWAYS_INLINE int64_t rl_block_values(int rt) { return rt == RL_Q4_0 ? QK4_0 : QK_K; }
ALWAYS_INLINE int rl_chunk_blocks(int rt) { return (int)(RL_CHUNK_BYTES / rl_block_bytes(rt)); }

/* One activation row's nb blocks into dst[0], dst[step], dst[2 step], ... (the [block][row]
 * layout of a batch). */
static void q40_prep_row(const block_q8_0 *restrict a, int64_t nb, int64_t step, q40_act *restrict dst) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    /* each 16-byte half rotated right by 2 bytes: (a14, a15, a0, ..., a13) */
    const __m256i rot = _mm256_setr_epi8(14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                         14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13);
    const int64_t in_units = nb & ~(int64_t)(Q40_UNIT - 1); /* blocks q40_rl_unit reads */
    for (int64_t b = 0; b < nb; b++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)a[b].qs);
        q40_act *e = dst + b * step;
        _mm256_storeu_si256((__m256i *)e->qs, b < in_units && b % 2 == 0 ? _mm256_shuffle_epi8(q, rot) : q);
        /* sum of the signed quants: psadbw sums q + 128, less 32 * 128 */
        const __m256i s4 = _mm256_sad_epu8(_mm256_xor_si256(q, bias), _mm256_setzero_si256());
        __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        s2 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
        e->corr = -8 * (_mm_cvtsi128_si32(s2) - 32 * 128);
        e->d = celer_fp16_to_fp32(a[b].d);
    }
}

static void q4k_prep_row(const block_q8_K *restrict a, int64_t nb, int64_t step, q4k_act *restrict dst) {
    for (int64_t b = 0; b < nb; b++) {
        q4k_act *e = dst + b * step;
        memcpy(e->qs, a[b].qs, sizeof e->qs);
        /* pairs of the 16-value sums (|sum| <= 32 * 128: int16 holds it) */
        const __m128i lo = _mm_loadu_si128((const __m128i *)a[b].bsums);
        const __m128i hi = _mm_loadu_si128((const __m128i *)(a[b].bsums + 8));
        _mm_storeu_si128((__m128i *)e->bsum, _mm_packs_epi32(_mm_madd_epi16(lo, _mm_set1_epi16(1)),
                                                             _mm_madd_epi16(hi, _mm_set1_epi16(1))));
        e->d = a[b].d;
    }
}

ALWAYS_INLINE void rl_prep_row(int rt, const void *restrict a, int64_t nb, int64_t step, void *restrict dst) {
    if (rt == RL_Q4_0) q40_prep_row((const block_q8_0 *)a, nb, step, (q40_act *)dst);
    else q4k_prep_row((const block_q8_K *)a, nb, step, (q4k_act *)dst);
}

/* The 16 rows of a group are ws bytes apart; p points into row 0 (at the block in hand), q =
 * p + 8 ws.
 * Row i is addressed as base + index * scale from six general registers (ws, 3 ws, 5 ws,
 * 7 ws and the two bases), so no row pointer is reloaded in the loop. */
typedef struct {
    const char *p, *q;
    int64_t ws, ws3, ws5, ws7;
} rl_rows;

/* The group of 16 rows starting at row0, stride bytes apart. */
ALWAYS_INLINE rl_rows rl_rows_at(const char *row0, int64_t stride) {
    return (rl_rows){row0, row0 + 8 * stride, stride, 3 * stride, 5 * stride, 7 * stride};
}

ALWAYS_INLINE const char *rl_row(const rl_rows *g, int i) {
    const char *b = i < 8 ? g->p : g->q;
    switch (i % 8) {
    case 0: return b;
    case 1: return b + g->ws;
    case 2: return b + 2 * g->ws;
    case 3: return b + g->ws3;
    case 4: return b + 4 * g->ws;
    case 5: return b + g->ws5;
    case 6: return b + 2 * g->ws3;
    default: return b + g->ws7;
    }
}

ALWAYS_INLINE void rl_advance(rl_rows *g, size_t bytes) { g->p += bytes, g->q += bytes; }

/* Z[j] lane i = dword j of row i's 16 bytes, from Y[c] holding rows c, 4 + c, 8 + c, 12 + c in
 * its 128-bit lanes: an in-lane 4x4 dword transpose. */
ALWAYS_INLINE void rl_transpose(const __m512i *Y, __m512i *Z) {
    const __m512i A0 = _mm512_unpacklo_epi32(Y[0], Y[1]), A1 = _mm512_unpackhi_epi32(Y[0], Y[1]);
    const __m512i A2 = _mm512_unpacklo_epi32(Y[2], Y[3]), A3 = _mm512_unpackhi_epi32(Y[2], Y[3]);
    Z[0] = _mm512_unpacklo_epi64(A0, A2), Z[1] = _mm512_unpackhi_epi64(A0, A2);
    Z[2] = _mm512_unpacklo_epi64(A1, A3), Z[3] = _mm512_unpackhi_epi64(A1, A3);
}

/* The 16 bytes at offset off of every row, transposed (rl_transpose), loaded from C: gcc
 * interleaves these loads with the rest (Q4_0: the assembly loads below took 14-22 % more
 * time at every k). */
ALWAYS_INLINE void rl_dwords(const rl_rows *g, int64_t off, __m512i *Z) {
    __m512i Y[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        /* (the lane numbers are immediates: written out, since -O1 builds do not unroll) */
        Y[c] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rl_row(g, c) + off)));
        Y[c] = _mm512_inserti32x4(Y[c], _mm_loadu_si128((const __m128i *)(rl_row(g, 4 + c) + off)), 1);
        Y[c] = _mm512_inserti32x4(Y[c], _mm_loadu_si128((const __m128i *)(rl_row(g, 8 + c) + off)), 2);
        Y[c] = _mm512_inserti32x4(Y[c], _mm_loadu_si128((const __m128i *)(rl_row(g, 12 + c) + off)), 3);
    }
    rl_transpose(Y, Z);
}

/* Row i (0..7) from base b in the rows-in-lanes assembly: an addressing mode on b and the
 * group's strides, operands %[w], %[w3], %[w5], %[w7] (the rows rl_row computes in C). */
#define RL_AT_0(b) b
#define RL_AT_1(b) b ",%[w]"
#define RL_AT_2(b) b ",%[w],2"
#define RL_AT_3(b) b ",%[w3]"
#define RL_AT_4(b) b ",%[w],4"
#define RL_AT_5(b) b ",%[w5]"
#define RL_AT_6(b) b ",%[w3],2"
#define RL_AT_7(b) b ",%[w7]"
#define RL_AT(b, i) RL_AT_##i(b)

/* The same with the loads written out in assembly, so that every row is an addressing mode on
 * the group's registers: from C, gcc computed the 16 row pointers once for the 9 loads of a
 * Q4_K super-block row and spilled them (138 more instructions per super-block at one
 * activation row). Volatile: kept in program order with rl_chunk's compiler barrier after it
 * copies a last group's rows. */
ALWAYS_INLINE void rl_dwords_asm(const rl_rows *g, int64_t off, __m512i *Z) {
    __m512i Y[4];
    const char *p, *q; /* the two bases + off */
/* rows c, c + 4, 8 + c, 12 + c (c4 = c + 4) into lanes 0..3 of y */
#define RL_LOAD4(y, c, c4)                                                                      \
    "vmovdqu32 (" RL_AT("%[p]", c) "), %x[" y "]\n\t"                                            \
    "vinserti32x4 $1, (" RL_AT("%[p]", c4) "), %[" y "], %[" y "]\n\t"                           \
    "vinserti32x4 $2, (" RL_AT("%[q]", c) "), %[" y "], %[" y "]\n\t"                            \
    "vinserti32x4 $3, (" RL_AT("%[q]", c4) "), %[" y "], %[" y "]\n\t"
    __asm__ volatile("lea (%[p0],%[o]), %[p]\n\t"
                     "lea (%[q0],%[o]), %[q]\n\t"
                     RL_LOAD4("y0", 0, 4) RL_LOAD4("y1", 1, 5) RL_LOAD4("y2", 2, 6) RL_LOAD4("y3", 3, 7)
                     : [y0] "=&v"(Y[0]), [y1] "=&v"(Y[1]), [y2] "=&v"(Y[2]), [y3] "=&v"(Y[3]), [p] "=&r"(p),
                       [q] "=&r"(q)
                     : [p0] "r"(g->p), [q0] "r"(g->q), [w] "r"(g->ws), [w3] "r"(g->ws3), [w5] "r"(g->ws5),
                       [w7] "r"(g->ws7), [o] "r"(off));
#undef RL_LOAD4
    rl_transpose(Y, Z);
}

/* A prefetch (pf_q) of byte off of each of the 16 rows at g's bases, with g's strides (in
 * assembly for the same reason). */
ALWAYS_INLINE void rl_prefetch16(const rl_rows *g, int64_t off) {
    const char *p, *q;
#define RL_PF4(insn, c, c4)                                                                     \
    insn " (" RL_AT("%[p]", c) ")\n\t" insn " (" RL_AT("%[p]", c4) ")\n\t"                      \
    insn " (" RL_AT("%[q]", c) ")\n\t" insn " (" RL_AT("%[q]", c4) ")\n\t"
#define RL_PF16(insn)                                                                           \
    __asm__ volatile("lea (%[p0],%[o]), %[p]\n\t"                                                \
                     "lea (%[q0],%[o]), %[q]\n\t"                                                \
                     RL_PF4(insn, 0, 4) RL_PF4(insn, 1, 5) RL_PF4(insn, 2, 6) RL_PF4(insn, 3, 7)  \
                     : [p] "=&r"(p), [q] "=&r"(q)                                                \
                     : [p0] "r"(g->p), [q0] "r"(g->q), [w] "r"(g->ws), [w3] "r"(g->ws3),         \
                       [w5] "r"(g->ws5), [w7] "r"(g->ws7), [o] "r"(off))
    if (pf_q_to_l2()) RL_PF16("prefetcht1");
    else RL_PF16("prefetcht0");
#undef RL_PF16
#undef RL_PF4
}

/* The fp16 scales of the block at the group's pointers, one per lane, as floats (for the
 * blocks after a chunk's last eight-block unit; q40_rl_unit reads the others' with their
 * quants; the measurements below are of the per-block loop all blocks went through): 16 vpinsrw
 * with the loads folded in (two chains of 8, one per half of the rows), in assembly so that
 * every row is an addressing mode on the group's two bases and strides. The scales used to go
 * through general registers (movzwl, shift, or: ~60 instructions of the 136 in a k = 1 block)
 * into a ring of 4 read back two blocks later (a gather costs ~20 cycles on Zen 4, and more
 * than this on Zen 5: 1.14x the time at k = 1 in L2). On Zen 5 (2 vCPUs), one core, 256 x 2048
 * in L2 (three runs): k = 1 0.70-0.93 of the time, k = 2 0.78-0.97, k = 4 0.86-0.95, k = 8
 * 0.98-1.00, k = 16 0.98-0.99; whole Q4_0 model (paired harness), 1 thread (11 rounds) k = 1 /
 * 2 / 4 / 8 / 16 0.87 / 0.97 / 0.90 / 0.93 / 0.94, 2 threads (15 rounds, noisy minutes) 1.03 /
 * 1.00 / 1.01 / 0.98 / 0.94. Read at the top of the block, not ahead: a ring written two blocks
 * ahead with these loads took 0.98-1.02 of this time at k <= 8 and 1.04-1.05 at k = 16. */
ALWAYS_INLINE __m512 q40_rl_scales(const rl_rows *g) {
    __m128i lo8, hi8;
    const __m128i z = _mm_setzero_si128();
#define RL_PIN(dst, base, i) "vpinsrw $" #i ", (" RL_AT(base, i) "), " dst ", " dst "\n\t"
#define RL_PINS(dst, base)                                                                      \
    "vpinsrw $0, (" RL_AT(base, 0) "), %[z], " dst "\n\t"                                       \
    RL_PIN(dst, base, 1) RL_PIN(dst, base, 2) RL_PIN(dst, base, 3) RL_PIN(dst, base, 4)         \
    RL_PIN(dst, base, 5) RL_PIN(dst, base, 6) RL_PIN(dst, base, 7)
    __asm__(RL_PINS("%[lo]", "%[p]") RL_PINS("%[hi]", "%[q]")
            : [lo] "=&x"(lo8), [hi] "=&x"(hi8)
            : [z] "x"(z), [p] "r"(g->p), [q] "r"(g->q), [w] "r"(g->ws), [w3] "r"(g->ws3), [w5] "r"(g->ws5),
              [w7] "r"(g->ws7), "m"(*(const char(*)[1])g->p));
#undef RL_PIN
#undef RL_PINS
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo8), hi8, 1));
}

/* s + vpdpbusd(w, the dword at p broadcast to every lane), with the broadcast folded into the
 * instruction ({1to16}): gcc emits a separate vpbroadcastd for the intrinsic, one more
 * instruction per vpdpbusd, and on Zen 4 the instruction count bounds this loop (the folded
 * form measured 6-13 % less time at k = 4..16). */
ALWAYS_INLINE __m512i dpbusd_bcast(__m512i s, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(w), "m"(*(const int32_t *)(const void *)p));
    return s;
}

/* The same for vpdpwssd (int16 pairs): s + sum of w's pairs times the pair at p. */
ALWAYS_INLINE __m512i dpwssd_bcast(__m512i s, __m512i w, const int16_t *p) {
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(w), "m"(*(const int32_t *)(const void *)p));
    return s;
}

/* The next group's rows to prefetch, through this group's strides (the same but in a last,
 * padded group, where the prefetches are only wasted): two more general registers, not six. */
ALWAYS_INLINE rl_rows rl_prefetch_rows(const rl_rows *g, const rl_rows *next) {
    return (rl_rows){next->p, next->q, g->ws, g->ws3, g->ws5, g->ws7};
}

/* Prefetches of the next group's lines, a whole group ahead, of the byte that ends block b,
 * and at the chunk's last block; in assembly (rl_prefetch16) with the group's strides:
 * whole-model passes of a Q4_0 file took 5-9 % less time at k = 1 and 3-6 % less at k = 8
 * than from C with the next group's own strides (paired runs, 1 and 2 threads). On AMD at
 * every third block (54 bytes < a line, so every line of every row); on Intel only where that
 * byte starts a new line of a row that starts on a line, as the chunk does when a row has a
 * whole number of lines (2048 columns): 18 of 64 blocks instead of 22, so rows of other
 * alignments (half the rows at 5632 columns) may leave a line to the hardware prefetcher.
 * Whole Q4_0 model on Emerald Rapids, paired, new / every third block, k = 1 / 2 / 4 / 8 / 16:
 * 2 threads (15 rounds) 0.97 / 0.96 / 0.98 / 0.98 / 0.99, 1 thread (9) 0.97 / 0.95 / 0.98 /
 * 0.97 / 0.99; an earlier build of the same rule 1.00 / 1.00 / 0.99 / 0.97 / 0.98 and 0.99 /
 * 0.99 / 0.98 / 0.97 / 0.98. (The same thinning of Q4_K's three prefetches per super-block
 * cost 1.02-1.06 there.) */
ALWAYS_INLINE void q40_rl_prefetch_at(const rl_rows *pf, int b, int nbk, int off) {
    const int last = (int)sizeof(block_q4_0) * b + (int)sizeof(block_q4_0) - 1;
    const int due = pf_q_to_l2() ? last % 64 < (int)sizeof(block_q4_0) : b % 3 == 0;
    if (due || b == nbk - 1) rl_prefetch16(pf, off + (int)sizeof(block_q4_0) - 1);
}

ALWAYS_INLINE void q40_rl_prefetch(const rl_rows *pf, int b, int nbk) { q40_rl_prefetch_at(pf, b, nbk, 0); }

/* One Q4_0 block's products: Zq[j] lane i = the dword of row i's quants that meets activation
 * dword j (low nibbles) and 4 + j (high nibbles); s_t starts at the activation's correction. */
ALWAYS_INLINE void q40_rl_block(int T, const __m512i *Zq, __m512 D, const q40_act *ab, __m512 *f) {
    const __m512i lo = _mm512_set1_epi8(0x0f);
    __m512i s[RL_TG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) s[t] = _mm512_set1_epi32(ab[t].corr);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i wl = _mm512_and_si512(Zq[j], lo);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) s[t] = dpbusd_bcast(s[t], wl, ab[t].qs + 4 * j);
        const __m512i wh = _mm512_and_si512(_mm512_srli_epi16(Zq[j], 4), lo);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) s[t] = dpbusd_bcast(s[t], wh, ab[t].qs + 16 + 4 * j);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), _mm512_mul_ps(D, _mm512_set1_ps(ab[t].d)), f[t]);
}

/* Blocks b and b + 1 of the chunk (activations ab) from their 9 dwords, P[0..8]: P[0 ..
 * more_at) are loaded, the 4 dwords at offset more_off go to P[more_at ..] between the two
 * blocks (they end the odd block). */
ALWAYS_INLINE void q40_rl_pair(int T, const rl_rows *r, __m512i *P, int more_at, int64_t more_off,
                               const rl_rows *pf, int b, int nbk, int off, const q40_act *ab, int64_t astep,
                               __m512 *f) {
    /* words 0, 2, .., 30 of the first source (each row's d of the even block), then words 1,
     * 3, .., 31 of the second (the odd block's d) */
    const __m512i idx = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                         30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    q40_rl_prefetch_at(pf, b, nbk, off);
    const __m512i h = _mm512_permutex2var_epi16(P[0], idx, P[4]);
    const __m512i even[4] = {_mm512_mask_blend_epi16(0x55555555u, P[0], P[4]), P[1], P[2], P[3]};
    q40_rl_block(T, even, _mm512_cvtph_ps(_mm512_castsi512_si256(h)), ab, f);
    rl_dwords_asm(r, more_off, P + more_at);
    q40_rl_prefetch_at(pf, b + 1, nbk, off + (int)sizeof(block_q4_0));
    q40_rl_block(T, P + 5, _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), ab + astep, f);
}

/* Eight Q4_0 blocks (b .. b + 7 of the chunk) of the group's rows, read as 9 x 16 bytes per
 * row (nine load-and-transpose steps: dword u of row i's 144 bytes in lane i of register u)
 * instead of 8 x 16 bytes of quants plus 16 two-byte scale loads per block. A pair of blocks
 * is 9 dwords: (d0, q0 q1), q2..q13 (3), (q14 q15, d1), then the odd block's 16 quant bytes
 * (4). The even block's first dword is (q14 q15, q0 q1) by one word blend, so its activations
 * are stored rotated by two bytes (q40_prep_row); both blocks' scales come from one word
 * permutation. The integer sums are exact and the float steps those of the per-block loop
 * (q40_rl_group), so the results are the same bit for bit. Dwords 9m..9m+8 are pair m's; the
 * last dwords of a group of 4 carry over to the next pair.
 * Why: per block at 8 activation rows, ~13 fewer operations on Intel's two vector ports
 * (16 vpinsrw, each a shuffle, against 1/8 of a transpose, a blend and half a permutation),
 * which the 64 vpdpbusd share: on Emerald Rapids, whole Q4_0 model, paired against the
 * per-block loop for every block, k = 1 / 2 / 4 / 8 / 16, 2 threads (15 rounds) 0.96 / 0.98 /
 * 0.96 / 0.93 / 0.90, 1 thread (9) 0.96 / 1.00 / 0.94 / 0.92 / 0.89. Loads in assembly
 * (rl_dwords_asm): from C, gcc computed the 16 row pointers once and spilled them, and kept
 * the whole unit's registers live (k = 8 1.05). Not measured on AMD (the shuffles it saves
 * are instructions there too). */
ALWAYS_INLINE void q40_rl_unit(int T, const rl_rows *r, const rl_rows *pf, int b, int nbk, const q40_act *ab,
                               int64_t astep, __m512 *f) {
    const int bb = (int)sizeof(block_q4_0);
    __m512i P0[12], P1[11], P2[10], P3[9];
    rl_dwords_asm(r, 0, P0);
    rl_dwords_asm(r, 16, P0 + 4);
    q40_rl_pair(T, r, P0, 8, 32, pf, b, nbk, 0, ab, astep, f);                    /* dwords 0..11 */
    P1[0] = P0[9], P1[1] = P0[10], P1[2] = P0[11];
    rl_dwords_asm(r, 48, P1 + 3);
    q40_rl_pair(T, r, P1, 7, 64, pf, b + 2, nbk, 2 * bb, ab + 2 * astep, astep, f); /* 9..19 */
    P2[0] = P1[9], P2[1] = P1[10];
    rl_dwords_asm(r, 80, P2 + 2);
    q40_rl_pair(T, r, P2, 6, 96, pf, b + 4, nbk, 4 * bb, ab + 4 * astep, astep, f); /* 18..27 */
    P3[0] = P2[9];
    rl_dwords_asm(r, 112, P3 + 1);
    q40_rl_pair(T, r, P3, 5, 128, pf, b + 6, nbk, 6 * bb, ab + 6 * astep, astep, f); /* 27..35 */
}

/* nbk blocks of the group's rows (g: at the first of them) against T activation rows (act: the
 * first block's entry of the first row; a block's entries are [row], astep entries apart):
 * f_t += sum over blocks of cvt(s_t) * (D * d_a), starting at zero (first) or at what `out`
 * holds for these rows (masked to m). */
ALWAYS_INLINE void q40_rl_group(int T, const rl_rows *g, int nbk, const q40_act *act, int64_t astep,
                                float *out, int64_t ld, __mmask16 m, int first, const rl_rows *next) {
    __m512 f[RL_TG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) f[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, out + t * ld);
    rl_rows r = *g, pf = rl_prefetch_rows(g, next);
    const q40_act *ab = act;
    int b = 0;
    for (; b + Q40_UNIT <= nbk; b += Q40_UNIT) {
        q40_rl_unit(T, &r, &pf, b, nbk, ab, astep, f);
        rl_advance(&r, Q40_UNIT * sizeof(block_q4_0));
        rl_advance(&pf, Q40_UNIT * sizeof(block_q4_0));
        ab += Q40_UNIT * astep;
    }
    for (; b < nbk; b++) { /* the chunk's last blocks, fewer than a unit: one at a time */
        q40_rl_prefetch(&pf, b, nbk);
        __m512i Z[4];
        rl_dwords(&r, offsetof(block_q4_0, qs), Z);
        q40_rl_block(T, Z, q40_rl_scales(&r), ab, f);
        rl_advance(&r, sizeof(block_q4_0));
        rl_advance(&pf, sizeof(block_q4_0));
        ab += astep;
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(out + t * ld, m, f[t]);
}

/* The 16 rows' Q4_K super-block headers (fp16 d, dmin, 12 bytes of 6-bit scales and mins,
 * as k4_scales8 unpacks them) in lanes: dsc[g] = d * sc_g (over 16 for odd g), mp[p] = the
 * int16 pair (m_2p, m_2p+1), ndmin = -dmin. Bytes 0..3 of the scales hold sc_0..3 in their low
 * 6 bits, bytes 4..7 m_0..3; bytes 8..11 the low nibbles of sc_4..7 and (high nibbles) m_4..7,
 * whose top two bits are the top two bits of bytes 0..3 (sc) and 4..7 (m). */
ALWAYS_INLINE void q4k_rl_scales(const rl_rows *g, __m512 *dsc, __m512i *mp, __m512 *ndmin) {
    __m512i H[4];
    rl_dwords_asm(g, 0, H);
    const __m512i m6 = _mm512_set1_epi8(0x3f), m4 = _mm512_set1_epi8(0x0f), top = _mm512_set1_epi8(0x30);
    const __m512i sc[2] = {_mm512_and_si512(H[1], m6),
                           _mm512_or_si512(_mm512_and_si512(H[3], m4),
                                           _mm512_and_si512(_mm512_srli_epi32(H[1], 2), top))};
    const __m512i mn[2] = {_mm512_and_si512(H[2], m6),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(H[3], 4), m4),
                                           _mm512_and_si512(_mm512_srli_epi32(H[2], 2), top))};
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(H[0]));
    /* the odd sub-blocks' (high nibbles') scales over 16: see q4k_rl_group */
    const __m512 d16 = _mm512_mul_ps(d, _mm512_set1_ps(0.0625f));
    *ndmin = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(H[0], 16))));
    /* byte b of each dword, zero-extended (vpshufb works inside 128-bit lanes: dword q of a
     * lane starts at byte 4q) */
    const __m512i byte0 = _mm512_set4_epi32((int)0x8080800C, (int)0x80808008, (int)0x80808004, (int)0x80808000);
    const __m512i pair0 = _mm512_set4_epi32((int)0x800D800C, (int)0x80098008, (int)0x80058004, (int)0x80018000);
#pragma GCC unroll 8
    for (int g8 = 0; g8 < 8; g8++) {
        const __m512i b = _mm512_shuffle_epi8(sc[g8 / 4], _mm512_add_epi32(byte0, _mm512_set1_epi32(g8 % 4)));
        dsc[g8] = _mm512_mul_ps(_mm512_cvtepi32_ps(b), g8 % 2 ? d16 : d);
    }
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++)
        mp[p] = _mm512_shuffle_epi8(mn[p / 2], _mm512_add_epi32(pair0, _mm512_set1_epi32(0x00020002 * (p % 2))));
}

/* nsb super-blocks of the group's rows against T activation rows, as q40_rl_group. Per 32-byte
 * pair of sub-blocks, its 2 x 16 bytes of each row are transposed into Z[8] (Z[j] lane i =
 * quant dword j of row i's pair) and the nibbles masked out per step: low nibbles = sub-block
 * 2jp, high nibbles = 2jp + 1, at activation dwords 16 jp + j and 16 jp + 8 + j. The high
 * nibbles stay in place (q & 0xf0 = 16 q, one operation instead of a shift and a mask): their
 * sums are 16 S (|16 S| <= 16 * 32 * 15 * 127 < 2^24, so converted exactly) and their scales
 * d * sc / 16 (a power of two: exactly dsc / 16), so the FMA's exact product 16 S * dsc / 16
 * is S * dsc and every result is bit for bit what the shifted nibbles gave. */
ALWAYS_INLINE void q4k_rl_group(int T, const rl_rows *g, int nsb, const q4k_act *act, int64_t astep,
                                float *out, int64_t ld, __mmask16 m, int first, const rl_rows *next) {
    __m512 f[RL_TG];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) f[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, out + t * ld);
    rl_rows r = *g, pf = rl_prefetch_rows(g, next);
    /* With a full block of activation rows (T = RL_TG) and the next group's rows one
     * contiguous range (the chunk is whole rows, as at 2048 columns): its 36 lines per
     * super-block in address order, 9 per part, instead of one line of each row at a time.
     * Paired whole Q4_K_M model, 1 thread: k = 8 0.96 of the time (twice), k = 16 0.99-1.00;
     * for fewer activation rows it was slower (k = 1 and 2 up to 1.03), so they keep the rows'
     * order. */
    const int seq = T == RL_TG && next->ws == (int64_t)nsb * (int64_t)sizeof(block_q4_K);
    const q4k_act *ab = act;
    const __m512i lo4 = _mm512_set1_epi8(0x0f), hi4 = _mm512_set1_epi8((char)0xf0);
    for (int b = 0; b < nsb; b++) {
        __m512 dsc[8], ndmin, acc[RL_TG];
        __m512i mp[4];
        q4k_rl_scales(&r, dsc, mp, &ndmin);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512i mi = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) mi = dpwssd_bcast(mi, mp[p], ab[t].bsum + 2 * p);
            acc[t] = _mm512_mul_ps(_mm512_cvtepi32_ps(mi), ndmin);
        }
#pragma GCC unroll 4
        for (int jp = 0; jp < 4; jp++) {
            /* the next group's lines, a whole group ahead: bytes 0, 64, 128 of the block (one
             * line per row at each of three parts: issued together, they ran at half the rate
             * from memory) and the chunk's last byte */
            if (seq) {
                const char *line = next->p + (size_t)b * RL_ROWS * sizeof(block_q4_K) + (size_t)jp * 9 * 64;
#pragma GCC unroll 9
                for (int l = 0; l < 9; l++) pf_q(line + 64 * l);
            } else if (jp < 3) rl_prefetch16(&pf, 64 * jp);
            else if (b == nsb - 1) rl_prefetch16(&pf, sizeof(block_q4_K) - 1);
            __m512i Z[8];
            rl_dwords_asm(&r, offsetof(block_q4_K, qs) + 32 * jp, Z);
            rl_dwords_asm(&r, offsetof(block_q4_K, qs) + 32 * jp + 16, Z + 4);
#pragma GCC unroll 2
            for (int hi = 0; hi < 2; hi++) {
                __m512i s[RL_TG];
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) s[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    const __m512i w = _mm512_and_si512(Z[j], hi ? hi4 : lo4);
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) s[t] = dpbusd_bcast(s[t], w, ab[t].qs + 64 * jp + 32 * hi + 4 * j);
                }
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[t]), dsc[2 * jp + hi], acc[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) f[t] = _mm512_fmadd_ps(acc[t], _mm512_set1_ps(ab[t].d), f[t]);
        rl_advance(&r, sizeof(block_q4_K));
        rl_advance(&pf, sizeof(block_q4_K));
        ab += astep;
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(out + t * ld, m, f[t]);
}

ALWAYS_INLINE void rl_group(int rt, int T, const rl_rows *g, int nbk, const void *act, int64_t astep,
                            float *out, int64_t ld, __mmask16 m, int first, const rl_rows *next) {
    if (rt == RL_Q4_0) q40_rl_group(T, g, nbk, (const q40_act *)act, astep, out, ld, m, first, next);
    else q4k_rl_group(T, g, nbk, (const q4k_act *)act, astep, out, ld, m, first, next);
}

/* Blocks [b0, b0 + nbk) of rows [r0, r1) against k activation rows (act: the entries of block
 * b0, [block][row] with astep entries per block), accumulating into out (from zero when
 * `first`). A last group of fewer than 16 rows is copied with zero rows after it. */
ALWAYS_INLINE void rl_chunk(int rt, const char *w, size_t ws, int64_t r0, int64_t r1, int64_t b0, int nbk,
                            const char *act, int64_t astep, int32_t k, float *out, int64_t ld, int first) {
    const size_t bb = rl_block_bytes(rt);
    for (int64_t g = r0; g < r1; g += RL_ROWS) {
        const int nv = (int)(r1 - g < RL_ROWS ? r1 - g : RL_ROWS);
        const __mmask16 m = (__mmask16)(nv == RL_ROWS ? 0xffffu : (1u << nv) - 1);
        const size_t cb = (size_t)nbk * bb; /* bytes of the chunk in one row */
        _Alignas(64) char pad[nv < RL_ROWS ? RL_ROWS * RL_CHUNK_BYTES : 1];
        const char *base = w + (size_t)g * ws + (size_t)b0 * bb;
        int64_t stride = (int64_t)ws;
        if (nv < RL_ROWS) {
            memset(pad, 0, RL_ROWS * cb);
            for (int i = 0; i < nv; i++) memcpy(pad + (size_t)i * cb, base + (size_t)i * ws, cb);
            __asm__ volatile("" ::: "memory"); /* the copies before the assembly loads */
            base = pad, stride = (int64_t)cb;
        }
        const rl_rows rows = rl_rows_at(base, stride);
        /* rows to prefetch meanwhile: the next group's, past the last group the rows the
         * thread usually takes next (prefetches never fault, in range or not) */
        const rl_rows next = rl_rows_at(w + (size_t)(g + RL_ROWS) * ws + (size_t)b0 * bb, (int64_t)ws);
        if (g == r0) /* nothing before the first group prefetched it */
            for (int i = 0; i < nv; i++)
                for (size_t o = 0; o < cb; o += 64) pf_q(base + (size_t)i * (size_t)stride + o);
        for (int32_t t0 = 0; t0 < k; t0 += RL_TG) {
            const int T = k - t0 < RL_TG ? (int)(k - t0) : RL_TG;
            const char *a = act + (size_t)t0 * rl_act_bytes(rt);
            float *o = out + (int64_t)t0 * ld + g;
            switch (T) {
#define RL_CASE(TT) case TT: rl_group(rt, TT, &rows, nbk, a, astep, o, ld, m, first, &next); break;
                RL_CASE(1) RL_CASE(2) RL_CASE(3) RL_CASE(4) RL_CASE(5) RL_CASE(6) RL_CASE(7)
#undef RL_CASE
            default: rl_group(rt, RL_TG, &rows, nbk, a, astep, o, ld, m, first, &next); break;
            }
        }
    }
}

/* One function per type (as before the generic driver: inlining rl_chunk into the callers
 * changed gcc's register allocation of the Q4_0 loops, 3-9 % more time). */
static void rl_chunk_q4_0(const char *w, size_t ws, int64_t r0, int64_t r1, int64_t b0, int nbk,
                          const char *act, int64_t astep, int32_t k, float *out, int64_t ld, int first) {
    rl_chunk(RL_Q4_0, w, ws, r0, r1, b0, nbk, act, astep, k, out, ld, first);
}

static void rl_chunk_q4_K(const char *w, size_t ws, int64_t r0, int64_t r1, int64_t b0, int nbk,
                          const char *act, int64_t astep, int32_t k, float *out, int64_t ld, int first) {
    rl_chunk(RL_Q4_K, w, ws, r0, r1, b0, nbk, act, astep, k, out, ld, first);
}

ALWAYS_INLINE void rl_chunk_of(int rt, const char *w, size_t ws, int64_t r0, int64_t r1, int64_t b0, int nbk,
                               const char *act, int64_t astep, int32_t k, float *out, int64_t ld, int first) {
    (rt == RL_Q4_0 ? rl_chunk_q4_0 : rl_chunk_q4_K)(w, ws, r0, r1, b0, nbk, act, astep, k, out, ld, first);
}

/* The product over rows [r0, r1), activations in the vec_dot type, laid out here RL_KB rows
 * and one chunk at a time. */
ALWAYS_INLINE void mul_mat_rl(int rt, int64_t n, const void *restrict w, size_t w_stride, int64_t r0, int64_t r1,
                              const void *restrict act, size_t act_stride, int32_t k, float *restrict out,
                              int64_t ld) {
    if (r1 <= r0 || k <= 0) return;
    const int64_t nb = n / rl_block_values(rt);
    const int chunk = rl_chunk_blocks(rt);
    const size_t ab = rl_act_bytes(rt);
    const size_t in_bytes = (rt == RL_Q4_0 ? sizeof(block_q8_0) : sizeof(block_q8_K)); /* per block */
    _Alignas(64) char buf[RL_KB * (RL_CHUNK_BYTES / sizeof(block_q4_0)) * sizeof(q40_act)];
    _Static_assert(sizeof buf >= RL_KB * (RL_CHUNK_BYTES / sizeof(block_q4_K)) * sizeof(q4k_act), "buf");
    for (int32_t t0 = 0; t0 < k; t0 += RL_KB) {
        const int32_t kp = k - t0 < RL_KB ? k - t0 : RL_KB;
        for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
            const int nbk = (int)(nb - b0 < chunk ? nb - b0 : chunk);
            for (int32_t t = 0; t < kp; t++)
                rl_prep_row(rt, (const char *)act + (size_t)(t0 + t) * act_stride + (size_t)b0 * in_bytes, nbk, kp,
                            buf + (size_t)t * ab);
            rl_chunk_of(rt, w, w_stride, r0, r1, b0, nbk, buf, kp, kp, out + (int64_t)t0 * ld, ld, b0 == 0);
        }
    }
}

/* The same from activations laid out for the whole product by prep_rows_* ([block][row]). */
ALWAYS_INLINE void mul_mat_prepped_rl(int rt, int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                                      int64_t r1, const void *restrict prepped, int32_t k, float *restrict out,
                                      int64_t ld) {
    if (r1 <= r0 || k <= 0) return;
    const int64_t nb = n / rl_block_values(rt);
    const int chunk = rl_chunk_blocks(rt);
    for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
        const int nbk = (int)(nb - b0 < chunk ? nb - b0 : chunk);
        rl_chunk_of(rt, w, w_stride, r0, r1, b0, nbk, (const char *)prepped + (size_t)b0 * (size_t)k * rl_act_bytes(rt),
                 k, k, out, ld, b0 == 0);
    }
}

#define DEFINE_RL(name, rt)                                                                \
    static void mul_mat_##name(int64_t n, const void *restrict w, size_t w_stride, int64_t r0, int64_t r1, \
                               const void *restrict act, size_t act_stride, int32_t k, float *restrict out, \
                               int64_t ld) {                                                       \
        mul_mat_rl(rt, n, w, w_stride, r0, r1, act, act_stride, k, out, ld);                        \
    }                                                                                               \
    static void mul_mat_prepped_##name(int64_t n, const void *restrict w, size_t w_stride, int64_t r0, \
                                       int64_t r1, const void *restrict prepped, int32_t k,         \
                                       float *restrict out, int64_t ld) {                           \
        mul_mat_prepped_rl(rt, n, w, w_stride, r0, r1, prepped, k, out, ld);                        \
    }                                                                                               \
    static size_t prep_size_##name(int64_t n, int32_t k) {                                         \
        return (size_t)k * (size_t)(n / rl_block_values(rt)) * rl_act_bytes(rt);                   \
    }                                                                                               \
    static void prep_rows_##name(int64_t n, const void *restrict act, size_t act_stride, int32_t k, \
                                 int32_t t0, int32_t t1, void *restrict dst) {                      \
        for (int32_t t = t0; t < t1; t++)                                                           \
            rl_prep_row(rt, (const char *)act + (size_t)t * act_stride, n / rl_block_values(rt), k, \
                        (char *)dst + (size_t)t * rl_act_bytes(rt));                                \
    }                                                                                               \
    static void vec_dot_##name(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) { \
        mul_mat_##name(n, x, 0, 0, 1, y, 0, 1, s, 1);                                               \
    }

DEFINE_RL(q4_0, RL_Q4_0)
DEFINE_RL(q4_K, RL_Q4_K)

/* ---------------------------------------------------------------- F32 / F16 / BF16 */

/* FT_F32: activations read in place. FT_F16 / FT_BF16_CVT: activations converted to F32 once
 * per span into the scratch. FT_BF16_DP: vdpbf16ps on the bf16 activations in place. */
enum { FT_F32, FT_F16, FT_BF16_CVT, FT_BF16_DP };
#define SCF_VALUES 2048 /* converted columns per span (fixed: the order depends on it) */

/* Elements per tile (one register, one accumulator per pair). */
ALWAYS_INLINE int ftile(int ft) { return ft == FT_BF16_DP ? 32 : 16; }
ALWAYS_INLINE int converts(int ft) { return ft == FT_F16 || ft == FT_BF16_CVT; }

ALWAYS_INLINE __mmask32 mask32(int64_t left) {
    return left >= 32 ? 0xffffffffu : left <= 0 ? 0 : (__mmask32)((1u << left) - 1);
}
ALWAYS_INLINE __mmask16 mask16(int64_t left) {
    return left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

/* 16 weights as floats (masked). */
ALWAYS_INLINE __m512 load_w16(int ft, const void *p, __mmask16 m) {
    switch (ft) {
    case FT_F32: return _mm512_maskz_loadu_ps(m, p);
    case FT_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    default:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    }
}

#define RF 4 /* weight rows per register block */
#define TF 6 /* activation rows per register block: RF * TF accumulators + RF weights + 1 */

/* Tiles (ftile elements) [e0, e0 + len) of R (1..RF) weight rows, wstride bytes apart,
 * against T (1..TF) activation rows whose data at column e0 starts at arow + t * astride
 * (floats, or bf16 for FT_BF16_DP); len is a whole number of tiles except at the end of the
 * row. io: one accumulator per (weight row, activation row), the rows' runs iostride apart.
 * A register block of R x T sums (like a GEMM micro-kernel) loads R weight and T activation
 * vectors per R * T FMAs; at k = 1 the R rows' independent FMA chains hide the latency. Each
 * pair's sums run in the same order whatever R and T are (bit-identical batches). The
 * weights are prefetched pf_dist bytes ahead (PF_ROWS_F rows for up to TG activation rows). */
ALWAYS_INLINE void row_f(int ft, int R, int T, const char *row, size_t wstride, int64_t e0,
                         int64_t len, int64_t n, const char *arow, size_t astride, __m512 *io,
                         size_t iostride, int first, size_t pf_dist) {
    const size_t ws = ft == FT_F32 ? 4 : 2;                           /* weight element bytes */
    const size_t as = ft == FT_BF16_DP ? 2 : 4;                       /* activation element bytes */
    const int E = ftile(ft);
    __m512 acc[RF][TF];
#pragma GCC unroll 4
    for (int r = 0; r < RF; r++)
#pragma GCC unroll 6
        for (int t = 0; t < TF; t++)
            acc[r][t] = first || r >= R || t >= T ? _mm512_setzero_ps() : io[r * iostride + t];
    for (int64_t e = 0; e < len; e += E) {
        const int64_t left = n - (e0 + e);
        const char *ap = arow + (size_t)e * as;
        const char *wp[RF];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            wp[r] = row + r * wstride + (size_t)(e0 + e) * ws;
            if (((uintptr_t)wp[r] & 63) < (size_t)E * ws) _mm_prefetch(wp[r] + pf_dist, PF_HINT_F);
        }
        if (ft == FT_BF16_DP) {
            const __mmask32 m = mask32(left);
            __m512i w[RF];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) w[r] = _mm512_maskz_loadu_epi16(m, wp[r]);
#pragma GCC unroll 6
            for (int t = 0; t < T; t++) {
                __m512i a = _mm512_maskz_loadu_epi16(m, ap + t * astride);
                if (R >= 2) __asm__("" : "+v"(a)); /* one load for all rows */
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], (__m512bh)w[r], (__m512bh)a);
            }
        } else {
            const __mmask16 m = mask16(left);
            __m512 w[RF];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) w[r] = load_w16(ft, wp[r], m);
#pragma GCC unroll 6
            for (int t = 0; t < T; t++) {
                const float *at = (const float *)(ap + t * astride);
                /* converted activations are zero-padded; in-place F32 ones are masked */
                __m512 a = converts(ft) ? _mm512_loadu_ps(at) : _mm512_maskz_loadu_ps(m, at);
                if (R >= 2) __asm__("" : "+v"(a)); /* one load for all rows */
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(w[r], a, acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) io[r * iostride + t] = acc[r][t];
}

/* F32 copy of columns [e0, e0 + len) of a row of F16/BF16 activations, zero-padded to
 * `padded` elements. */
static void convert_act(int ft, const uint16_t *a, int64_t e0, int64_t len, int64_t padded, float *dst) {
    for (int64_t e = 0; e < padded; e += 16) {
        const __mmask16 m = mask16(len - e);
        __m256i h = _mm256_maskz_loadu_epi16(m, a + e0 + e);
        __m512 v = ft == FT_F16 ? _mm512_cvtph_ps(h)
                                : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        _mm512_storeu_ps(dst + e, v);
    }
}

#define ROW_F_T(R, T)                                                                          \
    row_f(ft, R, T, row, w_stride, s0 + c0, cl, n, abase + (size_t)c0 * as + (size_t)tg0 * astride, \
          astride, accb + (size_t)i * kp + tg0, (size_t)kp, c0 == 0, kp <= TG ? PF_ROWS_F * w_stride : PF_DIST)
#define ROW_F(R)                                                                               \
    do {                                                                                       \
        switch (T) {                                                                           \
        case 1: ROW_F_T(R, 1); break;                                                          \
        case 2: ROW_F_T(R, 2); break;                                                          \
        case 3: ROW_F_T(R, 3); break;                                                          \
        case 4: ROW_F_T(R, 4); break;                                                          \
        case 5: ROW_F_T(R, 5); break;                                                          \
        default: ROW_F_T(R, 6); break;                                                         \
        }                                                                                      \
    } while (0)

ALWAYS_INLINE void mul_mat_f(int ft, int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                             int64_t r1, const void *restrict act, size_t act_stride, int32_t k,
                             float *restrict out, int64_t ld) {
    if (r1 <= r0 || k <= 0) return;
    const int E = ftile(ft);
    const size_t as = ft == FT_BF16_DP ? 2 : 4;
    /* spans: SCF_VALUES columns when activations are converted, else the whole row */
    const int64_t span = converts(ft) ? SCF_VALUES : (n + E - 1) / E * E;
    for (int64_t t0 = 0; t0 < k; t0 += KB) {
        const int kp = (int)(k - t0 < KB ? k - t0 : KB);
        const char *a0 = (const char *)act + (size_t)t0 * act_stride;
        float *o0 = out + t0 * ld;
        for (int64_t s0 = 0; s0 < n; s0 += span) {
            const int64_t sl = n - s0 < span ? n - s0 : span;     /* columns in this span */
            const int64_t padded = (sl + E - 1) / E * E;
            float scratch[converts(ft) ? (size_t)kp * padded : 1];
            const char *abase;
            size_t astride;
            if (converts(ft)) {
                for (int t = 0; t < kp; t++)
                    convert_act(ft, (const uint16_t *)(a0 + (size_t)t * act_stride), s0, sl, padded,
                                scratch + (size_t)t * padded);
                abase = (const char *)scratch;
                astride = (size_t)padded * 4;
            } else {
                abase = a0 + (size_t)s0 * as;
                astride = act_stride;
            }
            /* columns per sub-chunk: the sub-chunk's activations of all kp rows stay in L1 */
            int64_t C = L1_ACT / (kp * (int64_t)as) / E * E;
            if (C < E) C = E;
            __m512 accb[RB * KB];
            for (int64_t rb = r0; rb < r1; rb += RB) {
                const int nr = (int)(r1 - rb < RB ? r1 - rb : RB);
                for (int64_t c0 = 0; c0 < sl; c0 += C) {
                    const int64_t cl = sl - c0 < C ? sl - c0 : C;
                    for (int i = 0; i < nr;) {
                        const char *row = (const char *)w + (size_t)(rb + i) * w_stride;
                        const int R = nr - i >= RF ? RF : 1;
                        /* activation rows in near-equal groups of at most TF */
                        for (int tg0 = 0, groups = (kp + TF - 1) / TF; tg0 < kp; groups--) {
                            const int T = (kp - tg0 + groups - 1) / groups;
                            if (R == RF) ROW_F(RF);
                            else ROW_F(1);
                            tg0 += T;
                        }
                        i += R;
                    }
                }
                reduce_store(accb, nr, kp, o0, ld, rb, s0 > 0);
            }
        }
    }
}

#define DEFINE_F(name, ft)                                                                     \
    static void mul_mat_##name(int64_t n, const void *restrict w, size_t w_stride, int64_t r0, \
                               int64_t r1, const void *restrict act, size_t act_stride,        \
                               int32_t k, float *restrict out, int64_t ld) {                   \
        mul_mat_f(ft, n, w, w_stride, r0, r1, act, act_stride, k, out, ld);                    \
    }                                                                                          \
    static void vec_dot_##name(int64_t n, float *restrict s, const void *restrict x,          \
                               const void *restrict y) {                                       \
        mul_mat_##name(n, x, 0, 0, 1, y, 0, 1, s, 1);                                          \
    }

DEFINE_F(f32, FT_F32)
DEFINE_F(f16, FT_F16)
DEFINE_F(bf16_cvt, FT_BF16_CVT)
DEFINE_F(bf16_dp, FT_BF16_DP)

/* ---------------------------------------------------------------- activation quantizers */

/* Bit-identical to ref.c act_q8_0: d = fp16(amax/127), q = round-to-even(x * 127/amax). */
static void act_q8_0(const float *restrict x, void *restrict dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        y[i].d = celer_fp32_to_fp16(amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        __m512 s = _mm512_set1_ps(id);
        /* cvtps rounds to nearest even (default MXCSR); cvtsepi32 saturates to [-128, 127] */
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, s))));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16),
                         _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, s))));
    }
}

/* Lane j of the result = the sum of the 16 lanes of a[j], by one tree for all 16 (45
 * operations, against ~9 per vector for a horizontal sum of each). */
ALWAYS_INLINE __m512i sums16_epi32(const __m512i *a) {
    __m512i b[8], c[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* per 128-bit lane: halves of a[2i], a[2i + 1] */
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* per 128-bit lane L, dword m: lane L's sum of a[4i + m] */
        c[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * i], b[2 * i + 1]),
                                _mm512_unpackhi_epi64(b[2 * i], b[2 * i + 1]));
    const __m512i e = _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i f = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(e, f, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(e, f, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Bit-identical to quantize_row_q8_K_ref (quants_ref.c). */
static void act_q8_K(const float *restrict x, void *restrict dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        /* four running maxima: one chain of 16 dependent maxima was most of this function's
         * time (the maximum is exact in any order) */
        __m512 am[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) am[u] = _mm512_abs_ps(_mm512_loadu_ps(x + 16 * u));
#pragma GCC unroll 16
        for (int j = 64; j < QK_K; j += 16) am[j / 16 % 4] = _mm512_max_ps(am[j / 16 % 4], _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(am[0], am[1]), _mm512_max_ps(am[2], am[3])));
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the first element of largest magnitude gives the sign */
        float max = 0;
        const __m512 amv = _mm512_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 16) {
            __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), amv, _CMP_EQ_OQ);
            if (m) {
                max = x[j + __builtin_ctz(m)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 s = _mm512_set1_ps(iscale);
        __m512i q[QK_K / 16];
#pragma GCC unroll 16
        for (int j = 0; j < QK_K / 16; j++) {
            q[j] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), s));
            q[j] = _mm512_min_epi32(_mm512_max_epi32(q[j], _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * j), _mm512_cvtepi32_epi8(q[j]));
        }
        _mm256_storeu_si256((__m256i *)y[i].bsums, _mm512_cvtepi32_epi16(sums16_epi32(q)));
        y[i].d = 1 / iscale;
    }
}

/* Round to nearest even like celer_fp32_to_fp16; NaNs become sign|0x7e00 as there. */
static void act_f16(const float *restrict x, void *restrict dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t e = 0; e < n; e += 16) {
        __mmask16 m = n - e >= 16 ? 0xffff : (__mmask16)((1u << (n - e)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + e);
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if (nan) {
            __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16),
                                            _mm512_set1_epi32(0x8000));
            __m256i q = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, _mm512_set1_epi32(0x7e00)));
            h = _mm256_mask_mov_epi16(h, nan, q);
        }
        _mm256_mask_storeu_epi16(y + e, m, h);
    }
}

/* Same integer rounding as celer_fp32_to_bf16 (vcvtneps2bf16 would flush denormals). */
static void act_bf16(const float *restrict x, void *restrict dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t e = 0; e < n; e += 16) {
        __mmask16 m = n - e >= 16 ? 0xffff : (__mmask16)((1u << (n - e)) - 1);
        __m512i b = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + e));
        __m512i hi = _mm512_srli_epi32(b, 16);
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                 _mm512_and_si512(hi, _mm512_set1_epi32(1)))),
            16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(64)));
        _mm256_mask_storeu_epi16(y + e, m, _mm512_cvtepi32_epi16(r));
    }
}

static void act_f32(const float *restrict x, void *restrict dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

/* ---------------------------------------------------------------- elementwise */

static inline __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 e = ct_exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

/* The tail goes through the same vector code (masked), so no element depends on n. */
static void swiglu(float *restrict gate, const float *restrict up, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(gate + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(gate + i, m, swiglu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/* ---------------------------------------------------------------- tables */

/* The quantized weight types' entries of a table field: [CELER_TYPE_Q8_0] = prefix_q8_0, ... */
#define QUANT_ENTRIES(prefix)                                                                  \
    [CELER_TYPE_Q8_0] = prefix##_q8_0, [CELER_TYPE_Q4_0] = prefix##_q4_0,                      \
    [CELER_TYPE_Q4_K] = prefix##_q4_K, [CELER_TYPE_Q5_K] = prefix##_q5_K,                      \
    [CELER_TYPE_Q6_K] = prefix##_q6_K

#define AVX512_TABLE(bf16)                                                                     \
    {                                                                                          \
        .name = "avx512-vnni",                                                                 \
        .vec_dot = {[CELER_TYPE_F32] = vec_dot_f32, [CELER_TYPE_F16] = vec_dot_f16,            \
                    [CELER_TYPE_BF16] = vec_dot_##bf16, QUANT_ENTRIES(vec_dot)},               \
        .mul_mat = {[CELER_TYPE_F32] = mul_mat_f32, [CELER_TYPE_F16] = mul_mat_f16,            \
                    [CELER_TYPE_BF16] = mul_mat_##bf16, QUANT_ENTRIES(mul_mat)},               \
        .prep_size = {QUANT_ENTRIES(prep_size)},                                               \
        .prep = {QUANT_ENTRIES(prep_rows)},                                                     \
        .mul_mat_prepped = {QUANT_ENTRIES(mul_mat_prepped)},                                   \
        .quantize_act = {                                                                      \
            [CELER_TYPE_F32] = act_f32,                                                        \
            [CELER_TYPE_F16] = act_f16,                                                        \
            [CELER_TYPE_BF16] = act_bf16,                                                      \
            [CELER_TYPE_Q8_0] = act_q8_0,                                                      \
            [CELER_TYPE_Q8_K] = act_q8_K,                                                      \
        },                                                                                     \
        .attention = ct_attention_avx512,                                                      \
        .swiglu = swiglu,                                                                      \
    }

static const ct_kernels avx512_vnni_bf16 = AVX512_TABLE(bf16_dp);
static const ct_kernels avx512_vnni_nobf16 = AVX512_TABLE(bf16_cvt);

/* For dispatch.c: the set to use on a CPU with AVX-512 F/BW/VL/DQ + VNNI; BF16 products use
 * vdpbf16ps when the CPU also has AVX512_BF16. */
const ct_kernels *ct_kernels_avx512_vnni(int has_bf16);
const ct_kernels *ct_kernels_avx512_vnni(int has_bf16) {
    return has_bf16 ? &avx512_vnni_bf16 : &avx512_vnni_nobf16;
}
