/*
 * Attention, AVX-512: the query vectors of a call are taken 16 at a time as the lanes of a zmm
 * (lane group g = queries 16g .. 16g + 15), and every K and V row is read (and converted from
 * F16) once for all the groups, and every product is a plain lane-wise FMA with the row
 * element broadcast:
 *   scores:  S[r] = scale * sum_d Qt[d] * K[r][d]   (Qt = queries transposed, [hd][lanes])
 *   softmax: per lane, max over r, exp, sum in row order (masked rows give exactly 0)
 *   values:  Ot[d] = sum_r S[r] * V[r][d], then out_i[d] = Ot[d]_i / sum_i
 * Each lane's float operations run in the same order whatever the other lanes hold, nk, the
 * lane index or the number of groups, which is the batch invariance tensor.h promises (the
 * AVX2 set, used here for calls of at most 8 queries, does the same operations per lane).
 * Rows are taken ROWS at a time: converted once, then for each group ROWS score accumulators
 * (or ROWS probability vectors) stay in registers while d runs.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "tensor/attention_rows.h"
#include "tensor/tensor.h"
#include "tensor/exp_avx512.h"

#define LANES 16
#define GROUPS (CT_ATTN_LANES / LANES)
#define STRIDE CT_ATTN_LANES /* floats per row of S, Qt and Ot: group g at 16 g */

/* The visibility bits of lane group g for row r. */
static inline __mmask16 group_mask(const ct_attn *a, int32_t r, int g) { return (__mmask16)(a->vis[r] >> (LANES * g)); }

/* S[r] = scale * q.K_r for every lane of the ng groups, -inf where the lane may not see row r;
 * mx[g] = the per-lane maxima. */
static void scores(const ct_attn *a, int ng, const float *qt, float *S, float *buf, __m512 *mx) {
    const __m512 scale = _mm512_set1_ps(a->scale), ninf = _mm512_set1_ps(-INFINITY);
    for (int g = 0; g < ng; g++) mx[g] = ninf;
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t ks;
        const float *k = block_rows(a, a->k, r0, buf, &ks);
        for (int g = 0; g < ng; g++) {
            __m512 acc[ROWS];
            for (int i = 0; i < ROWS; i++) acc[i] = _mm512_setzero_ps();
            for (int32_t d = 0; d < a->hd; d++) {
                const __m512 q = _mm512_load_ps(qt + (size_t)d * STRIDE + LANES * g);
#pragma GCC unroll 8
                for (int i = 0; i < ROWS; i++) acc[i] = _mm512_fmadd_ps(q, _mm512_set1_ps(k[i * ks + d]), acc[i]);
            }
            for (int i = 0; i < ROWS && r0 + i < a->nk; i++) {
                const __m512 s = _mm512_mask_mul_ps(ninf, group_mask(a, r0 + i, g), acc[i], scale);
                mx[g] = _mm512_max_ps(mx[g], s);
                _mm512_store_ps(S + (size_t)(r0 + i) * STRIDE + LANES * g, s);
            }
        }
    }
}

/* S[r] = exp(S[r] - max) (exactly 0 where not visible); returns the per-lane sums of group g. */
static __m512 softmax_numerators(const ct_attn *a, int g, float *S, __m512 mx) {
    __m512 sum = _mm512_setzero_ps();
    for (int32_t r = 0; r < a->nk; r++) {
        float *s = S + (size_t)r * STRIDE + LANES * g;
        const __mmask16 m = group_mask(a, r, g);
        const __m512 e = _mm512_maskz_mov_ps(m, ct_exp512(_mm512_maskz_sub_ps(m, _mm512_load_ps(s), mx)));
        _mm512_store_ps(s, e);
        sum = _mm512_add_ps(sum, e);
    }
    return sum;
}

/* Ot[d] = sum_r S[r] V[r][d] for the ng groups, rows in order. Four d at a time: each d's sum
 * over a block's ROWS rows is one chain of dependent FMAs, and four chains side by side keep
 * both FMA pipes busy (one at a time, the chain's latency bounded this loop). */
static void weighted_values(const ct_attn *a, int ng, const float *S, float *ot, float *buf) {
    for (int32_t d = 0; d < a->hd; d++)
        for (int g = 0; g < ng; g++) _mm512_store_ps(ot + (size_t)d * STRIDE + LANES * g, _mm512_setzero_ps());
    const int32_t hd4 = a->hd - a->hd % 4;
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t vs;
        const float *v = block_rows(a, a->v, r0, buf, &vs);
        for (int g = 0; g < ng; g++) {
            __m512 p[ROWS];
            for (int i = 0; i < ROWS; i++)
                p[i] = r0 + i < a->nk ? _mm512_load_ps(S + (size_t)(r0 + i) * STRIDE + LANES * g) : _mm512_setzero_ps();
            float *og = ot + LANES * g;
            for (int32_t d = 0; d < hd4; d += 4) {
                __m512 acc[4];
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) acc[u] = _mm512_load_ps(og + (size_t)(d + u) * STRIDE);
#pragma GCC unroll 8
                for (int i = 0; i < ROWS; i++)
#pragma GCC unroll 4
                    for (int u = 0; u < 4; u++) acc[u] = _mm512_fmadd_ps(p[i], _mm512_set1_ps(v[i * vs + d + u]), acc[u]);
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) _mm512_store_ps(og + (size_t)(d + u) * STRIDE, acc[u]);
            }
            for (int32_t d = hd4; d < a->hd; d++) {
                float *o = og + (size_t)d * STRIDE;
                __m512 acc = _mm512_load_ps(o);
#pragma GCC unroll 8
                for (int i = 0; i < ROWS; i++) acc = _mm512_fmadd_ps(p[i], _mm512_set1_ps(v[i * vs + d]), acc);
                _mm512_store_ps(o, acc);
            }
        }
    }
}

