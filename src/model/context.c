/*
 * Context: KV cache, scratch buffers, thread pool, and the batched forward pass.
 *
 * The KV cache gives every sequence its own region of n_ctx rows per layer, so a sequence's
 * rows are contiguous and attention walks them in order. A batch's tokens of sequence s are
 * written after the s's cached rows, in batch order, and become part of the cache when the
 * pass succeeds; the mask decides which of those batch rows each token may see, which is how
 * one pass verifies a chain, a tree, or a lookahead window. Rows can be dropped (truncate) or
 * a tree's accepted branch compacted (keep), so the cache rolls back exactly.
 *
 * The forward pass is llama.cpp's for these architectures (see shared/reference/README.md):
 * RMSNorm, q/k/v projections (+ qwen2 biases, qwen3 per-head q/k norms before RoPE), RoPE
 * (adjacent pairs for llama, NeoX halves for qwen), softmax attention with grouped KV heads,
 * output projection, SwiGLU feed-forward, final RMSNorm and the output matrix. Matrix
 * products convert activations to the weight type's vec_dot type first, as ggml does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fp16.h"
#include "core/multiversion.h"
#include "core/threadpool.h"
#include "core/types.h"
#include "model/model.h"

#define MAX_MATMUL_JOBS 3

/* A run of batch tokens of one sequence and a slice of the query heads of a KV group: one
 * attention kernel call (tokens x heads <= CT_ATTN_LANES). */
typedef struct attn_block {
    int32_t j0, nt, g0, ng;
} attn_block;

struct celer_context {
    const celer_model *model;
    celer_context_params params;
    int32_t n_ctx, n_seq, n_batch;
    int32_t kv_dim;
    celer_pool *pool;

    /* KV cache: [layer][seq][n_ctx][kv_dim], elements of kv_elem bytes (F32 or F16). */
    void *k_cache, *v_cache;
    size_t kv_elem;
    int32_t *seq_len; /* [n_seq] committed rows */

    /* Scratch for up to n_batch tokens. */
    float *x;        /* [n][n_embd] residual stream */
    float *xb;       /* [n][n_embd] normalized input of a block */
    float *q;        /* [n][n_head*head_dim] */
    float *k, *v;    /* [n][kv_dim] */
    float *att;      /* [n][n_head*head_dim] attention output */
    float *hb, *hb2; /* [n][n_ff] */
    float *scores;   /* [n_threads][attn_scratch_floats] */
    celer_segment *split; /* [n_threads] work sharing of matrix products */
    attn_block *attn_blk; /* [n_batch * ceil(group / lanes)] this pass's attention blocks */
    int32_t n_attn_blk;
    uint8_t *actq[MAX_MATMUL_JOBS]; /* activations in vec_dot types */
    size_t actq_cap;                /* bytes per actq buffer */
    void *actp[MAX_MATMUL_JOBS];    /* activations prepared for the kernels' mul_mat_prepped */
    size_t actp_cap;                /* bytes per actp buffer (0: the kernels prepare their own) */
    float *inv_freq;                /* [n_rot/2] rope inverse frequencies */
    float *rope_cs;                 /* [n_batch][n_rot/2][2] cos, sin of each batch token's angles */

    /* Per-batch bookkeeping. */
    int32_t *b_seq, *b_pos, *b_slot; /* [n_batch] */
    uint8_t *b_mask;                 /* [n_batch][n_batch] effective mask */
    int32_t *out_row;                /* [n_batch] row of logits buffer or -1 */
    int32_t *out_tok;                /* [n_batch] batch index of each output row */
    float *logits;                   /* [n_out][n_vocab] */
    float *embd;                     /* [n_out][n_embd] when params.embeddings */
    int32_t logits_cap;              /* rows allocated */
    int32_t n_out;
};

static size_t attn_scratch_floats(const celer_context *ctx);
static int32_t attn_group(const celer_context *ctx);

celer_context_params celer_context_default_params(void) {
    celer_context_params p;
    memset(&p, 0, sizeof p);
    p.n_ctx = 0;
    p.n_seq_max = 1;
    p.n_batch = 256;
    p.n_threads = 0;
    p.kv_type = CELER_KV_F32;
    p.embeddings = false;
    return p;
}

uint32_t celer_context_n_ctx(const celer_context *ctx) { return (uint32_t)ctx->n_ctx; }
int32_t celer_context_n_threads(const celer_context *ctx) { return celer_pool_n_threads(ctx->pool); }

void celer_context_free(celer_context *ctx) {
    if (!ctx) return;
    celer_pool_free(ctx->pool);
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->seq_len);
    free(ctx->x);
    free(ctx->xb);
    free(ctx->q);
    free(ctx->k);
    free(ctx->v);
    free(ctx->att);
    free(ctx->hb);
    free(ctx->hb2);
    free(ctx->scores);
    free(ctx->attn_blk);
    free(ctx->split);
    for (int i = 0; i < MAX_MATMUL_JOBS; i++) free(ctx->actq[i]), free(ctx->actp[i]);
    free(ctx->inv_freq);
    free(ctx->rope_cs);
    free(ctx->b_seq);
    free(ctx->b_pos);
    free(ctx->b_slot);
    free(ctx->b_mask);
    free(ctx->out_row);
    free(ctx->out_tok);
    free(ctx->logits);
    free(ctx->embd);
    free(ctx);
}

/* The largest bytes(m, w, n_tok) over the model's matrices. */
typedef size_t (*matrix_bytes_fn)(const celer_model *m, const cm_matrix *w, int32_t n_tok);
static size_t max_over_matrices(const celer_model *m, matrix_bytes_fn bytes, int32_t n_tok) {
    size_t best = 0;
    const cm_matrix *list[2] = {&m->output, &m->tok_embd};
    for (int i = 0; i < 2; i++) {
        size_t b = bytes(m, list[i], n_tok);
        if (b > best) best = b;
    }
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        const cm_layer *L = &m->layers[l];
        const cm_matrix *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            size_t b = bytes(m, mats[i], n_tok);
            if (b > best) best = b;
        }
    }
    return best;
}

