/*
 * spec_yaml.c - reading and writing clean room specifications (docs/governance.md, "Specification"):
 * YAML (libyaml's event parser, composed into jansson values) or JSON (jansson) in, YAML (libyaml's
 * emitter, block style) or pretty JSON out, written atomically.
 *
 * YAML typing is deliberately small: a scalar is a string unless it is plain (unquoted, untagged or tagged
 * as a boolean/null/integer) and spells true, false, null (also ~ and the empty scalar) or a decimal
 * integer without leading zeros that fits in 64 bits. Floats, yes/no, octal and the like stay strings, so
 * what a person wrote is what the spec holds. Aliases are refused (no expansion bombs), nesting is capped
 * and duplicate keys are syntax errors: a spec is a contract, nothing in it should be ambiguous.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "ccr/dataplane.h"
#include "ccr/spec.h"

#define SPEC_FILE_MAX  (16u << 20) /* a spec is a few KiB; refuse anything absurd */
#define SPEC_DEPTH_MAX 64

/* ----------------------------------------------------------------------------------------------------- */
/* YAML -> JSON                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* A decimal integer in int64 range: [-+]?(0|[1-9][0-9]*). */
static bool parse_int(const char *s, size_t n, json_int_t *out)
{
    bool neg = false;
    size_t i = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (!all_digits(s + i, n - i) || (s[i] == '0' && n - i > 1) || n - i > 19)
        return false;
    /* accumulate negatively so INT64_MIN fits */
    long long v = 0;
    for (; i < n; i++) {
        int d = s[i] - '0';
        if (v < (LLONG_MIN + d) / 10)
            return false;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == LLONG_MIN)
            return false;
        v = -v;
    }
    *out = (json_int_t)v;
    return true;
}

static bool is_word(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(s, w, n) == 0;
}

/* True when a plain scalar with this text would not read back as the string itself. */
static bool plain_is_typed(const char *s, size_t n)
{
    json_int_t v;
    return n == 0 || is_word(s, n, "true") || is_word(s, n, "false") || is_word(s, n, "null") ||
           is_word(s, n, "~") || parse_int(s, n, &v);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool typed = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 (!tag || strcmp(tag, YAML_BOOL_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0 ||
                  strcmp(tag, YAML_INT_TAG) == 0);
    if (typed) {
        json_int_t v;
        if (n == 0 || is_word(s, n, "null") || is_word(s, n, "~"))
            return json_null();
        if (is_word(s, n, "true"))
            return json_true();
        if (is_word(s, n, "false"))
            return json_false();
        if (parse_int(s, n, &v))
            return json_integer(v);
    }
    return json_stringn(s, n);
}

/* One open collection while composing: the container and, for a mapping, the key waiting for a value. */
struct frame {
    json_t *node;
    char *key; /* malloc'ed; NULL when the next scalar of a mapping is a key */
    size_t key_len;
    yaml_mark_t key_mark;
};

struct composer {
    struct frame st[SPEC_DEPTH_MAX];
    size_t depth;
    json_t *root;
    const char *name;
    struct ccr_err *err;
};

static int at_mark(struct composer *c, yaml_mark_t m, const char *fmt, const char *arg)
{
    char where[sizeof(((struct ccr_err *)0)->where)];
    snprintf(where, sizeof(where), "%s:%zu:%zu", c->name, m.line + 1, m.column + 1);
    int rc = ccr_err_set(c->err, -EBADMSG, where, (int64_t)m.index, fmt, arg);
    return rc;
}

/* Attaches v (reference stolen) to the current collection, or makes it the root. */
static int attach(struct composer *c, json_t *v, yaml_mark_t mark)
{
    if (!v)
        return ccr_err_set(c->err, -ENOMEM, c->name, -1, "out of memory");
    if (c->depth == 0) {
        c->root = v;
        return 0;
    }
    struct frame *f = &c->st[c->depth - 1];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, v) == 0
                   ? 0
                   : ccr_err_set(c->err, -ENOMEM, c->name, -1, "out of memory");
    if (!f->key) {
        /* a key: only scalars are accepted */
        json_decref(v);
        return at_mark(c, mark, "%s", "a mapping key must be a scalar");
    }
    int rc = 0;
    if (json_object_setn_new(f->node, f->key, f->key_len, v) != 0)
        rc = ccr_err_set(c->err, -ENOMEM, c->name, -1, "out of memory");
    free(f->key);
    f->key = NULL;
    return rc;
}

