/* snapshot.h: a shard replica's snapshot file (format in snapshot.c). */
#ifndef SHOAL_SHARD_SNAPSHOT_H
#define SHOAL_SHARD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "kv/kv.h"
#include "raft/raft.h"

/* Writes a snapshot file in pieces, with no copy of the whole in memory
 * (the background writer streams the keyspace through it; a follower the
 * chunks it receives): begin writes the header to `<path><suffix>`, append
 * adds data bytes (size in all; a data sync every 8 MB keeps the dirty
 * pages bounded), finish writes the checksum, fsyncs, renames over path
 * and fsyncs the directory, so a crash leaves the old file or the new one.
 * Each returns 0 or a negative errno; after an error, finish reports it
 * and closes the file; err names the file and the step. */
struct snapshot_writer {
    struct io *io;
    int handle;
    char dir[IO_PATH_BYTES_MAX], path[IO_PATH_BYTES_MAX]; /* copies: the writer may outlive them */
    char tmp[IO_PATH_BYTES_MAX];
    uint64_t size, offset, data_start, unsynced;
    uint32_t crc;
    int rc;
};
int snapshot_writer_begin(struct snapshot_writer *w, struct io *io, const char *dir,
                          const char *path, const char *suffix, uint64_t group,
                          const struct raft_snapshot_meta *meta, uint64_t size, char *err,
                          size_t err_cap) __attribute__((warn_unused_result));
/* Reserves the whole file's space now (a follower receiving a snapshot
 * learns at once that it cannot hold it, not after many GB). */
int snapshot_writer_preallocate(struct snapshot_writer *w, char *err, size_t err_cap)
    __attribute__((warn_unused_result));
int snapshot_writer_append(struct snapshot_writer *w, const uint8_t *data, size_t len);
int snapshot_writer_finish(struct snapshot_writer *w, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

/* An open snapshot file whose keyspace bytes are read where they lie
 * (data_offset + offset): what Raft sends a follower that is behind the
 * log, without a copy in memory. */
struct snapshot_ref {
    struct raft_snapshot_meta meta;
    int handle; /* io handle, -1 if none */
    uint64_t data_offset, size;
    uint32_t head_crc; /* crc32c of the bytes before data_offset */
};

/* Opens it and checks its header (not the checksum of the whole file: the
 * keyspace format checks each record, and the receiver checks them all).
 * 0, or a negative errno with err naming the file and offset. */
int snapshot_open(struct io *io, const char *path, uint64_t group, struct snapshot_ref *out,
                  char *err, size_t err_cap) __attribute__((warn_unused_result));

/* Loads the keyspace of an open snapshot (snapshot_open) into a new kv made
 * with `config`, streaming it from the file in chunks, and checks the
 * file's checksum at the end. 0 (*out owns the keyspace, *index is its
 * applied index), or a negative errno with err naming the file and offset
 * (*out NULL). */
int snapshot_load_kv(struct io *io, const char *path, const struct snapshot_ref *ref,
                     const struct kv_config *config, struct kv **out, uint64_t *index, char *err,
                     size_t err_cap) __attribute__((warn_unused_result));

#endif
