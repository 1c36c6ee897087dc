/* sim.h: the deterministic cluster simulator (build/shoal-sim). One seeded
 * generator drives a simulated network, simulated disks, clients and a
 * nemesis over real Raft replicas; checkers watch every step. A seed replays
 * bit for bit. Internal to src/sim/. */
#ifndef SHOAL_SIM_H
#define SHOAL_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "check/lin.h"
#include "raft/raft.h"
#include "util/rand.h"

#define SIM_NODES_MAX 8
#define SIM_CLIENTS_MAX 6
#define SIM_KEYS_MAX 6
#define SIM_INBOX_MAX 4096
#define SIM_PENDING_MAX 64
#define SIM_VALUE_BYTES_MAX 4096
_Static_assert(SIM_VALUE_BYTES_MAX == LIN_VALUE_BYTES_MAX, "the model refuses appends as the kv does");

/* Time is in microseconds of simulated time; a Raft tick is SIM_TICK_US. */
#define SIM_TICK_US 10000

enum sim_op_kind { SIM_OP_GET = LIN_GET, SIM_OP_PUT = LIN_PUT, SIM_OP_CAS = LIN_CAS,
                   SIM_OP_APPEND = LIN_APPEND };

/* ---- the key-value state machine (sim_kv.c) ---- */

struct sim_value {
    bool present;
    uint32_t len;
    uint8_t bytes[SIM_VALUE_BYTES_MAX];
};

struct sim_kv {
    struct sim_value keys[SIM_KEYS_MAX];
    uint64_t applied_index;
};

/* A command as proposed: who asked, and what. */
struct sim_cmd {
    uint8_t kind;
    uint8_t key;
    uint16_t client;
    uint32_t req;
    bool expect_present;
    uint32_t arg_len;
    uint32_t expect_len;
    uint8_t arg[64];
    uint8_t expect[SIM_VALUE_BYTES_MAX];
};

struct sim_result {
    bool ok;      /* CAS swapped; APPEND/PUT always true */
    bool found;   /* GET */
    uint32_t len; /* GET value */
    const uint8_t *value;
};

uint32_t sim_cmd_encode(const struct sim_cmd *cmd, uint8_t *buf, uint32_t cap);
bool sim_cmd_decode(const uint8_t *buf, uint32_t len, struct sim_cmd *cmd);
void sim_kv_apply(struct sim_kv *kv, const struct sim_cmd *cmd, struct sim_result *res);
void sim_kv_read(const struct sim_kv *kv, uint8_t key, struct sim_result *res);
/* Snapshot of the whole state; returns bytes written into *out (malloc'd). */
uint64_t sim_kv_save(const struct sim_kv *kv, uint8_t **out);
bool sim_kv_load(struct sim_kv *kv, const uint8_t *data, uint64_t len);
uint64_t sim_kv_hash(const struct sim_kv *kv);

/* ---- the disk (sim_disk.c) ---- */

/* One append-only log file of CRC-checked records; `synced` bytes survive a
 * crash, the rest may survive in part (a torn final record) or not at all. */
struct sim_disk {
    uint8_t *bytes;
    uint64_t len;
    uint64_t cap;
    uint64_t synced;
};

/* What recovery reads back. Entries and snapshot data point into `arena`
 * memory owned by this struct. */
struct sim_recovered {
    bool has_hard_state;
    struct raft_hard_state hard;
    bool has_snapshot;
    struct raft_snapshot_meta snapshot;
    uint8_t *snapshot_data;
    uint64_t snapshot_size;
    struct raft_entry *entries;
    uint32_t n_entries;
    uint32_t cap_entries;
    uint64_t truncated_bytes; /* a torn tail that was cut */
};

void sim_disk_free(struct sim_disk *disk);
void sim_disk_write_hard_state(struct sim_disk *disk, const struct raft_hard_state *hs);
void sim_disk_write_entry(struct sim_disk *disk, const struct raft_entry *e);
void sim_disk_write_snapshot(struct sim_disk *disk, const struct raft_snapshot_meta *meta,
                             const uint8_t *data, uint64_t size);
void sim_disk_sync(struct sim_disk *disk);
/* Crash: keep synced bytes and `keep` of the unsynced ones. */
void sim_disk_crash(struct sim_disk *disk, uint64_t keep);
/* Reads the log back; returns false (with a message naming the offset in
 * why) on corruption other than a torn tail, which it truncates. */
