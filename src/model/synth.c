/*
 * celer_synth: random-weight models of any llama-family shape, optionally with a real small
 * model embedded ("inflation", shared/docs/BENCHMARKING.md), written as GGUF files that both
 * celer and llama.cpp load.
 *
 * Every tensor is filled row by row: the row's float values are made (seeded noise, or the
 * inflated source), then quantized with the reference quantizers (ct_quantize_row). Each row
 * has its own random stream, derived from (seed, tensor number, row), so the bytes depend on
 * the seed only, never on how rows are split among threads.
 *
 * Type mix of "Q4_K_M", as llama.cpp's llama_tensor_get_type picks it without an importance
 * matrix for a dense non-Falcon model:
 *   - output.weight (token_embd.weight when the output is tied to it): Q6_K;
 *   - blk.i.attn_v.weight and blk.i.ffn_down.weight: Q6_K when use_more_bits(i, n_layer), i.e.
 *     i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2; else Q4_K;
 *   - every other matrix (token_embd.weight included when untied): Q4_K;
 *   - 1-D tensors: F32.
 * A row length that is not a multiple of 256 cannot hold K-quants; llama.cpp then falls back
 * to Q5_0 (for Q4_K) or Q8_0 (for Q6_K); celer has no Q5_0 kernels, so both fall back to Q8_0
 * here (F16 when the row is not a multiple of 32 either), as `celer quantize` does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "core/types.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#define SYNTH_STD 0.02f
#define SYNTH_MAX_BYTES (64ull << 30) /* refuse shapes whose tensors would exceed this */
#define ZERO_BLOCK 256                /* largest quantization block (K-quants) */

/* ---------------------------------------------------------------- parameters and presets */

celer_synth_params celer_synth_default_params(void) {
    celer_synth_params p;
    memset(&p, 0, sizeof p);
    p.arch = "llama";
    p.type = "Q4_0";
    p.seed = 1;
    return p;
}

typedef struct preset {
    const char *name, *arch;
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float rope_base, rms_eps;
    bool tied;
} preset;

static const preset presets[] = {
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 2048, 10000.0f, 1e-5f, false},
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 8192, 100000.0f, 1e-5f, true},
    {"llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 131072, 500000.0f, 1e-5f, true},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1e-6f, true},
};

celer_status celer_synth_preset(const char *name, celer_synth_params *p, celer_error *err) {
    if (!p) return celer_fail(err, CELER_ERR_INVALID_ARG, "synth: no parameters given");
    for (size_t i = 0; name && i < sizeof presets / sizeof presets[0]; i++) {
        const preset *s = &presets[i];
        if (strcasecmp(name, s->name)) continue;
        p->arch = s->arch;
        p->n_embd = s->n_embd;
        p->n_layer = s->n_layer;
        p->n_head = s->n_head;
        p->n_head_kv = s->n_head_kv;
        p->n_ff = s->n_ff;
        p->n_ctx = s->n_ctx;
        p->rope_base = s->rope_base;
        p->rms_eps = s->rms_eps;
        p->tied = s->tied;
        return CELER_OK;
    }
    return celer_fail(err, CELER_ERR_NOT_FOUND,
                      "unknown preset '%s' (presets: tinyllama-1.1b, smollm2-135m, llama-3.2-1b, "
                      "qwen2.5-0.5b)",
                      name ? name : "(null)");
}

/* ---------------------------------------------------------------- random numbers */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* splitmix64: a counter through a strong mixer; one state per row. */
static inline uint64_t rng_next(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ull;
    return mix64(*s);
}

/* Normal-ish with std 1: the sum of four 16-bit uniforms (Irwin-Hall, variance 4/12), centred
 * and scaled. Bounded at about 3.5 sigma, which is all a speed test needs. */
