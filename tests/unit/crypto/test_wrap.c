/*
 * test_wrap.c - RSA KEKs and DEK wrapping: generation, PEM round trips, wrap/unwrap, wrong KEK, public
 * KEK, bad input, rejected keys (1024-bit RSA, EC, Ed25519, encrypted), and interoperability with the
 * openssl command line in both directions (pkeyutl RSA-OAEP SHA-256/MGF1-SHA256), including keys that
 * openssl generated as PKCS#8 and converted to PKCS#1.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr/crypto.h"

/* ---- helpers ------------------------------------------------------------------------------------------ */

#define OPENSSL_BIN  "/usr/bin/openssl"
#define OAEP_OPTIONS "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256"

static char wrap_dir[64];

static void wrap_dir_make(void)
{
    snprintf(wrap_dir, sizeof(wrap_dir), "/tmp/ccr-test-wrap-XXXXXX");
    cr_assert_not_null(mkdtemp(wrap_dir));
}

static void wrap_dir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", wrap_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", wrap_dir);
}

static void wpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", wrap_dir, name);
}

/* Runs a shell command in the test directory; asserts it succeeds. */
static void run(const char *fmt, ...) CCR_PRINTF(1, 2);
static void run(const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", wrap_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

/* Reads a file of the test directory into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *name, size_t *out_len)
{
    char p[256];
    wpath(p, sizeof(p), name);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "cannot open %s", p);
    char *buf = malloc(65536);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    if (out_len)
        *out_len = n;
    return buf;
}

static void spit(const char *name, const void *data, size_t n)
{
    char p[256];
    wpath(p, sizeof(p), name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static struct ccr_kek *gen(unsigned bits)
{
    struct ccr_kek *k = NULL;
    cr_assert_eq(ccr_kek_generate(bits, &k), 0, "generate %u", bits);
    cr_assert_not_null(k);
    return k;
}

static struct ccr_kek *load_pem_file(const char *name)
{
    size_t n;
    char *pem = slurp(name, &n);
    struct ccr_kek *k = NULL;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_kek_from_pem(pem, n, &k, &err);
    cr_assert_eq(rc, 0, "%s: %d %s", name, rc, err.msg);
    free(pem);
    return k;
}

static struct ccr_kek *kek_public_half(const struct ccr_kek *k)
{
    char *pem = NULL;
    size_t n = 0;
    cr_assert_eq(ccr_kek_public_pem(k, &pem, &n), 0);
    struct ccr_kek *pub = NULL;
    cr_assert_eq(ccr_kek_from_pem(pem, n, &pub, NULL), 0);
    ccr_free(pem);
    return pub;
}

/* Wraps dek with `wrapper`, checks the format, unwraps with `unwrapper` and compares. */
static void round_trip(const struct ccr_kek *wrapper, const struct ccr_kek *unwrapper)
{
    struct ccr_key dek, back;
    cr_assert_eq(ccr_key_generate(&dek), 0);
    char *b64 = NULL;
    cr_assert_eq(ccr_key_wrap(wrapper, &dek, &b64), 0);
    size_t modlen = ccr_kek_bits(wrapper) / 8;
    cr_assert_eq(strlen(b64), CCR_BASE64_LEN(modlen));
    uint8_t raw[512];
    cr_assert_eq(ccr_base64_decode(b64, strlen(b64), raw, sizeof(raw)), (int)modlen);
    memset(&back, 0, sizeof(back));
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(unwrapper, b64, strlen(b64), &back, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(dek.b, back.b, 32), 0);
    ccr_free(b64);
}

/* ---- generation and PEM ------------------------------------------------------------------------------- */

Test(crypto_wrap, generate_sizes)
{
    static const unsigned ok[] = {2048, 3072};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct ccr_kek *k = gen(ok[i]);
        cr_assert_eq(ccr_kek_bits(k), ok[i]);
        cr_assert(ccr_kek_is_private(k));
        round_trip(k, k);
        ccr_kek_destroy(k);
    }
    static const unsigned bad[] = {0, 512, 1024, 2047, 2049, 8192};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ccr_kek *k = (struct ccr_kek *)0x1;
        cr_assert_eq(ccr_kek_generate(bad[i], &k), -EINVAL, "bits %u", bad[i]);
        cr_assert_eq(k, (struct ccr_kek *)0x1, "out written on failure");
    }
    cr_assert_eq(ccr_kek_generate(2048, NULL), -EINVAL);
    ccr_kek_destroy(NULL);
    cr_assert_not(ccr_kek_is_private(NULL));
    cr_assert_eq(ccr_kek_bits(NULL), 0);
}

