/*
 * ccr/codec.h - the file codec: encrypt or decrypt a file or a directory tree, and inspect/verify one
 * encrypted file, in parallel and in constant memory.
 *
 * How it works. Both formats put region (chunk) i at a fixed offset on both sides, so every file is cut
 * into independent work units of whole regions: about 2 MiB of plaintext each; a larger ccr1 region or a
 * cleanroom-cse chunk of 2 MiB or more makes one unit by itself. N worker threads, each with its own
 * AES-GCM context and one reusable buffer, claim units across all files in flight, read the unit with
 * one preadv, seal or open it in place and write it with one pwrite(v) at its output offset. Memory is
 * therefore threads x one unit (2 MiB by default; 16 MiB for cleanroom-cse's default chunk, up to 1 GiB
 * for its largest), whatever the size or number of files. Small files are processed whole by one
 * worker each, many at a time.
 *
 * Output files are atomic: each is written to `.NAME.ccr-tmp-XXXXXX` (mode 0600) in the destination's
 * directory, sized first, fsync'ed, given its final permission bits and renamed over NAME (without
 * `force`, with RENAME_NOREPLACE, so a NAME that appeared meanwhile is not clobbered). Any failure,
 * including cancellation, unlinks the temporary file: no partial output is ever visible under NAME.
 * Permission bits of an output file: those of its source file, limited to 0666 and to the process
 * umask (read once when the operation starts). Directories created in tree mode get 0777 & ~umask.
 *
 * Errors (negative errno, with detail in struct ccr_err): -ENOENT/-EACCES/-EISDIR/-ENOTDIR/-ENOSPC/-EIO
 * as reported by the system (err names the file and the step); -EEXIST the destination exists and
 * force is off; -EBADMSG authentication or format failure (tampered, truncated or extended data, bad
 * header, malformed size, non-zero cleanroom-cse padding, a region size that does not match), with
 * err->offset the stored byte offset of the failing region; -ENOKEY a ccr1 file written under another
 * key (err says both key ids); -ECANCELED the cancel flag was raised; -EINVAL bad options; -ENOMEM.
 */
#ifndef CCR_CODEC_H
#define CCR_CODEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccr/common.h"
#include "ccr/crypto.h"
#include "ccr/dataplane.h"

enum ccr_codec_op {
    CCR_CODEC_ENCRYPT = 0,
    CCR_CODEC_DECRYPT = 1,
};

struct ccr_codec_opts {
    enum ccr_mode mode; /* CCR_MODE_CCR1 or CCR_MODE_CSE (others: -EINVAL) */
    /*
     * ccr1: region size R (power of two, 4 KiB..16 MiB). Encrypt: 0 = 1 MiB. Decrypt: 0 = take it from
     * each file's header; non-zero = must equal the header's, else that file fails with -EBADMSG naming
     * both sizes. cleanroom-cse: chunk size B (16 bytes..1 GiB), 0 = 16 MiB, both directions.
     */
    uint64_t region_size;
    unsigned threads; /* worker threads; 0 = the number of online CPUs */
    bool force;       /* replace an existing destination file; write into an existing destination dir */
    /* Polled between work units; non-zero makes the run stop, clean up and return -ECANCELED. May be
     * NULL. Typically set from a signal handler (atomic_int is lock-free, so that is safe). */
    const atomic_int *cancel;
    ccr_progress_cb progress; /* may be NULL; see ccr_progress_cb */
    void *progress_arg;
};

/* Sets the defaults: ccr1, default region size, all CPUs, no force, no cancel flag, no progress. */
CCR_API void ccr_codec_opts_init(struct ccr_codec_opts *o);

/* One file that failed: its source path and what went wrong. */
struct ccr_codec_failure {
    char *path;     /* the source file (owned by the result) */
    int64_t region; /* authentication failures: the failing region (cse: chunk) index; else -1 */
    struct ccr_err err;
};

struct ccr_codec_result {
    uint64_t files;     /* files written successfully */
    uint64_t errors;    /* files that failed (each is in failed[]) */
    uint64_t skipped;   /* tree mode: symlinks and special files skipped (each logged as a warning) */
    uint64_t dirs;      /* tree mode: directories created or reused in the destination */
    uint64_t bytes_in;  /* bytes read from the files written successfully */
    uint64_t bytes_out; /* bytes written to them */
    double seconds;     /* wall time of the whole operation */
    struct ccr_codec_failure *failed; /* errors entries, in the order they happened; owned */
};

