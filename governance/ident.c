/*
 * ident.c - member identities: an EC P-384 key and a self-signed X.509 certificate, as PEM files.
 *
 * The member id is the lowercase hex SHA-256 of the certificate's DER: it names the certificate, so a
 * member who makes a new key is a new member. Files are read and written with the shared small-file
 * helpers (ccr/dataplane.h): a new key file goes through a temporary file created 0600 in the target's
 * directory, fsynced and moved into place without replacing anything. The private PEM only ever lives in
 * OpenSSL secure-memory BIOs and a buffer we wipe. Every function pops the OpenSSL errors it pushed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ccr/dataplane.h"
#include "gov_crypto_int.h"

#define PEM_FILE_MAX (1u << 20) /* a certificate or key PEM larger than this is not ours */
#define NAME_MAX_LEN 64         /* X.509 upper bound for a CN */

/* ---- helpers shared with cose.c and ecies.c ---------------------------------------------------------- */

bool gov_pkey_is_p384(const EVP_PKEY *pkey)
{
    char group[64];
    size_t n = 0;
    if (!pkey || !EVP_PKEY_is_a(pkey, "EC"))
        return false;
    ERR_set_mark();
    int ok = EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &n);
    ERR_pop_to_mark();
    return ok == 1 && strcmp(group, "secp384r1") == 0;
}

EVP_PKEY *gov_p384_from_spki(const uint8_t *der, size_t len)
{
    if (!der || len == 0 || len > 4096)
        return NULL;
    const unsigned char *p = der;
    ERR_set_mark();
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
    ERR_pop_to_mark();
    if (pkey && (p != der + len || !gov_pkey_is_p384(pkey))) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    /* Canonical DER only: OpenSSL tolerates variants (a BIT STRING with unused bits, whose padding it
     * masks off), and a key must have one encoding, since its SHA-256 is what evidence binds. */
    uint8_t *re = NULL;
    size_t re_len = 0;
    if (pkey && (gov_pkey_spki(pkey, &re, &re_len) < 0 || re_len != len || memcmp(re, der, len) != 0)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ccr_free(re);
    return pkey;
}

int gov_pkey_spki(EVP_PKEY *pkey, uint8_t **out, size_t *out_len)
{
    ERR_set_mark();
    int n = i2d_PUBKEY(pkey, NULL);
    int rc = -EIO;
    if (n > 0) {
        uint8_t *b = ccr_malloc((size_t)n);
        if (!b) {
            rc = -ENOMEM;
        } else {
            unsigned char *p = b;
            if (i2d_PUBKEY(pkey, &p) == n) {
                *out = b;
                *out_len = (size_t)n;
                rc = 0;
            } else {
                ccr_free(b);
            }
        }
    }
    ERR_pop_to_mark();
    return rc;
}

/* ---- files ------------------------------------------------------------------------------------------- */

/* Reads a PEM file (1 byte to PEM_FILE_MAX) with the shared small-file reader. *out: wipe, then ccr_free. */
static int read_pem_file(const char *path, char **out, size_t *out_len, struct ccr_err *err)
{
    int rc = ccr_file_read_all(path, PEM_FILE_MAX, out, out_len, err);
    if (rc == -EFBIG)
        return ccr_err_set(err, -EINVAL, path, -1, "larger than %u bytes: not a certificate or key PEM",
                           PEM_FILE_MAX);
    if (rc == 0 && *out_len == 0) {
        ccr_free(*out);
        *out = NULL;
        return ccr_err_set(err, -EINVAL, path, -1, "empty file: expected a PEM certificate or key");
    }
    return rc;
}

/* Writes data to path with mode, atomically, refusing to replace an existing path (-EEXIST). */
static int write_file_new(const char *path, const char *data, size_t len, mode_t mode, struct ccr_err *err)
{
    int rc = ccr_file_write_atomic(path, data, len, mode, false, err);
    if (rc == -EEXIST)
        ccr_err_set(err, rc, path, -1,
                    "file already exists (not overwritten: choose another name or directory)");
    return rc;
}

/* ---- identities -------------------------------------------------------------------------------------- */

/* A name is used in file names and as the CN: letters, digits, '.', '_', '-'; not starting with '.' or '-'.
 */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int bio_string(BIO *bio, char **out)
{
    BUF_MEM *bm = NULL;
    if (BIO_get_mem_ptr(bio, &bm) != 1 || !bm || bm->length == 0)
        return -EIO;
    char *s = ccr_malloc(bm->length + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, bm->data, bm->length);
    s[bm->length] = '\0';
    *out = s;
    return 0;
}

/* Builds an identity around cert (taken over on success; pkey too when non-NULL). */
static int ident_wrap(X509 *cert, EVP_PKEY *pkey, struct ccr_gov_ident **out, struct ccr_err *err)
{
    struct ccr_gov_ident *id = ccr_calloc(1, sizeof(*id));
    unsigned char *der = NULL;
    BIO *bio = NULL;
    int rc = -ENOMEM;
    if (!id)
        goto fail;
    int n = i2d_X509(cert, &der);
    if (n <= 0) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot encode the certificate (OpenSSL)");
        goto fail;
    }
    uint8_t h[32];
    ccr_gov_sha256(der, (size_t)n, h);
    ccr_gov_hex(h, sizeof(h), id->id);

    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509(bio, cert) != 1) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot write the certificate as PEM (OpenSSL)");
        goto fail;
    }
    rc = bio_string(bio, &id->pem);
    if (rc < 0)
        goto fail;

    /* The subject CN as UTF-8; a certificate without one has the name "". */
    unsigned char *utf8 = NULL;
    int len = -1;
    X509_NAME *subj = X509_get_subject_name(cert);
    int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    if (idx >= 0)
        len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    if (len < 0)
        len = 0;
    id->name = ccr_malloc((size_t)len + 1);
    if (!id->name) {
        OPENSSL_free(utf8);
        rc = -ENOMEM;
        goto fail;
    }
    if (len)
        memcpy(id->name, utf8, (size_t)len);
    id->name[len] = '\0';
    OPENSSL_free(utf8);
    if (strlen(id->name) != (size_t)len) { /* an embedded NUL would make two names look alike */
        rc = ccr_err_set(err, -EINVAL, NULL, -1, "certificate subject CN contains a NUL byte");
        goto fail;
    }

    id->cert = cert;
    if (pkey) {
        id->pkey = pkey;
        id->priv = true;
    } else {
        id->pkey = X509_get_pubkey(cert);
        if (!id->pkey) {
            rc = ccr_err_set(err, -EIO, NULL, -1, "cannot read the certificate's public key (OpenSSL)");
            id->cert = NULL;
            goto fail;
        }
    }
    BIO_free(bio);
    OPENSSL_free(der);
    *out = id;
    return 0;
