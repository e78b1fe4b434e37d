/*
 * spec.c - the clean room specification (docs/governance.md, "Specification"): merging the parties'
 * fragments, validating the merged spec, and the deployment spec and measurement the launcher and the
 * governance service agree on ("Deployment spec").
 *
 * Validation never stops at the first problem: a party fixing a spec wants the whole list, each entry
 * naming the item (datasources[cowin], applications[demo-app].mounts, network.egress) so it can be found.
 * Items without a usable name are named by position (datasources[#2], counting from 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ccr/crypto.h"
#include "ccr/spec.h"

#define NAME_MAX_LEN 63

static const char *const MODES[] = {"ccr1", "cleanroom-cse", "none", "cpk"};

/* ----------------------------------------------------------------------------------------------------- */
/* Canonical bytes and measurement                                                                        */
/* ----------------------------------------------------------------------------------------------------- */

int ccr_json_canonical(const json_t *v, char **out, size_t *out_len)
{
    if (!v || !out)
        return -EINVAL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        return -ENOMEM;
    *out = s;
    if (out_len)
        *out_len = strlen(s);
    return 0;
}

int ccr_json_measure(const json_t *v, uint8_t out[32])
{
    char *s;
    size_t n;
    int rc = ccr_json_canonical(v, &s, &n);
    if (rc < 0)
        return rc;
    unsigned int mdlen = 0;
    rc = EVP_Digest(s, n, out, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32 ? 0 : -EIO;
    free(s);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Merge                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static const char *const LISTS[] = {"parties", "datasources", "datasinks", "applications"};

static bool is_list_key(const char *k)
{
    for (size_t i = 0; i < sizeof(LISTS) / sizeof(LISTS[0]); i++)
        if (strcmp(k, LISTS[i]) == 0)
            return true;
    return false;
}

/* "party northwind" (the fragment's first party) or "fragment 2". */
static void frag_label(const json_t *frag, size_t i, char *buf, size_t cap)
{
    const char *name =
        json_string_value(json_object_get(json_array_get(json_object_get(frag, "parties"), 0), "name"));
    if (name)
        snprintf(buf, cap, "party %s", name);
    else
        snprintf(buf, cap, "fragment %zu", i + 1);
}

int ccr_spec_merge(const json_t *const *frags, size_t n, json_t **out, struct ccr_err *err)
{
    if (!frags || n == 0 || !out)
        return ccr_err_set(err, -EINVAL, NULL, -1, "no fragments to merge");
    for (size_t i = 0; i < n; i++)
        if (!json_is_object(frags[i]))
            return ccr_err_set(err, -EINVAL, NULL, -1, "fragment %zu is not a mapping", i + 1);

    json_t *m = json_object();
    if (!m)
        return -ENOMEM;
    int rc = 0;
    for (size_t l = 0; l < sizeof(LISTS) / sizeof(LISTS[0]) && rc == 0; l++) {
        json_t *all = json_array();
        if (!all || json_object_set_new(m, LISTS[l], all) != 0) {
            rc = -ENOMEM;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *items = json_object_get(frags[i], LISTS[l]);
            if (!items || json_is_null(items))
                continue;
            if (!json_is_array(items)) {
                char label[128];
                frag_label(frags[i], i, label, sizeof(label));
                rc = ccr_err_set(err, -EINVAL, NULL, -1, "%s: %s is not a list", label, LISTS[l]);
                break;
            }
            for (size_t j = 0; j < json_array_size(items); j++)
                if (json_array_append_new(all, json_deep_copy(json_array_get(items, j))) != 0) {
                    rc = -ENOMEM;
                    break;
                }
        }
    }

    /* every other key (network, logging, telemetry, and unknown ones validation will report) is taken
     * from the one fragment that sets it */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)frags[i], k, v)
        {
            if (is_list_key(k))
                continue;
            json_t *have = json_object_get(m, k);
            if (have) {
                if (json_equal(have, v))
                    continue;
                size_t first = 0;
                while (first < i && !json_object_get(frags[first], k))
                    first++;
                char a[128], b[128];
                frag_label(frags[first], first, a, sizeof(a));
                frag_label(frags[i], i, b, sizeof(b));
                rc = ccr_err_set(err, -EINVAL, NULL, -1,
                                 "%s is set differently by %s and %s: one party sets it, or both the same", k,
                                 a, b);
                break;
            }
            if (json_object_set_new(m, k, json_deep_copy(v)) != 0) {
                rc = -ENOMEM;
                break;
            }
        }
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            ccr_err_set(err, rc, NULL, -1, "out of memory");
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Validation                                                                                             */
/* ----------------------------------------------------------------------------------------------------- */

struct vstate {
    json_t *problems; /* may be NULL */
    int count;
};

static void problem(struct vstate *vs, const char *fmt, ...) CCR_PRINTF(2, 3);

static void problem(struct vstate *vs, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    vs->count++;
    if (vs->problems)
        (void)json_array_append_new(vs->problems, json_string(buf));
}

/* [A-Za-z0-9][A-Za-z0-9._-]*, at most 63 characters. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static bool lower_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool known_mode(const char *m)
{
    for (size_t i = 0; i < sizeof(MODES) / sizeof(MODES[0]); i++)
        if (strcmp(m, MODES[i]) == 0)
            return true;
    return false;
}

static bool encrypted_mode(const char *m)
{
    return strcmp(m, "ccr1") == 0 || strcmp(m, "cleanroom-cse") == 0;
}

/* The label of item i of list: "datasources[cowin]" or "datasources[#2]" when it has no usable name. */
static void item_label(const char *list, const json_t *item, size_t i, char *buf, size_t cap)
{
    const char *name = json_string_value(json_object_get(item, "name"));
    if (name && name[0] && strlen(name) <= 100)
        snprintf(buf, cap, "%s[%s]", list, name);
    else
        snprintf(buf, cap, "%s[#%zu]", list, i + 1);
}

/* Reports fields of obj not in allowed (NULL-terminated). */
static void unknown_fields(struct vstate *vs, const char *label, const json_t *obj,
                           const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok)
            problem(vs, "%s: unknown field '%.100s'", label, k);
    }
}

