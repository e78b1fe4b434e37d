/*
 * fuzz_spec_parse.c - the clean room spec reader (governance/spec_yaml.c) and what consumes its output
 * (governance/spec.c).
 *
 * The input is a spec file, YAML or JSON. Invariants, abort() on violation:
 * - ccr_spec_parse returns 0, -EBADMSG or -ENOMEM; on failure *out stays NULL and err has the same code, a
 *   message and, for -EBADMSG, a where starting with the file name.
 * - On success: the canonical bytes parse back (as JSON) to an equal value and have the same measurement;
 *   validation's count equals the problems it lists, and is the same with a NULL list; a value without
 *   reals survives a YAML save and load unchanged; an object merges with itself (n = 1) to a value that
 *   validates the same way, and when it is valid the deployment spec builds twice to the same bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr/spec.h"
#include "fuzz.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

static bool has_real(const json_t *v)
{
    if (json_is_real(v))
        return true;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_real(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (has_real(x))
                return true;
        }
    }
    return false;
}

static void check_yaml_round_trip(const json_t *v)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/fuzz_spec_parse.%ld.yaml", (long)getpid());
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_spec_save(path, v, &err);
    if (rc == -ENOMEM || rc == -ENOSPC || rc == -EACCES || rc == -EROFS)
        return;
    CHECK(rc == 0);
    json_t *back = NULL;
    rc = ccr_spec_load(path, &back, &err);
    unlink(path);
    if (rc == -ENOMEM)
        return;
    CHECK(rc == 0);
    CHECK(json_equal((json_t *)v, back));
    json_decref(back);
}

static void check_spec(const json_t *v)
{
    json_t *problems = json_array();
    if (!problems)
        return;
    int n = ccr_spec_validate(v, problems);
    CHECK(n >= 0 && (size_t)n == json_array_size(problems));
    CHECK(ccr_spec_validate(v, NULL) == n);
    for (size_t i = 0; i < json_array_size(problems); i++)
        CHECK(json_string_length(json_array_get(problems, i)) > 0);
    json_decref(problems);
    if (!json_is_object(v))
        return;

    const json_t *frags[1] = {v};
    json_t *m = NULL;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_spec_merge(frags, 1, &m, &err);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc < 0) {
        CHECK(m == NULL);
        return;
    }
    /* merging one fragment only adds empty lists: no problem appears or disappears but "missing parties" */
    int nm = ccr_spec_validate(m, NULL);
    if (n == 0)
        CHECK(nm == 0);
    if (nm == 0) {
        json_t *d1 = NULL, *d2 = NULL;
        rc = ccr_spec_deployment("c", 1, m, &d1, &err);
        CHECK(rc == 0 || rc == -ENOMEM);
        if (rc == 0 && ccr_spec_deployment("c", 1, m, &d2, &err) == 0) {
            char *a = NULL, *b = NULL;
            size_t la = 0, lb = 0;
            if (ccr_json_canonical(d1, &a, &la) == 0 && ccr_json_canonical(d2, &b, &lb) == 0)
                CHECK(la == lb && memcmp(a, b, la) == 0);
            free(a);
            free(b);
            CHECK(json_array_size(json_object_get(d1, "mounts")) ==
                  json_array_size(json_object_get(m, "datasources")) +
                      json_array_size(json_object_get(m, "datasinks")));
        }
        json_decref(d1);
        json_decref(d2);
    }
    json_decref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    struct ccr_err err;
    ccr_err_clear(&err);
    int rc = ccr_spec_parse((const char *)data, size, "fuzz.yaml", &v, &err);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
    if (rc < 0) {
        CHECK(v == NULL);
        CHECK(err.code == rc && err.msg[0] != '\0');
        if (rc == -EBADMSG)
            CHECK(strncmp(err.where, "fuzz.yaml", 9) == 0);
        return 0;
    }
    CHECK(v != NULL);

    char *canon = NULL;
    size_t len = 0;
    if (ccr_json_canonical(v, &canon, &len) == 0) {
        CHECK(strlen(canon) == len);
        json_t *back = NULL;
        struct ccr_err e2;
        ccr_err_clear(&e2);
        if (json_is_object(v) || json_is_array(v)) {
            rc = ccr_spec_parse(canon, len, "canonical", &back, &e2);
            CHECK(rc == 0 || rc == -ENOMEM);
            if (rc == 0) {
                CHECK(json_equal(v, back));
                uint8_t m1[32], m2[32];
                if (ccr_json_measure(v, m1) == 0 && ccr_json_measure(back, m2) == 0)
                    CHECK(memcmp(m1, m2, 32) == 0);
            }
            json_decref(back);
        }
        free(canon);
    }

    check_spec(v);
    if (!has_real(v))
        check_yaml_round_trip(v);
    json_decref(v);
    return 0;
}
