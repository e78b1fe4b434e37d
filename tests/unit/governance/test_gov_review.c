/*
 * test_gov_review.c - what the first review of the service found: a replay through the malleated twin
 * of an ECDSA signature, paths that were normalised instead of refused, the refusal of a key release
 * recorded as an audit event, the clean room forging service events, and a full disk answered 500 with
 * the state unchanged.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "gov_int.h"
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

TestSuite(governance_gov_review, .init = setup, .fini = teardown, .timeout = 120);

/* Rewrites the envelope's signature (its last 96 bytes, r || s) into (r, n - s): as valid as the first. */
static void malleate(uint8_t *env, size_t len)
{
    uint8_t *s = env + len - 48;
    EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_secp384r1);
    BIGNUM *bs = BN_bin2bn(s, 48, NULL), *neg = BN_new();
    cr_assert(grp && bs && neg);
    cr_assert_eq(BN_sub(neg, EC_GROUP_get0_order(grp), bs), 1);
    cr_assert_eq(BN_bn2binpad(neg, s, 48), 48);
    BN_free(bs);
    BN_free(neg);
    EC_GROUP_free(grp);
}

Test(governance_gov_review, malleated_signature_is_a_replay)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    uint8_t *env = NULL;
    size_t len = 0;
    tg_sign(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", 0, &env, &len);
    cr_assert_eq(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), 201, "%s", tg_code(ans));
    json_decref(ans);

    /* the twin verifies: only the replay check can refuse it */
    malleate(env, len);
    struct ccr_cose_msg m;
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);
    cr_assert_eq(ccr_cose_verify(&m, t->op, NULL), 0);
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), &ans, 401, "ReplayedRequest");
    free(env);

    /* the same for a read, in the header */
    tg_sign(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, 0, &env, &len);
    cr_assert_eq(tg_send(t, "GET", "/members", NULL, env, len, NULL), 200);
    malleate(env, len);
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "ReplayedRequest");
    free(env);
}

Test(governance_gov_review, paths_are_not_normalised)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    cr_assert_eq(tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
    const char *bad[] = {
        "/members/",       "//members",           "/contracts//c1",  "/contracts/c1/",
        "/contracts/./c1", "/contracts/c1/../c1", "/contracts/c%31", "/proposals/p-1/ballots/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        tg_expect_error(tg_call(t, t->op, "GET", bad[i], NULL, NULL, NULL, NULL, &ans), &ans, 404,
                        "NotFound");
    /* a clean room path with a dot segment does not reach a member route either */
    struct ccr_gov_ephkey *k = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    uint8_t meas[32];
    char hex[65];
    tg_measure(TG_SPEC, meas, hex);
    tg_expect_error(tg_cr_call(t, k, k, meas, "GET", "/cleanroom/../members", NULL, &ans), &ans, 404,
                    "NotFound");
    ccr_gov_ephkey_destroy(k);
    /* a path that is not UTF-8 is still answered, not failed */
    tg_expect_error(tg_call(t, t->op, "GET", "/nowhere\xff\xfe", NULL, NULL, NULL, NULL, &ans), &ans, 404,
                    "NotFound");
    /* the good ones still answer */
    cr_assert_eq(tg_call(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, NULL), 200);
    cr_assert_eq(tg_call(t, t->op, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, NULL), 200);
}

/* The events of c1 (an array the caller json_decref's). */
static json_t *events_of_c1(struct tg *t)
{
    json_t *ans = NULL;
    cr_assert_eq(tg_call(t, t->op, "GET", "/contracts/c1/events", "limit=1000", NULL, NULL, NULL, &ans), 200);
    json_t *ev = json_incref(json_object_get(ans, "events"));
    json_decref(ans);
    return ev;
}

Test(governance_gov_review, refused_release_is_an_event)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    tg_accepted_contract(t, true, true);
    uint8_t meas[32], other[32] = {1};
    char hex[65];
    tg_measure(TG_SPEC, meas, hex);
    struct ccr_gov_ephkey *k = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    cr_assert_eq(tg_call(t, t->op, "POST", "/contracts/c1/execution/disable", NULL, NULL, NULL, NULL, NULL),
                 200);
    const char *rel = "{\"contract_id\":\"c1\",\"secret\":\"kek\"}";
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "ExecutionDisabled");
    json_t *ev = events_of_c1(t);
    cr_assert_eq(json_array_size(ev), 1);
    json_t *e = json_array_get(ev, 0);
    cr_assert_str_eq(tg_str(e, "type"), "key_release_refused");
    char src[128];
    snprintf(src, sizeof(src), "cleanroom:%s", hex);
    cr_assert_str_eq(tg_str(e, "source"), src);
    json_t *d = json_object_get(e, "data");
    cr_assert_str_eq(tg_str(d, "secret"), "kek");
    cr_assert_not_null(strstr(tg_str(d, "reason"), ccr_gov_ident_id(t->op)), "reason names the holder");
    cr_assert(json_is_true(json_object_get(d, "virtual")));
    char *dump = json_dumps(d, 0);
    cr_assert_null(strstr(dump, "top secret"));
    free(dump);
    json_decref(ev);

    /* not recorded for a clean room the policy does not admit */
    tg_expect_error(tg_cr_call(t, k, k, other, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "MeasurementMismatch");
    ev = events_of_c1(t);
    cr_assert_eq(json_array_size(ev), 1);
    json_decref(ev);

    /* nor may the clean room write such an event itself */
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/events",
                               "{\"contract_id\":\"c1\",\"type\":\"key_release_refused\",\"data\":{}}", &ans),
                    &ans, 400, "BadRequest");
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/events",
                               "{\"contract_id\":\"c1\",\"type\":\"bad type\\n\",\"data\":{}}", &ans),
                    &ans, 400, "BadRequest");

    /* the refusal is in the log, which still verifies */
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(t->g, &rep), 0);
    json_decref(rep);
    ccr_gov_ephkey_destroy(k);
}

Test(governance_gov_review, full_disk_answers_500_and_changes_nothing)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    /* no page may be added to the database */
    sqlite3 *db = t->g->db;
    cr_assert_eq(sqlite3_exec(db, "PRAGMA max_page_count = 1", NULL, NULL, NULL), SQLITE_OK);
    char *big = malloc(300000);
    int n = snprintf(big, 300000, "{\"data\":{\"blob\":\"");
    memset(big + n, 'x', 200000);
    snprintf(big + n + 200000, 300000 - (size_t)n - 200000, "\"}}");
    tg_expect_error(tg_call(t, t->op, "PUT", "/contracts/big", NULL, NULL, NULL, big, &ans), &ans, 500,
                    "InternalError");
    free(big);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA max_page_count = 1000000", NULL, NULL, NULL), SQLITE_OK);
    tg_expect_error(tg_call(t, t->op, "GET", "/contracts/big", NULL, NULL, NULL, NULL, &ans), &ans, 404,
                    "NotFound");
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(t->g, &rep), 0);
    cr_assert_eq(json_integer_value(json_object_get(rep, "entries")), 1);
    json_decref(rep);
    /* and the service goes on */
    cr_assert_eq(tg_call(t, t->op, "PUT", "/contracts/small", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
}
