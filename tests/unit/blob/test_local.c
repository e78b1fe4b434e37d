/*
 * test_local.c - the local store: staging and commits, whole puts, ranged gets, ETags, props, delete,
 * listing (paging, prefixes, delimiters, markers), name clashes and concurrency.
 */
#include <pthread.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <time.h>

#include "blob_helpers.h"

static uint8_t pat(uint64_t i, unsigned seed)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull + seed * 0xD1B54A32D192ED03ull;
    x ^= x >> 29;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

static void fill(uint8_t *b, size_t n, uint64_t off, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = pat(off + i, seed);
}

/* Reads the whole blob (size from props) into a malloc'd buffer. */
static uint8_t *get_all(struct ccr_store *s, const char *blob, size_t *out_len)
{
    struct ccr_blob_props p;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_props(s, blob, &p, &e), 0, "props %s: %s", blob, e.msg);
    uint8_t *b = malloc(p.size + 1);
    cr_assert_not_null(b);
    ssize_t n = ccr_store_get(s, blob, 0, b, p.size + 1, NULL, &e);
    cr_assert_eq(n, (ssize_t)p.size, "get %s: %zd (%s)", blob, n, e.msg);
    *out_len = p.size;
    return b;
}

struct fixture {
    char *dir;
    char *root;
    struct ccr_store *s;
};

static struct fixture setup(void)
{
    struct fixture f;
    f.dir = bt_mkdtemp();
    f.root = bt_path(f.dir, "c");
    f.s = bt_store(f.dir);
    return f;
}

static void teardown(struct fixture *f)
{
    ccr_store_close(f->s);
    free(f->root);
    bt_rmtree(f->dir);
}

/* .ccr/tmp holds nothing once calls have returned. */
static void expect_no_temporaries(const struct fixture *f)
{
    char *t = bt_path(f->root, ".ccr/tmp");
    cr_expect_eq(bt_count_entries(t), 0, "temporaries left in %s", t);
    free(t);
}

Test(blob_local, put_block_out_of_order_then_commit)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    const size_t sizes[] = {1000, 65536, 1, 0, 300000};
    const size_t nb = sizeof(sizes) / sizeof(sizes[0]);
    size_t total = 0, off[5];
    for (size_t i = 0; i < nb; i++) {
        off[i] = total;
        total += sizes[i];
    }
    uint8_t *want = malloc(total);
    fill(want, total, 0, 7);
    const size_t order[] = {4, 2, 0, 3, 1};
    for (size_t k = 0; k < nb; k++) {
        size_t i = order[k];
        cr_assert_eq(ccr_store_put_block(f.s, "dir/sub/file.bin", i, want + off[i], sizes[i], &e), 0, "%s",
                     e.msg);
    }
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_commit_blocks(f.s, "dir/sub/file.bin", nb, &p, &e), 0, "%s", e.msg);
    cr_expect_eq(p.size, total);
    cr_expect(p.etag[0] == '"' && p.etag[strlen(p.etag) - 1] == '"', "etag %s", p.etag);
    size_t got_len = 0;
    uint8_t *got = get_all(f.s, "dir/sub/file.bin", &got_len);
    cr_assert_eq(got_len, total);
    cr_expect_eq(memcmp(got, want, total), 0);
    /* the committed blob is the plain file the contract describes */
    char *path = bt_path(f.root, "dir/sub/file.bin");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq((size_t)st.st_size, total);
    /* staged blocks are gone */
    char *blocks = bt_path(f.root, ".ccr/blocks");
    cr_expect_eq(bt_count_entries(blocks), 0);
    expect_no_temporaries(&f);
    free(blocks);
    free(path);
    free(got);
    free(want);
    teardown(&f);
}

