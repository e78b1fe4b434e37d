/*
 * pipeline.c - the parallel file pipeline: cut files into units of whole regions, seal/open them on N
 * worker threads in constant memory, write each unit at its fixed output offset.
 *
 * Work units. Both formats put region (chunk) i at a fixed offset in the plaintext and in the blob, so a
 * unit - a run of consecutive regions - can be read, processed and written by any thread in any order.
 * A unit holds about UNIT_TARGET bytes of plaintext (at least one region, at most IOV_MAX regions,
 * since it is read or written with one preadv/pwritev whose slots skip the tags).
 *
 * Scheduling. One mutex guards a small scheduler: the list of files still to start (next_file), the
 * "active" list of started files that still have unclaimed units, and per-file counters. A worker
 * prefers an unclaimed unit of an active file (so a big file is shared by every worker and few files are
 * open at once: at most one per worker); otherwise it starts the next file itself - opening it, checking
 * its header, creating the temporary output - and keeps unit 0 for itself. Small files are therefore
 * handled whole by one worker each, one per worker in parallel, with no hand-off. The lock is taken
 * twice per unit (claim, done), which is noise next to a 4 MiB AES-GCM pass.
 *
 * Completion. Each started file counts its pending units; whoever finishes the last one finalises the
 * file outside the lock: trailer (cleanroom-cse), source-unchanged check, fsync, permission bits,
 * rename - or, after any failure, close and unlink the temporary file. The first failure of a file
 * withdraws its unclaimed units, so nothing more is spent on it.
 *
 * Memory: each worker owns one aligned buffer (grown to the largest unit it has met, freed at the end),
 * one struct ccr_aead and an iovec array. Nothing is allocated per unit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "codec_int.h"
#include "fio_int.h"
#include "sched_int.h"

/*
 * Plaintext per unit: big enough to amortise syscalls and locking, small enough to stay in a core's L2
 * cache between the read, the AES pass and the write. 1, 2, 4 and 8 MiB measured alike on tmpfs with
 * 1 MiB regions; -DUNIT_TARGET=... overrides it for experiments.
 */
#ifndef UNIT_TARGET
#define UNIT_TARGET ((uint64_t)2 << 20)
#endif
#define UNIT_IOV  1024 /* regions per unit at most (IOV_MAX) */
#define BUF_ALIGN 4096

struct pipeline;

/* One file being processed. */
struct job {
    struct pl_file *f;
    int in_fd, out_fd;
    char *tmp; /* temporary output path (owned), NULL when none was created */
    struct stat in_st;
    uint64_t in_size, out_size, plain_size;
    enum ccr_mode mode;
    struct ccr_ccr1 c1;
    bool c1_ready;
    unsigned log2;      /* ccr1 */
    uint64_t chunk;     /* cleanroom-cse B */
    uint64_t stride;    /* stored bytes per region: R + 16 or B + 28 */
    uint64_t n_regions; /* regions (ccr1) or chunks (cse) */
    uint64_t per_unit;  /* regions per unit */
    struct sched_job s; /* units, failure (sched.c) */
};

struct worker {
    struct pipeline *p;
    struct ccr_aead *aead;
    struct fio fio; /* its io_uring; the buffer below is its fixed buffer */
    uint8_t *buf;
    size_t cap;
    struct iovec iov[UNIT_IOV];
};

struct pipeline {
    const struct pl_params *pp;
    struct pl_file *files;
    size_t n_files;
    uint8_t key_id[CCR_KEY_ID_LEN]; /* of pp->key, for the wrong-key message */
    uint64_t unit_target;

    struct sched sched;
    pthread_mutex_t res_mu; /* guards res */
    struct ccr_codec_result *res;

    atomic_uint_fast64_t bytes_done;
    atomic_uint_fast64_t files_done;
    uint64_t bytes_total;
};

/* ----------------------------------------------------------------------------------------------------- */
/* small helpers                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

double pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pl_err_rewrap(struct ccr_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char m[sizeof(e->msg) + 256]; /* arguments may point into e->msg */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    memcpy(e->msg, m, sizeof(e->msg) - 1);
    e->msg[sizeof(e->msg) - 1] = '\0';
}

