/* Tests of `celer synth` (random-weight and inflated models) and `celer bench --plain --json`.
 * Tiny shapes only: every file here is a few MiB at most. */
#include <sys/stat.h>

#include "gguf/gguf.h"
#include "test.h"
#include "test_util.h"

static const char *tmp_file(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", test_tmp_dir(), name);
    return b;
}

/* Shape of a preset scaled down (same architecture, tying, rope base, heads per kv head where
 * small enough). */
static bool scaled_preset(const char *name, celer_synth_params *p) {
    *p = celer_synth_default_params();
    if (celer_synth_preset(name, p, NULL) != CELER_OK) return false;
    if (!strcmp(name, "tinyllama-1.1b")) p->n_head = 8, p->n_head_kv = 1, p->n_embd = 128;
    else if (!strcmp(name, "smollm2-135m")) p->n_head = 3, p->n_head_kv = 1, p->n_embd = 96;
    else if (!strcmp(name, "llama-3.2-1b")) p->n_head = 8, p->n_head_kv = 2, p->n_embd = 128;
    else p->n_head = 7, p->n_head_kv = 1, p->n_embd = 224; /* qwen2.5-0.5b */
    p->n_layer = 2;
    p->n_ff = 256;
    p->type = "Q8_0";
    p->vocab_path = test_data_path("models/stories260K.gguf");
    p->n_threads = 2;
    return true;
}

static int32_t tensor_type(const gguf_file *f, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    return t ? t->type : -1;
}

static uint32_t key_u32(const gguf_file *f, const char *key) {
    uint32_t v = 0;
    return gguf_get_u32(f, key, &v) ? v : 0xffffffffu;
}

TEST(synth_presets_scaled) {
    const char *vocab = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    static const char *names[] = {"tinyllama-1.1b", "smollm2-135m", "llama-3.2-1b", "qwen2.5-0.5b"};
    for (int i = 0; i < 4; i++) {
        celer_synth_params p;
        REQUIRE(scaled_preset(names[i], &p));
        const char *path = tmp_file("preset.gguf");
        celer_error err;
        REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s: %s", names[i], err.message);

        celer_model *m = NULL;
        REQUIREF(celer_model_load(path, NULL, &m, &err) == CELER_OK, "%s: %s", names[i], err.message);
        CHECK_EQ_INT(celer_model_n_embd(m), p.n_embd);
        CHECK_EQ_INT(celer_model_n_layer(m), 2);
        CHECK_EQ_INT(celer_model_n_vocab(m), 512);
        CHECK_EQ_INT(celer_model_n_ctx_train(m), p.n_ctx);
        CHECK(!strcmp(celer_model_arch(m), p.arch));
        celer_model_free(m);

        gguf_file *f = NULL;
        REQUIRE(gguf_open(path, &f, &err) == CELER_OK);
        char key[96];
        snprintf(key, sizeof key, "%s.attention.head_count", p.arch);
        CHECK_EQ_INT(key_u32(f, key), p.n_head);
        snprintf(key, sizeof key, "%s.attention.head_count_kv", p.arch);
        CHECK_EQ_INT(key_u32(f, key), p.n_head_kv);
        snprintf(key, sizeof key, "%s.feed_forward_length", p.arch);
        CHECK_EQ_INT(key_u32(f, key), 256);
        snprintf(key, sizeof key, "%s.rope.dimension_count", p.arch);
        CHECK_EQ_INT(key_u32(f, key), p.n_embd / p.n_head);
        snprintf(key, sizeof key, "%s.rope.freq_base", p.arch);
        float base = 0;
        CHECK(gguf_get_f32(f, key, &base) && base == p.rope_base);
        CHECK_EQ_INT(key_u32(f, "general.file_type"), 7);
        CHECK_EQ_INT(key_u32(f, "general.quantization_version"), 2);
        CHECK_EQ_INT(tensor_type(f, "blk.1.attn_q.weight"), CELER_TYPE_Q8_0);
        CHECK_EQ_INT(tensor_type(f, "blk.1.ffn_down.weight"), CELER_TYPE_Q8_0);
        CHECK_EQ_INT(tensor_type(f, "blk.0.attn_norm.weight"), CELER_TYPE_F32);
        CHECK_EQ_INT(tensor_type(f, "token_embd.weight"), CELER_TYPE_Q8_0);
        CHECKF((tensor_type(f, "output.weight") < 0) == p.tied, "%s: output.weight presence", names[i]);
        const bool qwen2 = !strcmp(p.arch, "qwen2");
        CHECKF((tensor_type(f, "blk.0.attn_q.bias") == CELER_TYPE_F32) == qwen2, "%s: biases", names[i]);
        CHECK(gguf_find_key(f, "tokenizer.ggml.tokens") >= 0);
        gguf_close(f);
    }
}

