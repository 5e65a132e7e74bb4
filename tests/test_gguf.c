/* GGUF layer: writer -> reader round trips, the real files in ../shared, hostile and truncated
 * files (each malformation must give its own message), and the `celer info` command. */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/types.h"
#include "gguf/gguf.h"
#include "test.h"

/* ------------------------------------------------------------------ helpers */

/* A growing byte buffer for hand-made (often deliberately broken) files. */
typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, GGUF_TYPE_UINT32);
    bb_u32(b, v);
}
static void bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, offset);
}
static void bb_pad(bb *b, size_t align) {
    while (b->n % align) bb_u8(b, 0);
}
static void bb_zeros(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) bb_u8(b, 0);
}

/* Opens a copy of buf[0..n) in a heap block of exactly n bytes, so ASan sees any overread. */
static celer_status open_exact(const uint8_t *buf, size_t n, gguf_file **out, celer_error *err) {
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, buf, n);
    celer_status st = gguf_open_memory(copy, n, out, err);
    if (st == CELER_OK) {
        /* Walk everything while the copy is alive, then drop it. */
        gguf_close(*out);
        *out = NULL;
        st = gguf_open_memory(buf, n, out, err);
    }
    free(copy);
    return st;
}

/* Expects the bytes to be rejected with `status` and a message holding both substrings. */
#define EXPECT_BAD(b, status, sub1, sub2) expect_bad(__FILE__, __LINE__, (b)->p, (b)->n, status, sub1, sub2)
static void expect_bad(const char *file, int line, const uint8_t *p, size_t n, celer_status want,
                       const char *sub1, const char *sub2) {
    gguf_file *f = NULL;
    celer_error err = {0};
    celer_status st = open_exact(p, n, &f, &err);
    if (st == CELER_OK) {
        test_fail_at(file, line, "file was accepted, expected \"%s\"", sub1);
        gguf_close(f);
        return;
    }
    if (st != want) test_fail_at(file, line, "status %d, expected %d (%s)", st, want, err.message);
    if (f) test_fail_at(file, line, "*out not NULL on failure");
    if (err.status != st) test_fail_at(file, line, "err.status %d != returned %d", err.status, st);
    if (!strstr(err.message, sub1) || (sub2 && !strstr(err.message, sub2)))
        test_fail_at(file, line, "message \"%s\" lacks \"%s\"%s%s", err.message, sub1,
                     sub2 ? " / " : "", sub2 ? sub2 : "");
}

static bool write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static const char *tmp_path(const char *name) {
    static char ring[4][512];
    static int next;
    char *buf = ring[next++ % 4];
    snprintf(buf, 512, "%s/%s", test_tmp_dir(), name);
    return buf;
}

/* A base file: one kv and one F32 tensor [8] at offset 0 (valid). */
static void bb_valid_base(bb *b) {
    bb_header(b, 3, 1, 1);
    bb_kv_u32(b, "a.b", 7);
    bb_tensor(b, "t", 1, (uint64_t[]){8}, 0, 0);
    bb_pad(b, 32);
    bb_zeros(b, 32);
}

/* ------------------------------------------------------------------ writer -> reader */

