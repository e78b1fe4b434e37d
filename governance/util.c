/*
 * util.c - small helpers shared by the governance service and client: lowercase hex, SHA-256 and
 * base64url without padding (RFC 4648 section 5).
 *
 * base64url decoding is strict: it accepts exactly what encoding produces (no padding, no whitespace,
 * no '+' or '/', zero unused low bits in the last symbol), so one envelope has exactly one text form.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/sha.h>

#include "ccr/crypto.h"
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

/*
 * base64url is the standard base64 codec (crypto/base64.c) with '-' and '_' for '+' and '/' and no padding:
 * these translate, after checking that only the url alphabet is used (the standard decoder would also take
 * whitespace, padding, '+' and '/').
 */
static bool b64url_symbol(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int ccr_gov_b64url_encode(const uint8_t *in, size_t n, char **out)
{
    if ((!in && n) || !out || n > (size_t)INT_MAX / 4 * 3)
        return -EINVAL;
    size_t cap = CCR_BASE64_LEN(n) + 1;
    char *s = ccr_malloc(cap);
    if (!s)
        return -ENOMEM;
    int len = ccr_base64_encode(in, n, s, cap);
    if (len < 0) {
        ccr_free(s);
        return len;
    }
    while (len > 0 && s[len - 1] == '=')
        s[--len] = '\0';
    for (int i = 0; i < len; i++)
        s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    *out = s;
    return 0;
}

int ccr_gov_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    if ((!in && len) || !out || !out_len || len > (size_t)INT_MAX / 2)
        return -EINVAL;
    if (len % 4 == 1) /* one symbol carries only 6 bits: never a whole byte */
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (!b64url_symbol((unsigned char)in[i]))
            return -EINVAL;
    size_t padded = (len + 3) / 4 * 4;
    char *std = ccr_malloc(padded + 1);
    uint8_t *b = ccr_malloc(padded / 4 * 3 + 1);
    int rc = std && b ? 0 : -ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < len; i++)
            std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
        memset(std + len, '=', padded - len);
        rc = ccr_base64_decode(std, padded, b, padded / 4 * 3 + 1); /* also: canonical low bits */
    }
    ccr_free(std);
    if (rc < 0) {
        ccr_free(b);
        return rc;
    }
    *out = b;
    *out_len = (size_t)rc;
    return 0;
}
