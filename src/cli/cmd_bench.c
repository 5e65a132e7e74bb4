/*
 * celer bench --plain — how fast plain decoding is on this machine, and how much one batched
 * pass of k tokens costs compared with one token (the price of verifying k drafted tokens).
 *
 * Measures, each as the median of several runs:
 *   - single-token decoding tok/s at each thread count (-t, default 1 and 2): a short prompt,
 *     then greedy tokens one celer_decode call each;
 *   - prompt processing: one batch of 512 tokens, tok/s (at the largest thread count);
 *   - batch cost: one pass of k = 1, 2, 4, 8, 16 tokens of one sequence after a 128-token
 *     prefix, logits for every row (as verification needs), the KV cache truncated back to the
 *     prefix between runs, the k values taking turns within each round; reported as the ratio
 *     to k = 1 (the median over the rounds of each round's ratio);
 * plus the load time, resident memory (VmRSS) after loading and after the runs, the memory
 * bandwidth of a large-buffer read and the roofline: weight bytes read per token / bandwidth.
 * The bandwidth test runs last so its buffer does not count in the resident-memory figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"

#define MAX_THREADS_LIST 8
#define N_BATCH_K 5
static const int32_t batch_ks[N_BATCH_K] = {1, 2, 4, 8, 16};

static const char usage_text[] =
    "usage: celer bench --plain -m MODEL [--json] [-t THREADS...] [--reps N] [options]\n"
    "  -m MODEL        GGUF model (e.g. from `celer synth`)\n"
    "  --json          print one JSON object instead of the report\n"
    "  -t N [N ...]    thread counts for single-token decoding (default: 1 2); prompt and\n"
    "                  batch-cost runs use the largest\n"
    "  --reps N        runs per measurement, the median is reported (default 3; batch cost\n"
    "                  uses at least 7, at most 64)\n"
    "  --prompt N      tokens before single-token decoding (default 32)\n"
    "  --gen N         tokens decoded one at a time (default 64)\n"
    "  --pp N          prompt-processing batch (default 512)\n"
    "  --prefix N      context before the batch-cost passes (default 128)\n"
    "  --kv f16|f32    KV cache type (default f16, as llama.cpp)\n"
    "  --bw-mib N      buffer of the bandwidth test (default 1024 MiB: beyond any cache)\n"
    "  --reference     plain scalar reference kernels\n"
    "  --kernels NAME  kernel set: reference, avx2 or avx512-vnni (default: the fastest here)\n";

typedef struct bench_opts {
    const char *model;
    bool json, reference;
    const char *kernels;
    int32_t threads[MAX_THREADS_LIST];
    int32_t n_threads_list;
    int32_t reps, n_prompt, n_gen, n_pp, n_prefix, bw_mib;
    celer_kv_type kv;
} bench_opts;

typedef struct bench_result {
    double load_s, rss_load_mb, rss_end_mb, rss_peak_mb;
    double decode_tps[MAX_THREADS_LIST];
    double prompt_tps;
    double batch_ms[N_BATCH_K];
    double batch_cost[N_BATCH_K]; /* median over the rounds of each round's k-pass / 1-pass */
    double bw_1t, bw_nt, bw_1t_cpu, bw_nt_cpu; /* wall clock; CPU time of the readers */
    int64_t file_size, weight_bytes, kv_bytes, n_params;
    char ftype[16];
} bench_result;

/* ---------------------------------------------------------------- small helpers */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A /proc/self/status field in MiB ("VmRSS", "VmHWM"); -1 if unreadable. */
static double proc_status_mb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double mb = -1.0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            mb = (double)strtoll(line + n + 1, NULL, 10) / 1024.0;
            break;
        }
    fclose(f);
    return mb;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Prompt ids: a short story in the model's own vocabulary (so inflated models see real text),
 * repeated to length n; plain ids if the model has no tokenizer. */
