/* raft_log.c: the in-memory Raft log; see raft_log.h. */
#include "raft/raft_log.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void raft_log_init(struct raft_log *log, uint64_t snapshot_index, uint64_t snapshot_term) {
    memset(log, 0, sizeof(*log));
    log->snapshot_index = snapshot_index;
    log->snapshot_term = snapshot_term;
    log->stable = snapshot_index;
    log->durable = snapshot_index;
    log->committed = snapshot_index;
    log->applied = snapshot_index;
}

/* Detaches the slabs, oldest first, whose entries are all at or behind
 * index (UINT64_MAX: every slab) onto the released list. */
static void raft_log__free_slabs(struct raft_log *log, uint64_t index) {
    while (log->slab_head != NULL && log->slab_head->last_index <= index) {
        struct raft_log_slab *slab = log->slab_head;
        log->slab_head = slab->next;
        slab->next = log->released;
        log->released = slab;
    }
    if (log->slab_head == NULL) log->slab_tail = NULL;
}

/* Returns RAFT_LOG_TRIM_BYTES of the entries' mapping past what the log
 * holds (it keeps room for twice its entries, and RAFT_LOG_MAP_BYTES): a
 * compaction leaves most of a long log's array unused but resident, and
 * unmapping hundreds of MB at once costs the loop tens of ms. True if more
 * is left to trim. */
static bool raft_log__free_entries_tail(struct raft_log *log) {
    if (!log->mapped) return false;
    const uint64_t step = RAFT_LOG_TRIM_BYTES / sizeof(struct raft_entry);
    uint64_t keep = log->count * 2;
    if (keep < RAFT_LOG_MAP_BYTES / sizeof(struct raft_entry)) {
        keep = RAFT_LOG_MAP_BYTES / sizeof(struct raft_entry);
    }
    if (log->capacity < keep + step) return false;
    uint64_t capacity = log->capacity - step;
    void *same = mremap(log->entries, (size_t)log->capacity * sizeof(struct raft_entry),
                        (size_t)capacity * sizeof(struct raft_entry), 0);
    if (same == MAP_FAILED) return false; /* shrinking in place: not expected to fail */
    log->capacity = capacity;
    return log->capacity >= keep + step;
}

bool raft_log_release(struct raft_log *log, uint32_t max) {
    for (uint32_t i = 0; i < max && log->released != NULL; i++) {
        struct raft_log_slab *slab = log->released;
        log->released = slab->next;
        free(slab);
    }
    bool trimming = raft_log__free_entries_tail(log);
    return log->released != NULL || trimming;
}

/* Room for len bytes of the entry at index, or NULL on ENOMEM. */
static uint8_t *raft_log__alloc(struct raft_log *log, uint64_t index, uint32_t len) {
    struct raft_log_slab *tail = log->slab_tail;
    if (tail == NULL || tail->capacity - tail->used < len) {
        /* slabs double from RAFT_LOG_SLAB_BYTES_MIN: a short log (a test, a
         * simulated node restarted often) does not take a whole MB */
        size_t capacity = tail == NULL ? RAFT_LOG_SLAB_BYTES_MIN : tail->capacity * 2;
        if (capacity > RAFT_LOG_SLAB_BYTES) capacity = RAFT_LOG_SLAB_BYTES;
        if (capacity < len) capacity = len;
        tail = malloc(sizeof(*tail) + capacity);
        if (tail == NULL) return NULL;
        tail->next = NULL;
        tail->last_index = 0;
        tail->used = 0;
        tail->capacity = capacity;
        if (log->slab_tail != NULL) log->slab_tail->next = tail;
        else log->slab_head = tail;
        log->slab_tail = tail;
    }
    uint8_t *at = tail->data + tail->used;
    tail->used += len;
    assert(tail->used <= tail->capacity);
    if (index > tail->last_index) tail->last_index = index;
    return at;
}

/* The entries' array grows to `capacity` entries. Past RAFT_LOG_MAP_BYTES
 * it is a mapping of its own, grown by mremap, which moves page tables and
 * copies nothing: a realloc that copied (jemalloc's does, for large blocks)
 * held a node's loop up to 0.8 s when the array of a 20M-key shard's log
 * doubled from 128 to 256 MB, and cost it its leadership. */
static int raft_log__alloc_entries(struct raft_log *log, uint64_t capacity) {
    size_t bytes = (size_t)capacity * sizeof(struct raft_entry);
    size_t had = (size_t)log->capacity * sizeof(struct raft_entry);
    void *grown;
    if (bytes < RAFT_LOG_MAP_BYTES) {
        grown = realloc(log->entries, bytes);
        if (grown == NULL) return RAFT_ENOMEM;
    } else if (log->mapped) {
        grown = mremap(log->entries, had, bytes, MREMAP_MAYMOVE);
        if (grown == MAP_FAILED) return RAFT_ENOMEM;
    } else {
        grown = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (grown == MAP_FAILED) return RAFT_ENOMEM;
        if (log->count > 0) memcpy(grown, log->entries, (size_t)log->count * sizeof(*log->entries));
        free(log->entries);
        log->mapped = true;
    }
    log->entries = grown;
    log->capacity = capacity;
    return RAFT_OK;
}

