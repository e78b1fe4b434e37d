/*
 * ccr/mount.h - a datastore as a mounted file system: a libfuse3 (low-level API) front end of a volume
 * (ccr/volume.h).
 *
 * ccr_mount_run opens a volume on the datastore, mounts it at a directory, serves FUSE requests on up to
 * max_threads worker threads until the file system is unmounted (`ccr unmount`, fusermount3 -u, umount)
 * or the process gets SIGTERM, SIGINT or SIGHUP, then unmounts (lazily, if still mounted), commits every
 * file still open for writing and closes the volume.
 *
 * What the mount shows:
 *   - directories are blob-name prefixes; files are blobs, with their plaintext sizes; reads decrypt and
 *     authenticate on the fly: a region that fails authentication reads as EIO (the volume logs which
 *     blob and offset), other regions still read;
 *   - a read-only mount (the default) is mounted "ro": the kernel itself refuses every change with EROFS;
 *     file data stays in the kernel's page cache across opens while the file is unchanged (same size and
 *     modification time), and entries and attributes are cached for list_ttl seconds (60 by default);
 *   - a read-write mount (volume.writable) creates, writes, truncates, renames and deletes files and
 *     creates and removes directories. A file becomes visible in the store when it is committed: at every
 *     close() (FUSE flush) and fsync() of a descriptor that wrote it. close() and fsync() return the
 *     commit's error (EIO, ENOSPC, ...), so an application that checks close() knows its file is stored.
 *     Entries and attributes are cached for 1 s only;
 *   - owner: the user that mounted; permission bits 0444/0555 (read-only) or 0644/0755 (read-write) are
 *     for show: without default_permissions the kernel does not check them, the mount itself decides
 *     (and allow_other decides whether other users get in at all). chmod, chown and utimens succeed and
 *     change nothing (a blob has no owner or mode; its time is its commit time): tools such as cp -p,
 *     rsync and tar then work. Symbolic and hard links are refused with EPERM; special files with EPERM;
 *     rename of a directory with EXDEV (mv then copies); RENAME_EXCHANGE with EINVAL; RENAME_NOREPLACE
 *     is honoured (checked, then renamed: not atomic against other writers of the store);
 *   - statfs: 1 TiB of 4 KiB blocks, all free on a read-write mount, none on a read-only one.
 *
 * Statistics: at exit a summary goes to ccr_log (INFO): bytes read and fetched, the over-read ratio
 * (fetched / read), cache hits and misses, prefetches, authentication failures, bytes written and
 * uploaded, commits and failed commits, peak memory. With stats_file set, the same counters are written
 * there as one JSON object every stats_interval seconds while mounted and once more at exit (replaced
 * atomically: a reader always sees a whole object):
 *   {"pid":N,"mountpoint":"...","datastore":"...","writable":B,"seconds":F,"open_files":N,
 *    "bytes_read":N,"bytes_fetched":N,"over_read":F,"cache_hits":N,"cache_misses":N,"prefetches":N,
 *    "auth_failures":N,"bytes_written":N,"bytes_uploaded":N,"commits":N,"commit_failures":N,
 *    "list_requests":N,"memory_peak":N,"fuse_requests":N,"mounted":B}
 * over_read is 0 before anything was read.
 *
 * Ready: once mounted (the kernel accepts requests; they are answered as soon as the loop runs),
 * ready_file is written atomically with {"pid":N,"mountpoint":"..."} and on_ready is called, on the
 * thread that called ccr_mount_run.
 *
 * Threads and signals: ccr_mount_run blocks SIGINT, SIGTERM and SIGHUP in every thread it starts (the
 * volume's too) and installs libfuse's handlers, which end the loop, for the calling thread; it restores
 * the caller's handlers and mask before it returns. Call it from the main thread of a process that runs
 * one mount.
 */
#ifndef CCR_MOUNT_H
#define CCR_MOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "ccr/common.h"
#include "ccr/volume.h"

typedef void (*ccr_mount_ready_cb)(void *cb_arg);

struct ccr_mount_opts {
    struct ccr_store *store;        /* borrowed; must outlive the call */
    const struct ccr_datastore *ds; /* borrowed */
    const struct ccr_key *key;      /* borrowed; NULL for modes none and cpk */
    struct ccr_volume_opts volume;  /* prefix, memory, prefetch, list_ttl, writable, spill_dir, fetchers */
    const char *mountpoint;         /* an existing directory */
    bool allow_other;               /* let other users in (needs root or user_allow_other in fuse.conf) */
    unsigned max_threads;           /* FUSE worker threads at most; 0 = 16 */
    unsigned readahead_kb;          /* the kernel's readahead for the mount (set through sysfs when
                                       allowed, i.e. as root); 0 = 1/32 of the memory budget, 128 to
                                       4096 KiB; the volume prefetches anyway */
    const char *ready_file;         /* NULL: none */
    const char *stats_file;         /* NULL: none */
    double stats_interval;          /* seconds; 0 = 1 */
    ccr_mount_ready_cb on_ready;    /* NULL: none */
    void *on_ready_arg;
};

/* Fills o with the defaults (everything zero/NULL: read-only, 16 threads, no files). */
CCR_API void ccr_mount_opts_init(struct ccr_mount_opts *o);

/*
 * Mounts and serves until unmounted or signalled (see above). Returns 0 after a clean shutdown (also one
 * caused by a signal) or a negative errno: mounting failed (-ENOENT, -ENOTDIR: the mountpoint; -ENOTCONN:
 * a dead mount is still there, unmount it; -EPERM; the volume's errors when the datastore cannot be listed)
 * or committing a file at shutdown failed (the first such error; err names the file).
 */
CCR_API CCR_WUR int ccr_mount_run(const struct ccr_mount_opts *o, struct ccr_err *err);

/*
 * Unmounts a ccr (or any FUSE) mount: umount2 as root, fusermount3 -u otherwise; lazy detaches it even if
 * files are open (the daemon then exits when the last one is closed). Waits up to timeout seconds (0 = 30)
 * until it is gone from /proc/self/mountinfo. -EINVAL: not a FUSE mount point; -EBUSY: files are open
 * under it (not lazy); -ETIMEDOUT.
 */
CCR_API CCR_WUR int ccr_unmount(const char *mountpoint, bool lazy, double timeout, struct ccr_err *err);

/* Is path (made absolute against the current directory) a FUSE mount point right now? */
CCR_API bool ccr_is_fuse_mount(const char *path);

#endif
