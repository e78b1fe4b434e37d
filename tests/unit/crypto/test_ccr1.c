/*
 * test_ccr1.c - the ccr1 codec: header, region arithmetic, round trips, known answers, tampering.
 *
 * The static helpers enc_blob/dec_blob encrypt and decrypt a whole in-memory blob with the codec API the
 * way the file pipeline does: header first, then region by region, each region opened alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccr/crypto.h"

static struct ccr_aead *aead;

static void ccr1_setup(void)
{
    cr_assert_eq(ccr_aead_create(&aead), 0);
}

static void ccr1_teardown(void)
{
    ccr_aead_destroy(aead);
    aead = NULL;
}

TestSuite(crypto_ccr1, .init = ccr1_setup, .fini = ccr1_teardown);

/* ----------------------------------------------------------------------------------------------------- */
/* Helpers                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static void make_key(struct ccr_key *k, uint8_t base)
{
    for (size_t i = 0; i < sizeof(k->b); i++)
        k->b[i] = (uint8_t)(base + i);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Encrypts pt[0..n) into a new malloc'd blob (*out_blob, *out_len). */
static int enc_blob(const struct ccr_key *dek, unsigned log2, const uint8_t *pt, size_t n, uint8_t **out_blob,
                    size_t *out_len)
{
    struct ccr_ccr1 c;
    int rc = ccr_ccr1_init_new(&c, dek, log2);
    if (rc)
        return rc;
    uint64_t size = ccr_ccr1_blob_size(n, log2);
    uint64_t regions = ccr_ccr1_region_count(n, log2);
    uint8_t *blob = malloc(size);
    cr_assert_not_null(blob);
    memcpy(blob, c.header, CCR1_HEADER_LEN);
    for (uint64_t i = 0; i < regions && rc == 0; i++) {
        uint64_t off = ccr_ccr1_region_offset(i, log2);
        size_t len = ccr_ccr1_region_plain_len(n, log2, i);
        rc = ccr_ccr1_seal_region(&c, aead, i, i + 1 == regions, pt + (i << log2), blob + off, len,
                                  blob + off + len);
    }
    ccr_ccr1_fini(&c);
    if (rc) {
        free(blob);
        return rc;
    }
    *out_blob = blob;
    *out_len = size;
    return 0;
}

struct dec_info {
    int64_t failed_region;   /* -1 when no region failed */
    bool failed_region_zero; /* the codec wiped the failed region's output */
    unsigned region_log2;
};

/*
 * Decrypts a whole blob into out (cap bytes) region by region. On failure the region that failed must
 * already read as zeros (the codec's promise, recorded in info); then the whole output is wiped, as the
 * pipeline does: nothing of a failed file is released.
 */
static int dec_blob(const struct ccr_key *dek, const uint8_t *blob, size_t size, uint8_t *out, size_t cap,
                    size_t *out_n, struct ccr_err *err, struct dec_info *info)
{
    struct ccr_ccr1 c;
    uint64_t n = 0, regions = 0;
    int rc;
    info->failed_region = -1;
    info->failed_region_zero = false;
    ccr_err_clear(err);
    if (size < CCR1_HEADER_LEN) {
        rc = ccr_err_set(err, -EBADMSG, NULL, -1, "shorter than a header");
        goto wipe;
    }
    rc = ccr_ccr1_init_parse(&c, dek, blob, err);
    if (rc)
        goto wipe;
    info->region_log2 = c.region_log2;
    rc = ccr_ccr1_plain_size(size, c.region_log2, &n, &regions, err);
    if (rc == 0 && n > cap)
        rc = -ENOSPC;
    for (uint64_t i = 0; rc == 0 && i < regions; i++) {
        uint64_t off = ccr_ccr1_region_offset(i, c.region_log2);
        size_t len = ccr_ccr1_region_plain_len(n, c.region_log2, i);
        uint8_t *dst = out + (i << c.region_log2);
        rc = ccr_ccr1_open_region(&c, aead, i, i + 1 == regions, blob + off, dst, len, blob + off + len, err);
        if (rc) {
            info->failed_region = (int64_t)i;
            info->failed_region_zero = all_zero(dst, len);
        }
    }
    ccr_ccr1_fini(&c);
    if (rc == 0) {
        *out_n = n;
        return 0;
    }
wipe:
    memset(out, 0, cap);
    return rc;
}

