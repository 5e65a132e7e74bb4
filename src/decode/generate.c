/* celer_generate: parameters, validation, the token loop shared by every method (prompt
 * evaluation, stop strings, streaming, timings) and the one-sequence methods: greedy,
 * sampling, FSD / FSD-vec, momentum decoding and contrastive search. Beam methods: beam.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "decode/decode_internal.h"
#include "sampling/sampling.h"

/* ---------------------------------------------------------------- names and defaults */

static const char *const method_names[] = {"greedy", "sample",  "beam",     "constrained",
                                           "fsd",    "fsd-vec", "momentum", "contrastive"};
#define N_METHODS ((int)(sizeof method_names / sizeof method_names[0]))

const char *celer_method_name(celer_method method) {
    return ((int)method >= 0 && (int)method < N_METHODS) ? method_names[method] : NULL;
}

celer_status celer_method_from_name(const char *name, celer_method *out, celer_error *err) {
    for (int i = 0; name && i < N_METHODS; i++) {
        if (strcmp(name, method_names[i]) == 0) {
            *out = (celer_method)i;
            return CELER_OK;
        }
    }
    return celer_fail(err, CELER_ERR_INVALID_ARG,
                      "unknown decoding method '%s' (expected greedy, sample, beam, constrained, "
                      "fsd, fsd-vec, momentum or contrastive)", name ? name : "(null)");
}

celer_generate_params celer_generate_default_params(celer_method method) {
    celer_generate_params p;
    memset(&p, 0, sizeof p);
    p.method = method;
    p.max_tokens = 128;
    p.seed = 0x5eed;
    p.n_batch = 256;
    /* Sampling: llama.cpp's defaults. */
    p.temp = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.typical_p = 1.0f;
    p.penalty_last_n = 64;
    p.repeat_penalty = 1.0f;
    /* Beam search: fairseq's length normalisation and first-come-first-served stopping;
     * patience 1 is plain beam search (Kasai et al. 2022). */
    p.beam_width = 4;
    p.length_penalty = 1.0f;
    p.patience = 1.0f;
    p.early_stopping = true;
    /* FSD: the recommended English settings of Yang et al. (k = 3; n-gram: alpha 0.65, n = 3,
     * beta 0.9; vectorized: alpha 0.45, n = 2). */
    p.fsd_alpha = method == CELER_METHOD_FSD_VEC ? 0.45f : 0.65f;
    p.fsd_n = method == CELER_METHOD_FSD_VEC ? 2 : 3;
    p.fsd_beta = 0.9f;
    /* Momentum decoding: alpha 0.2 and loop depth up to 5 as in Lan et al.'s released code;
     * k = 5 candidates. */
    p.momentum_alpha = 0.2f;
    p.momentum_max_depth = 5;
    p.resistance = CELER_RESISTANCE_LINEAR;
    /* Contrastive search: k = 5, alpha = 0.6 (Su et al. 2022). */
    p.penalty_alpha = 0.6f;
    switch (method) {
    case CELER_METHOD_FSD:
    case CELER_METHOD_FSD_VEC: p.top_k = 3; break;
    case CELER_METHOD_MOMENTUM: p.top_k = 5; break;
    case CELER_METHOD_CONTRASTIVE: p.top_k = 5; break;
    default: break;
    }
    return p;
}

static bool is_beam(celer_method m) {
    return m == CELER_METHOD_BEAM || m == CELER_METHOD_CONSTRAINED;
}

void celer_generate_context_params(const celer_generate_params *params,
                                   celer_context_params *cparams) {
    if (!params || !cparams) return;
    if (is_beam(params->method) && params->beam_width > 0 &&
        cparams->n_seq_max < (uint32_t)params->beam_width)
        cparams->n_seq_max = (uint32_t)params->beam_width;
    if (params->method == CELER_METHOD_CONTRASTIVE || params->method == CELER_METHOD_FSD_VEC)
        cparams->embeddings = true;
}

static bool in01(float x) { return x >= 0.0f && x <= 1.0f; }

