/*
 * local.c - the embedded local store: a container is a directory, a committed blob is a regular file.
 *
 * Layout (other code may rely on it, see ccr/blob.h):
 *   <root>/a/b/c.bin                     committed blob "a/b/c.bin" (its stored bytes)
 *   <root>/.ccr/blocks/<sha256(name)>/   staged blocks of a blob, one file per index, named as 16 hex digits
 *   <root>/.ccr/tmp/                     temporaries (blocks being written, blobs being assembled)
 *
 * Every write goes to a temporary file first and is renamed into place, so a crash never leaves a half
 * block considered staged nor a half blob visible. A staged block's data is flushed (fdatasync) before
 * its rename, so a power loss may lose a staged block's name (the commit then reports it missing) but
 * never leaves a torn block. A commit checks that every index 0..n-1 is
 * staged, assembles them into a temporary with copy_file_range (read/write when the file system cannot),
 * stamps a unique modification time, fsyncs, creates the parent directories, renames into place, drops
 * the staged blocks and fsyncs the parent directory. A one-block commit renames the block itself.
 *
 * ETag: quoted hex of (st_ino, st_mtim ns, st_size, st_ctim ns). The modification time of every commit
 * is taken from CLOCK_REALTIME and made strictly increasing within the process, so the ETag changes on
 * every commit even when the kernel's file timestamps are coarser than the commit rate.
 *
 * ccr_store_create_container also sweeps what crashed writers left in .ccr: temporaries older than a
 * day and staged blocks of blobs untouched for 7 days. Nothing there is ever visible meanwhile.
 *
 * Concurrency: no lock on the data path. Each call opens its own descriptors; the only shared state is
 * a flag saying the staging directories exist and the temporary-name counter. Concurrent writers of
 * the same blob are not supported (the last commit wins).
 *
 * Listing walks the tree depth-first reading each directory's entries sorted with directories keyed
 * as "name/": that order is exactly the byte-wise order of full blob names, so a page needs to walk
 * only the directories on the way to the marker plus the entries it returns (directories entirely
 * before the marker, or outside the prefix, are skipped unopened). With a delimiter, a directory whose
 * every blob rolls up into one prefix item is only probed for one blob, not walked.
 *
 * Limits of the local store (Azure has none of them): a blob "a" and a blob "a/b" cannot both exist
 * (-ENOTDIR or -EEXIST with a message saying so); symbolic links and special files in the container are
 * not blobs (skipped by list, -ENOENT for get).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob_int.h"
#include "ccr/crypto.h"

#define ROOT_MAX 3900
#define LP_MAX   (ROOT_MAX + CCR_BLOB_NAME_MAX + 200)
#define COPY_BUF (1u << 20)
#define REL_MAX  (CCR_BLOB_NAME_MAX + 2) /* a name relative to the root, plus '/' and NUL */

struct local {
    struct ccr_store base;
    char *root;
    atomic_bool staging_ok;
};

static atomic_uint_fast64_t tmp_counter;
static _Atomic int64_t last_mtime_ns;

static struct local *L(struct ccr_store *s)
{
    return (struct local *)s->impl;
}

static int map_errno(int e)
{
    if (e == EPERM)
        return -EACCES;
    if (e == EDQUOT)
        return -ENOSPC;
    return -e;
}

/* ccr_err_set with "what: strerror(e)"; returns the mapped negative errno. */
static int fail(struct ccr_err *err, const char *where, int e, const char *what)
{
    return ccr_err_set(err, map_errno(e), where, -1, "%s: %s", what, ccr_blob_strerror(e));
}

static bool root_exists(const struct local *l)
{
    struct stat st;
    return stat(l->root, &st) == 0 && S_ISDIR(st.st_mode);
}

