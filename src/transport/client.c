/* client.c: RESP client connections. Every command gets a reply slot in
 * arrival order; replies are written only from the head of that queue, so
 * a connection's replies keep their order whatever mix of immediate
 * answers, local writes and reads (which wait for the log) and proxied
 * commands (which wait for the leader) it pipelines.
 *
 * Routing (src/router/route.c decides where a command goes): the leader
 * runs commands itself; any other node forwards them to the leader over
 * the connection's upstream to that node (proxy.c) and relays the replies.
 * A shard's commands are never in flight on two routes at once: when its
 * route changes (a new leader), the connection stops reading until the
 * old route drained, so a pipelined write can never be overtaken by a
 * later command on the same shard. Commands on other shards run beside
 * them (pipeline-order shard, the default) or wait for them too
 * (pipeline-order connection): docs/cluster.md, "Order". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "transport/proxy.h"

struct client__write {
    uv_write_t req;
    struct client *c;
    size_t len;
    char data[];
};

static void client__process(struct client *c);

/* ---- flights: a connection's commands in flight, by shard ---- */

static struct client_flight *client__flight(struct client *c, uint32_t shard) {
    for (uint32_t i = 0; i < c->n_flights; i++) {
        if (c->flights[i].shard == shard) return &c->flights[i];
    }
    return NULL;
}

static void client__flight_begin(struct client *c, struct slot *s, uint32_t shard,
                                 uint64_t target) {
    struct client_flight *f = client__flight(c, shard);
    if (f == NULL) {
        assert(c->n_flights < CLIENT_FLIGHTS_MAX); /* client__route_free */
        f = &c->flights[c->n_flights++];
        *f = (struct client_flight){.shard = shard, .target = target};
    }
#ifdef CANARY_PIPELINE_SHARD_ROUTE
    f->target = target;
#endif
    assert(f->target == target);
    f->n++;
    s->flight = shard + 1;
}

static void client__flight_end(struct client *c, struct slot *s) {
    struct client_flight *f = client__flight(c, s->flight - 1);
    assert(f != NULL && f->n > 0);
    s->flight = 0;
    if (--f->n == 0) *f = c->flights[--c->n_flights];
}

/* ---- slots ---- */

static struct slot *client__slot(struct client *c) {
    struct slot *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->watch = c->next_slot_watch;
    if (c->tail) c->tail->next = s;
    else c->head = s;
    c->tail = s;
    c->n_slots++;
    return s;
}

void client_reply(struct client *c, struct slot *s, const char *data, size_t len) {
    if (s->done) return;
    s->data = malloc(len ? len : 1);
    if (s->data != NULL) {
        if (len > 0) memcpy(s->data, data, len);
        s->len = len;
    } else {
        static const char oom[] = "-OOM out of memory for the reply\r\n";
        s->data = strdup(oom);
        s->len = s->data ? sizeof(oom) - 1 : 0;
    }
    s->done = true;
    if (s->flight != 0) client__flight_end(c, s);
    if (s->blocking) {
        s->blocking = false;
        c->blocking_pending--;
    }
    /* Written at the end of the turn with every other reply of the turn
     * (client_release_due): one write per client per turn, not per reply.
     * Writing each reply at once cost a write(2) and a context switch per
     * GET (perf: 25% of a leader's time under GET, pipeline 16). */
    if (!c->release_due) {
        c->release_due = true;
        c->release_next = c->node->release_head;
        c->node->release_head = c;
    }
}

void client_release_turn(struct node *n) {
    while (n->release_head != NULL) {
        struct client *c = n->release_head;
        n->release_head = c->release_next;
        c->release_due = false;
        c->release_next = NULL;
        client_release(c);
    }
}

/* ---- closing ---- */

static void client__closed_cb(uv_handle_t *h) {
    struct client *c = h->data;
    if (c->release_due) {
        struct client **link = &c->node->release_head;
        while (*link != c) link = &(*link)->release_next;
        *link = c->release_next;
    }
    if (c->backlogged) {
        struct client **link = &c->node->backlog;
        while (*link != c) link = &(*link)->backlog_next;
        *link = c->backlog_next;
    }
    resp_parser_free(&c->parser);
    while (c->head) {
        struct slot *s = c->head;
        c->head = s->next;
        free(s->data);
        free(s);
    }
    free(c->in);
    free(c->held_argv);
    free(c->last_write_index);
    gather_free(c->gather);
    multi_free(c);
    free(c);
}

