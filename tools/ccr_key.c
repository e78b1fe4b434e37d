/*
 * ccr_key.c - `ccr key new|id|wrap|unwrap` and `ccr kek new`: option mapping onto the crypto key
 * functions. Every failure here is an I/O or key error (exit 2), except usage errors (exit 1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ccr_tool.h"

#define PEM_MAX     (64 * 1024) /* a 4096-bit PKCS#8 PEM is about 3.3 KB */
#define WRAPPED_MAX (64 * 1024)

static const char key_help[] =
    "Usage: ccr key <new|id|wrap|unwrap> [options]\n"
    "\n"
    "Data encryption keys (DEKs): 32 random bytes in a file of mode 0600, one per dataset (the clean room\n"
    "CLI's <datastore>.bin files are the same format and can be used as they are).\n"
    "\n"
    "  ccr key new --out FILE [--force] [--json]      create a new DEK\n"
    "  ccr key id --key FILE [--json]                 print the ccr1 key id (32 hex characters)\n"
    "  ccr key wrap --kek PUB.pem --key DEK [--out FILE]\n"
    "                                                 wrap the DEK under an RSA KEK (base64 on stdout)\n"
    "  ccr key unwrap --kek PRIV.pem --wrapped B64|@FILE --out DEK [--force]\n"
    "                                                 recover a DEK with the KEK's private key\n"
    "\n"
    "Run 'ccr key <verb> --help' for details. Exit codes: 0 ok; 1 usage error; 2 I/O or key error.\n";

static const char key_new_help[] =
    "Usage: ccr key new --out FILE [--force] [--json]\n"
    "\n"
    "Creates a new data encryption key: 32 bytes from the operating system's random generator, written\n"
    "atomically to FILE with mode 0600. Prints nothing on success (with --json, one line:\n"
    "{\"command\":\"key new\",\"path\":...,\"key_id\":\"hex\"}). Keep the file secret: anyone holding it "
    "can\n"
    "read the data encrypted with it.\n"
    "\n"
    "Options:\n"
    "  -o, --out FILE   where to write the key (required)\n"
    "  -f, --force      replace an existing FILE\n"
    "      --json       print a JSON line on stdout\n"
    "  -h, --help       show this help\n"
    "\n"
    "Example:\n"
    "  ccr key new --out keys/sales.bin\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 FILE exists (without --force) or cannot be written.\n";

static const char key_id_help[] =
    "Usage: ccr key id --key FILE [--json]\n"
    "\n"
    "Prints the ccr1 key id of a data encryption key: the first 16 bytes of SHA-256(\"ccr1-key-id\" || DEK)\n"
    "in hex. It is safe to share; every ccr1 file records the id of the key it was encrypted with (see\n"
    "'ccr inspect').\n"
    "\n"
    "Options:\n"
    "  -k, --key FILE   the key file (required)\n"
    "      --json       print {\"path\":...,\"key_id\":\"hex\"} instead\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 missing, unreadable or malformed key file.\n";

static const char key_wrap_help[] =
    "Usage: ccr key wrap --kek PUB.pem --key DEK [--out FILE]\n"
    "\n"
    "Wraps a data encryption key under an RSA key-encryption key: base64(RSA-OAEP(SHA-256, MGF1-SHA256,\n"
    "empty label)(DEK)), the form the clean room platform stores as the secret "
    "wrapped-<datastore>-dek-<kek>.\n"
    "Prints it and a newline on stdout, or writes it to FILE (replacing it). A private-key PEM is accepted\n"
    "as --kek too: its public half is used.\n"
    "\n"
    "Options:\n"
    "  -K, --kek PEM    the RSA KEK, public or private PEM (2048, 3072 or 4096 bits) (required)\n"
    "  -k, --key DEK    the data encryption key file (required)\n"
    "  -o, --out FILE   write the base64 text (and a newline) to FILE instead of stdout\n"
    "  -h, --help       show this help\n"
    "\n"
    "Example:\n"
    "  ccr key wrap --kek contract-kek.pub.pem --key sales.bin --out sales.wrapped\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unreadable or bad PEM or key file, or FILE cannot be written.\n";

static const char key_unwrap_help[] =
    "Usage: ccr key unwrap --kek PRIV.pem --wrapped B64|@FILE --out DEK [--force]\n"
    "\n"
    "Recovers a data encryption key wrapped with 'ccr key wrap' (or by the clean room platform), using the\n"
    "KEK's private key, and writes it to DEK with mode 0600.\n"
    "\n"
    "Options:\n"
    "  -K, --kek PEM          the RSA KEK's private key, PEM (required)\n"
    "  -w, --wrapped B64      the wrapped key in base64, or @FILE to read it from FILE (required)\n"
    "  -o, --out DEK          where to write the key (required)\n"
    "  -f, --force            replace an existing DEK file\n"
    "  -h, --help             show this help\n"
    "\n"
    "Example:\n"
    "  ccr key unwrap --kek contract-kek.pem --wrapped @sales.wrapped --out sales.bin\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 unreadable or bad PEM, a public key given, wrong KEK or corrupt\n"
    "wrapped key, or DEK exists (without --force) or cannot be written.\n";

