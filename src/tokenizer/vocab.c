/*
 * Vocabulary loading: from GGUF metadata (tokenizer.ggml.*) or a llama2.c tokenizer file,
 * into the hash tables that tokenization needs, following llama.cpp's llama_vocab::load for
 * defaults, special ids, end-of-generation tokens and per-model token attributes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

/* ---------------------------------------------------------------- hashing */

uint32_t ctok_hash_bytes(const char *s, size_t n) {
    /* 8 bytes at a time, multiply-xorshift mixing; tokens are short. */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

/* Capacity for n entries at a load factor of at most about 2/3. */
static uint32_t table_cap(uint32_t n) {
    uint32_t cap = 16;
    while (cap < n + n / 2 + 16) cap <<= 1;
    return cap;
}

static bool strmap_init(ctok_strmap *m, uint32_t n_expected) {
    uint32_t cap = table_cap(n_expected);
    m->slots = malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (uint32_t i = 0; i < cap; i++) m->slots[i] = (ctok_strslot){0, -1};
    m->mask = cap - 1;
    m->count = 0;
    return true;
}

static void strmap_free(ctok_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static bool str_eq(const celer_vocab *v, int32_t id, const char *s, size_t len) {
    return ctok_len(v, id) == len && memcmp(ctok_str(v, id), s, len) == 0;
}

int32_t ctok_find(const celer_vocab *v, const char *s, size_t len) {
    if (!v->map.slots) return -1;
    uint32_t h = ctok_hash_bytes(s, len);
    for (uint32_t i = h & v->map.mask;; i = (i + 1) & v->map.mask) {
        ctok_strslot e = v->map.slots[i];
        if (e.id < 0) return -1;
        if (e.hash == h && str_eq(v, e.id, s, len)) return e.id;
    }
}

static bool strmap_grow(celer_vocab *v);

/* Points the string's bytes at id; a later id with the same bytes replaces an earlier one
 * (llama.cpp's token_to_id[word] = i). */
static bool strmap_put(celer_vocab *v, int32_t id) {
    if ((v->map.count + 1) * 3 > (v->map.mask + 1) * 2 && !strmap_grow(v)) return false;
    const char *s = ctok_str(v, id);
    size_t len = ctok_len(v, id);
    uint32_t h = ctok_hash_bytes(s, len);
    for (uint32_t i = h & v->map.mask;; i = (i + 1) & v->map.mask) {
        ctok_strslot *e = &v->map.slots[i];
        if (e->id < 0) {
            *e = (ctok_strslot){h, id};
            v->map.count++;
            return true;
        }
        if (e->hash == h && str_eq(v, e->id, s, len)) {
            e->id = id;
            return true;
        }
    }
}

static bool strmap_grow(celer_vocab *v) {
    ctok_strmap old = v->map;
    if (!strmap_init(&v->map, old.mask + 1)) {
        v->map = old;
        return false;
    }
    for (uint32_t i = 0; i <= old.mask; i++) {
        ctok_strslot e = old.slots[i];
        if (e.id < 0) continue;
        uint32_t j = e.hash & v->map.mask;
        while (v->map.slots[j].id >= 0) j = (j + 1) & v->map.mask;
        v->map.slots[j] = e;
        v->map.count++;
    }
    strmap_free(&old);
    return true;
}

/* Appends a string to the arena; returns its id or -1 when out of memory. */
static int32_t add_string(celer_vocab *v, const char *s, size_t len) {
    if (v->n_strings == v->cap_strings) {
        int32_t cap = v->cap_strings ? v->cap_strings * 2 : 1024;
        uint32_t *off = realloc(v->str_off, ((size_t)cap + 1) * sizeof *off);
        if (!off) return -1;
        v->str_off = off;
        v->cap_strings = cap;
    }
    if (v->arena_len + len > v->arena_cap) {
        size_t cap = v->arena_cap ? v->arena_cap : 4096;
        while (cap < v->arena_len + len) cap *= 2;
        char *a = realloc(v->arena, cap);
        if (!a) return -1;
        v->arena = a;
        v->arena_cap = cap;
    }
    if (v->arena_len + len > UINT32_MAX) return -1;
    if (len) memcpy(v->arena + v->arena_len, s, len);
    int32_t id = v->n_strings++;
    /* Strings are contiguous: string id is arena[str_off[id], str_off[id + 1]). */
    v->str_off[id] = (uint32_t)v->arena_len;
    v->arena_len += len;
    v->str_off[id + 1] = (uint32_t)v->arena_len;
    return id;
}

/* Id of a string, adding it as a virtual (non-token) string if absent. */
static int32_t find_or_add_virtual(celer_vocab *v, const char *s, size_t len) {
    int32_t id = ctok_find(v, s, len);
    if (id >= 0) return id;
    id = add_string(v, s, len);
    if (id < 0 || !strmap_put(v, id)) return -1;
    return id;
}

/* ---------------------------------------------------------------- merges */

static bool merges_init(celer_vocab *v, uint32_t n) {
    uint32_t cap = table_cap(n);
    v->merges = calloc(cap, sizeof *v->merges);
    if (!v->merges) return false;
    v->merge_mask = cap - 1;
    return true;
}

/* The first occurrence of a pair keeps its rank (llama.cpp's bpe_ranks.emplace). */
static void merges_put(celer_vocab *v, int32_t left, int32_t right, int32_t rank, int32_t id) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (uint32_t i = (uint32_t)mix64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        if (v->merges[i].key == key) return;
        if (v->merges[i].key == 0) {
            v->merges[i].key = key;
            v->merges[i].rank = rank;
            v->merges[i].id = id;
            v->n_merges++;
            return;
        }
    }
}

bool ctok_merge_find(const celer_vocab *v, int32_t left, int32_t right, int32_t *rank,
                     int32_t *result) {
    if (!v->merges) return false;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (uint32_t i = (uint32_t)mix64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        if (v->merges[i].key == key) {
            *rank = v->merges[i].rank;
            *result = v->merges[i].id;
            return true;
        }
        if (v->merges[i].key == 0) return false;
    }
}

/* ---------------------------------------------------------------- building */

static celer_vocab *vocab_new(int32_t n_tokens) {
    celer_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->n_tokens = n_tokens;
    v->scores = calloc((size_t)n_tokens + 1, sizeof *v->scores);
    v->types = calloc((size_t)n_tokens + 1, sizeof *v->types);
    v->attrs = calloc((size_t)n_tokens + 1, sizeof *v->attrs);
    if (!v->scores || !v->types || !v->attrs || !strmap_init(&v->map, (uint32_t)n_tokens + 512)) {
        celer_vocab_free(v);
        return NULL;
    }
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask_id = v->nl = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    for (int i = 0; i < 256; i++) v->byte_id[i] = -1;
    return v;
}

void celer_vocab_free(celer_vocab *v) {
    if (!v) return;
    ctok_regexes_free(&v->re);
    strmap_free(&v->map);
    free(v->arena);
    free(v->str_off);
    free(v->scores);
    free(v->types);
    free(v->attrs);
    free(v->merges);
    free(v->eog);
    free(v->special_ids);
    free(v->piece_arena);
    free(v->piece_off);
    free(v);
}

static uint32_t attr_of_type(int32_t type) {
    switch (type) {
    case CELER_TOKEN_NORMAL: return CTOK_ATTR_NORMAL;
    case CELER_TOKEN_UNKNOWN: return CTOK_ATTR_UNKNOWN;
    case CELER_TOKEN_CONTROL: return CTOK_ATTR_CONTROL;
    case CELER_TOKEN_USER_DEFINED: return CTOK_ATTR_USER_DEFINED;
    case CELER_TOKEN_UNUSED: return CTOK_ATTR_UNUSED;
    case CELER_TOKEN_BYTE: return CTOK_ATTR_BYTE;
    default: return CTOK_ATTR_UNDEFINED;
    }
}

/* Adds token i (texts must be added in id order, 0..n_tokens-1). */
static bool add_token(celer_vocab *v, const char *s, size_t len, float score, int32_t type) {
    char tmp[32];
    int32_t i = v->n_strings;
    if (len == 0) { /* llama.cpp renames empty tokens so each text stays unique */
        len = (size_t)snprintf(tmp, sizeof tmp, "[EMPTY_%d]", (int)i);
        s = tmp;
    }
    if (add_string(v, s, len) != i || !strmap_put(v, i)) return false;
    v->scores[i] = score;
    v->types[i] = type;
    v->attrs[i] = attr_of_type(type);
    if ((int32_t)len > v->max_token_len) v->max_token_len = (int32_t)len;
    return true;
}

static void set_control(celer_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n_tokens) return;
    if (!(v->attrs[id] & CTOK_ATTR_CONTROL)) {
        v->attrs[id] = CTOK_ATTR_CONTROL | (v->attrs[id] & (CTOK_ATTR_LSTRIP | CTOK_ATTR_RSTRIP));
        v->types[id] = CELER_TOKEN_CONTROL;
    }
}

