/*
 * model_pool.c - a small fork-join thread pool for the forward pass.
 *
 * Workers sleep on a condition variable between parallel steps and never
 * spin: on a loaded 2-core machine spinning threads steal the cores the
 * work needs.  A forward pass has a few dozen steps, so the wake-up cost
 * (tens of microseconds) is small beside the work of each step.
 *
 * Tasks are claimed with an atomic counter; each task owns its outputs, so
 * results are the same whichever thread runs a task.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "model_internal.h"

struct curate_pool {
    unsigned n_threads;           /* including the caller */
    pthread_t *workers;           /* n_threads - 1 */
    unsigned n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;          /* a new job (or stop) */
    pthread_cond_t done;          /* a worker finished the job */
    uint64_t generation;          /* bumped per job */
    unsigned n_finished;          /* workers done with the current job */
    int stop;
    /* the current job */
    curate_pool_fn fn;
    void *arg;
    size_t n_tasks;
    atomic_size_t next;
};

typedef struct worker_arg {
    curate_pool *pool;
    unsigned index;               /* 1..n_threads-1 (0 is the caller) */
} worker_arg;

static void run_tasks(curate_pool *pool, unsigned thread)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (t >= pool->n_tasks)
            break;
        pool->fn(pool->arg, t, thread);
    }
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    curate_pool *pool = wa->pool;
    unsigned index = wa->index;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mu);
        run_tasks(pool, index);
        pthread_mutex_lock(&pool->mu);
        pool->n_finished++;
        pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

curate_pool *curate_pool_new(unsigned n_threads)
{
    if (n_threads == 0)
        n_threads = 1;
    curate_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads;
    atomic_init(&pool->next, 0);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    if (n_threads > 1) {
        pool->workers = calloc(n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            curate_pool_free(pool);
            return NULL;
        }
        for (unsigned i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) {
                curate_pool_free(pool);
                return NULL;
            }
            wa->pool = pool;
            wa->index = i;
            if (pthread_create(&pool->workers[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                curate_pool_free(pool);
                return NULL;
            }
            pool->n_started++;
        }
    }
    return pool;
}

void curate_pool_free(curate_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (unsigned i = 0; i < pool->n_started; i++)
        pthread_join(pool->workers[i], NULL);
    free(pool->workers);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

unsigned curate_pool_threads(const curate_pool *pool)
{
    return pool ? pool->n_threads : 1;
}

void curate_pool_run(curate_pool *pool, curate_pool_fn fn, void *arg, size_t n_tasks)
{
    if (n_tasks == 0)
        return;
    /* One task or one thread: no hand-off needed. */
    if (pool->n_started == 0 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->n_tasks = n_tasks;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    pool->n_finished = 0;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);

    run_tasks(pool, 0);

    pthread_mutex_lock(&pool->mu);
    while (pool->n_finished < pool->n_started)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
