/*
 * gov_int.h - private to the governance service (gov*.c): the service object, the per-request context,
 * the table descriptors and the helpers every route uses.
 *
 * Every signed request runs under g->mu inside one SQLite transaction (BEGIN IMMEDIATE): authentication,
 * the replay record, then the route inside a savepoint that is rolled back when the route answers an
 * error. Routes change tables only through gov_row_put, which records the row image; gov_log_append
 * turns the images recorded so far into one hash-chained log entry (docs/governance.md, "Log").
 */
#ifndef CCR_GOV_INT_H
#define CCR_GOV_INT_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccr/crypto.h"
#include "ccr/gov.h"
#include "ccr/gov_crypto.h"

#define GOV_BODY_MAX     (1024u * 1024u)
#define GOV_SECRET_MAX   (64u * 1024u)
#define GOV_DEFAULT_SKEW 300u
#define GOV_ID_MAX       128
#define GOV_ANSWERED     (-10000) /* a route filled c->status and c->answer with an error answer */
#define GOV_CANON_FLAGS  (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

struct ccr_gov {
    pthread_mutex_t mu; /* guards db, aead and seal_key: one request at a time */
    sqlite3 *db;
    char *data_dir;
    bool allow_virtual;
    unsigned skew;
    struct ccr_gov_verifier *verifiers;
    size_t n_verifiers;
    ccr_gov_now_cb now;
    void *now_arg;
    struct ccr_key seal_key; /* seals deposited secrets at rest (data_dir/sealing.key) */
    struct ccr_aead *aead;
};

/* One request being handled. */
struct gov_ctx {
    struct ccr_gov *g;
    sqlite3 *db;
    const struct ccr_gov_request *req;
    struct ccr_cose_msg msg;
    int64_t now;
    char now_iso[32];
    char actor[128]; /* member id, "cleanroom:<measurement hex>" or "service" */
    bool cleanroom;  /* authenticated by evidence */
    struct ccr_gov_claims claims;
    char measurement_hex[2 * CCR_GOV_MEASUREMENT_LEN + 1];
    json_t *payload; /* the parsed JSON payload, or NULL (gov_body) */
    json_t *rows;    /* row images written since the last log entry */
    bool keep;       /* an error answer that still commits what the route logged (a refusal event) */
    int status;      /* the answer */
    json_t *answer;
};

/* ---- answers (gov.c) --------------------------------------------------------------------------------- */

/* Sets an error answer {"error":{"code","message"}} and returns GOV_ANSWERED. */
int gov_fail(struct gov_ctx *c, int status, const char *code, const char *fmt, ...) CCR_PRINTF(4, 5);
/* A SQLite or other internal failure: 500 InternalError naming what failed. Returns GOV_ANSWERED. */
int gov_fail_db(struct gov_ctx *c, const char *what);
/* Sets a success answer (takes the reference to body). Returns 0, or GOV_ANSWERED when body is NULL. */
int gov_ok(struct gov_ctx *c, int status, json_t *body);

/* The payload as a JSON object (400 BadRequest when it is not one). *out is borrowed from c. */
int gov_body(struct gov_ctx *c, json_t **out);
/* A query parameter (NULL query or missing key: false). Value copied into buf (cap bytes). */
bool gov_query(const struct gov_ctx *c, const char *key, char *buf, size_t cap);
/* A collection with an optional ?state= filter (one of states, NULL-terminated; 400 otherwise): answers
 * {"<name>":[view(row)...]} in the given order. */
int gov_list_by_state(struct gov_ctx *c, const char *table, const char *name, const char *order,
                      const char *const *states, json_t *(*view)(const json_t *row));
/* Parses from=S&limit=N (defaults 1 and 100, limit <= 1000); 400 on bad values. */
int gov_paging(struct gov_ctx *c, int64_t *out_from, int64_t *out_limit);

/* True for an id usable in paths and keys: 1..128 of [A-Za-z0-9._-], not starting with '.'. */
bool gov_id_ok(const char *s);
/* 64 hex digits. */
bool gov_hex64_ok(const char *s);
/* ISO 8601 UTC, "2026-11-23T18:04:05Z". */
void gov_iso_time(int64_t t, char out[32]);

/* ---- database (gov_db.c) ----------------------------------------------------------------------------- */

enum gov_col_type { GOV_C_TEXT, GOV_C_INT, GOV_C_JSON, GOV_C_BLOB };

struct gov_col {
    const char *name;
    enum gov_col_type type;
};

struct gov_table {
    const char *name;
    const char *key; /* the TEXT primary key column */
    const struct gov_col *cols;
    size_t n_cols;
};

