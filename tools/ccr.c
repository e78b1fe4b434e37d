/*
 * ccr.c - the `ccr` command: dispatch to subcommands, shared helpers (messages, exit codes, key loading,
 * signals). Subcommands live in ccr_codec.c (encrypt, decrypt, inspect) and ccr_key.c (key, kek).
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ccr_tool.h"

static const char main_help[] =
    "Usage: ccr <command> [options]\n"
    "\n"
    "Encrypt datasets client-side for a confidential clean room, decrypt them, inspect encrypted files,\n"
    "and manage data encryption keys (DEKs) and RSA key-encryption keys (KEKs).\n"
    "\n"
    "Commands:\n"
    "  encrypt SRC DST       encrypt a file, or a directory tree, with a DEK\n"
    "  decrypt SRC DST       decrypt a file, or a directory tree (every region is authenticated)\n"
    "  inspect FILE          show an encrypted file's mode, sizes and key id; with --key, verify it\n"
    "  key new               create a new 32-byte DEK file (mode 0600)\n"
    "  key id                print the ccr1 key id of a DEK\n"
    "  key wrap              wrap a DEK under an RSA KEK (RSA-OAEP-SHA256, base64)\n"
    "  key unwrap            unwrap a wrapped DEK with the KEK's private key\n"
    "  kek new               create an RSA KEK (PKCS#8 PEM, mode 0600)\n"
    "  datastore VERB        datastores: add, list, show, remove, upload, download, verify, ls, rm\n"
    "  mount NAME DIR        mount a datastore as a file system (read-only, or --read-write)\n"
    "  unmount DIR           unmount it (files were stored when closed)\n"
    "  gov VERB              governance: members, proposals, contracts, consent, key release, audit\n"
    "  spec VERB             write, merge and validate clean room specification fragments\n"
    "  version               print the version of ccr and of OpenSSL\n"
    "\n"
    "Run 'ccr <command> --help' for a command's options and examples ('ccr help <command>' works too).\n"
    "\n"
    "Modes: ccr1 (default; the native format: every region authenticated, reordering, truncation and\n"
    "header edits detected) and cleanroom-cse (byte-compatible with the Azure confidential clean room\n"
    "encryptor, 16 MiB chunks).\n"
    "\n"
    "Exit codes (every command):\n"
    "  0    success\n"
    "  1    usage error (bad flag or value, missing argument)\n"
    "  2    I/O or key error (missing or unreadable file, existing destination without --force, disk\n"
    "       full, permission denied, wrong key for a ccr1 file, bad key file, bad PEM)\n"
    "  3    authentication or format failure (tampered, truncated or extended data, malformed header,\n"
    "       wrong region size; for cleanroom-cse also a wrong key, which that format cannot tell apart)\n"
    "  130  interrupted (SIGINT), 143 terminated (SIGTERM); nothing partial is left behind\n";

/* ----------------------------------------------------------------------------------------------------- */
/* shared helpers                                                                                         */
/* ----------------------------------------------------------------------------------------------------- */

atomic_int tool_cancel;
static volatile sig_atomic_t tool_signo;

static void on_signal(int sig)
{
    tool_signo = sig;
    atomic_store(&tool_cancel, 1);
}

void tool_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int tool_signal_exit(void)
{
    return 128 + (tool_signo ? (int)tool_signo : SIGINT);
}

int tool_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ccr %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ccr %s --help' for more information.\n", cmd);
    return EXIT_USAGE;
}

void tool_err(const char *cmd, const char *where, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ccr %s: ", cmd);
    if (where && *where)
        fprintf(stderr, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tool_err_print(const char *cmd, const struct ccr_err *e, const char *fallback_where)
{
    const char *where = e->where[0] ? e->where : fallback_where;
    if (e->msg[0] && e->request_id[0])
        tool_err(cmd, where, "%s (request id %s)", e->msg, e->request_id);
    else if (e->msg[0])
        tool_err(cmd, where, "%s", e->msg);
    else
        tool_err(cmd, where, "%s", strerror(e->code < 0 ? -e->code : EIO));
}

/* ,"http_status":N,"error_code":"...","request_id":"..." for a failure a service answered */
static void json_http_fields(const struct ccr_err *e)
{
    if (!e->http_status)
        return;
    printf(",\"http_status\":%d,\"error_code\":", e->http_status);
    tool_json_str(stdout, e->service_code);
    printf(",\"request_id\":");
    tool_json_str(stdout, e->request_id);
}

int tool_exit_code(int rc)
{
    if (rc == 0)
        return EXIT_OK;
    if (rc == -ECANCELED)
        return tool_signal_exit();
    if (rc == -EBADMSG)
        return EXIT_AUTH;
    return EXIT_IO;
}

int tool_key_load(const char *cmd, const char *path, struct ccr_key *out)
{
    struct ccr_err e;
    unsigned flags = 0;
    ccr_err_clear(&e);
    int rc = ccr_key_file_load(path, out, &flags, &e);
    if (rc) {
        tool_err_print(cmd, &e, path);
        return EXIT_IO;
    }
    if (flags & CCR_KEYFILE_LOOSE_PERMS)
        fprintf(stderr,
                "ccr %s: warning: key file %s is readable or writable by group or others; "
                "restrict it with: chmod 600 %s\n",
                cmd, path, path);
    return EXIT_OK;
}

int tool_parse_threads(const char *cmd, const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !end || *end || end == s || s[0] == '-' || v < 1 || v > 4096)
        return tool_usage(cmd, "invalid --threads value '%s' (a number from 1 to 4096)", s);
    *out = (unsigned)v;
    return 0;
}

int tool_bad_option(const char *cmd, int c, char **argv)
{
    const char *opt = argv[optind - 1];
    if (c == ':')
        return tool_usage(cmd, "option '%s' needs a value", opt);
    if (optopt && optopt != '?')
        return tool_usage(cmd, "unknown option '-%c'", optopt);
    return tool_usage(cmd, "unknown option '%s'", opt);
}

void tool_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f); /* UTF-8 passes through; invalid bytes are not repaired */
        }
    }
    fputc('"', f);
}

