/*
 * GGUF v3 writer. Each metadata value is serialised into its own little byte buffer when it
 * is set, so writing is a straight copy: header, key/values in insertion order, tensor
 * directory, padding, then tensor data, each tensor padded to the alignment.
 *
 * A file is written to a temporary name beside the target and renamed over it only when every
 * byte is on disk, so a failed write never leaves a half-written model under the real name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/types.h"
#include "gguf/gguf.h"

typedef struct wkv {
    char *key;
    size_t key_len;
    gguf_type type;
    uint8_t *val; /* serialised value (what follows the type field) */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    int32_t type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    uint64_t size;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* ------------------------------------------------------------------ byte buffers */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->oom || n == 0) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(bytes *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(bytes *b, const char *s, uint64_t len) {
    put_u64(b, len);
    put(b, s, (size_t)len);
}

/* Little-endian encoding of one host value of fixed-size type t (celer targets little-endian
 * hosts, so this is a copy; bool is normalised to 0/1). */
static size_t fixed_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ writer state */

gguf_writer *gguf_writer_create(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Stores a serialised value under key (replacing an earlier value in place); takes the
 * buffer in all cases. */
static celer_status set_kv(gguf_writer *w, const char *key, size_t key_len, gguf_type type,
                           bytes *val) {
    if (val->oom) {
        free(val->p);
        return CELER_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        wkv *kv = &w->kv[i];
        if (kv->key_len == key_len && memcmp(kv->key, key, key_len) == 0) {
            free(kv->val);
            kv->type = type;
            kv->val = val->p;
            kv->len = val->n;
            return CELER_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            free(val->p);
            return CELER_ERR_NOMEM;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = malloc(key_len + 1);
    if (!k) {
        free(val->p);
        return CELER_ERR_NOMEM;
    }
    memcpy(k, key, key_len);
    k[key_len] = 0;
    w->kv[w->n_kv++] = (wkv){k, key_len, type, val->p, val->n};
    return CELER_OK;
}

celer_status gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_type type,
                                    const void *value) {
    size_t esz = fixed_size(type);
    if (!w || !key || !value || !esz) return CELER_ERR_INVALID_ARG;
    bytes b = {0};
    /* Bools are read as bytes: a caller's raw byte other than 0/1 must not be a bool load. */
    if (type == GGUF_TYPE_BOOL) put(&b, &(uint8_t){*(const uint8_t *)value ? 1 : 0}, 1);
    else put(&b, value, esz);
    return set_kv(w, key, strlen(key), type, &b);
}

celer_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return gguf_writer_set_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
celer_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return gguf_writer_set_scalar(w, key, GGUF_TYPE_INT32, &v);
}
celer_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    return gguf_writer_set_scalar(w, key, GGUF_TYPE_UINT64, &v);
}
celer_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return gguf_writer_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}
celer_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    return gguf_writer_set_scalar(w, key, GGUF_TYPE_BOOL, &v);
}

void gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment) {
    /* Stored as the key itself, the one place the alignment lives; checked when writing. */
    gguf_writer_set_u32(w, "general.alignment", alignment);
}

celer_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!w || !key || !v) return CELER_ERR_INVALID_ARG;
    bytes b = {0};
    put_str(&b, v, strlen(v));
    return set_kv(w, key, strlen(key), GGUF_TYPE_STRING, &b);
}

celer_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type,
                                 const void *data, uint64_t n) {
    size_t esz = fixed_size(elem_type);
    if (!w || !key || !esz || (n && !data) || n > SIZE_MAX / esz) return CELER_ERR_INVALID_ARG;
    bytes b = {0};
    put_u32(&b, (uint32_t)elem_type);
    put_u64(&b, n);
    if (elem_type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < n; i++) put(&b, &(uint8_t){((const uint8_t *)data)[i] ? 1 : 0}, 1);
    } else {
        put(&b, data, (size_t)n * esz);
    }
    return set_kv(w, key, strlen(key), GGUF_TYPE_ARRAY, &b);
}

celer_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                     const uint64_t *lens, uint64_t n) {
    if (!w || !key || (n && !strs)) return CELER_ERR_INVALID_ARG;
    for (uint64_t i = 0; i < n; i++)
        if (!strs[i] && (!lens || lens[i])) return CELER_ERR_INVALID_ARG;
    bytes b = {0};
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        put_str(&b, strs[i], len);
    }
    return set_kv(w, key, strlen(key), GGUF_TYPE_ARRAY, &b);
}

/* ---- copying from a reader, through its public accessors */

