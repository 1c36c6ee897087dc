/* cluster_cmds.c: how the shard map looks to a Redis Cluster client:
 * CLUSTER SLOTS, SHARDS, NODES, INFO, KEYSLOT, COUNTKEYSINSLOT,
 * GETKEYSINSLOT, MYID, MYSHARDID, REPLICAS, HELP, and ASKING, with Redis
 * 7.0's reply shapes; and the MOVED redirection a cluster client gets.
 * docs/cluster.md gives the mapping: a shoal node leads some shards and
 * follows others, which Redis's one-role-per-node model does not have.
 *
 * The map (src/meta/map.h) is fixed by the configuration: --shards
 * groups over the slots, --replicas replicas each. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "router/slot.h"

#define CLUSTER__GETKEYS_MAX 100000 /* keys one GETKEYSINSLOT returns */

static bool arg_is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

/* One shard as clients see it: its slots, its replicas (voters), its
 * leader (0 if none is known) and its epoch. */
struct cluster__shard {
    uint64_t group;
    uint16_t first, last;
    uint64_t leader;
    uint64_t epoch;
    uint8_t n_replicas;
    uint64_t replicas[RAFT_NODES_MAX];
    const struct shard *local; /* this node's replica, or NULL */
};

/* The node to send a shard's commands to when this node holds no replica
 * of it (so does not see its elections): its first replica this node has
 * a live link to, preferring the preferred leader. That replica forwards or
 * redirects to the real leader (docs/cluster.md: one more hop). */
uint64_t node_cluster_guess_leader(const struct node *n, uint32_t k) {
    const struct map_shard *ms = &n->map.shards[k];
    for (uint8_t i = 0; i < ms->n_replicas; i++) {
        for (uint32_t p = 0; p < n->cfg.n_members; p++) {
            if (n->peers[p].member != NULL && n->peers[p].member->id == ms->replicas[i] &&
                n->peers[p].connected) {
                return ms->replicas[i];
            }
        }
    }
    return 0;
}

static void cluster__view(const struct node *n, uint32_t k, struct cluster__shard *out) {
    const struct map_shard *ms = &n->map.shards[k];
    const struct shard *s = n->shards[k];
    memset(out, 0, sizeof(*out));
    out->group = ms->group;
    out->first = ms->first;
    out->last = ms->last;
    out->local = s;
    if (s == NULL) {
        out->leader = node_cluster_guess_leader(n, k);
        out->epoch = n->map.epoch;
        out->n_replicas = ms->n_replicas;
        memcpy(out->replicas, ms->replicas, ms->n_replicas * sizeof(ms->replicas[0]));
        return;
    }
    out->leader = raft_leader(s->raft);
    out->epoch = raft_term(s->raft);
    const struct raft_conf *conf = raft_conf(s->raft);
    for (uint8_t i = 0; i < conf->n_voters; i++) out->replicas[out->n_replicas++] = conf->voters[i];
    if (out->leader != 0 && !raft_conf_has(out->replicas, out->n_replicas, out->leader)) {
        out->leader = 0; /* a leader being removed: not a place to send clients */
    }
}

/* 40 hex digits, fixed for a cluster id, a kind (node or shard) and a
 * number: Redis clients treat ids as opaque strings of this length. */
static void cluster__hex_id(uint64_t cluster_id, uint64_t kind, uint64_t number, char out[41]) {
    uint64_t x = cluster_id * 0x9e3779b97f4a7c15ull ^ (kind << 56) ^ number;
    char buf[64];
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%016llx", (unsigned long long)z);
    }
    memcpy(out, buf, 40);
    out[40] = '\0';
}

void node_cluster_node_id(const struct node *n, uint64_t id, char out[41]) {
    cluster__hex_id(n->cfg.cluster_id, 1, id, out);
}

static void cluster__shard_id(const struct node *n, uint64_t group, char out[41]) {
    cluster__hex_id(n->cfg.cluster_id, 2, group, out);
}

