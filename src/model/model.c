/* Model loading: GGUF files (weights bound in place in the mapping) and the shared
 * accessors. llama2.c checkpoints are in llama2c.c. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/types.h"
#include "tokenizer/tokenizer.h"

celer_model_params celer_model_default_params(void) {
    celer_model_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* GGUF files start with the magic; anything else is taken for a llama2.c checkpoint. One open
 * both checks that the file is readable and reads the magic. */
static celer_status probe_gguf(const char *path, bool *is_gguf, celer_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return celer_fail(err, CELER_ERR_IO, "%s: cannot open file", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    *is_gguf = got == 4 && memcmp(magic, GGUF_MAGIC, 4) == 0;
    return CELER_OK;
}

/* The kernel set the params ask for: the reference set, one by name, or the fastest. */
static celer_status pick_kernels(const celer_model_params *params, const ct_kernels **out, celer_error *err) {
    if (params->force_reference_kernels) *out = ct_kernels_reference();
    else if (params->kernels) *out = ct_kernels_by_name(params->kernels);
    else *out = ct_kernels_best();
    if (*out) return CELER_OK;
    const ct_kernels *sets[4];
    const int n = ct_kernels_available(sets, 4);
    char names[128] = "";
    for (int i = 0; i < n && i < 4; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", sets[i]->name);
    return celer_fail(err, CELER_ERR_INVALID_ARG, "kernel set '%s' is not available on this CPU (available: %s)",
                      params->kernels, names);
}

celer_status celer_model_load(const char *path, const celer_model_params *params,
                              celer_model **out, celer_error *err) {
    if (!path || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "no model path given");
    *out = NULL;
    celer_model_params defaults = celer_model_default_params();
    if (!params) params = &defaults;
    celer_model *m = calloc(1, sizeof *m);
    if (!m) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    celer_status ks = pick_kernels(params, &m->kernels, err);
    if (ks != CELER_OK) {
        free(m);
        return ks;
    }

    bool is_gguf = false;
    celer_status st = probe_gguf(path, &is_gguf, err);
    if (st != CELER_OK) {
        free(m);
        return st;
    }
    if (is_gguf) {
        gguf_file *f = NULL;
        st = gguf_open(path, &f, err);
        if (st == CELER_OK) st = cm_model_from_gguf(f, params, m, err);
    } else if (has_suffix(path, ".gguf")) {
        st = celer_fail(err, CELER_ERR_FORMAT, "not a GGUF file (bad magic)");
    } else {
        st = cm_model_from_llama2c(path, params->tokenizer_path, params, m, err);
    }
    if (st != CELER_OK) {
        celer_fail_prefix(err, "%s", path);
        celer_model_free(m);
        return st;
    }
    *out = m;
    return CELER_OK;
}

void celer_model_free(celer_model *m) {
    if (!m) return;
    celer_vocab_free(m->vocab);
    free(m->layers);
    for (int32_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    gguf_close(m->gguf);
    if (m->map) cm_unmap(m->map, m->map_size);
    free(m);
}

int32_t celer_model_n_vocab(const celer_model *m) { return m->hp.n_vocab; }
int32_t celer_model_n_embd(const celer_model *m) { return m->hp.n_embd; }
int32_t celer_model_n_layer(const celer_model *m) { return m->hp.n_layer; }
int32_t celer_model_n_ctx_train(const celer_model *m) { return m->hp.n_ctx_train; }
const char *celer_model_arch(const celer_model *m) { return m->arch_name; }
const char *celer_model_kernels(const celer_model *m) { return m->kernels->name; }
int64_t celer_model_n_params(const celer_model *m) { return m->n_params; }
const celer_vocab *celer_model_vocab(const celer_model *m) { return m->vocab; }

celer_status cm_check_hparams(const cm_hparams *hp, celer_error *err) {
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_ff <= 0 || hp->n_vocab <= 0 || hp->head_dim <= 0)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "bad hyper-parameters: n_embd %d, n_layer %d, n_head %d, n_head_kv %d, "
                          "n_ff %d, n_vocab %d, head_dim %d",
                          hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff,
                          hp->n_vocab, hp->head_dim);
    if (hp->n_embd > (1 << 20) || hp->n_layer > 4096 || hp->n_head > 4096 || hp->n_ff > (1 << 22) ||
        hp->n_vocab > (1 << 24) || hp->head_dim > 4096)
        return celer_fail(err, CELER_ERR_FORMAT, "absurd hyper-parameters (n_embd %d, n_layer %d)",
                          hp->n_embd, hp->n_layer);
    if (hp->n_head % hp->n_head_kv)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "head count %d is not a multiple of the KV head count %d", hp->n_head,
                          hp->n_head_kv);
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return celer_fail(err, CELER_ERR_FORMAT, "bad rope dimension count %d (head size %d)",
                          hp->n_rot, hp->head_dim);
    if (!(hp->rms_eps > 0.0f) || !(hp->rope_base > 0.0f) || !(hp->rope_freq_scale > 0.0f))
        return celer_fail(err, CELER_ERR_FORMAT, "bad epsilon or rope base/scale");
    if (hp->n_ctx_train <= 0)
        return celer_fail(err, CELER_ERR_FORMAT, "bad context length %d", hp->n_ctx_train);
    return CELER_OK;
}

