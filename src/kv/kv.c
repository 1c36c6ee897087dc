/* kv.c: the keyspace's operations over the hash table of kv_dict.c. See kv.h
 * for the contract and docs/kv.md for the design. */
#include <assert.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_coll.h"
#include "kv/kv_dict.h"
#include "util/rand.h"

/* kv_random_key(): entries per sample and samples per call. */
#define KV__RANDOM_SAMPLE 16u
#define KV__RANDOM_TRIES 32u

const char *kv_strerror(int err) {
    switch (err) {
    case KV_OK: return "ok";
    case KV_ENOTFOUND: return "no such key";
    case KV_ENOTSET: return "condition not met";
    case KV_EINVAL: return "invalid argument";
    case KV_ENOMEM: return "out of memory";
    case KV_ETOOBIG: return "key or value too big";
    case KV_EFULL: return "too many keys";
    case KV_ECORRUPT: return "corrupt snapshot";
    case KV_EVERSION: return "unknown snapshot version";
    case KV_EIO: return "snapshot callback failed";
    case KV_EWRONGTYPE: return "wrong type";
    default: return "unknown error";
    }
}

void kv_config_default(struct kv_config *config) {
    memset(config, 0, sizeof(*config));
    config->key_bytes_max = KV_KEY_BYTES_DEFAULT;
    config->value_bytes_max = KV_VALUE_BYTES_LIMIT;
    config->keys_max = KV_KEYS_LIMIT;
    config->zset_pack_entries = KV_ZSET_PACK_ENTRIES;
    config->zset_pack_member_bytes = KV_ZSET_PACK_MEMBER_BYTES;
    config->hash_pack_entries = KV_HASH_PACK_ENTRIES;
    config->hash_pack_value_bytes = KV_HASH_PACK_VALUE_BYTES;
    config->set_intset_entries = KV_SET_INTSET_ENTRIES;
    config->set_pack_entries = KV_SET_PACK_ENTRIES;
    config->set_pack_value_bytes = KV_SET_PACK_VALUE_BYTES;
    config->list_node_bytes = KV_LIST_NODE_BYTES;
    config->list_node_items = 0;
    config->clock_ms = 0;
}

static uint32_t kv__min(uint32_t a, uint32_t b) { return a < b ? a : b; }

void kv_set_layout(struct kv *kv, const struct kv_config *from) {
    struct kv_config *c = &kv->config;
    kv_set_zset_pack(kv, from->zset_pack_entries, from->zset_pack_member_bytes);
    c->hash_pack_entries = kv__min(from->hash_pack_entries, KV_HASH_PACK_ENTRIES);
    c->hash_pack_value_bytes = kv__min(from->hash_pack_value_bytes, KV_HASH_PACK_VALUE_BYTES);
    c->set_intset_entries = kv__min(from->set_intset_entries, KV_SET_INTSET_ENTRIES);
    c->set_pack_entries = kv__min(from->set_pack_entries, KV_SET_PACK_ENTRIES);
    c->set_pack_value_bytes = kv__min(from->set_pack_value_bytes, KV_SET_PACK_VALUE_BYTES);
    c->list_node_bytes = kv__min(from->list_node_bytes, KV_LIST_NODE_BYTES_MAX);
    if (c->list_node_bytes == 0) c->list_node_bytes = KV_LIST_NODE_BYTES;
    c->list_node_items = from->list_node_items;
    assert(kv_config_ok(c));
}

void kv_list_node_size(int64_t size, uint32_t *node_bytes, uint32_t *node_items) {
    if (size >= 0) { /* items a node, under Redis's 8 KB safety limit; 0 is one */
        *node_bytes = KV_LIST_NODE_BYTES;
        *node_items = size == 0 ? 1 : size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
        return;
    }
    int64_t level = -size > 5 ? 5 : -size; /* below -5 as -5, as Redis */
    *node_bytes = 4096u << (level - 1);
    *node_items = 0;
}

void kv_set_zset_pack(struct kv *kv, uint32_t entries, uint32_t member_bytes) {
    kv->config.zset_pack_entries = entries < KV_ZSET_PACK_ENTRIES ? entries : KV_ZSET_PACK_ENTRIES;
    kv->config.zset_pack_member_bytes =
        member_bytes < KV_ZSET_PACK_MEMBER_BYTES ? member_bytes : KV_ZSET_PACK_MEMBER_BYTES;
}

