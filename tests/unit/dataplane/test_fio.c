/*
 * test_fio.c - one worker's file I/O (fio.c): round trips through io_uring (fixed buffer or not) and
 * through syscalls, at sizes around the piece size, with iovecs of odd sizes both touching in memory and
 * scattered; reads past the end of file and over holes; error codes.
 *
 * Every byte written is dp_byte(file offset, seed) and every byte read is checked against it, so a piece
 * landing at the wrong offset or in the wrong iovec fails the test.
 */
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "dp_helpers.h"
#include "fio_int.h"

#define MIB      ((size_t)1 << 20)
#define BIG      (16 * MIB + 13)
#define SCATTER  64 /* gap between scattered iovecs */
#define MAX_IOVS 8192
#define SEED     7u
#define OFF      4097u /* requests start here: not page aligned */
#define NMODES   4
#define NSIZES   6

enum mode {
    M_URING,     /* want_uring, CCR_IO unset */
    M_NO_URING,  /* want_uring false */
    M_ENV_SYNC,  /* want_uring, but CCR_IO=sync */
    M_URING_ALL, /* want_uring, CCR_IO=uring: every read and write through the ring */
};

static const char *mode_name[NMODES] = {"uring", "want_uring=false", "CCR_IO=sync", "CCR_IO=uring"};
static const size_t sizes[NSIZES] = {0, 1, FIO_PIECE - 1, FIO_PIECE, FIO_PIECE + 1, BIG};

/* Whether this machine gives us a ring at all (old kernel, seccomp, io_uring_disabled). */
static bool uring_works(void)
{
    struct io_uring probe;
    if (io_uring_queue_init(FIO_DEPTH, &probe, 0) != 0)
        return false;
    io_uring_queue_exit(&probe);
    return true;
}

static void open_fio(struct fio *f, enum mode m)
{
    if (m == M_ENV_SYNC)
        cr_assert_eq(setenv("CCR_IO", "sync", 1), 0);
    else if (m == M_URING_ALL)
        cr_assert_eq(setenv("CCR_IO", "uring", 1), 0);
    else
        cr_assert_eq(unsetenv("CCR_IO"), 0);
    cr_assert_eq(fio_init(f, m != M_NO_URING), 0);
    const char *want = (m == M_URING || m == M_URING_ALL) && uring_works() ? "io_uring" : "syscalls";
    cr_assert_str_eq(fio_mode(f), want, "mode %s", mode_name[m]);
}

/* A buffer cut into iovecs of odd sizes. Scattered: SCATTER bytes of gap after each iovec, so that no two
 * touch in memory (multi-segment pieces, READV/WRITEV); else one contiguous run (merged pieces). */
struct iovs {
    uint8_t *mem;
    size_t mem_len, len;
    struct iovec v[MAX_IOVS];
    int cnt;
};

static void iovs_make(struct iovs *s, size_t len, bool scattered, unsigned variant)
{
    static const size_t cuts[] = {1, 4093, 777777, 3, (1 << 20) + 5, 65537, 12345, 2 * (1 << 20) + 1, 511};
    const size_t ncuts = sizeof(cuts) / sizeof(cuts[0]);
    s->len = len;
    s->mem_len = len + (scattered ? MAX_IOVS * SCATTER : 0) + 1;
    s->mem = malloc(s->mem_len);
    cr_assert_not_null(s->mem);
    memset(s->mem, 0xA5, s->mem_len);
    s->cnt = 0;
    size_t done = 0, at = 0;
    for (unsigned k = variant; done < len; k++) {
        cr_assert_lt(s->cnt, MAX_IOVS);
        size_t n = cuts[k % ncuts];
        if (n > len - done)
            n = len - done;
        s->v[s->cnt++] = (struct iovec){.iov_base = s->mem + at, .iov_len = n};
        done += n;
        at += n + (scattered ? SCATTER : 0);
    }
}

static void iovs_free(struct iovs *s)
{
    free(s->mem);
    s->mem = NULL;
}

/* The iovecs' bytes as one run: fills with the pattern of file offset off. */
static void iovs_fill(struct iovs *s, uint64_t off)
{
    uint64_t i = 0;
    for (int k = 0; k < s->cnt; k++) {
        uint8_t *p = s->v[k].iov_base;
        for (size_t j = 0; j < s->v[k].iov_len; j++)
            p[j] = dp_byte(off + i++, SEED);
    }
}

