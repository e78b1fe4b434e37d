/*
 * ccr_codec.c - `ccr encrypt`, `ccr decrypt`, `ccr inspect`: option mapping onto ccr_codec_run and
 * ccr_codec_inspect, progress line, messages and JSON summaries.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr_tool.h"

static const char encrypt_help[] =
    "Usage: ccr encrypt --key DEK [options] SRC DST\n"
    "\n"
    "Encrypts SRC into DST with the data encryption key in the file DEK (32 raw bytes, see 'ccr key new').\n"
    "SRC a file: DST is the encrypted file. SRC a directory: DST is a directory that receives every regular\n"
    "file under SRC at the same relative path (file names are not encrypted). Empty files are kept and\n"
    "empty directories recreated; symbolic links and special files are skipped with a warning.\n"
    "\n"
    "Every output file is written to a temporary name in its directory (.NAME.ccr-tmp-XXXXXX, mode 0600),\n"
    "synced and then renamed, so a failure or an interruption never leaves a partial file. Output files\n"
    "get their source's permission bits (at most 0666, minus the umask). In a tree, every file is\n"
    "attempted: each failure is reported and the files that succeeded stay.\n"
    "\n"
    "Options:\n"
    "  -k, --key DEK          data encryption key file (required)\n"
    "  -m, --mode MODE        ccr1 (default) or cleanroom-cse\n"
    "  -r, --region-size SIZE ccr1: region size, a power of two from 4K to 16M (default 1M);\n"
    "                         cleanroom-cse: chunk size, 16 bytes to 1G (default 16M, what the clean room\n"
    "                         platform uses). SIZE is bytes, or a K/M/G (= KiB/MiB/GiB) suffix\n"
    "  -t, --threads N        worker threads (default: the number of online CPUs)\n"
    "  -f, --force            replace an existing DST file; write into an existing DST directory\n"
    "  -q, --quiet            no progress line and no summary on the terminal\n"
    "      --json             print one JSON summary line on stdout:\n"
    "                         "
    "{\"command\":\"encrypt\",\"mode\":...,\"files\":N,\"bytes_in\":N,\"bytes_out\":N,\n"
    "                          \"seconds\":F,\"errors\":N,\"failed\":[{\"path\":...,\"error\":...}]}\n"
    "                         (files: files written successfully; errors: files that failed)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr key new --out ds.bin\n"
    "  ccr encrypt --key ds.bin data/ data.enc/\n"
    "  ccr encrypt --key ds.bin --mode cleanroom-cse train.csv train.csv.cse\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O or key error (missing SRC, existing DST without --force, disk\n"
    "full, permission denied, bad key file); 130/143 interrupted by SIGINT/SIGTERM (nothing partial left).\n"
    "In a tree the exit code is the most severe of the files'.\n";

static const char decrypt_help[] =
    "Usage: ccr decrypt --key DEK [options] SRC DST\n"
    "\n"
    "Decrypts SRC into DST with the data encryption key in the file DEK. SRC a file: DST is the plaintext\n"
    "file. SRC a directory: every regular file under it is decrypted to the same relative path under DST.\n"
    "Every region is authenticated before any of its bytes is written; a file that fails (tampered,\n"
    "truncated, extended, wrong key) leaves nothing behind: outputs go to a temporary name\n"
    "(.NAME.ccr-tmp-XXXXXX, mode 0600) that is renamed only once the whole file verified.\n"
    "\n"
    "Options:\n"
    "  -k, --key DEK          data encryption key file (required)\n"
    "  -m, --mode MODE        ccr1 (default) or cleanroom-cse\n"
    "  -r, --region-size SIZE ccr1: the region size is read from each file's header; if given, it must\n"
    "                         match it (else the file fails). cleanroom-cse: the chunk size the data was\n"
    "                         written with (default 16M). SIZE is bytes or a K/M/G suffix\n"
    "  -t, --threads N        worker threads (default: the number of online CPUs)\n"
    "  -f, --force            replace an existing DST file; write into an existing DST directory\n"
    "  -q, --quiet            no progress line and no summary on the terminal\n"
    "      --json             print one JSON summary line on stdout (as for encrypt, "
    "\"command\":\"decrypt\")\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr decrypt --key ds.bin data.enc/ data/\n"
    "  ccr decrypt --key ds.bin --mode cleanroom-cse train.csv.cse train.csv\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O or key error (including a ccr1 file encrypted under another\n"
    "key: the message gives both key ids); 3 authentication or format failure (the message names the\n"
    "region or chunk and its byte offset); 130/143 interrupted (nothing partial left). In a tree the exit\n"
    "code is the most severe of the files' (3 before 2).\n";

static const char inspect_help[] =
    "Usage: ccr inspect [options] FILE\n"
    "\n"
    "Shows what an encrypted file is: mode, blob size, plaintext size, region (chunk) size and count and,\n"
    "for ccr1, the key id in its header. The mode is detected (a \"CCR1\" header magic means ccr1; anything\n"
    "else is taken as cleanroom-cse if its size fits the chunk size) unless --mode is given. With --key it\n"
    "also says whether the key matches (ccr1) and authenticates every region, in parallel, writing nothing.\n"
    "\n"
    "Options:\n"
    "  -k, --key DEK          verify every region with this data encryption key\n"
    "  -m, --mode MODE        ccr1 or cleanroom-cse (default: detect)\n"
    "  -r, --region-size SIZE ccr1: must match the header if given; cleanroom-cse: chunk size (default 16M)\n"
    "  -t, --threads N        worker threads for verification (default: the number of online CPUs)\n"
    "      --json             print one JSON object on stdout:\n"
    "                         {\"file\":...,\"mode\":...,\"blob_size\":N,\"plaintext_size\":N|null,\n"
    "                          \"region_size\":N,\"regions\":N|null,\"key_id\":\"hex\"|null,\n"
    "                          \"key_matches\":true|false|null,\"authenticated\":true|false|null,\n"
    "                          \"failed_region\":N|null,\"error\":\"...\"|null}\n"
    "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr inspect data.enc/a.bin\n"
    "  ccr inspect --key ds.bin --json data.enc/a.bin\n"
    "\n"
    "Exit codes: 0 well-formed and (with --key) every region authenticates; 1 usage error; 2 I/O error,\n"
    "bad key file, or a ccr1 file under another key; 3 malformed file or authentication failure;\n"
    "130/143 interrupted.\n";

enum { OPT_JSON = 1000 };

static const struct option codec_longopts[] = {
    {"key", required_argument, NULL, 'k'},
    {"mode", required_argument, NULL, 'm'},
    {"region-size", required_argument, NULL, 'r'},
    {"threads", required_argument, NULL, 't'},
    {"force", no_argument, NULL, 'f'},
    {"quiet", no_argument, NULL, 'q'},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct codec_args {
    const char *key_path;
    enum ccr_mode mode;
    bool mode_set;
    uint64_t region_size;
    bool region_set;
    unsigned threads;
    bool force, quiet, json;
    const char *pos[2];
    int npos;
};

/* Parses the shared options. Returns -1 to go on, or an exit code (help printed, usage error). */
static int parse_codec_args(const char *cmd, const char *help, bool inspect, int argc, char **argv,
                            struct codec_args *a)
{
    memset(a, 0, sizeof(*a));
    a->mode = inspect ? CCR_MODE_AUTO : CCR_MODE_CCR1;
    const char *region_arg = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, inspect ? ":k:m:r:t:h" : ":k:m:r:t:fqh", codec_longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'k':
            a->key_path = optarg;
            break;
        case 'm':
            if (ccr_mode_parse(optarg, &a->mode) != 0 ||
                (a->mode != CCR_MODE_CCR1 && a->mode != CCR_MODE_CSE))
                return tool_usage(cmd, "invalid --mode '%s' (use ccr1 or cleanroom-cse)", optarg);
            a->mode_set = true;
            break;
        case 'r': {
            int rc = ccr_parse_size(optarg, &a->region_size);
            if (rc == -ERANGE)
                return tool_usage(cmd, "--region-size '%s' is too large", optarg);
            if (rc || a->region_size == 0)
                return tool_usage(cmd, "invalid --region-size '%s' (bytes, or a number with K, M or G)",
                                  optarg);
            a->region_set = true;
            region_arg = optarg;
            break;
        }
        case 't':
            if (tool_parse_threads(cmd, optarg, &a->threads) != 0)
                return EXIT_USAGE;
            break;
        case 'f':
            a->force = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case 'h':
            fputs(help, stdout);
            return EXIT_OK;
        default:
            if (inspect && (optopt == 'f' || optopt == 'q'))
                return tool_usage(cmd, "inspect has no option '-%c'", optopt);
            return tool_bad_option(cmd, c, argv);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (a->npos >= (inspect ? 1 : 2))
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        a->pos[a->npos++] = argv[i];
    }
    if (inspect && a->npos < 1)
        return tool_usage(cmd, "missing FILE");
    if (!inspect && a->npos < 2)
        return tool_usage(cmd, a->npos == 0 ? "missing SRC and DST" : "missing DST");
    if (!inspect && !a->key_path)
        return tool_usage(cmd, "missing --key DEK (create one with 'ccr key new --out FILE')");
    if (a->region_set && (!inspect || a->mode_set)) {
        char why[160];
        if (ccr_region_size_check(a->mode, a->region_size, why, sizeof(why)) != 0)
            return tool_usage(cmd, "invalid --region-size '%s': %s", region_arg, why);
    } else if (a->region_set) {
        /* inspect with detection: the value must make sense for at least one mode */
        if (ccr_region_size_check(CCR_MODE_CCR1, a->region_size, NULL, 0) != 0 &&
            ccr_region_size_check(CCR_MODE_CSE, a->region_size, NULL, 0) != 0)
            return tool_usage(cmd, "invalid --region-size '%s': out of range for both modes", region_arg);
    }
    return -1;
}

