/*
 * client.c - the signing client of the governance service (ccr/gov_client.h).
 *
 * One libcurl easy handle per client, so consecutive calls reuse the TLS connection. Every call is
 * wrapped in a COSE_Sign1 envelope (docs/governance.md, "Envelope") bound to exactly the request line
 * it travels with ("ccr.request" = "METHOD /path?query") and stamped with the current time; POST and PUT
 * carry it as the body, GET and DELETE base64url in the "Ccr-Sign" header.
 *
 * Trust in the service comes from its certificate alone, given as a file: curl verifies the chain against
 * that file only (CURLOPT_CAINFO) and, in addition, pins its public key (CURLOPT_PINNEDPUBLICKEY with the
 * SHA-256 of the SubjectPublicKeyInfo), so no other certificate - not even one from a public CA - is
 * accepted. Plain http:// is allowed to loopback addresses only (tests, a local daemon).
 *
 * A client is not meant to be shared between threads; a mutex serialises calls anyway.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccr/gov_client.h"

#define ANSWER_MAX    (64u * 1024 * 1024) /* the service never answers more than a few MiB */
#define CERT_FILE_MAX (1024 * 1024)
#define CLEANROOM_PFX "/cleanroom/"

struct ccr_gov_client {
    CURL *curl;
    pthread_mutex_t lock;
    char *endpoint; /* without a trailing '/' */
    bool https;
    char *cert_path;
    char *pin; /* "sha256//<base64>" */
    const struct ccr_gov_ident *member;
    const struct ccr_gov_ephkey *cleanroom;
    const uint8_t *evidence;
    size_t evidence_len;
    unsigned timeout_s;
    char curl_msg[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_global(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = ccr_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ----------------------------------------------------------------------------------------------------- */
/* endpoint and certificate                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

/* True when host (a name or an IP literal, IPv6 without brackets) is a loopback address. */
static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/*
 * Checks endpoint ("scheme://host[:port][/]") and extracts its host into host (cap bytes). Paths,
 * queries and credentials are not accepted: the client appends each request's path itself.
 */
static int parse_endpoint(const char *endpoint, bool *out_https, char *host, size_t cap, struct ccr_err *err)
{
    const char *p;
    bool https;
    if (strncmp(endpoint, "https://", 8) == 0) {
        https = true;
        p = endpoint + 8;
    } else if (strncmp(endpoint, "http://", 7) == 0) {
        https = false;
        p = endpoint + 7;
    } else {
        return ccr_err_set(err, -EINVAL, endpoint, -1, "not an https:// (or loopback http://) endpoint URL");
    }
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end)
            return ccr_err_set(err, -EINVAL, endpoint, -1, "unterminated IPv6 address in the endpoint");
        p++;
    } else {
        end = p + strcspn(p, ":/?#@");
    }
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= cap)
        return ccr_err_set(err, -EINVAL, endpoint, -1, "the endpoint has no host name");
    memcpy(host, p, n);
    host[n] = '\0';
    const char *rest = *end == ']' ? end + 1 : end;
    if (*rest == ':') {
        rest++;
        size_t digits = strspn(rest, "0123456789");
        if (digits == 0 || digits > 5)
            return ccr_err_set(err, -EINVAL, endpoint, -1, "bad port in the endpoint");
        rest += digits;
    }
    if (*rest == '/')
        rest++;
    if (*rest != '\0')
        return ccr_err_set(err, -EINVAL, endpoint, -1,
                           "the endpoint must be scheme://host[:port] only (no path, query or user)");
    *out_https = https;
    return 0;
}

