/*
 * gov_contracts.c - contracts and their versions, deployment specs, clean room policies, runtime options
 * and execution holds, deposited secrets, documents, contract events and the audit routes
 * (docs/governance.md, "Routes: contracts, runtime, secrets, documents, events, log").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov_int.h"

static int no_route(struct gov_ctx *c, const char *method)
{
    return gov_fail(c, 404, "NotFound", "no route %s %s; see docs/governance.md for the routes", method,
                    c->req->path);
}

int gov_contract_get(struct gov_ctx *c, const char *id, json_t **out)
{
    int rc = gov_row_get(c, "contracts", id, out);
    if (rc == -ENOENT)
        return gov_fail(c, 404, "NotFound", "no contract %.128s; create it with PUT /contracts/%.128s", id,
                        id);
    return rc;
}

static json_t *contract_view(const json_t *k)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "contract_id", json_object_get(k, "contract_id"),
                     "version", json_object_get(k, "version"), "state", json_object_get(k, "state"), "data",
                     json_object_get(k, "data"), "proposal_id", json_object_get(k, "proposal_id"),
                     "created_by", json_object_get(k, "created_by"), "updated_at",
                     json_object_get(k, "updated_at"));
}

static json_t *document_view(const json_t *d);

static bool is_state(const json_t *row, const char *state)
{
    const char *s = json_string_value(json_object_get(row, "state"));
    return s && strcmp(s, state) == 0;
}

/* Writes a draft (contract or document) row at the version it carries, logs "<action>" with its id and
 * version, and answers view(row) with status. */
static int draft_write(struct gov_ctx *c, const char *table, const char *idname, const char *id, json_t *row,
                       const char *action, json_t *(*view)(const json_t *), int status)
{
    int rc = gov_row_put(c, table, id, row, NULL, 0);
    if (rc == 0)
        rc = gov_log_append(c, NULL, action,
                            json_pack("{s:s, s:O}", idname, id, "version", json_object_get(row, "version")));
    if (rc == 0)
        rc = gov_ok(c, status, view(row));
    return rc;
}

/* The next version of a draft row: version + 1, the new data, updated now. */
static void draft_bump(struct gov_ctx *c, json_t *row, json_t *data)
{
    json_object_set_new(row, "version",
                        json_integer(json_integer_value(json_object_get(row, "version")) + 1));
    json_object_set(row, "data", data);
    json_object_set_new(row, "updated_at", json_string(c->now_iso));
}

/* ---- contracts ----------------------------------------------------------------------------------------- */

static int contract_put(struct gov_ctx *c, const char *id)
{
    json_t *body = NULL, *k = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    json_t *data = json_object_get(body, "data"), *ver = json_object_get(body, "version");
    if (!json_is_object(data))
        return gov_fail(c, 400, "BadRequest",
                        "a contract needs \"data\": the clean room spec (a JSON object)");
    if (ver && !json_is_integer(ver))
        return gov_fail(c, 400, "BadRequest", "\"version\" must be an integer");
    rc = gov_row_get(c, "contracts", id, &k);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (rc == -ENOENT) {
        if (ver)
            return gov_fail(c, 404, "NotFound", "no contract %s to update; create it without \"version\"",
                            id);
        k = json_pack("{s:s, s:i, s:s, s:O, s:n, s:s, s:s}", "contract_id", id, "version", 1, "state",
                      "draft", "data", data, "proposal_id", "created_by", c->actor, "updated_at", c->now_iso);
        rc = k ? draft_write(c, "contracts", "contract_id", id, k, "contract.put", contract_view, 201)
               : gov_fail(c, 500, "InternalError", "out of memory");
        json_decref(k);
        return rc;
    }
    json_int_t cur = json_integer_value(json_object_get(k, "version"));
    if (!is_state(k, "draft"))
        rc = gov_fail(c, 409, "ContractNotDraft",
                      "contract %s is %s; only a draft can change (a rejected or "
                      "withdrawn proposal makes it a draft again)",
                      id, json_string_value(json_object_get(k, "state")));
    else if (!ver)
        rc = gov_fail(c, 412, "VersionMismatch",
                      "contract %s exists (version %lld); pass \"version\" to update it", id, (long long)cur);
    else if (json_integer_value(ver) != cur)
        rc = gov_fail(c, 412, "VersionMismatch",
                      "contract %s is at version %lld, not %lld; show it and update "
                      "the current version",
                      id, (long long)cur, (long long)json_integer_value(ver));
    if (rc == 0) {
        draft_bump(c, k, data);
        rc = draft_write(c, "contracts", "contract_id", id, k, "contract.put", contract_view, 200);
    }
    json_decref(k);
    return rc;
}

