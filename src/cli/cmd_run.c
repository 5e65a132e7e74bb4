/* celer run — generate text from a model with any decoding method. The continuation streams
 * to stdout as it is generated, timings go to stderr; --json prints one object instead;
 * --chat runs a conversation with the model's chat template. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define MAX_LIST 64

typedef struct run_opts {
    const char *model;
    const char *tokenizer;
    const char *prompt;
    const char *prompt_file;
    const char *chat_template;
    const char *kernels;
    int64_t n_predict;
    int64_t n_threads;
    int64_t n_ctx;
    bool json, reference, no_bos, chat, stream;
    celer_kv_type kv_type;
    celer_generate_params gen;
    const char *stops[MAX_LIST];
    const char *constraints[MAX_LIST];
    celer_logit_bias biases[MAX_LIST];
    int32_t extra_eog[1];
} run_opts;

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: celer run [-m MODEL] [-z TOKENIZER] [-p PROMPT | -f FILE | stdin] [-n N] [-t THREADS]\n"
            "                 [--method METHOD] [method options] [--seed S] [--json] [--chat]\n"
            "  -m MODEL          GGUF file, llama2.c checkpoint, URL or 'owner/repo file.gguf' (pulled on\n"
            "                    first use); default: stories260K from $CELER_DATA/models\n"
            "  -z FILE           tokenizer of a llama2.c checkpoint (tok512.bin); required for .bin models\n"
            "  -p PROMPT         prompt text; -f FILE reads it from a file; otherwise stdin when piped\n"
            "  -n N              new tokens at most (default 256)\n"
            "  -t THREADS        threads (default: physical cores);  -c CTX  context size\n"
            "  --method M        greedy (default), sample, beam, constrained, fsd, fsd-vec, momentum,\n"
            "                    contrastive\n"
            "  sampling          --temp F --top-k N --top-p F --min-p F --typical-p F --seed S\n"
            "                    --repeat-penalty F --repeat-last-n N --frequency-penalty F\n"
            "                    --presence-penalty F --logit-bias TOKEN=BIAS (repeatable)\n"
            "  beam search       --beam N --patience F --length-penalty F --no-early-stopping\n"
            "  constrained       --constraint PHRASE (repeatable; with --beam)\n"
            "  FSD               --fsd-alpha F --fsd-n N --fsd-beta F (candidates: --top-k)\n"
            "  momentum          --momentum-alpha F --momentum-depth N\n"
            "                    --resistance linear|block|log|exp|constant (candidates: --top-k)\n"
            "  contrastive       --penalty-alpha F --top-k N\n"
            "  --stop STRING     stop when the text contains STRING (repeatable)\n"
            "  --ignore-eos      keep generating past end-of-generation tokens\n"
            "  --chat            interactive conversation using the model's chat template\n"
            "  --chat-template T chatml, llama2, llama3, mistral, phi3, gemma or zephyr\n"
            "  --json            print one JSON object: prompt_ids, output_ids, text, stop, logprobs,\n"
            "                    timings\n"
            "  --kv-type f32|f16 KV cache storage (default f32)\n"
            "  --reference       use the plain scalar reference kernels\n"
            "  --kernels NAME    kernel set: reference, avx2 or avx512-vnni (default: the fastest)\n"
            "  --no-bos          do not add the BOS token\n");
}

/* Value of an option that takes one; reports a missing value. */
static const char *opt_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static bool parse_float_opt(const char *name, const char *v, float *out) {
    double d;
    if (!cli_parse_f64(v, &d)) return cli_error("bad value for %s: '%s'", name, v) == 0;
    *out = (float)d;
    return true;
}

static bool parse_int_opt(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!cli_parse_i64(v, out) || *out < lo || *out > hi)
        return cli_error("bad value for %s: '%s'", name, v) == 0;
    return true;
}

/* The method comes first because each method has its own published defaults, which the
 * other options then override. */
static int find_method(int argc, char **argv, celer_method *method) {
    *method = CELER_METHOD_GREEDY;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--method")) {
            celer_error err;
            if (celer_method_from_name(argv[i + 1], method, &err) != CELER_OK) return cli_error("%s", err.message) + 1;
        }
    return 0;
}

typedef enum { OPT_FLOAT, OPT_INT } opt_kind;

typedef struct num_opt {
    const char *name;
    opt_kind kind;
    size_t offset; /* into celer_generate_params */
    int64_t lo, hi;
} num_opt;

