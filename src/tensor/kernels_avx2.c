/*
 * AVX2 + FMA + F16C kernel set, "avx2". Built with ISA_AVX2 flags; only reached through
 * dispatch.c after cpuid says the CPU has these features.
 *
 * "Lane = group" scheme (as described in kernels_avx512.c) with 8 int32 lanes: lane i of a
 * weight register holds bytes of group i, the run of values sharing one scale; a tile is 8
 * groups (8 Q4_0/Q8_0 blocks, one Q4_K/Q5_K super-block, half a Q6_K super-block), decoded
 * once into registers and applied to up to 8 activation rows (activation tiles prepared for
 * CHUNK_TILES tiles at a time, outside the row loop, or once for a whole product by prep_rows
 * when the engine shares one preparation among the product's work items). Each (row,
 * activation row) sum is accumulated in the same order and reduced by the same hsum8 tree
 * whatever k is, so batched results equal single-row ones bit for bit. Without VNNI the 4-byte
 * dot step is maddubs (u8 x s8 -> saturating i16 pairs) followed by madd with ones. Pair sums
 * stay below 2^15 for 4-, 5- and 6-bit unsigned weights; Q8_0 weights would overflow when
 * biased to unsigned, so they use the sign trick (|w| times a with w's sign) and need no
 * offset.
 */
#include <immintrin.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/tensor.h"
#include "tensor/exp_avx2.h"
#include "tensor/scales_x86.h"

#define LANES 8
#define TMAX 8
#define CHUNK_TILES 12
/* Software prefetch of the weights into L2, at least PF_BYTES ahead in the order the rows are
 * read (the same columns, whole rows later): the hardware prefetchers stop at 4 KB pages and
 * do not follow the chunked walk of long rows. On the development machine (Zen 4 VM), Q4_0
 * decoding with this set at 2 threads ran 28-34 tok/s without it and 41-45 with it
 * (celer bench --kernels avx2, builds alternating). */
#define PF_BYTES 32768

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct {
    __m256i q[8];  /* q[j] lane i = activation bytes 4j..4j+3 of group i */
    __m256i corr;  /* int32: -off * sum(a) of group i */
    __m256 da;     /* activation scale of group i (0 in padding lanes) */
    __m256 dsum;   /* da * sum(a), for Q4_K/Q5_K mins */
} atile;

enum { TY_Q4_0, TY_Q8_0, TY_Q4_K, TY_Q5_K, TY_Q6_K };

ALWAYS_INLINE int group_size(int ty) { return ty == TY_Q6_K ? 16 : 32; }
ALWAYS_INLINE int steps(int ty) { return group_size(ty) / 4; }
ALWAYS_INLINE int has_min(int ty) { return ty == TY_Q4_K || ty == TY_Q5_K; }

static const int32_t lane_ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};

/* 8 fp16 values held in the low halves of 8 dwords, as floats. */
static inline __m256 fp16x8_to_ps(__m256i v) {
    v = _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* acc + sum over 4-byte groups of u8(w) * s8(a) (no saturation for |w| < 64 or sign trick) */
ALWAYS_INLINE __m256i dot4(__m256i acc, __m256i w, __m256i a) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)));
}

/* ---------------------------------------------------------------- activation prep */

static void prep_q8_0(const block_q8_0 *a, int nvalid, int off_shift, atile *t) {
    const __m256i lane = _mm256_loadu_si256((const __m256i *)lane_ids);
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(nvalid), lane);
    const __m256i base = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)sizeof(block_q8_0)));
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        __m256i idx = _mm256_add_epi32(base, _mm256_set1_epi32(2 + 4 * j));
        __m256i q = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int *)a, idx, m, 1);
        t->q[j] = q;
        sum = dot4(sum, _mm256_set1_epi8(1), q);
    }
    __m256i d16 = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int *)a, base, m, 1);
    t->da = fp16x8_to_ps(d16);
    t->corr = off_shift ? _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_sll_epi32(sum, _mm_cvtsi32_si128(off_shift)))
                        : _mm256_setzero_si256();
    t->dsum = _mm256_setzero_ps();
}

