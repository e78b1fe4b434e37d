/*
 * test_vwrite.c - the write side of a volume (ccr/volume.h) over the local store: streaming and staged
 * writes in every mode checked by downloading them with ccr_download, visibility before commit, injected
 * commit failures, truncate, unlink, rename, mkdir/rmdir, and commits at ccr_volume_close.
 */
#include <pthread.h>

#include "ccr/blob.h"
#include "ccr/transfer.h"
#include "ccr/volume.h"
#include "dp_helpers.h"

struct wt {
    char *dir, *src, *dst, *root, *url;
    struct ccr_store *store;
    struct ccr_datastore ds;
    struct ccr_key key;
    struct ccr_volume *v;
};

static void wt_setup(struct wt *t, enum ccr_mode mode, uint64_t region)
{
    memset(t, 0, sizeof(*t));
    t->dir =
        strdup(access("/dev/shm", W_OK) == 0 ? "/dev/shm/ccr-vw-test-XXXXXX" : "/tmp/ccr-vw-test-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    t->src = dp_path(t->dir, "src");
    t->dst = dp_path(t->dir, "dst");
    t->root = dp_path(t->dir, "store");
    cr_assert(asprintf(&t->url, "file://%s", t->root) > 0);
    cr_assert_eq(mkdir(t->src, 0755), 0);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t->url, &t->store, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_store_create_container(t->store, NULL, &e), 0, "%s", e.msg);
    t->ds = (struct ccr_datastore){.name = "t", .url = t->url, .mode = mode, .region_size = region};
    t->key = dp_key(9);
}

static const struct ccr_key *wt_key(struct wt *t)
{
    return t->ds.mode == CCR_MODE_NONE || t->ds.mode == CCR_MODE_CPK ? NULL : &t->key;
}

static void wt_open(struct wt *t, uint64_t memory)
{
    struct ccr_volume_opts o = {.memory = memory, .writable = true, .spill_dir = t->dir};
    struct ccr_err e;
    cr_assert_eq(ccr_volume_open(t->store, &t->ds, wt_key(t), &o, &t->v, &e), 0, "%s", e.msg);
}

static void wt_teardown(struct wt *t)
{
    struct ccr_err e;
    cr_assert_eq(ccr_volume_close(t->v, &e), 0, "%s: %s", e.where, e.msg);
    ccr_store_close(t->store);
    free(t->src);
    free(t->dst);
    free(t->root);
    free(t->url);
    dp_rmtree(t->dir);
}

static struct ccr_vfile *wt_create(struct wt *t, const char *path)
{
    struct ccr_vfile *f = NULL;
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_open(t->v, path, CCR_VOPEN_WRITE | CCR_VOPEN_CREATE | CCR_VOPEN_TRUNC, &f, &e), 0,
                 "%s: %s", e.where, e.msg);
    return f;
}

static void wt_write(struct ccr_vfile *f, const uint8_t *data, uint64_t off, size_t len)
{
    struct ccr_err e;
    ssize_t n = ccr_vfile_write(f, data + off, len, off, &e);
    cr_assert_eq(n, (ssize_t)len, "write at %llu: %zd %s", (unsigned long long)off, n, e.msg);
}

static uint8_t *gen(uint64_t size, unsigned seed)
{
    uint8_t *b = malloc(size ? size : 1);
    for (uint64_t i = 0; i < size; i++)
        b[i] = dp_byte(i, seed);
    return b;
}

