/*
 * ccr/volume.h - a datastore opened for file access: the engine behind `ccr mount`.
 *
 * A volume presents the blobs of one datastore (under an optional prefix) as a tree of plain files:
 * directories are blob-name prefixes, sizes are plaintext sizes, reads decrypt on the fly. A writable
 * volume (a datasink) also creates, writes, truncates, renames and deletes files; what is written is
 * encrypted under the datastore's key and becomes visible in the store only when the file is committed
 * (ccr_vfile_flush, or ccr_vfile_close).
 *
 * Paths are '/'-separated and relative to the volume's root, without leading or trailing '/'; "" is the
 * root directory. Names follow ccr_blob_name_check.
 *
 * Threads: every function may be called from any thread (FUSE runs many workers); a volume serialises
 * what must be serialised. One struct ccr_vfile may be used by several threads at once (reads at
 * different offsets); writes to one vfile are serialised by the volume.
 *
 * Memory: one budget (opts.memory) covers the region cache, prefetch and write buffers of every open
 * file; peak RSS stays within it plus a small constant.
 *
 * Errors: negative errno with err filled (where = the path, and the blob and byte offset for
 * authentication failures), as FUSE wants them: -ENOENT, -EISDIR, -ENOTDIR, -EEXIST, -ENOTEMPTY,
 * -EROFS (write on a read-only volume), -EIO (a region failed authentication: tampered or corrupt; the
 * volume also logs it with ccr_log), -ESTALE (the blob changed in the store under an open file), -ENOSPC
 * (budget and spill space exhausted), -EAGAIN/-ETIMEDOUT (the store gave up).
 */
#ifndef CCR_VOLUME_H
#define CCR_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ccr/blob.h"
#include "ccr/common.h"
#include "ccr/datastore.h"

struct ccr_volume;
struct ccr_vfile;

struct ccr_volume_opts {
    const char *prefix;    /* blob-name prefix the volume's root maps to (NULL or "" for none) */
    uint64_t memory;       /* cache + prefetch + write buffers; 0 = CCR_MEMORY_DEFAULT (512 MiB) */
    uint64_t prefetch;     /* bytes kept in flight ahead of a sequential reader; 0 = 64 MiB */
    double list_ttl;       /* seconds a directory listing is trusted; 0 = 60; < 0: forever */
    bool writable;         /* a datasink: create/write/truncate/rename/unlink/mkdir allowed */
    const char *spill_dir; /* staging of non-sequential writes; NULL = $TMPDIR or /tmp */
    unsigned fetchers;     /* background fetch threads; 0 = max(2 x CPUs, ccr_store_parallelism) */
};

/* What stat says of a path. */
struct ccr_vstat {
    bool is_dir;
    uint64_t size;    /* plaintext bytes (files); 0 for directories */
    int64_t mtime_ns; /* modification time (ns since the epoch); directories: the volume's open time */
};

/* Counters since the volume was opened (all monotonic). */
struct ccr_volume_stats {
    uint64_t bytes_read;      /* plaintext bytes returned by ccr_vfile_read */
    uint64_t bytes_fetched;   /* stored bytes fetched from the store (reads and prefetch) */
    uint64_t cache_hits;      /* reads served without waiting for a fetch */
    uint64_t cache_misses;    /* reads that waited for a fetch */
    uint64_t prefetches;      /* units fetched ahead of a sequential reader */
    uint64_t auth_failures;   /* regions that failed authentication */
    uint64_t bytes_written;   /* plaintext bytes accepted by ccr_vfile_write */
    uint64_t bytes_uploaded;  /* stored bytes sent to the store */
    uint64_t commits;         /* files committed */
    uint64_t commit_failures; /* commits that failed (the error went to flush/close) */
    uint64_t list_requests;   /* listing pages fetched */
    uint64_t memory_peak;     /* peak bytes of the budget in use */
};

/*
 * Opens a volume on store (borrowed: it must outlive the volume) for datastore ds (copied) with key (copied;
 * NULL for modes none and cpk). Lists nothing yet (the first stat or readdir does). opts may be NULL.
 * *out owned by the caller: ccr_volume_close.
 */
CCR_API CCR_WUR int ccr_volume_open(struct ccr_store *store, const struct ccr_datastore *ds,
                                    const struct ccr_key *key, const struct ccr_volume_opts *opts,
                                    struct ccr_volume **out, struct ccr_err *err);

/*
 * Commits every file still open for writing (as ccr_vfile_flush), then frees the volume. Open vfiles must
 * have been closed, except that files open for writing may still be open (they are committed and freed
 * here: the unmount path). Returns 0 or the first commit error (err names the file). Accepts NULL.
 */
CCR_API int ccr_volume_close(struct ccr_volume *v, struct ccr_err *err);

CCR_API void ccr_volume_get_stats(struct ccr_volume *v, struct ccr_volume_stats *out);

/* Is the volume writable? */
CCR_API bool ccr_volume_writable(const struct ccr_volume *v);

/* ----------------------------------------------------------------------------------------------------- */
/* namespace                                                                                             */
/* ----------------------------------------------------------------------------------------------------- */

/* stat of a path ("" = the root). -ENOENT if it is neither a file nor a directory. */
CCR_API CCR_WUR int ccr_volume_stat(struct ccr_volume *v, const char *path, struct ccr_vstat *out,
                                    struct ccr_err *err);

/* Called once per entry of a directory, in name order; name is the last component (borrowed for the call).
 * Return 0 to go on, non-zero to stop (ccr_volume_readdir then returns that value). */
typedef int (*ccr_volume_dir_cb)(void *cb_arg, const char *name, const struct ccr_vstat *st);

