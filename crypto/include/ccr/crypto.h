/*
 * ccr/crypto.h - the crypto core: AES-256-GCM over OpenSSL EVP, HKDF-SHA256, data encryption keys,
 * the `ccr1` and `cleanroom-cse` codecs, RSA-OAEP DEK wrapping and CPK header values.
 *
 * The byte-exact formats are specified in docs/format.md. This module is pure: no threads, no logging,
 * no network; its only file I/O is reading and writing key files. All functions are thread-safe as long
 * as each thread uses its own struct ccr_aead (one per thread, reused for every region).
 *
 * Errors: -EINVAL bad argument; -ENOMEM; -EBADMSG authentication failure or malformed/tampered data;
 * -ENOKEY the data was written under another key (reported as "wrong key", not as corruption);
 * -EIO an unexpected OpenSSL failure. Functions that fail on authentication wipe their output buffer:
 * no byte of a region that failed is ever released.
 */
#ifndef CCR_CRYPTO_H
#define CCR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccr/common.h"

/* ===================================================================================================== */
/* Data encryption keys                                                                                   */
/* ===================================================================================================== */

#define CCR_KEY_LEN    32 /* AES-256 */
#define CCR_KEY_ID_LEN 16

/* A 32-byte data encryption key (DEK). Wipe with ccr_key_wipe when done; never print it. */
struct ccr_key {
    uint8_t b[CCR_KEY_LEN];
};

/* Fills out with 32 bytes from the OS CSPRNG (getrandom). */
CCR_API CCR_WUR int ccr_key_generate(struct ccr_key *out);

/* Wipes the key bytes. key may be NULL. */
CCR_API void ccr_key_wipe(struct ccr_key *key);

/* Fills buf with n cryptographically strong random bytes (OpenSSL's DRBG, seeded from the OS). */
CCR_API CCR_WUR int ccr_random_bytes(void *buf, size_t n);

/* ccr1 key id: the first 16 bytes of SHA-256("ccr1-key-id" || DEK). Safe to print (hex). */
CCR_API CCR_WUR int ccr_key_id(const struct ccr_key *key, uint8_t out[CCR_KEY_ID_LEN]);

/* Flags reported by ccr_key_file_load. */
#define CCR_KEYFILE_LOOSE_PERMS 0x1u /* readable or writable by group or others: the caller should warn */

/*
 * Loads a key file: exactly 32 raw bytes (the format the clean room CLI uses for `<datastore>.bin`).
 * out_flags (may be NULL) receives CCR_KEYFILE_* flags. Errors: -ENOENT, -EACCES (errno of open),
 * -EINVAL the file is not exactly 32 bytes (err says its size), -EISDIR.
 */
CCR_API CCR_WUR int ccr_key_file_load(const char *path, struct ccr_key *out, unsigned *out_flags,
                                      struct ccr_err *err);

/*
 * Writes a key file with mode 0600, atomically (temporary file in the same directory, fsync, rename).
 * An existing path is refused with -EEXIST unless overwrite is true.
 */
CCR_API CCR_WUR int ccr_key_file_store(const char *path, const struct ccr_key *key, bool overwrite,
                                       struct ccr_err *err);

/* ===================================================================================================== */
/* AES-256-GCM                                                                                            */
/* ===================================================================================================== */

#define CCR_GCM_IV_LEN  12
#define CCR_GCM_TAG_LEN 16

/*
 * One AES-256-GCM context: wraps an EVP_CIPHER_CTX and caches the key schedule of the last key used.
 * Use one per thread; it is not thread-safe. The cipher is fetched once per process.
 */
struct ccr_aead;

CCR_API CCR_WUR int ccr_aead_create(struct ccr_aead **out);
CCR_API void ccr_aead_destroy(struct ccr_aead *a); /* accepts NULL; wipes the cached key */

/*
 * Encrypts len bytes from in to out (in == out allowed: in place) under key and iv, authenticating
 * aad (aad_len may be 0, aad then may be NULL), and writes the 16-byte tag. Any len, including 0 and
 * beyond INT_MAX (split internally).
 */
CCR_API CCR_WUR int ccr_aead_seal(struct ccr_aead *a, const uint8_t key[CCR_KEY_LEN],
                                  const uint8_t iv[CCR_GCM_IV_LEN], const void *aad, size_t aad_len,
                                  const uint8_t *in, uint8_t *out, size_t len, uint8_t tag[CCR_GCM_TAG_LEN]);