/* One activation row of w's product in its vec_dot type. */
static size_t act_row_bytes(const celer_model *m, const cm_matrix *w, int32_t n_tok) {
    (void)m, (void)n_tok;
    return celer_row_size(ct_vec_dot_type(w->type), w->cols);
}

/* The kernels' preparation (ct_kernels.prep_size) of n_tok activation rows for w's product;
 * 0 where they prepare none. */
static size_t prep_bytes(const celer_model *m, const cm_matrix *w, int32_t n_tok) {
    const ct_kernels *K = m->kernels;
    return K->prep_size[w->type] ? K->prep_size[w->type](w->cols, n_tok) : 0;
}

static void *xcalloc(size_t n, size_t size, bool *ok) {
    if (n == 0) n = 1;
    void *p = calloc(n, size);
    if (!p) *ok = false;
    return p;
}

static void init_rope(celer_context *ctx) {
    const cm_hparams *hp = &ctx->model->hp;
    for (int32_t i = 0; i < hp->n_rot / 2; i++) {
        double f = pow((double)hp->rope_base, -2.0 * i / hp->n_rot) * hp->rope_freq_scale;
        if (ctx->model->rope_freq_factors) f /= ctx->model->rope_freq_factors[i];
        ctx->inv_freq[i] = (float)f;
    }
}

celer_status celer_context_create(const celer_model *model, const celer_context_params *params,
                                  celer_context **out, celer_error *err) {
    if (!model || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "no model given");
    *out = NULL;
    celer_context_params p = params ? *params : celer_context_default_params();
    const cm_hparams *hp = &model->hp;
    if (p.n_ctx == 0) p.n_ctx = (uint32_t)(hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (p.n_seq_max == 0) p.n_seq_max = 1;
    if (p.n_batch == 0) p.n_batch = 256;
    if (p.n_ctx > (1u << 20) || p.n_seq_max > 1024 || p.n_batch > 65536)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "context too large (n_ctx %u, n_seq %u, n_batch %u)",
                          p.n_ctx, p.n_seq_max, p.n_batch);
    if (p.kv_type != CELER_KV_F32 && p.kv_type != CELER_KV_F16)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "unknown KV cache type %d", (int)p.kv_type);
    if (p.n_threads < 0 || p.n_threads > 512)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "bad thread count %d", (int)p.n_threads);
    if (p.n_threads == 0) p.n_threads = celer_physical_cores();

    celer_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    ctx->model = model;
    ctx->params = p;
    ctx->n_ctx = (int32_t)p.n_ctx;
    ctx->n_seq = (int32_t)p.n_seq_max;
    ctx->n_batch = (int32_t)p.n_batch;
    ctx->kv_dim = hp->n_head_kv * hp->head_dim;
    ctx->kv_elem = p.kv_type == CELER_KV_F16 ? 2 : 4;

    bool ok = true;
    size_t kv_rows = (size_t)hp->n_layer * (size_t)ctx->n_seq * (size_t)ctx->n_ctx;
    ctx->k_cache = xcalloc(kv_rows * (size_t)ctx->kv_dim, ctx->kv_elem, &ok);
    ctx->v_cache = xcalloc(kv_rows * (size_t)ctx->kv_dim, ctx->kv_elem, &ok);
    ctx->seq_len = xcalloc((size_t)ctx->n_seq, sizeof(int32_t), &ok);
    size_t nb = (size_t)ctx->n_batch, qd = (size_t)hp->n_head * (size_t)hp->head_dim;
    ctx->x = xcalloc(nb * (size_t)hp->n_embd, sizeof(float), &ok);
    ctx->xb = xcalloc(nb * (size_t)(hp->n_embd > (int32_t)qd ? hp->n_embd : (int32_t)qd), sizeof(float), &ok);
    ctx->q = xcalloc(nb * qd, sizeof(float), &ok);
    ctx->k = xcalloc(nb * (size_t)ctx->kv_dim, sizeof(float), &ok);
    ctx->v = xcalloc(nb * (size_t)ctx->kv_dim, sizeof(float), &ok);
    ctx->att = xcalloc(nb * qd, sizeof(float), &ok);
    ctx->hb = xcalloc(nb * (size_t)hp->n_ff, sizeof(float), &ok);
    ctx->hb2 = xcalloc(nb * (size_t)hp->n_ff, sizeof(float), &ok);
    ctx->scores = xcalloc((size_t)p.n_threads * attn_scratch_floats(ctx), sizeof(float), &ok);
    ctx->attn_blk = xcalloc(nb * (size_t)((attn_group(ctx) + CT_ATTN_LANES - 1) / CT_ATTN_LANES),
                            sizeof(attn_block), &ok);
    ctx->actq_cap = nb * max_over_matrices(model, act_row_bytes, 1);
    for (int i = 0; i < MAX_MATMUL_JOBS; i++) ctx->actq[i] = xcalloc(ctx->actq_cap, 1, &ok);
    ctx->actp_cap = (max_over_matrices(model, prep_bytes, ctx->n_batch) + 63) & ~(size_t)63;
    for (int i = 0; i < MAX_MATMUL_JOBS && ctx->actp_cap; i++)
        ok = (ctx->actp[i] = aligned_alloc(64, ctx->actp_cap)) != NULL && ok;
    ctx->inv_freq = xcalloc((size_t)hp->n_rot / 2, sizeof(float), &ok);
    ctx->rope_cs = xcalloc(nb * (size_t)hp->n_rot, sizeof(float), &ok);
    ctx->b_seq = xcalloc(nb, sizeof(int32_t), &ok);
    ctx->b_pos = xcalloc(nb, sizeof(int32_t), &ok);
    ctx->b_slot = xcalloc(nb, sizeof(int32_t), &ok);
    ctx->b_mask = xcalloc(nb * nb, 1, &ok);
    ctx->out_row = xcalloc(nb, sizeof(int32_t), &ok);
    ctx->out_tok = xcalloc(nb, sizeof(int32_t), &ok);
    ctx->split = aligned_alloc(64, (size_t)p.n_threads * sizeof(celer_segment));
    ok = ok && ctx->split;
    if (ok) ctx->pool = celer_pool_create(p.n_threads);
    if (!ok || !ctx->pool) {
        celer_context_free(ctx);
        return celer_fail(err, CELER_ERR_NOMEM,
                          "out of memory creating a context (n_ctx %d, %d sequences, batch %d)",
                          (int)p.n_ctx, (int)p.n_seq_max, (int)p.n_batch);
    }
    init_rope(ctx);
    *out = ctx;
    return CELER_OK;
}

