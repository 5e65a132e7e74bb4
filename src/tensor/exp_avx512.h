/* e^x on 16 floats for the AVX-512 kernel files; the same arithmetic as exp_avx2.h, so a
 * value is bit for bit the same whichever of the two computes it. */
#ifndef CELER_TENSOR_EXP_AVX512_H
#define CELER_TENSOR_EXP_AVX512_H
#include <immintrin.h>

/* x is clamped to [-87, 88] (e^-87 is near the smallest normal float, e^88 near the largest);
 * e^x = 2^n e^f with n = round(x / ln 2), |f| <= ln2 / 2 (ln 2 split in two for an exact
 * reduction), e^f by its degree-6 Taylor polynomial (relative error below 1.2e-7), and the
 * exact power of two applied by vscalefps. */
static inline __m512 ct_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), f);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif
