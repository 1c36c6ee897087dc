/* kv_stream.h: streams (Redis 7.0's stream type), a collection of the
 * keyspace (kv_coll_open() with KV_TYPE_STREAM). See docs/kv.md, "Streams".
 *
 * A stream holds entries in increasing id order (an id is two u64: ms and
 * seq), each a list of field-value pairs, plus its consumer groups. The
 * entries live in packed nodes (struct kv_xnode) of at most
 * KV_STREAM_NODE_ENTRIES entries, kept in a sorted array of node pointers:
 * entries are only ever appended at the end (ids grow), deleted in place
 * (a flag) and trimmed from the front, so the array needs no tree. A node
 * begins a new one exactly when Redis 7.0 begins a new listpack (it counts
 * the bytes Redis's listpack would take, `lp_bytes`), so approximate trims
 * (`~`), which remove whole nodes only, remove what Redis removes.
 *
 * Unlike the other collections a stream may be empty (XDEL of its last
 * entry, XGROUP CREATE ... MKSTREAM): kv_coll_close() never deletes it.
 *
 * Views (struct kv_xentry) borrow the stream's memory until its next
 * change. Every change is counted in the collection and the keyspace as it
 * happens (memory_bytes, payload_bytes: the exact snapshot body). */
#ifndef SHOAL_KV_STREAM_H
#define SHOAL_KV_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"

#define KV_STREAM_NODE_ENTRIES 100u  /* stream-node-max-entries (Redis's default) */
#define KV_STREAM_NODE_BYTES 4096u   /* stream-node-max-bytes (Redis's default) */
#define KV_STREAM_FIELDS_MAX 65536u  /* field-value pairs of one entry */
#define KV_STREAM_NAME_BYTES_MAX 65536u /* a group's or a consumer's name */
#define KV_STREAM_GROUPS_MAX 65536u  /* consumer groups of one stream */
#define KV_STREAM_CONSUMERS_MAX 65536u /* consumers of one group */

struct kv_sid {
    uint64_t ms, seq;
};

static inline int kv_sid_cmp(const struct kv_sid *a, const struct kv_sid *b) {
    if (a->ms != b->ms) return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    return 0;
}

/* One packed node: `data` holds the master fields (those of the node's
 * first entry), then the entries; drawn in kv_stream.c. */
struct kv_xnode {
    struct kv_sid master; /* the id of its first entry (the base of the deltas) */
    struct kv_sid last;   /* the id of its last entry, deleted or not */
    uint32_t bytes, cap;  /* data used, allocated */
    uint32_t lp_bytes;    /* what Redis's listpack of the same entries would take */
    uint16_t live, deleted;
    uint8_t data[];
};

/* A pending entry (Redis's NACK): delivered, not acknowledged yet. */
struct kv_xconsumer;
struct kv_xnack {
    struct kv_sid id;
    int64_t delivery_ms;
    uint64_t delivery_count;
    struct kv_xconsumer *consumer;
};

/* A pending-entries list: nack pointers sorted by id. */
struct kv_xpel {
    struct kv_xnack **v;
    uint64_t n, cap;
};

struct kv_xconsumer {
    int64_t seen_ms;
    struct kv_xpel pel; /* its own nacks (the group's pel owns them) */
    uint32_t name_len;
    uint8_t name[];
};

#define KV_XGROUP_NO_ENTRIES_READ INT64_C(-1) /* SCG_INVALID_ENTRIES_READ */

struct kv_xgroup {
    struct kv_sid last_id;
    int64_t entries_read; /* or KV_XGROUP_NO_ENTRIES_READ */
    struct kv_xpel pel;   /* every nack of the group; owns them */
    struct kv_xconsumer **consumers; /* sorted by name (Redis's rax order) */
    uint32_t n_consumers, cap_consumers;
    uint32_t name_len;
    uint8_t name[];
};

struct kv_stream {
    struct kv_xnode **nodes;
    uint64_t n_nodes, cap_nodes;
    uint64_t length; /* live entries */
    uint64_t entries_added;
    struct kv_sid last_id, first_id, max_deleted;
    struct kv_xgroup **groups; /* sorted by name */
    uint32_t n_groups, cap_groups;
};

/* The stream of a collection of KV_TYPE_STREAM. */
struct kv_coll;
const struct kv_stream *kv_stream_of(const struct kv_coll *c);

/* One field or value. */
struct kv_xbytes {
    const uint8_t *p;
    uint32_t len;
};

/* A view of one entry: fv holds 2 * nfields items (field, value, ...). */
struct kv_xentry {
    struct kv_sid id;
    uint32_t nfields;
    const struct kv_xbytes *fv;
};

/* Appends an entry with id (greater than last_id: the caller checked) and
 * nfields pairs fv[2 * nfields]. KV_OK, KV_ETOOBIG (a field or value over
 * value_bytes_max), KV_ENOMEM (nothing changed). */
int kv_stream_append(struct kv *kv, struct kv_coll *c, struct kv_sid id, uint32_t nfields,
                     const struct kv_xbytes *fv) __attribute__((warn_unused_result));

/* Callback of walks: 0 goes on, anything else stops and is returned. */
typedef int (*kv_xentry_cb)(void *ctx, const struct kv_xentry *e);
/* The live entries with start <= id <= end, in order (reverse: from end
 * down), at most count (0: all). Returns the last callback's non-zero
 * value, 0, or KV_ENOMEM. */