#define GP(field) offsetof(celer_generate_params, field)
static const num_opt num_opts[] = {
    {"--temp", OPT_FLOAT, GP(temp), 0, 0},
    {"--top-k", OPT_INT, GP(top_k), INT32_MIN, INT32_MAX},
    {"--top-p", OPT_FLOAT, GP(top_p), 0, 0},
    {"--min-p", OPT_FLOAT, GP(min_p), 0, 0},
    {"--typical-p", OPT_FLOAT, GP(typical_p), 0, 0},
    {"--repeat-penalty", OPT_FLOAT, GP(repeat_penalty), 0, 0},
    {"--repeat-last-n", OPT_INT, GP(penalty_last_n), INT32_MIN, INT32_MAX},
    {"--frequency-penalty", OPT_FLOAT, GP(frequency_penalty), 0, 0},
    {"--presence-penalty", OPT_FLOAT, GP(presence_penalty), 0, 0},
    {"--beam", OPT_INT, GP(beam_width), INT32_MIN, INT32_MAX},
    {"--patience", OPT_FLOAT, GP(patience), 0, 0},
    {"--length-penalty", OPT_FLOAT, GP(length_penalty), 0, 0},
    {"--fsd-alpha", OPT_FLOAT, GP(fsd_alpha), 0, 0},
    {"--fsd-n", OPT_INT, GP(fsd_n), INT32_MIN, INT32_MAX},
    {"--fsd-beta", OPT_FLOAT, GP(fsd_beta), 0, 0},
    {"--momentum-alpha", OPT_FLOAT, GP(momentum_alpha), 0, 0},
    {"--momentum-depth", OPT_INT, GP(momentum_max_depth), INT32_MIN, INT32_MAX},
    {"--penalty-alpha", OPT_FLOAT, GP(penalty_alpha), 0, 0},
};

static int set_num_opt(run_opts *o, const num_opt *n, const char *v) {
    char *base = (char *)&o->gen + n->offset;
    if (n->kind == OPT_FLOAT) return parse_float_opt(n->name, v, (float *)(void *)base) ? 0 : 2;
    int64_t x;
    if (!parse_int_opt(n->name, v, n->lo, n->hi, &x)) return 2;
    *(int32_t *)(void *)base = (int32_t)x;
    return 0;
}

static int parse_resistance(const char *v, celer_resistance *out) {
    static const char *names[] = {"linear", "block", "log", "exp", "constant"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(v, names[i])) {
            *out = (celer_resistance)i;
            return 0;
        }
    return cli_error("unknown resistance '%s' (linear, block, log, exp or constant)", v) + 1;
}

static int parse_logit_bias(run_opts *o, const char *v) {
    const char *eq = strchr(v, '=');
    int64_t tok;
    double bias;
    char head[32];
    if (!eq || eq - v >= (long)sizeof head) return cli_error("--logit-bias wants TOKEN=BIAS, got '%s'", v) + 1;
    memcpy(head, v, (size_t)(eq - v));
    head[eq - v] = 0;
    if (!cli_parse_i64(head, &tok) || tok < 0 || tok > INT32_MAX || !cli_parse_f64(eq + 1, &bias))
        return cli_error("--logit-bias wants TOKEN=BIAS, got '%s'", v) + 1;
    if (o->gen.n_logit_bias >= MAX_LIST) return cli_error("too many --logit-bias options") + 1;
    o->biases[o->gen.n_logit_bias].token = (int32_t)tok;
    o->biases[o->gen.n_logit_bias].bias = (float)bias;
    o->gen.n_logit_bias++;
    return 0;
}

static int add_to_list(const char **list, int32_t *n, const char *v, const char *what) {
    if (*n >= MAX_LIST) return cli_error("too many %s options", what) + 1;
    list[(*n)++] = v;
    return 0;
}

static bool takes_value(const char *a) {
    static const char *const names[] = {"-m", "--model", "-z", "--tokenizer", "-p", "--prompt", "-f",
                                        "--file", "--method", "--chat-template", "-n", "-t", "-c",
                                        "--seed", "--resistance", "--logit-bias", "--stop",
                                        "--constraint", "--kv-type", "--kernels"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(a, names[k])) return true;
    for (size_t k = 0; k < sizeof num_opts / sizeof num_opts[0]; k++)
        if (!strcmp(a, num_opts[k].name)) return true;
    return false;
}