static bool cluster__linked(const struct node *n, uint64_t id) {
    if (id == n->cfg.id) return true;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        if (n->peers[i].member != NULL && n->peers[i].member->id == id) {
            return n->peers[i].connected;
        }
    }
    return false;
}

/* ["host", port, "id", {}]: one node of a CLUSTER SLOTS range. */
static void cluster__slots_node(const struct node *n, const struct node_member *m,
                                struct resp_out *out) {
    char id[41];
    node_cluster_node_id(n, m->id, id);
    resp_write_array(out, 4);
    resp_write_bulk(out, m->host, strlen(m->host));
    resp_write_int(out, m->client_port);
    resp_write_bulk(out, id, 40);
    resp_write_map(out, 0); /* no hostname: Redis 7.0 sends an empty map */
}

static void cluster__slots(const struct node *n, struct resp_out *out) {
    uint32_t served = 0;
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct cluster__shard sh;
        cluster__view(n, k, &sh);
        served += node_config_member(&n->cfg, sh.leader) != NULL;
    }
    resp_write_array(out, served); /* shards with no leader known are left out */
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct cluster__shard sh;
        cluster__view(n, k, &sh);
        const struct node_member *leader = node_config_member(&n->cfg, sh.leader);
        if (leader == NULL) continue;
        uint32_t others = 0;
        for (uint8_t i = 0; i < sh.n_replicas; i++) {
            if (sh.replicas[i] != sh.leader && node_config_member(&n->cfg, sh.replicas[i])) {
                others++;
            }
        }
        resp_write_array(out, 3 + others);
        resp_write_int(out, sh.first);
        resp_write_int(out, sh.last);
        cluster__slots_node(n, leader, out);
        for (uint8_t i = 0; i < sh.n_replicas; i++) {
            const struct node_member *m = node_config_member(&n->cfg, sh.replicas[i]);
            if (sh.replicas[i] != sh.leader && m != NULL) cluster__slots_node(n, m, out);
        }
    }
}

/* How far a replica's log is known to reach, as Redis's replication offset. */
static uint64_t cluster__offset(const struct node *n, const struct shard *s, uint64_t id) {
    if (s == NULL) return 0;
    const struct raft *r = s->raft;
    if (id == n->cfg.id) return raft_last_index(r);
    uint64_t match = 0;
    if (raft_role(r) == RAFT_LEADER && raft_match_index(r, id, &match)) return match;
    return 0;
}

static void cluster__shards(const struct node *n, struct resp_out *out) {
    resp_write_array(out, n->map.n_shards);
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct cluster__shard sh;
        cluster__view(n, k, &sh);
        uint32_t members = 0;
        for (uint8_t i = 0; i < sh.n_replicas; i++) {
            if (node_config_member(&n->cfg, sh.replicas[i]) != NULL) members++;
        }
        resp_write_map(out, 2);
        resp_write_bulk(out, "slots", 5);
        resp_write_array(out, 2);
        resp_write_int(out, sh.first);
        resp_write_int(out, sh.last);
        resp_write_bulk(out, "nodes", 5);
        resp_write_array(out, members);
        for (uint8_t i = 0; i < sh.n_replicas; i++) {
            const struct node_member *m = node_config_member(&n->cfg, sh.replicas[i]);
            if (m == NULL) continue;
            char id[41];
            node_cluster_node_id(n, m->id, id);
            bool leads = m->id == sh.leader;
            const char *health = cluster__linked(n, m->id) ? "online" : "failed";
            resp_write_map(out, 7);
            resp_write_bulk(out, "id", 2);
            resp_write_bulk(out, id, 40);
            resp_write_bulk(out, "port", 4);
            resp_write_int(out, m->client_port);
            resp_write_bulk(out, "ip", 2);
            resp_write_bulk(out, m->host, strlen(m->host));
            resp_write_bulk(out, "endpoint", 8);
            resp_write_bulk(out, m->host, strlen(m->host));
            resp_write_bulk(out, "role", 4);
            resp_write_bulk(out, leads ? "master" : "replica", leads ? 6 : 7);
            resp_write_bulk(out, "replication-offset", 18);
            resp_write_int(out, (int64_t)cluster__offset(n, sh.local, m->id));
            resp_write_bulk(out, "health", 6);
            resp_write_bulk(out, health, strlen(health));
        }
    }
}

