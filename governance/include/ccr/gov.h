/*
 * ccr/gov.h - the governance service's state machine: one SQLite database (WAL) holding members,
 * proposals and ballots, contracts, deployment specs and clean room policies, runtime options, sealed
 * secrets, documents, clean room events, and a hash-chained log of every state change.
 *
 * The HTTP server (ccr/gov_server.h) is transport only: it hands each request, still signed, to
 * ccr_gov_handle, which authenticates it (COSE_Sign1, member certificate or clean room evidence,
 * clock skew, replay), routes it, runs it in one SQLite transaction and answers JSON. The REST API,
 * envelope, error codes and log format are specified in docs/governance.md ("Protocol").
 *
 * Thread-safety: one struct ccr_gov serves any number of threads (ccr_gov_handle may be called
 * concurrently; writes are serialised).
 */
#ifndef CCR_GOV_H
#define CCR_GOV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"
#include "ccr/gov_crypto.h"

struct ccr_gov;

/* Returns the current Unix time in seconds (a test hook; NULL in the config means time()). */
typedef int64_t (*ccr_gov_now_cb)(void *cb_arg);

struct ccr_gov_config {
    const char *data_dir; /* holds gov.db and sealing.key (created by ccr_gov_init_dir) */
    bool allow_virtual;   /* accept the insecure virtual verifier (every release then marked virtual) */
    unsigned max_skew_s;  /* accepted |created_at - now|; 0 means the default, 300 s */
    const struct ccr_gov_verifier *verifiers; /* extra verifiers (e.g. SEV-SNP); may be NULL */
    size_t n_verifiers;
    ccr_gov_now_cb now; /* NULL: time() */
    void *now_arg;
};

/*
 * Creates a new service in data_dir (created with mode 0700 if missing): gov.db in WAL mode with the
 * schema, sealing.key (32 random bytes, 0600, seals deposited secrets at rest), and the operator as
 * its first, active member (certificate PEM: an EC P-384 certificate as made by ccr_gov_ident_keygen;
 * name from its CN). The first log entry records this. -EEXIST if gov.db already exists.
 */
CCR_API CCR_WUR int ccr_gov_init_dir(const char *data_dir, const char *operator_cert_pem, size_t len,
                                     struct ccr_err *err);

/* Opens an existing service (after a crash too: SQLite rolls back any half-done transaction). */
CCR_API CCR_WUR int ccr_gov_open(const struct ccr_gov_config *cfg, struct ccr_gov **out, struct ccr_err *err);
CCR_API void ccr_gov_close(struct ccr_gov *g); /* accepts NULL */

/* One HTTP request as received. All fields borrowed for the call. */
struct ccr_gov_request {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *path;    /* "/contracts/c1", without the query */
    const char *query;   /* "state=open&from=3" without '?', or NULL */
    const uint8_t *body; /* POST/PUT: the COSE_Sign1 envelope; may be NULL for GET */
    size_t body_len;
    const char *sign_header; /* GET/DELETE: the "Ccr-Sign" header (base64url COSE_Sign1), or NULL */
};

/* The answer: an HTTP status and a JSON body (owned by the caller: json_decref). Errors are
 * {"error":{"code":"<Code>","message":"<what failed and what to do>"}}. */
struct ccr_gov_response {
    int status;
    json_t *body;
};

/*
 * Authenticates, routes and executes one request (docs/governance.md lists every route). Always fills
 * *out (the error statuses are answers, not failures); returns 0, or -ENOMEM / -EIO when not even an
 * error answer could be built (the server then answers 500). A request that changes state either
 * commits completely, with its log entries, or not at all.
 */
CCR_API CCR_WUR int ccr_gov_handle(struct ccr_gov *g, const struct ccr_gov_request *req,
                                   struct ccr_gov_response *out);

/* The unauthenticated service description served at GET /service (also answered by ccr_gov_handle). */
CCR_API json_t *ccr_gov_service_info(struct ccr_gov *g);

/*
 * Checks the whole log: every entry's hash and link (docs/governance.md, "Log"), and that replaying
 * the log's row images gives exactly the rows in the tables (an edited row is found). Fills *out_report
 * (caller json_decref) with {"ok":bool,"entries":N,"head":"<hash>","problems":["..."]}. Returns 0 when
 * ok, -EBADMSG when a problem was found, other negative errno on failure to check at all.
 */
CCR_API CCR_WUR int ccr_gov_audit_verify(struct ccr_gov *g, json_t **out_report);

/* The error codes of the API (the "code" of an error answer) and their statuses:
 *   400 BadRequest            malformed JSON or arguments, unknown action
 *   401 Unsigned              no envelope
 *   401 BadSignature          envelope malformed or signature wrong
 *   401 UnknownMember         kid is not a member
 *   403 InactiveMember        member not active (accepted but not activated, or removed)
 *   401 StaleRequest          created_at outside the allowed skew
 *   401 ReplayedRequest       this envelope was seen before
 *   401 RequestMismatch       the envelope's "ccr.request" is not this method and path
 *   403 Forbidden             not allowed for this member (e.g. withdraw another's proposal)
 *   404 NotFound              no such member, proposal, contract, document, secret
 *   409 AlreadyVoted          a second ballot from the same member
 *   409 ProposalNotOpen       ballot or withdrawal on a closed proposal
 *   409 ContractNotDraft      update or propose of a proposed or accepted contract
 *   409 ContractNotAccepted   deployment/policy/runtime/secret operation before acceptance
 *   412 VersionMismatch       stale contract or document version
 *   403 AttestationFailed     evidence malformed, unverifiable, or not binding the request key
 *   403 VirtualNotAllowed     virtual evidence while the service was started without allowing it
 *   403 PolicyNotSet          no accepted clean room policy for the contract
 *   403 MeasurementMismatch   evidence measurement not in the accepted policy
 *   403 ExecutionDisabled     a member disabled execution
 *   413 TooLarge              body over 1 MiB
 */

#endif
