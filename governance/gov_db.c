/*
 * gov_db.c - the service's SQLite database: the schema (described once, in gov_tables), row writes that
 * record their images, the hash-chained log, audit verification by replaying row images, and the
 * sealing of deposited secrets at rest.
 *
 * Every state table has one TEXT primary key and columns of four kinds: TEXT, INTEGER, JSON (stored as
 * canonical text) and one BLOB (a secret's sealed bytes). A row image is the row as a JSON object with
 * every column; a BLOB column appears as "<name>_sha256", so the log never holds a secret. Reading a
 * table back in the same shape and comparing with the replayed images is what finds an edited row.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gov_int.h"

/* ---- schema -------------------------------------------------------------------------------------------- */

static const struct gov_col members_cols[] = {
    {"member_id", GOV_C_TEXT}, {"name", GOV_C_TEXT},       {"status", GOV_C_TEXT},
    {"cert", GOV_C_TEXT},      {"created_at", GOV_C_TEXT},
};
static const struct gov_col proposals_cols[] = {
    {"proposal_id", GOV_C_TEXT}, {"n", GOV_C_INT},          {"proposer", GOV_C_TEXT},
    {"actions", GOV_C_JSON},     {"state", GOV_C_TEXT},     {"ballots", GOV_C_JSON},
    {"created_at", GOV_C_TEXT},  {"closed_at", GOV_C_TEXT},
};
static const struct gov_col contracts_cols[] = {
    {"contract_id", GOV_C_TEXT}, {"version", GOV_C_INT},     {"state", GOV_C_TEXT},      {"data", GOV_C_JSON},
    {"proposal_id", GOV_C_TEXT}, {"created_by", GOV_C_TEXT}, {"updated_at", GOV_C_TEXT},
};
static const struct gov_col deployments_cols[] = {
    {"contract_id", GOV_C_TEXT},
    {"spec", GOV_C_JSON},
    {"measurement", GOV_C_TEXT},
    {"proposal_id", GOV_C_TEXT},
};
static const struct gov_col policies_cols[] = {
    {"contract_id", GOV_C_TEXT},
    {"measurements", GOV_C_JSON},
    {"proposal_id", GOV_C_TEXT},
};
static const struct gov_col runtime_cols[] = {
    {"contract_id", GOV_C_TEXT},
    {"disabled_by", GOV_C_JSON},
    {"logging", GOV_C_TEXT},
    {"telemetry", GOV_C_TEXT},
};
static const struct gov_col secrets_cols[] = {
    {"id", GOV_C_TEXT},    {"contract_id", GOV_C_TEXT}, {"name", GOV_C_TEXT},
    {"owner", GOV_C_TEXT}, {"created_at", GOV_C_TEXT},  {"sealed", GOV_C_BLOB},
};
static const struct gov_col documents_cols[] = {
    {"document_id", GOV_C_TEXT}, {"contract_id", GOV_C_TEXT}, {"version", GOV_C_INT},
    {"state", GOV_C_TEXT},       {"data", GOV_C_TEXT},        {"proposal_id", GOV_C_TEXT},
    {"created_by", GOV_C_TEXT},  {"updated_at", GOV_C_TEXT},
};
static const struct gov_col events_cols[] = {
    {"id", GOV_C_TEXT},   {"contract_id", GOV_C_TEXT}, {"seq", GOV_C_INT},   {"timestamp", GOV_C_TEXT},
    {"type", GOV_C_TEXT}, {"source", GOV_C_TEXT},      {"data", GOV_C_JSON},
};

#define TABLE(n, k, cols)                          \
    {                                              \
        n, k, cols, sizeof(cols) / sizeof(cols[0]) \
    }
const struct gov_table gov_tables[] = {
    TABLE("members", "member_id", members_cols),
    TABLE("proposals", "proposal_id", proposals_cols),
    TABLE("contracts", "contract_id", contracts_cols),
    TABLE("deployments", "contract_id", deployments_cols),
    TABLE("policies", "contract_id", policies_cols),
    TABLE("runtime", "contract_id", runtime_cols),
    TABLE("secrets", "id", secrets_cols),
    TABLE("documents", "document_id", documents_cols),
    TABLE("events", "id", events_cols),
};
const size_t gov_n_tables = sizeof(gov_tables) / sizeof(gov_tables[0]);

const struct gov_table *gov_table_find(const char *name)
{
    for (size_t i = 0; i < gov_n_tables; i++)
        if (strcmp(gov_tables[i].name, name) == 0)
            return &gov_tables[i];
    return NULL;
}

