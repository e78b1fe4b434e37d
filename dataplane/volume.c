/*
 * volume.c - a datastore opened for file access (ccr/volume.h): the volume, its namespace, and the public
 * entry points. The cache and reads live in vread.c, writes in vwrite.c (see volume_int.h).
 *
 * The namespace is a tree built from one paged listing of the volume's prefix (no delimiter: one request
 * per 5,000 blobs, whatever the depth), each directory's entries sorted by name. Sizes come from the
 * listing: ccr1 and none/cpk derive the plaintext size from the stored size; cleanroom-cse needs the
 * blob's 8-byte trailer, so its size is fetched the first time a stat, readdir or open needs it (readdir
 * fetches the unknown sizes of that directory in parallel) and kept in the tree. The tree is trusted for
 * list_ttl seconds; then the next call lists again in the background of the others, which keep using the
 * old tree (only the very first listing makes callers wait). Changes this volume makes itself (commits,
 * unlinks, renames) go straight into the tree, and also into a replay log while a listing runs, so a
 * listing that started before them cannot undo them. Directories made with mkdir, directories that
 * became empty because their last file was unlinked or renamed away, and files open for writing are
 * overlays that every new tree gets again.
 *
 * A read-only open pins the blob version (ETag) the tree has: if the blob changed since the listing, the
 * first get fails with -ESTALE; the volume then asks the store for the blob's properties and updates the
 * tree, so reopening the file reads the new version.
 *
 * Memory: one budget for the cache (vread.c), writers' unit buffers and staged files (vwrite.c); see
 * vmem_take_locked for who may evict and who waits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "codec_int.h"
#include "volume_int.h"

/* One file or directory of the tree. */
struct vnode {
    char *name;
    bool dir;
    bool local; /* a directory the store does not know (mkdir, or emptied here) */
    struct vnode **kids;
    size_t nkids, cap;
    /* files */
    bool has_blob; /* committed in the store (props valid) */
    struct ccr_blob_props props;
    uint64_t plain;
    bool plain_known, bad;
    struct vwriter *w; /* open for writing */
};

/* A change made while a listing runs, applied again to the new tree. */
struct vreplay {
    struct vreplay *next;
    bool remove;
    char *path;
    struct ccr_blob_props props;
    uint64_t plain;
};

struct ccr_vfile {
    struct ccr_volume *v;
    char *path;
    bool wr;
    struct vreader rd; /* read-only opens of committed files */
    struct vwriter *w; /* write opens, and read opens of a file being written */
    bool refreshed;    /* the tree was refreshed after an -ESTALE already */
    struct ccr_vfile *prev, *next;
};