/* ---------------------------------------------------------------- KV cache */

static size_t kv_row_index(const celer_context *ctx, int32_t layer, int32_t seq, int32_t row) {
    return (((size_t)layer * (size_t)ctx->n_seq + (size_t)seq) * (size_t)ctx->n_ctx + (size_t)row) *
           (size_t)ctx->kv_dim;
}

/* F16 rows go through the kernels' activation conversion (the same bits as
 * celer_fp32_to_fp16; one element at a time took ~1 % of an 8-token pass). */
static void kv_store(celer_context *ctx, void *cache, size_t index, const float *src) {
    if (ctx->kv_elem == 4) memcpy((float *)cache + index, src, (size_t)ctx->kv_dim * sizeof(float));
    else ctx->model->kernels->quantize_act[CELER_TYPE_F16](src, (uint16_t *)cache + index, ctx->kv_dim);
}

/* Moves row `from` to row `to` of one sequence in every layer, for K and V. */
static void kv_move_row(celer_context *ctx, int32_t seq_from, int32_t from, int32_t seq_to, int32_t to) {
    size_t bytes = (size_t)ctx->kv_dim * ctx->kv_elem;
    for (int32_t l = 0; l < ctx->model->hp.n_layer; l++) {
        size_t a = kv_row_index(ctx, l, seq_from, from) * ctx->kv_elem;
        size_t b = kv_row_index(ctx, l, seq_to, to) * ctx->kv_elem;
        memmove((char *)ctx->k_cache + b, (char *)ctx->k_cache + a, bytes);
        memmove((char *)ctx->v_cache + b, (char *)ctx->v_cache + a, bytes);
    }
}

static bool seq_ok(const celer_context *ctx, int32_t seq) { return seq >= 0 && seq < ctx->n_seq; }

int32_t celer_kv_seq_len(const celer_context *ctx, int32_t seq) {
    return seq_ok(ctx, seq) ? ctx->seq_len[seq] : 0;
}

celer_status celer_kv_seq_truncate(celer_context *ctx, int32_t seq, int32_t len) {
    if (!seq_ok(ctx, seq) || len < 0) return CELER_ERR_INVALID_ARG;
    if (len < ctx->seq_len[seq]) ctx->seq_len[seq] = len;
    return CELER_OK;
}

celer_status celer_kv_seq_keep(celer_context *ctx, int32_t seq, int32_t start, const int32_t *rows,
                               int32_t n_keep) {
    if (!seq_ok(ctx, seq) || start < 0 || n_keep < 0 || start > ctx->seq_len[seq] ||
        (n_keep > 0 && !rows))
        return CELER_ERR_INVALID_ARG;
    int32_t avail = ctx->seq_len[seq] - start, prev = -1;
    for (int32_t i = 0; i < n_keep; i++) {
        if (rows[i] <= prev || rows[i] >= avail) return CELER_ERR_INVALID_ARG;
        prev = rows[i];
    }
    /* Ascending rows move only downwards, so a forward pass never overwrites a row it still needs. */
    for (int32_t i = 0; i < n_keep; i++)
        if (rows[i] != i) kv_move_row(ctx, seq, start + rows[i], seq, start + i);
    ctx->seq_len[seq] = start + n_keep;
    return CELER_OK;
}

celer_status celer_kv_seq_copy(celer_context *ctx, int32_t src, int32_t dst, int32_t len) {
    if (!seq_ok(ctx, src) || !seq_ok(ctx, dst) || len < 0 || len > ctx->seq_len[src])
        return CELER_ERR_INVALID_ARG;
    if (src != dst) {
        size_t bytes = (size_t)len * (size_t)ctx->kv_dim * ctx->kv_elem;
        for (int32_t l = 0; l < ctx->model->hp.n_layer; l++) {
            size_t a = kv_row_index(ctx, l, src, 0) * ctx->kv_elem;
            size_t b = kv_row_index(ctx, l, dst, 0) * ctx->kv_elem;
            memcpy((char *)ctx->k_cache + b, (char *)ctx->k_cache + a, bytes);
            memcpy((char *)ctx->v_cache + b, (char *)ctx->v_cache + a, bytes);
        }
    }
    ctx->seq_len[dst] = len;
    return CELER_OK;
}

void celer_kv_clear(celer_context *ctx) {
    memset(ctx->seq_len, 0, (size_t)ctx->n_seq * sizeof(int32_t));
}

/* ---------------------------------------------------------------- matrix products */

typedef struct matmul_job {
    const cm_matrix *w;
    const uint8_t *act;  /* activations in the vec_dot type, act_stride bytes per row */
    size_t act_stride;
    const void *prepped; /* act prepared for mul_mat_prepped, or NULL */
    float *out;          /* [n][w->rows] */
    int64_t chunk_rows;  /* rows per work item */
    int32_t first_chunk; /* this job's first work item in the region's numbering */
} matmul_job;