static void client__close(struct client *c) {
    if (c->closing) return;
    c->closing = true;
    struct node *n = c->node;
    for (uint32_t i = 0; i < n->n_local; i++) shard_forget_client(n->local[i], c);
    if (n->meta != NULL) shard_forget_client(n->meta, c); /* a map change (meta_cmd.c) */
    block_client_gone(c);
    wait_client_gone(c);
    proxy_detach(c);
    pubsub_client_gone(c);
    monitor_client_gone(c);
    if (c->leader_wait_since != 0) n->leader_waiters--;
    c->leader_wait_since = 0;
    if (c->prev) c->prev->next = c->next;
    else n->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    n->n_clients--;
    uv_close((uv_handle_t *)&c->tcp, client__closed_cb);
}

/* ---- writing ---- */

static void client__write_cb(uv_write_t *req, int status) {
    struct client__write *w = (struct client__write *)req;
    struct client *c = w->c;
    c->out_bytes -= w->len;
    free(w);
    if (c->closing) return;
    if (status < 0) {
        client__close(c);
        return;
    }
    if (c->paused && c->out_bytes == 0) client__process(c);
}

/* Writes every finished slot at the head of the queue, in one write. */
void client_release(struct client *c) {
    if (c->closing) return;
    if (c->gather != NULL) (void)gather_step(c); /* a part answered: the next, or the reply */
    size_t total = 0;
    uint32_t count = 0;
    for (struct slot *s = c->head; s != NULL && s->done; s = s->next) {
        if (s->watch) multi_watch_reply(c, s);
        total += s->len;
        count++;
    }
    if (count == 0) {
        /* a reply behind the head may have ended its shard's flight: a
         * command held for that shard can start */
        if (c->paused) client__process(c);
        return;
    }
    struct client__write *w = malloc(sizeof(*w) + total);
    if (w == NULL) {
        client__close(c);
        return;
    }
    w->c = c;
    w->len = total;
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct slot *s = c->head;
        memcpy(w->data + at, s->data, s->len);
        at += s->len;
        c->head = s->next;
        if (c->head == NULL) c->tail = NULL;
        c->n_slots--;
        free(s->data);
        free(s);
    }
    int64_t wrote = node_write_now((uv_stream_t *)&c->tcp, w->data, total);
    if (wrote < 0) {
        free(w);
        client__close(c);
        return;
    }
    size_t sent = (size_t)wrote;
    if (sent < total) {
        memmove(w->data, w->data + sent, total - sent);
        w->len = total - sent;
        c->out_bytes += w->len;
        if (c->out_bytes > c->node->cfg.client_output_buffer_limit) {
            node_log(c->node, "client %llu: output buffer over the limit; closing",
                     (unsigned long long)c->id);
            free(w);
            client__close(c);
            return;
        }
        uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, client__write_cb) != 0) {
            c->out_bytes -= w->len;
            free(w);
            client__close(c);
            return;
        }
    } else {
        free(w);
    }
    if (c->close_after_reply && c->head == NULL) client__close(c);
    else if (c->paused) client__process(c);
}

/* Writes an immediate reply into a new slot. */
static void client__reply(struct client *c, const struct resp_out *out) {
    struct slot *s = client__slot(c);
    if (s == NULL) {
        client__close(c);
        return;
    }
    slot_set(c, s, resp_out_data(out), resp_out_len(out));
}

/* ---- routing (route.c decides; the connection keeps the order) ---- */

/* Whether a command on this route (to shard k for ROUTE_LOCAL and
 * ROUTE_PROXY) may start now: it never overtakes a command of its shard
 * in flight on another route, nor, with pipeline-order connection, any
 * command of another shard. */
