/*
 * vwrite.c - the write side of a volume: files being written, their uploads and commits.
 *
 * A writer is in one of three modes.
 *
 * STREAM (a new or truncated file written in order). Data goes into unit buffers laid out as the stored
 * unit (header room, then region slots with room for tags or nonces), so sealing happens in place with no
 * copy. A unit is sent as soon as it is full, data follows it (so its last region is not the file's last,
 * whose nonce differs) and more than `hold` later units are pending: it is sealed and put as block u on a
 * worker thread while the caller goes on writing. Keeping a few units back lets a writer patch bytes it
 * wrote shortly before (zip-style headers) and keeps small files entirely in memory, where a commit can
 * still re-encrypt them. flush sends the rest (the last unit sealed as final), waits, and commits the block
 * list. A writer holds at most `wcap` unit buffers (pending + uploading): past that it waits for its own
 * uploads, so a fast writer cannot run ahead of the store by more than its share of the budget.
 *
 * STAGED (everything else: a write that is not at the end before anything was sent, an overwrite of an
 * existing file, a change after a commit). The whole plaintext is kept locally: in memory while the
 * staged files of the volume fit a quarter of the budget, else in an anonymous temporary file in
 * spill_dir (O_TMPFILE, 0600, never linked). Every commit encrypts it all again under a fresh salt (ccr1)
 * or fresh nonces (cleanroom-cse): a salt is never reused for different plaintext, even after a commit
 * failed half way (the store may have seen blocks sealed under it).
 *
 * BASE (an existing file opened without O_TRUNC, unchanged): reads go to the committed blob; the first
 * change stages the blob's plaintext (read through the cache) and moves to STAGED. A file that was only
 * opened is therefore never copied nor committed.
 *
 * After a STREAM file's blocks went out, its plaintext is gone: a write before the first unit still held
 * (the "sent" point) cannot be honoured and fails with -EIO (logged: nothing is lost silently); neither
 * can a change after a flush whose commit failed (the retry re-sends the same sealed blocks). rename of
 * such a file commits it under its old name first, since the store keeps staged blocks per blob name.
 *
 * Uploads that fail keep their sealed buffer and are retried by the next flush; while one is failed,
 * writes report its error. Nothing is visible in the store before a commit: staged blocks are not, and
 * abandoned ones are discarded by the store (Azure after 7 days, the local store's sweep).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec_int.h"
#include "volume_int.h"

#define STAGE_MIN     ((uint64_t)64 << 10)
#define PEND_MIN      ((uint64_t)64 << 10)
#define COPY_CHUNK    ((uint64_t)8 << 20)
#define WAIT_MAX_S    60 /* a writer that gets no memory for this long (and has no upload to wait for) fails */
#define STAGE_AFTER_S 0.2 /* ... or, when it has sent nothing yet, stages its file after this long */

enum wmode { W_STREAM, W_STAGED, W_BASE };

/* A unit buffer of a streaming writer, in stored layout. */
struct vpend {
    uint8_t *buf;
    uint64_t cap; /* charged to the budget (VMEM_WRITE) */
};

/* One block to seal (when not sealed yet) and put. */
struct vup {
    struct vjob j;
    struct vwriter *w;
    char *blob;
    uint64_t block; /* = unit index */
    uint8_t *buf;
    uint64_t cap;      /* charged to the budget */
    size_t len;        /* stored bytes, once sealed */
    uint64_t k0, nreg; /* regions */
    uint64_t size;     /* the file's size (for the last region's length), UINT64_MAX: all full */
    bool final;        /* holds the file's last region */
    bool from_stage;   /* fill from the stage first */
    bool whole;        /* the only block: put_blob */
    bool sealed;
    int rc;
    struct ccr_err err;
    struct ccr_blob_props props; /* whole */
    struct vup *next;            /* failed list */
};

/* The plaintext of a staged file. */
struct vstage {
    uint8_t *mem;
    uint64_t cap; /* charged (VMEM_STAGE); bytes [size, cap) are zero */
    int fd;       /* spilled when >= 0 */
    uint64_t size;
};

struct vwstate {
    enum wmode mode;
    bool dirty;
    struct vlayout lay;
    uint64_t unit_plain, ubytes;
    unsigned wcap, hold;
    /* the committed version */
    bool has_base;
    struct vblobinfo base;
    struct vreader brd;
    bool brd_open;
    /* STREAM */
    struct ccr_ccr1 c1;
    bool c1_ready;
    struct vpend *pend;
    size_t npend, cap_pend;
    uint64_t pend_u0; /* first unit not sent yet */
    unsigned inflight;
    bool sent_final;
    struct vup *failed;
    unsigned nfailed;
    /* STAGED */
    struct vstage st;
};

/* ----------------------------------------------------------------------------------------------------- */
/* helpers                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static uint64_t sent_end(const struct vwstate *s)
{
    return s->pend_u0 * s->unit_plain;
}

static uint64_t unit_pre(const struct vwstate *s, uint64_t u)
{
    return s->lay.mode == CCR_MODE_CCR1 && u == 0 ? CCR1_HEADER_LEN : 0;
}

/* Regions of a file of size bytes (ccr1: at least one). */
static uint64_t file_regions(const struct vwstate *s, uint64_t size)
{
    uint64_t n = (size + s->lay.rsize - 1) / s->lay.rsize;
    return s->lay.mode == CCR_MODE_CCR1 && n == 0 ? 1 : n;
}

static uint64_t file_units(const struct vwstate *s, uint64_t size)
{
    uint64_t n = (file_regions(s, size) + s->lay.per_unit - 1) / s->lay.per_unit;
    return n ? n : 1;
}

static uint64_t region_len(const struct vwstate *s, uint64_t k, uint64_t size)
{
    uint64_t start = k * s->lay.rsize;
    if (size == UINT64_MAX)
        return s->lay.rsize;
    if (start >= size)
        return 0;
    return size - start < s->lay.rsize ? size - start : s->lay.rsize;
}

/* Buffer bytes for nreg regions of unit u, with the header and the trailer. */
static uint64_t unit_need(const struct vwstate *s, uint64_t u, uint64_t nreg)
{
    return unit_pre(s, u) + nreg * s->lay.stride + CCR_CSE_TRAILER_LEN;
}

