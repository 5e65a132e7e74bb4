/* The sampler interface (modelled on llama.cpp's llama_sampler_i: apply, accept, reset, clone,
 * free), the chain that composes samplers, and numeric helpers shared with src/decode. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sampling/sampling.h"

/* ---------------------------------------------------------------- helpers */

static int cmp_desc(const void *a, const void *b) {
    const celer_token_data *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

void csmp_sort(celer_token_data_array *cur) {
    if (!cur->sorted && cur->size > 1) qsort(cur->data, cur->size, sizeof *cur->data, cmp_desc);
    cur->sorted = true;
}

void csmp_softmax(celer_token_data_array *cur) {
    csmp_sort(cur);
    if (cur->size == 0) return;
    float max = cur->data[0].logit;
    double sum = 0;
    for (size_t i = 0; i < cur->size; i++) {
        float l = cur->data[i].logit;
        double e = (isinf(l) && l < 0) ? 0.0 : exp((double)l - max);
        cur->data[i].p = (float)e;
        sum += e;
    }
    for (size_t i = 0; i < cur->size; i++) cur->data[i].p = (float)(cur->data[i].p / sum);
}

void csmp_fill(celer_token_data_array *cur, celer_token_data *buf, const float *logits,
               int32_t n) {
    for (int32_t i = 0; i < n; i++) buf[i] = (celer_token_data){i, logits[i], 0.0f};
    cur->data = buf;
    cur->size = (size_t)n;
    cur->selected = -1;
    cur->sorted = false;
}

double csmp_log_softmax(const float *x, int32_t n, float *out) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    if (isinf(max) && max < 0) { /* everything banned: keep -inf, avoid NaN */
        for (int32_t i = 0; i < n; i++) out[i] = -INFINITY;
        return -INFINITY;
    }
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)x[i] - max);
    double lse = max + log(sum);
    for (int32_t i = 0; i < n; i++) out[i] = (float)((double)x[i] - lse);
    return lse;
}

void csmp_softmax_raw(const float *x, int32_t n, float *out) {
    double lse = csmp_log_softmax(x, n, out);
    for (int32_t i = 0; i < n; i++) out[i] = isinf(lse) ? 0.0f : expf(out[i]);
}

/* Min-heap of indices on (score, -index) so the heap top is the weakest kept entry. */
static bool weaker(const float *s, int32_t a, int32_t b) {
    return s[a] < s[b] || (s[a] == s[b] && a > b);
}

static void sift_down(const float *s, int32_t *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && weaker(s, h[l], h[m])) m = l;
        if (r < n && weaker(s, h[r], h[m])) m = r;
        if (m == i) return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

int32_t csmp_top_k_indices(const float *scores, int32_t n, int32_t k, int32_t *out) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (isinf(scores[i]) && scores[i] < 0) continue;
        if (isnan(scores[i])) continue;
        if (m < k) {
            out[m++] = i;
            if (m == k)
                for (int32_t j = k / 2 - 1; j >= 0; j--) sift_down(scores, out, k, j);
        } else if (weaker(scores, out[0], i)) {
            out[0] = i;
            sift_down(scores, out, k, 0);
        }
    }
    if (m < k)
        for (int32_t j = m / 2 - 1; j >= 0; j--) sift_down(scores, out, m, j);
    /* Heap sort in place: repeatedly move the weakest to the end -> strongest first. */
    for (int32_t end = m - 1; end > 0; end--) {
        int32_t t = out[0];
        out[0] = out[end];
        out[end] = t;
        sift_down(scores, out, end, 0);
    }
    return m;
}

/* ---------------------------------------------------------------- interface */

celer_sampler *celer_sampler_init(const celer_sampler_i *iface, void *ctx) {
    celer_sampler *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->iface = iface;
    s->ctx = ctx;
    return s;
}

const char *celer_sampler_name(const celer_sampler *smpl) {
    if (!smpl || !smpl->iface->name) return "(custom)";
    return smpl->iface->name(smpl);
}

void celer_sampler_accept(celer_sampler *smpl, int32_t token) {
    if (smpl && smpl->iface->accept) smpl->iface->accept(smpl, token);
}

void celer_sampler_apply(celer_sampler *smpl, celer_token_data_array *cur) {
    if (smpl && cur) smpl->iface->apply(smpl, cur);
}

