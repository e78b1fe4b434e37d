/*
 * vread.c - the read side of a volume: the region cache, fetching and decrypting, and prefetch.
 *
 * The cache. An entry is a run of consecutive regions of one blob, never crossing a transfer unit (4 MiB
 * of plaintext): its buffer holds the stored bytes of those regions, fetched with one ranged GET and
 * decrypted in place, so a region is decrypted once however many reads copy from it. Entries are found
 * by (blob, unit) in one hash table (all entries of a unit share a bucket; a unit rarely has more than a
 * few) and kept on one LRU list. Every entry's buffer is charged to the volume's budget; taking memory
 * evicts from the cold end of the LRU. An entry being fetched is in the table already, so a second
 * reader of the same region waits for that fetch instead of starting its own, and it is pinned, so it
 * cannot be evicted while anyone waits for it or copies from it.
 *
 * What a miss fetches. A handle in random mode fetches only the regions its read touches (within one
 * unit per entry): a 4 KiB read of a ccr1 blob with 64 KiB regions costs one region, not a unit. A
 * handle in sequential mode fetches the whole unit and keeps a window of the following units in flight
 * on the worker threads. Prefetched entries are "fresh" until read: prefetch never evicts fresh data, so
 * a window larger than memory cannot evict what the reader is about to use; a sequential reader moves
 * what it has finished reading to the cold end (a few units late, see release()), so a file much larger than
 * the budget cycles through it.
 *
 * The sequential detector. A read that starts near the end of the previous one (within a few times its
 * length, so that FUSE's concurrent, slightly reordered readahead still counts) extends a streak; any
 * other read ends it. Three reads in a row switch the handle to sequential mode and the prefetch window
 * ramps up from one unit, doubling per read up to opts.prefetch (shared fairly between sequential
 * handles); a jump switches it back at once. Random reads therefore almost never trigger prefetch by
 * chance, and when they do, the first window is one unit.
 *
 * Integrity. Every get carries the ETag pinned at open (if_match): a blob replaced in the store makes the
 * get fail with -ESTALE, the blob is marked stale, and every later read of every handle on that version
 * fails with -ESTALE, cached or not, so no read ever mixes versions. A region that fails authentication is
 * wiped by the codec, marked bad in its entry, counted and logged with the blob name and stored byte
 * offset; reads touching it fail with -EIO, other regions of the same entry still read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec_int.h"
#include "volume_int.h"

#define BAD_WORD(k) ((k) / 64)
#define BAD_BIT(k)  ((uint64_t)1 << ((k) % 64))

/* One version of one blob, shared by every handle open on it and by its cached entries. */
struct vblob {
    char *name;
    char etag[CCR_ETAG_MAX];
    struct vlayout lay;
    unsigned refs;   /* handles + entries + queued prefetch jobs (v->mu) */
    bool registered; /* findable in v->blobs (v->mu) */
    atomic_bool stale;
    pthread_mutex_t hdr_mu;
    atomic_bool hdr_ready; /* ccr1: c1 is set up */
    int hdr_err;           /* ccr1: a header that can never work (hdr_mu) */
    struct ccr_ccr1 c1;
    struct vblob *hnext;
};

enum estate { E_FETCHING, E_READY, E_FAILED };

struct ventry {
    struct vblob *b;
    uint64_t r0, n, unit;
    uint8_t *buf;
    uint64_t cap;      /* bytes of buf, charged to the budget */
    uint64_t data_off; /* where region r0's stored bytes start in buf */
    enum estate state;
    int err;                    /* E_FAILED */
    struct ccr_err *fail;       /* E_FAILED: the detail, for the waiters */
    unsigned pins;              /* readers copying or waiting, the fetcher */
    bool fresh;                 /* prefetched and not read yet */
    bool linked;                /* in the table and the LRU */
    uint64_t *bad;              /* bitmap of regions that failed authentication; NULL: none */
    struct ventry *hnext;       /* bucket chain */
    struct ventry *prev, *next; /* LRU */
};

/* ----------------------------------------------------------------------------------------------------- */
/* layout                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

void vlay_init(struct vlayout *l, const struct ccr_volume *v, uint64_t plain)
{
    memset(l, 0, sizeof(*l));
    l->mode = v->mode;
    l->plain = plain;
    switch (v->mode) {
    case CCR_MODE_CCR1:
        l->log2 = v->log2;
        l->rsize = (uint64_t)1 << v->log2;
        l->stride = l->rsize + CCR1_TAG_LEN;
        l->pre = CCR1_HEADER_LEN;
        l->regions = ccr_ccr1_region_count(plain, v->log2);
        l->per_unit = VOL_UNIT / l->rsize;
        break;
    case CCR_MODE_CSE:
        l->rsize = v->chunk;
        l->stride = v->chunk + CCR_CSE_OVERHEAD;
        l->poff = CCR_CSE_NONCE_LEN;
        l->regions = ccr_cse_chunk_count(plain, v->chunk);
        /* as the transfer engine: one chunk per unit, small chunks grouped up to about a unit */
        l->per_unit = v->chunk >= ((uint64_t)1 << 20) ? 1 : VOL_UNIT / v->chunk;
        break;
    default:
        l->rsize = VOL_NONE_REGION;
        l->stride = VOL_NONE_REGION;
        l->regions = (plain + VOL_NONE_REGION - 1) / VOL_NONE_REGION;
        l->per_unit = VOL_UNIT / VOL_NONE_REGION;
        break;
    }
    if (l->per_unit < 1)
        l->per_unit = 1;
}

