/*
 * llama_peer: `celer bench --plain`'s speed measurements, made the same way on llama.cpp, so
 * that both engines can be raced on one file in one run (bench/run.sh runs it when
 * LLAMA_LIB_DIR is set).
 *
 *   llama-peer LIB_DIR MODEL [REPS]
 *
 * LIB_DIR holds a built llama.cpp: libllama.so and libggml.so (any suffix after .so, or a
 * version before it, as prebuilt packages name them) and, where the build has them, the
 * dynamically loaded CPU backends (libggml-cpu-*.so), of which ggml picks the best for the
 * CPU. Nothing of llama.cpp is compiled in: its C API is reached through dlopen/dlsym, with
 * the few declarations below written against its documented interface. The parameter
 * structs change between llama.cpp versions, so the fields set here are found by their
 * default values and checked through llama.cpp's own getters after the context is made;
 * a mismatch is reported and the program stops rather than measure something else.
 *
 * Measurements (same definitions as src/cli/cmd_bench.c, median of REPS, default 3):
 *   decode at 1 and 2 threads: one-token steps after a 32-token prompt, 64 tokens, greedy;
 *   prompt: one batch of 512 tokens (2 threads);
 *   batch cost: one pass of k = 1, 2, 4, 8, 16 tokens after a 128-token prefix with logits for
 *   every row, the KV cache cut back to the prefix between passes, the k values taking turns
 *   within each round (at least 7 rounds, after one warm-up round); the cost of k is the
 *   median over the rounds of each round's k-pass / 1-pass.
 * Prints one JSON object with the fields of `celer bench --plain --json` that it measures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Large enough for either parameter struct of any llama.cpp version (a few hundred bytes):
 * they are returned and passed by value, in memory, so a larger buffer is safe both ways. */
typedef struct {
    _Alignas(16) unsigned char bytes[1024];
} peer_params;

/* llama_batch: stable since 2023 (n_tokens, token, embd, pos, n_seq_id, seq_id, logits). */
typedef struct {
    int32_t n_tokens;
    int32_t *token;
    float *embd;
    int32_t *pos;
    int32_t *n_seq_id;
    int32_t **seq_id;
    int8_t *logits;
} peer_batch;

typedef struct {
    peer_params (*model_default_params)(void);
    peer_params (*context_default_params)(void);
    void (*backend_init)(void);
    void *(*model_load_from_file)(const char *path, peer_params params);
    void *(*init_from_model)(void *model, peer_params params);
    void (*free_context)(void *ctx);
    void (*model_free)(void *model);
    const void *(*model_get_vocab)(const void *model);
    int32_t (*vocab_n_tokens)(const void *vocab);
    peer_batch (*batch_init)(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
    void (*batch_free)(peer_batch batch);
    int32_t (*decode)(void *ctx, peer_batch batch);
    void (*synchronize)(void *ctx);
    float *(*get_logits_ith)(void *ctx, int32_t i);
    void *(*get_memory)(void *ctx);
    void (*memory_clear)(void *mem, bool data);
    bool (*memory_seq_rm)(void *mem, int32_t seq, int32_t p0, int32_t p1);
    uint32_t (*n_ctx)(const void *ctx);
    uint32_t (*n_batch)(const void *ctx);
    uint32_t (*n_ubatch)(const void *ctx);
    int32_t (*n_threads)(void *ctx);
    int32_t (*n_threads_batch)(void *ctx);
    void (*backend_load_all_from_path)(const char *dir);
} llama_api;

enum { N_PROMPT = 32, N_GEN = 64, N_PP = 512, N_PREFIX = 128, N_CTX = 1024, MAX_REPS = 64 };
static const int32_t batch_ks[5] = {1, 2, 4, 8, 16};

typedef struct {
    llama_api api;
    void *model, *ctx, *mem;
    peer_batch batch;
    int32_t n_vocab;
} peer;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The first file in dir whose name starts with `stem` followed by '.' (libllama.so,
 * libllama.so.0, libllama.v0.5.0.so), dlopened globally so the backends find its symbols. */
static void *open_lib(const char *dir, const char *stem) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "llama-peer: cannot open folder %s\n", dir);
        return NULL;
    }
    void *h = NULL;
    const size_t len = strlen(stem);
    for (struct dirent *e; !h && (e = readdir(d));) {
        if (strncmp(e->d_name, stem, len) || e->d_name[len] != '.' || !strstr(e->d_name, ".so")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        if (!h) fprintf(stderr, "llama-peer: %s\n", dlerror());
    }
    closedir(d);
    if (!h) fprintf(stderr, "llama-peer: no loadable %s.*.so in %s\n", stem, dir);
    return h;
}

/* Resolves one symbol into *slot (a function pointer); false, with a message, when missing. */
static bool resolve(void *lib, const char *name, void *slot) {
    void *f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "llama-peer: %s not found (not a llama.cpp of 2025 or later?)\n", name);
        return false;
    }
    memcpy(slot, &f, sizeof f);
    return true;
}

