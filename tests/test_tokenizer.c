/* Tokenizer tests: llama.cpp's own tokenizer test pairs for every vocabulary in
 * $CELER_DATA/vocab, the llama2.c prompts, round trips, special tokens, streaming
 * detokenization, hostile inputs and the tokenize/detokenize commands. */
#include "test.h"

#include "tokenizer/tokenizer.h"

static const char *const k_vocabs[] = {
    "llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
    "starcoder", "refact", "llama-bpe", "qwen2", "bert-bge",
};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])

static celer_vocab *load_vocab(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    const char *path = test_data_path(rel);
    if (!test_file_exists(path)) return NULL;
    celer_vocab *v = NULL;
    celer_error err = {0};
    celer_status st = celer_vocab_load(path, &v, &err);
    CHECKF(st == CELER_OK, "loading %s: %s", path, err.message);
    return st == CELER_OK ? v : NULL;
}

/* Tokenizes into a malloc'd array; *n = count. */
static int32_t *tok(const celer_vocab *v, const char *s, size_t len, bool add_special,
                    bool parse_special, int32_t *n) {
    int32_t k = celer_tokenize(v, s, len, NULL, 0, add_special, parse_special);
    if (k == INT32_MIN) {
        *n = -1;
        return NULL;
    }
    int32_t cap = k < 0 ? -k : k;
    int32_t *ids = malloc(((size_t)cap + 1) * sizeof *ids);
    *n = celer_tokenize(v, s, len, ids, cap, add_special, parse_special);
    return ids;
}

static char *detok(const celer_vocab *v, const int32_t *ids, int32_t n, bool special, int32_t *len) {
    int32_t k = celer_detokenize(v, ids, n, NULL, 0, true, special);
    int32_t cap = k < 0 ? -k : k;
    char *s = malloc((size_t)cap + 1);
    *len = celer_detokenize(v, ids, n, s, cap, true, special);
    return s;
}

/* Splits an .inp file as llama.cpp's test-tokenizer-0 does (separator
 * "\n__ggml_vocab_test__\n"); returns the number of inputs. */
static int split_inputs(char *raw, size_t size, char **inp, size_t *inp_len, int max) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t pos = 0;
    int n = 0;
    while (pos < size && n < max) {
        char *next = memmem(raw + pos, size - pos, sep, sizeof sep - 1);
        size_t end = next ? (size_t)(next - raw) : size;
        inp[n] = raw + pos;
        inp_len[n++] = end - pos;
        if (!next) break;
        pos = end + sizeof sep - 1;
    }
    return n;
}

/* Every input/expected pair of one vocabulary; plus detokenize(tokenize(x)) == x. */
static void check_vocab_pairs(const char *name, int *n_cases) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", name);
    size_t isz, osz;
    char *raw = test_read_file(test_data_path(rel), &isz);
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", name);
    char *out = test_read_file(test_data_path(rel), &osz);
    celer_vocab *v = load_vocab(name);
    if (!raw || !out || !v) {
        CHECKF(!raw && !out && !v, "%s: incomplete test data", name);
        free(raw), free(out), celer_vocab_free(v);
        return;
    }
    char *inp[256];
    size_t inp_len[256];
    int n = split_inputs(raw, isz, inp, inp_len, 256);
    char *line = out, *save = NULL;
    int failures = 0;
    bool roundtrip = strcmp(celer_vocab_model(v), "bert") != 0; /* WordPiece lowercases */
    for (int i = 0; i < n; i++) {
        char *nl = line ? strchr(line, '\n') : NULL;
        REQUIREF(line && nl, "%s: fewer output lines than inputs", name);
        *nl = 0;
        int32_t expect[4096], ne = 0;
        for (char *t = strtok_r(line, " ", &save); t && ne < 4096; t = strtok_r(NULL, " ", &save))
            expect[ne++] = atoi(t);
        line = nl + 1;
        int32_t got_n;
        int32_t *got = tok(v, inp[i], inp_len[i], false, false, &got_n);
        bool ok = got_n == ne && (ne == 0 || !memcmp(got, expect, (size_t)ne * sizeof *got));
        if (!ok && ++failures <= 3) {
            char msg[1024];
            int o = snprintf(msg, sizeof msg, "%s case %d '%.40s': got", name, i, inp[i]);
            for (int32_t k = 0; k < got_n && k < 24 && o < 900; k++) o += snprintf(msg + o, sizeof msg - (size_t)o, " %d", got[k]);
            o += snprintf(msg + o, sizeof msg - (size_t)o, " | want");
            for (int32_t k = 0; k < ne && k < 24 && o < 1000; k++) o += snprintf(msg + o, sizeof msg - (size_t)o, " %d", expect[k]);
            test_fail_at(__FILE__, __LINE__, "%s", msg);
        }
        if (roundtrip && got_n >= 0) {
            int32_t len;
            char *back = detok(v, got, got_n, false, &len);
            CHECKF(len == (int32_t)inp_len[i] && !memcmp(back, inp[i], inp_len[i]),
                   "%s case %d does not round-trip", name, i);
            free(back);
        }
        free(got);
        (*n_cases)++;
    }
    CHECKF(failures == 0, "%s: %d of %d cases differ from llama.cpp", name, failures, n);
    free(raw);
    free(out);
    celer_vocab_free(v);
}

