/* The individual samplers. Each is a ctx struct plus the celer_sampler_i functions; filters
 * shrink the candidate array in place and keep at least min_keep (>= 1) candidates. Tie order
 * is always by ascending token id, so the results never depend on qsort's algorithm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sampling/sampling.h"

/* Clones a sampler whose ctx is plain data of `size` bytes. */
static celer_sampler *clone_pod(const celer_sampler *s, size_t size) {
    void *ctx = malloc(size);
    if (!ctx) return NULL;
    memcpy(ctx, s->ctx, size);
    celer_sampler *out = celer_sampler_init(s->iface, ctx);
    if (!out) free(ctx);
    return out;
}

static void free_ctx(celer_sampler *s) { free(s->ctx); }

static celer_sampler *make(const celer_sampler_i *iface, const void *ctx, size_t size) {
    void *c = malloc(size ? size : 1);
    if (!c) return NULL;
    if (size) memcpy(c, ctx, size);
    celer_sampler *s = celer_sampler_init(iface, c);
    if (!s) free(c);
    return s;
}

static size_t keep_at_least(size_t n, size_t min_keep, size_t size) {
    if (min_keep < 1) min_keep = 1;
    if (n < min_keep) n = min_keep;
    return n < size ? n : size;
}

/* ---------------------------------------------------------------- greedy */

typedef struct { int unused; } empty_ctx;

static const char *greedy_name(const celer_sampler *s) { (void)s; return "greedy"; }
static void greedy_apply(celer_sampler *s, celer_token_data_array *cur) {
    (void)s;
    if (cur->size == 0) return;
    size_t best = 0;
    for (size_t i = 1; i < cur->size; i++) {
        const celer_token_data *a = &cur->data[i], *b = &cur->data[best];
        if (a->logit > b->logit || (a->logit == b->logit && a->id < b->id)) best = i;
    }
    cur->selected = (int64_t)best;
}
static celer_sampler *greedy_clone(const celer_sampler *s) { return clone_pod(s, sizeof(empty_ctx)); }
static const celer_sampler_i greedy_iface = {greedy_name, NULL, greedy_apply, NULL, greedy_clone,
                                             free_ctx};

