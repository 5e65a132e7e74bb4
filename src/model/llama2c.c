/*
 * llama2.c checkpoints (Karpathy's run.c, legacy "version 0" export): a header of seven
 * int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative when the
 * classifier is stored separately), seq_len — followed by float32 tensors in this order:
 *   token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim], wk[L][kv_dim][dim],
 *   wv[L][kv_dim][dim], wo[L][dim][dim], rms_ffn[L][dim], w1[L][hidden][dim],
 *   w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
 *   freq_cis_real[seq_len][head/2], freq_cis_imag[seq_len][head/2], (wcls[vocab][dim]).
 * Matrices are row-major (out, in), which is how celer stores rows. RoPE pairs adjacent
 * values with base 10000, as the `llama` architecture does.
 *
 * This file maps such a checkpoint in place and converts it (with its tokenizer) to GGUF.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/types.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#define L2C_HEADER_BYTES 28

typedef struct l2c_header {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} l2c_header;

void cm_unmap(void *map, size_t size) { munmap(map, size); }

static celer_status map_file(const char *path, void **map, size_t *size, celer_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return celer_fail(err, CELER_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return celer_fail(err, CELER_ERR_FORMAT, "empty or unreadable file");
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return celer_fail(err, CELER_ERR_IO, "mmap failed: %s", strerror(errno));
    *map = p;
    *size = (size_t)st.st_size;
    return CELER_OK;
}

/* Fills hp from the header and returns the number of floats the body must hold. */
static celer_status read_header(const void *map, size_t size, l2c_header *h, cm_hparams *hp,
                                bool *shared, int64_t *n_floats, celer_error *err) {
    if (size < L2C_HEADER_BYTES)
        return celer_fail(err, CELER_ERR_FORMAT, "file too small for a llama2.c header (%zu bytes)", size);
    memcpy(h, map, sizeof *h);
    if (h->dim == 0x616b3432) /* "ak42": llama2.c export v1+ or bitllama2.c */
        return celer_fail(err, CELER_ERR_UNSUPPORTED,
                          "versioned llama2.c checkpoints and BitNet b1.58 (bitllama2.c) checkpoints are not "
                          "supported; celer reads the legacy llama2.c format (run.c's) and GGUF");
    *shared = h->vocab_size > 0;
    int32_t vocab = h->vocab_size < 0 ? -h->vocab_size : h->vocab_size;
    memset(hp, 0, sizeof *hp);
    hp->n_embd = h->dim;
    hp->n_ff = h->hidden_dim;
    hp->n_layer = h->n_layers;
    hp->n_head = h->n_heads;
    hp->n_head_kv = h->n_kv_heads;
    hp->n_vocab = vocab;
    hp->n_ctx_train = h->seq_len;
    hp->head_dim = h->n_heads > 0 && h->dim % h->n_heads == 0 ? h->dim / h->n_heads : 0;
    hp->n_rot = hp->head_dim;
    hp->rms_eps = 1e-5f;
    hp->rope_base = 10000.0f;
    hp->rope_freq_scale = 1.0f;
    hp->rope_neox = false;
    celer_status st = cm_check_hparams(hp, err);
    if (st) return celer_fail_prefix(err, "llama2.c header");
    int64_t d = hp->n_embd, kv = (int64_t)hp->n_head_kv * hp->head_dim, L = hp->n_layer,
            ff = hp->n_ff, V = vocab;
    int64_t n = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * ff * d +
                d + (int64_t)hp->n_ctx_train * hp->head_dim;
    if (!*shared) n += V * d;
    *n_floats = n;
    if ((uint64_t)n * 4 + L2C_HEADER_BYTES > size)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "truncated llama2.c checkpoint: the header implies %lld bytes, the file has %zu",
                          (long long)(n * 4 + L2C_HEADER_BYTES), size);
    return CELER_OK;
}

static cm_matrix f32_matrix(const float *p, int64_t rows, int64_t cols) {
    cm_matrix m = {p, CELER_TYPE_F32, cols, rows, (size_t)cols * sizeof(float)};
    return m;
}