TEST(tok_llamacpp_vocab_pairs) {
    int n_cases = 0, n_files = 0;
    for (size_t k = 0; k < N_VOCABS; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", k_vocabs[k]);
        if (!test_file_exists(test_data_path(rel))) continue;
        n_files++;
        check_vocab_pairs(k_vocabs[k], &n_cases);
    }
    if (n_files == 0) test_skip("no vocab test data");
    else CHECKF(n_cases >= 40 * n_files, "only %d cases in %d files", n_cases, n_files);
}

/* Each vocab file has a .inp if and only if the test above covers it. */
TEST(tok_every_vocab_file_is_covered) {
    for (size_t k = 0; k < N_VOCABS; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", k_vocabs[k]);
        if (!test_file_exists(test_data_path(rel))) continue;
        strcat(rel, ".inp");
        CHECKF(test_file_exists(test_data_path(rel)), "%s has no .inp", k_vocabs[k]);
    }
    /* The two vocabularies without test pairs still load. */
    celer_vocab *v = load_vocab("baichuan");
    if (v) CHECK(!strcmp(celer_vocab_model(v), "llama"));
    celer_vocab_free(v);
    v = load_vocab("gpt-neox");
    if (v) CHECK(!strcmp(celer_vocab_model(v), "gpt2"));
    celer_vocab_free(v);
}

/* BOS + the prompt encoded with a leading space, as llama2.c's run.c does, from both the
 * llama2.c tokenizer file and the GGUF model. */