/* A required string field: reports missing or wrong type; returns the value or NULL. */
static const char *req_string(struct vstate *vs, const char *label, const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        problem(vs, "%s: missing %s", label, field);
        return NULL;
    }
    if (!json_is_string(v)) {
        problem(vs, "%s: %s must be a string", label, field);
        return NULL;
    }
    if (json_string_length(v) == 0) {
        problem(vs, "%s: %s is empty", label, field);
        return NULL;
    }
    return json_string_value(v);
}

static const char *opt_string(struct vstate *vs, const char *label, const json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v) || json_string_length(v) == 0) {
        problem(vs, "%s: %s must be a non-empty string", label, field);
        return NULL;
    }
    return json_string_value(v);
}

/* A list at the top level: NULL when absent (reported when required) or not a list (reported). */
static const json_t *top_list(struct vstate *vs, const json_t *spec, const char *key, bool required)
{
    json_t *v = json_object_get(spec, key);
    if (!v || json_is_null(v)) {
        if (required)
            problem(vs, "%s: missing (at least one is needed)", key);
        return NULL;
    }
    if (!json_is_array(v)) {
        problem(vs, "%s: must be a list", key);
        return NULL;
    }
    if (required && json_array_size(v) == 0)
        problem(vs, "%s: empty (at least one is needed)", key);
    return v;
}

/* Whether an item of items is named name. */
static bool in_list(const json_t *items, const char *name)
{
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(items, i), "name"));
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* Compares mount paths ignoring trailing slashes. */
static bool same_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

static bool path_has_dotdot(const char *p)
{
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.'))
            return true;
        s += n;
    }
    return false;
}

static bool base64_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 != 0 || n > 64 * 1024)
        return false;
    uint8_t *buf = malloc(n);
    if (!buf)
        return true; /* cannot tell: do not invent a problem */
    int rc = ccr_base64_decode(s, n, buf, n);
    free(buf);
    return rc > 0;
}

/* Item i of the list named list: its label in label[160], reported and NULL when it is not a mapping
 * (not_mapping completes "LABEL: "), else with its unknown fields reported. */
static const json_t *list_item(struct vstate *vs, const char *list, const json_t *items, size_t i,
                               char label[160], const char *not_mapping, const char *const *allowed)
{
    const json_t *it = json_array_get(items, i);
    item_label(list, it, i, label, 160);
    if (!json_is_object(it)) {
        problem(vs, "%s: %s", label, not_mapping);
        return NULL;
    }
    unknown_fields(vs, label, it, allowed);
    return it;
}

