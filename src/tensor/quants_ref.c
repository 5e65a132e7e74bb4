/*
 * Reference (plain scalar) quantizers and dequantizers for every type celer computes with.
 *
 * The weight quantizers reproduce llama.cpp's quantize_row_*_ref bit for bit: they are what
 * llama-quantize runs when no importance matrix is given, so a file celer quantizes is
 * byte-identical to one llama-quantize makes. That requires the same float operations in the
 * same order (IEEE single precision, no fused multiply-add: this file is built without FMA
 * target flags and -std=c11 turns contraction off), and ggml's rounding helper nearest_int
 * (round half to even through the 1.5*2^23 "magic number" addition).
 *
 * The dequantizers also follow ggml's arithmetic order, so the token-embedding lookup
 * (a dequantized row) matches llama.cpp's get_rows exactly.
 *
 * Block layouts (structs in tensor.h; QK_K = 256):
 *
 *   Q4_0 (18 bytes / 32 values): fp16 d, then 16 bytes of nibbles. Byte j holds value j in
 *        its low nibble and value j+16 in its high nibble; value = (nibble - 8) * d.
 *   Q8_0 (34 bytes / 32 values): fp16 d, then 32 int8 quants; value = q * d.
 *   Q4_K (144 bytes / 256 values): fp16 d, fp16 dmin, 12 bytes of packed 6-bit sub-block
 *        scales/mins (8 sub-blocks of 32, see get_scale_min_k4), 128 bytes of nibbles.
 *        Values 64g..64g+31 are the low nibbles of qs[32g..32g+31], values 64g+32..64g+63
 *        their high nibbles. value = d*sc[j] * q - dmin*m[j] for sub-block j.
 *   Q5_K (176 bytes / 256 values): as Q4_K plus qh[32]: the fifth bit of value 64g+l is bit
 *        2g of qh[l], of value 64g+32+l bit 2g+1 of qh[l]. Quants are 0..31.
 *   Q6_K (210 bytes / 256 values): ql[128] low nibbles, qh[64] high 2-bit pairs, int8
 *        scales[16] (one per 16 values), fp16 d. In each half h (128 values) with
 *        ql' = ql + 64h, qh' = qh + 32h, for l < 32:
 *          value l    : ql'[l]    low nibble, bits 0-1 of qh'[l]
 *          value l+32 : ql'[l+32] low nibble, bits 2-3 of qh'[l]
 *          value l+64 : ql'[l]    high nibble, bits 4-5 of qh'[l]
 *          value l+96 : ql'[l+32] high nibble, bits 6-7 of qh'[l]
 *        q = (low | high << 4) - 32; value = d * scales[v/16] * q.
 *   Q8_K (292 bytes / 256 values, activations only): f32 d, int8 qs[256], int16 bsums[16]
 *        (sum of each group of 16 quants, so K-quant dot products can apply mins cheaply).
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/tensor.h"

/* ---- block size checks: any padding would break the file format */
static_assert(sizeof(ct_half) == 2, "ct_half");
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "block_q4_0 size");
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "block_q8_0 size");
static_assert(sizeof(block_q4_K) == 4 + K_SCALE_SIZE + QK_K / 2, "block_q4_K size");
static_assert(sizeof(block_q5_K) == 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2, "block_q5_K size");
static_assert(sizeof(block_q6_K) == QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, "block_q6_K size");
static_assert(sizeof(block_q8_K) == 4 + QK_K + QK_K / 16 * 2, "block_q8_K size");
static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q8_0) == 34 &&
                  sizeof(block_q4_K) == 144 && sizeof(block_q5_K) == 176 &&
                  sizeof(block_q6_K) == 210 && sizeof(block_q8_K) == 292,
              "block sizes must equal core/types.c");

/* Values below this count as an all-zero group (ggml's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even, for |v| <= 2^22: adding 1.5*2^23 leaves the integer in the
 * low mantissa bits. Out-of-range or NaN inputs give some int (never undefined behaviour). */
static inline int nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* float -> int truncation clamped to [lo, hi], defined for NaN/inf (gives lo). For in-range
 * finite values it equals C's (int) cast, which is what ggml's (int8_t) casts do. */
static inline int trunc_clamp(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* ================================================================ F32 / F16 / BF16 */

static void quantize_f32(const float *x, void *dst, int64_t n) { memmove(dst, x, (size_t)n * 4); }
static void to_float_f32(const void *src, float *y, int64_t n) { memmove(y, src, (size_t)n * 4); }

static void quantize_f16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = celer_fp32_to_fp16(x[i]);
}
static void to_float_f16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = celer_fp16_to_fp32(x[i]);
}

