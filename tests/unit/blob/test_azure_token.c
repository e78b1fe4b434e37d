/*
 * test_azure_token.c - bearer tokens (azure_token.c): a fixed token, a token file re-read when it
 * changes, and an IMDS-style endpoint served by a small HTTP server thread in the test process.
 *
 * Criterion runs every test in its own process, so the environment variables a test sets do not reach
 * the others; each test still starts by clearing them, in case the runner's environment has them.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "azure_int.h"

static void clear_env(void)
{
    unsetenv("AZURE_STORAGE_TOKEN");
    unsetenv("AZURE_STORAGE_TOKEN_FILE");
    unsetenv("AZURE_STORAGE_IDENTITY_ENDPOINT");
    unsetenv("AZURE_CLIENT_ID");
}

static struct az_token *create_ok(void)
{
    struct az_token *t = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = az_token_create(&t, &e);
    cr_assert_eq(rc, 0, "create: %d %s", rc, e.msg);
    cr_assert_not_null(t);
    return t;
}

static int get(struct az_token *t, char *out, size_t cap, struct ccr_err *e)
{
    ccr_err_clear(e);
    return az_token_get(t, out, cap, e);
}

/* ===================================================================================================== */
/* fixed token and none                                                                                  */
/* ===================================================================================================== */

Test(blob_azure_token, no_source_is_enoent)
{
    clear_env();
    setenv("AZURE_STORAGE_TOKEN", "", 1); /* empty counts as unset */
    struct az_token *t = (struct az_token *)0x1;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_expect_eq(az_token_create(&t, &e), -ENOENT);
    cr_expect_null(t);
    cr_expect_eq(e.code, -ENOENT);
    cr_expect_not_null(strstr(e.msg, "AZURE_STORAGE_TOKEN"), "%s", e.msg);
    az_token_destroy(NULL);
}

Test(blob_azure_token, fixed_token)
{
    clear_env();
    setenv("AZURE_STORAGE_TOKEN", "eyJ0eXAi.fixed.sig", 1);
    setenv("AZURE_STORAGE_TOKEN_FILE", "/nonexistent/ignored", 1); /* the first source wins */
    struct az_token *t = create_ok();
    char out[64];
    struct ccr_err e;
    cr_expect_eq(get(t, out, sizeof(out), &e), 0);
    cr_expect_str_eq(out, "eyJ0eXAi.fixed.sig");
    az_token_invalidate(t); /* nothing to refresh: still served */
    cr_expect_eq(get(t, out, sizeof(out), &e), 0);
    cr_expect_str_eq(out, "eyJ0eXAi.fixed.sig");
    cr_expect_eq(get(t, out, 19, &e), 0, "exact fit");
    cr_expect_eq(get(t, out, 18, &e), -ENOSPC);
    cr_expect_null(strstr(e.msg, "fixed"), "%s", e.msg);
    az_token_destroy(t);

    setenv("AZURE_STORAGE_TOKEN", "two words", 1);
    t = NULL;
    ccr_err_clear(&e);
    cr_expect_eq(az_token_create(&t, &e), -EINVAL);
    cr_expect_null(t);
    cr_expect_null(strstr(e.msg, "words"), "%s", e.msg);
}

/* ===================================================================================================== */
/* token file                                                                                            */
/* ===================================================================================================== */

static void write_file(const char *path, const char *s, time_t mtime)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    cr_assert_eq(fclose(f), 0);
    struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

Test(blob_azure_token, token_file_reread_when_it_changes)
{
    clear_env();
    char dir[] = "/tmp/ccr-token-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, "  tokenAAA\n", 1700000000);
    setenv("AZURE_STORAGE_TOKEN_FILE", path, 1);
    struct az_token *t = create_ok();
    char out[64];
    struct ccr_err e;
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenAAA", "whitespace trimmed");

    /* a new size */
    write_file(path, "tokenBBBB\n", 1700000000);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenBBBB");

    /* the same size, a new mtime */
    write_file(path, "tokenCCCC\n", 1700000100);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenCCCC");

    /* same size and mtime: the file is not re-read ... */
    write_file(path, "tokenDDDD\n", 1700000100);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenCCCC");
    /* ... unless the token was declared expired */
    az_token_invalidate(t);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenDDDD");

    /* removed: the last token read is still served; invalidated too: a clear failure */
    unlink(path);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tokenDDDD");
    az_token_invalidate(t);
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "token file"), "%s", e.msg);
    cr_expect_str_eq(e.where, path);

    /* empty, or with a space inside: refused, without echoing the content */
    write_file(path, " \n", 1700000200);
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "empty"), "%s", e.msg);
    write_file(path, "tokenE SECRETPART\n", 1700000300);
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_null(strstr(e.msg, "SECRETPART"), "%s", e.msg);
    cr_expect_null(strstr(e.msg, "tokenE"), "%s", e.msg);

    az_token_destroy(t);
    unlink(path);
    rmdir(dir);
}