static int on_scalar(struct composer *c, const yaml_event_t *ev)
{
    /* a NUL cannot be a JSON string's content that survives canonical bytes, nor a key */
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
        return at_mark(c, ev->start_mark, "%s", "a NUL character (\\0) is not allowed in a spec");
    if (c->depth > 0 && json_is_object(c->st[c->depth - 1].node) && !c->st[c->depth - 1].key) {
        struct frame *f = &c->st[c->depth - 1];
        const char *k = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        if (json_object_getn(f->node, k, n)) {
            char shown[80];
            snprintf(shown, sizeof(shown), "%.*s", (int)(n > 64 ? 64 : n), k);
            return at_mark(c, ev->start_mark, "duplicate key '%s'", shown);
        }
        f->key = malloc(n + 1);
        if (!f->key)
            return ccr_err_set(c->err, -ENOMEM, c->name, -1, "out of memory");
        memcpy(f->key, k, n);
        f->key[n] = '\0';
        f->key_len = n;
        f->key_mark = ev->start_mark;
        return 0;
    }
    return attach(c, scalar_value(ev), ev->start_mark);
}

static int on_open(struct composer *c, json_t *node, yaml_mark_t mark)
{
    if (!node)
        return ccr_err_set(c->err, -ENOMEM, c->name, -1, "out of memory");
    if (c->depth == SPEC_DEPTH_MAX) {
        json_decref(node);
        return at_mark(c, mark, "nested more than %s levels deep", "64");
    }
    /* attach first (the parent holds a reference), then descend */
    json_incref(node);
    int rc = attach(c, node, mark);
    if (rc < 0) {
        json_decref(node);
        return rc;
    }
    c->st[c->depth++] = (struct frame){.node = node};
    json_decref(node);
    return 0;
}

static void composer_fini(struct composer *c)
{
    for (size_t i = 0; i < c->depth; i++)
        free(c->st[i].key);
    c->depth = 0;
    json_decref(c->root);
    c->root = NULL;
}

