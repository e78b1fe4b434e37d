/*
 * gov_members.c - members, proposals, ballots and the proposal actions (docs/governance.md, "Routes:
 * members and proposals").
 *
 * Actions are checked twice: when the proposal is created (so a bad one is refused with 400/404/409 at
 * once) and when it is accepted, where they are applied in order in the ballot's transaction. A
 * proposal that carries set_contract or set_document marks that contract or document "proposed" at
 * creation; a rejection or withdrawal puts it back to "draft".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gov_int.h"

/* ---- members ------------------------------------------------------------------------------------------- */

static int members_list(struct gov_ctx *c)
{
    json_t *rows = NULL;
    int rc = gov_rows_select(c, "members", "ORDER BY created_at, member_id", NULL, 0, &rows);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_array_append_new(arr,
                              json_pack("{s:O, s:O, s:O, s:O}", "member_id", json_object_get(r, "member_id"),
                                        "name", json_object_get(r, "name"), "status",
                                        json_object_get(r, "status"), "cert", json_object_get(r, "cert")));
    }
    json_decref(rows);
    return gov_ok(c, 200, json_pack("{s:o}", "members", arr));
}

static int member_activate(struct gov_ctx *c)
{
    if (strcmp(c->msg.msg_type, "ack") != 0)
        return gov_fail(c, 400, "BadRequest", "activation must be signed with message type \"ack\"");
    json_t *m = NULL;
    int rc = gov_row_get(c, "members", c->actor, &m);
    if (rc < 0)
        return rc == -ENOENT ? gov_fail(c, 404, "NotFound", "member %s not found", c->actor) : rc;
    if (strcmp(json_string_value(json_object_get(m, "status")), "accepted") == 0) {
        json_object_set_new(m, "status", json_string("active"));
        rc = gov_row_put(c, "members", c->actor, m, NULL, 0);
        if (rc == 0)
            rc = gov_log_append(c, NULL, "member.activate", json_pack("{s:s}", "member_id", c->actor));
    }
    json_decref(m);
    if (rc < 0)
        return rc;
    return gov_ok(c, 200, json_pack("{s:s, s:s}", "member_id", c->actor, "status", "active"));
}

int gov_route_members(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    if (n == 0 && strcmp(method, "GET") == 0)
        return members_list(c);
    if (n == 1 && strcmp(seg[0], "activate") == 0 && strcmp(method, "POST") == 0)
        return member_activate(c);
    return gov_fail(c, 404, "NotFound", "no route %s %s", method, c->req->path);
}

/* ---- proposal objects ---------------------------------------------------------------------------------- */

static json_t *proposal_view(const json_t *p)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "proposal_id", json_object_get(p, "proposal_id"),
                     "proposer", json_object_get(p, "proposer"), "actions", json_object_get(p, "actions"),
                     "state", json_object_get(p, "state"), "ballots", json_object_get(p, "ballots"),
                     "created_at", json_object_get(p, "created_at"), "closed_at",
                     json_object_get(p, "closed_at"));
}

static const char *str_arg(const json_t *args, const char *name)
{
    return json_string_value(json_object_get(args, name));
}

static int active_member_ids(struct gov_ctx *c, json_t **out)
{
    const char *args[] = {"active"};
    return gov_rows_select(c, "members", "WHERE status = ?1 ORDER BY member_id", args, 1, out);
}

/* ---- actions ------------------------------------------------------------------------------------------- */

static bool is_disable_action(const char *name)
{
    return strcmp(name, "disable_logging") == 0 || strcmp(name, "disable_telemetry") == 0;
}

static bool is_option_action(const char *name)
{
    return strcmp(name, "enable_logging") == 0 || strcmp(name, "disable_logging") == 0 ||
           strcmp(name, "enable_telemetry") == 0 || strcmp(name, "disable_telemetry") == 0;
}