void pl_err_header(struct ccr_err *e)
{
    if (!e)
        return;
    if (strstr(e->msg, "magic")) {
        snprintf(e->msg, sizeof(e->msg),
                 "not a ccr1 file (bad magic: it does not start with \"CCR1\"; wrong --mode?)");
        return;
    }
    char old[sizeof(e->msg)];
    memcpy(old, e->msg, sizeof(old));
    pl_err_rewrap(e, "malformed ccr1 header: %s (header byte %lld)", old, (long long)e->offset);
}

const char *pl_strerror(int err)
{
    if (err < 0)
        err = -err;
    const char *s = strerrordesc_np(err);
    return s ? s : "unknown error";
}

unsigned pl_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

mode_t pl_umask(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        unsigned m = 0;
        bool found = false;
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "Umask: %o", &m) == 1) {
                found = true;
                break;
            }
        }
        fclose(f);
        if (found)
            return (mode_t)(m & 0777);
    }
    mode_t m = umask(022); /* racy if other threads change it at the same moment; only a fallback */
    umask(m);
    return m;
}

int pl_result_add_failure(struct ccr_codec_result *res, const char *path, int64_t region,
                          const struct ccr_err *e)
{
    if (res->errors == 0 || (res->errors & (res->errors - 1)) == 0) {
        /* full at 0, 1, 2, 4, 8, ... entries (capacity is the next power of two): double */
        size_t want = res->errors ? (size_t)res->errors * 2 : 1;
        struct ccr_codec_failure *nf = ccr_realloc(res->failed, want * sizeof(*nf));
        if (!nf)
            return -ENOMEM;
        res->failed = nf;
    }
    char *copy = strdup(path ? path : "");
    if (!copy)
        return -ENOMEM;
    struct ccr_codec_failure *f = &res->failed[res->errors++];
    f->path = copy;
    f->region = region;
    f->err = *e;
    return 0;
}

static bool cancelled(const struct pipeline *p)
{
    return p->pp->cancel && atomic_load_explicit(p->pp->cancel, memory_order_relaxed) != 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *out_got)
{
    struct iovec v = {buf, len};
    ssize_t n = pl_preadv_full(fd, &v, 1, off);
    if (n < 0)
        return (int)n;
    *out_got = (size_t)n;
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec v = {(void *)buf, len};
    return pl_pwritev_full(fd, &v, 1, off);
}

