/*
 * ccr/gov_crypto.h - the cryptography of governance: member identities (ECDSA P-384 keys with a
 * self-signed certificate), COSE_Sign1 envelopes with ES384 (RFC 9052), a minimal CBOR codec, the
 * encryption of a released secret to a clean room's ephemeral key (ECIES over P-384), and attestation
 * evidence with pluggable verifiers (the insecure "virtual" one ships; SEV-SNP plugs in here).
 *
 * Wire formats are specified in docs/governance.md ("Protocol"); this header is the C contract.
 * Pure functions: no threads, no I/O except the key files named. Every buffer this header hands out is
 * allocated with ccr_malloc: free it with ccr_free (wiping it first where it held a secret). Errors are
 * negative errno values: -EINVAL bad argument, -EBADMSG malformed or unauthentic input, -ENOMEM, -EIO OpenSSL
 * failure; the optional struct ccr_err says what failed.
 */
#ifndef CCR_GOV_CRYPTO_H
#define CCR_GOV_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"

/* ===================================================================================================== */
/* Member identities                                                                                      */
/* ===================================================================================================== */

#define CCR_GOV_ID_HEX_LEN 64 /* a member id: lowercase hex SHA-256 of the certificate DER */

/* An identity: an EC P-384 private key and its certificate, or a certificate alone (verify only). */
struct ccr_gov_ident;

/*
 * Creates a new P-384 key and a self-signed certificate (CN=name, valid 10 years, SHA-384) and writes
 * them as PEM: `<dir>/<name>_privk.pem` (mode 0600, written atomically) and `<dir>/<name>_cert.pem`.
 * Refuses to overwrite (-EEXIST). On success *out_id (may be NULL) receives the member id (65 bytes with
 * the NUL).
 */
CCR_API CCR_WUR int ccr_gov_ident_keygen(const char *dir, const char *name,
                                         char out_id[CCR_GOV_ID_HEX_LEN + 1], struct ccr_err *err);

/* Loads a certificate (PEM file) and, when key_path is non-NULL, its private key (PEM); checks they match. */
CCR_API CCR_WUR int ccr_gov_ident_load(const char *cert_path, const char *key_path,
                                       struct ccr_gov_ident **out, struct ccr_err *err);

/* Parses a certificate from PEM text (len bytes); rejects anything but an EC P-384 key. */
CCR_API CCR_WUR int ccr_gov_ident_from_cert_pem(const char *pem, size_t len, struct ccr_gov_ident **out,
                                                struct ccr_err *err);

CCR_API void ccr_gov_ident_destroy(struct ccr_gov_ident *id); /* accepts NULL; frees the key */

/* The member id (hex SHA-256 of the certificate DER), NUL-terminated; valid while id lives. */
CCR_API const char *ccr_gov_ident_id(const struct ccr_gov_ident *id);

/* The certificate as PEM, NUL-terminated; valid while id lives. */
CCR_API const char *ccr_gov_ident_cert_pem(const struct ccr_gov_ident *id);

/* The certificate's subject CN (the name given at keygen), NUL-terminated; valid while id lives. */
CCR_API const char *ccr_gov_ident_name(const struct ccr_gov_ident *id);

/* ===================================================================================================== */
/* COSE_Sign1 with ES384                                                                                  */
/* ===================================================================================================== */

/*
 * The protected header of every governance request (docs/governance.md, "Envelope"). Strings are
 * borrowed; NULL or 0 means absent.
 *   alg (1) = -35 (ES384), always
 *   kid (4) = bstr, the member id's 64 ASCII hex bytes (members; absent for a clean room)
 *   "ccf.gov.msg.type"        tstr  e.g. "proposal", "ballot", "withdrawal", "ack", "request", "cleanroom"
 *   "ccf.gov.msg.created_at"  uint  Unix seconds
 *   "ccf.gov.msg.proposal_id" tstr  ballots and withdrawals
 *   "ccr.request"             tstr  "METHOD /path?query": binds the envelope to one request
 *   "ccr.evidence"            bstr  clean room: attestation evidence (see below)
 *   "ccr.pubkey"              bstr  clean room: its ephemeral P-384 public key, SubjectPublicKeyInfo DER
 */
struct ccr_cose_hdr {
    const char *kid; /* member id hex */
    const char *msg_type;
    uint64_t created_at;
    const char *proposal_id;
    const char *request;
    const uint8_t *evidence;
    size_t evidence_len;
    const uint8_t *pubkey;
    size_t pubkey_len;
};

