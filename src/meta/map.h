/* map.h: the cluster map: which shard holds each of the 16384 slots, and
 * which nodes hold a replica of each shard, at an epoch. Pure: built from
 * the configuration, the same on every node (docs/cluster.md, "Placement"),
 * and encoded as the state of the meta group, group 0 (docs/cluster.md,
 * "The meta group").
 *
 * Shard k (0-based) is Raft group k + 1 (group 0 is the meta group), holds the slots
 * [k * 16384 / S, (k + 1) * 16384 / S) and is replicated on R nodes chosen
 * greedily, shard by shard: first its preferred leader, the node leading
 * the fewest shards so far, then the nodes holding the fewest replicas; so
 * leaders and replicas spread over the nodes as evenly as S, R and N allow
 * (within one of each other). With S = 1 and R = N this is the one group on
 * every node that shoal had before sharding: group 1, every slot. */
#ifndef SHOAL_META_MAP_H
#define SHOAL_META_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "router/slot.h"

#define MAP_SHARDS_MAX 16384u /* shards of one cluster: one per slot at most */
#define MAP_REPLICAS_MAX 7u   /* replicas of one shard */
#define MAP_NODES_MAX 128u    /* nodes the map can place on */
/* Replicas of group 0, voters and learners: the first this many nodes by
 * id; every other node pulls the map (docs/cluster.md, "The meta group").
 * Raft's RAFT_NODES_MAX (16) bounds every group's membership. */
#define MAP_META_MEMBERS_MAX 16u

_Static_assert(MAP_SHARDS_MAX <= SLOT_COUNT, "a shard holds at least one slot");

struct map_shard {
    uint64_t group;  /* Raft group id: index + 1 */
    uint16_t first, last; /* slots first..last */
    uint8_t n_replicas;
    uint64_t replicas[MAP_REPLICAS_MAX]; /* node ids; [0] is the preferred leader */
};

/* A node as the map knows it (the addresses are the configuration's). */
#define MAP_ZONE_BYTES 32u
#define MAP_HOST_BYTES 64u
enum map_node_state { MAP_NODE_UP = 1 };
struct map_node {
    uint64_t id;
    uint8_t state; /* enum map_node_state */
    char zone[MAP_ZONE_BYTES]; /* NUL-terminated; empty: none */
    char host[MAP_HOST_BYTES]; /* NUL-terminated */
    uint16_t client_port, peer_port;
};

struct map {
    uint64_t epoch; /* grows with every change of the map (1: as configured) */
    uint32_t n_nodes;
    struct map_node nodes[MAP_NODES_MAX]; /* by id, ascending (map_build leaves them empty) */
    uint32_t n_shards;
    struct map_shard *shards;       /* n_shards */
    uint16_t slot_shard[SLOT_COUNT]; /* slot -> shard index */
};

/* Builds the map for `n_nodes` node ids (any order), `shards` shards and
 * `replicas` replicas each (capped at n_nodes), at epoch 1; its node table
 * holds the ids (state up, no address: the caller may fill them). 0, or -1
 * with a message in err (bad counts, ENOMEM). map_free() releases it. */
int map_build(struct map *m, const uint64_t *node_ids, uint32_t n_nodes, uint32_t shards,
              uint32_t replicas, char *err, size_t err_cap);
void map_free(struct map *m);

/* The shard index holding a slot, or of a group id (-1 if none). */
static inline uint32_t map_shard_of_slot(const struct map *m, uint16_t slot) {
    return m->slot_shard[slot];
}
int32_t map_shard_of_group(const struct map *m, uint64_t group);
bool map_has_replica(const struct map_shard *s, uint64_t node);

/* ---- the map as group 0 stores it (docs/cluster.md, "The meta group") ----
 *
 *   "SHMAP" | u8 version (1) | u64 epoch
 *   u32 n_nodes  | per node:  u64 id | u8 state | u8 zone_len | zone
 *                | u8 host_len | host | u16 client_port | u16 peer_port
 *   u32 n_shards | per shard: u64 group | u8 n_replicas | u64 replica[n]
 *                | u16 n_ranges | (u16 first, u16 last)[n_ranges]
 *
 * Little-endian. Today every shard has exactly one range. */
#define MAP_ENCODING_VERSION 1u
#define MAP_ENCODED_BYTES_MAX (16u + 4u + MAP_NODES_MAX * (8u + 1u + 1u + MAP_ZONE_BYTES + 1u + \
                               MAP_HOST_BYTES + 4u) + 4u + MAP_SHARDS_MAX * (8u + 1u + \
                               8u * MAP_REPLICAS_MAX + 2u + 4u))
/* Bytes map_encode() writes for m. */
size_t map_encoded_size(const struct map *m);
/* Encodes m into buf (cap >= map_encoded_size(m)); returns the bytes
 * written, or 0 if cap is too small. */
size_t map_encode(const struct map *m, uint8_t *buf, size_t cap);
/* Decodes a map (map_free() it): 0, or -1 with a message in err (bad
 * magic, version, a length over its limit, groups not 1..S in order, a
 * replica that is not a node, a slot owned twice or not at all). */
int map_decode(struct map *m, const uint8_t *buf, size_t len, char *err, size_t err_cap);
/* The epoch of an encoded map, read from its header alone (the rest is
 * not checked): 0, or -1 if buf is not a map of this version. */
int map_encoded_epoch(const uint8_t *buf, size_t len, uint64_t *epoch);
/* A deep copy (0, or -1 on ENOMEM). */
int map_copy(struct map *dst, const struct map *src);

/* Group 0's members: M = min(n_nodes, members_max) of the node ids in
 * ascending order (members_max 0 or above MAP_META_MEMBERS_MAX:
 * MAP_META_MEMBERS_MAX). Its voters are the first V of them, V = 5 with
 * M >= 5, 3 with 3 or 4, else M. Returns V; voters gets them, learners
 * the next M - V ids (learners has room for MAP_META_MEMBERS_MAX - V),
 * *n_learners their count. The nodes after them are not in group 0. */
uint32_t map_meta_members(const uint64_t *node_ids, uint32_t n_nodes, uint32_t members_max,
                          uint64_t *voters, uint64_t *learners, uint32_t *n_learners);

#endif
