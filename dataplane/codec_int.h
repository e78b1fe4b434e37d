/*
 * codec_int.h - private to dataplane/: the parallel file pipeline shared by ccr_codec_run (files and
 * trees) and ccr_codec_inspect (verification).
 */
#ifndef CCR_CODEC_INT_H
#define CCR_CODEC_INT_H

#include <stdbool.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ccr/codec.h"

enum pl_op {
    PL_ENCRYPT,
    PL_DECRYPT,
    PL_VERIFY, /* authenticate every region of the input, write nothing */
};

/* One file to process. */
struct pl_file {
    char *src;     /* owned by whoever built the list */
    char *dst;     /* NULL for PL_VERIFY */
    uint64_t size; /* input size when listed (for progress and planning) */
    bool nofollow; /* open src with O_NOFOLLOW (tree mode: it was listed as a regular file) */
};

struct pl_params {
    enum pl_op op;
    enum ccr_mode mode;
    const struct ccr_key *key;
    uint64_t region_size; /* as in struct ccr_codec_opts */
    unsigned threads;     /* 0 = online CPUs */
    bool force;
    const atomic_int *cancel;
    ccr_progress_cb progress;
    void *progress_arg;
    mode_t umask; /* applied to output permission bits */
    double t0;    /* start of the whole operation (monotonic seconds), for progress and results */
};

/*
 * Runs the pipeline over files[0..n). Failures of single files are appended to res->failed (and counted
 * in res->errors); successes are counted in res->files, bytes_in, bytes_out. Returns 0, or -ENOMEM /
 * -EAGAIN when the machinery itself could not start (then no file was touched). Cancellation is seen by
 * the caller through its own flag; cancelled files fail with -ECANCELED.
 */
int pl_run(const struct pl_params *pp, struct pl_file *files, size_t n, struct ccr_codec_result *res);

/* Appends a failure to res (path copied). Returns 0 or -ENOMEM. */
int pl_result_add_failure(struct ccr_codec_result *res, const char *path, int64_t region,
                          const struct ccr_err *e);

/* Rewrites e->msg as printf(fmt, ..., old msg): fmt must end with a %s that receives the old message. */
void pl_err_rewrap(struct ccr_err *e, const char *fmt, ...) CCR_PRINTF(2, 3);

/* Rewords a ccr1 header parse failure for people ("not a ccr1 file", "malformed ccr1 header: ..."). */
void pl_err_header(struct ccr_err *e);

/* Monotonic clock in seconds. */
double pl_now(void);

/* fileio.c: preadv/pwritev until every iovec is done (EINTR and short transfers retried; iov is consumed).
 * pl_preadv_full returns the bytes read (fewer only at end of file) or -errno; pl_pwritev_full 0 or -errno.
 */
ssize_t pl_preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off);
int pl_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off);

/* fileio.c: creates `.NAME.ccr-tmp-XXXXXX` (O_EXCL, 0600) beside dst; *out_path owned by the caller. */
int pl_temp_create(const char *dst, char **out_path, int *out_fd, struct ccr_err *err);

/* walk.c: the source-tree walk shared by tree encrypt/decrypt and publish (see walk.c). */
enum pl_walk_kind {
    PL_WALK_DIR,  /* a directory, reported before its contents */
    PL_WALK_FILE, /* a regular file (or, when following links, a link to one: nofollow false) */
};
struct pl_walk {
    const char *root;         /* the tree's root directory */
    bool follow_links;        /* report links to regular files as files */
    const char *skip_note;    /* why links and special files are skipped, for the warning */
    const atomic_int *cancel; /* may be NULL: polled per entry, -ECANCELED */
    /* An entry (rel: '/'-separated path below root; st: of the file itself, the link's target when
     * followed). Strings are borrowed for the call. Return 0 to go on, negative to stop the walk. */
    int (*entry)(void *arg, enum pl_walk_kind kind, const char *rel, const char *full, const struct stat *st,
                 bool nofollow);
    /* A directory or entry that could not be read (code: -errno; what: "cannot stat", ...): record it and
     * return 0 to go on, or negative to stop. */
    int (*failure)(void *arg, const char *path, int code, const char *what);
    void (*skipped)(void *arg); /* a skipped entry (already logged); may be NULL */
    void *arg;
};
int pl_walk_run(const struct pl_walk *w);

/* walk.c: `.NAME.ccr-tmp-XXXXXX`, what an interrupted run can leave; *out_len (may be NULL) = strlen(NAME).
 */
bool pl_is_leftover_temp(const char *name, size_t *out_len);

/* codec.c: the failure that decides a run's return value: the first -EBADMSG, else the first. */
int pl_worst_failure(const struct ccr_codec_failure *failed, uint64_t n, struct ccr_err *err);

/* The process umask, read without changing it where the kernel allows (/proc/self/status). */
mode_t pl_umask(void);

/* strerror that is safe to call from any thread. */
const char *pl_strerror(int err);

/* Online CPUs (at least 1). */
unsigned pl_online_cpus(void);

#endif
