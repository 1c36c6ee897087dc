/* node.h: a shoal node: one process, one event loop (libuv), hosting the
 * Raft groups (shards) placed on it, its write-ahead log, its peer links
 * and its client connections. See docs/node.md. */
#ifndef SHOAL_NODE_H
#define SHOAL_NODE_H

#include "node/config.h"

/* Runs the node until SIGTERM or SIGINT (then shuts down cleanly and
 * returns 0) or until a fatal error (a failed fsync, corruption: prints a
 * message naming the file and offset and returns 1). */
int node_run(const struct node_config *config);

#endif
