/*
 * The file codec through the library API on real temporary files: round trips at the sizes where
 * region arithmetic goes wrong, in both modes and with 1 and 2 threads; trees; tampering, wrong keys,
 * wrong sizes, failed writes and cancellation, each leaving no output and no temporary file behind.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

#include "dp_helpers.h"

static struct ccr_codec_opts opts_for(enum ccr_mode mode, uint64_t region, unsigned threads)
{
    struct ccr_codec_opts o;
    ccr_codec_opts_init(&o);
    o.mode = mode;
    o.region_size = region;
    o.threads = threads;
    return o;
}

/* Encrypts and decrypts one file of `size` bytes; checks sizes, content and that no temp is left. */
static void round_trip(enum ccr_mode mode, uint64_t region, unsigned threads, uint64_t size)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    struct ccr_key k = dp_key(1);
    dp_write_file(plain, size, (unsigned)size);
    struct ccr_codec_opts o = opts_for(mode, region, threads);
    struct ccr_codec_result r;
    struct ccr_err e;

    int rc = ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e);
    cr_assert_eq(rc, 0, "encrypt %s R=%llu t=%u size=%llu: %d %s", ccr_mode_name(mode),
                 (unsigned long long)region, threads, (unsigned long long)size, rc, e.msg);
    uint64_t want = mode == CCR_MODE_CCR1 ? ccr_ccr1_blob_size(size, (unsigned)__builtin_ctzll(region))
                                          : ccr_cse_blob_size(size, region);
    cr_assert_eq(dp_file_size(enc), (int64_t)want, "blob size %lld, want %llu", (long long)dp_file_size(enc),
                 (unsigned long long)want);
    cr_assert_eq(r.files, 1);
    cr_assert_eq(r.errors, 0);
    cr_assert_eq(r.bytes_in, size);
    cr_assert_eq(r.bytes_out, want);
    ccr_codec_result_fini(&r);

    rc = ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e);
    cr_assert_eq(rc, 0, "decrypt size=%llu: %d %s", (unsigned long long)size, rc, e.msg);
    cr_assert_eq(r.bytes_out, size);
    ccr_codec_result_fini(&r);
    cr_assert(dp_same_file(plain, dec), "round trip differs at size %llu", (unsigned long long)size);
    cr_assert_eq(dp_count_entries(dir, "ccr-tmp"), 0);
    cr_assert_eq(dp_count_entries(dir, NULL), 3);

    free(plain);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

static void round_trip_sizes(enum ccr_mode mode, uint64_t r, unsigned threads)
{
    /* 0, 1, R-1, R, R+1, and several 2 MiB work units with a ragged end */
    uint64_t sizes[] = {0, 1, r - 1, r, r + 1, 2 * r + 3, (5u << 20) + 123};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        round_trip(mode, r, threads, sizes[i]);
}

Test(dataplane_codec, ccr1_round_trip_small_regions_1_thread)
{
    round_trip_sizes(CCR_MODE_CCR1, 4096, 1);
}

Test(dataplane_codec, ccr1_round_trip_small_regions_2_threads)
{
    round_trip_sizes(CCR_MODE_CCR1, 4096, 2);
}

Test(dataplane_codec, ccr1_round_trip_default_region_2_threads)
{
    round_trip(CCR_MODE_CCR1, 1u << 20, 2, (1u << 20) - 1);
    round_trip(CCR_MODE_CCR1, 1u << 20, 2, 1u << 20);
    round_trip(CCR_MODE_CCR1, 1u << 20, 2, (1u << 20) + 1);
    round_trip(CCR_MODE_CCR1, 1u << 20, 2, (7u << 20) + 5);
}

Test(dataplane_codec, ccr1_round_trip_large_region)
{
    /* R above the unit target: one region per unit */
    round_trip(CCR_MODE_CCR1, 4u << 20, 2, (9u << 20) + 1);
}

Test(dataplane_codec, cse_round_trip_1_thread)
{
    round_trip_sizes(CCR_MODE_CSE, 4096, 1);
}

Test(dataplane_codec, cse_round_trip_2_threads)
{
    round_trip_sizes(CCR_MODE_CSE, 4096, 2);
}

