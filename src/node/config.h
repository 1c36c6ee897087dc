/* config.h: a node's configuration: command-line flags and a config file
 * taking the same keys (`key value` per line, `#` comments), flags winning
 * over the file. Defaults follow Redis where a Redis setting exists. */
#ifndef SHOAL_NODE_CONFIG_H
#define SHOAL_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Members of a cluster. Per process (struct node, the configuration), not
 * per shard or client; group 0 holds at most MAP_META_MEMBERS_MAX of them
 * and the others pull the map (docs/cluster.md, "The meta group"). */
#define NODE_PEERS_MAX 128
#define NODE_ADDR_BYTES 64
#define NODE_PATH_BYTES 1024
#define NODE_PASS_BYTES 257 /* requirepass: up to 256 bytes */

/* A member of the initial cluster: id, client address, peer address. */
struct node_member {
    uint64_t id;
    char host[NODE_ADDR_BYTES]; /* IPv4 literal, e.g. 127.0.0.1 */
    uint16_t client_port;
    uint16_t peer_port;
};

/* Who gets `MOVED` instead of being proxied to the leader (docs/cluster.md). */
enum node_redirect {
    NODE_REDIRECT_AUTO = 0,   /* connections that asked for the topology (CLUSTER SLOTS, ...) */
    NODE_REDIRECT_ALWAYS = 1, /* every connection: all clients are cluster clients */
    NODE_REDIRECT_NEVER = 2,  /* none: always proxy */
};

/* What a plain connection's pipeline keeps in order (docs/cluster.md,
 * "Order"). */
enum node_pipeline_order {
    NODE_ORDER_SHARD = 0,      /* each shard's commands; shards run side by side */
    NODE_ORDER_CONNECTION = 1, /* all: a change of shard waits for the replies */
};

/* Redis's parameters that shoal takes by Redis's names (config_redis.c;
 * docs/operations.md, "Redis's parameters"): CONFIG GET/SET on a node, the
 * config file and the flags. */
enum node_redis_param {
    NODE_REDIS_ZSET_ENTRIES,     /* zset-max-listpack-entries: honoured up to 128 */
    NODE_REDIS_ZSET_VALUE,       /* zset-max-listpack-value: honoured up to 64 */
    NODE_REDIS_HASH_ENTRIES,     /* hash-max-listpack-entries: honoured up to 512 */
    NODE_REDIS_HASH_VALUE,       /* hash-max-listpack-value: honoured up to 64 */
    NODE_REDIS_SET_INTSET,       /* set-max-intset-entries: honoured up to 512 */
    NODE_REDIS_SET_ENTRIES,      /* set-max-listpack-entries (7.2's): honoured up to 128 */
    NODE_REDIS_SET_VALUE,        /* set-max-listpack-value (7.2's): honoured up to 64 */
    NODE_REDIS_LIST_SIZE,        /* list-max-listpack-size: honoured (node size) */
    NODE_REDIS_LIST_COMPRESS,    /* list-compress-depth: accepted, no effect (no compression) */
    NODE_REDIS_STREAM_BYTES,     /* stream-node-max-bytes: accepted, fixed (content) */
    NODE_REDIS_STREAM_ENTRIES,   /* stream-node-max-entries: accepted, fixed (content) */
    NODE_REDIS_HLL_SPARSE_BYTES, /* hll-sparse-max-bytes: no effect (3000, fixed: cmd_hll.c) */
    NODE_REDIS_BUSY_REPLY_MS,    /* busy-reply-threshold, alias lua-time-limit (for scripts) */
    NODE_REDIS_MAXMEMORY_POLICY, /* noeviction only: shoal never evicts */
    NODE_REDIS_MAXMEMORY,        /* bytes; past it writes that add data are refused (memory.c) */
    NODE_REDIS_APPENDONLY,       /* accepted, no effect: always durable (yes) */
    NODE_REDIS_APPENDFSYNC,      /* accepted, no effect: always */
    NODE_REDIS_SAVE,             /* accepted, no effect: "" */
    NODE_REDIS_SLOWLOG_SLOWER_THAN, /* slowlog-log-slower-than (us; -1 none; slowlog.c) */
    NODE_REDIS_SLOWLOG_MAX_LEN,     /* slowlog-max-len: entries kept, at most 100000 */
    NODE_REDIS_COUNT
};