/* Appends to a growing text buffer; false on ENOMEM. */
struct cluster__text {
    char *data;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static bool cluster__printf(struct cluster__text *t,
                                                                  const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (w < 0) return false;
        if ((size_t)w < t->cap - t->len) {
            t->len += (size_t)w;
            return true;
        }
        size_t cap = t->cap * 2 + (size_t)w + 256;
        char *p = realloc(t->data, cap);
        if (p == NULL) return false;
        t->data = p;
        t->cap = cap;
    }
}

/* A node's line of CLUSTER NODES: a node that leads shards is a master
 * with their slots; one that leads none is a replica of the leader of the
 * first shard it holds a replica of; with no such leader known, a master
 * without slots. */
static bool cluster__node_line(const struct node *n, const struct cluster__shard *view,
                               const struct node_member *m, struct cluster__text *t) {
    char id[41], leader_id[41];
    node_cluster_node_id(n, m->id, id);
    bool myself = m->id == n->cfg.id;
    bool leads = false;
    uint64_t follows = 0, epoch = 0;
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        const struct cluster__shard *sh = &view[k];
        if (sh->leader == m->id) {
            leads = true;
            if (sh->epoch > epoch) epoch = sh->epoch;
        } else if (follows == 0 && sh->leader != 0 &&
                   raft_conf_has(sh->replicas, sh->n_replicas, m->id)) {
            follows = sh->leader;
            epoch = sh->epoch;
        }
    }
    if (leads) follows = 0;
    if (follows != 0) node_cluster_node_id(n, follows, leader_id);
    bool linked = cluster__linked(n, m->id);
    bool ok = cluster__printf(t, "%s %s:%u@%u %s%s%s %s 0 %llu %llu %s", id, m->host,
                              m->client_port, m->peer_port, myself ? "myself," : "",
                              follows ? "slave" : "master", linked ? "" : ",fail?",
                              follows ? leader_id : "-",
                              (unsigned long long)(myself ? 0 : node_now_ms(n)),
                              (unsigned long long)epoch, linked ? "connected" : "disconnected");
    for (uint32_t k = 0; k < n->map.n_shards && ok && leads; k++) {
        const struct cluster__shard *sh = &view[k];
        if (sh->leader != m->id) continue;
        if (sh->first == sh->last) ok = cluster__printf(t, " %u", sh->first);
        else ok = cluster__printf(t, " %u-%u", sh->first, sh->last);
    }
    return ok && cluster__printf(t, "\n");
}

/* The views of every shard (NULL on ENOMEM). */
static struct cluster__shard *cluster__views(const struct node *n) {
    struct cluster__shard *v = calloc(n->map.n_shards, sizeof(*v));
    for (uint32_t k = 0; v != NULL && k < n->map.n_shards; k++) cluster__view(n, k, &v[k]);
    return v;
}

static void cluster__nodes(const struct node *n, struct resp_out *out, const char *only_of) {
    struct cluster__shard *view = cluster__views(n);
    struct cluster__text t = {0};
    bool ok = view != NULL;
    for (uint32_t i = 0; i < n->cfg.n_members && ok; i++) {
        const struct node_member *m = &n->cfg.members[i];
        if (only_of != NULL) { /* CLUSTER REPLICAS <id>: nodes whose line names that master */
            bool of = false;
            for (uint32_t k = 0; k < n->map.n_shards && !of; k++) {
                char leader_id[41];
                if (view[k].leader == 0 || view[k].leader == m->id) continue;
                node_cluster_node_id(n, view[k].leader, leader_id);
                of = strcmp(only_of, leader_id) == 0 &&
                     raft_conf_has(view[k].replicas, view[k].n_replicas, m->id);
            }
            if (!of) continue;
        }
        ok = cluster__node_line(n, view, m, &t);
    }
    if (!ok) resp_write_errorf(out, "ERR out of memory");
    else resp_write_verbatim(out, "txt", t.data != NULL ? t.data : "", t.len);
    free(t.data);
    free(view);
}

