/*
 * inode.c - the mount's inode table (see inode_int.h): two chained hash indexes over one set of nodes,
 * by node id and by path. Both grow by doubling when they hold more nodes than buckets; they never
 * shrink (a mount that once saw a million files keeps the bucket arrays, 16 bytes a node).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ccr/common.h"
#include "inode_int.h"

#define INITIAL_BUCKETS 1024
#define PATH_MAX_JOIN   4096

static size_t hash_ino(uint64_t ino)
{
    return (size_t)(ino * 0x9E3779B97F4A7C15ull >> 7);
}

/* FNV-1a, 64-bit */
static size_t hash_path(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return (size_t)h;
}

static void node_free(struct inode *n)
{
    if (n) {
        ccr_free(n->path);
        ccr_free(n);
    }
}

/* Doubles an index; on allocation failure the old one stays (longer chains, still correct). */
static void grow_ino(struct itable *t)
{
    size_t nb = t->ino_buckets * 2;
    struct inode **b = ccr_calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < t->ino_buckets; i++) {
        struct inode *n = t->by_ino[i];
        while (n) {
            struct inode *next = n->by_ino_next;
            size_t h = hash_ino(n->ino) & (nb - 1);
            n->by_ino_next = b[h];
            b[h] = n;
            n = next;
        }
    }
    ccr_free(t->by_ino);
    t->by_ino = b;
    t->ino_buckets = nb;
}

static void grow_path(struct itable *t)
{
    size_t nb = t->path_buckets * 2;
    struct inode **b = ccr_calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < t->path_buckets; i++) {
        struct inode *n = t->by_path[i];
        while (n) {
            struct inode *next = n->by_path_next;
            size_t h = hash_path(n->path) & (nb - 1);
            n->by_path_next = b[h];
            b[h] = n;
            n = next;
        }
    }
    ccr_free(t->by_path);
    t->by_path = b;
    t->path_buckets = nb;
}

static void ino_insert(struct itable *t, struct inode *n)
{
    if (t->count >= t->ino_buckets)
        grow_ino(t);
    size_t h = hash_ino(n->ino) & (t->ino_buckets - 1);
    n->by_ino_next = t->by_ino[h];
    t->by_ino[h] = n;
    t->count++;
}

static void ino_remove(struct itable *t, struct inode *n)
{
    struct inode **pp = &t->by_ino[hash_ino(n->ino) & (t->ino_buckets - 1)];
    for (; *pp; pp = &(*pp)->by_ino_next) {
        if (*pp == n) {
            *pp = n->by_ino_next;
            t->count--;
            return;
        }
    }
}

static void path_insert(struct itable *t, struct inode *n)
{
    if (t->linked >= t->path_buckets)
        grow_path(t);
    size_t h = hash_path(n->path) & (t->path_buckets - 1);
    n->by_path_next = t->by_path[h];
    t->by_path[h] = n;
    n->linked = true;
    t->linked++;
}

static void path_remove(struct itable *t, struct inode *n)
{
    if (!n->linked)
        return;
    struct inode **pp = &t->by_path[hash_path(n->path) & (t->path_buckets - 1)];
    for (; *pp; pp = &(*pp)->by_path_next) {
        if (*pp == n) {
            *pp = n->by_path_next;
            n->linked = false;
            n->by_path_next = NULL;
            t->linked--;
            return;
        }
    }
}

/* Frees n if nothing refers to it any more (never the root). */
static void maybe_free(struct itable *t, struct inode *n)
{
    if (n->ino == ITABLE_ROOT_INO || n->nlookup > 0 || n->opens > 0)
        return;
    path_remove(t, n);
    ino_remove(t, n);
    node_free(n);
}

