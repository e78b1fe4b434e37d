/*
 * test_placed.c - blocks staged with their final offset (ccr_store_put_block_at): the local store writes
 * them into one staging data file and commits contiguous ones without a copy; every other combination
 * (gaps, out-of-tile offsets, plain and placed blocks mixed, re-staging an index as the other kind) must
 * still commit exactly the blocks in index order.
 */
#include <sys/stat.h>

#include "blob_helpers.h"

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 9));
}

static void expect_content(struct ccr_store *s, const char *blob, const uint8_t *want, size_t len)
{
    struct ccr_blob_props p;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_props(s, blob, &p, &e), 0, "props: %s", e.msg);
    cr_assert_eq(p.size, len, "size %llu, want %zu", (unsigned long long)p.size, len);
    uint8_t *got = malloc(len + 1);
    cr_assert_not_null(got);
    cr_assert_eq(ccr_store_get(s, blob, 0, got, len + 1, NULL, &e), (ssize_t)len, "get: %s", e.msg);
    cr_assert_eq(memcmp(got, want, len), 0, "content differs");
    free(got);
}

/* Inode of the staging data file of blob, 0 if there is none (to prove the commit renamed it). */
static ino_t staged_data_inode(const char *root)
{
    char *blocks = bt_path(root, ".ccr/blocks");
    DIR *d = opendir(blocks);
    ino_t ino = 0;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char *p = NULL;
            cr_assert(asprintf(&p, "%s/%s/data", blocks, de->d_name) > 0);
            struct stat st;
            if (stat(p, &st) == 0)
                ino = st.st_ino;
            free(p);
        }
        closedir(d);
    }
    free(blocks);
    return ino;
}

Test(blob_placed, contiguous_blocks_commit_by_rename)
{
    char *dir = bt_mkdtemp();
    char *root = bt_path(dir, "c");
    struct ccr_store *s = bt_store(dir);
    struct ccr_err e;
    ccr_err_clear(&e);
    enum { N = 5, B = 100000 };
    static uint8_t want[N * B - 123];
    fill(want, sizeof(want), 1);
    /* out of order, the last block short */
    const int order[N] = {3, 0, 4, 1, 2};
    for (int k = 0; k < N; k++) {
        int i = order[k];
        size_t len = i == N - 1 ? sizeof(want) - (size_t)i * B : B;
        cr_assert_eq(
            ccr_store_put_block_at(s, "d/p.bin", (uint64_t)i, (uint64_t)i * B, want + (size_t)i * B, len, &e),
            0, "%s", e.msg);
    }
    ino_t staged = staged_data_inode(root);
    cr_assert_neq(staged, 0, "placed blocks should share one staging data file");
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_commit_blocks(s, "d/p.bin", N, &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p.size, sizeof(want));
    expect_content(s, "d/p.bin", want, sizeof(want));
    char *blob = bt_path(root, "d/p.bin");
    struct stat st;
    cr_assert_eq(stat(blob, &st), 0);
    cr_expect_eq(st.st_ino, staged, "a contiguous commit renames the data file: no copy");
    cr_expect_eq(staged_data_inode(root), 0, "staging is cleared after the commit");
    free(blob);
    ccr_store_close(s);
    free(root);
    bt_rmtree(dir);
}

Test(blob_placed, stale_tail_is_cut_on_recommit)
{
    /* A larger earlier attempt left bytes past the new end of the data file: they must not survive. */
    char *dir = bt_mkdtemp();
    struct ccr_store *s = bt_store(dir);
    struct ccr_err e;
    ccr_err_clear(&e);
    uint8_t big[3000], small[1500];
    fill(big, sizeof(big), 2);
    fill(small, sizeof(small), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(
            ccr_store_put_block_at(s, "t", (uint64_t)i, (uint64_t)i * 1000, big + i * 1000, 1000, &e), 0);
    /* no commit: a "killed" publish; the next one stages fewer, different bytes */
    for (int i = 0; i < 2; i++)
        cr_assert_eq(ccr_store_put_block_at(s, "t", (uint64_t)i, (uint64_t)i * 750, small + i * 750, 750, &e),
                     0);
    cr_assert_eq(ccr_store_commit_blocks(s, "t", 2, NULL, &e), 0, "%s", e.msg);
    expect_content(s, "t", small, sizeof(small));
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_placed, gaps_overlaps_and_mixed_kinds_assemble_in_index_order)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = bt_store(dir);
    struct ccr_err e;
    ccr_err_clear(&e);
    uint8_t a[4000];
    fill(a, sizeof(a), 4);
    /* block 0 placed at 0, block 1 plain, block 2 placed at an offset that is not where it will land */
    cr_assert_eq(ccr_store_put_block_at(s, "m", 0, 0, a, 1000, &e), 0);
    cr_assert_eq(ccr_store_put_block(s, "m", 1, a + 1000, 1000, &e), 0);
    cr_assert_eq(ccr_store_put_block_at(s, "m", 2, 9000, a + 2000, 2000, &e), 0);
    cr_assert_eq(ccr_store_commit_blocks(s, "m", 3, NULL, &e), 0, "%s", e.msg);
    expect_content(s, "m", a, sizeof(a));

    /* re-staging an index as the other kind replaces it, both ways */
    uint8_t b[3000];
    fill(b, sizeof(b), 5);
    cr_assert_eq(ccr_store_put_block(s, "r", 0, "xxxx", 4, &e), 0);
    cr_assert_eq(ccr_store_put_block_at(s, "r", 0, 0, b, 1000, &e), 0); /* plain -> placed */
    cr_assert_eq(ccr_store_put_block_at(s, "r", 1, 1000, "yyyy", 4, &e), 0);
    cr_assert_eq(ccr_store_put_block(s, "r", 1, b + 1000, 2000, &e), 0); /* placed -> plain */
    cr_assert_eq(ccr_store_commit_blocks(s, "r", 2, NULL, &e), 0, "%s", e.msg);
    expect_content(s, "r", b, sizeof(b));

    /* a missing placed block still fails the commit and leaves nothing visible */
    cr_assert_eq(ccr_store_put_block_at(s, "g", 0, 0, a, 10, &e), 0);
    cr_assert_eq(ccr_store_put_block_at(s, "g", 2, 20, a + 20, 10, &e), 0);
    cr_assert_eq(ccr_store_commit_blocks(s, "g", 3, NULL, &e), -EINVAL);
    cr_expect(strstr(e.msg, "block 1") != NULL, "message: %s", e.msg);
    struct ccr_blob_props p;
    cr_assert_eq(ccr_store_props(s, "g", &p, &e), -ENOENT);
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_placed, offset_overflow_is_refused)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = bt_store(dir);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block_at(s, "o", 0, UINT64_MAX - 1, "abc", 3, &e), -EINVAL);
    ccr_store_close(s);
    bt_rmtree(dir);
}
