/*
 * volume_int.h - private to dataplane/: the parts of a volume (ccr/volume.h) that its three files share.
 *
 *   volume.c  the volume itself (options, worker threads, memory budget, AES contexts, statistics), the
 *             namespace (the listing tree, in-memory directories, files being written) and the public
 *             ccr_volume_* / ccr_vfile_* entry points, which dispatch to:
 *   vread.c   the read side: blob layouts, the region cache (shared by every open file, LRU, one
 *             budget), fetching and decrypting, the per-handle sequential detector and prefetch;
 *   vwrite.c  the write side: streaming uploads of sequential writes, local staging of everything
 *             else, commit, and copying a blob for rename.
 *
 * Lock order (never take an earlier one while holding a later one):
 *   writer->mu  ->  v->ns_mu  ->  v->mu  ->  v->q_mu / v->aead_mu
 * v->mu guards the cache, the budget and the blob registry; v->ns_mu the namespace; a writer's mu its
 * state. No lock is held across a store request, a decryption or a copy of payload.
 */
#ifndef CCR_VOLUME_INT_H
#define CCR_VOLUME_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ccr/crypto.h"
#include "ccr/dataplane.h"
#include "ccr/transfer.h"
#include "ccr/volume.h"

#define VOL_UNIT         ((uint64_t)4 << 20)  /* plaintext per transfer unit, as the transfer engine */
#define VOL_NONE_REGION  ((uint64_t)64 << 10) /* modes none/cpk: the cache's granularity */
#define VOL_UNIT_EXTRA   (CCR1_HEADER_LEN + CCR_CSE_TRAILER_LEN)
#define VOL_MAX_BLOCKS   50000u
#define VOL_PREFETCH_DEF ((uint64_t)64 << 20)
#define VOL_LIST_TTL_DEF 60.0

/* ----------------------------------------------------------------------------------------------------- */
/* layout: where region k of a blob is, in plaintext and in the stored bytes                             */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * A blob cut into regions: ccr1 regions, cleanroom-cse chunks, or (none/cpk) fixed 64 KiB pieces that
 * exist only so the cache has a granularity. Regions are grouped into transfer units (4 MiB of plaintext,
 * or one region when regions are larger): the unit is what prefetch fetches and what a writer uploads
 * as one block.
 */
struct vlayout {
    enum ccr_mode mode; /* CCR1, CSE or NONE (cpk is NONE to the engine) */
    unsigned log2;      /* ccr1 */
    uint64_t rsize;     /* plaintext bytes per region */
    uint64_t stride;    /* stored bytes per region */
    uint64_t pre;       /* stored bytes before region 0 (the ccr1 header) */
    uint64_t poff;      /* offset of the plaintext inside a stored region (the cse nonce) */
    uint64_t per_unit;  /* regions per transfer unit */
    uint64_t plain;     /* plaintext bytes of the blob (readers; writers keep their own size) */
    uint64_t regions;   /* regions of the blob (ccr1: at least 1) */
};

void vlay_init(struct vlayout *l, const struct ccr_volume *v, uint64_t plain);
uint64_t vlay_plain_len(const struct vlayout *l, uint64_t k);
uint64_t vlay_stored_off(const struct vlayout *l, uint64_t k);
uint64_t vlay_stored_len(const struct vlayout *l, uint64_t k);
/* Stored bytes a buffer needs for one whole unit (header and trailer included). */
uint64_t vlay_unit_bytes(const struct vlayout *l);

/* ----------------------------------------------------------------------------------------------------- */
/* volume                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

/* A job for the worker threads (prefetch, upload, size lookup). run owns j from then on. */
struct vjob {
    void (*run)(struct vjob *j);
    struct vjob *next;
};

/* Memory classes of the budget (see vmem_take). */
enum vmem_kind {
    VMEM_DEMAND,   /* a reader's fetch: may evict anything unpinned, waits */
    VMEM_PREFETCH, /* never waits, never evicts prefetched data nobody has read yet */
    VMEM_WRITE,    /* writers' unit buffers: at most half the budget in all; never waits (caller loops) */
    VMEM_STAGE,    /* staged files in memory: at most a quarter; never waits (the caller spills) */
};

struct vstats {
    atomic_uint_fast64_t bytes_read, bytes_fetched, cache_hits, cache_misses, prefetches, auth_failures,
        bytes_written, bytes_uploaded, commits, commit_failures, list_requests;
};

struct vnode;
struct vblob;
struct ventry;
struct vwriter;
struct vreplay;