fail:
    if (rc == -ENOMEM)
        ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    BIO_free(bio);
    OPENSSL_free(der);
    if (id) {
        ccr_free(id->pem);
        ccr_free(id->name);
        ccr_free(id);
    }
    return rc;
}

static int make_cert(EVP_PKEY *pkey, const char *name, X509 **out)
{
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    X509_EXTENSION *ext = NULL;
    int rc = -EIO;
    if (!x || !bn)
        goto out;
    if (X509_set_version(x, X509_VERSION_3) != 1)
        goto out;
    /* A random positive 127-bit serial. */
    if (BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, NULL))
        goto out;
    X509_NAME *nm = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, nm) != 1 || X509_set_pubkey(x, pkey) != 1)
        goto out;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    static const struct {
        int nid;
        const char *value;
    } exts[] = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_subject_key_identifier, "hash"},
    };
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        if (!ext || X509_add_ext(x, ext, -1) != 1)
            goto out;
        X509_EXTENSION_free(ext);
        ext = NULL;
    }
    if (X509_sign(x, pkey, EVP_sha384()) <= 0)
        goto out;
    *out = x;
    x = NULL;
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    BN_free(bn);
    X509_free(x);
    return rc;
}

int ccr_gov_ident_keygen(const char *dir, const char *name, char out_id[CCR_GOV_ID_HEX_LEN + 1],
                         struct ccr_err *err)
{
    if (!dir || !dir[0] || !name)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no directory or name given");
    if (!name_ok(name))
        return ccr_err_set(err, -EINVAL, name, -1,
                           "a member name is 1 to %d letters, digits, '.', '_' or '-', not starting with '.' "
                           "or '-'",
                           NAME_MAX_LEN);
    char key_path[PATH_MAX], cert_path[PATH_MAX];
    if (snprintf(key_path, sizeof(key_path), "%s/%s_privk.pem", dir, name) >= (int)sizeof(key_path) ||
        snprintf(cert_path, sizeof(cert_path), "%s/%s_cert.pem", dir, name) >= (int)sizeof(cert_path))
        return ccr_err_set(err, -ENAMETOOLONG, dir, -1, "path too long");
    struct stat st;
    if (lstat(key_path, &st) == 0)
        return ccr_err_set(err, -EEXIST, key_path, -1, "key file already exists (not overwritten)");
    if (lstat(cert_path, &st) == 0)
        return ccr_err_set(err, -EEXIST, cert_path, -1, "certificate file already exists (not overwritten)");

    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    BIO *kbio = NULL, *cbio = NULL;
    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_pem_len = 0;
    int rc;