static int32_t *make_tokens(const celer_model *model, int32_t n) {
    static const char story[] =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
        "park with her friends. One day, she saw a big red ball under a tree and ran to get it. "
        "Her mom smiled and said they could take it home if nobody came back for it.";
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    int32_t buf[256];
    const celer_vocab *v = celer_model_vocab(model);
    int32_t m = v ? celer_tokenize(v, story, sizeof story - 1, buf, 256, false, false) : 0;
    const int32_t n_vocab = celer_model_n_vocab(model);
    for (int32_t i = 0; ids && i < n; i++) {
        int32_t t = m > 0 ? buf[i % m] : 100 + i * 37;
        ids[i] = t >= 0 && t < n_vocab ? t : i % n_vocab;
    }
    if (ids && v && celer_vocab_bos(v) >= 0 && celer_vocab_bos(v) < n_vocab)
        ids[0] = celer_vocab_bos(v);
    return ids;
}

/* ---------------------------------------------------------------- file facts */

static const char *ftype_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 7: return "Q8_0";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "other";
    }
}

/* Bytes of weights one decoding step reads: every matrix once, except the token embedding, of
 * which one row is read (unless it is also the output matrix). Also the KV cache size of a
 * context of n_ctx rows with kv_elem-byte elements. */
static bool file_facts(const bench_opts *o, int32_t n_ctx, size_t kv_elem, bench_result *r) {
    gguf_file *f = NULL;
    celer_error err;
    if (gguf_open(o->model, &f, &err) != CELER_OK) {
        cli_error("%s", err.message);
        return false;
    }
    r->file_size = (int64_t)gguf_file_size(f);
    uint32_t ft = 999;
    snprintf(r->ftype, sizeof r->ftype, "%s",
             gguf_get_u32(f, "general.file_type", &ft) ? ftype_name(ft) : "unknown");
    const gguf_tensor *embd = gguf_find_tensor(f, "token_embd.weight");
    const bool tied = !gguf_find_tensor(f, "output.weight");
    int64_t bytes = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t == embd && !tied) bytes += (int64_t)(t->size / (uint64_t)(t->ne[1] > 0 ? t->ne[1] : 1));
        else bytes += (int64_t)t->size;
    }
    r->weight_bytes = bytes;
    /* KV cache: n_layer x n_ctx x (K + V) x n_head_kv x head_dim elements. */
    gguf_str arch = {0, NULL};
    uint32_t n_head = 0, n_head_kv = 0, n_embd = 0, n_layer = 0, head_dim = 0;
    char key[96];
    if (gguf_get_str(f, "general.architecture", &arch) && arch.len < 40) {
#define GET(suffix, dst)                                                                        \
    snprintf(key, sizeof key, "%.*s.%s", (int)arch.len, arch.data, suffix);                    \
    gguf_get_u32(f, key, dst);
        GET("attention.head_count", &n_head);
        n_head_kv = n_head;
        GET("attention.head_count_kv", &n_head_kv);
        GET("embedding_length", &n_embd);
        GET("block_count", &n_layer);
        head_dim = n_head ? n_embd / n_head : 0;
        GET("attention.key_length", &head_dim);
#undef GET
    }
    gguf_close(f);
    r->kv_bytes = (int64_t)n_layer * n_ctx * 2 * n_head_kv * head_dim * (int64_t)kv_elem;
    return true;
}

/* ---------------------------------------------------------------- memory bandwidth */

/* 16-byte vectors: native on every x86-64 (SSE2), and wide enough that one core's loads are
 * far faster than DRAM. */
typedef uint64_t bw_vec __attribute__((vector_size(16)));

typedef struct bw_job {
    const bw_vec *buf;
    size_t n;              /* vectors */
    uint64_t sink[64];     /* per thread, so the reads are not optimized away */
    double cpu_s[64];      /* per-thread CPU time of the last read */
} bw_job;