TEST(gguf_roundtrip_all_types) {
    gguf_writer *w = gguf_writer_create();
    REQUIRE(w);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -5000000000LL;
    double f64 = 3.141592653589793;
    CHECK(gguf_writer_set_scalar(w, "s.u8", GGUF_TYPE_UINT8, &u8) == CELER_OK);
    CHECK(gguf_writer_set_scalar(w, "s.i8", GGUF_TYPE_INT8, &i8) == CELER_OK);
    CHECK(gguf_writer_set_scalar(w, "s.u16", GGUF_TYPE_UINT16, &u16) == CELER_OK);
    CHECK(gguf_writer_set_scalar(w, "s.i16", GGUF_TYPE_INT16, &i16) == CELER_OK);
    CHECK(gguf_writer_set_u32(w, "s.u32", 4000000000u) == CELER_OK);
    CHECK(gguf_writer_set_i32(w, "s.i32", -2000000000) == CELER_OK);
    CHECK(gguf_writer_set_f32(w, "s.f32", 1.5f) == CELER_OK);
    CHECK(gguf_writer_set_bool(w, "s.bool", true) == CELER_OK);
    CHECK(gguf_writer_set_str(w, "s.str", "h\xc3\xa9llo \xe2\x96\x81world") == CELER_OK);
    CHECK(gguf_writer_set_str(w, "s.empty", "") == CELER_OK);
    CHECK(gguf_writer_set_u64(w, "s.u64", UINT64_MAX) == CELER_OK);
    CHECK(gguf_writer_set_scalar(w, "s.i64", GGUF_TYPE_INT64, &i64) == CELER_OK);
    CHECK(gguf_writer_set_scalar(w, "s.f64", GGUF_TYPE_FLOAT64, &f64) == CELER_OK);
    /* Replacing a value keeps the key's position. */
    CHECK(gguf_writer_set_u32(w, "s.replaced", 1) == CELER_OK);
    CHECK(gguf_writer_set_i32(w, "s.replaced", -9) == CELER_OK);
    /* Bad arguments. */
    CHECK(gguf_writer_set_scalar(w, "x", GGUF_TYPE_STRING, &u8) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_set_arr(w, "x", GGUF_TYPE_ARRAY, &u8, 1) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_set_str(w, NULL, "v") == CELER_ERR_INVALID_ARG);

    uint8_t a_u8[] = {0, 1, 255};
    int8_t a_i8[] = {-128, 0, 127};
    uint16_t a_u16[] = {0, 65535};
    int16_t a_i16[] = {-32768, 32767};
    uint32_t a_u32[] = {0, 4294967295u, 12345};
    int32_t a_i32[] = {-1, 2, -3, 4};
    float a_f32[] = {0.25f, -2.0f, 1e30f};
    bool a_bool[] = {true, false, true};
    uint64_t a_u64[] = {UINT64_MAX, 0};
    int64_t a_i64[] = {INT64_MIN, INT64_MAX};
    double a_f64[] = {-0.5, 1e300};
    CHECK(gguf_writer_set_arr(w, "a.u8", GGUF_TYPE_UINT8, a_u8, 3) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.i8", GGUF_TYPE_INT8, a_i8, 3) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.u16", GGUF_TYPE_UINT16, a_u16, 2) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.i16", GGUF_TYPE_INT16, a_i16, 2) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.u32", GGUF_TYPE_UINT32, a_u32, 3) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.i32", GGUF_TYPE_INT32, a_i32, 4) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.f32", GGUF_TYPE_FLOAT32, a_f32, 3) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.bool", GGUF_TYPE_BOOL, a_bool, 3) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.u64", GGUF_TYPE_UINT64, a_u64, 2) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.i64", GGUF_TYPE_INT64, a_i64, 2) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.f64", GGUF_TYPE_FLOAT64, a_f64, 2) == CELER_OK);
    CHECK(gguf_writer_set_arr(w, "a.empty", GGUF_TYPE_INT32, NULL, 0) == CELER_OK);
    const char *strs[] = {"one", "", "th\0ree"};
    uint64_t lens[] = {3, 0, 6};
    CHECK(gguf_writer_set_arr_str(w, "a.str", strs, lens, 3) == CELER_OK);

    /* Tensors of several types; sizes from the type table. */
    float t_f32[6] = {1, 2, 3, 4, 5, 6};
    uint16_t t_f16[5] = {0x3c00, 0x4000, 0, 0x8000, 0x7bff};
    uint8_t t_q40[2 * 18], t_q80[3 * 34], t_q4k[2 * 144], t_bf16[16];
    for (size_t i = 0; i < sizeof t_q40; i++) t_q40[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof t_q80; i++) t_q80[i] = (uint8_t)(i * 11);
    for (size_t i = 0; i < sizeof t_q4k; i++) t_q4k[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < sizeof t_bf16; i++) t_bf16[i] = (uint8_t)(i + 1);
    CHECK(gguf_writer_add_tensor(w, "f32", CELER_TYPE_F32, 2, (int64_t[]){3, 2}, t_f32, 24) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "f16", CELER_TYPE_F16, 1, (int64_t[]){5}, t_f16, 10) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "q4_0", CELER_TYPE_Q4_0, 2, (int64_t[]){32, 2}, t_q40, 36) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "q8_0", CELER_TYPE_Q8_0, 3, (int64_t[]){96, 1, 1}, t_q80, 102) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "q4_k", CELER_TYPE_Q4_K, 3, (int64_t[]){256, 1, 2}, t_q4k, 288) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "bf16", CELER_TYPE_BF16, 4, (int64_t[]){2, 1, 2, 2}, t_bf16, 16) == CELER_OK);
    /* Rejected tensors: wrong size, duplicate name, bad row length, unknown type, bad dims. */
    CHECK(gguf_writer_add_tensor(w, "bad", CELER_TYPE_F32, 1, (int64_t[]){3}, t_f32, 8) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "f32", CELER_TYPE_F32, 1, (int64_t[]){1}, t_f32, 4) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "bad", CELER_TYPE_Q4_0, 1, (int64_t[]){16}, t_q40, 9) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "bad", 99, 1, (int64_t[]){1}, t_f32, 4) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "bad", CELER_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, t_f32, 4) == CELER_ERR_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "bad", CELER_TYPE_F32, 1, (int64_t[]){0}, t_f32, 0) == CELER_ERR_INVALID_ARG);

    uint8_t *buf = NULL;
    size_t size = 0;
    celer_error err = {0};
    REQUIRE(gguf_writer_write_memory(w, &buf, &size, &err) == CELER_OK);
    gguf_writer_free(w);

    gguf_file *f = NULL;
    REQUIREF(gguf_open_memory(buf, size, &f, &err) == CELER_OK, "%s", err.message);
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_alignment(f), 32);
    CHECK_EQ_INT(gguf_data_offset(f) % 32, 0);
    CHECK_EQ_INT(gguf_file_size(f), size);
    CHECK(gguf_file_data(f) == buf);
    CHECK_EQ_INT(gguf_n_kv(f), 27);

    /* Insertion order, with the replaced key where it was first set. */
    CHECK(gguf_str_eq(gguf_kv_key(f, 0), "s.u8"));
    CHECK(gguf_str_eq(gguf_kv_key(f, 13), "s.replaced"));
    CHECK(gguf_kv_type(f, 13) == GGUF_TYPE_INT32);
    CHECK(gguf_find_key(f, "s.replaced") == 13);
    CHECK(gguf_find_key(f, "nope") == -1);
    CHECK(gguf_find_key(f, "s.u") == -1);

    int64_t v;
    uint64_t u;
    double d;
    float fl;
    uint32_t u32;
    int32_t i32;
    bool bo;
    gguf_str s;
    static const struct { const char *key; gguf_type type; int64_t value; } ints[] = {
        {"s.u8", GGUF_TYPE_UINT8, 200},         {"s.i8", GGUF_TYPE_INT8, -100},
        {"s.u16", GGUF_TYPE_UINT16, 60000},     {"s.i16", GGUF_TYPE_INT16, -30000},
        {"s.u32", GGUF_TYPE_UINT32, 4000000000LL}, {"s.i32", GGUF_TYPE_INT32, -2000000000},
        {"s.i64", GGUF_TYPE_INT64, -5000000000LL}, {"s.bool", GGUF_TYPE_BOOL, 1},
        {"s.replaced", GGUF_TYPE_INT32, -9},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        int64_t i = gguf_find_key(f, ints[k].key);
        REQUIREF(i >= 0, "key %s missing", ints[k].key);
        CHECKF(gguf_kv_type(f, i) == ints[k].type, "%s type %s", ints[k].key, gguf_type_name(gguf_kv_type(f, i)));
        CHECKF(gguf_kv_get_i64(f, i, &v) && v == ints[k].value, "%s: %lld", ints[k].key, (long long)v);
        CHECKF(gguf_kv_get_f64(f, i, &d) && d == (double)ints[k].value, "%s as f64", ints[k].key);
    }
    CHECK(gguf_get_u32(f, "s.u32", &u32) && u32 == 4000000000u);
    CHECK(!gguf_get_i32(f, "s.u32", &i32));           /* out of range */
    CHECK(gguf_get_i32(f, "s.i16", &i32) && i32 == -30000);
    CHECK(!gguf_get_u32(f, "s.i8", &u32));            /* negative */
    CHECK(!gguf_get_u64(f, "s.i64", &u));
    CHECK(gguf_get_u64(f, "s.u8", &u) && u == 200);
    CHECK(gguf_get_u64(f, "s.u64", &u) && u == UINT64_MAX);
    CHECK(!gguf_kv_get_i64(f, gguf_find_key(f, "s.u64"), &v)); /* above INT64_MAX */
    CHECK(gguf_kv_get_u64(f, gguf_find_key(f, "s.u64"), &u) && u == UINT64_MAX);
    CHECK(!gguf_kv_get_u64(f, gguf_find_key(f, "s.i8"), &u));
    CHECK(!gguf_get_u32(f, "s.bool", &u32));          /* bool is not an integer */
    CHECK(!gguf_get_u32(f, "s.f32", &u32));
    CHECK(!gguf_get_u32(f, "s.str", &u32));
    CHECK(!gguf_get_u32(f, "missing", &u32));
    CHECK(gguf_get_f32(f, "s.f32", &fl) && fl == 1.5f);
    CHECK(gguf_get_f32(f, "s.f64", &fl) && fl == (float)3.141592653589793);
    CHECK(gguf_get_f32(f, "s.i32", &fl) && fl == -2000000000.0f);
    CHECK(gguf_kv_get_f64(f, gguf_find_key(f, "s.f64"), &d) && d == 3.141592653589793);
    CHECK(!gguf_kv_get_i64(f, gguf_find_key(f, "s.f32"), &v));
    CHECK(gguf_get_bool(f, "s.bool", &bo) && bo);
    CHECK(!gguf_get_bool(f, "s.u8", &bo));
    CHECK(gguf_get_str(f, "s.str", &s) && s.len == 15 && memcmp(s.data, "h\xc3\xa9llo \xe2\x96\x81world", 15) == 0);
    CHECK(gguf_get_str(f, "s.empty", &s) && s.len == 0);
    CHECK(!gguf_get_str(f, "s.u8", &s));
    CHECK(!gguf_kv_get_str(f, 1000, &s));
    CHECK(!gguf_kv_get_i64(f, -1, &v));

    gguf_array a;
    REQUIRE(gguf_get_arr(f, "a.u8", &a));
    CHECK(a.type == GGUF_TYPE_UINT8 && a.n == 3);
    CHECK(gguf_arr_i64(&a, 2, &v) && v == 255);
    CHECK(!gguf_arr_i64(&a, 3, &v));
    REQUIRE(gguf_get_arr(f, "a.i8", &a));
    CHECK(gguf_arr_i64(&a, 0, &v) && v == -128);
    CHECK(!gguf_arr_u64(&a, 0, &u));
    REQUIRE(gguf_get_arr(f, "a.u16", &a));
    CHECK(gguf_arr_i64(&a, 1, &v) && v == 65535);
    REQUIRE(gguf_get_arr(f, "a.i16", &a));
    CHECK(gguf_arr_i64(&a, 0, &v) && v == -32768);
    REQUIRE(gguf_get_arr(f, "a.u32", &a));
    CHECK(gguf_arr_i64(&a, 1, &v) && v == 4294967295LL);
    REQUIRE(gguf_get_arr(f, "a.i32", &a));
    CHECK(a.n == 4 && gguf_arr_i64(&a, 2, &v) && v == -3);
    CHECK(gguf_arr_f64(&a, 3, &d) && d == 4.0);
    CHECK(!gguf_arr_str(&a, 0, &s));
    REQUIRE(gguf_get_arr(f, "a.f32", &a));
    CHECK(gguf_arr_f64(&a, 2, &d) && (float)d == 1e30f);
    CHECK(!gguf_arr_i64(&a, 0, &v));
    REQUIRE(gguf_get_arr(f, "a.bool", &a));
    CHECK(gguf_arr_i64(&a, 0, &v) && v == 1);
    CHECK(gguf_arr_i64(&a, 1, &v) && v == 0);
    REQUIRE(gguf_get_arr(f, "a.u64", &a));
    CHECK(!gguf_arr_i64(&a, 0, &v));
    CHECK(gguf_arr_u64(&a, 0, &u) && u == UINT64_MAX);
    REQUIRE(gguf_get_arr(f, "a.i64", &a));
    CHECK(gguf_arr_i64(&a, 0, &v) && v == INT64_MIN);
    CHECK(gguf_arr_i64(&a, 1, &v) && v == INT64_MAX);
    REQUIRE(gguf_get_arr(f, "a.f64", &a));
    CHECK(gguf_arr_f64(&a, 1, &d) && d == 1e300);
    REQUIRE(gguf_get_arr(f, "a.empty", &a));
    CHECK(a.n == 0 && a.type == GGUF_TYPE_INT32 && !gguf_arr_i64(&a, 0, &v));
    REQUIRE(gguf_get_arr(f, "a.str", &a));
    CHECK(a.type == GGUF_TYPE_STRING && a.n == 3);
    CHECK(gguf_arr_str(&a, 0, &s) && gguf_str_eq(s, "one"));
    CHECK(gguf_arr_str(&a, 1, &s) && s.len == 0);
    CHECK(gguf_arr_str(&a, 2, &s) && s.len == 6 && memcmp(s.data, "th\0ree", 6) == 0);
    CHECK(!gguf_arr_str(&a, 3, &s));
    CHECK(!gguf_arr_i64(&a, 0, &v));
    CHECK(!gguf_get_arr(f, "s.u8", &a));

    /* Tensors: order, shapes, sizes, aligned offsets, data. */
    CHECK_EQ_INT(gguf_n_tensors(f), 6);
    static const struct { const char *name; int32_t type; uint32_t n_dims; int64_t ne[4]; uint64_t size; } want[] = {
        {"f32", CELER_TYPE_F32, 2, {3, 2, 1, 1}, 24},     {"f16", CELER_TYPE_F16, 1, {5, 1, 1, 1}, 10},
        {"q4_0", CELER_TYPE_Q4_0, 2, {32, 2, 1, 1}, 36},  {"q8_0", CELER_TYPE_Q8_0, 3, {96, 1, 1, 1}, 102},
        {"q4_k", CELER_TYPE_Q4_K, 3, {256, 1, 2, 1}, 288}, {"bf16", CELER_TYPE_BF16, 4, {2, 1, 2, 2}, 16},
    };
    const void *datas[] = {t_f32, t_f16, t_q40, t_q80, t_q4k, t_bf16};
    for (int k = 0; k < 6; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, k);
        REQUIRE(t);
        CHECKF(gguf_str_eq(t->name, want[k].name), "tensor %d name", k);
        CHECK(gguf_find_tensor(f, want[k].name) == t);
        CHECK_EQ_INT(t->type, want[k].type);
        CHECK_EQ_INT(t->n_dims, want[k].n_dims);
        for (int dd = 0; dd < 4; dd++) CHECK_EQ_INT(t->ne[dd], want[k].ne[dd]);
        CHECK_EQ_INT(t->size, want[k].size);
        CHECK_EQ_INT(t->offset % 32, 0);
        CHECK((const uint8_t *)t->data == buf + gguf_data_offset(f) + t->offset);
        CHECKF(memcmp(t->data, datas[k], t->size) == 0, "tensor %s data", want[k].name);
    }
    CHECK(gguf_tensor_at(f, 6) == NULL && gguf_tensor_at(f, -1) == NULL);
    CHECK(gguf_find_tensor(f, "f3") == NULL);
    gguf_close(f);
    free(buf);
}

