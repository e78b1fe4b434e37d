/*
 * test_base64.c - the strict base64 codec: RFC 4648 section 10 vectors both ways, whitespace, bad
 * characters, bad padding, non-canonical encodings, -ENOSPC, and a round trip over every byte value.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ccr/crypto.h"

static const struct {
    const char *plain;
    const char *enc;
} rfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

Test(crypto_base64, rfc4648_encode)
{
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        char out[16];
        memset(out, 'x', sizeof(out));
        size_t n = strlen(rfc4648[i].plain);
        int rc = ccr_base64_encode(rfc4648[i].plain, n, out, sizeof(out));
        cr_assert_eq(rc, (int)strlen(rfc4648[i].enc), "vector %zu: rc %d", i, rc);
        cr_assert_eq(rc, (int)CCR_BASE64_LEN(n));
        cr_assert_str_eq(out, rfc4648[i].enc, "vector %zu", i);
    }
}

Test(crypto_base64, rfc4648_decode)
{
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        uint8_t out[16];
        memset(out, 0xee, sizeof(out));
        int rc = ccr_base64_decode(rfc4648[i].enc, strlen(rfc4648[i].enc), out, sizeof(out));
        cr_assert_eq(rc, (int)strlen(rfc4648[i].plain), "vector %zu: rc %d", i, rc);
        cr_assert_eq(memcmp(out, rfc4648[i].plain, (size_t)rc), 0, "vector %zu", i);
        cr_assert_eq(out[rc], 0xee, "vector %zu: wrote past the decoded length", i);
    }
}

Test(crypto_base64, decode_null_empty)
{
    cr_assert_eq(ccr_base64_decode(NULL, 0, NULL, 0), 0);
    cr_assert_eq(ccr_base64_decode("", 0, NULL, 0), 0);
    cr_assert_eq(ccr_base64_decode(" \n\t", 3, NULL, 0), 0);
}

Test(crypto_base64, round_trip_all_bytes)
{
    uint8_t in[256], back[256];
    char enc[CCR_BASE64_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    for (size_t n = 0; n <= sizeof(in); n++) {
        int rc = ccr_base64_encode(in, n, enc, sizeof(enc));
        cr_assert_eq(rc, (int)CCR_BASE64_LEN(n));
        cr_assert_eq(strlen(enc), (size_t)rc);
        memset(back, 0, sizeof(back));
        cr_assert_eq(ccr_base64_decode(enc, (size_t)rc, back, sizeof(back)), (int)n, "n=%zu", n);
        cr_assert_eq(memcmp(in, back, n), 0, "n=%zu", n);
    }
    /* All 64 symbols appear and map back. */
    cr_assert_eq(ccr_base64_encode("\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97"
                                   "\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf"
                                   "\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf",
                                   48, enc, sizeof(enc)),
                 64);
    cr_assert_str_eq(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

Test(crypto_base64, whitespace_ignored)
{
    static const char *ok[] = {
        "Zm9v\nYmFy", " Zm9vYmFy ", "Zm9vYmFy\n", "\r\nZ m 9 v\tY m F y\r\n", "Z\vm\f9vYmFy",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint8_t out[8];
        cr_assert_eq(ccr_base64_decode(ok[i], strlen(ok[i]), out, sizeof(out)), 6, "input %zu", i);
        cr_assert_eq(memcmp(out, "foobar", 6), 0);
    }
    uint8_t out[8];
    cr_assert_eq(ccr_base64_decode("Zg=\n=\n", 6, out, sizeof(out)), 1);
    cr_assert_eq(out[0], 'f');
}

Test(crypto_base64, bad_characters)
{
    static const char *bad[] = {
        "Zm9v!mFy", "Zm9v-mFy", "Zm9v_mFy", "Zm9v.mFy", "Zm9\x80YmFy", "Zm9vYmF\xff", "Zm9vYmFy\x01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[8];
        memset(out, 0xee, sizeof(out));
        cr_assert_eq(ccr_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -EINVAL, "input %zu", i);
        for (size_t j = 0; j < sizeof(out); j++)
            cr_assert_eq(out[j], 0xee, "input %zu: output touched on failure", i);
    }
    /* An embedded NUL is a bad character too (len counts it). */
    uint8_t out[8];
    cr_assert_eq(ccr_base64_decode("Zm9v\0mFy", 8, out, sizeof(out)), -EINVAL);
}

Test(crypto_base64, bad_padding)
{
    static const char *bad[] = {
        "Zg",       /* padding missing */
        "Zg=",      /* incomplete padding */
        "Zm9",      /* padding missing */
        "Z",        /* one symbol */
        "Zm9vY",    /* stray symbol */
        "=",        /* padding alone */
        "====",     /* padding alone */
        "Z===",     /* too much padding */
        "Zg=a",     /* data after '=' in a quantum */
        "Zg==Zg==", /* data after the padding */
        "Zm8=Zm9v", /* data after the padding */
        "Zg===",    /* an extra '=' */
        "Zh==",     /* non-canonical: unused bits set ("Zg==" is canonical) */
        "Zm9=",     /* non-canonical ("Zm8=") */
        "Zm8==",    /* extra '=' */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[8];
        cr_assert_eq(ccr_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -EINVAL, "input %zu: %s", i,
                     bad[i]);
    }
}

Test(crypto_base64, enospc)
{
    char enc[9];
    /* "foobar" encodes to 8 characters and needs 9 bytes with the NUL. */
    cr_assert_eq(ccr_base64_encode("foobar", 6, enc, 8), -ENOSPC);
    cr_assert_eq(ccr_base64_encode("foobar", 6, enc, 9), 8);
    cr_assert_eq(ccr_base64_encode("", 0, enc, 0), -ENOSPC);
    cr_assert_eq(ccr_base64_encode("", 0, enc, 1), 0);
    cr_assert_eq(enc[0], '\0');

    uint8_t out[6];
    memset(out, 0xee, sizeof(out));
    cr_assert_eq(ccr_base64_decode("Zm9vYmFy", 8, out, 5), -ENOSPC);
    cr_assert_eq(out[0], 0xee, "output touched on -ENOSPC");
    cr_assert_eq(ccr_base64_decode("Zm9vYmFy", 8, out, 6), 6);
    cr_assert_eq(ccr_base64_decode("Zm9vYg==", 8, out, 3), -ENOSPC);
    cr_assert_eq(ccr_base64_decode("Zm9vYg==", 8, out, 4), 4);
    cr_assert_eq(ccr_base64_decode("Zg==", 4, NULL, 0), -ENOSPC);
    /* A bad input is -EINVAL even when the buffer is also too small. */
    cr_assert_eq(ccr_base64_decode("Zm9v!mFy", 8, out, 1), -EINVAL);
}

Test(crypto_base64, invalid_arguments)
{
    char enc[8];
    uint8_t out[8];
    cr_assert_eq(ccr_base64_encode(NULL, 1, enc, sizeof(enc)), -EINVAL);
    cr_assert_eq(ccr_base64_encode("a", 1, NULL, 8), -EINVAL);
    cr_assert_eq(ccr_base64_decode(NULL, 4, out, sizeof(out)), -EINVAL);
    cr_assert_eq(ccr_base64_decode("Zg==", 4, NULL, 8), -EINVAL);
}