/* The required field name, reported when missing or not allowed by name_ok. */
static const char *req_name(struct vstate *vs, const char *label, const json_t *obj)
{
    const char *name = req_string(vs, label, obj, "name");
    if (name && !name_ok(name))
        problem(vs, "%s: name '%.100s' is not allowed (letters, digits, '.', '_', '-'; at most 63)", label,
                name);
    return name;
}

static void check_parties(struct vstate *vs, const json_t *parties)
{
    static const char *const allowed[] = {"name", "member_id", NULL};
    for (size_t i = 0; i < json_array_size(parties); i++) {
        char label[160];
        const json_t *p = list_item(vs, "parties", parties, i, label,
                                    "must be a mapping with name (and member_id)", allowed);
        if (!p)
            continue;
        const char *name = req_name(vs, label, p);
        const char *mid = opt_string(vs, label, p, "member_id");
        if (mid && !lower_hex64(mid))
            problem(vs, "%s: member_id must be 64 lowercase hex digits (see 'ccr gov member id')", label);
        for (size_t j = 0; j < i; j++) {
            const json_t *q = json_array_get(parties, j);
            const char *qn = json_string_value(json_object_get(q, "name"));
            if (name && qn && strcmp(name, qn) == 0)
                problem(vs, "duplicate party name '%.100s' (parties #%zu and #%zu)", name, j + 1, i + 1);
            const char *qm = json_string_value(json_object_get(q, "member_id"));
            if (mid && qm && strcmp(mid, qm) == 0)
                problem(vs, "duplicate member_id %.64s (parties #%zu and #%zu)", mid, j + 1, i + 1);
        }
    }
}

static void check_stores(struct vstate *vs, const char *list, const json_t *items, const json_t *parties)
{
    static const char *const allowed[] = {"name",       "owner",      "url",         "mode",
                                          "mount_path", "kek_secret", "wrapped_dek", NULL};
    for (size_t i = 0; i < json_array_size(items); i++) {
        char label[160];
        const json_t *d = list_item(vs, list, items, i, label, "must be a mapping", allowed);
        if (!d)
            continue;
        (void)req_name(vs, label, d);
        const char *owner = req_string(vs, label, d, "owner");
        if (owner && parties && !in_list(parties, owner))
            problem(vs, "%s: owner '%.100s' is not a party", label, owner);
        (void)req_string(vs, label, d, "url");
        const char *mode = req_string(vs, label, d, "mode");
        const char *mp = req_string(vs, label, d, "mount_path");
        if (mp && mp[0] != '/')
            problem(vs, "%s: mount_path '%.200s' is not absolute", label, mp);
        else if (mp && (strcmp(mp, "/") == 0 || path_has_dotdot(mp)))
            problem(vs, "%s: mount_path '%.200s' must name a directory below / without '.' or '..'", label,
                    mp);
        const char *kek = opt_string(vs, label, d, "kek_secret");
        const char *wdek = opt_string(vs, label, d, "wrapped_dek");
        if (wdek && !base64_ok(wdek))
            problem(vs, "%s: wrapped_dek is not base64", label);
        if (mode && !known_mode(mode))
            problem(vs, "%s: unknown mode '%.100s' (use ccr1, cleanroom-cse, none or cpk)", label, mode);
        else if (mode && encrypted_mode(mode) && (!kek || !wdek))
            problem(vs, "%s: mode %s needs kek_secret and wrapped_dek", label, mode);
        else if (mode && strcmp(mode, "none") == 0 && (kek || wdek))
            problem(vs, "%s: mode none takes no kek_secret or wrapped_dek (the data is not encrypted)",
                    label);
    }
}

/* Access point names and mount paths across datasources and datasinks. */
static void check_access_points(struct vstate *vs, const json_t *src, const json_t *snk)
{
    const json_t *lists[2] = {src, snk};
    const char *names[2] = {"datasources", "datasinks"};
    for (int la = 0; la < 2; la++)
        for (size_t i = 0; i < json_array_size(lists[la]); i++) {
            const json_t *a = json_array_get(lists[la], i);
            const char *an = json_string_value(json_object_get(a, "name"));
            const char *ap = json_string_value(json_object_get(a, "mount_path"));
            for (int lb = 0; lb <= la; lb++) {
                size_t jend = lb == la ? i : json_array_size(lists[lb]);
                for (size_t j = 0; j < jend; j++) {
                    const json_t *b = json_array_get(lists[lb], j);
                    const char *bn = json_string_value(json_object_get(b, "name"));
                    const char *bp = json_string_value(json_object_get(b, "mount_path"));
                    char la_s[160], lb_s[160];
                    item_label(names[lb], b, j, lb_s, sizeof(lb_s));
                    item_label(names[la], a, i, la_s, sizeof(la_s));
                    if (an && bn && an[0] && strcmp(an, bn) == 0)
                        problem(vs, "duplicate name '%.100s' (%s #%zu and %s #%zu)", an, names[lb], j + 1,
                                names[la], i + 1);
                    if (ap && bp && ap[0] == '/' && same_path(ap, bp))
                        problem(vs, "duplicate mount path %.200s (%s, %s)", ap, lb_s, la_s);
                }
            }
        }
}