/* ----------------------------------------------------------------------------------------------------- */
/* small things                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

double vol_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t vol_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

char *vol_blob_name(const struct ccr_volume *v, const char *path)
{
    size_t n = strlen(path);
    char *s = ccr_malloc(v->plen + n + 1);
    if (!s)
        return NULL;
    memcpy(s, v->prefix, v->plen);
    memcpy(s + v->plen, path, n + 1);
    return s;
}

/* Puts the path into err->where (messages name the blob themselves). */
static int at_path(struct ccr_err *err, const char *path, int rc)
{
    if (err && rc < 0) {
        snprintf(err->where, sizeof(err->where), "%s", path[0] ? path : "/");
        if (err->code == 0)
            err->code = rc;
    }
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* worker threads and AES contexts                                                                       */
/* ----------------------------------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct ccr_volume *v = arg;
    pthread_mutex_lock(&v->q_mu);
    for (;;) {
        while (!v->q_head && !v->q_stop)
            pthread_cond_wait(&v->q_cv, &v->q_mu);
        struct vjob *j = v->q_head;
        if (!j)
            break;
        v->q_head = j->next;
        if (!v->q_head)
            v->q_tail = NULL;
        pthread_mutex_unlock(&v->q_mu);
        j->run(j);
        pthread_mutex_lock(&v->q_mu);
    }
    pthread_mutex_unlock(&v->q_mu);
    return NULL;
}

void vol_submit(struct ccr_volume *v, struct vjob *j)
{
    j->next = NULL;
    pthread_mutex_lock(&v->q_mu);
    if (v->q_tail)
        v->q_tail->next = j;
    else
        v->q_head = j;
    v->q_tail = j;
    pthread_cond_signal(&v->q_cv);
    pthread_mutex_unlock(&v->q_mu);
}

struct ccr_aead *vol_aead_get(struct ccr_volume *v)
{
    struct ccr_aead *a = NULL;
    pthread_mutex_lock(&v->aead_mu);
    if (v->n_aeads)
        a = v->aeads[--v->n_aeads];
    pthread_mutex_unlock(&v->aead_mu);
    if (!a && ccr_aead_create(&a) != 0)
        return NULL;
    return a;
}

void vol_aead_put(struct ccr_volume *v, struct ccr_aead *a)
{
    pthread_mutex_lock(&v->aead_mu);
    if (v->n_aeads == v->cap_aeads) {
        size_t ncap = v->cap_aeads ? v->cap_aeads * 2 : 16;
        struct ccr_aead **p = ccr_realloc(v->aeads, ncap * sizeof(*p));
        if (p) {
            v->aeads = p;
            v->cap_aeads = ncap;
        }
    }
    if (v->n_aeads < v->cap_aeads) {
        v->aeads[v->n_aeads++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&v->aead_mu);
    ccr_aead_destroy(a);
}

#ifndef VBUF_MAP
#if defined(__SANITIZE_ADDRESS__)
#define VBUF_MAP 0
#else
#define VBUF_MAP 1
#endif
#endif
#define VBUF_MIN       ((size_t)256 << 10) /* smaller buffers come from the allocator */
#define VBUF_SPARE_MAX ((uint64_t)32 << 20)

static size_t vbuf_len(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/*
 * Maps len bytes for a payload buffer, populated at once: one call instead of a page fault per 4 KiB, which a
 * cold sequential read of a file larger than the budget otherwise pays for every unit it caches. (Huge pages
 * were tried: with the usual defrag=madvise they stall in direct compaction and make reads erratic.)
 */
static uint8_t *vbuf_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

uint8_t *vbuf_get(struct ccr_volume *v, size_t n)
{
    if (!VBUF_MAP || n < VBUF_MIN)
        return ccr_malloc(n);
    size_t len = vbuf_len(n);
    pthread_mutex_lock(&v->buf_mu);
    for (size_t i = 0; i < v->nspare; i++) {
        if (v->spare[i].n == len) {
            uint8_t *p = v->spare[i].p;
            v->spare_bytes -= len;
            v->spare[i] = v->spare[--v->nspare];
            pthread_mutex_unlock(&v->buf_mu);
            return p;
        }
    }
    pthread_mutex_unlock(&v->buf_mu);
    return vbuf_map(len);
}

void vbuf_put(struct ccr_volume *v, uint8_t *p, size_t n)
{
    if (!p)
        return;
    if (!VBUF_MAP || n < VBUF_MIN) {
        ccr_wipe(p, n); /* it held plaintext, and the allocator hands it to anyone */
        ccr_free(p);
        return;
    }
    /* Mapped buffers are not wiped: a spare is only ever reused as a payload buffer here, and the
     * kernel zeroes unmapped pages before anybody else gets them. */
    size_t len = vbuf_len(n);
    uint64_t max = v->budget / 8 < VBUF_SPARE_MAX ? v->budget / 8 : VBUF_SPARE_MAX;
    pthread_mutex_lock(&v->buf_mu);
    /* a few spares: enough for a steady stream of units to reuse them, outside the budget but small */
    if (v->nspare < sizeof(v->spare) / sizeof(v->spare[0]) && v->spare_bytes + len <= max) {
        v->spare[v->nspare].p = p;
        v->spare[v->nspare++].n = len;
        v->spare_bytes += len;
        p = NULL;
    }
    pthread_mutex_unlock(&v->buf_mu);
    if (p)
        munmap(p, len);
}

static void vbuf_fini(struct ccr_volume *v)
{
    for (size_t i = 0; i < v->nspare; i++)
        munmap(v->spare[i].p, v->spare[i].n);
    v->nspare = 0;
    v->spare_bytes = 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* the budget                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * Who may hold what: writers' unit buffers at most half the budget, staged files at most a quarter, the
 * cache the rest and whatever those leave unused (taking memory evicts it). So readers always find at
 * least a quarter of the budget, and writers, who cannot give memory back before an upload finishes,
 * never wait here: they loop in vwrite.c, where they can push their own uploads on.
 */
int vmem_take_locked(struct ccr_volume *v, uint64_t n, enum vmem_kind kind)
{
    for (;;) {
        if (kind == VMEM_WRITE && v->used_write > 0 && v->used_write + n > v->budget / 2)
            return -EAGAIN;
        if (kind == VMEM_STAGE && v->used_stage + n > v->budget / 4)
            return -EAGAIN;
        if (v->used + n <= v->budget || v->used == 0)
            break;
        int ev = vcache_evict_one(v, kind == VMEM_PREFETCH);
        if (ev > 0)
            continue;
        if (kind != VMEM_DEMAND)
            return -EAGAIN;
        if (ev < 0)
            break; /* only writers and staging hold memory: a reader goes over rather than hang */
        pthread_cond_wait(&v->cv, &v->mu);
    }
    v->used += n;
    if (kind == VMEM_WRITE)
        v->used_write += n;
    else if (kind == VMEM_STAGE)
        v->used_stage += n;
    if (v->used > v->peak)
        v->peak = v->used;
    return 0;
}

void vmem_give_locked(struct ccr_volume *v, uint64_t n, enum vmem_kind kind)
{
    v->used = n > v->used ? 0 : v->used - n;
    if (kind == VMEM_WRITE)
        v->used_write = n > v->used_write ? 0 : v->used_write - n;
    else if (kind == VMEM_STAGE)
        v->used_stage = n > v->used_stage ? 0 : v->used_stage - n;
    pthread_cond_broadcast(&v->cv);
}

int vmem_take(struct ccr_volume *v, uint64_t n, enum vmem_kind kind)
{
    pthread_mutex_lock(&v->mu);
    int rc = vmem_take_locked(v, n, kind);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

void vmem_give(struct ccr_volume *v, uint64_t n, enum vmem_kind kind)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&v->mu);
    vmem_give_locked(v, n, kind);
    pthread_mutex_unlock(&v->mu);
}

/* ----------------------------------------------------------------------------------------------------- */
/* the tree                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

static struct vnode *node_new(const char *name, size_t len, bool dir)
{
    struct vnode *n = ccr_calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strndup(name, len);
    if (!n->name) {
        ccr_free(n);
        return NULL;
    }
    n->dir = dir;
    return n;
}

static void node_free(struct vnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    ccr_free(n->kids);
    free(n->name);
    ccr_free(n);
}

/* Position of name[0..len) among d's entries: >= 0 found, else -(insertion point) - 1. */
static ssize_t kid_index(const struct vnode *d, const char *name, size_t len)
{
    size_t lo = 0, hi = d->nkids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *k = d->kids[mid]->name;
        int c = strncmp(k, name, len);
        if (c == 0)
            c = k[len] ? 1 : 0;
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ssize_t)lo - 1;
}

static int kid_insert(struct vnode *d, size_t pos, struct vnode *k)
{
    if (d->nkids == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 4;
        struct vnode **p = ccr_realloc(d->kids, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        d->kids = p;
        d->cap = ncap;
    }
    memmove(d->kids + pos + 1, d->kids + pos, (d->nkids - pos) * sizeof(*d->kids));
    d->kids[pos] = k;
    d->nkids++;
    return 0;
}

static void kid_remove(struct vnode *d, size_t pos)
{
    memmove(d->kids + pos, d->kids + pos + 1, (d->nkids - pos - 1) * sizeof(*d->kids));
    d->nkids--;
}

static size_t comp_len(const char *p)
{
    const char *s = strchr(p, '/');
    return s ? (size_t)(s - p) : strlen(p);
}

static struct vnode *ns_lookup(struct vnode *root, const char *path)
{
    struct vnode *n = root;
    const char *p = path;
    while (n && *p) {
        if (!n->dir)
            return NULL;
        size_t len = comp_len(p);
        ssize_t i = kid_index(n, p, len);
        n = i >= 0 ? n->kids[i] : NULL;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

/*
 * The entry for path, creating it (and missing parents, as directories) if absent. A directory is
 * wanted when dir; a file in the way of a directory becomes one (force: the listing, where a blob "a" and
 * a blob "a/b" can both exist: the directory wins). NULL on -ENOMEM or a conflict.
 */
static struct vnode *ns_make(struct vnode *root, const char *path, bool dir, bool local, bool force)
{
    struct vnode *n = root;
    const char *p = path;
    while (*p) {
        size_t len = comp_len(p);
        bool last = p[len] == '\0';
        bool want_dir = !last || dir;
        ssize_t i = kid_index(n, p, len);
        struct vnode *k;
        if (i >= 0) {
            k = n->kids[i];
            if (k->dir != want_dir) {
                if (!want_dir || !force || k->w)
                    return NULL;
                ccr_log(CCR_LOG_WARN, "blob %.*s is hidden by a directory of the same name",
                        (int)(p + len - path), path);
                k->dir = true;
                k->has_blob = false;
            }
        } else {
            k = node_new(p, len, want_dir);
            if (!k || kid_insert(n, (size_t)(-i - 1), k) != 0) {
                node_free(k);
                return NULL;
            }
            k->local = want_dir && local;
        }
        n = k;
        p += len;
        if (*p == '/')
            p++;
    }
    return n;
}

/* Removes the entry at path (and frees it); an emptied parent directory stays, as a local one. */
static void ns_remove(struct ccr_volume *v, struct vnode *root, const char *path, bool keep_parent);

static void set_blob(const struct ccr_volume *v, struct vnode *n, const struct ccr_blob_props *props,
                     const uint64_t *plain)
{
    n->has_blob = true;
    n->props = *props;
    n->bad = false;
    if (plain) {
        n->plain = *plain;
        n->plain_known = true;
        return;
    }
    int rc = vblob_plain_from_stored(v, props->size, &n->plain);
    n->plain_known = rc == 0;
    n->bad = rc == -EBADMSG;
    if (n->bad)
        n->plain = 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* local directories, replay, overlays (ns_mu)                                                           */
/* ----------------------------------------------------------------------------------------------------- */

static void local_dir_add(struct ccr_volume *v, const char *path)
{
    for (size_t i = 0; i < v->n_local_dirs; i++)
        if (strcmp(v->local_dirs[i], path) == 0)
            return;
    if (v->n_local_dirs == v->cap_local_dirs) {
        size_t ncap = v->cap_local_dirs ? v->cap_local_dirs * 2 : 8;
        char **p = ccr_realloc(v->local_dirs, ncap * sizeof(*p));
        if (!p)
            return;
        v->local_dirs = p;
        v->cap_local_dirs = ncap;
    }
    char *s = strdup(path);
    if (s)
        v->local_dirs[v->n_local_dirs++] = s;
}

static void local_dir_remove(struct ccr_volume *v, const char *path)
{
    for (size_t i = 0; i < v->n_local_dirs; i++) {
        if (strcmp(v->local_dirs[i], path) == 0) {
            free(v->local_dirs[i]);
            v->local_dirs[i] = v->local_dirs[--v->n_local_dirs];
            return;
        }
    }
}

static void ns_remove(struct ccr_volume *v, struct vnode *root, const char *path, bool keep_parent)
{
    const char *slash = strrchr(path, '/');
    struct vnode *parent = root;
    char *ppath = NULL;
    if (slash) {
        ppath = strndup(path, (size_t)(slash - path));
        parent = ppath ? ns_lookup(root, ppath) : NULL;
    }
    const char *name = slash ? slash + 1 : path;
    ssize_t i = parent && parent->dir ? kid_index(parent, name, strlen(name)) : -1;
    if (i >= 0) {
        node_free(parent->kids[i]);
        kid_remove(parent, (size_t)i);
        if (keep_parent && parent != root && parent->nkids == 0 && !parent->local) {
            parent->local = true;
            local_dir_add(v, ppath);
        }
    }
    free(ppath);
}

static void replay_add(struct ccr_volume *v, bool remove, const char *path,
                       const struct ccr_blob_props *props, uint64_t plain)
{
    if (!v->listing)
        return;
    struct vreplay *r = ccr_calloc(1, sizeof(*r));
    if (!r)
        return;
    r->path = strdup(path);
    if (!r->path) {
        ccr_free(r);
        return;
    }
    r->remove = remove;
    if (props)
        r->props = *props;
    r->plain = plain;
    *v->replay_tail = r;
    v->replay_tail = &r->next;
}

static void replay_free(struct ccr_volume *v)
{
    while (v->replay) {
        struct vreplay *r = v->replay;
        v->replay = r->next;
        free(r->path);
        ccr_free(r);
    }
    v->replay_tail = &v->replay;
}

/* Gives a fresh tree what this volume knows better than the listing it came from. */
static void apply_overlays(struct ccr_volume *v, struct vnode *root)
{
    for (struct vreplay *r = v->replay; r; r = r->next) {
        if (r->remove) {
            ns_remove(v, root, r->path, false);
            continue;
        }
        struct vnode *n = ns_make(root, r->path, false, true, false);
        if (n)
            set_blob(v, n, &r->props, &r->plain);
    }
    for (size_t i = 0; i < v->n_local_dirs; i++) {
        struct vnode *n = ns_make(root, v->local_dirs[i], true, true, false);
        if (n && n->nkids == 0)
            n->local = true;
    }
    for (struct vwriter *w = v->writers; w; w = w->next) {
        if (atomic_load(&w->orphan))
            continue;
        struct vnode *n = ns_make(root, w->path, false, true, false);
        if (n)
            n->w = w;
    }
}

/* ----------------------------------------------------------------------------------------------------- */
/* listing                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static int tree_add_item(struct ccr_volume *v, struct vnode *root, const struct ccr_blob_item *it)
{
    if (it->is_prefix || strncmp(it->name, v->prefix, v->plen) != 0)
        return 0;
    const char *rel = it->name + v->plen;
    if (ccr_blob_name_check(rel, NULL) != 0) {
        ccr_log(CCR_LOG_DEBUG, "blob %s is not a valid path below the volume; not shown", it->name);
        return 0;
    }
    struct vnode *n = ns_make(root, rel, false, false, true);
    if (!n) {
        if (ns_lookup(root, rel))
            return 0; /* a directory of that name: the directory wins */
        return -ENOMEM;
    }
    set_blob(v, n, &it->props, NULL);
    if (n->bad)
        ccr_log(CCR_LOG_WARN,
                "blob %s: its size (%llu bytes) fits no %s blob of the datastore's region size; "
                "reading it fails with EIO",
                it->name, (unsigned long long)it->props.size, ccr_mode_name(v->mode));
    return 0;
}

/* One paged listing of the whole prefix into a new tree. */
static int list_tree(struct ccr_volume *v, struct vnode **out, struct ccr_err *err)
{
    struct vnode *root = node_new("", 0, true);
    if (!root)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    char *marker = NULL;
    int rc = 0;
    do {
        struct ccr_blob_page page = {0};
        rc = ccr_store_list(v->store, v->plen ? v->prefix : NULL, NULL, marker, 0, &page, err);
        ccr_free(marker);
        marker = NULL;
        atomic_fetch_add(&v->st.list_requests, 1);
        if (rc) {
            ccr_err_where(err, ccr_store_url(v->store));
            break;
        }
        for (size_t i = 0; i < page.count && rc == 0; i++)
            rc = tree_add_item(v, root, &page.items[i]);
        if (rc == 0 && page.next_marker && !(marker = strdup(page.next_marker)))
            rc = -ENOMEM;
        ccr_blob_page_fini(&page);
        if (rc == -ENOMEM)
            ccr_err_set(err, rc, NULL, -1, "out of memory listing the store");
    } while (rc == 0 && marker);
    ccr_free(marker);
    if (rc) {
        node_free(root);
        return rc;
    }
    *out = root;
    return 0;
}

static int relist(struct ccr_volume *v, struct ccr_err *err)
{
    pthread_mutex_lock(&v->ns_mu);
    if (v->listing) {
        /* someone lists already: the first listing is waited for, a refresh is not */
        while (v->listing && !v->listed)
            pthread_cond_wait(&v->ns_cv, &v->ns_mu);
        bool ok = v->listed;
        pthread_mutex_unlock(&v->ns_mu);
        return ok ? 0 : ccr_err_set(err, -EAGAIN, ccr_store_url(v->store), -1, "the listing failed");
    }
    v->listing = true;
    replay_free(v);
    pthread_mutex_unlock(&v->ns_mu);

    struct vnode *root = NULL;
    int rc = list_tree(v, &root, err);

    pthread_mutex_lock(&v->ns_mu);
    if (rc == 0) {
        apply_overlays(v, root);
        node_free(v->root);
        v->root = root;
        v->listed = true;
        v->list_time = vol_now();
    } else if (v->listed) {
        ccr_log(CCR_LOG_WARN, "%s: refreshing the listing failed (%s); using the previous one",
                ccr_store_url(v->store), err ? err->msg : pl_strerror(rc));
        /* try again in a few seconds, not on every call */
        v->list_time = vol_now() - (v->list_ttl > 5 ? v->list_ttl - 5 : 0);
        rc = 0;
    }
    replay_free(v);
    v->listing = false;
    pthread_cond_broadcast(&v->ns_cv);
    pthread_mutex_unlock(&v->ns_mu);
    return rc;
}

/* Lists if the tree is missing or older than list_ttl. */
static int ns_ensure(struct ccr_volume *v, struct ccr_err *err)
{
    pthread_mutex_lock(&v->ns_mu);
    bool fresh = v->listed && (v->list_ttl < 0 || vol_now() - v->list_time < v->list_ttl);
    pthread_mutex_unlock(&v->ns_mu);
    return fresh ? 0 : relist(v, err);
}

/* After -ESTALE: what the store has now under that name goes into the tree. */
static void refresh_blob(struct ccr_volume *v, const char *path, const char *old_etag)
{
    char *blob = vol_blob_name(v, path);
    if (!blob)
        return;
    struct ccr_blob_props p;
    int rc = ccr_store_props(v->store, blob, &p, NULL);
    ccr_free(blob);
    pthread_mutex_lock(&v->ns_mu);
    struct vnode *n = ns_lookup(v->root, path);
    if (n && !n->dir && n->has_blob && strcmp(n->props.etag, old_etag) == 0) {
        if (rc == 0) {
            set_blob(v, n, &p, NULL);
            replay_add(v, false, path, &p, n->plain);
        } else if (rc == -ENOENT && !n->w) {
            ns_remove(v, v->root, path, true);
            replay_add(v, true, path, NULL, 0);
        }
    }
    pthread_mutex_unlock(&v->ns_mu);
}

/* ----------------------------------------------------------------------------------------------------- */
/* stat and readdir                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

static void node_stat(const struct ccr_volume *v, const struct vnode *n, struct ccr_vstat *out)
{
    memset(out, 0, sizeof(*out));
    out->is_dir = n->dir;
    out->mtime_ns = v->open_ns;
    if (n->dir)
        return;
    if (n->w) {
        out->size = atomic_load(&n->w->size);
        out->mtime_ns = atomic_load(&n->w->mtime_ns);
        return;
    }
    out->size = n->plain_known ? n->plain : 0;
    out->mtime_ns = n->props.mtime_ns;
}

static bool needs_size(const struct vnode *n)
{
    return !n->dir && !n->w && n->has_blob && !n->plain_known && !n->bad;
}

/* A cleanroom-cse size to look up: the blob's trailer. */
struct vsize {
    struct vjob j;
    struct ccr_volume *v;
    char *path, *blob;
    struct vblobinfo info;
    uint64_t plain;
    int rc;
    struct ccr_err err;
    struct vsize_batch *batch;
    size_t owner; /* readdir: the entry it belongs to */
};

struct vsize_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
};

static void size_lookup(struct vsize *s)
{
    ccr_err_clear(&s->err);
    s->rc = vblob_plain_size(s->v, s->blob, &s->info, &s->plain, &s->err);
}

static void size_job(struct vjob *j)
{
    struct vsize *s = (struct vsize *)j;
    size_lookup(s);
    pthread_mutex_lock(&s->batch->mu);
    if (--s->batch->pending == 0)
        pthread_cond_signal(&s->batch->cv);
    pthread_mutex_unlock(&s->batch->mu);
}

static int size_prepare(struct ccr_volume *v, const struct vnode *n, const char *path, struct vsize *s)
{
    memset(s, 0, sizeof(*s));
    s->v = v;
    s->path = strdup(path);
    s->blob = vol_blob_name(v, path);
    snprintf(s->info.etag, sizeof(s->info.etag), "%s", n->props.etag);
    s->info.stored = n->props.size;
    return s->path && s->blob ? 0 : -ENOMEM;
}

/* Looks the sizes up (in parallel on the workers when several) and records them in the tree. */
static void size_resolve(struct ccr_volume *v, struct vsize *s, size_t n)
{
    if (n == 1) {
        size_lookup(&s[0]);
    } else if (n > 1) {
        struct vsize_batch batch = {.pending = n};
        pthread_mutex_init(&batch.mu, NULL);
        pthread_cond_init(&batch.cv, NULL);
        for (size_t i = 0; i < n; i++) {
            s[i].batch = &batch;
            s[i].j.run = size_job;
            vol_submit(v, &s[i].j);
        }
        pthread_mutex_lock(&batch.mu);
        while (batch.pending > 0)
            pthread_cond_wait(&batch.cv, &batch.mu);
        pthread_mutex_unlock(&batch.mu);
        pthread_cond_destroy(&batch.cv);
        pthread_mutex_destroy(&batch.mu);
    }
    pthread_mutex_lock(&v->ns_mu);
    for (size_t i = 0; i < n; i++) {
        struct vnode *nd = ns_lookup(v->root, s[i].path);
        if (!nd || nd->dir || !nd->has_blob || strcmp(nd->props.etag, s[i].info.etag) != 0)
            continue;
        if (s[i].rc == 0) {
            nd->plain = s[i].plain;
            nd->plain_known = true;
        } else if (s[i].rc == -EIO) {
            nd->bad = true;
        }
    }
    pthread_mutex_unlock(&v->ns_mu);
}

static void size_free(struct vsize *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].path);
        ccr_free(s[i].blob);
    }
}