static bool client__route_free(struct client *c, enum route route, uint64_t target,
                               uint32_t k) {
    if (c->gather != NULL) return false; /* its parts are in flight */
    /* a script's writes are proposed only after its run: what follows it
     * waits for its reply, so a pipelined read sees them */
    if (c->evals_pending > 0) return false;
#ifndef CANARY_BLOCKED_OVERTAKEN /* planted: a forwarded BLPOP does not hold the rest */
    if (c->blocking_pending > 0) return false; /* a blocked client runs nothing more */
#endif
    if (route != ROUTE_LOCAL && route != ROUTE_PROXY) {
        return c->n_flights == 0 && c->local_pending == 0 && !proxy_busy_except(c, 0);
    }
    const struct client_flight *f = client__flight(c, k);
#ifndef CANARY_PIPELINE_SHARD_ROUTE /* planted: a new leader's commands go at once */
    if (f != NULL && f->target != target) return false; /* its shard's leader changed */
#endif
    if (c->node->cfg.pipeline_order == NODE_ORDER_CONNECTION) {
        /* nothing else in flight: no other shard, and no other route */
        if (c->n_flights > (f != NULL ? 1u : 0u)) return false;
        if (route == ROUTE_LOCAL) return !proxy_busy_except(c, 0);
        return c->local_pending == 0 && !proxy_busy_except(c, target);
    }
    return f != NULL || c->n_flights < CLIENT_FLIGHTS_MAX;
}

/* A command with no leader to run it waits for one, up to leader-wait-ms
 * (a client sending the instant a cluster starts, or during an election,
 * sees latency rather than an error); true once the wait is over. */
bool client_leader_wait_over(struct client *c) {
    struct node *n = c->node;
    uint64_t now = node_mono_ms(n) + 1;
    if (c->leader_wait_since == 0) {
        c->leader_wait_since = now;
        n->leader_waiters++;
    }
    return now - c->leader_wait_since >= n->cfg.leader_wait_ms;
}

void client_leader_wait_end(struct client *c) {
    if (c->leader_wait_since == 0) return;
    c->leader_wait_since = 0;
    c->node->leader_waiters--;
}

static bool client__run_function(struct client *c, uint32_t argc, const struct resp_arg *argv,
                                 struct slot *into);

/* Before AUTH (requirepass set), only AUTH, HELLO (its AUTH option; the
 * command checks it) and QUIT run, as in Redis. */
static bool client__auth_free(uint32_t argc, const struct resp_arg *argv) {
    static const char *const free_cmds[] = {"auth", "hello", "quit"};
    if (argc == 0) return false;
    for (size_t i = 0; i < sizeof(free_cmds) / sizeof(free_cmds[0]); i++) {
        size_t len = strlen(free_cmds[i]);
        if (argv[0].len == len && strncasecmp(argv[0].data, free_cmds[i], len) == 0) return true;
    }
    return false;
}

/* Runs one command; false if the client must pause before it. With
 * `into`, the command is a part of a command over several shards: its
 * reply goes there, and it never waits (the gather keeps the order). */