/* Checks that the first n bytes of the run are the pattern of file offset off; returns the index of the
 * first wrong byte or -1. */
static int64_t iovs_check(const struct iovs *s, uint64_t off, size_t n)
{
    uint64_t i = 0;
    for (int k = 0; k < s->cnt && i < n; k++) {
        const uint8_t *p = s->v[k].iov_base;
        for (size_t j = 0; j < s->v[k].iov_len && i < n; j++, i++)
            if (p[j] != dp_byte(off + i, SEED))
                return (int64_t)i;
    }
    return -1;
}

/* The iovec array a call may modify: a copy, so that the same layout can be checked afterwards. */
static struct iovec *iov_copy(const struct iovs *s)
{
    struct iovec *c = malloc(sizeof(struct iovec) * (size_t)(s->cnt ? s->cnt : 1));
    cr_assert_not_null(c);
    memcpy(c, s->v, sizeof(struct iovec) * (size_t)s->cnt);
    return c;
}

static int open_tmp(const char *dir, const char *name, int flags)
{
    char *p = dp_path(dir, name);
    int fd = open(p, flags | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "open %s: %s", p, strerror(errno));
    free(p);
    return fd;
}

/* The file's bytes [off, off + n) read with plain pread, checked against the pattern. */
static void check_file(int fd, uint64_t off, size_t n)
{
    uint8_t *b = malloc(n + 1);
    cr_assert_not_null(b);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));
        cr_assert_gt(r, 0, "pread at %zu: %zd", got, r);
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        if (b[i] != dp_byte(off + i, SEED))
            cr_assert_fail("file byte %zu is %u, want %u", i, b[i], dp_byte(off + i, SEED));
    free(b);
}

/*
 * Writes n bytes at OFF through f (contiguous iovecs, fixed buffer registered when asked), checks the file
 * with pread, then reads it back through f into scattered iovecs, exactly and with a request longer than
 * the file.
 */
static void round_trip(const char *dir, enum mode m, bool fixed, size_t n, unsigned variant)
{
    struct fio f;
    open_fio(&f, m);
    int fd = open_tmp(dir, "rt", O_RDWR | O_CREAT | O_TRUNC);

    struct iovs *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    iovs_make(w, n, false, variant);
    iovs_fill(w, OFF);
    if (fixed) {
        int rc = fio_register(&f, w->mem, w->mem_len);
        if ((m == M_URING || m == M_URING_ALL) && uring_works())
            cr_assert_eq(rc, 0, "register: %d", rc);
        else
            cr_assert_neq(rc, 0, "register without a ring");
    }
    struct iovec *c = iov_copy(w);
    int rc = fio_writev(&f, fd, c, w->cnt, OFF);
    cr_assert_eq(rc, 0, "write %zu bytes (%s, fixed %d): %d", n, mode_name[m], fixed, rc);
    free(c);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, n ? OFF + n : 0, "size after writing %zu: %jd", n,
                 (intmax_t)st.st_size);
    check_file(fd, OFF, n);

    /* Exact read into scattered iovecs (registered when asked: single-segment pieces go fixed). */
    struct iovs *r = malloc(sizeof(*r));
    cr_assert_not_null(r);
    iovs_make(r, n, true, variant + 3);
    if (fixed) {
        int rr = fio_register(&f, r->mem, r->mem_len);
        cr_assert((m == M_URING || m == M_URING_ALL) && uring_works() ? rr == 0 : rr != 0, "re-register: %d",
                  rr);
    }
    c = iov_copy(r);
    ssize_t got = fio_readv(&f, fd, c, r->cnt, OFF);
    free(c);
    cr_assert_eq(got, (ssize_t)n, "read %zu bytes (%s, fixed %d): %zd", n, mode_name[m], fixed, got);
    int64_t bad = iovs_check(r, OFF, n);
    cr_assert_eq(bad, -1, "read %zu bytes (%s, fixed %d): byte %jd wrong", n, mode_name[m], fixed,
                 (intmax_t)bad);
    iovs_free(r);

    /* A request longer than the file: the count is exactly what the file holds after OFF. */
    iovs_make(r, n + 3 * FIO_PIECE + 5, false, variant);
    if (fixed)
        fio_register(&f, r->mem, r->mem_len);
    c = iov_copy(r);
    got = fio_readv(&f, fd, c, r->cnt, OFF);
    free(c);
    cr_assert_eq(got, (ssize_t)n, "read past end (%zu bytes, %s, fixed %d): %zd", n, mode_name[m], fixed,
                 got);
    cr_assert_eq(iovs_check(r, OFF, n), -1);
    iovs_free(r);

    iovs_free(w);
    free(w);
    free(r);
    close(fd);
    fio_fini(&f);
    fio_fini(&f); /* a finished struct is accepted */
}