Test(blob_local, commit_with_missing_index_fails_and_shows_nothing)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block(f.s, "m", 0, "aaaa", 4, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "m", 2, "cccc", 4, &e), 0);
    cr_expect_eq(ccr_store_commit_blocks(f.s, "m", 3, NULL, &e), -EINVAL);
    cr_expect_eq(e.code, -EINVAL);
    cr_expect_str_eq(e.where, "m");
    cr_expect_not_null(strstr(e.msg, "block 1 was never staged"), "%s", e.msg);
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_props(f.s, "m", &p, &e), -ENOENT);
    struct ccr_blob_page page = {0};
    cr_assert_eq(ccr_store_list(f.s, NULL, NULL, NULL, 0, &page, &e), 0);
    cr_expect_eq(page.count, 0);
    ccr_blob_page_fini(&page);
    /* the staged blocks survive the failed commit: stage the missing one and commit */
    cr_assert_eq(ccr_store_put_block(f.s, "m", 1, "bbbb", 4, &e), 0);
    cr_assert_eq(ccr_store_commit_blocks(f.s, "m", 3, NULL, &e), 0, "%s", e.msg);
    char buf[16];
    cr_expect_eq(ccr_store_get(f.s, "m", 0, buf, sizeof(buf), NULL, &e), 12);
    cr_expect_eq(memcmp(buf, "aaaabbbbcccc", 12), 0);
    expect_no_temporaries(&f);
    teardown(&f);
}

Test(blob_local, restaging_replaces_and_extra_blocks_are_discarded)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block(f.s, "r", 0, "old-0", 5, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "r", 1, "old-1", 5, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "r", 5, "extra", 5, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "r", 1, "NEW", 3, &e), 0);
    cr_assert_eq(ccr_store_commit_blocks(f.s, "r", 2, NULL, &e), 0, "%s", e.msg);
    char buf[16];
    cr_assert_eq(ccr_store_get(f.s, "r", 0, buf, sizeof(buf), NULL, &e), 8);
    cr_expect_eq(memcmp(buf, "old-0NEW", 8), 0);
    /* every staged block of the blob was discarded by the commit, including index 5 */
    cr_expect_eq(ccr_store_commit_blocks(f.s, "r", 1, NULL, &e), -EINVAL);
    teardown(&f);
}

Test(blob_local, single_block_and_zero_block_commits)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block(f.s, "one", 0, "hello", 5, &e), 0);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_commit_blocks(f.s, "one", 1, &p, &e), 0, "%s", e.msg);
    cr_expect_eq(p.size, 5);
    char buf[8];
    cr_expect_eq(ccr_store_get(f.s, "one", 0, buf, 8, NULL, &e), 5);
    cr_expect_eq(memcmp(buf, "hello", 5), 0);

    cr_assert_eq(ccr_store_commit_blocks(f.s, "empty/blob", 0, &p, &e), 0, "%s", e.msg);
    cr_expect_eq(p.size, 0);
    cr_expect_eq(ccr_store_get(f.s, "empty/blob", 0, buf, 8, NULL, &e), 0);
    /* a zero-block commit replaces existing content */
    cr_assert_eq(ccr_store_commit_blocks(f.s, "one", 0, &p, &e), 0);
    cr_expect_eq(ccr_store_props(f.s, "one", &p, &e), 0);
    cr_expect_eq(p.size, 0);
    expect_no_temporaries(&f);
    teardown(&f);
}

