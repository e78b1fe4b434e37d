/*
 * azure_req.c - the pure pieces of the Azure Blob protocol (azure_int.h): store URLs and connection
 * strings, percent-encoding, block ids and the Put Block List body, HTTP dates, SharedKey signing, and
 * the List Blobs and error XML. Nothing here touches the network, so all of it is unit-tested and fuzzed.
 *
 * Decisions the contract leaves open, made here:
 * - Path style (the account is the first path segment) is used for IP addresses, "localhost" and
 *   single-label host names (a container host such as "azurite"); every other host is host style, the
 *   account being its first label.
 * - A store URL's prefix is percent-decoded (it is a blob-name prefix) and checked like blob names:
 *   no empty, "." or ".." components, no control characters.
 * - For an http(s) store URL the connection string is not read (the caller decides whether one for the
 *   same account lends its key), except that a path-style URL for the emulator's account without a SAS
 *   gets the emulator's published key in account_key.
 * - ETags from listings are returned in the quoted form of the HTTP ETag header (Azure's listings give
 *   them bare for blobs, quoted for containers), so a listed ETag compares equal to a HEAD's and can be
 *   sent as If-Match as is.
 */
#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "azure_int.h"
#include "ccr/crypto.h"

/* ===================================================================================================== */
/* small string helpers                                                                                  */
/* ===================================================================================================== */

static char *dupn(const char *s, size_t n)
{
    char *d = ccr_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Trims whitespace from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && is_space((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

/*
 * Percent-decodes n bytes of s into a ccr_malloc'd string. NULL with *rc -EINVAL on a bad escape or an
 * encoded NUL (it would cut the string), -ENOMEM on OOM.
 */
static char *pct_decode(const char *s, size_t n, int *rc)
{
    char *d = ccr_malloc(n + 1);
    if (!d) {
        *rc = -ENOMEM;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            ccr_free(d);
            *rc = -EINVAL;
            return NULL;
        }
        d[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    d[o] = '\0';
    return d;
}

/* A growable byte string for the string-to-sign and the block list body. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = ccr_realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* ===================================================================================================== */
/* URLs and connection strings                                                                           */
/* ===================================================================================================== */

/* The pieces of scheme://host[:port][/path][?query], pointing into the URL. */
struct url_parts {
    bool https;
    const char *host;
    size_t host_len;
    const char *port; /* digits, or NULL */
    size_t port_len;
    const char *path; /* "" or starting with '/' */
    size_t path_len;
    const char *query; /* after '?', or NULL when there is no '?' */
    size_t query_len;
};

/*
 * Splits an http(s) URL. where: what err names (never a string holding a SAS). Host names are checked
 * to hold only letters, digits, '-' and '.', or to be a bracketed IPv6 literal.
 */
static int url_split(const char *url, struct url_parts *u, const char *where, const char *what,
                     struct ccr_err *err)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->https = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return ccr_err_set(err, -EINVAL, where, -1, "%s must start with https:// or http://", what);
    }
    size_t alen = strcspn(p, "/?#");
    const char *auth = p;
    if (memchr(auth, '@', alen))
        return ccr_err_set(err, -EINVAL, where, -1, "%s must not contain user information ('@')", what);
    if (alen == 0)
        return ccr_err_set(err, -EINVAL, where, -1, "%s has no host name", what);
    const char *hend;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb || rb == auth + 1)
            return ccr_err_set(err, -EINVAL, where, -1, "%s has a malformed IPv6 address", what);
        for (const char *c = auth + 1; c < rb; c++)
            if (hexval(*c) < 0 && *c != ':' && *c != '.')
                return ccr_err_set(err, -EINVAL, where, -1, "%s has a malformed IPv6 address", what);
        hend = rb + 1;
    } else {
        hend = auth;
        while (hend < auth + alen && *hend != ':')
            hend++;
        if (hend == auth)
            return ccr_err_set(err, -EINVAL, where, -1, "%s has no host name", what);
        for (const char *c = auth; c < hend; c++) {
            char l = lower(*c);
            if (!is_alnum_lower(l) && l != '-' && l != '.')
                return ccr_err_set(err, -EINVAL, where, -1, "%s has an invalid character in its host name",
                                   what);
        }
    }
    u->host = auth;
    u->host_len = (size_t)(hend - auth);
    if (hend < auth + alen) {
        if (*hend != ':')
            return ccr_err_set(err, -EINVAL, where, -1, "%s has junk after its host name", what);
        u->port = hend + 1;
        u->port_len = (size_t)(auth + alen - u->port);
        unsigned long port = 0;
        for (size_t i = 0; i < u->port_len; i++) {
            if (!is_digit(u->port[i]) || i >= 5)
                return ccr_err_set(err, -EINVAL, where, -1, "%s has an invalid port", what);
            port = port * 10 + (unsigned long)(u->port[i] - '0');
        }
        if (u->port_len == 0 || port == 0 || port > 65535)
            return ccr_err_set(err, -EINVAL, where, -1, "%s has an invalid port", what);
    }
    p = auth + alen;
    u->path = p;
    u->path_len = strcspn(p, "?#");
    p += u->path_len;
    if (*p == '?') {
        u->query = p + 1;
        u->query_len = strcspn(u->query, "#");
        p = u->query + u->query_len;
    }
    if (*p == '#')
        return ccr_err_set(err, -EINVAL, where, -1, "%s must not have a fragment ('#')", what);
    return 0;
}

static bool host_is_ipv4(const char *h, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (i < n) {
        unsigned v = 0;
        size_t start = i;
        while (i < n && is_digit(h[i]) && i - start < 4)
            v = v * 10 + (unsigned)(h[i++] - '0');
        if (i == start || v > 255 || i - start > 3)
            return false;
        parts++;
        if (i == n)
            break;
        if (h[i] != '.')
            return false;
        i++;
        if (i == n)
            return false;
    }
    return parts == 4;
}

/*
 * Path style: the account is the first path segment. The emulator and anything addressed by IP or by
 * a single-label name (docker-compose service names, /etc/hosts aliases) cannot carry the account in
 * the host name, so they use it; real Azure hosts and custom domains use host style.
 */
static bool host_path_style(const char *h, size_t n)
{
    if (n && h[0] == '[')
        return true;
    if (host_is_ipv4(h, n))
        return true;
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
        return true;
    return memchr(h, '.', n) == NULL;
}

/* Azure's account names: 3-24 lowercase letters and digits. */
static int account_check(const char *a, size_t n, const char *where, struct ccr_err *err)
{
    bool ok = n >= 3 && n <= 24;
    for (size_t i = 0; ok && i < n; i++)
        ok = is_alnum_lower(a[i]);
    if (!ok)
        return ccr_err_set(err, -EINVAL, where, -1,
                           "storage account name '%.*s' is invalid: it must be 3-24 lowercase letters and "
                           "digits",
                           (int)(n > 64 ? 64 : n), a);
    return 0;
}

