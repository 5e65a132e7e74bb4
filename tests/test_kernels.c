/* SIMD kernel sets against the scalar reference (src/tensor/ref.c): mul_mat and vec_dot for
 * every weight type at awkward lengths and every batch size 1..17, row sub-ranges, and the
 * activation quantizers byte for byte. */
#include <math.h>

#include "core/fp16.h"
#include "core/types.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_util.h"

static uint64_t kt_rng = 0x9e3779b97f4a7c15ull;

static float kt_uniform(void) { return tu_uniform(&kt_rng); }

static void kt_fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * kt_uniform();
}

static const int32_t kt_weight_types[] = {CELER_TYPE_F32,  CELER_TYPE_F16,  CELER_TYPE_BF16,
                                          CELER_TYPE_Q8_0, CELER_TYPE_Q4_0, CELER_TYPE_Q4_K,
                                          CELER_TYPE_Q5_K, CELER_TYPE_Q6_K};
#define KT_NTYPES ((int)(sizeof kt_weight_types / sizeof kt_weight_types[0]))

/* Row lengths to test: 1, 3 and 33 blocks for 32-element blocks; 1..5 super-blocks for
 * K-quants; odd lengths for the plain float types. */
static int kt_lengths(int32_t type, int64_t *len) {
    int64_t bs = celer_type_get(type)->block_size;
    if (bs == 1) {
        const int64_t l[] = {1, 3, 17, 33, 100, 515, 4133};
        memcpy(len, l, sizeof l);
        return 7;
    }
    if (bs == 32) {
        /* 201 blocks: longer than one prepared span of the AVX-512 kernels */
        len[0] = 32, len[1] = 96, len[2] = 33 * 32, len[3] = 17 * 32, len[4] = 201 * 32;
        return 5;
    }
    for (int i = 0; i < 5; i++) len[i] = (i + 1) * bs;
    len[5] = 27 * bs; /* several spans */
    return 6;
}

typedef struct {
    int32_t type, atype;
    int64_t n;
    int rows, kmax;
    size_t wrow, arow;
    void *w, *a;         /* quantized weight rows, activation rows in the vec_dot type */
    float *bound;        /* per (t, r): 1e-5-ish tolerance scale: sum |w*a| */
    float *want;         /* reference results [t * rows + r] */
} kt_case;

/* Allowed |got - want| / sum|w*a| per weight type: integer dot products are exact, so only
 * float summation order (and vdpbf16ps's fp32 pair sums) can differ. */
static double kt_tolerance(int32_t type) {
    (void)type;
    return 1e-5;
}

static bool kt_case_init(kt_case *c, int32_t type, int64_t n, int rows, int kmax) {
    memset(c, 0, sizeof *c);
    c->type = type;
    c->atype = ct_vec_dot_type(type);
    c->n = n, c->rows = rows, c->kmax = kmax;
    c->wrow = celer_row_size(type, n);
    c->arow = celer_row_size(c->atype, n);
    float *x = malloc(sizeof(float) * (size_t)n), *wf = malloc(sizeof(float) * (size_t)n * rows),
          *af = malloc(sizeof(float) * (size_t)n * kmax);
    c->w = malloc(c->wrow * rows);
    c->a = malloc(c->arow * kmax);
    c->bound = malloc(sizeof(float) * (size_t)rows * kmax);
    c->want = malloc(sizeof(float) * (size_t)rows * kmax);
    if (!x || !wf || !af || !c->w || !c->a || !c->bound || !c->want) return false;
    const ct_kernels *ref = ct_kernels_reference();
    for (int r = 0; r < rows; r++) {
        /* vary magnitudes per row so scales differ between rows and blocks */
        kt_fill(x, n, 0.05f + (float)r);
        ct_quantize_row(type, x, (char *)c->w + c->wrow * r, n);
        ct_to_float(type, (char *)c->w + c->wrow * r, wf + n * r, n);
    }
    for (int t = 0; t < kmax; t++) {
        kt_fill(x, n, 0.5f + 0.25f * (float)t);
        if (t % 3 == 1) x[(t * 7) % n] = 20.0f; /* an outlier, like real activations */
        ref->quantize_act[c->atype](x, (char *)c->a + c->arow * t, n);
        ct_to_float(c->atype, (char *)c->a + c->arow * t, af + n * t, n);
    }
    for (int t = 0; t < kmax; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += fabs((double)wf[n * r + i] * af[n * t + i]);
            c->bound[t * rows + r] = (float)s;
            ref->vec_dot[type](n, &c->want[t * rows + r], (char *)c->w + c->wrow * r,
                               (char *)c->a + c->arow * t);
        }
    free(x), free(wf), free(af);
    return true;
}

