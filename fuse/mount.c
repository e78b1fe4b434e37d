/*
 * mount.c - ccr_mount_run: a volume served over the libfuse3 low-level API (contract in ccr/mount.h).
 *
 * Threading. libfuse's multithreaded loop runs up to max_threads workers (16 by default); each request
 * is handled synchronously on the worker that received it: the worker copies what it needs from the
 * inode table under one mutex, calls the volume (which blocks while it fetches, decrypts, uploads or
 * commits; it is safe to call from many threads at once) and replies. Sixteen workers give the kernel
 * sixteen requests in flight, which is what random reads over a store with a round trip need; a
 * sequential reader is served from the volume's prefetch window, so its requests rarely wait.
 *
 * Replies. Reads fill a per-worker buffer (kept for the thread's life: no allocation or page faults per
 * request) with ccr_vfile_read and reply with fuse_reply_buf; a read that fails anywhere fails whole
 * (a short reply would tell the kernel the file ended there). Errors are replied as -rc.
 *
 * Caching. The kernel's page cache keeps file data across opens while a file's size and modification
 * time are unchanged (keep_cache); entries and attributes are cached for list_ttl seconds on a read-only
 * mount and one second on a read-write one; ENOENT lookups are cached as negative entries for as long.
 * Reads and writes go through the page cache (no direct_io); O_DIRECT readers bypass it and their
 * requests reach us directly (async, in parallel, with FUSE_CAP_ASYNC_DIO).
 *
 * Handles. An open file is a struct fhandle around a struct ccr_vfile. Writable handles are also linked
 * from their node (so getattr reports the size written so far, and truncate(path) reaches the open
 * file) and are reference-counted, because such a borrow may outlive the release of the handle by a few
 * microseconds; the last reference closes the vfile.
 *
 * The kernel's readahead (set through sysfs, as root) decides how many read requests a sequential reader
 * keeps in flight; it is scaled to the memory budget (see readahead_kb).
 *
 * Shutdown. When the loop ends (unmount or signal), the session is unmounted (lazily) and destroyed
 * first, so writers still holding descriptors get ENOTCONN from then on and what was written stays
 * unchanged; then directory snapshots and every handle left open are closed (closing a writer commits
 * it), the summary is logged and ccr_volume_close frees the volume (committing anything still open).
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ccr/dataplane.h"
#include "ccr/mount.h"
#include "ccr/transfer.h"
#include "inode_int.h"
#include "mount_int.h"

#define MIB               ((size_t)1 << 20)
#define DEFAULT_THREADS   16
#define MAX_DEFAULT_RA_KB 4096u
#define MIN_DEFAULT_RA_KB 128u
#define RW_TTL            1.0
#define FOREVER_TTL       (86400.0 * 365)
#define REPORTED_BLKSIZE  (128 * 1024)
#define STATFS_BLOCK      4096
#define STATFS_BLOCKS     ((fsblkcnt_t)1 << 28) /* 1 TiB of 4 KiB blocks */
#define STATFS_FILES      ((fsfilcnt_t)1 << 30)

struct fhandle {
    struct mnt *m;
    struct inode *node; /* holds one of node->opens */
    struct ccr_vfile *vf;
    bool writable;
    atomic_uint refs;              /* 1 for the open, +1 per borrower (writers only) */
    _Atomic int64_t mtime_ns;      /* writers: the last change through this handle */
    struct fhandle *wprev, *wnext; /* node->writers (under it.mu) */
    struct fhandle *prev, *next;   /* m->files (under it.mu) */
};

struct dent {
    char *name;
    struct ccr_vstat st;
};

/* A directory's entries, listed at opendir: readdir pages through a stable snapshot by index. */
struct dsnap {
    struct inode *node; /* holds one of node->opens */
    char *path;
    uint64_t parent_ino;
    struct dent *e;
    size_t n, cap;
    struct dsnap *prev, *next; /* m->dirs (under it.mu) */
};

struct tbuf {
    char *p;
    size_t cap;
};

struct mnt {
    const struct ccr_mount_opts *o;
    struct ccr_volume *vol;
    struct itable it;      /* it.mu also guards files, dirs and the handles' list links */
    struct fhandle *files; /* every open file */
    struct dsnap *dirs;    /* every open directory */
    bool writable;
    double ttl;     /* entry and attribute timeout */
    double neg_ttl; /* negative entries */
    uid_t uid;
    gid_t gid;
    int64_t start_ns;
    char *mountpoint; /* absolute */
    pthread_key_t buf_key;
    bool buf_key_ok;
    atomic_uint_fast64_t requests;
    atomic_uint open_files;

    /* the statistics thread */
    pthread_t stats_thr;
    bool stats_started;
    pthread_mutex_t stats_mu;
    pthread_cond_t stats_cv;
    bool stats_stop;
    bool mounted;
};

/* ----------------------------------------------------------------------------------------------------- */
/* small helpers                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The kernel's readahead: what --readahead says, else 1/32 of the memory budget between 128 KiB and 4 MiB.
 * Deeper readahead means more requests in flight and more throughput, but under a small budget the
 * kernel's parallel requests and the volume's own prefetch then compete for the cache and evict units
 * before they are read (measured: 1 MiB under a 16 MiB budget re-fetched up to 8%; 1/32 re-fetched none).
 */
static unsigned readahead_kb(const struct ccr_mount_opts *o)
{
    if (o->readahead_kb)
        return o->readahead_kb;
    uint64_t budget = o->volume.memory ? o->volume.memory : CCR_MEMORY_DEFAULT;
    uint64_t kb = budget / 32 / 1024;
    unsigned p = MIN_DEFAULT_RA_KB;
    while (p * 2 <= kb && p * 2 <= MAX_DEFAULT_RA_KB)
        p *= 2;
    return p;
}

static struct mnt *M(fuse_req_t req)
{
    struct mnt *m = fuse_req_userdata(req);
    atomic_fetch_add_explicit(&m->requests, 1, memory_order_relaxed);
    return m;
}

/* Errors a file system returns in the normal course of things: not worth a log line. */
static bool expected(int rc)
{
    switch (-rc) {
    case ENOENT:
    case EEXIST:
    case ENOTEMPTY:
    case EXDEV:
    case EISDIR:
    case ENOTDIR:
    case EROFS:
    case EINVAL:
    case ENAMETOOLONG:
    case EPERM:
        return true;
    default:
        return false;
    }
}

static void log_fail(enum ccr_log_level level, const char *what, const char *path, int rc,
                     const struct ccr_err *e)
{
    if (!ccr_log_enabled(level))
        return;
    const char *where = e && e->where[0] ? e->where : path;
    const char *msg = e && e->msg[0] ? e->msg : strerror(-rc);
    if (e && e->offset >= 0)
        ccr_log(level, "%s %s: %s (offset %" PRId64 ")", what, where[0] ? where : "/", msg, e->offset);
    else
        ccr_log(level, "%s %s: %s", what, where[0] ? where : "/", msg);
}