/* Azure's container names: 3-63 of [a-z0-9-], starting and ending with a letter or digit, no "--". */
static int container_check(const char *c, size_t n, const char *where, struct ccr_err *err)
{
    if (n == 5 && memcmp(c, "$root", 5) == 0)
        return 0;
    const char *why = NULL;
    if (n < 3 || n > 63)
        why = "it must be 3-63 characters long";
    for (size_t i = 0; !why && i < n; i++) {
        if (c[i] == '-') {
            if (i == 0 || i == n - 1)
                why = "it must start and end with a letter or digit";
            else if (c[i - 1] == '-')
                why = "it must not contain consecutive hyphens";
        } else if (!is_alnum_lower(c[i])) {
            why = "only lowercase letters, digits and '-' are allowed";
        }
    }
    if (why)
        return ccr_err_set(err, -EINVAL, where, -1, "container name '%.*s' is invalid: %s",
                           (int)(n > 80 ? 80 : n), c, why);
    return 0;
}

/*
 * The prefix part of a store URL ("a/b" or "a/b/", percent-encoded) into *out: decoded, checked like a
 * blob name's components, and ending in '/' ("" when empty).
 */
static int prefix_parse(const char *s, size_t n, const char *where, char **out, struct ccr_err *err)
{
    int rc = 0;
    char *d = pct_decode(s, n, &rc);
    if (!d)
        return rc == -ENOMEM ? rc : ccr_err_set(err, rc, where, -1, "the prefix has a malformed %%-escape");
    size_t len = strlen(d);
    if (len && d[len - 1] == '/')
        d[--len] = '\0';
    const char *why = NULL;
    if (len + 1 > CCR_BLOB_NAME_MAX)
        why = "it is too long";
    for (size_t i = 0; !why && i < len; i++)
        if ((unsigned char)d[i] < 0x20 || d[i] == 0x7f)
            why = "it contains a control character";
    const char *p = d;
    while (!why && len) {
        const char *e = strchr(p, '/');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == 0)
            why = "it has an empty component ('//')";
        else if ((k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
            why = "it has a '.' or '..' component";
        if (!e)
            break;
        p = e + 1;
    }
    if (why) {
        ccr_free(d);
        return ccr_err_set(err, -EINVAL, where, -1, "invalid prefix in the store URL: %s", why);
    }
    if (len == 0) {
        *out = d;
        return 0;
    }
    char *r = ccr_malloc(len + 2);
    if (!r) {
        ccr_free(d);
        return -ENOMEM;
    }
    memcpy(r, d, len);
    r[len] = '/';
    r[len + 1] = '\0';
    ccr_free(d);
    *out = r;
    return 0;
}

/* scheme://host[:port] (lowercased), plus "/account" in path style. */
static char *endpoint_build(const struct url_parts *u, bool path_style, const char *account)
{
    struct sbuf b = {0};
    sb_str(&b, u->https ? "https://" : "http://");
    for (size_t i = 0; i < u->host_len; i++) {
        char c = lower(u->host[i]);
        sb_add(&b, &c, 1);
    }
    if (u->port) {
        sb_add(&b, ":", 1);
        sb_add(&b, u->port, u->port_len);
    }
    if (path_style) {
        sb_add(&b, "/", 1);
        sb_str(&b, account);
    }
    if (b.oom) {
        ccr_free(b.p);
        return NULL;
    }
    return b.p;
}

void az_target_fini(struct az_target *t)
{
    if (!t)
        return;
    ccr_free(t->endpoint);
    ccr_free(t->account);
    ccr_free(t->container);
    ccr_free(t->prefix);
    if (t->sas) {
        ccr_wipe(t->sas, strlen(t->sas));
        ccr_free(t->sas);
    }
    if (t->account_key) {
        ccr_wipe(t->account_key, strlen(t->account_key));
        ccr_free(t->account_key);
    }
    memset(t, 0, sizeof(*t));
}

/* The connection-string keys this code knows; the others (QueueEndpoint, ...) are ignored. */
enum conn_key {
    CK_PROTOCOL,
    CK_NAME,
    CK_KEY,
    CK_SUFFIX,
    CK_BLOB_ENDPOINT,
    CK_SAS,
    CK_DEV,
    CK_DEV_PROXY,
    CK_COUNT
};

static const char *const conn_key_names[CK_COUNT] = {
    "DefaultEndpointsProtocol",
    "AccountName",
    "AccountKey",
    "EndpointSuffix",
    "BlobEndpoint",
    "SharedAccessSignature",
    "UseDevelopmentStorage",
    "DevelopmentStorageProxyUri",
};

#define CONN_WHERE "connection string"

static int conn_dev(struct az_target *t)
{
    t->endpoint = ccr_blob_strdup(AZ_DEV_ENDPOINT);
    t->account = ccr_blob_strdup(AZ_DEV_ACCOUNT);
    t->account_key = ccr_blob_strdup(AZ_DEV_KEY);
    t->https = false;
    t->path_style = true;
    return t->endpoint && t->account && t->account_key ? 0 : -ENOMEM;
}

/* Fills t from the connection string's values (indexed by enum conn_key; NULL when absent). */
static int conn_fill(const char *const v[CK_COUNT], const size_t vl[CK_COUNT], struct az_target *t,
                     struct ccr_err *err)
{
    if (v[CK_DEV_PROXY])
        return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "DevelopmentStorageProxyUri is not supported");
    if (v[CK_DEV]) {
        if (vl[CK_DEV] == 4 && strncasecmp(v[CK_DEV], "true", 4) == 0)
            return conn_dev(t);
        if (!(vl[CK_DEV] == 5 && strncasecmp(v[CK_DEV], "false", 5) == 0))
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "UseDevelopmentStorage must be true or false");
    }
    int rc;
    if (v[CK_KEY]) {
        /* Validate without keeping or echoing the decoded key. */
        uint8_t buf[256];
        rc = ccr_base64_decode(v[CK_KEY], vl[CK_KEY], buf, sizeof(buf));
        ccr_wipe(buf, sizeof(buf));
        if (rc <= 0)
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "AccountKey is not valid base64");
        if (!(t->account_key = dupn(v[CK_KEY], vl[CK_KEY])))
            return -ENOMEM;
    }
    if (v[CK_SAS]) {
        const char *s = v[CK_SAS];
        size_t n = vl[CK_SAS];
        if (n && s[0] == '?') {
            s++;
            n--;
        }
        if (n == 0)
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "SharedAccessSignature is empty");
        if (!(t->sas = dupn(s, n)))
            return -ENOMEM;
    }
    if (v[CK_BLOB_ENDPOINT]) {
        char *ep = dupn(v[CK_BLOB_ENDPOINT], vl[CK_BLOB_ENDPOINT]);
        if (!ep)
            return -ENOMEM;
        struct url_parts u;
        rc = url_split(ep, &u, CONN_WHERE, "BlobEndpoint", err);
        if (rc == 0 && u.query)
            rc = ccr_err_set(err, -EINVAL, CONN_WHERE, -1,
                             "BlobEndpoint must not have a query (put a SAS in SharedAccessSignature)");
        if (rc < 0) {
            ccr_free(ep);
            return rc;
        }
        for (size_t i = 0; i < u.host_len; i++)
            ep[u.host - ep + (ptrdiff_t)i] = lower(u.host[i]);
        t->https = u.https;
        t->path_style = host_path_style(u.host, u.host_len);
        /* Path segments: in path style exactly the account; in host style none. */
        const char *seg = u.path_len ? u.path + 1 : u.path;
        size_t seg_len = u.path_len ? u.path_len - 1 : 0;
        if (seg_len && seg[seg_len - 1] == '/')
            seg_len--;
        const char *acc = NULL;
        size_t acc_len = 0;
        if (t->path_style) {
            if (seg_len == 0 || memchr(seg, '/', seg_len))
                rc = ccr_err_set(err, -EINVAL, CONN_WHERE, -1,
                                 "BlobEndpoint on an IP address or local host name must be "
                                 "http(s)://HOST:PORT/ACCOUNT");
            acc = seg;
            acc_len = seg_len;
        } else {
            if (seg_len)
                rc = ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "BlobEndpoint must not have a path");
            acc = u.host;
            acc_len = strcspn(u.host, ".");
        }
        if (rc == 0 && v[CK_NAME]) {
            acc = v[CK_NAME];
            acc_len = vl[CK_NAME];
        }
        if (rc == 0)
            rc = account_check(acc, acc_len, CONN_WHERE, err);
        if (rc == 0 && !(t->account = dupn(acc, acc_len)))
            rc = -ENOMEM;
        if (rc == 0) {
            char *path_acc = t->path_style ? dupn(seg, seg_len) : NULL;
            if (t->path_style && !path_acc)
                rc = -ENOMEM;
            else if (!(t->endpoint = endpoint_build(&u, t->path_style, path_acc)))
                rc = -ENOMEM;
            ccr_free(path_acc);
        }
        ccr_free(ep);
        return rc;
    }
    if (!v[CK_NAME])
        return ccr_err_set(err, -EINVAL, CONN_WHERE, -1,
                           "AccountName is missing (and there is no BlobEndpoint)");
    rc = account_check(v[CK_NAME], vl[CK_NAME], CONN_WHERE, err);
    if (rc < 0)
        return rc;
    t->https = true;
    if (v[CK_PROTOCOL]) {
        if (vl[CK_PROTOCOL] == 4 && strncasecmp(v[CK_PROTOCOL], "http", 4) == 0)
            t->https = false;
        else if (!(vl[CK_PROTOCOL] == 5 && strncasecmp(v[CK_PROTOCOL], "https", 5) == 0))
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1,
                               "DefaultEndpointsProtocol must be https or http");
    }
    const char *suffix = v[CK_SUFFIX] ? v[CK_SUFFIX] : "core.windows.net";
    size_t suffix_len = v[CK_SUFFIX] ? vl[CK_SUFFIX] : strlen(suffix);
    for (size_t i = 0; i < suffix_len; i++) {
        char l = lower(suffix[i]);
        if (!is_alnum_lower(l) && l != '-' && l != '.')
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "EndpointSuffix is not a host name suffix");
    }
    if (!(t->account = dupn(v[CK_NAME], vl[CK_NAME])))
        return -ENOMEM;
    struct sbuf b = {0};
    sb_str(&b, t->https ? "https://" : "http://");
    sb_str(&b, t->account);
    sb_str(&b, ".blob.");
    for (size_t i = 0; i < suffix_len; i++) {
        char c = lower(suffix[i]);
        sb_add(&b, &c, 1);
    }
    if (b.oom) {
        ccr_free(b.p);
        return -ENOMEM;
    }
    t->endpoint = b.p;
    t->path_style = false;
    return 0;
}