static void check_applications(struct vstate *vs, const json_t *apps, const json_t *src, const json_t *snk)
{
    static const char *const allowed[] = {"name", "command", "env", "mounts", NULL};
    for (size_t i = 0; i < json_array_size(apps); i++) {
        char label[160];
        const json_t *a = list_item(vs, "applications", apps, i, label, "must be a mapping", allowed);
        if (!a)
            continue;
        const char *name = req_name(vs, label, a);
        for (size_t j = 0; j < i && name; j++) {
            const char *o = json_string_value(json_object_get(json_array_get(apps, j), "name"));
            if (o && strcmp(o, name) == 0)
                problem(vs, "duplicate application name '%.100s' (applications #%zu and #%zu)", name, j + 1,
                        i + 1);
        }

        const json_t *cmd = json_object_get(a, "command");
        if (!cmd || json_is_null(cmd)) {
            problem(vs, "%s: missing command", label);
        } else {
            bool ok = json_is_array(cmd) && json_array_size(cmd) > 0;
            for (size_t j = 0; ok && j < json_array_size(cmd); j++)
                ok = json_is_string(json_array_get(cmd, j));
            if (ok)
                ok = json_string_length(json_array_get(cmd, 0)) > 0;
            if (!ok)
                problem(vs, "%s.command: must be a non-empty list of strings (program, then arguments)",
                        label);
        }

        const json_t *env = json_object_get(a, "env");
        if (env && !json_is_null(env)) {
            if (!json_is_object(env)) {
                problem(vs, "%s.env: must be a mapping of names to strings", label);
            } else {
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)env, k, v)
                {
                    if (!json_is_string(v))
                        problem(vs, "%s.env.%.100s: must be a string (quote it)", label, k);
                    if (!k[0] || strchr(k, '='))
                        problem(vs, "%s.env: variable name '%.100s' is empty or holds '='", label, k);
                }
            }
        }

        const json_t *mounts = json_object_get(a, "mounts");
        if (mounts && !json_is_null(mounts)) {
            if (!json_is_array(mounts)) {
                problem(vs, "%s.mounts: must be a list of access point names", label);
                continue;
            }
            for (size_t j = 0; j < json_array_size(mounts); j++) {
                const char *m = json_string_value(json_array_get(mounts, j));
                if (!m) {
                    problem(vs, "%s.mounts: entry #%zu is not a name", label, j + 1);
                    continue;
                }
                if (!in_list(src, m) && !in_list(snk, m))
                    problem(vs, "%s.mounts: unknown access point '%.100s'", label, m);
                for (size_t k = 0; k < j; k++) {
                    const char *o = json_string_value(json_array_get(mounts, k));
                    if (o && strcmp(o, m) == 0)
                        problem(vs, "%s.mounts: '%.100s' is listed twice", label, m);
                }
            }
        }
    }
}

static void check_network(struct vstate *vs, const json_t *net)
{
    static const char *const allowed[] = {"egress", "allow", NULL};
    if (!json_is_object(net)) {
        problem(vs, "network: must be a mapping (egress, allow)");
        return;
    }
    unknown_fields(vs, "network", net, allowed);
    const char *eg = req_string(vs, "network", net, "egress");
    if (eg && strcmp(eg, "deny") != 0 && strcmp(eg, "allow") != 0)
        problem(vs, "network.egress: unknown value '%.100s' (use deny or allow)", eg);
    const json_t *allow = json_object_get(net, "allow");
    if (allow && !json_is_null(allow)) {
        if (!json_is_array(allow)) {
            problem(vs, "network.allow: must be a list of host names");
            return;
        }
        for (size_t i = 0; i < json_array_size(allow); i++) {
            const char *h = json_string_value(json_array_get(allow, i));
            if (!h || !h[0] || strpbrk(h, " /\t\n"))
                problem(vs, "network.allow: entry #%zu is not a host name", i + 1);
        }
        if (eg && strcmp(eg, "allow") == 0 && json_array_size(allow) > 0)
            problem(vs, "network.allow: host names apply only when egress is deny (egress allow allows all)");
    }
}

