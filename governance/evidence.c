/*
 * evidence.c - attestation evidence: the insecure "virtual" type and the helpers every verifier shares.
 *
 * Virtual evidence is JSON {"type":"virtual","measurement":"<64 hex>","report_data":"<128 hex>"}. The
 * virtual verifier checks its syntax only: a virtual clean room reports whatever it likes, which is why
 * claims.insecure is true and the service accepts it only with --allow-virtual-attestation. Parsing is
 * strict all the same (one object, no duplicate keys, no other members, exact hex lengths): evidence
 * comes from the network.
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "gov_crypto_int.h"

#define EVIDENCE_MAX (1u << 20)

static json_t *load_object(const uint8_t *evidence, size_t len, struct ccr_err *err)
{
    if (!evidence || len == 0 || len > EVIDENCE_MAX) {
        ccr_err_set(err, -EBADMSG, "evidence", -1, "evidence is %s", len ? "too large" : "empty");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)evidence, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        ccr_err_set(err, -EBADMSG, "evidence", je.position, "evidence is not JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        ccr_err_set(err, -EBADMSG, "evidence", -1, "evidence is not a JSON object");
        return NULL;
    }
    return root;
}

/* Reads member key of root as exactly n bytes of hex into out. */
static int hex_member(json_t *root, const char *key, uint8_t *out, size_t n, struct ccr_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v) || json_string_length(v) != 2 * n ||
        ccr_gov_unhex(json_string_value(v), out, n) < 0)
        return ccr_err_set(err, -EBADMSG, "evidence", -1, "\"%s\" must be %zu hex digits", key, 2 * n);
    return 0;
}

static int virtual_verify(void *cb_arg, const uint8_t *evidence, size_t len, struct ccr_gov_claims *out,
                          struct ccr_err *err)
{
    (void)cb_arg;
    if (!out)
        return ccr_err_set(err, -EINVAL, "evidence", -1, "no claims to fill");
    json_t *root = load_object(evidence, len, err);
    if (!root)
        return -EBADMSG;
    struct ccr_gov_claims c;
    memset(&c, 0, sizeof(c));
    int rc;
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        rc = ccr_err_set(err, -EBADMSG, "evidence", -1, "evidence has no \"type\" string");
        goto out;
    }
    if (strcmp(json_string_value(type), "virtual") != 0 || json_string_length(type) != 7) {
        rc = ccr_err_set(err, -ENOTSUP, "evidence", -1, "evidence of type \"%.32s\" is not virtual",
                         json_string_value(type));
        goto out;
    }
    if (json_object_size(root) != 3) {
        rc = ccr_err_set(err, -EBADMSG, "evidence", -1,
                         "virtual evidence has exactly the members type, measurement and report_data");
        goto out;
    }
    rc = hex_member(root, "measurement", c.measurement, sizeof(c.measurement), err);
    if (rc == 0)
        rc = hex_member(root, "report_data", c.report_data, sizeof(c.report_data), err);
    if (rc < 0)
        goto out;
    memcpy(c.type, "virtual", sizeof("virtual"));
    c.insecure = true;
    *out = c;
out:
    json_decref(root);
    return rc;
}

const struct ccr_gov_verifier ccr_gov_verifier_virtual = {
    .type = "virtual",
    .verify = virtual_verify,
    .cb_arg = NULL,
};

int ccr_gov_evidence_virtual(const uint8_t measurement[CCR_GOV_MEASUREMENT_LEN],
                             const struct ccr_gov_ephkey *k, uint8_t **out, size_t *out_len)
{
    if (!measurement || !k || !k->spki || !out || !out_len)
        return -EINVAL;
    char mhex[2 * CCR_GOV_MEASUREMENT_LEN + 1], rhex[2 * CCR_GOV_REPORT_DATA_LEN + 1];
    uint8_t rd[CCR_GOV_REPORT_DATA_LEN] = {0};
    ccr_gov_sha256(k->spki, k->spki_len, rd);
    ccr_gov_hex(measurement, CCR_GOV_MEASUREMENT_LEN, mhex);
    ccr_gov_hex(rd, sizeof(rd), rhex);
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "virtual", "measurement", mhex, "report_data", rhex);
    if (!o)
        return -ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    uint8_t *b = ccr_malloc(n);
    if (!b) {
        free(s);
        return -ENOMEM;
    }
    memcpy(b, s, n);
    free(s);
    *out = b;
    *out_len = n;
    return 0;
}

int ccr_gov_evidence_type(const uint8_t *evidence, size_t len, char *type, size_t cap)
{
    if (!type || cap == 0)
        return -EINVAL;
    json_t *root = load_object(evidence, len, NULL);
    if (!root)
        return -EBADMSG;
    int rc = -EBADMSG;
    json_t *t = json_object_get(root, "type");
    if (json_is_string(t)) {
        size_t n = json_string_length(t);
        const char *s = json_string_value(t);
        if (n > 0 && n < cap && strlen(s) == n) {
            memcpy(type, s, n + 1);
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

bool ccr_gov_report_data_binds(const uint8_t report_data[CCR_GOV_REPORT_DATA_LEN], const uint8_t *spki,
                               size_t spki_len)
{
    if (!report_data || !spki || spki_len == 0)
        return false;
    uint8_t h[32];
    ccr_gov_sha256(spki, spki_len, h);
    /* Not secret, but compare every byte anyway: no early exit to time. */
    uint8_t diff = 0;
    for (size_t i = 0; i < 32; i++)
        diff |= (uint8_t)(report_data[i] ^ h[i]);
    for (size_t i = 32; i < CCR_GOV_REPORT_DATA_LEN; i++)
        diff |= report_data[i];
    return diff == 0;
}
