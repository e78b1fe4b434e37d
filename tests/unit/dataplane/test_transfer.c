/*
 * test_transfer.c - the transfer engine (ccr_publish / ccr_download / ccr_verify) over the local store,
 * on /dev/shm when it exists.
 */
#include <pthread.h>
#include <sys/time.h>
#include <time.h>

#include "ccr/blob.h"
#include "ccr/transfer.h"
#include "dp_helpers.h"

struct tt {
    char *dir, *src, *url, *journal;
    struct ccr_store *store;
    struct ccr_datastore ds;
    struct ccr_key key;
    struct ccr_transfer_opts o;
};

static void tt_setup(struct tt *t, enum ccr_mode mode, uint64_t region)
{
    memset(t, 0, sizeof(*t));
    t->dir =
        strdup(access("/dev/shm", W_OK) == 0 ? "/dev/shm/ccr-tx-test-XXXXXX" : "/tmp/ccr-tx-test-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    t->src = dp_path(t->dir, "src");
    t->journal = dp_path(t->dir, "journal");
    cr_assert(asprintf(&t->url, "file://%s/store", t->dir) > 0);
    cr_assert_eq(mkdir(t->src, 0755), 0);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t->url, &t->store, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_store_create_container(t->store, NULL, &e), 0, "%s", e.msg);
    t->ds = (struct ccr_datastore){.name = "t", .url = t->url, .mode = mode, .region_size = region};
    t->key = dp_key(3);
    ccr_transfer_opts_init(&t->o);
    t->o.threads = 2;
    t->o.memory = 64 << 20;
    t->o.journal_dir = t->journal;
}

static void tt_teardown(struct tt *t)
{
    ccr_store_close(t->store);
    free(t->src);
    free(t->url);
    free(t->journal);
    dp_rmtree(t->dir);
}

static const struct ccr_key *tt_key(struct tt *t)
{
    return t->ds.mode == CCR_MODE_NONE ? NULL : &t->key;
}

static void tt_write(struct tt *t, const char *rel, uint64_t size, unsigned seed)
{
    char *p = dp_path(t->src, rel);
    /* parents */
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

static int tt_publish(struct tt *t, struct ccr_transfer_result *r, struct ccr_err *e)
{
    return ccr_publish(t->store, &t->ds, tt_key(t), t->src, &t->o, r, e);
}

static bool tt_same_tree(const char *a, const char *b)
{
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "diff -r '%s' '%s' >/dev/null 2>&1", a, b) > 0);
    int rc = system(cmd);
    free(cmd);
    return rc == 0;
}

/* ~2,000 small files, empty files, an empty file 30 levels deep, unicode names, one 40 MiB file. */
static uint64_t tt_tree(struct tt *t, unsigned small)
{
    char rel[2048];
    for (unsigned i = 0; i < small; i++) {
        snprintf(rel, sizeof(rel), "small/d%02u/f%04u.bin", i % 20, i);
        tt_write(t, rel, (i * 37) % 5000, i);
    }
    tt_write(t, "empty/a.txt", 0, 0);
    tt_write(t, "empty/b.txt", 0, 0);
    size_t n = 0;
    for (int d = 0; d < 30; d++)
        n += (size_t)snprintf(rel + n, sizeof(rel) - n, "l%d/", d);
    snprintf(rel + n, sizeof(rel) - n, "deep-empty");
    tt_write(t, rel, 0, 0);
    tt_write(t, "unicod\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91.csv", 12345, 9);
    tt_write(t, "big/forty.bin", 40u << 20, 7);
    return small + 5;
}

