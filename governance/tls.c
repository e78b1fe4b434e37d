/*
 * tls.c - the service's TLS identity (ccr_gov_server_make_cert, ccr/gov_server.h): an EC P-384 key and a
 * self-signed certificate that clients pin (ccr/gov_client.h). There is no CA: the certificate file
 * itself is what every member is given, and what their client trusts.
 *
 * The certificate has no keyUsage extension: OpenSSL only takes a self-signed certificate as its own
 * trust anchor when its key may sign certificates, and a keyUsage without keyCertSign would stop a
 * client that trusts exactly this file from building the chain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ccr/dataplane.h"
#include "ccr/gov_server.h"

#define CERT_DAYS  3650
#define SAN_MAX    4096
#define SERVICE_CN "ccr-gov service"

/* A host name or IP literal we put into subjectAltName: letters, digits, '.', '-', ':' (IPv6), '*'. */
static bool san_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '-' || ch == ':' || ch == '*';
        if (!ok)
            return false;
    }
    return true;
}

static bool is_ip_literal(const char *s)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Builds "DNS:localhost,IP:127.0.0.1,IP:::1[,DNS:x|IP:y]..." into out. */
static int build_san(const char *const *sans, char *out, size_t cap, struct ccr_err *err)
{
    int n = snprintf(out, cap, "DNS:localhost,IP:127.0.0.1,IP:::1");
    for (size_t i = 0; sans && sans[i]; i++) {
        const char *s = sans[i];
        if (!san_ok(s))
            return ccr_err_set(err, -EINVAL, s, -1,
                               "not a host name or IP address for the certificate (--san): letters, digits, "
                               "'.', '-' and ':' only");
        if (strcmp(s, "localhost") == 0 || strcmp(s, "127.0.0.1") == 0 || strcmp(s, "::1") == 0)
            continue;
        int m = snprintf(out + n, cap - (size_t)n, ",%s:%s", is_ip_literal(s) ? "IP" : "DNS", s);
        if (m < 0 || (size_t)m >= cap - (size_t)n)
            return ccr_err_set(err, -EINVAL, s, -1, "too many --san names for one certificate");
        n += m;
    }
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -EIO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -EIO;
}

static X509 *make_x509(EVP_PKEY *pkey, const char *san)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    bool ok = X509_set_version(x, X509_VERSION_3) == 1 && RAND_bytes(serial, sizeof(serial)) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* positive */
        serial[0] |= 0x40; /* and of full length */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
        ok = ai && X509_set_serialNumber(x, ai) == 1;
    }
    /* A minute into the past, for clients whose clock lags a little. */
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
         X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && name &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)SERVICE_CN, -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, pkey) == 1;
    ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
         add_ext(x, NID_ext_key_usage, "serverAuth") == 0 &&
         add_ext(x, NID_subject_key_identifier, "hash") == 0 && add_ext(x, NID_subject_alt_name, san) == 0;
    ok = ok && X509_sign(x, pkey, EVP_sha384()) > 0;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes data to path with mode, never replacing an existing file (the shared atomic small-file writer). */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode, struct ccr_err *err)
{
    int rc = ccr_file_write_atomic(path, data, len, mode, false, err);
    if (rc == -EEXIST)
        ccr_err_set(err, rc, path, -1, "already exists");
    return rc;
}

/* PEM text of pkey (private, PKCS#8) or x into a memory BIO (secure memory for the key). */
static int pem_of(EVP_PKEY *pkey, X509 *x, char **out, size_t *out_len)
{
    BIO *bio = pkey ? BIO_new(BIO_s_secmem()) : BIO_new(BIO_s_mem());
    if (!bio)
        return -ENOMEM;
    int ok =
        pkey ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(bio, x);
    char *p = NULL;
    long n = ok == 1 ? BIO_get_mem_data(bio, &p) : 0;
    if (n <= 0 || !p) {
        BIO_free(bio);
        return -EIO;
    }
    char *buf = ccr_malloc((size_t)n);
    if (!buf) {
        BIO_free(bio);
        return -ENOMEM;
    }
    memcpy(buf, p, (size_t)n);
    BIO_free(bio);
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}

int ccr_gov_server_make_cert(const char *data_dir, const char *const *sans, struct ccr_err *err)
{
    if (!data_dir || !*data_dir)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no data directory given");
    char key_path[PATH_MAX], cert_path[PATH_MAX];
    if ((size_t)snprintf(key_path, sizeof(key_path), "%s/service_privk.pem", data_dir) >= sizeof(key_path) ||
        (size_t)snprintf(cert_path, sizeof(cert_path), "%s/service_cert.pem", data_dir) >= sizeof(cert_path))
        return ccr_err_set(err, -ENAMETOOLONG, data_dir, -1, "data directory path too long");

    char *san = ccr_malloc(SAN_MAX);
    if (!san)
        return -ENOMEM;
    int rc = build_san(sans, san, SAN_MAX, err);
    if (rc) {
        ccr_free(san);
        return rc;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        rc = ccr_err_set(err, -errno, data_dir, -1, "cannot create the data directory: %s", strerror(errno));
        ccr_free(san);
        return rc;
    }
    struct stat st;
    if (lstat(key_path, &st) == 0 || lstat(cert_path, &st) == 0) {
        ccr_free(san);
        return ccr_err_set(err, -EEXIST, lstat(key_path, &st) == 0 ? key_path : cert_path, -1,
                           "the service's TLS identity already exists (remove both service_*.pem files to "
                           "make a new one; members must then pin the new certificate)");
    }

    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_len = 0, cert_len = 0;
    ERR_set_mark();
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!pkey) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot generate the service's P-384 key (OpenSSL)");
        goto out;
    }
    x = make_x509(pkey, san);
    if (!x) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot build the service certificate (OpenSSL)");
        goto out;
    }
    rc = pem_of(pkey, NULL, &key_pem, &key_len);
    if (rc == 0)
        rc = pem_of(NULL, x, &cert_pem, &cert_len);
    if (rc) {
        ccr_err_set(err, rc, NULL, -1, "cannot encode the service's key or certificate");
        goto out;
    }
    rc = write_new_file(key_path, key_pem, key_len, 0600, err);
    if (rc)
        goto out;
    rc = write_new_file(cert_path, cert_pem, cert_len, 0644, err);
    if (rc)
        unlink(key_path);
out:
    ERR_pop_to_mark();
    if (key_pem) {
        ccr_wipe(key_pem, key_len);
        ccr_free(key_pem);
    }
    ccr_free(cert_pem);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ccr_free(san);
    return rc;
}
