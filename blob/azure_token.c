/*
 * azure_token.c - OAuth bearer tokens for Azure Storage (azure_int.h): a fixed token, a token file that a
 * sidecar rotates, or an IMDS-style managed-identity endpoint.
 *
 * Concurrency: one mutex guards the cached token. Readers copy it out under the mutex. A refresh from the
 * endpoint (up to 3 HTTP tries with a 10 s timeout each) runs with the mutex released, by one thread at a
 * time: while it runs, callers that still have an unexpired token take it and go, and only callers
 * without one wait for the refresher (a condition variable). Waiters woken by a failed refresh report
 * that failure instead of starting their own round of tries. The token file is small and local, so it
 * is re-read under the mutex.
 *
 * The token never reaches an error message: messages name the file or the endpoint, the HTTP status and
 * at most the endpoint's error_description.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "azure_int.h"

#define REFRESH_MARGIN_S 300        /* refresh this long before expiry */
#define TOKEN_FILE_MAX   (64 << 10) /* a JWT is a few KiB */
#define BODY_MAX         (1 << 20)  /* the endpoint's answer */
#define FETCH_TRIES      3
#define FETCH_TIMEOUT_MS 10000L
#define RESOURCE_PARAM   "resource=https%3A%2F%2Fstorage.azure.com%2F"

enum source { SRC_FIXED, SRC_FILE, SRC_ENDPOINT };

struct az_token {
    enum source src;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *token;    /* the cached token (ccr_malloc'd, wiped on free), or NULL */
    time_t expires; /* endpoint: expiry, epoch seconds */
    bool forced;    /* az_token_invalidate: the cached token is not to be used again */

    /* SRC_FILE */
    char *path;
    bool have_stat;
    struct stat st; /* what the cached token was read from */

    /* SRC_ENDPOINT */
    char *url;   /* the request URL: the endpoint with resource (and client_id) appended */
    char *where; /* the endpoint as configured, for error messages */
    bool refreshing;
    uint64_t generation;     /* completed refresh attempts */
    struct ccr_err last_err; /* of the last failed refresh */
};

static void token_free(char *s)
{
    if (s) {
        ccr_wipe(s, strlen(s));
        ccr_free(s);
    }
}

/*
 * A token goes into an "Authorization: Bearer" header: printable ASCII without spaces, so a file with
 * stray bytes cannot inject header lines.
 */
static bool token_chars_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

void az_token_destroy(struct az_token *t)
{
    if (!t)
        return;
    token_free(t->token);
    ccr_free(t->path);
    ccr_free(t->url);
    ccr_free(t->where);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    if (t->src == SRC_ENDPOINT)
        curl_global_cleanup();
    ccr_free(t);
}