static int no_container(const struct local *l, struct ccr_err *err)
{
    return ccr_err_set(err, -ENOENT, l->base.url, -1,
                       "the container does not exist (create it first: ccr datastore add)");
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void hex_name(const char *blob, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hx[] = "0123456789abcdef";
    if (EVP_Digest(blob, strlen(blob), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* cannot happen with the default provider; fall back to a plain FNV-1a so we still work */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = blob; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        memset(md, 0, sizeof(md));
        memcpy(md, &h, sizeof(h));
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

static void block_dir(const struct local *l, const char *blob, char *buf)
{
    char hx[65];
    hex_name(blob, hx);
    snprintf(buf, LP_MAX, "%s/.ccr/blocks/%s", l->root, hx);
}

static void blob_path(const struct local *l, const char *blob, char *buf)
{
    snprintf(buf, LP_MAX, "%s/%s", l->root, blob);
}

static void make_etag(const struct stat *st, char out[CCR_ETAG_MAX])
{
    unsigned long long mt = (unsigned long long)st->st_mtim.tv_sec * 1000000000ull + st->st_mtim.tv_nsec;
    unsigned long long ct = (unsigned long long)st->st_ctim.tv_sec * 1000000000ull + st->st_ctim.tv_nsec;
    snprintf(out, CCR_ETAG_MAX, "\"%llx-%llx-%llx-%llx\"", (unsigned long long)st->st_ino, mt,
             (unsigned long long)st->st_size, ct);
}

static void fill_props(const struct stat *st, struct ccr_blob_props *p)
{
    memset(p, 0, sizeof(*p));
    p->size = (uint64_t)st->st_size;
    make_etag(st, p->etag);
    p->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* A modification time strictly greater than any this process stamped before. */
static struct timespec unique_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t prev = atomic_load(&last_mtime_ns);
    int64_t v;
    do {
        v = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak(&last_mtime_ns, &prev, v));
    ts.tv_sec = v / 1000000000;
    ts.tv_nsec = v % 1000000000;
    return ts;
}

static int mkdir_ok(const char *p)
{
    if (mkdir(p, 0755) == 0 || errno == EEXIST)
        return 0;
    return errno;
}

/* Creates .ccr, .ccr/tmp and .ccr/blocks once (again after someone removed them). */
static int ensure_staging(struct local *l, const char *where, struct ccr_err *err)
{
    if (atomic_load_explicit(&l->staging_ok, memory_order_acquire))
        return 0;
    char p[LP_MAX];
    static const char *const sub[] = {"/.ccr", "/.ccr/tmp", "/.ccr/blocks"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", l->root, sub[i]);
        int e = mkdir_ok(p);
        if (e == ENOENT && i == 0)
            return no_container(l, err);
        if (e)
            return fail(err, where, e, "cannot create the staging directory .ccr");
    }
    atomic_store_explicit(&l->staging_ok, true, memory_order_release);
    return 0;
}

/* Opens a new temporary file under .ccr/tmp; its path goes to path (LP_MAX). */
static int tmp_open(struct local *l, const char *where, char *path, int *out_fd, struct ccr_err *err)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = ensure_staging(l, where, err);
        if (rc < 0)
            return rc;
        /* pid + counter are unique within one machine; the random part keeps processes of other
         * machines or containers (where everyone may be pid 1) sharing this store from clashing. */
        uint64_t n = atomic_fetch_add(&tmp_counter, 1);
        uint32_t r = 0;
        if (ccr_random_bytes(&r, sizeof(r)) != 0)
            r = (uint32_t)n;
        snprintf(path, LP_MAX, "%s/.ccr/tmp/%ld-%llx-%08x", l->root, (long)getpid(), (unsigned long long)n,
                 (unsigned)r);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno == ENOENT) {
            atomic_store(&l->staging_ok, false); /* .ccr was removed under us: recreate */
            continue;
        }
        if (errno == EEXIST || errno == EINTR)
            continue; /* a leftover of an earlier process with our pid */
        return fail(err, where, errno, "cannot create a temporary file in .ccr/tmp");
    }
    return ccr_err_set(err, -EIO, where, -1, "cannot create a temporary file in .ccr/tmp (repeated clashes)");
}

/* Removes every staged block of blob and its directory (best effort). */
static void drop_blocks(const struct local *l, const char *blob)
{
    char dir[LP_MAX];
    block_dir(l, blob, dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        unlinkat(dfd, de->d_name, 0);
    }
    closedir(d);
    rmdir(dir);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates the parent directories of blob under the root. */
static int mkdir_parents(const struct local *l, const char *blob, struct ccr_err *err)
{
    char p[LP_MAX];
    size_t rl = strlen(l->root);
    memcpy(p, l->root, rl);
    p[rl] = '/';
    const char *s = blob;
    const char *slash;
    while ((slash = strchr(s, '/')) != NULL) {
        size_t n = (size_t)(slash - blob);
        memcpy(p + rl + 1, blob, n);
        p[rl + 1 + n] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            if (e == ENOTDIR)
                return ccr_err_set(err, -ENOTDIR, blob, -1,
                                   "cannot create directory '%.*s': a blob named like one of its parents "
                                   "exists (the local store cannot hold both 'x' and 'x/...')",
                                   (int)n, blob);
            if (e == ENOENT && !root_exists(l))
                return no_container(l, err);
            return fail(err, blob, e, "cannot create the blob's parent directory");
        }
        s = slash + 1;
    }
    return 0;
}

/*
 * Moves the finished temporary (path tmp, descriptor fd: fsync'd) to blob's name and reports its props.
 * On failure tmp is left for the caller to remove.
 */
static int install(const struct local *l, const char *blob, const char *tmp, int fd,
                   struct ccr_blob_props *out, struct ccr_err *err)
{
    char dst[LP_MAX];
    blob_path(l, blob, dst);
    for (int attempt = 0;; attempt++) {
        int rc = mkdir_parents(l, blob, err);
        if (rc < 0)
            return rc;
        if (rename(tmp, dst) == 0)
            break;
        int e = errno;
        if (e == ENOENT && attempt < 8) /* a concurrent delete pruned a parent: recreate it */
            continue;
        if (e == EISDIR || e == ENOTEMPTY || e == EEXIST)
            return ccr_err_set(err, -EEXIST, blob, -1,
                               "cannot rename staged blob into place: a directory of that name holds other "
                               "blobs (the local store cannot hold both 'x' and 'x/...')");
        if (e == ENOTDIR)
            return ccr_err_set(err, -ENOTDIR, blob, -1,
                               "cannot rename staged blob into place: a blob named like one of its parents "
                               "exists (the local store cannot hold both 'x' and 'x/...')");
        return fail(err, blob, e, "cannot rename staged blob into place");
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && out)
        fill_props(&st, out);
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    fsync_dir(dst);
    return 0;
}

/* Stamps the commit time and makes the file durable. */
static int seal_file(int fd, const char *blob, struct ccr_err *err)
{
    struct timespec ts[2];
    ts[0] = ts[1] = unique_now();
    if (futimens(fd, ts) != 0)
        return fail(err, blob, errno, "cannot set the blob's modification time");
    if (fsync(fd) != 0)
        return fail(err, blob, errno, "cannot flush the blob to disk");
    return 0;
}

/* Removes every entry of directory path whose modification time is older than max_age_s (best effort). */
static void sweep_old(const char *path, time_t max_age_s, bool dirs)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    int dfd = dirfd(d);
    time_t limit = time(NULL) - max_age_s;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_mtime >= limit)
            continue;
        if (!dirs) {
            unlinkat(dfd, de->d_name, 0);
            continue;
        }
        char sub[LP_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        DIR *b = opendir(sub);
        if (!b)
            continue;
        struct dirent *be;
        while ((be = readdir(b)) != NULL)
            if (be->d_name[0] != '.')
                unlinkat(dirfd(b), be->d_name, 0);
        closedir(b);
        unlinkat(dfd, de->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

static int local_create_container(struct ccr_store *s, bool *out_created, struct ccr_err *err)
{
    struct local *l = L(s);
    char p[LP_MAX];
    bool created = false;
    size_t rl = strlen(l->root);
    /* mkdir -p: every ancestor, then the container itself */
    for (size_t i = 1; i <= rl; i++) {
        if (i < rl && l->root[i] != '/')
            continue;
        memcpy(p, l->root, i);
        p[i] = '\0';
        if (mkdir(p, 0755) == 0) {
            if (i == rl)
                created = true;
            continue;
        }
        int e = errno;
        if (e == EEXIST) {
            struct stat st;
            if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode))
                return ccr_err_set(err, -ENOTDIR, s->url, -1,
                                   "cannot create the container: '%s' exists and is not a directory", p);
            continue;
        }
        return fail(err, s->url, e, "cannot create the container directory");
    }
    atomic_store(&l->staging_ok, false);
    int rc = ensure_staging(l, s->url, err);
    if (rc < 0)
        return rc;
    /*
     * What crashed writers left behind: temporaries older than a day (a live one is being written
     * right now), staged blocks of blobs untouched for 7 days (Azure drops uncommitted blocks after a
     * week, too).
     */
    snprintf(p, sizeof(p), "%s/.ccr/tmp", l->root);
    sweep_old(p, 24 * 3600, false);
    snprintf(p, sizeof(p), "%s/.ccr/blocks", l->root);
    sweep_old(p, 7 * 24 * 3600, true);
    if (out_created)
        *out_created = created;
    return 0;
}

