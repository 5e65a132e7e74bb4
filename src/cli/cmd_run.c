/* celer run — generate text from a model: the continuation streams to stdout, timings go to
 * stderr; --json prints one object instead. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct run_opts {
    const char *model;
    const char *tokenizer;
    const char *prompt;
    const char *prompt_file;
    int64_t n_predict;
    int64_t n_threads;
    int64_t n_ctx;
    bool json;
    bool reference;
    bool no_bos;
    celer_kv_type kv_type;
} run_opts;

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: celer run [-m MODEL] [-z TOKENIZER] [-p PROMPT | -f FILE | stdin] [-n N] [-t THREADS]\n"
            "                 [-c CTX] [--json] [--kv-type f32|f16] [--reference] [--no-bos]\n"
            "  -m MODEL     GGUF file or llama2.c checkpoint (default: stories260K from $CELER_DATA/models)\n"
            "  -z FILE      tokenizer for a llama2.c checkpoint (default: tok512.bin beside it)\n"
            "  -p PROMPT    prompt text; -f FILE reads it from a file; '-' or no prompt with a pipe reads stdin\n"
            "  -n N         new tokens to generate (default 256)\n"
            "  -t THREADS   threads (default: physical cores)\n"
            "  -c CTX       context size (default: the model's, at most 4096)\n"
            "  --json       print one JSON object: prompt_ids, output_ids, text, stop, logprobs, timings\n"
            "  --reference  use the plain scalar reference kernels\n");
}

/* Value of an option that takes one; reports a missing value. */
static const char *opt_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_run_opts(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 256;
    o->kv_type = CELER_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return -1;
        } else if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "--reference")) o->reference = true;
        else if (!strcmp(a, "--no-bos")) o->no_bos = true;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = opt_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) {
            if (!(o->tokenizer = opt_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o->prompt = opt_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(o->prompt_file = opt_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "-t") || !strcmp(a, "-c")) {
            if (!(v = opt_value(argc, argv, &i))) return 2;
            int64_t *dst = a[1] == 'n' ? &o->n_predict : a[1] == 't' ? &o->n_threads : &o->n_ctx;
            if (!cli_parse_i64(v, dst) || *dst < 0 || *dst > (1 << 24) || (a[1] == 't' && *dst == 0))
                return cli_error("bad value for %s: '%s'", a, v) + 1;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = opt_value(argc, argv, &i))) return 2;
            if (!strcmp(v, "f32")) o->kv_type = CELER_KV_F32;
            else if (!strcmp(v, "f16")) o->kv_type = CELER_KV_F16;
            else return cli_error("bad --kv-type '%s' (f32 or f16)", v) + 1;
        } else {
            cli_error("unknown option '%s'", a);
            run_usage(stderr);
            return 2;
        }
    }
    return 0;
}

