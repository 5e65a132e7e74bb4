/*
 * Model layer internals: hyper-parameters, weights bound to the mapped file, and the
 * context (KV cache, scratch, thread pool) that runs the batched forward pass.
 *
 * Supported: the llama family as llama.cpp names it in general.architecture — `llama`
 * (Llama 2/3.x with rope frequency factors, Mistral, TinyLlama, SmolLM), `qwen2` (q/k/v
 * biases, NeoX rope) and `qwen3` (per-head q/k RMSNorm, NeoX rope) — and llama2.c
 * checkpoints (legacy v0 header), which are laid out like `llama`.
 */
#ifndef CELER_MODEL_H
#define CELER_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "celer.h"
#include "core/threadpool.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

typedef enum cm_arch {
    CM_ARCH_LLAMA,
    CM_ARCH_QWEN2,
    CM_ARCH_QWEN3,
} cm_arch;

/* A weight matrix as stored: `rows` rows of `cols` elements of `type`, row_bytes apart.
 * In GGUF order ne0 = cols (input), ne1 = rows (output). data points into the mapping. */
typedef struct cm_matrix {
    const void *data;
    int32_t type;
    int64_t cols;
    int64_t rows;
    size_t row_bytes;
} cm_matrix;

typedef struct cm_layer {
    const float *attn_norm;           /* [n_embd] */
    cm_matrix wq, wk, wv, wo;         /* wq: [n_head*head_dim x n_embd], wo: [n_embd x n_head*head_dim] */
    const float *bq, *bk, *bv;        /* qwen2 biases or NULL */
    const float *q_norm, *k_norm;     /* qwen3 per-head norms [head_dim] or NULL */
    const float *ffn_norm;            /* [n_embd] */
    cm_matrix w_gate, w_up, w_down;   /* gate/up: [n_ff x n_embd], down: [n_embd x n_ff] */
} cm_layer;

typedef struct cm_hparams {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;     /* key/value length per head */
    int32_t n_ff;
    int32_t n_ctx_train;
    int32_t n_rot;        /* rope dimensions per head (<= head_dim) */
    float rms_eps;
    float rope_base;
    float rope_freq_scale; /* 1 / linear scaling factor */
    bool rope_neox;        /* pair (i, i + n_rot/2) instead of (2i, 2i+1) */
} cm_hparams;

struct celer_model {
    cm_arch arch;
    char arch_name[16];
    cm_hparams hp;
    cm_matrix tok_embd;       /* [n_vocab x n_embd] */
    cm_matrix output;         /* [n_vocab x n_embd]; tok_embd when tied */
    const float *output_norm; /* [n_embd] */
    const float *rope_freq_factors; /* [n_rot/2] or NULL (Llama 3.1+ rope_freqs.weight) */
    cm_layer *layers;
    int64_t n_params;

    gguf_file *gguf;          /* owns the mapping of a GGUF model, or NULL */
    void *map;                /* llama2.c checkpoint mapping, or NULL */
    size_t map_size;
    float **owned;            /* small tensors converted to F32 at load (norms stored as F16) */
    int32_t n_owned;

    celer_vocab *vocab;
    const ct_kernels *kernels;
};

/* Binds a GGUF file's weights (takes ownership of f on success and on failure). */
celer_status cm_model_from_gguf(gguf_file *f, const celer_model_params *params,
                                celer_model *m, celer_error *err);
/* Maps a llama2.c checkpoint and binds its weights as F32 matrices. */
celer_status cm_model_from_llama2c(const char *path, const char *tok_path,
                                   const celer_model_params *params, celer_model *m,
                                   celer_error *err);
/* Releases a llama2.c checkpoint mapping. */
void cm_unmap(void *map, size_t size);
/* Checks hyper-parameters for consistency (shared by both loaders). */
celer_status cm_check_hparams(const cm_hparams *hp, celer_error *err);

#endif