static int32_t find_cstr(const celer_vocab *v, const char *s) { return ctok_find_token(v, s, strlen(s)); }

/* First of the candidate texts present in the vocabulary, or -1. */
static int32_t find_any(const celer_vocab *v, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find_cstr(v, *names);
        if (id >= 0) return id;
    }
    return -1;
}

static bool eog_add(celer_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n_tokens) return true;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return true;
    int32_t *e = realloc(v->eog, ((size_t)v->n_eog + 1) * sizeof *e);
    if (!e) return false;
    v->eog = e;
    v->eog[v->n_eog++] = id;
    return true;
}

/* EOT/EOM/FIM tokens found by their text when the file does not name them, and the set of
 * end-of-generation tokens, as llama.cpp does. */
static bool detect_specials(celer_vocab *v) {
    static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>",
                                            "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                            "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};
    static const char *const eom_names[] = {"<|eom_id|>", NULL};
    static const char *const pre_names[] = {"<|fim_prefix|>", "<fim-prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", NULL};
    static const char *const suf_names[] = {"<|fim_suffix|>", "<fim-suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", NULL};
    static const char *const mid_names[] = {"<|fim_middle|>", "<fim-middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
    static const char *const pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const sep_names[] = {"<|file_sep|>", NULL};
    static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};
    struct { int32_t *id; const char *const *names; } auto_ids[] = {
        {&v->eot, eot_names}, {&v->eom, eom_names}, {&v->fim_pre, pre_names},
        {&v->fim_suf, suf_names}, {&v->fim_mid, mid_names}, {&v->fim_pad, pad_names},
        {&v->fim_rep, rep_names}, {&v->fim_sep, sep_names},
    };
    for (size_t k = 0; k < sizeof auto_ids / sizeof auto_ids[0]; k++) {
        if (*auto_ids[k].id >= 0) continue;
        int32_t id = find_any(v, auto_ids[k].names);
        if (id >= 0) {
            *auto_ids[k].id = id;
            set_control(v, id);
        }
    }
    bool ok = eog_add(v, v->fim_pad) && eog_add(v, v->fim_rep) && eog_add(v, v->fim_sep);
    for (const char *const *n = eog_names; *n; n++) {
        int32_t id = find_cstr(v, *n);
        if (id >= 0) {
            ok = ok && eog_add(v, id);
            set_control(v, id);
        }
    }
    return ok && eog_add(v, v->eos) && eog_add(v, v->eot) && eog_add(v, v->eom);
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