Test(blob_local, put_blob_and_ranged_gets)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    const size_t n = 100000;
    uint8_t *want = malloc(n), *buf = malloc(n + 100);
    fill(want, n, 0, 3);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_put_blob(f.s, "x/y.bin", want, n, &p, &e), 0, "%s", e.msg);
    cr_expect_eq(p.size, n);
    cr_expect_gt(p.mtime_ns, 0);
    /* start, middle, end */
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", 0, buf, 100, NULL, &e), 100);
    cr_expect_eq(memcmp(buf, want, 100), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", 4321, buf, 5000, NULL, &e), 5000);
    cr_expect_eq(memcmp(buf, want + 4321, 5000), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", n - 10, buf, 10, NULL, &e), 10);
    cr_expect_eq(memcmp(buf, want + n - 10, 10), 0);
    /* short read at the end, nothing at or past it */
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", n - 10, buf, 100, NULL, &e), 10);
    cr_expect_eq(memcmp(buf, want + n - 10, 10), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", n, buf, 100, NULL, &e), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", n + 12345, buf, 100, NULL, &e), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", 0, buf, 0, NULL, &e), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", 0, buf, n + 100, NULL, &e), (ssize_t)n);
    cr_expect_eq(memcmp(buf, want, n), 0);
    /* missing blob; a directory is not a blob */
    cr_expect_eq(ccr_store_get(f.s, "x/nope", 0, buf, 10, NULL, &e), -ENOENT);
    cr_expect_str_eq(e.where, "x/nope");
    cr_expect_eq(ccr_store_get(f.s, "x", 0, buf, 10, NULL, &e), -ENOENT);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin/z", 0, buf, 10, NULL, &e), -ENOENT);
    /* put_blob replaces */
    cr_assert_eq(ccr_store_put_blob(f.s, "x/y.bin", "tiny", 4, &p, &e), 0);
    cr_expect_eq(ccr_store_get(f.s, "x/y.bin", 0, buf, 100, NULL, &e), 4);
    cr_assert_eq(ccr_store_put_blob(f.s, "zero", NULL, 0, &p, &e), 0, "%s", e.msg);
    cr_expect_eq(p.size, 0);
    expect_no_temporaries(&f);
    free(want);
    free(buf);
    teardown(&f);
}

Test(blob_local, etag_changes_on_every_commit_and_if_match)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    char seen[20][CCR_ETAG_MAX];
    for (int i = 0; i < 20; i++) {
        struct ccr_blob_props p, q;
        /* same content and size every time: only the commit itself distinguishes them */
        if (i % 2) {
            cr_assert_eq(ccr_store_put_blob(f.s, "e", "same", 4, &p, &e), 0);
        } else {
            cr_assert_eq(ccr_store_put_block(f.s, "e", 0, "sa", 2, &e), 0);
            cr_assert_eq(ccr_store_put_block(f.s, "e", 1, "me", 2, &e), 0);
            cr_assert_eq(ccr_store_commit_blocks(f.s, "e", 2, &p, &e), 0);
        }
        cr_assert_eq(ccr_store_props(f.s, "e", &q, &e), 0);
        cr_expect_str_eq(p.etag, q.etag, "commit props and props disagree");
        cr_expect_eq(p.mtime_ns, q.mtime_ns);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(seen[j], p.etag, "etag of commit %d repeats commit %d", i, j);
        strcpy(seen[i], p.etag);
    }
    char buf[8];
    cr_expect_eq(ccr_store_get(f.s, "e", 0, buf, 8, seen[19], &e), 4);
    cr_expect_eq(ccr_store_get(f.s, "e", 0, buf, 8, seen[18], &e), -ESTALE);
    cr_expect_eq(e.code, -ESTALE);
    cr_expect_str_eq(e.where, "e");
    cr_expect_eq(ccr_store_get(f.s, "e", 0, buf, 8, "\"bogus\"", &e), -ESTALE);
    teardown(&f);
}

Test(blob_local, props_and_delete)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_blob(f.s, "p/q/r/s.txt", "12345", 5, NULL, &e), 0);
    cr_assert_eq(ccr_store_put_blob(f.s, "p/keep", "1", 1, NULL, &e), 0);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(f.s, "p/q/r/s.txt", &p, &e), 0);
    cr_expect_eq(p.size, 5);
    cr_expect_eq(ccr_store_props(f.s, "p/q", &p, &e), -ENOENT, "a directory is not a blob");
    cr_assert_eq(ccr_store_delete(f.s, "p/q/r/s.txt", &e), 0, "%s", e.msg);
    cr_expect_eq(ccr_store_props(f.s, "p/q/r/s.txt", &p, &e), -ENOENT);
    cr_expect_eq(ccr_store_delete(f.s, "p/q/r/s.txt", &e), -ENOENT);
    cr_expect_str_eq(e.where, "p/q/r/s.txt");
    cr_expect_eq(ccr_store_delete(f.s, "p", &e), -ENOENT);
    /* empty parents pruned, non-empty ones and the container kept */
    char *q = bt_path(f.root, "p/q");
    char *pp = bt_path(f.root, "p");
    cr_expect_neq(access(q, F_OK), 0);
    cr_expect_eq(access(pp, F_OK), 0);
    cr_assert_eq(ccr_store_delete(f.s, "p/keep", &e), 0);
    cr_expect_neq(access(pp, F_OK), 0);
    cr_expect_eq(access(f.root, F_OK), 0);
    /* delete drops staged blocks too */
    cr_assert_eq(ccr_store_put_blob(f.s, "d", "1", 1, NULL, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "d", 0, "zz", 2, &e), 0);
    cr_assert_eq(ccr_store_delete(f.s, "d", &e), 0);
    cr_expect_eq(ccr_store_commit_blocks(f.s, "d", 1, NULL, &e), -EINVAL);
    free(q);
    free(pp);
    teardown(&f);
}