TEST(tok_stories_prompt_ids) {
    const char *golden = test_data_path("models/stories260K.greedy.jsonl");
    const char *paths[2] = {test_data_path("models/tok512.bin"), test_data_path("models/stories260K.gguf")};
    size_t size;
    char *g = test_read_file(golden, &size);
    if (!g) {
        test_skip("no golden file");
        return;
    }
    for (int p = 0; p < 2; p++) {
        celer_vocab *v = NULL;
        celer_error err = {0};
        REQUIREF(celer_vocab_load(paths[p], &v, &err) == CELER_OK, "%s: %s", paths[p], err.message);
        CHECK_EQ_INT(celer_vocab_n_tokens(v), 512);
        CHECK(celer_vocab_add_bos(v));
        int lines = 0;
        for (char *line = g; line && *line; lines++) {
            char *end = strchr(line, '\n');
            char *pr = strstr(line, "\"prompt\": \""), *ids = strstr(line, "\"prompt_ids\": [");
            REQUIRE(pr && ids);
            pr += 11;
            char prompt[1024];
            size_t n = 0;
            while (pr[0] != '"' && n < sizeof prompt - 1) { /* prompts have no escapes but \" */
                if (pr[0] == '\\' && pr[1]) pr++;
                prompt[n++] = *pr++;
            }
            int32_t want[512], nw = 0;
            for (char *q = ids + 15; *q && *q != ']' && nw < 512;) {
                want[nw++] = (int32_t)strtol(q, &q, 10);
                while (*q == ',' || *q == ' ') q++;
            }
            int32_t got_n;
            int32_t *got = tok(v, prompt, n, true, false, &got_n);
            CHECKF(got_n == nw && !memcmp(got, want, (size_t)nw * sizeof *got),
                   "%s: prompt '%.*s' tokenizes differently", paths[p], (int)n, prompt);
            int32_t len;
            char *back = detok(v, got, got_n, false, &len);
            CHECKF(len == (int32_t)n && !memcmp(back, prompt, n), "prompt does not round-trip");
            free(back);
            free(got);
            line = end ? end + 1 : NULL;
        }
        CHECK(lines > 0);
        celer_vocab_free(v);
    }
    free(g);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random valid UTF-8 from a mix of ASCII, Latin, Cyrillic, CJK, emoji and whitespace
 * (U+2581 left out: SentencePiece decodes it as a space). */
static size_t random_utf8(uint64_t *s, char *buf, size_t max_cp) {
    size_t n = 0, count = rng_next(s) % max_cp;
    for (size_t i = 0; i < count; i++) {
        uint32_t r = (uint32_t)rng_next(s), cp;
        switch (r % 8) {
        case 0: case 1: case 2: cp = 0x20 + (r >> 8) % 0x5F; break;
        case 3: cp = " \n\t\r"[(r >> 8) % 4]; break;
        case 4: cp = 0xA0 + (r >> 8) % 0x500; break;
        case 5: cp = 0x3000 + (r >> 8) % 0x7000; break;
        case 6: cp = 0x1F300 + (r >> 8) % 0x300; break;
        default: cp = 1 + (r >> 8) % 0x2FFFF; break;
        }
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x2581) cp = 'x';
        if (cp < 0x80) buf[n++] = (char)cp;
        else if (cp < 0x800) buf[n++] = (char)(0xC0 | cp >> 6), buf[n++] = (char)(0x80 | (cp & 63));
        else if (cp < 0x10000) buf[n++] = (char)(0xE0 | cp >> 12), buf[n++] = (char)(0x80 | ((cp >> 6) & 63)), buf[n++] = (char)(0x80 | (cp & 63));
        else buf[n++] = (char)(0xF0 | cp >> 18), buf[n++] = (char)(0x80 | ((cp >> 12) & 63)), buf[n++] = (char)(0x80 | ((cp >> 6) & 63)), buf[n++] = (char)(0x80 | (cp & 63));
    }
    return n;
}

static void check_roundtrip(const celer_vocab *v, const char *name, const char *s, size_t n, bool add_special) {
    int32_t nt;
    int32_t *ids = tok(v, s, n, add_special, false, &nt);
    REQUIREF(nt >= 0, "%s: tokenize failed", name);
    int32_t len;
    char *back = detok(v, ids, nt, false, &len);
    CHECKF(len == (int32_t)n && !memcmp(back, s, n), "%s: %zu bytes do not round-trip (got %d)", name, n, len);
    free(back);
    free(ids);
}

TEST(tok_roundtrip_random_utf8_and_bytes) {
    char buf[4096];
    int n_vocabs = 0;
    for (size_t k = 0; k < N_VOCABS; k++) {
        if (!strcmp(k_vocabs[k], "bert-bge")) continue;
        celer_vocab *v = load_vocab(k_vocabs[k]);
        if (!v) continue;
        n_vocabs++;
        uint64_t seed = 0x9E3779B97F4A7C15ull + k;
        for (int it = 0; it < 60 && !test_failed_now(); it++) {
            size_t n = random_utf8(&seed, buf, 200);
            check_roundtrip(v, k_vocabs[k], buf, n, it & 1);
        }
        /* Arbitrary bytes (invalid UTF-8, NUL) also come back unchanged when the
         * vocabulary can spell every byte: Llama's <0xXX> tokens, GPT-2's 256 byte tokens.
         * Many byte-level vocabularies lack the bytes that never occur in UTF-8 (0xC0,
         * 0xC1, 0xF5-0xFF; falcon even some control bytes), which are then dropped as in
         * llama.cpp; deepseek's user-defined "õ".."ÿ" are the byte-level forms of
         * 0xF5-0xFF and decode as text. */
        bool bytes_ok = true;
        for (int b = 0; b < 256 && bytes_ok; b++) {
            char c = (char)b, back[16];
            int32_t id[4], m = celer_tokenize(v, &c, 1, id, 4, false, false);
            int32_t len = m > 0 ? celer_detokenize(v, id, m, back, sizeof back, true, false) : -1;
            bytes_ok = len == 1 && back[0] == c;
        }
        if (!strcmp(k_vocabs[k], "llama-spm") || !strcmp(k_vocabs[k], "gpt-2") || !strcmp(k_vocabs[k], "llama-bpe"))
            CHECKF(bytes_ok, "%s cannot spell every byte", k_vocabs[k]);
        for (int it = 0; bytes_ok && it < 30 && !test_failed_now(); it++) {
            size_t n = rng_next(&seed) % 64;
            for (size_t i = 0; i < n; i++) buf[i] = (char)rng_next(&seed);
            check_roundtrip(v, k_vocabs[k], buf, n, false);
        }
        celer_vocab_free(v);
    }
    if (!n_vocabs) test_skip("no vocab files");
}

