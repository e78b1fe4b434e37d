/*
 * base64.c - a strict base64 codec (RFC 4648 section 4: standard alphabet, '=' padding required).
 *
 * Strict means: decoding accepts exactly what encoding produces, plus whitespace anywhere (wrapped PEM-ish
 * text, a trailing newline). A length that is not a multiple of 4, '=' anywhere but the last one or two
 * positions, characters after the padding, and non-zero bits in the unused low bits of the last symbol
 * (a non-canonical encoding) are all -EINVAL. Decoding validates the whole input before writing a byte,
 * so a failed call leaves out untouched.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "crypto_int.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Largest input whose encoding (and its length as an int) we can return. */
#define B64_MAX_IN (((size_t)INT_MAX / 4) * 3)

int ccr_base64_encode(const void *in, size_t n, char *out, size_t cap)
{
    if ((!in && n) || !out || n > B64_MAX_IN)
        return -EINVAL;
    size_t need = CCR_BASE64_LEN(n);
    if (cap < need + 1)
        return -ENOSPC;
    const uint8_t *p = in;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return (int)need;
}

/* Value of a base64 symbol, or -1. Written out rather than a table so it is obviously right. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool b64_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * One pass over the input. With out == NULL it only validates and counts; otherwise it writes (the caller
 * has checked the count against the capacity). Returns the decoded length or -EINVAL.
 */
static long long b64_pass(const char *in, size_t len, uint8_t *out)
{
    uint32_t acc = 0;
    unsigned nsym = 0; /* symbols in the current quantum, padding included */
    unsigned npad = 0; /* '=' seen in the current quantum */
    bool done = false; /* a padded quantum ended the data */
    long long count = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (b64_space(c))
            continue;
        if (done)
            return -EINVAL; /* anything after the padding */
        if (c == '=') {
            if (nsym < 2) /* "=" can only be the 3rd or 4th symbol */
                return -EINVAL;
            npad++;
            acc <<= 6;
        } else {
            int v = b64_value(c);
            if (v < 0 || npad > 0) /* bad symbol, or data after '=' within the quantum ("ab=c") */
                return -EINVAL;
            acc = (acc << 6) | (uint32_t)v;
        }
        if (++nsym < 4)
            continue;

        /* A full quantum: 24 bits, of which 24 - 8 * npad carry data. */
        unsigned nbytes = 3 - npad;
        if ((npad == 1 && (acc & 0xffu)) || (npad == 2 && (acc & 0xffffu)))
            return -EINVAL; /* non-zero unused bits: not the canonical encoding */
        if (out) {
            out[count] = (uint8_t)(acc >> 16);
            if (nbytes > 1)
                out[count + 1] = (uint8_t)(acc >> 8);
            if (nbytes > 2)
                out[count + 2] = (uint8_t)acc;
        }
        count += nbytes;
        if (count > INT_MAX)
            return -EINVAL;
        done = npad > 0;
        acc = 0;
        nsym = 0;
        npad = 0;
    }
    if (nsym != 0)
        return -EINVAL; /* length not a multiple of 4: padding missing */
    return count;
}

int ccr_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if ((!in && len) || (!out && cap))
        return -EINVAL;
    long long n = b64_pass(in, len, NULL);
    if (n < 0)
        return (int)n;
    if ((unsigned long long)n > cap)
        return -ENOSPC;
    if (n > 0)
        (void)b64_pass(in, len, out);
    return (int)n;
}