static bool client__run(struct client *c, uint32_t full_argc, const struct resp_arg *full_argv,
                        struct slot *into) {
    struct node *n = c->node;
    uint32_t argc = full_argc;
    const struct resp_arg *argv = full_argv;
    int64_t forced = route_unwrap(&argc, &argv);
    const struct cmd_def *def = forced == -2 ? NULL : cmd_lookup(argv[0].data, argv[0].len);
    /* FUNCTION LOAD/DELETE/FLUSH/RESTORE: checked here (the code by this
     * node's Lua engine), then a SHOAL.FUNCTION write to every shard */
    if (def != NULL && strcmp(def->name, "function") == 0 && cmd_function_is_write(argc, argv)) {
        return client__run_function(c, argc, argv, into);
    }
    uint64_t target = 0;
    int32_t slot = -1;
    uint32_t shard_k = 0;
    struct shard *shard = NULL;
    bool arity_ok = def != NULL && cmd_arity_ok(def, argc);
    /* MEMORY STATS and friends: about the node, not a key (memory.c) */
    bool is_memory = arity_ok && forced < 0 && strcmp(def->name, "memory") == 0 &&
                     memory_is_node_sub(argc, argv);
    enum route route = arity_ok && !is_memory
                           ? route_command(c, def, argc, argv, forced, &target, &slot, &shard,
                                           &shard_k)
                           : ROUTE_NOW;
    bool is_node_cmd = def != NULL && ((def->flags & CMD_NODE) || is_memory);
    bool is_wait = into == NULL && is_node_cmd && arity_ok && strcmp(def->name, "wait") == 0;
    if (into == NULL) {
        /* Commands about the connection itself need no ordering with the
         * log; WAIT does: it counts the replicas of the writes before it. */
        if (!(is_node_cmd || def == NULL) && !client__route_free(c, route, target, shard_k)) {
            return false;
        }
        if (is_wait && !wait_ready(c)) return false;
        if (route == ROUTE_NO_LEADER && !client_leader_wait_over(c)) return false;
        if (route == ROUTE_GATHER && !route_gather_led(c, def, argc, argv) &&
            !client_leader_wait_over(c)) {
            return false;
        }
        client_leader_wait_end(c);
        n->stats.commands++;
        /* CLIENT LIST's cmd: a copy, not snprintf (1% of a node's time
         * under pipelined GETs, perf); its idle time is set per read */
        size_t cmd_len = full_argv[0].len < 20 ? full_argv[0].len : 20;
        assert(cmd_len < sizeof(c->last_cmd));
        memcpy(c->last_cmd, full_argv[0].data, cmd_len);
        c->last_cmd[cmd_len] = '\0';
    }
    if (is_wait) {
        wait_command(c, argc, argv);
        return true;
    }
    if (def != NULL && (def->flags & CMD_WRITE) &&
        (route == ROUTE_LOCAL || route == ROUTE_PROXY)) {
        c->last_write_via = route == ROUTE_PROXY ? target : 0; /* where WAIT must ask */
    }
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    if (forced == -2) {
        resp_write_errorf(&out, "ERR SHOAL.SHARD <group> <command> [arg ...]");
    } else if (def == NULL) {
        cmd_reply_unknown(&out, argc, argv);
    } else if (!cmd_arity_ok(def, argc)) {
        cmd_reply_arity(&out, def);
    } else if (is_node_cmd || route == ROUTE_NOW) {
        uint64_t t0 = slowlog_start(n, c);
        if (is_memory) {
            memory_command(n, argc, argv, &out);
        } else if (is_node_cmd) {
            client_node_command(c, def, argc, argv, &out);
        } else {
            struct cmd_env env = {.kv = shard->kv, .now_ms = (int64_t)node_now_ms(c->node),
                                  .rng = &shard->rng, .bulk_max = KV_VALUE_BYTES_LIMIT};
            cmd_exec(&env, def, argc, argv, &out);
        }
        slowlog_finish(n, c, argc, argv, t0);
    } else if (route_refuses(route)) {
        route_refusal(n, route, def, forced, target, slot, into ? 0u : n->cfg.leader_wait_ms,
                      &out);
    } else if (route == ROUTE_LOCAL && cmd_denies_oom(def, argc, argv) &&
               node_oom(n, shard->index)) {
        /* this node, or another replica's, is past its maxmemory: a
         * command that adds data is refused before it is proposed, as
         * Redis's denyoom; an EXEC as Redis aborts one */
        if (strncmp(def->name, "shoal.exec", 10) == 0) {
            resp_write_errorf(&out, "EXECABORT Transaction discarded because of: %s",
                              NODE_OOM_ERROR);
        } else {
            resp_write_errorf(&out, "%s", NODE_OOM_ERROR);
        }
    } else {
        struct slot *s = into != NULL ? into : client__slot(c);
        if (s == NULL) {
            resp_out_free(&out);
            client__close(c);
            return false;
        }
        if (into == NULL && (route == ROUTE_LOCAL || route == ROUTE_PROXY)) {
            client__flight_begin(c, s, shard_k, target);
            if ((def->flags & CMD_BLOCKING) && cmd_block_wanted(def, argc, argv)) {
                s->blocking = true;
                c->blocking_pending++;
            }
        }
        if (route == ROUTE_GATHER) {
            if (gather_start(c, def, argc, argv, s, route_redirects(c)) != 0) {
                slot_set_error(c, s, "OOM out of memory for a command over several shards");
            }
        } else if (route == ROUTE_PROXY) {
            n->stats.proxied++;
            /* the leader may not have this node's scripts: send the body */
            struct resp_arg *body = (def->flags & CMD_SCRIPT) && forced < 0
                                        ? eval_sha_to_body(n, argc, argv) : NULL;
            proxy_forward(c, target, s, body ? argc : full_argc, body ? body : full_argv);
            free(body);
        } else if (def->flags & CMD_SCRIPT) {
            eval_start(c, shard, s, def, argc, argv);
        } else if ((def->flags & CMD_BLOCKING) && into == NULL &&
                   cmd_block_wanted(def, argc, argv)) {
            block_start(c, shard, s, def, argc, argv);
        } else if (def->flags & CMD_WRITE) {
            shard_write(n, shard, c, s, argc, argv);
        } else {
            shard_read(n, shard, c, s, def, argc, argv);
        }
        resp_out_free(&out);
        return true;
    }
    if (into != NULL) slot_set(c, into, resp_out_data(&out), resp_out_len(&out));
    else if (resp_out_len(&out) > 0) client__reply(c, &out);
    resp_out_free(&out);
    return true;
}