static int contracts_list(struct gov_ctx *c)
{
    static const char *const states[] = {"draft", "proposed", "accepted", NULL};
    return gov_list_by_state(c, "contracts", "contracts", "contract_id", states, contract_view);
}

/* POST /contracts/{id}/propose and /documents/{id}/propose: a proposal with set_contract/set_document. */
static int propose(struct gov_ctx *c, const char *action, const char *table, const char *idname,
                   const char *id)
{
    if (strcmp(c->msg.msg_type, "proposal") != 0)
        return gov_fail(c, 400, "BadRequest", "a proposal must be signed with message type \"proposal\"");
    json_t *body = NULL, *row = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    json_t *ver = json_object_get(body, "version");
    if (!ver) {
        rc = gov_row_get(c, table, id, &row);
        if (rc == -ENOENT)
            return gov_fail(c, 404, "NotFound", "no %s %s", table, id);
        if (rc < 0)
            return rc;
        ver = json_object_get(row, "version");
    }
    json_t *actions = json_pack("[{s:s, s:{s:s, s:O}}]", "name", action, "args", idname, id, "version", ver);
    json_decref(row);
    rc = gov_proposal_create(c, actions);
    json_decref(actions);
    return rc;
}

/* The contract, which must be accepted (409 ContractNotAccepted otherwise). */
static int contract_accepted(struct gov_ctx *c, const char *id, json_t **out)
{
    int rc = gov_contract_get(c, id, out);
    if (rc < 0)
        return rc;
    if (!is_state(*out, "accepted")) {
        json_decref(*out);
        *out = NULL;
        return gov_fail(c, 409, "ContractNotAccepted",
                        "contract %s is not accepted yet; propose it and have every member accept it", id);
    }
    return 0;
}

json_t *gov_runtime_view(const json_t *contract, const json_t *runtime)
{
    json_t *held = json_object_get(runtime, "disabled_by");
    bool enabled = is_state(contract, "accepted") && json_array_size(held) == 0;
    const char *lg = json_string_value(json_object_get(runtime, "logging"));
    const char *tl = json_string_value(json_object_get(runtime, "telemetry"));
    return json_pack("{s:{s:b, s:o}, s:s, s:s}", "execution", "enabled", enabled, "disabled_by",
                     held ? json_deep_copy(held) : json_array(), "logging", lg ? lg : "disabled", "telemetry",
                     tl ? tl : "disabled");
}

