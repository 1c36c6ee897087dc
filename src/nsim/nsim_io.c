/* nsim_io.c: a simulated file system behind the io.h table, one per node.
 *
 * Every file keeps two images: what a read sees now (the page cache) and
 * what survives a crash (the disk). pwrite(), fallocate() and ftruncate()
 * change the first and queue an operation; fdatasync()/fsync() replay the
 * queue onto the second. Names work the same way: creating, renaming or
 * removing a name changes the current directory, dir_sync() makes a
 * directory's names durable. A crash keeps the durable names, and for each
 * file its durable image plus a prefix of its queued operations, the last
 * of which may be cut short at any byte (a torn write); a process kill keeps
 * everything written (the kernel outlives the process). An injected fsync
 * error returns -EIO and forgets the queued operations (as Linux may drop
 * dirty pages after a failed writeback): the node must stop. A full disk
 * refuses to grow a file (-ENOSPC): writes into preallocated space (WAL
 * segments) still succeed, as on ext4. */
#include "nsim/nsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NSIM_OP_WRITE = 1, NSIM_OP_RESIZE = 2 };

struct nsim_op {
    uint8_t kind;
    uint64_t off, len; /* RESIZE: len is the new size */
    uint8_t *bytes;
};

struct nsim_bytes {
    uint8_t *data;
    uint64_t len, cap;
};

struct nsim_inode {
    bool used;
    struct nsim_bytes now, disk;
    struct nsim_op *ops;
    uint32_t n_ops, cap_ops;
};

struct nsim_name {
    char *path;
    uint32_t inode;
};

struct nsim_names {
    struct nsim_name *v;
    uint32_t n, cap;
};

struct nsim_fs {
    struct nsim_inode *inodes;
    uint32_t n_inodes;
    struct nsim_names names, durable;
    char **dirs;
    uint32_t n_dirs;
    int32_t *handles; /* handle -> inode, -1 if closed */
    uint32_t n_handles;
    struct nsim_fs_faults faults;
    struct nsim_fs_stats stats;
};

static void *nsim_io__grow(void *p, uint32_t *cap, uint32_t want, size_t elem) {
    if (want <= *cap) return p;
    uint32_t c = *cap ? *cap * 2 : 8;
    while (c < want) c *= 2;
    p = realloc(p, (size_t)c * elem);
    if (p == NULL) abort();
    *cap = c;
    return p;
}

static void nsim_io__resize(struct nsim_bytes *b, uint64_t len) {
    if (len > b->cap) {
        uint64_t c = b->cap ? b->cap : 4096;
        while (c < len) c *= 2;
        uint8_t *p = realloc(b->data, c);
        if (p == NULL) abort();
        b->data = p;
        b->cap = c;
    }
    if (len > b->len) memset(b->data + b->len, 0, len - b->len);
    b->len = len;
}

static void nsim_io__write(struct nsim_bytes *b, uint64_t off, const uint8_t *src, uint64_t len) {
    if (off + len > b->len) nsim_io__resize(b, off + len);
    if (len > 0) memcpy(b->data + off, src, len);
}

static void nsim_io__apply(struct nsim_bytes *b, const struct nsim_op *op, uint64_t keep) {
    if (op->kind == NSIM_OP_WRITE) nsim_io__write(b, op->off, op->bytes, keep);
    else nsim_io__resize(b, op->len);
}

static void nsim_io__drop_ops(struct nsim_inode *ino) {
    for (uint32_t i = 0; i < ino->n_ops; i++) free(ino->ops[i].bytes);
    ino->n_ops = 0;
}

static void nsim_io__queue(struct nsim_inode *ino, uint8_t kind, uint64_t off, uint64_t len,
                           const void *bytes) {
    ino->ops = nsim_io__grow(ino->ops, &ino->cap_ops, ino->n_ops + 1, sizeof(*ino->ops));
    struct nsim_op *op = &ino->ops[ino->n_ops++];
    op->kind = kind;
    op->off = off;
    op->len = len;
    op->bytes = NULL;
    if (kind == NSIM_OP_WRITE && len > 0) {
        op->bytes = malloc(len);
        if (op->bytes == NULL) abort();
        memcpy(op->bytes, bytes, len);
    }
}

