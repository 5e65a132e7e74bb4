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
    /* Kernel set by name ("reference", "avx2", "avx512-vnni"), e.g. to compare SIMD paths;
     * NULL picks the fastest this CPU runs. A set the CPU lacks fails the load with
     * CELER_ERR_INVALID_ARG. force_reference_kernels takes precedence. Borrowed. */
    const char *kernels;
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
/* Name of the kernel set chosen at load time: "reference", "avx2" or "avx512-vnni". */
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
 * returns -(number needed) and writes nothing useful. Any bytes are accepted. INT32_MIN means a
 * bad argument (NULL vocab, negative cap) or out of memory; the same holds for the functions below.
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

/* End-of-turn token (<|eot_id|>, <|im_end|>, ...), -1 if none. */
int32_t celer_vocab_eot(const celer_vocab *vocab);
/* True if tokenizing with add_special appends EOS. */
bool celer_vocab_add_eos(const celer_vocab *vocab);
/* The token's text as stored in the vocabulary (SentencePiece spaces as U+2581, byte-level
 * BPE in GPT-2's printable form); borrowed, not NUL-terminated, *len set. NULL if out of range. */
const char *celer_vocab_token_text(const celer_vocab *vocab, int32_t token, size_t *len);
/* Id of the token whose stored text is exactly text[0..len), or -1. */
int32_t celer_vocab_find(const celer_vocab *vocab, const char *text, size_t len);
float celer_vocab_token_score(const celer_vocab *vocab, int32_t token);

/* ---------------------------------------------------------------- model files */

/*
 * Downloading models (`celer pull`). A spec names a file to fetch:
 *   - an http:// or https:// URL;
 *   - a Hugging Face repository file: "owner/repo" with the path as a separate `file`
 *     argument, or one string "owner/repo path/in/repo.gguf" or "owner/repo/path/in/repo.gguf".
 * Files land under params->cache_dir (hf/OWNER/REPO/PATH, or url/<hash>/<name> for URLs); a
 * transfer is written to PATH.part, resumed with an HTTP Range request when interrupted
 * (within one call up to max_retries times, and by any later call), checked for size and
 * SHA-256, then renamed into place. A cached file is used without touching the network.
 * The library never reads the environment: the caller supplies cache_dir and endpoint.
 */

/* Called during a transfer with the bytes on disk so far and the expected total (-1 while
 * unknown), at most ~10 times a second plus once at the end. */
typedef void (*celer_pull_progress_fn)(void *user, int64_t done, int64_t total);

typedef struct celer_pull_params {
    const char *cache_dir;   /* required: root of the download cache (e.g. ~/.cache/celer) */
    const char *endpoint;    /* Hugging Face base URL; NULL = "https://huggingface.co" */
    const char *sha256;      /* expected SHA-256 (64 hex digits) or NULL; without it the
                                server's X-Linked-ETag (Hugging Face LFS files) is checked */
    const char *token;       /* bearer token for gated or private repositories, or NULL */
    celer_pull_progress_fn progress; /* or NULL */
    void *progress_user;
    int32_t max_retries;       /* resumed attempts after an interrupted transfer (default 3) */
    int32_t connect_timeout_s; /* default 15 */
    int32_t stall_timeout_s;   /* give up when no byte arrives for this long (default 60) */
    bool force;                /* download again even when the file is cached */
} celer_pull_params;

celer_pull_params celer_pull_default_params(void);

/* Where spec (+ file, may be NULL) is fetched from and cached, without any I/O. url and path
 * may be NULL; each gets the string NUL-terminated, or CELER_ERR_BUFFER_TOO_SMALL. */
celer_status celer_pull_locate(const char *spec, const char *file, const celer_pull_params *params,
                               char *url, size_t url_cap, char *path, size_t path_cap,
                               celer_error *err);

/* Makes sure the file named by spec (+ file, may be NULL) is in the cache, downloading it if
 * needed, and writes its path to out_path (cap bytes). Errors: CELER_ERR_INVALID_ARG (bad
 * spec), CELER_ERR_NOT_FOUND (HTTP 404), CELER_ERR_FORMAT (SHA-256 or size mismatch: the bad
 * download is deleted), CELER_ERR_IO (offline, refused, HTTP errors, disk errors; an
 * interrupted transfer keeps PATH.part so the next call resumes it). */
celer_status celer_pull(const char *spec, const char *file, const celer_pull_params *params,
                        char *out_path, size_t cap, celer_error *err);

/* Maps a model argument (`celer run -m ARG`) to a local file: an existing file is returned as
 * it is (no network); otherwise ARG must be a spec, pulled on first use and cached afterwards.
 * params may be NULL only when ARG is an existing file. */
