/*
 * test_cose.c - COSE_Sign1 ES384 envelopes (governance/cose.c): sign, parse and verify for members and
 * ephemeral clean room keys; the protected header bytes built by hand; an independent verification that
 * rebuilds the Sig_structure here and checks it with EVP_DigestVerify; every flipped byte fails; the
 * wrong signer fails; malformed envelopes are refused with -EBADMSG.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccr/gov_crypto.h"

static char dir[64];
static struct ccr_gov_ident *alice, *bob;

static struct ccr_gov_ident *make_ident(const char *name)
{
    char id[65], cp[128], kp[128];
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_ident_keygen(dir, name, id, &err), 0, "%s", err.msg);
    snprintf(cp, sizeof(cp), "%s/%s_cert.pem", dir, name);
    snprintf(kp, sizeof(kp), "%s/%s_privk.pem", dir, name);
    struct ccr_gov_ident *ident = NULL;
    cr_assert_eq(ccr_gov_ident_load(cp, kp, &ident, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ccr_gov_ident_id(ident), id);
    return ident;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ccr-test-cose-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    alice = make_ident("alice");
    bob = make_ident("bob");
}

static void teardown(void)
{
    ccr_gov_ident_destroy(alice);
    ccr_gov_ident_destroy(bob);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(governance_cose, .init = setup, .fini = teardown);

/* ---- a tiny hand encoder, independent of governance/cbor.c -------------------------------------------- */

struct hb {
    uint8_t b[8192];
    size_t n;
};

static void hb_head(struct hb *h, unsigned mt, size_t v)
{
    if (v < 24) {
        h->b[h->n++] = (uint8_t)(mt << 5 | v);
    } else if (v < 256) {
        h->b[h->n++] = (uint8_t)(mt << 5 | 24);
        h->b[h->n++] = (uint8_t)v;
    } else {
        cr_assert_lt(v, 65536);
        h->b[h->n++] = (uint8_t)(mt << 5 | 25);
        h->b[h->n++] = (uint8_t)(v >> 8);
        h->b[h->n++] = (uint8_t)v;
    }
}

static void hb_raw(struct hb *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void hb_text(struct hb *h, const char *s)
{
    hb_head(h, 3, strlen(s));
    hb_raw(h, s, strlen(s));
}

static void hb_bytes(struct hb *h, const void *p, size_t n)
{
    hb_head(h, 2, n);
    hb_raw(h, p, n);
}

/* ---- helpers ------------------------------------------------------------------------------------------ */

static const char *PAYLOAD = "{\"vote\":\"accept\"}";

static struct ccr_cose_hdr ballot_hdr(const struct ccr_gov_ident *who)
{
    struct ccr_cose_hdr h = {
        .kid = ccr_gov_ident_id(who),
        .msg_type = "ballot",
        .created_at = 1700000000,
        .proposal_id = "p-1",
        .request = "POST /proposals/p-1/ballots",
    };
    return h;
}

static void sign_ballot(const struct ccr_gov_ident *who, uint8_t **env, size_t *len)
{
    struct ccr_cose_hdr h = ballot_hdr(who);
    cr_assert_eq(ccr_cose_sign1(who, &h, (const uint8_t *)PAYLOAD, strlen(PAYLOAD), env, len), 0);
}

/* Verifies r||s over data with pkey the long way: DER ECDSA-Sig-Value and EVP_DigestVerify(SHA-384). */
static int independent_verify(EVP_PKEY *pkey, const uint8_t *data, size_t n, const uint8_t *sig)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 48, NULL), *s = BN_bin2bn(sig + 48, 48, NULL);
    cr_assert(es && r && s);
    cr_assert_eq(ECDSA_SIG_set0(es, r, s), 1);
    unsigned char *der = NULL;
    int dlen = i2d_ECDSA_SIG(es, &der);
    cr_assert_gt(dlen, 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, pkey), 1);
    int ok = EVP_DigestVerify(md, der, (size_t)dlen, data, n);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

