/*
 * test_store.c - the public store interface: blob name checks, URL parsing and dispatch, containers.
 */
#include "blob_helpers.h"

Test(blob_store, name_check_accepts_valid_names)
{
    static const char *const ok[] = {
        "a",        "a/b/c.bin",      "dir.with.dots/x", "...", "a/.hidden", ".ccrx/y",
        "x/.ccr/y", "unicode/é/日本", "sp ace/tab-less", "a\\b"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_expect_eq(ccr_blob_name_check(ok[i], &e), 0, "'%s' refused: %s", ok[i], e.msg);
    }
    char max[CCR_BLOB_NAME_MAX + 1];
    memset(max, 'x', CCR_BLOB_NAME_MAX);
    max[CCR_BLOB_NAME_MAX] = '\0';
    cr_expect_eq(ccr_blob_name_check(max, NULL), 0);
}

Test(blob_store, name_check_refuses_each_invalid_kind)
{
    struct {
        const char *name;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"/abs", "starts with '/'"},
        {"dir/", "ends with '/'"},
        {"a//b", "empty component"},
        {"./a", "'.' component"},
        {"a/./b", "'.' component"},
        {"a/..", "'..' component"},
        {"../x", "'..' component"},
        {".", "'.' component"},
        {"a\nb", "control character"},
        {"a\x7f", "control character"},
        {"tab\there", "control character"},
        {".ccr", "reserved"},
        {".ccr/blocks/x", "reserved"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_expect_eq(ccr_blob_name_check(bad[i].name, &e), -EINVAL, "name #%zu accepted", i);
        cr_expect_eq(e.code, -EINVAL);
        cr_expect_not_null(strstr(e.msg, bad[i].why), "name #%zu: message '%s' lacks '%s'", i, e.msg,
                           bad[i].why);
    }
    cr_expect_eq(ccr_blob_name_check(NULL, NULL), -EINVAL);
    char *big = malloc(CCR_BLOB_NAME_MAX + 2);
    memset(big, 'y', CCR_BLOB_NAME_MAX + 1);
    big[CCR_BLOB_NAME_MAX + 1] = '\0';
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_expect_eq(ccr_blob_name_check(big, &e), -EINVAL);
    cr_expect_not_null(strstr(e.msg, "1025 bytes"), "%s", e.msg);
    free(big);
}

Test(blob_store, open_file_url_and_plain_path)
{
    char *dir = bt_mkdtemp();
    char *url = NULL;
    cr_assert(asprintf(&url, "file://%s/c", dir) > 0);
    struct ccr_store *s = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_open(url, &s, &e), 0, "%s", e.msg);
    cr_expect_str_eq(ccr_store_url(s), url);
    ccr_store_close(s);

    /* a plain absolute path, with redundant parts, gives the canonical file:// URL */
    char *messy = NULL;
    cr_assert(asprintf(&messy, "%s//./x/../c/", dir) > 0);
    cr_assert_eq(ccr_store_open(messy, &s, &e), 0, "%s", e.msg);
    cr_expect_str_eq(ccr_store_url(s), url);
    /* open creates nothing */
    char *root = bt_path(dir, "c");
    cr_expect_neq(access(root, F_OK), 0);
    ccr_store_close(s);

    cr_expect_eq(ccr_store_open("file://relative/path", &s, &e), -EINVAL);
    free(root);
    free(messy);
    free(url);
    bt_rmtree(dir);
}

Test(blob_store, open_relative_path_made_absolute)
{
    char *dir = bt_mkdtemp();
    char *old = getcwd(NULL, 0);
    cr_assert_eq(chdir(dir), 0);
    struct ccr_store *s = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_open("sub/../cont", &s, &e), 0, "%s", e.msg);
    char *want = NULL;
    cr_assert(asprintf(&want, "file://%s/cont", dir) > 0);
    cr_expect_str_eq(ccr_store_url(s), want);
    bool created = false;
    cr_assert_eq(ccr_store_create_container(s, &created, &e), 0, "%s", e.msg);
    ccr_store_close(s);
    cr_assert_eq(chdir(old), 0); /* the store keeps working from elsewhere: its path is absolute */
    cr_assert_eq(ccr_store_open(want, &s, &e), 0, "%s", e.msg);
    cr_expect_eq(ccr_store_put_blob(s, "x", "1", 1, NULL, &e), 0, "%s", e.msg);
    char *p = bt_path(dir, "cont/x");
    cr_expect_eq(access(p, F_OK), 0);
    ccr_store_close(s);
    free(p);
    free(want);
    free(old);
    bt_rmtree(dir);
}

