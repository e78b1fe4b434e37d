/*
 * wrap.c - DEK wrapping under an RSA key-encryption key (docs/format.md, "Wrapping DEKs"):
 * wrapped = base64(RSA-OAEP(hash SHA-256, MGF1-SHA256, empty label)(DEK)).
 *
 * Everything goes through OpenSSL 3's EVP_PKEY interfaces (the RSA_* ones are deprecated). PEM text is
 * read from and written to memory BIOs; the private PEM is built in a secure-memory BIO, which OpenSSL
 * cleanses as it grows and when it is freed. Failed OpenSSL calls leave entries on the thread's error
 * queue; every function here pops what it pushed, so callers never see stale errors.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto_int.h"

struct ccr_kek {
    EVP_PKEY *pkey;
    bool priv;
    unsigned bits;
};

static bool kek_size_ok(unsigned bits)
{
    return bits == 2048 || bits == 3072 || bits == 4096;
}

static int kek_wrap_pkey(EVP_PKEY *pkey, bool priv, struct ccr_kek **out)
{
    struct ccr_kek *k = ccr_calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->pkey = pkey;
    k->priv = priv;
    k->bits = (unsigned)EVP_PKEY_get_bits(pkey);
    *out = k;
    return 0;
}

int ccr_kek_generate(unsigned bits, struct ccr_kek **out)
{
    if (!out || !kek_size_ok(bits))
        return -EINVAL;
    ERR_set_mark();
    /* The default public exponent is 65537. */
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    ERR_pop_to_mark();
    if (!pkey)
        return -EIO;
    int rc = kek_wrap_pkey(pkey, true, out);
    if (rc < 0)
        EVP_PKEY_free(pkey);
    return rc;
}

/* The passphrase callback: we never prompt, so an encrypted private key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/* Decodes a PKCS#1 "RSA PUBLIC KEY" PEM (PEM_read_bio_PUBKEY only reads SubjectPublicKeyInfo). */
static EVP_PKEY *read_pkcs1_public(BIO *bio)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", "type-specific", "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (!dctx)
        return NULL;
    if (OSSL_DECODER_from_bio(dctx, bio) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

int ccr_kek_from_pem(const char *pem, size_t len, struct ccr_kek **out, struct ccr_err *err)
{
    if (!pem || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no key given");
    if (len == 0 || len > INT_MAX)
        return ccr_err_set(err, -EINVAL, NULL, -1, "key PEM is %s", len ? "too large" : "empty");

    EVP_PKEY *pkey = NULL;
    bool priv = false;
    int rc;

    ERR_set_mark();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = -ENOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    priv = pkey != NULL;
    if (!pkey && BIO_reset(bio) == 1)
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (!pkey && BIO_reset(bio) == 1)
        pkey = read_pkcs1_public(bio);
    if (!pkey) {
        if (memmem(pem, len, "ENCRYPTED", 9))
            rc = ccr_err_set(err, -EINVAL, NULL, -1,
                             "encrypted private keys are not supported: decrypt it first (openssl pkey)");
        else
            rc = ccr_err_set(err, -EINVAL, NULL, -1,
                             "not a PEM RSA key (expected PRIVATE KEY, RSA PRIVATE KEY, PUBLIC KEY or RSA "
                             "PUBLIC KEY)");
        goto out;
    }
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        const char *type = EVP_PKEY_get0_type_name(pkey);
        rc = ccr_err_set(err, -EINVAL, NULL, -1,
                         "not an RSA key (%s): a KEK must be RSA 2048, 3072 or 4096 bits",
                         type ? type : "unknown type");
        goto out;
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits <= 0 || !kek_size_ok((unsigned)bits)) {
        rc = ccr_err_set(err, -EINVAL, NULL, -1, "RSA key of %d bits: a KEK must be 2048, 3072 or 4096 bits",
                         bits);
        goto out;
    }
    rc = kek_wrap_pkey(pkey, priv, out);
    if (rc == 0)
        pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

void ccr_kek_destroy(struct ccr_kek *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    ccr_free(k);
}

bool ccr_kek_is_private(const struct ccr_kek *k)
{
    return k && k->priv;
}

unsigned ccr_kek_bits(const struct ccr_kek *k)
{
    return k ? k->bits : 0;
}

/* Copies a memory BIO's contents into a NUL-terminated ccr_malloc'd string. */
static int bio_to_string(BIO *bio, char **out_pem, size_t *out_len)
{
    BUF_MEM *bm = NULL;
    if (BIO_get_mem_ptr(bio, &bm) != 1 || !bm || bm->length == 0)
        return -EIO;
    char *s = ccr_malloc(bm->length + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, bm->data, bm->length);
    s[bm->length] = '\0';
    *out_pem = s;
    *out_len = bm->length;
    return 0;
}

int ccr_kek_private_pem(const struct ccr_kek *k, char **out_pem, size_t *out_len)
{
    if (!k || !out_pem || !out_len || !k->priv)
        return -EINVAL;
    int rc = -EIO;
    ERR_set_mark();
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio) {
        rc = -ENOMEM;
        goto out;
    }
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("PRIVATE KEY"), unencrypted without a cipher. */
    if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1)
        rc = bio_to_string(bio, out_pem, out_len);
out:
    BIO_free(bio); /* secure memory: cleansed on free */
    ERR_pop_to_mark();
    return rc;
}

