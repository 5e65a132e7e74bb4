/* celer convert — write a llama2.c checkpoint and its tokenizer as a GGUF file. */
#include <string.h>

#include "cli/cli.h"

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *tok = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: celer convert CHECKPOINT.bin TOKENIZER.bin OUT.gguf\n"
                   "       celer convert CHECKPOINT.bin -z TOKENIZER.bin -o OUT.gguf\n");
            return 0;
        } else if (!strcmp(argv[i], "-z") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!in) in = argv[i];
        else if (!tok) tok = argv[i];
        else if (!out) out = argv[i];
        else return cli_error("unexpected argument '%s'", argv[i]);
    }
    if (!in || !tok || !out) return cli_error("usage: celer convert CHECKPOINT.bin TOKENIZER.bin OUT.gguf");
    celer_error err;
    if (celer_convert_llama2c(in, tok, out, &err) != CELER_OK) return cli_error("%s", err.message);
    fprintf(stderr, "celer: wrote %s\n", out);
    return 0;
}