static bool client__run_function(struct client *c, uint32_t argc, const struct resp_arg *argv,
                                 struct slot *into) {
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    struct eval_function f = {0};
    bool ran = true;
    /* LOAD and RESTORE add data to every shard (Redis's denyoom): refused
     * while this node or any peer is past its maxmemory */
    bool oom = cmd_function_adds(argc, argv) && (c->node->oom || c->node->n_peer_oom > 0);
    if (oom) resp_write_errorf(&out, "%s", NODE_OOM_ERROR); /* answered as the errors below */
    if (!oom && eval_function_prepare(c->node, argc, argv, &f, &out)) {
#ifdef CANARY_FUNCTION_LOCAL_ONLY
        /* deliberate bug: the libraries change on this node's replicas
         * only, not through the log (test_functions.py must catch it) */
        const struct cmd_def *def = cmd_lookup("shoal.function", 14);
        for (uint32_t k = 0; k < c->node->map.n_shards; k++) {
            struct shard *s = c->node->shards[k];
            if (s == NULL) continue;
            resp_out_consume(&out, resp_out_len(&out));
            struct cmd_env env = {.kv = s->kv, .now_ms = (int64_t)node_now_ms(c->node),
                                  .rng = &s->rng, .bulk_max = KV_VALUE_BYTES_LIMIT};
            cmd_exec(&env, def, f.argc, f.argv, &out);
        }
        if (into != NULL) slot_set(c, into, resp_out_data(&out), resp_out_len(&out));
        else client__reply(c, &out);
#else
        ran = client__run(c, f.argc, f.argv, into);
#endif
    } else if (into != NULL) {
        slot_set(c, into, resp_out_data(&out), resp_out_len(&out));
    } else if (!client__route_free(c, ROUTE_NOW, 0, 0)) {
        ran = false; /* its error waits for the replies before it */
    } else {
        client__reply(c, &out);
    }
    eval_function_free(&f);
    resp_out_free(&out);
    return ran;
}

static bool client__dispatch(struct client *c, const struct resp_cmd *cmd) {
    bool ran;
    /* A blocked client runs nothing more until its command is answered, as
     * in Redis (a later LPUSH of its own must not wake it). */
    if (c->block != NULL) return false;
    if (c->wait != NULL) return false; /* the same for WAIT */
#ifdef CANARY_AUTH_SKIPPED
    c->authed = true; /* canary: scripts/auth-canary.sh must catch it */
#endif
    if (!c->authed && !client__auth_free(cmd->argc, cmd->argv)) { /* nothing run */
        static const char noauth[] = "-NOAUTH Authentication required.\r\n";
        client_reply_now(c, noauth, sizeof(noauth) - 1);
        return !c->closing;
    }
    if (pubsub_intercept(c, cmd->argc, cmd->argv)) return true;
    if (multi_intercept(c, cmd->argc, cmd->argv, &ran)) return ran;
    if (meta_intercept(c, cmd->argc, cmd->argv, &ran)) return ran;
    return client__run(c, cmd->argc, cmd->argv, NULL);
}

bool client_run(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    return client__run(c, argc, argv, NULL);
}

struct slot *client_slot(struct client *c) {
    struct slot *s = client__slot(c);
    if (s == NULL) client__close(c);
    return s;
}

