/*
 * GGUF reader (versions 2 and 3) and writer.
 *
 * File layout (little-endian): magic "GGUF", uint32 version, uint64 n_tensors, uint64 n_kv,
 * then n_kv key/value pairs {string key, uint32 type, value}, then n_tensors tensor infos
 * {string name, uint32 n_dims, uint64 ne[n_dims], uint32 type, uint64 offset}, padding to
 * `general.alignment` (default 32), then tensor data; each tensor's offset is relative to the
 * start of the data section. A string is {uint64 len, bytes} (not NUL-terminated). An array
 * value is {uint32 elem_type, uint64 count, elements}; arrays may nest.
 *
 * The reader maps the file (or borrows a caller's buffer) and never copies tensor data. Every
 * count, length, offset and size is checked against the file before use, so a truncated or
 * hostile file gives a clear error (CELER_ERR_FORMAT, or CELER_ERR_UNSUPPORTED for an unknown
 * tensor type) naming what is wrong, never a crash, a huge allocation or a read outside the
 * mapping. Allocations are bounded by a small multiple of the file size.
 *
 * Strings returned by the reader point into the mapping and are NOT NUL-terminated: use
 * gguf_str's len. They live as long as the gguf_file.
 */
#ifndef CELER_GGUF_H
#define CELER_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "celer.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

typedef struct gguf_str {
    uint64_t len;
    const char *data; /* into the mapping; not NUL-terminated */
} gguf_str;

/* A (possibly nested) array value. Elements of fixed-size types are contiguous at `data`
 * (little-endian, possibly unaligned: read them with the accessors). */
typedef struct gguf_array {
    gguf_type type;        /* element type */
    uint64_t n;            /* element count */
    const uint8_t *data;   /* first element in the mapping */
    const struct gguf_file *file;
    int64_t index;         /* internal: which string table / nested table belongs to it */
} gguf_array;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (innermost); unused dims are 1 */
    int32_t type;              /* celer_type numbering (ggml) */
    uint64_t offset;           /* relative to the data section */
    uint64_t size;             /* bytes, from type and shape */
    const void *data;          /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and maps `path`. */
celer_status gguf_open(const char *path, gguf_file **out, celer_error *err);
/* Parses a caller's buffer (borrowed: must outlive the gguf_file). For fuzzing and tests. */
celer_status gguf_open_memory(const void *data, size_t size, gguf_file **out, celer_error *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* start of the data section in the file */
size_t gguf_file_size(const gguf_file *f);
const void *gguf_file_data(const gguf_file *f); /* whole mapping */

/* ---- metadata */
int64_t gguf_n_kv(const gguf_file *f);
/* Index of key (exact match), or -1. */
int64_t gguf_find_key(const gguf_file *f, const char *key);
gguf_str gguf_kv_key(const gguf_file *f, int64_t i);
gguf_type gguf_kv_type(const gguf_file *f, int64_t i);

/* Typed getters by key. Each returns false when the key is missing or the value does not fit
 * the requested type. Integer getters accept any integer type whose value is in range;
 * float getters accept FLOAT32 and FLOAT64 (and integers). */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
bool gguf_get_arr(const gguf_file *f, const char *key, gguf_array *out);

/* Value of kv i by index, same rules. */
bool gguf_kv_get_str(const gguf_file *f, int64_t i, gguf_str *out);
bool gguf_kv_get_arr(const gguf_file *f, int64_t i, gguf_array *out);
/* Scalars of kv i: integer types as int64 (UINT64 above INT64_MAX fails), floats as double,
 * bool as 0/1. */
bool gguf_kv_get_i64(const gguf_file *f, int64_t i, int64_t *out);
bool gguf_kv_get_f64(const gguf_file *f, int64_t i, double *out);
/* Unsigned integer (or bool) kv i, for UINT64 values above INT64_MAX; negative values fail. */
bool gguf_kv_get_u64(const gguf_file *f, int64_t i, uint64_t *out);

/* Array element access (i < arr->n, else false). */
bool gguf_arr_str(const gguf_array *arr, uint64_t i, gguf_str *out);
bool gguf_arr_i64(const gguf_array *arr, uint64_t i, int64_t *out);   /* integer/bool elements */
bool gguf_arr_f64(const gguf_array *arr, uint64_t i, double *out);   /* numeric elements */
bool gguf_arr_arr(const gguf_array *arr, uint64_t i, gguf_array *out); /* nested arrays */
bool gguf_arr_u64(const gguf_array *arr, uint64_t i, uint64_t *out);  /* non-negative integer/bool */

/* Compares a gguf_str with a C string. */
bool gguf_str_eq(gguf_str s, const char *cstr);

/* ---- tensors */
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
/* By name (hash lookup), or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Name of a gguf_type ("uint32", "array", ...). */
const char *gguf_type_name(gguf_type t);

/* ---------------------------------------------------------------- writer */

/* Builds a GGUF v3 file in memory order: set keys, add tensors, then write. Tensor data is
 * borrowed until gguf_writer_write returns. Keys are kept in insertion order; setting an
 * existing key replaces its value. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment);

celer_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
celer_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
celer_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
celer_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
celer_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
celer_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Scalar of any fixed-size type (not STRING/ARRAY): `value` points at one host value of that
 * type (bool as one byte). */
celer_status gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_type type,
                                    const void *value);
/* Array of fixed-size elements (numeric or bool) copied from data. */
celer_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type,
                                 const void *data, uint64_t n);
/* Array of strings (each given with its length; copied). */
celer_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                     const uint64_t *lens, uint64_t n);
/* Copies key/value i of a reader, whatever its type (nested arrays included). */
celer_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i);

/* Adds a tensor; ne[0] is the row length. `data` (size bytes, must equal the size implied
 * by type and shape) is borrowed until gguf_writer_write. */
celer_status gguf_writer_add_tensor(gguf_writer *w, const char *name, int32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    uint64_t size);

celer_status gguf_writer_write(const gguf_writer *w, const char *path, celer_error *err);
/* Serialises into a malloc'd buffer (*out owned by the caller). For tests and fuzz seeds. */
celer_status gguf_writer_write_memory(const gguf_writer *w, uint8_t **out, size_t *size,
                                      celer_error *err);

#endif
