/*
 * ccr_datastore.c - `ccr datastore VERB`: the dispatch, and the verbs add, list, show, remove, ls and rm
 * (upload, download and verify are in ccr_transfer.c). Also the shared datastore helpers of ccr_tool.h:
 * tool_ds_open/tool_ds_close and tool_parse_memory.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ccr/blob.h"
#include "ccr_tool.h"

static const char datastore_help[] =
    "Usage: ccr datastore [--config FILE] <verb> [options]\n"
    "\n"
    "Manages datastores: named containers in a blob store, each with an encryption mode and a data\n"
    "encryption key (DEK), and moves data in and out of them. Datastores are recorded in a config file:\n"
    "--config FILE (accepted before the verb or by every verb), else $CCR_CONFIG, else\n"
    "$XDG_CONFIG_HOME/ccr/config.json, else ~/.config/ccr/config.json. The config refers to key files by\n"
    "path; keys are never stored in it.\n"
    "\n"
    "Verbs:\n"
    "  add NAME --url URL [--mode M] [--key DEK | --new-key]  record a datastore and create its container\n"
    "  list                     list the datastores (name, mode, url)\n"
    "  show NAME                show a datastore's settings and its key file's state\n"
    "  remove NAME              forget a datastore (its data and key file are kept)\n"
    "  upload NAME SRC          encrypt and publish a file or a directory tree\n"
    "  download NAME DST        download, authenticate and decrypt blobs into a directory\n"
    "  verify NAME              authenticate every region of every blob, writing nothing\n"
    "  ls NAME                  list the blobs (--long: plaintext size, stored size, time)\n"
    "  rm NAME BLOB...          delete blobs\n"
    "\n"
    "Run 'ccr datastore <verb> --help' for a verb's options.\n"
    "\n"
    "Example:\n"
    "  ccr datastore add owner1 --url /srv/store/owner1 --new-key\n"
    "  ccr datastore upload owner1 data/\n"
    "  ccr datastore ls owner1 --long\n"
    "  ccr datastore download owner1 restored/\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O, store or key error (also an unknown datastore); 3\n"
    "authentication or format failure; 130/143 interrupted.\n";

static const char add_help[] =
    "Usage: ccr datastore add NAME --url URL [--mode MODE] [--key DEK | --new-key] [--region-size SIZE]\n"
    "                         [--force] [--config FILE]\n"
    "\n"
    "Records datastore NAME in the config file (creating the file, mode 0600, and its directory, mode 0700)\n"
    "and creates its container in the store (saying whether it was created or already existed).\n"
    "NAME: 1 to 63 characters, letters, digits, '.', '_' or '-', starting with a letter or a digit.\n"
    "\n"
    "Options:\n"
    "  -u, --url URL          the container:\n"
    "                           file:///abs/path or a plain path: the embedded local store (recorded as a\n"
    "                           file:// URL with an absolute path)\n"
    "                           https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX][?SAS]: Azure Blob\n"
    "                           http://127.0.0.1:PORT/ACCOUNT/CONTAINER[/PREFIX]: an emulator (Azurite)\n"
    "                           az://CONTAINER[/PREFIX]: Azure, from $AZURE_STORAGE_CONNECTION_STRING\n"
    "                         Azure credentials, first found: a SAS in the URL (kept in the 0600 config),\n"
    "                         $AZURE_STORAGE_SAS_TOKEN, $AZURE_STORAGE_KEY, a bearer token\n"
    "                         ($AZURE_STORAGE_TOKEN, $AZURE_STORAGE_TOKEN_FILE or a managed-identity\n"
    "                         endpoint in $AZURE_STORAGE_IDENTITY_ENDPOINT), the connection string\n"
    "  -m, --mode MODE        ccr1 (default), cleanroom-cse, none (no client-side encryption), or cpk\n"
    "                         (Azure over https only: the service encrypts with the datastore's key,\n"
    "                         which is sent with every request and never stored by the service)\n"
    "  -k, --key DEK          an existing key file (32 raw bytes); recorded by its absolute path\n"
    "      --new-key          create a new key file <config dir>/NAME.key (mode 0600); refused if that\n"
    "                         file exists (use --key with it instead)\n"
    "                         ccr1 and cleanroom-cse need --key or --new-key; mode none takes neither\n"
    "  -r, --region-size SIZE ccr1: region size, a power of two from 4K to 16M (default 1M);\n"
    "                         cleanroom-cse: chunk size, 16 bytes to 1G (default 16M); not for mode none\n"
    "  -f, --force            replace an existing datastore of that name in the config\n"
    "  -c, --config FILE      the config file (default: $CCR_CONFIG, else "
    "$XDG_CONFIG_HOME/ccr/config.json)\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr datastore add owner1 --url /srv/store/owner1 --new-key\n"
    "  ccr datastore add owner1 --url https://acct.blob.core.windows.net/owner1 --new-key\n"
    "  ccr datastore add results --url file:///srv/store/results --key ~/keys/results.bin --region-size 4M\n"
    "  ccr datastore add public --url /srv/store/public --mode none\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error (bad name, mode, region size or URL scheme, missing or unwanted key\n"
    "option); 2 I/O or key error (NAME exists without --force, existing key file with --new-key, bad key\n"
    "file, the container cannot be created, the config cannot be read or written).\n";

static const char list_help[] =
    "Usage: ccr datastore list [--json] [--config FILE]\n"
    "\n"
    "Lists the datastores in the config file, one line each: name, mode, url (in name order).\n"
    "\n"
    "Options:\n"
    "      --json             print one JSON object instead:\n"
    "                         {\"datastores\":[{\"name\":...,\"url\":...,\"mode\":...,\"region_size\":N,\n"
    "                          \"key\":\"path\"|null}]}\n"
    "  -c, --config FILE      the config file\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 the config cannot be read or is malformed.\n";

static const char show_help[] =
    "Usage: ccr datastore show NAME [--json] [--config FILE]\n"
    "\n"
    "Shows every setting of datastore NAME, whether its key file exists and, for ccr1, the key's id (the\n"
    "id every ccr1 blob records in its header; safe to share).\n"
    "\n"
    "Options:\n"
    "      --json             print one JSON object instead:\n"
    "                         "
    "{\"name\":...,\"url\":...,\"mode\":...,\"region_size\":N,\"key\":\"path\"|null,\n"
    "                          \"key_exists\":true|false|null,\"key_id\":\"hex\"|null,\"config\":...}\n"
    "  -c, --config FILE      the config file\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unknown datastore, or the config cannot be read.\n";

static const char remove_help[] =
    "Usage: ccr datastore remove NAME [--config FILE]\n"
    "\n"
    "Forgets datastore NAME: removes it from the config file. The data in its container is untouched and\n"
    "its key file is kept (its path is printed: keep it, or the data cannot be decrypted).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE      the config file\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unknown datastore, or the config cannot be read or written.\n";

static const char ls_help[] =
    "Usage: ccr datastore ls NAME [--prefix P] [--long] [--json] [--config FILE] [--verbose]\n"
    "\n"
    "Lists the blobs of datastore NAME by full name, in byte-wise name order. File names are not\n"
    "encrypted, so no key is needed.\n"
    "\n"
    "Options:\n"
    "  -p, --prefix P         only blobs under P (\"P\" and \"P/\" both mean names starting with \"P/\",\n"
    "                         as for upload and download)\n"
    "  -l, --long             also show, before each name: plaintext size, stored size (bytes) and the\n"
    "                         modification time (ISO 8601, UTC)\n"
    "      --json             print one JSON object instead:\n"
    "                         "
    "{\"blobs\":[{\"name\":...,\"size\":N|null,\"stored_size\":N,\"mtime\":\"...\"}]}\n"
    "                         (size is the plaintext size; null if the blob fits no layout of the mode)\n"
    "  -c, --config FILE      the config file\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unknown datastore or store error; 3 a blob whose size fits no\n"
    "layout of the datastore's mode (named on stderr; the listing goes on).\n";

static const char rm_help[] =
    "Usage: ccr datastore rm NAME BLOB... [--config FILE]\n"
    "\n"
    "Deletes the named blobs (full names, as 'ccr datastore ls' prints them) from datastore NAME. Every\n"
    "blob is attempted: a missing one is reported by name and the others are still deleted.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE      the config file\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 every blob deleted; 1 usage error; 2 unknown datastore, a blob that does not exist, or\n"
    "a store error.\n";

enum { OPT_JSON = 1000, OPT_NEW_KEY };

/* ----------------------------------------------------------------------------------------------------- */
/* shared helpers (ccr_tool.h)                                                                            */
/* ----------------------------------------------------------------------------------------------------- */