TEST(gguf_write_file_atomic) {
    gguf_writer *w = gguf_writer_create();
    REQUIRE(w);
    float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i * 0.5f;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_alignment(w, 64);
    CHECK(gguf_writer_add_tensor(w, "a", CELER_TYPE_F32, 1, (int64_t[]){3}, data, 12) == CELER_OK);
    CHECK(gguf_writer_add_tensor(w, "b", CELER_TYPE_F32, 2, (int64_t[]){8, 8}, data, 256) == CELER_OK);
    uint8_t *mem;
    size_t n;
    celer_error err = {0};
    REQUIRE(gguf_writer_write_memory(w, &mem, &n, &err) == CELER_OK);

    char dir[512];
    snprintf(dir, sizeof dir, "%s/gguf_atomic", test_tmp_dir());
    mkdir(dir, 0700);
    char path[600];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    REQUIREF(gguf_writer_write(w, path, &err) == CELER_OK, "%s", err.message);
    /* Overwriting an existing file works the same way. */
    REQUIREF(gguf_writer_write(w, path, &err) == CELER_OK, "%s", err.message);
    size_t fn;
    char *disk = test_read_file(path, &fn);
    REQUIRE(disk);
    CHECK(fn == n && memcmp(disk, mem, n) == 0);
    free(disk);
    /* Only the target is left in the directory: no temporary files. */
    DIR *dd = opendir(dir);
    REQUIRE(dd);
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(dd)))
        if (de->d_name[0] != '.') entries++;
    closedir(dd);
    CHECK_EQ_INT(entries, 1);

    gguf_file *f = NULL;
    REQUIREF(gguf_open(path, &f, &err) == CELER_OK, "%s", err.message);
    CHECK_EQ_INT(gguf_alignment(f), 64);
    CHECK_EQ_INT(gguf_data_offset(f) % 64, 0);
    const gguf_tensor *b = gguf_find_tensor(f, "b");
    REQUIRE(b);
    CHECK_EQ_INT(b->offset, 64);
    CHECK(memcmp(b->data, data, 256) == 0);
    CHECK_EQ_INT(gguf_file_size(f), gguf_data_offset(f) + 64 + 256);
    gguf_close(f);

    /* I/O errors are reported, naming the path. */
    err.message[0] = 0;
    CHECK(gguf_writer_write(w, "/nonexistent-dir-celer/x.gguf", &err) == CELER_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent-dir-celer/x.gguf") != NULL);
    free(mem);
    /* An invalid alignment is refused at write time. */
    gguf_writer_set_alignment(w, 48);
    uint8_t *m2 = NULL;
    celer_status st = gguf_writer_write_memory(w, &m2, &n, &err);
    CHECK(st == CELER_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "power of two") != NULL);
    if (st == CELER_OK) free(m2);
    gguf_writer_free(w);
}