/* Q8_K for Q4_K/Q5_K: one super-block = 8 groups of 32. */
static void prep_q8_K_32(const block_q8_K *a, atile *t) {
    const __m256i base = _mm256_add_epi32(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)lane_ids), 5),
                                          _mm256_set1_epi32((int)offsetof(block_q8_K, qs)));
    for (int j = 0; j < 8; j++)
        t->q[j] = _mm256_i32gather_epi32((const int *)a, _mm256_add_epi32(base, _mm256_set1_epi32(4 * j)), 1);
    __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
    __m256i sum = _mm256_madd_epi16(bs, _mm256_set1_epi16(1)); /* bsums[2g] + bsums[2g+1] */
    t->da = _mm256_set1_ps(a->d);
    t->dsum = _mm256_mul_ps(t->da, _mm256_cvtepi32_ps(sum));
    t->corr = _mm256_setzero_si256();
}

/* Q8_K for Q6_K: half h of a super-block = 8 groups of 16, offset 32. */
static void prep_q8_K_16(const block_q8_K *a, int h, atile *t) {
    const __m256i base = _mm256_add_epi32(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)lane_ids), 4),
                                          _mm256_set1_epi32((int)offsetof(block_q8_K, qs) + 128 * h));
    for (int j = 0; j < 4; j++)
        t->q[j] = _mm256_i32gather_epi32((const int *)a, _mm256_add_epi32(base, _mm256_set1_epi32(4 * j)), 1);
    for (int j = 4; j < 8; j++) t->q[j] = _mm256_setzero_si256();
    __m256i sum = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(a->bsums + 8 * h)));
    t->corr = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum, 5));
    t->da = _mm256_set1_ps(a->d);
    t->dsum = _mm256_setzero_ps();
}

ALWAYS_INLINE void prep_tiles(int ty, const void *act, int64_t ngroups, int64_t tile0, int ntile,
                              atile *out) {
    for (int c = 0; c < ntile; c++) {
        int64_t tile = tile0 + c, g0 = tile * LANES;
        int nvalid = (int)(ngroups - g0 < LANES ? ngroups - g0 : LANES);
        switch (ty) {
        case TY_Q4_0: prep_q8_0((const block_q8_0 *)act + g0, nvalid, 3, &out[c]); break;
        case TY_Q8_0: prep_q8_0((const block_q8_0 *)act + g0, nvalid, 0, &out[c]); break;
        case TY_Q6_K: prep_q8_K_16((const block_q8_K *)act + tile / 2, (int)(tile % 2), &out[c]); break;
        default: prep_q8_K_32((const block_q8_K *)act + tile, &out[c]); break;
        }
    }
}

/* ---------------------------------------------------------------- weight tile decoders */

/* The weight decoders use plain loads and in-register shuffles only: a gather costs ~20
 * cycles on AMD Zen and is slowed by microcode on many Intel cores (Gather Data Sampling).
 * On a Zen 4 core (bench_kernels --sets avx2 --rows 256, k = 1, from memory), this and the
 * prefetch together raised Q4_K from 4.9-5.2 to 11.2-13.9 GB/s of weights, Q6_K from
 * 2.7-4.1 to 12.4-12.6, Q8_0 from 9.1-9.6 to 15.4-18.8. */

/* Transpose of 4 rows of 8 dwords: o[j] lanes 0..3 = dword j of r[0..3], lanes 4..7 = dword
 * j + 4 (unpacks stay within 128-bit halves). */
ALWAYS_INLINE void transpose4x8(const __m256i *r, __m256i *o) {
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    o[0] = _mm256_unpacklo_epi64(t0, t2), o[1] = _mm256_unpackhi_epi64(t0, t2);
    o[2] = _mm256_unpacklo_epi64(t1, t3), o[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* 8 Q4_0 blocks: 128-bit inserts and a 4x4 dword transpose per 128-bit lane. */
ALWAYS_INLINE void dec_q4_0(const block_q4_0 *x, __m256i *W, __m256 *D) {
    __m256i z[4], o[4];
#pragma GCC unroll 8
    for (int a = 0; a < 4; a++)
        z[a] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x[a].qs)),
                                       _mm_loadu_si128((const __m128i *)x[a + 4].qs), 1);
    transpose4x8(z, o);
    const __m256i lo = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 8
    for (int j = 0; j < 4; j++) {
        W[j] = _mm256_and_si256(o[j], lo);
        W[j + 4] = _mm256_and_si256(_mm256_srli_epi32(o[j], 4), lo);
    }
    *D = _mm256_cvtph_ps(fp16_scales8(x, sizeof *x));
}

