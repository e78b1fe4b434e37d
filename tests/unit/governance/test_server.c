/*
 * test_server.c - the governance HTTP(S) server and its signing client over a real service in a
 * temporary directory: certificate pinning, plain HTTP only on loopback, the 1 MiB body limit, the raw
 * request line reaching the handler (signed queries), concurrency, the access log, and clear transport
 * errors naming the endpoint.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ccr/gov.h"
#include "ccr/gov_client.h"
#include "ccr/gov_crypto.h"
#include "ccr/gov_server.h"

struct fixture {
    char root[256];
    char data[300];
    char cert[300];
    char key[300];
    char service_cert[320];
    char op_id[CCR_GOV_ID_HEX_LEN + 1];
    struct ccr_gov *g;
    struct ccr_gov_ident *op;
    struct ccr_gov_server *srv;
    char endpoint[128];
};

static char *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

/* A new service (operator keygen, init, TLS identity) in a fresh temporary directory, opened. */
static void fx_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "/tmp/ccr-test-server-XXXXXX");
    cr_assert_not_null(mkdtemp(fx->root));
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_ident_keygen(fx->root, "operator", fx->op_id, &e), 0, "keygen: %s", e.msg);
    snprintf(fx->cert, sizeof(fx->cert), "%s/operator_cert.pem", fx->root);
    snprintf(fx->key, sizeof(fx->key), "%s/operator_privk.pem", fx->root);
    snprintf(fx->data, sizeof(fx->data), "%s/data", fx->root);
    size_t len;
    char *pem = read_file(fx->cert, &len);
    cr_assert_eq(ccr_gov_init_dir(fx->data, pem, len, &e), 0, "init: %s", e.msg);
    free(pem);
    cr_assert_eq(ccr_gov_server_make_cert(fx->data, NULL, &e), 0, "make_cert: %s", e.msg);
    snprintf(fx->service_cert, sizeof(fx->service_cert), "%s/service_cert.pem", fx->data);
    struct ccr_gov_config gc = {.data_dir = fx->data};
    cr_assert_eq(ccr_gov_open(&gc, &fx->g, &e), 0, "open: %s", e.msg);
    cr_assert_eq(ccr_gov_ident_load(fx->cert, fx->key, &fx->op, &e), 0, "load: %s", e.msg);
}

