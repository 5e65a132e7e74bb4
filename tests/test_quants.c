/* Quantization formats and reference kernels (src/tensor/quants_ref.c, ref.c), the quantizer
 * of whole files (celer_quantize_file) and `celer quantize`.
 *
 * The central check: quantizing the F32 reference models with ct_quantize_row reproduces,
 * byte for byte, the tensors llama-quantize --pure wrote into ref-ARCH-TYPE.gguf. */
#include <math.h>

#include "core/fp16.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "test.h"

static const char *const arches[] = {"llama", "qwen2", "qwen3"};
static const int32_t weight_types[] = {
    CELER_TYPE_F32,  CELER_TYPE_F16,  CELER_TYPE_BF16, CELER_TYPE_Q8_0,
    CELER_TYPE_Q4_0, CELER_TYPE_Q4_K, CELER_TYPE_Q5_K, CELER_TYPE_Q6_K,
};
#define N_WEIGHT_TYPES ((int)(sizeof weight_types / sizeof weight_types[0]))

/* ---- deterministic random numbers (xorshift64*, normal via Box-Muller) */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_u64(rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}
static double rng_uniform(rng *r) { return (double)((rng_u64(r) >> 11) + 1) / 9007199254740993.0; }
static float rng_normal(rng *r) {
    return (float)(sqrt(-2.0 * log(rng_uniform(r))) * cos(6.283185307179586 * rng_uniform(r)));
}

/* Relative RMS error of a quantize -> dequantize round trip: sqrt(sum (x-y)^2 / sum x^2). */
static double roundtrip_rel_rms(int32_t type, const float *x, int64_t n, float *y, void *buf) {
    ct_quantize_row(type, x, buf, n);
    ct_to_float(type, buf, y, n);
    double e = 0, a = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        a += (double)x[i] * x[i];
    }
    return a > 0 ? sqrt(e / a) : sqrt(e);
}

static bool all_finite(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return false;
    return true;
}

/* ================================================================ tables */

TEST(quants_kernel_table) {
    const ct_kernels *k = ct_kernels_reference();
    REQUIRE(k != NULL);
    CHECK(strcmp(k->name, "reference") == 0);
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        const int32_t t = weight_types[i];
        const int32_t vt = ct_vec_dot_type(t);
        CHECKF(vt >= 0, "%s has no vec_dot type", celer_type_name(t));
        if (vt < 0) continue;
        CHECKF(k->vec_dot[t] && k->mul_mat[t], "%s lacks kernels", celer_type_name(t));
        CHECKF(k->quantize_act[vt] != NULL, "no activation quantizer for %s", celer_type_name(vt));
    }
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q4_0), CELER_TYPE_Q8_0);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q8_0), CELER_TYPE_Q8_0);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q4_K), CELER_TYPE_Q8_K);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q5_K), CELER_TYPE_Q8_K);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q6_K), CELER_TYPE_Q8_K);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_BF16), CELER_TYPE_BF16);
    CHECK_EQ_INT(ct_vec_dot_type(CELER_TYPE_Q8_K), -1); /* activations only */
    CHECK_EQ_INT(ct_vec_dot_type(3), -1);               /* Q4_1: not computable */
    CHECK_EQ_INT(ct_vec_dot_type(-5), -1);
    CHECK_EQ_INT(ct_vec_dot_type(1000), -1);
}

/* ================================================================ (a) the killer test */

/* Every 2-D tensor of ref-ARCH-TYPE.gguf equals ct_quantize_row of the same tensor of
 * ref-ARCH-F32.gguf, byte for byte; every 1-D tensor is F32 and equal. */