/* Downloads everything and checks that dst/rel holds exactly data[0..size). */
static void wt_check_download(struct wt *t, const char *rel, const uint8_t *data, uint64_t size)
{
    struct ccr_transfer_opts o;
    ccr_transfer_opts_init(&o);
    o.threads = 2;
    o.memory = 64 << 20;
    o.no_journal = true;
    o.force = true;
    struct ccr_transfer_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_download(t->store, &t->ds, wt_key(t), t->dst, &o, &r, &e), 0, "%s: %s", e.where, e.msg);
    ccr_transfer_result_fini(&r);
    char *p = dp_path(t->dst, rel);
    FILE *fp = fopen(p, "rb");
    cr_assert_not_null(fp, "%s was not downloaded", rel);
    uint8_t *got = malloc(size + 1);
    size_t n = fread(got, 1, size + 1, fp);
    fclose(fp);
    cr_assert_eq(n, size, "%s: %zu bytes, want %llu", rel, n, (unsigned long long)size);
    cr_assert_eq(memcmp(got, data, size), 0, "%s differs", rel);
    free(got);
    free(p);
}

static int count_blobs(struct wt *t)
{
    struct ccr_blob_page page = {0};
    struct ccr_err e;
    cr_assert_eq(ccr_store_list(t->store, NULL, NULL, NULL, 0, &page, &e), 0, "%s", e.msg);
    int n = (int)page.count;
    ccr_blob_page_fini(&page);
    return n;
}

static const struct {
    enum ccr_mode mode;
    uint64_t region;
} modes[] = {
    {CCR_MODE_CCR1, 64 << 10}, {CCR_MODE_CCR1, 0}, {CCR_MODE_CSE, 64 << 10},
    {CCR_MODE_CSE, 1 << 20},   {CCR_MODE_NONE, 0}, {CCR_MODE_CPK, 0},
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ----------------------------------------------------------------------------------------------------- */

Test(dataplane_vwrite, sequential_write_every_mode, .timeout = 180)
{
    const uint64_t size = (45u << 20) + 4097; /* many units, streamed while writing */
    uint8_t *data = gen(size, 21);
    for (size_t m = 0; m < NMODES; m++) {
        struct wt t;
        wt_setup(&t, modes[m].mode, modes[m].region);
        wt_open(&t, 64 << 20);
        struct ccr_err e0;
        cr_assert_eq(ccr_volume_mkdir(t.v, "out", &e0), 0, "%s", e0.msg);
        struct ccr_vfile *f = wt_create(&t, "out/seq.bin");
        for (uint64_t off = 0; off < size; off += 100000)
            wt_write(f, data, off, size - off < 100000 ? (size_t)(size - off) : 100000);
        cr_assert_eq(ccr_vfile_size(f), size);
        struct ccr_volume_stats st;
        ccr_volume_get_stats(t.v, &st);
        cr_assert_gt(st.bytes_uploaded, 0, "mode %s: blocks go out while writing",
                     ccr_mode_name(modes[m].mode));
        cr_assert_eq(count_blobs(&t), 0, "nothing visible before the commit");
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        ccr_volume_get_stats(t.v, &st);
        cr_assert_eq(st.commits, 1);
        cr_assert_eq(st.bytes_written, size);
        cr_assert_leq(st.memory_peak, 64u << 20);
        cr_assert_eq(count_blobs(&t), 1);
        struct ccr_vstat vs;
        cr_assert_eq(ccr_volume_stat(t.v, "out/seq.bin", &vs, &e), 0, "%s", e.msg);
        cr_assert_eq(vs.size, size);
        wt_check_download(&t, "out/seq.bin", data, size);
        /* and the volume reads it back */
        f = NULL;
        cr_assert_eq(ccr_vfile_open(t.v, "out/seq.bin", CCR_VOPEN_READ, &f, &e), 0, "%s", e.msg);
        uint8_t buf[5000];
        cr_assert_eq(ccr_vfile_read(f, buf, sizeof(buf), size - 3000, &e), 3000);
        cr_assert_eq(memcmp(buf, data + size - 3000, 3000), 0);
        cr_assert_eq(ccr_vfile_close(f, NULL), 0);
        wt_teardown(&t);
    }
    free(data);
}

/* dd and shells create the file, close a dup'ed descriptor (a flush that commits the empty file), then
 * write sequentially: the writes must still stream, not be staged and encrypted twice at the end. */
Test(dataplane_vwrite, flush_of_empty_file_then_sequential_writes_stream, .timeout = 120)
{
    const uint64_t size = (24u << 20) + 777;
    uint8_t *data = gen(size, 33);
    for (size_t m = 0; m < NMODES; m++) {
        struct wt t;
        wt_setup(&t, modes[m].mode, modes[m].region);
        wt_open(&t, 64 << 20);
        struct ccr_vfile *f = wt_create(&t, "dd.bin");
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_flush(f, &e), 0, "%s", e.msg);
        struct ccr_volume_stats st0, st1;
        ccr_volume_get_stats(t.v, &st0);
        cr_assert_eq(st0.commits, 1, "the empty file is committed at the first flush");
        cr_assert_eq(count_blobs(&t), 1);
        for (uint64_t off = 0; off < size; off += 1 << 20)
            wt_write(f, data, off, size - off < (1 << 20) ? (size_t)(size - off) : 1 << 20);
        ccr_volume_get_stats(t.v, &st1);
        cr_assert_gt(st1.bytes_uploaded, st0.bytes_uploaded + (8u << 20),
                     "mode %s: blocks go out while writing after an empty commit (uploaded %llu)",
                     ccr_mode_name(modes[m].mode),
                     (unsigned long long)(st1.bytes_uploaded - st0.bytes_uploaded));
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        ccr_volume_get_stats(t.v, &st1);
        cr_assert_eq(st1.commits, 2);
        cr_assert_lt(st1.bytes_uploaded - st0.bytes_uploaded, size + size / 8, "mode %s: encrypted once",
                     ccr_mode_name(modes[m].mode));
        wt_check_download(&t, "dd.bin", data, size);
        wt_teardown(&t);
    }
    free(data);
}

