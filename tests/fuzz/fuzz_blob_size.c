/*
 * fuzz_blob_size.c - blob size to plaintext size, for ccr1 and cleanroom-cse.
 *
 * Input-derived blob size, region_log2, chunk size and trailer. Invariant: whenever the inverse succeeds,
 * the forward formula gives the blob size back and the counts match; whenever it fails, no plaintext size
 * produces that blob size (checked around the only candidates). abort() on violation.
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

static void fuzz_ccr1(struct fuzz_reader *r)
{
    unsigned mode = (unsigned)fuzz_take(r, 1);
    unsigned log2 = (unsigned)fuzz_take(r, 1);
    uint64_t s = fuzz_take(r, 8);
    if (mode & 1)
        log2 = 12 + log2 % 13;
    bool log_ok = log2 >= 12 && log2 <= 24;
    u128 stride = ((u128)1 << (log_ok ? log2 : 12)) + 16;
    if (mode & 2) { /* near a region boundary: 64 + k (R + 16) + small delta */
        u128 v = 64 + (u128)(s >> 16) % ((u128)1 << 40) * stride + (s & 0x3f) - 0x20;
        s = (uint64_t)v;
    }
    uint64_t n = 0, regions = 0;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_ccr1_plain_size(s, log2, &n, &regions, &err);
    if (!log_ok) {
        CHECK(rc == -EINVAL);
        return;
    }
    if (rc == 0) {
        CHECK(ccr_ccr1_blob_size(n, log2) == s);
        CHECK(ccr_ccr1_region_count(n, log2) == regions && regions >= 1);
        uint64_t last = ccr_ccr1_region_plain_len(n, log2, regions - 1);
        CHECK(last <= ((uint64_t)1 << log2) && (last >= 1 || regions == 1));
        CHECK(ccr_ccr1_region_offset(regions - 1, log2) + last + 16 == s);
        return;
    }
    CHECK(rc == -EBADMSG && err.code == -EBADMSG && err.msg[0] != '\0');
    /* Any N with blob_size(N) = S has n(N) regions where 64 + 16 + (n-1)(R+16) <= S <= 64 + n (R + 16). */
    if (s < 80)
        return;
    u128 q = ((u128)s - 64 + stride - 1) / stride;
    for (u128 m = q > 1 ? q - 1 : 1; m <= q + 1; m++) {
        u128 overhead = 64 + 16 * m;
        if (overhead > s)
            continue;
        uint64_t cand = (uint64_t)((u128)s - overhead);
        CHECK(ccr_ccr1_blob_size(cand, log2) != s);
    }
}

static void fuzz_cse(struct fuzz_reader *r)
{
    unsigned mode = (unsigned)fuzz_take(r, 1);
    uint64_t b = fuzz_take(r, 4);
    uint64_t s = fuzz_take(r, 8);
    uint8_t trailer[CCR_CSE_TRAILER_LEN];
    for (int i = 0; i < CCR_CSE_TRAILER_LEN; i++)
        trailer[i] = (uint8_t)fuzz_take(r, 1);
    if (mode & 1) /* a valid chunk size */
        b = CCR_CSE_CHUNK_MIN + b % (CCR_CSE_CHUNK_MAX - CCR_CSE_CHUNK_MIN + 1);
    if (mode & 2) /* small chunk sizes, where the arithmetic has the most edges */
        b = CCR_CSE_CHUNK_MIN + b % 64;
    bool b_ok = b >= CCR_CSE_CHUNK_MIN && b <= CCR_CSE_CHUNK_MAX;
    u128 stride = (b_ok ? b : CCR_CSE_CHUNK_MIN) + 28;
    if (mode & 4) { /* a well-formed size, give or take a few bytes */
        u128 v = (u128)(s >> 8) % ((u128)1 << 32) * stride + 8 + ((s & 0xff) < 0xc0 ? 0 : (s & 0x7) - 4);
        s = (uint64_t)v;
    }
    if (mode & 8) { /* a plausible pad */
        uint64_t pad = 0;
        for (int i = 0; i < 8; i++)
            pad = (pad << 8) | trailer[i];
        pad %= (b_ok ? b : 16) + 2;
        ccr_cse_trailer(pad, trailer);
    }
    uint64_t pad = 0;
    for (int i = 0; i < 8; i++)
        pad = (pad << 8) | trailer[i];

    uint64_t n = 0, k = 0;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_cse_plain_size(s, b, trailer, &n, &k, &err);
    if (!b_ok) {
        CHECK(rc == -EINVAL);
        CHECK(ccr_cse_chunk_count(s, b) == 0 && ccr_cse_blob_size(s, b) == 0);
        return;
    }
    if (s == 0) {
        CHECK(rc == 0 && n == 0 && k == 0);
        return;
    }
    u128 kk = s / stride;
    if (s % stride != 8 || pad > b || (u128)pad > kk * b) {
        CHECK(rc == -EBADMSG && err.code == -EBADMSG && err.msg[0] != '\0');
        return;
    }
    CHECK(rc == 0);
    CHECK(k == (uint64_t)kk && (u128)n == kk * b - pad);
    if (pad < b || k == 0) {
        CHECK(ccr_cse_blob_size(n, b) == s);
        CHECK(ccr_cse_chunk_count(n, b) == k);
    } else { /* pad == B: a stored chunk of nothing but padding, one more than the writer would make */
        CHECK(ccr_cse_blob_size(n, b) == s - (uint64_t)stride);
        CHECK(ccr_cse_chunk_count(n, b) + 1 == k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    fuzz_ccr1(&r);
    fuzz_cse(&r);
    return 0;
}
