/*
 * Tokenizer internals shared by the files of src/tokenizer/.
 *
 * A vocabulary holds every token's bytes in one arena, a hash table from bytes to id, the
 * BPE merges as a hash table from (left id, right id) to (rank, merged id), the special ids,
 * and a cache of each token's piece (the text it stands for). Everything is built once at
 * load time and read-only afterwards, so one vocabulary may tokenize from many threads.
 *
 * The algorithms follow llama.cpp's llama-vocab.cpp so that the ids are the same:
 *   - SPM ("llama"): escape spaces as U+2581, optional space prefix, split into UTF-8 chars,
 *     repeatedly merge the adjacent pair whose concatenation is the best-scored token
 *     (ties: leftmost), byte fallback (<0xXX>) for what is left over.
 *   - BPE ("gpt2"): pre-tokenize with the regular expressions of tokenizer.ggml.pre, map
 *     bytes to GPT-2's printable code points, repeatedly merge the adjacent pair with the
 *     lowest merge rank (ties: leftmost).
 *   - WPM ("bert"): lowercase, strip accents, split at whitespace and punctuation, greedy
 *     longest match with a U+2581 word prefix.
 */
#ifndef CELER_TOK_INTERNAL_H
#define CELER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "celer.h"

/* Token attributes as llama.cpp keeps them (bit flags). */
enum {
    CTOK_ATTR_UNDEFINED = 0,
    CTOK_ATTR_UNKNOWN = 1 << 0,
    CTOK_ATTR_UNUSED = 1 << 1,
    CTOK_ATTR_NORMAL = 1 << 2,
    CTOK_ATTR_CONTROL = 1 << 3,
    CTOK_ATTR_USER_DEFINED = 1 << 4,
    CTOK_ATTR_BYTE = 1 << 5,
    CTOK_ATTR_LSTRIP = 1 << 7,
    CTOK_ATTR_RSTRIP = 1 << 8,
};

typedef enum ctok_kind {
    CTOK_SPM = 1,
    CTOK_BPE = 2,
    CTOK_WPM = 3,
} ctok_kind;

/* Pre-tokenizer families (tokenizer.ggml.pre), each a list of regular expressions. */
typedef enum ctok_pre {
    CTOK_PRE_DEFAULT = 0,
    CTOK_PRE_LLAMA3,
    CTOK_PRE_DEEPSEEK_LLM,
    CTOK_PRE_DEEPSEEK_CODER,
    CTOK_PRE_DEEPSEEK3,
    CTOK_PRE_FALCON,
    CTOK_PRE_STARCODER,
    CTOK_PRE_GPT2,
    CTOK_PRE_QWEN2,
    CTOK_PRE_PORO,
    CTOK_PRE_CHATGLM4,
    CTOK_PRE_VIKING,
    CTOK_PRE_TEKKEN,
    CTOK_PRE_CHAMELEON,
    CTOK_PRE_COUNT
} ctok_pre;

#define CTOK_MAX_REGEX 8

/* Open-addressing hash table from byte strings (held in the vocab's arena) to ids. */
typedef struct ctok_strslot {
    uint32_t hash;
    int32_t id; /* -1 = empty */
} ctok_strslot;

typedef struct ctok_strmap {
    ctok_strslot *slots;
    uint32_t mask;
    uint32_t count;
} ctok_strmap;

/* Open-addressing hash table from (left id, right id) to (rank, merged id). */
typedef struct ctok_merge_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t id;
} ctok_merge_slot;

typedef struct ctok_regexes {
    int n;
    void *code[CTOK_MAX_REGEX]; /* pcre2_code_8 *, or NULL for a hand-written splitter */
    int special[CTOK_MAX_REGEX]; /* CTOK_RE_* for hand-written splitters */
} ctok_regexes;

enum { CTOK_RE_PCRE = 0, CTOK_RE_TRAILING_SPACE = 1 };

struct celer_vocab {
    ctok_kind kind;
    ctok_pre pre;
    char model_name[16];

    int32_t n_tokens;  /* real tokens */
    int32_t n_strings; /* real + virtual (merge intermediates that are not tokens) */
    int32_t cap_strings;
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *str_off; /* [cap_strings + 1] */
    float *scores;     /* [n_tokens] */
    int32_t *types;    /* [n_tokens] GGUF token types */
    uint32_t *attrs;   /* [n_tokens] CTOK_ATTR_* */
    int32_t max_token_len;

