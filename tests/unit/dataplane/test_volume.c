/*
 * test_volume.c - the read side of a volume (ccr/volume.h) over the local store, on /dev/shm when it
 * exists: sequential, random and concurrent reads in every mode, listings, tampering, a blob replaced
 * under an open file, the memory budget and the over-read of random reads.
 */
#include <pthread.h>

#include "ccr/blob.h"
#include "ccr/transfer.h"
#include "ccr/volume.h"
#include "dp_helpers.h"

struct vt {
    char *dir, *src, *root, *url;
    struct ccr_store *store;
    struct ccr_datastore ds;
    struct ccr_key key;
    struct ccr_volume *v;
};

static void vt_setup(struct vt *t, enum ccr_mode mode, uint64_t region)
{
    memset(t, 0, sizeof(*t));
    t->dir =
        strdup(access("/dev/shm", W_OK) == 0 ? "/dev/shm/ccr-vol-test-XXXXXX" : "/tmp/ccr-vol-test-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    t->src = dp_path(t->dir, "src");
    t->root = dp_path(t->dir, "store");
    cr_assert(asprintf(&t->url, "file://%s", t->root) > 0);
    cr_assert_eq(mkdir(t->src, 0755), 0);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t->url, &t->store, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_store_create_container(t->store, NULL, &e), 0, "%s", e.msg);
    t->ds = (struct ccr_datastore){.name = "t", .url = t->url, .mode = mode, .region_size = region};
    t->key = dp_key(5);
}

static const struct ccr_key *vt_key(struct vt *t)
{
    return t->ds.mode == CCR_MODE_NONE || t->ds.mode == CCR_MODE_CPK ? NULL : &t->key;
}

static void vt_open(struct vt *t, const struct ccr_volume_opts *o)
{
    struct ccr_err e;
    cr_assert_eq(ccr_volume_open(t->store, &t->ds, vt_key(t), o, &t->v, &e), 0, "%s", e.msg);
}

static void vt_teardown(struct vt *t)
{
    struct ccr_err e;
    cr_assert_eq(ccr_volume_close(t->v, &e), 0, "%s", e.msg);
    ccr_store_close(t->store);
    free(t->src);
    free(t->root);
    free(t->url);
    dp_rmtree(t->dir);
}