struct ccr_volume {
    struct ccr_store *store;
    struct ccr_datastore ds; /* strings owned */
    enum ccr_mode mode;      /* cpk -> none */
    struct ccr_key key;
    uint8_t key_id[CCR_KEY_ID_LEN];
    unsigned log2;  /* ccr1 region size of the datastore */
    uint64_t chunk; /* cse chunk size */
    char *prefix;   /* "" or "p/" */
    size_t plen;
    uint64_t budget, prefetch;
    double list_ttl;
    bool writable;
    char *spill_dir;
    int64_t open_ns;
    struct vstats st;

    /* worker threads */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    struct vjob *q_head, *q_tail;
    bool q_stop;
    pthread_t *threads;
    unsigned nthreads;

    /* recycled payload buffers (buf_mu) */
    pthread_mutex_t buf_mu;
    struct {
        uint8_t *p;
        size_t n;
    } spare[16];
    size_t nspare, spare_bytes;

    /* AES-GCM contexts, one per concurrent user */
    pthread_mutex_t aead_mu;
    struct ccr_aead **aeads;
    size_t n_aeads, cap_aeads;

    /* budget + cache + blob registry (v->mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* an entry changed state, a prefetch finished, memory was given back */
    uint64_t used, peak; /* bytes of the budget in use */
    uint64_t used_write; /* ... by writers' unit buffers */
    uint64_t used_stage; /* ... by staged files */
    struct ventry **buckets;
    size_t nbuckets;
    struct ventry *lru_head, *lru_tail; /* head = most recent */
    struct vblob **blobs;               /* registry: name -> blob (chained) */
    size_t nblob_buckets;
    unsigned nseq; /* handles in sequential (prefetch) mode */

    /* namespace (v->ns_mu) */
    pthread_mutex_t ns_mu;
    pthread_cond_t ns_cv;
    struct vnode *root;
    bool listed, listing;
    double list_time;                      /* monotonic seconds of the last listing */
    struct vreplay *replay, **replay_tail; /* mutations while a listing runs */
    char **local_dirs;                     /* directories made with mkdir */
    size_t n_local_dirs, cap_local_dirs;
    struct ccr_vfile *files; /* every open vfile (for ccr_volume_close) */
    struct vwriter *writers; /* every writer */
};

void vol_submit(struct ccr_volume *v, struct vjob *j);

/*
 * Payload buffers (cache entries, unit buffers). Large ones are mapped directly and a few (at most
 * min(budget / 8, 32 MiB), outside the budget) are kept for reuse: memory the budget gives back then
 * really goes back to the system (no allocator arena of some fetcher thread keeps it), and a steady
 * stream of same-sized units costs no page faults. vbuf_put takes the same n and wipes what goes back
 * to the allocator; p may be NULL. Sanitizer builds use the allocator, so ASan sees every buffer.
 */
uint8_t *vbuf_get(struct ccr_volume *v, size_t n);
void vbuf_put(struct ccr_volume *v, uint8_t *p, size_t n);

/* An AES context for the calling thread's use until vol_aead_put. NULL on -ENOMEM. */
struct ccr_aead *vol_aead_get(struct ccr_volume *v);
void vol_aead_put(struct ccr_volume *v, struct ccr_aead *a);

/*
 * Takes n bytes of the budget with v->mu held, evicting cached regions (LRU first) as needed. DEMAND
 * waits (v->cv, releasing v->mu) while everything is pinned; the others return -EAGAIN instead. When
 * nothing at all is in use, n is granted even above the budget (one unit larger than a tiny budget).
 */
int vmem_take_locked(struct ccr_volume *v, uint64_t n, enum vmem_kind kind);
void vmem_give_locked(struct ccr_volume *v, uint64_t n, enum vmem_kind kind);
int vmem_take(struct ccr_volume *v, uint64_t n, enum vmem_kind kind);
void vmem_give(struct ccr_volume *v, uint64_t n, enum vmem_kind kind);

double vol_now(void);
int64_t vol_wall_ns(void);
/* prefix + path, owned by the caller. NULL on -ENOMEM. */
char *vol_blob_name(const struct ccr_volume *v, const char *path);

/*
 * The write side committed w's file (w->mu held): the namespace records the blob (volume.c). Does nothing
 * for a writer that was unlinked or replaced meanwhile (whoever did that deletes or overwrites the blob).
 */
void vns_committed(struct ccr_volume *v, struct vwriter *w, const struct ccr_blob_props *props,
                   uint64_t plain);

/* ----------------------------------------------------------------------------------------------------- */
/* read side (vread.c)                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

/* What a reader needs to know of a committed blob: from the listing (or props). */
struct vblobinfo {
    char etag[CCR_ETAG_MAX];
    uint64_t stored;
    uint64_t plain;
};