static int runtime_route(struct gov_ctx *c, const char *id, const char *change)
{
    json_t *k = NULL, *rt = NULL;
    int rc = contract_accepted(c, id, &k);
    if (rc < 0)
        return rc;
    rc = gov_row_get(c, "runtime", id, &rt);
    if (rc == -ENOENT) {
        rt = json_pack("{s:s, s:[], s:s, s:s}", "contract_id", id, "disabled_by", "logging", "disabled",
                       "telemetry", "disabled");
        rc = 0;
    }
    if (rc == 0 && change) {
        json_t *held = json_object_get(rt, "disabled_by");
        size_t i, at = (size_t)-1;
        json_t *h;
        json_array_foreach(held, i, h)
        {
            if (json_is_string(h) && strcmp(json_string_value(h), c->actor) == 0)
                at = i;
        }
        bool disable = strcmp(change, "disable") == 0;
        bool changed = false;
        if (disable && at == (size_t)-1) {
            json_array_append_new(held, json_string(c->actor));
            changed = true;
        } else if (!disable && at != (size_t)-1) {
            json_array_remove(held, at);
            changed = true;
        }
        if (changed) {
            rc = gov_row_put(c, "runtime", id, rt, NULL, 0);
            if (rc == 0)
                rc = gov_log_append(c, NULL, disable ? "execution.disable" : "execution.enable",
                                    json_pack("{s:s}", "contract_id", id));
        }
    }
    if (rc == 0)
        rc = gov_ok(c, 200, gov_runtime_view(k, rt));
    json_decref(k);
    json_decref(rt);
    return rc;
}

static int deployment_get(struct gov_ctx *c, const char *id, bool policy)
{
    json_t *k = NULL, *row = NULL;
    int rc = gov_contract_get(c, id, &k);
    if (rc < 0)
        return rc;
    rc = is_state(k, "accepted") ? gov_row_get(c, policy ? "policies" : "deployments", id, &row) : -ENOENT;
    json_decref(k);
    if (rc == -ENOENT)
        return gov_fail(c, 404, "NotFound", "contract %s has no accepted %s yet; propose one with %s", id,
                        policy ? "clean room policy" : "deployment spec",
                        policy ? "`ccr gov policy propose`" : "`ccr gov deployment propose`");
    if (rc < 0)
        return rc;
    if (policy)
        rc = gov_ok(c, 200, json_pack("{s:O}", "measurements", json_object_get(row, "measurements")));
    else
        rc = gov_ok(c, 200,
                    json_pack("{s:O, s:O}", "spec", json_object_get(row, "spec"), "measurement",
                              json_object_get(row, "measurement")));
    json_decref(row);
    return rc;
}

/* ---- secrets ------------------------------------------------------------------------------------------- */

static int secret_put(struct gov_ctx *c, const char *id, const char *name)
{
    if (!gov_id_ok(name))
        return gov_fail(c, 400, "BadRequest",
                        "secret name must be 1 to 128 of letters, digits, '.', '_', '-'");
    json_t *body = NULL, *k = NULL, *old = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    const char *b64 = json_string_value(json_object_get(body, "value"));
    if (!b64)
        return gov_fail(c, 400, "BadRequest", "a secret needs \"value\": its bytes in base64");
    size_t blen = strlen(b64);
    if (blen > CCR_BASE64_LEN(GOV_SECRET_MAX) + 16)
        return gov_fail(c, 400, "BadRequest", "the secret is over 64 KiB");
    rc = contract_accepted(c, id, &k);
    json_decref(k);
    if (rc < 0)
        return rc;
    size_t cap = blen / 4 * 3 + 3;
    uint8_t *val = ccr_malloc(cap);
    if (!val)
        return gov_fail(c, 500, "InternalError", "out of memory");
    int n = ccr_base64_decode(b64, blen, val, cap);
    if (n < 0 || (size_t)n > GOV_SECRET_MAX) {
        ccr_wipe(val, cap);
        ccr_free(val);
        ccr_wipe((char *)b64, blen);
        return gov_fail(c, 400, "BadRequest",
                        n < 0 ? "\"value\" is not base64" : "the secret is over 64 KiB");
    }
    char key[2 * GOV_ID_MAX + 2];
    snprintf(key, sizeof(key), "%s/%s", id, name);
    rc = gov_row_get(c, "secrets", key, &old);
    if (rc == 0 && strcmp(json_string_value(json_object_get(old, "owner")), c->actor) != 0)
        rc = gov_fail(c, 403, "Forbidden",
                      "secret %s of contract %s belongs to member %s; only its owner may "
                      "replace it; choose another name",
                      name, id, json_string_value(json_object_get(old, "owner")));
    else if (rc == -ENOENT || rc == 0)
        rc = 0;
    json_decref(old);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    if (rc == 0 && gov_secret_seal(c->g, key, val, (size_t)n, &sealed, &sealed_len) < 0)
        rc = gov_fail(c, 500, "InternalError", "cannot seal the secret");
    ccr_wipe(val, cap);
    ccr_free(val);
    ccr_wipe((char *)b64, blen); /* the payload's copy of the value (freed with the request) */
    json_t *row = NULL;
    if (rc == 0) {
        row = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", key, "contract_id", id, "name", name, "owner",
                        c->actor, "created_at", c->now_iso);
        rc = gov_row_put(c, "secrets", key, row, sealed, sealed_len);
    }
    ccr_free(sealed);
    if (rc == 0)
        rc = gov_log_append(c, NULL, "secret.put", json_pack("{s:s, s:s}", "contract_id", id, "name", name));
    if (rc == 0)
        rc = gov_ok(c, 200,
                    json_pack("{s:s, s:s, s:s}", "name", name, "owner", c->actor, "created_at", c->now_iso));
    json_decref(row);
    return rc;
}

