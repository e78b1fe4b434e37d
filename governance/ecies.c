/*
 * ecies.c - clean room ephemeral keys and the encryption of a released secret to one (ECIES on P-384):
 *
 *   (e, E) fresh; Z = ECDH(e, recipient); K = HKDF-SHA256(Z, salt "", "ccr-gov key release v1" ||
 *   SHA-256(recipient SPKI DER)); ct = AES-256-GCM(K, random iv, aad, secret) || tag.
 *
 * Binding the recipient's SPKI into the key derivation ties K to the key the evidence vouched for. The
 * shared secret Z and K are wiped as soon as they are used; a failed open wipes its output.
 */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>

#include "ccr/crypto.h"
#include "gov_crypto_int.h"

#define ECIES_INFO     "ccr-gov key release v1"
#define ECIES_INFO_LEN (sizeof(ECIES_INFO) - 1)
#define Z_MAX          72 /* a P-384 shared secret is 48 bytes */

int ccr_gov_ephkey_generate(struct ccr_gov_ephkey **out)
{
    if (!out)
        return -EINVAL;
    struct ccr_gov_ephkey *k = ccr_calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    ERR_set_mark();
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ERR_pop_to_mark();
    if (!k->pkey) {
        ccr_free(k);
        return -EIO;
    }
    int rc = gov_pkey_spki(k->pkey, &k->spki, &k->spki_len);
    if (rc < 0) {
        ccr_gov_ephkey_destroy(k);
        return rc;
    }
    *out = k;
    return 0;
}

void ccr_gov_ephkey_destroy(struct ccr_gov_ephkey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    ccr_free(k->spki);
    ccr_free(k);
}

const uint8_t *ccr_gov_ephkey_spki(const struct ccr_gov_ephkey *k, size_t *out_len)
{
    if (!k) {
        if (out_len)
            *out_len = 0;
        return NULL;
    }
    if (out_len)
        *out_len = k->spki_len;
    return k->spki;
}

/* K = HKDF-SHA256(ECDH(priv, peer), "", info || SHA-256(recipient_spki)). */
static int derive_key(EVP_PKEY *priv, EVP_PKEY *peer, const uint8_t *recipient_spki, size_t spki_len,
                      uint8_t key[CCR_KEY_LEN])
{
    uint8_t z[Z_MAX];
    size_t zlen = sizeof(z);
    uint8_t info[ECIES_INFO_LEN + 32];
    int rc = -EIO;
    ERR_set_mark();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (!ctx) {
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
        EVP_PKEY_derive(ctx, z, &zlen) != 1)
        goto out;
    memcpy(info, ECIES_INFO, ECIES_INFO_LEN);
    ccr_gov_sha256(recipient_spki, spki_len, info + ECIES_INFO_LEN);
    rc = ccr_hkdf_sha256(z, zlen, NULL, 0, info, sizeof(info), key, CCR_KEY_LEN);
out:
    ccr_wipe(z, sizeof(z));
    EVP_PKEY_CTX_free(ctx);
    ERR_pop_to_mark();
    return rc;
}

int ccr_gov_seal_to(const uint8_t *spki, size_t spki_len, const uint8_t *aad, size_t aad_len,
                    const uint8_t *secret, size_t secret_len, struct ccr_gov_sealed *out)
{
    if (!spki || !out || (!aad && aad_len) || (!secret && secret_len) ||
        secret_len > SIZE_MAX - CCR_GCM_TAG_LEN)
        return -EINVAL;
    EVP_PKEY *peer = gov_p384_from_spki(spki, spki_len);
    if (!peer)
        return -EINVAL;
    struct ccr_gov_sealed s;
    memset(&s, 0, sizeof(s));
    uint8_t key[CCR_KEY_LEN];
    struct ccr_aead *a = NULL;
    EVP_PKEY *e = NULL;
    int rc = -EIO;
    ERR_set_mark();
    e = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ERR_pop_to_mark();
    if (!e)
        goto out;
    rc = gov_pkey_spki(e, &s.epk, &s.epk_len);
    if (rc < 0)
        goto out;
    rc = derive_key(e, peer, spki, spki_len, key);
    if (rc < 0)
        goto out;
    rc = ccr_random_bytes(s.iv, sizeof(s.iv));
    if (rc < 0)
        goto out;
    s.ct_len = secret_len + CCR_GCM_TAG_LEN;
    s.ct = ccr_malloc(s.ct_len);
    if (!s.ct) {
        rc = -ENOMEM;
        goto out;
    }
    rc = ccr_aead_create(&a);
    if (rc < 0)
        goto out;
    rc = ccr_aead_seal(a, key, s.iv, aad, aad_len, secret, s.ct, secret_len, s.ct + secret_len);
    if (rc < 0)
        goto out;
    *out = s;
    memset(&s, 0, sizeof(s));
    rc = 0;
out:
    ccr_wipe(key, sizeof(key));
    ccr_aead_destroy(a);
    EVP_PKEY_free(e);
    EVP_PKEY_free(peer);
    ccr_gov_sealed_fini(&s);
    return rc;
}

void ccr_gov_sealed_fini(struct ccr_gov_sealed *s)
{
    if (!s)
        return;
    if (s->ct)
        ccr_wipe(s->ct, s->ct_len);
    ccr_free(s->ct);
    ccr_free(s->epk);
    ccr_wipe(s, sizeof(*s));
}

int ccr_gov_open_sealed(const struct ccr_gov_ephkey *k, const uint8_t *aad, size_t aad_len,
                        const struct ccr_gov_sealed *in, uint8_t **out, size_t *out_len)
{
    if (!k || !in || !out || !out_len || (!aad && aad_len))
        return -EINVAL;
    if (!in->epk || !in->ct || in->ct_len < CCR_GCM_TAG_LEN)
        return -EBADMSG;
    EVP_PKEY *peer = gov_p384_from_spki(in->epk, in->epk_len);
    if (!peer)
        return -EBADMSG;
    size_t n = in->ct_len - CCR_GCM_TAG_LEN;
    uint8_t key[CCR_KEY_LEN];
    struct ccr_aead *a = NULL;
    uint8_t *pt = NULL;
    int rc = derive_key(k->pkey, peer, k->spki, k->spki_len, key);
    if (rc < 0)
        goto out;
    pt = ccr_malloc(n ? n : 1);
    if (!pt) {
        rc = -ENOMEM;
        goto out;
    }
    rc = ccr_aead_create(&a);
    if (rc < 0)
        goto out;
    rc = ccr_aead_open(a, key, in->iv, aad, aad_len, in->ct, pt, n, in->ct + n);
    if (rc < 0)
        goto out;
    *out = pt;
    *out_len = n;
    pt = NULL;
out:
    if (pt) {
        ccr_wipe(pt, n ? n : 1);
        ccr_free(pt);
    }
    ccr_wipe(key, sizeof(key));
    ccr_aead_destroy(a);
    EVP_PKEY_free(peer);
    return rc;
}
