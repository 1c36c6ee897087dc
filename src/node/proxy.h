/* proxy.h: forwarding a client's commands to the leader. Each client
 * connection that needs it gets its own upstream connection to the
 * leader's client port, so the leader sees the commands of one client in
 * order on one connection and answers them in order; each reply fills the
 * oldest waiting slot. If the upstream fails, every waiting slot gets an
 * error saying the outcome is unknown (the command may have been applied). */
#ifndef SHOAL_NODE_PROXY_H
#define SHOAL_NODE_PROXY_H

#include "node/node_int.h"

/* Sends the command to node `target` (its leader) for client c; the reply
 * will fill slot s. */
void proxy_forward(struct client *c, uint64_t target, struct slot *s, uint32_t argc,
                   const struct resp_arg *argv);
/* Has the client commands in flight on its upstream? */
bool proxy_busy(const struct client *c);
/* The node its upstream talks to (0: none). */
uint64_t proxy_target(const struct client *c);
/* The client is going away: close its upstream (replies are dropped). */
void proxy_detach(struct client *c);

/* Length of the first whole RESP2/RESP3 reply in buf[0, len): > 0, 0 if
 * more bytes are needed, -1 if the bytes are not RESP. */
long proxy_reply_length(const char *buf, size_t len);

#endif
