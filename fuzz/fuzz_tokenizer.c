/*
 * libFuzzer target for tokenize / detokenize. Input: one control byte, then text.
 * The control byte picks the vocabulary (llama-spm SentencePiece, gpt-2, llama-bpe and
 * qwen2 byte-level BPE, deepseek-llm, bert WordPiece, llama2.c tok512) and the
 * add_special / parse_special flags. Checks: no crash, ids in range, the whole-sequence
 * and streaming detokenizers agree, the too-small-buffer protocol works, and the text
 * round-trips exactly for vocabularies that can spell every byte (found at start-up).
 * Vocabularies are read once from $CELER_DATA (default ../shared).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celer.h"

#define N_VOCABS 7

static celer_vocab *g_vocab[N_VOCABS];
static bool g_exact[N_VOCABS]; /* round-trips any bytes */

static void load_all(void) {
    static const char *const rel[N_VOCABS] = {
        "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf",
        "vocab/ggml-vocab-llama-bpe.gguf", "vocab/ggml-vocab-qwen2.gguf",
        "vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-bert-bge.gguf",
        "models/tok512.bin",
    };
    const char *base = getenv("CELER_DATA");
    if (!base || !*base) base = "../shared";
    int n = 0;
    for (int i = 0; i < N_VOCABS; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", base, rel[i]);
        celer_error err;
        if (celer_vocab_load(path, &g_vocab[i], &err) != CELER_OK) continue;
        n++;
        /* Exact for any bytes only if every single byte comes back (see the tests). */
        g_exact[i] = strcmp(celer_vocab_model(g_vocab[i]), "bert") != 0;
        for (int b = 0; b < 256 && g_exact[i]; b++) {
            char c = (char)b, back[16];
            int32_t id[4], m = celer_tokenize(g_vocab[i], &c, 1, id, 4, false, false);
            int32_t len = m > 0 ? celer_detokenize(g_vocab[i], id, m, back, sizeof back, true, false) : -1;
            g_exact[i] = len == 1 && back[0] == c;
        }
    }
    if (n == 0) fprintf(stderr, "fuzz_tokenizer: no vocabulary found under %s\n", base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool loaded = false;
    if (!loaded) {
        load_all();
        loaded = true;
    }
    if (size == 0) return 0;
    uint8_t ctl = data[0];
    const celer_vocab *v = g_vocab[ctl % N_VOCABS];
    if (!v) return 0;
    bool add_special = ctl & 0x10, parse_special = ctl & 0x20;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int32_t need = celer_tokenize(v, text, len, NULL, 0, add_special, parse_special);
    if (need == INT32_MIN) abort();
    int32_t cap = need < 0 ? -need : need;
    int32_t *ids = malloc(((size_t)cap + 1) * sizeof *ids);
    int32_t n = celer_tokenize(v, text, len, ids, cap, add_special, parse_special);
    if (n != cap) abort();
    int32_t n_vocab = celer_vocab_n_tokens(v);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) abort();

    bool special = ctl & 0x40;
    int32_t tl = celer_detokenize(v, ids, n, NULL, 0, false, special);
    size_t tcap = (size_t)(tl < 0 ? -tl : tl);
    char *whole = malloc(tcap + 1);
    if (celer_detokenize(v, ids, n, whole, (int32_t)tcap, false, special) != (int32_t)tcap) abort();

    /* Streaming gives the same bytes, handed out in complete UTF-8 pieces. */
    celer_detok *d;
    if (celer_detok_create(v, special, &d) != CELER_OK) abort();
    char *stream = malloc(tcap + 8);
    size_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        /* With no room the token is refused (negative) unless it yields nothing yet. */
        char small[1];
        int32_t r = celer_detok_push(d, ids[i], small, 0);
        if (r > 0) abort();
        if (r == 0) continue;
        r = celer_detok_push(d, ids[i], stream + o, (int32_t)(tcap + 8 - o));
        if (r < 0) abort();
        o += (size_t)r;
    }
    int32_t r = celer_detok_flush(d, stream + o, (int32_t)(tcap + 8 - o));
    if (r < 0 || r > 3) abort();
    o += (size_t)r;
    celer_detok_free(d);
    if (o != tcap || memcmp(stream, whole, o)) abort();

    /* Exact round trip (no special-token parsing, special pieces left out). SentencePiece
     * stores spaces as U+2581, so text that contains U+2581 itself comes back with spaces. */
    bool spm = !strcmp(celer_vocab_model(v), "llama");
    if (g_exact[ctl % N_VOCABS] && !parse_special && !(spm && memmem(text, len, "\xE2\x96\x81", 3))) {
        int32_t bl = celer_detokenize(v, ids, n, whole, (int32_t)tcap, true, false);
        if (bl != (int32_t)len || memcmp(whole, text, len)) abort();
    }
    for (int32_t i = 0; i < n && i < 16; i++) {
        char piece[8];
        int32_t k = celer_token_to_piece(v, ids[i], piece, sizeof piece, special);
        if (k == INT32_MIN) abort();
    }
    free(stream);
    free(whole);
    free(ids);
    return 0;
}