/* t[j] lane i = r[i] lane j: a 16 x 16 transpose in four rounds of 16 shuffles. */
static inline void transpose16(const __m512 *r, __m512 *t) {
    __m512 u[16], v[16];
    /* u[2m], u[2m + 1], 128-bit lane L: elements 4L, 4L + 1 (4L + 2, 4L + 3) of rows 2m, 2m + 1 */
    for (int m = 0; m < 8; m++) {
        u[2 * m] = _mm512_unpacklo_ps(r[2 * m], r[2 * m + 1]);
        u[2 * m + 1] = _mm512_unpackhi_ps(r[2 * m], r[2 * m + 1]);
    }
    /* v[4b + c], 128-bit lane L: element 4L + c of rows 4b .. 4b + 3 */
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 2; k++) {
            const __m512d x = _mm512_castps_pd(u[4 * b + k]), y = _mm512_castps_pd(u[4 * b + 2 + k]);
            v[4 * b + 2 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            v[4 * b + 2 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    /* u[8g + c] lanes: element c, 8 + c of rows 8g .. 8g + 3, then of 8g + 4 .. 8g + 7;
     * u[8g + 4 + c] the same for elements 4 + c and 12 + c */
    for (int g = 0; g < 2; g++)
        for (int c = 0; c < 4; c++) {
            u[8 * g + c] = _mm512_shuffle_f32x4(v[8 * g + c], v[8 * g + 4 + c], _MM_SHUFFLE(2, 0, 2, 0));
            u[8 * g + 4 + c] = _mm512_shuffle_f32x4(v[8 * g + c], v[8 * g + 4 + c], _MM_SHUFFLE(3, 1, 3, 1));
        }
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            t[4 * h + c] = _mm512_shuffle_f32x4(u[4 * h + c], u[8 + 4 * h + c], _MM_SHUFFLE(2, 0, 2, 0));
            t[8 + 4 * h + c] = _mm512_shuffle_f32x4(u[4 * h + c], u[8 + 4 * h + c], _MM_SHUFFLE(3, 1, 3, 1));
        }
}

/* Qt[d] lane i = q_i[d] for the queries of the ng groups (zero past nq): 16 x 16 blocks by
 * register transposes (element by element, these copies took a tenth of the kernel's time). */
static void queries_in(const ct_attn *a, int ng, float *qt) {
    const int32_t hd16 = a->hd - a->hd % LANES;
    for (int g = 0; g < ng; g++) {
        for (int32_t d0 = 0; d0 < hd16; d0 += LANES) {
            __m512 r[LANES], t[LANES];
            for (int i = 0; i < LANES; i++)
                r[i] = LANES * g + i < a->nq ? _mm512_loadu_ps(a->q[LANES * g + i] + d0) : _mm512_setzero_ps();
            transpose16(r, t);
            for (int j = 0; j < LANES; j++) _mm512_store_ps(qt + (size_t)(d0 + j) * STRIDE + LANES * g, t[j]);
        }
        for (int32_t d = hd16; d < a->hd; d++)
            for (int i = LANES * g; i < LANES * (g + 1); i++) qt[(size_t)d * STRIDE + i] = i < a->nq ? a->q[i][d] : 0.0f;
    }
}

/* out_i[d] = Ot[d] lane i * inv (the lane's softmax denominator's inverse), the same way out. */
static void outputs_out(const ct_attn *a, int ng, float *ot, const __m512 *inv) {
    const int32_t hd16 = a->hd - a->hd % LANES;
    for (int g = 0; g < ng; g++) {
        float *og = ot + LANES * g;
        const int nl = a->nq - LANES * g < LANES ? a->nq - LANES * g : LANES;
        for (int32_t d0 = 0; d0 < hd16; d0 += LANES) {
            __m512 r[LANES], t[LANES];
            for (int j = 0; j < LANES; j++) r[j] = _mm512_mul_ps(_mm512_load_ps(og + (size_t)(d0 + j) * STRIDE), inv[g]);
            transpose16(r, t);
            for (int i = 0; i < nl; i++) _mm512_storeu_ps(a->out[LANES * g + i] + d0, t[i]);
        }
        for (int32_t d = hd16; d < a->hd; d++) {
            const __m512 o = _mm512_mul_ps(_mm512_load_ps(og + (size_t)d * STRIDE), inv[g]);
            float lanes[LANES];
            _mm512_storeu_ps(lanes, o);
            for (int i = 0; i < nl; i++) a->out[LANES * g + i][d] = lanes[i];
        }
    }
}

void ct_attention_avx512(const ct_attn *a) {
    /* Up to 8 queries fit a ymm, and a ymm FMA costs half a zmm one on AMD Zen 4 (which splits
     * zmm operations in two): the AVX2 code then does the same work in half the time, with
     * the same arithmetic per lane, so the results are bit for bit the same. */
    if (a->nq <= 8) {
        ct_attention_avx2(a);
        return;
    }
    const int ng = (a->nq + LANES - 1) / LANES;
    float *base = (float *)(((uintptr_t)a->scratch + 63) & ~(uintptr_t)63);
    float *S = base, *qt = S + (size_t)a->nk * STRIDE, *ot = qt + (size_t)a->hd * STRIDE;
    float *buf = ot + (size_t)a->hd * STRIDE;
    queries_in(a, ng, qt);
    __m512 mx[GROUPS], inv[GROUPS];
    scores(a, ng, qt, S, buf, mx);
    for (int g = 0; g < ng; g++) inv[g] = _mm512_div_ps(_mm512_set1_ps(1.0f), softmax_numerators(a, g, S, mx[g]));
    weighted_values(a, ng, S, ot, buf);
    outputs_out(a, ng, ot, inv);
}