int ccr_volume_stat(struct ccr_volume *v, const char *path, struct ccr_vstat *out, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ns_ensure(v, err);
    if (rc)
        return rc;
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&v->ns_mu);
        struct vnode *n = ns_lookup(v->root, path);
        if (!n) {
            pthread_mutex_unlock(&v->ns_mu);
            return at_path(err, path, ccr_err_set(err, -ENOENT, path, -1, "no such file or directory"));
        }
        if (!needs_size(n) || attempt == 2) {
            node_stat(v, n, out);
            pthread_mutex_unlock(&v->ns_mu);
            return 0;
        }
        struct vsize s;
        rc = size_prepare(v, n, path, &s);
        pthread_mutex_unlock(&v->ns_mu);
        if (rc == 0)
            size_resolve(v, &s, 1);
        if (rc == 0 && s.rc == -ESTALE)
            refresh_blob(v, path, s.info.etag);
        else if (rc == 0 && s.rc && s.rc != -EIO)
            rc = s.rc;
        if (rc && s.err.code && err)
            *err = s.err;
        size_free(&s, 1);
        if (rc)
            return at_path(err, path, rc);
    }
}

struct vdirent {
    char *name;
    struct ccr_vstat st;
};

int ccr_volume_readdir(struct ccr_volume *v, const char *path, ccr_volume_dir_cb cb, void *cb_arg,
                       struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path || !cb)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ns_ensure(v, err);
    if (rc)
        return rc;
    /* Snapshot the directory, then call back without the lock (the callback may call us). */
    struct vdirent *ents = NULL;
    struct vsize *sz = NULL;
    size_t n = 0, nsz = 0;
    pthread_mutex_lock(&v->ns_mu);
    struct vnode *d = ns_lookup(v->root, path);
    if (!d || !d->dir) {
        pthread_mutex_unlock(&v->ns_mu);
        return at_path(err, path,
                       d ? ccr_err_set(err, -ENOTDIR, path, -1, "not a directory")
                         : ccr_err_set(err, -ENOENT, path, -1, "no such directory"));
    }
    ents = ccr_calloc(d->nkids + 1, sizeof(*ents));
    sz = ccr_calloc(d->nkids + 1, sizeof(*sz));
    rc = ents && sz ? 0 : -ENOMEM;
    for (size_t i = 0; i < d->nkids && rc == 0; i++) {
        struct vnode *k = d->kids[i];
        ents[n].name = strdup(k->name);
        rc = ents[n].name ? 0 : -ENOMEM;
        node_stat(v, k, &ents[n].st);
        n++;
        if (rc == 0 && needs_size(k)) {
            char *kp = path[0] ? NULL : strdup(k->name);
            if (path[0] && asprintf(&kp, "%s/%s", path, k->name) < 0)
                kp = NULL;
            rc = kp ? size_prepare(v, k, kp, &sz[nsz]) : -ENOMEM;
            free(kp);
            sz[nsz++].owner = n - 1;
        }
    }
    pthread_mutex_unlock(&v->ns_mu);
    if (rc == 0 && nsz) {
        size_resolve(v, sz, nsz);
        for (size_t i = 0; i < nsz; i++)
            if (sz[i].rc == 0)
                ents[sz[i].owner].st.size = sz[i].plain;
    }
    if (rc)
        ccr_err_set(err, rc, path, -1, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(cb_arg, ents[i].name, &ents[i].st);
    for (size_t i = 0; i < n; i++)
        free(ents[i].name);
    if (sz)
        size_free(sz, nsz);
    ccr_free(sz);
    ccr_free(ents);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* namespace changes                                                                                     */
/* ----------------------------------------------------------------------------------------------------- */

/* The directory that would hold path: 0, -ENOENT or -ENOTDIR (ns_mu held). */
static int parent_ok(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    char *pp = strndup(path, (size_t)(slash - path));
    if (!pp)
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    struct vnode *p = ns_lookup(v->root, pp);
    free(pp);
    if (!p)
        return ccr_err_set(err, -ENOENT, path, -1, "the parent directory does not exist");
    if (!p->dir)
        return ccr_err_set(err, -ENOTDIR, path, -1, "a component of the path is not a directory");
    return 0;
}

static int check_new_name(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    if (!path[0])
        return ccr_err_set(err, -EEXIST, "/", -1, "the root directory");
    char *blob = vol_blob_name(v, path);
    if (!blob)
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_blob_name_check(blob, &e);
    ccr_free(blob);
    if (rc)
        return ccr_err_set(err, -EINVAL, path, -1, "not a valid name in the store: %s", e.msg);
    return 0;
}

static int ro_check(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    if (!v->writable)
        return at_path(err, path, ccr_err_set(err, -EROFS, path, -1, "the volume is read-only"));
    return ns_ensure(v, err);
}

int ccr_volume_mkdir(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ro_check(v, path, err);
    if (rc == 0)
        rc = check_new_name(v, path, err);
    if (rc)
        return at_path(err, path, rc);
    pthread_mutex_lock(&v->ns_mu);
    rc = parent_ok(v, path, err);
    if (rc == 0 && ns_lookup(v->root, path))
        rc = ccr_err_set(err, -EEXIST, path, -1, "already exists");
    if (rc == 0) {
        struct vnode *n = ns_make(v->root, path, true, true, false);
        if (n) {
            n->local = true;
            local_dir_add(v, path);
        } else {
            rc = ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
        }
    }
    pthread_mutex_unlock(&v->ns_mu);
    return at_path(err, path, rc);
}

int ccr_volume_rmdir(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ro_check(v, path, err);
    if (rc)
        return at_path(err, path, rc);
    if (!path[0])
        return at_path(err, path, ccr_err_set(err, -EBUSY, "/", -1, "cannot remove the root directory"));
    pthread_mutex_lock(&v->ns_mu);
    struct vnode *n = ns_lookup(v->root, path);
    if (!n)
        rc = ccr_err_set(err, -ENOENT, path, -1, "no such directory");
    else if (!n->dir)
        rc = ccr_err_set(err, -ENOTDIR, path, -1, "not a directory");
    else if (n->nkids)
        rc = ccr_err_set(err, -ENOTEMPTY, path, -1, "the directory is not empty");
    if (rc == 0) {
        local_dir_remove(v, path);
        ns_remove(v, v->root, path, true);
    }
    pthread_mutex_unlock(&v->ns_mu);
    return at_path(err, path, rc);
}

/* Waits for a writer's commit in progress, if any: after this, an orphan writer commits nothing. */
static void writer_drain(struct vwriter *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void writer_unref(struct ccr_volume *v, struct vwriter *w);

int ccr_volume_unlink(struct ccr_volume *v, const char *path, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ro_check(v, path, err);
    if (rc)
        return at_path(err, path, rc);
    pthread_mutex_lock(&v->ns_mu);
    struct vnode *n = ns_lookup(v->root, path);
    if (!n || n->dir) {
        pthread_mutex_unlock(&v->ns_mu);
        return at_path(err, path,
                       n ? ccr_err_set(err, -EISDIR, path, -1, "is a directory")
                         : ccr_err_set(err, -ENOENT, path, -1, "no such file"));
    }
    struct vwriter *w = n->w;
    if (w) {
        atomic_store(&w->orphan, true);
        w->refs++;
    }
    pthread_mutex_unlock(&v->ns_mu);
    if (w)
        writer_drain(w);
    char *blob = vol_blob_name(v, path);
    rc = blob ? ccr_store_delete(v->store, blob, err) : ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    ccr_free(blob);
    if (rc == -ENOENT)
        rc = 0; /* never committed, or gone already: either way it is not there */
    pthread_mutex_lock(&v->ns_mu);
    if (rc == 0) {
        n = ns_lookup(v->root, path);
        if (n && !n->dir && n->w == w)
            ns_remove(v, v->root, path, true);
        replay_add(v, true, path, NULL, 0);
    } else if (w) {
        atomic_store(&w->orphan, false);
    }
    pthread_mutex_unlock(&v->ns_mu);
    if (w)
        writer_unref(v, w);
    return at_path(err, path, rc);
}

/* What rename learns of its source under ns_mu. */
struct rsrc {
    bool has_blob;
    char etag[CCR_ETAG_MAX];
    uint64_t stored, plain;
    bool plain_known;
    struct vwriter *w, *wt; /* the source's writer; the target's (replaced) */
};

static int rename_check(struct ccr_volume *v, const char *from, const char *to, struct rsrc *s,
                        struct ccr_err *err)
{
    struct vnode *nf = ns_lookup(v->root, from);
    if (!nf)
        return ccr_err_set(err, -ENOENT, from, -1, "no such file");
    if (nf->dir)
        return ccr_err_set(err, -EXDEV, from, -1,
                           "directories cannot be renamed (each blob under it would be copied): copy the "
                           "files instead");
    int rc = parent_ok(v, to, err);
    if (rc)
        return rc;
    struct vnode *nt = ns_lookup(v->root, to);
    if (nt && nt->dir)
        return ccr_err_set(err, -EISDIR, to, -1, "is a directory");
    s->has_blob = nf->has_blob;
    snprintf(s->etag, sizeof(s->etag), "%s", nf->props.etag);
    s->stored = nf->props.size;
    s->plain = nf->plain;
    s->plain_known = nf->plain_known;
    s->w = nf->w;
    s->wt = nt ? nt->w : NULL;
    if (s->w)
        s->w->refs++;
    if (s->wt) {
        s->wt->refs++;
        atomic_store(&s->wt->orphan, true); /* replaced: it must never commit over the new content */
    }
    return 0;
}

/* The tree after a rename: the target gets the source's blob and writer. */
static void rename_tree(struct ccr_volume *v, const char *from, const char *to, const struct rsrc *s,
                        const struct ccr_blob_props *copied)
{
    struct vnode *nt = ns_make(v->root, to, false, false, false);
    if (nt) {
        nt->has_blob = false;
        nt->plain_known = false;
        if (copied) {
            uint64_t plain = s->plain;
            set_blob(v, nt, copied, s->plain_known ? &plain : NULL);
            replay_add(v, false, to, copied, nt->plain);
        }
        nt->w = s->w;
    }
    ns_remove(v, v->root, from, true);
    replay_add(v, true, from, NULL, 0);
    if (!copied && !s->w)
        replay_add(v, true, to, NULL, 0);
}

int ccr_volume_rename(struct ccr_volume *v, const char *from, const char *to, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !from || !to)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = ro_check(v, from, err);
    if (rc == 0)
        rc = check_new_name(v, to, err);
    if (rc == 0 && !from[0])
        rc = ccr_err_set(err, -EBUSY, "/", -1, "cannot rename the root directory");
    if (rc)
        return at_path(err, from, rc);
    if (strcmp(from, to) == 0)
        return 0;
    struct rsrc s = {0};
    pthread_mutex_lock(&v->ns_mu);
    rc = rename_check(v, from, to, &s, err);
    pthread_mutex_unlock(&v->ns_mu);
    if (rc)
        return at_path(err, from, rc);
    if (s.wt)
        writer_drain(s.wt);

    char *bf = vol_blob_name(v, from), *bt = vol_blob_name(v, to);
    struct ccr_blob_props copied;
    bool did_copy = false;
    if (!bf || !bt)
        rc = ccr_err_set(err, -ENOMEM, from, -1, "out of memory");
    if (s.w)
        pthread_mutex_lock(&s.w->mu);
    /* Blocks already uploaded belong to the old name: commit them there first, then copy. */
    if (rc == 0 && s.w && vwriter_streaming_locked(s.w))
        rc = vwriter_flush_locked(s.w, err);
    const char *etag = s.w ? vwriter_clean_etag_locked(s.w) : (s.has_blob ? s.etag : "");
    if (rc == 0 && etag[0]) {
        rc = vblob_copy(v, bf, bt, etag, &copied, err);
        did_copy = rc == 0;
    }
    if (rc == 0) {
        int drc = ccr_store_delete(v->store, bf, NULL);
        if (drc && drc != -ENOENT)
            ccr_log(CCR_LOG_WARN, "%s: renamed to %s, but the old blob could not be deleted: %s", bf, bt,
                    pl_strerror(drc));
    }
    if (rc == 0 && s.w)
        rc = vwriter_retarget_locked(s.w, to, did_copy ? &copied : NULL, s.plain);
    if (rc == 0) {
        pthread_mutex_lock(&v->ns_mu);
        rename_tree(v, from, to, &s, did_copy ? &copied : NULL);
        pthread_mutex_unlock(&v->ns_mu);
    } else if (s.wt) {
        atomic_store(&s.wt->orphan, false);
    }
    if (s.w)
        pthread_mutex_unlock(&s.w->mu);
    if (s.w)
        writer_unref(v, s.w);
    if (s.wt)
        writer_unref(v, s.wt);
    ccr_free(bf);
    ccr_free(bt);
    return at_path(err, from, rc);
}

void vns_committed(struct ccr_volume *v, struct vwriter *w, const struct ccr_blob_props *props,
                   uint64_t plain)
{
    pthread_mutex_lock(&v->ns_mu);
    if (!atomic_load(&w->orphan)) {
        struct vnode *n = ns_lookup(v->root, w->path);
        if (!n)
            n = ns_make(v->root, w->path, false, true, false);
        if (n && !n->dir) {
            set_blob(v, n, props, &plain);
            n->w = w;
        }
        replay_add(v, false, w->path, props, plain);
    }
    pthread_mutex_unlock(&v->ns_mu);
}

/* ----------------------------------------------------------------------------------------------------- */
/* files                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

/* Drops a vfile's reference to a writer; the last one takes it out of the tree and frees it. */
static void writer_unref(struct ccr_volume *v, struct vwriter *w)
{
    pthread_mutex_lock(&v->ns_mu);
    bool last = --w->refs == 0;
    if (last) {
        struct vnode *n = atomic_load(&w->orphan) ? NULL : ns_lookup(v->root, w->path);
        if (n && !n->dir && n->w == w) {
            n->w = NULL;
            if (!n->has_blob)
                ns_remove(v, v->root, w->path, true); /* never committed: it never existed */
        }
        if (w->prev)
            w->prev->next = w->next;
        else
            v->writers = w->next;
        if (w->next)
            w->next->prev = w->prev;
    }
    pthread_mutex_unlock(&v->ns_mu);
    if (last)
        vwriter_destroy(w);
}

static void writer_register(struct ccr_volume *v, struct vwriter *w)
{
    w->refs = 1;
    w->prev = NULL;
    w->next = v->writers;
    if (v->writers)
        v->writers->prev = w;
    v->writers = w;
}

static void node_info(const struct vnode *n, struct vblobinfo *info)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->etag, sizeof(info->etag), "%s", n->props.etag);
    info->stored = n->props.size;
    info->plain = n->plain_known ? n->plain : UINT64_MAX;
}

