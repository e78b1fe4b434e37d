#include <criterion/criterion.h>
#include <string.h>

#include "ccr/crypto.h"

Test(crypto_aead, smoke_round_trip)
{
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);
    uint8_t key[32] = {1}, iv[12] = {2}, tag[16], buf[100], orig[100];
    for (int i = 0; i < 100; i++)
        orig[i] = buf[i] = (uint8_t)i;
    cr_assert_eq(ccr_aead_seal(a, key, iv, "aad", 3, buf, buf, sizeof(buf), tag), 0);
    cr_assert_neq(memcmp(buf, orig, sizeof(buf)), 0);
    cr_assert_eq(ccr_aead_open(a, key, iv, "aad", 3, buf, buf, sizeof(buf), tag), 0);
    cr_assert_eq(memcmp(buf, orig, sizeof(buf)), 0);
    ccr_aead_destroy(a);
}