celer_status celer_model_resolve(const char *arg, const celer_pull_params *params,
                                 char *out_path, size_t cap, celer_error *err);

/* ---------------------------------------------------------------- sampling and decoding */

/*
 * Turning logits into text: composable samplers (as llama.cpp's llama_sampler), and one
 * generation call that runs any decoding method over a context:
 *   greedy, sample (temperature, top-k, top-p, min-p, typical-p, penalties, logit bias),
 *   beam search (length penalty, early stopping, patience: Kasai et al. 2022),
 *   lexically constrained beam search with dynamic beam allocation (Post & Vilar 2018),
 *   Frustratingly Simple Decoding, n-gram and vectorized (Yang et al. 2023),
 *   momentum decoding (Lan et al. 2022), contrastive search (Su et al. 2022).
 * Plus chat templates: detect the family of a model's tokenizer.chat_template and render a
 * conversation to prompt text.
 */

/* GGUF string metadata of a model (e.g. "tokenizer.chat_template", "general.name"). Writes the
 * value NUL-terminated into buf, truncated to cap - 1 bytes like snprintf (buf may be NULL
 * when cap is 0), and returns its full length; -1 if the key is missing or not a string. */
int32_t celer_model_meta_str(const celer_model *model, const char *key, char *buf, size_t cap);

/* ---- seeded random numbers: xoshiro256** seeded through splitmix64. The sequence depends only
 * on the seed (never on threads, time or the C library), so a seed reproduces a run. */
typedef struct celer_rng {
    uint64_t s[4];
} celer_rng;

void celer_rng_seed(celer_rng *rng, uint64_t seed);
uint64_t celer_rng_next(celer_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double celer_rng_uniform(celer_rng *rng);

/* ---- candidates: what samplers work on */
typedef struct celer_token_data {
    int32_t id;
    float logit;
    float p;        /* probability, valid after a sampler that computes it (softmax) */
} celer_token_data;

typedef struct celer_token_data_array {
    celer_token_data *data; /* borrowed; samplers reorder it and shrink size */
    size_t size;
    int64_t selected;       /* index into data of the chosen token, -1 while none */
    bool sorted;            /* data is sorted by logit, descending */
} celer_token_data_array;

/* ---- sampler interface: a small vtable. `apply` filters or reorders the candidates (or
 * selects one); `accept` tells the sampler which token was finally chosen (penalties keep
 * history); `reset` forgets history; `clone` deep-copies (state included); `free` frees ctx. */
typedef struct celer_sampler celer_sampler;

typedef struct celer_sampler_i {
    const char *(*name)(const celer_sampler *smpl);                     /* may be NULL */
    void (*accept)(celer_sampler *smpl, int32_t token);                  /* may be NULL */
    void (*apply)(celer_sampler *smpl, celer_token_data_array *cur);     /* required */
    void (*reset)(celer_sampler *smpl);                                  /* may be NULL */
    celer_sampler *(*clone)(const celer_sampler *smpl);                  /* may be NULL */
    void (*free)(celer_sampler *smpl);                                   /* frees ctx; may be NULL */
} celer_sampler_i;

struct celer_sampler {
    const celer_sampler_i *iface;
    void *ctx;
};

/* Wraps a custom sampler (iface borrowed for the sampler's life, ctx adopted: iface->free
 * frees it). NULL on out-of-memory. */
celer_sampler *celer_sampler_init(const celer_sampler_i *iface, void *ctx);
const char *celer_sampler_name(const celer_sampler *smpl);
void celer_sampler_accept(celer_sampler *smpl, int32_t token);
void celer_sampler_apply(celer_sampler *smpl, celer_token_data_array *cur);
void celer_sampler_reset(celer_sampler *smpl);
/* Deep copy with its state (a chain clones every member); NULL on out-of-memory or when a
 * sampler has no clone. */
celer_sampler *celer_sampler_clone(const celer_sampler *smpl);
void celer_sampler_free(celer_sampler *smpl);

/* A chain applies its members in order and accepts into each of them. */
celer_sampler *celer_sampler_chain_init(void);
/* Appends smpl and takes ownership of it (also on failure, when it is freed). */
celer_status celer_sampler_chain_add(celer_sampler *chain, celer_sampler *smpl);
int32_t celer_sampler_chain_n(const celer_sampler *chain);
celer_sampler *celer_sampler_chain_get(const celer_sampler *chain, int32_t i); /* borrowed */

/* Samplers. Constructors return NULL on out-of-memory or on a bad parameter (then err, when
 * given, says which). Filters never drop below min_keep (>= 1) candidates. */
celer_sampler *celer_sampler_init_greedy(void);       /* selects the highest logit */
celer_sampler *celer_sampler_init_dist(uint64_t seed); /* selects by softmax probability */
/* Divides logits by t (t > 0); t == 0 keeps only the highest logit. t < 0 is an error. */
celer_sampler *celer_sampler_init_temp(float t, celer_error *err);
/* Keeps the k highest logits; k <= 0 keeps all. */
celer_sampler *celer_sampler_init_top_k(int32_t k);
/* Nucleus (Holtzman et al. 2020): the smallest prefix by probability whose mass reaches p,
 * 0 <= p <= 1 (1 keeps all). */
celer_sampler *celer_sampler_init_top_p(float p, size_t min_keep, celer_error *err);
/* Keeps tokens whose probability is at least p times the highest, 0 <= p <= 1 (0 keeps all). */
celer_sampler *celer_sampler_init_min_p(float p, size_t min_keep, celer_error *err);
/* Locally typical sampling (Meister et al. 2023): sorts tokens by |-log p - H| (H the
 * entropy) and keeps the smallest such prefix whose mass reaches p, 0 <= p <= 1 (1 keeps all). */
celer_sampler *celer_sampler_init_typical(float p, size_t min_keep, celer_error *err);
/* Over the last last_n accepted tokens (0: none, -1: all so far): repetition penalty as in
 * CTRL (Keskar et al. 2019; a seen token's positive logit is divided by `repeat`, a negative
 * one multiplied; repeat > 0, 1 = off), then OpenAI's frequency and presence penalties
 * (logit -= count * freq + (count > 0) * present). */
celer_sampler *celer_sampler_init_penalties(int32_t last_n, float repeat, float freq,
                                            float present, celer_error *err);
/* Adds bias to the logit of each listed token (-INFINITY bans it). Copied. */
typedef struct celer_logit_bias {
    int32_t token;
    float bias;
} celer_logit_bias;
celer_sampler *celer_sampler_init_logit_bias(const celer_logit_bias *biases, int32_t n,
                                             celer_error *err);

/* Applies smpl to logits[n_vocab] and returns the selected token, or -1 when the sampler
 * selected none (a chain must end in greedy or dist) or on out-of-memory. Does not accept. */
int32_t celer_sampler_sample(celer_sampler *smpl, const float *logits, int32_t n_vocab);

/* ---- chat templates */

typedef enum celer_chat_format {
    CELER_CHAT_CHATML = 0,
    CELER_CHAT_LLAMA2,
    CELER_CHAT_LLAMA3,
    CELER_CHAT_MISTRAL,
    CELER_CHAT_PHI3,
    CELER_CHAT_GEMMA,
    CELER_CHAT_ZEPHYR,
} celer_chat_format;

typedef struct celer_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} celer_chat_message;

