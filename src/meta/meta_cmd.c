/* meta_cmd.c: the operator's commands on the map (docs/cluster.md, "The
 * meta group"), on a real node's connections (client.c calls
 * meta_intercept before routing; the simulator drives meta.c directly).
 *
 *   SHOAL.PREFER <group> <node-id>
 *       makes the node the preferred leader (first replica) of the shard:
 *       one entry in group 0, the map's epoch + 1; every node installs
 *       it, and the shard's leader hands leadership over to that node
 *       (node_core.c's balancer, within NODE_BALANCE_MS of the install).
 *       Answers the new epoch once the entry applied on group 0's leader;
 *       sent to any node (one that does not lead group 0 forwards it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "transport/proxy.h"

static void meta_cmd__error(struct client *c, const char *msg) {
    char line[256];
    int len = snprintf(line, sizeof(line), "-%s\r\n", msg);
    client_reply_now(c, line, len > 0 && (size_t)len < sizeof(line) ? (size_t)len : 0);
}

static void meta_cmd__prefer(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    struct node *n = c->node;
    int64_t group = 0, id = 0;
    if (argc != 3 || !cmd_parse_i64(argv[1].data, argv[1].len, &group) ||
        !cmd_parse_i64(argv[2].data, argv[2].len, &id) || group < 1 || id < 1) {
        meta_cmd__error(c, "ERR SHOAL.PREFER <group> <node-id>");
        return;
    }
    struct shard *m = n->meta;
    if (m == NULL || !shard_is_leader(m)) {
        uint64_t leader = meta_leader(n);
        if (leader == 0 || leader == n->cfg.id || node_config_member(&n->cfg, leader) == NULL) {
            meta_cmd__error(c, "CLUSTERDOWN the meta group has no leader; the command was not "
                               "sent");
            return;
        }
        struct slot *s = client_slot(c);
        if (s != NULL) proxy_forward(c, leader, s, argc, argv);
        return;
    }
    struct meta_change ch;
    char err[200];
    if (meta_prefer_entry(n, (uint64_t)group, (uint64_t)id, &ch, err, sizeof(err)) != 0) {
        meta_cmd__error(c, err);
        return;
    }
    struct slot *s = client_slot(c);
    if (s != NULL) shard_write(n, m, c, s, 3, ch.argv); /* copies argv */
    free(ch.bytes);
}

bool meta_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv, bool *ran) {
    if (argc < 1 || argv[0].len != 12 || strncasecmp(argv[0].data, "shoal.prefer", 12) != 0) {
        return false;
    }
    /* after everything this connection sent before it; while group 0 has
     * no leader (a cluster just started), it waits leader-wait-ms for one,
     * as a command for a shard does, before CLUSTERDOWN */
    struct node *n = c->node;
    bool led = (n->meta != NULL && shard_is_leader(n->meta)) || meta_leader(n) != 0;
    *ran = client_quiet(c) && (led || client_leader_wait_over(c));
    if (*ran) {
        client_leader_wait_end(c);
        meta_cmd__prefer(c, argc, argv);
    }
    return true;
}
