/*
 * walk.c - the source-tree walk shared by the file codec (encrypt/decrypt of a tree) and publish.
 *
 * Entries are visited in byte-wise name order, directories before their contents. Regular files are
 * reported; symbolic links are reported as files only when following links and they lead to a regular
 * file; temporaries left by an interrupted run (`.NAME.ccr-tmp-XXXXXX`), other links and special files
 * are skipped with a warning. Unreadable directories and entries are reported to the caller, and the walk
 * goes on.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

bool pl_is_leftover_temp(const char *name, size_t *out_len)
{
    size_t n = strlen(name);
    static const char mark[] = ".ccr-tmp-";
    size_t m = sizeof(mark) - 1;
    if (name[0] == '.' && n > 1 + m + 6 && memcmp(name + n - 6 - m, mark, m) == 0) {
        if (out_len)
            *out_len = n - 1 - m - 6;
        return true;
    }
    return false;
}

/* a + sep + b, or a copy of b when a is empty; NULL on OOM. */
static char *join(const char *a, const char *sep, const char *b)
{
    if (!a[0])
        return strdup(b);
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = ccr_malloc(la + ls + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void skip(const struct pl_walk *w, const char *full, const char *why)
{
    if (w->skipped)
        w->skipped(w->arg);
    ccr_log(CCR_LOG_WARN, "%s: skipped: %s", full, why);
}

/* Reads the names of directory full, sorted. */
static int read_names(const struct pl_walk *w, const char *full, char ***out, size_t *out_n)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    DIR *d = opendir(full);
    if (!d)
        return w->failure(w->arg, full, -errno, "cannot read directory");
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **p = ccr_realloc(names, ncap * sizeof(*names));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            names = p;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = w->failure(w->arg, full, -errno, "cannot read directory");
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    *out_n = n;
    return rc;
}

static int walk_dir(const struct pl_walk *w, const char *rel)
{
    char *full = rel[0] ? join(w->root, "/", rel) : strdup(w->root);
    if (!full)
        return -ENOMEM;
    char **names = NULL;
    size_t n = 0;
    int rc = read_names(w, full, &names, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (w->cancel && atomic_load(w->cancel)) {
            rc = -ECANCELED;
            break;
        }
        char *crel = join(rel, "/", names[i]);
        char *cfull = crel ? join(w->root, "/", crel) : NULL;
        struct stat st, tst;
        if (!cfull)
            rc = -ENOMEM;
        else if (lstat(cfull, &st) != 0)
            rc = w->failure(w->arg, cfull, -errno, "cannot stat");
        else if (S_ISDIR(st.st_mode)) {
            rc = w->entry(w->arg, PL_WALK_DIR, crel, cfull, &st, true);
            if (rc == 0)
                rc = walk_dir(w, crel);
        } else if (S_ISREG(st.st_mode) && pl_is_leftover_temp(names[i], NULL))
            skip(w, cfull, "a temporary file left by an interrupted run (delete it)");
        else if (S_ISREG(st.st_mode))
            rc = w->entry(w->arg, PL_WALK_FILE, crel, cfull, &st, true);
        else if (S_ISLNK(st.st_mode) && w->follow_links) {
            if (stat(cfull, &tst) == 0 && S_ISREG(tst.st_mode))
                rc = w->entry(w->arg, PL_WALK_FILE, crel, cfull, &tst, false);
            else
                skip(w, cfull,
                     errno == ENOENT ? "a symbolic link to nothing (dangling)"
                                     : "a symbolic link to something other than a regular file");
        } else {
            char why[256];
            snprintf(why, sizeof(why), "%s (%s)", S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file",
                     w->skip_note);
            skip(w, cfull, why);
        }
        ccr_free(cfull);
        ccr_free(crel);
    }
    for (size_t i = 0; i < n; i++)
        ccr_free(names[i]);
    ccr_free(names);
    ccr_free(full);
    return rc;
}

int pl_walk_run(const struct pl_walk *w)
{
    return walk_dir(w, "");
}
