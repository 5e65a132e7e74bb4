/*
 * GGUF reader. The whole header (metadata and tensor directory) is parsed and validated when
 * the file is opened, so every later accessor is a plain lookup that cannot fail or read
 * outside the mapping.
 *
 * Hostile input: every count and length is compared with the bytes that are left before it is
 * used or allocated for. Tables are sized exactly from a first, counting pass over the
 * metadata, so memory stays within a small multiple of the file size (each table entry costs
 * at least 8 bytes of file). Array nesting depth is bounded, so recursion is too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/types.h"
#include "gguf/gguf.h"

/* Levels of arrays inside arrays (a top-level array is depth 1). */
#define GGUF_MAX_DEPTH 8
/* Smallest encodings, used to reject counts that cannot fit in what is left of the file. */
#define MIN_KV_BYTES 13     /* key length (8) + type (4) + one-byte value */
#define MIN_TENSOR_BYTES 24 /* name length (8) + n_dims (4) + type (4) + offset (8) */
#define MIN_STR_BYTES 8     /* length */
#define MIN_ARR_BYTES 12    /* element type (4) + count (8) */

typedef struct kv_entry {
    gguf_str key;
    gguf_type type;
    const uint8_t *val; /* value bytes, just after the type field */
    int64_t arr;        /* ARRAY: index of its descriptor in gguf_file.arrs, else -1 */
} kv_entry;

struct gguf_file {
    const uint8_t *data;
    size_t size;
    bool mapped;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    int64_t n_tensors;
    kv_entry *kv;
    gguf_tensor *tensors;
    /* Open-addressing hash tables holding index + 1 (0 = empty); size is a power of two. */
    uint32_t *kv_hash;
    uint32_t *t_hash;
    uint64_t kv_hash_mask;
    uint64_t t_hash_mask;
    /* Elements of string arrays and of arrays of arrays, flattened: a gguf_array's `index`
     * is where its elements start in one of these. */
    gguf_str *strs;
    gguf_array *arrs;
    uint64_t n_strs;
    uint64_t n_arrs;
};

/* ------------------------------------------------------------------ small helpers */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Bytes of one element of a fixed-size type; 0 for STRING, ARRAY and unknown types. */
static size_t fixed_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_type_name(gguf_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64",
    };
    return ((unsigned)t < GGUF_TYPE_COUNT) ? names[t] : "unknown";
}

/* A printable, bounded copy of a name from the file for error messages: hostile names may be
 * huge or hold control bytes. */
static const char *printable(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t max = cap - 4, n = 0;
    for (uint64_t i = 0; i < len && n < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (len > max) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    return buf;
}

bool gguf_str_eq(gguf_str s, const char *cstr) {
    if (!cstr) return false;
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.data, cstr, n) == 0);
}

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ parser */

typedef struct parser {
    gguf_file *f;
    const uint8_t *base;
    size_t size;
    size_t pos;
    celer_error *err;
    bool fill;      /* second metadata pass: store into the tables sized by the first */
    uint64_t n_strs; /* running totals of table entries */
    uint64_t n_arrs;
} parser;

static size_t left(const parser *ps) { return ps->size - ps->pos; }

/* Fails unless n more bytes are there; `what` names the item being read. */
static celer_status need(parser *ps, uint64_t n, const char *what) {
    if (n <= left(ps)) return CELER_OK;
    return celer_fail(ps->err, CELER_ERR_FORMAT,
                      "truncated file: %s needs %llu bytes at offset %zu, but only %zu remain "
                      "(file size %zu)",
                      what, (unsigned long long)n, ps->pos, left(ps), ps->size);
}

static celer_status rd_u32(parser *ps, uint32_t *v, const char *what) {
    celer_status st = need(ps, 4, what);
    if (st) return st;
    *v = le32(ps->base + ps->pos);
    ps->pos += 4;
    return CELER_OK;
}

static celer_status rd_u64(parser *ps, uint64_t *v, const char *what) {
    celer_status st = need(ps, 8, what);
    if (st) return st;
    *v = le64(ps->base + ps->pos);
    ps->pos += 8;
    return CELER_OK;
}

/* Reads a string; `what` names it, and `elem` >= 0 says it is that element of an array (the
 * message is only formatted on failure: vocabularies hold 100k+ strings). */