/* Walks the body in file order, binding layer tensors. */
static void bind_body(celer_model *m, const float *p, bool shared) {
    const cm_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd, kv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff,
                  V = hp->n_vocab;
    const int32_t L = hp->n_layer;
    m->tok_embd = f32_matrix(p, V, d);
    p += V * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].attn_norm = p + l * d;
    p += L * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].wq = f32_matrix(p + l * d * d, d, d);
    p += L * d * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].wk = f32_matrix(p + l * kv * d, kv, d);
    p += L * kv * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].wv = f32_matrix(p + l * kv * d, kv, d);
    p += L * kv * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].wo = f32_matrix(p + l * d * d, d, d);
    p += L * d * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].ffn_norm = p + l * d;
    p += L * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].w_gate = f32_matrix(p + l * ff * d, ff, d);
    p += L * ff * d;
    for (int32_t l = 0; l < L; l++) m->layers[l].w_down = f32_matrix(p + l * d * ff, d, ff);
    p += L * d * ff;
    for (int32_t l = 0; l < L; l++) m->layers[l].w_up = f32_matrix(p + l * ff * d, ff, d);
    p += L * ff * d;
    m->output_norm = p;
    p += d;
    p += (int64_t)hp->n_ctx_train * hp->head_dim; /* freq_cis_real + freq_cis_imag */
    m->output = shared ? m->tok_embd : f32_matrix(p, V, d);
    m->n_params = V * d * (shared ? 1 : 2) + L * (2 * d + 2 * d * d + 2 * kv * d + 3 * ff * d) + d;
}

celer_status cm_model_from_llama2c(const char *path, const char *tok_path,
                                   const celer_model_params *params, celer_model *m,
                                   celer_error *err) {
    (void)params;
    if (!tok_path)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "a llama2.c checkpoint needs its tokenizer file (-z tok512.bin)");
    celer_status st = map_file(path, &m->map, &m->map_size, err);
    if (st) return st;
    l2c_header h;
    bool shared = true;
    int64_t n_floats;
    if ((st = read_header(m->map, m->map_size, &h, &m->hp, &shared, &n_floats, err))) return st;
    snprintf(m->arch_name, sizeof m->arch_name, "llama");
    m->arch = CM_ARCH_LLAMA;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    bind_body(m, (const float *)((const char *)m->map + L2C_HEADER_BYTES), shared);
    if ((st = ctok_vocab_from_llama2c(tok_path, m->hp.n_vocab, &m->vocab, err)))
        return celer_fail_prefix(err, "%s", tok_path);
    return CELER_OK;
}

/* ---------------------------------------------------------------- conversion to GGUF */

typedef struct l2c_tokens {
    int32_t n;
    char **text;     /* NUL-terminated, spaces as U+2581 */
    uint64_t *len;
    float *score;
    int32_t *type;
} l2c_tokens;

static void free_tokens(l2c_tokens *t) {
    for (int32_t i = 0; t->text && i < t->n; i++) free(t->text[i]);
    free(t->text);
    free(t->len);
    free(t->score);
    free(t->type);
}

/* Reads tok512.bin-style files: int32 max_len, then per token {f32 score, i32 len, bytes}.
 * Ids 0/1/2 are <unk>, <s>, </s> (stored as "\n<s>\n" etc. by llama2.c); "<0xXX>" are byte
 * tokens. Spaces become U+2581, as SentencePiece vocabularies in GGUF store them. */
