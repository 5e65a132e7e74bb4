/* The celer program: one subcommand per file (cmd_*.c), each `int cmd_NAME(int argc, char
 * **argv)` returning the process exit status. argv[0] is the subcommand name. Commands print
 * results to stdout, diagnostics and timings to stderr, and return non-zero on any error. */
#ifndef CELER_CLI_H
#define CELER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "celer.h"

int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_pull(int argc, char **argv);

/* ---- helpers shared by commands (cli_util.c) */

/* Prints "celer: <msg>\n" to stderr (printf-style); returns 1 for `return cli_error(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses a whole decimal integer / float; false on junk or overflow. */
bool cli_parse_i64(const char *s, int64_t *out);
bool cli_parse_f64(const char *s, double *out);
/* Directory of the default model: $CELER_DATA/models (default ../shared/models). */
const char *cli_default_model_dir(void);
/* Seconds from a monotonic clock. */
double cli_now(void);
/* Reads a whole stream byte for byte into a malloc'd, NUL-terminated buffer (the NUL is not
 * counted in *len); NULL on a read error or out of memory. */
char *cli_read_all(FILE *f, size_t *len);
/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s, size_t len);
/* Maps a model argument (-m) to a local file (cmd_pull.c): an existing file as it is, else a
 * URL or Hugging Face "owner/repo path/file.gguf" pulled into the cache on first use (cache
 * dir and endpoint from the environment as for `celer pull`, progress bar on a tty). Prints
 * the error and returns false on failure. */
bool cli_resolve_model(const char *arg, char *path, size_t cap);

#endif
