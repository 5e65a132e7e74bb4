/* Internal entry points of the tokenizer layer, used by the model loader. The public
 * functions (celer_tokenize, celer_detok_*, ...) are declared in celer.h. */
#ifndef CELER_TOKENIZER_H
#define CELER_TOKENIZER_H

#include "celer.h"
#include "gguf/gguf.h"

/* Builds a vocabulary from the tokenizer.* keys of an open GGUF file. The vocab copies what
 * it needs and does not keep `f`. */
celer_status ctok_vocab_from_gguf(const gguf_file *f, celer_vocab **out, celer_error *err);

/* Loads a llama2.c tokenizer file (int32 max_token_length, then per token: float32 score,
 * int32 length, bytes). n_vocab is the model's vocabulary size (the file does not store it);
 * pass 0 to infer it from the file size. */
celer_status ctok_vocab_from_llama2c(const char *path, int32_t n_vocab, celer_vocab **out,
                                     celer_error *err);

#endif