bool kv_config_ok(const struct kv_config *c) {
    return c->key_bytes_max >= 1 && c->key_bytes_max <= KV_KEY_BYTES_LIMIT &&
           c->value_bytes_max <= KV_VALUE_BYTES_LIMIT && c->keys_max >= 1 &&
           c->keys_max <= KV_KEYS_LIMIT && c->zset_pack_entries <= KV_ZSET_PACK_ENTRIES &&
           c->zset_pack_member_bytes <= KV_ZSET_PACK_MEMBER_BYTES &&
           c->hash_pack_entries <= KV_HASH_PACK_ENTRIES &&
           c->hash_pack_value_bytes <= KV_HASH_PACK_VALUE_BYTES &&
           c->set_intset_entries <= KV_SET_INTSET_ENTRIES &&
           c->set_pack_entries <= KV_SET_PACK_ENTRIES &&
           c->set_pack_value_bytes <= KV_SET_PACK_VALUE_BYTES && c->list_node_bytes >= 1 &&
           c->list_node_bytes <= KV_LIST_NODE_BYTES_MAX;
}

struct kv *kv_create(const struct kv_config *config) {
    if (config == NULL || !kv_config_ok(config)) return NULL;
    struct kv *kv = calloc(1, sizeof(*kv));
    if (kv == NULL) return NULL;
    kv->config = *config;
    kv->clock = kv_clock_at(config->clock_ms);
    kv_dict_init(&kv->dict, config->hash_seed);
    kv->memory_bytes = sizeof(*kv);
    return kv;
}

static void kv__free_cb(void *ctx, struct kv_entry *e) { kv_entry_free(ctx, e); }

/* Frees every key and the tables. */
static void kv__clear(struct kv *kv) {
    kv_dict_clear(&kv->dict, kv__free_cb, kv);
    kv->expire_cursor = 0;
    assert(kv->expires == 0);
    assert(kv->data_bytes == 0);
}

void kv_destroy(struct kv *kv) {
    if (kv == NULL) return;
    assert(kv->walk == NULL); /* kv_walk_end() first */
    kv__clear(kv);
    kv_lib_flush(kv);
    assert(kv->memory_bytes == sizeof(*kv));
    free(kv);
}

const char *kv_type_name(uint8_t type) {
    switch (type) {
    case KV_TYPE_STRING: return "string";
    case KV_TYPE_HASH: return "hash";
    case KV_TYPE_SET: return "set";
    case KV_TYPE_LIST: return "list";
    case KV_TYPE_ZSET: return "zset";
    case KV_TYPE_STREAM: return "stream";
    default: return "unknown";
    }
}

/* ---- Entries ---- */

struct kv_entry *kv_entry_alloc(struct kv *kv, uint32_t key_len, uint32_t value_len,
                                uint8_t type, int64_t expire_ms) {
    assert(expire_ms >= KV_NO_EXPIRY);
    assert(type < KV_TYPE_COUNT);
    assert(key_len <= KV_KEY_BYTES_LIMIT); /* fits KV_ENTRY_KEY_LEN_BITS */
    bool slot = kv_entry_wants_slot(key_len, value_len, expire_ms != KV_NO_EXPIRY);
    size_t size = kv_entry_size(key_len, value_len, slot);
    struct kv_entry *e = malloc(size);
    if (e == NULL) return NULL;
    e->next = NULL;
    e->len.key.key_len = key_len;
    e->value_len = value_len;
    e->type = type;
    e->flags = KV_ENTRY_KEY | (slot ? KV_ENTRY_EXPIRY_SLOT : 0);
    kv_entry_set_clock(e, kv->clock); /* a command touches it with its own time after */
    assert(kv_entry_key_len(e) == key_len);
    if (slot) memcpy(e->data, &expire_ms, sizeof(expire_ms));
    kv->memory_bytes += size;
    kv->data_bytes += (uint64_t)key_len + (kv_type_is_coll(type) ? 0 : value_len);
    kv->expires += expire_ms != KV_NO_EXPIRY;
    return e;
}

struct kv_entry *kv_entry_new(struct kv *kv, const void *key, uint32_t key_len,
                              const void *value, uint32_t value_len, uint8_t type,
                              int64_t expire_ms) {
    struct kv_entry *e = kv_entry_alloc(kv, key_len, value_len, type, expire_ms);
    if (e == NULL) return NULL;
    uint8_t *p = (uint8_t *)kv_entry_key(e);
    if (key_len > 0) memcpy(p, key, key_len);
    if (value_len > 0) memcpy(p + key_len, value, value_len);
    return e;
}

void kv_entry_free_shell(struct kv *kv, struct kv_entry *e) {
    size_t size = kv_entry_alloc_size(e);
    uint64_t data = (uint64_t)kv_entry_key_len(e) + (kv_type_is_coll(e->type) ? 0 : e->value_len);
    assert(kv->memory_bytes >= size);
    assert(kv->data_bytes >= data);
    kv->memory_bytes -= size;
    kv->data_bytes -= data;
    kv->expires -= kv_entry_expire(e) != KV_NO_EXPIRY;
    free(e);
}