/* 8 Q8_0 blocks, kept signed (the dot step applies the sign trick): an 8x8 dword transpose of
 * the blocks' quants (two 4x8 transposes, then 128-bit halves exchanged). */
ALWAYS_INLINE void dec_q8_0(const block_q8_0 *x, __m256i *W, __m256 *D) {
    __m256i z[8], lo4[4], hi4[4];
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) z[b] = _mm256_loadu_si256((const __m256i *)x[b].qs);
    transpose4x8(z, lo4);     /* blocks 0..3: lanes 0..3 dword j, 4..7 dword j + 4 */
    transpose4x8(z + 4, hi4); /* blocks 4..7 */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        W[j] = _mm256_permute2x128_si256(lo4[j], hi4[j], 0x20);
        W[j + 4] = _mm256_permute2x128_si256(lo4[j], hi4[j], 0x31);
    }
    *D = _mm256_cvtph_ps(fp16_scales8(x, sizeof *x));
}

/* Nibbles of Q4_K/Q5_K for all 8 steps: group g, step j = nibble g%2 of dword j of the
 * 32-byte chunk g/2. T[j] (from a 4x8 transpose of the chunks) holds dword j of chunks 0..3
 * in lanes 0..3 (j < 4) or 4..7 (j >= 4, as dword j - 4 of T); one vpermd duplicates each
 * chunk's dword for its two groups. */
ALWAYS_INLINE void k4_nibbles(const uint8_t *qs, __m256i *W) {
    __m256i c[4], t[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) c[i] = _mm256_loadu_si256((const __m256i *)(qs + 32 * i));
    transpose4x8(c, t);
    const __m256i shift = _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4), lo = _mm256_set1_epi8(0x0f);
    const __m256i dup_lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), dup_hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        const __m256i dup = _mm256_permutevar8x32_epi32(t[j % 4], j < 4 ? dup_lo : dup_hi);
        W[j] = _mm256_and_si256(_mm256_srlv_epi32(dup, shift), lo);
    }
}

ALWAYS_INLINE void dec_q4_K(const block_q4_K *x, __m256i *W, __m256 *D, __m256 *M) {
    k4_nibbles(x->qs, W);
    k4_scales8((const uint8_t *)x, D, M);
}

ALWAYS_INLINE void dec_q5_K(const block_q5_K *x, __m256i *W, __m256 *D, __m256 *M) {
    const __m256i g = _mm256_loadu_si256((const __m256i *)lane_ids);
    k4_nibbles(x->qs, W);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        int32_t hb;
        memcpy(&hb, x->qh + 4 * j, 4);
        __m256i h = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(hb), g), _mm256_set1_epi8(1));
        W[j] = _mm256_or_si256(W[j], _mm256_slli_epi32(h, 4));
    }
    k4_scales8((const uint8_t *)x, D, M);
}

/* Half h of a Q6_K super-block (see kernels_avx512.c dec_q6_K for the group layout): group
 * i reads ql bytes 16*(i%4) + 4j.. of the half's 64 (two registers, lanes 0..3 and 4..7 from
 * the same offsets, nibble i/4) and qh bytes 16*(i%2) + 4j.. of its 32 (bits 2*(i/2)). */
ALWAYS_INLINE void dec_q6_K(const block_q6_K *x, int h, __m256i *W, __m256 *D) {
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
    const __m256i ql_sh = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i qh_sh = _mm256_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6);
