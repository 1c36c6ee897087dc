/* snapshot.h: a shard replica's snapshot file (format in snapshot.c). */
#ifndef SHOAL_NODE_SNAPSHOT_H
#define SHOAL_NODE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "raft/raft.h"

struct snapshot_file {
    struct raft_snapshot_meta meta;
    const uint8_t *data; /* the keyspace bytes, inside buf */
    uint64_t size;
    uint8_t *buf;
};

/* Writes the snapshot durably (tmp file, fsync, rename, directory fsync).
 * Returns 0 or a negative errno; err names the file and the step. */
int snapshot_save(struct io *io, const char *dir, const char *path, uint64_t group,
                  const struct raft_snapshot_meta *meta, const uint8_t *data, uint64_t size,
                  char *err, size_t err_cap) __attribute__((warn_unused_result));

/* The same, in pieces (the background writer streams the keyspace through
 * it, with no copy of the whole in memory): begin writes the header to
 * `<path>.tmp`, append adds data bytes (size in all), finish writes the
 * checksum, fsyncs, renames over path and fsyncs the directory. Each
 * returns 0 or a negative errno; after an error, finish reports it and
 * closes the file. */
struct snapshot_writer {
    struct io *io;
    int handle;
    const char *dir, *path;
    char tmp[IO_PATH_BYTES_MAX];
    uint64_t size, offset, data_start, unsynced;
    uint32_t crc;
    int rc;
};
int snapshot_writer_begin(struct snapshot_writer *w, struct io *io, const char *dir,
                          const char *path, uint64_t group, const struct raft_snapshot_meta *meta,
                          uint64_t size, char *err, size_t err_cap)
    __attribute__((warn_unused_result));
int snapshot_writer_append(struct snapshot_writer *w, const uint8_t *data, size_t len);
int snapshot_writer_finish(struct snapshot_writer *w, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/* Reads and verifies it: 0 (out filled; free with snapshot_file_free), 1 if
 * there is none, or a negative errno with err naming the file and offset. */
int snapshot_load(struct io *io, const char *path, uint64_t group, struct snapshot_file *out,
                  char *err, size_t err_cap) __attribute__((warn_unused_result));
void snapshot_file_free(struct snapshot_file *f);

/* An open snapshot file whose keyspace bytes are read where they lie
 * (data_offset + offset): what Raft sends a follower that is behind the
 * log, without a copy in memory. */
struct snapshot_ref {
    struct raft_snapshot_meta meta;
    int handle; /* io handle, -1 if none */
    uint64_t data_offset, size;
};

/* Opens it and checks its header (not the checksum of the whole file: the
 * keyspace format checks each record, and the receiver checks them all).
 * 0, or a negative errno with err naming the file and offset. */
int snapshot_open(struct io *io, const char *path, uint64_t group, struct snapshot_ref *out,
                  char *err, size_t err_cap) __attribute__((warn_unused_result));

#endif
