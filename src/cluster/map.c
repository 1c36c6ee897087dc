/* map.c: see map.h. */
#include "cluster/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int map__cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int map_build(struct map *m, const uint64_t *node_ids, uint32_t n_nodes, uint32_t shards,
              uint32_t replicas, char *err, size_t err_cap) {
    memset(m, 0, sizeof(*m));
    if (n_nodes == 0 || n_nodes > MAP_NODES_MAX) {
        snprintf(err, err_cap, "a cluster of %u nodes (1..%u)", n_nodes, MAP_NODES_MAX);
        return -1;
    }
    if (shards == 0 || shards > MAP_SHARDS_MAX || shards > SLOT_COUNT) {
        snprintf(err, err_cap, "shards must be 1..%u, not %u", MAP_SHARDS_MAX, shards);
        return -1;
    }
    if (replicas == 0 || replicas > MAP_REPLICAS_MAX) {
        snprintf(err, err_cap, "replicas must be 1..%u, not %u", MAP_REPLICAS_MAX, replicas);
        return -1;
    }
    if (replicas > n_nodes) replicas = n_nodes;
    uint64_t ids[MAP_NODES_MAX];
    memcpy(ids, node_ids, n_nodes * sizeof(ids[0]));
    qsort(ids, n_nodes, sizeof(ids[0]), map__cmp_u64);
    m->shards = calloc(shards, sizeof(m->shards[0]));
    if (m->shards == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    m->epoch = 1;
    m->n_shards = shards;
    uint32_t leads[MAP_NODES_MAX] = {0}, holds[MAP_NODES_MAX] = {0};
    for (uint32_t k = 0; k < shards; k++) {
        struct map_shard *s = &m->shards[k];
        s->group = k + 1u;
        s->first = (uint16_t)((uint64_t)k * SLOT_COUNT / shards);
        s->last = (uint16_t)((uint64_t)(k + 1) * SLOT_COUNT / shards - 1);
        /* the preferred leader: the node leading fewest shards so far (then
         * holding fewest), looking from position k; then the replicas: the
         * nodes holding fewest, looking on from the leader */
        uint32_t best = k % n_nodes;
        for (uint32_t i = 0; i < n_nodes; i++) {
            uint32_t p = (k + i) % n_nodes;
            if (leads[p] < leads[best] || (leads[p] == leads[best] && holds[p] < holds[best])) {
                best = p;
            }
        }
        bool taken[MAP_NODES_MAX] = {false};
        s->replicas[s->n_replicas++] = ids[best];
        taken[best] = true;
        leads[best]++;
        holds[best]++;
        while (s->n_replicas < replicas) {
            uint32_t pick = n_nodes;
            for (uint32_t i = 1; i < n_nodes; i++) {
                uint32_t p = (best + i) % n_nodes;
                if (!taken[p] && (pick == n_nodes || holds[p] < holds[pick])) pick = p;
            }
            s->replicas[s->n_replicas++] = ids[pick];
            taken[pick] = true;
            holds[pick]++;
        }
        for (uint32_t slot = s->first; slot <= s->last; slot++) m->slot_shard[slot] = (uint16_t)k;
    }
    return 0;
}

void map_free(struct map *m) {
    free(m->shards);
    m->shards = NULL;
    m->n_shards = 0;
}

int32_t map_shard_of_group(const struct map *m, uint64_t group) {
    if (group == 0 || group > m->n_shards) return -1;
    return (int32_t)(group - 1);
}

bool map_has_replica(const struct map_shard *s, uint64_t node) {
    for (uint8_t i = 0; i < s->n_replicas; i++) {
        if (s->replicas[i] == node) return true;
    }
    return false;
}