static void tt_round_trip(enum ccr_mode mode, uint64_t region)
{
    struct tt t;
    tt_setup(&t, mode, region);
    uint64_t nfiles = tt_tree(&t, 2000);
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert_eq(r.files, nfiles);
    cr_assert_eq(r.errors, 0);
    cr_assert_geq(r.bytes_out, r.bytes_in);
    ccr_transfer_result_fini(&r);

    cr_assert_eq(ccr_verify(t.store, &t.ds, tt_key(&t), &t.o, &r, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert_eq(r.files, nfiles);
    cr_assert_eq(r.bytes_out, 0);
    ccr_transfer_result_fini(&r);

    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, tt_key(&t), out, &t.o, &r, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert_eq(r.files, nfiles);
    cr_assert_eq(r.errors, 0);
    ccr_transfer_result_fini(&r);
    cr_assert(tt_same_tree(t.src, out), "downloaded tree differs");

    /* the plaintext size of every blob without reading it (cse: the trailer) */
    struct ccr_blob_props p;
    uint64_t plain = 0;
    cr_assert_eq(ccr_store_props(t.store, "big/forty.bin", &p, &e), 0);
    cr_assert_eq(ccr_blob_plain_size(t.store, &t.ds, "big/forty.bin", &p, &plain, &e), 0, "%s", e.msg);
    cr_assert_eq(plain, 40u << 20);
    cr_assert_eq(ccr_blob_plain_size(t.store, &t.ds, "empty/a.txt", NULL, &plain, &e), 0, "%s", e.msg);
    cr_assert_eq(plain, 0);
    free(out);
    tt_teardown(&t);
}

Test(dataplane_transfer, round_trip_ccr1, .timeout = 120)
{
    tt_round_trip(CCR_MODE_CCR1, 0);
}

Test(dataplane_transfer, round_trip_cleanroom_cse, .timeout = 120)
{
    tt_round_trip(CCR_MODE_CSE, 1 << 20);
}

Test(dataplane_transfer, round_trip_none, .timeout = 120)
{
    tt_round_trip(CCR_MODE_NONE, 0);
}

Test(dataplane_transfer, ccr1_blocks_are_units_of_regions)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    tt_write(&t, "a", (9u << 20) + 5, 1); /* 10 regions -> 3 units */
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(t.store, "a", &p, &e), 0);
    cr_assert_eq(p.size, ccr_ccr1_blob_size((9u << 20) + 5, 20));
    /* the header is at byte 0 */
    uint8_t h[4];
    cr_assert_eq(ccr_store_get(t.store, "a", 0, h, 4, NULL, &e), 4);
    cr_assert_eq(memcmp(h, "CCR1", 4), 0);
    tt_teardown(&t);
}

Test(dataplane_transfer, prefix)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    tt_write(&t, "x/a.bin", 100000, 1);
    tt_write(&t, "b.bin", 10, 2);
    t.o.prefix = "pre/";
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(t.store, "pre/x/a.bin", &p, &e), 0);
    cr_assert_eq(ccr_store_props(t.store, "pre/b.bin", &p, &e), 0);
    cr_assert_eq(ccr_store_props(t.store, "x/a.bin", &p, &e), -ENOENT);
    /* "pre" without the slash means the same */
    t.o.prefix = "pre";
    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 2);
    ccr_transfer_result_fini(&r);
    cr_assert(tt_same_tree(t.src, out));
    /* another prefix sees nothing ("pr" is not "pre/") */
    t.o.prefix = "pr";
    cr_assert_eq(ccr_verify(t.store, &t.ds, &t.key, &t.o, &r, &e), 0);
    cr_assert_eq(r.files, 0);
    ccr_transfer_result_fini(&r);
    /* a bad prefix */
    t.o.prefix = "a/../b";
    cr_assert_eq(ccr_verify(t.store, &t.ds, &t.key, &t.o, &r, &e), -EINVAL);
    ccr_transfer_result_fini(&r);
    free(out);
    tt_teardown(&t);
}