TEST(tok_edge_inputs) {
    celer_vocab *spm = load_vocab("llama-spm"), *bpe = load_vocab("gpt-2");
    if (!spm || !bpe) {
        celer_vocab_free(spm), celer_vocab_free(bpe);
        test_skip("no vocab files");
        return;
    }
    int32_t ids[8];
    /* Empty input: nothing, or just BOS. */
    CHECK_EQ_INT(celer_tokenize(spm, "", 0, ids, 8, false, false), 0);
    CHECK_EQ_INT(celer_tokenize(spm, NULL, 0, ids, 8, true, false), 1);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(celer_tokenize(bpe, "", 0, ids, 8, true, false), 0); /* gpt-2 adds no BOS */
    /* A too-small buffer reports the size needed. */
    CHECK_EQ_INT(celer_tokenize(bpe, "Hello world", 11, ids, 1, false, false), -2);
    /* NUL bytes and invalid UTF-8 are tokenized (byte fallback), never dropped. */
    CHECK_EQ_INT(celer_tokenize(spm, "\0", 1, ids, 8, false, false), 2); /* "▁" and <0x00> */
    CHECK_EQ_INT(ids[1], 3);
    CHECK_EQ_INT(celer_tokenize(bpe, "\xff\xfe", 2, ids, 8, false, false), 2);
    /* Bad arguments. */
    CHECK_EQ_INT(celer_tokenize(NULL, "a", 1, ids, 8, false, false), INT32_MIN);
    CHECK_EQ_INT(celer_tokenize(spm, NULL, 3, ids, 8, false, false), INT32_MIN);
    char piece[8];
    CHECK_EQ_INT(celer_token_to_piece(spm, -1, piece, 8, true), 0);
    CHECK_EQ_INT(celer_token_to_piece(spm, 1 << 30, piece, 8, true), 0);
    CHECK_EQ_INT(celer_token_to_piece(spm, 15043, piece, 2, false), -6); /* "▁Hello" -> " Hello" */
    CHECK_EQ_INT(celer_token_to_piece(spm, 15043, piece, 8, false), 6);
    CHECK(!memcmp(piece, " Hello", 6));
    CHECK_EQ_INT(celer_token_to_piece(spm, 1, piece, 8, false), 0); /* BOS is a control token */
    CHECK_EQ_INT(celer_token_to_piece(spm, 1, piece, 8, true), 3);
    CHECK_EQ_INT(celer_token_to_piece(spm, 3 + 0x41, piece, 8, false), 1); /* <0x41> */
    CHECK_EQ_INT(piece[0], 'A');
    CHECK_EQ_INT(celer_vocab_token_type(spm, 3), CELER_TOKEN_BYTE);
    CHECK_EQ_INT(celer_vocab_token_type(spm, -5), -1);
    celer_vocab_free(spm);
    celer_vocab_free(bpe);
}

/* 1 MiB inputs that would be slow with a quadratic algorithm: one long word, one long run
 * of spaces, and spaces ended by a digit (deepseek-llm's `\s+$` expression). */
TEST(tok_large_inputs) {
    char *buf = malloc((1 << 20) + 1);
    const char *names[] = {"llama-spm", "gpt-2", "deepseek-llm", "qwen2"};
    int done = 0;
    for (int k = 0; k < 4; k++) {
        celer_vocab *v = load_vocab(names[k]);
        if (!v) continue;
        done++;
        /* 1 MiB for two vocabularies, 256 KiB for the others (test time). */
        size_t n = k < 2 ? 1 << 20 : 1 << 18;
        memset(buf, 'a', n);
        check_roundtrip(v, names[k], buf, n, false);
        memset(buf, ' ', n);
        buf[n - 1] = '1';
        check_roundtrip(v, names[k], buf, n, false);
        celer_vocab_free(v);
    }
    free(buf);
    if (!done) test_skip("no vocab files");
}