Test(dataplane_vwrite, small_and_empty_files_every_mode, .timeout = 60)
{
    uint8_t *data = gen(70000, 2);
    for (size_t m = 0; m < NMODES; m++) {
        struct wt t;
        wt_setup(&t, modes[m].mode, modes[m].region);
        wt_open(&t, 64 << 20);
        struct ccr_vfile *f = wt_create(&t, "empty");
        cr_assert_eq(ccr_vfile_close(f, NULL), 0);
        f = wt_create(&t, "small");
        wt_write(f, data, 0, 70000);
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_flush(f, &e), 0, "%s", e.msg);
        cr_assert_eq(count_blobs(&t), 2);
        /* written on after a commit: staged from the committed blob, committed again */
        wt_write(f, data, 5, 10);
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        wt_check_download(&t, "empty", data, 0);
        wt_check_download(&t, "small", data, 70000);
        struct ccr_volume_stats st;
        ccr_volume_get_stats(t.v, &st);
        cr_assert_eq(st.commits, 3);
        wt_teardown(&t);
    }
    free(data);
}

Test(dataplane_vwrite, random_offset_writes_are_staged, .timeout = 180)
{
    const uint64_t size = (13u << 20) + 333, piece = 65536;
    uint8_t *data = gen(size, 5);
    uint64_t npieces = (size + piece - 1) / piece;
    uint64_t *order = malloc(npieces * sizeof(*order));
    for (uint64_t i = 0; i < npieces; i++)
        order[i] = i;
    uint64_t s = 42;
    for (uint64_t i = npieces - 1; i > 0; i--) {
        uint64_t j = rnd(&s) % (i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (size_t m = 0; m < NMODES; m++) {
        struct wt t;
        wt_setup(&t, modes[m].mode, modes[m].region);
        wt_open(&t, 16 << 20); /* staged memory is capped at a quarter: this one spills */
        struct ccr_vfile *f = wt_create(&t, "rnd.bin");
        for (uint64_t i = 0; i < npieces; i++) {
            uint64_t off = order[i] * piece;
            wt_write(f, data, off, size - off < piece ? (size_t)(size - off) : (size_t)piece);
        }
        /* reads of what is written come from the stage */
        uint8_t buf[1000];
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_read(f, buf, sizeof(buf), 1234567, &e), (ssize_t)sizeof(buf));
        cr_assert_eq(memcmp(buf, data + 1234567, sizeof(buf)), 0);
        cr_assert_eq(count_blobs(&t), 0);
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        wt_check_download(&t, "rnd.bin", data, size);
        struct ccr_volume_stats st;
        ccr_volume_get_stats(t.v, &st);
        cr_assert_leq(st.memory_peak, 16u << 20);
        wt_teardown(&t);
    }
    free(order);
    free(data);
}

Test(dataplane_vwrite, overwrite_existing_file_without_trunc, .timeout = 60)
{
    const uint64_t size = 9u << 20;
    uint8_t *data = gen(size, 7);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    wt_open(&t, 64 << 20);
    struct ccr_vfile *f = wt_create(&t, "x.bin");
    wt_write(f, data, 0, (size_t)size);
    cr_assert_eq(ccr_vfile_close(f, NULL), 0);
    /* open for writing without O_TRUNC: patch the middle, append a tail */
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_open(t.v, "x.bin", CCR_VOPEN_WRITE, &f, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_vfile_size(f), size);
    uint8_t *want = malloc(size + 100);
    memcpy(want, data, size);
    memset(want + 5000000, 0xAB, 3000);
    memset(want + size, 0xCD, 100);
    wt_write(f, want, 5000000, 3000);
    wt_write(f, want, size, 100);
    cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
    wt_check_download(&t, "x.bin", want, size + 100);
    /* an open that changes nothing commits nothing */
    struct ccr_volume_stats st0, st1;
    ccr_volume_get_stats(t.v, &st0);
    cr_assert_eq(ccr_vfile_open(t.v, "x.bin", CCR_VOPEN_WRITE, &f, &e), 0);
    uint8_t b[10];
    cr_assert_eq(ccr_vfile_read(f, b, sizeof(b), 5000000, &e), 10);
    cr_assert_eq(b[0], 0xAB);
    cr_assert_eq(ccr_vfile_close(f, &e), 0);
    ccr_volume_get_stats(t.v, &st1);
    cr_assert_eq(st1.commits, st0.commits);
    free(want);
    free(data);
    wt_teardown(&t);
}

Test(dataplane_vwrite, patch_within_held_units_while_streaming, .timeout = 60)
{
    const uint64_t size = 60u << 20;
    uint8_t *data = gen(size, 8);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 0);
    wt_open(&t, 512u << 20);
    struct ccr_vfile *f = wt_create(&t, "zip.bin");
    wt_write(f, data, 0, (size_t)(size - (2 << 20)));
    /* a zip writer goes back to patch a header written 1 MiB earlier */
    memset(data + size - (3 << 20), 0x5A, 30);
    wt_write(f, data, size - (3 << 20), 30);
    wt_write(f, data, size - (2 << 20), 2 << 20);
    /* going back into data already uploaded fails rather than losing the write */
    struct ccr_err e;
    cr_assert_eq(ccr_vfile_write(f, data, 10, 0, &e), -EIO);
    cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
    wt_check_download(&t, "zip.bin", data, size);
    free(data);
    wt_teardown(&t);
}

