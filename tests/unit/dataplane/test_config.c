/*
 * The datastore config (dataplane/config.c): path rules, load/validate, sorted list, add/replace/remove,
 * atomic save with its permissions.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/datastore.h"
#include "dp_helpers.h"

static void cfg_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
}

static char *cfg_read(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ccr_file_read_all(path, 1 << 20, &buf, &len, NULL), 0, "read %s", path);
    return buf;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* Loads text written to dir/config.json and expects -EINVAL with msg containing needle. */
static void expect_load_error(const char *dir, const char *text, const char *needle)
{
    char *path = dp_path(dir, "config.json");
    cfg_write(path, text);
    struct ccr_config *cfg = (struct ccr_config *)0x1;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_config_load(path, &cfg, &e);
    cr_assert_eq(rc, -EINVAL, "rc %d for %s", rc, text);
    cr_assert_eq(cfg, (struct ccr_config *)0x1, "out written on failure");
    cr_assert_eq(e.code, -EINVAL);
    cr_assert_str_eq(e.where, path, "where '%s'", e.where);
    cr_assert_not_null(strstr(e.msg, needle), "message '%s' lacks '%s' (config %s)", e.msg, needle, text);
    free(path);
}

static struct ccr_datastore mk(const char *name, const char *url, enum ccr_mode mode, uint64_t region,
                               const char *key)
{
    struct ccr_datastore d = {.name = (char *)name,
                              .url = (char *)url,
                              .mode = mode,
                              .region_size = region,
                              .key_path = (char *)key};
    return d;
}

static struct ccr_config *load_ok(const char *path)
{
    struct ccr_config *cfg = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_config_load(path, &cfg, &e), 0, "load %s: %s", path, e.msg);
    cr_assert_not_null(cfg);
    return cfg;
}

