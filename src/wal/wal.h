/* wal.h: the node's write-ahead log. One log per node, shared by all the
 * Raft groups the node hosts, so that one fdatasync makes the pending
 * records of every group durable at once (group commit; docs/wal.md).
 *
 * It stores what raft_ready() asks to persist: entries (which may overwrite
 * a suffix of a group's log), hard states (term, vote, commit), and snapshot
 * marks (the snapshot file itself lives elsewhere; the mark says entries at
 * or before its index are garbage). On open it replays the log and hands
 * back, per group, what raft_create() needs.
 *
 * Files: fixed-size, preallocated segments named by sequence number,
 * `<dir>/00000000000000000001.wal`, `...0002.wal`, ...; contiguous (a gap is
 * corruption); written in order; the last one is the tail. A record that
 * does not fit in the rest of the tail starts the next segment; a record
 * larger than a whole segment gets a segment of its own, rounded up to
 * 4 KiB. Bytes after the last record of a segment are zeros.
 *
 * Record (little-endian integers; WAL_RECORD_HEADER_BYTES = 34):
 *
 *    0       4       8    9    10          18          26          34
 *   +-------+-------+----+----+-----------+-----------+-----------+---------+
 *   | crc32c| length|type|ver | group     | term      | index     | payload |
 *   +-------+-------+----+----+-----------+-----------+-----------+---------+
 *   crc32c  CRC-32C of bytes [4, 34 + length): everything after itself
 *   length  payload bytes, <= record_bytes_max
 *   type    enum wal_record_type (0 never appears: zeros end a segment)
 *   ver     WAL_RECORD_VERSION
 *
 *   type            group  term        index        payload
 *   SEGMENT_HEADER  0      0           segment seq  magic u64 "SHOALWAL" |
 *                                                   format version u32 |
 *                                                   flags u32 (0) |
 *                                                   seq u64 | segment bytes u64
 *   ENTRY           group  entry term  entry index  entry type u8 | data
 *   HARD_STATE      group  term        commit       vote u64
 *   SNAPSHOT_MARK   group  snap term   snap index   kind u8 (enum wal_mark_kind)
 *
 * The segment header is the first record of every segment and only there.
 *
 * Recovery (wal_open), per group, in log order:
 *   - the last hard state wins;
 *   - an entry at index i drops every entry >= i, then is appended; it must
 *     come after the snapshot mark and, if the group has entries, follow
 *     them (i <= last + 1);
 *   - a snapshot mark (m, t) newer than the current one drops the entries
 *     <= m (COMPACTED) or all of them (INSTALLED); the same mark again is a
 *     no-op. The kind is written down rather than re-derived from the term
 *     at m (Raft's InstallSnapshot rule), because wal_gc() may have deleted
 *     the entries that test would need: the group's surviving entries are
 *     always a suffix of its full log, and the rules above keep it so.
 * A record that is short or fails its CRC at the end of the written part of
 * the last segment, with nothing but zeros after it, is a torn write: it is
 * zeroed on disk and recovery continues (a tail segment whose header is torn
 * is removed). Any other bad record (bad CRC followed by data, bad length,
 * unknown type or version, a gap in a group's log, a missing segment) stops
 * recovery with WAL_ECORRUPT and a message naming the file and the offset:
 *   wal: corrupt record in /data/wal/00000000000000000003.wal at offset
 *   81920: crc mismatch
 *
 * Group commit (docs/wal.md): the event loop appends records, which only
 * encode into a memory buffer; wal_flush_begin() takes the whole buffer as
 * one batch; wal_flush_run() writes it (one pwrite per segment touched, and
 * now and then a megabyte of zeros ahead of the records in the tail, so
 * that later syncs write into written blocks: docs/wal.md, "Zeros ahead")
 * and makes it durable with ONE fdatasync, and may run on a worker thread;
 * wal_flush_end(), back on the loop, reports per group what is now durable.
 * At most one batch is in flight; appends go on meanwhile into the next.
 *
 * Failure: FAIL STOP. If fsync, fdatasync or a write fails, the WAL is
 * failed for good: that call and every later call return the same error,
 * and the node must stop. Never retry an fsync and carry on: after a failed
 * fsync Linux may have dropped the dirty pages and marked them clean, so a
 * second fsync "succeeds" with the data lost (PostgreSQL's "fsyncgate",
 * 2018). Restarting re-reads what really reached the disk.
 *
 * Threads: every function runs on the owner's thread (the event loop),
 * except wal_flush_run(), which may run on any one thread while the owner
 * goes on appending; see there. No globals: several WALs (nodes) may live in
 * one process.
 */
