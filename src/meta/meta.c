/* meta.c: the meta group, Raft group 0, whose state is the cluster map
 * (docs/cluster.md, "The meta group"). Group 0 is a shard replica like any
 * other (shard.c: the same WAL, snapshots, peer links and quiet rules) whose
 * keyspace holds one key, META_MAP_KEY, the map encoded by map_encode().
 * Its voters are 3 or 5 nodes chosen from the configuration
 * (map_meta_members), the next nodes by id hold learners up to
 * MAP_META_MEMBERS_MAX members, and each applies every change of the map
 * pushed by the meta leader's appends. Every other node pulls the map by
 * version from a member (meta_pull).
 *
 * This file: group 0's membership, the initial map's proposal (bootstrap),
 * the install of each newer map into n->map, the copy the node routes by
 * (applied by this node's replica, or pulled), and the pull. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"

/* Group 0's members by the configuration: voters (the count returned),
 * then learners (*n_learners). */
static uint32_t meta__members(const struct node *n, uint64_t voters[MAP_META_MEMBERS_MAX],
                              uint64_t learners[MAP_META_MEMBERS_MAX], uint32_t *n_learners) {
    uint64_t ids[NODE_PEERS_MAX];
    _Static_assert(MAP_META_MEMBERS_MAX <= RAFT_NODES_MAX, "group 0 fits in a Raft group");
    _Static_assert(NODE_PEERS_MAX <= MAP_NODES_MAX, "every node fits in the map");
    for (uint32_t i = 0; i < n->cfg.n_members; i++) ids[i] = n->cfg.members[i].id;
    uint32_t v = map_meta_members(ids, n->cfg.n_members, n->cfg.meta_members, voters, learners,
                                  n_learners);
    assert(v >= 1 && v <= 5 && v <= MAP_REPLICAS_MAX);
    assert(v + *n_learners <= MAP_META_MEMBERS_MAX);
    return v;
}

bool meta_is_member(const struct node *n) {
    uint64_t voters[MAP_META_MEMBERS_MAX], learners[MAP_META_MEMBERS_MAX];
    uint32_t n_learners = 0;
    uint32_t v = meta__members(n, voters, learners, &n_learners);
    for (uint32_t i = 0; i < v; i++) {
        if (voters[i] == n->cfg.id) return true;
    }
    for (uint32_t i = 0; i < n_learners; i++) {
        if (learners[i] == n->cfg.id) return true;
    }
    return false;
}

void meta_members(const struct node *n, struct shard *s) {
    uint64_t voters[MAP_META_MEMBERS_MAX], learners[MAP_META_MEMBERS_MAX];
    uint32_t n_learners = 0;
    uint32_t v = meta__members(n, voters, learners, &n_learners);
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
    return n->meta != NULL ? raft_leader(n->meta->raft) : n->pull_leader;
}

/* The leader proposes `SET map <the configured map> NX` once per term,
 * after its term's no-op applied, if the applied state holds no map. */
static void meta__bootstrap(struct node *n, struct shard *s) {
    struct raft *r = s->raft;
    if (raft_role(r) != RAFT_LEADER || n->meta_proposed_term == raft_term(r)) return;
    if (s->applied == 0 || raft_term_at(r, s->applied) != raft_term(r)) return;
    if (kv_exists(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), (int64_t)node_now_ms(n))) return;
    /* no map applied, so none installed: n->map is the configured one */
    if (n->map.epoch != 1 || n->meta_installs != 0) return;
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

/* The changes this version makes and installs: the same shards, slot
 * ranges and replica sets; only the order of each shard's replicas (the
 * first is the preferred leader), and so the epoch, may differ. */
static bool meta__same_layout(const struct map *a, const struct map *b) {
    if (a->n_shards != b->n_shards) return false;
    for (uint32_t k = 0; k < a->n_shards; k++) {
        const struct map_shard *x = &a->shards[k], *y = &b->shards[k];
        if (x->first != y->first || x->last != y->last || x->n_replicas != y->n_replicas) {
            return false;
        }
        for (uint8_t i = 0; i < x->n_replicas; i++) {
            if (!map_has_replica(y, x->replicas[i])) return false;
        }
    }
    return true;
}

/* A map that changes what this node has opened (shard count, groups, or
 * this node's replicas) cannot be installed by this version. */
static bool meta__compatible(const struct node *n, const struct map *m) {
    if (m->n_shards != n->map.n_shards) return false;
    for (uint32_t k = 0; k < m->n_shards; k++) {
        bool here = map_has_replica(&m->shards[k], n->cfg.id);
        if (here != (n->shards[k] != NULL)) return false;
    }
    return meta__same_layout(&n->map, m);
}

