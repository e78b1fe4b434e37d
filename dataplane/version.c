/*
 * version.c - version strings for `ccr version` and the benchmark reports.
 */
#include <openssl/crypto.h>

#include "ccr/dataplane.h"

const char *ccr_version(void)
{
    return CCR_VERSION;
}

const char *ccr_openssl_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}