    ERR_set_mark();
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!pkey) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot generate a P-384 key (OpenSSL)");
        goto out;
    }
    rc = make_cert(pkey, name, &cert);
    if (rc < 0) {
        ccr_err_set(err, rc, NULL, -1, "cannot build the self-signed certificate (OpenSSL)");
        goto out;
    }
    kbio = BIO_new(BIO_s_secmem());
    cbio = BIO_new(BIO_s_mem());
    if (!kbio || !cbio || PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cbio, cert) != 1) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot write the key or certificate as PEM (OpenSSL)");
        goto out;
    }
    rc = bio_string(kbio, &key_pem);
    if (rc == 0)
        rc = bio_string(cbio, &cert_pem);
    if (rc < 0) {
        ccr_err_set(err, rc, NULL, -1, "cannot copy the PEM text");
        goto out;
    }
    key_pem_len = strlen(key_pem);
    rc = write_file_new(key_path, key_pem, key_pem_len, 0600, err);
    if (rc < 0)
        goto out;
    rc = write_file_new(cert_path, cert_pem, strlen(cert_pem), 0644, err);
    if (rc < 0) {
        (void)unlink(key_path); /* a key without its certificate is of no use: leave nothing behind */
        goto out;
    }
    if (out_id) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        if (n <= 0) {
            rc = ccr_err_set(err, -EIO, NULL, -1, "cannot encode the certificate (OpenSSL)");
            goto out;
        }
        uint8_t h[32];
        ccr_gov_sha256(der, (size_t)n, h);
        OPENSSL_free(der);
        ccr_gov_hex(h, sizeof(h), out_id);
    }
    rc = 0;
out:
    if (key_pem) {
        ccr_wipe(key_pem, key_pem_len ? key_pem_len : strlen(key_pem));
        ccr_free(key_pem);
    }
    ccr_free(cert_pem);
    BIO_free(kbio);
    BIO_free(cbio);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    ERR_pop_to_mark();
    return rc;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

int ccr_gov_ident_from_cert_pem(const char *pem, size_t len, struct ccr_gov_ident **out, struct ccr_err *err)
{
    if (!pem || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no certificate given");
    if (len == 0 || len > PEM_FILE_MAX)
        return ccr_err_set(err, -EINVAL, NULL, -1, "certificate PEM is %s", len ? "too large" : "empty");
    int rc;
    X509 *cert = NULL;
    ERR_set_mark();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
        goto out;
    }
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (!cert) {
        rc = ccr_err_set(err, -EINVAL, NULL, -1, "not a PEM certificate (expected BEGIN CERTIFICATE)");
        goto out;
    }
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (!gov_pkey_is_p384(pub)) {
        rc = ccr_err_set(
            err, -EINVAL, NULL, -1,
            "the certificate's key is not EC P-384: member keys are P-384 (ccr gov member keygen)");
        goto out;
    }
    rc = ident_wrap(cert, NULL, out, err);
    if (rc == 0)
        cert = NULL;
out:
    X509_free(cert);
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

int ccr_gov_ident_load(const char *cert_path, const char *key_path, struct ccr_gov_ident **out,
                       struct ccr_err *err)
{
    if (!cert_path || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no certificate path given");
    char *cpem = NULL, *kpem = NULL;
    size_t clen = 0, klen = 0;
    struct ccr_gov_ident *id = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    int rc = read_pem_file(cert_path, &cpem, &clen, err);
    if (rc < 0)
        return rc;
    rc = ccr_gov_ident_from_cert_pem(cpem, clen, &id, err);
    if (rc < 0) {
        ccr_err_where(err, cert_path);
        goto out;
    }
    if (!key_path) {
        *out = id;
        id = NULL;
        goto out;
    }
    rc = read_pem_file(key_path, &kpem, &klen, err);
    if (rc < 0)
        goto out;
    ERR_set_mark();
    bio = BIO_new_mem_buf(kpem, (int)klen);
    if (bio)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_pop_to_mark();
    if (!pkey) {
        rc = ccr_err_set(err, -EINVAL, key_path, -1,
                         memmem(kpem, klen, "ENCRYPTED", 9)
                             ? "encrypted private keys are not supported: decrypt it first (openssl pkey)"
                             : "not a PEM private key (expected BEGIN PRIVATE KEY or BEGIN EC PRIVATE KEY)");
        goto out;
    }
    if (EVP_PKEY_eq(pkey, id->pkey) != 1) {
        rc = ccr_err_set(err, -EINVAL, key_path, -1, "the private key does not belong to certificate %s",
                         cert_path);
        goto out;
    }
    EVP_PKEY_free(id->pkey);
    id->pkey = pkey;
    id->priv = true;
    pkey = NULL;
    *out = id;
    id = NULL;
    rc = 0;
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    ccr_gov_ident_destroy(id);
    ccr_free(cpem);
    if (kpem) {
        ccr_wipe(kpem, klen);
        ccr_free(kpem);
    }
    return rc;
}

void ccr_gov_ident_destroy(struct ccr_gov_ident *id)
{
    if (!id)
        return;
    EVP_PKEY_free(id->pkey);
    X509_free(id->cert);
    ccr_free(id->pem);
    ccr_free(id->name);
    ccr_free(id);
}

const char *ccr_gov_ident_id(const struct ccr_gov_ident *id)
{
    return id ? id->id : NULL;
}

const char *ccr_gov_ident_cert_pem(const struct ccr_gov_ident *id)
{
    return id ? id->pem : NULL;
}

const char *ccr_gov_ident_name(const struct ccr_gov_ident *id)
{
    return id ? id->name : NULL;
}
