/*
 * test_journal.c - the resume journal (dataplane/journal.c): later lines win, a torn end is cut, and a
 * journal dominated by superseded lines is compacted on open without losing an entry.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/stat.h>

#include "dp_helpers.h"
#include "transfer_int.h"

static struct tx_journal *open_j(const char *dir)
{
    struct tx_journal *j = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(tx_journal_open(dir, "upload", "file:///store", "p", "/src", CCR_MODE_CCR1, 1 << 20, &j, &e),
                 0, "%s", e.msg);
    return j;
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

Test(dataplane_journal, later_lines_win_and_survive_reopen)
{
    char *dir = dp_mkdtemp();
    struct tx_journal *j = open_j(dir);
    cr_assert_eq(tx_journal_append(j, "a/b", 10, 111, "\"e1\""), 0);
    cr_assert_eq(tx_journal_append(j, "a/b", 20, 222, "\"e2\""), 0);
    cr_assert_eq(tx_journal_append(j, "c d", 0, -5, ""), 0);
    cr_assert_eq(tx_journal_close(j), 0);
    j = open_j(dir);
    cr_assert_eq(tx_journal_count(j), 2);
    const struct tx_entry *e = tx_journal_find(j, "a/b");
    cr_assert_not_null(e);
    cr_expect_eq(e->size, 20);
    cr_expect_eq(e->mtime_ns, 222);
    cr_expect_str_eq(e->etag, "\"e2\"");
    e = tx_journal_find(j, "c d");
    cr_assert_not_null(e);
    cr_expect_eq(e->mtime_ns, -5);
    cr_expect_str_eq(e->etag, "");
    cr_expect_null(tx_journal_find(j, "nope"));
    tx_journal_close(j);
    dp_rmtree(dir);
}

Test(dataplane_journal, superseded_lines_are_compacted_on_open)
{
    char *dir = dp_mkdtemp();
    struct tx_journal *j = open_j(dir);
    char *path = strdup(tx_journal_path(j));
    /* 20 names rewritten 150 times each: 3,000 lines for 20 entries */
    for (int round = 0; round < 150; round++)
        for (int n = 0; n < 20; n++) {
            char name[32];
            snprintf(name, sizeof(name), "dir/file-%02d", n);
            cr_assert_eq(tx_journal_append(j, name, (uint64_t)(round * 100 + n), round, "\"etag\""), 0);
        }
    cr_assert_eq(tx_journal_close(j), 0);
    off_t before = file_size(path);

    j = open_j(dir); /* compacts */
    off_t after = file_size(path);
    cr_expect_lt(after * 100, before, "not compacted: %lld bytes, then %lld", (long long)before,
                 (long long)after);
    cr_assert_eq(tx_journal_count(j), 20);
    for (int n = 0; n < 20; n++) {
        char name[32];
        snprintf(name, sizeof(name), "dir/file-%02d", n);
        const struct tx_entry *e = tx_journal_find(j, name);
        cr_assert_not_null(e, "%s lost", name);
        cr_expect_eq(e->size, (uint64_t)(149 * 100 + n));
        cr_expect_eq(e->mtime_ns, 149);
    }
    /* appends after compaction go to the new file and survive */
    cr_assert_eq(tx_journal_append(j, "new", 1, 2, "\"x\""), 0);
    cr_assert_eq(tx_journal_close(j), 0);
    j = open_j(dir);
    cr_expect_eq(tx_journal_count(j), 21);
    cr_expect_not_null(tx_journal_find(j, "new"));
    tx_journal_close(j);
    /* no temporary left beside it */
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') {
            files++;
            cr_expect_null(strstr(de->d_name, "compact"), "leftover %s", de->d_name);
        }
    closedir(d);
    cr_expect_eq(files, 1);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_journal, torn_last_line_is_cut)
{
    char *dir = dp_mkdtemp();
    struct tx_journal *j = open_j(dir);
    char *path = strdup(tx_journal_path(j));
    cr_assert_eq(tx_journal_append(j, "whole", 5, 6, "\"e\""), 0);
    cr_assert_eq(tx_journal_close(j), 0);
    off_t good = file_size(path);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs("77 88 3:\"e", f); /* a write cut short by a kill */
    fclose(f);
    j = open_j(dir);
    cr_expect_eq(tx_journal_count(j), 1);
    cr_expect_eq(file_size(path), good);
    tx_journal_close(j);
    free(path);
    dp_rmtree(dir);
}