static inline float rng_normal(uint64_t *s) {
    uint64_t z = rng_next(s);
    uint32_t sum = (uint32_t)(z & 0xffff) + (uint32_t)((z >> 16) & 0xffff) +
                   (uint32_t)((z >> 32) & 0xffff) + (uint32_t)(z >> 48);
    return ((float)sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

/* ---------------------------------------------------------------- the inflated source */

typedef struct src_layer {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3;
} src_layer;

typedef struct src_model {
    int32_t d, h, n_layer, n_head, n_head_kv, hs, n_vocab;
    float eps, rope_base;
    float *tok, *out, *out_norm; /* out == tok when tied */
    src_layer *layers;
    float **bufs;
    int32_t n_bufs, cap_bufs;
} src_model;

static void src_free(src_model *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_bufs; i++) free(s->bufs[i]);
    free(s->bufs);
    free(s->layers);
    free(s);
}

/* Reads a tensor of exactly [ne0, ne1] (ne1 = 1 for vectors) as floats into an owned buffer. */
static float *src_tensor(src_model *s, const gguf_file *f, const char *path, const char *name,
                         int64_t ne0, int64_t ne1, celer_status *st, celer_error *err) {
    if (*st) return NULL;
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        *st = celer_fail(err, CELER_ERR_FORMAT, "inflate: %s has no tensor '%s'", path, name);
        return NULL;
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        *st = celer_fail(err, CELER_ERR_FORMAT,
                         "inflate: tensor '%s' of %s has shape [%lld, %lld], expected [%lld, %lld]",
                         name, path, (long long)t->ne[0], (long long)t->ne[1], (long long)ne0,
                         (long long)ne1);
        return NULL;
    }
    const celer_type_info *ti = celer_type_get(t->type);
    if (!ti || !ti->computable || ne0 % ti->block_size) {
        *st = celer_fail(err, CELER_ERR_UNSUPPORTED, "inflate: tensor '%s' of %s has type %s",
                         name, path, ti ? ti->name : "unknown");
        return NULL;
    }
    if (s->n_bufs == s->cap_bufs) {
        int32_t cap = s->cap_bufs ? s->cap_bufs * 2 : 64;
        float **b = realloc(s->bufs, (size_t)cap * sizeof *b);
        if (!b) {
            *st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
            return NULL;
        }
        s->bufs = b;
        s->cap_bufs = cap;
    }
    float *buf = malloc((size_t)(ne0 * ne1) * sizeof *buf);
    if (!buf) {
        *st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->bufs[s->n_bufs++] = buf;
    const size_t row = celer_row_size(t->type, ne0);
    for (int64_t r = 0; r < ne1; r++) {
        const uint8_t *in = (const uint8_t *)t->data + (size_t)r * row;
        if (t->type == CELER_TYPE_F32) memcpy(buf + r * ne0, in, row);
        else ct_to_float(t->type, in, buf + r * ne0, ne0);
    }
    return buf;
}

static celer_status src_u32(const gguf_file *f, const char *path, const char *key, int32_t *out,
                            bool required, celer_error *err) {
    uint32_t v;
    if (gguf_find_key(f, key) < 0) {
        if (!required) return CELER_OK;
        return celer_fail(err, CELER_ERR_FORMAT, "inflate: %s has no key '%s'", path, key);
    }
    if (!gguf_get_u32(f, key, &v) || v == 0 || v > (1u << 24))
        return celer_fail(err, CELER_ERR_FORMAT, "inflate: key '%s' of %s is not valid", key, path);
    *out = (int32_t)v;
    return CELER_OK;
}

/* Loads a small llama model whole, as floats. */
static celer_status src_load(const char *path, src_model **out, celer_error *err) {
    gguf_file *f = NULL;
    celer_status st = gguf_open(path, &f, err);
    if (st) {
        celer_fail_prefix(err, "inflate: %s", path);
        return st;
    }
    src_model *s = calloc(1, sizeof *s);
    if (!s) {
        gguf_close(f);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    gguf_str arch = {0, NULL};
    if (!gguf_get_str(f, "general.architecture", &arch) || !gguf_str_eq(arch, "llama"))
        st = celer_fail(err, CELER_ERR_UNSUPPORTED,
                        "inflate: %s is not a llama model (only adjacent-pair RoPE models can be "
                        "inflated)",
                        path);
    int32_t n_rot = 0;
    if (!st) st = src_u32(f, path, "llama.embedding_length", &s->d, true, err);
    if (!st) st = src_u32(f, path, "llama.block_count", &s->n_layer, true, err);
    if (!st) st = src_u32(f, path, "llama.attention.head_count", &s->n_head, true, err);
    s->n_head_kv = s->n_head;
    if (!st) st = src_u32(f, path, "llama.attention.head_count_kv", &s->n_head_kv, false, err);
    if (!st) st = src_u32(f, path, "llama.feed_forward_length", &s->h, true, err);
    s->eps = 1e-5f;
    s->rope_base = 10000.0f;
    gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &s->eps);
    gguf_get_f32(f, "llama.rope.freq_base", &s->rope_base);
    if (!st && (s->d % s->n_head || s->n_head % s->n_head_kv || (s->d / s->n_head) % 2))
        st = celer_fail(err, CELER_ERR_FORMAT, "inflate: %s has an inconsistent head layout", path);
    if (!st) {
        s->hs = s->d / s->n_head;
        n_rot = s->hs;
        st = src_u32(f, path, "llama.rope.dimension_count", &n_rot, false, err);
    }
    if (!st && n_rot != s->hs)
        st = celer_fail(err, CELER_ERR_UNSUPPORTED,
                        "inflate: %s rotates %d of %d head dimensions; only full RoPE is supported",
                        path, n_rot, s->hs);
    if (!st && (gguf_find_key(f, "llama.rope.scaling.type") >= 0 ||
                gguf_find_tensor(f, "rope_freqs.weight")))
        st = celer_fail(err, CELER_ERR_UNSUPPORTED, "inflate: %s uses RoPE scaling", path);
    const gguf_tensor *te = st ? NULL : gguf_find_tensor(f, "token_embd.weight");
    if (!st && !te) st = celer_fail(err, CELER_ERR_FORMAT, "inflate: %s has no token_embd", path);
    if (!st) {
        s->n_vocab = (int32_t)(te->ne[1] > 0 && te->ne[1] < (1 << 24) ? te->ne[1] : 0);
        s->layers = calloc((size_t)s->n_layer, sizeof *s->layers);
        if (!s->layers) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    const int64_t d = s->d, dq = (int64_t)s->n_head * s->hs, dkv = (int64_t)s->n_head_kv * s->hs;
    s->tok = src_tensor(s, f, path, "token_embd.weight", d, s->n_vocab, &st, err);
    s->out_norm = src_tensor(s, f, path, "output_norm.weight", d, 1, &st, err);
    if (!st) {
        s->out = s->tok;
        if (gguf_find_tensor(f, "output.weight"))
            s->out = src_tensor(s, f, path, "output.weight", d, s->n_vocab, &st, err);
    }
    char name[64];
#define T(field, suffix, ne0, ne1)                                                             \
    snprintf(name, sizeof name, "blk.%d.%s", (int)il, suffix);                                 \
    L->field = src_tensor(s, f, path, name, ne0, ne1, &st, err);
    for (int32_t il = 0; !st && il < s->n_layer; il++) {
        src_layer *L = &s->layers[il];
        T(attn_norm, "attn_norm.weight", d, 1);
        T(wq, "attn_q.weight", d, dq);
        T(wk, "attn_k.weight", d, dkv);
        T(wv, "attn_v.weight", d, dkv);
        T(wo, "attn_output.weight", dq, d);
        T(ffn_norm, "ffn_norm.weight", d, 1);
        T(w1, "ffn_gate.weight", d, s->h);
        T(w3, "ffn_up.weight", d, s->h);
        T(w2, "ffn_down.weight", s->h, d);
    }
#undef T
    gguf_close(f);
    if (st) {
        src_free(s);
        return st;
    }
    *out = s;
    return CELER_OK;
}

/* ---------------------------------------------------------------- the plan */

typedef enum role {
    R_TOK_EMBD, R_OUTPUT, R_OUT_NORM, R_ATTN_NORM, R_FFN_NORM, R_Q_NORM, R_K_NORM,
    R_BQ, R_BK, R_BV, R_WQ, R_WK, R_WV, R_WO, R_GATE, R_UP, R_DOWN,
} role;

typedef struct synth_tensor {
    char name[64];
    role role;
    int32_t layer; /* -1 for global tensors */
    int32_t type;
    uint32_t n_dims;
    int64_t ne0, ne1;
    size_t row_bytes;
    uint64_t seed;
    uint8_t *data;
} synth_tensor;

typedef struct synth_plan {
    celer_synth_params p; /* defaults resolved */
    int32_t arch;         /* 0 llama, 1 qwen2, 2 qwen3 */
    int32_t hd;           /* head size */
    int32_t n_vocab;
    int32_t base_type;
    bool q4km;
    int32_t ftype;
    synth_tensor *t;
    int32_t n_t;
    /* inflation */
    src_model *src;
    int32_t *src_layer_of; /* [n_layer]: source layer or -1 */
    int32_t rr, g, g2;     /* hd / src hs; source and target query heads per KV head */
    int64_t dz, hz;        /* zeroed padding: [d, dz) columns, [h, hz) feed-forward units */
    float norm_scale;      /* sqrt(d / d') */
} synth_plan;

static int32_t fit_type(int32_t type, int64_t ne0) {
    if (celer_row_size(type, ne0)) return type;
    if (celer_row_size(CELER_TYPE_Q8_0, ne0)) return CELER_TYPE_Q8_0;
    return CELER_TYPE_F16;
}

/* llama.cpp's rule for which layers get more bits in the _M mixes. */
static bool use_more_bits(int32_t i, int32_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int32_t tensor_type(const synth_plan *pl, role r, int32_t layer, uint32_t n_dims,
                           int64_t ne0) {
    if (n_dims < 2) return CELER_TYPE_F32;
    if (!pl->q4km) return fit_type(pl->base_type, ne0);
    const bool tied = pl->p.tied && !pl->src;
    if (r == R_OUTPUT || (r == R_TOK_EMBD && tied)) return fit_type(CELER_TYPE_Q6_K, ne0);
    if ((r == R_WV || r == R_DOWN) && use_more_bits(layer, pl->p.n_layer))
        return fit_type(CELER_TYPE_Q6_K, ne0);
    return fit_type(CELER_TYPE_Q4_K, ne0);
}

static celer_status add_tensor(synth_plan *pl, const char *name, role r, int32_t layer,
                               int64_t ne0, int64_t ne1) {
    synth_tensor *t = &pl->t[pl->n_t];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->role = r;
    t->layer = layer;
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne0 = ne0;
    t->ne1 = ne1 > 0 ? ne1 : 1;
    t->type = tensor_type(pl, r, layer, t->n_dims, ne0);
    t->row_bytes = celer_row_size(t->type, ne0);
    t->seed = mix64(pl->p.seed * 0x9e3779b97f4a7c15ull + (uint64_t)pl->n_t + 1);
    pl->n_t++;
    return CELER_OK;
}

static void make_tensor_list(synth_plan *pl) {
    const celer_synth_params *p = &pl->p;
    const int64_t d = p->n_embd, dq = (int64_t)p->n_head * pl->hd,
                  dkv = (int64_t)p->n_head_kv * pl->hd, ff = p->n_ff;
    add_tensor(pl, "token_embd.weight", R_TOK_EMBD, -1, d, pl->n_vocab);
    add_tensor(pl, "output_norm.weight", R_OUT_NORM, -1, d, 0);
    if (!p->tied || pl->src) add_tensor(pl, "output.weight", R_OUTPUT, -1, d, pl->n_vocab);
    char name[64];
#define ADD(suffix, r, ne0, ne1)                                                               \
    snprintf(name, sizeof name, "blk.%d.%s", (int)il, suffix);                                 \
    add_tensor(pl, name, r, il, ne0, ne1);
    for (int32_t il = 0; il < p->n_layer; il++) {
        ADD("attn_norm.weight", R_ATTN_NORM, d, 0);
        ADD("attn_q.weight", R_WQ, d, dq);
        ADD("attn_k.weight", R_WK, d, dkv);
        ADD("attn_v.weight", R_WV, d, dkv);
        if (pl->arch == 1) {
            ADD("attn_q.bias", R_BQ, dq, 0);
            ADD("attn_k.bias", R_BK, dkv, 0);
            ADD("attn_v.bias", R_BV, dkv, 0);
        }
        if (pl->arch == 2) {
            ADD("attn_q_norm.weight", R_Q_NORM, pl->hd, 0);
            ADD("attn_k_norm.weight", R_K_NORM, pl->hd, 0);
        }
        ADD("attn_output.weight", R_WO, dq, d);
        ADD("ffn_norm.weight", R_FFN_NORM, d, 0);
        ADD("ffn_gate.weight", R_GATE, d, ff);
        ADD("ffn_up.weight", R_UP, d, ff);
        ADD("ffn_down.weight", R_DOWN, ff, d);
    }
#undef ADD
}

/* ---------------------------------------------------------------- row contents */

static bool is_norm(role r) {
    return r == R_OUT_NORM || r == R_ATTN_NORM || r == R_FFN_NORM || r == R_Q_NORM ||
           r == R_K_NORM;
}

/* Original in-head dimension e -> inflated one: pair i moves to pair i * rr, so RoPE turns it
 * at the same frequency. */
static int64_t new_dim(const synth_plan *pl, int32_t e) {
    return 2 * (int64_t)(e / 2) * pl->rr + e % 2;
}

/* Inverse of new_dim; -1 for a dimension no original one maps to. */
static int32_t src_dim(const synth_plan *pl, int64_t e2) {
    const int64_t pair = e2 / 2;
    if (pair % pl->rr) return -1;
    const int64_t op = pair / pl->rr;
    if (op >= pl->src->hs / 2) return -1;
    return (int32_t)(2 * op + e2 % 2);
}

/* Original query head j -> inflated head: same KV group, same place within the group. */
static int64_t new_qhead(const synth_plan *pl, int32_t j) {
    return (int64_t)(j / pl->g) * pl->g2 + j % pl->g;
}

static int32_t src_qhead(const synth_plan *pl, int64_t nh) {
    const int64_t c = nh / pl->g2, m = nh % pl->g2;
    if (c >= pl->src->n_head_kv || m >= pl->g) return -1;
    return (int32_t)(c * pl->g + m);
}

static void zero(float *x, int64_t a, int64_t b) {
    if (b > a) memset(x + a, 0, (size_t)(b - a) * sizeof *x);
}

/* A row that reads the residual stream: the original values in the first d columns, zero up to
 * the end of their quantization block (so the random part does not coarsen their scale), and the
 * random values beyond, which only ever meet zeros. */
static void put_read_row(const synth_plan *pl, float *out, const float *src, float scale) {
    const int64_t d = pl->src->d;
    for (int64_t i = 0; i < d; i++) out[i] = src[i] * scale;
    zero(out, d, pl->dz);
}

/* Overwrites a random row with what inflation needs there. */
static void inflate_row(const synth_plan *pl, const synth_tensor *t, int64_t r, float *out) {
    const src_model *s = pl->src;
    const int64_t n = t->ne0, d = s->d;
    const int32_t sl = t->layer >= 0 ? pl->src_layer_of[t->layer] : -1;
    const bool extra = t->layer >= 0 && sl < 0; /* an identity layer at full cost */
    const src_layer *L = sl >= 0 ? &s->layers[sl] : NULL;
    switch (t->role) {
    case R_TOK_EMBD: /* writes the residual stream: padded dimensions stay zero */
        zero(out, d, n);
        if (r < s->n_vocab) memcpy(out, s->tok + r * d, (size_t)d * sizeof *out);
        return;
    case R_OUTPUT: /* new tokens get logit exactly 0 */
        if (r < s->n_vocab) put_read_row(pl, out, s->out + r * d, 1.0f);
        else zero(out, 0, pl->dz);
        return;
    case R_OUT_NORM:
    case R_ATTN_NORM:
    case R_FFN_NORM: {
        if (extra) return;
        const float *w = t->role == R_OUT_NORM ? s->out_norm
                         : t->role == R_ATTN_NORM ? L->attn_norm : L->ffn_norm;
        for (int64_t i = 0; i < d; i++) out[i] = w[i] * pl->norm_scale;
        return;
    }
    case R_WQ: {
        if (extra) return;
        const int32_t j = src_qhead(pl, r / pl->hd);
        if (j < 0) return; /* an unused head: random, wo ignores it */
        const int32_t e = src_dim(pl, r % pl->hd);
        if (e < 0) zero(out, 0, n);
        else put_read_row(pl, out, L->wq + ((int64_t)j * s->hs + e) * d, sqrtf((float)pl->rr));
        return;
    }
    case R_WK:
    case R_WV: {
        if (extra) return;
        const int64_t c = r / pl->hd;
        if (c >= s->n_head_kv) return;
        const int32_t e = src_dim(pl, r % pl->hd);
        const float *w = t->role == R_WK ? L->wk : L->wv;
        if (e < 0) zero(out, 0, n);
        else put_read_row(pl, out, w + (c * s->hs + e) * d, 1.0f);
        return;
    }
    case R_WO: /* writes the residual stream */
        zero(out, 0, n);
        if (extra || r >= d) return;
        for (int32_t j = 0; j < s->n_head; j++)
            for (int32_t e = 0; e < s->hs; e++)
                out[new_qhead(pl, j) * pl->hd + new_dim(pl, e)] =
                    L->wo[r * ((int64_t)s->n_head * s->hs) + (int64_t)j * s->hs + e];
        return;
    case R_GATE:
    case R_UP:
        if (extra) return;
        if (r < s->h) put_read_row(pl, out, (t->role == R_GATE ? L->w1 : L->w3) + r * d, 1.0f);
        else if (r < pl->hz) zero(out, 0, n); /* shares a block with real units */
        return;
    case R_DOWN: /* writes the residual stream */
        zero(out, 0, n);
        if (extra || r >= d) return;
        memcpy(out, L->w2 + r * s->h, (size_t)s->h * sizeof *out);
        return;
    default:
        return;
    }
}

static void make_row(const synth_plan *pl, const synth_tensor *t, int64_t r, float *out) {
    uint64_t state = mix64(t->seed ^ mix64((uint64_t)r + 0x632be59bd9b4e019ull));
    if (is_norm(t->role))
        for (int64_t i = 0; i < t->ne0; i++) out[i] = 1.0f + SYNTH_STD * rng_normal(&state);
    else
        for (int64_t i = 0; i < t->ne0; i++) out[i] = SYNTH_STD * rng_normal(&state);
    if (pl->src) inflate_row(pl, t, r, out);
}

typedef struct fill_job {
    const synth_plan *pl;
    synth_tensor *t;
    float *scratch; /* [n_threads][max_ne0] */
    int64_t max_ne0;
} fill_job;

static void fill_rows(void *arg, int32_t ith, int32_t nth) {
    const fill_job *j = arg;
    const synth_tensor *t = j->t;
    float *row = j->scratch + (size_t)ith * (size_t)j->max_ne0;
    int64_t r0, r1;
    celer_split_even(t->ne1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        make_row(j->pl, t, r, row);
        ct_quantize_row(t->type, row, t->data + (size_t)r * t->row_bytes, t->ne0);
    }
}

/* ---------------------------------------------------------------- checks */

static int32_t ftype_of(int32_t type, bool q4km) {
    if (q4km) return 15; /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
    switch (type) {
    case CELER_TYPE_F32: return 0;
    case CELER_TYPE_F16: return 1;
    case CELER_TYPE_Q4_0: return 2;
    case CELER_TYPE_Q8_0: return 7;
    case CELER_TYPE_Q4_K: return 14; /* Q4_K_S */
    case CELER_TYPE_Q5_K: return 16; /* Q5_K_S */
    case CELER_TYPE_Q6_K: return 18;
    case CELER_TYPE_BF16: return 32;
    default: return -1;
    }
}

static celer_status resolve_params(synth_plan *pl, const celer_synth_params *in,
                                   celer_error *err) {
    celer_synth_params *p = &pl->p;
    *p = *in;
    if (!p->arch) p->arch = "llama";
    if (!strcmp(p->arch, "llama")) pl->arch = 0;
    else if (!strcmp(p->arch, "qwen2")) pl->arch = 1;
    else if (!strcmp(p->arch, "qwen3")) pl->arch = 2;
    else
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: unknown architecture '%s' (llama, qwen2, qwen3)", p->arch);
    if (!p->type) p->type = "Q4_0";
    pl->q4km = !strcasecmp(p->type, "Q4_K_M");
    pl->base_type = pl->q4km ? CELER_TYPE_Q4_K : celer_type_from_name(p->type);
    pl->ftype = pl->base_type < 0 ? -1 : ftype_of(pl->base_type, pl->q4km);
    if (pl->ftype < 0)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: cannot write type '%s' (types: F32, F16, BF16, Q8_0, Q4_0, "
                          "Q4_K, Q5_K, Q6_K, Q4_K_M)",
                          p->type);
    if (p->n_embd <= 0 || p->n_layer <= 0 || p->n_head <= 0 || p->n_head_kv <= 0 || p->n_ff <= 0)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: the shape needs positive dim, layers, heads, kv-heads and ffn "
                          "(got %d, %d, %d, %d, %d)",
                          p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->n_ff);
    if (p->n_embd > 65536 || p->n_layer > 1024 || p->n_head > 1024 || p->n_ff > (1 << 20))
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: shape too large (dim <= 65536, layers <= 1024, heads <= 1024, "
                          "ffn <= 1048576)");
    if (p->n_embd % p->n_head)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: dim %d is not a multiple of the head count %d", p->n_embd,
                          p->n_head);
    if (p->n_head % p->n_head_kv)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: head count %d is not a multiple of the kv head count %d",
                          p->n_head, p->n_head_kv);
    pl->hd = p->n_embd / p->n_head;
    if (pl->hd % 2)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: head size %d (dim / heads) must be even for RoPE", pl->hd);
    if (p->n_ctx < 0 || p->n_vocab < 0 || p->n_threads < 0 || p->rope_base < 0.0f ||
        p->rms_eps < 0.0f)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: negative context, vocabulary size, threads, rope base or eps");
    if (!p->n_ctx) p->n_ctx = 2048;
    if (!(p->rope_base > 0.0f)) p->rope_base = 10000.0f;
    if (!(p->rms_eps > 0.0f)) p->rms_eps = 1e-5f;
    if (!p->n_threads) p->n_threads = celer_physical_cores();
    if (p->n_threads > 256) p->n_threads = 256;
    if (!p->vocab_path)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: a vocabulary GGUF is required (its tokenizer is copied)");
    return CELER_OK;
}

