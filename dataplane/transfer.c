/*
 * transfer.c - the transfer engine: publish a tree into a store, download it back, verify it in place.
 *
 * Planning (one thread): publish walks the source (sorted), selects this shard's files and drops those
 * the resume journal and one listing of the prefix show as already published; download and verify list
 * the prefix once (paged) and drop what the download journal shows complete. Then one run of N workers,
 * scheduled as in pipeline.c: a worker prefers an unclaimed unit of a started file, else starts the
 * next file itself. A unit is a run of whole regions (ccr1: 4 MiB of plaintext by default; cleanroom-cse:
 * one chunk, several when chunks are small; none: 4 MiB); it is one put_block (block 0 of a ccr1 blob
 * carries the header, the last block of a cleanroom-cse blob the trailer) or one ranged get. A file of
 * one unit goes as one put_blob. The last unit of a file finishes it: publish checks the source did not
 * change and commits the block list; download fsyncs the temporary file, records it in the journal and
 * renames it into place.
 *
 * Memory: every worker holds one unit's worth of the budget (pool.c) for the whole run and allocates
 * what its units need as they come (small files, small buffers); a blob that needs a larger unit (ccr1
 * regions larger than the unit, or more than 50,000 units) takes the extra from the pool for that unit
 * and gives it back. Threads x unit must fit in opts->memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ccr/transfer.h"
#include "codec_int.h"
#include "fio_int.h"
#include "sched_int.h"
#include "transfer_int.h"

#define UNIT_DEFAULT ((uint64_t)4 << 20)
#define MAX_BLOCKS   50000u
#define IOV_BATCH    1024
#define BUF_ALIGN    4096
#define BUF_GRAIN    ((size_t)64 << 10) /* worker buffers grow in multiples of this */
#define UNIT_EXTRA   (CCR1_HEADER_LEN + CCR_CSE_TRAILER_LEN)
#define SMALL_WHOLE  ((uint64_t)256 << 10) /* remote blobs up to this size are fetched whole */

enum tx_op { TX_PUBLISH, TX_DOWNLOAD, TX_VERIFY };

/* One file (publish) or blob (download/verify) to transfer. */
struct tx_file {
    char *name;              /* full blob name */
    char *local;             /* publish: source path; download: destination path; verify: NULL */
    uint64_t size;           /* publish: source size when listed; download/verify: stored size */
    char etag[CCR_ETAG_MAX]; /* download/verify: from the listing */
    bool nofollow;
};

struct tx_run;

struct tx_job {
    struct tx_file *f;
    int fd; /* publish: the source; download: the temporary output */
    char *tmp;
    struct stat st;
    uint64_t plain_size, stored_size;
    struct ccr_ccr1 c1;
    bool c1_ready;
    unsigned log2;
    uint64_t stride, n_regions, per_unit, unit_bytes;
    struct ccr_blob_props props; /* publish: of the committed blob */
    uint8_t *whole;              /* download/verify of a small blob from a remote store: all of it */
    struct sched_job s;          /* units, failure (sched.c) */
};

struct tx_worker {
    struct tx_run *r;
    struct ccr_aead *aead;
    struct fio fio; /* its io_uring; buf is its fixed buffer */
    uint8_t *buf;   /* NULL until the first unit */
    size_t cap;
    bool held; /* holds unit_cap bytes of the budget */
    struct iovec iov[IOV_BATCH];
};

struct tx_run {
    enum tx_op op;
    struct ccr_store *store;
    const struct ccr_datastore *ds;
    enum ccr_mode mode;
    const struct ccr_key *key;
    uint8_t key_id[CCR_KEY_ID_LEN];
    unsigned log2;     /* ccr1 publish */
    uint64_t chunk;    /* cleanroom-cse */
    uint64_t unit;     /* plaintext per unit (target) */
    uint64_t unit_cap; /* the buffer every worker holds */
    unsigned threads;
    const struct ccr_transfer_opts *o;
    struct tx_pool pool;
    struct tx_journal *journal;
    mode_t umask;
    double t0;
    struct tx_file *files;
    size_t n_files;
    struct ccr_transfer_result *res;

    struct sched sched;
    pthread_mutex_t res_mu; /* guards res */
    atomic_uint_fast64_t bytes_done, files_done;
    uint64_t bytes_total;
};

/* ----------------------------------------------------------------------------------------------------- */
/* public small things                                                                                    */
/* ----------------------------------------------------------------------------------------------------- */

void ccr_transfer_opts_init(struct ccr_transfer_opts *o)
{
    memset(o, 0, sizeof(*o));
}

void ccr_transfer_result_fini(struct ccr_transfer_result *r)
{
    if (!r)
        return;
    for (uint64_t i = 0; i < r->errors; i++)
        ccr_free(r->failed[i].path);
    ccr_free(r->failed);
    memset(r, 0, sizeof(*r));
}

unsigned ccr_shard_of(const char *rel_path, unsigned count)
{
    if (count <= 1)
        return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *s = (const unsigned char *)rel_path; *s; s++) {
        h ^= *s;
        h *= 0x100000001b3ull;
    }
    return (unsigned)(h % count);
}

/* ----------------------------------------------------------------------------------------------------- */
/* helpers                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static bool cancelled(const struct tx_run *r)
{
    return r->o->cancel && atomic_load_explicit(r->o->cancel, memory_order_relaxed) != 0;
}

/* The codec's result type and ours share the failure list; reuse its appender. */
static int add_failure(struct ccr_transfer_result *res, const char *path, int64_t region,
                       const struct ccr_err *e)
{
    struct ccr_codec_result cr = {.errors = res->errors, .failed = res->failed};
    int rc = pl_result_add_failure(&cr, path, region, e);
    res->errors = cr.errors;
    res->failed = cr.failed;
    return rc;
}