static void kt_case_free(kt_case *c) {
    free(c->w), free(c->a), free(c->bound), free(c->want);
}

static bool kt_close(const kt_case *c, float got, int t, int r) {
    double want = c->want[t * c->rows + r];
    double tol = kt_tolerance(c->type) * c->bound[t * c->rows + r] + 1e-30;
    return isfinite(got) && fabs((double)got - want) <= tol;
}

/* mul_mat of one set for every k in 1..kmax over rows [r0, r1) of c, with ld > rows and a
 * sentinel in every slot the call must not write. Returns the number of mismatches. */
static int kt_check_mul_mat(const ct_kernels *ks, const kt_case *c, int r0, int r1) {
    const int64_t ld = c->rows + 3;
    const float sentinel = -12345.5f;
    float *out = malloc(sizeof(float) * (size_t)ld * c->kmax);
    int bad = 0;
    for (int k = 1; k <= c->kmax && bad < 5; k++) {
        for (int64_t i = 0; i < ld * c->kmax; i++) out[i] = sentinel;
        ks->mul_mat[c->type](c->n, c->w, c->wrow, r0, r1, c->a, c->arow, k, out, ld);
        for (int t = 0; t < c->kmax; t++)
            for (int64_t r = 0; r < ld; r++) {
                float got = out[t * ld + r];
                bool inside = t < k && r >= r0 && r < r1;
                bool ok = inside ? kt_close(c, got, t, (int)r) : got == sentinel;
                if (!ok && bad++ < 5)
                    test_fail_at(__FILE__, __LINE__,
                                 "%s %s n=%lld rows [%d,%d) k=%d: out[t=%d][r=%lld] = %.9g, want %s%.9g "
                                 "(sum|w*a| %.6g)",
                                 ks->name, celer_type_name(c->type), (long long)c->n, r0, r1, k, t,
                                 (long long)r, got, inside ? "" : "untouched ",
                                 inside ? c->want[t * c->rows + r] : sentinel,
                                 inside ? c->bound[t * c->rows + r] : 0.0f);
            }
    }
    free(out);
    return bad;
}

static int kt_sets(const ct_kernels **sets) {
    int n = ct_kernels_available(sets, 8);
    return n < 8 ? n : 8;
}

TEST(kernels_available_and_best) {
    const ct_kernels *sets[8];
    int n = kt_sets(sets);
    REQUIRE(n >= 1);
    CHECK(sets[0] == ct_kernels_reference());
    const ct_kernels *best = ct_kernels_best();
    REQUIRE(best != NULL);
    bool listed = false;
    for (int i = 0; i < n; i++) {
        listed |= sets[i] == best;
        REQUIRE(sets[i]->name != NULL);
        for (int j = 0; j < KT_NTYPES; j++) {
            int32_t t = kt_weight_types[j];
            CHECKF(sets[i]->vec_dot[t] && sets[i]->mul_mat[t], "%s lacks %s", sets[i]->name,
                   celer_type_name(t));
            CHECK(sets[i]->quantize_act[ct_vec_dot_type(t)] != NULL);
        }
    }
    CHECK(listed);
    CHECK(ct_kernels_best() == best); /* stable: a pointer to a const table */
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        CHECK(strcmp(best->name, "avx512-vnni") == 0);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK(strcmp(best->name, "avx2") == 0);
#endif
}

/* Every set, every type, awkward lengths, k = 1..17, 37 rows (not a multiple of any unroll;
 * two whole groups of 16 rows and a partial one for kernels that put rows in lanes). */
TEST(kernels_mul_mat_vs_reference) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    for (int ti = 0; ti < KT_NTYPES; ti++) {
        int64_t len[8];
        int nl = kt_lengths(kt_weight_types[ti], len);
        for (int li = 0; li < nl; li++) {
            kt_case c;
            REQUIRE(kt_case_init(&c, kt_weight_types[ti], len[li], 37, 17));
            for (int s = 0; s < nsets; s++) kt_check_mul_mat(sets[s], &c, 0, c.rows);
            kt_case_free(&c);
        }
    }
}

