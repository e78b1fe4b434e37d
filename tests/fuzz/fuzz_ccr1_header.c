/*
 * fuzz_ccr1_header.c - the ccr1 header parser, the reader's key setup and the range mapper.
 *
 * Input: a 64-byte header candidate, then (or, for short inputs, from the start) numbers for
 * ccr_ccr1_map_range. Invariants are checked against an independent 128-bit model; abort() on violation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ccr/crypto.h"
#include "fuzz.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

typedef unsigned __int128 u128;

/* The fixed key of the fuzz targets: 00 01 02 ... 1f (seed headers carry its key id). */
static void fixed_key(struct ccr_key *k)
{
    for (int i = 0; i < CCR_KEY_LEN; i++)
        k->b[i] = (uint8_t)i;
}

static bool header_valid_model(const uint8_t *h)
{
    if (memcmp(h, "CCR1", 4) != 0 || h[4] != 1 || h[5] < 12 || h[5] > 24 || h[6] || h[7])
        return false;
    for (int i = 56; i < 64; i++)
        if (h[i])
            return false;
    return true;
}

static void fuzz_header(const uint8_t *h)
{
    struct ccr_ccr1_info info;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_ccr1_header_parse(h, &info, &err);
    struct ccr_key key;
    fixed_key(&key);
    struct ccr_ccr1 c;
    struct ccr_err err2;
    ccr_err_clear(&err2);
    int rc2 = ccr_ccr1_init_parse(&c, &key, h, &err2);
    if (!header_valid_model(h)) {
        CHECK(rc == -EBADMSG && err.code == -EBADMSG && err.msg[0] != '\0');
        CHECK(err.offset >= 0 && err.offset < CCR1_HEADER_LEN);
        /* The byte named is at fault: magic, version, log2 or a non-zero reserved byte. */
        int64_t o = err.offset;
        CHECK((o < 4 && h[o] != (uint8_t) "CCR1"[o]) || (o == 4 && h[4] != 1) ||
              (o == 5 && (h[5] < 12 || h[5] > 24)) || ((o == 6 || o == 7 || o >= 56) && h[o] != 0));
        CHECK(rc2 == -EBADMSG && err2.offset == err.offset && strcmp(err.msg, err2.msg) == 0);
        return;
    }
    CHECK(rc == 0);
    CHECK(info.version == 1 && info.region_log2 == h[5]);
    CHECK(memcmp(info.key_id, h + 8, 16) == 0 && memcmp(info.salt, h + 24, 32) == 0);
    uint8_t id[CCR_KEY_ID_LEN];
    CHECK(ccr_key_id(&key, id) == 0);
    if (memcmp(id, h + 8, CCR_KEY_ID_LEN) != 0) {
        CHECK(rc2 == -ENOKEY && err2.code == -ENOKEY && err2.offset == 8);
        return;
    }
    CHECK(rc2 == 0);
    CHECK(c.region_log2 == h[5] && c.region_size == (uint64_t)1 << h[5]);
    CHECK(memcmp(c.header, h, CCR1_HEADER_LEN) == 0);
    ccr_ccr1_fini(&c);
}

static void fuzz_map(struct fuzz_reader *r)
{
    unsigned mode = (unsigned)fuzz_take(r, 1);
    unsigned log2 = (unsigned)fuzz_take(r, 1);
    uint64_t n = fuzz_take(r, 8), off = fuzz_take(r, 8), len = fuzz_take(r, 8);
    if (mode & 1) /* mostly valid region sizes */
        log2 = 12 + log2 % 13;
    if (mode & 2) /* small plaintexts, where every region boundary is reachable */
        n %= (uint64_t)1 << 26;
    if ((mode & 4) && n < UINT64_MAX) /* offsets inside the plaintext */
        off %= n + 1;
    if (mode & 8)
        len %= (uint64_t)1 << 26;

    bool log_ok = log2 >= 12 && log2 <= 24;
    u128 rr = (u128)1 << (log_ok ? log2 : 12);
    u128 regions = n == 0 ? 1 : ((u128)n + rr - 1) / rr;
    u128 blob = 64 + (u128)n + 16 * regions;
    bool fits = blob <= UINT64_MAX;

    struct ccr_ccr1_span sp;
    int rc = ccr_ccr1_map_range(n, log2, off, len, &sp);
    if (!log_ok || off > n || !fits) {
        CHECK(rc == -EINVAL);
        if (!log_ok) {
            CHECK(ccr_ccr1_region_count(n, log2) == 0 && ccr_ccr1_blob_size(n, log2) == 0);
            CHECK(ccr_ccr1_region_offset(off, log2) == 0 && ccr_ccr1_region_plain_len(n, log2, 0) == 0);
        } else if (!fits) {
            CHECK(ccr_ccr1_blob_size(n, log2) == UINT64_MAX);
        }
        return;
    }
    CHECK(rc == 0);
    CHECK(ccr_ccr1_region_count(n, log2) == (uint64_t)regions);
    CHECK(ccr_ccr1_blob_size(n, log2) == (uint64_t)blob);
    uint64_t end = len > n - off ? n : off + len;
    CHECK(sp.first_region <= sp.last_region && (u128)sp.last_region < regions);
    if (end > off) {
        CHECK(sp.first_region == off >> log2 && sp.last_region == (end - 1) >> log2);
    } else {
        uint64_t want = off == n ? (uint64_t)regions - 1 : off >> log2;
        CHECK(sp.first_region == want && sp.last_region == want);
    }
    u128 stride = rr + 16;
    u128 first_off = 64 + (u128)sp.first_region * stride;
    uint64_t last_len = ccr_ccr1_region_plain_len(n, log2, sp.last_region);
    u128 stored_end = 64 + (u128)sp.last_region * stride + last_len + 16;
    CHECK(sp.stored_offset == (uint64_t)first_off);
    CHECK(ccr_ccr1_region_offset(sp.first_region, log2) == (uint64_t)first_off);
    CHECK((u128)sp.stored_offset + sp.stored_len == stored_end && stored_end <= blob);
    /* The regions cover the plaintext range. */
    CHECK((u128)sp.first_region * rr <= off && (u128)end <= (u128)sp.last_region * rr + last_len);
    CHECK(last_len <= rr && (last_len > 0 || n == 0 || sp.last_region + 1 < regions));
    /* The reader's inverse agrees. */
    uint64_t back_n = 0, back_regions = 0;
    CHECK(ccr_ccr1_plain_size((uint64_t)blob, log2, &back_n, &back_regions, NULL) == 0);
    CHECK(back_n == n && back_regions == (uint64_t)regions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    if (size >= CCR1_HEADER_LEN) {
        fuzz_header(data);
        r.p = data + CCR1_HEADER_LEN;
        r.left = size - CCR1_HEADER_LEN;
    }
    fuzz_map(&r);
    return 0;
}
