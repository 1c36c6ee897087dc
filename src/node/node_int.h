/* node_int.h: internal to the node (src/node/ and its layers, src/transport/,
 * src/shard/, src/meta/, src/router/): the node, its shards, clients, peers.
 *
 * One thread runs the event loop. Every call into a Raft group happens in
 * node_pump() (a libuv prepare handle: once per loop turn, after the I/O
 * callbacks): what arrived during the turn (peer messages, proposals, read
 * requests, ticks) is queued on the shard and fed to Raft there, then the
 * ready is taken, its records appended to the WAL, and one flush (one
 * fdatasync for every group) runs on a worker thread. When it completes,
 * the messages are sent, committed entries applied, replies released, and
 * raft_advance() called. So a reply never leaves before its fsync, and
 * Raft's "nothing between ready and advance" holds by construction. */
#ifndef SHOAL_NODE_INT_H
#define SHOAL_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cmd/cmd.h"
#include "io/io.h"
#include "kv/kv.h"
#include "meta/map.h"
#include "node/config.h"
#include "node/node.h"
#include "peer/peer_codec.h"
#include "raft/raft.h"
#include "resp/resp.h"
#include "shard/snapshot.h"
#include "util/rand.h"
#include "wal/wal.h"

#define NODE_INBOX_MAX 65536      /* peer messages queued per shard per turn */
#define NODE_READ_BYTES 65536     /* socket read buffer */
#define NODE_SLOT_BYTES_MAX (512ull << 20)
#define NODE_EXPIRE_BATCH 32      /* expired keys proposed per cycle */
/* Buckets of a keyspace resize moved per tick (node_core_tick): about 1 ms
 * of a 20 ms tick; 4M buckets in about 20 s. */
#define NODE_REHASH_BUCKETS_PER_TICK 4096u
#define NODE_BALANCE_MS 2000u /* a leader checks this often whether to hand over */
/* A leader whose group had nothing to do for this many heartbeat intervals
 * asks Raft to make it quiet (raft_quiesce; docs/node.md, "Quiet groups"). */
#define NODE_QUIET_HEARTBEATS 4u

struct node;
struct client;

/* A reply slot: one per command, in arrival order on its connection. */
struct slot {
    struct slot *next;
    bool done;
    bool gathered; /* a part of a command over several shards (gather.c) */
    bool watch;    /* WATCH's read: its digests are kept (multi_watch_reply) */
    bool blocking; /* a blocking command's (counted in client.blocking_pending) */
    uint32_t flight; /* its command's shard (map index) + 1 in the client's flights; 0: none */
    size_t len, cap;
    char *data; /* RESP bytes of the reply */
};

/* A connection to another node's client port, carrying a client's
 * commands there in order (proxying). A client keeps one per node it has
 * sent commands to, reused until it fails or the client goes away. */
struct upstream {
    struct client *owner;
    struct upstream *next; /* the owner's other upstreams */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uint64_t target; /* node id */
    uint8_t proto;   /* the RESP version its commands are answered in */
    bool connected, closing;
    struct slot **waiting; /* FIFO of slots awaiting a reply */
    uint32_t n_waiting, cap_waiting, head_waiting;
    char *in;              /* bytes received, not yet a whole reply */
    size_t in_len, in_cap;
    char *out;             /* bytes queued before the connection is up */
    size_t out_len, out_cap;
};

/* A connection's commands in flight to one shard, and where they went
 * (client.c, pipeline-order). */
#define CLIENT_FLIGHTS_MAX 16
/* Commands a connection runs per loop turn; the rest of its input waits
 * for the next turn, so that a client pipelining 100,000 commands does not
 * hold the loop (its heartbeats, its other clients) for their whole run. */
#define CLIENT_TURN_COMMANDS 1024u
struct client_flight {
    uint32_t shard;  /* map index */
    uint32_t n;      /* commands in flight */
    uint64_t target; /* the node they were forwarded to; 0: run here */
};

struct client {
    struct node *node;
    struct client *prev, *next;
    uv_tcp_t tcp;
    uint64_t id;
    bool closing;
    bool close_after_reply; /* QUIT, protocol error */
    bool paused;            /* reading stopped (backpressure or route change) */
    bool readonly;          /* READONLY: reads served by the local replica */
    bool cluster_mode;      /* asked for the topology: gets MOVED (cluster_cmds.c) */
    bool authed;            /* AUTH done, or no requirepass: may run commands */
    uint64_t leader_wait_since; /* mono ms + 1 since its held command waits for a leader */
    uint8_t proto;          /* 2 or 3 */
    char name[64];
    char addr[64];
    uint64_t created_ms;
    uint64_t last_ms;
    char last_cmd[24];
    struct resp_parser parser;
    char *in; /* bytes received and not yet parsed (kept while paused) */
    size_t in_len, in_cap, in_off;
    struct slot *head, *tail;
    uint32_t n_slots;
    uint32_t local_pending; /* writes/reads waiting on this node's shard */
    uint32_t evals_pending; /* its scripts not answered yet: later commands wait */
    /* its blocking commands not answered yet (here or at a leader it
     * forwarded them to): later commands wait, as behind a blocked Redis
     * client */
    uint32_t blocking_pending;
    /* its latest proposal in each shard (by map index; NULL before its
     * first write): its reads of that shard wait for it. One index for all
     * shards made a read wait for another group's log to reach the index
     * of a write in this one (seconds, or forever in an idle group). */
    uint64_t *last_write_index;
    uint32_t last_write_shard; /* map index + 1 of its latest proposal here, 0: none (WAIT) */
    uint64_t last_write_via;   /* its latest write went to this node id's leader; 0: here */
    struct client_wait *wait;  /* its WAIT not answered yet (wait.c), or NULL */
    struct upstream *ups; /* at most one per other node (proxy.c) */
    /* its commands in flight, by shard: a later command may overtake those
     * of other shards (pipeline-order shard), never its own shard's on
     * another route */
    struct client_flight flights[CLIENT_FLIGHTS_MAX];
    uint32_t n_flights;
    uint64_t out_bytes; /* bytes handed to uv_write and not yet written */
    struct gather *gather;  /* a command over several shards in progress */
    struct resp_arg *held_argv; /* a command waiting for its route to be free */
    uint32_t held_argc;
    struct client_multi *multi;  /* MULTI/WATCH state (multi.c), or NULL */
    struct client_pubsub *pubsub; /* its subscriptions (pubsub.c), or NULL */
    struct block *block;         /* its blocking command (block.c), or NULL */
    bool next_slot_watch;        /* the next slot is WATCH's read */
    bool release_due;            /* on node.release_head: finished replies to write */
    bool monitoring;             /* MONITOR: gets every command of the node (monitor.c) */
    bool backlogged;             /* on node.backlog: input left after its turn's budget */
    struct client *backlog_next;
    struct client *release_next;
};