static void check_sink(struct vstate *vs, const char *key, const json_t *v, const json_t *src,
                       const json_t *snk)
{
    static const char *const allowed[] = {"sink", NULL};
    if (!json_is_object(v)) {
        problem(vs, "%s: must be a mapping (sink)", key);
        return;
    }
    unknown_fields(vs, key, v, allowed);
    const char *sink = opt_string(vs, key, v, "sink");
    if (!sink)
        return;
    if (in_list(snk, sink))
        return;
    if (in_list(src, sink))
        problem(vs, "%s.sink: '%.100s' is a datasource: the sink must be a datasink (written read-write)",
                key, sink);
    else
        problem(vs, "%s.sink: unknown datasink '%.100s'", key, sink);
}

int ccr_spec_validate(const json_t *spec, json_t *problems)
{
    struct vstate vs = {.problems = problems};
    static const char *const allowed[] = {"parties", "datasources", "datasinks", "applications",
                                          "network", "logging",     "telemetry", NULL};
    if (!json_is_object(spec)) {
        problem(&vs, "spec: must be a mapping (parties, datasources, datasinks, applications, ...)");
        return vs.count;
    }
    unknown_fields(&vs, "spec", spec, allowed);
    const json_t *parties = top_list(&vs, spec, "parties", true);
    const json_t *src = top_list(&vs, spec, "datasources", false);
    const json_t *snk = top_list(&vs, spec, "datasinks", false);
    const json_t *apps = top_list(&vs, spec, "applications", false);
    check_parties(&vs, parties);
    check_stores(&vs, "datasources", src, parties);
    check_stores(&vs, "datasinks", snk, parties);
    check_access_points(&vs, src, snk);
    check_applications(&vs, apps, src, snk);
    const json_t *net = json_object_get(spec, "network");
    if (net && !json_is_null(net))
        check_network(&vs, net);
    static const char *const sinks[] = {"logging", "telemetry"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(spec, sinks[i]);
        if (v && !json_is_null(v))
            check_sink(&vs, sinks[i], v, src, snk);
    }
    return vs.count;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Deployment spec                                                                                        */
/* ----------------------------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/* Appends the items of arr to out sorted by name (names are unique strings in a valid spec). */
static int append_sorted(json_t *out, json_t **items, size_t n)
{
    qsort(items, n, sizeof(items[0]), by_name);
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(out, items[i]) != 0) {
            for (size_t j = i + 1; j < n; j++)
                json_decref(items[j]);
            return -ENOMEM;
        }
    return 0;
}

static json_t *copy_field(const json_t *obj, const char *k)
{
    json_t *v = json_object_get(obj, k);
    return v ? json_deep_copy(v) : NULL;
}