/* ----------------------------------------------------------------------------------------------------- */
/* per-file setup and completion                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/* Moves the finished temporary file to its name. */
static int temp_commit(const char *tmp, const char *dst, bool force, struct ccr_err *err)
{
    if (force) {
        if (rename(tmp, dst) == 0)
            return 0;
        int e = -errno;
        return ccr_err_set(err, e, dst, -1, "cannot rename the finished output into place: %s",
                           pl_strerror(e));
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    int e = -errno;
    if (e == -EINVAL || e == -ENOSYS || e == -ENOTSUP) {
        /* file system without RENAME_NOREPLACE: link() also refuses an existing name */
        if (link(tmp, dst) == 0) {
            unlink(tmp);
            return 0;
        }
        e = -errno;
    }
    if (e == -EEXIST)
        return ccr_err_set(err, e, dst, -1,
                           "already exists (it appeared while writing; use --force to replace it)");
    return ccr_err_set(err, e, dst, -1, "cannot rename the finished output into place: %s", pl_strerror(e));
}

static void job_free(struct job *j)
{
    if (j->c1_ready)
        ccr_ccr1_fini(&j->c1);
    ccr_free(j->tmp);
    ccr_free(j);
}

/* Finalises a job whose units are all done (or that failed): commit or clean up, record, free. */
static void job_finish(struct pipeline *p, struct job *j)
{
    const struct pl_params *pp = p->pp;
    int rc = j->s.failed ? j->s.err.code : 0;
    struct ccr_err e;
    ccr_err_clear(&e);

    if (rc == 0 && cancelled(p))
        rc = ccr_err_set(&e, -ECANCELED, j->f->src, -1, "cancelled");
    if (rc == 0 && pp->op == PL_ENCRYPT && j->mode == CCR_MODE_CSE) {
        uint8_t trailer[CCR_CSE_TRAILER_LEN];
        uint64_t pad = j->n_regions * j->chunk - j->plain_size;
        ccr_cse_trailer(pad, trailer);
        uint64_t off = j->n_regions * j->stride;
        rc = pwrite_full(j->out_fd, trailer, sizeof(trailer), off);
        if (rc)
            ccr_err_set(&e, rc, j->f->dst, (int64_t)off, "write failed: %s", pl_strerror(rc));
    }
    if (rc == 0 && pp->op == PL_ENCRYPT) {
        /* a source that changed while we read it would give a blob of neither version */
        struct stat st;
        if (fstat(j->in_fd, &st) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->src, -1, "cannot stat: %s", pl_strerror(rc));
        } else if ((uint64_t)st.st_size != j->in_size) {
            rc = ccr_err_set(&e, -EIO, j->f->src, -1,
                             "changed size while being encrypted (%llu bytes, then %llu); nothing written",
                             (unsigned long long)j->in_size, (unsigned long long)st.st_size);
        } else if (st.st_mtim.tv_sec != j->in_st.st_mtim.tv_sec ||
                   st.st_mtim.tv_nsec != j->in_st.st_mtim.tv_nsec) {
            rc = ccr_err_set(&e, -EIO, j->f->src, -1, "was modified while being encrypted; nothing written");
        }
    }
    if (rc == 0 && j->out_fd >= 0) {
        mode_t mode = (j->in_st.st_mode & 0666) & ~pp->umask;
        struct stat ost;
        if (fstat(j->out_fd, &ost) == 0 && (uint64_t)ost.st_size != j->out_size) {
            /* cannot happen unless someone else writes to our temporary file */
            rc = ccr_err_set(&e, -EIO, j->f->dst, -1, "output has %llu bytes, expected %llu; nothing written",
                             (unsigned long long)ost.st_size, (unsigned long long)j->out_size);
        } else if (fchmod(j->out_fd, mode) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->dst, -1, "cannot set permissions: %s", pl_strerror(rc));
        } else if (fsync(j->out_fd) != 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->dst, -1, "fsync failed: %s", pl_strerror(rc));
        }
    }
    if (j->out_fd >= 0) {
        if (close(j->out_fd) != 0 && rc == 0) {
            rc = -errno;
            ccr_err_set(&e, rc, j->f->dst, -1, "close failed: %s", pl_strerror(rc));
        }
        j->out_fd = -1;
    }
    if (rc == 0 && j->tmp)
        rc = temp_commit(j->tmp, j->f->dst, pp->force, &e);
    if (rc != 0 && j->tmp)
        unlink(j->tmp);
    if (j->in_fd >= 0)
        close(j->in_fd);

    pthread_mutex_lock(&p->res_mu);
    if (rc == 0) {
        p->res->files++;
        p->res->bytes_in += j->in_size;
        p->res->bytes_out += pp->op == PL_VERIFY ? 0 : j->out_size;
    } else {
        const struct ccr_err *fe = j->s.failed ? &j->s.err : &e;
        if (pl_result_add_failure(p->res, j->f->src, j->s.failed ? j->s.fail_region : -1, fe) != 0)
            sched_fatal(&p->sched, -ENOMEM);
    }
    pthread_mutex_unlock(&p->res_mu);
    atomic_fetch_add(&p->files_done, 1);
    job_free(j);
}

