/*
 * Beam search and lexically constrained beam search, evaluating all live beams as separate
 * sequences (KV sequence = beam slot) in ONE celer_decode batch per step; a beam that forks
 * gets its parent's cache by celer_kv_seq_copy.
 *
 * Beam search follows fairseq, the setting of Kasai et al. 2022 ("Beam Decoding with
 * Controlled Patience"): each step takes the 2B best (beam, token) continuations; an
 * end-of-generation candidate ranked among the first B finishes a hypothesis with score
 * sum log p / length^length_penalty (length counts the EOG token); the first B other
 * candidates become the next beams. Early stopping ("first come, first served") ends the
 * search once ceil(patience * B) hypotheses have finished (patience = 1: plain beam search);
 * with early_stopping = false it also waits until no live beam can beat the finished ones.
 * At max_tokens the live beams are finished as they are. The best finished hypothesis wins.
 *
 * Constrained search is dynamic beam allocation (Post & Vilar 2018, "Fast Lexically
 * Constrained Decoding with Dynamic Beam Allocation for Neural Machine Translation"). Each
 * hypothesis tracks which constraint phrases it has met and how far it is into one; its bank
 * is the number of constraint tokens met. Candidates are the best continuations overall
 * (the 2B pool above), every token that advances a constraint of each hypothesis, and each
 * hypothesis' single best token; the beam is split over the banks (cdec_dba_bank_sizes) and
 * each bank keeps its best candidates. A phrase abandoned midway is unwound. A hypothesis
 * may only finish once it has met every constraint, so every result contains them all. With
 * no constraints this is exactly beam search.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "decode/decode_internal.h"
#include "sampling/sampling.h"

typedef struct hyp {
    int32_t slot;       /* KV sequence holding this beam */
    double sum;         /* sum of log-probabilities */
    int32_t len;        /* generated tokens */
    int32_t *toks;      /* [max_len] */
    float *lps;         /* [max_len] */
    uint8_t *met;       /* [n_cons] phrases met */
    int32_t cur, pos;   /* phrase in progress (-1 none) and tokens of it matched */
    int32_t n_met;      /* constraint tokens met (bank) */
} hyp;

typedef struct cand {
    int32_t beam, tok;
    float lp;
    double score;       /* sum + lp */
    int64_t flat;       /* beam * n_vocab + tok: tie order */
    int32_t cur, pos, n_met, newly; /* constraint state after tok; newly = phrase completed */
} cand;

typedef struct fin {
    double score;
    int32_t len;        /* tokens to output */
    int32_t *toks;
    float *lps;
    bool eog;
} fin;

typedef struct beam_run {
    cdec_gen *g;
    int32_t B, max_len, n_cons, total_cons;
    int32_t **phr;      /* constraint phrases as token ids */
    int32_t *phr_len;
    hyp *live, *next;
    int32_t n_live;
    fin *fins;
    int32_t n_fins, cap_fins;
    float *lp;          /* [B][n_vocab] log-probabilities per live beam */
    float *sc;          /* [B][n_vocab] scores sum + lp */
    cand *cands;
    int32_t cap_cands;
    int64_t *flat;
} beam_run;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return (x->flat > y->flat) - (x->flat < y->flat);
}