static void up_free(struct ccr_volume *v, struct vup *up)
{
    if (!up)
        return;
    vbuf_put(v, up->buf, (size_t)up->cap);
    vmem_give(v, up->cap, VMEM_WRITE);
    ccr_free(up->blob);
    ccr_free(up);
}

/* ----------------------------------------------------------------------------------------------------- */
/* memory                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static void dispatch_oldest(struct vwriter *w, struct vwstate *s);

/* Makes other writers send the full units they hold back, so they give memory back (w->mu held). */
static void squeeze_others(struct vwriter *w)
{
    struct ccr_volume *v = w->v;
    pthread_mutex_lock(&v->ns_mu);
    for (struct vwriter *o = v->writers; o; o = o->next) {
        if (o == w || pthread_mutex_trylock(&o->mu) != 0)
            continue; /* never blocks: we hold our own mu */
        while (o->s->mode == W_STREAM && !o->s->sent_final && o->s->npend >= 2)
            dispatch_oldest(o, o->s);
        pthread_mutex_unlock(&o->mu);
    }
    pthread_mutex_unlock(&v->ns_mu);
}

/*
 * Takes n bytes for unit buffers (w->mu held). When the budget has none, the writer first pushes its
 * own older units out (never unit `keep` or later, which the caller is filling) and waits for its
 * uploads; with nothing of its own in flight, it makes other writers do the same and waits for them.
 * A streaming writer that has sent nothing yet gets -EAGAIN after a short wait instead: it then stages
 * its file, which spills to disk when memory is short, so more files can be written at once than the
 * budget has unit buffers for.
 */
static int wmem_take(struct vwriter *w, struct vwstate *s, uint64_t n, uint64_t keep, struct ccr_err *err)
{
    struct ccr_volume *v = w->v;
    double t0 = vol_now();
    bool squeezed = false;
    for (;;) {
        if (vmem_take(v, n, VMEM_WRITE) == 0)
            return 0;
        if (s->mode == W_STREAM && !s->sent_final && s->npend >= 2 && s->pend_u0 + 1 <= keep) {
            dispatch_oldest(w, s);
            continue;
        }
        if (s->inflight) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        if (!squeezed) {
            squeeze_others(w);
            squeezed = true;
            continue;
        }
        /* Nothing sent yet: rather than wait long for other writers, the caller stages (and spills). */
        if (s->mode == W_STREAM && sent_end(s) == 0 && !s->sent_final && vol_now() - t0 > STAGE_AFTER_S)
            return -EAGAIN;
        if (vol_now() - t0 > WAIT_MAX_S)
            return ccr_err_set(err, -ENOSPC, w->path, -1,
                               "no memory for write buffers: too many files are being written at once for "
                               "the memory budget");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&v->mu);
        pthread_cond_timedwait(&v->cv, &v->mu, &ts);
        pthread_mutex_unlock(&v->mu);
        squeezed = false;
    }
}

/* ----------------------------------------------------------------------------------------------------- */
/* sealing and uploading                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

static int stage_read_at(struct vstage *st, uint64_t off, uint8_t *dst, uint64_t len);

/* Copies the unit's plaintext from the stage into its region slots. */
static int up_fill(struct vwstate *s, struct vup *up)
{
    uint64_t pre = unit_pre(s, up->block);
    for (uint64_t i = 0; i < up->nreg; i++) {
        uint64_t k = up->k0 + i;
        uint8_t *slot = up->buf + pre + i * s->lay.stride + s->lay.poff;
        int rc = stage_read_at(&s->st, k * s->lay.rsize, slot, region_len(s, k, up->size));
        if (rc)
            return rc;
    }
    return 0;
}

/* Seals the unit in place (ccr1 regions with the header in block 0; cse chunks and the trailer). */
static int up_seal(struct ccr_volume *v, struct vwstate *s, struct vup *up)
{
    const struct vlayout *l = &s->lay;
    uint64_t pre = unit_pre(s, up->block);
    size_t stored = (size_t)pre;
    if (pre)
        memcpy(up->buf, s->c1.header, CCR1_HEADER_LEN);
    struct ccr_aead *a = l->mode == CCR_MODE_NONE ? NULL : vol_aead_get(v);
    if (l->mode != CCR_MODE_NONE && !a)
        return ccr_err_set(&up->err, -ENOMEM, up->blob, -1, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < up->nreg && rc == 0; i++) {
        uint64_t k = up->k0 + i;
        uint8_t *slot = up->buf + pre + i * l->stride;
        size_t len = (size_t)region_len(s, k, up->size);
        if (l->mode == CCR_MODE_CCR1) {
            bool last = up->final && i + 1 == up->nreg;
            rc = ccr_ccr1_seal_region(&s->c1, a, k, last, slot, slot, len, slot + len);
            stored += len + CCR1_TAG_LEN;
        } else if (l->mode == CCR_MODE_CSE) {
            rc = ccr_cse_seal_chunk(&v->key, a, slot, len, l->rsize);
            stored += (size_t)l->stride;
        } else {
            stored += len;
        }
    }
    if (a)
        vol_aead_put(v, a);
    if (rc)
        return ccr_err_set(&up->err, rc, up->blob, -1, "encryption failed: %s", pl_strerror(rc));
    if (l->mode == CCR_MODE_CSE && up->final) {
        uint64_t pad = file_regions(s, up->size) * l->rsize - up->size;
        ccr_cse_trailer(pad, up->buf + stored);
        stored += CCR_CSE_TRAILER_LEN;
    }
    up->len = stored;
    up->sealed = true;
    return 0;
}

/* Where block u starts in the committed blob. */
static uint64_t block_at(const struct vwstate *s, uint64_t u)
{
    return u == 0 ? 0 : vlay_stored_off(&s->lay, u * s->lay.per_unit);
}

/* Seals (once) and puts one block. No lock held: the stage and the crypto state do not change while
 * uploads run (flush holds w->mu; a streaming writer's c1 is set before its first block). */
