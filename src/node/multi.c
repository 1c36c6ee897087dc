/* multi.c: MULTI, EXEC, DISCARD, WATCH and UNWATCH for one connection.
 *
 * The node queues a transaction's commands itself (checking each: unknown
 * or wrong arity flags it, as Redis does, and EXEC then answers
 * EXECABORT) and at EXEC sends the whole as one command, SHOAL.EXEC
 * (src/cmd/cmd_multi.c), routed like any write: proposed here if this node
 * leads the shard, else proxied to the leader. So a transaction is one log
 * entry, applied atomically on every replica, and its reply is the array
 * of its commands' replies. Its keys (and the watched ones) must all be in
 * one shard, else EXEC answers CROSSSLOT and nothing runs.
 *
 * WATCH sends SHOAL.WATCH, a linearizable read of the keys' digests; its
 * reply slot is marked, and when it reaches the head of the reply queue
 * (client_release) the digests are kept and the client gets +OK. EXEC
 * carries them, and the state machine aborts the transaction (null reply)
 * if any key's digest differs: a watched key whose value, type or expiry
 * changed. Unlike Redis, a write that leaves a key exactly as it was does
 * not abort (docs/node.md, "Transactions").
 *
 * A transaction that holds a script (EVAL, EVALSHA, FCALL, their _RO
 * forms) is sent as SHOAL.EXECSCRIPT instead, the same form: a script runs
 * on the leader only, so the whole transaction runs there as one script
 * (src/node/eval.c, script_exec_multi) and its writes reach the log as one
 * SHOAL.SCRIPT entry, with the digests of every key it touched and of the
 * watched ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"

struct multi_cmd {
    uint32_t argc;
    struct resp_arg *argv; /* node_argv_copy: one allocation */
};

struct client_multi {
    bool active; /* between MULTI and EXEC/DISCARD */
    bool dirty;  /* a command was refused while queueing: EXEC aborts */
    bool scripts; /* a script is queued: EXEC sends SHOAL.EXECSCRIPT */
    struct multi_cmd *cmds;
    uint32_t n_cmds, cap_cmds;
    uint64_t bytes;
    struct resp_arg *watch; /* key copies (data owned, one malloc each) */
    char (*digest)[17];
    uint32_t n_watch, cap_watch;
};

static bool multi__is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

static void multi__clear_cmds(struct client_multi *m) {
    for (uint32_t i = 0; i < m->n_cmds; i++) free(m->cmds[i].argv);
    m->n_cmds = 0;
    m->bytes = 0;
    m->active = false;
    m->dirty = false;
    m->scripts = false;
}

static void multi__clear_watch(struct client_multi *m) {
    for (uint32_t i = 0; i < m->n_watch; i++) free((void *)m->watch[i].data);
    m->n_watch = 0;
}

bool multi_active(const struct client *c) { return c->multi != NULL && c->multi->active; }

void multi_free(struct client *c) {
    struct client_multi *m = c->multi;
    if (m == NULL) return;
    multi__clear_cmds(m);
    multi__clear_watch(m);
    free(m->cmds);
    free(m->watch);
    free(m->digest);
    free(m);
    c->multi = NULL;
}

static struct client_multi *multi__get(struct client *c) {
    if (c->multi == NULL) c->multi = calloc(1, sizeof(*c->multi));
    return c->multi;
}

static void multi__reply(struct client *c, const char *s) { client_reply_now(c, s, strlen(s)); }

/* Refused at queueing for maxmemory: any command while this node (which
 * holds the queue) is past it, as Redis refuses every queued command then;
 * else one that adds data to a shard past it (node_oom). */
static bool multi__oom(const struct node *n, const struct cmd_def *def, uint32_t argc,
                       const struct resp_arg *argv) {
    if (n->oom) return true;
    if (!cmd_denies_oom(def, argc, argv) || def->first_key <= 0) return false;
    struct node_keys_place place;
    node_cluster_keys_place(n, def, argc, argv, &place);
    return node_oom(n, place.shard);
}