Test(crypto_wrap, generate_4096)
{
    struct ccr_kek *k = gen(4096);
    cr_assert_eq(ccr_kek_bits(k), 4096);
    round_trip(k, k);
    struct ccr_kek *pub = kek_public_half(k);
    cr_assert_eq(ccr_kek_bits(pub), 4096);
    round_trip(pub, k);
    ccr_kek_destroy(pub);
    ccr_kek_destroy(k);
}

Test(crypto_wrap, pem_round_trips)
{
    struct ccr_kek *k = gen(2048);
    char *priv = NULL, *pub = NULL, *priv2 = NULL, *pub2 = NULL, *pub3 = NULL;
    size_t priv_len = 0, pub_len = 0, priv2_len = 0, pub2_len = 0, pub3_len = 0;

    cr_assert_eq(ccr_kek_private_pem(k, &priv, &priv_len), 0);
    cr_assert_eq(strlen(priv), priv_len);
    cr_assert_eq(strncmp(priv, "-----BEGIN PRIVATE KEY-----\n", 28), 0, "not PKCS#8: %.40s", priv);
    cr_assert_eq(ccr_kek_public_pem(k, &pub, &pub_len), 0);
    cr_assert_eq(strlen(pub), pub_len);
    cr_assert_eq(strncmp(pub, "-----BEGIN PUBLIC KEY-----\n", 27), 0, "not SPKI: %.40s", pub);

    /* Private PEM -> kek -> the same private and public PEM. */
    struct ccr_kek *k2 = NULL;
    cr_assert_eq(ccr_kek_from_pem(priv, priv_len, &k2, NULL), 0);
    cr_assert(ccr_kek_is_private(k2));
    cr_assert_eq(ccr_kek_bits(k2), 2048);
    cr_assert_eq(ccr_kek_private_pem(k2, &priv2, &priv2_len), 0);
    cr_assert_eq(priv2_len, priv_len);
    cr_assert_str_eq(priv2, priv);
    cr_assert_eq(ccr_kek_public_pem(k2, &pub2, &pub2_len), 0);
    cr_assert_str_eq(pub2, pub);

    /* Public PEM -> a public-only kek. */
    struct ccr_kek *p = NULL;
    cr_assert_eq(ccr_kek_from_pem(pub, pub_len, &p, NULL), 0);
    cr_assert_not(ccr_kek_is_private(p));
    cr_assert_eq(ccr_kek_bits(p), 2048);
    cr_assert_eq(ccr_kek_public_pem(p, &pub3, &pub3_len), 0);
    cr_assert_str_eq(pub3, pub);
    char *none = (char *)0x1;
    size_t none_len = 7;
    cr_assert_eq(ccr_kek_private_pem(p, &none, &none_len), -EINVAL);
    cr_assert_eq(none, (char *)0x1);
    cr_assert_eq(none_len, 7);

    /* Keys wrapped by any of them unwrap with any private one. */
    round_trip(p, k);
    round_trip(k, k2);
    round_trip(p, k2);

    /* The PEM need not be NUL-terminated; the length is what counts. */
    char *copy = malloc(pub_len);
    memcpy(copy, pub, pub_len);
    struct ccr_kek *p2 = NULL;
    cr_assert_eq(ccr_kek_from_pem(copy, pub_len, &p2, NULL), 0);
    free(copy);

    cr_assert_eq(ccr_kek_private_pem(NULL, &none, &none_len), -EINVAL);
    cr_assert_eq(ccr_kek_public_pem(k, NULL, &none_len), -EINVAL);
    cr_assert_eq(ccr_kek_public_pem(k, &none, NULL), -EINVAL);

    ccr_wipe(priv, priv_len);
    ccr_free(priv);
    ccr_wipe(priv2, priv2_len);
    ccr_free(priv2);
    ccr_free(pub);
    ccr_free(pub2);
    ccr_free(pub3);
    ccr_kek_destroy(p2);
    ccr_kek_destroy(p);
    ccr_kek_destroy(k2);
    ccr_kek_destroy(k);
}

