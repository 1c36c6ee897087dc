/* raft.h: the consensus core. One `struct raft` is one replica of one Raft
 * group. It is pure: no I/O, no clock, no globals, no threads; randomness
 * comes from a generator seeded by the caller. It has etcd/raft's shape:
 *
 *   raft_tick()        advance logical time by one tick
 *   raft_step(msg)     feed a message received from a peer
 *   raft_propose()     append a command (leader only)
 *   raft_read_index()  ask for a linearizable read point (leader only)
 *   raft_ready()       what to persist, send and apply now
 *   raft_advance()     the caller has done all of the last ready
 *
 * The contract of a ready (see docs/raft.md):
 *   1. persist `hard_state` (if changed), `snapshot` (if any), then append
 *      `entries` (which may overwrite a suffix of the stored log), and make
 *      all of it durable (fsync);
 *   2. then send `messages`;
 *   3. apply `committed` entries in order (after the snapshot, if any), and
 *      serve `reads` whose index the state machine has reached;
 *   4. call raft_advance().
 * Between raft_ready() and raft_advance() the caller must not call any other
 * function that changes the replica (it may queue what arrives meanwhile).
 *
 * Memory: everything a ready points to is owned by the raft object and stays
 * valid until raft_advance(). Messages passed to raft_step() are borrowed for
 * the duration of the call.
 *
 * Membership changes use joint consensus: raft_propose_conf() with the target
 * voters and learners enters the joint configuration; once that entry is
 * applied the leader proposes the entry that leaves it. A configuration takes
 * effect when its entry is applied (on raft_advance()).
 *
 * Traffic: over a link that loses nothing a leader sends each entry to a
 * follower once, and nothing the follower is known to hold: a new leader
 * first sends followers that hold its whole log its no-op alone, a caught-up
 * follower's heartbeat answer draws no append, and a duplicated or late
 * answer (an acknowledgement or refusal of what the follower is known to
 * hold, a refusal of a probe already answered) draws nothing. A lost append
 * costs one refusal; the leader then probes from the follower's last
 * acknowledged entry. A request of an older term (an append, a heartbeat,
 * a pre-vote) is answered with the receiver's term; an older answer is
 * dropped silently.
 */
#ifndef SHOAL_RAFT_H
#define SHOAL_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_NODES_MAX 16   /* voters + outgoing voters + learners of one group */
#define RAFT_READS_MAX 1024 /* pending read-index requests per group */
/* A sanity bound on any snapshot's declared size (1 TiB): snapshots kept
 * by the caller (config snapshot_read / snapshot_recv) have no cap tied to
 * memory. A snapshot received into memory (no snapshot_recv) is held whole
 * and may not exceed RAFT_SNAPSHOT_MEMORY_BYTES_MAX. */
#define RAFT_SNAPSHOT_BYTES_MAX (1ull << 40)
#define RAFT_SNAPSHOT_MEMORY_BYTES_MAX (256u << 20)
#define RAFT_SNAPSHOT_INFLIGHT_MAX 64 /* chunks unacknowledged per follower */

/* Errors: named negative codes (0 is success). raft_strerror() names them. */
enum raft_err {
    RAFT_OK = 0,
    RAFT_ENOTLEADER = -1,   /* this replica is not the leader: see raft_leader() */
    RAFT_EBUSY = -2,        /* a conf change or leader transfer is in progress */
    RAFT_EINVAL = -3,       /* bad argument */
    RAFT_ENOMEM = -4,       /* allocation failed */
    RAFT_ETOOBIG = -5,      /* over a configured limit */
    RAFT_ECOMPACTED = -6,   /* index is behind the snapshot */
};
const char *raft_strerror(int err);

enum raft_role { RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application command; empty data = the leader's no-op */
    RAFT_ENTRY_CONF = 1,   /* struct raft_conf, encoded by raft_conf_encode() */
};

struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    uint32_t len;
    uint8_t *data; /* len bytes, owned by whoever owns the entry */
};

/* A configuration. While `n_outgoing > 0` the group is in joint consensus and
 * every decision needs a majority of `voters` and a majority of `outgoing`. */
struct raft_conf {
    uint8_t n_voters;
    uint8_t n_outgoing;
    uint8_t n_learners;
    uint64_t voters[RAFT_NODES_MAX];
    uint64_t outgoing[RAFT_NODES_MAX];
    uint64_t learners[RAFT_NODES_MAX];
};
#define RAFT_CONF_BYTES (3 + 3 * 8 * RAFT_NODES_MAX)

