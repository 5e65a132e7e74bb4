/*
 * Text to token ids: special-token partitioning, then SentencePiece-style BPE (SPM),
 * byte-level BPE or WordPiece on each stretch of plain text, as llama.cpp's
 * llama_vocab::impl::tokenize does.
 *
 * Both merge loops use a binary heap of candidate pairs with lazy invalidation, so a long
 * run of text without pre-tokenizer splits (SPM has none) costs O(n log n).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---------------------------------------------------------------- id buffer */

typedef struct idbuf {
    int32_t *v;
    size_t n, cap;
    bool oom;
} idbuf;

static void ids_push(idbuf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = id;
}

/* ---------------------------------------------------------------- special tokens */

typedef struct frag {
    int32_t token; /* >= 0: a special token; -1: text[off, off + len) */
    size_t off, len;
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static bool frags_push(frags *f, int32_t token, size_t off, size_t len) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) return false;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (frag){token, off, len};
    return true;
}

static bool is_space_c(char c) { /* C isspace in the "C" locale */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Splits one text fragment at every occurrence of special token id (left to right). */
static bool split_at_special(const celer_vocab *v, const char *text, frag f, int32_t id, frags *out) {
    const char *s = ctok_str(v, id);
    size_t sl = ctok_len(v, id);
    uint32_t attr = v->attrs[id];
    size_t base = f.off, blen = f.len;
    for (;;) {
        const char *p = blen >= sl ? memmem(text + base, blen, s, sl) : NULL;
        if (!p) return frags_push(out, -1, base, blen);
        size_t m = (size_t)(p - text);
        size_t left = m - base;
        if (attr & CTOK_ATTR_LSTRIP)
            while (left > 0 && is_space_c(text[base + left - 1])) left--;
        if (left > 0 && !frags_push(out, -1, base, left)) return false;
        if (!frags_push(out, id, 0, 0)) return false;
        size_t roff = m + sl, rlen = base + blen - roff;
        if (attr & CTOK_ATTR_RSTRIP)
            while (rlen > 0 && is_space_c(text[roff])) roff++, rlen--;
        if (rlen == 0) return true;
        base = roff, blen = rlen;
    }
}

/* llama.cpp's tokenizer_st_partition: for each special token, longest first, carve its
 * occurrences out of the remaining text. Control and unknown tokens only when
 * parse_special; user-defined tokens always. */
static bool partition(const celer_vocab *v, const char *text, size_t len, bool parse_special, frags *out) {
    frags a = {0}, b = {0};
    bool ok = len == 0 || frags_push(&a, -1, 0, len);
    for (int32_t k = 0; ok && k < v->n_special; k++) {
        int32_t id = v->special_ids[k];
        if (!parse_special && (v->attrs[id] & (CTOK_ATTR_CONTROL | CTOK_ATTR_UNKNOWN))) continue;
        size_t sl = ctok_len(v, id);
        if (sl > len || !memmem(text, len, ctok_str(v, id), sl)) continue;
        b.n = 0;
        for (size_t i = 0; ok && i < a.n; i++)
            ok = a.v[i].token >= 0 ? frags_push(&b, a.v[i].token, 0, 0) : split_at_special(v, text, a.v[i], id, &b);
        frags t = a;
        a = b;
        b = t;
    }
    free(b.v);
    if (!ok) {
        free(a.v);
        return false;
    }
    *out = a;
    return true;
}

/* ---------------------------------------------------------------- heap */

/* A candidate merge of symbol `left` with its current right neighbour. key orders the
 * candidates (BPE: merge rank; SPM: the token score mapped to an integer, best lowest),
 * ties go to the leftmost pair, as in llama.cpp's priority queues. a and b let a popped
 * candidate be recognised as stale: BPE keeps the two ids, SPM the byte size of the pair. */
typedef struct cand {
    uint32_t key;
    int32_t left;
    int32_t a, b;
} cand;

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

static inline bool cand_before(const cand *x, const cand *y) {
    return x->key != y->key ? x->key < y->key : x->left < y->left;
}

/* Higher scores first: map the float's bits to an unsigned order, then reverse it. */
static uint32_t score_key(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

static bool heap_reserve(heap *h, size_t n) {
    if (n <= h->cap) return true;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < n) cap *= 2;
    cand *v = realloc(h->v, cap * sizeof *v);
    if (!v) return false;
    h->v = v;
    h->cap = cap;
    return true;
}

static void sift_down(heap *h, size_t i) {
    cand c = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= h->n) break;
        if (l + 1 < h->n && cand_before(&h->v[l + 1], &h->v[l])) m = l + 1;
        if (!cand_before(&h->v[m], &c)) break;
        h->v[i] = h->v[m];
        i = m;
    }
    h->v[i] = c;
}