/* ---- wrap and unwrap ---------------------------------------------------------------------------------- */

Test(crypto_wrap, wrap_format_and_randomized)
{
    struct ccr_kek *k = gen(2048);
    struct ccr_key dek, back;
    for (int i = 0; i < 32; i++)
        dek.b[i] = (uint8_t)(0xc0 + i);
    char *w1 = NULL, *w2 = NULL;
    cr_assert_eq(ccr_key_wrap(k, &dek, &w1), 0);
    cr_assert_eq(ccr_key_wrap(k, &dek, &w2), 0);
    cr_assert_eq(strlen(w1), CCR_BASE64_LEN(256));
    cr_assert_eq(strlen(w1), 344);
    uint8_t raw[300];
    cr_assert_eq(ccr_base64_decode(w1, strlen(w1), raw, sizeof(raw)), 256, "not base64 of 256 bytes");
    cr_assert_str_neq(w1, w2, "OAEP must be randomized");

    /* Both unwrap to the same DEK; surrounding whitespace is ignored. */
    cr_assert_eq(ccr_key_unwrap(k, w1, strlen(w1), &back, NULL), 0);
    cr_assert_eq(memcmp(back.b, dek.b, 32), 0);
    memset(&back, 0, sizeof(back));
    cr_assert_eq(ccr_key_unwrap(k, w2, strlen(w2), &back, NULL), 0);
    cr_assert_eq(memcmp(back.b, dek.b, 32), 0);
    char spaced[400];
    snprintf(spaced, sizeof(spaced), "\n  %s \r\n", w1);
    memset(&back, 0, sizeof(back));
    cr_assert_eq(ccr_key_unwrap(k, spaced, strlen(spaced), &back, NULL), 0);
    cr_assert_eq(memcmp(back.b, dek.b, 32), 0);

    cr_assert_eq(ccr_key_wrap(NULL, &dek, &w1), -EINVAL);
    cr_assert_eq(ccr_key_wrap(k, NULL, &w1), -EINVAL);
    cr_assert_eq(ccr_key_wrap(k, &dek, NULL), -EINVAL);
    ccr_free(w1);
    ccr_free(w2);
    ccr_kek_destroy(k);
}

