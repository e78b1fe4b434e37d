/*
 * config.c - the datastore config file (see ccr/datastore.h): path rules, JSON load with validation,
 * sorted in-memory list, atomic save.
 *
 * The file is small and read whole, so the in-memory form is a plain array kept sorted by name: lookups
 * are a linear scan (a person has a handful of datastores, not thousands). Validation happens at the
 * boundary, on load and on add, so every datastore the rest of the engine sees is well formed: a known
 * mode, a region size the mode accepts (0 replaced by the mode's default), an absolute key path for the
 * encrypted modes and none for mode none.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/datastore.h"

#define CONFIG_VERSION 1

struct ccr_config {
    char *path; /* absolute */
    char *dir;  /* its directory (for relative key paths and the parent to create) */
    struct ccr_datastore *ds;
    size_t count, cap;
};

/* ----------------------------------------------------------------------------------------------------- */
/* small helpers                                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ccr_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* a + "/" + b, or NULL on OOM. */
static char *join_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] != '/';
    char *p = ccr_malloc(la + slash + lb + 1);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    if (slash)
        p[la] = '/';
    memcpy(p + la + slash, b, lb + 1);
    return p;
}

/* path made absolute against the current directory (no symlink resolution: the file may not exist). */
static int absolute_path(const char *path, char **out)
{
    if (path[0] == '/') {
        *out = dup_str(path);
        return *out ? 0 : -ENOMEM;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return -errno;
    const char *rel = path;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    *out = join_path(cwd, rel);
    return *out ? 0 : -ENOMEM;
}

/* The directory part of an absolute path ("/" for a file in the root). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash && slash != path ? (size_t)(slash - path) : 1;
    char *d = ccr_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static void ds_fini(struct ccr_datastore *d)
{
    ccr_free(d->name);
    ccr_free(d->url);
    ccr_free(d->key_path);
    memset(d, 0, sizeof(*d));
}

static bool mode_allowed(enum ccr_mode m)
{
    return m == CCR_MODE_CCR1 || m == CCR_MODE_CSE || m == CCR_MODE_NONE || m == CCR_MODE_CPK;
}

/* Modes whose blobs hold the plaintext as it is (cpk: the server encrypts it): no region size. */
static bool mode_plain(enum ccr_mode m)
{
    return m == CCR_MODE_NONE || m == CCR_MODE_CPK;
}

/* ----------------------------------------------------------------------------------------------------- */
/* names, paths                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

static bool name_char(char c, bool first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

int ccr_datastore_name_check(const char *name, struct ccr_err *err)
{
    static const char rule[] = "a datastore name is 1 to 63 characters: letters, digits, '.', '_' or '-', "
                               "starting with a letter or a digit";
    if (!name || !*name)
        return ccr_err_set(err, -EINVAL, NULL, -1, "empty datastore name (%s)", rule);
    size_t n = strlen(name);
    if (n > CCR_DATASTORE_NAME_MAX)
        return ccr_err_set(err, -EINVAL, NULL, -1,
                           "datastore name '%.80s...' is too long: %zu characters (%s)", name, n, rule);
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i], i == 0))
            return ccr_err_set(err, -EINVAL, NULL, -1, "invalid datastore name '%s' (%s)", name, rule);
    return 0;
}

int ccr_config_path(const char *explicit_path, char **out_path, struct ccr_err *err)
{
    const char *v;
    char *p = NULL;
    if (explicit_path && *explicit_path) {
        p = dup_str(explicit_path);
    } else if ((v = getenv("CCR_CONFIG")) && *v) {
        p = dup_str(v);
    } else if ((v = getenv("XDG_CONFIG_HOME")) && v[0] == '/') {
        /* the XDG spec says a relative value is invalid and must be ignored */
        p = join_path(v, "ccr/config.json");
    } else if ((v = getenv("HOME")) && *v) {
        p = join_path(v, ".config/ccr/config.json");
    } else {
        return ccr_err_set(err, -ENOENT, NULL, -1,
                           "no config file: give --config FILE or set CCR_CONFIG, XDG_CONFIG_HOME or HOME");
    }
    if (!p)
        return ccr_err_set(err, -ENOMEM, NULL, -1, "out of memory");
    *out_path = p;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* the list                                                                                               */
/* ----------------------------------------------------------------------------------------------------- */