#pragma GCC unroll 8
    for (int j = 0; j < 4; j++) {
        /* lane i%4 < 2: dword 4*(i%4) + j of l0, else of l1 (its dword 4*(i%4 - 2) + j) */
        const __m256i li = _mm256_setr_epi32(j, 4 + j, j, 4 + j, j, 4 + j, j, 4 + j);
        __m256i l = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(l0, li), _mm256_permutevar8x32_epi32(l1, li), 0xCC);
        __m256i q = _mm256_permutevar8x32_epi32(qh, li);
        l = _mm256_and_si256(_mm256_srlv_epi32(l, ql_sh), _mm256_set1_epi8(0x0f));
        q = _mm256_and_si256(_mm256_srlv_epi32(q, qh_sh), _mm256_set1_epi8(0x03));
        W[j] = _mm256_or_si256(l, _mm256_slli_epi32(q, 4));
    }
    int64_t sc8;
    memcpy(&sc8, x->scales + 8 * h, 8);
    __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(sc8)));
    *D = _mm256_mul_ps(sc, _mm256_set1_ps(celer_fp16_to_fp32(x->d)));
}

ALWAYS_INLINE void dec_tile(int ty, const char *row, int64_t tile, int64_t ngroups, __m256i *W,
                            __m256 *D, __m256 *M) {
    if (ty == TY_Q6_K) {
        dec_q6_K((const block_q6_K *)row + tile / 2, (int)(tile % 2), W, D);
        return;
    }
    if (ty == TY_Q4_K) {
        dec_q4_K((const block_q4_K *)row + tile, W, D, M);
        return;
    }
    if (ty == TY_Q5_K) {
        dec_q5_K((const block_q5_K *)row + tile, W, D, M);
        return;
    }
    const size_t bsz = ty == TY_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const char *src = row + tile * LANES * (int64_t)bsz;
    _Alignas(32) char pad[8 * sizeof(block_q8_0)];
    int64_t left = ngroups - tile * LANES;
    if (left < LANES) { /* zero-padded copy: zero scales contribute nothing */
        memset(pad, 0, sizeof pad);
        memcpy(pad, src, (size_t)left * bsz);
        src = pad;
    }
    if (ty == TY_Q4_0) dec_q4_0((const block_q4_0 *)src, W, D);
    else dec_q8_0((const block_q8_0 *)src, W, D);
}

/* ---------------------------------------------------------------- mul_mat driver */

/* Rows from the one being read to the one whose columns are prefetched. */
ALWAYS_INLINE size_t pf_rows(size_t w_stride) { return w_stride ? (PF_BYTES + w_stride - 1) / w_stride : 0; }

/* Prefetch `bytes` from p into L2, one request per cache line. */
ALWAYS_INLINE void prefetch_l2(const char *p, size_t bytes) {
    const uintptr_t first = (uintptr_t)p & ~(uintptr_t)63, last = ((uintptr_t)p + bytes - 1) & ~(uintptr_t)63;
    for (uintptr_t a = first; a <= last; a += 64) _mm_prefetch((const char *)a, _MM_HINT_T1);
}

/* Byte range of weight tile `tile` within a row (a Q6_K tile is half a super-block: the whole
 * block is fetched with its first half). */
ALWAYS_INLINE void tile_bytes(int ty, int64_t tile, size_t *off, size_t *len) {
    switch (ty) {
    case TY_Q4_0: *off = (size_t)tile * LANES * sizeof(block_q4_0), *len = LANES * sizeof(block_q4_0); return;
    case TY_Q8_0: *off = (size_t)tile * LANES * sizeof(block_q8_0), *len = LANES * sizeof(block_q8_0); return;
    case TY_Q4_K: *off = (size_t)tile * sizeof(block_q4_K), *len = sizeof(block_q4_K); return;
    case TY_Q5_K: *off = (size_t)tile * sizeof(block_q5_K), *len = sizeof(block_q5_K); return;
    default: *off = (size_t)(tile / 2) * sizeof(block_q6_K), *len = tile % 2 ? 0 : sizeof(block_q6_K); return;
    }
}