/* A write that fails half-way (file size limit: EFBIG) is reported, and neither the target
 * nor a temporary file is left behind. Runs in a child because it lowers a process limit. */
TEST(gguf_write_io_error) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/gguf_ioerr", test_tmp_dir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/big.gguf", dir);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        static float data[1024];
        gguf_writer *w = gguf_writer_create();
        gguf_writer_add_tensor(w, "t", CELER_TYPE_F32, 1, (int64_t[]){1024}, data, sizeof data);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1000, 1000};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(3);
        celer_error err = {0};
        celer_status st = gguf_writer_write(w, path, &err);
        gguf_writer_free(w);
        _exit(st == CELER_ERR_IO && strstr(err.message, "big.gguf") && strstr(err.message, "too large") ? 0 : 1);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    DIR *dd = opendir(dir);
    REQUIRE(dd);
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(dd)))
        if (de->d_name[0] != '.') entries++;
    closedir(dd);
    CHECK_EQ_INT(entries, 0);
}

/* Hand-made nested arrays: [[1, 2, 3] (int32), [] (uint8), [["a", "bc"], ["d"]]]. */
static void bb_nested_file(bb *b) {
    bb_header(b, 3, 0, 2);
    bb_str(b, "nest");
    bb_u32(b, GGUF_TYPE_ARRAY);
    bb_u32(b, GGUF_TYPE_ARRAY);
    bb_u64(b, 3);
    bb_u32(b, GGUF_TYPE_INT32);
    bb_u64(b, 3);
    bb_u32(b, 1);
    bb_u32(b, 2);
    bb_u32(b, 3);
    bb_u32(b, GGUF_TYPE_UINT8);
    bb_u64(b, 0);
    bb_u32(b, GGUF_TYPE_ARRAY);
    bb_u64(b, 2);
    bb_u32(b, GGUF_TYPE_STRING);
    bb_u64(b, 2);
    bb_str(b, "a");
    bb_str(b, "bc");
    bb_u32(b, GGUF_TYPE_STRING);
    bb_u64(b, 1);
    bb_str(b, "d");
    bb_kv_u32(b, "after", 99);
    bb_pad(b, 32);
}

static void check_nested(const gguf_file *f) {
    gguf_array top, c, g;
    int64_t v;
    gguf_str s;
    REQUIRE(gguf_get_arr(f, "nest", &top));
    CHECK(top.type == GGUF_TYPE_ARRAY && top.n == 3);
    REQUIRE(gguf_arr_arr(&top, 0, &c));
    CHECK(c.type == GGUF_TYPE_INT32 && c.n == 3);
    CHECK(gguf_arr_i64(&c, 2, &v) && v == 3);
    REQUIRE(gguf_arr_arr(&top, 1, &c));
    CHECK(c.type == GGUF_TYPE_UINT8 && c.n == 0);
    REQUIRE(gguf_arr_arr(&top, 2, &c));
    CHECK(c.type == GGUF_TYPE_ARRAY && c.n == 2);
    REQUIRE(gguf_arr_arr(&c, 0, &g));
    CHECK(g.type == GGUF_TYPE_STRING && g.n == 2);
    CHECK(gguf_arr_str(&g, 1, &s) && gguf_str_eq(s, "bc"));
    REQUIRE(gguf_arr_arr(&c, 1, &g));
    CHECK(g.n == 1 && gguf_arr_str(&g, 0, &s) && gguf_str_eq(s, "d"));
    CHECK(!gguf_arr_arr(&top, 3, &c));
    CHECK(!gguf_arr_arr(&g, 0, &c));
    uint32_t u32;
    CHECK(gguf_get_u32(f, "after", &u32) && u32 == 99);
}

TEST(gguf_nested_arrays_and_copy_kv) {
    bb b = {0};
    bb_nested_file(&b);
    gguf_file *f = NULL;
    celer_error err = {0};
    REQUIREF(open_exact(b.p, b.n, &f, &err) == CELER_OK, "%s", err.message);
    check_nested(f);
    /* Copying every kv through the writer reproduces the file byte for byte. */
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) CHECK(gguf_writer_copy_kv(w, f, i) == CELER_OK);
    CHECK(gguf_writer_copy_kv(w, f, gguf_n_kv(f)) == CELER_ERR_INVALID_ARG);
    uint8_t *out;
    size_t n;
    REQUIRE(gguf_writer_write_memory(w, &out, &n, &err) == CELER_OK);
    CHECK(n == b.n && memcmp(out, b.p, n) == 0);
    gguf_file *g = NULL;
    REQUIREF(gguf_open_memory(out, n, &g, &err) == CELER_OK, "%s", err.message);
    check_nested(g);
    gguf_close(g);
    gguf_close(f);
    gguf_writer_free(w);
    free(out);
    free(b.p);
}

