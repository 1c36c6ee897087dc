/* sim_disk.c: a simulated disk holding one append-only log file per node.
 *
 * Record (all integers little-endian):
 *   crc32c u32 | length u32 | type u8 | payload[length]
 *   crc32c covers length, type and payload.
 *   type 1 hard state: term u64 | vote u64 | commit u64
 *   type 2 entry:      term u64 | index u64 | entry type u8 | data
 *   type 3 snapshot:   index u64 | term u64 | conf length u32 | conf | data
 *
 * Replay: the latest hard state wins; an entry at index i replaces every
 * entry >= i; a snapshot at (i, t) keeps the entries after i if the log has
 * (i, t), else replaces the whole log. A crash keeps the synced bytes plus
 * possibly a prefix of the rest, which may end inside a record: a torn
 * final record is cut; a bad record anywhere else is corruption. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"
#include "util/crc32c.h"

#define SIM_REC_HARD_STATE 1
#define SIM_REC_ENTRY 2
#define SIM_REC_SNAPSHOT 3
#define SIM_REC_HEADER 9

void sim_disk_free(struct sim_disk *disk) {
    free(disk->bytes);
    memset(disk, 0, sizeof(*disk));
}

static void sim_disk__reserve(struct sim_disk *disk, uint64_t more) {
    if (disk->len + more <= disk->cap) return;
    uint64_t cap = disk->cap == 0 ? 4096 : disk->cap;
    while (cap < disk->len + more) cap *= 2;
    uint8_t *grown = realloc(disk->bytes, cap);
    if (grown == NULL) abort();
    disk->bytes = grown;
    disk->cap = cap;
}

static void sim_disk__u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t sim_disk__get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t sim_disk__get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Appends a record whose payload is head[head_len] followed by tail[tail_len]. */
static void sim_disk__record(struct sim_disk *disk, uint8_t type, const uint8_t *head,
                             uint32_t head_len, const uint8_t *tail, uint64_t tail_len) {
    uint64_t len = head_len + tail_len;
    assert(len < UINT32_MAX);
    sim_disk__reserve(disk, SIM_REC_HEADER + len);
    uint8_t *rec = disk->bytes + disk->len;
    for (int i = 0; i < 4; i++) rec[4 + i] = (uint8_t)(len >> (8 * i));
    rec[8] = type;
    memcpy(rec + SIM_REC_HEADER, head, head_len);
    if (tail_len > 0) memcpy(rec + SIM_REC_HEADER + head_len, tail, tail_len);
    uint32_t crc = crc32c(0, rec + 4, 5 + len);
    for (int i = 0; i < 4; i++) rec[i] = (uint8_t)(crc >> (8 * i));
    disk->len += SIM_REC_HEADER + len;
}

void sim_disk_write_hard_state(struct sim_disk *disk, const struct raft_hard_state *hs) {
    uint8_t p[24];
    sim_disk__u64(p, hs->term);
    sim_disk__u64(p + 8, hs->vote);
    sim_disk__u64(p + 16, hs->commit);
    sim_disk__record(disk, SIM_REC_HARD_STATE, p, sizeof(p), NULL, 0);
}

void sim_disk_write_entry(struct sim_disk *disk, const struct raft_entry *e) {
    uint8_t p[17];
    sim_disk__u64(p, e->term);
    sim_disk__u64(p + 8, e->index);
    p[16] = e->type;
    sim_disk__record(disk, SIM_REC_ENTRY, p, sizeof(p), e->data, e->len);
}

void sim_disk_write_snapshot(struct sim_disk *disk, const struct raft_snapshot_meta *meta,
                             const uint8_t *data, uint64_t size) {
    uint8_t p[20 + RAFT_CONF_BYTES + 4];
    sim_disk__u64(p, meta->index);
    sim_disk__u64(p + 8, meta->term);
    uint32_t conf_len = raft_conf_encode(&meta->conf, p + 20, RAFT_CONF_BYTES + 4);
    assert(conf_len > 0);
    for (int i = 0; i < 4; i++) p[16 + i] = (uint8_t)(conf_len >> (8 * i));
    sim_disk__record(disk, SIM_REC_SNAPSHOT, p, 20 + conf_len, data, size);
}

void sim_disk_sync(struct sim_disk *disk) { disk->synced = disk->len; }

void sim_disk_crash(struct sim_disk *disk, uint64_t keep) {
    uint64_t unsynced = disk->len - disk->synced;
    disk->len = disk->synced + (keep < unsynced ? keep : unsynced);
    disk->synced = disk->len;
}

void sim_recovered_free(struct sim_recovered *rec) {
    for (uint32_t i = 0; i < rec->n_entries; i++) free(rec->entries[i].data);
    free(rec->entries);
    free(rec->snapshot_data);
    memset(rec, 0, sizeof(*rec));
}

static uint64_t sim_rec__last(const struct sim_recovered *rec) {
    if (rec->n_entries > 0) return rec->entries[rec->n_entries - 1].index;
    return rec->has_snapshot ? rec->snapshot.index : 0;
}

/* Drops entries with index >= from. */
static void sim_rec__truncate(struct sim_recovered *rec, uint64_t from) {
    while (rec->n_entries > 0 && rec->entries[rec->n_entries - 1].index >= from) {
        free(rec->entries[--rec->n_entries].data);
    }
}