static void check_against_llama_quantize(const char *arch) {
    char path[256];
    snprintf(path, sizeof path, "reference/ref-%s-F32.gguf", arch);
    const char *f32_path = test_data_path(path);
    if (!test_file_exists(f32_path)) {
        test_skip("%s missing", f32_path);
        return;
    }
    celer_error err = {0};
    gguf_file *src = NULL;
    REQUIREF(gguf_open(f32_path, &src, &err) == CELER_OK, "%s: %s", f32_path, err.message);
    for (int ti = 1; ti < N_WEIGHT_TYPES; ti++) {
        const int32_t type = weight_types[ti];
        snprintf(path, sizeof path, "reference/ref-%s-%s.gguf", arch, celer_type_name(type));
        gguf_file *ref = NULL;
        if (gguf_open(test_data_path(path), &ref, &err) != CELER_OK) {
            test_fail_at(__FILE__, __LINE__, "%s: %s", path, err.message);
            continue;
        }
        CHECK_EQ_INT(gguf_n_tensors(ref), gguf_n_tensors(src));
        int n_2d = 0;
        for (int64_t i = 0; i < gguf_n_tensors(ref); i++) {
            const gguf_tensor *rt = gguf_tensor_at(ref, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)rt->name.len, rt->name.data);
            const gguf_tensor *st = gguf_find_tensor(src, name);
            CHECKF(st != NULL, "%s: tensor %s not in the F32 file", path, name);
            if (!st) continue;
            CHECK_EQ_INT(st->type, CELER_TYPE_F32);
            const int64_t ne0 = rt->ne[0], rows = rt->ne[1] * rt->ne[2] * rt->ne[3];
            CHECK(ne0 == st->ne[0] && rows * ne0 == st->ne[1] * st->ne[2] * st->ne[3] * ne0);
            const int32_t want = rt->n_dims >= 2 ? type : CELER_TYPE_F32;
            CHECKF(rt->type == want, "%s %s: type %d, expected %d", path, name, rt->type, want);
            if (rt->type != want) continue;
            const size_t row = celer_row_size(want, ne0);
            REQUIRE(row > 0 && rt->size == row * (size_t)rows);
            uint8_t *buf = malloc(row);
            REQUIRE(buf);
            for (int64_t r = 0; r < rows; r++) {
                ct_quantize_row(want, (const float *)st->data + r * ne0, buf, ne0);
                if (memcmp(buf, (const uint8_t *)rt->data + (size_t)r * row, row) != 0) {
                    size_t b = 0;
                    while (buf[b] == ((const uint8_t *)rt->data)[(size_t)r * row + b]) b++;
                    test_fail_at(__FILE__, __LINE__, "%s %s row %lld: first differing byte %zu",
                                 path, name, (long long)r, b);
                    break;
                }
            }
            free(buf);
            n_2d += rt->n_dims >= 2;
        }
        CHECKF(n_2d == 16, "%s: %d 2-D tensors, expected 16", path, n_2d);
        gguf_close(ref);
    }
    gguf_close(src);
}

TEST(quants_match_llama_quantize_llama) { check_against_llama_quantize(arches[0]); }
TEST(quants_match_llama_quantize_qwen2) { check_against_llama_quantize(arches[1]); }
TEST(quants_match_llama_quantize_qwen3) { check_against_llama_quantize(arches[2]); }

/* The dequantizers are checked against llama.cpp too, indirectly: dequantizing a reference
 * file and requantizing must be a fixed point for Q8_0 (values are exactly q*d). */
TEST(quants_q8_0_requantize_fixed_point) {
    const char *p = test_data_path("reference/ref-llama-Q8_0.gguf");
    if (!test_file_exists(p)) {
        test_skip("%s missing", p);
        return;
    }
    celer_error err = {0};
    gguf_file *f = NULL;
    REQUIREF(gguf_open(p, &f, &err) == CELER_OK, "%s", err.message);
    const gguf_tensor *t = gguf_find_tensor(f, "blk.0.attn_q.weight");
    REQUIRE(t && t->type == CELER_TYPE_Q8_0);
    const int64_t n = t->ne[0];
    float x[256];
    uint8_t q[34 * 8];
    REQUIRE(n <= 256);
    for (int64_t r = 0; r < t->ne[1]; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * celer_row_size(t->type, n);
        ct_to_float(CELER_TYPE_Q8_0, row, x, n);
        ct_quantize_row(CELER_TYPE_Q8_0, x, q, n);
        /* The scale can change (amax is now 127*d, not the original amax) but the quants
         * reproduce: compare the dequantized values instead. */
        float y[256];
        ct_to_float(CELER_TYPE_Q8_0, q, y, n);
        for (int64_t i = 0; i < n; i++)
            CHECKF(fabsf(x[i] - y[i]) <= 1e-3f * fabsf(x[i]) + 1e-12f, "row %lld elem %lld",
                   (long long)r, (long long)i);
        if (test_failed_now()) break;
    }
    gguf_close(f);
}

/* ================================================================ (b) round trips */