/* Loads the config at the resolved path; prints the error. */
static int config_load(const char *cmd, const char *config_path, struct ccr_config **out)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    char *path = NULL;
    int rc = ccr_config_path(config_path, &path, &e);
    if (rc == 0) {
        rc = ccr_config_load(path, out, &e);
        if (rc)
            tool_err_print(cmd, &e, path);
    } else {
        tool_err_print(cmd, &e, "config");
    }
    ccr_free(path);
    return rc ? EXIT_IO : EXIT_OK;
}

static void unknown_ds(const char *cmd, const char *name)
{
    tool_err(cmd, NULL, "unknown datastore '%s' (see 'ccr datastore list')", name);
}

int tool_store_option(const char *cmd, int c, const char *arg, struct tool_store_flags *sf, char **argv)
{
    switch (c) {
    case OPT_STORE_CA:
        sf->ca_file = arg;
        return EXIT_OK;
    case OPT_STORE_CONN: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(arg, &end, 10);
        if (end == arg || *end || errno || arg[0] == '-' || n < 1 || n > 1024)
            return tool_usage(cmd, "invalid --connections '%s' (1 to 1024)", arg);
        sf->connections = (unsigned)n;
        return EXIT_OK;
    }
    case OPT_STORE_VERBOSE:
        sf->verbose = true;
        return EXIT_OK;
    default:
        return tool_bad_option(cmd, c, argv);
    }
}