void raft_log_free(struct raft_log *log) {
    raft_log__free_slabs(log, UINT64_MAX);
    while (raft_log_release(log, UINT32_MAX)) {
    }
    if (log->mapped) munmap(log->entries, (size_t)log->capacity * sizeof(*log->entries));
    else free(log->entries);
    memset(log, 0, sizeof(*log));
}

uint64_t raft_log_last_index(const struct raft_log *log) {
    return log->snapshot_index + log->count;
}

uint64_t raft_log_last_term(const struct raft_log *log) {
    if (log->count == 0) return log->snapshot_term;
    return log->entries[log->count - 1].term;
}

uint64_t raft_log_term(const struct raft_log *log, uint64_t index) {
    if (index == log->snapshot_index) return log->snapshot_term;
    if (index < log->snapshot_index) return 0;
    if (index > raft_log_last_index(log)) return 0;
    return log->entries[index - log->snapshot_index - 1].term;
}

bool raft_log_match_term(const struct raft_log *log, uint64_t index, uint64_t term) {
    if (index < log->snapshot_index || index > raft_log_last_index(log)) return false;
    return raft_log_term(log, index) == term;
}

const struct raft_entry *raft_log_entry(const struct raft_log *log, uint64_t index) {
    if (index <= log->snapshot_index || index > raft_log_last_index(log)) return NULL;
    return &log->entries[index - log->snapshot_index - 1];
}

int raft_log_append(struct raft_log *log, const struct raft_entry *entry) {
    assert(entry->index == raft_log_last_index(log) + 1);
    assert(entry->term >= raft_log_last_term(log));
    if (log->count == log->capacity) {
        uint64_t capacity = log->capacity == 0 ? 64 : log->capacity * 2;
        if (raft_log__alloc_entries(log, capacity) != RAFT_OK) return RAFT_ENOMEM;
    }
    struct raft_entry copy = *entry;
    copy.data = NULL;
    if (entry->len > 0) {
        copy.data = raft_log__alloc(log, entry->index, entry->len);
        if (copy.data == NULL) return RAFT_ENOMEM;
        memcpy(copy.data, entry->data, entry->len);
    }
    log->entries[log->count++] = copy;
    return RAFT_OK;
}

void raft_log_truncate(struct raft_log *log, uint64_t from) {
    /* Committed entries are never truncated: doing so would lose data. */
    assert(from > log->committed);
    assert(from > log->snapshot_index);
    if (from > raft_log_last_index(log)) return;
    uint64_t pos = from - log->snapshot_index - 1;
    log->count = pos; /* the bytes stay in their slabs until compaction */
    if (log->stable >= from) log->stable = from - 1;
    if (log->durable >= from) log->durable = from - 1;
    assert(log->durable <= log->stable);
}

void raft_log_compact(struct raft_log *log, uint64_t index, uint64_t term) {
    assert(index <= log->applied);
    if (index <= log->snapshot_index) return;
    assert(index <= raft_log_last_index(log));
    assert(raft_log_term(log, index) == term);
    uint64_t drop = index - log->snapshot_index;
    raft_log__free_slabs(log, index);
    memmove(log->entries, log->entries + drop, (log->count - drop) * sizeof(*log->entries));
    log->count -= drop;
    log->snapshot_index = index;
    log->snapshot_term = term;
    if (log->durable < index) log->durable = index; /* the snapshot is on disk */
}

void raft_log_restore(struct raft_log *log, uint64_t index, uint64_t term) {
    raft_log__free_slabs(log, UINT64_MAX);
    log->count = 0;
    log->snapshot_index = index;
    log->snapshot_term = term;
    log->stable = index;
    log->durable = index;
    log->committed = index;
    /* applied moves when the caller has restored the state machine. */
}

uint64_t raft_log_find_conflict(const struct raft_log *log, const struct raft_entry *entries,
                                uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        if (!raft_log_match_term(log, entries[i].index, entries[i].term)) return entries[i].index;
    }
    return 0;
}

uint64_t raft_log_find_conflict_by_term(const struct raft_log *log, uint64_t index,
                                        uint64_t term) {
    uint64_t last = raft_log_last_index(log);
    if (index > last) return index;
    while (index > log->snapshot_index) {
        if (raft_log_term(log, index) <= term) return index;
        index--;
    }
    return index;
}

bool raft_log_is_up_to_date(const struct raft_log *log, uint64_t last_index,
                            uint64_t last_term) {
    uint64_t our_term = raft_log_last_term(log);
    if (last_term != our_term) return last_term > our_term;
    return last_index >= raft_log_last_index(log);
}
