/*
 * azure_int.h - private to blob/: the Azure Blob backend.
 *
 * azure.c      the transport: lanes (a thread owning a curl multi driven by socket and timer callbacks),
 *              requests, retries, error mapping, and the operations table.
 * azure_req.c  pure pieces of the protocol, testable without a network: URL and connection-string
 *              parsing, percent-encoding, block ids, the Put Block List body, SharedKey signing, HTTP
 *              dates, the List Blobs and error XML (expat).
 * azure_token.c OAuth bearer tokens: a fixed token, a token file re-read when it changes, or an
 *              IMDS-style managed-identity endpoint, refreshed before expiry.
 *
 * Every function returns 0 (or a count) or a negative errno with err filled (where = the URL or the
 * input that was wrong), and never logs a secret.
 */
#ifndef CCR_AZURE_INT_H
#define CCR_AZURE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "blob_int.h"

/* The REST API version every request pins (x-ms-version). */
#define AZ_API_VERSION "2021-08-06"

/* The storage emulator's well-known development account (public, documented by Microsoft). */
#define AZ_DEV_ACCOUNT  "devstoreaccount1"
#define AZ_DEV_KEY      "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define AZ_DEV_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"

/* ----------------------------------------------------------------------------------------------------- */
/* where to send requests (azure_req.c)                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * A parsed store location. Strings are owned (ccr_malloc) by the struct: az_target_fini.
 *
 * endpoint is the base every request URL starts with, without a trailing '/':
 *   https://ACCOUNT.blob.core.windows.net            (host style: the account is in the host name)
 *   http://127.0.0.1:10000/devstoreaccount1          (path style: emulator, IP hosts, "localhost")
 * A blob's URL is endpoint + "/" + container + "/" + az_encode_path(prefix + name).
 */
struct az_target {
    char *endpoint;    /* scheme://host[:port][/account] */
    char *account;     /* the storage account name (needed for SharedKey) */
    char *container;   /* 3-63 characters: lowercase letters, digits, '-' */
    char *prefix;      /* "" or a blob-name prefix ending in '/' (from the URL path after the container) */
    char *sas;         /* a SAS query string without the leading '?', or NULL */
    char *account_key; /* base64 account key (connection string), or NULL */
    bool https;
    bool path_style;
};

/*
 * Parses a store URL:
 *   https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX...][?SAS]
 *   http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX...][?SAS]     (HOST an IP address or "localhost")
 *   az://CONTAINER[/PREFIX...]   endpoint, account and credentials from the connection string `conn`
 *                                (the caller passes $AZURE_STORAGE_CONNECTION_STRING; NULL: -EINVAL
 *                                saying it must be set)
 * A SAS in the URL is kept in out->sas (and not in endpoint). The container name is checked against
 * Azure's rules. -EINVAL with err naming what is wrong (the SAS never appears in err).
 */
int az_target_parse(const char *url, const char *conn, struct az_target *out, struct ccr_err *err);
void az_target_fini(struct az_target *t); /* accepts zeroed structs */

/*
 * The canonical form of the store's URL for display, config files and journals: endpoint/container[/prefix]
 * with no SAS or key in it. Owned by the caller (ccr_free); NULL on OOM.
 */
char *az_target_display(const struct az_target *t);

/*
 * Parses an Azure Storage connection string ("Key=Value;..." pairs, case-insensitive keys):
 * DefaultEndpointsProtocol, AccountName, AccountKey, EndpointSuffix (default core.windows.net),
 * BlobEndpoint, SharedAccessSignature, and UseDevelopmentStorage=true (the emulator's account, key and
 * AZ_DEV_ENDPOINT; DevelopmentStorageProxyUri is not supported). Fills endpoint, account, account_key,
 * sas, https and path_style of out (container and prefix stay NULL). -EINVAL on a malformed string
 * (err says which key; never echoes AccountKey or the signature).
 */
int az_conn_parse(const char *conn, struct az_target *out, struct ccr_err *err);

/* ----------------------------------------------------------------------------------------------------- */
/* encoding (azure_req.c)                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * Percent-encodes a blob name for a URL path: every byte except unreserved characters (A-Z a-z 0-9 - . _
 * ~) and '/' becomes %XX (uppercase hex). Returns the encoded length (excluding NUL) or -ENOSPC if it
 * does not fit in cap (including the NUL).
 */
int az_encode_path(const char *name, char *out, size_t cap);

/* As az_encode_path, but '/' is encoded too (query parameter values such as prefix and marker). */
int az_encode_query(const char *value, char *out, size_t cap);

/* The block id of block `index`: base64 of the 16-byte string "ccr-block-%06llu" style fixed-width text,
 * so every id of a blob has the same length as Azure requires. Writes a NUL-terminated id (at most
 * AZ_BLOCK_ID_MAX bytes with the NUL). */
#define AZ_BLOCK_ID_MAX 48
void az_block_id(uint64_t index, char out[AZ_BLOCK_ID_MAX]);