static bool sim_rec__entry(struct sim_recovered *rec, const uint8_t *p, uint32_t len) {
    if (len < 17) return false;
    struct raft_entry e = {.term = sim_disk__get64(p), .index = sim_disk__get64(p + 8),
                           .type = p[16], .len = len - 17};
    uint64_t base = rec->has_snapshot ? rec->snapshot.index : 0;
    if (e.index <= base) return true; /* covered by the snapshot */
    sim_rec__truncate(rec, e.index);
    if (e.index != sim_rec__last(rec) + 1) return false; /* a gap: corruption */
    if (rec->n_entries == rec->cap_entries) {
        rec->cap_entries = rec->cap_entries == 0 ? 64 : rec->cap_entries * 2;
        rec->entries = realloc(rec->entries, rec->cap_entries * sizeof(*rec->entries));
        if (rec->entries == NULL) abort();
    }
    e.data = NULL;
    if (e.len > 0) {
        e.data = malloc(e.len);
        if (e.data == NULL) abort();
        memcpy(e.data, p + 17, e.len);
    }
    rec->entries[rec->n_entries++] = e;
    return true;
}

static bool sim_rec__snapshot(struct sim_recovered *rec, const uint8_t *p, uint32_t len) {
    if (len < 20) return false;
    struct raft_snapshot_meta meta = {.index = sim_disk__get64(p), .term = sim_disk__get64(p + 8)};
    uint32_t conf_len = sim_disk__get32(p + 16);
    if (conf_len > len - 20 || raft_conf_decode(p + 20, conf_len, &meta.conf) != RAFT_OK) {
        return false;
    }
    /* keep the entries after it only if the log has the snapshot's point */
    uint32_t keep_from = rec->n_entries;
    for (uint32_t i = 0; i < rec->n_entries; i++) {
        if (rec->entries[i].index == meta.index && rec->entries[i].term == meta.term) {
            keep_from = i + 1;
        }
    }
    for (uint32_t i = 0; i < keep_from; i++) free(rec->entries[i].data);
    if (rec->n_entries > keep_from) {
        memmove(rec->entries, rec->entries + keep_from,
                (rec->n_entries - keep_from) * sizeof(*rec->entries));
    }
    rec->n_entries -= keep_from;
    free(rec->snapshot_data);
    rec->snapshot_size = len - 20 - conf_len;
    rec->snapshot_data = malloc(rec->snapshot_size > 0 ? rec->snapshot_size : 1);
    if (rec->snapshot_data == NULL) abort();
    memcpy(rec->snapshot_data, p + 20 + conf_len, rec->snapshot_size);
    rec->snapshot = meta;
    rec->has_snapshot = true;
    return true;
}

static bool sim_rec__apply(struct sim_recovered *rec, uint8_t type, const uint8_t *p,
                           uint32_t len) {
    switch (type) {
    case SIM_REC_HARD_STATE:
        if (len != 24) return false;
        rec->hard.term = sim_disk__get64(p);
        rec->hard.vote = sim_disk__get64(p + 8);
        rec->hard.commit = sim_disk__get64(p + 16);
        rec->has_hard_state = true;
        return true;
    case SIM_REC_ENTRY: return sim_rec__entry(rec, p, len);
    case SIM_REC_SNAPSHOT: return sim_rec__snapshot(rec, p, len);
    default: return false;
    }
}

bool sim_disk_recover(struct sim_disk *disk, struct sim_recovered *out, char *why,
                      size_t why_cap) {
    memset(out, 0, sizeof(*out));
    uint64_t off = 0;
    while (off < disk->len) {
        const uint8_t *rec = disk->bytes + off;
        uint64_t left = disk->len - off;
        uint32_t len = left >= SIM_REC_HEADER ? sim_disk__get32(rec + 4) : 0;
        bool torn = left < SIM_REC_HEADER || left < SIM_REC_HEADER + (uint64_t)len;
        bool crc_ok = !torn && crc32c(0, rec + 4, 5 + (uint64_t)len) == sim_disk__get32(rec);
#ifdef CANARY_ACCEPT_BAD_CRC
        crc_ok = !torn;
#endif
        bool last = !torn && off + SIM_REC_HEADER + len == disk->len;
        if (torn || (!crc_ok && last)) {
            out->truncated_bytes = disk->len - off;
            disk->len = off; /* cut the torn tail, as recovery does on a real file */
            disk->synced = off;
            break;
        }
        if (!crc_ok || !sim_rec__apply(out, rec[8], rec + SIM_REC_HEADER, len)) {
            snprintf(why, why_cap, "corrupt record in wal at offset %llu",
                     (unsigned long long)off);
            return false;
        }
        off += SIM_REC_HEADER + len;
    }
    /* a commit index past the recovered log can only come from a torn write
     * of entries after their hard state: never, since entries go first */
    if (out->has_hard_state && out->hard.commit > sim_rec__last(out)) {
        snprintf(why, why_cap, "hard state commit %llu past the last entry %llu",
                 (unsigned long long)out->hard.commit, (unsigned long long)sim_rec__last(out));
        return false;
    }
    return true;
}