/* The contract of an action that needs an accepted contract. *out: caller json_decref. */
static int accepted_contract(struct gov_ctx *c, const char *action, const json_t *args, json_t **out)
{
    const char *cid = str_arg(args, "contract_id");
    if (!gov_id_ok(cid))
        return gov_fail(c, 400, "BadRequest", "%s needs args.contract_id (letters, digits, '.', '_', '-')",
                        action);
    json_t *k = NULL;
    int rc = gov_contract_get(c, cid, &k);
    if (rc < 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(k, "state")), "accepted") != 0) {
        json_decref(k);
        return gov_fail(c, 409, "ContractNotAccepted",
                        "%s: contract %s is not accepted yet; propose it and vote "
                        "it through first",
                        action, cid);
    }
    *out = k;
    return 0;
}

/* A draft (contract or document) named by args with the version they carry. */
static int draft_at_version(struct gov_ctx *c, const char *action, const char *table, const char *idname,
                            const json_t *args, json_t **out)
{
    const char *id = str_arg(args, idname);
    json_t *ver = json_object_get(args, "version");
    if (!gov_id_ok(id) || !json_is_integer(ver))
        return gov_fail(c, 400, "BadRequest", "%s needs args.%s and args.version (an integer)", action,
                        idname);
    json_t *row = NULL;
    int rc = gov_row_get(c, table, id, &row);
    if (rc == -ENOENT)
        return gov_fail(c, 404, "NotFound", "%s: no %s %s", action, table, id);
    if (rc < 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(row, "state")), "draft") != 0) {
        rc = gov_fail(c, 409, "ContractNotDraft", "%s: %s %s is %s, not a draft; only drafts can be proposed",
                      action, table, id, json_string_value(json_object_get(row, "state")));
    } else if (json_integer_value(json_object_get(row, "version")) != json_integer_value(ver)) {
        rc = gov_fail(c, 412, "VersionMismatch",
                      "%s: %s %s is at version %lld, not %lld; show it and propose "
                      "the current version",
                      action, table, id, (long long)json_integer_value(json_object_get(row, "version")),
                      (long long)json_integer_value(ver));
    }
    if (rc < 0) {
        json_decref(row);
        return rc;
    }
    *out = row;
    return 0;
}

