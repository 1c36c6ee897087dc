/* kv.h: the keyspace, one shard's replicated state machine. Binary-safe keys
 * map to typed values (strings, hashes, sets, lists, sorted sets, streams),
 * each with an optional absolute expiry in milliseconds. It is pure:
 * no I/O, no clock, no globals; time is a value passed in (the timestamp the
 * leader stamped on the log entry being applied), randomness comes from a
 * generator passed in. See docs/kv.md.
 *
 * Determinism. Every replica of a group applies the same operations with the
 * same `now_ms` and the same kv_config limits, and so holds the same content.
 * The hash seed may differ per replica: it changes the table layout (and so
 * the order of SCAN, KEYS and snapshots, and which keys kv_random_key() and
 * kv_expired_sample() find), never the content.
 *
 * Expiry is logical. A key whose expiry is <= now_ms is "logically expired":
 * every read treats it as absent, but the keyspace never deletes a key because
 * time passed. Only an explicit delete removes it: the leader finds expired
 * keys with kv_expired_sample() and proposes kv_delete_if_expired() through
 * the Raft log, so every replica deletes the same key at the same log index.
 * Writes treat a logically expired key as absent too (SET NX succeeds over
 * it, and replaces it).
 *
 * Memory: kv_item views returned by reads borrow the keyspace's memory; they
 * stay valid until the next call that modifies the keyspace (any function
 * taking a non-const `struct kv *`). Keys and values passed in are copied.
 *
 * Hash table: chained, power-of-two sizes, SipHash-1-3 keyed by the seed,
 * incremental rehashing (two tables while resizing; every write moves a
 * bucket; the host calls kv_rehash_step() when idle). Reads do not rehash
 * (they take `const struct kv *`), so a read-only load leaves a resize
 * half-done until the next write or kv_rehash_step().
 */
#ifndef SHOAL_KV_H
#define SHOAL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits ------------------------------------------------------------ */

/* Hard limits; a kv_config may only lower them. Like Redis's
 * proto-max-bulk-len, a value is at most 512 MiB; its length is stored in 32
 * bits. A key is at most 512 KiB - 1 (Redis: 512 MiB): its length has 19
 * bits, the access clock the rest of its word (kv_dict.h). The configured
 * default for keys is much smaller: a key travels in every log entry,
 * redirect and SCAN reply, and large keys are a mistake far more often than
 * a need. */
#define KV_KEY_BYTES_LIMIT ((1u << 19) - 1u)
#define KV_VALUE_BYTES_LIMIT (512u << 20)
#define KV_KEY_BYTES_DEFAULT (64u << 10)
/* Keys per keyspace. What bounds it: the bucket array is a power of two of at
 * most 2^32 pointers (32 GiB), sized to at least the key count, and memory
 * (about 100 bytes per small key). In practice kv_config.keys_max is set from
 * the memory budget of the shard. */
#define KV_KEYS_LIMIT (UINT64_C(1) << 32)
#define KV_BUCKETS_LIMIT (UINT64_C(1) << 32)
/* A snapshot is written to the callback in chunks of at most this many. */
#define KV_SNAPSHOT_CHUNK_BYTES (64u << 10)
/* SCAN: steps per call are at most this many times the count hint (as in
 * Redis), so a sparse table cannot make one call walk all of it. */
#define KV_SCAN_STEPS_PER_COUNT 10u
#define KV_SCAN_COUNT_MAX (1u << 20)
/* kv_expired_sample(): buckets examined per key asked for, and the most keys
 * one call may ask for. */
#define KV_EXPIRE_BUCKETS_PER_KEY 20u
#define KV_EXPIRE_SAMPLE_MAX 1024u
/* Elements of one hash or set: a snapshot record stores the count in 32
 * bits. Each element is also bounded by value_bytes_max. */
#define KV_COLL_ELEMENTS_MAX UINT32_MAX

_Static_assert(KV_KEY_BYTES_LIMIT <= UINT32_MAX, "key lengths are stored in 32 bits");
_Static_assert(KV_VALUE_BYTES_LIMIT <= UINT32_MAX, "value lengths are stored in 32 bits");
_Static_assert(KV_KEY_BYTES_DEFAULT <= KV_KEY_BYTES_LIMIT, "default within the hard limit");
_Static_assert((uint64_t)KV_KEY_BYTES_LIMIT + KV_VALUE_BYTES_LIMIT + 64 <= SIZE_MAX,
               "one entry (key, value, header) must be allocatable");
_Static_assert(KV_KEYS_LIMIT <= KV_BUCKETS_LIMIT, "a full table stays at load factor <= 1");
_Static_assert((uint64_t)KV_SCAN_COUNT_MAX * KV_SCAN_STEPS_PER_COUNT <= UINT32_MAX,
               "scan step budget fits 32 bits");
_Static_assert((uint64_t)KV_EXPIRE_SAMPLE_MAX * KV_EXPIRE_BUCKETS_PER_KEY <= UINT32_MAX,
               "expire bucket budget fits 32 bits");

/* ---- Errors ------------------------------------------------------------ */

/* Named negative codes (0 is success). kv_strerror() names them. */
enum kv_err {
    KV_OK = 0,
    KV_ENOTFOUND = -1,  /* no live key (absent or logically expired) */
    KV_ENOTSET = -2,    /* a condition (NX, XX, has-expiry, is-expired) did not hold */
    KV_EINVAL = -3,     /* bad argument */
    KV_ENOMEM = -4,     /* allocation failed; the keyspace is unchanged */
    KV_ETOOBIG = -5,    /* key or value over the configured limit */
    KV_EFULL = -6,      /* kv_config.keys_max keys are stored */
    KV_ECORRUPT = -7,   /* snapshot: corrupt (the message names the offset) */
    KV_EVERSION = -8,   /* snapshot: unknown format version */
    KV_EIO = -9,        /* snapshot: the read or write callback failed */
    KV_EWRONGTYPE = -10 /* the key holds another type */
};
const char *kv_strerror(int err);

/* ---- Types ------------------------------------------------------------- */

/* The types a key may hold (the snapshot's record type byte). */
enum kv_type {
    KV_TYPE_STRING = 0,
    KV_TYPE_HASH = 1,
    KV_TYPE_SET = 2,
    KV_TYPE_LIST = 3,
    KV_TYPE_ZSET = 4,
    KV_TYPE_STREAM = 5, /* kv_stream.h */
    KV_TYPE_COUNT
};
/* TYPE's name of a type: "string", "hash", "set", "list", "zset", "stream". */
const char *kv_type_name(uint8_t type);

/* Expiry "none". Valid expiries are absolute times in ms, >= 0. */
#define KV_NO_EXPIRY INT64_C(-1)

/* A borrowed view of one entry (see "Memory" above). For a hash or a set,
 * value is NULL and value_len 0: its elements are read with kv_coll_*(). */