/* "chatml", "llama2", ...; NULL for a value out of range. */
const char *celer_chat_format_name(celer_chat_format fmt);
/* From a name ("chatml", "llama3", ...), for a user who overrides detection. */
celer_status celer_chat_format_from_name(const char *name, celer_chat_format *out,
                                         celer_error *err);
/* Recognises the family of a Jinja chat template by its marker strings. An unknown template
 * is CELER_ERR_UNSUPPORTED with a message naming the supported families. */
celer_status celer_chat_detect(const char *template_text, celer_chat_format *out,
                               celer_error *err);
/* Detects the format of a model's tokenizer.chat_template (CELER_ERR_NOT_FOUND if none). */
celer_status celer_chat_detect_model(const celer_model *model, celer_chat_format *out,
                                     celer_error *err);
/* Renders messages as prompt text, then the assistant header when add_assistant. The text
 * holds the special tokens as text (tokenize it with parse_special = true); BOS is not written
 * (tokenize with add_special = true). *out_len gets the byte count (without the NUL); the text
 * is written NUL-terminated when cap > *out_len, else CELER_ERR_BUFFER_TOO_SMALL. A role other
 * than system/user/assistant is CELER_ERR_INVALID_ARG. */
celer_status celer_chat_render(celer_chat_format fmt, const celer_chat_message *msgs, int32_t n,
                               bool add_assistant, char *buf, size_t cap, size_t *out_len,
                               celer_error *err);

/* ---- generation */