ALWAYS_INLINE __m256 hsum8(const __m256 *a) {
    __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                         _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

/* Always the hsum8 tree, whatever T: a (row, activation row) sum must not depend on how many
 * activation rows are computed with it (batched and single-step decoding agree bit for bit). */
ALWAYS_INLINE void store_sums(const __m256 *acc, int T, float *out, int64_t ld, int64_t r, int first) {
    float s[8];
    __m256 a[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++) a[t] = t < T ? acc[t] : _mm256_setzero_ps();
    _mm256_storeu_ps(s, hsum8(a));
    for (int t = 0; t < T; t++) {
        float *o = &out[(int64_t)t * ld + r];
        *o = first ? s[t] : *o + s[t];
    }
}

/* sc: activation row t's tile tile0 + c at sc[t * tstride + c]. */
ALWAYS_INLINE void rows_q(int ty, int T, const char *w, size_t w_stride, int64_t r0, int64_t r1,
                          int64_t ngroups, int64_t tile0, int ntile, const atile *sc, int64_t tstride,
                          float *out, int64_t ld, int first) {
    const int S = steps(ty);
    const size_t pf = pf_rows(w_stride) * w_stride;
    for (int64_t r = r0; r < r1; r++) {
        const char *row = w + (size_t)r * w_stride;
        __m256 acc[TMAX];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
        for (int c = 0; c < ntile; c++) {
            size_t off, len;
            tile_bytes(ty, tile0 + c, &off, &len);
            if (len) prefetch_l2(row + pf + off, len);
            __m256i W[8];
            __m256 D, M = _mm256_setzero_ps();
            dec_tile(ty, row, tile0 + c, ngroups, W, &D, &M);
            if (ty == TY_Q8_0) { /* sign trick: |w| * (a with w's sign) */
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    const atile *a = &sc[t * tstride + c];
                    __m256i s = _mm256_setzero_si256();
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
                        s = dot4(s, _mm256_abs_epi8(W[j]), _mm256_sign_epi8(a->q[j], W[j]));
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(D, a->da), acc[t]);
                }
                continue;
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const atile *a = &sc[t * tstride + c];
                /* i16 pair sums of 4- and 5-bit weights can be added twice without overflow */
                __m256i s = a->corr;
#pragma GCC unroll 8
                for (int j = 0; j < S; j += 2) {
                    __m256i p = _mm256_maddubs_epi16(W[j], a->q[j]);
                    __m256i p2 = _mm256_maddubs_epi16(W[j + 1], a->q[j + 1]);
                    if (ty == TY_Q6_K) {
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(p2, _mm256_set1_epi16(1)));
                    } else {
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_add_epi16(p, p2), _mm256_set1_epi16(1)));
                    }
                }
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(D, a->da), acc[t]);
                if (has_min(ty)) acc[t] = _mm256_fmadd_ps(M, a->dsum, acc[t]);
            }
        }
        store_sums(acc, T, out, ld, r, first);
    }
}

#define ROWS_Q_T(ty, T)                                                                      \
    rows_q(ty, T, (const char *)w, w_stride, r0, r1, ngroups, tile0, nt, sc, tstride,          \
           out + t0 * ld, ld, tile0 == 0)

/* Tiles (LANES groups each, the last one partial) of a row of n values. */
ALWAYS_INLINE int64_t n_tiles(int ty, int64_t n) { return (n / group_size(ty) + LANES - 1) / LANES; }

/* The product from activations in the vec_dot type (act: prepared here, CHUNK_TILES tiles of
 * TMAX rows at a time) or from a whole product's preparation (prepped, [row][tile] as
 * prep_rows lays it out), in the same chunks and order either way. */