uint64_t vlay_plain_len(const struct vlayout *l, uint64_t k)
{
    uint64_t start = k * l->rsize;
    if (start >= l->plain)
        return 0;
    uint64_t left = l->plain - start;
    return left < l->rsize ? left : l->rsize;
}

uint64_t vlay_stored_off(const struct vlayout *l, uint64_t k)
{
    return l->pre + k * l->stride;
}

uint64_t vlay_stored_len(const struct vlayout *l, uint64_t k)
{
    if (l->mode == CCR_MODE_CSE)
        return l->stride;
    return vlay_plain_len(l, k) + (l->mode == CCR_MODE_CCR1 ? CCR1_TAG_LEN : 0);
}

uint64_t vlay_unit_bytes(const struct vlayout *l)
{
    return l->per_unit * l->stride + VOL_UNIT_EXTRA;
}

static uint64_t unit_last_region(const struct vlayout *l, uint64_t k)
{
    uint64_t last = (k / l->per_unit + 1) * l->per_unit - 1;
    return last < l->regions - 1 ? last : l->regions - 1;
}

/* ----------------------------------------------------------------------------------------------------- */
/* sizes                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

int vblob_plain_from_stored(const struct ccr_volume *v, uint64_t stored, uint64_t *out)
{
    uint64_t plain = stored, n;
    if (v->mode == CCR_MODE_CCR1 && ccr_ccr1_plain_size(stored, v->log2, &plain, &n, NULL) != 0)
        return -EBADMSG;
    if (v->mode == CCR_MODE_CSE)
        return -EAGAIN; /* needs the trailer */
    *out = plain;
    return 0;
}

int vblob_plain_size(struct ccr_volume *v, const char *blob, const struct vblobinfo *info, uint64_t *out,
                     struct ccr_err *err)
{
    if (v->mode != CCR_MODE_CSE) {
        if (vblob_plain_from_stored(v, info->stored, out) != 0)
            return ccr_err_set(err, -EIO, blob, -1, "%llu bytes fits no ccr1 blob of %llu-byte regions",
                               (unsigned long long)info->stored, (unsigned long long)1 << v->log2);
        return 0;
    }
    uint8_t trailer[CCR_CSE_TRAILER_LEN] = {0};
    if (info->stored >= CCR_CSE_TRAILER_LEN) {
        ssize_t got = ccr_store_get(v->store, blob, info->stored - CCR_CSE_TRAILER_LEN, trailer,
                                    sizeof(trailer), info->etag[0] ? info->etag : NULL, err);
        if (got == -ENOENT)
            return ccr_err_set(err, -ESTALE, blob, -1, "the blob was deleted from the store");
        if (got < 0)
            return (int)got;
        atomic_fetch_add(&v->st.bytes_fetched, (uint64_t)got);
        if (got != CCR_CSE_TRAILER_LEN)
            return ccr_err_set(err, -ESTALE, blob, -1, "the blob changed in the store (it is shorter)");
    }
    uint64_t plain, n;
    if (ccr_cse_plain_size(info->stored, v->chunk, trailer, &plain, &n, NULL) != 0)
        return ccr_err_set(err, -EIO, blob, -1,
                           "malformed cleanroom-cse blob: %llu bytes and its trailer fit no %llu-byte chunks",
                           (unsigned long long)info->stored, (unsigned long long)v->chunk);
    *out = plain;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* blob registry (v->mu)                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

static size_t name_hash(const char *s, size_t nb)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return (size_t)(h & (nb - 1));
}

static void blob_unregister_locked(struct ccr_volume *v, struct vblob *b)
{
    if (!b->registered)
        return;
    struct vblob **pp = &v->blobs[name_hash(b->name, v->nblob_buckets)];
    while (*pp && *pp != b)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = b->hnext;
    b->registered = false;
}

static void blob_put_locked(struct ccr_volume *v, struct vblob *b)
{
    if (--b->refs > 0)
        return;
    blob_unregister_locked(v, b);
    if (atomic_load(&b->hdr_ready))
        ccr_ccr1_fini(&b->c1);
    pthread_mutex_destroy(&b->hdr_mu);
    ccr_free(b->name);
    ccr_free(b);
}

