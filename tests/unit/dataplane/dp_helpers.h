/*
 * dp_helpers.h - helpers shared by the dataplane unit tests: temporary directories, files with known
 * content, comparisons. Everything is static inline so each test file gets its own copy.
 */
#ifndef DP_HELPERS_H
#define DP_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/codec.h"
#include "ccr/crypto.h"
#include "ccr/dataplane.h"

/* A fresh directory under /tmp; the caller removes it with dp_rmtree. */
static inline char *dp_mkdtemp(void)
{
    char *t = strdup("/tmp/ccr-dp-test-XXXXXX");
    cr_assert_not_null(t);
    cr_assert_not_null(mkdtemp(t), "mkdtemp: %s", strerror(errno));
    return t;
}

static inline int dp_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void dp_rmtree(char *dir)
{
    if (dir)
        nftw(dir, dp_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* dir + "/" + name in a static-free buffer the caller frees. */
static inline char *dp_path(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* Deterministic content: byte i of a file seeded s. */
static inline uint8_t dp_byte(uint64_t i, unsigned seed)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull + seed * 0xD1B54A32D192ED03ull;
    x ^= x >> 29;
    return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

static inline void dp_write_file(const char *path, uint64_t size, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    uint8_t buf[65536];
    uint64_t i = 0;
    while (i < size) {
        size_t n = size - i < sizeof(buf) ? (size_t)(size - i) : sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = dp_byte(i + k, seed);
        cr_assert_eq(fwrite(buf, 1, n, f), n);
        i += n;
    }
    cr_assert_eq(fclose(f), 0);
}

static inline int64_t dp_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_size;
}

static inline bool dp_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* True if both files exist and have the same bytes. */
static inline bool dp_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        uint8_t x[65536], y[65536];
        size_t na = fread(x, 1, sizeof(x), fa), nb = fread(y, 1, sizeof(y), fb);
        if (na != nb || memcmp(x, y, na) != 0)
            same = false;
        if (na == 0 || !same)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Number of directory entries (other than . and ..) in dir whose name contains needle (NULL: all). */
static inline int dp_count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!needle || strstr(de->d_name, needle))
            n++;
    }
    closedir(d);
    return n;
}

/* XORs one byte of a file at off with mask. */
static inline void dp_flip(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static inline struct ccr_key dp_key(uint8_t fill)
{
    struct ccr_key k;
    for (int i = 0; i < CCR_KEY_LEN; i++)
        k.b[i] = (uint8_t)(fill + i * 7);
    return k;
}

#endif