struct kv_item {
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    uint8_t type;      /* enum kv_type */
    int64_t expire_ms; /* KV_NO_EXPIRY or absolute ms */
};

struct kv_config {
    uint64_t hash_seed[2];    /* SipHash key; may differ per replica */
    uint32_t key_bytes_max;   /* <= KV_KEY_BYTES_LIMIT, >= 1 */
    uint32_t value_bytes_max; /* <= KV_VALUE_BYTES_LIMIT */
    uint64_t keys_max;        /* <= KV_KEYS_LIMIT, >= 1 */
    /* A sorted set stays packed up to this many members of at most this
     * many bytes (CONFIG's zset-max-listpack-entries/-value; at most
     * KV_ZSET_PACK_ENTRIES and KV_ZSET_PACK_MEMBER_BYTES). They change the
     * memory layout only, never a reply or the content, so replicas may
     * differ in them (kv_set_zset_pack()). */
    uint32_t zset_pack_entries;
    uint32_t zset_pack_member_bytes;
    /* The same for hashes and sets (hash-max-listpack-entries/-value,
     * set-max-intset-entries, set-max-listpack-entries/-value; at most the
     * KV_HASH_PACK_* and KV_SET_* constants) and for lists' nodes
     * (list-max-listpack-size: list_node_bytes is the most bytes a node of
     * more than one item holds, at most KV_LIST_NODE_BYTES_MAX;
     * list_node_items, when not 0, the most items a node holds). Layout
     * only, as the sorted sets' (kv_set_layout()). */
    uint32_t hash_pack_entries;
    uint32_t hash_pack_value_bytes;
    uint32_t set_intset_entries;
    uint32_t set_pack_entries;
    uint32_t set_pack_value_bytes;
    uint32_t list_node_bytes;
    uint32_t list_node_items;
    /* The time (ms) keys made before any kv_touch() were last
     * accessed, such as a snapshot's keys as it loads (OBJECT IDLETIME
     * counts from it). A replica's own, as the access clock is. */
    int64_t clock_ms;
};

/* Sets the defaults (hard limits for values and keys count, the default key
 * limit) and a zero seed; the caller sets hash_seed. All replicas of a group
 * must use the same limits: they decide which writes succeed. */
void kv_config_default(struct kv_config *config);

struct kv; /* opaque */
struct rand;

/* Changes the sorted sets' packing thresholds (see kv_config) for the sets
 * that grow from now on (a packed set over them stays packed until its
 * next insertion; a table-and-tree set stays one). Clamped to the maxima. */
void kv_set_zset_pack(struct kv *kv, uint32_t entries, uint32_t member_bytes);
/* Changes every layout threshold of kv_config (the sorted sets' included)
 * to from's, clamped to the maxima, for the collections that grow from now
 * on: a hash or a set over a new threshold stays packed (or an intset)
 * until its next insertion, then becomes a table for good, as in Redis; a
 * list's nodes keep their size until they are next split or merged. */
void kv_set_layout(struct kv *kv, const struct kv_config *from);
/* The list_node_bytes and list_node_items of Redis's list-max-listpack-size
 * (-1..-5: 4, 8, 16, 32, 64 KB a node, below -5 as -5; n >= 0: n items a
 * node (0 as 1, as Redis's quicklist ends up), at most 8 KB unless one item
 * is larger, as Redis's safety limit). */
void kv_list_node_size(int64_t list_max_listpack_size, uint32_t *node_bytes,
                       uint32_t *node_items);

/* Creates an empty keyspace; the config is copied. NULL on an invalid config
 * or allocation failure. */
struct kv *kv_create(const struct kv_config *config);
void kv_destroy(struct kv *kv);

/* ---- Reads (never change the keyspace) ---------------------------------- */

/* The live entry for key: KV_OK and *out filled (out may be NULL), or
 * KV_ENOTFOUND if absent or logically expired. */
int kv_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
           struct kv_item *out);
bool kv_exists(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms);
/* The expiry of a live key (KV_NO_EXPIRY if none): KV_OK or KV_ENOTFOUND. */
int kv_expire_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                  int64_t *expire_ms);

/* ---- The access clock (OBJECT IDLETIME) ---------------------------------
 *
 * Each key keeps the time of its last access in seconds modulo 2^24, as
 * Redis's LRU clock does (it wraps every 194 days). It is a replica's own
 * and no part of the content: not replicated, not in snapshots, DUMP
 * payloads or digests, never a reason for replicas to differ in a reply
 * of a write. A key made by a write starts at the keyspace's latest
 * touch, one made by a snapshot load at kv_config.clock_ms; the command
 * layer (cmd_exec) touches every key a command names after it runs. */

/* Marks the live key as accessed at now_ms (a time before 1970 counts as
 * 1970); false if it is absent
 * or logically expired. Changes nothing else: no rehash step, no snapshot
 * bucket written. So while a snapshot walk runs, a key whose bucket the
 * walk has not yet written keeps its clock (kv.c says why); a write has
 * written its bucket already (kv__find_for_write), so the keys a write
 * changes are always touched. */
bool kv_touch(struct kv *kv, const void *key, size_t key_len, int64_t now_ms);
/* The same, as if the access had been idle_s seconds before now_ms (taken
 * modulo 2^24, as Redis's RESTORE ... IDLETIME takes it). */
bool kv_touch_idle(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                   uint64_t idle_s);
/* Seconds from the live key's last access to now_ms, in *seconds (exact
 * below 2^24 s, modulo 2^24 beyond, as Redis's): KV_OK or KV_ENOTFOUND. */
int kv_idle_seconds(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    uint32_t *seconds);

/* Prefetch hints for a batch of commands (no effect on any result): a
 * lookup of a key in a large keyspace waits on two cache misses, the
 * bucket and the entry; a caller about to run many commands calls
 * kv_prefetch(kv, key, len, 0) for each of their keys, then stage 1 for
 * each, then runs them, so the misses overlap instead of following one
 * another. */
#define KV_PREFETCH_KEY_BYTES_MAX 256u /* longer keys are not prefetched */
void kv_prefetch(struct kv *kv, const void *key, size_t key_len, int stage);
/* The kv_prefetch() calls so far of stage 0 (stage == 0) or of the entry
 * stage (any other), long keys included: the hints a caller gave, which
 * the whole-node simulator's scenarios check (src/nsim/nsim_scenario.c). */
uint64_t kv_prefetches(const struct kv *kv, int stage);
/* Stored keys, including logically expired ones not yet deleted (this is
 * what Redis's DBSIZE reports). O(1). */
