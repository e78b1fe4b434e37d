/*
 * journal.c - the transfer engine's resume journal and the string map it (and listings) use.
 * See transfer_int.h for the file format and guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccr/crypto.h"
#include "codec_int.h"
#include "transfer_int.h"

#define SYNC_LINES  64
#define SYNC_SECS   1.0
#define COMPACT_MIN 1000 /* lines; below this a journal is never rewritten */

/* ----------------------------------------------------------------------------------------------------- */
/* string map                                                                                             */
/* ----------------------------------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

void tx_map_init(struct tx_map *m)
{
    memset(m, 0, sizeof(*m));
}

void tx_map_fini(struct tx_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        ccr_free(m->keys[i]);
    ccr_free(m->keys);
    ccr_free(m->vals);
    memset(m, 0, sizeof(*m));
}

static size_t map_slot(char *const *keys, size_t cap, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int map_grow(struct tx_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    char **nk = ccr_calloc(ncap, sizeof(*nk));
    struct tx_entry *nv = ccr_calloc(ncap, sizeof(*nv));
    if (!nk || !nv) {
        ccr_free(nk);
        ccr_free(nv);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t s = map_slot(nk, ncap, m->keys[i]);
        nk[s] = m->keys[i];
        nv[s] = m->vals[i];
    }
    ccr_free(m->keys);
    ccr_free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

int tx_map_put(struct tx_map *m, const char *key, const struct tx_entry *v)
{
    if ((m->count + 1) * 2 > m->cap && map_grow(m) != 0)
        return -ENOMEM;
    size_t s = map_slot(m->keys, m->cap, key);
    if (!m->keys[s]) {
        m->keys[s] = strdup(key);
        if (!m->keys[s])
            return -ENOMEM;
        m->count++;
    }
    m->vals[s] = *v;
    return 0;
}

const struct tx_entry *tx_map_get(const struct tx_map *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    size_t s = map_slot(m->keys, m->cap, key);
    return m->keys[s] ? &m->vals[s] : NULL;
}

/* ----------------------------------------------------------------------------------------------------- */
/* journal                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

struct tx_journal {
    char *path;
    int fd;
    struct tx_map map;
    pthread_mutex_t mu;
    unsigned unsynced;
    double last_sync;
    int error;
};

/* mkdir -p with mode 0700 for the components it creates. */
static int mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

static char *default_dir(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    char *d = NULL;
    if (state && state[0] == '/') {
        if (asprintf(&d, "%s/ccr/journal", state) < 0)
            return NULL;
        return d;
    }
    const char *home = getenv("HOME");
    if (!home || !home[0])
        return NULL;
    if (asprintf(&d, "%s/.local/state/ccr/journal", home) < 0)
        return NULL;
    return d;
}

/* Parses "N " at *p (decimal, optional '-'), advancing past the separator. */
static bool parse_num(const char **p, const char *end, char sep, int64_t *out, bool allow_neg)
{
    const char *s = *p;
    bool neg = false;
    if (allow_neg && s < end && *s == '-') {
        neg = true;
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s >= end || *s != sep)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s + 1;
    return true;
}

/* Loads every complete line; returns the offset just past the last good one. */
static int journal_load(struct tx_journal *j, const char *buf, size_t len, size_t *out_good,
                        size_t *out_lines)
{
    const char *p = buf, *end = buf + len;
    size_t good = 0, lines = 0;
    char name[CCR_BLOB_NAME_MAX + 1];
    while (p < end) {
        int64_t size, mtime, elen, nlen;
        struct tx_entry e;
        const char *q = p;
        if (!parse_num(&q, end, ' ', &size, false) || !parse_num(&q, end, ' ', &mtime, true) ||
            !parse_num(&q, end, ':', &elen, false) || elen >= CCR_ETAG_MAX || end - q < elen + 1 ||
            q[elen] != ' ')
            break;
        memcpy(e.etag, q, (size_t)elen);
        e.etag[elen] = '\0';
        q += elen + 1;
        if (!parse_num(&q, end, ':', &nlen, false) || nlen < 1 || nlen > CCR_BLOB_NAME_MAX ||
            end - q < nlen + 1 || q[nlen] != '\n')
            break;
        memcpy(name, q, (size_t)nlen);
        name[nlen] = '\0';
        q += nlen + 1;
        e.size = (uint64_t)size;
        e.mtime_ns = mtime;
        if (strlen(name) == (size_t)nlen) { /* no NUL inside */
            int rc = tx_map_put(&j->map, name, &e);
            if (rc)
                return rc;
        }
        p = q;
        good = (size_t)(p - buf);
        lines++;
    }
    *out_good = good;
    *out_lines = lines;
    return 0;
}

/* One journal line into line (cap bytes). Returns its length, or -EINVAL if it does not fit. */
static int format_line(char *line, size_t cap, const char *name, uint64_t size, int64_t mtime_ns,
                       const char *etag)
{
    size_t nl = strlen(name), el = strlen(etag);
    if (nl > CCR_BLOB_NAME_MAX || el >= CCR_ETAG_MAX)
        return -EINVAL;
    int n =
        snprintf(line, cap, "%" PRIu64 " %" PRId64 " %zu:%s %zu:%s\n", size, mtime_ns, el, etag, nl, name);
    return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}

/*
 * Rewrites the journal with one line per name when superseded lines dominate (every re-run of a changing
 * tree appends, and nothing else ever shrinks the file): a temporary file beside it, fsync, rename, fsync
 * of the directory, then the descriptor is reopened. Best effort: on any failure the old journal stays.
 */