static void vt_write(struct vt *t, const char *rel, uint64_t size, unsigned seed)
{
    char *p = dp_path(t->src, rel);
    for (char *s = p + strlen(t->src) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    dp_write_file(p, size, seed);
    free(p);
}

static void vt_publish(struct vt *t)
{
    struct ccr_transfer_opts o;
    ccr_transfer_opts_init(&o);
    o.threads = 2;
    o.memory = 64 << 20;
    o.no_journal = true;
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_publish(t->store, &t->ds, vt_key(t), t->src, &o, &r, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert_eq(r.errors, 0);
    ccr_transfer_result_fini(&r);
}

static struct ccr_vfile *vt_fopen(struct vt *t, const char *path)
{
    struct ccr_vfile *f = NULL;
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_open(t->v, path, CCR_VOPEN_READ, &f, &e), 0, "%s: %s", e.where, e.msg);
    return f;
}

/* Reads [off, off + len) and checks it against the generator (seed). */
static void vt_check_read(struct ccr_vfile *f, uint64_t size, unsigned seed, uint64_t off, size_t len,
                          uint8_t *buf)
{
    struct ccr_err e;
    ssize_t n = ccr_vfile_read(f, buf, len, off, &e);
    uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
    cr_assert_eq(n, (ssize_t)want, "read at %llu: %zd (%s)", (unsigned long long)off, n, e.msg);
    for (size_t i = 0; i < want; i++)
        if (buf[i] != dp_byte(off + i, seed))
            cr_assert_fail("byte %llu differs", (unsigned long long)(off + i));
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const struct {
    enum ccr_mode mode;
    uint64_t region;
} modes[] = {
    {CCR_MODE_CCR1, 64 << 10}, {CCR_MODE_CCR1, 0}, {CCR_MODE_CSE, 64 << 10},
    {CCR_MODE_NONE, 0},        {CCR_MODE_CPK, 0},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

/* ----------------------------------------------------------------------------------------------------- */

Test(dataplane_volume, sequential_read_every_mode, .timeout = 120)
{
    const uint64_t size = (21u << 20) + 12345; /* several units, a partial last region */
    for (size_t m = 0; m < NMODES; m++) {
        struct vt t;
        vt_setup(&t, modes[m].mode, modes[m].region);
        vt_write(&t, "big.bin", size, 11);
        vt_publish(&t);
        struct ccr_volume_opts o = {.memory = 64 << 20, .prefetch = 16 << 20};
        vt_open(&t, &o);
        struct ccr_vfile *f = vt_fopen(&t, "big.bin");
        cr_assert_eq(ccr_vfile_size(f), size);
        uint8_t *buf = malloc(128 << 10);
        for (uint64_t off = 0; off < size + (128 << 10); off += 128 << 10)
            vt_check_read(f, size, 11, off, 128 << 10, buf);
        free(buf);
        cr_assert_eq(ccr_vfile_close(f, NULL), 0);
        struct ccr_volume_stats st;
        ccr_volume_get_stats(t.v, &st);
        cr_assert_eq(st.bytes_read, size, "mode %s", ccr_mode_name(modes[m].mode));
        cr_assert_gt(st.prefetches, 0, "mode %s: sequential reads prefetch", ccr_mode_name(modes[m].mode));
        /* P11: every stored byte fetched once (tags and header are the only overhead) */
        cr_assert_leq((double)st.bytes_fetched / (double)st.bytes_read, 1.01,
                      "mode %s: over-read %llu / %llu", ccr_mode_name(modes[m].mode),
                      (unsigned long long)st.bytes_fetched, (unsigned long long)st.bytes_read);
        cr_assert_leq(st.memory_peak, 64u << 20);
        vt_teardown(&t);
    }
}

/* ccr_vfile_read_ref describes the same bytes as ccr_vfile_read, in place, pinned until released. */
Test(dataplane_volume, read_ref_in_place_every_mode, .timeout = 120)
{
    const uint64_t size = (13u << 20) + 4321;
    for (size_t m = 0; m < NMODES; m++) {
        struct vt t;
        vt_setup(&t, modes[m].mode, modes[m].region);
        vt_write(&t, "z.bin", size, 15);
        vt_publish(&t);
        struct ccr_volume_opts o = {.memory = 80 << 20, .prefetch = 4 << 20, .writable = true};
        vt_open(&t, &o);
        struct ccr_vfile *f = vt_fopen(&t, "z.bin");
        uint64_t s = 7 + m;
        for (int i = 0; i < 300; i++) {
            uint64_t off = i < 100 ? (uint64_t)i * (1u << 17) : rnd(&s) % (size + 1000);
            size_t len = i < 100 ? 1u << 17 : (size_t)(rnd(&s) % (1u << 20)) + 1;
            struct ccr_vref ref;
            struct ccr_err e;
            ssize_t n = ccr_vfile_read_ref(f, len, off, &ref, &e);
            if (n == -E2BIG) {
                cr_assert_eq(ref.npins, 0, "nothing held after -E2BIG");
                continue;
            }
            uint64_t want = off >= size ? 0 : (size - off < len ? size - off : len);
            cr_assert_eq(n, (ssize_t)want, "mode %s: read_ref at %llu: %zd (%s)",
                         ccr_mode_name(modes[m].mode), (unsigned long long)off, n, e.msg);
            uint64_t p = off;
            for (int k = 0; k < ref.niov; k++) {
                const uint8_t *b = ref.iov[k].iov_base;
                for (size_t j = 0; j < ref.iov[k].iov_len; j++, p++)
                    if (b[j] != dp_byte(p, 15))
                        cr_assert_fail("mode %s: byte %llu differs", ccr_mode_name(modes[m].mode),
                                       (unsigned long long)p);
            }
            cr_assert_eq(p, off + want, "the pieces cover the range exactly");
            ccr_vref_release(&ref);
        }
        /* more pieces than a ref holds: 64 KiB regions, 8 MiB */
        if (modes[m].region == (64 << 10)) {
            struct ccr_vref ref;
            cr_assert_eq(ccr_vfile_read_ref(f, 8u << 20, 0, &ref, NULL), -E2BIG);
            cr_assert_eq(ref.npins, 0);
        }
        cr_assert_eq(ccr_vfile_close(f, NULL), 0);
        struct ccr_volume_stats st;
        ccr_volume_get_stats(t.v, &st);
        cr_assert_leq(st.memory_peak, 80u << 20, "pins released: the budget held (%llu)",
                      (unsigned long long)st.memory_peak);
        /* a file open for writing is read by copy */
        struct ccr_vfile *w = NULL;
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_open(t.v, "new.bin", CCR_VOPEN_WRITE | CCR_VOPEN_CREATE, &w, &e), 0, "%s",
                     e.msg);
        struct ccr_vref wref;
        cr_assert_eq(ccr_vfile_read_ref(w, 10, 0, &wref, NULL), -ENOTSUP);
        cr_assert_eq(ccr_vfile_close(w, NULL), 0);
        vt_teardown(&t);
    }
}

Test(dataplane_volume, read_ref_copies_in_a_small_budget, .timeout = 60)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 0);
    vt_write(&t, "y.bin", 5u << 20, 16);
    vt_publish(&t);
    struct ccr_volume_opts o = {.memory = 16 << 20};
    vt_open(&t, &o);
    struct ccr_vfile *f = vt_fopen(&t, "y.bin");
    struct ccr_vref ref;
    cr_assert_eq(ccr_vfile_read_ref(f, 4096, 0, &ref, NULL), -ENOTSUP, "16 MiB holds 4 units: copy");
    cr_assert_eq(ref.npins, 0);
    uint8_t buf[4096];
    vt_check_read(f, 5u << 20, 16, 0, sizeof(buf), buf);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    vt_teardown(&t);
}