/* Sets up the layer and head maps of inflation, after checking the source fits the shape. */
static celer_status plan_inflation(synth_plan *pl, celer_error *err) {
    src_model *s = pl->src;
    celer_synth_params *p = &pl->p;
    if (pl->arch != 0)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: inflation needs the llama architecture (adjacent-pair RoPE)");
    const int32_t g = s->n_head / s->n_head_kv, g2 = p->n_head / p->n_head_kv;
    if (p->n_embd < s->d || p->n_ff < s->h || p->n_layer < s->n_layer ||
        p->n_head_kv < s->n_head_kv || g2 < g || pl->hd < s->hs || pl->hd % s->hs ||
        pl->n_vocab < s->n_vocab)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: the source (dim %d, ffn %d, %d layers, %d heads, %d kv heads, "
                          "head size %d, vocabulary %d) does not fit in the shape (dim %d, ffn "
                          "%d, %d layers, %d heads, %d kv heads, head size %d, vocabulary %d): "
                          "each must be at least the source's, with at least as many query "
                          "heads per kv head and a head size that is a multiple of the source's",
                          s->d, s->h, s->n_layer, s->n_head, s->n_head_kv, s->hs, s->n_vocab,
                          p->n_embd, p->n_ff, p->n_layer, p->n_head, p->n_head_kv, pl->hd,
                          pl->n_vocab);
    pl->g = g;
    pl->g2 = g2;
    pl->rr = pl->hd / s->hs;
    pl->dz = (s->d + ZERO_BLOCK - 1) / ZERO_BLOCK * ZERO_BLOCK;
    if (pl->dz > p->n_embd) pl->dz = p->n_embd;
    pl->hz = (s->h + ZERO_BLOCK - 1) / ZERO_BLOCK * ZERO_BLOCK;
    if (pl->hz > p->n_ff) pl->hz = p->n_ff;
    pl->norm_scale = sqrtf((float)s->d / (float)p->n_embd);
    /* The mean of squares runs over d' dimensions now: eps' = eps * d / d'. */
    p->rms_eps = s->eps * (float)s->d / (float)p->n_embd;
    p->rope_base = s->rope_base;
    pl->src_layer_of = malloc((size_t)p->n_layer * sizeof *pl->src_layer_of);
    if (!pl->src_layer_of) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < p->n_layer; i++) pl->src_layer_of[i] = -1;
    /* Real layers spread evenly, the identity layers between them. */
    for (int32_t l = 0; l < s->n_layer; l++)
        pl->src_layer_of[(int64_t)l * p->n_layer / s->n_layer] = l;
    return CELER_OK;
}