/* A proposal of this node (as leader) waiting for its entry to apply. */
struct pending_write {
    uint64_t index, term;
    struct client *c; /* NULL once the client went away */
    struct slot *s;
    uint8_t proto;
    bool blocking; /* an attempt of c's block: answered through block_reply/block_fail */
    struct eval_job *job; /* a script's SHOAL.SCRIPT (eval.c): answered with its run's reply */
};

/* A command queued by a client this turn (is_write), or a linearizable
 * read waiting for its read index and then for apply. */
struct pending_read {
    bool is_write;
    bool blocking; /* a write that is an attempt of c's block (block.c) */
    uint64_t context;
    uint64_t index; /* 0 until confirmed */
    uint64_t min_index; /* the client's last write before it: pipelined order */
    /* it read a key a write waiting to apply touches: it waited for the
     * writes proposed before it (min_index) and is served at a clock no
     * later than any write still waiting (shard.c, "Reads and the writes
     * waiting") */
    bool waited;
    struct client *c;
    struct slot *s;
    uint8_t proto;
    const struct cmd_def *def;
    uint32_t argc;
    struct resp_arg *argv; /* one allocation with the bytes after the array */
    struct eval_job *job; /* a script (eval.c): run at its read point, or its writes */
};

/* A key slot a waiting write touches (SHARD_WAITING_ALL: every key). */
struct shard_waiting_key {
    uint64_t index;
    uint32_t slot;
};
#define SHARD_WAITING_ALL UINT32_MAX

struct shard {
    struct node *node;
    uint32_t index; /* in the map */
    uint64_t group;
    uint8_t n_replicas; /* the map's replicas of this shard: the initial voters */
    uint64_t replicas[MAP_REPLICAS_MAX];
    /* the initial learners: group 0's members that do not vote (meta.c) */
    uint8_t n_learners;
    uint64_t learners[RAFT_NODES_MAX];
    uint32_t my_rank;   /* this node's position among them (snapshot turns) */
    /* leaders spread (n_shards > 1): the preferred replica campaigns at
     * once in a new group, and a leader hands over to it when it is back
     * and caught up, at most every NODE_BALANCE_MS */
    bool campaign_due;
    uint64_t balance_at_ms;
    /* the pipelined entries in the flush in flight end here (0: none) */
    uint64_t flush_last_index, flush_last_term;
    struct raft *raft;
    struct kv *kv;
    bool in_ready; /* between raft_ready() and raft_advance() */
    /* a ready whose messages are queued and records in the WAL buffer, its
     * committed entries not yet applied (shard_apply); pipelined
     * (raft_can_advance_unsynced) or waiting for the flush */
    bool apply_due, ready_unsynced;
    /* the flush of that pipelined ready's records ended before its apply:
     * what it made durable, reported to Raft after the apply */
    uint64_t durable_last_index, durable_last_term;
    bool sent_early; /* the ready's leader messages left before its fsync */
    /* the ready's committed entries applied (and reads confirmed) before
     * its fsync: see shard__apply_early */
    uint32_t n_applied_early;
    bool reads_confirmed_early;
    /* The hard state last appended to the WAL, and a newer one that only
     * moved the commit index (it rides with the next append; see
     * shard__persist). */
    struct raft_hard_state hs_written, hs_pending;
    bool hs_known, has_hs_pending;
    bool gc_due;   /* a snapshot mark was appended: retire WAL segments after it is durable */
    bool snap_pinning; /* its entries keep the oldest WAL segment: snapshot it, however few */
    uint64_t applied_at_gc; /* applied at the node's last WAL collection (shard_snap_unpin) */
    uint64_t moved_at_ms;   /* when a collection last found it had applied entries */
    uint64_t gc_batch; /* the WAL batch (node.batch_seq) that carries it */
    /* the last entry a pipelined (unsynced) ready appended to the WAL
     * buffer since the last flush began: reported durable after it */
    uint64_t pending_last_index, pending_last_term;
    /* snapshots (shard_snap.c) */
    struct shard_snap_job *snap_job; /* the snapshot being written, or NULL */
    struct snapshot_ref snap_ref; /* the snapshot file Raft's chunks are read from */
    struct raft_snapshot_meta snap_meta; /* the one being written */
    uint64_t snap_meta_bytes;            /* applied_bytes at snap_meta.index */
    uint64_t snap_started_ms;
    uint64_t snap_begin_ms;    /* how long the last walk's start held the loop */
    /* written, but compaction waits for a transfer of the current one */
    struct snapshot_ref snap_next;
    uint64_t snap_next_bytes;
    uint64_t snap_failures, snap_failures_row; /* writer failures: all, in a row */
    uint64_t snap_retry_at_ms; /* no new writer before (backoff after a failure) */
    char snap_error[256];      /* the last failure's reason */
    uint64_t snap_last_ms, snap_last_bytes; /* the last snapshot written */
    uint64_t snap_last_cpu_ms; /* its writer thread's CPU time (0 if written inline) */
    uint64_t snap_installs;    /* snapshots received from a leader */
    uint64_t applied_bytes;    /* entry bytes applied since start */
    uint64_t snap_bytes_at;    /* applied_bytes at snapshot_index: see shard_log_bytes */
    /* a snapshot being received from the leader, written to <path>.recv */
    struct snapshot_writer *recv; /* NULL until the first snapshot received */
    struct raft_snapshot_meta recv_meta;
    bool recv_open;
    uint64_t recv_errors;
    struct raft_ready rd;
    uint64_t applied;
    uint64_t snapshot_index;
    uint64_t last_leader;
    uint8_t last_role;
    uint32_t ticks_due;
    /* With lease reads: the time (node_mono_ms) up to which its Raft was
     * ticked. Ticks are then counted from the clock, not from the timer's
     * callbacks (shard_clock_ticks). */
    uint64_t clock_ms;
    /* On node.awake (at awake_pos): pumped and ticked. A group leaves it
     * only when its Raft is quiet and nothing waits on it; anything that
     * arrives for it puts it back (node_core_wake). */
    bool awake;
    uint32_t awake_pos;
    bool due; /* on node.due: the next pump feeds it */
    bool wake_due;       /* raft_wake() at the next pump (a link was lost or came back) */
    uint32_t idle_ticks; /* ticks in a row with nothing to do */
    bool rehashing;      /* its keyspace was resizing at the last tick */
    /* peer messages received this turn (deep copies) */
    struct raft_msg *inbox;
    uint32_t n_inbox, cap_inbox;
    /* proposals queued this turn: entries to propose, with their slots */
    struct pending_write *writes; /* FIFO by index, proposed */
    uint32_t n_writes, cap_writes, head_writes;
    /* Leadership lost with writes of terms up to orphans_term past the
     * commit index: they wait for their index to be applied until
     * orphans_until_ms (node_mono_ms; 0: no wait runs), then are answered
     * "outcome unknown" (shard_orphans_check) */
    uint64_t orphans_until_ms, orphans_term;
    struct pending_read *queued; /* this turn's commands, fed to Raft in the pump */
    uint32_t n_queued, cap_queued;
    struct pending_read *reads;
    uint32_t n_reads, cap_reads;
    uint64_t next_read_context;
    struct block_table *blocked; /* keys clients wait on here (block.c), or NULL */
    /* expiry: keys whose deletion this leader proposed, in flight */
    uint64_t expire_proposed_at;
    /* This leader's writes not yet applied, by the hash slots of their keys
     * (shard.c, "Reads and the writes waiting"): a read of a slot one of
     * them touches waits for them. FIFO by index; the counts per slot are
     * allocated while any waits and freed when the group sleeps. */
    struct shard_waiting_key *waiting_keys;
    uint32_t n_waiting_keys, cap_waiting_keys, head_waiting_keys;
    uint16_t *waiting_slots; /* SLOT_COUNT counts, or NULL */
    uint32_t waiting_all;    /* waiting writes that touch any key (keyless, internal) */
    struct resp_out scratch[2]; /* reply buffers for RESP2 and RESP3 */
    struct rand rng;
};