/* Encrypts, checks the size formulas, decrypts and compares. */
static void round_trip(unsigned log2, size_t n)
{
    struct ccr_key k;
    make_key(&k, 0x11);
    uint64_t r = (uint64_t)1 << log2;
    uint8_t *pt = malloc(n + 1), *back = malloc(n + 1);
    cr_assert(pt && back);
    fill_pattern(pt, n, (uint32_t)(n + log2));
    uint8_t *blob;
    size_t size;
    cr_assert_eq(enc_blob(&k, log2, pt, n, &blob, &size), 0);
    uint64_t want_regions = n == 0 ? 1 : (n + r - 1) / r;
    cr_assert_eq(ccr_ccr1_region_count(n, log2), want_regions, "log2 %u n %zu", log2, n);
    cr_assert_eq(size, 64 + n + 16 * want_regions, "log2 %u n %zu", log2, n);
    uint64_t got_n = 0, got_regions = 0;
    cr_assert_eq(ccr_ccr1_plain_size(size, log2, &got_n, &got_regions, NULL), 0);
    cr_assert_eq(got_n, n);
    cr_assert_eq(got_regions, want_regions);
    size_t out_n = 0;
    struct ccr_err err;
    struct dec_info info;
    memset(back, 0xa5, n + 1);
    cr_assert_eq(dec_blob(&k, blob, size, back, n + 1, &out_n, &err, &info), 0, "log2 %u n %zu: %s", log2, n,
                 err.msg);
    cr_assert_eq(out_n, n);
    cr_assert_eq(memcmp(back, pt, n), 0);
    cr_assert_eq(back[n], 0xa5, "wrote past the plaintext");
    free(blob);
    free(pt);
    free(back);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Round trips and layout                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

Test(crypto_ccr1, round_trip_all_boundary_sizes)
{
    static const unsigned logs[] = {12, 16, 20};
    for (size_t l = 0; l < sizeof(logs) / sizeof(logs[0]); l++) {
        size_t r = (size_t)1 << logs[l];
        size_t sizes[] = {0, 1, r - 1, r, r + 1, 3 * r - 1, 3 * r, 3 * r + 1};
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            round_trip(logs[l], sizes[s]);
    }
}

Test(crypto_ccr1, round_trip_extreme_region_sizes)
{
    round_trip(CCR1_REGION_LOG2_MAX, 5);
    round_trip(CCR1_REGION_LOG2_MIN, 12345);
}

Test(crypto_ccr1, header_layout)
{
    struct ccr_key k;
    make_key(&k, 0x42);
    uint8_t id[CCR_KEY_ID_LEN];
    cr_assert_eq(ccr_key_id(&k, id), 0);
    struct ccr_ccr1 a, b;
    cr_assert_eq(ccr_ccr1_init_new(&a, &k, 16), 0);
    cr_assert_eq(ccr_ccr1_init_new(&b, &k, 16), 0);
    cr_assert_eq(memcmp(a.header, "CCR1", 4), 0);
    cr_assert_eq(a.header[4], 1);
    cr_assert_eq(a.header[5], 16);
    cr_assert_eq(a.header[6], 0);
    cr_assert_eq(a.header[7], 0);
    cr_assert_eq(memcmp(a.header + 8, id, 16), 0);
    cr_assert(all_zero(a.header + 56, 8));
    cr_assert_eq(a.region_log2, 16);
    cr_assert_eq(a.region_size, 65536);
    /* Fresh salt (and so a fresh K) every time; everything else equal. */
    cr_assert_neq(memcmp(a.header + 24, b.header + 24, 32), 0);
    cr_assert(!all_zero(a.header + 24, 32));
    cr_assert_eq(memcmp(a.header, b.header, 24), 0);
    cr_assert_neq(memcmp(a.key, b.key, 32), 0);
    struct ccr_ccr1_info info;
    cr_assert_eq(ccr_ccr1_header_parse(a.header, &info, NULL), 0);
    cr_assert_eq(info.version, 1);
    cr_assert_eq(info.region_log2, 16);
    cr_assert_eq(memcmp(info.key_id, id, 16), 0);
    cr_assert_eq(memcmp(info.salt, a.header + 24, 32), 0);
    /* A reader re-derives the same K from the header. */
    struct ccr_ccr1 r;
    cr_assert_eq(ccr_ccr1_init_parse(&r, &k, a.header, NULL), 0);
    cr_assert_eq(memcmp(r.key, a.key, 32), 0);
    cr_assert_eq(memcmp(r.header, a.header, 64), 0);
    cr_assert_eq(r.region_log2, 16);
    cr_assert_eq(r.region_size, 65536);
    ccr_ccr1_fini(&r);
    cr_assert(all_zero(r.key, sizeof(r.key)), "fini wipes K");
    ccr_ccr1_fini(&a);
    ccr_ccr1_fini(&b);
}

Test(crypto_ccr1, two_encryptions_differ)
{
    struct ccr_key k;
    make_key(&k, 1);
    uint8_t pt[5000];
    fill_pattern(pt, sizeof(pt), 9);
    uint8_t *b1, *b2;
    size_t s1, s2;
    cr_assert_eq(enc_blob(&k, 12, pt, sizeof(pt), &b1, &s1), 0);
    cr_assert_eq(enc_blob(&k, 12, pt, sizeof(pt), &b2, &s2), 0);
    cr_assert_eq(s1, s2);
    cr_assert_neq(memcmp(b1 + 24, b2 + 24, 32), 0, "salts differ");
    cr_assert_neq(memcmp(b1 + 64, b2 + 64, 32), 0, "region 0 ciphertexts differ");
    cr_assert_neq(memcmp(b1 + s1 - 16, b2 + s2 - 16, 16), 0, "last tags differ");
    free(b1);
    free(b2);
}

Test(crypto_ccr1, init_new_rejects_bad_arguments)
{
    struct ccr_key k;
    make_key(&k, 3);
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 11), -EINVAL);
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 25), -EINVAL);
    cr_assert_eq(ccr_ccr1_init_new(&c, NULL, 20), -EINVAL);
    cr_assert_eq(ccr_ccr1_init_new(NULL, &k, 20), -EINVAL);
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 12), 0);
    ccr_ccr1_fini(&c);
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 24), 0);
    ccr_ccr1_fini(&c);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Header parsing errors                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static void valid_header(uint8_t h[64], const struct ccr_key *k)
{
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_new(&c, k, 20), 0);
    memcpy(h, c.header, 64);
    ccr_ccr1_fini(&c);
}

