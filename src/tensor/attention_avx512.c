/*
 * Attention, AVX-512: the 16 query vectors of a call are the 16 lanes of a zmm, so every K and
 * V row is read (and converted from F16) once for all of them, and every product is a plain
 * lane-wise FMA with the row element broadcast:
 *   scores:  S[r] = scale * sum_d Qt[d] * K[r][d]   (Qt = queries transposed, [hd][16])
 *   softmax: per lane, max over r, exp, sum in row order (masked rows give exactly 0)
 *   values:  Ot[d] = sum_r S[r] * V[r][d], then out_i[d] = Ot[d]_i / sum_i
 * Each lane's float operations run in the same order whatever the other lanes hold, nk or
 * the lane index, which is the batch invariance tensor.h promises (the AVX2 set, used here for
 * calls of at most 8 queries, does the same operations per lane). Rows are taken ROWS at a
 * time: ROWS score accumulators (or ROWS probability vectors) stay in registers while d runs.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "tensor/attention_rows.h"
#include "tensor/tensor.h"
#include "tensor/exp_avx512.h"

#define LANES 16

/* S[r] = scale * q.K_r for every lane, -inf where the lane may not see row r; returns the
 * per-lane maximum. */
static __m512 scores(const ct_attn *a, const float *qt, float *S, float *buf) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    const __m512 scale = _mm512_set1_ps(a->scale), ninf = _mm512_set1_ps(-INFINITY);
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t ks;
        const float *k = block_rows(a, a->k, r0, buf, &ks);
        __m512 acc[ROWS];
        for (int i = 0; i < ROWS; i++) acc[i] = _mm512_setzero_ps();
        for (int32_t d = 0; d < a->hd; d++) {
            const __m512 q = _mm512_load_ps(qt + (size_t)d * LANES);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) acc[i] = _mm512_fmadd_ps(q, _mm512_set1_ps(k[i * ks + d]), acc[i]);
        }
        for (int i = 0; i < ROWS && r0 + i < a->nk; i++) {
            const __m512 s = _mm512_mask_mul_ps(ninf, a->vis[r0 + i], acc[i], scale);
            mx = _mm512_max_ps(mx, s);
            _mm512_store_ps(S + (size_t)(r0 + i) * LANES, s);
        }
    }
    return mx;
}

/* S[r] = exp(S[r] - max) (exactly 0 where not visible); returns the per-lane sums. */
static __m512 softmax_numerators(const ct_attn *a, float *S, __m512 mx) {
    __m512 sum = _mm512_setzero_ps();
    for (int32_t r = 0; r < a->nk; r++) {
        float *s = S + (size_t)r * LANES;
        const __mmask16 m = a->vis[r];
        const __m512 e = _mm512_maskz_mov_ps(m, ct_exp512(_mm512_maskz_sub_ps(m, _mm512_load_ps(s), mx)));
        _mm512_store_ps(s, e);
        sum = _mm512_add_ps(sum, e);
    }
    return sum;
}

/* Ot[d] = sum_r S[r] V[r][d], rows in order. */
static void weighted_values(const ct_attn *a, const float *S, float *ot, float *buf) {
    for (int32_t d = 0; d < a->hd; d++) _mm512_store_ps(ot + (size_t)d * LANES, _mm512_setzero_ps());
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t vs;
        const float *v = block_rows(a, a->v, r0, buf, &vs);
        __m512 p[ROWS];
        for (int i = 0; i < ROWS; i++)
            p[i] = r0 + i < a->nk ? _mm512_load_ps(S + (size_t)(r0 + i) * LANES) : _mm512_setzero_ps();
        for (int32_t d = 0; d < a->hd; d++) {
            __m512 o = _mm512_load_ps(ot + (size_t)d * LANES);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) o = _mm512_fmadd_ps(p[i], _mm512_set1_ps(v[i * vs + d]), o);
            _mm512_store_ps(ot + (size_t)d * LANES, o);
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
    float *base = (float *)(((uintptr_t)a->scratch + 63) & ~(uintptr_t)63);
    float *S = base, *qt = S + (size_t)a->nk * LANES, *ot = qt + (size_t)a->hd * LANES;
    float *buf = ot + (size_t)a->hd * LANES;
    for (int32_t d = 0; d < a->hd; d++)
        for (int i = 0; i < LANES; i++) qt[(size_t)d * LANES + i] = i < a->nq ? a->q[i][d] : 0.0f;
    const __m512 mx = scores(a, qt, S, buf);
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), softmax_numerators(a, S, mx));
    weighted_values(a, S, ot, buf);
    for (int32_t d = 0; d < a->hd; d++)
        _mm512_store_ps(ot + (size_t)d * LANES, _mm512_mul_ps(_mm512_load_ps(ot + (size_t)d * LANES), inv));
    for (int i = 0; i < a->nq; i++)
        for (int32_t d = 0; d < a->hd; d++) a->out[i][d] = ot[(size_t)d * LANES + i];
}