Test(blob_azure_token, token_file_missing_at_first_get)
{
    clear_env();
    setenv("AZURE_STORAGE_TOKEN_FILE", "/nonexistent/ccr/token", 1);
    struct az_token *t = create_ok(); /* a sidecar may write it later: not an error yet */
    char out[64];
    struct ccr_err e;
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_str_eq(e.where, "/nonexistent/ccr/token");
    cr_expect_not_null(strstr(e.msg, "No such file"), "%s", e.msg);
    az_token_destroy(t);
}

/* ===================================================================================================== */
/* identity endpoint                                                                                     */
/* ===================================================================================================== */

#define MAX_REQ 16

/* A one-connection-at-a-time HTTP server answering what the test configured. */
struct server {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
    pthread_mutex_t mu;
    char heads[MAX_REQ][2048]; /* request line and headers of each request */

    /* the answer to request i (0-based); the last entry repeats */
    int status[MAX_REQ];
    long long expires_rel[MAX_REQ]; /* expires_on = now + this */
    const char *raw_body;           /* instead of the generated JSON, when set */
    int expiry_style;               /* 0: expires_on string, 1: expires_on number, 2: expires_in only */
    int delay_ms;
    int n_config;
};

static void serve_one(struct server *s, int c)
{
    char buf[2048];
    size_t len = 0;
    while (len + 1 < sizeof(buf)) {
        ssize_t n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    int i = atomic_load(&s->requests);
    pthread_mutex_lock(&s->mu);
    if (i < MAX_REQ)
        snprintf(s->heads[i], sizeof(s->heads[i]), "%s", buf);
    pthread_mutex_unlock(&s->mu);
    int k = i < s->n_config ? i : s->n_config - 1;
    if (s->delay_ms)
        usleep((useconds_t)s->delay_ms * 1000);
    char body[1024];
    long long exp = (long long)time(NULL) + s->expires_rel[k];
    if (s->raw_body)
        snprintf(body, sizeof(body), "%s", s->raw_body);
    else if (s->expiry_style == 0)
        snprintf(body, sizeof(body),
                 "{\"access_token\":\"tok%d.SECRET\",\"client_id\":\"x\",\"expires_in\":\"86399\","
                 "\"expires_on\":\"%lld\",\"ext_expires_in\":\"86399\",\"not_before\":\"%lld\","
                 "\"resource\":\"https://storage.azure.com/\",\"token_type\":\"Bearer\"}",
                 i + 1, exp, exp - 3600);
    else if (s->expiry_style == 1)
        snprintf(body, sizeof(body), "{\"access_token\":\"tok%d.SECRET\",\"expires_on\":%lld}", i + 1, exp);
    else
        snprintf(body, sizeof(body), "{\"access_token\":\"tok%d.SECRET\",\"expires_in\":%lld}", i + 1,
                 s->expires_rel[k]);
    char resp[2048];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     s->status[k], strlen(body), body);
    atomic_fetch_add(&s->requests, 1);
    ssize_t w = send(c, resp, (size_t)n, MSG_NOSIGNAL);
    (void)w;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static struct server *server_start(int status, long long expires_rel)
{
    struct server *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->status[0] = status;
    s->expires_rel[0] = expires_rel;
    s->n_config = 1;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(s->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(s->fd, 16), 0);
    socklen_t al = sizeof(a);
    cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void set_endpoint(const struct server *s, const char *path_query)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path_query);
    setenv("AZURE_STORAGE_IDENTITY_ENDPOINT", url, 1);
}

/* The request head of request i, lowercased for header checks. */
static void head_lower(struct server *s, int i, char *out, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, cap, "%s", s->heads[i]);
    pthread_mutex_unlock(&s->mu);
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
}