/* Checks a ccr1 header and prepares its reader state. */
static int prepare_ccr1_read(struct pipeline *p, struct job *j, struct ccr_err *err)
{
    const char *src = j->f->src;
    if (j->in_size < CCR1_HEADER_LEN)
        return ccr_err_set(err, -EBADMSG, src, 0,
                           "not a ccr1 file: %llu bytes is too short for the 64-byte header",
                           (unsigned long long)j->in_size);
    uint8_t header[CCR1_HEADER_LEN];
    size_t got = 0;
    int rc = pread_full(j->in_fd, header, sizeof(header), 0, &got);
    if (rc)
        return ccr_err_set(err, rc, src, 0, "read failed: %s", pl_strerror(rc));
    if (got != sizeof(header))
        return ccr_err_set(err, -EBADMSG, src, 0, "truncated ccr1 header");
    struct ccr_ccr1_info info;
    rc = ccr_ccr1_header_parse(header, &info, err);
    if (rc) {
        ccr_err_where(err, src);
        pl_err_header(err);
        return rc;
    }
    uint64_t r = (uint64_t)1 << info.region_log2;
    if (p->pp->region_size && p->pp->region_size != r)
        return ccr_err_set(err, -EBADMSG, src, 5,
                           "region size mismatch: the header says %llu bytes, %llu bytes were requested "
                           "(--region-size)",
                           (unsigned long long)r, (unsigned long long)p->pp->region_size);
    if (memcmp(info.key_id, p->key_id, CCR_KEY_ID_LEN) != 0) {
        char a[2 * CCR_KEY_ID_LEN + 1], b[2 * CCR_KEY_ID_LEN + 1];
        for (int i = 0; i < CCR_KEY_ID_LEN; i++) {
            snprintf(a + 2 * i, 3, "%02x", info.key_id[i]);
            snprintf(b + 2 * i, 3, "%02x", p->key_id[i]);
        }
        return ccr_err_set(err, -ENOKEY, src, 8,
                           "wrong key: the file was encrypted under key id %s, the key given has id %s", a,
                           b);
    }
    rc = ccr_ccr1_init_parse(&j->c1, p->pp->key, header, err);
    if (rc) {
        ccr_err_where(err, src);
        return rc;
    }
    j->c1_ready = true;
    j->log2 = info.region_log2;
    rc = ccr_ccr1_plain_size(j->in_size, j->log2, &j->plain_size, &j->n_regions, err);
    if (rc) {
        if (err)
            snprintf(err->msg, sizeof(err->msg),
                     "malformed ccr1 file: its size (%llu bytes) fits no whole number of %llu-byte regions "
                     "(truncated or extended)",
                     (unsigned long long)j->in_size, (unsigned long long)r);
        ccr_err_where(err, src);
        return rc;
    }
    return 0;
}

static int prepare_cse_read(struct pipeline *p, struct job *j, struct ccr_err *err)
{
    const char *src = j->f->src;
    uint8_t trailer[CCR_CSE_TRAILER_LEN] = {0};
    if (j->in_size >= CCR_CSE_TRAILER_LEN) {
        size_t got = 0;
        uint64_t off = j->in_size - CCR_CSE_TRAILER_LEN;
        int rc = pread_full(j->in_fd, trailer, sizeof(trailer), off, &got);
        if (rc)
            return ccr_err_set(err, rc, src, (int64_t)off, "read failed: %s", pl_strerror(rc));
        if (got != sizeof(trailer))
            return ccr_err_set(err, -EIO, src, (int64_t)off, "changed size while being read");
    }
    int rc = ccr_cse_plain_size(j->in_size, j->chunk, trailer, &j->plain_size, &j->n_regions, err);
    if (rc) {
        ccr_err_where(err, src);
        if (err) {
            char old[sizeof(err->msg)];
            memcpy(old, err->msg, sizeof(old));
            pl_err_rewrap(err, "malformed cleanroom-cse file (chunk size %llu): %s",
                          (unsigned long long)j->chunk, old[0] ? old : "its size does not fit");
        }
        return rc;
    }
    return 0;
}

/*
 * Opens a file, checks and sizes it, creates the temporary output. On failure the job is finished
 * (cleaned up and recorded) here and -1 is returned; *out_job is set only on success.
 */