static int record_failure(struct ccr_transfer_result *res, const char *path, int code, const char *fmt,
                          const char *arg)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    ccr_err_set(&e, code, path, -1, fmt, arg, pl_strerror(code));
    return add_failure(res, path, -1, &e);
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void hexid(const uint8_t *b, char *out)
{
    for (int i = 0; i < CCR_KEY_ID_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* `.NAME.ccr-tmp-XXXXXX`: what an interrupted run leaves; *out_len receives NAME's length. */
static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ----------------------------------------------------------------------------------------------------- */
/* region arithmetic                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

static size_t region_plain_len(const struct tx_run *r, const struct tx_job *j, uint64_t k)
{
    if (r->mode == CCR_MODE_CCR1)
        return (size_t)ccr_ccr1_region_plain_len(j->plain_size, j->log2, k);
    uint64_t size = r->mode == CCR_MODE_CSE ? r->chunk : r->unit;
    uint64_t left = j->plain_size - k * size;
    return (size_t)(left < size ? left : size);
}

static uint64_t region_plain_off(const struct tx_run *r, const struct tx_job *j, uint64_t k)
{
    if (r->mode == CCR_MODE_CCR1)
        return k << j->log2;
    return k * (r->mode == CCR_MODE_CSE ? r->chunk : r->unit);
}

/* Stored offset of region k. */
static uint64_t region_stored_off(const struct tx_run *r, const struct tx_job *j, uint64_t k)
{
    return (r->mode == CCR_MODE_CCR1 ? CCR1_HEADER_LEN : 0) + k * j->stride;
}

/* Stored bytes of region k. */
static size_t region_stored_len(const struct tx_run *r, const struct tx_job *j, uint64_t k)
{
    if (r->mode == CCR_MODE_CSE)
        return (size_t)j->stride;
    return region_plain_len(r, j, k) + (r->mode == CCR_MODE_CCR1 ? CCR1_TAG_LEN : 0);
}

/* Sets stride, per_unit, n_units and unit_bytes (buffer need) once plain_size and log2 are known. */
static void plan_units(const struct tx_run *r, struct tx_job *j)
{
    switch (r->mode) {
    case CCR_MODE_CCR1: {
        uint64_t R = (uint64_t)1 << j->log2;
        j->stride = R + CCR1_TAG_LEN;
        j->n_regions = ccr_ccr1_region_count(j->plain_size, j->log2);
        j->per_unit = r->unit / R;
        break;
    }
    case CCR_MODE_CSE:
        j->stride = r->chunk + CCR_CSE_OVERHEAD;
        j->n_regions = ccr_cse_chunk_count(j->plain_size, r->chunk);
        /* one chunk per block; small chunks are grouped up to about a unit */
        j->per_unit = r->chunk >= ((uint64_t)1 << 20) ? 1 : r->unit / r->chunk;
        break;
    default:
        j->stride = r->unit;
        j->n_regions = (j->plain_size + r->unit - 1) / r->unit;
        j->per_unit = 1;
        break;
    }
    if (j->per_unit < 1)
        j->per_unit = 1;
    if ((j->n_regions + j->per_unit - 1) / j->per_unit > MAX_BLOCKS)
        j->per_unit = (j->n_regions + MAX_BLOCKS - 1) / MAX_BLOCKS;
    j->s.n_units = (j->n_regions + j->per_unit - 1) / j->per_unit;
    if (j->s.n_units == 0)
        j->s.n_units = 1; /* an empty file is one (small) unit all the same */
    j->unit_bytes = j->per_unit * j->stride + UNIT_EXTRA;
}

/* ----------------------------------------------------------------------------------------------------- */
/* per-file setup and completion                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

static void job_free(struct tx_run *r, struct tx_job *j)
{
    if (j->whole) {
        ccr_wipe(j->whole, (size_t)j->stored_size);
        ccr_free(j->whole);
        tx_pool_give(&r->pool, j->stored_size);
    }
    if (j->c1_ready)
        ccr_ccr1_fini(&j->c1);
    ccr_free(j->tmp);
    ccr_free(j);
}

/* Is the source as it was when opened? 0 or -EIO (err says what changed). */
static int source_unchanged(const struct tx_job *j, struct ccr_err *e)
{
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        int rc = -errno;
        return ccr_err_set(e, rc, j->f->local, -1, "cannot stat: %s", pl_strerror(rc));
    }
    if (st.st_size != j->st.st_size)
        return ccr_err_set(e, -EIO, j->f->local, -1,
                           "changed size while being published (%llu bytes, then %llu); not published",
                           (unsigned long long)j->st.st_size, (unsigned long long)st.st_size);
    if (st.st_mtim.tv_sec != j->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != j->st.st_mtim.tv_nsec ||
        st.st_ctim.tv_sec != j->st.st_ctim.tv_sec || st.st_ctim.tv_nsec != j->st.st_ctim.tv_nsec)
        return ccr_err_set(e, -EIO, j->f->local, -1, "was modified while being published; not published");
    return 0;
}

/* Finalises a job whose units are all done (or that failed): commit or clean up, record, free. */
static void job_finish(struct tx_run *r, struct tx_job *j)
{
    int rc = j->s.failed ? j->s.err.code : 0;
    struct ccr_err e;
    ccr_err_clear(&e);
    if (rc == 0 && cancelled(r))
        rc = ccr_err_set(&e, -ECANCELED, j->f->name, -1, "cancelled");

    if (r->op == TX_PUBLISH) {
        if (rc == 0 && j->s.n_units > 1) {
            rc = source_unchanged(j, &e);
            if (rc == 0) {
                rc = ccr_store_commit_blocks(r->store, j->f->name, j->s.n_units, &j->props, &e);
                if (rc)
                    ccr_err_where(&e, j->f->name);
            }
        }
        if (rc == 0 && r->journal &&
            tx_journal_append(r->journal, j->f->name, (uint64_t)j->st.st_size, mtime_ns(&j->st),
                              j->props.etag) != 0)
            ccr_log(CCR_LOG_WARN, "%s: cannot write the resume journal %s", j->f->name,
                    tx_journal_path(r->journal));
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
    } else if (r->op == TX_DOWNLOAD && j->fd >= 0) {
        struct stat st;
        if (rc == 0 && fchmod(j->fd, 0666 & ~r->umask) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->local, -1, "cannot set permissions: %s", pl_strerror(rc));
        }
        if (rc == 0 && fsync(j->fd) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->local, -1, "fsync failed: %s", pl_strerror(rc));
        }
        if (rc == 0 && fstat(j->fd, &st) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->local, -1, "cannot stat: %s", pl_strerror(rc));
        }
        if (close(j->fd) != 0 && rc == 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->local, -1, "close failed: %s", pl_strerror(rc));
        }
        j->fd = -1;
        /* journal first: an entry whose file is missing or differs is simply redone */
        if (rc == 0 && r->journal &&
            tx_journal_append(r->journal, j->f->name, (uint64_t)st.st_size, mtime_ns(&st), j->f->etag) != 0)
            ccr_log(CCR_LOG_WARN, "%s: cannot write the resume journal %s", j->f->local,
                    tx_journal_path(r->journal));
        if (rc == 0 && rename(j->tmp, j->f->local) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->local, -1, "cannot rename the finished file into place: %s",
                        pl_strerror(rc));
        }
        if (rc != 0)
            unlink(j->tmp);
    }

    pthread_mutex_lock(&r->res_mu);
    if (rc == 0) {
        r->res->files++;
        if (r->op == TX_PUBLISH) {
            r->res->bytes_in += j->plain_size;
            r->res->bytes_out += j->stored_size;
        } else {
            r->res->bytes_in += j->stored_size;
            r->res->bytes_out += r->op == TX_DOWNLOAD ? j->plain_size : 0;
        }
    } else {
        const struct ccr_err *fe = j->s.failed ? &j->s.err : &e;
        const char *path = r->op == TX_PUBLISH ? j->f->local : j->f->name;
        if (add_failure(r->res, path, j->s.failed ? j->s.fail_region : -1, fe) != 0)
            sched_fatal(&r->sched, -ENOMEM);
    }
    pthread_mutex_unlock(&r->res_mu);
    atomic_fetch_add(&r->files_done, 1);
    job_free(r, j);
}