int az_conn_parse(const char *conn, struct az_target *out, struct ccr_err *err)
{
    if (!conn || !out)
        return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "no connection string given");
    const char *v[CK_COUNT] = {0};
    size_t vl[CK_COUNT] = {0};
    const char *p = conn;
    while (*p) {
        size_t n = strcspn(p, ";");
        const char *part = p;
        p += n;
        if (*p == ';')
            p++;
        trim(&part, &n);
        if (n == 0)
            continue;
        const char *eq = memchr(part, '=', n);
        if (!eq)
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1,
                               "malformed connection string: a part has no '=' (expected Key=Value;...)");
        const char *key = part, *val = eq + 1;
        size_t kl = (size_t)(eq - part), vn = n - kl - 1;
        trim(&key, &kl);
        trim(&val, &vn);
        if (kl == 0)
            return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "malformed connection string: empty key name");
        for (int k = 0; k < CK_COUNT; k++) {
            if (strlen(conn_key_names[k]) == kl && strncasecmp(conn_key_names[k], key, kl) == 0) {
                if (vn == 0)
                    return ccr_err_set(err, -EINVAL, CONN_WHERE, -1, "%s has an empty value",
                                       conn_key_names[k]);
                v[k] = val;
                vl[k] = vn;
            }
        }
    }
    struct az_target t = {0};
    int rc = conn_fill(v, vl, &t, err);
    if (rc < 0) {
        az_target_fini(&t);
        return rc == -ENOMEM ? ccr_err_set(err, rc, CONN_WHERE, -1, "out of memory") : rc;
    }
    *out = t;
    return 0;
}

/* The URL up to its query, for err->where (a SAS must never reach an error message). */
static char *url_where(const char *url)
{
    return dupn(url, strcspn(url, "?#"));
}

/* Path segments after *p (which points at '/' or the end): the next one, or false when none is left. */
static bool next_segment(const char **p, const char *end, const char **seg, size_t *len)
{
    if (*p >= end)
        return false;
    if (**p == '/')
        (*p)++;
    if (*p >= end)
        return false;
    const char *s = *p;
    while (*p < end && **p != '/')
        (*p)++;
    *seg = s;
    *len = (size_t)(*p - s);
    return true;
}