/* ---- names ---- */

static int nsim_io__find(const struct nsim_names *t, const char *path) {
    for (uint32_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].path, path) == 0) return (int)i;
    }
    return -1;
}

static void nsim_io__set_name(struct nsim_names *t, const char *path, uint32_t inode) {
    int i = nsim_io__find(t, path);
    if (i >= 0) {
        t->v[i].inode = inode;
        return;
    }
    t->v = nsim_io__grow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
    t->v[t->n].path = strdup(path);
    if (t->v[t->n].path == NULL) abort();
    t->v[t->n].inode = inode;
    t->n++;
}

static void nsim_io__del_name(struct nsim_names *t, uint32_t i) {
    free(t->v[i].path);
    t->v[i] = t->v[--t->n];
}

/* Whether path's parent directory is dir. */
static bool nsim_io__in_dir(const char *path, const char *dir) {
    size_t d = strlen(dir);
    return strncmp(path, dir, d) == 0 && path[d] == '/' && strchr(path + d + 1, '/') == NULL;
}

static bool nsim_io__has_dir(const struct nsim_fs *fs, const char *dir) {
    for (uint32_t i = 0; i < fs->n_dirs; i++) {
        if (strcmp(fs->dirs[i], dir) == 0) return true;
    }
    return false;
}

/* A file may only be created in a directory that exists. */
static bool nsim_io__parent_exists(const struct nsim_fs *fs, const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) return true;
    char dir[IO_PATH_BYTES_MAX];
    size_t len = (size_t)(slash - path);
    memcpy(dir, path, len);
    dir[len] = '\0';
    return nsim_io__has_dir(fs, dir);
}

static bool nsim_io__referenced(const struct nsim_fs *fs, uint32_t inode) {
    for (uint32_t i = 0; i < fs->names.n; i++) {
        if (fs->names.v[i].inode == inode) return true;
    }
    for (uint32_t i = 0; i < fs->durable.n; i++) {
        if (fs->durable.v[i].inode == inode) return true;
    }
    for (uint32_t i = 0; i < fs->n_handles; i++) {
        if (fs->handles[i] == (int32_t)inode) return true;
    }
    return false;
}

static void nsim_io__free_inode(struct nsim_inode *ino) {
    nsim_io__drop_ops(ino);
    free(ino->ops);
    free(ino->now.data);
    free(ino->disk.data);
    memset(ino, 0, sizeof(*ino));
}

static void nsim_io__collect(struct nsim_fs *fs) {
    for (uint32_t i = 0; i < fs->n_inodes; i++) {
        if (fs->inodes[i].used && !nsim_io__referenced(fs, i)) nsim_io__free_inode(&fs->inodes[i]);
    }
}

static uint32_t nsim_io__new_inode(struct nsim_fs *fs) {
    for (uint32_t i = 0; i < fs->n_inodes; i++) {
        if (!fs->inodes[i].used) {
            fs->inodes[i].used = true;
            return i;
        }
    }
    uint32_t cap = fs->n_inodes;
    fs->inodes = nsim_io__grow(fs->inodes, &cap, fs->n_inodes + 1, sizeof(*fs->inodes));
    memset(&fs->inodes[fs->n_inodes], 0, sizeof(*fs->inodes));
    fs->inodes[fs->n_inodes].used = true;
    return fs->n_inodes++;
}

/* ---- the io table ---- */

static struct nsim_fs *nsim_io__fs(struct io *io) { return io->data; }

static struct nsim_inode *nsim_io__handle(struct nsim_fs *fs, int h) {
    if (h < 0 || (uint32_t)h >= fs->n_handles || fs->handles[h] < 0) return NULL;
    return &fs->inodes[fs->handles[h]];
}