/* Checks one action at proposal time; for set_contract/set_document also returns the draft row. */
static int action_check(struct gov_ctx *c, const json_t *act, json_t **out_draft)
{
    const char *name = json_string_value(json_object_get(act, "name"));
    json_t *args = json_object_get(act, "args");
    if (!name || !json_is_object(args))
        return gov_fail(c, 400, "BadRequest", "every action needs \"name\" and \"args\" (an object)");
    json_t *k = NULL;
    int rc;
    if (strcmp(name, "add_member") == 0) {
        const char *pem = str_arg(args, "cert");
        json_t *nm = json_object_get(args, "name");
        if (!pem)
            return gov_fail(c, 400, "BadRequest",
                            "add_member needs args.cert (the member's certificate PEM)");
        if (nm && (!json_is_string(nm) || json_string_length(nm) == 0 || json_string_length(nm) > 256))
            return gov_fail(c, 400, "BadRequest", "add_member: args.name must be a string of 1 to 256 bytes");
        struct ccr_gov_ident *id = NULL;
        struct ccr_err e;
        ccr_err_clear(&e);
        if (ccr_gov_ident_from_cert_pem(pem, strlen(pem), &id, &e) < 0)
            return gov_fail(c, 400, "BadRequest", "add_member: the certificate is not usable: %s",
                            e.msg[0] ? e.msg : "not an EC P-384 certificate");
        json_t *m = NULL;
        rc = gov_row_get(c, "members", ccr_gov_ident_id(id), &m);
        if (rc == 0 && strcmp(json_string_value(json_object_get(m, "status")), "removed") != 0)
            rc = gov_fail(c, 400, "BadRequest", "add_member: %s is already a member", ccr_gov_ident_id(id));
        else if (rc == -ENOENT || rc == 0)
            rc = 0;
        json_decref(m);
        ccr_gov_ident_destroy(id);
        return rc;
    }
    if (strcmp(name, "remove_member") == 0) {
        const char *mid = str_arg(args, "member_id");
        if (!mid)
            return gov_fail(c, 400, "BadRequest", "remove_member needs args.member_id (64 hex digits)");
        json_t *m = NULL;
        rc = gov_hex64_ok(mid) ? gov_row_get(c, "members", mid, &m) : -ENOENT;
        if (rc == -ENOENT)
            return gov_fail(c, 404, "NotFound", "remove_member: %.64s is not a member", mid);
        if (rc == 0 && strcmp(json_string_value(json_object_get(m, "status")), "removed") == 0)
            rc = gov_fail(c, 400, "BadRequest", "remove_member: %s was already removed", mid);
        json_decref(m);
        return rc;
    }
    if (strcmp(name, "set_contract") == 0)
        return draft_at_version(c, name, "contracts", "contract_id", args, out_draft);
    if (strcmp(name, "set_document") == 0)
        return draft_at_version(c, name, "documents", "document_id", args, out_draft);
    if (strcmp(name, "set_deployment_spec") == 0) {
        if (!json_is_object(json_object_get(args, "spec")))
            return gov_fail(c, 400, "BadRequest", "set_deployment_spec needs args.spec (a JSON object)");
        rc = accepted_contract(c, name, args, &k);
        json_decref(k);
        return rc;
    }
    if (strcmp(name, "set_cleanroom_policy") == 0) {
        json_t *ms = json_object_get(args, "measurements");
        if (!json_is_array(ms) || json_array_size(ms) == 0 || json_array_size(ms) > 64)
            return gov_fail(c, 400, "BadRequest",
                            "set_cleanroom_policy needs args.measurements: 1 to 64 "
                            "measurements (64 hex digits each)");
        size_t i;
        json_t *m;
        json_array_foreach(ms, i, m)
        {
            if (!gov_hex64_ok(json_string_value(m)))
                return gov_fail(c, 400, "BadRequest",
                                "set_cleanroom_policy: measurement %zu is not 64 hex digits", i);
        }
        rc = accepted_contract(c, name, args, &k);
        json_decref(k);
        return rc;
    }
    if (is_option_action(name)) {
        rc = accepted_contract(c, name, args, &k);
        json_decref(k);
        return rc;
    }
    return gov_fail(
        c, 400, "BadRequest",
        "unknown action \"%.64s\"; known: add_member, remove_member, set_contract, set_deployment_spec, "
        "set_cleanroom_policy, enable_logging, disable_logging, enable_telemetry, disable_telemetry, "
        "set_document",
        name);
}

static int runtime_get(struct gov_ctx *c, const char *cid, json_t **out)
{
    int rc = gov_row_get(c, "runtime", cid, out);
    if (rc == -ENOENT) {
        *out = json_pack("{s:s, s:[], s:s, s:s}", "contract_id", cid, "disabled_by", "logging", "disabled",
                         "telemetry", "disabled");
        return *out ? 0 : gov_fail(c, 500, "InternalError", "out of memory");
    }
    return rc;
}

/* Lifts every execution hold of a removed member. */
static int drop_holds(struct gov_ctx *c, const char *mid)
{
    json_t *rows = NULL;
    int rc = gov_rows_select(c, "runtime", "ORDER BY contract_id", NULL, 0, &rows);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_t *held = json_object_get(r, "disabled_by");
        size_t j;
        json_t *h;
        bool changed = false;
        json_array_foreach(held, j, h)
        {
            if (json_is_string(h) && strcmp(json_string_value(h), mid) == 0) {
                json_array_remove(held, j);
                changed = true;
                break;
            }
        }
        if (changed && rc == 0)
            rc = gov_row_put(c, "runtime", json_string_value(json_object_get(r, "contract_id")), r, NULL, 0);
    }
    json_decref(rows);
    return rc;
}

