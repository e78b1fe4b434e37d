/*
 * ccr_transfer.c - `ccr datastore upload|download|verify`: option mapping onto ccr_publish,
 * ccr_download and ccr_verify, progress line, messages and the JSON summary.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr_tool.h"

static const char upload_help[] =
    "Usage: ccr datastore upload NAME SRC [options]\n"
    "\n"
    "Publishes SRC into datastore NAME, encrypted with the datastore's mode and key. SRC a directory: every\n"
    "regular file under it becomes the blob named by its path relative to SRC ('/'-separated; empty files\n"
    "too). SRC a file: one blob named by its base name. File names are not encrypted. Symbolic links and\n"
    "special files are skipped with a warning (--follow-symlinks publishes links to regular files).\n"
    "\n"
    "Files are cut into transfer units of whole regions (4 MiB of plaintext), sealed on N worker threads\n"
    "and stored as blocks that become visible only when the whole file is committed: a reader never sees a\n"
    "partly written blob. A file that changes while it is read is reported and not published. A resume\n"
    "journal (under $XDG_STATE_HOME/ccr/journal) records every published file: running the same upload\n"
    "again skips files whose size and modification time are unchanged and whose blob is still there.\n"
    "\n"
    "Options:\n"
    "  -p, --prefix P         put the blobs under P/ (blob names P/<relative path>)\n"
    "  -s, --shard I/N        publish only the files of shard I of N (0 <= I < N; a stable hash of the\n"
    "                         relative path), for N copies on N machines; the union is the whole tree\n"
    "  -t, --threads N        worker threads (default: the number of online CPUs, within --memory)\n"
    "  -M, --memory SIZE      payload memory budget (default: $CCR_MEMORY, else 512M)\n"
    "      --follow-symlinks  publish the regular files symbolic links point to\n"
    "      --no-journal       neither read nor write the resume journal (publish everything)\n"
    "  -q, --quiet            no progress line and no summary on the terminal\n"
    "      --json             print one JSON summary line on stdout:\n"
    "                         {\"command\":\"datastore "
    "upload\",\"datastore\":...,\"files\":N,\"resumed\":N,\n"
    "                          \"skipped\":N,\"bytes_in\":N,\"bytes_out\":N,\"seconds\":F,\"threads\":N,\n"
    "                          \"requests\":N,\"retries\":N (HTTP stores; 0 for the local store),\n"
    "                          \"errors\":N,\"failed\":[{\"path\":...,\"error\":...}]}\n"
    "  -c, --config FILE      the config file\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr datastore upload owner1 data/\n"
    "  ccr datastore upload owner1 data/ --prefix 2024-06 --shard 3/8\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O or key error (unknown datastore, missing SRC, a file that\n"
    "changed while read, store errors); 130/143 interrupted (what was committed stays; re-run to resume).\n";

static const char download_help[] =
    "Usage: ccr datastore download NAME DST [options]\n"
    "\n"
    "Downloads every blob of datastore NAME (under --prefix) into directory DST (created if missing), at\n"
    "the blob's name relative to the prefix. Every region is authenticated before any of its bytes is\n"
    "written; each file is written to a temporary name (.NAME.ccr-tmp-XXXXXX) and renamed only when all of\n"
    "it verified, so a failure or an interruption never leaves a partial file. A resume journal records\n"
    "finished files: running the same download again skips them and redoes only the rest.\n"
    "\n"
    "Options:\n"
    "  -p, --prefix P         only blobs under P/ (written relative to P)\n"
    "  -f, --force            replace existing destination files not known to be complete\n"
    "  -t, --threads N        worker threads (default: the number of online CPUs, within --memory)\n"
    "  -M, --memory SIZE      payload memory budget (default: $CCR_MEMORY, else 512M)\n"
    "      --no-journal       neither read nor write the resume journal\n"
    "  -q, --quiet            no progress line and no summary on the terminal\n"
    "      --json             print one JSON summary line on stdout (as for upload,\n"
    "                         \"command\":\"datastore download\")\n"
    "  -c, --config FILE      the config file\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O or key error (unknown datastore, wrong key, disk full,\n"
    "existing file without --force); 3 a blob failed authentication (the message names the blob, the\n"
    "region and its byte offset); 130/143 interrupted (nothing partial left; re-run to resume).\n";

static const char verify_help[] =
    "Usage: ccr datastore verify NAME [options]\n"
    "\n"
    "Authenticates every region of every blob of datastore NAME (under --prefix), writing nothing.\n"
    "\n"
    "Options:\n"
    "  -p, --prefix P         only blobs under P/\n"
    "  -t, --threads N        worker threads (default: the number of online CPUs, within --memory)\n"
    "  -M, --memory SIZE      payload memory budget (default: $CCR_MEMORY, else 512M)\n"
    "  -q, --quiet            no progress line and no summary on the terminal\n"
    "      --json             print one JSON summary line on stdout (as for upload,\n"
    "                         \"command\":\"datastore verify\")\n"
    "  -c, --config FILE      the config file\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 every blob authenticates; 1 usage error; 2 I/O or key error (unknown datastore, wrong\n"
    "key); 3 a blob failed authentication (named, with the region and its byte offset); 130/143\n"
    "interrupted.\n";

enum { OPT_JSON = 1000, OPT_FOLLOW, OPT_NO_JOURNAL };

static const struct option transfer_longopts[] = {
    {"prefix", required_argument, NULL, 'p'},
    {"shard", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, 't'},
    {"memory", required_argument, NULL, 'M'},
    {"force", no_argument, NULL, 'f'},
    {"follow-symlinks", no_argument, NULL, OPT_FOLLOW},
    {"no-journal", no_argument, NULL, OPT_NO_JOURNAL},
    {"quiet", no_argument, NULL, 'q'},
    {"json", no_argument, NULL, OPT_JSON},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    TOOL_STORE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

enum verb { V_UPLOAD, V_DOWNLOAD, V_VERIFY };

static int parse_shard(const char *cmd, const char *s, unsigned *out_i, unsigned *out_n)
{
    char *end;
    errno = 0;
    unsigned long i = strtoul(s, &end, 10);
    if (end == s || *end != '/' || errno || s[0] == '-')
        return tool_usage(cmd, "invalid --shard '%s' (I/N, e.g. 0/4)", s);
    const char *t = end + 1;
    unsigned long n = strtoul(t, &end, 10);
    if (end == t || *end || errno || t[0] == '-' || n == 0 || n > 1000000 || i >= n)
        return tool_usage(cmd, "invalid --shard '%s' (I/N with 0 <= I < N)", s);
    *out_i = (unsigned)i;
    *out_n = (unsigned)n;
    return 0;
}

static void print_json(const char *cmd, const char *ds, const struct ccr_transfer_result *r, int rc,
                       const struct ccr_err *top, const struct ccr_store_stats *st)
{
    bool extra = rc != 0 && rc != -ECANCELED && r->errors == 0;
    printf("{\"command\":\"%s\",\"datastore\":", cmd);
    tool_json_str(stdout, ds);
    printf(",\"files\":%llu,\"resumed\":%llu,\"skipped\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
           "\"seconds\":%.6f,\"threads\":%u,\"requests\":%llu,\"retries\":%llu,\"errors\":%llu,\"failed\":[",
           (unsigned long long)r->files, (unsigned long long)r->resumed, (unsigned long long)r->skipped,
           (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, r->seconds, r->threads,
           (unsigned long long)st->requests, (unsigned long long)st->retries,
           (unsigned long long)(r->errors + (extra ? 1 : 0)));
    tool_json_failures(r->failed, r->errors, extra ? top : NULL, rc);
}

static int transfer_cmd(enum verb v, int argc, char **argv)
{
    const char *cmd = v == V_UPLOAD     ? "datastore upload"
                      : v == V_DOWNLOAD ? "datastore download"
                                        : "datastore verify";
    const char *help = v == V_UPLOAD ? upload_help : v == V_DOWNLOAD ? download_help : verify_help;
    const char *config = NULL, *memory_arg = NULL;
    struct ccr_transfer_opts o;
    ccr_transfer_opts_init(&o);
    bool quiet = false, json = false;
    struct tool_store_flags sf = {0};
    const char *pos[2] = {NULL, NULL};
    int npos = 0, want = v == V_VERIFY ? 1 : 2;

    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":p:s:t:M:fqc:h", transfer_longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o.prefix = optarg;
            break;
        case 's':
            if (v != V_UPLOAD)
                return tool_usage(cmd, "--shard is an upload option");
            if (parse_shard(cmd, optarg, &o.shard_index, &o.shard_count) != 0)
                return EXIT_USAGE;
            break;
        case 't':
            if (tool_parse_threads(cmd, optarg, &o.threads) != 0)
                return EXIT_USAGE;
            break;
        case 'M':
            memory_arg = optarg;
            break;
        case 'f':
            if (v != V_DOWNLOAD)
                return tool_usage(cmd, "--force is a download option");
            o.force = true;
            break;
        case OPT_FOLLOW:
            if (v != V_UPLOAD)
                return tool_usage(cmd, "--follow-symlinks is an upload option");
            o.follow_symlinks = true;
            break;
        case OPT_NO_JOURNAL:
            if (v == V_VERIFY)
                return tool_usage(cmd, "verify keeps no journal (--no-journal is for upload and download)");
            o.no_journal = true;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return EXIT_OK;
        default:
            if (tool_store_option(cmd, c, optarg, &sf, argv) != EXIT_OK)
                return EXIT_USAGE;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (npos >= want)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos < 1)
        return tool_usage(cmd, "missing datastore NAME");
    if (npos < want)
        return tool_usage(cmd, v == V_UPLOAD ? "missing SRC" : "missing DST");
    if (tool_parse_memory(cmd, memory_arg, &o.memory) != 0)
        return EXIT_USAGE;

    struct tool_ds t;
    int ex = tool_ds_open(cmd, config, pos[0], &sf, &t);
    if (ex)
        return ex;
    bool tty = isatty(STDERR_FILENO) && !quiet;
    struct tool_progress pc = {.cmd = cmd};
    o.cancel = &tool_cancel;
    if (tty) {
        o.progress = tool_progress_draw;
        o.progress_arg = &pc;
    }
    ccr_log_set(tool_log_sink, (void *)cmd, CCR_LOG_WARN);
    tool_signals_install();

    struct ccr_transfer_result r;
    struct ccr_err e;
    const struct ccr_key *key = t.has_key ? &t.key : NULL;
    int rc;
    if (v == V_UPLOAD)
        rc = ccr_publish(t.store, t.ds, key, pos[1], &o, &r, &e);
    else if (v == V_DOWNLOAD)
        rc = ccr_download(t.store, t.ds, key, pos[1], &o, &r, &e);
    else
        rc = ccr_verify(t.store, t.ds, key, &o, &r, &e);
    tool_progress_clear(&pc);

    for (uint64_t i = 0; i < r.errors; i++)
        if (r.failed[i].err.code != -ECANCELED)
            tool_err_print(cmd, &r.failed[i].err, r.failed[i].path);
    if (rc == -ECANCELED)
        tool_err(cmd, NULL, "interrupted; no partial %s was left%s; run the same command again to resume",
                 v == V_UPLOAD ? "blob" : "file", r.files ? " (completed files were kept)" : "");
    else if (rc && r.errors == 0)
        tool_err_print(cmd, &e, v == V_DOWNLOAD ? pos[1] : pos[0]);
    if (tty && rc == 0) {
        char b[32];
        double rate = r.seconds > 0 ? (double)r.bytes_in / r.seconds / 1e6 : 0;
        fprintf(stderr, "ccr %s: %llu file%s, %s in %.2f s (%.0f MB/s)", cmd, (unsigned long long)r.files,
                r.files == 1 ? "" : "s", tool_human_bytes(r.bytes_in, b, sizeof(b)), r.seconds, rate);
        if (r.resumed)
            fprintf(stderr, "; %llu already complete (resumed)", (unsigned long long)r.resumed);
        if (r.skipped)
            fprintf(stderr, "; %llu skipped (see warnings)", (unsigned long long)r.skipped);
        fputc('\n', stderr);
    }
    struct ccr_store_stats st;
    ccr_store_get_stats(t.store, &st);
    if (tty && st.retries)
        fprintf(stderr, "ccr %s: %llu of %llu requests were retries (throttling or network errors)\n", cmd,
                (unsigned long long)st.retries, (unsigned long long)st.requests);
    if (json)
        print_json(cmd, pos[0], &r, rc, &e, &st);
    ccr_transfer_result_fini(&r);
    tool_ds_close(&t);
    return tool_exit_code(rc);
}

int cmd_datastore_upload(int argc, char **argv)
{
    return transfer_cmd(V_UPLOAD, argc, argv);
}

int cmd_datastore_download(int argc, char **argv)
{
    return transfer_cmd(V_DOWNLOAD, argc, argv);
}

int cmd_datastore_verify(int argc, char **argv)
{
    return transfer_cmd(V_VERIFY, argc, argv);
}
