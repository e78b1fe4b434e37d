/*
 * bench_crypto.c - AES-256-GCM region seal/open throughput through the public crypto API (target P1).
 *
 *   bench_crypto [--seconds S] [--runs N] [--warmup S] [--sizes 64K,1M,...] [--threads 1,2]
 *                [--ops ccr1-seal,ccr1-open,aead-seal,aead-open]
 *
 * For every (op, size, threads) point each thread gets its own struct ccr_aead and its own buffers and
 * loops over one region for S seconds per run; a run's figure is the bytes all threads processed divided
 * by the longest thread's elapsed time, in MB/s (MB = 10^6 bytes, like `openssl speed`). Ops:
 *   ccr1-seal  ccr_ccr1_seal_region, in place (region index counts up, tag after the region)
 *   ccr1-open  ccr_ccr1_open_region of one sealed region, in place like the pipeline and `openssl speed`;
 *              after each open the plaintext is sealed back in place (GCM is deterministic for a fixed key
 *              and nonce, so the identical ciphertext and tag return) and only the opens are timed: the
 *              elapsed time of an open point is the time spent inside open calls
 *   aead-seal  raw ccr_aead_seal, in place, no AAD: the floor under the ccr1 framing
 *   aead-open  raw ccr_aead_open, in place, timed as ccr1-open
 * stdout: one JSON line per point (suite, scenario, impl, params, runs[], median, unit);
 * stderr: a human table. Exit 0, or 1 on a usage error, 2 when a crypto call fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccr/crypto.h"

#define MAX_LIST 16
#define MAX_RUNS 100

enum op { OP_CCR1_SEAL, OP_CCR1_OPEN, OP_AEAD_SEAL, OP_AEAD_OPEN, OP_COUNT };

static const struct {
    const char *name, *scenario, *impl, *how;
} ops[OP_COUNT] = {
    [OP_CCR1_SEAL] = {"ccr1-seal", "region-seal", "ccr1", "ccr_ccr1_seal_region, in place"},
    [OP_CCR1_OPEN] = {"ccr1-open", "region-open", "ccr1", "ccr_ccr1_open_region, in place, opens timed"},
    [OP_AEAD_SEAL] = {"aead-seal", "region-seal", "aead", "ccr_aead_seal, in place, no AAD"},
    [OP_AEAD_OPEN] = {"aead-open", "region-open", "aead", "ccr_aead_open, in place, no AAD, opens timed"},
};

struct config {
    double seconds, warmup;
    int runs;
    size_t sizes[MAX_LIST];
    int nsizes;
    int threads[MAX_LIST];
    int nthreads;
    enum op ops[OP_COUNT];
    int nops;
};

/* One point: what every thread of it shares. */
struct point {
    enum op op;
    size_t size;
    int nthreads;
    const struct config *cfg;
    struct ccr_ccr1 ccr1; /* read-only after init: shared by the threads */
    uint8_t key[CCR_KEY_LEN];
    pthread_barrier_t barrier;
};