static int prepare_publish(struct tx_run *r, struct tx_job *j, struct ccr_err *err)
{
    struct tx_file *f = j->f;
    j->fd = open(f->local, O_RDONLY | O_CLOEXEC | O_NOCTTY | (f->nofollow ? O_NOFOLLOW : 0));
    if (j->fd < 0) {
        int rc = -errno;
        if (rc == -ELOOP && f->nofollow)
            return ccr_err_set(err, rc, f->local, -1, "became a symbolic link after listing; not published");
        return ccr_err_set(err, rc, f->local, -1, "cannot open: %s", pl_strerror(rc));
    }
    if (fstat(j->fd, &j->st) != 0) {
        int rc = -errno;
        return ccr_err_set(err, rc, f->local, -1, "cannot stat: %s", pl_strerror(rc));
    }
    if (!S_ISREG(j->st.st_mode))
        return ccr_err_set(err, -EINVAL, f->local, -1, "not a regular file");
    posix_fadvise(j->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    j->plain_size = (uint64_t)j->st.st_size;
    if (r->mode == CCR_MODE_CCR1) {
        j->log2 = r->log2;
        int rc = ccr_ccr1_init_new(&j->c1, r->key, j->log2);
        if (rc)
            return ccr_err_set(err, rc, f->local, -1, "cannot set up ccr1 encryption: %s", pl_strerror(rc));
        j->c1_ready = true;
        j->stored_size = ccr_ccr1_blob_size(j->plain_size, j->log2);
    } else if (r->mode == CCR_MODE_CSE) {
        j->stored_size = ccr_cse_blob_size(j->plain_size, r->chunk);
    } else {
        j->stored_size = j->plain_size;
    }
    plan_units(r, j);
    return 0;
}

static int get_exact(struct tx_run *r, struct tx_job *j, uint64_t off, void *buf, size_t len,
                     struct ccr_err *err)
{
    if (j->whole) {
        memcpy(buf, j->whole + off, len); /* within stored_size: callers plan inside the listed size */
        return 0;
    }
    ssize_t n = ccr_store_get(r->store, j->f->name, off, buf, len, j->f->etag, err);
    if (n < 0) {
        ccr_err_where(err, j->f->name);
        if (n == -ESTALE)
            return ccr_err_set(err, -ESTALE, j->f->name, (int64_t)off,
                               "the blob was replaced while being read (its ETag changed); try again");
        return (int)n;
    }
    if ((size_t)n != len)
        return ccr_err_set(err, -ESTALE, j->f->name, (int64_t)off,
                           "the blob ended at byte %llu, before the %llu bytes listed (it was replaced?)",
                           (unsigned long long)(off + (uint64_t)n), (unsigned long long)j->f->size);
    return 0;
}

static int prepare_read(struct tx_run *r, struct tx_job *j, struct ccr_err *err)
{
    struct tx_file *f = j->f;
    int rc;
    j->stored_size = f->size;
    /* A small blob of an encrypted mode in a remote store: one GET for all of it, not one for the header
     * (or trailer) and one for the data, which would double the round trips per file. */
    if (r->mode != CCR_MODE_NONE && f->size > 0 && f->size <= SMALL_WHOLE &&
        ccr_store_parallelism(r->store) && tx_pool_try_take(&r->pool, f->size) == 0) {
        uint8_t *w = ccr_malloc((size_t)f->size);
        if (!w) {
            tx_pool_give(&r->pool, f->size);
        } else {
            rc = get_exact(r, j, 0, w, (size_t)f->size, err);
            j->whole = w; /* freed by job_free, also on failure */
            if (rc)
                return rc;
        }
    }
    if (r->mode == CCR_MODE_CCR1) {
        if (f->size < CCR1_HEADER_LEN)
            return ccr_err_set(err, -EBADMSG, f->name, 0,
                               "not a ccr1 blob: %llu bytes is too short for the 64-byte header",
                               (unsigned long long)f->size);
        uint8_t header[CCR1_HEADER_LEN];
        rc = get_exact(r, j, 0, header, sizeof(header), err);
        if (rc)
            return rc;
        struct ccr_ccr1_info info;
        rc = ccr_ccr1_header_parse(header, &info, err);
        if (rc) {
            ccr_err_where(err, f->name);
            pl_err_header(err);
            return rc;
        }
        if (memcmp(info.key_id, r->key_id, CCR_KEY_ID_LEN) != 0) {
            char a[2 * CCR_KEY_ID_LEN + 1], b[2 * CCR_KEY_ID_LEN + 1];
            hexid(info.key_id, a);
            hexid(r->key_id, b);
            return ccr_err_set(
                err, -ENOKEY, f->name, 8,
                "wrong key: the blob was encrypted under key id %s, the datastore's key has id %s", a, b);
        }
        rc = ccr_ccr1_init_parse(&j->c1, r->key, header, err);
        if (rc) {
            ccr_err_where(err, f->name);
            return rc;
        }
        j->c1_ready = true;
        j->log2 = info.region_log2;
        uint64_t nreg;
        rc = ccr_ccr1_plain_size(f->size, j->log2, &j->plain_size, &nreg, err);
        if (rc)
            return ccr_err_set(err, rc, f->name, -1,
                               "malformed ccr1 blob: its size (%llu bytes) fits no whole number of %llu-byte "
                               "regions (truncated or extended)",
                               (unsigned long long)f->size, (unsigned long long)1 << j->log2);
    } else if (r->mode == CCR_MODE_CSE) {
        uint8_t trailer[CCR_CSE_TRAILER_LEN] = {0};
        if (f->size >= CCR_CSE_TRAILER_LEN) {
            rc = get_exact(r, j, f->size - CCR_CSE_TRAILER_LEN, trailer, sizeof(trailer), err);
            if (rc)
                return rc;
        }
        uint64_t nch;
        rc = ccr_cse_plain_size(f->size, r->chunk, trailer, &j->plain_size, &nch, err);
        if (rc) {
            char old[sizeof(err->msg)];
            memcpy(old, err->msg, sizeof(old));
            return ccr_err_set(err, rc, f->name, -1, "malformed cleanroom-cse blob (chunk size %llu): %s",
                               (unsigned long long)r->chunk, old[0] ? old : "its size does not fit");
        }
    } else {
        j->plain_size = f->size;
    }
    plan_units(r, j);
    if (r->op == TX_DOWNLOAD) {
        rc = pl_temp_create(f->local, &j->tmp, &j->fd, err);
        if (rc)
            return rc;
        if (ftruncate(j->fd, (off_t)j->plain_size) != 0) {
            rc = -errno;
            return ccr_err_set(err, rc, f->local, -1, "cannot size the output to %llu bytes: %s",
                               (unsigned long long)j->plain_size, pl_strerror(rc));
        }
    }
    return 0;
}

/* Opens/lists one file. On failure the job is finished here and -1 returned. */
static int job_prepare(struct tx_run *r, size_t index, struct tx_job **out)
{
    struct tx_file *f = &r->files[index];
    struct tx_job *j = ccr_calloc(1, sizeof(*j));
    if (!j) {
        struct ccr_err e;
        ccr_err_set(&e, -ENOMEM, f->name, -1, "out of memory");
        pthread_mutex_lock(&r->res_mu);
        if (add_failure(r->res, r->op == TX_PUBLISH ? f->local : f->name, -1, &e) != 0)
            sched_fatal(&r->sched, -ENOMEM);
        pthread_mutex_unlock(&r->res_mu);
        atomic_fetch_add(&r->files_done, 1);
        return -1;
    }
    j->f = f;
    j->fd = -1;
    j->s.fail_region = -1;
    ccr_err_clear(&j->s.err);
    int rc;
    if (cancelled(r))
        rc = ccr_err_set(&j->s.err, -ECANCELED, f->name, -1, "cancelled");
    else if (r->op == TX_PUBLISH)
        rc = prepare_publish(r, j, &j->s.err);
    else
        rc = prepare_read(r, j, &j->s.err);
    if (rc) {
        if (j->s.err.code == 0)
            ccr_err_set(&j->s.err, rc, f->name, -1, "%s", pl_strerror(rc));
        j->s.failed = true;
        if (j->tmp && j->fd >= 0) {
            close(j->fd);
            j->fd = -1;
        }
        if (j->tmp)
            unlink(j->tmp);
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        job_finish(r, j);
        return -1;
    }
    j->s.pending = j->s.n_units;
    *out = j;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* units                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * The worker's buffer for a unit of `need` bytes. Every worker holds unit_cap bytes of the budget for
 * the whole run but allocates only what its units need, growing geometrically: a run of small files
 * keeps small buffers (32 remote workers x 4 MiB would otherwise cost 130 MiB for 4 KiB files). A unit
 * larger than unit_cap (bigger regions than planned) takes the difference from the budget for that unit;
 * *out_extra says how much, for shrink_buf.
 */
static int ensure_buf(struct tx_worker *w, size_t need, uint64_t *out_extra)
{
    *out_extra = 0;
    if (w->cap >= need)
        return 0;
    struct tx_run *r = w->r;
    uint64_t extra = need > r->unit_cap ? need - r->unit_cap : 0;
    if (extra) {
        uint64_t reserved = (uint64_t)r->threads * r->unit_cap;
        int rc = tx_pool_take(&r->pool, extra, reserved, r->o->cancel);
        if (rc)
            return rc;
    }
    size_t alloc = need;
    if (!extra) {
        size_t grow = w->cap * 2 > (size_t)r->unit_cap ? (size_t)r->unit_cap : w->cap * 2;
        if (grow > alloc)
            alloc = grow;
        alloc = (alloc + BUF_GRAIN - 1) / BUF_GRAIN * BUF_GRAIN;
        if (alloc > r->unit_cap)
            alloc = (size_t)r->unit_cap; /* need <= unit_cap here (no extra) */
    }
    uint8_t *nb = ccr_alloc_aligned(BUF_ALIGN, alloc);
    if (!nb) {
        tx_pool_give(&r->pool, extra);
        return -ENOMEM;
    }
    if (w->buf) {
        ccr_wipe(w->buf, w->cap);
        ccr_free(w->buf);
    }
    w->buf = nb;
    w->cap = alloc;
    fio_register(&w->fio, nb, alloc); /* best effort */
    *out_extra = extra;
    return 0;
}

/* After a unit larger than planned: free that buffer (the next unit allocates what it needs). */
static void shrink_buf(struct tx_worker *w, uint64_t extra)
{
    if (!extra)
        return;
    fio_register(&w->fio, NULL, 0);
    ccr_wipe(w->buf, w->cap);
    ccr_free(w->buf);
    w->buf = NULL;
    w->cap = 0;
    tx_pool_give(&w->r->pool, extra);
}

static int unit_publish(struct tx_worker *w, struct tx_job *j, uint64_t u, uint64_t r0, int cnt, uint8_t *buf,
                        struct ccr_err *e)
{
    struct tx_run *r = w->r;
    const char *src = j->f->local;
    size_t pre = (r->mode == CCR_MODE_CCR1 && u == 0) ? CCR1_HEADER_LEN : 0;
    size_t poff = r->mode == CCR_MODE_CSE ? CCR_CSE_NONCE_LEN : 0;
    uint64_t plain_off = region_plain_off(r, j, r0);
    size_t plain_total = 0, stored = pre;
    int rc;

    if (pre)
        memcpy(buf, j->c1.header, CCR1_HEADER_LEN);
    for (int k = 0; k < cnt;) {
        int b = cnt - k > IOV_BATCH ? IOV_BATCH : cnt - k;
        size_t want = 0;
        for (int i = 0; i < b; i++) {
            size_t len = region_plain_len(r, j, r0 + (uint64_t)(k + i));
            w->iov[i].iov_base = buf + pre + (size_t)(k + i) * j->stride + poff;
            w->iov[i].iov_len = len;
            want += len;
        }
        uint64_t off = plain_off + plain_total;
        ssize_t got = fio_readv(&w->fio, j->fd, w->iov, b, off);
        if (got < 0)
            return ccr_err_set(e, (int)got, src, (int64_t)off, "read failed at byte offset %llu: %s",
                               (unsigned long long)off, pl_strerror((int)got));
        if ((size_t)got != want)
            return ccr_err_set(
                e, -EIO, src, (int64_t)off,
                "changed size while being published (it ended before byte %llu); not published",
                (unsigned long long)(off + want));
        plain_total += want;
        k += b;
    }
    for (int k = 0; k < cnt; k++) {
        uint64_t reg = r0 + (uint64_t)k;
        uint8_t *slot = buf + pre + (size_t)k * j->stride;
        size_t len = region_plain_len(r, j, reg);
        if (r->mode == CCR_MODE_CCR1)
            rc = ccr_ccr1_seal_region(&j->c1, w->aead, reg, reg + 1 == j->n_regions, slot, slot, len,
                                      slot + len);
        else if (r->mode == CCR_MODE_CSE)
            rc = ccr_cse_seal_chunk(r->key, w->aead, slot, len, r->chunk);
        else
            rc = 0;
        if (rc)
            return ccr_err_set(e, rc, src, -1, "encryption failed in region %llu: %s",
                               (unsigned long long)reg, pl_strerror(rc));
        stored += region_stored_len(r, j, reg);
    }
    if (r->mode == CCR_MODE_CSE && u + 1 == j->s.n_units) {
        uint64_t pad = j->n_regions * r->chunk - j->plain_size;
        ccr_cse_trailer(pad, buf + stored);
        stored += CCR_CSE_TRAILER_LEN;
    }
    if (cancelled(r))
        return ccr_err_set(e, -ECANCELED, src, -1, "cancelled");
    if (j->s.n_units == 1) {
        rc = source_unchanged(j, e);
        if (rc)
            return rc;
        rc = ccr_store_put_blob(r->store, j->f->name, buf, stored, &j->props, e);
    } else {
        /* Where the block lands in the blob: the local store writes it there at once and commits
         * without copying. Block 0 of a ccr1 blob starts with the header, at 0. */
        uint64_t at = pre ? 0 : region_stored_off(r, j, r0);
        rc = ccr_store_put_block_at(r->store, j->f->name, u, at, buf, stored, e);
    }
    if (rc) {
        ccr_err_where(e, j->f->name);
        return rc;
    }
    atomic_fetch_add_explicit(&r->bytes_done, plain_total, memory_order_relaxed);
    return 0;
}

static int unit_read(struct tx_worker *w, struct tx_job *j, uint64_t r0, int cnt, uint8_t *buf,
                     struct ccr_err *e, int64_t *fail_region)
{
    struct tx_run *r = w->r;
    const char *name = j->f->name;
    if (cnt == 0)
        return 0;
    uint64_t sto_off = region_stored_off(r, j, r0);
    uint64_t last = r0 + (uint64_t)cnt - 1;
    size_t stored = (size_t)(region_stored_off(r, j, last) - sto_off) + region_stored_len(r, j, last);
    int rc = get_exact(r, j, sto_off, buf, stored, e);
    if (rc)
        return rc;
    size_t poff = r->mode == CCR_MODE_CSE ? CCR_CSE_NONCE_LEN : 0;
    for (int k = 0; k < cnt; k++) {
        uint64_t reg = r0 + (uint64_t)k;
        uint8_t *slot = buf + (size_t)k * j->stride;
        size_t len = region_plain_len(r, j, reg);
        struct ccr_err ce;
        ccr_err_clear(&ce);
        if (r->mode == CCR_MODE_CCR1)
            rc = ccr_ccr1_open_region(&j->c1, w->aead, reg, reg + 1 == j->n_regions, slot, slot, len,
                                      slot + len, &ce);
        else if (r->mode == CCR_MODE_CSE)
            rc = ccr_cse_open_chunk(r->key, w->aead, slot, len, r->chunk, &ce);
        else
            rc = 0;
        if (rc == 0)
            continue;
        uint64_t off = sto_off + (uint64_t)k * j->stride;
        const char *what = r->op == TX_VERIFY ? "" : "; nothing written";
        if (rc != -EBADMSG)
            return ccr_err_set(e, rc, name, (int64_t)off, "decryption failed in region %llu: %s",
                               (unsigned long long)reg, pl_strerror(rc));
        *fail_region = (int64_t)reg;
        ccr_wipe(buf, stored);
        if (r->mode == CCR_MODE_CCR1)
            return ccr_err_set(
                e, rc, name, (int64_t)off,
                "authentication failed in region %llu at byte offset %llu (tampered or corrupt "
                "data)%s",
                (unsigned long long)reg, (unsigned long long)off, what);
        if (strstr(ce.msg, "padding"))
            return ccr_err_set(e, rc, name, (int64_t)off,
                               "non-zero padding in chunk %llu at byte offset %llu (tampered or malformed "
                               "data)%s",
                               (unsigned long long)reg, (unsigned long long)off, what);
        return ccr_err_set(
            e, rc, name, (int64_t)off,
            "authentication failed in chunk %llu at byte offset %llu (tampered or corrupt data, "
            "or the wrong key: cleanroom-cse cannot tell them apart)%s",
            (unsigned long long)reg, (unsigned long long)off, what);
    }
    if (r->op == TX_DOWNLOAD) {
        uint64_t plain_off = region_plain_off(r, j, r0);
        for (int k = 0; k < cnt;) {
            int b = cnt - k > IOV_BATCH ? IOV_BATCH : cnt - k;
            size_t n = 0;
            for (int i = 0; i < b; i++) {
                w->iov[i].iov_base = buf + (size_t)(k + i) * j->stride + poff;
                w->iov[i].iov_len = region_plain_len(r, j, r0 + (uint64_t)(k + i));
                n += w->iov[i].iov_len;
            }
            rc = fio_writev(&w->fio, j->fd, w->iov, b, plain_off);
            if (rc)
                return ccr_err_set(e, rc, j->f->local, (int64_t)plain_off,
                                   "write failed at byte offset %llu: %s", (unsigned long long)plain_off,
                                   pl_strerror(rc));
            plain_off += n;
            k += b;
        }
    }
    atomic_fetch_add_explicit(&r->bytes_done, stored, memory_order_relaxed);
    return 0;
}

static int unit_run(struct tx_worker *w, struct tx_job *j, uint64_t u, struct ccr_err *e,
                    int64_t *fail_region)
{
    struct tx_run *r = w->r;
    if (cancelled(r))
        return ccr_err_set(e, -ECANCELED, j->f->name, -1, "cancelled");
    uint64_t r0 = u * j->per_unit;
    uint64_t r1 = r0 + j->per_unit;
    if (r1 > j->n_regions)
        r1 = j->n_regions;
    if (r0 > r1)
        r0 = r1;
    /* this unit's slots: stride apart, the last one only as long as its region (a small file's unit is
     * small), plus room for a header or trailer */
    size_t need = UNIT_EXTRA;
    if (r1 > r0)
        need += (size_t)((r1 - r0 - 1) * j->stride) + region_stored_len(r, j, r1 - 1);
    uint64_t extra = 0;
    int rc = ensure_buf(w, need, &extra);
    if (rc == -ENOMEM)
        return ccr_err_set(e, rc, j->f->name, -1,
                           "a transfer unit of %llu bytes does not fit the memory budget (--memory)",
                           (unsigned long long)j->unit_bytes);
    if (rc)
        return ccr_err_set(e, rc, j->f->name, -1, "%s", rc == -ECANCELED ? "cancelled" : pl_strerror(rc));
    if (r->op == TX_PUBLISH)
        rc = unit_publish(w, j, u, r0, (int)(r1 - r0), w->buf, e);
    else
        rc = unit_read(w, j, r0, (int)(r1 - r0), w->buf, e, fail_region);
    shrink_buf(w, extra);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* scheduling (sched.c)                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

static int sched_prepare(void *ctx, size_t index, struct sched_job **out_job)
{
    struct tx_job *j = NULL;
    int rc = job_prepare(ctx, index, &j);
    if (rc == 0)
        *out_job = &j->s;
    return rc;
}

static int sched_unit(void *ctx, void *worker, struct sched_job *sj, uint64_t unit, struct ccr_err *e,
                      int64_t *region)
{
    (void)ctx;
    return unit_run(worker, SCHED_OWNER(sj, struct tx_job, s), unit, e, region);
}

static void sched_finish(void *ctx, struct sched_job *sj)
{
    job_finish(ctx, SCHED_OWNER(sj, struct tx_job, s));
}

static void sched_skipped(void *ctx, size_t count)
{
    struct tx_run *r = ctx;
    atomic_fetch_add(&r->files_done, count);
}

static void progress_report(void *ctx)
{
    struct tx_run *r = ctx;
    if (!r->o->progress)
        return;
    struct ccr_progress pr = {
        .bytes_done = atomic_load(&r->bytes_done),
        .bytes_total = r->bytes_total,
        .files_done = atomic_load(&r->files_done),
        .files_total = r->n_files,
        .seconds = pl_now() - r->t0,
    };
    if (pr.bytes_done > pr.bytes_total)
        pr.bytes_done = pr.bytes_total;
    r->o->progress(r->o->progress_arg, &pr);
}

/*
 * cleanroom-cse pads every file to whole chunks (16 MiB by default): many small files multiply the bytes
 * stored and sent. Say so before publishing, when it is more than 4x and over 1 GiB.
 */
static void warn_cse_padding(const struct tx_run *r)
{
    uint64_t stored = 0;
    for (size_t i = 0; i < r->n_files; i++)
        stored += ccr_cse_chunk_count(r->files[i].size, r->chunk) * (r->chunk + CCR_CSE_OVERHEAD);
    if (stored > ((uint64_t)1 << 30) && stored / 4 > r->bytes_total)
        ccr_log(CCR_LOG_WARN,
                "cleanroom-cse pads every file to whole %llu-byte chunks: these %zu files (%llu bytes) take "
                "%llu bytes in the store; a smaller chunk (datastore add --region-size 64K) or mode ccr1 "
                "avoids it",
                (unsigned long long)r->chunk, r->n_files, (unsigned long long)r->bytes_total,
                (unsigned long long)stored);
}

/*
 * Workers beyond what the store wants in flight now park (sched admit): a remote store that adapts its
 * concurrency starts low, and 32 workers reading, sealing and holding 4 MiB buffers ahead of 8 requests
 * cost 40% more CPU per GB and three times the memory on the nginx bench. One worker per core always
 * runs (the local store is CPU-bound).
 */
static bool sched_admit(void *ctx, unsigned index)
{
    struct tx_run *r = ctx;
    unsigned cpus = pl_online_cpus();
    return index < cpus || index < ccr_store_concurrency_now(r->store);
}

/* Runs the workers over r->files. Returns 0 or -ENOMEM/-EAGAIN when nothing could start. */
static int run_workers(struct tx_run *r)
{
    int rc = 0;
    atomic_init(&r->bytes_done, 0);
    atomic_init(&r->files_done, 0);
    for (size_t i = 0; i < r->n_files; i++)
        r->bytes_total += r->files[i].size;
    if (r->op == TX_PUBLISH && r->mode == CCR_MODE_CSE)
        warn_cse_padding(r);
    if (r->n_files == 0) {
        progress_report(r);
        return 0;
    }
    unsigned nthreads = r->threads;
    static const struct sched_ops ops = {
        .prepare = sched_prepare,
        .unit = sched_unit,
        .finish = sched_finish,
        .progress = progress_report,
        .skipped = sched_skipped,
        .admit = sched_admit,
    };
    r->sched = (struct sched){.ops = &ops, .ctx = r, .n_items = r->n_files, .cancel = r->o->cancel};
    pthread_mutex_init(&r->res_mu, NULL);

    struct tx_worker *ws = ccr_calloc(nthreads, sizeof(*ws));
    if (!ws) {
        rc = -ENOMEM;
        goto out;
    }
    unsigned ready = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        ws[i].r = r;
        if (ccr_aead_create(&ws[i].aead) != 0)
            break;
        if (tx_pool_try_take(&r->pool, r->unit_cap) != 0)
            break;
        ws[i].held = true; /* its buffer is allocated on first use (ensure_buf) */
        fio_init(&ws[i].fio, true);
        ready++;
    }
    r->threads = ready;
    r->res->threads = ready;
    rc = ready ? sched_run(&r->sched, ws, sizeof(*ws), ready) : -ENOMEM;

    for (unsigned i = 0; i < nthreads; i++) {
        ccr_aead_destroy(ws[i].aead);
        fio_fini(&ws[i].fio);
        if (ws[i].buf) {
            ccr_wipe(ws[i].buf, ws[i].cap);
            ccr_free(ws[i].buf);
        }
        if (ws[i].held)
            tx_pool_give(&r->pool, r->unit_cap);
    }
    ccr_free(ws);
out:
    pthread_mutex_destroy(&r->res_mu);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* common setup                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

static void files_free(struct tx_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ccr_free(files[i].name);
        ccr_free(files[i].local);
    }
    ccr_free(files);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = ccr_realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* "p", "p/", "/p//" -> "p/"; NULL or "" -> "". Checks it as a blob name. Caller frees. */
static int norm_prefix(const char *prefix, char **out, struct ccr_err *err)
{
    if (!prefix)
        prefix = "";
    while (*prefix == '/')
        prefix++;
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    char *p = ccr_malloc(n + 2);
    if (!p)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    memcpy(p, prefix, n);
    p[n] = '\0';
    if (n > 0) {
        int rc = ccr_blob_name_check(p, err);
        if (rc) {
            char old[sizeof(err->msg)];
            memcpy(old, err ? err->msg : "", err ? sizeof(old) : 1);
            ccr_free(p);
            return ccr_err_set(err, rc, prefix, -1, "invalid --prefix: %s", old);
        }
        p[n] = '/';
        p[n + 1] = '\0';
    }
    *out = p;
    return 0;
}

/* Validates mode/key/threads/memory and fills the run's common fields. */
static int run_setup(struct tx_run *r, enum tx_op op, struct ccr_store *store, const struct ccr_datastore *ds,
                     const struct ccr_key *key, const struct ccr_transfer_opts *opts,
                     struct ccr_transfer_result *res, struct ccr_err *err)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    r->store = store;
    r->ds = ds;
    /* cpk: the store encrypts with the key (ccr_store_opts.cpk); the engine moves plaintext */
    r->mode = ds->mode == CCR_MODE_CPK ? CCR_MODE_NONE : ds->mode;
    r->key = ds->mode == CCR_MODE_CPK ? NULL : key;
    r->o = opts;
    r->res = res;
    r->umask = pl_umask();
    r->t0 = pl_now();
    if (r->mode != CCR_MODE_CCR1 && r->mode != CCR_MODE_CSE && r->mode != CCR_MODE_NONE)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "mode %s is not supported by this store",
                           ccr_mode_name(r->mode));
    if (r->mode != CCR_MODE_NONE && !key)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "mode %s needs a key", ccr_mode_name(r->mode));
    char why[160];
    if (ccr_region_size_check(r->mode == CCR_MODE_NONE ? CCR_MODE_CCR1 : r->mode,
                              r->mode == CCR_MODE_NONE ? 0 : ds->region_size, why, sizeof(why)) != 0)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "datastore region size: %s", why);
    if (opts->threads > 4096)
        return ccr_err_set(err, -EINVAL, NULL, -1, "too many threads (%u; at most 4096)", opts->threads);
    if (r->mode == CCR_MODE_CCR1) {
        uint64_t R = ds->region_size ? ds->region_size : CCR_CCR1_REGION_DEFAULT;
        r->log2 = (unsigned)__builtin_ctzll(R);
        if (op != TX_PUBLISH) {
            int rc = ccr_key_id(key, r->key_id);
            if (rc)
                return ccr_err_set(err, rc, NULL, -1, "cannot compute the key id");
        }
    }
    r->chunk = ds->region_size ? ds->region_size : CCR_CSE_CHUNK_DEFAULT64;
    r->unit = opts->unit_size ? opts->unit_size : UNIT_DEFAULT;
    if (r->mode == CCR_MODE_CCR1) {
        uint64_t R = (uint64_t)1 << r->log2;
        r->unit = r->unit < R ? R : r->unit / R * R;
        r->unit_cap = r->unit / R * (R + CCR1_TAG_LEN) + UNIT_EXTRA;
    } else if (r->mode == CCR_MODE_CSE) {
        uint64_t per = r->chunk >= ((uint64_t)1 << 20) ? 1 : r->unit / r->chunk;
        if (per < 1)
            per = 1;
        r->unit_cap = per * (r->chunk + CCR_CSE_OVERHEAD) + UNIT_EXTRA;
    } else {
        r->unit_cap = r->unit + UNIT_EXTRA;
    }
    uint64_t mem = opts->memory ? opts->memory : CCR_MEMORY_DEFAULT;
    if (opts->threads) {
        r->threads = opts->threads;
        if (r->unit_cap > mem / r->threads)
            return ccr_err_set(err, -EINVAL, NULL, -1,
                               "the memory budget (%llu bytes) is too small for %u threads x one %llu-byte "
                               "transfer unit each: raise --memory to at least %llu or use fewer --threads",
                               (unsigned long long)mem, r->threads, (unsigned long long)r->unit_cap,
                               (unsigned long long)(r->unit_cap * r->threads));
    } else {
        if (r->unit_cap > mem)
            return ccr_err_set(err, -EINVAL, NULL, -1,
                               "the memory budget (%llu bytes) is too small for one %llu-byte transfer unit: "
                               "raise --memory to at least %llu",
                               (unsigned long long)mem, (unsigned long long)r->unit_cap,
                               (unsigned long long)r->unit_cap);
        /* A local store is CPU-bound: one worker per core. A remote one is latency-bound: as many
         * workers as it keeps requests in flight, each blocked in its call while the store's lanes move
         * the bytes (AES-GCM on 2 cores outruns any one connection). The budget caps both. */
        r->threads = pl_online_cpus();
        unsigned want = ccr_store_parallelism(store);
        if (want > r->threads)
            r->threads = want;
        if (r->threads > mem / r->unit_cap)
            r->threads = (unsigned)(mem / r->unit_cap);
    }
    tx_pool_init(&r->pool, mem);
    return 0;
}

