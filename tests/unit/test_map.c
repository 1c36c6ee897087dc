/* test_map.c: the cluster map (src/meta/map.c): placement, the encoding
 * group 0 stores (round trip, every malformed input refused, no read past
 * the end), and group 0's voters. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/map.h"
#include "test.h"

static void fill_nodes(struct map *m) {
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        snprintf(m->nodes[i].host, sizeof(m->nodes[i].host), "127.0.0.%u", i + 1);
        m->nodes[i].client_port = (uint16_t)(7000 + i);
        m->nodes[i].peer_port = (uint16_t)(17000 + i);
    }
    snprintf(m->nodes[0].zone, sizeof(m->nodes[0].zone), "zone-a");
}

static bool maps_equal(const struct map *a, const struct map *b) {
    if (a->epoch != b->epoch || a->n_nodes != b->n_nodes || a->n_shards != b->n_shards) {
        return false;
    }
    if (memcmp(a->slot_shard, b->slot_shard, sizeof(a->slot_shard)) != 0) return false;
    for (uint32_t i = 0; i < a->n_nodes; i++) {
        const struct map_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (x->id != y->id || x->state != y->state || strcmp(x->zone, y->zone) != 0 ||
            strcmp(x->host, y->host) != 0 || x->client_port != y->client_port ||
            x->peer_port != y->peer_port) {
            return false;
        }
    }
    for (uint32_t k = 0; k < a->n_shards; k++) {
        const struct map_shard *x = &a->shards[k], *y = &b->shards[k];
        if (x->group != y->group || x->first != y->first || x->last != y->last ||
            x->n_replicas != y->n_replicas ||
            memcmp(x->replicas, y->replicas, x->n_replicas * sizeof(uint64_t)) != 0) {
            return false;
        }
    }
    return true;
}

TEST(encoding_round_trips) {
    static const uint32_t shards[] = {1, 3, 8, 16384};
    uint64_t ids[] = {5, 3, 9, 1, 7};
    for (unsigned t = 0; t < sizeof(shards) / sizeof(shards[0]); t++) {
        struct map m, d;
        char err[160];
        CHECK(map_build(&m, ids, 5, shards[t], 3, err, sizeof(err)) == 0);
        fill_nodes(&m);
        m.epoch = 42 + t;
        size_t size = map_encoded_size(&m);
        CHECK(size <= MAP_ENCODED_BYTES_MAX);
        uint8_t *buf = malloc(size);
        CHECK(buf != NULL);
        CHECK_EQ_U64(map_encode(&m, buf, size - 1), 0); /* too small: nothing */
        CHECK_EQ_U64(map_encode(&m, buf, size), size);
        CHECK(map_decode(&d, buf, size, err, sizeof(err)) == 0);
        CHECK(maps_equal(&m, &d));
        map_free(&d);
        free(buf);
        map_free(&m);
    }
}

/* Every prefix, and every single-byte change, of an encoding is decoded
 * or refused without reading past the end (ASan) or leaking. */
TEST(malformed_encodings_are_refused) {
    uint64_t ids[] = {1, 2, 3};
    struct map m, d;
    char err[160];
    CHECK(map_build(&m, ids, 3, 3, 3, err, sizeof(err)) == 0);
    fill_nodes(&m);
    size_t size = map_encoded_size(&m);
    uint8_t *buf = malloc(size);
    CHECK(buf != NULL && map_encode(&m, buf, size) == size);
    for (size_t len = 0; len < size; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, buf, len);
        int rc = map_decode(&d, cut, len, err, sizeof(err));
        free(cut);
        CHECK(rc == -1);
        CHECK(err[0] != '\0');
    }
    uint32_t accepted = 0;
    for (size_t at = 0; at < size; at++) {
        uint8_t keep = buf[at];
        buf[at] ^= 0x41;
        if (map_decode(&d, buf, size, err, sizeof(err)) == 0) {
            accepted++; /* a changed port, host byte or epoch is still a map */
            map_free(&d);
        }
        buf[at] = keep;
    }
    CHECK(accepted < size);
    /* a slot owned twice: shard 1 starts where shard 0 does */
    struct map twice;
    CHECK(map_copy(&twice, &m) == 0);
    twice.shards[1].first = 0;
    uint8_t *b2 = malloc(size);
    CHECK(map_encode(&twice, b2, size) == size);
    CHECK(map_decode(&d, b2, size, err, sizeof(err)) == -1);
    CHECK(strstr(err, "owned twice") != NULL);
    /* a replica that is not a node */
    twice.shards[1].first = m.shards[1].first;
    twice.shards[1].replicas[0] = 99;
    CHECK(map_encode(&twice, b2, size) == size);
    CHECK(map_decode(&d, b2, size, err, sizeof(err)) == -1);
    CHECK(strstr(err, "not a node") != NULL);
    /* epoch 0 */
    twice.shards[1].replicas[0] = m.shards[1].replicas[0];
    twice.epoch = 0;
    CHECK(map_encode(&twice, b2, size) == size);
    CHECK(map_decode(&d, b2, size, err, sizeof(err)) == -1);
    map_free(&twice);
    free(b2);
    free(buf);
    map_free(&m);
}