static bool heap_push(heap *h, cand c) {
    if (h->n == h->cap && !heap_reserve(h, h->n + 1)) return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

/* Restores the heap order after candidates were appended without pushing (O(n)). */
static void heapify(heap *h) {
    for (size_t i = h->n / 2; i-- > 0;) sift_down(h, i);
}

static cand heap_pop(heap *h) {
    cand top = h->v[0];
    h->v[0] = h->v[--h->n];
    if (h->n) sift_down(h, 0);
    return top;
}

/* ---------------------------------------------------------------- SPM */

typedef struct sym {
    int32_t prev, next;
    int32_t id;   /* BPE: current id */
    uint32_t off; /* SPM: byte offset in the text */
    uint32_t n;   /* bytes (SPM) or alive flag (BPE); 0 = merged away */
} sym;

/* Ids of words seen earlier in the same call: tokenizing a word depends on its bytes
 * only, and running text repeats its words a lot. */
typedef struct wc_slot {
    uint32_t hash, len;    /* len 0 = empty */
    uint32_t word;         /* offset of the bytes in the cache's arena */
    uint32_t ids, n_ids;   /* offset and count in the cache's id array */
} wc_slot;

typedef struct wcache {
    wc_slot *slots;
    uint32_t mask, count;
    char *bytes;
    size_t n_bytes, cap_bytes;
    idbuf ids;
} wcache;

#define WC_MAX_WORD 48

static const wc_slot *wc_find(const wcache *c, const char *w, size_t len, uint32_t h) {
    if (!c->slots) return NULL;
    for (uint32_t i = h & c->mask;; i = (i + 1) & c->mask) {
        const wc_slot *e = &c->slots[i];
        if (e->len == 0) return NULL;
        if (e->hash == h && e->len == len && !memcmp(c->bytes + e->word, w, len)) return e;
    }
}

/* Remembers ids[0..n) for word w; failures only lose the cache entry. */
static void wc_add(wcache *c, const char *w, size_t len, uint32_t h, const int32_t *ids, size_t n) {
    if ((c->count + 1) * 2 > (c->slots ? c->mask + 1 : 0)) {
        uint32_t cap = c->slots ? (c->mask + 1) * 2 : 1024;
        wc_slot *s = calloc(cap, sizeof *s);
        if (!s) return;
        for (uint32_t i = 0; c->slots && i <= c->mask; i++) {
            if (!c->slots[i].len) continue;
            uint32_t j = c->slots[i].hash & (cap - 1);
            while (s[j].len) j = (j + 1) & (cap - 1);
            s[j] = c->slots[i];
        }
        free(c->slots);
        c->slots = s;
        c->mask = cap - 1;
    }
    if (c->n_bytes + len > c->cap_bytes) {
        size_t cap = c->cap_bytes ? c->cap_bytes * 2 : 16384;
        char *b = realloc(c->bytes, cap);
        if (!b) return;
        c->bytes = b;
        c->cap_bytes = cap;
    }
    size_t at = c->ids.n;
    for (size_t k = 0; k < n; k++) ids_push(&c->ids, ids[k]);
    if (c->ids.oom || c->n_bytes + len > UINT32_MAX || c->ids.n > UINT32_MAX) return;
    memcpy(c->bytes + c->n_bytes, w, len);
    uint32_t i = h & c->mask;
    while (c->slots[i].len) i = (i + 1) & c->mask;
    c->slots[i] = (wc_slot){h, (uint32_t)len, (uint32_t)c->n_bytes, (uint32_t)at, (uint32_t)n};
    c->n_bytes += len;
    c->count++;
}

static void wc_free(wcache *c) {
    free(c->slots);
    free(c->bytes);
    free(c->ids.v);
}

typedef struct session {
    const celer_vocab *v;
    idbuf *out;
    wcache wc;
    heap h;
    sym *s;
    size_t cap;
    char *buf; /* SPM escaped text, BPE encoded word */
    size_t buf_cap;
    bool oom;
} session;

static bool sess_reserve(session *ss, size_t nsym, size_t nbuf) {
    if (nsym > ss->cap) {
        sym *s = realloc(ss->s, nsym * sizeof *s);
        if (!s) return false;
        ss->s = s;
        ss->cap = nsym;
    }
    if (nbuf > ss->buf_cap) {
        char *b = realloc(ss->buf, nbuf);
        if (!b) return false;
        ss->buf = b;
        ss->buf_cap = nbuf;
    }
    return true;
}

/* Queues the pair (l, next of l) if its text is a token. */
static void spm_try_pair(session *ss, const char *t, int32_t l, int32_t r, bool append) {
    if (l < 0 || r < 0) return;
    uint32_t size = ss->s[l].n + ss->s[r].n;
    if (size > (uint32_t)ss->v->max_token_len) return;
    int32_t id = ctok_find_token(ss->v, t + ss->s[l].off, size);
    if (id < 0) return;
    cand c = {.key = score_key(ss->v->scores[id]), .left = l, .a = (int32_t)size};
    if (append) ss->h.v[ss->h.n++] = c;
    else if (!heap_push(&ss->h, c)) ss->oom = true;
}

/* Tokenizes text[0..len) (already escaped) with SentencePiece's merge rule. */
static void spm_tokenize_raw(session *ss, const char *t, size_t len) {
    if (len == 0) return;
    if (len > UINT32_MAX / 2 || !sess_reserve(ss, len, 0) || !heap_reserve(&ss->h, len)) {
        ss->oom = true;
        return;
    }
    sym *s = ss->s;
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        /* One symbol per UTF-8 character. llama.cpp trusts the lead byte's length; an
         * invalid byte is a symbol of its own here, so that it cannot swallow the bytes of
         * an escaped space (the result is the same for valid UTF-8). */
        int32_t cp;
        size_t k = ctok_utf8_decode((const unsigned char *)t + off, len - off, &cp);
        s[n] = (sym){.prev = n - 1, .off = (uint32_t)off, .n = (uint32_t)k};
        off += k;
        s[n].next = off == len ? -1 : n + 1;
    }
    ss->h.n = 0;
    for (int32_t i = 1; i < n; i++) spm_try_pair(ss, t, i - 1, i, true);
    heapify(&ss->h);
    while (ss->h.n && !ss->oom) {
        cand c = heap_pop(&ss->h);
        sym *l = &s[c.left];
        if (l->n == 0 || l->next < 0) continue;
        sym *r = &s[l->next];
        if (l->n + r->n != (uint32_t)c.a) continue; /* one of them grew since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        spm_try_pair(ss, t, l->prev, c.left, false);
        spm_try_pair(ss, t, c.left, l->next, false);
    }
    const celer_vocab *v = ss->v;
    for (int32_t i = 0; i != -1; i = s[i].next) {
        int32_t id = ctok_find_token(v, t + s[i].off, s[i].n);
        if (id >= 0) {
            ids_push(ss->out, id);
            continue;
        }
        /* Byte fallback; a vocabulary without byte tokens gives <unk> (llama.cpp throws). */
        for (uint32_t j = 0; j < s[i].n; j++) {
            int32_t b = v->byte_id[(unsigned char)t[s[i].off + j]];
            if (b < 0) b = v->unk;
            if (b >= 0) ids_push(ss->out, b);
        }
    }
}

