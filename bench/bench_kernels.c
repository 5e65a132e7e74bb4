/*
 * bench_kernels: single-thread throughput of every available kernel set's mul_mat, per weight
 * type, for batches of k = 1, 2, 4, 8, 16 activation rows, on a TinyLlama-sized matrix
 * (2048 rows x 5632 columns, the ffn_down shape).
 *
 *   build/bench/bench_kernels [--quick] [--small-pages] [--rows N] [--cols N] [--sets NAME,...] [--types NAME,...]
 *
 * Two working sets: "hot" reuses one matrix (it fits the L2/L3 caches), "cold" cycles through
 * enough copies (~256 MiB) that weights stream from DRAM, as in a real forward pass. The
 * copies ask for 2 MiB pages (madvise), as Linux 6.18 maps a model file's page cache on ext4:
 * on 4 KiB pages long rows from DRAM ran up to 1.36x slower (Q4_0 2048 x 5632, k=8, Zen 5),
 * which a model never saw there; --small-pages keeps malloc's pages (as a model file's on
 * kernels that map page cache with small pages).
 * GB/s counts weight bytes read per second; "k/k1" is the time of a k-row batch relative to
 * one row (the cost of verifying k draft tokens vs decoding one). Times are medians.
 * Then the attention kernels: ns per cached row for 8, 16 and 64 queries (one, two or eight
 * tokens' query heads of a TinyLlama KV group), F16 and F32 caches.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "celer.h"
#include "core/types.h"
#include "tensor/tensor.h"

/* columns: 5632 by default (ffn_down); --cols 2048 gives the other TinyLlama products */
static int COLS = 5632;
/* weight rows: 2048 by default; --rows 256 keeps the "hot" matrix in L2 (pure compute) */
static int g_rows = 2048;

#define KMAX 16
#define MAX_RUNS_ATT 4000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static bool listed(const char *list, const char *name) {
    if (!list) return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return true;
    return false;
}

/* bytes for one weight copy: on 2 MiB pages where the kernel grants them, unless small */
#define HUGE_PAGE ((size_t)2 << 20)
static void *alloc_weights(size_t bytes, bool small_pages) {
    if (small_pages) return malloc(bytes);
    const size_t size = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, size);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, size, MADV_HUGEPAGE); /* a hint: without it, small pages */
#endif
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Attention of nq queries (head dim 64) over nk rows of a cache laid out like a TinyLlama
 * context (rows 256 elements apart): the median CPU time of calls within `budget` seconds. */
static double time_attention(const ct_kernels *ks, int nq, int nk, int f16, double budget) {
    enum { HD = 64, STRIDE = 256 };
    float *k = malloc(sizeof(float) * (size_t)nk * STRIDE), *v = malloc(sizeof(float) * (size_t)nk * STRIDE);
    float *q = malloc(sizeof(float) * CT_ATTN_LANES * HD), *o = malloc(sizeof(float) * CT_ATTN_LANES * HD);
    uint16_t *k16 = malloc(2 * (size_t)nk * STRIDE), *v16 = malloc(2 * (size_t)nk * STRIDE);
    uint64_t *vis = malloc(sizeof(uint64_t) * (size_t)nk);
    float *scratch = malloc(sizeof(float) * ct_attn_scratch_floats(HD, nk));
    if (!k || !v || !q || !o || !k16 || !v16 || !vis || !scratch) exit(1);
    for (size_t i = 0; i < (size_t)nk * STRIDE; i++) {
        k[i] = frand(), v[i] = frand();
        k16[i] = v16[i] = 0x3800; /* 0.5 */
    }
    for (int i = 0; i < CT_ATTN_LANES * HD; i++) q[i] = frand();
    for (int r = 0; r < nk; r++) vis[r] = nq >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nq) - 1;
    ct_attn a = {.hd = HD, .nq = nq, .nk = nk, .kv_stride = STRIDE, .kv_f16 = f16, .vis = vis,
                 .scale = 0.125f, .scratch = scratch};
    a.k = f16 ? (const void *)k16 : (const void *)k;
    a.v = f16 ? (const void *)v16 : (const void *)v;
    for (int i = 0; i < nq; i++) a.q[i] = q + i * HD, a.out[i] = o + i * HD;
    static double t[MAX_RUNS_ATT];
    int n = 0;
    for (double start = now_s(); n < MAX_RUNS_ATT && (n < 5 || now_s() - start < budget); n++) {
        double t0 = now_s();
        ks->attention(&a);
        t[n] = now_s() - t0;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    free(k), free(v), free(q), free(o), free(k16), free(v16), free(vis), free(scratch);
    return t[n / 2];
}

static void bench_attention(const ct_kernels *ks, double budget) {
    printf("%-12s attention, ns per cached row (head dim 64):", ks->name);
    const int nqs[3] = {8, 16, 64}, nks[2] = {128, 512};
    for (int f16 = 1; f16 >= 0; f16--)
        for (int qi = 0; qi < 3; qi++)
            for (int ki = 0; ki < 2; ki++)
                printf("  %s q%d r%d %.1f", f16 ? "f16" : "f32", nqs[qi], nks[ki],
                       time_attention(ks, nqs[qi], nks[ki], f16, budget) * 1e9 / nks[ki]);
    printf("\n");
}