TEST(tok_special_tokens_in_text) {
    celer_vocab *v = load_vocab("qwen2");
    if (!v) {
        test_skip("no qwen2 vocab");
        return;
    }
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t im_start = celer_vocab_find(v, "<|im_start|>", 12), im_end = celer_vocab_find(v, "<|im_end|>", 10);
    REQUIRE(im_start >= 0 && im_end >= 0);
    int32_t n;
    int32_t *ids = tok(v, s, strlen(s), false, true, &n);
    REQUIRE(n >= 3);
    CHECK_EQ_INT(ids[0], im_start);
    CHECK_EQ_INT(ids[n - 1], im_end);
    int32_t len;
    char *back = detok(v, ids, n, true, &len); /* rendered back with special = true */
    CHECK(len == (int32_t)strlen(s) && !memcmp(back, s, (size_t)len));
    free(back);
    back = detok(v, ids, n, false, &len); /* dropped with special = false */
    CHECK(len == 7 && !memcmp(back, "user\nhi", 7));
    free(back);
    free(ids);
    /* Not allowed: the same text is plain text. */
    ids = tok(v, s, strlen(s), false, false, &n);
    for (int32_t i = 0; i < n; i++) CHECK(ids[i] != im_start && ids[i] != im_end);
    free(ids);
    CHECK(celer_vocab_is_eog(v, im_end));
    CHECK(celer_vocab_is_eog(v, celer_vocab_eos(v)));
    CHECK(!celer_vocab_is_eog(v, im_start));
    celer_vocab_free(v);

    v = load_vocab("llama-bpe");
    if (v) {
        CHECK_EQ_INT(celer_vocab_bos(v), 128000);
        CHECK_EQ_INT(celer_vocab_eos(v), 128001);
        CHECK_EQ_INT(celer_vocab_eot(v), 128009);
        CHECK(celer_vocab_is_eog(v, 128009));
        int32_t id[4];
        CHECK_EQ_INT(celer_tokenize(v, "Hello", 5, id, 4, true, false), 2);
        CHECK_EQ_INT(id[0], 128000);
        CHECK_EQ_INT(celer_tokenize(v, "<|eot_id|>", 10, id, 4, false, true), 1);
        CHECK_EQ_INT(id[0], 128009);
    }
    celer_vocab_free(v);
}

TEST(tok_streaming_detokenizer) {
    celer_vocab *v = load_vocab("llama-spm");
    if (!v) {
        test_skip("no vocab");
        return;
    }
    /* 🦙 is four byte tokens in Llama 2's vocabulary: nothing comes out until the last. */
    const int32_t llama[] = {243, 162, 169, 156};
    celer_detok *d;
    REQUIRE(celer_detok_create(v, false, &d) == CELER_OK);
    char out[64];
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(celer_detok_push(d, llama[i], out, sizeof out), 0);
    CHECK_EQ_INT(celer_detok_push(d, llama[3], out, 2), -4); /* too small: nothing consumed */
    CHECK_EQ_INT(celer_detok_push(d, llama[3], out, sizeof out), 4);
    CHECK(!memcmp(out, "\xF0\x9F\xA6\x99", 4));
    /* An incomplete sequence is held back until flushed. */
    CHECK_EQ_INT(celer_detok_push(d, 243, out, sizeof out), 0);
    CHECK_EQ_INT(celer_detok_push(d, 15043, out, sizeof out), 7); /* broken: passed through */
    CHECK(!memcmp(out, "\xF0 Hello", 7));
    CHECK_EQ_INT(celer_detok_push(d, 228, out, sizeof out), 0);
    CHECK_EQ_INT(celer_detok_flush(d, out, sizeof out), 1);
    CHECK_EQ_INT(celer_detok_flush(d, out, sizeof out), 0);
    celer_detok_free(d);

    /* Streaming gives the same bytes as whole-sequence decoding, for every test input. */
    size_t isz;
    char *raw = test_read_file(test_data_path("vocab/ggml-vocab-llama-spm.gguf.inp"), &isz);
    if (raw) {
        char *inp[256];
        size_t inp_len[256];
        int n = split_inputs(raw, isz, inp, inp_len, 256);
        REQUIRE(celer_detok_create(v, true, &d) == CELER_OK);
        for (int i = 0; i < n; i++) {
            int32_t nt, len;
            int32_t *ids = tok(v, inp[i], inp_len[i], true, false, &nt);
            int32_t whole = celer_detokenize(v, ids, nt, NULL, 0, false, true);
            char *all = malloc((size_t)(whole < 0 ? -whole : whole) + 1), *st = malloc(4096 + 64);
            len = celer_detokenize(v, ids, nt, all, whole < 0 ? -whole : whole, false, true);
            size_t o = 0;
            for (int32_t k = 0; k < nt; k++) {
                int32_t r = celer_detok_push(d, ids[k], st + o, 64);
                REQUIRE(r >= 0);
                CHECK(r == 0 || o + (size_t)r == 0 || 1);
                o += (size_t)r;
            }
            o += (size_t)celer_detok_flush(d, st + o, 64);
            CHECKF((int32_t)o == len && !memcmp(st, all, o), "case %d streams differently", i);
            free(all), free(st), free(ids);
        }
        celer_detok_free(d);
        free(raw);
    }
    celer_vocab_free(v);
}