struct worker {
    pthread_t tid;
    struct point *pt;
    struct ccr_aead *aead;
    uint8_t *buf; /* size + tag */
    uint64_t bytes[MAX_RUNS];
    double elapsed[MAX_RUNS];
    int rc;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned log2_exact(size_t v)
{
    unsigned l = 0;
    while (((size_t)1 << l) < v)
        l++;
    return l;
}

/* One operation on the worker's region; index makes each seal use a fresh nonce. */
static int do_op(struct worker *w, uint64_t index)
{
    struct point *pt = w->pt;
    size_t n = pt->size;
    uint8_t *tag = w->buf + n;
    switch (pt->op) {
    case OP_CCR1_SEAL:
        return ccr_ccr1_seal_region(&pt->ccr1, w->aead, index, false, w->buf, w->buf, n, tag);
    case OP_CCR1_OPEN: {
        struct ccr_err err;
        return ccr_ccr1_open_region(&pt->ccr1, w->aead, 0, false, w->buf, w->buf, n, tag, &err);
    }
    case OP_AEAD_SEAL: {
        uint8_t iv[CCR_GCM_IV_LEN] = {0};
        memcpy(iv + 4, &index, sizeof(index));
        return ccr_aead_seal(w->aead, pt->key, iv, NULL, 0, w->buf, w->buf, n, tag);
    }
    case OP_AEAD_OPEN: {
        static const uint8_t iv[CCR_GCM_IV_LEN] = {0};
        return ccr_aead_open(w->aead, pt->key, iv, NULL, 0, w->buf, w->buf, n, tag);
    }
    default:
        return -EINVAL;
    }
}

static bool is_open_op(const struct point *pt)
{
    return pt->op == OP_CCR1_OPEN || pt->op == OP_AEAD_OPEN;
}

/*
 * Open ops only: seals the plaintext an in-place open left in the buffer back into the region it came
 * from. GCM is deterministic for a fixed key and nonce, so this restores the identical ciphertext and tag.
 */
static int reseal(struct worker *w)
{
    struct point *pt = w->pt;
    if (pt->op == OP_CCR1_OPEN)
        return ccr_ccr1_seal_region(&pt->ccr1, w->aead, 0, false, w->buf, w->buf, pt->size,
                                    w->buf + pt->size);
    static const uint8_t iv[CCR_GCM_IV_LEN] = {0};
    return ccr_aead_seal(w->aead, pt->key, iv, NULL, 0, w->buf, w->buf, pt->size, w->buf + pt->size);
}

/* Prepares the worker's buffer: random plaintext, sealed as region 0 for the open ops. */
static int worker_setup(struct worker *w)
{
    struct point *pt = w->pt;
    int rc = ccr_random_bytes(w->buf, pt->size);
    if (rc != 0)
        return rc;
    if (pt->op == OP_CCR1_OPEN)
        return ccr_ccr1_seal_region(&pt->ccr1, w->aead, 0, false, w->buf, w->buf, pt->size,
                                    w->buf + pt->size);
    if (pt->op == OP_AEAD_OPEN) {
        static const uint8_t iv[CCR_GCM_IV_LEN] = {0};
        return ccr_aead_seal(w->aead, pt->key, iv, NULL, 0, w->buf, w->buf, pt->size, w->buf + pt->size);
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct point *pt = w->pt;
    const struct config *cfg = pt->cfg;
    uint64_t index = 1;

    w->rc = worker_setup(w);
    /* Every thread passes every barrier, even after a failure, so that none waits forever. */
    pthread_barrier_wait(&pt->barrier);
    double end = now() + cfg->warmup;
    while (w->rc == 0 && now() < end) {
        w->rc = do_op(w, index++);
        if (w->rc == 0 && is_open_op(pt))
            w->rc = reseal(w);
    }

    for (int r = 0; r < cfg->runs; r++) {
        pthread_barrier_wait(&pt->barrier);
        uint64_t bytes = 0;
        double t0 = now(), t = t0, busy = 0;
        end = t0 + cfg->seconds;
        while (w->rc == 0 && t < end) {
            double a = t;
            w->rc = do_op(w, index++);
            t = now();
            busy += t - a;
            bytes += pt->size;
            if (w->rc == 0 && is_open_op(pt)) {
                w->rc = reseal(w); /* untimed: restores the ciphertext for the next open */
                t = now();
            }
        }
        w->bytes[r] = bytes;
        w->elapsed[r] = is_open_op(pt) ? busy : t - t0;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Runs one point; fills mbps[0..runs). Returns 0 or the first failing call's negative errno. */
static int run_point(struct point *pt, double *mbps)
{
    const struct config *cfg = pt->cfg;
    struct worker *ws = calloc((size_t)pt->nthreads, sizeof(*ws));
    int rc = 0, started = 0;
    if (!ws)
        return -ENOMEM;
    for (int i = 0; i < pt->nthreads; i++) {
        struct worker *w = &ws[i];
        w->pt = pt;
        w->buf = ccr_alloc_aligned(64, pt->size + CCR_GCM_TAG_LEN);
        if (!w->buf) {
            rc = -ENOMEM;
            goto out;
        }
        rc = ccr_aead_create(&w->aead);
        if (rc != 0)
            goto out;
    }
    if (pthread_barrier_init(&pt->barrier, NULL, (unsigned)pt->nthreads) != 0) {
        rc = -EAGAIN;
        goto out;
    }
    for (; started < pt->nthreads; started++) {
        if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]) != 0) {
            rc = -EAGAIN;
            break;
        }
    }
    if (started < pt->nthreads) {
        /* The barrier counts on every thread: without all of them nobody can start. Give up loudly. */
        fprintf(stderr, "bench_crypto: pthread_create failed\n");
        exit(2);
    }
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    pthread_barrier_destroy(&pt->barrier);
    for (int i = 0; i < pt->nthreads && rc == 0; i++)
        rc = ws[i].rc;
    for (int r = 0; r < cfg->runs && rc == 0; r++) {
        uint64_t bytes = 0;
        double elapsed = 0;
        for (int i = 0; i < pt->nthreads; i++) {
            bytes += ws[i].bytes[r];
            if (ws[i].elapsed[r] > elapsed)
                elapsed = ws[i].elapsed[r];
        }
        mbps[r] = elapsed > 0 ? (double)bytes / elapsed / 1e6 : 0;
    }
out:
    for (int i = 0; i < pt->nthreads; i++) {
        ccr_aead_destroy(ws[i].aead);
        ccr_free(ws[i].buf);
    }
    free(ws);
    return rc;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case 'K':
    case 'k':
        v <<= 10;
        end++;
        break;
    case 'M':
    case 'm':
        v <<= 20;
        end++;
        break;
    case 'G':
    case 'g':
        v <<= 30;
        end++;
        break;
    default:
        break;
    }
    if (*end || v == 0)
        return -EINVAL;
    *out = (size_t)v;
    return 0;
}

