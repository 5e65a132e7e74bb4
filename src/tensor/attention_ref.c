/*
 * Attention, reference: plain scalar C, one query at a time, the oracle for the SIMD sets.
 * Scratch layout shared by every implementation (ct_attn_scratch_floats): scores [nk][16],
 * transposed queries [hd][16], transposed outputs [hd][16], ATTN_BLOCK_ROWS converted rows of
 * hd floats, plus 16 floats so the SIMD sets can align the start to 64 bytes.
 */
#include <math.h>

#include "core/fp16.h"
#include "tensor/tensor.h"

size_t ct_attn_scratch_floats(int32_t hd, int32_t nk) {
    return (size_t)CT_ATTN_LANES * ((size_t)nk + 2 * (size_t)hd) + 8 * (size_t)hd + 16;
}

static float row_value(const ct_attn *a, const void *rows, int32_t r, int32_t d) {
    size_t i = (size_t)r * a->kv_stride + (size_t)d;
    return a->kv_f16 ? celer_fp16_to_fp32(((const uint16_t *)rows)[i]) : ((const float *)rows)[i];
}

void ct_attention_ref(const ct_attn *a) {
    float *p = a->scratch;
    for (int32_t i = 0; i < a->nq; i++) {
        const uint64_t bit = (uint64_t)1 << i;
        float mx = -INFINITY;
        for (int32_t r = 0; r < a->nk; r++) {
            if (!(a->vis[r] & bit)) continue;
            float s = 0.0f;
            for (int32_t d = 0; d < a->hd; d++) s += a->q[i][d] * row_value(a, a->k, r, d);
            p[r] = s * a->scale;
            if (p[r] > mx) mx = p[r];
        }
        float total = 0.0f;
        for (int32_t r = 0; r < a->nk; r++) {
            p[r] = a->vis[r] & bit ? expf(p[r] - mx) : 0.0f;
            total += p[r];
        }
        for (int32_t d = 0; d < a->hd; d++) {
            float o = 0.0f;
            for (int32_t r = 0; r < a->nk; r++)
                if (p[r] != 0.0f) o += p[r] * row_value(a, a->v, r, d);
            a->out[i][d] = o / total;
        }
    }
}
