#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before a worker falls back to its condition variable. */
#define POOL_SPIN 4000

struct celer_pool {
    int32_t n_threads;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation; /* bumped by the caller for each region */
    atomic_int pending;              /* workers still running the current region */
    atomic_bool quit;
    int sleepers;                    /* workers waiting on `wake` (under mutex) */
    celer_pool_fn fn;
    void *arg;
};

typedef struct worker_arg {
    celer_pool *pool;
    int32_t ith;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    celer_pool *pool = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (long spin = 0; gen == seen && spin < POOL_SPIN; spin++) {
            cpu_relax();
            gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&pool->mutex);
            pool->sleepers++;
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->quit))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->quit)) return NULL;
        seen = gen;
        pool->fn(pool->arg, wa.ith, pool->n_threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

celer_pool *celer_pool_create(int32_t n_threads) {
    if (n_threads < 1) n_threads = 1;
    celer_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->quit, false);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
        if (!pool->threads) goto fail;
        for (int32_t i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) goto fail;
            wa->pool = pool;
            wa->ith = i;
            if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
                free(wa);
                pool->n_threads = i; /* only join what was started */
                goto fail;
            }
        }
    }
    return pool;
fail:
    celer_pool_free(pool);
    return NULL;
}

void celer_pool_free(celer_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->quit, true);
    atomic_fetch_add(&pool->generation, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int32_t i = 1; i < pool->n_threads && pool->threads; i++)
        if (pool->threads[i]) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}

int32_t celer_pool_n_threads(const celer_pool *pool) { return pool->n_threads; }

void celer_pool_run(celer_pool *pool, celer_pool_fn fn, void *arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_mutex_lock(&pool->mutex);
    if (pool->sleepers) pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    fn(arg, 0, pool->n_threads);
    /* Yield after a while so an oversubscribed machine still makes progress. */
    for (long spin = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spin++) {
        if (spin < 4000) cpu_relax();
        else sched_yield();
    }
}

static uint64_t split_pack(uint32_t first, uint32_t end) { return first | (uint64_t)end << 32; }

void celer_split_init(celer_segment *seg, int32_t n_seg, int32_t n_items) {
    for (int32_t t = 0; t < n_seg; t++) {
        uint32_t first = (uint32_t)((int64_t)n_items * t / n_seg);
        uint32_t end = (uint32_t)((int64_t)n_items * (t + 1) / n_seg);
        atomic_store_explicit(&seg[t].range, split_pack(first, end), memory_order_relaxed);
    }
}

int32_t celer_split_next(celer_segment *seg, int32_t n_seg, int32_t ith) {
    uint64_t v = atomic_load_explicit(&seg[ith].range, memory_order_relaxed);
    while ((uint32_t)v < (uint32_t)(v >> 32))
        if (atomic_compare_exchange_weak_explicit(&seg[ith].range, &v, v + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (int32_t)(uint32_t)v;
    for (;;) {
        int32_t victim = -1;
        uint32_t most = 0;
        for (int32_t t = 0; t < n_seg; t++) {
            uint64_t w = atomic_load_explicit(&seg[t].range, memory_order_relaxed);
            uint32_t left = (uint32_t)(w >> 32) - (uint32_t)w;
            if ((uint32_t)w < (uint32_t)(w >> 32) && left > most) victim = t, most = left;
        }
        if (victim < 0) return -1;
        v = atomic_load_explicit(&seg[victim].range, memory_order_relaxed);
        uint32_t first = (uint32_t)v, end = (uint32_t)(v >> 32);
        if (first < end &&
            atomic_compare_exchange_weak_explicit(&seg[victim].range, &v, split_pack(first, end - 1),
                                                  memory_order_relaxed, memory_order_relaxed))
            return (int32_t)(end - 1);
    }
}

int32_t celer_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; hyper-threads share a core. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int32_t cores = 0;
    if (f) {
        char line[256];
        int phys = 0, seen_pairs[1024][2], n_pairs = 0;
        while (fgets(line, sizeof line, f)) {
            int v;
            if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
            else if (sscanf(line, "core id : %d", &v) == 1) {
                int dup = 0;
                for (int i = 0; i < n_pairs; i++)
                    if (seen_pairs[i][0] == phys && seen_pairs[i][1] == v) dup = 1;
                if (!dup && n_pairs < 1024) {
                    seen_pairs[n_pairs][0] = phys;
                    seen_pairs[n_pairs][1] = v;
                    n_pairs++;
                }
            }
        }
        fclose(f);
        cores = n_pairs;
    }
    if (cores <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cores = n > 0 ? (int32_t)n : 1;
    }
    return cores;
}
