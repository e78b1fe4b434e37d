/*
 * test_gov.h - helpers of the governance service tests (test_gov_*.c): a service in a temp dir with a
 * controlled clock, three member identities, and signed calls straight into ccr_gov_handle.
 */
#ifndef CCR_TEST_GOV_H
#define CCR_TEST_GOV_H

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccr/crypto.h"
#include "ccr/gov.h"
#include "ccr/gov_crypto.h"

struct tg {
    char dir[64];
    char data[96];
    struct ccr_gov *g;
    int64_t now;
    bool allow_virtual;
    struct ccr_gov_ident *op, *m2, *m3, *stranger;
};

static inline int64_t tg_clock(void *arg)
{
    return ((struct tg *)arg)->now;
}

static inline struct ccr_gov_ident *tg_ident(struct tg *t, const char *name)
{
    char id[65], cert[256], key[256];
    cr_assert_eq(ccr_gov_ident_keygen(t->dir, name, id, NULL), 0, "keygen %s", name);
    snprintf(cert, sizeof(cert), "%s/%s_cert.pem", t->dir, name);
    snprintf(key, sizeof(key), "%s/%s_privk.pem", t->dir, name);
    struct ccr_gov_ident *ident = NULL;
    cr_assert_eq(ccr_gov_ident_load(cert, key, &ident, NULL), 0);
    cr_assert_str_eq(ccr_gov_ident_id(ident), id);
    return ident;
}

static inline void tg_open(struct tg *t)
{
    struct ccr_gov_config cfg = {
        .data_dir = t->data, .allow_virtual = t->allow_virtual, .now = tg_clock, .now_arg = t};
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_open(&cfg, &t->g, &err), 0, "open: %s", err.msg);
}

static inline void tg_setup(struct tg *t, bool allow_virtual)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/ccr-test-gov-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->data, sizeof(t->data), "%s/data", t->dir);
    t->now = 1795000000;
    t->allow_virtual = allow_virtual;
    t->op = tg_ident(t, "operator");
    t->m2 = tg_ident(t, "northwind");
    t->m3 = tg_ident(t, "contoso");
    t->stranger = tg_ident(t, "stranger");
    const char *pem = ccr_gov_ident_cert_pem(t->op);
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_init_dir(t->data, pem, strlen(pem), &err), 0, "init: %s", err.msg);
    cr_assert_eq(ccr_gov_init_dir(t->data, pem, strlen(pem), NULL), -EEXIST);
    tg_open(t);
}

static inline void tg_teardown(struct tg *t)
{
    ccr_gov_close(t->g);
    ccr_gov_ident_destroy(t->op);
    ccr_gov_ident_destroy(t->m2);
    ccr_gov_ident_destroy(t->m3);
    ccr_gov_ident_destroy(t->stranger);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", t->dir);
}

/* Sends a prepared envelope (POST/PUT: body; GET/DELETE: Ccr-Sign header). Returns the status. */
static inline int tg_send(struct tg *t, const char *method, const char *path, const char *query,
                          const uint8_t *env, size_t env_len, json_t **out)
{
    bool body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    char *hdr = NULL;
    if (!body && env)
        cr_assert_eq(ccr_gov_b64url_encode(env, env_len, &hdr), 0);
    struct ccr_gov_request req = {.method = method,
                                  .path = path,
                                  .query = query,
                                  .body = body ? env : NULL,
                                  .body_len = body ? env_len : 0,
                                  .sign_header = hdr};
    struct ccr_gov_response resp = {0};
    cr_assert_eq(ccr_gov_handle(t->g, &req, &resp), 0);
    cr_assert_not_null(resp.body);
    free(hdr);
    if (out)
        *out = resp.body;
    else
        json_decref(resp.body);
    return resp.status;
}

/* The "ccr.request" of method, path and query. */
static inline void tg_request_line(char *out, size_t cap, const char *method, const char *path,
                                   const char *query)
{
    snprintf(out, cap, "%s %s%s%s", method, path, query ? "?" : "", query ? query : "");
}