/* Splits a comma list in place into at most MAX_LIST items; returns the count or -EINVAL. */
static int split(char *s, char **items)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (n == MAX_LIST)
            return -EINVAL;
        items[n++] = tok;
    }
    return n > 0 ? n : -EINVAL;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "bench_crypto: %s\n"
            "usage: bench_crypto [--seconds S] [--runs N] [--warmup S] [--sizes 64K,256K,1M,4M,16M]\n"
            "                    [--threads 1,2] [--ops ccr1-seal,ccr1-open,aead-seal,aead-open]\n",
            why);
    return 1;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    char sizes[] = "64K,256K,1M,4M,16M", threads[] = "1,2", opsl[] = "ccr1-seal,ccr1-open,aead-seal";
    char *sizes_s = sizes, *threads_s = threads, *ops_s = opsl, *items[MAX_LIST];
    cfg->seconds = 1.0;
    cfg->warmup = 0.1;
    cfg->runs = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage("AES-256-GCM region throughput (JSON lines on stdout, table on stderr)");
            exit(0);
        }
        if (i + 1 >= argc)
            return usage("every option takes a value");
        char *v = argv[++i];
        if (!strcmp(a, "--seconds"))
            cfg->seconds = atof(v);
        else if (!strcmp(a, "--warmup"))
            cfg->warmup = atof(v);
        else if (!strcmp(a, "--runs"))
            cfg->runs = atoi(v);
        else if (!strcmp(a, "--sizes"))
            sizes_s = v;
        else if (!strcmp(a, "--threads"))
            threads_s = v;
        else if (!strcmp(a, "--ops"))
            ops_s = v;
        else
            return usage("unknown option");
    }
    if (cfg->seconds <= 0 || cfg->warmup < 0 || cfg->runs < 1 || cfg->runs > MAX_RUNS)
        return usage("bad --seconds, --warmup or --runs");

    int n = split(sizes_s, items);
    if (n < 0)
        return usage("bad --sizes");
    for (cfg->nsizes = 0; cfg->nsizes < n; cfg->nsizes++) {
        size_t sz;
        if (parse_size(items[cfg->nsizes], &sz) != 0 || (sz & (sz - 1)) ||
            log2_exact(sz) < CCR1_REGION_LOG2_MIN || log2_exact(sz) > CCR1_REGION_LOG2_MAX)
            return usage("sizes must be powers of two from 4K to 16M (ccr1 region sizes)");
        cfg->sizes[cfg->nsizes] = sz;
    }
    n = split(threads_s, items);
    if (n < 0)
        return usage("bad --threads");
    for (cfg->nthreads = 0; cfg->nthreads < n; cfg->nthreads++) {
        int t = atoi(items[cfg->nthreads]);
        if (t < 1 || t > 256)
            return usage("threads must be 1..256");
        cfg->threads[cfg->nthreads] = t;
    }
    n = split(ops_s, items);
    if (n < 0 || n > OP_COUNT)
        return usage("bad --ops");
    for (cfg->nops = 0; cfg->nops < n; cfg->nops++) {
        int k = 0;
        while (k < OP_COUNT && strcmp(items[cfg->nops], ops[k].name))
            k++;
        if (k == OP_COUNT)
            return usage("unknown op (ccr1-seal, ccr1-open, aead-seal, aead-open)");
        cfg->ops[cfg->nops] = (enum op)k;
    }
    return 0;
}