static struct ccr_config *config_new(const char *path, int *rc)
{
    struct ccr_config *cfg = ccr_calloc(1, sizeof(*cfg));
    if (!cfg) {
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = absolute_path(path, &cfg->path);
    if (*rc == 0 && !(cfg->dir = dir_of(cfg->path)))
        *rc = -ENOMEM;
    if (*rc) {
        ccr_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void ccr_config_free(struct ccr_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->count; i++)
        ds_fini(&cfg->ds[i]);
    ccr_free(cfg->ds);
    ccr_free(cfg->path);
    ccr_free(cfg->dir);
    ccr_free(cfg);
}

const char *ccr_config_file(const struct ccr_config *cfg)
{
    return cfg->path;
}

size_t ccr_config_count(const struct ccr_config *cfg)
{
    return cfg ? cfg->count : 0;
}

const struct ccr_datastore *ccr_config_at(const struct ccr_config *cfg, size_t i)
{
    return cfg && i < cfg->count ? &cfg->ds[i] : NULL;
}

/* Index of name, or where it would be inserted (*found says which). */
static size_t find_slot(const struct ccr_config *cfg, const char *name, bool *found)
{
    size_t i = 0;
    while (i < cfg->count) {
        int c = strcmp(cfg->ds[i].name, name);
        if (c == 0) {
            *found = true;
            return i;
        }
        if (c > 0)
            break;
        i++;
    }
    *found = false;
    return i;
}

const struct ccr_datastore *ccr_config_find(const struct ccr_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    bool found;
    size_t i = find_slot(cfg, name, &found);
    return found ? &cfg->ds[i] : NULL;
}

/*
 * Validates ds and builds a normalised copy in *out (region size defaulted, key path absolute against
 * the config directory). what names the datastore in messages; where is the config file.
 */
static int ds_normalise(const struct ccr_config *cfg, const struct ccr_datastore *ds,
                        struct ccr_datastore *out, struct ccr_err *err)
{
    int rc = ccr_datastore_name_check(ds->name, err);
    if (rc) {
        ccr_err_where(err, cfg->path);
        return rc;
    }
    if (!ds->url || !*ds->url)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastore '%s': missing url", ds->name);
    if (!mode_allowed(ds->mode))
        return ccr_err_set(err, -EINVAL, cfg->path, -1,
                           "datastore '%s': unknown mode '%s' (use ccr1, cleanroom-cse, none or cpk)",
                           ds->name, ccr_mode_name(ds->mode));
    uint64_t region = ds->region_size;
    if (mode_plain(ds->mode)) {
        if (region != 0)
            return ccr_err_set(err, -EINVAL, cfg->path, -1,
                               "datastore '%s': bad region size %llu (mode %s has no region size)", ds->name,
                               (unsigned long long)region, ccr_mode_name(ds->mode));
    } else {
        char why[160];
        if (ccr_region_size_check(ds->mode, region, why, sizeof(why)) != 0)
            return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastore '%s': bad region size %llu (%s)",
                               ds->name, (unsigned long long)region, why);
        if (region == 0)
            region = ccr_region_size_default(ds->mode);
    }
    bool has_key = ds->key_path && *ds->key_path;
    if (ds->mode == CCR_MODE_NONE && has_key)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastore '%s': mode none takes no key", ds->name);
    if (ds->mode != CCR_MODE_NONE && !has_key)
        return ccr_err_set(err, -EINVAL, cfg->path, -1,
                           "datastore '%s': missing key (mode %s needs a key file)", ds->name,
                           ccr_mode_name(ds->mode));

    struct ccr_datastore d = {.mode = ds->mode, .region_size = region};
    d.name = dup_str(ds->name);
    d.url = dup_str(ds->url);
    if (has_key)
        d.key_path = ds->key_path[0] == '/' ? dup_str(ds->key_path) : join_path(cfg->dir, ds->key_path);
    if (!d.name || !d.url || (has_key && !d.key_path)) {
        ds_fini(&d);
        return ccr_err_set(err, -ENOMEM, cfg->path, -1, "out of memory");
    }
    *out = d;
    return 0;
}

/* Takes ownership of *d (a normalised datastore) into the sorted array. */
static int insert_owned(struct ccr_config *cfg, struct ccr_datastore *d, bool replace, struct ccr_err *err)
{
    bool found;
    size_t i = find_slot(cfg, d->name, &found);
    if (found) {
        if (!replace)
            return ccr_err_set(err, -EEXIST, cfg->path, -1, "datastore '%s' already exists", d->name);
        ds_fini(&cfg->ds[i]);
        cfg->ds[i] = *d;
        memset(d, 0, sizeof(*d));
        return 0;
    }
    if (cfg->count == cfg->cap) {
        size_t ncap = cfg->cap ? cfg->cap * 2 : 8;
        struct ccr_datastore *n = ccr_realloc(cfg->ds, ncap * sizeof(*n));
        if (!n)
            return ccr_err_set(err, -ENOMEM, cfg->path, -1, "out of memory");
        cfg->ds = n;
        cfg->cap = ncap;
    }
    memmove(&cfg->ds[i + 1], &cfg->ds[i], (cfg->count - i) * sizeof(cfg->ds[0]));
    cfg->ds[i] = *d;
    cfg->count++;
    memset(d, 0, sizeof(*d));
    return 0;
}

int ccr_config_add(struct ccr_config *cfg, const struct ccr_datastore *ds, bool replace, struct ccr_err *err)
{
    if (!cfg || !ds)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    struct ccr_datastore d;
    int rc = ds_normalise(cfg, ds, &d, err);
    if (rc)
        return rc;
    rc = insert_owned(cfg, &d, replace, err);
    ds_fini(&d);
    return rc;
}

int ccr_config_remove(struct ccr_config *cfg, const char *name, struct ccr_err *err)
{
    if (!cfg || !name)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    bool found;
    size_t i = find_slot(cfg, name, &found);
    if (!found)
        return ccr_err_set(err, -ENOENT, cfg->path, -1, "unknown datastore '%s'", name);
    ds_fini(&cfg->ds[i]);
    memmove(&cfg->ds[i], &cfg->ds[i + 1], (cfg->count - i - 1) * sizeof(cfg->ds[0]));
    cfg->count--;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* load                                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

/* A string member: 0 and *out (borrowed), -ENOENT when absent or null, -EINVAL when not a string. */
static int get_str(json_t *obj, const char *field, const char **out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v))
        return -ENOENT;
    if (!json_is_string(v))
        return -EINVAL;
    *out = json_string_value(v);
    return 0;
}

