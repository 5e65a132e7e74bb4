/*
 * celer tokenize -m MODEL [--no-bos] [--ids|--pieces] [--special]
 *     Reads all of standard input (every byte, nothing stripped) and prints its token ids,
 *     space separated on one line, or its pieces, one JSON string per line.
 * celer detokenize -m MODEL [--keep-bos] [--no-special]
 *     Reads whitespace-separated ids from standard input and writes their text, exactly
 *     (no newline added). A leading BOS is dropped and SentencePiece's leading space
 *     removed, so `celer tokenize | celer detokenize` gives back the input.
 * MODEL is a GGUF file (vocab-only or a full model) or a llama2.c tokenizer (tok512.bin).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Loads the vocabulary and reads all of standard input; on failure prints why and returns 1
 * with nothing left to free. */
static int load_vocab_and_input(const char *path, celer_vocab **v, char **text, size_t *len) {
    celer_error err = {0};
    if (!path) return cli_error("missing -m MODEL (a GGUF file or a llama2.c tokenizer .bin)");
    if (celer_vocab_load(path, v, &err)) return cli_error("%s", err.message);
    *text = cli_read_all(stdin, len);
    if (!*text) {
        celer_vocab_free(*v);
        *v = NULL;
        return cli_error("cannot read standard input");
    }
    return 0;
}

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: celer tokenize -m MODEL [--no-bos] [--ids|--pieces] [--special]\n"
               "  reads standard input byte for byte and prints its token ids (or pieces)\n"
               "  --no-bos    do not add BOS/EOS as the vocabulary asks\n"
               "  --pieces    print one piece per line as a JSON string instead of ids\n"
               "  --special   recognise special-token texts such as <|im_start|> in the input\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool add_special = true, pieces = false, parse_special = false;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--no-bos")) add_special = false;
        else if (!strcmp(argv[i], "--ids")) pieces = false;
        else if (!strcmp(argv[i], "--pieces")) pieces = true;
        else if (!strcmp(argv[i], "--special")) parse_special = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else {
            tokenize_usage(stderr);
            return cli_error("unknown option '%s'", argv[i]);
        }
    }
    celer_vocab *v = NULL;
    size_t len = 0;
    char *text = NULL;
    if (load_vocab_and_input(model, &v, &text, &len)) return 1;
    int rc = 0;
    int32_t n = celer_tokenize(v, text, len, NULL, 0, add_special, parse_special);
    int32_t *ids = NULL;
    if (n < 0 && n != INT32_MIN) {
        ids = malloc((size_t)-n * sizeof *ids);
        n = ids ? celer_tokenize(v, text, len, ids, -n, add_special, parse_special) : INT32_MIN;
    }
    if (n < 0) {
        rc = cli_error("tokenization failed (input too large or out of memory)");
    } else if (pieces) {
        char small[256];
        for (int32_t i = 0; i < n; i++) {
            int32_t k = celer_token_to_piece(v, ids[i], small, sizeof small, true);
            char *p = small;
            if (k < 0) {
                p = malloc((size_t)-k);
                k = p ? celer_token_to_piece(v, ids[i], p, -k, true) : 0;
            }
            cli_json_string(stdout, p ? p : "", (size_t)(k > 0 ? k : 0));
            fputc('\n', stdout);
            if (p != small) free(p);
        }
    } else {
        for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    if (fflush(stdout)) rc = cli_error("cannot write standard output");
    free(ids);
    free(text);
    celer_vocab_free(v);
    return rc;
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: celer detokenize -m MODEL [--keep-bos] [--no-special]\n"
               "  reads token ids from standard input and writes their text\n"
               "  --keep-bos    print a leading BOS instead of dropping it\n"
               "  --no-special  print nothing for control tokens\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool keep_bos = false, special = true;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--keep-bos")) keep_bos = true;
        else if (!strcmp(argv[i], "--no-special")) special = false;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            detokenize_usage(stdout);
            return 0;
        } else {
            detokenize_usage(stderr);
            return cli_error("unknown option '%s'", argv[i]);
        }
    }
    celer_vocab *v = NULL;
    size_t len = 0;
    char *text = NULL;
    if (load_vocab_and_input(model, &v, &text, &len)) return 1;
    /* Parse the ids. */
    size_t cap = 1024, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    int rc = 0;
    const int32_t n_vocab = celer_vocab_n_tokens(v);
    for (size_t i = 0; ids && i < len && !rc;) {
        while (i < len && (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r') || text[i] == ',')) i++;
        if (i == len) break;
        size_t j = i;
        while (j < len && !(text[j] == ' ' || (text[j] >= '\t' && text[j] <= '\r') || text[j] == ',')) j++;
        char word[32];
        int64_t id;
        if (j - i >= sizeof word) {
            rc = cli_error("bad token id '%.*s'", 31, text + i);
            break;
        }
        memcpy(word, text + i, j - i);
        word[j - i] = 0;
        if (!cli_parse_i64(word, &id) || id < 0 || id >= n_vocab) {
            rc = cli_error("bad token id '%s' (the vocabulary has %d tokens)", word, n_vocab);
            break;
        }
        if (n == cap) {
            int32_t *b = realloc(ids, cap * 2 * sizeof *ids);
            if (!b) {
                rc = cli_error("out of memory");
                break;
            }
            ids = b;
            cap *= 2;
        }
        ids[n++] = (int32_t)id;
        i = j;
    }
    if (!ids) rc = cli_error("out of memory");
    if (!rc) {
        const int32_t *t = ids;
        int32_t nt = (int32_t)n;
        if (!keep_bos && nt > 0 && t[0] == celer_vocab_bos(v) && celer_vocab_add_bos(v)) t++, nt--;
        int32_t k = celer_detokenize(v, t, nt, NULL, 0, true, special);
        char *out = NULL;
        if (k < 0 && k != INT32_MIN) {
            out = malloc((size_t)-k);
            k = out ? celer_detokenize(v, t, nt, out, -k, true, special) : INT32_MIN;
        }
        if (k < 0) rc = cli_error("detokenization failed");
        else if (k > 0 && fwrite(out, 1, (size_t)k, stdout) != (size_t)k) rc = cli_error("cannot write standard output");
        free(out);
    }
    if (fflush(stdout)) rc = cli_error("cannot write standard output");
    free(ids);
    free(text);
    celer_vocab_free(v);
    return rc;
}