/* The registered blob of that name and version, or a new one; with a reference for the caller. */
static struct vblob *blob_get_locked(struct ccr_volume *v, const char *name, const struct vblobinfo *info)
{
    size_t h = name_hash(name, v->nblob_buckets);
    for (struct vblob *b = v->blobs[h]; b; b = b->hnext) {
        if (strcmp(b->name, name) != 0)
            continue;
        if (strcmp(b->etag, info->etag) == 0 && !atomic_load(&b->stale)) {
            b->refs++;
            return b;
        }
        /* an older version: the store has moved on, so its handles can only fail from now on */
        atomic_store(&b->stale, true);
    }
    struct vblob *b = ccr_calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->name = strdup(name);
    if (!b->name) {
        ccr_free(b);
        return NULL;
    }
    snprintf(b->etag, sizeof(b->etag), "%s", info->etag);
    vlay_init(&b->lay, v, info->plain);
    pthread_mutex_init(&b->hdr_mu, NULL);
    b->refs = 1;
    b->registered = true;
    b->hnext = v->blobs[h];
    v->blobs[h] = b;
    return b;
}

/* ----------------------------------------------------------------------------------------------------- */
/* table and LRU (v->mu)                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

static size_t bucket_of(const struct ccr_volume *v, const struct vblob *b, uint64_t unit)
{
    uint64_t x = (uint64_t)(uintptr_t)b ^ (unit * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (size_t)(x & (v->nbuckets - 1));
}

static struct ventry *map_find(const struct ccr_volume *v, const struct vblob *b, uint64_t k)
{
    uint64_t unit = k / b->lay.per_unit;
    for (struct ventry *e = v->buckets[bucket_of(v, b, unit)]; e; e = e->hnext)
        if (e->b == b && e->unit == unit && k >= e->r0 && k < e->r0 + e->n)
            return e;
    return NULL;
}

static void lru_unlink(struct ccr_volume *v, struct ventry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        v->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        v->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_head(struct ccr_volume *v, struct ventry *e)
{
    e->prev = NULL;
    e->next = v->lru_head;
    if (v->lru_head)
        v->lru_head->prev = e;
    v->lru_head = e;
    if (!v->lru_tail)
        v->lru_tail = e;
}

static void lru_push_tail(struct ccr_volume *v, struct ventry *e)
{
    e->next = NULL;
    e->prev = v->lru_tail;
    if (v->lru_tail)
        v->lru_tail->next = e;
    v->lru_tail = e;
    if (!v->lru_head)
        v->lru_head = e;
}

static void map_link(struct ccr_volume *v, struct ventry *e)
{
    size_t h = bucket_of(v, e->b, e->unit);
    e->hnext = v->buckets[h];
    v->buckets[h] = e;
    lru_push_head(v, e);
    e->linked = true;
}

static void map_unlink(struct ccr_volume *v, struct ventry *e)
{
    if (!e->linked)
        return;
    struct ventry **pp = &v->buckets[bucket_of(v, e->b, e->unit)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(v, e);
    e->linked = false;
}

/* Gives back the buffer and its memory. */
static void entry_drop_buf(struct ccr_volume *v, struct ventry *e)
{
    vbuf_put(v, e->buf, (size_t)e->cap); /* wipes what goes back to the allocator */
    e->buf = NULL;
    if (e->cap) {
        vmem_give_locked(v, e->cap, VMEM_DEMAND);
        e->cap = 0;
    }
}

static void entry_free(struct ccr_volume *v, struct ventry *e)
{
    map_unlink(v, e);
    entry_drop_buf(v, e);
    blob_put_locked(v, e->b);
    ccr_free(e->bad);
    ccr_free(e->fail);
    ccr_free(e);
}

static void unpin_locked(struct ccr_volume *v, struct ventry *e)
{
    if (--e->pins > 0)
        return;
    if (!e->linked)
        entry_free(v, e);
    else
        pthread_cond_broadcast(&v->cv); /* evictable now: a reader may be waiting for memory */
}

int vcache_evict_one(struct ccr_volume *v, bool keep_fresh)
{
    /* Prefetched data nobody has read yet goes last, even for a demand read: evicting it is an over-read. */
    bool busy = false;
    for (int pass = 0; pass < (keep_fresh ? 1 : 2); pass++) {
        for (struct ventry *e = v->lru_tail; e; e = e->prev) {
            if (e->pins || e->state != E_READY || (pass == 0 && e->fresh)) {
                busy |= e->pins > 0 || e->state == E_FETCHING;
                continue;
            }
            entry_free(v, e);
            return 1;
        }
    }
    return busy ? 0 : -1;
}

/* Drops every unpinned entry of a blob that went stale: nobody can read them any more. */
static void purge_blob_locked(struct ccr_volume *v, struct vblob *b)
{
    struct ventry *e = v->lru_head;
    while (e) {
        struct ventry *next = e->next;
        if (e->b == b && e->pins == 0)
            entry_free(v, e);
        e = next;
    }
}

int vcache_init(struct ccr_volume *v)
{
    size_t want = (size_t)(v->budget / (64u << 10));
    size_t nb = 1024;
    while (nb < want && nb < ((size_t)1 << 20))
        nb <<= 1;
    v->nbuckets = nb;
    v->buckets = ccr_calloc(nb, sizeof(*v->buckets));
    v->nblob_buckets = 1024;
    v->blobs = ccr_calloc(v->nblob_buckets, sizeof(*v->blobs));
    if (!v->buckets || !v->blobs) {
        ccr_free(v->buckets);
        ccr_free(v->blobs);
        v->buckets = NULL;
        v->blobs = NULL;
        return -ENOMEM;
    }
    return 0;
}