TEST(synth_qwen3_and_vocab) {
    const char *vocab = test_data_path("vocab/ggml-vocab-llama-spm.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    celer_synth_params p = celer_synth_default_params();
    p.arch = "qwen3";
    p.n_embd = 64, p.n_layer = 1, p.n_head = 4, p.n_head_kv = 2, p.n_ff = 96;
    p.type = "F16";
    p.vocab_path = vocab;
    const char *path = tmp_file("qwen3.gguf");
    celer_error err;
    REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s", err.message);
    celer_model *m = NULL;
    REQUIREF(celer_model_load(path, NULL, &m, &err) == CELER_OK, "%s", err.message);
    CHECK_EQ_INT(celer_model_n_vocab(m), 32000);
    CHECK(!strcmp(celer_model_arch(m), "qwen3"));
    /* the tokenizer came along */
    int32_t ids[16];
    CHECK(celer_tokenize(celer_model_vocab(m), "Hello world", 11, ids, 16, false, false) > 0);
    celer_model_free(m);

    /* padding the vocabulary */
    p.n_vocab = 32100;
    p.arch = "llama";
    REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s", err.message);
    REQUIREF(celer_model_load(path, NULL, &m, &err) == CELER_OK, "%s", err.message);
    CHECK_EQ_INT(celer_model_n_vocab(m), 32100);
    CHECK_EQ_INT(celer_vocab_n_tokens(celer_model_vocab(m)), 32100);
    CHECK_EQ_INT(celer_vocab_token_type(celer_model_vocab(m), 32050), CELER_TOKEN_UNUSED);
    celer_model_free(m);
}

static unsigned char *slurp(const char *path, size_t *n) {
    return (unsigned char *)test_read_file(path, n);
}

TEST(synth_deterministic) {
    const char *vocab = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    celer_synth_params p;
    REQUIRE(scaled_preset("tinyllama-1.1b", &p));
    p.type = "Q4_0";
    const char *a = tmp_file("det-a.gguf"), *b = tmp_file("det-b.gguf"), *c = tmp_file("det-c.gguf");
    celer_error err;
    p.n_threads = 1;
    REQUIREF(celer_synth(&p, a, &err) == CELER_OK, "%s", err.message);
    p.n_threads = 2;
    REQUIREF(celer_synth(&p, b, &err) == CELER_OK, "%s", err.message);
    p.seed = 2;
    REQUIREF(celer_synth(&p, c, &err) == CELER_OK, "%s", err.message);
    size_t na = 0, nb = 0, nc = 0;
    unsigned char *da = slurp(a, &na), *db = slurp(b, &nb), *dc = slurp(c, &nc);
    REQUIRE(da && db && dc);
    CHECK(na == nb && memcmp(da, db, na) == 0); /* same seed, any thread count: same bytes */
    CHECK(na == nc && memcmp(da, dc, na) != 0); /* another seed: other weights */
    free(da);
    free(db);
    free(dc);

    /* the weights look like what they claim: std ~0.02, norms ~1 */
    p.type = "F32";
    p.seed = 1;
    REQUIREF(celer_synth(&p, a, &err) == CELER_OK, "%s", err.message);
    gguf_file *f = NULL;
    REQUIRE(gguf_open(a, &f, &err) == CELER_OK);
    const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_gate.weight");
    const gguf_tensor *nt = gguf_find_tensor(f, "blk.0.ffn_norm.weight");
    REQUIRE(t && nt);
    double s = 0, s2 = 0;
    const int64_t n = t->ne[0] * t->ne[1];
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, (const char *)t->data + 4 * i, 4);
        s += v;
        s2 += (double)v * v;
    }
    const double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    CHECKF(fabs(mean) < 0.002 && sd > 0.018 && sd < 0.022, "mean %g std %g", mean, sd);
    float w0;
    memcpy(&w0, nt->data, 4);
    CHECKF(fabsf(w0 - 1.0f) < 0.1f, "norm weight %g", w0);
    gguf_close(f);
}

/* llama.cpp's Q4_K_M rule, restated independently of synth.c. */
static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