typedef enum celer_method {
    CELER_METHOD_GREEDY = 0,
    CELER_METHOD_SAMPLE,
    CELER_METHOD_BEAM,
    CELER_METHOD_CONSTRAINED,
    CELER_METHOD_FSD,          /* n-gram anti-LM */
    CELER_METHOD_FSD_VEC,      /* vectorized anti-LM over hidden states */
    CELER_METHOD_MOMENTUM,
    CELER_METHOD_CONTRASTIVE,
} celer_method;

/* "greedy", "sample", "beam", "constrained", "fsd", "fsd-vec", "momentum", "contrastive". */
const char *celer_method_name(celer_method method);
celer_status celer_method_from_name(const char *name, celer_method *out, celer_error *err);

/* Resistance functions of momentum decoding, R(d) of the depth d of the loop a candidate
 * closes (d = 0: a node not yet in the graph; R(0) = 0 always). */
typedef enum celer_resistance {
    CELER_RESISTANCE_LINEAR = 0, /* R(d) = d up to max depth, infinite beyond */
    CELER_RESISTANCE_BLOCK,      /* R = 0 for d < 4, R(4) = 5, infinite beyond: n-gram blocking */
    CELER_RESISTANCE_LOG,        /* R(d) = log6(1 + d) / 0.2 */
    CELER_RESISTANCE_EXP,        /* R(d) = 1.5^d / 2 */
    CELER_RESISTANCE_CONSTANT,   /* R(d) = 2 */
} celer_resistance;

typedef enum celer_stop_reason {
    CELER_STOP_NONE = 0,
    CELER_STOP_EOG,          /* an end-of-generation token (not included in the output) */
    CELER_STOP_MAX_TOKENS,
    CELER_STOP_STRING,       /* a stop string (removed from the text) */
    CELER_STOP_CONTEXT_FULL,
    CELER_STOP_CALLBACK,     /* the token callback returned false */
} celer_stop_reason;

/* Start from celer_generate_default_params(method): it fills each method's published
 * defaults. Pointers are borrowed for the duration of celer_generate. */
typedef struct celer_generate_params {
    celer_method method;
    int32_t max_tokens;        /* tokens to generate at most; -1 = until the context is full */
    uint64_t seed;             /* for sample */
    bool ignore_eog;           /* keep going past end-of-generation tokens */
    const int32_t *extra_eog;  /* more tokens that end generation (e.g. BOS for llama2.c
                                  stories models, which separate stories with BOS) */
    int32_t n_extra_eog;
    const char *const *stop;   /* stop strings */
    int32_t n_stop;
    const celer_logit_bias *logit_bias; /* added to the logits before every method */
    int32_t n_logit_bias;
    int32_t n_batch;           /* prompt tokens per celer_decode call (context's n_batch) */

    /* sample (applied in this order: penalties, top-k, typical-p, top-p, min-p, temp, dist) */
    float temp;                /* >= 0; 0 = greedy */
    int32_t top_k;             /* sample: 0 = off. contrastive/fsd/momentum: candidates k >= 1 */
    float top_p;
    float min_p;
    float typical_p;
    int32_t penalty_last_n;
    float repeat_penalty;
    float frequency_penalty;
    float presence_penalty;

    /* beam, constrained */
    int32_t beam_width;        /* >= 1; the context needs n_seq_max >= beam_width */
    float length_penalty;      /* score = sum log p / length^length_penalty */
    float patience;            /* Kasai et al.: stop after ceil(patience * width) finished */
    bool early_stopping;       /* true: stop at that count; false: also until no live beam
                                  can still beat the finished ones */
    const char *const *constraints; /* constrained: phrases every output must contain */
    int32_t n_constraints;

    /* fsd, fsd-vec (Yang et al. 2023): score = (1 - alpha) p_LM - alpha p_anti over top_k */
    float fsd_alpha;
    int32_t fsd_n;             /* n-gram order of the anti-LM */
    float fsd_beta;            /* n-gram smoothing (fsd) */

    /* momentum (Lan et al. 2022): score = p - alpha R(d) over top_k */
    float momentum_alpha;
    int32_t momentum_max_depth;
    celer_resistance resistance;

    /* contrastive (Su et al. 2022): (1 - alpha) p - alpha max cos(h_v, h_j) over top_k */
    float penalty_alpha;
} celer_generate_params;

celer_generate_params celer_generate_default_params(celer_method method);
/* Adjusts context params to what params needs: n_seq_max >= beam width for beam methods,
 * embeddings = true for contrastive and fsd-vec. */
void celer_generate_context_params(const celer_generate_params *params,
                                   celer_context_params *cparams);
/* Checks params without running anything (the checks celer_generate does first). */
celer_status celer_generate_validate(const celer_generate_params *params, celer_error *err);