void kv_entry_free(struct kv *kv, struct kv_entry *e) {
    if (kv_type_is_coll(e->type)) kv_coll_free(kv, kv_entry_coll(e));
    kv_entry_free_shell(kv, e);
}

/* Gives the entry at pos a new value, type and expiry: in place when the
 * layout is unchanged, else by a new allocation. `value` may point into the
 * entry itself: then the value (a collection's pointer too) moves to the new
 * entry; otherwise a collection the entry held is freed. */
static int kv__overwrite(struct kv *kv, struct kv_pos pos, const void *value,
                         uint32_t value_len, uint8_t type, int64_t expire_ms) {
    struct kv_entry *e = *pos.link;
    bool own = value == (const void *)kv_entry_value(e);
    assert(!own || (type == e->type && value_len == e->value_len));
    bool slot = kv_entry_wants_slot(kv_entry_key_len(e), value_len, expire_ms != KV_NO_EXPIRY);
    bool has_slot = (e->flags & KV_ENTRY_EXPIRY_SLOT) != 0;
    if (kv_type_is_coll(e->type) && !own) {
        struct kv_entry *fresh =
            kv_entry_new(kv, kv_entry_key(e), kv_entry_key_len(e), value, value_len, type,
                         expire_ms);
        if (fresh == NULL) return KV_ENOMEM;
        kv_entry_free(kv, kv_dict_replace(pos, fresh));
        return KV_OK;
    }
    if (value_len == e->value_len && slot == has_slot && type == e->type) {
        if (slot) {
            kv->expires -= kv_entry_expire(e) != KV_NO_EXPIRY;
            kv->expires += expire_ms != KV_NO_EXPIRY;
            memcpy(e->data, &expire_ms, sizeof(expire_ms));
        }
        if (value_len > 0) memmove((uint8_t *)kv_entry_value(e), value, value_len);
        e->type = type;
        return KV_OK;
    }
    struct kv_entry *fresh =
        kv_entry_new(kv, kv_entry_key(e), kv_entry_key_len(e), value, value_len, type,
                     expire_ms);
    if (fresh == NULL) return KV_ENOMEM;
    struct kv_entry *old = kv_dict_replace(pos, fresh);
    if (own) kv_entry_free_shell(kv, old);
    else kv_entry_free(kv, old);
    return KV_OK;
}

/* The key's hash, remembered as a hint for kv_touch (struct kv). A read
 * writes the hint through its const pointer: a keyspace is never defined
 * const, and the hint is no part of what reads promise to leave alone (the
 * content, the table). */
static uint64_t kv__hash_key(const struct kv *kv, const void *key, size_t key_len) {
    uint64_t hash = kv_dict_hash(&kv->dict, key, key_len);
    struct kv *hinted = (struct kv *)kv;
    hinted->hints[hinted->hint_next % KV_HASH_HINTS] = (struct kv_hash_hint){key, key_len, hash};
    hinted->hint_next++;
    return hash;
}

/* Finds key for a write, after one step of any resize in progress. A key
 * over the limit cannot be stored, so it is simply not found. */
static bool kv__find_for_write(struct kv *kv, const void *key, size_t key_len,
                               struct kv_pos *pos, uint64_t *hash) {
    assert(key != NULL || key_len == 0);
    (void)kv_dict_rehash(&kv->dict, 1);
    if (key_len > kv->config.key_bytes_max) return false;
    *hash = kv__hash_key(kv, key, key_len);
#ifndef CANARY_KV_WALK_NO_TOUCH /* canary: changes land in the snapshot being written */
    if (kv->walk != NULL) kv_walk_touch(kv->walk, *hash); /* before any change */
#endif
    return kv_dict_find(&kv->dict, *hash, key, key_len, pos);
}

static bool kv__live_at(struct kv_pos pos, bool found, int64_t now_ms) {
    return found && !kv_entry_expired(*pos.link, now_ms);
}

/* ---- Reads ---- */

static const struct kv_entry *kv__lookup(const struct kv *kv, const void *key, size_t key_len,
                                         int64_t now_ms) {
    assert(key != NULL || key_len == 0);
    if (key_len > kv->config.key_bytes_max) return NULL;
    uint64_t hash = kv__hash_key(kv, key, key_len);
    const struct kv_entry *e = kv_dict_lookup(&kv->dict, hash, key, key_len);
    if (e == NULL || kv_entry_expired(e, now_ms)) return NULL;
    return e;
}

