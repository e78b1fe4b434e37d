/*
 * ccr_spec.c - `ccr spec ...`: each party writes its fragment of the clean room specification (parties,
 * datasources, datasinks, applications, network, logging, telemetry), then the fragments are merged and
 * validated (docs/governance.md, "Specification"). Option mapping onto governance/spec.c.
 *
 * Exit codes: 0 ok; 1 usage error (bad flag or value, a name taken without --force); 2 I/O error (a file
 * missing, unreadable or unwritable, FILE exists for init); 3 the spec is malformed or invalid.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/gov_crypto.h"
#include "ccr/spec.h"
#include "ccr_tool.h"

static const char spec_help[] =
    "Usage: ccr spec VERB FILE [options]\n"
    "\n"
    "Writes, merges and validates clean room specification fragments (YAML when FILE ends in .yaml or\n"
    ".yml, else JSON). Each party writes its own fragment; one of them merges them for the contract.\n"
    "\n"
    "  ccr spec init FILE --party NAME [--member-cert FILE] [--force]\n"
    "  ccr spec add-datasource FILE --name N (--datastore DS | --url U --mode M) --mount-path P\n"
    "                          [--kek-secret S --wrapped-dek B64|@FILE] [--owner PARTY] [--force]\n"
    "  ccr spec add-datasink FILE ...same...\n"
    "  ccr spec add-application FILE --name N --command CMD [--arg A]... [--env K=V]... --mount NAME...\n"
    "  ccr spec set-network FILE --egress deny|allow [--allow HOST]...\n"
    "  ccr spec set-logging FILE --sink NAME\n"
    "  ccr spec set-telemetry FILE --sink NAME\n"
    "  ccr spec merge OUT FRAGMENT... [--force]\n"
    "  ccr spec validate FILE [--json]\n"
    "\n"
    "Run 'ccr spec VERB --help' for details. Exit codes: 0 ok; 1 usage error; 2 I/O error; 3 malformed\n"
    "or invalid spec.\n";

static const char init_help[] =
    "Usage: ccr spec init FILE --party NAME [--member-cert FILE] [--force]\n"
    "\n"
    "Starts a party's fragment: a spec with one party. With --member-cert the party's member_id (the hex\n"
    "SHA-256 of the certificate's DER, as 'ccr gov member id' prints it) is recorded too.\n"
    "\n"
    "Options:\n"
    "  -p, --party NAME         the party's name (letters, digits, '.', '_', '-')\n"
    "  -c, --member-cert FILE   the party's governance member certificate (PEM)\n"
    "  -f, --force              replace an existing FILE\n"
    "  -h, --help               show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 FILE exists (without --force), a bad certificate or FILE cannot be\n"
    "written.\n";

static const char store_help[] =
    "Usage: ccr spec add-%s FILE --name N (--datastore DS | --url U --mode M) --mount-path P\n"
    "                          [--kek-secret S --wrapped-dek B64|@FILE] [--owner PARTY] [--force]\n"
    "\n"
    "Adds a %s (mounted %s in the clean room) to the fragment FILE. --datastore takes the URL and\n"
    "mode of a datastore recorded with 'ccr datastore add'. Encrypted modes (ccr1, cleanroom-cse) need\n"
    "the name of the contract secret holding the KEK private key and the DEK wrapped under that KEK\n"
    "('ccr key wrap').\n"
    "\n"
    "Options:\n"
    "  -n, --name N             the access point's name, used in applications' mounts\n"
    "  -d, --datastore DS       take url and mode from the datastore DS\n"
    "      --config FILE        the datastore config (default: $CCR_CONFIG, else ~/.config/ccr/config.json)\n"
    "  -u, --url U              the store URL (with --mode)\n"
    "  -m, --mode M             ccr1, cleanroom-cse, none or cpk (with --url)\n"
    "  -P, --mount-path P       where it is mounted in the clean room (absolute)\n"
    "  -k, --kek-secret S       the contract secret holding the KEK\n"
    "  -w, --wrapped-dek B64    the wrapped DEK in base64, or @FILE to read it from FILE\n"
    "  -o, --owner PARTY        the owning party (default: the fragment's single party)\n"
    "  -f, --force              replace an access point of the same name\n"
    "  -h, --help               show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error or the name exists (without --force); 2 I/O error; 3 malformed FILE.\n";

static const char app_help[] =
    "Usage: ccr spec add-application FILE --name N --command CMD [--arg A]... [--env K=V]... --mount "
    "NAME...\n"
    "                                [--force]\n"
    "\n"
    "Adds an application: the program CMD run with the arguments A (in order), the environment K=V, and\n"
    "the access points (datasources and datasinks, of any party) it mounts.\n"
    "\n"
    "Options:\n"
    "  -n, --name N       the application's name\n"
    "  -c, --command CMD  the program\n"
    "  -a, --arg A        an argument (repeat for more)\n"
    "  -e, --env K=V      an environment variable (repeat for more)\n"
    "  -m, --mount NAME   an access point it mounts (repeat for more; NAME,NAME also works)\n"
    "  -f, --force        replace an application of the same name\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error or the name exists (without --force); 2 I/O error; 3 malformed FILE.\n";

static const char net_help[] =
    "Usage: ccr spec set-network FILE --egress deny|allow [--allow HOST]...\n"
    "\n"
    "Sets the clean room's network policy: egress deny (only the hosts given with --allow are reachable)\n"
    "or allow (everything is). Replaces any earlier setting in FILE.\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O error; 3 malformed FILE.\n";

static const char sink_help[] =
    "Usage: ccr spec set-%s FILE --sink NAME\n"
    "\n"
    "Sends the clean room's %s to the datasink NAME. Replaces any earlier setting in FILE.\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 I/O error; 3 malformed FILE.\n";

static const char merge_help[] =
    "Usage: ccr spec merge OUT FRAGMENT... [--force]\n"
    "\n"
    "Merges the parties' fragments into one spec and validates it. Parties, datasources, datasinks and\n"
    "applications are concatenated; network, logging and telemetry come from the fragment that sets them\n"
    "(two fragments setting them differently is an error). An invalid result is not written: every\n"
    "problem is listed. With --force it is written anyway (the problems are still listed).\n"
    "\n"
    "Exit codes: 0 written; 1 usage error; 2 I/O error; 3 malformed fragment, conflict or invalid spec.\n";

static const char validate_help[] =
    "Usage: ccr spec validate FILE [--json]\n"
    "\n"
    "Checks a (merged) spec: prints \"valid\", or one line per problem naming the item. With --json prints\n"
    "{\"valid\":bool,\"problems\":[...]}.\n"
    "\n"
    "Exit codes: 0 valid; 1 usage error; 2 I/O error; 3 malformed or invalid.\n";

enum { OPT_JSON = 1000, OPT_CONFIG };

/* ----------------------------------------------------------------------------------------------------- */
/* helpers                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

/* Loads the spec at path into *out (NULL on failure, after printing). */
static int load_spec(const char *cmd, const char *path, json_t **out)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_load(path, out, &e);
    if (rc == 0 && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        tool_err(cmd, path, "not a spec: expected a mapping (parties, datasources, ...)");
        return EXIT_AUTH;
    }
    if (rc < 0)
        *out = NULL;
    if (rc == -ENOENT) {
        tool_err(cmd, path, "no such file (start a fragment with 'ccr spec init')");
        return EXIT_IO;
    }
    if (rc < 0) {
        tool_err_print(cmd, &e, path);
        return rc == -EBADMSG ? EXIT_AUTH : EXIT_IO;
    }
    return EXIT_OK;
}