/*
 * Signs payload (payload_len may be 0) with the identity's private key (or, for a clean room, with
 * ccr_gov_ephkey's key via ccr_cose_sign1_eph). Produces the tagged COSE_Sign1 (tag 18) CBOR array
 * [protected bstr, unprotected {} , payload bstr, signature bstr(96: r||s)] in a ccr_malloc'ed buffer.
 */
CCR_API CCR_WUR int ccr_cose_sign1(const struct ccr_gov_ident *signer, const struct ccr_cose_hdr *hdr,
                                   const uint8_t *payload, size_t payload_len, uint8_t **out,
                                   size_t *out_len);

/*
 * A parsed envelope. Pointers point into the buffer given to ccr_cose_parse (keep it alive); strings
 * are copied NUL-terminated into the struct's own storage (over-long strings are -EBADMSG).
 */
struct ccr_cose_msg {
    char kid[CCR_GOV_ID_HEX_LEN + 1];
    char msg_type[64];
    uint64_t created_at;
    bool has_created_at;
    char proposal_id[128];
    char request[2048];
    const uint8_t *evidence;
    size_t evidence_len;
    const uint8_t *pubkey;
    size_t pubkey_len;
    const uint8_t *payload;
    size_t payload_len;
    /* what the signature covers and the signature itself */
    const uint8_t *protected_bytes;
    size_t protected_len;
    const uint8_t *signature;
    size_t signature_len;
};

/*
 * Parses a tagged or untagged COSE_Sign1. Checks structure only: alg must be -35, every known header
 * must have its type, unknown headers are ignored. -EBADMSG on anything malformed (err says what).
 * Never reads beyond len; safe on arbitrary input (fuzzed).
 */
CCR_API CCR_WUR int ccr_cose_parse(const uint8_t *buf, size_t len, struct ccr_cose_msg *out,
                                   struct ccr_err *err);

/* Verifies msg's signature with the identity's public key. 0, or -EBADMSG for a bad signature. */
CCR_API CCR_WUR int ccr_cose_verify(const struct ccr_cose_msg *msg, const struct ccr_gov_ident *signer,
                                    struct ccr_err *err);

/* ===================================================================================================== */
/* Clean room ephemeral keys and key release (ECIES)                                                      */
/* ===================================================================================================== */

/* An ephemeral EC P-384 key pair of a clean room (never written to disk by the library). */
struct ccr_gov_ephkey;

CCR_API CCR_WUR int ccr_gov_ephkey_generate(struct ccr_gov_ephkey **out);
CCR_API void ccr_gov_ephkey_destroy(struct ccr_gov_ephkey *k); /* accepts NULL */

/* Its public key as SubjectPublicKeyInfo DER; valid while k lives. */
CCR_API const uint8_t *ccr_gov_ephkey_spki(const struct ccr_gov_ephkey *k, size_t *out_len);

/* Signs like ccr_cose_sign1, with the ephemeral key (hdr->pubkey should be this key's SPKI). */
CCR_API CCR_WUR int ccr_cose_sign1_eph(const struct ccr_gov_ephkey *signer, const struct ccr_cose_hdr *hdr,
                                       const uint8_t *payload, size_t payload_len, uint8_t **out,
                                       size_t *out_len);

/* Verifies msg's signature with the public key in msg->pubkey (SPKI DER, P-384 only). */
CCR_API CCR_WUR int ccr_cose_verify_spki(const struct ccr_cose_msg *msg, struct ccr_err *err);

/*
 * Encrypts a secret to a clean room's public key (SPKI DER, P-384):
 *   a fresh service key pair (e, E); Z = ECDH(e, clean room key)
 *   K = HKDF-SHA256(ikm Z, salt empty, info "ccr-gov key release v1" || SHA-256(recipient SPKI DER)), 32
 * bytes ciphertext = AES-256-GCM(K, random 12-byte iv, aad, secret) || 16-byte tag Outputs ccr_malloc'ed
 * buffers: *out_epk (E as SPKI DER), *out_iv (12 bytes), *out_ct (secret_len + 16).
 */
struct ccr_gov_sealed {
    uint8_t *epk;
    size_t epk_len;
    uint8_t iv[12];
    uint8_t *ct;
    size_t ct_len;
};
CCR_API CCR_WUR int ccr_gov_seal_to(const uint8_t *spki, size_t spki_len, const uint8_t *aad, size_t aad_len,
                                    const uint8_t *secret, size_t secret_len, struct ccr_gov_sealed *out);