/*
 * Staged blocks live in .ccr/blocks/<sha256 of the name>/. A block whose final offset is unknown is a file
 * named by its index (16 hex digits). A block put with its offset ("placed") is written straight into
 * the shared file `data` at that offset, made durable, and then announced by a marker file
 * `<index>.p` holding the offset and length (2 x 8 bytes, big-endian): a marker therefore always
 * describes bytes already on disk. Whichever kind was staged last for an index wins (staging one kind
 * removes the other). A commit whose blocks are all placed and tile the blob from offset 0 renames
 * `data` into place without copying a byte; any other commit assembles a new file.
 */
#define DATA_NAME "data"

struct staged {
    bool placed;
    uint64_t off, len;
};

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Makes sure blob's block directory exists; its path goes to dir (LP_MAX). */
static int ready_block_dir(struct local *l, const char *blob, char *dir, struct ccr_err *err)
{
    block_dir(l, blob, dir);
    for (int attempt = 0;; attempt++) {
        int e = mkdir_ok(dir);
        if (e == 0)
            return 0;
        if (e == ENOENT && attempt < 4) { /* .ccr/blocks removed under us */
            atomic_store(&l->staging_ok, false);
            int rc = ensure_staging(l, blob, err);
            if (rc < 0)
                return rc;
            continue;
        }
        return fail(err, blob, e, "cannot create the staging directory for the blob's blocks");
    }
}