static const char kek_help[] =
    "Usage: ccr kek new --out PRIV.pem [--pub-out PUB.pem] [--bits 2048|3072|4096] [--force] [--json]\n"
    "\n"
    "Creates an RSA key-encryption key (public exponent 65537). The private key is written as unencrypted\n"
    "PKCS#8 PEM with mode 0600 - keep it secret; in a clean room it is released only to an attested\n"
    "deployment. With --pub-out the public key (SubjectPublicKeyInfo PEM, mode 0644) is written too: give\n"
    "that to data owners for 'ccr key wrap'.\n"
    "\n"
    "Options:\n"
    "  -o, --out PRIV.pem     where to write the private key (required)\n"
    "  -p, --pub-out PUB.pem  also write the public key\n"
    "  -b, --bits N           2048 (default), 3072 or 4096\n"
    "  -f, --force            replace existing files\n"
    "      --json             print {\"command\":\"kek new\",\"path\":...,\"pub_path\":...,\"bits\":N}\n"
    "  -h, --help             show this help\n"
    "\n"
    "Example:\n"
    "  ccr kek new --out kek.pem --pub-out kek.pub.pem --bits 3072\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 a file exists (without --force) or cannot be written.\n";

enum { OPT_JSON = 1000 };

static void print_hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

/* Common tail of the getopt loops: positional arguments are not accepted by key commands. */
static int no_positional(const char *cmd, int argc, char **argv)
{
    if (optind < argc)
        return tool_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}