static int parse_az_url(const char *url, const char *conn, const char *where, struct az_target *t,
                        struct ccr_err *err)
{
    if (!conn)
        return ccr_err_set(err, -EINVAL, where, -1,
                           "az:// URLs take the account and credentials from a connection string: set "
                           "AZURE_STORAGE_CONNECTION_STRING");
    const char *rest = url + 5;
    size_t n = strcspn(rest, "?#");
    if (rest[n])
        return ccr_err_set(err, -EINVAL, where, -1,
                           "an az:// URL takes no query or fragment: credentials come from the connection "
                           "string");
    int rc = az_conn_parse(conn, t, err);
    if (rc < 0)
        return rc;
    size_t cl = strcspn(rest, "/");
    if (cl > n)
        cl = n;
    if (cl == 0)
        return ccr_err_set(err, -EINVAL, where, -1, "no container in the URL (az://CONTAINER[/PREFIX])");
    if ((rc = container_check(rest, cl, where, err)) < 0)
        return rc;
    if (!(t->container = dupn(rest, cl)))
        return -ENOMEM;
    const char *pre = rest + cl;
    size_t pl = n - cl;
    if (pl && pre[0] == '/') {
        pre++;
        pl--;
    }
    return prefix_parse(pre, pl, where, &t->prefix, err);
}

static int parse_http_url(const char *url, const char *where, struct az_target *t, struct ccr_err *err)
{
    struct url_parts u;
    int rc = url_split(url, &u, where, "the store URL", err);
    if (rc < 0)
        return rc;
    t->https = u.https;
    t->path_style = host_path_style(u.host, u.host_len);
    const char *p = u.path, *end = u.path + u.path_len;
    const char *seg = NULL;
    size_t sl = 0;
    if (t->path_style) {
        if (!next_segment(&p, end, &seg, &sl) || sl == 0)
            return ccr_err_set(err, -EINVAL, where, -1,
                               "no account in the URL: on an IP address or local host name the form is "
                               "http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]");
        if ((rc = account_check(seg, sl, where, err)) < 0)
            return rc;
        if (!(t->account = dupn(seg, sl)))
            return -ENOMEM;
    } else {
        char *host = dupn(u.host, u.host_len);
        if (!host)
            return -ENOMEM;
        for (char *c = host; *c; c++)
            *c = lower(*c);
        size_t al = strcspn(host, ".");
        rc = account_check(host, al, where, err);
        if (rc == 0) {
            host[al] = '\0';
            t->account = host;
        } else {
            ccr_free(host);
            return rc;
        }
    }
    if (!next_segment(&p, end, &seg, &sl) || sl == 0)
        return ccr_err_set(err, -EINVAL, where, -1, "no container in the URL");
    if ((rc = container_check(seg, sl, where, err)) < 0)
        return rc;
    if (!(t->container = dupn(seg, sl)))
        return -ENOMEM;
    if (p < end && *p == '/')
        p++;
    if ((rc = prefix_parse(p, (size_t)(end - p), where, &t->prefix, err)) < 0)
        return rc;
    if (!(t->endpoint = endpoint_build(&u, t->path_style, t->account)))
        return -ENOMEM;
    if (u.query && u.query_len && !(t->sas = dupn(u.query, u.query_len)))
        return -ENOMEM;

    if (t->path_style && !t->account_key && !t->sas && strcmp(t->account, AZ_DEV_ACCOUNT) == 0 &&
        !(t->account_key = ccr_blob_strdup(AZ_DEV_KEY)))
        return -ENOMEM;
    return 0;
}

int az_target_parse(const char *url, const char *conn, struct az_target *out, struct ccr_err *err)
{
    if (!url || !url[0] || !out)
        return ccr_err_set(err, -EINVAL, "", -1, "no store URL given");
    char *where = url_where(url);
    if (!where)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    struct az_target t = {0};
    int rc;
    if (strncasecmp(url, "az://", 5) == 0)
        rc = parse_az_url(url, conn, where, &t, err);
    else if (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0)
        rc = parse_http_url(url, where, &t, err);
    else
        rc = ccr_err_set(err, -EINVAL, where, -1,
                         "not an Azure Blob URL: expected https://ACCOUNT.blob.core.windows.net/CONTAINER, "
                         "http(s)://HOST:PORT/ACCOUNT/CONTAINER or az://CONTAINER");
    if (rc == -ENOMEM)
        ccr_err_set(err, rc, where, -1, "out of memory");
    ccr_free(where);
    if (rc < 0) {
        az_target_fini(&t);
        return rc;
    }
    *out = t;
    return 0;
}

char *az_target_display(const struct az_target *t)
{
    if (!t || !t->endpoint || !t->container)
        return NULL;
    struct sbuf b = {0};
    sb_str(&b, t->endpoint);
    sb_add(&b, "/", 1);
    sb_str(&b, t->container);
    size_t pl = t->prefix ? strlen(t->prefix) : 0;
    if (pl) {
        /* The prefix without its trailing '/', encoded as in a request path. */
        char *bare = dupn(t->prefix, pl - (t->prefix[pl - 1] == '/'));
        size_t cap = 3 * pl + 1;
        char *enc = ccr_malloc(cap);
        if (bare && enc && az_encode_path(bare, enc, cap) >= 0) {
            sb_add(&b, "/", 1);
            sb_str(&b, enc);
        } else {
            b.oom = true;
        }
        ccr_free(bare);
        ccr_free(enc);
    }
    if (b.oom) {
        ccr_free(b.p);
        return NULL;
    }
    return b.p;
}

/* ===================================================================================================== */
/* encoding                                                                                              */
/* ===================================================================================================== */

static int pct_encode(const char *s, char *out, size_t cap, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        size_t need = plain ? 1 : 3;
        if (o + need + 1 > cap)
            return -ENOSPC;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o + 1 > cap)
        return -ENOSPC;
    out[o] = '\0';
    return o > INT_MAX ? -ENOSPC : (int)o;
}

int az_encode_path(const char *name, char *out, size_t cap)
{
    return pct_encode(name, out, cap, true);
}

int az_encode_query(const char *value, char *out, size_t cap)
{
    return pct_encode(value, out, cap, false);
}

/*
 * Indices below 10^6 (the 50,000-block limit is far below) give 16 bytes of text and so ids of one
 * length; larger ones still give unique, longer ids that fit AZ_BLOCK_ID_MAX.
 */
void az_block_id(uint64_t index, char out[AZ_BLOCK_ID_MAX])
{
    char raw[32];
    int n = snprintf(raw, sizeof(raw), "ccr-block-%06llu", (unsigned long long)index);
    int rc = ccr_base64_encode(raw, (size_t)n, out, AZ_BLOCK_ID_MAX);
    if (rc < 0) /* cannot happen: 30 bytes encode to 40 characters */
        out[0] = '\0';
}

#define BL_HEAD  "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>"
#define BL_TAIL  "</BlockList>"
#define BL_OPEN  "<Latest>"
#define BL_CLOSE "</Latest>"