static int up_do(struct vwriter *w, struct vup *up)
{
    struct vwstate *s = w->s;
    struct ccr_volume *v = w->v;
    int rc = 0;
    if (!up->sealed) {
        if (up->from_stage && (rc = up_fill(s, up)) != 0)
            return ccr_err_set(&up->err, rc, w->path, -1, "cannot read the staged data: %s", pl_strerror(rc));
        rc = up_seal(v, s, up);
        if (rc)
            return rc;
    }
    ccr_err_clear(&up->err);
    if (up->whole)
        rc = ccr_store_put_blob(v->store, up->blob, up->buf, up->len, &up->props, &up->err);
    else
        rc = ccr_store_put_block_at(v->store, up->blob, up->block, block_at(s, up->block), up->buf, up->len,
                                    &up->err);
    if (rc) {
        ccr_err_where(&up->err, up->blob);
        return rc;
    }
    atomic_fetch_add(&v->st.bytes_uploaded, up->len);
    return 0;
}

static void up_job(struct vjob *j)
{
    struct vup *up = (struct vup *)j;
    struct vwriter *w = up->w;
    struct ccr_volume *v = w->v; /* w may be gone once its mu is released */
    int rc = up_do(w, up);
    pthread_mutex_lock(&w->mu);
    struct vwstate *s = w->s;
    if (rc) {
        up->rc = rc;
        up->next = s->failed;
        s->failed = up;
        s->nfailed++;
        up = NULL;
    }
    s->inflight--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    up_free(v, up);
}

static struct vup *up_new(struct vwriter *w, uint64_t u)
{
    struct vup *up = ccr_calloc(1, sizeof(*up));
    if (!up)
        return NULL;
    up->blob = strdup(w->blob);
    if (!up->blob) {
        ccr_free(up);
        return NULL;
    }
    up->j.run = up_job;
    up->w = w;
    up->block = u;
    up->k0 = u * w->s->lay.per_unit;
    ccr_err_clear(&up->err);
    return up;
}

static void up_submit(struct vwriter *w, struct vwstate *s, struct vup *up)
{
    s->inflight++;
    vol_submit(w->v, &up->j);
}

static void wait_uploads(struct vwriter *w, struct vwstate *s)
{
    while (s->inflight)
        pthread_cond_wait(&w->cv, &w->mu);
}

static void drop_failed(struct vwriter *w, struct vwstate *s)
{
    while (s->failed) {
        struct vup *up = s->failed;
        s->failed = up->next;
        up_free(w->v, up);
    }
    s->nfailed = 0;
}