static int cmp_len_id(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Control, user-defined and unknown tokens, longest text first (ties: lower id first; the
 * order of equal lengths is unspecified in llama.cpp and only matters for overlapping texts). */
static bool build_special_cache(celer_vocab *v) {
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->attrs[i] & (CTOK_ATTR_CONTROL | CTOK_ATTR_USER_DEFINED | CTOK_ATTR_UNKNOWN)) n++;
    v->special_ids = malloc(((size_t)n + 1) * sizeof *v->special_ids);
    len_id *tmp = malloc(((size_t)n + 1) * sizeof *tmp);
    if (!v->special_ids || !tmp) {
        free(tmp);
        return false;
    }
    v->n_special = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->attrs[i] & (CTOK_ATTR_CONTROL | CTOK_ATTR_USER_DEFINED | CTOK_ATTR_UNKNOWN))
            tmp[v->n_special++] = (len_id){ctok_len(v, i), i};
    qsort(tmp, (size_t)v->n_special, sizeof *tmp, cmp_len_id);
    for (int32_t i = 0; i < v->n_special; i++) v->special_ids[i] = tmp[i].id;
    free(tmp);
    return true;
}

/* Per-model attributes llama.cpp sets by name (the files do not carry them). */
static void set_model_attrs(celer_vocab *v, const char *model_name, const char *pre) {
    char lower[256];
    size_t n = strlen(model_name);
    if (n >= sizeof lower) n = sizeof lower - 1;
    for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)model_name[i]);
    lower[n] = 0;
    if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code")) {
        int32_t id = find_cstr(v, "<mask>");
        if (id >= 0) v->attrs[id] |= CTOK_ATTR_LSTRIP;
    } else if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (int32_t i = 0; i < v->n_special; i++) v->attrs[v->special_ids[i]] |= CTOK_ATTR_RSTRIP;
        int32_t id = find_cstr(v, "</s>");
        if (id >= 0) v->attrs[id] |= CTOK_ATTR_RSTRIP;
        static const char *const plain[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++) {
            id = find_cstr(v, plain[i]);
            if (id >= 0) v->attrs[id] &= ~(uint32_t)CTOK_ATTR_RSTRIP;
        }
    }
}

/* Bytes of token id as text (special = true), written to out (which has room for
 * 4 * length + 64 bytes). */
