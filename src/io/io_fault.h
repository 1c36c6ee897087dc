/* io_fault.h: a fault-injecting io backend for tests. It forwards every
 * call to another io (normally io_posix on a temporary directory) and, on
 * command, makes one of them fail or "crashes the machine".
 *
 * Crash model. For every file it has seen, the wrapper tracks what a power
 * cut would leave on disk:
 *   - synced_len:  bytes [0, synced_len) are durable (everything there was
 *                  covered by a successful fsync/fdatasync, and not written
 *                  since); a write at offset o lowers it to o;
 *   - synced_size: the file size as of the last successful sync;
 *   - written_end: the end of the highest write since that sync.
 * A crash cuts every file back to synced_len and extends it with zeros to
 * synced_size (what a preallocated file holds where nothing durable was
 * written). A torn crash instead keeps a prefix of the unsynced bytes
 * [synced_len, written_end) of the file written last: a write torn in the
 * middle, the rest never reached the platter. Syncs that fail leave the
 * unsynced bytes unsynced (so a later crash drops them: the fsyncgate
 * behaviour of Linux, where a failed fsync forgets the dirty pages).
 * Directory operations (create, rename, unlink) are treated as durable at
 * once; their loss is not modelled yet.
 *
 * After a crash the wrapper is down: every call but close() returns -EIO
 * (the process is dead) until io_fault_restart(). Handles opened before the
 * crash stay valid for close().
 *
 * Not thread-safe: call it from one thread (tests run wal_flush_run() on
 * the test's thread). No globals: several wrappers may coexist. */
#ifndef SHOAL_IO_FAULT_H
#define SHOAL_IO_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "io/io.h"

#define IO_FAULT_FILES_MAX 1024   /* files tracked at once (unlinked ones are forgotten) */
#define IO_FAULT_HANDLES_MAX 1024 /* open handles at once */
#define IO_FAULT_KEEP_RANDOM UINT64_MAX

enum io_fault_op {
    IO_FAULT_SYNC = 0,     /* fsync, fdatasync and dir_sync */
    IO_FAULT_WRITE = 1,    /* pwrite */
    IO_FAULT_ALLOCATE = 2, /* fallocate */
    IO_FAULT_OP_COUNT
};

enum io_fault_action {
    IO_FAULT_FAIL = 0,       /* the call returns the given error, doing nothing */
    IO_FAULT_CRASH = 1,      /* crash before the call (unsynced bytes lost), -EIO */
    IO_FAULT_CRASH_TEAR = 2, /* crash keeping a random prefix of the last write, -EIO */
};

struct io_fault;

/* Creates a wrapper around `base` (borrowed: must outlive the wrapper).
 * `seed` drives the random tear lengths. Returns 0, or -ENOMEM. */
int io_fault_create(struct io *base, uint64_t seed, struct io_fault **out)
    __attribute__((warn_unused_result));
/* Frees the wrapper; handles still open are not closed. */
void io_fault_destroy(struct io_fault *f);
/* The io table to hand to the code under test; owned by the wrapper. */
struct io *io_fault_io(struct io_fault *f);

/* Arms one fault per kind of call: the nth call of kind `op` from now
 * (nth = 1: the next one) does `action`; `err` (a negative errno, e.g.
 * -EIO or -ENOSPC) is what IO_FAULT_FAIL returns. nth = 0 disarms. */
void io_fault_arm(struct io_fault *f, enum io_fault_op op, uint32_t nth,
                  enum io_fault_action action, int err);
/* Crashes now: every file loses its unsynced bytes, except that the file
 * written last keeps `keep_bytes` of them (clamped; 0 = a clean cut;
 * IO_FAULT_KEEP_RANDOM = a random prefix shorter than all of them). The
 * wrapper is down afterwards. Returns 0 or the base io's error. */
int io_fault_crash(struct io_fault *f, uint64_t keep_bytes);
/* The machine is back: calls work again. */
void io_fault_restart(struct io_fault *f);
bool io_fault_is_down(const struct io_fault *f);
/* How many calls of a kind were made so far (failed ones included). */
uint64_t io_fault_calls(const struct io_fault *f, enum io_fault_op op);

#endif