bool sim_disk_recover(struct sim_disk *disk, struct sim_recovered *out, char *why,
                      size_t why_cap);
void sim_recovered_free(struct sim_recovered *rec);

/* ---- events ---- */

enum sim_event_type {
    SIM_EV_TICK = 1,
    SIM_EV_DELIVER,    /* raft message to a node */
    SIM_EV_FSYNC_DONE,
    SIM_EV_REQUEST,    /* client request reaches a node */
    SIM_EV_REPLY,      /* node reply reaches a client */
    SIM_EV_CLIENT,     /* client wakes up: next op or timeout */
    SIM_EV_NEMESIS,
    SIM_EV_RESTART,
    SIM_EV_NEMESIS_REAP,
    SIM_EV_CRASH,      /* the nemesis's ambush of a new leader */
};

struct sim_reply {
    uint16_t client;
    uint32_t req;
    uint8_t status; /* enum sim_status */
    uint64_t leader_hint;
    struct sim_result res;
    uint8_t value[SIM_VALUE_BYTES_MAX];
};

enum sim_status { SIM_ST_OK = 1, SIM_ST_NOT_LEADER, SIM_ST_BUSY };

struct sim_event {
    uint64_t time;
    uint64_t seq;
    uint8_t type;
    uint8_t node;       /* slot */
    uint32_t gen;       /* node incarnation, to drop stale events */
    struct raft_msg *msg;    /* DELIVER (owned) */
    struct sim_cmd *cmd;     /* REQUEST (owned) */
    struct sim_reply *reply; /* REPLY (owned) */
    uint16_t client;
    uint32_t req;
};

/* ---- nodes ---- */

struct sim_pending {
    bool used;
    bool is_read;
    uint16_t client;
    uint32_t req;
    uint8_t key;
    uint64_t read_index; /* reads: confirmed index, 0 while waiting */
    bool read_confirmed;
};

struct sim_inbox_item {
    uint8_t type; /* SIM_EV_DELIVER, SIM_EV_REQUEST or SIM_EV_TICK */
    struct raft_msg *msg;
    struct sim_cmd *cmd;
};

struct sim_node {
    bool exists;       /* slot in use (has a disk) */
    bool alive;        /* process running */
    bool bootstrap;    /* member of the initial configuration */
    bool removing;     /* its removal was proposed */
    bool removed;      /* removed from the configuration: stopped for good */
    uint64_t id;
    uint32_t gen;      /* incarnation */
    struct raft *raft;
    struct sim_disk disk;
    struct sim_kv kv;
    bool persisting;
    struct raft_ready rd;
    struct sim_inbox_item inbox[SIM_INBOX_MAX];
    uint32_t inbox_head;
    uint32_t inbox_count;
    struct sim_pending pending[SIM_PENDING_MAX];
    uint8_t last_role; /* for the trace */
    uint64_t compact_every;
    bool slow_disk;
    /* The highest term in a message this replica sent (pre-votes aside:
     * they ask about the next term without taking it). A replica announces
     * a term only after the ready that took it is durable, so a restart
     * must come back at this term or later. */
    uint64_t announced_term;
};

/* ---- clients and history ---- */

struct sim_op {
    uint8_t kind;
    uint8_t key;
    uint16_t client;
    uint32_t req;
    uint64_t invoke_us;
    uint64_t complete_us;
    bool completed; /* got a definite answer */
    bool failed;    /* definite: did not happen (not leader) */
    bool cas_ok;
    bool found;
    uint32_t arg_off, arg_len;       /* into sim.values */
    bool expect_present;
    uint32_t expect_off, expect_len; /* into sim.values */
    uint32_t out_off, out_len;       /* into sim.values */
};

struct sim_client {
    uint16_t id;
    bool busy;
    uint32_t req;
    uint32_t op_index; /* into sim.ops */
    uint8_t target;    /* node slot it talks to */
    uint64_t deadline_us;
    struct sim_cmd cmd;
    /* last value read per key, for CAS */
    bool seen_present[SIM_KEYS_MAX];
    uint32_t seen_len[SIM_KEYS_MAX];
    uint32_t seen_off[SIM_KEYS_MAX];
    uint32_t attempts;
};

/* ---- the simulation ---- */

struct sim_options {
    uint64_t seed;
    bool trace; /* every event */
    bool demo;  /* 5 voters, notable events only */
    uint64_t fault_ticks; /* 0: chosen from the seed */
};

