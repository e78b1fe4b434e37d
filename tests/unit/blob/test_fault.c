/*
 * test_fault.c - the fault-injecting wrapper (CCR_STORE_FAULTS): the n-th call fails with the named errno,
 * every-call rules, delays, "any", bad specs. Criterion runs each test in its own process, so setenv here
 * does not leak into other tests.
 */
#include <time.h>

#include "blob_helpers.h"

static struct ccr_store *open_with_faults(const char *dir, const char *spec)
{
    cr_assert_eq(setenv("CCR_STORE_FAULTS", spec, 1), 0);
    struct ccr_store *s = bt_store(dir);
    unsetenv("CCR_STORE_FAULTS");
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(blob_fault, nth_commit_fails_with_named_errno)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = open_with_faults(dir, "commit:fail=EIO:2,put_blob:fail=ENOSPC:1");
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_block(s, "a", 0, "x", 1, &e), 0);
    cr_expect_eq(ccr_store_commit_blocks(s, "a", 1, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_store_put_block(s, "b", 0, "y", 1, &e), 0);
    cr_expect_eq(ccr_store_commit_blocks(s, "b", 1, NULL, &e), -EIO);
    cr_expect_eq(e.code, -EIO);
    cr_expect_str_eq(e.where, "b");
    cr_expect_not_null(strstr(e.msg, "injected fault"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "commit call 2"), "%s", e.msg);
    /* the injected failure never reached the store: b is not committed, its block still staged */
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_props(s, "b", &p, &e), -ENOENT);
    cr_expect_eq(ccr_store_commit_blocks(s, "b", 1, NULL, &e), 0, "3rd commit must pass: %s", e.msg);
    cr_expect_eq(ccr_store_props(s, "b", &p, &e), 0);
    cr_expect_eq(ccr_store_put_blob(s, "c", "z", 1, NULL, &e), -ENOSPC);
    cr_expect_eq(ccr_store_put_blob(s, "c", "z", 1, NULL, &e), 0);
    /* the URL is the real store's */
    cr_expect_eq(strncmp(ccr_store_url(s), "file://", 7), 0);
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_fault, every_call_rule_and_any)
{
    char *dir = bt_mkdtemp();
    /* the container creation is "any" call 1 */
    struct ccr_store *s = open_with_faults(dir, "get:fail=ETIMEDOUT,any:fail=EACCES:4");
    struct ccr_err e;
    ccr_err_clear(&e);
    char buf[4];
    cr_assert_eq(ccr_store_put_blob(s, "a", "x", 1, NULL, &e), 0);        /* any #2 */
    cr_expect_eq(ccr_store_get(s, "a", 0, buf, 4, NULL, &e), -ETIMEDOUT); /* any #3 */
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_props(s, "a", &p, &e), -EACCES); /* any #4 */
    cr_expect_not_null(strstr(e.msg, "injected fault: any call 4"), "%s", e.msg);
    cr_expect_eq(ccr_store_props(s, "a", &p, &e), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(ccr_store_get(s, "a", 0, buf, 4, NULL, &e), -ETIMEDOUT);
    struct ccr_blob_page page = {0};
    cr_expect_eq(ccr_store_list(s, NULL, NULL, NULL, 0, &page, &e), 0);
    cr_expect_eq(page.count, 1);
    ccr_blob_page_fini(&page);
    cr_expect_eq(ccr_store_delete(s, "a", &e), 0);
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_fault, numeric_errno_list_and_delete)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = open_with_faults(dir, "list:fail=5:1,delete:fail=EBUSY,put_block:fail=EAGAIN:2");
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_blob_page page = {0};
    cr_expect_eq(ccr_store_list(s, NULL, NULL, NULL, 0, &page, &e), -5);
    cr_expect_eq(ccr_store_list(s, NULL, NULL, NULL, 0, &page, &e), 0);
    ccr_blob_page_fini(&page);
    cr_expect_eq(ccr_store_put_block(s, "x", 0, "1", 1, &e), 0);
    cr_expect_eq(ccr_store_put_block(s, "x", 1, "2", 1, &e), -EAGAIN);
    cr_expect_eq(ccr_store_put_block(s, "x", 1, "2", 1, &e), 0);
    cr_expect_eq(ccr_store_delete(s, "x", &e), -EBUSY);
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_fault, delay_slows_the_call)
{
    char *dir = bt_mkdtemp();
    struct ccr_store *s = open_with_faults(dir, "get:delay=40,props:delay=200:2");
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_put_blob(s, "a", "abc", 3, NULL, &e), 0);
    char buf[4];
    double t0 = now_s();
    cr_expect_eq(ccr_store_get(s, "a", 0, buf, 4, NULL, &e), 3, "a delay still performs the call");
    cr_expect_eq(memcmp(buf, "abc", 3), 0);
    double t1 = now_s();
    cr_expect_geq(t1 - t0, 0.039, "get took %.3f s", t1 - t0);
    /* Only lower bounds: a sleep guarantees them, while an upper bound would fail whenever the machine
     * stalls. Which call a rule hits is checked without a clock by the fail=...:N tests. */
    struct ccr_blob_props p;
    cr_expect_eq(ccr_store_props(s, "a", &p, &e), 0);
    t1 = now_s();
    cr_expect_eq(ccr_store_props(s, "a", &p, &e), 0);
    cr_expect_geq(now_s() - t1, 0.199, "second props was not delayed");
    ccr_store_close(s);
    bt_rmtree(dir);
}

Test(blob_fault, bad_specs_are_refused_at_open)
{
    static const char *const bad[] = {"commit",        "commit:fail=NOPE",  "frob:fail=EIO",
                                      "get:delay=x",   "get:fail=EIO:0",    "get:fail=EIO:1:2",
                                      "get:explode=1", "commit:fail=EIO,zz"};
    char *dir = bt_mkdtemp();
    char *root = bt_path(dir, "c");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(setenv("CCR_STORE_FAULTS", bad[i], 1), 0);
        struct ccr_store *s = NULL;
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_expect_eq(ccr_store_open(root, &s, &e), -EINVAL, "spec '%s' accepted", bad[i]);
        cr_expect_null(s);
        cr_expect_str_eq(e.where, "CCR_STORE_FAULTS");
    }
    unsetenv("CCR_STORE_FAULTS");
    free(root);
    bt_rmtree(dir);
}