static size_t piece_of(const celer_vocab *v, int32_t id, char *out) {
    uint32_t attr = v->attrs[id];
    const char *s = ctok_str(v, id);
    size_t len = ctok_len(v, id);
    if (attr & (CTOK_ATTR_UNKNOWN | CTOK_ATTR_CONTROL | CTOK_ATTR_USER_DEFINED)) {
        memcpy(out, s, len);
        return len;
    }
    if (v->kind == CTOK_BPE) {
        if (!(attr & CTOK_ATTR_NORMAL)) return 0;
        /* Undo the byte-level encoding; a code point that stands for no byte is shown as
         * llama.cpp shows it. */
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            int32_t cp;
            size_t k = ctok_utf8_decode((const unsigned char *)s + i, len - i, &cp);
            int b = cp >= 0 ? ctok_cp_to_byte((uint32_t)cp) : -1;
            if (b >= 0) {
                out[o++] = (char)b;
            } else {
                o += (size_t)sprintf(out + o, "[UNK_BYTE_0x");
                for (size_t j = 0; j < k; j++) o += (size_t)sprintf(out + o, "%02x", (unsigned char)s[i + j]);
                memcpy(out + o, s, len); /* llama.cpp appends the whole token text here */
                o += len;
                out[o++] = ']';
            }
            i += k;
        }
        return o;
    }
    /* SPM and WPM */
    if (attr & CTOK_ATTR_NORMAL) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (i + 2 < len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                (unsigned char)s[i + 2] == 0x81) {
                out[o++] = ' ';
                i += 2;
            } else {
                out[o++] = s[i];
            }
        }
        return o;
    }
    if (attr & CTOK_ATTR_BYTE) {
        if (len >= 4) { /* llama.cpp reads the two hex digits at offset 3 ("<0xAB>") */
            char hex[3] = {s[3], len > 4 ? s[4] : 0, 0};
            out[0] = (char)strtol(hex, NULL, 16);
            return 1;
        }
        /* A one-byte token text stands for itself. */
        if (len == 1) {
            out[0] = s[0];
            return 1;
        }
        return 0;
    }
    return 0;
}

static bool build_piece_cache(celer_vocab *v) {
    size_t total = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) total += (size_t)ctok_len(v, i) * 4 + 64;
    char *buf = malloc(total + 1);
    v->piece_off = malloc(((size_t)v->n_tokens + 1) * sizeof *v->piece_off);
    if (!buf || !v->piece_off || total > UINT32_MAX) {
        free(buf);
        return false;
    }
    size_t o = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        v->piece_off[i] = (uint32_t)o;
        o += piece_of(v, i, buf + o);
    }
    v->piece_off[v->n_tokens] = (uint32_t)o;
    char *shrunk = realloc(buf, o + 1);
    v->piece_arena = shrunk ? shrunk : buf;
    return true;
}

/* Everything after the token texts are in: byte ids, specials, caches, regexes. */
static celer_status finalize(celer_vocab *v, const char *model_name, const char *pre,
                             celer_error *err) {
    if (v->kind == CTOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char enc[4];
            size_t n = ctok_utf8_encode(ctok_byte_to_cp((uint8_t)b), enc);
            v->byte_id[b] = find_or_add_virtual(v, enc, n);
            if (v->byte_id[b] < 0) return celer_fail(err, CELER_ERR_NOMEM, "out of memory building the vocabulary");
        }
        v->nl = ctok_find_token(v, "\xC4\x8A", 2);
        if (v->nl < 0) v->nl = v->pad;
    } else if (v->kind == CTOK_SPM) {
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            int32_t id = find_cstr(v, name);
            if (id < 0) id = ctok_find_token(v, (const char[]){(char)b}, 1);
            v->byte_id[b] = id;
        }
        v->nl = v->byte_id['\n'] >= 0 ? v->byte_id['\n'] : v->pad;
        v->spm_split_words = true;
        for (int32_t i = 0; i < v->n_tokens && v->spm_split_words; i++) {
            const char *s = ctok_str(v, i);
            uint32_t len = ctok_len(v, i);
            for (uint32_t k = 3; k + 3 <= len; k++)
                if (!memcmp(s + k, "\xE2\x96\x81", 3) && memcmp(s + k - 3, "\xE2\x96\x81", 3)) {
                    v->spm_split_words = false;
                    break;
                }
        }
    } else {
        v->nl = v->pad;
    }
    if (!detect_specials(v) || !build_special_cache(v) || !build_piece_cache(v))
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory building the vocabulary");
    set_model_attrs(v, model_name, pre);
    if (v->kind == CTOK_BPE) return ctok_regexes_init(&v->re, v->pre, err);
    return CELER_OK;
}

/* ---------------------------------------------------------------- GGUF */

static bool gguf_cstr(const gguf_file *f, const char *key, char *out, size_t cap) {
    gguf_str s;
    out[0] = 0;
    if (!gguf_get_str(f, key, &s)) return false;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(out, s.data, n);
    out[n] = 0;
    return true;
}

typedef struct pre_name {
    const char *name;
    ctok_pre pre;
    int clean_spaces; /* -1 keep, 0/1 set */
    bool ignore_merges_add_bos;
} pre_name;

