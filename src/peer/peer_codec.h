/* peer_codec.h: the node-to-node wire format (pure: bytes in, bytes out).
 * One TCP connection per node pair carries the Raft messages of every group
 * on the two nodes, as a stream of frames:
 *
 *    0        4         5        6          10
 *    | length | version | type   | crc32c   | payload (length bytes) ... |
 *      u32 LE   u8        u8       u32 LE
 *
 * `crc32c` covers version, type and payload, so a flipped header bit is
 * caught too. `length` is checked against PEER_FRAME_BYTES_MAX before
 * anything is buffered for it. Frame types:
 *
 *   PEER_FRAME_HELLO  first frame each way: u64 cluster_id | u64 node_id
 *   PEER_FRAME_BEAT   the coalesced node heartbeat: no payload. One per
 *                     heartbeat interval on a link that carried nothing
 *                     else, whatever the number of groups (docs/node.md,
 *                     "Quiet groups")
 *   PEER_FRAME_PUBLISH a pub/sub message for the receiver's subscribers:
 *       u8 flags (bit 0: a shard channel) | u32 channel_len | channel |
 *       u32 message_len | message
 *   PEER_FRAME_RAFT   one raft_msg of one group:
 *       u64 group | u8 msg type | u8 flags (bit 0: reject) | u64 from | u64 to |
 *       u64 term | u64 log_term | u64 index | u64 commit | u64 context |
 *       u64 reject_hint | u32 n_entries |
 *       n_entries * (u64 term | u64 index | u8 type | u32 len | len bytes) |
 *       [RAFT_MSG_SNAPSHOT only: u64 snap index | u64 snap term |
 *        u32 conf_len | conf (raft_conf_encode) | u64 snapshot_size |
 *        u64 chunk_offset | u32 chunk_len | chunk bytes]
 *       [RAFT_MSG_SNAPSHOT_RESP only: u64 snap index | u64 snap term |
 *        u64 snapshot_size | u64 chunk_offset (the next offset wanted)]
 *   PEER_FRAME_MAP_PULL  a node outside group 0 asks a replica of group 0
 *                     for the cluster map (docs/cluster.md, "Pull by
 *                     version"): u64 epoch (of the map it routes by; 0
 *                     before it installed one)
 *   PEER_FRAME_MAP    the replica's answer: u64 epoch (of the map it
 *                     applied; 0: none yet) | u64 meta_leader (0: none
 *                     known) | u32 map_len | map (map_encode's bytes, its
 *                     applied map, when that is newer than the epoch
 *                     asked; map_len 0: "same", nothing newer).
 *                     map_len <= PEER_MAP_BYTES_MAX and is exactly the
 *                     rest of the frame
 *   PEER_FRAME_STATE  the sender's node state, sent when it changes and
 *                     after each HELLO while not 0: u8 flags (bit 0: its memory is past
 *                     maxmemory, so the leaders of the shards it holds a
 *                     replica of refuse writes that add data; docs/node.md,
 *                     "maxmemory"). Other bits must be 0
 *
 * All integers little-endian. A decoder that meets a newer version refuses
 * the frame (a rolling upgrade adds a version it can read first). */
#ifndef SHOAL_PEER_CODEC_H
#define SHOAL_PEER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/map.h"
#include "raft/raft.h"

#define PEER_VERSION 1
#define PEER_FRAME_HEADER_BYTES 10
/* The largest payload: one entry may exceed max_msg_bytes (it is sent
 * alone), so this must exceed the largest proposal plus headers. */
#define PEER_FRAME_BYTES_MAX (64u << 20)
/* An entry takes at least this many bytes on the wire: bounds n_entries. */
#define PEER_ENTRY_BYTES_MIN 21u