/* ---------------------------------------------------------------- metadata */

static celer_status copy_tokenizer(gguf_writer *w, const gguf_file *v, int32_t n_tok,
                                   int32_t n_vocab, celer_error *err) {
    celer_status st = CELER_OK;
    const bool pad = n_vocab > n_tok;
    for (int64_t i = 0; i < gguf_n_kv(v) && !st; i++) {
        gguf_str k = gguf_kv_key(v, i);
        if (k.len < 10 || memcmp(k.data, "tokenizer.", 10)) continue;
        if (pad && (gguf_str_eq(k, "tokenizer.ggml.tokens") ||
                    gguf_str_eq(k, "tokenizer.ggml.scores") ||
                    gguf_str_eq(k, "tokenizer.ggml.token_type")))
            continue; /* rewritten padded below */
        st = gguf_writer_copy_kv(w, v, i);
        if (st) return celer_fail(err, st, "synth: cannot copy key '%.*s'", (int)k.len, k.data);
    }
    if (!pad) return CELER_OK;

    /* Padding: extra tokens "[PAD<i>]" marked unused, score 0, so tokenizers never emit them. */
    gguf_array toks, scores, types;
    memset(&toks, 0, sizeof toks);
    const bool has_scores = gguf_get_arr(v, "tokenizer.ggml.scores", &scores) &&
                            scores.n == (uint64_t)n_tok;
    const bool has_types = gguf_get_arr(v, "tokenizer.ggml.token_type", &types) &&
                           types.n == (uint64_t)n_tok;
    gguf_get_arr(v, "tokenizer.ggml.tokens", &toks);
    const char **strs = malloc((size_t)n_vocab * sizeof *strs);
    uint64_t *lens = malloc((size_t)n_vocab * sizeof *lens);
    char *pads = malloc((size_t)(n_vocab - n_tok) * 24);
    float *sc = malloc((size_t)n_vocab * sizeof *sc);
    int32_t *ty = malloc((size_t)n_vocab * sizeof *ty);
    if (!strs || !lens || !pads || !sc || !ty) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; !st && i < n_vocab; i++) {
        double f = 0.0;
        int64_t tt = CELER_TOKEN_UNUSED;
        if (i < n_tok) {
            gguf_str s;
            if (!gguf_arr_str(&toks, (uint64_t)i, &s)) {
                st = celer_fail(err, CELER_ERR_FORMAT, "synth: vocabulary token %d is not a string", i);
                break;
            }
            strs[i] = s.data;
            lens[i] = s.len;
            if (has_scores) gguf_arr_f64(&scores, (uint64_t)i, &f);
            tt = CELER_TOKEN_NORMAL;
            if (has_types) gguf_arr_i64(&types, (uint64_t)i, &tt);
        } else {
            char *b = pads + (size_t)(i - n_tok) * 24;
            lens[i] = (uint64_t)snprintf(b, 24, "[PAD%d]", (int)i);
            strs[i] = b;
        }
        sc[i] = (float)f;
        ty[i] = (int32_t)tt;
    }
    if (!st) {
        st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, (uint64_t)n_vocab);
        if (!st && has_scores)
            st = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, sc,
                                     (uint64_t)n_vocab);
        if (!st && has_types)
            st = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, ty,
                                     (uint64_t)n_vocab);
        if (st) st = celer_fail(err, st, "synth: cannot write the padded tokenizer");
    }
    free(strs);
    free(lens);
    free(pads);
    free(sc);
    free(ty);
    return st;
}

