/* meta.c: the meta group, Raft group 0, whose state is the cluster map
 * (docs/cluster.md, "The meta group"). Group 0 is a shard replica like any
 * other (shard.c: the same WAL, snapshots, peer links and quiet rules) whose
 * keyspace holds one key, META_MAP_KEY, the map encoded by map_encode().
 * Its voters are 3 or 5 nodes chosen from the configuration
 * (map_meta_members), every other node holds a learner, so every node
 * applies every change of the map pushed by the meta leader's appends.
 *
 * This file: group 0's membership, the initial map's proposal (bootstrap),
 * and the install of each newer map the replica applies into n->map, the
 * copy the node routes by. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_int.h"

void meta_members(const struct node *n, struct shard *s) {
    uint64_t ids[NODE_PEERS_MAX], voters[NODE_PEERS_MAX], learners[NODE_PEERS_MAX];
    uint32_t n_learners = 0;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) ids[i] = n->cfg.members[i].id;
    uint32_t v = map_meta_members(ids, n->cfg.n_members, voters, learners, &n_learners);
    _Static_assert(NODE_PEERS_MAX <= RAFT_NODES_MAX, "every node fits in group 0");
    assert(v >= 1 && v <= 5 && v <= MAP_REPLICAS_MAX);
    s->group = 0;
    s->n_replicas = (uint8_t)v;
    s->n_learners = (uint8_t)n_learners;
    s->my_rank = UINT32_MAX;
    for (uint32_t i = 0; i < v; i++) {
        s->replicas[i] = voters[i];
        if (voters[i] == n->cfg.id) s->my_rank = i;
    }
    for (uint32_t i = 0; i < n_learners; i++) {
        s->learners[i] = learners[i];
        if (learners[i] == n->cfg.id) s->my_rank = v + i;
    }
    assert(s->my_rank != UINT32_MAX); /* this node is a member of its own cluster */
}

uint64_t meta_leader(const struct node *n) {
    return n->meta != NULL ? raft_leader(n->meta->raft) : 0;
}

/* The leader proposes `SET map <the configured map> NX` once per term,
 * after its term's no-op applied, if the applied state holds no map. */
static void meta__bootstrap(struct node *n, struct shard *s) {
    struct raft *r = s->raft;
    if (raft_role(r) != RAFT_LEADER || n->meta_proposed_term == raft_term(r)) return;
    if (s->applied == 0 || raft_term_at(r, s->applied) != raft_term(r)) return;
    if (kv_exists(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), (int64_t)node_now_ms(n))) return;
    /* n->map is still the configured map at epoch 1: nothing was installed */
    assert(n->map.epoch == 1);
    size_t size = map_encoded_size(&n->map);
    uint8_t *value = malloc(size);
    if (value == NULL) return; /* tried again at the next advance */
    size_t written = map_encode(&n->map, value, size);
    assert(written == size);
    struct resp_arg argv[4] = {{"SET", 3}, {META_MAP_KEY, strlen(META_MAP_KEY)},
                               {(const char *)value, written}, {"NX", 2}};
    size_t entry_size = cmd_entry_size(4, argv);
    uint8_t *buf = malloc(entry_size);
    if (buf != NULL) {
        cmd_entry_encode(buf, (int64_t)node_now_ms(n), 4, argv);
        uint64_t index, term;
        if (raft_propose(r, buf, (uint32_t)entry_size, &index, &term) == RAFT_OK) {
            n->meta_proposed_term = term;
            node_log(n, "group 0: proposed the initial map (epoch 1, %zu bytes) at index %llu",
                     written, (unsigned long long)index);
            node_core_wake(n, s, false);
        }
    }
    free(buf);
    free(value);
}

/* A map that changes what this node has opened (shard count, groups, or
 * this node's replicas) cannot be installed by this version: no command
 * makes one yet. */
static bool meta__compatible(const struct node *n, const struct map *m) {
    if (m->n_shards != n->map.n_shards) return false;
    for (uint32_t k = 0; k < m->n_shards; k++) {
        bool here = map_has_replica(&m->shards[k], n->cfg.id);
        if (here != (n->shards[k] != NULL)) return false;
    }
    return true;
}

/* Reads the map in group 0's applied state; installs it if newer. */
static void meta__read(struct node *n, struct shard *s) {
    struct kv_item item;
    if (kv_get(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), (int64_t)node_now_ms(n), &item) !=
            KV_OK ||
        item.type != KV_TYPE_STRING) {
        return;
    }
    struct map m;
    char err[160];
    if (map_decode(&m, item.value, item.value_len, err, sizeof(err)) != 0) {
        node_log(n, "group 0: the applied map is unreadable (%s): keeping epoch %llu", err,
                 (unsigned long long)n->map.epoch);
        return;
    }
    bool newer = m.epoch > n->map.epoch || (m.epoch == n->map.epoch && n->meta_installs == 0);
#ifdef CANARY_META_NO_INSTALL
    /* deliberate bug: the node keeps routing by its own copy, never by
     * the map group 0 applied */
    newer = false;
#endif
    if (!newer) {
        map_free(&m);
        return;
    }
    if (!meta__compatible(n, &m)) {
        node_log(n, "group 0: the map at epoch %llu changes the groups this node holds, which "
                    "this version cannot apply: keeping epoch %llu",
                 (unsigned long long)m.epoch, (unsigned long long)n->map.epoch);
        map_free(&m);
        return;
    }
    map_free(&n->map);
    n->map = m;
    n->meta_installs++;
    if (n->meta_installs == 1 || n->cfg.verbose) {
        node_log(n, "group 0: map at epoch %llu installed (applied index %llu)",
                 (unsigned long long)n->map.epoch, (unsigned long long)s->applied);
    }
}

void meta_after_advance(struct node *n, struct shard *s) {
    assert(s == n->meta);
    assert(s->group == 0);
    if (s->applied != n->meta_seen_applied) {
        n->meta_seen_applied = s->applied;
        meta__read(n, s);
    }
    meta__bootstrap(n, s);
}

int meta_open(struct node *n, const struct wal_recovered *rec) {
    const struct wal_group_state *gs = NULL;
    for (uint32_t i = 0; i < rec->n_groups; i++) {
        if (rec->groups[i].group == 0) gs = &rec->groups[i];
    }
    struct shard *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        node_log(n, "fatal: out of memory for group 0");
        return -1;
    }
    n->meta = s;
    int rc = shard_open(n, s, n->map.n_shards, gs);
    node_log(n, "group 0 (the map, %s of %u voters, %u learners): recovered term %llu, "
                "commit %llu, last index %llu, snapshot %llu",
             s->my_rank < s->n_replicas ? "voter" : "learner", s->n_replicas, s->n_learners,
             rc == 0 ? (unsigned long long)raft_term(s->raft) : 0ull,
             rc == 0 ? (unsigned long long)raft_commit_index(s->raft) : 0ull,
             rc == 0 ? (unsigned long long)raft_last_index(s->raft) : 0ull,
             (unsigned long long)s->snapshot_index);
    return rc;
}
