/* map.c: see map.h. */
#include "meta/map.h"

#include <assert.h>
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
    m->n_nodes = n_nodes;
    for (uint32_t i = 0; i < n_nodes; i++) {
        m->nodes[i].id = ids[i];
        m->nodes[i].state = MAP_NODE_UP;
    }
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

/* ---- encoding (map.h draws the format) ---- */

static const char map__magic[5] = {'S', 'H', 'M', 'A', 'P'};

struct map__w {
    uint8_t *p, *end;
};

static void map__put(struct map__w *w, uint64_t v, unsigned bytes) {
    assert(w->p + bytes <= w->end);
    for (unsigned i = 0; i < bytes; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void map__put_str(struct map__w *w, const char *str, size_t cap) {
    size_t len = strnlen(str, cap);
    map__put(w, len, 1);
    assert(w->p + len <= w->end);
    memcpy(w->p, str, len);
    w->p += len;
}

size_t map_encoded_size(const struct map *m) {
    size_t bytes = sizeof(map__magic) + 1 + 8 + 4 + 4;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const struct map_node *nd = &m->nodes[i];
        bytes += 8 + 1 + 1 + strnlen(nd->zone, MAP_ZONE_BYTES) + 1 +
                 strnlen(nd->host, MAP_HOST_BYTES) + 4;
    }
    for (uint32_t k = 0; k < m->n_shards; k++) {
        bytes += 8 + 1 + 8u * m->shards[k].n_replicas + 2 + 4;
    }
    assert(bytes <= MAP_ENCODED_BYTES_MAX);
    return bytes;
}

size_t map_encode(const struct map *m, uint8_t *buf, size_t cap) {
    size_t size = map_encoded_size(m);
    if (cap < size) return 0;
    struct map__w w = {buf, buf + size};
    memcpy(w.p, map__magic, sizeof(map__magic));
    w.p += sizeof(map__magic);
    map__put(&w, MAP_ENCODING_VERSION, 1);
    map__put(&w, m->epoch, 8);
    map__put(&w, m->n_nodes, 4);
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const struct map_node *nd = &m->nodes[i];
        map__put(&w, nd->id, 8);
        map__put(&w, nd->state, 1);
        map__put_str(&w, nd->zone, MAP_ZONE_BYTES - 1);
        map__put_str(&w, nd->host, MAP_HOST_BYTES - 1);
        map__put(&w, nd->client_port, 2);
        map__put(&w, nd->peer_port, 2);
    }
    map__put(&w, m->n_shards, 4);
    for (uint32_t k = 0; k < m->n_shards; k++) {
        const struct map_shard *s = &m->shards[k];
        map__put(&w, s->group, 8);
        map__put(&w, s->n_replicas, 1);
        for (uint8_t i = 0; i < s->n_replicas; i++) map__put(&w, s->replicas[i], 8);
        map__put(&w, 1, 2); /* one range */
        map__put(&w, s->first, 2);
        map__put(&w, s->last, 2);
    }
    assert(w.p == w.end);
    return size;
}

struct map__r {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t map__get(struct map__r *r, unsigned bytes) {
    if (r->bad || (size_t)(r->end - r->p) < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) v |= (uint64_t)*r->p++ << (8 * i);
    return v;
}

static void map__get_str(struct map__r *r, char *out, size_t cap) {
    size_t len = (size_t)map__get(r, 1);
    if (r->bad || len >= cap || (size_t)(r->end - r->p) < len) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->p, len);
    out[len] = '\0';
    r->p += len;
}

static bool map__is_node(const struct map *m, uint64_t id) {
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].id == id) return true;
    }
    return false;
}

static int map__decode_nodes(struct map *m, struct map__r *r, char *err, size_t err_cap) {
    uint64_t n_nodes = map__get(r, 4);
    if (r->bad || n_nodes == 0 || n_nodes > MAP_NODES_MAX) {
        snprintf(err, err_cap, "map: %llu nodes (1..%u)", (unsigned long long)n_nodes,
                 MAP_NODES_MAX);
        return -1;
    }
    m->n_nodes = (uint32_t)n_nodes;
    for (uint32_t i = 0; i < m->n_nodes && !r->bad; i++) {
        struct map_node *nd = &m->nodes[i];
        nd->id = map__get(r, 8);
        nd->state = (uint8_t)map__get(r, 1);
        map__get_str(r, nd->zone, MAP_ZONE_BYTES);
        map__get_str(r, nd->host, MAP_HOST_BYTES);
        nd->client_port = (uint16_t)map__get(r, 2);
        nd->peer_port = (uint16_t)map__get(r, 2);
        if (i > 0 && nd->id <= m->nodes[i - 1].id) r->bad = true; /* ascending, distinct */
    }
    if (r->bad) snprintf(err, err_cap, "map: bad node table");
    return r->bad ? -1 : 0;
}