static void fx_start(struct fixture *fx, bool plain, unsigned threads, ccr_gov_server_log_cb log,
                     void *log_arg)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_gov_server_config sc = {
        .listen_addr = "127.0.0.1",
        .port = 0,
        .plain_http = plain,
        .data_dir = fx->data,
        .threads = threads,
        .log = log,
        .log_arg = log_arg,
    };
    cr_assert_eq(ccr_gov_server_start(fx->g, &sc, &fx->srv, &e), 0, "start: %s", e.msg);
    unsigned port = ccr_gov_server_port(fx->srv);
    cr_assert(port > 0 && port <= 65535, "port %u", port);
    snprintf(fx->endpoint, sizeof(fx->endpoint), "%s://127.0.0.1:%u", plain ? "http" : "https", port);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void fx_fini(struct fixture *fx)
{
    ccr_gov_server_stop(fx->srv);
    ccr_gov_close(fx->g);
    ccr_gov_ident_destroy(fx->op);
    nftw(fx->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct ccr_gov_client *client_for(const struct fixture *fx, const char *service_cert)
{
    struct ccr_gov_client_config cc = {
        .endpoint = fx->endpoint,
        .service_cert = service_cert,
        .member = fx->op,
        .timeout_s = 20,
    };
    struct ccr_gov_client *c = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_client_create(&cc, &c, &e), 0, "client: %s", e.msg);
    return c;
}

/* Calls and asserts a transport success; returns the status, *out the answer. */
static int call(struct ccr_gov_client *c, const char *method, const char *pq, bool unsigned_req, json_t **out)
{
    struct ccr_gov_call k = {.method = method, .path_query = pq, .unsigned_req = unsigned_req};
    struct ccr_err e;
    ccr_err_clear(&e);
    int status = 0;
    *out = NULL;
    int rc = ccr_gov_client_call(c, &k, &status, out, &e);
    cr_assert_eq(rc, 0, "%s %s: %d %s: %s", method, pq, rc, e.where, e.msg);
    return status;
}

static const char *error_code(const json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* ----------------------------------------------------------------------------------------------------- */

Test(governance_server, https_pinned_client_gets_service_and_members, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, false, 0, NULL, NULL);
    struct ccr_gov_client *c = client_for(&fx, fx.service_cert);

    json_t *j;
    cr_assert_eq(call(c, "GET", "/service", true, &j), 200);
    cr_assert(json_is_string(json_object_get(j, "version")), "GET /service has no version");
    cr_assert(json_is_false(json_object_get(j, "virtual_attestation_allowed")));
    json_decref(j);

    cr_assert_eq(call(c, "GET", "/members", false, &j), 200, "GET /members: %s", error_code(j));
    json_t *members = json_object_get(j, "members");
    cr_assert_eq(json_array_size(members), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(members, 0), "member_id")), fx.op_id);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(members, 0), "status")), "active");
    json_decref(j);

    /* The same request unsigned is refused by the service (the envelope reaches it only when sent). */
    cr_assert_eq(call(c, "GET", "/members", true, &j), 401);
    cr_assert_str_eq(error_code(j), "Unsigned");
    json_decref(j);

    /* The query is part of the signed request line and reaches the handler exactly as sent. */
    cr_assert_eq(call(c, "GET", "/proposals?state=open", false, &j), 200, "%s", error_code(j));
    cr_assert(json_is_array(json_object_get(j, "proposals")));
    json_decref(j);

    ccr_gov_client_destroy(c);
    fx_fini(&fx);
}

Test(governance_server, client_pinned_to_another_cert_fails_clearly, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, false, 0, NULL, NULL);

    /* Another service identity: same SANs, same CN, other key. */
    char other_dir[320], other_cert[360];
    snprintf(other_dir, sizeof(other_dir), "%s/other", fx.root);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_server_make_cert(other_dir, NULL, &e), 0, "%s", e.msg);
    snprintf(other_cert, sizeof(other_cert), "%s/service_cert.pem", other_dir);

    struct ccr_gov_client *c = client_for(&fx, other_cert);
    struct ccr_gov_call k = {.method = "GET", .path_query = "/service", .unsigned_req = true};
    int status = 0;
    json_t *j = NULL;
    ccr_err_clear(&e);
    int rc = ccr_gov_client_call(c, &k, &status, &j, &e);
    cr_assert_eq(rc, -EBADMSG, "rc %d: %s", rc, e.msg);
    cr_assert_null(j);
    cr_assert_str_eq(e.where, fx.endpoint);
    cr_assert_not_null(strstr(e.msg, "pinned"), "message: %s", e.msg);
    cr_assert_not_null(strstr(e.msg, other_cert), "message names the pinned file: %s", e.msg);
    ccr_gov_client_destroy(c);

    /* The right certificate still works on the same server. */
    c = client_for(&fx, fx.service_cert);
    cr_assert_eq(call(c, "GET", "/service", true, &j), 200);
    json_decref(j);
    ccr_gov_client_destroy(c);
    fx_fini(&fx);
}

