/*
 * azure.c - the Azure Blob backend: the transport and the operations table (see azure_int.h).
 *
 * Callers are the engine's worker threads, and the store interface is synchronous. Requests therefore
 * cross to the store's lanes: a lane is one thread that owns one curl multi handle, driven by curl's
 * socket and timer callbacks over epoll (the shape of curl's ephiperfifo example). A caller fills a
 * struct req on its own stack, appends it to a lane's queue, rings the lane's eventfd doorbell and sleeps
 * on the request's condition variable; the lane starts it, and on completion either schedules a retry
 * (exponential backoff with jitter, Retry-After honoured) or wakes the caller. So N callers keep N
 * requests in flight over at most `connections` keep-alive HTTP/1.1 connections, and retries never
 * cost a caller more than a wait.
 *
 * Each attempt is signed afresh on the lane (x-ms-date must be current). Responses stream straight into
 * the caller's buffer for ranged gets; listings and error bodies go into a growable buffer.
 *
 * Retry policy: 408, 429, 500, 502, 503, 504 and transport failures (connect, reset, stall, truncated
 * body) are retried up to `tries` attempts. Everything the engine sends is idempotent except one case:
 * a Put Block List whose first attempt may have been applied (the reply was lost) fails on retry with
 * InvalidBlockList, because a commit discards the staged blocks; that answer, after an ambiguous
 * attempt, is resolved by reading the blob's properties (committed since the first attempt began:
 * success). A delete that finds nothing after an ambiguous attempt likewise succeeded.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "azure_int.h"
#include "ccr/crypto.h"

#define MAX_HEADERS   16
#define HDR_MAX       512
#define BODY_LIMIT    ((size_t)64 << 20) /* listings and error bodies */
#define PATH_MAX_ENC  (3 * (CCR_BLOB_NAME_MAX + 256) + 1)
#define QUERY_MAX     (3 * 2048 + 256)
#define DEFAULT_CONNS 32

/* ----------------------------------------------------------------------------------------------------- */
/* configuration                                                                                         */
/* ----------------------------------------------------------------------------------------------------- */

enum auth_kind { AUTH_NONE, AUTH_KEY, AUTH_SAS, AUTH_BEARER };

struct conf {
    unsigned tries;         /* attempts per request */
    unsigned retry_base_ms; /* first backoff */
    unsigned retry_max_ms;  /* backoff cap */
    unsigned connect_s;     /* connect timeout */
    unsigned stall_s;       /* no byte moved for this long: the attempt failed */
    unsigned connections;   /* at most, over all lanes */
    unsigned lanes;
};

static unsigned env_uint(const char *name, unsigned dflt, unsigned lo, unsigned hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n < lo || n > hi)
        return dflt;
    return (unsigned)n;
}

/* ----------------------------------------------------------------------------------------------------- */
/* requests                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

struct az_store;
struct lane;

/*
 * The admission gate: how many requests may be in flight at once. With a fixed --connections it is that
 * number. Otherwise it adapts, as a slow start: from GATE_START it doubles every time a window of at least
 * GATE_WINDOW seconds moved GATE_GAIN more bytes per second than the best window so far, and stops at the
 * first doubling that did not pay (stepping back to the best limit), never beyond `max` (the connections
 * the memory budget allows). Past the knee more connections only add memory, server load and
 * throttling. A throughput drop well below the best (a new phase: many small files after a big one)
 * restarts the probe from the current limit.
 */
#define GATE_START  8
#define GATE_WINDOW 1.0
#define GATE_GAIN   1.10
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned limit, max, inflight;
    bool adaptive, settled;
    unsigned best_limit;
    double best_rate, t0;
    uint64_t bytes;
};

/* Outcome classes of one attempt, for the retry policy. */
enum outcome {
    OUT_DONE,      /* an answer to act on (success or a final error) */
    OUT_NOT_SENT,  /* failed before the request reached the server: always safe to retry */
    OUT_REFUSED,   /* the server answered "not now" (429, 503): safe to retry */
    OUT_AMBIGUOUS, /* the request may have been applied (reset, timeout, 500, 502, 504) */
};

struct req {
    /* input, set by the caller */
    const char *op;     /* for messages: "Put Block", ... */
    const char *where;  /* blob name or store URL, for err */
    const char *method; /* GET PUT DELETE HEAD */
    char path[PATH_MAX_ENC];
    char query[QUERY_MAX];
    const char *hdr[MAX_HEADERS]; /* extra request headers ("Name: value"), signed */
    size_t n_hdr;
    const void *body; /* PUT body (borrowed) */
    size_t body_len;
    const char *content_type;
    void *rbuf; /* GET: the caller's buffer for a 2xx body (NULL: collect into body_out) */
    size_t rcap;

    /* output */
    long status;
    int rc;
    struct ccr_err *err;
    size_t got; /* bytes written into rbuf */
    char *body_out;
    size_t body_len_out, body_cap_out;
    char etag[CCR_ETAG_MAX];
    char last_modified[64];
    char request_id[64];
    char error_code[64];
    uint64_t content_length;
    bool have_length;
    unsigned retry_after_s;
    bool ambiguous;   /* some attempt may have been applied */
    double t_first;   /* wall clock of the first attempt (seconds) */
    unsigned attempt; /* attempts started */
    bool overflow;
    bool token_refreshed;

    /* lane private */
    struct az_store *s;
    struct lane *lane;
    CURL *easy;
    struct curl_slist *slist;
    double due; /* monotonic time a retry may start */
    double t_start;
    struct req *next;