/* Frees what a result owns and zeroes it. r may be NULL. */
CCR_API void ccr_codec_result_fini(struct ccr_codec_result *r);

/*
 * Encrypts (op = CCR_CODEC_ENCRYPT) or decrypts src into dst under key.
 *
 * src a regular file: dst is the output file; an existing dst is refused (-EEXIST) unless opts->force.
 * src a directory: dst is a directory that receives the same relative paths. Regular files are
 * processed (empty ones too), directories are recreated (empty ones too), symlinks and special files
 * are skipped with a CCR_LOG_WARN message, and so are temporary files an interrupted (killed) run left
 * behind (`.NAME.ccr-tmp-XXXXXX`). An existing dst (even empty) is refused unless opts->force,
 * in which case files are written into it, replacing same-named files. dst may not lie inside src.
 * Every file is attempted; the ones that fail are listed in result->failed and leave nothing behind;
 * the ones that succeed stay. A source file whose size or mtime changes while it is being encrypted
 * fails (-EIO): its blob would match neither version.
 *
 * result (required) is initialised by the call and filled whatever it returns; release it with
 * ccr_codec_result_fini. err (may be NULL) receives the failure that decided the return value.
 * Returns 0 when every file succeeded; -ECANCELED when cancelled (nothing partial left; finished
 * files of a tree stay); otherwise the most severe file error (-EBADMSG before any other) or the error
 * that stopped the run before any file (src missing, dst exists, bad options...).
 */
CCR_API CCR_WUR int ccr_codec_run(enum ccr_codec_op op, const struct ccr_key *key, const char *src,
                                  const char *dst, const struct ccr_codec_opts *opts,
                                  struct ccr_codec_result *result, struct ccr_err *err);

/* ===================================================================================================== */
/* Inspect / verify one encrypted file                                                                    */
/* ===================================================================================================== */

struct ccr_inspect_opts {
    enum ccr_mode mode;       /* CCR_MODE_AUTO (default), CCR_MODE_CCR1 or CCR_MODE_CSE */
    uint64_t region_size;     /* ccr1: 0 or must match the header; cse: chunk size, 0 = 16 MiB */
    unsigned threads;         /* for authenticating with a key; 0 = online CPUs */
    const atomic_int *cancel; /* as in struct ccr_codec_opts */
    ccr_progress_cb progress; /* as in struct ccr_codec_opts; only called while authenticating */
    void *progress_arg;
};

CCR_API void ccr_inspect_opts_init(struct ccr_inspect_opts *o);

/* What inspect found. Tri-state fields: -1 not applicable or not checked, 0 false, 1 true. */
struct ccr_inspect {
    enum ccr_mode mode; /* the mode detected or given (cleanroom-cse when nothing fits) */
    uint64_t blob_size; /* size of the file */
    bool plain_known;   /* plaintext_size and regions are valid */
    uint64_t plaintext_size;
    uint64_t regions;     /* ccr1 regions / cse chunks */
    uint64_t region_size; /* ccr1 R from the header, cse B used; 0 if unknown */
    bool has_key_id;      /* ccr1: key_id holds the header's key id */
    uint8_t key_id[CCR_KEY_ID_LEN];
    int key_matches; /* ccr1 with a key: does the key id match; else -1 */
    /* with a key: 1 every region verified; 0 a region failed or the file is malformed (-EBADMSG);
     * -1 no key, a ccr1 key that does not match, or an I/O error */
    int authenticated;
    int64_t failed_region; /* the region/chunk that failed to authenticate, -1 if none */
    struct ccr_err err;    /* code 0 when well-formed and (with a key) authenticated */
};

/*
 * Reads path's size and header and, when key is non-NULL, authenticates every region with the parallel
 * pipeline (reading, never writing). info (required) is filled with everything learnt, even on failure;
 * info->err holds the failure. Returns 0 if the file is well-formed and (with a key) authenticates,
 * -EBADMSG malformed or failed authentication, -ENOKEY ccr1 file under another key, -ECANCELED, or a
 * system error reading the file.
 */
CCR_API CCR_WUR int ccr_codec_inspect(const char *path, const struct ccr_key *key,
                                      const struct ccr_inspect_opts *opts, struct ccr_inspect *info);

#endif
