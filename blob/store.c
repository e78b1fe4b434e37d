/*
 * store.c - the public store interface (ccr/blob.h): URL parsing and backend dispatch, blob name checks,
 * argument validation, and thin wrappers that call the backend's operations table (blob_int.h).
 *
 * URLs this build understands:
 *   file:///abs/path          the local store rooted at /abs/path (taken verbatim: no %-decoding)
 *   /abs/path, rel/path, .    a plain path: the local store; relative paths are made absolute against the
 *                             current directory and normalized lexically (".", ".." and "//" removed)
 *   http://, https://, az://  Azure Blob (azure.c)
 * Anything of the form scheme://... with another scheme is -EPROTONOSUPPORT.
 *
 * When the environment variable CCR_STORE_FAULTS is set (tests only), the opened store is wrapped by the
 * fault injector of fault.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob_int.h"

const char *ccr_blob_strerror(int errnum)
{
    const char *s = strerrordesc_np(errnum);
    return s ? s : "unknown error";
}

char *ccr_blob_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ccr_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int ccr_blob_name_check(const char *name, struct ccr_err *err)
{
    if (!name || !name[0])
        return ccr_err_set(err, -EINVAL, "", -1, "invalid blob name: empty");
    size_t len = strlen(name);
    if (len > CCR_BLOB_NAME_MAX)
        return ccr_err_set(err, -EINVAL, name, -1, "invalid blob name: %zu bytes, the limit is %d", len,
                           CCR_BLOB_NAME_MAX);
    if (name[0] == '/')
        return ccr_err_set(err, -EINVAL, name, -1, "invalid blob name: starts with '/'");
    if (name[len - 1] == '/')
        return ccr_err_set(err, -EINVAL, name, -1, "invalid blob name: ends with '/'");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return ccr_err_set(err, -EINVAL, name, (int64_t)i,
                               "invalid blob name: control character 0x%02x at byte %zu", c, i);
    }
    const char *p = name;
    bool first = true;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0)
            return ccr_err_set(err, -EINVAL, name, p - name, "invalid blob name: empty component ('//')");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return ccr_err_set(err, -EINVAL, name, p - name, "invalid blob name: '%.*s' component", (int)n,
                               p);
        if (first && n == 4 && memcmp(p, ".ccr", 4) == 0)
            return ccr_err_set(err, -EINVAL, name, 0,
                               "invalid blob name: '.ccr' is reserved for the local store's staging area");
        first = false;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

/*
 * Makes path absolute (against the current directory) and normalizes it lexically. Returns a
 * ccr_malloc'd string or NULL with *rc set.
 */
