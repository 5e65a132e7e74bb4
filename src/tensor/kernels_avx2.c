/* AVX2 + FMA + F16C kernel set (work in progress: temporarily the reference set). */
#include "tensor/tensor.h"

const ct_kernels *ct_kernels_avx2(void);
const ct_kernels *ct_kernels_avx2(void) { return ct_kernels_reference(); }