Test(blob_store, open_unknown_scheme_is_eprotonosupport)
{
    static const char *const urls[] = {"azure://acct/c", "s3://bucket", "ftp://host/c"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct ccr_store *s = (struct ccr_store *)0x1;
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_expect_eq(ccr_store_open(urls[i], &s, &e), -EPROTONOSUPPORT, "%s", urls[i]);
        cr_expect_eq(s, (struct ccr_store *)0x1, "out written on failure");
        cr_expect_not_null(strstr(e.msg, "use https:// or http:// (Azure Blob)"), "%s", e.msg);
        cr_expect_not_null(strstr(e.msg, "file:// or a plain path"), "%s", e.msg);
        cr_expect_str_eq(e.where, urls[i]);
    }
    struct ccr_store *s = NULL;
    cr_expect_eq(ccr_store_open("", &s, NULL), -EINVAL);
    cr_expect_eq(ccr_store_open(NULL, &s, NULL), -EINVAL);
}

Test(blob_store, create_container_twice)
{
    char *dir = bt_mkdtemp();
    char *root = bt_path(dir, "deep/er/c");
    struct ccr_store *s = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_open(root, &s, &e), 0);
    bool created = false;
    cr_assert_eq(ccr_store_create_container(s, &created, &e), 0, "%s", e.msg);
    cr_expect(created);
    cr_assert_eq(ccr_store_create_container(s, &created, &e), 0, "%s", e.msg);
    cr_expect_not(created);
    cr_assert_eq(ccr_store_create_container(s, NULL, &e), 0, "%s", e.msg);
    struct stat st;
    cr_expect_eq(stat(root, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    ccr_store_close(s);

    /* a file where the container should be */
    char *file = bt_path(dir, "afile");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(ccr_store_open(file, &s, &e), 0);
    cr_expect_eq(ccr_store_create_container(s, &created, &e), -ENOTDIR);
    ccr_store_close(s);
    free(file);
    free(root);
    bt_rmtree(dir);
}

Test(blob_store, operations_on_missing_container_are_enoent)
{
    char *dir = bt_mkdtemp();
    char *root = bt_path(dir, "nothere");
    struct ccr_store *s = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_open(root, &s, &e), 0);
    char buf[4];
    struct ccr_blob_props p;
    struct ccr_blob_page page = {0};
    cr_expect_eq(ccr_store_put_block(s, "a", 0, "x", 1, &e), -ENOENT);
    cr_expect_not_null(strstr(e.msg, "container does not exist"), "%s", e.msg);
    cr_expect_eq(ccr_store_put_blob(s, "a", "x", 1, NULL, &e), -ENOENT);
    cr_expect_eq(ccr_store_get(s, "a", 0, buf, 4, NULL, &e), -ENOENT);
    cr_expect_not_null(strstr(e.msg, "container does not exist"), "%s", e.msg);
    cr_expect_eq(ccr_store_props(s, "a", &p, &e), -ENOENT);
    cr_expect_eq(ccr_store_list(s, NULL, NULL, NULL, 0, &page, &e), -ENOENT);
    cr_expect_eq(ccr_store_delete(s, "a", &e), -ENOENT);
    cr_expect_neq(access(root, F_OK), 0, "an operation created the container");
    ccr_store_close(s);
    free(root);
    bt_rmtree(dir);
}

Test(blob_store, wrappers_validate_arguments)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = bt_store(dir);
    struct ccr_err e;
    ccr_err_clear(&e);
    char buf[4];
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_put_block(s, "../x", 0, "x", 1, &e), -EINVAL);
    cr_expect_eq(ccr_store_put_block(s, "ok", 50000, "x", 1, &e), -EINVAL);
    cr_expect_eq(ccr_store_put_block(s, "ok", 0, NULL, 1, &e), -EINVAL);
    cr_expect_eq(ccr_store_commit_blocks(s, "ok", 50001, NULL, &e), -EINVAL);
    cr_expect_eq(ccr_store_put_blob(s, ".ccr/x", "x", 1, NULL, &e), -EINVAL);
    cr_expect_eq(ccr_store_get(s, "a//b", 0, buf, 4, NULL, &e), -EINVAL);
    cr_expect_eq(ccr_store_props(s, "", &p, &e), -EINVAL);
    cr_expect_eq(ccr_store_delete(s, "/x", &e), -EINVAL);
    cr_expect_eq(ccr_store_list(s, NULL, NULL, NULL, 0, NULL, &e), -EINVAL);
    ccr_blob_page_fini(NULL);
    struct ccr_blob_page zero = {0};
    ccr_blob_page_fini(&zero);
    ccr_store_close(NULL);
    ccr_store_close(s);
    bt_rmtree(dir);
}
