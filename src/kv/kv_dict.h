/* kv_dict.h: the hash table under the keyspace (internal to src/kv/).
 *
 * Entry: one allocation per key, no pointer but the chain link:
 *
 *   0   8  next      chain link
 *   8   4  key_len
 *  12   4  value_len
 *  16   1  type      enum kv_type
 *  17   1  flags     KV_ENTRY_EXPIRY_SLOT
 *  18   8  expire_ms (only with the slot; KV_NO_EXPIRY = none; unaligned)
 *   .   .  key bytes, then value bytes
 *
 * A small entry has the 8-byte expiry slot only while it has an expiry; an
 * entry of KV_ENTRY_SLOT_ALWAYS_BYTES or more always has it, so setting or
 * clearing the expiry of a large value never copies the value.
 *
 * Tables: t[0] holds the keys; while resizing, t[1] is the new table, new
 * keys go there, and buckets below rehash_index of t[0] are already moved
 * (empty). Sizes are 0 (no table yet) or powers of two in
 * [KV_DICT_SIZE_MIN, KV_BUCKETS_LIMIT]. A key is in bucket hash & (size - 1).
 */
#ifndef SHOAL_KV_DICT_H
#define SHOAL_KV_DICT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kv/kv.h"

#define KV_ENTRY_EXPIRY_SLOT 0x01u
#define KV_ENTRY_SLOT_ALWAYS_BYTES 256u
#define KV_DICT_SIZE_MIN 4u
/* Shrink when fewer than 1 key per KV_DICT_SHRINK_RATIO buckets. */
#define KV_DICT_SHRINK_RATIO 10u
/* One resize changes the size by at most this factor, so one scan step
 * visits at most 1 + KV_DICT_RESIZE_RATIO_MAX buckets. */
#define KV_DICT_RESIZE_RATIO_MAX 16u
/* A rehash step of n buckets skips at most this many empty ones per bucket.
 * Redis skips 10; skipping a null pointer is cheap and sequential, and a
 * larger figure drains a sparse old table (a shrink while keys are deleted)
 * sooner, which keeps kv_dict_sample() fair. */
#define KV_DICT_EMPTY_VISITS 100u
/* While resizing is paused (kv_pause_resize), the table still grows at this
 * load factor (Redis's dict_force_resize_ratio). */
#define KV_DICT_FORCE_RESIZE_RATIO 5u

struct kv_entry {
    struct kv_entry *next;
    uint32_t key_len;
    uint32_t value_len;
    uint8_t type;
    uint8_t flags;
    uint8_t data[];
};
#define KV_ENTRY_HEADER_BYTES (offsetof(struct kv_entry, data))

struct kv_table {
    struct kv_entry **buckets;
    uint64_t size; /* 0 or a power of two */
    uint64_t used; /* entries in this table */
};

/* One hash table: the keyspace's, or a hash's or a set's (kv_coll.h). */
struct kv_dict {
    struct kv_table t[2];
    bool rehashing;
    bool resize_paused;    /* kv_pause_resize(): a forked snapshot writer shares the pages */
    bool fixed;            /* a snapshot walk reads the buckets: no resize, no rehash step */
    uint64_t rehash_index; /* t[0] buckets below it are moved */
    uint64_t seed[2];      /* SipHash key */
    uint64_t table_bytes;  /* bytes of the bucket arrays */
};

struct kv {
    struct kv_config config;
    struct kv_dict dict;
    uint64_t expires;       /* entries with an expiry */
    uint64_t data_bytes;    /* sum of key_len + value payload (kv_snapshot_size) */
    uint64_t memory_bytes;  /* bytes asked of the allocator, bucket arrays aside */
    uint64_t expire_cursor; /* kv_expired_sample()'s scan cursor */
    struct kv_walk *walk;   /* a snapshot being written (kv_snapshot.c), or NULL */
    struct kv_lib *libs;    /* function libraries, by name (kv_func.c) */
    uint32_t n_libs;
    uint64_t libs_bytes;    /* their records' bytes */
    uint64_t prefetches[2]; /* kv_prefetch() calls: bucket stage, entry stage */
};

/* Where an entry is: the link that points to it and the table it is in. */
struct kv_pos {
    struct kv_entry **link;
    int table;
};

/* ---- Entries ---- */

static inline size_t kv_entry_size(uint32_t key_len, uint32_t value_len, bool slot) {
    size_t size = KV_ENTRY_HEADER_BYTES + (slot ? 8u : 0u) + (size_t)key_len + value_len;
    return size < sizeof(struct kv_entry) ? sizeof(struct kv_entry) : size;
}
static inline bool kv_entry_wants_slot(uint32_t key_len, uint32_t value_len, bool expiry) {
    return expiry || (uint64_t)key_len + value_len >= KV_ENTRY_SLOT_ALWAYS_BYTES;
}
static inline size_t kv_entry_alloc_size(const struct kv_entry *e) {
    return kv_entry_size(e->key_len, e->value_len, e->flags & KV_ENTRY_EXPIRY_SLOT);
}
static inline const uint8_t *kv_entry_key(const struct kv_entry *e) {
    return e->data + ((e->flags & KV_ENTRY_EXPIRY_SLOT) ? 8u : 0u);
}
static inline const uint8_t *kv_entry_value(const struct kv_entry *e) {
    return kv_entry_key(e) + e->key_len;
}
static inline int64_t kv_entry_expire(const struct kv_entry *e) {
    if (!(e->flags & KV_ENTRY_EXPIRY_SLOT)) return KV_NO_EXPIRY;
    int64_t expire_ms;
    memcpy(&expire_ms, e->data, sizeof(expire_ms));
    assert(expire_ms >= KV_NO_EXPIRY);
    return expire_ms;
}
static inline bool kv_entry_expired(const struct kv_entry *e, int64_t now_ms) {
    int64_t expire_ms = kv_entry_expire(e);
    return expire_ms != KV_NO_EXPIRY && expire_ms <= now_ms;
}
static inline bool kv_entry_key_is(const struct kv_entry *e, const void *key, size_t key_len) {
    return e->key_len == key_len && (key_len == 0 || memcmp(kv_entry_key(e), key, key_len) == 0);
}
static inline void kv_entry_item(const struct kv_entry *e, struct kv_item *out) {
    bool string = e->type == KV_TYPE_STRING;
    out->key = kv_entry_key(e);
    out->key_len = e->key_len;
    out->value = string ? kv_entry_value(e) : NULL;
    out->value_len = string ? e->value_len : 0;
    out->type = e->type;
    out->expire_ms = kv_entry_expire(e);
}

