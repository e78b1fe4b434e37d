/*
 * fault.c - a fault-injecting store wrapper, FOR TESTS ONLY.
 *
 * When the environment variable CCR_STORE_FAULTS is set (non-empty) at ccr_store_open, the opened store
 * is wrapped by this one: every operation goes through a rule check and then to the real backend. It is
 * never used otherwise, and never instead of the real path: a call that is not failed runs the backend.
 *
 * CCR_STORE_FAULTS is a comma-separated list of rules  op:action[:n]
 *   op      put_block | commit | put_blob | get | props | list | delete | any
 *           ("any" counts every call, create_container included)
 *   action  fail=ERRNO   the call returns -ERRNO without reaching the backend; ERRNO is a name (EIO,
 *                        ENOSPC, EACCES, ENOENT, ESTALE, EAGAIN, ETIMEDOUT, ...) or a number
 *           delay=MS     the call sleeps MS milliseconds first, then proceeds
 *   n       apply to the n-th call of that op only (1-based, counted per op since the store was
 *           opened); omitted = every call
 * e.g. CCR_STORE_FAULTS="commit:fail=EIO:2,get:delay=5" fails the second commit with -EIO and slows
 * every get by 5 ms. Counters are atomic, so "the n-th call" holds across threads (which thread makes the
 * n-th call is up to the scheduler). Delays of all matching rules apply before a failure. An injected
 * failure says so in err->msg ("injected fault: ..."). A malformed spec makes ccr_store_open fail with
 * -EINVAL naming the rule.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob_int.h"

enum fop { F_PUT_BLOCK, F_COMMIT, F_PUT_BLOB, F_GET, F_PROPS, F_LIST, F_DELETE, F_ANY, F_NOPS };

static const char *const fop_names[F_NOPS] = {"put_block", "commit", "put_blob", "get",
                                              "props",     "list",   "delete",   "any"};

struct rule {
    enum fop op;
    int fail_errno;    /* positive; 0: no failure */
    unsigned delay_ms; /* 0: none */
    uint64_t nth;      /* 0: every call */
};

struct fault {
    struct ccr_store base;
    struct ccr_store *inner;
    struct rule *rules;
    size_t n_rules;
    atomic_uint_fast64_t count[F_NOPS];
};

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"EIO", EIO},         {"ENOSPC", ENOSPC},         {"EACCES", EACCES},
    {"EPERM", EPERM},     {"ENOENT", ENOENT},         {"EEXIST", EEXIST},
    {"ESTALE", ESTALE},   {"EAGAIN", EAGAIN},         {"ETIMEDOUT", ETIMEDOUT},
    {"EINVAL", EINVAL},   {"ENOMEM", ENOMEM},         {"EROFS", EROFS},
    {"EDQUOT", EDQUOT},   {"EBUSY", EBUSY},           {"EINTR", EINTR},
    {"ENOTDIR", ENOTDIR}, {"ECONNRESET", ECONNRESET}, {"ECONNREFUSED", ECONNREFUSED},
    {"EPROTO", EPROTO},   {"EBADMSG", EBADMSG},       {"ECANCELED", ECANCELED},
    {"EFBIG", EFBIG},     {"EMFILE", EMFILE},         {"ENFILE", ENFILE},
};

static struct fault *F(struct ccr_store *s)
{
    return (struct fault *)s->impl;
}

static int parse_errno(const char *v)
{
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strcmp(v, errno_names[i].name) == 0)
            return errno_names[i].value;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end != v && *end == '\0' && n > 0 && n < 4096)
        return (int)n;
    return 0;
}

static int parse_rule(char *text, struct rule *r, struct ccr_err *err)
{
    char *save = NULL;
    char *op = strtok_r(text, ":", &save);
    char *action = strtok_r(NULL, ":", &save);
    char *nth = strtok_r(NULL, ":", &save);
    char *extra = strtok_r(NULL, ":", &save);
    memset(r, 0, sizeof(*r));
    if (!op || !action || extra)
        return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1, "bad rule (expected op:action[:n])");
    size_t i = 0;
    while (i < F_NOPS && strcmp(op, fop_names[i]) != 0)
        i++;
    if (i == F_NOPS)
        return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1,
                           "unknown op '%s' (put_block, commit, put_blob, get, props, list, delete, any)",
                           op);
    r->op = (enum fop)i;
    if (strncmp(action, "fail=", 5) == 0) {
        r->fail_errno = parse_errno(action + 5);
        if (!r->fail_errno)
            return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1, "unknown errno name '%s'", action + 5);
    } else if (strncmp(action, "delay=", 6) == 0) {
        char *end = NULL;
        unsigned long ms = strtoul(action + 6, &end, 10);
        if (end == action + 6 || *end || ms > 600000)
            return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1, "bad delay '%s' (milliseconds)",
                               action + 6);
        r->delay_ms = (unsigned)ms;
    } else {
        return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1,
                           "unknown action '%s' (fail=ERRNO or delay=MS)", action);
    }
    if (nth) {
        char *end = NULL;
        unsigned long long n = strtoull(nth, &end, 10);
        if (end == nth || *end || n == 0)
            return ccr_err_set(err, -EINVAL, "CCR_STORE_FAULTS", -1, "bad call number '%s' (1-based)", nth);
        r->nth = n;
    }
    return 0;
}