Test(crypto_wrap, unwrap_failures, .init = wrap_dir_make, .fini = wrap_dir_remove)
{
    struct ccr_kek *k = gen(2048);
    struct ccr_kek *other = gen(2048);
    struct ccr_kek *big = gen(3072);
    struct ccr_kek *pub = kek_public_half(k);
    struct ccr_key dek, back;
    cr_assert_eq(ccr_key_generate(&dek), 0);
    char *w = NULL;
    cr_assert_eq(ccr_key_wrap(k, &dek, &w), 0);
    size_t n = strlen(w);
    struct ccr_err err;

    memset(&back, 0x77, sizeof(back));
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(other, w, n, &back, &err), -EBADMSG, "wrong KEK");
    cr_assert_eq(err.code, -EBADMSG);
    cr_assert_str_eq(err.msg, "cannot unwrap: wrong KEK or corrupt wrapped key");
    cr_assert_eq(back.b[0], 0x77, "out written on failure");

    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(big, w, n, &back, &err), -EBADMSG, "KEK of another size");
    cr_assert_neq(err.msg[0], '\0');

    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(pub, w, n, &back, &err), -EINVAL, "public KEK");
    cr_assert_neq(err.msg[0], '\0');

    /* Corrupt: change one symbol (staying valid base64), every few positions. */
    char *c = strdup(w);
    for (size_t i = 0; i + 4 < n; i += 37) {
        char save = c[i];
        c[i] = c[i] == 'A' ? 'B' : 'A';
        cr_assert_eq(ccr_key_unwrap(k, c, n, &back, NULL), -EBADMSG, "corrupt symbol %zu", i);
        c[i] = save;
    }
    cr_assert_eq(ccr_key_unwrap(k, c, n, &back, NULL), 0);

    /* Truncated and extended by a whole quantum: valid base64 of the wrong length. */
    cr_assert_eq(ccr_key_unwrap(k, c + 4, n - 4, &back, NULL), -EBADMSG);
    char *ext = malloc(n + 5);
    memcpy(ext, "AAAA", 4);
    memcpy(ext + 4, c, n + 1);
    cr_assert_eq(ccr_key_unwrap(k, ext, n + 4, &back, NULL), -EBADMSG);
    free(ext);

    /* Not base64 at all. */
    memset(&back, 0x77, sizeof(back));
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(k, "!!!!", 4, &back, &err), -EINVAL);
    cr_assert_neq(err.msg[0], '\0');
    c[10] = '*';
    cr_assert_eq(ccr_key_unwrap(k, c, n, &back, NULL), -EINVAL);
    cr_assert_eq(ccr_key_unwrap(k, w, n - 1, &back, NULL), -EINVAL, "padding cut off");
    cr_assert_eq(ccr_key_unwrap(k, "", 0, &back, NULL), -EBADMSG, "empty is valid base64 of 0 bytes");
    cr_assert_eq(back.b[0], 0x77, "out written on failure");

    /* A 2048-bit OAEP ciphertext of a 16-byte key decrypts but is not a DEK. */
    spit("short.bin", "0123456789abcdef", 16);
    char *pem = NULL;
    size_t pem_len = 0;
    cr_assert_eq(ccr_kek_public_pem(k, &pem, &pem_len), 0);
    spit("pub.pem", pem, pem_len);
    ccr_free(pem);
    run(OPENSSL_BIN " pkeyutl -encrypt -pubin -inkey pub.pem " OAEP_OPTIONS " -in short.bin -out short.enc");
    size_t enc_len = 0;
    char *enc = slurp("short.enc", &enc_len);
    cr_assert_eq(enc_len, 256);
    char b64[CCR_BASE64_LEN(256) + 1];
    cr_assert_eq(ccr_base64_encode(enc, enc_len, b64, sizeof(b64)), 344);
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_unwrap(k, b64, strlen(b64), &back, &err), -EBADMSG, "16-byte payload");
    free(enc);

    cr_assert_eq(ccr_key_unwrap(NULL, w, n, &back, NULL), -EINVAL);
    cr_assert_eq(ccr_key_unwrap(k, NULL, n, &back, NULL), -EINVAL);
    cr_assert_eq(ccr_key_unwrap(k, w, n, NULL, NULL), -EINVAL);

    free(c);
    ccr_free(w);
    ccr_kek_destroy(pub);
    ccr_kek_destroy(big);
    ccr_kek_destroy(other);
    ccr_kek_destroy(k);
}

/* ---- keys the openssl command line made --------------------------------------------------------------- */

static void expect_rejected(const char *name, const char *msg_part)
{
    size_t n;
    char *pem = slurp(name, &n);
    struct ccr_kek *k = (struct ccr_kek *)0x1;
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_kek_from_pem(pem, n, &k, &err), -EINVAL, "%s accepted", name);
    cr_assert_eq(k, (struct ccr_kek *)0x1, "%s: out written on failure", name);
    cr_assert_eq(err.code, -EINVAL);
    cr_assert_not_null(strstr(err.msg, msg_part), "%s: message '%s' lacks '%s'", name, err.msg, msg_part);
    free(pem);
}

Test(crypto_wrap, rejected_keys, .init = wrap_dir_make, .fini = wrap_dir_remove)
{
    run(OPENSSL_BIN " genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem 2>/dev/null");
    run(OPENSSL_BIN " pkey -in rsa1024.pem -pubout -out rsa1024.pub.pem");
    run(OPENSSL_BIN " genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem");
    run(OPENSSL_BIN " pkey -in ec.pem -pubout -out ec.pub.pem");
    run(OPENSSL_BIN " genpkey -algorithm ED25519 -out ed.pem");
    run(OPENSSL_BIN " genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes256 -pass pass:secret "
                    "-out enc.pem 2>/dev/null");

    expect_rejected("rsa1024.pem", "1024");
    expect_rejected("rsa1024.pub.pem", "1024");
    expect_rejected("ec.pem", "not an RSA key");
    expect_rejected("ec.pub.pem", "not an RSA key");
    expect_rejected("ed.pem", "not an RSA key");
    expect_rejected("enc.pem", "encrypted");

    spit("garbage.pem", "hello, world\n", 13);
    expect_rejected("garbage.pem", "not a PEM RSA key");
    /* A valid key cut short. */
    size_t n;
    char *pem = slurp("rsa1024.pem", &n);
    spit("cut.pem", pem, n / 2);
    free(pem);
    expect_rejected("cut.pem", "not a PEM RSA key");

    struct ccr_kek *k = NULL;
    cr_assert_eq(ccr_kek_from_pem("", 0, &k, NULL), -EINVAL);
    cr_assert_eq(ccr_kek_from_pem(NULL, 10, &k, NULL), -EINVAL);
    cr_assert_eq(ccr_kek_from_pem("x", 1, NULL, NULL), -EINVAL);
}