/* ----------------------------------------------------------------------------------------------------- */
/* encrypt / decrypt                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

static void print_json_summary(const char *cmd, enum ccr_mode mode, const struct ccr_codec_result *r, int rc,
                               const struct ccr_err *top)
{
    bool extra = rc != 0 && rc != -ECANCELED && r->errors == 0; /* a failure before any file */
    printf("{\"command\":\"%s\",\"mode\":\"%s\",\"files\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
           "\"seconds\":%.6f,\"errors\":%llu,\"failed\":[",
           cmd, ccr_mode_name(mode), (unsigned long long)r->files, (unsigned long long)r->bytes_in,
           (unsigned long long)r->bytes_out, r->seconds, (unsigned long long)(r->errors + (extra ? 1 : 0)));
    tool_json_failures(r->failed, r->errors, extra ? top : NULL, rc);
}

static int codec_cmd(enum ccr_codec_op op, int argc, char **argv)
{
    const char *cmd = op == CCR_CODEC_ENCRYPT ? "encrypt" : "decrypt";
    struct codec_args a;
    int ex =
        parse_codec_args(cmd, op == CCR_CODEC_ENCRYPT ? encrypt_help : decrypt_help, false, argc, argv, &a);
    if (ex >= 0)
        return ex;

    struct ccr_key key;
    ex = tool_key_load(cmd, a.key_path, &key);
    if (ex)
        return ex;

    bool tty = isatty(STDERR_FILENO) && !a.quiet;
    struct tool_progress pc = {.cmd = cmd};
    struct ccr_codec_opts o;
    ccr_codec_opts_init(&o);
    o.mode = a.mode;
    o.region_size = a.region_size;
    o.threads = a.threads;
    o.force = a.force;
    o.cancel = &tool_cancel;
    if (tty) {
        o.progress = tool_progress_draw;
        o.progress_arg = &pc;
    }
    ccr_log_set(tool_log_sink, (void *)cmd, CCR_LOG_WARN);
    tool_signals_install();

    struct ccr_codec_result r;
    struct ccr_err e;
    int rc = ccr_codec_run(op, &key, a.pos[0], a.pos[1], &o, &r, &e);
    ccr_key_wipe(&key);
    tool_progress_clear(&pc);

    for (uint64_t i = 0; i < r.errors; i++)
        if (r.failed[i].err.code != -ECANCELED)
            tool_err_print(cmd, &r.failed[i].err, r.failed[i].path);
    if (rc == -ECANCELED)
        tool_err(cmd, NULL, "interrupted; no partial output was left%s",
                 r.files ? " (files already completed were kept)" : "");
    else if (rc && r.errors == 0)
        tool_err_print(cmd, &e, a.pos[0]);
    if (tty && rc == 0) {
        char b[32];
        double rate = r.seconds > 0 ? (double)r.bytes_in / r.seconds / 1e6 : 0;
        fprintf(stderr, "ccr %s: %llu file%s, %s in %.2f s (%.0f MB/s)%s\n", cmd, (unsigned long long)r.files,
                r.files == 1 ? "" : "s", tool_human_bytes(r.bytes_in, b, sizeof(b)), r.seconds, rate,
                r.skipped ? "; some entries skipped (see warnings)" : "");
    }
    if (a.json)
        print_json_summary(cmd, a.mode, &r, rc, &e);
    ccr_codec_result_fini(&r);
    return tool_exit_code(rc);
}