/* ---- tests -------------------------------------------------------------------------------------------- */

Test(governance_cose, member_round_trip)
{
    uint8_t *env = NULL;
    size_t len = 0;
    sign_ballot(alice, &env, &len);
    cr_assert_eq(env[0], 0xd2, "tag 18");
    cr_assert_eq(env[1], 0x84, "array of 4");

    struct ccr_cose_msg m;
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_cose_parse(env, len, &m, &err), 0, "%s", err.msg);
    cr_assert_str_eq(m.kid, ccr_gov_ident_id(alice));
    cr_assert_str_eq(m.msg_type, "ballot");
    cr_assert(m.has_created_at);
    cr_assert_eq(m.created_at, 1700000000);
    cr_assert_str_eq(m.proposal_id, "p-1");
    cr_assert_str_eq(m.request, "POST /proposals/p-1/ballots");
    cr_assert_null(m.evidence);
    cr_assert_null(m.pubkey);
    cr_assert_eq(m.payload_len, strlen(PAYLOAD));
    cr_assert_eq(memcmp(m.payload, PAYLOAD, m.payload_len), 0);
    cr_assert(m.payload >= env && m.payload + m.payload_len <= env + len, "payload points into the buffer");
    cr_assert_eq(m.signature_len, 96);
    cr_assert_eq(ccr_cose_verify(&m, alice, &err), 0, "%s", err.msg);

    /* Wrong signer. */
    ccr_err_clear(&err);
    cr_assert_eq(ccr_cose_verify(&m, bob, &err), -EBADMSG);
    cr_assert_eq(err.code, -EBADMSG);

    /* A certificate-only identity verifies too. */
    struct ccr_gov_ident *pub = NULL;
    const char *pem = ccr_gov_ident_cert_pem(alice);
    cr_assert_eq(ccr_gov_ident_from_cert_pem(pem, strlen(pem), &pub, NULL), 0);
    cr_assert_eq(ccr_cose_verify(&m, pub, NULL), 0);
    /* ... and cannot sign */
    uint8_t *env2 = NULL;
    size_t len2;
    struct ccr_cose_hdr h = ballot_hdr(alice);
    cr_assert_eq(ccr_cose_sign1(pub, &h, NULL, 0, &env2, &len2), -EINVAL);
    ccr_gov_ident_destroy(pub);
    free(env);
}

Test(governance_cose, protected_header_bytes_and_independent_check)
{
    uint8_t *env = NULL;
    size_t len = 0;
    sign_ballot(alice, &env, &len);
    struct ccr_cose_msg m;
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);

    /* The protected map, by hand, in the fixed order. */
    struct hb p = {.n = 0};
    hb_head(&p, 5, 6);
    hb_head(&p, 0, 1);
    hb_head(&p, 1, 34); /* -35 */
    hb_head(&p, 0, 4);
    hb_bytes(&p, ccr_gov_ident_id(alice), 64);
    hb_text(&p, "ccf.gov.msg.type");
    hb_text(&p, "ballot");
    hb_text(&p, "ccf.gov.msg.created_at");
    hb_raw(&p, "\x1a\x65\x53\xf1\x00", 5); /* 1700000000 */
    hb_text(&p, "ccf.gov.msg.proposal_id");
    hb_text(&p, "p-1");
    hb_text(&p, "ccr.request");
    hb_text(&p, "POST /proposals/p-1/ballots");
    cr_assert_eq(m.protected_len, p.n);
    cr_assert_eq(memcmp(m.protected_bytes, p.b, p.n), 0, "protected header bytes differ");

    /* The whole envelope, by hand, up to the signature. */
    struct hb e = {.n = 0};
    hb_raw(&e, "\xd2\x84", 2);
    hb_bytes(&e, p.b, p.n);
    hb_raw(&e, "\xa0", 1);
    hb_bytes(&e, PAYLOAD, strlen(PAYLOAD));
    hb_raw(&e, "\x58\x60", 2);
    cr_assert_eq(len, e.n + 96);
    cr_assert_eq(memcmp(env, e.b, e.n), 0);
    cr_assert_eq(m.signature, env + e.n);

    /* Sig_structure = ["Signature1", protected, h'', payload], verified with EVP directly. */
    struct hb s = {.n = 0};
    hb_head(&s, 4, 4);
    hb_text(&s, "Signature1");
    hb_bytes(&s, p.b, p.n);
    hb_bytes(&s, "", 0);
    hb_bytes(&s, PAYLOAD, strlen(PAYLOAD));

    FILE *f = fmemopen((void *)ccr_gov_ident_cert_pem(alice), strlen(ccr_gov_ident_cert_pem(alice)), "r");
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    cr_assert_eq(independent_verify(pk, s.b, s.n, m.signature), 1);
    /* and not over something else */
    s.b[s.n - 1] ^= 1;
    cr_assert_neq(independent_verify(pk, s.b, s.n, m.signature), 1);
    X509_free(x);
    free(env);
}

