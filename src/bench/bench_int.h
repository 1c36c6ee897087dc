/* bench_int.h: the structures `shoal bench` shares between its option
 * parser and report (bench.c) and its load loop (bench_loop.c). */
#ifndef SHOAL_BENCH_INT_H
#define SHOAL_BENCH_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/bench_proto.h"

#define BENCH_TARGETS_MAX 64   /* --targets, and nodes of a Redis Cluster */
#define BENCH_THREADS_MAX 64
#define BENCH_CONNS_MAX 10000
#define BENCH_PIPELINE_MAX 1024
#define BENCH_KEY_BYTES_MIN 8
#define BENCH_KEY_BYTES_MAX 1024
#define BENCH_VALUE_BYTES_MAX (1u << 20)
#define BENCH_HOST_BYTES 256
#define BENCH_LABEL_BYTES 64
#define BENCH_PASSWORD_BYTES 257 /* a node's requirepass is at most 256 bytes */
#define BENCH_ERROR_BYTES 512
#define BENCH_READ_BYTES (64u << 10)      /* a connection's first read buffer */
#define BENCH_READ_BYTES_MAX (64u << 20)  /* one reply may not exceed this */
#define BENCH_DRAIN_NS (5ull * 1000000000) /* wait for replies after the deadline */
#define BENCH_NODE_NONE 0xffu

_Static_assert(BENCH_TARGETS_MAX < BENCH_NODE_NONE, "a node index fits a byte");

enum bench_mode { BENCH_MODE_RESP, BENCH_MODE_CLUSTER, BENCH_MODE_ETCD };
enum bench_workload { BENCH_SET, BENCH_GET, BENCH_MIX };
enum bench_op { BENCH_OP_SET, BENCH_OP_GET };

struct bench_node {
    char host[BENCH_HOST_BYTES];
    unsigned port;
    struct sockaddr_in addr;
};

struct bench_opts {
    enum bench_mode mode;
    enum bench_workload workload;
    struct bench_node targets[BENCH_TARGETS_MAX];
    unsigned n_targets;
    unsigned threads, conns, pipeline;
    uint64_t requests;
    double duration_s;
    uint64_t keyspace;
    unsigned key_bytes, value_bytes;
    unsigned get_percent; /* mix: share of GETs */
    bool sequential;      /* keys 0..keyspace-1 in order instead of random */
    bool serializable;    /* etcd: serializable instead of linearizable ranges */
    bool json_only;
    uint64_t seed;
    char label[BENCH_LABEL_BYTES];
    char password[BENCH_PASSWORD_BYTES]; /* -a: AUTH on every connection ("": none) */
};

/* Redis Cluster routing: which node serves each slot. Each thread keeps its
 * own copy and refreshes it on MOVED. */
struct bench_map {
    struct bench_node nodes[BENCH_TARGETS_MAX];
    unsigned n_nodes;
    uint8_t slot_node[BENCH_SLOTS]; /* BENCH_NODE_NONE: unknown */
};

struct bench_pending {
    uint64_t key_index;
    uint8_t op; /* enum bench_op */
};

struct bench_client;

/* One TCP connection of a client to one node. Requests go out in the order
 * of `pending`; replies come back in that order (RESP, HTTP/1.1). */
struct bench_conn {
    struct bench_client *client;
    int fd; /* -1: not connected */
    unsigned node;
    bool want_write;
    char *wbuf;
    size_t wlen, woff, wcap;
    char *rbuf;
    size_t rlen, rcap;
    struct bench_pending *ring; /* pipeline entries */
    unsigned head, count;
};

/* One logical client: a batch of `pipeline` requests in flight at a time
 * (as redis-benchmark -P sends them), over one connection (or, in cluster
 * mode, one per node its keys route to). */
struct bench_client {
    struct bench_thread *thread;
    struct bench_conn *conns; /* [1] or [BENCH_TARGETS_MAX] in cluster mode */
    unsigned n_conns;
    unsigned target; /* resp/etcd mode: index into opts.targets */
    uint64_t batch_start_ns;
    unsigned outstanding;
    bool idle;
    bool is_ready; /* in thread->ready: its next batch goes out this turn */
};

struct bench_thread {
    const struct bench_opts *opts;
    const struct bench_map *initial_map;
    pthread_barrier_t *barrier;
    const uint64_t *start_ns; /* set by the main thread after the barrier */
    unsigned index;
    pthread_t tid;
    int epfd;
    struct bench_client *clients;
    unsigned n_clients, idle_clients;
    struct bench_client **ready; /* batches answered this loop turn */
    unsigned n_ready;
    uint64_t quota, sent, done, errors, moved, lost;
    uint64_t seq_next, seq_begin, seq_end;
    uint64_t rng;
    uint64_t deadline_ns, end_ns;
    uint64_t last_refresh_ns;
    struct bench_map map;
    struct bench_hist hist;
    char *value; /* value_bytes of the value every SET writes */
    int failed;
    char error[BENCH_ERROR_BYTES];
    char first_error[BENCH_ERROR_BYTES]; /* the first error reply, for the report */
};

uint64_t bench_now_ns(void);
/* A TCP connection to a node (TCP_NODELAY), authenticated with `password`
 * first unless it is empty (AUTH, answered before the socket is made
 * non-blocking); -1 with error set. */
int bench_connect(const struct bench_node *node, bool nonblocking, const char *password,
                  char *error, size_t cap);
/* Asks node for CLUSTER SLOTS and fills map (blocking). 0 or -1 with error. */
int bench_cluster_slots(const struct bench_node *node, const char *password,
                        struct bench_map *map, char *error, size_t cap);
/* Resolves host:port into node (numeric or by name). 0 or -1. */
int bench_node_set(struct bench_node *node, const char *host, size_t host_len, unsigned port);

/* Thread body: connects, waits at the barrier, runs the load, returns. */
void *bench_thread_run(void *arg);

#endif
