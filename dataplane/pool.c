/*
 * pool.c - the transfer engine's payload memory budget (see transfer_int.h).
 */
#include <errno.h>
#include <time.h>

#include "transfer_int.h"

void tx_pool_init(struct tx_pool *p, uint64_t budget)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->budget = budget;
    p->used = 0;
    p->peak = 0;
}

void tx_pool_fini(struct tx_pool *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

int tx_pool_try_take(struct tx_pool *p, uint64_t n)
{
    int rc = -EAGAIN;
    pthread_mutex_lock(&p->mu);
    if (n <= p->budget - p->used) {
        p->used += n;
        if (p->used > p->peak)
            p->peak = p->used;
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int tx_pool_take(struct tx_pool *p, uint64_t n, uint64_t reserved, const atomic_int *cancel)
{
    if (reserved > p->budget || n > p->budget - reserved)
        return -ENOMEM;
    pthread_mutex_lock(&p->mu);
    while (n > p->budget - p->used) {
        if (cancel && atomic_load(cancel)) {
            pthread_mutex_unlock(&p->mu);
            return -ECANCELED;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    p->used += n;
    if (p->used > p->peak)
        p->peak = p->used;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void tx_pool_give(struct tx_pool *p, uint64_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->used = n > p->used ? 0 : p->used - n;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