static int set_draft_state(struct gov_ctx *c, const char *table, const char *id, const char *pid,
                           const char *from, const char *to)
{
    json_t *row = NULL;
    int rc = gov_row_get(c, table, id, &row);
    if (rc == -ENOENT)
        return gov_fail(c, 409, "ContractNotDraft", "%s %s no longer exists", table, id);
    if (rc < 0)
        return rc;
    const char *rp = json_string_value(json_object_get(row, "proposal_id"));
    if (strcmp(json_string_value(json_object_get(row, "state")), from) != 0 || !rp || strcmp(rp, pid) != 0) {
        json_decref(row);
        /* closing a proposal whose draft moved on is harmless; accepting one is not */
        return strcmp(to, "draft") == 0 ? 0
                                        : gov_fail(c, 409, "ContractNotDraft",
                                                   "%s %s is no longer proposed by %s", table, id, pid);
    }
    json_object_set_new(row, "state", json_string(to));
    if (strcmp(to, "draft") == 0)
        json_object_set_new(row, "proposal_id", json_null());
    json_object_set_new(row, "updated_at", json_string(c->now_iso));
    rc = gov_row_put(c, table, id, row, NULL, 0);
    json_decref(row);
    return rc;
}

/* Applies one action of an accepted proposal. */
static int action_apply(struct gov_ctx *c, const char *pid, const json_t *act)
{
    const char *name = json_string_value(json_object_get(act, "name"));
    const json_t *args = json_object_get(act, "args");
    int rc;
    if (strcmp(name, "add_member") == 0) {
        const char *pem = str_arg(args, "cert");
        struct ccr_gov_ident *id = NULL;
        if (ccr_gov_ident_from_cert_pem(pem, strlen(pem), &id, NULL) < 0)
            return gov_fail(c, 400, "BadRequest", "add_member: the certificate is not usable");
        const char *nm = str_arg(args, "name");
        json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s}", "member_id", ccr_gov_ident_id(id), "name",
                                nm ? nm : ccr_gov_ident_name(id), "status", "accepted", "cert", pem,
                                "created_at", c->now_iso);
        json_t *old = NULL;
        rc = gov_row_get(c, "members", ccr_gov_ident_id(id), &old);
        if (rc == 0 && strcmp(json_string_value(json_object_get(old, "status")), "removed") != 0)
            rc = 0; /* already a member: nothing to do */
        else if (rc == 0 || rc == -ENOENT)
            rc = gov_row_put(c, "members", ccr_gov_ident_id(id), row, NULL, 0);
        json_decref(old);
        json_decref(row);
        ccr_gov_ident_destroy(id);
        return rc;
    }
    if (strcmp(name, "remove_member") == 0) {
        const char *mid = str_arg(args, "member_id");
        json_t *m = NULL;
        rc = gov_row_get(c, "members", mid, &m);
        if (rc == -ENOENT)
            return gov_fail(c, 404, "NotFound", "remove_member: %s is not a member", mid);
        if (rc < 0)
            return rc;
        json_object_set_new(m, "status", json_string("removed"));
        rc = gov_row_put(c, "members", mid, m, NULL, 0);
        json_decref(m);
        return rc == 0 ? drop_holds(c, mid) : rc;
    }
    if (strcmp(name, "set_contract") == 0) {
        const char *cid = str_arg(args, "contract_id");
        rc = set_draft_state(c, "contracts", cid, pid, "proposed", "accepted");
        json_t *rt = NULL;
        if (rc == 0)
            rc = runtime_get(c, cid, &rt);
        if (rc == 0)
            rc = gov_row_put(c, "runtime", cid, rt, NULL, 0);
        json_decref(rt);
        return rc;
    }
    if (strcmp(name, "set_document") == 0)
        return set_draft_state(c, "documents", str_arg(args, "document_id"), pid, "proposed", "accepted");

    /* the rest need an accepted contract */
    json_t *k = NULL;
    rc = accepted_contract(c, name, args, &k);
    json_decref(k);
    if (rc < 0)
        return rc;
    const char *cid = str_arg(args, "contract_id");
    if (strcmp(name, "set_deployment_spec") == 0) {
        json_t *spec = json_object_get(args, "spec");
        char *canon = json_dumps(spec, GOV_CANON_FLAGS);
        if (!canon)
            return gov_fail(c, 500, "InternalError", "out of memory");
        uint8_t h[32];
        char hex[65];
        ccr_gov_sha256(canon, strlen(canon), h);
        ccr_gov_hex(h, 32, hex);
        free(canon);
        json_t *row = json_pack("{s:s, s:O, s:s, s:s}", "contract_id", cid, "spec", spec, "measurement", hex,
                                "proposal_id", pid);
        rc = gov_row_put(c, "deployments", cid, row, NULL, 0);
        json_decref(row);
        return rc;
    }
    if (strcmp(name, "set_cleanroom_policy") == 0) {
        json_t *ms = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(args, "measurements"), i, m)
        {
            char low[65];
            snprintf(low, sizeof(low), "%s", json_string_value(m));
            for (char *p = low; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                    *p = (char)(*p - 'A' + 'a');
            json_array_append_new(ms, json_string(low));
        }
        json_t *row =
            json_pack("{s:s, s:o, s:s}", "contract_id", cid, "measurements", ms, "proposal_id", pid);
        rc = gov_row_put(c, "policies", cid, row, NULL, 0);
        json_decref(row);
        return rc;
    }
    /* logging / telemetry options */
    json_t *rt = NULL;
    rc = runtime_get(c, cid, &rt);
    if (rc < 0)
        return rc;
    bool enable = strncmp(name, "enable_", 7) == 0;
    const char *opt = strchr(name, '_') + 1;
    json_object_set_new(rt, opt, json_string(enable ? "enabled" : "disabled"));
    rc = gov_row_put(c, "runtime", cid, rt, NULL, 0);
    json_decref(rt);
    return rc;
}