const struct kv_entry *kv_entry_lookup(const struct kv *kv, const void *key, size_t key_len,
                                       int64_t now_ms) {
    return kv__lookup(kv, key, key_len, now_ms);
}

void kv_prefetch(struct kv *kv, const void *key, size_t key_len, int stage) {
    kv->prefetches[stage != 0]++;
    /* a long key costs more to hash again than a miss */
    if (key_len > KV_PREFETCH_KEY_BYTES_MAX || key_len > kv->config.key_bytes_max) return;
    uint64_t hash = kv_dict_hash(&kv->dict, key, key_len);
    if (stage == 0) kv_dict_prefetch_bucket(&kv->dict, hash);
    else kv_dict_prefetch_entry(&kv->dict, hash);
}

uint64_t kv_prefetches(const struct kv *kv, int stage) { return kv->prefetches[stage != 0]; }

int kv_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
           struct kv_item *out) {
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    if (out != NULL) kv_entry_item(e, out);
    return KV_OK;
}

bool kv_exists(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    return kv__lookup(kv, key, key_len, now_ms) != NULL;
}

int kv_expire_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                  int64_t *expire_ms) {
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    *expire_ms = kv_entry_expire(e);
    return KV_OK;
}

/* The touch of a read races with a snapshot writer thread that reads the
 * same entry: the clock shares its words with the key length, the type and
 * the flags, which the writer reads from any bucket it has not written yet
 * (kv_snapshot.c). Such a touch is skipped: routing it through
 * kv_walk_touch() would copy the bucket's records aside on every read, and
 * the clock is no part of what a snapshot holds. The cost is a clock that
 * misses the reads of one snapshot's duration for keys the walk had not
 * reached; a write, and any access after the walk passed, sets it. A
 * bucket the walk has written is never read by the writer again, so it is
 * the keyspace thread's alone. */
bool kv_touch(struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    return kv_touch_idle(kv, key, key_len, now_ms, 0);
}

bool kv_touch_idle(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                   uint64_t idle_s) {
    assert(key != NULL || key_len == 0);
    if (key_len > kv->config.key_bytes_max) return false;
    kv->clock = kv_clock_at(now_ms);
    uint32_t clock = (kv->clock - (uint32_t)(idle_s & KV_CLOCK_MAX)) & KV_CLOCK_MAX;
    uint64_t hash = 0;
    bool hinted = false;
    for (uint32_t i = 1; i <= KV_HASH_HINTS && !hinted; i++) { /* the newest first */
        const struct kv_hash_hint *h = &kv->hints[(kv->hint_next - i) % KV_HASH_HINTS];
        if (h->key == key && h->key_len == key_len) {
            hash = h->hash;
            hinted = true;
        }
    }
    struct kv_pos pos;
    bool found = hinted && kv_dict_find(&kv->dict, hash, key, key_len, &pos);
    if (!found) { /* no hint, or a stale one (other bytes at that address) */
        hash = kv_dict_hash(&kv->dict, key, key_len);
        found = kv_dict_find(&kv->dict, hash, key, key_len, &pos);
    }
    if (!found) return false;
    /* A stale hint that found the entry (its bytes compared equal) names
     * the entry's bucket in the table that holds it; in the other table
     * it may name another bucket, which only makes the walk check below
     * stricter. */
    struct kv_entry *e = *pos.link;
    if (kv_entry_expired(e, now_ms)) return false;
    if (kv_entry_clock(e) == clock) return true; /* no store: the line stays clean */
    if (kv->walk != NULL && !kv_walk_written(kv->walk, hash)) return true;
    kv_entry_set_clock(e, clock);
    assert(kv_entry_clock(e) == clock);
    return true;
}

int kv_idle_seconds(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    uint32_t *seconds) {
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    *seconds = kv_clock_since(kv_entry_clock(e), kv_clock_at(now_ms));
    return KV_OK;
}

uint64_t kv_count(const struct kv *kv) { return kv->dict.t[0].used + kv->dict.t[1].used; }

uint64_t kv_count_expires(const struct kv *kv) { return kv->expires; }

uint64_t kv_memory_bytes(const struct kv *kv) {
    return kv->memory_bytes + kv->dict.table_bytes;
}

struct kv__count_ctx {
    int64_t now_ms;
    uint64_t live;
};

static int kv__count_live_fn(void *ctx, const struct kv_entry *e) {
    struct kv__count_ctx *c = ctx;
    c->live += !kv_entry_expired(e, c->now_ms);
    return 0;
}

uint64_t kv_count_live(const struct kv *kv, int64_t now_ms) {
    struct kv__count_ctx c = {.now_ms = now_ms, .live = 0};
    (void)kv_dict_foreach(&kv->dict, kv__count_live_fn, &c);
    assert(c.live <= kv_count(kv));
    return c.live;
}

