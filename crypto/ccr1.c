/*
 * ccr1.c - the native streaming AEAD format: header, per-blob key, region arithmetic, region seal/open.
 *
 * Layout (docs/format.md): a 64-byte header, then regions of R = 1 << region_log2 plaintext bytes, each
 * stored as ciphertext || 16-byte tag. Every blob gets a fresh 32-byte salt, and the region key is
 * K = HKDF-SHA256(DEK, salt, "ccr1-region-key" || header[0..24)), so (K, nonce) pairs never repeat across
 * blobs sharing one DEK. The nonce binds the region index and whether it is the last one, and the AAD is
 * the whole header: reordering, truncation, extension, splicing and header edits all fail authentication.
 *
 * The arithmetic helpers return uint64_t and have no error channel: for a region_log2 outside 12..24
 * they return 0, and sizes that do not fit in 64 bits saturate at UINT64_MAX. The fallible ones
 * (plain_size, map_range) return -EINVAL for such arguments.
 */
#include <errno.h>
#include <string.h>

#include "crypto_int.h"

static const uint8_t ccr1_magic[4] = {'C', 'C', 'R', '1'};
static const char ccr1_info_label[] = "ccr1-region-key"; /* HKDF info prefix, without the NUL */

#define HDR_MAGIC    0
#define HDR_VERSION  4
#define HDR_LOG2     5
#define HDR_RSV1     6
#define HDR_KEY_ID   8
#define HDR_SALT     24
#define HDR_RSV2     56
#define HDR_SALT_LEN 32

static bool log2_ok(unsigned region_log2)
{
    return region_log2 >= CCR1_REGION_LOG2_MIN && region_log2 <= CCR1_REGION_LOG2_MAX;
}

static void hex16(const uint8_t in[CCR_KEY_ID_LEN], char out[2 * CCR_KEY_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < CCR_KEY_ID_LEN; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * CCR_KEY_ID_LEN] = '\0';
}

/* ----------------------------------------------------------------------------------------------------- */
/* Header and per-blob key                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

int ccr_ccr1_header_parse(const uint8_t header[CCR1_HEADER_LEN], struct ccr_ccr1_info *out,
                          struct ccr_err *err)
{
    if (!header)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no header given");
    for (int i = 0; i < 4; i++)
        if (header[HDR_MAGIC + i] != ccr1_magic[i])
            return ccr_err_set(err, -EBADMSG, NULL, HDR_MAGIC + i, "bad magic: not a ccr1 blob");
    if (header[HDR_VERSION] != CCR1_VERSION)
        return ccr_err_set(err, -EBADMSG, NULL, HDR_VERSION, "unsupported version %u",
                           (unsigned)header[HDR_VERSION]);
    if (!log2_ok(header[HDR_LOG2]))
        return ccr_err_set(err, -EBADMSG, NULL, HDR_LOG2, "region_log2 %u out of range %u..%u",
                           (unsigned)header[HDR_LOG2], CCR1_REGION_LOG2_MIN, CCR1_REGION_LOG2_MAX);
    for (int i = HDR_RSV1; i < HDR_KEY_ID; i++)
        if (header[i] != 0)
            return ccr_err_set(err, -EBADMSG, NULL, i, "reserved bytes must be zero");
    for (int i = HDR_RSV2; i < CCR1_HEADER_LEN; i++)
        if (header[i] != 0)
            return ccr_err_set(err, -EBADMSG, NULL, i, "reserved bytes must be zero");
    if (out) {
        out->version = header[HDR_VERSION];
        out->region_log2 = header[HDR_LOG2];
        memcpy(out->key_id, header + HDR_KEY_ID, CCR_KEY_ID_LEN);
        memcpy(out->salt, header + HDR_SALT, HDR_SALT_LEN);
    }
    return 0;
}

/* K = HKDF-SHA256(IKM = DEK, salt = header salt, info = "ccr1-region-key" || header[0..24)). */
static int derive_region_key(const struct ccr_key *dek, const uint8_t header[CCR1_HEADER_LEN],
                             uint8_t out[CCR_KEY_LEN])
{
    uint8_t info[sizeof(ccr1_info_label) - 1 + HDR_SALT];
    memcpy(info, ccr1_info_label, sizeof(ccr1_info_label) - 1);
    memcpy(info + sizeof(ccr1_info_label) - 1, header, HDR_SALT);
    return ccr_hkdf_sha256(dek->b, sizeof(dek->b), header + HDR_SALT, HDR_SALT_LEN, info, sizeof(info), out,
                           CCR_KEY_LEN);
}

