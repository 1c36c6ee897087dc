/* sim_client.c: simulated clients. Each runs one operation at a time
 * (get, put, compare-and-set or append of a unique value on a few shared
 * keys), follows leader hints, gives up after a timeout (the operation is
 * then indeterminate), and records every operation for the checkers. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

#define SIM_CLIENT_TIMEOUT_US (40 * SIM_TICK_US)
#define SIM_CLIENT_QUIET_US (200 * SIM_TICK_US) /* no new ops this long before the end */
#define SIM_CLIENT_ATTEMPTS_MAX 30

static void sim_client__wake_at(struct sim *s, struct sim_client *c, uint64_t at, uint32_t req) {
    struct sim_event ev = {.type = SIM_EV_CLIENT, .client = c->id, .req = req};
    sim_schedule(s, at, &ev);
}

static uint8_t sim_client__random_slot(struct sim *s) {
    return (uint8_t)rand_below(&s->rng, s->n_slots);
}

static void sim_client__send(struct sim *s, struct sim_client *c, uint64_t backoff_us) {
    struct sim_event ev = {.type = SIM_EV_REQUEST, .node = c->target};
    ev.cmd = malloc(sizeof(*ev.cmd));
    if (ev.cmd == NULL) abort();
    *ev.cmd = c->cmd;
    sim_schedule(s, s->now_us + backoff_us + 200 + rand_below(&s->rng, 800), &ev);
}

static struct sim_op *sim_client__new_op(struct sim *s) {
    if (s->n_ops == s->cap_ops) {
        s->cap_ops = s->cap_ops == 0 ? 1024 : s->cap_ops * 2;
        s->ops = realloc(s->ops, s->cap_ops * sizeof(*s->ops));
        if (s->ops == NULL) abort();
    }
    struct sim_op *op = &s->ops[s->n_ops++];
    memset(op, 0, sizeof(*op));
    return op;
}

static void sim_client__build(struct sim *s, struct sim_client *c, struct sim_op *op) {
    struct sim_cmd *cmd = &c->cmd;
    memset(cmd, 0, sizeof(*cmd));
    uint64_t r = rand_below(&s->rng, 100);
    cmd->kind = r < 35 ? SIM_OP_GET : r < 60 ? SIM_OP_PUT : r < 85 ? SIM_OP_APPEND : SIM_OP_CAS;
    cmd->key = (uint8_t)rand_below(&s->rng, s->n_keys);
    cmd->client = c->id;
    cmd->req = c->req;
    int len = snprintf((char *)cmd->arg, sizeof(cmd->arg), "%u.%u%s", c->id, c->req,
                       cmd->kind == SIM_OP_APPEND ? "," : "");
    assert(len > 0 && (size_t)len < sizeof(cmd->arg));
    cmd->arg_len = cmd->kind == SIM_OP_GET ? 0 : (uint32_t)len;
    if (cmd->kind == SIM_OP_CAS) {
        cmd->expect_present = c->seen_present[cmd->key];
        cmd->expect_len = c->seen_len[cmd->key];
        if (cmd->expect_len > 0) {
            memcpy(cmd->expect, s->values + c->seen_off[cmd->key], cmd->expect_len);
        }
    }
    op->kind = cmd->kind;
    op->key = cmd->key;
    op->client = c->id;
    op->req = c->req;
    op->invoke_us = s->now_us;
    op->arg_off = sim_value_store(s, cmd->arg, cmd->arg_len);
    op->arg_len = cmd->arg_len;
    op->expect_present = cmd->expect_present;
    op->expect_off = sim_value_store(s, cmd->expect, cmd->expect_len);
    op->expect_len = cmd->expect_len;
}

static void sim_client__start(struct sim *s, struct sim_client *c) {
    if (s->now_us + SIM_CLIENT_QUIET_US > s->end_us || s->violated) return;
    c->req++;
    c->op_index = s->n_ops;
    struct sim_op *op = sim_client__new_op(s);
    sim_client__build(s, c, op);
    c->busy = true;
    c->attempts = 0;
    c->deadline_us = s->now_us + SIM_CLIENT_TIMEOUT_US;
    sim_tracef(s, "c%u invoke #%u kind %u key %u", c->id, c->req, c->cmd.kind, c->cmd.key);
    sim_client__send(s, c, 0);
    sim_client__wake_at(s, c, c->deadline_us, c->req);
}

