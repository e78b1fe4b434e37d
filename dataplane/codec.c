/*
 * codec.c - ccr_codec_run: encrypt or decrypt one file or a directory tree with the pipeline.
 *
 * Tree mode lists the whole source first (sorted, so runs and reports are deterministic), recreates its
 * directories under the destination, then hands every regular file to one pipeline run, so that many
 * small files are in flight at once. The listing costs memory proportional to the number of files (a
 * path pair each), never to their size.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec_int.h"

void ccr_codec_opts_init(struct ccr_codec_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = CCR_MODE_CCR1;
}

void ccr_codec_result_fini(struct ccr_codec_result *r)
{
    if (!r)
        return;
    for (uint64_t i = 0; i < r->errors; i++)
        ccr_free(r->failed[i].path);
    ccr_free(r->failed);
    memset(r, 0, sizeof(*r));
}

/* root + "/" + rel (rel may be empty: a copy of root). NULL on ENOMEM. */
static char *path_join(const char *root, const char *rel)
{
    size_t a = strlen(root), b = strlen(rel);
    bool slash = b > 0 && a > 0 && root[a - 1] != '/';
    char *s = ccr_malloc(a + slash + b + 1);
    if (!s)
        return NULL;
    memcpy(s, root, a);
    if (slash)
        s[a] = '/';
    memcpy(s + a + slash, rel, b);
    s[a + slash + b] = '\0';
    return s;
}

/* ----------------------------------------------------------------------------------------------------- */
/* listing the source tree                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

/* What walking the source collects: the files to process and the directories to recreate. */
struct walk {
    const char *dst_root;
    struct pl_file *files;
    size_t n_files, cap_files;
    char **dirs; /* relative paths of subdirectories, parents before children */
    size_t n_dirs, cap_dirs;
    struct ccr_codec_result *res;
};

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

static int record_failure(struct ccr_codec_result *res, const char *path, int code, const char *what)
{
    struct ccr_err e;
    ccr_err_set(&e, code, path, -1, "%s: %s", what, pl_strerror(code));
    return pl_result_add_failure(res, path, -1, &e);
}

static int walk_failure(void *arg, const char *path, int code, const char *what)
{
    struct walk *w = arg;
    return record_failure(w->res, path, code, what);
}

static void walk_skipped(void *arg)
{
    struct walk *w = arg;
    w->res->skipped++;
}

/* Directories are recreated in the destination, regular files processed. */
static int walk_entry(void *arg, enum pl_walk_kind kind, const char *rel, const char *full,
                      const struct stat *st, bool nofollow)
{
    struct walk *w = arg;
    if (kind == PL_WALK_DIR) {
        if (grow((void **)&w->dirs, &w->cap_dirs, w->n_dirs, sizeof(*w->dirs)))
            return -ENOMEM;
        if (!(w->dirs[w->n_dirs] = strdup(rel)))
            return -ENOMEM;
        w->n_dirs++;
        return 0;
    }
    if (grow((void **)&w->files, &w->cap_files, w->n_files, sizeof(*w->files)))
        return -ENOMEM;
    char *src = strdup(full), *dst = path_join(w->dst_root, rel);
    if (!src || !dst) {
        ccr_free(src);
        ccr_free(dst);
        return -ENOMEM;
    }
    w->files[w->n_files++] =
        (struct pl_file){.src = src, .dst = dst, .size = (uint64_t)st->st_size, .nofollow = nofollow};
    return 0;
}

static void walk_fini(struct walk *w)
{
    for (size_t i = 0; i < w->n_files; i++) {
        ccr_free(w->files[i].src);
        ccr_free(w->files[i].dst);
    }
    ccr_free(w->files);
    for (size_t i = 0; i < w->n_dirs; i++)
        ccr_free(w->dirs[i]);
    ccr_free(w->dirs);
}

/* fsync a directory so that the renames in it are durable; errors are not fatal (some fs refuse). */
static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        sync_dir(".");
        return;
    }
    char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (dir) {
        sync_dir(dir);
        free(dir);
    }
}