Test(dataplane_vwrite, commit_failure_makes_flush_fail, .timeout = 60)
{
    const uint64_t size = 20u << 20;
    uint8_t *data = gen(size, 9);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 0);
    /* the same directory through a fault-injecting store */
    ccr_store_close(t.store);
    setenv("CCR_STORE_FAULTS", "commit:fail=EIO:1,put_blob:fail=ENOSPC:1", 1);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t.url, &t.store, &e), 0, "%s", e.msg);
    unsetenv("CCR_STORE_FAULTS");
    wt_open(&t, 64 << 20);
    struct ccr_vfile *f = wt_create(&t, "big");
    wt_write(f, data, 0, (size_t)size);
    cr_assert_eq(ccr_vfile_flush(f, &e), -EIO);
    cr_assert_neq(strstr(e.msg, "injected"), NULL, "%s", e.msg);
    cr_assert_eq(count_blobs(&t), 0);
    /* the file stays uncommitted; flushing again commits it */
    cr_assert_eq(ccr_vfile_flush(f, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_vfile_close(f, &e), 0);

    struct ccr_vfile *g = wt_create(&t, "small");
    wt_write(g, data, 0, 1000);
    cr_assert_eq(ccr_vfile_close(g, &e), -ENOSPC);
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_eq(st.commit_failures, 2);
    cr_assert_eq(st.commits, 1);
    struct ccr_vstat vs;
    cr_assert_eq(ccr_volume_stat(t.v, "small", &vs, &e), -ENOENT); /* never committed: gone */
    wt_check_download(&t, "big", data, size);
    free(data);
    wt_teardown(&t);
}