static const pre_name pre_names[] = {
    {"default", CTOK_PRE_DEFAULT, -1, false},
    {"llama3", CTOK_PRE_LLAMA3, -1, true},
    {"llama-v3", CTOK_PRE_LLAMA3, -1, true},
    {"llama-bpe", CTOK_PRE_LLAMA3, -1, true},
    {"falcon3", CTOK_PRE_LLAMA3, -1, true},
    {"deepseek-llm", CTOK_PRE_DEEPSEEK_LLM, 0, false},
    {"deepseek-coder", CTOK_PRE_DEEPSEEK_CODER, 0, false},
    {"deepseek-v3", CTOK_PRE_DEEPSEEK3, 0, false},
    {"falcon", CTOK_PRE_FALCON, -1, false},
    {"mpt", CTOK_PRE_GPT2, -1, false},
    {"starcoder", CTOK_PRE_STARCODER, -1, false},
    {"gpt-2", CTOK_PRE_GPT2, -1, false},
    {"phi-2", CTOK_PRE_GPT2, -1, false},
    {"jina-es", CTOK_PRE_GPT2, -1, false},
    {"jina-de", CTOK_PRE_GPT2, -1, false},
    {"gigachat", CTOK_PRE_GPT2, -1, false},
    {"jina-v1-en", CTOK_PRE_GPT2, -1, false},
    {"jina-v2-es", CTOK_PRE_GPT2, -1, false},
    {"jina-v2-de", CTOK_PRE_GPT2, -1, false},
    {"jina-v2-code", CTOK_PRE_GPT2, -1, false},
    {"roberta-bpe", CTOK_PRE_GPT2, -1, false},
    {"refact", CTOK_PRE_STARCODER, -1, false},
    {"command-r", CTOK_PRE_STARCODER, 0, false},
    {"qwen2", CTOK_PRE_QWEN2, 0, false},
    {"stablelm2", CTOK_PRE_QWEN2, -1, false},
    {"olmo", CTOK_PRE_GPT2, -1, false},
    {"dbrx", CTOK_PRE_LLAMA3, -1, false},
    {"smaug-bpe", CTOK_PRE_LLAMA3, -1, false},
    {"poro-chat", CTOK_PRE_PORO, 0, false},
    {"chatglm-bpe", CTOK_PRE_CHATGLM4, -1, false},
    {"viking", CTOK_PRE_VIKING, 0, false},
    {"jais", CTOK_PRE_GPT2, -1, false},
    {"tekken", CTOK_PRE_TEKKEN, 0, true},
    {"smollm", CTOK_PRE_STARCODER, 0, false},
    {"codeshell", CTOK_PRE_STARCODER, -1, false},
    {"bloom", CTOK_PRE_PORO, -1, false},
    {"gpt3-finnish", CTOK_PRE_PORO, -1, false},
    {"exaone", CTOK_PRE_STARCODER, -1, false},
    {"chameleon", CTOK_PRE_CHAMELEON, 0, false},
    {"minerva-7b", CTOK_PRE_STARCODER, -1, false},
    {"megrez", CTOK_PRE_QWEN2, -1, false},
};

static celer_status read_merges(const gguf_file *f, celer_vocab *v, celer_error *err) {
    gguf_array arr;
    if (!gguf_get_arr(f, "tokenizer.ggml.merges", &arr))
        return celer_fail(err, CELER_ERR_FORMAT, "BPE vocabulary without tokenizer.ggml.merges");
    if (arr.type != GGUF_TYPE_STRING)
        return celer_fail(err, CELER_ERR_FORMAT, "tokenizer.ggml.merges is not an array of strings");
    if (arr.n > INT32_MAX / 4) return celer_fail(err, CELER_ERR_FORMAT, "too many merges (%llu)", (unsigned long long)arr.n);
    if (!merges_init(v, (uint32_t)arr.n)) return celer_fail(err, CELER_ERR_NOMEM, "out of memory for %llu merges", (unsigned long long)arr.n);
    char *joined = NULL;
    size_t joined_cap = 0;
    for (uint64_t i = 0; i < arr.n; i++) {
        gguf_str s;
        if (!gguf_arr_str(&arr, i, &s)) {
            free(joined);
            return celer_fail(err, CELER_ERR_FORMAT, "cannot read merge %llu", (unsigned long long)i);
        }
        /* "left right", split at the first space after the first byte (llama.cpp: find(' ', 1));
         * a merge without one pairs two empty strings and can never apply. */
        const char *sp = s.len > 1 ? memchr(s.data + 1, ' ', (size_t)s.len - 1) : NULL;
        if (!sp) continue;
        size_t ll = (size_t)(sp - s.data), rl = (size_t)s.len - ll - 1;
        if (ll + rl > joined_cap) {
            joined_cap = (ll + rl) * 2 + 64;
            char *j = realloc(joined, joined_cap);
            if (!j) {
                free(joined);
                return celer_fail(err, CELER_ERR_NOMEM, "out of memory reading merges");
            }
            joined = j;
        }
        memcpy(joined, s.data, ll);
        memcpy(joined + ll, sp + 1, rl);
        int32_t a = find_or_add_virtual(v, s.data, ll);
        int32_t b = find_or_add_virtual(v, sp + 1, rl);
        int32_t c = find_or_add_virtual(v, joined, ll + rl);
        if (a < 0 || b < 0 || c < 0) {
            free(joined);
            return celer_fail(err, CELER_ERR_NOMEM, "out of memory reading merges");
        }
        merges_put(v, a, b, (int32_t)i, c);
    }
    free(joined);
    return CELER_OK;
}

