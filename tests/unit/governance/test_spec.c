/*
 * test_spec.c - the clean room specification (governance/spec.c, spec_yaml.c): YAML and JSON parse to the
 * same values with the documented YAML typing, syntax errors name file:line:col, merge and its conflicts,
 * every validation problem by its exact text, canonical bytes and measurements against values computed
 * independently (Python's json + hashlib), and the deployment spec's determinism.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccr/spec.h"

static json_t *parse(const char *text)
{
    json_t *v = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_spec_parse(text, strlen(text), "t.yaml", &v, &e);
    cr_assert_eq(rc, 0, "parse failed: %s: %s", e.where, e.msg);
    return v;
}

static int parse_err(const char *text, const char *name, struct ccr_err *e)
{
    json_t *v = NULL;
    ccr_err_clear(e);
    int rc = ccr_spec_parse(text, strlen(text), name, &v, e);
    cr_assert_null(v);
    return rc;
}

static char *canon(const json_t *v)
{
    char *s = NULL;
    size_t n = 0;
    cr_assert_eq(ccr_json_canonical(v, &s, &n), 0);
    cr_assert_eq(strlen(s), n);
    return s;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Parsing                                                                                                */
/* ----------------------------------------------------------------------------------------------------- */

static const char yaml_spec[] = "# a party's fragment\n"
                                "parties:\n"
                                "  - name: northwind\n"
                                "datasources:\n"
                                "  - name: cowin\n"
                                "    owner: northwind\n"
                                "    url: az://container/prefix\n"
                                "    mode: ccr1\n"
                                "    mount_path: /mnt/remote/cowin\n"
                                "    kek_secret: kek-northwind\n"
                                "    wrapped_dek: QUJD\n"
                                "applications:\n"
                                "  - name: demo-app\n"
                                "    command: [\"gzip\", \"-c\"]\n"
                                "    env: {LEVEL: \"9\"}\n"
                                "    mounts: [cowin]\n"
                                "network:\n"
                                "  egress: deny\n"
                                "  allow: []\n";

static const char json_spec[] =
    "  {\"parties\":[{\"name\":\"northwind\"}],\"datasources\":[{\"name\":\"cowin\",\"owner\":\"northwind\","
    "\"url\":\"az://container/prefix\",\"mode\":\"ccr1\",\"mount_path\":\"/mnt/remote/cowin\","
    "\"kek_secret\":\"kek-northwind\",\"wrapped_dek\":\"QUJD\"}],\"applications\":[{\"name\":\"demo-app\","
    "\"command\":[\"gzip\",\"-c\"],\"env\":{\"LEVEL\":\"9\"},\"mounts\":[\"cowin\"]}],"
    "\"network\":{\"egress\":\"deny\",\"allow\":[]}}\n";

Test(governance_spec, yaml_and_json_parse_to_the_same_value)
{
    json_t *y = parse(yaml_spec);
    json_t *j = parse(json_spec);
    cr_assert(json_equal(y, j));
    char *cy = canon(y), *cj = canon(j);
    cr_assert_str_eq(cy, cj);
    cr_assert_eq(ccr_spec_validate(y, NULL), 0);
    free(cy);
    free(cj);
    json_decref(y);
    json_decref(j);
}

