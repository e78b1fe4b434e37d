/*
 * ccr_codec_inspect: mode detection, sizes from headers and trailers, key id checks, verification of
 * every region (and the failing one reported), malformed files.
 */
#include "dp_helpers.h"

/* Writes dir/plain (size bytes) and encrypts it to dir/enc. Returns the enc path (caller frees). */
static char *encrypt_to(const char *dir, enum ccr_mode mode, uint64_t region, uint64_t size,
                        const struct ccr_key *k)
{
    char *plain = dp_path(dir, "plain"), *enc = dp_path(dir, "enc");
    dp_write_file(plain, size, 3);
    struct ccr_codec_opts o;
    ccr_codec_opts_init(&o);
    o.mode = mode;
    o.region_size = region;
    o.force = true;
    struct ccr_codec_result r;
    struct ccr_err e;
    cr_assert_eq(ccr_codec_run(CCR_CODEC_ENCRYPT, k, plain, enc, &o, &r, &e), 0, "%s", e.msg);
    ccr_codec_result_fini(&r);
    free(plain);
    return enc;
}

static struct ccr_inspect_opts iopts(enum ccr_mode mode, uint64_t region)
{
    struct ccr_inspect_opts o;
    ccr_inspect_opts_init(&o);
    o.mode = mode;
    o.region_size = region;
    o.threads = 2;
    return o;
}

Test(dataplane_inspect, ccr1_without_key_reads_the_header)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(1);
    char *enc = encrypt_to(dir, CCR_MODE_CCR1, 8192, 20000, &k);
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.mode, CCR_MODE_CCR1);
    cr_assert_eq(in.blob_size, ccr_ccr1_blob_size(20000, 13));
    cr_assert(in.plain_known);
    cr_assert_eq(in.plaintext_size, 20000);
    cr_assert_eq(in.regions, 3);
    cr_assert_eq(in.region_size, 8192);
    cr_assert(in.has_key_id);
    uint8_t id[CCR_KEY_ID_LEN];
    cr_assert_eq(ccr_key_id(&k, id), 0);
    cr_assert_eq(memcmp(id, in.key_id, sizeof(id)), 0);
    cr_assert_eq(in.key_matches, -1);
    cr_assert_eq(in.authenticated, -1);
    cr_assert_eq(in.failed_region, -1);
    cr_assert_eq(in.err.code, 0);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, ccr1_with_key_authenticates_and_finds_the_bad_region)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(2);
    char *enc = encrypt_to(dir, CCR_MODE_CCR1, 4096, 10 * 4096 + 1, &k);
    struct ccr_inspect_opts o = iopts(CCR_MODE_CCR1, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, &k, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.key_matches, 1);
    cr_assert_eq(in.authenticated, 1);
    cr_assert_eq(in.regions, 11);

    dp_flip(enc, ccr_ccr1_region_offset(7, 12) + 4096 + 3, 0x02); /* region 7's tag */
    cr_assert_eq(ccr_codec_inspect(enc, &k, &o, &in), -EBADMSG);
    cr_assert_eq(in.key_matches, 1);
    cr_assert_eq(in.authenticated, 0);
    cr_assert_eq(in.failed_region, 7);
    cr_assert_eq(in.err.offset, (int64_t)ccr_ccr1_region_offset(7, 12));
    cr_assert(strstr(in.err.msg, "region 7 ") != NULL, "%s", in.err.msg);
    cr_assert(strstr(in.err.msg, "nothing written") == NULL, "%s", in.err.msg);
    /* inspect wrote nothing */
    cr_assert_eq(dp_count_entries(dir, NULL), 2);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, ccr1_wrong_key_is_reported_not_verified)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(3), other = dp_key(4);
    char *enc = encrypt_to(dir, CCR_MODE_CCR1, 0, 100, &k);
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, &other, &o, &in), -ENOKEY);
    cr_assert_eq(in.key_matches, 0);
    cr_assert_eq(in.authenticated, -1);
    cr_assert(in.plain_known);
    cr_assert(strstr(in.err.msg, "wrong key") != NULL, "%s", in.err.msg);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, ccr1_region_size_must_match)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(5);
    char *enc = encrypt_to(dir, CCR_MODE_CCR1, 0, 100, &k);
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 4096);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), -EBADMSG);
    cr_assert(strstr(in.err.msg, "1048576") != NULL && strstr(in.err.msg, "4096") != NULL, "%s", in.err.msg);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, ccr1_malformed_header_and_size)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(6);
    char *enc = encrypt_to(dir, CCR_MODE_CCR1, 4096, 5000, &k);
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    dp_flip(enc, 4, 0x02); /* version 1 -> 3 */
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), -EBADMSG);
    cr_assert_eq(in.mode, CCR_MODE_CCR1);
    cr_assert(strstr(in.err.msg, "version") != NULL, "%s", in.err.msg);
    dp_flip(enc, 4, 0x02);
    /* one whole region plus 8 bytes: too short for a second region's tag */
    cr_assert_eq(truncate(enc, 64 + 4112 + 8), 0);
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), -EBADMSG);
    cr_assert_not(in.plain_known);
    cr_assert(in.has_key_id);
    cr_assert_eq(in.authenticated, -1);
    cr_assert_eq(ccr_codec_inspect(enc, &k, &o, &in), -EBADMSG);
    cr_assert_eq(in.authenticated, 0); /* with a key, malformed means "does not authenticate" */
    cr_assert_eq(in.failed_region, -1);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, cse_detected_by_size_and_verified)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(7), other = dp_key(8);
    char *enc = encrypt_to(dir, CCR_MODE_CSE, 0, 1, &k); /* default 16 MiB chunk */
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.mode, CCR_MODE_CSE);
    cr_assert_eq(in.blob_size, 16777252);
    cr_assert_eq(in.plaintext_size, 1);
    cr_assert_eq(in.regions, 1);
    cr_assert_eq(in.region_size, 16u << 20);
    cr_assert_not(in.has_key_id);
    cr_assert_eq(ccr_codec_inspect(enc, &k, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.authenticated, 1);
    cr_assert_eq(in.key_matches, -1);
    cr_assert_eq(ccr_codec_inspect(enc, &other, &o, &in), -EBADMSG);
    cr_assert_eq(in.authenticated, 0);
    cr_assert_eq(in.failed_region, 0);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, cse_other_chunk_size_needs_region_size)
{
    char *dir = dp_mkdtemp();
    struct ccr_key k = dp_key(9);
    char *enc = encrypt_to(dir, CCR_MODE_CSE, 1u << 20, (19u << 19), &k); /* 9.5 MiB, B = 1 MiB */
    cr_assert_eq(dp_file_size(enc), 10486048);                            /* the spec's worked example */
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(enc, NULL, &o, &in), -EBADMSG);
    cr_assert(strstr(in.err.msg, "not a ccr1 file") != NULL, "%s", in.err.msg);
    cr_assert(strstr(in.err.msg, "--region-size") != NULL, "%s", in.err.msg);
    o.region_size = 1u << 20;
    cr_assert_eq(ccr_codec_inspect(enc, &k, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.regions, 10);
    cr_assert_eq(in.plaintext_size, 19u << 19);
    cr_assert_eq(in.authenticated, 1);
    free(enc);
    dp_rmtree(dir);
}