int kv_stream_range(const struct kv_coll *c, struct kv_sid start, struct kv_sid end,
                    bool reverse, uint64_t count, kv_xentry_cb cb, void *ctx);
/* Whether a live entry has this id. */
bool kv_stream_has(const struct kv_coll *c, struct kv_sid id);
/* The id of the last (first) live entry: false when the stream is empty. */
bool kv_stream_edge(const struct kv_coll *c, bool first, struct kv_sid *id);
/* XDEL of one id: true if a live entry was deleted (length, first_id and
 * max_deleted follow, as Redis's xdelCommand keeps them). */
bool kv_stream_delete(struct kv *kv, struct kv_coll *c, struct kv_sid id);

enum kv_xtrim { KV_XTRIM_NONE, KV_XTRIM_MAXLEN, KV_XTRIM_MINID };
struct kv_xtrim_args {
    enum kv_xtrim strategy;
    uint64_t maxlen;
    struct kv_sid minid;
    bool approx;
    uint64_t limit; /* 0: none */
};
/* Redis 7.0's streamTrim(): returns the entries removed. */
uint64_t kv_stream_trim(struct kv *kv, struct kv_coll *c, const struct kv_xtrim_args *a);
/* XSETID: sets last_id, and entries_added and max_deleted when given. */
void kv_stream_set_meta(struct kv *kv, struct kv_coll *c, struct kv_sid last_id,
                        const uint64_t *entries_added, const struct kv_sid *max_deleted);

/* ---- consumer groups ---- */

struct kv_xgroup *kv_stream_group(const struct kv_coll *c, const void *name, size_t len);
/* A new group (NULL and *err KV_ENOTSET if it exists, KV_EFULL, KV_ETOOBIG,
 * KV_ENOMEM). */
struct kv_xgroup *kv_stream_group_create(struct kv *kv, struct kv_coll *c, const void *name,
                                         size_t len, struct kv_sid last_id,
                                         int64_t entries_read, int *err);
/* Destroys a group and its consumers and nacks. */
void kv_stream_group_destroy(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g);
/* Sets a group's last delivered id and read counter. */
void kv_stream_group_set(struct kv_xgroup *g, struct kv_sid last_id, int64_t entries_read);

struct kv_xconsumer *kv_stream_consumer(const struct kv_xgroup *g, const void *name,
                                        size_t len);
/* A new consumer seen at now_ms (NULL and *err: KV_EFULL, KV_ETOOBIG,
 * KV_ENOMEM). */
struct kv_xconsumer *kv_stream_consumer_create(struct kv *kv, struct kv_coll *c,
                                               struct kv_xgroup *g, const void *name,
                                               size_t len, int64_t now_ms, int *err);
/* Deletes a consumer and its pending entries. */
void kv_stream_consumer_delete(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                               struct kv_xconsumer *cons);

/* The index of the first nack with id >= from in a pel. */
uint64_t kv_xpel_seek(const struct kv_xpel *pel, struct kv_sid from);
/* The nack of id in a group's pel, or NULL. */
struct kv_xnack *kv_xpel_find(const struct kv_xpel *pel, struct kv_sid id);

/* Records id as delivered to cons at now_ms (a new nack, or an existing
 * one moved to cons with its count reset to 1, as Redis's
 * streamReplyWithRange does). KV_OK or KV_ENOMEM. */
int kv_stream_nack_deliver(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                           struct kv_xconsumer *cons, struct kv_sid id, int64_t now_ms)
    __attribute__((warn_unused_result));
/* A nack with no consumer yet (XCLAIM FORCE): owned by the group; give it a
 * consumer with kv_stream_nack_move() in the same command. */
struct kv_xnack *kv_stream_nack_force(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                                      struct kv_sid id);
/* Moves a nack to cons (from its consumer, if any). KV_OK or KV_ENOMEM. */
int kv_stream_nack_move(struct kv *kv, struct kv_coll *c, struct kv_xnack *n,
                        struct kv_xconsumer *cons) __attribute__((warn_unused_result));
/* Acknowledges (removes) the nack of id: true if it was pending. */
bool kv_stream_nack_remove(struct kv *kv, struct kv_coll *c, struct kv_xgroup *g,
                           struct kv_sid id);

/* Redis's streamEstimateDistanceFromFirstEverEntry() and
 * streamRangeHasTombstones(). */
int64_t kv_stream_estimate_read(const struct kv_stream *s, const struct kv_sid *id);
bool kv_stream_has_tombstones(const struct kv_stream *s, const struct kv_sid *start);
/* What Redis's XINFO calls radix-tree-nodes: an estimate for shoal (it has
 * no radix tree): 1 when empty, else nodes + 1. */
uint64_t kv_stream_rax_nodes(const struct kv_stream *s);

/* ---- internal to src/kv/ ---- */

/* A new collection's empty stream (counts its fixed snapshot bytes). */
void kv_stream_init(struct kv_coll *c);
void kv_stream_clear(struct kv_coll *c);
uint64_t kv_stream_digest(const struct kv_coll *c, const uint64_t key[2]);
/* The snapshot body (its size is c->payload_bytes; drawn in kv.h). */
void kv_stream_write(const struct kv_coll *c, uint8_t *p);
/* Loads a snapshot body of `len` bytes into the empty stream c, checking
 * everything: KV_OK, KV_ECORRUPT (*what names it), KV_ENOMEM. */
int kv_stream_load(struct kv *kv, struct kv_coll *c, const uint8_t *body, uint64_t len,
                   uint32_t n_nodes, const char **what) __attribute__((warn_unused_result));

#endif