static bool copy_array(bytes *b, const gguf_array *a) {
    put_u32(b, (uint32_t)a->type);
    put_u64(b, a->n);
    size_t esz = fixed_size(a->type);
    if (esz) {
        put(b, a->data, (size_t)a->n * esz); /* already little-endian in the file */
        return true;
    }
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->type == GGUF_TYPE_STRING) {
            gguf_str s;
            if (!gguf_arr_str(a, i, &s)) return false;
            put_str(b, s.data, s.len);
        } else {
            gguf_array child;
            if (!gguf_arr_arr(a, i, &child) || !copy_array(b, &child)) return false;
        }
    }
    return true;
}

celer_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i) {
    if (!w || !f || i < 0 || i >= gguf_n_kv(f)) return CELER_ERR_INVALID_ARG;
    gguf_str key = gguf_kv_key(f, i);
    gguf_type t = gguf_kv_type(f, i);
    bytes b = {0};
    bool ok = true;
    if (t == GGUF_TYPE_STRING) {
        gguf_str s;
        ok = gguf_kv_get_str(f, i, &s);
        if (ok) put_str(&b, s.data, s.len);
    } else if (t == GGUF_TYPE_ARRAY) {
        gguf_array a;
        ok = gguf_kv_get_arr(f, i, &a) && copy_array(&b, &a);
    } else if (t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64) {
        double d;
        ok = gguf_kv_get_f64(f, i, &d);
        float x = (float)d;
        if (t == GGUF_TYPE_FLOAT32) put(&b, &x, 4);
        else put(&b, &d, 8);
    } else {
        /* Integers and bool: the low bytes of the two's-complement value are its encoding. */
        uint64_t u;
        int64_t s;
        if (gguf_kv_get_u64(f, i, &u)) {
        } else if (gguf_kv_get_i64(f, i, &s)) {
            u = (uint64_t)s;
        } else {
            ok = false;
        }
        for (size_t k = 0; ok && k < fixed_size(t); k++)
            put(&b, &(uint8_t){(uint8_t)(u >> (8 * k))}, 1);
    }
    if (!ok) {
        free(b.p);
        return CELER_ERR_INVALID_ARG;
    }
    return set_kv(w, key.data, (size_t)key.len, t, &b);
}

/* ---- tensors */

celer_status gguf_writer_add_tensor(gguf_writer *w, const char *name, int32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    uint64_t size) {
    const celer_type_info *ti = celer_type_get(type);
    if (!w || !name || !*name || !ti || n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne ||
        (size && !data))
        return CELER_ERR_INVALID_ARG;
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > (uint64_t)INT64_MAX / nelem)
            return CELER_ERR_INVALID_ARG;
        nelem *= (uint64_t)ne[d];
    }
    size_t row = celer_row_size(type, ne[0]);
    uint64_t rows = nelem / (uint64_t)ne[0];
    if (row == 0 || rows > UINT64_MAX / row || rows * row != size) return CELER_ERR_INVALID_ARG;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return CELER_ERR_INVALID_ARG;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return CELER_ERR_NOMEM;
        w->t = t;
        w->cap_t = cap;
    }
    char *nm = strdup(name);
    if (!nm) return CELER_ERR_NOMEM;
    wtensor *t = &w->t[w->n_t++];
    *t = (wtensor){.name = nm, .type = type, .n_dims = n_dims, .data = data, .size = size};
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    return CELER_OK;
}

/* ------------------------------------------------------------------ output */

/* Where bytes go: a growing memory buffer, or a file descriptor through a staging buffer. */
typedef struct sink {
    bytes buf;
    int fd; /* -1: memory */
    int err_no;
} sink;

#define SINK_CHUNK (1u << 20)

static void sink_flush(sink *s) {
    size_t off = 0;
    while (off < s->buf.n && !s->err_no) {
        ssize_t k = write(s->fd, s->buf.p + off, s->buf.n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) s->err_no = k < 0 ? errno : EIO;
        else off += (size_t)k;
    }
    s->buf.n = 0;
}

static void emit(sink *s, const void *p, uint64_t n) {
    const uint8_t *src = p;
    while (n > 0 && !s->err_no && !s->buf.oom) {
        size_t k = n;
        if (s->fd >= 0) {
            if (s->buf.n >= SINK_CHUNK) sink_flush(s);
            if (k > SINK_CHUNK - s->buf.n) k = SINK_CHUNK - s->buf.n;
        } else if (n > SIZE_MAX) {
            s->buf.oom = true;
            return;
        }
        put(&s->buf, src, k);
        src += k;
        n -= k;
    }
}