Test(dataplane_config, missing_file_is_empty)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "nope/config.json");
    struct ccr_config *cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 0);
    cr_assert_null(ccr_config_at(cfg, 0));
    cr_assert_null(ccr_config_find(cfg, "x"));
    cr_assert_str_eq(ccr_config_file(cfg), path);
    cr_assert_eq(dp_exists(path), false, "loading must not create the file");
    ccr_config_free(cfg);
    ccr_config_free(NULL);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, round_trip_sorted)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "config.json");
    struct ccr_config *cfg = load_ok(path);
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_datastore a = mk("zeta", "file:///srv/zeta", CCR_MODE_CCR1, 0, "/keys/zeta.key");
    struct ccr_datastore b = mk("Alpha", "file:///srv/alpha", CCR_MODE_CSE, 4096, "/keys/alpha.key");
    struct ccr_datastore c = mk("mid.1_x-y", "file:///srv/mid", CCR_MODE_NONE, 0, NULL);
    struct ccr_datastore d = mk("beta", "file:///srv/beta", CCR_MODE_CCR1, 4u << 20, "/keys/beta.key");
    cr_assert_eq(ccr_config_add(cfg, &a, false, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_config_add(cfg, &b, false, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_config_add(cfg, &c, false, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_config_add(cfg, &d, false, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_config_save(cfg, &e), 0, "%s", e.msg);
    ccr_config_free(cfg);

    cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 4);
    static const char *const order[] = {"Alpha", "beta", "mid.1_x-y", "zeta"}; /* byte order */
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(ccr_config_at(cfg, i)->name, order[i]);
    const struct ccr_datastore *z = ccr_config_find(cfg, "zeta");
    cr_assert_not_null(z);
    cr_assert_str_eq(z->url, "file:///srv/zeta");
    cr_assert_eq(z->mode, CCR_MODE_CCR1);
    cr_assert_eq(z->region_size, CCR_CCR1_REGION_DEFAULT, "0 means the mode's default");
    cr_assert_str_eq(z->key_path, "/keys/zeta.key");
    const struct ccr_datastore *al = ccr_config_find(cfg, "Alpha");
    cr_assert_eq(al->mode, CCR_MODE_CSE);
    cr_assert_eq(al->region_size, 4096);
    cr_assert_str_eq(al->key_path, "/keys/alpha.key");
    const struct ccr_datastore *m = ccr_config_find(cfg, "mid.1_x-y");
    cr_assert_eq(m->mode, CCR_MODE_NONE);
    cr_assert_eq(m->region_size, 0);
    cr_assert_null(m->key_path);
    cr_assert_eq(ccr_config_find(cfg, "beta")->region_size, 4u << 20);
    cr_assert_null(ccr_config_find(cfg, "alpha"), "names are case-sensitive");

    /* the file is the documented JSON */
    char *text = cfg_read(path);
    cr_assert_not_null(strstr(text, "\"version\": 1"), "%s", text);
    cr_assert_not_null(strstr(text, "\"name\": \"zeta\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"mode\": \"cleanroom-cse\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"region_size\": 1048576"), "%s", text);
    cr_assert_not_null(strstr(text, "\"key\": \"/keys/zeta.key\""), "%s", text);
    cr_assert_lt(strstr(text, "Alpha"), strstr(text, "zeta"), "saved in name order");
    ccr_free(text);
    ccr_config_free(cfg);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, add_replace_remove)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "config.json");
    struct ccr_config *cfg = load_ok(path);
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_datastore a = mk("ds1", "file:///a", CCR_MODE_CCR1, 0, "/k1");
    struct ccr_datastore a2 = mk("ds1", "file:///b", CCR_MODE_NONE, 0, NULL);
    cr_assert_eq(ccr_config_add(cfg, &a, false, &e), 0);
    cr_assert_eq(ccr_config_add(cfg, &a2, false, &e), -EEXIST);
    cr_assert_not_null(strstr(e.msg, "'ds1' already exists"), "%s", e.msg);
    cr_assert_str_eq(ccr_config_find(cfg, "ds1")->url, "file:///a", "refused add changes nothing");
    cr_assert_eq(ccr_config_add(cfg, &a2, true, &e), 0);
    cr_assert_eq(ccr_config_count(cfg), 1);
    const struct ccr_datastore *d = ccr_config_find(cfg, "ds1");
    cr_assert_str_eq(d->url, "file:///b");
    cr_assert_eq(d->mode, CCR_MODE_NONE);
    cr_assert_null(d->key_path);

    /* ds is copied: the caller's strings may go away */
    char name[] = "copied", url[] = "file:///c", key[] = "/kc";
    struct ccr_datastore c = mk(name, url, CCR_MODE_CCR1, 0, key);
    cr_assert_eq(ccr_config_add(cfg, &c, false, &e), 0);
    memset(name, 'x', 6);
    memset(url, 'x', 9);
    cr_assert_str_eq(ccr_config_find(cfg, "copied")->url, "file:///c");

    ccr_err_clear(&e);
    cr_assert_eq(ccr_config_remove(cfg, "nope", &e), -ENOENT);
    cr_assert_not_null(strstr(e.msg, "unknown datastore 'nope'"), "%s", e.msg);
    cr_assert_eq(ccr_config_remove(cfg, "copied", &e), 0);
    cr_assert_eq(ccr_config_count(cfg), 1);
    cr_assert_null(ccr_config_find(cfg, "copied"));
    cr_assert_eq(ccr_config_save(cfg, &e), 0);
    ccr_config_free(cfg);
    cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 1);
    cr_assert_str_eq(ccr_config_at(cfg, 0)->name, "ds1");
    cr_assert_eq(ccr_config_remove(cfg, "ds1", &e), 0);
    cr_assert_eq(ccr_config_save(cfg, &e), 0);
    ccr_config_free(cfg);
    cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 0, "an emptied config saves and loads");
    ccr_config_free(cfg);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, many_inserts_stay_sorted)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "config.json");
    struct ccr_config *cfg = load_ok(path);
    char name[16];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "n%02u", (i * 17) % 40); /* a permutation of 0..39 */
        struct ccr_datastore d = mk(name, "file:///x", CCR_MODE_NONE, 0, NULL);
        cr_assert_eq(ccr_config_add(cfg, &d, false, NULL), 0);
    }
    cr_assert_eq(ccr_config_count(cfg), 40);
    for (size_t i = 1; i < 40; i++)
        cr_assert_lt(strcmp(ccr_config_at(cfg, i - 1)->name, ccr_config_at(cfg, i)->name), 0);
    ccr_config_free(cfg);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, name_rule)
{
    static const char *const good[] = {"a",
                                       "Z",
                                       "0",
                                       "a.b",
                                       "A_b-c.9",
                                       "owner1-data",
                                       "x23456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(ccr_datastore_name_check(good[i], NULL), 0, "'%s'", good[i]);
    cr_assert_eq(strlen(good[6]), 63);
    static const char *const bad[] = {"",
                                      "-a",
                                      ".a",
                                      "_a",
                                      "a/b",
                                      "a b",
                                      "a:b",
                                      "caf\xc3\xa9",
                                      "a\n",
                                      "a*b",
                                      "../x",
                                      "a\\b",
                                      "x234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_assert_eq(ccr_datastore_name_check(bad[i], &e), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(e.code, -EINVAL);
        cr_assert_not_null(strstr(e.msg, "1 to 63 characters"), "%s", e.msg);
    }
    cr_assert_eq(ccr_datastore_name_check(NULL, NULL), -EINVAL);
}

Test(dataplane_config, add_validates)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "config.json");
    struct ccr_config *cfg = load_ok(path);
    static const struct {
        struct ccr_datastore d;
        const char *needle;
    } cases[] = {
        {{"-bad", "file:///x", CCR_MODE_NONE, 0, NULL}, "invalid datastore name '-bad'"},
        {{"ok", "", CCR_MODE_NONE, 0, NULL}, "datastore 'ok': missing url"},
        {{"ok", NULL, CCR_MODE_NONE, 0, NULL}, "datastore 'ok': missing url"},
        {{"ok", "https://a.blob.core.windows.net/x", CCR_MODE_CPK, 4096, "/k"},
         "mode cpk has no region size"},
        {{"ok", "https://a.blob.core.windows.net/x", CCR_MODE_CPK, 0, NULL}, "mode cpk needs a key file"},
        {{"ok", "file:///x", CCR_MODE_AUTO, 0, "/k"}, "unknown mode 'auto'"},
        {{"ok", "file:///x", CCR_MODE_CCR1, 3000, "/k"}, "datastore 'ok': bad region size 3000"},
        {{"ok", "file:///x", CCR_MODE_CCR1, 3u << 20, "/k"}, "power of two"},
        {{"ok", "file:///x", CCR_MODE_CCR1, 32u << 20, "/k"}, "bad region size 33554432"},
        {{"ok", "file:///x", CCR_MODE_CSE, 8, "/k"}, "16 bytes to 1G"},
        {{"ok", "file:///x", CCR_MODE_CSE, (1ull << 30) + 1, "/k"}, "bad region size"},
        {{"ok", "file:///x", CCR_MODE_NONE, 4096, NULL}, "mode none has no region size"},
        {{"ok", "file:///x", CCR_MODE_NONE, 0, "/k"}, "datastore 'ok': mode none takes no key"},
        {{"ok", "file:///x", CCR_MODE_CCR1, 0, NULL}, "datastore 'ok': missing key"},
        {{"ok", "file:///x", CCR_MODE_CSE, 0, ""}, "missing key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ccr_err e;
        ccr_err_clear(&e);
        cr_assert_eq(ccr_config_add(cfg, &cases[i].d, false, &e), -EINVAL, "case %zu", i);
        cr_assert_not_null(strstr(e.msg, cases[i].needle), "case %zu: '%s' lacks '%s'", i, e.msg,
                           cases[i].needle);
        cr_assert_str_eq(e.where, ccr_config_file(cfg), "case %zu", i);
        cr_assert_eq(ccr_config_count(cfg), 0, "case %zu added something", i);
    }
    cr_assert_eq(ccr_config_add(NULL, &cases[0].d, false, NULL), -EINVAL);
    cr_assert_eq(ccr_config_add(cfg, NULL, false, NULL), -EINVAL);
    /* the boundaries that are allowed */
    struct ccr_datastore ok1 = mk("a", "file:///x", CCR_MODE_CCR1, 4096, "/k");
    struct ccr_datastore ok2 = mk("b", "file:///x", CCR_MODE_CCR1, 16u << 20, "/k");
    struct ccr_datastore ok3 = mk("c", "file:///x", CCR_MODE_CSE, 16, "/k");
    struct ccr_datastore ok4 = mk("d", "file:///x", CCR_MODE_CSE, 1u << 30, "/k");
    struct ccr_datastore ok5 = mk("e", "file:///x", CCR_MODE_CSE, 0, "/k");
    cr_assert_eq(ccr_config_add(cfg, &ok1, false, NULL), 0);
    cr_assert_eq(ccr_config_add(cfg, &ok2, false, NULL), 0);
    cr_assert_eq(ccr_config_add(cfg, &ok3, false, NULL), 0);
    cr_assert_eq(ccr_config_add(cfg, &ok4, false, NULL), 0);
    cr_assert_eq(ccr_config_add(cfg, &ok5, false, NULL), 0);
    cr_assert_eq(ccr_config_find(cfg, "e")->region_size, CCR_CSE_CHUNK_DEFAULT64);
    ccr_config_free(cfg);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, load_validation_errors)
{
    char *dir = dp_mkdtemp();
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"{\n  \"version\": 1,\n  oops\n}\n", "line 3"},
        {"{\"version\": 1, \"datastores\": [}", "malformed JSON at line 1"},
        {"", "malformed JSON"},
        {"[]", "must be a JSON object"},
        {"{\"datastores\": []}", "missing field 'version'"},
        {"{\"version\": \"1\"}", "'version' is not an integer"},
        {"{\"version\": 2, \"datastores\": []}", "config version 2 is newer than this ccr"},
        {"{\"version\": 0}", "unsupported config version 0"},
        {"{\"version\": 1, \"version\": 1}", "duplicate"},
        {"{\"version\": 1, \"datastores\": {}}", "'datastores' is not an array"},
        {"{\"version\": 1, \"datastores\": [7]}", "datastores[0] is not an object"},
        {"{\"version\": 1, \"datastores\": [{\"url\": \"file:///x\", \"mode\": \"none\"}]}",
         "datastores[0]: missing field 'name'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": 5}]}", "datastores[0]: field 'name' is not a string"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"mode\": \"none\"}]}",
         "datastore 'x': missing field 'url'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\"}]}",
         "datastore 'x': missing field 'mode'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": 1, \"mode\": \"none\"}]}",
         "datastore 'x': field 'url' is not a string"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"rot13\"}]}",
         "datastore 'x': unknown mode 'rot13'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"cpk\"}]}",
         "datastore 'x': missing field 'key' (mode cpk needs a key file)"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"ccr1\", "
         "\"region_size\": 3000, \"key\": \"/k\"}]}",
         "datastore 'x': bad region size 3000"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"ccr1\", "
         "\"region_size\": -1, \"key\": \"/k\"}]}",
         "datastore 'x': field 'region_size' is not a non-negative integer"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"ccr1\", "
         "\"region_size\": \"1M\", \"key\": \"/k\"}]}",
         "field 'region_size'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"ccr1\"}]}",
         "datastore 'x': missing field 'key'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"ccr1\", "
         "\"key\": 3}]}",
         "datastore 'x': field 'key' is not a string"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"none\", "
         "\"key\": \"/k\"}]}",
         "datastore 'x': mode none takes no key"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"-x\", \"url\": \"file:///x\", \"mode\": \"none\"}]}",
         "invalid datastore name '-x'"},
        {"{\"version\": 1, \"datastores\": [{\"name\": \"x\", \"url\": \"file:///x\", \"mode\": \"none\"}, "
         "{\"name\": \"x\", \"url\": \"file:///y\", \"mode\": \"none\"}]}",
         "datastore 'x' is defined twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_load_error(dir, cases[i].text, cases[i].needle);
    dp_rmtree(dir);
}