int az_block_list_body(uint64_t n, char **out, size_t *out_len)
{
    const size_t per = sizeof(BL_OPEN) - 1 + AZ_BLOCK_ID_MAX + sizeof(BL_CLOSE) - 1;
    const size_t fixed = sizeof(BL_HEAD) + sizeof(BL_TAIL);
    if (n > (SIZE_MAX - fixed) / per)
        return -ENOMEM;
    size_t cap = fixed + (size_t)n * per;
    char *b = ccr_malloc(cap);
    if (!b)
        return -ENOMEM;
    size_t o = 0;
    memcpy(b, BL_HEAD, sizeof(BL_HEAD) - 1);
    o += sizeof(BL_HEAD) - 1;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(b + o, BL_OPEN, sizeof(BL_OPEN) - 1);
        o += sizeof(BL_OPEN) - 1;
        char id[AZ_BLOCK_ID_MAX];
        az_block_id(i, id);
        size_t il = strlen(id);
        memcpy(b + o, id, il);
        o += il;
        memcpy(b + o, BL_CLOSE, sizeof(BL_CLOSE) - 1);
        o += sizeof(BL_CLOSE) - 1;
    }
    memcpy(b + o, BL_TAIL, sizeof(BL_TAIL));
    o += sizeof(BL_TAIL) - 1;
    *out = b;
    *out_len = o;
    return 0;
}

/* ===================================================================================================== */
/* HTTP dates                                                                                            */
/* ===================================================================================================== */

static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* English names whatever the locale: strftime's %a and %b would follow LC_TIME. */
void az_http_date(time_t t, char out[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(out, 32, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    /* A roomy buffer keeps the compiler's truncation analysis quiet; the text is always 29 bytes. */
    char buf[64];
    snprintf(buf, sizeof(buf), "%s, %02u %s %04u %02u:%02u:%02u GMT", wday_names[(unsigned)tm.tm_wday % 7],
             (unsigned)tm.tm_mday % 100, month_names[(unsigned)tm.tm_mon % 12], (unsigned)tm.tm_year + 1900,
             (unsigned)tm.tm_hour % 100, (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
    snprintf(out, 32, "%.31s", buf);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool lit(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0)
        return false;
    *p += n;
    return true;
}

int az_parse_http_date(const char *s, int64_t *out_ns)
{
    if (!s)
        return -EINVAL;
    const char *p = s;
    int wd = -1;
    for (int i = 0; i < 7; i++)
        if (strncmp(p, wday_names[i], 3) == 0)
            wd = i;
    if (wd < 0)
        return -EINVAL;
    p += 3;
    int day, mon = -1, year, hh, mm, ss;
    if (!lit(&p, ", "))
        return -EINVAL;
    if (!digits(&p, is_digit(p[0]) && is_digit(p[1]) ? 2 : 1, &day) || !lit(&p, " "))
        return -EINVAL;
    for (int i = 0; i < 12; i++)
        if (strncmp(p, month_names[i], 3) == 0)
            mon = i;
    if (mon < 0)
        return -EINVAL;
    p += 3;
    if (!lit(&p, " ") || !digits(&p, 4, &year) || !lit(&p, " ") || !digits(&p, 2, &hh) || !lit(&p, ":") ||
        !digits(&p, 2, &mm) || !lit(&p, ":") || !digits(&p, 2, &ss) || !lit(&p, " GMT") || *p)
        return -EINVAL;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dim = mdays[mon] + (mon == 1 && leap(year));
    if (day < 1 || day > dim || hh > 23 || mm > 59 || ss > 60)
        return -EINVAL;
    if (ss == 60) /* a leap second: POSIX time has none */
        ss = 59;
    int64_t days = days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    if (secs > INT64_MAX / 1000000000LL || secs < INT64_MIN / 1000000000LL)
        return -EINVAL; /* beyond 1677..2262, what int64 nanoseconds can hold */
    *out_ns = secs * 1000000000LL;
    return 0;
}

/* ===================================================================================================== */
/* SharedKey                                                                                             */
/* ===================================================================================================== */

/*
 * HMAC-SHA256: the EVP_MAC and its digest are fetched once into a template context that each call
 * duplicates (fetching per call is slow and takes a lock in OpenSSL 3).
 */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC_CTX *hmac_tmpl;

static void hmac_init(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context keeps its own reference */
    if (!ctx)
        return;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!EVP_MAC_CTX_set_params(ctx, params)) {
        EVP_MAC_CTX_free(ctx);
        return;
    }
    hmac_tmpl = ctx;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t len, uint8_t mac[32])
{
    pthread_once(&hmac_once, hmac_init);
    if (!hmac_tmpl)
        return -ENOMEM;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(hmac_tmpl);
    if (!ctx)
        return -ENOMEM;
    size_t out_len = 0;
    int ok = EVP_MAC_init(ctx, key, key_len, NULL) && EVP_MAC_update(ctx, msg, len) &&
             EVP_MAC_final(ctx, mac, &out_len, 32) && out_len == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -EINVAL;
}

/* One header or query parameter, as slices of the caller's strings or of decoded copies. */
struct kv {
    char *name; /* owned, lowercased */
    const char *val;
    size_t vlen;
    char *val_owned; /* query values are decoded copies */
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    size_t n = x->vlen < y->vlen ? x->vlen : y->vlen;
    c = memcmp(x->val, y->val, n);
    if (c)
        return c;
    return x->vlen < y->vlen ? -1 : x->vlen > y->vlen;
}

static void kv_free(struct kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ccr_free(v[i].name);
        ccr_free(v[i].val_owned);
    }
    ccr_free(v);
}

/* Appends sorted name:value lines; repeated names become one line with ','-joined values. */
static void kv_emit(struct sbuf *b, const struct kv *v, size_t n, bool leading_newline)
{
    for (size_t i = 0; i < n;) {
        if (leading_newline)
            sb_add(b, "\n", 1);
        sb_str(b, v[i].name);
        sb_add(b, ":", 1);
        size_t j = i;
        for (; j < n && strcmp(v[j].name, v[i].name) == 0; j++) {
            if (j > i)
                sb_add(b, ",", 1);
            sb_add(b, v[j].val, v[j].vlen);
        }
        if (!leading_newline)
            sb_add(b, "\n", 1);
        i = j;
    }
}

static const char *const signed_headers[] = {
    "Content-Encoding",  "Content-Language", "Content-Length", "Content-MD5",         "Content-Type", "Date",
    "If-Modified-Since", "If-Match",         "If-None-Match",  "If-Unmodified-Since", "Range",
};

int az_sharedkey_authorization(const uint8_t *key, size_t key_len, const char *account, const char *method,
                               const char *path, const char *query, const char *const *headers,
                               size_t n_headers, char *out, size_t cap)
{
    if (!key || !key_len || !account || !account[0] || !method || !method[0] || !path || path[0] != '/' ||
        (n_headers && !headers) || !out)
        return -EINVAL;
    int rc = 0;
    struct sbuf b = {0};
    struct kv *xms = NULL, *qp = NULL;
    size_t n_xms = 0, n_qp = 0;

    /* The standard headers, in their fixed order. */
    const char *std_val[sizeof(signed_headers) / sizeof(signed_headers[0])] = {0};
    size_t std_len[sizeof(signed_headers) / sizeof(signed_headers[0])] = {0};
    xms = ccr_calloc(n_headers ? n_headers : 1, sizeof(*xms));
    if (!xms) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_headers; i++) {
        const char *h = headers[i];
        const char *colon = h ? strchr(h, ':') : NULL;
        if (!colon) {
            rc = -EINVAL;
            goto out;
        }
        const char *name = h, *val = colon + 1;
        size_t nl = (size_t)(colon - h), vl = strlen(val);
        trim(&name, &nl);
        trim(&val, &vl);
        if (nl == 0) {
            rc = -EINVAL;
            goto out;
        }
        if (nl > 5 && strncasecmp(name, "x-ms-", 5) == 0) {
            char *ln = dupn(name, nl);
            if (!ln) {
                rc = -ENOMEM;
                goto out;
            }
            for (char *c = ln; *c; c++)
                *c = lower(*c);
            xms[n_xms].name = ln;
            xms[n_xms].val = val;
            xms[n_xms].vlen = vl;
            n_xms++;
            continue;
        }
        for (size_t k = 0; k < sizeof(signed_headers) / sizeof(signed_headers[0]); k++) {
            if (strlen(signed_headers[k]) == nl && strncasecmp(signed_headers[k], name, nl) == 0 &&
                !std_val[k]) {
                std_val[k] = val;
                std_len[k] = vl;
                /* Content-Length is signed as the empty string when 0 (version 2015-02-21 on). */
                if (k == 2 && vl == 1 && val[0] == '0')
                    std_len[k] = 0;
            }
        }
    }

    /* Query parameters: names lowercased, names and values decoded. */
    size_t qlen = query ? strlen(query) : 0;
    if (qlen) {
        size_t max = 1;
        for (size_t i = 0; i < qlen; i++)
            max += query[i] == '&';
        qp = ccr_calloc(max, sizeof(*qp));
        if (!qp) {
            rc = -ENOMEM;
            goto out;
        }
        const char *p = query, *end = query + qlen;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *pe = amp ? amp : end;
            if (pe > p) {
                const char *eq = memchr(p, '=', (size_t)(pe - p));
                const char *ne = eq ? eq : pe;
                char *name = pct_decode(p, (size_t)(ne - p), &rc);
                if (!name)
                    goto out;
                char *val = eq ? pct_decode(eq + 1, (size_t)(pe - eq - 1), &rc) : dupn("", 0);
                if (!val) {
                    ccr_free(name);
                    rc = rc ? rc : -ENOMEM;
                    goto out;
                }
                for (char *c = name; *c; c++)
                    *c = lower(*c);
                qp[n_qp].name = name;
                qp[n_qp].val_owned = val;
                qp[n_qp].val = val;
                qp[n_qp].vlen = strlen(val);
                n_qp++;
            }
            p = pe + 1;
        }
    }
    qsort(xms, n_xms, sizeof(*xms), kv_cmp);
    if (n_qp)
        qsort(qp, n_qp, sizeof(*qp), kv_cmp);

    sb_str(&b, method);
    sb_add(&b, "\n", 1);
    for (size_t k = 0; k < sizeof(signed_headers) / sizeof(signed_headers[0]); k++) {
        if (std_val[k])
            sb_add(&b, std_val[k], std_len[k]);
        sb_add(&b, "\n", 1);
    }
    kv_emit(&b, xms, n_xms, false);
    sb_add(&b, "/", 1);
    sb_str(&b, account);
    sb_str(&b, path);
    kv_emit(&b, qp, n_qp, true);
    if (b.oom) {
        rc = -ENOMEM;
        goto out;
    }

    uint8_t mac[32];
    if ((rc = hmac_sha256(key, key_len, b.p, b.len, mac)) < 0)
        goto out;
    char sig[CCR_BASE64_LEN(32) + 1];
    rc = ccr_base64_encode(mac, sizeof(mac), sig, sizeof(sig));
    if (rc < 0)
        goto out;
    int n = snprintf(out, cap, "SharedKey %s:%s", account, sig);
    rc = (n < 0 || (size_t)n >= cap) ? -ENOSPC : n;
out:
    if (rc == -ENOSPC && cap)
        out[0] = '\0';
    kv_free(xms, n_xms);
    kv_free(qp, n_qp);
    ccr_free(b.p);
    return rc;
}

