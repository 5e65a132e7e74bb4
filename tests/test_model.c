/* Model layer: golden greedy outputs, llama.cpp reference logits for every architecture and
 * tensor type, batched/tree evaluation equivalences and KV cache roll-back. */
#include "test.h"
#include "test_util.h"
#include "tensor/tensor.h"

/* ---------------------------------------------------------------- helpers */

typedef struct loaded {
    celer_model *model;
    celer_context *ctx;
} loaded;

static bool load_with(loaded *l, const char *path, const char *tok, int32_t n_ctx, int32_t n_seq,
                      int32_t n_batch, int32_t threads, const char *kernels, celer_kv_type kv) {
    memset(l, 0, sizeof *l);
    celer_error err;
    celer_model_params mp = celer_model_default_params();
    mp.tokenizer_path = tok;
    mp.kernels = kernels; /* NULL: the fastest set */
    if (celer_model_load(path, &mp, &l->model, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "load %s: %s", path, err.message);
        return false;
    }
    celer_context_params cp = celer_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_seq_max = (uint32_t)n_seq;
    cp.n_batch = (uint32_t)n_batch;
    cp.n_threads = threads;
    cp.kv_type = kv;
    if (celer_context_create(l->model, &cp, &l->ctx, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "context: %s", err.message);
        celer_model_free(l->model);
        return false;
    }
    return true;
}

static void unload(loaded *l) {
    celer_context_free(l->ctx);
    celer_model_free(l->model);
}

static int32_t argmax_f(const float *v, int32_t n) {
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Max |a-b| over a row, relative to the row's max |b|. */
static double row_rel_err(const float *a, const float *b, int32_t n) {
    double mx = 0, err = 0;
    for (int32_t i = 0; i < n; i++) {
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
        double d = fabs((double)a[i] - b[i]);
        if (d > err) err = d;
    }
    return mx > 0 ? err / mx : err;
}

/* ---------------------------------------------------------------- golden greedy */

/* Greedy continuation of prompt_ids as llama2.c's run.c does it: positions 0..steps-1 are
 * evaluated, so steps - n_prompt + 1 tokens at most, stopping before a BOS. */
static int32_t greedy(loaded *l, const int32_t *prompt, int32_t n_prompt, int32_t steps, int32_t *out) {
    celer_kv_clear(l->ctx);
    celer_batch b = {.n_tokens = n_prompt, .tokens = prompt};
    celer_error err;
    if (celer_decode(l->ctx, &b, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "decode: %s", err.message);
        return -1;
    }
    int32_t n_vocab = celer_model_n_vocab(l->model), n = 0;
    const float *logits = celer_get_logits(l->ctx, n_prompt - 1);
    const int32_t max_new = steps - n_prompt + 1;
    while (n < max_new) {
        int32_t tok = argmax_f(logits, n_vocab);
        if (tok == 1) break;
        out[n++] = tok;
        if (n == max_new) break;
        celer_batch one = {.n_tokens = 1, .tokens = &tok};
        if (celer_decode(l->ctx, &one, &err) != CELER_OK) {
            test_fail_at(__FILE__, __LINE__, "decode: %s", err.message);
            return -1;
        }
        logits = celer_get_logits(l->ctx, 0);
    }
    return n;
}

static void check_golden(const char *model_rel, const char *tok_rel, int32_t threads) {
    const char *golden = test_data_path("models/stories260K.greedy.jsonl");
    const char *model = test_data_path(model_rel);
    if (!test_file_exists(golden) || !test_file_exists(model)) {
        test_skip("shared data missing");
        return;
    }
    char *text = test_read_file(golden, NULL);
    REQUIRE(text);
    loaded l;
    if (!load_with(&l, model, tok_rel ? test_data_path(tok_rel) : NULL, 512, 1, 512, threads, NULL,
                   CELER_KV_F32)) {
        free(text);
        return;
    }
    const celer_vocab *vocab = celer_model_vocab(l.model);
    int cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int32_t want_prompt[512], want_out[1024], got_prompt[512], got_out[1024];
        char prompt[2048];
        int32_t np = tu_json_int_array(line, "prompt_ids", want_prompt, 512);
        int32_t no = tu_json_int_array(line, "output_ids", want_out, 1024);
        int64_t steps = tu_json_int(line, "steps");
        REQUIRE(np > 0 && no >= 0 && steps > 0 && tu_json_string(line, "prompt", prompt, sizeof prompt));
        int32_t gp = celer_tokenize(vocab, prompt, strlen(prompt), got_prompt, 512, true, false);
        CHECKF(gp == np && memcmp(got_prompt, want_prompt, (size_t)np * 4) == 0,
               "%s: prompt ids differ for '%s'", model_rel, prompt);
        int32_t go = greedy(&l, want_prompt, np, (int32_t)steps, got_out);
        int32_t first_diff = -1;
        for (int32_t i = 0; i < (go < no ? go : no) && first_diff < 0; i++)
            if (got_out[i] != want_out[i]) first_diff = i;
        CHECKF(go == no && first_diff < 0, "%s: '%s': got %d tokens, want %d; first difference at %d",
               model_rel, prompt, (int)go, (int)no, (int)first_diff);
        cases++;
    }
    CHECK(cases >= 10);
    unload(&l);
    free(text);
}