uint64_t kv_count(const struct kv *kv);
/* Stored keys that carry an expiry (INFO's "expires="). O(1). */
uint64_t kv_count_expires(const struct kv *kv);
/* Live keys at now_ms. O(keys): for tests and diagnostics, not commands. */
uint64_t kv_count_live(const struct kv *kv, int64_t now_ms);
/* Bytes the keyspace asked the allocator for (entries, bucket arrays, the
 * struct); allocator overhead (headers, size classes) is not included. */
uint64_t kv_memory_bytes(const struct kv *kv);

struct kv_stats {
    uint64_t keys;
    uint64_t expires;
    uint64_t data_bytes;   /* sum of key and value lengths */
    uint64_t memory_bytes; /* as kv_memory_bytes() */
    uint64_t table_bytes;  /* of them, the bucket arrays (MEMORY STATS's overhead) */
    uint64_t buckets[2];   /* table sizes; [1] is non-zero while rehashing */
    bool rehashing;
};
void kv_stats(const struct kv *kv, struct kv_stats *out);

/* An order-independent 64-bit digest of the content (keys, values, types,
 * expiries, including logically expired keys), independent of the seed:
 * equal on replicas that hold the same content. O(keys). */
uint64_t kv_digest(const struct kv *kv);
/* The digest of one key as it is at now_ms (type, value and expiry; the same
 * on every replica), or 0 if it is absent or expired: what WATCH compares. */
uint64_t kv_key_digest(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms);

/* A random live key, roughly uniform: KV_OK and *out, or KV_ENOTFOUND if no
 * live key was found in a bounded number of tries (the keyspace is empty, or
 * nearly every key is logically expired). Bounded work even when the table
 * is sparse. */
int kv_random_key(const struct kv *kv, struct rand *rng, int64_t now_ms, struct kv_item *out);

/* Callback for kv_scan(): one live key. It must not modify the keyspace. */
typedef void (*kv_scan_cb)(void *ctx, const struct kv_item *item);

/* One SCAN call: visits buckets from `cursor` (0 starts a scan) with Redis's
 * reverse-binary cursor until at least `count` live keys were reported, or
 * KV_SCAN_STEPS_PER_COUNT * count bucket steps were made, or the scan ended.
 * Returns the next cursor; 0 means the scan is complete. count is clamped to
 * [1, KV_SCAN_COUNT_MAX].
 * Guarantee: a key present (and live) from the first call to the last is
 * reported at least once, whatever inserts, deletes and resizes happen
 * between calls; keys may be reported more than once. */
uint64_t kv_scan(const struct kv *kv, uint64_t cursor, uint32_t count, int64_t now_ms,
                 kv_scan_cb cb, void *ctx);

/* Callback for kv_foreach() and kv_keys(): return 0 to go on, anything else
 * stops the iteration and is returned. It must not modify the keyspace. */
typedef int (*kv_item_cb)(void *ctx, const struct kv_item *item);

/* Calls cb for every live key, in table order. O(keys). */
int kv_foreach(const struct kv *kv, int64_t now_ms, kv_item_cb cb, void *ctx);
/* KEYS pattern: calls cb for every live key matching the glob pattern
 * (kv_glob_match, case-sensitive). Like Redis, the pattern "*" matches every
 * key, including the empty one. O(keys), or one lookup when the pattern has
 * no special character. */
int kv_keys(const struct kv *kv, const void *pattern, size_t pattern_len, int64_t now_ms,
            kv_item_cb cb, void *ctx);

/* Redis's stringmatchlen(): glob matching of binary strings.
 *   *      any run of bytes     ?      any one byte
 *   [abc]  one of the set       [^a]   any byte but those   [a-z] a range
 *   \x     the byte x literally (also inside a set)
 * Quirks kept from Redis: an empty string matches only the empty pattern
 * ("*" does not match ""; kv_keys special-cases "*" as Redis does); an
 * unterminated set "[ab" ends at the pattern's end; in "[a-]" the range runs
 * to ']'; reversed ranges "[z-a]" are swapped. Differences: bytes compare
 * unsigned (Redis on x86 compares ranges as signed char); matching is
 * iterative, O(pattern * string), with no nesting limit (Redis gives up
 * after 1000 nested '*'). nocase folds ASCII letters. */
bool kv_glob_match(const void *pattern, size_t pattern_len, const void *string,
                   size_t string_len, bool nocase);

/* ---- Writes -------------------------------------------------------------- */

enum kv_set_flags {
    KV_SET_NX = 1 << 0,      /* only if no live key */
    KV_SET_XX = 1 << 1,      /* only if a live key */
    KV_SET_KEEPTTL = 1 << 2, /* keep the live key's expiry (expire_ms must be none) */
};

/* SET: stores a string value with expiry `expire_ms` (KV_NO_EXPIRY for none;
 * an expiry <= now_ms stores a key that is already logically expired).
 * Returns KV_OK; KV_ENOTSET if NX/XX did not hold (nothing changed);
 * KV_ETOOBIG, KV_EFULL, KV_ENOMEM (nothing changed); KV_EINVAL for NX with
 * XX, KEEPTTL with an expiry, or an expiry < -1. */
int kv_set(struct kv *kv, const void *key, size_t key_len, const void *value,
           size_t value_len, int64_t expire_ms, unsigned flags, int64_t now_ms)
    __attribute__((warn_unused_result));

/* DEL: removes the key whether live or logically expired. KV_OK if a live key
 * was removed, KV_ENOTFOUND if there was none (an expired one may have been
 * removed: DEL of an expired key answers 0 in Redis too). */
int kv_delete(struct kv *kv, const void *key, size_t key_len, int64_t now_ms);
/* The leader's expiry deletion: removes the key only if it is logically
 * expired at now_ms. KV_OK if removed; KV_ENOTFOUND if absent; KV_ENOTSET if
 * it is live (it was rewritten or persisted after the leader sampled it). */
int kv_delete_if_expired(struct kv *kv, const void *key, size_t key_len, int64_t now_ms);

/* Sets the expiry of a live key (expire_ms >= 0): KV_OK, KV_ENOTFOUND,
 * KV_EINVAL, KV_ENOMEM. EXPIRE's NX/XX/GT/LT are decided by the caller with
 * kv_expire_get() (apply is single-threaded, so that is atomic). */
int kv_expire_set(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                  int64_t expire_ms) __attribute__((warn_unused_result));
/* PERSIST: KV_OK if the live key's expiry was removed, KV_ENOTSET if it had
 * none, KV_ENOTFOUND if no live key, KV_ENOMEM. */
int kv_expire_clear(struct kv *kv, const void *key, size_t key_len, int64_t now_ms)
    __attribute__((warn_unused_result));

enum kv_rename_flags {
    KV_RENAME_NX = 1 << 0, /* RENAMENX: only if dst has no live key */
};
/* RENAME: moves src's value and expiry to dst, replacing any dst. KV_OK;
 * KV_ENOTFOUND if src is not live; KV_ENOTSET under NX if dst is live;
 * KV_ETOOBIG (dst key), KV_ENOMEM. src == dst is KV_OK and a no-op. */