extern const struct gov_table gov_tables[];
extern const size_t gov_n_tables;
const struct gov_table *gov_table_find(const char *name);

/* Creates the schema (tables, log, seen signatures). */
int gov_db_schema(sqlite3 *db, char **errmsg);
/* Opens gov.db in data_dir with WAL, synchronous=FULL and a busy timeout. */
int gov_db_open(const char *data_dir, bool create, sqlite3 **out, struct ccr_err *err);

/*
 * Writes (INSERT OR REPLACE) row, a JSON object of the table's columns, under key; row NULL deletes.
 * blob is the value of the table's BLOB column (secrets); the image records its SHA-256 instead.
 * Appends the image {"table","key","row"} to c->rows. Returns 0 or GOV_ANSWERED.
 */
int gov_row_put(struct gov_ctx *c, const char *table, const char *key, const json_t *row, const uint8_t *blob,
                size_t blob_len);

/* Reads one row as a JSON object (BLOB columns left out). 0, -ENOENT, or GOV_ANSWERED. */
int gov_row_get(struct gov_ctx *c, const char *table, const char *key, json_t **out);

/* Reads rows: "SELECT cols FROM table <tail>" with text parameters ?1.. bound to args. Appends each row
 * (as gov_row_get) to the array *out (created). Returns 0 or GOV_ANSWERED. */
int gov_rows_select(struct gov_ctx *c, const char *table, const char *tail, const char *const *args,
                    size_t n_args, json_t **out);

/* Appends a log entry (actor NULL: c->actor) whose data is data (taken; NULL: {}) plus "rows": the
 * images recorded since the last entry. Returns 0 or GOV_ANSWERED. */
int gov_log_append(struct gov_ctx *c, const char *actor, const char *action, json_t *data);

/* The head of the log: seq (0 when empty) and its hash (64 zeros when empty). */
int gov_log_head(sqlite3 *db, int64_t *out_seq, char out_hash[65]);

/* One log entry as JSON {"seq","timestamp","actor","action","data","prev_hash","hash"}. */
int gov_log_list(struct gov_ctx *c, int64_t from, int64_t limit, json_t **out_entries, int64_t *out_next);

/* ccr_gov_audit_verify on a connection the caller holds (inside its transaction). */
int gov_audit_verify_locked(sqlite3 *db, json_t **out_report);

/* The integer of a one-value query ("SELECT MAX(n) ... WHERE x = ?1", arg may be NULL); NULL gives 0. */
int gov_db_int(struct gov_ctx *c, const char *sql, const char *arg, int64_t *out);

/* ---- members and proposals (gov_members.c) ----------------------------------------------------------- */

int gov_route_members(struct gov_ctx *c, const char *method, char **seg, size_t n);
int gov_route_proposals(struct gov_ctx *c, const char *method, char **seg, size_t n);
/* Creates a proposal (validates actions; all disable_* proposals are accepted at once) and answers 201. */
int gov_proposal_create(struct gov_ctx *c, json_t *actions);

/* ---- contracts, documents, runtime, secrets, events, audit (gov_contracts.c) ------------------------- */

int gov_route_contracts(struct gov_ctx *c, const char *method, char **seg, size_t n);
int gov_route_documents(struct gov_ctx *c, const char *method, char **seg, size_t n);
int gov_route_audit(struct gov_ctx *c, const char *method, char **seg, size_t n);
/* The contract (404 NotFound if absent). *out: caller json_decref. */
int gov_contract_get(struct gov_ctx *c, const char *id, json_t **out);
/* The runtime object of an accepted contract. */
json_t *gov_runtime_view(const json_t *contract, const json_t *runtime);
/* Records an event; *out_seq its sequence number. data taken. */
int gov_event_add(struct gov_ctx *c, const char *contract_id, const char *type, json_t *data,
                  int64_t *out_seq);

/* ---- the clean room (gov_cleanroom.c) ---------------------------------------------------------------- */

int gov_route_cleanroom(struct gov_ctx *c, const char *method, char **seg, size_t n);

/* ---- secrets at rest (gov_db.c) ---------------------------------------------------------------------- */

/* Seals value under the service key: iv(12) || ciphertext || tag(16), aad "<contract>/<name>". */
int gov_secret_seal(struct ccr_gov *g, const char *aad, const uint8_t *value, size_t len, uint8_t **out,
                    size_t *out_len);
int gov_secret_unseal(struct ccr_gov *g, const char *aad, const uint8_t *sealed, size_t len, uint8_t **out,
                      size_t *out_len);

#endif