static celer_status rd_str_elem(parser *ps, gguf_str *s, const char *what, int64_t elem) {
    char ctx[300];
    if (left(ps) < 8 || le64(ps->base + ps->pos) > left(ps) - 8) {
        if (elem >= 0) {
            snprintf(ctx, sizeof ctx, "%s: element %lld", what, (long long)elem);
            what = ctx;
        }
    }
    uint64_t len;
    celer_status st = rd_u64(ps, &len, what);
    if (st) return st;
    if (len > left(ps))
        return celer_fail(ps->err, CELER_ERR_FORMAT,
                          "%s: string length %llu runs past the end of the file (%zu bytes "
                          "left at offset %zu)",
                          what, (unsigned long long)len, left(ps), ps->pos);
    s->len = len;
    s->data = (const char *)ps->base + ps->pos;
    ps->pos += len;
    return CELER_OK;
}

static celer_status rd_str(parser *ps, gguf_str *s, const char *what) {
    return rd_str_elem(ps, s, what, -1);
}

/* Parses an array value {elem_type, count, elements} at nesting level `depth` into *arr.
 * `what` names the key, for messages. */
static celer_status parse_array(parser *ps, int depth, const char *what, gguf_array *arr) {
    char ctx[300];
    if (depth > GGUF_MAX_DEPTH)
        return celer_fail(ps->err, CELER_ERR_FORMAT,
                          "%s: arrays nested more than %d deep (at offset %zu)", what,
                          GGUF_MAX_DEPTH, ps->pos);
    uint32_t et;
    uint64_t n;
    snprintf(ctx, sizeof ctx, "%s: array header", what);
    celer_status st = rd_u32(ps, &et, ctx);
    if (st) return st;
    if (et >= GGUF_TYPE_COUNT)
        return celer_fail(ps->err, CELER_ERR_FORMAT,
                          "%s: unknown array element type %u (at offset %zu)", what, et,
                          ps->pos - 4);
    if ((st = rd_u64(ps, &n, ctx))) return st;
    gguf_type t = (gguf_type)et;
    size_t esz = fixed_size(t);
    size_t min = esz ? esz : (t == GGUF_TYPE_STRING ? MIN_STR_BYTES : MIN_ARR_BYTES);
    if (n > left(ps) / min)
        return celer_fail(ps->err, CELER_ERR_FORMAT,
                          "%s: array count %llu of %s elements needs at least %llu bytes per "
                          "element, but only %zu bytes remain at offset %zu",
                          what, (unsigned long long)n, gguf_type_name(t),
                          (unsigned long long)min, left(ps), ps->pos);
    arr->type = t;
    arr->n = n;
    arr->data = ps->base + ps->pos;
    arr->file = ps->f;
    arr->index = -1;
    if (esz) {
        ps->pos += (size_t)n * esz;
        return CELER_OK;
    }
    if (t == GGUF_TYPE_STRING) {
        uint64_t first = ps->n_strs;
        arr->index = (int64_t)first;
        ps->n_strs += n;
        for (uint64_t j = 0; j < n; j++) {
            gguf_str s;
            if ((st = rd_str_elem(ps, &s, what, (int64_t)j))) return st;
            if (ps->fill) ps->f->strs[first + j] = s;
        }
        return CELER_OK;
    }
    /* Array of arrays: reserve the children's slots first so they are contiguous, then let
     * each child append its own children after them. */
    uint64_t first = ps->n_arrs;
    arr->index = (int64_t)first;
    ps->n_arrs += n;
    for (uint64_t j = 0; j < n; j++) {
        gguf_array child;
        snprintf(ctx, sizeof ctx, "%s[%llu]", what, (unsigned long long)j);
        if ((st = parse_array(ps, depth + 1, ctx, &child))) return st;
        if (ps->fill) ps->f->arrs[first + j] = child;
    }
    return CELER_OK;
}