static void quantize_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = celer_fp32_to_bf16(x[i]);
}
static void to_float_bf16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = celer_bf16_to_fp32(x[i]);
}

/* ================================================================ Q4_0 */

/* The scale is the signed value of largest magnitude divided by -8, so that value maps to
 * quant 0 exactly (-8 after the offset) and the other side gets the full +7 range. Quants are
 * truncated after adding 8.5 (= round half up around the offset). */
static void quantize_q4_0(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = celer_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = imin(15, trunc_clamp(x[j] * id + 8.5f, 0, 15));
            const int q1 = imin(15, trunc_clamp(x[j + QK4_0 / 2] * id + 8.5f, 0, 15));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void to_float_q4_0(const void *src, float *y, int64_t n) {
    const block_q4_0 *x = src;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        const float d = celer_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ================================================================ Q8_0 */

/* Weight quantizer (llama.cpp's quantize_row_q8_0_ref): d = amax/127, id = 1/d, quants
 * rounded half away from zero (roundf). The activation quantizer in ref.c differs on
 * purpose: it mirrors ggml's x86 path (127/amax, ties to even). */
static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = celer_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) {
            const float r = roundf(x[j] * id);
            y[i].qs[j] = (int8_t)(r >= 127.f ? 127 : r > -128.f ? (int)r : -128);
        }
    }
}

