/*
 * celer — a C11 engine for llama-family language models on CPUs.
 *
 * The whole public API. Conventions (see README "API"):
 *   - every name starts with celer_ / CELER_;
 *   - objects with invariants are opaque handles with create/free pairs; free accepts NULL;
 *   - functions that can fail return a celer_status (0 = success, negative = error) and,
 *     when the caller passes a celer_error, fill it with a readable message;
 *   - pointers passed in are borrowed unless a comment says otherwise; nothing here keeps a
 *     caller's pointer past the call except where stated;
 *   - the library never prints, exits or reads the environment.
 *
 * Layers: model (weights, mmapped) -> context (KV cache, scratch, threads) -> batch
 * evaluation (celer_decode: n tokens with positions, sequence ids and an attention mask,
 * so one pass can verify a draft, a draft tree or a lookahead window).
 */
#ifndef CELER_H
#define CELER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum celer_status {
    CELER_OK = 0,
    CELER_ERR_INVALID_ARG = -1,   /* a caller error: bad parameter, out-of-range id */
    CELER_ERR_IO = -2,            /* open/read/write/mmap failed */
    CELER_ERR_FORMAT = -3,        /* malformed, truncated or hostile file */
    CELER_ERR_UNSUPPORTED = -4,   /* well-formed but not supported: tensor type, architecture */
    CELER_ERR_NOMEM = -5,
    CELER_ERR_CONTEXT_FULL = -6,  /* KV cache capacity would be exceeded */
    CELER_ERR_BUFFER_TOO_SMALL = -7,
    CELER_ERR_NOT_FOUND = -8,     /* missing key, tensor or file */
    CELER_ERR_INTERNAL = -9,
} celer_status;

/* Static string naming a status; never NULL. */
const char *celer_status_str(celer_status status);

/* Filled by functions that fail, when the caller passes one (may be NULL). */
typedef struct celer_error {
    celer_status status;
    char message[512];
} celer_error;

/* ---------------------------------------------------------------- tensor types */

/* Numbering follows ggml so GGUF files can be read directly. */
typedef enum celer_type {
    CELER_TYPE_F32 = 0,
    CELER_TYPE_F16 = 1,
    CELER_TYPE_Q4_0 = 2,
    CELER_TYPE_Q8_0 = 8,
    CELER_TYPE_Q4_K = 12,
    CELER_TYPE_Q5_K = 13,
    CELER_TYPE_Q6_K = 14,
    CELER_TYPE_Q8_K = 15, /* activations only */
    CELER_TYPE_BF16 = 30,
} celer_type;

/* "F32", "Q4_K", ...; NULL for a type celer does not know. */
const char *celer_type_name(int32_t type);
/* Parses a type name (case-insensitive); returns -1 if unknown. */
int32_t celer_type_from_name(const char *name);

/* ---------------------------------------------------------------- model */

typedef struct celer_model celer_model;
typedef struct celer_vocab celer_vocab;

typedef struct celer_model_params {
    /* Tokenizer file for llama2.c checkpoints (tok512.bin); NULL for GGUF models, whose
     * tokenizer is in the file. Borrowed for the duration of the call. */
    const char *tokenizer_path;
    /* Force the plain scalar reference kernels everywhere (the test oracle). */
    bool force_reference_kernels;
} celer_model_params;

celer_model_params celer_model_default_params(void);

/* Loads a GGUF file (mmapped, never copied) or a llama2.c checkpoint (.bin, with
 * params->tokenizer_path). On success *out owns the model; free it with celer_model_free. */
celer_status celer_model_load(const char *path, const celer_model_params *params,
                              celer_model **out, celer_error *err);
void celer_model_free(celer_model *model);

int32_t celer_model_n_vocab(const celer_model *model);
int32_t celer_model_n_embd(const celer_model *model);
int32_t celer_model_n_layer(const celer_model *model);
int32_t celer_model_n_ctx_train(const celer_model *model);
/* "llama", "qwen2", "qwen3"; borrowed, lives as long as the model. */
const char *celer_model_arch(const celer_model *model);
/* Name of the kernel set chosen at load time: "reference", "avx2", "avx512", "avx512-vnni". */
const char *celer_model_kernels(const celer_model *model);
/* Number of parameters (elements of all weight tensors). */
int64_t celer_model_n_params(const celer_model *model);
/* The model's tokenizer; borrowed, lives as long as the model. NULL if it has none. */
const celer_vocab *celer_model_vocab(const celer_model *model);