static int map__decode_shard(struct map *m, uint32_t k, struct map__r *r, bool *owned,
                             char *err, size_t err_cap) {
    struct map_shard *s = &m->shards[k];
    s->group = map__get(r, 8);
    uint64_t n_replicas = map__get(r, 1);
    if (r->bad || s->group != k + 1u || n_replicas == 0 || n_replicas > MAP_REPLICAS_MAX) {
        snprintf(err, err_cap, "map: shard %u: group %llu, %llu replicas", k,
                 (unsigned long long)s->group, (unsigned long long)n_replicas);
        return -1;
    }
    s->n_replicas = (uint8_t)n_replicas;
    for (uint8_t i = 0; i < s->n_replicas; i++) {
        s->replicas[i] = map__get(r, 8);
        if (!r->bad && !map__is_node(m, s->replicas[i])) {
            snprintf(err, err_cap, "map: shard %u: replica %llu is not a node", k,
                     (unsigned long long)s->replicas[i]);
            return -1;
        }
    }
    uint64_t n_ranges = map__get(r, 2);
    if (r->bad || n_ranges != 1) { /* several ranges: not yet (docs/cluster.md) */
        snprintf(err, err_cap, "map: shard %u: %llu slot ranges (1 supported)", k,
                 (unsigned long long)n_ranges);
        return -1;
    }
    uint64_t first = map__get(r, 2), last = map__get(r, 2);
    if (r->bad || first > last || last >= SLOT_COUNT) {
        snprintf(err, err_cap, "map: shard %u: bad slot range", k);
        return -1;
    }
    s->first = (uint16_t)first;
    s->last = (uint16_t)last;
    for (uint32_t slot = s->first; slot <= s->last; slot++) {
        if (owned[slot]) {
            snprintf(err, err_cap, "map: slot %u owned twice", slot);
            return -1;
        }
        owned[slot] = true;
        m->slot_shard[slot] = (uint16_t)k;
    }
    return 0;
}

int map_decode(struct map *m, const uint8_t *buf, size_t len, char *err, size_t err_cap) {
    memset(m, 0, sizeof(*m));
    struct map__r r = {buf, buf + len, false};
    if (len < sizeof(map__magic) + 1 || memcmp(buf, map__magic, sizeof(map__magic)) != 0) {
        snprintf(err, err_cap, "map: bad magic");
        return -1;
    }
    r.p += sizeof(map__magic);
    uint64_t version = map__get(&r, 1);
    if (version != MAP_ENCODING_VERSION) {
        snprintf(err, err_cap, "map: version %llu (%u known)", (unsigned long long)version,
                 MAP_ENCODING_VERSION);
        return -1;
    }
    m->epoch = map__get(&r, 8);
    if (map__decode_nodes(m, &r, err, err_cap) != 0) return -1;
    uint64_t n_shards = map__get(&r, 4);
    if (r.bad || n_shards == 0 || n_shards > MAP_SHARDS_MAX || m->epoch == 0) {
        snprintf(err, err_cap, "map: %llu shards (1..%u), epoch %llu",
                 (unsigned long long)n_shards, MAP_SHARDS_MAX, (unsigned long long)m->epoch);
        return -1;
    }
    m->shards = calloc(n_shards, sizeof(m->shards[0]));
    bool *owned = calloc(SLOT_COUNT, sizeof(bool));
    int rc = m->shards != NULL && owned != NULL ? 0 : -1;
    if (rc != 0) snprintf(err, err_cap, "map: out of memory");
    m->n_shards = (uint32_t)n_shards;
    for (uint32_t k = 0; k < m->n_shards && rc == 0; k++) {
        rc = map__decode_shard(m, k, &r, owned, err, err_cap);
    }
    for (uint32_t slot = 0; slot < SLOT_COUNT && rc == 0; slot++) {
        if (!owned[slot]) {
            snprintf(err, err_cap, "map: slot %u owned by no shard", slot);
            rc = -1;
        }
    }
    if (rc == 0 && r.p != r.end) {
        snprintf(err, err_cap, "map: %zu bytes after the map", (size_t)(r.end - r.p));
        rc = -1;
    }
    free(owned);
    if (rc != 0) map_free(m);
    return rc;
}

int map_encoded_epoch(const uint8_t *buf, size_t len, uint64_t *epoch) {
    if (len < sizeof(map__magic) + 1 + 8 || memcmp(buf, map__magic, sizeof(map__magic)) != 0 ||
        buf[sizeof(map__magic)] != MAP_ENCODING_VERSION) {
        return -1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)buf[sizeof(map__magic) + 1 + i] << (8 * i);
    *epoch = v;
    return 0;
}

int map_copy(struct map *dst, const struct map *src) {
    *dst = *src;
    dst->shards = calloc(src->n_shards ? src->n_shards : 1, sizeof(dst->shards[0]));
    if (dst->shards == NULL) return -1;
    memcpy(dst->shards, src->shards, src->n_shards * sizeof(dst->shards[0]));
    return 0;
}

uint32_t map_meta_members(const uint64_t *node_ids, uint32_t n_nodes, uint32_t members_max,
                          uint64_t *voters, uint64_t *learners, uint32_t *n_learners) {
    assert(n_nodes >= 1 && n_nodes <= MAP_NODES_MAX);
    uint64_t ids[MAP_NODES_MAX];
    memcpy(ids, node_ids, n_nodes * sizeof(ids[0]));
    qsort(ids, n_nodes, sizeof(ids[0]), map__cmp_u64);
    uint32_t cap = members_max == 0 || members_max > MAP_META_MEMBERS_MAX ? MAP_META_MEMBERS_MAX
                                                                          : members_max;
    uint32_t members = n_nodes < cap ? n_nodes : cap;
    uint32_t v = members >= 5 ? 5 : members >= 3 ? 3 : members;
    memcpy(voters, ids, v * sizeof(ids[0]));
    assert(members >= v);
    memcpy(learners, ids + v, (members - v) * sizeof(ids[0]));
    *n_learners = members - v;
    return v;
}