static int save_spec(const char *cmd, const char *path, const json_t *spec)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_save(path, spec, &e);
    if (rc < 0) {
        tool_err_print(cmd, &e, path);
        return EXIT_IO;
    }
    return EXIT_OK;
}

/* The one FILE argument after the options: *path, or a usage error when it is missing or followed by more. */
static int one_file(const char *cmd, int argc, char **argv, const char **path)
{
    if (optind >= argc)
        return tool_usage(cmd, "missing FILE");
    if (optind + 1 < argc)
        return tool_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
    *path = argv[optind];
    return EXIT_OK;
}

/* [A-Za-z0-9][A-Za-z0-9._-]*, at most 63 (the same rule as validation). */
static int check_name(const char *cmd, const char *what, const char *s)
{
    size_t n = strlen(s);
    bool ok = n > 0 && n <= 63;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
    }
    if (!ok)
        return tool_usage(
            cmd, "%s '%s' is not allowed: letters, digits, '.', '_', '-' (not first), at most 63", what, s);
    return EXIT_OK;
}

/* The list `key` of spec, created when absent. NULL (after printing) when it is not a list. */
static json_t *spec_list(const char *cmd, const char *path, json_t *spec, const char *key)
{
    json_t *l = json_object_get(spec, key);
    if (!l || json_is_null(l)) {
        l = json_array();
        if (!l || json_object_set_new(spec, key, l) != 0) {
            tool_err(cmd, path, "out of memory");
            return NULL;
        }
    }
    if (!json_is_array(l)) {
        tool_err(cmd, path, "%s is not a list: fix the file", key);
        return NULL;
    }
    return l;
}