Test(dataplane_codec, cse_round_trip_tiny_and_odd_chunks)
{
    round_trip(CCR_MODE_CSE, 16, 2, 0);
    round_trip(CCR_MODE_CSE, 16, 2, 15);
    round_trip(CCR_MODE_CSE, 16, 2, 17);
    round_trip(CCR_MODE_CSE, 16, 2, 100000); /* many units of 1024 chunks */
    round_trip(CCR_MODE_CSE, 1000, 2, 1000 * 2100 + 1);
}

Test(dataplane_codec, cse_default_chunk_sizes_match_the_platform)
{
    /* the platform's worked example: a 1-byte file gives a 16,777,252-byte blob */
    round_trip(CCR_MODE_CSE, 16u << 20, 2, 1);
    round_trip(CCR_MODE_CSE, 16u << 20, 1, (16u << 20) + 1);
}

Test(dataplane_codec, cse_empty_file_is_the_trailer_alone)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "p"), *enc = dp_path(dir, "e"), *dec = dp_path(dir, "d");
    struct ccr_key k = dp_key(2);
    dp_write_file(plain, 0, 0);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CSE, 0, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e), 0);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_file_size(enc), 8);
    /* a 0-byte blob is an empty file too */
    cr_assert_eq(truncate(enc, 0), 0);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e), 0, "%s", e.msg);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_file_size(dec), 0);
    free(plain);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

Test(dataplane_codec, output_keeps_source_permission_bits)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "p"), *enc = dp_path(dir, "e");
    struct ccr_key k = dp_key(3);
    dp_write_file(plain, 100, 1);
    cr_assert_eq(chmod(plain, 0640), 0);
    mode_t old = umask(022);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 0, 1);
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), 0);
    ccr_codec_result_fini(&r);
    umask(old);
    struct stat st;
    cr_assert_eq(stat(enc, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640, "mode %o", st.st_mode & 0777);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

/* ----------------------------------------------------------------------------------------------------- */
/* destinations                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

Test(dataplane_codec, existing_destination_needs_force)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "p"), *enc = dp_path(dir, "e");
    struct ccr_key k = dp_key(4);
    dp_write_file(plain, 5000, 1);
    dp_write_file(enc, 3, 9);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 0, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e), -EEXIST);
    cr_assert_str_eq(e.where, enc);
    cr_assert(strstr(e.msg, "--force") != NULL, "%s", e.msg);
    cr_assert_eq(r.files, 0);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_file_size(enc), 3);
    o.force = true;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e), 0, "%s", e.msg);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_file_size(enc), (int64_t)ccr_ccr1_blob_size(5000, 20));
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, missing_source_is_enoent)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "nope"), *enc = dp_path(dir, "e");
    struct ccr_key k = dp_key(4);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 0, 1);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e), -ENOENT);
    cr_assert_str_eq(e.where, plain);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_count_entries(dir, NULL), 0);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, bad_options_are_einval)
{
    struct ccr_key k = dp_key(4);
    struct ccr_codec_result r;
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 5000, 1);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, "/nonexistent", "/nonexistent2", &o, &r, NULL),
                 -EINVAL);
    o = opts_for(CCR_MODE_NONE, 0, 1);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, "/nonexistent", "/nonexistent2", &o, &r, NULL),
                 -EINVAL);
    o = opts_for(CCR_MODE_CSE, 8, 1);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, "/nonexistent", "/nonexistent2", &o, &r, NULL),
                 -EINVAL);
    ccr_codec_result_fini(&r);
}

/* ----------------------------------------------------------------------------------------------------- */
/* failures leave nothing behind                                                                          */
/* ----------------------------------------------------------------------------------------------------- */

/* Encrypts a 3-region (R = 4096) ccr1 file into dir/enc with key k. */
static void make_ccr1(const char *dir, const struct ccr_key *k, uint64_t size)
{
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    dp_write_file(plain, size, 5);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 2);
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, k, plain, enc, &o, &r, NULL), 0);
    ccr_codec_result_fini(&r);
    free(plain);
    free(enc);
}

