/* raft_log.h: the in-memory Raft log of one replica (internal to src/raft/).
 *
 *   snapshot_index   stable        committed            last
 *        |   entries[0] ...   |   ...    |    ...          |
 *   the snapshot covers 1..snapshot_index; entries hold snapshot_index+1..last.
 *   stable: entries up to here were handed to storage (raft_advance or
 *   raft_advance_unsynced); durable <= stable: up to here they are on disk.
 *   applied <= committed <= last; entries are freed by compaction only.
 *
 * Entry bytes live in slabs that double from RAFT_LOG_SLAB_BYTES_MIN to
 * RAFT_LOG_SLAB_BYTES (a larger entry gets a slab of its own), appended in order; each slab records the highest index
 * it ever held, and compaction frees whole slabs at or behind its index.
 * One malloc per entry, freed one by one, cost a node 2.3-3 s of its loop
 * per compaction of 1.6-3.2M entries after a fork (every free wrote to a
 * page the snapshot writer had shared); a slab is returned to the system
 * whole, untouched. Truncated bytes stay in their slab until it is freed.
 * Compaction only detaches the slabs; raft_log_release() frees a bounded
 * number a call (raft_tick: RAFT_LOG_RELEASE_SLABS per tick), since freeing
 * 1.4 GB of them at once still held a node's loop 600 ms at 20M keys.
 *
 * The entries themselves (32 bytes each) are one array, so that a ready
 * hands out a run of them as a pointer; past RAFT_LOG_MAP_BYTES it is a
 * mapping of its own, grown by mremap (no copy) and trimmed back by
 * raft_log_release() in steps of RAFT_LOG_TRIM_BYTES once compaction has
 * left it mostly empty.
 */
#ifndef SHOAL_RAFT_LOG_H
#define SHOAL_RAFT_LOG_H

#include "raft/raft.h"

#define RAFT_LOG_SLAB_BYTES (1u << 20)
#define RAFT_LOG_SLAB_BYTES_MIN 4096u
#define RAFT_LOG_MAP_BYTES (4u << 20) /* the entries' array: a mapping of its own from here */
#define RAFT_LOG_TRIM_BYTES (8u << 20) /* of the entries' mapping, per raft_log_release */
#define RAFT_LOG_RELEASE_SLABS 8 /* slabs freed per raft_tick: 400 MB/s at 20 ms ticks */

struct raft_log_slab {
    struct raft_log_slab *next;
    uint64_t last_index; /* highest index of an entry stored here */
    size_t used, capacity;
    uint8_t data[];
};

struct raft_log {
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    struct raft_entry *entries; /* entries[i].index == snapshot_index + 1 + i */
    uint64_t count;
    uint64_t capacity;
    bool mapped; /* entries is an mmap (RAFT_LOG_MAP_BYTES and more), not a malloc */
    uint64_t stable;  /* handed to storage by a ready */
    uint64_t durable; /* <= stable: known on stable storage (see raft_persisted) */
    uint64_t committed;
    uint64_t applied;
    struct raft_log_slab *slab_head, *slab_tail; /* oldest first */
    struct raft_log_slab *released;              /* compacted, not yet freed */
};

void raft_log_init(struct raft_log *log, uint64_t snapshot_index, uint64_t snapshot_term);
void raft_log_free(struct raft_log *log);
uint64_t raft_log_last_index(const struct raft_log *log);
uint64_t raft_log_last_term(const struct raft_log *log);
/* Term at index; 0 when index is compacted (below the snapshot) or past the end. */
uint64_t raft_log_term(const struct raft_log *log, uint64_t index);
bool raft_log_match_term(const struct raft_log *log, uint64_t index, uint64_t term);
const struct raft_entry *raft_log_entry(const struct raft_log *log, uint64_t index);
/* Appends a copy of the entry (its index must be last + 1). */
int raft_log_append(struct raft_log *log, const struct raft_entry *entry)
    __attribute__((warn_unused_result));
/* Drops every entry with index >= from (from > committed). */
void raft_log_truncate(struct raft_log *log, uint64_t from);
/* Drops entries up to and including index (index <= applied). */
void raft_log_compact(struct raft_log *log, uint64_t index, uint64_t term);
/* Frees up to max slabs that compaction detached; true if more remain. */
bool raft_log_release(struct raft_log *log, uint32_t max);
/* Replaces the whole log by a snapshot at (index, term). */
void raft_log_restore(struct raft_log *log, uint64_t index, uint64_t term);
/* First index i in `entries` whose term differs from ours (or is past our
 * end); 0 if every entry matches. */
uint64_t raft_log_find_conflict(const struct raft_log *log, const struct raft_entry *entries,
                                uint32_t n);
/* Largest index <= index whose term <= term (the fast-backtracking hint). */
uint64_t raft_log_find_conflict_by_term(const struct raft_log *log, uint64_t index,
                                        uint64_t term);
/* Is a candidate's log (last_term, last_index) at least as up to date? */
bool raft_log_is_up_to_date(const struct raft_log *log, uint64_t last_index,
                            uint64_t last_term);

#endif