/* Renames the finished temporary tmp to <block dir>/<index><suffix>, recreating the directory if a
 * concurrent commit or delete dropped it; then removes the other kind of staged block of that index. */
static int stage_as(struct local *l, const char *blob, uint64_t index, const char *tmp, const char *suffix,
                    const char *other_suffix, struct ccr_err *err)
{
    char dir[LP_MAX], path[LP_MAX + 40];
    for (int attempt = 0;; attempt++) {
        int rc = ready_block_dir(l, blob, dir, err);
        if (rc < 0)
            return rc;
        snprintf(path, sizeof(path), "%s/%016llx%s", dir, (unsigned long long)index, suffix);
        if (rename(tmp, path) == 0)
            break;
        int e = errno;
        if (e == ENOENT && attempt < 4)
            continue;
        return ccr_err_set(err, map_errno(e), blob, -1, "cannot rename staged block %llu into place: %s",
                           (unsigned long long)index, ccr_blob_strerror(e));
    }
    snprintf(path, sizeof(path), "%s/%016llx%s", dir, (unsigned long long)index, other_suffix);
    unlink(path);
    return 0;
}

/* Writes a small temporary file under .ccr/tmp holding len bytes; fsyncs it when sync. */
static int write_tmp(struct local *l, const char *blob, const void *data, size_t len, bool sync, char *tmp,
                     struct ccr_err *err)
{
    int fd = -1;
    int rc = tmp_open(l, blob, tmp, &fd, err);
    if (rc < 0)
        return rc;
    int e = write_all(fd, data, len);
    if (e == 0 && sync && fdatasync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return fail(err, blob, e, "cannot write the staged block");
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* A block with a known offset: into the shared data file, then its marker. */
static int put_placed(struct local *l, const char *blob, uint64_t index, uint64_t offset, const void *data,
                      size_t len, struct ccr_err *err)
{
    char dir[LP_MAX], path[LP_MAX + 40], tmp[LP_MAX];
    int rc = ready_block_dir(l, blob, dir, err);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/" DATA_NAME, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == ENOENT) /* a concurrent commit dropped the directory: stage as a plain block */
            goto plain;
        return fail(err, blob, errno, "cannot open the blob's staging data file");
    }
    int e = pwrite_all(fd, data, len, offset);
    if (e == 0 && fdatasync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e)
        return fail(err, blob, e, "cannot write the staged block");
    uint8_t mark[16];
    put_be64(mark, offset);
    put_be64(mark + 8, len);
    rc = write_tmp(l, blob, mark, sizeof(mark), false, tmp, err);
    if (rc < 0)
        return rc;
    rc = stage_as(l, blob, index, tmp, ".p", "", err);
    if (rc < 0)
        unlink(tmp);
    return rc;
plain:;
    rc = write_tmp(l, blob, data, len, true, tmp, err);
    if (rc < 0)
        return rc;
    rc = stage_as(l, blob, index, tmp, "", ".p", err);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int local_put_block(struct ccr_store *s, const char *blob, uint64_t index, uint64_t offset,
                           const void *data, size_t len, struct ccr_err *err)
{
    struct local *l = L(s);
    if (offset != CCR_BLOCK_OFFSET_UNKNOWN)
        return put_placed(l, blob, index, offset, data, len, err);
    char tmp[LP_MAX];
    int rc = write_tmp(l, blob, data, len, true, tmp, err);
    if (rc < 0)
        return rc;
    rc = stage_as(l, blob, index, tmp, "", ".p", err);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Appends len bytes of `in` from offset off (or, when len is UINT64_MAX, all of it from its file
 * offset) to `out`. Returns 0 or an errno (EIO when `in` ends before len bytes). */
static int append_range(int in, uint64_t off, uint64_t len, int out, char **buf)
{
    bool whole = len == UINT64_MAX;
    loff_t pos = (loff_t)off;
    bool use_cfr = true;
    while (whole || len > 0) {
        size_t want = whole || len > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)len;
        if (use_cfr) {
            ssize_t n = copy_file_range(in, whole ? NULL : &pos, out, NULL, want, 0);
            if (n > 0) {
                if (!whole)
                    len -= (uint64_t)n;
                continue;
            }
            if (n == 0)
                return whole ? 0 : EIO; /* a placed block shorter than its marker says */
            if (errno == EINTR)
                continue;
            if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
                errno == EBADF) {
                use_cfr = false;
                continue;
            }
            return errno;
        }
        if (!*buf) {
            *buf = ccr_malloc(COPY_BUF);
            if (!*buf)
                return ENOMEM;
        }
        size_t chunk = want < COPY_BUF ? want : COPY_BUF;
        ssize_t n = whole ? read(in, *buf, chunk) : pread(in, *buf, chunk, pos);
        if (n == 0)
            return whole ? 0 : EIO;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        int e = write_all(out, *buf, (size_t)n);
        if (e)
            return e;
        pos += n;
        if (!whole)
            len -= (uint64_t)n;
    }
    return 0;
}

/* Finds how block i of a blob was staged. Returns 0, -ENOENT if it was not, or another -errno. */
static int find_staged(const char *dir, uint64_t i, struct staged *out)
{
    char bp[LP_MAX + 40];
    struct stat st;
    snprintf(bp, sizeof(bp), "%s/%016llx", dir, (unsigned long long)i);
    if (stat(bp, &st) == 0) {
        out->placed = false;
        out->off = 0;
        out->len = (uint64_t)st.st_size;
        return 0;
    }
    if (errno != ENOENT && errno != ENOTDIR)
        return -errno;
    snprintf(bp, sizeof(bp), "%s/%016llx.p", dir, (unsigned long long)i);
    int fd = open(bp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR ? -ENOENT : -errno;
    uint8_t mark[16];
    ssize_t n = pread(fd, mark, sizeof(mark), 0);
    close(fd);
    if (n != (ssize_t)sizeof(mark))
        return -ENOENT; /* a marker torn by a crash: the block counts as never staged */
    out->placed = true;
    out->off = get_be64(mark);
    out->len = get_be64(mark + 8);
    return 0;
}

static int local_commit_blocks(struct ccr_store *s, const char *blob, uint64_t n_blocks,
                               struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct local *l = L(s);
    char dir[LP_MAX], bp[LP_MAX + 40], tmp[LP_MAX];
    block_dir(l, blob, dir);

    /* Every block must be there before anything is written. */
    struct staged *b = n_blocks ? ccr_calloc(n_blocks, sizeof(*b)) : NULL;
    if (n_blocks && !b)
        return ccr_err_set(err, -ENOMEM, blob, -1, "out of memory committing %llu blocks",
                           (unsigned long long)n_blocks);
    bool contiguous = n_blocks > 0;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n_blocks; i++) {
        int e = find_staged(dir, i, &b[i]);
        if (e == -ENOENT) {
            ccr_free(b);
            if (!root_exists(l))
                return no_container(l, err);
            return ccr_err_set(err, -EINVAL, blob, -1,
                               "cannot commit %llu blocks: block %llu was never staged",
                               (unsigned long long)n_blocks, (unsigned long long)i);
        }
        if (e < 0) {
            ccr_free(b);
            return ccr_err_set(err, map_errno(-e), blob, -1, "cannot read staged block %llu: %s",
                               (unsigned long long)i, ccr_blob_strerror(-e));
        }
        if (!b[i].placed || b[i].off != total)
            contiguous = false;
        total += b[i].len;
    }

    int rc = 0, fd = -1, data_fd = -1;
    char *buf = NULL;
    const char *src = tmp;
    if (contiguous) {
        /* Placed blocks tile the blob: the data file is the blob once cut to its length. */
        snprintf(bp, sizeof(bp), "%s/" DATA_NAME, dir);
        fd = open(bp, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = fail(err, blob, errno, "cannot open the blob's staging data file");
            goto out;
        }
        if (ftruncate(fd, (off_t)total) != 0) {
            rc = fail(err, blob, errno, "cannot cut the staged data to the blob's size");
            goto fail;
        }
        src = bp;
    } else if (n_blocks == 1) {
        /* The one plain block is the blob: stamp and rename it, no copy. */
        snprintf(bp, sizeof(bp), "%s/%016llx", dir, 0ull);
        fd = open(bp, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = fail(err, blob, errno, "cannot open staged block 0");
            goto out;
        }
        src = bp;
    } else {
        rc = tmp_open(l, blob, tmp, &fd, err);
        if (rc < 0)
            goto out;
        for (uint64_t i = 0; i < n_blocks; i++) {
            int in;
            if (b[i].placed) {
                if (data_fd < 0) {
                    snprintf(bp, sizeof(bp), "%s/" DATA_NAME, dir);
                    data_fd = open(bp, O_RDONLY | O_CLOEXEC);
                }
                in = data_fd;
            } else {
                snprintf(bp, sizeof(bp), "%s/%016llx", dir, (unsigned long long)i);
                in = open(bp, O_RDONLY | O_CLOEXEC);
            }
            if (in < 0) {
                rc = ccr_err_set(err, map_errno(errno), blob, -1, "cannot open staged block %llu: %s",
                                 (unsigned long long)i, ccr_blob_strerror(errno));
                goto fail;
            }
            int e = b[i].placed ? append_range(in, b[i].off, b[i].len, fd, &buf)
                                : append_range(in, 0, UINT64_MAX, fd, &buf);
            if (!b[i].placed)
                close(in);
            if (e) {
                rc = ccr_err_set(err, map_errno(e), blob, -1, "cannot assemble staged block %llu: %s",
                                 (unsigned long long)i, ccr_blob_strerror(e));
                goto fail;
            }
        }
    }
    rc = seal_file(fd, blob, err);
    if (rc < 0)
        goto fail;
    rc = install(l, blob, src, fd, out_props, err);
    if (rc < 0)
        goto fail;
    close(fd);
    fd = -1;
    drop_blocks(l, blob);
    goto out;
fail:
    if (fd >= 0)
        close(fd);
    fd = -1;
    if (src == tmp)
        unlink(tmp);
out:
    if (data_fd >= 0)
        close(data_fd);
    ccr_free(buf);
    ccr_free(b);
    return rc;
}

static int local_put_blob(struct ccr_store *s, const char *blob, const void *data, size_t len,
                          struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct local *l = L(s);
    char tmp[LP_MAX];
    int fd = -1;
    int rc = tmp_open(l, blob, tmp, &fd, err);
    if (rc < 0)
        return rc;
    int e = write_all(fd, data, len);
    if (e) {
        rc = fail(err, blob, e, "cannot write the blob");
        goto out;
    }
    rc = seal_file(fd, blob, err);
    if (rc < 0)
        goto out;
    rc = install(l, blob, tmp, fd, out_props, err);
out:
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* -ENOENT for a missing blob, naming the container when that is what is missing. */
static int missing(const struct local *l, const char *blob, int e, struct ccr_err *err)
{
    if (e == ENOENT || e == ENOTDIR || e == EISDIR) {
        if (!root_exists(l))
            return no_container(l, err);
        return ccr_err_set(err, -ENOENT, blob, -1, "no such blob");
    }
    return fail(err, blob, e, "cannot open the blob");
}

static ssize_t local_get(struct ccr_store *s, const char *blob, uint64_t offset, void *buf, size_t len,
                         const char *if_match, struct ccr_err *err)
{
    struct local *l = L(s);
    char p[LP_MAX];
    blob_path(l, blob, p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return missing(l, blob, errno, err);
    ssize_t rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = fail(err, blob, errno, "cannot stat the blob");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = missing(l, blob, EISDIR, err);
        goto out;
    }
    if (if_match && if_match[0]) {
        char etag[CCR_ETAG_MAX];
        make_etag(&st, etag);
        if (strcmp(etag, if_match) != 0) {
            rc = ccr_err_set(err, -ESTALE, blob, -1, "the blob changed (ETag %s, expected %s)", etag,
                             if_match);
            goto out;
        }
    }
    size_t done = 0;
    if (offset < (uint64_t)st.st_size) {
        while (done < len) {
            ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
            if (n == 0)
                break;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                rc = ccr_err_set(err, map_errno(errno), blob, (int64_t)(offset + done),
                                 "cannot read the blob: %s", ccr_blob_strerror(errno));
                goto out;
            }
            done += (size_t)n;
        }
    }
    rc = (ssize_t)done;
out:
    close(fd);
    return rc;
}

static int local_props(struct ccr_store *s, const char *blob, struct ccr_blob_props *out, struct ccr_err *err)
{
    struct local *l = L(s);
    char p[LP_MAX];
    blob_path(l, blob, p);
    struct stat st;
    if (stat(p, &st) != 0)
        return missing(l, blob, errno, err);
    if (!S_ISREG(st.st_mode))
        return missing(l, blob, EISDIR, err);
    fill_props(&st, out);
    return 0;
}

static int local_delete(struct ccr_store *s, const char *blob, struct ccr_err *err)
{
    struct local *l = L(s);
    char p[LP_MAX];
    blob_path(l, blob, p);
    int rc = 0;
    if (unlink(p) != 0)
        rc = missing(l, blob, errno, err);
    drop_blocks(l, blob);
    if (rc < 0)
        return rc;
    /* Prune the now empty parents, deepest first, never the container itself. */
    size_t rl = strlen(l->root);
    char *slash;
    while ((slash = strrchr(p, '/')) != NULL && (size_t)(slash - p) > rl) {
        *slash = '\0';
        if (rmdir(p) != 0)
            break;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Listing                                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

struct lent {
    char *key; /* name, plus '/' for a directory */
    bool dir;
};

struct lctx {
    int rootfd;
    const char *prefix;
    size_t plen;
    const char *delim;
    size_t dlen;
    const char *marker;
    size_t max;
    struct ccr_blob_item *items;
    size_t count, cap;
    bool more;
    int rc;
    struct ccr_err *err;
    const char *url;
};

static bool starts_with(const char *s, const char *p, size_t plen)
{
    return strncmp(s, p, plen) == 0;
}

static int lent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lent *)a)->key, ((const struct lent *)b)->key);
}

