/*
 * util.c - small helpers shared by the governance service and client: lowercase hex, SHA-256 and
 * base64url without padding (RFC 4648 section 5).
 *
 * base64url decoding is strict: it accepts exactly what encoding produces (no padding, no whitespace,
 * no '+' or '/', zero unused low bits in the last symbol), so one envelope has exactly one text form.
 */
#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

#include "ccr/gov_crypto.h"

static const char hexdig[] = "0123456789abcdef";

void ccr_gov_hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ccr_gov_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || (!out && n))
        return -EINVAL;
    /* Validate everything (and the exact length) before writing a byte. */
    for (size_t i = 0; i < 2 * n; i++)
        if (hexval((unsigned char)hex[i]) < 0)
            return -EINVAL;
    if (hex[2 * n] != '\0')
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(hexval((unsigned char)hex[2 * i]) << 4 | hexval((unsigned char)hex[2 * i + 1]));
    return 0;
}

void ccr_gov_sha256(const void *in, size_t n, uint8_t out[32])
{
    SHA256(n ? in : (const void *)"", n, out);
}

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ccr_gov_b64url_encode(const uint8_t *in, size_t n, char **out)
{
    if ((!in && n) || !out || n > (SIZE_MAX / 4) * 3 - 3)
        return -EINVAL;
    size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    char *s = ccr_malloc(need + 1);
    if (!s)
        return -ENOMEM;
    char *o = s;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *o++ = b64url_alphabet[(v >> 18) & 63];
        *o++ = b64url_alphabet[(v >> 12) & 63];
        *o++ = b64url_alphabet[(v >> 6) & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = b64url_alphabet[(v >> 18) & 63];
        *o++ = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        *o++ = b64url_alphabet[(v >> 18) & 63];
        *o++ = b64url_alphabet[(v >> 12) & 63];
        *o++ = b64url_alphabet[(v >> 6) & 63];
    }
    *o = '\0';
    *out = s;
    return 0;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int ccr_gov_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    if ((!in && len) || !out || !out_len)
        return -EINVAL;
    if (len % 4 == 1) /* one symbol carries only 6 bits: never a whole byte */
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)in[i]) < 0)
            return -EINVAL;
    size_t rem = len % 4;
    size_t n = len / 4 * 3 + (rem ? rem - 1 : 0);
    /* Canonical form only: the unused low bits of the last symbol are zero. */
    if (rem == 2 && (b64url_value((unsigned char)in[len - 1]) & 15))
        return -EINVAL;
    if (rem == 3 && (b64url_value((unsigned char)in[len - 1]) & 3))
        return -EINVAL;
    uint8_t *b = ccr_malloc(n ? n : 1);
    if (!b)
        return -ENOMEM;
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++)
            v = (v << 6) | (uint32_t)b64url_value((unsigned char)in[i + k]);
        b[o++] = (uint8_t)(v >> 16);
        b[o++] = (uint8_t)(v >> 8);
        b[o++] = (uint8_t)v;
    }
    if (rem) {
        uint32_t v = 0;
        for (size_t k = 0; k < rem; k++)
            v = (v << 6) | (uint32_t)b64url_value((unsigned char)in[i + k]);
        v <<= 6 * (4 - rem);
        b[o++] = (uint8_t)(v >> 16);
        if (rem == 3)
            b[o++] = (uint8_t)(v >> 8);
    }
    *out = b;
    *out_len = n;
    return 0;
}
