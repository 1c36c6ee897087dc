/* demo.h: `shoal demo`, a local cluster in one command. It starts N
 * `shoal server` child processes of this same binary on 127.0.0.1, prints
 * how to reach them, and supervises them until SIGINT or SIGTERM.
 *
 * Layout: every node keeps its data, its log (the child's stdout and stderr,
 * appended) and its command line under the demo's directory:
 *
 *     D/node1/            data directory of node 1 (`--dir`)
 *     D/node1/log         node 1's output
 *     D/node1/cmdline     node 1's full server command line, one line of
 *                         shell words: run it to restart the node by hand
 *
 * Node i (1..N) has id i, client port P+i-1 and peer port P+10000+i-1; the
 * cluster id is 1. The demo restarts nothing by itself: a child that exits is
 * reported (`node I exited (status S)`) and the others keep running. */
#ifndef SHOAL_NODE_DEMO_H
#define SHOAL_NODE_DEMO_H

#define DEMO_NODES_MAX 9
#define DEMO_NODES_DEFAULT 3
#define DEMO_PORT_DEFAULT 7001
#define DEMO_PEER_PORT_OFFSET 10000
#define DEMO_STOP_SECONDS 10 /* after SIGTERM to the children, then SIGKILL */

/* Runs `shoal demo` with the arguments after `demo` (argv[0] is the first
 * flag): `--nodes N` (1..DEMO_NODES_MAX, default 3), `--port P` (default
 * 7001), `--dir D` (default: a new directory /tmp/shoal-demo-XXXXXX; an
 * existing D is reused, so a second `shoal demo --dir D` restarts the same
 * cluster on its data), `--help`. Checks every port is free before starting
 * anything. Blocks until SIGINT or SIGTERM (which it sends on to every child
 * as SIGTERM, waiting DEMO_STOP_SECONDS before SIGKILL) or until every node
 * has exited. Must be called from a single-threaded process: it blocks
 * SIGINT, SIGTERM, SIGHUP and SIGCHLD and waits for them with sigtimedwait
 * (no handler, no global). Returns the exit code: 0 after a stop on a
 * signal, 1 if the demo could not start or every node exited, 2 for bad
 * flags. */
int node_demo(int argc, char **argv);

#endif