Test(blob_local, staged_blocks_are_invisible_before_commit)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_blob(f.s, "v", "committed", 9, NULL, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "v", 0, "staged-new-content", 18, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "w/new", 0, "x", 1, &e), 0);
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_props(f.s, "w/new", &p, &e), -ENOENT);
    char buf[32];
    cr_expect_eq(ccr_store_get(f.s, "w/new", 0, buf, 32, NULL, &e), -ENOENT);
    cr_expect_eq(ccr_store_get(f.s, "v", 0, buf, 32, NULL, &e), 9);
    cr_expect_eq(memcmp(buf, "committed", 9), 0);
    cr_assert_eq(ccr_store_props(f.s, "v", &p, &e), 0);
    cr_expect_eq(p.size, 9);
    struct ccr_blob_page page = {0};
    cr_assert_eq(ccr_store_list(f.s, NULL, NULL, NULL, 0, &page, &e), 0);
    cr_assert_eq(page.count, 1);
    cr_expect_str_eq(page.items[0].name, "v");
    cr_expect_null(page.next_marker);
    ccr_blob_page_fini(&page);
    teardown(&f);
}

Test(blob_local, name_clashes_are_refused_clearly)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_blob(f.s, "a", "file", 4, NULL, &e), 0);
    cr_expect_eq(ccr_store_put_blob(f.s, "a/b", "x", 1, NULL, &e), -ENOTDIR);
    cr_expect_not_null(strstr(e.msg, "local store"), "%s", e.msg);
    cr_assert_eq(ccr_store_put_block(f.s, "a/b/c", 0, "x", 1, &e), 0);
    cr_expect_eq(ccr_store_commit_blocks(f.s, "a/b/c", 1, NULL, &e), -ENOTDIR);
    cr_assert_eq(ccr_store_put_blob(f.s, "d/e", "x", 1, NULL, &e), 0);
    cr_expect_eq(ccr_store_put_blob(f.s, "d", "x", 1, NULL, &e), -EEXIST);
    cr_expect_not_null(strstr(e.msg, "directory of that name"), "%s", e.msg);
    /* nothing changed */
    char buf[8];
    cr_expect_eq(ccr_store_get(f.s, "a", 0, buf, 8, NULL, &e), 4);
    cr_expect_eq(ccr_store_get(f.s, "d/e", 0, buf, 8, NULL, &e), 1);
    expect_no_temporaries(&f);
    teardown(&f);
}