/*
 * Decrypts and authenticates. On tag mismatch returns -EBADMSG and wipes out[0..len): no unauthenticated
 * plaintext is released.
 */
CCR_API CCR_WUR int ccr_aead_open(struct ccr_aead *a, const uint8_t key[CCR_KEY_LEN],
                                  const uint8_t iv[CCR_GCM_IV_LEN], const void *aad, size_t aad_len,
                                  const uint8_t *in, uint8_t *out, size_t len,
                                  const uint8_t tag[CCR_GCM_TAG_LEN]);

/* ===================================================================================================== */
/* HKDF-SHA256 (RFC 5869)                                                                                 */
/* ===================================================================================================== */

/* out_len <= 255 * 32. salt may be NULL when salt_len is 0 (then HashLen zero bytes, per the RFC). */
CCR_API CCR_WUR int ccr_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                                    const void *info, size_t info_len, void *out, size_t out_len);

/* ===================================================================================================== */
/* ccr1: the native streaming AEAD format                                                                 */
/* ===================================================================================================== */
/*
 * Blob = header (64 bytes) || region_0 || ... || region_{n-1}; region i = ciphertext || 16-byte tag,
 * at stored offset 64 + i * (R + 16). See docs/format.md.
 */

#define CCR1_HEADER_LEN          64
#define CCR1_TAG_LEN             16
#define CCR1_VERSION             1
#define CCR1_REGION_LOG2_MIN     12
#define CCR1_REGION_LOG2_MAX     24
#define CCR1_REGION_LOG2_DEFAULT 20

/* What a header says, without a key (for `ccr inspect`). */
struct ccr_ccr1_info {
    unsigned version;
    unsigned region_log2;
    uint8_t key_id[CCR_KEY_ID_LEN];
    uint8_t salt[32];
};

/*
 * Parses and validates a header: magic "CCR1", version 1, region_log2 in 12..24, reserved bytes zero.
 * Returns -EBADMSG with err->msg naming the field ("bad magic", "unsupported version 7", ...) and
 * err->offset the header byte at fault.
 */
CCR_API CCR_WUR int ccr_ccr1_header_parse(const uint8_t header[CCR1_HEADER_LEN], struct ccr_ccr1_info *out,
                                          struct ccr_err *err);

/*
 * One blob's crypto state: the header and the per-blob key K derived from the DEK with HKDF. Caller
 * storage; ccr_ccr1_fini wipes it. Read-only after init, so many threads may share one (each with its
 * own struct ccr_aead).
 */
struct ccr_ccr1 {
    uint8_t header[CCR1_HEADER_LEN];
    unsigned region_log2;
    uint64_t region_size;
    uint8_t key[CCR_KEY_LEN]; /* K, the per-blob key */
};

/* Writer: builds a fresh header (new random salt) for dek and derives K. region_log2 in 12..24. */
CCR_API CCR_WUR int ccr_ccr1_init_new(struct ccr_ccr1 *c, const struct ccr_key *dek, unsigned region_log2);

/*
 * Reader: validates header (as ccr_ccr1_header_parse), checks its key id against dek (-ENOKEY, "wrong
 * key", on mismatch) and derives K.
 */
CCR_API CCR_WUR int ccr_ccr1_init_parse(struct ccr_ccr1 *c, const struct ccr_key *dek,
                                        const uint8_t header[CCR1_HEADER_LEN], struct ccr_err *err);

CCR_API void ccr_ccr1_fini(struct ccr_ccr1 *c);

/* Region arithmetic. R = 1 << region_log2. */
/* n = max(1, ceil(N / R)) */
CCR_API uint64_t ccr_ccr1_region_count(uint64_t plain_size, unsigned region_log2);
/* S = 64 + N + 16 n */
CCR_API uint64_t ccr_ccr1_blob_size(uint64_t plain_size, unsigned region_log2);
/* Stored offset of region i: 64 + i (R + 16). */
CCR_API uint64_t ccr_ccr1_region_offset(uint64_t index, unsigned region_log2);
/* Plaintext bytes held by region index of a blob of plain_size bytes (R, or the remainder for the last). */
CCR_API uint64_t ccr_ccr1_region_plain_len(uint64_t plain_size, unsigned region_log2, uint64_t index);

/*
 * Blob size to plaintext size: n = ceil((S - 64) / (R + 16)), N = S - 64 - 16 n. Returns -EBADMSG for
 * sizes that fit no n (err says so), else writes N and n.
 */