static void expect_parse_error(const uint8_t h[64], int64_t offset, const char *msg)
{
    struct ccr_err err;
    ccr_err_clear(&err);
    struct ccr_ccr1_info info;
    memset(&info, 0x5a, sizeof(info));
    cr_assert_eq(ccr_ccr1_header_parse(h, &info, &err), -EBADMSG, "%s", msg);
    cr_assert_eq(err.code, -EBADMSG);
    cr_assert_eq(err.offset, offset, "%s: offset %lld", msg, (long long)err.offset);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(info.version, 0x5a5a5a5au, "out written on failure");
}

Test(crypto_ccr1, header_parse_errors)
{
    struct ccr_key k;
    make_key(&k, 5);
    uint8_t h[64];
    valid_header(h, &k);
    cr_assert_eq(ccr_ccr1_header_parse(h, NULL, NULL), 0);

    uint8_t t[64];
    memcpy(t, h, 64);
    t[0] = 'X';
    expect_parse_error(t, 0, "bad magic: not a ccr1 blob");
    memcpy(t, h, 64);
    t[3] = '2';
    expect_parse_error(t, 3, "bad magic: not a ccr1 blob");
    memcpy(t, h, 64);
    t[4] = 7;
    expect_parse_error(t, 4, "unsupported version 7");
    memcpy(t, h, 64);
    t[4] = 0;
    expect_parse_error(t, 4, "unsupported version 0");
    memcpy(t, h, 64);
    t[5] = 30;
    expect_parse_error(t, 5, "region_log2 30 out of range 12..24");
    memcpy(t, h, 64);
    t[5] = 11;
    expect_parse_error(t, 5, "region_log2 11 out of range 12..24");
    memcpy(t, h, 64);
    t[5] = 25;
    expect_parse_error(t, 5, "region_log2 25 out of range 12..24");
    for (int i = 6; i < 64; i++) {
        if (i == 8)
            i = 56;
        memcpy(t, h, 64);
        t[i] = 0x10;
        expect_parse_error(t, i, "reserved bytes must be zero");
    }
    /* Both ends of the region_log2 range parse. */
    memcpy(t, h, 64);
    t[5] = 12;
    cr_assert_eq(ccr_ccr1_header_parse(t, NULL, NULL), 0);
    t[5] = 24;
    cr_assert_eq(ccr_ccr1_header_parse(t, NULL, NULL), 0);
}

Test(crypto_ccr1, wrong_key_is_enokey_with_both_ids)
{
    struct ccr_key k1, k2;
    make_key(&k1, 0x10);
    make_key(&k2, 0x20);
    uint8_t h[64];
    valid_header(h, &k1);
    uint8_t id1[16], id2[16];
    cr_assert_eq(ccr_key_id(&k1, id1), 0);
    cr_assert_eq(ccr_key_id(&k2, id2), 0);
    char want[256], hex1[33], hex2[33];
    for (int i = 0; i < 16; i++) {
        snprintf(hex1 + 2 * i, 3, "%02x", id1[i]);
        snprintf(hex2 + 2 * i, 3, "%02x", id2[i]);
    }
    snprintf(want, sizeof(want), "wrong key: the blob was encrypted under key id %s, the key given has id %s",
             hex1, hex2);
    struct ccr_ccr1 c;
    memset(&c, 0x77, sizeof(c));
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_ccr1_init_parse(&c, &k2, h, &err), -ENOKEY);
    cr_assert_eq(err.code, -ENOKEY);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(err.offset, 8);
    cr_assert_eq(c.header[0], 0x77, "c written on failure");
    cr_assert_eq(ccr_ccr1_init_parse(&c, &k1, h, &err), 0);
    ccr_ccr1_fini(&c);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Region arithmetic                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

Test(crypto_ccr1, arithmetic_formulas)
{
    cr_assert_eq(ccr_ccr1_region_count(0, 20), 1);
    cr_assert_eq(ccr_ccr1_region_count(1, 20), 1);
    cr_assert_eq(ccr_ccr1_region_count(1 << 20, 20), 1);
    cr_assert_eq(ccr_ccr1_region_count((1 << 20) + 1, 20), 2);
    cr_assert_eq(ccr_ccr1_blob_size(0, 20), 80);
    cr_assert_eq(ccr_ccr1_blob_size(1, 20), 81);
    cr_assert_eq(ccr_ccr1_blob_size(100ull << 20, 20), 64 + (100ull << 20) + 1600);
    cr_assert_eq(ccr_ccr1_region_offset(0, 12), 64);
    cr_assert_eq(ccr_ccr1_region_offset(3, 12), 64 + 3 * 4112);
    cr_assert_eq(ccr_ccr1_region_plain_len(0, 12, 0), 0);
    cr_assert_eq(ccr_ccr1_region_plain_len(4096, 12, 0), 4096);
    cr_assert_eq(ccr_ccr1_region_plain_len(4097, 12, 0), 4096);
    cr_assert_eq(ccr_ccr1_region_plain_len(4097, 12, 1), 1);
    cr_assert_eq(ccr_ccr1_region_plain_len(4097, 12, 2), 0);
    /* Invalid region_log2 and 64-bit overflow. */
    cr_assert_eq(ccr_ccr1_region_count(5, 11), 0);
    cr_assert_eq(ccr_ccr1_blob_size(5, 25), 0);
    cr_assert_eq(ccr_ccr1_blob_size(UINT64_MAX - 10, 12), UINT64_MAX);
    cr_assert_eq(ccr_ccr1_region_offset(UINT64_MAX / 2, 24), UINT64_MAX);
    uint64_t n, r;
    cr_assert_eq(ccr_ccr1_plain_size(100, 11, &n, &r, NULL), -EINVAL);
    cr_assert_eq(ccr_ccr1_plain_size(UINT64_MAX, 12, &n, &r, NULL), 0);
    cr_assert_eq(ccr_ccr1_blob_size(n, 12), UINT64_MAX);
}