/* Reads the directory rel ("" = root) into a sorted array of entries (blob files and directories). */
static int read_dir_sorted(struct lctx *c, const char *rel, struct lent **out, size_t *out_n)
{
    int dfd = openat(c->rootfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) { /* removed while we walk: nothing there */
            *out = NULL;
            *out_n = 0;
            return 0;
        }
        return ccr_err_set(c->err, map_errno(errno), c->url, -1, "cannot open directory '%s': %s",
                           rel[0] ? rel : ".", ccr_blob_strerror(errno));
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return ccr_err_set(c->err, map_errno(e), c->url, -1, "cannot read directory: %s",
                           ccr_blob_strerror(e));
    }
    struct lent *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                rc = ccr_err_set(c->err, map_errno(errno), c->url, -1, "cannot read directory '%s': %s",
                                 rel[0] ? rel : ".", ccr_blob_strerror(errno));
            break;
        }
        const char *nm = de->d_name;
        if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
            continue;
        if (!rel[0] && strcmp(nm, ".ccr") == 0)
            continue;
        unsigned char t = de->d_type;
        if (t == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (t != DT_DIR && t != DT_REG)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct lent *nv = ccr_realloc(v, nc * sizeof(*v));
            if (!nv) {
                rc = ccr_err_set(c->err, -ENOMEM, c->url, -1, "out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        size_t nl = strlen(nm);
        char *k = ccr_malloc(nl + 2);
        if (!k) {
            rc = ccr_err_set(c->err, -ENOMEM, c->url, -1, "out of memory");
            break;
        }
        memcpy(k, nm, nl);
        if (t == DT_DIR)
            k[nl++] = '/';
        k[nl] = '\0';
        v[n].key = k;
        v[n].dir = t == DT_DIR;
        n++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            ccr_free(v[i].key);
        ccr_free(v);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), lent_cmp);
    *out = v;
    *out_n = n;
    return 0;
}