Test(dataplane_volume, random_reads_every_mode, .timeout = 120)
{
    const uint64_t size = (9u << 20) + 777;
    for (size_t m = 0; m < NMODES; m++) {
        struct vt t;
        vt_setup(&t, modes[m].mode, modes[m].region);
        vt_write(&t, "r.bin", size, 3);
        vt_publish(&t);
        struct ccr_volume_opts o = {.memory = 8 << 20}; /* smaller than the file: evictions too */
        vt_open(&t, &o);
        struct ccr_vfile *f = vt_fopen(&t, "r.bin");
        uint8_t *buf = malloc(300000);
        uint64_t s = 0x1234567 + m;
        for (int i = 0; i < 3000; i++) {
            uint64_t off = rnd(&s) % (size + 1000);
            size_t len = (size_t)(rnd(&s) % 300000);
            if (i % 3 == 0)
                len %= 5000; /* many small reads */
            vt_check_read(f, size, 3, off, len, buf);
        }
        free(buf);
        cr_assert_eq(ccr_vfile_close(f, NULL), 0);
        vt_teardown(&t);
    }
}

struct reader_arg {
    struct vt *t;
    uint64_t size;
    int id;
    int failures;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    struct ccr_vfile *f = NULL;
    if (ccr_vfile_open(a->t->v, "c.bin", CCR_VOPEN_READ, &f, NULL) != 0) {
        a->failures++;
        return NULL;
    }
    uint8_t *buf = malloc(1 << 20);
    uint64_t s = 77 + (uint64_t)a->id;
    for (int i = 0; i < 200; i++) {
        /* half the threads read sequentially, the others jump around */
        uint64_t off = a->id % 2 ? rnd(&s) % a->size : ((uint64_t)i * (256 << 10)) % a->size;
        size_t len = a->id % 2 ? (size_t)(rnd(&s) % (1 << 20)) : (256 << 10);
        ssize_t n = ccr_vfile_read(f, buf, len, off, NULL);
        uint64_t want = a->size - off < len ? a->size - off : len;
        if (n != (ssize_t)want) {
            a->failures++;
            continue;
        }
        for (size_t k = 0; k < want; k++)
            if (buf[k] != dp_byte(off + k, 4)) {
                a->failures++;
                break;
            }
    }
    free(buf);
    if (ccr_vfile_close(f, NULL) != 0)
        a->failures++;
    return NULL;
}