/* Reads the certificate PEM at path and builds "sha256//<base64 SHA-256 of its SubjectPublicKeyInfo>". */
static int make_pin(const char *path, char **out, struct ccr_err *err)
{
    int rc = 0;
    X509 *x = NULL;
    unsigned char *der = NULL;
    ERR_set_mark();
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        rc = ccr_err_set(err, errno ? -errno : -EIO, path, -1,
                         "cannot read the service certificate (give the file 'ccr-gov init' wrote: "
                         "service_cert.pem)");
        goto out;
    }
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x) {
        rc = ccr_err_set(err, -EINVAL, path, -1, "not a PEM certificate");
        goto out;
    }
    int der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (der_len <= 0) {
        rc = ccr_err_set(err, -EIO, path, -1, "cannot encode the certificate's public key");
        goto out;
    }
    uint8_t md[32];
    ccr_gov_sha256(der, (size_t)der_len, md);
    char b64[4 * ((sizeof(md) + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)b64, md, (int)sizeof(md));
    size_t pin_len = strlen("sha256//") + strlen(b64) + 1;
    char *pin = ccr_malloc(pin_len);
    if (!pin) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(pin, pin_len, "sha256//%s", b64);
    *out = pin;
out:
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

int ccr_gov_client_create(const struct ccr_gov_client_config *cfg, struct ccr_gov_client **out,
                          struct ccr_err *err)
{
    if (!cfg || !out || !cfg->endpoint)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no governance endpoint given (--endpoint URL)");
    if (cfg->cleanroom && (!cfg->evidence || cfg->evidence_len == 0))
        return ccr_err_set(err, -EINVAL, cfg->endpoint, -1,
                           "a clean room key needs its attestation evidence");

    char host[256];
    bool https = true;
    int rc = parse_endpoint(cfg->endpoint, &https, host, sizeof(host), err);
    if (rc)
        return rc;
    if (!https && !host_is_loopback(host))
        return ccr_err_set(err, -EPERM, cfg->endpoint, -1,
                           "plain http:// is allowed to a loopback address only: use https:// with the "
                           "service certificate");
    if (https && !cfg->service_cert)
        return ccr_err_set(err, -EINVAL, cfg->endpoint, -1,
                           "an https endpoint needs the service certificate to pin (--service-cert FILE)");

    pthread_once(&curl_once, curl_global);
    if (curl_init_rc != CURLE_OK)
        return ccr_err_set(err, -EIO, NULL, -1, "cannot initialise libcurl: %s",
                           curl_easy_strerror(curl_init_rc));

    struct ccr_gov_client *c = ccr_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        ccr_free(c);
        return -ENOMEM;
    }
    c->https = https;
    c->member = cfg->member;
    c->cleanroom = cfg->cleanroom;
    c->evidence = cfg->evidence;
    c->evidence_len = cfg->evidence_len;
    c->timeout_s = cfg->timeout_s ? cfg->timeout_s : 30;
    c->endpoint = dup_str(cfg->endpoint);
    if (!c->endpoint) {
        rc = -ENOMEM;
        goto fail;
    }
    size_t n = strlen(c->endpoint);
    if (n && c->endpoint[n - 1] == '/')
        c->endpoint[n - 1] = '\0';
    if (https) {
        c->cert_path = dup_str(cfg->service_cert);
        if (!c->cert_path) {
            rc = -ENOMEM;
            goto fail;
        }
        rc = make_pin(cfg->service_cert, &c->pin, err);
        if (rc)
            goto fail;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        rc = -ENOMEM;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    ccr_gov_client_destroy(c);
    return rc;
}

void ccr_gov_client_destroy(struct ccr_gov_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    pthread_mutex_destroy(&c->lock);
    ccr_free(c->endpoint);
    ccr_free(c->cert_path);
    ccr_free(c->pin);
    ccr_free(c);
}

/* ----------------------------------------------------------------------------------------------------- */
/* transport                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

struct answer {
    uint8_t *buf;
    size_t len, cap;
    bool too_large;
};

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb;
    if (a->len + n > ANSWER_MAX) {
        a->too_large = true;
        return 0;
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        uint8_t *nb = ccr_realloc(a->buf, cap);
        if (!nb)
            return 0;
        a->buf = nb;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, data, n);
    a->len += n;
    return n;
}

/* Maps a failed transfer to an errno and a message that names the endpoint and says what to do. */
static int transport_error(struct ccr_gov_client *c, CURLcode cc, const struct answer *a, struct ccr_err *err)
{
    const char *detail = c->curl_msg[0] ? c->curl_msg : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return ccr_err_set(err, -ECONNREFUSED, c->endpoint, -1,
                           "cannot connect to the governance service (%s): is ccr-gov serve running there?",
                           detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return ccr_err_set(err, -EHOSTUNREACH, c->endpoint, -1, "cannot resolve the service's host name (%s)",
                           detail);
    case CURLE_OPERATION_TIMEDOUT:
        return ccr_err_set(err, -ETIMEDOUT, c->endpoint, -1,
                           "no answer from the governance service within %u s (%s)", c->timeout_s, detail);
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return ccr_err_set(err, -EBADMSG, c->endpoint, -1,
                           "the service's certificate does not match the pinned certificate %s (%s): check "
                           "--service-cert and the endpoint",
                           c->cert_path ? c->cert_path : "(none)", detail);
    case CURLE_SSL_CONNECT_ERROR:
        return ccr_err_set(err, -EPROTO, c->endpoint, -1,
                           "TLS handshake with the governance service failed (%s): is it serving https?",
                           detail);
    case CURLE_WRITE_ERROR:
        if (a->too_large)
            return ccr_err_set(err, -EFBIG, c->endpoint, -1, "the service's answer is over %u MiB",
                               ANSWER_MAX >> 20);
        return ccr_err_set(err, -ENOMEM, c->endpoint, -1, "out of memory reading the answer");
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return ccr_err_set(err, -ECONNRESET, c->endpoint, -1,
                           "the governance service closed the connection (%s): plain http to an https "
                           "service, or the reverse?",
                           detail);
    default:
        return ccr_err_set(err, -EIO, c->endpoint, -1, "request to the governance service failed (%s)",
                           detail);
    }
}

/*
 * Performs one HTTP exchange. body may be NULL (no body); sign_header may be NULL. On 0, *out_status is
 * the status and *out_body the parsed JSON (NULL for an empty answer).
 */
static int transfer(struct ccr_gov_client *c, const char *method, const char *path_query, const uint8_t *body,
                    size_t body_len, const char *content_type, const char *sign_header, int *out_status,
                    json_t **out_body, struct ccr_err *err)
{
    if (!method || !path_query || path_query[0] != '/')
        return ccr_err_set(err, -EINVAL, c->endpoint, -1, "a request path must start with '/'");
    for (const char *m = method; *m; m++)
        if (!isupper((unsigned char)*m))
            return ccr_err_set(err, -EINVAL, c->endpoint, -1, "bad HTTP method '%s'", method);

    size_t url_len = strlen(c->endpoint) + strlen(path_query) + 1;
    char *url = ccr_malloc(url_len);
    if (!url)
        return -ENOMEM;
    snprintf(url, url_len, "%s%s", c->endpoint, path_query);

    CURL *e = c->curl;
    struct curl_slist *hdrs = NULL, *h;
    char *sign_line = NULL;
    struct answer a = {0};
    int rc = 0;

    /* No "Expect: 100-continue" round trip for small bodies; curl adds it for large ones (over 1 MiB),
     * which lets the service refuse them (413) before they are sent. */
    h = curl_slist_append(hdrs, "Accept: application/json");
    if (h)
        hdrs = h;
    if (content_type) {
        char line[128];
        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
        h = curl_slist_append(hdrs, line);
        if (!h) {
            rc = -ENOMEM;
            goto out;
        }
        hdrs = h;
    }
    if (sign_header) {
        size_t n = strlen("Ccr-Sign: ") + strlen(sign_header) + 1;
        sign_line = ccr_malloc(n);
        if (!sign_line) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(sign_line, n, "Ccr-Sign: %s", sign_header);
        h = curl_slist_append(hdrs, sign_line);
        if (!h) {
            rc = -ENOMEM;
            goto out;
        }
        hdrs = h;
    }

    curl_easy_reset(e);
    c->curl_msg[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_msg);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)c->timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)c->timeout_s);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    if (c->https) {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cert_path);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, c->pin);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    } else {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_len ? (const char *)body : "");
    }

    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
        rc = transport_error(c, cc, &a, err);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = NULL;
    if (a.len) {
        json_error_t je;
        j = json_loadb((const char *)a.buf, a.len, 0, &je);
        if (!j) {
            rc = ccr_err_set(err, -EBADMSG, c->endpoint, -1,
                             "the answer to %s %s (HTTP %ld) is not JSON: is this a ccr-gov service?", method,
                             path_query, status);
            if (err)
                err->http_status = (int)status;
            goto out;
        }
    }
    *out_status = (int)status;
    *out_body = j;