typedef struct matmul_region {
    const ct_kernels *kernels;
    matmul_job jobs[MAX_MATMUL_JOBS];
    int n_jobs;
    int32_t n_tok;
    int32_t n_chunks;
    celer_segment *split; /* [n_split] who takes which work item */
    int32_t n_split;
} matmul_region;

/* Below this many multiply-adds a region costs more to hand out than to run, so tiny
 * models (stories260K) run it on the calling thread. Results are identical either way. */
#define PARALLEL_MIN_WORK 131072
/* Weight bytes per work item: small enough that the threads finish a region within a few
 * microseconds of each other, large enough that handing items out costs nothing. */
#define MATMUL_CHUNK_BYTES 131072

static void run_parallel(celer_context *ctx, celer_pool_fn fn, void *arg, int64_t work) {
    if (work < PARALLEL_MIN_WORK) fn(arg, 0, 1);
    else celer_pool_run(ctx->pool, fn, arg);
}

/* Rows per work item of a matrix: about MATMUL_CHUNK_BYTES of weights, at least 4 items per
 * thread when the matrix is big enough, a multiple of 16 rows so output lines stay whole. */
static int64_t matmul_chunk_rows(const cm_matrix *w, int32_t n_threads) {
    int64_t rows = (int64_t)(MATMUL_CHUNK_BYTES / (w->row_bytes ? w->row_bytes : 1));
    int64_t spread = (w->rows + 4 * n_threads - 1) / (4 * n_threads);
    if (spread < rows) rows = spread;
    rows = (rows + 15) & ~(int64_t)15;
    return rows < 16 ? 16 : rows;
}

/* Threads take work items (row ranges of the jobs) as celer_split_next hands them out: each
 * streams through its own share, then helps with what is left of the others', so a thread
 * slowed by the machine's other tenants does less of the region instead of making the other
 * wait. Every row's sums are the same whichever thread computes it. */
static void matmul_worker(void *arg, int32_t ith, int32_t nth) {
    matmul_region *r = arg;
    for (int32_t c; (c = celer_split_next(r->split, r->n_split, ith)) >= 0;) {
        int j = 0;
        while (j + 1 < r->n_jobs && c >= r->jobs[j + 1].first_chunk) j++;
        const matmul_job *job = &r->jobs[j];
        const int64_t rows = job->w->rows, r0 = (c - job->first_chunk) * job->chunk_rows;
        const int64_t r1 = r0 + job->chunk_rows < rows ? r0 + job->chunk_rows : rows;
        if (job->prepped)
            r->kernels->mul_mat_prepped[job->w->type](job->w->cols, job->w->data, job->w->row_bytes, r0, r1,
                                                      job->prepped, r->n_tok, job->out, rows);
        else
            r->kernels->mul_mat[job->w->type](job->w->cols, job->w->data, job->w->row_bytes, r0, r1,
                                              job->act, job->act_stride, r->n_tok, job->out, rows);
    }
}

/* y += b over n floats (biases, residual additions). */
static void add_into(float *restrict y, const float *restrict b, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += b[i];
}

/* What a product does to each batch row of its input before converting it, in this order
 * (each step only where its pointer is set): x = silu(x) * up (the feed-forward's gate);
 * x += add (a block's input: the residual stream gets the output of the block before); the
 * product reads rmsnorm(x) * norm, written to normed, else x. */
typedef struct row_prologue {
    float *x;          /* [n][cols] */
    const float *up;   /* [n][cols] */
    const float *add;  /* [n][cols] */
    const float *norm; /* rmsnorm weights */
    float *normed;     /* [n][cols]; may be `add` (each row is read before it is written) */
    float eps;
} row_prologue;

/* The input side of a product: each thread takes a contiguous range of batch rows, applies
 * the prologue, converts the rows to each job's vec_dot type and lays them out for the kernels
 * (prep). Done by the threads rather than by the caller alone: in an 8-token pass of a 1.1B
 * model the caller spent ~2 ms of ~23 on residual adds, norms and conversions while the other
 * thread waited. */
typedef struct input_conv {
    int32_t type; /* vec_dot type */
    uint8_t *dst;
    size_t stride;
} input_conv;

typedef struct input_prep {
    int32_t type; /* weight type */
    const uint8_t *src;
    size_t stride;
    void *dst;
} input_prep;

typedef struct input_region {
    const ct_kernels *kernels;
    const row_prologue *pro; /* or NULL */
    const float *x;          /* [n][cols] the product's input (pro->normed with a prologue) */
    int64_t cols;
    int32_t n;
    int n_conv; /* distinct vec_dot conversions */
    input_conv conv[MAX_MATMUL_JOBS];
    int n_prep; /* distinct preparations */
    input_prep prep[MAX_MATMUL_JOBS];
} input_region;

CELER_MULTIVERSION static void rmsnorm(float *out, const float *x, const float *weight, int32_t n, float eps);

static void input_worker(void *arg, int32_t ith, int32_t nth) {
    const input_region *r = arg;
    int64_t i0, i1;
    celer_split_even(r->n, ith, nth, &i0, &i1);
    const int32_t t0 = (int32_t)i0, t1 = (int32_t)i1;
    const size_t cols = (size_t)r->cols;
    for (int32_t t = t0; t < t1; t++) {
        const row_prologue *p = r->pro;
        if (p) {
            float *x = p->x + (size_t)t * cols;
            if (p->up) r->kernels->swiglu(x, p->up + (size_t)t * cols, r->cols);
            if (p->add) add_into(x, p->add + (size_t)t * cols, cols);
            if (p->norm) rmsnorm(p->normed + (size_t)t * cols, x, p->norm, (int32_t)cols, p->eps);
        }
        for (int c = 0; c < r->n_conv; c++)
            r->kernels->quantize_act[r->conv[c].type](r->x + (size_t)t * cols,
                                                      r->conv[c].dst + (size_t)t * r->conv[c].stride, r->cols);
    }
    for (int j = 0; j < r->n_prep; j++)
        r->kernels->prep[r->prep[j].type](r->cols, r->prep[j].src, r->prep[j].stride, r->n, t0, t1, r->prep[j].dst);
}