static int create_endpoint(struct az_token *t, const char *ep, struct ccr_err *err)
{
    if (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0)
        return ccr_err_set(err, -EINVAL, "AZURE_STORAGE_IDENTITY_ENDPOINT", -1,
                           "the identity endpoint must be an http:// or https:// URL");
    if (!(t->where = ccr_blob_strdup(ep)))
        return -ENOMEM;
    const char *client = env_nonempty("AZURE_CLIENT_ID");
    char *client_enc = NULL;
    if (client) {
        size_t cap = 3 * strlen(client) + 1;
        if (!(client_enc = ccr_malloc(cap)))
            return -ENOMEM;
        if (az_encode_query(client, client_enc, cap) < 0) {
            ccr_free(client_enc);
            return -ENOMEM;
        }
    }
    size_t el = strlen(ep);
    const char *sep = !strchr(ep, '?') ? "?" : (ep[el - 1] == '?' || ep[el - 1] == '&') ? "" : "&";
    size_t cap = el + strlen(sep) + sizeof(RESOURCE_PARAM) + (client_enc ? strlen(client_enc) + 12 : 0);
    t->url = ccr_malloc(cap);
    if (t->url)
        snprintf(t->url, cap, "%s%s%s%s%s", ep, sep, RESOURCE_PARAM, client_enc ? "&client_id=" : "",
                 client_enc ? client_enc : "");
    ccr_free(client_enc);
    if (!t->url)
        return -ENOMEM;
    /* Reference-counted in libcurl; balanced in az_token_destroy. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ccr_free(t->url);
        t->url = NULL;
        return ccr_err_set(err, -ENOMEM, t->where, -1, "cannot initialize libcurl");
    }
    t->src = SRC_ENDPOINT;
    return 0;
}

int az_token_create(struct az_token **out, struct ccr_err *err)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    const char *fixed = env_nonempty("AZURE_STORAGE_TOKEN");
    const char *file = env_nonempty("AZURE_STORAGE_TOKEN_FILE");
    const char *ep = env_nonempty("AZURE_STORAGE_IDENTITY_ENDPOINT");
    if (!fixed && !file && !ep)
        return ccr_err_set(err, -ENOENT, NULL, -1,
                           "no bearer token source: none of AZURE_STORAGE_TOKEN, AZURE_STORAGE_TOKEN_FILE, "
                           "AZURE_STORAGE_IDENTITY_ENDPOINT is set");
    struct az_token *t = ccr_calloc(1, sizeof(*t));
    if (!t)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        ccr_free(t);
        return ccr_err_set(err, -ENOMEM, NULL, -1, "cannot create a mutex");
    }
    if (pthread_cond_init(&t->cv, NULL) != 0) {
        pthread_mutex_destroy(&t->mu);
        ccr_free(t);
        return ccr_err_set(err, -ENOMEM, NULL, -1, "cannot create a condition variable");
    }
    t->src = SRC_FIXED;
    ccr_err_clear(&t->last_err);
    int rc = 0;
    if (fixed) {
        size_t n = strlen(fixed);
        if (!token_chars_ok(fixed, n))
            rc = ccr_err_set(err, -EINVAL, "AZURE_STORAGE_TOKEN", -1,
                             "the token contains spaces or control characters (give the token alone, without "
                             "\"Bearer \")");
        else if (!(t->token = ccr_blob_strdup(fixed)))
            rc = -ENOMEM;
    } else if (file) {
        t->src = SRC_FILE;
        if (!(t->path = ccr_blob_strdup(file)))
            rc = -ENOMEM;
    } else {
        rc = create_endpoint(t, ep, err);
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            ccr_err_set(err, rc, NULL, -1, "out of memory");
        az_token_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Copies the cached token to out. Called with the mutex held. */
static int copy_out(const struct az_token *t, char *out, size_t cap, struct ccr_err *err)
{
    size_t n = strlen(t->token);
    if (n + 1 > cap)
        return ccr_err_set(err, -ENOSPC, NULL, -1, "the bearer token (%zu bytes) does not fit the buffer", n);
    memcpy(out, t->token, n + 1);
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* token file                                                                                             */
/* ----------------------------------------------------------------------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads the token file into a new token (whitespace trimmed). Called with the mutex held. */
static int file_read(struct az_token *t, char **out, struct stat *out_st, struct ccr_err *err)
{
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ccr_err_set(err, -EACCES, t->path, -1, "cannot open the token file: %s",
                           ccr_blob_strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ccr_err_set(err, -EACCES, t->path, -1, "cannot stat the token file: %s", ccr_blob_strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > TOKEN_FILE_MAX) {
        close(fd);
        if (!S_ISREG(st.st_mode))
            return ccr_err_set(err, -EACCES, t->path, -1, "the token file is not a regular file");
        return ccr_err_set(err, -EACCES, t->path, -1, "the token file is larger than %d bytes",
                           TOKEN_FILE_MAX);
    }
    char *buf = ccr_malloc(TOKEN_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return ccr_err_set(err, -ENOMEM, t->path, -1, "out of memory");
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, TOKEN_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            ccr_wipe(buf, len);
            ccr_free(buf);
            return ccr_err_set(err, -EACCES, t->path, -1, "cannot read the token file: %s",
                               ccr_blob_strerror(e));
        }
        if (n == 0 || len + (size_t)n > TOKEN_FILE_MAX) {
            len += (size_t)n;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    int rc = 0;
    const char *s = buf;
    size_t n = len;
    while (n && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (len > TOKEN_FILE_MAX)
        rc = ccr_err_set(err, -EACCES, t->path, -1, "the token file is larger than %d bytes", TOKEN_FILE_MAX);
    else if (n == 0)
        rc = ccr_err_set(err, -EACCES, t->path, -1, "the token file is empty");
    else if (!token_chars_ok(s, n))
        rc = ccr_err_set(err, -EACCES, t->path, -1,
                         "the token file holds spaces or control characters inside the token");
    char *tok = NULL;
    if (rc == 0) {
        tok = ccr_malloc(n + 1);
        if (!tok) {
            rc = ccr_err_set(err, -ENOMEM, t->path, -1, "out of memory");
        } else {
            memcpy(tok, s, n);
            tok[n] = '\0';
        }
    }
    ccr_wipe(buf, len < TOKEN_FILE_MAX + 1 ? len : TOKEN_FILE_MAX + 1);
    ccr_free(buf);
    if (rc < 0)
        return rc;
    *out = tok;
    *out_st = st;
    return 0;
}

static int get_file(struct az_token *t, char *out, size_t cap, struct ccr_err *err)
{
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    struct stat st;
    if (stat(t->path, &st) != 0) {
        /*
         * A sidecar replacing the file by rename leaves no gap, but one that deletes and recreates it
         * does: keep serving the token read last unless it was declared expired.
         */
        int e = errno;
        if (t->token && !t->forced)
            rc = copy_out(t, out, cap, err);
        else
            rc = ccr_err_set(err, -EACCES, t->path, -1, "cannot read the token file: %s",
                             ccr_blob_strerror(e));
        pthread_mutex_unlock(&t->mu);
        return rc;
    }
    if (!t->token || t->forced || !t->have_stat || !same_file(&st, &t->st)) {
        char *tok = NULL;
        struct stat got;
        rc = file_read(t, &tok, &got, err);
        if (rc == 0) {
            token_free(t->token);
            t->token = tok;
            t->st = got;
            t->have_stat = true;
            t->forced = false;
        }
    }
    if (rc == 0)
        rc = copy_out(t, out, cap, err);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* identity endpoint                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

struct body {
    char *p;
    size_t len, cap;
    bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > BODY_MAX) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = ccr_malloc(nc);
        if (!np)
            return 0;
        if (b->p) {
            memcpy(np, b->p, b->len);
            ccr_wipe(b->p, b->len);
            ccr_free(b->p);
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static void body_free(struct body *b)
{
    if (b->p) {
        ccr_wipe(b->p, b->len);
        ccr_free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

/* A JSON number or a string of decimal digits, as epoch or relative seconds. */
static bool json_seconds(json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (long long)json_real_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!s[0] || strlen(s) > 18)
            return false;
        long long x = 0;
        for (const char *c = s; *c; c++) {
            if (*c < '0' || *c > '9')
                return false;
            x = x * 10 + (*c - '0');
        }
        *out = x;
        return true;
    }
    return false;
}

/* Parses a 200 answer. The body holds the token: nothing of it goes into messages. */
static int parse_answer(const struct az_token *t, const struct body *b, char **out_tok, time_t *out_exp,
                        struct ccr_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(b->p ? b->p : "", b->len, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return ccr_err_set(err, -EACCES, t->where, -1, "the identity endpoint's answer is not a JSON object");
    }
    int rc = 0;
    json_t *at = json_object_get(root, "access_token");
    const char *tok = json_is_string(at) ? json_string_value(at) : NULL;
    long long secs = 0;
    time_t exp = 0;
    if (!tok || !token_chars_ok(tok, strlen(tok))) {
        rc = ccr_err_set(err, -EACCES, t->where, -1,
                         "the identity endpoint's answer has no usable access_token");
    } else if (json_seconds(json_object_get(root, "expires_on"), &secs) && secs > 0) {
        exp = (time_t)secs;
    } else if (json_seconds(json_object_get(root, "expires_in"), &secs) && secs >= 0) {
        exp = time(NULL) + (time_t)secs;
    } else {
        rc = ccr_err_set(err, -EACCES, t->where, -1,
                         "the identity endpoint's answer has neither expires_on nor expires_in in seconds");
    }
    char *copy = NULL;
    if (rc == 0 && !(copy = ccr_blob_strdup(tok)))
        rc = ccr_err_set(err, -ENOMEM, t->where, -1, "out of memory");
    json_decref(root); /* jansson does not wipe its copy of the token; it is freed here at least */
    if (rc < 0)
        return rc;
    *out_tok = copy;
    *out_exp = exp;
    return 0;
}

/* The error_description (or error) of an error answer, for the message; "" when there is none. */
static void answer_reason(const struct body *b, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *root = b->len ? json_loadb(b->p, b->len, 0, NULL) : NULL;
    if (!root)
        return;
    json_t *d = json_object_get(root, "error_description");
    if (!json_is_string(d))
        d = json_object_get(root, "error");
    if (json_is_string(d)) {
        size_t o = 0;
        for (const char *s = json_string_value(d); *s && o + 1 < cap && o < 200; s++)
            out[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
        out[o] = '\0';
    }
    json_decref(root);
}

/* IMDS's retry guidance: 404 (identity not yet assigned), 410, 429 and 5xx are transient. */
static bool status_transient(long status)
{
    return status == 404 || status == 410 || status == 429 || status >= 500;
}

/* Fetches a token from the endpoint, up to FETCH_TRIES times. Called without the mutex. */
static int fetch(const struct az_token *t, char **out_tok, time_t *out_exp, struct ccr_err *err)
{
    int rc = -EACCES;
    for (int attempt = 1; attempt <= FETCH_TRIES; attempt++) {
        if (attempt > 1)
            usleep(100000u << (2 * (attempt - 2))); /* 100 ms, then 400 ms */
        CURL *h = curl_easy_init();
        struct curl_slist *hdrs = curl_slist_append(NULL, "Metadata: true");
        if (!h || !hdrs) {
            curl_easy_cleanup(h);
            curl_slist_free_all(hdrs);
            return ccr_err_set(err, -ENOMEM, t->where, -1, "out of memory");
        }
        struct body b = {0};
        char curl_msg[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_URL, t->url);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        /* The identity endpoint is link-local or on the host: a configured HTTP proxy must not see it. */
        curl_easy_setopt(h, CURLOPT_PROXY, "");
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);

        bool retry = false;
        if (cc != CURLE_OK) {
            rc = ccr_err_set(err, -EACCES, t->where, -1,
                             "cannot get a token from the identity endpoint (try %d of %d): %s", attempt,
                             FETCH_TRIES,
                             b.too_big     ? "the answer is larger than 1 MiB"
                             : curl_msg[0] ? curl_msg
                                           : curl_easy_strerror(cc));
            retry = !b.too_big;
        } else if (status == 200) {
            rc = parse_answer(t, &b, out_tok, out_exp, err);
        } else {
            char reason[256];
            answer_reason(&b, reason, sizeof(reason));
            retry = status_transient(status);
            rc = ccr_err_set(
                err, -EACCES, t->where, -1, "the identity endpoint answered HTTP %ld (try %d of %d)%s%s%s",
                status, attempt, FETCH_TRIES, reason[0] ? ": " : "", reason,
                status == 400 || status == 404 ? "; check the managed identity and AZURE_CLIENT_ID" : "");
        }
        body_free(&b);
        if (!retry)
            break;
    }
    return rc;
}

static bool usable(const struct az_token *t, time_t now)
{
    return t->token && !t->forced && now < t->expires;
}

static int get_endpoint(struct az_token *t, char *out, size_t cap, struct ccr_err *err)
{
    pthread_mutex_lock(&t->mu);
    uint64_t gen_seen = t->generation;
    bool waited = false;
    for (;;) {
        time_t now = time(NULL);
        bool due = !t->token || t->forced || now >= t->expires - REFRESH_MARGIN_S;
        if (!due || (t->refreshing && usable(t, now))) {
            int rc = copy_out(t, out, cap, err);
            pthread_mutex_unlock(&t->mu);
            return rc;
        }
        if (waited && t->generation != gen_seen) {
            /*
             * The refresh this caller waited for has ended. Its token is the newest there is, even if
             * the endpoint gave it a short life; if it failed, report that rather than trying again.
             */
            int rc;
            if (t->token && (!t->last_err.code || usable(t, now))) {
                rc = copy_out(t, out, cap, err);
            } else {
                if (err)
                    *err = t->last_err;
                rc = -EACCES;
            }
            pthread_mutex_unlock(&t->mu);
            return rc;
        }
        if (!t->refreshing)
            break;
        pthread_cond_wait(&t->cv, &t->mu);
        waited = true;
    }
    t->refreshing = true;
    pthread_mutex_unlock(&t->mu);

    char *tok = NULL;
    time_t exp = 0;
    struct ccr_err ferr;
    ccr_err_clear(&ferr);
    int rc = fetch(t, &tok, &exp, &ferr);

    pthread_mutex_lock(&t->mu);
    t->refreshing = false;
    t->generation++;
    if (rc == 0) {
        token_free(t->token);
        t->token = tok;
        t->expires = exp;
        t->forced = false;
        ccr_err_clear(&t->last_err);
        /* Returned even if the endpoint says it expires within the margin: it is the newest there is. */
        rc = copy_out(t, out, cap, err);
    } else {
        t->last_err = ferr;
        if (usable(t, time(NULL)))
            rc = copy_out(t, out, cap, err); /* the old token is still good: try again next time */
        else if (err)
            *err = ferr;
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return rc == -ENOMEM || rc == -ENOSPC || rc == 0 ? rc : -EACCES;
}

int az_token_get(struct az_token *t, char *out, size_t cap, struct ccr_err *err)
{
    if (!t || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no token source");
    switch (t->src) {
    case SRC_FIXED: {
        pthread_mutex_lock(&t->mu);
        int rc = copy_out(t, out, cap, err);
        pthread_mutex_unlock(&t->mu);
        return rc;
    }
    case SRC_FILE:
        return get_file(t, out, cap, err);
    case SRC_ENDPOINT:
        return get_endpoint(t, out, cap, err);
    }
    return -EINVAL;
}

void az_token_invalidate(struct az_token *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    /* A fixed token cannot be replaced: keep using it (the service will go on saying why it fails). */
    if (t->src != SRC_FIXED)
        t->forced = true;
    pthread_mutex_unlock(&t->mu);
}