/* Opens the run's journal unless disabled; a journal that cannot be opened is a warning. */
static void open_journal(struct tx_run *r, const char *kind, const char *prefix, const char *local)
{
    if (r->o->no_journal)
        return;
    char *abs = realpath(local, NULL);
    struct ccr_err e;
    ccr_err_clear(&e);
    uint64_t region = r->mode == CCR_MODE_CCR1  ? (uint64_t)1 << r->log2
                      : r->mode == CCR_MODE_CSE ? r->chunk
                                                : 0;
    int rc = tx_journal_open(r->o->journal_dir, kind, ccr_store_url(r->store), prefix, abs ? abs : local,
                             r->mode, region, &r->journal, &e);
    free(abs);
    if (rc)
        ccr_log(CCR_LOG_WARN, "%s: %s; going on without a resume journal", e.where[0] ? e.where : "journal",
                e.msg);
}

static int finish(struct tx_run *r, int rc, const char *where, struct ccr_err *err)
{
    if (r->journal) {
        int jr = tx_journal_close(r->journal);
        if (jr)
            ccr_log(CCR_LOG_WARN, "cannot sync the resume journal: %s", pl_strerror(jr));
        r->journal = NULL;
    }
    tx_pool_fini(&r->pool);
    r->res->seconds = pl_now() - r->t0;
    if (rc)
        return rc;
    if (r->o->cancel && atomic_load(r->o->cancel))
        return ccr_err_set(err, -ECANCELED, where, -1, "cancelled; nothing partial was left");
    return pl_worst_failure(r->res->failed, r->res->errors, err);
}

