/*
 * ccr/gov_server.h - the governance daemon's HTTP(S) front end over libmicrohttpd: TLS with the service
 * certificate, a thread pool, a 1 MiB body limit, and every request handed to ccr_gov_handle. Plain HTTP
 * is refused unless explicitly allowed, and then only on a loopback address.
 */
#ifndef CCR_GOV_SERVER_H
#define CCR_GOV_SERVER_H

#include <stdbool.h>

#include "ccr/common.h"
#include "ccr/gov.h"

/*
 * Creates the service's TLS identity in data_dir: service_privk.pem (EC P-384, 0600) and service_cert.pem,
 * self-signed, valid 10 years, with subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1 plus each entry of
 * sans (NULL-terminated list of host names or IP literals; may be NULL). -EEXIST if they exist.
 */
CCR_API CCR_WUR int ccr_gov_server_make_cert(const char *data_dir, const char *const *sans,
                                             struct ccr_err *err);

/*
 * One answered request, for the daemon's access log: never bodies nor headers. Called from the server's
 * threads, concurrently, once the answer was sent (or the connection failed); strings valid for the call.
 */
struct ccr_gov_server_access {
    const char *method;
    const char *path;   /* without the query */
    int status;         /* 0 when no answer could be sent */
    double duration_ms; /* from the request line to the end of the answer */
};
typedef void (*ccr_gov_server_log_cb)(void *cb_arg, const struct ccr_gov_server_access *a);

struct ccr_gov_server_config {
    const char *listen_addr;   /* IP literal, e.g. "127.0.0.1", "0.0.0.0", "::1" */
    unsigned port;             /* 0: pick a free port (see ccr_gov_server_port) */
    bool plain_http;           /* serve HTTP, not HTTPS: refused (-EPERM) unless listen_addr is loopback */
    const char *cert_path;     /* HTTPS: PEM certificate (default data_dir/service_cert.pem when NULL) */
    const char *key_path;      /* HTTPS: PEM private key (default data_dir/service_privk.pem) */
    const char *data_dir;      /* for the defaults above */
    unsigned threads;          /* 0: 8 */
    ccr_gov_server_log_cb log; /* access log; may be NULL (added to the contract by the server) */
    void *log_arg;
};

struct ccr_gov_server;

/* Starts serving g (borrowed; must outlive the server) in background threads. */
CCR_API CCR_WUR int ccr_gov_server_start(struct ccr_gov *g, const struct ccr_gov_server_config *cfg,
                                         struct ccr_gov_server **out, struct ccr_err *err);

/* The bound port. */
CCR_API unsigned ccr_gov_server_port(const struct ccr_gov_server *s);

/* Stops accepting, waits for requests in progress, frees. Accepts NULL. */
CCR_API void ccr_gov_server_stop(struct ccr_gov_server *s);

#endif