    /* the caller's wait */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

struct lane {
    struct az_store *s;
    pthread_t tid;
    bool started;
    int ep, efd;
    CURLM *multi;
    double timer_due; /* curl's timer (monotonic seconds), < 0 none */
    pthread_mutex_t mu;
    struct req *in_head, *in_tail; /* submitted, not yet seen by the lane (under mu) */
    bool stop;                     /* under mu */
    struct req *retry;             /* waiting for their backoff (lane only) */
    unsigned active;               /* easy handles in the multi (lane only) */
    CURL *free_easy[64];
    unsigned n_free;
    uint64_t rng;
};

struct az_store {
    struct ccr_store base;
    struct az_target t;
    struct conf conf;
    enum auth_kind auth;
    uint8_t key[64];
    size_t key_len;
    char *sas;
    struct az_token *token;
    char *ca_file;
    bool cpk;
    struct ccr_cpk_headers cpk_h;
    ccr_store_trace_cb trace;
    void *trace_arg;
    struct lane *lanes;
    unsigned n_lanes;
    atomic_uint rr;
    atomic_uint_fast64_t req_counter; /* attempts sent (x-ms-client-request-id, ccr_store_get_stats) */
    atomic_uint_fast64_t n_retries, n_failures;
    struct gate gate;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *x)
{
    /* xorshift64*: jitter only */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}

static void req_init(struct req *r, struct az_store *s, const char *op, const char *where, const char *method,
                     struct ccr_err *err)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->op = op;
    r->where = where;
    r->method = method;
    r->err = err;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void req_fini(struct req *r)
{
    ccr_free(r->body_out);
    r->body_out = NULL;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static int req_header(struct req *r, const char *h)
{
    if (r->n_hdr >= MAX_HEADERS)
        return -E2BIG;
    r->hdr[r->n_hdr++] = h;
    return 0;
}

/* path = [/account]/container[/ + encoded prefix+name], as sent and as signed */
static int req_path(struct req *r, const char *blob)
{
    struct az_target *t = &r->s->t;
    int n = t->path_style ? snprintf(r->path, sizeof(r->path), "/%s/%s", t->account, t->container)
                          : snprintf(r->path, sizeof(r->path), "/%s", t->container);
    if (n < 0 || (size_t)n + 2 >= sizeof(r->path))
        return -ENAMETOOLONG;
    if (!blob)
        return 0;
    size_t len = (size_t)n;
    r->path[len++] = '/';
    char full[CCR_BLOB_NAME_MAX + 1];
    int fl = snprintf(full, sizeof(full), "%s%s", t->prefix ? t->prefix : "", blob);
    if (fl < 0 || (size_t)fl >= sizeof(full))
        return -ENAMETOOLONG;
    return az_encode_path(full, r->path + len, sizeof(r->path) - len) < 0 ? -ENAMETOOLONG : 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* curl callbacks                                                                                        */
/* ----------------------------------------------------------------------------------------------------- */

static void copy_trim(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct req *r = arg;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue, or a new attempt): forget the previous one's headers */
        r->etag[0] = r->last_modified[0] = r->request_id[0] = r->error_code[0] = '\0';
        r->have_length = false;
        r->retry_after_s = 0;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    size_t kl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
    char tmp[64];
#define IS(name) (kl == sizeof(name) - 1 && strncasecmp(buf, name, kl) == 0)
    if (IS("etag"))
        copy_trim(r->etag, sizeof(r->etag), v, vl);
    else if (IS("last-modified"))
        copy_trim(r->last_modified, sizeof(r->last_modified), v, vl);
    else if (IS("x-ms-request-id"))
        copy_trim(r->request_id, sizeof(r->request_id), v, vl);
    else if (IS("x-ms-error-code"))
        copy_trim(r->error_code, sizeof(r->error_code), v, vl);
    else if (IS("content-length")) {
        copy_trim(tmp, sizeof(tmp), v, vl);
        char *end;
        unsigned long long x = strtoull(tmp, &end, 10);
        if (end != tmp && !*end) {
            r->content_length = x;
            r->have_length = true;
        }
    } else if (IS("retry-after")) {
        copy_trim(tmp, sizeof(tmp), v, vl);
        char *end;
        unsigned long x = strtoul(tmp, &end, 10);
        if (end != tmp && !*end)
            r->retry_after_s = x > 300 ? 300 : (unsigned)x;
    }
#undef IS
    return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct req *r = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->rbuf && status >= 200 && status < 300) {
        if (n > r->rcap - r->got) {
            r->overflow = true;
            return 0; /* more than asked for: abort (CURLE_WRITE_ERROR) */
        }
        memcpy((char *)r->rbuf + r->got, data, n);
        r->got += n;
        return n;
    }
    if (r->body_len_out + n > BODY_LIMIT) {
        r->overflow = true;
        return 0;
    }
    if (r->body_len_out + n + 1 > r->body_cap_out) {
        size_t cap = r->body_cap_out ? r->body_cap_out : 16384;
        while (cap < r->body_len_out + n + 1)
            cap *= 2;
        char *nb = ccr_realloc(r->body_out, cap);
        if (!nb)
            return 0;
        r->body_out = nb;
        r->body_cap_out = cap;
    }
    memcpy(r->body_out + r->body_len_out, data, n);
    r->body_len_out += n;
    r->body_out[r->body_len_out] = '\0';
    return n;
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct lane *l = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct lane *l = userp;
    l->timer_due = timeout_ms < 0 ? -1.0 : mono_now() + (double)timeout_ms / 1000.0;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* one attempt                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

/* Builds the headers, signs, and starts the attempt on the lane's multi. 0 or -errno (err filled). */
static int attempt_start(struct lane *l, struct req *r)
{
    struct az_store *s = l->s;
    char date[32], date_h[48], ver_h[48], crid_h[64], auth_h[HDR_MAX + 64], len_h[48], ct_h[128];
    const char *sign[MAX_HEADERS + 8];
    size_t ns = 0;

    az_http_date(time(NULL), date);
    snprintf(date_h, sizeof(date_h), "x-ms-date: %s", date);
    snprintf(ver_h, sizeof(ver_h), "x-ms-version: %s", AZ_API_VERSION);
    snprintf(crid_h, sizeof(crid_h), "x-ms-client-request-id: ccr-%ld-%" PRIuFAST64, (long)getpid(),
             atomic_fetch_add(&s->req_counter, 1));
    sign[ns++] = date_h;
    sign[ns++] = ver_h;
    sign[ns++] = crid_h;
    for (size_t i = 0; i < r->n_hdr; i++)
        sign[ns++] = r->hdr[i];
    bool has_body = strcmp(r->method, "PUT") == 0;
    if (has_body) {
        snprintf(len_h, sizeof(len_h), "Content-Length: %zu", r->body_len);
        snprintf(ct_h, sizeof(ct_h), "Content-Type: %s",
                 r->content_type ? r->content_type : "application/octet-stream");
        sign[ns++] = ct_h;
    }

    struct curl_slist *sl = NULL;
    for (size_t i = 0; i < ns; i++)
        sl = curl_slist_append(sl, sign[i]);
    sl = curl_slist_append(sl, "Expect:");

    char url_q[QUERY_MAX + 2048];
    size_t ql = 0;
    url_q[0] = '\0';
    if (r->query[0])
        ql += (size_t)snprintf(url_q, sizeof(url_q), "%s", r->query);
    if (s->auth == AUTH_SAS && s->sas)
        snprintf(url_q + ql, sizeof(url_q) - ql, "%s%s", ql ? "&" : "", s->sas);

    if (s->auth == AUTH_KEY) {
        const char *sign2[MAX_HEADERS + 9];
        memcpy(sign2, sign, ns * sizeof(*sign));
        size_t ns2 = ns;
        if (has_body)
            sign2[ns2++] = len_h;
        char sig[HDR_MAX];
        int n = az_sharedkey_authorization(s->key, s->key_len, s->t.account, r->method, r->path, r->query,
                                           sign2, ns2, sig, sizeof(sig));
        if (n < 0) {
            curl_slist_free_all(sl);
            return ccr_err_set(r->err, -EINVAL, r->where, -1, "%s: cannot sign the request (%s)", r->op,
                               strerror(-n));
        }
        snprintf(auth_h, sizeof(auth_h), "Authorization: %s", sig);
        sl = curl_slist_append(sl, auth_h);
    } else if (s->auth == AUTH_BEARER) {
        char tok[8192];
        struct ccr_err te;
        ccr_err_clear(&te);
        int rc = az_token_get(s->token, tok, sizeof(tok), &te);
        if (rc < 0) {
            curl_slist_free_all(sl);
            ccr_err_set(r->err, rc, r->where, -1, "%s: no bearer token: %s", r->op, te.msg);
            return rc;
        }
        size_t need = strlen(tok) + 32;
        char *bh = ccr_malloc(need);
        if (!bh) {
            ccr_wipe(tok, sizeof(tok));
            curl_slist_free_all(sl);
            return ccr_err_set(r->err, -ENOMEM, r->where, -1, "out of memory");
        }
        snprintf(bh, need, "Authorization: Bearer %s", tok);
        sl = curl_slist_append(sl, bh);
        ccr_wipe(bh, need);
        ccr_free(bh);
        ccr_wipe(tok, sizeof(tok));
    }
    if (!sl) {
        return ccr_err_set(r->err, -ENOMEM, r->where, -1, "out of memory");
    }

    char *url = ccr_malloc(strlen(s->t.endpoint) + sizeof(r->path) + sizeof(url_q) + 4);
    if (!url) {
        curl_slist_free_all(sl);
        return ccr_err_set(r->err, -ENOMEM, r->where, -1, "out of memory");
    }
    /* the endpoint of a path-style store already ends in /account: r->path repeats it for signing */
    const char *path = r->path;
    if (s->t.path_style) {
        size_t al = strlen(s->t.account) + 1;
        path += al;
    }
    sprintf(url, "%s%s%s%s", s->t.endpoint, path, url_q[0] ? "?" : "", url_q);

    CURL *e = l->n_free ? l->free_easy[--l->n_free] : curl_easy_init();
    if (!e) {
        ccr_free(url);
        curl_slist_free_all(sl);
        return ccr_err_set(r->err, -ENOMEM, r->where, -1, "cannot create a curl handle");
    }
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    ccr_free(url); /* curl copies it */
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)s->conf.connect_s);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)s->conf.stall_s);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_len ? r->body : "");
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }

    r->easy = e;
    r->slist = sl;
    r->got = 0;
    r->overflow = false;
    r->body_len_out = 0;
    r->status = 0;
    r->attempt++;
    r->t_start = mono_now();
    if (r->attempt == 1)
        r->t_first = wall_now();
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        r->easy = NULL;
        r->slist = NULL;
        curl_slist_free_all(sl);
        if (l->n_free < 64)
            l->free_easy[l->n_free++] = e;
        else
            curl_easy_cleanup(e);
        return ccr_err_set(r->err, -EIO, r->where, -1, "%s: curl refused the request", r->op);
    }
    l->active++;
    return 0;
}