/* ------------------------------------------------------------------ real files */

TEST(gguf_stories260K) {
    const char *path = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(path)) {
        test_skip("%s missing", path);
        return;
    }
    gguf_file *f = NULL;
    celer_error err = {0};
    REQUIREF(gguf_open(path, &f, &err) == CELER_OK, "%s", err.message);
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_alignment(f), 32);
    CHECK_EQ_INT(gguf_file_size(f), 1185376);
    gguf_str s;
    uint32_t u;
    float eps;
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_u32(f, "llama.context_length", &u) && u == 2048);
    CHECK(gguf_get_u32(f, "llama.embedding_length", &u) && u == 64);
    CHECK(gguf_get_u32(f, "llama.feed_forward_length", &u) && u == 172);
    CHECK(gguf_get_u32(f, "llama.block_count", &u) && u == 5);
    CHECK(gguf_get_u32(f, "llama.attention.head_count", &u) && u == 8);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", &u) && u == 4);
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    gguf_array toks;
    REQUIRE(gguf_get_arr(f, "tokenizer.ggml.tokens", &toks));
    CHECK(toks.type == GGUF_TYPE_STRING && toks.n == 512);
    CHECK(gguf_arr_str(&toks, 0, &s) && gguf_str_eq(s, "<unk>"));
    CHECK(gguf_arr_str(&toks, 3, &s) && gguf_str_eq(s, "<0x00>"));
    CHECK(gguf_arr_str(&toks, 258, &s) && gguf_str_eq(s, "<0xFF>"));
    /* Shapes: 5 layers of dim 64, hidden 172, 4 KV heads of size 8. */
    CHECK_EQ_INT(gguf_n_tensors(f), 2 + 1 + 5 * 9);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    REQUIRE(t);
    CHECK(t->type == CELER_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512);
    CHECK_EQ_INT(t->size, 64 * 512 * 4);
    t = gguf_find_tensor(f, "blk.4.ffn_down.weight");
    REQUIRE(t);
    CHECK(t->ne[0] == 172 && t->ne[1] == 64);
    t = gguf_find_tensor(f, "blk.0.attn_k.weight");
    REQUIRE(t);
    CHECK(t->ne[0] == 64 && t->ne[1] == 32);
    CHECK(gguf_find_tensor(f, "blk.5.attn_k.weight") == NULL);
    int64_t params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        params += x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3];
    }
    CHECK_EQ_INT(params, 292800);

    /* Copying every kv and tensor through the writer reproduces the file exactly. */
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) CHECK(gguf_writer_copy_kv(w, f, i) == CELER_OK);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)x->name.len, x->name.data);
        CHECK(gguf_writer_add_tensor(w, name, x->type, x->n_dims, x->ne, x->data, x->size) == CELER_OK);
    }
    uint8_t *out;
    size_t n;
    REQUIRE(gguf_writer_write_memory(w, &out, &n, &err) == CELER_OK);
    CHECK(n == gguf_file_size(f) && memcmp(out, gguf_file_data(f), n) == 0);
    free(out);
    gguf_writer_free(w);
    gguf_close(f);
}

TEST(gguf_ref_qwen3_q4k) {
    const char *path = test_data_path("reference/ref-qwen3-Q4_K.gguf");
    if (!test_file_exists(path)) {
        test_skip("%s missing", path);
        return;
    }
    gguf_file *f = NULL;
    celer_error err = {0};
    REQUIREF(gguf_open(path, &f, &err) == CELER_OK, "%s", err.message);
    gguf_str s;
    uint32_t u;
    float x;
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "qwen3"));
    CHECK(gguf_get_str(f, "general.name", &s) && gguf_str_eq(s, "ref-qwen3"));
    CHECK(gguf_get_u32(f, "qwen3.embedding_length", &u) && u == 256);
    CHECK(gguf_get_u32(f, "qwen3.block_count", &u) && u == 2);
    CHECK(gguf_get_u32(f, "qwen3.feed_forward_length", &u) && u == 512);
    CHECK(gguf_get_u32(f, "qwen3.attention.head_count", &u) && u == 4);
    CHECK(gguf_get_u32(f, "qwen3.attention.head_count_kv", &u) && u == 2);
    CHECK(gguf_get_u32(f, "qwen3.attention.key_length", &u) && u == 64);
    CHECK(gguf_get_u32(f, "qwen3.context_length", &u) && u == 512);
    CHECK(gguf_get_u32(f, "general.file_type", &u) && u == 14);
    CHECK(gguf_get_u32(f, "general.quantization_version", &u) && u == 2);
    CHECK(gguf_get_f32(f, "qwen3.rope.freq_base", &x) && x == 1000000.0f);
    CHECK(gguf_get_f32(f, "qwen3.attention.layer_norm_rms_epsilon", &x) && x == 1e-6f);
    /* 2 layers x 11 tensors + token_embd, output_norm, output. */
    CHECK_EQ_INT(gguf_n_tensors(f), 25);
    const gguf_tensor *t = gguf_tensor_at(f, 0);
    CHECK(t && gguf_str_eq(t->name, "output.weight")); /* llama-quantize puts it first */
    static const struct { const char *name; int32_t type; int64_t ne0, ne1; } want[] = {
        {"output.weight", CELER_TYPE_Q4_K, 256, 512},      {"token_embd.weight", CELER_TYPE_Q4_K, 256, 512},
        {"output_norm.weight", CELER_TYPE_F32, 256, 1},    {"blk.0.attn_q.weight", CELER_TYPE_Q4_K, 256, 256},
        {"blk.0.attn_k.weight", CELER_TYPE_Q4_K, 256, 128}, {"blk.1.attn_v.weight", CELER_TYPE_Q4_K, 256, 128},
        {"blk.1.ffn_down.weight", CELER_TYPE_Q4_K, 512, 256}, {"blk.1.ffn_gate.weight", CELER_TYPE_Q4_K, 256, 512},
        {"blk.0.attn_q_norm.weight", CELER_TYPE_F32, 64, 1}, {"blk.1.attn_k_norm.weight", CELER_TYPE_F32, 64, 1},
        {"blk.0.ffn_norm.weight", CELER_TYPE_F32, 256, 1},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        t = gguf_find_tensor(f, want[k].name);
        REQUIREF(t, "tensor %s missing", want[k].name);
        CHECKF(t->type == want[k].type && t->ne[0] == want[k].ne0 && t->ne[1] == want[k].ne1,
               "%s: type %d shape [%lld, %lld]", want[k].name, t->type, (long long)t->ne[0],
               (long long)t->ne[1]);
        CHECK_EQ_INT(t->size, celer_row_size(t->type, t->ne[0]) * (size_t)t->ne[1]);
        CHECK_EQ_INT(t->offset % 32, 0);
    }
    CHECK_EQ_INT(gguf_find_tensor(f, "blk.0.attn_q.weight")->size, 256 / 256 * 144 * 256);
    CHECK(gguf_find_tensor(f, "blk.0.attn_q.bias") == NULL); /* that is qwen2 */
    gguf_close(f);
}