void vcache_fini(struct ccr_volume *v)
{
    if (!v->buckets)
        return;
    pthread_mutex_lock(&v->mu);
    while (v->lru_head)
        entry_free(v, v->lru_head);
    pthread_mutex_unlock(&v->mu);
    ccr_free(v->buckets);
    ccr_free(v->blobs);
    v->buckets = NULL;
    v->blobs = NULL;
}

/* ----------------------------------------------------------------------------------------------------- */
/* fetching                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

static int stale_error(struct ccr_volume *v, struct vblob *b, struct ccr_err *err)
{
    atomic_store(&b->stale, true);
    return ccr_err_set(err, -ESTALE, b->name, -1,
                       "the blob changed in the store while the file was open (its ETag is no longer %s); "
                       "reopen the file",
                       b->etag);
}

/* A ranged get of exactly len bytes at the pinned version. */
static int get_exact(struct ccr_volume *v, struct vblob *b, uint64_t off, void *buf, size_t len,
                     struct ccr_err *err)
{
    ssize_t got = ccr_store_get(v->store, b->name, off, buf, len, b->etag, err);
    if (got == -ESTALE || got == -ENOENT)
        return stale_error(v, b, err);
    if (got < 0) {
        ccr_err_where(err, b->name);
        return (int)got;
    }
    atomic_fetch_add(&v->st.bytes_fetched, (uint64_t)got);
    if ((size_t)got != len)
        return stale_error(v, b, err);
    return 0;
}

/*
 * Sets up a ccr1 blob's key from its header: hdr when the caller fetched it along with region 0, else
 * one 64-byte get. A header that fails (tampered, another key, another region size) fails every read
 * of the blob with -EIO.
 */
