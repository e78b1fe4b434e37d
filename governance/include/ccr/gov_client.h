/*
 * ccr/gov_client.h - the signing client of the governance service (libcurl): every request is wrapped
 * in a COSE_Sign1 envelope signed by the member's key (or, for a clean room, by its ephemeral key with
 * its evidence), sent over HTTPS to a service whose certificate is pinned, and answered in JSON.
 */
#ifndef CCR_GOV_CLIENT_H
#define CCR_GOV_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ccr/common.h"
#include "ccr/gov_crypto.h"

struct ccr_gov_client;

struct ccr_gov_client_config {
    const char *endpoint;     /* "https://host:port" or "http://127.0.0.1:port" */
    const char *service_cert; /* HTTPS: the service certificate (PEM file) to pin; required for https */
    const struct ccr_gov_ident *member;     /* signs member requests; borrowed; may be NULL */
    const struct ccr_gov_ephkey *cleanroom; /* signs clean room requests; borrowed; may be NULL */
    const uint8_t *evidence;                /* the clean room's evidence (borrowed), with cleanroom */
    size_t evidence_len;
    unsigned timeout_s; /* 0: 30 */
};

CCR_API CCR_WUR int ccr_gov_client_create(const struct ccr_gov_client_config *cfg,
                                          struct ccr_gov_client **out, struct ccr_err *err);
CCR_API void ccr_gov_client_destroy(struct ccr_gov_client *c); /* accepts NULL */

/*
 * Sends one request: method and path_query ("/proposals?state=open"); body is the JSON payload (NULL: an
 * empty payload); msg_type is the envelope's "ccf.gov.msg.type" ("request" when NULL); proposal_id is set
 * for ballots and withdrawals (may be NULL). Signs with the member key, or with the clean room key and
 * evidence when path starts with "/cleanroom/". GET and DELETE carry the envelope in the "Ccr-Sign"
 * header. unsigned_req sends no envelope at all (GET /service; tests of refusals).
 *
 * Returns 0 when an answer arrived: *out_status is the HTTP status and *out_body the parsed JSON (caller
 * json_decref; NULL if the body was empty). Transport failures are negative errno with err naming the
 * endpoint (connection refused, certificate mismatch, timeout).
 */
struct ccr_gov_call {
    const char *method;
    const char *path_query;
    const json_t *body;
    const char *msg_type;
    const char *proposal_id;
    bool unsigned_req;
};
CCR_API CCR_WUR int ccr_gov_client_call(struct ccr_gov_client *c, const struct ccr_gov_call *call,
                                        int *out_status, json_t **out_body, struct ccr_err *err);

/* Sends raw bytes as the body (tests of malformed and replayed envelopes): as ccr_gov_client_call. */
CCR_API CCR_WUR int ccr_gov_client_send_raw(struct ccr_gov_client *c, const char *method,
                                            const char *path_query, const uint8_t *body, size_t len,
                                            const char *sign_header, int *out_status, json_t **out_body,
                                            struct ccr_err *err);

#endif