/* ---------------------------------------------------------------- GGUF binding */

typedef struct binder {
    const gguf_file *f;
    celer_model *m;
    celer_error *err;
    char prefix[24]; /* "llama." */
} binder;

static bool key_u32(binder *b, const char *suffix, uint32_t *out, bool required,
                    celer_status *st) {
    char key[128];
    snprintf(key, sizeof key, "%s%s", b->prefix, suffix);
    if (gguf_find_key(b->f, key) < 0) {
        if (required)
            *st = celer_fail(b->err, CELER_ERR_FORMAT, "missing required key '%s'", key);
        return false;
    }
    if (!gguf_get_u32(b->f, key, out)) {
        *st = celer_fail(b->err, CELER_ERR_FORMAT, "key '%s' is not a valid unsigned integer", key);
        return false;
    }
    return true;
}

static bool key_f32(binder *b, const char *suffix, float *out, celer_status *st) {
    char key[128];
    snprintf(key, sizeof key, "%s%s", b->prefix, suffix);
    if (gguf_find_key(b->f, key) < 0) return false;
    if (!gguf_get_f32(b->f, key, out) || !isfinite(*out)) {
        *st = celer_fail(b->err, CELER_ERR_FORMAT, "key '%s' is not a valid number", key);
        return false;
    }
    return true;
}

static celer_status read_hparams(binder *b) {
    cm_hparams *hp = &b->m->hp;
    celer_status st = CELER_OK;
    uint32_t v;
#define REQ(suffix, field)                                                                     \
    if (!key_u32(b, suffix, &v, true, &st)) return st;                                         \
    hp->field = (int32_t)(v > INT32_MAX ? INT32_MAX : v);
    REQ("embedding_length", n_embd);
    REQ("block_count", n_layer);
    REQ("attention.head_count", n_head);
    REQ("context_length", n_ctx_train);
#undef REQ
    hp->n_head_kv = hp->n_head;
    if (key_u32(b, "attention.head_count_kv", &v, false, &st)) hp->n_head_kv = (int32_t)(v > INT32_MAX ? 0 : v);
    if (st) return st;
    hp->n_ff = 0;
    if (key_u32(b, "feed_forward_length", &v, false, &st)) hp->n_ff = (int32_t)(v > INT32_MAX ? 0 : v);
    if (st) return st;
    hp->head_dim = hp->n_head > 0 ? hp->n_embd / hp->n_head : 0;
    if (key_u32(b, "attention.key_length", &v, false, &st)) hp->head_dim = (int32_t)(v > 4096 ? 0 : v);
    if (st) return st;
    hp->n_rot = hp->head_dim;
    if (key_u32(b, "rope.dimension_count", &v, false, &st)) hp->n_rot = (int32_t)(v > 4096 ? 0 : v);
    if (st) return st;
    hp->rms_eps = 1e-5f;
    key_f32(b, "attention.layer_norm_rms_epsilon", &hp->rms_eps, &st);
    hp->rope_base = 10000.0f;
    key_f32(b, "rope.freq_base", &hp->rope_base, &st);
    hp->rope_freq_scale = 1.0f;
    float factor;
    if (key_f32(b, "rope.scaling.factor", &factor, &st) && factor > 0.0f) {
        char key[128];
        gguf_str type = {0, NULL};
        snprintf(key, sizeof key, "%srope.scaling.type", b->prefix);
        bool has_type = gguf_get_str(b->f, key, &type);
        if (!has_type || gguf_str_eq(type, "linear")) hp->rope_freq_scale = 1.0f / factor;
        else if (!gguf_str_eq(type, "none"))
            return celer_fail(b->err, CELER_ERR_UNSUPPORTED, "rope scaling type '%.*s' is not supported",
                              (int)(type.len > 32 ? 32 : type.len), type.data);
    }
    return st;
}

