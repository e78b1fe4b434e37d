/*
 * gov.c - the governance service: creating and opening a service directory, authenticating each request
 * (docs/governance.md, "Envelope": the checks run in the documented order), routing it, and running it
 * in one SQLite transaction.
 *
 * Locking: one connection, one mutex. A signed request takes the mutex, opens BEGIN IMMEDIATE, checks
 * the envelope and records its signature (replay protection), then runs the route inside a savepoint.
 * A route that answers an error rolls back to the savepoint, so only the replay record survives; a
 * route that succeeds commits its rows together with their log entries.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gov_crypto_int.h"
#include "gov_int.h"

/* ---- small helpers ------------------------------------------------------------------------------------- */

void gov_iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        memset(&tm, 0, sizeof(tm));
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool gov_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > GOV_ID_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool gov_hex64_ok(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return false;
    }
    return true;
}

static json_t *error_body(const char *code, const char *msg)
{
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

int gov_fail(struct gov_ctx *c, int status, const char *code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(c->answer);
    c->status = status;
    c->answer = error_body(code, msg);
    if (!c->answer) {
        /* the message echoes something the client sent that is not UTF-8 (a raw path, a header) */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
        c->answer = error_body(code, msg);
    }
    return GOV_ANSWERED;
}

int gov_fail_db(struct gov_ctx *c, const char *what)
{
    return gov_fail(c, 500, "InternalError",
                    "the service could not %s: %s; retry, and check the service's disk", what,
                    c->db ? sqlite3_errmsg(c->db) : "no database");
}

int gov_ok(struct gov_ctx *c, int status, json_t *body)
{
    if (!body)
        return gov_fail(c, 500, "InternalError", "out of memory building the answer");
    json_decref(c->answer);
    c->status = status;
    c->answer = body;
    return 0;
}

int gov_body(struct gov_ctx *c, json_t **out)
{
    if (!c->payload) {
        json_error_t je;
        if (c->msg.payload_len == 0)
            return gov_fail(c, 400, "BadRequest", "the request body is empty; send a JSON object");
        c->payload =
            json_loadb((const char *)c->msg.payload, c->msg.payload_len, JSON_REJECT_DUPLICATES, &je);
        if (!c->payload)
            return gov_fail(c, 400, "BadRequest", "the request body is not JSON (line %d, column %d: %s)",
                            je.line, je.column, je.text);
    }
    if (!json_is_object(c->payload))
        return gov_fail(c, 400, "BadRequest", "the request body must be a JSON object");
    *out = c->payload;
    return 0;
}

bool gov_query(const struct gov_ctx *c, const char *key, char *buf, size_t cap)
{
    const char *q = c->req->query;
    size_t kl = strlen(key);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(buf, q + kl + 1, vl);
            buf[vl] = '\0';
            return true;
        }
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

int gov_list_by_state(struct gov_ctx *c, const char *table, const char *name, const char *order,
                      const char *const *states, json_t *(*view)(const json_t *row))
{
    char state[32], tail[128];
    const char *args[1] = {state};
    size_t n_args = 0;
    if (gov_query(c, "state", state, sizeof(state))) {
        size_t i = 0;
        while (states[i] && strcmp(states[i], state) != 0)
            i++;
        if (!states[i]) {
            char known[128] = "";
            for (i = 0; states[i]; i++)
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                         states[i]);
            return gov_fail(c, 400, "BadRequest", "state=%s: use one of %s", state, known);
        }
        n_args = 1;
    }
    snprintf(tail, sizeof(tail), "%sORDER BY %s", n_args ? "WHERE state = ?1 " : "", order);
    json_t *rows = NULL;
    int rc = gov_rows_select(c, table, tail, args, n_args, &rows);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) json_array_append_new(arr, view(r));
    json_decref(rows);
    return gov_ok(c, 200, json_pack("{s:o}", name, arr));
}