static bool load_api(const char *dir, llama_api *a) {
    void *ggml = open_lib(dir, "libggml"), *llama = ggml ? open_lib(dir, "libllama") : NULL;
    if (!llama) return false;
    const struct {
        void *lib;
        const char *name;
        void *slot;
    } syms[] = {
        {llama, "llama_model_default_params", &a->model_default_params},
        {llama, "llama_context_default_params", &a->context_default_params},
        {llama, "llama_backend_init", &a->backend_init},
        {llama, "llama_model_load_from_file", &a->model_load_from_file},
        {llama, "llama_init_from_model", &a->init_from_model},
        {llama, "llama_free", &a->free_context},
        {llama, "llama_model_free", &a->model_free},
        {llama, "llama_model_get_vocab", &a->model_get_vocab},
        {llama, "llama_vocab_n_tokens", &a->vocab_n_tokens},
        {llama, "llama_batch_init", &a->batch_init},
        {llama, "llama_batch_free", &a->batch_free},
        {llama, "llama_decode", &a->decode},
        {llama, "llama_synchronize", &a->synchronize},
        {llama, "llama_get_logits_ith", &a->get_logits_ith},
        {llama, "llama_get_memory", &a->get_memory},
        {llama, "llama_memory_clear", &a->memory_clear},
        {llama, "llama_memory_seq_rm", &a->memory_seq_rm},
        {llama, "llama_n_ctx", &a->n_ctx},
        {llama, "llama_n_batch", &a->n_batch},
        {llama, "llama_n_ubatch", &a->n_ubatch},
        {llama, "llama_n_threads", &a->n_threads},
        {llama, "llama_n_threads_batch", &a->n_threads_batch},
        {ggml, "ggml_backend_load_all_from_path", &a->backend_load_all_from_path},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!resolve(syms[i].lib, syms[i].name, syms[i].slot)) return false;
    return true;
}

/* Context parameters with n_ctx, n_batch, n_ubatch and both thread counts set. The struct
 * starts n_ctx, n_batch, n_ubatch (defaults 512, 2048, 512) in every version since 2023;
 * the thread counts are the first two adjacent int32 fields after those that both hold the
 * default thread count, and are confirmed by the getters after the context is made. */
static bool context_params(const llama_api *a, int32_t threads, peer_params *out) {
    *out = a->context_default_params();
    int32_t w[64];
    memcpy(w, out->bytes, sizeof w);
    if (w[0] != 512 || w[1] != 2048 || w[2] != 512) {
        fprintf(stderr, "llama-peer: unexpected llama_context_params layout (%d %d %d)\n", w[0], w[1], w[2]);
        return false;
    }
    int it = -1;
    for (int i = 3; i < 16 && it < 0; i++)
        if (w[i] > 0 && w[i] <= 512 && w[i] == w[i + 1] && w[i] != 1) it = i;
    if (it < 0) {
        fprintf(stderr, "llama-peer: cannot find the thread counts in llama_context_params\n");
        return false;
    }
    w[0] = N_CTX;
    w[1] = w[2] = N_PP;
    w[it] = w[it + 1] = threads;
    memcpy(out->bytes, w, sizeof w);
    return true;
}

static bool make_context(peer *p, int32_t threads) {
    peer_params cp;
    if (!context_params(&p->api, threads, &cp)) return false;
    p->ctx = p->api.init_from_model(p->model, cp);
    if (!p->ctx) {
        fprintf(stderr, "llama-peer: llama_init_from_model failed\n");
        return false;
    }
    if (p->api.n_ctx(p->ctx) != N_CTX || p->api.n_batch(p->ctx) != N_PP || p->api.n_ubatch(p->ctx) != N_PP ||
        p->api.n_threads(p->ctx) != threads || p->api.n_threads_batch(p->ctx) != threads) {
        fprintf(stderr, "llama-peer: the context did not take the parameters set (llama.cpp version?)\n");
        return false;
    }
    p->mem = p->api.get_memory(p->ctx);
    return true;
}

/* One llama_decode of n tokens of sequence 0 at positions p0.., waiting for it to finish;
 * logits for every row when `all`, else only for the last. */
static bool decode(peer *p, const int32_t *ids, int32_t n, int32_t p0, bool all) {
    peer_batch *b = &p->batch;
    b->n_tokens = n;
    for (int32_t i = 0; i < n; i++) {
        b->token[i] = ids[i];
        b->pos[i] = p0 + i;
        b->n_seq_id[i] = 1;
        b->seq_id[i][0] = 0;
        b->logits[i] = (int8_t)(all || i == n - 1);
    }
    if (p->api.decode(p->ctx, *b) != 0) {
        fprintf(stderr, "llama-peer: llama_decode failed\n");
        return false;
    }
    p->api.synchronize(p->ctx);
    return true;
}