static int secrets_list(struct gov_ctx *c, const char *id)
{
    json_t *k = NULL, *rows = NULL;
    int rc = gov_contract_get(c, id, &k);
    json_decref(k);
    if (rc < 0)
        return rc;
    const char *args[] = {id};
    rc = gov_rows_select(c, "secrets", "WHERE contract_id = ?1 ORDER BY name", args, 1, &rows);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_array_append_new(arr, json_pack("{s:O, s:O, s:O}", "name", json_object_get(r, "name"), "owner",
                                             json_object_get(r, "owner"), "created_at",
                                             json_object_get(r, "created_at")));
    }
    json_decref(rows);
    return gov_ok(c, 200, json_pack("{s:o}", "secrets", arr));
}

/* ---- events -------------------------------------------------------------------------------------------- */

int gov_event_add(struct gov_ctx *c, const char *contract_id, const char *type, json_t *data,
                  int64_t *out_seq)
{
    int64_t last = 0;
    int rc = gov_db_int(c, "SELECT MAX(seq) FROM events WHERE contract_id = ?1", contract_id, &last);
    if (rc < 0) {
        json_decref(data);
        return rc;
    }
    char key[GOV_ID_MAX + 32];
    snprintf(key, sizeof(key), "%s/%lld", contract_id, (long long)(last + 1));
    json_t *row = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o}", "id", key, "contract_id", contract_id,
                            "seq", (json_int_t)(last + 1), "timestamp", c->now_iso, "type", type, "source",
                            c->actor, "data", data ? data : json_object());
    if (!row)
        return gov_fail(c, 500, "InternalError", "out of memory recording an event");
    rc = gov_row_put(c, "events", key, row, NULL, 0);
    json_decref(row);
    if (rc == 0)
        rc = gov_log_append(c, NULL, "event",
                            json_pack("{s:s, s:I, s:s}", "contract_id", contract_id, "seq",
                                      (json_int_t)(last + 1), "type", type));
    if (rc == 0 && out_seq)
        *out_seq = last + 1;
    return rc;
}