static int nsim_io__open(struct io *io, const char *path, unsigned flags, int *handle) {
    struct nsim_fs *fs = nsim_io__fs(io);
    if (strlen(path) >= IO_PATH_BYTES_MAX) return -ENAMETOOLONG;
    int i = nsim_io__find(&fs->names, path);
    uint32_t inode;
    if (i >= 0) {
        if ((flags & IO_OPEN_CREATE) && (flags & IO_OPEN_EXCL)) return -EEXIST;
        inode = fs->names.v[i].inode;
    } else {
        if (!(flags & IO_OPEN_CREATE)) return -ENOENT;
        if (!nsim_io__parent_exists(fs, path)) return -ENOENT;
        inode = nsim_io__new_inode(fs);
        nsim_io__set_name(&fs->names, path, inode);
    }
    uint32_t h = 0;
    while (h < fs->n_handles && fs->handles[h] >= 0) h++;
    if (h == fs->n_handles) {
        uint32_t cap = fs->n_handles;
        fs->handles = nsim_io__grow(fs->handles, &cap, h + 1, sizeof(*fs->handles));
        fs->n_handles++;
    }
    fs->handles[h] = (int32_t)inode;
    *handle = (int)h;
    return 0;
}

static int nsim_io__close(struct io *io, int handle) {
    struct nsim_fs *fs = nsim_io__fs(io);
    if (nsim_io__handle(fs, handle) == NULL) return -EBADF;
    fs->handles[handle] = -1;
    nsim_io__collect(fs);
    return 0;
}

static int nsim_io__pread(struct io *io, int handle, void *buf, size_t len, uint64_t offset,
                          size_t *n_read) {
    struct nsim_inode *ino = nsim_io__handle(nsim_io__fs(io), handle);
    if (ino == NULL) return -EBADF;
    *n_read = 0;
    if (offset >= ino->now.len) return 0;
    uint64_t n = ino->now.len - offset;
    if (n > len) n = len;
    memcpy(buf, ino->now.data + offset, n);
    *n_read = n;
    return 0;
}

static int nsim_io__pwrite(struct io *io, int handle, const void *buf, size_t len,
                           uint64_t offset) {
    struct nsim_fs *fs = nsim_io__fs(io);
    struct nsim_inode *ino = nsim_io__handle(fs, handle);
    if (ino == NULL) return -EBADF;
    if (fs->faults.full && offset + len > ino->now.len) {
        fs->stats.enospc++;
        return -ENOSPC;
    }
    nsim_io__write(&ino->now, offset, buf, len);
    nsim_io__queue(ino, NSIM_OP_WRITE, offset, len, buf);
    fs->stats.writes++;
    fs->stats.bytes_written += len;
    return 0;
}

static int nsim_io__sync(struct io *io, int handle) {
    struct nsim_fs *fs = nsim_io__fs(io);
    struct nsim_inode *ino = nsim_io__handle(fs, handle);
    if (ino == NULL) return -EBADF;
    if (fs->faults.lying) return 0; /* the crash comes before the sync is issued */
    if (fs->faults.fail_syncs > 0) {
        fs->faults.fail_syncs--;
        fs->stats.sync_errors++;
        nsim_io__drop_ops(ino); /* the dirty pages are gone */
        return -EIO;
    }
    for (uint32_t i = 0; i < ino->n_ops; i++) {
        nsim_io__apply(&ino->disk, &ino->ops[i], ino->ops[i].len);
    }
    nsim_io__drop_ops(ino);
    fs->stats.syncs++;
    return 0;
}

static int nsim_io__fallocate(struct io *io, int handle, uint64_t offset, uint64_t len) {
    struct nsim_fs *fs = nsim_io__fs(io);
    struct nsim_inode *ino = nsim_io__handle(fs, handle);
    if (ino == NULL) return -EBADF;
    if (offset + len <= ino->now.len) return 0;
    if (fs->faults.full) {
        fs->stats.enospc++;
        return -ENOSPC;
    }
    nsim_io__resize(&ino->now, offset + len);
    nsim_io__queue(ino, NSIM_OP_RESIZE, 0, offset + len, NULL);
    return 0;
}

static int nsim_io__ftruncate(struct io *io, int handle, uint64_t len) {
    struct nsim_fs *fs = nsim_io__fs(io);
    struct nsim_inode *ino = nsim_io__handle(fs, handle);
    if (ino == NULL) return -EBADF;
    if (fs->faults.full && len > ino->now.len) {
        fs->stats.enospc++;
        return -ENOSPC;
    }
    nsim_io__resize(&ino->now, len);
    nsim_io__queue(ino, NSIM_OP_RESIZE, 0, len, NULL);
    return 0;
}

