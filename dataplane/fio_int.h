/*
 * fio_int.h - private to dataplane/: file I/O of one worker, through its own io_uring.
 *
 * Every engine worker (file codec, publish, download) owns one struct fio. A unit read or write (a few
 * MiB at one file offset, possibly several iovecs) is cut into pieces of at most FIO_PIECE bytes that are
 * submitted together and complete in any order, so one worker keeps several requests in flight on the
 * device instead of one preadv at a time. The worker's unit buffer can be registered as a fixed buffer
 * (IORING_OP_READ_FIXED / WRITE_FIXED: no page pinning per request) when it lies inside the registered
 * range; other buffers go through plain READV/WRITEV.
 *
 * What goes through the ring was decided by measurement (bench_fileio; the numbers are in fio.c): reads
 * that land in the registered buffer do (READ_FIXED: +10-20% over preadv, less CPU); other reads, and
 * all writes, are syscalls, writes in pwritev calls of at most FIO_PIECE bytes. CCR_IO=uring sends
 * everything through the ring, CCR_IO=sync nothing.
 *
 * When io_uring cannot be set up (old kernel, seccomp, RLIMIT_MEMLOCK), a struct fio falls back to
 * preadv/pwritev with the same contract (pl_preadv_full / pl_pwritev_full). fio_mode() says which is
 * in use.
 *
 * One struct fio is used by one thread at a time.
 */
#ifndef CCR_FIO_INT_H
#define CCR_FIO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define FIO_PIECE ((size_t)1 << 20) /* bytes per submitted request */
#define FIO_DEPTH 16                /* ring entries: pieces in flight per worker */

struct io_uring;

struct fio {
    struct io_uring *ring; /* NULL: preadv/pwritev */
    void *fixed_base;      /* registered buffer, or NULL */
    size_t fixed_len;
    bool uring_all; /* CCR_IO=uring: every read and write through the ring (for measurements) */
};

/*
 * Sets up f. want_uring false (or CCR_IO=sync) picks preadv/pwritev at once. Never fails: if io_uring
 * cannot be had, f falls back to syscalls. Returns 0.
 */
int fio_init(struct fio *f, bool want_uring);
void fio_fini(struct fio *f); /* accepts a zeroed or already finished struct */

/* Registers [base, base + len) as the fixed buffer (replacing any previous one). Failure is not an error:
 * reads and writes then use non-fixed requests. Returns 0 or -errno (informational). */
int fio_register(struct fio *f, void *base, size_t len);

/* "io_uring" or "syscalls". */
const char *fio_mode(const struct fio *f);

/*
 * Reads into iov[0..cnt) from fd at off until every iovec is full or the file ends. Returns the bytes
 * read (fewer only at end of file) or -errno. EINTR and short reads are retried. iov may be modified.
 */
ssize_t fio_readv(struct fio *f, int fd, struct iovec *iov, int cnt, uint64_t off);

/* Writes iov[0..cnt) to fd at off completely. 0 or -errno (-ENOSPC, -EIO, ...). iov may be modified. */
int fio_writev(struct fio *f, int fd, struct iovec *iov, int cnt, uint64_t off);

#endif