_Static_assert(PEER_FRAME_BYTES_MAX > (4u << 20) + 4096, "a 4 MiB entry fits in a frame");
/* The map in a PEER_FRAME_MAP: the largest map_encode writes. */
#define PEER_MAP_BYTES_MAX MAP_ENCODED_BYTES_MAX
#define PEER_MAP_HEADER_BYTES 20u /* epoch, meta_leader, map_len */
_Static_assert(PEER_MAP_BYTES_MAX + PEER_MAP_HEADER_BYTES <= PEER_FRAME_BYTES_MAX,
               "the largest map fits in a frame");

enum peer_frame_type {
    PEER_FRAME_HELLO = 1,
    PEER_FRAME_RAFT = 2,
    PEER_FRAME_BEAT = 3,
    PEER_FRAME_PUBLISH = 4,
    PEER_FRAME_MAP_PULL = 5,
    PEER_FRAME_MAP = 6,
    PEER_FRAME_STATE = 7,
};

#define PEER_STATE_OOM 1u /* PEER_FRAME_STATE: past maxmemory */
#define PEER_STATE_FLAGS PEER_STATE_OOM

/* A MAP_PULL (pull: only epoch) or a MAP frame's fields. */
struct peer_map_msg {
    bool pull;
    uint64_t epoch;
    uint64_t meta_leader;
    const uint8_t *map; /* decoded: into the input buffer; NULL when map_len is 0 */
    uint32_t map_len;
};

enum peer_parse_result {
    PEER_OK = 0,        /* a whole frame was decoded */
    PEER_NEED_MORE = 1, /* not enough bytes yet; nothing consumed */
    PEER_EPROTO = -1,   /* corrupt or hostile input: drop the connection */
};

/* A growable output buffer. */
struct peer_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};
void peer_buf_free(struct peer_buf *b);

/* A decoded frame. For RAFT frames `msg` points into the input buffer (data
 * and chunk) and into `entries`, which the decoder allocated: call
 * peer_frame_release() when done with the message. */
struct peer_frame {
    uint8_t type;
    uint64_t cluster_id; /* HELLO */
    uint64_t node_id;    /* HELLO */
    uint64_t group;      /* RAFT */
    bool sharded;        /* PUBLISH: a shard channel */
    const uint8_t *channel, *message; /* PUBLISH: into the input buffer */
    uint32_t channel_len, message_len;
    struct raft_msg msg; /* RAFT */
    struct peer_map_msg map; /* MAP_PULL, MAP */
    uint8_t state;           /* STATE: PEER_STATE_* flags */
};
void peer_frame_release(struct peer_frame *f);

/* Appends one frame to `out`. Return 0, or RAFT_ENOMEM / RAFT_ETOOBIG (the
 * message would exceed PEER_FRAME_BYTES_MAX); `out` is unchanged on error. */
int peer_encode_hello(struct peer_buf *out, uint64_t cluster_id, uint64_t node_id)
    __attribute__((warn_unused_result));
int peer_encode_raft(struct peer_buf *out, uint64_t group, const struct raft_msg *msg)
    __attribute__((warn_unused_result));
int peer_encode_beat(struct peer_buf *out) __attribute__((warn_unused_result));
int peer_encode_state(struct peer_buf *out, uint8_t flags) __attribute__((warn_unused_result));
/* A MAP_PULL (m->pull) or a MAP frame; RAFT_ETOOBIG if m->map_len exceeds
 * PEER_MAP_BYTES_MAX. */
int peer_encode_map(struct peer_buf *out, const struct peer_map_msg *m)
    __attribute__((warn_unused_result));
int peer_encode_publish(struct peer_buf *out, bool sharded, const void *channel,
                        uint32_t channel_len, const void *message, uint32_t message_len)
    __attribute__((warn_unused_result));

/* Decodes the frame at the start of buf[0..len). On PEER_OK sets *consumed
 * (the frame's total size) and fills *f; on PEER_EPROTO writes a reason into
 * why (NUL-terminated). Never allocates more than the frame's length
 * justifies, and nothing before the whole frame has arrived. */
enum peer_parse_result peer_decode(const uint8_t *buf, size_t len, size_t *consumed,
                                   struct peer_frame *f, char *why, size_t why_cap);

#endif