void celer_sampler_reset(celer_sampler *smpl) {
    if (smpl && smpl->iface->reset) smpl->iface->reset(smpl);
}

celer_sampler *celer_sampler_clone(const celer_sampler *smpl) {
    if (!smpl || !smpl->iface->clone) return NULL;
    return smpl->iface->clone(smpl);
}

void celer_sampler_free(celer_sampler *smpl) {
    if (!smpl) return;
    if (smpl->iface->free) smpl->iface->free(smpl);
    free(smpl);
}

int32_t celer_sampler_sample(celer_sampler *smpl, const float *logits, int32_t n_vocab) {
    if (!smpl || !logits || n_vocab <= 0) return -1;
    celer_token_data *buf = malloc((size_t)n_vocab * sizeof *buf);
    if (!buf) return -1;
    celer_token_data_array cur;
    csmp_fill(&cur, buf, logits, n_vocab);
    celer_sampler_apply(smpl, &cur);
    int32_t tok = (cur.selected >= 0 && (size_t)cur.selected < cur.size)
                      ? cur.data[cur.selected].id
                      : -1;
    free(buf);
    return tok;
}

/* ---------------------------------------------------------------- chain */

typedef struct chain_ctx {
    celer_sampler **items;
    int32_t n, cap;
} chain_ctx;

static const char *chain_name(const celer_sampler *s) { (void)s; return "chain"; }

static void chain_accept(celer_sampler *s, int32_t token) {
    chain_ctx *c = s->ctx;
    for (int32_t i = 0; i < c->n; i++) celer_sampler_accept(c->items[i], token);
}

static void chain_apply(celer_sampler *s, celer_token_data_array *cur) {
    chain_ctx *c = s->ctx;
    for (int32_t i = 0; i < c->n; i++) celer_sampler_apply(c->items[i], cur);
}

static void chain_reset(celer_sampler *s) {
    chain_ctx *c = s->ctx;
    for (int32_t i = 0; i < c->n; i++) celer_sampler_reset(c->items[i]);
}

static void chain_free(celer_sampler *s) {
    chain_ctx *c = s->ctx;
    if (!c) return;
    for (int32_t i = 0; i < c->n; i++) celer_sampler_free(c->items[i]);
    free(c->items);
    free(c);
}

static celer_sampler *chain_clone(const celer_sampler *s);

static const celer_sampler_i chain_iface = {
    .name = chain_name,
    .accept = chain_accept,
    .apply = chain_apply,
    .reset = chain_reset,
    .clone = chain_clone,
    .free = chain_free,
};

celer_sampler *celer_sampler_chain_init(void) {
    chain_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    celer_sampler *s = celer_sampler_init(&chain_iface, c);
    if (!s) free(c);
    return s;
}

static celer_sampler *chain_clone(const celer_sampler *s) {
    const chain_ctx *c = s->ctx;
    celer_sampler *out = celer_sampler_chain_init();
    if (!out) return NULL;
    for (int32_t i = 0; i < c->n; i++) {
        celer_sampler *m = celer_sampler_clone(c->items[i]);
        if (!m || celer_sampler_chain_add(out, m) != CELER_OK) {
            celer_sampler_free(out);
            return NULL;
        }
    }
    return out;
}

celer_status celer_sampler_chain_add(celer_sampler *chain, celer_sampler *smpl) {
    if (!chain || chain->iface != &chain_iface || !smpl) {
        celer_sampler_free(smpl);
        return CELER_ERR_INVALID_ARG;
    }
    chain_ctx *c = chain->ctx;
    if (c->n == c->cap) {
        int32_t cap = c->cap ? 2 * c->cap : 8;
        celer_sampler **items = realloc(c->items, (size_t)cap * sizeof *items);
        if (!items) {
            celer_sampler_free(smpl);
            return CELER_ERR_NOMEM;
        }
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n++] = smpl;
    return CELER_OK;
}

int32_t celer_sampler_chain_n(const celer_sampler *chain) {
    if (!chain || chain->iface != &chain_iface) return 0;
    return ((const chain_ctx *)chain->ctx)->n;
}

celer_sampler *celer_sampler_chain_get(const celer_sampler *chain, int32_t i) {
    if (!chain || chain->iface != &chain_iface) return NULL;
    const chain_ctx *c = chain->ctx;
    return (i >= 0 && i < c->n) ? c->items[i] : NULL;
}