TEST(model_golden_greedy_stories260K_gguf) { check_golden("models/stories260K.gguf", NULL, 1); }
TEST(model_golden_greedy_stories260K_llama2c) {
    check_golden("models/stories260K.bin", "models/tok512.bin", 1);
}

/* ---------------------------------------------------------------- reference logits */

typedef struct ref_case {
    const char *name;
    double tol;
} ref_case;

static const ref_case ref_types[] = {
    {"F32", 1e-5}, {"F16", 3e-3}, {"BF16", 2e-2}, {"Q8_0", 6e-2},
    {"Q4_0", 6e-2}, {"Q4_K", 8e-2}, {"Q5_K", 8e-2}, {"Q6_K", 8e-2},
};

/* Evaluates the .tokens input in one batch and checks every row against llama.cpp's logits:
 * max_i err_i <= tol, and the same argmax except where the reference's top two are within
 * tol * max|r| (shared/reference/README.md). Returns the worst error, or -1. */
double tu_check_ref_logits(const char *model_path, const char *tokens_path, const char *logits_path,
                           double tol, const char *kernels, int32_t threads) {
    char *tok_text = test_read_file(tokens_path, NULL);
    size_t ref_size = 0;
    float *ref = (float *)test_read_file(logits_path, &ref_size);
    if (!tok_text || !ref) {
        test_fail_at(__FILE__, __LINE__, "cannot read %s or %s", tokens_path, logits_path);
        free(tok_text);
        free(ref);
        return -1;
    }
    int32_t ids[256], n = 0;
    for (char *s = strtok(tok_text, " \n"); s && n < 256; s = strtok(NULL, " \n")) ids[n++] = atoi(s);
    loaded l;
    double worst = -1;
    if (load_with(&l, model_path, NULL, n, 1, n, threads, kernels, CELER_KV_F32)) {
        int32_t V = celer_model_n_vocab(l.model);
        uint8_t want[256];
        memset(want, 1, sizeof want);
        celer_batch b = {.n_tokens = n, .tokens = ids, .logits = want};
        celer_error err;
        if ((size_t)n * (size_t)V * 4 != ref_size)
            test_fail_at(__FILE__, __LINE__, "%s: reference size mismatch", logits_path);
        else if (celer_decode(l.ctx, &b, &err) != CELER_OK)
            test_fail_at(__FILE__, __LINE__, "decode: %s", err.message);
        else {
            worst = 0;
            for (int32_t i = 0; i < n; i++) {
                const float *x = celer_get_logits(l.ctx, i), *r = ref + (size_t)i * V;
                double e = row_rel_err(x, r, V);
                if (e > worst) worst = e;
                int32_t ax = argmax_f(x, V), ar = argmax_f(r, V);
                double mx = 0, second = -1e30;
                for (int32_t j = 0; j < V; j++) {
                    if (fabs(r[j]) > mx) mx = fabs(r[j]);
                    if (j != ar && r[j] > second) second = r[j];
                }
                if (ax != ar && r[ar] - second > tol * mx)
                    test_fail_at(__FILE__, __LINE__, "%s row %d: argmax %d, llama.cpp %d", model_path,
                                 (int)i, (int)ax, (int)ar);
            }
            if (worst > tol)
                test_fail_at(__FILE__, __LINE__, "%s: max relative error %.3g > %.3g", model_path, worst, tol);
        }
        unload(&l);
    }
    free(tok_text);
    free(ref);
    return worst;
}

