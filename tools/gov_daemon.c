/*
 * gov_daemon.c - `ccr-gov`, the governance service: init, serve, verify (docs/governance.md, "Commands").
 * Option mapping and main() only: the service is ccr/gov.h, its HTTP front end ccr/gov_server.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccr/gov.h"
#include "ccr/gov_crypto.h"
#include "ccr/gov_server.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,  /* bad flag or value, missing argument */
    EXIT_IO = 2,     /* I/O error, missing or unreadable data directory, cannot listen */
    EXIT_VERIFY = 3, /* verification failure (the log or the tables were altered) */
};

#define CERT_MAX   (64 * 1024)
#define SANS_MAX   64
#define PORT_DEF   8443
#define LISTEN_DEF "127.0.0.1"

static const char main_help[] =
    "Usage: ccr-gov <command> [options]\n"
    "\n"
    "The governance service of a confidential clean room: it records the parties (members), their\n"
    "proposals and votes, contracts, deployment policies, runtime consent, deposited secrets, documents\n"
    "and clean room events in one database with a hash-chained log, and releases secrets only to a clean\n"
    "room whose attestation matches an accepted policy. Members talk to it with 'ccr gov'.\n"
    "\n"
    "Commands:\n"
    "  init     create a service: its database, the operator as first member, its TLS certificate\n"
    "  serve    serve the API over HTTPS (members pin the service certificate)\n"
    "  verify   check the log's hash chain and that it accounts for every row (offline)\n"
    "\n"
    "Run 'ccr-gov <command> --help' for its options.\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O error (data directory, files, listening socket);\n"
    "3 verification failure.\n";

static const char init_help[] =
    "Usage: ccr-gov init --data-dir D --operator-cert FILE [--san HOST]...\n"
    "\n"
    "Creates a new governance service in D (mode 0700): its database with the operator as first, active\n"
    "member, the key that seals deposited secrets at rest, and the service's TLS identity\n"
    "(service_privk.pem, mode 0600, and service_cert.pem: an EC P-384 self-signed certificate for\n"
    "localhost, 127.0.0.1, ::1 and every --san). Give service_cert.pem to every member: their client pins\n"
    "it. Prints the operator's member id and the certificate's path.\n"
    "\n"
    "Options:\n"
    "  -d, --data-dir D          the service's directory (created if missing) (required)\n"
    "  -c, --operator-cert FILE  the operator's member certificate, from 'ccr gov member keygen' (required)\n"
    "  -s, --san HOST            another host name or IP address the service is reached at (repeatable)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Example:\n"
    "  ccr gov member keygen --name operator --out-dir keys\n"
    "  ccr-gov init --data-dir /var/lib/ccr-gov --operator-cert keys/operator_cert.pem --san "
    "gov.example.com\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 D already holds a service, the certificate is unreadable or not an\n"
    "EC P-384 certificate, or a file cannot be written.\n";

static const char serve_help[] =
    "Usage: ccr-gov serve --data-dir D [--listen ADDR] [--port N] [--insecure-http]\n"
    "                     [--allow-virtual-attestation] [--threads N] [--ready-file F] [--port-file F]\n"
    "                     [--log-file F]\n"
    "\n"
    "Serves the governance API of the service in D over HTTPS with D/service_cert.pem, until SIGTERM or\n"
    "SIGINT (then it finishes the requests in progress and exits 0). Logs one line per request (time,\n"
    "method, path, status, duration; never bodies) on stderr or to --log-file.\n"
    "\n"
    "Options:\n"
    "  -d, --data-dir D               the service's directory, made by 'ccr-gov init' (required)\n"
    "  -l, --listen ADDR              IP address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
    "  -p, --port N                   TCP port (default 8443; 0 picks a free one, see --port-file)\n"
    "      --insecure-http            serve plain HTTP: allowed on a loopback address only (tests)\n"
    "      --allow-virtual-attestation\n"
    "                                 accept virtual (simulated) attestation: INSECURE, for tests and\n"
    "                                 demos; every release to such a clean room is marked virtual\n"
    "  -t, --threads N                worker threads (default 8)\n"
    "      --port-file F              write the bound port (and a newline) to F once serving\n"
    "      --ready-file F             then write the endpoint URL to F: it exists once requests are served\n"
    "      --log-file F               append the request log to F instead of stderr\n"
    "  -h, --help                     show this help\n"
    "\n"
    "Example:\n"
    "  ccr-gov serve --data-dir /var/lib/ccr-gov --listen 0.0.0.0 --port 8443\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT; 1 usage error; 2 the service cannot be opened or the port\n"
    "cannot be served (in use, plain HTTP on a non-loopback address).\n";

