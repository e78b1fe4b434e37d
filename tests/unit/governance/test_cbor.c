/*
 * test_cbor.c - the minimal CBOR codec (governance/cbor.c): RFC 8949 Appendix A encodings byte for byte,
 * decoding them back, integer boundaries, and malformed input: every truncation, over-long lengths,
 * huge counts, deep nesting, unsupported items, trailing bytes and wrong types.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbor.h"
#include "ccr/common.h"

static size_t unhex_str(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* Takes the buffer and checks it equals the hex. */
static void expect_bytes(struct cbor_buf *b, const char *hex)
{
    uint8_t want[256];
    size_t n = unhex_str(hex, want);
    uint8_t *got = NULL;
    size_t got_len = 0;
    cr_assert_eq(cbor_buf_take(b, &got, &got_len), 0);
    cr_assert_eq(got_len, n, "length %zu, want %zu (%s)", got_len, n, hex);
    cr_assert_eq(memcmp(got, want, n), 0, "bytes differ from %s", hex);
    cr_assert(cbor_well_formed(got, got_len), "%s not well formed", hex);
    ccr_free(got);
    cbor_buf_fini(b);
}

Test(governance_cbor, rfc8949_integers)
{
    static const struct {
        int64_t v;
        const char *hex;
    } vec[] = {
        {0, "00"},
        {1, "01"},
        {23, "17"},
        {24, "1818"},
        {100, "1864"},
        {1000, "1903e8"},
        {1000000, "1a000f4240"},
        {1000000000000LL, "1b000000e8d4a51000"},
        {-1, "20"},
        {-10, "29"},
        {-100, "3863"},
        {-1000, "3903e7"},
        {INT64_MIN, "3b7fffffffffffffff"},
        {INT64_MAX, "1b7fffffffffffffff"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct cbor_buf b;
        cbor_buf_init(&b);
        cbor_put_int(&b, vec[i].v);
        expect_bytes(&b, vec[i].hex);

        uint8_t buf[16];
        size_t n = unhex_str(vec[i].hex, buf);
        struct cbor_dec d;
        cbor_dec_init(&d, buf, n);
        int64_t v = 0;
        cr_assert_eq(cbor_get_int(&d, &v), 0);
        cr_assert_eq(v, vec[i].v);
        cr_assert(cbor_dec_done(&d));
    }
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_uint(&b, UINT64_MAX);
    expect_bytes(&b, "1bffffffffffffffff");
}

Test(governance_cbor, rfc8949_strings_containers_simple)
{
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_bstr(&b, "", 0);
    expect_bytes(&b, "40");
    cbor_buf_init(&b);
    cbor_put_bstr(&b, "\x01\x02\x03\x04", 4);
    expect_bytes(&b, "4401020304");
    cbor_buf_init(&b);
    cbor_put_cstr(&b, "");
    expect_bytes(&b, "60");
    cbor_buf_init(&b);
    cbor_put_cstr(&b, "IETF");
    expect_bytes(&b, "6449455446");
    cbor_buf_init(&b);
    cbor_put_array(&b, 3);
    cbor_put_uint(&b, 1);
    cbor_put_uint(&b, 2);
    cbor_put_uint(&b, 3);
    expect_bytes(&b, "83010203");
    cbor_buf_init(&b);
    cbor_put_map(&b, 2);
    cbor_put_uint(&b, 1);
    cbor_put_uint(&b, 2);
    cbor_put_uint(&b, 3);
    cbor_put_uint(&b, 4);
    expect_bytes(&b, "a201020304");
    cbor_buf_init(&b);
    cbor_put_bool(&b, false);
    cbor_put_bool(&b, true);
    cbor_put_null(&b);
    cbor_put_tag(&b, 18);
    cbor_put_map(&b, 0);
    /* several top-level items: not "one well-formed item", so compare by hand */
    uint8_t *got;
    size_t len;
    cr_assert_eq(cbor_buf_take(&b, &got, &len), 0);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(got, "\xf4\xf5\xf6\xd2\xa0", 5), 0);
    cr_assert(!cbor_well_formed(got, len));
    ccr_free(got);
    cbor_buf_fini(&b);
}