static celer_status write_hparams(gguf_writer *w, const synth_plan *pl) {
    const celer_synth_params *p = &pl->p;
    char name[160], key[96];
    celer_status st = gguf_writer_set_str(w, "general.architecture", p->arch);
    if (p->name) snprintf(name, sizeof name, "%s", p->name);
    else
        snprintf(name, sizeof name, "celer-synth %s d%d l%d h%d kv%d ff%d %s%s", p->arch,
                 p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->n_ff, p->type,
                 pl->src ? " inflated" : "");
    if (!st) st = gguf_writer_set_str(w, "general.name", name);
    if (!st) st = gguf_writer_set_u32(w, "general.file_type", (uint32_t)pl->ftype);
    if (!st) st = gguf_writer_set_u32(w, "general.quantization_version", 2);
#define U32(suffix, v)                                                                          \
    if (!st) {                                                                                  \
        snprintf(key, sizeof key, "%s.%s", p->arch, suffix);                                    \
        st = gguf_writer_set_u32(w, key, (uint32_t)(v));                                        \
    }
#define F32(suffix, v)                                                                          \
    if (!st) {                                                                                  \
        snprintf(key, sizeof key, "%s.%s", p->arch, suffix);                                    \
        st = gguf_writer_set_f32(w, key, v);                                                    \
    }
    U32("context_length", p->n_ctx);
    U32("embedding_length", p->n_embd);
    U32("block_count", p->n_layer);
    U32("feed_forward_length", p->n_ff);
    U32("attention.head_count", p->n_head);
    U32("attention.head_count_kv", p->n_head_kv);
    F32("attention.layer_norm_rms_epsilon", p->rms_eps);
    F32("rope.freq_base", p->rope_base);
    U32("rope.dimension_count", pl->hd);
    U32("vocab_size", pl->n_vocab);
#undef U32
#undef F32
    return st;
}

