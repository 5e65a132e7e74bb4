/*
 * celer_quantize_file: rewrite a GGUF model with its matrices in another tensor type, the way
 * `llama-quantize --pure` does without an importance matrix, so the tensors come out
 * byte-identical to llama.cpp's.
 *
 *   - every key/value pair is copied in order; general.file_type becomes llama.cpp's ftype
 *     number for the target (a Q4_K file is "Q4_K_S", a Q5_K file "Q5_K_S": --pure turns the
 *     K-quant mixes off, so every matrix has the one type);
 *   - every tensor with two or more dimensions is converted to the target type;
 *   - 1-D tensors (norms, biases) are stored as F32, as llama.cpp keeps them;
 *   - inputs must be F32, F16 or BF16 (dequantized to float first); requantizing an already
 *     quantized model would compound errors, so it is refused.
 *
 * A matrix whose row length is not a multiple of the target's block size cannot be stored in
 * that type. llama.cpp then falls back to another type; celer falls back to Q8_0 when the row
 * is a multiple of 32 (llama.cpp's own choice for Q6_K; for Q4_K/Q5_K it picks Q5_0/Q5_1,
 * which celer does not compute) and to F16 otherwise.
 *
 * All output tensors are held in memory until the file is written (the GGUF writer borrows
 * them), so peak memory is about the size of the output file plus the mapped input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "core/types.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

/* llama.cpp's llama_ftype for a file whose matrices all have `type` (-1: not a target). */
static int32_t llama_ftype_for(int32_t type) {
    switch (type) {
    case CELER_TYPE_F32: return 0;
    case CELER_TYPE_F16: return 1;
    case CELER_TYPE_Q4_0: return 2;
    case CELER_TYPE_Q8_0: return 7;
    case CELER_TYPE_Q4_K: return 14; /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    case CELER_TYPE_Q5_K: return 16; /* LLAMA_FTYPE_MOSTLY_Q5_K_S */
    case CELER_TYPE_Q6_K: return 18;
    case CELER_TYPE_BF16: return 32;
    default: return -1;
    }
}

static bool is_float_type(int32_t type) {
    return type == CELER_TYPE_F32 || type == CELER_TYPE_F16 || type == CELER_TYPE_BF16;
}

/* The type a tensor of this shape gets when the file's target is `target`. */
static int32_t output_type(const gguf_tensor *t, int32_t target) {
    if (t->n_dims < 2) return CELER_TYPE_F32;
    if (celer_row_size(target, t->ne[0]) != 0) return target;
    if (celer_row_size(CELER_TYPE_Q8_0, t->ne[0]) != 0) return CELER_TYPE_Q8_0;
    return CELER_TYPE_F16;
}

/* One tensor's conversion, split by rows across the pool. */
typedef struct convert_job {
    const uint8_t *src;   /* input rows (F32/F16/BF16), possibly unaligned */
    int32_t src_type;
    size_t src_row;       /* bytes per input row */
    uint8_t *dst;
    int32_t dst_type;
    size_t dst_row;
    int64_t ne0, rows;
    float *scratch;       /* n_threads * ne0 floats */
} convert_job;

static void convert_rows(void *arg, int32_t ith, int32_t nth) {
    const convert_job *j = arg;
    int64_t r0, r1;
    celer_split_even(j->rows, ith, nth, &r0, &r1);
    float *row = j->scratch + (size_t)ith * (size_t)j->ne0;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *in = j->src + (size_t)r * j->src_row;
        if (j->src_type == CELER_TYPE_F32) memcpy(row, in, j->src_row); /* alignment-safe */
        else ct_to_float(j->src_type, in, row, j->ne0);
        ct_quantize_row(j->dst_type, row, j->dst + (size_t)r * j->dst_row, j->ne0);
    }
}

static celer_status check_inputs(const gguf_file *in, const char *in_path, int64_t *max_ne0,
                                 celer_error *err) {
    *max_ne0 = 1;
    for (int64_t i = 0; i < gguf_n_tensors(in); i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        if (!is_float_type(t->type)) {
            const char *tn = celer_type_name(t->type);
            return celer_fail(err, CELER_ERR_UNSUPPORTED,
                              "%s: tensor '%.*s' is already quantized (%s); quantize from an "
                              "F32, F16 or BF16 model",
                              in_path, (int)t->name.len, t->name.data, tn ? tn : "unknown type");
        }
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (t->ne[d] <= 0)
                return celer_fail(err, CELER_ERR_FORMAT, "%s: tensor '%.*s' has an empty dimension",
                                  in_path, (int)t->name.len, t->name.data);
        if (t->ne[0] > *max_ne0) *max_ne0 = t->ne[0];
    }
    return CELER_OK;
}

