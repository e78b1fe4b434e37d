/*
 * fuzz_gov_request.c - the governance service's request handling (governance/gov*.c) on arbitrary input.
 *
 * One service lives in a temp dir for the whole run (virtual attestation allowed, a fixed clock). The
 * input's first byte picks a route; the rest is the JSON payload of a request correctly signed for it
 * (by the operator, or by a clean room's ephemeral key with virtual evidence). The whole input is also
 * sent as a raw envelope (a POST body, and a Ccr-Sign header). Invariants, abort() on violation:
 * ccr_gov_handle returns 0, answers a status between 200 and 599 with a JSON object, error answers carry
 * a non-empty code and message and success answers none, and the audit of the database stays clean.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr/gov.h"
#include "ccr/gov_crypto.h"
#include "fuzz.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

#define NOW 1795000000

static struct {
    char dir[64];
    struct ccr_gov *g;
    struct ccr_gov_ident *op;
    struct ccr_gov_ephkey *k;
    uint8_t measurement[32];
    unsigned n;
} S;

static int64_t fixed_now(void *arg)
{
    return NOW;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    ccr_gov_close(S.g);
    ccr_gov_ident_destroy(S.op);
    ccr_gov_ephkey_destroy(S.k);
    if (S.dir[0])
        nftw(S.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void init_once(void)
{
    if (S.g)
        return;
    snprintf(S.dir, sizeof(S.dir), "/tmp/ccr-fuzz-gov-XXXXXX");
    CHECK(mkdtemp(S.dir));
    char path[128], key[128], data[128];
    CHECK(ccr_gov_ident_keygen(S.dir, "op", NULL, NULL) == 0);
    snprintf(path, sizeof(path), "%s/op_cert.pem", S.dir);
    snprintf(key, sizeof(key), "%s/op_privk.pem", S.dir);
    CHECK(ccr_gov_ident_load(path, key, &S.op, NULL) == 0);
    snprintf(data, sizeof(data), "%s/data", S.dir);
    const char *pem = ccr_gov_ident_cert_pem(S.op);
    CHECK(ccr_gov_init_dir(data, pem, strlen(pem), NULL) == 0);
    struct ccr_gov_config cfg = {.data_dir = data, .allow_virtual = true, .now = fixed_now};
    CHECK(ccr_gov_open(&cfg, &S.g, NULL) == 0);
    CHECK(ccr_gov_ephkey_generate(&S.k) == 0);
    memset(S.measurement, 0xab, sizeof(S.measurement));
    atexit(cleanup);
}

static void check_answer(int rc, const struct ccr_gov_response *r)
{
    CHECK(rc == 0);
    CHECK(r->status >= 200 && r->status <= 599);
    CHECK(json_is_object(r->body));
    json_t *e = json_object_get(r->body, "error");
    if (r->status >= 400) {
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        CHECK(code && code[0] && msg && msg[0]);
    } else {
        CHECK(e == NULL);
    }
}

struct route {
    const char *method, *path, *type, *pid;
    bool cleanroom;
};

static const struct route routes[] = {
    {"POST", "/proposals", "proposal", NULL, false},
    {"PUT", "/contracts/c1", "request", NULL, false},
    {"POST", "/contracts/c1/propose", "proposal", NULL, false},
    {"POST", "/proposals/p-1/ballots", "ballot", "p-1", false},
    {"POST", "/proposals/p-1/withdraw", "withdrawal", "p-1", false},
    {"PUT", "/documents/d1", "request", NULL, false},
    {"POST", "/documents/d1/propose", "proposal", NULL, false},
    {"PUT", "/contracts/c1/secrets/s1", "request", NULL, false},
    {"POST", "/contracts/c1/execution/disable", "request", NULL, false},
    {"POST", "/members/activate", "ack", NULL, false},
    {"POST", "/cleanroom/consent", "cleanroom", NULL, true},
    {"POST", "/cleanroom/keys/release", "cleanroom", NULL, true},
    {"POST", "/cleanroom/events", "cleanroom", NULL, true},
};

static void signed_request(const struct route *rt, const uint8_t *payload, size_t len)
{
    char line[256];
    snprintf(line, sizeof(line), "%s %s", rt->method, rt->path);
    struct ccr_cose_hdr h = {
        .msg_type = rt->type, .created_at = NOW, .proposal_id = rt->pid, .request = line};
    uint8_t *env = NULL, *ev = NULL;
    size_t env_len = 0, ev_len = 0;
    if (rt->cleanroom) {
        CHECK(ccr_gov_evidence_virtual(S.measurement, S.k, &ev, &ev_len) == 0);
        h.evidence = ev;
        h.evidence_len = ev_len;
        h.pubkey = ccr_gov_ephkey_spki(S.k, &h.pubkey_len);
        CHECK(ccr_cose_sign1_eph(S.k, &h, payload, len, &env, &env_len) == 0);
    } else {
        h.kid = ccr_gov_ident_id(S.op);
        CHECK(ccr_cose_sign1(S.op, &h, payload, len, &env, &env_len) == 0);
    }
    struct ccr_gov_request req = {.method = rt->method, .path = rt->path, .body = env, .body_len = env_len};
    struct ccr_gov_response resp = {0};
    check_answer(ccr_gov_handle(S.g, &req, &resp), &resp);
    json_decref(resp.body);
    free(env);
    free(ev);
}

static void raw_requests(const uint8_t *data, size_t size)
{
    struct ccr_gov_request req = {.method = "POST", .path = "/proposals", .body = data, .body_len = size};
    struct ccr_gov_response resp = {0};
    check_answer(ccr_gov_handle(S.g, &req, &resp), &resp);
    CHECK(resp.status == 401 || resp.status == 413);
    json_decref(resp.body);

    char *hdr = malloc(size + 1);
    CHECK(hdr);
    memcpy(hdr, data, size);
    hdr[size] = '\0';
    struct ccr_gov_request get = {.method = "GET", .path = "/members", .sign_header = hdr};
    check_answer(ccr_gov_handle(S.g, &get, &resp), &resp);
    CHECK(resp.status == 401 || resp.status == 413);
    json_decref(resp.body);
    free(hdr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    size_t n_routes = sizeof(routes) / sizeof(routes[0]);
    const struct route *rt = &routes[(size ? data[0] : 0) % n_routes];
    signed_request(rt, size ? data + 1 : data, size ? size - 1 : 0);
    raw_requests(data, size);
    /* now and then, the whole database must still verify */
    if (++S.n % 64 == 1) {
        json_t *rep = NULL;
        CHECK(ccr_gov_audit_verify(S.g, &rep) == 0);
        json_decref(rep);
    }
    return 0;
}