Test(governance_cose, every_flipped_byte_fails)
{
    uint8_t *env = NULL;
    size_t len = 0;
    sign_ballot(alice, &env, &len);
    uint8_t *t = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(t, env, len);
            t[i] ^= (uint8_t)(1u << bit);
            struct ccr_cose_msg m;
            int rc = ccr_cose_parse(t, len, &m, NULL);
            if (rc == 0)
                rc = ccr_cose_verify(&m, alice, NULL);
            cr_assert_eq(rc, -EBADMSG, "flipping bit %d of byte %zu of %zu was not detected", bit, i, len);
        }
    }
    free(t);
    free(env);
}

Test(governance_cose, empty_payload_and_minimal_header)
{
    struct ccr_cose_hdr h = {.kid = ccr_gov_ident_id(bob), .msg_type = "request", .request = "GET /members"};
    uint8_t *env = NULL;
    size_t len = 0;
    cr_assert_eq(ccr_cose_sign1(bob, &h, NULL, 0, &env, &len), 0);
    struct ccr_cose_msg m;
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);
    cr_assert_eq(m.payload_len, 0);
    cr_assert(!m.has_created_at);
    cr_assert_str_eq(m.proposal_id, "");
    cr_assert_eq(ccr_cose_verify(&m, bob, NULL), 0);
    cr_assert_eq(ccr_cose_verify(&m, alice, NULL), -EBADMSG);

    /* Untagged is accepted too. */
    cr_assert_eq(ccr_cose_parse(env + 1, len - 1, &m, NULL), 0);
    cr_assert_eq(ccr_cose_verify(&m, bob, NULL), 0);
    free(env);

    /* Two signatures of the same thing differ (ECDSA is randomized), both verify. */
    uint8_t *a = NULL, *b = NULL;
    size_t la, lb;
    cr_assert_eq(ccr_cose_sign1(bob, &h, (const uint8_t *)"x", 1, &a, &la), 0);
    cr_assert_eq(ccr_cose_sign1(bob, &h, (const uint8_t *)"x", 1, &b, &lb), 0);
    cr_assert_eq(la, lb);
    cr_assert_neq(memcmp(a + la - 96, b + lb - 96, 96), 0);
    cr_assert_eq(memcmp(a, b, la - 96), 0, "everything but the signature is deterministic");
    free(a);
    free(b);
}