void kv_stats(const struct kv *kv, struct kv_stats *out) {
    out->keys = kv_count(kv);
    out->expires = kv->expires;
    out->data_bytes = kv->data_bytes;
    out->memory_bytes = kv_memory_bytes(kv);
    out->table_bytes = kv->dict.table_bytes;
    out->buckets[0] = kv->dict.t[0].size;
    out->buckets[1] = kv->dict.t[1].size;
    out->rehashing = kv->dict.rehashing;
}

/* A fixed key, so that the digest does not depend on the replica's seed. */
static const uint64_t kv__digest_key[2] = {UINT64_C(0x73686f616c2d6b76),
                                           UINT64_C(0x6469676573742d31)};

static void kv__put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int kv__digest_fn(void *ctx, const struct kv_entry *e) {
    uint64_t *sum = ctx;
    uint8_t buf[40];
    uint64_t value = kv_type_is_coll(e->type)
                         ? kv_coll_digest(kv_entry_coll(e), kv__digest_key)
                         : kv_dict_siphash(kv__digest_key, kv_entry_value(e), e->value_len, 1, 3);
    kv__put64(buf, kv_dict_siphash(kv__digest_key, kv_entry_key(e), kv_entry_key_len(e), 1, 3));
    kv__put64(buf + 8, value);
    kv__put64(buf + 16, (uint64_t)kv_entry_expire(e));
    kv__put64(buf + 24, e->type);
    kv__put64(buf + 32, ((uint64_t)kv_entry_key_len(e) << 32) | e->value_len);
    *sum += kv_dict_siphash(kv__digest_key, buf, sizeof(buf), 1, 3);
    return 0;
}

uint64_t kv_key_digest(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return 0;
    uint64_t sum = 0;
    (void)kv__digest_fn(&sum, e);
    return sum != 0 ? sum : 1;
}

uint64_t kv_digest(const struct kv *kv) {
    uint64_t sum = kv_count(kv);
    (void)kv_dict_foreach(&kv->dict, kv__digest_fn, &sum);
    return sum;
}

int kv_random_key(const struct kv *kv, struct rand *rng, int64_t now_ms, struct kv_item *out) {
    const struct kv_entry *sample[KV__RANDOM_SAMPLE];
    for (uint32_t t = 0; t < KV__RANDOM_TRIES; t++) {
        uint32_t n = kv_dict_sample(&kv->dict, rng, sample, KV__RANDOM_SAMPLE);
        if (n == 0) return KV_ENOTFOUND;
        uint32_t start = (uint32_t)rand_below(rng, n);
        for (uint32_t i = 0; i < n; i++) {
            const struct kv_entry *e = sample[(start + i) % n];
            if (kv_entry_expired(e, now_ms)) continue;
            kv_entry_item(e, out);
            return KV_OK;
        }
    }
    return KV_ENOTFOUND;
}

/* ---- Iteration ---- */

struct kv__scan_ctx {
    kv_scan_cb cb;
    void *ctx;
    int64_t now_ms;
    uint32_t reported;
};

static void kv__scan_visit(void *ctx, const struct kv_entry *e) {
    struct kv__scan_ctx *s = ctx;
    if (kv_entry_expired(e, s->now_ms)) return;
    struct kv_item item;
    kv_entry_item(e, &item);
    s->cb(s->ctx, &item);
    s->reported++;
}

uint64_t kv_scan(const struct kv *kv, uint64_t cursor, uint32_t count, int64_t now_ms,
                 kv_scan_cb cb, void *ctx) {
    if (count == 0) count = 1;
    if (count > KV_SCAN_COUNT_MAX) count = KV_SCAN_COUNT_MAX;
    struct kv__scan_ctx s = {.cb = cb, .ctx = ctx, .now_ms = now_ms, .reported = 0};
    uint32_t steps_max = count * KV_SCAN_STEPS_PER_COUNT;
    uint32_t steps = 0;
    do {
        cursor = kv_dict_scan_step(&kv->dict, cursor, kv__scan_visit, &s, NULL);
        steps++;
    } while (cursor != 0 && s.reported < count && steps < steps_max);
    return cursor;
}

struct kv__each_ctx {
    kv_item_cb cb;
    void *ctx;
    int64_t now_ms;
    const uint8_t *pattern; /* NULL: every key */
    size_t pattern_len;
};

static int kv__each_fn(void *ctx, const struct kv_entry *e) {
    struct kv__each_ctx *c = ctx;
    if (kv_entry_expired(e, c->now_ms)) return 0;
    if (c->pattern != NULL &&
        !kv_glob_match(c->pattern, c->pattern_len, kv_entry_key(e), kv_entry_key_len(e), false)) {
        return 0;
    }
    struct kv_item item;
    kv_entry_item(e, &item);
    return c->cb(c->ctx, &item);
}