/* The first failed upload's error, for err. */
static int failed_error(struct vwstate *s, struct ccr_err *err)
{
    struct vup *up = s->failed;
    while (up && up->next)
        up = up->next; /* the list is newest first: report the oldest */
    if (err)
        *err = up->err;
    return up->rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* STREAM                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static int ensure_c1(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    if (s->lay.mode != CCR_MODE_CCR1 || s->c1_ready)
        return 0;
    int rc = ccr_ccr1_init_new(&s->c1, &w->v->key, s->lay.log2);
    if (rc)
        return ccr_err_set(err, rc, w->path, -1, "cannot set up ccr1 encryption: %s", pl_strerror(rc));
    s->c1_ready = true;
    return 0;
}

/* Sends the oldest pending unit: it is full, and a later unit holds data, so it is not the last. */
static void dispatch_oldest(struct vwriter *w, struct vwstate *s)
{
    struct vup *up = up_new(w, s->pend_u0);
    if (!up)
        return; /* stays pending: flush sends it */
    up->buf = s->pend[0].buf;
    up->cap = s->pend[0].cap;
    up->nreg = s->lay.per_unit;
    up->size = UINT64_MAX;
    memmove(s->pend, s->pend + 1, (s->npend - 1) * sizeof(*s->pend));
    s->npend--;
    s->pend_u0++;
    up_submit(w, s, up);
}

/*
 * Grows the buffer of pending unit u to need bytes. The first unit grows by doubling, so that a small
 * file holds little memory; once a file has a second unit it is streaming, and units come whole.
 */
static int pend_reserve(struct vwriter *w, struct vwstate *s, uint64_t u, uint64_t need, struct ccr_err *err)
{
    struct vpend *p = &s->pend[u - s->pend_u0];
    if (p->cap >= need)
        return 0;
    uint64_t full = unit_need(s, u, s->lay.per_unit);
    uint64_t ncap = p->cap * 2 > PEND_MIN ? p->cap * 2 : PEND_MIN;
    ncap = u > 0 || ncap < need ? need : ncap;
    ncap = u > 0 || ncap > full ? full : ncap;
    int rc = wmem_take(w, s, ncap - p->cap, u, err);
    if (rc)
        return rc;
    p = &s->pend[u - s->pend_u0]; /* taking memory may have sent older units */
    uint8_t *nb = vbuf_get(w->v, (size_t)ncap);
    if (!nb) {
        vmem_give(w->v, ncap - p->cap, VMEM_WRITE);
        return ccr_err_set(err, -ENOMEM, w->path, -1, "out of memory");
    }
    if (p->buf) {
        memcpy(nb, p->buf, (size_t)p->cap);
        vbuf_put(w->v, p->buf, (size_t)p->cap);
    }
    p->buf = nb;
    p->cap = ncap;
    return 0;
}

/* Adds unit u (the next) to the pending ones, first keeping the writer within its share. */
static int pend_append(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    while (s->npend + s->inflight + s->nfailed >= s->wcap) {
        if (s->npend >= 2)
            dispatch_oldest(w, s);
        else if (s->inflight)
            pthread_cond_wait(&w->cv, &w->mu);
        else
            break;
    }
    if (s->pend_u0 + s->npend >= VOL_MAX_BLOCKS)
        return ccr_err_set(err, -EFBIG, w->path, -1,
                           "a file written sequentially can have at most %u blocks "
                           "of %llu bytes",
                           VOL_MAX_BLOCKS, (unsigned long long)s->unit_plain);
    if (s->npend == s->cap_pend) {
        size_t ncap = s->cap_pend ? s->cap_pend * 2 : 8;
        struct vpend *np = ccr_realloc(s->pend, ncap * sizeof(*np));
        if (!np)
            return ccr_err_set(err, -ENOMEM, w->path, -1, "out of memory");
        s->pend = np;
        s->cap_pend = ncap;
    }
    s->pend[s->npend++] = (struct vpend){0};
    return 0;
}

/* Writes len bytes of src (NULL: zeros) at off, which is within [sent_end, size]. */
static int stream_put(struct vwriter *w, struct vwstate *s, const uint8_t *src, uint64_t len, uint64_t off,
                      struct ccr_err *err)
{
    const struct vlayout *l = &s->lay;
    while (len) {
        uint64_t u = off / s->unit_plain, o = off % s->unit_plain;
        if (u == s->pend_u0 + s->npend) {
            int rc = pend_append(w, s, err);
            if (rc)
                return rc;
        }
        uint64_t n = s->unit_plain - o < len ? s->unit_plain - o : len;
        uint64_t pre = unit_pre(s, u);
        int rc =
            pend_reserve(w, s, u, pre + ((o + n - 1) / l->rsize + 1) * l->stride + CCR_CSE_TRAILER_LEN, err);
        if (rc)
            return rc;
        uint8_t *base = s->pend[u - s->pend_u0].buf + pre + l->poff;
        for (uint64_t done = 0; done < n;) {
            uint64_t k = (o + done) / l->rsize, inner = (o + done) % l->rsize;
            uint64_t m = l->rsize - inner < n - done ? l->rsize - inner : n - done;
            if (src)
                memcpy(base + k * l->stride + inner, src + done, (size_t)m);
            else
                memset(base + k * l->stride + inner, 0, (size_t)m);
            done += m;
        }
        off += n;
        len -= n;
        if (src)
            src += n;
        if (off > atomic_load(&w->size))
            atomic_store(&w->size, off);
        while (s->npend > (size_t)s->hold + 1 && s->pend_u0 < u)
            dispatch_oldest(w, s);
    }
    return 0;
}

/* Sends every pending unit, the last one sealed as the file's last. */
static int stream_send_all(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    uint64_t size = atomic_load(&w->size);
    uint64_t uf = file_units(s, size) - 1;
    while (s->npend > 1)
        dispatch_oldest(w, s);
    if (s->npend == 0 || s->pend_u0 != uf)
        return ccr_err_set(err, -EIO, w->path, -1, "internal: the last unit is not pending");
    uint64_t nreg = file_regions(s, size) - uf * s->lay.per_unit;
    int rc = pend_reserve(w, s, uf, unit_need(s, uf, nreg), err);
    struct vup *up = rc ? NULL : up_new(w, uf);
    if (rc)
        return rc;
    if (!up)
        return ccr_err_set(err, -ENOMEM, w->path, -1, "out of memory");
    up->buf = s->pend[0].buf;
    up->cap = s->pend[0].cap;
    up->nreg = nreg;
    up->size = size;
    up->final = true;
    s->npend = 0;
    s->pend_u0 = uf + 1;
    s->sent_final = true;
    up_submit(w, s, up);
    return 0;
}

/* Retries the failed uploads once, here. */
static int retry_failed(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    struct vup *keep = NULL;
    unsigned nkeep = 0;
    int rc = 0;
    while (s->failed) {
        struct vup *up = s->failed;
        s->failed = up->next;
        int r = up_do(w, up);
        if (r == 0) {
            up_free(w->v, up);
            continue;
        }
        up->rc = r;
        if (rc == 0) {
            rc = r;
            if (err)
                *err = up->err;
        }
        up->next = keep;
        keep = up;
        nkeep++;
    }
    s->failed = keep;
    s->nfailed = nkeep;
    return rc;
}

static void pend_free(struct vwriter *w, struct vwstate *s)
{
    for (size_t i = 0; i < s->npend; i++) {
        vbuf_put(w->v, s->pend[i].buf, (size_t)s->pend[i].cap);
        vmem_give(w->v, s->pend[i].cap, VMEM_WRITE);
    }
    s->npend = 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* STAGED                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static int spill_open(struct ccr_volume *v, struct ccr_err *err, const char *path)
{
    int fd = open(v->spill_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        char tmpl[4096];
        snprintf(tmpl, sizeof(tmpl), "%s/.ccr-stage-XXXXXX", v->spill_dir);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0)
            unlink(tmpl);
    }
    if (fd < 0) {
        int e = -errno;
        return ccr_err_set(err, e == -EDQUOT ? -ENOSPC : e, path, -1,
                           "cannot create a staging file in %s: %s", v->spill_dir, pl_strerror(e));
    }
    return fd;
}

static int pwrite_full(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : (size_t)len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? (errno == EDQUOT ? -ENOSPC : -errno) : -EIO;
        p += n;
        len -= (uint64_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Moves a staged file from memory to a temporary file. */
static int stage_spill(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    struct vstage *st = &s->st;
    int fd = spill_open(w->v, err, w->path);
    if (fd < 0)
        return fd;
    int rc = st->size ? pwrite_full(fd, st->mem, st->size, 0) : 0;
    if (rc == 0 && ftruncate(fd, (off_t)st->size) != 0)
        rc = -errno;
    if (rc) {
        close(fd);
        return ccr_err_set(err, rc, w->path, -1, "cannot write the staging file in %s: %s", w->v->spill_dir,
                           pl_strerror(rc));
    }
    ccr_wipe(st->mem, (size_t)st->cap);
    ccr_free(st->mem);
    vmem_give(w->v, st->cap, VMEM_STAGE);
    st->mem = NULL;
    st->cap = 0;
    st->fd = fd;
    return 0;
}

/* Makes the memory stage hold end bytes, or spills when it may not. */
static int stage_grow(struct vwriter *w, struct vwstate *s, uint64_t end, struct ccr_err *err)
{
    struct vstage *st = &s->st;
    if (st->fd >= 0 || end <= st->cap)
        return 0;
    uint64_t ncap = st->cap * 2 > STAGE_MIN ? st->cap * 2 : STAGE_MIN;
    ncap = ncap < end ? end : ncap;
    if (ncap > w->v->budget / 4 || vmem_take(w->v, ncap - st->cap, VMEM_STAGE) != 0)
        return stage_spill(w, s, err);
    uint8_t *nb = ccr_realloc(st->mem, (size_t)ncap);
    if (!nb) {
        vmem_give(w->v, ncap - st->cap, VMEM_STAGE);
        return stage_spill(w, s, err);
    }
    memset(nb + st->cap, 0, (size_t)(ncap - st->cap));
    st->mem = nb;
    st->cap = ncap;
    return 0;
}

static int stage_write(struct vwriter *w, struct vwstate *s, const uint8_t *src, uint64_t len, uint64_t off,
                       struct ccr_err *err)
{
    struct vstage *st = &s->st;
    int rc = stage_grow(w, s, off + len, err);
    if (rc)
        return rc;
    if (st->fd >= 0) {
        rc = pwrite_full(st->fd, src, len, off);
        if (rc)
            return ccr_err_set(err, rc, w->path, (int64_t)off, "cannot write the staging file in %s: %s",
                               w->v->spill_dir, pl_strerror(rc));
    } else if (len) {
        memcpy(st->mem + off, src, (size_t)len);
    }
    if (off + len > st->size)
        st->size = off + len;
    return 0;
}

/* Reads exactly len staged bytes at off (within the size). */
static int stage_read_at(struct vstage *st, uint64_t off, uint8_t *dst, uint64_t len)
{
    if (st->fd < 0) {
        if (len)
            memcpy(dst, st->mem + off, (size_t)len);
        return 0;
    }
    while (len) {
        ssize_t n = pread(st->fd, dst, (size_t)len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) { /* a hole at the end the size has not reached yet */
            memset(dst, 0, (size_t)len);
            return 0;
        }
        dst += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int stage_truncate(struct vwriter *w, struct vwstate *s, uint64_t size, struct ccr_err *err)
{
    struct vstage *st = &s->st;
    if (st->fd >= 0) {
        if (ftruncate(st->fd, (off_t)size) != 0) {
            int rc = -errno;
            return ccr_err_set(err, rc, w->path, -1, "cannot resize the staging file: %s", pl_strerror(rc));
        }
    } else if (size < st->size) {
        memset(st->mem + size, 0, (size_t)(st->size - size)); /* [size, cap) stays zero */
    } else {
        int rc = stage_grow(w, s, size, err);
        if (rc)
            return rc;
        if (st->fd >= 0 && ftruncate(st->fd, (off_t)size) != 0)
            return ccr_err_set(err, -errno, w->path, -1, "cannot resize the staging file");
    }
    st->size = size;
    return 0;
}

static void stage_free(struct vwriter *w, struct vwstate *s)
{
    struct vstage *st = &s->st;
    if (st->mem) {
        ccr_wipe(st->mem, (size_t)st->cap);
        ccr_free(st->mem);
        vmem_give(w->v, st->cap, VMEM_STAGE);
    }
    if (st->fd >= 0)
        close(st->fd);
    memset(st, 0, sizeof(*st));
    st->fd = -1;
}

/* STREAM -> STAGED while nothing was sent: the pending units' plaintext becomes the stage. */
static int stream_to_stage(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    const struct vlayout *l = &s->lay;
    uint64_t size = atomic_load(&w->size);
    int rc = 0;
    stage_free(w, s);
    for (size_t i = 0; i < s->npend && rc == 0; i++) {
        uint64_t u = s->pend_u0 + i;
        uint8_t *base = s->pend[i].buf + unit_pre(s, u) + l->poff;
        for (uint64_t k = 0; k < l->per_unit && rc == 0; k++) {
            uint64_t off = u * s->unit_plain + k * l->rsize;
            if (off >= size)
                break;
            uint64_t n = size - off < l->rsize ? size - off : l->rsize;
            rc = stage_write(w, s, base + k * l->stride, n, off, err);
        }
    }
    if (rc == 0)
        rc = stage_truncate(w, s, size, err);
    if (rc)
        return rc;
    pend_free(w, s);
    s->mode = W_STAGED;
    return 0;
}

/* Encrypts the whole stage under a fresh salt and puts it: one put_blob, or blocks in parallel. */
static int staged_send(struct vwriter *w, struct vwstate *s, struct vup **out_whole, struct ccr_err *err)
{
    uint64_t size = s->st.size;
    uint64_t nu = file_units(s, size), nr = file_regions(s, size);
    if (nu > VOL_MAX_BLOCKS)
        return ccr_err_set(err, -EFBIG, w->path, -1, "too large: more than %u blocks of %llu bytes",
                           VOL_MAX_BLOCKS, (unsigned long long)s->unit_plain);
    if (s->c1_ready)
        ccr_ccr1_fini(&s->c1);
    s->c1_ready = false;
    int rc = ensure_c1(w, s, err);
    for (uint64_t u = 0; u < nu && rc == 0; u++) {
        uint64_t nreg = nr - u * s->lay.per_unit;
        nreg = nreg > s->lay.per_unit ? s->lay.per_unit : nreg;
        uint64_t cap = unit_need(s, u, nreg);
        while (s->inflight >= s->wcap)
            pthread_cond_wait(&w->cv, &w->mu);
        rc = wmem_take(w, s, cap, 0, err);
        struct vup *up = rc ? NULL : up_new(w, u);
        if (!rc && (!up || !(up->buf = vbuf_get(w->v, (size_t)cap)))) {
            vmem_give(w->v, cap, VMEM_WRITE);
            up_free(w->v, up);
            rc = ccr_err_set(err, -ENOMEM, w->path, -1, "out of memory");
        }
        if (rc)
            break;
        up->cap = cap;
        up->nreg = nreg;
        up->size = size;
        up->final = u + 1 == nu;
        up->from_stage = true;
        up->whole = nu == 1;
        if (up->whole) {
            rc = up_do(w, up);
            if (rc && err)
                *err = up->err;
            *out_whole = up;
        } else {
            up_submit(w, s, up);
        }
    }
    wait_uploads(w, s);
    if (rc == 0 && s->failed)
        rc = failed_error(s, err);
    drop_failed(w, s); /* a retry seals everything again under a new salt */
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* BASE                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static int base_reader(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    if (s->brd_open)
        return 0;
    int rc = 0;
    if (s->base.plain == UINT64_MAX)
        rc = vblob_plain_size(w->v, w->blob, &s->base, &s->base.plain, err);
    if (rc == 0)
        rc = vreader_open(w->v, &s->brd, w->blob, &s->base, err);
    s->brd_open = rc == 0;
    return rc;
}

static void base_close(struct vwriter *w, struct vwstate *s)
{
    if (s->brd_open)
        vreader_close(w->v, &s->brd);
    s->brd_open = false;
}

/* BASE -> STAGED: the committed plaintext becomes the stage. */
static int stage_from_base(struct vwriter *w, struct vwstate *s, struct ccr_err *err)
{
    int rc = base_reader(w, s, err);
    if (rc)
        return rc;
    stage_free(w, s);
    uint64_t size = s->base.plain;
    uint8_t *buf = ccr_malloc(1u << 20);
    if (!buf)
        return ccr_err_set(err, -ENOMEM, w->path, -1, "out of memory");
    for (uint64_t off = 0; off < size && rc == 0;) {
        ssize_t n = vreader_read(w->v, &s->brd, buf, 1u << 20, off, err);
        if (n <= 0) {
            rc = n < 0 ? (int)n : ccr_err_set(err, -ESTALE, w->path, -1, "the file changed in the store");
            break;
        }
        rc = stage_write(w, s, buf, (uint64_t)n, off, err);
        off += (uint64_t)n;
    }
    ccr_wipe(buf, 1u << 20);
    ccr_free(buf);
    if (rc == 0)
        rc = stage_truncate(w, s, size, err);
    if (rc) {
        stage_free(w, s);
        return rc;
    }
    base_close(w, s);
    s->mode = W_STAGED;
    atomic_store(&w->size, size);
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* the writer                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

/* Back to an empty streaming file (create, O_TRUNC, truncate to 0). */
static void reset_stream(struct vwriter *w, struct vwstate *s)
{
    wait_uploads(w, s);
    drop_failed(w, s);
    pend_free(w, s);
    stage_free(w, s);
    base_close(w, s);
    if (s->c1_ready)
        ccr_ccr1_fini(&s->c1);
    s->c1_ready = false;
    s->pend_u0 = 0;
    s->sent_final = false;
    s->mode = W_STREAM;
    atomic_store(&w->size, 0);
}

int vwriter_create(struct ccr_volume *v, const char *path, const struct vblobinfo *base, bool trunc,
                   struct vwriter **out, struct ccr_err *err)
{
    struct vwriter *w = ccr_calloc(1, sizeof(*w));
    struct vwstate *s = ccr_calloc(1, sizeof(*s));
    if (w)
        w->s = s;
    if (!w || !s || !(w->path = strdup(path)) || !(w->blob = vol_blob_name(v, path))) {
        vwriter_destroy(w);
        if (!w)
            ccr_free(s);
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    }
    w->v = v;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    atomic_init(&w->orphan, false);
    atomic_init(&w->mtime_ns, vol_wall_ns());
    s->st.fd = -1;
    vlay_init(&s->lay, v, 0);
    s->unit_plain = s->lay.per_unit * s->lay.rsize;
    s->ubytes = vlay_unit_bytes(&s->lay);
    uint64_t units = v->budget / s->ubytes / 8;
    s->wcap = units < 2 ? 2 : units > 16 ? 16 : (unsigned)units;
    s->hold = s->wcap / 2 - 1;
    if (base) {
        s->has_base = true;
        s->base = *base;
    }
    if (base && !trunc) {
        s->mode = W_BASE;
        atomic_init(&w->size, base->plain == UINT64_MAX ? 0 : base->plain);
        if (base->plain == UINT64_MAX) {
            /* cleanroom-cse: the size needs the trailer */
            int rc = vblob_plain_size(v, w->blob, &s->base, &s->base.plain, err);
            if (rc) {
                vwriter_destroy(w);
                return rc;
            }
            atomic_store(&w->size, s->base.plain);
        }
    } else {
        s->mode = W_STREAM;
        s->dirty = true; /* created or truncated: committed even if nothing is written */
        atomic_init(&w->size, 0);
    }
    *out = w;
    return 0;
}

void vwriter_destroy(struct vwriter *w)
{
    if (!w)
        return;
    struct vwstate *s = w->s;
    if (s && w->v) {
        pthread_mutex_lock(&w->mu);
        reset_stream(w, s);
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        ccr_free(s->pend);
    }
    ccr_free(s);
    free(w->path);
    ccr_free(w->blob);
    ccr_free(w);
}

static int write_stream(struct vwriter *w, struct vwstate *s, const uint8_t *buf, uint64_t len, uint64_t off,
                        struct ccr_err *err)
{
    uint64_t size = atomic_load(&w->size);
    if (s->sent_final)
        return ccr_err_set(err, -EIO, w->path, (int64_t)off,
                           "the file was sent for commit and the commit failed: it cannot change any more "
                           "(flush again to retry the commit, or rewrite the file)");
    if (off < sent_end(s)) {
        ccr_log(CCR_LOG_ERROR,
                "%s: a write at byte %llu lands in data already encrypted and uploaded (the "
                "first %llu bytes); writes must not go back that far",
                w->path, (unsigned long long)off, (unsigned long long)sent_end(s));
        return ccr_err_set(err, -EIO, w->path, (int64_t)off,
                           "cannot write at byte %llu: the first %llu bytes were already encrypted and "
                           "uploaded (only sequential writes, or changes to the last few MiB, are possible)",
                           (unsigned long long)off, (unsigned long long)sent_end(s));
    }
    if (sent_end(s) == 0 && off != size) {
        int rc = stream_to_stage(w, s, err); /* not sequential: keep everything, encrypt at commit */
        return rc ? rc : stage_write(w, s, buf, len, off, err);
    }
    int rc = ensure_c1(w, s, err);
    if (rc == 0 && off > size)
        rc = stream_put(w, s, NULL, off - size, size, err);
    if (rc == 0)
        rc = stream_put(w, s, buf, len, off, err);
    if (rc == -EAGAIN && sent_end(s) == 0) {
        /* no memory to stream with: stage instead; what part of this write went in is written again */
        ccr_err_clear(err);
        rc = stream_to_stage(w, s, err);
        if (rc == 0)
            rc = stage_write(w, s, buf, len, off, err);
    }
    return rc;
}

ssize_t vwriter_write(struct vwriter *w, const void *buf, size_t len, uint64_t off, struct ccr_err *err)
{
    if (len == 0)
        return 0;
    if (off + len < off)
        return ccr_err_set(err, -EFBIG, w->path, -1, "offset too large");
    pthread_mutex_lock(&w->mu);
    struct vwstate *s = w->s;
    int rc = s->failed ? failed_error(s, err) : 0;
    if (rc == 0 && s->mode == W_BASE)
        rc = stage_from_base(w, s, err);
    if (rc == 0 && s->mode == W_STREAM)
        rc = write_stream(w, s, buf, len, off, err);
    else if (rc == 0)
        rc = stage_write(w, s, buf, len, off, err);
    if (rc == 0) {
        s->dirty = true;
        if (s->mode == W_STAGED)
            atomic_store(&w->size, s->st.size);
        atomic_store(&w->mtime_ns, vol_wall_ns());
        atomic_fetch_add(&w->v->st.bytes_written, len);
    }
    pthread_mutex_unlock(&w->mu);
    return rc ? rc : (ssize_t)len;
}

static ssize_t read_stream(struct vwriter *w, struct vwstate *s, uint8_t *buf, uint64_t len, uint64_t off,
                           struct ccr_err *err)
{
    const struct vlayout *l = &s->lay;
    if (off < sent_end(s))
        return ccr_err_set(err, -EIO, w->path, (int64_t)off,
                           "bytes before %llu were already encrypted and uploaded: they can be read once the "
                           "file is committed (close or fsync)",
                           (unsigned long long)sent_end(s));
    for (uint64_t done = 0; done < len;) {
        uint64_t p = off + done, u = p / s->unit_plain, o = p % s->unit_plain;
        uint64_t k = o / l->rsize, inner = o % l->rsize;
        uint64_t m = l->rsize - inner < len - done ? l->rsize - inner : len - done;
        const struct vpend *pu = &s->pend[u - s->pend_u0];
        memcpy(buf + done, pu->buf + unit_pre(s, u) + k * l->stride + l->poff + inner, (size_t)m);
        done += m;
    }
    return (ssize_t)len;
}

ssize_t vwriter_read(struct vwriter *w, void *buf, size_t len, uint64_t off, struct ccr_err *err)
{
    pthread_mutex_lock(&w->mu);
    struct vwstate *s = w->s;
    ssize_t n = 0;
    if (s->mode == W_BASE) {
        int rc = base_reader(w, s, err);
        n = rc ? rc : vreader_read(w->v, &s->brd, buf, len, off, err);
    } else {
        uint64_t size = atomic_load(&w->size);
        if (off < size) {
            uint64_t m = size - off < len ? size - off : len;
            if (s->mode == W_STREAM) {
                n = read_stream(w, s, buf, m, off, err);
            } else {
                int rc = stage_read_at(&s->st, off, buf, m);
                n = rc ? ccr_err_set(err, rc, w->path, (int64_t)off, "cannot read the staging file: %s",
                                     pl_strerror(rc))
                       : (ssize_t)m;
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    return n;
}

static int truncate_stream(struct vwriter *w, struct vwstate *s, uint64_t size, struct ccr_err *err)
{
    uint64_t cur = atomic_load(&w->size);
    if (s->sent_final)
        return ccr_err_set(err, -EIO, w->path, -1, "the file was sent for commit and cannot change any more");
    if (sent_end(s) == 0) {
        int rc = stream_to_stage(w, s, err);
        return rc ? rc : stage_truncate(w, s, size, err);
    }
    if (size > cur) {
        int rc = ensure_c1(w, s, err);
        return rc ? rc : stream_put(w, s, NULL, size - cur, cur, err);
    }
    if (size <= sent_end(s))
        return ccr_err_set(err, -EIO, w->path, -1,
                           "cannot shrink to %llu bytes: the first %llu were already encrypted and uploaded",
                           (unsigned long long)size, (unsigned long long)sent_end(s));
    /* drop the pending units that now lie wholly beyond the end */
    uint64_t keep = (size - 1) / s->unit_plain + 1 - s->pend_u0;
    while (s->npend > keep) {
        struct vpend *p = &s->pend[--s->npend];
        vbuf_put(w->v, p->buf, (size_t)p->cap);
        vmem_give(w->v, p->cap, VMEM_WRITE);
    }
    atomic_store(&w->size, size);
    return 0;
}

int vwriter_truncate(struct vwriter *w, uint64_t size, struct ccr_err *err)
{
    pthread_mutex_lock(&w->mu);
    struct vwstate *s = w->s;
    int rc = 0;
    if (size == atomic_load(&w->size)) {
        pthread_mutex_unlock(&w->mu);
        return 0; /* nothing changes */
    }
    if (size == 0) {
        reset_stream(w, s); /* empty again: later sequential writes stream */
    } else {
        if (s->mode == W_BASE)
            rc = stage_from_base(w, s, err);
        if (rc == 0 && s->mode == W_STREAM)
            rc = truncate_stream(w, s, size, err);
        else if (rc == 0)
            rc = stage_truncate(w, s, size, err);
        if (rc == 0 && s->mode == W_STAGED)
            atomic_store(&w->size, s->st.size);
    }
    if (rc == 0) {
        s->dirty = true;
        atomic_store(&w->mtime_ns, vol_wall_ns());
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* The commit succeeded: the writer now starts from the blob it committed. */
static void committed(struct vwriter *w, struct vwstate *s, const struct ccr_blob_props *props)
{
    uint64_t size = atomic_load(&w->size);
    s->dirty = false;
    s->has_base = true;
    snprintf(s->base.etag, sizeof(s->base.etag), "%s", props->etag);
    s->base.stored = props->size;
    s->base.plain = size;
    base_close(w, s);
    if (s->mode == W_STREAM) {
        /* the plaintext is gone: a later change stages the committed blob again */
        pend_free(w, s);
        if (s->c1_ready)
            ccr_ccr1_fini(&s->c1);
        s->c1_ready = false;
        s->pend_u0 = 0;
        s->sent_final = false;
        s->mode = W_BASE;
    } else if (s->mode == W_STAGED && size == 0) {
        /* An empty file was committed (a close of a dup'ed descriptor right after create, as dd and shells
         * do, or touch): writes that follow are most likely sequential, so let them stream rather than
         * stage the whole file and encrypt it twice. */
        reset_stream(w, s);
    }
    atomic_fetch_add(&w->v->st.commits, 1);
    vns_committed(w->v, w, props, size);
}

int vwriter_flush_locked(struct vwriter *w, struct ccr_err *err)
{
    struct vwstate *s = w->s;
    struct ccr_volume *v = w->v;
    if (atomic_load(&w->orphan)) {
        wait_uploads(w, s); /* unlinked or replaced: nothing to commit */
        return 0;
    }
    if (!s->dirty)
        return 0;
    int rc = 0;
    struct ccr_blob_props props;
    if (s->mode == W_STREAM && sent_end(s) == 0 && !s->sent_final)
        rc = stream_to_stage(w, s, err); /* small enough to be all here: encrypt it as a whole */
    if (rc == 0 && s->mode == W_STAGED) {
        struct vup *whole = NULL;
        rc = staged_send(w, s, &whole, err);
        if (rc == 0 && whole)
            props = whole->props;
        else if (rc == 0)
            rc = ccr_store_commit_blocks(v->store, w->blob, file_units(s, s->st.size), &props, err);
        up_free(v, whole);
    } else if (rc == 0 && s->mode == W_STREAM) {
        if (!s->sent_final)
            rc = stream_send_all(w, s, err);
        wait_uploads(w, s);
        if (rc == 0 && s->failed)
            rc = retry_failed(w, s, err);
        if (rc == 0)
            rc = ccr_store_commit_blocks(v->store, w->blob, s->pend_u0, &props, err);
    }
    if (rc == 0 && atomic_load(&w->orphan))
        return 0; /* unlinked while committing: whoever unlinked deletes the blob */
    if (rc) {
        ccr_err_where(err, w->blob);
        atomic_fetch_add(&v->st.commit_failures, 1);
        ccr_log(CCR_LOG_ERROR, "%s: commit failed: %s", w->path, err ? err->msg : pl_strerror(rc));
        return rc;
    }
    committed(w, s, &props);
    return 0;
}

int vwriter_flush(struct vwriter *w, struct ccr_err *err)
{
    pthread_mutex_lock(&w->mu);
    int rc = vwriter_flush_locked(w, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

bool vwriter_streaming_locked(struct vwriter *w)
{
    struct vwstate *s = w->s;
    return s->mode == W_STREAM && s->dirty && (sent_end(s) > 0 || s->sent_final);
}

const char *vwriter_clean_etag_locked(struct vwriter *w)
{
    struct vwstate *s = w->s;
    return !s->dirty && s->has_base ? s->base.etag : "";
}

int vwriter_retarget_locked(struct vwriter *w, const char *path, const struct ccr_blob_props *base,
                            uint64_t base_plain)
{
    struct vwstate *s = w->s;
    char *np = strdup(path), *nb = vol_blob_name(w->v, path);
    if (!np || !nb) {
        free(np);
        ccr_free(nb);
        return -ENOMEM;
    }
    base_close(w, s);
    pthread_mutex_lock(&w->v->ns_mu);
    free(w->path);
    ccr_free(w->blob);
    w->path = np;
    w->blob = nb;
    pthread_mutex_unlock(&w->v->ns_mu);
    if (base) {
        s->has_base = true;
        snprintf(s->base.etag, sizeof(s->base.etag), "%s", base->etag);
        s->base.stored = base->size;
        s->base.plain = s->mode == W_BASE ? s->base.plain : base_plain;
    } else {
        s->has_base = false;
    }
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* rename: copy a blob's stored bytes                                                                    */
/* ----------------------------------------------------------------------------------------------------- */

int vblob_copy(struct ccr_volume *v, const char *from, const char *to, const char *etag,
               struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct ccr_blob_props p;
    int rc = ccr_store_props(v->store, from, &p, err);
    if (rc)
        return rc;
    if (strcmp(p.etag, etag) != 0)
        return ccr_err_set(err, -ESTALE, from, -1, "the blob changed in the store; not renamed");
    uint64_t chunk = (p.size + VOL_MAX_BLOCKS - 1) / VOL_MAX_BLOCKS;
    chunk = chunk < COPY_CHUNK ? COPY_CHUNK : chunk;
    uint64_t cap = p.size < chunk ? p.size : chunk;
    rc = vmem_take(v, cap, VMEM_DEMAND);
    uint8_t *buf = rc ? NULL : ccr_malloc(cap ? (size_t)cap : 1);
    if (!buf) {
        if (!rc)
            vmem_give(v, cap, VMEM_DEMAND);
        return ccr_err_set(err, -ENOMEM, from, -1, "out of memory");
    }
    uint64_t n = 0;
    for (uint64_t off = 0; rc == 0 && (off < p.size || n == 0); off += cap, n++) {
        uint64_t len = p.size - off < cap ? p.size - off : cap;
        ssize_t got = len ? ccr_store_get(v->store, from, off, buf, (size_t)len, etag, err) : 0;
        if (got >= 0)
            atomic_fetch_add(&v->st.bytes_fetched, (uint64_t)got);
        if (got >= 0 && (uint64_t)got != len)
            got = ccr_err_set(err, -ESTALE, from, (int64_t)off, "the blob changed in the store; not renamed");
        if (got < 0)
            rc = (int)got;
        else if (p.size <= cap) /* one piece: the whole blob at once */
            rc = ccr_store_put_blob(v->store, to, buf, (size_t)len, out_props, err);
        else
            rc = ccr_store_put_block_at(v->store, to, n, off, buf, (size_t)len, err);
        if (rc == 0)
            atomic_fetch_add(&v->st.bytes_uploaded, len);
        if (p.size <= cap)
            break;
    }
    if (rc == 0 && p.size > cap)
        rc = ccr_store_commit_blocks(v->store, to, n, out_props, err);
    ccr_wipe(buf, (size_t)cap);
    ccr_free(buf);
    vmem_give(v, cap, VMEM_DEMAND);
    return rc;
}