static int32_t argmax_last(peer *p) {
    const float *x = p->api.get_logits_ith(p->ctx, -1);
    int32_t best = 0;
    for (int32_t i = 1; i < p->n_vocab; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static bool run_decode(peer *p, const int32_t *ids, int reps, double *tps) {
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        p->api.memory_clear(p->mem, true);
        if (!decode(p, ids, N_PROMPT, 0, false)) return false;
        int32_t tok = argmax_last(p);
        const double t0 = now();
        for (int32_t i = 0; i < N_GEN; i++) {
            if (!decode(p, &tok, 1, N_PROMPT + i, false)) return false;
            tok = argmax_last(p);
        }
        v[r] = N_GEN / (now() - t0);
    }
    *tps = median(v, reps);
    return true;
}

static bool run_prompt(peer *p, const int32_t *ids, int reps, double *tps) {
    double v[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        p->api.memory_clear(p->mem, true);
        const double t0 = now();
        if (!decode(p, ids, N_PP, 0, false)) return false;
        v[r] = N_PP / (now() - t0);
    }
    *tps = median(v, reps);
    return true;
}

/* ms: median pass times; cost: median over the rounds of each round's k-pass / 1-pass (as
 * celer bench's batch_cost). */
static bool run_batch_cost(peer *p, const int32_t *ids, int reps, double ms[5], double cost[5]) {
    static double v[5][MAX_REPS];
    p->api.memory_clear(p->mem, true);
    if (!decode(p, ids, N_PREFIX, 0, false)) return false;
    if (reps < 7) reps = 7;
    for (int r = -1; r < reps; r++) /* round -1 warms up */
        for (int ik = 0; ik < 5; ik++) {
            if (!p->api.memory_seq_rm(p->mem, 0, N_PREFIX, -1)) {
                fprintf(stderr, "llama-peer: cannot cut the KV cache back to the prefix\n");
                return false;
            }
            const double t0 = now();
            if (!decode(p, ids + N_PREFIX, batch_ks[ik], N_PREFIX, true)) return false;
            if (r >= 0) v[ik][r] = (now() - t0) * 1e3;
        }
    static double ratio[5][MAX_REPS]; /* before the medians, which sort v in place */
    for (int ik = 0; ik < 5; ik++)
        for (int r = 0; r < reps; r++) ratio[ik][r] = v[ik][r] / v[0][r];
    for (int ik = 0; ik < 5; ik++) {
        ms[ik] = median(v[ik], reps);
        cost[ik] = median(ratio[ik], reps);
    }
    return true;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: llama-peer LIB_DIR MODEL [REPS]\n");
        return 2;
    }
    const int reps = argc == 4 ? atoi(argv[3]) : 3;
    if (reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "llama-peer: REPS must be 1..%d\n", MAX_REPS);
        return 2;
    }
    static peer p;
    if (!load_api(argv[1], &p.api)) return 1;
    p.api.backend_load_all_from_path(argv[1]);
    p.api.backend_init();
    const double t0 = now();
    p.model = p.api.model_load_from_file(argv[2], p.api.model_default_params());
    const double load_s = now() - t0;
    if (!p.model) {
        fprintf(stderr, "llama-peer: llama.cpp could not load %s\n", argv[2]);
        return 1;
    }
    p.n_vocab = p.api.vocab_n_tokens(p.api.model_get_vocab(p.model));
    if (p.n_vocab < 2) {
        fprintf(stderr, "llama-peer: %s has a vocabulary of %d tokens\n", argv[2], p.n_vocab);
        return 1;
    }
    p.batch = p.api.batch_init(N_PP, 0, 1);
    /* token ids spread over the vocabulary; the values do not change the work */
    int32_t ids[N_PP];
    for (int32_t i = 0; i < N_PP; i++) ids[i] = 1 + (int32_t)((i * 7919L) % (p.n_vocab - 1));
    double dec[2], pp = 0, ms[5], cost[5];
    for (int32_t threads = 1; threads <= 2; threads++) {
        if (!make_context(&p, threads) || !run_decode(&p, ids, reps, &dec[threads - 1])) return 1;
        if (threads == 2 && (!run_prompt(&p, ids, reps, &pp) || !run_batch_cost(&p, ids, reps, ms, cost))) return 1;
        p.api.free_context(p.ctx);
    }
    printf("{\"engine\": \"llama.cpp\", \"load_s\": %.4f, \"decode_tps\": {\"1\": %.3f, \"2\": %.3f}, "
           "\"prompt_tps\": %.3f, \"batch_ms\": {",
           load_s, dec[0], dec[1], pp);
    for (int ik = 0; ik < 5; ik++) printf("%s\"%d\": %.3f", ik ? ", " : "", batch_ks[ik], ms[ik]);
    printf("}, \"batch_cost\": {");
    for (int ik = 0; ik < 5; ik++) printf("%s\"%d\": %.3f", ik ? ", " : "", batch_ks[ik], cost[ik]);
    printf("}}\n");
    p.api.batch_free(p.batch);
    p.api.model_free(p.model);
    return 0;
}