/* Signs a member request; created_at = now + dt. *out_env malloc'ed. */
static inline void tg_sign(struct tg *t, const struct ccr_gov_ident *who, const char *method,
                           const char *path, const char *query, const char *type, const char *pid,
                           const char *body, int64_t dt, uint8_t **out_env, size_t *out_len)
{
    char line[1024];
    tg_request_line(line, sizeof(line), method, path, query);
    struct ccr_cose_hdr h = {.kid = ccr_gov_ident_id(who),
                             .msg_type = type ? type : "request",
                             .created_at = (uint64_t)(t->now + dt),
                             .proposal_id = pid,
                             .request = line};
    cr_assert_eq(ccr_cose_sign1(who, &h, (const uint8_t *)body, body ? strlen(body) : 0, out_env, out_len),
                 0);
}

/* A signed member call. body: JSON text or NULL. Returns the status; *out (may be NULL) the answer. */
static inline int tg_call(struct tg *t, const struct ccr_gov_ident *who, const char *method, const char *path,
                          const char *query, const char *type, const char *pid, const char *body,
                          json_t **out)
{
    uint8_t *env = NULL;
    size_t len = 0;
    tg_sign(t, who, method, path, query, type, pid, body, 0, &env, &len);
    int st = tg_send(t, method, path, query, env, len, out);
    free(env);
    return st;
}

static inline const char *tg_code(const json_t *ans)
{
    const char *c = json_string_value(json_object_get(json_object_get(ans, "error"), "code"));
    return c ? c : "";
}

/* Asserts an error answer with status and code; frees it. */
static inline void tg_expect_error(int status, json_t **ansp, int want_status, const char *want_code)
{
    json_t *ans = *ansp;
    *ansp = NULL;
    cr_assert_eq(status, want_status, "status %d, want %d (%s)", status, want_status, tg_code(ans));
    cr_assert_str_eq(tg_code(ans), want_code);
    const char *msg = json_string_value(json_object_get(json_object_get(ans, "error"), "message"));
    cr_assert(msg && strlen(msg) > 10, "error message says what failed");
    json_decref(ans);
}

static inline const char *tg_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Votes; returns the proposal's state after the ballot. */
static inline void tg_vote(struct tg *t, const struct ccr_gov_ident *who, const char *pid, const char *vote,
                           const char *want_state)
{
    char path[128], body[64];
    snprintf(path, sizeof(path), "/proposals/%s/ballots", pid);
    snprintf(body, sizeof(body), "{\"vote\":\"%s\"}", vote);
    json_t *ans = NULL;
    int st = tg_call(t, who, "POST", path, NULL, "ballot", pid, body, &ans);
    cr_assert_eq(st, 200, "ballot status %d (%s)", st, tg_code(ans));
    cr_assert_str_eq(tg_str(ans, "state"), want_state);
    json_decref(ans);
}