static void to_float_q8_0(const void *src, float *y, int64_t n) {
    const block_q8_0 *x = src;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        const float d = celer_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* ================================================================ K-quant helpers */

/*
 * Fits x[0..n) ~ scale * L[i] - min with L in [0, nmax] and min >= 0, minimising the error
 * weighted by `weights` (ggml's make_qkx2_quants). Starts from the plain min/max grid, then
 * tries nstep+1 slightly different grid widths (rmin + rdelta*is extra steps), each followed
 * by a weighted least-squares fit of scale and min; keeps the best. Returns the scale and
 * stores the (positive) min in *the_min.
 */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
                              uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                              float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/*
 * Symmetric fit x ~ scale * (L[i] - nmax), L in [0, 2*nmax), weights x^2 (ggml's
 * make_qx_quants with rmse_type 1 and no importance weights). Starts from the grid that maps
 * the largest-magnitude value to -nmax, then tries 18 neighbouring grids (nmax +- 0.1..0.9)
 * and keeps the one with the best least-squares fit. Returns the scale.
 */
static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * The 12 scale bytes of Q4_K/Q5_K hold 8 six-bit scales and 8 six-bit mins:
 *   bytes 0-3 : scale j (j<4) in bits 0-5; bits 6-7 = high 2 bits of scale j+4
 *   bytes 4-7 : min j (j<4) in bits 0-5;   bits 6-7 = high 2 bits of min j+4
 *   bytes 8-11: low 4 bits of scale j+4 in bits 0-3, low 4 bits of min j+4 in bits 4-7
 */
static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void pack_scale_min_k4(uint8_t *scales, const uint8_t *ls, const uint8_t *lm) {
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        if (j < 4) {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/*
 * The shared part of Q4_K and Q5_K: fit each sub-block of 32 with make_qkx2_quants (weights
 * rms + |x|), quantize the 8 scales and 8 mins to 6 bits against the largest of each, then
 * requantize the values against the rounded scales. Fills d, dmin, scales and L[256].
 */
static void quantize_kx_superblock(const float *x, int nmax, float rmin, float rdelta, int nstep,
                                   ct_half *d_out, ct_half *dmin_out, uint8_t *scales_out,
                                   uint8_t *L) {
    uint8_t Laux[32];
    float weights[32];
    float mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0; /* the min is subtracted, so scales are never negative */
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, rdelta, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[QK_K / 32], lm[QK_K / 32];
    for (int j = 0; j < QK_K / 32; j++) {
        /* ggml stores nearest_int into a uint8_t before clamping; mirror the wrap. */
        ls[j] = (uint8_t)imin(63, (uint8_t)nearest_int(inv_scale * scales[j]));
        lm[j] = (uint8_t)imin(63, (uint8_t)nearest_int(inv_min * mins[j]));
    }
    pack_scale_min_k4(scales_out, ls, lm);
    *d_out = celer_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = celer_fp32_to_fp16(max_min / 63.f);

    const float dq = celer_fp16_to_fp32(*d_out), mq = celer_fp16_to_fp32(*dmin_out);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = dq * sc;
        if (!d) continue; /* keep the fit's quants: they all dequantize to -dm anyway */
        const float dm = mq * m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

/* ================================================================ Q4_K */

static void quantize_q4_K(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quantize_kx_superblock(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void to_float_q4_K(const void *src, float *y, int64_t n) {
    const block_q4_K *x = src;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = celer_fp16_to_fp32(x[i].d);
        const float dmin = celer_fp16_to_fp32(x[i].dmin);
        for (int j = 0, is = 0; j < QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* ================================================================ Q5_K */

static void quantize_q5_K(const float *x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quantize_kx_superblock(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int g = 0; g < QK_K; g += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[g + j], l2 = L[g + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

static void to_float_q5_K(const void *src, float *y, int64_t n) {
    const block_q5_K *x = src;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const float d = celer_fp16_to_fp32(x[i].d);
        const float dmin = celer_fp16_to_fp32(x[i].dmin);
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < QK_K; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* ================================================================ Q6_K */

/* Each sub-block of 16 is fitted symmetrically (make_qx_quants, nmax 32); the 16 sub-block
 * scales are then quantized to int8 against the one of largest magnitude (-128 / max), and
 * the values requantized against the rounded scales. */
static void quantize_q6_K(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    const int64_t nb = n / QK_K;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = celer_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));

        const float dq = celer_fp16_to_fp32(y[i].d);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = dq * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }

        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lu = (const uint8_t *)L + j + l;
                ql[l] = (uint8_t)((Lu[0] & 0xF) | ((Lu[64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lu[32] & 0xF) | ((Lu[96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lu[0] >> 4) | ((Lu[32] >> 4) << 2) | ((Lu[64] >> 4) << 4) |
                                  ((Lu[96] >> 4) << 6));
            }
        }
    }
}

static void to_float_q6_K(const void *src, float *y, int64_t n) {
    const block_q6_K *x = src;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = celer_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int h = 0; h < QK_K; h += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ================================================================ Q8_K */

/* Activation quantizer for K-quant weights (ggml's quantize_row_q8_K_ref, which its x86
 * backend uses as is): iscale = -127/max where max is the signed value of largest magnitude
 * (the first if tied), q = min(127, nearest_int(x*iscale)), d = 1/iscale kept as f32. */
static void quantize_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++)
            y[i].qs[j] = (int8_t)imax(-128, imin(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

static void to_float_q8_K(const void *src, float *y, int64_t n) {
    const block_q8_K *x = src;
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}

/* ================================================================ dispatch by type */

typedef struct ref_format {
    ct_from_float_fn quantize;
    ct_to_float_fn to_float;
} ref_format;

static const ref_format formats[CELER_TYPE_TABLE_SIZE] = {
    [CELER_TYPE_F32] = {quantize_f32, to_float_f32},
    [CELER_TYPE_F16] = {quantize_f16, to_float_f16},
    [CELER_TYPE_BF16] = {quantize_bf16, to_float_bf16},
    [CELER_TYPE_Q4_0] = {quantize_q4_0, to_float_q4_0},
    [CELER_TYPE_Q8_0] = {quantize_q8_0, to_float_q8_0},
    [CELER_TYPE_Q4_K] = {quantize_q4_K, to_float_q4_K},
    [CELER_TYPE_Q5_K] = {quantize_q5_K, to_float_q5_K},
    [CELER_TYPE_Q6_K] = {quantize_q6_K, to_float_q6_K},
    [CELER_TYPE_Q8_K] = {quantize_q8_K, to_float_q8_K},
};

static const ref_format *format_of(int32_t type) {
    if (type < 0 || type >= CELER_TYPE_TABLE_SIZE || !formats[type].quantize) return NULL;
    return &formats[type];
}

void ct_to_float(int32_t type, const void *src, float *dst, int64_t n) {
    /* Unknown types and n <= 0 do nothing; a partial trailing block is ignored. */
    const ref_format *f = format_of(type);
    if (f && n > 0) f->to_float(src, dst, n);
}

void ct_quantize_row(int32_t type, const float *src, void *dst, int64_t n) {
    const ref_format *f = format_of(type);
    if (f && n > 0) f->quantize(src, dst, n);
}
