#include "core/types.h"

#include <strings.h>

/* Sizes follow ggml's block structs (ggml-common.h). Types celer does not compute with are
 * listed so `celer info` can describe files that hold them. */
static const celer_type_info type_table[CELER_TYPE_TABLE_SIZE] = {
    [0] = {"F32", 1, 4, true},
    [1] = {"F16", 1, 2, true},
    [2] = {"Q4_0", 32, 18, true},
    [3] = {"Q4_1", 32, 20, false},
    [6] = {"Q5_0", 32, 22, false},
    [7] = {"Q5_1", 32, 24, false},
    [8] = {"Q8_0", 32, 34, true},
    [9] = {"Q8_1", 32, 36, false},
    [10] = {"Q2_K", 256, 84, false},
    [11] = {"Q3_K", 256, 110, false},
    [12] = {"Q4_K", 256, 144, true},
    [13] = {"Q5_K", 256, 176, true},
    [14] = {"Q6_K", 256, 210, true},
    [15] = {"Q8_K", 256, 292, true},
    [24] = {"I8", 1, 1, false},
    [25] = {"I16", 1, 2, false},
    [26] = {"I32", 1, 4, false},
    [27] = {"I64", 1, 8, false},
    [28] = {"F64", 1, 8, false},
    [30] = {"BF16", 1, 2, true},
};

const celer_type_info *celer_type_get(int32_t type) {
    if (type < 0 || type >= CELER_TYPE_TABLE_SIZE || !type_table[type].name) return NULL;
    return &type_table[type];
}

size_t celer_row_size(int32_t type, int64_t n) {
    const celer_type_info *t = celer_type_get(type);
    if (!t || n < 0 || n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}

const char *celer_type_name(int32_t type) {
    const celer_type_info *t = celer_type_get(type);
    return t ? t->name : NULL;
}

int32_t celer_type_from_name(const char *name) {
    for (int32_t i = 0; i < CELER_TYPE_TABLE_SIZE; i++)
        if (type_table[i].name && strcasecmp(type_table[i].name, name) == 0) return i;
    return -1;
}