static const char *col_sql_type(enum gov_col_type t)
{
    switch (t) {
    case GOV_C_INT:
        return "INTEGER";
    case GOV_C_BLOB:
        return "BLOB";
    default:
        return "TEXT";
    }
}

int gov_db_schema(sqlite3 *db, char **errmsg)
{
    char sql[2048];
    for (size_t i = 0; i < gov_n_tables; i++) {
        const struct gov_table *t = &gov_tables[i];
        int n = snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s (", t->name);
        for (size_t j = 0; j < t->n_cols; j++)
            n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s%s %s%s", j ? ", " : "", t->cols[j].name,
                          col_sql_type(t->cols[j].type),
                          strcmp(t->cols[j].name, t->key) == 0 ? " PRIMARY KEY NOT NULL" : "");
        snprintf(sql + n, sizeof(sql) - (size_t)n, ")");
        int rc = sqlite3_exec(db, sql, NULL, NULL, errmsg);
        if (rc != SQLITE_OK)
            return rc;
    }
    return sqlite3_exec(
        db,
        "CREATE INDEX IF NOT EXISTS events_by_contract ON events (contract_id, seq);"
        "CREATE INDEX IF NOT EXISTS proposals_by_n ON proposals (n);"
        "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY NOT NULL, timestamp TEXT NOT NULL,"
        " actor TEXT NOT NULL, action TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL,"
        " hash TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS seen (sig_hash BLOB PRIMARY KEY NOT NULL,"
        " created_at INTEGER NOT NULL);"
        /* every request prunes by time: without the index that is a scan of the whole cache */
        "CREATE INDEX IF NOT EXISTS seen_by_time ON seen (created_at);",
        NULL, NULL, errmsg);
}