/* Converts every tensor into bufs[i] (malloc'd) and adds it to the writer. */
static celer_status convert_tensors(const gguf_file *in, const char *in_path, int32_t target,
                                    int32_t n_threads, int64_t max_ne0, gguf_writer *w,
                                    uint8_t **bufs, celer_error *err) {
    celer_pool *pool = celer_pool_create(n_threads);
    float *scratch = malloc((size_t)n_threads * (size_t)max_ne0 * sizeof(float));
    if (!pool || !scratch) {
        celer_pool_free(pool);
        free(scratch);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory starting %d threads", n_threads);
    }
    celer_status st = CELER_OK;
    char name[1024];
    for (int64_t i = 0; i < gguf_n_tensors(in) && st == CELER_OK; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        const int32_t dst_type = output_type(t, target);
        int64_t rows = 1;
        for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
        convert_job job = {
            .src = t->data, .src_type = t->type, .src_row = celer_row_size(t->type, t->ne[0]),
            .dst_type = dst_type, .dst_row = celer_row_size(dst_type, t->ne[0]),
            .ne0 = t->ne[0], .rows = rows, .scratch = scratch,
        };
        const uint64_t size = (uint64_t)job.dst_row * (uint64_t)rows;
        bufs[i] = job.dst = malloc(size ? (size_t)size : 1);
        if (!job.dst) {
            st = celer_fail(err, CELER_ERR_NOMEM, "out of memory for tensor '%.*s' (%llu bytes)",
                            (int)t->name.len, t->name.data, (unsigned long long)size);
            break;
        }
        if (rows * t->ne[0] >= 65536) celer_pool_run(pool, convert_rows, &job);
        else convert_rows(&job, 0, 1); /* small tensors: waking threads costs more */
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        st = gguf_writer_add_tensor(w, name, dst_type, t->n_dims, t->ne, job.dst, size);
        if (st != CELER_OK)
            st = celer_fail(err, st, "%s: cannot add tensor '%s' to the output", in_path, name);
    }
    celer_pool_free(pool);
    free(scratch);
    return st;
}

celer_status celer_quantize_file(const char *in_path, const char *out_path, int32_t type,
                                 int32_t n_threads, celer_error *err) {
    if (!in_path || !out_path)
        return celer_fail(err, CELER_ERR_INVALID_ARG, "quantize: input and output paths are required");
    const int32_t ftype = llama_ftype_for(type);
    if (ftype < 0) {
        const char *tn = celer_type_name(type);
        return celer_fail(err, CELER_ERR_INVALID_ARG,
                          "quantize: cannot write %s weights (targets: F32, F16, BF16, Q8_0, "
                          "Q4_0, Q4_K, Q5_K, Q6_K)%s",
                          tn ? tn : "unknown-type",
                          type == CELER_TYPE_Q8_K ? "; Q8_K is for activations only" : "");
    }
    if (n_threads <= 0) n_threads = celer_physical_cores();
    if (n_threads > 256) n_threads = 256;

    gguf_file *in = NULL;
    celer_status st = gguf_open(in_path, &in, err);
    if (st != CELER_OK) {
        celer_fail_prefix(err, "%s", in_path);
        return st;
    }

    int64_t max_ne0 = 1;
    st = check_inputs(in, in_path, &max_ne0, err);
    gguf_writer *w = NULL;
    uint8_t **bufs = NULL;
    if (st == CELER_OK) {
        w = gguf_writer_create();
        bufs = calloc((size_t)gguf_n_tensors(in) + 1, sizeof *bufs);
        if (!w || !bufs) st = celer_fail(err, CELER_ERR_NOMEM, "quantize: out of memory");
    }
    for (int64_t i = 0; st == CELER_OK && i < gguf_n_kv(in); i++) {
        st = gguf_writer_copy_kv(w, in, i);
        if (st != CELER_OK) {
            gguf_str k = gguf_kv_key(in, i);
            st = celer_fail(err, st, "quantize: cannot copy key '%.*s' of %s", (int)k.len, k.data,
                            in_path);
        }
    }
    if (st == CELER_OK) {
        st = gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
        if (st != CELER_OK) st = celer_fail(err, st, "quantize: cannot set general.file_type");
    }
    if (st == CELER_OK) st = convert_tensors(in, in_path, type, n_threads, max_ne0, w, bufs, err);
    if (st == CELER_OK) {
        st = gguf_writer_write(w, out_path, err); /* its messages name the path */
    }
    if (bufs)
        for (int64_t i = 0; i < gguf_n_tensors(in); i++) free(bufs[i]);
    free(bufs);
    gguf_writer_free(w);
    gguf_close(in);
    return st;
}