struct peer {
    struct node *node;
    const struct node_member *member;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t retry;
    bool connected, connecting, tcp_open;
    uint32_t backoff_ms;
    struct peer_buf pending; /* frames of this turn, written once per turn */
    uint64_t write_bytes;    /* handed to uv_write, not yet written */
    uint64_t dropped;
    bool sent_since_beat;    /* a frame went out since the last peer_beat */
    /* The dialled link is read only to notice its end (the other node
     * never writes on it): a killed node's link closes here at once,
     * beaten or not. What arrives lands here and is dropped. */
    char sink[64];
};

struct peer_conn { /* an accepted connection from another node */
    struct node *node;
    struct peer_conn *prev, *next;
    uv_tcp_t tcp;
    uint64_t from; /* node id after HELLO */
    char *in;
    size_t in_len, in_cap;
    bool closing;
};

struct node_stats {
    uint64_t commands, connections, rejected, proxied, expired, snapshots;
    uint64_t snapshots_forced; /* a shard's, started early: it kept the WAL's oldest segment */
    uint64_t scripts, scripts_stopped; /* runs (eval.c); stopped at the time limit */
    uint64_t flushes, flush_us_total, net_in, net_out;
    uint64_t read_waits; /* reads that waited for writes to their keys (shard.c) */
    uint64_t turn_yields; /* a connection's input left for the next turn (client.c) */
};

/* The host: what the node core (node_core.c, shard.c, shard_snap.c and
 * the commands they run) asks of the program around it, as one table of
 * functions and the context they get. node.c fills it on libuv
 * (node_host_libuv: the clock, stderr, the loop's wake-up, a worker thread
 * for the flush, peer.c's connections, client.c's replies); src/nsim/
 * fills it over simulated time, disks, network and clients, with no global
 * state. The core calls it through the functions declared under "Host
 * functions" below (node_host.c), never directly. */
struct node_host {
    void *ctx;
    uint64_t (*now_ms)(void *ctx);  /* wall clock (expiry, entry timestamps) */
    uint64_t (*mono_ms)(void *ctx); /* monotonic: ticks, timeouts, durations */
    /* monotonic microseconds: commands' run times (SLOWLOG); NULL: none */
    uint64_t (*mono_us)(void *ctx);
    void (*log)(void *ctx, const char *line);
    void (*fatal)(void *ctx, const char *line); /* fail stop: must not return */
    void (*wake)(void *ctx);                    /* run node_core_pump() again soon */
    /* Runs wal_flush_run(n->batch), on or off the loop, then
     * node_core_flush_done(). */
    void (*flush_submit)(void *ctx);
    void (*peer_send)(void *ctx, uint64_t group, const struct raft_msg *m);
    /* A PEER_FRAME_BEAT to node `to` unless a frame went to it since the
     * last call for it: true if one was queued (see peer_beat()). */
    bool (*peer_beat)(void *ctx, uint64_t to);
    void (*peer_flush)(void *ctx); /* write this turn's frames */
    /* A PEER_FRAME_MAP_PULL or PEER_FRAME_MAP to node `to` (pull by
     * version, meta.c); it counts as a frame on that link, so no beat is
     * added to it in the same interval. Bytes are copied. */
    void (*peer_map)(void *ctx, uint64_t to, const struct peer_map_msg *m);
    /* A command's reply is ready: data is copied before the call returns. */
    void (*reply)(void *ctx, struct client *c, struct slot *s, const char *data, size_t len);
    void (*resume_clients)(void *ctx);  /* a leader appeared: retry held commands */
    void (*release_replies)(void *ctx); /* write the replies finished this turn */
};

/* SLOWLOG's entries (slowlog.c): a ring of cap, len of them from head, the
 * newest first */
struct slowlog_entry;
struct slowlog {
    struct slowlog_entry *ring;
    uint32_t cap, head, len;
    uint64_t next_id;
};