int gov_db_open(const char *data_dir, bool create, sqlite3 **out, struct ccr_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/gov.db", data_dir) >= (int)sizeof(path))
        return ccr_err_set(err, -ENAMETOOLONG, data_dir, -1, "data directory path too long");
    struct stat st;
    if (!create && stat(path, &st) != 0)
        return ccr_err_set(err, -ENOENT, path, -1,
                           "no database here; create the service with `ccr-gov init`");
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        ccr_err_set(err, -EIO, path, -1, "cannot open the database: %s",
                    db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = gov_db_schema(db, &msg);
    if (rc != SQLITE_OK) {
        ccr_err_set(err, -EIO, path, -1, "cannot set up the database: %s (is it a ccr-gov database?)",
                    msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        sqlite3_close(db);
        return -EIO;
    }
    *out = db;
    return 0;
}

/* ---- rows ---------------------------------------------------------------------------------------------- */

static char *canon(const json_t *v)
{
    return json_dumps(v, GOV_CANON_FLAGS);
}

static json_t *text_value(const unsigned char *s, int n)
{
    if (!s)
        return json_null();
    json_t *v = json_stringn((const char *)s, (size_t)n);
    return v ? v : json_string("<invalid UTF-8>");
}

/* The row at the statement's cursor, columns in descriptor order. audit: BLOB columns as their hash. */
static json_t *row_from_stmt(const struct gov_table *t, sqlite3_stmt *st, bool audit)
{
    json_t *row = json_object();
    if (!row)
        return NULL;
    for (size_t j = 0; j < t->n_cols; j++) {
        const struct gov_col *col = &t->cols[j];
        int ci = (int)j;
        bool null = sqlite3_column_type(st, ci) == SQLITE_NULL;
        json_t *v = NULL;
        if (col->type == GOV_C_BLOB) {
            if (!audit)
                continue;
            char name[96];
            snprintf(name, sizeof(name), "%s_sha256", col->name);
            if (null) {
                v = json_null();
            } else {
                uint8_t h[32];
                char hex[65];
                ccr_gov_sha256(sqlite3_column_blob(st, ci), (size_t)sqlite3_column_bytes(st, ci), h);
                ccr_gov_hex(h, 32, hex);
                v = json_string(hex);
            }
            json_object_set_new(row, name, v);
            continue;
        }
        if (null) {
            v = json_null();
        } else if (col->type == GOV_C_INT && sqlite3_column_type(st, ci) == SQLITE_INTEGER) {
            v = json_integer(sqlite3_column_int64(st, ci));
        } else if (col->type == GOV_C_JSON) {
            const char *s = (const char *)sqlite3_column_text(st, ci);
            v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
            if (!v)
                v = text_value(sqlite3_column_text(st, ci), sqlite3_column_bytes(st, ci));
        } else {
            v = text_value(sqlite3_column_text(st, ci), sqlite3_column_bytes(st, ci));
        }
        json_object_set_new(row, col->name, v);
    }
    return row;
}

static int select_sql(const struct gov_table *t, const char *tail, char *sql, size_t cap)
{
    int n = snprintf(sql, cap, "SELECT ");
    for (size_t j = 0; j < t->n_cols; j++)
        n += snprintf(sql + n, cap - (size_t)n, "%s%s", j ? ", " : "", t->cols[j].name);
    n += snprintf(sql + n, cap - (size_t)n, " FROM %s %s", t->name, tail ? tail : "");
    return n < (int)cap ? 0 : -ENAMETOOLONG;
}

int gov_rows_select(struct gov_ctx *c, const char *table, const char *tail, const char *const *args,
                    size_t n_args, json_t **out)
{
    const struct gov_table *t = gov_table_find(table);
    char sql[1024];
    if (!t || select_sql(t, tail, sql, sizeof(sql)) < 0)
        return gov_fail(c, 500, "InternalError", "bad query on table %s", table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return gov_fail_db(c, "prepare a query");
    for (size_t i = 0; i < n_args; i++)
        sqlite3_bind_text(st, (int)i + 1, args[i], -1, SQLITE_TRANSIENT);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_from_stmt(t, st, false));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return gov_fail_db(c, "read a table");
    }
    *out = arr;
    return 0;
}

int gov_row_get(struct gov_ctx *c, const char *table, const char *key, json_t **out)
{
    const struct gov_table *t = gov_table_find(table);
    char tail[128];
    snprintf(tail, sizeof(tail), "WHERE %s = ?1", t ? t->key : "x");
    json_t *arr = NULL;
    int rc = gov_rows_select(c, table, tail, &key, 1, &arr);
    if (rc < 0)
        return rc;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return -ENOENT;
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

int gov_db_int(struct gov_ctx *c, const char *sql, const char *arg, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return gov_fail_db(c, "prepare a query");
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return gov_fail_db(c, "read a count");
    }
    *out = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int bind_col(sqlite3_stmt *st, int i, const struct gov_col *col, const json_t *v, const uint8_t *blob,
                    size_t blob_len)
{
    if (col->type == GOV_C_BLOB)
        return blob ? sqlite3_bind_blob64(st, i, blob, blob_len, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
    if (!v || json_is_null(v))
        return sqlite3_bind_null(st, i);
    if (col->type == GOV_C_INT && json_is_integer(v))
        return sqlite3_bind_int64(st, i, json_integer_value(v));
    if (col->type != GOV_C_JSON && json_is_string(v))
        return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
    char *s = canon(v);
    if (!s)
        return SQLITE_NOMEM;
    int rc = sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    free(s);
    return rc;
}

/* The image of a row: every column of the descriptor, the BLOB column as its hash. */
static json_t *row_image(const struct gov_table *t, const json_t *row, const uint8_t *blob, size_t blob_len)
{
    json_t *img = json_object();
    for (size_t j = 0; j < t->n_cols; j++) {
        const struct gov_col *col = &t->cols[j];
        if (col->type == GOV_C_BLOB) {
            char name[96];
            snprintf(name, sizeof(name), "%s_sha256", col->name);
            if (!blob) {
                json_object_set_new(img, name, json_null());
                continue;
            }
            uint8_t h[32];
            char hex[65];
            ccr_gov_sha256(blob, blob_len, h);
            ccr_gov_hex(h, 32, hex);
            json_object_set_new(img, name, json_string(hex));
            continue;
        }
        json_t *v = json_object_get(row, col->name);
        /* an INT column holds what SQLite would give back: integers, or text for anything else */
        if (v && col->type == GOV_C_INT && !json_is_integer(v) && !json_is_null(v))
            json_object_set_new(img, col->name, json_string("<not an integer>"));
        else
            json_object_set_new(img, col->name, v ? json_deep_copy(v) : json_null());
    }
    return img;
}

int gov_row_put(struct gov_ctx *c, const char *table, const char *key, const json_t *row, const uint8_t *blob,
                size_t blob_len)
{
    const struct gov_table *t = gov_table_find(table);
    if (!t)
        return gov_fail(c, 500, "InternalError", "write to unknown table %s", table);
    char sql[1024];
    int n;
    if (!row) {
        n = snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1", t->name, t->key);
    } else {
        n = snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO %s (", t->name);
        for (size_t j = 0; j < t->n_cols; j++)
            n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s%s", j ? ", " : "", t->cols[j].name);
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, ") VALUES (");
        for (size_t j = 0; j < t->n_cols; j++)
            n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s?%zu", j ? ", " : "", j + 1);
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, ")");
    }
    if (n >= (int)sizeof(sql))
        return gov_fail(c, 500, "InternalError", "statement too long for table %s", table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return gov_fail_db(c, "prepare a row write");
    int rc = SQLITE_OK;
    json_t *img_row = NULL;
    if (!row) {
        rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    } else {
        /* the key column always holds the key */
        json_t *r = json_deep_copy(row);
        json_object_set_new(r, t->key, json_string(key));
        for (size_t j = 0; j < t->n_cols && rc == SQLITE_OK; j++)
            rc = bind_col(st, (int)j + 1, &t->cols[j], json_object_get(r, t->cols[j].name), blob, blob_len);
        img_row = row_image(t, r, blob, blob_len);
        json_decref(r);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(img_row);
        return gov_fail_db(c, "write a row");
    }
    json_t *img =
        json_pack("{s:s, s:s, s:o}", "table", t->name, "key", key, "row", img_row ? img_row : json_null());
    if (!img || json_array_append_new(c->rows, img) != 0)
        return gov_fail(c, 500, "InternalError", "out of memory recording a row image");
    return 0;
}

/* ---- the log ------------------------------------------------------------------------------------------- */

int gov_log_head(sqlite3 *db, int64_t *out_seq, char out_hash[65])
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out_seq = sqlite3_column_int64(st, 0);
        snprintf(out_hash, 65, "%s", (const char *)sqlite3_column_text(st, 1));
    } else if (rc == SQLITE_DONE) {
        *out_seq = 0;
        memset(out_hash, '0', 64);
        out_hash[64] = '\0';
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* hash = hex(SHA-256(prev_hash || "\n" || canonical({"action","actor","data","seq","timestamp"}))) */
static int entry_hash(const char *prev, int64_t seq, const char *ts, const char *actor, const char *action,
                      const json_t *data, char out[65])
{
    json_t *e = json_pack("{s:s, s:s, s:O, s:I, s:s}", "action", action, "actor", actor, "data", data, "seq",
                          (json_int_t)seq, "timestamp", ts);
    if (!e)
        return -ENOMEM;
    char *s = canon(e);
    json_decref(e);
    if (!s)
        return -ENOMEM;
    size_t pl = strlen(prev), sl = strlen(s);
    char *buf = malloc(pl + 1 + sl);
    if (!buf) {
        free(s);
        return -ENOMEM;
    }
    memcpy(buf, prev, pl);
    buf[pl] = '\n';
    memcpy(buf + pl + 1, s, sl);
    uint8_t h[32];
    ccr_gov_sha256(buf, pl + 1 + sl, h);
    ccr_gov_hex(h, 32, out);
    free(buf);
    free(s);
    return 0;
}

int gov_log_append(struct gov_ctx *c, const char *actor, const char *action, json_t *data)
{
    if (!data)
        data = json_object();
    if (!actor)
        actor = c->actor;
    json_object_set(data, "rows", c->rows);
    json_decref(c->rows);
    c->rows = json_array();
    int64_t seq;
    char prev[65], hash[65];
    if (gov_log_head(c->db, &seq, prev) < 0) {
        json_decref(data);
        return gov_fail_db(c, "read the log head");
    }
    seq++;
    char *text = canon(data);
    if (!text || !c->rows || entry_hash(prev, seq, c->now_iso, actor, action, data, hash) < 0) {
        free(text);
        json_decref(data);
        return gov_fail(c, 500, "InternalError", "out of memory writing the log");
    }
    json_decref(data);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "INSERT INTO log (seq, timestamp, actor, action, data, prev_hash, hash)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_text(st, 2, c->now_iso, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, actor, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, prev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 7, hash, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    free(text);
    if (rc != SQLITE_DONE)
        return gov_fail_db(c, "append to the log");
    return 0;
}

static json_t *log_entry(sqlite3_stmt *st)
{
    const char *data = (const char *)sqlite3_column_text(st, 4);
    json_t *d = data ? json_loads(data, 0, NULL) : NULL;
    if (!d)
        d = text_value(sqlite3_column_text(st, 4), sqlite3_column_bytes(st, 4));
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "seq", (json_int_t)sqlite3_column_int64(st, 0),
                     "timestamp", text_value(sqlite3_column_text(st, 1), sqlite3_column_bytes(st, 1)),
                     "actor", text_value(sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2)), "action",
                     text_value(sqlite3_column_text(st, 3), sqlite3_column_bytes(st, 3)), "data", d,
                     "prev_hash", text_value(sqlite3_column_text(st, 5), sqlite3_column_bytes(st, 5)), "hash",
                     text_value(sqlite3_column_text(st, 6), sqlite3_column_bytes(st, 6)));
}

int gov_log_list(struct gov_ctx *c, int64_t from, int64_t limit, json_t **out_entries, int64_t *out_next)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            c->db,
            "SELECT seq, timestamp, actor, action, data, prev_hash, hash FROM log WHERE seq >= ?1"
            " ORDER BY seq LIMIT ?2",
            -1, &st, NULL) != SQLITE_OK)
        return gov_fail_db(c, "prepare a log query");
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, limit + 1);
    json_t *arr = json_array();
    int rc;
    int64_t next = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((int64_t)json_array_size(arr) == limit) {
            next = sqlite3_column_int64(st, 0);
            break;
        }
        json_array_append_new(arr, log_entry(st));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(arr);
        return gov_fail_db(c, "read the log");
    }
    *out_entries = arr;
    *out_next = next;
    return 0;
}

