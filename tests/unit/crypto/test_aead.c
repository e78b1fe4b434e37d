/*
 * test_aead.c - AES-256-GCM: known answers (McGrew-Viega GCM spec test cases 13-16, NIST CAVP
 * gcmEncryptExtIV256), tamper-every-byte of ciphertext, tag, AAD and IV (-EBADMSG, output wiped),
 * in-place and out-of-place at awkward lengths, key/direction caching in one context, argument checks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccr/crypto.h"

static size_t aead_unhex(const char *hex, uint8_t *out, size_t cap)
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

struct gcm_vector {
    const char *name, *key, *iv, *pt, *aad, *ct, *tag;
};

#define GCM_K15 "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define GCM_P15                                                        \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define GCM_C15                                                        \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"

static const struct gcm_vector gcm_vectors[] = {
    /* The Galois/Counter Mode of Operation (McGrew, Viega), AES-256 test cases with 96-bit IVs. */
    {"gcm-spec-13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"gcm-spec-14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"gcm-spec-15", GCM_K15, "cafebabefacedbaddecaf888", GCM_P15 "1aafd255", "", GCM_C15 "898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"gcm-spec-16", GCM_K15, "cafebabefacedbaddecaf888", GCM_P15, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     GCM_C15, "76fc6ece0f4e1768cddf8853bb2d551b"},
    /* NIST CAVP gcmEncryptExtIV256.rsp, Taglen 128, IVlen 96, Count 0 of each section. */
    {"cavp-pt0-aad0", "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
     "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
    {"cavp-pt0-aad128", "78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223",
     "d79cf22d504cc793c3fb6c8a", "", "b96baa8c1c75a671bfb2d08d06be5f36", "",
     "3e5d486aa2e30b22e040b85723a06e76"},
    {"cavp-pt128-aad0", "31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22",
     "0d18e06c7c725ac9e362e1ce", "2db5168e932556f8089a0622981d017d", "", "fa4362189661d163fcd6a56d8bf0405a",
     "d636ac1bbedd5cc3ee727dc2ab4a9489"},
    {"cavp-pt128-aad128", "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
     "ac93a1a6145299bde902f21a", "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
};

/* A decoded vector. */
struct gcm_case {
    uint8_t key[32], iv[12], pt[64], aad[32], ct[64], tag[16];
    size_t pt_len, aad_len;
};

static void gcm_load(const struct gcm_vector *v, struct gcm_case *c)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(aead_unhex(v->key, c->key, sizeof(c->key)), 32);
    cr_assert_eq(aead_unhex(v->iv, c->iv, sizeof(c->iv)), 12);
    c->pt_len = aead_unhex(v->pt, c->pt, sizeof(c->pt));
    c->aad_len = aead_unhex(v->aad, c->aad, sizeof(c->aad));
    cr_assert_eq(aead_unhex(v->ct, c->ct, sizeof(c->ct)), c->pt_len);
    cr_assert_eq(aead_unhex(v->tag, c->tag, sizeof(c->tag)), 16);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

Test(crypto_aead, known_answers)
{
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);
    for (size_t i = 0; i < sizeof(gcm_vectors) / sizeof(gcm_vectors[0]); i++) {
        const struct gcm_vector *v = &gcm_vectors[i];
        struct gcm_case c;
        gcm_load(v, &c);
        uint8_t out[64], tag[16], back[64];
        const void *aad = c.aad_len ? c.aad : NULL;

        memset(out, 0xee, sizeof(out));
        cr_assert_eq(ccr_aead_seal(a, c.key, c.iv, aad, c.aad_len, c.pt, out, c.pt_len, tag), 0, "%s",
                     v->name);
        cr_assert_eq(memcmp(out, c.ct, c.pt_len), 0, "%s: ciphertext", v->name);
        cr_assert_eq(memcmp(tag, c.tag, 16), 0, "%s: tag", v->name);
        if (c.pt_len < sizeof(out))
            cr_assert_eq(out[c.pt_len], 0xee, "%s: wrote past len", v->name);

        memset(back, 0xee, sizeof(back));
        cr_assert_eq(ccr_aead_open(a, c.key, c.iv, aad, c.aad_len, c.ct, back, c.pt_len, c.tag), 0, "%s",
                     v->name);
        cr_assert_eq(memcmp(back, c.pt, c.pt_len), 0, "%s: plaintext", v->name);
    }
    ccr_aead_destroy(a);
}

/* Opens c (with one field altered by the caller) and expects -EBADMSG with the output all zeros. */
static void expect_reject(struct ccr_aead *a, const struct gcm_case *c, const char *what, size_t byte)
{
    uint8_t out[64];
    memset(out, 0xee, sizeof(out));
    int rc = ccr_aead_open(a, c->key, c->iv, c->aad_len ? c->aad : NULL, c->aad_len, c->ct, out, c->pt_len,
                           c->tag);
    cr_assert_eq(rc, -EBADMSG, "%s byte %zu: rc %d", what, byte, rc);
    cr_assert(all_zero(out, c->pt_len), "%s byte %zu: output not wiped", what, byte);
}

Test(crypto_aead, tamper_every_byte)
{
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);
    /* Test case 16 (60 bytes of plaintext, 20 of AAD) and CAVP pt0-aad128 (tag and AAD only). */
    static const size_t which[] = {3, 5};
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t w = 0; w < sizeof(which) / sizeof(which[0]); w++) {
        struct gcm_case c;
        gcm_load(&gcm_vectors[which[w]], &c);
        for (size_t f = 0; f < sizeof(flips); f++) {
            for (size_t i = 0; i < c.pt_len; i++) {
                c.ct[i] ^= flips[f];
                expect_reject(a, &c, "ciphertext", i);
                c.ct[i] ^= flips[f];
            }
            for (size_t i = 0; i < 16; i++) {
                c.tag[i] ^= flips[f];
                expect_reject(a, &c, "tag", i);
                c.tag[i] ^= flips[f];
            }
            for (size_t i = 0; i < c.aad_len; i++) {
                c.aad[i] ^= flips[f];
                expect_reject(a, &c, "aad", i);
                c.aad[i] ^= flips[f];
            }
            for (size_t i = 0; i < 12; i++) {
                c.iv[i] ^= flips[f];
                expect_reject(a, &c, "iv", i);
                c.iv[i] ^= flips[f];
            }
            for (size_t i = 0; i < 32; i++) {
                c.key[i] ^= flips[f];
                expect_reject(a, &c, "key", i);
                c.key[i] ^= flips[f];
            }
        }
        /* Truncated and extended AAD, and a shorter ciphertext, are rejected too. */
        if (c.aad_len) {
            c.aad_len--;
            expect_reject(a, &c, "aad length", c.aad_len);
            c.aad_len += 2;
            expect_reject(a, &c, "aad length", c.aad_len);
            c.aad_len--;
        }
        if (c.pt_len) {
            c.pt_len--;
            expect_reject(a, &c, "ciphertext length", c.pt_len);
            c.pt_len++;
        }
        /* Untouched, it still opens: the context recovered from all those failures. */
        uint8_t out[64];
        cr_assert_eq(
            ccr_aead_open(a, c.key, c.iv, c.aad_len ? c.aad : NULL, c.aad_len, c.ct, out, c.pt_len, c.tag),
            0);
    }
    ccr_aead_destroy(a);
}

