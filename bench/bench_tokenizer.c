/*
 * Tokenizer speed: tokenizes a text corpus (default: the 944 KB TinyStories prefix) with
 * several vocabularies and prints MB/s (1 MB = 10^6 bytes), the best of a few runs.
 *
 *   build/bench/bench_tokenizer [-r RUNS] [-f TEXT] [VOCAB_NAME_OR_PATH ...]
 *
 * Vocabulary names are looked up as $CELER_DATA/vocab/ggml-vocab-NAME.gguf (default
 * llama-spm and gpt-2). Also reports loading time and detokenization speed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "celer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *size = (size_t)n;
    return buf;
}

int main(int argc, char **argv) {
    const char *data = getenv("CELER_DATA");
    if (!data || !*data) data = "../shared";
    char text_path[1024];
    snprintf(text_path, sizeof text_path, "%s/prompts/tinystories_train_prefix_944K.txt", data);
    int runs = 5;
    const char *names[32];
    int n_names = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-r") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) snprintf(text_path, sizeof text_path, "%s", argv[++i]);
        else if (n_names < 32) names[n_names++] = argv[i];
    }
    if (n_names == 0) {
        names[n_names++] = "llama-spm";
        names[n_names++] = "gpt-2";
    }
    if (runs < 1) runs = 1;
    size_t len;
    char *text = read_file(text_path, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", text_path);
        return 1;
    }
    printf("tokenizer speed on %s (%zu bytes), best of %d runs\n", text_path, len, runs);
    int32_t *ids = malloc((len + 16) * sizeof *ids);
    char *back = malloc(len * 2 + 64);
    int rc = 0;
    for (int k = 0; k < n_names; k++) {
        char path[1024];
        if (strchr(names[k], '/') || strstr(names[k], ".gguf") || strstr(names[k], ".bin"))
            snprintf(path, sizeof path, "%s", names[k]);
        else
            snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", data, names[k]);
        celer_vocab *v = NULL;
        celer_error err = {0};
        double t0 = now();
        if (celer_vocab_load(path, &v, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.message);
            rc = 1;
            continue;
        }
        double t_load = now() - t0, best = 1e30, best_d = 1e30;
        int32_t n = 0;
        for (int r = 0; r < runs; r++) {
            t0 = now();
            n = celer_tokenize(v, text, len, ids, (int32_t)(len + 16), false, false);
            double t = now() - t0;
            if (t < best) best = t;
            t0 = now();
            int32_t m = celer_detokenize(v, ids, n, back, (int32_t)(len * 2 + 64), true, false);
            t = now() - t0;
            if (t < best_d) best_d = t;
            if (m != (int32_t)len || memcmp(back, text, len)) {
                fprintf(stderr, "bench_tokenizer: %s: round trip failed\n", names[k]);
                rc = 1;
            }
        }
        printf("%-16s %7d tokens  tokenize %7.2f MB/s  detokenize %8.1f MB/s  load %6.1f ms\n",
               names[k], n, (double)len / best / 1e6, (double)len / best_d / 1e6, t_load * 1e3);
        celer_vocab_free(v);
    }
    free(ids);
    free(back);
    free(text);
    return rc;
}
