/*
 * Block-scale unpacking for the x86 kernel sets (AVX2 + F16C code, so it compiles in either):
 * fp16_scales8 serves both, k4_scales8 the AVX2 set (the AVX-512 set unpacks the K-quant
 * scales of two super-blocks at once with byte permutes). General registers do the byte
 * juggling, which runs beside the vector units; gathers would cost ~20 cycles each on AMD Zen.
 */
#ifndef CELER_TENSOR_SCALES_X86_H
#define CELER_TENSOR_SCALES_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The fp16 scales of 8 blocks `stride` bytes apart (the scale first in each block), packed
 * into one register, still as fp16. */
static inline __attribute__((always_inline)) __m128i fp16_scales8(const void *blocks, size_t stride) {
    const char *x = blocks;
    uint64_t dq[2] = {0, 0};
#pragma GCC unroll 8
    for (int b = 0; b < 8; b++) {
        uint16_t d;
        memcpy(&d, x + (size_t)b * stride, sizeof d);
        dq[b / 4] |= (uint64_t)d << (16 * (b % 4));
    }
    return _mm_set_epi64x((long long)dq[1], (long long)dq[0]);
}

/* Scales d*sc[g] (*d8) and negated mins -dmin*m[g] (*m8) of the 8 sub-blocks of a Q4_K/Q5_K
 * super-block (header: fp16 d, fp16 dmin, 12 bytes s of 6-bit scales and mins):
 *   sc[g] = g < 4 ? s[g] & 63 : (s[g+4] & 15) | (s[g-4] >> 6) << 4
 *   m[g]  = g < 4 ? s[g+4] & 63 : (s[g+4] >> 4) | (s[g] >> 6) << 4
 * unpacked four bytes at a time (s as three little-endian words), then widened and converted
 * 8 bytes each for scales and mins. */
static inline __attribute__((always_inline)) void k4_scales8(const uint8_t *hdr, __m256 *d8, __m256 *m8) {
    uint32_t w[3];
    memcpy(w, hdr + 4, sizeof w);
    const uint32_t low6 = 0x3f3f3f3fu, low4 = 0x0f0f0f0fu, top2 = 0x03030303u;
    const uint32_t sc_lo = w[0] & low6, m_lo = w[1] & low6;
    const uint32_t sc_hi = (w[2] & low4) | ((w[0] >> 6) & top2) << 4;
    const uint32_t m_hi = ((w[2] >> 4) & low4) | ((w[1] >> 6) & top2) << 4;
    uint32_t d_dmin;
    memcpy(&d_dmin, hdr, sizeof d_dmin);
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin));
    const __m128i sc = _mm_cvtsi64_si128((long long)(sc_lo | (uint64_t)sc_hi << 32));
    const __m128i mn = _mm_cvtsi64_si128((long long)(m_lo | (uint64_t)m_hi << 32));
    *d8 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)), _mm256_broadcastss_ps(dd));
    *m8 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)),
                        _mm256_sub_ps(_mm256_setzero_ps(), _mm256_broadcastss_ps(_mm_movehdup_ps(dd))));
}

#endif