Test(dataplane_config, load_tolerates_extra_fields_and_null_key)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "config.json");
    cfg_write(path,
              "{\"version\": 1, \"comment\": {\"a\": [1, 2]}, \"datastores\": ["
              "{\"name\": \"p\", \"url\": \"file:///p\", \"mode\": \"none\", \"key\": null, \"tag\": 1},"
              "{\"name\": \"c\", \"url\": \"file:///c\", \"mode\": \"ccr1\", \"key\": \"/k\", "
              "\"region_size\": null}]}");
    struct ccr_config *cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 2);
    cr_assert_str_eq(ccr_config_at(cfg, 0)->name, "c", "sorted on load");
    cr_assert_eq(ccr_config_at(cfg, 0)->region_size, CCR_CCR1_REGION_DEFAULT);
    cr_assert_null(ccr_config_find(cfg, "p")->key_path);
    ccr_config_free(cfg);
    /* a version with no datastores is an empty config */
    cfg_write(path, "{\"version\": 1}");
    cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 0);
    ccr_config_free(cfg);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, relative_key_path_resolves_against_config_dir)
{
    char *dir = dp_mkdtemp();
    char *sub = dp_path(dir, "sub");
    cr_assert_eq(mkdir(sub, 0700), 0);
    char *path = dp_path(sub, "config.json");
    cfg_write(path, "{\"version\": 1, \"datastores\": [{\"name\": \"r\", \"url\": \"file:///r\", "
                    "\"mode\": \"ccr1\", \"key\": \"keys/r.key\"}]}");
    struct ccr_config *cfg = load_ok(path);
    char *want = dp_path(sub, "keys/r.key");
    cr_assert_str_eq(ccr_config_find(cfg, "r")->key_path, want);
    /* ccr_config_add resolves the same way */
    struct ccr_datastore d = mk("s", "file:///s", CCR_MODE_CSE, 0, "s.key");
    cr_assert_eq(ccr_config_add(cfg, &d, false, NULL), 0);
    char *want2 = dp_path(sub, "s.key");
    cr_assert_str_eq(ccr_config_find(cfg, "s")->key_path, want2);
    ccr_config_free(cfg);

    /* a relative config path is made absolute (and keys follow it) */
    char old[4096];
    cr_assert_not_null(getcwd(old, sizeof(old)));
    cr_assert_eq(chdir(dir), 0);
    cfg = load_ok("sub/config.json");
    cr_assert_str_eq(ccr_config_file(cfg), path);
    cr_assert_str_eq(ccr_config_find(cfg, "r")->key_path, want);
    ccr_config_free(cfg);
    cfg = load_ok("./sub/config.json");
    cr_assert_str_eq(ccr_config_file(cfg), path);
    ccr_config_free(cfg);
    cr_assert_eq(chdir(old), 0);
    free(want);
    free(want2);
    free(path);
    free(sub);
    dp_rmtree(dir);
}