Test(governance_cbor, long_strings_use_wide_heads)
{
    static uint8_t big[70000];
    memset(big, 0xab, sizeof(big));
    size_t sizes[] = {23, 24, 255, 256, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct cbor_buf b;
        cbor_buf_init(&b);
        cbor_put_bstr(&b, big, sizes[i]);
        cbor_put_tstr(&b, (const char *)big, sizes[i]);
        uint8_t *out;
        size_t len;
        cr_assert_eq(cbor_buf_take(&b, &out, &len), 0);
        size_t head = sizes[i] < 24 ? 1 : sizes[i] < 256 ? 2 : sizes[i] < 65536 ? 3 : 5;
        cr_assert_eq(len, 2 * (head + sizes[i]));
        struct cbor_dec d;
        cbor_dec_init(&d, out, len);
        const uint8_t *p;
        size_t n;
        cr_assert_eq(cbor_get_bstr(&d, &p, &n), 0);
        cr_assert_eq(n, sizes[i]);
        cr_assert_eq(p, out + head);
        const char *t;
        cr_assert_eq(cbor_get_tstr(&d, &t, &n), 0);
        cr_assert_eq(n, sizes[i]);
        cr_assert_eq(memcmp(t, big, n), 0);
        cr_assert(cbor_dec_done(&d));
        ccr_free(out);
        cbor_buf_fini(&b);
    }
}

