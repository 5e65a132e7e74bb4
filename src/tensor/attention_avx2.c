/*
 * Attention, AVX2 + FMA + F16C: the same scheme as attention_avx512.c with 8 lanes: the
 * queries of a call are taken 8 at a time as the lanes of a ymm, every K and V row is read
 * (and converted from F16) once per 8 queries, and every product is a lane-wise FMA with the
 * row element broadcast. Each lane's float operations run in the same order whatever the
 * other lanes hold, nk or the lane index (the batch invariance tensor.h promises).
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "tensor/attention_rows.h"
#include "tensor/tensor.h"
#include "tensor/exp_avx2.h"

#define LANES 8

/* All-ones lanes where bit i of `bits` is set. */
static inline __m256 lane_mask(unsigned bits) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), bit), bit));
}

/* Lanes h*8 .. h*8+7 of the call: scores, softmax and weighted values as in the AVX-512 set. */
static void attend_lanes(const ct_attn *a, int h, float *S, float *qt, float *ot, float *buf) {
    const int nl = a->nq - 8 * h < LANES ? a->nq - 8 * h : LANES;
    for (int32_t d = 0; d < a->hd; d++)
        for (int i = 0; i < LANES; i++) qt[(size_t)d * LANES + i] = i < nl ? a->q[8 * h + i][d] : 0.0f;
    const __m256 scale = _mm256_set1_ps(a->scale), ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf;
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t ks;
        const float *k = block_rows(a, a->k, r0, buf, &ks);
        __m256 acc[ROWS];
        for (int i = 0; i < ROWS; i++) acc[i] = _mm256_setzero_ps();
        for (int32_t d = 0; d < a->hd; d++) {
            const __m256 q = _mm256_load_ps(qt + (size_t)d * LANES);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) acc[i] = _mm256_fmadd_ps(q, _mm256_set1_ps(k[i * ks + d]), acc[i]);
        }
        for (int i = 0; i < ROWS && r0 + i < a->nk; i++) {
            const __m256 s = _mm256_blendv_ps(ninf, _mm256_mul_ps(acc[i], scale), lane_mask((unsigned)(a->vis[r0 + i] >> (8 * h))));
            mx = _mm256_max_ps(mx, s);
            _mm256_store_ps(S + (size_t)(r0 + i) * LANES, s);
        }
    }
    __m256 sum = _mm256_setzero_ps();
    for (int32_t r = 0; r < a->nk; r++) {
        float *s = S + (size_t)r * LANES;
        const __m256 m = lane_mask((unsigned)(a->vis[r] >> (8 * h)));
        const __m256 e = _mm256_and_ps(m, ct_exp256(_mm256_and_ps(m, _mm256_sub_ps(_mm256_load_ps(s), mx))));
        _mm256_store_ps(s, e);
        sum = _mm256_add_ps(sum, e);
    }
    for (int32_t d = 0; d < a->hd; d++) _mm256_store_ps(ot + (size_t)d * LANES, _mm256_setzero_ps());
    for (int32_t r0 = 0; r0 < a->nk; r0 += ROWS) {
        size_t vs;
        const float *v = block_rows(a, a->v, r0, buf, &vs);
        __m256 p[ROWS];
        for (int i = 0; i < ROWS; i++)
            p[i] = r0 + i < a->nk ? _mm256_load_ps(S + (size_t)(r0 + i) * LANES) : _mm256_setzero_ps();
        for (int32_t d = 0; d < a->hd; d++) {
            __m256 o = _mm256_load_ps(ot + (size_t)d * LANES);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) o = _mm256_fmadd_ps(p[i], _mm256_set1_ps(v[i * vs + d]), o);
            _mm256_store_ps(ot + (size_t)d * LANES, o);
        }
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
    for (int32_t d = 0; d < a->hd; d++)
        _mm256_store_ps(ot + (size_t)d * LANES, _mm256_mul_ps(_mm256_load_ps(ot + (size_t)d * LANES), inv));
    for (int i = 0; i < nl; i++)
        for (int32_t d = 0; d < a->hd; d++) a->out[8 * h + i][d] = ot[(size_t)d * LANES + i];
}

void ct_attention_avx2(const ct_attn *a) {
    float *base = (float *)(((uintptr_t)a->scratch + 63) & ~(uintptr_t)63);
    float *S = base, *qt = S + (size_t)a->nk * LANES, *ot = qt + (size_t)a->hd * LANES;
    float *buf = ot + (size_t)a->hd * LANES;
    for (int h = 0; 8 * h < a->nq; h++) attend_lanes(a, h, S, qt, ot, buf);
}
