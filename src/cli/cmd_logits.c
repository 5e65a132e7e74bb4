/* celer logits — evaluate a token sequence in one batch with an F32 KV cache and write every
 * row of logits as raw little-endian float32 (row i = logits after token i), for comparing
 * engines. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int logits_usage(FILE *f) {
    fprintf(f, "usage: celer logits -m MODEL [-z TOKENIZER] --tokens \"1 2 3\" --out FILE [-t THREADS] [--reference | --kernels NAME]\n");
    return f == stdout ? 0 : 2;
}

/* Parses space-separated ids into a malloc'd array. */
static int32_t *parse_tokens(const char *s, int32_t *n_out) {
    int32_t cap = 64, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    while (ids && *s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == ',') s++;
        if (!*s) break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) {
            free(ids);
            return NULL;
        }
        if (n == cap) {
            int32_t *nb = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!nb) {
                free(ids);
                return NULL;
            }
            ids = nb;
        }
        ids[n++] = (int32_t)v;
        s = end;
    }
    *n_out = n;
    return ids;
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *tokens = NULL, *out_path = NULL;
    int64_t threads = 0;
    bool reference = false;
    const char *kernels = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return logits_usage(stdout);
        else if (!strcmp(a, "--reference")) reference = true;
        else if (!strcmp(a, "--kernels") && has_val) kernels = argv[++i];
        else if (!strcmp(a, "-m") && has_val) model_path = argv[++i];
        else if (!strcmp(a, "-z") && has_val) tok_path = argv[++i];
        else if (!strcmp(a, "--tokens") && has_val) tokens = argv[++i];
        else if (!strcmp(a, "--out") && has_val) out_path = argv[++i];
        else if (!strcmp(a, "-t") && has_val) {
            if (!cli_parse_i64(argv[++i], &threads) || threads < 1 || threads > 512)
                return cli_error("bad thread count '%s'", argv[i]);
        } else {
            cli_error("unknown option or missing value: '%s'", a);
            return logits_usage(stderr);
        }
    }
    if (!model_path || !tokens || !out_path) return logits_usage(stderr);
    int32_t n = 0;
    int32_t *ids = parse_tokens(tokens, &n);
    if (!ids || n == 0) {
        free(ids);
        return cli_error("--tokens must be a non-empty list of token ids");
    }
    celer_error err;
    celer_model_params mp = celer_model_default_params();
    mp.tokenizer_path = tok_path;
    mp.force_reference_kernels = reference;
    mp.kernels = kernels;
    celer_model *model = NULL;
    celer_context *ctx = NULL;
    int rc = 0;
    if (celer_model_load(model_path, &mp, &model, &err) != CELER_OK) rc = cli_error("%s", err.message);
    /* Tokens go through in chunks (each chunk's rows all ask for logits), so a long input
     * needs no n x n batch mask; the cache holds the whole sequence. */
    const int32_t chunk = n < 512 ? n : 512;
    if (!rc) {
        celer_context_params cp = celer_context_default_params();
        cp.n_ctx = (uint32_t)n;
        cp.n_batch = (uint32_t)chunk;
        cp.n_threads = (int32_t)threads;
        cp.kv_type = CELER_KV_F32;
        if (celer_context_create(model, &cp, &ctx, &err) != CELER_OK) rc = cli_error("%s", err.message);
    }
    uint8_t *want = calloc((size_t)chunk, 1);
    FILE *f = NULL;
    if (!rc && !want) rc = cli_error("out of memory");
    if (!rc && !(f = fopen(out_path, "wb"))) rc = cli_error("%s: cannot open for writing", out_path);
    const size_t V = model ? (size_t)celer_model_n_vocab(model) : 0;
    for (int32_t i0 = 0; !rc && i0 < n; i0 += chunk) {
        int32_t k = n - i0 < chunk ? n - i0 : chunk;
        memset(want, 1, (size_t)k);
        celer_batch b = {.n_tokens = k, .tokens = ids + i0, .logits = want};
        if (celer_decode(ctx, &b, &err) != CELER_OK) rc = cli_error("%s", err.message);
        for (int32_t i = 0; !rc && i < k; i++)
            if (fwrite(celer_get_logits(ctx, i), sizeof(float), V, f) != V) rc = cli_error("%s: write failed", out_path);
    }
    if (f && fclose(f) != 0 && !rc) rc = cli_error("%s: write failed", out_path);
    if (!rc) fprintf(stderr, "celer: wrote %d x %d logits to %s\n", (int)n, (int)V, out_path);
    free(want);
    free(ids);
    celer_context_free(ctx);
    celer_model_free(model);
    return rc;
}