Test(dataplane_volume, eight_threads_read_concurrently, .timeout = 120)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    const uint64_t size = 24u << 20;
    vt_write(&t, "c.bin", size, 4);
    vt_publish(&t);
    struct ccr_volume_opts o = {.memory = 16 << 20, .prefetch = 8 << 20};
    vt_open(&t, &o);
    pthread_t th[8];
    struct reader_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (struct reader_arg){.t = &t, .size = size, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].failures, 0, "reader %d", i);
    }
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_gt(st.cache_hits, 0);
    cr_assert_leq(st.memory_peak, 16u << 20);
    vt_teardown(&t);
}

/* ----------------------------------------------------------------------------------------------------- */

struct listing {
    char names[64][64];
    struct ccr_vstat st[64];
    int n;
};

static int collect(void *arg, const char *name, const struct ccr_vstat *st)
{
    struct listing *l = arg;
    cr_assert_lt(l->n, 64);
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    l->st[l->n++] = *st;
    return 0;
}

static void check_tree(enum ccr_mode mode, uint64_t region)
{
    struct vt t;
    vt_setup(&t, mode, region);
    vt_write(&t, "a/b/c/deep.txt", 1000, 1);
    vt_write(&t, "a/b/x.bin", 70000, 2);
    vt_write(&t, "a/empty", 0, 0);
    vt_write(&t, "a.txt", 5, 3);
    vt_write(&t, "unicod\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91.csv", 12345, 9);
    vt_write(&t, "z", 1, 4);
    vt_publish(&t);
    vt_open(&t, NULL);
    struct ccr_err e;
    struct listing l = {0};
    cr_assert_eq(ccr_volume_readdir(t.v, "", collect, &l, &e), 0, "%s", e.msg);
    cr_assert_eq(l.n, 4);
    cr_assert_str_eq(l.names[0], "a");
    cr_assert(l.st[0].is_dir);
    cr_assert_str_eq(l.names[1], "a.txt");
    cr_assert(!l.st[1].is_dir);
    cr_assert_eq(l.st[1].size, 5);
    cr_assert_str_eq(l.names[2], "unicod\xc3\xa9");
    cr_assert_str_eq(l.names[3], "z");
    memset(&l, 0, sizeof(l));
    cr_assert_eq(ccr_volume_readdir(t.v, "a", collect, &l, &e), 0, "%s", e.msg);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.names[0], "b");
    cr_assert_str_eq(l.names[1], "empty");
    cr_assert_eq(l.st[1].size, 0);
    cr_assert(!l.st[1].is_dir);
    memset(&l, 0, sizeof(l));
    cr_assert_eq(ccr_volume_readdir(t.v, "unicod\xc3\xa9", collect, &l, &e), 0, "%s", e.msg);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.st[0].size, 12345, "mode %s: %llu", ccr_mode_name(mode), (unsigned long long)l.st[0].size);

    struct ccr_vstat st;
    cr_assert_eq(ccr_volume_stat(t.v, "a/b/x.bin", &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.size, 70000);
    cr_assert_gt(st.mtime_ns, 0);
    cr_assert_eq(ccr_volume_stat(t.v, "a/b/c", &st, &e), 0);
    cr_assert(st.is_dir);
    cr_assert_eq(ccr_volume_stat(t.v, "", &st, &e), 0);
    cr_assert(st.is_dir);
    cr_assert_eq(ccr_volume_stat(t.v, "a/nope", &st, &e), -ENOENT);
    cr_assert_eq(ccr_volume_stat(t.v, "a.txt/x", &st, &e), -ENOENT);
    cr_assert_eq(ccr_volume_readdir(t.v, "a.txt", collect, &l, &e), -ENOTDIR);
    cr_assert_eq(ccr_volume_readdir(t.v, "nope", collect, &l, &e), -ENOENT);
    struct ccr_vfile *f = NULL;
    cr_assert_eq(ccr_vfile_open(t.v, "a", CCR_VOPEN_READ, &f, &e), -EISDIR);
    cr_assert_eq(ccr_vfile_open(t.v, "a/empty", CCR_VOPEN_READ, &f, &e), 0, "%s", e.msg);
    uint8_t b[4];
    cr_assert_eq(ccr_vfile_read(f, b, sizeof(b), 0, &e), 0);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    /* one listing served everything */
    struct ccr_volume_stats vs;
    ccr_volume_get_stats(t.v, &vs);
    cr_assert_eq(vs.list_requests, 1);
    vt_teardown(&t);
}