/* Decrypting dir/enc must fail with want; nothing may appear in dir but plain and enc. */
static struct ccr_err expect_decrypt_failure(const char *dir, const struct ccr_key *k, enum ccr_mode mode,
                                             uint64_t region, int want)
{
    char *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    struct ccr_codec_opts o = opts_for(mode, region, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    int rc = ccr_codec_run(CCR_CODEC_DECRYPT, k, enc, dec, &o, &r, &e);
    cr_assert_eq(rc, want, "got %d (%s), want %d", rc, e.msg, want);
    cr_assert_eq(r.errors, 1);
    cr_assert_eq(r.files, 0);
    cr_assert_str_eq(r.failed[0].path, enc);
    cr_assert_eq(r.failed[0].err.code, want);
    ccr_codec_result_fini(&r);
    cr_assert_not(dp_exists(dec), "output left behind");
    cr_assert_eq(dp_count_entries(dir, "ccr-tmp"), 0, "temporary file left behind");
    free(enc);
    free(dec);
    return e;
}

Test(dataplane_codec, ccr1_tampered_region_names_region_and_offset)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(6);
    make_ccr1(dir, &k, 3 * 4096 - 10);
    char *enc = dp_path(dir, "enc");
    uint64_t off1 = ccr_ccr1_region_offset(1, 12);
    dp_flip(enc, off1 + 100, 0x01);
    struct ccr_err e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    cr_assert_eq(e.offset, (int64_t)off1);
    cr_assert(strstr(e.msg, "region 1 ") != NULL, "%s", e.msg);
    char want[64];
    snprintf(want, sizeof(want), "byte offset %llu", (unsigned long long)off1);
    cr_assert(strstr(e.msg, want) != NULL, "%s", e.msg);
    cr_assert_str_eq(e.where, enc);
    /* the tag of the last region, and the header */
    dp_flip(enc, off1 + 100, 0x01);
    dp_flip(enc, (uint64_t)dp_file_size(enc) - 1, 0x80);
    e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    cr_assert(strstr(e.msg, "region 2 ") != NULL, "%s", e.msg);
    dp_flip(enc, (uint64_t)dp_file_size(enc) - 1, 0x80);
    dp_flip(enc, 30, 0x04); /* salt: a different per-blob key, every region fails */
    e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    cr_assert(strstr(e.msg, "region 0 ") != NULL, "%s", e.msg);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, ccr1_truncated_or_extended_fails)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(7);
    make_ccr1(dir, &k, 3 * 4096);
    char *enc = dp_path(dir, "enc");
    int64_t size = dp_file_size(enc);
    /* drop the whole last region: sizes still fit, but region 1 is not final */
    cr_assert_eq(truncate(enc, (off_t)ccr_ccr1_region_offset(2, 12)), 0);
    expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    /* one byte short of a whole file */
    cr_assert_eq(truncate(enc, (off_t)(size - 1)), 0);
    expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    /* shorter than a header */
    cr_assert_eq(truncate(enc, 10), 0);
    struct ccr_err e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    cr_assert(strstr(e.msg, "header") != NULL, "%s", e.msg);
    free(enc);
    dp_rmtree(dir);

    dir = dp_mkdtemp();
    make_ccr1(dir, &k, 3 * 4096);
    enc = dp_path(dir, "enc");
    size = dp_file_size(enc);
    cr_assert_eq(truncate(enc, (off_t)(size + 17)), 0); /* extended */
    expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, ccr1_wrong_key_is_enokey_with_both_ids)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(8), other = dp_key(9);
    make_ccr1(dir, &k, 5000);
    struct ccr_err e = expect_decrypt_failure(dir, &other, CCR_MODE_CCR1, 0, -ENOKEY);
    uint8_t id[CCR_KEY_ID_LEN];
    cr_assert_eq(ccr_key_id(&k, id), 0);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    cr_assert(strstr(e.msg, "wrong key") != NULL, "%s", e.msg);
    cr_assert(strstr(e.msg, hex) != NULL, "%s", e.msg);
    dp_rmtree(dir);
}

