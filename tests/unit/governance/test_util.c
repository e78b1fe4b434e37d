/* test_util.c - hex and base64url (RFC 4648 section 5, unpadded, strict) of the governance helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ccr/gov_crypto.h"

static void enc_is(const char *in, size_t n, const char *want)
{
    char *s = NULL;
    cr_assert_eq(ccr_gov_b64url_encode((const uint8_t *)in, n, &s), 0);
    cr_assert_str_eq(s, want);
    uint8_t *b = NULL;
    size_t len = 99;
    cr_assert_eq(ccr_gov_b64url_decode(s, strlen(s), &b, &len), 0, "decode %s", s);
    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(b, in, n), 0);
    ccr_free(s);
    ccr_free(b);
}

Test(governance_util, b64url_vectors)
{
    enc_is("", 0, "");
    enc_is("f", 1, "Zg");
    enc_is("fo", 2, "Zm8");
    enc_is("foo", 3, "Zm9v");
    enc_is("foob", 4, "Zm9vYg");
    enc_is("fooba", 5, "Zm9vYmE");
    enc_is("foobar", 6, "Zm9vYmFy");
    enc_is("\xfb\xff", 2, "-_8");
    enc_is("\xfb\xef\xbe", 3, "----");
}

Test(governance_util, b64url_round_trip_every_length)
{
    uint8_t in[300];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        char *s = NULL;
        cr_assert_eq(ccr_gov_b64url_encode(in, n, &s), 0);
        cr_assert_eq(strlen(s), n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0), "length %zu", n);
        cr_assert_null(strpbrk(s, "+/="), "url alphabet, no padding: %s", s);
        uint8_t *b = NULL;
        size_t len = 0;
        cr_assert_eq(ccr_gov_b64url_decode(s, strlen(s), &b, &len), 0);
        cr_assert_eq(len, n);
        cr_assert_eq(memcmp(b, in, n), 0, "length %zu", n);
        ccr_free(s);
        ccr_free(b);
    }
}

Test(governance_util, b64url_refuses_other_forms)
{
    static const char *bad[] = {"Zg==",   "Zm8=", "Z",    "Zh",    "Zm9", "Zm 9v",
                                "Zm9v\n", "Zm+v", "Zm/v", "Zm9v=", "*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *b = NULL;
        size_t len = 0;
        cr_assert_eq(ccr_gov_b64url_decode(bad[i], strlen(bad[i]), &b, &len), -EINVAL, "'%s' accepted",
                     bad[i]);
        cr_assert_null(b);
    }
}

Test(governance_util, hex)
{
    const uint8_t in[] = {0x00, 0x9f, 0xa0, 0xff};
    char s[9];
    ccr_gov_hex(in, sizeof(in), s);
    cr_assert_str_eq(s, "009fa0ff");
    uint8_t back[4];
    cr_assert_eq(ccr_gov_unhex("009FA0ff", back, 4), 0);
    cr_assert_eq(memcmp(back, in, 4), 0);
    cr_assert_eq(ccr_gov_unhex("009fa0f", back, 4), -EINVAL);
    cr_assert_eq(ccr_gov_unhex("009fa0ff00", back, 4), -EINVAL);
    cr_assert_eq(ccr_gov_unhex("009fa0fg", back, 4), -EINVAL);
}