/* Counts the call and applies the matching rules: 0 to proceed, or the injected -errno. */
static int check(struct fault *f, enum fop op, const char *where, struct ccr_err *err)
{
    uint64_t n_any = atomic_fetch_add(&f->count[F_ANY], 1) + 1;
    uint64_t n_op = op == F_ANY ? n_any : atomic_fetch_add(&f->count[op], 1) + 1;
    const struct rule *failing = NULL;
    uint64_t failing_n = 0;
    for (size_t i = 0; i < f->n_rules; i++) {
        const struct rule *r = &f->rules[i];
        uint64_t n;
        if (r->op == op)
            n = n_op;
        else if (r->op == F_ANY)
            n = n_any;
        else
            continue;
        if (r->nth && r->nth != n)
            continue;
        if (r->delay_ms) {
            struct timespec ts = {.tv_sec = r->delay_ms / 1000,
                                  .tv_nsec = (long)(r->delay_ms % 1000) * 1000000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        if (r->fail_errno && !failing) {
            failing = r;
            failing_n = n;
        }
    }
    if (!failing)
        return 0;
    return ccr_err_set(err, -failing->fail_errno, where, -1, "injected fault: %s call %llu fails with %s",
                       fop_names[failing->op], (unsigned long long)failing_n,
                       ccr_blob_strerror(failing->fail_errno));
}

static int f_create_container(struct ccr_store *s, bool *out_created, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_ANY, s->url, err);
    return rc < 0 ? rc : f->inner->ops->create_container(f->inner, out_created, err);
}

static int f_put_block(struct ccr_store *s, const char *blob, uint64_t index, uint64_t offset,
                       const void *data, size_t len, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_PUT_BLOCK, blob, err);
    return rc < 0 ? rc : f->inner->ops->put_block(f->inner, blob, index, offset, data, len, err);
}

static int f_commit_blocks(struct ccr_store *s, const char *blob, uint64_t n_blocks,
                           struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_COMMIT, blob, err);
    return rc < 0 ? rc : f->inner->ops->commit_blocks(f->inner, blob, n_blocks, out_props, err);
}

static int f_put_blob(struct ccr_store *s, const char *blob, const void *data, size_t len,
                      struct ccr_blob_props *out_props, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_PUT_BLOB, blob, err);
    return rc < 0 ? rc : f->inner->ops->put_blob(f->inner, blob, data, len, out_props, err);
}

static ssize_t f_get(struct ccr_store *s, const char *blob, uint64_t offset, void *buf, size_t len,
                     const char *if_match, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_GET, blob, err);
    return rc < 0 ? rc : f->inner->ops->get(f->inner, blob, offset, buf, len, if_match, err);
}

static int f_props(struct ccr_store *s, const char *blob, struct ccr_blob_props *out, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_PROPS, blob, err);
    return rc < 0 ? rc : f->inner->ops->props(f->inner, blob, out, err);
}

static int f_delete(struct ccr_store *s, const char *blob, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_DELETE, blob, err);
    return rc < 0 ? rc : f->inner->ops->del(f->inner, blob, err);
}

static int f_list(struct ccr_store *s, const char *prefix, const char *delimiter, const char *marker,
                  size_t max_results, struct ccr_blob_page *out, struct ccr_err *err)
{
    struct fault *f = F(s);
    int rc = check(f, F_LIST, s->url, err);
    return rc < 0 ? rc : f->inner->ops->list(f->inner, prefix, delimiter, marker, max_results, out, err);
}

static void f_destroy(struct ccr_store *s)
{
    struct fault *f = F(s);
    f->inner->ops->destroy(f->inner);
    ccr_free(f->rules);
    ccr_free(f);
}

static unsigned f_parallelism(const struct ccr_store *s)
{
    const struct fault *f = s->impl;
    return f->inner->ops->parallelism ? f->inner->ops->parallelism(f->inner) : 0;
}

static unsigned f_concurrency_now(const struct ccr_store *s)
{
    const struct fault *f = s->impl;
    return ccr_store_concurrency_now(f->inner);
}

static void f_stats(const struct ccr_store *s, struct ccr_store_stats *out)
{
    const struct fault *f = s->impl;
    ccr_store_get_stats(f->inner, out);
}

static const struct ccr_store_ops fault_ops = {
    .scheme = "fault",
    .destroy = f_destroy,
    .create_container = f_create_container,
    .put_block = f_put_block,
    .commit_blocks = f_commit_blocks,
    .put_blob = f_put_blob,
    .get = f_get,
    .props = f_props,
    .parallelism = f_parallelism,
    .concurrency_now = f_concurrency_now,
    .stats = f_stats,
    .del = f_delete,
    .list = f_list,
};

int ccr_fault_wrap(struct ccr_store *inner, const char *spec, struct ccr_store **out, struct ccr_err *err)
{
    char *copy = ccr_blob_strdup(spec);
    struct fault *f = ccr_calloc(1, sizeof(*f));
    size_t max_rules = 1;
    for (const char *p = spec; *p; p++)
        max_rules += *p == ',';
    struct rule *rules = ccr_calloc(max_rules, sizeof(*rules));
    int rc = 0;
    if (!copy || !f || !rules) {
        rc = ccr_err_set(err, -ENOMEM, "CCR_STORE_FAULTS", -1, "out of memory");
        goto fail;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        rc = parse_rule(tok, &rules[n], err);
        if (rc < 0)
            goto fail;
        n++;
    }
    f->inner = inner;
    f->rules = rules;
    f->n_rules = n;
    for (size_t i = 0; i < F_NOPS; i++)
        atomic_init(&f->count[i], 0);
    f->base.ops = &fault_ops;
    f->base.url = inner->url; /* borrowed: the inner store outlives the wrapper's use of it */
    f->base.impl = f;
    ccr_free(copy);
    *out = &f->base;
    return 0;
fail:
    ccr_free(copy);
    ccr_free(rules);
    ccr_free(f);
    return rc;
}