/* A set's shared activation preparation (prep + mul_mat_prepped, what the engine uses so that
 * a product's work items share one layout) gives mul_mat's results bit for bit: every type
 * that has one, awkward lengths, k = 1..17 and 32, 33 (three groups of rows), row sub-ranges,
 * the preparation made in two row ranges. */
TEST(kernels_mul_mat_prepped_equals_mul_mat) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets), checked = 0;
    const int ks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 32, 33};
    for (int ti = 0; ti < KT_NTYPES; ti++) {
        const int32_t type = kt_weight_types[ti];
        int64_t len[8];
        int nl = kt_lengths(type, len);
        for (int li = 0; li < nl; li++) {
            kt_case c;
            REQUIRE(kt_case_init(&c, type, len[li], 7, 33));
            for (int s = 0; s < nsets; s++) {
                const ct_kernels *K = sets[s];
                if (!K->prep[type]) continue;
                REQUIRE(K->prep_size[type] && K->mul_mat_prepped[type]);
                const size_t bytes = (K->prep_size[type](c.n, 33) + 63) & ~(size_t)63;
                void *buf = aligned_alloc(64, bytes);
                float *want = calloc((size_t)c.rows * 33, sizeof(float)), *got = calloc((size_t)c.rows * 33, sizeof(float));
                REQUIRE(buf && want && got);
                for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                    const int k = ks[ki], r0 = ki % 2, r1 = c.rows - (int)(ki % 3);
                    K->mul_mat[type](c.n, c.w, c.wrow, r0, r1, c.a, c.arow, k, want, c.rows);
                    /* in two row ranges, as two threads would lay them out; nothing left over
                     * from the previous k may make up for a place they miss */
                    memset(buf, 0x5a, bytes);
                    K->prep[type](c.n, c.a, c.arow, k, k / 3, k, buf);
                    K->prep[type](c.n, c.a, c.arow, k, 0, k / 3, buf);
                    K->mul_mat_prepped[type](c.n, c.w, c.wrow, r0, r1, buf, k, got, c.rows);
                    for (int t = 0; t < k; t++)
                        if (memcmp(want + (size_t)t * c.rows + r0, got + (size_t)t * c.rows + r0,
                                   sizeof(float) * (size_t)(r1 - r0)))
                            test_fail_at(__FILE__, __LINE__, "%s %s n=%lld k=%d: activation row %d differs",
                                         K->name, celer_type_name(type), (long long)c.n, k, t);
                }
                checked++;
                free(buf), free(want), free(got);
            }
            kt_case_free(&c);
        }
    }
    printf("    %d (set, type, length) cases with a shared preparation\n", checked);
}

/* Row sub-ranges write exactly their rows (and one-row ranges work). */
TEST(kernels_mul_mat_subrange) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    for (int ti = 0; ti < KT_NTYPES; ti++) {
        int32_t type = kt_weight_types[ti];
        int64_t n = celer_type_get(type)->block_size == 1 ? 77 : 2 * QK_K;
        kt_case c;
        REQUIRE(kt_case_init(&c, type, n, 9, 9));
        for (int s = 0; s < nsets; s++) {
            kt_check_mul_mat(sets[s], &c, 2, 7);
            kt_check_mul_mat(sets[s], &c, 8, 9);
            kt_check_mul_mat(sets[s], &c, 0, 1);
            kt_check_mul_mat(sets[s], &c, 4, 4); /* empty: writes nothing */
        }
        kt_case_free(&c);
    }
}

/* One (weight row, activation row) result must not depend on the batch it is computed in:
 * batched decoding must give bit for bit the logits of single steps. For every set and type:
 * k = 1 on each activation row alone is the baseline; every k = 2..17 over rows starting at
 * 0 and at 1, and several row ranges, must reproduce it exactly (memcmp). */