static void round_trips(enum mode m, bool fixed)
{
    char *dir = dp_mkdtemp();
    for (int i = 0; i < NSIZES; i++)
        round_trip(dir, m, fixed, sizes[i], (unsigned)i);
    dp_rmtree(dir);
}

Test(dataplane_fio, round_trip_uring, .timeout = 120)
{
    round_trips(M_URING, false);
}

Test(dataplane_fio, round_trip_uring_fixed, .timeout = 120)
{
    round_trips(M_URING, true);
}

Test(dataplane_fio, round_trip_uring_all, .timeout = 120)
{
    round_trips(M_URING_ALL, false);
    round_trips(M_URING_ALL, true);
}

Test(dataplane_fio, round_trip_no_uring, .timeout = 120)
{
    round_trips(M_NO_URING, false);
    round_trips(M_NO_URING, true);
}

Test(dataplane_fio, round_trip_env_sync, .timeout = 120)
{
    round_trips(M_ENV_SYNC, false);
    round_trips(M_ENV_SYNC, true);
}

/* Only part of the buffer is registered: pieces inside it go fixed, the others plain; all land right. */
Test(dataplane_fio, partly_registered_buffer, .timeout = 60)
{
    struct fio f;
    open_fio(&f, M_URING);
    char *dir = dp_mkdtemp();
    int fd = open_tmp(dir, "part", O_RDWR | O_CREAT | O_TRUNC);
    size_t n = 5 * FIO_PIECE + 999;
    uint8_t *buf = malloc(n);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = dp_byte(i, SEED);
    if (f.ring)
        cr_assert_eq(fio_register(&f, buf + FIO_PIECE / 2, 2 * FIO_PIECE), 0);
    struct iovec v = {buf, n};
    cr_assert_eq(fio_writev(&f, fd, &v, 1, 0), 0);
    check_file(fd, 0, n);
    memset(buf, 0, n);
    v = (struct iovec){buf, n};
    cr_assert_eq(fio_readv(&f, fd, &v, 1, 0), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        if (buf[i] != dp_byte(i, SEED))
            cr_assert_fail("byte %zu wrong", i);
    /* Unregistering (NULL) is allowed and leaves plain requests. */
    if (f.ring) {
        cr_assert_eq(fio_register(&f, NULL, 0), 0);
        cr_assert_null(f.fixed_base);
    }
    memset(buf, 0, n);
    v = (struct iovec){buf, n};
    cr_assert_eq(fio_readv(&f, fd, &v, 1, 0), (ssize_t)n);
    cr_assert_eq(buf[n - 1], dp_byte(n - 1, SEED));
    free(buf);
    close(fd);
    fio_fini(&f);
    dp_rmtree(dir);
}

/* Many tiny scattered iovecs: pieces are cut by segment count, not bytes; far more than IOV_MAX. */
Test(dataplane_fio, many_tiny_iovecs, .timeout = 60)
{
    for (int m = 0; m < NMODES; m++) {
        struct fio f;
        open_fio(&f, (enum mode)m);
        char *dir = dp_mkdtemp();
        int fd = open_tmp(dir, "tiny", O_RDWR | O_CREAT | O_TRUNC);
        enum { N = 3000, LEN = 7, STRIDE = 16 };
        uint8_t *buf = calloc(N, STRIDE);
        struct iovec *v = malloc(sizeof(*v) * N);
        cr_assert(buf && v);
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < LEN; j++)
                buf[i * STRIDE + j] = dp_byte((uint64_t)i * LEN + (uint64_t)j, SEED);
            v[i] = (struct iovec){buf + i * STRIDE, LEN};
        }
        cr_assert_eq(fio_writev(&f, fd, v, N, 0), 0);
        check_file(fd, 0, (size_t)N * LEN);
        memset(buf, 0, (size_t)N * STRIDE);
        for (int i = 0; i < N; i++)
            v[i] = (struct iovec){buf + i * STRIDE, LEN};
        cr_assert_eq(fio_readv(&f, fd, v, N, 0), (ssize_t)N * LEN, "%s", mode_name[m]);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < LEN; j++)
                cr_assert_eq(buf[i * STRIDE + j], dp_byte((uint64_t)i * LEN + (uint64_t)j, SEED));
        free(v);
        free(buf);
        close(fd);
        fio_fini(&f);
        dp_rmtree(dir);
    }
}