/* ---- listing ---------------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(blob_local, list_12000_blobs_in_pages_of_5000, .timeout = 60)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    enum { N = 12000 };
    char **names = calloc(N, sizeof(char *));
    for (int i = 0; i < N; i++) {
        /* a mix of depths and names whose byte order differs from a naive directory walk */
        if (i % 3 == 0)
            cr_assert(asprintf(&names[i], "d%02d/f%05d", i % 17, i) > 0);
        else if (i % 3 == 1)
            cr_assert(asprintf(&names[i], "d%02d-x/g%05d", i % 5, i) > 0);
        else
            cr_assert(asprintf(&names[i], "top%05d", i) > 0);
        cr_assert_eq(ccr_store_put_blob(f.s, names[i], names[i], strlen(names[i]), NULL, &e), 0, "%s", e.msg);
    }
    qsort(names, N, sizeof(char *), cmp_str);
    size_t total = 0;
    int pages = 0;
    char *marker = NULL;
    for (;;) {
        struct ccr_blob_page page = {0};
        cr_assert_eq(ccr_store_list(f.s, NULL, NULL, marker, 5000, &page, &e), 0, "%s", e.msg);
        pages++;
        cr_assert_leq(page.count, 5000);
        for (size_t i = 0; i < page.count; i++) {
            cr_assert_lt(total + i, N);
            cr_assert_str_eq(page.items[i].name, names[total + i], "item %zu", total + i);
            cr_assert_not(page.items[i].is_prefix);
            cr_assert_eq(page.items[i].props.size, strlen(names[total + i]));
            cr_assert_neq(page.items[i].props.etag[0], '\0');
        }
        total += page.count;
        free(marker);
        marker = page.next_marker ? strdup(page.next_marker) : NULL;
        if (page.next_marker)
            cr_assert_str_eq(page.next_marker, page.items[page.count - 1].name);
        ccr_blob_page_fini(&page);
        if (!marker)
            break;
        cr_assert_lt(pages, 10);
    }
    cr_expect_eq(pages, 3);
    cr_expect_eq(total, N);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
    teardown(&f);
}

/* Lists everything (page size max) and returns the names joined by spaces ('+' marks prefixes). */
static char *list_joined(struct ccr_store *s, const char *prefix, const char *delim, const char *marker,
                         size_t max, int *out_pages)
{
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    char *m = marker ? strdup(marker) : NULL;
    int pages = 0;
    struct ccr_err e;
    ccr_err_clear(&e);
    do {
        struct ccr_blob_page page = {0};
        cr_assert_eq(ccr_store_list(s, prefix, delim, m, max, &page, &e), 0, "%s", e.msg);
        pages++;
        for (size_t i = 0; i < page.count; i++) {
            size_t need = strlen(page.items[i].name) + 3;
            cr_assert_lt(len + need, cap);
            len += (size_t)sprintf(out + len, "%s%s%s", len ? " " : "", page.items[i].is_prefix ? "+" : "",
                                   page.items[i].name);
        }
        free(m);
        m = page.next_marker ? strdup(page.next_marker) : NULL;
        ccr_blob_page_fini(&page);
        cr_assert_lt(pages, 100);
    } while (m);
    if (out_pages)
        *out_pages = pages;
    return out;
}

