/*
 * blob_int.h - private to blob/: the operations table every backend fills, and the backends' constructors.
 *
 * store.c owns the public API: it parses URLs, picks a backend, validates blob names and arguments, and
 * then calls s->ops->op. A backend therefore never sees an invalid name or a NULL required pointer, and
 * it reports failures with ccr_err_set (where = the blob name, or the store URL for container-level
 * operations). The Azure backend plugs in beside the local one by providing another table and a
 * constructor, and one branch in store.c's URL dispatch.
 */
#ifndef CCR_BLOB_INT_H
#define CCR_BLOB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ccr/blob.h"
#include "ccr/common.h"

#define CCR_LIST_DEFAULT_MAX 5000

/* One entry per operation of ccr/blob.h; the same contracts, names already checked. */
struct ccr_store_ops {
    const char *scheme;                   /* "file", "fault", "https" */
    void (*destroy)(struct ccr_store *s); /* frees the backend state and s itself */
    int (*create_container)(struct ccr_store *s, bool *out_created, struct ccr_err *err);
    /* offset: the block's byte offset in the committed blob, or CCR_BLOCK_OFFSET_UNKNOWN (a hint). */
    int (*put_block)(struct ccr_store *s, const char *blob, uint64_t index, uint64_t offset, const void *data,
                     size_t len, struct ccr_err *err);
    int (*commit_blocks)(struct ccr_store *s, const char *blob, uint64_t n_blocks,
                         struct ccr_blob_props *out_props, struct ccr_err *err);
    int (*put_blob)(struct ccr_store *s, const char *blob, const void *data, size_t len,
                    struct ccr_blob_props *out_props, struct ccr_err *err);
    ssize_t (*get)(struct ccr_store *s, const char *blob, uint64_t offset, void *buf, size_t len,
                   const char *if_match, struct ccr_err *err);
    int (*props)(struct ccr_store *s, const char *blob, struct ccr_blob_props *out, struct ccr_err *err);
    int (*del)(struct ccr_store *s, const char *blob, struct ccr_err *err);
    /* prefix and delimiter are never NULL here ("" for none); marker may be NULL; max_results > 0. */
    int (*list)(struct ccr_store *s, const char *prefix, const char *delimiter, const char *marker,
                size_t max_results, struct ccr_blob_page *out, struct ccr_err *err);
    /* ccr_store_parallelism; NULL means 0 (CPU-bound). */
    unsigned (*parallelism)(const struct ccr_store *s);
    /* ccr_store_concurrency_now; NULL means parallelism. */
    unsigned (*concurrency_now)(const struct ccr_store *s);
    /* ccr_store_get_stats (out is zeroed first); NULL: all zero. */
    void (*stats)(const struct ccr_store *s, struct ccr_store_stats *out);
};

/* The common head of every store; backends allocate it (alone or inside a larger struct). */
struct ccr_store {
    const struct ccr_store_ops *ops;
    char *url;  /* canonical URL, owned (ccr_malloc) */
    void *impl; /* backend state */
};

#define CCR_MAX_BLOCKS 50000u

/* local.c: opens the local store rooted at the absolute, normalized directory path `root`. */
int ccr_local_open(const char *root, struct ccr_store **out, struct ccr_err *err);

/* azure.c: opens an Azure Blob store (URL forms and credentials: ccr/blob.h); opts may be NULL. */
int ccr_azure_open(const char *url, const struct ccr_store_opts *opts, struct ccr_store **out,
                   struct ccr_err *err);

/*
 * fault.c: wraps inner according to spec (see fault.c). On success *out owns inner; on failure inner is
 * untouched and still owned by the caller.
 */
int ccr_fault_wrap(struct ccr_store *inner, const char *spec, struct ccr_store **out, struct ccr_err *err);

/* store.c: helpers shared by backends. */
const char *ccr_blob_strerror(int errnum); /* thread-safe, never NULL */
char *ccr_blob_strdup(const char *s);      /* ccr_malloc'd copy, NULL on OOM */

#endif
