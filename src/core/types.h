/* Facts about tensor types (ggml numbering): block size, bytes per block, name, and whether
 * celer can compute with them. Kernels live in src/tensor; this table is shared by the GGUF
 * reader, which needs sizes to bounds-check tensors. */
#ifndef CELER_CORE_TYPES_H
#define CELER_CORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "celer.h"

#define CELER_TYPE_TABLE_SIZE 40

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct celer_type_info {
    const char *name;
    int64_t block_size;  /* elements per block */
    size_t type_size;    /* bytes per block */
    bool computable;     /* celer has kernels for it (as weights or activations) */
} celer_type_info;

/* NULL for a type number celer does not know at all. */
const celer_type_info *celer_type_get(int32_t type);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or type unknown. */
size_t celer_row_size(int32_t type, int64_t n);

#endif