static void tbuf_free(void *arg)
{
    struct tbuf *b = arg;
    if (b) {
        ccr_free(b->p);
        ccr_free(b);
    }
}

/* The calling worker's buffer of at least n bytes (kept for the thread's life), or NULL. */
static char *tbuf_get(struct mnt *m, size_t n)
{
    struct tbuf *b = pthread_getspecific(m->buf_key);
    if (!b) {
        b = ccr_calloc(1, sizeof(*b));
        if (!b)
            return NULL;
        if (pthread_setspecific(m->buf_key, b) != 0) {
            ccr_free(b);
            return NULL;
        }
    }
    if (b->cap < n) {
        size_t want = (n + 128 * 1024 - 1) & ~(size_t)(128 * 1024 - 1);
        ccr_free(b->p);
        b->p = ccr_malloc(want);
        b->cap = b->p ? want : 0;
    }
    return b->p;
}

static void fill_attr(const struct mnt *m, uint64_t ino, bool is_dir, uint64_t size, int64_t mtime_ns,
                      struct stat *a)
{
    memset(a, 0, sizeof(*a));
    a->st_ino = (ino_t)ino;
    if (is_dir)
        a->st_mode = S_IFDIR | (m->writable ? 0755 : 0555);
    else
        a->st_mode = S_IFREG | (m->writable ? 0644 : 0444);
    a->st_nlink = is_dir ? 2 : 1;
    a->st_uid = m->uid;
    a->st_gid = m->gid;
    a->st_size = is_dir ? 0 : (off_t)size;
    a->st_blksize = REPORTED_BLKSIZE;
    a->st_blocks = is_dir ? 0 : (blkcnt_t)((size + 511) / 512);
    if (mtime_ns <= 0)
        mtime_ns = m->start_ns;
    a->st_mtim.tv_sec = mtime_ns / 1000000000;
    a->st_mtim.tv_nsec = mtime_ns % 1000000000;
    a->st_atim = a->st_mtim;
    a->st_ctim = a->st_mtim;
}

static void fill_entry(const struct mnt *m, uint64_t ino, bool is_dir, uint64_t size, int64_t mtime_ns,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = ino;
    e->generation = ITABLE_GENERATION;
    e->attr_timeout = m->ttl;
    e->entry_timeout = m->ttl;
    fill_attr(m, ino, is_dir, size, mtime_ns, &e->attr);
}

/*
 * Under it.mu: the size and time of a file open for writing (the size so far, which the volume shares
 * between every handle writing the path; the time of the last change through the first handle); false if
 * n has no writer. Handles on n->writers are alive while it.mu is held.
 */
static bool writer_attr(const struct inode *n, uint64_t *size, int64_t *mtime_ns)
{
    struct fhandle *h = n->writers;
    if (!h)
        return false;
    *size = ccr_vfile_size(h->vf);
    *mtime_ns = atomic_load(&h->mtime_ns);
    return true;
}

/* Copies the path of node ino (and its type) out of the table. -ENOENT for an unknown node. */
static int node_path(struct mnt *m, fuse_ino_t ino, char **out, bool *is_dir)
{
    int rc = 0;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (!n) {
        rc = -ENOENT;
    } else {
        size_t len = strlen(n->path) + 1;
        *out = ccr_malloc(len);
        if (!*out)
            rc = -ENOMEM;
        else
            memcpy(*out, n->path, len);
        if (is_dir)
            *is_dir = n->is_dir;
    }
    pthread_mutex_unlock(&m->it.mu);
    return rc;
}

/* The path of entry name in directory parent. -ENOENT unknown parent, -ENOTDIR a file. */
static int child_path(struct mnt *m, fuse_ino_t parent, const char *name, char **out)
{
    int rc;
    pthread_mutex_lock(&m->it.mu);
    struct inode *p = itable_get(&m->it, parent);
    if (!p)
        rc = -ENOENT;
    else if (!p->is_dir)
        rc = -ENOTDIR;
    else
        rc = itable_join(p->path, name, out);
    pthread_mutex_unlock(&m->it.mu);
    return rc;
}

/* Records a lookup of path (type is_dir) and returns its node id, or 0 on ENOMEM. */
static uint64_t remember(struct mnt *m, const char *path, bool is_dir)
{
    struct inode *n = NULL;
    pthread_mutex_lock(&m->it.mu);
    uint64_t ino = itable_lookup(&m->it, path, is_dir, &n) == 0 ? n->ino : 0;
    pthread_mutex_unlock(&m->it.mu);
    return ino;
}

static void forget_one(struct mnt *m, uint64_t ino)
{
    pthread_mutex_lock(&m->it.mu);
    itable_forget(&m->it, ino, 1);
    pthread_mutex_unlock(&m->it.mu);
}

/* Replies an entry for path, recording the lookup; undoes the record if the kernel did not take it. */
static void reply_entry_for(fuse_req_t req, struct mnt *m, const char *path, bool is_dir, uint64_t size,
                            int64_t mtime_ns)
{
    uint64_t ino = remember(m, path, is_dir);
    if (!ino) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    fill_entry(m, ino, is_dir, size, mtime_ns, &e);
    if (fuse_reply_entry(req, &e) != 0)
        forget_one(m, ino);
}

/* ----------------------------------------------------------------------------------------------------- */
/* handles                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static struct fhandle *fh_of(const struct fuse_file_info *fi)
{
    return (struct fhandle *)(uintptr_t)fi->fh;
}

/* Links a new handle into node ino and the open list (node->opens is raised). NULL: ENOMEM or ENOENT. */
static struct fhandle *handle_new(struct mnt *m, struct ccr_vfile *vf, bool writable, fuse_ino_t ino,
                                  struct fuse_file_info *fi)
{
    struct fhandle *h = ccr_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->m = m;
    h->vf = vf;
    h->writable = writable;
    atomic_init(&h->refs, 1);
    atomic_init(&h->mtime_ns, realtime_ns());
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (!n) { /* cannot happen: the kernel holds a reference to the node it opens */
        pthread_mutex_unlock(&m->it.mu);
        ccr_free(h);
        return NULL;
    }
    n->opens++;
    h->node = n;
    if (writable) {
        h->wnext = n->writers;
        if (n->writers)
            n->writers->wprev = h;
        n->writers = h;
    }
    h->next = m->files;
    if (m->files)
        m->files->prev = h;
    m->files = h;
    pthread_mutex_unlock(&m->it.mu);
    atomic_fetch_add(&m->open_files, 1);
    fi->fh = (uint64_t)(uintptr_t)h;
    return h;
}

/* Under it.mu: takes h out of its node's writers and the open list (the open's reference stays). */
static void handle_unlink_locked(struct mnt *m, struct fhandle *h)
{
    if (h->writable) {
        if (h->wprev)
            h->wprev->wnext = h->wnext;
        else if (h->node->writers == h)
            h->node->writers = h->wnext;
        if (h->wnext)
            h->wnext->wprev = h->wprev;
        h->wprev = h->wnext = NULL;
    }
    if (h->prev)
        h->prev->next = h->next;
    else if (m->files == h)
        m->files = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
}

