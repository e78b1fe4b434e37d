/*
 * options.c - option values shared by every front end: mode names, byte sizes, region size limits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ccr/crypto.h"
#include "ccr/dataplane.h"

static const char *const mode_names[] = {
    [CCR_MODE_CCR1] = "ccr1", [CCR_MODE_CSE] = "cleanroom-cse", [CCR_MODE_NONE] = "none",
    [CCR_MODE_CPK] = "cpk",   [CCR_MODE_AUTO] = "auto",
};

int ccr_mode_parse(const char *s, enum ccr_mode *out_mode)
{
    if (!s || !out_mode)
        return -EINVAL;
    for (int m = CCR_MODE_CCR1; m <= CCR_MODE_CPK; m++) {
        if (strcmp(s, mode_names[m]) == 0) {
            *out_mode = (enum ccr_mode)m;
            return 0;
        }
    }
    return -EINVAL;
}

const char *ccr_mode_name(enum ccr_mode m)
{
    if ((int)m < CCR_MODE_CCR1 || m > CCR_MODE_AUTO)
        return "?";
    return mode_names[m];
}

/*
 * Suffixes and their power of two, matched case-insensitively against the whole rest of the string.
 * "KB"/"MB"/"GB" are refused on purpose: some read them as powers of ten.
 */
static const struct {
    const char *suffix;
    unsigned shift;
} size_suffixes[] = {
    {"", 0},     {"b", 0},  {"k", 10},   {"kib", 10}, {"m", 20},
    {"mib", 20}, {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40},
};

int ccr_parse_size(const char *s, uint64_t *out_bytes)
{
    if (!s || !out_bytes)
        return -EINVAL;
    const char *p = s;
    uint64_t v = 0;
    bool overflow = false;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
        p++;
    }
    for (size_t i = 0; i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++) {
        if (strcasecmp(p, size_suffixes[i].suffix) != 0)
            continue;
        unsigned shift = size_suffixes[i].shift;
        if (overflow || (shift && v > (UINT64_MAX >> shift)))
            return -ERANGE;
        *out_bytes = v << shift;
        return 0;
    }
    return -EINVAL;
}

int ccr_region_size_check(enum ccr_mode mode, uint64_t size, char *why, size_t why_len)
{
    if (size == 0)
        return 0;
    switch (mode) {
    case CCR_MODE_CCR1:
        if (size >= CCR_CCR1_REGION_MIN && size <= CCR_CCR1_REGION_MAX && (size & (size - 1)) == 0)
            return 0;
        if (why && why_len)
            snprintf(why, why_len,
                     "the ccr1 region size must be a power of two from 4K to 16M (4096..16777216 bytes)");
        return -EINVAL;
    case CCR_MODE_CSE:
        if (size >= CCR_CSE_CHUNK_MIN && size <= CCR_CSE_CHUNK_MAX)
            return 0;
        if (why && why_len)
            snprintf(why, why_len, "the cleanroom-cse chunk size must be from 16 bytes to 1G");
        return -EINVAL;
    default:
        if (why && why_len)
            snprintf(why, why_len, "mode %s has no region size", ccr_mode_name(mode));
        return -EINVAL;
    }
}

uint64_t ccr_region_size_default(enum ccr_mode mode)
{
    switch (mode) {
    case CCR_MODE_CCR1:
        return CCR_CCR1_REGION_DEFAULT;
    case CCR_MODE_CSE:
        return CCR_CSE_CHUNK_DEFAULT64;
    default:
        return 0;
    }
}