static int events_list(struct gov_ctx *c, const char *id)
{
    json_t *k = NULL, *rows = NULL;
    int rc = gov_contract_get(c, id, &k);
    json_decref(k);
    int64_t from, limit;
    if (rc == 0)
        rc = gov_paging(c, &from, &limit);
    if (rc < 0)
        return rc;
    char fs[32], tail[128];
    snprintf(fs, sizeof(fs), "%lld", (long long)from);
    snprintf(tail, sizeof(tail), "WHERE contract_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT %lld",
             (long long)limit + 1);
    const char *args[] = {id, fs};
    rc = gov_rows_select(c, "events", tail, args, 2, &rows);
    if (rc < 0)
        return rc;
    json_t *arr = json_array(), *next = json_null();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if ((int64_t)i == limit) {
            json_decref(next);
            next = json_incref(json_object_get(r, "seq"));
            break;
        }
        json_array_append_new(
            arr, json_pack("{s:O, s:O, s:O, s:O, s:O}", "seq", json_object_get(r, "seq"), "timestamp",
                           json_object_get(r, "timestamp"), "type", json_object_get(r, "type"), "source",
                           json_object_get(r, "source"), "data", json_object_get(r, "data")));
    }
    json_decref(rows);
    return gov_ok(c, 200, json_pack("{s:o, s:o}", "events", arr, "next", next));
}

int gov_route_contracts(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         put = strcmp(method, "PUT") == 0;
    if (n == 0)
        return get ? contracts_list(c) : no_route(c, method);
    const char *id = seg[0];
    if (!gov_id_ok(id))
        return gov_fail(c, 400, "BadRequest",
                        "contract id must be 1 to 128 of letters, digits, '.', '_', '-'");
    if (n == 1 && put)
        return contract_put(c, id);
    if (n == 1 && get) {
        json_t *k = NULL;
        int rc = gov_contract_get(c, id, &k);
        if (rc < 0)
            return rc;
        rc = gov_ok(c, 200, contract_view(k));
        json_decref(k);
        return rc;
    }
    const char *sub = seg[1];
    if (n == 2 && post && strcmp(sub, "propose") == 0)
        return propose(c, "set_contract", "contracts", "contract_id", id);
    if (n == 2 && get && strcmp(sub, "deployment") == 0)
        return deployment_get(c, id, false);
    if (n == 2 && get && strcmp(sub, "policy") == 0)
        return deployment_get(c, id, true);
    if (n == 2 && get && strcmp(sub, "runtime") == 0)
        return runtime_route(c, id, NULL);
    if (n == 3 && post && strcmp(sub, "execution") == 0 &&
        (strcmp(seg[2], "disable") == 0 || strcmp(seg[2], "enable") == 0))
        return runtime_route(c, id, seg[2]);
    if (n == 2 && get && strcmp(sub, "secrets") == 0)
        return secrets_list(c, id);
    if (n == 3 && put && strcmp(sub, "secrets") == 0)
        return secret_put(c, id, seg[2]);
    if (n == 2 && get && strcmp(sub, "events") == 0)
        return events_list(c, id);
    return no_route(c, method);
}

/* ---- documents ----------------------------------------------------------------------------------------- */

static json_t *document_view(const json_t *d)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "document_id", json_object_get(d, "document_id"),
                     "contract_id", json_object_get(d, "contract_id"), "version",
                     json_object_get(d, "version"), "state", json_object_get(d, "state"), "data",
                     json_object_get(d, "data"), "proposal_id", json_object_get(d, "proposal_id"));
}