static int key_new(int argc, char **argv)
{
    const char *cmd = "key new";
    static const struct option lo[] = {{"out", required_argument, NULL, 'o'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *out = NULL;
    bool force = false, json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(key_new_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    int ex = no_positional(cmd, argc, argv);
    if (ex >= 0)
        return ex;
    if (!out)
        return tool_usage(cmd, "missing --out FILE");

    struct ccr_key k;
    struct ccr_err e;
    uint8_t id[CCR_KEY_ID_LEN];
    ccr_err_clear(&e);
    int rc = ccr_key_generate(&k);
    if (rc) {
        tool_err(cmd, NULL, "cannot generate a key: %s", strerror(-rc));
        return EXIT_IO;
    }
    rc = ccr_key_id(&k, id);
    if (rc == 0)
        rc = ccr_key_file_store(out, &k, force, &e);
    ccr_key_wipe(&k);
    if (rc) {
        if (rc == -EEXIST)
            tool_err(cmd, out, "already exists (use --force to replace it)");
        else
            tool_err_print(cmd, &e, out);
        return EXIT_IO;
    }
    if (json) {
        printf("{\"command\":\"key new\",\"path\":");
        tool_json_str(stdout, out);
        printf(",\"key_id\":\"");
        print_hex(stdout, id, sizeof(id));
        printf("\"}\n");
    }
    return EXIT_OK;
}

static int key_id(int argc, char **argv)
{
    const char *cmd = "key id";
    static const struct option lo[] = {{"key", required_argument, NULL, 'k'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:h", lo, NULL)) != -1) {
        switch (c) {
        case 'k':
            path = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(key_id_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    int ex = no_positional(cmd, argc, argv);
    if (ex >= 0)
        return ex;
    if (!path)
        return tool_usage(cmd, "missing --key FILE");
    struct ccr_key k;
    ex = tool_key_load(cmd, path, &k);
    if (ex)
        return ex;
    uint8_t id[CCR_KEY_ID_LEN];
    int rc = ccr_key_id(&k, id);
    ccr_key_wipe(&k);
    if (rc) {
        tool_err(cmd, path, "cannot compute the key id: %s", strerror(-rc));
        return EXIT_IO;
    }
    if (json) {
        printf("{\"path\":");
        tool_json_str(stdout, path);
        printf(",\"key_id\":\"");
        print_hex(stdout, id, sizeof(id));
        printf("\"}\n");
    } else {
        print_hex(stdout, id, sizeof(id));
        printf("\n");
    }
    return EXIT_OK;
}

/* Reads and parses a KEK PEM file. Prints the error and returns EXIT_IO on failure. */
static int kek_load(const char *cmd, const char *path, struct ccr_kek **out)
{
    char *pem = NULL;
    size_t len = 0;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_file_read_all(path, PEM_MAX, &pem, &len, &e);
    if (rc) {
        tool_err_print(cmd, &e, path);
        return EXIT_IO;
    }
    ccr_err_clear(&e);
    rc = ccr_kek_from_pem(pem, len, out, &e);
    ccr_wipe(pem, len);
    ccr_free(pem);
    if (rc) {
        tool_err(cmd, path, "not a usable RSA KEK: %s", e.msg[0] ? e.msg : strerror(-rc));
        return EXIT_IO;
    }
    return EXIT_OK;
}

static int key_wrap(int argc, char **argv)
{
    const char *cmd = "key wrap";
    static const struct option lo[] = {{"kek", required_argument, NULL, 'K'},
                                       {"key", required_argument, NULL, 'k'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *kek_path = NULL, *key_path = NULL, *out = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":K:k:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'K':
            kek_path = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(key_wrap_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    int ex = no_positional(cmd, argc, argv);
    if (ex >= 0)
        return ex;
    if (!kek_path)
        return tool_usage(cmd, "missing --kek PEM");
    if (!key_path)
        return tool_usage(cmd, "missing --key DEK");

    struct ccr_kek *kek = NULL;
    struct ccr_key k;
    char *b64 = NULL;
    ex = kek_load(cmd, kek_path, &kek);
    if (ex)
        return ex;
    ex = tool_key_load(cmd, key_path, &k);
    if (ex)
        goto out;
    int rc = ccr_key_wrap(kek, &k, &b64);
    ccr_key_wipe(&k);
    if (rc) {
        tool_err(cmd, kek_path, "wrapping failed: %s", strerror(-rc));
        ex = EXIT_IO;
        goto out;
    }
    if (out) {
        size_t n = strlen(b64);
        char *text = ccr_malloc(n + 2);
        struct ccr_err e;
        ccr_err_clear(&e);
        rc = -ENOMEM;
        if (text) {
            memcpy(text, b64, n);
            text[n] = '\n';
            rc = ccr_file_write_atomic(out, text, n + 1, 0644, true, &e);
            ccr_free(text);
        }
        if (rc) {
            tool_err_print(cmd, &e, out);
            ex = EXIT_IO;
        }
    } else {
        printf("%s\n", b64);
        if (fflush(stdout) != 0) {
            tool_err(cmd, "stdout", "write failed: %s", strerror(errno));
            ex = EXIT_IO;
        }
    }
out:
    ccr_free(b64);
    ccr_kek_destroy(kek);
    return ex;
}

static int key_unwrap(int argc, char **argv)
{
    const char *cmd = "key unwrap";
    static const struct option lo[] = {
        {"kek", required_argument, NULL, 'K'}, {"wrapped", required_argument, NULL, 'w'},
        {"out", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    const char *kek_path = NULL, *wrapped = NULL, *out = NULL;
    bool force = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":K:w:o:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'K':
            kek_path = optarg;
            break;
        case 'w':
            wrapped = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(key_unwrap_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    int ex = no_positional(cmd, argc, argv);
    if (ex >= 0)
        return ex;
    if (!kek_path)
        return tool_usage(cmd, "missing --kek PRIV.pem");
    if (!wrapped)
        return tool_usage(cmd, "missing --wrapped B64 (or --wrapped @FILE)");
    if (!out)
        return tool_usage(cmd, "missing --out DEK");

    struct ccr_err e;
    ccr_err_clear(&e);
    struct stat st;
    if (!force && lstat(out, &st) == 0) {
        tool_err(cmd, out, "already exists (use --force to replace it)");
        return EXIT_IO;
    }
    char *text = NULL;
    size_t len = 0;
    const char *where = "--wrapped";
    if (wrapped[0] == '@') {
        where = wrapped + 1;
        int rc = ccr_file_read_all(wrapped + 1, WRAPPED_MAX, &text, &len, &e);
        if (rc) {
            tool_err_print(cmd, &e, wrapped + 1);
            return EXIT_IO;
        }
    }
    struct ccr_kek *kek = NULL;
    ex = kek_load(cmd, kek_path, &kek);
    if (ex)
        goto out;
    if (!ccr_kek_is_private(kek)) {
        tool_err(cmd, kek_path, "is a public key; unwrapping needs the KEK's private key");
        ex = EXIT_IO;
        goto out;
    }
    struct ccr_key k;
    const char *src = text ? text : wrapped;
    int rc = ccr_key_unwrap(kek, src, text ? len : strlen(wrapped), &k, &e);
    if (rc) {
        tool_err(cmd, where, "%s", e.msg[0] ? e.msg : strerror(-rc));
        ex = EXIT_IO;
        goto out;
    }
    ccr_err_clear(&e);
    rc = ccr_key_file_store(out, &k, force, &e);
    ccr_key_wipe(&k);
    if (rc) {
        if (rc == -EEXIST)
            tool_err(cmd, out, "already exists (use --force to replace it)");
        else
            tool_err_print(cmd, &e, out);
        ex = EXIT_IO;
    }
out:
    ccr_free(text);
    ccr_kek_destroy(kek);
    return ex;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage("key", "missing verb (new, id, wrap or unwrap)");
    const char *v = argv[1];
    if (strcmp(v, "--help") == 0 || strcmp(v, "-h") == 0) {
        fputs(key_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(v, "new") == 0)
        return key_new(argc - 1, argv + 1);
    if (strcmp(v, "id") == 0)
        return key_id(argc - 1, argv + 1);
    if (strcmp(v, "wrap") == 0)
        return key_wrap(argc - 1, argv + 1);
    if (strcmp(v, "unwrap") == 0)
        return key_unwrap(argc - 1, argv + 1);
    return tool_usage("key", "unknown verb '%s' (new, id, wrap or unwrap)", v);
}

static int kek_new(int argc, char **argv)
{
    const char *cmd = "kek new";
    static const struct option lo[] = {{"out", required_argument, NULL, 'o'},
                                       {"pub-out", required_argument, NULL, 'p'},
                                       {"bits", required_argument, NULL, 'b'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *out = NULL, *pub = NULL;
    unsigned bits = 2048;
    bool force = false, json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:p:b:fh", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'p':
            pub = optarg;
            break;
        case 'b':
            if (strcmp(optarg, "2048") == 0)
                bits = 2048;
            else if (strcmp(optarg, "3072") == 0)
                bits = 3072;
            else if (strcmp(optarg, "4096") == 0)
                bits = 4096;
            else
                return tool_usage(cmd, "invalid --bits '%s' (2048, 3072 or 4096)", optarg);
            break;
        case 'f':
            force = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            fputs(kek_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    int ex = no_positional(cmd, argc, argv);
    if (ex >= 0)
        return ex;
    if (!out)
        return tool_usage(cmd, "missing --out PRIV.pem");
    if (pub && strcmp(pub, out) == 0)
        return tool_usage(cmd, "--out and --pub-out name the same file");
    struct stat st;
    if (!force && lstat(out, &st) == 0) {
        tool_err(cmd, out, "already exists (use --force to replace it)");
        return EXIT_IO;
    }
    if (!force && pub && lstat(pub, &st) == 0) {
        tool_err(cmd, pub, "already exists (use --force to replace it)");
        return EXIT_IO;
    }
    struct ccr_kek *kek = NULL;
    char *priv_pem = NULL, *pub_pem = NULL;
    size_t priv_len = 0, pub_len = 0;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_kek_generate(bits, &kek);
    if (rc) {
        tool_err(cmd, NULL, "cannot generate an RSA-%u key: %s", bits, strerror(-rc));
        return EXIT_IO;
    }
    ex = EXIT_IO;
    rc = ccr_kek_private_pem(kek, &priv_pem, &priv_len);
    if (rc) {
        tool_err(cmd, out, "cannot encode the private key: %s", strerror(-rc));
        goto out;
    }
    if (pub) {
        rc = ccr_kek_public_pem(kek, &pub_pem, &pub_len);
        if (rc) {
            tool_err(cmd, pub, "cannot encode the public key: %s", strerror(-rc));
            goto out;
        }
    }
    rc = ccr_file_write_atomic(out, priv_pem, priv_len, 0600, force, &e);
    if (rc) {
        tool_err_print(cmd, &e, out);
        goto out;
    }
    if (pub) {
        rc = ccr_file_write_atomic(pub, pub_pem, pub_len, 0644, force, &e);
        if (rc) {
            tool_err_print(cmd, &e, pub);
            goto out;
        }
    }
    ex = EXIT_OK;
    if (json) {
        printf("{\"command\":\"kek new\",\"path\":");
        tool_json_str(stdout, out);
        printf(",\"pub_path\":");
        if (pub)
            tool_json_str(stdout, pub);
        else
            printf("null");
        printf(",\"bits\":%u}\n", bits);
    }
out:
    if (priv_pem) {
        ccr_wipe(priv_pem, priv_len);
        ccr_free(priv_pem);
    }
    ccr_free(pub_pem);
    ccr_kek_destroy(kek);
    return ex;
}

int cmd_kek(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage("kek", "missing verb (new)");
    const char *v = argv[1];
    if (strcmp(v, "--help") == 0 || strcmp(v, "-h") == 0) {
        fputs(kek_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(v, "new") == 0)
        return kek_new(argc - 1, argv + 1);
    return tool_usage("kek", "unknown verb '%s' (new)", v);
}
