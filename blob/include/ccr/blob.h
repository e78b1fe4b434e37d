/*
 * ccr/blob.h - object stores behind one interface: the embedded local store and Azure Blob.
 *
 * A struct ccr_store is one container (Azure) or one directory (local store). Its operations mirror the
 * Azure Blob REST operations the data plane needs: create container, put block, commit block list, put
 * blob, ranged get, properties, paged list, delete. Semantics every backend keeps:
 *
 * - Nothing is visible before it is committed. Blocks staged with ccr_store_put_block are invisible to
 *   get/list/props until ccr_store_commit_blocks; a commit replaces the blob's content atomically, so a
 *   reader sees the old content or the new, never a mix, and never a partly written blob.
 * - The ETag changes on every commit or put. ccr_store_get can be made conditional on it (-ESTALE).
 * - Blob names are '/'-separated relative paths (see ccr_blob_name_check); directories are only name
 *   prefixes.
 * - All functions are thread-safe on one store: many threads may put blocks of different blobs (and of
 *   the same blob) and read concurrently. Writers of the same blob at the same time are not supported
 *   (the last commit wins, as in Azure).
 *
 * Errors: negative errno, with detail in struct ccr_err (where = the blob name or the store URL; HTTP
 * status, service error code and request id for HTTP backends). -ENOENT no such blob or container;
 * -EEXIST; -EACCES; -ESTALE ETag condition failed; -ENOSPC; -EINVAL bad name or argument;
 * -EPROTONOSUPPORT a URL scheme this build does not know; -EAGAIN throttled after retries; -ETIMEDOUT.
 *
 * These calls block the calling thread. The engine calls them from its worker threads; an HTTP backend
 * runs the requests on its own lanes (threads owning a curl multi), so many callers share few
 * connections and retries happen inside the call.
 */
#ifndef CCR_BLOB_H
#define CCR_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ccr/common.h"

#define CCR_BLOB_NAME_MAX 1024 /* bytes, as Azure */
#define CCR_ETAG_MAX      80

struct ccr_store;

struct ccr_blob_props {
    uint64_t size;           /* committed size in bytes */
    char etag[CCR_ETAG_MAX]; /* opaque, NUL-terminated; changes on every commit */
    int64_t mtime_ns;        /* last modification, ns since the epoch */
};

/*
 * Opens a store by URL, without creating anything:
 *   file:///abs/path/to/container   or a plain path (absolute or relative): the local store
 *   https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX][?SAS]        Azure Blob
 *   http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX][?SAS]                   Azure-compatible (emulator)
 *   az://CONTAINER[/PREFIX]        Azure, endpoint and account from $AZURE_STORAGE_CONNECTION_STRING
 * Other schemes return -EPROTONOSUPPORT (err says which are supported). An Azure URL may carry a blob-name
 * prefix after the container: every name the store is given is then relative to it (and listings strip
 * it). Azure credentials come from the environment, first match wins: a SAS in the URL,
 * AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY (base64 account key), a bearer token (AZURE_STORAGE_TOKEN,
 * AZURE_STORAGE_TOKEN_FILE or AZURE_STORAGE_IDENTITY_ENDPOINT), the connection string's key or SAS when its
 * account is the URL's, else anonymous. *out is owned by the caller: ccr_store_close.
 */
CCR_API CCR_WUR int ccr_store_open(const char *url, struct ccr_store **out, struct ccr_err *err);

struct ccr_key;

/* One line per HTTP request (method, redacted URL, status, time, bytes, request id); never a secret. */
typedef void (*ccr_store_trace_cb)(void *cb_arg, const char *line);

/* Options of ccr_store_open_opts; zero-initialise, then set what differs from the defaults. */
struct ccr_store_opts {
    const char *ca_file;       /* HTTPS: trust this PEM bundle instead of the system store; NULL: system */
    unsigned connections;      /* HTTP: connections (requests in flight) at most; 0: 32 */
    const struct ccr_key *cpk; /* Azure: customer-provided key (server-side encryption, HTTPS only); NULL */
    ccr_store_trace_cb trace;  /* may be NULL; called from the store's own threads */
    void *trace_arg;
};

/* As ccr_store_open, with options (NULL: defaults). opts and the strings and key it points to are copied. */
CCR_API CCR_WUR int ccr_store_open_opts(const char *url, const struct ccr_store_opts *opts,
                                        struct ccr_store **out, struct ccr_err *err);

/*
 * How many calls the store wants in flight to run at full speed: 0 for a store whose calls cost CPU and
 * local I/O only (the local store: use one caller per core), else the number of requests a remote store
 * keeps in flight (its connections).
 */
CCR_API unsigned ccr_store_parallelism(const struct ccr_store *s);

/*
 * How many requests the store wants in flight right now: between 1 and ccr_store_parallelism when it
 * adapts its concurrency to the throughput it sees (Azure without --connections), else
 * ccr_store_parallelism. Callers with more threads than this park the rest, so that idle threads
 * neither read, encrypt nor hold buffers ahead of the requests they could send.
 */
CCR_API unsigned ccr_store_concurrency_now(const struct ccr_store *s);

