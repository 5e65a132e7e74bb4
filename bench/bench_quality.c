/* Repetition of each decoding method on the stories prompts: distinct-2 / distinct-3 (unique
 * n-grams over all n-grams of the continuations, in token ids, pooled over prompts) and the
 * repeated-4-gram rate (share of each continuation's 4-grams that already occurred earlier in
 * it). Lower repetition is what FSD, momentum decoding and contrastive search are for.
 *     build/bench/bench_quality [MODEL] [PROMPTS] [N_TOKENS] [-v]
 * Defaults: $CELER_DATA/models/stories260K.gguf, $CELER_DATA/prompts/stories_prompts.txt, 128. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "celer.h"

typedef struct ngram_set {
    uint64_t *keys;
    size_t n, cap;
} ngram_set;

static uint64_t key_of(const int32_t *t, int n) {
    uint64_t k = 1469598103934665603ull;
    for (int i = 0; i < n; i++) k = (k ^ (uint32_t)t[i]) * 1099511628211ull + (uint64_t)n;
    return k ? k : 1;
}

/* Inserts k; returns true if it was new. Open addressing, grows at half load. */
static bool set_add(ngram_set *s, uint64_t k) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *nk = calloc(cap, sizeof *nk);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i]) continue;
            size_t h = s->keys[i] & (cap - 1);
            while (nk[h]) h = (h + 1) & (cap - 1);
            nk[h] = s->keys[i];
        }
        free(s->keys);
        s->keys = nk;
        s->cap = cap;
    }
    size_t h = k & (s->cap - 1);
    while (s->keys[h]) {
        if (s->keys[h] == k) return false;
        h = (h + 1) & (s->cap - 1);
    }
    s->keys[h] = k;
    s->n++;
    return true;
}

typedef struct stats {
    ngram_set d2, d3;
    long tot2, tot3, rep4, tot4, tokens;
    double seconds;
} stats;

static void account(stats *st, const int32_t *t, int32_t n) {
    for (int32_t i = 0; i + 2 <= n; i++, st->tot2++) set_add(&st->d2, key_of(t + i, 2));
    for (int32_t i = 0; i + 3 <= n; i++, st->tot3++) set_add(&st->d3, key_of(t + i, 3));
    ngram_set own = {0};
    for (int32_t i = 0; i + 4 <= n; i++, st->tot4++)
        if (!set_add(&own, key_of(t + i, 4))) st->rep4++;
    free(own.keys);
    st->tokens += n;
}

int main(int argc, char **argv) {
    const char *data = getenv("CELER_DATA") ? getenv("CELER_DATA") : "../shared";
    char model_path[1024], prompts_path[1024];
    snprintf(model_path, sizeof model_path, "%s/models/stories260K.gguf", data);
    snprintf(prompts_path, sizeof prompts_path, "%s/prompts/stories_prompts.txt", data);
    int n_tokens = 128;
    bool verbose = false;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) verbose = true;
        else if (pos == 0) snprintf(model_path, sizeof model_path, "%s", argv[i]), pos++;
        else if (pos == 1) snprintf(prompts_path, sizeof prompts_path, "%s", argv[i]), pos++;
        else n_tokens = atoi(argv[i]);
    }
    celer_error err = {0};
    celer_model *model = NULL;
    celer_model_params mp = celer_model_default_params();
    if (celer_model_load(model_path, &mp, &model, &err) != CELER_OK) {
        fprintf(stderr, "bench_quality: %s\n", err.message);
        return 1;
    }
    FILE *pf = fopen(prompts_path, "r");
    if (!pf) {
        fprintf(stderr, "bench_quality: cannot open %s\n", prompts_path);
        return 1;
    }
    char lines[64][512];
    int n_prompts = 0;
    while (n_prompts < 64 && fgets(lines[n_prompts], sizeof lines[0], pf)) {
        lines[n_prompts][strcspn(lines[n_prompts], "\r\n")] = 0;
        if (lines[n_prompts][0]) n_prompts++;
    }
    fclose(pf);

    const celer_method methods[] = {CELER_METHOD_GREEDY, CELER_METHOD_BEAM, CELER_METHOD_FSD,
                                    CELER_METHOD_FSD_VEC, CELER_METHOD_MOMENTUM,
                                    CELER_METHOD_CONTRASTIVE, CELER_METHOD_SAMPLE};
    const int n_methods = (int)(sizeof methods / sizeof methods[0]);
    const celer_vocab *vocab = celer_model_vocab(model);
    printf("%d prompts, %d tokens each (EOG ignored), %s\n", n_prompts, n_tokens, model_path);
    printf("%-12s %10s %10s %12s %8s %9s\n", "method", "distinct-2", "distinct-3", "rep-4gram",
           "tokens", "tok/s");
    for (int m = 0; m < n_methods; m++) {
        celer_generate_params p = celer_generate_default_params(methods[m]);
        p.max_tokens = n_tokens;
        p.ignore_eog = true; /* equal lengths, as the papers compare */
        celer_context_params cp = celer_context_default_params();
        cp.n_ctx = 512;
        cp.n_threads = 1;
        celer_generate_context_params(&p, &cp);
        celer_context *ctx = NULL;
        if (celer_context_create(model, &cp, &ctx, &err) != CELER_OK) {
            fprintf(stderr, "bench_quality: %s\n", err.message);
            return 1;
        }
        stats st = {0};
        for (int i = 0; i < n_prompts; i++) {
            int32_t ids[512];
            int32_t n = celer_tokenize(vocab, lines[i], strlen(lines[i]), ids, 512, true, false);
            celer_generate_result r;
            if (n <= 0 || celer_generate(ctx, model, &p, ids, n, NULL, NULL, &r, &err) != CELER_OK) {
                fprintf(stderr, "bench_quality: %s: %s\n", celer_method_name(methods[m]), err.message);
                return 1;
            }
            account(&st, r.tokens, r.n_tokens);
            st.seconds += r.t_total_s;
            if (verbose) printf("  [%s] %s|%s\n", celer_method_name(methods[m]), lines[i], r.text);
            celer_generate_result_free(&r);
        }
        printf("%-12s %10.3f %10.3f %12.3f %8ld %9.0f\n", celer_method_name(methods[m]),
               st.tot2 ? (double)st.d2.n / st.tot2 : 0, st.tot3 ? (double)st.d3.n / st.tot3 : 0,
               st.tot4 ? (double)st.rep4 / st.tot4 : 0, st.tokens,
               st.seconds > 0 ? st.tokens / st.seconds : 0);
        free(st.d2.keys);
        free(st.d3.keys);
        celer_context_free(ctx);
    }
    celer_model_free(model);
    return 0;
}