Test(governance_server, plain_http_refused_off_loopback, .timeout = 30)
{
    struct fixture fx;
    fx_init(&fx);
    struct ccr_err e;
    struct ccr_gov_server *s = NULL;
    const char *addrs[] = {"0.0.0.0", "::", "192.0.2.1"};
    for (size_t i = 0; i < 3; i++) {
        ccr_err_clear(&e);
        struct ccr_gov_server_config sc = {.listen_addr = addrs[i], .plain_http = true, .data_dir = fx.data};
        cr_assert_eq(ccr_gov_server_start(fx.g, &sc, &s, &e), -EPERM, "%s", addrs[i]);
        cr_assert_null(s);
        cr_assert_not_null(strstr(e.msg, "loopback"), "message: %s", e.msg);
        cr_assert_str_eq(e.where, addrs[i]);
    }
    /* Not an address at all. */
    ccr_err_clear(&e);
    struct ccr_gov_server_config bad = {.listen_addr = "localhost", .data_dir = fx.data};
    cr_assert_eq(ccr_gov_server_start(fx.g, &bad, &s, &e), -EINVAL);

    /* And the client refuses plain http to anything but loopback, before any traffic. */
    struct ccr_gov_client *c = NULL;
    struct ccr_gov_client_config cc = {.endpoint = "http://192.0.2.1:8443", .member = fx.op};
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_client_create(&cc, &c, &e), -EPERM);
    cr_assert_null(c);
    cr_assert_not_null(strstr(e.msg, "loopback"), "message: %s", e.msg);
    /* https without a certificate to pin */
    struct ccr_gov_client_config cc2 = {.endpoint = "https://127.0.0.1:8443", .member = fx.op};
    cr_assert_eq(ccr_gov_client_create(&cc2, &c, &e), -EINVAL);
    struct ccr_gov_client_config cc3 = {.endpoint = "https://127.0.0.1:8443/x",
                                        .service_cert = fx.service_cert};
    cr_assert_eq(ccr_gov_client_create(&cc3, &c, &e), -EINVAL);
    fx_fini(&fx);
}

Test(governance_server, plain_http_on_loopback_works, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, true, 2, NULL, NULL);
    cr_assert_eq(strncmp(fx.endpoint, "http://", 7), 0);
    struct ccr_gov_client *c = client_for(&fx, NULL);
    json_t *j;
    cr_assert_eq(call(c, "GET", "/service", true, &j), 200);
    json_decref(j);
    cr_assert_eq(call(c, "GET", "/members", false, &j), 200, "%s", error_code(j));
    cr_assert_eq(json_array_size(json_object_get(j, "members")), 1);
    json_decref(j);
    ccr_gov_client_destroy(c);

    /* An https client against the plain server fails with a transport error naming the endpoint. */
    char https_ep[128];
    snprintf(https_ep, sizeof(https_ep), "https://127.0.0.1:%u", ccr_gov_server_port(fx.srv));
    struct ccr_gov_client_config cc = {
        .endpoint = https_ep, .service_cert = fx.service_cert, .timeout_s = 10};
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_client_create(&cc, &c, &e), 0);
    struct ccr_gov_call k = {.method = "GET", .path_query = "/service", .unsigned_req = true};
    int status = 0;
    j = NULL;
    int rc = ccr_gov_client_call(c, &k, &status, &j, &e);
    cr_assert(rc < 0, "https to a plain server answered");
    cr_assert_str_eq(e.where, https_ep);
    ccr_gov_client_destroy(c);
    fx_fini(&fx);
}

Test(governance_server, body_over_1mib_gets_413, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, false, 2, NULL, NULL);
    struct ccr_gov_client *c = client_for(&fx, fx.service_cert);
    size_t n = 1024 * 1024 + 1;
    uint8_t *big = calloc(1, n);
    int status = 0;
    json_t *j = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_gov_client_send_raw(c, "POST", "/proposals", big, n, NULL, &status, &j, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_assert_eq(status, 413);
    cr_assert_str_eq(error_code(j), "TooLarge");
    json_decref(j);

    /* Exactly 1 MiB is read and handed on: the service answers (a malformed envelope, not 413). */
    ccr_err_clear(&e);
    rc = ccr_gov_client_send_raw(c, "POST", "/proposals", big, n - 1, NULL, &status, &j, &e);
    cr_assert_eq(rc, 0, "%d %s", rc, e.msg);
    cr_assert_neq(status, 413);
    cr_assert(status >= 400 && status < 500, "status %d", status);
    json_decref(j);

    /* The connection still serves after both. */
    cr_assert_eq(call(c, "GET", "/members", false, &j), 200);
    json_decref(j);
    free(big);
    ccr_gov_client_destroy(c);
    fx_fini(&fx);
}

