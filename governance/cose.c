/*
 * cose.c - COSE_Sign1 envelopes with ES384 (RFC 9052 section 4.2, RFC 9053 section 2.1).
 *
 * Signing: the protected header map is encoded with a fixed key order (alg, kid, then the text labels in
 * the order of struct ccr_cose_hdr), so the same header always gives the same bytes. The signature
 * covers Sig_structure = ["Signature1", protected, h'', payload] hashed with SHA-384; OpenSSL produces a
 * DER ECDSA-Sig-Value, which COSE carries as the fixed-width r || s (48 bytes each, big-endian).
 *
 * Parsing checks structure only and copies the known string headers into the message struct;
 * verification rebuilds the Sig_structure from the parsed protected bytes and payload.
 */
#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "cbor.h"
#include "gov_crypto_int.h"

#define COSE_TAG_SIGN1  18
#define COSE_ALG_ES384  (-35)
#define COSE_LABEL_ALG  1
#define COSE_LABEL_CRIT 2
#define COSE_LABEL_KID  4
#define ES384_HALF      48
#define ES384_SIG_LEN   (2 * ES384_HALF)

#define H_TYPE        "ccf.gov.msg.type"
#define H_CREATED_AT  "ccf.gov.msg.created_at"
#define H_PROPOSAL_ID "ccf.gov.msg.proposal_id"
#define H_REQUEST     "ccr.request"
#define H_EVIDENCE    "ccr.evidence"
#define H_PUBKEY      "ccr.pubkey"

/* ---- encoding ---------------------------------------------------------------------------------------- */

static int encode_protected(const struct ccr_cose_hdr *h, uint8_t **out, size_t *out_len)
{
    uint64_t pairs = 1 + (h->kid != NULL) + (h->msg_type != NULL) + (h->created_at != 0) +
                     (h->proposal_id != NULL) + (h->request != NULL) + (h->evidence != NULL) +
                     (h->pubkey != NULL);
    if ((!h->evidence && h->evidence_len) || (!h->pubkey && h->pubkey_len))
        return -EINVAL;
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_map(&b, pairs);
    cbor_put_int(&b, COSE_LABEL_ALG);
    cbor_put_int(&b, COSE_ALG_ES384);
    if (h->kid) {
        cbor_put_int(&b, COSE_LABEL_KID);
        cbor_put_bstr(&b, h->kid, strlen(h->kid));
    }
    if (h->msg_type) {
        cbor_put_cstr(&b, H_TYPE);
        cbor_put_cstr(&b, h->msg_type);
    }
    if (h->created_at) {
        cbor_put_cstr(&b, H_CREATED_AT);
        cbor_put_uint(&b, h->created_at);
    }
    if (h->proposal_id) {
        cbor_put_cstr(&b, H_PROPOSAL_ID);
        cbor_put_cstr(&b, h->proposal_id);
    }
    if (h->request) {
        cbor_put_cstr(&b, H_REQUEST);
        cbor_put_cstr(&b, h->request);
    }
    if (h->evidence) {
        cbor_put_cstr(&b, H_EVIDENCE);
        cbor_put_bstr(&b, h->evidence, h->evidence_len);
    }
    if (h->pubkey) {
        cbor_put_cstr(&b, H_PUBKEY);
        cbor_put_bstr(&b, h->pubkey, h->pubkey_len);
    }
    int rc = cbor_buf_take(&b, out, out_len);
    cbor_buf_fini(&b);
    return rc;
}

/* Sig_structure = ["Signature1", protected, external_aad h'', payload]. */
static int sig_structure(const uint8_t *prot, size_t prot_len, const uint8_t *payload, size_t payload_len,
                         uint8_t **out, size_t *out_len)
{
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_array(&b, 4);
    cbor_put_cstr(&b, "Signature1");
    cbor_put_bstr(&b, prot, prot_len);
    cbor_put_bstr(&b, "", 0);
    cbor_put_bstr(&b, payload ? payload : (const uint8_t *)"", payload_len);
    int rc = cbor_buf_take(&b, out, out_len);
    cbor_buf_fini(&b);
    return rc;
}