/* plain_size accepts exactly the sizes blob_size produces, and inverts it. Exhaustive for small blobs. */
Test(crypto_ccr1, plain_size_exhaustive)
{
    const unsigned log2 = 12;
    const uint64_t r = 4096, max_n = 4 * r + 50;
    uint64_t max_s = ccr_ccr1_blob_size(max_n, log2);
    int64_t *want = malloc((max_s + 1) * sizeof(*want));
    cr_assert_not_null(want);
    for (uint64_t s = 0; s <= max_s; s++)
        want[s] = -1;
    for (uint64_t n = 0; n <= max_n; n++) {
        uint64_t s = ccr_ccr1_blob_size(n, log2);
        cr_assert_eq(want[s], -1, "two plaintext sizes map to blob size %llu", (unsigned long long)s);
        want[s] = (int64_t)n;
    }
    for (uint64_t s = 0; s <= max_s; s++) {
        uint64_t n = 12345, regions = 12345;
        struct ccr_err err;
        ccr_err_clear(&err);
        int rc = ccr_ccr1_plain_size(s, log2, &n, &regions, &err);
        if (want[s] < 0) {
            cr_assert_eq(rc, -EBADMSG, "size %llu accepted", (unsigned long long)s);
            cr_assert_eq(err.code, -EBADMSG);
            cr_assert(err.msg[0]);
            cr_assert_eq(n, 12345, "out written on failure");
        } else {
            cr_assert_eq(rc, 0, "size %llu rejected", (unsigned long long)s);
            cr_assert_eq(n, (uint64_t)want[s]);
            cr_assert_eq(regions, ccr_ccr1_region_count(n, log2));
        }
    }
    free(want);
}

/* Reference model of map_range, by walking the regions one by one. */
static void check_map(uint64_t n, unsigned log2, uint64_t off, uint64_t len)
{
    struct ccr_ccr1_span sp;
    memset(&sp, 0x33, sizeof(sp));
    int rc = ccr_ccr1_map_range(n, log2, off, len, &sp);
    if (off > n) {
        cr_assert_eq(rc, -EINVAL);
        return;
    }
    cr_assert_eq(rc, 0, "n %llu off %llu len %llu", (unsigned long long)n, (unsigned long long)off,
                 (unsigned long long)len);
    uint64_t r = (uint64_t)1 << log2, regions = ccr_ccr1_region_count(n, log2);
    uint64_t end = len > n - off ? n : off + len;
    uint64_t first = UINT64_MAX, last = 0;
    for (uint64_t i = 0; i < regions; i++) {
        uint64_t lo = i * r, hi = lo + ccr_ccr1_region_plain_len(n, log2, i);
        if (lo < end && hi > off) {
            if (first == UINT64_MAX)
                first = i;
            last = i;
        }
    }
    if (first == UINT64_MAX) { /* empty range: the region holding off, or the last one at the end */
        first = last = off == n ? regions - 1 : off / r;
    }
    cr_assert_eq(sp.first_region, first, "n %llu off %llu len %llu", (unsigned long long)n,
                 (unsigned long long)off, (unsigned long long)len);
    cr_assert_eq(sp.last_region, last);
    cr_assert_eq(sp.stored_offset, 64 + first * (r + 16));
    uint64_t stored_end = 64 + last * (r + 16) + ccr_ccr1_region_plain_len(n, log2, last) + 16;
    cr_assert_eq(sp.stored_len, stored_end - sp.stored_offset);
    cr_assert_leq(stored_end, ccr_ccr1_blob_size(n, log2));
}

