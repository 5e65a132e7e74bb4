/*
 * libFuzzer target for the GGUF reader: parse the input with gguf_open_memory and, when it is
 * accepted, touch every key, value, array element (nested arrays included) and every byte
 * range a tensor claims, so ASan sees any read outside the input. Accepted files are also
 * copied through the writer and must read back.
 *
 * Seeds (fuzz/seeds/fuzz_gguf/) come from the same file built with -DGGUF_FUZZ_MAKE_SEEDS:
 *     cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -DGGUF_FUZZ_MAKE_SEEDS fuzz/fuzz_gguf.c
 *        src/gguf/gguf_read.c src/gguf/gguf_write.c src/core/error.c src/core/types.c
 *        -o /tmp/mkseeds && /tmp/mkseeds fuzz/seeds/fuzz_gguf
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/types.h"
#include "gguf/gguf.h"

static volatile uint64_t sink; /* keeps the reads from being optimised away */

static void walk_array(const gguf_array *a, int depth) {
    if (depth > 16) abort(); /* the reader bounds nesting at 8 */
    for (uint64_t i = 0; i < a->n; i++) {
        gguf_str s;
        gguf_array child;
        int64_t v;
        uint64_t u;
        double d;
        switch (a->type) {
        case GGUF_TYPE_STRING:
            if (!gguf_arr_str(a, i, &s)) abort();
            if (s.len) sink += (uint8_t)s.data[0] + (uint8_t)s.data[s.len - 1];
            break;
        case GGUF_TYPE_ARRAY:
            if (!gguf_arr_arr(a, i, &child)) abort();
            walk_array(&child, depth + 1);
            break;
        case GGUF_TYPE_FLOAT32:
        case GGUF_TYPE_FLOAT64:
            if (!gguf_arr_f64(a, i, &d)) abort();
            sink += d == d;
            break;
        default:
            if (!gguf_arr_f64(a, i, &d)) abort();
            if (gguf_arr_i64(a, i, &v)) sink += (uint64_t)v;
            if (gguf_arr_u64(a, i, &u)) sink += u;
            break;
        }
    }
    int64_t v;
    gguf_str s;
    gguf_array c;
    if (gguf_arr_i64(a, a->n, &v) || gguf_arr_str(a, a->n, &s) || gguf_arr_arr(a, a->n, &c)) abort();
}

/* Copies every kv and tensor through the writer; the result must parse. */
static void round_trip(const gguf_file *f) {
    uint64_t total = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) total += gguf_tensor_at(f, i)->size;
    /* Overlapping tensors could make the copy much larger than the input; alignment may be
     * up to 2^31 in a valid file. Keep the fuzzer fast. */
    if (total > (1u << 20) || gguf_alignment(f) > 4096) return;
    gguf_writer *w = gguf_writer_create();
    if (!w) abort();
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        if (gguf_writer_copy_kv(w, f, i) != CELER_OK) abort();
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        if (t->name.len >= sizeof name || memchr(t->name.data, 0, t->name.len)) goto out;
        memcpy(name, t->name.data, t->name.len);
        name[t->name.len] = 0;
        if (gguf_writer_add_tensor(w, name, t->type, t->n_dims ? t->n_dims : 1, t->ne, t->data,
                                   t->size) != CELER_OK)
            goto out; /* e.g. an empty name, which the writer refuses */
    }
    uint8_t *buf;
    size_t n;
    celer_error err;
    if (gguf_writer_write_memory(w, &buf, &n, &err) == CELER_OK) {
        gguf_file *g = NULL;
        if (gguf_open_memory(buf, n, &g, &err) != CELER_OK) {
            fprintf(stderr, "writer output rejected: %s\n", err.message);
            abort();
        }
        if (gguf_n_kv(g) != gguf_n_kv(f) || gguf_n_tensors(g) != gguf_n_tensors(f)) abort();
        gguf_close(g);
        free(buf);
    }
out:
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    celer_error err;
    err.message[0] = 0;
    if (gguf_open_memory(data, size, &f, &err) != CELER_OK) {
        if (f || !err.message[0]) abort(); /* failure must leave a message and no file */
        return 0;
    }
    if (gguf_alignment(f) == 0 || (gguf_alignment(f) & (gguf_alignment(f) - 1))) abort();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str key = gguf_kv_key(f, i), s;
        gguf_array a;
        int64_t v;
        uint64_t u;
        double d;
        if (key.len) sink += (uint8_t)key.data[key.len - 1];
        /* The key index finds every key that has no NUL byte inside. */
        if (key.len < 256 && !memchr(key.data, 0, key.len)) {
            char k[256];
            memcpy(k, key.data, key.len);
            k[key.len] = 0;
            if (gguf_find_key(f, k) != i) abort();
        }
        switch (gguf_kv_type(f, i)) {
        case GGUF_TYPE_STRING:
            if (!gguf_kv_get_str(f, i, &s)) abort();
            if (s.len) sink += (uint8_t)s.data[s.len - 1];
            break;
        case GGUF_TYPE_ARRAY:
            if (!gguf_kv_get_arr(f, i, &a)) abort();
            walk_array(&a, 1);
            break;
        default:
            if (!gguf_kv_get_f64(f, i, &d)) abort();
            if (gguf_kv_get_i64(f, i, &v)) sink += (uint64_t)v;
            if (gguf_kv_get_u64(f, i, &u)) sink += u;
            break;
        }
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *p = t->data;
        if (!celer_type_get(t->type) || t->size == 0) abort();
        if (p < data || p + t->size > data + size) abort();
        if ((uint64_t)(p - data) % gguf_alignment(f)) abort();
        sink += p[0] + p[t->size - 1];
        char name[256];
        if (t->name.len < sizeof name && !memchr(t->name.data, 0, t->name.len)) {
            memcpy(name, t->name.data, t->name.len);
            name[t->name.len] = 0;
            if (gguf_find_tensor(f, name) != t) abort();
        }
    }
    round_trip(f);
    gguf_close(f);
    return 0;
}