Test(dataplane_codec, ccr1_region_size_must_match_header)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(10);
    make_ccr1(dir, &k, 5000);
    struct ccr_err e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 8192, -EBADMSG);
    cr_assert(strstr(e.msg, "4096") != NULL && strstr(e.msg, "8192") != NULL, "%s", e.msg);
    /* the matching value is fine */
    char *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 1);
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e), 0, "%s", e.msg);
    ccr_codec_result_fini(&r);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

Test(dataplane_codec, ccr1_decrypting_cse_data_is_a_format_failure)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    struct ccr_key k = dp_key(11);
    dp_write_file(plain, 100, 1);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CSE, 4096, 1);
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), 0);
    ccr_codec_result_fini(&r);
    struct ccr_err e = expect_decrypt_failure(dir, &k, CCR_MODE_CCR1, 0, -EBADMSG);
    cr_assert(strstr(e.msg, "not a ccr1 file") != NULL, "%s", e.msg);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, cse_tampering_wrong_key_and_bad_sizes_fail)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    struct ccr_key k = dp_key(12), other = dp_key(13);
    uint64_t B = 4096;
    dp_write_file(plain, 3 * B - 100, 1);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CSE, B, 2);
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), 0);
    ccr_codec_result_fini(&r);

    uint64_t off2 = 2 * (B + 28);
    dp_flip(enc, off2 + 50, 0x10);
    struct ccr_err e = expect_decrypt_failure(dir, &k, CCR_MODE_CSE, B, -EBADMSG);
    cr_assert(strstr(e.msg, "chunk 2 ") != NULL, "%s", e.msg);
    cr_assert_eq(e.offset, (int64_t)off2);
    dp_flip(enc, off2 + 50, 0x10);

    e = expect_decrypt_failure(dir, &other, CCR_MODE_CSE, B, -EBADMSG);
    cr_assert(strstr(e.msg, "chunk 0 ") != NULL, "%s", e.msg);

    /* wrong chunk size: the size fits no layout */
    expect_decrypt_failure(dir, &k, CCR_MODE_CSE, 8192, -EBADMSG);

    /* a trailer claiming less padding makes the plaintext's zero padding part of the data: still the
     * padding check of the last chunk must fail when the claim is larger than the real padding */
    int64_t size = dp_file_size(enc);
    dp_flip(enc, (uint64_t)size - 1, 0x01); /* pad 100 -> 101: byte 3B-101 is data, not zero */
    e = expect_decrypt_failure(dir, &k, CCR_MODE_CSE, B, -EBADMSG);
    cr_assert(strstr(e.msg, "padding") != NULL, "%s", e.msg);
    dp_flip(enc, (uint64_t)size - 1, 0x01);

    cr_assert_eq(truncate(enc, size - 1), 0);
    expect_decrypt_failure(dir, &k, CCR_MODE_CSE, B, -EBADMSG);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, failed_write_leaves_no_temp)
{
    /* RLIMIT_FSIZE makes writes past 64 KiB fail (EFBIG): the same path as ENOSPC */
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    struct ccr_key k = dp_key(14);
    dp_write_file(plain, 1u << 20, 1);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 65536, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    int rc = ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, &e);
    cr_assert(rc == -EFBIG, "rc %d %s", rc, e.msg);
    cr_assert_str_eq(e.where, enc);
    cr_assert(strstr(e.msg, "File too large") != NULL || strstr(e.msg, "size") != NULL, "%s", e.msg);
    ccr_codec_result_fini(&r);
    cr_assert_not(dp_exists(enc));
    cr_assert_eq(dp_count_entries(dir, "ccr-tmp"), 0);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

/* ----------------------------------------------------------------------------------------------------- */
/* cancellation                                                                                           */
/* ----------------------------------------------------------------------------------------------------- */

Test(dataplane_codec, cancel_before_start_writes_nothing)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    struct ccr_key k = dp_key(15);
    dp_write_file(plain, 100000, 1);
    atomic_int cancel = 1;
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 2);
    o.cancel = &cancel;
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), -ECANCELED);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_count_entries(dir, NULL), 1);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}

struct watcher {
    const char *dir;
    atomic_int *cancel;
    atomic_int stop;
    atomic_int saw_temp;
};

