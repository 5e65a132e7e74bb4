/* A persistent thread pool: threads are made once, then each parallel region wakes them,
 * runs fn(arg, ith, nth) on every thread (the caller is thread 0) and waits for all. Workers
 * spin briefly before sleeping, because a token's forward pass runs hundreds of short
 * regions and a sleep/wake per region would cost more than the work. */
#ifndef CELER_CORE_THREADPOOL_H
#define CELER_CORE_THREADPOOL_H

#include <stdint.h>

typedef struct celer_pool celer_pool;
typedef void (*celer_pool_fn)(void *arg, int32_t ith, int32_t nth);

/* n_threads >= 1 (1 = run everything on the caller). NULL on failure. */
celer_pool *celer_pool_create(int32_t n_threads);
void celer_pool_free(celer_pool *pool);
int32_t celer_pool_n_threads(const celer_pool *pool);
/* Runs fn on all threads and returns when every thread has finished. Not reentrant. */
void celer_pool_run(celer_pool *pool, celer_pool_fn fn, void *arg);

/* Number of physical cores (falls back to online CPUs). */
int32_t celer_physical_cores(void);

#endif