static void kt_check_invariant(const ct_kernels *ks, const kt_case *c) {
    const int rows = c->rows, kmax = c->kmax;
    const int64_t ld = rows + 1;
    float *single = malloc(sizeof(float) * (size_t)rows * kmax);
    float *out = malloc(sizeof(float) * (size_t)ld * kmax);
    float *col = malloc(sizeof(float) * (size_t)rows);
    if (!single || !out || !col) {
        test_fail_at(__FILE__, __LINE__, "out of memory");
        free(single), free(out), free(col);
        return;
    }
    ct_mul_mat_fn mm = ks->mul_mat[c->type];
    for (int t = 0; t < kmax; t++) {
        mm(c->n, c->w, c->wrow, 0, rows, (char *)c->a + c->arow * t, c->arow, 1, col, rows);
        memcpy(single + (size_t)t * rows, col, sizeof(float) * (size_t)rows);
    }
    int bad = 0;
    /* every batch size, starting at activation row 0 and 1 (different neighbours) */
    for (int first = 0; first < 2; first++)
        for (int k = 2; k + first <= kmax; k++) {
            mm(c->n, c->w, c->wrow, 0, rows, (char *)c->a + c->arow * first, c->arow, k, out, ld);
            for (int t = 0; t < k; t++)
                if (memcmp(out + (int64_t)t * ld, single + (size_t)(t + first) * rows,
                           sizeof(float) * (size_t)rows) != 0 && bad++ < 3)
                    test_fail_at(__FILE__, __LINE__, "%s %s n=%lld: k=%d (from row %d) row t=%d "
                                 "differs from k=1", ks->name, celer_type_name(c->type),
                                 (long long)c->n, k, first, t);
        }
    /* row ranges as thread splits make them, and odd ones */
    const int splits[][2] = {{0, 4}, {4, rows}, {0, 1}, {1, 2}, {3, 10}, {rows - 1, rows}, {5, 8}, {17, rows - 2}};
    for (int si = 0; si < (int)(sizeof splits / sizeof splits[0]); si++) {
        const int r0 = splits[si][0], r1 = splits[si][1];
        for (int k = 1; k <= kmax; k += 5) {
            mm(c->n, c->w, c->wrow, r0, r1, c->a, c->arow, k, out, ld);
            for (int t = 0; t < k; t++)
                if (memcmp(out + (int64_t)t * ld + r0, single + (size_t)t * rows + r0,
                           sizeof(float) * (size_t)(r1 - r0)) != 0 && bad++ < 3)
                    test_fail_at(__FILE__, __LINE__, "%s %s n=%lld: rows [%d,%d) k=%d row t=%d "
                                 "differs from k=1 over all rows", ks->name,
                                 celer_type_name(c->type), (long long)c->n, r0, r1, k, t);
        }
    }
    free(single), free(out), free(col);
}

TEST(kernels_mul_mat_batch_invariant) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    for (int ti = 0; ti < KT_NTYPES; ti++) {
        const int32_t type = kt_weight_types[ti];
        const int64_t bs = celer_type_get(type)->block_size;
        /* one short row, and one longer than a prepared span (several spans, partial tiles) */
        const int64_t lens[2] = {bs == 1 ? 77 : bs == 32 ? 5 * 32 : 3 * QK_K,
                                 bs == 1 ? 4133 : bs == 32 ? 201 * 32 : 27 * QK_K};
        for (int li = 0; li < 2; li++) {
            kt_case c;
            /* 37 rows: row ranges that start and end inside groups of 16 */
            REQUIRE(kt_case_init(&c, type, lens[li], 37, 17));
            for (int s = 0; s < nsets; s++) kt_check_invariant(sets[s], &c);
            kt_case_free(&c);
        }
    }
}

TEST(kernels_vec_dot_vs_reference) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    for (int ti = 0; ti < KT_NTYPES; ti++) {
        int64_t len[8];
        int nl = kt_lengths(kt_weight_types[ti], len);
        for (int li = 0; li < nl; li++) {
            kt_case c;
            REQUIRE(kt_case_init(&c, kt_weight_types[ti], len[li], 3, 2));
            for (int s = 0; s < nsets; s++)
                for (int r = 0; r < c.rows; r++)
                    for (int t = 0; t < c.kmax; t++) {
                        float got = NAN;
                        sets[s]->vec_dot[c.type](c.n, &got, (char *)c.w + c.wrow * r,
                                                 (char *)c.a + c.arow * t);
                        CHECKF(kt_close(&c, got, t, r), "%s vec_dot %s n=%lld: %.9g want %.9g",
                               sets[s]->name, celer_type_name(c.type), (long long)c.n, got,
                               c.want[t * c.rows + r]);
                    }
            kt_case_free(&c);
        }
    }
}