Test(crypto_aead, tamper_in_place_wipes)
{
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);
    struct gcm_case c;
    gcm_load(&gcm_vectors[3], &c);
    uint8_t buf[64];
    memcpy(buf, c.ct, c.pt_len);
    buf[7] ^= 1;
    cr_assert_eq(ccr_aead_open(a, c.key, c.iv, c.aad, c.aad_len, buf, buf, c.pt_len, c.tag), -EBADMSG);
    cr_assert(all_zero(buf, c.pt_len));
    ccr_aead_destroy(a);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

Test(crypto_aead, lengths_in_place_and_out_of_place)
{
    static const size_t lens[] = {0, 1, 15, 16, 17, 4096, (1u << 20) + 3};
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);
    uint8_t key[32], iv[12];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 12; i++)
        iv[i] = (uint8_t)(0xa0 + i);
    static const char aad[] = "header bytes";

    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        size_t n = lens[li];
        uint8_t *pt = pattern(n, (uint32_t)li);
        uint8_t *ct = malloc(n + 1);
        uint8_t *buf = malloc(n + 1);
        uint8_t *back = malloc(n + 1);
        cr_assert(ct && buf && back);
        uint8_t tag1[16], tag2[16];

        /* Out of place. */
        ct[n] = 0xee;
        cr_assert_eq(ccr_aead_seal(a, key, iv, aad, sizeof(aad), pt, ct, n, tag1), 0, "len %zu", n);
        cr_assert_eq(ct[n], 0xee, "len %zu: wrote past len", n);
        if (n >= 16)
            cr_assert_neq(memcmp(ct, pt, n), 0, "len %zu: not encrypted", n);

        /* In place gives the same bytes. */
        if (n)
            memcpy(buf, pt, n);
        cr_assert_eq(ccr_aead_seal(a, key, iv, aad, sizeof(aad), buf, buf, n, tag2), 0);
        cr_assert_eq(memcmp(buf, ct, n), 0, "len %zu: in-place ciphertext differs", n);
        cr_assert_eq(memcmp(tag1, tag2, 16), 0, "len %zu: in-place tag differs", n);

        /* Open out of place and in place. */
        back[n] = 0xee;
        cr_assert_eq(ccr_aead_open(a, key, iv, aad, sizeof(aad), ct, back, n, tag1), 0, "len %zu", n);
        cr_assert_eq(memcmp(back, pt, n), 0, "len %zu", n);
        cr_assert_eq(back[n], 0xee);
        cr_assert_eq(ccr_aead_open(a, key, iv, aad, sizeof(aad), buf, buf, n, tag1), 0, "len %zu", n);
        cr_assert_eq(memcmp(buf, pt, n), 0, "len %zu", n);

        /* The last byte of a long message is authenticated too; failure wipes all of it. */
        if (n) {
            memcpy(buf, ct, n);
            buf[n - 1] ^= 0x40;
            cr_assert_eq(ccr_aead_open(a, key, iv, aad, sizeof(aad), buf, buf, n, tag1), -EBADMSG);
            cr_assert(all_zero(buf, n), "len %zu: not wiped", n);
        }
        free(pt);
        free(ct);
        free(buf);
        free(back);
    }
    ccr_aead_destroy(a);
}

