/*
 * test_inode.c - the mount's inode table (fuse/inode.c): lookup counts and forget, ids never reused,
 * unlink and rename keeping nodes reachable by id, a type change replacing a node, growth past the
 * initial bucket count, and path joining.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ccr/common.h"
#include "inode_int.h"

Test(fuse_inode, root_exists_and_is_never_freed)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *r = itable_get(&t, ITABLE_ROOT_INO);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->path, "");
    cr_assert(r->is_dir);
    cr_assert_eq(itable_find(&t, ""), r);
    itable_forget(&t, ITABLE_ROOT_INO, 1000);
    cr_assert_eq(itable_get(&t, ITABLE_ROOT_INO), r);
    itable_unlink(&t, "");
    cr_assert_eq(itable_find(&t, ""), r);
    itable_fini(&t);
}

Test(fuse_inode, lookup_counts_and_forget)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *a = NULL, *b = NULL;
    cr_assert_eq(itable_lookup(&t, "d/a.bin", false, &a), 0);
    uint64_t ino = a->ino;
    cr_assert_neq(ino, ITABLE_ROOT_INO);
    cr_assert_eq(itable_lookup(&t, "d/a.bin", false, &b), 0);
    cr_assert_eq(a, b, "the same path is the same node");
    cr_assert_eq(b->nlookup, 2);
    itable_forget(&t, ino, 1);
    cr_assert_not_null(itable_get(&t, ino));
    itable_forget(&t, ino, 1);
    cr_assert_null(itable_get(&t, ino), "freed when the kernel forgot every reference");
    cr_assert_null(itable_find(&t, "d/a.bin"));
    cr_assert_eq(itable_lookup(&t, "d/a.bin", false, &a), 0);
    cr_assert_gt(a->ino, ino, "ids are never reused");
    itable_forget(&t, 999999, 1); /* unknown id: ignored */
    cr_assert_eq(t.count, 2);
    itable_fini(&t);
}

Test(fuse_inode, open_handles_keep_a_forgotten_node)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *a = NULL;
    cr_assert_eq(itable_lookup(&t, "f", false, &a), 0);
    uint64_t ino = a->ino;
    a->opens++;
    itable_forget(&t, ino, 1);
    cr_assert_eq(itable_get(&t, ino), a);
    itable_unref_open(&t, a);
    cr_assert_null(itable_get(&t, ino));
    itable_fini(&t);
}

Test(fuse_inode, unlink_keeps_the_id_reachable)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *a = NULL, *b = NULL;
    cr_assert_eq(itable_lookup(&t, "x", false, &a), 0);
    uint64_t old = a->ino;
    itable_unlink(&t, "x");
    cr_assert_null(itable_find(&t, "x"));
    cr_assert_eq(itable_get(&t, old), a, "the kernel may still use the id of an unlinked file");
    cr_assert_not(a->linked);
    cr_assert_eq(itable_lookup(&t, "x", false, &b), 0);
    cr_assert_neq(b->ino, old, "a new file at the same path is a new node");
    itable_forget(&t, old, 1);
    cr_assert_null(itable_get(&t, old));
    cr_assert_eq(itable_find(&t, "x"), b);
    itable_fini(&t);
}

Test(fuse_inode, rename_moves_and_replaces)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *a = NULL, *b = NULL;
    cr_assert_eq(itable_lookup(&t, "a", false, &a), 0);
    cr_assert_eq(itable_lookup(&t, "dir/b", false, &b), 0);
    uint64_t ia = a->ino, ib = b->ino;
    cr_assert_eq(itable_rename(&t, "a", "dir/b"), 0);
    cr_assert_null(itable_find(&t, "a"));
    cr_assert_eq(itable_find(&t, "dir/b"), a);
    cr_assert_str_eq(a->path, "dir/b");
    cr_assert_eq(a->ino, ia, "a rename keeps the id");
    cr_assert_eq(itable_get(&t, ib), b, "the replaced node lives until forgotten");
    cr_assert_not(b->linked);
    /* renaming a name the table never saw only unlinks the target */
    cr_assert_eq(itable_rename(&t, "never-seen", "dir/b"), 0);
    cr_assert_null(itable_find(&t, "dir/b"));
    cr_assert_eq(itable_get(&t, ia), a);
    itable_fini(&t);
}

Test(fuse_inode, type_change_gives_a_new_node)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    struct inode *a = NULL, *b = NULL;
    cr_assert_eq(itable_lookup(&t, "p", false, &a), 0);
    uint64_t ia = a->ino;
    cr_assert_eq(itable_lookup(&t, "p", true, &b), 0);
    cr_assert_neq(b->ino, ia);
    cr_assert(b->is_dir);
    cr_assert_eq(b->nlookup, 1);
    cr_assert_eq(itable_find(&t, "p"), b);
    cr_assert_not_null(itable_get(&t, ia), "still referenced by the kernel");
    itable_fini(&t);
}

Test(fuse_inode, many_nodes_grow_the_indexes)
{
    struct itable t;
    cr_assert_eq(itable_init(&t), 0);
    enum { N = 20000 };
    static uint64_t ids[N];
    char p[64];
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof(p), "d%02d/f%05d", i % 37, i);
        struct inode *n = NULL;
        cr_assert_eq(itable_lookup(&t, p, false, &n), 0);
        ids[i] = n->ino;
    }
    cr_assert_eq(t.count, N + 1);
    cr_assert_gt(t.ino_buckets, 1024);
    cr_assert_gt(t.path_buckets, 1024);
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof(p), "d%02d/f%05d", i % 37, i);
        struct inode *n = itable_find(&t, p);
        cr_assert_not_null(n, "%s", p);
        cr_assert_eq(n->ino, ids[i]);
        cr_assert_eq(itable_get(&t, ids[i]), n);
    }
    for (int i = 0; i < N; i += 2)
        itable_forget(&t, ids[i], 1);
    cr_assert_eq(t.count, N / 2 + 1);
    cr_assert_eq(t.linked, N / 2 + 1);
    cr_assert_null(itable_get(&t, ids[0]));
    cr_assert_not_null(itable_get(&t, ids[1]));
    itable_fini(&t);
}

Test(fuse_inode, join)
{
    char *p = NULL;
    cr_assert_eq(itable_join("", "a", &p), 0);
    cr_assert_str_eq(p, "a");
    ccr_free(p);
    cr_assert_eq(itable_join("a/b", "c d", &p), 0);
    cr_assert_str_eq(p, "a/b/c d");
    ccr_free(p);
    char longname[5000];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_assert_eq(itable_join("a", longname, &p), -ENAMETOOLONG);
}