TEST(tok_load_errors) {
    celer_vocab *v = (celer_vocab *)1;
    celer_error err = {0};
    CHECK(celer_vocab_load("/nonexistent/vocab.gguf", &v, &err) == CELER_ERR_IO);
    CHECK(v == NULL);
    CHECK(strstr(err.message, "nonexistent") != NULL);
    /* A llama2.c checkpoint is not a tokenizer file. */
    const char *ckpt = test_data_path("models/stories260K.bin");
    if (test_file_exists(ckpt)) {
        CHECK(celer_vocab_load(ckpt, &v, &err) == CELER_ERR_FORMAT);
        CHECK(v == NULL);
    }
    /* A truncated llama2.c tokenizer. */
    char path[512];
    snprintf(path, sizeof path, "%s/tok_trunc.bin", test_tmp_dir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    const unsigned char junk[] = {8, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 'a', 'b'};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    CHECK(celer_vocab_load(path, &v, &err) == CELER_ERR_FORMAT);
    /* With a model's vocabulary size the file must have that many tokens. */
    CHECK(ctok_vocab_from_llama2c(test_data_path("models/tok512.bin"), 600, &v, &err) == CELER_ERR_FORMAT ||
          !test_file_exists(test_data_path("models/tok512.bin")));
    CHECK(celer_vocab_n_tokens(NULL) == 0 && celer_vocab_bos(NULL) == -1);
    celer_vocab_free(NULL);
}

TEST(tok_cli_tokenize_detokenize) {
    const char *spm = test_data_path("vocab/ggml-vocab-llama-spm.gguf");
    const char *bin = test_celer_bin();
    if (!test_file_exists(spm) || !test_file_exists(bin)) {
        test_skip("no vocab or no celer binary");
        return;
    }
    char in[512], cmd[2048];
    snprintf(in, sizeof in, "%s/tok_cli_in.txt", test_tmp_dir());
    FILE *f = fopen(in, "wb");
    REQUIRE(f);
    fputs(" Hello world\n", f); /* the trailing newline is part of the input */
    fclose(f);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' < '%s'", bin, spm, in);
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    CHECK(out && !strcmp(out, "1 29871 15043 3186 13\n"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' --no-bos --pieces < '%s'", bin, spm, in);
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    CHECK(out && !strcmp(out, "\" \"\n\" Hello\"\n\" world\"\n\"\\n\"\n"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' < '%s' | '%s' detokenize -m '%s'", bin, spm, in, bin, spm);
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    CHECK(out && !strcmp(out, " Hello world\n"));
    free(out);
    snprintf(cmd, sizeof cmd, "echo '1 99999999' | '%s' detokenize -m '%s'", bin, spm);
    CHECK(test_run_cmd(cmd, &out, true) != 0);
    CHECK(out && strstr(out, "bad token id"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize < /dev/null", bin);
    CHECK(test_run_cmd(cmd, &out, true) != 0);
    free(out);
}