Test(crypto_wrap, openssl_pkcs8_and_pkcs1_keys, .init = wrap_dir_make, .fini = wrap_dir_remove)
{
    run(OPENSSL_BIN " genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out p8.pem 2>/dev/null");
    run(OPENSSL_BIN " pkey -in p8.pem -pubout -out spki.pem");
    run(OPENSSL_BIN " rsa -in p8.pem -traditional -out p1.pem 2>/dev/null");
    run(OPENSSL_BIN " rsa -in p8.pem -RSAPublicKey_out -out p1pub.pem 2>/dev/null");

    /* Check that the files are in the formats this test means. */
    char *s = slurp("p8.pem", NULL);
    cr_assert_eq(strncmp(s, "-----BEGIN PRIVATE KEY-----", 27), 0);
    free(s);
    s = slurp("p1.pem", NULL);
    cr_assert_eq(strncmp(s, "-----BEGIN RSA PRIVATE KEY-----", 31), 0);
    free(s);
    s = slurp("spki.pem", NULL);
    cr_assert_eq(strncmp(s, "-----BEGIN PUBLIC KEY-----", 26), 0);
    free(s);
    s = slurp("p1pub.pem", NULL);
    cr_assert_eq(strncmp(s, "-----BEGIN RSA PUBLIC KEY-----", 30), 0);
    free(s);

    struct ccr_kek *p8 = load_pem_file("p8.pem");
    struct ccr_kek *p1 = load_pem_file("p1.pem");
    struct ccr_kek *spki = load_pem_file("spki.pem");
    struct ccr_kek *p1pub = load_pem_file("p1pub.pem");
    cr_assert(ccr_kek_is_private(p8));
    cr_assert(ccr_kek_is_private(p1));
    cr_assert_not(ccr_kek_is_private(spki));
    cr_assert_not(ccr_kek_is_private(p1pub));
    cr_assert_eq(ccr_kek_bits(p8), 2048);
    cr_assert_eq(ccr_kek_bits(p1), 2048);
    cr_assert_eq(ccr_kek_bits(spki), 2048);
    cr_assert_eq(ccr_kek_bits(p1pub), 2048);

    /* All four are the same key. */
    round_trip(p1pub, p8);
    round_trip(spki, p1);
    round_trip(p8, p1);

    /* Our public PEM of the PKCS#1 public key is openssl's SPKI file. */
    char *pem = NULL;
    size_t pem_len = 0;
    cr_assert_eq(ccr_kek_public_pem(p1pub, &pem, &pem_len), 0);
    s = slurp("spki.pem", NULL);
    cr_assert_str_eq(pem, s);
    free(s);
    ccr_free(pem);
    /* And our PKCS#8 private PEM of the PKCS#1 private key is openssl's PKCS#8 file. */
    cr_assert_eq(ccr_kek_private_pem(p1, &pem, &pem_len), 0);
    s = slurp("p8.pem", NULL);
    cr_assert_str_eq(pem, s);
    free(s);
    ccr_wipe(pem, pem_len);
    ccr_free(pem);

    ccr_kek_destroy(p1pub);
    ccr_kek_destroy(spki);
    ccr_kek_destroy(p1);
    ccr_kek_destroy(p8);
}

/* ---- interoperability with openssl pkeyutl ------------------------------------------------------------ */

