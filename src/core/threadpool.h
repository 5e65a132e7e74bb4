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

/* Work items 0..n-1 of a region shared by threads with little hand-off and contiguous
 * streams: thread t owns the contiguous segment t of n_seg, takes its items in order (so it
 * reads memory as one stream), and when its segment is done takes single items from the end
 * of the segment with the most left. Threads slowed by other tenants of the machine then do
 * less, and nobody waits long at the end of the region. Each segment has its own cache line. */
typedef struct celer_segment {
    _Alignas(64) _Atomic uint64_t range; /* first | end << 32 of the items still untaken */
} celer_segment;
void celer_split_init(celer_segment *seg, int32_t n_seg, int32_t n_items);
/* The next item for thread ith (any ith < n_seg), or -1 when every item is taken. */
int32_t celer_split_next(celer_segment *seg, int32_t n_seg, int32_t ith);

/* Thread ith's contiguous share [*i0, *i1) of n items split evenly among nth threads (shares
 * differ by at most one item; together they cover 0..n-1 in thread order). */
static inline void celer_split_even(int64_t n, int32_t ith, int32_t nth, int64_t *i0, int64_t *i1) {
    *i0 = n * ith / nth;
    *i1 = n * (ith + 1) / nth;
}

/* Number of physical cores (falls back to online CPUs). */
int32_t celer_physical_cores(void);

#endif