/* ------------------------------------------------------------------ truncation */

/* A small writer-made file with every kind of item, whose last tensor ends the file. */
static uint8_t *small_file(size_t *n) {
    bb nb = {0};
    bb_nested_file(&nb);
    gguf_file *nf = NULL;
    if (gguf_open_memory(nb.p, nb.n, &nf, NULL) != CELER_OK) abort();
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_f32(w, "llama.eps", 1e-5f);
    gguf_writer_set_bool(w, "b", false);
    const char *toks[] = {"<unk>", "a", "bc"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3);
    int32_t tt[] = {2, 1, 1};
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, tt, 3);
    gguf_writer_copy_kv(w, nf, 0);
    static uint8_t q4[18 * 2];
    static float f32[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    gguf_writer_add_tensor(w, "w.q4", CELER_TYPE_Q4_0, 2, (int64_t[]){32, 2}, q4, sizeof q4);
    gguf_writer_add_tensor(w, "w.f32", CELER_TYPE_F32, 1, (int64_t[]){8}, f32, 32);
    uint8_t *out = NULL;
    if (gguf_writer_write_memory(w, &out, n, NULL) != CELER_OK) abort();
    gguf_writer_free(w);
    gguf_close(nf);
    free(nb.p);
    return out;
}

/* End of the last byte any tensor uses: cutting the file anywhere before it must fail. */
static size_t needed_size(const gguf_file *f) {
    size_t end = (size_t)gguf_data_offset(f);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t e = (size_t)(gguf_data_offset(f) + t->offset + t->size);
        if (e > end) end = e;
    }
    return end;
}

static void check_cut(const uint8_t *buf, size_t cut, size_t needed) {
    gguf_file *f = NULL;
    celer_error err = {.message = ""};
    celer_status st = open_exact(buf, cut, &f, &err);
    if (cut < needed) {
        CHECKF(st == CELER_ERR_FORMAT && f == NULL, "cut at %zu of %zu accepted (status %d)", cut,
               needed, st);
        CHECKF(strlen(err.message) > 10, "cut at %zu: empty message", cut);
    } else {
        CHECKF(st == CELER_OK, "cut at %zu: %s", cut, err.message);
    }
    gguf_close(f);
}

TEST(gguf_truncated_every_byte) {
    size_t n;
    uint8_t *buf = small_file(&n);
    gguf_file *f = NULL;
    celer_error err = {0};
    REQUIREF(gguf_open_memory(buf, n, &f, &err) == CELER_OK, "%s", err.message);
    size_t needed = needed_size(f);
    CHECK_EQ_INT(needed, n);
    gguf_close(f);
    for (size_t cut = 0; cut < n && test_failed_now() < 5; cut++) check_cut(buf, cut, needed);
    /* The messages say what was cut: a few samples. */
    celer_error e2 = {0};
    CHECK(gguf_open_memory(buf, 3, &f, &e2) == CELER_ERR_FORMAT && strstr(e2.message, "truncated"));
    CHECK(gguf_open_memory(buf, 10, &f, &e2) == CELER_ERR_FORMAT && strstr(e2.message, "n_tensors"));
    CHECK(gguf_open_memory(buf, n - 1, &f, &e2) == CELER_ERR_FORMAT && strstr(e2.message, "w.f32") &&
          strstr(e2.message, "outside the file"));
    free(buf);
}

TEST(gguf_truncated_stories260K) {
    const char *path = test_data_path("models/stories260K.gguf");
    size_t n;
    uint8_t *buf = (uint8_t *)test_read_file(path, &n);
    if (!buf) {
        test_skip("%s missing", path);
        return;
    }
    gguf_file *f = NULL;
    celer_error err = {0};
    REQUIREF(gguf_open_memory(buf, n, &f, &err) == CELER_OK, "%s", err.message);
    size_t needed = needed_size(f), hdr = (size_t)gguf_data_offset(f);
    gguf_close(f);
    /* 250 cuts through the header (metadata and tensor directory), 50 through the data. */
    for (size_t k = 0; k < 250 && test_failed_now() < 5; k++) check_cut(buf, k * hdr / 250 + k % 7, needed);
    for (size_t k = 0; k < 50 && test_failed_now() < 5; k++) check_cut(buf, hdr + k * (n - hdr) / 50, needed);
    check_cut(buf, n - 1, needed);
    check_cut(buf, n, needed);
    free(buf);
}

/* ------------------------------------------------------------------ one test per malformation */

TEST(gguf_bad_magic) {
    bb b = {0};
    bb_valid_base(&b);
    memcpy(b.p, "GGML", 4);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "magic", "47 47 4d 4c");
    free(b.p);
}

TEST(gguf_bad_version) {
    bb b = {0};
    bb_valid_base(&b);
    b.p[4] = 1;
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "unsupported GGUF version 1", NULL);
    b.p[4] = 4;
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "unsupported GGUF version 4", NULL);
    b.p[4] = 0;
    b.p[7] = 3; /* a big-endian v3 file */
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "version 50331648", "big-endian");
    /* Version 2 reads like version 3. */
    b.p[4] = 2;
    b.p[7] = 0;
    gguf_file *f = NULL;
    REQUIRE(gguf_open_memory(b.p, b.n, &f, NULL) == CELER_OK);
    CHECK_EQ_INT(gguf_version(f), 2);
    gguf_close(f);
    free(b.p);
}

TEST(gguf_bad_n_kv) {
    bb b = {0};
    bb_header(&b, 3, 0, 1ull << 60);
    bb_kv_u32(&b, "a", 1);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "n_kv 1152921504606846976", "impossible");
    free(b.p);
}

TEST(gguf_bad_n_tensors) {
    bb b = {0};
    bb_header(&b, 3, 1ull << 60, 0);
    bb_zeros(&b, 64);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "n_tensors 1152921504606846976", "impossible");
    free(b.p);
}