struct raft_snapshot_meta {
    uint64_t index; /* last index covered by the snapshot */
    uint64_t term;  /* its term */
    struct raft_conf conf;
};

/* The state that must be durable before any message that depends on it is
 * sent: the current term, the vote in it, and the commit index (a hint: it
 * is safe to lose, but saves re-deciding after a restart). */
struct raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_PRE_VOTE,
    RAFT_MSG_PRE_VOTE_RESP,
    RAFT_MSG_HEARTBEAT,
    RAFT_MSG_HEARTBEAT_RESP,
    RAFT_MSG_SNAPSHOT, /* one chunk of a snapshot */
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_TIMEOUT_NOW,
    RAFT_MSG_QUIESCE, /* leader: the group goes quiet at (term, index, log_term, commit) */
    RAFT_MSG_TYPE_COUNT
};

struct raft_msg {
    uint8_t type;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term; /* APPEND: term of `index`; VOTE: last log term; resp: hint term */
    uint64_t index;    /* APPEND: index before entries; VOTE: last index; resp: see code */
    uint64_t commit;
    uint64_t context;  /* heartbeat read round; campaign-by-transfer flag on votes */
    bool reject;
    uint64_t reject_hint;
    uint32_t n_entries;
    struct raft_entry *entries;
    /* RAFT_MSG_SNAPSHOT */
    struct raft_snapshot_meta snapshot;
    uint64_t snapshot_size;   /* total bytes of snapshot data */
    uint64_t chunk_offset;    /* where this chunk starts; resp: next offset wanted */
    uint32_t chunk_len;
    uint8_t *chunk;
};

struct raft_read_state {
    uint64_t context; /* the caller's token from raft_read_index() */
    uint64_t index;   /* serve the read once applied >= index */
};

struct raft_ready {
    bool has_hard_state;
    struct raft_hard_state hard_state;
    /* a snapshot to persist and then restore into the state machine */
    bool has_snapshot;
    struct raft_snapshot_meta snapshot;
    const uint8_t *snapshot_data; /* NULL: the caller holds the bytes (snapshot_recv) */
    uint64_t snapshot_size;
    /* entries to append to stable storage */
    uint32_t n_entries;
    const struct raft_entry *entries;
    /* messages to send after the above is durable */
    uint32_t n_messages;
    const struct raft_msg *messages;
    /* entries to apply, in order */
    uint32_t n_committed;
    const struct raft_entry *committed;
    /* read points that are now confirmed */
    uint32_t n_reads;
    const struct raft_read_state *reads;
    /* soft state: informational */
    uint64_t leader;
    uint8_t role;
};

typedef void (*raft_snapshot_read_fn)(void *ctx, uint64_t offset, uint8_t *buf, uint32_t len);
/* Stores `len` bytes at `offset` of the snapshot `meta` (of `size` bytes in
 * all) that a follower is receiving. Called in order: offset 0 starts a
 * snapshot (and abandons any other being received), each later call
 * continues where the last ended, and the call that reaches `size` is the
 * last. Returns 0, or non-zero if the bytes could not be stored (then the
 * chunk is refused and the leader sends it again later). */
typedef int (*raft_snapshot_recv_fn)(void *ctx, const struct raft_snapshot_meta *meta,
                                     uint64_t size, uint64_t offset, const uint8_t *buf,
                                     uint32_t len);

struct raft_config {
    uint64_t id;                /* this replica's id, not 0 */
    uint32_t election_ticks;    /* election timeout: randomized in [e, 2e) */
    uint32_t heartbeat_ticks;   /* leader heartbeat interval, < election_ticks */
    uint64_t seed;              /* seeds this replica's generator */
    bool pre_vote;              /* run a pre-vote round before bumping the term */
    bool check_quorum;          /* leader steps down without a quorum for a timeout */
    bool lease_read;            /* see raft_read_index(): needs check_quorum */
    uint32_t lease_drift_ticks; /* assumed max clock drift per election timeout */
    uint32_t max_inflight_msgs; /* unacknowledged appends per follower */
    uint32_t max_msg_bytes;     /* entry bytes per append message */
    uint32_t max_chunk_bytes;   /* bytes per snapshot chunk */
    uint32_t max_snapshot_inflight; /* chunks sent and unacknowledged per follower */
    uint32_t max_entry_bytes;   /* largest proposal accepted */
    /* Where the bytes of a snapshot kept by the caller come from (see
     * raft_compact_external()): copies len bytes at offset into buf. It
     * must succeed or not return (the caller stops on a read error). NULL:
     * every snapshot is kept in memory. */
    raft_snapshot_read_fn snapshot_read;
    /* Where a follower puts the chunks of a snapshot it receives (the
     * caller's file): the whole snapshot is never held in memory, and the
     * ready that installs it has snapshot_data NULL (the caller holds the
     * bytes). Needs snapshot_read. NULL: received into memory, at most
     * RAFT_SNAPSHOT_MEMORY_BYTES_MAX. */
    raft_snapshot_recv_fn snapshot_recv;
    void *snapshot_ctx; /* for both */
};