Test(blob_local, list_prefix_delimiter_marker)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    static const char *const names[] = {"a-c", "a/b", "a/c/d", "a/c/e", "ab", "b/x/y/z", "b/y", "c", "ca/1"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert_eq(ccr_store_put_blob(f.s, names[i], "x", 1, NULL, &e), 0);
    /* an empty directory is not a blob and rolls up to nothing */
    char *empty = bt_path(f.root, "zz-empty/deeper");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "mkdir -p '%s'", empty) > 0);
    cr_assert_eq(system(cmd), 0);

    char *all = list_joined(f.s, NULL, NULL, NULL, 0, NULL);
    cr_expect_str_eq(all, "a-c a/b a/c/d a/c/e ab b/x/y/z b/y c ca/1");
    free(all);
    int pages = 0;
    all = list_joined(f.s, "", "", NULL, 1, &pages);
    cr_expect_str_eq(all, "a-c a/b a/c/d a/c/e ab b/x/y/z b/y c ca/1");
    cr_expect_eq(pages, 9);
    free(all);

    char *s = list_joined(f.s, "a/", NULL, NULL, 0, NULL);
    cr_expect_str_eq(s, "a/b a/c/d a/c/e");
    free(s);
    s = list_joined(f.s, "a", NULL, NULL, 0, NULL);
    cr_expect_str_eq(s, "a-c a/b a/c/d a/c/e ab");
    free(s);
    s = list_joined(f.s, "a/c/d", NULL, NULL, 0, NULL);
    cr_expect_str_eq(s, "a/c/d");
    free(s);
    s = list_joined(f.s, "nothing", NULL, NULL, 0, NULL);
    cr_expect_str_eq(s, "");
    free(s);

    /* delimiter roll-up, as Azure: one prefix item per common prefix, in name order */
    s = list_joined(f.s, NULL, "/", NULL, 0, NULL);
    cr_expect_str_eq(s, "a-c +a/ ab +b/ c +ca/");
    free(s);
    s = list_joined(f.s, "a/", "/", NULL, 0, NULL);
    cr_expect_str_eq(s, "a/b +a/c/");
    free(s);
    s = list_joined(f.s, "b/", "/", NULL, 0, NULL);
    cr_expect_str_eq(s, "+b/x/ b/y");
    free(s);
    /* paging through roll-ups one item at a time gives the same sequence */
    s = list_joined(f.s, NULL, "/", NULL, 1, &pages);
    cr_expect_str_eq(s, "a-c +a/ ab +b/ c +ca/");
    cr_expect_eq(pages, 6);
    free(s);
    /* a delimiter other than '/' */
    s = list_joined(f.s, NULL, "-", NULL, 0, NULL);
    cr_expect_str_eq(s, "+a- a/b a/c/d a/c/e ab b/x/y/z b/y c ca/1");
    free(s);

    /* marker continuation: strictly after the marker */
    s = list_joined(f.s, NULL, NULL, "a/c/d", 0, NULL);
    cr_expect_str_eq(s, "a/c/e ab b/x/y/z b/y c ca/1");
    free(s);
    s = list_joined(f.s, NULL, NULL, "b", 0, NULL);
    cr_expect_str_eq(s, "b/x/y/z b/y c ca/1");
    free(s);
    s = list_joined(f.s, NULL, "/", "a/", 0, NULL);
    cr_expect_str_eq(s, "ab +b/ c +ca/");
    free(s);
    s = list_joined(f.s, NULL, NULL, "zzz", 0, NULL);
    cr_expect_str_eq(s, "");
    free(s);
    free(cmd);
    free(empty);
    teardown(&f);
}

/* ---- concurrency ------------------------------------------------------------------------------------ */

struct writer_arg {
    struct ccr_store *s;
    int id;
    atomic_int *failures;
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    struct ccr_err e;
    ccr_err_clear(&e);
    uint8_t *buf = malloc(200000);
    for (int b = 0; b < 50; b++) {
        char name[64];
        snprintf(name, sizeof(name), "t%d/blob%03d", a->id, b);
        unsigned seed = (unsigned)(a->id * 1000 + b);
        size_t nblocks = 1 + (size_t)(b % 4);
        size_t bsz = 10000 + (size_t)b * 37;
        /* stage in reverse order */
        for (size_t k = nblocks; k-- > 0;) {
            fill(buf, bsz, k * bsz, seed);
            if (ccr_store_put_block(a->s, name, k, buf, bsz, &e) != 0)
                atomic_fetch_add(a->failures, 1);
        }
        struct ccr_blob_props pr;
        if (ccr_store_commit_blocks(a->s, name, nblocks, &pr, &e) != 0 || pr.size != nblocks * bsz)
            atomic_fetch_add(a->failures, 1);
        /* read back a slice right away, while the other threads write */
        ssize_t n = ccr_store_get(a->s, name, bsz / 2, buf, bsz, NULL, &e);
        if (n != (ssize_t)(nblocks == 1 ? bsz - bsz / 2 : bsz))
            atomic_fetch_add(a->failures, 1);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pat(bsz / 2 + (size_t)i, seed)) {
                atomic_fetch_add(a->failures, 1);
                break;
            }
    }
    free(buf);
    return NULL;
}

