/* State of one celer_generate call, shared by generate.c and beam.c. */
#ifndef CELER_DECODE_INTERNAL_H
#define CELER_DECODE_INTERNAL_H

#include <stddef.h>

#include "decode/decode.h"

struct cdec_gen {
    celer_context *ctx;
    const celer_generate_params *p;
    const celer_vocab *vocab;
    int32_t n_vocab, n_embd, n_ctx;
    int32_t max_tokens;          /* resolved: never past the context */

    int32_t *seq;                /* prompt + chosen tokens (what the KV of sequence 0 holds) */
    int32_t n_seq;
    size_t seq_cap;
    float *hidden;               /* [n_ctx][n_embd] hidden state of each seq row, or NULL */

    float *logits;               /* [n_vocab] next-token logits (biased by prepare_step) */
    float *logp, *probs;         /* [n_vocab] */
    celer_token_data *cand;      /* [n_vocab] sampler work array */
    int32_t *topk;               /* [max(top_k, beam)] */
    float *score, *pen;          /* [max(top_k, beam)] */

    int32_t *out_tokens;         /* output */
    float *out_lp;
    int32_t n_out;
    size_t out_cap, out_lp_cap;
    double sum_lp, beam_score;
    int32_t n_finished;
    char *text;
    size_t text_len, text_cap, emitted;
    celer_detok *detok;
    celer_stop_reason stop;
    bool oom;

    celer_token_fn cb;
    void *user;
    double t_start, t_prompt, t_first;
};

/* End of generation: the vocabulary's EOG tokens and params->extra_eog (never with
 * params->ignore_eog). */
bool cdec_is_eog(const cdec_gen *g, int32_t token);

/* Adds the logit bias of the params to logits[n_vocab]. */
void cdec_apply_bias(const cdec_gen *g, float *logits);

#endif