/* A command sent between MULTI and EXEC: queued, or refused (flags it). */
static void multi__queue(struct client *c, struct client_multi *m, uint32_t argc,
                         const struct resp_arg *argv) {
    struct node *n = c->node;
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    struct resp_out out;
    resp_out_init(&out, c->proto, NODE_SLOT_BYTES_MAX, NULL);
    bool refused = true;
    if (def == NULL) {
        cmd_reply_unknown(&out, argc, argv);
    } else if (!cmd_arity_ok(def, argc)) {
        cmd_reply_arity(&out, def);
    } else if (!cmd_multi_allowed(def, argc) && !cmd_multi_script(def)) {
        resp_write_errorf(&out, "ERR '%s' cannot run inside MULTI in shoal: only keyspace "
                                "commands, scripts, PING, ECHO and UNWATCH can (see docs/node.md, \"Transactions\")", def->name);
    } else if (def->first_key <= 0 && def->exec != NULL && n->map.n_shards > 1) {
        resp_write_errorf(&out, "ERR '%s' needs every shard and cannot run inside MULTI "
                                "when there are several (shards %u)", def->name, n->map.n_shards);
    } else if (multi__oom(n, def, argc, argv)) {
        resp_write_errorf(&out, "%s", NODE_OOM_ERROR); /* as Redis, at queueing: EXEC aborts */
    } else if (m->n_cmds >= NODE_MULTI_COMMANDS_MAX) {
        resp_write_errorf(&out, "ERR a transaction holds at most %u commands",
                          NODE_MULTI_COMMANDS_MAX);
    } else {
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < argc; i++) bytes += argv[i].len + 16;
        if (m->bytes + bytes > NODE_MULTI_BYTES_MAX) {
            resp_write_errorf(&out, "ERR a transaction holds at most %u bytes (one log entry)",
                              NODE_MULTI_BYTES_MAX);
        } else {
            if (m->n_cmds == m->cap_cmds) {
                uint32_t cap = m->cap_cmds ? m->cap_cmds * 2 : 8;
                struct multi_cmd *p = realloc(m->cmds, cap * sizeof(*p));
                if (p != NULL) {
                    m->cmds = p;
                    m->cap_cmds = cap;
                }
            }
            struct resp_arg *copy = m->n_cmds < m->cap_cmds ? node_argv_copy(argc, argv) : NULL;
            if (copy == NULL) {
                resp_write_errorf(&out, "OOM out of memory queueing the command");
            } else {
                m->cmds[m->n_cmds++] = (struct multi_cmd){.argc = argc, .argv = copy};
                if (cmd_multi_script(def)) m->scripts = true;
                m->bytes += bytes;
                resp_write_simple(&out, "QUEUED", 6);
                refused = false;
            }
        }
    }
    if (refused) m->dirty = true;
    client_reply_now(c, resp_out_data(&out), resp_out_len(&out));
    resp_out_free(&out);
}

/* EXEC: the transaction as one SHOAL.EXEC (SHOAL.EXECSCRIPT if it holds a
 * script), run as a command of this connection. False if it must wait
 * (its route is busy): the caller holds the EXEC and comes back. */
static bool multi__exec(struct client *c, struct client_multi *m) {
    if (m->dirty) {
        multi__clear_cmds(m);
        multi__clear_watch(m);
        multi__reply(c, "-EXECABORT Transaction discarded because of previous errors.\r\n");
        return true;
    }
    uint64_t argc = 3 + 2 * (uint64_t)m->n_watch;
    for (uint32_t i = 0; i < m->n_cmds; i++) argc += 1 + m->cmds[i].argc;
    struct resp_arg *argv = calloc(argc, sizeof(*argv));
    char(*nums)[24] = calloc(2 + m->n_cmds, sizeof(*nums));
    if (argv == NULL || nums == NULL) {
        free(argv);
        free(nums);
        multi__clear_cmds(m);
        multi__clear_watch(m);
        multi__reply(c, "-OOM out of memory for the transaction\r\n");
        return true;
    }
    uint64_t at = 0;
    argv[at++] = m->scripts ? (struct resp_arg){"shoal.execscript", 16}
                            : (struct resp_arg){"shoal.exec", 10};
    int len = snprintf(nums[0], sizeof(nums[0]), "%u", m->n_watch);
    argv[at++] = (struct resp_arg){nums[0], (size_t)len};
    for (uint32_t i = 0; i < m->n_watch; i++) {
        argv[at++] = m->watch[i];
        argv[at++] = (struct resp_arg){m->digest[i], 16};
    }
    len = snprintf(nums[1], sizeof(nums[1]), "%u", m->n_cmds);
    argv[at++] = (struct resp_arg){nums[1], (size_t)len};
    for (uint32_t i = 0; i < m->n_cmds; i++) {
        len = snprintf(nums[2 + i], sizeof(nums[0]), "%u", m->cmds[i].argc);
        argv[at++] = (struct resp_arg){nums[2 + i], (size_t)len};
        for (uint32_t j = 0; j < m->cmds[i].argc; j++) argv[at++] = m->cmds[i].argv[j];
    }
    bool ran = client_run(c, (uint32_t)argc, argv);
    free(argv);
    free(nums);
    if (ran) {
        multi__clear_cmds(m);
        multi__clear_watch(m);
    }
    return ran;
}

/* WATCH: a read of the keys' digests, whose reply slot client_release
 * turns into +OK once the digests are kept (multi_watch_reply). */
static bool multi__watch(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    struct resp_arg *copy = node_argv_copy(argc, argv);
    if (copy == NULL) {
        multi__reply(c, "-OOM out of memory for WATCH\r\n");
        return true;
    }
    copy[0] = (struct resp_arg){"shoal.watch", 11};
    c->next_slot_watch = true;
    bool ran = client_run(c, argc, copy);
    c->next_slot_watch = false;
    free(copy);
    return ran;
}

