/*
 * inspect.c - ccr_codec_inspect: what an encrypted file is, and (with a key) whether every region of it
 * authenticates. Verification uses the same parallel pipeline as decryption, writing nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec_int.h"

void ccr_inspect_opts_init(struct ccr_inspect_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = CCR_MODE_AUTO;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ENODATA;
        got += (size_t)n;
    }
    return 0;
}

/* Fills the ccr1 fields from the header. Returns 0 or the failure (in info->err). */
static int inspect_ccr1(int fd, const char *path, const struct ccr_inspect_opts *o, struct ccr_inspect *info)
{
    struct ccr_err *err = &info->err;
    if (info->blob_size < CCR1_HEADER_LEN)
        return ccr_err_set(err, -EBADMSG, path, 0,
                           "not a ccr1 file: %llu bytes is too short for the 64-byte header",
                           (unsigned long long)info->blob_size);
    uint8_t header[CCR1_HEADER_LEN];
    int rc = read_at(fd, header, sizeof(header), 0);
    if (rc)
        return ccr_err_set(err, rc == -ENODATA ? -EIO : rc, path, 0, "read failed: %s", pl_strerror(rc));
    struct ccr_ccr1_info h;
    rc = ccr_ccr1_header_parse(header, &h, err);
    if (rc) {
        ccr_err_where(err, path);
        pl_err_header(err);
        return rc;
    }
    memcpy(info->key_id, h.key_id, CCR_KEY_ID_LEN);
    info->has_key_id = true;
    info->region_size = (uint64_t)1 << h.region_log2;
    rc = ccr_ccr1_plain_size(info->blob_size, h.region_log2, &info->plaintext_size, &info->regions, err);
    if (rc) {
        snprintf(err->msg, sizeof(err->msg),
                 "malformed ccr1 file: its size (%llu bytes) fits no whole number of %llu-byte regions "
                 "(truncated or extended)",
                 (unsigned long long)info->blob_size, (unsigned long long)info->region_size);
        ccr_err_where(err, path);
        return rc;
    }
    info->plain_known = true;
    if (o->region_size && o->region_size != info->region_size)
        return ccr_err_set(err, -EBADMSG, path, 5,
                           "region size mismatch: the header says %llu bytes, %llu bytes were requested "
                           "(--region-size)",
                           (unsigned long long)info->region_size, (unsigned long long)o->region_size);
    return 0;
}

static int inspect_cse(int fd, const char *path, uint64_t chunk, bool detected, struct ccr_inspect *info)
{
    struct ccr_err *err = &info->err;
    info->region_size = chunk;
    uint8_t trailer[CCR_CSE_TRAILER_LEN] = {0};
    if (info->blob_size >= CCR_CSE_TRAILER_LEN) {
        int rc = read_at(fd, trailer, sizeof(trailer), info->blob_size - CCR_CSE_TRAILER_LEN);
        if (rc)
            return ccr_err_set(err, rc == -ENODATA ? -EIO : rc, path, -1, "read failed: %s", pl_strerror(rc));
    }
    int rc = ccr_cse_plain_size(info->blob_size, chunk, trailer, &info->plaintext_size, &info->regions, err);
    if (rc) {
        char old[sizeof(err->msg)];
        memcpy(old, err->msg, sizeof(old));
        if (detected)
            pl_err_rewrap(
                err,
                "not a ccr1 file (no \"CCR1\" magic), nor a cleanroom-cse file with chunk size %llu: %s; "
                "if it is cleanroom-cse with another chunk size, give it with --region-size",
                (unsigned long long)chunk, old[0] ? old : "its size does not fit");
        else
            pl_err_rewrap(err, "malformed cleanroom-cse file (chunk size %llu): %s",
                          (unsigned long long)chunk, old[0] ? old : "its size does not fit");
        ccr_err_where(err, path);
        return rc;
    }
    info->plain_known = true;
    return 0;
}

/* Authenticates every region with the pipeline. */
static int verify(const char *path, const struct ccr_key *key, const struct ccr_inspect_opts *o,
                  struct ccr_inspect *info)
{
    struct pl_params pp = {
        .op = PL_VERIFY,
        .mode = info->mode,
        .key = key,
        .region_size = info->mode == CCR_MODE_CSE ? info->region_size : o->region_size,
        .threads = o->threads,
        .cancel = o->cancel,
        .progress = o->progress,
        .progress_arg = o->progress_arg,
        .t0 = pl_now(),
    };
    struct pl_file f = {.src = (char *)path, .size = info->blob_size};
    struct ccr_codec_result res;
    memset(&res, 0, sizeof(res));
    int rc = pl_run(&pp, &f, 1, &res);
    if (rc) {
        ccr_err_set(&info->err, rc, path, -1, "cannot start verification: %s", pl_strerror(rc));
    } else if (res.errors) {
        info->err = res.failed[0].err;
        rc = info->err.code ? info->err.code : -EIO;
        if (rc == -EBADMSG) {
            info->authenticated = 0;
            info->failed_region = res.failed[0].region;
        }
    } else {
        info->authenticated = 1;
    }
    ccr_codec_result_fini(&res);
    return rc;
}