int cmd_encrypt(int argc, char **argv)
{
    return codec_cmd(CCR_CODEC_ENCRYPT, argc, argv);
}

int cmd_decrypt(int argc, char **argv)
{
    return codec_cmd(CCR_CODEC_DECRYPT, argc, argv);
}

/* ----------------------------------------------------------------------------------------------------- */
/* inspect                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void print_inspect_json(const char *path, const struct ccr_inspect *in, int rc)
{
    char id[2 * CCR_KEY_ID_LEN + 1];
    printf("{\"file\":");
    tool_json_str(stdout, path);
    if (in->mode == CCR_MODE_AUTO) /* failed before the mode was known */
        printf(",\"mode\":null");
    else
        printf(",\"mode\":\"%s\"", ccr_mode_name(in->mode));
    printf(",\"blob_size\":%llu", (unsigned long long)in->blob_size);
    if (in->plain_known)
        printf(",\"plaintext_size\":%llu", (unsigned long long)in->plaintext_size);
    else
        printf(",\"plaintext_size\":null");
    printf(",\"region_size\":%llu", (unsigned long long)in->region_size);
    if (in->plain_known)
        printf(",\"regions\":%llu", (unsigned long long)in->regions);
    else
        printf(",\"regions\":null");
    if (in->has_key_id) {
        hex(in->key_id, CCR_KEY_ID_LEN, id);
        printf(",\"key_id\":\"%s\"", id);
    } else {
        printf(",\"key_id\":null");
    }
    printf(",\"key_matches\":%s", in->key_matches < 0 ? "null" : in->key_matches ? "true" : "false");
    printf(",\"authenticated\":%s", in->authenticated < 0 ? "null" : in->authenticated ? "true" : "false");
    if (in->failed_region >= 0)
        printf(",\"failed_region\":%lld", (long long)in->failed_region);
    else
        printf(",\"failed_region\":null");
    printf(",\"error\":");
    if (rc) {
        tool_json_str(stdout, in->err.msg[0] ? in->err.msg : strerror(rc < 0 ? -rc : EIO));
    } else {
        printf("null");
    }
    printf("}\n");
    fflush(stdout);
}

