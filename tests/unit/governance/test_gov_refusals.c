/*
 * test_gov_refusals.c - every refusal of the service, with its status and code: envelope checks in the
 * documented order (unsigned, bad signature, request mismatch, stale, unknown and inactive members,
 * replay), ballot rules, contract versions and states, and the clean room's (acceptance, policy,
 * measurement, execution holds, virtual evidence, key binding, a release unreadable to another key).
 */
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

TestSuite(governance_gov_refusals, .init = setup, .fini = teardown, .timeout = 120);

Test(governance_gov_refusals, unsigned_and_bad_signature)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    tg_expect_error(tg_send(t, "POST", "/proposals", NULL, NULL, 0, &ans), &ans, 401, "Unsigned");
    tg_expect_error(tg_send(t, "GET", "/members", NULL, NULL, 0, &ans), &ans, 401, "Unsigned");
    const uint8_t junk[] = "not cbor at all";
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, junk, sizeof(junk), &ans), &ans, 401,
                    "BadSignature");
    struct ccr_gov_request req = {.method = "GET", .path = "/members", .sign_header = "!!!not base64url"};
    struct ccr_gov_response resp = {0};
    cr_assert_eq(ccr_gov_handle(t->g, &req, &resp), 0);
    ans = resp.body;
    tg_expect_error(resp.status, &ans, 401, "BadSignature");

    /* a flipped bit in the signature, then in the payload */
    uint8_t *env = NULL;
    size_t len = 0;
    tg_sign(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", 0, &env, &len);
    env[len - 1] ^= 1;
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), &ans, 401, "BadSignature");
    free(env);
    tg_sign(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", 0, &env, &len);
    uint8_t *p = memmem(env, len, "data", 4);
    cr_assert_not_null(p);
    p[0] = 'D';
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), &ans, 401, "BadSignature");
    free(env);
    /* another member's kid on the operator's signature */
    char line[64];
    tg_request_line(line, sizeof(line), "GET", "/members", NULL);
    const char *pem = ccr_gov_ident_cert_pem(t->m2);
    char actions[8192], pid[32];
    json_t *a = json_pack("[{s:s, s:{s:s}}]", "name", "add_member", "args", "cert", pem);
    char *s = json_dumps(a, JSON_COMPACT);
    snprintf(actions, sizeof(actions), "%s", s);
    free(s);
    json_decref(a);
    tg_propose(t, t->op, actions, pid, "open");
    tg_vote(t, t->op, pid, "accept", "accepted");
    struct ccr_cose_hdr h = {.kid = ccr_gov_ident_id(t->m2),
                             .msg_type = "request",
                             .created_at = (uint64_t)t->now,
                             .request = line};
    cr_assert_eq(ccr_cose_sign1(t->op, &h, NULL, 0, &env, &len), 0);
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "BadSignature");
    free(env);
}

Test(governance_gov_refusals, unknown_and_inactive_members)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    tg_expect_error(tg_call(t, t->stranger, "GET", "/members", NULL, NULL, NULL, NULL, &ans), &ans, 401,
                    "UnknownMember");
    char actions[8192], pid[32];
    json_t *a =
        json_pack("[{s:s, s:{s:s}}]", "name", "add_member", "args", "cert", ccr_gov_ident_cert_pem(t->m2));
    char *s = json_dumps(a, JSON_COMPACT);
    snprintf(actions, sizeof(actions), "%s", s);
    free(s);
    json_decref(a);
    tg_propose(t, t->op, actions, pid, "open");
    /* the same member twice is refused at proposal time */
    char body[9000];
    snprintf(body, sizeof(body), "{\"actions\":%s}", actions);
    tg_vote(t, t->op, pid, "accept", "accepted");
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL, body, &ans), &ans, 400,
                    "BadRequest");
    tg_expect_error(tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", &ans), &ans,
                    403, "InactiveMember");
    cr_assert_eq(tg_call(t, t->m2, "POST", "/members/activate", NULL, "ack", NULL, NULL, NULL), 200);
    cr_assert_eq(tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
    /* unknown action, bad payloads */
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL,
                            "{\"actions\":[{\"name\":\"launch_missiles\",\"args\":{}}]}", &ans),
                    &ans, 400, "BadRequest");
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL, "[1,2]", &ans), &ans, 400,
                    "BadRequest");
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL, "{nope", &ans), &ans, 400,
                    "BadRequest");
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL, NULL, &ans), &ans, 400,
                    "BadRequest");
    tg_expect_error(tg_call(t, t->op, "GET", "/nowhere", NULL, NULL, NULL, NULL, &ans), &ans, 404,
                    "NotFound");
    tg_expect_error(tg_call(t, t->op, "GET", "/proposals/p-99", NULL, NULL, NULL, NULL, &ans), &ans, 404,
                    "NotFound");
    tg_expect_error(
        tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL,
                "{\"actions\":[{\"name\":\"remove_member\",\"args\":{\"member_id\":\"nobody\"}}]}", &ans),
        &ans, 404, "NotFound");
}

