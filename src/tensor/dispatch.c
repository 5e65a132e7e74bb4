/*
 * Run-time choice of kernel set. The SIMD sets live in files built with their own target
 * flags, so nothing from them may run before the CPU has been checked here. The check is a
 * pure function of cpuid (via __builtin_cpu_supports, which also checks that the OS saves
 * the wide registers), so there is no cached global state: callers ask once at model load
 * and keep the returned pointer to a const table.
 */
#include <stdbool.h>
#include <string.h>

#include "tensor/tensor.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* Defined in kernels_avx2.c / kernels_avx512.c. */
const ct_kernels *ct_kernels_avx2(void);
const ct_kernels *ct_kernels_avx512_vnni(int has_bf16);

#if defined(__x86_64__) || defined(__i386__)
#define CT_X86 1
#else
#define CT_X86 0
#endif

/* F16C from cpuid leaf 1 directly: clang (14) has no "f16c" name for __builtin_cpu_supports.
 * Its registers are the AVX ones, whose OS support the "avx2" check already covers. */
static bool cpu_has_f16c(void) {
#if CT_X86
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    return false;
#endif
}

static bool cpu_has_avx2(void) {
#if CT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
    return false;
#endif
}

/* Everything ISA_AVX512 in the Makefile lets the compiler use, except BF16 (only reached
 * through an explicit, separately checked table). VBMI (byte permutes, used to decode Q4_0
 * without gathers) comes with VNNI on Ice Lake, Sapphire Rapids and AMD Zen 4; Cascade Lake
 * (VNNI without VBMI) gets the AVX2 set. */
static bool cpu_has_avx512_vnni(void) {
#if CT_X86
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512vbmi");
#else
    return false;
#endif
}

static bool cpu_has_avx512_bf16(void) {
#if CT_X86
    return __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

int ct_kernels_available(const ct_kernels **out, int cap) {
    const ct_kernels *sets[3];
    int n = 0;
    sets[n++] = ct_kernels_reference();
    if (cpu_has_avx2()) sets[n++] = ct_kernels_avx2();
    if (cpu_has_avx512_vnni()) sets[n++] = ct_kernels_avx512_vnni(cpu_has_avx512_bf16());
    for (int i = 0; i < n && i < cap; i++) out[i] = sets[i];
    return n;
}

const ct_kernels *ct_kernels_by_name(const char *name) {
    const ct_kernels *sets[4];
    const int n = ct_kernels_available(sets, 4);
    for (int i = 0; i < n && i < 4; i++)
        if (name && !strcmp(sets[i]->name, name)) return sets[i];
    return NULL;
}

const ct_kernels *ct_kernels_best(void) {
    if (cpu_has_avx512_vnni()) return ct_kernels_avx512_vnni(cpu_has_avx512_bf16());
    if (cpu_has_avx2()) return ct_kernels_avx2();
    return ct_kernels_reference();
}