/* Runs one seal or open with a fresh context and returns out || tag. */
static void fresh_op(bool seal, const uint8_t *key, const uint8_t *iv, const uint8_t *in, size_t n,
                     uint8_t *tag, uint8_t *out)
{
    struct ccr_aead *f = NULL;
    cr_assert_eq(ccr_aead_create(&f), 0);
    if (seal)
        cr_assert_eq(ccr_aead_seal(f, key, iv, "A", 1, in, out, n, tag), 0);
    else
        cr_assert_eq(ccr_aead_open(f, key, iv, "A", 1, in, out, n, tag), 0);
    ccr_aead_destroy(f);
}

Test(crypto_aead, one_context_two_keys_both_directions)
{
    enum { N = 1000 };
    uint8_t k1[32], k2[32], iv[12] = {0};
    memset(k1, 0x11, sizeof(k1));
    memset(k2, 0x22, sizeof(k2));
    uint8_t *pt = pattern(N, 42);
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(&a), 0);

    uint8_t ct1[N], ct2[N], tag1[16], tag2[16], want[N], want_tag[16], got[N];
    for (int round = 0; round < 6; round++) {
        iv[11] = (uint8_t)round;
        /* Alternate keys and directions in the shared context; check each against a fresh context. */
        cr_assert_eq(ccr_aead_seal(a, k1, iv, "A", 1, pt, ct1, N, tag1), 0);
        fresh_op(true, k1, iv, pt, N, want_tag, want);
        cr_assert_eq(memcmp(ct1, want, N), 0, "round %d: seal k1", round);
        cr_assert_eq(memcmp(tag1, want_tag, 16), 0, "round %d: tag k1", round);

        cr_assert_eq(ccr_aead_seal(a, k2, iv, "A", 1, pt, ct2, N, tag2), 0);
        fresh_op(true, k2, iv, pt, N, want_tag, want);
        cr_assert_eq(memcmp(ct2, want, N), 0, "round %d: seal k2", round);
        cr_assert_eq(memcmp(tag2, want_tag, 16), 0, "round %d: tag k2", round);
        cr_assert_neq(memcmp(ct1, ct2, N), 0);

        cr_assert_eq(ccr_aead_open(a, k1, iv, "A", 1, ct1, got, N, tag1), 0, "round %d: open k1", round);
        cr_assert_eq(memcmp(got, pt, N), 0);
        fresh_op(false, k1, iv, ct1, N, tag1, want);
        cr_assert_eq(memcmp(want, pt, N), 0);

        /* The wrong key for this ciphertext fails even though it is the other cached one. */
        cr_assert_eq(ccr_aead_open(a, k2, iv, "A", 1, ct1, got, N, tag1), -EBADMSG);
        cr_assert(all_zero(got, N));

        cr_assert_eq(ccr_aead_open(a, k2, iv, "A", 1, ct2, got, N, tag2), 0, "round %d: open k2", round);
        cr_assert_eq(memcmp(got, pt, N), 0);

        /* Same key twice in a row, seal after open: the cached schedule with a new direction. */
        cr_assert_eq(ccr_aead_seal(a, k2, iv, "A", 1, pt, got, N, want_tag), 0);
        cr_assert_eq(memcmp(got, ct2, N), 0);
        cr_assert_eq(memcmp(want_tag, tag2, 16), 0);

        /* A key that differs in its last byte only is a different key. */
        k2[31] ^= (uint8_t)(round + 1);
        cr_assert_eq(ccr_aead_open(a, k2, iv, "A", 1, ct2, got, N, tag2), -EBADMSG);
        k2[31] ^= (uint8_t)(round + 1);
    }
    ccr_aead_destroy(a);
    free(pt);
}