static int document_put(struct gov_ctx *c, const char *id)
{
    json_t *body = NULL, *d = NULL, *k = NULL;
    int rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    json_t *data = json_object_get(body, "data"), *ver = json_object_get(body, "version");
    json_t *cidv = json_object_get(body, "contract_id");
    const char *cid = json_string_value(cidv);
    if (!json_is_string(data))
        return gov_fail(c, 400, "BadRequest", "a document needs \"data\" (text)");
    if (cidv && !gov_id_ok(cid))
        return gov_fail(c, 400, "BadRequest", "\"contract_id\" must be a contract id (a string)");
    if (ver && !json_is_integer(ver))
        return gov_fail(c, 400, "BadRequest", "\"version\" must be an integer");
    rc = gov_row_get(c, "documents", id, &d);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (rc == -ENOENT) {
        if (ver)
            return gov_fail(c, 404, "NotFound", "no document %s to update; create it without \"version\"",
                            id);
        if (!gov_id_ok(cid))
            return gov_fail(c, 400, "BadRequest", "a new document needs \"contract_id\"");
        rc = gov_contract_get(c, cid, &k);
        json_decref(k);
        if (rc < 0)
            return rc;
        d = json_pack("{s:s, s:s, s:i, s:s, s:O, s:n, s:s, s:s}", "document_id", id, "contract_id", cid,
                      "version", 1, "state", "draft", "data", data, "proposal_id", "created_by", c->actor,
                      "updated_at", c->now_iso);
        rc = d ? draft_write(c, "documents", "document_id", id, d, "document.put", document_view, 201)
               : gov_fail(c, 500, "InternalError", "out of memory");
        json_decref(d);
        return rc;
    }
    json_int_t cur = json_integer_value(json_object_get(d, "version"));
    if (cid && strcmp(cid, json_string_value(json_object_get(d, "contract_id"))) != 0)
        rc = gov_fail(c, 400, "BadRequest", "document %s belongs to contract %s; it cannot move", id,
                      json_string_value(json_object_get(d, "contract_id")));
    else if (!is_state(d, "draft"))
        rc = gov_fail(c, 409, "ContractNotDraft", "document %s is %s; only a draft can change", id,
                      json_string_value(json_object_get(d, "state")));
    else if (!ver || json_integer_value(ver) != cur)
        rc = gov_fail(c, 412, "VersionMismatch",
                      "document %s is at version %lld; pass \"version\":%lld to update it", id,
                      (long long)cur, (long long)cur);
    if (rc == 0) {
        draft_bump(c, d, data);
        rc = draft_write(c, "documents", "document_id", id, d, "document.put", document_view, 200);
    }
    json_decref(d);
    return rc;
}

int gov_route_documents(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    if (n == 0 || !gov_id_ok(seg[0]))
        return n == 0 ? no_route(c, method)
                      : gov_fail(c, 400, "BadRequest",
                                 "document id must be 1 to 128 of letters, digits, '.', '_', '-'");
    const char *id = seg[0];
    if (n == 1 && strcmp(method, "PUT") == 0)
        return document_put(c, id);
    if (n == 1 && strcmp(method, "GET") == 0) {
        json_t *d = NULL;
        int rc = gov_row_get(c, "documents", id, &d);
        if (rc == -ENOENT)
            return gov_fail(c, 404, "NotFound", "no document %s", id);
        if (rc < 0)
            return rc;
        rc = gov_ok(c, 200, document_view(d));
        json_decref(d);
        return rc;
    }
    if (n == 2 && strcmp(method, "POST") == 0 && strcmp(seg[1], "propose") == 0)
        return propose(c, "set_document", "documents", "document_id", id);
    return no_route(c, method);
}

/* ---- audit --------------------------------------------------------------------------------------------- */

int gov_route_audit(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    if (strcmp(method, "GET") != 0)
        return no_route(c, method);
    if (n == 0) {
        int64_t from, limit, next = 0;
        json_t *entries = NULL;
        int rc = gov_paging(c, &from, &limit);
        if (rc == 0)
            rc = gov_log_list(c, from, limit, &entries, &next);
        if (rc < 0)
            return rc;
        return gov_ok(
            c, 200,
            json_pack("{s:o, s:o}", "entries", entries, "next", next ? json_integer(next) : json_null()));
    }
    if (n == 1 && strcmp(seg[0], "verify") == 0) {
        /* the route runs under g->mu already: verify inline on this connection */
        json_t *rep = NULL;
        int rc = gov_audit_verify_locked(c->db, &rep);
        if (rc < 0 && rc != -EBADMSG)
            return gov_fail(c, 500, "InternalError", "the audit could not run");
        return gov_ok(c, 200, rep);
    }
    return no_route(c, method);
}