TEST(synth_q4_k_m_mix) {
    const char *vocab = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    celer_synth_params p = celer_synth_default_params();
    p.n_embd = 256, p.n_layer = 16, p.n_head = 4, p.n_head_kv = 2, p.n_ff = 512;
    p.type = "Q4_K_M";
    p.vocab_path = vocab;
    const char *path = tmp_file("q4km.gguf");
    celer_error err;
    REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s", err.message);
    gguf_file *f = NULL;
    REQUIRE(gguf_open(path, &f, &err) == CELER_OK);
    CHECK_EQ_INT(key_u32(f, "general.file_type"), 15);
    CHECK_EQ_INT(tensor_type(f, "output.weight"), CELER_TYPE_Q6_K);
    CHECK_EQ_INT(tensor_type(f, "token_embd.weight"), CELER_TYPE_Q4_K);
    int n_q6 = 0;
    char name[64];
    for (int i = 0; i < 16; i++) {
        const int32_t want = more_bits(i, 16) ? CELER_TYPE_Q6_K : CELER_TYPE_Q4_K;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        CHECK_EQ_INT(tensor_type(f, name), want);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
        CHECK_EQ_INT(tensor_type(f, name), want);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", i);
        CHECK_EQ_INT(tensor_type(f, name), CELER_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
        CHECK_EQ_INT(tensor_type(f, name), CELER_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", i);
        CHECK_EQ_INT(tensor_type(f, name), CELER_TYPE_F32);
        n_q6 += want == CELER_TYPE_Q6_K;
    }
    CHECK_EQ_INT(n_q6, 8); /* layers 0, 1, 4, 7, 10, 13, 14, 15 */
    gguf_close(f);
    celer_model *m = NULL;
    CHECKF(celer_model_load(path, NULL, &m, &err) == CELER_OK, "%s", err.message);
    celer_model_free(m);

    /* tied output: the embedding takes the output's Q6_K; rows of 128 cannot hold K-quants */
    p.tied = true;
    p.n_layer = 2;
    REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s", err.message);
    REQUIRE(gguf_open(path, &f, &err) == CELER_OK);
    CHECK_EQ_INT(tensor_type(f, "token_embd.weight"), CELER_TYPE_Q6_K);
    CHECK(tensor_type(f, "output.weight") < 0);
    gguf_close(f);
    p.n_embd = 128;
    REQUIREF(celer_synth(&p, path, &err) == CELER_OK, "%s", err.message);
    REQUIRE(gguf_open(path, &f, &err) == CELER_OK);
    CHECK_EQ_INT(tensor_type(f, "blk.0.attn_q.weight"), CELER_TYPE_Q8_0);
    /* rows of 512 still hold K-quants; with 2 layers only layer 1 gets more bits */
    CHECK_EQ_INT(tensor_type(f, "blk.0.ffn_down.weight"), CELER_TYPE_Q4_K);
    CHECK_EQ_INT(tensor_type(f, "blk.1.ffn_down.weight"), CELER_TYPE_Q6_K);
    CHECK_EQ_INT(tensor_type(f, "blk.1.attn_v.weight"), CELER_TYPE_Q8_0); /* Q6_K falls back */
    gguf_close(f);
}

/* Greedy continuation of prompt: n tokens, one decode call each. */
static int greedy(const char *model_path, const int32_t *prompt, int32_t n_prompt, int32_t n,
                  int32_t *out, bool check_extra_zero) {
    celer_model *m = NULL;
    celer_context *ctx = NULL;
    celer_error err;
    if (celer_model_load(model_path, NULL, &m, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "%s", err.message);
        return -1;
    }
    celer_context_params cp = celer_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 2;
    cp.kv_type = CELER_KV_F32;
    int got = -1;
    if (celer_context_create(m, &cp, &ctx, &err) != CELER_OK) {
        test_fail_at(__FILE__, __LINE__, "%s", err.message);
        goto done;
    }
    const int32_t nv = celer_model_n_vocab(m);
    celer_batch b = {.n_tokens = n_prompt, .tokens = prompt};
    for (got = 0; got < n; got++) {
        if (celer_decode(ctx, &b, &err) != CELER_OK) {
            test_fail_at(__FILE__, __LINE__, "%s", err.message);
            break;
        }
        const float *l = celer_get_logits(ctx, b.n_tokens - 1);
        int32_t best = 0;
        for (int32_t i = 1; i < nv; i++)
            if (l[i] > l[best]) best = i;
        if (check_extra_zero) {
            /* new vocabulary: logit exactly 0, below the real maximum */
            bool zero = true;
            for (int32_t i = 512; i < nv; i++) zero &= l[i] == 0.0f;
            CHECKF(zero && l[best] > 0.0f, "extra-vocabulary logits not 0 at step %d", got);
        }
        out[got] = best;
        b.n_tokens = 1;
        b.tokens = &out[got];
    }
done:
    celer_context_free(ctx);
    celer_model_free(m);
    return got;
}

TEST(synth_inflate_greedy) {
    const char *src = test_data_path("models/stories260K.gguf");
    const char *golden = test_data_path("models/stories260K.greedy.jsonl");
    const char *llama_vocab = test_data_path("vocab/ggml-vocab-llama-spm.gguf");
    if (!test_file_exists(src) || !test_file_exists(golden) || !test_file_exists(llama_vocab))
        return test_skip("missing stories260K or the llama-spm vocabulary");
    char *lines = test_read_file(golden, NULL);
    REQUIRE(lines);

    /* Two shapes: head size 8 (as the source) with the 32000-token Llama 2 vocabulary, and head
     * size 32 (each pair spread 4 apart) with the stories vocabulary. */
    struct {
        int32_t d, l, h, kv, ff;
        const char *vocab;
    } shapes[2] = {{128, 6, 16, 4, 384, llama_vocab}, {256, 7, 8, 4, 512, src}};
    const char *paths[2] = {tmp_file("inflated-a.gguf"), tmp_file("inflated-b.gguf")};
    for (int s = 0; s < 2; s++) {
        celer_synth_params p = celer_synth_default_params();
        p.n_embd = shapes[s].d, p.n_layer = shapes[s].l, p.n_head = shapes[s].h;
        p.n_head_kv = shapes[s].kv, p.n_ff = shapes[s].ff;
        p.type = "F32";
        p.vocab_path = shapes[s].vocab;
        p.inflate_path = src;
        celer_error err;
        REQUIREF(celer_synth(&p, paths[s], &err) == CELER_OK, "%s", err.message);
    }

    const int32_t n_new = 40;
    int n_prompts = 0;
    for (char *line = lines; line && *line && n_prompts < 3; n_prompts++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        int32_t prompt[64], want[512], ref[64], got[64];
        const int32_t np = tu_json_int_array(line, "prompt_ids", prompt, 64);
        const int32_t nw = tu_json_int_array(line, "output_ids", want, 512);
        REQUIRE(np > 0 && nw > 0);
        const int32_t n = nw < n_new ? nw : n_new;
        REQUIRE(greedy(src, prompt, np, n, ref, false) == n);
        for (int32_t i = 0; i < n; i++) CHECKF(ref[i] == want[i], "stories260K differs from golden at %d", i);
        for (int s = 0; s < 2; s++) {
            REQUIRE(greedy(paths[s], prompt, np, n, got, s == 0) == n);
            for (int32_t i = 0; i < n; i++)
                CHECKF(got[i] == ref[i], "inflated shape %d, prompt %d: token %d is %d, want %d", s,
                       n_prompts, i, got[i], ref[i]);
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK_EQ_INT(n_prompts, 3);
    free(lines);

    /* The source must fit: fewer kv heads than the source's is refused with a reason. */
    celer_synth_params p = celer_synth_default_params();
    p.n_embd = 128, p.n_layer = 6, p.n_head = 16, p.n_head_kv = 2, p.n_ff = 384;
    p.type = "F32";
    p.vocab_path = src;
    p.inflate_path = src;
    celer_error err;
    CHECK(celer_synth(&p, tmp_file("inflated-bad.gguf"), &err) == CELER_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "does not fit") != NULL);
}

/* Runs `celer ARGS`, expecting failure with `needle` in its message. */
static void expect_cli_error(const char *args, const char *needle) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s", test_celer_bin(), args);
    char *out = NULL;
    int rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc != 0, "'%s' succeeded", args);
    CHECKF(out && strstr(out, needle), "'%s': no '%s' in: %s", args, needle, out ? out : "(none)");
    free(out);
}

TEST(synth_cli_errors) {
    if (!test_file_exists(test_celer_bin())) return test_skip("no celer binary at %s", test_celer_bin());
    char args[1536];
    const char *vocab = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    const char *out = tmp_file("cli-bad.gguf");
    remove(out);
    expect_cli_error("synth", "give a shape");
    snprintf(args, sizeof args, "synth --like gpt-5 --vocab %s --type Q4_0 -o %s", vocab, out);
    expect_cli_error(args, "unknown preset");
    snprintf(args, sizeof args,
             "synth --dim 100 --layers 2 --heads 3 --kv-heads 1 --ffn 64 --vocab %s --type Q4_0 -o %s",
             vocab, out);
    expect_cli_error(args, "not a multiple of the head count");
    snprintf(args, sizeof args,
             "synth --dim 64 --layers 2 --heads 4 --kv-heads 3 --ffn 64 --vocab %s --type Q4_0 -o %s",
             vocab, out);
    expect_cli_error(args, "kv head count");
    snprintf(args, sizeof args,
             "synth --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 64 --vocab %s --type Q3_K -o %s",
             vocab, out);
    expect_cli_error(args, "cannot write type 'Q3_K'");
    snprintf(args, sizeof args,
             "synth --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 64 --vocab /nonexistent.gguf "
             "--type Q8_0 -o %s",
             out);
    expect_cli_error(args, "/nonexistent.gguf");
    snprintf(args, sizeof args, "synth --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 64 --type Q8_0 -o %s", out);
    expect_cli_error(args, "--vocab");
    snprintf(args, sizeof args, "synth --dim 64 --layers x --vocab %s", vocab);
    expect_cli_error(args, "invalid value 'x' for --layers");
    snprintf(args, sizeof args, "synth --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 64 --vocab %s --type Q8_0 --bogus -o %s", vocab, out);
    expect_cli_error(args, "unknown option '--bogus'");
    snprintf(args, sizeof args,
             "synth --dim 32 --layers 2 --heads 4 --kv-heads 4 --ffn 64 --vocab %s --type F32 "
             "--inflate %s -o %s",
             vocab, vocab, out);
    expect_cli_error(args, "does not fit");
    CHECK(!test_file_exists(out)); /* nothing half-written is left */
    expect_cli_error("bench --plain", "-m MODEL");
    expect_cli_error("bench --plain -m /nonexistent.gguf", "/nonexistent.gguf");
}

/* `celer bench --plain --json` prints one object with every field of the contract. */
TEST(bench_json_contract) {
    if (!test_file_exists(test_celer_bin())) return test_skip("no celer binary at %s", test_celer_bin());
    const char *vocab = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(vocab)) return test_skip("missing %s", vocab);
    const char *model = tmp_file("bench-tiny.gguf");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s synth --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab %s --type Q8_0 "
             "-o %s",
             test_celer_bin(), vocab, model);
    char *out = NULL;
    REQUIRE(test_run_cmd(cmd, &out, true) == 0);
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s bench --plain --json -m %s -t 1 2 --reps 1 --prompt 8 --gen 8 --pp 64 --prefix 32 "
             "--bw-mib 16 2>/dev/null",
             test_celer_bin(), model);
    out = NULL;
    REQUIRE(test_run_cmd(cmd, &out, false) == 0);
    REQUIRE(out);
    /* exactly one line holding one object */
    size_t len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' ')) out[--len] = 0;
    CHECKF(out[0] == '{' && len && out[len - 1] == '}' && !strchr(out, '\n'), "not one object: %s", out);

    /* each contract field, with a positive number */
    static const char *flat[] = {"prompt_tps", "bandwidth_gbs", "roofline_tps"};
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\": ", flat[i]);
        const char *at = strstr(out, key);
        CHECKF(at && atof(at + strlen(key)) > 0, "%s missing or not positive in %s", flat[i], out);
    }
    const char *dec = strstr(out, "\"decode_tps\": {");
    REQUIREF(dec, "no decode_tps object in %s", out);
    CHECK(strstr(dec, "\"1\": ") && atof(strstr(dec, "\"1\": ") + 5) > 0);
    CHECK(strstr(dec, "\"2\": ") && strstr(dec, "\"2\": ") < strchr(dec, '}'));
    const char *bc = strstr(out, "\"batch_cost\": {");
    REQUIREF(bc, "no batch_cost object in %s", out);
    const char *end = strchr(bc, '}');
    static const char *ks[] = {"\"1\": ", "\"2\": ", "\"4\": ", "\"8\": ", "\"16\": "};
    for (int i = 0; i < 5; i++) {
        const char *at = strstr(bc, ks[i]);
        CHECKF(at && at < end && atof(at + strlen(ks[i])) > 0, "batch_cost lacks %s", ks[i]);
        if (i == 0 && at) CHECK(fabs(atof(at + 5) - 1.0) < 1e-9);
    }
    free(out);
}
