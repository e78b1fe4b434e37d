/*
 * mount_int.h - helpers shared by fuse/'s files (private).
 */
#ifndef CCR_FUSE_MOUNT_INT_H
#define CCR_FUSE_MOUNT_INT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Looks up absolute path abs_path in /proc/self/mountinfo (the last mount on it wins, as the kernel
 * resolves it). Returns 1 found (fstype, may be NULL, gets the type such as "fuse.ccr"; *out_major and
 * *out_minor, may be NULL, the device), 0 not a mount point, or a negative errno reading mountinfo.
 */
int mountinfo_find(const char *abs_path, char *fstype, size_t fstype_len, unsigned *out_major,
                   unsigned *out_minor);

/* abs_path made absolute against the current directory, '/'-runs and trailing '/' removed ("." and ".."
 * components kept as they are). Caller frees with ccr_free. NULL on ENOMEM / getcwd failure. */
char *path_absolute(const char *path);

/* Writes s as a JSON string (quotes included) into dst (cap bytes, NUL-terminated, cut if too long). */
void json_quote(char *dst, size_t cap, const char *s);

#endif