/* Sets defaults for every field except id and seed. */
void raft_config_default(struct raft_config *config);

struct raft; /* opaque */

/* Creates a replica. `snapshot` (may be NULL) and the persisted `hard` state
 * and `entries` (after the snapshot, may be 0) are what the caller recovered
 * from stable storage; a brand-new replica passes its bootstrap
 * configuration in `initial_conf` with no snapshot and no entries (ignored
 * otherwise). The entries and snapshot data are copied; NULL snapshot data
 * with a non-zero size means the caller keeps the bytes (config
 * snapshot_read, as after raft_compact_external()). Returns NULL on
 * invalid input or allocation failure. */
struct raft *raft_create(const struct raft_config *config, const struct raft_hard_state *hard,
                         const struct raft_snapshot_meta *snapshot, const uint8_t *snapshot_data,
                         uint64_t snapshot_size, const struct raft_entry *entries,
                         uint32_t n_entries, const struct raft_conf *initial_conf);
void raft_destroy(struct raft *r);

void raft_tick(struct raft *r);
/* Returns RAFT_OK, or RAFT_EINVAL for a message not meant for this replica. */
int raft_step(struct raft *r, const struct raft_msg *msg);
/* Appends a command to the leader's log; on success *index and *term say
 * where it went (it is committed when applied with that term). */
int raft_propose(struct raft *r, const uint8_t *data, uint32_t len, uint64_t *index,
                 uint64_t *term) __attribute__((warn_unused_result));
/* Proposes a new configuration: voters and learners of `target` (its
 * outgoing set is ignored). Learners may be added or removed, and learners
 * may be promoted to voters; a voter may not be demoted to a learner. */
int raft_propose_conf(struct raft *r, const struct raft_conf *target)
    __attribute__((warn_unused_result));
/* Requests a read point. The confirmed read comes back in a later ready as
 * {context, index}. Without lease_read the leader first confirms with a
 * quorum (one heartbeat round for all reads requested since the last ready);
 * with lease_read it answers from its lease (assumes bounded clock drift). */
int raft_read_index(struct raft *r, uint64_t context) __attribute__((warn_unused_result));
/* Starts handing leadership to `target`, which must be a voter. */
int raft_transfer_leader(struct raft *r, uint64_t target) __attribute__((warn_unused_result));
/* Starts an election now (for tests and for a replica told to lead). */
void raft_campaign(struct raft *r);

/* Quiescence (docs/node.md, "Quiet groups"): an idle group stops its
 * timers. Safety never depends on it; only ticks and heartbeats stop.
 *
 * raft_quiesce(): a leader with nothing pending (no reads, no transfer,
 * no snapshot to send, every entry durable, committed and applied, every
 * follower heard from in this election timeout holding the whole log, and
 * those a quorum with the leader, no joint configuration, no lease reads)
 * sends RAFT_MSG_QUIESCE to each member and goes quiet; returns true if it
 * did. False (nothing changed) otherwise, or on a follower.
 * A follower goes quiet when it steps a QUIESCE of its leader whose
 * (index, log_term) is its own last entry; otherwise it answers, which
 * wakes the leader.
 * While quiet, raft_tick() is a no-op: no heartbeat, no election timer,
 * no check-quorum. Any call that changes the replica wakes it first
 * (raft_step() of any message but QUIESCE, and but a heartbeat answer of
 * the leader's term from a follower that holds its whole log, which a quiet
 * leader drops: it arrives late when a node's turn is long, and woke the
 * group each time; raft_propose(),
 * raft_propose_conf(), raft_read_index(), raft_transfer_leader(),
 * raft_campaign()). A woken leader heartbeats at once and starts a
 * check-quorum window of two election timeouts in which a member counts
 * as active only once it answers: until a quorum has, raft_quiesce()
 * refuses, and at the window's end check-quorum steps the leader down if
 * no quorum did (2 * election_ticks ticks after the wake). A woken
 * follower restarts its election timer and tells its leader (which wakes
 * it too), unless the wake came from the leader's own message.
 * raft_wake() wakes explicitly: the caller's failure detector calls it
 * when the link to the leader is lost (or for any other reason); then the
 * follower's election timer runs as before. A no-op on an awake replica. */