static int errno_of_status(long st, const char *code)
{
    switch (st) {
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 409:
        return -EEXIST;
    case 412:
        return -ESTALE;
    case 413:
        return -EFBIG;
    case 408:
    case 504:
        return -ETIMEDOUT;
    case 429:
    case 503:
        return -EAGAIN;
    case 400:
        return -EINVAL;
    default:
        (void)code;
        return st >= 500 ? -EIO : -EPROTO;
    }
}

static int errno_of_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        return -EPROTO;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return -ECONNRESET;
    default:
        return -EIO;
    }
}

static enum outcome classify(struct req *r, CURLcode cc)
{
    if (cc != CURLE_OK) {
        if (r->overflow)
            return OUT_DONE;
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
            return OUT_NOT_SENT;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return OUT_AMBIGUOUS;
        default:
            return OUT_DONE;
        }
    }
    switch (r->status) {
    case 429:
    case 503:
        return OUT_REFUSED;
    case 408:
    case 500:
    case 502:
    case 504:
        return OUT_AMBIGUOUS;
    default:
        return OUT_DONE;
    }
}

static void trace_attempt(struct az_store *s, struct req *r, CURLcode cc)
{
    if (!s->trace)
        return;
    const char *q = r->query; /* ours alone: the SAS is appended to the URL, never to r->query */
    char line[PATH_MAX_ENC + QUERY_MAX + 256];
    double ms = (mono_now() - r->t_start) * 1000.0;
    size_t bytes = strcmp(r->method, "PUT") == 0 ? r->body_len : (r->rbuf ? r->got : r->body_len_out);
    if (cc == CURLE_OK)
        snprintf(line, sizeof(line), "%s %s%s%s -> %ld%s%s %.1f ms %zu bytes try %u%s%s", r->method, r->path,
                 q[0] ? "?" : "", q, r->status, r->error_code[0] ? " " : "", r->error_code, ms, bytes,
                 r->attempt, r->request_id[0] ? " request-id " : "", r->request_id);
    else
        snprintf(line, sizeof(line), "%s %s%s%s -> %s %.1f ms try %u", r->method, r->path, q[0] ? "?" : "", q,
                 curl_easy_strerror(cc), ms, r->attempt);
    s->trace(s->trace_arg, line);
}