/* kernels: NULL for the fastest set, else a set's name (skipped where the CPU lacks it). */
static void check_ref_arch(const char *arch, const char *kernels) {
    if (kernels && !ct_kernels_by_name(kernels)) {
        test_skip("no %s kernels on this CPU", kernels);
        return;
    }
    for (size_t t = 0; t < sizeof ref_types / sizeof ref_types[0]; t++) {
        char m[256], tk[256], lg[256];
        snprintf(m, sizeof m, "reference/ref-%s-%s.gguf", arch, ref_types[t].name);
        snprintf(tk, sizeof tk, "reference/ref-%s-%s.tokens", arch, ref_types[t].name);
        snprintf(lg, sizeof lg, "reference/ref-%s-%s.logits.f32", arch, ref_types[t].name);
        if (!test_file_exists(test_data_path(m))) {
            test_skip("%s missing", m);
            return;
        }
        double e = tu_check_ref_logits(test_data_path(m), test_data_path(tk), test_data_path(lg),
                                       ref_types[t].tol, kernels, 2);
        printf("    %-6s %-5s %-11s max err %.3g (tol %.0e)\n", arch, ref_types[t].name,
               kernels ? kernels : "best", e, ref_types[t].tol);
    }
}

TEST(model_ref_logits_llama) { check_ref_arch("llama", NULL); }
TEST(model_ref_logits_qwen2) { check_ref_arch("qwen2", NULL); }
TEST(model_ref_logits_qwen3) { check_ref_arch("qwen3", NULL); }
TEST(model_ref_logits_reference_kernels) {
    check_ref_arch("llama", "reference");
    check_ref_arch("qwen3", "reference");
}
/* The AVX2 set is the one most CPUs without AVX-512 run: hold it to llama.cpp's logits too. */
TEST(model_ref_logits_avx2_kernels) {
    check_ref_arch("llama", "avx2");
    check_ref_arch("qwen3", "avx2");
}

/* A kernel set the CPU cannot run is refused with the names of those it can. */
TEST(model_unknown_kernel_set_is_refused) {
    const char *m = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(m)) return test_skip("missing %s", m);
    celer_model_params mp = celer_model_default_params();
    mp.kernels = "avx9";
    celer_model *model = NULL;
    celer_error err;
    CHECK(celer_model_load(m, &mp, &model, &err) == CELER_ERR_INVALID_ARG);
    CHECK(model == NULL);
    CHECK(strstr(err.message, "avx9") && strstr(err.message, "reference"));
    mp.kernels = "reference";
    REQUIRE(celer_model_load(m, &mp, &model, &err) == CELER_OK);
    CHECK(strcmp(celer_model_kernels(model), "reference") == 0);
    celer_model_free(model);
}

TEST(model_ref_logits_stories260K) {
    const char *m = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(m)) {
        test_skip("stories260K.gguf missing");
        return;
    }
    tu_check_ref_logits(m, test_data_path("reference/stories260K.tokens"),
                        test_data_path("reference/stories260K.logits.f32"), 1e-5, NULL, 1);
}

/* ---------------------------------------------------------------- batching and the cache */

static const int32_t some_tokens[12] = {1, 358, 118, 404, 164, 106, 408, 330, 347, 506, 202, 430};

/* Logits of each prefix computed one token at a time; out[n][V]. */
static bool single_steps(loaded *l, const int32_t *toks, int32_t n, int32_t seq, float *out) {
    int32_t V = celer_model_n_vocab(l->model);
    for (int32_t i = 0; i < n; i++) {
        celer_batch b = {.n_tokens = 1, .tokens = &toks[i], .seq_id = &seq};
        celer_error err;
        if (celer_decode(l->ctx, &b, &err) != CELER_OK) {
            test_fail_at(__FILE__, __LINE__, "decode: %s", err.message);
            return false;
        }
        memcpy(out + (size_t)i * V, celer_get_logits(l->ctx, 0), (size_t)V * sizeof(float));
    }
    return true;
}