/*
 * Relative RMS error bounds on Gaussian data (sqrt(sum err^2 / sum x^2)), about 1.5x the
 * worst value measured over scales 0.01..0.08 (measured: F16 2.1e-4, BF16 1.7e-3, Q8_0
 * 5.3e-3, Q4_0 8.6e-2, Q4_K 7.1e-2, Q5_K 3.6e-2, Q6_K 1.8e-2, Q8_K 6.9e-3). A format bug
 * (wrong nibble, scale or offset) gives errors of order 1.
 */
static double rel_rms_bound(int32_t type) {
    switch (type) {
    case CELER_TYPE_F32: return 0;
    case CELER_TYPE_F16: return 3.5e-4;
    case CELER_TYPE_BF16: return 2.5e-3;
    case CELER_TYPE_Q8_0: return 8e-3;
    case CELER_TYPE_Q4_0: return 0.13;
    case CELER_TYPE_Q4_K: return 0.11;
    case CELER_TYPE_Q5_K: return 0.055;
    case CELER_TYPE_Q6_K: return 0.027;
    case CELER_TYPE_Q8_K: return 1e-2;
    default: return 0;
    }
}

static const int32_t all_types[] = {
    CELER_TYPE_F32,  CELER_TYPE_F16,  CELER_TYPE_BF16, CELER_TYPE_Q8_0, CELER_TYPE_Q4_0,
    CELER_TYPE_Q4_K, CELER_TYPE_Q5_K, CELER_TYPE_Q6_K, CELER_TYPE_Q8_K,
};
#define N_ALL_TYPES ((int)(sizeof all_types / sizeof all_types[0]))
#define RT_N 4096

TEST(quants_roundtrip_random) {
    static float x[RT_N], y[RT_N];
    static uint8_t buf[RT_N * 4];
    rng r = {0x9e3779b97f4a7c15ull};
    for (int ti = 0; ti < N_ALL_TYPES; ti++) {
        const int32_t t = all_types[ti];
        for (int rep = 0; rep < 4; rep++) {
            const float scale = (rep == 3) ? 1000.f : 0.02f * (float)(rep + 1);
            for (int i = 0; i < RT_N; i++) x[i] = scale * rng_normal(&r);
            const double e = roundtrip_rel_rms(t, x, RT_N, y, buf);
            CHECKF(e <= rel_rms_bound(t), "%s scale %g: relative RMS error %.3e > %.3e",
                   celer_type_name(t), scale, e, rel_rms_bound(t));
            /* Shifted data (all positive): the K-quants' mins must absorb the offset. */
            for (int i = 0; i < RT_N; i++) x[i] = scale * (3.0f + rng_normal(&r));
            const double e2 = roundtrip_rel_rms(t, x, RT_N, y, buf);
            CHECKF(e2 <= rel_rms_bound(t), "%s shifted: relative RMS error %.3e > %.3e",
                   celer_type_name(t), e2, rel_rms_bound(t));
        }
    }
}

TEST(quants_roundtrip_awkward) {
    static float x[512], y[512];
    static uint8_t buf[512 * 4];
    rng r = {12345};
    for (int ti = 0; ti < N_ALL_TYPES; ti++) {
        const int32_t t = all_types[ti];
        const char *tn = celer_type_name(t);

        /* All zeros: exactly zero back. */
        memset(x, 0, sizeof x);
        ct_quantize_row(t, x, buf, 512);
        ct_to_float(t, buf, y, 512);
        for (int i = 0; i < 512; i++) CHECKF(y[i] == 0.0f, "%s zeros: y[%d] = %g", tn, i, y[i]);

        /* One huge value among small ones: it survives to the format's precision, nothing
         * becomes inf/nan, and the overall error stays within the bound (the huge value
         * dominates the norm). */
        for (int i = 0; i < 512; i++) x[i] = 0.01f * rng_normal(&r);
        x[77] = 3000.f;
        const double e = roundtrip_rel_rms(t, x, 512, y, buf);
        CHECKF(all_finite(y, 512), "%s huge: non-finite output", tn);
        /* One value dominates, so the bound is its own rounding: up to 2^-8 for BF16. */
        CHECKF(e <= fmax(rel_rms_bound(t), 1.0 / 256), "%s huge: error %.3e", tn, e);
        CHECKF(fabsf(y[77] - 3000.f) <= 3000.f * 8e-3f, "%s huge: y[77] = %g", tn, y[77]);

        /* Negative max: the largest magnitude is negative (Q4_0's and Q8_K's scale takes its
         * sign from it), in every block. */
        for (int i = 0; i < 512; i++) x[i] = 0.5f * rng_normal(&r);
        for (int b = 0; b < 512; b += 32) x[b + 5] = -4.0f;
        const double e3 = roundtrip_rel_rms(t, x, 512, y, buf);
        /* An 8-sigma outlier in every 32 values coarsens every block's grid: twice the
         * Gaussian bound (the grid step grows ~2x relative to the data's RMS). */
        CHECKF(e3 <= 2 * rel_rms_bound(t), "%s negative max: error %.3e", tn, e3);
        for (int b = 0; b < 512; b += 32)
            CHECKF(fabsf(y[b + 5] + 4.0f) <= 4.0f * 2e-2f, "%s negative max: y[%d] = %g", tn,
                   b + 5, y[b + 5]);

        /* A constant block and tiny values: finite, sign-preserving. */
        for (int i = 0; i < 512; i++) x[i] = i < 256 ? 0.25f : 1e-20f * (float)(i % 7 - 3);
        ct_quantize_row(t, x, buf, 512);
        ct_to_float(t, buf, y, 512);
        CHECKF(all_finite(y, 512), "%s constant/tiny: non-finite output", tn);
        for (int i = 0; i < 256; i++)
            CHECKF(fabsf(y[i] - 0.25f) <= 0.25f * 0.07f, "%s constant: y[%d] = %g", tn, i, y[i]);
        if (test_failed_now()) return;
    }
}