Test(governance_gov_refusals, stale_replayed_mismatch)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    uint8_t *env = NULL;
    size_t len = 0;
    tg_sign(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, -301, &env, &len);
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "StaleRequest");
    free(env);
    tg_sign(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, 301, &env, &len);
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "StaleRequest");
    free(env);
    tg_sign(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, -299, &env, &len);
    cr_assert_eq(tg_send(t, "GET", "/members", NULL, env, len, NULL), 200);
    /* the same envelope again */
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "ReplayedRequest");
    /* still refused later on, while it is within the skew; then it is stale */
    t->now += 200;
    tg_expect_error(tg_send(t, "GET", "/members", NULL, env, len, &ans), &ans, 401, "StaleRequest");
    free(env);
    /* a failed request's envelope is used up too */
    tg_sign(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":7}", 0, &env, &len);
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), &ans, 400, "BadRequest");
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, env, len, &ans), &ans, 401, "ReplayedRequest");
    free(env);
    /* signed for another request */
    tg_sign(t, t->op, "GET", "/members", NULL, NULL, NULL, NULL, 0, &env, &len);
    tg_expect_error(tg_send(t, "GET", "/proposals", NULL, env, len, &ans), &ans, 401, "RequestMismatch");
    tg_expect_error(tg_send(t, "GET", "/members", "x=1", env, len, &ans), &ans, 401, "RequestMismatch");
    tg_expect_error(tg_send(t, "DELETE", "/members", NULL, env, len, &ans), &ans, 401, "RequestMismatch");
    free(env);
    tg_sign(t, t->op, "GET", "/proposals", "state=open", NULL, NULL, NULL, 0, &env, &len);
    tg_expect_error(tg_send(t, "GET", "/proposals", "state=closed", env, len, &ans), &ans, 401,
                    "RequestMismatch");
    cr_assert_eq(tg_send(t, "GET", "/proposals", "state=open", env, len, NULL), 200);
    free(env);
    /* too large */
    uint8_t *big = calloc(1, (1u << 20) + 1);
    tg_expect_error(tg_send(t, "PUT", "/contracts/c1", NULL, big, (1u << 20) + 1, &ans), &ans, 413,
                    "TooLarge");
    free(big);
}