ALWAYS_INLINE void mul_mat_q(int ty, int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                             int64_t r1, const void *restrict act, size_t act_stride,
                             const atile *restrict prepped, int32_t k, float *restrict out, int64_t ld) {
    _Alignas(32) atile scratch[prepped ? 1 : TMAX * CHUNK_TILES];
    const int64_t ngroups = n / group_size(ty), ntiles = n_tiles(ty, n);
    const int64_t tstride = prepped ? ntiles : CHUNK_TILES;
    if (r1 <= r0 || k <= 0) return;
    for (int64_t t0 = 0; t0 < k; t0 += TMAX) {
        const int T = (int)(k - t0 < TMAX ? k - t0 : TMAX);
        for (int64_t tile0 = 0; tile0 < ntiles; tile0 += CHUNK_TILES) {
            const int nt = (int)(ntiles - tile0 < CHUNK_TILES ? ntiles - tile0 : CHUNK_TILES);
            const atile *sc = prepped ? prepped + t0 * ntiles + tile0 : scratch;
            if (!prepped)
                for (int t = 0; t < T; t++)
                    prep_tiles(ty, (const char *)act + (size_t)(t0 + t) * act_stride, ngroups, tile0, nt,
                               &scratch[t * CHUNK_TILES]);
            switch (T) {
            case 1: ROWS_Q_T(ty, 1); break;
            case 2: ROWS_Q_T(ty, 2); break;
            case 3: ROWS_Q_T(ty, 3); break;
            case 4: ROWS_Q_T(ty, 4); break;
            case 5: ROWS_Q_T(ty, 5); break;
            case 6: ROWS_Q_T(ty, 6); break;
            case 7: ROWS_Q_T(ty, 7); break;
            default: ROWS_Q_T(ty, 8); break;
            }
        }
    }
}

/* A whole product's activations, [row][tile] (the rows of a TMAX group are then ntiles
 * tiles apart, as mul_mat_q reads them): each tile prepared once per product instead of once
 * per work item (the preparation gathers, ~20 cycles each on AMD Zen). */
ALWAYS_INLINE size_t prep_bytes(int ty, int64_t n, int32_t k) {
    return (size_t)k * (size_t)n_tiles(ty, n) * sizeof(atile);
}

ALWAYS_INLINE void prep_rows(int ty, int64_t n, const void *act, size_t act_stride, int32_t t0, int32_t t1,
                             atile *dst) {
    const int64_t ngroups = n / group_size(ty), ntiles = n_tiles(ty, n);
    for (int32_t t = t0; t < t1; t++)
        prep_tiles(ty, (const char *)act + (size_t)t * act_stride, ngroups, 0, (int)ntiles, dst + t * ntiles);
}

#define DEFINE_Q(name, ty)                                                                              \
    static void mul_mat_##name(int64_t n, const void *restrict w, size_t w_stride, int64_t r0,          \
                               int64_t r1, const void *restrict act, size_t act_stride,                 \
                               int32_t k, float *restrict out, int64_t ld) {                            \
        mul_mat_q(ty, n, w, w_stride, r0, r1, act, act_stride, NULL, k, out, ld);                       \
    }                                                                                                   \
    static void mul_mat_prepped_##name(int64_t n, const void *restrict w, size_t w_stride, int64_t r0,  \
                                       int64_t r1, const void *restrict prepped, int32_t k,             \
                                       float *restrict out, int64_t ld) {                               \
        mul_mat_q(ty, n, w, w_stride, r0, r1, NULL, 0, prepped, k, out, ld);                            \
    }                                                                                                   \
    static size_t prep_size_##name(int64_t n, int32_t k) { return prep_bytes(ty, n, k); }               \
    static void prep_rows_##name(int64_t n, const void *restrict act, size_t act_stride, int32_t k,     \
                                 int32_t t0, int32_t t1, void *restrict dst) {                          \
        (void)k;                                                                                        \
        prep_rows(ty, n, act, act_stride, t0, t1, dst);                                                 \
    }                                                                                                   \
    static void vec_dot_##name(int64_t n, float *restrict s, const void *restrict x,                   \
                               const void *restrict y) {                                                \
        mul_mat_q(ty, n, x, 0, 0, 1, y, 0, NULL, 1, s, 1);                                              \
    }

DEFINE_Q(q4_0, TY_Q4_0)
DEFINE_Q(q8_0, TY_Q8_0)
DEFINE_Q(q4_K, TY_Q4_K)
DEFINE_Q(q5_K, TY_Q5_K)
DEFINE_Q(q6_K, TY_Q6_K)

/* ---------------------------------------------------------------- F32 / F16 / BF16 */

enum { FT_F32, FT_F16, FT_BF16 };

ALWAYS_INLINE __m256 load_f(int ft, const void *p) {
    switch (ft) {
    case FT_F32: return _mm256_loadu_ps((const float *)p);
    case FT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    default:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    }
}

