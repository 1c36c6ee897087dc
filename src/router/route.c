/* route.c: where a command goes (the router layer: docs/node.md, "Where
 * the code is"). Its keys' slot (slot.c), the shard that owns the slot in
 * this node's copy of the map (src/meta/), and that shard's leader decide:
 * run here (this node leads the shard, or a READONLY read of a replica
 * here), forward to the leader (proxy.c), answer MOVED (a cluster client),
 * CROSSSLOT (keys over several slots or shards that cannot be split), or
 * split it over the shards (gather.c). The connection (client.c) asks
 * route_command and acts on the answer: route_refuses says it gets an
 * error, written by route_refusal. */
#include <assert.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "router/slot.h"

bool route_redirects(const struct client *c) {
    uint8_t mode = c->node->cfg.cluster_redirect;
    return mode == NODE_REDIRECT_ALWAYS || (mode == NODE_REDIRECT_AUTO && c->cluster_mode);
}

/* Whether a command can go to node `leader` of a shard: a member, not this
 * node, and its link to this node not seen closing (a killed leader is
 * waited out: the command waits for the next one, docs/cluster.md,
 * "Waiting for a leader"). */
static bool route__can_go_to(const struct node *n, uint64_t leader) {
    const struct node_member *m = node_config_member(&n->cfg, leader);
    return leader != 0 && leader != n->cfg.id && m != NULL && !n->link_closed[m - n->cfg.members];
}

enum route route_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                         const struct resp_arg *argv, int64_t forced, uint64_t *target,
                         int32_t *slot, struct shard **shard, uint32_t *shard_k) {
    struct node *n = c->node;
    if (def == NULL || (def->flags & CMD_NODE)) return ROUTE_NOW;
    uint32_t k = 0;
    /* a part of a command over several shards names its shard: never
     * redirected, and its keys must all be there */
    bool redirect = forced < 0 && route_redirects(c);
    if (forced >= 0) {
        if ((uint64_t)forced >= n->map.n_shards) return ROUTE_BAD_SHARD;
        k = (uint32_t)forced;
    }
    if (def->first_key > 0) {
        struct node_keys_place place;
        node_cluster_keys_place(n, def, argc, argv, &place);
        if (redirect && place.cross_slot) return ROUTE_CROSSSLOT;
        if (forced >= 0 && (place.cross_shard || place.shard != k)) return ROUTE_CROSSSLOT;
        if (place.cross_shard) return gather_splits(def) ? ROUTE_GATHER : ROUTE_CROSSSLOT;
        if (redirect) *slot = place.slot;
        k = place.shard;
    } else if (n->map.n_shards > 1 && forced < 0) {
        return gather_spans(def) ? ROUTE_GATHER : ROUTE_SPANS;
    }
    struct shard *s = n->shards[k];
    *shard = s;
    *shard_k = k;
    /* XREAD BLOCK waits on the leader, READONLY or not */
    bool waits = (def->flags & CMD_BLOCKING) && cmd_block_wanted(def, argc, argv);
    if ((def->flags & CMD_READONLY) && c->readonly && s != NULL && !waits) return ROUTE_NOW;
#ifdef CANARY_FOLLOWER_READS
    /* deliberate bug: a follower answers reads from its replica as if
     * they were linearizable (stale reads) */
    if ((def->flags & CMD_READONLY) && s != NULL && !shard_is_leader(s)) return ROUTE_NOW;
#endif
    if (s != NULL && shard_is_leader(s)) {
        /* A write during a leadership handover waits for it to end (an
         * election timeout at most) and then goes to whoever leads. */
        if ((def->flags & CMD_WRITE) && raft_transferring(s->raft)) return ROUTE_NO_LEADER;
        return ROUTE_LOCAL;
    }
    *target = s != NULL ? raft_leader(s->raft) : node_cluster_guess_leader(n, k);
    if (!route__can_go_to(n, *target)) return ROUTE_NO_LEADER;
    if (*slot >= 0) return ROUTE_MOVED;
    return ROUTE_PROXY;
}

/* Whether shard k has a leader a command can go to now. */
static bool route__shard_led(const struct node *n, uint32_t k, bool write) {
    const struct shard *s = n->shards[k];
    if (s != NULL && shard_is_leader(s)) return !(write && raft_transferring(s->raft));
    uint64_t leader = s != NULL ? raft_leader(s->raft) : node_cluster_guess_leader(n, k);
    return route__can_go_to(n, leader);
}

bool route_gather_led(const struct client *c, const struct cmd_def *def, uint32_t argc,
                      const struct resp_arg *argv) {
    const struct node *n = c->node;
    bool write = (def->flags & CMD_WRITE) != 0;
    if (gather_splits(def)) {
        for (uint32_t i = 1; i < argc; i++) {
            uint32_t k = map_shard_of_slot(&n->map, slot_of_key(argv[i].data, argv[i].len));
            if (!route__shard_led(n, k, write)) return false;
        }
        return true;
    }
    if (route_redirects(c)) return true; /* only the shards this node leads */
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        if (!route__shard_led(n, k, write)) return false;
    }
    return true;
}

static bool route__arg_is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

int64_t route_unwrap(uint32_t *argc, const struct resp_arg **argv) {
    if (*argc < 1 || !route__arg_is(&(*argv)[0], "shoal.shard")) return -1;
    int64_t group;
    if (*argc < 3 || !cmd_parse_i64((*argv)[1].data, (*argv)[1].len, &group) || group < 1) {
        return -2;
    }
    *argc -= 2;
    *argv += 2;
    return group - 1;
}

bool route_refuses(enum route route) {
    return route == ROUTE_NO_LEADER || route == ROUTE_CROSSSLOT || route == ROUTE_SPANS ||
           route == ROUTE_BAD_SHARD || route == ROUTE_MOVED;
}

void route_refusal(const struct node *n, enum route route, const struct cmd_def *def,
                   int64_t forced, uint64_t target, int32_t slot, uint32_t waited_ms,
                   struct resp_out *out) {
    switch (route) {
    case ROUTE_NO_LEADER:
        resp_write_errorf(out, "CLUSTERDOWN no leader is elected yet (waited %u ms); "
                               "the command was not sent", waited_ms);
        break;
    case ROUTE_CROSSSLOT:
        resp_write_errorf(out, "CROSSSLOT Keys in request don't hash to the same slot");
        break;
    case ROUTE_SPANS:
        resp_write_errorf(out, "ERR '%s' over several shards is not supported yet "
                               "(shards %u); see docs/cluster.md", def->name, n->map.n_shards);
        break;
    case ROUTE_BAD_SHARD:
        resp_write_errorf(out, "ERR SHOAL.SHARD: no group %lld here", (long long)forced + 1);
        break;
    case ROUTE_MOVED: node_cluster_moved(n, target, slot, out); break;
    default: assert(0 && "a route that runs the command"); break;
    }
}