/* out_j = W_j · in for up to three matrices of the same input width reading the same input:
 * x ([n][cols] floats), or with a prologue what it makes of x. The input is converted once per
 * distinct vec_dot type and, where the kernels lay activations out for their products (prep),
 * once per distinct weight type, before the products start: every work item of the product
 * then reads the same preparation (about 4 % of an 8-token pass when each item prepared its
 * own). */
static void matmul_multi(celer_context *ctx, const float *x, const row_prologue *pro, int32_t n,
                         const cm_matrix *const *ws, float *const *outs, int n_jobs) {
    const ct_kernels *K = ctx->model->kernels;
    const int64_t cols = ws[0]->cols;
    input_region in = {.kernels = K, .pro = pro, .cols = cols, .n = n};
    in.x = pro ? (pro->norm ? pro->normed : pro->x) : x;
    matmul_region region = {.kernels = K, .n_jobs = n_jobs, .n_tok = n};
    int64_t work = 0;
    for (int j = 0; j < n_jobs; j++) {
        const cm_matrix *w = ws[j];
        const int32_t vt = ct_vec_dot_type(w->type);
        const size_t stride = celer_row_size(vt, cols);
        int c = 0; /* the conversion this job reads, shared with earlier jobs of the same type */
        while (c < in.n_conv && in.conv[c].type != vt) c++;
        if (c == in.n_conv) in.conv[in.n_conv++] = (input_conv){vt, ctx->actq[j], stride};
        const void *prepped = NULL;
        if (K->prep[w->type] && ctx->actp[j]) {
            int p = 0;
            while (p < in.n_prep && in.prep[p].type != w->type) p++;
            if (p == in.n_prep) in.prep[in.n_prep++] = (input_prep){w->type, in.conv[c].dst, stride, ctx->actp[j]};
            prepped = in.prep[p].dst;
        }
        const int64_t chunk = matmul_chunk_rows(w, celer_pool_n_threads(ctx->pool));
        region.jobs[j] = (matmul_job){w, in.conv[c].dst, stride, prepped, outs[j], chunk, region.n_chunks};
        region.n_chunks += (int32_t)((w->rows + chunk - 1) / chunk);
        work += w->rows * cols * n;
    }
    /* one row stays on the calling thread: splitting it would cost more than it saves */
    run_parallel(ctx, input_worker, &in, (int64_t)(n - 1) * cols * 64);
    region.split = ctx->split;
    region.n_split = celer_pool_n_threads(ctx->pool);
    celer_split_init(region.split, region.n_split, region.n_chunks);
    run_parallel(ctx, matmul_worker, &region, work);
}

static void matmul(celer_context *ctx, const float *x, int32_t n, const cm_matrix *w, float *out) {
    matmul_multi(ctx, x, NULL, n, &w, &out, 1);
}

/* ---------------------------------------------------------------- elementwise pieces */