Test(crypto_ccr1, map_range_matches_model)
{
    const unsigned log2 = 12;
    const uint64_t r = 4096;
    const uint64_t sizes[] = {0, 1, r - 1, r, r + 1, 3 * r, 3 * r + 7};
    const uint64_t offs[] = {0, 1, r - 1, r, r + 1, 2 * r, 3 * r - 1, 3 * r, 3 * r + 6, 3 * r + 7, 3 * r + 8};
    const uint64_t lens[] = {0, 1, 2, r - 1, r, r + 1, 2 * r, 10 * r, UINT64_MAX};
    for (size_t a = 0; a < sizeof(sizes) / sizeof(sizes[0]); a++)
        for (size_t b = 0; b < sizeof(offs) / sizeof(offs[0]); b++)
            for (size_t c = 0; c < sizeof(lens) / sizeof(lens[0]); c++)
                check_map(sizes[a], log2, offs[b], lens[c]);
    /* Examples spelled out. */
    struct ccr_ccr1_span sp;
    cr_assert_eq(ccr_ccr1_map_range(0, 20, 0, 100, &sp), 0);
    cr_assert_eq(sp.first_region, 0);
    cr_assert_eq(sp.last_region, 0);
    cr_assert_eq(sp.stored_offset, 64);
    cr_assert_eq(sp.stored_len, 16);
    cr_assert_eq(ccr_ccr1_map_range(3 << 20, 20, (1 << 20) - 1, 2, &sp), 0);
    cr_assert_eq(sp.first_region, 0);
    cr_assert_eq(sp.last_region, 1);
    cr_assert_eq(sp.stored_len, 2 * ((1 << 20) + 16));
    cr_assert_eq(ccr_ccr1_map_range(10, 20, 11, 1, &sp), -EINVAL);
    cr_assert_eq(ccr_ccr1_map_range(10, 11, 0, 1, &sp), -EINVAL);
    cr_assert_eq(ccr_ccr1_map_range(UINT64_MAX, 12, 0, 1, &sp), -EINVAL);
    cr_assert_eq(ccr_ccr1_map_range(10, 12, 0, 1, NULL), -EINVAL);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Known answers                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * Computed independently with Debian's /usr/bin/python3 and python3-cryptography:
 *
 *   import hashlib
 *   from cryptography.hazmat.primitives.kdf.hkdf import HKDF
 *   from cryptography.hazmat.primitives import hashes
 *   from cryptography.hazmat.primitives.ciphers.aead import AESGCM
 *   dek = bytes(range(32))
 *   salt = bytes(0x80 + i for i in range(32))
 *   kid = hashlib.sha256(b"ccr1-key-id" + dek).digest()[:16]
 *   hdr = b"CCR1" + bytes([1, 12, 0, 0]) + kid + salt + bytes(8)
 *   K = HKDF(hashes.SHA256(), 32, salt, b"ccr1-region-key" + hdr[:24]).derive(dek)
 *   pt0 = bytes((i * 7 + 3) & 0xff for i in range(4096))
 *   pt1 = b"tail!"
 *   nonce = lambda i, f: i.to_bytes(8, "big") + bytes(3) + bytes([f])
 *   r0 = AESGCM(K).encrypt(nonce(0, 0), pt0, hdr)      # region 0 of a 4101-byte plaintext
 *   r1 = AESGCM(K).encrypt(nonce(1, 1), pt1, hdr)      # region 1, final
 *   e0 = AESGCM(K).encrypt(nonce(0, 1), b"", hdr)      # the only region of an empty plaintext
 *   print(kid.hex(), K.hex(), r0[:16].hex(), r0[4080:4096].hex(), r0[4096:].hex(), r1.hex(), e0.hex())
 */
static const uint8_t kat_kid[16] = {0x76, 0x40, 0xaa, 0x25, 0x9a, 0x40, 0xc4, 0xae,
                                    0x3d, 0x73, 0xf9, 0xee, 0x5d, 0x05, 0xc0, 0xee};
static const uint8_t kat_k[32] = {0xc4, 0x15, 0xe2, 0x72, 0x5f, 0xb7, 0x6b, 0x8a, 0xe5, 0xa8, 0x96,
                                  0x94, 0xdb, 0xe1, 0xf4, 0x94, 0x5c, 0x0d, 0xd9, 0xee, 0xc0, 0x36,
                                  0x55, 0xf4, 0x43, 0xee, 0xa4, 0x34, 0x26, 0x0a, 0xad, 0x4a};
static const uint8_t kat_r0_head[16] = {0xc1, 0x97, 0xee, 0x08, 0x2c, 0x0b, 0x00, 0xed,
                                        0xc0, 0xa3, 0x8f, 0xd5, 0x9f, 0xa9, 0x21, 0xfe};
static const uint8_t kat_r0_tail[16] = {0xd8, 0x20, 0x6a, 0xf5, 0x0e, 0xf6, 0xab, 0x0c,
                                        0x6b, 0x25, 0x60, 0x95, 0x6e, 0x0d, 0x5e, 0x13};
static const uint8_t kat_r0_tag[16] = {0x08, 0x8b, 0x65, 0x12, 0xb5, 0x28, 0x78, 0x57,
                                       0xc5, 0x4c, 0xa5, 0xdb, 0x5a, 0x87, 0x3d, 0xc1};
static const uint8_t kat_r1[21] = {0xf6, 0xae, 0x08, 0xc9, 0xea, 0x40, 0xac, 0xaf, 0xb6, 0x74, 0x1a,
                                   0x9c, 0x8c, 0x98, 0x20, 0xdc, 0xb8, 0x49, 0xed, 0x8e, 0x9d};
static const uint8_t kat_empty_tag[16] = {0x83, 0xd6, 0xaa, 0x1d, 0x38, 0xb9, 0x27, 0x75,
                                          0x8c, 0x47, 0xfb, 0x43, 0xb8, 0xcd, 0x89, 0x7b};

static void kat_header(uint8_t h[64])
{
    memset(h, 0, 64);
    memcpy(h, "CCR1", 4);
    h[4] = 1;
    h[5] = 12;
    memcpy(h + 8, kat_kid, 16);
    for (int i = 0; i < 32; i++)
        h[24 + i] = (uint8_t)(0x80 + i);
}

Test(crypto_ccr1, known_answer_vectors)
{
    struct ccr_key dek;
    make_key(&dek, 0);
    uint8_t id[16];
    cr_assert_eq(ccr_key_id(&dek, id), 0);
    cr_assert_eq(memcmp(id, kat_kid, 16), 0, "key id");

    uint8_t h[64];
    kat_header(h);
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_parse(&c, &dek, h, NULL), 0);
    cr_assert_eq(memcmp(c.key, kat_k, 32), 0, "per-blob key K");

    uint8_t pt0[4096], ct0[4096], tag0[16], back[4096];
    for (int i = 0; i < 4096; i++)
        pt0[i] = (uint8_t)((i * 7 + 3) & 0xff);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, false, pt0, ct0, 4096, tag0), 0);
    cr_assert_eq(memcmp(ct0, kat_r0_head, 16), 0, "region 0 ciphertext head");
    cr_assert_eq(memcmp(ct0 + 4080, kat_r0_tail, 16), 0, "region 0 ciphertext tail");
    cr_assert_eq(memcmp(tag0, kat_r0_tag, 16), 0, "region 0 tag");
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, false, ct0, back, 4096, tag0, NULL), 0);
    cr_assert_eq(memcmp(back, pt0, 4096), 0);

    uint8_t r1[21];
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 1, true, (const uint8_t *)"tail!", r1, 5, r1 + 5), 0);
    cr_assert_eq(memcmp(r1, kat_r1, 21), 0, "region 1 (final)");
    uint8_t b1[5];
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 1, true, kat_r1, b1, 5, kat_r1 + 5, NULL), 0);
    cr_assert_eq(memcmp(b1, "tail!", 5), 0);

    uint8_t etag[16];
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, true, NULL, NULL, 0, etag), 0);
    cr_assert_eq(memcmp(etag, kat_empty_tag, 16), 0, "empty plaintext tag");
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, true, NULL, NULL, 0, kat_empty_tag, NULL), 0);

    /* The nonce binds index and final: the same bytes under another index or flag fail. */
    struct ccr_err err;
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 1, true, kat_r1, b1, 5, kat_r1 + 5, NULL), 0);
    ccr_err_clear(&err);
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 2, true, kat_r1, b1, 5, kat_r1 + 5, &err), -EBADMSG);
    cr_assert_str_eq(err.msg, "authentication failed in region 2");
    cr_assert_eq(err.offset, 64 + 2 * 4112);
    cr_assert(all_zero(b1, 5));
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, true, ct0, back, 4096, tag0, NULL), -EBADMSG);
    cr_assert(all_zero(back, 4096));
    ccr_ccr1_fini(&c);
}

