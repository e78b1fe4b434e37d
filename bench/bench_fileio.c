/*
 * bench_fileio.c - for a worker that reads (or writes) units of a big file, are io_uring pieces (fixed
 * buffer or not) faster than one preadv/pwritev per unit?
 *
 *   bench_fileio --file PATH --size BYTES [--threads N] [--unit BYTES] [--mode sync|uring|uring-fixed]
 *                [--op read|write] [--repeat K] [--drop-cache] [--fsync] [--overwrite]
 *
 * N threads each own a struct fio (dataplane/fio.c) and one unit buffer, and take units of the file from a
 * shared counter, like the engine's workers: unit i is [i * unit, (i + 1) * unit) clipped to --size, read
 * or written with one fio_readv/fio_writev. Modes:
 *   sync         fio with want_uring false: one preadv/pwritev per unit (pl_preadv_full, pl_pwritev_full)
 *   uring        the unit cut into FIO_PIECE pieces, up to FIO_DEPTH in flight, READ/WRITE requests
 *   uring-fixed  the same with the unit buffer registered: READ_FIXED/WRITE_FIXED
 * --op read needs the file to hold at least --size bytes; a shorter or missing file is first filled (not
 * timed) and flushed. --op write truncates the file to 0 before every repeat, so each repeat allocates
 * its blocks and page cache afresh like the engine writing a new output file; --overwrite skips that and
 * rewrites the cached pages in place, which leaves out page allocation: in a VM with free page reporting
 * (virtio-balloon) pages freed by the truncation go back to the host and are slow to touch again, so
 * fresh writes there measure the host as much as the write path. --fsync adds an fdatasync to the timed
 * part.
 * --drop-cache asks the kernel to drop the file's cached pages (fdatasync, then posix_fadvise DONTNEED)
 * before every repeat; on tmpfs that does nothing, the pages are the file.
 *
 * stdout: one JSON line per repeat {"bench":"fileio","op","mode","threads","unit","bytes","seconds","mb_s",
 * "cpu_s",...}: seconds from the start of the first unit to the end of the last, MB = 10^6 bytes, cpu_s
 * the process's user + system CPU time over the same span (getrusage; io_uring's io-wq workers are threads
 * of the process and count). stderr: a human line per repeat and the median. Exit 0, 1 on a usage error,
 * 2 when an I/O call fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "ccr/common.h"
#include "ccr/dataplane.h"
#include "fio_int.h"

#define MAX_THREADS 256
#define MAX_REPEAT  100

enum mode { MODE_SYNC, MODE_URING, MODE_URING_FIXED };
static const char *mode_names[] = {"sync", "uring", "uring-fixed"};

struct config {
    const char *file;
    uint64_t size, unit;
    int threads, repeat;
    enum mode mode;
    bool write, drop_cache, fsync, overwrite;
};

struct shared {
    const struct config *cfg;
    int fd;
    uint64_t nunits;
    atomic_uint_fast64_t next; /* next unit to take */
    atomic_int failed;         /* first -errno of any worker */
    pthread_barrier_t start, done;
};

