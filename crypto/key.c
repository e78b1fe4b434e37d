/*
 * key.c - data encryption keys: generation from the OS CSPRNG, random bytes, the ccr1 key id.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto_int.h"

int ccr_key_generate(struct ccr_key *out)
{
    if (!out)
        return -EINVAL;
    struct ccr_key k;
    size_t got = 0;
    while (got < sizeof(k.b)) {
        ssize_t n = getrandom(k.b + got, sizeof(k.b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            ccr_key_wipe(&k);
            return e;
        }
        got += (size_t)n;
    }
    memcpy(out->b, k.b, sizeof(k.b));
    ccr_key_wipe(&k);
    return 0;
}

void ccr_key_wipe(struct ccr_key *key)
{
    if (key)
        ccr_wipe(key->b, sizeof(key->b));
}

int ccr_random_bytes(void *buf, size_t n)
{
    if (!buf && n)
        return -EINVAL;
    while (n > 0) {
        int slice = n > (1u << 30) ? (1 << 30) : (int)n;
        if (RAND_bytes(buf, slice) != 1)
            return -EIO;
        buf = (uint8_t *)buf + slice;
        n -= (size_t)slice;
    }
    return 0;
}

int ccr_key_id(const struct ccr_key *key, uint8_t out[CCR_KEY_ID_LEN])
{
    static const char label[] = "ccr1-key-id";
    if (!key || !out)
        return -EINVAL;
    uint8_t md[32];
    unsigned mdlen = 0;
    int rc = -EIO;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m)
        return -ENOMEM;
    if (EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(m, label, sizeof(label) - 1) == 1 &&
        EVP_DigestUpdate(m, key->b, sizeof(key->b)) == 1 && EVP_DigestFinal_ex(m, md, &mdlen) == 1 &&
        mdlen == sizeof(md)) {
        memcpy(out, md, CCR_KEY_ID_LEN);
        rc = 0;
    }
    EVP_MD_CTX_free(m);
    ccr_wipe(md, sizeof(md));
    return rc;
}