Test(crypto_wrap, interop_our_wrap_openssl_unwraps, .init = wrap_dir_make, .fini = wrap_dir_remove)
{
    static const unsigned sizes[] = {2048, 3072};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        struct ccr_kek *k = gen(sizes[si]);
        char *pem = NULL;
        size_t pem_len = 0;
        cr_assert_eq(ccr_kek_private_pem(k, &pem, &pem_len), 0);
        spit("priv.pem", pem, pem_len);
        ccr_wipe(pem, pem_len);
        ccr_free(pem);

        for (int round = 0; round < 2; round++) {
            struct ccr_key dek;
            cr_assert_eq(ccr_key_generate(&dek), 0);
            char *w = NULL;
            cr_assert_eq(ccr_key_wrap(k, &dek, &w), 0);
            uint8_t raw[512];
            int rawn = ccr_base64_decode(w, strlen(w), raw, sizeof(raw));
            cr_assert_eq(rawn, (int)sizes[si] / 8);
            spit("wrapped.bin", raw, (size_t)rawn);
            run(OPENSSL_BIN " pkeyutl -decrypt -inkey priv.pem " OAEP_OPTIONS
                            " -in wrapped.bin -out dek.bin");
            size_t n = 0;
            char *got = slurp("dek.bin", &n);
            cr_assert_eq(n, 32, "%u bits: openssl recovered %zu bytes", sizes[si], n);
            cr_assert_eq(memcmp(got, dek.b, 32), 0, "%u bits: openssl recovered other bytes", sizes[si]);
            free(got);
            ccr_free(w);
        }
        ccr_kek_destroy(k);
    }
}

Test(crypto_wrap, interop_openssl_wraps_we_unwrap, .init = wrap_dir_make, .fini = wrap_dir_remove)
{
    run(OPENSSL_BIN " genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out priv.pem 2>/dev/null");
    run(OPENSSL_BIN " pkey -in priv.pem -pubout -out pub.pem");
    struct ccr_kek *k = load_pem_file("priv.pem");

    for (int round = 0; round < 3; round++) {
        struct ccr_key dek, back;
        cr_assert_eq(ccr_key_generate(&dek), 0);
        spit("dek.bin", dek.b, 32);
        run(OPENSSL_BIN " pkeyutl -encrypt -pubin -inkey pub.pem " OAEP_OPTIONS
                        " -in dek.bin -out wrapped.bin");
        /* openssl base64 wraps lines at 64 columns: whitespace inside the text is fine. */
        run(OPENSSL_BIN " base64 -in wrapped.bin -out wrapped.b64");
        size_t n = 0;
        char *b64 = slurp("wrapped.b64", &n);
        cr_assert_not_null(strchr(b64, '\n'));
        memset(&back, 0, sizeof(back));
        struct ccr_err err;
        ccr_err_clear(&err);
        cr_assert_eq(ccr_key_unwrap(k, b64, n, &back, &err), 0, "%s", err.msg);
        cr_assert_eq(memcmp(back.b, dek.b, 32), 0);
        free(b64);

        /* The same ciphertext in our own encoding. */
        size_t rawn = 0;
        char *raw = slurp("wrapped.bin", &rawn);
        cr_assert_eq(rawn, 256);
        char enc[CCR_BASE64_LEN(256) + 1];
        cr_assert_eq(ccr_base64_encode(raw, rawn, enc, sizeof(enc)), 344);
        memset(&back, 0, sizeof(back));
        cr_assert_eq(ccr_key_unwrap(k, enc, strlen(enc), &back, NULL), 0);
        cr_assert_eq(memcmp(back.b, dek.b, 32), 0);
        free(raw);
    }

    /* SHA-1 OAEP (openssl's default digest) is a different scheme: it must not unwrap. */
    run(OPENSSL_BIN " pkeyutl -encrypt -pubin -inkey pub.pem -pkeyopt rsa_padding_mode:oaep -in dek.bin "
                    "-out sha1.bin");
    size_t rawn = 0;
    char *raw = slurp("sha1.bin", &rawn);
    char enc[CCR_BASE64_LEN(256) + 1];
    cr_assert_eq(ccr_base64_encode(raw, rawn, enc, sizeof(enc)), 344);
    struct ccr_key back;
    cr_assert_eq(ccr_key_unwrap(k, enc, strlen(enc), &back, NULL), -EBADMSG);
    free(raw);
    ccr_kek_destroy(k);
}