Test(governance_cbor, nested_round_trip)
{
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_tag(&b, 18);
    cbor_put_array(&b, 3);
    cbor_put_map(&b, 1);
    cbor_put_cstr(&b, "k");
    cbor_put_int(&b, -35);
    cbor_put_array(&b, 2);
    cbor_put_null(&b);
    cbor_put_bool(&b, true);
    cbor_put_bstr(&b, "xyz", 3);
    uint8_t *out;
    size_t len;
    cr_assert_eq(cbor_buf_take(&b, &out, &len), 0);
    cr_assert(cbor_well_formed(out, len));

    struct cbor_dec d;
    cbor_dec_init(&d, out, len);
    uint64_t u;
    int64_t i;
    const char *s;
    const uint8_t *p;
    size_t n;
    struct cbor_item it;
    cr_assert_eq(cbor_get_tag(&d, &u), 0);
    cr_assert_eq(u, 18);
    cr_assert_eq(cbor_get_array(&d, &u), 0);
    cr_assert_eq(u, 3);
    cr_assert_eq(cbor_get_map(&d, &u), 0);
    cr_assert_eq(u, 1);
    cr_assert_eq(cbor_get_tstr(&d, &s, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(s[0], 'k');
    cr_assert_eq(cbor_get_int(&d, &i), 0);
    cr_assert_eq(i, -35);
    cr_assert_eq(cbor_get_array(&d, &u), 0);
    cr_assert_eq(u, 2);
    cr_assert_eq(cbor_next(&d, &it), 0);
    cr_assert_eq(it.type, CBOR_NULL);
    cr_assert_eq(cbor_next(&d, &it), 0);
    cr_assert_eq(it.type, CBOR_TRUE);
    cr_assert_eq(cbor_get_bstr(&d, &p, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(p, "xyz", 3), 0);
    cr_assert(cbor_dec_done(&d));
    cr_assert_eq(cbor_next(&d, &it), -EBADMSG, "reading past the end must fail");

    /* skip consumes the whole item */
    cbor_dec_init(&d, out, len);
    cr_assert_eq(cbor_skip(&d), 0);
    cr_assert(cbor_dec_done(&d));
    ccr_free(out);
    cbor_buf_fini(&b);
}

Test(governance_cbor, every_truncation_fails)
{
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_array(&b, 4);
    cbor_put_uint(&b, 1000000000000ULL);
    cbor_put_bstr(&b, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
    cbor_put_map(&b, 1);
    cbor_put_cstr(&b, "key");
    cbor_put_int(&b, -70000);
    cbor_put_tag(&b, 18);
    cbor_put_null(&b);
    uint8_t *out;
    size_t len;
    cr_assert_eq(cbor_buf_take(&b, &out, &len), 0);
    cr_assert(cbor_well_formed(out, len));
    for (size_t cut = 0; cut < len; cut++) {
        /* an exact-size copy, so ASan catches a read past the end */
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, out, cut);
        cr_assert(!cbor_well_formed(t, cut), "truncated to %zu bytes accepted", cut);
        struct cbor_dec d;
        cbor_dec_init(&d, t, cut);
        cr_assert_eq(cbor_skip(&d), -EBADMSG);
        free(t);
    }
    ccr_free(out);
    cbor_buf_fini(&b);
}

static bool wf_hex(const char *hex)
{
    uint8_t buf[256];
    size_t n = unhex_str(hex, buf);
    uint8_t *t = malloc(n ? n : 1);
    memcpy(t, buf, n);
    bool ok = cbor_well_formed(t, n);
    free(t);
    return ok;
}

Test(governance_cbor, malformed_inputs)
{
    /* over-long lengths: strings longer than what is left */
    cr_assert(!wf_hex("5bffffffffffffffff00"));
    cr_assert(!wf_hex("7b7fffffffffffffff41"));
    cr_assert(!wf_hex("5a0000000500"));
    cr_assert(!wf_hex("4501020304"));
    cr_assert(!wf_hex("1b0000")); /* argument cut short */
    cr_assert(!wf_hex("19"));     /* argument missing */
    /* huge counts: refused at once, not looped over */
    cr_assert(!wf_hex("9bffffffffffffffff"));
    cr_assert(!wf_hex("bb7fffffffffffffff0000"));
    cr_assert(!wf_hex("a30102"));
    cr_assert(!wf_hex("a10102a1")); /* trailing bytes */
    cr_assert(!wf_hex("0000"));
    /* unsupported: indefinite lengths, break, floats, undefined, other simple values, reserved ai */
    cr_assert(!wf_hex("5f4100ff"));
    cr_assert(!wf_hex("9f01ff"));
    cr_assert(!wf_hex("bfff"));
    cr_assert(!wf_hex("ff"));
    cr_assert(!wf_hex("f93c00"));
    cr_assert(!wf_hex("fb3ff199999999999a"));
    cr_assert(!wf_hex("f7"));
    cr_assert(!wf_hex("f0"));
    cr_assert(!wf_hex("f818"));
    cr_assert(!wf_hex("1c"));
    cr_assert(!wf_hex("3d"));
    cr_assert(!wf_hex(""));
    /* and the good ones next to them */
    cr_assert(wf_hex("a10102"));
    cr_assert(wf_hex("d28440a0404100"));
    cr_assert(wf_hex("f6"));
}

Test(governance_cbor, nesting_depth_limit)
{
    uint8_t buf[4096];
    /* CBOR_MAX_DEPTH arrays around a 0: the innermost item is at depth 16: accepted */
    memset(buf, 0x81, CBOR_MAX_DEPTH);
    buf[CBOR_MAX_DEPTH] = 0;
    cr_assert(cbor_well_formed(buf, CBOR_MAX_DEPTH + 1));
    memset(buf, 0x81, CBOR_MAX_DEPTH + 1);
    buf[CBOR_MAX_DEPTH + 1] = 0;
    cr_assert(!cbor_well_formed(buf, CBOR_MAX_DEPTH + 2));
    /* thousands deep (arrays, maps, tags): refused without exhausting the stack */
    memset(buf, 0x81, sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = 0;
    cr_assert(!cbor_well_formed(buf, sizeof(buf)));
    memset(buf, 0xd2, sizeof(buf) - 1);
    cr_assert(!cbor_well_formed(buf, sizeof(buf)));
    for (size_t i = 0; i + 2 <= sizeof(buf) - 1; i += 2) {
        buf[i] = 0xa1; /* {0: {0: ...}} */
        buf[i + 1] = 0x00;
    }
    cr_assert(!cbor_well_formed(buf, sizeof(buf)));
}

Test(governance_cbor, wrong_types_leave_cursor)
{
    uint8_t buf[] = {0x63, 'a', 'b', 'c', 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0};
    struct cbor_dec d;
    cbor_dec_init(&d, buf, sizeof(buf));
    const uint8_t *p;
    size_t n;
    uint64_t u;
    int64_t i;
    cr_assert_eq(cbor_get_bstr(&d, &p, &n), -EBADMSG);
    cr_assert_eq(cbor_get_uint(&d, &u), -EBADMSG);
    cr_assert_eq(cbor_get_int(&d, &i), -EBADMSG);
    cr_assert_eq(cbor_get_map(&d, &u), -EBADMSG);
    cr_assert_eq(cbor_get_array(&d, &u), -EBADMSG);
    cr_assert_eq(cbor_get_tag(&d, &u), -EBADMSG);
    cr_assert_eq(d.off, 0);
    const char *s;
    cr_assert_eq(cbor_get_tstr(&d, &s, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(d.off, 4);
    /* -1 - 2^63 does not fit an int64_t */
    cr_assert_eq(cbor_get_int(&d, &i), -EBADMSG);
    cr_assert_eq(d.off, 4);
    struct cbor_item it;
    cr_assert_eq(cbor_next(&d, &it), 0);
    cr_assert_eq(it.type, CBOR_NINT);
    cr_assert_eq(it.val, 0x8000000000000000ULL);
}

Test(governance_cbor, null_bytes_with_length_is_an_error)
{
    struct cbor_buf b;
    cbor_buf_init(&b);
    cbor_put_bstr(&b, NULL, 3);
    cbor_put_uint(&b, 1);
    uint8_t *out = NULL;
    size_t len;
    cr_assert_eq(cbor_buf_take(&b, &out, &len), -EINVAL);
    cr_assert_null(out);
    cbor_buf_fini(&b);
}
