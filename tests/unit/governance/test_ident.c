/*
 * test_ident.c - member identities (governance/ident.c): keygen writes a 0600 key and a certificate,
 * refuses to overwrite either, the member id is the SHA-256 of the certificate DER (computed here
 * independently and by the openssl command line), load checks the key belongs to the certificate,
 * only P-384 certificates are accepted, and bad names are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccr/gov_crypto.h"

static char dir[64];

static void dir_make(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ccr-test-ident-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void dir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "cannot open %s", p);
    char *buf = calloc(1, 1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

TestSuite(governance_ident, .init = dir_make, .fini = dir_remove);

Test(governance_ident, keygen_files_mode_and_id)
{
    char id[CCR_GOV_ID_HEX_LEN + 1];
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_ident_keygen(dir, "alice", id, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(id), 64);

    char kp[128], cp[128];
    path(kp, sizeof(kp), "alice_privk.pem");
    path(cp, sizeof(cp), "alice_cert.pem");
    struct stat st;
    cr_assert_eq(stat(kp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "key mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(cp, &st), 0);
    cr_assert(S_ISREG(st.st_mode));

    /* Independently: SHA-256 of the DER of the certificate in the file. */
    FILE *f = fopen(cp, "r");
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    cr_assert_gt(n, 0);
    unsigned char md[32];
    unsigned mdlen = 0;
    cr_assert_eq(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
    char want[65];
    for (int i = 0; i < 32; i++)
        sprintf(want + 2 * i, "%02x", md[i]);
    cr_assert_str_eq(id, want);
    OPENSSL_free(der);

    /* Self-signed with SHA-384 over P-384, CN=alice, ten years. */
    EVP_PKEY *pub = X509_get0_pubkey(x);
    cr_assert_eq(X509_verify(x, pub), 1);
    cr_assert_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
    cr_assert_eq(EVP_PKEY_get_bits(pub), 384);
    char cn[64];
    cr_assert_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)), 0);
    cr_assert_str_eq(cn, "alice");
    int days = 0, secs = 0;
    cr_assert_eq(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
    cr_assert(days >= 3650 && days <= 3653, "valid %d days", days);
    X509_free(x);

    /* And the openssl command line agrees on the fingerprint. */
    char cmd[512], line[256] = {0};
    snprintf(cmd, sizeof(cmd), "/usr/bin/openssl x509 -in '%s' -noout -fingerprint -sha256", cp);
    FILE *pp = popen(cmd, "r");
    cr_assert_not_null(pp);
    cr_assert_not_null(fgets(line, sizeof(line), pp));
    pclose(pp);
    char fp[65] = {0};
    size_t k = 0;
    for (char *c = strchr(line, '=') + 1; *c && k < 64; c++)
        if (*c != ':' && *c != '\n')
            fp[k++] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    cr_assert_str_eq(fp, id);

    /* Loading gives the same id, name and PEM. */
    struct ccr_gov_ident *ident = NULL;
    cr_assert_eq(ccr_gov_ident_load(cp, kp, &ident, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ccr_gov_ident_id(ident), id);
    cr_assert_str_eq(ccr_gov_ident_name(ident), "alice");
    size_t plen;
    char *pem = slurp(cp, &plen);
    cr_assert_str_eq(ccr_gov_ident_cert_pem(ident), pem);
    ccr_gov_ident_destroy(ident);

    /* From the PEM text, certificate only. */
    cr_assert_eq(ccr_gov_ident_from_cert_pem(pem, plen, &ident, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ccr_gov_ident_id(ident), id);
    ccr_gov_ident_destroy(ident);
    free(pem);
}

Test(governance_ident, keygen_refuses_overwrite)
{
    char id[65], id2[65];
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_ident_keygen(dir, "bob", id, &err), 0);
    char kp[128], cp[128];
    path(kp, sizeof(kp), "bob_privk.pem");
    path(cp, sizeof(cp), "bob_cert.pem");
    size_t klen, clen;
    char *k1 = slurp(kp, &klen), *c1 = slurp(cp, &clen);
    cr_assert_eq(ccr_gov_ident_keygen(dir, "bob", id2, &err), -EEXIST);
    cr_assert_eq(err.code, -EEXIST);
    cr_assert_neq(err.msg[0], '\0');
    size_t klen2, clen2;
    char *k2 = slurp(kp, &klen2), *c2 = slurp(cp, &clen2);
    cr_assert_str_eq(k1, k2, "key file changed");
    cr_assert_str_eq(c1, c2, "certificate changed");

    /* A certificate alone in the way is refused too, and no key is left behind. */
    cr_assert_eq(unlink(kp), 0);
    cr_assert_eq(ccr_gov_ident_keygen(dir, "bob", id2, &err), -EEXIST);
    cr_assert_neq(access(kp, F_OK), 0);
    free(k1);
    free(k2);
    free(c1);
    free(c2);

    /* No temporary files left over. */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(governance_ident, bad_names_refused)
{
    const char *bad[] = {"",
                         "../x",
                         "a/b",
                         ".hidden",
                         "-opt",
                         "sp ace",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ccr_err err;
        ccr_err_clear(&err);
        cr_assert_eq(ccr_gov_ident_keygen(dir, bad[i], NULL, &err), -EINVAL, "name '%s'", bad[i]);
        cr_assert_neq(err.msg[0], '\0');
    }
    cr_assert_eq(ccr_gov_ident_keygen("/nonexistent-ccr-dir", "x", NULL, NULL), -ENOENT);
}

Test(governance_ident, key_must_match_certificate)
{
    cr_assert_eq(ccr_gov_ident_keygen(dir, "a", NULL, NULL), 0);
    cr_assert_eq(ccr_gov_ident_keygen(dir, "b", NULL, NULL), 0);
    char ka[128], cb[128], ca[128];
    path(ka, sizeof(ka), "a_privk.pem");
    path(ca, sizeof(ca), "a_cert.pem");
    path(cb, sizeof(cb), "b_cert.pem");
    struct ccr_gov_ident *id = NULL;
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_gov_ident_load(cb, ka, &id, &err), -EINVAL);
    cr_assert_null(id);
    cr_assert_neq(strstr(err.msg, "does not belong"), NULL, "%s", err.msg);
    /* certificate without a key */
    cr_assert_eq(ccr_gov_ident_load(ca, NULL, &id, &err), 0);
    cr_assert_str_eq(ccr_gov_ident_name(id), "a");
    ccr_gov_ident_destroy(id);
    /* swapped: a key where the certificate should be */
    cr_assert_eq(ccr_gov_ident_load(ka, NULL, &id, &err), -EINVAL);
    char missing[128];
    path(missing, sizeof(missing), "missing.pem");
    cr_assert_eq(ccr_gov_ident_load(missing, NULL, &id, &err), -ENOENT);
}

Test(governance_ident, only_p384_certificates)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && /usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-subj /CN=p256 -keyout p256.key -out p256.pem -days 1 2>/dev/null && "
             "/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=rsa -keyout rsa.key -out rsa.pem "
             "-days 1 2>/dev/null && "
             "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
             "-subj /CN=p384 -keyout p384.key -out p384.pem -days 1 2>/dev/null",
             dir);
    cr_assert_eq(system(cmd), 0);
    const char *files[] = {"p256.pem", "rsa.pem"};
    for (int i = 0; i < 2; i++) {
        char p[128];
        path(p, sizeof(p), files[i]);
        size_t len;
        char *pem = slurp(p, &len);
        struct ccr_gov_ident *id = NULL;
        struct ccr_err err;
        ccr_err_clear(&err);
        cr_assert_eq(ccr_gov_ident_from_cert_pem(pem, len, &id, &err), -EINVAL, "%s", files[i]);
        cr_assert_null(id);
        cr_assert_neq(strstr(err.msg, "P-384"), NULL);
        free(pem);
    }
    /* An openssl-made P-384 key and certificate load, and the key matches. */
    char c[128], k[128];
    path(c, sizeof(c), "p384.pem");
    path(k, sizeof(k), "p384.key");
    struct ccr_gov_ident *id = NULL;
    cr_assert_eq(ccr_gov_ident_load(c, k, &id, NULL), 0);
    cr_assert_str_eq(ccr_gov_ident_name(id), "p384");
    ccr_gov_ident_destroy(id);

    struct ccr_gov_ident *none = NULL;
    cr_assert_eq(ccr_gov_ident_from_cert_pem("garbage", 7, &none, NULL), -EINVAL);
    cr_assert_eq(ccr_gov_ident_from_cert_pem("", 0, &none, NULL), -EINVAL);
    cr_assert_null(none);
    ccr_gov_ident_destroy(NULL);
}
