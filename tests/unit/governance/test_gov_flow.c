/*
 * test_gov_flow.c - the whole three-member flow through ccr_gov_handle: the operator adds two members,
 * they activate, a contract is created, updated, proposed and accepted, a deployment spec and a policy
 * are accepted, a secret is deposited, a virtual clean room asks for consent and gets the key (decrypted
 * with its ephemeral key), events are paged, a document is accepted and read by the clean room, logging
 * options and execution holds change what the clean room is told, and the audit verifies.
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

TestSuite(governance_gov_flow, .init = setup, .fini = teardown, .timeout = 120);

static void add_members(struct tg *t)
{
    char actions[16384], pid[32];
    json_t *a = json_pack("[{s:s, s:{s:s}}, {s:s, s:{s:s, s:s}}]", "name", "add_member", "args", "cert",
                          ccr_gov_ident_cert_pem(t->m2), "name", "add_member", "args", "cert",
                          ccr_gov_ident_cert_pem(t->m3), "name", "Contoso Ltd");
    char *s = json_dumps(a, JSON_COMPACT);
    snprintf(actions, sizeof(actions), "%s", s);
    free(s);
    json_decref(a);
    tg_propose(t, t->op, actions, pid, "open");
    cr_assert_str_eq(pid, "p-1");
    tg_vote(t, t->op, pid, "accept", "accepted");
}

Test(governance_gov_flow, three_members)
{
    struct tg *t = &T;
    json_t *ans = NULL;

    /* service info, unsigned */
    struct ccr_gov_request req = {.method = "GET", .path = "/service"};
    struct ccr_gov_response resp = {0};
    cr_assert_eq(ccr_gov_handle(t->g, &req, &resp), 0);
    cr_assert_eq(resp.status, 200);
    cr_assert(json_is_true(json_object_get(resp.body, "virtual_attestation_allowed")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(resp.body, "log_head"), "seq")), 1);
    cr_assert_str_eq(tg_str(resp.body, "time"), "2026-11-18T11:06:40Z");
    json_decref(resp.body);

    add_members(t);
    /* accepted, not active yet */
    tg_expect_error(tg_call(t, t->m2, "GET", "/members", NULL, NULL, NULL, NULL, &ans), &ans, 403,
                    "InactiveMember");
    cr_assert_eq(tg_call(t, t->m2, "POST", "/members/activate", NULL, "ack", NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "status"), "active");
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m3, "POST", "/members/activate", NULL, "ack", NULL, NULL, &ans), 200);
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m2, "GET", "/members", NULL, NULL, NULL, NULL, &ans), 200);
    json_t *ms = json_object_get(ans, "members");
    cr_assert_eq(json_array_size(ms), 3);
    size_t i;
    json_t *m;
    int active = 0;
    json_array_foreach(ms, i, m)
    {
        active += strcmp(tg_str(m, "status"), "active") == 0;
        if (strcmp(tg_str(m, "member_id"), ccr_gov_ident_id(t->m3)) == 0)
            cr_assert_str_eq(tg_str(m, "name"), "Contoso Ltd");
        if (strcmp(tg_str(m, "member_id"), ccr_gov_ident_id(t->m2)) == 0)
            cr_assert_str_eq(tg_str(m, "name"), "northwind");
    }
    cr_assert_eq(active, 3);
    json_decref(ans);

    /* contract: create, update, stale update, propose, votes */
    cr_assert_eq(
        tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{\"parties\":[1]}}", &ans),
        201);
    cr_assert_eq(json_integer_value(json_object_get(ans, "version")), 1);
    cr_assert_str_eq(tg_str(ans, "state"), "draft");
    cr_assert_str_eq(tg_str(ans, "created_by"), ccr_gov_ident_id(t->m2));
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m3, "PUT", "/contracts/c1", NULL, NULL, NULL,
                         "{\"version\":1,\"data\":{\"parties\":[1,2]}}", &ans),
                 200);
    cr_assert_eq(json_integer_value(json_object_get(ans, "version")), 2);
    json_decref(ans);
    tg_expect_error(tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL,
                            "{\"version\":1,\"data\":{\"parties\":[]}}", &ans),
                    &ans, 412, "VersionMismatch");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts", "state=draft", NULL, NULL, NULL, &ans), 200);
    cr_assert_eq(json_array_size(json_object_get(ans, "contracts")), 1);
    json_decref(ans);
    cr_assert_eq(
        tg_call(t, t->m2, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":2}", &ans),
        201);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    cr_assert_str_eq(tg_str(ans, "state"), "open");
    cr_assert_str_eq(tg_str(json_array_get(json_object_get(ans, "actions"), 0), "name"), "set_contract");
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "proposed");
    cr_assert_str_eq(tg_str(ans, "proposal_id"), pid);
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/proposals", "state=open", NULL, NULL, NULL, &ans), 200);
    cr_assert_eq(json_array_size(json_object_get(ans, "proposals")), 1);
    json_decref(ans);
    tg_vote(t, t->m3, pid, "accept", "accepted");
    cr_assert_eq(tg_call(t, t->m3, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "accepted");
    cr_assert_eq(json_integer_value(json_object_get(ans, "version")), 2);
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m3, "GET", "/proposals/p-2", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_eq(json_object_size(json_object_get(ans, "ballots")), 3);
    cr_assert_str_eq(tg_str(ans, "closed_at"), "2026-11-18T11:06:40Z");
    json_decref(ans);

    /* deployment spec and policy, voted by all three */
    tg_expect_error(tg_call(t, t->m2, "GET", "/contracts/c1/deployment", NULL, NULL, NULL, NULL, &ans), &ans,
                    404, "NotFound");
    uint8_t meas[32];
    char hex[65], actions[2048];
    tg_measure(TG_SPEC, meas, hex);
    snprintf(actions, sizeof(actions),
             "[{\"name\":\"set_deployment_spec\",\"args\":{\"contract_id\":\"c1\",\"spec\":%s}}]", TG_SPEC);
    tg_propose(t, t->m2, actions, pid, "open");
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "accept", "accepted");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1/deployment", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "measurement"), hex);
    json_decref(ans);
    snprintf(
        actions, sizeof(actions),
        "[{\"name\":\"set_cleanroom_policy\",\"args\":{\"contract_id\":\"c1\",\"measurements\":[\"%s\"]}}]",
        hex);
    tg_propose(t, t->m3, actions, pid, "open");
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "accept", "accepted");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1/policy", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(ans, "measurements"), 0)), hex);
    json_decref(ans);

    /* runtime: execution on, logging and telemetry off */
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1/runtime", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert(json_is_true(json_object_get(json_object_get(ans, "execution"), "enabled")));
    cr_assert_str_eq(tg_str(ans, "logging"), "disabled");
    cr_assert_str_eq(tg_str(ans, "telemetry"), "disabled");
    json_decref(ans);

    /* secrets: northwind deposits; contoso may not replace it; values never listed */
    char b64[64], body[256];
    cr_assert(ccr_base64_encode("the northwind KEK", 17, b64, sizeof(b64)) > 0);
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}", b64);
    cr_assert_eq(
        tg_call(t, t->m2, "PUT", "/contracts/c1/secrets/kek-northwind", NULL, NULL, NULL, body, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "owner"), ccr_gov_ident_id(t->m2));
    json_decref(ans);
    tg_expect_error(
        tg_call(t, t->m3, "PUT", "/contracts/c1/secrets/kek-northwind", NULL, NULL, NULL, body, &ans), &ans,
        403, "Forbidden");
    cr_assert_eq(tg_call(t, t->m3, "GET", "/contracts/c1/secrets", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_eq(json_array_size(json_object_get(ans, "secrets")), 1);
    json_t *sec = json_array_get(json_object_get(ans, "secrets"), 0);
    cr_assert_str_eq(tg_str(sec, "name"), "kek-northwind");
    cr_assert_null(json_object_get(sec, "value"));
    char *dump = json_dumps(ans, 0);
    cr_assert_null(strstr(dump, b64));
    free(dump);
    json_decref(ans);

    /* the clean room: consent, key release */
    struct ccr_gov_ephkey *k = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/consent",
                            "{\"contract_id\":\"c1\",\"action\":\"execution\"}", &ans),
                 200, "%s", tg_code(ans));
    cr_assert(json_is_true(json_object_get(ans, "allowed")));
    json_decref(ans);
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/consent",
                            "{\"contract_id\":\"c1\",\"action\":\"logging\"}", &ans),
                 200);
    cr_assert(json_is_false(json_object_get(ans, "allowed")));
    json_decref(ans);
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release",
                            "{\"contract_id\":\"c1\",\"secret\":\"kek-northwind\"}", &ans),
                 200, "%s", tg_code(ans));
    cr_assert(json_is_true(json_object_get(ans, "virtual")));
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cr_assert_eq(tg_open_release(ans, k, "c1/kek-northwind", &plain, &plain_len), 0);
    cr_assert_eq(plain_len, 17);
    cr_assert_eq(memcmp(plain, "the northwind KEK", 17), 0);
    free(plain);
    json_decref(ans);

    /* events: three of the clean room's own, then paging */
    for (int e = 0; e < 3; e++) {
        char ev[128];
        snprintf(ev, sizeof(ev), "{\"contract_id\":\"c1\",\"type\":\"progress\",\"data\":{\"step\":%d}}", e);
        cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/events", ev, &ans), 200);
        cr_assert_eq(json_integer_value(json_object_get(ans, "seq")), 4 + e);
        json_decref(ans);
    }
    cr_assert_eq(tg_call(t, t->op, "GET", "/contracts/c1/events", "limit=2", NULL, NULL, NULL, &ans), 200);
    json_t *evs = json_object_get(ans, "events");
    cr_assert_eq(json_array_size(evs), 2);
    cr_assert_str_eq(tg_str(json_array_get(evs, 0), "type"), "consent");
    cr_assert(json_is_true(json_object_get(json_object_get(json_array_get(evs, 0), "data"), "virtual")));
    cr_assert_eq(strncmp(tg_str(json_array_get(evs, 0), "source"), "cleanroom:", 10), 0);
    cr_assert_str_eq(tg_str(json_array_get(evs, 0), "source") + 10, hex);
    cr_assert_eq(json_integer_value(json_object_get(ans, "next")), 3);
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->op, "GET", "/contracts/c1/events", "from=3&limit=10", NULL, NULL, NULL, &ans),
                 200);
    evs = json_object_get(ans, "events");
    cr_assert_eq(json_array_size(evs), 4);
    cr_assert_str_eq(tg_str(json_array_get(evs, 0), "type"), "key_released");
    cr_assert(json_is_true(json_object_get(json_object_get(json_array_get(evs, 0), "data"), "virtual")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_array_get(evs, 3), "data"), "step")),
                 2);
    cr_assert(json_is_null(json_object_get(ans, "next")));
    json_decref(ans);
    tg_expect_error(tg_call(t, t->op, "GET", "/contracts/c1/events", "limit=1001", NULL, NULL, NULL, &ans),
                    &ans, 400, "BadRequest");

    /* documents */
    cr_assert_eq(tg_call(t, t->m2, "PUT", "/documents/d1", NULL, NULL, NULL,
                         "{\"contract_id\":\"c1\",\"data\":\"hello clean room\"}", &ans),
                 201);
    json_decref(ans);
    tg_expect_error(tg_cr_call(t, k, k, meas, "GET", "/cleanroom/documents/d1", NULL, &ans), &ans, 404,
                    "NotFound");
    cr_assert_eq(
        tg_call(t, t->m2, "POST", "/documents/d1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        201);
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "accept", "accepted");
    cr_assert_eq(tg_call(t, t->m3, "GET", "/documents/d1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "accepted");
    json_decref(ans);
    cr_assert_eq(tg_cr_call(t, k, k, meas, "GET", "/cleanroom/documents/d1", NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "data"), "hello clean room");
    json_decref(ans);

    /* logging: enabling needs every vote; disabling passes at creation */
    tg_propose(t, t->m2, "[{\"name\":\"enable_logging\",\"args\":{\"contract_id\":\"c1\"}}]", pid, "open");
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "accept", "accepted");
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/consent",
                            "{\"contract_id\":\"c1\",\"action\":\"logging\"}", &ans),
                 200);
    cr_assert(json_is_true(json_object_get(ans, "allowed")));
    json_decref(ans);
    tg_propose(t, t->m3, "[{\"name\":\"disable_logging\",\"args\":{\"contract_id\":\"c1\"}}]", pid,
               "accepted");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1/runtime", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "logging"), "disabled");
    json_decref(ans);

    /* execution holds: contoso disables, only contoso can lift its hold */
    cr_assert_eq(tg_call(t, t->m3, "POST", "/contracts/c1/execution/disable", NULL, NULL, NULL, NULL, &ans),
                 200);
    cr_assert(json_is_false(json_object_get(json_object_get(ans, "execution"), "enabled")));
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m2, "POST", "/contracts/c1/execution/enable", NULL, NULL, NULL, NULL, &ans),
                 200);
    cr_assert(json_is_false(json_object_get(json_object_get(ans, "execution"), "enabled")));
    cr_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(ans, "execution"), "disabled_by"), 0)),
                     ccr_gov_ident_id(t->m3));
    json_decref(ans);
    tg_expect_error(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release",
                               "{\"contract_id\":\"c1\",\"secret\":\"kek-northwind\"}", &ans),
                    &ans, 403, "ExecutionDisabled");
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/consent",
                            "{\"contract_id\":\"c1\",\"action\":\"execution\"}", &ans),
                 200);
    cr_assert(json_is_false(json_object_get(ans, "allowed")));
    cr_assert_not_null(strstr(tg_str(ans, "reason"), ccr_gov_ident_id(t->m3)), "the reason names the holder");
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m3, "POST", "/contracts/c1/execution/enable", NULL, NULL, NULL, NULL, &ans),
                 200);
    cr_assert(json_is_true(json_object_get(json_object_get(ans, "execution"), "enabled")));
    json_decref(ans);
    cr_assert_eq(tg_cr_call(t, k, k, meas, "POST", "/cleanroom/keys/release",
                            "{\"contract_id\":\"c1\",\"secret\":\"kek-northwind\"}", &ans),
                 200);
    json_decref(ans);
    ccr_gov_ephkey_destroy(k);

    /* the audit: listing pages, verify from the route and the API agree */
    cr_assert_eq(tg_call(t, t->m2, "GET", "/audit", "limit=5", NULL, NULL, NULL, &ans), 200);
    json_t *entries = json_object_get(ans, "entries");
    cr_assert_eq(json_array_size(entries), 5);
    cr_assert_str_eq(tg_str(json_array_get(entries, 0), "action"), "service.init");
    cr_assert_str_eq(tg_str(json_array_get(entries, 0), "actor"), "service");
    cr_assert_str_eq(tg_str(json_array_get(entries, 1), "prev_hash"),
                     tg_str(json_array_get(entries, 0), "hash"));
    cr_assert_eq(json_integer_value(json_object_get(ans, "next")), 6);
    json_decref(ans);
    cr_assert_eq(tg_call(t, t->m2, "GET", "/audit/verify", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert(json_is_true(json_object_get(ans, "ok")), "%s", json_dumps(ans, 0));
    json_decref(ans);
    json_t *rep = NULL;
    cr_assert_eq(ccr_gov_audit_verify(t->g, &rep), 0);
    cr_assert(json_integer_value(json_object_get(rep, "entries")) > 30);
    cr_assert_eq(json_array_size(json_object_get(rep, "problems")), 0);
    json_decref(rep);
}

Test(governance_gov_flow, reject_and_withdraw_return_contract_to_draft)
{
    struct tg *t = &T;
    json_t *ans = NULL;
    add_members(t);
    cr_assert_eq(tg_call(t, t->m2, "POST", "/members/activate", NULL, "ack", NULL, NULL, NULL), 200);
    cr_assert_eq(tg_call(t, t->m3, "POST", "/members/activate", NULL, "ack", NULL, NULL, NULL), 200);
    cr_assert_eq(tg_call(t, t->m2, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{}}", NULL), 201);
    cr_assert_eq(
        tg_call(t, t->m2, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        201);
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "reject", "rejected");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "draft");
    cr_assert(json_is_null(json_object_get(ans, "proposal_id")));
    json_decref(ans);
    tg_expect_error(tg_call(t, t->m2, "POST", "/proposals/p-2/ballots", NULL, "ballot", "p-2",
                            "{\"vote\":\"accept\"}", &ans),
                    &ans, 409, "ProposalNotOpen");

    cr_assert_eq(
        tg_call(t, t->m2, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans),
        201);
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    char path[64];
    snprintf(path, sizeof(path), "/proposals/%s/withdraw", pid);
    tg_expect_error(tg_call(t, t->m3, "POST", path, NULL, "withdrawal", pid, NULL, &ans), &ans, 403,
                    "Forbidden");
    cr_assert_eq(tg_call(t, t->m2, "POST", path, NULL, "withdrawal", pid, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "withdrawn");
    json_decref(ans);
    tg_expect_error(tg_call(t, t->m2, "POST", path, NULL, "withdrawal", pid, NULL, &ans), &ans, 409,
                    "ProposalNotOpen");
    cr_assert_eq(tg_call(t, t->m2, "GET", "/contracts/c1", NULL, NULL, NULL, NULL, &ans), 200);
    cr_assert_str_eq(tg_str(ans, "state"), "draft");
    json_decref(ans);
    /* a draft again: it can change */
    cr_assert_eq(tg_call(t, t->m3, "PUT", "/contracts/c1", NULL, NULL, NULL,
                         "{\"version\":1,\"data\":{\"x\":1}}", NULL),
                 200);

    /* removing a member: it can no longer act, and its execution hold is lifted */
    char actions[256];
    snprintf(actions, sizeof(actions), "[{\"name\":\"remove_member\",\"args\":{\"member_id\":\"%s\"}}]",
             ccr_gov_ident_id(t->m3));
    tg_propose(t, t->op, actions, pid, "open");
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "open");
    tg_vote(t, t->m3, pid, "accept", "accepted");
    tg_expect_error(tg_call(t, t->m3, "GET", "/members", NULL, NULL, NULL, NULL, &ans), &ans, 403,
                    "InactiveMember");
    /* two active members now decide */
    cr_assert_eq(
        tg_call(t, t->m2, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":2}", &ans),
        201);
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "open");
    tg_vote(t, t->m2, pid, "accept", "accepted");
}
