/*
 * test_key.c - data encryption keys: generation, the ccr1 key id (known answers computed independently
 * with Python's hashlib), key files (round trip, mode 0600, -EEXIST / overwrite, wrong sizes, missing,
 * directory, loose permissions) and that no temporary file is left behind by any of those.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/crypto.h"

/* ---- helpers ------------------------------------------------------------------------------------------ */

static char key_dir[64];

static void key_dir_make(void)
{
    snprintf(key_dir, sizeof(key_dir), "/tmp/ccr-test-key-XXXXXX");
    cr_assert_not_null(mkdtemp(key_dir));
}

static void key_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", key_dir, name);
}

/* Number of entries in the test directory, and whether every one of them is in `expect` (NULL-ended). */
static int key_dir_scan(const char *const *expect)
{
    DIR *d = opendir(key_dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool known = false;
        for (const char *const *x = expect; *x; x++)
            if (strcmp(*x, e->d_name) == 0)
                known = true;
        cr_assert(known, "unexpected file left in the directory: %s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void key_dir_remove(void)
{
    DIR *d = opendir(key_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        key_path(p, sizeof(p), e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    rmdir(key_dir);
}

static void write_bytes(const char *path, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert_geq(fd, 0);
    uint8_t buf[64];
    memset(buf, 0x5a, sizeof(buf));
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void key_fill(struct ccr_key *k, uint8_t start)
{
    for (int i = 0; i < CCR_KEY_LEN; i++)
        k->b[i] = (uint8_t)(start + i);
}

/* ---- generation and key id ---------------------------------------------------------------------------- */

Test(crypto_key, generate_distinct)
{
    enum { N = 16 };
    static const uint8_t zero[CCR_KEY_LEN];
    struct ccr_key k[N];
    for (int i = 0; i < N; i++) {
        memset(&k[i], 0, sizeof(k[i]));
        cr_assert_eq(ccr_key_generate(&k[i]), 0);
        cr_assert_neq(memcmp(k[i].b, zero, CCR_KEY_LEN), 0);
        for (int j = 0; j < i; j++)
            cr_assert_neq(memcmp(k[i].b, k[j].b, CCR_KEY_LEN), 0, "keys %d and %d equal", i, j);
    }
    ccr_key_wipe(&k[0]);
    cr_assert_eq(memcmp(k[0].b, zero, CCR_KEY_LEN), 0, "ccr_key_wipe left bytes");
    ccr_key_wipe(NULL);
    cr_assert_eq(ccr_key_generate(NULL), -EINVAL);
}

Test(crypto_key, random_bytes)
{
    uint8_t a[64] = {0}, b[64] = {0};
    cr_assert_eq(ccr_random_bytes(a, sizeof(a)), 0);
    cr_assert_eq(ccr_random_bytes(b, sizeof(b)), 0);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_eq(ccr_random_bytes(NULL, 0), 0);
    cr_assert_eq(ccr_random_bytes(NULL, 1), -EINVAL);
}

/* Expected values: hashlib.sha256(b"ccr1-key-id" + key).hexdigest()[:32] with /usr/bin/python3. */
Test(crypto_key, key_id_known_answers)
{
    static const uint8_t want_zero[16] = {0x67, 0x13, 0x1f, 0x33, 0x80, 0xa5, 0xb6, 0x9b,
                                          0x3a, 0x62, 0x3d, 0xdd, 0xcf, 0x66, 0xe1, 0xa1};
    static const uint8_t want_seq[16] = {0x76, 0x40, 0xaa, 0x25, 0x9a, 0x40, 0xc4, 0xae,
                                         0x3d, 0x73, 0xf9, 0xee, 0x5d, 0x05, 0xc0, 0xee};
    struct ccr_key k;
    uint8_t id[CCR_KEY_ID_LEN];

    memset(&k, 0, sizeof(k));
    cr_assert_eq(ccr_key_id(&k, id), 0);
    cr_assert_eq(memcmp(id, want_zero, 16), 0, "all-zero key");

    key_fill(&k, 0);
    cr_assert_eq(ccr_key_id(&k, id), 0);
    cr_assert_eq(memcmp(id, want_seq, 16), 0, "0x00..0x1f key");

    cr_assert_eq(ccr_key_id(NULL, id), -EINVAL);
    cr_assert_eq(ccr_key_id(&k, NULL), -EINVAL);
}

/* ---- key files ---------------------------------------------------------------------------------------- */

Test(crypto_key, file_round_trip_mode_0600, .init = key_dir_make, .fini = key_dir_remove)
{
    char p[256];
    key_path(p, sizeof(p), "k.bin");
    struct ccr_key k, back;
    cr_assert_eq(ccr_key_generate(&k), 0);
    struct ccr_err err;
    ccr_err_clear(&err);
    /* A permissive umask must not widen the mode, a strict one must not narrow it. */
    mode_t old = umask(0);
    cr_assert_eq(ccr_key_file_store(p, &k, false, &err), 0, "%s", err.msg);
    umask(old);

    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_assert_eq(st.st_size, 32);

    unsigned flags = 0xdead;
    memset(&back, 0, sizeof(back));
    cr_assert_eq(ccr_key_file_load(p, &back, &flags, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(k.b, back.b, 32), 0);
    cr_assert_eq(flags, 0);
    cr_assert_eq(ccr_key_file_load(p, &back, NULL, NULL), 0); /* flags and err are optional */

    /* The bytes on disk are the raw key. */
    FILE *f = fopen(p, "rb");
    uint8_t raw[33];
    cr_assert_eq(fread(raw, 1, sizeof(raw), f), 32);
    fclose(f);
    cr_assert_eq(memcmp(raw, k.b, 32), 0);

    /* A strict umask too. */
    key_path(p, sizeof(p), "k2.bin");
    old = umask(0777);
    cr_assert_eq(ccr_key_file_store(p, &k, false, &err), 0, "%s", err.msg);
    umask(old);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);

    static const char *const expect[] = {"k.bin", "k2.bin", NULL};
    cr_assert_eq(key_dir_scan(expect), 2);
}

Test(crypto_key, file_exists_and_overwrite, .init = key_dir_make, .fini = key_dir_remove)
{
    char p[256];
    key_path(p, sizeof(p), "k.bin");
    struct ccr_key k1, k2, back;
    key_fill(&k1, 1);
    key_fill(&k2, 100);
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_file_store(p, &k1, false, &err), 0);

    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_file_store(p, &k2, false, &err), -EEXIST);
    cr_assert_eq(err.code, -EEXIST);
    cr_assert_str_eq(err.where, p);
    cr_assert_neq(err.msg[0], '\0');
    cr_assert_eq(ccr_key_file_load(p, &back, NULL, NULL), 0);
    cr_assert_eq(memcmp(back.b, k1.b, 32), 0, "refused store changed the file");
    static const char *const expect[] = {"k.bin", NULL};
    cr_assert_eq(key_dir_scan(expect), 1);

    cr_assert_eq(ccr_key_file_store(p, &k2, true, &err), 0, "%s", err.msg);
    cr_assert_eq(ccr_key_file_load(p, &back, NULL, NULL), 0);
    cr_assert_eq(memcmp(back.b, k2.b, 32), 0, "overwrite did not replace the key");
    cr_assert_eq(key_dir_scan(expect), 1);

    /* Overwrite of a 0644 file leaves 0600 (a new inode, not the old one rewritten). */
    cr_assert_eq(chmod(p, 0644), 0);
    cr_assert_eq(ccr_key_file_store(p, &k1, true, &err), 0);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(key_dir_scan(expect), 1);

    /* A dangling symlink is an existing name too. */
    char link_path[256];
    key_path(link_path, sizeof(link_path), "dangling");
    cr_assert_eq(symlink("/nonexistent/ccr-test", link_path), 0);
    cr_assert_eq(ccr_key_file_store(link_path, &k1, false, &err), -EEXIST);
    static const char *const expect2[] = {"k.bin", "dangling", NULL};
    cr_assert_eq(key_dir_scan(expect2), 2);
}

Test(crypto_key, file_wrong_sizes, .init = key_dir_make, .fini = key_dir_remove)
{
    static const size_t sizes[] = {0, 1, 31, 33, 64};
    char p[256];
    key_path(p, sizeof(p), "bad.bin");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        write_bytes(p, sizes[i], 0600);
        struct ccr_key k;
        memset(&k, 0x77, sizeof(k));
        unsigned flags = 0xdead;
        struct ccr_err err;
        ccr_err_clear(&err);
        cr_assert_eq(ccr_key_file_load(p, &k, &flags, &err), -EINVAL, "size %zu", sizes[i]);
        cr_assert_eq(err.code, -EINVAL);
        cr_assert_str_eq(err.where, p);
        char want[128];
        snprintf(want, sizeof(want), "key file must be exactly 32 bytes, this one has %zu", sizes[i]);
        cr_assert_str_eq(err.msg, want);
        cr_assert_eq(flags, 0xdead, "out_flags written on failure");
        cr_assert_eq(k.b[0], 0x77, "out written on failure");
        cr_assert_eq(k.b[31], 0x77, "out written on failure");
    }
    static const char *const expect[] = {"bad.bin", NULL};
    cr_assert_eq(key_dir_scan(expect), 1);
}

Test(crypto_key, file_missing_and_directory, .init = key_dir_make, .fini = key_dir_remove)
{
    char p[256];
    struct ccr_key k;
    struct ccr_err err;

    key_path(p, sizeof(p), "missing.bin");
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_file_load(p, &k, NULL, &err), -ENOENT);
    cr_assert_eq(err.code, -ENOENT);
    cr_assert_str_eq(err.where, p);
    cr_assert_neq(err.msg[0], '\0');

    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_file_load(key_dir, &k, NULL, &err), -EISDIR);
    cr_assert_str_eq(err.where, key_dir);

    /* Not a regular file and not a directory: a FIFO is refused without hanging. */
    key_path(p, sizeof(p), "fifo");
    cr_assert_eq(mkfifo(p, 0600), 0);
    cr_assert_eq(ccr_key_file_load(p, &k, NULL, &err), -EINVAL);

    /* Storing into a missing directory fails cleanly. */
    key_path(p, sizeof(p), "nodir/k.bin");
    ccr_err_clear(&err);
    key_fill(&k, 9);
    cr_assert_eq(ccr_key_file_store(p, &k, false, &err), -ENOENT);
    cr_assert_str_eq(err.where, p);
    cr_assert_neq(err.msg[0], '\0');

    /* Storing over a directory fails, with or without overwrite, and leaves no temporary file. */
    key_path(p, sizeof(p), "subdir");
    cr_assert_eq(mkdir(p, 0700), 0);
    cr_assert_eq(ccr_key_file_store(p, &k, false, &err), -EEXIST);
    ccr_err_clear(&err);
    cr_assert_lt(ccr_key_file_store(p, &k, true, &err), 0);
    cr_assert_lt(err.code, 0);
    static const char *const expect[] = {"fifo", "subdir", NULL};
    cr_assert_eq(key_dir_scan(expect), 2);

    /* Paths that name no file. */
    cr_assert_eq(ccr_key_file_store("", &k, false, NULL), -EINVAL);
    char slash[256];
    snprintf(slash, sizeof(slash), "%s/", key_dir);
    cr_assert_eq(ccr_key_file_store(slash, &k, false, NULL), -EINVAL);
    cr_assert_eq(ccr_key_file_store(NULL, &k, false, NULL), -EINVAL);
    cr_assert_eq(ccr_key_file_store(p, NULL, false, NULL), -EINVAL);
    cr_assert_eq(ccr_key_file_load(NULL, &k, NULL, NULL), -EINVAL);
    cr_assert_eq(key_dir_scan(expect), 2);
}

Test(crypto_key, file_loose_permissions, .init = key_dir_make, .fini = key_dir_remove)
{
    char p[256];
    key_path(p, sizeof(p), "k.bin");
    struct ccr_key k;
    unsigned flags;
    static const struct {
        mode_t mode;
        unsigned flags;
    } cases[] = {
        {0600, 0},
        {0400, 0},
        {0644, CCR_KEYFILE_LOOSE_PERMS},
        {0640, CCR_KEYFILE_LOOSE_PERMS},
        {0604, CCR_KEYFILE_LOOSE_PERMS},
        {0620, CCR_KEYFILE_LOOSE_PERMS},
        {0666, CCR_KEYFILE_LOOSE_PERMS},
    };
    write_bytes(p, 32, 0600);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(chmod(p, cases[i].mode), 0);
        flags = 0xdead;
        cr_assert_eq(ccr_key_file_load(p, &k, &flags, NULL), 0, "mode %o", cases[i].mode);
        cr_assert_eq(flags, cases[i].flags, "mode %o: flags %x", cases[i].mode, flags);
    }
}

Test(crypto_key, file_relative_path, .init = key_dir_make, .fini = key_dir_remove)
{
    /* A bare file name: the temporary file goes to the current directory. */
    cr_assert_eq(chdir(key_dir), 0);
    struct ccr_key k, back;
    key_fill(&k, 50);
    struct ccr_err err;
    ccr_err_clear(&err);
    cr_assert_eq(ccr_key_file_store("rel.bin", &k, false, &err), 0, "%s", err.msg);
    cr_assert_eq(ccr_key_file_store("rel.bin", &k, false, &err), -EEXIST);
    cr_assert_eq(ccr_key_file_load("rel.bin", &back, NULL, &err), 0);
    cr_assert_eq(memcmp(k.b, back.b, 32), 0);
    cr_assert_eq(chdir("/"), 0);
    static const char *const expect[] = {"rel.bin", NULL};
    cr_assert_eq(key_dir_scan(expect), 1);
}