TEST(gguf_bad_string_length) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_u64(&b, 1ull << 60); /* key length */
    bb_put(&b, "key", 3);
    bb_zeros(&b, 16);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "string length 1152921504606846976", "key of kv 0");
    /* A string value, named by its key. */
    bb c = {0};
    bb_header(&c, 3, 0, 1);
    bb_str(&c, "general.name");
    bb_u32(&c, GGUF_TYPE_STRING);
    bb_u64(&c, 0xffffffffffffffffull);
    bb_zeros(&c, 16);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "general.name", "string length 18446744073709551615");
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_array_count) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.scores");
    bb_u32(&b, GGUF_TYPE_ARRAY);
    bb_u32(&b, GGUF_TYPE_FLOAT32);
    bb_u64(&b, 1ull << 60);
    bb_zeros(&b, 64);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tokenizer.ggml.scores", "array count 1152921504606846976");
    /* Strings and nested arrays are bounded by their smallest encoding too. */
    bb c = {0};
    bb_header(&c, 3, 0, 1);
    bb_str(&c, "toks");
    bb_u32(&c, GGUF_TYPE_ARRAY);
    bb_u32(&c, GGUF_TYPE_STRING);
    bb_u64(&c, 9); /* 9 strings need at least 72 bytes */
    bb_zeros(&c, 64);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "toks", "array count 9 of string");
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_nesting_depth) {
    /* 8 levels are fine, 9 are refused. */
    for (int depth = 8; depth <= 9; depth++) {
        bb b = {0};
        bb_header(&b, 3, 0, 1);
        bb_str(&b, "deep");
        bb_u32(&b, GGUF_TYPE_ARRAY);
        for (int d = 1; d < depth; d++) {
            bb_u32(&b, GGUF_TYPE_ARRAY);
            bb_u64(&b, 1);
        }
        bb_u32(&b, GGUF_TYPE_UINT8);
        bb_u64(&b, 1);
        bb_u8(&b, 42);
        if (depth == 9) {
            EXPECT_BAD(&b, CELER_ERR_FORMAT, "nested more than 8 deep", "deep");
        } else {
            gguf_file *f = NULL;
            celer_error err = {0};
            REQUIREF(open_exact(b.p, b.n, &f, &err) == CELER_OK, "%s", err.message);
            gguf_array a;
            REQUIRE(gguf_get_arr(f, "deep", &a));
            for (int d = 1; d < depth; d++) REQUIRE(gguf_arr_arr(&a, 0, &a));
            int64_t v;
            CHECK(gguf_arr_i64(&a, 0, &v) && v == 42);
            gguf_close(f);
        }
        free(b.p);
    }
}

TEST(gguf_bad_value_type) {
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "weird");
    bb_u32(&b, 13);
    bb_zeros(&b, 16);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "key 'weird': unknown value type 13", NULL);
    bb c = {0};
    bb_header(&c, 3, 0, 1);
    bb_str(&c, "arr");
    bb_u32(&c, GGUF_TYPE_ARRAY);
    bb_u32(&c, 77);
    bb_u64(&c, 1);
    bb_zeros(&c, 16);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "arr", "unknown array element type 77");
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_n_dims) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "blk.0.w", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 32);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 'blk.0.w': n_dims 5 is more than 4", NULL);
    free(b.p);
}

TEST(gguf_bad_dims) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "zero", 2, (uint64_t[]){4, 0}, 0, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 32);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 'zero': dimension 1 is 0", "positive");
    bb c = {0};
    bb_header(&c, 3, 1, 0);
    bb_tensor(&c, "neg", 2, (uint64_t[]){(uint64_t)-4, 2}, 0, 0);
    bb_pad(&c, 32);
    bb_zeros(&c, 32);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "tensor 'neg': dimension 0 is -4", "positive");
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_element_overflow) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "huge", 3, (uint64_t[]){1ull << 32, 1ull << 20, 1ull << 12}, 0, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 32);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 'huge': element count overflows", "4096");
    /* Fits int64 as elements, but not as bytes. */
    bb c = {0};
    bb_header(&c, 3, 1, 0);
    bb_tensor(&c, "big", 2, (uint64_t[]){1ull << 31, 1ull << 31}, 28 /* F64 */, 0);
    bb_pad(&c, 32);
    bb_zeros(&c, 32);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "tensor 'big': byte size overflows", NULL);
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_row_block) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "q", 2, (uint64_t[]){48, 2}, CELER_TYPE_Q4_0, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 'q': row length 48 is not a multiple of the block size 32", "Q4_0");
    free(b.p);
}

TEST(gguf_bad_data_outside) {
    bb b = {0};
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "a", 1, (uint64_t[]){8}, 0, 0);
    bb_tensor(&b, "b", 1, (uint64_t[]){16}, 0, 32);
    bb_pad(&b, 32);
    bb_zeros(&b, 32 + 60); /* b needs 64 bytes from 32 */
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 'b': data at offset 32, 64 bytes, lies outside the file", NULL);
    /* An offset far past the end, and one that would wrap around. */
    bb c = {0};
    bb_header(&c, 3, 1, 0);
    bb_tensor(&c, "far", 1, (uint64_t[]){8}, 0, 0xffffffffffffffe0ull);
    bb_pad(&c, 32);
    bb_zeros(&c, 32);
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "tensor 'far'", "outside the file");
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_offset_unaligned) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "t", 1, (uint64_t[]){8}, 0, 4);
    bb_pad(&b, 32);
    bb_zeros(&b, 64);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "tensor 't': offset 4 is not a multiple of the alignment 32", NULL);
    free(b.p);
}

TEST(gguf_bad_duplicate_tensor) {
    bb b = {0};
    bb_header(&b, 3, 3, 0);
    bb_tensor(&b, "x", 1, (uint64_t[]){8}, 0, 0);
    bb_tensor(&b, "y", 1, (uint64_t[]){8}, 0, 32);
    bb_tensor(&b, "x", 1, (uint64_t[]){8}, 0, 64);
    bb_pad(&b, 32);
    bb_zeros(&b, 96);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "duplicate tensor name 'x' (tensors 0 and 2)", NULL);
    free(b.p);
}

TEST(gguf_bad_duplicate_key) {
    bb b = {0};
    bb_header(&b, 3, 0, 3);
    bb_kv_u32(&b, "llama.block_count", 1);
    bb_kv_u32(&b, "other", 1);
    bb_kv_u32(&b, "llama.block_count", 2);
    EXPECT_BAD(&b, CELER_ERR_FORMAT, "duplicate key 'llama.block_count' (kv 0 and kv 2)", NULL);
    free(b.p);
}

TEST(gguf_bad_alignment) {
    static const uint32_t bad[] = {0, 3, 48};
    for (int k = 0; k < 3; k++) {
        bb b = {0};
        bb_header(&b, 3, 0, 1);
        bb_kv_u32(&b, "general.alignment", bad[k]);
        char msg[64];
        snprintf(msg, sizeof msg, "general.alignment %u is not a nonzero power of two", bad[k]);
        EXPECT_BAD(&b, CELER_ERR_FORMAT, msg, NULL);
        free(b.p);
    }
    bb c = {0};
    bb_header(&c, 3, 0, 1);
    bb_str(&c, "general.alignment");
    bb_u32(&c, GGUF_TYPE_STRING);
    bb_str(&c, "32");
    EXPECT_BAD(&c, CELER_ERR_FORMAT, "general.alignment has type string", NULL);
    free(c.p);
    /* A valid non-default alignment moves the data section. */
    bb d = {0};
    bb_header(&d, 3, 1, 1);
    bb_kv_u32(&d, "general.alignment", 256);
    bb_tensor(&d, "t", 1, (uint64_t[]){8}, 0, 0);
    bb_pad(&d, 256);
    bb_zeros(&d, 32);
    gguf_file *f = NULL;
    REQUIRE(gguf_open_memory(d.p, d.n, &f, NULL) == CELER_OK);
    CHECK_EQ_INT(gguf_alignment(f), 256);
    CHECK_EQ_INT(gguf_data_offset(f), 256);
    gguf_close(f);
    free(d.p);
}