/* True if dst (which may not exist yet) resolves to src_dir itself or a path inside it. */
static bool inside(const char *src_dir, const char *dst_in)
{
    char *dst = strdup(dst_in);
    if (!dst)
        return false;
    for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--)
        dst[n - 1] = '\0';
    char *rs = realpath(src_dir, NULL);
    if (!rs) {
        free(dst);
        return false;
    }
    char *rd = realpath(dst, NULL);
    if (!rd) {
        /* dst does not exist: resolve its parent */
        const char *slash = strrchr(dst, '/');
        char *parent = slash ? strndup(dst, slash == dst ? 1 : (size_t)(slash - dst)) : strdup(".");
        char *rp = parent ? realpath(parent, NULL) : NULL;
        if (rp) {
            const char *base = slash ? slash + 1 : dst;
            rd = malloc(strlen(rp) + strlen(base) + 2);
            if (rd)
                sprintf(rd, "%s/%s", rp, base);
        }
        free(rp);
        free(parent);
    }
    bool in = false;
    if (rd) {
        size_t n = strlen(rs);
        in = strncmp(rd, rs, n) == 0 && (rd[n] == '\0' || rd[n] == '/' || (n == 1 && rs[0] == '/'));
    }
    free(rs);
    free(rd);
    free(dst);
    return in;
}

/* ----------------------------------------------------------------------------------------------------- */
/* entry point                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

/* The failure that decides the return value: the first authentication/format failure, else the first. */
int pl_worst_failure(const struct ccr_codec_failure *failed, uint64_t n, struct ccr_err *err)
{
    const struct ccr_codec_failure *pick = NULL;
    for (uint64_t i = 0; i < n; i++) {
        if (failed[i].err.code == -EBADMSG) {
            pick = &failed[i];
            break;
        }
        if (!pick)
            pick = &failed[i];
    }
    if (!pick)
        return 0;
    if (err)
        *err = pick->err;
    return pick->err.code ? pick->err.code : -EIO;
}

static int run_file(struct pl_params *pp, const char *src, const char *dst, uint64_t size,
                    struct ccr_codec_result *res, struct ccr_err *err)
{
    struct stat st;
    if (lstat(dst, &st) == 0) {
        if (!pp->force)
            return ccr_err_set(err, -EEXIST, dst, -1, "already exists (use --force to replace it)");
        if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
            return ccr_err_set(err, -EISDIR, dst, -1, "is a directory (give the output file's name)");
    }
    struct pl_file f = {.src = strdup(src), .dst = strdup(dst), .size = size};
    int rc = -ENOMEM;
    if (f.src && f.dst)
        rc = pl_run(pp, &f, 1, res);
    if (rc)
        ccr_err_set(err, rc, src, -1, "cannot start: %s", pl_strerror(rc));
    else
        sync_parent(dst);
    free(f.src);
    free(f.dst);
    return rc;
}

static int run_tree(struct pl_params *pp, const char *src, const char *dst, struct ccr_codec_result *res,
                    struct ccr_err *err)
{
    struct stat st;
    bool exists = lstat(dst, &st) == 0;
    if (exists && !pp->force)
        return ccr_err_set(err, -EEXIST, dst, -1, "already exists (use --force to write into it)");
    if (exists && (stat(dst, &st) != 0 || !S_ISDIR(st.st_mode)))
        return ccr_err_set(err, -ENOTDIR, dst, -1,
                           "exists and is not a directory (the source is a directory)");
    if (inside(src, dst))
        return ccr_err_set(err, -EINVAL, dst, -1, "the destination lies inside the source directory");