/*
 * The Put Block List body committing blocks 0 .. n-1 in order, as <Latest> entries:
 * <?xml version="1.0" encoding="utf-8"?><BlockList><Latest>ID</Latest>...</BlockList>
 * *out (ccr_malloc) and *out_len owned by the caller. -ENOMEM.
 */
int az_block_list_body(uint64_t n, char **out, size_t *out_len);

/* RFC 1123 date in GMT ("Sun, 06 Nov 1994 08:49:37 GMT") into out (at least 30 bytes). */
void az_http_date(time_t t, char out[32]);

/* Parses an RFC 1123 date (Last-Modified) into ns since the epoch. -EINVAL if malformed. */
int az_parse_http_date(const char *s, int64_t *out_ns);

/* ----------------------------------------------------------------------------------------------------- */
/* SharedKey (azure_req.c)                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * The value of the Authorization header for a request signed with an account key (the Blob service's
 * SharedKey scheme, version 2009-09-19 and later):
 *   "SharedKey ACCOUNT:BASE64(HMAC-SHA256(key, string-to-sign))"
 * method: "GET", "PUT", ...; path: the request URL's path exactly as sent (percent-encoded, starting with
 * '/', e.g. "/devstoreaccount1/c/a%20b" in path style); query: the raw query string without '?' (NULL or
 * "" for none; values are percent-decoded for signing, names lowercased, parameters sorted by name, values
 * of a repeated name joined by ','); headers: the request's headers as "Name: value" strings (names
 * case-insensitive) - the standard ones that are signed (Content-Encoding, Content-Language,
 * Content-Length (empty when 0), Content-MD5, Content-Type, Date, If-Modified-Since, If-Match,
 * If-None-Match, If-Unmodified-Since, Range) are taken from it, and every x-ms-* header (lowercased,
 * sorted, value trimmed) is canonicalized. key: the decoded account key.
 * Returns the length written (excluding NUL) or -ENOSPC / -ENOMEM / -EINVAL.
 */
int az_sharedkey_authorization(const uint8_t *key, size_t key_len, const char *account, const char *method,
                               const char *path, const char *query, const char *const *headers,
                               size_t n_headers, char *out, size_t cap);

/* ----------------------------------------------------------------------------------------------------- */
/* XML (azure_req.c, expat)                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * Parses a List Blobs response (EnumerationResults): every <Blob> (Name, Properties/Content-Length,
 * Properties/Etag, Properties/Last-Modified) and every <BlobPrefix> (Name) in document order, and
 * <NextMarker> (empty or absent: NULL). strip: a prefix removed from the front of every name (the store
 * URL's prefix; "" or NULL for none; a name not starting with it is an error). Names are returned as
 * ccr_malloc'd strings in out, which the caller frees with ccr_blob_page_fini. -EBADMSG with err saying
 * where the XML is malformed or a field is missing; -ENOMEM.
 */
int az_parse_list(const char *xml, size_t len, const char *strip, struct ccr_blob_page *out,
                  struct ccr_err *err);

/*
 * Parses an error response body (<Error><Code>..</Code><Message>..</Message>...</Error>) into code and
 * message (truncated to fit, NUL-terminated; empty when absent). Returns 0, or -EBADMSG if the body is
 * not such XML (code and message are then empty).
 */
int az_parse_error(const char *xml, size_t len, char *code, size_t code_cap, char *message,
                   size_t message_cap);

/* ----------------------------------------------------------------------------------------------------- */
/* bearer tokens (azure_token.c)                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/*
 * Where bearer tokens come from, first match wins, read from the environment at create time:
 *   AZURE_STORAGE_TOKEN          a fixed token
 *   AZURE_STORAGE_TOKEN_FILE     a file holding the token (whitespace trimmed), re-read whenever its
 *                                mtime or size changes (for sidecars that rotate it)
 *   AZURE_STORAGE_IDENTITY_ENDPOINT  an IMDS-style managed-identity endpoint, e.g.
 *                                http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01
 *                                queried with GET, header "Metadata: true" and
 *                                resource=https://storage.azure.com/ appended (plus
 * client_id=$AZURE_CLIENT_ID when set); the JSON answer's access_token is used until 5 minutes before
 *                                expires_on (epoch seconds, string or number; else now + expires_in).
 * az_token_create returns -ENOENT (and *out NULL) when none is set: the store then uses SharedKey, SAS or
 * anonymous access.
 */
struct az_token;

int az_token_create(struct az_token **out, struct ccr_err *err);
void az_token_destroy(struct az_token *t); /* accepts NULL */

/*
 * The current token ("Bearer " is not included) into out. Thread-safe; refreshes (file re-read, endpoint
 * queried with a 10 s timeout, up to 3 tries) when due, without holding other callers longer than the
 * refresh. -EACCES with err saying why when no token can be had.
 */
int az_token_get(struct az_token *t, char *out, size_t cap, struct ccr_err *err);

/* Forces a refresh at the next az_token_get (after a 401 that says the token expired). */
void az_token_invalidate(struct az_token *t);

#endif