int kv_rename(struct kv *kv, const void *src, size_t src_len, const void *dst, size_t dst_len,
              int64_t now_ms, unsigned flags) __attribute__((warn_unused_result));

/* FLUSHDB: removes every key and frees the tables. */
void kv_flush(struct kv *kv);

/* Moves up to `buckets` buckets of a resize in progress. Returns true if a
 * resize is still in progress afterwards. For the host's idle time. */
bool kv_rehash_step(struct kv *kv, uint32_t buckets);

/* While a forked child shares the keyspace's pages (a snapshot writer), a
 * rehash writes to every bucket of both tables, and each page written is
 * copied: the parent stalls and its memory grows. Paused, the table grows
 * only past a load factor of KV_DICT_FORCE_RESIZE_RATIO (5), never shrinks,
 * and a resize in progress waits (Redis does the same during a BGSAVE).
 * Lookups and the contents are unaffected. */
void kv_pause_resize(struct kv *kv, bool paused);

/* Leader only: finds up to max (<= KV_EXPIRE_SAMPLE_MAX) logically expired
 * keys, for the leader to propose kv_delete_if_expired() for each. Walks the
 * table with a SCAN cursor kept in the keyspace (like Redis's active expire
 * cycle): per call about KV_EXPIRE_BUCKETS_PER_KEY * max buckets (the last
 * step may add the expansions of one bucket while resizing) and at most one
 * pass, so repeated calls cover the whole table. A step whose expired keys do
 * not all fit is redone by the next call, so keys whose deletion is in
 * flight may be returned again until it is applied; the caller filters.
 * Returns the number of items written to out (views, see "Memory"). */
uint32_t kv_expired_sample(struct kv *kv, int64_t now_ms, struct kv_item *out, uint32_t max);

/* ---- Collections: hashes and sets -----------------------------------------
 *
 * A hash maps fields to values; a set holds members (elements with an empty
 * value). Both are never empty: a command that removes the last element
 * calls kv_coll_close(), which deletes the key, as Redis does.
 *
 * Encodings (docs/kv.md), which replicas may hold differently (a snapshot
 * load packs a small collection that grew and shrank) and which nothing
 * depends on but the order of walks and HSCAN/SSCAN's paging:
 *   - packed: up to hash_pack_entries fields of at most
 *     hash_pack_value_bytes (field and value), or set_pack_entries
 *     members of at most set_pack_value_bytes (kv_config), in one buffer in
 *     insertion order (Redis's listpack: HGETALL answers in Redis's order);
 *   - intset: a set of up to set_intset_entries integers (members that
 *     are the canonical text of an int64, as Redis's string2ll() takes
 *     them) kept as binary integers in ascending order, as Redis's intset;
 *   - table: one kv_entry per element in a hash table (the keyspace's:
 *     table order; HSCAN/SSCAN with SCAN's cursor and guarantee).
 * A collection passing a threshold becomes a table for good (an intset
 * given a non-integer becomes packed when it fits, as in Redis 7.2).
 * Packed and intset collections are scanned whole in one call (cursor 0
 * back, as Redis answers them). The thresholds default to Redis's
 * defaults, which are also the most they can be set to (the constants
 * below; the set-max-listpack ones are Redis 7.2's: Redis 7.0 keeps small
 * string sets in a table, as set_pack_entries 0 does).
 *
 * A write opens the key's collection with kv_coll_open(), changes it with
 * kv_coll_put()/kv_coll_remove(), then calls kv_coll_close(). A collection
 * pointer stays valid until its key is deleted, overwritten or renamed;
 * element views (struct kv_elem) until the next change to that collection.
 * Each element is a copy of the bytes passed in.
 */
struct kv_coll; /* opaque */

/* Each the default and the most CONFIG may set (kv_config). */
#define KV_HASH_PACK_ENTRIES 512u    /* hash-max-listpack-entries (Redis 7.0's default) */
#define KV_HASH_PACK_VALUE_BYTES 64u /* hash-max-listpack-value (field and value) */
#define KV_SET_INTSET_ENTRIES 512u   /* set-max-intset-entries */
#define KV_SET_PACK_ENTRIES 128u     /* set-max-listpack-entries (Redis 7.2) */
#define KV_SET_PACK_VALUE_BYTES 64u  /* set-max-listpack-value (Redis 7.2) */
_Static_assert(KV_HASH_PACK_VALUE_BYTES <= 255 && KV_SET_PACK_VALUE_BYTES <= 255,
               "a packed length is one byte");
_Static_assert(KV_SET_INTSET_ENTRIES <= UINT16_MAX && KV_HASH_PACK_ENTRIES <= UINT16_MAX &&
                   KV_SET_PACK_ENTRIES <= UINT16_MAX,
               "a packed count is 16 bits");

/* A borrowed view of one element: a hash field and its value, or a set
 * member (value_len 0). An intset keeps integers, not their text: the view
 * of one of its members is written as text somewhere short-lived, and
 * `transient` says so: the field bytes are then valid only during the
 * callback that got the view (walks), or as long as the kv_elem_text the
 * caller passed (samples, picks), or the bytes the caller looked up
 * (kv_coll_find). Whoever keeps such a view longer copies its bytes. */
struct kv_elem {
    const uint8_t *field;
    uint32_t field_len;
    bool transient;
    const uint8_t *value;
    uint32_t value_len;
};

/* Room for the text of one integer member ("-9223372036854775808"). */
#define KV_ELEM_TEXT_BYTES 24u
struct kv_elem_text {
    uint8_t bytes[KV_ELEM_TEXT_BYTES];
};

/* The live key's collection, which must be of `type`: KV_OK and *out,
 * KV_ENOTFOUND (no live key), KV_EWRONGTYPE (the key holds another type). */
int kv_coll_get(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                uint8_t type, const struct kv_coll **out);
/* The same for a write. With `create`, a key with no live value gets a new
 * empty collection (a logically expired value is replaced), which the
 * caller fills and then closes. Errors: KV_ENOTFOUND (no live key, no
 * create), KV_EWRONGTYPE, KV_ETOOBIG (key), KV_EFULL, KV_ENOMEM. */
int kv_coll_open(struct kv *kv, const void *key, size_t key_len, int64_t now_ms, uint8_t type,
                 bool create, struct kv_coll **out) __attribute__((warn_unused_result));
/* Ends a write on the key's collection c: deletes the key if c is empty. */
void kv_coll_close(struct kv *kv, const void *key, size_t key_len, struct kv_coll *c);
/* A detached collection of `type` (for SINTERSTORE and friends: built while
 * the sources are read, then put in place by kv_coll_install()); NULL if
 * out of memory. Counted in the keyspace's memory meanwhile. */