/* ===================================================================================================== */
/* XML                                                                                                   */
/* ===================================================================================================== */

#define XML_CHUNK     (1 << 20)  /* fed to expat at a time (its length argument is an int) */
#define XML_TEXT_MAX  (64 << 10) /* longest element text kept: names are <= 1024 bytes, 3x encoded */
#define XML_DEPTH_MAX 64

/* Elements of a List Blobs response that matter; anything else is EL_OTHER and ignored. */
enum el {
    EL_OTHER,
    EL_ROOT,
    EL_BLOBS,
    EL_BLOB,
    EL_PREFIX,
    EL_NAME,
    EL_PROPS,
    EL_LEN,
    EL_ETAG,
    EL_MTIME,
    EL_NEXT,
    /* the error body */
    EL_ERROR,
    EL_CODE,
    EL_MESSAGE,
};

struct xml_ctx {
    XML_Parser xp;
    bool error_doc; /* parsing <Error>, not <EnumerationResults> */
    int depth;
    uint8_t stack[XML_DEPTH_MAX + 1];
    bool capturing;
    char *text;
    size_t tlen, tcap;
    int rc;
    struct ccr_err *err;

    /* the entry being read */
    bool name_encoded;
    char *name;
    bool have_len, have_etag, have_mtime;
    struct ccr_blob_props props;
    size_t entry_no;

    /* the page */
    struct ccr_blob_item *items;
    size_t count, cap;
    char *next_marker;
    const char *strip;
    size_t strip_len;

    /* the error body */
    char *code, *message;
};

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal)
{
    struct xml_ctx *c = ud;
    c->rc = ccr_err_set(c->err, -EBADMSG, NULL, (int64_t)XML_GetCurrentByteIndex(c->xp),
                        "XML response has a DOCTYPE, which the service never sends");
    XML_StopParser(c->xp, XML_FALSE);
}

static int fail(struct xml_ctx *c, int code, const char *fmt, ...) CCR_PRINTF(3, 4);

/* Records the first failure (the byte offset and line where expat is) and stops the parser. */
static int fail(struct xml_ctx *c, int code, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->rc = ccr_err_set(c->err, code, NULL, (int64_t)XML_GetCurrentByteIndex(c->xp), "%s: %s (line %lu)",
                        c->error_doc ? "error response" : "List Blobs response", msg,
                        (unsigned long)XML_GetCurrentLineNumber(c->xp));
    XML_StopParser(c->xp, XML_FALSE);
    return c->rc;
}