/* ---------------------------------------------------------------- driver */

static celer_status build_tensors(synth_plan *pl, gguf_writer *w, celer_error *err) {
    uint64_t total = 0;
    int64_t max_ne0 = 1;
    for (int32_t i = 0; i < pl->n_t; i++) {
        const synth_tensor *t = &pl->t[i];
        total += (uint64_t)t->row_bytes * (uint64_t)t->ne1;
        if (t->ne0 > max_ne0) max_ne0 = t->ne0;
    }
    if (total > SYNTH_MAX_BYTES)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "synth: the model would take %.1f GiB; at most %.0f GiB is supported",
                          (double)total / (1 << 30), (double)SYNTH_MAX_BYTES / (1 << 30));
    celer_pool *pool = celer_pool_create(pl->p.n_threads);
    float *scratch = malloc((size_t)pl->p.n_threads * (size_t)max_ne0 * sizeof *scratch);
    celer_status st = CELER_OK;
    if (!pool || !scratch) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < pl->n_t && !st; i++) {
        synth_tensor *t = &pl->t[i];
        const uint64_t size = (uint64_t)t->row_bytes * (uint64_t)t->ne1;
        t->data = malloc((size_t)size);
        if (!t->data) {
            st = celer_fail(err, CELER_ERR_NOMEM, "synth: out of memory for tensor '%s' (%llu bytes)",
                            t->name, (unsigned long long)size);
            break;
        }
        fill_job job = {.pl = pl, .t = t, .scratch = scratch, .max_ne0 = max_ne0};
        if (t->ne0 * t->ne1 >= 65536) celer_pool_run(pool, fill_rows, &job);
        else fill_rows(&job, 0, 1); /* waking threads costs more than small tensors */
        const int64_t ne[2] = {t->ne0, t->ne1};
        st = gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, size);
        if (st) st = celer_fail(err, st, "synth: cannot add tensor '%s'", t->name);
    }
    celer_pool_free(pool);
    free(scratch);
    return st;
}