bool client_quiet(const struct client *c) {
    return c->gather == NULL && c->evals_pending == 0 && c->local_pending == 0 &&
           !proxy_busy_except(c, 0);
}

void client_reply_now(struct client *c, const char *data, size_t len) {
    struct slot *s = client__slot(c);
    if (s == NULL) {
        client__close(c);
        return;
    }
    slot_set(c, s, data, len);
}

void client_dispatch_part(struct client *c, uint32_t argc, const struct resp_arg *argv,
                          struct slot *into) {
    (void)client__run(c, argc, argv, into);
}

/* Keeps a parsed command (argv and bytes in one allocation) for later. */
static void client__hold(struct client *c, const struct resp_cmd *cmd) {
    c->held_argv = node_argv_copy(cmd->argc, cmd->argv);
    c->held_argc = cmd->argc;
    if (c->held_argv == NULL) client__close(c);
}

static void client__pause(struct client *c) {
    if (c->paused) return;
    c->paused = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void client__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void client__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void client__unpause(struct client *c) {
    if (!c->paused || c->closing) return;
    c->paused = false;
    uv_read_start((uv_stream_t *)&c->tcp, client__alloc_cb, client__read_cb);
}

/* Parses and runs buffered commands until the buffer is empty or the
 * client must wait (too many replies pending, a route change, output). */
static void client__process(struct client *c) {
    struct node *n = c->node;
    if (c->held_argv != NULL) {
        struct resp_cmd held = {.argc = c->held_argc, .argv = c->held_argv};
        if (!client__dispatch(c, &held)) {
            client__pause(c);
            return;
        }
        free(c->held_argv);
        c->held_argv = NULL;
    }
    uint32_t budget = CLIENT_TURN_COMMANDS;
#ifdef CANARY_NO_TURN_BUDGET
    budget = UINT32_MAX; /* planted: a connection runs its whole input in one turn */
#endif
    while (!c->closing && !c->close_after_reply) {
        if (budget-- == 0 && c->in_off < c->in_len) {
            n->stats.turn_yields++;
            /* the rest next turn (client_backlog_run), after the loop's
             * timers and other clients */
            client__pause(c);
            if (!c->backlogged) {
                c->backlogged = true;
                c->backlog_next = n->backlog;
                n->backlog = c;
            }
            node_wake(n);
            return;
        }
        if (c->n_slots >= n->cfg.max_pending_replies ||
            c->out_bytes > n->cfg.client_output_buffer_limit / 2) {
            client__pause(c);
            return;
        }
        if (c->in_off == c->in_len) {
            c->in_off = c->in_len = 0;
            client__unpause(c);
            return;
        }
        size_t used = 0;
        struct resp_cmd cmd;
        int rc = resp_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &used, &cmd);
        if (rc == RESP_NEED_MORE) {
            c->in_off = c->in_len = 0;
            client__unpause(c);
            return;
        }
        if (rc != RESP_OK) {
            char msg[160];
            snprintf(msg, sizeof(msg), "ERR %s", rc == RESP_ENOMEM ? "out of memory"
                                                                    : resp_parser_error(&c->parser));
            struct slot *s = client__slot(c);
            c->close_after_reply = true;
            if (s != NULL) slot_set_error(c, s, msg);
            else client__close(c);
            return;
        }
        c->in_off += used;
        /* shown once, as received: a held command is dispatched again */
        if (n->n_monitors > 0) monitor_feed(n, c, cmd.argc, cmd.argv);
        if (!client__dispatch(c, &cmd)) {
            client__hold(c, &cmd); /* run it once the route is free */
            client__pause(c);
            return;
        }
    }
}

void client_backlog_run(struct node *n) {
    struct client *list = n->backlog;
    n->backlog = NULL;
    while (list != NULL) {
        struct client *c = list;
        list = c->backlog_next;
        c->backlogged = false;
        c->backlog_next = NULL;
        if (!c->closing) client__process(c);
    }
}

void client_resume_held(struct node *n) {
    for (struct client *c = n->clients; c != NULL; c = c->next) {
        if (c->paused) client__process(c);
    }
}