Test(crypto_ccr1, region_length_validation)
{
    struct ccr_key k;
    make_key(&k, 9);
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 12), 0);
    static uint8_t buf[4097], tag[16];
    memset(buf, 1, sizeof(buf));
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, false, buf, buf, 4095, tag), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, false, buf, buf, 4097, tag), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, true, buf, buf, 4097, tag), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 1, true, buf, buf, 0, tag), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, true, NULL, buf, 1, tag), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, true, buf, buf, 1, NULL), -EINVAL);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, true, buf, buf, 0, tag), 0);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 5, true, buf, buf, 1, tag), 0);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 0, false, buf, buf, 4096, tag), 0);
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, false, buf, buf, 4095, tag, NULL), -EINVAL);
    cr_assert(all_zero(buf, 4095), "output wiped on every failure");
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, true, buf, buf, 4097, tag, NULL), -EINVAL);
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 1, true, buf, buf, 0, tag, NULL), -EINVAL);
    ccr_ccr1_fini(&c);
}

Test(crypto_ccr1, in_place_round_trip)
{
    struct ccr_key k;
    make_key(&k, 0x66);
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_new(&c, &k, 12), 0);
    static uint8_t buf[4096 + 16], orig[4096];
    fill_pattern(orig, sizeof(orig), 77);
    memcpy(buf, orig, 4096);
    cr_assert_eq(ccr_ccr1_seal_region(&c, aead, 7, false, buf, buf, 4096, buf + 4096), 0);
    cr_assert_neq(memcmp(buf, orig, 4096), 0);
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 7, false, buf, buf, 4096, buf + 4096, NULL), 0);
    cr_assert_eq(memcmp(buf, orig, 4096), 0);
    ccr_ccr1_fini(&c);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Tampering                                                                                              */
/* ----------------------------------------------------------------------------------------------------- */

#define T_LOG2 12
#define T_R    4096u
#define T_N    (3 * T_R + 100) /* four regions, the last one partial */

struct tamper_fixture {
    struct ccr_key key;
    uint8_t pt[T_N];
    uint8_t *blob;
    size_t size;
};

static void tamper_setup(struct tamper_fixture *f)
{
    make_key(&f->key, 0x70);
    fill_pattern(f->pt, T_N, 1234);
    cr_assert_eq(enc_blob(&f->key, T_LOG2, f->pt, T_N, &f->blob, &f->size), 0);
    cr_assert_eq(ccr_ccr1_region_count(T_N, T_LOG2), 4);
}

/*
 * Decrypts a (tampered) blob and checks that it fails with `code`; region >= 0: the failure is an
 * authentication failure of that region, reported at its stored offset. The failed region's output was
 * wiped by the codec and the output buffer ends all zeros.
 */
static void expect_fail(const struct ccr_key *k, const uint8_t *blob, size_t size, int code, int64_t region,
                        const char *what)
{
    static uint8_t out[T_N + 2 * T_R];
    memset(out, 0xa5, sizeof(out));
    size_t n = 999;
    struct ccr_err err;
    struct dec_info info;
    int rc = dec_blob(k, blob, size, out, sizeof(out), &n, &err, &info);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", what, rc, err.msg);
    cr_assert_eq(err.code, code, "%s", what);
    cr_assert_eq(n, 999, "%s: size released", what);
    if (region >= 0) {
        cr_assert_eq(info.failed_region, region, "%s: failed in region %lld", what,
                     (long long)info.failed_region);
        cr_assert(info.failed_region_zero, "%s: region output not wiped", what);
        cr_assert_eq(err.offset, (int64_t)ccr_ccr1_region_offset((uint64_t)region, info.region_log2), "%s",
                     what);
        char msg[64];
        snprintf(msg, sizeof(msg), "authentication failed in region %lld", (long long)region);
        cr_assert_str_eq(err.msg, msg, "%s", what);
    }
    cr_assert(all_zero(out, sizeof(out)), "%s: output not all zeros", what);
}

