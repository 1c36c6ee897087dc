/* io_fault.c: the fault-injecting io wrapper for tests; see io_fault.h for
 * the crash model. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_fault.h"
#include "util/rand.h"

struct io_fault__file {
    char *path; /* NULL: slot free */
    uint64_t synced_len;
    uint64_t synced_size;
    uint64_t written_end;
};

struct io_fault__handle {
    int handle; /* the base io's handle; -1: slot free */
    int file;   /* index into files */
};

struct io_fault__arm {
    uint32_t nth; /* 0: disarmed */
    enum io_fault_action action;
    int err;
};

struct io_fault {
    struct io io; /* what the code under test calls; io.data points back here */
    struct io *base;
    struct rand rng;
    bool down;
    int last_written; /* file index of the last pwrite, -1 if none */
    struct io_fault__arm armed[IO_FAULT_OP_COUNT];
    uint64_t calls[IO_FAULT_OP_COUNT];
    struct io_fault__file files[IO_FAULT_FILES_MAX];
    struct io_fault__handle handles[IO_FAULT_HANDLES_MAX];
};

static struct io_fault *io_fault__of(struct io *io) {
    struct io_fault *f = io->data;
    assert(f != NULL);
    assert(&f->io == io);
    return f;
}

static int io_fault__find_file(const struct io_fault *f, const char *path) {
    for (int i = 0; i < IO_FAULT_FILES_MAX; i++) {
        if (f->files[i].path != NULL && strcmp(f->files[i].path, path) == 0) return i;
    }
    return -1;
}

static void io_fault__forget_file(struct io_fault *f, int file) {
    assert(file >= 0 && file < IO_FAULT_FILES_MAX);
    free(f->files[file].path);
    memset(&f->files[file], 0, sizeof(f->files[file]));
    if (f->last_written == file) f->last_written = -1;
    for (int i = 0; i < IO_FAULT_HANDLES_MAX; i++) {
        if (f->handles[i].handle >= 0 && f->handles[i].file == file) f->handles[i].file = -1;
    }
}

/* Tracks `path`, first seen with `size_bytes` on disk (taken as durable). */
static int io_fault__track(struct io_fault *f, const char *path, uint64_t size_bytes) {
    int file = io_fault__find_file(f, path);
    if (file >= 0) return file;
    for (int i = 0; i < IO_FAULT_FILES_MAX; i++) {
        if (f->files[i].path != NULL) continue;
        f->files[i].path = strdup(path);
        if (f->files[i].path == NULL) return -ENOMEM;
        f->files[i].synced_len = size_bytes;
        f->files[i].synced_size = size_bytes;
        f->files[i].written_end = 0;
        return i;
    }
    return -EMFILE;
}

/* The tracked file behind a handle, or -1 (unknown handle or file unlinked). */
static int io_fault__file_of(const struct io_fault *f, int handle) {
    for (int i = 0; i < IO_FAULT_HANDLES_MAX; i++) {
        if (f->handles[i].handle == handle) return f->handles[i].file;
    }
    return -1;
}

/* Counts a call of kind `op` and fires the armed fault if its turn came:
 * returns 0 to go on, or the error the call must return. */
static int io_fault__check(struct io_fault *f, enum io_fault_op op) {
    assert(op < IO_FAULT_OP_COUNT);
    if (f->down) return -EIO;
    f->calls[op]++;
    struct io_fault__arm *arm = &f->armed[op];
    if (arm->nth == 0 || --arm->nth > 0) return 0;
    switch (arm->action) {
    case IO_FAULT_FAIL: return arm->err;
    case IO_FAULT_CRASH: io_fault_crash(f, 0); return -EIO;
    case IO_FAULT_CRASH_TEAR: io_fault_crash(f, IO_FAULT_KEEP_RANDOM); return -EIO;
    }
    return -EIO;
}

static int io_fault__open(struct io *io, const char *path, unsigned flags, int *handle) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    int slot = -1;
    for (int i = 0; i < IO_FAULT_HANDLES_MAX && slot < 0; i++) {
        if (f->handles[i].handle < 0) slot = i;
    }
    if (slot < 0) return -EMFILE;
    int h;
    int rc = f->base->open(f->base, path, flags, &h);
    if (rc != 0) return rc;
    uint64_t size_bytes = 0;
    rc = f->base->size(f->base, h, &size_bytes);
    int file = rc == 0 ? io_fault__track(f, path, size_bytes) : rc;
    if (file < 0) {
        f->base->close(f->base, h);
        return file;
    }
    f->handles[slot].handle = h;
    f->handles[slot].file = file;
    *handle = h;
    return 0;
}