celer_sampler *celer_sampler_init_greedy(void) {
    empty_ctx c = {0};
    return make(&greedy_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- dist */

typedef struct {
    uint64_t seed;
    celer_rng rng;
} dist_ctx;

static const char *dist_name(const celer_sampler *s) { (void)s; return "dist"; }
static void dist_apply(celer_sampler *s, celer_token_data_array *cur) {
    dist_ctx *c = s->ctx;
    if (cur->size == 0) return;
    csmp_softmax(cur);
    /* Inverse CDF over the candidates in sorted order: one uniform draw per token, so the
     * draw sequence depends on the seed only. */
    double u = celer_rng_uniform(&c->rng), cum = 0;
    size_t pick = cur->size - 1;
    for (size_t i = 0; i < cur->size; i++) {
        cum += cur->data[i].p;
        if (u < cum) {
            pick = i;
            break;
        }
    }
    while (pick > 0 && cur->data[pick].p == 0.0f) pick--; /* rounding at the tail */
    cur->selected = (int64_t)pick;
}
static void dist_reset(celer_sampler *s) {
    dist_ctx *c = s->ctx;
    celer_rng_seed(&c->rng, c->seed);
}
static celer_sampler *dist_clone(const celer_sampler *s) { return clone_pod(s, sizeof(dist_ctx)); }
static const celer_sampler_i dist_iface = {dist_name, NULL, dist_apply, dist_reset, dist_clone,
                                           free_ctx};

celer_sampler *celer_sampler_init_dist(uint64_t seed) {
    dist_ctx c = {.seed = seed};
    celer_rng_seed(&c.rng, seed);
    return make(&dist_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- temperature */

typedef struct {
    float t;
} temp_ctx;

static const char *temp_name(const celer_sampler *s) { (void)s; return "temp"; }
static void temp_apply(celer_sampler *s, celer_token_data_array *cur) {
    temp_ctx *c = s->ctx;
    if (cur->size == 0) return;
    if (c->t == 0.0f) { /* the limit t -> 0: all mass on the highest logit */
        csmp_sort(cur);
        cur->size = 1;
        return;
    }
    for (size_t i = 0; i < cur->size; i++) cur->data[i].logit /= c->t;
}
static celer_sampler *temp_clone(const celer_sampler *s) { return clone_pod(s, sizeof(temp_ctx)); }
static const celer_sampler_i temp_iface = {temp_name, NULL, temp_apply, NULL, temp_clone, free_ctx};

celer_sampler *celer_sampler_init_temp(float t, celer_error *err) {
    if (!(t >= 0.0f) || isinf(t)) {
        celer_fail(err, CELER_ERR_INVALID_ARG,
                   "temperature must be a finite number >= 0 (0 = greedy), got %g", (double)t);
        return NULL;
    }
    temp_ctx c = {t};
    return make(&temp_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- top-k */

typedef struct {
    int32_t k;
} top_k_ctx;

static const char *top_k_name(const celer_sampler *s) { (void)s; return "top-k"; }
static void top_k_apply(celer_sampler *s, celer_token_data_array *cur) {
    top_k_ctx *c = s->ctx;
    if (c->k <= 0 || (size_t)c->k >= cur->size) return;
    csmp_sort(cur);
    cur->size = (size_t)c->k;
}
static celer_sampler *top_k_clone(const celer_sampler *s) { return clone_pod(s, sizeof(top_k_ctx)); }
static const celer_sampler_i top_k_iface = {top_k_name, NULL, top_k_apply, NULL, top_k_clone,
                                            free_ctx};

celer_sampler *celer_sampler_init_top_k(int32_t k) {
    top_k_ctx c = {k};
    return make(&top_k_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- top-p, min-p */

typedef struct {
    float p;
    size_t min_keep;
} p_ctx;

static bool check_p(float p, const char *what, celer_error *err) {
    if (!(p >= 0.0f && p <= 1.0f)) {
        celer_fail(err, CELER_ERR_INVALID_ARG, "%s must be in [0, 1], got %g", what, (double)p);
        return false;
    }
    return true;
}

static const char *top_p_name(const celer_sampler *s) { (void)s; return "top-p"; }
static void top_p_apply(celer_sampler *s, celer_token_data_array *cur) {
    p_ctx *c = s->ctx;
    if (c->p >= 1.0f || cur->size == 0) return;
    csmp_softmax(cur);
    double cum = 0;
    size_t n = cur->size;
    for (size_t i = 0; i < cur->size; i++) {
        cum += cur->data[i].p;
        if (cum >= c->p) {
            n = i + 1;
            break;
        }
    }
    cur->size = keep_at_least(n, c->min_keep, cur->size);
}
static celer_sampler *p_clone(const celer_sampler *s) { return clone_pod(s, sizeof(p_ctx)); }
static const celer_sampler_i top_p_iface = {top_p_name, NULL, top_p_apply, NULL, p_clone, free_ctx};

celer_sampler *celer_sampler_init_top_p(float p, size_t min_keep, celer_error *err) {
    if (!check_p(p, "top_p", err)) return NULL;
    p_ctx c = {p, min_keep};
    return make(&top_p_iface, &c, sizeof c);
}

static const char *min_p_name(const celer_sampler *s) { (void)s; return "min-p"; }
static void min_p_apply(celer_sampler *s, celer_token_data_array *cur) {
    p_ctx *c = s->ctx;
    if (c->p <= 0.0f || cur->size == 0) return;
    csmp_sort(cur);
    /* p_i >= p * p_max  <=>  logit_i >= logit_max + log p (the softmax normaliser cancels). */
    double thr = (double)cur->data[0].logit + log((double)c->p);
    size_t n = 0;
    while (n < cur->size && (double)cur->data[n].logit >= thr) n++;
    cur->size = keep_at_least(n, c->min_keep, cur->size);
}
static const celer_sampler_i min_p_iface = {min_p_name, NULL, min_p_apply, NULL, p_clone, free_ctx};

celer_sampler *celer_sampler_init_min_p(float p, size_t min_keep, celer_error *err) {
    if (!check_p(p, "min_p", err)) return NULL;
    p_ctx c = {p, min_keep};
    return make(&min_p_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- typical-p */

typedef struct {
    float p;
    size_t min_keep;
} typical_ctx;

typedef struct {
    celer_token_data d;
    double key;
} typical_item;

static int typical_cmp(const void *a, const void *b) {
    const typical_item *x = a, *y = b;
    if (x->key < y->key) return -1;
    if (x->key > y->key) return 1;
    return (x->d.id > y->d.id) - (x->d.id < y->d.id);
}

static const char *typical_name(const celer_sampler *s) { (void)s; return "typical"; }
static void typical_apply(celer_sampler *s, celer_token_data_array *cur) {
    typical_ctx *c = s->ctx;
    if (c->p >= 1.0f || cur->size == 0) return;
    csmp_softmax(cur);
    double h = 0; /* entropy of the candidate distribution, in nats */
    for (size_t i = 0; i < cur->size; i++) {
        double p = cur->data[i].p;
        if (p > 0) h -= p * log(p);
    }
    typical_item *it = malloc(cur->size * sizeof *it);
    if (!it) return; /* out of memory: leave the candidates unfiltered */
    for (size_t i = 0; i < cur->size; i++) {
        double p = cur->data[i].p;
        it[i].d = cur->data[i];
        it[i].key = p > 0 ? fabs(-log(p) - h) : INFINITY;
    }
    qsort(it, cur->size, sizeof *it, typical_cmp);
    double cum = 0;
    size_t n = cur->size;
    for (size_t i = 0; i < cur->size; i++) {
        cum += it[i].d.p;
        if (cum >= c->p) {
            n = i + 1;
            break;
        }
    }
    n = keep_at_least(n, c->min_keep, cur->size);
    for (size_t i = 0; i < n; i++) cur->data[i] = it[i].d;
    free(it);
    cur->size = n;
    cur->sorted = false;
}
static celer_sampler *typical_clone(const celer_sampler *s) {
    return clone_pod(s, sizeof(typical_ctx));
}
static const celer_sampler_i typical_iface = {typical_name, NULL, typical_apply, NULL,
                                              typical_clone, free_ctx};

celer_sampler *celer_sampler_init_typical(float p, size_t min_keep, celer_error *err) {
    if (!check_p(p, "typical_p", err)) return NULL;
    typical_ctx c = {p, min_keep};
    return make(&typical_iface, &c, sizeof c);
}

/* ---------------------------------------------------------------- penalties */

typedef struct {
    int32_t last_n;
    float repeat, freq, present;
    int32_t *hist; /* accepted tokens, oldest first */
    size_t n_hist, cap_hist;
    int32_t *keys; /* scratch hash table: token -> count over the window */
    int32_t *counts;
    size_t cap_tab;
} pen_ctx;

static const char *pen_name(const celer_sampler *s) { (void)s; return "penalties"; }

static void pen_accept(celer_sampler *s, int32_t token) {
    pen_ctx *c = s->ctx;
    if (c->last_n == 0) return;
    /* A bounded window only needs its last last_n tokens: slide instead of growing. */
    if (c->last_n > 0 && c->n_hist == (size_t)c->last_n) {
        memmove(c->hist, c->hist + 1, (c->n_hist - 1) * sizeof *c->hist);
        c->n_hist--;
    }
    if (c->n_hist == c->cap_hist) {
        size_t cap = c->cap_hist ? 2 * c->cap_hist : 64;
        int32_t *h = realloc(c->hist, cap * sizeof *h);
        if (!h) return; /* out of memory: forget this token rather than fail generation */
        c->hist = h;
        c->cap_hist = cap;
    }
    c->hist[c->n_hist++] = token;
}

static size_t hash_slot(int32_t tok, size_t mask) {
    return ((uint32_t)tok * 2654435761u) & mask;
}

static void pen_apply(celer_sampler *s, celer_token_data_array *cur) {
    pen_ctx *c = s->ctx;
    if (c->n_hist == 0) return;
    if (c->repeat == 1.0f && c->freq == 0.0f && c->present == 0.0f) return;
    size_t need = 16;
    while (need < 2 * c->n_hist) need *= 2;
    if (need > c->cap_tab) {
        int32_t *k = malloc(need * sizeof *k), *n = malloc(need * sizeof *n);
        if (!k || !n) {
            free(k);
            free(n);
            return;
        }
        free(c->keys);
        free(c->counts);
        c->keys = k;
        c->counts = n;
        c->cap_tab = need;
    }
    size_t mask = c->cap_tab - 1;
    for (size_t i = 0; i < c->cap_tab; i++) c->keys[i] = -1;
    for (size_t i = 0; i < c->n_hist; i++) {
        size_t h = hash_slot(c->hist[i], mask);
        while (c->keys[h] != -1 && c->keys[h] != c->hist[i]) h = (h + 1) & mask;
        if (c->keys[h] == -1) {
            c->keys[h] = c->hist[i];
            c->counts[h] = 0;
        }
        c->counts[h]++;
    }
    for (size_t i = 0; i < cur->size; i++) {
        int32_t tok = cur->data[i].id;
        size_t h = hash_slot(tok, mask);
        while (c->keys[h] != -1 && c->keys[h] != tok) h = (h + 1) & mask;
        if (c->keys[h] == -1) continue;
        int32_t n = c->counts[h];
        float *l = &cur->data[i].logit;
        if (*l <= 0) *l *= c->repeat;
        else *l /= c->repeat;
        *l -= (float)n * c->freq + c->present;
    }
    cur->sorted = false;
}

static void pen_reset(celer_sampler *s) { ((pen_ctx *)s->ctx)->n_hist = 0; }

static void pen_free(celer_sampler *s) {
    pen_ctx *c = s->ctx;
    if (!c) return;
    free(c->hist);
    free(c->keys);
    free(c->counts);
    free(c);
}

static celer_sampler *pen_clone(const celer_sampler *s) {
    const pen_ctx *c = s->ctx;
    celer_sampler *out = celer_sampler_init_penalties(c->last_n, c->repeat, c->freq, c->present,
                                                      NULL);
    if (!out) return NULL;
    pen_ctx *d = out->ctx;
    if (c->n_hist) {
        d->hist = malloc(c->n_hist * sizeof *d->hist);
        if (!d->hist) {
            celer_sampler_free(out);
            return NULL;
        }
        memcpy(d->hist, c->hist, c->n_hist * sizeof *d->hist);
        d->n_hist = d->cap_hist = c->n_hist;
    }
    return out;
}

static const celer_sampler_i pen_iface = {pen_name, pen_accept, pen_apply, pen_reset, pen_clone,
                                          pen_free};

celer_sampler *celer_sampler_init_penalties(int32_t last_n, float repeat, float freq,
                                            float present, celer_error *err) {
    if (last_n < -1) {
        celer_fail(err, CELER_ERR_INVALID_ARG,
                   "penalty window must be >= 0 or -1 (all tokens), got %d", last_n);
        return NULL;
    }
    if (!(repeat > 0.0f) || isinf(repeat)) {
        celer_fail(err, CELER_ERR_INVALID_ARG,
                   "repeat penalty must be a finite number > 0 (1 = off), got %g", (double)repeat);
        return NULL;
    }
    if (!isfinite(freq) || !isfinite(present)) {
        celer_fail(err, CELER_ERR_INVALID_ARG, "frequency and presence penalties must be finite");
        return NULL;
    }
    pen_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->last_n = last_n;
    c->repeat = repeat;
    c->freq = freq;
    c->present = present;
    celer_sampler *s = celer_sampler_init(&pen_iface, c);
    if (!s) free(c);
    return s;
}

/* ---------------------------------------------------------------- logit bias */

typedef struct {
    celer_logit_bias *b; /* sorted by token, duplicates summed */
    int32_t n;
} bias_ctx;

static int bias_cmp(const void *a, const void *b) {
    const celer_logit_bias *x = a, *y = b;
    return (x->token > y->token) - (x->token < y->token);
}

static const char *bias_name(const celer_sampler *s) { (void)s; return "logit-bias"; }
static void bias_apply(celer_sampler *s, celer_token_data_array *cur) {
    bias_ctx *c = s->ctx;
    if (c->n == 0) return;
    for (size_t i = 0; i < cur->size; i++) {
        celer_logit_bias key = {cur->data[i].id, 0};
        const celer_logit_bias *hit = bsearch(&key, c->b, (size_t)c->n, sizeof key, bias_cmp);
        if (hit) cur->data[i].logit += hit->bias;
    }
    cur->sorted = false;
}
static void bias_free(celer_sampler *s) {
    bias_ctx *c = s->ctx;
    if (!c) return;
    free(c->b);
    free(c);
}
static celer_sampler *bias_clone(const celer_sampler *s) {
    const bias_ctx *c = s->ctx;
    return celer_sampler_init_logit_bias(c->b, c->n, NULL);
}
static const celer_sampler_i bias_iface = {bias_name, NULL, bias_apply, NULL, bias_clone,
                                           bias_free};

celer_sampler *celer_sampler_init_logit_bias(const celer_logit_bias *biases, int32_t n,
                                             celer_error *err) {
    if (n < 0 || (n > 0 && !biases)) {
        celer_fail(err, CELER_ERR_INVALID_ARG, "logit bias: %d entries but no array", n);
        return NULL;
    }
    for (int32_t i = 0; i < n; i++) {
        if (biases[i].token < 0 || isnan(biases[i].bias) ||
            (isinf(biases[i].bias) && biases[i].bias > 0)) {
            celer_fail(err, CELER_ERR_INVALID_ARG,
                       "logit bias %d: token %d bias %g (need token >= 0 and a bias that is "
                       "finite or -inf)", i, biases[i].token, (double)biases[i].bias);
            return NULL;
        }
    }
    bias_ctx *c = calloc(1, sizeof *c);
    if (c && n > 0) c->b = malloc((size_t)n * sizeof *c->b);
    if (!c || (n > 0 && !c->b)) {
        free(c);
        celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (n > 0) memcpy(c->b, biases, (size_t)n * sizeof *c->b);
    qsort(c->b, (size_t)n, sizeof *c->b, bias_cmp);
    int32_t m = 0; /* merge duplicates so bsearch finds one entry with the summed bias */
    for (int32_t i = 0; i < n; i++) {
        if (m > 0 && c->b[m - 1].token == c->b[i].token) c->b[m - 1].bias += c->b[i].bias;
        else c->b[m++] = c->b[i];
    }
    c->n = m;
    celer_sampler *s = celer_sampler_init(&bias_iface, c);
    if (!s) {
        free(c->b);
        free(c);
    }
    return s;
}