static void print_json(const struct point *pt, const double *mbps, double med)
{
    const struct config *cfg = pt->cfg;
    printf("{\"suite\":\"crypto\",\"scenario\":\"%s\",\"impl\":\"%s\",\"metric\":\"throughput\","
           "\"params\":{\"size\":%zu,\"threads\":%d,\"seconds_per_run\":%g,\"op\":\"%s\"},\"runs\":[",
           ops[pt->op].scenario, ops[pt->op].impl, pt->size, pt->nthreads, cfg->seconds, ops[pt->op].name);
    for (int r = 0; r < cfg->runs; r++)
        printf("%s%.1f", r ? "," : "", mbps[r]);
    printf("],\"median\":%.1f,\"unit\":\"MB/s\",\"notes\":\"%s; %d thread(s), each with its own ccr_aead and "
           "buffers; MB = 10^6 bytes\"}\n",
           med, ops[pt->op].how, pt->nthreads);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0)
        return rc;

    struct ccr_key dek;
    if (ccr_key_generate(&dek) != 0) {
        fprintf(stderr, "bench_crypto: cannot generate a key\n");
        return 2;
    }
    fprintf(stderr, "bench_crypto: %d run(s) of %.2f s per point, MB = 10^6 bytes\n", cfg.runs, cfg.seconds);
    fprintf(stderr, "%-10s %10s %7s %12s %12s %12s\n", "op", "size", "threads", "median MB/s", "min", "max");

    int status = 0;
    for (int o = 0; o < cfg.nops; o++) {
        for (int s = 0; s < cfg.nsizes; s++) {
            for (int t = 0; t < cfg.nthreads; t++) {
                struct point pt;
                memset(&pt, 0, sizeof(pt));
                pt.op = cfg.ops[o];
                pt.size = cfg.sizes[s];
                pt.nthreads = cfg.threads[t];
                pt.cfg = &cfg;
                rc = ccr_random_bytes(pt.key, sizeof(pt.key));
                if (rc == 0 && (pt.op == OP_CCR1_SEAL || pt.op == OP_CCR1_OPEN))
                    rc = ccr_ccr1_init_new(&pt.ccr1, &dek, log2_exact(pt.size));
                double mbps[MAX_RUNS] = {0};
                if (rc == 0)
                    rc = run_point(&pt, mbps);
                ccr_ccr1_fini(&pt.ccr1);
                ccr_wipe(pt.key, sizeof(pt.key));
                if (rc != 0) {
                    fprintf(stderr, "bench_crypto: %s at %zu bytes, %d thread(s) failed: %s\n",
                            ops[pt.op].name, pt.size, pt.nthreads, strerror(-rc));
                    status = 2;
                    continue;
                }
                double med = median(mbps, cfg.runs), lo = mbps[0], hi = mbps[0];
                for (int r = 1; r < cfg.runs; r++) {
                    lo = mbps[r] < lo ? mbps[r] : lo;
                    hi = mbps[r] > hi ? mbps[r] : hi;
                }
                print_json(&pt, mbps, med);
                fprintf(stderr, "%-10s %10zu %7d %12.1f %12.1f %12.1f\n", ops[pt.op].name, pt.size,
                        pt.nthreads, med, lo, hi);
            }
        }
    }
    ccr_key_wipe(&dek);
    return status;
}