struct node {
    struct pubsub *pubsub; /* channels and patterns subscribed here (pubsub.c) */
    struct client **monitors; /* connections that sent MONITOR (monitor.c) */
    struct client *backlog;   /* clients with commands left for the next turn (client.c) */
    uint32_t n_monitors, cap_monitors;
    struct slowlog slowlog;
    struct node_config cfg;
    const struct node_member *self;
    uv_loop_t *loop;
    uv_tcp_t client_listener, peer_listener;
    uv_timer_t tick_timer;
    uv_prepare_t pump;
    uv_check_t release_check; /* after the I/O of a turn: write the turn's replies */
    struct client *release_head; /* clients with finished replies not yet written */
    uv_idle_t idle;
    uv_signal_t sigterm, sigint;
    uv_work_t flush_work;
    bool flushing, stopping, idle_on;
    bool entries_unsent; /* a shard_pump queued frames with entries: written before the replies */
    int flush_result;
    struct wal_batch *batch;
    uint64_t batch_seq; /* batches started */
    struct io io;
    struct wal *wal;
    struct map map;
    struct shard **shards; /* by map index; NULL where this node holds no replica */
    struct shard **local;  /* the replicas this node holds */
    uint32_t n_local;
    struct shard **awake;  /* the replicas not quiet: the only ones ticked */
    uint32_t n_awake;
    /* The replicas the pump visits: those something happened to (a
     * message, a command, a tick, a flush) until nothing is left to do;
     * and those holding a ready until their flush ends. A turn costs
     * O(due), not O(replicas). */
    struct shard **due;
    uint32_t n_due;
    struct shard **in_ready; /* in a ready, waiting for the flush */
    uint32_t n_in_ready;
    /* The meta group (group 0, meta.c): this node's replica, a voter or a
     * learner; not in `local` or `shards` (it owns no slot), but pumped,
     * ticked and flushed like them (awake, due, in_ready count it). */
    struct shard *meta;
    /* the replica whose snapshot is being written (one at a time per node):
     * the tick polls it, as a quiet group has no advance that would */
    struct shard *snap_writer;
    uint64_t meta_seen_applied;  /* group 0's applied index when its map was last read */
    uint64_t meta_proposed_term; /* the term in which this leader proposed the initial map */
    uint64_t meta_installs;      /* maps installed from group 0 */
    bool meta_wake_due;          /* an installed map reordered replicas: meta_tick wakes them */
    /* Pull by version (meta.c; docs/cluster.md, "The meta group"): a node
     * with no replica of group 0 (n->meta NULL) asks one of group 0's
     * members for the map once per heartbeat interval. */
    uint64_t meta_ids[MAP_META_MEMBERS_MAX]; /* group 0's members, voters first */
    uint32_t n_meta_ids;
    uint32_t pull_next;   /* meta_ids index asked next (rotates when one does not answer) */
    uint64_t pull_asked;  /* the member asked, no answer yet (0: none) */
    uint64_t pull_leader; /* group 0's leader as the last answer named it (0: none) */
    uint64_t pulls, pull_answers, pull_maps; /* asked, answered, answered with a newer map */
    /* The node-level failure detector, by member index: when a frame last
     * came from each peer (any frame; an idle link carries the coalesced
     * beat, peer_beat), and whether the link counts as lost (nothing for
     * an election timeout). */
    uint64_t heard_ms[NODE_PEERS_MAX];
    bool link_lost[NODE_PEERS_MAX];
    /* Its connection to this node closed (the libuv host: EOF or error on
     * the link it opened to us), until a frame comes again: a node that was
     * killed is not proxied to or named in MOVED while the others elect
     * (the command waits for a leader instead: route.c). */
    bool link_closed[NODE_PEERS_MAX];
    uint64_t watch_ms; /* when the links were last watched (node_core_tick) */
    /* The links this node beats and watches, by member index: the nodes it
     * shares a group with in which one of the two votes (node_core_open
     * fills it from the map). Every other link carries no periodic frame
     * and is not watched (docs/cluster.md, "Idle links"). */
    bool beat_to[NODE_PEERS_MAX];
    uint64_t beats_sent[NODE_PEERS_MAX]; /* PEER_FRAME_BEATs queued, by member index */
    uint64_t ticks; /* node_core_tick calls */
    struct peer peers[NODE_PEERS_MAX];
    struct peer_conn *peer_conns;
    struct client *clients;
    uint32_t n_clients;
    uint32_t leader_waiters; /* clients whose command waits for a leader */
    struct block *blocks;    /* every client's blocking command (block.c) */
    uint32_t n_blocked;      /* of them, those waiting: INFO's blocked_clients */
    uint32_t n_waits;        /* clients in WAIT (wait.c) */
    struct client_wait *waits; /* their list: wait_check walks these, not every client */
    uint64_t memory_peak_bytes; /* MEMORY STATS's peak.allocated (memory.c) */
    /* maxmemory (memory.c): this node's used memory as last measured, and
     * whether it is past maxmemory; the nodes that said they are past
     * theirs (PEER_FRAME_STATE, by member index; cleared when their link
     * closes or says HELLO again). A leader refuses writes that add data
     * when any node holding a replica of the shard is past (node_oom). */
    uint64_t used_memory, used_memory_ms;
    uint64_t memory_not_counted; /* of used_memory, the Raft logs' entries */
    bool oom;
    bool peer_oom[NODE_PEERS_MAX];
    uint32_t n_peer_oom; /* of them, those true (node_peer_oom keeps it) */
    uint64_t next_client_id;
    struct node_stats stats;
    uint64_t start_ms;
    uint64_t last_tick_ms, stall_worst_ms, stall_logged_ms; /* loop stalls (node.c) */
    int exit_code;
    char snap_path[NODE_PATH_BYTES + 32];
    /* Set by a simulating host: snapshots are written on the loop (no fork),
     * and every applied entry is reported with the replica that applies it
     * (checkers). */
    bool snapshot_inline;
    void (*on_apply)(struct node *n, const struct shard *s, const struct raft_entry *e);
    struct script_engine *scripts; /* the Lua engine (eval.c), made at the first script */
    struct node_host host; /* the program around the core: node.c on libuv, or src/nsim/ */
};

/* node_core.c: one turn of the node, with no event loop (see above). */
int node_core_open(struct node *n); /* recovery; n->cfg and n->io set by the host */
void node_core_close(struct node *n);
void node_core_pump(struct node *n);  /* once per turn, when woken */
void node_core_tick(struct node *n);  /* every cfg.tick_ms */
void node_core_flush_done(struct node *n, int result); /* wal_flush_run()'s result */
/* argv and its bytes copied into one allocation (free() it); NULL on ENOMEM. */
/* multi.c: transactions (MULTI/EXEC/DISCARD/WATCH/UNWATCH) */
#define NODE_MULTI_COMMANDS_MAX 100000u /* commands in one transaction */
#define NODE_MULTI_BYTES_MAX (4u << 20)  /* its arguments: one log entry */
#define NODE_MULTI_WATCH_MAX 10000u     /* keys one connection watches */
/* A command the transaction state takes (true; *ran false if it must wait
 * and be sent again), or false: run it as usual. */