int ccr_ccr1_init_new(struct ccr_ccr1 *c, const struct ccr_key *dek, unsigned region_log2)
{
    if (!c || !dek || !log2_ok(region_log2))
        return -EINVAL;
    struct ccr_ccr1 tmp;
    memset(&tmp, 0, sizeof(tmp));
    memcpy(tmp.header + HDR_MAGIC, ccr1_magic, sizeof(ccr1_magic));
    tmp.header[HDR_VERSION] = CCR1_VERSION;
    tmp.header[HDR_LOG2] = (uint8_t)region_log2;
    int rc = ccr_key_id(dek, tmp.header + HDR_KEY_ID);
    if (rc == 0)
        rc = ccr_random_bytes(tmp.header + HDR_SALT, HDR_SALT_LEN);
    if (rc == 0)
        rc = derive_region_key(dek, tmp.header, tmp.key);
    if (rc == 0) {
        tmp.region_log2 = region_log2;
        tmp.region_size = (uint64_t)1 << region_log2;
        memcpy(c, &tmp, sizeof(tmp));
    }
    ccr_wipe(&tmp, sizeof(tmp));
    return rc;
}

int ccr_ccr1_init_parse(struct ccr_ccr1 *c, const struct ccr_key *dek, const uint8_t header[CCR1_HEADER_LEN],
                        struct ccr_err *err)
{
    if (!c || !dek || !header)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    struct ccr_ccr1_info info;
    int rc = ccr_ccr1_header_parse(header, &info, err);
    if (rc != 0)
        return rc;
    uint8_t id[CCR_KEY_ID_LEN];
    rc = ccr_key_id(dek, id);
    if (rc != 0)
        return ccr_err_set(err, rc, NULL, -1, "cannot compute the key id");
    if (memcmp(id, info.key_id, CCR_KEY_ID_LEN) != 0) {
        char have[2 * CCR_KEY_ID_LEN + 1], want[2 * CCR_KEY_ID_LEN + 1];
        hex16(info.key_id, want);
        hex16(id, have);
        return ccr_err_set(err, -ENOKEY, NULL, HDR_KEY_ID,
                           "wrong key: the blob was encrypted under key id %s, the key given has id %s", want,
                           have);
    }
    struct ccr_ccr1 tmp;
    memset(&tmp, 0, sizeof(tmp));
    memcpy(tmp.header, header, CCR1_HEADER_LEN);
    rc = derive_region_key(dek, tmp.header, tmp.key);
    if (rc == 0) {
        tmp.region_log2 = info.region_log2;
        tmp.region_size = (uint64_t)1 << info.region_log2;
        memcpy(c, &tmp, sizeof(tmp));
    } else {
        ccr_err_set(err, rc, NULL, -1, "key derivation failed");
    }
    ccr_wipe(&tmp, sizeof(tmp));
    return rc;
}

void ccr_ccr1_fini(struct ccr_ccr1 *c)
{
    if (c)
        ccr_wipe(c, sizeof(*c));
}

/* ----------------------------------------------------------------------------------------------------- */
/* Region arithmetic                                                                                      */
/* ----------------------------------------------------------------------------------------------------- */