static void complete(struct req *r)
{
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void retry_insert(struct lane *l, struct req *r)
{
    struct req **pp = &l->retry;
    while (*pp && (*pp)->due <= r->due)
        pp = &(*pp)->next;
    r->next = *pp;
    *pp = r;
}

static void attempt_done(struct lane *l, struct req *r, CURLcode cc)
{
    struct az_store *s = l->s;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_multi_remove_handle(l->multi, r->easy);
    l->active--;
    if (l->n_free < 64)
        l->free_easy[l->n_free++] = r->easy;
    else
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
    curl_slist_free_all(r->slist);
    r->slist = NULL;
    trace_attempt(s, r, cc);

    /* a bearer token that expired under us: fetch a new one once */
    if (cc == CURLE_OK && r->status == 401 && s->auth == AUTH_BEARER && !r->token_refreshed) {
        r->token_refreshed = true;
        atomic_fetch_add_explicit(&s->n_retries, 1, memory_order_relaxed);
        az_token_invalidate(s->token);
        r->due = mono_now();
        retry_insert(l, r);
        return;
    }

    enum outcome o = classify(r, cc);
    if (o == OUT_AMBIGUOUS)
        r->ambiguous = true;
    if (o != OUT_DONE && r->attempt < s->conf.tries) {
        uint64_t d = (uint64_t)s->conf.retry_base_ms << (r->attempt - 1 < 16 ? r->attempt - 1 : 16);
        if (d > s->conf.retry_max_ms)
            d = s->conf.retry_max_ms;
        d = d / 2 + rng_next(&l->rng) % (d / 2 + 1); /* jitter: half to all of it */
        if (r->retry_after_s && (uint64_t)r->retry_after_s * 1000 > d)
            d = (uint64_t)r->retry_after_s * 1000;
        r->due = mono_now() + (double)d / 1000.0;
        atomic_fetch_add_explicit(&s->n_retries, 1, memory_order_relaxed);
        retry_insert(l, r);
        return;
    }

    /* final: translate */
    if (cc != CURLE_OK) {
        int code = r->overflow ? -EPROTO : errno_of_curl(cc);
        if (r->overflow)
            ccr_err_set(r->err, code, r->where, -1, "%s: the server sent more than was asked for", r->op);
        else if (code == -EPROTO)
            ccr_err_set(r->err, code, r->where, -1,
                        "%s: TLS failed (%s): is the server's certificate trusted? (--ca-file)", r->op,
                        curl_easy_strerror(cc));
        else
            ccr_err_set(r->err, code, r->where, -1, "%s: %s (after %u attempt%s)", r->op,
                        curl_easy_strerror(cc), r->attempt, r->attempt == 1 ? "" : "s");
        r->rc = code;
    } else if (r->status >= 200 && r->status < 300) {
        r->rc = 0;
    } else {
        /* counted below with the transport failures */
        char code[64] = "", msg[256] = "";
        if (r->body_out && r->body_len_out)
            az_parse_error(r->body_out, r->body_len_out, code, sizeof(code), msg, sizeof(msg));
        if (!code[0])
            snprintf(code, sizeof(code), "%s", r->error_code);
        int rc = errno_of_status(r->status, code);
        char *nl = strchr(msg, '\n');
        if (nl)
            *nl = '\0';
        ccr_err_set(r->err, rc, r->where, -1, "%s: HTTP %ld%s%s%s%s%s", r->op, r->status, code[0] ? " " : "",
                    code, msg[0] ? ": " : "", msg, o != OUT_DONE ? " (retries exhausted)" : "");
        if (r->err) {
            r->err->http_status = (int)r->status;
            snprintf(r->err->service_code, sizeof(r->err->service_code), "%s", code);
            snprintf(r->err->request_id, sizeof(r->err->request_id), "%s", r->request_id);
        }
        snprintf(r->error_code, sizeof(r->error_code), "%s", code);
        r->rc = rc;
    }
    if (r->rc)
        atomic_fetch_add_explicit(&s->n_failures, 1, memory_order_relaxed);
    complete(r);
}

/* ----------------------------------------------------------------------------------------------------- */
/* the lane                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

static void start_or_fail(struct lane *l, struct req *r)
{
    int rc = attempt_start(l, r);
    if (rc < 0) {
        r->rc = rc;
        complete(r);
    }
}

static void drain_info(struct lane *l)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        attempt_done(l, r, m->data.result);
    }
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    struct epoll_event evs[64];
    int running = 0;
    for (;;) {
        double now = mono_now();
        double due = l->timer_due;
        if (l->retry && (due < 0 || l->retry->due < due))
            due = l->retry->due;
        int to = -1;
        if (due >= 0) {
            double d = (due - now) * 1000.0;
            to = d <= 0 ? 0 : (int)d + 1;
        }
        int n = epoll_wait(l->ep, evs, 64, to);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == l->efd) {
                uint64_t v;
                if (read(l->efd, &v, sizeof(v)) < 0) {
                    /* nothing to drain */
                }
                continue;
            }
            int flags = 0;
            if (evs[i].events & EPOLLIN)
                flags |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(l->multi, evs[i].data.fd, flags, &running);
        }
        if (l->timer_due >= 0 && mono_now() >= l->timer_due) {
            l->timer_due = -1;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        drain_info(l);

        /* new submissions */
        pthread_mutex_lock(&l->mu);
        struct req *in = l->in_head;
        l->in_head = l->in_tail = NULL;
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        while (in) {
            struct req *next = in->next;
            in->next = NULL;
            start_or_fail(l, in);
            in = next;
        }
        /* retries whose time has come */
        now = mono_now();
        while (l->retry && l->retry->due <= now) {
            struct req *r = l->retry;
            l->retry = r->next;
            r->next = NULL;
            start_or_fail(l, r);
        }
        drain_info(l);
        if (stop && l->active == 0 && !l->retry)
            break;
    }
    return NULL;
}