bool multi_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv, bool *ran);
void multi_watch_reply(struct client *c, struct slot *s);
void multi_free(struct client *c);
bool multi_active(const struct client *c);

/* block.c: clients blocked on keys (BLPOP, BLMOVE, ...; docs/node.md,
 * "Blocking commands"). Only the leader of the keys' shard holds blocks;
 * every pop is the command itself sent through the log. */
struct block;
struct block_table;
/* Starts c's blocking command (route: this node leads s): answers a syntax
 * error, or sends an attempt through the log, or waits for the keys. */
void block_start(struct client *c, struct shard *s, struct slot *slot, const struct cmd_def *def,
                 uint32_t argc, const struct resp_arg *argv);
/* shard.c: the applied reply of c's attempt (it answers c, or c waits on),
 * or the attempt's failure (answered). */
void block_reply(struct client *c, const char *data, size_t len);
void block_fail(struct client *c, const char *msg);
/* shard.c: an applied write touched these keys; after the apply, attempts
 * for the waiters of the keys that hold something. */
void block_touched(struct shard *s, const struct cmd_def *def, uint32_t argc,
                   const struct resp_arg *argv);
void block_serve(struct node *n, struct shard *s);
void block_tick(struct node *n); /* deadlines; keys left ready during a transfer */
void block_lost(struct node *n, struct shard *s); /* s's leadership was lost */
void block_client_gone(struct client *c);
bool block_is_blocked(const struct client *c); /* waiting (CLIENT LIST's flag b) */
bool block_waiting(const struct shard *s);     /* someone waits on its keys: stay awake */
/* CLIENT UNBLOCK: 1 if client `id` was blocked here (its answer: the
 * timeout's or -UNBLOCKED), else 0. */
int block_unblock(struct node *n, uint64_t id, bool error);
void block_free_shard(struct shard *s);
/* The group sleeps: frees what only its writes in flight need (shard.c). */
void shard_sleep(struct shard *s);
/* The node is gone (its shards freed, as a crash leaves it in shoal-nsim):
 * frees every block, answering none. */
void block_free_all(struct node *n);

/* eval.c: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT on the node
 * (docs/scripting.md). A script runs on its keys' leader at a read point
 * (ReadIndex, like a read); what it writes is proposed as one SHOAL.SCRIPT
 * entry and its client is answered with the run's reply once that entry
 * applied; an entry refused (a key changed in between) runs the script
 * again, once nothing else is in flight. */
#define EVAL_TRIES_MAX 8u
struct eval_job;
struct script_result;
/* Starts c's script (route: this node leads s). */
void eval_start(struct client *c, struct shard *s, struct slot *slot, const struct cmd_def *def,
                uint32_t argc, const struct resp_arg *argv);
void eval_job_free(struct eval_job *j); /* NULL: nothing */
/* Whether the job may run now (a retry waits until nothing is in flight). */
bool eval_ready(const struct shard *s, const struct eval_job *j);
bool eval_quiet(const struct shard *s);
/* Runs the job's script (shard.c, at its read point): the reply in out,
 * its writes in res (script_result_free). */
void eval_run(struct shard *s, struct eval_job *j, uint8_t proto, struct resp_out *out,
              struct script_result *res);
/* Keeps the run's reply for when its entry applies; false if out of memory. */
bool eval_keep_reply(struct eval_job *j, const struct resp_out *out);
const char *eval_reply(const struct eval_job *j, size_t *len);
/* A retry: true (quiesce set) while tries remain. */
bool eval_retry(struct eval_job *j);
void eval_job_argv(const struct eval_job *j, uint32_t *argc, const struct resp_arg **argv);
/* shard.c: queues the job (a read with it, or its SHOAL.SCRIPT write). */
void shard_eval(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                bool is_write, uint32_t argc, const struct resp_arg *argv, struct eval_job *j);
/* SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP (node command). */
void eval_script_command(struct client *c, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out);
/* A proxied EVALSHA whose script this node has becomes an EVAL (the
 * leader may not have it), and so does each EVALSHA inside a proxied
 * SHOAL.EXECSCRIPT: a new argv (free() it; the bodies are the engine's,
 * valid until its cache changes) or NULL if nothing changed. */
struct resp_arg *eval_sha_to_body(struct node *n, uint32_t argc, const struct resp_arg *argv);
void eval_free(struct node *n);
/* FUNCTION LOAD/DELETE/FLUSH/RESTORE as the SHOAL.FUNCTION entry that
 * carries it (cmd_func.c), the code checked by this node's Lua engine:
 * true and *f (free it with eval_function_free), or false after the error
 * in out. */
struct eval_function {
    uint32_t argc;
    struct resp_arg argv[4];
    char *mem;
};
bool eval_function_prepare(struct node *n, uint32_t argc, const struct resp_arg *argv,
                           struct eval_function *f, struct resp_out *out);
void eval_function_free(struct eval_function *f);

/* pubsub.c: SUBSCRIBE and friends, PUBLISH, SPUBLISH, PUBSUB */
#define PUBSUB_NAME_BYTES_MAX 65536u           /* a channel or pattern */
#define PUBSUB_MESSAGE_BYTES_MAX (32u << 20)   /* fits one peer frame */
#define PUBSUB_PER_CLIENT_MAX 100000u          /* subscriptions of one connection */
/* (UN)SUBSCRIBE commands, and the RESP2 subscribed context's gate: true if
 * it answered the command. */
bool pubsub_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv);
/* PUBLISH, SPUBLISH, PUBSUB (node commands). */
void pubsub_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                    const struct resp_arg *argv, struct resp_out *out);
/* Delivers to this node's subscribers; returns how many got it. */
uint64_t pubsub_deliver(struct node *n, bool sharded, const char *ch, size_t ch_len,
                        const char *msg, size_t msg_len);
void pubsub_client_gone(struct client *c);
/* monitor.c: MONITOR; each command a connection runs, to every monitor. */
void monitor_command(struct client *c, struct resp_out *out);
void monitor_feed(struct node *n, const struct client *from, uint32_t argc,
                  const struct resp_arg *argv);
void monitor_client_gone(struct client *c);
void monitor_free(struct node *n);
bool pubsub_subscribed(const struct client *c); /* to a channel, pattern or shard channel */
void pubsub_free(struct node *n);
/* peer.c: a published message to every connected peer. */
void peer_publish(struct node *n, bool sharded, const char *ch, size_t ch_len, const char *msg,
                  size_t msg_len);