Test(dataplane_config, save_modes_and_no_temp_files)
{
    char *dir = dp_mkdtemp();
    char *path = dp_path(dir, "a/b/config.json");
    struct ccr_config *cfg = load_ok(path);
    struct ccr_datastore d = mk("m", "file:///m", CCR_MODE_NONE, 0, NULL);
    cr_assert_eq(ccr_config_add(cfg, &d, false, NULL), 0);
    mode_t old = umask(022);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_config_save(cfg, &e), 0, "%s", e.msg);
    char *a = dp_path(dir, "a"), *b = dp_path(dir, "a/b");
    cr_assert_eq(mode_of(a), 0700, "created dir mode %o", mode_of(a));
    cr_assert_eq(mode_of(b), 0700, "created dir mode %o", mode_of(b));
    cr_assert_eq(mode_of(path), 0600, "config mode %o", mode_of(path));
    cr_assert_eq(dp_count_entries(b, NULL), 1, "only config.json in the dir after a save");

    /* an existing loose file is replaced by a 0600 one; still no temporary left */
    cr_assert_eq(chmod(path, 0644), 0);
    for (int i = 0; i < 3; i++) {
        struct ccr_datastore x = mk(i == 0   ? "x0"
                                    : i == 1 ? "x1"
                                             : "x2",
                                    "file:///x", CCR_MODE_NONE, 0, NULL);
        cr_assert_eq(ccr_config_add(cfg, &x, false, NULL), 0);
        cr_assert_eq(ccr_config_save(cfg, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(mode_of(path), 0600);
    cr_assert_eq(dp_count_entries(b, NULL), 1);
    cr_assert_eq(dp_count_entries(b, "tmp"), 0);
    ccr_config_free(cfg);
    cfg = load_ok(path);
    cr_assert_eq(ccr_config_count(cfg), 4);
    ccr_config_free(cfg);

    /* an existing directory keeps its mode */
    char *c = dp_path(dir, "c");
    cr_assert_eq(mkdir(c, 0755), 0);
    char *p2 = dp_path(c, "config.json");
    cfg = load_ok(p2);
    cr_assert_eq(ccr_config_save(cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(mode_of(c), 0755);
    cr_assert_eq(mode_of(p2), 0600);
    ccr_config_free(cfg);

    umask(old);
    free(a);
    free(b);
    free(c);
    free(p2);
    free(path);
    dp_rmtree(dir);
}

Test(dataplane_config, parent_that_is_a_file_fails)
{
    char *dir = dp_mkdtemp();
    char *f = dp_path(dir, "file");
    cfg_write(f, "x");
    char *p = dp_path(f, "config.json");
    struct ccr_config *cfg = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_config_load(p, &cfg, &e);
    cr_assert_eq(rc, -ENOTDIR, "rc %d: %s", rc, e.msg);
    cr_assert_null(cfg);
    free(p);
    free(f);
    dp_rmtree(dir);
}

Test(dataplane_config, directory_is_not_a_config)
{
    char *dir = dp_mkdtemp();
    struct ccr_config *cfg = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_config_load(dir, &cfg, &e), -EISDIR);
    cr_assert_str_eq(e.where, dir);
    cr_assert_eq(ccr_config_load("", &cfg, &e), -EINVAL);
    cr_assert_eq(ccr_config_load(NULL, &cfg, &e), -EINVAL);
    dp_rmtree(dir);
}

Test(dataplane_config, path_resolution_order)
{
    char *p = NULL;
    struct ccr_err e;
    setenv("CCR_CONFIG", "/env/ccr.json", 1);
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    cr_assert_eq(ccr_config_path("/explicit.json", &p, &e), 0);
    cr_assert_str_eq(p, "/explicit.json");
    ccr_free(p);
    cr_assert_eq(ccr_config_path(NULL, &p, &e), 0);
    cr_assert_str_eq(p, "/env/ccr.json");
    ccr_free(p);
    cr_assert_eq(ccr_config_path("", &p, &e), 0, "empty explicit = not given");
    cr_assert_str_eq(p, "/env/ccr.json");
    ccr_free(p);
    setenv("CCR_CONFIG", "", 1);
    cr_assert_eq(ccr_config_path(NULL, &p, &e), 0);
    cr_assert_str_eq(p, "/xdg/ccr/config.json");
    ccr_free(p);
    unsetenv("CCR_CONFIG");
    setenv("XDG_CONFIG_HOME", "/xdg/", 1);
    cr_assert_eq(ccr_config_path(NULL, &p, &e), 0);
    cr_assert_str_eq(p, "/xdg/ccr/config.json");
    ccr_free(p);
    setenv("XDG_CONFIG_HOME", "relative/xdg", 1); /* ignored, as the XDG spec says */
    cr_assert_eq(ccr_config_path(NULL, &p, &e), 0);
    cr_assert_str_eq(p, "/home/u/.config/ccr/config.json");
    ccr_free(p);
    unsetenv("XDG_CONFIG_HOME");
    cr_assert_eq(ccr_config_path(NULL, &p, &e), 0);
    cr_assert_str_eq(p, "/home/u/.config/ccr/config.json");
    ccr_free(p);
    unsetenv("HOME");
    p = (char *)0x1;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_config_path(NULL, &p, &e), -ENOENT);
    cr_assert_eq(p, (char *)0x1, "out written on failure");
    cr_assert_not_null(strstr(e.msg, "--config"), "%s", e.msg);
    cr_assert_eq(ccr_config_path("rel.json", &p, &e), 0, "explicit still works without HOME");
    cr_assert_str_eq(p, "rel.json");
    ccr_free(p);
}