Test(blob_local, four_writers_fifty_blobs_each, .timeout = 60)
{
    struct fixture f = setup();
    atomic_int failures = 0;
    pthread_t th[4];
    struct writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct writer_arg){.s = f.s, .id = i, .failures = &failures};
        cr_assert_eq(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_expect_eq(atomic_load(&failures), 0);
    char *s = list_joined(f.s, NULL, "/", NULL, 0, NULL);
    cr_expect_str_eq(s, "+t0/ +t1/ +t2/ +t3/");
    free(s);
    struct ccr_blob_page page = {0};
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_list(f.s, NULL, NULL, NULL, 0, &page, &e), 0);
    cr_expect_eq(page.count, 200);
    ccr_blob_page_fini(&page);
    for (int t = 0; t < 4; t++)
        for (int b = 0; b < 50; b += 7) {
            char name[64];
            snprintf(name, sizeof(name), "t%d/blob%03d", t, b);
            size_t len = 0;
            uint8_t *got = get_all(f.s, name, &len);
            size_t bsz = 10000 + (size_t)b * 37;
            cr_assert_eq(len, (1 + (size_t)(b % 4)) * bsz);
            for (size_t i = 0; i < len; i++)
                cr_assert_eq(got[i], pat(i, (unsigned)(t * 1000 + b)), "%s byte %zu", name, i);
            free(got);
        }
    expect_no_temporaries(&f);
    char *blocks = bt_path(f.root, ".ccr/blocks");
    cr_expect_eq(bt_count_entries(blocks), 0);
    free(blocks);
    teardown(&f);
}

struct same_blob_arg {
    struct ccr_store *s;
    int id;
    const uint8_t *data;
    size_t bsz;
    int rc;
};

static void *stager(void *p)
{
    struct same_blob_arg *a = p;
    for (size_t k = (size_t)a->id; k < 64; k += 4) {
        a->rc = ccr_store_put_block(a->s, "shared", k, a->data + k * a->bsz, a->bsz, NULL);
        if (a->rc)
            break;
    }
    return NULL;
}

Test(blob_local, threads_stage_indices_of_one_blob)
{
    struct fixture f = setup();
    const size_t bsz = 4096;
    uint8_t *data = malloc(64 * bsz);
    fill(data, 64 * bsz, 0, 99);
    pthread_t th[4];
    struct same_blob_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct same_blob_arg){.s = f.s, .id = i, .data = data, .bsz = bsz};
        cr_assert_eq(pthread_create(&th[i], NULL, stager, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].rc, 0);
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_commit_blocks(f.s, "shared", 64, NULL, &e), 0, "%s", e.msg);
    size_t len = 0;
    uint8_t *got = get_all(f.s, "shared", &len);
    cr_assert_eq(len, 64 * bsz);
    cr_expect_eq(memcmp(got, data, len), 0);
    free(got);
    free(data);
    teardown(&f);
}

/* A reader never sees a mix of two commits. */
#define MIX_SIZE  (4u << 20)
#define MIX_BLOCK (1u << 20)

struct mix {
    struct ccr_store *s;
    atomic_bool stop;
    atomic_int bad, reads, stale, commits;
};

static void *mix_writer(void *p)
{
    struct mix *m = p;
    uint8_t *blk = malloc(MIX_BLOCK);
    for (int round = 0; round < 24; round++) {
        memset(blk, round % 2 ? 'B' : 'A', MIX_BLOCK);
        for (unsigned k = 0; k < MIX_SIZE / MIX_BLOCK; k++)
            if (ccr_store_put_block(m->s, "mix", k, blk, MIX_BLOCK, NULL) != 0)
                atomic_fetch_add(&m->bad, 1);
        if (ccr_store_commit_blocks(m->s, "mix", MIX_SIZE / MIX_BLOCK, NULL, NULL) != 0)
            atomic_fetch_add(&m->bad, 1);
        atomic_fetch_add(&m->commits, 1);
    }
    free(blk);
    atomic_store(&m->stop, true);
    return NULL;
}

