/* IEEE half and bfloat16 conversions, round to nearest even (as ggml's scalar paths and
 * F16C's _MM_FROUND_TO_NEAREST_INT do). Header-only so kernels can inline them. */
#ifndef CELER_CORE_FP16_H
#define CELER_CORE_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t celer_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float celer_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float celer_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return (sign ? -v : v);
    }
    if (exp == 31) return celer_bits_f32(sign | 0x7f800000u | (mant << 13));
    return celer_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t celer_fp32_to_fp16(float f) {
    uint32_t x = celer_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {
        /* result is subnormal (or zero): round absx * 2^24 to an integer, ties to even */
        if (absx < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); want m * 2^(e-150+24) */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = absx - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

/* Converts a row of halves with branch-free arithmetic that compilers vectorize (the KV cache
 * path). Same results as celer_fp16_to_fp32 for every input. */
static inline void celer_fp16_to_fp32_row(const uint16_t *restrict h, float *restrict out, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t x = h[i];
        uint32_t sign = (x & 0x8000u) << 16;
        uint32_t em = (x & 0x7fffu) << 13;               /* exponent and mantissa in place */
        uint32_t exp = em & 0x0f800000u;
        uint32_t normal = em + 0x38000000u;              /* rebias 15 -> 127 */
        uint32_t infnan = em + 0x70000000u;              /* exponent 31 -> 255 */
        /* subnormal: value = mant * 2^-24, computed exactly in float */
        float sub = celer_bits_f32(em + 0x38800000u) - celer_bits_f32(0x38800000u);
        uint32_t bits = exp == 0x0f800000u ? infnan : normal;
        float v = celer_bits_f32(bits);
        v = exp == 0 ? sub : v;
        out[i] = celer_bits_f32(celer_f32_bits(v) | sign);
    }
}

static inline float celer_bf16_to_fp32(uint16_t h) { return celer_bits_f32((uint32_t)h << 16); }

static inline uint16_t celer_fp32_to_bf16(float f) {
    uint32_t x = celer_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#endif