/* Drops a reference; the last one closes the vfile (committing a writer) and frees the handle. */
static int handle_put(struct fhandle *h, struct ccr_err *err)
{
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return 0;
    struct mnt *m = h->m;
    int rc = ccr_vfile_close(h->vf, err);
    pthread_mutex_lock(&m->it.mu);
    itable_unref_open(&m->it, h->node);
    pthread_mutex_unlock(&m->it.mu);
    atomic_fetch_sub(&m->open_files, 1);
    ccr_free(h);
    return rc;
}

/* Borrows the first writer of node ino (a reference the caller drops with handle_put), or NULL. */
static struct fhandle *writer_borrow(struct mnt *m, fuse_ino_t ino)
{
    struct fhandle *h = NULL;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (n && n->writers) {
        h = n->writers;
        atomic_fetch_add(&h->refs, 1);
    }
    pthread_mutex_unlock(&m->it.mu);
    return h;
}

/* A writer changed the file: its modification time for getattr until it is committed. */
static void note_change(struct fhandle *h)
{
    atomic_store(&h->mtime_ns, realtime_ns());
}

/* ----------------------------------------------------------------------------------------------------- */
/* lifecycle and namespace                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct mnt *m = userdata;
    conn->max_write = 1u << 20;
    conn->max_readahead = readahead_kb(m->o) * 1024u;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_READDIRPLUS |
                    FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_DIO |
                    FUSE_CAP_AUTO_INVAL_DATA;
    conn->want |= want & conn->capable;
    /* write-through: close() must see every byte, so no writeback cache; no splice, no locks */
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                              FUSE_CAP_SPLICE_MOVE | FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
    ccr_log(CCR_LOG_DEBUG, "fuse: protocol %u.%u, max_write %u, max_readahead %u, capable 0x%x, want 0x%x",
            conn->proto_major, conn->proto_minor, conn->max_write, conn->max_readahead, conn->capable,
            conn->want);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mnt *m = M(req);
    char *path = NULL;
    int rc = child_path(m, parent, name, &path);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* a file open for writing answers for itself (the store may not know it yet) */
    uint64_t size = 0;
    int64_t mt = 0;
    bool from_writer = false;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_find(&m->it, path);
    if (n)
        from_writer = writer_attr(n, &size, &mt);
    pthread_mutex_unlock(&m->it.mu);
    if (from_writer) {
        reply_entry_for(req, m, path, false, size, mt);
        ccr_free(path);
        return;
    }
    struct ccr_vstat st;
    struct ccr_err e;
    ccr_err_clear(&e);
    rc = ccr_volume_stat(m->vol, path, &st, &e);
    if (rc == -ENOENT && m->neg_ttl > 0) {
        struct fuse_entry_param ne;
        memset(&ne, 0, sizeof(ne));
        ne.entry_timeout = m->neg_ttl; /* ino 0: a negative entry the kernel may cache */
        fuse_reply_entry(req, &ne);
    } else if (rc) {
        if (!expected(rc))
            log_fail(CCR_LOG_WARN, "lookup", path, rc, &e);
        fuse_reply_err(req, -rc);
    } else {
        reply_entry_for(req, m, path, st.is_dir, st.size, st.mtime_ns);
    }
    ccr_free(path);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct mnt *m = M(req);
    pthread_mutex_lock(&m->it.mu);
    itable_forget(&m->it, ino, nlookup);
    pthread_mutex_unlock(&m->it.mu);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct mnt *m = M(req);
    pthread_mutex_lock(&m->it.mu);
    for (size_t i = 0; i < count; i++)
        itable_forget(&m->it, forgets[i].ino, forgets[i].nlookup);
    pthread_mutex_unlock(&m->it.mu);
    fuse_reply_none(req);
}

/* stat of node ino into a (the writer's view for files open for writing). */
static int stat_node(struct mnt *m, fuse_ino_t ino, struct stat *a)
{
    uint64_t size = 0;
    int64_t mt = 0;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (!n) {
        pthread_mutex_unlock(&m->it.mu);
        return -ENOENT;
    }
    bool w = writer_attr(n, &size, &mt);
    pthread_mutex_unlock(&m->it.mu);
    if (w) {
        fill_attr(m, ino, false, size, mt, a);
        return 0;
    }
    char *path = NULL;
    bool is_dir = false;
    int rc = node_path(m, ino, &path, &is_dir);
    if (rc)
        return rc;
    struct ccr_vstat st;
    struct ccr_err e;
    ccr_err_clear(&e);
    rc = ccr_volume_stat(m->vol, path, &st, &e);
    if (rc == 0)
        fill_attr(m, ino, st.is_dir, st.size, st.mtime_ns, a);
    else if (!expected(rc))
        log_fail(CCR_LOG_WARN, "stat", path, rc, &e);
    ccr_free(path);
    return rc;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct stat a;
    int rc = stat_node(m, ino, &a);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &a, m->ttl);
}

/* truncate: through the open handle if there is one, else open, truncate and commit. */
static int set_size(struct mnt *m, fuse_ino_t ino, uint64_t size, struct fuse_file_info *fi)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    struct fhandle *h = fi ? fh_of(fi) : NULL;
    if (h && h->writable) {
        int rc = ccr_vfile_truncate(h->vf, size, &e);
        if (rc == 0)
            note_change(h);
        else if (!expected(rc))
            log_fail(CCR_LOG_WARN, "truncate", "", rc, &e);
        return rc;
    }
    h = writer_borrow(m, ino);
    if (h) {
        int rc = ccr_vfile_truncate(h->vf, size, &e);
        if (rc == 0)
            note_change(h);
        else if (!expected(rc))
            log_fail(CCR_LOG_WARN, "truncate", "", rc, &e);
        handle_put(h, NULL);
        return rc;
    }
    char *path = NULL;
    bool is_dir = false;
    int rc = node_path(m, ino, &path, &is_dir);
    if (rc)
        return rc;
    if (is_dir) {
        ccr_free(path);
        return -EISDIR;
    }
    struct ccr_vfile *vf = NULL;
    rc = ccr_vfile_open(m->vol, path, CCR_VOPEN_WRITE | (size == 0 ? CCR_VOPEN_TRUNC : 0), &vf, &e);
    if (rc == 0) {
        if (size != 0)
            rc = ccr_vfile_truncate(vf, size, &e);
        int crc = ccr_vfile_close(vf, rc ? NULL : &e);
        if (rc == 0)
            rc = crc;
    }
    if (rc && !expected(rc))
        log_fail(CCR_LOG_WARN, "truncate", path, rc, &e);
    ccr_free(path);
    return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (!m->writable) {
            fuse_reply_err(req, EROFS);
            return;
        }
        if (attr->st_size < 0) {
            fuse_reply_err(req, EINVAL);
            return;
        }
        int rc = set_size(m, ino, (uint64_t)attr->st_size, fi);
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    /* mode, owner and times: accepted and ignored (see ccr/mount.h) */
    struct stat a;
    int rc = stat_node(m, ino, &a);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &a, m->ttl);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct mnt *m = M(req);
    char *path = NULL;
    int rc = child_path(m, parent, name, &path);
    if (rc == 0) {
        struct ccr_err e;
        ccr_err_clear(&e);
        rc = ccr_volume_mkdir(m->vol, path, &e);
        if (rc && !expected(rc))
            log_fail(CCR_LOG_WARN, "mkdir", path, rc, &e);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_entry_for(req, m, path, true, 0, realtime_ns());
    ccr_free(path);
}