/* Is there at least one blob (regular file) anywhere under directory rel? */
static int subtree_has_blob(struct lctx *c, const char *rel, size_t rlen, bool *out)
{
    struct lent *v = NULL;
    size_t n = 0;
    int rc = read_dir_sorted(c, rel, &v, &n);
    if (rc < 0)
        return rc;
    bool found = false;
    for (size_t i = 0; i < n && !found && rc == 0; i++)
        if (!v[i].dir)
            found = true;
    for (size_t i = 0; i < n && !found && rc == 0; i++) {
        size_t kl = strlen(v[i].key);
        if (rlen + kl > CCR_BLOB_NAME_MAX + 1)
            continue;
        char sub[REL_MAX];
        memcpy(sub, rel, rlen);
        memcpy(sub + rlen, v[i].key, kl + 1);
        rc = subtree_has_blob(c, sub, rlen + kl, &found);
    }
    for (size_t i = 0; i < n; i++)
        ccr_free(v[i].key);
    ccr_free(v);
    if (rc == 0)
        *out = found;
    return rc;
}

/*
 * Offers one item with key `key` (a blob name, or a rolled-up prefix when is_prefix). Keeps byte order,
 * drops duplicates of the previous prefix and notices when the page is full.
 */
static int offer(struct lctx *c, const char *key, size_t klen, bool is_prefix)
{
    if (c->marker && strcmp(key, c->marker) <= 0)
        return 0;
    if (c->count > 0) {
        const struct ccr_blob_item *last = &c->items[c->count - 1];
        if (last->is_prefix && is_prefix && strcmp(last->name, key) == 0)
            return 0;
    }
    if (c->count == c->max) {
        c->more = true;
        return 0;
    }
    struct ccr_blob_props props;
    memset(&props, 0, sizeof(props));
    if (!is_prefix) {
        struct stat st;
        if (fstatat(c->rootfd, key, &st, 0) != 0 || !S_ISREG(st.st_mode))
            return 0; /* deleted while listing */
        fill_props(&st, &props);
    }
    if (c->count == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        if (nc > c->max)
            nc = c->max;
        struct ccr_blob_item *ni = ccr_realloc(c->items, nc * sizeof(*ni));
        if (!ni)
            return ccr_err_set(c->err, -ENOMEM, c->url, -1, "out of memory");
        c->items = ni;
        c->cap = nc;
    }
    char *nm = ccr_malloc(klen + 1);
    if (!nm)
        return ccr_err_set(c->err, -ENOMEM, c->url, -1, "out of memory");
    memcpy(nm, key, klen);
    nm[klen] = '\0';
    c->items[c->count].name = nm;
    c->items[c->count].is_prefix = is_prefix;
    c->items[c->count].props = props;
    c->count++;
    return 0;
}

