/* Attention kernels (src/tensor/attention_*.c): every SIMD set against the scalar reference
 * for awkward head sizes, row counts, query counts, masks and both cache types; and the
 * batch invariance the batched forward pass relies on: a query alone gives bit for bit what
 * it gives in any lane of a full call over more rows. */
#include <math.h>

#include "core/fp16.h"
#include "tensor/tensor.h"
#include "test.h"
#include "test_util.h"

static uint64_t at_rng = 0x2545f4914f6cdd1dull;

static float at_uniform(void) { return tu_uniform(&at_rng); }

#define AT_MAX_HD 128
#define AT_MAX_NK 200
#define AT_STRIDE (AT_MAX_HD + 3) /* row stride in elements: rows are not packed */

typedef struct at_case {
    int32_t hd, nk, nq, f16;
    float q[CT_ATTN_LANES][AT_MAX_HD];
    float k32[AT_MAX_NK * AT_STRIDE], v32[AT_MAX_NK * AT_STRIDE];
    uint16_t k16[AT_MAX_NK * AT_STRIDE], v16[AT_MAX_NK * AT_STRIDE];
    uint64_t vis[AT_MAX_NK];
} at_case;

/* Random queries and rows (scores large enough that the softmax is far from uniform), and a
 * random mask in which every query sees at least its last row. */
static void at_fill(at_case *c, int32_t hd, int32_t nk, int32_t nq, int32_t f16) {
    c->hd = hd, c->nk = nk, c->nq = nq, c->f16 = f16;
    for (int i = 0; i < nq; i++)
        for (int d = 0; d < hd; d++) c->q[i][d] = 3.0f * at_uniform();
    for (int i = 0; i < nk * AT_STRIDE; i++) {
        c->k16[i] = celer_fp32_to_fp16(at_uniform());
        c->v16[i] = celer_fp32_to_fp16(at_uniform());
        c->k32[i] = celer_fp16_to_fp32(c->k16[i]);
        c->v32[i] = celer_fp16_to_fp32(c->v16[i]);
    }
    const uint64_t lanes = nq >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nq) - 1;
    for (int r = 0; r < nk; r++) {
        at_uniform();
        c->vis[r] = at_rng & lanes;
    }
    for (int i = 0; i < nq; i++) c->vis[nk - 1 - (i % nk)] |= (uint64_t)1 << i;
}

static void at_run(const ct_kernels *ks, const at_case *c, float out[][AT_MAX_HD], float *scratch) {
    ct_attn a = {.hd = c->hd, .nq = c->nq, .nk = c->nk, .kv_stride = AT_STRIDE, .kv_f16 = c->f16,
                 .vis = c->vis, .scale = 1.0f / sqrtf((float)c->hd), .scratch = scratch};
    a.k = c->f16 ? (const void *)c->k16 : (const void *)c->k32;
    a.v = c->f16 ? (const void *)c->v16 : (const void *)c->v32;
    for (int i = 0; i < c->nq; i++) a.q[i] = c->q[i], a.out[i] = out[i];
    ks->attention(&a);
}

static int at_sets(const ct_kernels **sets) { return ct_kernels_available(sets, 8); }

TEST(kernels_attention_vs_reference) {
    static at_case c;
    static float want[CT_ATTN_LANES][AT_MAX_HD], got[CT_ATTN_LANES][AT_MAX_HD];
    float *scratch = malloc(ct_attn_scratch_floats(AT_MAX_HD, AT_MAX_NK) * sizeof(float));
    REQUIRE(scratch);
    const ct_kernels *sets[8];
    const int nsets = at_sets(sets);
    const int32_t hds[] = {8, 17, 64, 128}, nks[] = {1, 7, 8, 9, 130, 200}, nqs[] = {1, 5, 8, 9, 16, 17, 40, 64};
    for (int hi = 0; hi < 4; hi++)
        for (int ki = 0; ki < 6; ki++)
            for (int qi = 0; qi < 8; qi++)
                for (int f16 = 0; f16 < 2; f16++) {
                    at_fill(&c, hds[hi], nks[ki], nqs[qi], f16);
                    at_run(ct_kernels_reference(), &c, want, scratch);
                    for (int s = 1; s < nsets; s++) {
                        at_run(sets[s], &c, got, scratch);
                        for (int i = 0; i < c.nq; i++)
                            for (int d = 0; d < c.hd; d++)
                                CHECKF(fabsf(got[i][d] - want[i][d]) <= 1e-5f,
                                       "%s hd %d nk %d nq %d f16 %d: query %d [%d] %g vs %g",
                                       sets[s]->name, c.hd, c.nk, c.nq, f16, i, d, got[i][d], want[i][d]);
                    }
                }
    free(scratch);
}

/* Query i computed alone over just the rows up to its last visible one equals, bit for bit,
 * the same query in lane i of a full call (other queries, more rows). */
TEST(kernels_attention_batch_invariant) {
    static at_case full, alone;
    static float out_full[CT_ATTN_LANES][AT_MAX_HD], out_alone[CT_ATTN_LANES][AT_MAX_HD];
    float *scratch = malloc(ct_attn_scratch_floats(AT_MAX_HD, AT_MAX_NK) * sizeof(float));
    REQUIRE(scratch);
    const ct_kernels *sets[8];
    const int nsets = at_sets(sets);
    for (int s = 0; s < nsets; s++)
        for (int f16 = 0; f16 < 2; f16++) {
            at_fill(&full, 64, 150, CT_ATTN_LANES, f16);
            at_run(sets[s], &full, out_full, scratch);
            for (int i = 0; i < full.nq; i++) {
                alone = full;
                int32_t last = 0;
                for (int r = 0; r < full.nk; r++) {
                    alone.vis[r] = (full.vis[r] >> i) & 1;
                    if (alone.vis[r]) last = r;
                }
                alone.nq = 1;
                alone.nk = last + 1;
                memcpy(alone.q[0], full.q[i], sizeof full.q[i]);
                at_run(sets[s], &alone, out_alone, scratch);
                CHECKF(memcmp(out_alone[0], out_full[i], (size_t)full.hd * sizeof(float)) == 0,
                       "%s f16 %d: lane %d differs when computed alone", sets[s]->name, f16, i);
            }
        }
    free(scratch);
}