Test(governance_gov_refusals, ballots_and_contract_versions)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    cr_assert_eq(tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
    tg_expect_error(tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", &ans), &ans,
                    412, "VersionMismatch");
    tg_expect_error(
        tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"version\":0,\"data\":{}}", &ans),
        &ans, 412, "VersionMismatch");
    tg_expect_error(
        tg_call(t, t->op, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":2}", &ans),
        &ans, 412, "VersionMismatch");
    tg_expect_error(
        tg_call(t, t->op, "POST", "/contracts/c9/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        &ans, 404, "NotFound");
    /* policy before acceptance */
    tg_expect_error(tg_call(t, t->op, "POST", "/proposals", NULL, "proposal", NULL,
                            "{\"actions\":[{\"name\":\"enable_logging\",\"args\":{\"contract_id\":\"c1\"}}]}",
                            &ans),
                    &ans, 409, "ContractNotAccepted");
    tg_expect_error(
        tg_call(t, t->op, "POST", "/contracts/c1/execution/disable", NULL, NULL, NULL, NULL, &ans), &ans, 409,
        "ContractNotAccepted");
    cr_assert_eq(
        tg_call(t, t->op, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        201);
    char pid[32], path[64];
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_expect_error(
        tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"version\":1,\"data\":{}}", &ans),
        &ans, 409, "ContractNotDraft");
    tg_expect_error(
        tg_call(t, t->op, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        &ans, 409, "ContractNotDraft");
    snprintf(path, sizeof(path), "/proposals/%s/ballots", pid);
    /* the proposal id in the header must be the one in the path */
    tg_expect_error(tg_call(t, t->op, "POST", path, NULL, "ballot", "p-77", "{\"vote\":\"accept\"}", &ans),
                    &ans, 401, "RequestMismatch");
    tg_expect_error(tg_call(t, t->op, "POST", path, NULL, "ballot", pid, "{\"vote\":\"maybe\"}", &ans), &ans,
                    400, "BadRequest");
    /* add a second member so that one vote does not close it */
    char actions[8192], pid2[32];
    json_t *a =
        json_pack("[{s:s, s:{s:s}}]", "name", "add_member", "args", "cert", ccr_gov_ident_cert_pem(t->m2));
    char *s = json_dumps(a, JSON_COMPACT);
    snprintf(actions, sizeof(actions), "%s", s);
    free(s);
    json_decref(a);
    tg_propose(t, t->op, actions, pid2, "open");
    tg_vote(t, t->op, pid2, "accept", "accepted");
    cr_assert_eq(tg_call(t, t->m2, "POST", "/members/activate", NULL, "ack", NULL, NULL, NULL), 200);
    tg_vote(t, t->op, pid, "accept", "open");
    tg_expect_error(tg_call(t, t->op, "POST", path, NULL, "ballot", pid, "{\"vote\":\"accept\"}", &ans), &ans,
                    409, "AlreadyVoted");
    tg_vote(t, t->m2, pid, "accept", "accepted");
    tg_expect_error(tg_call(t, t->m2, "POST", path, NULL, "ballot", pid, "{\"vote\":\"reject\"}", &ans), &ans,
                    409, "ProposalNotOpen");
    snprintf(path, sizeof(path), "/proposals/%s/ballots", pid2);
    tg_expect_error(tg_call(t, t->m2, "POST", path, NULL, "ballot", pid2, "{\"vote\":\"accept\"}", &ans),
                    &ans, 409, "ProposalNotOpen");
    /* the accepted contract never changes */
    tg_expect_error(tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL,
                            "{\"version\":1,\"data\":{\"y\":2}}", &ans),
                    &ans, 409, "ContractNotDraft");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_eq(json_object_size(json_object_get(ans, "data")), 0);
    json_decref(ans);
}

Test(governance_gov_refusals, cleanroom)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    struct ccr_gov_ephkey *k = NULL, *other = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    cr_assert_eq(ccr_gov_ephkey_generate(&other), 0);
    uint8_t meas[32], wrong[32];
    char hex[65];
    tg_measure(TG_SPEC, meas, hex);
    memcpy(wrong, meas, 32);
    wrong[0] ^= 0xff;
    const char *rel = "{\"contract_id\":\"c1\",\"secret\":\"kek\"}";

    /* release before acceptance */
    cr_assert_eq(tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "PolicyNotSet");
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release",
                               "{\"contract_id\":\"nope\",\"secret\":\"kek\"}", &ans),
                    &ans, 404, "NotFound");
    /* accepted but no policy */
    cr_assert_eq(
        tg_call(t, t->op, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        201);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "accepted");
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "PolicyNotSet");
    char actions[512];
    snprintf(
        actions, sizeof(actions),
        "[{\"name\":\"set_cleanroom_policy\",\"args\":{\"contract_id\":\"c1\",\"measurements\":[\"%s\"]}}]",
        hex);
    tg_propose(t, t->op, actions, pid, "open");
    tg_vote(t, t->op, pid, "accept", "accepted");
    /* no secret yet */
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 404,
                    "NotFound");
    char b64[64], body[128];
    cr_assert(ccr_base64_encode("top secret", 10, b64, sizeof(b64)) > 0);
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}", b64);
    cr_assert_eq(tg_call(t, t->op, "PUT", "/contracts/c1/secrets/kek", NULL, NULL, NULL, body, NULL), 200);
    /* wrong measurement */
    tg_expect_error(tg_cr_call(t, k, k, wrong, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "MeasurementMismatch");
    /* evidence binding another key than the one that signs */
    tg_expect_error(tg_cr_call(t, k, other, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "AttestationFailed");
    /* execution disabled */
    cr_assert_eq(tg_call(t, t->op, "POST", "/contracts/c1/execution/disable", NULL, NULL, NULL, NULL, NULL),
                 200);
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "ExecutionDisabled");
    cr_assert_eq(tg_call(t, t->op, "POST", "/contracts/c1/execution/enable", NULL, NULL, NULL, NULL, NULL),
                 200);
    /* released to k: another key cannot read it, k can */
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), 200);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cr_assert_eq(tg_open_release(ans, other, "c1/kek", &plain, &plain_len), -EBADMSG);
    cr_assert_eq(tg_open_release(ans, k, "c1/other", &plain, &plain_len), -EBADMSG);
    cr_assert_eq(tg_open_release(ans, k, "c1/kek", &plain, &plain_len), 0);
    cr_assert_eq(plain_len, 10);
    cr_assert_eq(memcmp(plain, "top secret", 10), 0);
    free(plain);
    json_decref(ans);
    /* a member envelope on a clean room route is not evidence */
    tg_expect_error(tg_call(t, t->op, "POST", "/cleanroom/keys/release", NULL, "cleanroom", NULL, rel, &ans),
                    &ans, 403, "AttestationFailed");

    /* the same service without --allow-virtual-attestation */
    ccr_gov_close(t->g);
    t->allow_virtual = false;
    tg_open(t);
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release", rel, &ans), &ans, 403,
                    "VirtualNotAllowed");
    ccr_gov_ephkey_destroy(k);
    ccr_gov_ephkey_destroy(other);
}