/* Hand-computed blocks pin the layouts down independently of the round trip. */
TEST(quants_known_blocks) {
    float x[256];
    /* Q4_0: the largest magnitude is -8, so d = -8 / -8 = 1 and value v maps to nibble
     * trunc(v + 8.5) = v + 8; element j sits in the low nibble of byte j, j+16 in the high. */
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 16) - 8.0f; /* -8..7 */
    block_q4_0 b4;
    ct_quantize_row(CELER_TYPE_Q4_0, x, &b4, 32);
    CHECK_EQ_INT(b4.d, celer_fp32_to_fp16(1.0f));
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(b4.qs[j], j | (j << 4));

    /* Q8_0 weight quantizer rounds half away from zero; the activation quantizer (ggml's x86
     * path) rounds half to even. amax = 127 makes both scales exactly 1. */
    for (int i = 0; i < 32; i++) x[i] = 0;
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 3.5f;
    block_q8_0 w, a;
    ct_quantize_row(CELER_TYPE_Q8_0, x, &w, 32);
    ct_kernels_reference()->quantize_act[CELER_TYPE_Q8_0](x, &a, 32);
    CHECK_EQ_INT(w.d, celer_fp32_to_fp16(1.0f));
    CHECK_EQ_INT(a.d, celer_fp32_to_fp16(1.0f));
    CHECK_EQ_INT(w.qs[0], 127);
    CHECK_EQ_INT(w.qs[1], 3);
    CHECK_EQ_INT(w.qs[2], -3);
    CHECK_EQ_INT(a.qs[1], 2);
    CHECK_EQ_INT(a.qs[2], -2);
    CHECK_EQ_INT(a.qs[3], 4);

    /* Q8_K: iscale = -127/max with the signed max; ties to even; bsums. */
    for (int i = 0; i < 256; i++) x[i] = 0;
    x[10] = -127.0f; /* max = -127 -> iscale = 1, d = 1 */
    x[11] = 0.5f;
    x[12] = 1.5f;
    x[20] = 127.0f;
    block_q8_K k;
    ct_kernels_reference()->quantize_act[CELER_TYPE_Q8_K](x, &k, 256);
    CHECK(k.d == 1.0f);
    CHECK_EQ_INT(k.qs[10], -127);
    CHECK_EQ_INT(k.qs[11], 0);
    CHECK_EQ_INT(k.qs[12], 2);
    CHECK_EQ_INT(k.qs[20], 127);
    CHECK_EQ_INT(k.bsums[0], -127 + 0 + 2);
    CHECK_EQ_INT(k.bsums[1], 127);
    x[10] = 127.0f; /* positive max -> negative scale: q = -127 for the max */
    x[20] = 0;
    ct_quantize_row(CELER_TYPE_Q8_K, x, &k, 256);
    CHECK(k.d == -1.0f);
    CHECK_EQ_INT(k.qs[10], -127);
    CHECK_EQ_INT(k.qs[12], -2);

    /* Q6_K nibble/bit placement: dequantize a hand-made block. */
    block_q6_K b6;
    memset(&b6, 0, sizeof b6);
    b6.d = celer_fp32_to_fp16(1.0f);
    for (int j = 0; j < 16; j++) b6.scales[j] = 1;
    b6.ql[0] = 0x21;        /* value 0 low nibble 1, value 64 low nibble 2 */
    b6.ql[32] = 0x43;       /* value 32 low 3, value 96 low 4 */
    b6.qh[0] = 0x02 | 0x30; /* value 0 high 2 (bits 0-1), value 64 high 3 (bits 4-5) */
    float y[256];
    ct_to_float(CELER_TYPE_Q6_K, &b6, y, 256);
    CHECK(y[0] == (float)((1 | 2 << 4) - 32));
    CHECK(y[64] == (float)((2 | 3 << 4) - 32));
    CHECK(y[32] == (float)(3 - 32));
    CHECK(y[96] == (float)(4 - 32));
    CHECK(y[1] == -32.0f);
}