/* Writes a llama2.c checkpoint (+ its tokenizer) as a GGUF file that llama.cpp loads. */
celer_status celer_convert_llama2c(const char *checkpoint_path, const char *tokenizer_path,
                                   const char *out_path, celer_error *err);

/* Quantizes a GGUF model (F32/F16/BF16 weights) to `type` with llama.cpp's block layouts and
 * reference quantizers. 1-D tensors stay F32. */
celer_status celer_quantize_file(const char *in_path, const char *out_path, int32_t type,
                                 int32_t n_threads, celer_error *err);

/* ---------------------------------------------------------------- context and batches */

typedef struct celer_context celer_context;

typedef enum celer_kv_type {
    CELER_KV_F32 = 0,
    CELER_KV_F16 = 1,
} celer_kv_type;

typedef struct celer_context_params {
    uint32_t n_ctx;        /* KV capacity per sequence; 0 = min(model's training context, 4096) */
    uint32_t n_seq_max;    /* independent sequences sharing the context (batched serving) */
    uint32_t n_batch;      /* most tokens one celer_decode call may carry */
    int32_t n_threads;     /* 0 = number of physical cores */
    celer_kv_type kv_type;
    bool embeddings;       /* also keep the final hidden state of each output row */
} celer_context_params;

celer_context_params celer_context_default_params(void);

/* Creates a context for `model` (borrowed: the model must outlive the context). */
celer_status celer_context_create(const celer_model *model, const celer_context_params *params,
                                  celer_context **out, celer_error *err);
void celer_context_free(celer_context *ctx);
uint32_t celer_context_n_ctx(const celer_context *ctx);
int32_t celer_context_n_threads(const celer_context *ctx);

/*
 * One batch of tokens evaluated in one forward pass. Token i sits at RoPE position pos[i]
 * of sequence seq_id[i]. It attends to every cached row of its sequence and to the batch
 * tokens j that `mask` allows: mask[i * n_tokens + j] != 0. With mask == NULL each token
 * attends causally to the earlier batch tokens of its own sequence (plain decoding and
 * prompt processing). A token tree is a mask where each token sees its ancestors.
 *
 * Batch tokens of a sequence are appended to its cache in batch order, so after the call
 * the cache of sequence s holds its old rows followed by its batch rows. To keep only an
 * accepted branch, call celer_kv_seq_keep; to drop them, celer_kv_seq_truncate.
 *
 * All arrays are borrowed for the duration of the call; NULL pos means consecutive
 * positions after each sequence's cached length; NULL seq_id means sequence 0; NULL
 * logits means only the last token's logits.
 */
typedef struct celer_batch {
    int32_t n_tokens;
    const int32_t *tokens;   /* [n_tokens] */
    const int32_t *pos;      /* [n_tokens] or NULL */
    const int32_t *seq_id;   /* [n_tokens] or NULL */
    const uint8_t *mask;     /* [n_tokens * n_tokens] or NULL */
    const uint8_t *logits;   /* [n_tokens]: nonzero = compute logits for this row; or NULL */
} celer_batch;

/* Evaluates a batch. On error the cache is left as it was before the call. */
celer_status celer_decode(celer_context *ctx, const celer_batch *batch, celer_error *err);

/* Logits of batch row i of the last celer_decode (n_vocab floats), or NULL if that row was
 * not asked for. Borrowed; valid until the next celer_decode. */
const float *celer_get_logits(const celer_context *ctx, int32_t i);
/* Final hidden state (after the output norm, n_embd floats) of batch row i, when the
 * context was made with embeddings = true and the row's logits were asked for. */
const float *celer_get_embeddings(const celer_context *ctx, int32_t i);

/* ---------------------------------------------------------------- KV cache */

/* Rows cached for sequence seq. */
int32_t celer_kv_seq_len(const celer_context *ctx, int32_t seq);
/* Forgets rows [len, end) of sequence seq. */
celer_status celer_kv_seq_truncate(celer_context *ctx, int32_t seq, int32_t len);
/* Keeps rows start + rows[0..n_keep) of sequence seq (ascending), moved to start..start+n_keep,
 * and forgets everything after: the accepted branch of a token tree, made contiguous. */