Test(dataplane_volume, listing_tree_every_mode, .timeout = 60)
{
    for (size_t m = 0; m < NMODES; m++)
        check_tree(modes[m].mode, modes[m].region);
}

Test(dataplane_volume, listing_with_prefix_and_ttl, .timeout = 60)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 0);
    vt_write(&t, "in/one", 10, 1);
    vt_write(&t, "out/two", 20, 2);
    vt_publish(&t);
    struct ccr_volume_opts o = {.prefix = "in", .list_ttl = -1};
    vt_open(&t, &o);
    struct ccr_vstat st;
    struct ccr_err e;
    cr_assert_eq(ccr_volume_stat(t.v, "one", &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.size, 10);
    cr_assert_eq(ccr_volume_stat(t.v, "two", &st, &e), -ENOENT);
    /* a blob added behind the volume's back: invisible while the listing is trusted forever */
    cr_assert_eq(ccr_store_put_blob(t.store, "in/late", "x", 1, NULL, &e), 0);
    cr_assert_eq(ccr_volume_stat(t.v, "late", &st, &e), -ENOENT);
    vt_teardown(&t);

    vt_setup(&t, CCR_MODE_NONE, 0);
    vt_write(&t, "one", 10, 1);
    vt_publish(&t);
    o = (struct ccr_volume_opts){.list_ttl = 0.05};
    vt_open(&t, &o);
    cr_assert_eq(ccr_volume_stat(t.v, "one", &st, &e), 0);
    cr_assert_eq(ccr_store_put_blob(t.store, "late", "xyz", 3, NULL, &e), 0);
    usleep(100000);
    cr_assert_eq(ccr_volume_stat(t.v, "late", &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.size, 3);
    vt_teardown(&t);
}

/* ----------------------------------------------------------------------------------------------------- */

static void check_tamper(enum ccr_mode mode, uint64_t region, uint64_t flip_at_region)
{
    struct vt t;
    vt_setup(&t, mode, region);
    const uint64_t size = 2u << 20;
    vt_write(&t, "t.bin", size, 6);
    vt_publish(&t);
    /* flip one ciphertext byte in the middle of region flip_at_region, before the volume lists it */
    uint64_t stride = mode == CCR_MODE_CCR1 ? region + 16 : region + 28;
    uint64_t at = (mode == CCR_MODE_CCR1 ? 64 : 0) + flip_at_region * stride + 100;
    char *blob = dp_path(t.root, "t.bin");
    dp_flip(blob, at, 0x40);
    free(blob);
    ccr_log_set(NULL, NULL, CCR_LOG_ERROR);
    vt_open(&t, NULL);
    struct ccr_vfile *f = vt_fopen(&t, "t.bin");
    uint8_t *buf = malloc(region * 2);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_vfile_read(f, buf, 10, flip_at_region * region + 5, &e), -EIO);
    cr_assert_str_eq(e.where, "t.bin");
    cr_assert_neq(strstr(e.msg, "authentication"), NULL, "%s", e.msg);
    cr_assert_eq(e.offset, (int64_t)(at - 100));
    /* a read spanning into it fails too; its neighbours read fine */
    cr_assert_eq(ccr_vfile_read(f, buf, region, flip_at_region * region - 10, &e), -EIO);
    vt_check_read(f, size, 6, (flip_at_region - 1) * region, region, buf);
    vt_check_read(f, size, 6, (flip_at_region + 1) * region, region, buf);
    vt_check_read(f, size, 6, 0, 1000, buf);
    free(buf);
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_geq(st.auth_failures, 1);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    vt_teardown(&t);
}