celer_status celer_generate_validate(const celer_generate_params *p, celer_error *err) {
    if (!p) return celer_fail(err, CELER_ERR_INVALID_ARG, "no generation parameters");
    if (!celer_method_name(p->method))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "unknown decoding method %d", (int)p->method);
    if (p->max_tokens < -1 || p->max_tokens == 0)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "max_tokens must be >= 1 or -1 (until the context is full), got %d",
                          p->max_tokens);
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "stop strings: bad count %d", p->n_stop);
    for (int32_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0])
            return celer_fail(err, CELER_ERR_INVALID_ARG, "stop string %d is empty", i);
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "logit bias: bad count %d", p->n_logit_bias);
    if (p->n_extra_eog < 0 || (p->n_extra_eog > 0 && !p->extra_eog))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "extra EOG tokens: bad count %d",
                          p->n_extra_eog);
    if (p->n_batch < 1)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "n_batch must be >= 1, got %d", p->n_batch);
    switch (p->method) {
    case CELER_METHOD_GREEDY: break;
    case CELER_METHOD_SAMPLE:
        if (!(p->temp >= 0.0f) || isinf(p->temp))
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "temperature must be >= 0 (0 = greedy), got %g", (double)p->temp);
        if (p->top_k < 0)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "top_k must be >= 0 (0 = off), got %d",
                              p->top_k);
        if (!in01(p->top_p))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "top_p must be in [0, 1], got %g",
                              (double)p->top_p);
        if (!in01(p->min_p))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "min_p must be in [0, 1], got %g",
                              (double)p->min_p);
        if (!in01(p->typical_p))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "typical_p must be in [0, 1], got %g",
                              (double)p->typical_p);
        if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "repeat penalty must be > 0 (1 = off), got %g",
                              (double)p->repeat_penalty);
        if (p->penalty_last_n < -1)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "penalty window must be >= 0 or -1, got %d", p->penalty_last_n);
        if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "frequency/presence penalties must be finite");
        break;
    case CELER_METHOD_BEAM:
    case CELER_METHOD_CONSTRAINED:
        if (p->beam_width < 1)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "beam width must be >= 1, got %d",
                              p->beam_width);
        if (p->beam_width > 1024)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "beam width %d is too large (max 1024)",
                              p->beam_width);
        if (!(p->patience > 0.0f) || isinf(p->patience))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "patience must be > 0, got %g",
                              (double)p->patience);
        if (!isfinite(p->length_penalty))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "length penalty must be finite");
        if (p->n_constraints < 0 || (p->n_constraints > 0 && !p->constraints))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "constraints: bad count %d",
                              p->n_constraints);
        if (p->method == CELER_METHOD_BEAM && p->n_constraints > 0)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "constraints need the 'constrained' method, not 'beam'");
        for (int32_t i = 0; i < p->n_constraints; i++)
            if (!p->constraints[i] || !p->constraints[i][0])
                return celer_fail(err, CELER_ERR_INVALID_ARG, "constraint %d is empty", i);
        break;
    case CELER_METHOD_FSD:
    case CELER_METHOD_FSD_VEC:
        if (p->top_k < 1)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "FSD needs top_k >= 1, got %d", p->top_k);
        if (!in01(p->fsd_alpha))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "FSD alpha must be in [0, 1], got %g",
                              (double)p->fsd_alpha);
        if (p->fsd_n < (p->method == CELER_METHOD_FSD_VEC ? 2 : 1) || p->fsd_n > 16)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "FSD n-gram order must be in [%d, 16], got %d",
                              p->method == CELER_METHOD_FSD_VEC ? 2 : 1, p->fsd_n);
        if (!in01(p->fsd_beta))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "FSD beta must be in [0, 1], got %g",
                              (double)p->fsd_beta);
        break;
    case CELER_METHOD_MOMENTUM:
        if (p->top_k < 1)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "momentum decoding needs top_k >= 1, got %d",
                              p->top_k);
        if (!(p->momentum_alpha >= 0.0f) || isinf(p->momentum_alpha))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "momentum alpha must be >= 0, got %g",
                              (double)p->momentum_alpha);
        if (p->momentum_max_depth < 1)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "momentum max depth must be >= 1");
        if ((int)p->resistance < 0 || (int)p->resistance > CELER_RESISTANCE_CONSTANT)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "unknown resistance function %d",
                              (int)p->resistance);
        break;
    case CELER_METHOD_CONTRASTIVE:
        if (p->top_k < 1)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "contrastive search needs top_k >= 1, got %d", p->top_k);
        if (!in01(p->penalty_alpha))
            return celer_fail(err, CELER_ERR_INVALID_ARG, "penalty_alpha must be in [0, 1], got %g",
                              (double)p->penalty_alpha);
        break;
    }
    return CELER_OK;
}

