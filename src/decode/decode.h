/* Decoding layer internals. The scoring step of each method from the literature is a pure
 * function over probabilities, token ids and hidden states, so tests can check it against a
 * hand computation of the paper's definition without a model. generate.c runs the methods
 * over a context; beam.c holds beam search and its constrained variant. */
#ifndef CELER_DECODE_H
#define CELER_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "celer.h"

/* ---- Frustratingly Simple Decoding (Yang et al. 2023, "Frustratingly Simple Decoding
 * Methods for Neural Text Generation"): score(v) = (1 - alpha) p_LM(v) - alpha p_anti(v) over
 * the k most probable tokens; the anti-LM is built from the text so far (prompt included). */

/* The n-gram anti-LM: an order-n model over tokens[0..n_tokens) smoothed across orders with
 * beta, as in the paper's reference implementation. From the highest order down (context of
 * the last i tokens, i = n-1 .. 0), an order whose context never preceded cand is skipped;
 * otherwise with c = count(context, cand) and N = count(context, *):
 *     i > 0:  p += r * beta * c / (N + 1);  r -= r * beta
 *     i = 0:  p += r * c / N
 * starting from p = 0, r = 1. 0 while n_tokens < n - 1. */
float cdec_fsd_ngram_penalty(const int32_t *tokens, int32_t n_tokens, int32_t n, float beta,
                             int32_t cand);

/* The vectorized anti-LM (FSD-vec): hidden[j] (dim floats) is the final hidden state at
 * position j of tokens[0..n_tokens). The query is the concatenation of the last n-1 hidden
 * states; key j (j = 0 .. n_tokens-n) is the concatenation of hidden[j .. j+n-2], followed by
 * token tokens[j+n-1]. penalty(v) = max over keys followed by v of cos(query, key), clamped to
 * [0, 1]; 0 when no key is followed by v or n_tokens < n. Writes out[i] for cands[0..k). */
void cdec_fsd_vec_penalty(const float *hidden, const int32_t *tokens, int32_t n_tokens,
                          int32_t dim, int32_t n, const int32_t *cands, int32_t k, float *out);

/* ---- Momentum decoding (Lan et al. 2022, "Momentum Decoding: Open-ended Text Generation As
 * Graph Exploration"): tokens are graph nodes; choosing a node already in the graph closes a
 * loop. Its depth d: 0 if cand never occurred; otherwise the largest i in 2..max_depth such
 * that (last i-1 tokens, cand) already occurred as an i-gram; else 1.
 * score(v) = p(v) - alpha R(d(v)) over the k most probable tokens. */
int32_t cdec_momentum_depth(const int32_t *tokens, int32_t n_tokens, int32_t cand,
                            int32_t max_depth);
/* R(d) for the resistance function kind (R(0) = 0). */
double cdec_resistance(celer_resistance kind, int32_t depth);

/* ---- Contrastive search (Su et al. 2022, "A Contrastive Framework for Neural Text
 * Generation"): score(v) = (1 - alpha) p(v) - alpha max_j cos(h_v, h_j), where h_v is the
 * hidden state with v appended and h_j those of the context (prompt included). Writes the k
 * scores; ctx_hidden is [n_ctx x dim], cand_hidden [k x dim]. */
void cdec_contrastive_scores(const float *probs, const float *cand_hidden, int32_t k,
                             const float *ctx_hidden, int32_t n_ctx, int32_t dim, float alpha,
                             float *out);

/* Index of the largest of scores[0..k) (first on ties); 0 when all are -inf or NaN. */
int32_t cdec_argmax(const float *scores, int32_t k);
/* Cosine similarity of a and b (0 if either is zero). */
double cdec_cosine(const float *a, const float *b, int32_t dim);

/* ---- Beam search internals shared with tests */

/* Score of a finished hypothesis (fairseq/Kasai et al.): sum / length^length_penalty. */
double cdec_beam_score(double sum_logprob, int32_t length, float length_penalty);

/* Dynamic beam allocation (Post & Vilar 2018): splits beam slots over n_banks banks (bank b =
 * hypotheses meeting b constraint tokens) given how many candidates each bank has. Each gets
 * beam / n_banks, the remainder goes to the top bank, then slots a bank cannot use move to
 * banks with spare candidates, highest bank first. Writes assigned[n_banks]. */
void cdec_dba_bank_sizes(int32_t beam, int32_t n_banks, const int32_t *available,
                         int32_t *assigned);

/* ---- generation state (generate.c) shared with beam.c */

typedef struct cdec_gen cdec_gen;

/* Emits one chosen token: EOG handling, stop strings, callback, max tokens. Returns false
 * when generation must stop (the reason is recorded). */
bool cdec_emit(cdec_gen *g, int32_t token, float logprob);
/* Beam methods (beam.c). */
celer_status cdec_run_beam(cdec_gen *g, celer_error *err);

#endif
