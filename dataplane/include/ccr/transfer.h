/*
 * ccr/transfer.h - the transfer engine: publish a local tree into a datastore, download it back, verify
 * it in place, list it with plaintext sizes.
 *
 * Publish. Walk the source tree (sorted; regular files; symlinks followed only with follow_symlinks,
 * special files skipped with a warning) -> select this shard's files -> skip files the resume journal
 * records as already published with the same size and mtime -> cut each file into transfer units of
 * whole regions -> read, seal in place on the worker threads -> put each unit as a block -> commit the
 * block list when the file's units are all stored -> append the file to the journal. Small files
 * (one unit) go as a single put. Many files are in flight at once; every worker has its own AES context
 * and buffers drawn from the memory budget. A source file whose size or mtime changes while it is read
 * fails and is reported: its blob is never committed.
 *
 * Download. List the prefix (one paged listing) -> per blob, plan ranged gets per transfer unit -> open
 * (authenticate + decrypt) every region -> write at its plaintext offset into a temporary file in the
 * destination directory -> fsync and rename only when the whole file verified. Files that the journal
 * (or the destination) shows complete with the blob's ETag and size are skipped on a re-run.
 *
 * Verify. As download, authenticating every region, writing nothing.
 *
 * Blob names: the file's path relative to the source root, '/'-separated, under `prefix` when given
 * ("p" and "p/" both mean blob names "p/<rel>"). File names are not encrypted in any mode.
 *
 * Resume and nonce safety: a file is the unit of resume. A file interrupted mid-way is published again
 * from its start under a fresh salt (ccr1), never by re-sealing some regions under the old salt: if the
 * file changed without its mtime changing, that would reuse (key, nonce) pairs with different plaintext.
 *
 * Memory: payload buffers come from one budget (opts.memory, default 512 MiB); the engine never holds
 * more, whatever the number or size of files. Threads x transfer unit must fit in it (-EINVAL if even
 * one unit per thread does not).
 *
 * Errors as in ccr/codec.h and ccr/blob.h; per-file failures are collected in the result and the run
 * goes on with the other files.
 */
#ifndef CCR_TRANSFER_H
#define CCR_TRANSFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccr/blob.h"
#include "ccr/codec.h"
#include "ccr/crypto.h"
#include "ccr/datastore.h"

#define CCR_MEMORY_DEFAULT ((uint64_t)512 << 20)

struct ccr_transfer_opts {
    const char *prefix;       /* blob name prefix; NULL or "" for none */
    unsigned threads;         /* worker threads; 0 = online CPUs */
    uint64_t memory;          /* payload memory budget in bytes; 0 = CCR_MEMORY_DEFAULT */
    uint64_t unit_size;       /* plaintext bytes per transfer unit (whole regions); 0 = engine default */
    unsigned shard_index;     /* publish: with shard_count > 1, only files whose shard is shard_index */
    unsigned shard_count;     /* 0 or 1: all files */
    bool follow_symlinks;     /* publish: follow symlinks to regular files instead of skipping them */
    bool force;               /* download: replace existing destination files that differ */
    const char *journal_dir;  /* resume journals; NULL = $XDG_STATE_HOME/ccr/journal (or ~/.local/state) */
    bool no_journal;          /* neither read nor write a journal */
    const atomic_int *cancel; /* polled between units; non-zero -> stop, clean up, -ECANCELED */
    ccr_progress_cb progress; /* may be NULL */
    void *progress_arg;
};

/* Defaults: no prefix, all CPUs, 512 MiB, default unit, all shards, journal on. */
CCR_API void ccr_transfer_opts_init(struct ccr_transfer_opts *o);

struct ccr_transfer_result {
    uint64_t files;     /* files published / downloaded / verified now */
    uint64_t resumed;   /* files skipped because the journal shows them complete */
    uint64_t skipped;   /* symlinks and special files skipped; other shards' files are not counted */
    uint64_t errors;    /* files that failed (each in failed[]) */
    uint64_t bytes_in;  /* bytes read (plaintext for publish, stored bytes for download/verify) */
    uint64_t bytes_out; /* bytes written (stored bytes for publish, plaintext for download; 0 verify) */
    double seconds;
    unsigned threads; /* worker threads that ran: never more than the transfer units or the budget allows */
    struct ccr_codec_failure *failed; /* path = source file (publish) or blob name; owned */
};

CCR_API void ccr_transfer_result_fini(struct ccr_transfer_result *r); /* accepts NULL */

/*
 * Which shard (0..count-1) a relative path belongs to: a stable hash of the path (FNV-1a 64 of its
 * bytes) modulo count. The same on every machine and every run, so N copies of `upload --shard I/N`
 * publish disjoint sets whose union is the whole tree.
 */
CCR_API unsigned ccr_shard_of(const char *rel_path, unsigned count);

/* Publishes the tree (or single file) at src into store under ds's mode and key (NULL for mode none). */
CCR_API CCR_WUR int ccr_publish(struct ccr_store *store, const struct ccr_datastore *ds,
                                const struct ccr_key *key, const char *src,
                                const struct ccr_transfer_opts *opts, struct ccr_transfer_result *result,
                                struct ccr_err *err);

/*
 * Downloads every blob under opts->prefix into directory dst (created if missing), at the blob's name
 * relative to the prefix.
 */
CCR_API CCR_WUR int ccr_download(struct ccr_store *store, const struct ccr_datastore *ds,
                                 const struct ccr_key *key, const char *dst,
                                 const struct ccr_transfer_opts *opts, struct ccr_transfer_result *result,
                                 struct ccr_err *err);

/* Authenticates every region of every blob under opts->prefix; writes nothing. */
CCR_API CCR_WUR int ccr_verify(struct ccr_store *store, const struct ccr_datastore *ds,
                               const struct ccr_key *key, const struct ccr_transfer_opts *opts,
                               struct ccr_transfer_result *result, struct ccr_err *err);

/*
 * The plaintext size of a blob of a datastore, without reading it for ccr1 (its size and the datastore's
 * region size) and none; cleanroom-cse reads the 8-byte trailer (one small ranged get). -EBADMSG if the
 * size fits no layout.
 */
CCR_API CCR_WUR int ccr_blob_plain_size(struct ccr_store *store, const struct ccr_datastore *ds,
                                        const char *blob, const struct ccr_blob_props *props,
                                        uint64_t *out_plain, struct ccr_err *err);

#endif