/* One pass over the n_kv key/value pairs starting at ps->pos. */
static celer_status parse_kvs(parser *ps) {
    gguf_file *f = ps->f;
    char what[200], name[100];
    celer_status st;
    for (int64_t i = 0; i < f->n_kv; i++) {
        kv_entry *kv = &f->kv[i];
        snprintf(what, sizeof what, "key of kv %lld", (long long)i);
        if ((st = rd_str(ps, &kv->key, what))) return st;
        printable(name, sizeof name, kv->key.data, kv->key.len);
        snprintf(what, sizeof what, "key '%s'", name);
        uint32_t t;
        if ((st = rd_u32(ps, &t, what))) return st;
        if (t >= GGUF_TYPE_COUNT)
            return celer_fail(ps->err, CELER_ERR_FORMAT,
                              "key '%s': unknown value type %u (at offset %zu)", name, t,
                              ps->pos - 4);
        kv->type = (gguf_type)t;
        kv->val = ps->base + ps->pos;
        kv->arr = -1;
        size_t esz = fixed_size(kv->type);
        if (esz) {
            if ((st = need(ps, esz, what))) return st;
            ps->pos += esz;
        } else if (kv->type == GGUF_TYPE_STRING) {
            gguf_str s;
            if ((st = rd_str(ps, &s, what))) return st;
        } else {
            gguf_array arr;
            uint64_t slot = ps->n_arrs++;
            kv->arr = (int64_t)slot;
            if ((st = parse_array(ps, 1, what, &arr))) return st;
            if (ps->fill) f->arrs[slot] = arr;
        }
    }
    return CELER_OK;
}

static uint64_t hash_cap(int64_t n) {
    uint64_t cap = 8;
    while (cap < (uint64_t)n * 2) cap *= 2;
    return cap;
}

/* Builds the key index; a repeated key is an error (which value would win is unclear). */
static celer_status index_keys(parser *ps) {
    gguf_file *f = ps->f;
    uint64_t cap = hash_cap(f->n_kv);
    f->kv_hash = calloc(cap, sizeof *f->kv_hash);
    if (!f->kv_hash) return celer_fail(ps->err, CELER_ERR_NOMEM, "out of memory (key index)");
    f->kv_hash_mask = cap - 1;
    for (int64_t i = 0; i < f->n_kv; i++) {
        gguf_str k = f->kv[i].key;
        uint64_t h = hash_bytes(k.data, k.len) & f->kv_hash_mask;
        for (; f->kv_hash[h]; h = (h + 1) & f->kv_hash_mask) {
            int64_t j = (int64_t)f->kv_hash[h] - 1;
            gguf_str o = f->kv[j].key;
            if (o.len == k.len && memcmp(o.data, k.data, k.len) == 0) {
                char name[100];
                return celer_fail(ps->err, CELER_ERR_FORMAT,
                                  "duplicate key '%s' (kv %lld and kv %lld)",
                                  printable(name, sizeof name, k.data, k.len), (long long)j,
                                  (long long)i);
            }
        }
        f->kv_hash[h] = (uint32_t)(i + 1);
    }
    return CELER_OK;
}

static celer_status index_tensors(parser *ps) {
    gguf_file *f = ps->f;
    uint64_t cap = hash_cap(f->n_tensors);
    f->t_hash = calloc(cap, sizeof *f->t_hash);
    if (!f->t_hash) return celer_fail(ps->err, CELER_ERR_NOMEM, "out of memory (tensor index)");
    f->t_hash_mask = cap - 1;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_str k = f->tensors[i].name;
        uint64_t h = hash_bytes(k.data, k.len) & f->t_hash_mask;
        for (; f->t_hash[h]; h = (h + 1) & f->t_hash_mask) {
            int64_t j = (int64_t)f->t_hash[h] - 1;
            gguf_str o = f->tensors[j].name;
            if (o.len == k.len && memcmp(o.data, k.data, k.len) == 0) {
                char name[100];
                return celer_fail(ps->err, CELER_ERR_FORMAT,
                                  "duplicate tensor name '%s' (tensors %lld and %lld)",
                                  printable(name, sizeof name, k.data, k.len), (long long)j,
                                  (long long)i);
            }
        }
        f->t_hash[h] = (uint32_t)(i + 1);
    }
    return CELER_OK;
}

/* ---- integer and float values of scalars (shared by the kv and array accessors) */

/* Integer value of an element of type t at p: *neg says whether it is negative; *s holds it
 * as int64 when negative or <= INT64_MAX, *u as uint64 when non-negative. */
