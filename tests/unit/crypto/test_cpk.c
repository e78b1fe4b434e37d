/*
 * test_cpk.c - customer-provided key header values: the docs/format.md vector and a key_b64 round trip.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ccr/crypto.h"

Test(crypto_cpk, format_md_vector)
{
    static const char key_b64[] = "zGrju7FZlG/kcf+tQzI/j9Cp5N2eWru8Euf9WPtqygc=";
    struct ccr_key key;
    cr_assert_eq(ccr_base64_decode(key_b64, strlen(key_b64), key.b, sizeof(key.b)), 32);
    struct ccr_cpk_headers h;
    memset(&h, 0x55, sizeof(h));
    cr_assert_eq(ccr_cpk_headers(&key, &h), 0);
    cr_assert_str_eq(h.key_b64, key_b64);
    cr_assert_str_eq(h.key_sha256_b64, "bytDCDMOziy3dNr0eAfLODgHN2NB+h6k/1itMoRoA78=");
    cr_assert_str_eq(CCR_CPK_ALGORITHM, "AES256");
}

Test(crypto_cpk, key_b64_round_trip)
{
    for (int i = 0; i < 8; i++) {
        struct ccr_key key, back;
        cr_assert_eq(ccr_key_generate(&key), 0);
        struct ccr_cpk_headers h;
        cr_assert_eq(ccr_cpk_headers(&key, &h), 0);
        cr_assert_eq(strlen(h.key_b64), 44);
        cr_assert_eq(strlen(h.key_sha256_b64), 44);
        cr_assert_eq(ccr_base64_decode(h.key_b64, strlen(h.key_b64), back.b, sizeof(back.b)), 32);
        cr_assert_eq(memcmp(key.b, back.b, 32), 0);
        cr_assert_str_neq(h.key_b64, h.key_sha256_b64);
    }
}

Test(crypto_cpk, invalid_arguments)
{
    struct ccr_key key = {{0}};
    struct ccr_cpk_headers h;
    cr_assert_eq(ccr_cpk_headers(NULL, &h), -EINVAL);
    cr_assert_eq(ccr_cpk_headers(&key, NULL), -EINVAL);
}
