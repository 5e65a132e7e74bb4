/* Helpers shared by tests: tiny JSON field readers for the golden .jsonl files, and the
 * reference-logits checker (tests/test_model.c). */
#ifndef CELER_TEST_UTIL_H
#define CELER_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads the integer array `"key": [1, 2, ...]` from one JSON line; returns its length
 * (at most cap) or -1 if absent. */
int32_t tu_json_int_array(const char *line, const char *key, int32_t *out, int32_t cap);
/* Reads `"key": 123`; returns -1 if absent. */
int64_t tu_json_int(const char *line, const char *key);
/* Reads `"key": "text"` with JSON escapes decoded (\uXXXX as UTF-8); false if absent. */
bool tu_json_string(const char *line, const char *key, char *out, size_t cap);

/* Uniform in [-1, 1) from a xorshift64 state (advanced): reproducible test inputs. */
float tu_uniform(uint64_t *state);

/* Loads model_path with the kernel set named `kernels` (NULL: the fastest), evaluates the ids
 * in tokens_path in one batch (F32 KV cache) and checks all rows against the raw float32
 * logits in logits_path with the tolerance and argmax rule of shared/reference/README.md.
 * Records failures; returns the worst relative error or -1. */
double tu_check_ref_logits(const char *model_path, const char *tokens_path, const char *logits_path,
                           double tol, const char *kernels, int32_t threads);

#endif