int ccr_codec_inspect(const char *path, const struct ccr_key *key, const struct ccr_inspect_opts *opts,
                      struct ccr_inspect *info)
{
    if (!info)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->key_matches = -1;
    info->authenticated = -1;
    info->failed_region = -1;
    ccr_err_clear(&info->err);
    struct ccr_inspect_opts defaults;
    if (!opts) {
        ccr_inspect_opts_init(&defaults);
        opts = &defaults;
    }
    info->mode = opts->mode;
    if (!path)
        return ccr_err_set(&info->err, -EINVAL, NULL, -1, "no file given");
    if (opts->mode != CCR_MODE_AUTO && opts->mode != CCR_MODE_CCR1 && opts->mode != CCR_MODE_CSE)
        return ccr_err_set(&info->err, -EINVAL, path, -1, "mode %s has no file format to inspect",
                           ccr_mode_name(opts->mode));
    char why[160];
    if (opts->mode != CCR_MODE_AUTO && ccr_region_size_check(opts->mode, opts->region_size, why, sizeof(why)))
        return ccr_err_set(&info->err, -EINVAL, path, -1, "%s", why);

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = -errno;
        return ccr_err_set(&info->err, e, path, -1, "cannot open: %s", pl_strerror(e));
    }
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        ccr_err_set(&info->err, rc, path, -1, "cannot stat: %s", pl_strerror(rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ccr_err_set(&info->err, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, path, -1, "not a regular file");
        goto out;
    }
    info->blob_size = (uint64_t)st.st_size;

    bool detected = false;
    if (info->mode == CCR_MODE_AUTO) {
        uint8_t magic[4];
        detected = true;
        info->mode = CCR_MODE_CSE;
        if (info->blob_size >= sizeof(magic)) {
            rc = read_at(fd, magic, sizeof(magic), 0);
            if (rc) {
                ccr_err_set(&info->err, rc == -ENODATA ? -EIO : rc, path, 0, "read failed: %s",
                            pl_strerror(rc));
                goto out;
            }
            if (memcmp(magic, "CCR1", 4) == 0)
                info->mode = CCR_MODE_CCR1;
        }
    }
    if (info->mode == CCR_MODE_CCR1) {
        rc = inspect_ccr1(fd, path, opts, info);
    } else {
        uint64_t chunk = opts->region_size ? opts->region_size : CCR_CSE_CHUNK_DEFAULT64;
        if (ccr_region_size_check(CCR_MODE_CSE, chunk, why, sizeof(why)) != 0) {
            rc = ccr_err_set(&info->err, -EINVAL, path, -1, "%s", why);
            goto out;
        }
        rc = inspect_cse(fd, path, chunk, detected, info);
    }
    if (rc || !key)
        goto out;

    if (info->mode == CCR_MODE_CCR1) {
        uint8_t id[CCR_KEY_ID_LEN];
        rc = ccr_key_id(key, id);
        if (rc) {
            ccr_err_set(&info->err, rc, path, -1, "cannot compute the key id: %s", pl_strerror(rc));
            goto out;
        }
        info->key_matches = memcmp(id, info->key_id, CCR_KEY_ID_LEN) == 0;
        if (!info->key_matches) {
            char a[2 * CCR_KEY_ID_LEN + 1], b[2 * CCR_KEY_ID_LEN + 1];
            for (int i = 0; i < CCR_KEY_ID_LEN; i++) {
                snprintf(a + 2 * i, 3, "%02x", info->key_id[i]);
                snprintf(b + 2 * i, 3, "%02x", id[i]);
            }
            rc = ccr_err_set(&info->err, -ENOKEY, path, 8,
                             "wrong key: the file was encrypted under key id %s, the key given has id %s", a,
                             b);
            goto out;
        }
    }
    rc = verify(path, key, opts, info);
out:
    /* with a key, a malformed file is as much "does not authenticate" as a bad tag */
    if (key && rc == -EBADMSG)
        info->authenticated = 0;
    close(fd);
    return rc;
}
