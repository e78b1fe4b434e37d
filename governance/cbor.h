/*
 * cbor.h - private to governance/: a minimal CBOR codec (RFC 8949), enough for COSE_Sign1.
 *
 * Encoder: appends to a growable buffer. Errors are sticky: a failed append (out of memory) marks the
 * buffer and every later append is a no-op, so a caller builds a whole item and checks once, at
 * cbor_buf_take. Heads are always written in their shortest form (deterministic encoding).
 *
 * Decoder: a cursor over borrowed bytes. Supports unsigned and negative integers, byte and text strings,
 * arrays, maps, tags and the simple values false, true and null, with definite lengths only. Anything
 * else (floats, undefined, indefinite lengths, reserved additional information) is -EBADMSG. It never
 * reads past the end: every length is checked against the bytes left before it is used, and nesting
 * (arrays, maps, tags) deeper than CBOR_MAX_DEPTH is refused. Safe on arbitrary input.
 */
#ifndef CCR_GOV_CBOR_H
#define CCR_GOV_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CBOR_MAX_DEPTH 16

/* ---- encoder ----------------------------------------------------------------------------------------- */

struct cbor_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    int err; /* 0, or the first failure (-ENOMEM, -EINVAL) */
};

void cbor_buf_init(struct cbor_buf *b);
void cbor_buf_fini(struct cbor_buf *b); /* frees (and wipes) the bytes; accepts a zeroed struct */

/* Hands the bytes to the caller (*out malloc'ed, freed with ccr_free; never NULL on success, even when
 * empty) and resets b. Returns the sticky error instead (b then still needs cbor_buf_fini). */
int cbor_buf_take(struct cbor_buf *b, uint8_t **out, size_t *out_len);

void cbor_put_uint(struct cbor_buf *b, uint64_t v);
void cbor_put_int(struct cbor_buf *b, int64_t v); /* uint or nint */
void cbor_put_bstr(struct cbor_buf *b, const void *p, size_t n);
void cbor_put_tstr(struct cbor_buf *b, const char *s, size_t n);
void cbor_put_cstr(struct cbor_buf *b, const char *s); /* tstr of a NUL-terminated string */
void cbor_put_array(struct cbor_buf *b, uint64_t count);
void cbor_put_map(struct cbor_buf *b, uint64_t pairs);
void cbor_put_tag(struct cbor_buf *b, uint64_t tag);
void cbor_put_bool(struct cbor_buf *b, bool v);
void cbor_put_null(struct cbor_buf *b);

/* ---- decoder ----------------------------------------------------------------------------------------- */

enum cbor_type {
    CBOR_UINT,
    CBOR_NINT,
    CBOR_BSTR,
    CBOR_TSTR,
    CBOR_ARRAY,
    CBOR_MAP,
    CBOR_TAG,
    CBOR_FALSE,
    CBOR_TRUE,
    CBOR_NULL,
};

/*
 * One decoded head. val: the value (UINT), the argument n of -1-n (NINT), the length (BSTR, TSTR), the
 * element count (ARRAY), the number of pairs (MAP), the tag number (TAG). data points at the string bytes
 * (BSTR, TSTR; inside the decoder's buffer), NULL otherwise.
 */
struct cbor_item {
    enum cbor_type type;
    uint64_t val;
    const uint8_t *data;
};

struct cbor_dec {
    const uint8_t *p;
    size_t len;
    size_t off; /* next byte to read; on failure, where the bad item starts */
};

void cbor_dec_init(struct cbor_dec *d, const uint8_t *p, size_t len);
bool cbor_dec_done(const struct cbor_dec *d); /* every byte consumed */

/* Reads one head (and, for strings, their bytes). Arrays, maps and tags leave their contents to read
 * next. -EBADMSG on malformed or unsupported input (d->off unchanged). */
int cbor_next(struct cbor_dec *d, struct cbor_item *out);

/* Peeks at the next head without consuming it. */
int cbor_peek(const struct cbor_dec *d, struct cbor_item *out);

/* Skips one complete item, nested contents included (depth limited). */
int cbor_skip(struct cbor_dec *d);

/* Typed reads: -EBADMSG when the next item has another type (d->off unchanged). */
int cbor_get_uint(struct cbor_dec *d, uint64_t *out);
int cbor_get_int(struct cbor_dec *d, int64_t *out); /* uint or nint within int64_t */
int cbor_get_bstr(struct cbor_dec *d, const uint8_t **out, size_t *out_len);
int cbor_get_tstr(struct cbor_dec *d, const char **out, size_t *out_len); /* not NUL-terminated */
int cbor_get_array(struct cbor_dec *d, uint64_t *out_count);
int cbor_get_map(struct cbor_dec *d, uint64_t *out_pairs);
int cbor_get_tag(struct cbor_dec *d, uint64_t *out_tag);

/* True when buf[0..len) is exactly one well-formed item (depth limited). */
bool cbor_well_formed(const uint8_t *buf, size_t len);

#endif
