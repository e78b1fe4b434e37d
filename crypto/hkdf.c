/*
 * hkdf.c - HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF, fetched once per process.
 */
#include <errno.h>
#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto_int.h"

static EVP_KDF *hkdf_kdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

static void hkdf_fetch(void)
{
    hkdf_kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

int ccr_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len, const void *info,
                    size_t info_len, void *out, size_t out_len)
{
    if ((!ikm && ikm_len) || (!salt && salt_len) || (!info && info_len) || !out || out_len == 0 ||
        out_len > 255 * 32)
        return -EINVAL;
    pthread_once(&hkdf_once, hkdf_fetch);
    if (!hkdf_kdf)
        return -EIO;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(hkdf_kdf);
    if (!kctx)
        return -ENOMEM;

    /* OpenSSL wants non-const pointers in OSSL_PARAM; it does not write through them. */
    OSSL_PARAM params[5];
    int n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[n] = OSSL_PARAM_construct_end();

    int rc = EVP_KDF_derive(kctx, out, out_len, params) == 1 ? 0 : -EIO;
    EVP_KDF_CTX_free(kctx);
    return rc;
}