static bool int_value(gguf_type t, const uint8_t *p, bool *neg, int64_t *s, uint64_t *u) {
    int64_t v;
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: v = p[0]; break;
    case GGUF_TYPE_INT8: v = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: v = le16(p); break;
    case GGUF_TYPE_INT16: v = (int16_t)le16(p); break;
    case GGUF_TYPE_UINT32: v = le32(p); break;
    case GGUF_TYPE_INT32: v = (int32_t)le32(p); break;
    case GGUF_TYPE_INT64: v = (int64_t)le64(p); break;
    case GGUF_TYPE_UINT64:
        *neg = false;
        *u = le64(p);
        *s = *u <= (uint64_t)INT64_MAX ? (int64_t)*u : INT64_MAX;
        return true;
    default: return false;
    }
    *neg = v < 0;
    *s = v;
    *u = v < 0 ? 0 : (uint64_t)v;
    return true;
}

static bool is_integer(gguf_type t) {
    return t != GGUF_TYPE_BOOL && t != GGUF_TYPE_FLOAT32 && t != GGUF_TYPE_FLOAT64 &&
           fixed_size(t) != 0;
}

static bool float_value(gguf_type t, const uint8_t *p, double *d) {
    if (t == GGUF_TYPE_FLOAT32) {
        uint32_t b = le32(p);
        float x;
        memcpy(&x, &b, 4);
        *d = x;
        return true;
    }
    if (t == GGUF_TYPE_FLOAT64) {
        uint64_t b = le64(p);
        memcpy(d, &b, 8);
        return true;
    }
    bool neg;
    int64_t s;
    uint64_t u;
    if (!int_value(t, p, &neg, &s, &u)) return false;
    *d = neg ? (double)s : (double)u;
    return true;
}