    struct walk w = {.dst_root = dst, .res = res};
    const struct pl_walk walker = {
        .root = src,
        .skip_note = "only regular files and directories are processed",
        .cancel = pp->cancel,
        .entry = walk_entry,
        .failure = walk_failure,
        .skipped = walk_skipped,
        .arg = &w,
    };
    int rc = pl_walk_run(&walker);
    if (rc) {
        ccr_err_set(err, rc, src, -1, rc == -ECANCELED ? "cancelled" : "cannot list: %s", pl_strerror(rc));
        goto out;
    }
    if (!exists && mkdir(dst, 0777) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, dst, -1, "cannot create directory: %s", pl_strerror(rc));
        goto out;
    }
    res->dirs++;
    for (size_t i = 0; i < w.n_dirs; i++) {
        char *d = path_join(dst, w.dirs[i]);
        if (!d) {
            rc = ccr_err_set(err, -ENOMEM, dst, -1, "out of memory");
            goto out;
        }
        if (mkdir(d, 0777) == 0 || (errno == EEXIST && stat(d, &st) == 0 && S_ISDIR(st.st_mode))) {
            res->dirs++;
        } else {
            int e = errno == EEXIST ? -ENOTDIR : -errno;
            if (record_failure(res, d, e, "cannot create directory") != 0)
                rc = -ENOMEM;
        }
        ccr_free(d);
        if (rc)
            goto out;
    }
    rc = pl_run(pp, w.files, w.n_files, res);
    if (rc) {
        ccr_err_set(err, rc, src, -1, "cannot start: %s", pl_strerror(rc));
        goto out;
    }
    sync_dir(dst);
    for (size_t i = 0; i < w.n_dirs; i++) {
        char *d = path_join(dst, w.dirs[i]);
        if (d)
            sync_dir(d);
        ccr_free(d);
    }
    sync_parent(dst);
out:
    walk_fini(&w);
    return rc;
}

int ccr_codec_run(enum ccr_codec_op op, const struct ccr_key *key, const char *src, const char *dst,
                  const struct ccr_codec_opts *opts, struct ccr_codec_result *result, struct ccr_err *err)
{
    if (!result)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no result struct");
    memset(result, 0, sizeof(*result));
    ccr_err_clear(err);
    if (!key || !src || !dst || !opts || (op != CCR_CODEC_ENCRYPT && op != CCR_CODEC_DECRYPT))
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    if (opts->mode != CCR_MODE_CCR1 && opts->mode != CCR_MODE_CSE)
        return ccr_err_set(err, -EINVAL, NULL, -1, "mode %s cannot encrypt or decrypt files",
                           ccr_mode_name(opts->mode));
    char why[160];
    if (ccr_region_size_check(opts->mode, opts->region_size, why, sizeof(why)) != 0)
        return ccr_err_set(err, -EINVAL, NULL, -1, "%s", why);
    if (opts->threads > 4096)
        return ccr_err_set(err, -EINVAL, NULL, -1, "too many threads (%u; at most 4096)", opts->threads);

    struct pl_params pp = {
        .op = op == CCR_CODEC_ENCRYPT ? PL_ENCRYPT : PL_DECRYPT,
        .mode = opts->mode,
        .key = key,
        .region_size = opts->region_size,
        .threads = opts->threads,
        .force = opts->force,
        .cancel = opts->cancel,
        .progress = opts->progress,
        .progress_arg = opts->progress_arg,
        .umask = pl_umask(),
        .t0 = pl_now(),
    };
    int rc;
    struct stat st;
    if (stat(src, &st) != 0) {
        rc = -errno;
        ccr_err_set(err, rc, src, -1, "cannot read: %s", pl_strerror(rc));
    } else if (S_ISREG(st.st_mode)) {
        rc = run_file(&pp, src, dst, (uint64_t)st.st_size, result, err);
    } else if (S_ISDIR(st.st_mode)) {
        rc = run_tree(&pp, src, dst, result, err);
    } else {
        rc = ccr_err_set(err, -EINVAL, src, -1, "not a regular file or a directory");
    }
    result->seconds = pl_now() - pp.t0;
    if (rc)
        return rc;
    if (opts->cancel && atomic_load(opts->cancel))
        return ccr_err_set(err, -ECANCELED, src, -1, "cancelled; nothing partial was left");
    return pl_worst_failure(result->failed, result->errors, err);
}
