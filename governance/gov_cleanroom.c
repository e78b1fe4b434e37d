/*
 * gov_cleanroom.c - the routes a clean room calls with its attestation evidence (docs/governance.md,
 * "Routes: the clean room"): consent, key release, events and accepted documents.
 *
 * gov.c has already verified the evidence, its binding to ccr.pubkey and the signature; here every route
 * checks that the evidence's measurement is in the contract's accepted policy (a contract that is not
 * accepted has none: 403 PolicyNotSet). Consent answers and key releases given to a virtual (insecure)
 * clean room are recorded with "virtual": true in their event; the clean room's own events as sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov_int.h"

/* The accepted contract whose policy admits the caller's measurement. *out (may be NULL) the contract. */
static int admitted(struct gov_ctx *c, const char *cid, json_t **out)
{
    if (!gov_id_ok(cid))
        return gov_fail(c, 400, "BadRequest", "the request needs \"contract_id\"");
    json_t *k = NULL, *pol = NULL;
    int rc = gov_contract_get(c, cid, &k);
    if (rc < 0)
        return rc;
    /* a contract that is not accepted has no accepted policy */
    if (strcmp(json_string_value(json_object_get(k, "state")), "accepted") != 0) {
        json_decref(k);
        return gov_fail(
            c, 403, "PolicyNotSet",
            "contract %s is not accepted, so it has no accepted clean room policy; nothing is released "
            "before every member accepts the contract and its policy",
            cid);
    }
    rc = gov_row_get(c, "policies", cid, &pol);
    if (rc == -ENOENT)
        rc = gov_fail(c, 403, "PolicyNotSet",
                      "contract %s has no accepted clean room policy; the members must "
                      "propose set_cleanroom_policy",
                      cid);
    if (rc == 0) {
        bool found = false;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(pol, "measurements"), i, m)
        {
            found = found || (json_is_string(m) && strcmp(json_string_value(m), c->measurement_hex) == 0);
        }
        if (!found)
            rc = gov_fail(
                c, 403, "MeasurementMismatch",
                "measurement %s is not in contract %s's accepted policy; run the accepted deployment spec",
                c->measurement_hex, cid);
    }
    json_decref(pol);
    if (rc < 0 || !out)
        json_decref(k);
    else
        *out = k;
    return rc;
}

/* The execution switch of an admitted contract: true when enabled; reason says why (naming the first ten
 * members that hold it disabled). */
static int execution_state(struct gov_ctx *c, const char *cid, const json_t *k, bool *out_enabled,
                           char *reason, size_t cap)
{
    json_t *rt = NULL;
    int rc = gov_row_get(c, "runtime", cid, &rt);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    json_t *view = gov_runtime_view(k, rt);
    json_decref(rt);
    if (!view)
        return gov_fail(c, 500, "InternalError", "out of memory");
    json_t *ex = json_object_get(view, "execution");
    bool enabled = json_is_true(json_object_get(ex, "enabled"));
    if (enabled) {
        snprintf(reason, cap, "execution is enabled");
    } else {
        json_t *held = json_object_get(ex, "disabled_by");
        int n =
            snprintf(reason, cap, "execution is disabled by member%s", json_array_size(held) > 1 ? "s" : "");
        size_t i;
        json_t *h;
        json_array_foreach(held, i, h)
        {
            if (i == 10 || n < 0 || (size_t)n >= cap)
                break;
            n += snprintf(reason + n, cap - (size_t)n, "%s %s", i ? "," : "", json_string_value(h));
        }
    }
    *out_enabled = enabled;
    json_decref(view);
    return 0;
}

/* An option (logging, telemetry) of an admitted contract. */
static int option_state(struct gov_ctx *c, const char *cid, const char *option, bool *out_enabled)
{
    json_t *rt = NULL;
    int rc = gov_row_get(c, "runtime", cid, &rt);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    const char *v = json_string_value(json_object_get(rt, option));
    *out_enabled = v && strcmp(v, "enabled") == 0;
    json_decref(rt);
    return 0;
}

/* Records an event the service writes about the clean room; data (taken) is marked virtual when the
 * evidence was. */