/* Lists directory path ("" = the root). -ENOENT, -ENOTDIR. */
CCR_API CCR_WUR int ccr_volume_readdir(struct ccr_volume *v, const char *path, ccr_volume_dir_cb cb,
                                       void *cb_arg, struct ccr_err *err);

/* Creates an (empty, in-memory) directory: it exists until the volume closes, or for good once a file is
 * committed under it. -EEXIST, -ENOENT (parent missing), -EROFS. */
CCR_API CCR_WUR int ccr_volume_mkdir(struct ccr_volume *v, const char *path, struct ccr_err *err);

/* Deletes a file (its blob). -ENOENT, -EISDIR, -EROFS. */
CCR_API CCR_WUR int ccr_volume_unlink(struct ccr_volume *v, const char *path, struct ccr_err *err);

/* Removes an empty directory. -ENOENT, -ENOTDIR, -ENOTEMPTY, -EROFS. */
CCR_API CCR_WUR int ccr_volume_rmdir(struct ccr_volume *v, const char *path, struct ccr_err *err);

/*
 * Renames a file within the volume, replacing a file at `to`. A committed blob's stored bytes are copied to
 * the new name as they are (neither ccr1 nor cleanroom-cse binds the name) and the old blob is deleted; a
 * file open for writing and not yet committed is committed under the new name. A directory: -EXDEV (every
 * blob under it would have to be copied; `mv` then copies and deletes file by file itself). -ENOENT, -EROFS.
 */
CCR_API CCR_WUR int ccr_volume_rename(struct ccr_volume *v, const char *from, const char *to,
                                      struct ccr_err *err);

/* ----------------------------------------------------------------------------------------------------- */
/* files                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

#define CCR_VOPEN_READ   0x0
#define CCR_VOPEN_WRITE  0x1 /* also allows reads of what is written (staged) */
#define CCR_VOPEN_CREATE 0x2 /* create if missing (writable volumes) */
#define CCR_VOPEN_TRUNC  0x4 /* start empty */
#define CCR_VOPEN_EXCL   0x8 /* with CREATE: -EEXIST if it exists */

/*
 * Opens a file. Read-only opens pin the blob's ETag: if the blob changes in the store while open, reads
 * fail with -ESTALE rather than mixing versions. WRITE opens of an existing file without TRUNC stage its
 * current content first (copy-on-write: read, then re-encrypted with a fresh salt at commit). Nothing written
 * is visible in the store before commit. *out owned by the caller: ccr_vfile_close.
 */
CCR_API CCR_WUR int ccr_vfile_open(struct ccr_volume *v, const char *path, int flags, struct ccr_vfile **out,
                                   struct ccr_err *err);

/* Reads up to len bytes at off: the count (short only at end of file), or -EIO / -ESTALE / ... */
CCR_API CCR_WUR ssize_t ccr_vfile_read(struct ccr_vfile *f, void *buf, size_t len, uint64_t off,
                                       struct ccr_err *err);

/* A read answered in place: pieces of the region cache, pinned until ccr_vref_release. */
#define CCR_VREF_MAX_IOV  64
#define CCR_VREF_MAX_PINS 32
struct ccr_vref {
    struct iovec iov[CCR_VREF_MAX_IOV];
    int niov;
    void *pins[CCR_VREF_MAX_PINS]; /* the volume's */
    bool done[CCR_VREF_MAX_PINS];
    int npins;
    struct ccr_volume *v;
};

/*
 * Like ccr_vfile_read, without the copy: describes the plaintext of [off, off + len) (clamped at the end of
 * the file) as pieces of the region cache in ref, which stay valid and unchanged until ccr_vref_release(ref)
 * (which needs only ref and the volume: the file may be closed by then). Returns the byte count (0 at or past
 * the end). Returns -ENOTSUP for a file open for writing or a volume whose memory budget holds fewer than 16
 * transfer units (pinned pieces would hold up a small cache), and -E2BIG when the range is cut into more
 * pieces than ref holds (nothing is then held): use ccr_vfile_read for those. Other errors as ccr_vfile_read.
 */
CCR_API CCR_WUR ssize_t ccr_vfile_read_ref(struct ccr_vfile *f, size_t len, uint64_t off,
                                           struct ccr_vref *ref, struct ccr_err *err);

/* Gives back what ccr_vfile_read_ref holds in ref (after a failed call, ref holds nothing). */
CCR_API void ccr_vref_release(struct ccr_vref *ref);

/*
 * Writes len bytes at off: len or -errno. Sequential writes (off == current end) are sealed and uploaded
 * as blocks while the caller goes on writing; other writes stage the file locally (under the budget,
 * spilling to spill_dir) and it is re-encrypted at commit. An upload failure is reported by this call or,
 * at the latest, by flush/close.
 */
CCR_API CCR_WUR ssize_t ccr_vfile_write(struct ccr_vfile *f, const void *buf, size_t len, uint64_t off,
                                        struct ccr_err *err);

/* Sets the file's size (shrink or extend with zeros). -EROFS on read-only opens. */
CCR_API CCR_WUR int ccr_vfile_truncate(struct ccr_vfile *f, uint64_t size, struct ccr_err *err);

/* The file's current size (what is written so far, for files open for writing). */
CCR_API uint64_t ccr_vfile_size(struct ccr_vfile *f);

/*
 * For files open for writing: waits for every block, commits the blob, and returns the first error of any
 * upload or of the commit (the file then stays uncommitted; the caller may write on and flush again).
 * A file not modified since its last commit is not committed again. Read-only files: 0.
 */
CCR_API CCR_WUR int ccr_vfile_flush(struct ccr_vfile *f, struct ccr_err *err);

/* Flushes (files open for writing) and frees. Returns the flush's result. Accepts NULL. */
CCR_API int ccr_vfile_close(struct ccr_vfile *f, struct ccr_err *err);

#endif