const char *tool_url_display(const char *url, char *buf, size_t len)
{
    const char *q = strchr(url, '?');
    if (!q)
        return url;
    snprintf(buf, len, "%.*s?<SAS hidden>", (int)(q - url), url);
    return buf;
}

/* --verbose: the store's request log (called from its lanes; one fputs per line keeps lines whole) */
static void trace_sink(void *arg, const char *line)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "ccr %s: http: %s\n", (const char *)arg, line);
    fputs(buf, stderr);
}

static void store_opts_fill(const char *cmd, const struct tool_store_flags *sf, struct ccr_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    if (!sf)
        return;
    o->ca_file = sf->ca_file;
    o->connections = sf->connections;
    if (sf->verbose) {
        o->trace = trace_sink;
        o->trace_arg = (void *)cmd;
    }
}

/* As tool_ds_open; want_key false skips the key (listing and deleting need none). */
static int ds_open(const char *cmd, const char *config_path, const char *name, bool want_key,
                   const struct tool_store_flags *sf, struct tool_ds *out)
{
    struct tool_ds t;
    memset(&t, 0, sizeof(t));
    int rc = config_load(cmd, config_path, &t.cfg);
    if (rc)
        return rc;
    t.ds = ccr_config_find(t.cfg, name);
    if (!t.ds) {
        unknown_ds(cmd, name);
        tool_ds_close(&t);
        return EXIT_IO;
    }
    if (want_key && t.ds->mode != CCR_MODE_NONE) {
        rc = tool_key_load(cmd, t.ds->key_path, &t.key);
        if (rc) {
            tool_ds_close(&t);
            return rc;
        }
        t.has_key = true;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    struct ccr_store_opts so;
    store_opts_fill(cmd, sf, &so);
    if (t.ds->mode == CCR_MODE_CPK) {
        if (!t.has_key) { /* listing and deleting need no key, but every request on a cpk blob does */
            rc = tool_key_load(cmd, t.ds->key_path, &t.key);
            if (rc) {
                tool_ds_close(&t);
                return rc;
            }
            t.has_key = true;
        }
        so.cpk = &t.key;
    }
    int src = ccr_store_open_opts(t.ds->url, &so, &t.store, &e);
    if (src) {
        char ub[1024];
        tool_err_print(cmd, &e, tool_url_display(t.ds->url, ub, sizeof(ub)));
        tool_ds_close(&t);
        return EXIT_IO;
    }
    *out = t;
    return EXIT_OK;
}

int tool_ds_open(const char *cmd, const char *config_path, const char *name,
                 const struct tool_store_flags *sf, struct tool_ds *out)
{
    return ds_open(cmd, config_path, name, true, sf, out);
}

void tool_ds_close(struct tool_ds *t)
{
    if (!t)
        return;
    ccr_store_close(t->store);
    ccr_key_wipe(&t->key);
    ccr_config_free(t->cfg);
    memset(t, 0, sizeof(*t));
}

int tool_parse_memory(const char *cmd, const char *opt_value, uint64_t *out)
{
    const char *v = opt_value;
    const char *what = "--memory";
    if (!v) {
        v = getenv("CCR_MEMORY");
        what = "CCR_MEMORY";
        if (!v || !*v) {
            *out = 0;
            return EXIT_OK;
        }
    }
    uint64_t n = 0;
    int rc = ccr_parse_size(v, &n);
    if (rc == -ERANGE)
        return tool_usage(cmd, "%s value '%s' is too large", what, v);
    if (rc || n == 0)
        return tool_usage(cmd, "invalid %s value '%s' (bytes, or a number with K, M or G, e.g. 512M)", what,
                          v);
    *out = n;
    return EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* small helpers                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

static void print_hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

/* Directory part of a path (caller frees with free). */
static char *dirname_dup(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* mkdir -p, mode 0700 for the directories it creates. Returns 0 or -errno. */
static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = saved;
        if (!saved)
            break;
    }
    free(p);
    return rc;
}

/* A plain relative path made absolute against the current directory (URLs pass unchanged). */
static char *url_absolute(const char *url)
{
    if (strstr(url, "://") || url[0] == '/')
        return strdup(url);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return NULL;
    const char *rel = url;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    char *p = NULL;
    if (strcmp(rel, ".") == 0)
        return strdup(cwd);
    if (asprintf(&p, "%s/%s", cwd, rel) < 0)
        return NULL;
    return p;
}

static void iso8601(int64_t ns, char *buf, size_t len)
{
    time_t s = (time_t)(ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000));
    struct tm tm;
    if (!gmtime_r(&s, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

/* The prefix as a directory: "p" -> "p/" ("" and NULL -> NULL). Caller frees. */
static int dir_prefix(const char *cmd, const char *p, char **out)
{
    *out = NULL;
    if (!p || !*p)
        return EXIT_OK;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    if (n == 0)
        return EXIT_OK; /* "/" = everything */
    char *s = NULL;
    if (asprintf(&s, "%.*s/", (int)n, p) < 0) {
        tool_err(cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    s[n] = '\0';
    int rc = ccr_blob_name_check(s, &e);
    s[n] = '/';
    if (rc) {
        free(s);
        return tool_usage(cmd, "invalid --prefix '%s': %s", p, e.msg[0] ? e.msg : "bad blob name");
    }
    *out = s;
    return EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* add                                                                                                    */
/* ----------------------------------------------------------------------------------------------------- */

static int ds_add(int argc, char **argv)
{
    static const char cmd[] = "datastore add";
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"mode", required_argument, NULL, 'm'},
        {"key", required_argument, NULL, 'k'},
        {"new-key", no_argument, NULL, OPT_NEW_KEY},
        {"region-size", required_argument, NULL, 'r'},
        {"force", no_argument, NULL, 'f'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        TOOL_STORE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct tool_store_flags sf = {0};
    const char *url = NULL, *key_arg = NULL, *config = NULL, *name = NULL;
    bool new_key = false, force = false;
    enum ccr_mode mode = CCR_MODE_CCR1;
    uint64_t region = 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":u:m:k:r:fc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'm':
            if (ccr_mode_parse(optarg, &mode) != 0 || (mode != CCR_MODE_CCR1 && mode != CCR_MODE_CSE &&
                                                       mode != CCR_MODE_NONE && mode != CCR_MODE_CPK))
                return tool_usage(cmd, "invalid --mode '%s' (use ccr1, cleanroom-cse, none or cpk)", optarg);
            break;
        case 'k':
            key_arg = optarg;
            break;
        case OPT_NEW_KEY:
            new_key = true;
            break;
        case 'r': {
            int rc = ccr_parse_size(optarg, &region);
            if (rc == -ERANGE)
                return tool_usage(cmd, "--region-size '%s' is too large", optarg);
            if (rc || region == 0)
                return tool_usage(cmd, "invalid --region-size '%s' (bytes, or a number with K, M or G)",
                                  optarg);
            break;
        }
        case 'f':
            force = true;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(add_help, stdout);
            return EXIT_OK;
        default:
            if (tool_store_option(cmd, c, optarg, &sf, argv) != EXIT_OK)
                return EXIT_USAGE;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (name)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        name = argv[i];
    }
    if (!name)
        return tool_usage(cmd, "missing NAME");
    struct ccr_err e;
    ccr_err_clear(&e);
    if (ccr_datastore_name_check(name, &e) != 0)
        return tool_usage(cmd, "%s", e.msg);
    if (!url || !*url)
        return tool_usage(cmd, "missing --url URL");
    if (mode == CCR_MODE_NONE) {
        if (key_arg || new_key)
            return tool_usage(cmd, "mode none takes no key (drop %s)", key_arg ? "--key" : "--new-key");
        if (region)
            return tool_usage(cmd, "mode none has no region size (drop --region-size)");
    } else {
        if (key_arg && new_key)
            return tool_usage(cmd, "give either --key DEK or --new-key, not both");
        if (!key_arg && !new_key)
            return tool_usage(cmd, "mode %s needs a key: give --key DEK or --new-key", ccr_mode_name(mode));
        char why[160];
        if (mode == CCR_MODE_CPK) {
            if (region)
                return tool_usage(cmd, "mode cpk has no region size (drop --region-size)");
            if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "az://", 5) != 0)
                return tool_usage(cmd, "mode cpk needs an Azure https:// URL: the service accepts "
                                       "customer-provided keys over HTTPS only");
        } else if (ccr_region_size_check(mode, region, why, sizeof(why)) != 0) {
            return tool_usage(cmd, "invalid --region-size: %s", why);
        }
    }

    int ret = EXIT_IO;
    struct ccr_config *cfg = NULL;
    struct ccr_store *store = NULL;
    char *abs_url = NULL, *key_path = NULL, *cfg_dir = NULL;
    struct ccr_key key;
    memset(&key, 0, sizeof(key));

    ret = config_load(cmd, config, &cfg);
    if (ret)
        goto out;
    ret = EXIT_IO;
    bool replacing = ccr_config_find(cfg, name) != NULL;
    if (replacing && !force) {
        tool_err(cmd, NULL, "datastore '%s' already exists in %s (use --force to replace it)", name,
                 ccr_config_file(cfg));
        goto out;
    }
    cfg_dir = dirname_dup(ccr_config_file(cfg));
    if (!cfg_dir) {
        tool_err(cmd, NULL, "out of memory");
        goto out;
    }

    /* the key: an existing file, checked now; or the new key's path, which must not exist */
    if (key_arg) {
        ret = tool_key_load(cmd, key_arg, &key);
        if (ret)
            goto out;
        ret = EXIT_IO;
        key_path = realpath(key_arg, NULL);
        if (!key_path) {
            tool_err(cmd, key_arg, "%s", strerror(errno));
            goto out;
        }
    } else if (new_key) {
        if (asprintf(&key_path, "%s/%s.key", cfg_dir, name) < 0) {
            key_path = NULL;
            tool_err(cmd, NULL, "out of memory");
            goto out;
        }
        struct stat st;
        if (lstat(key_path, &st) == 0) {
            tool_err(cmd, key_path,
                     "a key file already exists; to use it, run again with --key %s instead of --new-key",
                     key_path);
            goto out;
        }
    }

    /* the store: checks the URL's scheme before anything is written */
    abs_url = url_absolute(url);
    if (!abs_url) {
        tool_err(cmd, url, "%s", strerror(errno ? errno : ENOMEM));
        goto out;
    }
    struct ccr_store_opts so;
    store_opts_fill(cmd, &sf, &so);
    int rc = ccr_store_open_opts(abs_url, &so, &store, &e);
    char ub[1024];
    if (rc) {
        tool_err_print(cmd, &e, tool_url_display(url, ub, sizeof(ub)));
        ret = (rc == -EPROTONOSUPPORT || rc == -EINVAL) ? EXIT_USAGE : EXIT_IO;
        goto out;
    }
    struct ccr_datastore ds = {
        .name = (char *)name,
        /* a URL with a SAS is kept whole (the config is 0600): the SAS is the credential */
        .url = strchr(abs_url, '?') ? abs_url : (char *)ccr_store_url(store),
        .mode = mode,
        .region_size = region,
        .key_path = key_path,
    };
    /* record it in memory now (validates it) so nothing is created for a record that cannot be saved */
    rc = ccr_config_add(cfg, &ds, true, &e);
    if (rc) {
        tool_err_print(cmd, &e, ccr_config_file(cfg));
        ret = EXIT_USAGE;
        goto out;
    }
    bool created = false;
    ccr_err_clear(&e);
    rc = ccr_store_create_container(store, &created, &e);
    if (rc) {
        tool_err_print(cmd, &e, ccr_store_url(store));
        ret = tool_exit_code(rc);
        goto out;
    }
    if (new_key) {
        rc = mkdir_p(cfg_dir);
        if (rc) {
            tool_err(cmd, cfg_dir, "cannot create the directory: %s", strerror(-rc));
            goto out;
        }
        if (ccr_key_generate(&key) != 0) {
            tool_err(cmd, NULL, "cannot generate a key (no randomness from the OS)");
            goto out;
        }
        ccr_err_clear(&e);
        rc = ccr_key_file_store(key_path, &key, false, &e);
        if (rc) {
            if (rc == -EEXIST)
                tool_err(cmd, key_path,
                         "a key file already exists; to use it, run again with --key %s instead of --new-key",
                         key_path);
            else
                tool_err_print(cmd, &e, key_path);
            goto out;
        }
    }
    ccr_err_clear(&e);
    rc = ccr_config_save(cfg, &e);
    if (rc) {
        tool_err_print(cmd, &e, ccr_config_file(cfg));
        if (new_key)
            fprintf(stderr, "ccr %s: the new key was kept in %s\n", cmd, key_path);
        goto out;
    }

    const struct ccr_datastore *d = ccr_config_find(cfg, name);
    char hb[32];
    printf("datastore '%s' %s %s\n", name, replacing ? "replaced in" : "added to", ccr_config_file(cfg));
    printf("  url:  %s (container %s)\n", tool_url_display(d->url, ub, sizeof(ub)),
           created ? "created" : "already exists");
    if (d->mode == CCR_MODE_NONE)
        printf("  mode: none (no client-side encryption)\n");
    else if (d->mode == CCR_MODE_CPK)
        printf("  mode: cpk (Azure encrypts with your key, sent with every request)\n");
    else
        printf("  mode: %s, %s %s\n", ccr_mode_name(d->mode),
               d->mode == CCR_MODE_CCR1 ? "region size" : "chunk size",
               tool_human_bytes(d->region_size, hb, sizeof(hb)));
    if (d->key_path) {
        printf("  key:  %s%s", d->key_path, new_key ? " (new, mode 0600: keep it safe and back it up)" : "");
        uint8_t id[CCR_KEY_ID_LEN];
        if (d->mode == CCR_MODE_CCR1 && ccr_key_id(&key, id) == 0) {
            printf("\n  key id: ");
            print_hex(stdout, id, sizeof(id));
        }
        printf("\n");
    }
    ret = EXIT_OK;
out:
    ccr_key_wipe(&key);
    ccr_store_close(store);
    ccr_config_free(cfg);
    free(abs_url);
    free(key_path);
    free(cfg_dir);
    return ret;
}

/* ----------------------------------------------------------------------------------------------------- */
/* list, show, remove                                                                                     */
/* ----------------------------------------------------------------------------------------------------- */

/* Parses [--json] [--config FILE] [--help] and up to max_pos positionals. -1 to go on, else exit code. */
static int parse_simple(const char *cmd, const char *help, bool allow_json, int argc, char **argv, bool *json,
                        const char **config, const char **pos, int max_pos, int *npos)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    *npos = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            if (!allow_json)
                return tool_usage(cmd, "unknown option '--json'");
            *json = true;
            break;
        case 'c':
            *config = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (*npos >= max_pos)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        pos[(*npos)++] = argv[i];
    }
    return -1;
}

static int ds_list(int argc, char **argv)
{
    static const char cmd[] = "datastore list";
    char ub[1024];
    bool json = false;
    const char *config = NULL, *pos[1];
    int npos;
    int r = parse_simple(cmd, list_help, true, argc, argv, &json, &config, pos, 0, &npos);
    if (r >= 0)
        return r;
    struct ccr_config *cfg = NULL;
    r = config_load(cmd, config, &cfg);
    if (r)
        return r;
    size_t n = ccr_config_count(cfg);
    if (json) {
        printf("{\"datastores\":[");
        for (size_t i = 0; i < n; i++) {
            const struct ccr_datastore *d = ccr_config_at(cfg, i);
            printf("%s{\"name\":", i ? "," : "");
            tool_json_str(stdout, d->name);
            printf(",\"url\":");
            tool_json_str(stdout, tool_url_display(d->url, ub, sizeof(ub)));
            printf(",\"mode\":\"%s\",\"region_size\":%llu,\"key\":", ccr_mode_name(d->mode),
                   (unsigned long long)d->region_size);
            if (d->key_path)
                tool_json_str(stdout, d->key_path);
            else
                printf("null");
            printf("}");
        }
        printf("]}\n");
    } else {
        int w = 4;
        for (size_t i = 0; i < n; i++) {
            int l = (int)strlen(ccr_config_at(cfg, i)->name);
            w = l > w ? l : w;
        }
        for (size_t i = 0; i < n; i++) {
            const struct ccr_datastore *d = ccr_config_at(cfg, i);
            printf("%-*s  %-13s  %s\n", w, d->name, ccr_mode_name(d->mode),
                   tool_url_display(d->url, ub, sizeof(ub)));
        }
        if (n == 0)
            fprintf(stderr, "ccr %s: no datastores in %s (add one with 'ccr datastore add')\n", cmd,
                    ccr_config_file(cfg));
    }
    ccr_config_free(cfg);
    return EXIT_OK;
}

static int ds_show(int argc, char **argv)
{
    static const char cmd[] = "datastore show";
    bool json = false;
    const char *config = NULL, *pos[1];
    int npos;
    int r = parse_simple(cmd, show_help, true, argc, argv, &json, &config, pos, 1, &npos);
    if (r >= 0)
        return r;
    if (npos < 1)
        return tool_usage(cmd, "missing NAME");
    struct ccr_config *cfg = NULL;
    r = config_load(cmd, config, &cfg);
    if (r)
        return r;
    const struct ccr_datastore *d = ccr_config_find(cfg, pos[0]);
    if (!d) {
        unknown_ds(cmd, pos[0]);
        ccr_config_free(cfg);
        return EXIT_IO;
    }
    /* the key file's state: exists? loads? its id (ccr1) */
    char ub[1024];
    bool key_exists = false, key_ok = false;
    char key_problem[600] = "";
    uint8_t id[CCR_KEY_ID_LEN];
    if (d->key_path) {
        struct stat st;
        key_exists = stat(d->key_path, &st) == 0;
        struct ccr_key k;
        struct ccr_err e;
        ccr_err_clear(&e);
        if (key_exists) {
            if (ccr_key_file_load(d->key_path, &k, NULL, &e) == 0) {
                key_ok = d->mode != CCR_MODE_CCR1 || ccr_key_id(&k, id) == 0;
                ccr_key_wipe(&k);
            } else {
                snprintf(key_problem, sizeof(key_problem), "%s", e.msg[0] ? e.msg : strerror(-e.code));
            }
        }
    }
    if (json) {
        printf("{\"name\":");
        tool_json_str(stdout, d->name);
        printf(",\"url\":");
        tool_json_str(stdout, tool_url_display(d->url, ub, sizeof(ub)));
        printf(",\"mode\":\"%s\",\"region_size\":%llu,\"key\":", ccr_mode_name(d->mode),
               (unsigned long long)d->region_size);
        if (d->key_path) {
            tool_json_str(stdout, d->key_path);
            printf(",\"key_exists\":%s,\"key_id\":", key_exists ? "true" : "false");
            if (key_ok && d->mode == CCR_MODE_CCR1) {
                printf("\"");
                print_hex(stdout, id, sizeof(id));
                printf("\"");
            } else {
                printf("null");
            }
        } else {
            printf("null,\"key_exists\":null,\"key_id\":null");
        }
        printf(",\"config\":");
        tool_json_str(stdout, ccr_config_file(cfg));
        printf("}\n");
    } else {
        char hb[32];
        printf("name:        %s\n", d->name);
        printf("url:         %s\n", tool_url_display(d->url, ub, sizeof(ub)));
        printf("mode:        %s\n", ccr_mode_name(d->mode));
        if (d->mode != CCR_MODE_NONE && d->mode != CCR_MODE_CPK)
            printf("%-12s %llu (%s)\n", d->mode == CCR_MODE_CCR1 ? "region size:" : "chunk size:",
                   (unsigned long long)d->region_size, tool_human_bytes(d->region_size, hb, sizeof(hb)));
        if (d->key_path) {
            printf("key:         %s (%s)\n", d->key_path,
                   !key_exists      ? "MISSING"
                   : key_problem[0] ? key_problem
                                    : "exists");
            if (key_ok && d->mode == CCR_MODE_CCR1) {
                printf("key id:      ");
                print_hex(stdout, id, sizeof(id));
                printf("\n");
            }
        } else {
            printf("key:         none (mode none)\n");
        }
        printf("config:      %s\n", ccr_config_file(cfg));
    }
    ccr_config_free(cfg);
    return EXIT_OK;
}

static int ds_remove(int argc, char **argv)
{
    static const char cmd[] = "datastore remove";
    bool json = false;
    const char *config = NULL, *pos[1];
    int npos;
    int r = parse_simple(cmd, remove_help, false, argc, argv, &json, &config, pos, 1, &npos);
    if (r >= 0)
        return r;
    if (npos < 1)
        return tool_usage(cmd, "missing NAME");
    struct ccr_config *cfg = NULL;
    r = config_load(cmd, config, &cfg);
    if (r)
        return r;
    int ret = EXIT_IO;
    char *url = NULL, *key = NULL;
    const struct ccr_datastore *d = ccr_config_find(cfg, pos[0]);
    if (!d) {
        unknown_ds(cmd, pos[0]);
        goto out;
    }
    url = strdup(d->url);
    key = d->key_path ? strdup(d->key_path) : NULL;
    if (!url || (d->key_path && !key)) {
        tool_err(cmd, NULL, "out of memory");
        goto out;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    if (ccr_config_remove(cfg, pos[0], &e) != 0 || ccr_config_save(cfg, &e) != 0) {
        tool_err_print(cmd, &e, ccr_config_file(cfg));
        goto out;
    }
    printf("datastore '%s' removed from %s\n", pos[0], ccr_config_file(cfg));
    printf("  its data in %s is untouched\n", url);
    if (key)
        printf("  its key file is kept: %s (the data cannot be decrypted without it)\n", key);
    ret = EXIT_OK;
out:
    free(url);
    free(key);
    ccr_config_free(cfg);
    return ret;
}

/* ----------------------------------------------------------------------------------------------------- */
/* ls, rm                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

static int ds_ls(int argc, char **argv)
{
    static const char cmd[] = "datastore ls";
    static const struct option opts[] = {
        {"prefix", required_argument, NULL, 'p'},
        {"long", no_argument, NULL, 'l'},
        {"json", no_argument, NULL, OPT_JSON},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        TOOL_STORE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct tool_store_flags sf = {0};
    const char *prefix_arg = NULL, *config = NULL, *name = NULL;
    bool lng = false, json = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":p:lc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            prefix_arg = optarg;
            break;
        case 'l':
            lng = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(ls_help, stdout);
            return EXIT_OK;
        default:
            if (tool_store_option(cmd, c, optarg, &sf, argv) != EXIT_OK)
                return EXIT_USAGE;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (name)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        name = argv[i];
    }
    if (!name)
        return tool_usage(cmd, "missing NAME");
    char *prefix = NULL;
    int ret = dir_prefix(cmd, prefix_arg, &prefix);
    if (ret)
        return ret;
    struct tool_ds t;
    memset(&t, 0, sizeof(t));
    ret = ds_open(cmd, config, name, false, &sf, &t);
    if (ret) {
        free(prefix);
        return ret;
    }
    bool sizes = lng || json;
    char *marker = NULL;
    size_t shown = 0;
    if (json)
        printf("{\"blobs\":[");
    for (;;) {
        struct ccr_blob_page page;
        memset(&page, 0, sizeof(page));
        struct ccr_err e;
        ccr_err_clear(&e);
        int rc = ccr_store_list(t.store, prefix, NULL, marker, 0, &page, &e);
        if (rc) {
            if (json)
                printf("]}\n");
            fflush(stdout);
            tool_err_print(cmd, &e, t.ds->url);
            ret = tool_exit_code(rc);
            break;
        }
        for (size_t i = 0; i < page.count; i++) {
            const struct ccr_blob_item *it = &page.items[i];
            if (it->is_prefix)
                continue;
            uint64_t plain = 0;
            bool plain_ok = true;
            if (sizes) {
                ccr_err_clear(&e);
                int prc = ccr_blob_plain_size(t.store, t.ds, it->name, &it->props, &plain, &e);
                if (prc) {
                    plain_ok = false;
                    fflush(stdout);
                    tool_err_print(cmd, &e, it->name);
                    int x = tool_exit_code(prc);
                    ret = x > ret ? x : ret;
                }
            }
            char when[40];
            iso8601(it->props.mtime_ns, when, sizeof(when));
            if (json) {
                printf("%s{\"name\":", shown ? "," : "");
                tool_json_str(stdout, it->name);
                if (plain_ok)
                    printf(",\"size\":%llu", (unsigned long long)plain);
                else
                    printf(",\"size\":null");
                printf(",\"stored_size\":%llu,\"mtime\":\"%s\"}", (unsigned long long)it->props.size, when);
            } else if (lng) {
                if (plain_ok)
                    printf("%14llu", (unsigned long long)plain);
                else
                    printf("%14s", "?");
                printf("  %14llu  %s  %s\n", (unsigned long long)it->props.size, when, it->name);
            } else {
                printf("%s\n", it->name);
            }
            shown++;
        }
        free(marker);
        marker = page.next_marker ? strdup(page.next_marker) : NULL;
        bool more = page.next_marker != NULL;
        ccr_blob_page_fini(&page);
        if (!more) {
            if (json)
                printf("]}\n");
            break;
        }
        if (!marker) {
            if (json)
                printf("]}\n");
            tool_err(cmd, NULL, "out of memory");
            ret = EXIT_IO;
            break;
        }
    }
    free(marker);
    free(prefix);
    tool_ds_close(&t);
    return ret;
}

static int ds_rm(int argc, char **argv)
{
    static const char cmd[] = "datastore rm";
    bool json = false;
    const char *config = NULL;
    int npos;
    const char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (!pos) {
        tool_err(cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    int ret = parse_simple(cmd, rm_help, false, argc, argv, &json, &config, pos, argc, &npos);
    if (ret >= 0)
        goto out;
    if (npos < 1) {
        ret = tool_usage(cmd, "missing NAME");
        goto out;
    }
    if (npos < 2) {
        ret = tool_usage(cmd, "missing BLOB (the names of the blobs to delete)");
        goto out;
    }
    struct tool_ds t;
    memset(&t, 0, sizeof(t));
    ret = ds_open(cmd, config, pos[0], false, NULL, &t);
    if (ret)
        goto out;
    for (int i = 1; i < npos; i++) {
        struct ccr_err e;
        ccr_err_clear(&e);
        int rc = ccr_store_delete(t.store, pos[i], &e);
        if (rc == 0) {
            printf("deleted %s\n", pos[i]);
            continue;
        }
        fflush(stdout);
        if (rc == -ENOENT)
            tool_err(cmd, pos[i], "no such blob in datastore '%s'", t.ds->name);
        else
            tool_err_print(cmd, &e, pos[i]);
        int x = tool_exit_code(rc);
        ret = x > ret ? x : ret;
    }
    tool_ds_close(&t);
out:
    free(pos);
    return ret;
}

/* ----------------------------------------------------------------------------------------------------- */
/* dispatch                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(int, char **);
} verbs[] = {
    {"add", ds_add},
    {"list", ds_list},
    {"show", ds_show},
    {"remove", ds_remove},
    {"upload", cmd_datastore_upload},
    {"download", cmd_datastore_download},
    {"verify", cmd_datastore_verify},
    {"ls", ds_ls},
    {"rm", ds_rm},
};

int cmd_datastore(int argc, char **argv)
{
    static const char cmd[] = "datastore";
    int i = 1;
    /* options before the verb: --help, --config FILE (handed to the verbs through $CCR_CONFIG) */
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(datastore_help, stdout);
            return EXIT_OK;
        }
        const char *val = NULL;
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc)
                return tool_usage(cmd, "option '%s' needs a value", a);
            val = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            val = a + 9;
        } else {
            return tool_usage(cmd, "unknown option '%s' (options go after the verb)", a);
        }
        if (!*val)
            return tool_usage(cmd, "empty --config value");
        if (setenv("CCR_CONFIG", val, 1) != 0) {
            tool_err(cmd, NULL, "cannot set CCR_CONFIG: %s", strerror(errno));
            return EXIT_IO;
        }
        i++;
    }
    if (i >= argc)
        return tool_usage(cmd, "missing verb (add, list, show, remove, upload, download, verify, ls, rm)");
    for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
        if (strcmp(argv[i], verbs[k].name) == 0)
            return verbs[k].fn(argc - i, argv + i);
    return tool_usage(cmd, "unknown verb '%s' (add, list, show, remove, upload, download, verify, ls, rm)",
                      argv[i]);
}