CELER_MULTIVERSION static void rmsnorm(float *out, const float *x, const float *weight, int32_t n, float eps) {
    /* Sum in double, like an exact reference; llama.cpp sums in float but the difference is
     * far below the tolerance. Eight partial sums, so that the compiler can use vectors (one
     * sum in order took 0.65 ms of an 8-token pass of a 1.1B model). */
    double part[8] = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) part[l] += (double)x[i + l] * x[i + l];
    double ss = 0.0;
    for (; i < n; i++) ss += (double)x[i] * x[i];
    for (int l = 0; l < 8; l++) ss += part[l];
    float scale = (float)(1.0 / sqrt(ss / n + (double)eps));
    for (int32_t i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

/* cos/sin of every rotation angle of each batch token, computed once per pass: the same
 * angles serve every layer and head. */
static void rope_prepare(celer_context *ctx, int32_t n) {
    const int32_t half = ctx->model->hp.n_rot / 2;
    for (int32_t t = 0; t < n; t++) {
        float *cs = ctx->rope_cs + (size_t)t * 2 * (size_t)half;
        for (int32_t i = 0; i < half; i++) {
            float theta = (float)ctx->b_pos[t] * ctx->inv_freq[i];
            cs[2 * i] = cosf(theta);
            cs[2 * i + 1] = sinf(theta);
        }
    }
}

/* Rotates the pairs (v[a_i], v[b_i]) of each head by the angles cs holds: a_i = i, b_i = i +
 * half (NeoX) or a_i = 2i, b_i = 2i + 1. One loop per layout, so that each vectorizes (one
 * loop with the layout inside took ~0.4 % of an 8-token pass). Not multiversioned: with FMA
 * gcc contracts x0 * c - x1 * s into one rounding, and results would depend on the CPU. */
static void rope_heads(float *restrict vec, const float *restrict cs, int32_t n_heads,
                       int32_t head_dim, int32_t half, bool neox) {
    for (int32_t h = 0; h < n_heads; h++) {
        float *restrict v = vec + (size_t)h * (size_t)head_dim;
        if (neox)
            for (int32_t i = 0; i < half; i++) {
                const float c = cs[2 * i], s = cs[2 * i + 1], x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x0 * s + x1 * c;
            }
        else
            for (int32_t i = 0; i < half; i++) {
                const float c = cs[2 * i], s = cs[2 * i + 1], x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = x0 * c - x1 * s;
                v[2 * i + 1] = x0 * s + x1 * c;
            }
    }
}

static void rope(const celer_context *ctx, float *vec, int32_t n_heads, int32_t t) {
    const cm_hparams *hp = &ctx->model->hp;
    const int32_t half = hp->n_rot / 2;
    rope_heads(vec, ctx->rope_cs + (size_t)t * 2 * (size_t)half, n_heads, hp->head_dim, half, hp->rope_neox);
}

/* ---------------------------------------------------------------- attention */

typedef struct attn_region {
    celer_context *ctx;
    int32_t layer, n;
} attn_region;

/* Scratch floats one attention job needs: the kernel's scratch for n_ctx rows (rounded up to
 * keep 8-byte alignment), then the per-row visibility bits (uint64 each, two floats). */
static size_t attn_kernel_scratch_floats(const celer_context *ctx) {
    return (ct_attn_scratch_floats(ctx->model->hp.head_dim, ctx->n_ctx) + 1) & ~(size_t)1;
}
static size_t attn_scratch_floats(const celer_context *ctx) {
    return attn_kernel_scratch_floats(ctx) + 2 * (size_t)ctx->n_ctx;
}

/* The low n bits set (n <= 64). */
static uint64_t low_bits(int32_t n) { return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1; }

/* Query heads per KV head, and how many of them one kernel call takes. */
static int32_t attn_group(const celer_context *ctx) { return ctx->model->hp.n_head / ctx->model->hp.n_head_kv; }
static int32_t attn_heads_per_block(const celer_context *ctx) {
    return attn_group(ctx) < CT_ATTN_LANES ? attn_group(ctx) : CT_ATTN_LANES;
}

/* Splits the batch into attention blocks: runs of consecutive tokens of one sequence, as many
 * as fill the kernel's lanes with all the query heads of a KV group (or, for groups wider
 * than the lanes, one token and a slice of the heads). Each K/V row is then read once per
 * block instead of once per token. The blocks are the same for every layer. */
static void plan_attention(celer_context *ctx, int32_t n) {
    const int32_t G = attn_group(ctx), ng = attn_heads_per_block(ctx), per = CT_ATTN_LANES / ng;
    int32_t nb = 0;
    for (int32_t j = 0; j < n;) {
        int32_t nt = 1;
        while (nt < per && j + nt < n && ctx->b_seq[j + nt] == ctx->b_seq[j]) nt++;
        for (int32_t g0 = 0; g0 < G; g0 += ng)
            ctx->attn_blk[nb++] = (attn_block){j, nt, g0, G - g0 < ng ? G - g0 : ng};
        j += nt;
    }
    ctx->n_attn_blk = nb;
}

/* Which rows each query lane of a block may attend: bit t*ng + g of vis[r] for the block's
 * token t (all its heads alike); returns the rows to look at. The same for every KV head and
 * layer of the pass. */
static int32_t attn_visibility(const celer_context *ctx, const attn_block *b, uint64_t *vis) {
    const int32_t base = ctx->seq_len[ctx->b_seq[b->j0]];
    int32_t nk = 0;
    for (int32_t t = 0; t < b->nt; t++)
        if (ctx->b_slot[b->j0 + t] + 1 > nk) nk = ctx->b_slot[b->j0 + t] + 1;
    const uint64_t all = low_bits(b->nt * b->ng);
    for (int32_t r = 0; r < nk; r++) vis[r] = r < base ? all : 0;
    for (int32_t t = 0; t < b->nt; t++) {
        const int32_t j = b->j0 + t, end = ctx->b_slot[j] + 1;
        const uint8_t *mask_row = ctx->b_mask + (size_t)j * (size_t)ctx->n_batch;
        const uint64_t bits = low_bits(b->ng) << (t * b->ng);
        for (int32_t r = base; r < end; r++)
            if (mask_row[r - base]) vis[r] |= bits;
    }
    return nk;
}

/*
 * One block and KV head: the softmax attention of the block's query heads (grouped-query
 * attention) over the sequence's cached rows plus the batch rows each token's mask allows
 * (batch rows already sit in the cache at their slots; vis and nk from attn_visibility). The
 * kernel computes each query in a lane of its own, so a token's result does not depend on the
 * rest of the batch.
 */
static void attend_block(celer_context *ctx, int32_t layer, const attn_block *b, int32_t kvh,
                         const uint64_t *vis, int32_t nk, float *scratch) {
    const cm_hparams *hp = &ctx->model->hp;
    const int32_t hd = hp->head_dim, G = attn_group(ctx), qd = hp->n_head * hd;
    ct_attn a = {.hd = hd, .nq = b->nt * b->ng, .nk = nk, .kv_stride = (size_t)ctx->kv_dim,
                 .kv_f16 = ctx->kv_elem == 2, .vis = vis, .scale = 1.0f / sqrtf((float)hd),
                 .scratch = scratch};
    for (int32_t t = 0; t < b->nt; t++)
        for (int32_t g = 0; g < b->ng; g++) {
            const size_t off = (size_t)(b->j0 + t) * qd + (size_t)(kvh * G + b->g0 + g) * hd;
            a.q[t * b->ng + g] = ctx->q + off;
            a.out[t * b->ng + g] = ctx->att + off;
        }
    const size_t row0 = kv_row_index(ctx, layer, ctx->b_seq[b->j0], 0) + (size_t)kvh * hd;
    a.k = (const char *)ctx->k_cache + row0 * ctx->kv_elem;
    a.v = (const char *)ctx->v_cache + row0 * ctx->kv_elem;
    ctx->model->kernels->attention(&a);
}

/* Jobs are (block, KV head) pairs, block-major, so a thread's consecutive jobs mostly share a
 * block and its visibility is built once for them. */
static void attention_worker(void *arg, int32_t ith, int32_t nth) {
    const attn_region *r = arg;
    celer_context *ctx = r->ctx;
    const int32_t n_kv = ctx->model->hp.n_head_kv;
    float *scratch = ctx->scores + (size_t)ith * attn_scratch_floats(ctx);
    uint64_t *vis = (uint64_t *)(void *)(scratch + attn_kernel_scratch_floats(ctx));
    int32_t vis_block = -1, nk = 0;
    for (int32_t job = ith; job < ctx->n_attn_blk * n_kv; job += nth) {
        const attn_block *b = &ctx->attn_blk[job / n_kv];
        if (job / n_kv != vis_block) nk = attn_visibility(ctx, b, vis), vis_block = job / n_kv;
        attend_block(ctx, r->layer, b, job % n_kv, vis, nk, scratch);
    }
}

/* ---------------------------------------------------------------- the forward pass */

/* The q, k, v rows of batch tokens [t0, t1) of layer il made ready for attention: biases
 * (qwen2), per-head q/k norms (qwen3), rope; k and v stored in the cache at the tokens'
 * slots. */
static void qkv_rows(celer_context *ctx, int32_t il, int32_t t0, int32_t t1) {
    const cm_hparams *hp = &ctx->model->hp;
    const cm_layer *L = &ctx->model->layers[il];
    const int32_t hd = hp->head_dim, qd = hp->n_head * hd, kvd = ctx->kv_dim;
    for (int32_t t = t0; t < t1; t++) {
        float *q = ctx->q + (size_t)t * qd, *k = ctx->k + (size_t)t * kvd, *v = ctx->v + (size_t)t * kvd;
        if (L->bq) add_into(q, L->bq, (size_t)qd);
        if (L->bk) add_into(k, L->bk, (size_t)kvd);
        if (L->bv) add_into(v, L->bv, (size_t)kvd);
        if (L->q_norm) {
            for (int32_t h = 0; h < hp->n_head; h++) rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, hp->rms_eps);
            for (int32_t h = 0; h < hp->n_head_kv; h++) rmsnorm(k + h * hd, k + h * hd, L->k_norm, hd, hp->rms_eps);
        }
        rope(ctx, q, hp->n_head, t);
        rope(ctx, k, hp->n_head_kv, t);
        size_t idx = kv_row_index(ctx, il, ctx->b_seq[t], ctx->b_slot[t]);
        kv_store(ctx, ctx->k_cache, idx, k);
        kv_store(ctx, ctx->v_cache, idx, v);
    }
}

