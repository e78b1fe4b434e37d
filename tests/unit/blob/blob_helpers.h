/*
 * blob_helpers.h - helpers shared by the blob unit tests: a scratch container directory (on /dev/shm when
 * there is one, for speed), recursive removal, an opened store. Static inline: each test file has its own.
 */
#ifndef BLOB_HELPERS_H
#define BLOB_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccr/blob.h"

/* A fresh directory; the caller removes it with bt_rmtree. */
static inline char *bt_mkdtemp(void)
{
    struct stat st;
    const char *base = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
                           ? "/dev/shm"
                           : "/tmp";
    char *t = NULL;
    cr_assert(asprintf(&t, "%s/ccr-blob-test-XXXXXX", base) > 0);
    cr_assert_not_null(mkdtemp(t), "mkdtemp: %s", strerror(errno));
    return t;
}

static inline int bt_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void bt_rmtree(char *dir)
{
    if (dir)
        nftw(dir, bt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* dir + "/" + name, malloc'd. */
static inline char *bt_path(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* Opens the store at dir/"c" and creates the container. */
static inline struct ccr_store *bt_store(const char *dir)
{
    char *root = bt_path(dir, "c");
    struct ccr_store *s = NULL;
    struct ccr_err e;
    ccr_err_clear(&e);
    cr_assert_eq(ccr_store_open(root, &s, &e), 0, "open: %s", e.msg);
    bool created = false;
    cr_assert_eq(ccr_store_create_container(s, &created, &e), 0, "create: %s", e.msg);
    cr_assert(created);
    free(root);
    return s;
}

/* Number of entries in a directory (excluding . and ..), -1 if it cannot be opened. */
static inline int bt_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

#endif
