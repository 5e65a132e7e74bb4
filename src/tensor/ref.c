/*
 * Reference (plain scalar) kernel set: the specification the SIMD tiers are tested against.
 *
 * vec_dot multiplies a weight row by an activation row already converted to the weight
 * type's vec_dot type (see tensor.h). Integer parts of the quantized dot products are exact;
 * the per-block scaling is done in float in ggml's generic order. F32/F16/BF16 accumulate in
 * double, like ggml's scalar ggml_vec_dot_f16 (ggml_float).
 *
 * The activation quantizers mirror what ggml's x86 CPU backend does before a matmul, because
 * that is what produced llama.cpp's reference logits:
 *   Q8_0: d = fp16(amax/127), q = nearest_even(x * (127/amax)) -- the AVX path of
 *         quantize_row_q8_0. (llama.cpp's scalar quantize_row_q8_0_ref, used for weights and
 *         by ct_quantize_row, computes x * (1/d) and rounds half away from zero; the two can
 *         differ by one step on rare ties/boundaries, so they are kept apart on purpose.)
 *   Q8_K: quantize_row_q8_K_ref exactly (ggml's x86 backend has no SIMD version of it).
 *   F16/BF16: round to nearest even.
 */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/tensor.h"

static inline int nearest_even(float v) {
    /* ggml's nearest_int: exact round-half-even for |v| <= 2^22, defined for any input. */
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Q4_K/Q5_K scale and min j (6 bits each) from the 12 packed bytes; see quants_ref.c. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* ================================================================ vec_dot */

static void vec_dot_f32(int64_t n, float *restrict s, const void *restrict vx,
                        const void *restrict vy) {
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    *s = (float)sum;
}

static void vec_dot_f16(int64_t n, float *restrict s, const void *restrict vx,
                        const void *restrict vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)celer_fp16_to_fp32(x[i]) * (double)celer_fp16_to_fp32(y[i]);
    *s = (float)sum;
}

static void vec_dot_bf16(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)celer_bf16_to_fp32(x[i]) * (double)celer_bf16_to_fp32(y[i]);
    *s = (float)sum;
}

static void vec_dot_q8_0(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const block_q8_0 *x = vx, *y = vy;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (celer_fp16_to_fp32(x[ib].d) * celer_fp16_to_fp32(y[ib].d));
    }
    *s = sumf;
}

static void vec_dot_q4_0(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK4_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            sumi += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK4_0 / 2];
        }
        sumf += sumi * (celer_fp16_to_fp32(x[ib].d) * celer_fp16_to_fp32(y[ib].d));
    }
    *s = sumf;
}

/* Q4_K and Q5_K: value = d*sc*q - dmin*m, so dot = d*Σ sc_j (q·a)_j - dmin*Σ m_j (Σa)_j, where
 * (Σa)_j comes from the activation's bsums (two groups of 16 per sub-block of 32). */
static void vec_dot_q4_K(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            scale_min_k4(j, x[i].scales, &sc, &m);
            /* sub-block j: nibbles of qs[32*(j/2) ..], low for even j, high for odd j */
            const uint8_t *qq = q + 32 * (j / 2);
            const int shift = (j & 1) * 4;
            int dot = 0;
            for (int l = 0; l < 32; l++) dot += ((qq[l] >> shift) & 0xF) * a[32 * j + l];
            sumi += sc * dot;
            summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float d = y[i].d * celer_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * celer_fp16_to_fp32(x[i].dmin);
        sumf += d * (float)sumi - dmin * (float)summ;
    }
    *s = sumf;
}

static void vec_dot_q5_K(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *a = y[i].qs;
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            scale_min_k4(j, x[i].scales, &sc, &m);
            const uint8_t *qq = x[i].qs + 32 * (j / 2);
            const int shift = (j & 1) * 4;
            int dot = 0;
            for (int l = 0; l < 32; l++) {
                const int hi = (x[i].qh[l] >> j) & 1; /* bit j of qh[l]: fifth bit */
                dot += (((qq[l] >> shift) & 0xF) | (hi << 4)) * a[32 * j + l];
            }
            sumi += sc * dot;
            summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        const float d = y[i].d * celer_fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * celer_fp16_to_fp32(x[i].dmin);
        sumf += d * (float)sumi - dmin * (float)summ;
    }
    *s = sumf;
}

