/*
 * common.c - error detail and the allocation wrapper shared by every module.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ccr/common.h"

void ccr_err_clear(struct ccr_err *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->offset = -1;
}

int ccr_err_set(struct ccr_err *e, int code, const char *where, int64_t offset, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    e->offset = offset;
    e->http_status = 0; /* a new failure: the service's answer, if any, is filled after this call */
    e->service_code[0] = e->request_id[0] = '\0';
    if (where)
        snprintf(e->where, sizeof(e->where), "%s", where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

void ccr_err_where(struct ccr_err *e, const char *where)
{
    if (e && where && e->where[0] == '\0')
        snprintf(e->where, sizeof(e->where), "%s", where);
}

/*
 * The allocator is chosen at link time: release front ends link jemalloc, which replaces malloc and
 * friends process-wide; sanitizer builds keep the libc allocator so ASan sees every allocation. Going
 * through these wrappers keeps one place to add accounting later.
 */
void *ccr_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *ccr_calloc(size_t count, size_t n)
{
    return calloc(count ? count : 1, n ? n : 1);
}

void *ccr_realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

void *ccr_alloc_aligned(size_t align, size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0)
        return NULL;
    return p;
}

void ccr_free(void *p)
{
    free(p);
}

void ccr_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}
