/*
 * server.c - the governance daemon's HTTP(S) front end (ccr/gov_server.h) over libmicrohttpd.
 *
 * Transport only: every request is collected (the body up to 1 MiB) and handed, still signed, to
 * ccr_gov_handle, whose JSON answer is sent back. MHD runs a pool of threads, each with its own epoll
 * loop; a request is handled entirely on the thread that read it.
 *
 * The envelope signs the request line exactly as sent ("ccr.request" = "METHOD /path?query"), so the
 * path and query given to the handler are the raw ones from the request line (MHD's URI log callback
 * sees it before any unescaping), not MHD's decoded URL and parsed arguments.
 *
 * Plain HTTP exists for tests and a local daemon: it is refused unless the listening address is a
 * loopback one, so that no member's signed requests ever cross a network in the clear.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "ccr/gov_server.h"

#define BODY_MAX       (1024u * 1024) /* docs/governance.md: 413 TooLarge beyond */
#define PEM_FILE_MAX   (64 * 1024)
#define URI_MAX        4096
#define THREADS_DEF    8
#define THREADS_MAX    256
#define CONN_TIMEOUT   60 /* seconds of idle before MHD closes a connection */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct ccr_gov_server {
    struct MHD_Daemon *d;
    struct ccr_gov *g;
    unsigned port;
    char *key_pem; /* MHD borrows both PEMs while it runs */
    size_t key_len;
    char *cert_pem;
    ccr_gov_server_log_cb log;
    void *log_arg;
    /* MHD's messages while starting (why a bind failed), for the error detail */
    pthread_mutex_t msg_lock;
    char start_msg[256];
};

/* Per request: made by the URI log callback, freed by the completion callback. */
struct req_ctx {
    struct timespec start;
    char *uri; /* raw request target; split at '?' into path and query */
    const char *path, *query;
    uint8_t *body;
    size_t len, cap;
    bool started, too_large, uri_too_long;
    int status;
    char method[16];
};

static const char *const empty_query = "";

/* ----------------------------------------------------------------------------------------------------- */
/* helpers                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static int read_pem_file(const char *path, char **out, size_t *out_len, struct ccr_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ccr_err_set(err, -errno, path, -1, "cannot open: %s (run 'ccr-gov init' to create it)",
                           strerror(errno));
    char *buf = ccr_malloc(PEM_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, PEM_FILE_MAX + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err || n == 0 || n > PEM_FILE_MAX) {
        ccr_wipe(buf, n);
        ccr_free(buf);
        return ccr_err_set(err, rd_err ? -EIO : -EINVAL, path, -1, rd_err ? "cannot read" : "%s",
                           n ? "larger than 64 KiB: not a PEM key or certificate" : "empty");
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* Parses an IP literal into a socket address with port. */
static int parse_listen(const char *addr, unsigned port, struct sockaddr_storage *ss, bool *out_v6,
                        bool *out_loopback)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *out_v6 = false;
        *out_loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
        return 0;
    }
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *out_v6 = true;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        *out_loopback =
            IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) || (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127);
        return 0;
    }
    return -EINVAL;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void mhd_logger(void *cls, const char *fm, va_list ap)
{
    struct ccr_gov_server *s = cls;
    pthread_mutex_lock(&s->msg_lock);
    if (s->start_msg[0] == '\0') {
        vsnprintf(s->start_msg, sizeof(s->start_msg), fm, ap);
        size_t n = strlen(s->start_msg);
        while (n && (s->start_msg[n - 1] == '\n' || s->start_msg[n - 1] == '.'))
            s->start_msg[--n] = '\0';
    }
    pthread_mutex_unlock(&s->msg_lock);
}

/* ----------------------------------------------------------------------------------------------------- */
/* requests                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
    struct req_ctx *r = ccr_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    size_t n = strnlen(uri ? uri : "", URI_MAX + 1);
    if (n > URI_MAX) {
        n = URI_MAX; /* refused with 414 by the access handler */
        r->uri_too_long = true;
    }
    r->uri = ccr_malloc(n + 1);
    if (!r->uri) {
        ccr_free(r);
        return NULL;
    }
    memcpy(r->uri, uri ? uri : "", n);
    r->uri[n] = '\0';
    char *q = strchr(r->uri, '?');
    r->path = r->uri;
    r->query = NULL;
    if (q) {
        *q = '\0';
        r->query = q[1] ? q + 1 : empty_query;
    }
    return r;
}

