/*
 * cse.c - the cleanroom-cse format, byte-compatible with the Azure confidential clean room encryptor.
 *
 * Chunk i at offset i (B + 28) = random nonce (12) || AES-256-GCM ciphertext of exactly B bytes (the last
 * chunk zero-padded) || tag (16), under the DEK itself and without AAD; then an 8-byte big-endian trailer
 * with the pad length. The format authenticates each chunk alone: it cannot detect chunks swapped or
 * dropped (with the trailer kept consistent), chunks spliced from another blob under the same DEK, or a
 * trailer edited to shrink the padding (the extra bytes read as zeros). We check what can be checked:
 * the size layout, pad <= B, and that the padding decrypts to zeros.
 *
 * The arithmetic helpers return 0 for a chunk size outside CCR_CSE_CHUNK_MIN..CCR_CSE_CHUNK_MAX and
 * saturate at UINT64_MAX when a size does not fit in 64 bits.
 */
#include <errno.h>
#include <string.h>

#include "crypto_int.h"

static bool chunk_size_ok(uint64_t chunk_size)
{
    return chunk_size >= CCR_CSE_CHUNK_MIN && chunk_size <= CCR_CSE_CHUNK_MAX;
}

uint64_t ccr_cse_chunk_count(uint64_t plain_size, uint64_t chunk_size)
{
    if (!chunk_size_ok(chunk_size))
        return 0;
    return plain_size / chunk_size + (plain_size % chunk_size != 0);
}

uint64_t ccr_cse_blob_size(uint64_t plain_size, uint64_t chunk_size)
{
    if (!chunk_size_ok(chunk_size))
        return 0;
    uint64_t k = ccr_cse_chunk_count(plain_size, chunk_size);
    uint64_t stride = chunk_size + CCR_CSE_OVERHEAD;
    if (k > (UINT64_MAX - CCR_CSE_TRAILER_LEN) / stride)
        return UINT64_MAX;
    return k * stride + CCR_CSE_TRAILER_LEN;
}

int ccr_cse_plain_size(uint64_t blob_size, uint64_t chunk_size, const uint8_t trailer[CCR_CSE_TRAILER_LEN],
                       uint64_t *out_plain, uint64_t *out_chunks, struct ccr_err *err)
{
    if (!chunk_size_ok(chunk_size))
        return ccr_err_set(err, -EINVAL, NULL, -1, "chunk size %llu out of range %u..%u",
                           (unsigned long long)chunk_size, CCR_CSE_CHUNK_MIN, CCR_CSE_CHUNK_MAX);
    if (blob_size == 0) {
        if (out_plain)
            *out_plain = 0;
        if (out_chunks)
            *out_chunks = 0;
        return 0;
    }
    uint64_t stride = chunk_size + CCR_CSE_OVERHEAD;
    if (blob_size % stride != CCR_CSE_TRAILER_LEN)
        return ccr_err_set(err, -EBADMSG, NULL, -1,
                           "blob size %llu is not a whole number of %llu-byte chunks plus the 8-byte trailer "
                           "(wrong chunk size, or truncated or extended?)",
                           (unsigned long long)blob_size, (unsigned long long)stride);
    if (!trailer)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no trailer given");
    uint64_t k = blob_size / stride;
    uint64_t pad = ccr_get_be64(trailer);
    int64_t trailer_off = (int64_t)(blob_size - CCR_CSE_TRAILER_LEN);
    if (pad > chunk_size)
        return ccr_err_set(err, -EBADMSG, NULL, trailer_off,
                           "trailer claims %llu bytes of padding, more than the chunk size %llu",
                           (unsigned long long)pad, (unsigned long long)chunk_size);
    if (pad > k * chunk_size) /* k * B < blob_size: no overflow */
        return ccr_err_set(err, -EBADMSG, NULL, trailer_off,
                           "trailer claims %llu bytes of padding, more than the %llu bytes the chunks hold",
                           (unsigned long long)pad, (unsigned long long)(k * chunk_size));
    if (out_plain)
        *out_plain = k * chunk_size - pad;
    if (out_chunks)
        *out_chunks = k;
    return 0;
}

void ccr_cse_trailer(uint64_t pad, uint8_t out[CCR_CSE_TRAILER_LEN])
{
    if (out)
        ccr_put_be64(out, pad);
}

int ccr_cse_seal_chunk(const struct ccr_key *dek, struct ccr_aead *a, uint8_t *chunk, size_t len,
                       uint64_t chunk_size)
{
    if (!dek || !a || !chunk || !chunk_size_ok(chunk_size) || len > chunk_size)
        return -EINVAL;
    uint8_t *nonce = chunk;
    uint8_t *body = chunk + CCR_CSE_NONCE_LEN;
    uint8_t *tag = body + chunk_size;
    memset(body + len, 0, (size_t)chunk_size - len);
    int rc = ccr_random_bytes(nonce, CCR_CSE_NONCE_LEN);
    if (rc == 0)
        rc = ccr_aead_seal(a, dek->b, nonce, NULL, 0, body, body, (size_t)chunk_size, tag);
    if (rc != 0) /* half-encrypted bytes are of no use to anyone: leave nothing behind */
        ccr_wipe(chunk, (size_t)chunk_size + CCR_CSE_OVERHEAD);
    return rc;
}

int ccr_cse_open_chunk(const struct ccr_key *dek, struct ccr_aead *a, uint8_t *chunk, size_t plain_len,
                       uint64_t chunk_size, struct ccr_err *err)
{
    if (!chunk || !chunk_size_ok(chunk_size))
        return ccr_err_set(err, -EINVAL, NULL, -1, "bad chunk or chunk size");
    size_t stored = (size_t)chunk_size + CCR_CSE_OVERHEAD;
    if (!dek || !a || plain_len > chunk_size) {
        ccr_wipe(chunk, stored);
        return ccr_err_set(err, -EINVAL, NULL, -1, "bad arguments to open a chunk (plaintext length %zu)",
                           plain_len);
    }
    uint8_t *nonce = chunk;
    uint8_t *body = chunk + CCR_CSE_NONCE_LEN;
    uint8_t *tag = body + chunk_size;
    int rc = ccr_aead_open(a, dek->b, nonce, NULL, 0, body, body, (size_t)chunk_size, tag);
    if (rc != 0) {
        ccr_wipe(chunk, stored);
        if (rc == -EBADMSG)
            return ccr_err_set(err, -EBADMSG, NULL, -1, "authentication failed in chunk");
        return ccr_err_set(err, rc, NULL, -1, "AES-GCM failure in chunk");
    }
    uint8_t acc = 0;
    for (size_t i = plain_len; i < chunk_size; i++)
        acc |= body[i];
    if (acc != 0) {
        ccr_wipe(chunk, stored);
        return ccr_err_set(err, -EBADMSG, NULL, -1, "non-zero padding in chunk");
    }
    return 0;
}