Test(governance_spec, yaml_typing)
{
    json_t *v = parse("t: true\n"
                      "f: false\n"
                      "n: null\n"
                      "tilde: ~\n"
                      "empty:\n"
                      "i: 42\n"
                      "neg: -7\n"
                      "plus: +3\n"
                      "zero: 0\n"
                      "min: -9223372036854775808\n"
                      "big: 9223372036854775808\n"
                      "octal: 0700\n"
                      "float: 1.5\n"
                      "yes: yes\n"
                      "True: True\n"
                      "qtrue: \"true\"\n"
                      "q9: '9'\n"
                      "qnull: \"null\"\n"
                      "tagged: !!str 5\n"
                      "text: hello world\n");
    cr_assert(json_is_true(json_object_get(v, "t")));
    cr_assert(json_is_false(json_object_get(v, "f")));
    cr_assert(json_is_null(json_object_get(v, "n")));
    cr_assert(json_is_null(json_object_get(v, "tilde")));
    cr_assert(json_is_null(json_object_get(v, "empty")));
    cr_assert(json_is_integer(json_object_get(v, "i")));
    cr_assert_eq(json_integer_value(json_object_get(v, "i")), 42);
    cr_assert_eq(json_integer_value(json_object_get(v, "neg")), -7);
    cr_assert_eq(json_integer_value(json_object_get(v, "plus")), 3);
    cr_assert(json_is_integer(json_object_get(v, "zero")));
    cr_assert_eq(json_integer_value(json_object_get(v, "zero")), 0);
    cr_assert_eq(json_integer_value(json_object_get(v, "min")), INT64_MIN);
    cr_assert_str_eq(json_string_value(json_object_get(v, "big")), "9223372036854775808");
    cr_assert_str_eq(json_string_value(json_object_get(v, "octal")), "0700");
    cr_assert_str_eq(json_string_value(json_object_get(v, "float")), "1.5");
    cr_assert_str_eq(json_string_value(json_object_get(v, "yes")), "yes");
    cr_assert_str_eq(json_string_value(json_object_get(v, "True")), "True");
    cr_assert_str_eq(json_string_value(json_object_get(v, "qtrue")), "true");
    cr_assert_str_eq(json_string_value(json_object_get(v, "q9")), "9");
    cr_assert_str_eq(json_string_value(json_object_get(v, "qnull")), "null");
    cr_assert_str_eq(json_string_value(json_object_get(v, "tagged")), "5");
    cr_assert_str_eq(json_string_value(json_object_get(v, "text")), "hello world");
    cr_assert_eq(json_object_size(v), 20);
    json_decref(v);
}