Test(blob_azure_token, endpoint_request_and_answer, .timeout = 30)
{
    clear_env();
    struct server *s = server_start(200, 3600);
    set_endpoint(s, "/metadata/identity/oauth2/token?api-version=2018-02-01");
    setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555", 1);
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok1.SECRET");
    cr_assert_eq(atomic_load(&s->requests), 1);
    pthread_mutex_lock(&s->mu);
    const char *want = "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2F"
                       "storage.azure.com%2F&client_id=11111111-2222-3333-4444-555555555555 HTTP/1.1\r\n";
    cr_expect_eq(strncmp(s->heads[0], want, strlen(want)), 0, "request: %s", s->heads[0]);
    pthread_mutex_unlock(&s->mu);
    char head[2048];
    head_lower(s, 0, head, sizeof(head));
    cr_expect_not_null(strstr(head, "\r\nmetadata: true\r\n"), "headers: %s", head);

    /* valid for an hour: served from the cache */
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok1.SECRET");
    cr_expect_eq(atomic_load(&s->requests), 1);

    /* invalidate: the next get asks again */
    az_token_invalidate(t);
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok2.SECRET");
    cr_expect_eq(atomic_load(&s->requests), 2);
    az_token_destroy(t);
    server_stop(s);
}

Test(blob_azure_token, endpoint_without_query_gets_question_mark, .timeout = 30)
{
    clear_env();
    struct server *s = server_start(200, 3600);
    s->expiry_style = 1; /* expires_on as a JSON number */
    set_endpoint(s, "/msi/token");
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok1.SECRET");
    pthread_mutex_lock(&s->mu);
    const char *want = "GET /msi/token?resource=https%3A%2F%2Fstorage.azure.com%2F HTTP/1.1\r\n";
    cr_expect_eq(strncmp(s->heads[0], want, strlen(want)), 0, "request: %s", s->heads[0]);
    pthread_mutex_unlock(&s->mu);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0);
    cr_expect_eq(atomic_load(&s->requests), 1);
    az_token_destroy(t);
    server_stop(s);
}

/* Two gets against an endpoint whose tokens expire at now + rel: how many requests were made. */
static int requests_for_two_gets(long long rel, int style, char *second, size_t cap)
{
    struct server *s = server_start(200, rel);
    s->expiry_style = style;
    set_endpoint(s, "/token?api-version=2018-02-01");
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_assert_str_eq(out, "tok1.SECRET");
    cr_assert_eq(get(t, second, cap, &e), 0, "%s", e.msg);
    int n = atomic_load(&s->requests);
    az_token_destroy(t);
    server_stop(s);
    return n;
}

Test(blob_azure_token, endpoint_refresh_before_expiry, .timeout = 30)
{
    clear_env();
    char out[256];
    /* 6 minutes left: outside the 5-minute margin, no refresh */
    cr_expect_eq(requests_for_two_gets(6 * 60, 0, out, sizeof(out)), 1);
    cr_expect_str_eq(out, "tok1.SECRET");
    /* 4 minutes left: inside the margin, the second get refetches */
    cr_expect_eq(requests_for_two_gets(4 * 60, 0, out, sizeof(out)), 2);
    cr_expect_str_eq(out, "tok2.SECRET");
    /* already expired (the answer is still used once: it is the newest there is) */
    cr_expect_eq(requests_for_two_gets(-60, 1, out, sizeof(out)), 2);
    cr_expect_str_eq(out, "tok2.SECRET");
    /* expires_in instead of expires_on */
    cr_expect_eq(requests_for_two_gets(3600, 2, out, sizeof(out)), 1);
    cr_expect_eq(requests_for_two_gets(120, 2, out, sizeof(out)), 2);
}

Test(blob_azure_token, endpoint_500_is_eacces_after_three_tries, .timeout = 30)
{
    clear_env();
    struct server *s = server_start(500, 0);
    s->raw_body = "{\"error\":\"unknown_error\",\"error_description\":\"IMDS is having a bad day\"}";
    set_endpoint(s, "/token?api-version=2018-02-01");
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_eq(e.code, -EACCES);
    cr_expect_not_null(strstr(e.msg, "HTTP 500"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "IMDS is having a bad day"), "%s", e.msg);
    cr_expect_not_null(strstr(e.where, "/token?api-version=2018-02-01"), "%s", e.where);
    cr_expect_eq(atomic_load(&s->requests), 3);
    az_token_destroy(t);
    server_stop(s);

    /* a 400 is not retried */
    s = server_start(400, 0);
    s->raw_body = "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}";
    set_endpoint(s, "/token");
    t = create_ok();
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "HTTP 400"), "%s", e.msg);
    cr_expect_not_null(strstr(e.msg, "Identity not found"), "%s", e.msg);
    cr_expect_eq(atomic_load(&s->requests), 1);
    az_token_destroy(t);
    server_stop(s);

    /* nothing listening */
    setenv("AZURE_STORAGE_IDENTITY_ENDPOINT", "http://127.0.0.1:1/token", 1);
    t = create_ok();
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "cannot get a token"), "%s", e.msg);
    az_token_destroy(t);
}

