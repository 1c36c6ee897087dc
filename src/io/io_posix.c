/* io_posix.c: the production file backend of io.h: plain POSIX calls,
 * EINTR retried, short reads and writes looped over. Stateless, so every
 * function may run on any thread. */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"

/* Largest single read or write handed to the kernel (Linux caps at 2 GiB). */
#define IO_POSIX_CHUNK_BYTES ((size_t)1 << 30)

static int io_posix__path_ok(const char *path) {
    return strnlen(path, IO_PATH_BYTES_MAX) < IO_PATH_BYTES_MAX;
}

static int io_posix__open(struct io *io, const char *path, unsigned flags, int *handle) {
    (void)io;
    assert(handle != NULL);
    if (!io_posix__path_ok(path)) return -ENAMETOOLONG;
    int oflags = O_CLOEXEC | ((flags & IO_OPEN_WRITE) ? O_RDWR : O_RDONLY);
    if (flags & IO_OPEN_CREATE) oflags |= O_CREAT;
    if (flags & IO_OPEN_EXCL) oflags |= O_EXCL;
    int fd;
    do {
        fd = open(path, oflags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    *handle = fd;
    return 0;
}

static int io_posix__close(struct io *io, int handle) {
    (void)io;
    assert(handle >= 0);
    /* Linux releases the descriptor even when close() reports EINTR: never
     * retry (it could close a descriptor another thread just opened). */
    if (close(handle) != 0 && errno != EINTR) return -errno;
    return 0;
}

static int io_posix__pread(struct io *io, int handle, void *buf, size_t len, uint64_t offset,
                           size_t *n_read) {
    (void)io;
    assert(handle >= 0);
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < IO_POSIX_CHUNK_BYTES ? len - done : IO_POSIX_CHUNK_BYTES;
        ssize_t n = pread(handle, (char *)buf + done, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break; /* end of file */
        done += (size_t)n;
    }
    *n_read = done;
    return 0;
}

static int io_posix__pwrite(struct io *io, int handle, const void *buf, size_t len,
                            uint64_t offset) {
    (void)io;
    assert(handle >= 0);
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < IO_POSIX_CHUNK_BYTES ? len - done : IO_POSIX_CHUNK_BYTES;
        ssize_t n = pwrite(handle, (const char *)buf + done, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -EIO; /* no progress and no error: do not spin */
        done += (size_t)n;
    }
    return 0;
}

static int io_posix__fdatasync(struct io *io, int handle) {
    (void)io;
    int rc;
    do {
        rc = fdatasync(handle);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

static int io_posix__fsync(struct io *io, int handle) {
    (void)io;
    int rc;
    do {
        rc = fsync(handle);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

static int io_posix__fallocate(struct io *io, int handle, uint64_t offset, uint64_t len) {
    (void)io;
    int rc;
    do {
        rc = posix_fallocate(handle, (off_t)offset, (off_t)len); /* returns the error */
    } while (rc == EINTR);
    return -rc;
}

static int io_posix__ftruncate(struct io *io, int handle, uint64_t len) {
    (void)io;
    int rc;
    do {
        rc = ftruncate(handle, (off_t)len);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : -errno;
}

static int io_posix__size(struct io *io, int handle, uint64_t *size_bytes) {
    (void)io;
    struct stat st;
    if (fstat(handle, &st) != 0) return -errno;
    assert(st.st_size >= 0);
    *size_bytes = (uint64_t)st.st_size;
    return 0;
}

static int io_posix__rename(struct io *io, const char *from, const char *to) {
    (void)io;
    if (!io_posix__path_ok(from) || !io_posix__path_ok(to)) return -ENAMETOOLONG;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int io_posix__unlink(struct io *io, const char *path) {
    (void)io;
    if (!io_posix__path_ok(path)) return -ENAMETOOLONG;
    return unlink(path) == 0 ? 0 : -errno;
}

static int io_posix__mkdir(struct io *io, const char *path) {
    (void)io;
    if (!io_posix__path_ok(path)) return -ENAMETOOLONG;
    return mkdir(path, 0755) == 0 ? 0 : -errno;
}

static int io_posix__dir_sync(struct io *io, const char *dir) {
    int handle;
    int rc = io_posix__open(io, dir, 0, &handle);
    if (rc != 0) return rc;
    rc = io_posix__fsync(io, handle);
    int rc_close = io_posix__close(io, handle);
    return rc != 0 ? rc : rc_close;
}

static int io_posix__list(struct io *io, const char *dir, io_list_cb cb, void *arg) {
    (void)io;
    if (!io_posix__path_ok(dir)) return -ENAMETOOLONG;
    DIR *d = opendir(dir);
    if (d == NULL) return -errno;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(d);
        if (ent == NULL) {
            rc = errno != 0 ? -errno : 0;
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        rc = cb(arg, ent->d_name);
        if (rc != 0) break;
    }
    closedir(d);
    return rc;
}

static void *io_posix__closer(void *arg) {
    (void)close((int)(intptr_t)arg); /* a read-only handle: nothing to report */
    return NULL;
}

static void io_posix__close_in_background(struct io *io, int handle) {
    assert(handle >= 0);
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;
    if (pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
            pthread_create(&thread, &attr, io_posix__closer, (void *)(intptr_t)handle) == 0) {
            started = true;
        }
        pthread_attr_destroy(&attr);
    }
    if (!started) (void)io_posix__close(io, handle); /* no thread: wait, once */
}

void io_posix_init(struct io *io) {
    memset(io, 0, sizeof(*io));
    io->version = IO_VERSION;
    io->data = NULL;
    io->open = io_posix__open;
    io->close = io_posix__close;
    io->close_in_background = io_posix__close_in_background;
    io->pread = io_posix__pread;
    io->pwrite = io_posix__pwrite;
    io->fdatasync = io_posix__fdatasync;
    io->fsync = io_posix__fsync;
    io->fallocate = io_posix__fallocate;
    io->ftruncate = io_posix__ftruncate;
    io->size = io_posix__size;
    io->rename = io_posix__rename;
    io->unlink = io_posix__unlink;
    io->mkdir = io_posix__mkdir;
    io->dir_sync = io_posix__dir_sync;
    io->list = io_posix__list;
}