static void *mix_reader(void *p)
{
    struct mix *m = p;
    uint8_t *buf = malloc(MIX_SIZE);
    while (!atomic_load(&m->stop)) {
        /* whole-blob gets */
        ssize_t n = ccr_store_get(m->s, "mix", 0, buf, MIX_SIZE, NULL, NULL);
        if (n != (ssize_t)MIX_SIZE) {
            atomic_fetch_add(&m->bad, 1);
            continue;
        }
        for (size_t i = 1; i < MIX_SIZE; i++)
            if (buf[i] != buf[0]) {
                atomic_fetch_add(&m->bad, 1);
                break;
            }
        /* chunked gets pinned to one ETag: either all from one version or -ESTALE */
        struct ccr_blob_props pr;
        if (ccr_store_props(m->s, "mix", &pr, NULL) != 0)
            continue;
        bool stale = false;
        for (size_t off = 0; off < MIX_SIZE; off += 512 * 1024) {
            n = ccr_store_get(m->s, "mix", off, buf + off, 512 * 1024, pr.etag, NULL);
            if (n == -ESTALE) {
                stale = true;
                break;
            }
            if (n != 512 * 1024)
                atomic_fetch_add(&m->bad, 1);
        }
        if (stale) {
            atomic_fetch_add(&m->stale, 1);
            continue;
        }
        for (size_t i = 1; i < MIX_SIZE; i++)
            if (buf[i] != buf[0]) {
                atomic_fetch_add(&m->bad, 1);
                break;
            }
        atomic_fetch_add(&m->reads, 1);
    }
    free(buf);
    return NULL;
}

Test(blob_local, reader_never_sees_a_mix, .timeout = 60)
{
    struct fixture f = setup();
    struct mix m = {.s = f.s};
    uint8_t *blk = malloc(MIX_SIZE);
    memset(blk, 'A', MIX_SIZE);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_blob(f.s, "mix", blk, MIX_SIZE, NULL, &e), 0);
    free(blk);
    pthread_t w, r;
    cr_assert_eq(pthread_create(&r, NULL, mix_reader, &m), 0);
    cr_assert_eq(pthread_create(&w, NULL, mix_writer, &m), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    cr_expect_eq(atomic_load(&m.bad), 0, "reader saw %d mixed or failed reads", atomic_load(&m.bad));
    cr_expect_eq(atomic_load(&m.commits), 24);
    cr_expect_gt(atomic_load(&m.reads) + atomic_load(&m.stale), 0);
    teardown(&f);
}

Test(blob_local, create_container_sweeps_stale_leftovers)
{
    struct fixture f = setup();
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block(f.s, "fresh", 0, "x", 1, &e), 0);
    cr_assert_eq(ccr_store_put_block(f.s, "stale", 0, "x", 1, &e), 0);
    char *tmp_old = bt_path(f.root, ".ccr/tmp/999999-1");
    char *tmp_new = bt_path(f.root, ".ccr/tmp/999999-2");
    FILE *fp = fopen(tmp_old, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    fp = fopen(tmp_new, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    /* age the stale block directory and one temporary */
    struct timespec old[2] = {{.tv_sec = time(NULL) - 8 * 24 * 3600}, {.tv_sec = time(NULL) - 8 * 24 * 3600}};
    cr_assert_eq(utimensat(AT_FDCWD, tmp_old, old, 0), 0);
    char *blocks = bt_path(f.root, ".ccr/blocks");
    DIR *d = opendir(blocks);
    cr_assert_not_null(d);
    struct dirent *de;
    int aged = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || aged)
            continue;
        char *p = bt_path(blocks, de->d_name);
        cr_assert_eq(utimensat(AT_FDCWD, p, old, 0), 0);
        aged++;
        free(p);
    }
    closedir(d);
    cr_assert_eq(bt_count_entries(blocks), 2);
    bool created = true;
    cr_assert_eq(ccr_store_create_container(f.s, &created, &e), 0, "%s", e.msg);
    cr_expect_not(created);
    cr_expect_eq(bt_count_entries(blocks), 1, "the aged block directory was not swept");
    cr_expect_neq(access(tmp_old, F_OK), 0);
    cr_expect_eq(access(tmp_new, F_OK), 0);
    /* exactly one of the two blobs can still be committed */
    int ok = (ccr_store_commit_blocks(f.s, "fresh", 1, NULL, &e) == 0) +
             (ccr_store_commit_blocks(f.s, "stale", 1, NULL, &e) == 0);
    cr_expect_eq(ok, 1);
    free(blocks);
    free(tmp_old);
    free(tmp_new);
    teardown(&f);
}