static char *read_stream(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* The prompt text: -p, -f, or standard input when it is not a terminal. */
static char *load_prompt(const run_opts *o, size_t *len) {
    if (o->prompt && strcmp(o->prompt, "-") != 0) {
        *len = strlen(o->prompt);
        return strdup(o->prompt);
    }
    if (o->prompt_file) {
        FILE *f = fopen(o->prompt_file, "rb");
        if (!f) {
            cli_error("%s: %s", o->prompt_file, strerror(errno));
            return NULL;
        }
        char *s = read_stream(f, len);
        fclose(f);
        return s;
    }
    if ((o->prompt && !strcmp(o->prompt, "-")) || !isatty(0)) return read_stream(stdin, len);
    *len = 0;
    return strdup("");
}

/* Default model, and the tokenizer beside a llama2.c checkpoint. */
static void resolve_paths(run_opts *o, char *model_buf, size_t model_cap, char *tok_buf, size_t tok_cap) {
    if (!o->model) {
        snprintf(model_buf, model_cap, "%s/stories260K.gguf", cli_default_model_dir());
        o->model = model_buf;
    }
    size_t n = strlen(o->model);
    if (!o->tokenizer && n > 4 && !strcmp(o->model + n - 4, ".bin")) {
        const char *slash = strrchr(o->model, '/');
        int dir_len = slash ? (int)(slash - o->model + 1) : 0;
        snprintf(tok_buf, tok_cap, "%.*stok512.bin", dir_len, o->model);
        o->tokenizer = tok_buf;
    }
}

static double log_softmax_at(const float *logits, int32_t n, int32_t tok) {
    float mx = logits[0];
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[tok] - mx - log(sum);
}

static int32_t argmax(const float *v, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

typedef struct gen_result {
    int32_t *ids;
    double *logprobs;
    int32_t n;
    const char *stop;
    char *text;
    size_t text_len, text_cap;
    double prompt_s, gen_s, ttft_s;
} gen_result;

static bool text_append(gen_result *r, const char *s, int32_t n) {
    if (r->text_len + (size_t)n + 1 > r->text_cap) {
        size_t cap = (r->text_cap ? r->text_cap * 2 : 1024) + (size_t)n;
        char *t = realloc(r->text, cap);
        if (!t) return false;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, (size_t)n);
    r->text_len += (size_t)n;
    r->text[r->text_len] = 0;
    return true;
}

/* Feeds the prompt in chunks of the batch size, then decodes greedily one token at a time. */
static int generate_greedy(celer_context *ctx, const celer_model *model, const int32_t *prompt,
                           int32_t n_prompt, int32_t n_predict, bool stream, gen_result *r) {
    const celer_vocab *vocab = celer_model_vocab(model);
    const int32_t n_vocab = celer_model_n_vocab(model);
    celer_error err;
    celer_detok *detok = NULL;
    if (celer_detok_create(vocab, false, &detok) != CELER_OK) return cli_error("out of memory");
    r->ids = calloc((size_t)n_predict + 1, sizeof *r->ids);
    r->logprobs = calloc((size_t)n_predict + 1, sizeof *r->logprobs);
    r->stop = "length";
    int rc = 0;
    double t0 = cli_now();
    const int32_t chunk = 256;
    for (int32_t i = 0; i < n_prompt && !rc; i += chunk) {
        int32_t n = n_prompt - i < chunk ? n_prompt - i : chunk;
        celer_batch b = {.n_tokens = n, .tokens = prompt + i};
        if (celer_decode(ctx, &b, &err) != CELER_OK) rc = cli_error("%s", err.message);
    }
    r->prompt_s = cli_now() - t0;
    double t1 = cli_now();
    int32_t n_done = 0;
    char piece[1024];
    while (!rc && n_done < n_predict) {
        const float *logits = celer_get_logits(ctx, n_done == 0 ? (n_prompt - 1) % chunk : 0);
        int32_t tok = argmax(logits, n_vocab);
        if (tok == celer_vocab_bos(vocab) && tok >= 0) {
            r->stop = "bos";
            break;
        }
        if (celer_vocab_is_eog(vocab, tok)) {
            r->stop = "eos";
            break;
        }
        r->logprobs[n_done] = log_softmax_at(logits, n_vocab, tok);
        r->ids[n_done++] = tok;
        if (n_done == 1) r->ttft_s = r->prompt_s + (cli_now() - t1);
        int32_t len = celer_detok_push(detok, tok, piece, sizeof piece);
        if (len > 0) {
            text_append(r, piece, len);
            if (stream) {
                fwrite(piece, 1, (size_t)len, stdout);
                fflush(stdout);
            }
        }
        if (n_done == n_predict) break;
        celer_batch b = {.n_tokens = 1, .tokens = &tok};
        if (celer_decode(ctx, &b, &err) != CELER_OK) rc = cli_error("%s", err.message);
    }
    int32_t len = celer_detok_flush(detok, piece, sizeof piece);
    if (len > 0) {
        text_append(r, piece, len);
        if (stream) fwrite(piece, 1, (size_t)len, stdout);
    }
    celer_detok_free(detok);
    r->n = n_done;
    r->gen_s = cli_now() - t1;
    return rc;
}

static void print_ids(FILE *f, const int32_t *ids, int32_t n) {
    fputc('[', f);
    for (int32_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", (int)ids[i]);
    fputc(']', f);
}

static void print_json(const run_opts *o, const celer_model *model, const celer_context *ctx,
                       const int32_t *prompt, int32_t n_prompt, const gen_result *r, double load_s) {
    printf("{\"model\": ");
    cli_json_string(stdout, o->model, strlen(o->model));
    printf(", \"method\": \"greedy\", \"kernels\": \"%s\", \"threads\": %d, \"prompt_ids\": ",
           celer_model_kernels(model), (int)celer_context_n_threads(ctx));
    print_ids(stdout, prompt, n_prompt);
    printf(", \"output_ids\": ");
    print_ids(stdout, r->ids, r->n);
    printf(", \"text\": ");
    cli_json_string(stdout, r->text ? r->text : "", r->text_len);
    printf(", \"stop\": \"%s\", \"logprobs\": [", r->stop);
    for (int32_t i = 0; i < r->n; i++) printf("%s%.6f", i ? ", " : "", r->logprobs[i]);
    printf("], \"timings\": {\"load_ms\": %.3f, \"prompt_ms\": %.3f, \"prompt_tps\": %.3f, "
           "\"ttft_ms\": %.3f, \"gen_ms\": %.3f, \"gen_tps\": %.3f}}\n",
           load_s * 1e3, r->prompt_s * 1e3, r->prompt_s > 0 ? n_prompt / r->prompt_s : 0.0,
           r->ttft_s * 1e3, r->gen_s * 1e3, r->gen_s > 0 ? r->n / r->gen_s : 0.0);
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int prc = parse_run_opts(argc, argv, &o);
    if (prc) return prc < 0 ? 0 : prc;
    char model_buf[1024], tok_buf[1024];
    resolve_paths(&o, model_buf, sizeof model_buf, tok_buf, sizeof tok_buf);
    /* -m may name a download ("owner/repo file.gguf" or a URL): pulled on first use. */
    char resolved[4096];
    if (!cli_resolve_model(o.model, resolved, sizeof resolved)) return 1;
    o.model = resolved;

    size_t prompt_len;
    char *prompt_text = load_prompt(&o, &prompt_len);
    if (!prompt_text) return 1;

    double t0 = cli_now();
    celer_error err;
    celer_model_params mp = celer_model_default_params();
    mp.tokenizer_path = o.tokenizer;
    mp.force_reference_kernels = o.reference;
    celer_model *model = NULL;
    if (celer_model_load(o.model, &mp, &model, &err) != CELER_OK) {
        free(prompt_text);
        return cli_error("%s", err.message);
    }
    const celer_vocab *vocab = celer_model_vocab(model);
    int32_t cap = (int32_t)prompt_len + 16;
    int32_t *prompt = malloc((size_t)cap * sizeof *prompt);
    int32_t n_prompt = prompt ? celer_tokenize(vocab, prompt_text, prompt_len, prompt, cap, !o.no_bos, false) : -1;
    free(prompt_text);
    int rc = 0;
    celer_context *ctx = NULL;
    gen_result r;
    memset(&r, 0, sizeof r);
    if (n_prompt < 0) rc = cli_error("could not tokenize the prompt");
    else if (n_prompt == 0) rc = cli_error("empty prompt and the model adds no BOS token: nothing to continue");
    if (!rc) {
        celer_context_params cp = celer_context_default_params();
        cp.n_threads = (int32_t)o.n_threads;
        cp.kv_type = o.kv_type;
        cp.n_ctx = (uint32_t)o.n_ctx;
        if (celer_context_create(model, &cp, &ctx, &err) != CELER_OK) rc = cli_error("%s", err.message);
    }
    if (!rc && (int64_t)n_prompt + o.n_predict > (int64_t)celer_context_n_ctx(ctx)) {
        if (n_prompt >= (int32_t)celer_context_n_ctx(ctx))
            rc = cli_error("prompt of %d tokens does not fit the context of %u tokens", (int)n_prompt,
                           celer_context_n_ctx(ctx));
        else o.n_predict = (int64_t)celer_context_n_ctx(ctx) - n_prompt;
    }
    double load_s = cli_now() - t0;
    if (!rc) rc = generate_greedy(ctx, model, prompt, n_prompt, (int32_t)o.n_predict, !o.json, &r);
    if (!rc) {
        if (o.json) print_json(&o, model, ctx, prompt, n_prompt, &r, load_s);
        else {
            printf("\n");
            fprintf(stderr,
                    "celer: %s, %d threads, kernels %s | load %.1f ms | prompt %d tokens %.1f ms (%.1f tok/s) | "
                    "first token %.1f ms | generated %d tokens %.1f ms (%.2f tok/s) | stop: %s\n",
                    celer_model_arch(model), (int)celer_context_n_threads(ctx), celer_model_kernels(model),
                    load_s * 1e3, (int)n_prompt, r.prompt_s * 1e3,
                    r.prompt_s > 0 ? n_prompt / r.prompt_s : 0.0, r.ttft_s * 1e3, (int)r.n,
                    r.gen_s * 1e3, r.gen_s > 0 ? r.n / r.gen_s : 0.0, r.stop);
        }
    }
    free(r.ids);
    free(r.logprobs);
    free(r.text);
    free(prompt);
    celer_context_free(ctx);
    celer_model_free(model);
    return rc;
}