/* Under ns_mu: finds or makes the writer a write open needs. */
static int open_writer(struct ccr_volume *v, const char *path, int flags, struct vnode *n,
                       struct vwriter **out, bool *out_trunc, struct ccr_err *err)
{
    bool trunc = flags & CCR_VOPEN_TRUNC;
    *out_trunc = false;
    if (n && n->w) {
        n->w->refs++;
        *out = n->w;
        *out_trunc = trunc; /* shared: truncated after the lock is dropped */
        return 0;
    }
    int rc = 0;
    if (!n) {
        rc = check_new_name(v, path, err);
        if (rc == 0)
            rc = parent_ok(v, path, err);
        if (rc)
            return rc;
    }
    struct vblobinfo base;
    if (n && n->has_blob)
        node_info(n, &base);
    struct vwriter *w = NULL;
    rc = vwriter_create(v, path, n && n->has_blob ? &base : NULL, trunc || !n, &w, err);
    if (rc)
        return rc;
    if (!n)
        n = ns_make(v->root, path, false, true, false);
    if (!n) {
        vwriter_destroy(w);
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    }
    n->w = w;
    writer_register(v, w);
    *out = w;
    return 0;
}

static int open_check(struct ccr_volume *v, const char *path, int flags, struct vnode *n, struct ccr_err *err)
{
    if (!n && !(flags & CCR_VOPEN_CREATE))
        return ccr_err_set(err, -ENOENT, path, -1, "no such file");
    if (n && n->dir)
        return ccr_err_set(err, -EISDIR, path, -1, "is a directory");
    if (n && (flags & CCR_VOPEN_CREATE) && (flags & CCR_VOPEN_EXCL))
        return ccr_err_set(err, -EEXIST, path, -1, "already exists");
    if (n && n->bad && !(flags & CCR_VOPEN_TRUNC) && !n->w)
        return ccr_err_set(err, -EIO, path, -1,
                           "the blob's size (%llu bytes) fits no %s blob of the datastore's region size",
                           (unsigned long long)n->props.size, ccr_mode_name(v->mode));
    return 0;
}