/* Parses the header, metadata and tensor directory of f->data. */
static celer_status parse_file(gguf_file *f, celer_error *err) {
    parser ps = {.f = f, .base = f->data, .size = f->size, .err = err};
    celer_status st;
    if (f->size < 4)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "truncated file: %zu bytes is too short for a GGUF header", f->size);
    if (memcmp(f->data, GGUF_MAGIC, 4) != 0)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "bad magic: expected \"GGUF\", found bytes %02x %02x %02x %02x "
                          "(not a GGUF file)",
                          f->data[0], f->data[1], f->data[2], f->data[3]);
    ps.pos = 4;
    uint64_t n_tensors, n_kv;
    if ((st = rd_u32(&ps, &f->version, "version"))) return st;
    if (f->version != 2 && f->version != 3)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "unsupported GGUF version %u (celer reads versions 2 and 3%s)",
                          f->version,
                          (f->version & 0xffff) == 0 ? "; is this a big-endian file?" : "");
    if ((st = rd_u64(&ps, &n_tensors, "n_tensors"))) return st;
    if ((st = rd_u64(&ps, &n_kv, "n_kv"))) return st;
    if (n_kv > left(&ps) / MIN_KV_BYTES || n_kv > INT32_MAX)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "n_kv %llu is impossible: the %zu bytes after the header hold at most "
                          "%zu key/value pairs",
                          (unsigned long long)n_kv, left(&ps), left(&ps) / MIN_KV_BYTES);
    if (n_tensors > left(&ps) / MIN_TENSOR_BYTES || n_tensors > INT32_MAX)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "n_tensors %llu is impossible: the %zu bytes after the header hold at "
                          "most %zu tensor descriptions",
                          (unsigned long long)n_tensors, left(&ps), left(&ps) / MIN_TENSOR_BYTES);
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;

    /* Metadata: a counting pass sizes the element tables, a second pass fills them. */
    f->kv = calloc(n_kv ? n_kv : 1, sizeof *f->kv);
    if (!f->kv)
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory (%llu keys)",
                          (unsigned long long)n_kv);
    size_t kv_start = ps.pos;
    if ((st = parse_kvs(&ps))) return st;
    f->n_strs = ps.n_strs;
    f->n_arrs = ps.n_arrs;
    f->strs = calloc(f->n_strs ? f->n_strs : 1, sizeof *f->strs);
    f->arrs = calloc(f->n_arrs ? f->n_arrs : 1, sizeof *f->arrs);
    if (!f->strs || !f->arrs) return celer_fail(err, CELER_ERR_NOMEM, "out of memory (metadata)");
    ps.pos = kv_start;
    ps.fill = true;
    ps.n_strs = ps.n_arrs = 0;
    if ((st = parse_kvs(&ps))) return st;
    if ((st = index_keys(&ps))) return st;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = gguf_find_key(f, "general.alignment");
    if (ai >= 0) {
        bool neg;
        int64_t s;
        uint64_t u;
        const kv_entry *kv = &f->kv[ai];
        if (!is_integer(kv->type) || !int_value(kv->type, kv->val, &neg, &s, &u))
            return celer_fail(err, CELER_ERR_FORMAT,
                              "general.alignment has type %s, expected uint32",
                              gguf_type_name(kv->type));
        if (neg || u == 0 || u > UINT32_MAX || (u & (u - 1)))
            return celer_fail(err, CELER_ERR_FORMAT,
                              "general.alignment %lld is not a nonzero power of two",
                              neg ? (long long)s : (long long)(u > INT64_MAX ? INT64_MAX : u));
        f->alignment = u;
    }

    /* Tensor directory. */
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors)
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory (%llu tensors)",
                          (unsigned long long)n_tensors);
    char what[200], name[100];
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        snprintf(what, sizeof what, "name of tensor %lld", (long long)i);
        if ((st = rd_str(&ps, &t->name, what))) return st;
        printable(name, sizeof name, t->name.data, t->name.len);
        snprintf(what, sizeof what, "tensor '%s'", name);
        if ((st = rd_u32(&ps, &t->n_dims, what))) return st;
        if (t->n_dims > GGUF_MAX_DIMS)
            return celer_fail(err, CELER_ERR_FORMAT, "tensor '%s': n_dims %u is more than %d",
                              name, t->n_dims, GGUF_MAX_DIMS);
        uint64_t nelem = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if ((st = rd_u64(&ps, &ne, what))) return st;
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return celer_fail(err, CELER_ERR_FORMAT,
                                  "tensor '%s': dimension %u is %lld (dimensions must be positive)",
                                  name, d, (long long)ne);
            if (ne > (uint64_t)INT64_MAX / nelem)
                return celer_fail(err, CELER_ERR_FORMAT,
                                  "tensor '%s': element count overflows int64 "
                                  "(dimension %u is %llu)",
                                  name, d, (unsigned long long)ne);
            nelem *= ne;
            t->ne[d] = (int64_t)ne;
        }
        uint32_t type;
        if ((st = rd_u32(&ps, &type, what))) return st;
        if (type > INT32_MAX || !celer_type_get((int32_t)type))
            return celer_fail(err, CELER_ERR_UNSUPPORTED, "tensor '%s': unknown tensor type %u",
                              name, type);
        t->type = (int32_t)type;
        if ((st = rd_u64(&ps, &t->offset, what))) return st;
    }
    if ((st = index_tensors(&ps))) return st;

    /* The data section starts at the next multiple of the alignment. Files without tensors may
     * end before it (llama.cpp's vocab-only files do), so only tensors are checked against it. */
    f->data_offset = ((uint64_t)ps.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors > 0 && f->data_offset > f->size)
        return celer_fail(err, CELER_ERR_FORMAT,
                          "truncated file: the tensor data section would start at offset %llu, "
                          "past the end of the file (%zu bytes)",
                          (unsigned long long)f->data_offset, f->size);
    uint64_t avail = f->n_tensors > 0 ? f->size - f->data_offset : 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        const celer_type_info *ti = celer_type_get(t->type);
        printable(name, sizeof name, t->name.data, t->name.len);
        size_t row = celer_row_size(t->type, t->ne[0]);
        if (row == 0)
            return celer_fail(err, CELER_ERR_FORMAT,
                              "tensor '%s': row length %lld is not a multiple of the block size "
                              "%lld of type %s",
                              name, (long long)t->ne[0], (long long)ti->block_size, ti->name);
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]); /* < 2^63: checked above */
        if (rows > UINT64_MAX / row)
            return celer_fail(err, CELER_ERR_FORMAT, "tensor '%s': byte size overflows uint64",
                              name);
        t->size = rows * row;
        if (t->offset % f->alignment)
            return celer_fail(err, CELER_ERR_FORMAT,
                              "tensor '%s': offset %llu is not a multiple of the alignment %llu",
                              name, (unsigned long long)t->offset,
                              (unsigned long long)f->alignment);
        if (t->offset > avail || t->size > avail - t->offset)
            return celer_fail(err, CELER_ERR_FORMAT,
                              "tensor '%s': data at offset %llu, %llu bytes, lies outside the file "
                              "(the data section holds %llu bytes from file offset %llu)",
                              name, (unsigned long long)t->offset, (unsigned long long)t->size,
                              (unsigned long long)avail, (unsigned long long)f->data_offset);
        t->data = f->data + f->data_offset + t->offset;
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------ open / close */