/* client.c, for multi.c: an immediate reply in a new slot; a command run
 * as this connection's next (false: its route is busy, send it again). */
void client_reply_now(struct client *c, const char *data, size_t len);
/* client.c, for meta.c: a new reply slot (NULL: out of memory, the
 * connection is closed); whether nothing of c is in flight anywhere. */
bool client_quiet(const struct client *c);
/* A command with no leader to go to waits leader-wait-ms (client.c): true
 * once it has waited that long; _end when it runs. */
bool client_leader_wait_over(struct client *c);
void client_leader_wait_end(struct client *c);
bool client_run(struct client *c, uint32_t argc, const struct resp_arg *argv);
struct resp_arg *node_argv_copy(uint32_t argc, const struct resp_arg *argv);
/* The replica of a group this node holds, or NULL. */
struct shard *node_shard_of_group(const struct node *n, uint64_t group);
bool shard_is_leader(const struct shard *s);
/* Entry bytes applied since the last snapshot: the Raft log a snapshot
 * would free (snapshot policy, maxmemory's not-counted bytes, INFO). */
static inline uint64_t shard_log_bytes(const struct shard *s) {
    return s->applied_bytes - s->snap_bytes_at;
}
bool node_leads_any(const struct node *n); /* leads at least one of its groups */
/* Whether a write that adds data to shard k (its index in the map) must be
 * refused: this node, or a node holding a replica of the shard, is past
 * its maxmemory (docs/node.md, "maxmemory"). */
bool node_oom(const struct node *n, uint32_t k);
/* Sets member i's state as its PEER_FRAME_STATE says (false: forgotten). */
void node_peer_oom(struct node *n, uint32_t i, bool oom);
#define NODE_OOM_ERROR "OOM command not allowed when used memory > 'maxmemory'."
/* Puts a replica on node.awake (pumped and ticked) and wakes the loop;
 * with raft_too its Raft is woken at the next pump (raft_wake). Anything
 * queued for a replica wakes it: peer messages (shard_step), commands. */
void node_core_wake(struct node *n, struct shard *s, bool raft_too);
/* The host received a frame (of any kind, HELLO included) from peer `id`. */
void node_core_heard(struct node *n, uint64_t id);
/* Whether the link to member index i counts as up: not seen closing
 * (link_closed) and, for a link this node watches (beat_to), a frame
 * within the failure detector's timeout. An unwatched link is up until it
 * closes. */
bool node_core_link_up(const struct node *n, uint32_t i);

/* Host functions (node_host.c): each calls n->host (struct node_host). */
uint64_t node_now_ms(const struct node *n); /* wall clock (expiry, entry timestamps) */
/* slowlog.c: around a command run here for client c (NULL: none to
 * record for): start's clock reading (0: nothing to record, no clock read
 * then), given back to finish, which records it if it was slow enough */
uint64_t slowlog_start(const struct node *n, const struct client *c);
void slowlog_finish(struct node *n, const struct client *c, uint32_t argc,
                    const struct resp_arg *argv, uint64_t start);
void slowlog_command(struct node *n, uint32_t argc, const struct resp_arg *argv,
                     struct resp_out *out);