TEST(model_batch_equals_single_steps_every_type) {
    const char *types[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t t = 0; t < 8; t++) {
        char rel[128];
        snprintf(rel, sizeof rel, "reference/ref-llama-%s.gguf", types[t]);
        if (!test_file_exists(test_data_path(rel))) {
            test_skip("%s missing", rel);
            return;
        }
        loaded l;
        if (!load_with(&l, test_data_path(rel), NULL, 64, 1, 16, 2, NULL, CELER_KV_F32)) return;
        int32_t V = celer_model_n_vocab(l.model), n = 12;
        float *single = malloc((size_t)n * V * sizeof(float));
        REQUIRE(single);
        bool ok = single_steps(&l, some_tokens, n, 0, single);
        celer_kv_clear(l.ctx);
        uint8_t want[12];
        memset(want, 1, sizeof want);
        celer_batch b = {.n_tokens = n, .tokens = some_tokens, .logits = want};
        celer_error err;
        CHECK(ok && celer_decode(l.ctx, &b, &err) == CELER_OK);
        double worst = 0;
        for (int32_t i = 0; ok && i < n; i++) {
            double e = row_rel_err(celer_get_logits(l.ctx, i), single + (size_t)i * V, V);
            if (e > worst) worst = e;
        }
        CHECKF(worst <= 1e-4, "%s: batch vs single steps differ by %.3g of the row max", types[t], worst);
        free(single);
        unload(&l);
    }
}

static const char *ref_llama(void) { return test_data_path("reference/ref-llama-Q4_0.gguf"); }

/* Tree: prefix P (cached), then a batch holding two branches A=[a1,a2] and B=[b1,b2,b3]
 * under the mask; each branch's logits must equal evaluating P+branch as its own sequence. */
TEST(model_tree_batch_equals_branches) {
    if (!test_file_exists(ref_llama())) {
        test_skip("reference model missing");
        return;
    }
    loaded l;
    if (!load_with(&l, ref_llama(), NULL, 64, 2, 16, 2, NULL, CELER_KV_F32)) return;
    int32_t V = celer_model_n_vocab(l.model);
    const int32_t prefix[4] = {1, 358, 118, 404};
    const int32_t branch_a[2] = {164, 106}, branch_b[3] = {408, 330, 347};
    celer_error err;
    celer_batch pb = {.n_tokens = 4, .tokens = prefix};
    REQUIRE(celer_decode(l.ctx, &pb, &err) == CELER_OK);
    /* Batch order: a1 b1 a2 b2 b3 — interleaved on purpose. */
    const int32_t toks[5] = {branch_a[0], branch_b[0], branch_a[1], branch_b[1], branch_b[2]};
    const int32_t pos[5] = {4, 4, 5, 5, 6};
    const uint8_t mask[25] = {
        1, 0, 0, 0, 0, /* a1 */
        0, 1, 0, 0, 0, /* b1 */
        1, 0, 1, 0, 0, /* a2 sees a1 */
        0, 1, 0, 1, 0, /* b2 sees b1 */
        0, 1, 0, 1, 1, /* b3 sees b1 b2 */
    };
    uint8_t want[5] = {1, 1, 1, 1, 1};
    celer_batch tb = {.n_tokens = 5, .tokens = toks, .pos = pos, .mask = mask, .logits = want};
    REQUIRE(celer_decode(l.ctx, &tb, &err) == CELER_OK);
    float *tree = malloc(5 * (size_t)V * sizeof(float));
    REQUIRE(tree);
    for (int i = 0; i < 5; i++) memcpy(tree + (size_t)i * V, celer_get_logits(l.ctx, i), (size_t)V * 4);

    /* Reference: each branch as its own sequence (sequence 1), token by token. */
    float *ref = malloc(7 * (size_t)V * sizeof(float));
    REQUIRE(ref);
    int32_t seq_a[6] = {1, 358, 118, 404, 164, 106}, seq_b[7] = {1, 358, 118, 404, 408, 330, 347};
    celer_kv_seq_truncate(l.ctx, 1, 0);
    REQUIRE(single_steps(&l, seq_a, 6, 1, ref));
    CHECK(row_rel_err(tree + 0 * (size_t)V, ref + 4 * (size_t)V, V) <= 1e-4);
    CHECK(row_rel_err(tree + 2 * (size_t)V, ref + 5 * (size_t)V, V) <= 1e-4);
    celer_kv_seq_truncate(l.ctx, 1, 0);
    REQUIRE(single_steps(&l, seq_b, 7, 1, ref));
    CHECK(row_rel_err(tree + 1 * (size_t)V, ref + 4 * (size_t)V, V) <= 1e-4);
    CHECK(row_rel_err(tree + 3 * (size_t)V, ref + 5 * (size_t)V, V) <= 1e-4);
    CHECK(row_rel_err(tree + 4 * (size_t)V, ref + 6 * (size_t)V, V) <= 1e-4);

    /* Keep branch B (batch rows 1, 3, 4 after the prefix), then continue: the next token's
     * logits must equal continuing sequence 1, which holds exactly P+B. */
    const int32_t keep[3] = {1, 3, 4};
    CHECK(celer_kv_seq_keep(l.ctx, 0, 4, keep, 3) == CELER_OK);
    CHECK_EQ_INT(celer_kv_seq_len(l.ctx, 0), 7);
    int32_t next = 202, seq0 = 0, seq1 = 1;
    celer_batch n0 = {.n_tokens = 1, .tokens = &next, .seq_id = &seq0};
    REQUIRE(celer_decode(l.ctx, &n0, &err) == CELER_OK);
    float *kept = malloc((size_t)V * sizeof(float));
    REQUIRE(kept);
    memcpy(kept, celer_get_logits(l.ctx, 0), (size_t)V * 4);
    celer_batch n1 = {.n_tokens = 1, .tokens = &next, .seq_id = &seq1};
    REQUIRE(celer_decode(l.ctx, &n1, &err) == CELER_OK);
    CHECK(row_rel_err(kept, celer_get_logits(l.ctx, 0), V) <= 1e-4);
    free(kept);
    free(tree);
    free(ref);
    unload(&l);
}