ALWAYS_INLINE void rows_f(int ft, int T, int64_t n, const char *w, size_t w_stride, int64_t r0,
                          int64_t r1, const char *act, size_t act_stride, float *out, int64_t ld) {
    const size_t es = ft == FT_F32 ? 4 : 2;
    const int64_t nfull = n & ~(int64_t)7;
    const size_t pf = pf_rows(w_stride) * w_stride;
    for (int64_t r = r0; r < r1; r++) {
        const char *row = w + (size_t)r * w_stride;
        __m256 acc[TMAX];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t e = 0; e < nfull; e += 8) {
            if (((uintptr_t)(row + e * es) & 63) < 8 * es) _mm_prefetch(row + pf + e * es, _MM_HINT_T1);
            __m256 wv = load_f(ft, row + e * es);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++)
                acc[t] = _mm256_fmadd_ps(wv, load_f(ft, act + t * act_stride + e * es), acc[t]);
        }
        if (nfull < n) { /* tail through zero-padded copies */
            _Alignas(32) char wt[32] = {0}, at[32] = {0};
            size_t bytes = (size_t)(n - nfull) * es;
            memcpy(wt, row + nfull * es, bytes);
            __m256 wv = load_f(ft, wt);
            for (int t = 0; t < T; t++) {
                memcpy(at, act + t * act_stride + nfull * es, bytes);
                acc[t] = _mm256_fmadd_ps(wv, load_f(ft, at), acc[t]);
            }
        }
        store_sums(acc, T, out, ld, r, 1);
    }
}

#define ROWS_F_T(T)                                                                            \
    rows_f(ft, T, n, (const char *)w, w_stride, r0, r1,                                        \
           (const char *)act + (size_t)t0 * act_stride, act_stride, out + t0 * ld, ld)

ALWAYS_INLINE void mul_mat_f(int ft, int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                             int64_t r1, const void *restrict act, size_t act_stride, int32_t k,
                             float *restrict out, int64_t ld) {
    for (int64_t t0 = 0; t0 < k; t0 += TMAX) {
        switch (k - t0 < TMAX ? k - t0 : TMAX) {
        case 1: ROWS_F_T(1); break;
        case 2: ROWS_F_T(2); break;
        case 3: ROWS_F_T(3); break;
        case 4: ROWS_F_T(4); break;
        case 5: ROWS_F_T(5); break;
        case 6: ROWS_F_T(6); break;
        case 7: ROWS_F_T(7); break;
        default: ROWS_F_T(8); break;
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
        mul_mat_f(ft, n, x, 0, 0, 1, y, 0, 1, s, 1);                                           \
    }

DEFINE_F(f32, FT_F32)
DEFINE_F(f16, FT_F16)
DEFINE_F(bf16, FT_BF16)

/* ---------------------------------------------------------------- activation quantizers */

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

/* 32 int32 (four vectors) -> 32 int8 saturated, in order. */
static inline __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i p = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Bit-identical to ref.c act_q8_0. */
static void act_q8_0(const float *restrict x, void *restrict dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + 8 * j);
        float amax = hmax_ps(_mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])),
                                           _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3]))));
        y[i].d = celer_fp32_to_fp16(amax / 127.f);
        const __m256 s = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
        __m256i q[4];
        for (int j = 0; j < 4; j++) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], s));
        _mm256_storeu_si256((__m256i *)y[i].qs, pack_i8(q[0], q[1], q[2], q[3]));
    }
}

/* Bit-identical to quantize_row_q8_K_ref. */
static void act_q8_K(const float *restrict x, void *restrict dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 am = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) am = _mm256_max_ps(am, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax_ps(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0;
        for (int j = 0; j < QK_K; j++)
            if ((x[j] < 0 ? -x[j] : x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 s = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int u = 0; u < 4; u++) q[u] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * u), s));
            __m256i p = pack_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), p);
            /* bsums of the two groups of 16 */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, s32);
            y[i].bsums[j / 16] = (int16_t)(t[0] + t[1] + t[2] + t[3]);
            y[i].bsums[j / 16 + 1] = (int16_t)(t[4] + t[5] + t[6] + t[7]);
        }
        y[i].d = 1 / iscale;
    }
}

