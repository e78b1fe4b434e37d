/*
 * test_evidence.c - attestation evidence (governance/evidence.c): virtual evidence round trip through the
 * virtual verifier, the report_data binding check, the type reader, and malformed evidence rejected.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ccr/gov_crypto.h"

static int verify(const char *json, struct ccr_gov_claims *c)
{
    struct ccr_err err;
    ccr_err_clear(&err);
    memset(c, 0xee, sizeof(*c));
    int rc = ccr_gov_verifier_virtual.verify(ccr_gov_verifier_virtual.cb_arg, (const uint8_t *)json,
                                             strlen(json), c, &err);
    if (rc < 0)
        cr_assert(err.code == rc && err.msg[0], "an error message for %s", json);
    return rc;
}

Test(governance_evidence, virtual_round_trip_and_binding)
{
    struct ccr_gov_ephkey *k = NULL, *other = NULL;
    cr_assert_eq(ccr_gov_ephkey_generate(&k), 0);
    cr_assert_eq(ccr_gov_ephkey_generate(&other), 0);
    uint8_t m[CCR_GOV_MEASUREMENT_LEN];
    for (int i = 0; i < CCR_GOV_MEASUREMENT_LEN; i++)
        m[i] = (uint8_t)(0xa0 + i);
    uint8_t *ev = NULL;
    size_t ev_len = 0;
    cr_assert_eq(ccr_gov_evidence_virtual(m, k, &ev, &ev_len), 0);

    /* The exact text: the documented shape, compact, in this order. */
    size_t spki_len;
    const uint8_t *spki = ccr_gov_ephkey_spki(k, &spki_len);
    unsigned char h[32];
    unsigned hl;
    cr_assert_eq(EVP_Digest(spki, spki_len, h, &hl, EVP_sha256(), NULL), 1);
    char want[512];
    int n = snprintf(want, sizeof(want), "{\"type\":\"virtual\",\"measurement\":\"");
    for (int i = 0; i < 32; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", m[i]);
    n += snprintf(want + n, sizeof(want) - (size_t)n, "\",\"report_data\":\"");
    for (int i = 0; i < 32; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", h[i]);
    for (int i = 0; i < 32; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "00");
    n += snprintf(want + n, sizeof(want) - (size_t)n, "\"}");
    cr_assert_eq(ev_len, (size_t)n);
    cr_assert_eq(memcmp(ev, want, ev_len), 0, "evidence text differs: %.*s", (int)ev_len, ev);

    char type[32];
    cr_assert_eq(ccr_gov_evidence_type(ev, ev_len, type, sizeof(type)), 0);
    cr_assert_str_eq(type, "virtual");
    cr_assert_eq(ccr_gov_evidence_type(ev, ev_len, type, 7), -EBADMSG, "does not fit");

    struct ccr_gov_claims c;
    memset(&c, 0, sizeof(c));
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_str_eq(ccr_gov_verifier_virtual.type, "virtual");
    cr_assert_eq(ccr_gov_verifier_virtual.verify(ccr_gov_verifier_virtual.cb_arg, ev, ev_len, &c, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(c.type, "virtual");
    cr_assert(c.insecure);
    cr_assert_eq(memcmp(c.measurement, m, sizeof(m)), 0);
    cr_assert_eq(memcmp(c.report_data, h, 32), 0);

    cr_assert(ccr_gov_report_data_binds(c.report_data, spki, spki_len));
    size_t ol;
    const uint8_t *ospki = ccr_gov_ephkey_spki(other, &ol);
    cr_assert(!ccr_gov_report_data_binds(c.report_data, ospki, ol));
    uint8_t rd[CCR_GOV_REPORT_DATA_LEN];
    memcpy(rd, c.report_data, sizeof(rd));
    rd[63] = 1; /* the tail must be zero */
    cr_assert(!ccr_gov_report_data_binds(rd, spki, spki_len));
    memcpy(rd, c.report_data, sizeof(rd));
    rd[0] ^= 1;
    cr_assert(!ccr_gov_report_data_binds(rd, spki, spki_len));
    cr_assert(!ccr_gov_report_data_binds(c.report_data, spki, spki_len - 1));

    free(ev);
    ccr_gov_ephkey_destroy(k);
    ccr_gov_ephkey_destroy(other);
}

#define M64  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define R128 M64 M64

Test(governance_evidence, virtual_accepts_either_hex_case)
{
    struct ccr_gov_claims c;
    cr_assert_eq(
        verify("{\"report_data\":\"" R128 "\",\"type\":\"virtual\",\"measurement\":\"" M64 "\"}", &c), 0);
    cr_assert_eq(c.measurement[31], 0x1f);
    cr_assert_eq(
        verify("{\"type\":\"virtual\",\"measurement\":\"000102030405060708090A0B0C0D0E0F101112131415161718"
               "191A1B1C1D1E1F\",\"report_data\":\"" R128 "\"}",
               &c),
        0);
    cr_assert_eq(c.measurement[10], 0x0a);
}

Test(governance_evidence, malformed_rejected)
{
    struct ccr_gov_claims c;
    const char *bad[] = {
        "",
        "null",
        "[]",
        "\"virtual\"",
        "{\"type\":\"virtual\"",
        "{}",
        "{\"type\":1,\"measurement\":\"" M64 "\",\"report_data\":\"" R128 "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"" M64 "\"}",
        "{\"type\":\"virtual\",\"report_data\":\"" R128 "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"" M64 "0\",\"report_data\":\"" R128 "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"" M64 "\",\"report_data\":\"" M64 "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"zz" M64 "\",\"report_data\":\"" R128 "\"}",
        "{\"type\":\"virtual\",\"measurement\":1,\"report_data\":\"" R128 "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"" M64 "\",\"report_data\":\"" R128 "\",\"x\":1}",
        "{\"type\":\"virtual\",\"type\":\"virtual\",\"measurement\":\"" M64 "\",\"report_data\":\"" R128
        "\"}",
        "{\"type\":\"virtual\",\"measurement\":\"" M64 "\",\"report_data\":\"" R128 "\"} x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(verify(bad[i], &c), -EBADMSG, "accepted: %s", bad[i]);

    /* Another type is not this verifier's. */
    cr_assert_eq(verify("{\"type\":\"sevsnp\",\"report\":\"...\"}", &c), -ENOTSUP);
    cr_assert_eq(
        verify("{\"type\":\"virtual2\",\"measurement\":\"" M64 "\",\"report_data\":\"" R128 "\"}", &c),
        -ENOTSUP);

    char type[32];
    cr_assert_eq(ccr_gov_evidence_type((const uint8_t *)"{\"type\":\"sevsnp\"}", 17, type, sizeof(type)), 0);
    cr_assert_str_eq(type, "sevsnp");
    cr_assert_eq(ccr_gov_evidence_type((const uint8_t *)"{\"type\":7}", 10, type, sizeof(type)), -EBADMSG);
    cr_assert_eq(ccr_gov_evidence_type((const uint8_t *)"{}", 2, type, sizeof(type)), -EBADMSG);
    cr_assert_eq(ccr_gov_evidence_type((const uint8_t *)"{\"type\":\"a\\u0000b\"}", 19, type, sizeof(type)),
                 -EBADMSG);
    cr_assert_eq(ccr_gov_evidence_type((const uint8_t *)"not json", 8, type, sizeof(type)), -EBADMSG);
    cr_assert_eq(ccr_gov_evidence_type(NULL, 0, type, sizeof(type)), -EBADMSG);
}