static int service_event(struct gov_ctx *c, const char *cid, const char *type, json_t *data)
{
    if (!data)
        return gov_fail(c, 500, "InternalError", "out of memory recording an event");
    if (c->claims.insecure)
        json_object_set_new(data, "virtual", json_true());
    return gov_event_add(c, cid, type, data, NULL);
}

/* The event types only the service writes. */
static bool service_event_type(const char *type)
{
    return strcmp(type, "consent") == 0 || strcmp(type, "key_released") == 0 ||
           strcmp(type, "key_release_refused") == 0;
}

static int consent(struct gov_ctx *c)
{
    json_t *body = NULL, *k = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    const char *cid = json_string_value(json_object_get(body, "contract_id"));
    const char *action = json_string_value(json_object_get(body, "action"));
    if (!action || (strcmp(action, "execution") && strcmp(action, "logging") && strcmp(action, "telemetry")))
        return gov_fail(c, 400, "BadRequest", "consent needs \"action\": execution, logging or telemetry");
    rc = admitted(c, cid, &k);
    bool allowed = false;
    char reason[1024];
    if (rc == 0 && strcmp(action, "execution") == 0) {
        rc = execution_state(c, cid, k, &allowed, reason, sizeof(reason));
    } else if (rc == 0) {
        rc = option_state(c, cid, action, &allowed);
        snprintf(reason, sizeof(reason), "%s is %s by the members", action, allowed ? "enabled" : "disabled");
    }
    json_decref(k);
    if (rc < 0)
        return rc;
    rc = service_event(c, cid, "consent",
                       json_pack("{s:s, s:b, s:s}", "action", action, "allowed", allowed, "reason", reason));
    if (rc < 0)
        return rc;
    return gov_ok(c, 200, json_pack("{s:b, s:s}", "allowed", allowed, "reason", reason));
}

static char *b64(const uint8_t *p, size_t n)
{
    char *s = ccr_malloc(CCR_BASE64_LEN(n) + 1);
    if (s && ccr_base64_encode(p, n, s, CCR_BASE64_LEN(n) + 1) < 0) {
        ccr_free(s);
        s = NULL;
    }
    return s;
}

static int read_sealed(struct gov_ctx *c, const char *key, uint8_t **out, size_t *out_len)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT sealed FROM secrets WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return gov_fail_db(c, "read a secret");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return -ENOENT;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return gov_fail_db(c, "read a secret");
    }
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *buf = ccr_malloc(n ? n : 1);
    if (buf && n)
        memcpy(buf, sqlite3_column_blob(st, 0), n);
    sqlite3_finalize(st);
    if (!buf)
        return gov_fail(c, 500, "InternalError", "out of memory");
    *out = buf;
    *out_len = n;
    return 0;
}

static int key_release(struct gov_ctx *c)
{
    json_t *body = NULL, *k = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    const char *cid = json_string_value(json_object_get(body, "contract_id"));
    const char *name = json_string_value(json_object_get(body, "secret"));
    if (!gov_id_ok(name))
        return gov_fail(c, 400, "BadRequest", "key release needs \"secret\": the secret's name");
    rc = admitted(c, cid, &k);
    bool enabled = false;
    char reason[1024];
    if (rc == 0)
        rc = execution_state(c, cid, k, &enabled, reason, sizeof(reason));
    json_decref(k);
    if (rc < 0)
        return rc;
    if (!enabled) {
        /* the refusal is an audit event like a refused consent: it stays although the answer is 403 */
        rc = service_event(c, cid, "key_release_refused",
                           json_pack("{s:s, s:s}", "secret", name, "reason", reason));
        if (rc < 0)
            return rc;
        c->keep = true;
        return gov_fail(c, 403, "ExecutionDisabled",
                        "execution of contract %s is disabled by a member; no key is released until every "
                        "member enables it",
                        cid);
    }
    char key[2 * GOV_ID_MAX + 2];
    snprintf(key, sizeof(key), "%s/%s", cid, name);
    uint8_t *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    rc = read_sealed(c, key, &sealed, &sealed_len);
    if (rc == -ENOENT)
        return gov_fail(c, 404, "NotFound", "contract %s has no secret %s; a member must deposit it", cid,
                        name);
    if (rc < 0)
        return rc;
    rc = gov_secret_unseal(c->g, key, sealed, sealed_len, &plain, &plain_len);
    ccr_free(sealed);
    if (rc < 0)
        return gov_fail(c, 500, "InternalError", "secret %s does not unseal under this service's sealing key",
                        key);
    struct ccr_gov_sealed out = {0};
    rc = ccr_gov_seal_to(c->msg.pubkey, c->msg.pubkey_len, (const uint8_t *)key, strlen(key), plain,
                         plain_len, &out);
    ccr_wipe(plain, plain_len);
    ccr_free(plain);
    if (rc < 0)
        return gov_fail(c, 403, "AttestationFailed",
                        "cannot encrypt to ccr.pubkey: it is not a P-384 public key");
    char *epk = b64(out.epk, out.epk_len), *iv = b64(out.iv, sizeof(out.iv)), *ct = b64(out.ct, out.ct_len);
    ccr_gov_sealed_fini(&out);
    if (!epk || !iv || !ct) {
        rc = gov_fail(c, 500, "InternalError", "out of memory");
        goto out;
    }
    rc = service_event(c, cid, "key_released", json_pack("{s:s}", "secret", name));
    if (rc == 0)
        rc = gov_ok(c, 200,
                    json_pack("{s:b, s:s, s:s, s:s}", "virtual", c->claims.insecure, "epk", epk, "iv", iv,
                              "ciphertext", ct));
out:
    ccr_free(epk);
    ccr_free(iv);
    ccr_free(ct);
    return rc;
}