static celer_status read_l2c_tokens(const char *path, int32_t n_vocab, l2c_tokens *t,
                                    celer_error *err) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return celer_fail(err, CELER_ERR_IO, "%s: cannot open tokenizer", path);
    int32_t max_len;
    celer_status st = CELER_OK;
    t->text = calloc((size_t)n_vocab, sizeof *t->text);
    t->len = calloc((size_t)n_vocab, sizeof *t->len);
    t->score = calloc((size_t)n_vocab, sizeof *t->score);
    t->type = calloc((size_t)n_vocab, sizeof *t->type);
    t->n = n_vocab;
    if (!t->text || !t->len || !t->score || !t->type) {
        st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (fread(&max_len, 4, 1, f) != 1 || max_len <= 0 || max_len > 4096) {
        st = celer_fail(err, CELER_ERR_FORMAT, "%s: bad tokenizer header", path);
        goto done;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        int32_t len;
        char raw[4096];
        if (fread(&t->score[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1 || len < 0 ||
            len > max_len || fread(raw, 1, (size_t)len, f) != (size_t)len) {
            st = celer_fail(err, CELER_ERR_FORMAT, "%s: truncated or bad entry for token %d", path, i);
            goto done;
        }
        char *out = malloc((size_t)len * 3 + 8);
        if (!out) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
            goto done;
        }
        size_t o = 0;
        if (i == 0) o = (size_t)sprintf(out, "<unk>");
        else if (i == 1) o = (size_t)sprintf(out, "<s>");
        else if (i == 2) o = (size_t)sprintf(out, "</s>");
        else
            for (int32_t j = 0; j < len; j++) {
                if (raw[j] == ' ') {
                    memcpy(out + o, "\xe2\x96\x81", 3);
                    o += 3;
                } else out[o++] = raw[j];
            }
        out[o] = 0;
        t->text[i] = out;
        t->len[i] = o;
        bool is_byte = o == 6 && out[0] == '<' && out[1] == '0' && out[2] == 'x' && out[5] == '>';
        t->type[i] = i == 0 ? CELER_TOKEN_UNKNOWN
                     : (i == 1 || i == 2) ? CELER_TOKEN_CONTROL
                     : is_byte ? CELER_TOKEN_BYTE
                               : CELER_TOKEN_NORMAL;
    }
done:
    fclose(f);
    if (st) free_tokens(t);
    return st;
}

static celer_status write_tensor(gguf_writer *w, const char *name, const float *data,
                                 int64_t ne0, int64_t ne1) {
    int64_t ne[2] = {ne0, ne1};
    return gguf_writer_add_tensor(w, name, CELER_TYPE_F32, ne1 > 1 ? 2 : 1, ne, data,
                                  (uint64_t)(ne0 * ne1) * sizeof(float));
}

static celer_status add_weights(gguf_writer *w, const celer_model *m) {
    const cm_hparams *hp = &m->hp;
    celer_status st = CELER_OK;
    char name[96];
    st |= write_tensor(w, "token_embd.weight", m->tok_embd.data, hp->n_embd, hp->n_vocab);
    st |= write_tensor(w, "output_norm.weight", m->output_norm, hp->n_embd, 1);
    if (m->output.data != m->tok_embd.data)
        st |= write_tensor(w, "output.weight", m->output.data, hp->n_embd, hp->n_vocab);
    for (int32_t l = 0; l < hp->n_layer && !st; l++) {
        const cm_layer *L = &m->layers[l];
        const cm_matrix *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        const char *names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", (int)l, names[i]);
            st |= write_tensor(w, name, mats[i]->data, mats[i]->cols, mats[i]->rows);
        }
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", (int)l);
        st |= write_tensor(w, name, L->attn_norm, hp->n_embd, 1);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", (int)l);
        st |= write_tensor(w, name, L->ffn_norm, hp->n_embd, 1);
    }
    return st;
}

static celer_status add_metadata(gguf_writer *w, const celer_model *m, const l2c_tokens *t) {
    const cm_hparams *hp = &m->hp;
    celer_status st = CELER_OK;
    st |= gguf_writer_set_str(w, "general.architecture", "llama");
    st |= gguf_writer_set_str(w, "general.name", "llama2.c checkpoint");
    st |= gguf_writer_set_u32(w, "general.file_type", 0);
    st |= gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)hp->n_vocab);
    st |= gguf_writer_set_u32(w, "llama.context_length", (uint32_t)hp->n_ctx_train);
    st |= gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)hp->n_embd);
    st |= gguf_writer_set_u32(w, "llama.block_count", (uint32_t)hp->n_layer);
    st |= gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)hp->n_ff);
    st |= gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hp->n_rot);
    st |= gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)hp->n_head);
    st |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)hp->n_head_kv);
    st |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", hp->rms_eps);
    st |= gguf_writer_set_f32(w, "llama.rope.freq_base", hp->rope_base);
    st |= gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    st |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)t->text, t->len,
                                  (uint64_t)t->n);
    st |= gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, t->score, (uint64_t)t->n);
    st |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, t->type, (uint64_t)t->n);
    st |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    st |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    st |= gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    st |= gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    st |= gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    return st;
}

celer_status celer_convert_llama2c(const char *checkpoint_path, const char *tokenizer_path,
                                   const char *out_path, celer_error *err) {
    if (!checkpoint_path || !tokenizer_path || !out_path)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "convert needs a checkpoint, a tokenizer and an output path");
    celer_model_params params = celer_model_default_params();
    params.tokenizer_path = tokenizer_path;
    celer_model *m = NULL;
    celer_status st = celer_model_load(checkpoint_path, &params, &m, err);
    if (st) return st;
    if (m->gguf) {
        celer_model_free(m);
        return celer_fail(err, CELER_ERR_INVALID_ARG, "%s is already a GGUF file", checkpoint_path);
    }
    l2c_tokens toks;
    if ((st = read_l2c_tokens(tokenizer_path, m->hp.n_vocab, &toks, err))) {
        celer_model_free(m);
        return st;
    }
    gguf_writer *w = gguf_writer_create();
    if (!w) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    else if (add_metadata(w, m, &toks) || add_weights(w, m))
        st = celer_fail(err, CELER_ERR_INTERNAL, "could not assemble the GGUF file");
    else st = gguf_writer_write(w, out_path, err);
    gguf_writer_free(w);
    free_tokens(&toks);
    celer_model_free(m);
    return st;
}