static void print_inspect_human(const char *path, const struct ccr_inspect *in, bool with_key)
{
    char h[32], id[2 * CCR_KEY_ID_LEN + 1];
    bool cse = in->mode == CCR_MODE_CSE;
    printf("file:            %s\n", path);
    printf("mode:            %s\n", ccr_mode_name(in->mode));
    printf("blob size:       %llu bytes (%s)\n", (unsigned long long)in->blob_size,
           tool_human_bytes(in->blob_size, h, sizeof(h)));
    if (in->plain_known)
        printf("plaintext size:  %llu bytes (%s)\n", (unsigned long long)in->plaintext_size,
               tool_human_bytes(in->plaintext_size, h, sizeof(h)));
    else
        printf("plaintext size:  unknown\n");
    if (in->region_size)
        printf("%-17s%llu bytes (%s)\n",
               cse ? "chunk size:" : "region size:", (unsigned long long)in->region_size,
               tool_human_bytes(in->region_size, h, sizeof(h)));
    if (in->plain_known)
        printf("%-17s%llu\n", cse ? "chunks:" : "regions:", (unsigned long long)in->regions);
    if (in->has_key_id) {
        hex(in->key_id, CCR_KEY_ID_LEN, id);
        printf("key id:          %s\n", id);
    }
    if (in->key_matches >= 0)
        printf("key matches:     %s\n", in->key_matches ? "yes" : "NO");
    else if (!cse && in->has_key_id && !with_key)
        printf("key matches:     not checked (no --key)\n");
    if (in->authenticated == 1)
        printf("authenticated:   yes (%llu %s)\n", (unsigned long long)in->regions,
               cse ? (in->regions == 1 ? "chunk" : "chunks") : (in->regions == 1 ? "region" : "regions"));
    else if (in->authenticated == 0)
        printf("authenticated:   NO: %s %lld failed\n", cse ? "chunk" : "region",
               (long long)in->failed_region);
    else if (!with_key)
        printf("authenticated:   not checked (no --key)\n");
    else
        printf("authenticated:   not checked\n");
    fflush(stdout);
}

int cmd_inspect(int argc, char **argv)
{
    const char *cmd = "inspect";
    struct codec_args a;
    int ex = parse_codec_args(cmd, inspect_help, true, argc, argv, &a);
    if (ex >= 0)
        return ex;
    struct ccr_key key;
    if (a.key_path) {
        ex = tool_key_load(cmd, a.key_path, &key);
        if (ex)
            return ex;
    }
    struct ccr_inspect_opts o;
    ccr_inspect_opts_init(&o);
    o.mode = a.mode;
    o.region_size = a.region_size;
    o.threads = a.threads;
    o.cancel = &tool_cancel;
    struct tool_progress pc = {.cmd = "inspect"};
    if (a.key_path && isatty(STDERR_FILENO)) {
        o.progress = tool_progress_draw;
        o.progress_arg = &pc;
    }
    tool_signals_install();

    struct ccr_inspect info;
    int rc = ccr_codec_inspect(a.pos[0], a.key_path ? &key : NULL, &o, &info);
    tool_progress_clear(&pc);
    if (a.key_path)
        ccr_key_wipe(&key);
    if (a.json)
        print_inspect_json(a.pos[0], &info, rc);
    else if (info.blob_size || info.plain_known || rc == 0 || info.err.code == -EBADMSG ||
             info.err.code == -ENOKEY)
        print_inspect_human(a.pos[0], &info, a.key_path != NULL);
    if (rc == -ECANCELED)
        tool_err(cmd, NULL, "interrupted");
    else if (rc)
        tool_err_print(cmd, &info.err, a.pos[0]);
    return tool_exit_code(rc);
}