typedef struct qkv_region {
    celer_context *ctx;
    int32_t layer, n;
} qkv_region;

/* Threads take contiguous ranges of the batch rows (8 rows took ~14 us on one thread). */
static void qkv_worker(void *arg, int32_t ith, int32_t nth) {
    const qkv_region *r = arg;
    int64_t t0, t1;
    celer_split_even(r->n, ith, nth, &t0, &t1);
    qkv_rows(r->ctx, r->layer, (int32_t)t0, (int32_t)t1);
}

/* One block. On entry the residual stream x lacks the previous block's output, left in xb
 * (no block before the first: add_xb false); on return it lacks this block's, in xb. Each
 * addition happens row by row in the next product's input step (row_prologue). */
static void layer_forward(celer_context *ctx, int32_t il, int32_t n, bool add_xb) {
    const celer_model *m = ctx->model;
    const cm_hparams *hp = &m->hp;
    const cm_layer *L = &m->layers[il];
    const int32_t hd = hp->head_dim, qd = hp->n_head * hd, kvd = ctx->kv_dim;

    const row_prologue attn_in = {ctx->x, NULL, add_xb ? ctx->xb : NULL, L->attn_norm, ctx->xb, hp->rms_eps};
    const cm_matrix *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {ctx->q, ctx->k, ctx->v};
    matmul_multi(ctx, NULL, &attn_in, n, qkv, qkv_out, 3);
    qkv_region qr = {ctx, il, n};
    run_parallel(ctx, qkv_worker, &qr, (int64_t)(n - 1) * (qd + 2 * kvd) * 64);

    attn_region ar = {ctx, il, n};
    run_parallel(ctx, attention_worker, &ar,
                 (int64_t)n * hp->n_head * hd * (ctx->seq_len[ctx->b_seq[n - 1]] + n));

    matmul(ctx, ctx->att, n, &L->wo, ctx->xb);

    const row_prologue ffn_in = {ctx->x, NULL, ctx->xb, L->ffn_norm, ctx->xb, hp->rms_eps};
    const cm_matrix *gu[2] = {&L->w_gate, &L->w_up};
    float *gu_out[2] = {ctx->hb, ctx->hb2};
    matmul_multi(ctx, NULL, &ffn_in, n, gu, gu_out, 2);
    const row_prologue down_in = {.x = ctx->hb, .up = ctx->hb2};
    const cm_matrix *down = &L->w_down;
    matmul_multi(ctx, NULL, &down_in, n, &down, &ctx->xb, 1);
}

