/*
 * fuzz_ccr1_open.c - a whole (small) ccr1 blob under a fixed key: parse, derive, open every region.
 *
 * Invariants: nothing crashes; a region that fails is never released (its output reads as zeros and the
 * error names it); a region that opens re-seals to exactly the stored bytes (the nonce is deterministic)
 * and does not open under another index or final flag. The seed corpus holds valid blobs under the fixed
 * key (tests/fuzz/make_corpus.py). abort() on violation.
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

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void open_regions(const struct ccr_ccr1 *c, struct ccr_aead *a, const uint8_t *data, uint64_t n,
                         uint64_t regions, uint8_t *out, uint8_t *again)
{
    for (uint64_t i = 0; i < regions; i++) {
        uint64_t off = ccr_ccr1_region_offset(i, c->region_log2);
        size_t len = ccr_ccr1_region_plain_len(n, c->region_log2, i);
        bool final = i + 1 == regions;
        const uint8_t *ct = data + off, *tag = data + off + len;
        struct ccr_err err;
        ccr_err_clear(&err);
        memset(out, 0xa5, len);
        int rc = ccr_ccr1_open_region(c, a, i, final, ct, out, len, tag, &err);
        if (rc != 0) {
            CHECK(rc == -EBADMSG && err.code == -EBADMSG && err.offset == (int64_t)off);
            CHECK(all_zero(out, len));
            continue;
        }
        /* Opened: sealing the plaintext again gives the stored region back. */
        uint8_t tag2[CCR1_TAG_LEN];
        CHECK(ccr_ccr1_seal_region(c, a, i, final, out, again, len, tag2) == 0);
        CHECK(memcmp(again, ct, len) == 0 && memcmp(tag2, tag, CCR1_TAG_LEN) == 0);
        /* The nonce binds the index and the final flag. */
        memset(again, 0xa5, len);
        CHECK(ccr_ccr1_open_region(c, a, i + 1, final, ct, again, len, tag, NULL) != 0);
        CHECK(all_zero(again, len));
        if (len == c->region_size) { /* both flags are valid for a full region */
            memset(again, 0xa5, len);
            CHECK(ccr_ccr1_open_region(c, a, i, !final, ct, again, len, tag, NULL) != 0);
            CHECK(all_zero(again, len));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CCR1_HEADER_LEN)
        return 0;
    struct ccr_key key;
    for (int i = 0; i < CCR_KEY_LEN; i++)
        key.b[i] = (uint8_t)i;
    struct ccr_ccr1 c;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_ccr1_init_parse(&c, &key, data, &err);
    if (rc != 0) {
        CHECK((rc == -EBADMSG || rc == -ENOKEY) && err.code == rc);
        return 0;
    }
    uint64_t n = 0, regions = 0;
    rc = ccr_ccr1_plain_size(size, c.region_log2, &n, &regions, &err);
    if (rc != 0) {
        CHECK(rc == -EBADMSG);
        ccr_ccr1_fini(&c);
        return 0;
    }
    CHECK(n < size && regions >= 1);
    struct ccr_aead *a = NULL;
    size_t cap = n < c.region_size ? (size_t)n : (size_t)c.region_size;
    uint8_t *out = malloc(cap ? cap : 1), *again = malloc(cap ? cap : 1);
    if (ccr_aead_create(&a) == 0 && out && again)
        open_regions(&c, a, data, n, regions, out, again);
    ccr_aead_destroy(a);
    free(out);
    free(again);
    ccr_ccr1_fini(&c);
    return 0;
}
