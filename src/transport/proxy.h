/* proxy.h: forwarding a client's commands to the leader. Each client
 * connection that needs it gets its own upstream connection to each
 * leader's client port it sends to (kept and reused), so a leader sees the
 * commands of one client in order on one connection and answers them in
 * order; each reply fills the oldest waiting slot of that upstream. If the upstream fails, every waiting slot gets an
 * error saying the outcome is unknown (the command may have been applied). */
#ifndef SHOAL_TRANSPORT_PROXY_H
#define SHOAL_TRANSPORT_PROXY_H

#include "node/node_int.h"

/* Sends the command to node `target` (its leader) for client c; the reply
 * will fill slot s. */
void proxy_forward(struct client *c, uint64_t target, struct slot *s, uint32_t argc,
                   const struct resp_arg *argv);
/* Has the client commands in flight to a node other than `target`
 * (0: to any node)? */
bool proxy_busy_except(const struct client *c, uint64_t target);
/* The client is going away: close its upstreams (replies are dropped). */
void proxy_detach(struct client *c);

/* Length of the first whole RESP2/RESP3 reply in buf[0, len): > 0, 0 if
 * more bytes are needed, -1 if the bytes are not RESP. */
long proxy_reply_length(const char *buf, size_t len);

#endif