static void cached(session *ss, const char *w, size_t len,
                   void (*fn)(session *, const char *, size_t));

static void spm_tokenize(session *ss, const char *t, size_t len) {
    cached(ss, t, len, spm_tokenize_raw);
}

/* Escapes spaces as U+2581 (with an optional leading one) and runs SPM. */
static void spm_fragment(session *ss, const char *text, size_t len, bool prefix) {
    size_t need = (len + 1) * 3;
    if (need / 3 != len + 1 || !sess_reserve(ss, 0, need)) {
        ss->oom = true;
        return;
    }
    char *o = ss->buf;
    size_t n = 0;
    if (prefix) memcpy(o, "\xE2\x96\x81", 3), n = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(o + n, "\xE2\x96\x81", 3), n += 3;
        else o[n++] = text[i];
    }
    if (!ss->v->spm_split_words) {
        spm_tokenize(ss, o, n);
        return;
    }
    /* No token of this vocabulary has U+2581 after another character, so no merge can
     * cross the start of a word: merging each word on its own gives the same tokens as
     * merging the whole text at once, in O(words * word length) instead of one big heap. */
    size_t start = 0;
    for (size_t i = 3; i + 3 <= n; i++) {
        if (!memcmp(o + i, "\xE2\x96\x81", 3) && memcmp(o + i - 3, "\xE2\x96\x81", 3)) {
            spm_tokenize(ss, o + start, i - start);
            start = i;
            i += 2;
        }
    }
    spm_tokenize(ss, o + start, n - start);
}

/* ---------------------------------------------------------------- BPE */

