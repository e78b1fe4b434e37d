/*
 * fuzz_cose.c - the COSE_Sign1 parser (governance/cose.c) and the CBOR decoder under it (governance/cbor.c).
 *
 * The input is an envelope. Invariants, abort() on violation:
 * - ccr_cose_parse returns 0 or -EBADMSG; on failure err says so. On success every pointer it returns lies
 *   inside the input, the strings are NUL-terminated within their arrays, the signature is 96 bytes, the
 *   protected bytes are one well-formed CBOR item, and parsing the untagged form (when the input is tagged)
 *   gives the same result. Verification with the embedded key returns 0 or -EBADMSG.
 * - The CBOR decoder never reads past the end (ASan), cbor_well_formed agrees with a walk of the input by
 *   cbor_next, and when the input is one well-formed item, re-encoding the walk gives a well-formed item
 *   no longer than the input (the encoder writes shortest heads) that re-encodes to itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../governance/cbor.h"
#include "ccr/gov_crypto.h"
#include "fuzz.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static void check_str(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
    struct ccr_cose_msg m;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_cose_parse(data, size, &m, &err);
    CHECK(rc == 0 || rc == -EBADMSG);
    if (rc < 0) {
        CHECK(err.code == rc && err.msg[0] != '\0');
        return;
    }
    check_str(m.kid, sizeof(m.kid));
    check_str(m.msg_type, sizeof(m.msg_type));
    check_str(m.proposal_id, sizeof(m.proposal_id));
    check_str(m.request, sizeof(m.request));
    CHECK(inside(m.payload, m.payload_len, data, size));
    CHECK(inside(m.protected_bytes, m.protected_len, data, size));
    CHECK(inside(m.signature, m.signature_len, data, size) && m.signature_len == 96);
    CHECK(!m.evidence || inside(m.evidence, m.evidence_len, data, size));
    CHECK(!m.pubkey || inside(m.pubkey, m.pubkey_len, data, size));
    CHECK(cbor_well_formed(m.protected_bytes, m.protected_len));
    CHECK(!m.has_created_at || m.created_at == m.created_at);

    if (size > 0 && data[0] == 0xd2) { /* tag 18 in one byte: the untagged rest parses alike */
        struct ccr_cose_msg u;
        CHECK(ccr_cose_parse(data + 1, size - 1, &u, NULL) == 0);
        CHECK(u.payload == m.payload && u.payload_len == m.payload_len);
        CHECK(strcmp(u.kid, m.kid) == 0 && strcmp(u.request, m.request) == 0);
    }
    if (m.pubkey) {
        int v = ccr_cose_verify_spki(&m, NULL);
        CHECK(v == 0 || v == -EBADMSG);
    }
}

/* Walks one item, re-encoding it into b. Returns false where the decoder refuses. */
static bool walk(struct cbor_dec *d, struct cbor_buf *b, unsigned depth)
{
    if (depth > CBOR_MAX_DEPTH)
        return false;
    struct cbor_item it;
    size_t before = d->off;
    if (cbor_next(d, &it) != 0) {
        CHECK(d->off == before);
        return false;
    }
    CHECK(d->off > before && d->off <= d->len);
    switch (it.type) {
    case CBOR_UINT:
        cbor_put_uint(b, it.val);
        return true;
    case CBOR_NINT:
        /* -1 - val: written back through the head directly, whatever its size */
        if (it.val <= (uint64_t)INT64_MAX)
            cbor_put_int(b, -1 - (int64_t)it.val);
        else
            cbor_put_int(b, INT64_MIN); /* out of int64 range: any nint keeps the shape */
        return true;
    case CBOR_BSTR:
    case CBOR_TSTR:
        CHECK(inside(it.data, (size_t)it.val, d->p, d->len));
        if (it.type == CBOR_BSTR)
            cbor_put_bstr(b, it.data, (size_t)it.val);
        else
            cbor_put_tstr(b, (const char *)it.data, (size_t)it.val);
        return true;
    case CBOR_ARRAY:
    case CBOR_MAP: {
        uint64_t n = it.type == CBOR_MAP ? it.val * 2 : it.val;
        if (it.val > d->len - d->off || (it.type == CBOR_MAP && it.val > (d->len - d->off) / 2))
            return false;
        if (it.type == CBOR_ARRAY)
            cbor_put_array(b, it.val);
        else
            cbor_put_map(b, it.val);
        for (uint64_t i = 0; i < n; i++)
            if (!walk(d, b, depth + 1))
                return false;
        return true;
    }
    case CBOR_TAG:
        cbor_put_tag(b, it.val);
        return walk(d, b, depth + 1);
    case CBOR_FALSE:
    case CBOR_TRUE:
        cbor_put_bool(b, it.type == CBOR_TRUE);
        return true;
    case CBOR_NULL:
        cbor_put_null(b);
        return true;
    }
    abort();
}

static void fuzz_cbor(const uint8_t *data, size_t size)
{
    bool wf = cbor_well_formed(data, size);
    struct cbor_dec d;
    cbor_dec_init(&d, data, size);
    struct cbor_buf b;
    cbor_buf_init(&b);
    bool ok = walk(&d, &b, 0) && cbor_dec_done(&d);
    CHECK(ok == wf);
    if (ok) {
        uint8_t *out = NULL;
        size_t len = 0;
        int rc = cbor_buf_take(&b, &out, &len);
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc == 0) {
            CHECK(len <= size);
            CHECK(cbor_well_formed(out, len));
            struct cbor_dec d2;
            cbor_dec_init(&d2, out, len);
            struct cbor_buf b2;
            cbor_buf_init(&b2);
            CHECK(walk(&d2, &b2, 0) && cbor_dec_done(&d2));
            uint8_t *out2 = NULL;
            size_t len2 = 0;
            if (cbor_buf_take(&b2, &out2, &len2) == 0) {
                CHECK(len2 == len && memcmp(out, out2, len) == 0);
                ccr_free(out2);
            }
            cbor_buf_fini(&b2);
            ccr_free(out);
        }
    }
    cbor_buf_fini(&b);

    /* Typed reads at the start never move the cursor on failure. */
    struct cbor_dec t;
    cbor_dec_init(&t, data, size);
    const uint8_t *p;
    size_t n;
    if (cbor_get_bstr(&t, &p, &n) != 0)
        CHECK(t.off == 0);
    else
        CHECK(inside(p, n, data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse(data, size);
    fuzz_cbor(data, size);
    return 0;
}
