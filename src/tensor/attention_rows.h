/* Cached K/V rows as floats for the SIMD attention kernels (attention_avx2.c and
 * attention_avx512.c include this, each compiled with its own target flags). */
#ifndef CELER_TENSOR_ATTENTION_ROWS_H
#define CELER_TENSOR_ATTENTION_ROWS_H
#include <immintrin.h>
#include <string.h>

#include "core/fp16.h"
#include "tensor/tensor.h"

#define ROWS 8 /* K/V rows per register block */
#ifndef PF_ROW_BLOCKS
#define PF_ROW_BLOCKS 4
#endif

/* hd floats of row r of a K or V cache into dst (F16 converted exactly, F32 copied). Both
 * kernel sets that include this have F16C: vcvtph2ps converts every half exactly, as
 * celer_fp16_to_fp32_row does, at 8 per instruction. The portable loop (which gcc vectorized
 * poorly) made F16 caches cost 4x F32 ones per cached row (bench_kernels, 8 queries). */
static inline void row_to_f32(const ct_attn *a, const void *rows, int32_t r, float *dst) {
    const size_t at = (size_t)r * a->kv_stride;
    if (!a->kv_f16) {
        memcpy(dst, (const float *)rows + at, (size_t)a->hd * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)rows + at;
    int32_t d = 0;
#ifdef __AVX512F__
    /* 16 at a time where the set has them: half the conversion instructions (block_rows is
     * ~0.7 % of an 8-token pass on one thread after 128 tokens, by perf) */
    for (; d + 16 <= a->hd; d += 16) _mm512_storeu_ps(dst + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + d))));
#endif
    for (; d + 8 <= a->hd; d += 8) _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + d))));
    if (d < a->hd) celer_fp16_to_fp32_row(h + d, dst + d, a->hd - d);
}

/* Rows r0 .. r0 + ROWS as floats: returns where row r0 + i starts (at i * *stride); rows past
 * nk read as zeros. F32 rows are used in place when all ROWS exist. */
static inline const float *block_rows(const ct_attn *a, const void *rows, int32_t r0, float *buf,
                                      size_t *stride) {
    const int32_t nr = a->nk - r0 < ROWS ? a->nk - r0 : ROWS;
    /* rows PF_ROW_BLOCKS blocks ahead (all of them up to there at the first block), into L1:
     * a call's first pass over a layer's rows reads them from L3 (a whole pass of weights went
     * through L2 since), one strided row at a time */
    const size_t elem = a->kv_f16 ? 2 : 4, row_bytes = (size_t)a->hd * elem;
    const int32_t pf0 = r0 == 0 ? ROWS : r0 + PF_ROW_BLOCKS * ROWS, pf1 = r0 + (PF_ROW_BLOCKS + 1) * ROWS;
    for (int32_t r = pf0; r < pf1 && r < a->nk; r++) {
        const char *p = (const char *)rows + (size_t)r * a->kv_stride * elem;
        for (size_t o = 0; o < row_bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
    }
    if (!a->kv_f16 && nr == ROWS) {
        *stride = a->kv_stride;
        return (const float *)rows + (size_t)r0 * a->kv_stride;
    }
    for (int32_t i = 0; i < ROWS; i++) {
        if (i < nr) row_to_f32(a, rows, r0 + i, buf + (size_t)i * a->hd);
        else memset(buf + (size_t)i * a->hd, 0, (size_t)a->hd * sizeof(float));
    }
    *stride = (size_t)a->hd;
    return buf;
}

#endif
