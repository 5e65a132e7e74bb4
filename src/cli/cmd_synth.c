/* celer synth — write a random-weight model of any llama-family shape (or a real small model
 * inflated into that shape) for speed tests; see celer_synth in celer.h. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/types.h"
#include "gguf/gguf.h"

static const char usage_text[] =
    "usage: celer synth (--like PRESET | --dim N --layers N --heads N --kv-heads N --ffn N)\n"
    "                   --vocab VOCAB.gguf --type TYPE -o OUT.gguf [options]\n"
    "  --like PRESET     tinyllama-1.1b, smollm2-135m, llama-3.2-1b, qwen2.5-0.5b (shape options\n"
    "                    given as well override the preset's)\n"
    "  --arch A          llama (default), qwen2 (q/k/v biases), qwen3 (q/k norms)\n"
    "  --ctx N           context_length written to the file (default 2048 or the preset's)\n"
    "  --vocab FILE      GGUF whose tokenizer is copied; the vocabulary size is its token count\n"
    "  --vocab-size N    pad the vocabulary with unused tokens up to N\n"
    "  --type TYPE       F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K or Q4_K_M (llama.cpp's mix)\n"
    "  --seed S          random seed (default 1); the same seed gives the same file\n"
    "  --tied, --untied  share the output matrix with the token embedding or not\n"
    "  --rope-base F, --eps F   rope frequency base and RMSNorm epsilon\n"
    "  --inflate FILE    embed a real llama model (e.g. stories260K.gguf) in the shape so that\n"
    "                    the file computes the same function (shared/docs/BENCHMARKING.md)\n"
    "  --name NAME       general.name\n"
    "  -t THREADS        worker threads (default: physical cores)\n";

/* Reads the integer after option argv[*i] into *out (in [lo, hi]). */
static bool int_arg(int argc, char **argv, int *i, int64_t lo, int64_t hi, int64_t *out) {
    const char *opt = argv[*i];
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", opt);
        return false;
    }
    const char *v = argv[++*i];
    if (!cli_parse_i64(v, out) || *out < lo || *out > hi) {
        cli_error("invalid value '%s' for %s (%lld..%lld)", v, opt, (long long)lo, (long long)hi);
        return false;
    }
    return true;
}

static bool str_arg(int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", argv[*i]);
        return false;
    }
    *out = argv[++*i];
    return true;
}

static void print_summary(const char *path, double seconds) {
    gguf_file *f = NULL;
    celer_error err;
    if (gguf_open(path, &f, &err) != CELER_OK) return;
    int64_t count[CELER_TYPE_TABLE_SIZE] = {0}, n_params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->type >= 0 && t->type < CELER_TYPE_TABLE_SIZE) count[t->type]++;
        n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    fprintf(stderr, "celer: wrote %s (%.1f MiB, %.1fM parameters, %.1f s):", path,
            (double)gguf_file_size(f) / (1 << 20), (double)n_params / 1e6, seconds);
    const char *sep = " ";
    for (int32_t t = 0; t < CELER_TYPE_TABLE_SIZE; t++)
        if (count[t]) {
            fprintf(stderr, "%s%lld %s", sep, (long long)count[t], celer_type_name(t));
            sep = ", ";
        }
    fprintf(stderr, " tensors\n");
    gguf_close(f);
}

int cmd_synth(int argc, char **argv) {
    celer_synth_params p = celer_synth_default_params();
    p.type = NULL;
    const char *like = NULL, *out = NULL;
    int64_t dim = 0, layers = 0, heads = 0, kv = 0, ffn = 0, ctx = 0, nvocab = 0, threads = 0;
    int64_t seed = 1;
    int tied = -1;
    double rope = 0.0, eps = 0.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--like")) ok = str_arg(argc, argv, &i, &like);
        else if (!strcmp(a, "--dim")) ok = int_arg(argc, argv, &i, 1, 65536, &dim);
        else if (!strcmp(a, "--layers")) ok = int_arg(argc, argv, &i, 1, 1024, &layers);
        else if (!strcmp(a, "--heads")) ok = int_arg(argc, argv, &i, 1, 1024, &heads);
        else if (!strcmp(a, "--kv-heads")) ok = int_arg(argc, argv, &i, 1, 1024, &kv);
        else if (!strcmp(a, "--ffn")) ok = int_arg(argc, argv, &i, 1, 1 << 20, &ffn);
        else if (!strcmp(a, "--ctx")) ok = int_arg(argc, argv, &i, 1, 1 << 24, &ctx);
        else if (!strcmp(a, "--vocab-size")) ok = int_arg(argc, argv, &i, 1, 1 << 24, &nvocab);
        else if (!strcmp(a, "--seed")) ok = int_arg(argc, argv, &i, 0, INT64_MAX, &seed);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
            ok = int_arg(argc, argv, &i, 1, 256, &threads);
        else if (!strcmp(a, "--arch")) ok = str_arg(argc, argv, &i, &p.arch);
        else if (!strcmp(a, "--vocab")) ok = str_arg(argc, argv, &i, &p.vocab_path);
        else if (!strcmp(a, "--type")) ok = str_arg(argc, argv, &i, &p.type);
        else if (!strcmp(a, "--inflate")) ok = str_arg(argc, argv, &i, &p.inflate_path);
        else if (!strcmp(a, "--name")) ok = str_arg(argc, argv, &i, &p.name);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) ok = str_arg(argc, argv, &i, &out);
        else if (!strcmp(a, "--tied")) tied = 1;
        else if (!strcmp(a, "--untied")) tied = 0;
        else if (!strcmp(a, "--rope-base") || !strcmp(a, "--eps")) {
            double *dst = a[2] == 'r' ? &rope : &eps;
            if (i + 1 >= argc) return cli_error("%s needs a value", a);
            if (!cli_parse_f64(argv[++i], dst) || !(*dst > 0.0))
                return cli_error("invalid value '%s' for %s (a positive number)", argv[i], a);
        } else
            return cli_error("unknown option '%s'\n%s", a, usage_text);
        if (!ok) return 1;
    }

    celer_error err;
    if (like && celer_synth_preset(like, &p, &err) != CELER_OK) return cli_error("%s", err.message);
    if (dim) p.n_embd = (int32_t)dim;
    if (layers) p.n_layer = (int32_t)layers;
    if (heads) p.n_head = (int32_t)heads;
    if (kv) p.n_head_kv = (int32_t)kv;
    if (ffn) p.n_ff = (int32_t)ffn;
    if (ctx) p.n_ctx = (int32_t)ctx;
    if (rope > 0.0) p.rope_base = (float)rope;
    if (eps > 0.0) p.rms_eps = (float)eps;
    if (tied >= 0) p.tied = tied == 1;
    p.n_vocab = (int32_t)nvocab;
    p.n_threads = (int32_t)threads;
    p.seed = (uint64_t)seed;
    if (!like && (!p.n_embd || !p.n_layer || !p.n_head || !p.n_head_kv || !p.n_ff))
        return cli_error("give a shape: --like PRESET, or all of --dim, --layers, --heads, "
                         "--kv-heads and --ffn\n%s",
                         usage_text);
    if (!p.vocab_path) return cli_error("--vocab VOCAB.gguf is required (its tokenizer is copied)");
    if (!p.type) return cli_error("--type TYPE is required (e.g. Q4_0, Q8_0, Q4_K_M)");
    if (!out) return cli_error("-o OUT.gguf is required");

    const double t0 = cli_now();
    if (celer_synth(&p, out, &err) != CELER_OK) return cli_error("%s", err.message);
    print_summary(out, cli_now() - t0);
    return 0;
}