/* The installed map's order of replicas reaches this node's replicas:
 * the balancer (node_core.c) hands a group's leadership to its first. */
static void meta__reorder_local(struct node *n) {
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct shard *s = n->shards[k];
        const struct map_shard *ms = &n->map.shards[k];
        if (s == NULL || s->replicas[0] == ms->replicas[0]) continue;
        assert(s->n_replicas == ms->n_replicas);
        for (uint8_t i = 0; i < ms->n_replicas; i++) {
            s->replicas[i] = ms->replicas[i];
            if (ms->replicas[i] == n->cfg.id) s->my_rank = i;
        }
        s->balance_at_ms = 0;
        s->campaign_due = false;
        n->meta_wake_due = true; /* a quiet leader must hand over: meta_tick */
    }
}

/* A quiet group 0 leader whose map some member lacks (a learner whose
 * link was not up when the map and the quiesce went out, and which never
 * answered: nothing would wake the group again) wakes once per election
 * timeout to catch it up. One group, one check a tick. */
static void meta__catch_up(struct node *n) {
    struct shard *m = n->meta;
    if (m == NULL || m->raft == NULL || !shard_is_leader(m) || !raft_is_quiet(m->raft)) return;
    uint32_t every = n->cfg.election_ticks > 0 ? n->cfg.election_ticks : 1;
    if (n->ticks % every != 0) return;
    uint64_t last = raft_last_index(m->raft);
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        uint64_t match = 0;
        if (n->cfg.members[i].id == n->cfg.id) continue;
        if (raft_match_index(m->raft, n->cfg.members[i].id, &match) && match < last) {
            node_core_wake(n, m, true);
            return;
        }
    }
}

void meta_tick(struct node *n) {
    meta__catch_up(n);
    if (!n->meta_wake_due) return;
    n->meta_wake_due = false;
    for (uint32_t i = 0; i < n->n_local; i++) node_core_wake(n, n->local[i], true);
}

/* Installs m (taken: freed or kept) as the map this node routes by if it
 * is newer than the installed one and this version can apply it. `from`
 * names its source for the log: group 0's replica here, or a pull. */
static void meta__install(struct node *n, struct map m, const char *from) {
    bool newer = m.epoch > n->map.epoch || (m.epoch == n->map.epoch && n->meta_installs == 0);
#ifdef CANARY_META_STALE
    /* deliberate bug: a node keeps the first map it installed and routes
     * by it after group 0 changed the map */
    if (n->meta_installs > 0) newer = false;
#endif
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
    meta__reorder_local(n);
    if (n->meta_installs == 1 || n->map.epoch > 1 || n->cfg.verbose) {
        node_log(n, "group 0: map at epoch %llu installed (%s)", (unsigned long long)n->map.epoch,
                 from);
    }
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
    char from[64];
    snprintf(from, sizeof(from), "applied index %llu", (unsigned long long)s->applied);
    meta__install(n, m, from);
}

/* ---- pull by version (docs/cluster.md, "The meta group") ---- */

/* The member to ask: from pull_next on, the first whose link is up
 * (node_core_link_up: not closed, and if this node beats it, a frame
 * within the failure detector's timeout); if none is, pull_next itself
 * (its link may come up). */
static uint64_t meta__pull_target(struct node *n) {
    assert(n->n_meta_ids >= 1);
    for (uint32_t k = 0; k < n->n_meta_ids; k++) {
        uint32_t at = (n->pull_next + k) % n->n_meta_ids;
        const struct node_member *m = node_config_member(&n->cfg, n->meta_ids[at]);
        assert(m != NULL);
        uint32_t i = (uint32_t)(m - n->cfg.members);
        if (node_core_link_up(n, i)) {
            n->pull_next = at;
            return n->meta_ids[at];
        }
    }
    return n->meta_ids[n->pull_next % n->n_meta_ids];
}

void meta_pull(struct node *n) {
    if (n->meta != NULL || n->n_meta_ids == 0) return;
#ifdef CANARY_META_NO_PULL
    /* deliberate bug: a node outside group 0 never asks for the map and
     * routes by the configured one forever */
    return;
#endif
    if (n->pull_asked != 0) {
        /* no answer within a heartbeat interval: the next member */
        n->pull_next = (n->pull_next + 1) % n->n_meta_ids;
    }
    uint64_t to = meta__pull_target(n);
    assert(to != n->cfg.id);
    /* before the first install the node routes by the configured map: 0
     * asks for any map group 0 applied */
    struct peer_map_msg m = {.pull = true, .epoch = n->meta_installs > 0 ? n->map.epoch : 0};
    n->pull_asked = to;
    n->pulls++;
    peer_map(n, to, &m);
}

