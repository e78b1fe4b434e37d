/*
 * keyfile.c - key files: exactly 32 raw bytes, mode 0600 (the clean room CLI's `<datastore>.bin`).
 *
 * Storing is atomic: the key is written to a temporary file in the target's directory (created O_EXCL,
 * mode 0600), fsynced, then moved into place, and the directory is fsynced. Without overwrite the move is
 * link() + unlink(), so an existing target is refused with -EEXIST by the kernel, with no window between
 * a check and the move. A failure at any step removes the temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto_int.h"

/* The message for errno e (thread-safe; GNU strerror_r returns the string to use). */
static const char *errstr(int e, char *buf, size_t n)
{
    return strerror_r(e, buf, n);
}

static int read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, n - *got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int ccr_key_file_load(const char *path, struct ccr_key *out, unsigned *out_flags, struct ccr_err *err)
{
    if (!path || !out)
        return ccr_err_set(err, -EINVAL, path, -1, "no key file path given");
    char eb[128];
    uint8_t buf[CCR_KEY_LEN + 1]; /* one more byte: notices a file that grew after fstat */
    size_t got = 0;
    int rc;

    /* O_NONBLOCK: opening a FIFO must not hang; it changes nothing for regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return ccr_err_set(err, -e, path, -1, "cannot open key file: %s", errstr(e, eb, sizeof(eb)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "cannot stat key file: %s", errstr(e, eb, sizeof(eb)));
        goto out_close;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ccr_err_set(err, -EISDIR, path, -1, "key file is a directory");
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ccr_err_set(err, -EINVAL, path, -1, "key file is not a regular file");
        goto out_close;
    }
    if (st.st_size != CCR_KEY_LEN) {
        rc = ccr_err_set(err, -EINVAL, path, -1, "key file must be exactly %d bytes, this one has %lld",
                         CCR_KEY_LEN, (long long)st.st_size);
        goto out_close;
    }
    rc = read_full(fd, buf, sizeof(buf), &got);
    if (rc < 0) {
        rc = ccr_err_set(err, rc, path, -1, "cannot read key file: %s", errstr(-rc, eb, sizeof(eb)));
        goto out_wipe;
    }
    if (got != CCR_KEY_LEN) {
        rc = ccr_err_set(err, -EINVAL, path, -1,
                         "key file must be exactly %d bytes, this one has %s%zu (it changed while read)",
                         CCR_KEY_LEN, got > CCR_KEY_LEN ? "more than " : "",
                         got > CCR_KEY_LEN ? got - 1 : got);
        goto out_wipe;
    }
    memcpy(out->b, buf, CCR_KEY_LEN);
    if (out_flags)
        *out_flags = (st.st_mode & 077) ? CCR_KEYFILE_LOOSE_PERMS : 0;
    rc = 0;
out_wipe:
    ccr_wipe(buf, sizeof(buf));
out_close:
    close(fd);
    return rc;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves tmp to path without replacing an existing path: link + unlink, or renameat2 where links fail. */
static int move_noreplace(const char *tmp, const char *path)
{
    if (link(tmp, path) == 0) {
        (void)unlink(tmp); /* the key is in place; a leftover temp name is the caller's cleanup */
        return 0;
    }
    int e = errno;
    if (e != EPERM && e != EOPNOTSUPP && e != ENOSYS && e != EMLINK)
        return -e;
    /* Filesystems without hard links (FUSE, vfat): the kernel's own no-replace rename. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    return errno == EINVAL || errno == ENOSYS ? -e : -errno;
}

int ccr_key_file_store(const char *path, const struct ccr_key *key, bool overwrite, struct ccr_err *err)
{
    if (!path || !key || !path[0])
        return ccr_err_set(err, -EINVAL, path, -1, "no key file path given");
    char eb[128];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return ccr_err_set(err, -EINVAL, path, -1, "key file path does not name a file");

    /* Directory part ("." for a bare name, "/" for a file in the root). */
    size_t dirlen = slash ? (size_t)(slash - path) : 1;
    char *dir = ccr_malloc(dirlen + 1);
    char *tmp = ccr_malloc(strlen(path) + 32);
    int rc = -ENOMEM, fd = -1;
    bool tmp_exists = false;
    if (!dir || !tmp) {
        rc = ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
        goto out_free;
    }
    if (!slash)
        memcpy(dir, ".", 2);
    else if (dirlen == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, dirlen);
        dir[dirlen] = '\0';
    }

    /* Temporary file next to the target: "<dir>/.<base>.tmp-XXXXXX", O_CREAT | O_EXCL, mode 0600. */
    sprintf(tmp, "%.*s.%s.tmp-XXXXXX", slash ? (int)(base - path) : 0, path, base);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "cannot create a temporary file in %s: %s", dir,
                         errstr(e, eb, sizeof(eb)));
        goto out_free;
    }
    tmp_exists = true;
    if (fchmod(fd, 0600) != 0) { /* whatever the umask: exactly 0600 */
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "cannot set mode 0600 on %s: %s", tmp, errstr(e, eb, sizeof(eb)));
        goto out_close;
    }
    rc = write_full(fd, key->b, sizeof(key->b));
    if (rc < 0) {
        rc = ccr_err_set(err, rc, path, -1, "cannot write %s: %s", tmp, errstr(-rc, eb, sizeof(eb)));
        goto out_close;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "cannot fsync %s: %s", tmp, errstr(e, eb, sizeof(eb)));
        goto out_close;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "cannot close %s: %s", tmp, errstr(e, eb, sizeof(eb)));
        goto out_unlink;
    }

    if (overwrite) {
        rc = rename(tmp, path) == 0 ? 0 : -errno;
    } else {
        rc = move_noreplace(tmp, path);
    }
    if (rc < 0) {
        if (rc == -EEXIST)
            ccr_err_set(err, rc, path, -1, "key file already exists (not overwritten)");
        else
            ccr_err_set(err, rc, path, -1, "cannot move %s into place: %s", tmp, errstr(-rc, eb, sizeof(eb)));
        goto out_unlink;
    }
    tmp_exists = false;

    /* Make the new directory entry durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "key written, but cannot open directory %s to fsync it: %s", dir,
                         errstr(e, eb, sizeof(eb)));
        goto out_free;
    }
    if (fsync(dfd) != 0 && errno != EINVAL) { /* EINVAL: the filesystem cannot sync directories */
        int e = errno;
        rc = ccr_err_set(err, -e, path, -1, "key written, but cannot fsync directory %s: %s", dir,
                         errstr(e, eb, sizeof(eb)));
        close(dfd);
        goto out_free;
    }
    close(dfd);
    rc = 0;
    goto out_free;

out_close:
    if (fd >= 0)
        close(fd);
out_unlink:
    if (tmp_exists)
        (void)unlink(tmp);
out_free:
    ccr_free(tmp);
    ccr_free(dir);
    return rc;
}