static void vec_dot_q6_K(int64_t n, float *restrict s, const void *restrict vx,
                         const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            int8_t *qo = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                qo[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                qo[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                qo[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                qo[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * dot;
        }
        const float d = celer_fp16_to_fp32(x[i].d) * y[i].d;
        sumf += d * (float)sumi;
    }
    *s = sumf;
}

/* ================================================================ mul_mat */

/* out[t*ld + r] = dot(W row r, act row t): the plain loop, one vec_dot per pair. */
static inline void mul_mat_loop(ct_vec_dot_fn dot, int64_t n, const void *restrict w,
                                size_t w_stride, int64_t r0, int64_t r1,
                                const void *restrict act, size_t act_stride, int32_t k,
                                float *restrict out, int64_t ld) {
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = (const char *)w + (size_t)r * w_stride;
        for (int32_t t = 0; t < k; t++)
            dot(n, &out[(int64_t)t * ld + r], wr, (const char *)act + (size_t)t * act_stride);
    }
}

#define DEFINE_MUL_MAT(T)                                                                      \
    static void mul_mat_##T(int64_t n, const void *restrict w, size_t w_stride, int64_t r0,  \
                            int64_t r1, const void *restrict act, size_t act_stride,         \
                            int32_t k, float *restrict out, int64_t ld) {                    \
        mul_mat_loop(vec_dot_##T, n, w, w_stride, r0, r1, act, act_stride, k, out, ld);       \
    }

DEFINE_MUL_MAT(f32)
DEFINE_MUL_MAT(f16)
DEFINE_MUL_MAT(bf16)
DEFINE_MUL_MAT(q8_0)
DEFINE_MUL_MAT(q4_0)
DEFINE_MUL_MAT(q4_K)
DEFINE_MUL_MAT(q5_K)
DEFINE_MUL_MAT(q6_K)

/* ================================================================ activation quantizers */

static void act_f32(const float *restrict x, void *restrict dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}
static void act_f16(const float *restrict x, void *restrict dst, int64_t n) {
    ct_quantize_row(CELER_TYPE_F16, x, dst, n);
}
static void act_bf16(const float *restrict x, void *restrict dst, int64_t n) {
    ct_quantize_row(CELER_TYPE_BF16, x, dst, n);
}
static void act_q8_K(const float *restrict x, void *restrict dst, int64_t n) {
    ct_quantize_row(CELER_TYPE_Q8_K, x, dst, n);
}

/* ggml x86 quantize_row_q8_0: scale 127/amax, ties to even (see the top of this file). */
static void act_q8_0(const float *restrict x, void *restrict dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) {
            const float a = x[j] < 0 ? -x[j] : x[j];
            if (a > amax) amax = a;
        }
        y[i].d = celer_fp32_to_fp16(amax / 127.f);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < QK8_0; j++) {
            int q = nearest_even(x[j] * id);
            y[i].qs[j] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
        }
    }
}

static void swiglu(float *restrict gate, const float *restrict up, int64_t n) {
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ================================================================ tables */

int32_t ct_vec_dot_type(int32_t weight_type) {
    switch (weight_type) {
    case CELER_TYPE_F32: return CELER_TYPE_F32;
    case CELER_TYPE_F16: return CELER_TYPE_F16;
    case CELER_TYPE_BF16: return CELER_TYPE_BF16;
    case CELER_TYPE_Q4_0:
    case CELER_TYPE_Q8_0: return CELER_TYPE_Q8_0;
    case CELER_TYPE_Q4_K:
    case CELER_TYPE_Q5_K:
    case CELER_TYPE_Q6_K: return CELER_TYPE_Q8_K;
    default: return -1;
    }
}

static const ct_kernels reference_kernels = {
    .name = "reference",
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
    .attention = ct_attention_ref,
    .swiglu = swiglu,
};

const ct_kernels *ct_kernels_reference(void) { return &reference_kernels; }