struct worker {
    pthread_t tid;
    struct shared *sh;
    struct fio fio;
    uint8_t *buf;
    int reg_rc;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* One repeat's work of one thread: units from the shared counter until none is left. */
static void work(struct worker *w)
{
    struct shared *sh = w->sh;
    const struct config *cfg = sh->cfg;
    for (;;) {
        uint64_t i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->nunits || atomic_load(&sh->failed))
            return;
        uint64_t off = i * cfg->unit;
        size_t len = (size_t)(cfg->size - off < cfg->unit ? cfg->size - off : cfg->unit);
        struct iovec v = {w->buf, len};
        if (cfg->write) {
            int rc = fio_writev(&w->fio, sh->fd, &v, 1, off);
            if (rc < 0) {
                int expected = 0;
                atomic_compare_exchange_strong(&sh->failed, &expected, rc);
            }
        } else {
            ssize_t n = fio_readv(&w->fio, sh->fd, &v, 1, off);
            if (n != (ssize_t)len) {
                int expected = 0;
                atomic_compare_exchange_strong(&sh->failed, &expected, n < 0 ? (int)n : -ENODATA);
            }
        }
    }
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < w->sh->cfg->repeat; r++) {
        pthread_barrier_wait(&w->sh->start);
        work(w);
        pthread_barrier_wait(&w->sh->done);
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_fileio --file PATH --size BYTES [--threads N] [--unit BYTES]\n"
            "                    [--mode sync|uring|uring-fixed] [--op read|write] [--repeat K]\n"
            "                    [--drop-cache] [--fsync]\n"
            "sizes take K, M, G suffixes (binary). Defaults: 1 thread, 4M units, uring, read, 1 repeat.\n");
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    *cfg = (struct config){.threads = 1, .unit = 4u << 20, .repeat = 1, .mode = MODE_URING};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--drop-cache") == 0) {
            cfg->drop_cache = true;
            takes = false;
        } else if (strcmp(a, "--fsync") == 0) {
            cfg->fsync = true;
            takes = false;
        } else if (strcmp(a, "--overwrite") == 0) {
            cfg->overwrite = true;
            takes = false;
        } else if (!v) {
            fprintf(stderr, "bench_fileio: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--file") == 0) {
            cfg->file = v;
        } else if (strcmp(a, "--size") == 0 || strcmp(a, "--unit") == 0) {
            uint64_t b;
            if (ccr_parse_size(v, &b) != 0 || b == 0) {
                fprintf(stderr, "bench_fileio: bad %s '%s'\n", a, v);
                return -1;
            }
            *(a[2] == 's' ? &cfg->size : &cfg->unit) = b;
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "--repeat") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            int max = a[2] == 't' ? MAX_THREADS : MAX_REPEAT;
            if (*end || n < 1 || n > max) {
                fprintf(stderr, "bench_fileio: %s wants 1..%d\n", a, max);
                return -1;
            }
            *(a[2] == 't' ? &cfg->threads : &cfg->repeat) = (int)n;
        } else if (strcmp(a, "--mode") == 0) {
            int m = -1;
            for (int k = 0; k < 3; k++)
                if (strcmp(v, mode_names[k]) == 0)
                    m = k;
            if (m < 0) {
                fprintf(stderr, "bench_fileio: --mode is sync, uring or uring-fixed\n");
                return -1;
            }
            cfg->mode = (enum mode)m;
        } else if (strcmp(a, "--op") == 0) {
            if (strcmp(v, "read") != 0 && strcmp(v, "write") != 0) {
                fprintf(stderr, "bench_fileio: --op is read or write\n");
                return -1;
            }
            cfg->write = v[0] == 'w';
        } else {
            fprintf(stderr, "bench_fileio: unknown option %s\n", a);
            return -1;
        }
        if (takes)
            i++;
    }
    if (!cfg->file || !cfg->size) {
        usage(stderr);
        return -1;
    }
    if (cfg->unit > ((uint64_t)1 << 30)) {
        fprintf(stderr, "bench_fileio: --unit at most 1G\n");
        return -1;
    }
    return 0;
}

/* For reads: makes sure the file holds size bytes (fills what is missing with a pattern, flushes). */
static int prepare_read(int fd, const struct config *cfg)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if ((uint64_t)st.st_size >= cfg->size)
        return 0;
    fprintf(stderr, "bench_fileio: filling %s to %" PRIu64 " bytes (not timed)\n", cfg->file, cfg->size);
    size_t chunk = 8u << 20;
    uint8_t *b = malloc(chunk);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < chunk; i++)
        b[i] = (uint8_t)(i * 131 + (i >> 12) * 7 + 1);
    int rc = 0;
    for (uint64_t off = (uint64_t)st.st_size; off < cfg->size && rc == 0;) {
        size_t n = cfg->size - off < chunk ? (size_t)(cfg->size - off) : chunk;
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else
            off += (uint64_t)w;
    }
    free(b);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    return rc;
}