/* ---- audit verify -------------------------------------------------------------------------------------- */

static void problem(json_t *problems, const char *fmt, ...) CCR_PRINTF(2, 3);
static void problem(json_t *problems, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

/* Applies one entry's row images to state {table: {key: row}}. */
static void replay_rows(json_t *state, const json_t *data, int64_t seq, json_t *problems)
{
    json_t *rows = json_object_get(data, "rows");
    if (!json_is_array(rows)) {
        problem(problems, "log entry %lld: data has no row images", (long long)seq);
        return;
    }
    size_t i;
    json_t *img;
    json_array_foreach(rows, i, img)
    {
        const char *table = json_string_value(json_object_get(img, "table"));
        const char *key = json_string_value(json_object_get(img, "key"));
        json_t *row = json_object_get(img, "row");
        if (!table || !key || !row || !gov_table_find(table)) {
            problem(problems, "log entry %lld: row image %zu is malformed", (long long)seq, i);
            continue;
        }
        json_t *t = json_object_get(state, table);
        if (json_is_null(row))
            json_object_del(t, key);
        else
            json_object_set(t, key, row);
    }
}

static int verify_log(sqlite3 *db, json_t *state, json_t *problems, int64_t *out_n, char head[65])
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db, "SELECT seq, timestamp, actor, action, data, prev_hash, hash FROM log ORDER BY seq", -1, &st,
            NULL) != SQLITE_OK)
        return -EIO;
    char prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    int64_t expect = 1, n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const char *ts = (const char *)sqlite3_column_text(st, 1);
        const char *actor = (const char *)sqlite3_column_text(st, 2);
        const char *action = (const char *)sqlite3_column_text(st, 3);
        const char *data = (const char *)sqlite3_column_text(st, 4);
        const char *ph = (const char *)sqlite3_column_text(st, 5);
        const char *hash = (const char *)sqlite3_column_text(st, 6);
        n++;
        if (seq != expect)
            problem(problems, "log entry %lld: expected sequence number %lld (an entry is missing)",
                    (long long)seq, (long long)expect);
        expect = seq + 1;
        if (!ph || strcmp(ph, prev) != 0)
            problem(problems, "log entry %lld: prev_hash does not match the hash of the entry before it",
                    (long long)seq);
        json_t *d = data ? json_loads(data, 0, NULL) : NULL;
        char calc[65] = "";
        if (!d || !ts || !actor || !action) {
            problem(problems, "log entry %lld: broken hash (the entry's fields are unreadable)",
                    (long long)seq);
        } else {
            if (entry_hash(ph ? ph : "", seq, ts, actor, action, d, calc) < 0) {
                json_decref(d);
                sqlite3_finalize(st);
                return -ENOMEM;
            }
            if (!hash || strcmp(calc, hash) != 0)
                problem(problems, "log entry %lld: broken hash (the entry was edited after it was written)",
                        (long long)seq);
            replay_rows(state, d, seq, problems);
        }
        json_decref(d);
        snprintf(prev, sizeof(prev), "%s", hash ? hash : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    *out_n = n;
    memcpy(head, prev, 65);
    return 0;
}