int kv_foreach(const struct kv *kv, int64_t now_ms, kv_item_cb cb, void *ctx) {
    struct kv__each_ctx c = {.cb = cb, .ctx = ctx, .now_ms = now_ms, .pattern = NULL};
    return kv_dict_foreach(&kv->dict, kv__each_fn, &c);
}

static bool kv__glob_is_literal(const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '*' || p[i] == '?' || p[i] == '[' || p[i] == '\\') return false;
    }
    return true;
}

int kv_keys(const struct kv *kv, const void *pattern, size_t pattern_len, int64_t now_ms,
            kv_item_cb cb, void *ctx) {
    const uint8_t *p = pattern;
    assert(p != NULL || pattern_len == 0);
    if (pattern_len == 1 && p[0] == '*') return kv_foreach(kv, now_ms, cb, ctx);
    if (kv__glob_is_literal(p, pattern_len)) {
        struct kv_item item;
        if (kv_get(kv, p, pattern_len, now_ms, &item) != KV_OK) return 0;
        return cb(ctx, &item);
    }
    struct kv__each_ctx c = {
        .cb = cb, .ctx = ctx, .now_ms = now_ms, .pattern = p, .pattern_len = pattern_len};
    return kv_dict_foreach(&kv->dict, kv__each_fn, &c);
}

/* ---- Writes ---- */

static int kv__set_check(const struct kv *kv, const void *key, size_t key_len,
                         const void *value, size_t value_len, int64_t expire_ms,
                         unsigned flags) {
    if ((key == NULL && key_len > 0) || (value == NULL && value_len > 0)) return KV_EINVAL;
    if (flags & ~(unsigned)(KV_SET_NX | KV_SET_XX | KV_SET_KEEPTTL)) return KV_EINVAL;
    if ((flags & KV_SET_NX) && (flags & KV_SET_XX)) return KV_EINVAL;
    if ((flags & KV_SET_KEEPTTL) && expire_ms != KV_NO_EXPIRY) return KV_EINVAL;
    if (expire_ms < KV_NO_EXPIRY) return KV_EINVAL;
    if (key_len > kv->config.key_bytes_max) return KV_ETOOBIG;
    if (value_len > kv->config.value_bytes_max) return KV_ETOOBIG;
    return KV_OK;
}

static int kv__add(struct kv *kv, const void *key, uint32_t key_len, const void *value,
                   uint32_t value_len, uint8_t type, int64_t expire_ms, uint64_t hash) {
    if (kv_count(kv) >= kv->config.keys_max) return KV_EFULL;
    struct kv_entry *e = kv_entry_new(kv, key, key_len, value, value_len, type, expire_ms);
    if (e == NULL) return KV_ENOMEM;
    int rc = kv_dict_insert(&kv->dict, e, hash);
    if (rc != KV_OK) kv_entry_free(kv, e);
    return rc;
}

int kv_set(struct kv *kv, const void *key, size_t key_len, const void *value,
           size_t value_len, int64_t expire_ms, unsigned flags, int64_t now_ms) {
    int rc = kv__set_check(kv, key, key_len, value, value_len, expire_ms, flags);
    if (rc != KV_OK) return rc;
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    bool live = kv__live_at(pos, found, now_ms);
    if ((flags & KV_SET_NX) && live) return KV_ENOTSET;
    if ((flags & KV_SET_XX) && !live) return KV_ENOTSET;
    if (!found) {
        return kv__add(kv, key, (uint32_t)key_len, value, (uint32_t)value_len, KV_TYPE_STRING,
                       expire_ms, hash);
    }
    if ((flags & KV_SET_KEEPTTL) && live) expire_ms = kv_entry_expire(*pos.link);
    return kv__overwrite(kv, pos, value, (uint32_t)value_len, KV_TYPE_STRING, expire_ms);
}

int kv_delete(struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    if (!found) return KV_ENOTFOUND;
    bool live = kv__live_at(pos, found, now_ms);
    kv_entry_free(kv, kv_dict_unlink(&kv->dict, pos));
    return live ? KV_OK : KV_ENOTFOUND;
}

int kv_delete_if_expired(struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    if (!found) return KV_ENOTFOUND;
    if (kv__live_at(pos, found, now_ms)) return KV_ENOTSET;
    kv_entry_free(kv, kv_dict_unlink(&kv->dict, pos));
    return KV_OK;
}

