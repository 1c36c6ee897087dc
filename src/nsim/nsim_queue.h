/* nsim_queue.h: the whole-node simulator's work queue and stream workload
 * (docs/nsim.md, "Queue and stream"). NSIM_QUEUE_WORKERS clients, besides
 * the register clients of nsim.c, each a producer and a consumer of:
 *   - a work queue {q}q: LPUSH of a unique item; BLMOVE {q}q {q}wI RIGHT
 *     LEFT 0.1 into the worker's own list, then LREM {q}wI 1 item;
 *   - a stream {s}s with one consumer group g: XADD of a unique value;
 *     XREADGROUP GROUP g cI COUNT 3 BLOCK 100 STREAMS {s}s > or XAUTOCLAIM
 *     of entries idle for NSIM_QUEUE_CLAIM_IDLE_MS, then XACK of what came.
 * The blocking commands wait on the node (src/node/block.c) as on a real
 * one. This module builds the commands, records their outcomes, and checks
 * the history against the keyspace at the end; nsim.c sends the commands,
 * delivers the replies and injects the faults. Internal to src/nsim/. */
#ifndef SHOAL_NSIM_QUEUE_H
#define SHOAL_NSIM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rand.h"

struct kv;

#define NSIM_QUEUE_WORKERS 2
#define NSIM_QUEUE_CLAIM_IDLE_MS 300
#define NSIM_QUEUE_REQUEST_BYTES_MAX 200

/* The keys a command goes to: the queue (its workers' lists share its slot)
 * or the stream. */
enum nsim_queue_on { NSIM_QUEUE_ON_QUEUE = 0, NSIM_QUEUE_ON_STREAM = 1 };

struct nsim_queue;

/* A new history (free it with nsim_queue_free). */
struct nsim_queue *nsim_queue_create(void);
void nsim_queue_free(struct nsim_queue *q);
/* The key of `on` ("{q}q" or "{s}s"). */
const char *nsim_queue_key(enum nsim_queue_on on);

/* Worker `worker`'s next command (it has none in flight): its RESP bytes in
 * buf (cap >= NSIM_QUEUE_REQUEST_BYTES_MAX), its length returned, *on the
 * key whose shard it goes to; `what` (at least 64 bytes) describes it. */
size_t nsim_queue_next(struct nsim_queue *q, uint32_t worker, struct rand *rng, uint64_t now_us,
                       char *buf, size_t cap, enum nsim_queue_on *on, char *what);
/* The reply to worker's command: 0, or -1 with why (the reply breaks a
 * property at once: an unexpected reply, an item handed out twice, ...). */
int nsim_queue_reply(struct nsim_queue *q, uint32_t worker, uint64_t now_us, const char *r,
                     size_t len, char *why, size_t why_cap);
/* Its error reply (not_applied: the node said it did not happen), or no
 * reply at all (not_applied false: the outcome is unknown). */
void nsim_queue_failed(struct nsim_queue *q, uint32_t worker, bool not_applied);
/* After the run, with every replica converged: the history against the
 * keyspaces holding the queue (kv_queue) and the stream (kv_stream); the
 * group's end is read by consumer "final" (which writes to kv_stream).
 * 0, or -1 with why. *ops counts the workers' acknowledged operations. */
int nsim_queue_check(struct nsim_queue *q, struct kv *kv_queue, struct kv *kv_stream,
                     int64_t now_ms, char *why, size_t why_cap, uint64_t *ops);

#endif
