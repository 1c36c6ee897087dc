/* map.h: the cluster map: which shard holds each of the 16384 slots, and
 * which nodes hold a replica of each shard. Pure: built from the
 * configuration, the same on every node (docs/cluster.md, "Placement").
 *
 * Shard k (0-based) is Raft group k + 1 (group 0 is kept for the meta group
 * that will hold the map once it can change), holds the slots
 * [k * 16384 / S, (k + 1) * 16384 / S) and is replicated on R nodes chosen
 * greedily, shard by shard: first its preferred leader, the node leading
 * the fewest shards so far, then the nodes holding the fewest replicas; so
 * leaders and replicas spread over the nodes as evenly as S, R and N allow
 * (within one of each other). With S = 1 and R = N this is the one group on
 * every node that shoal had before sharding: group 1, every slot. */
#ifndef SHOAL_CLUSTER_MAP_H
#define SHOAL_CLUSTER_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/slot.h"

#define MAP_SHARDS_MAX 16384u /* shards of one cluster: one per slot at most */
#define MAP_REPLICAS_MAX 7u   /* replicas of one shard */
#define MAP_NODES_MAX 64u     /* nodes the map can place on */

_Static_assert(MAP_SHARDS_MAX <= SLOT_COUNT, "a shard holds at least one slot");

struct map_shard {
    uint64_t group;  /* Raft group id: index + 1 */
    uint16_t first, last; /* slots first..last */
    uint8_t n_replicas;
    uint64_t replicas[MAP_REPLICAS_MAX]; /* node ids; [0] is the preferred leader */
};

struct map {
    uint64_t epoch; /* grows with every change of the map (1: as configured) */
    uint32_t n_shards;
    struct map_shard *shards;       /* n_shards */
    uint16_t slot_shard[SLOT_COUNT]; /* slot -> shard index */
};

/* Builds the map for `n_nodes` node ids (any order), `shards` shards and
 * `replicas` replicas each (capped at n_nodes). 0, or -1 with a message in
 * err (bad counts, ENOMEM). map_free() releases it. */
int map_build(struct map *m, const uint64_t *node_ids, uint32_t n_nodes, uint32_t shards,
              uint32_t replicas, char *err, size_t err_cap);
void map_free(struct map *m);

/* The shard index holding a slot, or of a group id (-1 if none). */
static inline uint32_t map_shard_of_slot(const struct map *m, uint16_t slot) {
    return m->slot_shard[slot];
}
int32_t map_shard_of_group(const struct map *m, uint64_t group);
bool map_has_replica(const struct map_shard *s, uint64_t node);

#endif