/* One option at argv[*i]; returns 0, or an exit status. */
static int parse_one(run_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--json")) o->json = true;
    else if (!strcmp(a, "--reference")) o->reference = true;
    else if (!strcmp(a, "--no-bos")) o->no_bos = true;
    else if (!strcmp(a, "--chat")) o->chat = true;
    else if (!strcmp(a, "--ignore-eos")) o->gen.ignore_eog = true;
    else if (!strcmp(a, "--no-early-stopping")) o->gen.early_stopping = false;
    else {
        /* Everything else takes a value. */
        if (!takes_value(a)) {
            cli_error("unknown option '%s'", a);
            run_usage(stderr);
            return 2;
        }
        if (!(v = opt_value(argc, argv, i))) return 2;
        for (size_t k = 0; k < sizeof num_opts / sizeof num_opts[0]; k++)
            if (!strcmp(a, num_opts[k].name)) return set_num_opt(o, &num_opts[k], v);
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->prompt_file = v;
        else if (!strcmp(a, "--method")) { /* handled by find_method */ }
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "--kernels")) o->kernels = v;
        else if (!strcmp(a, "-n")) return parse_int_opt(a, v, 0, 1 << 24, &o->n_predict) ? 0 : 2;
        else if (!strcmp(a, "-t")) return parse_int_opt(a, v, 1, 512, &o->n_threads) ? 0 : 2;
        else if (!strcmp(a, "-c")) return parse_int_opt(a, v, 1, 1 << 20, &o->n_ctx) ? 0 : 2;
        else if (!strcmp(a, "--seed")) {
            int64_t s;
            if (!parse_int_opt(a, v, 0, INT64_MAX, &s)) return 2;
            o->gen.seed = (uint64_t)s;
        } else if (!strcmp(a, "--resistance")) return parse_resistance(v, &o->gen.resistance);
        else if (!strcmp(a, "--logit-bias")) return parse_logit_bias(o, v);
        else if (!strcmp(a, "--stop")) return add_to_list(o->stops, &o->gen.n_stop, v, "--stop");
        else if (!strcmp(a, "--constraint"))
            return add_to_list(o->constraints, &o->gen.n_constraints, v, "--constraint");
        else if (!strcmp(a, "--kv-type")) {
            if (!strcmp(v, "f32")) o->kv_type = CELER_KV_F32;
            else if (!strcmp(v, "f16")) o->kv_type = CELER_KV_F16;
            else return cli_error("bad --kv-type '%s' (f32 or f16)", v) + 1;
        }
    }
    return 0;
}

static int parse_run_opts(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            run_usage(stdout);
            return -1;
        }
    celer_method method;
    int rc = find_method(argc, argv, &method);
    if (rc) return rc;
    o->gen = celer_generate_default_params(method);
    o->n_predict = 256;
    o->kv_type = CELER_KV_F32;
    for (int i = 1; i < argc; i++)
        if ((rc = parse_one(o, argc, argv, &i))) return rc;
    o->gen.stop = o->stops;
    o->gen.constraints = o->constraints;
    o->gen.logit_bias = o->biases;
    o->gen.max_tokens = (int32_t)o->n_predict;
    o->stream = !o->json;
    celer_error err;
    if (celer_generate_validate(&o->gen, &err) != CELER_OK) return cli_error("%s", err.message) + 1;
    return 0;
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
        char *s = cli_read_all(f, len);
        fclose(f);
        return s;
    }
    if (!o->chat && ((o->prompt && !strcmp(o->prompt, "-")) || !isatty(0))) return cli_read_all(stdin, len);
    *len = 0;
    return strdup("");
}

/* The default model when -m is not given. A llama2.c checkpoint's tokenizer is never guessed:
 * checkpoints with different vocabularies share file names (tok512.bin), so -z is required. */
static void resolve_paths(run_opts *o, char *model_buf, size_t model_cap) {
    if (!o->model) {
        snprintf(model_buf, model_cap, "%s/stories260K.gguf", cli_default_model_dir());
        o->model = model_buf;
    }
}

static bool stream_token(void *user, int32_t token, const char *piece, size_t len, float logprob) {
    (void)user;
    (void)token;
    (void)logprob;
    if (len) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    return true;
}

static const char *stop_name(celer_stop_reason r) {
    switch (r) {
    case CELER_STOP_EOG: return "eos";
    case CELER_STOP_MAX_TOKENS: return "length";
    case CELER_STOP_STRING: return "stop";
    case CELER_STOP_CONTEXT_FULL: return "context";
    case CELER_STOP_CALLBACK: return "callback";
    default: return "none";
    }
}