static void bpe_try_pair(session *ss, int32_t l, int32_t r, bool append) {
    if (l < 0 || r < 0) return;
    int32_t rank, id;
    if (!ctok_merge_find(ss->v, ss->s[l].id, ss->s[r].id, &rank, &id)) return;
    cand c = {.key = (uint32_t)rank, .left = l, .a = ss->s[l].id, .b = ss->s[r].id};
    if (append) ss->h.v[ss->h.n++] = c;
    else if (!heap_push(&ss->h, c)) ss->oom = true;
}

static void bpe_emit(session *ss, int32_t id) {
    const celer_vocab *v = ss->v;
    if (id < v->n_tokens) {
        ids_push(ss->out, id);
        return;
    }
    /* Not a token (a merge produced text the vocabulary lacks): llama.cpp looks up each
     * byte of the encoded text on its own and drops what it does not find. */
    const char *s = ctok_str(v, id);
    for (uint32_t j = 0; j < ctok_len(v, id); j++) {
        int32_t b = ctok_find_token(v, s + j, 1);
        if (b >= 0) ids_push(ss->out, b);
    }
}

static void bpe_word_raw(session *ss, const unsigned char *w, size_t len) {
    const celer_vocab *v = ss->v;
    if (len == 0) return;
    if (v->ignore_merges) {
        /* A word that is a token as a whole is taken as is. */
        if (!sess_reserve(ss, 0, len * 2)) {
            ss->oom = true;
            return;
        }
        size_t n = 0;
        for (size_t i = 0; i < len; i++) n += ctok_utf8_encode(ctok_byte_to_cp(w[i]), ss->buf + n);
        int32_t id = ctok_find_token(v, ss->buf, n);
        if (id >= 0) {
            ids_push(ss->out, id);
            return;
        }
    }
    if (len > INT32_MAX / 2 || !sess_reserve(ss, len, 0) || !heap_reserve(&ss->h, len)) {
        ss->oom = true;
        return;
    }
    sym *s = ss->s;
    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++)
        s[i] = (sym){.prev = i - 1, .next = i + 1 < n ? i + 1 : -1, .id = v->byte_id[w[i]], .n = 1};
    ss->h.n = 0;
    for (int32_t i = 1; i < n; i++) bpe_try_pair(ss, i - 1, i, true);
    heapify(&ss->h);
    while (ss->h.n && !ss->oom) {
        cand c = heap_pop(&ss->h);
        sym *l = &s[c.left];
        /* Stale unless both symbols still hold the ids the pair was made of. */
        if (!l->n || l->next < 0 || l->id != c.a || s[l->next].id != c.b) continue;
        sym *r = &s[l->next];
        int32_t rank, id;
        ctok_merge_find(v, c.a, c.b, &rank, &id);
        l->id = id;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        bpe_try_pair(ss, l->prev, c.left, false);
        bpe_try_pair(ss, c.left, l->next, false);
    }
    for (int32_t i = 0; i != -1; i = s[i].next) bpe_emit(ss, s[i].id);
}

/* Runs fn on a word, or replays its ids if the same bytes were seen before. */
static void cached(session *ss, const char *w, size_t len,
                   void (*fn)(session *, const char *, size_t)) {
    if (len == 0 || len > WC_MAX_WORD) {
        fn(ss, w, len);
        return;
    }
    uint32_t h = ctok_hash_bytes(w, len);
    const wc_slot *e = wc_find(&ss->wc, w, len, h);
    if (e) {
        for (uint32_t k = 0; k < e->n_ids; k++) ids_push(ss->out, ss->wc.ids.v[e->ids + k]);
        return;
    }
    size_t start = ss->out->n;
    fn(ss, w, len);
    if (!ss->oom && !ss->out->oom) wc_add(&ss->wc, w, len, h, ss->out->v + start, ss->out->n - start);
}

static void bpe_word_fn(session *ss, const char *w, size_t len) {
    bpe_word_raw(ss, (const unsigned char *)w, len);
}

static void bpe_word(session *ss, const unsigned char *w, size_t len) {
    cached(ss, (const char *)w, len, bpe_word_fn);
}

static void bpe_fragment(session *ss, const char *text, size_t len) {
    ctok_spans words = {0};
    if (!ctok_pretokenize(&ss->v->re, text, len, &words)) {
        ss->oom = true;
    } else {
        for (size_t i = 0; i < words.n && !ss->oom; i++)
            bpe_word(ss, (const unsigned char *)text + words.v[i].off, words.v[i].len);
    }
    free(words.v);
}

/* ---------------------------------------------------------------- WordPiece */

