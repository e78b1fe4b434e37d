/*
 * ccr_tool.h - shared by the `ccr` command's source files: exit codes, message helpers, key loading,
 * signal handling. Option mapping only; all behaviour is in the library.
 */
#ifndef CCR_TOOL_H
#define CCR_TOOL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "ccr/codec.h"
#include "ccr/crypto.h"
#include "ccr/dataplane.h"

/* Exit codes of every command (see `ccr --help`). */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1, /* bad flag or value, missing argument */
    EXIT_IO = 2,    /* I/O or key error */
    EXIT_AUTH = 3,  /* authentication or format failure */
};

/* Raised by SIGINT/SIGTERM once tool_signals_install() ran; the library polls it. */
extern atomic_int tool_cancel;

/* Installs SIGINT/SIGTERM handlers that raise tool_cancel (and remember the signal). */
void tool_signals_install(void);

/* 128 + the signal that raised tool_cancel (130 SIGINT, 143 SIGTERM), or 130 if none is recorded. */
int tool_signal_exit(void);

/* Prints "ccr CMD: MSG" and "Try 'ccr CMD --help'." on stderr; returns EXIT_USAGE. */
int tool_usage(const char *cmd, const char *fmt, ...) CCR_PRINTF(2, 3);

/* Prints "ccr CMD: WHERE: MSG" (WHERE left out when empty). */
void tool_err(const char *cmd, const char *where, const char *fmt, ...) CCR_PRINTF(3, 4);

/* Prints "ccr CMD: e->where: e->msg" (falls back to fallback_where, and to strerror for an empty msg). */
void tool_err_print(const char *cmd, const struct ccr_err *e, const char *fallback_where);

/* Maps a library return code to an exit code: -EBADMSG 3, -ECANCELED 130/143, anything else 2. */
int tool_exit_code(int rc);

/*
 * Loads a DEK file; on a loose-permission file prints a warning naming it and `chmod 600`. On failure
 * prints the error and returns EXIT_IO; returns EXIT_OK on success.
 */
int tool_key_load(const char *cmd, const char *path, struct ccr_key *out);

/* Parses a --threads value (1..4096). Returns 0 or EXIT_USAGE after printing the error. */
int tool_parse_threads(const char *cmd, const char *s, unsigned *out);

/* Reports an option getopt rejected (optopt / argv[optind-1]); returns EXIT_USAGE. */
int tool_bad_option(const char *cmd, int c, char **argv);

/* Writes s as a JSON string (with quotes) to f. */
void tool_json_str(FILE *f, const char *s);

/* Writes "1.5 GiB" style text for n bytes into buf. */
const char *tool_human_bytes(uint64_t n, char *buf, size_t len);

/* Subcommands. argv[0] is the subcommand's name. Return the exit code. */
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_kek(int argc, char **argv);

#endif
