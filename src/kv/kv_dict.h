/* kv_dict.h: the hash table under the keyspace (internal to src/kv/).
 *
 * Entry: one allocation per key, or per element of a hash, set or sorted
 * set table (kv_coll.c), no pointer but the chain link:
 *
 *   0   8  next      chain link
 *   8   4  a key's entry (KV_ENTRY_KEY): bits 0-18 key length, 19-31 clock bits 0-12;
 *          an element's: field length (32 bits)
 *  12   4  value_len
 *  16   1  bits 0-2 type (enum kv_type), 3-7 a key's clock bits 19-23
 *  17   1  bits 0-1 flags (KV_ENTRY_EXPIRY_SLOT, KV_ENTRY_KEY), 2-7 a key's clock bits 13-18
 *  18   8  expire_ms (only with the slot; KV_NO_EXPIRY = none; unaligned)
 *   .   .  key bytes, then value bytes
 *
 * A small entry has the 8-byte expiry slot only while it has an expiry; an
 * entry of KV_ENTRY_SLOT_ALWAYS_BYTES or more always has it, so setting or
 * clearing the expiry of a large value never copies the value.
 *
 * The access clock (OBJECT IDLETIME) is Redis's LRU clock: 24 bits of
 * seconds, wrapping every 194 days, kept in bits no field needs, so it
 * costs no byte: a key is at most KV_KEY_BYTES_LIMIT (< 2^19) bytes, a type
 * fits 3 bits, the flags 2. An element's field may be as long as a value
 * (512 MiB), so an element keeps all 32 bits of its length and no clock;
 * KV_ENTRY_KEY says which layout an entry has (kv_entry_key_len()). The
 * clock is written only by kv_touch() and when an entry is made; see
 * kv.c for why a read's touch is skipped while a snapshot walk has not
 * yet written the key's bucket.
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
#define KV_ENTRY_KEY 0x02u /* a keyspace entry: 19-bit key length and a clock */
#define KV_ENTRY_KEY_LEN_BITS 19u
#define KV_CLOCK_BITS 24u
#define KV_CLOCK_MAX ((UINT32_C(1) << KV_CLOCK_BITS) - 1)
#define KV_HASH_HINTS 4u /* keys whose hash kv_touch may reuse (struct kv) */
_Static_assert(KV_KEY_BYTES_LIMIT < (1u << KV_ENTRY_KEY_LEN_BITS), "a key's length fits its bits");
_Static_assert(KV_TYPE_COUNT <= 8, "a type fits 3 bits");
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
    union {
        uint32_t field_len; /* an element's */
        struct {
            uint32_t key_len : KV_ENTRY_KEY_LEN_BITS;
            uint32_t clock_lo : 13;
        } key; /* a key's (KV_ENTRY_KEY) */
    } len;     /* read with kv_entry_key_len() */
    uint32_t value_len;
    uint8_t type : 3;
    uint8_t clock_hi : 5;
    uint8_t flags : 2;
    uint8_t clock_mid : 6;
    uint8_t data[];
};
#define KV_ENTRY_HEADER_BYTES (offsetof(struct kv_entry, data))
_Static_assert(KV_ENTRY_HEADER_BYTES == 18, "the clock takes no byte of its own");
_Static_assert(KV_ENTRY_KEY_LEN_BITS + 13 == 32 && 13 + 6 + 5 == KV_CLOCK_BITS,
               "the clock's three parts");

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
    uint32_t clock;         /* access clock of the latest touch: a new entry's (kv_touch) */
    /* The hashes of the last keys looked up, by the address and length of
     * the caller's bytes, so that kv_touch after a command does not hash
     * its keys again. A hint only, no part of the state: kv_touch trusts
     * the entry it finds by comparing bytes, and hashes again if a stale
     * hint finds none. Written by reads too (kv.c, kv__hash_key). */
    struct kv_hash_hint {
        const void *key;
        size_t key_len;
        uint64_t hash;
    } hints[KV_HASH_HINTS];
    uint32_t hint_next;
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
/* The length of a key's key or of an element's field. */
static inline uint32_t kv_entry_key_len(const struct kv_entry *e) {
    return (e->flags & KV_ENTRY_KEY) ? e->len.key.key_len : e->len.field_len;
}
static inline size_t kv_entry_alloc_size(const struct kv_entry *e) {
    return kv_entry_size(kv_entry_key_len(e), e->value_len, e->flags & KV_ENTRY_EXPIRY_SLOT);
}
static inline const uint8_t *kv_entry_key(const struct kv_entry *e) {
    return e->data + ((e->flags & KV_ENTRY_EXPIRY_SLOT) ? 8u : 0u);
}
static inline const uint8_t *kv_entry_value(const struct kv_entry *e) {
    return kv_entry_key(e) + kv_entry_key_len(e);
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
    return kv_entry_key_len(e) == key_len &&
           (key_len == 0 || memcmp(kv_entry_key(e), key, key_len) == 0);
}
static inline void kv_entry_item(const struct kv_entry *e, struct kv_item *out) {
    bool string = e->type == KV_TYPE_STRING;
    out->key = kv_entry_key(e);
    out->key_len = kv_entry_key_len(e);
    out->value = string ? kv_entry_value(e) : NULL;
    out->value_len = string ? e->value_len : 0;
    out->type = e->type;
    out->expire_ms = kv_entry_expire(e);
}

/* ---- The access clock (OBJECT IDLETIME) ---- */

/* The clock at now_ms: seconds, modulo 2^24 (Redis's LRU_CLOCK()). A time
 * before 1970 counts as 1970: a log entry's time comes from its proposer
 * (or, for SHOAL.SCRIPT, from its arguments), and no input may stop a
 * replica. */
static inline uint32_t kv_clock_at(int64_t now_ms) {
    uint64_t ms = now_ms < 0 ? 0 : (uint64_t)now_ms;
    return (uint32_t)(ms / 1000u) & KV_CLOCK_MAX;
}
/* Seconds from clock `then` to clock `now`, across a wrap: exact for an
 * interval under 2^24 s (194 days), that modulo 2^24 beyond. Redis's
 * estimateObjectIdleTime() is one second short after a wrap; this is not. */
static inline uint32_t kv_clock_since(uint32_t then, uint32_t now) {
    assert(then <= KV_CLOCK_MAX);
    assert(now <= KV_CLOCK_MAX);
    return (now - then) & KV_CLOCK_MAX;
}
static inline uint32_t kv_entry_clock(const struct kv_entry *e) {
    assert(e->flags & KV_ENTRY_KEY);
    return (uint32_t)e->len.key.clock_lo | (uint32_t)e->clock_mid << 13 |
           (uint32_t)e->clock_hi << 19;
}
static inline void kv_entry_set_clock(struct kv_entry *e, uint32_t clock) {
    assert(e->flags & KV_ENTRY_KEY);
    assert(clock <= KV_CLOCK_MAX);
    e->len.key.clock_lo = clock & 0x1fffu;
    e->clock_mid = (clock >> 13) & 0x3fu;
    e->clock_hi = (clock >> 19) & 0x1fu;
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
/* Whether the walk has written the bucket(s) a key of this hash may be in:
 * then the writer never reads its entries again. */
bool kv_walk_written(const struct kv_walk *w, uint64_t hash);
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
