/*
 * cbor.c - the minimal CBOR codec of cbor.h.
 *
 * A head is one initial byte (major type in the top 3 bits, additional information in the low 5) and
 * 0, 1, 2, 4 or 8 bytes of argument. The decoder reads the argument only after checking that many bytes
 * are left, and accepts a string only when its whole length is left, so no read goes past the end.
 * cbor_skip also refuses a container whose element count exceeds the bytes left (each element needs at
 * least one byte): a 2^64-element array costs one comparison, not a long loop.
 */
#include <errno.h>
#include <string.h>

#include "ccr/common.h"
#include "cbor.h"

/* ---- encoder ----------------------------------------------------------------------------------------- */

void cbor_buf_init(struct cbor_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void cbor_buf_fini(struct cbor_buf *b)
{
    if (b->p)
        ccr_wipe(b->p, b->cap);
    ccr_free(b->p);
    memset(b, 0, sizeof(*b));
}

int cbor_buf_take(struct cbor_buf *b, uint8_t **out, size_t *out_len)
{
    if (b->err)
        return b->err;
    if (!b->p) {
        b->p = ccr_malloc(1);
        if (!b->p)
            return -ENOMEM;
    }
    *out = b->p;
    *out_len = b->len;
    memset(b, 0, sizeof(*b));
    return 0;
}

static bool reserve(struct cbor_buf *b, size_t n)
{
    if (b->err)
        return false;
    if (n > SIZE_MAX - b->len) {
        b->err = -ENOMEM;
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
        cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
    uint8_t *p = ccr_malloc(cap);
    if (!p) {
        b->err = -ENOMEM;
        return false;
    }
    /* A fresh buffer rather than realloc: the old bytes may be signed secrets, so they are wiped. */
    if (b->p) {
        memcpy(p, b->p, b->len);
        ccr_wipe(b->p, b->cap);
        ccr_free(b->p);
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void put_bytes(struct cbor_buf *b, const void *p, size_t n)
{
    if (!n || !reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* The shortest head for major type mt and argument v. */
static void put_head(struct cbor_buf *b, unsigned mt, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    if (v < 24) {
        h[0] = (uint8_t)(mt << 5 | v);
        n = 1;
    } else if (v <= 0xff) {
        h[0] = (uint8_t)(mt << 5 | 24);
        h[1] = (uint8_t)v;
        n = 2;
    } else if (v <= 0xffff) {
        h[0] = (uint8_t)(mt << 5 | 25);
        h[1] = (uint8_t)(v >> 8);
        h[2] = (uint8_t)v;
        n = 3;
    } else if (v <= 0xffffffffu) {
        h[0] = (uint8_t)(mt << 5 | 26);
        for (int i = 0; i < 4; i++)
            h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        n = 5;
    } else {
        h[0] = (uint8_t)(mt << 5 | 27);
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        n = 9;
    }
    put_bytes(b, h, n);
}

void cbor_put_uint(struct cbor_buf *b, uint64_t v)
{
    put_head(b, 0, v);
}

void cbor_put_int(struct cbor_buf *b, int64_t v)
{
    if (v >= 0)
        put_head(b, 0, (uint64_t)v);
    else
        put_head(b, 1, (uint64_t)(-(v + 1))); /* -1 - n: no overflow for INT64_MIN */
}

void cbor_put_bstr(struct cbor_buf *b, const void *p, size_t n)
{
    if (!p && n) {
        if (!b->err)
            b->err = -EINVAL;
        return;
    }
    put_head(b, 2, n);
    put_bytes(b, p, n);
}

void cbor_put_tstr(struct cbor_buf *b, const char *s, size_t n)
{
    if (!s && n) {
        if (!b->err)
            b->err = -EINVAL;
        return;
    }
    put_head(b, 3, n);
    put_bytes(b, s, n);
}

void cbor_put_cstr(struct cbor_buf *b, const char *s)
{
    cbor_put_tstr(b, s ? s : "", s ? strlen(s) : 0);
}

void cbor_put_array(struct cbor_buf *b, uint64_t count)
{
    put_head(b, 4, count);
}

void cbor_put_map(struct cbor_buf *b, uint64_t pairs)
{
    put_head(b, 5, pairs);
}

void cbor_put_tag(struct cbor_buf *b, uint64_t tag)
{
    put_head(b, 6, tag);
}

void cbor_put_bool(struct cbor_buf *b, bool v)
{
    put_head(b, 7, v ? 21 : 20);
}

void cbor_put_null(struct cbor_buf *b)
{
    put_head(b, 7, 22);
}

/* ---- decoder ----------------------------------------------------------------------------------------- */

void cbor_dec_init(struct cbor_dec *d, const uint8_t *p, size_t len)
{
    d->p = p;
    d->len = p ? len : 0;
    d->off = 0;
}

bool cbor_dec_done(const struct cbor_dec *d)
{
    return d->off == d->len;
}

/* Decodes the head at d->off into *out; *adv = its size including string bytes. */
static int decode_head(const struct cbor_dec *d, struct cbor_item *out, size_t *adv)
{
    if (d->off >= d->len)
        return -EBADMSG;
    size_t left = d->len - d->off;
    const uint8_t *h = d->p + d->off;
    unsigned mt = h[0] >> 5, ai = h[0] & 31;
    uint64_t v;
    size_t n;
    if (ai < 24) {
        v = ai;
        n = 1;
    } else if (ai <= 27) {
        size_t alen = (size_t)1 << (ai - 24); /* 1, 2, 4, 8 */
        if (left < 1 + alen)
            return -EBADMSG;
        v = 0;
        for (size_t i = 0; i < alen; i++)
            v = v << 8 | h[1 + i];
        n = 1 + alen;
    } else {
        return -EBADMSG; /* 28..30 reserved, 31 indefinite length or break */
    }

    struct cbor_item it = {.val = v, .data = NULL};
    switch (mt) {
    case 0:
        it.type = CBOR_UINT;
        break;
    case 1:
        it.type = CBOR_NINT;
        break;
    case 2:
    case 3:
        it.type = mt == 2 ? CBOR_BSTR : CBOR_TSTR;
        if (v > left - n)
            return -EBADMSG; /* the string runs past the end */
        it.data = h + n;
        n += (size_t)v;
        break;
    case 4:
        it.type = CBOR_ARRAY;
        break;
    case 5:
        it.type = CBOR_MAP;
        break;
    case 6:
        it.type = CBOR_TAG;
        break;
    default: /* 7: only the simple values false, true, null, in their one-byte form */
        if (ai == 20)
            it.type = CBOR_FALSE;
        else if (ai == 21)
            it.type = CBOR_TRUE;
        else if (ai == 22)
            it.type = CBOR_NULL;
        else
            return -EBADMSG;
        it.val = 0;
        break;
    }
    *out = it;
    *adv = n;
    return 0;
}

int cbor_peek(const struct cbor_dec *d, struct cbor_item *out)
{
    size_t adv;
    return decode_head(d, out, &adv);
}

int cbor_next(struct cbor_dec *d, struct cbor_item *out)
{
    size_t adv;
    int rc = decode_head(d, out, &adv);
    if (rc == 0)
        d->off += adv;
    return rc;
}

static int skip_depth(struct cbor_dec *d, unsigned depth)
{
    if (depth > CBOR_MAX_DEPTH)
        return -EBADMSG;
    size_t start = d->off;
    struct cbor_item it;
    int rc = cbor_next(d, &it);
    if (rc < 0)
        return rc;
    uint64_t items = 0;
    if (it.type == CBOR_ARRAY || it.type == CBOR_MAP) {
        size_t left = d->len - d->off;
        if (it.val > left || (it.type == CBOR_MAP && it.val > left / 2)) {
            d->off = start;
            return -EBADMSG; /* more elements than bytes left */
        }
        items = it.type == CBOR_MAP ? it.val * 2 : it.val;
    } else if (it.type == CBOR_TAG) {
        items = 1;
    }
    for (uint64_t i = 0; i < items; i++) {
        rc = skip_depth(d, depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int cbor_skip(struct cbor_dec *d)
{
    return skip_depth(d, 0);
}

static int get_typed(struct cbor_dec *d, enum cbor_type type, struct cbor_item *out)
{
    struct cbor_item it;
    size_t adv;
    int rc = decode_head(d, &it, &adv);
    if (rc < 0)
        return rc;
    if (it.type != type)
        return -EBADMSG;
    d->off += adv;
    *out = it;
    return 0;
}

int cbor_get_uint(struct cbor_dec *d, uint64_t *out)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_UINT, &it);
    if (rc == 0)
        *out = it.val;
    return rc;
}

int cbor_get_int(struct cbor_dec *d, int64_t *out)
{
    struct cbor_item it;
    size_t adv;
    int rc = decode_head(d, &it, &adv);
    if (rc < 0)
        return rc;
    if ((it.type != CBOR_UINT && it.type != CBOR_NINT) || it.val > (uint64_t)INT64_MAX)
        return -EBADMSG;
    d->off += adv;
    *out = it.type == CBOR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
    return 0;
}

int cbor_get_bstr(struct cbor_dec *d, const uint8_t **out, size_t *out_len)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_BSTR, &it);
    if (rc == 0) {
        *out = it.data;
        *out_len = (size_t)it.val;
    }
    return rc;
}

int cbor_get_tstr(struct cbor_dec *d, const char **out, size_t *out_len)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_TSTR, &it);
    if (rc == 0) {
        *out = (const char *)it.data;
        *out_len = (size_t)it.val;
    }
    return rc;
}

int cbor_get_array(struct cbor_dec *d, uint64_t *out_count)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_ARRAY, &it);
    if (rc == 0)
        *out_count = it.val;
    return rc;
}

int cbor_get_map(struct cbor_dec *d, uint64_t *out_pairs)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_MAP, &it);
    if (rc == 0)
        *out_pairs = it.val;
    return rc;
}

int cbor_get_tag(struct cbor_dec *d, uint64_t *out_tag)
{
    struct cbor_item it;
    int rc = get_typed(d, CBOR_TAG, &it);
    if (rc == 0)
        *out_tag = it.val;
    return rc;
}

bool cbor_well_formed(const uint8_t *buf, size_t len)
{
    struct cbor_dec d;
    cbor_dec_init(&d, buf, len);
    return cbor_skip(&d) == 0 && cbor_dec_done(&d);
}