static void print_ids(FILE *f, const int32_t *ids, int32_t n) {
    fputc('[', f);
    for (int32_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", (int)ids[i]);
    fputc(']', f);
}

static void print_json(const run_opts *o, const celer_model *model, const celer_context *ctx,
                       const int32_t *prompt, int32_t n_prompt, const celer_generate_result *r,
                       double load_s) {
    double gen_s = r->t_total_s - r->t_prompt_s;
    printf("{\"model\": ");
    cli_json_string(stdout, o->model, strlen(o->model));
    printf(", \"method\": \"%s\", \"kernels\": \"%s\", \"threads\": %d, \"prompt_ids\": ",
           celer_method_name(o->gen.method), celer_model_kernels(model), (int)celer_context_n_threads(ctx));
    print_ids(stdout, prompt, n_prompt);
    printf(", \"output_ids\": ");
    print_ids(stdout, r->tokens, r->n_tokens);
    printf(", \"text\": ");
    cli_json_string(stdout, r->text ? r->text : "", r->text_len);
    printf(", \"stop\": \"%s\", \"score\": %.6f, \"logprobs\": [", stop_name(r->stop_reason), r->score);
    for (int32_t i = 0; i < r->n_tokens; i++) printf("%s%.6f", i ? ", " : "", r->logprobs[i]);
    printf("], \"timings\": {\"load_ms\": %.3f, \"prompt_ms\": %.3f, \"prompt_tps\": %.3f, "
           "\"ttft_ms\": %.3f, \"gen_ms\": %.3f, \"gen_tps\": %.3f}}\n",
           load_s * 1e3, r->t_prompt_s * 1e3, r->t_prompt_s > 0 ? n_prompt / r->t_prompt_s : 0.0,
           r->t_first_token_s * 1e3, gen_s * 1e3, gen_s > 0 ? r->n_tokens / gen_s : 0.0);
}

static void print_timings(const celer_model *model, const celer_context *ctx, const celer_generate_params *g,
                          int32_t n_prompt, const celer_generate_result *r, double load_s) {
    double gen_s = r->t_total_s - r->t_prompt_s;
    fprintf(stderr,
            "celer: %s %s, %d threads, kernels %s | load %.1f ms | prompt %d tokens %.1f ms (%.1f tok/s) | "
            "first token %.1f ms | generated %d tokens %.1f ms (%.2f tok/s) | stop: %s\n",
            celer_model_arch(model), celer_method_name(g->method), (int)celer_context_n_threads(ctx),
            celer_model_kernels(model), load_s * 1e3, (int)n_prompt, r->t_prompt_s * 1e3,
            r->t_prompt_s > 0 ? n_prompt / r->t_prompt_s : 0.0, r->t_first_token_s * 1e3, (int)r->n_tokens,
            gen_s * 1e3, gen_s > 0 ? r->n_tokens / gen_s : 0.0, stop_name(r->stop_reason));
}

/* Tokenizes text into a malloc'd array; returns the count or -1. */
static int32_t tokenize_alloc(const celer_vocab *vocab, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t **out) {
    int32_t cap = (int32_t)(len < 1 << 28 ? len : 1 << 28) + 16;
    *out = malloc((size_t)cap * sizeof **out);
    if (!*out) return -1;
    int32_t n = celer_tokenize(vocab, text, len, *out, cap, add_special, parse_special);
    if (n < 0) {
        free(*out);
        *out = NULL;
    }
    return n;
}

/* Generates from prompt ids, streaming or collecting; prints timings or JSON. */
static int generate_once(run_opts *o, const celer_model *model, celer_context *ctx, const int32_t *prompt,
                         int32_t n_prompt, double load_s) {
    celer_error err;
    celer_generate_result r;
    memset(&r, 0, sizeof r);
    if (n_prompt >= (int32_t)celer_context_n_ctx(ctx))
        return cli_error("prompt of %d tokens does not fit the context of %u tokens", (int)n_prompt,
                         celer_context_n_ctx(ctx));
    if (celer_generate(ctx, model, &o->gen, prompt, n_prompt, o->stream ? stream_token : NULL, NULL, &r, &err) !=
        CELER_OK)
        return cli_error("%s", err.message);
    if (o->json) print_json(o, model, ctx, prompt, n_prompt, &r, load_s);
    else {
        printf("\n");
        fflush(stdout);
        print_timings(model, ctx, &o->gen, n_prompt, &r, load_s);
    }
    celer_generate_result_free(&r);
    return 0;
}

/* --chat: each user line is added to the conversation, which is rendered with the model's
 * template and continued; the reply joins the conversation. */
static int chat_loop(run_opts *o, const celer_model *model, celer_context *ctx) {
    celer_error err;
    celer_chat_format fmt;
    celer_status st = o->chat_template ? celer_chat_format_from_name(o->chat_template, &fmt, &err)
                                       : celer_chat_detect_model(model, &fmt, &err);
    if (st != CELER_OK)
        return cli_error("%s%s", err.message, o->chat_template ? "" : " (choose one with --chat-template)");
    celer_chat_message msgs[256];
    char *owned[256];
    int32_t n = 0, rc = 0;
    if (o->prompt) {
        msgs[n] = (celer_chat_message){"system", o->prompt};
        owned[n++] = NULL;
    }
    const celer_vocab *vocab = celer_model_vocab(model);
    bool tty = isatty(0);
    char line[8192];
    while (!rc && n + 2 < 256) {
        if (tty) fprintf(stderr, "> ");
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        owned[n] = strdup(line);
        msgs[n] = (celer_chat_message){"user", owned[n]};
        n++;
        size_t len = 0;
        celer_chat_render(fmt, msgs, n, true, NULL, 0, &len, &err);
        char *text = malloc(len + 1);
        int32_t *ids = NULL, n_ids = -1;
        if (text && celer_chat_render(fmt, msgs, n, true, text, len + 1, &len, &err) == CELER_OK)
            n_ids = tokenize_alloc(vocab, text, len, true, true, &ids);
        else rc = cli_error("%s", err.message);
        free(text);
        celer_generate_result r;
        memset(&r, 0, sizeof r);
        if (!rc && n_ids < 0) rc = cli_error("could not tokenize the conversation");
        if (!rc && celer_generate(ctx, model, &o->gen, ids, n_ids, stream_token, NULL, &r, &err) != CELER_OK)
            rc = cli_error("%s", err.message);
        free(ids);
        if (!rc) {
            printf("\n");
            fflush(stdout);
            owned[n] = strdup(r.text ? r.text : "");
            msgs[n] = (celer_chat_message){"assistant", owned[n]};
            n++;
        }
        celer_generate_result_free(&r);
    }
    for (int32_t i = 0; i < n; i++) free(owned[i]);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int prc = parse_run_opts(argc, argv, &o);
    if (prc) return prc < 0 ? 0 : prc;
    char model_buf[1024];
    resolve_paths(&o, model_buf, sizeof model_buf);
    /* -m may name a download ("owner/repo file.gguf" or a URL): pulled on first use. */
    char resolved[4096];
    if (!cli_resolve_model(o.model, resolved, sizeof resolved)) return 1;
    o.model = resolved;

    size_t prompt_len = 0;
    char *prompt_text = o.chat ? NULL : load_prompt(&o, &prompt_len);
    if (!o.chat && !prompt_text) return 1;

    double t0 = cli_now();
    celer_error err;
    celer_model_params mp = celer_model_default_params();
    mp.tokenizer_path = o.tokenizer;
    mp.force_reference_kernels = o.reference;
    mp.kernels = o.kernels;
    celer_model *model = NULL;
    if (celer_model_load(o.model, &mp, &model, &err) != CELER_OK) {
        free(prompt_text);
        return cli_error("%s", err.message);
    }
    const celer_vocab *vocab = celer_model_vocab(model);
    /* llama2.c story models separate stories with BOS: it ends a generation too. */
    o.extra_eog[0] = celer_vocab_bos(vocab);
    if (o.extra_eog[0] >= 0) {
        o.gen.extra_eog = o.extra_eog;
        o.gen.n_extra_eog = 1;
    }
    celer_context_params cp = celer_context_default_params();
    cp.n_threads = (int32_t)o.n_threads;
    cp.kv_type = o.kv_type;
    cp.n_ctx = (uint32_t)o.n_ctx;
    celer_generate_context_params(&o.gen, &cp);
    celer_context *ctx = NULL;
    int rc = 0;
    if (celer_context_create(model, &cp, &ctx, &err) != CELER_OK) rc = cli_error("%s", err.message);
    double load_s = cli_now() - t0;

    if (!rc && o.chat) rc = chat_loop(&o, model, ctx);
    else if (!rc) {
        int32_t *prompt = NULL;
        int32_t n_prompt = tokenize_alloc(vocab, prompt_text, prompt_len, !o.no_bos, false, &prompt);
        if (n_prompt < 0) rc = cli_error("could not tokenize the prompt");
        else if (n_prompt == 0) rc = cli_error("empty prompt and the model adds no BOS token: nothing to continue");
        else rc = generate_once(&o, model, ctx, prompt, n_prompt, load_s);
        free(prompt);
    }
    free(prompt_text);
    celer_context_free(ctx);
    celer_model_free(model);
    return rc;
}