Test(dataplane_vwrite, upload_failure_reported_by_close, .timeout = 60)
{
    const uint64_t size = 40u << 20;
    uint8_t *data = gen(size, 10);
    struct wt t;
    wt_setup(&t, CCR_MODE_CSE, 1 << 20);
    ccr_store_close(t.store);
    setenv("CCR_STORE_FAULTS", "put_block:fail=EIO", 1);
    struct ccr_err e;
    cr_assert_eq(ccr_store_open(t.url, &t.store, &e), 0, "%s", e.msg);
    unsetenv("CCR_STORE_FAULTS");
    wt_open(&t, 64 << 20);
    struct ccr_vfile *f = wt_create(&t, "f");
    int rc = 0;
    for (uint64_t off = 0; off < size && rc == 0; off += 1 << 20) {
        ssize_t n = ccr_vfile_write(f, data + off, 1 << 20, off, &e);
        rc = n < 0 ? (int)n : 0;
    }
    cr_assert_eq(rc, -EIO, "writes report the failed upload: %d", rc);
    rc = ccr_vfile_close(f, &e);
    cr_assert_eq(rc, -EIO, "%d %s", rc, e.msg);
    cr_assert_eq(count_blobs(&t), 0);
    free(data);
    wt_teardown(&t);
}

Test(dataplane_vwrite, truncate_shrinks_and_extends, .timeout = 60)
{
    const uint64_t size = 10u << 20;
    uint8_t *data = gen(size, 11);
    for (size_t m = 0; m < NMODES; m += 2) {
        struct wt t;
        wt_setup(&t, modes[m].mode, modes[m].region);
        wt_open(&t, 64 << 20);
        struct ccr_vfile *f = wt_create(&t, "a");
        wt_write(f, data, 0, (size_t)size);
        struct ccr_err e;
        cr_assert_eq(ccr_vfile_truncate(f, size - 100, &e), 0, "%s", e.msg);
        cr_assert_eq(ccr_vfile_size(f), size - 100);
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        wt_check_download(&t, "a", data, size - 100);
        /* shrink a committed file, then extend it with zeros */
        cr_assert_eq(ccr_vfile_open(t.v, "a", CCR_VOPEN_WRITE, &f, &e), 0);
        cr_assert_eq(ccr_vfile_truncate(f, 1000, &e), 0, "%s", e.msg);
        cr_assert_eq(ccr_vfile_truncate(f, 3000, &e), 0, "%s", e.msg);
        cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
        uint8_t want[3000];
        memcpy(want, data, 1000);
        memset(want + 1000, 0, 2000);
        wt_check_download(&t, "a", want, 3000);
        /* O_TRUNC of an existing file */
        f = wt_create(&t, "a");
        cr_assert_eq(ccr_vfile_size(f), 0);
        cr_assert_eq(ccr_vfile_close(f, &e), 0);
        wt_check_download(&t, "a", want, 0);
        wt_teardown(&t);
    }
    free(data);
}