/* ================================================================ (c) vec_dot and mul_mat */

/* vec_dot of a quantized weight row and a quantized activation row equals the float64 dot
 * of the two dequantized rows. The integer parts are exact; only the float scaling of each
 * block (and the final float result) rounds, so the bound is a few float ulps of the sum of
 * |w_i a_i|: 4e-6 relative covers float accumulation over 3 super-blocks/24 blocks. */
TEST(quants_vec_dot_matches_float64) {
    enum { N = 768, ROWS = 5, K = 3 };
    static float w[ROWS * N], a[K * N], wd[N], ad[N];
    static uint8_t wq[ROWS * N * 4], aq[K * N * 4];
    const ct_kernels *kern = ct_kernels_reference();
    rng r = {777};
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const int32_t t = weight_types[ti], vt = ct_vec_dot_type(t);
        const size_t wrow = celer_row_size(t, N), arow = celer_row_size(vt, N);
        REQUIRE(wrow && arow);
        for (int i = 0; i < ROWS * N; i++) w[i] = 0.02f * rng_normal(&r) + (i % 97 == 0 ? 0.1f : 0);
        for (int i = 0; i < K * N; i++) a[i] = rng_normal(&r) * (i % 50 == 0 ? 5.0f : 1.0f);
        for (int i = 0; i < ROWS; i++) ct_quantize_row(t, w + i * N, wq + i * wrow, N);
        for (int i = 0; i < K; i++) kern->quantize_act[vt](a + i * N, aq + i * arow, N);
        float out[K * 8];
        for (int i = 0; i < K * 8; i++) out[i] = NAN;
        const int64_t ld = 8; /* wider than ROWS: the gap must stay untouched */
        kern->mul_mat[t](N, wq, wrow, 1, ROWS, aq, arow, K, out, ld);
        for (int ri = 0; ri < ROWS; ri++) {
            ct_to_float(t, wq + ri * wrow, wd, N);
            for (int ki = 0; ki < K; ki++) {
                ct_to_float(vt, aq + ki * arow, ad, N);
                double ref = 0, mag = 0;
                for (int i = 0; i < N; i++) {
                    ref += (double)wd[i] * ad[i];
                    mag += fabs((double)wd[i] * ad[i]);
                }
                float s = NAN;
                kern->vec_dot[t](N, &s, wq + ri * wrow, aq + ki * arow);
                CHECKF(fabs(s - ref) <= 4e-6 * mag + 1e-30, "%s row %d act %d: %.9g vs %.9g",
                       celer_type_name(t), ri, ki, s, ref);
                if (ri >= 1)
                    CHECKF(out[ki * ld + ri] == s, "%s mul_mat[%d][%d] %.9g != vec_dot %.9g",
                           celer_type_name(t), ki, ri, out[ki * ld + ri], s);
                else
                    CHECKF(isnan(out[ki * ld + ri]), "%s mul_mat wrote outside [r0, r1)",
                           celer_type_name(t));
            }
        }
        for (int ki = 0; ki < K; ki++)
            for (int c = ROWS; c < ld; c++) CHECK(isnan(out[ki * ld + c]));
        /* The quantized dot tracks the exact float dot of the unquantized rows (sanity on
         * the whole pipeline; loose because both sides are quantized). */
        double exact = 0, mag = 0;
        for (int i = 0; i < N; i++) {
            exact += (double)w[N + i] * a[i];
            mag += fabs((double)w[N + i] * a[i]);
        }
        CHECKF(fabs(out[1] - exact) <= 0.1 * mag, "%s: %.6g vs exact %.6g", celer_type_name(t),
               out[1], exact);
        if (test_failed_now()) return;
    }
}