int itable_init(struct itable *t)
{
    memset(t, 0, sizeof(*t));
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        return -ENOMEM;
    t->ino_buckets = t->path_buckets = INITIAL_BUCKETS;
    t->by_ino = ccr_calloc(t->ino_buckets, sizeof(*t->by_ino));
    t->by_path = ccr_calloc(t->path_buckets, sizeof(*t->by_path));
    struct inode *root = ccr_calloc(1, sizeof(*root));
    char *rp = ccr_calloc(1, 1);
    if (!t->by_ino || !t->by_path || !root || !rp) {
        ccr_free(rp);
        ccr_free(root);
        itable_fini(t);
        return -ENOMEM;
    }
    root->ino = ITABLE_ROOT_INO;
    root->nlookup = 1;
    root->path = rp;
    root->is_dir = true;
    ino_insert(t, root);
    path_insert(t, root);
    t->next_ino = ITABLE_ROOT_INO + 1;
    return 0;
}

void itable_fini(struct itable *t)
{
    if (!t->by_ino && !t->by_path)
        return;
    if (t->by_ino) {
        for (size_t i = 0; i < t->ino_buckets; i++) {
            struct inode *n = t->by_ino[i];
            while (n) {
                struct inode *next = n->by_ino_next;
                node_free(n);
                n = next;
            }
        }
    }
    ccr_free(t->by_ino);
    ccr_free(t->by_path);
    pthread_mutex_destroy(&t->mu);
    memset(t, 0, sizeof(*t));
}

struct inode *itable_get(struct itable *t, uint64_t ino)
{
    struct inode *n = t->by_ino[hash_ino(ino) & (t->ino_buckets - 1)];
    while (n && n->ino != ino)
        n = n->by_ino_next;
    return n;
}

struct inode *itable_find(struct itable *t, const char *path)
{
    struct inode *n = t->by_path[hash_path(path) & (t->path_buckets - 1)];
    while (n && strcmp(n->path, path) != 0)
        n = n->by_path_next;
    return n;
}

int itable_lookup(struct itable *t, const char *path, bool is_dir, struct inode **out)
{
    struct inode *n = itable_find(t, path);
    if (n && n->is_dir != is_dir && n->ino != ITABLE_ROOT_INO) {
        path_remove(t, n); /* the kernel learns of the new node and drops the old one */
        maybe_free(t, n);
        n = NULL;
    }
    if (!n) {
        size_t len = strlen(path) + 1;
        n = ccr_calloc(1, sizeof(*n));
        char *p = ccr_malloc(len);
        if (!n || !p) {
            ccr_free(p);
            ccr_free(n);
            return -ENOMEM;
        }
        memcpy(p, path, len);
        n->path = p;
        n->ino = t->next_ino++;
        n->is_dir = is_dir;
        ino_insert(t, n);
        path_insert(t, n);
    }
    n->nlookup++;
    *out = n;
    return 0;
}

void itable_forget(struct itable *t, uint64_t ino, uint64_t nlookup)
{
    struct inode *n = itable_get(t, ino);
    if (!n)
        return;
    n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
    maybe_free(t, n);
}

void itable_unref_open(struct itable *t, struct inode *n)
{
    if (n->opens > 0)
        n->opens--;
    maybe_free(t, n);
}

void itable_unlink(struct itable *t, const char *path)
{
    struct inode *n = itable_find(t, path);
    if (n && n->ino != ITABLE_ROOT_INO) {
        path_remove(t, n);
        maybe_free(t, n);
    }
}

int itable_rename(struct itable *t, const char *from, const char *to)
{
    struct inode *n = itable_find(t, from);
    char *np = NULL;
    if (n) {
        np = ccr_malloc(strlen(to) + 1);
        if (!np)
            return -ENOMEM;
        strcpy(np, to);
    }
    itable_unlink(t, to);
    if (n) {
        path_remove(t, n);
        ccr_free(n->path);
        n->path = np;
        path_insert(t, n);
    }
    return 0;
}

int itable_join(const char *dir, const char *name, char **out)
{
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl + nl + 2 > PATH_MAX_JOIN)
        return -ENAMETOOLONG;
    char *p = ccr_malloc(dl + nl + 2);
    if (!p)
        return -ENOMEM;
    if (dl) {
        memcpy(p, dir, dl);
        p[dl] = '/';
        memcpy(p + dl + 1, name, nl + 1);
    } else {
        memcpy(p, name, nl + 1);
    }
    *out = p;
    return 0;
}