Test(dataplane_vwrite, unlink_rename_mkdir_rmdir, .timeout = 60)
{
    uint8_t *data = gen(6u << 20, 12);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 64 << 10);
    wt_open(&t, 64 << 20);
    struct ccr_err e;
    struct ccr_vstat st;
    cr_assert_eq(ccr_volume_mkdir(t.v, "d", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_mkdir(t.v, "d", &e), -EEXIST);
    cr_assert_eq(ccr_volume_mkdir(t.v, "x/y", &e), -ENOENT);
    cr_assert_eq(ccr_volume_stat(t.v, "d", &st, &e), 0);
    cr_assert(st.is_dir);
    cr_assert_eq(count_blobs(&t), 0); /* directories are not blobs */
    cr_assert_eq(ccr_volume_mkdir(t.v, "d/e", &e), 0);

    struct ccr_vfile *f = wt_create(&t, "d/e/one");
    wt_write(f, data, 0, 6u << 20);
    cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_rmdir(t.v, "d", &e), -ENOTEMPTY);
    cr_assert_eq(ccr_volume_rmdir(t.v, "d/e/one", &e), -ENOTDIR);
    cr_assert_eq(ccr_volume_unlink(t.v, "d", &e), -EISDIR);

    /* rename a committed file: copied as stored, the old blob deleted */
    cr_assert_eq(ccr_volume_rename(t.v, "d/e/one", "d/two", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_stat(t.v, "d/e/one", &st, &e), -ENOENT);
    cr_assert_eq(ccr_volume_stat(t.v, "d/two", &st, &e), 0);
    cr_assert_eq(st.size, 6u << 20);
    cr_assert_eq(count_blobs(&t), 1);
    wt_check_download(&t, "d/two", data, 6u << 20);
    cr_assert_eq(ccr_volume_rename(t.v, "d", "z", &e), -EXDEV);
    cr_assert_eq(ccr_volume_rename(t.v, "nope", "z", &e), -ENOENT);

    /* rename a file open for writing, not committed yet: committed under the new name */
    f = wt_create(&t, "d/tmp");
    wt_write(f, data, 0, 1000);
    cr_assert_eq(ccr_volume_rename(t.v, "d/tmp", "d/two", &e), 0, "%s", e.msg); /* replaces d/two */
    cr_assert_eq(ccr_volume_stat(t.v, "d/tmp", &st, &e), -ENOENT);
    cr_assert_eq(ccr_volume_stat(t.v, "d/two", &st, &e), 0);
    cr_assert_eq(st.size, 1000);
    wt_write(f, data, 1000, 500);
    cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
    wt_check_download(&t, "d/two", data, 1500);

    /* unlink: committed and uncommitted */
    cr_assert_eq(ccr_volume_unlink(t.v, "d/two", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_stat(t.v, "d/two", &st, &e), -ENOENT);
    cr_assert_eq(count_blobs(&t), 0);
    f = wt_create(&t, "d/e/gone");
    wt_write(f, data, 0, 100);
    cr_assert_eq(ccr_volume_unlink(t.v, "d/e/gone", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_vfile_close(f, &e), 0, "%s", e.msg);
    cr_assert_eq(count_blobs(&t), 0, "an unlinked file is never committed");
    cr_assert_eq(ccr_volume_unlink(t.v, "d/e/gone", &e), -ENOENT);

    /* the emptied directories are still there until rmdir */
    cr_assert_eq(ccr_volume_stat(t.v, "d/e", &st, &e), 0);
    cr_assert_eq(ccr_volume_rmdir(t.v, "d/e", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_rmdir(t.v, "d", &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_volume_stat(t.v, "d", &st, &e), -ENOENT);
    cr_assert_eq(ccr_volume_rmdir(t.v, "d", &e), -ENOENT);
    free(data);
    wt_teardown(&t);
}

Test(dataplane_vwrite, create_exclusive_and_errors, .timeout = 30)
{
    struct wt t;
    wt_setup(&t, CCR_MODE_NONE, 0);
    wt_open(&t, 16 << 20);
    cr_assert(ccr_volume_writable(t.v));
    struct ccr_err e;
    struct ccr_vfile *f = wt_create(&t, "a");
    cr_assert_eq(ccr_vfile_close(f, &e), 0);
    cr_assert_eq(ccr_vfile_open(t.v, "a", CCR_VOPEN_WRITE | CCR_VOPEN_CREATE | CCR_VOPEN_EXCL, &f, &e),
                 -EEXIST);
    cr_assert_eq(ccr_vfile_open(t.v, "b", CCR_VOPEN_WRITE, &f, &e), -ENOENT);
    cr_assert_eq(ccr_vfile_open(t.v, "no/b", CCR_VOPEN_WRITE | CCR_VOPEN_CREATE, &f, &e), -ENOENT);
    cr_assert_eq(ccr_vfile_open(t.v, "a/b", CCR_VOPEN_WRITE | CCR_VOPEN_CREATE, &f, &e), -ENOTDIR);
    cr_assert_eq(ccr_vfile_open(t.v, "", CCR_VOPEN_READ, &f, &e), -EISDIR);
    cr_assert_eq(ccr_vfile_open(t.v, "a", CCR_VOPEN_READ, &f, &e), 0);
    cr_assert_eq(ccr_vfile_write(f, "x", 1, 0, &e), -EBADF);
    cr_assert_eq(ccr_vfile_close(f, &e), 0);
    wt_teardown(&t);
}

Test(dataplane_vwrite, volume_close_commits_open_writers, .timeout = 60)
{
    const uint64_t size = 12u << 20;
    uint8_t *data = gen(size, 13);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 0);
    wt_open(&t, 64 << 20);
    struct ccr_vfile *f = wt_create(&t, "streamed");
    wt_write(f, data, 0, (size_t)size);
    struct ccr_vfile *g = wt_create(&t, "staged");
    wt_write(g, data, 500, 1000);
    wt_write(g, data, 0, 500);
    cr_assert_eq(count_blobs(&t), 0);
    struct ccr_err e;
    cr_assert_eq(ccr_volume_close(t.v, &e), 0, "%s", e.msg); /* f and g still open: the unmount path */
    wt_open(&t, 64 << 20);
    wt_check_download(&t, "streamed", data, size);
    wt_check_download(&t, "staged", data, 1500);
    free(data);
    wt_teardown(&t);
}

struct wthread {
    struct wt *t;
    int id;
    const uint8_t *data;
    uint64_t size;
    int rc;
};

static void *writer_main(void *p)
{
    struct wthread *a = p;
    char name[32];
    snprintf(name, sizeof(name), "w%d", a->id);
    struct ccr_vfile *f = NULL;
    a->rc = ccr_vfile_open(a->t->v, name, CCR_VOPEN_WRITE | CCR_VOPEN_CREATE | CCR_VOPEN_TRUNC, &f, NULL);
    for (uint64_t off = 0; off < a->size && a->rc == 0; off += 1 << 20) {
        ssize_t n = ccr_vfile_write(f, a->data + off, 1 << 20, off, NULL);
        a->rc = n == (1 << 20) ? 0 : (int)n;
    }
    if (f && ccr_vfile_close(f, NULL) != 0 && a->rc == 0)
        a->rc = -EIO;
    return NULL;
}

Test(dataplane_vwrite, many_writers_share_a_small_budget, .timeout = 120)
{
    const uint64_t size = 24u << 20;
    uint8_t *data = gen(size, 14);
    struct wt t;
    wt_setup(&t, CCR_MODE_CCR1, 0);
    wt_open(&t, 24 << 20);
    pthread_t th[6];
    struct wthread a[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (struct wthread){.t = &t, .id = i, .data = data, .size = size};
        cr_assert_eq(pthread_create(&th[i], NULL, writer_main, &a[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].rc, 0, "writer %d: %d", i, a[i].rc);
    }
    struct ccr_volume_stats st;
    ccr_volume_get_stats(t.v, &st);
    cr_assert_leq(st.memory_peak, 24u << 20);
    cr_assert_eq(st.commits, 6);
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w%d", i);
        wt_check_download(&t, name, data, size);
    }
    free(data);
    wt_teardown(&t);
}