/* F16/BF16 activation quantizers are plain round-to-nearest-even conversions. */
TEST(quants_act_half_conversions) {
    const ct_kernels *k = ct_kernels_reference();
    float x[64];
    uint16_t h[64], b[64];
    rng r = {99};
    for (int i = 0; i < 64; i++) x[i] = rng_normal(&r) * 100.f;
    k->quantize_act[CELER_TYPE_F16](x, h, 64);
    k->quantize_act[CELER_TYPE_BF16](x, b, 64);
    for (int i = 0; i < 64; i++) {
        CHECK_EQ_INT(h[i], celer_fp32_to_fp16(x[i]));
        CHECK_EQ_INT(b[i], celer_fp32_to_bf16(x[i]));
    }
    float y[64];
    k->quantize_act[CELER_TYPE_F32](x, y, 64);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

/* ================================================================ (d) celer_quantize_file and the CLI */

/* Compares two GGUF files tensor by tensor (by name: llama-quantize reorders them). */
static void check_same_tensors(const char *got_path, const char *want_path) {
    celer_error err = {0};
    gguf_file *got = NULL, *want = NULL;
    if (gguf_open(got_path, &got, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", got_path, err.message);
        return;
    }
    if (gguf_open(want_path, &want, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", want_path, err.message);
        gguf_close(got);
        return;
    }
    CHECKF(gguf_n_tensors(got) == gguf_n_tensors(want), "%s: %lld tensors, expected %lld",
           got_path, (long long)gguf_n_tensors(got), (long long)gguf_n_tensors(want));
    for (int64_t i = 0; i < gguf_n_tensors(want); i++) {
        const gguf_tensor *w = gguf_tensor_at(want, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)w->name.len, w->name.data);
        const gguf_tensor *g = gguf_find_tensor(got, name);
        CHECKF(g != NULL, "%s: no tensor %s", got_path, name);
        if (!g) continue;
        CHECKF(g->type == w->type && g->n_dims == w->n_dims && g->size == w->size &&
                   memcmp(g->ne, w->ne, sizeof g->ne) == 0,
               "%s %s: type/shape differ (type %d vs %d)", got_path, name, g->type, w->type);
        if (g->size == w->size)
            CHECKF(memcmp(g->data, w->data, (size_t)g->size) == 0, "%s %s: bytes differ",
                   got_path, name);
    }
    uint32_t ft_got = 99, ft_want = 98;
    CHECK(gguf_get_u32(got, "general.file_type", &ft_got));
    CHECK(gguf_get_u32(want, "general.file_type", &ft_want));
    CHECKF(ft_got == ft_want, "%s: general.file_type %u, expected %u", got_path, ft_got, ft_want);
    /* Every key of the reference is there with the same type (values may differ only in
     * what llama-quantize adds, which the F32 file already has). */
    for (int64_t i = 0; i < gguf_n_kv(want); i++) {
        gguf_str k = gguf_kv_key(want, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.data);
        int64_t j = gguf_find_key(got, key);
        CHECKF(j >= 0, "%s: key %s missing", got_path, key);
    }
    gguf_close(got);
    gguf_close(want);
}

TEST(quants_cli_matches_llama_quantize) {
    const char *in = test_data_path("reference/ref-llama-F32.gguf");
    if (!test_file_exists(in)) {
        test_skip("%s missing", in);
        return;
    }
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const char *tn = celer_type_name(weight_types[ti]);
        char out[512], cmd[2048], ref[256];
        snprintf(out, sizeof out, "%s/quants-llama-%s.gguf", test_tmp_dir(), tn);
        snprintf(cmd, sizeof cmd, "\"%s\" quantize \"%s\" \"%s\" %s -t 2", test_celer_bin(), in,
                 out, tn);
        char *output = NULL;
        const int rc = test_run_cmd(cmd, &output, true);
        CHECKF(rc == 0, "%s -> exit %d: %s", cmd, rc, output ? output : "");
        free(output);
        if (rc != 0) continue;
        snprintf(ref, sizeof ref, "reference/ref-llama-%s.gguf", tn);
        check_same_tensors(out, test_data_path(ref));
        remove(out);
    }
}

/* Runs `celer quantize ARGS`, expects failure with `needle` in the output. */
static void expect_cli_error(const char *args, const char *needle) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "\"%s\" quantize %s", test_celer_bin(), args);
    char *output = NULL;
    const int rc = test_run_cmd(cmd, &output, true);
    CHECKF(rc != 0, "%s: exit 0", cmd);
    CHECKF(output && strstr(output, needle), "%s: output lacks '%s': %s", cmd, needle,
           output ? output : "(none)");
    free(output);
}