Test(governance_cose, ephemeral_key_round_trip)
{
    struct ccr_gov_ephkey *k = NULL, *other = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    cr_assert_eq(ccr_gov_ephkey_generate(&other), 0);
    size_t spki_len = 0, other_len = 0;
    const uint8_t *spki = ccr_gov_ephkey_spki(k, &spki_len);
    const uint8_t *ospki = ccr_gov_ephkey_spki(other, &other_len);
    cr_assert_gt(spki_len, 100);
    const uint8_t evidence[] = "{\"type\":\"virtual\"}";
    struct ccr_cose_hdr h = {.msg_type = "cleanroom",
                             .created_at = 1800000000,
                             .request = "POST /cleanroom/keys/release",
                             .evidence = evidence,
                             .evidence_len = sizeof(evidence) - 1,
                             .pubkey = spki,
                             .pubkey_len = spki_len};
    const char *body = "{\"contract_id\":\"c1\",\"secret\":\"kek\"}";
    uint8_t *env = NULL;
    size_t len = 0;
    cr_assert_eq(ccr_cose_sign1_eph(k, &h, (const uint8_t *)body, strlen(body), &env, &len), 0);
    struct ccr_cose_msg m;
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_cose_parse(env, len, &m, &err), 0, "%s", err.msg);
    cr_assert_str_eq(m.kid, "");
    cr_assert_eq(m.pubkey_len, spki_len);
    cr_assert_eq(memcmp(m.pubkey, spki, spki_len), 0);
    cr_assert_eq(m.evidence_len, sizeof(evidence) - 1);
    cr_assert_eq(memcmp(m.evidence, evidence, m.evidence_len), 0);
    cr_assert_eq(ccr_cose_verify_spki(&m, &err), 0, "%s", err.msg);
    /* A member's key does not verify it. */
    cr_assert_eq(ccr_cose_verify(&m, alice, NULL), -EBADMSG);
    free(env);

    /* Signed by k while claiming other's key: fails. */
    h.pubkey = ospki;
    h.pubkey_len = other_len;
    cr_assert_eq(ccr_cose_sign1_eph(k, &h, NULL, 0, &env, &len), 0);
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);
    cr_assert_eq(ccr_cose_verify_spki(&m, NULL), -EBADMSG);
    free(env);

    /* A pubkey that is not a P-384 SPKI, or none at all. */
    h.pubkey = evidence;
    h.pubkey_len = sizeof(evidence) - 1;
    cr_assert_eq(ccr_cose_sign1_eph(k, &h, NULL, 0, &env, &len), 0);
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);
    cr_assert_eq(ccr_cose_verify_spki(&m, NULL), -EBADMSG);
    free(env);
    h.pubkey = NULL;
    h.pubkey_len = 0;
    cr_assert_eq(ccr_cose_sign1_eph(k, &h, NULL, 0, &env, &len), 0);
    cr_assert_eq(ccr_cose_parse(env, len, &m, NULL), 0);
    cr_assert_eq(ccr_cose_verify_spki(&m, NULL), -EBADMSG);
    free(env);

    ccr_gov_ephkey_destroy(k);
    ccr_gov_ephkey_destroy(other);
}

/* Builds an envelope by hand around a given protected map and signature length; parse must say rc. */
static int parse_built(const struct hb *prot, const char *unprot_hex_byte, size_t sig_len, bool trailing)
{
    struct hb e = {.n = 0};
    hb_raw(&e, "\xd2\x84", 2);
    hb_bytes(&e, prot->b, prot->n);
    hb_raw(&e, unprot_hex_byte, 1);
    hb_bytes(&e, "", 0);
    uint8_t sig[100] = {0};
    hb_bytes(&e, sig, sig_len);
    if (trailing)
        hb_raw(&e, "\x00", 1);
    uint8_t *exact = malloc(e.n);
    memcpy(exact, e.b, e.n);
    struct ccr_cose_msg m;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_cose_parse(exact, e.n, &m, &err);
    if (rc < 0)
        cr_assert(err.code == rc && err.msg[0], "an error message");
    free(exact);
    return rc;
}