/* Reads "$<len>\r\n<bytes>\r\n" at *p; false if malformed. */
static bool multi__bulk(const char **p, const char *end, const char **data, size_t *len) {
    const char *q = *p;
    if (q >= end || *q != '$') return false;
    size_t l = 0;
    for (q++; q < end && *q >= '0' && *q <= '9'; q++) {
        l = l * 10 + (size_t)(*q - '0');
        if (l > NODE_MULTI_BYTES_MAX) return false;
    }
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || (size_t)(end - q - 2) < l + 2) return false;
    *data = q + 2;
    *len = l;
    *p = q + 2 + l + 2;
    return true;
}

void multi_watch_reply(struct client *c, struct slot *s) {
    s->watch = false;
    if (s->len == 0 || s->data[0] != '*') return; /* an error: the client sees it */
    struct client_multi *m = multi__get(c);
    const char *p = s->data + 1, *end = s->data + s->len;
    size_t pairs = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) pairs = pairs * 10 + (size_t)(*p - '0');
    p += 2;
    pairs /= 2;
    bool ok = m != NULL;
    for (size_t i = 0; ok && i < pairs; i++) {
        const char *key, *digest;
        size_t key_len, digest_len;
        if (!multi__bulk(&p, end, &key, &key_len) || !multi__bulk(&p, end, &digest, &digest_len) ||
            digest_len != 16 || m->n_watch >= NODE_MULTI_WATCH_MAX) {
            ok = false;
            break;
        }
        if (m->n_watch == m->cap_watch) {
            uint32_t cap = m->cap_watch ? m->cap_watch * 2 : 8;
            struct resp_arg *w = realloc(m->watch, cap * sizeof(*w));
            if (w != NULL) m->watch = w;
            char(*d)[17] = realloc(m->digest, cap * sizeof(*d));
            if (d != NULL) m->digest = d;
            if (w == NULL || d == NULL) {
                ok = false;
                break;
            }
            m->cap_watch = cap;
        }
        char *k = malloc(key_len ? key_len : 1);
        if (k == NULL) {
            ok = false;
            break;
        }
        memcpy(k, key, key_len);
        m->watch[m->n_watch] = (struct resp_arg){k, key_len};
        memcpy(m->digest[m->n_watch], digest, 16);
        m->digest[m->n_watch][16] = '\0';
        m->n_watch++;
    }
    static const char okr[] = "+OK\r\n";
    static const char bad[] = "-ERR WATCH: too many watched keys or out of memory\r\n";
    const char *r = ok ? okr : bad;
    size_t rl = ok ? sizeof(okr) - 1 : sizeof(bad) - 1;
    char *d = malloc(rl);
    if (d == NULL) return;
    memcpy(d, r, rl);
    free(s->data);
    s->data = d;
    s->len = rl;
}

bool multi_intercept(struct client *c, uint32_t argc, const struct resp_arg *argv, bool *ran) {
    struct client_multi *m = c->multi;
    bool active = m != NULL && m->active;
    *ran = true;
    if (argc == 0) return false;
    const struct resp_arg *name = &argv[0];
    bool is_multi = multi__is(name, "multi"), is_exec = multi__is(name, "exec");
    bool is_discard = multi__is(name, "discard"), is_watch = multi__is(name, "watch");
    bool is_unwatch = multi__is(name, "unwatch");
    if (!active && !(is_multi || is_exec || is_discard || is_watch || is_unwatch)) return false;
    if (!active && (is_exec || is_discard)) {
        if (argc != 1) return false; /* the arity error, from the table */
        multi__reply(c, is_exec ? "-ERR EXEC without MULTI\r\n" : "-ERR DISCARD without MULTI\r\n");
        return true;
    }
    if (is_multi && argc == 1) {
        if (active) {
            multi__reply(c, "-ERR MULTI calls can not be nested\r\n");
            return true;
        }
        m = multi__get(c);
        if (m == NULL) {
            multi__reply(c, "-OOM out of memory for MULTI\r\n");
            return true;
        }
        m->active = true;
        multi__reply(c, "+OK\r\n");
        return true;
    }
    if (is_watch && argc >= 2) {
        if (active) {
            multi__reply(c, "-ERR WATCH inside MULTI is not allowed\r\n");
            return true;
        }
        if (multi__get(c) == NULL) {
            multi__reply(c, "-OOM out of memory for WATCH\r\n");
            return true;
        }
        *ran = multi__watch(c, argc, argv);
        return true;
    }
    if (is_unwatch && argc == 1 && !active) {
        if (m != NULL) multi__clear_watch(m);
        multi__reply(c, "+OK\r\n");
        return true;
    }
    if (!active) return false; /* a wrong arity of one of them: the table answers */
    if (multi__is(name, "quit")) return false; /* runs at once, as in Redis */
    if (is_exec && argc == 1) {
        *ran = multi__exec(c, m);
        return true;
    }
    if (is_discard && argc == 1) {
        multi__clear_cmds(m);
        multi__clear_watch(m);
        multi__reply(c, "+OK\r\n");
        return true;
    }
    multi__queue(c, m, argc, argv);
    return true;
}