#ifndef SHOAL_WAL_H
#define SHOAL_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "io/io.h"
#include "raft/raft.h"

/* ---- format ---- */
#define WAL_RECORD_HEADER_BYTES 34
#define WAL_RECORD_VERSION 1
#define WAL_FORMAT_VERSION 1                    /* segment format, in its header */
#define WAL_MAGIC UINT64_C(0x4c41574c414f4853) /* "SHOALWAL" as little-endian bytes */
#define WAL_SEGMENT_HEADER_PAYLOAD_BYTES 32
#define WAL_SEGMENT_NAME_DIGITS 20

enum wal_record_type {
    WAL_RECORD_SEGMENT_HEADER = 1,
    WAL_RECORD_ENTRY = 2,
    WAL_RECORD_HARD_STATE = 3,
    WAL_RECORD_SNAPSHOT_MARK = 4,
};

/* ---- limits ---- */
#define WAL_SEGMENT_ALIGN_BYTES 4096u
#define WAL_SEGMENT_BYTES_MIN (16u * 1024)
#define WAL_SEGMENT_BYTES_MAX (1u << 30)
#define WAL_RECORD_BYTES_MAX (256u << 20) /* cap of wal_options.record_bytes_max */
#define WAL_GROUPS_MAX (1u << 20)         /* cap of wal_options.groups_max */
#define WAL_SEGMENTS_MAX 65536u           /* segment files at once */
#define WAL_DIR_BYTES_MAX 512             /* directory path, terminator included */
#define WAL_ERROR_BYTES 768               /* error messages, terminator included */

_Static_assert(WAL_SEGMENT_BYTES_MIN % WAL_SEGMENT_ALIGN_BYTES == 0, "aligned minimum");
_Static_assert(WAL_SEGMENT_BYTES_MIN > 2 * (WAL_RECORD_HEADER_BYTES + 32), "room for records");
_Static_assert((uint64_t)WAL_SEGMENT_BYTES_MAX + WAL_RECORD_BYTES_MAX < UINT32_MAX,
               "a segment's offsets fit in 32 bits, so record lengths always do");
_Static_assert(WAL_DIR_BYTES_MAX + WAL_SEGMENT_NAME_DIGITS + 8 < IO_PATH_BYTES_MAX,
               "segment paths fit the io limit");
_Static_assert(WAL_ERROR_BYTES > WAL_DIR_BYTES_MAX + 160, "messages can name a file");

/* What a snapshot mark does to the entries logged before it. */
enum wal_mark_kind {
    WAL_MARK_COMPACTED = 0, /* raft_compact(): entries after the index stay */
    WAL_MARK_INSTALLED = 1, /* ready.has_snapshot: the leader's snapshot replaced the log */
};

/* ---- errors: named negative codes; wal_strerror() names them ---- */
enum wal_err {
    WAL_OK = 0,
    WAL_EINVAL = -1,   /* bad argument (the WAL is unchanged) */
    WAL_ETOOBIG = -2,  /* a record over record_bytes_max (unchanged) */
    WAL_EFULL = -3,    /* the append buffer is full: flush first (unchanged) */
    WAL_EBUSY = -4,    /* a batch is already in flight (unchanged) */
    WAL_ELIMIT = -5,   /* over groups_max (unchanged) or WAL_SEGMENTS_MAX (failed) */
    WAL_ENOMEM = -6,   /* allocation failed: the WAL is failed */
    WAL_EIO = -7,      /* an I/O call failed: the WAL is failed; see wal_error() */
    WAL_ENOSPC = -8,   /* disk full (or quota): the WAL is failed */
    WAL_ECORRUPT = -9, /* wal_open(): bad record; the message names file and offset */
};
const char *wal_strerror(int err);