Test(crypto_aead, invalid_arguments)
{
    struct ccr_aead *a = NULL;
    cr_assert_eq(ccr_aead_create(NULL), -EINVAL);
    cr_assert_eq(ccr_aead_create(&a), 0);
    uint8_t key[32] = {0}, iv[12] = {0}, tag[16] = {0}, buf[16] = {0};

    cr_assert_eq(ccr_aead_seal(NULL, key, iv, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, NULL, iv, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, key, NULL, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, key, iv, NULL, 0, buf, buf, 16, NULL), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, key, iv, NULL, 0, NULL, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, key, iv, NULL, 0, buf, NULL, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_seal(a, key, iv, NULL, 3, buf, buf, 16, tag), -EINVAL);
    /* len 0 with NULL buffers and aad_len 0 with NULL aad are fine. */
    cr_assert_eq(ccr_aead_seal(a, key, iv, NULL, 0, NULL, NULL, 0, tag), 0);
    cr_assert_eq(ccr_aead_open(a, key, iv, NULL, 0, NULL, NULL, 0, tag), 0);

    cr_assert_eq(ccr_aead_open(NULL, key, iv, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, NULL, iv, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, key, NULL, NULL, 0, buf, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, key, iv, NULL, 0, buf, buf, 16, NULL), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, key, iv, NULL, 0, NULL, buf, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, key, iv, NULL, 0, buf, NULL, 16, tag), -EINVAL);
    cr_assert_eq(ccr_aead_open(a, key, iv, NULL, 3, buf, buf, 16, tag), -EINVAL);

    ccr_aead_destroy(a);
    ccr_aead_destroy(NULL);
}