struct worker {
    const struct fixture *fx;
    int ok;
    int first_bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ccr_gov_client_config cc = {
        .endpoint = w->fx->endpoint,
        .service_cert = w->fx->service_cert,
        .member = w->fx->op,
        .timeout_s = 30,
    };
    struct ccr_gov_client *c = NULL;
    if (ccr_gov_client_create(&cc, &c, NULL) != 0)
        return NULL;
    for (int i = 0; i < 20; i++) {
        struct ccr_gov_call k = {.method = "GET", .path_query = i % 2 ? "/members" : "/proposals"};
        int status = 0;
        json_t *j = NULL;
        int rc = ccr_gov_client_call(c, &k, &status, &j, NULL);
        if (rc == 0 && status == 200 && json_is_object(j))
            w->ok++;
        else if (!w->first_bad)
            w->first_bad = rc ? rc : status;
        json_decref(j);
    }
    ccr_gov_client_destroy(c);
    return NULL;
}

Test(governance_server, sixteen_threads_of_signed_requests_all_answered, .timeout = 180)
{
    struct fixture fx;
    fx_init(&fx);
    fx_start(&fx, false, 8, NULL, NULL);
    pthread_t t[16];
    struct worker w[16];
    for (int i = 0; i < 16; i++) {
        w[i] = (struct worker){.fx = &fx};
        cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].ok, 20, "thread %d: %d of 20 answered 200 (first failure %d)", i, w[i].ok,
                     w[i].first_bad);
        total += w[i].ok;
    }
    cr_assert_eq(total, 16 * 20);
    fx_fini(&fx);
}

struct log_rec {
    pthread_mutex_t lock;
    int n;
    char method[16];
    char path[64];
    int status;
    double ms;
};

static void log_cb(void *arg, const struct ccr_gov_server_access *a)
{
    struct log_rec *r = arg;
    pthread_mutex_lock(&r->lock);
    r->n++;
    snprintf(r->method, sizeof(r->method), "%s", a->method);
    snprintf(r->path, sizeof(r->path), "%s", a->path);
    r->status = a->status;
    r->ms = a->duration_ms;
    pthread_mutex_unlock(&r->lock);
}

Test(governance_server, access_log_and_connection_refused_after_stop, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    struct log_rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    fx_start(&fx, false, 1, log_cb, &rec);
    struct ccr_gov_client *c = client_for(&fx, fx.service_cert);
    json_t *j;
    cr_assert_eq(call(c, "GET", "/proposals?state=open", true, &j), 401);
    json_decref(j);
    /* Stopping waits for the request to be logged completely. */
    ccr_gov_server_stop(fx.srv);
    fx.srv = NULL;
    cr_assert_eq(rec.n, 1);
    cr_assert_str_eq(rec.method, "GET");
    cr_assert_str_eq(rec.path, "/proposals", "the log never shows the query: %s", rec.path);
    cr_assert_eq(rec.status, 401);
    cr_assert(rec.ms >= 0.0 && rec.ms < 60000.0);

    /* Nobody listens any more: a clear connection error naming the endpoint. */
    ccr_gov_client_destroy(c);
    c = client_for(&fx, fx.service_cert);
    struct ccr_gov_call k = {.method = "GET", .path_query = "/service", .unsigned_req = true};
    struct ccr_err e;
    ccr_err_clear(&e);
    int status = 0;
    j = NULL;
    cr_assert_eq(ccr_gov_client_call(c, &k, &status, &j, &e), -ECONNREFUSED, "%s", e.msg);
    cr_assert_str_eq(e.where, fx.endpoint);
    cr_assert_not_null(strstr(e.msg, "ccr-gov serve"), "message: %s", e.msg);
    ccr_gov_client_destroy(c);
    fx_fini(&fx);
}