TEST(quants_cli_errors) {
    const char *in = test_data_path("reference/ref-llama-F32.gguf");
    const char *q4 = test_data_path("reference/ref-llama-Q4_0.gguf");
    if (!test_file_exists(in) || !test_file_exists(q4)) {
        test_skip("reference files missing");
        return;
    }
    char args[1536], out[512];
    snprintf(out, sizeof out, "%s/quants-err.gguf", test_tmp_dir());
    snprintf(args, sizeof args, "\"%s\" \"%s\" Q3_X", in, out);
    expect_cli_error(args, "unknown type 'Q3_X'");
    snprintf(args, sizeof args, "\"%s\" \"%s\" Q8_K", in, out);
    expect_cli_error(args, "activations only");
    snprintf(args, sizeof args, "\"%s/no-such-model.gguf\" \"%s\" Q8_0", test_tmp_dir(), out);
    expect_cli_error(args, "no-such-model.gguf: cannot open");
    snprintf(args, sizeof args, "\"%s\" \"%s/no-such-dir/out.gguf\" Q8_0", in, test_tmp_dir());
    expect_cli_error(args, "no-such-dir/out.gguf");
    snprintf(args, sizeof args, "\"%s\" \"%s\" Q8_0", q4, out);
    expect_cli_error(args, "already quantized (Q4_0)");
    snprintf(args, sizeof args, "\"%s\" \"%s\"", in, out);
    expect_cli_error(args, "missing arguments");
    snprintf(args, sizeof args, "\"%s\" \"%s\" Q8_0 -t 0", in, out);
    expect_cli_error(args, "invalid thread count");
    snprintf(args, sizeof args, "\"%s\" \"%s\" Q8_0 --bogus", in, out);
    expect_cli_error(args, "unknown option '--bogus'");
    CHECK(!test_file_exists(out)); /* nothing written by any failure */
}

TEST(quants_file_api_errors) {
    celer_error err = {0};
    char out[512];
    snprintf(out, sizeof out, "%s/quants-api.gguf", test_tmp_dir());
    const char *in = test_data_path("reference/ref-llama-F32.gguf");
    CHECK_EQ_INT(celer_quantize_file(in, out, CELER_TYPE_Q8_K, 1, &err), CELER_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "Q8_K") != NULL);
    CHECK_EQ_INT(celer_quantize_file(in, out, 3, 1, &err), CELER_ERR_INVALID_ARG);
    CHECK_EQ_INT(celer_quantize_file(in, out, 12345, 1, NULL), CELER_ERR_INVALID_ARG);
    CHECK_EQ_INT(celer_quantize_file(NULL, out, CELER_TYPE_Q8_0, 1, &err), CELER_ERR_INVALID_ARG);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.gguf", test_tmp_dir());
    CHECK_EQ_INT(celer_quantize_file(missing, out, CELER_TYPE_Q8_0, 1, &err), CELER_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "missing.gguf") != NULL);
    CHECK_EQ_INT(celer_quantize_file(missing, out, CELER_TYPE_Q8_0, 1, NULL), CELER_ERR_NOT_FOUND);
    const char *q6 = test_data_path("reference/ref-llama-Q6_K.gguf");
    if (test_file_exists(q6)) {
        CHECK_EQ_INT(celer_quantize_file(q6, out, CELER_TYPE_Q8_0, 1, &err), CELER_ERR_UNSUPPORTED);
        CHECK(strstr(err.message, "already quantized") != NULL);
    }
    CHECK(!test_file_exists(out));
}

/* Rows that do not fit the target's blocks fall back (Q8_0, else F16); 1-D tensors become
 * F32; F16/BF16 inputs are widened first; keys are copied and file_type set. */