static void op_unlink_common(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    struct mnt *m = M(req);
    char *path = NULL;
    int rc = child_path(m, parent, name, &path);
    if (rc == 0) {
        struct ccr_err e;
        ccr_err_clear(&e);
        rc = dir ? ccr_volume_rmdir(m->vol, path, &e) : ccr_volume_unlink(m->vol, path, &e);
        if (rc && !expected(rc))
            log_fail(CCR_LOG_WARN, dir ? "rmdir" : "unlink", path, rc, &e);
        if (rc == 0) {
            pthread_mutex_lock(&m->it.mu);
            itable_unlink(&m->it, path);
            pthread_mutex_unlock(&m->it.mu);
        }
    }
    fuse_reply_err(req, -rc);
    ccr_free(path);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    op_unlink_common(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    op_unlink_common(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct mnt *m = M(req);
    if (flags & ~(unsigned)RENAME_NOREPLACE) { /* RENAME_EXCHANGE, RENAME_WHITEOUT */
        fuse_reply_err(req, EINVAL);
        return;
    }
    char *from = NULL, *to = NULL;
    int rc = child_path(m, parent, name, &from);
    if (rc == 0)
        rc = child_path(m, newparent, newname, &to);
    struct ccr_err e;
    ccr_err_clear(&e);
    if (rc == 0 && (flags & RENAME_NOREPLACE)) {
        struct ccr_vstat st;
        int src = ccr_volume_stat(m->vol, to, &st, NULL);
        if (src == 0)
            rc = -EEXIST;
        else if (src != -ENOENT)
            rc = src;
    }
    if (rc == 0) {
        rc = ccr_volume_rename(m->vol, from, to, &e);
        if (rc && !expected(rc))
            log_fail(CCR_LOG_WARN, "rename", from, rc, &e);
    }
    if (rc == 0) {
        pthread_mutex_lock(&m->it.mu);
        if (itable_rename(&m->it, from, to) != 0) {
            /* out of memory: forget both names; the kernel looks them up again */
            itable_unlink(&m->it, from);
            itable_unlink(&m->it, to);
        }
        pthread_mutex_unlock(&m->it.mu);
    }
    fuse_reply_err(req, -rc);
    ccr_free(from);
    ccr_free(to);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)M(req);
    fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)M(req);
    fuse_reply_err(req, EPERM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct mnt *m = M(req);
    struct statvfs s;
    memset(&s, 0, sizeof(s));
    s.f_bsize = REPORTED_BLKSIZE;
    s.f_frsize = STATFS_BLOCK;
    s.f_blocks = STATFS_BLOCKS;
    s.f_bfree = s.f_bavail = m->writable ? STATFS_BLOCKS : 0;
    s.f_files = STATFS_FILES;
    s.f_ffree = s.f_favail = m->writable ? STATFS_FILES : 0;
    s.f_namemax = 255;
    fuse_reply_statfs(req, &s);
}

/* ----------------------------------------------------------------------------------------------------- */
/* files                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

/* keep_cache: the file is the same as at its previous open (size and time), so cached pages are valid. */
static bool keep_cache(struct mnt *m, fuse_ino_t ino, const char *path)
{
    struct ccr_vstat st;
    if (ccr_volume_stat(m->vol, path, &st, NULL) != 0 || st.is_dir)
        return false;
    bool keep = false;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (n) {
        keep = n->seen && n->seen_mtime_ns == st.mtime_ns && n->seen_size == st.size && !n->writers;
        n->seen = true;
        n->seen_mtime_ns = st.mtime_ns;
        n->seen_size = st.size;
    }
    pthread_mutex_unlock(&m->it.mu);
    return keep;
}

/* Opens path in the volume; on failure logs what is unexpected, frees path and replies the error (NULL). */
static struct ccr_vfile *vopen_or_reply(fuse_req_t req, struct mnt *m, const char *what, char *path,
                                        int vflags)
{
    struct ccr_vfile *vf = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_vfile_open(m->vol, path, vflags, &vf, &e);
    if (rc == 0)
        return vf;
    if (!expected(rc))
        log_fail(CCR_LOG_WARN, what, path, rc, &e);
    ccr_free(path);
    fuse_reply_err(req, -rc);
    return NULL;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    int acc = fi->flags & O_ACCMODE;
    bool wr = acc != O_RDONLY;
    if (wr && !m->writable) {
        fuse_reply_err(req, EROFS);
        return;
    }
    char *path = NULL;
    bool is_dir = false;
    int rc = node_path(m, ino, &path, &is_dir);
    if (rc == 0 && is_dir)
        rc = -EISDIR;
    if (rc) {
        ccr_free(path);
        fuse_reply_err(req, -rc);
        return;
    }
    int vflags = wr ? CCR_VOPEN_WRITE : CCR_VOPEN_READ;
    if (wr && (fi->flags & O_TRUNC))
        vflags |= CCR_VOPEN_TRUNC;
    struct ccr_vfile *vf = vopen_or_reply(req, m, "open", path, vflags);
    if (!vf)
        return;
    fi->keep_cache = (!wr || !(vflags & CCR_VOPEN_TRUNC)) && keep_cache(m, ino, path);
    fi->direct_io = 0;
    fi->noflush = !wr; /* nothing to commit: spare close() a round trip */
    struct fhandle *h = handle_new(m, vf, wr, ino, fi);
    ccr_free(path);
    if (!h) {
        ccr_vfile_close(vf, NULL);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_open(req, fi) != 0) { /* interrupted: no release will come */
        pthread_mutex_lock(&m->it.mu);
        handle_unlink_locked(m, h);
        pthread_mutex_unlock(&m->it.mu);
        handle_put(h, NULL);
    }
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    if (!m->writable) {
        fuse_reply_err(req, EROFS);
        return;
    }
    char *path = NULL;
    int rc = child_path(m, parent, name, &path);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    int vflags = CCR_VOPEN_WRITE | CCR_VOPEN_CREATE;
    if (fi->flags & O_EXCL)
        vflags |= CCR_VOPEN_EXCL;
    if (fi->flags & O_TRUNC)
        vflags |= CCR_VOPEN_TRUNC;
    struct ccr_vfile *vf = vopen_or_reply(req, m, "create", path, vflags);
    if (!vf)
        return;
    uint64_t ino = remember(m, path, false);
    struct fhandle *h = ino ? handle_new(m, vf, true, ino, fi) : NULL;
    ccr_free(path);
    if (!h) {
        if (ino)
            forget_one(m, ino);
        ccr_vfile_close(vf, NULL);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fuse_entry_param ep;
    fill_entry(m, ino, false, ccr_vfile_size(vf), atomic_load(&h->mtime_ns), &ep);
    fi->direct_io = 0;
    fi->keep_cache = 0;
    if (fuse_reply_create(req, &ep, fi) != 0) {
        forget_one(m, ino);
        pthread_mutex_lock(&m->it.mu);
        handle_unlink_locked(m, h);
        pthread_mutex_unlock(&m->it.mu);
        handle_put(h, NULL);
    }
}

/* mknod of a regular file: create it empty and commit (what `mknod` and some old callers do). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct mnt *m = M(req);
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (!m->writable) {
        fuse_reply_err(req, EROFS);
        return;
    }
    char *path = NULL;
    int rc = child_path(m, parent, name, &path);
    struct ccr_err e;
    ccr_err_clear(&e);
    if (rc == 0) {
        struct ccr_vfile *vf = NULL;
        rc = ccr_vfile_open(m->vol, path, CCR_VOPEN_WRITE | CCR_VOPEN_CREATE | CCR_VOPEN_EXCL, &vf, &e);
        if (rc == 0)
            rc = ccr_vfile_close(vf, &e);
        if (rc && !expected(rc))
            log_fail(CCR_LOG_WARN, "mknod", path, rc, &e);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        reply_entry_for(req, m, path, false, 0, realtime_ns());
    ccr_free(path);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct fhandle *h = fh_of(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    /* Read-only data is answered from the region cache in place (no copy into a reply buffer); files being
     * written, and ranges cut into too many pieces, take the copying path below. */
    struct ccr_vref ref;
    ssize_t rn = ccr_vfile_read_ref(h->vf, size, (uint64_t)off, &ref, &e);
    if (rn >= 0) {
        /* once replied, the file may be released on another thread: ref alone is released */
        fuse_reply_iov(req, ref.iov, ref.niov);
        ccr_vref_release(&ref);
        return;
    }
    if (rn != -ENOTSUP && rn != -E2BIG) {
        if (rn != -EIO && !expected((int)rn))
            log_fail(CCR_LOG_WARN, "read", "", (int)rn, &e);
        fuse_reply_err(req, (int)-rn);
        return;
    }
    ccr_err_clear(&e);
    char *buf = size ? tbuf_get(m, size) : NULL;
    if (size && !buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = ccr_vfile_read(h->vf, buf + got, size - got, (uint64_t)off + got, &e);
        if (n < 0) {
            /* authentication failures are logged by the volume with the blob and offset */
            if (n != -EIO && !expected((int)n))
                log_fail(CCR_LOG_WARN, "read", "", (int)n, &e);
            fuse_reply_err(req, (int)-n);
            return;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    fuse_reply_buf(req, buf, got);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct fhandle *h = fh_of(fi);
    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    ssize_t n = ccr_vfile_write(h->vf, buf, size, (uint64_t)off, &e);
    if (n < 0) {
        if (!expected((int)n))
            log_fail(CCR_LOG_ERROR, "write", "", (int)n, &e);
        fuse_reply_err(req, (int)-n);
        return;
    }
    note_change(h);
    (void)m;
    fuse_reply_write(req, (size_t)n);
}

/* Commits a writer; the error is what close() or fsync() returns to the application. */
static int commit(struct fhandle *h, const char *what)
{
    if (!h->writable)
        return 0;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_vfile_flush(h->vf, &e);
    if (rc)
        log_fail(CCR_LOG_ERROR, what, "", rc, &e);
    return rc;
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)M(req);
    fuse_reply_err(req, -commit(fh_of(fi), "commit (close)"));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)M(req);
    fuse_reply_err(req, -commit(fh_of(fi), "commit (fsync)"));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct fhandle *h = fh_of(fi);
    pthread_mutex_lock(&m->it.mu);
    handle_unlink_locked(m, h);
    pthread_mutex_unlock(&m->it.mu);
    struct ccr_err e;
    ccr_err_clear(&e);
    bool wr = h->writable;
    int rc = handle_put(h, &e);
    if (rc && wr) /* nobody is told any more: the application already closed; flush told it */
        log_fail(CCR_LOG_ERROR, "commit (release)", "", rc, &e);
    fuse_reply_err(req, 0);
}

/* ----------------------------------------------------------------------------------------------------- */
/* directories                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

static int snap_add(void *arg, const char *name, const struct ccr_vstat *st)
{
    struct dsnap *d = arg;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        struct dent *ne = ccr_realloc(d->e, nc * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        d->e = ne;
        d->cap = nc;
    }
    size_t len = strlen(name) + 1;
    char *p = ccr_malloc(len);
    if (!p)
        return -ENOMEM;
    memcpy(p, name, len);
    d->e[d->n].name = p;
    d->e[d->n].st = *st;
    d->n++;
    return 0;
}

static void snap_free(struct dsnap *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        ccr_free(d->e[i].name);
    ccr_free(d->e);
    ccr_free(d->path);
    ccr_free(d);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct dsnap *d = ccr_calloc(1, sizeof(*d));
    if (!d) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    bool is_dir = false;
    int rc = node_path(m, ino, &d->path, &is_dir);
    if (rc == 0 && !is_dir)
        rc = -ENOTDIR;
    struct ccr_err e;
    ccr_err_clear(&e);
    if (rc == 0) {
        rc = ccr_volume_readdir(m->vol, d->path, snap_add, d, &e);
        if (rc && !expected(rc))
            log_fail(CCR_LOG_WARN, "list", d->path, rc, &e);
    }
    if (rc) {
        snap_free(d);
        fuse_reply_err(req, -rc);
        return;
    }
    d->parent_ino = ITABLE_ROOT_INO;
    pthread_mutex_lock(&m->it.mu);
    struct inode *n = itable_get(&m->it, ino);
    if (n) {
        n->opens++;
        d->node = n;
    }
    const char *slash = strrchr(d->path, '/');
    if (slash) {
        char *pp = ccr_malloc((size_t)(slash - d->path) + 1);
        if (pp) {
            memcpy(pp, d->path, (size_t)(slash - d->path));
            pp[slash - d->path] = '\0';
            struct inode *p = itable_find(&m->it, pp);
            if (p)
                d->parent_ino = p->ino;
            ccr_free(pp);
        }
    }
    d->next = m->dirs;
    if (m->dirs)
        m->dirs->prev = d;
    m->dirs = d;
    pthread_mutex_unlock(&m->it.mu);
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) != 0) {
        pthread_mutex_lock(&m->it.mu);
        if (d->prev)
            d->prev->next = d->next;
        else
            m->dirs = d->next;
        if (d->next)
            d->next->prev = d->prev;
        if (d->node)
            itable_unref_open(&m->it, d->node);
        pthread_mutex_unlock(&m->it.mu);
        snap_free(d);
    }
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi,
                           bool plus)
{
    struct mnt *m = M(req);
    struct dsnap *d = (struct dsnap *)(uintptr_t)fi->fh;
    char *buf = tbuf_get(m, size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* node ids handed out by this reply, taken back if the kernel does not get it */
    uint64_t taken[512];
    size_t ntaken = 0;
    size_t used = 0;
    size_t total = d->n + 2;
    for (size_t i = off < 0 ? 0 : (size_t)off; i < total; i++) {
        const char *name = i == 0 ? "." : i == 1 ? ".." : d->e[i - 2].name;
        bool is_dir = i < 2 ? true : d->e[i - 2].st.is_dir;
        uint64_t self_ino = i == 0 ? ino : i == 1 ? d->parent_ino : 0;
        size_t rem = size - used;
        if (!plus) {
            struct stat st;
            memset(&st, 0, sizeof(st));
            st.st_mode = is_dir ? S_IFDIR : S_IFREG;
            if (i >= 2) { /* d_ino: the node's id if the kernel knows it, else any non-zero number */
                char *p = NULL;
                self_ino = 0;
                if (itable_join(d->path, name, &p) == 0) {
                    pthread_mutex_lock(&m->it.mu);
                    struct inode *n = itable_find(&m->it, p);
                    if (n)
                        self_ino = n->ino;
                    pthread_mutex_unlock(&m->it.mu);
                    ccr_free(p);
                }
                if (!self_ino)
                    self_ino = ((uint64_t)1 << 63) | (i + 1);
            }
            st.st_ino = (ino_t)self_ino;
            size_t need = fuse_add_direntry(req, buf + used, rem, name, &st, (off_t)(i + 1));
            if (need > rem)
                break;
            used += need;
            continue;
        }
        size_t need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
        if (need > rem || ntaken == sizeof(taken) / sizeof(taken[0]))
            break;
        struct fuse_entry_param ep;
        if (i < 2) {
            memset(&ep, 0, sizeof(ep));
            ep.attr.st_mode = S_IFDIR;
            ep.attr.st_ino = (ino_t)self_ino;
        } else {
            char *p = NULL;
            if (itable_join(d->path, name, &p) != 0)
                break;
            uint64_t size_now = d->e[i - 2].st.size;
            int64_t mt = d->e[i - 2].st.mtime_ns;
            struct inode *n = NULL;
            pthread_mutex_lock(&m->it.mu);
            int rc = itable_lookup(&m->it, p, is_dir, &n);
            uint64_t cino = rc == 0 ? n->ino : 0;
            if (rc == 0)
                writer_attr(n, &size_now, &mt);
            pthread_mutex_unlock(&m->it.mu);
            ccr_free(p);
            if (!cino)
                break;
            taken[ntaken++] = cino;
            fill_entry(m, cino, is_dir, size_now, mt, &ep);
        }
        used += fuse_add_direntry_plus(req, buf + used, rem, name, &ep, (off_t)(i + 1));
    }
    if (fuse_reply_buf(req, buf, used) != 0 && ntaken) {
        pthread_mutex_lock(&m->it.mu);
        for (size_t k = 0; k < ntaken; k++)
            itable_forget(&m->it, taken[k], 1);
        pthread_mutex_unlock(&m->it.mu);
    }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mnt *m = M(req);
    struct dsnap *d = (struct dsnap *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&m->it.mu);
    if (d->prev)
        d->prev->next = d->next;
    else if (m->dirs == d)
        m->dirs = d->next;
    if (d->next)
        d->next->prev = d->prev;
    if (d->node)
        itable_unref_open(&m->it, d->node);
    pthread_mutex_unlock(&m->it.mu);
    snap_free(d);
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .create = op_create,
};