Test(blob_azure_token, token_never_in_error_messages, .timeout = 30)
{
    clear_env();
    /* an answer with a token but no expiry */
    struct server *s = server_start(200, 0);
    s->raw_body = "{\"access_token\":\"tok.SECRET\",\"expires_on\":\"soon\"}";
    set_endpoint(s, "/token");
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "expires"), "%s", e.msg);
    cr_expect_null(strstr(e.msg, "SECRET"), "%s", e.msg);
    az_token_destroy(t);
    server_stop(s);

    /* broken JSON holding a token */
    s = server_start(200, 0);
    s->raw_body = "{\"access_token\":\"tok.SECRET\",";
    set_endpoint(s, "/token");
    t = create_ok();
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_null(strstr(e.msg, "SECRET"), "%s", e.msg);
    az_token_destroy(t);
    server_stop(s);

    /* a token that expired, then the endpoint fails: the error says why, not what the token was */
    s = server_start(200, -10);
    s->status[1] = 503;
    s->expires_rel[1] = 0;
    s->n_config = 2;
    set_endpoint(s, "/token");
    t = create_ok();
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok1.SECRET");
    cr_expect_eq(get(t, out, sizeof(out), &e), -EACCES);
    cr_expect_not_null(strstr(e.msg, "HTTP 503"), "%s", e.msg);
    cr_expect_null(strstr(e.msg, "SECRET"), "%s", e.msg);
    cr_expect_null(strstr(e.msg, "tok1"), "%s", e.msg);
    cr_expect_null(strstr(e.where, "SECRET"), "%s", e.where);
    cr_expect_eq(atomic_load(&s->requests), 4);
    az_token_destroy(t);
    server_stop(s);
}

Test(blob_azure_token, endpoint_failure_keeps_a_still_valid_token, .timeout = 30)
{
    clear_env();
    /* 4 minutes left (refresh due), then the endpoint fails: the old token is still good */
    struct server *s = server_start(200, 4 * 60);
    s->status[1] = 500;
    s->n_config = 2;
    set_endpoint(s, "/token");
    struct az_token *t = create_ok();
    char out[256];
    struct ccr_err e;
    cr_assert_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_eq(get(t, out, sizeof(out), &e), 0, "%s", e.msg);
    cr_expect_str_eq(out, "tok1.SECRET");
    cr_expect_eq(atomic_load(&s->requests), 4);
    az_token_destroy(t);
    server_stop(s);
}

struct racer {
    struct az_token *t;
    int rc;
    char out[256];
    double secs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct ccr_err e;
    ccr_err_clear(&e);
    double t0 = now_s();
    r->rc = az_token_get(r->t, r->out, sizeof(r->out), &e);
    r->secs = now_s() - t0;
    return NULL;
}

Test(blob_azure_token, concurrent_gets_share_one_refresh, .timeout = 30)
{
    clear_env();
    /* first answer: due for refresh at once; second: good for an hour; each answer takes 1 s */
    struct server *s = server_start(200, 4 * 60);
    s->status[1] = 200;
    s->expires_rel[1] = 3600;
    s->n_config = 2;
    s->delay_ms = 1000;
    set_endpoint(s, "/token");
    struct az_token *t = create_ok();

    /* Eight callers without a token: one fetch, the others wait for it. */
    enum { N = 8 };
    struct racer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){.t = t};
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(r[i].rc, 0);
        cr_expect_str_eq(r[i].out, "tok1.SECRET");
    }
    cr_expect_eq(atomic_load(&s->requests), 1);

    /* Refresh due, old token valid: one caller refreshes, the others are not held up. */
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){.t = t};
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
    }
    int fast = 0, refreshed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(r[i].rc, 0);
        if (strcmp(r[i].out, "tok2.SECRET") == 0)
            refreshed++;
        else
            cr_expect_str_eq(r[i].out, "tok1.SECRET");
        if (r[i].secs < 0.5)
            fast++;
    }
    cr_expect_eq(atomic_load(&s->requests), 2);
    cr_expect_geq(refreshed, 1);
    cr_expect_geq(fast, N - 1, "callers with a valid token waited for the refresh");
    az_token_destroy(t);
    server_stop(s);
}