/* Closes p (taken) as state; applies its actions when accepted; writes it and logs. */
static int proposal_close(struct gov_ctx *c, json_t *p, const char *state)
{
    const char *pid = json_string_value(json_object_get(p, "proposal_id"));
    json_t *actions = json_object_get(p, "actions");
    size_t i;
    json_t *act;
    int rc = 0;
    json_array_foreach(actions, i, act)
    {
        const char *name = json_string_value(json_object_get(act, "name"));
        const json_t *args = json_object_get(act, "args");
        if (strcmp(state, "accepted") == 0) {
            rc = action_apply(c, pid, act);
        } else if (strcmp(name, "set_contract") == 0) {
            rc = set_draft_state(c, "contracts", str_arg(args, "contract_id"), pid, "proposed", "draft");
        } else if (strcmp(name, "set_document") == 0) {
            rc = set_draft_state(c, "documents", str_arg(args, "document_id"), pid, "proposed", "draft");
        }
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        json_object_set_new(p, "state", json_string(state));
        json_object_set_new(p, "closed_at", json_string(c->now_iso));
        rc = gov_row_put(c, "proposals", pid, p, NULL, 0);
    }
    if (rc == 0) {
        char action[32];
        snprintf(action, sizeof(action), "proposal.%s",
                 strcmp(state, "accepted") == 0   ? "accept"
                 : strcmp(state, "rejected") == 0 ? "reject"
                                                  : "withdraw");
        rc = gov_log_append(c, strcmp(state, "withdrawn") == 0 ? NULL : "service", action,
                            json_pack("{s:s}", "proposal_id", pid));
    }
    if (rc == 0)
        rc = gov_ok(c, 200, proposal_view(p));
    json_decref(p);
    return rc;
}