#ifdef GGUF_FUZZ_MAKE_SEEDS
/* ------------------------------------------------------------------ seed files */

/* Writes w to DIR/name; version 2 files differ from version 3 only in the header field. */
static void save(const char *dir, const char *name, gguf_writer *w, uint8_t version) {
    uint8_t *buf;
    size_t n;
    celer_error err;
    char path[1024];
    if (gguf_writer_write_memory(w, &buf, &n, &err) != CELER_OK) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        exit(1);
    }
    buf[4] = version;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    printf("%s: %zu bytes\n", path, n);
    free(buf);
    gguf_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    static float f32[64];
    static uint8_t blocks[2 * 144];
    for (int i = 0; i < 64; i++) f32[i] = (float)i / 8;
    for (int i = 0; i < (int)sizeof blocks; i++) blocks[i] = (uint8_t)(i * 37);

    /* 1: a minimal llama-like model. */
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "llama.block_count", 1);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    float scores[] = {0, 0, 0, -1.5f};
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 4);
    gguf_writer_add_tensor(w, "token_embd.weight", CELER_TYPE_F32, 2, (int64_t[]){8, 4}, f32, 128);
    gguf_writer_add_tensor(w, "output_norm.weight", CELER_TYPE_F32, 1, (int64_t[]){8}, f32, 32);
    save(dir, "llama_tiny_v2.gguf", w, 2);

    /* 2: every scalar and array type. */
    w = gguf_writer_create();
    static const gguf_type fixed[] = {GGUF_TYPE_UINT8, GGUF_TYPE_INT8, GGUF_TYPE_UINT16,
                                      GGUF_TYPE_INT16, GGUF_TYPE_UINT32, GGUF_TYPE_INT32,
                                      GGUF_TYPE_FLOAT32, GGUF_TYPE_BOOL, GGUF_TYPE_UINT64,
                                      GGUF_TYPE_INT64, GGUF_TYPE_FLOAT64};
    uint8_t raw[8 * 3]; /* three elements of any type; each byte 0 or 1 so bools are valid */
    for (int i = 0; i < (int)sizeof raw; i++) raw[i] = (uint8_t)(i % 3 == 0);
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        char key[64];
        snprintf(key, sizeof key, "s.%s", gguf_type_name(fixed[k]));
        gguf_writer_set_scalar(w, key, fixed[k], raw);
        snprintf(key, sizeof key, "a.%s", gguf_type_name(fixed[k]));
        gguf_writer_set_arr(w, key, fixed[k], raw, 3);
    }
    gguf_writer_set_str(w, "s.string", "value");
    gguf_writer_set_arr_str(w, "a.string", (const char *[]){"x", "", "yz"}, NULL, 3);
    save(dir, "all_types.gguf", w, 3);

    /* 3: nested arrays, made by hand and copied through the writer. */
    static const uint8_t nested[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        4, 0, 0, 0, 0, 0, 0, 0, 'n', 'e', 's', 't', 9, 0, 0, 0,      /* key "nest": array */
        9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,                           /* of 2 arrays */
        5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, /* int32 [1,-2] */
        8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'q', /* string ["q"] */
    };
    gguf_file *nf;
    if (gguf_open_memory(nested, sizeof nested, &nf, NULL) != CELER_OK) return 1;
    w = gguf_writer_create();
    gguf_writer_copy_kv(w, nf, 0);
    gguf_writer_add_tensor(w, "t", CELER_TYPE_F16, 1, (int64_t[]){4}, f32, 8);
    save(dir, "nested.gguf", w, 3);
    gguf_close(nf);

    /* 4: quantized tensors with a non-default alignment. */
    w = gguf_writer_create();
    gguf_writer_set_alignment(w, 64);
    gguf_writer_add_tensor(w, "q4_0", CELER_TYPE_Q4_0, 2, (int64_t[]){32, 2}, blocks, 36);
    gguf_writer_add_tensor(w, "q8_0", CELER_TYPE_Q8_0, 1, (int64_t[]){32}, blocks, 34);
    gguf_writer_add_tensor(w, "q4_k", CELER_TYPE_Q4_K, 3, (int64_t[]){256, 1, 2}, blocks, 288);
    gguf_writer_add_tensor(w, "q6_k", CELER_TYPE_Q6_K, 4, (int64_t[]){256, 1, 1, 1}, blocks, 210);
    save(dir, "quant_align64.gguf", w, 3);
    return 0;
}
#endif