/* Raises the cancel flag as soon as a temporary output file exists: the run is then mid-way. */
static void *watch(void *arg)
{
    struct watcher *w = arg;
    while (!atomic_load(&w->stop)) {
        if (dp_count_entries(w->dir, "ccr-tmp") > 0) {
            atomic_store(&w->saw_temp, 1);
            atomic_store(w->cancel, 1);
            break;
        }
        sched_yield();
    }
    return NULL;
}

static void cancel_midway(enum ccr_codec_op op, enum ccr_mode mode)
{
    char *dir = dp_mkdtemp();
    char *out = dp_path(dir, "out");
    cr_assert_eq(mkdir(out, 0700), 0);
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc"), *dst = dp_path(out, "result");
    struct ccr_key k = dp_key(16);
    uint64_t size = 96u << 20;
    dp_write_file(plain, size, 1);
    struct ccr_codec_opts o = opts_for(mode, 4096, 1);
    struct ccr_codec_result r;
    const char *src = plain;
    if (op == CCR_CODEC_DECRYPT) {
        cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), 0);
        ccr_codec_result_fini(&r);
        src = enc;
    }
    atomic_int cancel = 0;
    o.cancel = &cancel;
    struct watcher w = {.dir = out, .cancel = &cancel};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watch, &w), 0);
    int rc = ccr_codec_run(op, &k, src, dst, &o, &r, NULL);
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    cr_assert(atomic_load(&w.saw_temp), "the run finished before the watcher saw it (machine too fast?)");
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(r.files, 0);
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_count_entries(out, NULL), 0, "something was left in the output directory");
    free(out);
    free(plain);
    free(enc);
    free(dst);
    dp_rmtree(dir);
}

Test(dataplane_codec, cancel_midway_encrypt_leaves_nothing, .timeout = 60)
{
    cancel_midway(CCR_CODEC_ENCRYPT, CCR_MODE_CCR1);
}

Test(dataplane_codec, cancel_midway_decrypt_leaves_nothing, .timeout = 60)
{
    cancel_midway(CCR_CODEC_DECRYPT, CCR_MODE_CSE);
}

/* ----------------------------------------------------------------------------------------------------- */
/* trees                                                                                                  */
/* ----------------------------------------------------------------------------------------------------- */

struct tree_entry {
    const char *rel;
    int64_t size; /* -1 directory */
};

static const struct tree_entry tree[] = {
    {"a", -1},    {"a/b", -1},   {"a/b/c", -1},     {"empty_dir", -1},  {"a/b/c/deep.bin", 70000},
    {"a/one", 1}, {"a/zero", 0}, {"top.txt", 4097}, {"a/b/mid", 12345}, {"a/b/c/big", (3u << 20) + 7},
};

static void make_tree(const char *root)
{
    cr_assert_eq(mkdir(root, 0755), 0);
    for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
        char *p = dp_path(root, tree[i].rel);
        if (tree[i].size < 0)
            cr_assert_eq(mkdir(p, 0755), 0);
        else
            dp_write_file(p, (uint64_t)tree[i].size, (unsigned)i);
        free(p);
    }
}

static void check_tree(const char *orig, const char *copy)
{
    for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++) {
        char *a = dp_path(orig, tree[i].rel), *b = dp_path(copy, tree[i].rel);
        struct stat st;
        cr_assert_eq(lstat(b, &st), 0, "%s missing", b);
        if (tree[i].size < 0)
            cr_assert(S_ISDIR(st.st_mode), "%s", b);
        else
            cr_assert(dp_same_file(a, b), "%s differs", b);
        free(a);
        free(b);
    }
}

static void tree_round_trip(enum ccr_mode mode, unsigned threads)
{
    char *dir = dp_mkdtemp();
    char *src = dp_path(dir, "src"), *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    make_tree(src);
    struct ccr_key k = dp_key(17);
    struct ccr_codec_opts o = opts_for(mode, 4096, threads);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, enc, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 6);
    cr_assert_eq(r.errors, 0);
    cr_assert_eq(r.dirs, 5); /* the root and four subdirectories */
    ccr_codec_result_fini(&r);
    char *enc_big = dp_path(enc, "a/b/c/big");
    uint64_t big = (3u << 20) + 7;
    cr_assert_eq(dp_file_size(enc_big), (int64_t)(mode == CCR_MODE_CCR1 ? ccr_ccr1_blob_size(big, 12)
                                                                        : ccr_cse_blob_size(big, 4096)));
    free(enc_big);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 6);
    ccr_codec_result_fini(&r);
    check_tree(src, dec);
    free(src);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

