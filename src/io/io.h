/* io.h: the only door to the operating system (DESIGN rule 1). A versioned
 * table of function pointers, SQLite's VFS idea: production code gets the
 * POSIX backend (io_posix.c), tests wrap it in a fault injector
 * (io_fault.c), and the simulator will bring its own in-memory backend. The
 * rest of shoal never calls open(2), write(2) or fsync(2) itself.
 *
 * Conventions for every function of the table:
 *   - returns 0 on success or a negative errno value (-EIO, -ENOSPC, ...);
 *     io_strerror() names it;
 *   - paths are NUL-terminated and at most IO_PATH_BYTES_MAX bytes long
 *     (terminator included), or the call returns -ENAMETOOLONG;
 *   - a file is named by an integer handle >= 0 that the backend hands out
 *     from open(); it is valid until close();
 *   - EINTR is never returned (backends retry), and pwrite() writes every
 *     byte or fails (backends loop over short writes);
 *   - memory passed in is borrowed for the duration of the call.
 *
 * Threads: a backend states whether its functions may be called from
 * several threads at once. io_posix may (it keeps no state); io_fault may
 * not (tests drive it from one thread).
 *
 * Durability: data written with pwrite() is durable only after a
 * successful fdatasync() or fsync() of that handle; a new or renamed or
 * removed directory entry only after dir_sync() of its directory. After a
 * failed fsync the data must be treated as lost and the caller must stop
 * (see src/wal/wal.h: fail-stop).
 */
#ifndef SHOAL_IO_H
#define SHOAL_IO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define IO_VERSION 1
#define IO_PATH_BYTES_MAX 4096

/* Flags of open(). Without IO_OPEN_WRITE a file is opened read-only. */
#define IO_OPEN_WRITE 1u  /* read and write */
#define IO_OPEN_CREATE 2u /* create if missing (mode 0644) */
#define IO_OPEN_EXCL 4u   /* with IO_OPEN_CREATE: fail with -EEXIST if present */

/* Called once per directory entry by list() ("." and ".." are skipped); a
 * non-zero return stops the listing and becomes list()'s result. */
typedef int (*io_list_cb)(void *arg, const char *name);

struct io {
    int version; /* IO_VERSION: the fields below exist */
    void *data;  /* the backend's state */

    /* Files. */
    int (*open)(struct io *io, const char *path, unsigned flags, int *handle);
    int (*close)(struct io *io, int handle);
    /* Reads up to len bytes at offset; *n_read < len only at end of file. */
    int (*pread)(struct io *io, int handle, void *buf, size_t len, uint64_t offset,
                 size_t *n_read);
    int (*pwrite)(struct io *io, int handle, const void *buf, size_t len, uint64_t offset);
    int (*fdatasync)(struct io *io, int handle); /* data, and metadata needed to read it */
    int (*fsync)(struct io *io, int handle);     /* data and all metadata (size) */
    /* Reserves [offset, offset + len) on disk: later writes there cannot
     * fail with -ENOSPC; the file grows to at least offset + len (zeros). */
    int (*fallocate)(struct io *io, int handle, uint64_t offset, uint64_t len);
    int (*ftruncate)(struct io *io, int handle, uint64_t len);
    int (*size)(struct io *io, int handle, uint64_t *size_bytes);

    /* Names and directories. */
    int (*rename)(struct io *io, const char *from, const char *to);
    int (*unlink)(struct io *io, const char *path);
    int (*mkdir)(struct io *io, const char *path); /* -EEXIST if present */
    int (*dir_sync)(struct io *io, const char *dir);
    int (*list)(struct io *io, const char *dir, io_list_cb cb, void *arg);
    /* Closes a handle whose file may be large and already unlinked (a
     * snapshot replaced by a newer one) without waiting: the last close of
     * such a file frees its blocks, 0.8 s for 1.5 GB on ext4, which on the
     * event loop would hold every group. NULL: the caller uses close(). */
    void (*close_in_background)(struct io *io, int handle);

    /* Later versions add, after this line and without reordering the above:
     *   clock:   monotonic and wall time in nanoseconds;
     *   timers:  one repeating tick per node, cancelled on close;
     *   sockets: listen, accept, connect, read, write, close, with callbacks
     *            on the event loop;
     *   work:    run a function on a worker thread, call back on the loop
     *            (what the WAL's group commit uses; see wal_flush_run()).
     * Randomness stays a seeded generator passed in (util/rand.h). */
};

/* Fills `io` with the POSIX backend (io_posix.c). Thread-safe, stateless. */
void io_posix_init(struct io *io);

/* A short name for a code returned by an io function (no locale, no OS). */
static inline const char *io_strerror(int err) {
    switch (-err) {
    case 0: return "success";
    case EIO: return "input/output error";
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case ENOENT: return "no such file or directory";
    case EEXIST: return "file exists";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EROFS: return "read-only file system";
    case EBADF: return "bad file handle";
    case EINVAL: return "invalid argument";
    case ENOMEM: return "out of memory";
    case EMFILE: return "too many open files";
    case ENFILE: return "too many open files in system";
    case ENAMETOOLONG: return "file name too long";
    case ENOTDIR: return "not a directory";
    case EISDIR: return "is a directory";
    case EFBIG: return "file too large";
    case EOPNOTSUPP: return "operation not supported";
    default: return "i/o error";
    }
}

#endif