static bool is_chinese_cp(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Greedy longest match of one word (with its U+2581 prefix) as llama.cpp's WPM. */
static void wpm_word(session *ss, const char *w, size_t n) {
    const celer_vocab *v = ss->v;
    size_t start = ss->out->n;
    for (size_t i = 0; i < n;) {
        size_t j = i + (size_t)v->max_token_len + 1 < n ? i + (size_t)v->max_token_len + 1 : n;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = ctok_find_token(v, w + i, j - i)) >= 0) break;
        if (id < 0) { /* no token fits here: the whole word becomes <unk> */
            ss->out->n = start;
            break;
        }
        ids_push(ss->out, id);
        i = j;
    }
    if (ss->out->n == start && v->unk >= 0) ids_push(ss->out, v->unk);
}

static void wpm_fragment(session *ss, const char *text, size_t len) {
    /* Normalise (accents stripped, lowercase), split at whitespace, and make punctuation,
     * ASCII symbols and CJK ideographs words of their own. */
    if (!sess_reserve(ss, 0, len * 4 + 8)) {
        ss->oom = true;
        return;
    }
    char *word = ss->buf;
    size_t wn = 3;
    memcpy(word, "\xE2\x96\x81", 3);
    for (size_t i = 0; i <= len && !ss->oom;) {
        int32_t cp = -1;
        size_t k = 1;
        bool end = i == len;
        if (!end) {
            k = ctok_utf8_decode((const unsigned char *)text + i, len - i, &cp);
            if (cp < 0) cp = 0xFFFD; /* invalid bytes are dropped like U+FFFD */
        }
        i += k;
        uint32_t c = end ? 0x20 : ctok_cp_strip_accent((uint32_t)cp);
        char cat = end ? 'Z' : ctok_cp_category(c);
        if (end || ctok_cp_is_whitespace(c)) {
            if (wn > 3) wpm_word(ss, word, wn);
            wn = 3;
            continue;
        }
        if (c == 0 || c == 0xFFFD || cat == 'C') continue;
        char enc[4];
        size_t el = ctok_utf8_encode(ctok_cp_tolower(c), enc);
        if (cat == 'P' || (c < 0x7F && cat == 'S') || is_chinese_cp(c)) {
            if (wn > 3) wpm_word(ss, word, wn);
            memcpy(word + 3, enc, el);
            wpm_word(ss, word, 3 + el);
            wn = 3;
        } else {
            memcpy(word + wn, enc, el);
            wn += el;
        }
    }
}

/* ---------------------------------------------------------------- public */

int32_t celer_tokenize(const celer_vocab *v, const char *text, size_t len, int32_t *out,
                       int32_t cap, bool add_special, bool parse_special) {
    if (!v || (!text && len) || cap < 0 || (!out && cap > 0)) return INT32_MIN;
    if (!text) text = "";
    frags fr = {0};
    if (!partition(v, text, len, parse_special, &fr)) return INT32_MIN;
    idbuf ids = {0};
    session ss = {.v = v, .out = &ids};
    if (add_special && v->add_bos && v->bos >= 0 && v->kind != CTOK_WPM) ids_push(&ids, v->bos);
    if (add_special && v->kind == CTOK_WPM && v->bos >= 0) ids_push(&ids, v->bos);
    bool prev_special = true; /* SPM: a space prefix at the start and after special tokens */
    for (size_t i = 0; i < fr.n && !ss.oom; i++) {
        const frag *f = &fr.v[i];
        if (f->token >= 0) {
            ids_push(&ids, f->token);
            prev_special = true;
            continue;
        }
        switch (v->kind) {
        case CTOK_SPM: spm_fragment(&ss, text + f->off, f->len, v->add_space_prefix && prev_special); break;
        case CTOK_BPE: bpe_fragment(&ss, text + f->off, f->len); break;
        case CTOK_WPM: wpm_fragment(&ss, text + f->off, f->len); break;
        }
        prev_special = false;
    }
    if (add_special && v->kind != CTOK_WPM && v->add_eos && v->eos >= 0) ids_push(&ids, v->eos);
    if (add_special && v->kind == CTOK_WPM && v->sep >= 0) ids_push(&ids, v->sep);
    free(fr.v);
    wc_free(&ss.wc);
    free(ss.h.v);
    free(ss.s);
    free(ss.buf);
    int32_t result;
    if (ss.oom || ids.oom || ids.n > INT32_MAX) {
        result = INT32_MIN;
    } else if (ids.n > (size_t)cap) {
        result = -(int32_t)ids.n;
    } else {
        if (ids.n) memcpy(out, ids.v, ids.n * sizeof *out);
        result = (int32_t)ids.n;
    }
    free(ids.v);
    return result;
}