Test(governance_spec, syntax_errors_name_file_line_and_column)
{
    struct ccr_err e;
    int rc = parse_err("parties:\n  - name: a\n    x: [1, 2\nb: c\n", "frag.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_eq(e.code, -EBADMSG);
    cr_assert_str_eq(e.where, "frag.yaml:4:2", "where: %s", e.where);
    cr_assert(strstr(e.msg, "flow sequence") != NULL, "msg: %s", e.msg);

    rc = parse_err("parties:\n  - name: a\n\tbad: tab\n", "tab.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert(strncmp(e.where, "tab.yaml:3:", 11) == 0, "where: %s", e.where);

    rc = parse_err("{\n \"a\": ,\n}", "frag.json", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_str_eq(e.where, "frag.json:2:7", "where: %s", e.where);

    rc = parse_err("{\"a\": 1, \"a\": 2}", "dup.json", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert(strstr(e.msg, "duplicate") != NULL, "msg: %s", e.msg);

    rc = parse_err("a: 1\nb: 2\na: 3\n", "dup.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_str_eq(e.where, "dup.yaml:3:1");
    cr_assert_str_eq(e.msg, "duplicate key 'a'");

    rc = parse_err("a: &x [1]\nb: *x\n", "alias.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_str_eq(e.where, "alias.yaml:2:4");

    rc = parse_err("a: 1\n---\nb: 2\n", "two.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_str_eq(e.where, "two.yaml:2:1");

    rc = parse_err("? [a, b]\n: c\n", "key.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert_str_eq(e.msg, "a mapping key must be a scalar");

    rc = parse_err("", "empty.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    rc = parse_err("# only a comment\n", "empty.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);

    /* nesting is capped */
    char deep[400];
    memset(deep, '[', 200);
    deep[200] = '\0';
    rc = parse_err(deep, "deep.json", &e);
    cr_assert_eq(rc, -EBADMSG);
    memset(deep, 0, sizeof(deep));
    for (int i = 0; i < 100; i++)
        strcat(deep, "- ");
    rc = parse_err(deep, "deep.yaml", &e);
    cr_assert_eq(rc, -EBADMSG);
    cr_assert(strstr(e.msg, "nested") != NULL, "msg: %s", e.msg);
}

Test(governance_spec, load_and_save_round_trip)
{
    char dir[] = "/tmp/ccr-spec-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char y[128], j[128];
    snprintf(y, sizeof(y), "%s/s.yaml", dir);
    snprintf(j, sizeof(j), "%s/s.json", dir);

    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:n, s:[s, s], s:{}, s:[]}", "t", "true",
                          "n", "123", "e", "", "colon", "a: b", "multi", "line1\nline2", "u", "caf\xc3\xa9",
                          "i", -5, "b", 1, "z", "list", "x", "-", "obj", "arr");
    cr_assert_not_null(v);
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_spec_save(y, v, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_spec_save(j, v, &e), 0, "%s", e.msg);
    json_t *a = NULL, *b = NULL;
    cr_assert_eq(ccr_spec_load(y, &a, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert_eq(ccr_spec_load(j, &b, &e), 0, "%s: %s", e.where, e.msg);
    cr_assert(json_equal(v, a), "YAML round trip changed the value");
    cr_assert(json_equal(v, b), "JSON round trip changed the value");

    /* the YAML is block style and readable: "true" quoted, integers plain */
    FILE *f = fopen(y, "r");
    char text[2048] = {0};
    cr_assert_gt(fread(text, 1, sizeof(text) - 1, f), 0);
    fclose(f);
    cr_assert(strstr(text, "t: \"true\"\n") != NULL, "%s", text);
    cr_assert(strstr(text, "i: -5\n") != NULL, "%s", text);
    cr_assert(strstr(text, "list:\n- x\n- '-'\n") != NULL || strstr(text, "list:\n- x\n- \"-\"\n") != NULL,
              "%s", text);
    cr_assert(strchr(text, '{') == NULL || strstr(text, "obj: {}") != NULL, "%s", text);

    /* a missing file is -ENOENT naming it; no temporary files are left */
    json_t *c = NULL;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.yaml", dir);
    cr_assert_eq(ccr_spec_load(missing, &c, &e), -ENOENT);
    cr_assert_str_eq(e.where, missing);

    json_decref(v);
    json_decref(a);
    json_decref(b);
    unlink(y);
    unlink(j);
    cr_assert_eq(rmdir(dir), 0, "temporary files left behind in %s", dir);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Merge                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

static const char frag_nw[] = "parties: [{name: northwind}]\n"
                              "datasources:\n"
                              "  - {name: cowin, owner: northwind, url: az://n/c, mode: ccr1,\n"
                              "     mount_path: /mnt/remote/cowin, kek_secret: kek-n, wrapped_dek: QUJD}\n"
                              "network: {egress: deny, allow: [example.com]}\n";

static const char frag_co[] = "parties: [{name: contoso}]\n"
                              "datasinks:\n"
                              "  - {name: output, owner: contoso, url: file:///o, mode: none,\n"
                              "     mount_path: /mnt/remote/output}\n"
                              "applications:\n"
                              "  - {name: demo-app, command: [gzip, -c], mounts: [cowin, output]}\n"
                              "logging: {sink: output}\n";

Test(governance_spec, merge_two_fragments)
{
    json_t *a = parse(frag_nw), *b = parse(frag_co), *m = NULL;
    const json_t *frags[2] = {a, b};
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_spec_merge(frags, 2, &m, &e), 0, "%s", e.msg);
    json_t *want = parse("parties: [{name: northwind}, {name: contoso}]\n"
                         "datasources:\n"
                         "  - {name: cowin, owner: northwind, url: az://n/c, mode: ccr1,\n"
                         "     mount_path: /mnt/remote/cowin, kek_secret: kek-n, wrapped_dek: QUJD}\n"
                         "datasinks:\n"
                         "  - {name: output, owner: contoso, url: file:///o, mode: none,\n"
                         "     mount_path: /mnt/remote/output}\n"
                         "applications:\n"
                         "  - {name: demo-app, command: [gzip, -c], mounts: [cowin, output]}\n"
                         "network: {egress: deny, allow: [example.com]}\n"
                         "logging: {sink: output}\n");
    char *cm = canon(m), *cw = canon(want);
    cr_assert_str_eq(cm, cw);
    json_t *problems = json_array();
    cr_assert_eq(ccr_spec_validate(m, problems), 0, "%s", json_string_value(json_array_get(problems, 0)));
    /* the inputs are untouched */
    cr_assert_eq(json_array_size(json_object_get(a, "parties")), 1);
    free(cm);
    free(cw);
    json_decref(problems);
    json_decref(want);
    json_decref(m);
    json_decref(a);
    json_decref(b);
}

Test(governance_spec, merge_conflicting_network)
{
    json_t *a = parse(frag_nw);
    json_t *b = parse("parties: [{name: contoso}]\nnetwork: {egress: allow}\n");
    json_t *same = parse("parties: [{name: fabrikam}]\nnetwork: {egress: deny, allow: [example.com]}\n");
    json_t *m = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    const json_t *frags[2] = {a, b};
    cr_assert_eq(ccr_spec_merge(frags, 2, &m, &e), -EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(e.msg, "network") && strstr(e.msg, "northwind") && strstr(e.msg, "contoso"), "msg: %s",
              e.msg);

    /* the same setting twice is fine */
    const json_t *frags2[2] = {a, same};
    cr_assert_eq(ccr_spec_merge(frags2, 2, &m, &e), 0, "%s", e.msg);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "network"), "egress")), "deny");
    json_decref(m);

    /* a fragment that is not a mapping */
    json_t *arr = json_array();
    const json_t *frags3[2] = {a, arr};
    cr_assert_eq(ccr_spec_merge(frags3, 2, &m, &e), -EINVAL);
    json_decref(arr);
    json_decref(a);
    json_decref(b);
    json_decref(same);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Validation                                                                                             */
/* ----------------------------------------------------------------------------------------------------- */

static const char valid_spec[] =
    "parties:\n"
    "  - {name: northwind, member_id: "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"
    "  - {name: contoso}\n"
    "datasources:\n"
    "  - {name: cowin, owner: northwind, url: az://n/c, mode: ccr1,\n"
    "     mount_path: /mnt/remote/cowin, kek_secret: kek-n, wrapped_dek: QUJD}\n"
    "  - {name: zeta, owner: northwind, url: az://n/z, mode: none,\n"
    "     mount_path: /mnt/remote/zeta}\n"
    "datasinks:\n"
    "  - {name: output, owner: contoso, url: file:///o, mode: cleanroom-cse,\n"
    "     mount_path: /mnt/remote/output, kek_secret: kek-c, wrapped_dek: QUJD}\n"
    "applications:\n"
    "  - {name: demo-app, command: [gzip, -c], env: {LEVEL: \"9\"},\n"
    "     mounts: [cowin, output]}\n"
    "network: {egress: deny, allow: [example.com]}\n"
    "logging: {sink: output}\n"
    "telemetry: {sink: output}\n";

/* Validates spec and checks that exactly the problems listed (NULL-terminated) are reported. */
static void expect_problems(json_t *spec, const char *const *want)
{
    json_t *problems = json_array();
    int n = ccr_spec_validate(spec, problems);
    cr_assert_eq((size_t)n, json_array_size(problems));
    size_t nwant = 0;
    for (; want[nwant]; nwant++) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(problems) && !found; i++)
            found = strcmp(json_string_value(json_array_get(problems, i)), want[nwant]) == 0;
        if (!found) {
            char *all = json_dumps(problems, 0);
            cr_assert_fail("missing problem \"%s\"; got %s", want[nwant], all);
        }
    }
    if ((size_t)n != nwant) {
        char *all = json_dumps(problems, 0);
        cr_assert_fail("expected %zu problems, got %d: %s", nwant, n, all);
    }
    json_decref(problems);
}

static json_t *item(json_t *spec, const char *list, size_t i)
{
    return json_array_get(json_object_get(spec, list), i);
}

Test(governance_spec, valid_spec_has_no_problems)
{
    json_t *s = parse(valid_spec);
    static const char *const none[] = {NULL};
    expect_problems(s, none);
    json_decref(s);
    /* a problem list may be NULL: the count is still right */
    json_t *bad = parse("parties: []\n");
    cr_assert_eq(ccr_spec_validate(bad, NULL), 1);
    json_decref(bad);
}

Test(governance_spec, unknown_access_point)
{
    json_t *s = parse(valid_spec);
    json_array_append_new(json_object_get(item(s, "applications", 0), "mounts"), json_string("cowin2"));
    static const char *const want[] = {"applications[demo-app].mounts: unknown access point 'cowin2'", NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, duplicate_mount_path)
{
    json_t *s = parse(valid_spec);
    json_object_set_new(item(s, "datasinks", 0), "mount_path", json_string("/mnt/remote/cowin/"));
    static const char *const want[] = {
        "duplicate mount path /mnt/remote/cowin/ (datasources[cowin], datasinks[output])", NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, encrypted_mode_needs_key_reference)
{
    json_t *s = parse(valid_spec);
    json_object_del(item(s, "datasources", 0), "wrapped_dek");
    json_object_del(item(s, "datasinks", 0), "kek_secret");
    json_object_del(item(s, "datasinks", 0), "wrapped_dek");
    static const char *const want[] = {
        "datasources[cowin]: mode ccr1 needs kek_secret and wrapped_dek",
        "datasinks[output]: mode cleanroom-cse needs kek_secret and wrapped_dek", NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, modes)
{
    json_t *s = parse(valid_spec);
    json_object_set_new(item(s, "datasources", 0), "mode", json_string("ccr2"));
    json_object_set_new(item(s, "datasources", 1), "kek_secret", json_string("k"));
    /* cpk and cleanroom-cse are fine for a datasink */
    json_object_set_new(item(s, "datasinks", 0), "mode", json_string("cpk"));
    static const char *const want[] = {
        "datasources[cowin]: unknown mode 'ccr2' (use ccr1, cleanroom-cse, none or cpk)",
        "datasources[zeta]: mode none takes no kek_secret or wrapped_dek (the data is not encrypted)", NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, owner_not_a_party)
{
    json_t *s = parse(valid_spec);
    json_object_set_new(item(s, "datasinks", 0), "owner", json_string("fabrikam"));
    static const char *const want[] = {"datasinks[output]: owner 'fabrikam' is not a party", NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, duplicate_names)
{
    json_t *s = parse(valid_spec);
    json_array_append(json_object_get(s, "parties"), item(s, "parties", 1));
    json_object_set_new(item(s, "datasinks", 0), "name", json_string("zeta"));
    json_object_set_new(item(s, "datasinks", 0), "mount_path", json_string("/mnt/remote/out"));
    json_t *app2 = json_deep_copy(item(s, "applications", 0));
    json_object_set_new(app2, "mounts", json_pack("[s]", "zeta"));
    json_array_append_new(json_object_get(s, "applications"), app2);
    json_array_remove(json_object_get(item(s, "applications", 0), "mounts"), 1);
    json_object_del(s, "logging");
    json_object_del(s, "telemetry");
    static const char *const want[] = {"duplicate party name 'contoso' (parties #2 and #3)",
                                       "duplicate name 'zeta' (datasources #2 and datasinks #1)",
                                       "duplicate application name 'demo-app' (applications #1 and #2)",
                                       NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, missing_required_fields)
{
    json_t *s = parse(valid_spec);
    json_object_del(item(s, "datasources", 0), "url");
    json_object_del(item(s, "datasources", 0), "owner");
    json_object_del(item(s, "datasinks", 0), "name");
    json_object_del(item(s, "applications", 0), "command");
    json_object_del(item(s, "parties", 1), "name");
    json_object_del(s, "logging");
    json_object_del(s, "telemetry");
    json_array_remove(json_object_get(item(s, "applications", 0), "mounts"), 1);
    static const char *const want[] = {"parties[#2]: missing name",
                                       "datasources[cowin]: missing owner",
                                       "datasources[cowin]: missing url",
                                       "datasinks[#1]: missing name",
                                       "datasinks[#1]: owner 'contoso' is not a party",
                                       "applications[demo-app]: missing command",
                                       NULL};
    expect_problems(s, want);
    json_decref(s);

    json_t *empty = parse("{}");
    static const char *const want2[] = {"parties: missing (at least one is needed)", NULL};
    expect_problems(empty, want2);
    json_decref(empty);
}

Test(governance_spec, mount_path_not_absolute)
{
    json_t *s = parse(valid_spec);
    json_object_set_new(item(s, "datasources", 1), "mount_path", json_string("mnt/zeta"));
    json_object_set_new(item(s, "datasinks", 0), "mount_path", json_string("/mnt/../etc"));
    static const char *const want[] = {
        "datasources[zeta]: mount_path 'mnt/zeta' is not absolute",
        "datasinks[output]: mount_path '/mnt/../etc' must name a directory below / without '.' or '..'",
        NULL};
    expect_problems(s, want);
    json_decref(s);
}

Test(governance_spec, other_problems)
{
    json_t *s = parse(valid_spec);
    json_object_set_new(s, "extra", json_true());
    json_object_set_new(item(s, "parties", 0), "member_id", json_string("ABC"));
    json_object_set_new(item(s, "datasources", 0), "wrapped_dek", json_string("not base64!"));
    json_object_set_new(json_object_get(item(s, "applications", 0), "env"), "N", json_integer(9));
    json_object_set_new(s, "network", json_pack("{s:s}", "egress", "maybe"));
    json_object_set_new(s, "logging", json_pack("{s:s}", "sink", "cowin"));
    json_object_set_new(s, "telemetry", json_pack("{s:s}", "sink", "nowhere"));
    static const char *const want[] = {
        "spec: unknown field 'extra'",
        "parties[northwind]: member_id must be 64 lowercase hex digits (see 'ccr gov member id')",
        "datasources[cowin]: wrapped_dek is not base64",
        "applications[demo-app].env.N: must be a string (quote it)",
        "network.egress: unknown value 'maybe' (use deny or allow)",
        "logging.sink: 'cowin' is a datasource: the sink must be a datasink (written read-write)",
        "telemetry.sink: unknown datasink 'nowhere'",
        NULL};
    expect_problems(s, want);
    json_decref(s);

    json_t *notmap = json_array();
    static const char *const want2[] = {
        "spec: must be a mapping (parties, datasources, datasinks, applications, ...)", NULL};
    expect_problems(notmap, want2);
    json_decref(notmap);
}

/* ----------------------------------------------------------------------------------------------------- */
/* Canonical bytes, measurement, deployment                                                               */
/* ----------------------------------------------------------------------------------------------------- */

Test(governance_spec, canonical_bytes_and_measurement)
{
    json_t *v = parse("{\"c\": [true, null, {\"y\": \"\", \"x\": -2}], \"b\": 1, \"a\": \"\xc3\xa9\"}");
    char *s = canon(v);
    /* expected bytes and digest from Python: json.dumps(sort_keys=True, separators=(',',':'),
     * ensure_ascii=False) and hashlib.sha256 */
    cr_assert_str_eq(s, "{\"a\":\"\xc3\xa9\",\"b\":1,\"c\":[true,null,{\"x\":-2,\"y\":\"\"}]}");
    uint8_t md[32];
    char mdhex[65];
    cr_assert_eq(ccr_json_measure(v, md), 0);
    hex(md, 32, mdhex);
    cr_assert_str_eq(mdhex, "615bc2c416b7de132842391da0e46aec1db4578db8cea59024066e0ca291f29b");
    free(s);
    json_decref(v);

    /* any JSON value */
    json_t *str = json_string("x");
    char *ss = canon(str);
    cr_assert_str_eq(ss, "\"x\"");
    free(ss);
    json_decref(str);
}

static const char deployment_expected[] =
    "{\"applications\":[{\"command\":[\"gzip\",\"-c\"],\"env\":{\"LEVEL\":\"9\"},\"mounts\":[\"cowin\","
    "\"output\"],"
    "\"name\":\"demo-app\"}],\"contract_id\":\"c1\",\"contract_version\":3,\"governance\":{\"parties\":[{"
    "\"name\":"
    "\"contoso\"},{\"member_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
    "\"name\":"
    "\"northwind\"}]},\"logging\":{\"sink\":\"output\"},\"mounts\":[{\"access\":\"read-only\",\"kek_secret\":"
    "\"kek-n\",\"mode\":\"ccr1\",\"mount_path\":\"/mnt/remote/"
    "cowin\",\"name\":\"cowin\",\"owner\":\"northwind\","
    "\"url\":\"az://n/"
    "c\",\"wrapped_dek\":\"AAAA\"},{\"access\":\"read-write\",\"kek_secret\":\"kek-c\",\"mode\":"
    "\"cleanroom-cse\",\"mount_path\":\"/mnt/remote/"
    "output\",\"name\":\"output\",\"owner\":\"contoso\",\"url\":"
    "\"file:///o\",\"wrapped_dek\":\"QUJD\"},{\"access\":\"read-only\",\"mode\":\"none\",\"mount_path\":"
    "\"/mnt/remote/zeta\",\"name\":\"zeta\",\"owner\":\"northwind\",\"url\":\"az://n/"
    "z\"}],\"network\":{\"allow\":"
    "[\"example.com\"],\"egress\":\"deny\"},\"telemetry\":{}}";

Test(governance_spec, deployment_spec_is_deterministic)
{
    /* two writings of the same spec: items and keys in other orders */
    json_t *a =
        parse("parties:\n"
              "  - {name: northwind, member_id: "
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"
              "  - {name: contoso}\n"
              "datasources:\n"
              "  - {name: zeta, owner: northwind, url: az://n/z, mode: none, mount_path: /mnt/remote/zeta}\n"
              "  - {name: cowin, owner: northwind, url: az://n/c, mode: ccr1,\n"
              "     mount_path: /mnt/remote/cowin, kek_secret: kek-n, wrapped_dek: AAAA}\n"
              "datasinks:\n"
              "  - {name: output, owner: contoso, url: file:///o, mode: cleanroom-cse,\n"
              "     mount_path: /mnt/remote/output, kek_secret: kek-c, wrapped_dek: QUJD}\n"
              "applications:\n"
              "  - {name: demo-app, command: [gzip, -c], env: {LEVEL: \"9\"}, mounts: [cowin, output]}\n"
              "network: {egress: deny, allow: [example.com]}\n"
              "logging: {sink: output}\n");
    json_t *b = parse(
        "{\"logging\":{\"sink\":\"output\"},\"network\":{\"allow\":[\"example.com\"],\"egress\":\"deny\"},"
        "\"applications\":[{\"mounts\":[\"cowin\",\"output\"],\"env\":{\"LEVEL\":\"9\"},"
        "\"command\":[\"gzip\",\"-c\"],\"name\":\"demo-app\"}],"
        "\"datasinks\":[{\"wrapped_dek\":\"QUJD\",\"kek_secret\":\"kek-c\",\"mount_path\":"
        "\"/mnt/remote/output\",\"mode\":\"cleanroom-cse\",\"url\":\"file:///o\",\"owner\":\"contoso\","
        "\"name\":\"output\"}],"
        "\"datasources\":[{\"wrapped_dek\":\"AAAA\",\"kek_secret\":\"kek-n\",\"mount_path\":"
        "\"/mnt/remote/cowin\",\"mode\":\"ccr1\",\"url\":\"az://n/c\",\"owner\":\"northwind\","
        "\"name\":\"cowin\"},{\"mount_path\":\"/mnt/remote/zeta\",\"url\":\"az://n/z\",\"mode\":\"none\","
        "\"owner\":\"northwind\",\"name\":\"zeta\"}],"
        "\"parties\":[{\"name\":\"contoso\"},{\"member_id\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"name\":\"northwind\"}]}");
    json_t *da = NULL, *db = NULL, *da2 = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_spec_deployment("c1", 3, a, &da, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_spec_deployment("c1", 3, b, &db, &e), 0, "%s", e.msg);
    cr_assert_eq(ccr_spec_deployment("c1", 3, a, &da2, &e), 0, "%s", e.msg);
    char *ca = canon(da), *cb = canon(db), *ca2 = canon(da2);
    cr_assert_str_eq(ca, deployment_expected);
    cr_assert_str_eq(cb, deployment_expected);
    cr_assert_str_eq(ca2, deployment_expected);

    uint8_t md[32];
    char mdhex[65];
    cr_assert_eq(ccr_json_measure(db, md), 0);
    hex(md, 32, mdhex);
    cr_assert_str_eq(mdhex, "afc0609857ee93ebba5c449989a94f13f39ff07ad758adaaa370b164d7378e61");

    /* another version measures differently */
    json_t *dv = NULL;
    uint8_t md2[32];
    cr_assert_eq(ccr_spec_deployment("c1", 4, a, &dv, &e), 0);
    cr_assert_eq(ccr_json_measure(dv, md2), 0);
    cr_assert_neq(memcmp(md, md2, 32), 0);

    free(ca);
    free(cb);
    free(ca2);
    json_decref(dv);
    json_decref(da);
    json_decref(db);
    json_decref(da2);
    json_decref(a);
    json_decref(b);
}

Test(governance_spec, deployment_refuses_an_invalid_spec)
{
    json_t *s = parse(valid_spec);
    json_array_append_new(json_object_get(item(s, "applications", 0), "mounts"), json_string("cowin2"));
    json_t *d = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_spec_deployment("c1", 1, s, &d, &e), -EINVAL);
    cr_assert_null(d);
    cr_assert(strstr(e.msg, "unknown access point 'cowin2'") != NULL, "msg: %s", e.msg);
    json_decref(s);
}