static int job_prepare(struct pipeline *p, size_t index, struct job **out_job)
{
    const struct pl_params *pp = p->pp;
    struct pl_file *f = &p->files[index];
    struct job *j = ccr_calloc(1, sizeof(*j));
    if (!j) {
        struct ccr_err e;
        ccr_err_set(&e, -ENOMEM, f->src, -1, "out of memory");
        pthread_mutex_lock(&p->res_mu);
        if (pl_result_add_failure(p->res, f->src, -1, &e) != 0)
            sched_fatal(&p->sched, -ENOMEM);
        pthread_mutex_unlock(&p->res_mu);
        atomic_fetch_add(&p->files_done, 1);
        return -1;
    }
    j->f = f;
    j->in_fd = j->out_fd = -1;
    j->s.fail_region = -1;
    j->mode = pp->mode;
    ccr_err_clear(&j->s.err);
    struct ccr_err *err = &j->s.err;
    int rc = 0;

    if (cancelled(p)) {
        rc = ccr_err_set(err, -ECANCELED, f->src, -1, "cancelled");
        goto fail;
    }
    j->in_fd = open(f->src, O_RDONLY | O_CLOEXEC | O_NOCTTY | (f->nofollow ? O_NOFOLLOW : 0));
    if (j->in_fd < 0) {
        rc = -errno;
        ccr_err_set(err, rc, f->src, -1, "cannot open: %s", pl_strerror(rc));
        goto fail;
    }
    if (fstat(j->in_fd, &j->in_st) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, f->src, -1, "cannot stat: %s", pl_strerror(rc));
        goto fail;
    }
    if (!S_ISREG(j->in_st.st_mode)) {
        rc = S_ISDIR(j->in_st.st_mode) ? -EISDIR : -EINVAL;
        ccr_err_set(err, rc, f->src, -1, "not a regular file");
        goto fail;
    }
    j->in_size = (uint64_t)j->in_st.st_size;
    posix_fadvise(j->in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    if (j->mode == CCR_MODE_CCR1) {
        if (pp->op == PL_ENCRYPT) {
            uint64_t r = pp->region_size ? pp->region_size : CCR_CCR1_REGION_DEFAULT;
            j->log2 = (unsigned)__builtin_ctzll(r);
            rc = ccr_ccr1_init_new(&j->c1, pp->key, j->log2);
            if (rc) {
                ccr_err_set(err, rc, f->src, -1, "cannot set up ccr1 encryption: %s", pl_strerror(rc));
                goto fail;
            }
            j->c1_ready = true;
            j->plain_size = j->in_size;
            j->n_regions = ccr_ccr1_region_count(j->plain_size, j->log2);
            j->out_size = ccr_ccr1_blob_size(j->plain_size, j->log2);
        } else {
            rc = prepare_ccr1_read(p, j, err);
            if (rc)
                goto fail;
            j->out_size = j->plain_size;
        }
        j->stride = ((uint64_t)1 << j->log2) + CCR1_TAG_LEN;
        j->per_unit = p->unit_target >> j->log2;
    } else {
        j->chunk = pp->region_size ? pp->region_size : CCR_CSE_CHUNK_DEFAULT64;
        if (pp->op == PL_ENCRYPT) {
            j->plain_size = j->in_size;
            j->n_regions = ccr_cse_chunk_count(j->plain_size, j->chunk);
            j->out_size = ccr_cse_blob_size(j->plain_size, j->chunk);
        } else {
            rc = prepare_cse_read(p, j, err);
            if (rc)
                goto fail;
            j->out_size = j->plain_size;
        }
        j->stride = j->chunk + CCR_CSE_OVERHEAD;
        j->per_unit = p->unit_target / j->chunk;
    }
    if (j->per_unit < 1)
        j->per_unit = 1;
    if (j->per_unit > UNIT_IOV)
        j->per_unit = UNIT_IOV;
    j->s.n_units = (j->n_regions + j->per_unit - 1) / j->per_unit;
    if (pp->op == PL_VERIFY)
        j->out_size = 0;

    if (pp->op != PL_VERIFY) {
        rc = pl_temp_create(f->dst, &j->tmp, &j->out_fd, err);
        if (rc)
            goto fail;
        if (ftruncate(j->out_fd, (off_t)j->out_size) != 0) {
            rc = -errno;
            ccr_err_set(err, rc, f->dst, -1, "cannot size the output to %llu bytes: %s",
                        (unsigned long long)j->out_size, pl_strerror(rc));
            goto fail;
        }
        if (pp->op == PL_ENCRYPT && j->mode == CCR_MODE_CCR1) {
            rc = pwrite_full(j->out_fd, j->c1.header, CCR1_HEADER_LEN, 0);
            if (rc) {
                ccr_err_set(err, rc, f->dst, 0, "write failed: %s", pl_strerror(rc));
                goto fail;
            }
        }
    }
    j->s.pending = j->s.n_units;
    *out_job = j;
    return 0;

fail:
    j->s.failed = true;
    job_finish(p, j);
    return -1;
}