/* The deployment form of an access point: its fields and access (read-only for datasources). */
static json_t *build_mount(const json_t *d, size_t list)
{
    static const char *const fields[] = {"name",       "owner",      "url",        "mode",
                                         "mount_path", "kek_secret", "wrapped_dek"};
    json_t *m = json_object();
    for (size_t f = 0; m && f < sizeof(fields) / sizeof(fields[0]); f++) {
        json_t *v = json_object_get(d, fields[f]);
        if (v && !json_is_null(v) && json_object_set(m, fields[f], v) != 0) {
            json_decref(m);
            return NULL;
        }
    }
    if (m && json_object_set_new(m, "access", json_string(list == 0 ? "read-only" : "read-write")) != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static json_t *build_application(const json_t *a, size_t list)
{
    (void)list;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *env = copy_field(a, "env");
    json_t *mounts = copy_field(a, "mounts");
    if (json_object_set(o, "name", json_object_get(a, "name")) != 0 ||
        json_object_set_new(o, "command", copy_field(a, "command")) != 0 ||
        json_object_set_new(o, "env", env && !json_is_null(env) ? env : json_object()) != 0 ||
        json_object_set_new(o, "mounts", mounts && !json_is_null(mounts) ? mounts : json_array()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *build_party(const json_t *src, size_t list)
{
    (void)list;
    json_t *p = json_object();
    if (!p)
        return NULL;
    json_t *mid = json_object_get(src, "member_id");
    if (json_object_set(p, "name", json_object_get(src, "name")) != 0 ||
        (mid && !json_is_null(mid) && json_object_set(p, "member_id", mid) != 0)) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Appends build(item, l) for every item of the lists spec[keys[l]] to out, sorted by name. */
static int build_sorted(const json_t *spec, const char *const *keys, size_t nkeys, json_t *out,
                        json_t *(*build)(const json_t *item, size_t list))
{
    size_t n = 0;
    for (size_t l = 0; l < nkeys; l++)
        n += json_array_size(json_object_get(spec, keys[l]));
    json_t **items = calloc(n ? n : 1, sizeof(*items));
    if (!items)
        return -ENOMEM;
    size_t k = 0;
    int rc = 0;
    for (size_t l = 0; l < nkeys && rc == 0; l++) {
        const json_t *list = json_object_get(spec, keys[l]);
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *o = build(json_array_get(list, i), l);
            if (!o) {
                rc = -ENOMEM;
                break;
            }
            items[k++] = o;
        }
    }
    if (rc == 0)
        rc = append_sorted(out, items, k);
    else
        for (size_t i = 0; i < k; i++)
            json_decref(items[i]);
    free(items);
    return rc;
}

int ccr_spec_deployment(const char *contract_id, int64_t contract_version, const json_t *spec, json_t **out,
                        struct ccr_err *err)
{
    if (!contract_id || !contract_id[0] || !spec || !out)
        return ccr_err_set(err, -EINVAL, contract_id, -1, "no contract id or spec given");
    json_t *problems = json_array();
    if (!problems)
        return ccr_err_set(err, -ENOMEM, contract_id, -1, "out of memory");
    int np = ccr_spec_validate(spec, problems);
    if (np > 0) {
        int rc = ccr_err_set(err, -EINVAL, contract_id, -1, "the contract's spec is not valid: %s%s",
                             json_string_value(json_array_get(problems, 0)),
                             np > 1 ? " (and more: see 'ccr spec validate')" : "");
        json_decref(problems);
        return rc;
    }
    json_decref(problems);

    json_t *d = json_object();
    json_t *gov = json_object(), *parties = json_array(), *mounts = json_array(), *apps = json_array();
    int rc = 0;
    if (!d || !gov || !parties || !mounts || !apps) {
        json_decref(gov);
        json_decref(parties);
        json_decref(mounts);
        json_decref(apps);
        rc = -ENOMEM;
        goto out;
    }
    if (json_object_set_new(d, "contract_id", json_string(contract_id)) != 0 ||
        json_object_set_new(d, "contract_version", json_integer(contract_version)) != 0 ||
        json_object_set_new(gov, "parties", parties) != 0 || json_object_set_new(d, "governance", gov) != 0 ||
        json_object_set_new(d, "mounts", mounts) != 0 || json_object_set_new(d, "applications", apps) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    static const char *const party_keys[] = {"parties"}, *const mount_keys[] = {"datasources", "datasinks"},
                             *const app_keys[] = {"applications"};
    rc = build_sorted(spec, party_keys, 1, parties, build_party);
    if (rc == 0)
        rc = build_sorted(spec, mount_keys, 2, mounts, build_mount);
    if (rc == 0)
        rc = build_sorted(spec, app_keys, 1, apps, build_application);
    if (rc < 0)
        goto out;

    /* only the fields validation allows, with their defaults: equivalent specs measure the same */
    json_t *net = json_object_get(spec, "network");
    json_t *allow = json_object_get(net, "allow");
    const char *egress = json_string_value(json_object_get(net, "egress"));
    json_t *netc = json_pack("{s:s, s:o}", "egress", egress ? egress : "deny", "allow",
                             json_is_array(allow) ? json_deep_copy(allow) : json_array());
    if (json_object_set_new(d, "network", netc) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    static const char *const sinks[] = {"logging", "telemetry"};
    for (size_t i = 0; i < 2; i++) {
        const char *sink = json_string_value(json_object_get(json_object_get(spec, sinks[i]), "sink"));
        json_t *c = sink ? json_pack("{s:s}", "sink", sink) : json_object();
        if (json_object_set_new(d, sinks[i], c) != 0) {
            rc = -ENOMEM;
            goto out;
        }
    }
out:
    if (rc < 0) {
        json_decref(d);
        return ccr_err_set(err, rc, contract_id, -1, "cannot build the deployment spec: out of memory");
    }
    *out = d;
    return 0;
}