/* A member answers a pull with its replica's applied map if newer than
 * the epoch asked, else with its epoch alone ("same"). */
static void meta__answer(struct node *n, uint64_t from, uint64_t asked) {
    struct shard *s = n->meta;
    assert(s != NULL);
    struct peer_map_msg a = {.meta_leader = raft_leader(s->raft)};
    struct kv_item item;
    if (kv_get(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), (int64_t)node_now_ms(n), &item) ==
            KV_OK &&
        item.type == KV_TYPE_STRING &&
        map_encoded_epoch(item.value, item.value_len, &a.epoch) == 0 && a.epoch > asked &&
        item.value_len <= PEER_MAP_BYTES_MAX) {
        a.map = item.value;
        a.map_len = (uint32_t)item.value_len;
    }
    peer_map(n, from, &a);
}

/* A non-member takes an answer: the leader it names, and its map. */
static void meta__pulled(struct node *n, uint64_t from, const struct peer_map_msg *a) {
    if (from == n->pull_asked) n->pull_asked = 0;
    n->pull_answers++;
    n->pull_leader = a->meta_leader;
    if (a->map_len == 0) return;
    struct map m;
    char err[160];
    int rc = map_decode(&m, a->map, a->map_len, err, sizeof(err));
    if (rc == 0 && m.epoch != a->epoch) {
        snprintf(err, sizeof(err), "epoch %llu in a frame of epoch %llu",
                 (unsigned long long)m.epoch, (unsigned long long)a->epoch);
        map_free(&m);
        rc = -1;
    }
    if (rc != 0) {
        node_log(n, "group 0: the map pulled from node %llu is refused (%s): keeping epoch %llu",
                 (unsigned long long)from, err, (unsigned long long)n->map.epoch);
        return;
    }
    n->pull_maps++;
    char source[64];
    snprintf(source, sizeof(source), "pulled from node %llu", (unsigned long long)from);
    meta__install(n, m, source);
}

void meta_map_frame(struct node *n, uint64_t from, const struct peer_map_msg *m) {
    if (m->pull && n->meta != NULL && n->meta->raft != NULL) meta__answer(n, from, m->epoch);
    if (!m->pull && n->meta == NULL) meta__pulled(n, from, m);
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

/* ---- changes of the map ---- */

static bool meta__arg_is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

/* The map group 0 applied (its keyspace's), decoded: 0, or -1 (none or
 * unreadable; err says which). */
static int meta__applied_map(struct node *n, struct shard *s, int64_t now_ms, struct map *m,
                             char *err, size_t err_cap) {
    struct kv_item item;
    if (kv_get(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), now_ms, &item) != KV_OK ||
        item.type != KV_TYPE_STRING) {
        snprintf(err, err_cap, "no map yet");
        return -1;
    }
    (void)n;
    return map_decode(m, item.value, item.value_len, err, err_cap);
}

/* `SHOAL.MAPSET <epoch> <map>`: the map replaces the one at <epoch> if
 * that is the applied one, the new map's epoch is one more and its layout
 * is the same (meta__same_layout); otherwise nothing changes. Decided by
 * the entry and group 0's state alone, so every replica decides alike. */
bool meta_apply(struct node *n, struct shard *s, int64_t now_ms, uint32_t argc,
                const struct resp_arg *argv, struct resp_out *out) {
    assert(s->group == 0);
    if (argc < 1 || !meta__arg_is(&argv[0], "shoal.mapset")) return false;
    int64_t expected = 0;
    struct map cur, next;
    char err[160];
    if (argc != 3 || !cmd_parse_i64(argv[1].data, argv[1].len, &expected) || expected < 1) {
        resp_write_errorf(out, "ERR SHOAL.MAPSET <epoch> <map>");
        return true;
    }
    if (meta__applied_map(n, s, now_ms, &cur, err, sizeof(err)) != 0) {
        resp_write_errorf(out, "ERR the map cannot change: %s", err);
        return true;
    }
    if (map_decode(&next, (const uint8_t *)argv[2].data, argv[2].len, err, sizeof(err)) != 0) {
        resp_write_errorf(out, "ERR the new map is refused: %s", err);
        map_free(&cur);
        return true;
    }
    if (cur.epoch != (uint64_t)expected || next.epoch != cur.epoch + 1) {
        resp_write_errorf(out, "ERR the map is at epoch %llu, the change was made at %lld; "
                               "nothing changed, try again", (unsigned long long)cur.epoch,
                          (long long)expected);
    } else if (!meta__same_layout(&cur, &next)) {
        resp_write_errorf(out, "ERR only the order of a shard's replicas may change");
    } else if (kv_set(s->kv, META_MAP_KEY, strlen(META_MAP_KEY), argv[2].data, argv[2].len,
                      KV_NO_EXPIRY, 0, now_ms) != KV_OK) {
        node_fatal(n, "group 0: cannot store the map at epoch %llu",
                   (unsigned long long)next.epoch);
    } else {
        resp_write_int(out, (int64_t)next.epoch);
    }
    map_free(&cur);
    map_free(&next);
    return true;
}