static celer_status open_parsed(gguf_file *f, gguf_file **out, celer_error *err) {
    celer_status st = parse_file(f, err);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return CELER_OK;
}

celer_status gguf_open_memory(const void *data, size_t size, gguf_file **out, celer_error *err) {
    if (!out || (!data && size))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "gguf_open_memory: NULL argument");
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    f->data = data ? data : (const uint8_t *)"";
    f->size = size;
    return open_parsed(f, out, err);
}

celer_status gguf_open(const char *path, gguf_file **out, celer_error *err) {
    if (!path || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return celer_fail(err, errno == ENOENT ? CELER_ERR_NOT_FOUND : CELER_ERR_IO,
                          "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return celer_fail(err, CELER_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return celer_fail(err, CELER_ERR_IO, "not a regular file");
    }
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    f->size = (size_t)sb.st_size;
    f->data = (const uint8_t *)"";
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(f);
            return celer_fail(err, CELER_ERR_IO, "cannot map %zu bytes: %s", (size_t)sb.st_size,
                              strerror(e));
        }
        f->data = m;
        f->mapped = true;
    }
    close(fd); /* the mapping keeps the file alive */
    return open_parsed(f, out, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->data, f->size);
    free(f->kv);
    free(f->tensors);
    free(f->kv_hash);
    free(f->t_hash);
    free(f->strs);
    free(f->arrs);
    free(f);
}

/* ------------------------------------------------------------------ accessors */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
const void *gguf_file_data(const gguf_file *f) { return f->data; }
int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    if (!f || !key || !f->kv_hash) return -1;
    size_t n = strlen(key);
    for (uint64_t h = hash_bytes(key, n) & f->kv_hash_mask; f->kv_hash[h];
         h = (h + 1) & f->kv_hash_mask) {
        int64_t i = (int64_t)f->kv_hash[h] - 1;
        if (gguf_str_eq(f->kv[i].key, key)) return i;
    }
    return -1;
}

static const kv_entry *kv_at(const gguf_file *f, int64_t i) {
    return (f && i >= 0 && i < f->n_kv) ? &f->kv[i] : NULL;
}

gguf_str gguf_kv_key(const gguf_file *f, int64_t i) {
    const kv_entry *kv = kv_at(f, i);
    return kv ? kv->key : (gguf_str){0, ""};
}

gguf_type gguf_kv_type(const gguf_file *f, int64_t i) {
    const kv_entry *kv = kv_at(f, i);
    return kv ? kv->type : GGUF_TYPE_COUNT;
}

bool gguf_kv_get_str(const gguf_file *f, int64_t i, gguf_str *out) {
    const kv_entry *kv = kv_at(f, i);
    if (!kv || kv->type != GGUF_TYPE_STRING) return false;
    out->len = le64(kv->val);
    out->data = (const char *)kv->val + 8;
    return true;
}

bool gguf_kv_get_arr(const gguf_file *f, int64_t i, gguf_array *out) {
    const kv_entry *kv = kv_at(f, i);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) return false;
    *out = f->arrs[kv->arr];
    return true;
}

bool gguf_kv_get_i64(const gguf_file *f, int64_t i, int64_t *out) {
    const kv_entry *kv = kv_at(f, i);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv || !int_value(kv->type, kv->val, &neg, &s, &u)) return false;
    if (!neg && u > (uint64_t)INT64_MAX) return false;
    *out = s;
    return true;
}

bool gguf_kv_get_u64(const gguf_file *f, int64_t i, uint64_t *out) {
    const kv_entry *kv = kv_at(f, i);
    bool neg;
    int64_t s;
    uint64_t u;
    if (!kv || !int_value(kv->type, kv->val, &neg, &s, &u) || neg) return false;
    *out = u;
    return true;
}