/* ----------------------------------------------------------------------------------------------------- */
/* units                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static int ensure_buf(struct worker *w, size_t need)
{
    if (w->cap >= need)
        return 0;
    ccr_free(w->buf);
    w->cap = 0;
    w->buf = ccr_alloc_aligned(BUF_ALIGN, need);
    if (!w->buf)
        return -ENOMEM;
    w->cap = need;
    fio_register(&w->fio, w->buf, w->cap); /* best effort: unregistered buffers still work */
    return 0;
}

/* Plaintext length of region/chunk r of job j. */
static size_t region_plain_len(const struct job *j, uint64_t r)
{
    if (j->mode == CCR_MODE_CCR1)
        return (size_t)ccr_ccr1_region_plain_len(j->plain_size, j->log2, r);
    uint64_t start = r * j->chunk;
    uint64_t left = j->plain_size - start;
    return (size_t)(left < j->chunk ? left : j->chunk);
}

/* Offset of region r's plaintext inside its stored slot (cse: after the nonce). */
static size_t slot_plain_off(const struct job *j)
{
    return j->mode == CCR_MODE_CCR1 ? 0 : CCR_CSE_NONCE_LEN;
}

/* Stored offset of region r. */
static uint64_t stored_off(const struct job *j, uint64_t r)
{
    return j->mode == CCR_MODE_CCR1 ? ccr_ccr1_region_offset(r, j->log2) : r * j->stride;
}