void slowlog_free(struct node *n);
uint64_t node_mono_ms(const struct node *n);
uint64_t node_mono_us(const struct node *n); /* 0 if the host has no such clock */
void node_log(const struct node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fail stop: never returns. */
void node_fatal(struct node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void node_wake(struct node *n); /* run node_core_pump() again soon */
/* Runs wal_flush_run(n->batch), then node_core_flush_done(). */
void node_flush_submit(struct node *n);
/* node.c: the libuv host's table, with n as its context. */
void node_host_libuv(struct node *n);
/* A libuv read buffer: grows data[0, *cap) so that NODE_READ_BYTES fit
 * after len, and points buf there (an empty buf on ENOMEM). */
void node_read_buf(char **data, size_t *cap, size_t len, uv_buf_t *buf);
/* Writes what the socket takes at once, with no write request: a completed
 * uv_write makes libuv re-arm the stream's watcher (one epoll_ctl per reply
 * batch, docs/performance.md); behind a queued write libuv refuses, so the
 * order holds. The bytes written (0 to len), or a libuv error < 0; the
 * caller queues the rest with uv_write. */
int64_t node_write_now(uv_stream_t *stream, const char *data, size_t len);

/* meta.c: the meta group, group 0 (docs/cluster.md, "The meta group"). */
#define META_MAP_KEY "map"
/* Fills s with group 0's members (voters, learners) and this node's rank. */
void meta_members(const struct node *n, struct shard *s);
/* After every advance of group 0's replica: installs a newer map it
 * applied; as leader, proposes the initial map when there is none. */
void meta_after_advance(struct node *n, struct shard *s);
/* Group 0's apply of a map change, `SHOAL.MAPSET <epoch> <map>`: true if
 * argv is one (its reply in out), false for any other entry. */
bool meta_apply(struct node *n, struct shard *s, int64_t now_ms, uint32_t argc,
                const struct resp_arg *argv, struct resp_out *out);
/* SHOAL.PREFER and its kin (client.c, before routing): true if it took the
 * command (*ran false: the connection must wait and send it again). */
bool meta_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv, bool *ran);
/* A map change ready to propose: `SHOAL.MAPSET <epoch> <map>` in argv
 * (bytes owned: free() them). */
struct meta_change {
    struct resp_arg argv[3];
    char epoch[24];
    uint8_t *bytes;
    size_t len;
};
/* The change that makes node `id` the preferred leader (first replica) of
 * shard `group` in this node's map: 0, or -1 with a RESP error text in err. */
int meta_prefer_entry(struct node *n, uint64_t group, uint64_t id, struct meta_change *out,
                      char *err, size_t err_cap);
/* Proposes, as group 0's leader, the map with node `id` made the
 * preferred leader of shard `group` (the simulator's fault): 0, or -1. */
int meta_propose_prefer(struct node *n, uint64_t group, uint64_t id);
/* Every tick (not in the pump, whose due list must not grow behind it):
 * wakes the groups whose preferred leader an installed map changed. */
void meta_tick(struct node *n);
/* Pull by version: every heartbeat interval (node_core_tick, before the
 * beats), a node outside group 0 asks a member for the map newer than its
 * own; a member answers a pull (`m->pull`) from node `from`, a non-member
 * installs the map of an answer through the same checks and install as a
 * replica's applied map. Frames of the wrong kind for this node are
 * ignored. */
void meta_pull(struct node *n);
void meta_map_frame(struct node *n, uint64_t from, const struct peer_map_msg *m);
/* Whether this node holds a replica of group 0 (one of the first
 * MAP_META_MEMBERS_MAX members by id). */
bool meta_is_member(const struct node *n);
/* Opens this node's replica of group 0 into n->meta (0, or -1 logged);
 * on a node that is not a member, n->meta stays NULL. */
int meta_open(struct node *n, const struct wal_recovered *rec);
/* The map's epoch, and the meta leader this node knows of (0: none). */
uint64_t meta_leader(const struct node *n);

/* shard.c */
/* Opens this node's replica of map shard `index` into s; index ==
 * map.n_shards opens group 0 (meta_members). */
int shard_open(struct node *n, struct shard *s, uint32_t index,
               const struct wal_group_state *recovered);
void shard_close(struct node *n, struct shard *s);
/* Feeds Raft; true if a ready was taken. While a flush is in flight only
 * a leader's pipelined ready is taken (and done with at once); otherwise
 * the ready stays open (in_ready) until shard_finish after its flush. */
bool shard_pump(struct node *n, struct shard *s, bool flushing);
/* A ready that shard_pump left with apply_due (its messages queued, its
 * records in the WAL buffer): applies its committed entries, and if it is
 * pipelined advances Raft (in_ready ends), else it waits for the flush. */
void shard_apply(struct node *n, struct shard *s);
/* With lease reads: the whole ticks elapsed since s->clock_ms, which it
 * moves on (shard.c) */
uint32_t shard_clock_ticks(struct node *n, struct shard *s);
/* After the flush: the ready's messages (shard_finish_send), then the
 * rest (shard_finish), so that every group's messages are written before
 * any group applies. */
void shard_finish_send(struct node *n, struct shard *s);
void shard_finish(struct node *n, struct shard *s);
/* A flush ended: batch number `batch`, whose pipelined entries end at
 * last_index (0 if none). */
void shard_flushed(struct node *n, struct shard *s, uint64_t batch, uint64_t last_index,
                   uint64_t last_term);
void shard_step(struct node *n, struct shard *s, const struct raft_msg *m); /* queue */
/* Proposes a write for client c (leader only); the reply goes to slot. */
void shard_write(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                 uint32_t argc, const struct resp_arg *argv);
/* The same for an attempt of c's blocking command (block.c). */
void shard_write_block(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                       uint32_t argc, const struct resp_arg *argv);
void shard_read(struct node *n, struct shard *s, struct client *c, struct slot *slot,
                const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv);
void shard_forget_client(struct shard *s, const struct client *c);
void shard_kv_config(const struct node *n, const struct shard *s, struct kv_config *kc);

/* shard_snap.c: a shard replica's snapshots (docs/node.md, "Snapshots"). */
/* At start: loads the snapshot file if there is one (then s->snap_ref has
 * it open), streaming the keyspace into s->kv; 0, or -1 after logging why. */
int shard_snap_load(struct node *n, struct shard *s);
void shard_snap_close(struct node *n, struct shard *s);
/* Raft's config.snapshot_read and config.snapshot_recv (ctx: the shard). */
void shard_snap_read(void *ctx, uint64_t offset, uint8_t *buf, uint32_t len);
int shard_snap_recv(void *ctx, const struct raft_snapshot_meta *meta, uint64_t size,
                    uint64_t offset, const uint8_t *buf, uint32_t len);
/* A ready installs the snapshot received: persist makes the received file
 * the replica's snapshot (fsync, rename); install loads it as the keyspace. */
void shard_snap_persist(struct node *n, struct shard *s);
void shard_snap_install(struct node *n, struct shard *s);
/* Reaps a finished background writer (compacting behind it), and starts a
 * new one when due; called after every advance. */
void shard_poll_snapshot(struct node *n, struct shard *s);
/* Answers "outcome unknown" to the writes a lost leadership left waiting,
 * once their wait is over; called after every advance and every tick. */
void shard_orphans_check(struct node *n, struct shard *s);
uint64_t shard_orphans_wait_ms(const struct node *n); /* how long they wait */
void shard_snap_maybe(struct node *n, struct shard *s);
void shard_snap_unpin(struct node *n);
void shard_snap_tick(struct node *n);

/* Host functions for the transport (node_host.c, through n->host). */
/* The coalesced node heartbeat: a PEER_FRAME_BEAT to peer `to` if it got
 * no frame since the last call for it; true if one was queued.
 * node_core_tick calls it every heartbeat interval for each peer in
 * beat_to, so each link of a shared group carries something that often
 * however many groups are quiet. */
bool peer_beat(struct node *n, uint64_t to);
void peer_send(struct node *n, uint64_t group, const struct raft_msg *m);
void peer_flush(struct node *n); /* write this turn's frames */
void peer_map(struct node *n, uint64_t to, const struct peer_map_msg *m);

/* peer.c (the libuv host's transport; peer_net_* fill its table) */
int peer_start(struct node *n);
bool peer_net_beat(struct node *n, uint64_t to);
void peer_net_send(struct node *n, uint64_t group, const struct raft_msg *m);
void peer_net_flush(struct node *n);
void peer_net_map(struct node *n, uint64_t to, const struct peer_map_msg *m);
/* A PEER_FRAME_STATE (n->oom) to every connected peer, written now. */
void peer_net_state(struct node *n);
/* The cluster id peers exchange: the configured one, mixed with the shard
 * layout when there is more than one shard, so that nodes configured with
 * different layouts refuse each other. */
uint64_t node_peer_cluster_id(const struct node *n);
void peer_stop(struct node *n);

/* Host functions for the clients (node_host.c, through c->node->host). */
void slot_set(struct client *c, struct slot *s, const char *data, size_t len);
void slot_set_error(struct client *c, struct slot *s, const char *msg); /* "-msg\r\n" */
/* Writes the replies finished during this turn: one write per client. */
void client_release_due(struct node *n);
void client_resume_all(struct node *n);

/* client.c (the libuv host's clients; client_reply, client_release_turn
 * and client_resume_held fill its table) */
int client_start(struct node *n);
void client_stop(struct node *n);
void client_reply(struct client *c, struct slot *s, const char *data, size_t len);
void client_release_turn(struct node *n);
void client_resume_held(struct node *n);
/* Once per loop turn: the clients whose input outlasted their last turn's
 * budget (CLIENT_TURN_COMMANDS) run their next commands. */
void client_backlog_run(struct node *n);
void client_release(struct client *c); /* write finished slots at the head */
void client_resume(struct client *c);
/* A new reply slot at the tail of c's queue; NULL if c was closed (out of
 * memory). */
struct slot *client_slot(struct client *c);

/* wait.c: WAIT numreplicas timeout (docs/node.md, "WAIT"). */
/* Whether c's earlier commands are all answered, as WAIT needs to start. */
bool wait_ready(const struct client *c);
/* Runs WAIT (argc 3): answers at once, or follows the latest write to its
 * leader, or blocks c until wait_check answers. */
void wait_command(struct client *c, uint32_t argc, const struct resp_arg *argv);
/* Answers the waits whose count is reached, whose timeout passed, or whose
 * shard this node no longer leads. Each loop turn and tick. */
void wait_check(struct node *n);
void wait_client_gone(struct client *c);
/* CLIENT UNBLOCK of a client in WAIT: answered with its count (TIMEOUT) or
 * Redis's -UNBLOCKED error (ERROR); 1 if it was in WAIT. */
int wait_unblock(struct node *n, uint64_t id, bool error);
/* memory.c: MEMORY STATS, DOCTOR, MALLOC-STATS, PURGE (docs/node.md,
 * "MEMORY"). Whether argv is one of them (the node answers it, not a
 * keyspace); the command; the peak's keeping, each tick. */
bool memory_is_node_sub(uint32_t argc, const struct resp_arg *argv);
void memory_command(struct node *n, uint32_t argc, const struct resp_arg *argv,
                    struct resp_out *out);
void memory_tick(struct node *n);
/* used_memory and the maxmemory state measured now, not at the next check */
void memory_measure_now(struct node *n);
/* client_cmds.c: the commands the node answers itself (CMD_NODE). */
void client_node_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                         const struct resp_arg *argv, struct resp_out *out);
void client_info_line(const struct client *c, char *buf, size_t cap);
/* CLIENT KILL of another connection: closed now, its pending replies dropped. */
void client_kill(struct client *c);