int kv_expire_set(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                  int64_t expire_ms) {
    if (expire_ms < 0) return KV_EINVAL;
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    if (!kv__live_at(pos, found, now_ms)) return KV_ENOTFOUND;
    const struct kv_entry *e = *pos.link;
    return kv__overwrite(kv, pos, kv_entry_value(e), e->value_len, e->type, expire_ms);
}

int kv_expire_clear(struct kv *kv, const void *key, size_t key_len, int64_t now_ms) {
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    if (!kv__live_at(pos, found, now_ms)) return KV_ENOTFOUND;
    const struct kv_entry *e = *pos.link;
    if (kv_entry_expire(e) == KV_NO_EXPIRY) return KV_ENOTSET;
    return kv__overwrite(kv, pos, kv_entry_value(e), e->value_len, e->type, KV_NO_EXPIRY);
}

/* Removes dst (live or expired) if present. */
static void kv__drop(struct kv *kv, const void *key, size_t key_len, uint64_t hash) {
    struct kv_pos pos = {NULL, 0};
    if (kv_dict_find(&kv->dict, hash, key, key_len, &pos)) {
        kv_entry_free(kv, kv_dict_unlink(&kv->dict, pos));
    }
}

int kv_rename(struct kv *kv, const void *src, size_t src_len, const void *dst, size_t dst_len,
              int64_t now_ms, unsigned flags) {
    if ((dst == NULL && dst_len > 0) || (flags & ~(unsigned)KV_RENAME_NX)) return KV_EINVAL;
    struct kv_pos pos = {NULL, 0};
    uint64_t src_hash = 0;
    bool found = kv__find_for_write(kv, src, src_len, &pos, &src_hash);
    if (!kv__live_at(pos, found, now_ms)) return KV_ENOTFOUND;
    if (src_len == dst_len && (src_len == 0 || memcmp(src, dst, src_len) == 0)) return KV_OK;
    if (dst_len > kv->config.key_bytes_max) return KV_ETOOBIG;
    uint64_t dst_hash = kv_dict_hash(&kv->dict, dst, dst_len);
    if (kv->walk != NULL) kv_walk_touch(kv->walk, dst_hash);
    const struct kv_entry *d = kv_dict_lookup(&kv->dict, dst_hash, dst, dst_len);
    if ((flags & KV_RENAME_NX) && d != NULL && !kv_entry_expired(d, now_ms)) return KV_ENOTSET;
    const struct kv_entry *s = *pos.link;
    struct kv_entry *moved = kv_entry_new(kv, dst, (uint32_t)dst_len, kv_entry_value(s),
                                          s->value_len, s->type, kv_entry_expire(s));
    if (moved == NULL) return KV_ENOMEM;
    kv__drop(kv, dst, dst_len, dst_hash); /* may move src's link: find it again */
    found = kv_dict_find(&kv->dict, src_hash, src, src_len, &pos);
    assert(found);
    kv_entry_free_shell(kv, kv_dict_unlink(&kv->dict, pos)); /* the value moved */
    int rc = kv_dict_insert(&kv->dict, moved, dst_hash);
    assert(rc == KV_OK); /* a table exists: it held src */
    return rc;
}

/* ---- Collections (the elements' operations are in kv_coll.c) ---- */

int kv_coll_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                uint8_t type, const struct kv_coll **out) {
    assert(kv_type_is_coll(type));
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    if (e->type != type) return KV_EWRONGTYPE;
    *out = kv_entry_coll(e);
    return KV_OK;
}

/* Stores c as the value of key (absent, or at pos when found), with no
 * expiry. On error c is not consumed. */
static int kv__coll_store(struct kv *kv, const void *key, size_t key_len, struct kv_pos pos,
                          bool found, uint64_t hash, struct kv_coll *c) {
    if (!found) {
        return kv__add(kv, key, (uint32_t)key_len, &c, sizeof(c), c->type, KV_NO_EXPIRY, hash);
    }
    return kv__overwrite(kv, pos, &c, sizeof(c), c->type, KV_NO_EXPIRY);
}

int kv_coll_open(struct kv *kv, const void *key, size_t key_len, int64_t now_ms, uint8_t type,
                 bool create, struct kv_coll **out) {
    assert(kv_type_is_coll(type));
    assert(key != NULL || key_len == 0);
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
#ifdef CANARY_KV_COLL_NO_TOUCH /* canary: element changes land in the snapshot being written */
    struct kv_walk *walk = kv->walk;
    kv->walk = NULL;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    kv->walk = walk;
#else
    /* the key's bucket goes into a snapshot being written before any
     * element of its collection changes (kv_walk_touch) */
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
#endif
    if (kv__live_at(pos, found, now_ms)) {
        const struct kv_entry *e = *pos.link;
        if (e->type != type) return KV_EWRONGTYPE;
        *out = kv_entry_coll(e);
        return KV_OK;
    }
    if (!create) return KV_ENOTFOUND;
    if (key_len > kv->config.key_bytes_max) return KV_ETOOBIG;
    struct kv_coll *c = kv_coll_new(kv, type);
    if (c == NULL) return KV_ENOMEM;
    int rc = kv__coll_store(kv, key, key_len, pos, found, hash, c);
    if (rc != KV_OK) {
        kv_coll_free(kv, c);
        return rc;
    }
    *out = c;
    return KV_OK;
}