static int parse_yaml(const char *text, size_t len, const char *name, json_t **out, struct ccr_err *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return ccr_err_set(err, -ENOMEM, name, -1, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

    struct composer c = {.name = name, .err = err};
    int docs = 0;
    int rc = 0;
    for (bool done = false; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            if (p.error == YAML_MEMORY_ERROR) {
                rc = ccr_err_set(err, -ENOMEM, name, -1, "out of memory");
            } else {
                char msg[400];
                snprintf(msg, sizeof(msg), "%s%s%s%s", p.problem ? p.problem : "malformed YAML",
                         p.context ? " (" : "", p.context ? p.context : "", p.context ? ")" : "");
                rc = at_mark(&c, p.problem_mark, "%s", msg);
            }
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = at_mark(&c, ev.start_mark, "%s", "more than one YAML document: a spec is one document");
            break;
        case YAML_ALIAS_EVENT:
            rc = at_mark(&c, ev.start_mark, "%s", "aliases (*name) are not supported in a spec");
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&c, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_open(&c, json_array(), ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_open(&c, json_object(), ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (c.depth > 0)
                c.depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc == 0 && !c.root)
        rc = ccr_err_set(err, -EBADMSG, name, -1, "empty: expected a YAML or JSON specification");
    if (rc < 0) {
        composer_fini(&c);
        return rc;
    }
    *out = c.root;
    return 0;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Loading                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static int parse_json(const char *text, size_t len, const char *name, json_t **out, struct ccr_err *err)
{
    json_error_t je;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        char where[sizeof(((struct ccr_err *)0)->where)];
        snprintf(where, sizeof(where), "%s:%d:%d", name, je.line, je.column);
        return ccr_err_set(err, -EBADMSG, where, je.position, "%s", je.text);
    }
    *out = v;
    return 0;
}

int ccr_spec_parse(const char *text, size_t len, const char *name, json_t **out, struct ccr_err *err)
{
    if (!name)
        name = "spec";
    if ((!text && len) || !out)
        return ccr_err_set(err, -EINVAL, name, -1, "no text given");
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    /* a UTF-8 byte order mark is allowed before YAML; JSON detection looks past it */
    if (i == 0 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        size_t j = 3;
        while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
            j++;
        if (j < len && (text[j] == '{' || text[j] == '['))
            return parse_json(text + 3, len - 3, name, out, err);
    }
    if (i < len && (text[i] == '{' || text[i] == '['))
        return parse_json(text, len, name, out, err);
    return parse_yaml(text ? text : "", len, name, out, err);
}

int ccr_spec_load(const char *path, json_t **out, struct ccr_err *err)
{
    if (!path || !out)
        return ccr_err_set(err, -EINVAL, path, -1, "no file given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ccr_err_set(err, -errno, path, -1, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = ccr_err_set(err, -errno, path, -1, "cannot stat: %s", strerror(errno));
        close(fd);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return ccr_err_set(err, -EISDIR, path, -1, "is a directory, not a spec file");
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        close(fd);
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    }
    for (;;) {
        if (len == cap) {
            if (cap >= SPEC_FILE_MAX) {
                rc =
                    ccr_err_set(err, -EFBIG, path, -1, "larger than %u MiB: not a spec", SPEC_FILE_MAX >> 20);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = ccr_err_set(err, -errno, path, -1, "cannot read: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        rc = ccr_spec_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* JSON -> YAML                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

struct membuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static int membuf_write(void *data, unsigned char *buffer, size_t size)
{
    struct membuf *b = data;
    if (b->len + size + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + size + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return 0;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, buffer, size);
    b->len += size;
    b->p[b->len] = '\0';
    return 1;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style))
        return -ENOMEM;
    return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
}

static int emit_value(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    char num[64];
    if (depth > SPEC_DEPTH_MAX)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -EIO;
        const char *k;
        size_t klen;
        json_t *val;
        void *tmp;
        json_object_keylen_foreach_safe((json_t *)v, tmp, k, klen, val)
        {
            int rc = emit_scalar(em, k, klen,
                                 plain_is_typed(k, klen) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                         : YAML_ANY_SCALAR_STYLE);
            if (rc == 0)
                rc = emit_value(em, val, depth + 1);
            if (rc < 0)
                return rc;
        }
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -EIO;
        return 0;
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -EIO;
        for (size_t i = 0; i < json_array_size(v); i++) {
            int rc = emit_value(em, json_array_get(v, i), depth + 1);
            if (rc < 0)
                return rc;
        }
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -EIO;
        return 0;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        return emit_scalar(em, s, n,
                           plain_is_typed(s, n) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        /* reads back as a string: the schema has no fractional numbers */
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        return emit_scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    case JSON_NULL:
    default:
        return emit_scalar(em, "null", 4, YAML_PLAIN_SCALAR_STYLE);
    }
}

static int to_yaml(const json_t *spec, struct membuf *b)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return -ENOMEM;
    yaml_emitter_set_output(&em, membuf_write, b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, 110);
    int rc = -EIO;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || !yaml_emitter_emit(&em, &ev))
        goto out;
    rc = emit_value(&em, spec, 0);
    if (rc < 0)
        goto out;
    rc = -EIO;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_emitter_flush(&em))
        goto out;
    rc = 0;
out:
    yaml_emitter_delete(&em);
    if (b->oom)
        rc = -ENOMEM;
    return rc;
}

/* ----------------------------------------------------------------------------------------------------- */
/* Saving                                                                                                 */
/* ----------------------------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Writes len bytes to path atomically (the shared small-file writer: temporary file, fsync, rename). */
static int write_atomic(const char *path, const char *data, size_t len, struct ccr_err *err)
{
    return ccr_file_write_atomic(path, data, len, 0644, true, err);
}

int ccr_spec_save(const char *path, const json_t *spec, struct ccr_err *err)
{
    if (!path || !spec)
        return ccr_err_set(err, -EINVAL, path, -1, "no %s given", path ? "spec" : "file");
    int rc;
    if (ends_with(path, ".yaml") || ends_with(path, ".yml")) {
        struct membuf b = {0};
        rc = to_yaml(spec, &b);
        if (rc < 0)
            rc = ccr_err_set(err, rc, path, -1, "cannot write the spec as YAML%s",
                             rc == -ENOMEM ? ": out of memory" : " (nested too deeply?)");
        else
            rc = write_atomic(path, b.p ? b.p : "", b.len, err);
        free(b.p);
        return rc;
    }
    char *text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return ccr_err_set(err, -ENOMEM, path, -1, "cannot write the spec as JSON: out of memory");
    size_t n = strlen(text);
    char *full = realloc(text, n + 2);
    if (!full) {
        free(text);
        return ccr_err_set(err, -ENOMEM, path, -1, "out of memory");
    }
    full[n] = '\n';
    full[n + 1] = '\0';
    rc = write_atomic(path, full, n + 1, err);
    free(full);
    return rc;
}
