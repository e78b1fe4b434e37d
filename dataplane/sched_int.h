/*
 * sched_int.h - private to dataplane/: the unit scheduler shared by the file codec (pipeline.c) and the
 * transfer engine (transfer.c).
 *
 * Both engines cut every item of work (a file, a blob) into units of whole regions that any worker can
 * process in any order. The scheduler hands units to N worker threads: a worker prefers an unclaimed
 * unit of an item already started (so one big file is shared by every worker, and few items are open at
 * once), and otherwise starts the next item itself, keeping its unit 0 (so small items are processed
 * whole by one worker each, many in parallel, with no hand-off). The first failure of an item withdraws
 * its unclaimed units; whoever finishes the item's last unit calls `finish` outside the lock.
 *
 * Engines embed a struct sched_job in their per-item struct and recover it with container_of-style
 * pointer arithmetic (SCHED_OWNER).
 */
#ifndef CCR_SCHED_INT_H
#define CCR_SCHED_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"

/* The struct of type `type` whose member `member` is at `ptr`. */
#define SCHED_OWNER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* One item's scheduling state. n_units is set by the engine's prepare; the rest belongs to the scheduler
 * until `finish`, which may read failed/err/fail_region freely. */
struct sched_job {
    uint64_t n_units;       /* units of this item; 0: nothing to schedule, finished at once */
    uint64_t next_unit;     /* next unit to hand out (under the lock) */
    uint64_t pending;       /* units not yet done (under the lock) */
    bool failed;            /* a unit failed: err and fail_region say how */
    int64_t fail_region;    /* authentication failures: the first failing region; else -1 */
    struct ccr_err err;     /* the failure that decided the item's fate */
    struct sched_job *next; /* the list of started items with unclaimed units */
};

struct sched_ops {
    /*
     * Starts item `index` (called without the lock, by the worker that will run its unit 0). Returns 0
     * with *out_job (n_units set), or non-zero when the item is already done with (failed and recorded
     * by the engine, or skipped).
     */
    int (*prepare)(void *ctx, size_t index, struct sched_job **out_job);
    /* Runs one unit on `worker`. Fills e and *region (-1 when none) on failure. */
    int (*unit)(void *ctx, void *worker, struct sched_job *j, uint64_t unit, struct ccr_err *e,
                int64_t *region);
    /* The item's last unit is done (or it failed and nothing is left running): finish it. */
    void (*finish)(void *ctx, struct sched_job *j);
    /* Called about every 100 ms and once at the end, on the thread that called sched_run. May be NULL. */
    void (*progress)(void *ctx);
    /* `count` items were never started because the run was cancelled (for progress accounting). */
    void (*skipped)(void *ctx, size_t count);
    /* May worker `index` take work now? NULL: always. A worker told no sleeps a little and asks again
     * (while work is left), so a run can use fewer of its workers than it started, e.g. while a remote
     * store probes how many requests pay. Worker 0 must always be admitted. */
    bool (*admit)(void *ctx, unsigned index);
};

struct sched {
    const struct sched_ops *ops;
    void *ctx;
    size_t n_items;
    const atomic_int *cancel; /* may be NULL */

    /* private */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers: work may have appeared */
    pthread_cond_t done_cv; /* sched_run's thread: a worker exited */
    size_t next_item;
    unsigned preparing, running;
    struct sched_job *head, *tail;
    atomic_int fatal;
};

/*
 * Runs the items with n_workers threads; worker i is handed (char *)workers + i * stride. If no thread
 * can be created the work runs on the calling thread. Returns 0, or the code given to sched_fatal.
 */
int sched_run(struct sched *s, void *workers, size_t stride, unsigned n_workers);

/* Stops starting new items (a result could not be recorded, e.g. -ENOMEM); sched_run returns rc. */
void sched_fatal(struct sched *s, int rc);

/* True once the cancel flag is raised. */
bool sched_cancelled(const struct sched *s);

#endif