static const char verify_help[] =
    "Usage: ccr-gov verify --data-dir D [--json]\n"
    "\n"
    "Checks the service's log offline: every entry's hash and its link to the one before, and that\n"
    "replaying the row images of the whole log gives exactly the rows in the tables (an edited, added or\n"
    "deleted row is found). Safe while the service runs.\n"
    "\n"
    "Options:\n"
    "  -d, --data-dir D   the service's directory (required)\n"
    "      --json         print the report as JSON {\"ok\",\"entries\",\"head\",\"problems\"}\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit codes: 0 the log verifies; 1 usage error; 2 the service cannot be opened; 3 problems found\n"
    "(each is printed).\n";

enum { OPT_INSECURE_HTTP = 1000, OPT_ALLOW_VIRTUAL, OPT_READY_FILE, OPT_PORT_FILE, OPT_LOG_FILE, OPT_JSON };

/* ----------------------------------------------------------------------------------------------------- */
/* messages                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

static int usage(const char *cmd, const char *fmt, ...) CCR_PRINTF(2, 3);
static int usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ccr-gov %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'ccr-gov %s --help'.\n", cmd);
    return EXIT_USAGE;
}

static void errmsg(const char *cmd, const char *where, const char *fmt, ...) CCR_PRINTF(3, 4);
static void errmsg(const char *cmd, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ccr-gov %s: ", cmd);
    if (where && *where)
        fprintf(stderr, "%s: ", where);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Prints a library error: "ccr-gov CMD: WHERE: MSG". */
static void err_print(const char *cmd, const struct ccr_err *e, int rc, const char *fallback_where)
{
    const char *where = e->where[0] ? e->where : fallback_where;
    if (e->msg[0])
        errmsg(cmd, where, "%s", e->msg);
    else
        errmsg(cmd, where, "%s", strerror(rc < 0 ? -rc : EIO));
}

static int bad_option(const char *cmd, int c, char **argv)
{
    const char *opt = argv[optind - 1];
    if (c == ':')
        return usage(cmd, "option '%s' needs a value", opt);
    if (optopt && optopt != '?')
        return usage(cmd, "unknown option '-%c'", optopt);
    return usage(cmd, "unknown option '%s'", opt);
}