static int verify_table(sqlite3 *db, const struct gov_table *t, json_t *expected, json_t *problems)
{
    char sql[1024];
    if (select_sql(t, NULL, sql, sizeof(sql)) < 0)
        return -EINVAL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    json_t *seen = json_object();
    int rc;
    size_t key_col = 0;
    for (size_t j = 0; j < t->n_cols; j++)
        if (strcmp(t->cols[j].name, t->key) == 0)
            key_col = j;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, (int)key_col);
        json_t *row = row_from_stmt(t, st, true);
        key = key ? key : "";
        json_t *want = json_object_get(expected, key);
        if (!want)
            problem(problems, "table %s: row %s is not in the log (written outside the service)", t->name,
                    key);
        else if (!json_equal(want, row))
            problem(problems, "table %s: row %s differs from the log (edited outside the service)", t->name,
                    key);
        json_object_set_new(seen, key, json_true());
        json_decref(row);
    }
    sqlite3_finalize(st);
    const char *key;
    json_t *v;
    json_object_foreach(expected, key, v)
    {
        if (!json_object_get(seen, key))
            problem(problems, "table %s: row %s is missing (deleted outside the service)", t->name, key);
    }
    json_decref(seen);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int gov_audit_verify_locked(sqlite3 *db, json_t **out_report)
{
    json_t *state = json_object(), *problems = json_array();
    for (size_t i = 0; i < gov_n_tables; i++)
        json_object_set_new(state, gov_tables[i].name, json_object());
    int64_t n = 0;
    char head[65] = "";
    int rc = verify_log(db, state, problems, &n, head);
    for (size_t i = 0; rc == 0 && i < gov_n_tables; i++)
        rc = verify_table(db, &gov_tables[i], json_object_get(state, gov_tables[i].name), problems);
    json_decref(state);
    if (rc < 0) {
        json_decref(problems);
        return rc;
    }
    bool ok = json_array_size(problems) == 0;
    json_t *rep = json_pack("{s:b, s:I, s:s, s:o}", "ok", ok, "entries", (json_int_t)n, "head", head,
                            "problems", problems);
    if (!rep)
        return -ENOMEM;
    *out_report = rep;
    return ok ? 0 : -EBADMSG;
}

