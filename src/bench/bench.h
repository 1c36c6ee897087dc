/* bench.h: `shoal bench`, a load generator for RESP servers (one or many
 * nodes, or a Redis Cluster with slot routing) and for etcd's v3 HTTP/JSON
 * gateway. See docs/performance.md for what it measures and how.
 *
 * Threads: one POSIX thread per --threads, each with its own epoll loop,
 * connections, histogram and random generator; nothing is shared between
 * threads while the load runs (the results are merged after join). */
#ifndef SHOAL_BENCH_H
#define SHOAL_BENCH_H

/* Runs `shoal bench ARGS` (argv[0] is the first flag). Prints a human
 * summary and one JSON line on stdout. Returns the process exit code:
 * 0 done, 1 the load failed (connection lost, protocol error), 2 bad flags. */
int bench_main(int argc, char **argv);

#endif
