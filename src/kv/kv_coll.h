/* kv_coll.h: collections, the values of hash and set keys (internal to
 * src/kv/; the public operations are in kv.h).
 *
 * A key whose type is not KV_TYPE_STRING holds, as its 8 value bytes, a
 * pointer to a struct kv_coll, which the key's entry owns: freeing the entry
 * (kv_entry_free) frees the collection; moving it to another entry (RENAME,
 * a new expiry slot) copies the pointer and frees only the old entry's shell
 * (kv_entry_free_shell).
 *
 * Hashes and sets (struct kv_hset) have three encodings (kv.h):
 *   packed  one buffer of elements in insertion order, each
 *             hash: u8 field length | field | u8 value length | value
 *             set:  u8 member length | member
 *           (lengths <= KV_HASH_PACK_VALUE_BYTES / KV_SET_PACK_VALUE_BYTES)
 *   intset  a set's integers in ascending order, each `width` bytes (2, 4
 *           or 8: the least that holds every member, widened as needed,
 *           never narrowed), little-endian two's complement
 *   table   a kv_dict of its own (the keyspace's table: SipHash under the
 *           keyspace's seed, incremental resize, reverse-binary scan), one
 *           kv_entry per element with no expiry slot: a hash field is the
 *           entry's key and its value the entry's value; a set member is
 *           the key, with an empty value.
 *
 * Accounting: c->memory_bytes counts the struct, the packed buffer, or the
 * dict's struct and its element entries, the dict's table_bytes its bucket
 * arrays; c->payload_bytes the bytes its
 * elements take in a snapshot record (kv.h). Every change to a collection is
 * added to the keyspace's memory_bytes and data_bytes at once, so
 * kv_memory_bytes() and kv_snapshot_size() stay exact.
 */
#ifndef SHOAL_KV_COLL_H
#define SHOAL_KV_COLL_H

#include "kv/kv_dict.h"
#include "kv/kv_stream.h"

/* Snapshot payload of one element: a set member is u32 length | bytes; a
 * hash field is u32 field length | u32 value length | field | value. */
#define KV_COLL_SET_ELEM_OVERHEAD 4u
#define KV_COLL_HASH_ELEM_OVERHEAD 8u

/* A list (kv_list.c): a deque of nodes, each a buffer of items packed as
 *
 *   LEB128 length | bytes | the length's LEB128 bytes in reverse order
 *
 * (as a listpack's entry: the length at both ends lets a walk go either
 * way). A node's bytes are buf[start, end) of cap; the slack on either side
 * takes pushes at that end. A node holds at most the keyspace's
 * list_node_bytes (kv_config; Redis's list-max-listpack-size: by default
 * -2, KV_LIST_NODE_BYTES) unless it holds one larger item, and at most
 * list_node_items items when that is not 0. A node made under a larger
 * setting keeps its size until it is split or merged.
 * The map nodes[first, first + nnodes) keeps the nodes in order with their
 * counts, so an index is found by a walk over the map (from the nearer end)
 * and then inside one node (from its nearer end). The map has room at both
 * ends and is re-centred in twice the nodes when an end reaches it. An
 * empty list holds no node and no map. */
#define KV_LIST_NODE_BYTES 8192u      /* the default: list-max-listpack-size -2 */
#define KV_LIST_NODE_BYTES_MAX 65536u /* list-max-listpack-size -5 */
struct kv_lnode {
    uint8_t *buf;
    uint32_t cap;
    uint32_t start;
    uint32_t end;
    uint32_t count;
};
struct kv_list {
    struct kv_lnode *nodes;
    uint64_t map_cap;
    uint64_t first;
    uint64_t nnodes;
    uint64_t count;
};

/* A sorted set (kv_zset.c): packed, or a table and a B+tree (struct
 * kv_zbig, private to kv_zset.c). The packed buffer holds the elements in
 * order, each:
 *
 *   u8 member length (<= KV_ZSET_PACK_MEMBER_BYTES) | member | score
 *
 * a score being one byte t < 0xF0 for the integers -16..223 (t - 16), or
 * 0xF0 and an int16, 0xF1 and an int32, 0xF2 and the double's 8 bytes (all
 * little-endian). */
struct kv_zbig;
struct kv_zset {
    union {
        uint8_t *pack;       /* packed: pack_bytes bytes, NULL when empty */
        struct kv_zbig *big; /* is_big */
    };
    uint16_t pack_bytes;
    uint8_t pack_count;
    bool is_big;
};
#define KV_ZSET_SCORE_BYTES 8u
#define KV_COLL_ZSET_ELEM_OVERHEAD 12u /* snapshot: u32 length | u64 score bits */

/* A hash or a set (kv_coll.c); the encodings are drawn above. */
enum kv_hset_enc { KV_HSET_PACK = 0, KV_HSET_INTSET = 1, KV_HSET_DICT = 2 };
struct kv_hset {
    union {
        uint8_t *pack;        /* packed or intset: pack_bytes bytes, NULL when empty */
        struct kv_dict *dict; /* table */
    };
    uint32_t pack_bytes;
    uint16_t pack_count;
    uint8_t enc;   /* enum kv_hset_enc */
    uint8_t width; /* intset: bytes per integer */
};