static int io_fault__close(struct io *io, int handle) {
    struct io_fault *f = io_fault__of(io);
    for (int i = 0; i < IO_FAULT_HANDLES_MAX; i++) {
        if (f->handles[i].handle == handle) f->handles[i].handle = -1;
    }
    return f->base->close(f->base, handle);
}

static int io_fault__pread(struct io *io, int handle, void *buf, size_t len, uint64_t offset,
                           size_t *n_read) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    return f->base->pread(f->base, handle, buf, len, offset, n_read);
}

static int io_fault__pwrite(struct io *io, int handle, const void *buf, size_t len,
                            uint64_t offset) {
    struct io_fault *f = io_fault__of(io);
    int rc = io_fault__check(f, IO_FAULT_WRITE);
    if (rc != 0) return rc;
    int file = io_fault__file_of(f, handle);
    rc = f->base->pwrite(f->base, handle, buf, len, offset);
    if (file < 0) return rc;
    /* Even a failed write may have changed the file: treat it as written. */
    struct io_fault__file *t = &f->files[file];
    if (offset < t->synced_len) t->synced_len = offset;
    if (offset + len > t->written_end) t->written_end = offset + len;
    f->last_written = file;
    return rc;
}

static int io_fault__sync(struct io *io, int handle, bool data_only) {
    struct io_fault *f = io_fault__of(io);
    int rc = io_fault__check(f, IO_FAULT_SYNC);
    if (rc != 0) return rc;
    rc = data_only ? f->base->fdatasync(f->base, handle) : f->base->fsync(f->base, handle);
    int file = io_fault__file_of(f, handle);
    if (rc != 0 || file < 0) return rc;
    uint64_t size_bytes;
    rc = f->base->size(f->base, handle, &size_bytes);
    if (rc != 0) return rc;
    f->files[file].synced_len = size_bytes;
    f->files[file].synced_size = size_bytes;
    f->files[file].written_end = 0;
    return 0;
}

static int io_fault__fdatasync(struct io *io, int handle) {
    return io_fault__sync(io, handle, true);
}

static int io_fault__fsync(struct io *io, int handle) { return io_fault__sync(io, handle, false); }

static int io_fault__fallocate(struct io *io, int handle, uint64_t offset, uint64_t len) {
    struct io_fault *f = io_fault__of(io);
    int rc = io_fault__check(f, IO_FAULT_ALLOCATE);
    if (rc != 0) return rc;
    return f->base->fallocate(f->base, handle, offset, len); /* size durable at next sync */
}

static int io_fault__ftruncate(struct io *io, int handle, uint64_t len) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    int file = io_fault__file_of(f, handle);
    if (file >= 0 && len < f->files[file].synced_len) f->files[file].synced_len = len;
    return f->base->ftruncate(f->base, handle, len);
}

static int io_fault__size(struct io *io, int handle, uint64_t *size_bytes) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    return f->base->size(f->base, handle, size_bytes);
}

static int io_fault__rename(struct io *io, const char *from, const char *to) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    int rc = f->base->rename(f->base, from, to);
    if (rc != 0) return rc;
    int target = io_fault__find_file(f, to);
    if (target >= 0) io_fault__forget_file(f, target);
    int file = io_fault__find_file(f, from);
    if (file < 0) return 0;
    char *renamed = strdup(to);
    if (renamed == NULL) return -ENOMEM;
    free(f->files[file].path);
    f->files[file].path = renamed;
    return 0;
}

static int io_fault__unlink(struct io *io, const char *path) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    int rc = f->base->unlink(f->base, path);
    int file = io_fault__find_file(f, path);
    if (rc == 0 && file >= 0) io_fault__forget_file(f, file);
    return rc;
}

static int io_fault__mkdir(struct io *io, const char *path) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    return f->base->mkdir(f->base, path);
}

static int io_fault__dir_sync(struct io *io, const char *dir) {
    struct io_fault *f = io_fault__of(io);
    int rc = io_fault__check(f, IO_FAULT_SYNC);
    if (rc != 0) return rc;
    return f->base->dir_sync(f->base, dir);
}