static const char *fs_name(const char *path)
{
    struct statfs s;
    if (statfs(path, &s) != 0)
        return "unknown";
    switch ((unsigned long)s.f_type) {
    case 0x01021994:
        return "tmpfs";
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x794c7630:
        return "overlayfs";
    default:
        return "other";
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct config cfg;
    if (parse_args(argc, argv, &cfg) != 0)
        return 1;
    int fd = open(cfg.file, (cfg.write ? O_WRONLY : O_RDWR) | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench_fileio: cannot open %s: %s\n", cfg.file, strerror(errno));
        return 2;
    }
    if (!cfg.write) {
        int rc = prepare_read(fd, &cfg);
        if (rc < 0) {
            fprintf(stderr, "bench_fileio: cannot fill %s: %s\n", cfg.file, strerror(-rc));
            return 2;
        }
    }

    struct shared sh = {.cfg = &cfg, .fd = fd, .nunits = (cfg.size + cfg.unit - 1) / cfg.unit};
    pthread_barrier_init(&sh.start, NULL, (unsigned)cfg.threads + 1);
    pthread_barrier_init(&sh.done, NULL, (unsigned)cfg.threads + 1);
    struct worker *ws = calloc((size_t)cfg.threads, sizeof(*ws));
    if (!ws)
        return 2;
    const char *io = NULL;
    for (int t = 0; t < cfg.threads; t++) {
        struct worker *w = &ws[t];
        w->sh = &sh;
        (void)fio_init(&w->fio, cfg.mode != MODE_SYNC);
        w->buf = ccr_alloc_aligned(4096, (size_t)cfg.unit);
        if (!w->buf)
            return 2;
        /* Touch every page, and give writes data that is not zero pages. */
        for (size_t i = 0; i < cfg.unit; i++)
            w->buf[i] = (uint8_t)(i * 251 + (size_t)t * 17 + 3);
        if (cfg.mode == MODE_URING_FIXED) {
            w->reg_rc = fio_register(&w->fio, w->buf, (size_t)cfg.unit);
            if (w->reg_rc != 0) {
                fprintf(stderr, "bench_fileio: cannot register the unit buffer: %s\n", strerror(-w->reg_rc));
                return 2;
            }
        }
        io = fio_mode(&w->fio);
        if (cfg.mode != MODE_SYNC && strcmp(io, "io_uring") != 0) {
            fprintf(stderr, "bench_fileio: no io_uring on this machine (CCR_IO=sync?)\n");
            return 2;
        }
        if (pthread_create(&w->tid, NULL, thread_main, w) != 0)
            return 2;
    }

    struct utsname un;
    uname(&un);
    double secs[MAX_REPEAT], rates[MAX_REPEAT], cpus[MAX_REPEAT];
    int status = 0;
    for (int r = 0; r < cfg.repeat; r++) {
        if (cfg.write && !cfg.overwrite && ftruncate(fd, 0) != 0) {
            fprintf(stderr, "bench_fileio: ftruncate: %s\n", strerror(errno));
            return 2;
        }
        if (cfg.drop_cache) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        }
        atomic_store(&sh.next, 0);
        double c0 = cpu_seconds(), t0 = now();
        pthread_barrier_wait(&sh.start);
        pthread_barrier_wait(&sh.done);
        if (cfg.fsync && fdatasync(fd) != 0 && !atomic_load(&sh.failed))
            atomic_store(&sh.failed, -errno);
        double t1 = now(), c1 = cpu_seconds();
        int failed = atomic_load(&sh.failed);
        if (failed) {
            fprintf(stderr, "bench_fileio: %s failed: %s\n", cfg.write ? "write" : "read", strerror(-failed));
            status = 2;
            break;
        }
        secs[r] = t1 - t0;
        cpus[r] = c1 - c0;
        rates[r] = (double)cfg.size / secs[r] / 1e6;
        printf("{\"bench\":\"fileio\",\"op\":\"%s\",\"mode\":\"%s\",\"threads\":%d,\"unit\":%" PRIu64
               ",\"bytes\":%" PRIu64
               ",\"seconds\":%.4f,\"mb_s\":%.1f,\"cpu_s\":%.4f,\"run\":%d,\"fs\":\"%s\","
               "\"drop_cache\":%s,\"fsync\":%s,\"overwrite\":%s,\"io\":\"%s\",\"kernel\":\"%s\"}\n",
               cfg.write ? "write" : "read", mode_names[cfg.mode], cfg.threads, cfg.unit, cfg.size, secs[r],
               rates[r], cpus[r], r, fs_name(cfg.file), cfg.drop_cache ? "true" : "false",
               cfg.fsync ? "true" : "false", cfg.overwrite ? "true" : "false", io, un.release);
        fflush(stdout);
        fprintf(stderr, "%-5s %-11s threads %d unit %" PRIu64 " : %8.1f MB/s  %.3f s  cpu %.3f s\n",
                cfg.write ? "write" : "read", mode_names[cfg.mode], cfg.threads, cfg.unit, rates[r], secs[r],
                cpus[r]);
    }
    if (status == 0 && cfg.repeat > 1) {
        double s[MAX_REPEAT], c[MAX_REPEAT];
        memcpy(s, rates, sizeof(double) * (size_t)cfg.repeat);
        memcpy(c, cpus, sizeof(double) * (size_t)cfg.repeat);
        qsort(s, (size_t)cfg.repeat, sizeof(double), cmp_double);
        qsort(c, (size_t)cfg.repeat, sizeof(double), cmp_double);
        fprintf(stderr, "median of %d: %.1f MB/s, cpu %.3f s\n", cfg.repeat, s[cfg.repeat / 2],
                c[cfg.repeat / 2]);
    }
    if (status != 0)
        return status; /* the threads wait at the next start barrier: the process just ends */
    for (int t = 0; t < cfg.threads; t++) {
        pthread_join(ws[t].tid, NULL);
        fio_fini(&ws[t].fio);
        ccr_free(ws[t].buf);
    }
    free(ws);
    close(fd);
    return 0;
}