static void cluster__info(const struct node *n, struct resp_out *out) {
    uint32_t slots_ok = 0, without = 0, masters = 0;
    uint64_t leaders[NODE_PEERS_MAX];
    /* the epochs are the map's (docs/cluster.md, "The meta group") */
    uint64_t epoch = n->map.epoch, my_epoch = n->map.epoch;
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct cluster__shard sh;
        cluster__view(n, k, &sh);
        if (node_config_member(&n->cfg, sh.leader) == NULL) {
            without++;
            continue;
        }
        slots_ok += sh.last - sh.first + 1u;
        bool seen = false;
        for (uint32_t i = 0; i < masters; i++) seen = seen || leaders[i] == sh.leader;
        if (!seen && masters < NODE_PEERS_MAX) leaders[masters++] = sh.leader;
    }
    char text[1024];
    int w = snprintf(text, sizeof(text),
                     "cluster_state:%s\r\n"
                     "cluster_slots_assigned:%u\r\n"
                     "cluster_slots_ok:%u\r\n"
                     "cluster_slots_pfail:0\r\n"
                     "cluster_slots_fail:%u\r\n"
                     "cluster_known_nodes:%u\r\n"
                     "cluster_size:%u\r\n"
                     "cluster_current_epoch:%llu\r\n"
                     "cluster_my_epoch:%llu\r\n"
                     "cluster_stats_messages_sent:%llu\r\n"
                     "cluster_stats_messages_received:%llu\r\n"
                     "total_cluster_links_buffer_limit_exceeded:0\r\n"
                     "shoal_shards:%u\r\n"
                     "shoal_shards_here:%u\r\n"
                     "shoal_shards_without_leader:%u\r\n"
                     "shoal_map_epoch:%llu\r\n"
                     "shoal_map_installed:%s\r\n"
                     "shoal_meta_leader:%llu\r\n",
                     without == 0 ? "ok" : "fail", SLOT_COUNT, slots_ok, SLOT_COUNT - slots_ok,
                     n->cfg.n_members, masters, (unsigned long long)epoch,
                     (unsigned long long)my_epoch, (unsigned long long)n->stats.net_out,
                     (unsigned long long)n->stats.net_in, n->map.n_shards, n->n_local, without,
                     (unsigned long long)n->map.epoch, n->meta_installs > 0 ? "yes" : "no",
                     (unsigned long long)meta_leader(n));
    resp_write_verbatim(out, "txt", text, w > 0 ? (size_t)w : 0);
}

/* A slot argument: 0..16383, or Redis's error. */
static bool cluster__slot_arg(const struct resp_arg *a, uint16_t *slot, struct resp_out *out) {
    int64_t v;
    if (!cmd_parse_i64(a->data, a->len, &v)) {
        resp_write_errorf(out, "ERR value is not an integer or out of range");
        return false;
    }
    if (v < 0 || v >= (int64_t)SLOT_COUNT) {
        resp_write_errorf(out, "ERR Invalid slot");
        return false;
    }
    *slot = (uint16_t)v;
    return true;
}

struct cluster__in_slot {
    uint16_t slot;
    uint64_t count, max;
    struct resp_out *out; /* NULL: count only */
};