typedef struct celer_generate_result {
    int32_t *tokens;           /* [n_tokens] generated ids, without the final EOG token */
    float *logprobs;           /* [n_tokens] log p of each under the model (+ logit bias) */
    int32_t n_tokens;
    char *text;                /* NUL-terminated continuation; stop string removed */
    size_t text_len;
    celer_stop_reason stop_reason;
    double score;              /* beam: length-normalised score; others: sum of logprobs */
    int32_t n_finished;        /* beam: finished hypotheses collected */
    int32_t n_prompt;
    double t_prompt_s;         /* prompt evaluation */
    double t_first_token_s;    /* from the call to the first token */
    double t_total_s;
} celer_generate_result;

/* Called for each output token as it is decided (beam methods: for the tokens of the best
 * hypothesis at the end). piece is the new text safe to show (text that may still become a
 * stop string is held back, so piece can be empty). Return false to stop. */
typedef bool (*celer_token_fn)(void *user, int32_t token, const char *piece, size_t len,
                               float logprob);

/*
 * Generates a continuation of prompt[0..n_prompt) with params->method. Clears ctx's KV cache
 * and uses its sequences 0 .. beam_width-1. model is the context's model (for the vocabulary
 * and end-of-generation tokens). on_token may be NULL. On success *result owns its arrays (free
 * with celer_generate_result_free); on error result is left empty and err says why: invalid
 * params (negative temperature, top_p above 1, beam width 0, unknown method, ...), a prompt
 * longer than the context, a context without enough sequences or embeddings, decode errors.
 */
celer_status celer_generate(celer_context *ctx, const celer_model *model,
                            const celer_generate_params *params, const int32_t *prompt,
                            int32_t n_prompt, celer_token_fn on_token, void *user,
                            celer_generate_result *result, celer_error *err);
void celer_generate_result_free(celer_generate_result *result);

/* ---------------------------------------------------------------- synthetic models */

/*
 * Random-weight models of any llama-family shape, for speed tests at realistic sizes
 * (`celer synth`). Weights are seeded and deterministic (the same seed gives the same bytes
 * whatever the thread count): matrices and biases normal-ish with std 0.02, norm weights near 1.
 * The tokenizer (every tokenizer.* key) is copied from another GGUF file. Keys and tensor
 * names are llama.cpp's, so llama.cpp loads the file too.
 *
 * With inflate_path, a real llama model (e.g. stories260K.gguf) is embedded in the shape so
 * that the big model computes the same function (docs: shared/docs/BENCHMARKING.md,
 * "Inflation"): in F32 its greedy tokens equal the small model's. The source's RMSNorm epsilon
 * (scaled by d/d') and rope base replace the shape's; the architecture must be llama.
 */
typedef struct celer_synth_params {
    const char *arch;        /* "llama" (default), "qwen2" (q/k/v biases), "qwen3" (q/k norms) */
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff;
    int32_t n_ctx;           /* context_length key; 0 = 2048 */
    float rope_base;         /* 0 = 10000 */
    float rms_eps;           /* 0 = 1e-5 */
    bool tied;               /* no output.weight: the output shares token_embd (inflated
                                models always get their own output.weight) */
    /* "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", or "Q4_K_M" (llama.cpp's
     * mix: Q6_K output and attn_v/ffn_down of some layers, Q4_K elsewhere). A row length that
     * does not fit the type's blocks falls back to Q8_0, else F16; 1-D tensors are F32. */
    const char *type;
    uint64_t seed;
    const char *vocab_path;  /* required: GGUF whose tokenizer is copied */
    int32_t n_vocab;         /* 0 = the tokenizer's token count; larger pads it with unused
                                tokens "[PAD<i>]" */
    const char *inflate_path; /* a llama GGUF model to embed, or NULL */
    const char *name;        /* general.name, or NULL */
    int32_t n_threads;       /* 0 = physical cores */
} celer_synth_params;

/* Zeroed shape, type "Q4_0", seed 1, llama, 0 for every default. */
celer_synth_params celer_synth_default_params(void);
/* Fills the shape of a preset: "tinyllama-1.1b", "smollm2-135m", "llama-3.2-1b",
 * "qwen2.5-0.5b" (CELER_ERR_NOT_FOUND naming them for another name). Leaves type, seed,
 * vocab and threads as they are. */
celer_status celer_synth_preset(const char *name, celer_synth_params *params, celer_error *err);
/* Writes the model to out_path (all tensors are built in memory first: about the file size). */
celer_status celer_synth(const celer_synth_params *params, const char *out_path,
                         celer_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CELER_H */