/* A read-only open of a committed file: pins the version the tree has, learning its size first. */
static int open_reader(struct ccr_volume *v, struct ccr_vfile *f, struct vblobinfo *info, struct ccr_err *err)
{
    char *blob = vol_blob_name(v, f->path);
    if (!blob)
        return ccr_err_set(err, -ENOMEM, f->path, -1, "out of memory");
    int rc = 0;
    if (info->plain == UINT64_MAX) {
        rc = vblob_plain_size(v, blob, info, &info->plain, err);
        if (rc == -ESTALE)
            refresh_blob(v, f->path, info->etag);
    }
    if (rc == 0)
        rc = vreader_open(v, &f->rd, blob, info, err);
    ccr_free(blob);
    return rc;
}

/* A cleanroom-cse size needs the blob's trailer: a write open learns it before taking the lock (stat
 * records it in the tree). A failure shows in the open itself. */
static void learn_size(struct ccr_volume *v, const char *path)
{
    struct ccr_vstat st;
    if (ccr_volume_stat(v, path, &st, NULL) != 0)
        return;
}

int ccr_vfile_open(struct ccr_volume *v, const char *path, int flags, struct ccr_vfile **out,
                   struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v || !path || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    bool wr = flags & CCR_VOPEN_WRITE;
    if ((wr || (flags & CCR_VOPEN_CREATE)) && !v->writable)
        return at_path(err, path, ccr_err_set(err, -EROFS, path, -1, "the volume is read-only"));
    int rc = ns_ensure(v, err);
    if (rc)
        return at_path(err, path, rc);
    if (v->mode == CCR_MODE_CSE && wr && !(flags & CCR_VOPEN_TRUNC))
        learn_size(v, path);
    struct ccr_vfile *f = ccr_calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(path))) {
        ccr_free(f);
        return at_path(err, path, ccr_err_set(err, -ENOMEM, path, -1, "out of memory"));
    }
    f->v = v;
    f->wr = wr;
    bool trunc = false;
    struct vblobinfo info;
    memset(&info, 0, sizeof(info));
    pthread_mutex_lock(&v->ns_mu);
    struct vnode *n = ns_lookup(v->root, path);
    rc = open_check(v, path, flags, n, err);
    if (rc == 0 && (wr || !n)) {
        f->wr = true; /* a created file is committed at close even when opened read-only */
        rc = open_writer(v, path, flags, n, &f->w, &trunc, err);
    } else if (rc == 0 && n->w) {
        n->w->refs++; /* reads of a file being written go through its writer */
        f->w = n->w;
    } else if (rc == 0) {
        node_info(n, &info);
    }
    pthread_mutex_unlock(&v->ns_mu);
    if (rc == 0 && !f->w)
        rc = open_reader(v, f, &info, err);
    if (rc == 0 && trunc)
        rc = vwriter_truncate(f->w, 0, err);
    if (rc) {
        if (f->w)
            writer_unref(v, f->w);
        free(f->path);
        ccr_free(f);
        return at_path(err, path, rc);
    }
    pthread_mutex_lock(&v->ns_mu);
    f->next = v->files;
    if (v->files)
        v->files->prev = f;
    v->files = f;
    pthread_mutex_unlock(&v->ns_mu);
    *out = f;
    return 0;
}