int meta_prefer_entry(struct node *n, uint64_t group, uint64_t id, struct meta_change *out,
                      char *err, size_t err_cap) {
    memset(out, 0, sizeof(*out));
    int32_t k = map_shard_of_group(&n->map, group);
    if (k < 0) {
        snprintf(err, err_cap, "ERR no shard %llu (groups 1..%u)", (unsigned long long)group,
                 n->map.n_shards);
        return -1;
    }
    if (!map_has_replica(&n->map.shards[k], id)) {
        snprintf(err, err_cap, "ERR node %llu holds no replica of shard %llu",
                 (unsigned long long)id, (unsigned long long)group);
        return -1;
    }
    struct map m;
    if (map_copy(&m, &n->map) != 0) {
        snprintf(err, err_cap, "OOM out of memory");
        return -1;
    }
    struct map_shard *ms = &m.shards[k];
    uint8_t at = 0;
    while (ms->replicas[at] != id) at++;
    memmove(ms->replicas + 1, ms->replicas, at * sizeof(ms->replicas[0]));
    ms->replicas[0] = id;
    m.epoch = n->map.epoch + 1;
    size_t size = map_encoded_size(&m);
    out->bytes = malloc(size);
    if (out->bytes == NULL) {
        map_free(&m);
        snprintf(err, err_cap, "OOM out of memory");
        return -1;
    }
    out->len = map_encode(&m, out->bytes, size);
    map_free(&m);
    snprintf(out->epoch, sizeof(out->epoch), "%llu", (unsigned long long)n->map.epoch);
    out->argv[0] = (struct resp_arg){"SHOAL.MAPSET", 12};
    out->argv[1] = (struct resp_arg){out->epoch, strlen(out->epoch)};
    out->argv[2] = (struct resp_arg){(const char *)out->bytes, out->len};
    return 0;
}

int meta_propose_prefer(struct node *n, uint64_t group, uint64_t id) {
    struct shard *s = n->meta;
    if (s == NULL || !shard_is_leader(s)) return -1;
    struct meta_change ch;
    char err[160];
    if (meta_prefer_entry(n, group, id, &ch, err, sizeof(err)) != 0) return -1;
    size_t size = cmd_entry_size(3, ch.argv);
    uint8_t *buf = malloc(size);
    int rc = -1;
    if (buf != NULL) {
        cmd_entry_encode(buf, (int64_t)node_now_ms(n), 3, ch.argv);
        uint64_t index, term;
        rc = raft_propose(s->raft, buf, (uint32_t)size, &index, &term) == RAFT_OK ? 0 : -1;
        if (rc == 0) node_core_wake(n, s, false);
    }
    free(buf);
    free(ch.bytes);
    return rc;
}

int meta_open(struct node *n, const struct wal_recovered *rec) {
    uint64_t voters[MAP_META_MEMBERS_MAX], learners[MAP_META_MEMBERS_MAX];
    uint32_t n_learners = 0;
    uint32_t v = meta__members(n, voters, learners, &n_learners);
    n->n_meta_ids = 0;
    for (uint32_t i = 0; i < v; i++) n->meta_ids[n->n_meta_ids++] = voters[i];
    for (uint32_t i = 0; i < n_learners; i++) n->meta_ids[n->n_meta_ids++] = learners[i];
    if (!meta_is_member(n)) {
        /* routes by the configured map until its first pull */
        n->pull_next = (uint32_t)(n->cfg.id % n->n_meta_ids); /* spread the pullers */
        node_log(n, "group 0 (the map): not a member (%u voters, %u learners); pulling the map "
                    "from them", v, n_learners);
        return 0;
    }
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