/*
 * Reads that run into the end of file: the file ends inside a piece, on a piece boundary, before the
 * request starts; the request spans many pieces beyond the end (they complete with 0, in any order with
 * the short piece that finds the real end).
 */
Test(dataplane_fio, read_past_end_counts_exactly, .timeout = 60)
{
    static const size_t file_sizes[] = {0, 1, FIO_PIECE - 1, FIO_PIECE, FIO_PIECE + 1, 3 * FIO_PIECE + 77};
    static const uint64_t starts[] = {0, 1, 4096, FIO_PIECE - 1, FIO_PIECE, 2 * FIO_PIECE + 5};
    size_t want_len = 20 * FIO_PIECE + 3; /* more pieces than FIO_DEPTH */
    uint8_t *buf = malloc(want_len);
    cr_assert_not_null(buf);
    char *dir = dp_mkdtemp();
    for (int m = 0; m < NMODES; m++) {
        for (int fixed = 0; fixed < 2; fixed++) {
            struct fio f;
            open_fio(&f, (enum mode)m);
            if (fixed && f.ring)
                cr_assert_eq(fio_register(&f, buf, want_len), 0);
            for (size_t a = 0; a < sizeof(file_sizes) / sizeof(file_sizes[0]); a++) {
                char *p = dp_path(dir, "eof");
                dp_write_file(p, file_sizes[a], SEED);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                cr_assert(fd >= 0);
                free(p);
                for (size_t b = 0; b < sizeof(starts) / sizeof(starts[0]); b++) {
                    uint64_t off = starts[b];
                    size_t expect = off >= file_sizes[a] ? 0 : file_sizes[a] - off;
                    memset(buf, 0x5A, want_len);
                    struct iovec v[2] = {{buf, 12345}, {buf + 12345, want_len - 12345}};
                    ssize_t got = fio_readv(&f, fd, v, 2, off);
                    cr_assert_eq(got, (ssize_t)expect, "%s fixed %d: file %zu, off %ju: got %zd want %zu",
                                 mode_name[m], fixed, file_sizes[a], (uintmax_t)off, got, expect);
                    for (size_t i = 0; i < expect; i++)
                        if (buf[i] != dp_byte(off + i, SEED))
                            cr_assert_fail("file %zu off %ju: byte %zu wrong", file_sizes[a], (uintmax_t)off,
                                           i);
                }
                close(fd);
            }
            fio_fini(&f);
        }
    }
    dp_rmtree(dir);
    free(buf);
}