uint64_t ccr_ccr1_region_count(uint64_t plain_size, unsigned region_log2)
{
    if (!log2_ok(region_log2))
        return 0;
    uint64_t n = (plain_size >> region_log2) + ((plain_size & (((uint64_t)1 << region_log2) - 1)) != 0);
    return n ? n : 1;
}

/* S = 64 + N + 16 n, false if it does not fit in 64 bits. */
static bool blob_size_checked(uint64_t plain_size, unsigned region_log2, uint64_t *out)
{
    uint64_t n = ccr_ccr1_region_count(plain_size, region_log2);
    if (n > (UINT64_MAX - CCR1_HEADER_LEN) / CCR1_TAG_LEN)
        return false;
    uint64_t fixed = CCR1_HEADER_LEN + n * CCR1_TAG_LEN;
    if (plain_size > UINT64_MAX - fixed)
        return false;
    *out = fixed + plain_size;
    return true;
}

uint64_t ccr_ccr1_blob_size(uint64_t plain_size, unsigned region_log2)
{
    if (!log2_ok(region_log2))
        return 0;
    uint64_t s;
    return blob_size_checked(plain_size, region_log2, &s) ? s : UINT64_MAX;
}

uint64_t ccr_ccr1_region_offset(uint64_t index, unsigned region_log2)
{
    if (!log2_ok(region_log2))
        return 0;
    uint64_t stride = ((uint64_t)1 << region_log2) + CCR1_TAG_LEN;
    if (index > (UINT64_MAX - CCR1_HEADER_LEN) / stride)
        return UINT64_MAX;
    return CCR1_HEADER_LEN + index * stride;
}

uint64_t ccr_ccr1_region_plain_len(uint64_t plain_size, unsigned region_log2, uint64_t index)
{
    if (!log2_ok(region_log2))
        return 0;
    uint64_t n = ccr_ccr1_region_count(plain_size, region_log2);
    if (index >= n)
        return 0;
    if (index + 1 < n)
        return (uint64_t)1 << region_log2;
    return plain_size - (index << region_log2); /* index < n <= 2^64 / R: no overflow */
}

int ccr_ccr1_plain_size(uint64_t blob_size, unsigned region_log2, uint64_t *out_plain, uint64_t *out_regions,
                        struct ccr_err *err)
{
    if (!log2_ok(region_log2))
        return ccr_err_set(err, -EINVAL, NULL, -1, "region_log2 %u out of range %u..%u", region_log2,
                           CCR1_REGION_LOG2_MIN, CCR1_REGION_LOG2_MAX);
    if (blob_size < CCR1_HEADER_LEN + CCR1_TAG_LEN)
        return ccr_err_set(err, -EBADMSG, NULL, -1,
                           "blob of %llu bytes is too short for ccr1 (a header and one tag take %d)",
                           (unsigned long long)blob_size, CCR1_HEADER_LEN + CCR1_TAG_LEN);
    uint64_t stride = ((uint64_t)1 << region_log2) + CCR1_TAG_LEN;
    uint64_t d = blob_size - CCR1_HEADER_LEN;
    uint64_t n = d / stride + (d % stride != 0);
    /* The last region's stored length: a tag plus 0..R bytes when it is the only one, 1..R otherwise. */
    uint64_t last = d - (n - 1) * stride;
    if (last < (uint64_t)CCR1_TAG_LEN + (n > 1))
        return ccr_err_set(
            err, -EBADMSG, NULL, -1,
            "blob size %llu fits no ccr1 layout with %llu-byte regions (truncated or extended?)",
            (unsigned long long)blob_size, (unsigned long long)(stride - CCR1_TAG_LEN));
    if (out_plain)
        *out_plain = d - n * CCR1_TAG_LEN;
    if (out_regions)
        *out_regions = n;
    return 0;
}