Test(governance_cose, malformed_envelopes)
{
    struct hb p = {.n = 0};
    /* {1: -35} parses */
    hb_raw(&p, "\xa1\x01\x38\x22", 4);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), 0);
    cr_assert_eq(parse_built(&p, "\xa0", 95, false), -EBADMSG, "short signature");
    cr_assert_eq(parse_built(&p, "\xa0", 97, false), -EBADMSG, "long signature");
    cr_assert_eq(parse_built(&p, "\xa0", 96, true), -EBADMSG, "trailing bytes");
    cr_assert_eq(parse_built(&p, "\x80", 96, false), -EBADMSG, "unprotected not a map");

    /* alg ES256 (-7) */
    p.n = 0;
    hb_raw(&p, "\xa1\x01\x26", 3);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* no alg */
    p.n = 0;
    hb_raw(&p, "\xa1\x03\x00", 3);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* empty protected */
    p.n = 0;
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* duplicate alg */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22\x01\x38\x22", 7);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* crit */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22\x02\x81\x01", 7);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* unknown headers are ignored: label 3 and a text label */
    p.n = 0;
    hb_raw(&p, "\xa3\x01\x38\x22\x03\x61x", 7);
    hb_text(&p, "other");
    hb_raw(&p, "\x82\xf5\xf6", 3);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), 0);
    /* a bstr label */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22\x41x\x00", 7);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* kid of 65 bytes; kid as text */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22\x04", 5);
    uint8_t kid[65];
    memset(kid, 'a', sizeof(kid));
    hb_bytes(&p, kid, 65);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22\x04\x61\x61", 7);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* a NUL inside a string */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22", 4);
    hb_text(&p, "ccf.gov.msg.type");
    hb_raw(&p, "\x63\x61\x00\x62", 4);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* created_at negative, msg type as bytes, type over 63 bytes */
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22", 4);
    hb_text(&p, "ccf.gov.msg.created_at");
    hb_raw(&p, "\x20", 1);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22", 4);
    hb_text(&p, "ccf.gov.msg.type");
    hb_bytes(&p, "ballot", 6);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    p.n = 0;
    hb_raw(&p, "\xa2\x01\x38\x22", 4);
    hb_text(&p, "ccf.gov.msg.type");
    hb_text(&p, "0123456789012345678901234567890123456789012345678901234567890123");
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* trailing bytes inside the protected bstr */
    p.n = 0;
    hb_raw(&p, "\xa1\x01\x38\x22\x00", 5);
    cr_assert_eq(parse_built(&p, "\xa0", 96, false), -EBADMSG);
    /* protected is a map but not in a bstr */
    static const uint8_t raw_map[] = {0x84, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40};
    struct ccr_cose_msg m;
    cr_assert_eq(ccr_cose_parse(raw_map, sizeof(raw_map), &m, NULL), -EBADMSG);
    /* other tag, array of 3, not an array, empty, NULL */
    static const uint8_t tag98[] = {0xd8, 0x62, 0x80};
    cr_assert_eq(ccr_cose_parse(tag98, sizeof(tag98), &m, NULL), -EBADMSG);
    static const uint8_t arr3[] = {0x83, 0x40, 0xa0, 0x40};
    cr_assert_eq(ccr_cose_parse(arr3, sizeof(arr3), &m, NULL), -EBADMSG);
    cr_assert_eq(ccr_cose_parse((const uint8_t *)"\x01", 1, &m, NULL), -EBADMSG);
    cr_assert_eq(ccr_cose_parse((const uint8_t *)"", 0, &m, NULL), -EBADMSG);
    cr_assert_eq(ccr_cose_parse(NULL, 0, &m, NULL), -EBADMSG);
}

Test(governance_cose, every_truncation_fails)
{
    uint8_t *env = NULL;
    size_t len = 0;
    sign_ballot(alice, &env, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, env, cut);
        struct ccr_cose_msg m;
        cr_assert_eq(ccr_cose_parse(t, cut, &m, NULL), -EBADMSG, "truncated to %zu parsed", cut);
        free(t);
    }
    free(env);
}
