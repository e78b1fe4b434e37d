/*
 * ccr/dataplane.h - what every front end of the engine shares: version strings, encryption modes, option
 * value parsing (sizes), the log sink and the progress callback.
 *
 * The library never prints. A front end installs a log sink with ccr_log_set(); the library checks the
 * level before formatting anything, so disabled levels cost one comparison.
 *
 * Conventions as in ccr/common.h: fallible functions return 0 or a negative errno; out_* parameters are
 * written only on success; pointer arguments are borrowed for the call.
 */
#ifndef CCR_DATAPLANE_H
#define CCR_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"

/* "0.1.0": the project version. Static storage. */
CCR_API const char *ccr_version(void);

/* The OpenSSL library version in use at run time ("OpenSSL 3.0.x 1 Jan 2024"). Static storage. */
CCR_API const char *ccr_openssl_version(void);

/* ===================================================================================================== */
/* Encryption modes (see docs/format.md)                                                                  */
/* ===================================================================================================== */

enum ccr_mode {
    CCR_MODE_CCR1 = 0, /* the native streaming AEAD format (default) */
    CCR_MODE_CSE,      /* cleanroom-cse: byte-compatible with the clean room platform's encryptor */
    CCR_MODE_NONE,     /* no client-side encryption */
    CCR_MODE_CPK,      /* customer-provided key, server-side (reserved: not a file codec) */
    CCR_MODE_AUTO,     /* inspect only: detect from the blob (header magic, else cleanroom-cse) */
};

/*
 * Parses a mode name: "ccr1", "cleanroom-cse", "none", "cpk" (exact, lower case). "auto" is not accepted
 * here: callers that allow detection default to CCR_MODE_AUTO themselves. -EINVAL for anything else.
 */
CCR_API CCR_WUR int ccr_mode_parse(const char *s, enum ccr_mode *out_mode);

/* The canonical name of a mode ("ccr1", "cleanroom-cse", "none", "cpk", "auto"); "?" if out of range. */
CCR_API const char *ccr_mode_name(enum ccr_mode m);

/* ===================================================================================================== */
/* Region / chunk sizes                                                                                   */
/* ===================================================================================================== */

#define CCR_CCR1_REGION_DEFAULT ((uint64_t)1 << 20)  /* 1 MiB */
#define CCR_CCR1_REGION_MIN     ((uint64_t)1 << 12)  /* 4 KiB */
#define CCR_CCR1_REGION_MAX     ((uint64_t)1 << 24)  /* 16 MiB */
#define CCR_CSE_CHUNK_DEFAULT64 ((uint64_t)16 << 20) /* 16 MiB, the platform's fixed chunk size */

/*
 * Parses a byte size: decimal digits, optionally followed by a binary suffix K, M, G, T (also KiB, MiB,
 * GiB, TiB; case-insensitive; and a plain "B" for bytes), meaning 2^10, 2^20, 2^30, 2^40. "MB" and the
 * like are refused (ambiguous: some read them as powers of ten).
 * No sign, no spaces, no fraction. -EINVAL for junk or an empty string, -ERANGE when the value does
 * not fit in 64 bits.
 */
CCR_API CCR_WUR int ccr_parse_size(const char *s, uint64_t *out_bytes);

/*
 * Checks a region (ccr1) or chunk (cleanroom-cse) size for a mode. ccr1: a power of two from 4 KiB to
 * 16 MiB. cleanroom-cse: 16 bytes to 1 GiB. 0 means "the default" and is always valid. Returns 0 or
 * -EINVAL; why (may be NULL, why_len bytes) receives a sentence saying what is allowed.
 */
CCR_API CCR_WUR int ccr_region_size_check(enum ccr_mode mode, uint64_t size, char *why, size_t why_len);

/* The default region/chunk size of a mode (1 MiB for ccr1, 16 MiB for cleanroom-cse, 0 otherwise). */
CCR_API uint64_t ccr_region_size_default(enum ccr_mode mode);

/* ===================================================================================================== */
/* Small files (keys, PEM, wrapped keys)                                                                  */
/* ===================================================================================================== */

/*
 * Reads a whole regular file of at most max bytes into a NUL-terminated buffer. *out_buf is owned by the
 * caller (ccr_free; wipe it first if it held a secret). Errors: the open/read errno, -EISDIR,
 * -EFBIG when larger than max; err names the file.
 */
CCR_API CCR_WUR int ccr_file_read_all(const char *path, size_t max, char **out_buf, size_t *out_len,
                                      struct ccr_err *err);

/*
 * Writes len bytes to path atomically: a temporary file in the same directory (created 0600), fsync,
 * permission bits `mode`, then rename. Without overwrite an existing path is refused with -EEXIST (also
 * one that appears while writing: RENAME_NOREPLACE). Nothing is left behind on failure.
 */
CCR_API CCR_WUR int ccr_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                                          bool overwrite, struct ccr_err *err);

/* ===================================================================================================== */
/* Log sink                                                                                               */
/* ===================================================================================================== */

enum ccr_log_level {
    CCR_LOG_ERROR = 0,
    CCR_LOG_WARN = 1,
    CCR_LOG_INFO = 2,
    CCR_LOG_DEBUG = 3,
};

/*
 * Receives one formatted message (no trailing newline). Called from whichever thread logs, possibly
 * several at once: the sink must be thread-safe. msg is borrowed for the call.
 */
typedef void (*ccr_log_cb)(void *cb_arg, enum ccr_log_level level, const char *msg);

/*
 * Installs the process-wide sink and the most verbose level it wants (messages above max_level are not
 * even formatted). cb NULL silences the library (the default). Call it before starting work: it is not
 * synchronised with threads that are logging.
 */
CCR_API void ccr_log_set(ccr_log_cb cb, void *cb_arg, enum ccr_log_level max_level);

/* True if a message at level would reach a sink. */
CCR_API bool ccr_log_enabled(enum ccr_log_level level);

/* Formats and delivers a message if its level is enabled (messages longer than 2 KiB are cut). */
CCR_API void ccr_log(enum ccr_log_level level, const char *fmt, ...) CCR_PRINTF(2, 3);

/* ===================================================================================================== */
/* Progress                                                                                               */
/* ===================================================================================================== */

struct ccr_progress {
    uint64_t bytes_done;  /* input bytes processed so far */
    uint64_t bytes_total; /* input bytes to process (known after the source was listed) */
    uint64_t files_done;  /* files finished, successfully or not */
    uint64_t files_total; /* regular files to process */
    double seconds;       /* since the operation started */
};

/*
 * Called periodically (about every 100 ms) and once at the end, always on the thread that started the
 * operation; p is borrowed for the call.
 */
typedef void (*ccr_progress_cb)(void *cb_arg, const struct ccr_progress *p);

#endif