static int fin_cmp(const void *a, const void *b) {
    const fin *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

static int i64_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Constraint state after parent h emits tok. */
static void advance(const beam_run *r, const hyp *h, cand *c) {
    c->cur = h->cur;
    c->pos = h->pos;
    c->n_met = h->n_met;
    c->newly = -1;
    if (r->n_cons == 0) return;
    if (c->cur >= 0) {
        if (r->phr[c->cur][c->pos] == c->tok) {
            c->pos++;
            c->n_met++;
            if (c->pos == r->phr_len[c->cur]) {
                c->newly = c->cur;
                c->cur = -1;
                c->pos = 0;
            }
            return;
        }
        c->n_met -= c->pos; /* abandoned midway: unwind the phrase */
        c->cur = -1;
        c->pos = 0;
    }
    for (int32_t k = 0; k < r->n_cons; k++) {
        if (h->met[k] || r->phr[k][0] != c->tok) continue;
        c->n_met++;
        if (r->phr_len[k] == 1) c->newly = k;
        else {
            c->cur = k;
            c->pos = 1;
        }
        break;
    }
}

static bool all_met(const beam_run *r, const hyp *h) {
    return h->cur < 0 && h->n_met == r->total_cons;
}

static celer_status add_fin(beam_run *r, const hyp *h, int32_t eog_tok, float eog_lp,
                            celer_error *err) {
    if (r->n_fins == r->cap_fins) {
        int32_t cap = r->cap_fins ? 2 * r->cap_fins : 16;
        fin *f = realloc(r->fins, (size_t)cap * sizeof *f);
        if (!f) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        r->fins = f;
        r->cap_fins = cap;
    }
    fin *f = &r->fins[r->n_fins];
    f->len = h->len;
    f->eog = eog_tok >= 0;
    double sum = h->sum + (f->eog ? eog_lp : 0.0);
    f->score = cdec_beam_score(sum, h->len + (f->eog ? 1 : 0), r->g->p->length_penalty);
    f->toks = malloc(((size_t)h->len + 1) * sizeof *f->toks);
    f->lps = malloc(((size_t)h->len + 1) * sizeof *f->lps);
    if (!f->toks || !f->lps) {
        free(f->toks);
        free(f->lps);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    memcpy(f->toks, h->toks, (size_t)h->len * sizeof *f->toks);
    memcpy(f->lps, h->lps, (size_t)h->len * sizeof *f->lps);
    r->n_fins++;
    return CELER_OK;
}

/* Whether some live beam could still score above the n-th best finished hypothesis. */
static bool can_improve(beam_run *r, int32_t n) {
    if (r->n_fins < n) return true;
    qsort(r->fins, (size_t)r->n_fins, sizeof *r->fins, fin_cmp);
    double worst_kept = r->fins[n - 1].score;
    float lpen = r->g->p->length_penalty;
    for (int32_t i = 0; i < r->n_live; i++) {
        const hyp *h = &r->live[i];
        /* Log-probabilities only fall; the most lenient length is max_len when lpen > 0 and
         * the next one otherwise. */
        int32_t L = lpen > 0 ? r->max_len : h->len + 1;
        if (cdec_beam_score(h->sum, L, lpen) > worst_kept) return true;
    }
    return false;
}

static celer_status ensure_cands(beam_run *r, int32_t n, celer_error *err) {
    if (n <= r->cap_cands) return CELER_OK;
    cand *c = realloc(r->cands, (size_t)n * sizeof *c);
    if (!c) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    r->cands = c;
    int64_t *f = realloc(r->flat, (size_t)n * sizeof *f);
    if (!f) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    r->flat = f;
    r->cap_cands = n;
    return CELER_OK;
}

/* Fills r->cands with this step's candidates sorted best first; returns their count. */
static int32_t gather(beam_run *r, celer_error *err, celer_status *st) {
    cdec_gen *g = r->g;
    int32_t V = g->n_vocab, B = r->B;
    int32_t pool = 2 * B;
    int32_t extra = r->n_cons > 0 ? r->n_live * (r->n_cons + 1) : 0;
    *st = ensure_cands(r, pool + extra, err);
    if (*st != CELER_OK) return 0;
    int32_t *idx = malloc((size_t)pool * sizeof *idx);
    if (!idx) {
        *st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        return 0;
    }
    /* Top 2B over the live beams' score rows, which are contiguous: one flat array. */
    int32_t m = csmp_top_k_indices(r->sc, r->n_live * V, pool, idx);
    int32_t n = 0;
    for (int32_t i = 0; i < m; i++) r->flat[n++] = idx[i];
    free(idx);
    if (r->n_cons > 0) {
        for (int32_t b = 0; b < r->n_live; b++) {
            const hyp *h = &r->live[b];
            const float *row = r->sc + (size_t)b * V;
            int32_t best = 0;
            for (int32_t v = 1; v < V; v++)
                if (row[v] > row[best]) best = v;
            r->flat[n++] = (int64_t)b * V + best;
            if (h->cur >= 0) {
                r->flat[n++] = (int64_t)b * V + r->phr[h->cur][h->pos];
            } else {
                for (int32_t k = 0; k < r->n_cons; k++)
                    if (!h->met[k]) r->flat[n++] = (int64_t)b * V + r->phr[k][0];
            }
        }
        qsort(r->flat, (size_t)n, sizeof *r->flat, i64_cmp);
        int32_t u = 0;
        for (int32_t i = 0; i < n; i++)
            if (u == 0 || r->flat[u - 1] != r->flat[i]) r->flat[u++] = r->flat[i];
        n = u;
    }
    int32_t out = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t b = (int32_t)(r->flat[i] / V), v = (int32_t)(r->flat[i] % V);
        float lp = r->lp[(size_t)b * V + v];
        if (isinf(lp) && lp < 0) continue; /* banned by a logit bias */
        cand *c = &r->cands[out++];
        c->beam = b;
        c->tok = v;
        c->lp = lp;
        c->score = r->live[b].sum + (double)lp;
        c->flat = r->flat[i];
        advance(r, &r->live[b], c);
    }
    qsort(r->cands, (size_t)out, sizeof *r->cands, cand_cmp);
    return out;
}

/* Picks the next beams from the sorted candidates (EOG candidates were removed) into
 * sel[0..ret), in score order. */
static int32_t select_beams(beam_run *r, const cand *cs, int32_t n, int32_t *sel) {
    int32_t B = r->B;
    if (r->n_cons == 0) {
        int32_t m = n < B ? n : B;
        for (int32_t i = 0; i < m; i++) sel[i] = i;
        return m;
    }
    int32_t nb = r->total_cons + 1;
    int32_t *avail = calloc((size_t)nb, sizeof *avail), *assigned = calloc((size_t)nb, sizeof *assigned);
    if (!avail || !assigned) {
        free(avail);
        free(assigned);
        return -1;
    }
    for (int32_t i = 0; i < n; i++) avail[cs[i].n_met]++;
    cdec_dba_bank_sizes(B, nb, avail, assigned);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) { /* cs is sorted, so each bank takes its best */
        if (assigned[cs[i].n_met] > 0) {
            assigned[cs[i].n_met]--;
            sel[m++] = i;
        }
    }
    free(avail);
    free(assigned);
    return m;
}

