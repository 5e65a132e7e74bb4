/* celer quantize — rewrite a GGUF model's matrices in another tensor type (llama.cpp's block
 * layouts and reference quantizers, so the result matches `llama-quantize --pure`). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "core/types.h"
#include "gguf/gguf.h"

static const char usage_text[] =
    "usage: celer quantize IN.gguf OUT.gguf TYPE [-t THREADS]\n"
    "  TYPE: F32, F16, BF16, Q8_0, Q4_0, Q4_K (or Q4_K_S), Q5_K (or Q5_K_S), Q6_K\n"
    "  Every matrix becomes TYPE (a row length that does not fit TYPE's blocks falls back to\n"
    "  Q8_0, else F16); 1-D tensors stay F32. IN must hold F32, F16 or BF16 weights.\n"
    "  -t THREADS   worker threads (default: physical cores)\n";

/* A target type name; llama.cpp's ftype names for the pure K-quant files are accepted too. */
static int32_t parse_target(const char *s) {
    if (!strcasecmp(s, "Q4_K_S")) return CELER_TYPE_Q4_K;
    if (!strcasecmp(s, "Q5_K_S")) return CELER_TYPE_Q5_K;
    return celer_type_from_name(s);
}

/* Prints how many tensors of each type the written file holds (read back, so it reports what
 * is really on disk, fallbacks included). */
static void print_summary(const char *path, double seconds) {
    gguf_file *f = NULL;
    celer_error err;
    if (gguf_open(path, &f, &err) != CELER_OK) return;
    int64_t count[CELER_TYPE_TABLE_SIZE] = {0};
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        int32_t t = gguf_tensor_at(f, i)->type;
        if (t >= 0 && t < CELER_TYPE_TABLE_SIZE) count[t]++;
    }
    fprintf(stderr, "celer: wrote %s (%zu bytes, %.2f s):", path, gguf_file_size(f), seconds);
    const char *sep = " ";
    for (int32_t t = 0; t < CELER_TYPE_TABLE_SIZE; t++)
        if (count[t]) {
            fprintf(stderr, "%s%lld %s", sep, (long long)count[t], celer_type_name(t));
            sep = ", ";
        }
    fprintf(stderr, " tensors\n");
    gguf_close(f);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    int64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            if (i + 1 >= argc) return cli_error("%s needs a number of threads", argv[i]);
            if (!cli_parse_i64(argv[++i], &threads) || threads < 1 || threads > 256)
                return cli_error("invalid thread count '%s' (1..256)", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_error("unknown option '%s'\n%s", argv[i], usage_text);
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            return cli_error("unexpected argument '%s'\n%s", argv[i], usage_text);
        }
    }
    if (n_pos < 3) return cli_error("missing arguments\n%s", usage_text);
    const int32_t type = parse_target(pos[2]);
    if (type < 0) return cli_error("unknown type '%s'\n%s", pos[2], usage_text);

    celer_error err;
    double t0 = cli_now();
    if (celer_quantize_file(pos[0], pos[1], type, (int32_t)threads, &err) != CELER_OK)
        return cli_error("%s", err.message);
    print_summary(pos[1], cli_now() - t0);
    return 0;
}