/* Request counters since the store was opened (zero for stores that send no requests). */
struct ccr_store_stats {
    uint64_t requests; /* attempts sent, retries included */
    uint64_t retries;  /* attempts that repeated an earlier one (throttling, resets, stalls, 5xx) */
    uint64_t failures; /* requests that failed for good (after their retries) */
};
CCR_API void ccr_store_get_stats(const struct ccr_store *s, struct ccr_store_stats *out);
CCR_API void ccr_store_close(struct ccr_store *s); /* accepts NULL */

/* The store's canonical URL (e.g. file:///abs/path), owned by s. */
CCR_API const char *ccr_store_url(const struct ccr_store *s);

/*
 * Creates the container. *out_created (may be NULL) says whether it was created now (false: it existed,
 * which is not an error).
 */
CCR_API CCR_WUR int ccr_store_create_container(struct ccr_store *s, bool *out_created, struct ccr_err *err);

/*
 * Stages block `index` of blob (len bytes, len may be 0). Re-staging an index replaces that block.
 * Indices need not arrive in order. The data is copied before return (caller keeps its buffer).
 * Up to 50,000 blocks per blob (as Azure).
 */
CCR_API CCR_WUR int ccr_store_put_block(struct ccr_store *s, const char *blob, uint64_t index,
                                        const void *data, size_t len, struct ccr_err *err);

/* Offset value meaning "unknown" for ccr_store_put_block_at. */
#define CCR_BLOCK_OFFSET_UNKNOWN UINT64_MAX

/*
 * As ccr_store_put_block, with the byte offset the block will have in the committed blob when the caller
 * knows it (CCR_BLOCK_OFFSET_UNKNOWN otherwise). It is only a placement hint: the blob's content is still
 * decided by the commit's block order. Backends may use it to put the bytes where they belong at once:
 * the local store then commits contiguous placed blocks without copying them; Azure ignores it.
 */
CCR_API CCR_WUR int ccr_store_put_block_at(struct ccr_store *s, const char *blob, uint64_t index,
                                           uint64_t offset, const void *data, size_t len,
                                           struct ccr_err *err);

/* A size a backend cannot tell without another request. */
#define CCR_SIZE_UNKNOWN UINT64_MAX

/*
 * Commits blocks 0 .. n_blocks - 1, in index order, as the blob's whole content, atomically replacing any
 * previous content; then discards every staged block of that blob. n_blocks 0 commits an empty blob.
 * -EINVAL (err names the index) if a block in the range was never staged. out_props (may be NULL)
 * receives the committed blob's ETag and time, and its size, or CCR_SIZE_UNKNOWN where the service does
 * not return it (Azure: ask ccr_store_props if you need it).
 */
CCR_API CCR_WUR int ccr_store_commit_blocks(struct ccr_store *s, const char *blob, uint64_t n_blocks,
                                            struct ccr_blob_props *out_props, struct ccr_err *err);

/* Writes a whole blob in one call (small objects), atomically, like a one-block commit. */
CCR_API CCR_WUR int ccr_store_put_blob(struct ccr_store *s, const char *blob, const void *data, size_t len,
                                       struct ccr_blob_props *out_props, struct ccr_err *err);

/*
 * Reads up to len bytes from offset into buf. Returns the number of bytes read: len, or fewer only when
 * the blob ends first (0 at or past the end). if_match (may be NULL) is an ETag: if the blob's current
 * ETag differs, returns -ESTALE and reads nothing.
 */
CCR_API CCR_WUR ssize_t ccr_store_get(struct ccr_store *s, const char *blob, uint64_t offset, void *buf,
                                      size_t len, const char *if_match, struct ccr_err *err);

CCR_API CCR_WUR int ccr_store_props(struct ccr_store *s, const char *blob, struct ccr_blob_props *out,
                                    struct ccr_err *err);

/* Deletes a committed blob (and any blocks staged for it). -ENOENT if there is none. */
CCR_API CCR_WUR int ccr_store_delete(struct ccr_store *s, const char *blob, struct ccr_err *err);

/* One listing entry: a blob, or (with a delimiter) a common prefix ending in the delimiter. */
struct ccr_blob_item {
    char *name;
    bool is_prefix; /* props are zero for prefixes */
    struct ccr_blob_props props;
};

/* One page of a listing. Owned by the caller after ccr_store_list: ccr_blob_page_fini. */
struct ccr_blob_page {
    struct ccr_blob_item *items;
    size_t count;
    char *next_marker; /* NULL when this is the last page; else pass it as `marker` for the next */
};

/*
 * Lists committed blobs whose names start with prefix (NULL or "" for all), in byte-wise name order,
 * at most max_results (0 = backend default, 5,000) per page, starting after `marker` (NULL for the first
 * page). With a delimiter (e.g. "/"), names containing the delimiter after the prefix are rolled up into
 * one prefix item each, as Azure does.
 */
CCR_API CCR_WUR int ccr_store_list(struct ccr_store *s, const char *prefix, const char *delimiter,
                                   const char *marker, size_t max_results, struct ccr_blob_page *out,
                                   struct ccr_err *err);

CCR_API void ccr_blob_page_fini(struct ccr_blob_page *p); /* accepts NULL and zeroed pages */

/*
 * Checks a blob name: 1..1024 bytes, no leading or trailing '/', no empty, "." or ".." components, no
 * control characters, and not inside the names a backend reserves (the local store reserves a first
 * component of ".ccr"). -EINVAL with err saying what is wrong.
 */
CCR_API CCR_WUR int ccr_blob_name_check(const char *name, struct ccr_err *err);

#endif