void sim_clients_init(struct sim *s) {
    s->n_clients = 2 + (uint32_t)rand_below(&s->rng, SIM_CLIENTS_MAX - 1);
    s->n_keys = 1 + (uint32_t)rand_below(&s->rng, 4);
    for (uint32_t i = 0; i < s->n_clients; i++) {
        struct sim_client *c = &s->clients[i];
        memset(c, 0, sizeof(*c));
        c->id = (uint16_t)(i + 1);
        c->target = sim_client__random_slot(s);
        sim_client__wake_at(s, c, 5 * SIM_TICK_US + rand_below(&s->rng, SIM_TICK_US), 0);
    }
}

static void sim_client__done(struct sim *s, struct sim_client *c) {
    c->busy = false;
    sim_client__wake_at(s, c, s->now_us + rand_below(&s->rng, SIM_TICK_US / 2), 0);
}

void sim_client_wake(struct sim *s, uint16_t client, uint32_t req) {
    assert(client >= 1 && client <= s->n_clients);
    struct sim_client *c = &s->clients[client - 1];
    if (req == 0) {
        if (!c->busy) sim_client__start(s, c);
        return;
    }
    if (!c->busy || req != c->req || s->now_us < c->deadline_us) return;
    struct sim_op *op = &s->ops[c->op_index];
    op->completed = false; /* timed out: it may or may not have happened */
    s->stats.ops_unknown++;
    sim_tracef(s, "c%u timeout #%u", c->id, c->req);
    c->target = sim_client__random_slot(s);
    sim_client__done(s, c);
}

static void sim_client__record(struct sim *s, struct sim_client *c, struct sim_op *op,
                               const struct sim_reply *reply) {
    op->completed = true;
    op->complete_us = s->now_us;
    uint8_t key = op->key;
    if (op->kind == SIM_OP_GET) {
        op->found = reply->res.found;
        op->out_len = reply->res.len;
        op->out_off = sim_value_store(s, reply->res.value, reply->res.len);
        c->seen_present[key] = op->found;
        c->seen_len[key] = op->out_len;
        c->seen_off[key] = op->out_off;
        return;
    }
    s->last_write_ok_us = s->now_us;
    op->cas_ok = reply->res.ok;
    if (op->kind == SIM_OP_APPEND && !reply->res.ok) op->failed = true; /* value full: no-op */
    if (op->kind == SIM_OP_PUT || (op->kind == SIM_OP_CAS && op->cas_ok)) {
        c->seen_present[key] = true;
        c->seen_len[key] = op->arg_len;
        c->seen_off[key] = op->arg_off;
    }
}

void sim_client_reply(struct sim *s, const struct sim_reply *reply) {
    assert(reply->client >= 1 && reply->client <= s->n_clients);
    struct sim_client *c = &s->clients[reply->client - 1];
    if (!c->busy || reply->req != c->req) return;
    struct sim_op *op = &s->ops[c->op_index];
    if (reply->status == SIM_ST_OK) {
        sim_client__record(s, c, op, reply);
        s->stats.ops_ok++;
        sim_tracef(s, "c%u ok #%u", c->id, c->req);
        sim_client__done(s, c);
        return;
    }
    /* definitely not executed: try another node */
    if (++c->attempts > SIM_CLIENT_ATTEMPTS_MAX || s->now_us >= c->deadline_us) {
        op->failed = true;
        s->stats.ops_failed++;
        sim_client__done(s, c);
        return;
    }
    int hinted = -1;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].exists && s->nodes[i].id == reply->leader_hint) hinted = (int)i;
    }
    c->target = hinted >= 0 ? (uint8_t)hinted : sim_client__random_slot(s);
    sim_client__send(s, c, hinted >= 0 ? 0 : SIM_TICK_US);
}
