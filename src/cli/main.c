/* celer — command-line entry point: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "generate text from a model"},
    {"info", cmd_info, "print a GGUF file's metadata and tensors"},
    {"quantize", cmd_quantize, "convert a model's weights to another tensor type"},
    {"logits", cmd_logits, "write all logits for a token sequence as raw float32"},
    {"convert", cmd_convert, "convert a llama2.c checkpoint to GGUF"},
    {"tokenize", cmd_tokenize, "print the token ids (or pieces) of standard input"},
    {"detokenize", cmd_detokenize, "print the text of token ids read from standard input"},
    {"synth", cmd_synth, "make a random-weight model of any llama-family shape"},
    {"bench", cmd_bench, "measure decoding speed"},
    {"pull", cmd_pull, "download a GGUF model into the cache"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: celer COMMAND [options]   (celer COMMAND --help for its options)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) return cmd_run(argc > 0 ? 1 : 0, (char *[]){"run", NULL});
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "celer: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