TEST(model_truncate_then_reevaluate) {
    if (!test_file_exists(ref_llama())) {
        test_skip("reference model missing");
        return;
    }
    loaded l;
    if (!load_with(&l, ref_llama(), NULL, 64, 1, 16, 2, NULL, CELER_KV_F32)) return;
    int32_t V = celer_model_n_vocab(l.model);
    celer_error err;
    float *first = malloc((size_t)V * 4);
    REQUIRE(first);
    celer_batch b = {.n_tokens = 8, .tokens = some_tokens};
    REQUIRE(celer_decode(l.ctx, &b, &err) == CELER_OK);
    memcpy(first, celer_get_logits(l.ctx, 7), (size_t)V * 4);
    /* Add junk, roll back, re-evaluate token 8 (index 7) after truncating to 7. */
    celer_batch junk = {.n_tokens = 4, .tokens = some_tokens + 2};
    REQUIRE(celer_decode(l.ctx, &junk, &err) == CELER_OK);
    CHECK(celer_kv_seq_truncate(l.ctx, 0, 7) == CELER_OK);
    celer_batch again = {.n_tokens = 1, .tokens = some_tokens + 7};
    REQUIRE(celer_decode(l.ctx, &again, &err) == CELER_OK);
    CHECK(row_rel_err(celer_get_logits(l.ctx, 0), first, V) <= 1e-5);
    free(first);
    unload(&l);
}