static void gate_init(struct gate *g, unsigned max, bool adaptive)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->max = max;
    g->adaptive = adaptive;
    g->limit = adaptive && max > GATE_START ? GATE_START : max;
    g->best_limit = g->limit;
    g->t0 = mono_now();
}

static void gate_fini(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void gate_enter(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->inflight >= g->limit)
        pthread_cond_wait(&g->cv, &g->mu);
    g->inflight++;
    pthread_mutex_unlock(&g->mu);
}

static void gate_leave(struct gate *g, uint64_t bytes)
{
    pthread_mutex_lock(&g->mu);
    unsigned before = g->limit;
    g->inflight--;
    g->bytes += bytes;
    double now = mono_now(), dt = now - g->t0;
    if (g->adaptive && dt >= GATE_WINDOW) {
        double rate = (double)g->bytes / dt;
        if (!g->settled) {
            if (rate > g->best_rate * GATE_GAIN) {
                g->best_rate = rate;
                g->best_limit = g->limit;
                if (g->limit < g->max)
                    __atomic_store_n(&g->limit, g->limit * 2 > g->max ? g->max : g->limit * 2,
                                     __ATOMIC_RELAXED);
                else
                    g->settled = true;
            } else {
                __atomic_store_n(&g->limit, g->best_limit, __ATOMIC_RELAXED);
                g->settled = true;
            }
        } else if (rate < g->best_rate / 2 && g->limit < g->max) {
            g->settled = false; /* the load changed: probe again from here */
            g->best_rate = rate;
        }
        g->bytes = 0;
        g->t0 = now;
    }
    /* one slot freed: wake one waiter (32 callers woken per request cost more CPU than the transfer) */
    if (g->limit > before)
        pthread_cond_broadcast(&g->cv);
    else
        pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int submit(struct az_store *s, struct req *r)
{
    gate_enter(&s->gate);
    unsigned i = atomic_fetch_add(&s->rr, 1) % s->n_lanes;
    struct lane *l = &s->lanes[i];
    r->lane = l;
    pthread_mutex_lock(&l->mu);
    if (l->in_tail)
        l->in_tail->next = r;
    else
        l->in_head = r;
    l->in_tail = r;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    if (write(l->efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow here; the lane wakes on the next event anyway */
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    gate_leave(&s->gate, r->body_len + r->got + r->body_len_out);
    return r->rc;
}

static void lanes_stop(struct az_store *s)
{
    for (unsigned i = 0; i < s->n_lanes; i++) {
        struct lane *l = &s->lanes[i];
        if (l->started) {
            pthread_mutex_lock(&l->mu);
            l->stop = true;
            pthread_mutex_unlock(&l->mu);
            uint64_t one = 1;
            if (write(l->efd, &one, sizeof(one)) < 0) {
                /* see submit */
            }
            pthread_join(l->tid, NULL);
        }
        for (unsigned k = 0; k < l->n_free; k++)
            curl_easy_cleanup(l->free_easy[k]);
        if (l->multi)
            curl_multi_cleanup(l->multi);
        if (l->ep >= 0)
            close(l->ep);
        if (l->efd >= 0)
            close(l->efd);
        pthread_mutex_destroy(&l->mu);
    }
}

static int lanes_start(struct az_store *s, struct ccr_err *err)
{
    s->lanes = ccr_calloc(s->n_lanes, sizeof(*s->lanes));
    if (!s->lanes)
        return ccr_err_set(err, -ENOMEM, s->base.url, -1, "out of memory");
    long per_lane = (long)((s->conf.connections + s->n_lanes - 1) / s->n_lanes);
    for (unsigned i = 0; i < s->n_lanes; i++) {
        struct lane *l = &s->lanes[i];
        l->s = s;
        l->ep = l->efd = -1;
        l->timer_due = -1;
        pthread_mutex_init(&l->mu, NULL);
        if (getrandom(&l->rng, sizeof(l->rng), 0) != sizeof(l->rng) || l->rng == 0)
            l->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)l;
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        l->multi = curl_multi_init();
        if (l->ep < 0 || l->efd < 0 || !l->multi) {
            s->n_lanes = i + 1;
            return ccr_err_set(err, -ENOMEM, s->base.url, -1, "cannot set up the HTTP lanes");
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->efd};
        epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &ev);
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
        curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_lane);
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, per_lane);
        curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
        if (pthread_create(&l->tid, NULL, lane_main, l) != 0) {
            s->n_lanes = i + 1;
            return ccr_err_set(err, -EAGAIN, s->base.url, -1, "cannot start an HTTP lane thread");
        }
        l->started = true;
    }
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* operations                                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

static int az_list(struct ccr_store *st, const char *prefix, const char *delimiter, const char *marker,
                   size_t max_results, struct ccr_blob_page *out, struct ccr_err *err);

static struct az_store *AZ(struct ccr_store *s)
{
    return (struct az_store *)(void *)s;
}

/* Adds the CPK headers (mode cpk) to a request on a blob. */
static void add_cpk(struct az_store *s, struct req *r, char *k, char *h, size_t cap)
{
    if (!s->cpk)
        return;
    snprintf(k, cap, "x-ms-encryption-key: %s", s->cpk_h.key_b64);
    snprintf(h, cap, "x-ms-encryption-key-sha256: %s", s->cpk_h.key_sha256_b64);
    req_header(r, k);
    req_header(r, h);
    req_header(r, "x-ms-encryption-algorithm: " CCR_CPK_ALGORITHM);
}