static void compact(struct tx_journal *j, const char *dir)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.compact-%ld", j->path, (long)getpid()) < 0)
        return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    char line[CCR_BLOB_NAME_MAX + CCR_ETAG_MAX + 96];
    for (size_t i = 0; ok && i < j->map.cap; i++) {
        if (!j->map.keys[i])
            continue;
        const struct tx_entry *e = &j->map.vals[i];
        int n = format_line(line, sizeof(line), j->map.keys[i], e->size, e->mtime_ns, e->etag);
        ok = n > 0 && fwrite(line, 1, (size_t)n, f) == (size_t)n;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    int nfd = -1;
    if (ok && rename(tmp, j->path) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        nfd = open(j->path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (nfd >= 0) {
            close(j->fd);
            j->fd = nfd;
        }
    } else {
        unlink(tmp);
    }
    free(tmp);
}

int tx_journal_open(const char *dir, const char *kind, const char *url, const char *prefix,
                    const char *local_path, enum ccr_mode mode, uint64_t region, struct tx_journal **out,
                    struct ccr_err *err)
{
    int rc = 0;
    char *ddir = dir ? strdup(dir) : default_dir();
    if (!ddir)
        return ccr_err_set(err, dir ? -ENOMEM : -ENOENT, NULL, -1,
                           "no journal directory (set XDG_STATE_HOME or HOME)");
    rc = mkdirs(ddir);
    if (rc) {
        ccr_err_set(err, rc, ddir, -1, "cannot create the journal directory: %s", pl_strerror(rc));
        free(ddir);
        return rc;
    }
    /* identity of the journal: a hash of what it is about */
    char *id = NULL;
    int idlen = asprintf(&id, "ccr-journal-v1%c%s%c%s%c%s%c%s%c%s%c%llu", 0, kind, 0, url ? url : "", 0,
                         prefix ? prefix : "", 0, local_path ? local_path : "", 0, ccr_mode_name(mode), 0,
                         (unsigned long long)region);
    if (idlen < 0) {
        free(ddir);
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    }
    uint8_t h[16];
    rc = ccr_hkdf_sha256(id, (size_t)idlen, NULL, 0, "ccr journal name", 16, h, sizeof(h));
    free(id);
    if (rc) {
        free(ddir);
        return ccr_err_set(err, rc, NULL, -1, "cannot hash the journal name");
    }
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);

    struct tx_journal *j = ccr_calloc(1, sizeof(*j));
    if (!j) {
        free(ddir);
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    }
    j->fd = -1;
    tx_map_init(&j->map);
    pthread_mutex_init(&j->mu, NULL);
    if (asprintf(&j->path, "%s/%s-%s.journal", ddir, kind, hex) < 0) {
        j->path = NULL;
        rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
        goto fail;
    }
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        rc = -errno;
        ccr_err_set(err, rc, j->path, -1, "cannot open the journal: %s", pl_strerror(rc));
        goto fail;
    }
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, j->path, -1, "cannot stat the journal: %s", pl_strerror(rc));
        goto fail;
    }
    if (st.st_size > 0) {
        size_t len = (size_t)st.st_size;
        char *buf = ccr_malloc(len);
        if (!buf) {
            rc = ccr_err_set(err, -ENOMEM, j->path, -1, "out of memory reading the journal");
            goto fail;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = pread(j->fd, buf + got, len - got, (off_t)got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        size_t good = 0, lines = 0;
        rc = journal_load(j, buf, got, &good, &lines);
        ccr_free(buf);
        if (rc) {
            ccr_err_set(err, rc, j->path, -1, "out of memory reading the journal");
            goto fail;
        }
        if (good < (size_t)st.st_size && ftruncate(j->fd, (off_t)good) != 0) {
            rc = -errno;
            ccr_err_set(err, rc, j->path, -1, "cannot cut the torn end of the journal: %s", pl_strerror(rc));
            goto fail;
        }
        if (lines > COMPACT_MIN && lines > 2 * j->map.count)
            compact(j, ddir);
    }
    j->last_sync = pl_now();
    free(ddir);
    *out = j;
    return 0;
fail:
    free(ddir);
    tx_journal_close(j);
    return rc;
}

const struct tx_entry *tx_journal_find(const struct tx_journal *j, const char *name)
{
    return j ? tx_map_get(&j->map, name) : NULL;
}

size_t tx_journal_count(const struct tx_journal *j)
{
    return j ? j->map.count : 0;
}

const char *tx_journal_path(const struct tx_journal *j)
{
    return j->path;
}

int tx_journal_append(struct tx_journal *j, const char *name, uint64_t size, int64_t mtime_ns,
                      const char *etag)
{
    if (!j)
        return 0;
    char line[CCR_BLOB_NAME_MAX + CCR_ETAG_MAX + 96];
    int n = format_line(line, sizeof(line), name, size, mtime_ns, etag);
    if (n < 0)
        return n;
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = write(j->fd, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && ++j->unsynced >= SYNC_LINES) {
        if (fdatasync(j->fd) != 0)
            rc = -errno;
        j->unsynced = 0;
        j->last_sync = pl_now();
    } else if (rc == 0 && pl_now() - j->last_sync >= SYNC_SECS) {
        if (fdatasync(j->fd) != 0)
            rc = -errno;
        j->unsynced = 0;
        j->last_sync = pl_now();
    }
    if (rc && !j->error)
        j->error = rc;
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int tx_journal_close(struct tx_journal *j)
{
    if (!j)
        return 0;
    int rc = j->error;
    if (j->fd >= 0) {
        if (fsync(j->fd) != 0 && rc == 0)
            rc = -errno;
        if (close(j->fd) != 0 && rc == 0)
            rc = -errno;
    }
    tx_map_fini(&j->map);
    pthread_mutex_destroy(&j->mu);
    free(j->path);
    ccr_free(j);
    return rc;
}