Test(dataplane_transfer, shards_are_disjoint_and_cover_all)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_NONE, 0);
    char rel[64];
    for (int i = 0; i < 200; i++) {
        snprintf(rel, sizeof(rel), "d%d/f%d", i % 7, i);
        tt_write(&t, rel, 10, (unsigned)i);
    }
    uint64_t total = 0;
    for (unsigned s = 0; s < 4; s++) {
        char pfx[16];
        snprintf(pfx, sizeof(pfx), "s%u", s);
        t.o.prefix = pfx;
        t.o.shard_index = s;
        t.o.shard_count = 4;
        struct ccr_transfer_result r;
        struct ccr_err e;
        cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
        cr_assert_gt(r.files, 20); /* roughly a quarter each */
        total += r.files;
        ccr_transfer_result_fini(&r);
    }
    cr_assert_eq(total, 200);
    /* each file is in exactly the shard ccr_shard_of says */
    for (int i = 0; i < 200; i++) {
        snprintf(rel, sizeof(rel), "d%d/f%d", i % 7, i);
        unsigned want = ccr_shard_of(rel, 4);
        for (unsigned s = 0; s < 4; s++) {
            char name[96];
            snprintf(name, sizeof(name), "s%u/%s", s, rel);
            struct ccr_blob_props p;
            struct ccr_err e;
            cr_assert_eq(ccr_store_props(t.store, name, &p, &e) == 0, s == want, "%s", name);
        }
    }
    cr_assert_eq(ccr_shard_of("anything", 1), 0);
    /* FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c */
    cr_assert_eq(ccr_shard_of("a", 1000), (unsigned)(0xaf63dc4c8601ec8cull % 1000));
    struct ccr_transfer_result r;
    struct ccr_err e;
    t.o.shard_index = 4;
    cr_assert_eq(tt_publish(&t, &r, &e), -EINVAL);
    ccr_transfer_result_fini(&r);
    tt_teardown(&t);
}

Test(dataplane_transfer, resume_publish)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    for (int i = 0; i < 10; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "f%d", i);
        tt_write(&t, rel, (uint64_t)i * 50000, (unsigned)i);
    }
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 10);
    ccr_transfer_result_fini(&r);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 0);
    cr_assert_eq(r.resumed, 10);
    ccr_transfer_result_fini(&r);

    /* touch one: only it is redone */
    char *f3 = dp_path(t.src, "f3");
    struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000, .tv_nsec = 0}};
    cr_assert_eq(utimensat(AT_FDCWD, f3, ts, 0), 0);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.resumed, 9);
    ccr_transfer_result_fini(&r);

    /* a blob removed from the store is redone */
    cr_assert_eq(ccr_store_delete(t.store, "f5", &e), 0);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.resumed, 9);
    ccr_transfer_result_fini(&r);

    /* a torn journal line is ignored: append garbage to every journal file, still resumes */
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "for f in '%s'/*; do printf '123 45 3:ab' >> \"$f\"; done", t.journal) > 0);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.resumed, 10);
    ccr_transfer_result_fini(&r);

    /* no_journal publishes everything */
    t.o.no_journal = true;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 10);
    cr_assert_eq(r.resumed, 0);
    ccr_transfer_result_fini(&r);
    free(f3);
    tt_teardown(&t);
}

Test(dataplane_transfer, resume_download)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    tt_write(&t, "a", 3000000, 1);
    tt_write(&t, "d/b", 1000, 2);
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 2);
    ccr_transfer_result_fini(&r);
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 0);
    cr_assert_eq(r.resumed, 2);
    ccr_transfer_result_fini(&r);
    /* a leftover temporary file of an interrupted run is removed; a deleted file is redone */
    char *tmp = dp_path(out, "d/.b.ccr-tmp-abcdef");
    dp_write_file(tmp, 10, 1);
    char *b = dp_path(out, "d/b");
    cr_assert_eq(unlink(b), 0);
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.resumed, 1);
    ccr_transfer_result_fini(&r);
    cr_assert(!dp_exists(tmp));
    cr_assert(tt_same_tree(t.src, out));
    /* a re-published blob (new ETag) is downloaded again; without force an unknown file is refused */
    tt_write(&t, "a", 3000001, 5);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), -EEXIST);
    cr_assert_eq(r.errors, 1);
    cr_assert_str_eq(r.failed[0].path, "a");
    ccr_transfer_result_fini(&r);
    t.o.force = true;
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    ccr_transfer_result_fini(&r);
    cr_assert(tt_same_tree(t.src, out));
    free(tmp);
    free(b);
    free(out);
    tt_teardown(&t);
}

struct rewriter {
    const char *path;
    int delay_ms;
};