const char *tool_human_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

/* ----------------------------------------------------------------------------------------------------- */
/* dispatch                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: ccr version\n\nPrints the version of ccr and of the OpenSSL library it runs with.\n");
        return EXIT_OK;
    }
    if (argc > 1)
        return tool_usage("version", "unexpected argument '%s'", argv[1]);
    printf("ccr %s (%s)\n", ccr_version(), ccr_openssl_version());
    return EXIT_OK;
}

void tool_json_failures(const struct ccr_codec_failure *failed, uint64_t n, const struct ccr_err *top, int rc)
{
    for (uint64_t i = 0; i < n; i++) {
        printf(i ? ",{\"path\":" : "{\"path\":");
        tool_json_str(stdout, failed[i].path);
        printf(",\"error\":");
        tool_json_str(stdout, failed[i].err.msg[0] ? failed[i].err.msg : strerror(-failed[i].err.code));
        json_http_fields(&failed[i].err);
        printf("}");
    }
    if (top) {
        printf(n ? ",{\"path\":" : "{\"path\":");
        tool_json_str(stdout, top->where);
        printf(",\"error\":");
        tool_json_str(stdout, top->msg[0] ? top->msg : strerror(rc < 0 ? -rc : EIO));
        json_http_fields(top);
        printf("}");
    }
    printf("]}\n");
    fflush(stdout);
}

/* ----------------------------------------------------------------------------------------------------- */
/* progress line and library messages                                                                     */
/* ----------------------------------------------------------------------------------------------------- */

void tool_progress_draw(void *arg, const struct ccr_progress *p)
{
    struct tool_progress *pc = arg;
    char done[32], total[32];
    double rate = p->seconds > 0 ? (double)p->bytes_done / p->seconds : 0;
    int pct = p->bytes_total ? (int)(100.0 * (double)p->bytes_done / (double)p->bytes_total) : 100;
    fprintf(stderr, "\r\033[Kccr %s: %s / %s (%d%%), %.0f MB/s", pc->cmd,
            tool_human_bytes(p->bytes_done, done, sizeof(done)),
            tool_human_bytes(p->bytes_total, total, sizeof(total)), pct, rate / 1e6);
    if (p->files_total > 1)
        fprintf(stderr, ", %llu/%llu files", (unsigned long long)p->files_done,
                (unsigned long long)p->files_total);
    if (rate > 0 && p->bytes_done < p->bytes_total && p->seconds > 1) {
        double eta = (double)(p->bytes_total - p->bytes_done) / rate;
        fprintf(stderr, ", ETA %d:%02d", (int)eta / 60, (int)eta % 60);
    }
    fflush(stderr);
    pc->drawn = true;
}

void tool_progress_clear(struct tool_progress *pc)
{
    if (pc->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        pc->drawn = false;
    }
}

/* Serialised: the library's workers may log at once. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void tool_log_sink(void *arg, enum ccr_log_level level, const char *msg)
{
    const char *cmd = arg;
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "ccr %s: %s%s\n", cmd, level == CCR_LOG_WARN ? "warning: " : "", msg);
    pthread_mutex_unlock(&log_mu);
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"encrypt", cmd_encrypt}, {"decrypt", cmd_decrypt}, {"inspect", cmd_inspect},     {"key", cmd_key},
    {"kek", cmd_kek},         {"version", cmd_version}, {"datastore", cmd_datastore}, {"mount", cmd_mount},
    {"unmount", cmd_unmount}, {"gov", cmd_gov},         {"spec", cmd_spec},
};

static int dispatch(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].fn(argc, argv);
    fprintf(stderr, "ccr: unknown command '%s'\nTry 'ccr --help' for the list of commands.\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "ccr: missing command\n"
                        "Try 'ccr --help' for the list of commands.\n");
        return EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        fputs(main_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0)
        return cmd_version(1, argv + 1);
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            fputs(main_help, stdout);
            return EXIT_OK;
        }
        /* `ccr help key new` -> `ccr key new --help` */
        char *args[4] = {argv[2], NULL, NULL, NULL};
        int n = 1;
        if (argc > 3)
            args[n++] = argv[3];
        args[n++] = "--help";
        return dispatch(n, args);
    }
    if (a[0] == '-') {
        fprintf(stderr, "ccr: unknown option '%s'\nTry 'ccr --help' for more information.\n", a);
        return EXIT_USAGE;
    }
    return dispatch(argc - 1, argv + 1);
}