static void read_special_id(const gguf_file *f, const celer_vocab *v, const char *key, int32_t *id) {
    uint32_t u;
    if (gguf_get_u32(f, key, &u) && u < (uint32_t)v->n_tokens) *id = (int32_t)u;
}

celer_status ctok_vocab_from_gguf(const gguf_file *f, celer_vocab **out, celer_error *err) {
    *out = NULL;
    char model[64], pre[64], name[256];
    if (!gguf_cstr(f, "tokenizer.ggml.model", model, sizeof model))
        return celer_fail(err, CELER_ERR_NOT_FOUND, "no tokenizer in this file (tokenizer.ggml.model missing)");
    gguf_cstr(f, "tokenizer.ggml.pre", pre, sizeof pre);
    gguf_cstr(f, "general.name", name, sizeof name);

    ctok_kind kind;
    if (!strcmp(model, "llama")) kind = CTOK_SPM;
    else if (!strcmp(model, "gpt2")) kind = CTOK_BPE;
    else if (!strcmp(model, "bert")) kind = CTOK_WPM;
    else if (!strcmp(model, "no_vocab") || !strcmp(model, "none"))
        return celer_fail(err, CELER_ERR_NOT_FOUND, "this file has no vocabulary (tokenizer.ggml.model = '%s')", model);
    else
        return celer_fail(err, CELER_ERR_UNSUPPORTED, "unsupported tokenizer model '%s' (celer knows llama, gpt2, bert)", model);

    gguf_array toks, scores, types;
    if (!gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) || toks.type != GGUF_TYPE_STRING)
        return celer_fail(err, CELER_ERR_FORMAT, "tokenizer.ggml.tokens missing or not an array of strings");
    if (toks.n == 0 || toks.n > (1u << 24))
        return celer_fail(err, CELER_ERR_FORMAT, "bad vocabulary size %llu", (unsigned long long)toks.n);
    bool have_scores = gguf_get_arr(f, "tokenizer.ggml.scores", &scores);
    bool have_types = gguf_get_arr(f, "tokenizer.ggml.token_type", &types);
    if (have_scores && scores.n != toks.n)
        return celer_fail(err, CELER_ERR_FORMAT, "tokenizer.ggml.scores has %llu entries for %llu tokens", (unsigned long long)scores.n, (unsigned long long)toks.n);
    if (have_types && types.n != toks.n)
        return celer_fail(err, CELER_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens", (unsigned long long)types.n, (unsigned long long)toks.n);

    int32_t n = (int32_t)toks.n;
    celer_vocab *v = vocab_new(n);
    if (!v) return celer_fail(err, CELER_ERR_NOMEM, "out of memory for a %d-token vocabulary", n);
    v->kind = kind;
    /* model is one of the three names checked above, all shorter than model_name */
    memcpy(v->model_name, model, strlen(model) + 1);
    celer_status st = CELER_OK;
    for (int32_t i = 0; i < n; i++) {
        gguf_str s;
        double sc = 0;
        int64_t ty = CELER_TOKEN_NORMAL;
        if (!gguf_arr_str(&toks, (uint64_t)i, &s) || s.len > (1u << 20)) {
            st = celer_fail(err, CELER_ERR_FORMAT, "cannot read token %d", i);
            goto fail;
        }
        if (have_scores && !gguf_arr_f64(&scores, (uint64_t)i, &sc)) {
            st = celer_fail(err, CELER_ERR_FORMAT, "cannot read the score of token %d", i);
            goto fail;
        }
        if (have_types && !gguf_arr_i64(&types, (uint64_t)i, &ty)) {
            st = celer_fail(err, CELER_ERR_FORMAT, "cannot read the type of token %d", i);
            goto fail;
        }
        if (!add_token(v, s.data, (size_t)s.len, (float)sc, (int32_t)ty)) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory reading tokens");
            goto fail;
        }
    }

    /* Defaults per model, then what the file says. */
    switch (kind) {
    case CTOK_SPM:
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = true, v->add_bos = true;
        break;
    case CTOK_WPM:
        v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask_id = 103;
        v->add_bos = true, v->clean_spaces = true;
        break;
    case CTOK_BPE: {
        v->bos = 11, v->eos = 11;
        v->clean_spaces = true;
        v->pre = CTOK_PRE_DEFAULT;
        if (pre[0]) {
            size_t k;
            for (k = 0; k < sizeof pre_names / sizeof pre_names[0]; k++)
                if (!strcmp(pre, pre_names[k].name)) break;
            if (k == sizeof pre_names / sizeof pre_names[0]) {
                st = celer_fail(err, CELER_ERR_UNSUPPORTED, "unknown pre-tokenizer type '%s'", pre);
                goto fail;
            }
            v->pre = pre_names[k].pre;
            if (pre_names[k].clean_spaces >= 0) v->clean_spaces = pre_names[k].clean_spaces;
            if (pre_names[k].ignore_merges_add_bos) v->ignore_merges = v->add_bos = true;
            if (!strcmp(pre, "chameleon")) v->add_bos = true;
            if (!strcmp(pre, "chatglm-bpe")) v->bos = -1;
        }
        if ((st = read_merges(f, v, err))) goto fail;
        break;
    }
    }
    if (v->bos >= n) v->bos = -1; /* defaults beyond a small vocabulary */
    if (v->eos >= n) v->eos = -1;
    if (v->unk >= n) v->unk = -1;
    if (v->sep >= n) v->sep = -1;
    if (v->pad >= n) v->pad = -1;
    if (v->mask_id >= n) v->mask_id = -1;

    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
    static const struct { const char *key; size_t off; } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(celer_vocab, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(celer_vocab, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(celer_vocab, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(celer_vocab, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(celer_vocab, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(celer_vocab, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(celer_vocab, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(celer_vocab, mask_id)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(celer_vocab, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(celer_vocab, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(celer_vocab, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(celer_vocab, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(celer_vocab, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(celer_vocab, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(celer_vocab, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(celer_vocab, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(celer_vocab, fim_mid)},
    };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        read_special_id(f, v, ids[k].key, (int32_t *)((char *)v + ids[k].off));
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (v->add_bos && v->bos < 0) v->add_bos = false;
    if (v->add_eos && v->eos < 0) v->add_eos = false;

    if ((st = finalize(v, name, pre, err))) goto fail;
    *out = v;
    return CELER_OK;
fail:
    celer_vocab_free(v);
    return st;
}

/* ---------------------------------------------------------------- llama2.c */

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static celer_status read_whole_file(const char *path, unsigned char **data, size_t *size, celer_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return celer_fail(err, CELER_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= ((size_t)1 << 31)) break;
            unsigned char *b = realloc(buf, cap * 2);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    bool bad = ferror(fp) || !buf || n == cap;
    fclose(fp);
    if (bad) {
        free(buf);
        return celer_fail(err, CELER_ERR_IO, "cannot read '%s'", path);
    }
    *data = buf;
    *size = n;
    return CELER_OK;
}

/* Builds an SPM vocabulary from llama2.c's format. Texts use plain spaces there; they are
 * stored with U+2581 as in GGUF, ids 1 and 2 ("\n<s>\n", "\n</s>\n") become <s> and </s>. */
static celer_status vocab_from_llama2c_buf(const unsigned char *p, size_t size, int32_t n_vocab,
                                           const char *path, celer_vocab **out, celer_error *err) {
    if (size < 4) return celer_fail(err, CELER_ERR_FORMAT, "'%s': too short for a llama2.c tokenizer", path);
    int32_t max_len = (int32_t)rd_u32(p);
    if (max_len <= 0 || max_len > (1 << 16))
        return celer_fail(err, CELER_ERR_FORMAT, "'%s': bad max_token_length %d (not a llama2.c tokenizer?)", path, max_len);
    /* Count the records (and check the file) first. */
    size_t off = 4;
    int32_t n = 0;
    while (off < size && (n_vocab <= 0 || n < n_vocab)) {
        if (size - off < 8) return celer_fail(err, CELER_ERR_FORMAT, "'%s': truncated at token %d", path, n);
        int32_t len = (int32_t)rd_u32(p + off + 4);
        if (len < 0 || len > max_len || (size_t)len > size - off - 8)
            return celer_fail(err, CELER_ERR_FORMAT, "'%s': token %d has bad length %d", path, n, len);
        off += 8 + (size_t)len;
        n++;
        if (n > (1 << 24)) return celer_fail(err, CELER_ERR_FORMAT, "'%s': too many tokens", path);
    }
    if (n_vocab > 0 && n < n_vocab)
        return celer_fail(err, CELER_ERR_FORMAT, "'%s' has %d tokens, the model needs %d", path, n, n_vocab);
    if (n < 3) return celer_fail(err, CELER_ERR_FORMAT, "'%s': only %d tokens", path, n);

    celer_vocab *v = vocab_new(n);
    if (!v) return celer_fail(err, CELER_ERR_NOMEM, "out of memory for a %d-token vocabulary", n);
    v->kind = CTOK_SPM;
    memcpy(v->model_name, "llama", 6);
    char *tmp = malloc((size_t)max_len * 3 + 16);
    if (!tmp) {
        celer_vocab_free(v);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    off = 4;
    celer_status st = CELER_OK;
    for (int32_t i = 0; i < n; i++) {
        float score;
        uint32_t bits = rd_u32(p + off);
        memcpy(&score, &bits, sizeof score);
        size_t len = rd_u32(p + off + 4);
        const char *s = (const char *)p + off + 8;
        off += 8 + len;
        size_t o = 0;
        for (size_t k = 0; k < len; k++) {
            if (s[k] == ' ') {
                memcpy(tmp + o, "\xE2\x96\x81", 3);
                o += 3;
            } else {
                tmp[o++] = s[k];
            }
        }
        int32_t type = CELER_TOKEN_NORMAL;
        if (i == 0) type = CELER_TOKEN_UNKNOWN;
        else if (i == 1 || i == 2) type = CELER_TOKEN_CONTROL;
        else if (o == 6 && !memcmp(tmp, "<0x", 3) && tmp[5] == '>' && isxdigit((unsigned char)tmp[3]) && isxdigit((unsigned char)tmp[4])) type = CELER_TOKEN_BYTE;
        if (i == 1 && o == 5 && !memcmp(tmp, "\n<s>\n", 5)) o = (size_t)sprintf(tmp, "<s>");
        if (i == 2 && o == 6 && !memcmp(tmp, "\n</s>\n", 6)) o = (size_t)sprintf(tmp, "</s>");
        if (!add_token(v, tmp, o, score, type)) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory reading tokens");
            break;
        }
    }
    free(tmp);
    if (!st) {
        v->bos = 1, v->eos = 2, v->unk = 0;
        v->add_space_prefix = true, v->add_bos = true;
        st = finalize(v, "llama2.c", "", err);
    }
    if (st) {
        celer_vocab_free(v);
        return st;
    }
    *out = v;
    return CELER_OK;
}

celer_status ctok_vocab_from_llama2c(const char *path, int32_t n_vocab, celer_vocab **out,
                                     celer_error *err) {
    if (!path || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "ctok_vocab_from_llama2c: NULL argument");
    *out = NULL;
    unsigned char *data = NULL;
    size_t size = 0;
    celer_status st = read_whole_file(path, &data, &size, err);
    if (st) return st;
    st = vocab_from_llama2c_buf(data, size, n_vocab, path, out, err);
    free(data);
    return st;
}

celer_status celer_vocab_load(const char *path, celer_vocab **out, celer_error *err) {
    if (!path || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "celer_vocab_load: NULL argument");
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return celer_fail(err, CELER_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got == 4 && !memcmp(magic, GGUF_MAGIC, 4)) {
        gguf_file *f;
        celer_status st = gguf_open(path, &f, err);
        if (st) return st;
        st = ctok_vocab_from_gguf(f, out, err);
        gguf_close(f);
        if (st) celer_fail_prefix(err, "%s", path);
        return st;
    }
    return ctok_vocab_from_llama2c(path, 0, out, err);
}

/* ---------------------------------------------------------------- accessors */

int32_t celer_vocab_n_tokens(const celer_vocab *v) { return v ? v->n_tokens : 0; }
int32_t celer_vocab_bos(const celer_vocab *v) { return v ? v->bos : -1; }
int32_t celer_vocab_eos(const celer_vocab *v) { return v ? v->eos : -1; }
int32_t celer_vocab_eot(const celer_vocab *v) { return v ? v->eot : -1; }
bool celer_vocab_add_bos(const celer_vocab *v) { return v && v->add_bos; }
bool celer_vocab_add_eos(const celer_vocab *v) { return v && v->add_eos; }

bool celer_vocab_is_eog(const celer_vocab *v, int32_t token) {
    if (!v || token < 0) return false;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == token) return true;
    return false;
}

int32_t celer_vocab_token_type(const celer_vocab *v, int32_t token) {
    if (!v || token < 0 || token >= v->n_tokens) return -1;
    return v->types[token];
}

const char *celer_vocab_model(const celer_vocab *v) { return v ? v->model_name : NULL; }

const char *celer_vocab_token_text(const celer_vocab *v, int32_t token, size_t *len) {
    if (!v || token < 0 || token >= v->n_tokens) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = ctok_len(v, token);
    return ctok_str(v, token);
}

int32_t celer_vocab_find(const celer_vocab *v, const char *text, size_t len) {
    if (!v || (!text && len)) return -1;
    return ctok_find_token(v, text ? text : "", len);
}

float celer_vocab_token_score(const celer_vocab *v, int32_t token) {
    if (!v || token < 0 || token >= v->n_tokens) return 0.0f;
    return v->scores[token];
}