static void props_from(const struct req *r, struct ccr_blob_props *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->etag, sizeof(out->etag), "%s", r->etag);
    int64_t ns = 0;
    if (r->last_modified[0] && az_parse_http_date(r->last_modified, &ns) == 0)
        out->mtime_ns = ns;
    if (r->have_length)
        out->size = r->content_length;
}

static int path_err(struct req *r, int rc, const char *blob)
{
    return ccr_err_set(r->err, rc, blob, -1, "blob name too long for a URL");
}

static int az_create_container(struct ccr_store *st, bool *out_created, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    struct req r;
    req_init(&r, s, "Create Container", s->base.url, "PUT", err);
    req_path(&r, NULL);
    snprintf(r.query, sizeof(r.query), "restype=container");
    int rc = submit(s, &r);
    if (rc == -EEXIST && (strcmp(r.error_code, "ContainerAlreadyExists") == 0 || r.status == 409)) {
        ccr_err_clear(err);
        rc = 0;
        if (out_created)
            *out_created = false;
    } else if (rc == 0 && out_created) {
        *out_created = true;
    }
    /* a SAS scoped to the container cannot create it; if it can list, the container is there */
    if (rc == -EACCES && s->auth == AUTH_SAS) {
        struct ccr_blob_page p = {0};
        struct ccr_err e2;
        ccr_err_clear(&e2);
        if (az_list(st, "", "", NULL, 1, &p, &e2) == 0) {
            ccr_blob_page_fini(&p);
            ccr_err_clear(err);
            rc = 0;
            if (out_created)
                *out_created = false;
        }
    }
    req_fini(&r);
    return rc;
}

static int az_put_block(struct ccr_store *st, const char *blob, uint64_t index, uint64_t offset,
                        const void *data, size_t len, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    struct req r;
    req_init(&r, s, "Put Block", blob, "PUT", err);
    int rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        req_fini(&r);
        return rc;
    }
    char id[AZ_BLOCK_ID_MAX], enc[3 * AZ_BLOCK_ID_MAX];
    az_block_id(index, id);
    az_encode_query(id, enc, sizeof(enc));
    snprintf(r.query, sizeof(r.query), "comp=block&blockid=%s", enc);
    char k[128], h[128];
    add_cpk(s, &r, k, h, sizeof(k));
    r.body = data;
    r.body_len = len;
    rc = submit(s, &r);
    if (rc < 0 && err) {
        char m[sizeof(err->msg)];
        memcpy(m, err->msg, sizeof(m));
        int n = snprintf(err->msg, sizeof(err->msg), "block %" PRIu64 ": ", index);
        if (n > 0 && (size_t)n < sizeof(err->msg))
            memccpy(err->msg + n, m, '\0', sizeof(err->msg) - (size_t)n - 1);
        err->msg[sizeof(err->msg) - 1] = '\0';
    }
    req_fini(&r);
    return rc;
}

static int az_props_req(struct az_store *s, const char *blob, struct ccr_blob_props *out, struct ccr_err *err)
{
    struct req r;
    req_init(&r, s, "Get Blob Properties", blob, "HEAD", err);
    int rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        req_fini(&r);
        return rc;
    }
    char k[128], h[128];
    add_cpk(s, &r, k, h, sizeof(k));
    rc = submit(s, &r);
    if (rc == 0)
        props_from(&r, out);
    req_fini(&r);
    return rc;
}

static int az_commit_blocks(struct ccr_store *st, const char *blob, uint64_t n_blocks,
                            struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    char *body = NULL;
    size_t body_len = 0;
    int rc = az_block_list_body(n_blocks, &body, &body_len);
    if (rc < 0)
        return ccr_err_set(err, rc, blob, -1, "out of memory");
    struct req r;
    req_init(&r, s, "Put Block List", blob, "PUT", err);
    rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        goto out;
    }
    snprintf(r.query, sizeof(r.query), "comp=blocklist");
    char k[128], h[128];
    add_cpk(s, &r, k, h, sizeof(k));
    r.body = body;
    r.body_len = body_len;
    r.content_type = "application/xml";
    rc = submit(s, &r);
    if (rc == -EINVAL && r.ambiguous && strcmp(r.error_code, "InvalidBlockList") == 0) {
        /* an earlier attempt may have committed (the blocks are gone): did it? */
        struct ccr_blob_props p;
        struct ccr_err e2;
        ccr_err_clear(&e2);
        if (az_props_req(s, blob, &p, &e2) == 0 && (double)p.mtime_ns / 1e9 >= r.t_first - 5.0) {
            ccr_err_clear(err);
            rc = 0;
        }
    }
    if (rc == 0 && out_props) {
        /* the answer has the ETag and the time but not the size; a HEAD per file to learn it would cost a
         * round trip that no caller needs */
        props_from(&r, out_props);
        out_props->size = CCR_SIZE_UNKNOWN;
    }
out:
    req_fini(&r);
    ccr_free(body);
    return rc;
}

static int az_put_blob(struct ccr_store *st, const char *blob, const void *data, size_t len,
                       struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    struct req r;
    req_init(&r, s, "Put Blob", blob, "PUT", err);
    int rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        req_fini(&r);
        return rc;
    }
    req_header(&r, "x-ms-blob-type: BlockBlob");
    char k[128], h[128];
    add_cpk(s, &r, k, h, sizeof(k));
    r.body = data;
    r.body_len = len;
    rc = submit(s, &r);
    if (rc == 0 && out_props) {
        props_from(&r, out_props);
        out_props->size = len;
    }
    req_fini(&r);
    return rc;
}