int gov_proposal_create(struct gov_ctx *c, json_t *actions)
{
    if (!json_is_array(actions) || json_array_size(actions) == 0 || json_array_size(actions) > 100)
        return gov_fail(c, 400, "BadRequest", "a proposal needs \"actions\": an array of 1 to 100 actions");
    size_t i;
    json_t *act;
    bool all_disable = true;
    json_t *drafts = json_array(); /* [table, row] of the drafts this proposal proposes */
    int rc = 0;
    json_array_foreach(actions, i, act)
    {
        json_t *draft = NULL;
        rc = action_check(c, act, &draft);
        if (rc < 0)
            break;
        const char *name = json_string_value(json_object_get(act, "name"));
        all_disable = all_disable && is_disable_action(name);
        if (draft)
            json_array_append_new(
                drafts,
                json_pack("[s, o]", strcmp(name, "set_contract") == 0 ? "contracts" : "documents", draft));
    }
    int64_t max_n = 0;
    if (rc == 0)
        rc = gov_db_int(c, "SELECT MAX(n) FROM proposals", NULL, &max_n);
    if (rc < 0) {
        json_decref(drafts);
        return rc;
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "p-%lld", (long long)(max_n + 1));
    json_t *p = json_pack("{s:s, s:I, s:s, s:O, s:s, s:{}, s:s, s:n}", "proposal_id", pid, "n",
                          (json_int_t)(max_n + 1), "proposer", c->actor, "actions", actions, "state", "open",
                          "ballots", "created_at", c->now_iso, "closed_at");
    rc = gov_row_put(c, "proposals", pid, p, NULL, 0);
    json_t *d;
    json_array_foreach(drafts, i, d)
    {
        if (rc < 0)
            break;
        const char *table = json_string_value(json_array_get(d, 0));
        json_t *row = json_array_get(d, 1);
        const char *keycol = strcmp(table, "contracts") == 0 ? "contract_id" : "document_id";
        const char *id = json_string_value(json_object_get(row, keycol));
        if (strcmp(json_string_value(json_object_get(row, "state")), "draft") != 0) {
            rc = gov_fail(c, 409, "ContractNotDraft", "%s %s is proposed twice in one proposal", table, id);
            break;
        }
        json_object_set_new(row, "state", json_string("proposed"));
        json_object_set_new(row, "proposal_id", json_string(pid));
        json_object_set_new(row, "updated_at", json_string(c->now_iso));
        rc = gov_row_put(c, table, id, row, NULL, 0);
    }
    json_decref(drafts);
    if (rc == 0)
        rc = gov_log_append(c, NULL, "proposal.create",
                            json_pack("{s:s, s:O}", "proposal_id", pid, "actions", actions));
    if (rc < 0) {
        json_decref(p);
        return rc;
    }
    if (all_disable) {
        rc = proposal_close(c, p, "accepted");
        if (rc == 0)
            c->status = 201;
        return rc;
    }
    rc = gov_ok(c, 201, proposal_view(p));
    json_decref(p);
    return rc;
}

/* ---- proposal routes ----------------------------------------------------------------------------------- */

static int proposal_load(struct gov_ctx *c, const char *pid, json_t **out)
{
    int rc = gov_row_get(c, "proposals", pid, out);
    if (rc == -ENOENT)
        return gov_fail(c, 404, "NotFound", "no proposal %.64s; list them with GET /proposals", pid);
    return rc;
}

static int proposals_list(struct gov_ctx *c)
{
    static const char *const states[] = {"open", "accepted", "rejected", "withdrawn", NULL};
    return gov_list_by_state(c, "proposals", "proposals", "n", states, proposal_view);
}

static int proposal_check_header(struct gov_ctx *c, const char *type, const char *pid)
{
    if (strcmp(c->msg.msg_type, type) != 0)
        return gov_fail(c, 400, "BadRequest", "this request must be signed with message type \"%s\"", type);
    if (strcmp(c->msg.proposal_id, pid) != 0)
        return gov_fail(
            c, 401, "RequestMismatch",
            "the envelope's ccf.gov.msg.proposal_id \"%.64s\" is not the proposal in the path (%.64s)",
            c->msg.proposal_id, pid);
    return 0;
}