struct kv_coll *kv_coll_create(struct kv *kv, uint8_t type);
/* Stores detached collection c at key, replacing any value of any type,
 * with no expiry; an empty c deletes the key instead. c is consumed in
 * every case. KV_OK, KV_ETOOBIG (key), KV_EFULL, KV_ENOMEM. */
int kv_coll_install(struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    struct kv_coll *c) __attribute__((warn_unused_result));
/* Frees a detached collection. */
void kv_coll_discard(struct kv *kv, struct kv_coll *c);

uint8_t kv_coll_type(const struct kv_coll *c);
/* Elements. O(1). */
uint64_t kv_coll_count(const struct kv_coll *c);
/* Bytes the collection asked of the allocator (MEMORY USAGE). O(1). */
uint64_t kv_coll_memory_bytes(const struct kv_coll *c);

/* The element `field`: KV_OK and *out (may be NULL), or KV_ENOTFOUND. */
int kv_coll_find(const struct kv_coll *c, const void *field, size_t field_len,
                 struct kv_elem *out);
enum kv_put_flags {
    KV_PUT_NX = 1 << 0, /* only if the field is absent (HSETNX) */
};
/* Adds or replaces the element `field` (a set's value must be empty).
 * *created (may be NULL) tells whether it was new. KV_OK; KV_ENOTSET under
 * NX if present; KV_ETOOBIG (field or value over value_bytes_max), KV_EFULL
 * (KV_COLL_ELEMENTS_MAX), KV_ENOMEM: nothing changed. */
int kv_coll_put(struct kv *kv, struct kv_coll *c, const void *field, size_t field_len,
                const void *value, size_t value_len, unsigned flags, bool *created)
    __attribute__((warn_unused_result));
/* Removes the element `field`: KV_OK or KV_ENOTFOUND. */
int kv_coll_remove(struct kv *kv, struct kv_coll *c, const void *field, size_t field_len);

/* Callback for element walks: 0 to go on, anything else stops the walk and
 * is returned. It must not change the collection. */
typedef int (*kv_elem_cb)(void *ctx, const struct kv_elem *e);
/* Every element, in the encoding's order (packed: insertion; intset:
 * ascending; table: the table's). O(elements). */
int kv_coll_foreach(const struct kv_coll *c, kv_elem_cb cb, void *ctx);
/* HSCAN/SSCAN: packed or intset, every element in one call (cursor 0
 * back, as Redis does); else as kv_scan() over the elements (same cursor,
 * same bounds, same guarantee). cb's return value is ignored. */
uint64_t kv_coll_scan(const struct kv_coll *c, uint64_t cursor, uint32_t count, kv_elem_cb cb,
                      void *ctx);
/* Up to max (>= 1) elements near a random position (for HRANDFIELD,
 * SRANDMEMBER: reads, any replica may answer differently); returns how many
 * (>= 1 unless empty). Bounded work. text: room for min(max,
 * KV_SET_INTSET_ENTRIES) texts, where an intset's views are written. */
uint32_t kv_coll_sample(const struct kv_coll *c, struct rand *rng, struct kv_elem *out,
                        uint32_t max, struct kv_elem_text *text);
/* The min(max, count) elements whose SipHash under a key made from `seed`
 * is smallest, in that order: the same elements on every replica whatever
 * its encoding or table layout (SPOP, a write, picks its members so).
 * O(elements); KV_OK, or KV_ENOMEM (*n_out is 0). text as for
 * kv_coll_sample(). */
int kv_coll_pick(const struct kv_coll *c, uint64_t seed, struct kv_elem *out, uint64_t max,
                 struct kv_elem_text *text, uint64_t *n_out) __attribute__((warn_unused_result));

/* ---- Lists ------------------------------------------------------------------
 *
 * A list is a collection (kv_coll_open() with KV_TYPE_LIST, then
 * kv_coll_close()) of items in order, index 0 at the head (the left).
 * kv_coll_count() and kv_coll_foreach() (head to tail; an item is a
 * kv_elem's field) work on it; the hash and set operations above do not.
 * The items are packed in nodes of up to 8 KB (kv_coll.h): pushes and pops
 * at either end are O(1) amortized; an index is found in O(nodes) plus a
 * walk inside one node; an insertion or removal inside moves bytes within
 * its node only (a full node splits, small neighbours merge). Views
 * (struct kv_elem) borrow the list's memory and stay valid until its next
 * change. An item is at most value_bytes_max bytes; a list holds at most
 * KV_COLL_ELEMENTS_MAX items.
 */

/* Pushes a copy of item at the head (front) or the tail. KV_OK, KV_ETOOBIG,
 * KV_EFULL, KV_ENOMEM (nothing changed). */
int kv_list_push(struct kv *kv, struct kv_coll *c, bool front, const void *item, size_t len)
    __attribute__((warn_unused_result));
/* Item `index` (0 = head): KV_OK and *out (field, field_len), or
 * KV_ENOTFOUND when index >= the count. */
int kv_list_get(const struct kv_coll *c, uint64_t index, struct kv_elem *out);
/* The items [from, to) (to <= count) head first, or tail first when
 * reverse, as kv_elem fields; cb's non-zero return stops the walk and is
 * returned. cb must not change the list. O(nodes + to - from). */
int kv_list_walk(const struct kv_coll *c, uint64_t from, uint64_t to, bool reverse,
                 kv_elem_cb cb, void *ctx);
/* Removes the head (front) or the tail item; the list must not be empty. */
void kv_list_pop(struct kv *kv, struct kv_coll *c, bool front);
/* Replaces item `index` (< count): KV_OK, KV_ETOOBIG, KV_ENOMEM. */
int kv_list_set(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item, size_t len)
    __attribute__((warn_unused_result));
/* Inserts a copy of item so that it becomes item `index` (<= count):
 * KV_OK, KV_ETOOBIG, KV_EFULL, KV_ENOMEM. */
int kv_list_insert(struct kv *kv, struct kv_coll *c, uint64_t index, const void *item,
                   size_t len) __attribute__((warn_unused_result));
/* LREM: removes items equal to item, at most |count| of them (0: all),
 * from the head when count >= 0, from the tail when negative, in one pass.
 * Returns how many were removed. */
uint64_t kv_list_remove_equal(struct kv *kv, struct kv_coll *c, const void *item, size_t len,
                              int64_t count);
/* LTRIM: keeps items [start, stop] (start <= stop < count) and frees the
 * others. */
void kv_list_trim(struct kv *kv, struct kv_coll *c, uint64_t start, uint64_t stop);
/* LMOVE: moves src's head (src_front) or tail item to dst's head or tail,
 * copying its bytes (src and dst may be the same list; src not empty).
 * KV_OK, KV_EFULL, KV_ENOMEM (nothing changed). */