/* ----------------------------------------------------------------------------------------------------- */
/* statistics, ready file, libfuse's log                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static int stats_json(struct mnt *m, char *buf, size_t cap)
{
    struct ccr_volume_stats s;
    memset(&s, 0, sizeof(s));
    ccr_volume_get_stats(m->vol, &s);
    char mp[2 * PATH_MAX], ds[512];
    json_quote(mp, sizeof(mp), m->mountpoint);
    json_quote(ds, sizeof(ds), m->o->ds->name ? m->o->ds->name : "");
    double over = s.bytes_read ? (double)s.bytes_fetched / (double)s.bytes_read : 0.0;
    struct ccr_store_stats st;
    ccr_store_get_stats(m->o->store, &st);
    int n = snprintf(
        buf, cap,
        "{\"pid\":%ld,\"mountpoint\":%s,\"datastore\":%s,\"writable\":%s,\"seconds\":%.3f,"
        "\"open_files\":%u,\"bytes_read\":%" PRIu64 ",\"bytes_fetched\":%" PRIu64 ",\"over_read\":%.6f,"
        "\"cache_hits\":%" PRIu64 ",\"cache_misses\":%" PRIu64 ",\"prefetches\":%" PRIu64
        ",\"auth_failures\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",\"bytes_uploaded\":%" PRIu64
        ",\"commits\":%" PRIu64 ",\"commit_failures\":%" PRIu64 ",\"list_requests\":%" PRIu64
        ",\"memory_peak\":%" PRIu64 ",\"fuse_requests\":%" PRIu64 ",\"store_requests\":%" PRIu64
        ",\"store_retries\":%" PRIu64 ",\"mounted\":%s}\n",
        (long)getpid(), mp, ds, m->writable ? "true" : "false", (double)(realtime_ns() - m->start_ns) / 1e9,
        atomic_load(&m->open_files), s.bytes_read, s.bytes_fetched, over, s.cache_hits, s.cache_misses,
        s.prefetches, s.auth_failures, s.bytes_written, s.bytes_uploaded, s.commits, s.commit_failures,
        s.list_requests, s.memory_peak, (uint64_t)atomic_load(&m->requests), st.requests, st.retries,
        m->mounted ? "true" : "false");
    return n > 0 && (size_t)n < cap ? n : -ENOSPC;
}

static void stats_write(struct mnt *m)
{
    if (!m->o->stats_file)
        return;
    char buf[8192];
    int n = stats_json(m, buf, sizeof(buf));
    struct ccr_err e;
    ccr_err_clear(&e);
    if (n > 0 && ccr_file_write_atomic(m->o->stats_file, buf, (size_t)n, 0644, true, &e) != 0)
        log_fail(CCR_LOG_DEBUG, "write stats", m->o->stats_file, e.code, &e);
}

static void *stats_main(void *arg)
{
    struct mnt *m = arg;
    double iv = m->o->stats_interval > 0 ? m->o->stats_interval : 1.0;
    pthread_mutex_lock(&m->stats_mu);
    while (!m->stats_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + iv;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&m->stats_cv, &m->stats_mu, &ts);
        if (m->stats_stop)
            break;
        pthread_mutex_unlock(&m->stats_mu);
        stats_write(m);
        pthread_mutex_lock(&m->stats_mu);
    }
    pthread_mutex_unlock(&m->stats_mu);
    return NULL;
}

static void log_summary(struct mnt *m, double seconds)
{
    struct ccr_volume_stats s;
    memset(&s, 0, sizeof(s));
    ccr_volume_get_stats(m->vol, &s);
    struct ccr_store_stats st;
    ccr_store_get_stats(m->o->store, &st);
    double over = s.bytes_read ? (double)s.bytes_fetched / (double)s.bytes_read : 0.0;
    ccr_log(CCR_LOG_INFO,
            "unmounted %s after %.1f s: read %" PRIu64 " bytes, fetched %" PRIu64
            " (over-read %.3f), cache hits %" PRIu64 ", misses %" PRIu64 ", prefetches %" PRIu64
            ", authentication failures %" PRIu64 "; written %" PRIu64 " bytes, uploaded %" PRIu64
            ", commits %" PRIu64 " (%" PRIu64 " failed); listing requests %" PRIu64 "; peak memory %" PRIu64
            " bytes; %" PRIu64 " FUSE requests; store requests %" PRIu64 " (%" PRIu64 " retries)",
            m->mountpoint, seconds, s.bytes_read, s.bytes_fetched, over, s.cache_hits, s.cache_misses,
            s.prefetches, s.auth_failures, s.bytes_written, s.bytes_uploaded, s.commits, s.commit_failures,
            s.list_requests, s.memory_peak, (uint64_t)atomic_load(&m->requests), st.requests, st.retries);
}

/* The kernel's readahead for the mount (its bdi): as root, through sysfs. Best effort. */
static void set_readahead(struct mnt *m)
{
    unsigned maj = 0, min = 0;
    if (mountinfo_find(m->mountpoint, NULL, 0, &maj, &min) != 1)
        return;
    char p[128], v[32];
    snprintf(p, sizeof(p), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
    int len = snprintf(v, sizeof(v), "%u\n", readahead_kb(m->o));
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        ccr_log(CCR_LOG_DEBUG, "cannot set the readahead (%s): %s", p, strerror(errno));
        return;
    }
    if (write(fd, v, (size_t)len) != len)
        ccr_log(CCR_LOG_DEBUG, "cannot set the readahead (%s): %s", p, strerror(errno));
    close(fd);
}