struct sim_stats {
    uint64_t ticks;
    uint64_t events;
    uint64_t ops_ok;
    uint64_t ops_failed;
    uint64_t ops_unknown;
    uint64_t crashes;
    uint64_t partitions;
    uint64_t conf_changes;
    uint64_t transfers;
    uint64_t snapshots_sent;
    uint64_t elections;
    uint64_t lin_unknown; /* keys whose history the checker could not decide */
};

struct sim {
    struct sim_options opt;
    struct rand rng;
    uint64_t now_us;
    uint64_t seq;
    /* event heap */
    struct sim_event *heap;
    uint32_t heap_len;
    uint32_t heap_cap;
    /* nodes */
    struct sim_node nodes[SIM_NODES_MAX];
    uint32_t n_slots;
    uint64_t next_id;
    struct raft_config raft_cfg;
    struct raft_conf initial_conf;
    /* network */
    bool blocked[SIM_NODES_MAX][SIM_NODES_MAX]; /* from, to */
    uint32_t drop_percent;
    uint32_t dup_percent;
    uint64_t delay_max_us;
    /* clients */
    struct sim_client clients[SIM_CLIENTS_MAX];
    uint32_t n_clients;
    uint32_t n_keys;
    struct sim_op *ops;
    uint32_t n_ops;
    uint32_t cap_ops;
    uint8_t *values;
    uint64_t values_len;
    uint64_t values_cap;
    /* phases */
    uint64_t heal_us;   /* faults stop */
    uint64_t end_us;    /* the run stops */
    bool healed;
    bool ambush; /* crash the next replica that becomes leader, within a tick */
    uint64_t last_write_ok_us;
    /* checker state */
    uint64_t *leader_of_term;
    uint64_t cap_terms;
    struct sim_applied *applied; /* by index */
    uint64_t cap_applied;
    uint64_t max_applied;
    uint64_t max_term_seen; /* highest term in any ready so far */
    struct sim_acked *acked;
    uint32_t n_acked;
    uint32_t cap_acked;
    /* outcome */
    bool violated;
    char violation[512];
    struct sim_stats stats;
    FILE *trace; /* every event, or NULL */
    FILE *notes; /* notable events (faults, elections, crashes), or NULL */
};

struct sim_applied {
    uint64_t term;
    uint64_t hash;
    uint64_t term_bound; /* highest term of any replica when first applied: the
                          * leader that committed it had a term <= this */
    uint16_t client;
    uint32_t req;
};

struct sim_acked {
    uint64_t index;
    uint16_t client;
    uint32_t req;
};

/* sim.c */
int sim_run(const struct sim_options *opt, struct sim_stats *stats, char *why, size_t why_cap);
void sim_violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_tracef(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_notef(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_schedule(struct sim *s, uint64_t at_us, struct sim_event *ev);
void sim_node_request(struct sim *s, uint8_t slot, struct sim_cmd *cmd);
void sim_send_reply(struct sim *s, uint8_t slot, const struct sim_reply *reply);
uint32_t sim_value_store(struct sim *s, const uint8_t *bytes, uint32_t len);

/* sim_check.c */
void sim_check_leader(struct sim *s, struct sim_node *n);
void sim_check_applied(struct sim *s, struct sim_node *n, const struct raft_entry *e);
void sim_check_ack(struct sim *s, uint64_t index, uint16_t client, uint32_t req);
void sim_check_logs(struct sim *s);
void sim_check_final(struct sim *s);
void sim_check_history(struct sim *s);
void sim_check_free(struct sim *s);

/* sim_client.c */
void sim_clients_init(struct sim *s);
void sim_client_wake(struct sim *s, uint16_t client, uint32_t req);
void sim_client_reply(struct sim *s, const struct sim_reply *reply);

/* sim_nemesis.c */
void sim_nemesis_step(struct sim *s);
void sim_nemesis_heal(struct sim *s);
void sim_nemesis_reap(struct sim *s);
/* A replica just became leader: springs an armed ambush. */
void sim_nemesis_new_leader(struct sim *s, uint8_t slot);
/* Crashes a replica now and schedules its restart. */
void sim_nemesis_crash(struct sim *s, uint8_t slot);
void sim_node_pump(struct sim *s, uint8_t slot);
void sim_node_start(struct sim *s, uint8_t slot);
void sim_node_crash(struct sim *s, uint8_t slot);
int sim_leader_slot(const struct sim *s);

#endif
