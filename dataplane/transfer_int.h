/*
 * transfer_int.h - private to dataplane/: the transfer engine's memory pool (pool.c), resume journal and
 * string map (journal.c).
 */
#ifndef CCR_TRANSFER_INT_H
#define CCR_TRANSFER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/blob.h"
#include "ccr/dataplane.h"

/* ----------------------------------------------------------------------------------------------------- */
/* pool.c: one payload memory budget shared by every worker                                              */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * A byte budget. Workers take their unit buffer from it when they start; a unit larger than usual (a
 * blob with bigger regions) takes the extra and blocks until other workers gave theirs back. Nothing
 * waits while holding extra bytes, so the wait always ends.
 */
struct tx_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t budget, used, peak;
};

void tx_pool_init(struct tx_pool *p, uint64_t budget);
void tx_pool_fini(struct tx_pool *p);

/*
 * Takes n bytes, waiting while the budget is exhausted. -ENOMEM at once if n can never fit (more than
 * the budget minus what is held by callers that never give back: `reserved`), -ECANCELED if cancel is
 * raised while waiting.
 */
int tx_pool_take(struct tx_pool *p, uint64_t n, uint64_t reserved, const atomic_int *cancel);

/* Takes n bytes only if they are free now: 0 or -EAGAIN. */
int tx_pool_try_take(struct tx_pool *p, uint64_t n);

void tx_pool_give(struct tx_pool *p, uint64_t n);

/* ----------------------------------------------------------------------------------------------------- */
/* journal.c: string map and resume journal                                                              */
/* ----------------------------------------------------------------------------------------------------- */

/* What the journal (or a listing) knows of one name. */
struct tx_entry {
    uint64_t size;
    int64_t mtime_ns;
    char etag[CCR_ETAG_MAX];
};

/* Open-addressing map from a name (copied) to an entry. */
struct tx_map {
    char **keys;
    struct tx_entry *vals;
    size_t cap, count;
};

void tx_map_init(struct tx_map *m);
void tx_map_fini(struct tx_map *m);
/* Inserts or replaces. 0 or -ENOMEM. */
int tx_map_put(struct tx_map *m, const char *key, const struct tx_entry *v);
const struct tx_entry *tx_map_get(const struct tx_map *m, const char *key);

/*
 * A resume journal: one append-only file per (kind, store URL, prefix, absolute local path, mode,
 * region size) under dir, named by a hash of those. Lines: "SIZE MTIME_NS ELEN:ETAG NLEN:NAME\n";
 * later lines override earlier ones; a torn last line (a kill during the write) is cut off on open.
 * Appends are written at once (they survive a killed process) and fsync'ed every 64 lines, every
 * second and on close (they survive a crash up to the last sync).
 */
struct tx_journal;

/* dir NULL: $XDG_STATE_HOME/ccr/journal, else $HOME/.local/state/ccr/journal (created 0700). */
int tx_journal_open(const char *dir, const char *kind, const char *url, const char *prefix,
                    const char *local_path, enum ccr_mode mode, uint64_t region, struct tx_journal **out,
                    struct ccr_err *err);
const struct tx_entry *tx_journal_find(const struct tx_journal *j, const char *name);
size_t tx_journal_count(const struct tx_journal *j);
/* Thread-safe. */
int tx_journal_append(struct tx_journal *j, const char *name, uint64_t size, int64_t mtime_ns,
                      const char *etag);
/* Syncs and closes; accepts NULL. Returns the first write/sync error seen, or 0. */
int tx_journal_close(struct tx_journal *j);
/* The journal's file path (owned by j). */
const char *tx_journal_path(const struct tx_journal *j);

#endif