/* Lists every committed blob under prefix (paged) into *out_map (name -> props). */
static int list_all(struct ccr_store *store, const char *prefix, struct tx_file **out_files, size_t *out_n,
                    struct tx_map *map, const atomic_int *cancel, struct ccr_err *err)
{
    char *marker = NULL;
    struct tx_file *files = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    do {
        struct ccr_blob_page page = {0};
        rc = ccr_store_list(store, prefix, NULL, marker, 0, &page, err);
        ccr_free(marker);
        marker = NULL;
        if (rc) {
            ccr_err_where(err, ccr_store_url(store));
            break;
        }
        for (size_t i = 0; i < page.count && rc == 0; i++) {
            const struct ccr_blob_item *it = &page.items[i];
            if (it->is_prefix)
                continue;
            if (map) {
                struct tx_entry e = {.size = it->props.size, .mtime_ns = it->props.mtime_ns};
                snprintf(e.etag, sizeof(e.etag), "%s", it->props.etag);
                rc = tx_map_put(map, it->name, &e);
            }
            if (rc == 0 && out_files) {
                rc = grow((void **)&files, &cap, n, sizeof(*files));
                if (rc == 0) {
                    memset(&files[n], 0, sizeof(files[n]));
                    files[n].name = strdup(it->name);
                    files[n].size = it->props.size;
                    snprintf(files[n].etag, sizeof(files[n].etag), "%s", it->props.etag);
                    if (!files[n].name)
                        rc = -ENOMEM;
                    n++;
                }
            }
        }
        if (rc == 0 && page.next_marker) {
            marker = strdup(page.next_marker);
            if (!marker)
                rc = -ENOMEM;
        }
        ccr_blob_page_fini(&page);
        if (rc == -ENOMEM)
            ccr_err_set(err, rc, NULL, -1, "out of memory listing the store");
        if (rc == 0 && cancel && atomic_load(cancel))
            rc = ccr_err_set(err, -ECANCELED, NULL, -1, "cancelled");
    } while (rc == 0 && marker);
    ccr_free(marker);
    if (rc) {
        files_free(files, n);
        return rc;
    }
    if (out_files) {
        *out_files = files;
        *out_n = n;
    }
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* publish                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

/* What walking the source collects: this shard's files, with their blob names. */
struct walk {
    const char *prefix;
    unsigned shard_index, shard_count;
    struct tx_file *files;
    size_t n, cap;
    struct ccr_transfer_result *res;
};

static char *join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = ccr_malloc(la + ls + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

/* Adds one regular file (rel path, full path) if it is in this shard. Takes ownership of full. */
static int walk_add(struct walk *w, const char *rel, char *full, uint64_t size, bool nofollow)
{
    if (w->shard_count > 1 && ccr_shard_of(rel, w->shard_count) != w->shard_index) {
        ccr_free(full);
        return 0;
    }
    int rc = grow((void **)&w->files, &w->cap, w->n, sizeof(*w->files));
    char *name = rc == 0 ? join(w->prefix, "", rel) : NULL;
    if (!name) {
        ccr_free(full);
        return -ENOMEM;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    if (ccr_blob_name_check(name, &e) != 0) {
        char msg[sizeof(e.msg) + 64];
        snprintf(msg, sizeof(msg), "cannot be published: its blob name '%%s' is invalid: %s", e.msg);
        ccr_err_set(&e, -EINVAL, full, -1, msg, name);
        rc = add_failure(w->res, full, -1, &e);
        ccr_free(name);
        ccr_free(full);
        return rc;
    }
    w->files[w->n++] = (struct tx_file){.name = name, .local = full, .size = size, .nofollow = nofollow};
    return 0;
}

static int walk_entry(void *arg, enum pl_walk_kind kind, const char *rel, const char *full,
                      const struct stat *st, bool nofollow)
{
    if (kind == PL_WALK_DIR)
        return 0; /* blob names carry the directories */
    char *copy = strdup(full);
    return copy ? walk_add(arg, rel, copy, (uint64_t)st->st_size, nofollow) : -ENOMEM;
}

static int walk_failure(void *arg, const char *path, int code, const char *what)
{
    struct walk *w = arg;
    return record_failure(w->res, path, code, "%s: %s", what);
}

static void walk_skipped(void *arg)
{
    struct walk *w = arg;
    w->res->skipped++;
}

int ccr_publish(struct ccr_store *store, const struct ccr_datastore *ds, const struct ccr_key *key,
                const char *src, const struct ccr_transfer_opts *opts, struct ccr_transfer_result *result,
                struct ccr_err *err)
{
    if (!result)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no result struct");
    memset(result, 0, sizeof(*result));
    ccr_err_clear(err);
    if (!store || !ds || !src || !opts)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (opts->shard_count > 1 && opts->shard_index >= opts->shard_count)
        return ccr_err_set(err, -EINVAL, NULL, -1, "shard index %u out of range (0..%u)", opts->shard_index,
                           opts->shard_count - 1);
    struct tx_run r;
    int rc = run_setup(&r, TX_PUBLISH, store, ds, key, opts, result, err);
    if (rc)
        return rc;
    char *prefix = NULL;
    struct walk w = {.shard_index = opts->shard_index, .shard_count = opts->shard_count, .res = result};
    struct tx_map listing;
    tx_map_init(&listing);
    rc = norm_prefix(opts->prefix, &prefix, err);
    if (rc)
        goto out;
    w.prefix = prefix;

    struct stat st;
    if (stat(src, &st) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, src, -1, "cannot read: %s", pl_strerror(rc));
        goto out;
    }
    if (S_ISREG(st.st_mode)) {
        char *copy = strdup(src);
        if (!copy) {
            rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
            goto out;
        }
        size_t n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/')
            copy[--n] = '\0';
        const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
        char *full = strdup(src);
        rc = full ? walk_add(&w, base, full, (uint64_t)st.st_size, false) : -ENOMEM;
        free(copy);
    } else if (S_ISDIR(st.st_mode)) {
        const struct pl_walk walker = {
            .root = src,
            .follow_links = opts->follow_symlinks,
            .skip_note = "only regular files are published; --follow-symlinks follows links to files",
            .cancel = opts->cancel,
            .entry = walk_entry,
            .failure = walk_failure,
            .skipped = walk_skipped,
            .arg = &w,
        };
        rc = pl_walk_run(&walker);
    } else {
        rc = ccr_err_set(err, -EINVAL, src, -1, "not a regular file or a directory");
        goto out;
    }
    if (rc) {
        ccr_err_set(err, rc, src, -1, rc == -ECANCELED ? "cancelled" : "cannot list: %s", pl_strerror(rc));
        goto out;
    }

    /* resume: journal entries with the same size and mtime whose blob still has the recorded ETag */
    open_journal(&r, "publish", prefix, src);
    if (r.journal && tx_journal_count(r.journal) > 0) {
        rc = list_all(store, prefix, NULL, NULL, &listing, opts->cancel, err);
        if (rc)
            goto out;
        size_t k = 0;
        for (size_t i = 0; i < w.n; i++) {
            struct tx_file *f = &w.files[i];
            const struct tx_entry *je = tx_journal_find(r.journal, f->name);
            const struct tx_entry *le = je ? tx_map_get(&listing, f->name) : NULL;
            struct stat fst;
            bool done = le && strcmp(je->etag, le->etag) == 0 &&
                        (f->nofollow ? lstat(f->local, &fst) : stat(f->local, &fst)) == 0 &&
                        (uint64_t)fst.st_size == je->size && mtime_ns(&fst) == je->mtime_ns;
            if (done) {
                result->resumed++;
                ccr_free(f->name);
                ccr_free(f->local);
            } else {
                w.files[k++] = *f;
            }
        }
        w.n = k;
    }
    r.files = w.files;
    r.n_files = w.n;
    /* Never more threads than transfer units: one big file is shared by every worker. */
    uint64_t units = 0;
    for (size_t i = 0; i < w.n; i++)
        units += w.files[i].size / r.unit + 1;
    if (units > 0 && r.threads > units)
        r.threads = (unsigned)units;
    rc = run_workers(&r);
    if (rc)
        ccr_err_set(err, rc, src, -1, "cannot start: %s", pl_strerror(rc));
out:
    rc = finish(&r, rc, src, err);
    tx_map_fini(&listing);
    files_free(w.files, w.n);
    ccr_free(prefix);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* download and verify                                                                                    */
/* ----------------------------------------------------------------------------------------------------- */

static int cmp_file_name(const void *a, const void *b)
{
    return strcmp(((const struct tx_file *)a)->name, ((const struct tx_file *)b)->name);
}

/* mkdir -p for the parent directories of path (below root, which exists). */
static int make_parents(const char *root, const char *path, char **last_made, struct ccr_err *err)
{
    const char *slash = strrchr(path, '/');
    size_t plen = slash ? (size_t)(slash - path) : 0;
    size_t rlen = strlen(root);
    if (plen <= rlen)
        return 0;
    if (*last_made && strlen(*last_made) == plen && memcmp(*last_made, path, plen) == 0)
        return 0;
    char *dir = strndup(path, plen);
    if (!dir)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    for (char *s = dir + rlen + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(dir, 0777) != 0 && !(errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))) {
            int rc = errno == EEXIST ? -ENOTDIR : -errno;
            ccr_err_set(err, rc, dir, -1, "cannot create directory: %s", pl_strerror(rc));
            free(dir);
            return rc;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(*last_made);
    *last_made = dir;
    return 0;
}

/* Removes `.NAME.ccr-tmp-XXXXXX` files left by an interrupted download of one of our blobs. */
static void remove_leftovers(const char *root, const char *rel, const struct tx_file *files, size_t n,
                             size_t plen, unsigned depth)
{
    if (depth > 256)
        return;
    char *dir = rel[0] ? join(root, "/", rel) : strdup(root);
    if (!dir)
        return;
    DIR *d = opendir(dir);
    if (!d) {
        ccr_free(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *crel = rel[0] ? join(rel, "/", de->d_name) : strdup(de->d_name);
        if (!crel)
            break;
        size_t nlen = 0;
        if (de->d_type == DT_DIR) {
            remove_leftovers(root, crel, files, n, plen, depth + 1);
        } else if (pl_is_leftover_temp(de->d_name, &nlen)) {
            /* the blob it was for: rel/NAME (NAME possibly cut at 200 bytes by temp_create) */
            size_t rl = rel[0] ? strlen(rel) + 1 : 0;
            bool ours = false;
            for (size_t i = 0; i < n && !ours; i++) {
                const char *brel = files[i].name + plen;
                if (strlen(brel) >= rl + nlen &&
                    (rl == 0 || (memcmp(brel, rel, rl - 1) == 0 && brel[rl - 1] == '/')) &&
                    memcmp(brel + rl, de->d_name + 1, nlen) == 0 && (brel[rl + nlen] == '\0' || nlen == 200))
                    ours = true;
            }
            if (ours) {
                char *full = join(dir, "/", de->d_name);
                if (full)
                    unlink(full);
                ccr_free(full);
            }
        }
        ccr_free(crel);
    }
    closedir(d);
    ccr_free(dir);
}

static int read_run(enum tx_op op, struct ccr_store *store, const struct ccr_datastore *ds,
                    const struct ccr_key *key, const char *dst, const struct ccr_transfer_opts *opts,
                    struct ccr_transfer_result *result, struct ccr_err *err)
{
    if (!result)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no result struct");
    memset(result, 0, sizeof(*result));
    ccr_err_clear(err);
    if (!store || !ds || !opts || (op == TX_DOWNLOAD && !dst))
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    struct tx_run r;
    int rc = run_setup(&r, op, store, ds, key, opts, result, err);
    if (rc)
        return rc;
    const char *where = op == TX_DOWNLOAD ? dst : ccr_store_url(store);
    char *prefix = NULL, *root = NULL, *last_made = NULL;
    struct tx_file *files = NULL;
    size_t n = 0;
    rc = norm_prefix(opts->prefix, &prefix, err);
    if (rc)
        goto out;
    size_t plen = strlen(prefix);
    rc = list_all(store, prefix, &files, &n, NULL, opts->cancel, err);
    if (rc)
        goto out;
    if (n > 1)
        qsort(files, n, sizeof(*files), cmp_file_name);

    if (op == TX_DOWNLOAD) {
        struct stat st;
        bool existed = stat(dst, &st) == 0;
        if (existed && !S_ISDIR(st.st_mode)) {
            rc = ccr_err_set(err, -ENOTDIR, dst, -1, "exists and is not a directory");
            goto out;
        }
        if (!existed && mkdir(dst, 0777) != 0) {
            rc = -errno;
            ccr_err_set(err, rc, dst, -1, "cannot create directory: %s", pl_strerror(rc));
            goto out;
        }
        root = strdup(dst);
        if (!root) {
            rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
            goto out;
        }
        for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--)
            root[l - 1] = '\0';
        if (existed)
            remove_leftovers(root, "", files, n, plen, 0);
        open_journal(&r, "download", prefix, root);
        /* destination paths; drop what is complete; refuse what exists and is not ours */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            struct tx_file *f = &files[i];
            struct ccr_err e;
            ccr_err_clear(&e);
            int frc = 0;
            f->local = join(root, "/", f->name + plen);
            if (!f->local) {
                rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
                goto out;
            }
            if (ccr_blob_name_check(f->name, &e) != 0 || f->name[plen] == '\0') {
                frc =
                    ccr_err_set(&e, -EINVAL, f->name, -1, "cannot be downloaded: not a valid relative path");
            } else if (lstat(f->local, &st) == 0) {
                const struct tx_entry *je = tx_journal_find(r.journal, f->name);
                if (S_ISREG(st.st_mode) && je && strcmp(je->etag, f->etag) == 0 &&
                    je->size == (uint64_t)st.st_size && je->mtime_ns == mtime_ns(&st)) {
                    result->resumed++;
                    ccr_free(f->name);
                    ccr_free(f->local);
                    continue;
                }
                if (S_ISDIR(st.st_mode))
                    frc = ccr_err_set(&e, -EISDIR, f->local, -1, "is a directory; blob %s not downloaded",
                                      f->name);
                else if (!opts->force)
                    frc =
                        ccr_err_set(&e, -EEXIST, f->local, -1, "already exists (use --force to replace it)");
            } else {
                frc = make_parents(root, f->local, &last_made, &e);
            }
            if (frc) {
                if (add_failure(result, f->name, -1, &e) != 0) {
                    rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
                    goto out;
                }
                ccr_free(f->name);
                ccr_free(f->local);
                continue;
            }
            files[k++] = *f;
        }
        n = k;
    }
    r.files = files;
    r.n_files = n;
    rc = run_workers(&r);
    if (rc)
        ccr_err_set(err, rc, where, -1, "cannot start: %s", pl_strerror(rc));
    if (root && rc == 0)
        sync_dir(root);
out:
    rc = finish(&r, rc, where, err);
    files_free(files, n);
    ccr_free(prefix);
    free(root);
    free(last_made);
    return rc;
}

int ccr_download(struct ccr_store *store, const struct ccr_datastore *ds, const struct ccr_key *key,
                 const char *dst, const struct ccr_transfer_opts *opts, struct ccr_transfer_result *result,
                 struct ccr_err *err)
{
    return read_run(TX_DOWNLOAD, store, ds, key, dst, opts, result, err);
}

int ccr_verify(struct ccr_store *store, const struct ccr_datastore *ds, const struct ccr_key *key,
               const struct ccr_transfer_opts *opts, struct ccr_transfer_result *result, struct ccr_err *err)
{
    return read_run(TX_VERIFY, store, ds, key, NULL, opts, result, err);
}

int ccr_blob_plain_size(struct ccr_store *store, const struct ccr_datastore *ds, const char *blob,
                        const struct ccr_blob_props *props, uint64_t *out_plain, struct ccr_err *err)
{
    struct ccr_blob_props p;
    int rc;
    if (!store || !ds || !blob || !out_plain)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (!props) {
        rc = ccr_store_props(store, blob, &p, err);
        if (rc)
            return rc;
        props = &p;
    }
    uint64_t plain, n;
    switch (ds->mode) {
    case CCR_MODE_CCR1: {
        uint64_t R = ds->region_size ? ds->region_size : CCR_CCR1_REGION_DEFAULT;
        rc = ccr_ccr1_plain_size(props->size, (unsigned)__builtin_ctzll(R), &plain, &n, err);
        if (rc)
            return ccr_err_set(err, rc, blob, -1, "%llu bytes fits no ccr1 blob of %llu-byte regions",
                               (unsigned long long)props->size, (unsigned long long)R);
        break;
    }
    case CCR_MODE_CSE: {
        uint64_t B = ds->region_size ? ds->region_size : CCR_CSE_CHUNK_DEFAULT64;
        uint8_t trailer[CCR_CSE_TRAILER_LEN] = {0};
        if (props->size >= CCR_CSE_TRAILER_LEN) {
            ssize_t got = ccr_store_get(store, blob, props->size - CCR_CSE_TRAILER_LEN, trailer,
                                        sizeof(trailer), props->etag[0] ? props->etag : NULL, err);
            if (got < 0)
                return (int)got;
            if (got != CCR_CSE_TRAILER_LEN)
                return ccr_err_set(err, -ESTALE, blob, -1, "the blob changed while being read");
        }
        rc = ccr_cse_plain_size(props->size, B, trailer, &plain, &n, err);
        if (rc)
            return ccr_err_set(err, rc, blob, -1, "%llu bytes fits no cleanroom-cse blob of %llu-byte chunks",
                               (unsigned long long)props->size, (unsigned long long)B);
        break;
    }
    case CCR_MODE_NONE:
    case CCR_MODE_CPK:
        plain = props->size;
        break;
    default:
        return ccr_err_set(err, -EINVAL, blob, -1, "mode %s is not supported", ccr_mode_name(ds->mode));
    }
    *out_plain = plain;
    return 0;
}