static bool parse_int(const char *s, int64_t *out)
{
    if (!*s || strlen(s) > 18)
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

int gov_paging(struct gov_ctx *c, int64_t *out_from, int64_t *out_limit)
{
    char buf[32];
    int64_t from = 1, limit = 100;
    if (gov_query(c, "from", buf, sizeof(buf)) && !parse_int(buf, &from))
        return gov_fail(c, 400, "BadRequest", "from=%s is not a sequence number; pass from=1 or later", buf);
    if (gov_query(c, "limit", buf, sizeof(buf)) && (!parse_int(buf, &limit) || limit < 1 || limit > 1000))
        return gov_fail(c, 400, "BadRequest", "limit=%s is out of range; pass 1 to 1000", buf);
    *out_from = from < 1 ? 1 : from;
    *out_limit = limit;
    return 0;
}

static int64_t gov_now(const struct ccr_gov *g)
{
    return g->now ? g->now(g->now_arg) : (int64_t)time(NULL);
}

/* ---- init, open, close --------------------------------------------------------------------------------- */

int ccr_gov_init_dir(const char *data_dir, const char *operator_cert_pem, size_t len, struct ccr_err *err)
{
    if (!data_dir || !operator_cert_pem)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no data directory or operator certificate given");
    struct ccr_gov_ident *op = NULL;
    int rc = ccr_gov_ident_from_cert_pem(operator_cert_pem, len, &op, err);
    if (rc < 0) {
        ccr_err_where(err, "operator certificate");
        return rc;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        rc = ccr_err_set(err, -errno, data_dir, -1, "cannot create the data directory: %s", strerror(errno));
        goto out;
    }
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/gov.db", data_dir) >= (int)sizeof(path)) {
        rc = ccr_err_set(err, -ENAMETOOLONG, data_dir, -1, "data directory path too long");
        goto out;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        rc = ccr_err_set(err, -EEXIST, path, -1,
                         "a service already exists here; use another --data-dir or serve this one");
        goto out;
    }
    /* a sealing key left by an init that failed before creating gov.db sealed nothing: replace it */
    char kpath[4096];
    snprintf(kpath, sizeof(kpath), "%s/sealing.key", data_dir);
    struct ccr_key key;
    rc = ccr_key_generate(&key);
    if (rc == 0)
        rc = ccr_key_file_store(kpath, &key, true, err);
    ccr_key_wipe(&key);
    if (rc < 0)
        goto out;

    struct ccr_gov g = {0};
    rc = gov_db_open(data_dir, true, &g.db, err);
    if (rc < 0)
        goto out;
    struct gov_ctx c = {.g = &g, .db = g.db, .rows = json_array()};
    c.now = (int64_t)time(NULL);
    gov_iso_time(c.now, c.now_iso);
    snprintf(c.actor, sizeof(c.actor), "service");
    int r =
        sqlite3_exec(g.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : gov_fail_db(&c, "begin");
    const char *id = ccr_gov_ident_id(op);
    if (r == 0) {
        json_t *row =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "member_id", id, "name", ccr_gov_ident_name(op), "status",
                      "active", "cert", ccr_gov_ident_cert_pem(op), "created_at", c.now_iso);
        r = gov_row_put(&c, "members", id, row, NULL, 0);
        json_decref(row);
    }
    if (r == 0)
        r = gov_log_append(&c, NULL, "service.init", json_pack("{s:s}", "operator", id));
    if (r == 0 && sqlite3_exec(g.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        r = gov_fail_db(&c, "commit");
    if (r != 0) {
        sqlite3_exec(g.db, "ROLLBACK", NULL, NULL, NULL);
        const char *m = json_string_value(json_object_get(json_object_get(c.answer, "error"), "message"));
        rc = ccr_err_set(err, -EIO, path, -1, "cannot initialise the database: %s", m ? m : "unknown error");
    }
    json_decref(c.rows);
    json_decref(c.answer);
    sqlite3_close(g.db);
    if (rc < 0)
        unlink(path);
out:
    ccr_gov_ident_destroy(op);
    return rc;
}

int ccr_gov_open(const struct ccr_gov_config *cfg, struct ccr_gov **out, struct ccr_err *err)
{
    if (!cfg || !cfg->data_dir || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no configuration or data directory given");
    struct ccr_gov *g = ccr_calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int rc = -ENOMEM;
    pthread_mutex_init(&g->mu, NULL);
    g->data_dir = strdup(cfg->data_dir);
    g->allow_virtual = cfg->allow_virtual;
    g->skew = cfg->max_skew_s ? cfg->max_skew_s : GOV_DEFAULT_SKEW;
    g->now = cfg->now;
    g->now_arg = cfg->now_arg;
    if (!g->data_dir)
        goto fail;
    if (cfg->n_verifiers) {
        g->verifiers = ccr_calloc(cfg->n_verifiers, sizeof(*g->verifiers));
        if (!g->verifiers)
            goto fail;
        memcpy(g->verifiers, cfg->verifiers, cfg->n_verifiers * sizeof(*g->verifiers));
        g->n_verifiers = cfg->n_verifiers;
    }
    char kpath[4096];
    snprintf(kpath, sizeof(kpath), "%s/sealing.key", cfg->data_dir);
    rc = gov_db_open(cfg->data_dir, false, &g->db, err);
    if (rc < 0)
        goto fail;
    rc = ccr_key_file_load(kpath, &g->seal_key, NULL, err);
    if (rc < 0) {
        ccr_err_where(err, kpath);
        goto fail;
    }
    rc = ccr_aead_create(&g->aead);
    if (rc < 0)
        goto fail;
    *out = g;
    return 0;
fail:
    ccr_gov_close(g);
    return rc;
}

void ccr_gov_close(struct ccr_gov *g)
{
    if (!g)
        return;
    sqlite3_close(g->db);
    ccr_aead_destroy(g->aead);
    ccr_key_wipe(&g->seal_key);
    pthread_mutex_destroy(&g->mu);
    free(g->data_dir);
    ccr_free(g->verifiers);
    ccr_free(g);
}

json_t *ccr_gov_service_info(struct ccr_gov *g)
{
    if (!g)
        return NULL;
    char ts[32], hash[65];
    int64_t seq = 0;
    gov_iso_time(gov_now(g), ts);
    pthread_mutex_lock(&g->mu);
    int rc = gov_log_head(g->db, &seq, hash);
    pthread_mutex_unlock(&g->mu);
    if (rc < 0)
        return NULL;
    return json_pack("{s:s, s:b, s:s, s:{s:I, s:s}}", "version", CCR_VERSION, "virtual_attestation_allowed",
                     g->allow_virtual, "time", ts, "log_head", "seq", (json_int_t)seq, "hash", hash);
}

/* ---- authentication ------------------------------------------------------------------------------------ */

static bool is_cleanroom_path(const char *path)
{
    return strncmp(path, "/cleanroom/", 11) == 0;
}

static int auth_cleanroom(struct gov_ctx *c)
{
    struct ccr_gov *g = c->g;
    const struct ccr_cose_msg *m = &c->msg;
    struct ccr_err e;
    ccr_err_clear(&e);
    if (!m->evidence || !m->evidence_len || !m->pubkey || !m->pubkey_len)
        return gov_fail(c, 403, "AttestationFailed",
                        "a clean room request needs ccr.evidence and ccr.pubkey in its protected header");
    char type[32];
    if (ccr_gov_evidence_type(m->evidence, m->evidence_len, type, sizeof(type)) < 0)
        return gov_fail(c, 403, "AttestationFailed",
                        "the evidence is malformed (no \"type\"); send attestation "
                        "evidence from the clean room's TEE");
    const struct ccr_gov_verifier *v = NULL;
    if (strcmp(type, ccr_gov_verifier_virtual.type) == 0) {
        if (!g->allow_virtual)
            return gov_fail(c, 403, "VirtualNotAllowed",
                            "virtual (insecure) evidence is refused: this service was started without "
                            "--allow-virtual-attestation; run the clean room in a TEE");
        v = &ccr_gov_verifier_virtual;
    } else {
        for (size_t i = 0; i < g->n_verifiers; i++)
            if (g->verifiers[i].type && strcmp(g->verifiers[i].type, type) == 0)
                v = &g->verifiers[i];
    }
    if (!v)
        return gov_fail(c, 403, "AttestationFailed",
                        "no verifier for evidence of type \"%s\" on this service", type);
    memset(&c->claims, 0, sizeof(c->claims));
    if (v->verify(v->cb_arg, m->evidence, m->evidence_len, &c->claims, &e) < 0)
        return gov_fail(c, 403, "AttestationFailed", "the %s evidence does not verify: %s", type,
                        e.msg[0] ? e.msg : "rejected by its verifier");
    if (!ccr_gov_report_data_binds(c->claims.report_data, m->pubkey, m->pubkey_len))
        return gov_fail(c, 403, "AttestationFailed",
                        "the evidence's report data does not bind ccr.pubkey; the evidence must be produced "
                        "for this request's key");
    ccr_err_clear(&e);
    if (ccr_cose_verify_spki(m, &e) < 0)
        return gov_fail(c, 403, "AttestationFailed", "the signature does not verify with ccr.pubkey: %s",
                        e.msg[0] ? e.msg : "bad signature");
    ccr_gov_hex(c->claims.measurement, CCR_GOV_MEASUREMENT_LEN, c->measurement_hex);
    snprintf(c->actor, sizeof(c->actor), "cleanroom:%s", c->measurement_hex);
    c->cleanroom = true;
    return 0;
}

static int auth_member(struct gov_ctx *c, const char *method, const char *path)
{
    const struct ccr_cose_msg *m = &c->msg;
    if (!m->kid[0])
        return gov_fail(c, 401, "UnknownMember", "the envelope has no kid; sign with a member identity");
    json_t *mem = NULL;
    int rc = gov_row_get(c, "members", m->kid, &mem);
    if (rc == -ENOENT)
        return gov_fail(c, 401, "UnknownMember",
                        "member %.64s is not a member of this service; ask the members "
                        "to propose add_member with your certificate",
                        m->kid);
    if (rc < 0)
        return rc;
    const char *pem = json_string_value(json_object_get(mem, "cert"));
    struct ccr_gov_ident *id = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    rc = pem ? ccr_gov_ident_from_cert_pem(pem, strlen(pem), &id, &e) : -EINVAL;
    if (rc < 0) {
        json_decref(mem);
        return gov_fail(c, 500, "InternalError", "the stored certificate of member %s is unreadable", m->kid);
    }
    rc = ccr_cose_verify(m, id, &e);
    ccr_gov_ident_destroy(id);
    if (rc < 0) {
        json_decref(mem);
        return gov_fail(c, 401, "BadSignature",
                        "the signature does not verify with member %s's certificate; "
                        "sign with that member's private key",
                        m->kid);
    }
    const char *status = json_string_value(json_object_get(mem, "status"));
    bool activate = strcmp(method, "POST") == 0 && strcmp(path, "/members/activate") == 0;
    rc = 0;
    if (status && strcmp(status, "removed") == 0)
        rc = gov_fail(c, 403, "InactiveMember", "member %s was removed from this service", m->kid);
    else if (status && strcmp(status, "accepted") == 0 && !activate)
        rc = gov_fail(c, 403, "InactiveMember",
                      "member %s has not activated yet; run `ccr gov member activate` first", m->kid);
    json_decref(mem);
    if (rc == 0)
        snprintf(c->actor, sizeof(c->actor), "%s", m->kid);
    return rc;
}

static int check_replay(struct gov_ctx *c)
{
    uint8_t h[32];
    gov_cose_replay_id(&c->msg, h);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "DELETE FROM seen WHERE created_at < ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, c->now - 2 * (int64_t)c->g->skew);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return gov_fail_db(c, "prune seen signatures");
    rc = sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO seen (sig_hash, created_at) VALUES (?1, ?2)", -1,
                            &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, h, sizeof(h), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (int64_t)c->msg.created_at);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return gov_fail_db(c, "record the signature");
    if (sqlite3_changes(c->db) == 0)
        return gov_fail(c, 401, "ReplayedRequest",
                        "this envelope was already used; sign every request afresh");
    return 0;
}

/* Checks the envelope in the documented order; leaves c->msg parsed and c->actor set. */
static int authenticate(struct gov_ctx *c, const uint8_t **env, size_t *env_len)
{
    const struct ccr_gov_request *r = c->req;
    struct ccr_err e;
    ccr_err_clear(&e);
    if (*env_len == 0)
        return gov_fail(c, 401, "Unsigned",
                        "the request is not signed; send a COSE_Sign1 envelope (body for POST/PUT, Ccr-Sign "
                        "header for GET/DELETE)");
    if (ccr_cose_parse(*env, *env_len, &c->msg, &e) < 0)
        return gov_fail(c, 401, "BadSignature", "the envelope is malformed: %s",
                        e.msg[0] ? e.msg : "not COSE_Sign1");
    char want[2048 + 16];
    int n = snprintf(want, sizeof(want), "%s %s%s%s", r->method, r->path, r->query && *r->query ? "?" : "",
                     r->query && *r->query ? r->query : "");
    if (n >= (int)sizeof(want) || strcmp(want, c->msg.request) != 0)
        return gov_fail(
            c, 401, "RequestMismatch",
            "the envelope was signed for \"%.200s\", not for this request; sign each request for its "
            "own method and path",
            c->msg.request);
    int64_t skew = (int64_t)c->g->skew;
    if (!c->msg.has_created_at || c->msg.created_at > (uint64_t)INT64_MAX ||
        (int64_t)c->msg.created_at < c->now - skew || (int64_t)c->msg.created_at > c->now + skew)
        return gov_fail(c, 401, "StaleRequest",
                        "the envelope's created_at is more than %lld s from the service's clock (%s); check "
                        "the clock and sign again",
                        (long long)skew, c->now_iso);
    int rc = is_cleanroom_path(r->path) ? auth_cleanroom(c) : auth_member(c, r->method, r->path);
    if (rc < 0)
        return rc;
    return check_replay(c);
}

/* ---- routing ------------------------------------------------------------------------------------------- */

#define MAX_SEG 8

/* Splits path ("/a/b") into its segments in buf. A path is taken as sent, never normalised: an empty
 * segment (a double or trailing slash), "." or "..", or a percent-encoded byte names no route. */
static int split_path(const char *path, char *buf, size_t cap, char **seg, size_t *out_n)
{
    if (snprintf(buf, cap, "%s", path) >= (int)cap)
        return -ENAMETOOLONG;
    size_t n = 0;
    char *p = buf + 1; /* after the leading '/' */
    if (*p == '\0') {
        *out_n = 0;
        return 0;
    }
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (n == MAX_SEG || !*p || strcmp(p, ".") == 0 || strcmp(p, "..") == 0 || strchr(p, '%'))
            return -EINVAL;
        seg[n++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    *out_n = n;
    return 0;
}

static int route(struct gov_ctx *c)
{
    const char *method = c->req->method;
    char path[1024];
    char *seg[MAX_SEG];
    size_t n = 0;
    if (split_path(c->req->path, path, sizeof(path), seg, &n) < 0)
        return gov_fail(c, 404, "NotFound",
                        "no route %s %.200s (empty, dot or percent-encoded segments, or too long); see "
                        "docs/governance.md for the routes",
                        method, c->req->path);
    if (n == 0)
        return gov_fail(c, 404, "NotFound", "no route %s /", method);
    if (c->cleanroom) {
        if (strcmp(c->msg.msg_type, "cleanroom") != 0)
            return gov_fail(c, 400, "BadRequest",
                            "a clean room request must have message type \"cleanroom\"");
        return gov_route_cleanroom(c, method, seg + 1, n - 1);
    }
    if (strcmp(seg[0], "members") == 0)
        return gov_route_members(c, method, seg + 1, n - 1);
    if (strcmp(seg[0], "proposals") == 0)
        return gov_route_proposals(c, method, seg + 1, n - 1);
    if (strcmp(seg[0], "contracts") == 0)
        return gov_route_contracts(c, method, seg + 1, n - 1);
    if (strcmp(seg[0], "documents") == 0)
        return gov_route_documents(c, method, seg + 1, n - 1);
    if (strcmp(seg[0], "audit") == 0)
        return gov_route_audit(c, method, seg + 1, n - 1);
    return gov_fail(c, 404, "NotFound", "no route %s %s; see docs/governance.md for the routes", method,
                    c->req->path);
}

static bool method_ok(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0;
}

static void finish(struct gov_ctx *c, struct ccr_gov_response *out)
{
    out->status = c->status;
    out->body = c->answer;
    c->answer = NULL;
}

int ccr_gov_handle(struct ccr_gov *g, const struct ccr_gov_request *req, struct ccr_gov_response *out)
{
    if (!out)
        return -EINVAL;
    out->status = 500;
    out->body = NULL;
    struct gov_ctx c = {.g = g, .req = req, .status = 500};
    if (!g || !req || !req->method || !req->path || !method_ok(req->method) || req->path[0] != '/') {
        gov_fail(&c, 400, "BadRequest", "malformed request (method or path)");
        finish(&c, out);
        return out->body ? 0 : -ENOMEM;
    }
    c.db = g->db;
    c.now = gov_now(g);
    gov_iso_time(c.now, c.now_iso);
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/service") == 0) {
        gov_ok(&c, 200, ccr_gov_service_info(g));
        finish(&c, out);
        return out->body ? 0 : -ENOMEM;
    }
    if (req->body_len > GOV_BODY_MAX) {
        gov_fail(&c, 413, "TooLarge", "the request body is %zu bytes; the limit is 1 MiB", req->body_len);
        finish(&c, out);
        return out->body ? 0 : -ENOMEM;
    }

    /* the envelope: the body for POST/PUT, the Ccr-Sign header for GET/DELETE */
    bool has_body = strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0;
    const uint8_t *env = has_body ? req->body : NULL;
    size_t env_len = has_body && req->body ? req->body_len : 0;
    uint8_t *decoded = NULL;
    if (!has_body && req->sign_header && req->sign_header[0]) {
        size_t dl = 0;
        if (ccr_gov_b64url_decode(req->sign_header, strlen(req->sign_header), &decoded, &dl) < 0) {
            gov_fail(&c, 401, "BadSignature",
                     "the Ccr-Sign header is not base64url; send the envelope encoded "
                     "base64url without padding");
            finish(&c, out);
            return out->body ? 0 : -ENOMEM;
        }
        env = decoded;
        env_len = dl;
    }

    c.rows = json_array();
    pthread_mutex_lock(&g->mu);
    int rc;
    if (sqlite3_exec(g->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = gov_fail_db(&c, "begin a transaction");
        pthread_mutex_unlock(&g->mu);
        goto done;
    }
    rc = authenticate(&c, &env, &env_len);
    if (rc < 0) {
        sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
        pthread_mutex_unlock(&g->mu);
        goto done;
    }
    rc = sqlite3_exec(g->db, "SAVEPOINT route", NULL, NULL, NULL) == SQLITE_OK
             ? route(&c)
             : gov_fail_db(&c, "open a savepoint");
    if (rc == 0 && json_array_size(c.rows) > 0) {
        char action[96];
        snprintf(action, sizeof(action), "%s %.80s", req->method, req->path);
        rc = gov_log_append(&c, NULL, action, NULL);
    }
    if (rc < 0 && (rc != GOV_ANSWERED || !c.answer))
        rc = gov_fail(&c, 500, "InternalError", "the request failed inside the service (%s)", strerror(-rc));
    /* a route that failed leaves only the replay record (or, when it kept them, its refusal events); if
     * even that cannot be arranged, nothing at all is committed */
    bool abort_all =
        rc < 0 && !c.keep && sqlite3_exec(g->db, "ROLLBACK TO route", NULL, NULL, NULL) != SQLITE_OK;
    if (!abort_all && sqlite3_exec(g->db, "RELEASE route", NULL, NULL, NULL) != SQLITE_OK)
        abort_all = true;
    if (abort_all || sqlite3_exec(g->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        if (rc == 0 || c.status < 500)
            gov_fail_db(&c, "commit the change");
        sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&g->mu);
done:
    free(decoded);
    json_decref(c.payload);
    json_decref(c.rows);
    finish(&c, out);
    return out->body ? 0 : -ENOMEM;
}