int kv_list_move(struct kv *kv, struct kv_coll *src, bool src_front, struct kv_coll *dst,
                 bool dst_front) __attribute__((warn_unused_result));

/* ---- Sorted sets ------------------------------------------------------------
 *
 * A sorted set is a collection (kv_coll_open() with KV_TYPE_ZSET, then
 * kv_coll_close()) of distinct members, each with a score (a double, never
 * NaN), ordered by (score, member): scores numerically (-0 equals 0), equal
 * scores by the members' bytes (memcmp, then the shorter first), as Redis
 * orders them. Rank 0 is the lowest. kv_coll_count() works on it; the hash,
 * set and list operations above do not.
 *
 * Two encodings, which replicas may hold differently (a snapshot load picks
 * by size) and which nothing observable depends on but ZSCAN's paging: up
 * to KV_ZSET_PACK_ENTRIES members of at most KV_ZSET_PACK_MEMBER_BYTES
 * bytes live in one packed buffer (Redis's listpack defaults); a larger set
 * becomes a hash table of members (for lookups by member, SCAN and its
 * memory) plus a B+tree of element pointers counted by subtree (for ranks),
 * and stays so. Member lookups are O(1) or O(n) packed; ranks, bounds and
 * changes O(log^2 n) (a bound is a binary search over ranks).
 *
 * A score of -0 is stored as 0, whatever the encoding: Redis 7.0 answers 0
 * for it from a listpack (which keeps it as text) and -0 from a skiplist;
 * shoal's encodings differ between replicas, so it keeps one answer.
 *
 * Views (struct kv_zelem) borrow the collection's memory and stay valid
 * until its next change. Each member is at most value_bytes_max bytes; a
 * sorted set holds at most KV_COLL_ELEMENTS_MAX members.
 */
#define KV_ZSET_PACK_ENTRIES 128u      /* most zset-max-listpack-entries (the default) */
#define KV_ZSET_PACK_MEMBER_BYTES 64u  /* most zset-max-listpack-value (the default) */

struct kv_zelem {
    const uint8_t *member;
    uint32_t member_len;
    double score;
};

/* The score of member: KV_OK and *score, or KV_ENOTFOUND. */
int kv_zset_score(const struct kv_coll *c, const void *member, size_t len, double *score);
/* The rank (from the lowest) of member: KV_OK and *rank, or KV_ENOTFOUND. */
int kv_zset_rank(const struct kv_coll *c, const void *member, size_t len, uint64_t *rank);
/* The element at rank (< count). */
void kv_zset_at(const struct kv_coll *c, uint64_t rank, struct kv_zelem *out);
/* Predicate for kv_zset_search(). */
typedef bool (*kv_zpred)(void *ctx, const struct kv_zelem *e);
/* The first rank in [lo, hi) where pred holds, found by a binary search
 * with fixed midpoints (hi if none): exact when pred is false then true
 * along the ranks (a score bound; a lex bound over equal scores), and in
 * every case a function of the elements alone, never of the layout (a lex
 * range over mixed scores is a write's input: replicas must agree). */
uint64_t kv_zset_search(const struct kv_coll *c, uint64_t lo, uint64_t hi, kv_zpred pred,
                        void *ctx);
/* Callback for walks: 0 to go on, anything else stops and is returned. It
 * must not change the collection. */
typedef int (*kv_zelem_cb)(void *ctx, const struct kv_zelem *e);
/* The elements of ranks [from, to) (to <= count), lowest first, or highest
 * first when reverse. O(log n + to - from). */
int kv_zset_walk(const struct kv_coll *c, uint64_t from, uint64_t to, bool reverse,
                 kv_zelem_cb cb, void *ctx);
/* Adds member with score, or sets the score of an existing member (score
 * not NaN; -0 is stored as 0). *created (may be NULL) tells whether it was new. KV_OK;
 * KV_ETOOBIG (member over value_bytes_max), KV_EFULL, KV_ENOMEM: nothing
 * changed. */
int kv_zset_add(struct kv *kv, struct kv_coll *c, const void *member, size_t len, double score,
                bool *created) __attribute__((warn_unused_result));
/* Removes member: KV_OK or KV_ENOTFOUND. */
int kv_zset_remove(struct kv *kv, struct kv_coll *c, const void *member, size_t len);
/* Removes the elements of ranks [from, to) (to <= count). */
void kv_zset_remove_range(struct kv *kv, struct kv_coll *c, uint64_t from, uint64_t to);
/* ZSCAN: packed, every element in one call (cursor 0 back, as Redis does
 * for a listpack); else as kv_scan() over the members' table (same bounds
 * and guarantee). cb's return value is ignored. */
uint64_t kv_zset_scan(const struct kv_coll *c, uint64_t cursor, uint32_t count, kv_zelem_cb cb,
                      void *ctx);

/* Makes dst's `key` what src's is: the same type, value and expiry, even
 * a logically expired entry (kv_copy.c); no key in src deletes it from dst.
 * dst != src. KV_OK, or KV_ENOMEM/KV_EFULL/KV_ETOOBIG (dst's key is then
 * gone). Scripts keep the keys they change so in an undo keyspace
 * (docs/scripting.md). O(elements). */
int kv_key_copy(struct kv *dst, const struct kv *src, const void *key, size_t key_len)
    __attribute__((warn_unused_result));

/* MEMORY USAGE: bytes held for the live key (its entry, and for a hash or a
 * set every element and table): KV_OK or KV_ENOTFOUND. */
int kv_memory_usage(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
                    uint64_t *bytes);

/* ---- DUMP, RESTORE, COPY, OBJECT ENCODING (kv_snapshot.c) --------------------
 *
 * A DUMP payload is one key's value in the snapshot's record encoding,
 * versioned and checksummed (format version 1, integers little-endian):
 *
 *     0   1  type (enum kv_type, the snapshot record's type byte)
 *     1   4  string: value length; hash, set, list, zset: element count (>= 1)
 *     5   .  the value, exactly as a snapshot record holds it (drawn below)
 *     .   2  dump format version (KV_DUMP_VERSION)
 *     .   4  crc32c of every byte before this field
 *
 * It carries neither the key nor the expiry (RESTORE takes both as
 * arguments). kv_restore() checks the footer first, then every length,
 * element, order and duplicate as the snapshot loader does (it is the same
 * code); nothing is stored unless the whole payload is valid. A new type
 * is covered by its snapshot record: DUMP, RESTORE and COPY go through it. */
#define KV_DUMP_VERSION 1u
#define KV_DUMP_HEAD_BYTES 5u
#define KV_DUMP_FOOTER_BYTES 6u

/* The payload of the live key's value, in *out (malloc'd, the caller frees
 * it) of *out_len bytes. KV_OK; KV_ENOTFOUND; KV_ETOOBIG if it would be
 * over max_bytes (nothing allocated); KV_ENOMEM. */