static void emit_zeros(sink *s, uint64_t n) {
    static const uint8_t zeros[64];
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        emit(s, zeros, k);
        n -= k;
    }
}

static uint64_t pad_to(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

/* The alignment the file will declare: its general.alignment key if set, else the default. */
static celer_status writer_alignment(const gguf_writer *w, uint64_t *out, celer_error *err) {
    *out = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        if (strcmp(kv->key, "general.alignment") != 0 || kv->key_len != strlen(kv->key)) continue;
        uint64_t v = 0;
        bool is_signed = kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 ||
                         kv->type == GGUF_TYPE_INT32 || kv->type == GGUF_TYPE_INT64;
        bool ok = is_signed || kv->type == GGUF_TYPE_UINT8 || kv->type == GGUF_TYPE_UINT16 ||
                  kv->type == GGUF_TYPE_UINT32 || kv->type == GGUF_TYPE_UINT64;
        for (size_t k = 0; ok && k < kv->len && k < 8; k++) v |= (uint64_t)kv->val[k] << (8 * k);
        if (ok && is_signed && kv->len > 0 && (kv->val[kv->len - 1] & 0x80)) ok = false;
        if (!ok || v == 0 || v > (1u << 30) || (v & (v - 1)))
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "general.alignment must be a positive power of two up to 2^30 "
                              "(got type %s, value %llu)",
                              gguf_type_name(kv->type), (unsigned long long)v);
        *out = v;
    }
    return CELER_OK;
}

static celer_status write_all(const gguf_writer *w, sink *s, celer_error *err) {
    uint64_t align;
    celer_status st = writer_alignment(w, &align, err);
    if (st) return st;
    bytes h = {0};
    put(&h, GGUF_MAGIC, 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key, w->kv[i].key_len);
        put_u32(&h, (uint32_t)w->kv[i].type);
        put(&h, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&h, t->name, strlen(t->name));
        put_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(&h, (uint64_t)t->ne[d]);
        put_u32(&h, (uint32_t)t->type);
        put_u64(&h, off);
        off += pad_to(t->size, align);
    }
    if (h.oom) {
        free(h.p);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory while serialising the header");
    }
    emit(s, h.p, h.n);
    emit_zeros(s, pad_to(h.n, align) - h.n);
    free(h.p);
    for (size_t i = 0; i < w->n_t; i++) {
        emit(s, w->t[i].data, w->t[i].size);
        emit_zeros(s, pad_to(w->t[i].size, align) - w->t[i].size);
    }
    if (s->buf.oom) return celer_fail(err, CELER_ERR_NOMEM, "out of memory while writing GGUF");
    return CELER_OK;
}

celer_status gguf_writer_write_memory(const gguf_writer *w, uint8_t **out, size_t *size,
                                      celer_error *err) {
    if (!w || !out || !size) return celer_fail(err, CELER_ERR_INVALID_ARG, "NULL argument");
    sink s = {.fd = -1};
    celer_status st = write_all(w, &s, err);
    if (st) {
        free(s.buf.p);
        return st;
    }
    *out = s.buf.p;
    *size = s.buf.n;
    return CELER_OK;
}

celer_status gguf_writer_write(const gguf_writer *w, const char *path, celer_error *err) {
    if (!w || !path) return celer_fail(err, CELER_ERR_INVALID_ARG, "NULL argument");
    static unsigned counter;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 64);
    if (!tmp) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        snprintf(tmp, plen + 64, "%s.tmp.%ld.%u", path, (long)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return celer_fail(err, CELER_ERR_IO, "cannot create '%s': %s", path, strerror(e));
    }
    sink s = {.fd = fd};
    s.buf.p = malloc(SINK_CHUNK);
    s.buf.cap = s.buf.p ? SINK_CHUNK : 0;
    s.buf.oom = !s.buf.p;
    celer_status st = write_all(w, &s, err);
    if (!st) {
        sink_flush(&s);
        if (!s.err_no && fsync(fd) != 0) s.err_no = errno;
    }
    if (close(fd) != 0 && !s.err_no) s.err_no = errno;
    if (!st && !s.err_no && rename(tmp, path) != 0) s.err_no = errno;
    if (!st && s.err_no)
        st = celer_fail(err, CELER_ERR_IO, "writing '%s': %s", path, strerror(s.err_no));
    if (st) unlink(tmp);
    free(s.buf.p);
    free(tmp);
    return st;
}