/* A read found the blob changed in the store: let the next open see the new version (once per handle). */
static void stale_refresh(struct ccr_vfile *f)
{
    if (f->refreshed)
        return;
    char etag[CCR_ETAG_MAX];
    pthread_mutex_lock(&f->v->ns_mu);
    struct vnode *nd = ns_lookup(f->v->root, f->path);
    snprintf(etag, sizeof(etag), "%s", nd && !nd->dir ? nd->props.etag : "");
    pthread_mutex_unlock(&f->v->ns_mu);
    refresh_blob(f->v, f->path, etag);
    f->refreshed = true;
}

ssize_t ccr_vfile_read(struct ccr_vfile *f, void *buf, size_t len, uint64_t off, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f || (!buf && len))
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    ssize_t n;
    if (f->w) {
        n = vwriter_read(f->w, buf, len, off, err);
    } else {
        n = vreader_read(f->v, &f->rd, buf, len, off, err);
        if (n == -ESTALE)
            stale_refresh(f);
    }
    return n < 0 ? at_path(err, f->path, (int)n) : n;
}

ssize_t ccr_vfile_read_ref(struct ccr_vfile *f, size_t len, uint64_t off, struct ccr_vref *ref,
                           struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f || !ref)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    ref->niov = 0;
    ref->npins = 0;
    ref->v = f->v;
    if (f->w)
        return -ENOTSUP; /* a file being written is read from the writer's own buffers */
    ssize_t n = vreader_read_ref(f->v, &f->rd, len, off, ref, err);
    if (n == -E2BIG)
        return n;
    if (n == -ESTALE)
        stale_refresh(f);
    return n < 0 ? at_path(err, f->path, (int)n) : n;
}

