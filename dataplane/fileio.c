/*
 * fileio.c - reading and atomically writing small files (PEM keys, wrapped keys) for the front ends, and
 * the file I/O helpers the file codec and the transfer engine share (full preadv/pwritev, temporary files).
 */
#include <errno.h>
#include <sys/uio.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec_int.h"

int ccr_file_read_all(const char *path, size_t max, char **out_buf, size_t *out_len, struct ccr_err *err)
{
    if (!path || !out_buf || !out_len)
        return ccr_err_set(err, -EINVAL, path, -1, "missing argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = -errno;
        return ccr_err_set(err, e, path, -1, "cannot open: %s", pl_strerror(e));
    }
    int rc = 0;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, path, -1, "cannot stat: %s", pl_strerror(rc));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ccr_err_set(err, -EISDIR, path, -1, "is a directory, not a file");
        goto out;
    }
    buf = ccr_malloc(max + 1);
    if (!buf) {
        rc = ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
        goto out;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            ccr_err_set(err, rc, path, (int64_t)len, "read failed: %s", pl_strerror(rc));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = ccr_err_set(err, -EFBIG, path, -1, "too large (more than %zu bytes)", max);
            goto out;
        }
    }
    buf[len] = '\0';
    *out_buf = buf;
    *out_len = len;
    buf = NULL;
out:
    if (buf) {
        ccr_wipe(buf, max + 1);
        ccr_free(buf);
    }
    close(fd);
    return rc;
}

int ccr_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode, bool overwrite,
                          struct ccr_err *err)
{
    if (!path || !*path || (len && !data))
        return ccr_err_set(err, -EINVAL, path, -1, "missing argument");
    struct stat st;
    if (!overwrite && lstat(path, &st) == 0)
        return ccr_err_set(err, -EEXIST, path, -1, "already exists (use --force to replace it)");
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dirlen;
    if (!*base)
        return ccr_err_set(err, -EISDIR, path, -1, "names a directory, not a file");
    size_t cap = strlen(path) + 32;
    char *tmp = ccr_malloc(cap);
    if (!tmp)
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    snprintf(tmp, cap, "%.*s.%.200s.ccr-tmp-XXXXXX", (int)dirlen, path, base);
    int rc = 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        ccr_err_set(err, rc, path, -1, "cannot create a temporary file next to it: %s", pl_strerror(rc));
        ccr_free(tmp);
        return rc;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0 && rc == 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            ccr_err_set(err, rc, path, -1, "write failed: %s", pl_strerror(rc));
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && fchmod(fd, (mode_t)(mode & 07777)) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, path, -1, "cannot set permissions: %s", pl_strerror(rc));
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, path, -1, "fsync failed: %s", pl_strerror(rc));
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
        ccr_err_set(err, rc, path, -1, "close failed: %s", pl_strerror(rc));
    }
    if (rc == 0) {
        if (overwrite) {
            if (rename(tmp, path) != 0)
                rc = -errno;
        } else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
            rc = -errno;
            if (rc == -EINVAL || rc == -ENOSYS || rc == -ENOTSUP) {
                rc = link(tmp, path) == 0 ? 0 : -errno;
                if (rc == 0)
                    unlink(tmp);
            }
        }
        if (rc == -EEXIST)
            ccr_err_set(err, rc, path, -1, "already exists (use --force to replace it)");
        else if (rc)
            ccr_err_set(err, rc, path, -1, "cannot rename into place: %s", pl_strerror(rc));
    }
    if (rc)
        unlink(tmp);
    ccr_free(tmp);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* I/O helpers shared by the file codec and the transfer engine                                           */
/* ----------------------------------------------------------------------------------------------------- */

/* Consumes n transferred bytes from the front of an iovec array (partial reads and writes). */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
    while (n > 0 && *cnt > 0) {
        struct iovec *v = *iov;
        if (n >= v->iov_len) {
            n -= v->iov_len;
            v->iov_len = 0;
            (*iov)++;
            (*cnt)--;
        } else {
            v->iov_base = (uint8_t *)v->iov_base + n;
            v->iov_len -= n;
            n = 0;
        }
    }
}

/* Reads exactly the bytes described by iov at off, unless the file ends first. Returns bytes read. */
ssize_t pl_preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    ssize_t total = 0;
    while (cnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            cnt--;
            continue;
        }
        ssize_t n = preadv(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        total += n;
        off += (uint64_t)n;
        iov_advance(&iov, &cnt, (size_t)n);
    }
    return total;
}

int pl_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            cnt--;
            continue;
        }
        ssize_t n = pwritev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        off += (uint64_t)n;
        iov_advance(&iov, &cnt, (size_t)n);
    }
    return 0;
}

/* Creates `.NAME.ccr-tmp-XXXXXX` next to dst (0600, O_EXCL). */
int pl_temp_create(const char *dst, char **out_path, int *out_fd, struct ccr_err *err)
{
    const char *slash = strrchr(dst, '/');
    size_t dirlen = slash ? (size_t)(slash - dst) + 1 : 0;
    const char *base = dst + dirlen;
    size_t baselen = strlen(base);
    if (baselen > 200) /* keep the temporary name within NAME_MAX */
        baselen = 200;
    size_t len = dirlen + 1 + baselen + sizeof(".ccr-tmp-XXXXXX");
    char *path = ccr_malloc(len);
    if (!path)
        return ccr_err_set(err, -ENOMEM, dst, -1, "out of memory");
    snprintf(path, len, "%.*s.%.*s.ccr-tmp-XXXXXX", (int)dirlen, dst, (int)baselen, base);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        ccr_err_set(err, e, dst, -1, "cannot create a temporary file in %s%.*s: %s",
                    dirlen ? "" : "the current directory", (int)dirlen, dst, pl_strerror(e));
        ccr_free(path);
        return e;
    }
    *out_path = path;
    *out_fd = fd;
    return 0;
}