static int write_ready(struct mnt *m, struct ccr_err *err)
{
    if (!m->o->ready_file)
        return 0;
    char mp[2 * PATH_MAX], buf[2 * PATH_MAX + 64];
    json_quote(mp, sizeof(mp), m->mountpoint);
    int n = snprintf(buf, sizeof(buf), "{\"pid\":%ld,\"mountpoint\":%s}\n", (long)getpid(), mp);
    return ccr_file_write_atomic(m->o->ready_file, buf, (size_t)n, 0644, true, err);
}

static pthread_mutex_t flog_mu = PTHREAD_MUTEX_INITIALIZER;
static char flog_last[512];
static atomic_bool flog_quiet;

/* libfuse's messages: kept (the last error, for ccr_err) and passed to ccr_log. */
static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t len = strlen(buf);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (level <= FUSE_LOG_ERR) {
        pthread_mutex_lock(&flog_mu);
        snprintf(flog_last, sizeof(flog_last), "%s", buf);
        pthread_mutex_unlock(&flog_mu);
    }
    if (atomic_load(&flog_quiet))
        return;
    enum ccr_log_level l = level <= FUSE_LOG_ERR       ? CCR_LOG_ERROR
                           : level == FUSE_LOG_WARNING ? CCR_LOG_WARN
                           : level == FUSE_LOG_DEBUG   ? CCR_LOG_DEBUG
                                                       : CCR_LOG_INFO;
    ccr_log(l, "fuse: %s", buf);
}