Test(dataplane_inspect, empty_and_missing_files)
{
    char *dir = dp_mkdtemp();
    char *empty = dp_path(dir, "empty"), *missing = dp_path(dir, "missing");
    dp_write_file(empty, 0, 0);
    struct ccr_inspect_opts o = iopts(CCR_MODE_AUTO, 0);
    struct ccr_inspect in;
    cr_assert_eq(ccr_codec_inspect(empty, NULL, &o, &in), 0, "%s", in.err.msg);
    cr_assert_eq(in.mode, CCR_MODE_CSE);
    cr_assert_eq(in.plaintext_size, 0);
    cr_assert_eq(in.regions, 0);
    o.mode = CCR_MODE_CCR1;
    cr_assert_eq(ccr_codec_inspect(empty, NULL, &o, &in), -EBADMSG);
    cr_assert_eq(ccr_codec_inspect(missing, NULL, &o, &in), -ENOENT);
    cr_assert_str_eq(in.err.where, missing);
    cr_assert_eq(ccr_codec_inspect(dir, NULL, &o, &in), -EISDIR);
    free(empty);
    free(missing);
    dp_rmtree(dir);
}

Test(dataplane_fileio, write_atomic_refuses_existing_and_reads_back)
{
    char *dir = dp_mkdtemp();
    char *p = dp_path(dir, "f.txt");
    struct ccr_err e;
    cr_assert_eq(ccr_file_write_atomic(p, "hello\n", 6, 0640, false, &e), 0, "%s", e.msg);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert_eq(ccr_file_write_atomic(p, "x", 1, 0600, false, &e), -EEXIST);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ccr_file_read_all(p, 100, &buf, &len, &e), 0);
    cr_assert_eq(len, 6);
    cr_assert_str_eq(buf, "hello\n");
    ccr_free(buf);
    cr_assert_eq(ccr_file_read_all(p, 5, &buf, &len, &e), -EFBIG);
    cr_assert_eq(ccr_file_write_atomic(p, "x", 1, 0600, true, &e), 0);
    cr_assert_eq(dp_file_size(p), 1);
    cr_assert_eq(dp_count_entries(dir, NULL), 1);
    free(p);
    dp_rmtree(dir);
}
