/*
 * fuzz_az_list.c - the Azure List Blobs and error XML parsers (blob/azure_req.c, expat).
 *
 * The input is a response body. Invariants, abort() on violation:
 * - az_parse_list returns 0, -EBADMSG or -ENOMEM; on failure err says so and the page stays empty; on
 *   success every name is non-empty, blobs carry an ETag in the quoted header form, prefixes carry no
 *   properties, and NextMarker is NULL or non-empty.
 * - Parsing again with the prefix "a/" to strip fails whenever the first parse failed, and otherwise
 *   succeeds exactly when every name starts with "a/", giving the same entries with "a/" removed (an
 *   entry named exactly "a/" is left out).
 * - az_parse_error returns 0 or -EBADMSG, always leaves NUL-terminated strings within the buffers, and
 *   empty ones on failure.
 * - An HTTP date taken from the input that parses formats back to the same instant.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../blob/azure_int.h"
#include "fuzz.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

static void check_page(const struct ccr_blob_page *p)
{
    CHECK(p->count == 0 || p->items != NULL);
    for (size_t i = 0; i < p->count; i++) {
        const struct ccr_blob_item *it = &p->items[i];
        CHECK(it->name && it->name[0]);
        if (it->is_prefix) {
            CHECK(it->props.size == 0 && it->props.mtime_ns == 0 && it->props.etag[0] == '\0');
        } else {
            size_t n = strnlen(it->props.etag, CCR_ETAG_MAX);
            CHECK(n >= 2 && n < CCR_ETAG_MAX);
            CHECK(it->props.etag[n - 1] == '"');
            CHECK(it->props.etag[0] == '"' || strncmp(it->props.etag, "W/\"", 3) == 0);
        }
    }
    CHECK(p->next_marker == NULL || p->next_marker[0] != '\0');
}

static void fuzz_list(const char *xml, size_t len)
{
    struct ccr_blob_page p = {0};
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = az_parse_list(xml, len, NULL, &p, &err);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
    if (rc < 0) {
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(p.items == NULL && p.count == 0 && p.next_marker == NULL);
    } else {
        check_page(&p);
    }

    struct ccr_blob_page q = {0};
    struct ccr_err err2;
    ccr_err_clear(&err2);
    int rc2 = az_parse_list(xml, len, "a/", &q, &err2);
    if (rc == -EBADMSG) {
        CHECK(rc2 == -EBADMSG || rc2 == -ENOMEM);
    } else if (rc == 0 && rc2 != -ENOMEM) {
        bool all_a = true;
        for (size_t i = 0; i < p.count; i++)
            all_a = all_a && strncmp(p.items[i].name, "a/", 2) == 0;
        CHECK(all_a == (rc2 == 0));
        if (rc2 == 0) {
            check_page(&q);
            size_t j = 0;
            for (size_t i = 0; i < p.count; i++) {
                if (strcmp(p.items[i].name, "a/") == 0)
                    continue;
                CHECK(j < q.count);
                CHECK(strcmp(p.items[i].name + 2, q.items[j].name) == 0);
                CHECK(p.items[i].is_prefix == q.items[j].is_prefix);
                CHECK(memcmp(&p.items[i].props, &q.items[j].props, sizeof(p.items[i].props)) == 0);
                j++;
            }
            CHECK(j == q.count);
            CHECK((p.next_marker == NULL) == (q.next_marker == NULL));
            CHECK(!p.next_marker || strcmp(p.next_marker, q.next_marker) == 0);
        } else {
            CHECK(rc2 == -EBADMSG && err2.msg[0] != '\0');
        }
    }
    ccr_blob_page_fini(&p);
    ccr_blob_page_fini(&q);
}

static void fuzz_error(const char *xml, size_t len)
{
    char code[8], msg[64];
    memset(code, 'x', sizeof(code));
    memset(msg, 'x', sizeof(msg));
    int rc = az_parse_error(xml, len, code, sizeof(code), msg, sizeof(msg));
    CHECK(rc == 0 || rc == -EBADMSG);
    CHECK(memchr(code, '\0', sizeof(code)) && memchr(msg, '\0', sizeof(msg)));
    if (rc < 0)
        CHECK(code[0] == '\0' && msg[0] == '\0');
}

static void fuzz_date(const uint8_t *data, size_t size)
{
    char s[40];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    int64_t ns = 0;
    if (az_parse_http_date(s, &ns) != 0)
        return;
    CHECK(ns % 1000000000LL == 0);
    char back[32];
    az_http_date((time_t)(ns / 1000000000LL), back);
    int64_t ns2 = -1;
    CHECK(az_parse_http_date(back, &ns2) == 0 && ns2 == ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_list((const char *)data, size);
    fuzz_error((const char *)data, size);
    fuzz_date(data, size);
    return 0;
}