/* Creates a proposal; returns its id (static buffer per call site is the caller's). */
static inline void tg_propose(struct tg *t, const struct ccr_gov_ident *who, const char *actions_json,
                              char pid[32], const char *want_state)
{
    char body[16384];
    snprintf(body, sizeof(body), "{\"actions\":%s}", actions_json);
    json_t *ans = NULL;
    int st = tg_call(t, who, "POST", "/proposals", NULL, "proposal", NULL, body, &ans);
    cr_assert_eq(st, 201, "proposal status %d (%s: %s)", st, tg_code(ans),
                 json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
    snprintf(pid, 32, "%s", tg_str(ans, "proposal_id"));
    cr_assert_str_eq(tg_str(ans, "state"), want_state);
    json_decref(ans);
}

/* The measurement of a deployment spec (hex). */
static inline void tg_measure(const char *spec_json, uint8_t m[32], char hex[65])
{
    json_t *v = json_loads(spec_json, 0, NULL);
    cr_assert_not_null(v);
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    ccr_gov_sha256(s, strlen(s), m);
    ccr_gov_hex(m, 32, hex);
    free(s);
    json_decref(v);
}

#define TG_SPEC \
    "{\"contract_id\":\"c1\",\"mounts\":[],\"applications\":[{\"name\":\"app\",\"command\":[\"gzip\"]}]}"

/*
 * With the operator as the only active member: contract c1 accepted, deployment spec TG_SPEC and its
 * measurement as policy, and (deposit) a secret "kek" holding "top secret".
 */
static inline void tg_accepted_contract(struct tg *t, bool policy, bool deposit)
{
    json_t *ans = NULL;
    int st = tg_call(t, t->op, "PUT", "/contracts/c1", NULL, NULL, NULL, "{\"data\":{\"parties\":[]}}", &ans);
    cr_assert_eq(st, 201, "%s", tg_code(ans));
    json_decref(ans);
    st = tg_call(t, t->op, "POST", "/contracts/c1/propose", NULL, "proposal", NULL, "{\"version\":1}", &ans);
    cr_assert_eq(st, 201, "%s", tg_code(ans));
    char pid[32];
    snprintf(pid, sizeof(pid), "%s", tg_str(ans, "proposal_id"));
    json_decref(ans);
    tg_vote(t, t->op, pid, "accept", "accepted");
    if (policy) {
        uint8_t m[32];
        char hex[65], actions[2048];
        tg_measure(TG_SPEC, m, hex);
        snprintf(actions, sizeof(actions),
                 "[{\"name\":\"set_deployment_spec\",\"args\":{\"contract_id\":\"c1\",\"spec\":%s}},"
                 "{\"name\":\"set_cleanroom_policy\",\"args\":{\"contract_id\":\"c1\",\"measurements\":[\"%"
                 "s\"]}}]",
                 TG_SPEC, hex);
        tg_propose(t, t->op, actions, pid, "open");
        tg_vote(t, t->op, pid, "accept", "accepted");
    }
    if (deposit) {
        char body[128];
        char b64[64];
        cr_assert(ccr_base64_encode("top secret", 10, b64, sizeof(b64)) > 0);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", b64);
        st = tg_call(t, t->op, "PUT", "/contracts/c1/secrets/kek", NULL, NULL, NULL, body, &ans);
        cr_assert_eq(st, 200, "%s", tg_code(ans));
        json_decref(ans);
    }
}

/* A clean room call signed by k with virtual evidence for measurement m (evidence_key: whose key the
 * evidence binds, normally k). */
static inline int tg_cr_call(struct tg *t, const struct ccr_gov_ephkey *k,
                             const struct ccr_gov_ephkey *evidence_key, const uint8_t m[32],
                             const char *method, const char *path, const char *body, json_t **out)
{
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    cr_assert_eq(ccr_gov_evidence_virtual(m, evidence_key, &ev, &ev_len), 0);
    size_t spki_len = 0;
    const uint8_t *spki = ccr_gov_ephkey_spki(k, &spki_len);
    char line[512];
    tg_request_line(line, sizeof(line), method, path, NULL);
    struct ccr_cose_hdr h = {.msg_type = "cleanroom",
                             .created_at = (uint64_t)t->now,
                             .request = line,
                             .evidence = ev,
                             .evidence_len = ev_len,
                             .pubkey = spki,
                             .pubkey_len = spki_len};
    uint8_t *env = NULL;
    size_t len = 0;
    cr_assert_eq(ccr_cose_sign1_eph(k, &h, (const uint8_t *)body, body ? strlen(body) : 0, &env, &len), 0);
    int st = tg_send(t, method, path, NULL, env, len, out);
    free(env);
    ccr_free(ev);
    return st;
}

/* Decodes standard base64 from a JSON string member into a malloc'ed buffer. */
static inline uint8_t *tg_b64(const json_t *o, const char *k, size_t *out_len)
{
    const char *s = tg_str(o, k);
    size_t cap = strlen(s) / 4 * 3 + 3;
    uint8_t *b = malloc(cap);
    int n = ccr_base64_decode(s, strlen(s), b, cap);
    cr_assert(n >= 0, "%s is base64", k);
    *out_len = (size_t)n;
    return b;
}

/* Opens a key release answer with k. Returns ccr_gov_open_sealed's result; *out the secret. */
static inline int tg_open_release(const json_t *ans, const struct ccr_gov_ephkey *k, const char *aad,
                                  uint8_t **out, size_t *out_len)
{
    struct ccr_gov_sealed s = {0};
    size_t iv_len = 0;
    uint8_t *iv = tg_b64(ans, "iv", &iv_len);
    cr_assert_eq(iv_len, 12);
    memcpy(s.iv, iv, 12);
    free(iv);
    s.epk = tg_b64(ans, "epk", &s.epk_len);
    s.ct = tg_b64(ans, "ciphertext", &s.ct_len);
    int rc = ccr_gov_open_sealed(k, (const uint8_t *)aad, strlen(aad), &s, out, out_len);
    free(s.epk);
    free(s.ct);
    return rc;
}

#endif