    ctok_strmap map;

    ctok_merge_slot *merges;
    uint32_t merge_mask;
    int32_t n_merges;

    int32_t bos, eos, eot, eom, unk, sep, pad, mask_id, nl;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    int32_t *eog;
    int32_t n_eog;

    bool add_bos, add_eos, add_space_prefix, clean_spaces, ignore_merges;
    /* SPM: no token has U+2581 right after another character, so words merge alone. */
    bool spm_split_words;

    /* Control, user-defined and unknown tokens, longest text first (for partitioning). */
    int32_t *special_ids;
    int32_t n_special;

    /* BPE: id (possibly virtual) of each byte's printable form; SPM: id of <0xXX> or -1. */
    int32_t byte_id[256];

    /* Piece of each token with special = true. */
    char *piece_arena;
    uint32_t *piece_off; /* [n_tokens + 1] */

    ctok_regexes re;
};

/* ---- strings and maps (vocab.c) */
static inline const char *ctok_str(const celer_vocab *v, int32_t id) { return v->arena + v->str_off[id]; }
static inline uint32_t ctok_len(const celer_vocab *v, int32_t id) {
    return v->str_off[id + 1] - v->str_off[id];
}
/* The hash the string table uses. */
uint32_t ctok_hash_bytes(const char *s, size_t n);
/* Id of a string (real or virtual), or -1. */
int32_t ctok_find(const celer_vocab *v, const char *s, size_t len);
/* Id of a real token, or -1. */
static inline int32_t ctok_find_token(const celer_vocab *v, const char *s, size_t len) {
    int32_t id = ctok_find(v, s, len);
    return id < v->n_tokens ? id : -1;
}
/* Merge (rank, result) of a pair of ids; false if none. */
bool ctok_merge_find(const celer_vocab *v, int32_t left, int32_t right, int32_t *rank,
                     int32_t *result);

/* ---- unicode helpers (unicode.c) */
/* Length of the UTF-8 sequence announced by a lead byte, as llama.cpp's unicode_len_utf8. */
static inline size_t ctok_utf8_len(unsigned char c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}
/* Decodes one code point at s[0..n); returns its byte length (>= 1) and sets *cp, or sets
 * *cp = -1 and returns 1 for an invalid byte. */
size_t ctok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp);
/* Encodes cp (< 0x110000) into out (4 bytes); returns the length. */
size_t ctok_utf8_encode(uint32_t cp, char *out);
/* GPT-2 byte-level encoding: the code point that stands for byte b, and back (-1 if none). */
uint32_t ctok_byte_to_cp(uint8_t b);
int ctok_cp_to_byte(uint32_t cp);
/* Length of the longest prefix of s[0..n) that does not end inside an incomplete (but so far
 * valid) UTF-8 sequence. */
size_t ctok_utf8_complete_prefix(const char *s, size_t n);

/* ---- WordPiece helpers (unicode.c) */
bool ctok_cp_is_whitespace(uint32_t cp);
/* 'L' letter, 'M' mark, 'N' number, 'P' punctuation, 'S' symbol, 'Z' separator, 'C' other
 * (assigned), 0 unassigned. */
char ctok_cp_category(uint32_t cp);
uint32_t ctok_cp_tolower(uint32_t cp);
uint32_t ctok_cp_strip_accent(uint32_t cp);

/* ---- pre-tokenizer (pretok.c) */
celer_status ctok_regexes_init(ctok_regexes *re, ctok_pre pre, celer_error *err);
void ctok_regexes_free(ctok_regexes *re);

/* A fragment of text: [off, off + len) in bytes. */
typedef struct ctok_span {
    size_t off, len;
} ctok_span;

typedef struct ctok_spans {
    ctok_span *v;
    size_t n, cap;
} ctok_spans;

/* Splits text[0..len) into words with the vocabulary's regexes (appended to out, in order,
 * covering the text). Returns false when out of memory. */
bool ctok_pretokenize(const ctok_regexes *re, const char *text, size_t len, ctok_spans *out);
bool ctok_spans_push(ctok_spans *s, size_t off, size_t len);

#endif