static celer_status tokenize_constraints(beam_run *r, celer_error *err) {
    const celer_generate_params *p = r->g->p;
    r->n_cons = p->n_constraints;
    if (r->n_cons == 0) return CELER_OK;
    r->phr = calloc((size_t)r->n_cons, sizeof *r->phr);
    r->phr_len = calloc((size_t)r->n_cons, sizeof *r->phr_len);
    if (!r->phr || !r->phr_len) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    for (int32_t k = 0; k < r->n_cons; k++) {
        const char *s = p->constraints[k];
        size_t len = strlen(s);
        int32_t n = celer_tokenize(r->g->vocab, s, len, NULL, 0, false, false);
        if (n < 0) n = -n;
        if (n == 0)
            return celer_fail(err, CELER_ERR_INVALID_ARG, "constraint '%s' gives no tokens", s);
        r->phr[k] = malloc((size_t)n * sizeof(int32_t));
        if (!r->phr[k]) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
        r->phr_len[k] = celer_tokenize(r->g->vocab, s, len, r->phr[k], n, false, false);
        if (r->phr_len[k] != n)
            return celer_fail(err, CELER_ERR_INTERNAL, "tokenizing constraint '%s' failed", s);
        for (int32_t i = 0; i < n; i++)
            if (cdec_is_eog(r->g, r->phr[k][i]))
                return celer_fail(err, CELER_ERR_INVALID_ARG,
                                  "constraint '%s' contains an end-of-generation token", s);
        r->total_cons += n;
    }
    if (r->total_cons > r->max_len)
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "the constraints need %d tokens but at most %d may be generated",
                          r->total_cons, r->max_len);
    return CELER_OK;
}