TEST(gguf_bad_unknown_tensor_type) {
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "blk.0.attn_q.weight", 2, (uint64_t[]){32, 2}, 99, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 256);
    EXPECT_BAD(&b, CELER_ERR_UNSUPPORTED, "tensor 'blk.0.attn_q.weight': unknown tensor type 99", NULL);
    /* Types in the ggml table that celer cannot compute with are still readable. */
    bb c = {0};
    bb_header(&c, 3, 1, 0);
    bb_tensor(&c, "q2k", 1, (uint64_t[]){256}, 10, 0);
    bb_pad(&c, 32);
    bb_zeros(&c, 96);
    gguf_file *f = NULL;
    REQUIRE(gguf_open_memory(c.p, c.n, &f, NULL) == CELER_OK);
    CHECK_EQ_INT(gguf_tensor_at(f, 0)->size, 84);
    gguf_close(f);
    free(b.p);
    free(c.p);
}

TEST(gguf_bad_open) {
    gguf_file *f = NULL;
    celer_error err = {0};
    CHECK(gguf_open("/nonexistent/celer.gguf", &f, &err) == CELER_ERR_NOT_FOUND);
    CHECK(f == NULL && strstr(err.message, "No such file"));
    CHECK(gguf_open(test_tmp_dir(), &f, &err) == CELER_ERR_IO);
    CHECK(strstr(err.message, "not a regular file") != NULL);
    const char *empty = tmp_path("empty.gguf");
    REQUIRE(write_file(empty, "", 0));
    CHECK(gguf_open(empty, &f, &err) == CELER_ERR_FORMAT);
    CHECK(strstr(err.message, "too short") != NULL);
    CHECK(gguf_open_memory(NULL, 0, &f, &err) == CELER_ERR_FORMAT);
    CHECK(gguf_open_memory(NULL, 5, &f, &err) == CELER_ERR_INVALID_ARG);
    /* A file without tensors may end without padding (llama.cpp's vocab-only files do). */
    bb b = {0};
    bb_header(&b, 3, 0, 1);
    bb_kv_u32(&b, "k", 1);
    REQUIRE(b.n % 32 != 0);
    REQUIRE(gguf_open_memory(b.p, b.n, &f, &err) == CELER_OK);
    CHECK_EQ_INT(gguf_n_tensors(f), 0);
    gguf_close(f);
    free(b.p);
}

/* Opens every seed of the fuzz target: they must be valid files (made with the writer). */
TEST(gguf_fuzz_seeds_valid) {
    const char *dir = "fuzz/seeds/fuzz_gguf";
    DIR *d = opendir(dir);
    if (!d) {
        test_skip("%s not found (run from the repository root)", dir);
        return;
    }
    struct dirent *de;
    int count = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        gguf_file *f = NULL;
        celer_error err = {0};
        CHECKF(gguf_open(path, &f, &err) == CELER_OK, "%s: %s", path, err.message);
        gguf_close(f);
        count++;
    }
    closedir(d);
    CHECK(count >= 3);
}

/* ------------------------------------------------------------------ celer info */

TEST(gguf_cli_info) {
    const char *bin = test_celer_bin();
    const char *model = test_data_path("models/stories260K.gguf");
    if (!test_file_exists(bin) || !test_file_exists(model)) {
        test_skip("%s or %s missing", bin, model);
        return;
    }
    char cmd[2048];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' info '%s'", bin, model);
    int rc = test_run_cmd(cmd, &out, false);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(out);
    CHECK(strstr(out, "GGUF version: 3"));
    CHECK(strstr(out, "alignment: 32"));
    CHECK(strstr(out, "metadata: 19 keys"));
    CHECK(strstr(out, "general.architecture") && strstr(out, "\"llama\""));
    CHECK(strstr(out, "llama.block_count") && strstr(out, "uint32"));
    CHECK(strstr(out, "string[512] [\"<unk>\", \"<s>\", \"</s>\""));
    CHECK(strstr(out, "504 more]"));
    CHECK(strstr(out, "blk.4.ffn_down.weight") && strstr(out, "[172, 64]"));
    CHECK(strstr(out, "48 tensors") && strstr(out, "292800 parameters") && strstr(out, "1185376"));
    free(out);

    snprintf(cmd, sizeof cmd, "'%s' info --all '%s'", bin, model);
    rc = test_run_cmd(cmd, &out, false);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(out);
    CHECK(!strstr(out, " more]"));
    CHECK(strstr(out, "\"<0xFF>\""));
    free(out);

    /* Bad files: exit status non-zero and "celer: FILE: <message>" on stderr. */
    size_t n;
    uint8_t *good = small_file(&n);
    struct { const char *name; size_t len; const char *msg; bool corrupt_magic; } bad[] = {
        {"cut.gguf", 40, "n_kv 7 is impossible", false},
        {"cut1.gguf", n - 1, "outside the file", false},
        {"cut2.gguf", 20, "truncated file", false},
        {"short.gguf", 0, "too short", false},
        {"magic.gguf", n, "bad magic", true}, /* last: it corrupts `good` */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *path = tmp_path(bad[k].name);
        if (bad[k].corrupt_magic) good[0] = 'X';
        REQUIRE(write_file(path, good, bad[k].len));
        snprintf(cmd, sizeof cmd, "'%s' info '%s' 2>&1 >/dev/null", bin, path);
        rc = test_run_cmd(cmd, &out, false);
        CHECKF(rc != 0, "%s: exit 0", bad[k].name);
        char want[700];
        snprintf(want, sizeof want, "celer: %s: ", path);
        CHECKF(out && strstr(out, want) && strstr(out, bad[k].msg), "%s: stderr \"%s\"", bad[k].name,
               out ? out : "");
        free(out);
    }
    free(good);
    snprintf(cmd, sizeof cmd, "'%s' info /nonexistent/x.gguf 2>&1 >/dev/null", bin);
    rc = test_run_cmd(cmd, &out, false);
    CHECK(rc != 0 && out && strstr(out, "celer: /nonexistent/x.gguf: cannot open"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' info 2>/dev/null", bin);
    CHECK(test_run_cmd(cmd, NULL, false) != 0);
}