/* Parses datastores[idx] into a normalised datastore. */
static int load_one(struct ccr_config *cfg, json_t *o, size_t idx, struct ccr_datastore *out,
                    struct ccr_err *err)
{
    char label[128];
    if (!json_is_object(o))
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastores[%zu] is not an object", idx);
    const char *name = NULL;
    int rc = get_str(o, "name", &name);
    if (rc == -ENOENT)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastores[%zu]: missing field 'name'", idx);
    if (rc)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "datastores[%zu]: field 'name' is not a string", idx);
    snprintf(label, sizeof(label), "datastore '%.63s'", name);
    if (ccr_datastore_name_check(name, NULL) != 0)
        snprintf(label, sizeof(label), "datastores[%zu]", idx);

    struct ccr_datastore d = {.name = (char *)name};
    static const char *const str_fields[] = {"url", "mode"};
    const char *vals[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        rc = get_str(o, str_fields[k], &vals[k]);
        if (rc == -ENOENT)
            return ccr_err_set(err, -EINVAL, cfg->path, -1, "%s: missing field '%s'", label, str_fields[k]);
        if (rc)
            return ccr_err_set(err, -EINVAL, cfg->path, -1, "%s: field '%s' is not a string", label,
                               str_fields[k]);
    }
    d.url = (char *)vals[0];
    if (ccr_mode_parse(vals[1], &d.mode) != 0 || !mode_allowed(d.mode))
        return ccr_err_set(err, -EINVAL, cfg->path, -1,
                           "%s: unknown mode '%s' (use ccr1, cleanroom-cse, none or cpk)", label, vals[1]);
    json_t *rs = json_object_get(o, "region_size");
    if (rs && !json_is_null(rs)) {
        if (!json_is_integer(rs) || json_integer_value(rs) < 0)
            return ccr_err_set(err, -EINVAL, cfg->path, -1,
                               "%s: field 'region_size' is not a non-negative integer", label);
        d.region_size = (uint64_t)json_integer_value(rs);
    }
    const char *key = NULL;
    rc = get_str(o, "key", &key);
    if (rc == -EINVAL)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "%s: field 'key' is not a string", label);
    if (rc == 0 && !*key)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "%s: field 'key' is empty", label);
    d.key_path = (char *)key;
    if (d.mode != CCR_MODE_NONE && !key)
        return ccr_err_set(err, -EINVAL, cfg->path, -1, "%s: missing field 'key' (mode %s needs a key file)",
                           label, vals[1]);
    return ds_normalise(cfg, &d, out, err);
}

