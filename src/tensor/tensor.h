/*
 * Tensor kernels: quantization formats with llama.cpp's exact block layouts, and the dot
 * products / small-batch matrix products the forward pass runs on them.
 *
 * Three tiers per kernel (see README "Kernels"):
 *   - reference (ref.c, quants_ref.c): plain scalar C, the specification and test oracle;
 *   - x86 AVX2 (*_avx2.c) and AVX-512 / VNNI (*_avx512.c), each file built with its own
 *     target flags;
 *   - dispatch.c picks one kernel set once, from cpuid, at model load.
 *
 * Weights are multiplied by activations converted to the weight type's "vec_dot type", as
 * ggml's CPU backend does (so results track llama.cpp's):
 *   F32 -> F32, F16 -> F16, BF16 -> BF16, Q4_0/Q8_0 -> Q8_0, Q4_K/Q5_K/Q6_K -> Q8_K.
 *
 * Kernels are pure: restrict pointers, a row range, no allocation, no threads.
 */
#ifndef CELER_TENSOR_H
#define CELER_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

/* ---- block layouts (static size checks in quants_ref.c) */

typedef uint16_t ct_half; /* IEEE binary16 bits */

typedef struct {
    ct_half d;          /* scale */
    uint8_t qs[QK4_0 / 2]; /* nibbles: low nibble = element j, high = element j + 16 */
} block_q4_0;

typedef struct {
    ct_half d;
    int8_t qs[QK8_0];
} block_q8_0;

typedef struct {
    ct_half d;                 /* super-block scale for quantized scales */
    ct_half dmin;              /* super-block scale for quantized mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 sub-block scales and mins, 6 bits each */
    uint8_t qs[QK_K / 2];      /* 4-bit quants */
} block_q4_K;

typedef struct {
    ct_half d;
    ct_half dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];      /* high bit of each quant */
    uint8_t qs[QK_K / 2];      /* low 4 bits */
} block_q5_K;

typedef struct {
    uint8_t ql[QK_K / 2];      /* low 4 bits */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];  /* 8-bit sub-block scales */
    ct_half d;
} block_q6_K;

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];  /* sums of groups of 16 quants */
} block_q8_K;

/* ---- kernel signatures */

/* Dequantize / convert n elements to float. */
typedef void (*ct_to_float_fn)(const void *restrict src, float *restrict dst, int64_t n);
/* Quantize / convert n floats (n a multiple of the block size). */
typedef void (*ct_from_float_fn)(const float *restrict src, void *restrict dst, int64_t n);
/* *s = dot(x, y) over n elements: x a weight row of some type, y an activation row already in
 * that type's vec_dot type. */
typedef void (*ct_vec_dot_fn)(int64_t n, float *restrict s, const void *restrict x,
                              const void *restrict y);
/*
 * Small-batch matrix product, the core of batched verification:
 *   for r in [r0, r1), t in [0, k):  out[t * ld + r] = dot(W row r, act row t)
 * W rows are w_stride bytes apart, activation rows act_stride bytes apart (already in the
 * vec_dot type), each n elements long. Implementations unpack each weight block once and
 * apply it to all k activation rows.
 */
typedef void (*ct_mul_mat_fn)(int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                              int64_t r1, const void *restrict act, size_t act_stride, int32_t k,
                              float *restrict out, int64_t ld);
/*
 * Optional (NULL where a set has none): the activations re-laid out once per product in the
 * form the set's mul_mat works from, so that the work items of one product (row ranges that
 * threads take in turn) share them instead of each preparing its own. prep_size: bytes for k
 * rows of n; prep: lays out activation rows [t0, t1) of a product of k rows (act: row 0, as
 * mul_mat takes them) into their places in dst, 64-byte aligned, so that threads can lay out
 * disjoint row ranges at once; mul_mat_prepped: mul_mat from that layout, with the same
 * results bit for bit.
 */
typedef size_t (*ct_prep_size_fn)(int64_t n, int32_t k);
typedef void (*ct_prep_fn)(int64_t n, const void *restrict act, size_t act_stride, int32_t k, int32_t t0,
                           int32_t t1, void *restrict dst);