static ssize_t az_get(struct ccr_store *st, const char *blob, uint64_t offset, void *buf, size_t len,
                      const char *if_match, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    if (len == 0)
        return 0;
    struct req r;
    req_init(&r, s, "Get Blob", blob, "GET", err);
    int rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        req_fini(&r);
        return rc;
    }
    char range[96], im[CCR_ETAG_MAX + 16];
    snprintf(range, sizeof(range), "x-ms-range: bytes=%" PRIu64 "-%" PRIu64, offset, offset + len - 1);
    req_header(&r, range);
    if (if_match && if_match[0]) {
        snprintf(im, sizeof(im), "If-Match: %s", if_match);
        req_header(&r, im);
    }
    char k[128], h[128];
    add_cpk(s, &r, k, h, sizeof(k));
    r.rbuf = buf;
    r.rcap = len;
    rc = submit(s, &r);
    ssize_t ret = rc;
    if (rc == 0) {
        ret = (ssize_t)r.got;
        if (r.have_length && r.content_length != r.got) {
            ret = ccr_err_set(err, -EPROTO, blob, (int64_t)offset,
                              "Get Blob: %zu bytes received, %" PRIu64 " announced", r.got, r.content_length);
        }
    } else if (r.status == 416) {
        /* the range starts at or past the end: nothing to read (unless the ETag moved) */
        ccr_err_clear(err);
        ret = 0;
        if (if_match && if_match[0]) {
            struct ccr_blob_props p;
            if (az_props_req(s, blob, &p, err) == 0 && strcmp(p.etag, if_match) != 0)
                ret = ccr_err_set(err, -ESTALE, blob, -1, "the blob changed (ETag %s, expected %s)", p.etag,
                                  if_match);
        }
    }
    req_fini(&r);
    return ret;
}

static int az_props(struct ccr_store *st, const char *blob, struct ccr_blob_props *out, struct ccr_err *err)
{
    return az_props_req(AZ(st), blob, out, err);
}

static int az_del(struct ccr_store *st, const char *blob, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    struct req r;
    req_init(&r, s, "Delete Blob", blob, "DELETE", err);
    int rc = req_path(&r, blob);
    if (rc < 0) {
        path_err(&r, rc, blob);
        req_fini(&r);
        return rc;
    }
    rc = submit(s, &r);
    if (rc == -ENOENT && r.ambiguous) {
        ccr_err_clear(err);
        rc = 0;
    }
    req_fini(&r);
    return rc;
}

static int az_list(struct ccr_store *st, const char *prefix, const char *delimiter, const char *marker,
                   size_t max_results, struct ccr_blob_page *out, struct ccr_err *err)
{
    struct az_store *s = AZ(st);
    struct req r;
    req_init(&r, s, "List Blobs", s->base.url, "GET", err);
    req_path(&r, NULL);
    char full[CCR_BLOB_NAME_MAX + 1];
    snprintf(full, sizeof(full), "%s%s", s->t.prefix ? s->t.prefix : "", prefix);
    /* query parameters in any order; SharedKey sorts them */
    size_t q =
        (size_t)snprintf(r.query, sizeof(r.query), "restype=container&comp=list&maxresults=%zu", max_results);
    if (full[0]) {
        q += (size_t)snprintf(r.query + q, sizeof(r.query) - q, "&prefix=");
        int n = az_encode_query(full, r.query + q, sizeof(r.query) - q);
        if (n < 0) {
            req_fini(&r);
            return ccr_err_set(err, -ENAMETOOLONG, prefix, -1, "prefix too long");
        }
        q += (size_t)n;
    }
    if (delimiter[0]) {
        q += (size_t)snprintf(r.query + q, sizeof(r.query) - q, "&delimiter=");
        q += (size_t)az_encode_query(delimiter, r.query + q, sizeof(r.query) - q);
    }
    if (marker) {
        q += (size_t)snprintf(r.query + q, sizeof(r.query) - q, "&marker=");
        int n = az_encode_query(marker, r.query + q, sizeof(r.query) - q);
        if (n < 0) {
            req_fini(&r);
            return ccr_err_set(err, -EINVAL, s->base.url, -1, "listing marker too long");
        }
    }
    int rc = submit(s, &r);
    if (rc == 0) {
        rc = az_parse_list(r.body_out ? r.body_out : "", r.body_len_out, s->t.prefix, out, err);
        if (rc < 0)
            ccr_err_where(err, s->base.url);
    }
    req_fini(&r);
    return rc;
}

static unsigned az_parallelism(const struct ccr_store *st)
{
    return ((const struct az_store *)(const void *)st)->conf.connections;
}

static unsigned az_concurrency_now(const struct ccr_store *st)
{
    const struct az_store *s = (const struct az_store *)(const void *)st;
    return __atomic_load_n(&s->gate.limit, __ATOMIC_RELAXED); /* a hint: a stale value is harmless */
}

static void az_stats(const struct ccr_store *st, struct ccr_store_stats *out)
{
    const struct az_store *s = (const void *)st;
    out->requests = atomic_load_explicit(&s->req_counter, memory_order_relaxed);
    out->retries = atomic_load_explicit(&s->n_retries, memory_order_relaxed);
    out->failures = atomic_load_explicit(&s->n_failures, memory_order_relaxed);
}

static void az_destroy(struct ccr_store *st)
{
    struct az_store *s = AZ(st);
    if (s->lanes) {
        lanes_stop(s);
        ccr_free(s->lanes);
        gate_fini(&s->gate);
    }
    az_token_destroy(s->token);
    az_target_fini(&s->t);
    if (s->sas) {
        ccr_wipe(s->sas, strlen(s->sas));
        ccr_free(s->sas);
    }
    ccr_wipe(s->key, sizeof(s->key));
    ccr_wipe(&s->cpk_h, sizeof(s->cpk_h));
    ccr_free(s->ca_file);
    ccr_free(s->base.url);
    ccr_free(s);
}

static const struct ccr_store_ops az_ops = {
    .scheme = "https",
    .destroy = az_destroy,
    .create_container = az_create_container,
    .put_block = az_put_block,
    .commit_blocks = az_commit_blocks,
    .put_blob = az_put_blob,
    .get = az_get,
    .props = az_props,
    .del = az_del,
    .list = az_list,
    .parallelism = az_parallelism,
    .concurrency_now = az_concurrency_now,
    .stats = az_stats,
};