/* Inputs that stress the quantizers: zeros, ties in magnitude of both signs, tiny and huge
 * values, negative zero, and (for the float conversions) NaN and infinities. */
static void kt_act_input(float *x, int64_t n, int variant, bool specials) {
    kt_fill(x, n, variant == 1 ? 1e-3f : variant == 2 ? 300.0f : 2.0f);
    if (variant == 3) {
        for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(x[i] * 8)) / 8; /* many ties */
        if (n > 40) x[3] = 5.0f, x[40] = -5.0f;
    }
    if (variant == 4) memset(x, 0, sizeof(float) * (size_t)(n < 256 ? n : 256)); /* zero blocks */
    if (variant == 5 && n > 8) {
        x[0] = -0.0f, x[1] = 1e-40f, x[2] = -3e-39f, x[3] = 6.0e-8f, x[4] = 65519.0f;
        x[5] = 65520.0f, x[6] = 1e6f;
        if (specials) x[7] = NAN, x[8] = -INFINITY;
    }
}

TEST(kernels_quantize_act_bytes_identical) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    const ct_kernels *ref = ct_kernels_reference();
    const int32_t types[] = {CELER_TYPE_F32, CELER_TYPE_F16, CELER_TYPE_BF16, CELER_TYPE_Q8_0,
                             CELER_TYPE_Q8_K};
    for (int ti = 0; ti < 5; ti++) {
        int32_t type = types[ti];
        bool q = type == CELER_TYPE_Q8_0 || type == CELER_TYPE_Q8_K;
        int64_t bs = celer_type_get(type)->block_size;
        const int64_t lens[] = {bs, 3 * bs, 17 * bs, q ? 5 * bs : 31};
        for (int li = 0; li < 4; li++) {
            int64_t n = lens[li];
            size_t sz = celer_row_size(type, n);
            float *x = malloc(sizeof(float) * (size_t)n);
            unsigned char *want = malloc(sz), *got = malloc(sz);
            REQUIRE(x && want && got);
            for (int v = 0; v < 6; v++) {
                kt_act_input(x, n, v, !q);
                ref->quantize_act[type](x, want, n);
                for (int s = 0; s < nsets; s++) {
                    memset(got, 0xa5, sz);
                    sets[s]->quantize_act[type](x, got, n);
                    size_t i = 0;
                    while (i < sz && got[i] == want[i]) i++;
                    CHECKF(i == sz, "%s quantize_act %s n=%lld variant %d: byte %zu differs",
                           sets[s]->name, celer_type_name(type), (long long)n, v, i);
                }
            }
            free(x), free(want), free(got);
        }
    }
}

/* SwiGLU gating against the reference, including large |x| (exp clamps); and an element's
 * result does not depend on where the array starts (threads split it anywhere). */
TEST(kernels_swiglu_vs_reference_and_split) {
    const ct_kernels *sets[8];
    int nsets = kt_sets(sets);
    enum { N = 1003 };
    static float g0[N], up[N], want[N], whole[N], part[N];
    for (int i = 0; i < N; i++) g0[i] = 20.0f * kt_uniform(), up[i] = kt_uniform();
    g0[0] = -100.0f, g0[1] = 100.0f, g0[2] = 0.0f, g0[3] = -88.5f, g0[4] = 89.0f;
    memcpy(want, g0, sizeof g0);
    ct_kernels_reference()->swiglu(want, up, N);
    for (int s = 0; s < nsets; s++) {
        memcpy(whole, g0, sizeof g0);
        sets[s]->swiglu(whole, up, N);
        for (int i = 0; i < N; i++)
            CHECKF(fabsf(whole[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i])), "%s [%d] %g: %g vs %g",
                   sets[s]->name, i, g0[i], whole[i], want[i]);
        const int cuts[] = {1, 5, 13, 500};
        for (int c = 0; c < 4; c++) {
            memcpy(part, g0, sizeof g0);
            sets[s]->swiglu(part, up, cuts[c]);
            sets[s]->swiglu(part + cuts[c], up + cuts[c], N - cuts[c]);
            CHECKF(memcmp(part, whole, sizeof part) == 0, "%s: split at %d changes results", sets[s]->name, cuts[c]);
        }
    }
}