Test(crypto_ccr1, tamper_every_header_byte)
{
    struct tamper_fixture f;
    tamper_setup(&f);
    uint8_t *t = malloc(f.size);
    cr_assert_not_null(t);
    static const uint8_t masks[] = {0x01, 0x80};
    for (size_t m = 0; m < sizeof(masks); m++) {
        for (int i = 0; i < 64; i++) {
            memcpy(t, f.blob, f.size);
            t[i] ^= masks[m];
            char what[64];
            snprintf(what, sizeof(what), "header byte %d ^ 0x%02x", i, masks[m]);
            struct ccr_err err;
            ccr_err_clear(&err);
            int prc = ccr_ccr1_header_parse(t, NULL, &err);
            if (i < 5 || (i == 5 && masks[m] == 0x80) || (i >= 6 && i < 8) || i >= 56) {
                /* magic, version, region_log2 out of range, reserved: rejected by the parser, at that byte */
                cr_assert_eq(prc, -EBADMSG, "%s", what);
                cr_assert_eq(err.offset, i, "%s", what);
                expect_fail(&f.key, t, f.size, -EBADMSG, -1, what);
            } else if (i == 5) {
                /* 12 -> 13: a valid region size, but another K and another layout: region 0 fails */
                cr_assert_eq(prc, 0, "%s", what);
                expect_fail(&f.key, t, f.size, -EBADMSG, 0, what);
            } else if (i < 24) {
                cr_assert_eq(prc, 0, "%s", what);
                expect_fail(&f.key, t, f.size, -ENOKEY, -1, what);
            } else {
                /* salt: another K, so the first region fails */
                cr_assert_eq(prc, 0, "%s", what);
                expect_fail(&f.key, t, f.size, -EBADMSG, 0, what);
            }
        }
    }
    free(t);
    free(f.blob);
}

Test(crypto_ccr1, tamper_region_bytes)
{
    struct tamper_fixture f;
    tamper_setup(&f);
    uint8_t *t = malloc(f.size);
    cr_assert_not_null(t);
    static const uint64_t regions[] = {0, 1, 3}; /* first, middle, last */
    for (size_t r = 0; r < 3; r++) {
        uint64_t idx = regions[r];
        uint64_t off = ccr_ccr1_region_offset(idx, T_LOG2);
        uint64_t len = ccr_ccr1_region_plain_len(T_N, T_LOG2, idx);
        const uint64_t spots[] = {0, len / 2, len - 1, len, len + 15}; /* ciphertext, then tag */
        for (size_t s = 0; s < 5; s++) {
            memcpy(t, f.blob, f.size);
            t[off + spots[s]] ^= 0x04;
            char what[64];
            snprintf(what, sizeof(what), "region %llu byte %llu", (unsigned long long)idx,
                     (unsigned long long)spots[s]);
            expect_fail(&f.key, t, f.size, -EBADMSG, (int64_t)idx, what);
        }
    }
    free(t);
    free(f.blob);
}

Test(crypto_ccr1, swap_and_splice_regions)
{
    struct tamper_fixture f;
    tamper_setup(&f);
    const size_t stride = T_R + 16;
    uint8_t *t = malloc(f.size);
    cr_assert_not_null(t);

    /* Swap regions 0 and 1 (both full). */
    memcpy(t, f.blob, f.size);
    memcpy(t + 64, f.blob + 64 + stride, stride);
    memcpy(t + 64 + stride, f.blob + 64, stride);
    expect_fail(&f.key, t, f.size, -EBADMSG, 0, "swap 0 and 1");

    /* Swap regions 1 and 2: region 0 still opens, region 1 fails. */
    memcpy(t, f.blob, f.size);
    memcpy(t + 64 + stride, f.blob + 64 + 2 * stride, stride);
    memcpy(t + 64 + 2 * stride, f.blob + 64 + stride, stride);
    expect_fail(&f.key, t, f.size, -EBADMSG, 1, "swap 1 and 2");

    /* Splice region 1 of another blob of the same plaintext under the same DEK. */
    uint8_t *other;
    size_t other_size;
    cr_assert_eq(enc_blob(&f.key, T_LOG2, f.pt, T_N, &other, &other_size), 0);
    cr_assert_eq(other_size, f.size);
    memcpy(t, f.blob, f.size);
    memcpy(t + 64 + stride, other + 64 + stride, stride);
    expect_fail(&f.key, t, f.size, -EBADMSG, 1, "splice region 1");

    /* Another blob's header on this blob's regions. */
    memcpy(t, f.blob, f.size);
    memcpy(t, other, 64);
    expect_fail(&f.key, t, f.size, -EBADMSG, 0, "splice header");
    free(other);
    free(t);
    free(f.blob);
}