int ccr_ccr1_map_range(uint64_t plain_size, unsigned region_log2, uint64_t offset, uint64_t len,
                       struct ccr_ccr1_span *out)
{
    uint64_t blob;
    if (!out || !log2_ok(region_log2) || offset > plain_size ||
        !blob_size_checked(plain_size, region_log2, &blob))
        return -EINVAL;
    uint64_t n = ccr_ccr1_region_count(plain_size, region_log2);
    uint64_t avail = plain_size - offset;
    if (len > avail)
        len = avail;
    uint64_t first, last;
    if (len == 0) {
        first = last = offset == plain_size ? n - 1 : offset >> region_log2;
    } else {
        first = offset >> region_log2;
        last = (offset + len - 1) >> region_log2;
    }
    uint64_t start = ccr_ccr1_region_offset(first, region_log2);
    uint64_t end = ccr_ccr1_region_offset(last, region_log2) +
                   ccr_ccr1_region_plain_len(plain_size, region_log2, last) + CCR1_TAG_LEN;
    out->first_region = first;
    out->last_region = last;
    out->stored_offset = start;
    out->stored_len = end - start;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Regions                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static void region_nonce(uint64_t index, bool final, uint8_t iv[CCR_GCM_IV_LEN])
{
    ccr_put_be64(iv, index);
    iv[8] = iv[9] = iv[10] = 0;
    iv[11] = final ? 0x01 : 0x00;
}

/* A region holds exactly R bytes unless final; a final one holds 0..R bytes, and at least 1 unless it is
 * region 0 (an empty last region after full ones is not a layout any reader derives from a blob size). */
static bool region_len_ok(const struct ccr_ccr1 *c, uint64_t index, bool final, size_t len)
{
    if (!final)
        return len == c->region_size;
    return len <= c->region_size && (len > 0 || index == 0);
}

int ccr_ccr1_seal_region(const struct ccr_ccr1 *c, struct ccr_aead *a, uint64_t index, bool final,
                         const uint8_t *in, uint8_t *out, size_t len, uint8_t tag[CCR1_TAG_LEN])
{
    if (!c || !a || !tag || (len && (!in || !out)) || !log2_ok(c->region_log2) ||
        c->region_size != (uint64_t)1 << c->region_log2 || !region_len_ok(c, index, final, len))
        return -EINVAL;
    uint8_t iv[CCR_GCM_IV_LEN];
    region_nonce(index, final, iv);
    return ccr_aead_seal(a, c->key, iv, c->header, CCR1_HEADER_LEN, in, out, len, tag);
}

int ccr_ccr1_open_region(const struct ccr_ccr1 *c, struct ccr_aead *a, uint64_t index, bool final,
                         const uint8_t *in, uint8_t *out, size_t len, const uint8_t tag[CCR1_TAG_LEN],
                         struct ccr_err *err)
{
    if (!c || !a || !tag || (len && (!in || !out)) || !log2_ok(c->region_log2) ||
        c->region_size != (uint64_t)1 << c->region_log2 || !region_len_ok(c, index, final, len)) {
        if (out && len)
            ccr_wipe(out, len);
        return ccr_err_set(err, -EINVAL, NULL, -1, "bad arguments to open region %llu (length %zu)",
                           (unsigned long long)index, len);
    }
    uint8_t iv[CCR_GCM_IV_LEN];
    region_nonce(index, final, iv);
    int rc = ccr_aead_open(a, c->key, iv, c->header, CCR1_HEADER_LEN, in, out, len, tag);
    if (rc == 0)
        return 0;
    if (len)
        ccr_wipe(out, len); /* ccr_aead_open already does; belt and braces for every error path */
    int64_t off = (int64_t)ccr_ccr1_region_offset(index, c->region_log2);
    if (rc == -EBADMSG)
        return ccr_err_set(err, -EBADMSG, NULL, off, "authentication failed in region %llu",
                           (unsigned long long)index);
    return ccr_err_set(err, rc, NULL, off, "AES-GCM failure in region %llu", (unsigned long long)index);
}