Test(dataplane_volume, tampered_region_fails_with_eio, .timeout = 60)
{
    check_tamper(CCR_MODE_CCR1, 64 << 10, 5);
    check_tamper(CCR_MODE_CSE, 64 << 10, 7);
}

Test(dataplane_volume, tampered_header_fails_every_read, .timeout = 60)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    vt_write(&t, "h.bin", 300000, 6);
    vt_publish(&t);
    char *blob = dp_path(t.root, "h.bin");
    dp_flip(blob, 40, 0x01); /* the salt */
    free(blob);
    vt_open(&t, NULL);
    struct ccr_vfile *f = vt_fopen(&t, "h.bin");
    uint8_t buf[100];
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_read(f, buf, sizeof(buf), 200000, &e), -EIO);
    cr_assert_eq(ccr_vfile_read(f, buf, sizeof(buf), 0, &e), -EIO);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    vt_teardown(&t);
}

Test(dataplane_volume, replaced_blob_fails_with_estale, .timeout = 60)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    const uint64_t size = 1u << 20;
    vt_write(&t, "s.bin", size, 8);
    vt_publish(&t);
    vt_open(&t, NULL);
    struct ccr_vfile *f = vt_fopen(&t, "s.bin");
    uint8_t buf[4096];
    vt_check_read(f, size, 8, 0, sizeof(buf), buf);
    /* someone publishes another version */
    vt_write(&t, "s.bin", size, 9);
    vt_publish(&t);
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_read(f, buf, sizeof(buf), 700000, &e), -ESTALE);
    cr_assert_str_eq(e.where, "s.bin");
    /* a cached region of the old version is not served either: the handle fails as a whole */
    cr_assert_eq(ccr_vfile_read(f, buf, 100, 0, &e), -ESTALE);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    /* reopening reads the new version */
    f = vt_fopen(&t, "s.bin");
    vt_check_read(f, size, 9, 0, sizeof(buf), buf);
    vt_check_read(f, size, 9, 700000, sizeof(buf), buf);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    vt_teardown(&t);
}

Test(dataplane_volume, file_larger_than_budget_stays_within_it, .timeout = 120)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 0);
    const uint64_t budget = 16u << 20, size = 4 * budget + 4321;
    vt_write(&t, "m.bin", size, 12);
    vt_publish(&t);
    struct ccr_volume_opts o = {.memory = budget, .prefetch = 64 << 20};
    vt_open(&t, &o);
    struct ccr_vfile *f = vt_fopen(&t, "m.bin");
    uint8_t *buf = malloc(1 << 20);
    for (uint64_t off = 0; off < size; off += 1 << 20)
        vt_check_read(f, size, 12, off, 1 << 20, buf);
    free(buf);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_leq(st.memory_peak, budget, "peak %llu", (unsigned long long)st.memory_peak);
    cr_assert_gt(st.memory_peak, budget / 4); /* it did use the budget */
    cr_assert_leq((double)st.bytes_fetched / (double)st.bytes_read, 1.01);
    vt_teardown(&t);
}

