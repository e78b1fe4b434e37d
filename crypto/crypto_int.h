/*
 * crypto_int.h - private to crypto/.
 */
#ifndef CCR_CRYPTO_INT_H
#define CCR_CRYPTO_INT_H

#include <openssl/evp.h>

#include "ccr/crypto.h"

/* AES-256-GCM, fetched once per process (NULL if the provider lacks it). */
const EVP_CIPHER *ccr_crypto_gcm(void);

static inline void ccr_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t ccr_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
