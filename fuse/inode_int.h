/*
 * inode_int.h - the mount's inode table: FUSE node ids <-> volume paths (private to fuse/).
 *
 * The kernel names files by node id. Every reply that hands the kernel a node id (lookup, create, mkdir,
 * mknod, each readdirplus entry other than "." and "..") adds one to that node's lookup count; FORGET
 * takes counts away, and a node whose count reaches zero (and that no open handle still uses) is freed.
 * The root (FUSE_ROOT_ID, path "") is never freed.
 *
 * Node ids are never reused within a mount (a 64-bit counter), so the generation number of every node
 * is the same constant: the pair (id, generation) is unique for the life of the mount as FUSE requires.
 *
 * A node is reachable two ways: by id (always, until freed) and by path (while "linked"). Unlinking a
 * file or renaming another file over it unlinks its node from the path index but keeps it by id, because
 * the kernel may still send requests for it (an open file) until it forgets it. A path maps to at most
 * one linked node; looking up a path whose type changed (a file became a directory in the store)
 * replaces the node with a fresh one.
 *
 * Locking: the table does no locking itself. Callers hold `mu` (initialised by itable_init) around every
 * call and around any access to a node's fields; nodes stay valid only while the lock is held, or while
 * the caller holds one of the node's `opens`.
 */
#ifndef CCR_FUSE_INODE_INT_H
#define CCR_FUSE_INODE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ITABLE_ROOT_INO   1 /* FUSE_ROOT_ID */
#define ITABLE_GENERATION 1 /* see above: ids are never reused */

struct fhandle; /* an open file (mount.c) */

struct inode {
    uint64_t ino;
    uint64_t nlookup; /* references the kernel holds (the root: never freed whatever this says) */
    char *path;       /* owned; relative to the volume root, "" for the root */
    bool is_dir;
    bool linked;    /* in the path index */
    unsigned opens; /* open handles (files) and directory snapshots using this node */
    /* Open handles that write this file (mount.c's list, linked through the handles). */
    struct fhandle *writers;
    /* What the file looked like when it was last opened (keep the page cache while it is unchanged). */
    bool seen;
    int64_t seen_mtime_ns;
    uint64_t seen_size;

    struct inode *by_ino_next; /* hash chains */
    struct inode *by_path_next;
};

struct itable {
    pthread_mutex_t mu;
    struct inode **by_ino; /* buckets (power of two) */
    size_t ino_buckets;
    struct inode **by_path;
    size_t path_buckets;
    size_t count;      /* nodes alive (by id) */
    size_t linked;     /* nodes in the path index */
    uint64_t next_ino; /* the next id to hand out */
};

/* Initialises t with its root node. 0 or -ENOMEM. */
int itable_init(struct itable *t);

/* Frees every node. Accepts a zeroed table. */
void itable_fini(struct itable *t);

/* The node with id ino, or NULL. */
struct inode *itable_get(struct itable *t, uint64_t ino);

/* The linked node at path, or NULL. */
struct inode *itable_find(struct itable *t, const char *path);

/*
 * The linked node at path (is_dir its type), created if missing or of the other type (the stale one is
 * unlinked), with its lookup count raised by one. *out valid while the lock is held. 0 or -ENOMEM.
 */
int itable_lookup(struct itable *t, const char *path, bool is_dir, struct inode **out);

/* Lowers the lookup count of ino by n (FORGET); frees the node when nothing uses it any more. */
void itable_forget(struct itable *t, uint64_t ino, uint64_t n);

/* Drops one of n->opens; frees the node when nothing uses it any more. */
void itable_unref_open(struct itable *t, struct inode *n);

/* Removes the linked node at path from the path index (unlink, rmdir); no-op if there is none. */
void itable_unlink(struct itable *t, const char *path);

/*
 * Moves the linked node at from to path to (a node already at `to` is unlinked first: it was replaced).
 * No node at from: only the unlinking of `to` happens. 0 or -ENOMEM (then nothing changed).
 */
int itable_rename(struct itable *t, const char *from, const char *to);

/*
 * Joins a directory path and an entry name ("" + "a" = "a", "a" + "b" = "a/b") into *out (caller frees
 * with ccr_free). 0 or -ENOMEM, -ENAMETOOLONG beyond 4 KiB.
 */
int itable_join(const char *dir, const char *name, char **out);

#endif
