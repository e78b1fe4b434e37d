/*
 * unmount.c - ccr_unmount and the mount table helpers: finding a mount point in /proc/self/mountinfo and
 * taking it down with umount2 (root) or fusermount3 (anyone who mounted it).
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ccr/mount.h"
#include "mount_int.h"

extern char **environ;

/* mountinfo escapes space, tab, newline and backslash as \ooo: undo it in place */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
            r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

int mountinfo_find(const char *abs_path, char *fstype, size_t fstype_len, unsigned *out_major,
                   unsigned *out_minor)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent major:minor root mountpoint options [optional fields...] - fstype source superopts */
        char *save = NULL;
        char *fields[5];
        int nf = 0;
        char *tok = strtok_r(line, " ", &save);
        while (tok && nf < 5) {
            fields[nf++] = tok;
            if (nf < 5)
                tok = strtok_r(NULL, " ", &save);
        }
        if (nf < 5)
            continue;
        unescape(fields[4]);
        if (strcmp(fields[4], abs_path) != 0)
            continue;
        unsigned maj = 0, min = 0;
        if (sscanf(fields[2], "%u:%u", &maj, &min) != 2)
            continue;
        char *type = NULL;
        while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
            if (strcmp(tok, "-") == 0) {
                type = strtok_r(NULL, " ", &save);
                break;
            }
        }
        found = 1;
        if (fstype && fstype_len)
            snprintf(fstype, fstype_len, "%s", type ? type : "");
        if (out_major)
            *out_major = maj;
        if (out_minor)
            *out_minor = min;
    }
    free(line);
    fclose(f);
    return found;
}

char *path_absolute(const char *path)
{
    char *buf;
    if (path[0] == '/') {
        buf = ccr_malloc(strlen(path) + 1);
        if (!buf)
            return NULL;
        strcpy(buf, path);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return NULL;
        size_t n = strlen(cwd) + strlen(path) + 2;
        buf = ccr_malloc(n);
        if (buf)
            snprintf(buf, n, "%s/%s", cwd, path);
        free(cwd);
        if (!buf)
            return NULL;
    }
    /* squeeze "//" and drop a trailing '/' (but keep "/") */
    char *w = buf;
    for (char *r = buf; *r; r++)
        if (!(r[0] == '/' && w > buf && w[-1] == '/'))
            *w++ = *r;
    *w = '\0';
    while (w - buf > 1 && w[-1] == '/')
        *--w = '\0';
    /* "./" components: drop them (what a shell hands us most often) */
    char *p;
    while ((p = strstr(buf, "/./")) != NULL)
        memmove(p, p + 2, strlen(p + 2) + 1);
    size_t len = strlen(buf);
    if (len > 2 && strcmp(buf + len - 2, "/.") == 0)
        buf[len - 2] = '\0';
    return buf;
}

void json_quote(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3) {
        if (cap)
            dst[0] = '\0';
        return;
    }
    dst[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", *p);
        } else {
            dst[o++] = (char)*p;
        }
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

bool ccr_is_fuse_mount(const char *path)
{
    char *abs = path_absolute(path);
    if (!abs)
        return false;
    char type[64];
    int rc = mountinfo_find(abs, type, sizeof(type), NULL, NULL);
    ccr_free(abs);
    return rc == 1 && strncmp(type, "fuse", 4) == 0;
}

/* Runs fusermount3 -u [-z] -q PATH; returns its exit status or -errno. */
static int run_fusermount(const char *abs, bool lazy)
{
    char *argv[6];
    int n = 0;
    argv[n++] = "fusermount3";
    argv[n++] = "-u";
    if (lazy)
        argv[n++] = "-z";
    argv[n++] = "--";
    argv[n++] = (char *)abs;
    argv[n] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
    if (rc != 0)
        return -rc;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ccr_unmount(const char *mountpoint, bool lazy, double timeout, struct ccr_err *err)
{
    char *abs = path_absolute(mountpoint);
    if (!abs)
        return ccr_err_set(err, -ENOMEM, mountpoint, -1, "out of memory");
    char type[64] = "";
    int rc = mountinfo_find(abs, type, sizeof(type), NULL, NULL);
    if (rc < 0) {
        rc = ccr_err_set(err, rc, "/proc/self/mountinfo", -1, "cannot read the mount table: %s",
                         strerror(-rc));
        goto out;
    }
    if (rc == 0 || strncmp(type, "fuse", 4) != 0) {
        rc =
            ccr_err_set(err, -EINVAL, abs, -1, rc == 0 ? "not a mount point" : "not a FUSE mount (%s)", type);
        goto out;
    }
    if (geteuid() == 0) {
        if (umount2(abs, lazy ? MNT_DETACH : 0) != 0) {
            int e = errno;
            if (e == EBUSY)
                rc = ccr_err_set(err, -EBUSY, abs, -1,
                                 "busy: a file or directory under it is open or in use (close it, or "
                                 "unmount lazily with --lazy)");
            else
                rc = ccr_err_set(err, -e, abs, -1, "cannot unmount: %s", strerror(e));
            goto out;
        }
    } else {
        int st = run_fusermount(abs, lazy);
        if (st < 0) {
            rc = ccr_err_set(err, st, abs, -1, "cannot run fusermount3: %s", strerror(-st));
            goto out;
        }
        if (st != 0) {
            /* fusermount3 printed why; busy is by far the most common reason */
            rc = ccr_err_set(
                err, -EBUSY, abs, -1,
                "fusermount3 -u failed (exit %d): busy (a file under it is open: close it, or use "
                "--lazy) or not permitted",
                st);
            goto out;
        }
    }
    double deadline = now_s() + (timeout > 0 ? timeout : 30.0);
    for (;;) {
        rc = mountinfo_find(abs, type, sizeof(type), NULL, NULL);
        if (rc <= 0) {
            rc = rc < 0 ? ccr_err_set(err, rc, "/proc/self/mountinfo", -1, "cannot read the mount table") : 0;
            break;
        }
        if (strncmp(type, "fuse", 4) != 0) { /* uncovered something mounted below: ours is gone */
            rc = 0;
            break;
        }
        if (now_s() > deadline) {
            rc = ccr_err_set(err, -ETIMEDOUT, abs, -1, "still mounted after %.0f s",
                             timeout > 0 ? timeout : 30.0);
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
out:
    ccr_free(abs);
    return rc;
}