static void flog_take(char *dst, size_t cap)
{
    pthread_mutex_lock(&flog_mu);
    snprintf(dst, cap, "%s", flog_last[0] ? flog_last : "see the messages above");
    flog_last[0] = '\0';
    pthread_mutex_unlock(&flog_mu);
}

/* ----------------------------------------------------------------------------------------------------- */
/* ccr_mount_run                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

void ccr_mount_opts_init(struct ccr_mount_opts *o)
{
    memset(o, 0, sizeof(*o));
}

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
#define NSIG_HANDLED (sizeof(handled_signals) / sizeof(handled_signals[0]))

static void sigs_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGINT);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGHUP);
}

/* Checks the mountpoint before libfuse does, for messages that say what to do. */
static int check_mountpoint(const char *mp, struct ccr_err *err)
{
    struct stat st;
    if (stat(mp, &st) != 0) {
        int e = errno;
        if (e == ENOTCONN)
            return ccr_err_set(
                err, -ENOTCONN, mp, -1,
                "a dead mount is still there (its daemon exited); unmount it first: ccr unmount %s", mp);
        return ccr_err_set(err, -e, mp, -1, "mount point: %s", strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return ccr_err_set(err, -ENOTDIR, mp, -1, "mount point is not a directory");
    return 0;
}

/*
 * Closes what the kernel left open at unmount: directory snapshots, read-only files, and files open for
 * writing, which closing commits (the unmount path of ccr_volume_close, done here so that the summary
 * counts these commits). Returns the first commit error (err gets its detail).
 */
static int close_leftovers(struct mnt *m, struct ccr_err *err)
{
    pthread_mutex_lock(&m->it.mu);
    while (m->dirs) {
        struct dsnap *d = m->dirs;
        m->dirs = d->next;
        if (d->node)
            itable_unref_open(&m->it, d->node);
        snap_free(d);
    }
    struct fhandle *h = m->files;
    m->files = NULL;
    pthread_mutex_unlock(&m->it.mu);
    int first = 0;
    unsigned committed = 0;
    while (h) {
        struct fhandle *next = h->next;
        struct ccr_err e;
        ccr_err_clear(&e);
        int rc = ccr_vfile_close(h->vf, &e);
        if (h->writable) {
            committed++;
            if (rc) {
                log_fail(CCR_LOG_ERROR, "commit at unmount", "", rc, &e);
                if (!first) {
                    first = rc;
                    if (err)
                        *err = e;
                }
            }
        }
        ccr_free(h);
        h = next;
    }
    if (committed)
        ccr_log(CCR_LOG_INFO, "%u file%s still open for writing at unmount: committed%s", committed,
                committed == 1 ? "" : "s", first ? " (with errors)" : "");
    return first;
}

int ccr_mount_run(const struct ccr_mount_opts *o, struct ccr_err *err)
{
    if (!o || !o->store || !o->ds || !o->mountpoint)
        return ccr_err_set(err, -EINVAL, "mount", -1, "store, datastore and mount point are required");
    int rc = check_mountpoint(o->mountpoint, err);
    if (rc)
        return rc;

    /* Every thread started from here on (the volume's, the statistics thread, libfuse's workers) inherits a
     * mask with the shutdown signals blocked, so they reach the thread that runs the loop. */
    sigset_t shutdown_sigs, old_mask;
    sigs_set(&shutdown_sigs);
    pthread_sigmask(SIG_BLOCK, &shutdown_sigs, &old_mask);
    struct sigaction old_act[NSIG_HANDLED];
    for (size_t i = 0; i < NSIG_HANDLED; i++)
        sigaction(handled_signals[i], NULL, &old_act[i]);

    struct mnt *m = ccr_calloc(1, sizeof(*m));
    struct fuse_session *se = NULL;
    struct fuse_loop_config *cfg = NULL;
    double served = 0;
    bool handlers = false;
    char *fargv[4] = {NULL, NULL, NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    if (!m) {
        rc = ccr_err_set(err, -ENOMEM, "mount", -1, "out of memory");
        goto restore;
    }
    m->o = o;
    m->writable = o->volume.writable;
    double list_ttl = o->volume.list_ttl == 0  ? 60.0
                      : o->volume.list_ttl < 0 ? FOREVER_TTL
                                               : o->volume.list_ttl;
    m->ttl = m->writable ? RW_TTL : list_ttl;
    m->neg_ttl = m->ttl;
    m->uid = getuid();
    m->gid = getgid();
    m->start_ns = realtime_ns();
    pthread_mutex_init(&m->stats_mu, NULL);
    pthread_cond_init(&m->stats_cv, NULL);
    m->mountpoint = realpath(o->mountpoint, NULL);
    if (!m->mountpoint || itable_init(&m->it) != 0 || pthread_key_create(&m->buf_key, tbuf_free) != 0) {
        rc = ccr_err_set(err, -ENOMEM, o->mountpoint, -1, "out of memory");
        goto out;
    }
    m->buf_key_ok = true;

    rc = ccr_volume_open(o->store, o->ds, o->key, &o->volume, &m->vol, err);
    if (rc)
        goto out;
    /* List now: a datastore that cannot be read fails `ccr mount`, not the first application. */
    struct ccr_vstat root;
    rc = ccr_volume_stat(m->vol, "", &root, err);
    if (rc)
        goto out;

    char optstr[1024];
    snprintf(optstr, sizeof(optstr), "fsname=ccr:%s,subtype=ccr,%s%s",
             o->ds->name ? o->ds->name : "datastore", m->writable ? "rw" : "ro",
             o->allow_other ? ",allow_other" : "");
    fargv[0] = "ccr";
    fargv[1] = "-o";
    fargv[2] = optstr;
    args = (struct fuse_args)FUSE_ARGS_INIT(3, fargv);
    fuse_set_log_func(fuse_log_sink);
    atomic_store(&flog_quiet, true);
    se = fuse_session_new(&args, &ops, sizeof(ops), m);
    if (!se) {
        char why[512];
        flog_take(why, sizeof(why));
        rc = ccr_err_set(err, -EINVAL, o->mountpoint, -1, "cannot create the FUSE session: %s", why);
        goto out;
    }
    if (fuse_set_signal_handlers(se) != 0) {
        rc = ccr_err_set(err, -EIO, o->mountpoint, -1, "cannot install signal handlers");
        goto out;
    }
    handlers = true;
    if (fuse_session_mount(se, m->mountpoint) != 0) {
        char why[512];
        flog_take(why, sizeof(why));
        rc = ccr_err_set(err, access("/dev/fuse", R_OK | W_OK) == 0 ? -EIO : -EPERM, m->mountpoint, -1,
                         "cannot mount: %s", why);
        goto out;
    }
    atomic_store(&flog_quiet, false);
    m->mounted = true;
    set_readahead(m);
    if (o->stats_file) {
        stats_write(m);
        if (pthread_create(&m->stats_thr, NULL, stats_main, m) == 0)
            m->stats_started = true;
    }
    rc = write_ready(m, err);
    if (rc)
        goto out;
    if (o->on_ready)
        o->on_ready(o->on_ready_arg);
    ccr_log(CCR_LOG_INFO, "mounted datastore %s at %s (%s)", o->ds->name ? o->ds->name : "", m->mountpoint,
            m->writable ? "read-write" : "read-only");

    cfg = fuse_loop_cfg_create();
    if (!cfg) {
        rc = ccr_err_set(err, -ENOMEM, m->mountpoint, -1, "out of memory");
        goto out;
    }
    unsigned threads = o->max_threads ? o->max_threads : DEFAULT_THREADS;
    fuse_loop_cfg_set_max_threads(cfg, threads);
    fuse_loop_cfg_set_idle_threads(cfg, threads); /* keep them: no thread churn between bursts */
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    double t0 = mono_s();
    pthread_sigmask(SIG_UNBLOCK, &shutdown_sigs, NULL);
    int lrc = fuse_session_loop_mt(se, cfg);
    pthread_sigmask(SIG_BLOCK, &shutdown_sigs, NULL);
    if (lrc < 0)
        ccr_log(CCR_LOG_ERROR, "the FUSE loop failed: %s", strerror(-lrc));
    else if (lrc > 0)
        ccr_log(CCR_LOG_INFO, "%s: unmounting", strsignal(lrc));
    rc = 0;
    served = mono_s() - t0;

out:
    if (m && m->stats_started) {
        pthread_mutex_lock(&m->stats_mu);
        m->stats_stop = true;
        pthread_cond_signal(&m->stats_cv);
        pthread_mutex_unlock(&m->stats_mu);
        pthread_join(m->stats_thr, NULL);
    }
    if (se) {
        if (m->mounted)
            fuse_session_unmount(se);
        if (handlers)
            fuse_remove_signal_handlers(se);
        fuse_session_destroy(se); /* closes /dev/fuse: writers still open get ENOTCONN from here on */
        se = NULL;
    }
    fuse_opt_free_args(&args); /* what option parsing allocated (fargv itself is ours) */
    atomic_store(&flog_quiet, false);
    fuse_set_log_func(NULL);
    if (cfg)
        fuse_loop_cfg_destroy(cfg);
    if (m && m->vol) {
        bool was_mounted = m->mounted;
        m->mounted = false;
        struct ccr_err ce;
        ccr_err_clear(&ce);
        int crc = close_leftovers(m, &ce);
        if (was_mounted) {
            log_summary(m, served);
            stats_write(m);
        }
        struct ccr_err ve;
        ccr_err_clear(&ve);
        int vrc = ccr_volume_close(m->vol, &ve); /* commits what is still open (nothing, normally) */
        m->vol = NULL;
        if (vrc) {
            log_fail(CCR_LOG_ERROR, "commit at unmount", "", vrc, &ve);
            if (!crc) {
                crc = vrc;
                ce = ve;
            }
        }
        if (crc && rc == 0) {
            rc = crc;
            if (err)
                *err = ce;
        }
    }
    if (m) {
        if (m->buf_key_ok) {
            tbuf_free(pthread_getspecific(m->buf_key));
            pthread_key_delete(m->buf_key);
        }
        itable_fini(&m->it);
        pthread_cond_destroy(&m->stats_cv);
        pthread_mutex_destroy(&m->stats_mu);
        free(m->mountpoint);
        ccr_free(m);
    }
restore:
    for (size_t i = 0; i < NSIG_HANDLED; i++)
        sigaction(handled_signals[i], &old_act[i], NULL);
    {
        /* a second signal during shutdown must not kill the caller after we are done: take it */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&shutdown_sigs, NULL, &zero) > 0)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}
