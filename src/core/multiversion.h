/* Run-time dispatch for plain C loops outside the kernel files: the compiler builds an
 * AVX-512, an AVX2 and a baseline copy of a function and the loader picks one by cpuid
 * (GNU ifunc). Used for the forward pass's own loops (attention, norms, SwiGLU), which are
 * vectorized by the compiler rather than hand-written. */
#ifndef CELER_CORE_MULTIVERSION_H
#define CELER_CORE_MULTIVERSION_H

#if defined(__x86_64__) && defined(__gnu_linux__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CELER_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CELER_MULTIVERSION
#endif

#endif
