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
#include "ccr/datastore.h"
#include "ccr/transfer.h"

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

/* The progress line: one line on stderr redrawn in place (bytes, percent, rate, files, ETA). Install
 * tool_progress_draw as a ccr_progress_cb with a struct tool_progress as its argument; clear the line
 * before printing anything else. */
struct tool_progress {
    const char *cmd;
    bool drawn;
};
void tool_progress_draw(void *arg, const struct ccr_progress *p);
void tool_progress_clear(struct tool_progress *pc);

/* A ccr_log_cb printing "ccr CMD: [warning: ]MSG" on stderr; cb_arg is the command name. */
void tool_log_sink(void *arg, enum ccr_log_level level, const char *msg);

/*
 * Ends a --json summary: the entries of its "failed" array (path and error of each failed file, then `top`,
 * a failure before any file, when non-NULL: rc is its code), the closing "]}" and a newline; flushes.
 */
void tool_json_failures(const struct ccr_codec_failure *failed, uint64_t n, const struct ccr_err *top,
                        int rc);

/* Writes "1.5 GiB" style text for n bytes into buf. */
const char *tool_human_bytes(uint64_t n, char *buf, size_t len);

/* Subcommands. argv[0] is the subcommand's name. Return the exit code. */
int cmd_encrypt(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_kek(int argc, char **argv);
int cmd_mount(int argc, char **argv);   /* tools/ccr_mount.c */
int cmd_unmount(int argc, char **argv); /* tools/ccr_mount.c */
int cmd_gov(int argc, char **argv);     /* tools/ccr_gov*.c: `ccr gov ...` */
int cmd_spec(int argc, char **argv);    /* tools/ccr_spec.c: `ccr spec ...` */

/* ----------------------------------------------------------------------------------------------------- */
/* Datastores (tools/ccr_datastore.c: add/list/show/remove/ls/rm and the `datastore` dispatch;            */
/* tools/ccr_transfer.c: upload/download/verify)                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/* `ccr datastore VERB ...`: argv[0] is "datastore". */
int cmd_datastore(int argc, char **argv);

/* Verbs implemented in tools/ccr_transfer.c. argv[0] is the verb ("upload", ...). */
int cmd_datastore_upload(int argc, char **argv);
int cmd_datastore_download(int argc, char **argv);
int cmd_datastore_verify(int argc, char **argv);

/* A datastore opened for work: its record, its key (unless mode none) and its store. */
struct tool_ds {
    struct ccr_config *cfg;
    const struct ccr_datastore *ds; /* owned by cfg */
    struct ccr_key key;
    bool has_key;
    struct ccr_store *store;
};

/* Store flags shared by the datastore verbs (--ca-file, --connections, --verbose). */
struct tool_store_flags {
    const char *ca_file;  /* NULL: $CCR_CA_FILE, else the system store */
    unsigned connections; /* 0: the store's default */
    bool verbose;         /* one line per HTTP request on stderr */
};

/* The long options for tool_store_flags (ids OPT_STORE_*), to append to a getopt table. */
enum { OPT_STORE_CA = 2000, OPT_STORE_CONN, OPT_STORE_VERBOSE };
// clang-format off
#define TOOL_STORE_LONGOPTS                                                                                  \
    {"ca-file", required_argument, NULL, OPT_STORE_CA},                                                      \
    {"connections", required_argument, NULL, OPT_STORE_CONN},                                               \
    {"verbose", no_argument, NULL, OPT_STORE_VERBOSE}
// clang-format on
#define TOOL_STORE_HELP                                                                                    \
    "      --ca-file FILE     HTTPS: trust the CA certificates in FILE (default: $CCR_CA_FILE, else the\n" \
    "                         system store)\n"                                                             \
    "      --connections N    HTTP: N requests in flight (default: adapts, from 8 up to 32, within\n"      \
    "                         --memory, growing while throughput grows)\n"                                 \
    "      --verbose          log every HTTP request (method, path, status, time; secrets redacted)\n"

/* Handles option c (getopt's answer) as one of OPT_STORE_*: EXIT_OK, or EXIT_USAGE after printing the
 * error (a bad value, or an option that is not a store flag either: tool_bad_option). */
int tool_store_option(const char *cmd, int c, const char *arg, struct tool_store_flags *sf, char **argv);

/* The URL for display: a SAS query (the part from '?') is replaced by "?<SAS hidden>". */
const char *tool_url_display(const char *url, char *buf, size_t len);

/*
 * Loads the config (config_path may be NULL: $CCR_CONFIG, then the XDG default), finds datastore `name`,
 * loads its key (warning on loose permissions) and opens its store (with the flags sf, which may be NULL). On
 * failure prints the error naming what failed ("unknown datastore 'x' (see 'ccr datastore list')", the config
 * file, the key file, the store URL) and returns the exit code (EXIT_USAGE or EXIT_IO); EXIT_OK on success.
 */
int tool_ds_open(const char *cmd, const char *config_path, const char *name,
                 const struct tool_store_flags *sf, struct tool_ds *out);

/* Releases what tool_ds_open acquired (wipes the key). Accepts a zeroed struct. */
void tool_ds_close(struct tool_ds *t);

/* Parses --memory SIZE (also the default from $CCR_MEMORY); 0 if neither is set. EXIT_USAGE on junk. */
int tool_parse_memory(const char *cmd, const char *opt_value, uint64_t *out);

#endif