struct node_config {
    uint64_t id;                        /* key "id": this node's id (>= 1) */
    char dir[NODE_PATH_BYTES];          /* "dir": data directory (WAL, snapshots) */
    char bind[NODE_ADDR_BYTES];         /* "bind": address to listen on, 127.0.0.1 */
    uint16_t port;                      /* "port": client (RESP) port; default from cluster */
    uint16_t peer_port;                 /* "peer-port": default from the cluster entry */
    struct node_member members[NODE_PEERS_MAX]; /* "cluster": id=host:port:peer_port,... */
    uint32_t n_members;
    uint64_t cluster_id;                /* "cluster-id": refuses peers of another cluster */
    /* Raft timing */
    uint32_t tick_ms;                   /* "tick-ms": 20 */
    uint32_t election_ticks;            /* "election-ticks": 15 (300-600 ms) */
    uint32_t heartbeat_ticks;           /* "heartbeat-ticks": 2 */
    bool lease_read;                    /* "lease-read": no */
    uint64_t snapshot_entries;          /* "snapshot-entries": 100000 applied entries */
    uint64_t snapshot_log_bytes;        /* "snapshot-log-bytes": 512mb of log since the last */
    uint64_t snapshot_chunk_bytes;      /* "snapshot-chunk-bytes": 1mb per chunk sent */
    uint64_t snapshot_write_rate;       /* "snapshot-write-rate": 128mb per second, 0 no limit */
    /* placement (src/meta/map.h): every node must be given the same */
    uint32_t shards;                    /* "shards": 1 */
    uint32_t replicas;                  /* "replicas": 0 = every node with one shard, else 3 */
    /* Group 0's members at most (map_meta_members; 0: MAP_META_MEMBERS_MAX,
     * 16). Not an option: shoal-nsim lowers it so that some of its 3-5
     * nodes are outside group 0, pull the map and share no group with
     * some others (docs/nsim.md). */
    uint32_t meta_members;
    /* routing */
    uint32_t leader_wait_ms;            /* "leader-wait-ms": 2000; then CLUSTERDOWN */
    uint8_t cluster_redirect;           /* "cluster-redirect": enum node_redirect */
    uint8_t pipeline_order;             /* "pipeline-order": enum node_pipeline_order */
    /* client limits (Redis's names) */
    uint32_t maxclients;                /* "maxclients": 10000 */
    uint64_t proto_max_bulk_len;        /* "proto-max-bulk-len": 512mb */
    uint64_t client_query_buffer_limit; /* "client-query-buffer-limit": 1gb */
    uint64_t client_output_buffer_limit; /* "client-output-buffer-limit": 256mb hard */
    uint32_t max_pending_replies;       /* "max-pending-replies": 100000 per connection */
    /* peers and WAL */
    uint64_t peer_queue_bytes;          /* "peer-queue-bytes": 64mb per peer, then drop */
    uint64_t wal_segment_bytes;         /* "wal-segment-bytes": 64mb */
    /* logging */
    char logfile[NODE_PATH_BYTES];      /* "logfile": "" = stderr */
    /* clients */
    char requirepass[NODE_PASS_BYTES];  /* "requirepass": "" = no AUTH needed */
    bool verbose;                       /* "verbose": no */
    int64_t redis[NODE_REDIS_COUNT];    /* Redis's parameters, by enum node_redis_param */
};

/* Redis's parameters (config_redis.c). */
void node_redis_defaults(struct node_config *config);
/* The parameter named name[0, len) (or its alias), case-insensitive, or -1. */
int node_redis_find(const char *name, size_t len);
/* Its name, or its old alias (NULL if none). */
const char *node_redis_name(int param, bool alias);
/* Its value as CONFIG GET shows it. */
void node_redis_value(const struct node_config *config, int param, char *buf, size_t cap);
/* A packing threshold (a parameter whose minimum is 0) as this node applies
 * it: the value set, or capacity (what the packed format holds) if that is
 * less. */
uint32_t node_redis_threshold(const struct node_config *config, int param, uint32_t capacity);
/* Checks and sets value[0, len): 0, or -1 with Redis's reason in why
 * ("argument couldn't be parsed into an integer", ...). */
int node_redis_set(struct node_config *config, int param, const char *value, size_t len,
                   char *why, size_t why_cap) __attribute__((warn_unused_result));

/* Sets every default (no id, no cluster). */
void node_config_default(struct node_config *config);

/* Parses `shoal server` arguments (argv[0] is the first flag), reading
 * `--config FILE` first if present. Flags are `--key value` with the keys
 * above. Returns 0, or -1 with a message in err (NUL-terminated). Validates:
 * id set and present in the cluster, ports in range, limits sane. */
int node_config_parse(struct node_config *config, int argc, char **argv, char *err,
                      size_t err_cap) __attribute__((warn_unused_result));

/* Prints the keys, their meaning and defaults (for --help). */
void node_config_usage(FILE *out);

/* Replicas per shard in effect: `replicas`, or its default (0: every node
 * with one shard, else 3), at most the cluster's nodes. */
uint32_t node_config_replicas(const struct node_config *config);

/* The member with this id, or NULL. */
const struct node_member *node_config_member(const struct node_config *config, uint64_t id);

#endif