static enum el classify(const struct xml_ctx *c, enum el parent, const char *name)
{
    if (c->error_doc) {
        if (c->depth == 1)
            return strcmp(name, "Error") == 0 ? EL_ERROR : EL_OTHER;
        if (parent == EL_ERROR && strcmp(name, "Code") == 0)
            return EL_CODE;
        if (parent == EL_ERROR && strcmp(name, "Message") == 0)
            return EL_MESSAGE;
        return EL_OTHER;
    }
    switch (parent) {
    case EL_ROOT:
        if (strcmp(name, "Blobs") == 0)
            return EL_BLOBS;
        if (strcmp(name, "NextMarker") == 0)
            return EL_NEXT;
        break;
    case EL_BLOBS:
        if (strcmp(name, "Blob") == 0)
            return EL_BLOB;
        if (strcmp(name, "BlobPrefix") == 0)
            return EL_PREFIX;
        break;
    case EL_BLOB:
        if (strcmp(name, "Properties") == 0)
            return EL_PROPS;
        /* fall through */
    case EL_PREFIX:
        if (strcmp(name, "Name") == 0)
            return EL_NAME;
        break;
    case EL_PROPS:
        if (strcmp(name, "Content-Length") == 0)
            return EL_LEN;
        if (strcmp(name, "Etag") == 0)
            return EL_ETAG;
        if (strcmp(name, "Last-Modified") == 0)
            return EL_MTIME;
        break;
    default:
        break;
    }
    return EL_OTHER;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct xml_ctx *c = ud;
    if (c->rc)
        return;
    enum el parent = c->depth == 0 ? EL_OTHER : c->depth <= XML_DEPTH_MAX ? c->stack[c->depth] : EL_OTHER;
    c->depth++;
    enum el k = EL_OTHER;
    if (c->depth == 1 && !c->error_doc) {
        if (strcmp(name, "EnumerationResults") != 0) {
            fail(c, -EBADMSG, "the root element is <%s>, not <EnumerationResults>", name);
            return;
        }
        k = EL_ROOT;
    } else if (c->depth == 1 || parent != EL_OTHER) {
        k = classify(c, parent, name);
    }
    if (c->depth <= XML_DEPTH_MAX)
        c->stack[c->depth] = (uint8_t)k;
    switch (k) {
    case EL_BLOB:
    case EL_PREFIX:
        c->entry_no++;
        c->name = NULL;
        c->have_len = c->have_etag = c->have_mtime = false;
        memset(&c->props, 0, sizeof(c->props));
        break;
    case EL_NAME:
        if (c->name) {
            fail(c, -EBADMSG, "entry has two <Name> elements");
            return;
        }
        c->name_encoded = false;
        for (int i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "Encoded") == 0 && strcmp(attrs[i + 1], "true") == 0)
                c->name_encoded = true;
        /* fall through */
    case EL_LEN:
    case EL_ETAG:
    case EL_MTIME:
    case EL_NEXT:
    case EL_CODE:
    case EL_MESSAGE:
        c->capturing = true;
        c->tlen = 0;
        break;
    default:
        break;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct xml_ctx *c = ud;
    if (c->rc || !c->capturing || len <= 0)
        return;
    size_t n = (size_t)len;
    if (c->tlen + n + 1 > c->tcap) {
        if (c->tlen + n + 1 > XML_TEXT_MAX) {
            fail(c, -EBADMSG, "an element's text is longer than the service ever sends");
            return;
        }
        size_t nc = c->tcap ? c->tcap : 256;
        while (nc < c->tlen + n + 1)
            nc *= 2;
        char *np = ccr_realloc(c->text, nc);
        if (!np) {
            c->rc = ccr_err_set(c->err, -ENOMEM, NULL, -1, "out of memory");
            XML_StopParser(c->xp, XML_FALSE);
            return;
        }
        c->text = np;
        c->tcap = nc;
    }
    memcpy(c->text + c->tlen, s, n);
    c->tlen += n;
    c->text[c->tlen] = '\0';
}

/* The entry's display name for messages: its name when known, else its number. */
static const char *entry_label(const struct xml_ctx *c, char *buf, size_t cap)
{
    if (c->name)
        snprintf(buf, cap, "'%.200s'", c->name);
    else
        snprintf(buf, cap, "#%zu", c->entry_no);
    return buf;
}

static int take_name(struct xml_ctx *c)
{
    const char *t = c->tlen ? c->text : "";
    char *name;
    if (c->name_encoded) {
        int rc = 0;
        name = pct_decode(t, c->tlen, &rc);
        if (!name)
            return rc == -ENOMEM ? fail(c, -ENOMEM, "out of memory")
                                 : fail(c, -EBADMSG, "an encoded <Name> is not valid %%-encoding");
    } else {
        if (memchr(t, '\0', c->tlen))
            return fail(c, -EBADMSG, "a <Name> contains a NUL character");
        name = dupn(t, c->tlen);
        if (!name)
            return fail(c, -ENOMEM, "out of memory");
    }
    if (name[0] == '\0') {
        ccr_free(name);
        return fail(c, -EBADMSG, "an entry has an empty <Name>");
    }
    c->name = name;
    return 0;
}

static int take_len(struct xml_ctx *c)
{
    const char *t = c->tlen ? c->text : "";
    size_t n = c->tlen;
    trim(&t, &n);
    uint64_t v = 0;
    bool ok = n > 0 && n <= 20;
    for (size_t i = 0; ok && i < n; i++) {
        ok = is_digit(t[i]) && v <= (UINT64_MAX - (uint64_t)(t[i] - '0')) / 10;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    char lb[240];
    if (!ok)
        return fail(c, -EBADMSG, "entry %s has an invalid <Content-Length>", entry_label(c, lb, sizeof(lb)));
    c->props.size = v;
    c->have_len = true;
    return 0;
}

/* The ETag in the quoted form of the ETag header (see the top of the file). */
static int take_etag(struct xml_ctx *c)
{
    const char *t = c->tlen ? c->text : "";
    size_t n = c->tlen;
    trim(&t, &n);
    bool quoted =
        n >= 2 && (t[0] == '"' || (n >= 4 && t[0] == 'W' && t[1] == '/' && t[2] == '"')) && t[n - 1] == '"';
    size_t need = n + (quoted ? 0 : 2);
    char lb[240];
    bool ok = n > 0 && need < CCR_ETAG_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)t[i] > 0x20 && t[i] != 0x7f;
    if (!ok)
        return fail(c, -EBADMSG, "entry %s has an invalid <Etag>", entry_label(c, lb, sizeof(lb)));
    if (quoted) {
        memcpy(c->props.etag, t, n);
    } else {
        c->props.etag[0] = '"';
        memcpy(c->props.etag + 1, t, n);
        c->props.etag[n + 1] = '"';
    }
    c->props.etag[need] = '\0';
    c->have_etag = true;
    return 0;
}

