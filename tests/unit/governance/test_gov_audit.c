/*
 * test_gov_audit.c - the log and its verification: a good database verifies; a table row edited with
 * sqlite3 behind the service's back is named; an edited log entry is named as a broken hash; the sealed
 * secret never appears in the log; a reopen keeps everything; concurrent requests from 8 threads all
 * commit with their log entries.
 */
#include <pthread.h>
#include <sqlite3.h>

#include "test_gov.h"

static struct tg T;

static void setup(void)
{
    tg_setup(&T, true);
}

static void teardown(void)
{
    tg_teardown(&T);
}

TestSuite(governance_gov_audit, .init = setup, .fini = teardown, .timeout = 120);

static void db_exec(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/gov.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    cr_assert_eq(sqlite3_changes(db), 1, "%s changed one row", sql);
    sqlite3_close(db);
}

static bool has_problem(const json_t *rep, const char *needle)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "problems"), i, p)
    {
        if (strstr(json_string_value(p), needle))
            return true;
    }
    return false;
}

Test(governance_gov_audit, good_db_verifies_and_secret_not_logged)
{
    tg_accepted_contract(&T, true, true);
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), 0);
    cr_assert(json_is_true(json_object_get(rep, "ok")));
    cr_assert_eq(json_integer_value(json_object_get(rep, "entries")), 9);
    json_t *info = ccr_gov_service_info(T.g);
    cr_assert_str_eq(tg_str(rep, "head"), tg_str(json_object_get(info, "log_head"), "hash"));
    json_decref(info);
    json_decref(rep);
    /* the secret's image holds a hash of its sealed bytes, never the value */
    json_t *ans = NULL;
    cr_assert_eq(tg_call(&T, T.op, "GET", "/audit", "from=9", NULL, NULL, NULL, &ans), 200);
    json_t *e = json_array_get(json_object_get(ans, "entries"), 0);
    cr_assert_str_eq(tg_str(e, "action"), "secret.put");
    json_t *row =
        json_object_get(json_array_get(json_object_get(json_object_get(e, "data"), "rows"), 0), "row");
    cr_assert_eq(strlen(tg_str(row, "sealed_sha256")), 64);
    char *dump = json_dumps(ans, 0);
    char b64[64];
    cr_assert(ccr_base64_encode("top secret", 10, b64, sizeof(b64)) > 0);
    cr_assert_null(strstr(dump, b64));
    cr_assert_null(strstr(dump, "top secret"));
    free(dump);
    json_decref(ans);
}

Test(governance_gov_audit, edited_row_is_found)
{
    tg_accepted_contract(&T, true, false);
    db_exec(T.data, "UPDATE policies SET measurements = '[\""
                    "0000000000000000000000000000000000000000000000000000000000000000"
                    "\"]' WHERE contract_id = 'c1'");
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), -EBADMSG);
    cr_assert(json_is_false(json_object_get(rep, "ok")));
    cr_assert(has_problem(rep, "table policies: row c1 differs"), "%s", json_dumps(rep, 0));
    cr_assert_eq(json_array_size(json_object_get(rep, "problems")), 1);
    json_decref(rep);
    /* a row added behind the service's back */
    db_exec(T.data,
            "INSERT INTO members (member_id, name, status, cert, created_at) VALUES ('evil', 'x', 'active', "
            "'', '')");
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), -EBADMSG);
    cr_assert(has_problem(rep, "table members: row evil is not in the log"));
    json_decref(rep);
    /* the route reports it too */
    json_t *ans = NULL;
    cr_assert_eq(tg_call(&T, T.op, "GET", "/audit/verify", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert(json_is_false(json_object_get(ans, "ok")));
    json_decref(ans);
}

Test(governance_gov_audit, edited_log_entry_is_a_broken_hash)
{
    tg_accepted_contract(&T, false, false);
    db_exec(T.data, "UPDATE log SET actor = 'someone-else' WHERE seq = 2");
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), -EBADMSG);
    cr_assert(has_problem(rep, "log entry 2: broken hash"), "%s", json_dumps(rep, 0));
    json_decref(rep);
}

Test(governance_gov_audit, deleted_log_entry_is_found)
{
    tg_accepted_contract(&T, false, false);
    db_exec(T.data, "DELETE FROM log WHERE seq = 3");
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), -EBADMSG);
    cr_assert(has_problem(rep, "log entry 4"), "%s", json_dumps(rep, 0));
    json_decref(rep);
}

Test(governance_gov_audit, reopen_keeps_everything)
{
    tg_accepted_contract(&T, true, true);
    json_t *before = ccr_gov_service_info(T.g);
    ccr_gov_close(T.g);
    T.g = NULL;
    tg_open(&T);
    json_t *after = ccr_gov_service_info(T.g);
    cr_assert(json_equal(json_object_get(before, "log_head"), json_object_get(after, "log_head")));
    json_decref(before);
    json_decref(after);
    json_t *ans = NULL;
    cr_assert_eq(tg_call(&T, T.op, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "accepted");
    json_decref(ans);
    /* the sealed secret still opens under the reloaded sealing key */
    struct ccr_gov_ephkey *k = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    uint8_t meas[32];
    char hex[65];
    tg_measure(TG_SPEC, meas, hex);
    cr_assert_eq(tg_cr_call(&T, k, k, meas, "POST", "/cleanroom/keys/release",
                            "{\"contract_id\":\"c1\",\"secret\":\"kek\"}", &ans),
                 200, "%s", tg_code(ans));
    uint8_t *plain = NULL;
    size_t n = 0;
    cr_assert_eq(tg_open_release(ans, k, "c1/kek", &plain, &n), 0);
    cr_assert_eq(n, 10);
    free(plain);
    json_decref(ans);
    ccr_gov_ephkey_destroy(k);
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), 0);
    json_decref(rep);
}

struct worker {
    int idx;
    int ok;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/contracts/t%d-%d", w->idx, i);
        uint8_t *env = NULL;
        size_t len = 0;
        char line[128];
        snprintf(line, sizeof(line), "PUT %s", path);
        struct ccr_cose_hdr h = {.kid = ccr_gov_ident_id(T.op),
                                 .msg_type = "request",
                                 .created_at = (uint64_t)T.now,
                                 .request = line};
        if (ccr_cose_sign1(T.op, &h, (const uint8_t *)"{\"data\":{}}", 11, &env, &len) != 0)
            continue;
        struct ccr_gov_request req = {.method = "PUT", .path = path, .body = env, .body_len = len};
        struct ccr_gov_response resp = {0};
        if (ccr_gov_handle(T.g, &req, &resp) == 0 && resp.status == 201)
            w->ok++;
        json_decref(resp.body);
        free(env);
    }
    return NULL;
}

Test(governance_gov_audit, eight_threads)
{
    pthread_t th[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.idx = i};
        cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].ok, 5, "thread %d: %d of 5", i, w[i].ok);
    }
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(T.g, &rep), 0);
    cr_assert_eq(json_integer_value(json_object_get(rep, "entries")), 41);
    json_decref(rep);
}