/* A file whose tail (and a middle stretch) is a hole reads as zeros up to its size, not short. */
Test(dataplane_fio, sparse_tail_reads_zeros, .timeout = 60)
{
    size_t data = FIO_PIECE + 7, hole_at = 3 * FIO_PIECE, size = 5 * FIO_PIECE + 3;
    uint8_t *buf = malloc(size + FIO_PIECE);
    cr_assert_not_null(buf);
    char *dir = dp_mkdtemp();
    int fd = open_tmp(dir, "sparse", O_RDWR | O_CREAT | O_TRUNC);
    for (size_t i = 0; i < data; i++)
        buf[i] = dp_byte(i, SEED);
    cr_assert_eq(pwrite(fd, buf, data, 0), (ssize_t)data);
    cr_assert_eq(pwrite(fd, buf, 100, (off_t)hole_at), 100); /* data again at hole_at: a hole before it */
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    for (int m = 0; m < NMODES; m++) {
        struct fio f;
        open_fio(&f, (enum mode)m);
        if (f.ring)
            cr_assert_eq(fio_register(&f, buf, size + FIO_PIECE), 0);
        memset(buf, 0x5A, size + FIO_PIECE);
        struct iovec v = {buf, size + FIO_PIECE};
        cr_assert_eq(fio_readv(&f, fd, &v, 1, 0), (ssize_t)size, "%s", mode_name[m]);
        for (size_t i = 0; i < size; i++) {
            uint8_t want = i < data                            ? dp_byte(i, SEED)
                           : i >= hole_at && i < hole_at + 100 ? dp_byte(i - hole_at, SEED)
                                                               : 0;
            if (buf[i] != want)
                cr_assert_fail("%s: byte %zu is %u, want %u", mode_name[m], i, buf[i], want);
        }
        cr_assert_eq(buf[size], 0x5A, "nothing written past the end of file");
        fio_fini(&f);
    }
    close(fd);
    dp_rmtree(dir);
    free(buf);
}

Test(dataplane_fio, errors, .timeout = 60)
{
    char *dir = dp_mkdtemp();
    int fd = open_tmp(dir, "ro", O_RDWR | O_CREAT | O_TRUNC);
    close(fd);
    size_t n = 3 * FIO_PIECE + 1;
    uint8_t *buf = calloc(1, n);
    cr_assert_not_null(buf);
    for (int m = 0; m < NMODES; m++) {
        struct fio f;
        open_fio(&f, (enum mode)m);
        int ro = open_tmp(dir, "ro", O_RDONLY);
        struct iovec v = {buf, n};
        cr_assert_eq(fio_writev(&f, ro, &v, 1, 0), -EBADF, "%s", mode_name[m]);
        close(ro);
        int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert(d >= 0);
        v = (struct iovec){buf, n};
        cr_assert_eq(fio_readv(&f, d, &v, 1, 0), -EISDIR, "%s", mode_name[m]);
        close(d);
        v = (struct iovec){buf, n};
        cr_assert_eq(fio_readv(&f, -1, &v, 1, 0), -EBADF, "%s", mode_name[m]);
        /* The struct works on after errors. */
        int wfd = open_tmp(dir, "after", O_RDWR | O_CREAT | O_TRUNC);
        for (size_t i = 0; i < n; i++)
            buf[i] = dp_byte(i, SEED);
        v = (struct iovec){buf, n};
        cr_assert_eq(fio_writev(&f, wfd, &v, 1, 0), 0);
        check_file(wfd, 0, n);
        close(wfd);
        fio_fini(&f);
    }
    free(buf);
    dp_rmtree(dir);
}

/* fio_mode: io_uring whenever the machine gives a ring and nobody said otherwise. */
Test(dataplane_fio, mode_follows_want_and_environment)
{
    bool works = uring_works();
    struct fio f;
    cr_assert_eq(unsetenv("CCR_IO"), 0);
    cr_assert_eq(fio_init(&f, true), 0);
    cr_assert_str_eq(fio_mode(&f), works ? "io_uring" : "syscalls");
    cr_assert_eq(f.ring != NULL, works);
    fio_fini(&f);
    cr_assert_null(f.ring);
    cr_assert_str_eq(fio_mode(&f), "syscalls");

    cr_assert_eq(setenv("CCR_IO", "uring", 1), 0);
    cr_assert_eq(fio_init(&f, true), 0);
    cr_assert_str_eq(fio_mode(&f), works ? "io_uring" : "syscalls");
    fio_fini(&f);

    cr_assert_eq(fio_init(&f, false), 0);
    cr_assert_str_eq(fio_mode(&f), "syscalls");
    cr_assert_neq(fio_register(&f, &f, sizeof(f)), 0, "no ring, nothing to register with");
    cr_assert_null(f.fixed_base);
    fio_fini(&f);

    cr_assert_eq(setenv("CCR_IO", "sync", 1), 0);
    cr_assert_eq(fio_init(&f, true), 0);
    cr_assert_str_eq(fio_mode(&f), "syscalls");
    fio_fini(&f);

    struct fio z;
    memset(&z, 0, sizeof(z));
    fio_fini(&z); /* zeroed: accepted */
    cr_assert_str_eq(fio_mode(&z), "syscalls");
}