int ccr_kek_public_pem(const struct ccr_kek *k, char **out_pem, size_t *out_len)
{
    if (!k || !out_pem || !out_len)
        return -EINVAL;
    int rc = -EIO;
    ERR_set_mark();
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        rc = -ENOMEM;
        goto out;
    }
    if (PEM_write_bio_PUBKEY(bio, k->pkey) == 1)
        rc = bio_to_string(bio, out_pem, out_len);
out:
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

/* A context for RSA-OAEP with SHA-256, MGF1-SHA256 and an empty label, for encryption or decryption. */
static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *pkey, bool encrypt)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx)
        return NULL;
    int ok = encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx);
    if (ok != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    /* No label is set: OAEP's label defaults to the empty string. */
    return ctx;
}

int ccr_key_wrap(const struct ccr_kek *kek, const struct ccr_key *dek, char **out_b64)
{
    if (!kek || !dek || !out_b64)
        return -EINVAL;
    size_t modlen = kek->bits / 8, outlen = modlen;
    uint8_t *ct = NULL;
    char *b64 = NULL;
    int rc = -EIO;

    ERR_set_mark();
    EVP_PKEY_CTX *ctx = oaep_ctx(kek->pkey, true);
    if (!ctx)
        goto out;
    ct = ccr_malloc(modlen);
    b64 = ccr_malloc(CCR_BASE64_LEN(modlen) + 1);
    if (!ct || !b64) {
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_PKEY_encrypt(ctx, ct, &outlen, dek->b, sizeof(dek->b)) != 1 || outlen != modlen)
        goto out;
    rc = ccr_base64_encode(ct, outlen, b64, CCR_BASE64_LEN(modlen) + 1);
    if (rc < 0)
        goto out;
    *out_b64 = b64;
    b64 = NULL;
    rc = 0;
out:
    ccr_free(b64);
    ccr_free(ct);
    EVP_PKEY_CTX_free(ctx);
    ERR_pop_to_mark();
    return rc;
}

int ccr_key_unwrap(const struct ccr_kek *kek, const char *b64, size_t len, struct ccr_key *out,
                   struct ccr_err *err)
{
    if (!kek || !b64 || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no key or wrapped key given");
    if (!kek->priv)
        return ccr_err_set(err, -EINVAL, NULL, -1,
                           "cannot unwrap with a public key: the private KEK is needed");

    size_t modlen = kek->bits / 8, ptlen = modlen;
    uint8_t *ct = ccr_malloc(modlen);
    uint8_t *pt = ccr_malloc(modlen);
    EVP_PKEY_CTX *ctx = NULL;
    int rc;

    ERR_set_mark();
    if (!ct || !pt) {
        rc = -ENOMEM;
        goto out;
    }
    int n = ccr_base64_decode(b64, len, ct, modlen);
    if (n == -ENOSPC || (n >= 0 && (size_t)n != modlen)) {
        rc = ccr_err_set(err, -EBADMSG, NULL, -1,
                         "cannot unwrap: the wrapped key is not %zu bytes (a %u-bit KEK): wrong KEK or "
                         "corrupt wrapped key",
                         modlen, kek->bits);
        goto out;
    }
    if (n < 0) {
        rc = ccr_err_set(err, -EINVAL, NULL, -1, "wrapped key is not valid base64");
        goto out;
    }
    ctx = oaep_ctx(kek->pkey, false);
    if (!ctx) {
        rc = ccr_err_set(err, -EIO, NULL, -1, "cannot set up RSA-OAEP decryption");
        goto out;
    }
    if (EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, modlen) != 1 || ptlen != CCR_KEY_LEN) {
        rc = ccr_err_set(err, -EBADMSG, NULL, -1, "cannot unwrap: wrong KEK or corrupt wrapped key");
        goto out;
    }
    memcpy(out->b, pt, CCR_KEY_LEN);
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    if (pt)
        ccr_wipe(pt, modlen);
    ccr_free(pt);
    ccr_free(ct);
    ERR_pop_to_mark();
    return rc;
}