static int cleanroom_event(struct gov_ctx *c)
{
    json_t *body = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    const char *cid = json_string_value(json_object_get(body, "contract_id"));
    const char *type = json_string_value(json_object_get(body, "type"));
    json_t *data = json_object_get(body, "data");
    if (!type || strlen(type) > 64 || !gov_id_ok(type) || service_event_type(type))
        return gov_fail(c, 400, "BadRequest",
                        "an event needs \"type\": 1 to 64 of letters, digits, '.', '_', '-' (consent, "
                        "key_released and key_release_refused are recorded by the service itself)");
    if (data && !json_is_object(data))
        return gov_fail(c, 400, "BadRequest", "an event's \"data\" must be a JSON object");
    rc = admitted(c, cid, NULL);
    if (rc < 0)
        return rc;
    json_t *d = data ? json_deep_copy(data) : json_object();
    int64_t seq = 0;
    rc = gov_event_add(c, cid, type, d, &seq);
    if (rc < 0)
        return rc;
    return gov_ok(c, 200, json_pack("{s:I}", "seq", (json_int_t)seq));
}

static int cleanroom_document(struct gov_ctx *c, const char *id)
{
    json_t *d = NULL;
    int rc = gov_id_ok(id) ? gov_row_get(c, "documents", id, &d) : -ENOENT;
    if (rc == 0 && strcmp(json_string_value(json_object_get(d, "state")), "accepted") != 0)
        rc = -ENOENT;
    if (rc == -ENOENT) {
        json_decref(d);
        return gov_fail(c, 404, "NotFound", "no accepted document %.128s", id);
    }
    if (rc < 0)
        return rc;
    rc = admitted(c, json_string_value(json_object_get(d, "contract_id")), NULL);
    if (rc == 0)
        rc = gov_ok(c, 200,
                    json_pack("{s:O, s:O, s:O}", "document_id", json_object_get(d, "document_id"), "version",
                              json_object_get(d, "version"), "data", json_object_get(d, "data")));
    json_decref(d);
    return rc;
}

int gov_route_cleanroom(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    bool post = strcmp(method, "POST") == 0;
    if (n == 1 && post && strcmp(seg[0], "consent") == 0)
        return consent(c);
    if (n == 2 && post && strcmp(seg[0], "keys") == 0 && strcmp(seg[1], "release") == 0)
        return key_release(c);
    if (n == 1 && post && strcmp(seg[0], "events") == 0)
        return cleanroom_event(c);
    if (n == 2 && strcmp(method, "GET") == 0 && strcmp(seg[0], "documents") == 0)
        return cleanroom_document(c, seg[1]);
    return gov_fail(c, 404, "NotFound", "no route %s %s", method, c->req->path);
}