/* Puts item (stolen) at index at of list, or appends it when at < 0. 0 or -1 (out of memory). */
static int put_named(json_t *list, ssize_t at, json_t *item)
{
    return at >= 0 ? json_array_set_new(list, (size_t)at, item) : json_array_append_new(list, item);
}

/* Index of the item named name in list, or -1. */
static ssize_t find_named(const json_t *list, const char *name)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(list, i), "name"));
        if (n && strcmp(n, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Sets spec[key] = v (stolen), keeping the key's place if it exists, else adding it at the end. */
static int set_key(const char *cmd, const char *path, json_t *spec, const char *key, json_t *v)
{
    if (!v || json_object_set_new(spec, key, v) != 0) {
        tool_err(cmd, path, "out of memory");
        return EXIT_IO;
    }
    return EXIT_OK;
}

/* Loads the spec at path, sets its key to v (stolen) and saves it. */
static int update_key(const char *cmd, const char *path, const char *key, json_t *v)
{
    json_t *spec;
    int ex = load_spec(cmd, path, &spec);
    if (ex == EXIT_OK)
        ex = set_key(cmd, path, spec, key, v);
    else
        json_decref(v);
    if (ex == EXIT_OK)
        ex = save_spec(cmd, path, spec);
    json_decref(spec);
    return ex;
}

/* Reads B64 or @FILE; trailing whitespace stripped. *out malloc'ed. */
static int read_b64_arg(const char *cmd, const char *arg, char **out)
{
    char *s = NULL;
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        if (!f) {
            tool_err(cmd, arg + 1, "cannot open: %s", strerror(errno));
            return EXIT_IO;
        }
        size_t cap = 64 * 1024;
        s = malloc(cap + 1);
        size_t n = s ? fread(s, 1, cap + 1, f) : 0;
        bool bad = ferror(f);
        fclose(f);
        if (!s || bad || n > cap) {
            free(s);
            tool_err(cmd, arg + 1, "%s", bad ? "cannot read" : !s ? "out of memory" : "larger than 64 KiB");
            return EXIT_IO;
        }
        s[n] = '\0';
    } else {
        s = strdup(arg);
        if (!s) {
            tool_err(cmd, NULL, "out of memory");
            return EXIT_IO;
        }
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    uint8_t buf[8192];
    if (n == 0 || n % 4 != 0 || n > sizeof(buf) * 4 / 3 || ccr_base64_decode(s, n, buf, sizeof(buf)) <= 0) {
        free(s);
        return tool_usage(cmd, "--wrapped-dek is not base64 (the output of 'ccr key wrap')");
    }
    *out = s;
    return EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* init                                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

static int spec_init(int argc, char **argv)
{
    const char *cmd = "spec init";
    static const struct option lo[] = {{"party", required_argument, NULL, 'p'},
                                       {"member-cert", required_argument, NULL, 'c'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *party = NULL, *cert = NULL;
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:c:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            party = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(init_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    const char *path = NULL;
    int ex = one_file(cmd, argc, argv, &path);
    if (ex)
        return ex;
    if (!party)
        return tool_usage(cmd, "missing --party NAME");
    if ((ex = check_name(cmd, "party name", party)) != EXIT_OK)
        return ex;
    struct stat st;
    if (!force && stat(path, &st) == 0) {
        tool_err(cmd, path, "already exists (use --force to replace it)");
        return EXIT_IO;
    }

    json_t *p = json_pack("{s:s}", "name", party);
    if (p && cert) {
        struct ccr_gov_ident *id = NULL;
        struct ccr_err e;
        ccr_err_clear(&e);
        int rc = ccr_gov_ident_load(cert, NULL, &id, &e);
        if (rc < 0) {
            json_decref(p);
            tool_err_print(cmd, &e, cert);
            return EXIT_IO;
        }
        json_object_set_new(p, "member_id", json_string(ccr_gov_ident_id(id)));
        ccr_gov_ident_destroy(id);
    }
    json_t *spec = p ? json_pack("{s:[o]}", "parties", p) : NULL;
    if (!spec) {
        tool_err(cmd, path, "out of memory");
        return EXIT_IO;
    }
    ex = save_spec(cmd, path, spec);
    json_decref(spec);
    return ex;
}

/* ----------------------------------------------------------------------------------------------------- */
/* add-datasource / add-datasink                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/* url and mode of datastore name from the ccr config. */
static int datastore_lookup(const char *cmd, const char *config_path, const char *name, char **url,
                            char **mode)
{
    struct ccr_err e;
    ccr_err_clear(&e);
    char *path = NULL;
    struct ccr_config *cfg = NULL;
    int rc = ccr_config_path(config_path, &path, &e);
    if (rc == 0)
        rc = ccr_config_load(path, &cfg, &e);
    if (rc < 0) {
        tool_err_print(cmd, &e, path ? path : "config");
        ccr_free(path);
        return EXIT_IO;
    }
    ccr_free(path);
    const struct ccr_datastore *ds = ccr_config_find(cfg, name);
    if (!ds) {
        ccr_config_free(cfg);
        tool_err(cmd, NULL, "unknown datastore '%s' (see 'ccr datastore list')", name);
        return EXIT_USAGE;
    }
    *url = strdup(ds->url);
    *mode = strdup(ccr_mode_name(ds->mode));
    ccr_config_free(cfg);
    if (!*url || !*mode) {
        free(*url);
        free(*mode);
        tool_err(cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    return EXIT_OK;
}

static int spec_add_store(int argc, char **argv, bool sink)
{
    const char *cmd = sink ? "spec add-datasink" : "spec add-datasource";
    const char *list_key = sink ? "datasinks" : "datasources";
    const char *other_key = sink ? "datasources" : "datasinks";
    const char *what = sink ? "datasink" : "datasource", *other_what = sink ? "datasource" : "datasink";
    static const struct option lo[] = {{"name", required_argument, NULL, 'n'},
                                       {"datastore", required_argument, NULL, 'd'},
                                       {"config", required_argument, NULL, OPT_CONFIG},
                                       {"url", required_argument, NULL, 'u'},
                                       {"mode", required_argument, NULL, 'm'},
                                       {"mount-path", required_argument, NULL, 'P'},
                                       {"kek-secret", required_argument, NULL, 'k'},
                                       {"wrapped-dek", required_argument, NULL, 'w'},
                                       {"owner", required_argument, NULL, 'o'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *name = NULL, *datastore = NULL, *config = NULL, *url_arg = NULL, *mode_arg = NULL;
    const char *mount = NULL, *kek = NULL, *wdek_arg = NULL, *owner = NULL;
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:d:u:m:P:k:w:o:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'd':
            datastore = optarg;
            break;
        case OPT_CONFIG:
            config = optarg;
            break;
        case 'u':
            url_arg = optarg;
            break;
        case 'm':
            mode_arg = optarg;
            break;
        case 'P':
            mount = optarg;
            break;
        case 'k':
            kek = optarg;
            break;
        case 'w':
            wdek_arg = optarg;
            break;
        case 'o':
            owner = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            printf(store_help, what, what, sink ? "read-write" : "read-only");
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    const char *path = NULL;
    int ex = one_file(cmd, argc, argv, &path);
    if (ex)
        return ex;
    if (!name)
        return tool_usage(cmd, "missing --name N");
    if ((ex = check_name(cmd, "name", name)) != EXIT_OK)
        return ex;
    if (datastore && (url_arg || mode_arg))
        return tool_usage(cmd, "give --datastore DS or --url U --mode M, not both");
    if (!datastore && (!url_arg || !mode_arg))
        return tool_usage(cmd, "missing %s",
                          datastore || url_arg ? "--mode M"
                          : mode_arg           ? "--url U"
                                               : "--datastore DS "
                                                 "(or --url U "
                                                 "--mode M)");
    if (!mount)
        return tool_usage(cmd, "missing --mount-path P");
    if (mount[0] != '/' || strcmp(mount, "/") == 0)
        return tool_usage(cmd, "--mount-path '%s' must be an absolute path below /", mount);
    if (!kek != !wdek_arg)
        return tool_usage(cmd, "--kek-secret and --wrapped-dek go together");
    if (kek && !kek[0])
        return tool_usage(cmd, "--kek-secret is empty");
    if (mode_arg) {
        enum ccr_mode m;
        if (ccr_mode_parse(mode_arg, &m) != 0)
            return tool_usage(cmd, "unknown mode '%s' (use ccr1, cleanroom-cse, none or cpk)", mode_arg);
    }

    char *url = NULL, *mode = NULL, *wdek = NULL;
    json_t *spec = NULL;
    if (datastore) {
        ex = datastore_lookup(cmd, config, datastore, &url, &mode);
        if (ex)
            return ex;
    } else {
        url = strdup(url_arg);
        mode = strdup(mode_arg);
        if (!url || !mode) {
            tool_err(cmd, NULL, "out of memory");
            ex = EXIT_IO;
            goto out;
        }
    }
    bool encrypted = strcmp(mode, "ccr1") == 0 || strcmp(mode, "cleanroom-cse") == 0;
    if (encrypted && !kek) {
        ex = tool_usage(cmd, "mode %s needs --kek-secret S and --wrapped-dek B64|@FILE", mode);
        goto out;
    }
    if (strcmp(mode, "none") == 0 && kek) {
        ex = tool_usage(cmd, "mode none takes no --kek-secret or --wrapped-dek (the data is not encrypted)");
        goto out;
    }
    if (wdek_arg && (ex = read_b64_arg(cmd, wdek_arg, &wdek)) != EXIT_OK)
        goto out;

    if ((ex = load_spec(cmd, path, &spec)) != EXIT_OK)
        goto out;
    json_t *parties = json_object_get(spec, "parties");
    if (!owner) {
        if (json_array_size(parties) != 1) {
            ex = tool_usage(cmd, "%s has %zu parties: say which owns '%s' with --owner PARTY", path,
                            json_array_size(parties), name);
            goto out;
        }
        owner = json_string_value(json_object_get(json_array_get(parties, 0), "name"));
        if (!owner) {
            ex = tool_usage(cmd, "%s: its party has no name: fix it or give --owner PARTY", path);
            goto out;
        }
    } else if (find_named(parties, owner) < 0) {
        ex = tool_usage(cmd,
                        "owner '%s' is not a party of %s (add it with 'ccr spec init' on its own fragment)",
                        owner, path);
        goto out;
    }

    json_t *list = spec_list(cmd, path, spec, list_key);
    json_t *other = json_object_get(spec, other_key);
    if (!list) {
        ex = EXIT_AUTH;
        goto out;
    }
    ssize_t at = find_named(list, name);
    ssize_t at_other = json_is_array(other) ? find_named(other, name) : -1;
    if ((at >= 0 || at_other >= 0) && !force) {
        ex = tool_usage(cmd, "%s already has a %s '%s' (use --force to replace it)", path,
                        at >= 0 ? what : other_what, name);
        goto out;
    }
    if (at_other >= 0)
        json_array_remove(other, (size_t)at_other);

    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "owner", owner, "url", url, "mode",
                             mode, "mount_path", mount);
    if (item && kek) {
        json_object_set_new(item, "kek_secret", json_string(kek));
        json_object_set_new(item, "wrapped_dek", json_string(wdek));
    }
    if (!item || put_named(list, at, item) != 0) {
        tool_err(cmd, path, "out of memory");
        ex = EXIT_IO;
        goto out;
    }
    ex = save_spec(cmd, path, spec);
out:
    json_decref(spec);
    free(url);
    free(mode);
    free(wdek);
    return ex;
}

/* ----------------------------------------------------------------------------------------------------- */
/* add-application                                                                                        */
/* ----------------------------------------------------------------------------------------------------- */

static int spec_add_app(int argc, char **argv)
{
    const char *cmd = "spec add-application";
    static const struct option lo[] = {
        {"name", required_argument, NULL, 'n'},  {"command", required_argument, NULL, 'c'},
        {"arg", required_argument, NULL, 'a'},   {"env", required_argument, NULL, 'e'},
        {"mount", required_argument, NULL, 'm'}, {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *name = NULL, *command = NULL;
    bool force = false;
    json_t *args = json_array(), *env = json_object(), *mounts = json_array(), *spec = NULL;
    int ex = EXIT_OK;
    if (!args || !env || !mounts) {
        tool_err(cmd, NULL, "out of memory");
        ex = EXIT_IO;
        goto out;
    }
    int c;
    optind = 0;
    opterr = 0;
    while (ex == EXIT_OK && (c = getopt_long(argc, argv, ":n:c:a:e:m:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'c':
            command = optarg;
            break;
        case 'a':
            if (json_array_append_new(args, json_string(optarg)) != 0)
                ex = tool_usage(cmd, "--arg '%s' is not UTF-8 text", optarg);
            break;
        case 'e': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                ex = tool_usage(cmd, "--env '%s' is not K=V", optarg);
                break;
            }
            char *k = strndup(optarg, (size_t)(eq - optarg));
            if (!k || json_object_set_new(env, k, json_string(eq + 1)) != 0) {
                free(k);
                ex = tool_usage(cmd, "--env '%s' is not K=V with UTF-8 text", optarg);
                break;
            }
            free(k);
            break;
        }
        case 'm': {
            char *dup = strdup(optarg);
            char *save = NULL;
            for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
                if ((ex = check_name(cmd, "mount", t)) != EXIT_OK)
                    break;
                if (json_array_append_new(mounts, json_string(t)) != 0) {
                    ex = tool_usage(cmd, "out of memory");
                    break;
                }
            }
            free(dup);
            break;
        }
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(app_help, stdout);
            goto out;
        default:
            ex = tool_bad_option(cmd, c, argv);
            break;
        }
    }
    if (ex)
        goto out;
    const char *path = NULL;
    if ((ex = one_file(cmd, argc, argv, &path)) != EXIT_OK)
        goto out;
    if (!name || !command || !command[0] || json_array_size(mounts) == 0) {
        ex = tool_usage(cmd, "missing %s",
                        !name                     ? "--name N"
                        : !command || !command[0] ? "--command CMD"
                                                  : "--mount NAME");
        goto out;
    }
    if ((ex = check_name(cmd, "name", name)) != EXIT_OK)
        goto out;
    if ((ex = load_spec(cmd, path, &spec)) != EXIT_OK)
        goto out;
    json_t *list = spec_list(cmd, path, spec, "applications");
    if (!list) {
        ex = EXIT_AUTH;
        goto out;
    }
    ssize_t at = find_named(list, name);
    if (at >= 0 && !force) {
        ex = tool_usage(cmd, "%s already has an application '%s' (use --force to replace it)", path, name);
        goto out;
    }
    json_t *argv_j = json_array();
    if (argv_j) {
        json_array_append_new(argv_j, json_string(command));
        json_array_extend(argv_j, args);
    }
    json_t *item = argv_j ? json_pack("{s:s, s:o, s:O, s:O}", "name", name, "command", argv_j, "env", env,
                                      "mounts", mounts)
                          : NULL;
    if (!item || json_array_size(json_object_get(item, "command")) != json_array_size(args) + 1 ||
        put_named(list, at, item) != 0) {
        tool_err(cmd, path, "cannot build the application (out of memory, or --command is not UTF-8 text)");
        ex = EXIT_IO;
        goto out;
    }
    ex = save_spec(cmd, path, spec);
out:
    json_decref(spec);
    json_decref(args);
    json_decref(env);
    json_decref(mounts);
    return ex;
}

/* ----------------------------------------------------------------------------------------------------- */
/* set-network, set-logging, set-telemetry                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static int spec_set_network(int argc, char **argv)
{
    const char *cmd = "spec set-network";
    static const struct option lo[] = {{"egress", required_argument, NULL, 'e'},
                                       {"allow", required_argument, NULL, 'a'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *egress = NULL;
    json_t *allow = json_array();
    int ex = allow ? EXIT_OK : EXIT_IO;
    int c;
    optind = 0;
    opterr = 0;
    while (ex == EXIT_OK && (c = getopt_long(argc, argv, ":e:a:h", lo, NULL)) != -1) {
        switch (c) {
        case 'e':
            egress = optarg;
            break;
        case 'a':
            if (!optarg[0] || strpbrk(optarg, " /\t\n") ||
                json_array_append_new(allow, json_string(optarg)) != 0)
                ex = tool_usage(cmd, "--allow '%s' is not a host name", optarg);
            break;
        case 'h':
            fputs(net_help, stdout);
            goto out;
        default:
            ex = tool_bad_option(cmd, c, argv);
            break;
        }
    }
    if (ex)
        goto out;
    const char *path = NULL;
    if ((ex = one_file(cmd, argc, argv, &path)) != EXIT_OK)
        goto out;
    if (!egress) {
        ex = tool_usage(cmd, "missing --egress deny|allow");
        goto out;
    }
    if (strcmp(egress, "deny") != 0 && strcmp(egress, "allow") != 0) {
        ex = tool_usage(cmd, "unknown --egress '%s' (use deny or allow)", egress);
        goto out;
    }
    if (strcmp(egress, "allow") == 0 && json_array_size(allow) > 0) {
        ex = tool_usage(cmd, "--allow HOST applies only with --egress deny (allow reaches every host)");
        goto out;
    }
    ex = update_key(cmd, path, "network", json_pack("{s:s, s:O}", "egress", egress, "allow", allow));
out:
    json_decref(allow);
    return ex;
}

static int spec_set_sink(int argc, char **argv, const char *what)
{
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "spec set-%s", what);
    static const struct option lo[] = {
        {"sink", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *sink = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            sink = optarg;
            break;
        case 'h':
            printf(sink_help, what, what);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    const char *path = NULL;
    int ex = one_file(cmd, argc, argv, &path);
    if (ex)
        return ex;
    if (!sink)
        return tool_usage(cmd, "missing --sink NAME");
    if ((ex = check_name(cmd, "sink", sink)) != EXIT_OK)
        return ex;
    return update_key(cmd, path, what, json_pack("{s:s}", "sink", sink));
}

/* ----------------------------------------------------------------------------------------------------- */
/* merge, validate                                                                                        */
/* ----------------------------------------------------------------------------------------------------- */

static int spec_merge(int argc, char **argv)
{
    const char *cmd = "spec merge";
    static const struct option lo[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fh", lo, NULL)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(merge_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    if (argc - optind < 2)
        return tool_usage(cmd, "missing %s", optind >= argc ? "OUT FRAGMENT..." : "FRAGMENT...");
    const char *out_path = argv[optind];
    size_t n = (size_t)(argc - optind - 1);
    json_t **frags = calloc(n, sizeof(*frags));
    json_t *merged = NULL, *problems = NULL;
    int ex = EXIT_OK;
    if (!frags) {
        tool_err(cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    for (size_t i = 0; i < n; i++) {
        if ((ex = load_spec(cmd, argv[optind + 1 + (int)i], &frags[i])) != EXIT_OK)
            goto out;
    }
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_merge((const json_t *const *)frags, n, &merged, &e);
    if (rc < 0) {
        tool_err_print(cmd, &e, NULL);
        ex = rc == -ENOMEM ? EXIT_IO : EXIT_AUTH;
        goto out;
    }
    problems = json_array();
    int np = ccr_spec_validate(merged, problems);
    for (size_t i = 0; i < json_array_size(problems); i++)
        tool_err(cmd, NULL, "%s%s", force ? "warning: " : "", json_string_value(json_array_get(problems, i)));
    if (np > 0 && !force) {
        tool_err(cmd, out_path,
                 "not written: %d problem%s (fix the fragments, or use --force to write it anyway)", np,
                 np == 1 ? "" : "s");
        ex = EXIT_AUTH;
        goto out;
    }
    ex = save_spec(cmd, out_path, merged);
out:
    for (size_t i = 0; i < n; i++)
        json_decref(frags[i]);
    free(frags);
    json_decref(merged);
    json_decref(problems);
    return ex;
}

static int spec_validate(int argc, char **argv)
{
    const char *cmd = "spec validate";
    static const struct option lo[] = {
        {"json", no_argument, NULL, OPT_JSON}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(validate_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    const char *path = NULL;
    int ex = one_file(cmd, argc, argv, &path);
    if (ex)
        return ex;
    json_t *spec = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_load(path, &spec, &e);
    json_t *problems = json_array();
    if (!problems) {
        json_decref(spec);
        tool_err(cmd, NULL, "out of memory");
        return EXIT_IO;
    }
    if (rc < 0) {
        if (rc != -EBADMSG || !json) {
            json_decref(problems);
            if (rc == -ENOENT)
                tool_err(cmd, path, "no such file");
            else
                tool_err_print(cmd, &e, path);
            return rc == -EBADMSG ? EXIT_AUTH : EXIT_IO;
        }
        /* --json: a syntax error is the one problem */
        char line[sizeof(e.where) + sizeof(e.msg) + 4];
        snprintf(line, sizeof(line), "%s: %s", e.where, e.msg);
        json_array_append_new(problems, json_string(line));
    } else {
        ccr_spec_validate(spec, problems);
    }
    size_t np = json_array_size(problems);
    if (json) {
        json_t *o = json_pack("{s:b, s:O}", "valid", np == 0, "problems", problems);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    } else if (np == 0) {
        puts("valid");
    } else {
        for (size_t i = 0; i < np; i++)
            puts(json_string_value(json_array_get(problems, i)));
    }
    fflush(stdout);
    json_decref(problems);
    json_decref(spec);
    return np ? EXIT_AUTH : EXIT_OK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* dispatch                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

int cmd_spec(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage("spec", "missing VERB (init, add-datasource, add-datasink, add-application, "
                                  "set-network, set-logging, set-telemetry, merge, validate)");
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(spec_help, stdout);
        return EXIT_OK;
    }
    argc--;
    argv++;
    if (strcmp(verb, "init") == 0)
        return spec_init(argc, argv);
    if (strcmp(verb, "add-datasource") == 0)
        return spec_add_store(argc, argv, false);
    if (strcmp(verb, "add-datasink") == 0)
        return spec_add_store(argc, argv, true);
    if (strcmp(verb, "add-application") == 0)
        return spec_add_app(argc, argv);
    if (strcmp(verb, "set-network") == 0)
        return spec_set_network(argc, argv);
    if (strcmp(verb, "set-logging") == 0)
        return spec_set_sink(argc, argv, "logging");
    if (strcmp(verb, "set-telemetry") == 0)
        return spec_set_sink(argc, argv, "telemetry");
    if (strcmp(verb, "merge") == 0)
        return spec_merge(argc, argv);
    if (strcmp(verb, "validate") == 0)
        return spec_validate(argc, argv);
    return tool_usage("spec", "unknown verb '%s' (see 'ccr spec --help')", verb);
}