/* Checks the batch and fills b_seq/b_pos/b_slot/b_mask; nothing in the cache changes here. */
static celer_status prepare_batch(celer_context *ctx, const celer_batch *b, celer_error *err) {
    const int32_t n = b->n_tokens;
    if (n < 1 || n > ctx->n_batch)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "batch of %d tokens (allowed 1..%d)", (int)n,
                          (int)ctx->n_batch);
    if (!b->tokens) return celer_fail(err, CELER_ERR_INVALID_ARG, "batch without tokens");
    int32_t count[1024] = {0}; /* batch tokens per sequence; n_seq <= 1024 (context_create) */
    for (int32_t i = 0; i < n; i++) {
        int32_t tok = b->tokens[i], seq = b->seq_id ? b->seq_id[i] : 0;
        if (tok < 0 || tok >= ctx->model->hp.n_vocab)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "token id %d out of range (vocabulary %d)",
                              (int)tok, (int)ctx->model->hp.n_vocab);
        if (!seq_ok(ctx, seq))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "sequence id %d out of range (0..%d)",
                              (int)seq, (int)ctx->n_seq - 1);
        int32_t slot = ctx->seq_len[seq] + count[seq]++;
        if (slot >= ctx->n_ctx)
            return celer_fail(err, CELER_ERR_CONTEXT_FULL,
                              "context full: sequence %d would need %d rows, capacity is %d",
                              (int)seq, (int)slot + 1, (int)ctx->n_ctx);
        int32_t pos = b->pos ? b->pos[i] : slot;
        if (pos < 0) return celer_fail(err, CELER_ERR_INVALID_ARG, "negative position %d", (int)pos);
        ctx->b_seq[i] = seq;
        ctx->b_pos[i] = pos;
        ctx->b_slot[i] = slot;
    }
    /* Effective mask, indexed by the attended token's slot offset within its sequence's new
     * rows: row i, column (slot_j - seq_len). Self-attention is always allowed. */
    for (int32_t i = 0; i < n; i++) {
        uint8_t *row = ctx->b_mask + (size_t)i * (size_t)ctx->n_batch;
        memset(row, 0, (size_t)n);
        int32_t base = ctx->seq_len[ctx->b_seq[i]];
        for (int32_t j = 0; j < n; j++) {
            bool allowed = b->mask ? b->mask[(size_t)i * n + j] != 0 : j <= i;
            if (ctx->b_seq[j] != ctx->b_seq[i]) {
                if (b->mask && allowed)
                    return celer_fail(err, CELER_ERR_INVALID_ARG,
                                      "mask lets token %d (sequence %d) see token %d of sequence %d",
                                      (int)i, (int)ctx->b_seq[i], (int)j, (int)ctx->b_seq[j]);
                continue;
            }
            if (j == i) allowed = true;
            if (allowed && ctx->b_slot[j] > ctx->b_slot[i] && b->mask)
                return celer_fail(err, CELER_ERR_INVALID_ARG,
                                  "mask lets token %d see a later batch token %d of its sequence",
                                  (int)i, (int)j);
            if (allowed) row[ctx->b_slot[j] - base] = 1;
        }
    }
    return CELER_OK;
}

static celer_status prepare_outputs(celer_context *ctx, const celer_batch *b, celer_error *err) {
    const int32_t n = b->n_tokens;
    int32_t n_out = 0;
    for (int32_t i = 0; i < n; i++) {
        bool want = b->logits ? b->logits[i] != 0 : i == n - 1;
        ctx->out_row[i] = want ? n_out : -1;
        if (want) ctx->out_tok[n_out++] = i;
    }
    if (n_out > ctx->logits_cap) {
        size_t V = (size_t)ctx->model->hp.n_vocab, D = (size_t)ctx->model->hp.n_embd;
        float *lg = realloc(ctx->logits, (size_t)n_out * V * sizeof(float));
        if (!lg) return celer_fail(err, CELER_ERR_NOMEM, "out of memory for logits");
        ctx->logits = lg;
        float *em = realloc(ctx->embd, (size_t)n_out * D * sizeof(float));
        if (!em) return celer_fail(err, CELER_ERR_NOMEM, "out of memory for embeddings");
        ctx->embd = em;
        ctx->logits_cap = n_out;
    }
    ctx->n_out = n_out;
    return CELER_OK;
}

celer_status celer_decode(celer_context *ctx, const celer_batch *batch, celer_error *err) {
    if (!ctx || !batch) return celer_fail(err, CELER_ERR_INVALID_ARG, "no context or batch");
    celer_status st = prepare_batch(ctx, batch, err);
    if (st == CELER_OK) st = prepare_outputs(ctx, batch, err);
    if (st != CELER_OK) {
        ctx->n_out = 0;
        return st;
    }
    const celer_model *m = ctx->model;
    const int32_t n = batch->n_tokens, d = m->hp.n_embd;

    for (int32_t t = 0; t < n; t++) {
        const cm_matrix *e = &m->tok_embd;
        ct_to_float(e->type, (const char *)e->data + (size_t)batch->tokens[t] * e->row_bytes,
                    ctx->x + (size_t)t * d, d);
    }
    rope_prepare(ctx, n);
    plan_attention(ctx, n);
    for (int32_t il = 0; il < m->hp.n_layer; il++) layer_forward(ctx, il, n, il > 0);
    if (m->hp.n_layer > 0) add_into(ctx->x, ctx->xb, (size_t)n * (size_t)d); /* the last block's output */

    /* Final norm and output matrix, only for the rows asked for. */
    for (int32_t o = 0; o < ctx->n_out; o++)
        rmsnorm(ctx->embd + (size_t)o * d, ctx->x + (size_t)ctx->out_tok[o] * d, m->output_norm, d,
                m->hp.rms_eps);
    for (int32_t o0 = 0; o0 < ctx->n_out; o0 += ctx->n_batch) {
        int32_t k = ctx->n_out - o0 < ctx->n_batch ? ctx->n_out - o0 : ctx->n_batch;
        matmul(ctx, ctx->embd + (size_t)o0 * d, k, &m->output,
               ctx->logits + (size_t)o0 * (size_t)m->hp.n_vocab);
    }

    for (int32_t t = 0; t < n; t++) {
        int32_t seq = ctx->b_seq[t];
        if (ctx->b_slot[t] + 1 > ctx->seq_len[seq]) ctx->seq_len[seq] = ctx->b_slot[t] + 1;
    }
    return CELER_OK;
}

const float *celer_get_logits(const celer_context *ctx, int32_t i) {
    if (!ctx || i < 0 || i >= ctx->n_batch || ctx->n_out == 0) return NULL;
    int32_t row = ctx->out_row[i];
    return row >= 0 && row < ctx->n_out ? ctx->logits + (size_t)row * (size_t)ctx->model->hp.n_vocab : NULL;
}

const float *celer_get_embeddings(const celer_context *ctx, int32_t i) {
    if (!ctx || !ctx->params.embeddings || i < 0 || i >= ctx->n_batch || ctx->n_out == 0) return NULL;
    int32_t row = ctx->out_row[i];
    return row >= 0 && row < ctx->n_out ? ctx->embd + (size_t)row * (size_t)ctx->model->hp.n_embd : NULL;
}