static void *rewrite_main(void *arg)
{
    struct rewriter *rw = arg;
    struct timespec ts = {.tv_sec = rw->delay_ms / 1000, .tv_nsec = (long)(rw->delay_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    int fd = open(rw->path, O_WRONLY);
    if (fd >= 0) {
        cr_assert_eq(pwrite(fd, "CHANGED", 7, 1000), 7);
        close(fd);
    }
    return NULL;
}

Test(dataplane_transfer, source_changed_during_publish, .timeout = 60)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    /* a slow store widens the window: every put_block takes 50 ms */
    setenv("CCR_STORE_FAULTS", "put_block:delay=50", 1);
    ccr_store_close(t.store);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t.url, &t.store, &e), 0, "%s", e.msg);
    unsetenv("CCR_STORE_FAULTS");
    tt_write(&t, "changing.bin", 40u << 20, 1); /* 10 units: >= 250 ms with 2 threads */
    tt_write(&t, "stable.bin", 1000, 2);
    char *path = dp_path(t.src, "changing.bin");
    struct rewriter rw = {.path = path, .delay_ms = 100};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, rewrite_main, &rw), 0);
    struct ccr_transfer_result r;
    int rc = tt_publish(&t, &r, &e);
    pthread_join(th, NULL);
    cr_assert_eq(rc, -EIO, "rc %d: %s", rc, e.msg);
    cr_assert_eq(r.errors, 1);
    cr_assert_eq(r.files, 1);
    cr_assert_str_eq(r.failed[0].path, path);
    cr_assert(strstr(r.failed[0].err.msg, "modified") || strstr(r.failed[0].err.msg, "changed"), "%s",
              r.failed[0].err.msg);
    ccr_transfer_result_fini(&r);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(t.store, "changing.bin", &p, &e), -ENOENT);
    cr_assert_eq(ccr_store_props(t.store, "stable.bin", &p, &e), 0);
    free(path);
    tt_teardown(&t);
}

static void tt_tamper(enum ccr_mode mode, uint64_t region)
{
    struct tt t;
    tt_setup(&t, mode, region);
    tt_write(&t, "good.bin", 300000, 1);
    tt_write(&t, "bad.bin", 300000, 2);
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    /* flip a byte inside region 2 of the stored blob */
    uint64_t off = mode == CCR_MODE_CCR1 ? 64 + 2 * (region + 16) + 10 : 2 * (region + 28) + 20;
    char *blob = NULL;
    cr_assert(asprintf(&blob, "%s/store/bad.bin", t.dir) > 0);
    dp_flip(blob, off, 0x40);
    cr_assert_eq(ccr_verify(t.store, &t.ds, &t.key, &t.o, &r, &e), -EBADMSG);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.errors, 1);
    cr_assert_str_eq(r.failed[0].path, "bad.bin");
    cr_assert_eq(r.failed[0].region, 2);
    cr_assert_str_eq(e.where, "bad.bin");
    cr_assert_eq(e.offset, (int64_t)(off - (mode == CCR_MODE_CCR1 ? 10 : 20)));
    ccr_transfer_result_fini(&r);
    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), -EBADMSG);
    cr_assert_eq(r.files, 1);
    cr_assert_str_eq(r.failed[0].path, "bad.bin");
    ccr_transfer_result_fini(&r);
    char *good = dp_path(out, "good.bin"), *sgood = dp_path(t.src, "good.bin");
    cr_assert(dp_same_file(good, sgood));
    cr_assert_eq(dp_count_entries(out, NULL), 1, "only good.bin: no partial or temporary file");
    free(good);
    free(sgood);
    free(out);
    free(blob);
    tt_teardown(&t);
}

Test(dataplane_transfer, tampered_blob_ccr1)
{
    tt_tamper(CCR_MODE_CCR1, 64 << 10);
}

Test(dataplane_transfer, tampered_blob_cse)
{
    tt_tamper(CCR_MODE_CSE, 64 << 10);
}