/* One open read handle's state: the pinned blob and the sequential detector. */
struct vreader {
    struct vblob *b;
    pthread_mutex_t mu;
    uint64_t last_end; /* end of the previous read */
    unsigned streak;   /* consecutive reads near the previous one */
    bool seq;          /* sequential mode: prefetching */
    bool started;
    uint64_t pf_next;     /* next unit to prefetch */
    unsigned pf_inflight; /* prefetch jobs queued or running (v->mu) */
    atomic_bool closing;
};

int vcache_init(struct ccr_volume *v);
void vcache_fini(struct ccr_volume *v);
/*
 * Evicts one unpinned cached entry, LRU first (v->mu held): 1 if it did, 0 if none is evictable now but
 * some are pinned or being fetched (waiting helps), -1 if there is nothing it could ever evict.
 */
int vcache_evict_one(struct ccr_volume *v, bool keep_fresh);

/* Opens a reader on blob (full name) at the version info describes. */
int vreader_open(struct ccr_volume *v, struct vreader *r, const char *blob, const struct vblobinfo *info,
                 struct ccr_err *err);
ssize_t vreader_read(struct ccr_volume *v, struct vreader *r, void *buf, size_t len, uint64_t off,
                     struct ccr_err *err);
/* vreader_read without the copy (ccr_vfile_read_ref); vreader_release gives back what ref pins. */
ssize_t vreader_read_ref(struct ccr_volume *v, struct vreader *r, size_t len, uint64_t off,
                         struct ccr_vref *ref, struct ccr_err *err);
void vreader_release(struct ccr_volume *v, struct ccr_vref *ref);
uint64_t vreader_size(const struct vreader *r);
/* Waits for the handle's prefetch jobs and drops the blob. */
void vreader_close(struct ccr_volume *v, struct vreader *r);

/* A cleanroom-cse blob's plaintext size (reads its trailer with if_match); others from the size. */
int vblob_plain_size(struct ccr_volume *v, const char *blob, const struct vblobinfo *info, uint64_t *out,
                     struct ccr_err *err);
/* The plaintext size a stored size implies without reading (ccr1, none). -EBADMSG if it fits no layout. */
int vblob_plain_from_stored(const struct ccr_volume *v, uint64_t stored, uint64_t *out);

/* ----------------------------------------------------------------------------------------------------- */
/* write side (vwrite.c)                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

/* A file open for writing; shared by every vfile open on the same path. */
struct vwriter {
    struct ccr_volume *v;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* an upload finished */
    unsigned refs;      /* vfiles using it (v->ns_mu) */
    char *path, *blob;  /* (mu; renamed under mu and ns_mu) */
    atomic_bool orphan; /* unlinked or replaced: never commit */
    atomic_uint_fast64_t size;
    _Atomic int64_t mtime_ns;
    struct vwriter *prev, *next; /* v->writers (ns_mu) */
    struct vwstate *s;           /* the rest: vwrite.c */
};

/*
 * Creates a writer for path. base (NULL: none) is the committed version: with trunc false the writer
 * starts from it (staged lazily, on the first change); with trunc true or no base it starts empty and
 * is committed even if nothing is written (create, O_TRUNC).
 */
int vwriter_create(struct ccr_volume *v, const char *path, const struct vblobinfo *base, bool trunc,
                   struct vwriter **out, struct ccr_err *err);
void vwriter_destroy(struct vwriter *w);
ssize_t vwriter_write(struct vwriter *w, const void *buf, size_t len, uint64_t off, struct ccr_err *err);
ssize_t vwriter_read(struct vwriter *w, void *buf, size_t len, uint64_t off, struct ccr_err *err);
int vwriter_truncate(struct vwriter *w, uint64_t size, struct ccr_err *err);
/* Commits if modified; 0, or the first upload/commit error. Takes w->mu. */
int vwriter_flush(struct vwriter *w, struct ccr_err *err);
/* Rename support, w->mu held by the caller: has anything been uploaded that only commits can keep? */
bool vwriter_streaming_locked(struct vwriter *w);
int vwriter_flush_locked(struct vwriter *w, struct ccr_err *err);
/* The ETag of the committed blob if the writer's content is exactly it (nothing changed since), else "". */
const char *vwriter_clean_etag_locked(struct vwriter *w);
/* Points the writer at a new path (w->mu held); base: the committed copy there, or NULL. */
int vwriter_retarget_locked(struct vwriter *w, const char *path, const struct ccr_blob_props *base,
                            uint64_t base_plain);

/* Copies a committed blob's stored bytes (pinned by etag) to another name: rename. */
int vblob_copy(struct ccr_volume *v, const char *from, const char *to, const char *etag,
               struct ccr_blob_props *out_props, struct ccr_err *err);

#endif