Test(governance_server, make_cert_key_mode_sans_and_no_overwrite, .timeout = 30)
{
    char root[] = "/tmp/ccr-test-cert-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char dir[64], key[96], cert[96];
    snprintf(dir, sizeof(dir), "%s/svc", root);
    snprintf(key, sizeof(key), "%s/service_privk.pem", dir);
    snprintf(cert, sizeof(cert), "%s/service_cert.pem", dir);
    const char *sans[] = {"gov.example.com", "192.0.2.7", NULL};
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_server_make_cert(dir, sans, &e), 0, "%s", e.msg);
    struct stat st;
    cr_assert_eq(stat(key, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0077, 0, "data dir mode %o", st.st_mode & 0777);

    FILE *f = fopen(cert, "r");
    cr_assert_not_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    cr_assert(EVP_PKEY_is_a(pk, "EC"));
    cr_assert_eq(EVP_PKEY_get_bits(pk), 384);
    cr_assert_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_host(x, "gov.example.com", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_host(x, "other.example.com", 0, 0, NULL), 0);
    cr_assert_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    cr_assert_eq(X509_check_ip_asc(x, "::1", 0), 1);
    cr_assert_eq(X509_check_ip_asc(x, "192.0.2.7", 0), 1);
    cr_assert_eq(X509_check_ip_asc(x, "192.0.2.8", 0), 0);
    /* valid for about 10 years */
    int days = 0, secs = 0;
    cr_assert_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
    cr_assert(days >= 3649 && days <= 3651, "days %d", days);
    X509_free(x);

    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_server_make_cert(dir, NULL, &e), -EEXIST);
    const char *bad[] = {"a,b", NULL};
    char dir2[64];
    snprintf(dir2, sizeof(dir2), "%s/svc2", root);
    cr_assert_eq(ccr_gov_server_make_cert(dir2, bad, &e), -EINVAL);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