static int take_mtime(struct xml_ctx *c)
{
    char lb[240];
    if (az_parse_http_date(c->tlen ? c->text : "", &c->props.mtime_ns) < 0)
        return fail(c, -EBADMSG, "entry %s has an invalid <Last-Modified>", entry_label(c, lb, sizeof(lb)));
    c->have_mtime = true;
    return 0;
}

static int push_entry(struct xml_ctx *c, bool is_prefix)
{
    char lb[240];
    if (!c->name)
        return fail(c, -EBADMSG, "entry %s has no <Name>", entry_label(c, lb, sizeof(lb)));
    if (!is_prefix) {
        const char *missing = !c->have_len     ? "Content-Length"
                              : !c->have_etag  ? "Etag"
                              : !c->have_mtime ? "Last-Modified"
                                               : NULL;
        if (missing)
            return fail(c, -EBADMSG, "blob %s has no <Properties>/<%s>", entry_label(c, lb, sizeof(lb)),
                        missing);
    }
    if (c->strip_len && strncmp(c->name, c->strip, c->strip_len) != 0)
        return fail(c, -EBADMSG, "entry %s does not start with the store's prefix '%.200s'",
                    entry_label(c, lb, sizeof(lb)), c->strip);
    size_t nl = strlen(c->name) - c->strip_len;
    if (nl == 0) {
        /*
         * A blob named exactly like the store's prefix ("dir/"): a directory marker some tools create.
         * It is not a blob of this store, so it is left out rather than failing the whole listing.
         */
        ccr_free(c->name);
        c->name = NULL;
        return 0;
    }
    if (c->strip_len)
        memmove(c->name, c->name + c->strip_len, nl + 1);
    if (c->count == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        struct ccr_blob_item *ni = ccr_realloc(c->items, nc * sizeof(*ni));
        if (!ni)
            return fail(c, -ENOMEM, "out of memory");
        c->items = ni;
        c->cap = nc;
    }
    struct ccr_blob_item *it = &c->items[c->count++];
    it->name = c->name;
    it->is_prefix = is_prefix;
    if (is_prefix)
        memset(&it->props, 0, sizeof(it->props));
    else
        it->props = c->props;
    c->name = NULL;
    return 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct xml_ctx *c = ud;
    if (c->rc)
        return;
    enum el k = c->depth <= XML_DEPTH_MAX ? c->stack[c->depth] : EL_OTHER;
    c->depth--;
    bool was = c->capturing;
    switch (k) {
    case EL_BLOB:
    case EL_PREFIX:
        push_entry(c, k == EL_PREFIX);
        break;
    case EL_NAME:
        if (was)
            take_name(c);
        break;
    case EL_LEN:
        if (was)
            take_len(c);
        break;
    case EL_ETAG:
        if (was)
            take_etag(c);
        break;
    case EL_MTIME:
        if (was)
            take_mtime(c);
        break;
    case EL_NEXT:
        ccr_free(c->next_marker);
        c->next_marker = NULL;
        if (c->tlen && !(c->next_marker = dupn(c->text, c->tlen)))
            fail(c, -ENOMEM, "out of memory");
        break;
    case EL_CODE:
    case EL_MESSAGE: {
        char **dst = k == EL_CODE ? &c->code : &c->message;
        ccr_free(*dst);
        *dst = dupn(c->tlen ? c->text : "", c->tlen);
        if (!*dst)
            fail(c, -ENOMEM, "out of memory");
        break;
    }
    default:
        break;
    }
    if (k != EL_OTHER)
        c->capturing = false;
}

/* Runs expat over the document; 0, or c->rc / -EBADMSG with err saying where the XML is malformed. */
static int xml_run(struct xml_ctx *c, const char *xml, size_t len)
{
    c->xp = XML_ParserCreate(NULL);
    if (!c->xp)
        return ccr_err_set(c->err, -ENOMEM, NULL, -1, "out of memory");
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_text);
    XML_SetStartDoctypeDeclHandler(c->xp, on_doctype);
    int rc = 0;
    size_t off = 0;
    do {
        size_t n = len - off > XML_CHUNK ? XML_CHUNK : len - off;
        bool last = off + n == len;
        if (XML_Parse(c->xp, xml + off, (int)n, last) != XML_STATUS_OK) {
            if (c->rc)
                rc = c->rc;
            else
                rc = ccr_err_set(c->err, -EBADMSG, NULL, (int64_t)XML_GetCurrentByteIndex(c->xp),
                                 "malformed XML in the response: %s (line %lu, column %lu)",
                                 XML_ErrorString(XML_GetErrorCode(c->xp)),
                                 (unsigned long)XML_GetCurrentLineNumber(c->xp),
                                 (unsigned long)XML_GetCurrentColumnNumber(c->xp));
            break;
        }
        off += n;
    } while (off < len);
    if (rc == 0 && c->rc)
        rc = c->rc;
    XML_ParserFree(c->xp);
    c->xp = NULL;
    return rc;
}

int az_parse_list(const char *xml, size_t len, const char *strip, struct ccr_blob_page *out,
                  struct ccr_err *err)
{
    if (!xml || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no List Blobs response to parse");
    struct xml_ctx c = {0};
    c.err = err;
    c.strip = strip ? strip : "";
    c.strip_len = strlen(c.strip);
    int rc = xml_run(&c, xml, len);
    ccr_free(c.text);
    ccr_free(c.name);
    if (rc < 0) {
        struct ccr_blob_page p = {c.items, c.count, c.next_marker};
        ccr_blob_page_fini(&p);
        return rc;
    }
    out->items = c.items;
    out->count = c.count;
    out->next_marker = c.next_marker;
    return 0;
}

/* Copies s into out (cap bytes) cut at a UTF-8 character boundary. */
static void copy_trunc(const char *s, char *out, size_t cap)
{
    if (!cap)
        return;
    size_t n = s ? strlen(s) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(out, s, n);
    out[n] = '\0';
}

int az_parse_error(const char *xml, size_t len, char *code, size_t code_cap, char *message,
                   size_t message_cap)
{
    if (code_cap)
        code[0] = '\0';
    if (message_cap)
        message[0] = '\0';
    if (!xml || len == 0)
        return -EBADMSG;
    struct xml_ctx c = {0};
    c.error_doc = true;
    int rc = xml_run(&c, xml, len);
    bool is_error = rc == 0 && c.stack[1] == EL_ERROR;
    if (is_error) {
        const char *t = c.code ? c.code : "";
        size_t n = strlen(t);
        trim(&t, &n);
        char *tc = dupn(t, n);
        copy_trunc(tc ? tc : "", code, code_cap);
        ccr_free(tc);
        copy_trunc(c.message, message, message_cap);
    }
    ccr_free(c.text);
    ccr_free(c.code);
    ccr_free(c.message);
    return is_error ? 0 : rc < 0 ? rc : -EBADMSG;
}
