/*
 * sched.c - the unit scheduler shared by the file codec and the transfer engine (see sched_int.h).
 *
 * One mutex guards the list of started items with unclaimed units and the index of the next item to
 * start. It is taken twice per unit (claim, done): noise next to a unit's megabytes of AES-GCM and I/O.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "sched_int.h"

bool sched_cancelled(const struct sched *s)
{
    return s->cancel && atomic_load_explicit(s->cancel, memory_order_relaxed) != 0;
}

void sched_fatal(struct sched *s, int rc)
{
    int zero = 0;
    atomic_compare_exchange_strong(&s->fatal, &zero, rc);
}

static void active_remove(struct sched *s, struct sched_job *j)
{
    struct sched_job **pp = &s->head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = j->next;
    if (s->tail == j)
        s->tail = prev;
    j->next = NULL;
}

/* Records the end of one unit; the last unit of an item finishes it. */
static void unit_done(struct sched *s, struct sched_job *j, int rc, const struct ccr_err *e, int64_t region)
{
    pthread_mutex_lock(&s->mu);
    if (rc) {
        if (!j->failed) {
            j->failed = true;
            j->err = *e;
            j->fail_region = region;
            uint64_t unclaimed = j->n_units - j->next_unit;
            if (unclaimed) {
                active_remove(s, j);
                j->next_unit = j->n_units;
                j->pending -= unclaimed;
            }
        } else if (rc == -EBADMSG && region >= 0 &&
                   (j->err.code != -EBADMSG || j->fail_region < 0 || region < j->fail_region)) {
            /* report the first failing region, whichever worker saw it first */
            j->err = *e;
            j->fail_region = region;
        }
    }
    bool last = --j->pending == 0;
    pthread_mutex_unlock(&s->mu);
    if (last)
        s->ops->finish(s->ctx, j);
}

/*
 * Claims the next unit: from a started item if any, else by starting the next item. Returns false when
 * there is no work left for this worker.
 */
static bool claim(struct sched *s, struct sched_job **out_job, uint64_t *out_unit)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct sched_job *j = s->head;
        if (j) {
            *out_unit = j->next_unit++;
            if (j->next_unit == j->n_units)
                active_remove(s, j);
            pthread_mutex_unlock(&s->mu);
            *out_job = j;
            return true;
        }
        if (s->next_item < s->n_items && atomic_load(&s->fatal) == 0) {
            size_t idx = s->next_item++;
            if (sched_cancelled(s)) {
                /* account for items never started, without opening them */
                s->next_item = s->n_items;
                if (s->ops->skipped)
                    s->ops->skipped(s->ctx, s->n_items - idx);
                continue;
            }
            s->preparing++;
            pthread_mutex_unlock(&s->mu);
            struct sched_job *nj = NULL;
            int rc = s->ops->prepare(s->ctx, idx, &nj);
            if (rc == 0) {
                nj->next_unit = 0;
                nj->pending = nj->n_units;
                nj->failed = false;
                nj->fail_region = -1;
                nj->next = NULL;
                if (nj->n_units == 0) {
                    s->ops->finish(s->ctx, nj); /* nothing to schedule (an empty cleanroom-cse file) */
                    rc = -1;
                }
            }
            pthread_mutex_lock(&s->mu);
            s->preparing--;
            pthread_cond_broadcast(&s->cv);
            if (rc != 0)
                continue;
            nj->next_unit = 1;
            if (nj->n_units > 1) {
                if (s->tail)
                    s->tail->next = nj;
                else
                    s->head = nj;
                s->tail = nj;
            }
            pthread_mutex_unlock(&s->mu);
            *out_job = nj;
            *out_unit = 0;
            return true;
        }
        if (s->preparing == 0) {
            pthread_mutex_unlock(&s->mu);
            return false;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

struct sched_thread {
    struct sched *s;
    void *worker;
    unsigned index;
    pthread_t tid;
    bool started;
};

/* Is there nothing left to claim (no unclaimed unit, no item to start)? */
static bool drained(struct sched *s)
{
    pthread_mutex_lock(&s->mu);
    bool d = !s->head && (s->next_item >= s->n_items || atomic_load(&s->fatal) != 0);
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* Waits until the worker is admitted; false when the work ran out (or was cancelled) meanwhile. */
static bool admitted(struct sched *s, unsigned index)
{
    while (!s->ops->admit(s->ctx, index)) {
        if (drained(s) || sched_cancelled(s))
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct sched_thread *t = arg;
    struct sched *s = t->s;
    struct sched_job *j;
    uint64_t u;
    while ((!s->ops->admit || admitted(s, t->index)) && claim(s, &j, &u)) {
        struct ccr_err e;
        int64_t region = -1;
        ccr_err_clear(&e);
        int rc = s->ops->unit(s->ctx, t->worker, j, u, &e, &region);
        unit_done(s, j, rc, &e, region);
    }
    pthread_mutex_lock(&s->mu);
    s->running--;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void progress(struct sched *s)
{
    if (s->ops->progress)
        s->ops->progress(s->ctx);
}

int sched_run(struct sched *s, void *workers, size_t stride, unsigned n_workers)
{
    s->next_item = 0;
    s->preparing = s->running = 0;
    s->head = s->tail = NULL;
    atomic_init(&s->fatal, 0);
    if (s->n_items == 0 || n_workers == 0) {
        progress(s);
        return 0;
    }
    struct sched_thread *ts = ccr_calloc(n_workers, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->done_cv, &ca);
    pthread_condattr_destroy(&ca);

    unsigned started = 0;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < n_workers; i++) {
        ts[i].s = s;
        ts[i].index = i;
        ts[i].worker = (char *)workers + (size_t)i * stride;
        s->running++;
        if (pthread_create(&ts[i].tid, NULL, worker_main, &ts[i]) != 0) {
            s->running--;
            break;
        }
        ts[i].started = true;
        started++;
    }
    pthread_mutex_unlock(&s->mu);
    if (started == 0) {
        /* no thread could be created: do the work on this one */
        s->running = 1;
        worker_main(&ts[0]);
    } else {
        pthread_mutex_lock(&s->mu);
        while (s->running > 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            t.tv_nsec += 100 * 1000 * 1000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s->done_cv, &s->mu, &t);
            if (s->running > 0 && s->ops->progress) {
                pthread_mutex_unlock(&s->mu);
                progress(s);
                pthread_mutex_lock(&s->mu);
            }
        }
        pthread_mutex_unlock(&s->mu);
        for (unsigned i = 0; i < n_workers; i++)
            if (ts[i].started)
                pthread_join(ts[i].tid, NULL);
    }
    progress(s);
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ccr_free(ts);
    return atomic_load(&s->fatal);
}