CCR_API void ccr_gov_sealed_fini(struct ccr_gov_sealed *s); /* frees and wipes; accepts a zeroed struct */

/* Decrypts what ccr_gov_seal_to produced for k. *out (ccr_malloc'ed, wiped by the caller before free) gets
 * the secret. -EBADMSG when it does not authenticate (another key, other aad, tampered). */
CCR_API CCR_WUR int ccr_gov_open_sealed(const struct ccr_gov_ephkey *k, const uint8_t *aad, size_t aad_len,
                                        const struct ccr_gov_sealed *in, uint8_t **out, size_t *out_len);

/* ===================================================================================================== */
/* Attestation evidence and verifiers                                                                     */
/* ===================================================================================================== */

#define CCR_GOV_MEASUREMENT_LEN 32 /* SHA-256 of the canonical deployment spec */
#define CCR_GOV_REPORT_DATA_LEN 64 /* SHA-256 of the clean room's SPKI DER, then 32 zero bytes */

/* What a verifier vouches for once evidence checks out. */
struct ccr_gov_claims {
    char type[32]; /* "virtual", "sevsnp", ... */
    uint8_t measurement[CCR_GOV_MEASUREMENT_LEN];
    uint8_t report_data[CCR_GOV_REPORT_DATA_LEN];
    bool insecure; /* true for virtual: no hardware vouches for anything */
};

/*
 * A verifier: checks evidence bytes and fills claims. Returns 0, -EBADMSG (malformed, bad signature or
 * chain; err says why) or -ENOTSUP (not this verifier's type). cb_arg is the verifier's state.
 *
 * A SEV-SNP verifier plugs in here: evidence = the attestation report with its VCEK certificate chain;
 * verify checks the chain to AMD's root, the report signature, the TCB and policy fields, then fills
 * measurement from HOST_DATA (the hash of the deployment policy) and report_data from REPORT_DATA.
 */
typedef int (*ccr_gov_verify_cb)(void *cb_arg, const uint8_t *evidence, size_t len,
                                 struct ccr_gov_claims *out, struct ccr_err *err);

struct ccr_gov_verifier {
    const char *type; /* matched against the evidence's "type" */
    ccr_gov_verify_cb verify;
    void *cb_arg;
};

/* The virtual verifier (type "virtual"; claims.insecure = true). Its evidence is UTF-8 JSON:
 *   {"type":"virtual","measurement":"<64 hex>","report_data":"<128 hex>"}
 * It checks only the syntax: a virtual clean room reports whatever measurement it likes. */
CCR_API extern const struct ccr_gov_verifier ccr_gov_verifier_virtual;

/* Builds virtual evidence for measurement, binding k (report_data = SHA-256(SPKI DER) || 32 zero bytes).
 * *out is ccr_malloc'ed JSON text (not NUL-terminated; out_len bytes). */
CCR_API CCR_WUR int ccr_gov_evidence_virtual(const uint8_t measurement[CCR_GOV_MEASUREMENT_LEN],
                                             const struct ccr_gov_ephkey *k, uint8_t **out, size_t *out_len);

/* Reads the "type" of evidence (JSON with a "type" member, or -EBADMSG) into type (cap bytes). */
CCR_API CCR_WUR int ccr_gov_evidence_type(const uint8_t *evidence, size_t len, char *type, size_t cap);

/* True when report_data binds spki: its first 32 bytes equal SHA-256(spki) and the rest are zero. */
CCR_API bool ccr_gov_report_data_binds(const uint8_t report_data[CCR_GOV_REPORT_DATA_LEN],
                                       const uint8_t *spki, size_t spki_len);

/* ===================================================================================================== */
/* Small helpers shared by the service and the client                                                    */
/* ===================================================================================================== */

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
CCR_API void ccr_gov_hex(const uint8_t *in, size_t n, char *out);

/* Parses exactly 2n hex digits (either case) into out. -EINVAL otherwise. */
CCR_API CCR_WUR int ccr_gov_unhex(const char *hex, uint8_t *out, size_t n);

/* SHA-256 of n bytes. */
CCR_API void ccr_gov_sha256(const void *in, size_t n, uint8_t out[32]);

/* base64url without padding (RFC 4648 section 5): *out is ccr_malloc'ed and NUL-terminated. */
CCR_API CCR_WUR int ccr_gov_b64url_encode(const uint8_t *in, size_t n, char **out);
CCR_API CCR_WUR int ccr_gov_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);

#endif