struct wal_options {
    uint64_t segment_bytes;    /* default 64 MiB; multiple of 4 KiB, MIN..MAX above */
    uint32_t record_bytes_max; /* payload of one record; default 64 MiB */
    uint64_t buffer_bytes_max; /* records buffered, not yet in a batch; default 128 MiB,
                                * at least record_bytes_max + 4 KiB */
    uint32_t groups_max;       /* distinct groups ever seen; default 65536 */
};
void wal_options_default(struct wal_options *options);

/* What recovery found for one group. `entries` hold consecutive indexes,
 * all after the snapshot mark (if any); raft_create() takes them as is. */
struct wal_group_state {
    uint64_t group;
    bool has_hard_state;
    struct raft_hard_state hard_state;
    bool has_snapshot;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    uint32_t n_entries;
    struct raft_entry *entries; /* each entry's data is its own allocation */
};

struct wal_recovered {
    uint32_t n_groups;
    struct wal_group_state *groups; /* sorted by group id */
    uint64_t segments;              /* segment files read */
    uint64_t truncated_bytes;       /* torn tail bytes zeroed (0 if none) */
    char error[WAL_ERROR_BYTES];    /* on failure of wal_open(): why */
};
void wal_recovered_free(struct wal_recovered *recovered);

/* What one completed flush made durable for one group. */
struct wal_durable {
    uint64_t group;
    bool has_entries; /* entries up to (last_index, last_term) are durable */
    uint64_t last_index;
    uint64_t last_term;
    bool has_hard_state;
    struct raft_hard_state hard_state;
    bool has_snapshot;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
};
typedef void (*wal_durable_cb)(void *arg, const struct wal_durable *durable);

struct wal;       /* opaque */
struct wal_batch; /* opaque: one flush in flight */

/* Opens the log in `dir` (which must exist; an empty directory is an empty
 * log: the first flush creates segment 1) and replays it into `recovered`,
 * which the caller frees with wal_recovered_free() (also after a failure:
 * it is then empty but for `error`). `io` and `options` (NULL = defaults)
 * are borrowed; `io` must outlive the WAL. A torn tail is repaired on disk.
 * Files in `dir` that are not segments are ignored.
 * Errors: WAL_EINVAL (options, or `dir` too long), WAL_ECORRUPT, WAL_ELIMIT
 * (more than WAL_SEGMENTS_MAX segments or groups_max groups), WAL_ENOMEM,
 * WAL_EIO / WAL_ENOSPC (an io call failed); `recovered->error` says why. */
int wal_open(struct io *io, const char *dir, const struct wal_options *options,
             struct wal **out, struct wal_recovered *recovered)
    __attribute__((warn_unused_result));

/* Closes the segment files and frees the WAL. Buffered records that were
 * never flushed are dropped (they were never reported durable). No batch
 * may be in flight. */
void wal_close(struct wal *wal);

/* Appends records to the buffer (no I/O). Each call is all or nothing.
 *  - entries: n consecutive indexes with non-decreasing terms; the first
 *    index must be after the group's snapshot mark and at most one past its
 *    last entry (lower overwrites the suffix, as Raft truncates); entries
 *    and their data are copied; n = 0 does nothing;
 *  - hard state: replaces the group's previous one on recovery;
 *  - snapshot mark: the snapshot at (index, term) is durable elsewhere;
 *    `kind` says whether the entries after it stay (see enum wal_mark_kind);
 *    index must not go backwards (the same mark again is a no-op).
 * Errors: WAL_EINVAL, WAL_ETOOBIG, WAL_EFULL, WAL_ELIMIT (a new group over
 * groups_max) leave the WAL unchanged; WAL_ENOMEM and the segment limit
 * fail it; a failed WAL returns its error. */
int wal_append_entries(struct wal *wal, uint64_t group, const struct raft_entry *entries,
                       uint32_t n) __attribute__((warn_unused_result));