/* route.c (src/router/): where a command goes, slot -> shard -> leader. */
enum route {
    ROUTE_NOW,       /* answered at once from this replica (or by the node) */
    ROUTE_LOCAL,     /* this node leads the shard: propose or read here */
    ROUTE_PROXY,     /* forwarded to the leader */
    ROUTE_NO_LEADER, /* waits for a leader (leader-wait-ms), then CLUSTERDOWN */
    ROUTE_MOVED,     /* a cluster client is told where the leader is */
    ROUTE_CROSSSLOT, /* keys span slots (a cluster client) or shards (any client) */
    ROUTE_SPANS,     /* a whole-keyspace command while there are several shards */
    ROUTE_GATHER,    /* over several shards: split, run shard by shard (gather.c) */
    ROUTE_BAD_SHARD, /* SHOAL.SHARD naming no shard */
};
/* Where c's command goes (its arity checked): *shard is the shard it runs
 * on (NULL if no replica of it is here), *target the node to forward it to
 * or name in MOVED, *slot (left -1 unless c is redirected) the keys' slot.
 * forced: the shard a part of a command over several shards names (-1:
 * none; route_unwrap). *shard_k is the shard's map index when the command
 * runs on one shard (ROUTE_LOCAL, ROUTE_PROXY, ...). */
enum route route_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                         const struct resp_arg *argv, int64_t forced, uint64_t *target,
                         int32_t *slot, struct shard **shard, uint32_t *shard_k);
/* Whether this connection gets MOVED rather than being proxied. */
bool route_redirects(const struct client *c);
/* Whether every shard a command over several shards sends a part to has a
 * leader; if not, the command waits (leader-wait-ms) as a one-shard
 * command does, then runs and the parts with no leader fail. */
bool route_gather_led(const struct client *c, const struct cmd_def *def, uint32_t argc,
                      const struct resp_arg *argv);
/* `SHOAL.SHARD <group> <command> ...`: the shard index it names (-2 if the
 * group is not a number; -1 if not this form), argv and argc moved past it. */
int64_t route_unwrap(uint32_t *argc, const struct resp_arg **argv);
/* Whether the route runs nothing (NO_LEADER, CROSSSLOT, SPANS, BAD_SHARD,
 * MOVED); route_refusal writes its error (waited_ms: CLUSTERDOWN's wait). */
bool route_refuses(enum route route);
void route_refusal(const struct node *n, enum route route, const struct cmd_def *def,
                   int64_t forced, uint64_t target, int32_t slot, uint32_t waited_ms,
                   struct resp_out *out);

/* cluster_cmds.c: the shard map as Redis Cluster clients see it. */
void node_cluster_command(struct client *c, uint32_t argc, const struct resp_arg *argv,
                          struct resp_out *out);
void node_cluster_node_id(const struct node *n, uint64_t id, char out[41]);
/* Where a command's keys are: the slot and shard of the first, and
 * whether any other is in another slot or shard. */
struct node_keys_place {
    int32_t slot;
    uint32_t shard;
    bool cross_slot, cross_shard;
};
void node_cluster_keys_place(const struct node *n, const struct cmd_def *def, uint32_t argc,
                             const struct resp_arg *argv, struct node_keys_place *out);
/* Where to send a shard's commands when no replica of it is here. */
uint64_t node_cluster_guess_leader(const struct node *n, uint32_t k);
/* Writes `-MOVED slot host:port` naming leader (a member). */
void node_cluster_moved(const struct node *n, uint64_t leader, int32_t slot,
                        struct resp_out *out);

/* gather.c: commands over several shards. */
struct gather;
bool gather_splits(const struct cmd_def *def); /* MGET, DEL, UNLINK, EXISTS */
bool gather_spans(const struct cmd_def *def);  /* DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSH* */
/* Starts one into `parent` (-1 on ENOMEM); led_only: only the shards this
 * node leads (a cluster client's whole-keyspace command). */
int gather_start(struct client *c, const struct cmd_def *def, uint32_t argc,
                 const struct resp_arg *argv, struct slot *parent, bool led_only);
/* Takes a finished part and sends the next or finishes; false if idle. */
bool gather_step(struct client *c);
void gather_free(struct gather *g);
/* client.c: runs a part (SHOAL.SHARD ...) with its reply into `into`. */
void client_dispatch_part(struct client *c, uint32_t argc, const struct resp_arg *argv,
                          struct slot *into);

/* info.c */
void node_info(struct node *n, const char *section, size_t len, struct resp_out *out);

#endif