Test(dataplane_transfer, wrong_key)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    tt_write(&t, "a", 1000, 1);
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    struct ccr_key other = dp_key(99);
    cr_assert_eq(ccr_verify(t.store, &t.ds, &other, &t.o, &r, &e), -ENOKEY);
    cr_assert(strstr(e.msg, "wrong key"), "%s", e.msg);
    uint8_t id1[CCR_KEY_ID_LEN], id2[CCR_KEY_ID_LEN];
    char h1[33], h2[33];
    cr_assert_eq(ccr_key_id(&t.key, id1), 0);
    cr_assert_eq(ccr_key_id(&other, id2), 0);
    for (int i = 0; i < 16; i++) {
        snprintf(h1 + 2 * i, 3, "%02x", id1[i]);
        snprintf(h2 + 2 * i, 3, "%02x", id2[i]);
    }
    cr_assert(strstr(e.msg, h1) && strstr(e.msg, h2), "%s", e.msg);
    ccr_transfer_result_fini(&r);
    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, &other, out, &t.o, &r, &e), -ENOKEY);
    cr_assert_eq(dp_count_entries(out, NULL), 0);
    ccr_transfer_result_fini(&r);
    free(out);
    tt_teardown(&t);
}

Test(dataplane_transfer, memory_budget_too_small)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    tt_write(&t, "a", 1000, 1);
    t.o.threads = 4;
    t.o.memory = 8 << 20; /* 4 threads x 4 MiB units do not fit */
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), -EINVAL);
    cr_assert(strstr(e.msg, "memory"), "%s", e.msg);
    ccr_transfer_result_fini(&r);
    cr_assert_eq(ccr_verify(t.store, &t.ds, &t.key, &t.o, &r, &e), -EINVAL);
    ccr_transfer_result_fini(&r);
    /* with threads unset, the engine uses as many as fit */
    t.o.threads = 0;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    ccr_transfer_result_fini(&r);
    t.o.memory = 1 << 20; /* not even one unit */
    cr_assert_eq(tt_publish(&t, &r, &e), -EINVAL);
    ccr_transfer_result_fini(&r);
    tt_teardown(&t);
}

Test(dataplane_transfer, cancel_flag)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_CCR1, 0);
    tt_write(&t, "a", 10u << 20, 1);
    tt_write(&t, "b", 100, 2);
    atomic_int cancel;
    atomic_init(&cancel, 1);
    t.o.cancel = &cancel;
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), -ECANCELED);
    cr_assert_eq(r.files, 0);
    ccr_transfer_result_fini(&r);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(t.store, "a", &p, &e), -ENOENT);
    atomic_store(&cancel, 0);
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    ccr_transfer_result_fini(&r);
    atomic_store(&cancel, 1);
    char *out = dp_path(t.dir, "out");
    cr_assert_eq(ccr_download(t.store, &t.ds, &t.key, out, &t.o, &r, &e), -ECANCELED);
    cr_assert_leq(dp_count_entries(out, NULL), 0); /* nothing written (not even the directory) */
    ccr_transfer_result_fini(&r);
    free(out);
    tt_teardown(&t);
}

Test(dataplane_transfer, single_file_source_and_skips)
{
    struct tt t;
    tt_setup(&t, CCR_MODE_NONE, 0);
    tt_write(&t, "one.txt", 5, 1);
    char *one = dp_path(t.src, "one.txt"), *lnk = dp_path(t.src, "link"), *fifo = dp_path(t.src, "fifo");
    cr_assert_eq(symlink("one.txt", lnk), 0);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.skipped, 2);
    ccr_transfer_result_fini(&r);
    t.o.follow_symlinks = true;
    t.o.prefix = "f";
    cr_assert_eq(tt_publish(&t, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 2);
    cr_assert_eq(r.skipped, 1);
    ccr_transfer_result_fini(&r);
    t.o.prefix = "single";
    cr_assert_eq(ccr_publish(t.store, &t.ds, NULL, one, &t.o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 1);
    ccr_transfer_result_fini(&r);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(t.store, "single/one.txt", &p, &e), 0);
    cr_assert_eq(ccr_store_props(t.store, "f/link", &p, &e), 0);
    cr_assert_eq(p.size, 5);
    char *missing = dp_path(t.dir, "missing");
    cr_assert_eq(ccr_publish(t.store, &t.ds, NULL, missing, &t.o, &r, &e), -ENOENT);
    ccr_transfer_result_fini(&r);
    free(missing);
    free(one);
    free(lnk);
    free(fifo);
    tt_teardown(&t);
}