/* Looks up a tensor and checks its shape; ne1 == 0 means a 1-D tensor. */
static const gguf_tensor *find_tensor(binder *b, const char *name, int64_t ne0, int64_t ne1,
                                      bool required, celer_status *st) {
    const gguf_tensor *t = gguf_find_tensor(b->f, name);
    if (!t) {
        if (required) *st = celer_fail(b->err, CELER_ERR_FORMAT, "missing required tensor '%s'", name);
        return NULL;
    }
    uint32_t want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && (ne1 ? t->ne[1] == ne1 : t->ne[1] == 1) && t->ne[2] == 1 &&
              t->ne[3] == 1;
    if (!ok || t->n_dims > want_dims) {
        *st = celer_fail(b->err, CELER_ERR_FORMAT,
                         "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                         name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                         (long long)t->ne[3], (long long)ne0, (long long)(ne1 ? ne1 : 1));
        return NULL;
    }
    const celer_type_info *ti = celer_type_get(t->type);
    if (!ti || !ti->computable || ct_vec_dot_type(t->type) < 0) {
        *st = celer_fail(b->err, CELER_ERR_UNSUPPORTED,
                         "tensor '%s' has type %s (%d), which celer does not support", name,
                         ti ? ti->name : "unknown", (int)t->type);
        return NULL;
    }
    return t;
}

static bool bind_matrix(binder *b, const char *name, int64_t cols, int64_t rows, cm_matrix *out,
                        bool required, celer_status *st) {
    const gguf_tensor *t = find_tensor(b, name, cols, rows, required, st);
    if (!t) return false;
    out->data = t->data;
    out->type = t->type;
    out->cols = cols;
    out->rows = rows;
    out->row_bytes = celer_row_size(t->type, cols);
    b->m->n_params += cols * rows;
    return true;
}

/* 1-D tensors are used as F32; other types are converted once into an owned buffer. */
static const float *bind_vector(binder *b, const char *name, int64_t n, bool required,
                                celer_status *st) {
    const gguf_tensor *t = find_tensor(b, name, n, 0, required, st);
    if (!t) return NULL;
    b->m->n_params += n;
    if (t->type == CELER_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) return t->data;
    celer_model *m = b->m;
    float **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    float *buf = malloc((size_t)n * sizeof *buf);
    if (!owned || !buf) {
        if (owned) m->owned = owned;
        free(buf);
        *st = celer_fail(b->err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->owned = owned;
    m->owned[m->n_owned++] = buf;
    if (t->type == CELER_TYPE_F32) memcpy(buf, t->data, (size_t)n * sizeof *buf);
    else if (n % celer_type_get(t->type)->block_size == 0) ct_to_float(t->type, t->data, buf, n);
    else {
        *st = celer_fail(b->err, CELER_ERR_FORMAT, "tensor '%s' cannot be converted", name);
        return NULL;
    }
    return buf;
}

static celer_status bind_layer(binder *b, int32_t il, cm_layer *L) {
    const cm_hparams *hp = &b->m->hp;
    const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim,
                  dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    celer_status st = CELER_OK;
    char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", (int)il, s), name)
    L->attn_norm = bind_vector(b, NAME("attn_norm.weight"), d, true, &st);
    if (st) return st;
    if (!bind_matrix(b, NAME("attn_q.weight"), d, dq, &L->wq, true, &st)) return st;
    if (!bind_matrix(b, NAME("attn_k.weight"), d, dkv, &L->wk, true, &st)) return st;
    if (!bind_matrix(b, NAME("attn_v.weight"), d, dkv, &L->wv, true, &st)) return st;
    if (!bind_matrix(b, NAME("attn_output.weight"), dq, d, &L->wo, true, &st)) return st;
    bool biases = b->m->arch == CM_ARCH_QWEN2;
    L->bq = bind_vector(b, NAME("attn_q.bias"), dq, biases, &st);
    L->bk = bind_vector(b, NAME("attn_k.bias"), dkv, biases, &st);
    L->bv = bind_vector(b, NAME("attn_v.bias"), dkv, biases, &st);
    if (st) return st;
    bool qk_norm = b->m->arch == CM_ARCH_QWEN3;
    L->q_norm = bind_vector(b, NAME("attn_q_norm.weight"), hp->head_dim, qk_norm, &st);
    L->k_norm = bind_vector(b, NAME("attn_k_norm.weight"), hp->head_dim, qk_norm, &st);
    if (st) return st;
    L->ffn_norm = bind_vector(b, NAME("ffn_norm.weight"), d, true, &st);
    if (st) return st;
    if (!bind_matrix(b, NAME("ffn_gate.weight"), d, ff, &L->w_gate, true, &st)) return st;
    if (!bind_matrix(b, NAME("ffn_up.weight"), d, ff, &L->w_up, true, &st)) return st;
    if (!bind_matrix(b, NAME("ffn_down.weight"), ff, d, &L->w_down, true, &st)) return st;
#undef NAME
    return CELER_OK;
}

static celer_status bind_arch(binder *b) {
    gguf_str arch;
    if (!gguf_get_str(b->f, "general.architecture", &arch))
        return celer_fail(b->err, CELER_ERR_FORMAT, "missing required key 'general.architecture'");
    celer_model *m = b->m;
    if (gguf_str_eq(arch, "llama")) m->arch = CM_ARCH_LLAMA;
    else if (gguf_str_eq(arch, "qwen2")) m->arch = CM_ARCH_QWEN2;
    else if (gguf_str_eq(arch, "qwen3")) m->arch = CM_ARCH_QWEN3;
    else
        return celer_fail(b->err, CELER_ERR_UNSUPPORTED,
                          "architecture '%.*s' is not supported (celer runs llama, qwen2, qwen3)",
                          (int)(arch.len > 40 ? 40 : arch.len), arch.data);
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)arch.len, arch.data);
    snprintf(b->prefix, sizeof b->prefix, "%s.", m->arch_name);
    m->hp.rope_neox = m->arch != CM_ARCH_LLAMA;
    return CELER_OK;
}

celer_status cm_model_from_gguf(gguf_file *f, const celer_model_params *params, celer_model *m,
                                celer_error *err) {
    (void)params;
    m->gguf = f;
    binder b = {.f = f, .m = m, .err = err};
    celer_status st = bind_arch(&b);
    if (st) return st;
    if ((st = read_hparams(&b))) return st;

    /* n_vocab and n_ff may be implied by tensor shapes. */
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) return celer_fail(err, CELER_ERR_FORMAT, "missing required tensor 'token_embd.weight'");
    m->hp.n_vocab = te->ne[1] > 0 && te->ne[1] <= INT32_MAX ? (int32_t)te->ne[1] : 0;
    if (m->hp.n_ff == 0) {
        const gguf_tensor *g = gguf_find_tensor(f, "blk.0.ffn_gate.weight");
        if (g && g->ne[1] > 0 && g->ne[1] <= INT32_MAX) m->hp.n_ff = (int32_t)g->ne[1];
    }
    if ((st = cm_check_hparams(&m->hp, err))) return st;

    const cm_hparams *hp = &m->hp;
    if (!bind_matrix(&b, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd, true, &st))
        return st;
    m->output_norm = bind_vector(&b, "output_norm.weight", hp->n_embd, true, &st);
    if (st) return st;
    if (!bind_matrix(&b, "output.weight", hp->n_embd, hp->n_vocab, &m->output, false, &st)) {
        if (st) return st;
        m->output = m->tok_embd; /* tied embeddings */
    }
    m->rope_freq_factors = bind_vector(&b, "rope_freqs.weight", hp->n_rot / 2, false, &st);
    if (st) return st;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    for (int32_t il = 0; il < hp->n_layer; il++)
        if ((st = bind_layer(&b, il, &m->layers[il]))) return st;

    if ((st = ctok_vocab_from_gguf(f, &m->vocab, err))) return st;
    if (celer_vocab_n_tokens(m->vocab) > hp->n_vocab)
        return celer_fail(err, CELER_ERR_FORMAT, "tokenizer has %d tokens but the model only %d",
                          celer_vocab_n_tokens(m->vocab), hp->n_vocab);
    return CELER_OK;
}

int32_t celer_model_meta_str(const celer_model *m, const char *key, char *buf, size_t cap) {
    gguf_str v;
    if (!m || !key || !m->gguf || !gguf_get_str(m->gguf, key, &v) || v.len > INT32_MAX) return -1;
    if (cap > 0 && buf) {
        size_t n = v.len < cap - 1 ? (size_t)v.len : cap - 1;
        memcpy(buf, v.data, n);
        buf[n] = 0;
    }
    return (int32_t)v.len;
}