typedef void (*ct_mul_mat_prepped_fn)(int64_t n, const void *restrict w, size_t w_stride, int64_t r0,
                                      int64_t r1, const void *restrict prepped, int32_t k,
                                      float *restrict out, int64_t ld);

/*
 * Grouped softmax attention of up to CT_ATTN_LANES query vectors over rows [0, nk) of one
 * KV head (the query heads that share it, for one or more batch tokens of a sequence):
 *   out_i = sum_r softmax_r(scale * q_i . K_r | rows visible to i) V_r
 * Row r of K and V is at element r * kv_stride of k and v (F16 or F32). Bit i of vis[r] says
 * whether query i may attend row r; every query must see at least one row. SIMD sets compute
 * query i in lane i: its result depends only on q_i and the rows it sees, never on the other
 * queries, their number or nk, so a token gives the same output alone or in any batch.
 */
#define CT_ATTN_LANES 64
typedef struct ct_attn {
    int32_t hd; /* head dimension, any size */
    int32_t nq; /* query vectors, 1..CT_ATTN_LANES */
    const float *q[CT_ATTN_LANES];
    float *out[CT_ATTN_LANES];
    int32_t nk; /* rows */
    const void *k, *v;
    size_t kv_stride; /* elements from one row to the next */
    int32_t kv_f16;   /* rows are F16 (else F32) */
    const uint64_t *vis;
    float scale;
    float *scratch; /* ct_attn_scratch_floats(hd, nk) floats, no alignment needed */
} ct_attn;
typedef void (*ct_attn_fn)(const ct_attn *a);
/* Scratch floats an attention kernel needs for nk rows of head dimension hd. */
size_t ct_attn_scratch_floats(int32_t hd, int32_t nk);

/* SwiGLU's gating: gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i]. An
 * element's result does not depend on n or on where it sits (threads split the arrays). */
typedef void (*ct_swiglu_fn)(float *restrict gate, const float *restrict up, int64_t n);

typedef struct ct_kernels {
    const char *name; /* "reference", "avx2", "avx512-vnni" */
    /* Indexed by weight type. */
    ct_vec_dot_fn vec_dot[CELER_TYPE_TABLE_SIZE];
    ct_mul_mat_fn mul_mat[CELER_TYPE_TABLE_SIZE];
    /* Indexed by weight type; NULL where mul_mat prepares the activations itself. */
    ct_prep_size_fn prep_size[CELER_TYPE_TABLE_SIZE];
    ct_prep_fn prep[CELER_TYPE_TABLE_SIZE];
    ct_mul_mat_prepped_fn mul_mat_prepped[CELER_TYPE_TABLE_SIZE];
    /* Indexed by activation (vec_dot) type: F32 (copy), F16, BF16, Q8_0, Q8_K. */
    ct_from_float_fn quantize_act[CELER_TYPE_TABLE_SIZE];
    ct_attn_fn attention;
    ct_swiglu_fn swiglu;
} ct_kernels;

/* ---- reference functions (always available) */

/* The vec_dot type for weights of type t, or -1 if t is not a computable weight type. */
int32_t ct_vec_dot_type(int32_t weight_type);

/* Dequantize n elements of a row of type t; n a multiple of the block size. */
void ct_to_float(int32_t type, const void *src, float *dst, int64_t n);

/* Reference quantizers, bit-for-bit those of llama.cpp's *_ref functions (what llama-quantize
 * uses without an importance matrix), for every computable type incl. F16/BF16/F32 (plain
 * conversion). n a multiple of the block size. */
void ct_quantize_row(int32_t type, const float *src, void *dst, int64_t n);

/* Attention kernels for the tables (attention_ref.c, attention_avx2.c, attention_avx512.c). */
void ct_attention_ref(const ct_attn *a);
void ct_attention_avx2(const ct_attn *a);
void ct_attention_avx512(const ct_attn *a);

/* Kernel sets. The reference set is the plain scalar code. */
const ct_kernels *ct_kernels_reference(void);
/* The fastest set this CPU supports (cpuid); never NULL (falls back to reference). */
const ct_kernels *ct_kernels_best(void);
/* Every set this CPU can run, reference first; returns the count (for tests). */
int ct_kernels_available(const ct_kernels **out, int cap);
/* The set called `name` if this CPU can run it, else NULL. */
const ct_kernels *ct_kernels_by_name(const char *name);

#endif