static int nsim_io__size(struct io *io, int handle, uint64_t *size) {
    struct nsim_inode *ino = nsim_io__handle(nsim_io__fs(io), handle);
    if (ino == NULL) return -EBADF;
    *size = ino->now.len;
    return 0;
}

static int nsim_io__rename(struct io *io, const char *from, const char *to) {
    struct nsim_fs *fs = nsim_io__fs(io);
    int i = nsim_io__find(&fs->names, from);
    if (i < 0) return -ENOENT;
    if (!nsim_io__parent_exists(fs, to)) return -ENOENT;
    uint32_t inode = fs->names.v[i].inode;
    nsim_io__del_name(&fs->names, (uint32_t)i);
    nsim_io__set_name(&fs->names, to, inode);
    nsim_io__collect(fs);
    return 0;
}

static int nsim_io__unlink(struct io *io, const char *path) {
    struct nsim_fs *fs = nsim_io__fs(io);
    int i = nsim_io__find(&fs->names, path);
    if (i < 0) return -ENOENT;
    nsim_io__del_name(&fs->names, (uint32_t)i);
    nsim_io__collect(fs);
    return 0;
}

/* Directories are made durable at once (a node creates its own two at
 * startup; what matters is the files in them). */
static int nsim_io__mkdir(struct io *io, const char *path) {
    struct nsim_fs *fs = nsim_io__fs(io);
    if (nsim_io__has_dir(fs, path)) return -EEXIST;
    fs->dirs = realloc(fs->dirs, (fs->n_dirs + 1) * sizeof(*fs->dirs));
    if (fs->dirs == NULL) abort();
    fs->dirs[fs->n_dirs] = strdup(path);
    if (fs->dirs[fs->n_dirs] == NULL) abort();
    fs->n_dirs++;
    return 0;
}

static int nsim_io__dir_sync(struct io *io, const char *dir) {
    struct nsim_fs *fs = nsim_io__fs(io);
    if (!nsim_io__has_dir(fs, dir)) return -ENOENT;
    if (fs->faults.lying) return 0;
    for (uint32_t i = 0; i < fs->durable.n;) {
        if (nsim_io__in_dir(fs->durable.v[i].path, dir)) nsim_io__del_name(&fs->durable, i);
        else i++;
    }
    for (uint32_t i = 0; i < fs->names.n; i++) {
        if (nsim_io__in_dir(fs->names.v[i].path, dir)) {
            nsim_io__set_name(&fs->durable, fs->names.v[i].path, fs->names.v[i].inode);
        }
    }
    nsim_io__collect(fs);
    return 0;
}

static int nsim_io__list(struct io *io, const char *dir, io_list_cb cb, void *arg) {
    struct nsim_fs *fs = nsim_io__fs(io);
    if (!nsim_io__has_dir(fs, dir)) return -ENOENT;
    /* the callback may not change the directory, but copy the names anyway */
    uint32_t n = 0;
    char **names = malloc((fs->names.n + 1) * sizeof(*names));
    if (names == NULL) abort();
    size_t d = strlen(dir);
    for (uint32_t i = 0; i < fs->names.n; i++) {
        if (nsim_io__in_dir(fs->names.v[i].path, dir)) names[n++] = fs->names.v[i].path + d + 1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) rc = cb(arg, names[i]);
    free(names);
    return rc;
}

/* ---- the simulator's side ---- */

struct nsim_fs *nsim_fs_create(void) {
    struct nsim_fs *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) abort();
    return fs;
}

void nsim_fs_destroy(struct nsim_fs *fs) {
    if (fs == NULL) return;
    for (uint32_t i = 0; i < fs->n_inodes; i++) nsim_io__free_inode(&fs->inodes[i]);
    free(fs->inodes);
    for (uint32_t i = 0; i < fs->names.n; i++) free(fs->names.v[i].path);
    for (uint32_t i = 0; i < fs->durable.n; i++) free(fs->durable.v[i].path);
    free(fs->names.v);
    free(fs->durable.v);
    for (uint32_t i = 0; i < fs->n_dirs; i++) free(fs->dirs[i]);
    free(fs->dirs);
    free(fs->handles);
    free(fs);
}