int kv_dump(const struct kv *kv, const void *key, size_t key_len, int64_t now_ms,
            size_t max_bytes, uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));
/* Whether a payload's version and checksum are right (what RESTORE answers
 * "DUMP payload version or checksum are wrong" for): KV_OK or KV_EVERSION. */
int kv_dump_check(const uint8_t *payload, size_t len);
/* RESTORE: stores the payload's value at key with expire_ms (KV_NO_EXPIRY
 * or absolute), replacing any value. KV_OK; KV_EVERSION (version or
 * checksum wrong); KV_ECORRUPT (the checksum holds but the content does
 * not: a length, an order, a duplicate, an unknown type); KV_ETOOBIG,
 * KV_EFULL, KV_ENOMEM. On any error the keyspace is unchanged. */
int kv_restore(struct kv *kv, const void *key, size_t key_len, const uint8_t *payload,
               size_t len, int64_t expire_ms, int64_t now_ms) __attribute__((warn_unused_result));
/* COPY: a deep copy of src's value and expiry at dst (src != dst). KV_OK;
 * KV_ENOTFOUND (src not live); KV_ENOTSET if dst is live and !replace;
 * KV_ETOOBIG, KV_EFULL, KV_ENOMEM (nothing changed). A collection is
 * copied through its DUMP payload: a transient buffer of its size. */
int kv_copy(struct kv *kv, const void *src, size_t src_len, const void *dst, size_t dst_len,
            int64_t now_ms, bool replace) __attribute__((warn_unused_result));
/* OBJECT ENCODING of a collection, in Redis's names: "listpack" (packed
 * hashes, sets and sorted sets), "intset", "hashtable" (hashes and sets in a
 * table), "skiplist" (table-and-tree sorted sets), "quicklist" (lists),
 * "stream". Strings are the caller's (by content). */
const char *kv_coll_encoding(const struct kv_coll *c);

/* ---- Snapshots -------------------------------------------------------------
 *
 * Format, version 5, all integers little-endian:
 *
 *   header (44 bytes)
 *     0   8  magic "SHOALKV\n"
 *     8   4  format version (5; a loader also takes 4, which has no
 *            libraries section, 3, which has no streams either, 2, which
 *            has no sorted sets, and 1, which has strings only)
 *    12   4  flags (0; reserved)
 *    16   8  applied index
 *    24   8  key count
 *    32   8  total bytes of the snapshot, header and trailer included
 *    40   4  crc32c of bytes 0..39
 *   libraries (version 5): u32 block length | the function libraries
 *     (kv_libs_block_write, "Function libraries" below) | u32 crc32c of
 *     the length and the block, chained into the trailer as a record's
 *   records, key count of them, each:
 *     0   1  type (enum kv_type)
 *     1   1  flags: bit 0 = has expiry; other bits 0
 *     2   4  key length  (<= key_bytes_max of the loader)
 *     6   4  string: value length (<= value_bytes_max of the loader);
 *            hash, set, list, zset: element count (>= 1)
 *    10   8  expiry in ms, >= 0 (only if flags bit 0)
 *     .   .  key bytes, then the value:
 *              string  its bytes
 *              set     per member: u32 length | bytes
 *              list    per item:   u32 length | bytes (head first)
 *              hash    per field:  u32 field length | u32 value length |
 *                                  field bytes | value bytes
 *              zset    per member: u32 length | u64 score (IEEE 754
 *                                  binary64 bits, never NaN) | bytes,
 *                                  in (score, member) order, lowest first
 *              stream  (the value length field is its node count, 0 or
 *                      more) u64 bytes that follow | u64 length |
 *                      u64 entries added | id last | id first |
 *                      id max deleted (an id: u64 ms | u64 seq) |
 *                      per node: id master | u32 listpack bytes |
 *                        u32 n | n bytes of node data (kv_stream.c) |
 *                      u32 groups | per group (by name): u32 name
 *                        length | name | id last delivered | i64
 *                        entries read (-1: unknown) | u32 consumers |
 *                        per consumer (by name): u32 name length |
 *                          name | i64 seen ms | u32 pending | per
 *                          pending entry (by id): id | i64 delivery ms
 *                          | u64 deliveries
 *            (every element length <= value_bytes_max of the loader)
 *     .   4  crc32c of the record's bytes before this field
 *   trailer (12 bytes)
 *     0   8  magic "SHOALEND"
 *     8   4  crc32c of the header's crc and every record's crc, in order
 *             (4 bytes each), then the trailer magic: binds the records'
 *             order and number to the header
 *
 * Records are in table order (which depends on the seed); the elements of
 * a hash or a set in their encoding's order (packed: insertion; intset:
 * ascending, as text; table: the table's, which depends on the seed), and
 * the loader puts them in that order (packing what fits); a list's are in
 * list order, a sorted set's in its order, which the loader checks.
 * Logically expired keys are included (they are state until deleted). The loader refuses any mismatch: magic, version,
 * crc, a length over a limit or past the declared total, a duplicate key or
 * element, an empty collection, an unknown type or flag, a short or long
 * input; the error message names the byte offset. It checks every declared
 * size against the limits before allocating for it.
 */
#define KV_SNAPSHOT_VERSION 5u
#define KV_SNAPSHOT_VERSION_STREAMS 4u     /* no function libraries */
#define KV_SNAPSHOT_VERSION_ZSETS 3u       /* no streams */
#define KV_SNAPSHOT_VERSION_COLLECTIONS 2u /* no sorted sets */
#define KV_SNAPSHOT_STREAM_MIN_BYTES 76u   /* a stream's body with no node, no group */
#define KV_SNAPSHOT_VERSION_STRINGS 1u
#define KV_SNAPSHOT_HEADER_BYTES 44u
#define KV_SNAPSHOT_TRAILER_BYTES 12u
#define KV_SNAPSHOT_LIBS_EMPTY_BYTES 12u /* the libraries section with none */
#define KV_SNAPSHOT_RECORD_MIN_BYTES 14u /* no expiry, empty key and value */

/* Receives the next `len` (1..KV_SNAPSHOT_CHUNK_BYTES) bytes of a snapshot;
 * the data is valid for the call only. Returns 0, or non-zero to abort. */
typedef int (*kv_write_cb)(void *ctx, const uint8_t *data, size_t len);

/* Exact size in bytes of the snapshot kv_snapshot_write() would write now. */
uint64_t kv_snapshot_size(const struct kv *kv);

/* Streams the whole keyspace as a snapshot taken at applied_index, in one
 * call (a walk, below, run to its end). KV_OK, KV_EIO if the callback
 * aborted, KV_ENOMEM. */
int kv_snapshot_write(struct kv *kv, uint64_t applied_index, kv_write_cb write, void *ctx)
    __attribute__((warn_unused_result));