celer_status celer_synth(const celer_synth_params *params, const char *out_path,
                         celer_error *err) {
    if (!params || !out_path)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "synth: parameters and an output path are required");
    synth_plan pl;
    memset(&pl, 0, sizeof pl);
    celer_status st = resolve_params(&pl, params, err);
    if (st) return st;

    gguf_file *vocab = NULL;
    gguf_writer *w = NULL;
    st = gguf_open(pl.p.vocab_path, &vocab, err);
    if (st) {
        celer_fail_prefix(err, "synth: vocabulary %s", pl.p.vocab_path);
        return st;
    }
    gguf_array toks;
    int32_t n_tok = 0;
    if (!gguf_get_arr(vocab, "tokenizer.ggml.tokens", &toks) || toks.type != GGUF_TYPE_STRING ||
        toks.n == 0 || toks.n > (1u << 24))
        st = celer_fail(err, CELER_ERR_FORMAT,
                        "synth: %s has no tokenizer (tokenizer.ggml.tokens string array)",
                        pl.p.vocab_path);
    else n_tok = (int32_t)toks.n;
    if (!st) {
        pl.n_vocab = pl.p.n_vocab ? pl.p.n_vocab : n_tok;
        if (pl.n_vocab < n_tok)
            st = celer_fail(err, CELER_ERR_INVALID_ARG,
                            "synth: vocabulary size %d is smaller than the tokenizer's %d tokens",
                            pl.n_vocab, n_tok);
    }
    if (!st && pl.p.inflate_path) {
        st = src_load(pl.p.inflate_path, &pl.src, err);
        if (!st) st = plan_inflation(&pl, err);
    }
    if (!st) {
        pl.t = calloc((size_t)pl.p.n_layer * 16 + 4, sizeof *pl.t);
        w = gguf_writer_create();
        if (!pl.t || !w) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        make_tensor_list(&pl);
        st = write_hparams(w, &pl);
        if (st) st = celer_fail(err, st, "synth: cannot write the hyper-parameters");
    }
    if (!st) st = copy_tokenizer(w, vocab, n_tok, pl.n_vocab, err);
    if (!st) st = build_tensors(&pl, w, err);
    if (!st) st = gguf_writer_write(w, out_path, err);
    for (int32_t i = 0; pl.t && i < pl.n_t; i++) free(pl.t[i].data);
    free(pl.t);
    free(pl.src_layer_of);
    src_free(pl.src);
    gguf_writer_free(w);
    gguf_close(vocab);
    return st;
}