static int ballot(struct gov_ctx *c, const char *pid)
{
    int rc = proposal_check_header(c, "ballot", pid);
    json_t *body = NULL, *p = NULL, *active = NULL;
    if (rc == 0)
        rc = gov_body(c, &body);
    if (rc < 0)
        return rc;
    const char *vote = json_string_value(json_object_get(body, "vote"));
    if (!vote || (strcmp(vote, "accept") != 0 && strcmp(vote, "reject") != 0))
        return gov_fail(c, 400, "BadRequest",
                        "the ballot needs {\"vote\":\"accept\"} or {\"vote\":\"reject\"}");
    rc = proposal_load(c, pid, &p);
    if (rc < 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(p, "state")), "open") != 0) {
        rc = gov_fail(c, 409, "ProposalNotOpen", "proposal %s is %s; ballots are only taken while it is open",
                      pid, json_string_value(json_object_get(p, "state")));
        goto out;
    }
    json_t *ballots = json_object_get(p, "ballots");
    if (json_object_get(ballots, c->actor)) {
        rc = gov_fail(c, 409, "AlreadyVoted", "member %s already voted on %s; a ballot cannot be changed",
                      c->actor, pid);
        goto out;
    }
    json_object_set_new(ballots, c->actor, json_string(vote));
    rc = gov_row_put(c, "proposals", pid, p, NULL, 0);
    if (rc == 0)
        rc = gov_log_append(c, NULL, "ballot", json_pack("{s:s, s:s}", "proposal_id", pid, "vote", vote));
    if (rc < 0)
        goto out;
    if (strcmp(vote, "reject") == 0) {
        rc = proposal_close(c, p, "rejected");
        p = NULL;
        goto out;
    }
    rc = active_member_ids(c, &active);
    if (rc < 0)
        goto out;
    bool all = true;
    size_t i;
    json_t *m;
    json_array_foreach(active, i, m)
    {
        const char *v =
            json_string_value(json_object_get(ballots, json_string_value(json_object_get(m, "member_id"))));
        all = all && v && strcmp(v, "accept") == 0;
    }
    if (all) {
        rc = proposal_close(c, p, "accepted");
        p = NULL;
        goto out;
    }
    rc = gov_ok(c, 200, proposal_view(p));
out:
    json_decref(active);
    json_decref(p);
    return rc;
}

static int withdraw(struct gov_ctx *c, const char *pid)
{
    int rc = proposal_check_header(c, "withdrawal", pid);
    json_t *p = NULL;
    if (rc == 0)
        rc = proposal_load(c, pid, &p);
    if (rc < 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(p, "proposer")), c->actor) != 0)
        rc = gov_fail(c, 403, "Forbidden", "only the proposer (%s) may withdraw %s",
                      json_string_value(json_object_get(p, "proposer")), pid);
    else if (strcmp(json_string_value(json_object_get(p, "state")), "open") != 0)
        rc = gov_fail(c, 409, "ProposalNotOpen", "proposal %s is %s; only an open proposal can be withdrawn",
                      pid, json_string_value(json_object_get(p, "state")));
    if (rc < 0) {
        json_decref(p);
        return rc;
    }
    return proposal_close(c, p, "withdrawn");
}

int gov_route_proposals(struct gov_ctx *c, const char *method, char **seg, size_t n)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (n == 0 && get)
        return proposals_list(c);
    if (n == 0 && post) {
        if (strcmp(c->msg.msg_type, "proposal") != 0)
            return gov_fail(c, 400, "BadRequest", "a proposal must be signed with message type \"proposal\"");
        json_t *body = NULL;
        int rc = gov_body(c, &body);
        return rc < 0 ? rc : gov_proposal_create(c, json_object_get(body, "actions"));
    }
    if (n == 1 && get) {
        json_t *p = NULL;
        int rc = proposal_load(c, seg[0], &p);
        if (rc < 0)
            return rc;
        rc = gov_ok(c, 200, proposal_view(p));
        json_decref(p);
        return rc;
    }
    if (n == 2 && post && strcmp(seg[1], "ballots") == 0)
        return ballot(c, seg[0]);
    if (n == 2 && post && strcmp(seg[1], "withdraw") == 0)
        return withdraw(c, seg[0]);
    return gov_fail(c, 404, "NotFound", "no route %s %s", method, c->req->path);
}
