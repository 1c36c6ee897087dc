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

/* Reads and verifies it: 0 (out filled; free with snapshot_file_free), 1 if
 * there is none, or a negative errno with err naming the file and offset. */
int snapshot_load(struct io *io, const char *path, uint64_t group, struct snapshot_file *out,
                  char *err, size_t err_cap) __attribute__((warn_unused_result));
void snapshot_file_free(struct snapshot_file *f);

#endif