out:
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    ccr_free(sign_line);
    ccr_free(url);
    ccr_free(a.buf);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* calls                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static bool method_has_body(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0 && strcmp(method, "HEAD") != 0;
}

int ccr_gov_client_call(struct ccr_gov_client *c, const struct ccr_gov_call *call, int *out_status,
                        json_t **out_body, struct ccr_err *err)
{
    if (!c || !call || !call->method || !call->path_query || !out_status || !out_body)
        return ccr_err_set(err, -EINVAL, NULL, -1, "bad governance call arguments");
    bool has_body = method_has_body(call->method);
    char *payload = NULL;
    size_t payload_len = 0;
    uint8_t *env = NULL;
    size_t env_len = 0;
    char *sign_b64 = NULL;
    char *request = NULL;
    int rc;

    if (call->body) {
        if (!has_body)
            return ccr_err_set(err, -EINVAL, c->endpoint, -1, "%s %s cannot carry a body", call->method,
                               call->path_query);
        payload = json_dumps(call->body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!payload)
            return ccr_err_set(err, -ENOMEM, c->endpoint, -1, "cannot encode the request body");
        payload_len = strlen(payload);
    }

    if (!call->unsigned_req) {
        bool cleanroom = strncmp(call->path_query, CLEANROOM_PFX, strlen(CLEANROOM_PFX)) == 0;
        size_t req_len = strlen(call->method) + 1 + strlen(call->path_query) + 1;
        request = ccr_malloc(req_len);
        if (!request) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(request, req_len, "%s %s", call->method, call->path_query);
        struct ccr_cose_hdr hdr = {
            .msg_type = call->msg_type ? call->msg_type : (cleanroom ? "cleanroom" : "request"),
            .created_at = (uint64_t)time(NULL),
            .proposal_id = call->proposal_id,
            .request = request,
        };
        if (cleanroom) {
            if (!c->cleanroom) {
                rc = ccr_err_set(err, -EINVAL, c->endpoint, -1,
                                 "%s needs a clean room key and its evidence to sign with", call->path_query);
                goto out;
            }
            size_t spki_len = 0;
            hdr.pubkey = ccr_gov_ephkey_spki(c->cleanroom, &spki_len);
            hdr.pubkey_len = spki_len;
            hdr.evidence = c->evidence;
            hdr.evidence_len = c->evidence_len;
            rc =
                ccr_cose_sign1_eph(c->cleanroom, &hdr, (const uint8_t *)payload, payload_len, &env, &env_len);
        } else {
            if (!c->member) {
                rc = ccr_err_set(err, -EINVAL, c->endpoint, -1,
                                 "%s needs a member identity to sign with (--member PREFIX)",
                                 call->path_query);
                goto out;
            }
            hdr.kid = ccr_gov_ident_id(c->member);
            rc = ccr_cose_sign1(c->member, &hdr, (const uint8_t *)payload, payload_len, &env, &env_len);
        }
        if (rc) {
            ccr_err_set(err, rc, c->endpoint, -1, "cannot sign the request %s: %s", request, strerror(-rc));
            goto out;
        }
    }

    pthread_mutex_lock(&c->lock);
    if (has_body) {
        /* The body is the envelope; unsigned, the bare JSON (tests of refusals). */
        const uint8_t *b = env ? env : (const uint8_t *)payload;
        size_t bl = env ? env_len : payload_len;
        rc = transfer(c, call->method, call->path_query, b, bl, env ? "application/cose" : "application/json",
                      NULL, out_status, out_body, err);
    } else {
        if (env) {
            rc = ccr_gov_b64url_encode(env, env_len, &sign_b64);
            if (rc) {
                pthread_mutex_unlock(&c->lock);
                goto out;
            }
        }
        rc = transfer(c, call->method, call->path_query, NULL, 0, NULL, sign_b64, out_status, out_body, err);
    }
    pthread_mutex_unlock(&c->lock);
out:
    /* The payload may hold a secret being deposited. */
    if (payload) {
        ccr_wipe(payload, payload_len);
        free(payload); /* jansson's allocator */
    }
    if (env) {
        ccr_wipe(env, env_len);
        ccr_free(env);
    }
    ccr_free(sign_b64);
    ccr_free(request);
    return rc;
}

int ccr_gov_client_send_raw(struct ccr_gov_client *c, const char *method, const char *path_query,
                            const uint8_t *body, size_t len, const char *sign_header, int *out_status,
                            json_t **out_body, struct ccr_err *err)
{
    if (!c || !method || !path_query || !out_status || !out_body || (len && !body))
        return ccr_err_set(err, -EINVAL, NULL, -1, "bad governance call arguments");
    pthread_mutex_lock(&c->lock);
    int rc = transfer(c, method, path_query, body, len, body ? "application/cose" : NULL, sign_header,
                      out_status, out_body, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}