/* ES384 over tbs with pkey: r || s, 48 bytes each. */
static int es384_sign(EVP_PKEY *pkey, const uint8_t *tbs, size_t tbs_len, uint8_t sig[ES384_SIG_LEN])
{
    int rc = -EIO;
    unsigned char der[160];
    size_t der_len = sizeof(der);
    ECDSA_SIG *es = NULL;
    ERR_set_mark();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) {
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, NULL, pkey, NULL) != 1 ||
        EVP_DigestSign(md, der, &der_len, tbs, tbs_len) != 1)
        goto out;
    const unsigned char *p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!es)
        goto out;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, ES384_HALF) != ES384_HALF ||
        BN_bn2binpad(s, sig + ES384_HALF, ES384_HALF) != ES384_HALF)
        goto out;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    ERR_pop_to_mark();
    return rc;
}

/* Verifies r || s over tbs with pkey: 0 or -EBADMSG (-ENOMEM, -EIO on local failures). */
static int es384_verify(EVP_PKEY *pkey, const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
                        size_t sig_len)
{
    if (sig_len != ES384_SIG_LEN)
        return -EBADMSG;
    int rc = -ENOMEM;
    unsigned char *der = NULL;
    EVP_MD_CTX *md = NULL;
    ERR_set_mark();
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, ES384_HALF, NULL);
    BIGNUM *s = BN_bin2bn(sig + ES384_HALF, ES384_HALF, NULL);
    if (!es || !r || !s)
        goto out;
    if (ECDSA_SIG_set0(es, r, s) != 1) {
        rc = -EIO;
        goto out;
    }
    r = s = NULL; /* owned by es */
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0) {
        rc = -EIO;
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md)
        goto out;
    if (EVP_DigestVerifyInit_ex(md, NULL, "SHA384", NULL, NULL, pkey, NULL) != 1) {
        rc = -EIO;
        goto out;
    }
    rc = EVP_DigestVerify(md, der, (size_t)der_len, tbs, tbs_len) == 1 ? 0 : -EBADMSG;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    ERR_pop_to_mark();
    return rc;
}

static int sign1(EVP_PKEY *pkey, const struct ccr_cose_hdr *hdr, const uint8_t *payload, size_t payload_len,
                 uint8_t **out, size_t *out_len)
{
    if (!pkey || !hdr || !out || !out_len || (!payload && payload_len))
        return -EINVAL;
    uint8_t *prot = NULL, *tbs = NULL;
    size_t prot_len = 0, tbs_len = 0;
    uint8_t sig[ES384_SIG_LEN];
    int rc = encode_protected(hdr, &prot, &prot_len);
    if (rc < 0)
        return rc;
    rc = sig_structure(prot, prot_len, payload, payload_len, &tbs, &tbs_len);
    if (rc < 0)
        goto out;
    rc = es384_sign(pkey, tbs, tbs_len, sig);
    if (rc < 0)
        goto out;
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_tag(&b, COSE_TAG_SIGN1);
    cbor_put_array(&b, 4);
    cbor_put_bstr(&b, prot, prot_len);
    cbor_put_map(&b, 0);
    cbor_put_bstr(&b, payload ? payload : (const uint8_t *)"", payload_len);
    cbor_put_bstr(&b, sig, sizeof(sig));
    rc = cbor_buf_take(&b, out, out_len);
    cbor_buf_fini(&b);
out:
    ccr_free(prot);
    ccr_free(tbs);
    return rc;
}

int ccr_cose_sign1(const struct ccr_gov_ident *signer, const struct ccr_cose_hdr *hdr, const uint8_t *payload,
                   size_t payload_len, uint8_t **out, size_t *out_len)
{
    if (!signer || !signer->priv)
        return -EINVAL;
    return sign1(signer->pkey, hdr, payload, payload_len, out, out_len);
}

