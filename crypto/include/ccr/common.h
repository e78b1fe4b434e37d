/*
 * ccr/common.h - what every ccr module shares: export and result annotations, the error-detail struct
 * and the allocation wrapper.
 *
 * Conventions (see docs/ and ../shared/design/style.md):
 * - Fallible functions return int: 0 (or a count) on success, a negative errno on failure.
 * - Pointer arguments are borrowed for the duration of the call unless the comment says otherwise.
 * - Out-parameters are named out_* and written only on success.
 * - An optional struct ccr_err * (NULL allowed) receives the detail a person needs: what failed, where
 *   (file or blob name), at which byte offset. Front ends print it; the library never prints.
 */
#ifndef CCR_COMMON_H
#define CCR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CCR_API          __attribute__((visibility("default")))
#define CCR_WUR          __attribute__((warn_unused_result))
#define CCR_PRINTF(a, b) __attribute__((format(printf, a, b)))

#ifndef ENOKEY
#define ENOKEY 126 /* Linux: "Required key not available"; we use it for "wrong key" */
#endif

/*
 * Error detail. code is the same negative errno the function returned. where names the object (a path,
 * a blob name); offset is a byte offset inside it, or -1 when none applies. msg says what failed in
 * words, without the object name (the front end prints "where: msg (offset N)").
 * HTTP fields are filled by blob/ backends only.
 */
struct ccr_err {
    int code;
    int64_t offset;
    char where[1024];
    char msg[512];
    int http_status;
    char service_code[64]; /* x-ms-error-code */
    char request_id[64];   /* x-ms-request-id */
};

/* Clears e (code 0, offset -1, empty strings). e may be NULL. */
CCR_API void ccr_err_clear(struct ccr_err *e);

/*
 * Records a failure in e (may be NULL): code (negative errno), the object (may be NULL: left as it was),
 * the offset (-1 for none) and a printf-style message. The HTTP detail (status, service code, request id)
 * of an earlier failure is cleared; an HTTP backend fills it after this call. Returns code, so callers can
 * `return ccr_err_set(err, -EBADMSG, path, off, "...")`.
 */
CCR_API int ccr_err_set(struct ccr_err *e, int code, const char *where, int64_t offset, const char *fmt, ...)
    CCR_PRINTF(5, 6);

/* Sets e->where if e is non-NULL and where is still empty (lets an outer layer name the object). */
CCR_API void ccr_err_where(struct ccr_err *e, const char *where);

/*
 * Allocation wrapper: every heap allocation of the library goes through these (jemalloc in release
 * builds, the libc allocator under sanitizers). They never abort; NULL means -ENOMEM to the caller.
 * ccr_alloc_aligned returns memory aligned to `align` (a power of two >= sizeof(void *)), freed with
 * ccr_free. ccr_free(NULL) is a no-op.
 */
CCR_API void *ccr_malloc(size_t n);
CCR_API void *ccr_calloc(size_t count, size_t n);
CCR_API void *ccr_realloc(void *p, size_t n);
CCR_API void *ccr_alloc_aligned(size_t align, size_t n);
CCR_API void ccr_free(void *p);

/* Overwrites n bytes at p with zeros in a way the compiler cannot elide (OPENSSL_cleanse). */
CCR_API void ccr_wipe(void *p, size_t n);

#endif