Test(dataplane_codec, tree_round_trip_ccr1)
{
    tree_round_trip(CCR_MODE_CCR1, 2);
}

Test(dataplane_codec, tree_round_trip_cse_1_thread)
{
    tree_round_trip(CCR_MODE_CSE, 1);
}

static int warnings;
static void count_warnings(void *arg, enum ccr_log_level level, const char *msg)
{
    (void)arg;
    if (level == CCR_LOG_WARN && strstr(msg, "skipped"))
        warnings++;
}

Test(dataplane_codec, tree_skips_symlinks_and_refuses_existing_or_nested_dst)
{
    char *dir = dp_mkdtemp();
    char *src = dp_path(dir, "src"), *enc = dp_path(dir, "enc");
    make_tree(src);
    char *link = dp_path(src, "link"), *fifo = dp_path(src, "a/fifo");
    cr_assert_eq(symlink("top.txt", link), 0);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    char *stale = dp_path(src, "a/.one.ccr-tmp-AbC123"); /* left by a killed run */
    dp_write_file(stale, 10, 1);
    free(stale);
    struct ccr_key k = dp_key(18);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 0, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    ccr_log_set(count_warnings, NULL, CCR_LOG_WARN);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, enc, &o, &r, &e), 0, "%s", e.msg);
    ccr_log_set(NULL, NULL, CCR_LOG_ERROR);
    cr_assert_eq(r.skipped, 3);
    cr_assert_eq(warnings, 3);
    cr_assert_eq(r.files, 6);
    ccr_codec_result_fini(&r);
    char *enc_link = dp_path(enc, "link");
    cr_assert_not(dp_exists(enc_link));
    free(enc_link);

    /* an existing destination, even empty, needs --force */
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, enc, &o, &r, &e), -EEXIST);
    ccr_codec_result_fini(&r);
    char *empty = dp_path(dir, "emptydst");
    cr_assert_eq(mkdir(empty, 0755), 0);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, empty, &o, &r, &e), -EEXIST);
    ccr_codec_result_fini(&r);
    o.force = true;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, empty, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 6);
    ccr_codec_result_fini(&r);
    /* inside the source */
    char *nested = dp_path(src, "a/out");
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, nested, &o, &r, &e), -EINVAL);
    ccr_codec_result_fini(&r);
    cr_assert_not(dp_exists(nested));
    free(nested);
    free(empty);
    free(link);
    free(fifo);
    free(src);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_codec, tree_reports_every_bad_file_and_keeps_the_good_ones)
{
    char *dir = dp_mkdtemp();
    char *src = dp_path(dir, "src"), *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    make_tree(src);
    struct ccr_key k = dp_key(19);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, enc, &o, &r, &e), 0);
    ccr_codec_result_fini(&r);
    char *bad1 = dp_path(enc, "a/b/c/big"), *bad2 = dp_path(enc, "top.txt");
    dp_flip(bad1, ccr_ccr1_region_offset(700, 12) + 5, 0x40);
    cr_assert_eq(truncate(bad2, 5), 0);

    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e), -EBADMSG);
    cr_assert_eq(r.errors, 2);
    cr_assert_eq(r.files, 4);
    bool seen1 = false, seen2 = false;
    for (uint64_t i = 0; i < r.errors; i++) {
        seen1 |= strcmp(r.failed[i].path, bad1) == 0 && r.failed[i].region == 700;
        seen2 |= strcmp(r.failed[i].path, bad2) == 0;
    }
    cr_assert(seen1 && seen2);
    ccr_codec_result_fini(&r);
    char *out1 = dp_path(dec, "a/b/c/big"), *out2 = dp_path(dec, "top.txt"), *good = dp_path(dec, "a/b/mid");
    char *orig = dp_path(src, "a/b/mid"), *cdir = dp_path(dec, "a/b/c");
    cr_assert_not(dp_exists(out1));
    cr_assert_not(dp_exists(out2));
    cr_assert(dp_same_file(orig, good));
    cr_assert_eq(dp_count_entries(cdir, "ccr-tmp"), 0);
    cr_assert_eq(dp_count_entries(dec, "ccr-tmp"), 0);
    free(out1);
    free(out2);
    free(good);
    free(orig);
    free(cdir);
    free(bad1);
    free(bad2);
    free(src);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