/* FUSE's readahead runs several reads at once: some arrive early, beyond the detector's slack, and break the
 * streak for a moment. The stream must resume with its window, not prefetch again what it already had. */
Test(dataplane_volume, reordered_sequential_reads_do_not_over_read, .timeout = 120)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 0);
    const uint64_t budget = 24u << 20, mib = 1u << 20, size = 96 * mib;
    vt_write(&t, "r.bin", size, 14);
    vt_publish(&t);
    struct ccr_volume_opts o = {.memory = budget, .prefetch = 8 << 20};
    vt_open(&t, &o);
    struct ccr_vfile *f = vt_fopen(&t, "r.bin");
    uint8_t *buf = malloc(mib);
    /* Blocks of three 4 MiB units, read as: the third unit first (early, beyond the slack), then the first
     * two. The early unit is finished, sent to the cold end and evicted; the late reads then resume the
     * stream behind it, and must not prefetch it again. */
    for (uint64_t blk = 0; blk < size / mib; blk += 12) {
        for (uint64_t j = blk + 8; j < blk + 12; j++)
            vt_check_read(f, size, 14, j * mib, mib, buf);
        for (uint64_t j = blk; j < blk + 8; j++)
            vt_check_read(f, size, 14, j * mib, mib, buf);
    }
    free(buf);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_eq(st.bytes_read, size);
    cr_assert_leq((double)st.bytes_fetched / (double)st.bytes_read, 1.01, "fetched %llu for %llu read",
                  (unsigned long long)st.bytes_fetched, (unsigned long long)st.bytes_read);
    vt_teardown(&t);
}

Test(dataplane_volume, random_small_reads_fetch_one_region, .timeout = 120)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    const uint64_t size = 64u << 20;
    vt_write(&t, "o.bin", size, 13);
    vt_publish(&t);
    vt_open(&t, NULL);
    struct ccr_vfile *f = vt_fopen(&t, "o.bin");
    uint8_t buf[4096];
    uint64_t s = 99;
    const int reads = 2000;
    for (int i = 0; i < reads; i++)
        vt_check_read(f, size, 13, (rnd(&s) % (size / 4096)) * 4096, sizeof(buf), buf);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    /* P8: at most one 64 KiB region (and its tag) per read; the header once */
    cr_assert_leq(st.bytes_fetched, (uint64_t)reads * ((64 << 10) + 16) + 64, "fetched %llu for %d reads",
                  (unsigned long long)st.bytes_fetched, reads);
    cr_assert_eq(st.prefetches, 0);
    vt_teardown(&t);
}

Test(dataplane_volume, read_only_volume_refuses_changes, .timeout = 30)
{
    struct vt t;
    vt_setup(&t, CCR_MODE_NONE, 0);
    vt_write(&t, "f", 10, 1);
    vt_publish(&t);
    vt_open(&t, NULL);
    struct ccr_err e;
    struct ccr_vfile *f = NULL;
    cr_assert(!ccr_volume_writable(t.v));
    cr_assert_eq(ccr_vfile_open(t.v, "f", CCR_VOPEN_WRITE, &f, &e), -EROFS);
    cr_assert_eq(ccr_vfile_open(t.v, "g", CCR_VOPEN_WRITE | CCR_VOPEN_CREATE, &f, &e), -EROFS);
    cr_assert_eq(ccr_volume_mkdir(t.v, "d", &e), -EROFS);
    cr_assert_eq(ccr_volume_unlink(t.v, "f", &e), -EROFS);
    cr_assert_eq(ccr_volume_rename(t.v, "f", "g", &e), -EROFS);
    f = vt_fopen(&t, "f");
    cr_assert_eq(ccr_vfile_truncate(f, 0, &e), -EROFS);
    cr_assert_eq(ccr_vfile_flush(f, &e), 0);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    vt_teardown(&t);
}
