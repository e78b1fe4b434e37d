/*
 * test_hkdf.c - HKDF-SHA256 against RFC 5869 test cases 1-3 (exact OKM) and its argument checks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ccr/crypto.h"

static size_t hkdf_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void hkdf_check(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                       const uint8_t *info, size_t info_len, const char *okm_hex)
{
    uint8_t want[128], got[128];
    size_t n = hkdf_unhex(okm_hex, want, sizeof(want));
    memset(got, 0xee, sizeof(got));
    cr_assert_eq(ccr_hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len, got, n), 0);
    cr_assert_eq(memcmp(got, want, n), 0, "OKM differs");
    cr_assert_eq(got[n], 0xee, "wrote past out_len");
    /* A prefix of the output is the output of a shorter request. */
    memset(got, 0, sizeof(got));
    cr_assert_eq(ccr_hkdf_sha256(ikm, ikm_len, salt, salt_len, info, info_len, got, 7), 0);
    cr_assert_eq(memcmp(got, want, 7), 0);
}

Test(crypto_hkdf, rfc5869_case1)
{
    uint8_t ikm[22], salt[13], info[10];
    memset(ikm, 0x0b, sizeof(ikm));
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    hkdf_check(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info),
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

Test(crypto_hkdf, rfc5869_case2)
{
    uint8_t ikm[80], salt[80], info[80];
    for (int i = 0; i < 80; i++) {
        ikm[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
        info[i] = (uint8_t)(0xb0 + i);
    }
    hkdf_check(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info),
               "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
               "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
               "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

Test(crypto_hkdf, rfc5869_case3_empty_salt_and_info)
{
    uint8_t ikm[22];
    memset(ikm, 0x0b, sizeof(ikm));
    static const char okm[] =
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    hkdf_check(ikm, sizeof(ikm), NULL, 0, NULL, 0, okm);
    /* The RFC: an absent salt is HashLen zero bytes. */
    uint8_t zeros[32] = {0};
    hkdf_check(ikm, sizeof(ikm), zeros, sizeof(zeros), NULL, 0, okm);
}

Test(crypto_hkdf, max_length)
{
    uint8_t ikm[32] = {1};
    static uint8_t out[255 * 32 + 1];
    cr_assert_eq(ccr_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, "x", 1, out, 255 * 32), 0);
    cr_assert_eq(ccr_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, "x", 1, out, 255 * 32 + 1), -EINVAL);
}

Test(crypto_hkdf, invalid_arguments)
{
    uint8_t ikm[32] = {1}, out[32];
    cr_assert_eq(ccr_hkdf_sha256(NULL, 32, NULL, 0, NULL, 0, out, 32), -EINVAL);
    cr_assert_eq(ccr_hkdf_sha256(ikm, 32, NULL, 5, NULL, 0, out, 32), -EINVAL);
    cr_assert_eq(ccr_hkdf_sha256(ikm, 32, NULL, 0, NULL, 5, out, 32), -EINVAL);
    cr_assert_eq(ccr_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, NULL, 32), -EINVAL);
    cr_assert_eq(ccr_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 0), -EINVAL);
}