void client_resume(struct client *c) {
    if (c->paused && !c->closing) client__process(c);
}

/* ---- reading ---- */

static void client__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct client *c = h->data;
    node_read_buf(&c->in, &c->in_cap, c->in_len, buf);
}

static void client__read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct client *c = stream->data;
    if (nread < 0) {
        client__close(c);
        return;
    }
    c->in_len += (size_t)nread;
    c->node->stats.net_in += (uint64_t)nread;
    c->last_ms = node_now_ms(c->node); /* the last interaction, as Redis's idle */
    client__process(c);
}

static void client__reject_closed_cb(uv_handle_t *h) { free(h); }

static void client__accept_cb(uv_stream_t *server, int status) {
    struct node *n = server->data;
    if (status < 0) return;
    if (n->n_clients >= n->cfg.maxclients) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL) return;
        uv_tcp_init(n->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0) {
            static char msg[] = "-ERR max number of clients reached\r\n";
            uv_buf_t b = uv_buf_init(msg, sizeof(msg) - 1);
            uv_try_write((uv_stream_t *)t, &b, 1);
        }
        n->stats.rejected++;
        uv_close((uv_handle_t *)t, client__reject_closed_cb);
        return;
    }
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    c->node = n;
    c->id = n->next_client_id++;
    c->proto = 2;
    c->authed = n->cfg.requirepass[0] == '\0';
    c->created_ms = c->last_ms = node_now_ms(c->node);
    struct resp_limits limits;
    resp_limits_default(&limits);
    limits.bulk_bytes_max = n->cfg.proto_max_bulk_len;
    limits.request_bytes_max = n->cfg.client_query_buffer_limit;
    if (resp_parser_init(&c->parser, &limits, NULL) != RESP_OK) {
        resp_limits_default(&limits);
        if (resp_parser_init(&c->parser, &limits, NULL) != RESP_OK) abort();
    }
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, client__closed_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    snprintf(c->addr, sizeof(c->addr), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) == 0 &&
        addr.ss_family == AF_INET) {
        char ip[32];
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    }
    c->next = n->clients;
    if (c->next) c->next->prev = c;
    n->clients = c;
    n->n_clients++;
    n->stats.connections++;
    uv_read_start((uv_stream_t *)&c->tcp, client__alloc_cb, client__read_cb);
}

int client_start(struct node *n) {
    struct sockaddr_in addr;
    if (uv_ip4_addr(n->cfg.bind, n->cfg.port, &addr) != 0) return -1;
    uv_tcp_init(n->loop, &n->client_listener);
    n->client_listener.data = n;
    int rc = uv_tcp_bind(&n->client_listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&n->client_listener, 511, client__accept_cb);
    if (rc != 0) {
        node_log(n, "fatal: cannot listen for clients on %s:%u: %s", n->cfg.bind,
                 (unsigned)n->cfg.port, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void client__listener_closed_cb(uv_handle_t *h) { (void)h; }

void client_stop(struct node *n) {
    client_release_due(n); /* replies finished this turn go out first */
    /* (not initialised if the node stopped before it listened for clients) */
    if (n->client_listener.loop != NULL && !uv_is_closing((uv_handle_t *)&n->client_listener)) {
        uv_close((uv_handle_t *)&n->client_listener, client__listener_closed_cb);
    }
    while (n->clients != NULL) client__close(n->clients);
}

void client_kill(struct client *c) { client__close(c); }

void client_info_line(const struct client *c, char *buf, size_t cap) {
    uint64_t now = node_now_ms(c->node);
    snprintf(buf, cap,
             "id=%llu addr=%s laddr=? fd=-1 name=%s age=%llu idle=%llu flags=%s db=0 sub=0 "
             "psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=%u "
             "omem=%llu tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%u",
             (unsigned long long)c->id, c->addr, c->name,
             (unsigned long long)((now - c->created_ms) / 1000),
             (unsigned long long)((now - c->last_ms) / 1000),
             c->monitoring ? "O" : block_is_blocked(c) ? "b" : c->readonly ? "r" : "N",
             c->in_len - c->in_off, c->n_slots, (unsigned long long)c->out_bytes,
             c->last_cmd[0] ? c->last_cmd : "NULL", (unsigned)c->proto);
}