/* The most nodes any one node shares a shard with (n <= MAP_NODES_MAX). */
static uint32_t map_test__most_shared(const struct map *m, const uint64_t *ids, uint32_t n) {
    static bool shared[MAP_NODES_MAX][MAP_NODES_MAX];
    memset(shared, 0, sizeof(shared));
    for (uint32_t k = 0; k < m->n_shards; k++) {
        uint32_t at[MAP_REPLICAS_MAX];
        const struct map_shard *ms = &m->shards[k];
        for (uint8_t r = 0; r < ms->n_replicas; r++) {
            at[r] = 0;
            while (at[r] < n && ids[at[r]] != ms->replicas[r]) at[r]++;
            if (at[r] == n) return UINT32_MAX; /* not a node: fails the caller's check */
        }
        for (uint8_t a = 0; a < ms->n_replicas; a++) {
            for (uint8_t b = 0; b < ms->n_replicas; b++) shared[at[a]][at[b]] = a != b;
        }
    }
    uint32_t most = 0;
    for (uint32_t a = 0; a < n; a++) {
        uint32_t count = 0;
        for (uint32_t b = 0; b < n; b++) count += shared[a][b];
        if (count > most) most = count;
    }
    return most;
}

TEST(meta_voters_are_three_or_five_lowest_ids) {
    uint64_t ids[] = {9, 4, 7, 1, 8, 2, 6};
    uint64_t voters[16], learners[16];
    uint32_t n_learners = 99;
    CHECK_EQ_U64(map_meta_members(ids, 1, 0, voters, learners, &n_learners), 1);
    CHECK_EQ_U64(n_learners, 0);
    CHECK_EQ_U64(map_meta_members(ids, 2, 0, voters, learners, &n_learners), 2);
    CHECK_EQ_U64(map_meta_members(ids, 4, 0, voters, learners, &n_learners), 3);
    CHECK_EQ_U64(voters[0], 1);
    CHECK_EQ_U64(voters[1], 4);
    CHECK_EQ_U64(voters[2], 7);
    CHECK_EQ_U64(n_learners, 1);
    CHECK_EQ_U64(learners[0], 9);
    CHECK_EQ_U64(map_meta_members(ids, 7, 0, voters, learners, &n_learners), 5);
    CHECK_EQ_U64(voters[0], 1);
    CHECK_EQ_U64(voters[4], 7);
    CHECK_EQ_U64(n_learners, 2);
    CHECK_EQ_U64(learners[0], 8);
    CHECK_EQ_U64(learners[1], 9);
    /* MAP_NODES_MAX nodes (ids given high to low): 5 voters and 11
     * learners, the lowest ids; learners[] has room for no more */
    uint64_t many[MAP_NODES_MAX];
    for (uint32_t i = 0; i < MAP_NODES_MAX; i++) many[i] = 1000 - i;
    uint64_t few_learners[MAP_META_MEMBERS_MAX - 5];
    CHECK_EQ_U64(map_meta_members(many, MAP_NODES_MAX, 0, voters, few_learners, &n_learners), 5);
    CHECK_EQ_U64(n_learners, MAP_META_MEMBERS_MAX - 5);
    CHECK_EQ_U64(voters[0], 1000 - MAP_NODES_MAX + 1);
    CHECK_EQ_U64(few_learners[n_learners - 1], 1000 - MAP_NODES_MAX + MAP_META_MEMBERS_MAX);
    /* a lower cap (the simulator's): 5 nodes, 3 members (all voters), or 4
     * (3 voters, 1 learner); the rest outside group 0 */
    CHECK_EQ_U64(map_meta_members(ids, 5, 3, voters, learners, &n_learners), 3);
    CHECK_EQ_U64(n_learners, 0);
    CHECK_EQ_U64(voters[2], 7);
    CHECK_EQ_U64(map_meta_members(ids, 5, 4, voters, learners, &n_learners), 3);
    CHECK_EQ_U64(n_learners, 1);
    CHECK_EQ_U64(learners[0], 8);
    /* a map over MAP_NODES_MAX nodes builds, leaders and replicas spread
     * over all of them (within one of each other) */
    struct map m;
    char err[160];
    CHECK(map_build(&m, many, MAP_NODES_MAX, 10000, 3, err, sizeof(err)) == 0);
    uint32_t leads[MAP_NODES_MAX] = {0}, holds[MAP_NODES_MAX] = {0};
    for (uint32_t k = 0; k < m.n_shards; k++) {
        for (uint8_t r = 0; r < m.shards[k].n_replicas; r++) {
            uint32_t at = (uint32_t)(1000 - m.shards[k].replicas[r]);
            CHECK(at < MAP_NODES_MAX);
            holds[at]++;
            if (r == 0) leads[at]++;
        }
    }
    for (uint32_t i = 0; i < MAP_NODES_MAX; i++) {
        CHECK(leads[i] == 10000 / MAP_NODES_MAX || leads[i] == 10000 / MAP_NODES_MAX + 1);
        CHECK(holds[i] == 30000 / MAP_NODES_MAX || holds[i] == 30000 / MAP_NODES_MAX + 1);
    }
    size_t size = map_encoded_size(&m);
    CHECK(size <= MAP_ENCODED_BYTES_MAX);
    /* placement chains replicas over neighbouring nodes: a node shares a
     * shard with at most 8 others (docs/cluster.md, "Idle links": those
     * are the links it beats) */
    CHECK(map_test__most_shared(&m, many, MAP_NODES_MAX) <= 8);
    map_free(&m);
    /* 4 at 100 nodes and 10,000 shards, the layout measured there */
    CHECK(map_build(&m, many, 100, 10000, 3, err, sizeof(err)) == 0);
    CHECK(map_test__most_shared(&m, many, 100) == 4);
    map_free(&m);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(encoding_round_trips),
        TEST_ENTRY(malformed_encodings_are_refused),
        TEST_ENTRY(meta_voters_are_three_or_five_lowest_ids),
    };
    return test_run("test_map", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