/* Length of the rolled-up prefix of name (which starts with the listing prefix), or 0 for none. */
static size_t rollup_len(const struct lctx *c, const char *name)
{
    if (!c->dlen)
        return 0;
    const char *hit = strstr(name + c->plen, c->delim);
    return hit ? (size_t)(hit - name) + c->dlen : 0;
}

static int walk(struct lctx *c, const char *rel, size_t rlen)
{
    struct lent *v = NULL;
    size_t n = 0;
    int rc = read_dir_sorted(c, rel, &v, &n);
    if (rc < 0)
        return rc;
    char full[REL_MAX];
    memcpy(full, rel, rlen);
    for (size_t i = 0; i < n && rc == 0 && !c->more; i++) {
        size_t kl = strlen(v[i].key);
        if (rlen + kl > CCR_BLOB_NAME_MAX + 1)
            continue; /* cannot hold a valid blob name */
        memcpy(full + rlen, v[i].key, kl + 1);
        size_t fl = rlen + kl;
        bool under = starts_with(full, c->prefix, c->plen);
        if (!under) {
            if (v[i].dir && starts_with(c->prefix, full, fl))
                ; /* the prefix lies inside this directory */
            else if (strcmp(full, c->prefix) > 0)
                break; /* sorted: everything after is beyond the prefix */
            else
                continue;
        }
        if (v[i].dir) {
            /* Entirely before the marker? */
            if (c->marker && strcmp(full, c->marker) < 0 && !starts_with(c->marker, full, fl))
                continue;
            size_t rl = under ? rollup_len(c, full) : 0;
            if (rl > 0 && rl <= fl) {
                /* every blob below rolls up into full[0..rl) */
                bool has = false;
                rc = subtree_has_blob(c, full, fl, &has);
                if (rc == 0 && has)
                    rc = offer(c, full, rl, true);
                continue;
            }
            rc = walk(c, full, fl);
        } else {
            size_t rl = rollup_len(c, full);
            rc = rl ? offer(c, full, rl, true) : offer(c, full, fl, false);
        }
    }
    for (size_t i = 0; i < n; i++)
        ccr_free(v[i].key);
    ccr_free(v);
    return rc;
}