static char *abs_normalize(const char *path, int *rc)
{
    char *cwd = NULL;
    if (path[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (!cwd) {
            *rc = -errno;
            return NULL;
        }
    }
    size_t cap = (cwd ? strlen(cwd) : 0) + strlen(path) + 3;
    char *joined = ccr_malloc(cap);
    char *out = ccr_malloc(cap);
    if (!joined || !out) {
        free(cwd);
        ccr_free(joined);
        ccr_free(out);
        *rc = -ENOMEM;
        return NULL;
    }
    if (cwd)
        snprintf(joined, cap, "%s/%s", cwd, path);
    else
        snprintf(joined, cap, "%s", path);
    free(cwd);

    /* Walk the components, keeping a stack in out. */
    size_t o = 0;
    const char *p = joined;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            /* skip */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* drop the '/' too */
        } else {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    ccr_free(joined);
    return out;
}

/* scheme://... ? Returns the scheme length, or 0 for a plain path. */
static size_t url_scheme_len(const char *url)
{
    size_t i = 0;
    if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
        return 0;
    while (url[i] && url[i] != ':' && url[i] != '/') {
        char c = url[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                  c == '-' || c == '.';
        if (!ok)
            return 0;
        i++;
    }
    if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/')
        return i;
    return 0;
}

/* Wraps s in the fault injector when CCR_STORE_FAULTS is set (tests only). */
static int maybe_fault(struct ccr_store **s, struct ccr_err *err)
{
    const char *faults = getenv("CCR_STORE_FAULTS");
    if (!faults || !faults[0])
        return 0;
    struct ccr_store *w = NULL;
    int rc = ccr_fault_wrap(*s, faults, &w, err);
    if (rc < 0) {
        (*s)->ops->destroy(*s);
        return rc;
    }
    *s = w;
    return 0;
}

int ccr_store_open(const char *url, struct ccr_store **out, struct ccr_err *err)
{
    return ccr_store_open_opts(url, NULL, out, err);
}

unsigned ccr_store_parallelism(const struct ccr_store *s)
{
    return s && s->ops->parallelism ? s->ops->parallelism(s) : 0;
}

void ccr_store_get_stats(const struct ccr_store *s, struct ccr_store_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (s && s->ops->stats)
        s->ops->stats(s, out);
}

unsigned ccr_store_concurrency_now(const struct ccr_store *s)
{
    return s && s->ops->concurrency_now ? s->ops->concurrency_now(s) : ccr_store_parallelism(s);
}

int ccr_store_open_opts(const char *url, const struct ccr_store_opts *opts, struct ccr_store **out,
                        struct ccr_err *err)
{
    if (!url || !url[0] || !out)
        return ccr_err_set(err, -EINVAL, url ? url : "", -1, "no store URL given");
    size_t sl = url_scheme_len(url);
    const char *path = url;
    if (sl > 0) {
        if ((sl == 4 && strncasecmp(url, "http", 4) == 0) || (sl == 5 && strncasecmp(url, "https", 5) == 0) ||
            (sl == 2 && strncasecmp(url, "az", 2) == 0)) {
            struct ccr_store *s = NULL;
            int rc = ccr_azure_open(url, opts, &s, err);
            if (rc == 0)
                rc = maybe_fault(&s, err);
            if (rc == 0)
                *out = s;
            return rc;
        }
        if (sl == 4 && strncasecmp(url, "file", 4) == 0) {
            path = url + 7;
            if (strncmp(path, "localhost/", 10) == 0)
                path += 9;
            if (path[0] != '/')
                return ccr_err_set(err, -EINVAL, url, -1,
                                   "a file:// URL needs an absolute path (file:///abs/path)");
        } else {
            return ccr_err_set(err, -EPROTONOSUPPORT, url, -1,
                               "unsupported URL scheme '%.*s': use https:// or http:// (Azure Blob), az:// "
                               "(Azure, from $AZURE_STORAGE_CONNECTION_STRING), file:// or a plain path",
                               (int)sl, url);
        }
    }
    int rc = 0;
    char *root = abs_normalize(path, &rc);
    if (!root)
        return ccr_err_set(err, rc, url, -1, "cannot make the store path absolute: %s",
                           ccr_blob_strerror(-rc));
    struct ccr_store *s = NULL;
    rc = ccr_local_open(root, &s, err);
    ccr_free(root);
    if (rc < 0)
        return rc;
    rc = maybe_fault(&s, err);
    if (rc < 0)
        return rc;
    *out = s;
    return 0;
}

void ccr_store_close(struct ccr_store *s)
{
    if (s)
        s->ops->destroy(s);
}

const char *ccr_store_url(const struct ccr_store *s)
{
    return s ? s->url : "";
}

int ccr_store_create_container(struct ccr_store *s, bool *out_created, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, "", -1, "no store");
    return s->ops->create_container(s, out_created, err);
}

int ccr_store_put_block(struct ccr_store *s, const char *blob, uint64_t index, const void *data, size_t len,
                        struct ccr_err *err)
{
    return ccr_store_put_block_at(s, blob, index, CCR_BLOCK_OFFSET_UNKNOWN, data, len, err);
}

int ccr_store_put_block_at(struct ccr_store *s, const char *blob, uint64_t index, uint64_t offset,
                           const void *data, size_t len, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    if (index >= CCR_MAX_BLOCKS)
        return ccr_err_set(err, -EINVAL, blob, -1,
                           "block index %llu is beyond the limit of %u blocks per blob",
                           (unsigned long long)index, CCR_MAX_BLOCKS);
    if (len > 0 && !data)
        return ccr_err_set(err, -EINVAL, blob, -1, "no data for block %llu", (unsigned long long)index);
    if (offset != CCR_BLOCK_OFFSET_UNKNOWN && len > UINT64_MAX - offset)
        return ccr_err_set(err, -EINVAL, blob, -1, "block %llu: offset %llu + length overflows",
                           (unsigned long long)index, (unsigned long long)offset);
    return s->ops->put_block(s, blob, index, offset, data, len, err);
}

int ccr_store_commit_blocks(struct ccr_store *s, const char *blob, uint64_t n_blocks,
                            struct ccr_blob_props *out_props, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    if (n_blocks > CCR_MAX_BLOCKS)
        return ccr_err_set(err, -EINVAL, blob, -1, "%llu blocks is beyond the limit of %u blocks per blob",
                           (unsigned long long)n_blocks, CCR_MAX_BLOCKS);
    return s->ops->commit_blocks(s, blob, n_blocks, out_props, err);
}

int ccr_store_put_blob(struct ccr_store *s, const char *blob, const void *data, size_t len,
                       struct ccr_blob_props *out_props, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    if (len > 0 && !data)
        return ccr_err_set(err, -EINVAL, blob, -1, "no data");
    return s->ops->put_blob(s, blob, data, len, out_props, err);
}

ssize_t ccr_store_get(struct ccr_store *s, const char *blob, uint64_t offset, void *buf, size_t len,
                      const char *if_match, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    if (len > 0 && !buf)
        return ccr_err_set(err, -EINVAL, blob, -1, "no buffer");
    if (len > (size_t)SSIZE_MAX)
        len = (size_t)SSIZE_MAX;
    return s->ops->get(s, blob, offset, buf, len, if_match, err);
}

int ccr_store_props(struct ccr_store *s, const char *blob, struct ccr_blob_props *out, struct ccr_err *err)
{
    if (!s || !out)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store or no output");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    return s->ops->props(s, blob, out, err);
}

int ccr_store_delete(struct ccr_store *s, const char *blob, struct ccr_err *err)
{
    if (!s)
        return ccr_err_set(err, -EINVAL, blob, -1, "no store");
    int rc = ccr_blob_name_check(blob, err);
    if (rc < 0)
        return rc;
    return s->ops->del(s, blob, err);
}

int ccr_store_list(struct ccr_store *s, const char *prefix, const char *delimiter, const char *marker,
                   size_t max_results, struct ccr_blob_page *out, struct ccr_err *err)
{
    if (!s || !out)
        return ccr_err_set(err, -EINVAL, "", -1, "no store or no output page");
    if (!prefix)
        prefix = "";
    if (!delimiter)
        delimiter = "";
    if (strlen(prefix) > CCR_BLOB_NAME_MAX)
        return ccr_err_set(err, -EINVAL, prefix, -1, "listing prefix longer than %d bytes",
                           CCR_BLOB_NAME_MAX);
    if (marker && !marker[0])
        marker = NULL;
    if (max_results == 0)
        max_results = CCR_LIST_DEFAULT_MAX;
    return s->ops->list(s, prefix, delimiter, marker, max_results, out, err);
}

void ccr_blob_page_fini(struct ccr_blob_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        ccr_free(p->items[i].name);
    ccr_free(p->items);
    ccr_free(p->next_marker);
    p->items = NULL;
    p->count = 0;
    p->next_marker = NULL;
}