TEST(model_sequences_are_isolated) {
    if (!test_file_exists(ref_llama())) {
        test_skip("reference model missing");
        return;
    }
    loaded l;
    if (!load_with(&l, ref_llama(), NULL, 64, 3, 16, 2, NULL, CELER_KV_F32)) return;
    int32_t V = celer_model_n_vocab(l.model);
    celer_error err;
    /* Three sequences in one batch, interleaved, vs sequence 0 alone. */
    const int32_t toks[9] = {1, 1, 1, 358, 164, 506, 118, 106, 202};
    const int32_t seqs[9] = {0, 1, 2, 0, 1, 2, 0, 1, 2};
    uint8_t want[9] = {0, 0, 0, 0, 0, 0, 1, 1, 1};
    celer_batch b = {.n_tokens = 9, .tokens = toks, .seq_id = seqs, .logits = want};
    REQUIRE(celer_decode(l.ctx, &b, &err) == CELER_OK);
    float *multi = malloc(3 * (size_t)V * 4);
    REQUIRE(multi);
    for (int i = 0; i < 3; i++) memcpy(multi + (size_t)i * V, celer_get_logits(l.ctx, 6 + i), (size_t)V * 4);
    CHECK_EQ_INT(celer_kv_seq_len(l.ctx, 0), 3);
    CHECK_EQ_INT(celer_kv_seq_len(l.ctx, 2), 3);
    for (int s = 0; s < 3; s++) {
        celer_kv_clear(l.ctx);
        int32_t alone[3] = {toks[s], toks[3 + s], toks[6 + s]};
        celer_batch a = {.n_tokens = 3, .tokens = alone};
        REQUIRE(celer_decode(l.ctx, &a, &err) == CELER_OK);
        CHECKF(row_rel_err(multi + (size_t)s * V, celer_get_logits(l.ctx, 2), V) <= 1e-4,
               "sequence %d saw another sequence", s);
    }
    /* A mask that crosses sequences is refused and leaves the cache alone. */
    celer_kv_clear(l.ctx);
    uint8_t bad_mask[4] = {1, 1, 1, 1};
    const int32_t two[2] = {1, 1}, two_seq[2] = {0, 1};
    celer_batch bad = {.n_tokens = 2, .tokens = two, .seq_id = two_seq, .mask = bad_mask};
    CHECK(celer_decode(l.ctx, &bad, &err) == CELER_ERR_INVALID_ARG);
    CHECK_EQ_INT(celer_kv_seq_len(l.ctx, 0), 0);
    free(multi);
    unload(&l);
}

TEST(model_threads_do_not_change_results) {
    if (!test_file_exists(ref_llama())) {
        test_skip("reference model missing");
        return;
    }
    loaded a, b;
    if (!load_with(&a, ref_llama(), NULL, 64, 1, 16, 1, NULL, CELER_KV_F32)) return;
    if (!load_with(&b, ref_llama(), NULL, 64, 1, 16, 2, NULL, CELER_KV_F32)) {
        unload(&a);
        return;
    }
    int32_t V = celer_model_n_vocab(a.model);
    celer_error err;
    celer_batch bt = {.n_tokens = 12, .tokens = some_tokens};
    REQUIRE(celer_decode(a.ctx, &bt, &err) == CELER_OK);
    REQUIRE(celer_decode(b.ctx, &bt, &err) == CELER_OK);
    CHECK(memcmp(celer_get_logits(a.ctx, 11), celer_get_logits(b.ctx, 11), (size_t)V * 4) == 0);
    unload(&a);
    unload(&b);
}

TEST(model_context_full_and_bad_tokens) {
    if (!test_file_exists(ref_llama())) {
        test_skip("reference model missing");
        return;
    }
    loaded l;
    if (!load_with(&l, ref_llama(), NULL, 8, 1, 16, 1, NULL, CELER_KV_F16)) return;
    celer_error err;
    celer_batch b = {.n_tokens = 9, .tokens = some_tokens};
    CHECK(celer_decode(l.ctx, &b, &err) == CELER_ERR_CONTEXT_FULL);
    CHECK(strstr(err.message, "context full") != NULL);
    CHECK_EQ_INT(celer_kv_seq_len(l.ctx, 0), 0);
    int32_t bad = 100000;
    celer_batch bb = {.n_tokens = 1, .tokens = &bad};
    CHECK(celer_decode(l.ctx, &bb, &err) == CELER_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "out of range") != NULL);
    celer_batch ok = {.n_tokens = 8, .tokens = some_tokens};
    CHECK(celer_decode(l.ctx, &ok, &err) == CELER_OK);
    unload(&l);
}

/* ---------------------------------------------------------------- conversion */

TEST(model_convert_llama2c_matches_gguf) {
    const char *bin = test_data_path("models/stories260K.bin"), *tok = test_data_path("models/tok512.bin");
    if (!test_file_exists(bin)) {
        test_skip("stories260K.bin missing");
        return;
    }
    char out[512];
    snprintf(out, sizeof out, "%s/converted.gguf", test_tmp_dir());
    celer_error err;
    REQUIRE(celer_convert_llama2c(bin, tok, out, &err) == CELER_OK);
    /* The converted file reproduces llama.cpp's logits for stories260K.gguf. */
    tu_check_ref_logits(out, test_data_path("reference/stories260K.tokens"),
                        test_data_path("reference/stories260K.logits.f32"), 1e-5, NULL, 1);
    /* Its tokenizer gives the same ids as the original GGUF's. */
    celer_vocab *v1 = NULL, *v2 = NULL;
    REQUIRE(celer_vocab_load(out, &v1, &err) == CELER_OK);
    REQUIRE(celer_vocab_load(test_data_path("models/stories260K.gguf"), &v2, &err) == CELER_OK);
    const char *s = "Once upon a time, a little girl named Lily found a needle.";
    int32_t a[128], b[128];
    int32_t na = celer_tokenize(v1, s, strlen(s), a, 128, true, false);
    int32_t nb = celer_tokenize(v2, s, strlen(s), b, 128, true, false);
    CHECK(na > 0 && na == nb && memcmp(a, b, (size_t)na * 4) == 0);
    celer_vocab_free(v1);
    celer_vocab_free(v2);
}