static int io_fault__list(struct io *io, const char *dir, io_list_cb cb, void *arg) {
    struct io_fault *f = io_fault__of(io);
    if (f->down) return -EIO;
    return f->base->list(f->base, dir, cb, arg);
}

int io_fault_create(struct io *base, uint64_t seed, struct io_fault **out) {
    assert(base != NULL);
    assert(base->version >= 1);
    struct io_fault *f = calloc(1, sizeof(*f));
    if (f == NULL) return -ENOMEM;
    f->base = base;
    rand_seed(&f->rng, seed);
    f->last_written = -1;
    for (int i = 0; i < IO_FAULT_HANDLES_MAX; i++) f->handles[i].handle = -1;
    struct io *io = &f->io;
    io->version = IO_VERSION;
    io->data = f;
    io->open = io_fault__open;
    io->close = io_fault__close;
    io->pread = io_fault__pread;
    io->pwrite = io_fault__pwrite;
    io->fdatasync = io_fault__fdatasync;
    io->fsync = io_fault__fsync;
    io->fallocate = io_fault__fallocate;
    io->ftruncate = io_fault__ftruncate;
    io->size = io_fault__size;
    io->rename = io_fault__rename;
    io->unlink = io_fault__unlink;
    io->mkdir = io_fault__mkdir;
    io->dir_sync = io_fault__dir_sync;
    io->list = io_fault__list;
    *out = f;
    return 0;
}

void io_fault_destroy(struct io_fault *f) {
    if (f == NULL) return;
    for (int i = 0; i < IO_FAULT_FILES_MAX; i++) free(f->files[i].path);
    free(f);
}

struct io *io_fault_io(struct io_fault *f) { return &f->io; }

void io_fault_arm(struct io_fault *f, enum io_fault_op op, uint32_t nth,
                  enum io_fault_action action, int err) {
    assert(op < IO_FAULT_OP_COUNT);
    assert(action != IO_FAULT_FAIL || err < 0 || nth == 0);
    f->armed[op].nth = nth;
    f->armed[op].action = action;
    f->armed[op].err = err;
}

/* Puts one file in the state a power cut leaves: `keep` bytes past
 * synced_len survive, then zeros up to synced_size. */
static int io_fault__cut(struct io_fault *f, struct io_fault__file *t, uint64_t keep) {
    int h;
    int rc = f->base->open(f->base, t->path, IO_OPEN_WRITE, &h);
    if (rc == -ENOENT) return 0; /* removed behind our back: nothing to cut */
    if (rc != 0) return rc;
    uint64_t cut = t->synced_len + keep;
    rc = f->base->ftruncate(f->base, h, cut);
    if (rc == 0 && t->synced_size > cut) rc = f->base->ftruncate(f->base, h, t->synced_size);
    f->base->close(f->base, h);
    if (rc != 0) return rc;
    t->synced_len = cut > t->synced_size ? cut : t->synced_size;
    t->synced_size = t->synced_len;
    t->written_end = 0;
    return 0;
}

int io_fault_crash(struct io_fault *f, uint64_t keep_bytes) {
    int result = 0;
    for (int i = 0; i < IO_FAULT_FILES_MAX; i++) {
        struct io_fault__file *t = &f->files[i];
        if (t->path == NULL) continue;
        uint64_t unsynced = t->written_end > t->synced_len ? t->written_end - t->synced_len : 0;
        uint64_t keep = 0;
        if (i == f->last_written && unsynced > 0) {
            keep = keep_bytes == IO_FAULT_KEEP_RANDOM ? rand_below(&f->rng, unsynced)
                                                      : keep_bytes;
            if (keep > unsynced) keep = unsynced;
        }
        int rc = io_fault__cut(f, t, keep);
        if (rc != 0 && result == 0) result = rc;
    }
    f->last_written = -1;
    f->down = true;
    return result;
}

void io_fault_restart(struct io_fault *f) {
    f->down = false;
    for (int op = 0; op < IO_FAULT_OP_COUNT; op++) f->armed[op].nth = 0;
}

bool io_fault_is_down(const struct io_fault *f) { return f->down; }

uint64_t io_fault_calls(const struct io_fault *f, enum io_fault_op op) {
    assert(op < IO_FAULT_OP_COUNT);
    return f->calls[op];
}