static int cluster__in_slot_cb(void *ctx, const struct kv_item *item) {
    struct cluster__in_slot *q = ctx;
    if (slot_of_key(item->key, item->key_len) != q->slot) return 0;
    if (q->out != NULL) resp_write_bulk(q->out, item->key, item->key_len);
    q->count++;
    return q->count >= q->max ? 1 : 0;
}

/* COUNTKEYSINSLOT and GETKEYSINSLOT read this node's replica (as in Redis,
 * where each node answers for its own data): a walk of the keyspace. */
static void cluster__keys_in_slot(const struct node *n, uint16_t slot, int64_t count,
                                  struct resp_out *out) {
    struct cluster__in_slot q = {.slot = slot, .max = UINT64_MAX};
    int64_t now = (int64_t)node_now_ms(n);
    const struct shard *s = n->shards[map_shard_of_slot(&n->map, slot)];
    if (s == NULL) { /* no replica here: this node holds no key of the slot */
        if (count < 0) resp_write_int(out, 0);
        else resp_write_array(out, 0);
        return;
    }
    if (count < 0) {
        (void)kv_foreach(s->kv, now, cluster__in_slot_cb, &q);
        resp_write_int(out, (int64_t)q.count);
        return;
    }
    /* First count, then write: the array's length comes first. */
    q.max = (uint64_t)count;
    if (count > 0) (void)kv_foreach(s->kv, now, cluster__in_slot_cb, &q);
    uint64_t total = q.count;
    resp_write_array(out, total);
    if (total == 0) return;
    q.count = 0;
    q.max = total;
    q.out = out;
    (void)kv_foreach(s->kv, now, cluster__in_slot_cb, &q);
}

