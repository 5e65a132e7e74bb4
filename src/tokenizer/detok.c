/*
 * Token ids to text: single pieces (llama_token_to_piece), whole sequences and a streaming
 * decoder that only ever hands out complete UTF-8.
 *
 * Unlike llama.cpp's llama_detokenize, celer_detokenize never applies the
 * clean_up_tokenization_spaces heuristic (" ," -> ","): it is lossy, and celer promises
 * detokenize(tokenize(text)) == text.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* The piece of a token, borrowed from the cache; *len = 0 for tokens that print nothing. */
static const char *piece(const celer_vocab *v, int32_t token, bool special, size_t *len) {
    *len = 0;
    if (token < 0 || token >= v->n_tokens) return "";
    if (!special && (v->attrs[token] & (CTOK_ATTR_UNKNOWN | CTOK_ATTR_CONTROL))) return "";
    *len = v->piece_off[token + 1] - v->piece_off[token];
    return v->piece_arena + v->piece_off[token];
}

int32_t celer_token_to_piece(const celer_vocab *v, int32_t token, char *buf, int32_t cap,
                             bool special) {
    if (!v || cap < 0 || (!buf && cap > 0)) return INT32_MIN;
    size_t n;
    const char *p = piece(v, token, special, &n);
    if (n > (size_t)cap) return -(int32_t)n;
    if (n) memcpy(buf, p, n);
    return (int32_t)n;
}

int32_t celer_detokenize(const celer_vocab *v, const int32_t *tokens, int32_t n, char *buf,
                         int32_t cap, bool remove_leading_space, bool special) {
    if (!v || n < 0 || (!tokens && n > 0) || cap < 0 || (!buf && cap > 0)) return INT32_MIN;
    /* SentencePiece's decoder drops the space it added in front of the text; that text
     * starts after a leading BOS, if any. */
    bool strip = remove_leading_space && v->add_space_prefix;
    int32_t strip_at = (n > 0 && tokens[0] == v->bos && v->bos >= 0) ? 1 : 0;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const char *p = piece(v, tokens[i], special, &len);
        if (strip && i == strip_at && len > 0 && p[0] == ' ') p++, len--;
        if (total + len <= (size_t)cap && len) memcpy(buf + total, p, len);
        total += len;
        if (total > INT32_MAX) return INT32_MIN;
    }
    return total <= (size_t)cap ? (int32_t)total : -(int32_t)total;
}

/* ---------------------------------------------------------------- streaming */

struct celer_detok {
    const celer_vocab *v;
    bool special;
    char held[4]; /* an incomplete UTF-8 sequence from earlier pieces (at most 3 bytes) */
    size_t n_held;
};

celer_status celer_detok_create(const celer_vocab *v, bool special, celer_detok **out) {
    if (!out) return CELER_ERR_INVALID_ARG;
    *out = NULL;
    if (!v) return CELER_ERR_INVALID_ARG;
    celer_detok *d = calloc(1, sizeof *d);
    if (!d) return CELER_ERR_NOMEM;
    d->v = v;
    d->special = special;
    *out = d;
    return CELER_OK;
}

void celer_detok_free(celer_detok *d) { free(d); }

int32_t celer_detok_push(celer_detok *d, int32_t token, char *buf, int32_t cap) {
    if (!d || cap < 0 || (!buf && cap > 0)) return INT32_MIN;
    size_t len;
    const char *p = piece(d->v, token, d->special, &len);
    size_t total = d->n_held + len;
    /* Work out the complete prefix of held + piece without consuming anything yet. */
    size_t keep; /* bytes of the tail held back */
    if (len >= 4) {
        keep = len - ctok_utf8_complete_prefix(p, len);
        /* A held-back tail of 3 bytes may straddle into `held` only when len < 3. */
    } else {
        char tmp[8];
        memcpy(tmp, d->held, d->n_held);
        memcpy(tmp + d->n_held, p, len);
        keep = total - ctok_utf8_complete_prefix(tmp, total);
    }
    size_t emit = total - keep;
    if (emit > (size_t)cap) return emit > INT32_MAX ? INT32_MIN : -(int32_t)emit;
    /* Copy held bytes then the piece, and keep the tail. */
    char tail[4];
    size_t o = 0;
    for (size_t i = 0; i < total; i++) {
        char c = i < d->n_held ? d->held[i] : p[i - d->n_held];
        if (i < emit) buf[o++] = c;
        else tail[i - emit] = c;
    }
    memcpy(d->held, tail, keep);
    d->n_held = keep;
    return (int32_t)emit;
}

int32_t celer_detok_flush(celer_detok *d, char *buf, int32_t cap) {
    if (!d || cap < 0 || (!buf && cap > 0)) return INT32_MIN;
    if (d->n_held > (size_t)cap) return -(int32_t)d->n_held;
    memcpy(buf, d->held, d->n_held);
    int32_t n = (int32_t)d->n_held;
    d->n_held = 0;
    return n;
}