bool gguf_kv_get_f64(const gguf_file *f, int64_t i, double *out) {
    const kv_entry *kv = kv_at(f, i);
    return kv && fixed_size(kv->type) && float_value(kv->type, kv->val, out);
}

/* Typed getters by key: integers of any type in range; no bools or floats. */
static bool key_int(const gguf_file *f, const char *key, bool *neg, int64_t *s, uint64_t *u) {
    const kv_entry *kv = kv_at(f, gguf_find_key(f, key));
    return kv && is_integer(kv->type) && int_value(kv->type, kv->val, neg, s, u);
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    bool neg;
    int64_t s;
    uint64_t u;
    if (!key_int(f, key, &neg, &s, &u) || neg || u > UINT32_MAX) return false;
    *out = (uint32_t)u;
    return true;
}

bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    bool neg;
    int64_t s;
    uint64_t u;
    if (!key_int(f, key, &neg, &s, &u)) return false;
    if (neg ? s < INT32_MIN : u > INT32_MAX) return false;
    *out = (int32_t)s;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    bool neg;
    int64_t s;
    uint64_t u;
    if (!key_int(f, key, &neg, &s, &u) || neg) return false;
    *out = u;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const kv_entry *kv = kv_at(f, gguf_find_key(f, key));
    double d;
    if (!kv || kv->type == GGUF_TYPE_BOOL || !fixed_size(kv->type) ||
        !float_value(kv->type, kv->val, &d))
        return false;
    *out = (float)d;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const kv_entry *kv = kv_at(f, gguf_find_key(f, key));
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->val[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    return gguf_kv_get_str(f, gguf_find_key(f, key), out);
}

bool gguf_get_arr(const gguf_file *f, const char *key, gguf_array *out) {
    return gguf_kv_get_arr(f, gguf_find_key(f, key), out);
}

/* ---- array elements */

static const uint8_t *elem(const gguf_array *arr, uint64_t i) {
    size_t esz = fixed_size(arr->type);
    if (!esz || i >= arr->n) return NULL;
    return arr->data + i * esz;
}

bool gguf_arr_str(const gguf_array *arr, uint64_t i, gguf_str *out) {
    if (!arr || arr->type != GGUF_TYPE_STRING || i >= arr->n || !arr->file) return false;
    *out = arr->file->strs[(uint64_t)arr->index + i];
    return true;
}

bool gguf_arr_arr(const gguf_array *arr, uint64_t i, gguf_array *out) {
    if (!arr || arr->type != GGUF_TYPE_ARRAY || i >= arr->n || !arr->file) return false;
    *out = arr->file->arrs[(uint64_t)arr->index + i];
    return true;
}

bool gguf_arr_i64(const gguf_array *arr, uint64_t i, int64_t *out) {
    const uint8_t *p = arr ? elem(arr, i) : NULL;
    bool neg;
    int64_t s;
    uint64_t u;
    if (!p || !int_value(arr->type, p, &neg, &s, &u)) return false;
    if (!neg && u > (uint64_t)INT64_MAX) return false;
    *out = s;
    return true;
}

bool gguf_arr_u64(const gguf_array *arr, uint64_t i, uint64_t *out) {
    const uint8_t *p = arr ? elem(arr, i) : NULL;
    bool neg;
    int64_t s;
    uint64_t u;
    if (!p || !int_value(arr->type, p, &neg, &s, &u) || neg) return false;
    *out = u;
    return true;
}

bool gguf_arr_f64(const gguf_array *arr, uint64_t i, double *out) {
    const uint8_t *p = arr ? elem(arr, i) : NULL;
    return p && float_value(arr->type, p, out);
}

/* ---- tensors */

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return (f && i >= 0 && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name || !f->t_hash) return NULL;
    size_t n = strlen(name);
    for (uint64_t h = hash_bytes(name, n) & f->t_hash_mask; f->t_hash[h];
         h = (h + 1) & f->t_hash_mask) {
        const gguf_tensor *t = &f->tensors[f->t_hash[h] - 1];
        if (gguf_str_eq(t->name, name)) return t;
    }
    return NULL;
}