struct kv_coll {
    uint8_t type;           /* KV_TYPE_HASH, _SET, _LIST, _ZSET or _STREAM */
    uint64_t memory_bytes;  /* the struct, elements, list blocks and map, zset nodes */
    uint64_t payload_bytes; /* snapshot bytes of the elements */
    union {                 /* a zset's or hset's struct stops after its member */
        struct kv_hset hset; /* hash, set */
        struct kv_list list; /* list */
        struct kv_zset zset; /* sorted set */
        struct kv_stream stream; /* stream (kv_stream.h) */
    };
};

/* Bytes of a collection's struct: a sorted set's, a list's, a hash's and a
 * set's stop after their member (small ones are many: their struct is
 * 40-64 bytes, not the union's whole size). */
static inline size_t kv_coll_struct_bytes(uint8_t type) {
    if (type == KV_TYPE_ZSET) return offsetof(struct kv_coll, zset) + sizeof(struct kv_zset);
    if (type == KV_TYPE_LIST) return offsetof(struct kv_coll, list) + sizeof(struct kv_list);
    if (type == KV_TYPE_HASH || type == KV_TYPE_SET) {
        return offsetof(struct kv_coll, hset) + sizeof(struct kv_hset);
    }
    return sizeof(struct kv_coll);
}

static inline bool kv_type_is_coll(uint8_t type) { return type != KV_TYPE_STRING; }

/* The collection a collection key's entry points to. */
static inline struct kv_coll *kv_entry_coll(const struct kv_entry *e) {
    assert(kv_type_is_coll(e->type));
    assert(e->value_len == sizeof(struct kv_coll *));
    struct kv_coll *c;
    memcpy(&c, kv_entry_value(e), sizeof(c));
    assert(c != NULL && c->type == e->type);
    return c;
}

static inline uint64_t kv_coll_elem_payload(uint8_t type, uint32_t field_len,
                                            uint32_t value_len) {
    if (type == KV_TYPE_ZSET) return KV_COLL_ZSET_ELEM_OVERHEAD + (uint64_t)field_len;
    if (type == KV_TYPE_HASH) return KV_COLL_HASH_ELEM_OVERHEAD + (uint64_t)field_len + value_len;
    assert(value_len == 0);
    return KV_COLL_SET_ELEM_OVERHEAD + (uint64_t)field_len; /* a set member, a list item */
}

/* ---- Sorted sets (kv_zset.c) ---- */

uint64_t kv_zset_count(const struct kv_coll *c);
/* Bytes of the members' table (the rest is in memory_bytes). */
uint64_t kv_zset_table_bytes(const struct kv_coll *c);
/* Frees every element and node (not the kv_coll). */
void kv_zset_clear(struct kv_coll *c);
uint64_t kv_zset_digest(const struct kv_coll *c, const uint64_t key[2]);
/* Snapshot load: appends member after every element (KV_ECORRUPT if it is
 * not greater in (score, member) order, or a duplicate, or the score is
 * NaN); KV_ETOOBIG, KV_ENOMEM. */
int kv_zset_append(struct kv *kv, struct kv_coll *c, const void *member, uint32_t len,
                   double score) __attribute__((warn_unused_result));

/* ---- Lists (kv_list.c) ---- */

/* Appends a copy of item (snapshot load; its length already checked):
 * KV_OK, KV_EFULL, KV_ENOMEM (nothing changed). */
int kv_list_append(struct kv *kv, struct kv_coll *c, const void *item, uint32_t len)
    __attribute__((warn_unused_result));
/* Frees every node and the map (not the kv_coll). */
void kv_list_clear(struct kv_coll *c);
/* An order-dependent digest of the items. */
uint64_t kv_list_digest(const struct kv_coll *c, const uint64_t key[2]);
/* The list's invariants (for tests): the nodes' counts add up, each
 * node's entries walk exactly its bytes both ways, no node of several items
 * is over KV_LIST_NODE_BYTES, and memory_bytes and payload_bytes are the
 * sums of what it holds. O(items). */
bool kv_list_valid(const struct kv_coll *c);

/* A new empty collection, counted in the keyspace's memory; NULL if out of
 * memory. */
struct kv_coll *kv_coll_new(struct kv *kv, uint8_t type);
/* Frees the collection and every element, and takes them out of the
 * keyspace's accounting. */
void kv_coll_free(struct kv *kv, struct kv_coll *c);
/* An element entry whose field and value bytes the caller fills (snapshot
 * load); not yet counted nor linked. */
struct kv_entry *kv_coll_elem_alloc(uint32_t field_len, uint32_t value_len);
/* Links an element filled by the caller and counts it (a packed or intset
 * collection copies it and frees e): KV_OK, KV_ECORRUPT if the field is
 * already there (the caller frees e), KV_ENOMEM. */
int kv_coll_elem_link(struct kv *kv, struct kv_coll *c, struct kv_entry *e)
    __attribute__((warn_unused_result));
/* An order-independent digest of the elements. */
uint64_t kv_coll_digest(const struct kv_coll *c, const uint64_t key[2]);

/* Frees a collection that no keyspace counts any more (the tables a
 * snapshot walk took over from kv_flush()). */
void kv_coll_destroy(struct kv_coll *c);

/* Frees an entry but not the collection it points to (which moved). */
void kv_entry_free_shell(struct kv *kv, struct kv_entry *e);

#endif