static void act_f16(const float *restrict x, void *restrict dst, int64_t n) {
    uint16_t *y = dst;
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) {
        __m256 v = _mm256_loadu_ps(x + e);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) { /* NaN: as the reference */
            for (int i = 0; i < 8; i++) y[e + i] = celer_fp32_to_fp16(x[e + i]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(y + e), h);
    }
    for (; e < n; e++) y[e] = celer_fp32_to_fp16(x[e]);
}

static void act_bf16(const float *restrict x, void *restrict dst, int64_t n) {
    uint16_t *y = dst;
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + e));
        __m256i hi = _mm256_srli_epi32(b, 16);
        __m256i r = _mm256_srli_epi32(
            _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                 _mm256_and_si256(hi, _mm256_set1_epi32(1)))),
            16);
        /* NaN (|x| > inf as signed ints, since the sign bit is cleared) -> quiet, keep sign */
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(64)), nan);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(y + e), p);
    }
    for (; e < n; e++) y[e] = celer_fp32_to_bf16(x[e]);
}

static void act_f32(const float *restrict x, void *restrict dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

/* ---------------------------------------------------------------- elementwise */

static inline __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 e = ct_exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

/* The tail goes through the same vector code (padded), so no element depends on n. */
static void swiglu(float *restrict gate, const float *restrict up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        float g[8] = {0}, u[8] = {0};
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(g, swiglu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(gate + i, g, (size_t)(n - i) * sizeof(float));
    }
}

/* ---------------------------------------------------------------- table */

static const ct_kernels avx2_kernels = {
    .name = "avx2",
    .vec_dot =
        {
            [CELER_TYPE_F32] = vec_dot_f32,
            [CELER_TYPE_F16] = vec_dot_f16,
            [CELER_TYPE_BF16] = vec_dot_bf16,
            [CELER_TYPE_Q8_0] = vec_dot_q8_0,
            [CELER_TYPE_Q4_0] = vec_dot_q4_0,
            [CELER_TYPE_Q4_K] = vec_dot_q4_K,
            [CELER_TYPE_Q5_K] = vec_dot_q5_K,
            [CELER_TYPE_Q6_K] = vec_dot_q6_K,
        },
    .mul_mat =
        {
            [CELER_TYPE_F32] = mul_mat_f32,
            [CELER_TYPE_F16] = mul_mat_f16,
            [CELER_TYPE_BF16] = mul_mat_bf16,
            [CELER_TYPE_Q8_0] = mul_mat_q8_0,
            [CELER_TYPE_Q4_0] = mul_mat_q4_0,
            [CELER_TYPE_Q4_K] = mul_mat_q4_K,
            [CELER_TYPE_Q5_K] = mul_mat_q5_K,
            [CELER_TYPE_Q6_K] = mul_mat_q6_K,
        },
    .quantize_act =
        {
            [CELER_TYPE_F32] = act_f32,
            [CELER_TYPE_F16] = act_f16,
            [CELER_TYPE_BF16] = act_bf16,
            [CELER_TYPE_Q8_0] = act_q8_0,
            [CELER_TYPE_Q8_K] = act_q8_K,
        },
#define QUANT(prefix)                                                                      \
    [CELER_TYPE_Q8_0] = prefix##_q8_0, [CELER_TYPE_Q4_0] = prefix##_q4_0,                      \
    [CELER_TYPE_Q4_K] = prefix##_q4_K, [CELER_TYPE_Q5_K] = prefix##_q5_K,                      \
    [CELER_TYPE_Q6_K] = prefix##_q6_K
    .prep_size = {QUANT(prep_size)},
    .prep = {QUANT(prep_rows)},
    .mul_mat_prepped = {QUANT(mul_mat_prepped)},
#undef QUANT
    .attention = ct_attention_avx2,
    .swiglu = swiglu,
};

/* For dispatch.c: the set for CPUs with AVX2 + FMA + F16C. */
const ct_kernels *ct_kernels_avx2(void);
const ct_kernels *ct_kernels_avx2(void) { return &avx2_kernels; }
