/*
 * Option values: byte sizes, mode names, region size limits; the log sink.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ccr/dataplane.h"

Test(dataplane_options, size_plain_bytes)
{
    uint64_t v = 99;
    cr_assert_eq(ccr_parse_size("0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(ccr_parse_size("4096", &v), 0);
    cr_assert_eq(v, 4096);
    cr_assert_eq(ccr_parse_size("16b", &v), 0);
    cr_assert_eq(v, 16);
    cr_assert_eq(ccr_parse_size("18446744073709551615", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
}

Test(dataplane_options, size_suffixes_are_binary)
{
    static const struct {
        const char *s;
        uint64_t v;
    } cases[] = {
        {"4K", 4096},       {"4k", 4096},       {"4KiB", 4096},     {"4kib", 4096},
        {"1M", 1u << 20},   {"1MiB", 1u << 20}, {"16M", 16u << 20}, {"1G", 1u << 30},
        {"1GiB", 1u << 30}, {"3g", 3ull << 30}, {"2T", 2ull << 40}, {"2TiB", 2ull << 40},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 0;
        cr_assert_eq(ccr_parse_size(cases[i].s, &v), 0, "%s", cases[i].s);
        cr_assert_eq(v, cases[i].v, "%s -> %llu", cases[i].s, (unsigned long long)v);
    }
}

Test(dataplane_options, size_overflow_is_erange)
{
    uint64_t v = 7;
    cr_assert_eq(ccr_parse_size("18446744073709551616", &v), -ERANGE);
    cr_assert_eq(ccr_parse_size("99999999999999999999999", &v), -ERANGE);
    cr_assert_eq(ccr_parse_size("16777216T", &v), -ERANGE); /* 2^24 * 2^40 = 2^64 */
    cr_assert_eq(ccr_parse_size("17179869184G", &v), -ERANGE);
    cr_assert_eq(ccr_parse_size("16777215T", &v), 0); /* just fits */
    cr_assert_eq(v, 16777215ull << 40);
}

Test(dataplane_options, size_junk_is_einval)
{
    static const char *const bad[] = {"",    "K",    "-1",  "+1",  "1.5M", " 1",  "1 ",  "1MB", "1kb",
                                      "1GB", "0x10", "1KK", "1Mi", "1iB",  "abc", "1e6", "1M2", "1 K"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 123;
        cr_assert_eq(ccr_parse_size(bad[i], &v), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 123, "out written on failure for '%s'", bad[i]);
    }
    cr_assert_eq(ccr_parse_size(NULL, NULL), -EINVAL);
}

Test(dataplane_options, mode_names_round_trip)
{
    enum ccr_mode m = CCR_MODE_AUTO;
    cr_assert_eq(ccr_mode_parse("ccr1", &m), 0);
    cr_assert_eq(m, CCR_MODE_CCR1);
    cr_assert_eq(ccr_mode_parse("cleanroom-cse", &m), 0);
    cr_assert_eq(m, CCR_MODE_CSE);
    cr_assert_eq(ccr_mode_parse("none", &m), 0);
    cr_assert_eq(m, CCR_MODE_NONE);
    cr_assert_eq(ccr_mode_parse("cpk", &m), 0);
    cr_assert_eq(m, CCR_MODE_CPK);
    for (int i = CCR_MODE_CCR1; i <= CCR_MODE_CPK; i++) {
        cr_assert_eq(ccr_mode_parse(ccr_mode_name((enum ccr_mode)i), &m), 0);
        cr_assert_eq((int)m, i);
    }
    cr_assert_str_eq(ccr_mode_name(CCR_MODE_AUTO), "auto");
    cr_assert_str_eq(ccr_mode_name((enum ccr_mode)42), "?");
}

Test(dataplane_options, mode_junk_is_einval)
{
    enum ccr_mode m = CCR_MODE_CSE;
    static const char *const bad[] = {"",          "CCR1", "ccr2",  "cse",
                                      "cleanroom", "auto", "ccr1 ", "Cleanroom-CSE"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(ccr_mode_parse(bad[i], &m), -EINVAL, "'%s'", bad[i]);
    cr_assert_eq(m, CCR_MODE_CSE);
}

Test(dataplane_options, region_size_limits)
{
    char why[160];
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 0, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 4096, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 1u << 24, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 2048, why, sizeof(why)), -EINVAL);
    cr_assert(strstr(why, "power of two") != NULL);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 1u << 25, NULL, 0), -EINVAL);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CCR1, 5000, NULL, 0), -EINVAL);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CSE, 16, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CSE, 5000, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CSE, 1u << 30, NULL, 0), 0);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CSE, 15, NULL, 0), -EINVAL);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_CSE, (1u << 30) + 1, NULL, 0), -EINVAL);
    cr_assert_eq(ccr_region_size_check(CCR_MODE_NONE, 4096, NULL, 0), -EINVAL);
    cr_assert_eq(ccr_region_size_default(CCR_MODE_CCR1), 1u << 20);
    cr_assert_eq(ccr_region_size_default(CCR_MODE_CSE), 16u << 20);
}

static int log_calls;
static char log_last[256];

static void test_sink(void *arg, enum ccr_log_level level, const char *msg)
{
    (void)level;
    (*(int *)arg)++;
    snprintf(log_last, sizeof(log_last), "%s", msg);
}

Test(dataplane_options, log_levels_filter_before_formatting)
{
    ccr_log(CCR_LOG_ERROR, "nobody listens");
    cr_assert_not(ccr_log_enabled(CCR_LOG_ERROR));
    ccr_log_set(test_sink, &log_calls, CCR_LOG_WARN);
    cr_assert(ccr_log_enabled(CCR_LOG_WARN));
    cr_assert_not(ccr_log_enabled(CCR_LOG_INFO));
    ccr_log(CCR_LOG_INFO, "dropped %d", 1);
    cr_assert_eq(log_calls, 0);
    ccr_log(CCR_LOG_WARN, "kept %d", 2);
    cr_assert_eq(log_calls, 1);
    cr_assert_str_eq(log_last, "kept 2");
    ccr_log_set(NULL, NULL, CCR_LOG_DEBUG);
    ccr_log(CCR_LOG_ERROR, "silenced");
    cr_assert_eq(log_calls, 1);
}

Test(dataplane_options, versions_are_strings)
{
    cr_assert_str_eq(ccr_version(), CCR_VERSION);
    cr_assert(strstr(ccr_openssl_version(), "OpenSSL") != NULL);
}