int ccr_cose_sign1_eph(const struct ccr_gov_ephkey *signer, const struct ccr_cose_hdr *hdr,
                       const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *out_len)
{
    if (!signer)
        return -EINVAL;
    return sign1(signer->pkey, hdr, payload, payload_len, out, out_len);
}

/* ---- parsing ----------------------------------------------------------------------------------------- */

static int bad(struct ccr_err *err, size_t off, const char *what)
{
    return ccr_err_set(err, -EBADMSG, "COSE_Sign1", (int64_t)off, "malformed envelope: %s", what);
}

/* Copies a text or byte string into dst (cap bytes with the NUL); over-long or with a NUL: -EBADMSG. */
static int copy_str(char *dst, size_t cap, const void *src, size_t n)
{
    if (n >= cap || memchr(src, '\0', n))
        return -EBADMSG;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static bool label_is(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

enum {
    SEEN_ALG = 1,
    SEEN_KID = 2,
    SEEN_TYPE = 4,
    SEEN_CREATED = 8,
    SEEN_PROP = 16,
    SEEN_REQ = 32,
    SEEN_EV = 64,
    SEEN_PK = 128
};

/* Parses the protected header map (prot_off: its offset in the envelope, for error offsets). */
static int parse_protected(const uint8_t *p, size_t len, size_t prot_off, struct ccr_cose_msg *m,
                           struct ccr_err *err)
{
    struct cbor_dec d;
    cbor_dec_init(&d, p, len);
    uint64_t pairs;
    if (!cbor_well_formed(p, len))
        return bad(err, prot_off, "protected header is not one well-formed CBOR item");
    if (cbor_get_map(&d, &pairs) < 0)
        return bad(err, prot_off, "protected header is not a map");
    unsigned seen = 0;
    for (uint64_t i = 0; i < pairs; i++) {
        size_t key_off = prot_off + d.off;
        struct cbor_item key;
        if (cbor_next(&d, &key) < 0)
            return bad(err, key_off, "truncated protected header");
        unsigned bit = 0;
        int rc = 0;
        const uint8_t *bs;
        size_t bn;
        const char *ts;
        size_t tn;
        if (key.type == CBOR_UINT || key.type == CBOR_NINT) {
            if (key.type == CBOR_UINT && key.val == COSE_LABEL_ALG) {
                int64_t alg;
                bit = SEEN_ALG;
                if (cbor_get_int(&d, &alg) < 0 || alg != COSE_ALG_ES384)
                    return bad(err, key_off, "alg must be -35 (ES384)");
            } else if (key.type == CBOR_UINT && key.val == COSE_LABEL_KID) {
                bit = SEEN_KID;
                rc = cbor_get_bstr(&d, &bs, &bn);
                if (rc == 0)
                    rc = copy_str(m->kid, sizeof(m->kid), bs, bn);
                if (rc < 0)
                    return bad(err, key_off, "kid must be a byte string of at most 64 bytes");
            } else if (key.type == CBOR_UINT && key.val == COSE_LABEL_CRIT) {
                return bad(err, key_off, "critical headers (label 2) are not supported");
            } else if (cbor_skip(&d) < 0) {
                return bad(err, key_off, "bad value of an unknown header");
            }
        } else if (key.type == CBOR_TSTR) {
            const char *k = (const char *)key.data;
            size_t kn = (size_t)key.val;
            if (label_is(k, kn, H_TYPE)) {
                bit = SEEN_TYPE;
                rc = cbor_get_tstr(&d, &ts, &tn);
                if (rc == 0)
                    rc = copy_str(m->msg_type, sizeof(m->msg_type), ts, tn);
                if (rc < 0)
                    return bad(err, key_off, H_TYPE " must be a text string of at most 63 bytes");
            } else if (label_is(k, kn, H_CREATED_AT)) {
                bit = SEEN_CREATED;
                if (cbor_get_uint(&d, &m->created_at) < 0)
                    return bad(err, key_off, H_CREATED_AT " must be an unsigned integer");
                m->has_created_at = true;
            } else if (label_is(k, kn, H_PROPOSAL_ID)) {
                bit = SEEN_PROP;
                rc = cbor_get_tstr(&d, &ts, &tn);
                if (rc == 0)
                    rc = copy_str(m->proposal_id, sizeof(m->proposal_id), ts, tn);
                if (rc < 0)
                    return bad(err, key_off, H_PROPOSAL_ID " must be a text string of at most 127 bytes");
            } else if (label_is(k, kn, H_REQUEST)) {
                bit = SEEN_REQ;
                rc = cbor_get_tstr(&d, &ts, &tn);
                if (rc == 0)
                    rc = copy_str(m->request, sizeof(m->request), ts, tn);
                if (rc < 0)
                    return bad(err, key_off, H_REQUEST " must be a text string of at most 2047 bytes");
            } else if (label_is(k, kn, H_EVIDENCE)) {
                bit = SEEN_EV;
                if (cbor_get_bstr(&d, &m->evidence, &m->evidence_len) < 0)
                    return bad(err, key_off, H_EVIDENCE " must be a byte string");
            } else if (label_is(k, kn, H_PUBKEY)) {
                bit = SEEN_PK;
                if (cbor_get_bstr(&d, &m->pubkey, &m->pubkey_len) < 0)
                    return bad(err, key_off, H_PUBKEY " must be a byte string");
            } else if (cbor_skip(&d) < 0) {
                return bad(err, key_off, "bad value of an unknown header");
            }
        } else {
            return bad(err, key_off, "header labels must be integers or text strings");
        }
        if (bit & seen)
            return bad(err, key_off, "duplicate header");
        seen |= bit;
    }
    if (!cbor_dec_done(&d))
        return bad(err, prot_off + d.off, "bytes after the protected header map");
    if (!(seen & SEEN_ALG))
        return bad(err, prot_off, "no alg in the protected header");
    return 0;
}

int ccr_cose_parse(const uint8_t *buf, size_t len, struct ccr_cose_msg *out, struct ccr_err *err)
{
    if (!out || (!buf && len))
        return ccr_err_set(err, -EINVAL, NULL, -1, "no envelope given");
    struct ccr_cose_msg m;
    memset(&m, 0, sizeof(m));
    struct cbor_dec d;
    cbor_dec_init(&d, buf, len);
    if (len == 0)
        return bad(err, 0, "empty");
    if (!cbor_well_formed(buf, len))
        return bad(err, 0,
                   "not one well-formed CBOR item (truncated, trailing bytes, or unsupported encoding)");
    struct cbor_item it;
    if (cbor_peek(&d, &it) == 0 && it.type == CBOR_TAG) {
        (void)cbor_next(&d, &it);
        if (it.val != COSE_TAG_SIGN1)
            return bad(err, 0, "tagged with something other than COSE_Sign1 (18)");
    }
    uint64_t n;
    if (cbor_get_array(&d, &n) < 0 || n != 4)
        return bad(err, d.off, "not an array of 4 (protected, unprotected, payload, signature)");
    size_t prot_off = d.off;
    if (cbor_get_bstr(&d, &m.protected_bytes, &m.protected_len) < 0)
        return bad(err, prot_off, "protected header is not a byte string");
    size_t unprot_off = d.off;
    uint64_t pairs;
    if (cbor_get_map(&d, &pairs) < 0)
        return bad(err, unprot_off, "unprotected header is not a map");
    for (uint64_t i = 0; i < 2 * pairs; i++)
        if (cbor_skip(&d) < 0)
            return bad(err, d.off, "bad unprotected header");
    size_t pay_off = d.off;
    if (cbor_get_bstr(&d, &m.payload, &m.payload_len) < 0)
        return bad(err, pay_off, "payload is not a byte string (detached payloads are not supported)");
    size_t sig_off = d.off;
    if (cbor_get_bstr(&d, &m.signature, &m.signature_len) < 0 || m.signature_len != ES384_SIG_LEN)
        return bad(err, sig_off, "signature is not a 96-byte byte string (ES384 r || s)");
    if (!cbor_dec_done(&d))
        return bad(err, d.off, "trailing bytes");
    /* The protected bstr's contents start after its head. */
    size_t prot_body = (size_t)(m.protected_bytes - buf);
    int rc = parse_protected(m.protected_bytes, m.protected_len, prot_body, &m, err);
    if (rc < 0)
        return rc;
    *out = m;
    return 0;
}

/* ---- verification ------------------------------------------------------------------------------------ */

static int verify_with(EVP_PKEY *pkey, const struct ccr_cose_msg *msg, struct ccr_err *err)
{
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    int rc = sig_structure(msg->protected_bytes, msg->protected_len, msg->payload, msg->payload_len, &tbs,
                           &tbs_len);
    if (rc < 0)
        return ccr_err_set(err, rc, "COSE_Sign1", -1, "out of memory");
    rc = es384_verify(pkey, tbs, tbs_len, msg->signature, msg->signature_len);
    ccr_free(tbs);
    if (rc == -EBADMSG)
        return ccr_err_set(err, rc, "COSE_Sign1", -1, "signature does not verify");
    if (rc < 0)
        return ccr_err_set(err, rc, "COSE_Sign1", -1, "cannot verify the signature (OpenSSL)");
    return 0;
}

int ccr_cose_verify(const struct ccr_cose_msg *msg, const struct ccr_gov_ident *signer, struct ccr_err *err)
{
    if (!msg || !signer || !msg->protected_bytes || !msg->signature)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no envelope or signer given");
    return verify_with(signer->pkey, msg, err);
}

int ccr_cose_verify_spki(const struct ccr_cose_msg *msg, struct ccr_err *err)
{
    if (!msg || !msg->protected_bytes || !msg->signature)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no envelope given");
    if (!msg->pubkey)
        return ccr_err_set(err, -EBADMSG, "COSE_Sign1", -1, "no ccr.pubkey header to verify with");
    EVP_PKEY *pkey = gov_p384_from_spki(msg->pubkey, msg->pubkey_len);
    if (!pkey)
        return ccr_err_set(err, -EBADMSG, "COSE_Sign1", -1,
                           "ccr.pubkey is not a P-384 SubjectPublicKeyInfo (DER)");
    int rc = verify_with(pkey, msg, err);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- replay identity ---------------------------------------------------------------------------------- */

/* The order n of P-384, big-endian. */
static const uint8_t p384_order[ES384_HALF] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
};

void gov_cose_replay_id(const struct ccr_cose_msg *msg, uint8_t out[32])
{
    /* (r, s) and (r, n - s) are both valid ECDSA signatures of the same message: hash r with the
     * smaller of s and n - s, so that a signature rewritten into its twin is still the same envelope. */
    uint8_t sig[ES384_SIG_LEN] = {0};
    if (msg->signature && msg->signature_len == ES384_SIG_LEN) {
        memcpy(sig, msg->signature, ES384_SIG_LEN);
        const uint8_t *s = sig + ES384_HALF;
        uint8_t neg[ES384_HALF];
        int borrow = 0;
        for (int i = ES384_HALF - 1; i >= 0; i--) {
            int d = (int)p384_order[i] - (int)s[i] - borrow;
            borrow = d < 0;
            neg[i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        /* s < n for any signature that verified; then n - s is in (0, n) */
        if (!borrow && memcmp(neg, s, ES384_HALF) < 0)
            memcpy(sig + ES384_HALF, neg, ES384_HALF);
    }
    ccr_gov_sha256(sig, sizeof(sig), out);
}