TEST(quants_file_fallbacks_and_half_inputs) {
    enum { A0 = 96, A1 = 3, B0 = 40, B1 = 2, C0 = 256, C1 = 2, D0 = 512 };
    static float a[A0 * A1], b[B0 * B1], c[C0 * C1];
    static uint16_t c16[C0 * C1], d16[D0];
    rng r = {4242};
    for (int i = 0; i < A0 * A1; i++) a[i] = rng_normal(&r);
    for (int i = 0; i < B0 * B1; i++) b[i] = rng_normal(&r);
    for (int i = 0; i < C0 * C1; i++) {
        c16[i] = celer_fp32_to_bf16(rng_normal(&r));
        c[i] = celer_bf16_to_fp32(c16[i]);
    }
    for (int i = 0; i < D0; i++) d16[i] = celer_fp32_to_fp16(1.0f + 0.01f * (float)i);

    gguf_writer *w = gguf_writer_create();
    REQUIRE(w);
    CHECK(gguf_writer_set_str(w, "general.architecture", "llama") == CELER_OK);
    CHECK(gguf_writer_set_u32(w, "general.file_type", 32) == CELER_OK);
    CHECK(gguf_writer_set_f32(w, "some.float", 0.5f) == CELER_OK);
    const int64_t ne_a[2] = {A0, A1}, ne_b[2] = {B0, B1}, ne_c[2] = {C0, C1}, ne_d[1] = {D0};
    CHECK(gguf_writer_add_tensor(w, "a", CELER_TYPE_F32, 2, ne_a, a, sizeof a) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "b", CELER_TYPE_F32, 2, ne_b, b, sizeof b) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "c", CELER_TYPE_BF16, 2, ne_c, c16, sizeof c16) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "d", CELER_TYPE_F16, 1, ne_d, d16, sizeof d16) == CELER_OK);
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/quants-small-in.gguf", test_tmp_dir());
    snprintf(out, sizeof out, "%s/quants-small-out.gguf", test_tmp_dir());
    celer_error err = {0};
    REQUIREF(gguf_writer_write(w, in, &err) == CELER_OK, "%s", err.message);
    gguf_writer_free(w);

    REQUIREF(celer_quantize_file(in, out, CELER_TYPE_Q4_K, 3, &err) == CELER_OK, "%s",
             err.message);
    gguf_file *f = NULL;
    REQUIREF(gguf_open(out, &f, &err) == CELER_OK, "%s", err.message);
    uint32_t ft = 0;
    CHECK(gguf_get_u32(f, "general.file_type", &ft) && ft == 14);
    float fv = 0;
    CHECK(gguf_get_f32(f, "some.float", &fv) && fv == 0.5f);
    CHECK_EQ_INT(gguf_n_kv(f), 3);
    const gguf_tensor *ta = gguf_find_tensor(f, "a"), *tb = gguf_find_tensor(f, "b");
    const gguf_tensor *tc = gguf_find_tensor(f, "c"), *td = gguf_find_tensor(f, "d");
    REQUIRE(ta && tb && tc && td);
    CHECK_EQ_INT(ta->type, CELER_TYPE_Q8_0); /* 96: not a multiple of 256, is of 32 */
    CHECK_EQ_INT(tb->type, CELER_TYPE_F16);  /* 40: neither */
    CHECK_EQ_INT(tc->type, CELER_TYPE_Q4_K);
    CHECK_EQ_INT(td->type, CELER_TYPE_F32);
    CHECK(ta->ne[0] == A0 && ta->ne[1] == A1 && tc->ne[1] == C1 && td->n_dims == 1);
    static uint8_t buf[C0 * C1 * 4];
    for (int i = 0; i < A1; i++) ct_quantize_row(CELER_TYPE_Q8_0, a + i * A0, buf + i * 102, A0);
    CHECK(ta->size == 3 * 102 && memcmp(ta->data, buf, ta->size) == 0);
    ct_quantize_row(CELER_TYPE_F16, b, buf, B0 * B1);
    CHECK(tb->size == sizeof b / 2 && memcmp(tb->data, buf, tb->size) == 0);
    for (int i = 0; i < C1; i++) ct_quantize_row(CELER_TYPE_Q4_K, c + i * C0, buf + i * 144, C0);
    CHECK(tc->size == 2 * 144 && memcmp(tc->data, buf, tc->size) == 0);
    for (int i = 0; i < D0; i++) {
        float v;
        memcpy(&v, (const uint8_t *)td->data + 4 * i, 4);
        CHECK(v == celer_fp16_to_fp32(d16[i]));
        if (test_failed_now()) break;
    }
    gguf_close(f);
    remove(in);
    remove(out);
}