void kv_coll_close(struct kv *kv, const void *key, size_t key_len, struct kv_coll *c) {
    if (kv_coll_count(c) > 0 || c->type == KV_TYPE_STREAM) return; /* a stream may be empty */
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = kv_dict_hash(&kv->dict, key, key_len);
    bool found = kv_dict_find(&kv->dict, hash, key, key_len, &pos);
    assert(found);
    assert(kv_entry_coll(*pos.link) == c);
    kv_entry_free(kv, kv_dict_unlink(&kv->dict, pos));
}

int kv_coll_install(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    struct kv_coll *c) {
    assert(key != NULL || key_len == 0);
    if (kv_coll_count(c) == 0) {
        kv_coll_free(kv, c);
        (void)kv_delete(kv, key, key_len, now_ms);
        return KV_OK;
    }
    int rc = KV_ETOOBIG;
    struct kv_pos pos = {NULL, 0};
    uint64_t hash = 0;
    bool found = kv__find_for_write(kv, key, key_len, &pos, &hash);
    if (key_len <= kv->config.key_bytes_max) {
        rc = kv__coll_store(kv, key, key_len, pos, found, hash, c);
    }
    if (rc != KV_OK) kv_coll_free(kv, c);
    return rc;
}

int kv_memory_usage(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    uint64_t *bytes) {
    const struct kv_entry *e = kv__lookup(kv, key, key_len, now_ms);
    if (e == NULL) return KV_ENOTFOUND;
    *bytes = kv_entry_alloc_size(e);
    if (kv_type_is_coll(e->type)) *bytes += kv_coll_memory_bytes(kv_entry_coll(e));
    return KV_OK;
}

void kv_flush(struct kv *kv) {
    if (kv->walk == NULL) {
        kv__clear(kv);
        return;
    }
    /* A snapshot walk is reading the tables: it takes them (and frees them,
     * collections included, when it ends); the keyspace starts over empty. */
    kv_walk_detach(kv->walk); /* kv->walk is NULL from here */
    kv_dict_init(&kv->dict, kv->config.hash_seed);
    kv->expires = 0;
    kv->data_bytes = 0;
    kv->memory_bytes = sizeof(*kv);
    kv->expire_cursor = 0;
}

bool kv_rehash_step(struct kv *kv, uint32_t buckets) { return kv_dict_rehash(&kv->dict, buckets); }

void kv_pause_resize(struct kv *kv, bool paused) { kv->dict.resize_paused = paused; }

/* ---- Expiry sampling ---- */

struct kv__expire_ctx {
    struct kv_item *out;
    uint32_t max;
    uint32_t found;
    int64_t now_ms;
    bool overflow;
};

static void kv__expire_visit(void *ctx, const struct kv_entry *e) {
    struct kv__expire_ctx *x = ctx;
    if (!kv_entry_expired(e, x->now_ms)) return;
    if (x->found == x->max) {
        x->overflow = true;
        return;
    }
    kv_entry_item(e, &x->out[x->found++]);
}

uint32_t kv_expired_sample(struct kv *kv, int64_t now_ms, struct kv_item *out, uint32_t max) {
    if (max > KV_EXPIRE_SAMPLE_MAX) max = KV_EXPIRE_SAMPLE_MAX;
    if (max == 0 || kv->expires == 0) return 0;
    assert(kv->dict.t[0].size > 0);
    struct kv__expire_ctx x = {.out = out, .max = max, .found = 0, .now_ms = now_ms};
    uint32_t budget = max * KV_EXPIRE_BUCKETS_PER_KEY;
    uint32_t visited = 0;
    uint64_t cursor = kv->expire_cursor;
    while (visited < budget && x.found < max) {
        uint64_t next = kv_dict_scan_step(&kv->dict, cursor, kv__expire_visit, &x, &visited);
        if (x.overflow) break; /* this step again next time: it has more */
        cursor = next;
        if (cursor == 0) break; /* one pass at most: no key twice */
    }
    kv->expire_cursor = cursor;
    assert(x.found <= max);
    return x.found;
}