/* Processes unit u of job j. Returns 0 or a negative errno with e filled; *fail_region on auth failure. */
static int unit_run(struct worker *w, struct job *j, uint64_t u, struct ccr_err *e, int64_t *fail_region)
{
    const struct pl_params *pp = w->p->pp;
    uint64_t r0 = u * j->per_unit;
    uint64_t r1 = r0 + j->per_unit;
    if (r1 > j->n_regions)
        r1 = j->n_regions;
    int cnt = (int)(r1 - r0);
    size_t poff = slot_plain_off(j);
    uint64_t plain_off = j->mode == CCR_MODE_CCR1 ? r0 << j->log2 : r0 * j->chunk;
    uint64_t sto_off = stored_off(j, r0);
    int rc;

    if (cancelled(w->p))
        return ccr_err_set(e, -ECANCELED, j->f->src, -1, "cancelled");
    size_t lens[UNIT_IOV];
    size_t plain_total = 0;
    for (int k = 0; k < cnt; k++) {
        lens[k] = region_plain_len(j, r0 + (uint64_t)k);
        plain_total += lens[k];
    }
    /* stored bytes of this unit: every slot is whole except a ccr1 final region */
    size_t stored_total =
        j->mode == CCR_MODE_CCR1 ? plain_total + (size_t)cnt * CCR1_TAG_LEN : (size_t)cnt * (size_t)j->stride;
    rc = ensure_buf(w, (size_t)j->per_unit * (size_t)j->stride);
    if (rc)
        return ccr_err_set(e, rc, j->f->src, -1, "out of memory for a %llu-byte buffer",
                           (unsigned long long)((size_t)j->per_unit * j->stride));
    uint8_t *buf = w->buf;

    if (pp->op == PL_ENCRYPT) {
        for (int k = 0; k < cnt; k++) {
            w->iov[k].iov_base = buf + (size_t)k * j->stride + poff;
            w->iov[k].iov_len = lens[k];
        }
        ssize_t got = fio_readv(&w->fio, j->in_fd, w->iov, cnt, plain_off);
        if (got < 0)
            return ccr_err_set(e, (int)got, j->f->src, (int64_t)plain_off,
                               "read failed at byte offset %llu: %s", (unsigned long long)plain_off,
                               pl_strerror((int)got));
        if ((size_t)got != plain_total)
            return ccr_err_set(
                e, -EIO, j->f->src, (int64_t)plain_off,
                "changed size while being encrypted (it ended before byte %llu); nothing written",
                (unsigned long long)(plain_off + plain_total));
        for (int k = 0; k < cnt; k++) {
            uint64_t r = r0 + (uint64_t)k;
            uint8_t *slot = buf + (size_t)k * j->stride;
            if (j->mode == CCR_MODE_CCR1)
                rc = ccr_ccr1_seal_region(&j->c1, w->aead, r, r + 1 == j->n_regions, slot, slot, lens[k],
                                          slot + lens[k]);
            else
                rc = ccr_cse_seal_chunk(pp->key, w->aead, slot, lens[k], j->chunk);
            if (rc)
                return ccr_err_set(e, rc, j->f->src, -1, "encryption failed in region %llu: %s",
                                   (unsigned long long)r, pl_strerror(rc));
        }
        rc = pwrite_full(j->out_fd, buf, stored_total, sto_off);
        if (rc)
            return ccr_err_set(e, rc, j->f->dst, (int64_t)sto_off, "write failed at byte offset %llu: %s",
                               (unsigned long long)sto_off, pl_strerror(rc));
    } else {
        size_t got = 0;
        rc = pread_full(j->in_fd, buf, stored_total, sto_off, &got);
        if (rc)
            return ccr_err_set(e, rc, j->f->src, (int64_t)sto_off, "read failed at byte offset %llu: %s",
                               (unsigned long long)sto_off, pl_strerror(rc));
        if (got != stored_total)
            return ccr_err_set(e, -EIO, j->f->src, (int64_t)sto_off,
                               "changed size while being read (it ended before byte %llu); nothing written",
                               (unsigned long long)(sto_off + stored_total));
        for (int k = 0; k < cnt; k++) {
            uint64_t r = r0 + (uint64_t)k;
            uint8_t *slot = buf + (size_t)k * j->stride;
            struct ccr_err ce;
            ccr_err_clear(&ce);
            if (j->mode == CCR_MODE_CCR1)
                rc = ccr_ccr1_open_region(&j->c1, w->aead, r, r + 1 == j->n_regions, slot, slot, lens[k],
                                          slot + lens[k], &ce);
            else
                rc = ccr_cse_open_chunk(pp->key, w->aead, slot, lens[k], j->chunk, &ce);
            if (rc == 0)
                continue;
            uint64_t off = sto_off + (uint64_t)k * j->stride;
            const char *what = pp->op == PL_VERIFY ? "" : "; nothing written";
            if (rc != -EBADMSG)
                return ccr_err_set(e, rc, j->f->src, (int64_t)off, "decryption failed in region %llu: %s",
                                   (unsigned long long)r, pl_strerror(rc));
            *fail_region = (int64_t)r;
            ccr_wipe(buf, stored_total); /* nothing of this unit is released */
            if (j->mode == CCR_MODE_CCR1)
                return ccr_err_set(e, rc, j->f->src, (int64_t)off,
                                   "authentication failed in region %llu at byte offset %llu (tampered or "
                                   "corrupt data)%s",
                                   (unsigned long long)r, (unsigned long long)off, what);
            if (strstr(ce.msg, "padding"))
                return ccr_err_set(e, rc, j->f->src, (int64_t)off,
                                   "non-zero padding in chunk %llu at byte offset %llu (tampered or "
                                   "malformed data)%s",
                                   (unsigned long long)r, (unsigned long long)off, what);
            return ccr_err_set(e, rc, j->f->src, (int64_t)off,
                               "authentication failed in chunk %llu at byte offset %llu (tampered or corrupt "
                               "data, or the wrong key: cleanroom-cse cannot tell them apart)%s",
                               (unsigned long long)r, (unsigned long long)off, what);
        }
        if (pp->op == PL_DECRYPT) {
            for (int k = 0; k < cnt; k++) {
                w->iov[k].iov_base = buf + (size_t)k * j->stride + poff;
                w->iov[k].iov_len = lens[k];
            }
            rc = fio_writev(&w->fio, j->out_fd, w->iov, cnt, plain_off);
            if (rc)
                return ccr_err_set(e, rc, j->f->dst, (int64_t)plain_off,
                                   "write failed at byte offset %llu: %s", (unsigned long long)plain_off,
                                   pl_strerror(rc));
        }
    }
    atomic_fetch_add_explicit(&w->p->bytes_done, pp->op == PL_ENCRYPT ? plain_total : stored_total,
                              memory_order_relaxed);
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* scheduling (sched.c)                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

static int sched_prepare(void *ctx, size_t index, struct sched_job **out_job)
{
    struct job *j = NULL;
    int rc = job_prepare(ctx, index, &j);
    if (rc == 0)
        *out_job = &j->s;
    return rc;
}

static int sched_unit(void *ctx, void *worker, struct sched_job *sj, uint64_t unit, struct ccr_err *e,
                      int64_t *region)
{
    (void)ctx;
    return unit_run(worker, SCHED_OWNER(sj, struct job, s), unit, e, region);
}

static void sched_finish(void *ctx, struct sched_job *sj)
{
    job_finish(ctx, SCHED_OWNER(sj, struct job, s));
}

static void sched_skipped(void *ctx, size_t count)
{
    struct pipeline *p = ctx;
    atomic_fetch_add(&p->files_done, count);
}

static void progress_report(void *ctx)
{
    struct pipeline *p = ctx;
    const struct pl_params *pp = p->pp;
    if (!pp->progress)
        return;
    struct ccr_progress pr = {
        .bytes_done = atomic_load(&p->bytes_done),
        .bytes_total = p->bytes_total,
        .files_done = atomic_load(&p->files_done),
        .files_total = p->n_files,
        .seconds = pl_now() - pp->t0,
    };
    if (pr.bytes_done > pr.bytes_total)
        pr.bytes_done = pr.bytes_total;
    pp->progress(pp->progress_arg, &pr);
}

int pl_run(const struct pl_params *pp, struct pl_file *files, size_t n, struct ccr_codec_result *res)
{
    struct pipeline p = {
        .pp = pp,
        .files = files,
        .n_files = n,
        .res = res,
        .unit_target = UNIT_TARGET,
    };
    int rc = 0;
    atomic_init(&p.bytes_done, 0);
    atomic_init(&p.files_done, 0);

    if (pp->op != PL_ENCRYPT && pp->mode == CCR_MODE_CCR1) {
        rc = ccr_key_id(pp->key, p.key_id);
        if (rc)
            return rc;
    }
    /* never more threads than units of work */
    uint64_t units = 0;
    for (size_t i = 0; i < n; i++) {
        p.bytes_total += files[i].size;
        units += files[i].size / UNIT_TARGET + 1;
    }
    unsigned nthreads = pp->threads ? pp->threads : pl_online_cpus();
    if (nthreads > units)
        nthreads = (unsigned)(units ? units : 1);

    static const struct sched_ops ops = {
        .prepare = sched_prepare,
        .unit = sched_unit,
        .finish = sched_finish,
        .progress = progress_report,
        .skipped = sched_skipped,
    };
    p.sched = (struct sched){.ops = &ops, .ctx = &p, .n_items = n, .cancel = pp->cancel};
    pthread_mutex_init(&p.res_mu, NULL);

    struct worker *ws = ccr_calloc(nthreads, sizeof(*ws));
    if (!ws) {
        rc = -ENOMEM;
        goto out;
    }
    unsigned ready = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        ws[i].p = &p;
        if (ccr_aead_create(&ws[i].aead) != 0)
            break;
        fio_init(&ws[i].fio, true);
        ready++;
    }
    rc = ready ? sched_run(&p.sched, ws, sizeof(*ws), ready) : -ENOMEM;

    for (unsigned i = 0; i < nthreads; i++) {
        ccr_aead_destroy(ws[i].aead);
        fio_fini(&ws[i].fio);
        ccr_wipe(ws[i].buf, ws[i].cap); /* may hold plaintext */
        ccr_free(ws[i].buf);
    }
    ccr_free(ws);
out:
    pthread_mutex_destroy(&p.res_mu);
    return rc;
}