static celer_status alloc_hyps(beam_run *r, hyp **out, celer_error *err) {
    hyp *h = calloc((size_t)r->B, sizeof *h);
    if (!h) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    *out = h;
    for (int32_t i = 0; i < r->B; i++) {
        h[i].toks = malloc((size_t)r->max_len * sizeof(int32_t));
        h[i].lps = malloc((size_t)r->max_len * sizeof(float));
        h[i].met = calloc((size_t)r->n_cons + 1, 1);
        if (!h[i].toks || !h[i].lps || !h[i].met)
            return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    return CELER_OK;
}

static void free_hyps(hyp *h, int32_t n) {
    if (!h) return;
    for (int32_t i = 0; i < n; i++) {
        free(h[i].toks);
        free(h[i].lps);
        free(h[i].met);
    }
    free(h);
}

/* Gives each new beam a KV slot: the first child of a parent inherits the parent's slot
 * as it is; further children copy the parent's cache into a slot no new beam uses. */
static celer_status assign_slots(beam_run *r, hyp *nb, int32_t n_next, celer_error *err) {
    cdec_gen *g = r->g;
    uint8_t *claimed = calloc((size_t)r->B, 1);
    if (!claimed) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    int32_t *parent_slot = malloc((size_t)n_next * sizeof *parent_slot);
    if (!parent_slot) {
        free(claimed);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    for (int32_t j = 0; j < n_next; j++) {
        parent_slot[j] = nb[j].slot; /* set to the parent's slot by the caller */
        nb[j].slot = -1;
        if (!claimed[parent_slot[j]]) {
            claimed[parent_slot[j]] = 1;
            nb[j].slot = parent_slot[j];
        }
    }
    celer_status st = CELER_OK;
    int32_t free_slot = 0;
    for (int32_t j = 0; j < n_next && st == CELER_OK; j++) {
        if (nb[j].slot >= 0) continue;
        while (claimed[free_slot]) free_slot++;
        claimed[free_slot] = 1;
        nb[j].slot = free_slot;
        int32_t len = celer_kv_seq_len(g->ctx, parent_slot[j]);
        st = celer_kv_seq_copy(g->ctx, parent_slot[j], free_slot, len);
        if (st != CELER_OK)
            st = celer_fail(err, st,
                            "beam search: copying the cache of sequence %d to %d failed (the "
                            "context needs n_seq_max >= beam width %d)",
                            parent_slot[j], free_slot, r->B);
    }
    free(claimed);
    free(parent_slot);
    return st;
}

static celer_status decode_beams(beam_run *r, const hyp *nb, int32_t n_next, celer_error *err) {
    cdec_gen *g = r->g;
    int32_t *tok = malloc((size_t)n_next * sizeof *tok), *pos = malloc((size_t)n_next * sizeof *pos);
    int32_t *seq = malloc((size_t)n_next * sizeof *seq);
    uint8_t *want = malloc((size_t)n_next);
    celer_status st = CELER_OK;
    if (!tok || !pos || !seq || !want) {
        st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    } else {
        for (int32_t j = 0; j < n_next; j++) {
            tok[j] = nb[j].toks[nb[j].len - 1];
            pos[j] = g->n_seq + nb[j].len - 1;
            seq[j] = nb[j].slot;
            want[j] = 1;
        }
        celer_batch b = {n_next, tok, pos, seq, NULL, want};
        st = celer_decode(g->ctx, &b, err);
        if (st != CELER_OK && err)
            celer_fail_prefix(err, "beam search step (%d sequences; the context needs "
                                   "n_seq_max >= %d)", n_next, r->B);
    }
    free(tok);
    free(pos);
    free(seq);
    free(want);
    return st;
}

static celer_status search(beam_run *r, celer_error *err) {
    cdec_gen *g = r->g;
    const celer_generate_params *p = g->p;
    int32_t V = g->n_vocab, B = r->B;
    int32_t target = (int32_t)ceil((double)p->patience * B - 1e-9);
    if (target < 1) target = 1;
    int32_t *sel = malloc((size_t)(2 * B + r->B * (r->n_cons + 1) + 1) * sizeof *sel);
    cand *kept = malloc((size_t)(2 * B + r->B * (r->n_cons + 1) + 1) * sizeof *kept);
    if (!sel || !kept) {
        free(sel);
        free(kept);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    celer_status st = CELER_OK;
    r->n_live = 1;
    r->live[0].slot = 0;
    r->live[0].sum = 0;
    r->live[0].len = 0;
    r->live[0].cur = -1;
    r->live[0].n_met = 0;
    for (;;) {
        /* Scores of every continuation of every live beam. */
        for (int32_t i = 0; i < r->n_live; i++) {
            float *lp = r->lp + (size_t)i * V, *sc = r->sc + (size_t)i * V;
            const float *l = r->live[i].len == 0 ? g->logits : celer_get_logits(g->ctx, i);
            if (!l) {
                st = celer_fail(err, CELER_ERR_INTERNAL, "beam search: no logits for beam %d", i);
                goto done;
            }
            memcpy(lp, l, (size_t)V * sizeof *lp);
            cdec_apply_bias(g, lp);
            csmp_log_softmax(lp, V, lp);
            for (int32_t v = 0; v < V; v++) sc[v] = (float)(r->live[i].sum + lp[v]);
        }
        int32_t n = gather(r, err, &st);
        if (st != CELER_OK) goto done;
        /* End-of-generation candidates among the first B finish (if their constraints are
         * met); the others go on to selection. */
        int32_t n_kept = 0;
        for (int32_t i = 0; i < n; i++) {
            const cand *c = &r->cands[i];
            bool eog = cdec_is_eog(g, c->tok);
            if (!eog) {
                kept[n_kept++] = *c;
                continue;
            }
            if (i < B && all_met(r, &r->live[c->beam])) {
                st = add_fin(r, &r->live[c->beam], c->tok, c->lp, err);
                if (st != CELER_OK) goto done;
            }
        }
        int32_t m = select_beams(r, kept, n_kept, sel);
        if (m < 0) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int32_t j = 0; j < m; j++) {
            const cand *c = &kept[sel[j]];
            const hyp *par = &r->live[c->beam];
            hyp *h = &r->next[j];
            h->slot = par->slot;
            h->sum = c->score;
            h->len = par->len + 1;
            memcpy(h->toks, par->toks, (size_t)par->len * sizeof *h->toks);
            memcpy(h->lps, par->lps, (size_t)par->len * sizeof *h->lps);
            h->toks[par->len] = c->tok;
            h->lps[par->len] = c->lp;
            memcpy(h->met, par->met, (size_t)r->n_cons + 1);
            if (c->newly >= 0) h->met[c->newly] = 1;
            h->cur = c->cur;
            h->pos = c->pos;
            h->n_met = c->n_met;
        }
        hyp *t = r->live;
        r->live = r->next;
        r->next = t;
        r->n_live = m;
        if (m == 0) break;
        if (r->n_fins >= target && (p->early_stopping || !can_improve(r, target))) break;
        if (r->live[0].len >= r->max_len) {
            for (int32_t i = 0; i < r->n_live; i++) {
                if (!all_met(r, &r->live[i])) continue;
                st = add_fin(r, &r->live[i], -1, 0.0f, err);
                if (st != CELER_OK) goto done;
            }
            break;
        }
        /* live now holds the new beams with their parents' slots: fork, then one batch. */
        st = assign_slots(r, r->live, m, err);
        if (st != CELER_OK) goto done;
        st = decode_beams(r, r->live, m, err);
        if (st != CELER_OK) goto done;
    }
done:
    free(sel);
    free(kept);
    return st;
}

celer_status cdec_run_beam(cdec_gen *g, celer_error *err) {
    beam_run r;
    memset(&r, 0, sizeof r);
    r.g = g;
    r.B = g->p->beam_width;
    /* Every beam needs its cache rows: never past the context. */
    r.max_len = g->max_tokens < g->n_ctx - g->n_seq ? g->max_tokens : g->n_ctx - g->n_seq;
    celer_status st = tokenize_constraints(&r, err);
    if (st == CELER_OK) st = alloc_hyps(&r, &r.live, err);
    if (st == CELER_OK) st = alloc_hyps(&r, &r.next, err);
    if (st == CELER_OK) {
        r.lp = malloc((size_t)r.B * (size_t)g->n_vocab * sizeof(float));
        r.sc = malloc((size_t)r.B * (size_t)g->n_vocab * sizeof(float));
        if (!r.lp || !r.sc) st = celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    if (st == CELER_OK) st = search(&r, err);
    if (st == CELER_OK && r.n_fins == 0)
        st = celer_fail(err, CELER_ERR_INVALID_ARG,
                        "constrained search found no hypothesis meeting every constraint within "
                        "%d tokens (raise max_tokens or the beam width)", r.max_len);
    if (st == CELER_OK) {
        int32_t best = 0;
        for (int32_t i = 1; i < r.n_fins; i++)
            if (r.fins[i].score > r.fins[best].score) best = i;
        const fin *f = &r.fins[best];
        g->beam_score = f->score;
        g->n_finished = r.n_fins;
        bool go = true;
        for (int32_t i = 0; i < f->len && go; i++) go = cdec_emit(g, f->toks[i], f->lps[i]);
        if (go && g->stop == CELER_STOP_NONE)
            g->stop = f->eog ? CELER_STOP_EOG
                      : f->len < g->max_tokens ? CELER_STOP_CONTEXT_FULL : CELER_STOP_MAX_TOKENS;
    }
    for (int32_t i = 0; i < r.n_fins; i++) {
        free(r.fins[i].toks);
        free(r.fins[i].lps);
    }
    free(r.fins);
    free_hyps(r.live, r.B);
    free_hyps(r.next, r.B);
    for (int32_t k = 0; k < r.n_cons && r.phr; k++) free(r.phr[k]);
    free(r.phr);
    free(r.phr_len);
    free(r.lp);
    free(r.sc);
    free(r.cands);
    free(r.flat);
    return st;
}
