/*
 * aead.c - AES-256-GCM over OpenSSL EVP.
 *
 * The cipher is fetched once per process: fetching per call takes a global lock in OpenSSL 3 and shows up
 * in profiles. Each struct ccr_aead owns one EVP_CIPHER_CTX and remembers the key it was last keyed with,
 * so sealing or opening many regions of one blob pays for the AES key schedule once. Changing direction
 * (seal after open) re-initialises with the IV only: the provider keeps the key.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto_int.h"

struct ccr_aead {
    EVP_CIPHER_CTX *ctx;
    bool keyed;
    uint8_t key[CCR_KEY_LEN];
};

static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

const EVP_CIPHER *ccr_crypto_gcm(void)
{
    pthread_once(&gcm_once, gcm_fetch);
    return gcm_cipher;
}

int ccr_aead_create(struct ccr_aead **out)
{
    if (!out)
        return -EINVAL;
    if (!ccr_crypto_gcm())
        return -EIO;
    struct ccr_aead *a = ccr_calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->ctx = EVP_CIPHER_CTX_new();
    if (!a->ctx) {
        ccr_free(a);
        return -ENOMEM;
    }
    *out = a;
    return 0;
}

void ccr_aead_destroy(struct ccr_aead *a)
{
    if (!a)
        return;
    EVP_CIPHER_CTX_free(a->ctx);
    ccr_wipe(a->key, sizeof(a->key));
    ccr_free(a);
}

/* Keys the context (only when the key changed) and sets the IV and direction. */
static int aead_begin(struct ccr_aead *a, const uint8_t key[CCR_KEY_LEN], const uint8_t iv[CCR_GCM_IV_LEN],
                      int enc)
{
    if (!a->keyed || CRYPTO_memcmp(a->key, key, CCR_KEY_LEN) != 0) {
        a->keyed = false;
        if (EVP_CipherInit_ex2(a->ctx, ccr_crypto_gcm(), key, iv, enc, NULL) != 1)
            return -EIO;
        memcpy(a->key, key, CCR_KEY_LEN);
        a->keyed = true;
        return 0;
    }
    if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, iv, enc, NULL) != 1)
        return -EIO;
    return 0;
}

/* EVP lengths are int: feed anything large in slices of 1 GiB. */
#define AEAD_SLICE ((size_t)1 << 30)

static int aead_update(struct ccr_aead *a, const uint8_t *in, uint8_t *out, size_t len)
{
    while (len > 0) {
        size_t n = len < AEAD_SLICE ? len : AEAD_SLICE;
        int outl = 0;
        if (EVP_CipherUpdate(a->ctx, out, &outl, in, (int)n) != 1 || (size_t)outl != n)
            return -EIO;
        in += n;
        if (out)
            out += n;
        len -= n;
    }
    return 0;
}

static int aead_aad(struct ccr_aead *a, const void *aad, size_t aad_len)
{
    if (aad_len == 0)
        return 0;
    int outl = 0;
    const uint8_t *p = aad;
    while (aad_len > 0) {
        size_t n = aad_len < AEAD_SLICE ? aad_len : AEAD_SLICE;
        if (EVP_CipherUpdate(a->ctx, NULL, &outl, p, (int)n) != 1)
            return -EIO;
        p += n;
        aad_len -= n;
    }
    return 0;
}

int ccr_aead_seal(struct ccr_aead *a, const uint8_t key[CCR_KEY_LEN], const uint8_t iv[CCR_GCM_IV_LEN],
                  const void *aad, size_t aad_len, const uint8_t *in, uint8_t *out, size_t len,
                  uint8_t tag[CCR_GCM_TAG_LEN])
{
    if (!a || !key || !iv || !tag || (len && (!in || !out)) || (aad_len && !aad))
        return -EINVAL;
    int rc = aead_begin(a, key, iv, 1);
    if (rc == 0)
        rc = aead_aad(a, aad, aad_len);
    if (rc == 0)
        rc = aead_update(a, in, out, len);
    if (rc == 0) {
        uint8_t fin[16];
        int outl = 0;
        if (EVP_CipherFinal_ex(a->ctx, fin, &outl) != 1 ||
            EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, CCR_GCM_TAG_LEN, tag) != 1)
            rc = -EIO;
    }
    return rc;
}

int ccr_aead_open(struct ccr_aead *a, const uint8_t key[CCR_KEY_LEN], const uint8_t iv[CCR_GCM_IV_LEN],
                  const void *aad, size_t aad_len, const uint8_t *in, uint8_t *out, size_t len,
                  const uint8_t tag[CCR_GCM_TAG_LEN])
{
    if (!a || !key || !iv || !tag || (len && (!in || !out)) || (aad_len && !aad))
        return -EINVAL;
    int rc = aead_begin(a, key, iv, 0);
    if (rc == 0)
        rc = aead_aad(a, aad, aad_len);
    if (rc == 0)
        rc = aead_update(a, in, out, len);
    if (rc == 0 && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, CCR_GCM_TAG_LEN, (void *)tag) != 1)
        rc = -EIO;
    if (rc == 0) {
        uint8_t fin[16];
        int outl = 0;
        if (EVP_CipherFinal_ex(a->ctx, fin, &outl) != 1)
            rc = -EBADMSG;
    }
    if (rc != 0 && len)
        ccr_wipe(out, len);
    return rc;
}