int wal_append_hard_state(struct wal *wal, uint64_t group, const struct raft_hard_state *hs)
    __attribute__((warn_unused_result));
int wal_append_snapshot_mark(struct wal *wal, uint64_t group, uint64_t index, uint64_t term,
                             enum wal_mark_kind kind) __attribute__((warn_unused_result));

/* Is there anything for wal_flush_begin() to take (records or segments
 * scheduled for deletion)? */
bool wal_has_pending(const struct wal *wal);

/* Takes everything buffered so far as one batch, owned by the WAL until
 * wal_flush_end(). *batch = NULL (and WAL_OK) when there is nothing to do.
 * Errors: WAL_EBUSY (a batch is in flight), or the failed WAL's error. */
int wal_flush_begin(struct wal *wal, struct wal_batch **batch)
    __attribute__((warn_unused_result));

/* Writes the batch and makes it durable: creates the segments it starts
 * (preallocated, fsynced, directory fsynced), one pwrite per segment, ONE
 * fdatasync of the tail (plus one of a segment it leaves), then deletes the
 * segments wal_gc() retired. Returns WAL_OK, WAL_EIO or WAL_ENOSPC (the
 * message is kept in the batch for wal_flush_end()).
 * Thread safety: touches only the batch, the segment files and the io (the
 * WAL's io must then be thread-safe, as io_posix is). It may run on a worker
 * thread while the owner keeps appending; the owner must not touch the
 * batch until wal_flush_run() returned. */
int wal_flush_run(struct wal_batch *batch) __attribute__((warn_unused_result));

/* Back on the owner's thread: `result` is what wal_flush_run() returned
 * (or an error of the caller's own if it could not run it). On success
 * calls `cb` (may be NULL) once per group the batch touched with what is now
 * durable, and returns WAL_OK. On an error the WAL is failed for good: no
 * callback, and the error is returned (now and by every later call). Frees
 * the batch either way. */
int wal_flush_end(struct wal *wal, struct wal_batch *batch, int result, wal_durable_cb cb,
                  void *arg) __attribute__((warn_unused_result));

/* begin + run + end on the calling thread (tools and tests). */
int wal_flush(struct wal *wal, wal_durable_cb cb, void *arg) __attribute__((warn_unused_result));

/* Retires the oldest segments whose records are all obsolete: for every
 * group with records in it, its entries there are at or below the group's
 * durable snapshot mark, and its hard state and snapshot mark there (if
 * any) have durable successors in later segments. Retired segments are
 * deleted by the next flush (after its sync; one directory fsync each), so
 * the loop does no I/O here. If the oldest segment is then kept only by
 * some groups' latest hard state or mark, those are appended again (copied
 * forward) so that a later wal_gc() can retire it. *retired (may be NULL)
 * gets the number of segments retired. Errors: WAL_ENOMEM, a failed WAL's. */
int wal_gc(struct wal *wal, uint32_t *retired) __attribute__((warn_unused_result));

/* Groups whose entries keep the oldest segment alive (entries above their
 * durable snapshot mark): snapshotting them lets wal_gc() make progress.
 * Fills up to `cap` ids; returns how many there are in all. */
uint32_t wal_pinning_groups(const struct wal *wal, uint64_t *groups, uint32_t cap);

struct wal_stats {
    uint64_t segments;       /* segment files (retired ones excluded) */
    uint64_t first_seq;      /* oldest segment (0 if none) */
    uint64_t tail_seq;       /* segment the next record goes to (0 if none yet) */
    uint64_t durable_seq;    /* segment of the last durable record (0 if none) */
    uint64_t groups;         /* groups seen */
    uint64_t buffered_bytes; /* bytes appended and not yet in a batch */
};
void wal_stats(const struct wal *wal, struct wal_stats *stats);

/* WAL_OK, or the error that failed the WAL for good. */
int wal_failed(const struct wal *wal);
/* The message of the failure ("" if none), naming the call and the file. */
const char *wal_error(const struct wal *wal);

#endif