static int parse_uint(const char *cmd, const char *opt, const char *s, unsigned long lo, unsigned long hi,
                      unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !end || *end || end == s || s[0] == '-' || v < lo || v > hi)
        return usage(cmd, "invalid %s value '%s' (a number from %lu to %lu)", opt, s, lo, hi);
    *out = (unsigned)v;
    return EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* init                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static int read_small_file(const char *path, size_t max, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        return bad ? -EIO : -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

static int cmd_init(int argc, char **argv)
{
    const char *cmd = "init";
    static const struct option lo[] = {{"data-dir", required_argument, NULL, 'd'},
                                       {"operator-cert", required_argument, NULL, 'c'},
                                       {"san", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *dir = NULL, *cert = NULL;
    const char *sans[SANS_MAX + 1] = {0};
    size_t n_sans = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:c:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 's':
            if (n_sans == SANS_MAX)
                return usage(cmd, "at most %d --san names", SANS_MAX);
            sans[n_sans++] = optarg;
            break;
        case 'h':
            fputs(init_help, stdout);
            return EXIT_OK;
        default:
            return bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return usage(cmd, "missing --data-dir D");
    if (!cert)
        return usage(cmd, "missing --operator-cert FILE");

    char *pem = NULL;
    size_t pem_len = 0;
    int rc = read_small_file(cert, CERT_MAX, &pem, &pem_len);
    if (rc) {
        errmsg(cmd, cert, "cannot read the operator certificate: %s",
               rc == -EFBIG ? "larger than 64 KiB" : strerror(-rc));
        return EXIT_IO;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_gov_ident *op = NULL;
    rc = ccr_gov_ident_from_cert_pem(pem, pem_len, &op, &e);
    if (rc) {
        err_print(cmd, &e, rc, cert);
        free(pem);
        return EXIT_IO;
    }
    /* The TLS identity first: a bad --san then leaves nothing behind, and it is removed again when the
     * database cannot be created. */
    ccr_err_clear(&e);
    rc = ccr_gov_server_make_cert(dir, n_sans ? sans : NULL, &e);
    if (rc) {
        char db[PATH_MAX];
        struct stat st;
        snprintf(db, sizeof(db), "%s/gov.db", dir);
        if (rc == -EEXIST && stat(db, &st) == 0)
            errmsg(cmd, dir, "already holds a governance service: serve it, or give another --data-dir");
        else
            err_print(cmd, &e, rc, dir);
        free(pem);
        ccr_gov_ident_destroy(op);
        return EXIT_IO;
    }
    ccr_err_clear(&e);
    rc = ccr_gov_init_dir(dir, pem, pem_len, &e);
    free(pem);
    if (rc) {
        if (rc == -EEXIST && !e.msg[0])
            errmsg(cmd, dir, "already holds a governance service");
        else
            err_print(cmd, &e, rc, dir);
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/service_privk.pem", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/service_cert.pem", dir);
        unlink(path);
        ccr_gov_ident_destroy(op);
        return EXIT_IO;
    }
    printf("operator member id: %s\n", ccr_gov_ident_id(op));
    printf("service certificate: %s/service_cert.pem\n", dir);
    ccr_gov_ident_destroy(op);
    return EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* serve                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

struct access_log {
    FILE *f;
};

/* One line per request; one fprintf call, so lines of concurrent requests never interleave. */
static void access_log_line(void *cb_arg, const struct ccr_gov_server_access *a)
{
    struct access_log *lg = cb_arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(lg->f, "%s.%03ldZ %s %s %d %.1fms\n", when, ts.tv_nsec / 1000000, a->method, a->path, a->status,
            a->duration_ms);
}

/* Writes text to path atomically (a temporary file renamed into place). */
static int write_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    bool ok = fputs(text, f) >= 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        return saved ? -saved : -EIO;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return -saved;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *cmd = "serve";
    static const struct option lo[] = {{"data-dir", required_argument, NULL, 'd'},
                                       {"listen", required_argument, NULL, 'l'},
                                       {"port", required_argument, NULL, 'p'},
                                       {"insecure-http", no_argument, NULL, OPT_INSECURE_HTTP},
                                       {"allow-virtual-attestation", no_argument, NULL, OPT_ALLOW_VIRTUAL},
                                       {"threads", required_argument, NULL, 't'},
                                       {"ready-file", required_argument, NULL, OPT_READY_FILE},
                                       {"port-file", required_argument, NULL, OPT_PORT_FILE},
                                       {"log-file", required_argument, NULL, OPT_LOG_FILE},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *dir = NULL, *listen = LISTEN_DEF, *ready_file = NULL, *port_file = NULL, *log_file = NULL;
    unsigned port = PORT_DEF, threads = 0;
    bool plain = false, allow_virtual = false;
    int c, ex;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:l:p:t:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'p':
            if ((ex = parse_uint(cmd, "--port", optarg, 0, 65535, &port)) != EXIT_OK)
                return ex;
            break;
        case 't':
            if ((ex = parse_uint(cmd, "--threads", optarg, 1, 256, &threads)) != EXIT_OK)
                return ex;
            break;
        case OPT_INSECURE_HTTP:
            plain = true;
            break;
        case OPT_ALLOW_VIRTUAL:
            allow_virtual = true;
            break;
        case OPT_READY_FILE:
            ready_file = optarg;
            break;
        case OPT_PORT_FILE:
            port_file = optarg;
            break;
        case OPT_LOG_FILE:
            log_file = optarg;
            break;
        case 'h':
            fputs(serve_help, stdout);
            return EXIT_OK;
        default:
            return bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return usage(cmd, "missing --data-dir D");

    struct access_log lg = {.f = stderr};
    if (log_file) {
        lg.f = fopen(log_file, "a");
        if (!lg.f) {
            errmsg(cmd, log_file, "cannot open the log file: %s", strerror(errno));
            return EXIT_IO;
        }
        setvbuf(lg.f, NULL, _IOLBF, 0);
    }

    /* The signals are taken synchronously by this thread (sigwait); every thread the server starts
     * inherits the blocked mask. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = EXIT_IO;
    struct ccr_gov *g = NULL;
    struct ccr_gov_server *srv = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_gov_config gc = {.data_dir = dir, .allow_virtual = allow_virtual};
    int rc = ccr_gov_open(&gc, &g, &e);
    if (rc) {
        err_print(cmd, &e, rc, dir);
        goto out;
    }
    if (allow_virtual) {
        const char *warn =
            "WARNING: virtual attestation is ALLOWED. A virtual clean room proves nothing: anyone "
            "can claim any measurement and obtain released secrets. Use this for tests and demos "
            "only, never with real data.";
        fprintf(stderr, "ccr-gov serve: %s\n", warn);
        if (lg.f != stderr)
            fprintf(lg.f, "%s\n", warn);
    }
    ccr_err_clear(&e);
    struct ccr_gov_server_config sc = {
        .listen_addr = listen,
        .port = port,
        .plain_http = plain,
        .data_dir = dir,
        .threads = threads,
        .log = access_log_line,
        .log_arg = &lg,
    };
    rc = ccr_gov_server_start(g, &sc, &srv, &e);
    if (rc) {
        err_print(cmd, &e, rc, listen);
        goto out;
    }
    unsigned bound = ccr_gov_server_port(srv);
    char url[128];
    bool v6 = strchr(listen, ':') != NULL;
    snprintf(url, sizeof(url), "%s://%s%s%s:%u", plain ? "http" : "https", v6 ? "[" : "", listen,
             v6 ? "]" : "", bound);
    if (port_file) {
        char text[16];
        snprintf(text, sizeof(text), "%u\n", bound);
        if ((rc = write_atomic(port_file, text)) != 0) {
            errmsg(cmd, port_file, "cannot write the port file: %s", strerror(-rc));
            goto out;
        }
    }
    if (ready_file) {
        char text[160];
        snprintf(text, sizeof(text), "%s\n", url);
        if ((rc = write_atomic(ready_file, text)) != 0) {
            errmsg(cmd, ready_file, "cannot write the ready file: %s", strerror(-rc));
            goto out;
        }
    }
    fprintf(stderr, "ccr-gov serve: serving %s (data %s)\n", url, dir);
    if (lg.f != stderr)
        fprintf(lg.f, "serving %s (data %s)\n", url, dir);

    int sig = 0;
    while (sigwait(&stop_set, &sig) != 0)
        ;
    fprintf(stderr, "ccr-gov serve: %s received, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ret = EXIT_OK;
out:
    ccr_gov_server_stop(srv);
    ccr_gov_close(g);
    if (lg.f && lg.f != stderr)
        fclose(lg.f);
    return ret;
}

/* ----------------------------------------------------------------------------------------------------- */
/* verify                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static int cmd_verify(int argc, char **argv)
{
    const char *cmd = "verify";
    static const struct option lo[] = {{"data-dir", required_argument, NULL, 'd'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    bool json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(verify_help, stdout);
            return EXIT_OK;
        default:
            return bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return usage(cmd, "missing --data-dir D");

    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_gov *g = NULL;
    struct ccr_gov_config gc = {.data_dir = dir};
    int rc = ccr_gov_open(&gc, &g, &e);
    if (rc) {
        err_print(cmd, &e, rc, dir);
        return EXIT_IO;
    }
    json_t *report = NULL;
    rc = ccr_gov_audit_verify(g, &report);
    ccr_gov_close(g);
    if (!report) {
        errmsg(cmd, dir, "cannot check the log: %s", strerror(rc < 0 ? -rc : EIO));
        return EXIT_IO;
    }
    if (json) {
        char *text = json_dumps(report, JSON_COMPACT);
        if (text) {
            puts(text);
            free(text);
        }
    } else {
        json_t *problems = json_object_get(report, "problems");
        json_int_t entries = json_integer_value(json_object_get(report, "entries"));
        const char *head = json_string_value(json_object_get(report, "head"));
        printf("log: %lld entries, head %s\n", (long long)entries, head ? head : "(none)");
        size_t i;
        json_t *p;
        json_array_foreach(problems, i, p)
        {
            const char *s = json_string_value(p);
            printf("problem: %s\n", s ? s : "(unreadable)");
        }
        printf("%s\n", rc == 0 ? "ok: the log verifies and accounts for every row"
                               : "FAILED: the log or the tables were altered (see the problems above)");
    }
    json_decref(report);
    if (rc == 0)
        return EXIT_OK;
    if (rc == -EBADMSG)
        return EXIT_VERIFY;
    errmsg(cmd, dir, "cannot check the log: %s", strerror(-rc));
    return EXIT_IO;
}

/* ----------------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        if (argc > 2 && strcmp(verb, "help") == 0) {
            char *h[] = {argv[0], argv[2], "--help", NULL};
            return main(3, h);
        }
        fputs(main_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(verb, "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(verb, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(verb, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    fprintf(stderr, "ccr-gov: unknown command '%s'\nTry 'ccr-gov --help'.\n", verb);
    return EXIT_USAGE;
}