Test(crypto_ccr1, truncate_and_extend)
{
    struct tamper_fixture f;
    tamper_setup(&f);
    const size_t stride = T_R + 16;
    uint8_t *t = calloc(1, f.size + stride + 1);
    cr_assert_not_null(t);
    memcpy(t, f.blob, f.size);

    /* Drop the final region: region 2 becomes the last, but was not sealed as final. */
    expect_fail(&f.key, t, 64 + 3 * stride, -EBADMSG, 2, "truncate at boundary 3");
    expect_fail(&f.key, t, 64 + 2 * stride, -EBADMSG, 1, "truncate at boundary 2");
    expect_fail(&f.key, t, 64 + 1 * stride, -EBADMSG, 0, "truncate at boundary 1");
    /* Between boundaries: sizes no plaintext maps to, or a short last region that fails. */
    expect_fail(&f.key, t, 64 + 3 * stride + 10, -EBADMSG, -1, "truncate 10 bytes into region 3");
    expect_fail(&f.key, t, 64 + 3 * stride + 16, -EBADMSG, -1, "truncate to a bare tag");
    expect_fail(&f.key, t, 64 + 3 * stride + 17, -EBADMSG, 3, "truncate 17 bytes into region 3");
    expect_fail(&f.key, t, f.size - 1, -EBADMSG, 3, "truncate by one byte");
    expect_fail(&f.key, t, 64 + 2 * stride + 100, -EBADMSG, 2, "truncate inside region 2");
    expect_fail(&f.key, t, 64 + 15, -EBADMSG, -1, "header and a partial tag");
    expect_fail(&f.key, t, 64, -EBADMSG, -1, "header only");
    expect_fail(&f.key, t, 63, -EBADMSG, -1, "partial header");
    expect_fail(&f.key, t, 0, -EBADMSG, -1, "empty blob");

    /* Extend by a byte, and by a whole region of garbage. */
    t[f.size] = 0;
    expect_fail(&f.key, t, f.size + 1, -EBADMSG, 3, "extend by one byte");
    memcpy(t + f.size, f.blob + 64, stride); /* a copy of region 0 */
    expect_fail(&f.key, t, f.size + stride, -EBADMSG, 3, "extend by a region");

    /* Sanity: the untouched blob still decrypts. */
    static uint8_t out[T_N];
    size_t n = 0;
    struct ccr_err err;
    struct dec_info info;
    cr_assert_eq(dec_blob(&f.key, t, f.size, out, sizeof(out), &n, &err, &info), 0);
    cr_assert_eq(n, T_N);
    cr_assert_eq(memcmp(out, f.pt, T_N), 0);
    free(t);
    free(f.blob);
}

Test(crypto_ccr1, wrong_key_and_wrong_region_size)
{
    struct tamper_fixture f;
    tamper_setup(&f);
    struct ccr_key other;
    make_key(&other, 0x71);
    expect_fail(&other, f.blob, f.size, -ENOKEY, -1, "wrong key");

    /* Every other valid region size in the header: the derived K and the layout change, all fail. */
    uint8_t *t = malloc(f.size);
    cr_assert_not_null(t);
    for (unsigned l = CCR1_REGION_LOG2_MIN; l <= CCR1_REGION_LOG2_MAX; l++) {
        if (l == T_LOG2)
            continue;
        memcpy(t, f.blob, f.size);
        t[5] = (uint8_t)l;
        char what[32];
        snprintf(what, sizeof(what), "region_log2 %u", l);
        expect_fail(&f.key, t, f.size, -EBADMSG, 0, what);
    }

    /* A reader that forces a different region size onto the real header: the region lengths are wrong. */
    struct ccr_ccr1 c;
    cr_assert_eq(ccr_ccr1_init_parse(&c, &f.key, f.blob, NULL), 0);
    uint64_t n, regions;
    cr_assert_eq(ccr_ccr1_plain_size(f.size, 13, &n, &regions, NULL), 0);
    cr_assert_eq(regions, 2);
    c.region_log2 = 13;
    c.region_size = 8192;
    static uint8_t out[8192];
    memset(out, 0xa5, sizeof(out));
    struct ccr_err err;
    cr_assert_eq(ccr_ccr1_open_region(&c, aead, 0, false, f.blob + 64, out, 8192, f.blob + 64 + 8192, &err),
                 -EBADMSG);
    cr_assert(all_zero(out, sizeof(out)));
    ccr_ccr1_fini(&c);
    free(t);
    free(f.blob);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Interoperability: multi-region blobs written by an independent implementation                          */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * tests/fuzz/make_corpus.py builds ccr1 blobs in Python (hashlib, HKDF and AESGCM of python3-cryptography)
 * under the key 00..1f; their plaintext is pattern(n, n) below. Decrypting them here checks the whole
 * layout (header, K, nonces, AAD, region split) against that implementation.
 */
static uint8_t *read_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    cr_assert_geq(len, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *out_len = (size_t)len;
    return buf;
}

Test(crypto_ccr1, decrypts_python_made_blobs)
{
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 9000, 3 * 4096};
    struct ccr_key k;
    make_key(&k, 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        /* CCR_TEST_DATA is <tests>/data (which need not exist); the corpus is <tests>/fuzz/corpus. */
        char path[1024];
        size_t dlen = strlen(CCR_TEST_DATA) - strlen("/data");
        snprintf(path, sizeof(path), "%.*s/fuzz/corpus/fuzz_ccr1_open/valid-log12-%zu", (int)dlen,
                 CCR_TEST_DATA, n);
        size_t size;
        uint8_t *blob = read_file(path, &size);
        cr_assert_eq(size, ccr_ccr1_blob_size(n, 12), "%s", path);
        uint8_t *out = malloc(n + 1);
        cr_assert_not_null(out);
        size_t got = 0;
        struct ccr_err err;
        struct dec_info info;
        cr_assert_eq(dec_blob(&k, blob, size, out, n + 1, &got, &err, &info), 0, "%s: %s", path, err.msg);
        cr_assert_eq(got, n);
        for (size_t j = 0; j < n; j++) /* pattern(n, seed) of make_corpus.py with seed = n */
            cr_assert_eq(out[j], (uint8_t)((j * 31 + n * 7 + (j >> 8)) & 0xff), "%s byte %zu", path, j);
        free(out);
        free(blob);
    }
}