static const char *const cluster__help[] = {
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot> (this node's replica).",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the id of the first shard this node holds a replica of.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@peer-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SLOTS",
    "    Return information about slots range mappings.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "HELP",
    "    Prints this help.",
    "shoal places slots and replicas itself: ADDSLOTS, MEET, FAILOVER, SETSLOT and the",
    "other commands that change the map are refused (see docs/cluster.md).",
};

void node_cluster_command(struct client *c, uint32_t argc, const struct resp_arg *argv,
                          struct resp_out *out) {
    struct node *n = c->node;
    const struct resp_arg *sub = &argv[1];
    if (arg_is(sub, "slots") && argc == 2) {
        c->cluster_mode = true;
        cluster__slots(n, out);
    } else if (arg_is(sub, "shards") && argc == 2) {
        c->cluster_mode = true;
        cluster__shards(n, out);
    } else if (arg_is(sub, "nodes") && argc == 2) {
        c->cluster_mode = true;
        cluster__nodes(n, out, NULL);
    } else if ((arg_is(sub, "replicas") || arg_is(sub, "slaves")) && argc == 3) {
        char want[41];
        snprintf(want, sizeof(want), "%.*s", (int)(argv[2].len < 40 ? argv[2].len : 40),
                 argv[2].data);
        bool known = false;
        for (uint32_t i = 0; i < n->cfg.n_members && !known; i++) {
            char id[41];
            node_cluster_node_id(n, n->cfg.members[i].id, id);
            known = argv[2].len == 40 && strcmp(id, want) == 0;
        }
        if (!known) resp_write_errorf(out, "ERR Unknown node %.*s", (int)argv[2].len, argv[2].data);
        else cluster__nodes(n, out, want);
    } else if (arg_is(sub, "info") && argc == 2) {
        cluster__info(n, out);
    } else if (arg_is(sub, "keyslot") && argc == 3) {
        resp_write_int(out, slot_of_key(argv[2].data, argv[2].len));
    } else if (arg_is(sub, "countkeysinslot") && argc == 3) {
        uint16_t slot;
        if (cluster__slot_arg(&argv[2], &slot, out)) cluster__keys_in_slot(n, slot, -1, out);
    } else if (arg_is(sub, "getkeysinslot") && argc == 4) {
        int64_t v, count;
        if (!cmd_parse_i64(argv[2].data, argv[2].len, &v) ||
            !cmd_parse_i64(argv[3].data, argv[3].len, &count)) {
            resp_write_errorf(out, "ERR value is not an integer or out of range");
        } else if (v < 0 || v >= (int64_t)SLOT_COUNT || count < 0) {
            resp_write_errorf(out, "ERR Invalid slot or number of keys");
        } else {
            if (count > CLUSTER__GETKEYS_MAX) count = CLUSTER__GETKEYS_MAX;
            cluster__keys_in_slot(n, (uint16_t)v, count, out);
        }
    } else if (arg_is(sub, "myid") && argc == 2) {
        char id[41];
        node_cluster_node_id(n, n->cfg.id, id);
        resp_write_bulk(out, id, 40);
    } else if (arg_is(sub, "myshardid") && argc == 2) {
        char id[41];
        cluster__shard_id(n, n->n_local > 0 ? n->local[0]->group : 0, id);
        resp_write_bulk(out, id, 40);
    } else if (arg_is(sub, "help") && argc == 2) {
        uint32_t lines = sizeof(cluster__help) / sizeof(cluster__help[0]);
        resp_write_array(out, lines);
        for (uint32_t i = 0; i < lines; i++) {
            resp_write_simple(out, cluster__help[i], strlen(cluster__help[i]));
        }
    } else {
        static const char *const known[] = {
            "slots", "shards", "nodes", "replicas", "slaves", "info", "keyslot",
            "countkeysinslot", "getkeysinslot", "myid", "myshardid", "help"};
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (arg_is(sub, known[i])) {
                resp_write_errorf(out, "ERR wrong number of arguments for 'cluster|%s' command",
                                  known[i]);
                return;
            }
        }
        static const char *const placement[] = {
            "addslots", "addslotsrange", "delslots", "delslotsrange", "flushslots", "meet",
            "forget", "replicate", "failover", "setslot", "reset", "bumpepoch",
            "set-config-epoch", "saveconfig", "count-failure-reports", "links"};
        for (size_t i = 0; i < sizeof(placement) / sizeof(placement[0]); i++) {
            if (arg_is(sub, placement[i])) {
                resp_write_errorf(out, "ERR CLUSTER %s is not supported: shoal places slots and "
                                       "replicas itself", placement[i]);
                return;
            }
        }
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try CLUSTER HELP.",
                          (int)(sub->len < 128 ? sub->len : 128), sub->data);
    }
}

struct cluster__place {
    const struct node *n;
    struct node_keys_place *out;
    bool any;
};

static void cluster__key_cb(void *ctx, const struct resp_arg *key) {
    struct cluster__place *p = ctx;
    uint16_t slot = slot_of_key(key->data, key->len);
    uint32_t shard = map_shard_of_slot(&p->n->map, slot);
#ifdef CANARY_WRONG_SHARD
    /* deliberate bug: a key is routed to the next shard, which does not
     * own its slot (the node serves and applies it there) */
    shard = (shard + 1) % p->n->map.n_shards;
#endif
    if (!p->any) {
        p->any = true;
        p->out->slot = slot;
        p->out->shard = shard;
        return;
    }
    if (slot != p->out->slot) p->out->cross_slot = true;
    if (shard != p->out->shard) p->out->cross_shard = true;
}

void node_cluster_keys_place(const struct node *n, const struct cmd_def *def, uint32_t argc,
                             const struct resp_arg *argv, struct node_keys_place *out) {
    memset(out, 0, sizeof(*out));
    struct cluster__place p = {.n = n, .out = out, .any = false};
    cmd_keys(def, argc, argv, cluster__key_cb, &p);
}

void node_cluster_moved(const struct node *n, uint64_t leader, int32_t slot,
                        struct resp_out *out) {
    const struct node_member *m = node_config_member(&n->cfg, leader);
    resp_write_errorf(out, "MOVED %d %s:%u", slot, m->host, m->client_port);
}