Test(dataplane_codec, many_small_files_share_the_workers)
{
    char *dir = dp_mkdtemp();
    char *src = dp_path(dir, "src"), *enc = dp_path(dir, "enc"), *dec = dp_path(dir, "dec");
    cr_assert_eq(mkdir(src, 0755), 0);
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%03d", i);
        char *p = dp_path(src, name);
        dp_write_file(p, (uint64_t)(i * 37) % 5000, (unsigned)i);
        free(p);
    }
    struct ccr_key k = dp_key(20);
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 4096, 2);
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, src, enc, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 300);
    ccr_codec_result_fini(&r);
    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.files, 300);
    ccr_codec_result_fini(&r);
    for (int i = 0; i < 300; i += 7) {
        char name[32];
        snprintf(name, sizeof(name), "f%03d", i);
        char *a = dp_path(src, name), *b = dp_path(dec, name);
        cr_assert(dp_same_file(a, b), "%s", name);
        free(a);
        free(b);
    }
    cr_assert_eq(dp_count_entries(dec, NULL), 300);

    /* break 75 of them: every one is reported, the other 225 are written */
    for (int i = 0; i < 300; i++) {
        if (i % 4 != 1)
            continue;
        char name[32];
        snprintf(name, sizeof(name), "f%03d", i);
        char *p = dp_path(enc, name);
        dp_flip(p, (uint64_t)dp_file_size(p) - 1, 0x01);
        free(p);
    }
    char *dec2 = dp_path(dir, "dec2");
    cr_assert_eq(ccr_codec_run(CCR_CODEC_DECRYPT, &k, enc, dec2, &o, &r, &e), -EBADMSG);
    cr_assert_eq(r.errors, 75);
    cr_assert_eq(r.files, 225);
    for (uint64_t i = 0; i < r.errors; i++) {
        cr_assert_eq(r.failed[i].err.code, -EBADMSG);
        cr_assert(strstr(r.failed[i].err.msg, "authentication failed") != NULL, "%s", r.failed[i].err.msg);
    }
    ccr_codec_result_fini(&r);
    cr_assert_eq(dp_count_entries(dec2, NULL), 225);
    free(dec2);
    free(src);
    free(enc);
    free(dec);
    dp_rmtree(dir);
}

struct prog {
    int calls;
    uint64_t last_done, total, files_total;
};

static void on_progress(void *arg, const struct ccr_progress *p)
{
    struct prog *pr = arg;
    pr->calls++;
    cr_assert_geq(p->bytes_done, pr->last_done);
    pr->last_done = p->bytes_done;
    pr->total = p->bytes_total;
    pr->files_total = p->files_total;
}

Test(dataplane_codec, progress_ends_at_the_total)
{
    char *dir = dp_mkdtemp();
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    struct ccr_key k = dp_key(21);
    dp_write_file(plain, 3u << 20, 1);
    struct prog pr = {0};
    struct ccr_codec_opts o = opts_for(CCR_MODE_CCR1, 0, 2);
    o.progress = on_progress;
    o.progress_arg = &pr;
    struct ccr_codec_result r;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, &k, plain, enc, &o, &r, NULL), 0);
    ccr_codec_result_fini(&r);
    cr_assert_geq(pr.calls, 1);
    cr_assert_eq(pr.total, 3u << 20);
    cr_assert_eq(pr.last_done, 3u << 20);
    cr_assert_eq(pr.files_total, 1);
    free(plain);
    free(enc);
    dp_rmtree(dir);
}