/* Feeds a pipe with the pattern in chunks of odd sizes, with pauses, then closes it. */
struct feeder {
    int fd;
    size_t len;
};

static void *feed(void *arg)
{
    struct feeder *fe = arg;
    uint8_t chunk[5003];
    size_t done = 0;
    for (unsigned k = 0; done < fe->len; k++) {
        size_t n = 1 + (k * 2654435761u) % sizeof(chunk);
        if (n > fe->len - done)
            n = fe->len - done;
        for (size_t i = 0; i < n; i++)
            chunk[i] = dp_byte(done + i, SEED);
        for (size_t w = 0; w < n;) {
            ssize_t r = write(fe->fd, chunk + w, n - w);
            if (r < 0)
                return NULL;
            w += (size_t)r;
        }
        done += n;
        if (k % 16 == 0)
            usleep(200);
    }
    close(fe->fd);
    return NULL;
}

/*
 * Short reads resumed in the middle of a piece: io_uring reads a pipe (the offset is ignored there, so
 * pread's ESPIPE does not apply), and a pipe hands out whatever the writer has put in so far. Each request
 * is one piece of scattered iovecs, so the resumptions must continue at the right segment and byte. The
 * last request runs into the writer's close: short count, exact.
 */
Test(dataplane_fio, short_reads_resume_mid_piece, .timeout = 60)
{
    if (!uring_works())
        cr_skip_test("no io_uring on this machine");
    struct fio f;
    open_fio(&f, M_URING_ALL); /* a pipe: preadv would say ESPIPE; the ring ignores the offset */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    size_t total = 3 * FIO_PIECE + 4321;
    struct feeder fe = {p[1], total};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, feed, &fe), 0);
    size_t done = 0;
    for (unsigned k = 0; done < total || k < 5; k++) {
        struct iovs *r = malloc(sizeof(*r));
        cr_assert_not_null(r);
        iovs_make(r, FIO_PIECE - 17 * k, true, k); /* one piece: kept in order on the pipe */
        if (k % 2)
            cr_assert_eq(fio_register(&f, r->mem, r->mem_len), 0);
        struct iovec *c = iov_copy(r);
        ssize_t got = fio_readv(&f, p[0], c, r->cnt, 0);
        free(c);
        size_t want = total - done < r->len ? total - done : r->len;
        cr_assert_eq(got, (ssize_t)want, "request %u: got %zd want %zu", k, got, want);
        int64_t bad = iovs_check(r, done, want);
        cr_assert_eq(bad, -1, "request %u: byte %jd wrong", k, (intmax_t)bad);
        done += want;
        iovs_free(r);
        free(r);
    }
    pthread_join(t, NULL);
    close(p[0]);
    fio_fini(&f);
}

/*
 * A write that the file size limit cuts short: the piece that crosses the limit is written up to it, its
 * resumption fails with EFBIG, and so do the pieces beyond; the call says -EFBIG and the bytes before the
 * limit are all there.
 */
Test(dataplane_fio, short_write_then_error, .timeout = 60)
{
    size_t limit = 2 * FIO_PIECE + FIO_PIECE / 2 + 3, n = 5 * FIO_PIECE;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = limit, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    uint8_t *buf = malloc(n);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = dp_byte(i, SEED);
    char *dir = dp_mkdtemp();
    for (int m = 0; m < NMODES; m++) {
        struct fio f;
        open_fio(&f, (enum mode)m);
        if (f.ring)
            cr_assert_eq(fio_register(&f, buf, n), 0);
        int fd = open_tmp(dir, "fsize", O_RDWR | O_CREAT | O_TRUNC);
        struct iovec v[2] = {{buf, 1000}, {buf + 1000, n - 1000}};
        int rc = fio_writev(&f, fd, v, 2, 0);
        cr_assert_eq(rc, -EFBIG, "%s: %d", mode_name[m], rc);
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_eq((size_t)st.st_size, limit, "%s: size %jd", mode_name[m], (intmax_t)st.st_size);
        check_file(fd, 0, limit);
        close(fd);
        fio_fini(&f);
    }
    dp_rmtree(dir);
    free(buf);
}