static void free_ctx(struct req_ctx *r)
{
    if (!r)
        return;
    if (r->body) {
        ccr_wipe(r->body, r->len); /* a deposited secret travels in a body */
        ccr_free(r->body);
    }
    ccr_free(r->uri);
    ccr_free(r);
}

static void completed_cb(void *cls, struct MHD_Connection *con, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct ccr_gov_server *s = cls;
    struct req_ctx *r = *req_cls;
    if (!r)
        return;
    if (s->log) {
        struct ccr_gov_server_access a = {
            .method = r->method[0] ? r->method : "-",
            .path = r->path,
            .status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->status : 0,
            .duration_ms = ms_since(&r->start),
        };
        s->log(s->log_arg, &a);
    }
    free_ctx(r);
    *req_cls = NULL;
}

static enum MHD_Result send_json_text(struct MHD_Connection *con, struct req_ctx *r, int status, char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE); /* takes text */
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* An error answer in the shape of ccr_gov_handle's ({"error":{"code","message"}}). */
static enum MHD_Result send_error(struct MHD_Connection *con, struct req_ctx *r, int status, const char *code,
                                  const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        /* Out of memory: a fixed answer, copied by MHD. */
        static const char oom[] = "{\"error\":{\"code\":\"Internal\",\"message\":\"out of memory\"}}";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        r->status = 500;
        enum MHD_Result ret = MHD_queue_response(con, 500, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    return send_json_text(con, r, status, text);
}

static enum MHD_Result send_too_large(struct MHD_Connection *con, struct req_ctx *r)
{
    return send_error(con, r, 413, "TooLarge",
                      "the request body is over 1 MiB: split the document, or deposit a smaller secret");
}

static enum MHD_Result handle_request(struct ccr_gov_server *s, struct MHD_Connection *con, struct req_ctx *r,
                                      const char *method)
{
    struct ccr_gov_request req = {
        .method = method,
        .path = r->path,
        .query = r->query,
        .body = r->body,
        .body_len = r->len,
        .sign_header = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Ccr-Sign"),
    };
    struct ccr_gov_response resp = {0};
    int rc = ccr_gov_handle(s->g, &req, &resp);
    if (rc < 0 || !resp.body) {
        json_decref(resp.body);
        return send_error(con, r, 500, "Internal",
                          "the service could not answer this request: see the service's log, retry later");
    }
    char *text = json_dumps(resp.body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(resp.body);
    if (!text)
        return send_error(con, r, 500, "Internal", "out of memory encoding the answer");
    int status = resp.status >= 100 && resp.status <= 599 ? resp.status : 500;
    return send_json_text(con, r, status, text);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **req_cls)
{
    struct ccr_gov_server *s = cls;
    struct req_ctx *r = *req_cls;
    if (!r)
        return MHD_NO; /* the URI log callback ran out of memory: drop the connection */

    if (!r->started) {
        r->started = true;
        snprintf(r->method, sizeof(r->method), "%s", method);
        if (r->uri_too_long)
            return send_error(con, r, 414, "BadRequest", "the request target is too long");
        /* Refuse a body announced as too large before reading any of it (MHD then answers instead of
         * "100 Continue", and closes the connection). */
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno == 0 && end != cl && v > BODY_MAX)
                return send_too_large(con, r);
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > BODY_MAX) {
            r->too_large = true;
            return MHD_YES; /* keep reading and dropping; answer once the body is in */
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap *= 2;
            if (cap > BODY_MAX)
                cap = BODY_MAX;
            uint8_t *nb = ccr_malloc(cap);
            if (!nb)
                return MHD_NO;
            if (r->body) {
                memcpy(nb, r->body, r->len);
                ccr_wipe(r->body, r->len);
                ccr_free(r->body);
            }
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }

    if (r->too_large)
        return send_too_large(con, r);
    return handle_request(s, con, r, method);
}

/* ----------------------------------------------------------------------------------------------------- */
/* start / stop                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

int ccr_gov_server_start(struct ccr_gov *g, const struct ccr_gov_server_config *cfg,
                         struct ccr_gov_server **out, struct ccr_err *err)
{
    if (!g || !cfg || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no service or server configuration given");
    const char *addr = cfg->listen_addr ? cfg->listen_addr : "127.0.0.1";
    if (cfg->port > 65535)
        return ccr_err_set(err, -EINVAL, addr, -1, "port %u is out of range (0..65535)", cfg->port);
    unsigned threads = cfg->threads ? cfg->threads : THREADS_DEF;
    if (threads > THREADS_MAX)
        return ccr_err_set(err, -EINVAL, addr, -1, "%u threads is too many (at most %u)", threads,
                           THREADS_MAX);

    struct sockaddr_storage ss;
    bool v6 = false, loopback = false;
    if (parse_listen(addr, cfg->port, &ss, &v6, &loopback) != 0)
        return ccr_err_set(err, -EINVAL, addr, -1,
                           "not an IP address to listen on (e.g. 127.0.0.1, 0.0.0.0, ::1, ::)");
    if (cfg->plain_http && !loopback)
        return ccr_err_set(err, -EPERM, addr, -1,
                           "plain HTTP is only allowed on a loopback address (127.0.0.1 or ::1): signed "
                           "requests and released keys must not cross a network unencrypted; serve HTTPS");

    if (!MHD_is_feature_supported(MHD_FEATURE_EPOLL))
        return ccr_err_set(err, -ENOTSUP, NULL, -1, "this libmicrohttpd has no epoll support");
    if (!cfg->plain_http && !MHD_is_feature_supported(MHD_FEATURE_TLS))
        return ccr_err_set(err, -ENOTSUP, NULL, -1, "this libmicrohttpd has no TLS support");

    struct ccr_gov_server *s = ccr_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (pthread_mutex_init(&s->msg_lock, NULL) != 0) {
        ccr_free(s);
        return -ENOMEM;
    }
    s->g = g;
    s->log = cfg->log;
    s->log_arg = cfg->log_arg;
    int rc = 0;

    if (!cfg->plain_http) {
        char key_path[PATH_MAX], cert_path[PATH_MAX];
        const char *kp = cfg->key_path, *cp = cfg->cert_path;
        if ((!kp || !cp) && !cfg->data_dir) {
            rc = ccr_err_set(err, -EINVAL, NULL, -1,
                             "HTTPS needs the service certificate and key (or data_dir)");
            goto fail;
        }
        if (!kp) {
            snprintf(key_path, sizeof(key_path), "%s/service_privk.pem", cfg->data_dir);
            kp = key_path;
        }
        if (!cp) {
            snprintf(cert_path, sizeof(cert_path), "%s/service_cert.pem", cfg->data_dir);
            cp = cert_path;
        }
        size_t cert_len = 0;
        rc = read_pem_file(kp, &s->key_pem, &s->key_len, err);
        if (rc == 0)
            rc = read_pem_file(cp, &s->cert_pem, &cert_len, err);
        if (rc)
            goto fail;
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (!cfg->plain_http)
        flags |= MHD_USE_TLS;
    /* The logger first: MHD reports problems with the options that follow through it. */
    struct MHD_OptionItem opts[12];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log_cb, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, s};
    if (!cfg->plain_http) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, access_cb, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!s->d) {
        pthread_mutex_lock(&s->msg_lock);
        rc = ccr_err_set(err, -EADDRNOTAVAIL, addr, -1, "cannot serve %s on port %u: %s",
                         cfg->plain_http ? "HTTP" : "HTTPS", cfg->port,
                         s->start_msg[0] ? s->start_msg : "libmicrohttpd refused to start (port in use?)");
        pthread_mutex_unlock(&s->msg_lock);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di && di->port ? di->port : cfg->port;
    *out = s;
    return 0;
fail:
    ccr_gov_server_stop(s);
    return rc;
}

unsigned ccr_gov_server_port(const struct ccr_gov_server *s)
{
    return s ? s->port : 0;
}

void ccr_gov_server_stop(struct ccr_gov_server *s)
{
    if (!s)
        return;
    if (s->d) {
        /* Closes the listening socket and joins the threads; a thread inside ccr_gov_handle finishes
         * that request first. */
        MHD_stop_daemon(s->d);
    }
    if (s->key_pem) {
        ccr_wipe(s->key_pem, s->key_len);
        ccr_free(s->key_pem);
    }
    ccr_free(s->cert_pem);
    pthread_mutex_destroy(&s->msg_lock);
    ccr_free(s);
}