/* CPU seconds of this thread (the machine is shared: wall time would count others' load)
 * per mul_mat call over all rows: the median of the timed runs (at least 5, cycling through
 * the copies) within the time budget. */
#define MAX_RUNS 2000
static double time_mul_mat(const ct_kernels *ks, int32_t type, char *const *mats, int ncopies,
                           size_t wrow, const void *act, size_t arow, int k, float *out,
                           double budget) {
    static double runs[MAX_RUNS];
    ct_mul_mat_fn mm = ks->mul_mat[type];
    mm(COLS, mats[0], wrow, 0, g_rows, act, arow, k, out, g_rows); /* warm-up */
    double spent = 0;
    int it = 0;
    while ((spent < budget || it < 5) && it < MAX_RUNS) {
        double t0 = now_s();
        mm(COLS, mats[it % ncopies], wrow, 0, g_rows, act, arow, k, out, g_rows);
        runs[it] = now_s() - t0;
        spent += runs[it++];
    }
    qsort(runs, (size_t)it, sizeof runs[0], cmp_double);
    return runs[it / 2];
}

int main(int argc, char **argv) {
    bool quick = false, small_pages = false;
    const char *set_list = NULL, *type_list = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--small-pages")) small_pages = true;
        else if (!strcmp(argv[i], "--sets") && i + 1 < argc) set_list = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) type_list = argv[++i];
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc) g_rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc) COLS = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--small-pages] [--rows N] [--cols N] [--sets NAME,...] [--types NAME,...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (g_rows < 1 || COLS < 256 || COLS % 256) {
        fprintf(stderr, "--rows must be positive, --cols a positive multiple of 256\n");
        return 2;
    }
    const double budget = quick ? 0.05 : 0.25;
    const int32_t types[] = {CELER_TYPE_Q4_0, CELER_TYPE_Q8_0, CELER_TYPE_Q4_K, CELER_TYPE_Q5_K,
                             CELER_TYPE_Q6_K, CELER_TYPE_F16,  CELER_TYPE_BF16, CELER_TYPE_F32};
    const int ks[] = {1, 2, 4, 8, 16};
    const ct_kernels *sets[8];
    int nsets = ct_kernels_available(sets, 8);
    if (nsets > 8) nsets = 8;

    float *x = malloc(sizeof(float) * COLS * KMAX);
    float *out = malloc(sizeof(float) * g_rows * KMAX);
    if (!x || !out) return 1;
    for (int i = 0; i < COLS * KMAX; i++) x[i] = frand();

    printf("mul_mat %d x %d, single thread, cold copies on %s pages; GB/s of weights (time k / time k=1)\n",
           g_rows, COLS, small_pages ? "malloc's" : "2 MiB (asked)");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int32_t type = types[ti];
        if (!listed(type_list, celer_type_name(type))) continue;
        const int32_t atype = ct_vec_dot_type(type);
        const size_t wrow = celer_row_size(type, COLS), arow = celer_row_size(atype, COLS);
        const size_t wbytes = wrow * g_rows;
        /* synthetic weights: one quantized random row repeated (kernels never look at values) */
        int ncopies = (int)((256u << 20) / wbytes) + 1;
        char **mats = malloc(sizeof(char *) * (size_t)ncopies);
        char *row = malloc(wrow);
        ct_quantize_row(type, x, row, COLS);
        for (int c = 0; c < ncopies; c++) {
            mats[c] = alloc_weights(wbytes, small_pages);
            if (!mats[c]) return 1;
            for (int r = 0; r < g_rows; r++) memcpy(mats[c] + (size_t)r * wrow, row, wrow);
        }
        char *act = malloc(arow * KMAX);
        for (int s = 0; s < nsets; s++) {
            const ct_kernels *kset = sets[s];
            if (!listed(set_list, kset->name)) continue;
            if (!set_list && !strcmp(kset->name, "reference") && type != CELER_TYPE_Q4_0) continue;
            for (int t = 0; t < KMAX; t++)
                kset->quantize_act[atype](x + (size_t)t * COLS, act + (size_t)t * arow, COLS);
            for (int mode = 0; mode < 2; mode++) {
                int nc = mode == 0 ? 1 : ncopies;
                printf("%-12s %-5s %-4s", kset->name, celer_type_name(type), mode ? "cold" : "hot");
                double t1 = 0;
                for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                    double dt = time_mul_mat(kset, type, mats, nc, wrow, act, arow, ks[ki], out,
                                             strcmp(kset->name, "reference") ? budget : 0.0);
                    if (ki == 0) t1 = dt;
                    printf("  k=%-2d %6.2f GB/s (%4.2fx)", ks[ki], (double)wbytes / dt / 1e9, dt / t1);
                }
                printf("\n");
                fflush(stdout);
            }
        }
        for (int c = 0; c < ncopies; c++) free(mats[c]);
        free(mats), free(row), free(act);
    }
    free(x), free(out);
    for (int s = 0; s < nsets; s++)
        if (listed(set_list, sets[s]->name)) bench_attention(sets[s], quick ? 0.05 : 0.3);
    return 0;
}