void ccr_vref_release(struct ccr_vref *ref)
{
    if (ref && ref->v)
        vreader_release(ref->v, ref);
}

ssize_t ccr_vfile_write(struct ccr_vfile *f, const void *buf, size_t len, uint64_t off, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f || (!buf && len))
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (!f->wr)
        return at_path(err, f->path, ccr_err_set(err, -EBADF, f->path, -1, "not open for writing"));
    ssize_t n = vwriter_write(f->w, buf, len, off, err);
    return n < 0 ? at_path(err, f->path, (int)n) : n;
}

int ccr_vfile_truncate(struct ccr_vfile *f, uint64_t size, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (!f->wr)
        return at_path(err, f->path, ccr_err_set(err, -EROFS, f->path, -1, "not open for writing"));
    return at_path(err, f->path, vwriter_truncate(f->w, size, err));
}

uint64_t ccr_vfile_size(struct ccr_vfile *f)
{
    if (!f)
        return 0;
    return f->w ? atomic_load(&f->w->size) : vreader_size(&f->rd);
}

int ccr_vfile_flush(struct ccr_vfile *f, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (!f->wr)
        return 0;
    return at_path(err, f->path, vwriter_flush(f->w, err));
}

int ccr_vfile_close(struct ccr_vfile *f, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!f)
        return 0;
    struct ccr_volume *v = f->v;
    int rc = ccr_vfile_flush(f, err);
    pthread_mutex_lock(&v->ns_mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        v->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pthread_mutex_unlock(&v->ns_mu);
    if (f->w)
        writer_unref(v, f->w);
    else
        vreader_close(v, &f->rd);
    free(f->path);
    ccr_free(f);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* the volume                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

static int copy_ds(struct ccr_volume *v, const struct ccr_datastore *ds)
{
    v->ds = *ds;
    v->ds.name = ds->name ? strdup(ds->name) : NULL;
    v->ds.url = ds->url ? strdup(ds->url) : NULL;
    v->ds.key_path = ds->key_path ? strdup(ds->key_path) : NULL;
    if ((ds->name && !v->ds.name) || (ds->url && !v->ds.url) || (ds->key_path && !v->ds.key_path))
        return -ENOMEM;
    return 0;
}

/* "p", "/p/" -> "p/"; NULL or "" -> "". */
static int set_prefix(struct ccr_volume *v, const char *prefix, struct ccr_err *err)
{
    if (!prefix)
        prefix = "";
    while (*prefix == '/')
        prefix++;
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/')
        n--;
    v->prefix = ccr_malloc(n + 2);
    if (!v->prefix)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    memcpy(v->prefix, prefix, n);
    v->prefix[n] = '\0';
    if (n > 0) {
        struct ccr_err e;
        ccr_err_clear(&e);
        if (ccr_blob_name_check(v->prefix, &e) != 0)
            return ccr_err_set(err, -EINVAL, prefix, -1, "invalid prefix: %s", e.msg);
        v->prefix[n] = '/';
        v->prefix[n + 1] = '\0';
    }
    v->plen = strlen(v->prefix);
    return 0;
}

static int set_mode(struct ccr_volume *v, const struct ccr_datastore *ds, const struct ccr_key *key,
                    struct ccr_err *err)
{
    v->mode = ds->mode == CCR_MODE_CPK ? CCR_MODE_NONE : ds->mode;
    if (v->mode != CCR_MODE_CCR1 && v->mode != CCR_MODE_CSE && v->mode != CCR_MODE_NONE)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "mode %s cannot be mounted", ccr_mode_name(ds->mode));
    if (v->mode != CCR_MODE_NONE && !key)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "mode %s needs a key", ccr_mode_name(ds->mode));
    char why[160];
    if (v->mode != CCR_MODE_NONE && ccr_region_size_check(v->mode, ds->region_size, why, sizeof(why)) != 0)
        return ccr_err_set(err, -EINVAL, ds->name, -1, "datastore region size: %s", why);
    if (v->mode != CCR_MODE_NONE)
        v->key = *key;
    uint64_t R = ds->region_size ? ds->region_size : CCR_CCR1_REGION_DEFAULT;
    v->log2 = (unsigned)__builtin_ctzll(R);
    v->chunk = ds->region_size ? ds->region_size : CCR_CSE_CHUNK_DEFAULT64;
    if (v->mode == CCR_MODE_CCR1 && ccr_key_id(&v->key, v->key_id) != 0)
        return ccr_err_set(err, -EIO, ds->name, -1, "cannot compute the key id");
    return 0;
}