CCR_API CCR_WUR int ccr_ccr1_plain_size(uint64_t blob_size, unsigned region_log2, uint64_t *out_plain,
                                        uint64_t *out_regions, struct ccr_err *err);

/* The regions and stored bytes that hold plaintext range [offset, offset + len) of a blob. */
struct ccr_ccr1_span {
    uint64_t first_region, last_region; /* inclusive */
    uint64_t stored_offset;             /* byte offset of first_region in the blob */
    uint64_t stored_len;                /* bytes from first_region's start to the end of last_region's tag */
};

/*
 * Maps a plaintext range to regions. len 0 or a range past the end is clipped to the plaintext; an offset
 * beyond the end returns -EINVAL. A 0-byte range at offset < N maps to the region holding offset; for an
 * empty plaintext it maps to region 0.
 */
CCR_API CCR_WUR int ccr_ccr1_map_range(uint64_t plain_size, unsigned region_log2, uint64_t offset,
                                       uint64_t len, struct ccr_ccr1_span *out);

/*
 * Seals region `index`: len plaintext bytes from in (len == R unless final; 0 <= len <= R when final) into
 * out (in == out allowed), tag to `tag` (typically out + len, making the stored region contiguous).
 * nonce = uint64_be(index) || 00 00 00 || final; AAD = the 64-byte header.
 */
CCR_API CCR_WUR int ccr_ccr1_seal_region(const struct ccr_ccr1 *c, struct ccr_aead *a, uint64_t index,
                                         bool final, const uint8_t *in, uint8_t *out, size_t len,
                                         uint8_t tag[CCR1_TAG_LEN]);

/*
 * Opens region `index` (len ciphertext bytes, then its tag). -EBADMSG on any failure, with out wiped and
 * err->offset set to the region's stored offset.
 */
CCR_API CCR_WUR int ccr_ccr1_open_region(const struct ccr_ccr1 *c, struct ccr_aead *a, uint64_t index,
                                         bool final, const uint8_t *in, uint8_t *out, size_t len,
                                         const uint8_t tag[CCR1_TAG_LEN], struct ccr_err *err);

/* ===================================================================================================== */
/* cleanroom-cse: byte-compatible with the Azure confidential clean room encryptor                        */
/* ===================================================================================================== */
/*
 * Chunk i at offset i (B + 28) = nonce (12) || ciphertext (B, the last chunk zero-padded) || tag (16);
 * then an 8-byte big-endian trailer holding the pad length. AES-256-GCM under the DEK itself, no AAD.
 */

#define CCR_CSE_CHUNK_DEFAULT (16u * 1024 * 1024)
#define CCR_CSE_NONCE_LEN     12
#define CCR_CSE_TAG_LEN       16
#define CCR_CSE_OVERHEAD      28 /* nonce + tag per chunk */
#define CCR_CSE_TRAILER_LEN   8
#define CCR_CSE_CHUNK_MIN     16u                   /* smallest B we accept */
#define CCR_CSE_CHUNK_MAX     (1024u * 1024 * 1024) /* largest B we accept (1 GiB) */

/* k = ceil(N / B) (0 for N = 0). */
CCR_API uint64_t ccr_cse_chunk_count(uint64_t plain_size, uint64_t chunk_size);
/* S = k (B + 28) + 8 (8 for an empty plaintext: the trailer alone). */
CCR_API uint64_t ccr_cse_blob_size(uint64_t plain_size, uint64_t chunk_size);

/*
 * Blob size and trailer to plaintext size. blob_size 0 and blob_size 8 with trailer 0 are both empty.
 * trailer is the blob's last 8 bytes (ignored, may be NULL, when blob_size is 0). -EBADMSG when
 * S mod (B + 28) != 8, or pad > B, or pad > k B (which includes a non-zero trailer on an 8-byte blob).
 */
CCR_API CCR_WUR int ccr_cse_plain_size(uint64_t blob_size, uint64_t chunk_size,
                                       const uint8_t trailer[CCR_CSE_TRAILER_LEN], uint64_t *out_plain,
                                       uint64_t *out_chunks, struct ccr_err *err);

/* Writes the trailer for pad bytes of padding (big-endian). */
CCR_API void ccr_cse_trailer(uint64_t pad, uint8_t out[CCR_CSE_TRAILER_LEN]);

/*
 * Seals one chunk in place. chunk points to B + 28 bytes; on entry its plaintext (len <= B bytes) is at
 * chunk + 12. Zero-pads to B, draws a random nonce into chunk[0..12), encrypts chunk + 12 in place and
 * writes the tag at chunk + 12 + B.
 */
