/*
 * model_pool.c - a small fork-join thread pool for the forward pass.
 *
 * Workers sleep on a condition variable between parallel steps and never
 * spin: on a loaded 2-core machine spinning threads steal the cores the
 * work needs.
 *
 * The caller does not wait for the workers, only for the tasks: a step is
 * over when its last task is done.  A worker that the OS has not scheduled
 * yet (the other core busy with another process) simply finds no task left
 * when it wakes and goes back to sleep, instead of holding every step up.
 * To make that safe, tasks are claimed from a 64-bit ticket holding the job
 * number (high half) and the next task (low half): a late worker holding a
 * finished job's description cannot claim a task of the next job.
 *
 * Each task owns its outputs, so results are the same whichever thread
 * runs a task.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "model_internal.h"

typedef struct job {
    curate_pool_fn fn;
    void *arg;
    size_t n_tasks;
    uint32_t id;
} job;

struct curate_pool {
    unsigned n_threads;           /* including the caller */
    pthread_t *workers;           /* n_threads - 1 */
    unsigned n_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;          /* a new job (or stop) */
    pthread_cond_t done;          /* the current job's last task finished */
    job cur;                      /* the current job (under mu) */
    int stop;
    _Atomic uint64_t ticket;      /* job id << 32 | next task */
    atomic_size_t n_done;         /* tasks of the current job finished */
};

typedef struct worker_arg {
    curate_pool *pool;
    unsigned index;               /* 1..n_threads-1 (0 is the caller) */
} worker_arg;

/* Claim the next task of job j; -1 when it has none left (or is over). */
static int64_t claim(curate_pool *pool, const job *j)
{
    uint64_t v = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != j->id || (v & 0xffffffffu) >= j->n_tasks)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&pool->ticket, &v, v + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return (int64_t)(v & 0xffffffffu);
    }
}

static void run_tasks(curate_pool *pool, const job *j, unsigned thread)
{
    int64_t t;
    while ((t = claim(pool, j)) >= 0) {
        j->fn(j->arg, (size_t)t, thread);
        size_t finished = atomic_fetch_add_explicit(&pool->n_done, 1, memory_order_acq_rel) + 1;
        if (finished == j->n_tasks) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    curate_pool *pool = wa->pool;
    unsigned index = wa->index;
    free(wa);
    uint32_t seen = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->stop && pool->cur.id == seen)
            pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop)
            break;
        job j = pool->cur;
        seen = j.id;
        pthread_mutex_unlock(&pool->mu);
        run_tasks(pool, &j, index);
        pthread_mutex_lock(&pool->mu);
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
    atomic_init(&pool->ticket, 0);
    atomic_init(&pool->n_done, 0);
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
    /* One task or one thread: no hand-off needed (nor for absurd counts
     * that would not fit the ticket's low half). */
    if (pool->n_started == 0 || n_tasks == 1 || n_tasks > UINT32_MAX) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    job j = {fn, arg, n_tasks, pool->cur.id + 1};
    if (j.id == 0)
        j.id = 1; /* 0 is what a fresh worker has "seen" */
    pool->cur = j;
    atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->ticket, (uint64_t)j.id << 32, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);

    run_tasks(pool, &j, 0);

    pthread_mutex_lock(&pool->mu);
    while (atomic_load_explicit(&pool->n_done, memory_order_acquire) < n_tasks)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}