static int local_list(struct ccr_store *s, const char *prefix, const char *delimiter, const char *marker,
                      size_t max_results, struct ccr_blob_page *out, struct ccr_err *err)
{
    struct local *l = L(s);
    struct lctx c = {
        .prefix = prefix,
        .plen = strlen(prefix),
        .delim = delimiter,
        .dlen = strlen(delimiter),
        .marker = marker,
        .max = max_results,
        .err = err,
        .url = s->url,
    };
    c.rootfd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.rootfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return no_container(l, err);
        return fail(err, s->url, errno, "cannot open the container");
    }
    int rc = walk(&c, "", 0);
    close(c.rootfd);
    char *next = NULL;
    if (rc == 0 && c.more) {
        next = ccr_blob_strdup(c.items[c.count - 1].name);
        if (!next)
            rc = ccr_err_set(err, -ENOMEM, s->url, -1, "out of memory");
    }
    if (rc < 0) {
        struct ccr_blob_page tmp = {.items = c.items, .count = c.count, .next_marker = NULL};
        ccr_blob_page_fini(&tmp);
        return rc;
    }
    out->items = c.items;
    out->count = c.count;
    out->next_marker = next;
    return 0;
}

static void local_destroy(struct ccr_store *s)
{
    struct local *l = L(s);
    ccr_free(l->root);
    ccr_free(s->url);
    ccr_free(l);
}

static const struct ccr_store_ops local_ops = {
    .scheme = "file",
    .destroy = local_destroy,
    .create_container = local_create_container,
    .put_block = local_put_block,
    .commit_blocks = local_commit_blocks,
    .put_blob = local_put_blob,
    .get = local_get,
    .props = local_props,
    .del = local_delete,
    .list = local_list,
};

int ccr_local_open(const char *root, struct ccr_store **out, struct ccr_err *err)
{
    size_t rl = strlen(root);
    if (rl > ROOT_MAX)
        return ccr_err_set(err, -ENAMETOOLONG, root, -1, "the store path is longer than %d bytes", ROOT_MAX);
    struct local *l = ccr_calloc(1, sizeof(*l));
    if (!l)
        return ccr_err_set(err, -ENOMEM, root, -1, "out of memory");
    l->root = ccr_blob_strdup(root);
    l->base.url = ccr_malloc(rl + 8);
    if (!l->root || !l->base.url) {
        ccr_free(l->root);
        ccr_free(l->base.url);
        ccr_free(l);
        return ccr_err_set(err, -ENOMEM, root, -1, "out of memory");
    }
    snprintf(l->base.url, rl + 8, "file://%s", root);
    l->base.ops = &local_ops;
    l->base.impl = l;
    atomic_init(&l->staging_ok, false);
    *out = &l->base;
    return 0;
}