CCR_API CCR_WUR int ccr_cse_seal_chunk(const struct ccr_key *dek, struct ccr_aead *a, uint8_t *chunk,
                                       size_t len, uint64_t chunk_size);

/*
 * Opens one stored chunk in place (B + 28 bytes at chunk): authenticates, decrypts to chunk + 12 and
 * checks that bytes [plain_len, B) of the plaintext (the padding of the last chunk) are zero.
 * -EBADMSG on failure ("authentication failed" or "non-zero padding"), with the whole chunk wiped.
 */
CCR_API CCR_WUR int ccr_cse_open_chunk(const struct ccr_key *dek, struct ccr_aead *a, uint8_t *chunk,
                                       size_t plain_len, uint64_t chunk_size, struct ccr_err *err);

/* ===================================================================================================== */
/* DEK wrapping under an RSA key-encryption key (RSA-OAEP, SHA-256, MGF1-SHA256, empty label)             */
/* ===================================================================================================== */

struct ccr_kek; /* an RSA key, public or private */

/* bits: 2048, 3072 or 4096 (else -EINVAL); exponent 65537. */
CCR_API CCR_WUR int ccr_kek_generate(unsigned bits, struct ccr_kek **out);

/*
 * Parses a PEM key: a private key (PKCS#8 or PKCS#1) or a public key (SubjectPublicKeyInfo or PKCS#1).
 * Rejects non-RSA keys and RSA sizes other than 2048/3072/4096 with -EINVAL (err says why).
 */
CCR_API CCR_WUR int ccr_kek_from_pem(const char *pem, size_t len, struct ccr_kek **out, struct ccr_err *err);

CCR_API void ccr_kek_destroy(struct ccr_kek *k); /* accepts NULL */
CCR_API bool ccr_kek_is_private(const struct ccr_kek *k);
CCR_API unsigned ccr_kek_bits(const struct ccr_kek *k);

/*
 * PEM text of the private key (PKCS#8, unencrypted: store it 0600) or of the public key
 * (SubjectPublicKeyInfo). *out_pem is NUL-terminated, owned by the caller, freed with ccr_free (the
 * private one wipe first: ccr_wipe(p, *out_len)). -EINVAL asking for the private half of a public key.
 */
CCR_API CCR_WUR int ccr_kek_private_pem(const struct ccr_kek *k, char **out_pem, size_t *out_len);
CCR_API CCR_WUR int ccr_kek_public_pem(const struct ccr_kek *k, char **out_pem, size_t *out_len);

/* Wraps dek: *out_b64 = base64(RSA-OAEP(dek)), NUL-terminated, caller frees with ccr_free. */
CCR_API CCR_WUR int ccr_key_wrap(const struct ccr_kek *kek, const struct ccr_key *dek, char **out_b64);

/*
 * Unwraps base64 text (surrounding whitespace ignored) with a private KEK. -EINVAL bad base64 or a
 * public key; -EBADMSG decryption failed or the result is not 32 bytes (wrong KEK or corrupt input).
 */
CCR_API CCR_WUR int ccr_key_unwrap(const struct ccr_kek *kek, const char *b64, size_t len,
                                   struct ccr_key *out, struct ccr_err *err);

/* ===================================================================================================== */
/* Base64 (standard alphabet, padded) and CPK header values                                               */
/* ===================================================================================================== */

/* Encoded length of n bytes, without the NUL. */
#define CCR_BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes the encoding and a NUL into out (cap >= CCR_BASE64_LEN(n) + 1). Returns its length. */
CCR_API CCR_WUR int ccr_base64_encode(const void *in, size_t n, char *out, size_t cap);

/*
 * Decodes len characters (whitespace ignored) into out (cap bytes). Returns the decoded length,
 * -EINVAL on bad characters or padding, -ENOSPC if cap is too small.
 */
CCR_API CCR_WUR int ccr_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Values of x-ms-encryption-key and x-ms-encryption-key-sha256 for a customer-provided key. */
struct ccr_cpk_headers {
    char key_b64[CCR_BASE64_LEN(32) + 1];
    char key_sha256_b64[CCR_BASE64_LEN(32) + 1];
};
CCR_API CCR_WUR int ccr_cpk_headers(const struct ccr_key *key, struct ccr_cpk_headers *out);
#define CCR_CPK_ALGORITHM "AES256" /* x-ms-encryption-algorithm */

#endif