/* ----------------------------------------------------------------------------------------------------- */
/* open                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_str(const char *v)
{
    return v ? ccr_blob_strdup(v) : NULL;
}

static int pick_auth(struct az_store *s, struct ccr_err *err)
{
    const char *env_sas = getenv("AZURE_STORAGE_SAS_TOKEN");
    const char *env_key = getenv("AZURE_STORAGE_KEY");
    const char *conn = getenv("AZURE_STORAGE_CONNECTION_STRING");
    if (s->t.sas) {
        s->auth = AUTH_SAS;
        s->sas = dup_str(s->t.sas);
        return s->sas ? 0 : -ENOMEM;
    }
    if (env_sas && env_sas[0]) {
        s->auth = AUTH_SAS;
        s->sas = dup_str(env_sas[0] == '?' ? env_sas + 1 : env_sas);
        return s->sas ? 0 : -ENOMEM;
    }
    const char *key_b64 = NULL;
    if (env_key && env_key[0])
        key_b64 = env_key;
    if (!key_b64) {
        struct az_token *tok = NULL;
        struct ccr_err te;
        ccr_err_clear(&te);
        int rc = az_token_create(&tok, &te);
        if (rc == 0) {
            s->auth = AUTH_BEARER;
            s->token = tok;
            return 0;
        }
        if (rc != -ENOENT) {
            *err = te;
            ccr_err_where(err, s->base.url);
            return rc;
        }
    }
    if (!key_b64 && s->t.account_key)
        key_b64 = s->t.account_key;
    struct az_target ct = {0};
    if (!key_b64 && conn && conn[0]) {
        struct ccr_err ce;
        ccr_err_clear(&ce);
        if (az_conn_parse(conn, &ct, &ce) == 0 && ct.account && strcmp(ct.account, s->t.account) == 0) {
            if (ct.account_key)
                key_b64 = ct.account_key;
            else if (ct.sas) {
                s->auth = AUTH_SAS;
                s->sas = dup_str(ct.sas);
                az_target_fini(&ct);
                return s->sas ? 0 : -ENOMEM;
            }
        }
    }
    int rc = 0;
    if (key_b64) {
        int n = ccr_base64_decode(key_b64, strlen(key_b64), s->key, sizeof(s->key));
        if (n <= 0)
            rc = ccr_err_set(
                err, -EINVAL, s->base.url, -1,
                "the storage account key is not valid base64 (AZURE_STORAGE_KEY or the connection "
                "string's AccountKey)");
        else {
            s->key_len = (size_t)n;
            s->auth = AUTH_KEY;
        }
    } else {
        s->auth = AUTH_NONE;
    }
    az_target_fini(&ct);
    return rc;
}

int ccr_azure_open(const char *url, const struct ccr_store_opts *opts, struct ccr_store **out,
                   struct ccr_err *err)
{
    pthread_once(&curl_once, curl_global);
    struct az_store *s = ccr_calloc(1, sizeof(*s));
    if (!s)
        return ccr_err_set(err, -ENOMEM, url, -1, "out of memory");
    s->base.ops = &az_ops;
    s->base.impl = s;
    int rc = az_target_parse(url, getenv("AZURE_STORAGE_CONNECTION_STRING"), &s->t, err);
    if (rc < 0) {
        ccr_free(s);
        return rc;
    }
    s->base.url = az_target_display(&s->t);
    if (!s->base.url) {
        rc = ccr_err_set(err, -ENOMEM, url, -1, "out of memory");
        goto fail;
    }
    s->conf.tries = env_uint("CCR_AZ_TRIES", 8, 1, 100);
    s->conf.retry_base_ms = env_uint("CCR_AZ_RETRY_BASE_MS", 200, 1, 60000);
    s->conf.retry_max_ms = env_uint("CCR_AZ_RETRY_MAX_MS", 30000, 1, 600000);
    s->conf.connect_s = env_uint("CCR_AZ_CONNECT_TIMEOUT", 10, 1, 600);
    s->conf.stall_s = env_uint("CCR_AZ_STALL_TIMEOUT", 60, 1, 3600);
    s->conf.connections = opts && opts->connections ? opts->connections : DEFAULT_CONNS;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned lanes = cpus > 0 ? (unsigned)cpus : 1;
    if (lanes > 4)
        lanes = 4;
    s->n_lanes = env_uint("CCR_AZ_LANES", lanes, 1, 64);
    if (s->n_lanes > s->conf.connections)
        s->n_lanes = s->conf.connections;
    if (opts) {
        s->trace = opts->trace;
        s->trace_arg = opts->trace_arg;
        if (opts->ca_file && !(s->ca_file = dup_str(opts->ca_file))) {
            rc = ccr_err_set(err, -ENOMEM, url, -1, "out of memory");
            goto fail;
        }
        if (opts->cpk) {
            if (!s->t.https) {
                rc = ccr_err_set(err, -EINVAL, s->base.url, -1,
                                 "customer-provided keys (mode cpk) need an https:// URL: Azure refuses them "
                                 "over plain HTTP");
                goto fail;
            }
            rc = ccr_cpk_headers(opts->cpk, &s->cpk_h);
            if (rc < 0) {
                ccr_err_set(err, rc, s->base.url, -1, "cannot derive the CPK headers");
                goto fail;
            }
            s->cpk = true;
        }
    }
    if (!s->ca_file) {
        const char *ca = getenv("CCR_CA_FILE");
        if (ca && ca[0] && !(s->ca_file = dup_str(ca))) {
            rc = ccr_err_set(err, -ENOMEM, url, -1, "out of memory");
            goto fail;
        }
    }
    rc = pick_auth(s, err);
    if (rc < 0) {
        if (rc == -ENOMEM)
            ccr_err_set(err, rc, s->base.url, -1, "out of memory");
        goto fail;
    }
    gate_init(&s->gate, s->conf.connections,
              !(opts && opts->connections) && env_uint("CCR_AZ_ADAPT", 1, 0, 1) == 1);
    rc = lanes_start(s, err);
    if (rc < 0)
        goto fail;
    *out = &s->base;
    return 0;
fail:
    az_destroy(&s->base);
    return rc;
}