int ccr_gov_audit_verify(struct ccr_gov *g, json_t **out_report)
{
    if (!g || !out_report)
        return -EINVAL;
    pthread_mutex_lock(&g->mu);
    int rc = sqlite3_exec(g->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
    if (rc == 0) {
        rc = gov_audit_verify_locked(g->db, out_report);
        sqlite3_exec(g->db, "COMMIT", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* ---- secrets at rest ----------------------------------------------------------------------------------- */

int gov_secret_seal(struct ccr_gov *g, const char *aad, const uint8_t *value, size_t len, uint8_t **out,
                    size_t *out_len)
{
    size_t n = CCR_GCM_IV_LEN + len + CCR_GCM_TAG_LEN;
    uint8_t *buf = ccr_malloc(n);
    if (!buf)
        return -ENOMEM;
    int rc = ccr_random_bytes(buf, CCR_GCM_IV_LEN);
    if (rc == 0)
        rc = ccr_aead_seal(g->aead, g->seal_key.b, buf, aad, strlen(aad), value, buf + CCR_GCM_IV_LEN, len,
                           buf + CCR_GCM_IV_LEN + len);
    if (rc < 0) {
        ccr_free(buf);
        return rc;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int gov_secret_unseal(struct ccr_gov *g, const char *aad, const uint8_t *sealed, size_t len, uint8_t **out,
                      size_t *out_len)
{
    if (len < CCR_GCM_IV_LEN + CCR_GCM_TAG_LEN)
        return -EBADMSG;
    size_t n = len - CCR_GCM_IV_LEN - CCR_GCM_TAG_LEN;
    uint8_t *buf = ccr_malloc(n);
    if (!buf)
        return -ENOMEM;
    int rc = ccr_aead_open(g->aead, g->seal_key.b, sealed, aad, strlen(aad), sealed + CCR_GCM_IV_LEN, buf, n,
                           sealed + CCR_GCM_IV_LEN + n);
    if (rc < 0) {
        ccr_wipe(buf, n); /* GCM decrypts before it checks the tag */
        ccr_free(buf);
        return rc;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