void nsim_fs_io(struct nsim_fs *fs, struct io *io) {
    memset(io, 0, sizeof(*io));
    io->version = IO_VERSION;
    io->data = fs;
    io->open = nsim_io__open;
    io->close = nsim_io__close;
    io->pread = nsim_io__pread;
    io->pwrite = nsim_io__pwrite;
    io->fdatasync = nsim_io__sync;
    io->fsync = nsim_io__sync;
    io->fallocate = nsim_io__fallocate;
    io->ftruncate = nsim_io__ftruncate;
    io->size = nsim_io__size;
    io->rename = nsim_io__rename;
    io->unlink = nsim_io__unlink;
    io->mkdir = nsim_io__mkdir;
    io->dir_sync = nsim_io__dir_sync;
    io->list = nsim_io__list;
}

struct nsim_fs_faults *nsim_fs_faults(struct nsim_fs *fs) { return &fs->faults; }

const struct nsim_fs_stats *nsim_fs_stats(const struct nsim_fs *fs) { return &fs->stats; }

/* The machine loses power: every handle closes, the durable names come
 * back, and each file keeps its durable image plus a prefix of what was
 * queued, the last operation of the prefix possibly torn at a random byte. */
void nsim_fs_crash(struct nsim_fs *fs, bool power_loss, struct rand *rng) {
    for (uint32_t i = 0; i < fs->n_handles; i++) fs->handles[i] = -1;
    fs->faults.lying = false;
    fs->faults.fail_syncs = 0;
    fs->faults.full = false; /* the operator made room before the restart */
    fs->stats.crashes++;
    if (!power_loss) { /* the page cache outlives the process */
        for (uint32_t i = 0; i < fs->n_inodes; i++) {
            struct nsim_inode *ino = &fs->inodes[i];
            if (!ino->used) continue;
            for (uint32_t k = 0; k < ino->n_ops; k++) {
                nsim_io__apply(&ino->disk, &ino->ops[k], ino->ops[k].len);
            }
            nsim_io__drop_ops(ino);
        }
        for (uint32_t i = 0; i < fs->durable.n; i++) free(fs->durable.v[i].path);
        fs->durable.n = 0;
        for (uint32_t i = 0; i < fs->names.n; i++) {
            nsim_io__set_name(&fs->durable, fs->names.v[i].path, fs->names.v[i].inode);
        }
        nsim_io__collect(fs);
        return;
    }
    for (uint32_t i = 0; i < fs->names.n; i++) free(fs->names.v[i].path);
    fs->names.n = 0;
    for (uint32_t i = 0; i < fs->durable.n; i++) {
        nsim_io__set_name(&fs->names, fs->durable.v[i].path, fs->durable.v[i].inode);
    }
    for (uint32_t i = 0; i < fs->n_inodes; i++) {
        struct nsim_inode *ino = &fs->inodes[i];
        if (!ino->used) continue;
        if (ino->n_ops > 0) {
            uint32_t keep = (uint32_t)rand_below(rng, ino->n_ops + 1);
            for (uint32_t k = 0; k < keep; k++) nsim_io__apply(&ino->disk, &ino->ops[k], ino->ops[k].len);
            if (keep < ino->n_ops && ino->ops[keep].kind == NSIM_OP_WRITE && rand_below(rng, 2)) {
                uint64_t cut = rand_below(rng, ino->ops[keep].len);
                nsim_io__apply(&ino->disk, &ino->ops[keep], cut);
                if (cut > 0) fs->stats.torn_writes++;
            }
            if (keep < ino->n_ops) fs->stats.lost_ops += ino->n_ops - keep;
        }
        nsim_io__drop_ops(ino);
        nsim_io__resize(&ino->now, 0);
        nsim_io__write(&ino->now, 0, ino->disk.data, ino->disk.len);
    }
    nsim_io__collect(fs);
}
