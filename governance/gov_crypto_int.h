/*
 * gov_crypto_int.h - private to the governance crypto files (ident.c, cose.c, ecies.c, evidence.c):
 * the layouts of identities and ephemeral keys and the helpers they share.
 */
#ifndef CCR_GOV_CRYPTO_INT_H
#define CCR_GOV_CRYPTO_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ccr/gov_crypto.h"

struct ccr_gov_ident {
    X509 *cert;
    EVP_PKEY *pkey; /* the private key when loaded with one, else the certificate's public key */
    bool priv;
    char id[CCR_GOV_ID_HEX_LEN + 1];
    char *pem;  /* the certificate, PEM */
    char *name; /* subject CN, "" when none */
};

struct ccr_gov_ephkey {
    EVP_PKEY *pkey;
    uint8_t *spki;
    size_t spki_len;
};

/* True when pkey is an EC key on P-384 (secp384r1, named curve). */
bool gov_pkey_is_p384(const EVP_PKEY *pkey);

/* Parses SubjectPublicKeyInfo DER holding a P-384 key, in the canonical encoding OpenSSL writes
 * (uncompressed point, nothing after it): one key, one byte string. NULL otherwise. */
EVP_PKEY *gov_p384_from_spki(const uint8_t *der, size_t len);

/* SubjectPublicKeyInfo DER of pkey, malloc'ed. */
int gov_pkey_spki(EVP_PKEY *pkey, uint8_t **out, size_t *out_len);

/* The identity of an envelope for replay protection: SHA-256 of its signature with s normalised to the
 * lower of s and n - s, so that the malleated twin (r, n - s) of a signature counts as the same one. */
void gov_cose_replay_id(const struct ccr_cose_msg *msg, uint8_t out[32]);

#endif
