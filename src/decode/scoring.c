/* Pure scoring steps of the decoding methods from the literature (see decode.h for each
 * method's paper and definition). No model here: probabilities, ids and hidden states in. */
#include <math.h>
#include <stdlib.h>

#include "decode/decode.h"

int32_t cdec_argmax(const float *scores, int32_t k) {
    int32_t best = -1;
    for (int32_t i = 0; i < k; i++) {
        if (isnan(scores[i]) || (isinf(scores[i]) && scores[i] < 0)) continue;
        if (best < 0 || scores[i] > scores[best]) best = i;
    }
    return best < 0 ? 0 : best;
}

double cdec_cosine(const float *a, const float *b, int32_t dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return 0;
    return ab / (sqrt(aa) * sqrt(bb));
}

/* ---------------------------------------------------------------- FSD */

static bool same(const int32_t *a, const int32_t *b, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

float cdec_fsd_ngram_penalty(const int32_t *tokens, int32_t n_tokens, int32_t n, float beta,
                             int32_t cand) {
    if (n < 1 || n_tokens < n - 1) return 0.0f;
    double p = 0, r = 1;
    for (int32_t i = n - 1; i >= 0; i--) {
        if (i > n_tokens) continue;
        const int32_t *ctx = tokens + n_tokens - i; /* the last i tokens */
        int64_t total = 0, count = 0;
        /* Every position j that follows an occurrence of the context (the context at the end
         * is not followed by anything yet). */
        for (int32_t j = i; j < n_tokens; j++) {
            if (!same(tokens + j - i, ctx, i)) continue;
            total++;
            if (tokens[j] == cand) count++;
        }
        if (count == 0) continue;
        if (i == 0) {
            p += r * (double)count / (double)total;
        } else {
            p += r * beta * (double)count / (double)(total + 1);
            r -= r * beta;
        }
    }
    return (float)p;
}

/* Cosine of two concatenations of n1 hidden rows, starting at rows a and b. */
static double concat_cosine(const float *hidden, int32_t dim, int32_t a, int32_t b, int32_t n1) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t r = 0; r < n1; r++) {
        const float *x = hidden + (size_t)(a + r) * dim, *y = hidden + (size_t)(b + r) * dim;
        for (int32_t i = 0; i < dim; i++) {
            ab += (double)x[i] * y[i];
            aa += (double)x[i] * x[i];
            bb += (double)y[i] * y[i];
        }
    }
    if (aa == 0 || bb == 0) return 0;
    return ab / (sqrt(aa) * sqrt(bb));
}

void cdec_fsd_vec_penalty(const float *hidden, const int32_t *tokens, int32_t n_tokens,
                          int32_t dim, int32_t n, const int32_t *cands, int32_t k, float *out) {
    for (int32_t c = 0; c < k; c++) out[c] = 0.0f;
    if (n < 2 || n_tokens < n) return;
    int32_t n1 = n - 1, q = n_tokens - n1;
    for (int32_t c = 0; c < k; c++) {
        double best = 0; /* the clamp at 0 */
        for (int32_t j = 0; j + n - 1 < n_tokens; j++) {
            if (tokens[j + n - 1] != cands[c]) continue;
            double s = concat_cosine(hidden, dim, q, j, n1);
            if (s > best) best = s;
        }
        out[c] = (float)(best > 1 ? 1 : best);
    }
}

/* ---------------------------------------------------------------- momentum */

int32_t cdec_momentum_depth(const int32_t *tokens, int32_t n_tokens, int32_t cand,
                            int32_t max_depth) {
    int32_t depth = 0;
    for (int32_t p = 0; p < n_tokens; p++) {
        if (tokens[p] != cand) continue;
        if (depth < 1) depth = 1;
        /* Loop depth through this occurrence: 1 + how many tokens before it match the tokens
         * before the end of the text, capped at max_depth. */
        int32_t d = 1;
        while (d < max_depth && p - d >= 0 && n_tokens - d >= 0 &&
               tokens[p - d] == tokens[n_tokens - d])
            d++;
        if (d > depth) depth = d;
    }
    return depth;
}

double cdec_resistance(celer_resistance kind, int32_t d) {
    if (d <= 0) return 0;
    switch (kind) {
    case CELER_RESISTANCE_LINEAR: return d;
    case CELER_RESISTANCE_BLOCK: return d < 4 ? 0.0 : d == 4 ? 5.0 : INFINITY;
    case CELER_RESISTANCE_LOG: return log(1.0 + d) / log(6.0) / 0.2;
    case CELER_RESISTANCE_EXP: return pow(1.5, d) / 2;
    case CELER_RESISTANCE_CONSTANT: return 2.0;
    }
    return 0;
}

/* ---------------------------------------------------------------- contrastive */

void cdec_contrastive_scores(const float *probs, const float *cand_hidden, int32_t k,
                             const float *ctx_hidden, int32_t n_ctx, int32_t dim, float alpha,
                             float *out) {
    for (int32_t c = 0; c < k; c++) {
        double pen = n_ctx > 0 ? -INFINITY : 0;
        for (int32_t j = 0; j < n_ctx; j++) {
            double s = cdec_cosine(cand_hidden + (size_t)c * dim, ctx_hidden + (size_t)j * dim,
                                   dim);
            if (s > pen) pen = s;
        }
        out[c] = (float)((1.0 - alpha) * probs[c] - alpha * pen);
    }
}

/* ---------------------------------------------------------------- beam helpers */

double cdec_beam_score(double sum_logprob, int32_t length, float length_penalty) {
    if (length <= 0) return sum_logprob;
    return sum_logprob / pow((double)length, (double)length_penalty);
}

void cdec_dba_bank_sizes(int32_t beam, int32_t n_banks, const int32_t *available,
                         int32_t *assigned) {
    int32_t base = beam / n_banks;
    for (int32_t b = 0; b < n_banks; b++) assigned[b] = base;
    assigned[n_banks - 1] += beam - base * n_banks;
    int32_t spare = 0;
    for (int32_t b = 0; b < n_banks; b++) {
        if (assigned[b] > available[b]) {
            spare += assigned[b] - available[b];
            assigned[b] = available[b];
        }
    }
    for (int32_t b = n_banks - 1; b >= 0 && spare > 0; b--) {
        int32_t room = available[b] - assigned[b];
        int32_t give = room < spare ? room : spare;
        assigned[b] += give;
        spare -= give;
    }
}