/* A snapshot of the keyspace as it is at kv_walk_begin(), written by steps
 * while the keyspace keeps changing: no fork, no copy of the keyspace. The
 * steps may run on another thread (threaded): every change the keyspace's
 * own thread makes first writes the entries of the bucket it changes, if
 * the walk has not reached it, into a side buffer that the next step puts
 * out; past KV_WALK_SIDE_BYTES_MAX of such records a change waits for the
 * writer (threaded walks only). While a walk runs, the table does not
 * resize (chains grow instead). kv_flush() hands the tables to the walk.
 * kv_walk_end() must run on the keyspace's thread after the last step (or
 * after the writer stopped: kv_walk_cancel() releases a change that waits),
 * and before kv_destroy(). */
struct kv_walk;
int kv_walk_begin(struct kv *kv, uint64_t applied_index, bool threaded, struct kv_walk **out)
    __attribute__((warn_unused_result));
/* Writes up to `buckets` more buckets (and the records changes put aside)
 * through write; *done once the trailer is out. KV_OK, KV_EIO (the callback
 * failed), KV_ENOMEM, or KV_ECORRUPT if the bytes do not add up to the size
 * declared (a bug). After an error the walk only ends. */
int kv_walk_step(struct kv_walk *w, uint32_t buckets, kv_write_cb write, void *ctx, bool *done)
    __attribute__((warn_unused_result));
void kv_walk_cancel(struct kv_walk *w);
void kv_walk_end(struct kv *kv, struct kv_walk *w);
/* Bytes of records that changes have put aside and no step has put out
 * yet: a writer that paces itself goes on at once past a few MB, so that
 * no change waits for room. Any thread. */
size_t kv_walk_side_bytes(struct kv_walk *w);

/* Fills buf with up to cap bytes of the snapshot; returns how many (0 at the
 * end of the input), or a negative number on a read error. */
typedef int64_t (*kv_read_cb)(void *ctx, uint8_t *buf, size_t cap);

/* Loads a snapshot into a new keyspace made with `config` (whose limits the
 * records must respect). On KV_OK, *out owns the new keyspace and
 * *applied_index is the snapshot's index. On error *out is NULL, nothing
 * leaks, and err (if err_cap > 0) holds a message naming the byte offset.
 * Errors: KV_ECORRUPT, KV_EVERSION, KV_EIO (read callback), KV_ENOMEM,
 * KV_EINVAL (bad config). */
int kv_snapshot_load(const struct kv_config *config, kv_read_cb read, void *ctx,
                     struct kv **out, uint64_t *applied_index, char *err, size_t err_cap)
    __attribute__((warn_unused_result));
/* The same, from a buffer holding the whole snapshot. */
int kv_snapshot_load_buffer(const struct kv_config *config, const uint8_t *buf, size_t len,
                            struct kv **out, uint64_t *applied_index, char *err,
                            size_t err_cap) __attribute__((warn_unused_result));

/* ---- Function libraries (FUNCTION LOAD, FCALL: docs/scripting.md) --------
 *
 * A keyspace also holds the function libraries: replicated state like the
 * keys (they change only through the log, SHOAL.FUNCTION), kept apart from
 * them (FLUSHALL keeps them, KEYS never shows them) and carried by the
 * snapshot (version 5). Each library is one record, made by the node's Lua
 * engine when it checked the code (the replicas never run Lua for it):
 *
 *   u32 name length | name | u32 code length | code | u32 functions |
 *   per function (registration order): u32 name length | name |
 *     u32 flags (KV_FN_*) | u32 description length + 1 (0: none) | description
 *
 * little-endian, lengths bounded by KV_LIB_BYTES_MAX. */
#define KV_LIBS_MAX 1000u               /* libraries in a keyspace */
#define KV_LIB_BYTES_MAX (4u << 20)     /* one library's record */
#define KV_LIB_FUNCS_MAX 1000u          /* functions of one library */
#define KV_LIBS_BYTES_MAX (64u << 20)   /* every record of a keyspace */
enum kv_fn_flags {
    KV_FN_NO_WRITES = 1 << 0,
    KV_FN_ALLOW_OOM = 1 << 1,
    KV_FN_ALLOW_STALE = 1 << 2,
    KV_FN_NO_CLUSTER = 1 << 3,
    KV_FN_ALLOW_CROSS_SLOT = 1 << 4,
};
#define KV_FN_FLAGS_ALL 0x1fu

struct kv_fn {
    const char *name, *desc; /* desc NULL: none */
    uint32_t name_len, desc_len, flags;
};
struct kv_lib {
    const char *name, *code;
    uint32_t name_len, code_len, n_funcs;
    const uint8_t *rec; /* the record (the functions are read from it) */
    uint32_t rec_len;
};

/* Checks a record and fills lib (pointing into rec): KV_OK or KV_ECORRUPT. */
int kv_lib_parse(const uint8_t *rec, size_t len, struct kv_lib *lib);
/* Function i (< lib->n_funcs) of a parsed library. */
void kv_lib_fn(const struct kv_lib *lib, uint32_t i, struct kv_fn *fn);
/* Library i (< kv_lib_count) in name order, or the named one (NULL). */
uint32_t kv_lib_count(const struct kv *kv);
const struct kv_lib *kv_lib_at(const struct kv *kv, uint32_t i);
const struct kv_lib *kv_lib_find(const struct kv *kv, const char *name, size_t len);
/* The library holding function name, and the function: NULL if none. */
const struct kv_lib *kv_fn_find(const struct kv *kv, const char *name, size_t len,
                                struct kv_fn *fn);
/* Adds a checked record (kv_lib_parse), replacing the library of its name:
 * KV_OK, KV_ENOMEM, KV_ECORRUPT (bad record), KV_EINVAL (past a limit). */
int kv_lib_put(struct kv *kv, const uint8_t *rec, size_t len);
bool kv_lib_delete(struct kv *kv, const char *name, size_t len);
void kv_lib_flush(struct kv *kv);
/* Exchanges the libraries of a and b. */
void kv_libs_swap(struct kv *a, struct kv *b);
/* The libraries as one block (the snapshot's, after its header; FUNCTION
 * DUMP's body): u32 count | per library: u32 record length | record. */
uint64_t kv_libs_block_bytes(const struct kv *kv);
void kv_libs_block_write(const struct kv *kv, uint8_t *out);
/* Replaces kv's libraries with a block's: KV_OK, KV_ECORRUPT, KV_ENOMEM,
 * KV_EINVAL (a limit). Nothing changes on error. */
int kv_libs_block_load(struct kv *kv, const uint8_t *block, size_t len);
/* Checks a block without loading it (same codes). */
int kv_libs_block_check(const uint8_t *block, size_t len);

#endif