static int blob_header(struct ccr_volume *v, struct vblob *b, const uint8_t *hdr, struct ccr_err *err)
{
    if (atomic_load(&b->hdr_ready))
        return 0;
    pthread_mutex_lock(&b->hdr_mu);
    int rc = 0;
    uint8_t h[CCR1_HEADER_LEN];
    if (b->hdr_err) {
        rc = ccr_err_set(err, b->hdr_err, b->name, 0,
                         "the blob's ccr1 header cannot be used (tampered, another key or region size)");
        goto out;
    }
    if (atomic_load(&b->hdr_ready))
        goto out;
    if (!hdr) {
        rc = get_exact(v, b, 0, h, sizeof(h), err);
        if (rc)
            goto out;
        hdr = h;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    rc = ccr_ccr1_init_parse(&b->c1, &v->key, hdr, &e);
    if (rc == 0 && b->c1.region_log2 != b->lay.log2) {
        ccr_ccr1_fini(&b->c1);
        rc = ccr_err_set(&e, -EBADMSG, b->name, 9,
                         "written with %llu-byte regions, but the datastore's region size is %llu",
                         (unsigned long long)1 << b->c1.region_log2, (unsigned long long)1 << b->lay.log2);
    }
    if (rc) {
        atomic_fetch_add(&v->st.auth_failures, 1);
        ccr_log(CCR_LOG_ERROR,
                "%s: the ccr1 header at byte offset 0 cannot be used: %s; every read fails with EIO", b->name,
                e.msg);
        b->hdr_err = -EIO;
        rc = ccr_err_set(err, -EIO, b->name, 0, "the blob's ccr1 header cannot be used: %s", e.msg);
        goto out;
    }
    atomic_store(&b->hdr_ready, true);
out:
    pthread_mutex_unlock(&b->hdr_mu);
    return rc;
}

static void mark_bad(struct ccr_volume *v, struct ventry *e, uint64_t k, const struct ccr_err *ce)
{
    if (!e->bad)
        e->bad = ccr_calloc((size_t)(e->n / 64 + 1), sizeof(uint64_t));
    if (e->bad)
        e->bad[BAD_WORD(k - e->r0)] |= BAD_BIT(k - e->r0);
    atomic_fetch_add(&v->st.auth_failures, 1);
    const struct vlayout *l = &e->b->lay;
    ccr_log(CCR_LOG_ERROR,
            "%s: region %llu at byte offset %llu failed authentication (tampered or corrupt data%s): %s; "
            "reads of plaintext bytes %llu..%llu fail with EIO",
            e->b->name, (unsigned long long)k, (unsigned long long)vlay_stored_off(l, k),
            l->mode == CCR_MODE_CSE ? ", or the wrong key" : "", ce->msg, (unsigned long long)(k * l->rsize),
            (unsigned long long)(k * l->rsize + vlay_plain_len(l, k)));
}

static bool is_bad(const struct ventry *e, uint64_t k)
{
    return e->bad && (e->bad[BAD_WORD(k - e->r0)] & BAD_BIT(k - e->r0));
}

/* Authenticates and decrypts every region of a fetched entry in place; a failure marks that region. */
static int entry_open(struct ccr_volume *v, struct ventry *e)
{
    const struct vlayout *l = &e->b->lay;
    if (l->mode == CCR_MODE_NONE)
        return 0;
    struct ccr_aead *a = vol_aead_get(v);
    if (!a)
        return -ENOMEM;
    for (uint64_t i = 0; i < e->n; i++) {
        uint64_t k = e->r0 + i;
        uint8_t *slot = e->buf + e->data_off + i * l->stride;
        size_t len = (size_t)vlay_plain_len(l, k);
        struct ccr_err ce;
        ccr_err_clear(&ce);
        int rc;
        if (l->mode == CCR_MODE_CCR1)
            rc = ccr_ccr1_open_region(&e->b->c1, a, k, k + 1 == l->regions, slot, slot, len, slot + len, &ce);
        else
            rc = ccr_cse_open_chunk(&v->key, a, slot, len, l->rsize, &ce);
        if (rc)
            mark_bad(v, e, k, &ce);
    }
    vol_aead_put(v, a);
    return 0;
}

/* Fetches and decrypts an entry the caller created (state E_FETCHING, pinned). No lock held. */
static int entry_fetch(struct ccr_volume *v, struct ventry *e, struct ccr_err *err)
{
    struct vblob *b = e->b;
    const struct vlayout *l = &b->lay;
    uint64_t last = e->r0 + e->n - 1;
    uint64_t off = vlay_stored_off(l, e->r0);
    uint64_t end = vlay_stored_off(l, last) + vlay_stored_len(l, last);
    /* Region 0 of a ccr1 blob whose header we lack: one get for both. */
    bool with_hdr = l->mode == CCR_MODE_CCR1 && e->r0 == 0 && !atomic_load(&b->hdr_ready);
    int rc;
    if (l->mode == CCR_MODE_CCR1 && !with_hdr) {
        rc = blob_header(v, b, NULL, err);
        if (rc)
            return rc;
    }
    if (with_hdr)
        off = 0;
    e->data_off = with_hdr ? CCR1_HEADER_LEN : 0;
    size_t len = (size_t)(end - off);
    if (len > e->cap)
        return ccr_err_set(err, -EIO, b->name, -1, "internal: entry buffer too small");
    e->buf = vbuf_get(v, (size_t)e->cap); /* the cap, not len: it is what eviction wipes */
    if (!e->buf)
        return ccr_err_set(err, -ENOMEM, b->name, -1, "out of memory");
    rc = get_exact(v, b, off, e->buf, len, err);
    if (rc == 0 && with_hdr)
        rc = blob_header(v, b, e->buf, err);
    if (rc == 0)
        rc = entry_open(v, e);
    return rc;
}

/* Records the outcome of a fetch and wakes whoever waits for it (v->mu held). */
static void entry_done_locked(struct ccr_volume *v, struct ventry *e, int rc, const struct ccr_err *err)
{
    if (rc == 0) {
        e->state = E_READY;
    } else {
        e->state = E_FAILED;
        e->err = rc;
        e->fail = ccr_malloc(sizeof(*e->fail));
        if (e->fail) {
            if (err && err->code)
                *e->fail = *err;
            else
                ccr_err_set(e->fail, rc, e->b->name, -1, "%s", pl_strerror(rc));
        }
        map_unlink(v, e);
        entry_drop_buf(v, e);
        if (rc == -ESTALE) {
            blob_unregister_locked(v, e->b);
            purge_blob_locked(v, e->b);
        }
    }
    pthread_cond_broadcast(&v->cv);
}

/* Bytes an entry of regions k..kend needs: their stored bytes, and the ccr1 header with region 0. */
static uint64_t entry_cap(const struct vlayout *l, uint64_t k, uint64_t kend)
{
    uint64_t n = vlay_stored_off(l, kend) + vlay_stored_len(l, kend) - vlay_stored_off(l, k);
    return n + (k == 0 ? l->pre : 0);
}

static struct ventry *entry_new_locked(struct ccr_volume *v, struct vblob *b, uint64_t k, uint64_t kend,
                                       uint64_t cap)
{
    struct ventry *e = ccr_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->b = b;
    b->refs++;
    e->r0 = k;
    e->n = kend - k + 1;
    e->unit = k / b->lay.per_unit;
    e->cap = cap;
    e->state = E_FETCHING;
    e->pins = 1;
    map_link(v, e);
    return e;
}

/* The last region of the run [k, kmax] that nothing caches or fetches yet (v->mu held). */
static uint64_t absent_run_end(const struct ccr_volume *v, const struct vblob *b, uint64_t k, uint64_t kmax)
{
    uint64_t kend = k;
    while (kend < kmax && !map_find(v, b, kend + 1))
        kend++;
    return kend;
}

/*
 * Returns (pinned, E_READY) the entry holding region k, fetching regions k..kmax (those not cached) if
 * nobody has them, or waiting for whoever fetches them. *waited says whether it had to wait.
 */
static int acquire(struct ccr_volume *v, struct vblob *b, uint64_t k, uint64_t kmax, struct ventry **out,
                   bool *waited, struct ccr_err *err)
{
    pthread_mutex_lock(&v->mu);
    for (;;) {
        if (atomic_load(&b->stale)) {
            pthread_mutex_unlock(&v->mu);
            return stale_error(v, b, err);
        }
        struct ventry *e = map_find(v, b, k);
        if (e) {
            e->pins++;
            if (e->state == E_FETCHING)
                *waited = true;
            while (e->state == E_FETCHING)
                pthread_cond_wait(&v->cv, &v->mu);
            if (e->state == E_FAILED) {
                int rc = e->err;
                if (err && e->fail)
                    *err = *e->fail;
                unpin_locked(v, e);
                pthread_mutex_unlock(&v->mu);
                return rc;
            }
            e->fresh = false;
            if (e->linked) {
                lru_unlink(v, e);
                lru_push_head(v, e);
            }
            pthread_mutex_unlock(&v->mu);
            *out = e;
            return 0;
        }
        uint64_t kend = absent_run_end(v, b, k, kmax);
        uint64_t cap = entry_cap(&b->lay, k, kend);
        int rc = vmem_take_locked(v, cap, VMEM_DEMAND);
        if (rc) {
            pthread_mutex_unlock(&v->mu);
            return ccr_err_set(err, rc, b->name, -1, "no memory for the read");
        }
        /* taking memory may have waited: someone may have started these regions meanwhile */
        if (map_find(v, b, k) || absent_run_end(v, b, k, kend) != kend || atomic_load(&b->stale)) {
            vmem_give_locked(v, cap, VMEM_DEMAND);
            continue;
        }
        e = entry_new_locked(v, b, k, kend, cap);
        if (!e) {
            vmem_give_locked(v, cap, VMEM_DEMAND);
            pthread_mutex_unlock(&v->mu);
            return ccr_err_set(err, -ENOMEM, b->name, -1, "out of memory");
        }
        pthread_mutex_unlock(&v->mu);
        *waited = true;
        rc = entry_fetch(v, e, err);
        pthread_mutex_lock(&v->mu);
        entry_done_locked(v, e, rc, err);
        if (rc) {
            unpin_locked(v, e);
            pthread_mutex_unlock(&v->mu);
            return rc;
        }
        pthread_mutex_unlock(&v->mu);
        *out = e;
        return 0;
    }
}

/* How far behind a sequential reader its finished entries go to the cold end: FUSE's readahead keeps
 * several reads in flight on several threads, and one of them can arrive well after its neighbours. */
#define COLD_LAG_UNITS 4

/*
 * Done copying from e: drops the caller's pin. A sequential reader that finished e sends the
 * entry COLD_LAG_UNITS units (fewer in a small budget) behind e to the cold end, not e itself: a late read of
 * e's last bytes would otherwise find e evicted already and fetch its regions again (over-read). Entries
 * closer than that stay where the LRU has them.
 */
static void release(struct ccr_volume *v, struct ventry *e, bool finished)
{
    pthread_mutex_lock(&v->mu);
    const struct vlayout *l = &e->b->lay;
    uint64_t units = v->budget / vlay_unit_bytes(l) / 4; /* a small budget cannot keep four units back */
    uint64_t lag = (units < 1 ? 1 : units > COLD_LAG_UNITS ? COLD_LAG_UNITS : units) * l->per_unit;
    struct ventry *old = finished && e->r0 >= lag ? map_find(v, e->b, e->r0 - lag) : NULL;
    if (old && old->linked && old->pins == 0 && old->state == E_READY && !old->fresh) {
        lru_unlink(v, old);
        lru_push_tail(v, old);
    }
    unpin_locked(v, e);
    pthread_mutex_unlock(&v->mu);
}

/* ----------------------------------------------------------------------------------------------------- */
/* prefetch                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

struct vpf {
    struct vjob j;
    struct ccr_volume *v;
    struct vreader *r;
    struct vblob *b;
    uint64_t unit;
};

/* Fetches the regions of one unit that nobody has, as far as memory allows without evicting fresh data. */
static void prefetch_unit(struct ccr_volume *v, struct vblob *b, uint64_t unit)
{
    const struct vlayout *l = &b->lay;
    uint64_t k = unit * l->per_unit;
    if (k >= l->regions)
        return;
    uint64_t k1 = unit_last_region(l, k);
    bool fetched = false;
    pthread_mutex_lock(&v->mu);
    while (k <= k1 && !atomic_load(&b->stale)) {
        struct ventry *have = map_find(v, b, k);
        if (have) {
            k = have->r0 + have->n;
            continue;
        }
        uint64_t kend = absent_run_end(v, b, k, k1);
        uint64_t cap = entry_cap(l, k, kend);
        if (vmem_take_locked(v, cap, VMEM_PREFETCH) != 0)
            break;
        struct ventry *e = entry_new_locked(v, b, k, kend, cap);
        if (!e) {
            vmem_give_locked(v, cap, VMEM_PREFETCH);
            break;
        }
        e->fresh = true;
        pthread_mutex_unlock(&v->mu);
        struct ccr_err err;
        ccr_err_clear(&err);
        int rc = entry_fetch(v, e, &err);
        pthread_mutex_lock(&v->mu);
        entry_done_locked(v, e, rc, &err);
        unpin_locked(v, e);
        if (rc)
            break;
        fetched = true;
        k = kend + 1;
    }
    pthread_mutex_unlock(&v->mu);
    if (fetched)
        atomic_fetch_add(&v->st.prefetches, 1);
}

static void pf_run(struct vjob *j)
{
    struct vpf *p = (struct vpf *)j;
    struct ccr_volume *v = p->v;
    if (!atomic_load(&p->r->closing) && !atomic_load(&p->b->stale))
        prefetch_unit(v, p->b, p->unit);
    pthread_mutex_lock(&v->mu);
    p->r->pf_inflight--;
    blob_put_locked(v, p->b);
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    ccr_free(p);
}

static void pf_submit(struct ccr_volume *v, struct vreader *r, uint64_t unit)
{
    struct vpf *p = ccr_calloc(1, sizeof(*p));
    if (!p)
        return; /* prefetch is an optimisation: the reader fetches on demand */
    p->j.run = pf_run;
    p->v = v;
    p->r = r;
    p->b = r->b;
    p->unit = unit;
    pthread_mutex_lock(&v->mu);
    r->pf_inflight++;
    r->b->refs++;
    pthread_mutex_unlock(&v->mu);
    vol_submit(v, &p->j);
}

/* ----------------------------------------------------------------------------------------------------- */
/* the sequential detector                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

#define SEQ_STREAK 3 /* reads in a row near each other before prefetching starts */

/* Bytes the window may reach ahead of the reader: ramps from one unit up to opts.prefetch, shared. */
static uint64_t window_bytes(struct ccr_volume *v, const struct vreader *r, uint64_t unit_plain)
{
    unsigned nseq = v->nseq ? v->nseq : 1;
    uint64_t share = v->budget / 2 / nseq; /* the other half: demand reads, writers, other data */
    uint64_t max = v->prefetch < share ? v->prefetch : share;
    unsigned ramp = r->streak - SEQ_STREAK;
    uint64_t w = ramp >= 20 ? max : unit_plain << ramp;
    if (w > max)
        w = max;
    return w < unit_plain ? unit_plain : w;
}

/* Updates the detector with a read and queues prefetch; returns whether the handle is sequential. */
static bool detect(struct ccr_volume *v, struct vreader *r, uint64_t off, uint64_t len)
{
    const struct vlayout *l = &r->b->lay;
    uint64_t unit_plain = l->per_unit * l->rsize;
    uint64_t slack = len * 4 > ((uint64_t)256 << 10) ? len * 4 : ((uint64_t)256 << 10);
    pthread_mutex_lock(&r->mu);
    bool near = r->started ? off + slack >= r->last_end && off <= r->last_end + slack : off == 0;
    r->streak = near ? r->streak + 1 : 0;
    if (r->streak > 1000)
        r->streak = 1000;
    r->last_end = near && r->last_end > off + len ? r->last_end : off + len;
    r->started = true;
    bool seq = r->streak >= SEQ_STREAK;
    uint64_t from = 0, to = 0;
    pthread_mutex_lock(&v->mu);
    if (seq != r->seq) {
        r->seq = seq;
        v->nseq += seq ? 1 : (unsigned)-1;
        /* A late read of FUSE's concurrent readahead can break the streak for a moment: a stream that
         * resumes behind its window keeps it, so units already prefetched (and maybe read and evicted
         * since) are not fetched again. A jump anywhere else starts a new window. */
        uint64_t u = (off + len) / unit_plain + 1;
        if (seq && (r->pf_next < u || r->pf_next > u + v->prefetch / unit_plain + 1))
            r->pf_next = 0;
    }
    if (seq) {
        uint64_t ahead = off + len + window_bytes(v, r, unit_plain);
        if (ahead > l->plain)
            ahead = l->plain;
        from = (off + len) / unit_plain + 1;
        if (from < r->pf_next)
            from = r->pf_next;
        to = ahead ? (ahead - 1) / unit_plain + 1 : 0; /* exclusive */
        if (to > from)
            r->pf_next = to;
    }
    pthread_mutex_unlock(&v->mu);
    pthread_mutex_unlock(&r->mu);
    for (uint64_t u = from; u < to; u++)
        pf_submit(v, r, u);
    return seq;
}

/* ----------------------------------------------------------------------------------------------------- */
/* readers                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

int vreader_open(struct ccr_volume *v, struct vreader *r, const char *blob, const struct vblobinfo *info,
                 struct ccr_err *err)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&v->mu);
    r->b = blob_get_locked(v, blob, info);
    pthread_mutex_unlock(&v->mu);
    if (!r->b)
        return ccr_err_set(err, -ENOMEM, blob, -1, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->closing, false);
    return 0;
}

uint64_t vreader_size(const struct vreader *r)
{
    return r->b->lay.plain;
}

void vreader_close(struct ccr_volume *v, struct vreader *r)
{
    if (!r->b)
        return;
    atomic_store(&r->closing, true);
    pthread_mutex_lock(&v->mu);
    while (r->pf_inflight > 0)
        pthread_cond_wait(&v->cv, &v->mu);
    if (r->seq)
        v->nseq--;
    blob_put_locked(v, r->b);
    pthread_mutex_unlock(&v->mu);
    pthread_mutex_destroy(&r->mu);
    r->b = NULL;
}

/*
 * Hands out the regions of e that overlap [*pos, end): copies them to *dst (advancing it), or, with ref,
 * describes them as iovecs into e's buffer. -EIO at a bad region; -E2BIG when ref is full.
 */
static int copy_out(struct ventry *e, uint64_t *pos, uint64_t end, uint8_t **dst, struct ccr_vref *ref,
                    struct ccr_err *err)
{
    const struct vlayout *l = &e->b->lay;
    for (uint64_t k = *pos / l->rsize; k < e->r0 + e->n && *pos < end; k++) {
        if (is_bad(e, k))
            return ccr_err_set(err, -EIO, e->b->name, (int64_t)vlay_stored_off(l, k),
                               "region %llu of blob %s failed authentication (tampered or corrupt data)",
                               (unsigned long long)k, e->b->name);
        uint64_t inner = *pos - k * l->rsize;
        uint64_t n = vlay_plain_len(l, k) - inner;
        if (n > end - *pos)
            n = end - *pos;
        uint8_t *src = e->buf + e->data_off + (k - e->r0) * l->stride + l->poff + inner;
        if (ref) {
            if (ref->niov == CCR_VREF_MAX_IOV)
                return -E2BIG;
            ref->iov[ref->niov++] = (struct iovec){.iov_base = src, .iov_len = (size_t)n};
        } else {
            memcpy(*dst, src, (size_t)n);
            *dst += n;
        }
        *pos += n;
    }
    return 0;
}

/* Reads [off, off + len) into buf, or, with ref, pins the entries and describes them (see copy_out). */
static ssize_t read_common(struct ccr_volume *v, struct vreader *r, uint8_t *buf, size_t len, uint64_t off,
                           struct ccr_vref *ref, struct ccr_err *err)
{
    struct vblob *b = r->b;
    const struct vlayout *l = &b->lay;
    if (atomic_load(&b->stale))
        return stale_error(v, b, err);
    if (off >= l->plain || len == 0)
        return 0;
    if (len > l->plain - off)
        len = (size_t)(l->plain - off);
    bool seq = detect(v, r, off, len);
    uint64_t pos = off, end = off + len;
    uint64_t klast = (end - 1) / l->rsize;
    bool waited = false;
    while (pos < end) {
        uint64_t k = pos / l->rsize;
        uint64_t ulast = unit_last_region(l, k);
        uint64_t kmax = seq || ulast < klast ? ulast : klast;
        struct ventry *e = NULL;
        int rc = ref && ref->npins == CCR_VREF_MAX_PINS ? -E2BIG : acquire(v, b, k, kmax, &e, &waited, err);
        if (rc == 0)
            rc = copy_out(e, &pos, end, &buf, ref, err);
        if (e) {
            uint64_t e_end = (e->r0 + e->n) * l->rsize;
            bool finished = seq && pos >= (e_end < l->plain ? e_end : l->plain);
            if (ref && rc == 0) {
                /* stays pinned until vreader_release, which then does what release() does */
                ref->done[ref->npins] = finished;
                ref->pins[ref->npins++] = e;
            } else {
                release(v, e, finished);
            }
        }
        if (rc) {
            if (ref)
                vreader_release(v, ref);
            return rc;
        }
    }
    atomic_fetch_add(waited ? &v->st.cache_misses : &v->st.cache_hits, 1);
    atomic_fetch_add(&v->st.bytes_read, len);
    return (ssize_t)len;
}

ssize_t vreader_read(struct ccr_volume *v, struct vreader *r, void *buf, size_t len, uint64_t off,
                     struct ccr_err *err)
{
    return read_common(v, r, buf, len, off, NULL, err);
}

/* Answers in place pin their entries until the reply is sent; a budget of only a few units needs its memory
 * back at once (or prefetched units would be evicted before they are read), so it copies. */
#define REF_MIN_UNITS 16

ssize_t vreader_read_ref(struct ccr_volume *v, struct vreader *r, size_t len, uint64_t off,
                         struct ccr_vref *ref, struct ccr_err *err)
{
    ref->niov = 0;
    ref->npins = 0;
    if (v->budget / vlay_unit_bytes(&r->b->lay) < REF_MIN_UNITS)
        return -ENOTSUP;
    return read_common(v, r, NULL, len, off, ref, err);
}

void vreader_release(struct ccr_volume *v, struct ccr_vref *ref)
{
    for (int i = 0; i < ref->npins; i++)
        release(v, ref->pins[i], ref->done[i]);
    ref->npins = 0;
    ref->niov = 0;
}