static int start_workers(struct ccr_volume *v, unsigned want)
{
    v->threads = ccr_calloc(want, sizeof(*v->threads));
    if (!v->threads)
        return -ENOMEM;
    for (unsigned i = 0; i < want; i++) {
        if (pthread_create(&v->threads[i], NULL, worker_main, v) != 0)
            break;
        v->nthreads++;
    }
    return v->nthreads ? 0 : -EAGAIN;
}

static void stop_workers(struct ccr_volume *v)
{
    pthread_mutex_lock(&v->q_mu);
    v->q_stop = true;
    pthread_cond_broadcast(&v->q_cv);
    pthread_mutex_unlock(&v->q_mu);
    for (unsigned i = 0; i < v->nthreads; i++)
        pthread_join(v->threads[i], NULL);
    ccr_free(v->threads);
    v->threads = NULL;
    v->nthreads = 0;
}

static void volume_free(struct ccr_volume *v)
{
    stop_workers(v);
    vcache_fini(v);
    node_free(v->root);
    replay_free(v);
    for (size_t i = 0; i < v->n_local_dirs; i++)
        free(v->local_dirs[i]);
    ccr_free(v->local_dirs);
    vbuf_fini(v);
    pthread_mutex_destroy(&v->buf_mu);
    for (size_t i = 0; i < v->n_aeads; i++)
        ccr_aead_destroy(v->aeads[i]);
    ccr_free(v->aeads);
    pthread_mutex_destroy(&v->q_mu);
    pthread_cond_destroy(&v->q_cv);
    pthread_mutex_destroy(&v->aead_mu);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->ns_mu);
    pthread_cond_destroy(&v->ns_cv);
    free(v->ds.name);
    free(v->ds.url);
    free(v->ds.key_path);
    ccr_free(v->prefix);
    free(v->spill_dir);
    ccr_key_wipe(&v->key);
    ccr_free(v);
}

static void set_opts(struct ccr_volume *v, const struct ccr_volume_opts *o)
{
    v->budget = o && o->memory ? o->memory : CCR_MEMORY_DEFAULT;
    v->prefetch = o && o->prefetch ? o->prefetch : VOL_PREFETCH_DEF;
    v->list_ttl = o && o->list_ttl != 0 ? o->list_ttl : VOL_LIST_TTL_DEF;
    v->writable = o && o->writable;
    const char *spill = o && o->spill_dir ? o->spill_dir : getenv("TMPDIR");
    v->spill_dir = strdup(spill && spill[0] ? spill : "/tmp");
}

int ccr_volume_open(struct ccr_store *store, const struct ccr_datastore *ds, const struct ccr_key *key,
                    const struct ccr_volume_opts *opts, struct ccr_volume **out, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!store || !ds || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    struct ccr_volume *v = ccr_calloc(1, sizeof(*v));
    if (!v)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    v->store = store;
    v->open_ns = vol_wall_ns();
    v->replay_tail = &v->replay;
    pthread_mutex_init(&v->q_mu, NULL);
    pthread_cond_init(&v->q_cv, NULL);
    pthread_mutex_init(&v->aead_mu, NULL);
    pthread_mutex_init(&v->buf_mu, NULL);
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    pthread_mutex_init(&v->ns_mu, NULL);
    pthread_cond_init(&v->ns_cv, NULL);
    set_opts(v, opts);
    int rc = copy_ds(v, ds);
    if (rc || !v->spill_dir)
        rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    if (rc == 0)
        rc = set_mode(v, ds, key, err);
    if (rc == 0)
        rc = set_prefix(v, opts ? opts->prefix : NULL, err);
    if (rc == 0 && vcache_init(v) != 0)
        rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    if (rc == 0) {
        unsigned want = opts && opts->fetchers ? opts->fetchers : 2 * pl_online_cpus();
        if (!(opts && opts->fetchers) && ccr_store_parallelism(store) > want)
            want = ccr_store_parallelism(store);
        if (want > 256)
            want = 256;
        if (start_workers(v, want) != 0)
            rc = ccr_err_set(err, -EAGAIN, NULL, -1, "cannot start the fetcher threads");
    }
    if (rc) {
        volume_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

int ccr_volume_close(struct ccr_volume *v, struct ccr_err *err)
{
    ccr_err_clear(err);
    if (!v)
        return 0;
    int first = 0;
    /* The unmount path: commit what is still open for writing, and free every handle left. */
    for (;;) {
        pthread_mutex_lock(&v->ns_mu);
        struct ccr_vfile *f = v->files;
        pthread_mutex_unlock(&v->ns_mu);
        if (!f)
            break;
        struct ccr_err e;
        ccr_err_clear(&e);
        int rc = ccr_vfile_close(f, &e);
        if (rc && !first) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    volume_free(v);
    return first;
}

void ccr_volume_get_stats(struct ccr_volume *v, struct ccr_volume_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!v)
        return;
    out->bytes_read = atomic_load(&v->st.bytes_read);
    out->bytes_fetched = atomic_load(&v->st.bytes_fetched);
    out->cache_hits = atomic_load(&v->st.cache_hits);
    out->cache_misses = atomic_load(&v->st.cache_misses);
    out->prefetches = atomic_load(&v->st.prefetches);
    out->auth_failures = atomic_load(&v->st.auth_failures);
    out->bytes_written = atomic_load(&v->st.bytes_written);
    out->bytes_uploaded = atomic_load(&v->st.bytes_uploaded);
    out->commits = atomic_load(&v->st.commits);
    out->commit_failures = atomic_load(&v->st.commit_failures);
    out->list_requests = atomic_load(&v->st.list_requests);
    pthread_mutex_lock(&v->mu);
    out->memory_peak = v->peak;
    pthread_mutex_unlock(&v->mu);
}

bool ccr_volume_writable(const struct ccr_volume *v)
{
    return v && v->writable;
}