/* ---------------------------------------------------------------- rope variants */

#include "gguf/gguf.h"

/* Copies src to dst, adding rope frequency factors (all equal to `factor`, as Llama 3.1+
 * files carry in rope_freqs.weight) or a linear rope scaling key. */
static bool write_rope_variant(const char *src, const char *dst, float freq_factor, float linear) {
    gguf_file *f = NULL;
    celer_error err;
    if (gguf_open(src, &f, &err) != CELER_OK) return false;
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    if (linear > 0) {
        gguf_writer_set_str(w, "llama.rope.scaling.type", "linear");
        gguf_writer_set_f32(w, "llama.rope.scaling.factor", linear);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    float factors[32];
    int64_t ne[1] = {32};
    for (int i = 0; i < 32; i++) factors[i] = freq_factor;
    if (freq_factor > 0) gguf_writer_add_tensor(w, "rope_freqs.weight", CELER_TYPE_F32, 1, ne, factors, sizeof factors);
    bool ok = gguf_writer_write(w, dst, &err) == CELER_OK;
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

static bool logits_of(const char *path, float *out /* [12][V] */) {
    loaded l;
    if (!load_with(&l, path, NULL, 64, 1, 16, 1, NULL, CELER_KV_F32)) return false;
    uint8_t want[12];
    memset(want, 1, sizeof want);
    celer_batch b = {.n_tokens = 12, .tokens = some_tokens, .logits = want};
    celer_error err;
    bool ok = celer_decode(l.ctx, &b, &err) == CELER_OK;
    for (int i = 0; ok && i < 12; i++) memcpy(out + (size_t)i * 512, celer_get_logits(l.ctx, i), 512 * 4);
    unload(&l);
    return ok;
}

TEST(model_rope_freq_factors_and_linear_scaling) {
    const char *src = test_data_path("reference/ref-llama-F32.gguf");
    if (!test_file_exists(src)) {
        test_skip("reference model missing");
        return;
    }
    char ones[512], twos[512], lin[512];
    snprintf(ones, sizeof ones, "%s/rope-ones.gguf", test_tmp_dir());
    snprintf(twos, sizeof twos, "%s/rope-twos.gguf", test_tmp_dir());
    snprintf(lin, sizeof lin, "%s/rope-linear2.gguf", test_tmp_dir());
    REQUIRE(write_rope_variant(src, ones, 1.0f, 0) && write_rope_variant(src, twos, 2.0f, 0) &&
            write_rope_variant(src, lin, 0, 2.0f));
    float *a = malloc(12 * 512 * 4), *b = malloc(12 * 512 * 4), *c = malloc(12 * 512 * 4), *d = malloc(12 * 512 * 4);
    REQUIRE(a && b && c && d);
    REQUIRE(logits_of(src, a) && logits_of(ones, b) && logits_of(twos, c) && logits_of(lin, d));
    /* Factors of 1 change nothing; factors of 2 equal linear scaling by 2 and differ from plain. */
    CHECK(memcmp(a, b, 12 * 512 * 4) == 0);
    double same = 0, diff = 0;
    for (int i = 1; i < 12; i++) {
        double e1 = row_rel_err(c + i * 512, d + i * 512, 512), e2 = row_rel_err(c + i * 512, a + i * 512, 512);
        if (e1 > same) same = e1;
        if (e2 > diff) diff = e2;
    }
    CHECKF(same < 1e-6, "freq factors 2 vs linear scaling 2 differ by %.3g", same);
    CHECKF(diff > 1e-4, "rope scaling had no effect (%.3g)", diff);
    free(a);
    free(b);
    free(c);
    free(d);
}
