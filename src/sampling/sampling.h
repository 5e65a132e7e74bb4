/* Sampling layer internals: helpers shared by the samplers and by the decoding methods in
 * src/decode (softmax over candidates, sorting, top-k selection over raw score arrays). */
#ifndef CELER_SAMPLING_H
#define CELER_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "celer.h"

/* Sorts candidates by logit, descending; ties by ascending id so results never depend on
 * the sort algorithm. Sets cur->sorted. */
void csmp_sort(celer_token_data_array *cur);
/* Sorts (if needed) and fills p with the softmax of the logits (max-subtracted). Tokens whose
 * logit is -INFINITY get p = 0. */
void csmp_softmax(celer_token_data_array *cur);
/* Fills cur->data with (i, logits[i], 0) for i < n; unsorted, nothing selected. */
void csmp_fill(celer_token_data_array *cur, celer_token_data *buf, const float *logits,
               int32_t n);

/* out[i] = log softmax(x)[i]; out may equal x. Returns the log of the partition sum. */
double csmp_log_softmax(const float *x, int32_t n, float *out);
/* out[i] = softmax(x)[i]; out may equal x. */
void csmp_softmax_raw(const float *x, int32_t n, float *out);
/* Writes the indices of the k largest scores (k <= n) to out, largest first; ties go to the
 * lower index. -INFINITY entries are skipped, so fewer may come back: returns the count. */
int32_t csmp_top_k_indices(const float *scores, int32_t n, int32_t k, int32_t *out);

#endif