/* ---------------------------------------------------------------- emitting tokens */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool text_append(cdec_gen *g, const char *s, size_t n) {
    if (!grow((void **)&g->text, &g->text_cap, g->text_len + n + 1, 1)) return false;
    memcpy(g->text + g->text_len, s, n);
    g->text_len += n;
    g->text[g->text_len] = 0;
    return true;
}

/* Length of the longest suffix of text that is a proper prefix of some stop string: that much
 * must be held back from the callback, since the next token may complete a stop string. */
static size_t held_back(const cdec_gen *g) {
    size_t hold = 0;
    for (int32_t i = 0; i < g->p->n_stop; i++) {
        size_t sl = strlen(g->p->stop[i]);
        for (size_t k = sl - 1; k > hold; k--) {
            if (k <= g->text_len && memcmp(g->text + g->text_len - k, g->p->stop[i], k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

static bool deliver(cdec_gen *g, int32_t token, size_t upto, float logprob) {
    if (!g->cb || upto < g->emitted) return true;
    bool go = g->cb(g->user, token, g->text + g->emitted, upto - g->emitted, logprob);
    g->emitted = upto;
    if (!go) g->stop = CELER_STOP_CALLBACK;
    return go;
}

bool cdec_is_eog(const cdec_gen *g, int32_t token) {
    if (g->p->ignore_eog) return false;
    for (int32_t i = 0; i < g->p->n_extra_eog; i++)
        if (g->p->extra_eog[i] == token) return true;
    return celer_vocab_is_eog(g->vocab, token);
}

bool cdec_emit(cdec_gen *g, int32_t token, float logprob) {
    if (g->n_out == 0) g->t_first = now_s();
    if (cdec_is_eog(g, token)) {
        g->stop = CELER_STOP_EOG;
        return false;
    }
    if (!grow((void **)&g->out_tokens, &g->out_cap, (size_t)g->n_out + 1, sizeof(int32_t)) ||
        !grow((void **)&g->out_lp, &g->out_lp_cap, (size_t)g->n_out + 1, sizeof(float))) {
        g->oom = true;
        return false;
    }
    g->out_tokens[g->n_out] = token;
    g->out_lp[g->n_out] = logprob;
    g->n_out++;
    g->sum_lp += logprob;

    size_t old = g->text_len;
    char piece[256];
    int32_t n = celer_detok_push(g->detok, token, piece, (int32_t)sizeof piece);
    if (n < 0) { /* a very long piece */
        char *big = malloc((size_t)-n);
        if (!big) {
            g->oom = true;
            return false;
        }
        n = celer_detok_push(g->detok, token, big, -n);
        bool ok = n >= 0 && text_append(g, big, (size_t)n);
        free(big);
        if (!ok) {
            g->oom = true;
            return false;
        }
    } else if (!text_append(g, piece, (size_t)n)) {
        g->oom = true;
        return false;
    }

    /* A stop string can only newly appear in a window reaching back max_stop-1 bytes. */
    for (int32_t i = 0; i < g->p->n_stop; i++) {
        size_t sl = strlen(g->p->stop[i]);
        size_t from = old >= sl - 1 ? old - (sl - 1) : 0;
        char *hit = memmem(g->text + from, g->text_len - from, g->p->stop[i], sl);
        if (hit) {
            g->text_len = (size_t)(hit - g->text);
            g->text[g->text_len] = 0;
            deliver(g, token, g->text_len, logprob);
            g->stop = CELER_STOP_STRING;
            return false;
        }
    }
    if (!deliver(g, token, g->text_len - held_back(g), logprob)) return false;
    if (g->n_out >= g->max_tokens) {
        g->stop = CELER_STOP_MAX_TOKENS;
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- model steps */

/* Evaluates tokens[0..n) of sequence 0 at positions pos0.. in chunks of n_batch. With
 * all_rows, keeps the hidden state of every row in g->hidden; logits of the last row are
 * copied to g->logits. */
static celer_status eval_tokens(cdec_gen *g, const int32_t *tokens, int32_t n, int32_t pos0,
                                bool all_rows, celer_error *err) {
    for (int32_t off = 0; off < n; off += g->p->n_batch) {
        int32_t m = n - off < g->p->n_batch ? n - off : g->p->n_batch;
        int32_t *pos = malloc((size_t)m * sizeof *pos);
        uint8_t *want = malloc((size_t)m);
        if (!pos || !want) {
            free(pos);
            free(want);
            return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        }
        for (int32_t i = 0; i < m; i++) {
            pos[i] = pos0 + off + i;
            want[i] = all_rows || off + i == n - 1;
        }
        celer_batch b = {m, tokens + off, pos, NULL, NULL, want};
        celer_status st = celer_decode(g->ctx, &b, err);
        if (st == CELER_OK && all_rows) {
            for (int32_t i = 0; i < m; i++) {
                const float *h = celer_get_embeddings(g->ctx, i);
                if (!h) {
                    st = celer_fail(err, CELER_ERR_INVALID_ARG,
                                    "%s needs hidden states: create the context with "
                                    "embeddings = true", celer_method_name(g->p->method));
                    break;
                }
                memcpy(g->hidden + (size_t)(pos0 + off + i) * g->n_embd, h,
                       (size_t)g->n_embd * sizeof(float));
            }
        }
        if (st == CELER_OK && off + m == n) {
            const float *l = celer_get_logits(g->ctx, m - 1);
            if (!l) st = celer_fail(err, CELER_ERR_INTERNAL, "no logits after decode");
            else memcpy(g->logits, l, (size_t)g->n_vocab * sizeof(float));
        }
        free(pos);
        free(want);
        if (st != CELER_OK) return st;
    }
    return CELER_OK;
}

void cdec_apply_bias(const cdec_gen *g, float *logits) {
    for (int32_t i = 0; i < g->p->n_logit_bias; i++)
        logits[g->p->logit_bias[i].token] += g->p->logit_bias[i].bias;
}

/* Probabilities of the biased logits in g->probs, log-probabilities in g->logp. */
static void prepare_step(cdec_gen *g) {
    cdec_apply_bias(g, g->logits);
    csmp_log_softmax(g->logits, g->n_vocab, g->logp);
    for (int32_t i = 0; i < g->n_vocab; i++) g->probs[i] = expf(g->logp[i]);
}

static celer_sampler *build_chain(const celer_generate_params *p, celer_error *err) {
    celer_sampler *c = celer_sampler_chain_init();
    if (!c) {
        celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    celer_sampler *parts[7] = {
        celer_sampler_init_penalties(p->penalty_last_n, p->repeat_penalty, p->frequency_penalty,
                                     p->presence_penalty, err),
        celer_sampler_init_top_k(p->top_k),
        celer_sampler_init_typical(p->typical_p, 1, err),
        celer_sampler_init_top_p(p->top_p, 1, err),
        celer_sampler_init_min_p(p->min_p, 1, err),
        celer_sampler_init_temp(p->temp, err),
        celer_sampler_init_dist(p->seed),
    };
    bool ok = true;
    for (int i = 0; i < 7; i++) {
        if (!parts[i]) ok = false;
        else if (ok && celer_sampler_chain_add(c, parts[i]) != CELER_OK) ok = false;
        else if (!ok) celer_sampler_free(parts[i]);
    }
    if (!ok) {
        celer_sampler_free(c);
        if (err && err->status == CELER_OK) celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return c;
}

/* Choose the next token for the one-sequence methods other than contrastive. */
static int32_t choose(cdec_gen *g, celer_sampler *chain) {
    const celer_generate_params *p = g->p;
    int32_t k = p->top_k < g->n_vocab ? p->top_k : g->n_vocab;
    switch (p->method) {
    case CELER_METHOD_SAMPLE: {
        celer_token_data_array cur;
        csmp_fill(&cur, g->cand, g->logits, g->n_vocab);
        celer_sampler_apply(chain, &cur);
        return cur.selected >= 0 ? cur.data[cur.selected].id : -1;
    }
    case CELER_METHOD_FSD:
    case CELER_METHOD_FSD_VEC:
    case CELER_METHOD_MOMENTUM: {
        k = csmp_top_k_indices(g->probs, g->n_vocab, k, g->topk);
        if (k == 0) return -1;
        if (p->method == CELER_METHOD_FSD_VEC)
            cdec_fsd_vec_penalty(g->hidden, g->seq, g->n_seq, g->n_embd, p->fsd_n, g->topk, k,
                                 g->pen);
        for (int32_t i = 0; i < k; i++) {
            int32_t v = g->topk[i];
            double s;
            if (p->method == CELER_METHOD_FSD)
                s = (1.0 - p->fsd_alpha) * g->probs[v] -
                    p->fsd_alpha * cdec_fsd_ngram_penalty(g->seq, g->n_seq, p->fsd_n, p->fsd_beta, v);
            else if (p->method == CELER_METHOD_FSD_VEC)
                s = (1.0 - p->fsd_alpha) * g->probs[v] - p->fsd_alpha * g->pen[i];
            else
                s = g->probs[v] - p->momentum_alpha *
                                      cdec_resistance(p->resistance,
                                                      cdec_momentum_depth(g->seq, g->n_seq, v,
                                                                          p->momentum_max_depth));
            g->score[i] = (float)s;
        }
        return g->topk[cdec_argmax(g->score, k)];
    }
    default: { /* greedy */
        int32_t best = 0;
        for (int32_t i = 1; i < g->n_vocab; i++)
            if (g->logits[i] > g->logits[best]) best = i;
        return best;
    }
    }
}

static bool push_seq(cdec_gen *g, int32_t token) {
    if (!grow((void **)&g->seq, &g->seq_cap, (size_t)g->n_seq + 1, sizeof(int32_t))) return false;
    g->seq[g->n_seq++] = token;
    return true;
}

static celer_status run_simple(cdec_gen *g, celer_error *err) {
    const celer_generate_params *p = g->p;
    bool hid = p->method == CELER_METHOD_FSD_VEC;
    celer_sampler *chain = NULL;
    if (p->method == CELER_METHOD_SAMPLE) {
        chain = build_chain(p, err);
        if (!chain) return err ? err->status : CELER_ERR_NOMEM;
        for (int32_t i = 0; i < g->n_seq; i++) celer_sampler_accept(chain, g->seq[i]);
    }
    celer_status st = CELER_OK;
    for (;;) {
        prepare_step(g);
        int32_t tok = choose(g, chain);
        if (tok < 0) {
            st = celer_fail(err, CELER_ERR_INTERNAL, "no token could be chosen (all banned?)");
            break;
        }
        if (chain) celer_sampler_accept(chain, tok);
        if (!cdec_emit(g, tok, g->logp[tok])) break;
        if (g->n_seq + 1 > g->n_ctx) {
            g->stop = CELER_STOP_CONTEXT_FULL;
            break;
        }
        int32_t pos = g->n_seq;
        if (!push_seq(g, tok)) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
            break;
        }
        st = eval_tokens(g, &tok, 1, pos, hid, err);
        if (st != CELER_OK) break;
    }
    celer_sampler_free(chain);
    return st;
}

/* Contrastive search: each step evaluates the k candidates in one batch as siblings at the
 * same position of sequence 0 (each sees the cache and itself only), reads their hidden
 * states, scores them, and keeps only the chosen one's KV row. Its logits are the next
 * step's distribution, so every step is a single forward pass over k tokens. */
static celer_status run_contrastive(cdec_gen *g, celer_error *err) {
    const celer_generate_params *p = g->p;
    int32_t k0 = p->top_k < g->n_vocab ? p->top_k : g->n_vocab;
    int32_t *pos = malloc((size_t)k0 * sizeof *pos);
    uint8_t *mask = calloc((size_t)k0 * (size_t)k0, 1);
    uint8_t *want = malloc((size_t)k0);
    float *ch = malloc((size_t)k0 * (size_t)g->n_embd * sizeof *ch);
    float *cl = malloc((size_t)k0 * (size_t)g->n_vocab * sizeof *cl);
    celer_status st = CELER_OK;
    if (!pos || !mask || !want || !ch || !cl) {
        st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (;;) {
        prepare_step(g);
        int32_t k = csmp_top_k_indices(g->probs, g->n_vocab, k0, g->topk);
        if (k == 0) {
            st = celer_fail(err, CELER_ERR_INTERNAL, "no token could be chosen (all banned?)");
            break;
        }
        if (g->n_seq + 1 > g->n_ctx) {
            /* No room to look ahead: the last token is the most probable one. */
            if (cdec_emit(g, g->topk[0], g->logp[g->topk[0]])) g->stop = CELER_STOP_CONTEXT_FULL;
            break;
        }
        memset(mask, 0, (size_t)k * (size_t)k);
        for (int32_t i = 0; i < k; i++) {
            pos[i] = g->n_seq;
            mask[(size_t)i * (size_t)k + (size_t)i] = 1;
            want[i] = 1;
        }
        celer_batch b = {k, g->topk, pos, NULL, mask, want};
        st = celer_decode(g->ctx, &b, err);
        if (st != CELER_OK) break;
        for (int32_t i = 0; i < k; i++) {
            const float *h = celer_get_embeddings(g->ctx, i);
            const float *l = celer_get_logits(g->ctx, i);
            if (!h || !l) {
                st = celer_fail(err, CELER_ERR_INVALID_ARG,
                                "contrastive search needs hidden states: create the context "
                                "with embeddings = true");
                goto done;
            }
            memcpy(ch + (size_t)i * g->n_embd, h, (size_t)g->n_embd * sizeof *ch);
            memcpy(cl + (size_t)i * g->n_vocab, l, (size_t)g->n_vocab * sizeof *cl);
            g->pen[i] = g->probs[g->topk[i]];
        }
        cdec_contrastive_scores(g->pen, ch, k, g->hidden, g->n_seq, g->n_embd, p->penalty_alpha,
                                g->score);
        int32_t c = cdec_argmax(g->score, k), tok = g->topk[c];
        int32_t row = c;
        st = celer_kv_seq_keep(g->ctx, 0, g->n_seq, &row, 1);
        if (st != CELER_OK) {
            celer_fail(err, st, "contrastive search: keeping the chosen candidate failed");
            break;
        }
        if (!cdec_emit(g, tok, g->logp[tok])) break;
        memcpy(g->hidden + (size_t)g->n_seq * g->n_embd, ch + (size_t)c * g->n_embd,
               (size_t)g->n_embd * sizeof *ch);
        if (!push_seq(g, tok)) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(g->logits, cl + (size_t)c * g->n_vocab, (size_t)g->n_vocab * sizeof *cl);
    }
done:
    free(pos);
    free(mask);
    free(want);
    free(ch);
    free(cl);
    return st;
}

/* ---------------------------------------------------------------- entry point */

static void gen_free(cdec_gen *g) {
    free(g->seq);
    free(g->out_tokens);
    free(g->out_lp);
    free(g->text);
    free(g->logits);
    free(g->logp);
    free(g->probs);
    free(g->cand);
    free(g->topk);
    free(g->score);
    free(g->pen);
    free(g->hidden);
    if (g->detok) celer_detok_free(g->detok);
}

celer_status celer_generate(celer_context *ctx, const celer_model *model,
                            const celer_generate_params *params, const int32_t *prompt,
                            int32_t n_prompt, celer_token_fn on_token, void *user,
                            celer_generate_result *result, celer_error *err) {
    if (result) memset(result, 0, sizeof *result);
    if (!ctx || !model || !result)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "generate: context, model and result are required");
    celer_status st = celer_generate_validate(params, err);
    if (st != CELER_OK) return st;
    if (n_prompt < 1 || !prompt)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "generate: the prompt must hold at least one token (e.g. BOS)");

    cdec_gen g;
    memset(&g, 0, sizeof g);
    g.ctx = ctx;
    g.p = params;
    g.cb = on_token;
    g.user = user;
    g.vocab = celer_model_vocab(model);
    g.n_vocab = celer_model_n_vocab(model);
    g.n_embd = celer_model_n_embd(model);
    g.n_ctx = (int32_t)celer_context_n_ctx(ctx);
    g.t_start = now_s();
    if (!g.vocab)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "generate: the model has no tokenizer");
    for (int32_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g.n_vocab)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "prompt token %d at position %d is out of range (vocabulary of %d)",
                              prompt[i], i, g.n_vocab);
    for (int32_t i = 0; i < params->n_logit_bias; i++)
        if (params->logit_bias[i].token < 0 || params->logit_bias[i].token >= g.n_vocab ||
            isnan(params->logit_bias[i].bias))
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "logit bias %d: token %d out of range or bias NaN", i,
                              params->logit_bias[i].token);
    if (n_prompt >= g.n_ctx)
        return celer_fail(err, CELER_ERR_CONTEXT_FULL,
                          "the prompt has %d tokens but the context holds %d: nothing is left "
                          "to generate into (use a larger context or a shorter prompt)",
                          n_prompt, g.n_ctx);
    g.max_tokens = params->max_tokens < 0 ? g.n_ctx - n_prompt : params->max_tokens;

    bool hid = params->method == CELER_METHOD_FSD_VEC || params->method == CELER_METHOD_CONTRASTIVE;
    int32_t kk = params->top_k > params->beam_width ? params->top_k : params->beam_width;
    if (kk < 1) kk = 1;
    g.logits = malloc((size_t)g.n_vocab * sizeof(float));
    g.logp = malloc((size_t)g.n_vocab * sizeof(float));
    g.probs = malloc((size_t)g.n_vocab * sizeof(float));
    g.cand = malloc((size_t)g.n_vocab * sizeof(celer_token_data));
    g.topk = malloc((size_t)kk * sizeof(int32_t));
    g.score = malloc((size_t)kk * sizeof(float));
    g.pen = malloc((size_t)kk * sizeof(float));
    if (hid) g.hidden = malloc((size_t)g.n_ctx * (size_t)g.n_embd * sizeof(float));
    if (!g.logits || !g.logp || !g.probs || !g.cand || !g.topk || !g.score || !g.pen ||
        (hid && !g.hidden) || celer_detok_create(g.vocab, false, &g.detok) != CELER_OK ||
        !grow((void **)&g.seq, &g.seq_cap, (size_t)n_prompt, sizeof(int32_t))) {
        gen_free(&g);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    memcpy(g.seq, prompt, (size_t)n_prompt * sizeof(int32_t));
    g.n_seq = n_prompt;

    celer_kv_clear(ctx);
    st = eval_tokens(&g, prompt, n_prompt, 0, hid, err);
    g.t_prompt = now_s();
    if (st == CELER_OK) {
        if (is_beam(params->method)) st = cdec_run_beam(&g, err);
        else if (params->method == CELER_METHOD_CONTRASTIVE) st = run_contrastive(&g, err);
        else st = run_simple(&g, err);
    }
    if (st == CELER_OK && g.oom) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    if (st == CELER_OK && g.stop != CELER_STOP_CALLBACK) {
        /* Bytes the streaming detokenizer held back (an unfinished UTF-8 sequence), then the
         * text held back for a stop string that never completed. */
        char tail[8];
        int32_t n = celer_detok_flush(g.detok, tail, (int32_t)sizeof tail);
        if (n > 0 && g.stop != CELER_STOP_STRING && !text_append(&g, tail, (size_t)n))
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        if (st == CELER_OK) deliver(&g, -1, g.text_len, 0.0f);
    }
    if (st != CELER_OK) {
        gen_free(&g);
        return st;
    }
    if (!g.text && !text_append(&g, "", 0)) {
        gen_free(&g);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    double t_end = now_s();
    result->tokens = g.out_tokens;
    result->logprobs = g.out_lp;
    result->n_tokens = g.n_out;
    result->text = g.text;
    result->text_len = g.text_len;
    result->stop_reason = g.stop;
    result->score = is_beam(params->method) ? g.beam_score : g.sum_lp;
    result->n_finished = g.n_finished;
    result->n_prompt = n_prompt;
    result->t_prompt_s = g.t_prompt - g.t_start;
    result->t_first_token_s = (g.n_out ? g.t_first : t_end) - g.t_start;
    result->t_total_s = t_end - g.t_start;
    g.out_tokens = NULL;
    g.out_lp = NULL;
    g.text = NULL;
    gen_free(&g);
    return CELER_OK;
}

void celer_generate_result_free(celer_generate_result *result) {
    if (!result) return;
    free(result->tokens);
    free(result->logprobs);
    free(result->text);
    memset(result, 0, sizeof *result);
}
