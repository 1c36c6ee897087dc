/* wait.c: WAIT numreplicas timeout (docs/node.md, "WAIT").
 *
 * A client's latest write on this node is its shard and log index
 * (last_write_shard, last_write_index: set when the entry is proposed).
 * While this node leads that shard, the followers holding the write are
 * the voters other than itself whose match index reached the index
 * (raft_match_index): the leader learns them from their append replies.
 * WAIT answers that count once it reaches numreplicas, or when the timeout
 * passes (0: never), or at once when the count can no longer be observed
 * here (this node lost the shard's leadership): the most it saw. Until then
 * the client runs nothing more, as a blocked client in Redis.
 *
 * Its earlier commands first: WAIT starts only when none of them is still
 * in flight on this node (wait_ready), so a pipelined SET then WAIT counts
 * the SET. When the connection's latest write was proxied to another
 * node's leader, this node does not know its index: the WAIT follows it on
 * the same upstream connection (FIFO), and the leader answers for the
 * write it proposed. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd.h"
#include "node/node_int.h"
#include "transport/proxy.h"

struct client_wait {
    struct client *c;
    struct client_wait *prev, *next; /* node.waits */
    struct slot *slot;
    int64_t want;
    uint64_t deadline_ms; /* mono ms; UINT64_MAX: none (timeout 0) */
    int64_t best;         /* the most followers seen holding the write */
};

/* The followers holding c's latest write here, or -1 when this node cannot
 * tell any more (it no longer leads that shard). 0 with no write. */
static int64_t wait__count(const struct client *c) {
    const struct node *n = c->node;
    uint32_t k = c->last_write_shard;
    if (k == 0) return 0;
    struct shard *s = k - 1 < n->map.n_shards ? n->shards[k - 1] : NULL;
    if (s == NULL || raft_role(s->raft) != RAFT_LEADER) return -1;
    assert(c->last_write_index != NULL);
    uint64_t index = c->last_write_index[k - 1];
    const struct raft_conf *conf = raft_conf(s->raft);
    int64_t count = 0;
    for (uint8_t i = 0; i < conf->n_voters; i++) {
        uint64_t match = 0, id = conf->voters[i];
#ifdef CANARY_WAIT_ANY_MATCH
        index = 0; /* planted: a follower counts whatever it holds */
#endif
        if (id != n->cfg.id && raft_match_index(s->raft, id, &match) && match >= index) count++;
    }
    assert(count < conf->n_voters || conf->n_voters == 0);
    return count;
}

bool wait_ready(const struct client *c) {
    /* every write before it answered, on every shard it went to */
    return c->local_pending == 0 && c->evals_pending == 0 && c->gather == NULL &&
           c->n_flights == 0;
}

/* Takes c's wait off the node's list and frees it. */
static void wait__end(struct client *c) {
    struct node *n = c->node;
    struct client_wait *w = c->wait;
    assert(w != NULL && w->c == c);
    assert(n->n_waits > 0);
    if (w->prev != NULL) w->prev->next = w->next;
    else n->waits = w->next;
    if (w->next != NULL) w->next->prev = w->prev;
    c->wait = NULL;
    n->n_waits--;
    free(w);
}

/* Ends c's wait with its reply (the count, or the error msg if not NULL);
 * its client may run again. */
static void wait__answer(struct client *c, int64_t count, const char *msg) {
    assert(c->wait != NULL);
    struct slot *slot = c->wait->slot;
    wait__end(c);
    if (msg != NULL) {
        slot_set_error(c, slot, msg);
        return;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), ":%lld\r\n", (long long)count);
    slot_set(c, slot, buf, (size_t)len);
}

/* WAIT's arguments as Redis 7.0 checks them; false with the error in out. */
static bool wait__parse(const struct resp_arg *argv, int64_t *want, int64_t *timeout,
                        struct resp_out *out) {
    if (!cmd_parse_i64(argv[1].data, argv[1].len, want)) {
        resp_write_errorf(out, "ERR value is not an integer or out of range");
        return false;
    }
    if (!cmd_parse_i64(argv[2].data, argv[2].len, timeout)) {
        resp_write_errorf(out, "ERR timeout is not an integer or out of range");
        return false;
    }
    if (*timeout < 0) {
        resp_write_errorf(out, "ERR timeout is negative");
        return false;
    }
    return true;
}

void wait_command(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    struct node *n = c->node;
    assert(argc == 3 && c->wait == NULL);
    struct resp_out out;
    resp_out_init(&out, c->proto, 256, NULL);
    int64_t want, timeout;
    if (!wait__parse(argv, &want, &timeout, &out)) {
        client_reply_now(c, resp_out_data(&out), resp_out_len(&out));
        resp_out_free(&out);
        return;
    }
    resp_out_free(&out);
    struct slot *slot = client_slot(c);
    if (slot == NULL) return; /* closed */
    if (c->last_write_via != 0) { /* its leader knows: behind the write, same connection */
        proxy_forward(c, c->last_write_via, slot, argc, argv);
        return;
    }
    int64_t count = wait__count(c);
    struct client_wait *w = calloc(1, sizeof(*w));
    if (count < 0 || count >= want || w == NULL) {
        free(w);
        char buf[32];
        int len = snprintf(buf, sizeof(buf), ":%lld\r\n", (long long)(count < 0 ? 0 : count));
        slot_set(c, slot, buf, (size_t)len);
        return;
    }
    uint64_t now = node_mono_ms(n);
    *w = (struct client_wait){.c = c, .next = n->waits, .slot = slot, .want = want, .best = count,
                              .deadline_ms = timeout == 0 ? UINT64_MAX
                                             : (uint64_t)timeout > UINT64_MAX - now
                                                 ? UINT64_MAX
                                                 : now + (uint64_t)timeout};
    if (w->next != NULL) w->next->prev = w;
    n->waits = w;
    c->wait = w;
    n->n_waits++;
}

void wait_check(struct node *n) {
    if (n->n_waits == 0) return;
    uint64_t now = node_mono_ms(n);
    struct client_wait *next;
    for (struct client_wait *w = n->waits; w != NULL; w = next) {
        next = w->next; /* an answer frees w */
        struct client *c = w->c;
        int64_t count = wait__count(c);
        if (count > w->best) w->best = count;
        if (count < 0 || w->best >= w->want || now >= w->deadline_ms) wait__answer(c, w->best, NULL);
    }
}

void wait_client_gone(struct client *c) {
    if (c->wait == NULL) return;
    wait__end(c); /* its slot goes with the client */
}

int wait_unblock(struct node *n, uint64_t id, bool error) {
    struct client *c = n->clients;
    while (c != NULL && c->id != id) c = c->next;
    if (c == NULL || c->wait == NULL) return 0;
    int64_t count = wait__count(c);
    if (count < c->wait->best) count = c->wait->best;
    wait__answer(c, count, error ? "UNBLOCKED client unblocked via CLIENT UNBLOCK" : NULL);
    return 1;
}