/* ---- Hashing ---- */

/* SipHash-c-d of data under the 128-bit key k (c = 1, d = 3 for the table;
 * exposed with its round counts so tests can check it against SipHash-2-4's
 * published vector). */
uint64_t kv_dict_siphash(const uint64_t k[2], const void *data, size_t len, int c_rounds,
                         int d_rounds);
uint64_t kv_dict_hash(const struct kv_dict *d, const void *key, size_t key_len);

/* ---- Table ---- */

void kv_dict_init(struct kv_dict *d, const uint64_t seed[2]);
/* Frees every entry and both tables; the dict is empty and table-less. */
typedef void (*kv_dict_free_fn)(void *ctx, struct kv_entry *e);
void kv_dict_clear(struct kv_dict *d, kv_dict_free_fn free_fn, void *ctx);
/* Finds the entry for key; false if absent. */
bool kv_dict_find(struct kv_dict *d, uint64_t hash, const void *key, size_t key_len,
                  struct kv_pos *pos);
/* Prefetch hints for a batch of lookups (no effect on the result of any
 * call): the bucket a hash falls in, then the first entry of its chain once
 * the bucket is in cache. Both are no-ops on an empty table. */
void kv_dict_prefetch_bucket(const struct kv_dict *d, uint64_t hash);
void kv_dict_prefetch_entry(const struct kv_dict *d, uint64_t hash);
const struct kv_entry *kv_dict_lookup(const struct kv_dict *d, uint64_t hash, const void *key,
                                      size_t key_len);
/* Links a new entry (whose key is absent) in; grows the table first if
 * needed. KV_ENOMEM only if there is no table at all and none could be
 * allocated (a failed growth just leaves longer chains). */
int kv_dict_insert(struct kv_dict *d, struct kv_entry *e, uint64_t hash)
    __attribute__((warn_unused_result));
/* Unlinks the entry at pos (the caller frees it); may start a shrink. */
struct kv_entry *kv_dict_unlink(struct kv_dict *d, struct kv_pos pos);
/* Puts `fresh` where the entry at pos is (same key); returns the old one. */
struct kv_entry *kv_dict_replace(struct kv_pos pos, struct kv_entry *fresh);
/* Moves up to n buckets of a resize in progress; true if still resizing. */
bool kv_dict_rehash(struct kv_dict *d, uint32_t n);
/* Sizes an empty, table-less dict for n keys (snapshot load). */
int kv_dict_reserve(struct kv_dict *d, uint64_t n) __attribute__((warn_unused_result));

typedef void (*kv_dict_visit_fn)(void *ctx, const struct kv_entry *e);
/* One reverse-binary scan step from cursor v: visits every entry of the
 * cursor's bucket (both tables while resizing); returns the next cursor (0 at
 * the end) and adds the buckets visited to *buckets (may be NULL). */
uint64_t kv_dict_scan_step(const struct kv_dict *d, uint64_t v, kv_dict_visit_fn fn, void *ctx,
                           uint32_t *buckets);
/* Calls fn for every entry (expired ones too) until it returns non-zero. */
int kv_dict_foreach(const struct kv_dict *d, int (*fn)(void *ctx, const struct kv_entry *e),
                    void *ctx);
/* Collects up to max (>= 1) entries walking forward from a random bucket;
 * returns how many (0 only if the dict is empty). */
uint32_t kv_dict_sample(const struct kv_dict *d, struct rand *rng, const struct kv_entry **out,
                        uint32_t max);

/* ---- A snapshot walk in progress (kv_snapshot.c) ----
 * Every change to an entry, or to the chain of its bucket, is preceded by
 * kv_walk_touch() with the key's hash (kv.c does it where it finds a key
 * for a write): the walk writes the bucket as it was before the change. */
void kv_walk_touch(struct kv_walk *w, uint64_t hash);
void kv_walk_detach(struct kv_walk *w);

/* ---- Entries and accounting (kv.c) ---- */

bool kv_config_ok(const struct kv_config *config);
/* An entry whose key and value bytes the caller fills (kv_entry_key() points
 * at key_len + value_len writable bytes); counted in the keyspace's memory. */
struct kv_entry *kv_entry_alloc(struct kv *kv, uint32_t key_len, uint32_t value_len,
                                uint8_t type, int64_t expire_ms);
struct kv_entry *kv_entry_new(struct kv *kv, const void *key, uint32_t key_len,
                              const void *value, uint32_t value_len, uint8_t type,
                              int64_t expire_ms);
void kv_entry_free(struct kv *kv, struct kv_entry *e);
/* The live entry of key at now_ms, or NULL (kv.c). */
const struct kv_entry *kv_entry_lookup(const struct kv *kv, const void *key, size_t key_len,
                                       int64_t now_ms);

#endif