static double thread_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bw_read(void *arg, int32_t ith, int32_t nth) {
    bw_job *j = arg;
    int64_t i0, i1;
    celer_split_even((int64_t)j->n, ith, nth, &i0, &i1);
    const size_t a = (size_t)i0, b = (size_t)i1;
    const double c0 = thread_cpu_now();
    bw_vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    size_t i = a;
    for (; i + 4 <= b; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    bw_vec s = s0 + s1 + s2 + s3;
    if (ith < 64) {
        j->sink[ith] = s[0] + s[1];
        j->cpu_s[ith] = thread_cpu_now() - c0;
    }
}

/* Reads a large buffer (1 GiB by default, beyond any last-level cache) several times.
 * *wall: best wall-clock rate, GB/s; *cpu: best rate counting only the time the threads ran
 * (other tenants' preemption left out). */
static void measure_bandwidth(int32_t n_threads, size_t mib, double *wall, double *cpu) {
    const size_t bytes = mib << 20;
    bw_vec *buf = aligned_alloc(64, bytes);
    celer_pool *pool = celer_pool_create(n_threads);
    *wall = *cpu = 0.0;
    if (buf && pool) {
        memset(buf, 1, bytes); /* fault the pages in */
        bw_job job = {.buf = buf, .n = bytes / sizeof(bw_vec)};
        for (int rep = 0; rep < 5; rep++) {
            double t0 = cli_now();
            celer_pool_run(pool, bw_read, &job);
            double dt = cli_now() - t0, slowest = 0.0;
            for (int32_t t = 0; t < n_threads && t < 64; t++)
                if (job.cpu_s[t] > slowest) slowest = job.cpu_s[t];
            if (dt > 0 && (double)bytes / dt / 1e9 > *wall) *wall = (double)bytes / dt / 1e9;
            if (slowest > 0 && (double)bytes / slowest / 1e9 > *cpu) *cpu = (double)bytes / slowest / 1e9;
        }
    }
    celer_pool_free(pool);
    free(buf);
}

/* ---------------------------------------------------------------- the runs */

static bool make_ctx(const celer_model *model, const bench_opts *o, int32_t threads,
                     celer_context **ctx) {
    celer_context_params cp = celer_context_default_params();
    int32_t need = o->n_prompt + o->n_gen;
    if (o->n_pp > need) need = o->n_pp;
    if (o->n_prefix + 16 > need) need = o->n_prefix + 16;
    cp.n_ctx = (uint32_t)need;
    cp.n_batch = (uint32_t)(o->n_pp > o->n_prefix ? o->n_pp : o->n_prefix);
    if (cp.n_batch < (uint32_t)o->n_prompt) cp.n_batch = (uint32_t)o->n_prompt;
    if (cp.n_batch < 16) cp.n_batch = 16;
    cp.n_threads = threads;
    cp.kv_type = o->kv;
    celer_error err;
    if (celer_context_create(model, &cp, ctx, &err) != CELER_OK) {
        cli_error("%s", err.message);
        return false;
    }
    return true;
}

static bool decode(celer_context *ctx, const int32_t *ids, int32_t n, const uint8_t *logits) {
    celer_batch b = {.n_tokens = n, .tokens = ids, .logits = logits};
    celer_error err;
    if (celer_decode(ctx, &b, &err) != CELER_OK) {
        cli_error("decode: %s", err.message);
        return false;
    }
    return true;
}

/* Tokens per second of one-token steps after a short prompt, median of reps. */
static bool run_decode(const celer_model *model, celer_context *ctx, const bench_opts *o,
                       const int32_t *ids, double *tps) {
    double v[64];
    const int32_t n_vocab = celer_model_n_vocab(model);
    for (int32_t rep = 0; rep < o->reps; rep++) {
        celer_kv_clear(ctx);
        if (!decode(ctx, ids, o->n_prompt, NULL)) return false;
        int32_t tok = argmax(celer_get_logits(ctx, o->n_prompt - 1), n_vocab);
        const double t0 = cli_now();
        for (int32_t i = 0; i < o->n_gen; i++) {
            if (!decode(ctx, &tok, 1, NULL)) return false;
            tok = argmax(celer_get_logits(ctx, 0), n_vocab);
        }
        v[rep] = (double)o->n_gen / (cli_now() - t0);
    }
    *tps = median(v, o->reps);
    return true;
}

static bool run_prompt(celer_context *ctx, const bench_opts *o, const int32_t *ids, double *tps) {
    double v[64];
    for (int32_t rep = 0; rep < o->reps; rep++) {
        celer_kv_clear(ctx);
        const double t0 = cli_now();
        if (!decode(ctx, ids, o->n_pp, NULL)) return false;
        v[rep] = (double)o->n_pp / (cli_now() - t0);
    }
    *tps = median(v, o->reps);
    return true;
}

/* Milliseconds of one pass of k tokens after the prefix, logits for every row (ms: medians),
 * and its cost as a multiple of one token's pass (cost: the median over the rounds of each
 * round's ratio). The k values take turns within each round (rather than k = 1's runs all
 * before k = 2's), so that every k meets the same phases of a shared machine; a ratio of two
 * medians let one fast or slow minute in k = 1's passes move every cost, a median of per-round
 * ratios compares passes of the same minutes. */
static bool run_batch_cost(celer_context *ctx, const bench_opts *o, const int32_t *ids,
                           double *ms, double *cost) {
    celer_kv_clear(ctx);
    if (!decode(ctx, ids, o->n_prefix, NULL)) return false;
    uint8_t all[16];
    memset(all, 1, sizeof all);
    enum { MAX_REPS = 64 };
    const int32_t reps = o->reps < 7 ? 7 : o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double v[N_BATCH_K][MAX_REPS];
    for (int32_t rep = -1; rep < reps; rep++) { /* round -1 warms up */
        for (int32_t ik = 0; ik < N_BATCH_K; ik++) {
            if (celer_kv_seq_truncate(ctx, 0, o->n_prefix) != CELER_OK) {
                cli_error("cannot truncate the KV cache");
                return false;
            }
            const double t0 = cli_now();
            if (!decode(ctx, ids + o->n_prefix, batch_ks[ik], all)) return false;
            if (rep >= 0) v[ik][rep] = (cli_now() - t0) * 1e3;
        }
    }
    double ratio[N_BATCH_K][MAX_REPS]; /* before the medians, which sort v in place */
    for (int32_t ik = 0; ik < N_BATCH_K; ik++)
        for (int32_t rep = 0; rep < reps; rep++) ratio[ik][rep] = v[ik][rep] / v[0][rep];
    for (int32_t ik = 0; ik < N_BATCH_K; ik++) {
        ms[ik] = median(v[ik], reps);
        cost[ik] = median(ratio[ik], reps);
    }
    return true;
}

/* ---------------------------------------------------------------- output */

static void print_json(const bench_opts *o, const celer_model *m, const bench_result *r,
                       int32_t max_threads) {
    const double roof = r->bw_nt * 1e9 / (double)r->weight_bytes;
    printf("{\"model\": ");
    cli_json_string(stdout, o->model, strlen(o->model));
    printf(", \"type\": \"%s\", \"arch\": \"%s\", \"kernels\": \"%s\", \"n_params\": %lld, "
           "\"file_size\": %lld, \"kv_type\": \"%s\", \"load_s\": %.4f",
           r->ftype, celer_model_arch(m), celer_model_kernels(m), (long long)r->n_params,
           (long long)r->file_size, o->kv == CELER_KV_F16 ? "f16" : "f32", r->load_s);
    printf(", \"decode_tps\": {");
    for (int32_t i = 0; i < o->n_threads_list; i++)
        printf("%s\"%d\": %.3f", i ? ", " : "", o->threads[i], r->decode_tps[i]);
    printf("}, \"prompt_tps\": %.3f, \"prompt_tokens\": %d, \"threads\": %d", r->prompt_tps,
           o->n_pp, max_threads);
    printf(", \"batch_ms\": {");
    for (int32_t i = 0; i < N_BATCH_K; i++)
        printf("%s\"%d\": %.3f", i ? ", " : "", batch_ks[i], r->batch_ms[i]);
    printf("}, \"batch_cost\": {");
    for (int32_t i = 0; i < N_BATCH_K; i++)
        printf("%s\"%d\": %.3f", i ? ", " : "", batch_ks[i], r->batch_cost[i]);
    printf("}, \"bandwidth_gbs\": %.2f, \"bandwidth_1t_gbs\": %.2f, \"bytes_per_token\": %lld, "
           "\"roofline_tps\": %.3f, \"roofline_1t_tps\": %.3f",
           r->bw_nt, r->bw_1t, (long long)r->weight_bytes, roof,
           r->bw_1t * 1e9 / (double)r->weight_bytes);
    printf(", \"bandwidth_cpu_gbs\": %.2f, \"bandwidth_1t_cpu_gbs\": %.2f", r->bw_nt_cpu,
           r->bw_1t_cpu);
    printf(", \"kv_bytes\": %lld, \"rss_load_mb\": %.1f, \"rss_mb\": %.1f, \"rss_peak_mb\": %.1f}\n",
           (long long)r->kv_bytes, r->rss_load_mb, r->rss_end_mb, r->rss_peak_mb);
}

static void print_report(const bench_opts *o, const celer_model *m, const bench_result *r,
                         int32_t max_threads) {
    printf("model      %s (%s, %s, %.1fM parameters, %.1f MiB, kernels %s)\n", o->model, r->ftype,
           celer_model_arch(m), (double)r->n_params / 1e6, (double)r->file_size / (1 << 20),
           celer_model_kernels(m));
    printf("load       %.3f s\n", r->load_s);
    for (int32_t i = 0; i < o->n_threads_list; i++)
        printf("decode     %6.2f tok/s  (%d thread%s; %d prompt + %d tokens, median of %d)\n",
               r->decode_tps[i], o->threads[i], o->threads[i] > 1 ? "s" : "", o->n_prompt,
               o->n_gen, o->reps);
    printf("prompt     %6.2f tok/s  (%d tokens in one batch, %d threads)\n", r->prompt_tps, o->n_pp,
           max_threads);
    printf("batch cost (one pass of k tokens after %d, %d threads):\n", o->n_prefix, max_threads);
    for (int32_t i = 0; i < N_BATCH_K; i++)
        printf("  k = %2d   %8.2f ms  %5.2fx\n", batch_ks[i], r->batch_ms[i], r->batch_cost[i]);
    printf("bandwidth  %.1f GB/s (%d threads), %.1f GB/s (1 thread); counting only the time the "
           "readers ran: %.1f and %.1f GB/s\n",
           r->bw_nt, max_threads, r->bw_1t, r->bw_nt_cpu, r->bw_1t_cpu);
    printf("roofline   %.1f MB read per token -> %.1f tok/s (%d threads), %.1f tok/s (1 thread)\n",
           (double)r->weight_bytes / 1e6, r->bw_nt * 1e9 / (double)r->weight_bytes, max_threads,
           r->bw_1t * 1e9 / (double)r->weight_bytes);
    printf("memory     RSS %.1f MiB after load, %.1f MiB after the runs (peak %.1f); file %.1f "
           "MiB + KV %.1f MiB\n",
           r->rss_load_mb, r->rss_end_mb, r->rss_peak_mb, (double)r->file_size / (1 << 20),
           (double)r->kv_bytes / (1 << 20));
}

/* ---------------------------------------------------------------- driver */

static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->reps = 3;
    o->n_prompt = 32;
    o->n_gen = 64;
    o->n_pp = 512;
    o->n_prefix = 128;
    o->bw_mib = 1024;
    o->kv = CELER_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--plain")) {
            /* the only mode so far */
        } else if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "--reference")) o->reference = true;
        else if (!strcmp(a, "--kernels")) {
            if (i + 1 >= argc) return cli_error("%s needs a kernel set name", a);
            o->kernels = argv[++i];
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) return cli_error("%s needs a model file", a);
            o->model = argv[++i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return cli_error("%s needs thread counts", a);
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                /* "-t 1 2" and "-t 1,2" both work */
                char *s = argv[++i], *tok, *save = NULL;
                for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                    if (!cli_parse_i64(tok, &v) || v < 1 || v > 256)
                        return cli_error("invalid thread count '%s' (1..256)", tok);
                    if (o->n_threads_list == MAX_THREADS_LIST)
                        return cli_error("at most %d thread counts", MAX_THREADS_LIST);
                    o->threads[o->n_threads_list++] = (int32_t)v;
                }
            }
            if (!o->n_threads_list) return cli_error("%s needs thread counts", a);
        } else if (!strcmp(a, "--kv")) {
            if (i + 1 >= argc) return cli_error("--kv needs f16 or f32");
            const char *k = argv[++i];
            if (!strcmp(k, "f16")) o->kv = CELER_KV_F16;
            else if (!strcmp(k, "f32")) o->kv = CELER_KV_F32;
            else return cli_error("invalid KV type '%s' (f16 or f32)", k);
        } else if (!strcmp(a, "--reps") || !strcmp(a, "--prompt") || !strcmp(a, "--gen") ||
                   !strcmp(a, "--pp") || !strcmp(a, "--prefix") || !strcmp(a, "--bw-mib")) {
            const int64_t hi = !strcmp(a, "--reps") ? 64 : 8192;
            if (i + 1 >= argc) return cli_error("%s needs a number", a);
            if (!cli_parse_i64(argv[++i], &v) || v < 1 || v > hi)
                return cli_error("invalid value '%s' for %s (1..%lld)", argv[i], a, (long long)hi);
            int32_t *dst = !strcmp(a, "--reps")     ? &o->reps
                           : !strcmp(a, "--prompt") ? &o->n_prompt
                           : !strcmp(a, "--gen")    ? &o->n_gen
                           : !strcmp(a, "--pp")     ? &o->n_pp
                           : !strcmp(a, "--bw-mib") ? &o->bw_mib
                                                    : &o->n_prefix;
            *dst = (int32_t)v;
        } else
            return cli_error("unknown option '%s'\n%s", a, usage_text);
    }
    if (!o->model) return cli_error("-m MODEL is required\n%s", usage_text);
    if (!o->n_threads_list) {
        o->threads[0] = 1;
        o->threads[1] = 2;
        o->n_threads_list = 2;
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    int32_t max_threads = 1;
    for (int32_t i = 0; i < o.n_threads_list; i++)
        if (o.threads[i] > max_threads) max_threads = o.threads[i];

    bench_result r;
    memset(&r, 0, sizeof r);
    celer_model_params mp = celer_model_default_params();
    mp.force_reference_kernels = o.reference;
    mp.kernels = o.kernels;
    celer_model *model = NULL;
    celer_error err;
    double t0 = cli_now();
    if (celer_model_load(o.model, &mp, &model, &err) != CELER_OK) return cli_error("%s", err.message);
    r.load_s = cli_now() - t0;
    r.rss_load_mb = proc_status_mb("VmRSS");
    r.n_params = celer_model_n_params(model);

    celer_context *ctxs[MAX_THREADS_LIST] = {NULL};
    int32_t *ids = NULL;
    int32_t need = o.n_prompt + o.n_gen;
    if (o.n_pp > need) need = o.n_pp;
    if (o.n_prefix + 16 > need) need = o.n_prefix + 16;
    bool ok = file_facts(&o, need, o.kv == CELER_KV_F16 ? 2 : 4, &r);
    if (ok) {
        ids = make_tokens(model, need);
        if (!ids) ok = !cli_error("out of memory");
    }
    for (int32_t i = 0; ok && i < o.n_threads_list; i++) {
        ok = make_ctx(model, &o, o.threads[i], &ctxs[i]);
        if (ok && !o.json)
            fprintf(stderr, "celer: decoding with %d thread%s...\n", o.threads[i],
                    o.threads[i] > 1 ? "s" : "");
        if (ok) ok = run_decode(model, ctxs[i], &o, ids, &r.decode_tps[i]);
        if (ok) fprintf(stderr, "celer: decode %d threads: %.2f tok/s\n", o.threads[i], r.decode_tps[i]);
        /* keep only the context the prompt and batch runs need */
        if (ok && o.threads[i] != max_threads) {
            celer_context_free(ctxs[i]);
            ctxs[i] = NULL;
        }
    }
    celer_context *big = NULL;
    for (int32_t i = 0; i < o.n_threads_list; i++)
        if (ctxs[i] && o.threads[i] == max_threads) big = ctxs[i];
    if (ok) ok = run_prompt(big, &o, ids, &r.prompt_tps);
    if (ok) fprintf(stderr, "celer: prompt %d tokens: %.2f tok/s\n", o.n_pp, r.prompt_tps);
    if (ok) ok = run_batch_cost(big, &o, ids, r.batch_ms, r.batch_cost);
    if (ok) {
        r.rss_end_mb = proc_status_mb("VmRSS");
        r.rss_peak_mb = proc_status_mb("VmHWM");
    }
    for (int32_t i = 0; i < MAX_THREADS_LIST; i++) celer_context_free(ctxs[i]);
    if (ok) {
        fprintf(stderr, "celer: measuring memory bandwidth...\n");
        measure_bandwidth(1, (size_t)o.bw_mib, &r.bw_1t, &r.bw_1t_cpu);
        if (max_threads > 1) measure_bandwidth(max_threads, (size_t)o.bw_mib, &r.bw_nt, &r.bw_nt_cpu);
        else r.bw_nt = r.bw_1t, r.bw_nt_cpu = r.bw_1t_cpu;
        if (o.json) print_json(&o, model, &r, max_threads);
        else print_report(&o, model, &r, max_threads);
    }
    free(ids);
    celer_model_free(model);
    return ok ? 0 : 1;
}
