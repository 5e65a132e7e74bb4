/* Core layer: status strings, half/bfloat conversions, thread pool. */
#include <stdatomic.h>

#include "core/fp16.h"
#include "core/threadpool.h"
#include "core/types.h"
#include "test.h"

TEST(core_status_strings) {
    CHECK(strcmp(celer_status_str(CELER_OK), "ok") == 0);
    CHECK(strcmp(celer_status_str(CELER_ERR_FORMAT), "malformed file") == 0);
    CHECK(celer_status_str((celer_status)-1234) != NULL);
}

TEST(core_type_table) {
    CHECK_EQ_INT(celer_row_size(CELER_TYPE_Q4_0, 64), 36);
    CHECK_EQ_INT(celer_row_size(CELER_TYPE_Q4_K, 512), 288);
    CHECK_EQ_INT(celer_row_size(CELER_TYPE_Q6_K, 256), 210);
    CHECK_EQ_INT(celer_row_size(CELER_TYPE_Q4_0, 33), 0);
    CHECK_EQ_INT(celer_type_from_name("q8_0"), CELER_TYPE_Q8_0);
    CHECK(celer_type_name(99) == NULL);
}

TEST(core_fp16_round_trip_exhaustive) {
    /* Every finite half converts to float and back unchanged. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        float f = celer_fp16_to_fp32((uint16_t)h);
        CHECKF(celer_fp32_to_fp16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f,
               celer_fp32_to_fp16(f));
        if (test_failed_now()) return;
    }
}

TEST(core_fp16_row_conversion_matches_scalar) {
    static uint16_t in[65536];
    static float out[65536];
    for (uint32_t h = 0; h < 65536; h++) in[h] = (uint16_t)h;
    celer_fp16_to_fp32_row(in, out, 65536);
    for (uint32_t h = 0; h < 65536; h++) {
        float want = celer_fp16_to_fp32((uint16_t)h);
        bool both_nan = want != want && out[h] != out[h];
        CHECKF(both_nan || memcmp(&want, &out[h], 4) == 0, "half 0x%04x: %g vs %g", h, want, out[h]);
        if (test_failed_now()) return;
    }
}

TEST(core_fp16_rounding) {
    /* Halfway cases round to even; tiny values flush to signed zero; big ones to inf. */
    CHECK_EQ_INT(celer_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);             /* tie -> even */
    CHECK_EQ_INT(celer_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);             /* tie -> even */
    CHECK_EQ_INT(celer_fp32_to_fp16(65520.0f), 0x7c00);
    CHECK_EQ_INT(celer_fp32_to_fp16(-1e-10f), 0x8000);
    CHECK_EQ_INT(celer_fp32_to_fp16(5.9604645e-08f), 0x0001);                 /* 2^-24 */
    CHECK_EQ_INT(celer_fp32_to_fp16(2.98023224e-08f), 0x0000);                /* 2^-25 tie -> 0 */
    CHECK_EQ_INT(celer_fp32_to_bf16(1.0f + 1.0f / 256), 0x3f80);              /* tie -> even */
    CHECK_EQ_INT(celer_fp32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    CHECK(celer_bf16_to_fp32(0x3f80) == 1.0f);
}

typedef struct pool_probe {
    atomic_int hits[8];
    atomic_long sum;
} pool_probe;

static void probe_fn(void *arg, int32_t ith, int32_t nth) {
    pool_probe *p = arg;
    atomic_fetch_add(&p->hits[ith], 1);
    atomic_fetch_add(&p->sum, nth);
}

TEST(core_threadpool_runs_every_thread_each_region) {
    for (int n = 1; n <= 3; n++) {
        celer_pool *pool = celer_pool_create(n);
        REQUIRE(pool);
        pool_probe probe;
        memset(&probe, 0, sizeof probe);
        for (int r = 0; r < 300; r++) celer_pool_run(pool, probe_fn, &probe);
        for (int i = 0; i < n; i++) CHECK_EQ_INT(atomic_load(&probe.hits[i]), 300);
        CHECK_EQ_INT(atomic_load(&probe.sum), 300L * n * n);
        celer_pool_free(pool);
    }
    CHECK(celer_physical_cores() >= 1);
}

typedef struct split_probe {
    celer_segment seg[4];
    int32_t n_seg, n_items;
    atomic_int taken[1000];
    atomic_int in_order[4]; /* items a thread took from its own segment in ascending order */
} split_probe;

static void split_fn(void *arg, int32_t ith, int32_t nth) {
    split_probe *p = arg;
    int32_t last = -1;
    for (int32_t c; (c = celer_split_next(p->seg, p->n_seg, ith)) >= 0;) {
        atomic_fetch_add(&p->taken[c], 1);
        if (c == last + 1 || last < 0) atomic_fetch_add(&p->in_order[ith], 1);
        last = c;
    }
}

/* Every item is handed out exactly once, with any number of threads taking from any number of
 * segments (a lone thread drains them all); a thread's own items come as one ascending run. */
TEST(core_split_hands_out_each_item_once) {
    static split_probe p;
    const int32_t counts[] = {0, 1, 3, 17, 1000};
    for (int n = 1; n <= 4; n++) {
        celer_pool *pool = celer_pool_create(n);
        REQUIRE(pool);
        for (int ci = 0; ci < 5; ci++)
            for (int r = 0; r < 20; r++) {
                memset(&p, 0, sizeof p);
                p.n_seg = n, p.n_items = counts[ci];
                celer_split_init(p.seg, n, p.n_items);
                celer_pool_run(pool, split_fn, &p);
                for (int32_t i = 0; i < p.n_items; i++) CHECKF(atomic_load(&p.taken[i]) == 1, "item %d", (int)i);
            }
        celer_pool_free(pool);
    }
    memset(&p, 0, sizeof p);
    p.n_seg = 4, p.n_items = 100;
    celer_split_init(p.seg, 4, 100);
    split_fn(&p, 2, 1); /* one thread, not the first, drains every segment */
    for (int32_t i = 0; i < 100; i++) CHECK_EQ_INT(atomic_load(&p.taken[i]), 1);
    CHECK(atomic_load(&p.in_order[2]) >= 25);
}