Test(governance_server, silent_service_times_out_naming_the_endpoint, .timeout = 30)
{
    /* A socket that listens but never answers: the connection is made, the TLS handshake never ends. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t sl = sizeof(sa);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);

    struct fixture fx;
    fx_init(&fx);
    snprintf(fx.endpoint, sizeof(fx.endpoint), "https://127.0.0.1:%u", ntohs(sa.sin_port));
    struct ccr_gov_client_config cc = {
        .endpoint = fx.endpoint, .service_cert = fx.service_cert, .timeout_s = 1};
    struct ccr_gov_client *c = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_client_create(&cc, &c, &e), 0, "%s", e.msg);
    struct ccr_gov_call k = {.method = "GET", .path_query = "/service", .unsigned_req = true};
    int status = 0;
    json_t *j = NULL;
    cr_assert_eq(ccr_gov_client_call(c, &k, &status, &j, &e), -ETIMEDOUT, "%s", e.msg);
    cr_assert_str_eq(e.where, fx.endpoint);
    cr_assert_not_null(strstr(e.msg, "within 1 s"), "message: %s", e.msg);
    ccr_gov_client_destroy(c);
    close(fd);
    fx_fini(&fx);
}

Test(governance_server, signed_bodies_ballots_and_clean_room_envelopes, .timeout = 60)
{
    struct fixture fx;
    fx_init(&fx);
    /* reopen allowing virtual evidence, so a clean room's envelope reaches the policy check */
    ccr_gov_close(fx.g);
    struct ccr_gov_config gc = {.data_dir = fx.data, .allow_virtual = true};
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_gov_open(&gc, &fx.g, &e), 0, "%s", e.msg);
    fx_start(&fx, false, 2, NULL, NULL);
    struct ccr_gov_client *c = client_for(&fx, fx.service_cert);

    /* A proposal (signed body) adding a second member, then the operator's ballot (proposal_id). */
    char id2[CCR_GOV_ID_HEX_LEN + 1], cert2[320];
    cr_assert_eq(ccr_gov_ident_keygen(fx.root, "second", id2, &e), 0, "%s", e.msg);
    snprintf(cert2, sizeof(cert2), "%s/second_cert.pem", fx.root);
    size_t len;
    char *pem = read_file(cert2, &len);
    json_t *body = json_pack("{s:[{s:s,s:{s:s,s:s}}]}", "actions", "name", "add_member", "args", "cert", pem,
                             "name", "second");
    free(pem);
    struct ccr_gov_call k = {
        .method = "POST", .path_query = "/proposals", .body = body, .msg_type = "proposal"};
    int status = 0;
    json_t *j = NULL;
    cr_assert_eq(ccr_gov_client_call(c, &k, &status, &j, &e), 0, "%s", e.msg);
    json_decref(body);
    cr_assert_eq(status, 201, "POST /proposals: %d %s", status, error_code(j));
    char pid[64], path[128];
    snprintf(pid, sizeof(pid), "%s", json_string_value(json_object_get(j, "proposal_id")));
    json_decref(j);
    snprintf(path, sizeof(path), "/proposals/%s/ballots", pid);
    body = json_pack("{s:s}", "vote", "accept");
    struct ccr_gov_call b = {
        .method = "POST", .path_query = path, .body = body, .msg_type = "ballot", .proposal_id = pid};
    cr_assert_eq(ccr_gov_client_call(c, &b, &status, &j, &e), 0, "%s", e.msg);
    cr_assert_eq(status, 200, "ballot: %d %s", status, error_code(j));
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "accepted");
    json_decref(j);
    /* The same ballot again is a new envelope, refused by the state machine, not as a replay. */
    cr_assert_eq(ccr_gov_client_call(c, &b, &status, &j, &e), 0, "%s", e.msg);
    cr_assert(status == 409, "second ballot: %d %s", status, error_code(j));
    json_decref(j);
    json_decref(body);
    ccr_gov_client_destroy(c);

    /* A clean room: signed with its ephemeral key and evidence; authenticates, then fails on policy. */
    struct ccr_gov_ephkey *ek = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&ek), 0);
    uint8_t meas[CCR_GOV_MEASUREMENT_LEN] = {1, 2, 3};
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    cr_assert_eq(ccr_gov_evidence_virtual(meas, ek, &ev, &ev_len), 0);
    struct ccr_gov_client_config cc = {.endpoint = fx.endpoint,
                                       .service_cert = fx.service_cert,
                                       .cleanroom = ek,
                                       .evidence = ev,
                                       .evidence_len = ev_len};
    cr_assert_eq(ccr_gov_client_create(&cc, &c, &e), 0, "%s", e.msg);
    body = json_pack("{s:s,s:s}", "contract_id", "nope", "action", "execution");
    struct ccr_gov_call r = {.method = "POST", .path_query = "/cleanroom/consent", .body = body};
    cr_assert_eq(ccr_gov_client_call(c, &r, &status, &j, &e), 0, "%s", e.msg);
    const char *code = error_code(j);
    cr_assert(status == 403 || status == 404 || status == 409, "consent: %d %s", status, code);
    cr_assert(code && strcmp(code, "AttestationFailed") != 0 && strcmp(code, "BadSignature") != 0 &&
                  strcmp(code, "VirtualNotAllowed") != 0 && strcmp(code, "RequestMismatch") != 0,
              "the clean room envelope was refused: %s", code);
    json_decref(j);
    /* a member path needs a member key: refused before sending */
    struct ccr_gov_call m = {.method = "GET", .path_query = "/members"};
    cr_assert_eq(ccr_gov_client_call(c, &m, &status, &j, &e), -EINVAL);
    json_decref(body);
    ccr_gov_client_destroy(c);
    free(ev);
    ccr_gov_ephkey_destroy(ek);
    fx_fini(&fx);
}