celer_status celer_kv_seq_keep(celer_context *ctx, int32_t seq, int32_t start,
                               const int32_t *rows, int32_t n_keep);
/* Copies the first len rows of src into dst (dst's old rows are forgotten). */
celer_status celer_kv_seq_copy(celer_context *ctx, int32_t src, int32_t dst, int32_t len);
void celer_kv_clear(celer_context *ctx);

/* ---------------------------------------------------------------- tokenizer */

/* Token attributes, as GGUF's tokenizer.ggml.token_type. */
typedef enum celer_token_type {
    CELER_TOKEN_NORMAL = 1,
    CELER_TOKEN_UNKNOWN = 2,
    CELER_TOKEN_CONTROL = 3,
    CELER_TOKEN_USER_DEFINED = 4,
    CELER_TOKEN_UNUSED = 5,
    CELER_TOKEN_BYTE = 6,
} celer_token_type;

/* Loads a tokenizer alone: from a GGUF file (vocab-only or full model) or a llama2.c
 * tokenizer file (tok512.bin). */
celer_status celer_vocab_load(const char *path, celer_vocab **out, celer_error *err);
void celer_vocab_free(celer_vocab *vocab);

int32_t celer_vocab_n_tokens(const celer_vocab *vocab);
int32_t celer_vocab_bos(const celer_vocab *vocab);   /* -1 if none */
int32_t celer_vocab_eos(const celer_vocab *vocab);   /* -1 if none */
/* True for tokens that end generation (EOS, EOT, EOM, ...). */
bool celer_vocab_is_eog(const celer_vocab *vocab, int32_t token);
bool celer_vocab_add_bos(const celer_vocab *vocab);
int32_t celer_vocab_token_type(const celer_vocab *vocab, int32_t token);
/* "llama" (SentencePiece), "gpt2" (byte-level BPE), "bert" (WordPiece), ... */
const char *celer_vocab_model(const celer_vocab *vocab);

/*
 * Tokenizes text[0..len). add_special: add BOS/EOS as the vocabulary asks; parse_special:
 * recognise control/user-defined token texts (e.g. "<|im_start|>") in the text.
 * Writes at most cap ids to out and returns the number of ids; if cap is too small it
 * returns -(number needed) and writes nothing useful. Any bytes are accepted.
 */
int32_t celer_tokenize(const celer_vocab *vocab, const char *text, size_t len, int32_t *out,
                       int32_t cap, bool add_special, bool parse_special);

/* Writes the bytes of one token (the text it stands for, with SentencePiece spaces and byte
 * tokens decoded) into buf. special=false gives "" for control tokens. Returns the byte count
 * or -(bytes needed) if cap is too small. The result is not NUL-terminated. */
int32_t celer_token_to_piece(const celer_vocab *vocab, int32_t token, char *buf, int32_t cap,
                             bool special);

/* Detokenizes a whole sequence (as llama.cpp: the leading space of SentencePiece is removed
 * when remove_leading_space). Returns bytes written or -(bytes needed). */
int32_t celer_detokenize(const celer_vocab *vocab, const int32_t *tokens, int32_t n, char *buf,
                         int32_t cap, bool remove_leading_space, bool special);

/* Streaming detokenizer: feed tokens one at a time, get only complete UTF-8 back. */
typedef struct celer_detok celer_detok;
celer_status celer_detok_create(const celer_vocab *vocab, bool special, celer_detok **out);
/* Appends the text of `token`; writes the complete-UTF-8 prefix of what is pending into buf
 * and returns its length, holding back an incomplete trailing sequence (at most 3 bytes).
 * Returns -(bytes needed) if cap is too small (nothing is consumed then). */
int32_t celer_detok_push(celer_detok *d, int32_t token, char *buf, int32_t cap);
/* Returns whatever is still held back (invalid bytes are passed through as they are). */
int32_t celer_detok_flush(celer_detok *d, char *buf, int32_t cap);
void celer_detok_free(celer_detok *d);

#ifdef __cplusplus
}
#endif

#endif /* CELER_H */