int ccr_config_load(const char *path, struct ccr_config **out, struct ccr_err *err)
{
    if (!path || !*path)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing config path");
    int rc;
    struct ccr_config *cfg = config_new(path, &rc);
    if (!cfg)
        return ccr_err_set(err, rc, path, -1, "cannot resolve the config path: %s", strerror(-rc));

    struct stat st;
    if (stat(cfg->path, &st) != 0) {
        if (errno == ENOENT) {
            *out = cfg; /* no file yet: an empty config */
            return 0;
        }
        rc = -errno;
        ccr_err_set(err, rc, cfg->path, -1, "cannot read the config file: %s", strerror(-rc));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ccr_err_set(err, -EISDIR, cfg->path, -1, "is a directory, not a config file");
        goto fail;
    }
    json_error_t je;
    json_t *root = json_load_file(cfg->path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line < 0 && access(cfg->path, R_OK) != 0) {
            rc = -errno;
            ccr_err_set(err, rc, cfg->path, -1, "cannot read the config file: %s", strerror(-rc));
        } else {
            rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "malformed JSON at line %d, column %d: %s", je.line,
                             je.column, je.text);
        }
        goto fail;
    }
    rc = 0;
    if (!json_is_object(root)) {
        rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "the config must be a JSON object");
        goto fail_json;
    }
    json_t *ver = json_object_get(root, "version");
    if (!ver) {
        rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "missing field 'version'");
        goto fail_json;
    }
    if (!json_is_integer(ver)) {
        rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "field 'version' is not an integer");
        goto fail_json;
    }
    json_int_t v = json_integer_value(ver);
    if (v > CONFIG_VERSION) {
        rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "config version %lld is newer than this ccr",
                         (long long)v);
        goto fail_json;
    }
    if (v != CONFIG_VERSION) {
        rc = ccr_err_set(err, -EINVAL, cfg->path, -1,
                         "unsupported config version %lld (this ccr reads version %d)", (long long)v,
                         CONFIG_VERSION);
        goto fail_json;
    }
    json_t *arr = json_object_get(root, "datastores");
    if (arr && !json_is_null(arr)) {
        if (!json_is_array(arr)) {
            rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "field 'datastores' is not an array");
            goto fail_json;
        }
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o)
        {
            struct ccr_datastore d;
            rc = load_one(cfg, o, i, &d, err);
            if (rc)
                goto fail_json;
            rc = insert_owned(cfg, &d, false, err);
            if (rc == -EEXIST)
                rc = ccr_err_set(err, -EINVAL, cfg->path, -1, "datastore '%s' is defined twice", d.name);
            ds_fini(&d);
            if (rc)
                goto fail_json;
        }
    }
    json_decref(root);
    *out = cfg;
    return 0;

fail_json:
    json_decref(root);
fail:
    ccr_config_free(cfg);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* save                                                                                                   */
/* ----------------------------------------------------------------------------------------------------- */

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *dir, struct ccr_err *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        return ccr_err_set(err, -ENOTDIR, dir, -1, "is not a directory (needed for the config file)");
    }
    char *p = dup_str(dir);
    if (!p)
        return ccr_err_set(err, -ENOMEM, dir, -1, "out of memory");
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            ccr_err_set(err, rc, p, -1, "cannot create the config directory: %s", strerror(-rc));
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    ccr_free(p);
    return rc;
}

static json_t *to_json(const struct ccr_config *cfg)
{
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr || json_object_set_new(root, "version", json_integer(CONFIG_VERSION)) != 0 ||
        json_object_set(root, "datastores", arr) != 0)
        goto fail;
    for (size_t i = 0; i < cfg->count; i++) {
        const struct ccr_datastore *d = &cfg->ds[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) != 0)
            goto fail;
        if (json_object_set_new(o, "name", json_string(d->name)) != 0 ||
            json_object_set_new(o, "url", json_string(d->url)) != 0 ||
            json_object_set_new(o, "mode", json_string(ccr_mode_name(d->mode))) != 0 ||
            json_object_set_new(o, "region_size", json_integer((json_int_t)d->region_size)) != 0 ||
            json_object_set_new(o, "key", d->key_path ? json_string(d->key_path) : json_null()) != 0)
            goto fail;
    }
    json_decref(arr);
    return root;
fail:
    json_decref(arr);
    json_decref(root);
    return NULL;
}

int ccr_config_save(const struct ccr_config *cfg, struct ccr_err *err)
{
    if (!cfg)
        return ccr_err_set(err, -EINVAL, NULL, -1, "missing argument");
    int rc = make_dirs(cfg->dir, err);
    if (rc)
        return rc;
    json_t *root = to_json(cfg);
    if (!root)
        return ccr_err_set(err, -ENOMEM, cfg->path, -1, "out of memory (or a string that is not UTF-8)");
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return ccr_err_set(err, -ENOMEM, cfg->path, -1, "out of memory");
    size_t len = strlen(text);
    char *buf = ccr_malloc(len + 2);
    if (!buf) {
        free(text);
        return ccr_err_set(err, -ENOMEM, cfg->path, -1, "out of memory");
    }
    memcpy(buf, text, len);
    buf[len++] = '\n';
    free(text); /* jansson allocates with malloc by default */
    /* temporary file next to it (0600), fsync, rename: readers see the old file or the new one */
    rc = ccr_file_write_atomic(cfg->path, buf, len, 0600, true, err);
    ccr_free(buf);
    return rc;
}