bool raft_quiesce(struct raft *r) __attribute__((warn_unused_result));
void raft_wake(struct raft *r);
bool raft_is_quiet(const struct raft *r);

bool raft_has_ready(const struct raft *r);
void raft_ready(struct raft *r, struct raft_ready *out);
void raft_advance(struct raft *r);

/* Pipelining writes (etcd's asynchronous storage writes): while one flush
 * is in flight a leader or a follower may take the next ready, write its
 * records behind the first, send its messages, apply its committed
 * entries and advance at once with raft_advance_unsynced(); its entries
 * then count only once the caller reports them durable with
 * raft_persisted(): towards a commit for a leader, and in its
 * acknowledgements for a follower (a follower acknowledges an append only
 * as far as its log is durable, in the ready after raft_persisted() or a
 * synced raft_advance() said so). Allowed when raft_can_advance_unsynced()
 * says so, checked before raft_ready(): a leader or follower with no
 * snapshot to install whose term and vote are already durable (then no
 * message of the ready claims anything that is not on disk: a leader's
 * appends may leave before its own fsync, dissertation 10.2.1). A synced
 * raft_advance() makes every earlier ready durable too (storage writes in
 * order). */
bool raft_can_advance_unsynced(const struct raft *r);
void raft_advance_unsynced(struct raft *r);
/* The log up to index (an entry of term) is on stable storage. */
void raft_persisted(struct raft *r, uint64_t index, uint64_t term);
uint64_t raft_durable_index(const struct raft *r);

/* Compacts the log: the state machine has been saved as `data` at `index`
 * (applied, and after the current snapshot). `index` may be behind the
 * applied index (a snapshot written in the background while applying went
 * on), but RAFT_EBUSY if a configuration entry was applied since it. The
 * core keeps a copy to send to followers that are behind the log. */
int raft_compact(struct raft *r, uint64_t index, const uint8_t *data, uint64_t size)
    __attribute__((warn_unused_result));

/* As raft_compact(), but the snapshot's `size` bytes stay with the caller
 * (a file it keeps open), read through config.snapshot_read when a
 * follower needs them: no copy of the keyspace is kept in memory.
 * RAFT_EINVAL without a snapshot_read. */
int raft_compact_external(struct raft *r, uint64_t index, uint64_t size)
    __attribute__((warn_unused_result));
/* The caller now keeps the bytes of the current snapshot (it persisted the
 * one a ready handed out, or passed NULL data to raft_create()): the
 * in-memory copy is dropped and chunks come from config.snapshot_read. */
void raft_snapshot_external(struct raft *r);

/* Introspection. */
uint64_t raft_id(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
/* The leader is handing leadership over (proposals get RAFT_EBUSY). */
bool raft_transferring(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_first_index(const struct raft *r); /* first index still in the log */
/* Term of the entry at index, or 0 if unknown (compacted or beyond the log). */
uint64_t raft_term_at(const struct raft *r, uint64_t index);
/* Entry at index, or NULL if compacted or absent. Valid until the next call. */
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index);
const struct raft_conf *raft_conf(const struct raft *r);
bool raft_is_voter(const struct raft *r, uint64_t id);
/* Leader only: the highest index known replicated on `id`; false if unknown. */
bool raft_match_index(const struct raft *r, uint64_t id, uint64_t *match);
uint64_t raft_snapshot_index(const struct raft *r);
/* Leader only: is the current snapshot being sent to a follower that is
 * active (heard from within an election timeout)? A caller that compacts
 * now makes that transfer start over with the new snapshot, so a caller
 * with snapshots that take long to send waits for it (bounded by its own
 * rule) before it compacts. */
bool raft_snapshot_sending(const struct raft *r);

/* Configuration encoding for RAFT_ENTRY_CONF entries; returns bytes written,
 * or 0 if `cap` is too small. raft_conf_decode returns RAFT_EINVAL on bad
 * input. */
uint32_t raft_conf_encode(const struct raft_conf *conf, uint8_t *buf, uint32_t cap);
int raft_conf_decode(const uint8_t *buf, uint32_t len, struct raft_conf *conf);
bool raft_conf_has(const uint64_t *ids, uint8_t n, uint64_t id);
/* Is id a voter (incoming or outgoing) / any member (voter or learner)? */
bool raft_conf_is_voter(const struct raft_conf *conf, uint64_t id);
bool raft_conf_is_member(const struct raft_conf *conf, uint64_t id);

#endif
