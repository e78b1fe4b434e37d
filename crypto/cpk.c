/*
 * cpk.c - header values for Azure Storage customer-provided keys (see docs/format.md, "cpk"):
 * x-ms-encryption-key = base64(key), x-ms-encryption-key-sha256 = base64(SHA-256(key)).
 */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto_int.h"

int ccr_cpk_headers(const struct ccr_key *key, struct ccr_cpk_headers *out)
{
    if (!key || !out)
        return -EINVAL;
    struct ccr_cpk_headers h;
    uint8_t md[32];
    unsigned mdlen = 0;
    int rc = -EIO;

    if (EVP_Digest(key->b, sizeof(key->b), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
        goto out;
    if (ccr_base64_encode(key->b, sizeof(key->b), h.key_b64, sizeof(h.key_b64)) < 0 ||
        ccr_base64_encode(md, sizeof(md), h.key_sha256_b64, sizeof(h.key_sha256_b64)) < 0)
        goto out;
    memcpy(out, &h, sizeof(h));
    rc = 0;
out:
    ccr_wipe(&h, sizeof(h)); /* key_b64 is the key itself */
    ccr_wipe(md, sizeof(md));
    return rc;
}
