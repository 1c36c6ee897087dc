/* client_cmds.c: the commands a node answers itself (CMD_NODE): PING,
 * ECHO, HELLO, QUIT, SELECT, TIME, READONLY, READWRITE, ASKING, INFO,
 * COMMAND, CONFIG and CLIENT (CLUSTER: cluster_cmds.c), with Redis 7.0's replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "node/node_int.h"

#define SHOAL_VERSION "0.1.0"
#define REDIS_COMPAT_VERSION "7.0.0"

static bool arg_is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

static void node__ping(struct client *c, uint32_t argc, const struct resp_arg *argv,
                       struct resp_out *out) {
    (void)c;
    if (argc > 2) resp_write_errorf(out, "ERR wrong number of arguments for 'ping' command");
    else if (argc == 2) resp_write_bulk(out, argv[1].data, argv[1].len);
    else resp_write_simple(out, "PONG", 4);
}

/* The one user there is (usernames are case-sensitive, as in Redis). */
static bool node__is_default_user(const struct resp_arg *user) {
    return user->len == 7 && memcmp(user->data, "default", 7) == 0;
}

/* Whether user (NULL: "default") and pass open the node: one user,
 * "default", whose password is requirepass; with none set any password
 * does, as for Redis's nopass default user. The bytes are compared in a
 * time that does not depend on where they differ. */
static bool node__password_ok(const struct node *n, const struct resp_arg *user,
                              const struct resp_arg *pass) {
    if (user != NULL && !node__is_default_user(user)) return false;
    const char *want = n->cfg.requirepass;
    size_t want_len = strlen(want);
    if (want_len == 0) return true;
    unsigned char diff = (unsigned char)(pass->len != want_len);
    for (size_t i = 0; i < want_len; i++) {
        diff |= (unsigned char)(want[i] ^ (i < pass->len ? pass->data[i] : 0));
    }
    return diff == 0;
}

static const char node__hello_noauth[] =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time";

static const char node__wrongpass[] =
    "WRONGPASS invalid username-password pair or user is disabled.";

/* AUTH [username] password, as Redis 7.0 answers it. */
static void node__auth(struct client *c, uint32_t argc, const struct resp_arg *argv,
                       struct resp_out *out) {
    if (argc > 3) {
        resp_write_errorf(out, "ERR syntax error");
    } else if (argc == 2 && c->node->cfg.requirepass[0] == '\0') {
        resp_write_errorf(out, "ERR AUTH <password> called without any password configured "
                               "for the default user. Are you sure your configuration is "
                               "correct?");
    } else if (!node__password_ok(c->node, argc == 3 ? &argv[1] : NULL, &argv[argc - 1])) {
        resp_write_errorf(out, "%s", node__wrongpass);
    } else {
        c->authed = true;
        resp_write_simple(out, "OK", 2);
    }
}

static void node__hello(struct client *c, uint32_t argc, const struct resp_arg *argv,
                        struct resp_out *out) {
    struct node *n = c->node;
    uint32_t i = 1;
    if (argc < 2 && !c->authed) {
        resp_write_errorf(out, "%s", node__hello_noauth);
        return;
    }
    if (argc >= 2) {
        int64_t ver;
        if (!cmd_parse_i64(argv[1].data, argv[1].len, &ver)) {
            resp_write_errorf(out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            resp_write_errorf(out, "NOPROTO unsupported protocol version");
            return;
        }
        const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
        for (i = 2; i < argc; i++) {
            if (arg_is(&argv[i], "auth") && i + 2 < argc) {
                user = &argv[i + 1];
                pass = &argv[i + 2];
                i += 2;
            } else if (arg_is(&argv[i], "setname") && i + 1 < argc) {
                name = &argv[i + 1];
                i++;
            } else {
                resp_write_errorf(out, "ERR Syntax error in HELLO option '%.*s'",
                                  (int)argv[i].len, argv[i].data);
                return;
            }
        }
        if (pass != NULL && !node__password_ok(n, user, pass)) {
            resp_write_errorf(out, "%s", node__wrongpass);
            return;
        }
        if (pass == NULL && !c->authed) {
            resp_write_errorf(out, "%s", node__hello_noauth);
            return;
        }
        if (pass != NULL) c->authed = true;
        if (name != NULL) snprintf(c->name, sizeof(c->name), "%.*s", (int)name->len, name->data);
        c->proto = (uint8_t)ver;
        resp_out_set_proto(out, c->proto);
    }
    resp_write_map(out, 7);
    resp_write_bulk(out, "server", 6);
    resp_write_bulk(out, "redis", 5);
    resp_write_bulk(out, "version", 7);
    resp_write_bulk(out, REDIS_COMPAT_VERSION, strlen(REDIS_COMPAT_VERSION));
    resp_write_bulk(out, "proto", 5);
    resp_write_int(out, c->proto);
    resp_write_bulk(out, "id", 2);
    resp_write_int(out, (int64_t)c->id);
    resp_write_bulk(out, "mode", 4);
    resp_write_bulk(out, "cluster", 7);
    resp_write_bulk(out, "role", 4);
    if (node_leads_any(n)) resp_write_bulk(out, "master", 6);
    else resp_write_bulk(out, "replica", 7);
    resp_write_bulk(out, "modules", 7);
    resp_write_array(out, 0);
}

static void node__command_flags(const struct cmd_def *d, struct resp_out *out) {
    const char *flags[8];
    int n = 0;
    if (d->flags & CMD_WRITE) flags[n++] = "write";
    if (d->flags & CMD_READONLY) flags[n++] = "readonly";
    if (d->flags & CMD_DENYOOM) flags[n++] = "denyoom";
    if (d->flags & CMD_BLOCKING) flags[n++] = "blocking";
    if (d->flags & CMD_FAST) flags[n++] = "fast";
    if (d->flags & CMD_NODE) flags[n++] = "loading";
    if (d->flags & CMD_NODE) flags[n++] = "stale";
    if (d->flags & (CMD_NUMKEYS | CMD_STREAMKEYS)) flags[n++] = "movablekeys";
    resp_write_set(out, (uint64_t)n);
    for (int i = 0; i < n; i++) resp_write_simple(out, flags[i], strlen(flags[i]));
}

static void node__command_info(const struct cmd_def *d, struct resp_out *out) {
    resp_write_array(out, 10);
    resp_write_bulk(out, d->name, strlen(d->name));
    resp_write_int(out, d->arity);
    node__command_flags(d, out);
    /* Redis shows "movablekeys" and the fixed keys: 0 0 0, or 1 1 1 when a
     * destination comes first (ZUNIONSTORE) */
    bool movable = (d->flags & (CMD_NUMKEYS | CMD_STREAMKEYS)) != 0;
    int fixed = (d->flags & CMD_DSTKEY) ? 1 : 0;
    resp_write_int(out, movable ? fixed : d->first_key);
    resp_write_int(out, movable ? fixed : d->last_key);
    resp_write_int(out, movable ? fixed : d->key_step);
    resp_write_set(out, 0); /* ACL categories */
    resp_write_set(out, 0); /* tips */
    resp_write_array(out, 0); /* key specs */
    resp_write_array(out, 0); /* subcommands */
}

static void node__command_doc(const struct cmd_def *d, struct resp_out *out) {
    resp_write_bulk(out, d->name, strlen(d->name));
    resp_write_map(out, 3);
    resp_write_bulk(out, "summary", 7);
    resp_write_bulk(out, d->summary, strlen(d->summary));
    resp_write_bulk(out, "since", 5);
    resp_write_bulk(out, d->since, strlen(d->since));
    resp_write_bulk(out, "group", 5);
    resp_write_bulk(out, d->group, strlen(d->group));
}

struct node__keys {
    const struct resp_arg *keys[CMD_GETKEYS_MAX];
    uint32_t n;
    bool truncated;
};

static void node__key_cb(void *ctx, const struct resp_arg *key) {
    struct node__keys *k = ctx;
    if (k->n < CMD_GETKEYS_MAX) k->keys[k->n++] = key;
    else k->truncated = true;
}

/* COMMAND GETKEYS cmd arg...: the keys the command names, as Redis finds
 * them (cluster clients ask it for the commands whose keys follow a count,
 * flagged movablekeys: ZUNIONSTORE, LMPOP, ...). */
static void node__command_getkeys(uint32_t argc, const struct resp_arg *argv,
                                  struct resp_out *out) {
    const struct cmd_def *d = cmd_lookup(argv[0].data, argv[0].len);
    if (d == NULL) {
        resp_write_errorf(out, "ERR Invalid command specified");
        return;
    }
    if (!cmd_arity_ok(d, argc)) {
        resp_write_errorf(out, "ERR Invalid number of arguments specified for command");
        return;
    }
    static struct node__keys k; /* the loop thread's alone */
    k.n = 0;
    k.truncated = false;
    cmd_keys(d, argc, argv, node__key_cb, &k);
    if (k.truncated) {
        resp_write_errorf(out, "ERR more than %u keys", CMD_GETKEYS_MAX);
        return;
    }
    if (k.n == 0) {
        resp_write_errorf(out, "ERR The command has no key arguments");
        return;
    }
    resp_write_array(out, k.n);
    for (uint32_t i = 0; i < k.n; i++) resp_write_bulk(out, k.keys[i]->data, k.keys[i]->len);
}

static void node__command(uint32_t argc, const struct resp_arg *argv, struct resp_out *out) {
    if (argc == 1) {
        resp_write_array(out, cmd_table_count);
        for (uint32_t i = 0; i < cmd_table_count; i++) node__command_info(&cmd_table[i], out);
    } else if (arg_is(&argv[1], "count") && argc == 2) {
        resp_write_int(out, cmd_table_count);
    } else if (arg_is(&argv[1], "info")) {
        resp_write_array(out, argc - 2);
        for (uint32_t i = 2; i < argc; i++) {
            const struct cmd_def *d = cmd_lookup(argv[i].data, argv[i].len);
            if (d) node__command_info(d, out);
            else resp_write_null_array(out);
        }
    } else if (arg_is(&argv[1], "getkeys") && argc >= 3) {
        node__command_getkeys(argc - 2, argv + 2, out);
    } else if (arg_is(&argv[1], "docs")) {
        uint32_t found = 0;
        for (uint32_t i = 2; i < argc; i++) found += cmd_lookup(argv[i].data, argv[i].len) != 0;
        resp_write_map(out, argc == 2 ? cmd_table_count : found);
        if (argc == 2) {
            for (uint32_t i = 0; i < cmd_table_count; i++) node__command_doc(&cmd_table[i], out);
        }
        for (uint32_t i = 2; i < argc; i++) {
            const struct cmd_def *d = cmd_lookup(argv[i].data, argv[i].len);
            if (d) node__command_doc(d, out);
        }
    } else {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                          (int)argv[1].len, argv[1].data);
    }
}

/* CONFIG GET: the node's settings by Redis-style name, then Redis's
 * parameters (config_redis.c) by their names and old aliases. */
#define NODE__CONFIG_ITEMS_MAX 64
static void node__config_get(struct node *n, uint32_t argc, const struct resp_arg *argv,
                             struct resp_out *out) {
    char values[NODE__CONFIG_ITEMS_MAX][64];
    const char *names[NODE__CONFIG_ITEMS_MAX];
    int count = 0;
#define CONFIG_ITEM(name_, fmt_, value_)                                          \
    do {                                                                          \
        names[count] = (name_);                                                   \
        snprintf(values[count], sizeof(values[count]), fmt_, value_);             \
        count++;                                                                  \
    } while (0)
    CONFIG_ITEM("port", "%u", (unsigned)n->cfg.port);
    CONFIG_ITEM("bind", "%s", n->cfg.bind);
    CONFIG_ITEM("dir", "%.60s", n->cfg.dir);
    CONFIG_ITEM("maxclients", "%u", n->cfg.maxclients);
    CONFIG_ITEM("proto-max-bulk-len", "%llu", (unsigned long long)n->cfg.proto_max_bulk_len);
    CONFIG_ITEM("client-query-buffer-limit", "%llu",
                (unsigned long long)n->cfg.client_query_buffer_limit);
    CONFIG_ITEM("databases", "%d", 1);
    CONFIG_ITEM("tick-ms", "%u", n->cfg.tick_ms);
    CONFIG_ITEM("election-ticks", "%u", n->cfg.election_ticks);
    CONFIG_ITEM("snapshot-entries", "%llu", (unsigned long long)n->cfg.snapshot_entries);
    CONFIG_ITEM("snapshot-log-bytes", "%llu", (unsigned long long)n->cfg.snapshot_log_bytes);
    CONFIG_ITEM("snapshot-chunk-bytes", "%llu", (unsigned long long)n->cfg.snapshot_chunk_bytes);
    CONFIG_ITEM("snapshot-write-rate", "%llu", (unsigned long long)n->cfg.snapshot_write_rate);
    CONFIG_ITEM("pipeline-order", "%s",
                n->cfg.pipeline_order == NODE_ORDER_CONNECTION ? "connection" : "shard");
#undef CONFIG_ITEM
    for (int p = 0; p < NODE_REDIS_COUNT; p++) {
        for (int alias = 0; alias < 2; alias++) {
            const char *name = node_redis_name(p, alias);
            if (name == NULL) continue;
            assert(count < NODE__CONFIG_ITEMS_MAX);
            names[count] = name;
            node_redis_value(&n->cfg, p, values[count], sizeof(values[count]));
            count++;
        }
    }
    bool match[NODE__CONFIG_ITEMS_MAX] = {false};
    int matched = 0;
    for (int i = 0; i < count; i++) {
        for (uint32_t a = 2; a < argc && !match[i]; a++) {
            match[i] = kv_glob_match(argv[a].data, argv[a].len, names[i], strlen(names[i]), true);
        }
        matched += match[i];
    }
    resp_write_map(out, (uint64_t)matched);
    for (int i = 0; i < count; i++) {
        if (!match[i]) continue;
        resp_write_bulk(out, names[i], strlen(names[i]));
        resp_write_bulk(out, values[i], strlen(values[i]));
    }
}

/* CONFIG SET name value [name value ...], all or nothing as in Redis 7.0:
 * maxclients, pipeline-order and Redis's parameters (config_redis.c). A setting is this
 * node's: the sorted sets' packing thresholds go to every replica here
 * (they change the memory layout, never a reply or the content, so nodes
 * may differ in them; docs/operations.md, "Redis's parameters"). */
static void node__config_set(struct node *n, uint32_t argc, const struct resp_arg *argv,
                             struct resp_out *out) {
    struct node_config next = n->cfg;
    for (uint32_t i = 2; i < argc; i += 2) {
        const struct resp_arg *name = &argv[i], *value = &argv[i + 1];
        for (uint32_t j = 2; j < i; j += 2) {
            if (argv[j].len == name->len && strncasecmp(argv[j].data, name->data, name->len) == 0) {
                resp_write_errorf(out, "ERR CONFIG SET failed (possibly related to argument "
                                       "'%.*s') - duplicate parameter", (int)name->len, name->data);
                return;
            }
        }
        int64_t v;
        int param = node_redis_find(name->data, name->len);
        char why[256];
        if (arg_is(name, "maxclients")) {
            if (!cmd_parse_i64(value->data, value->len, &v) || v <= 0 || v > UINT32_MAX) {
                resp_write_errorf(out, "ERR CONFIG SET failed (possibly related to argument "
                                       "'maxclients') - argument must be between 1 and %u "
                                       "inclusive", UINT32_MAX);
                return;
            }
            next.maxclients = (uint32_t)v;
        } else if (arg_is(name, "pipeline-order")) {
            if (arg_is(value, "shard")) {
                next.pipeline_order = NODE_ORDER_SHARD;
            } else if (arg_is(value, "connection")) {
                next.pipeline_order = NODE_ORDER_CONNECTION;
            } else {
                resp_write_errorf(out, "ERR CONFIG SET failed (possibly related to argument "
                                       "'pipeline-order') - argument(s) must be one of the "
                                       "following: shard, connection");
                return;
            }
        } else if (param < 0) {
            resp_write_errorf(out, "ERR Unknown option or number of arguments for CONFIG SET "
                                   "- '%.*s'", (int)(name->len < 128 ? name->len : 128), name->data);
            return;
        } else if (node_redis_set(&next, param, value->data, value->len, why, sizeof(why)) != 0) {
            resp_write_errorf(out, "ERR CONFIG SET failed (possibly related to argument '%.*s') "
                                   "- %s", (int)(name->len < 128 ? name->len : 128), name->data,
                              why);
            return;
        }
    }
    n->cfg = next;
    for (uint32_t k = 0; k < n->map.n_shards; k++) {
        struct shard *s = n->shards[k];
        if (s == NULL || s->kv == NULL) continue;
        struct kv_config kc; /* the layout parameters: this node's alone */
        shard_kv_config(n, s, &kc);
        kv_set_layout(s->kv, &kc);
    }
    memory_measure_now(n); /* a new maxmemory applies now, not at the next check */
    resp_write_simple(out, "OK", 2);
}

static void node__config(struct node *n, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out) {
    if (arg_is(&argv[1], "get") && argc >= 3) {
        node__config_get(n, argc, argv, out);
    } else if (arg_is(&argv[1], "set") && argc >= 4 && argc % 2 == 0) {
        node__config_set(n, argc, argv, out);
    } else if (arg_is(&argv[1], "resetstat") && argc == 2) {
        memset(&n->stats, 0, sizeof(n->stats));
        resp_write_simple(out, "OK", 2);
    } else if (arg_is(&argv[1], "get") || arg_is(&argv[1], "set")) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'config|%.*s' command",
                          (int)argv[1].len, argv[1].data);
    } else {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                          (int)argv[1].len, argv[1].data);
    }
}

/* CLIENT UNBLOCK id [TIMEOUT|ERROR]: a client blocked on this node. */
static void node__client_unblock(struct node *n, uint32_t argc, const struct resp_arg *argv,
                                 struct resp_out *out) {
    bool error = false;
    int64_t id;
    if (argc != 3 && argc != 4) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'client|unblock' command");
        return;
    }
    if (argc == 4) {
        error = arg_is(&argv[3], "error");
        if (!error && !arg_is(&argv[3], "timeout")) {
            resp_write_errorf(out, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    }
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &id)) {
        resp_write_errorf(out, "ERR value is not an integer or out of range");
        return;
    }
    int done = id < 0 ? 0 : block_unblock(n, (uint64_t)id, error);
    if (done == 0 && id >= 0) done = wait_unblock(n, (uint64_t)id, error);
    resp_write_int(out, done);
}

/* CLIENT KILL addr, or CLIENT KILL with filters (ID, TYPE, USER, ADDR,
 * LADDR, SKIPME), as Redis 7.0 answers them. Another connection is closed
 * at once; the caller's own (SKIPME no) after this reply, as QUIT. */
static void node__client_kill(struct client *c, uint32_t argc, const struct resp_arg *argv,
                              struct resp_out *out) {
    struct node *n = c->node;
    bool old_form = argc == 3;
    const struct resp_arg *addr = old_form ? &argv[2] : NULL, *laddr = NULL, *user = NULL;
    uint64_t id = 0;
    int type = -1; /* 0 normal, 1 master, 2 replica, 3 pubsub */
    bool skipme = !old_form;
    for (uint32_t i = 2; !old_form && i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_write_errorf(out, "ERR syntax error");
            return;
        }
        const struct resp_arg *v = &argv[i + 1];
        if (arg_is(&argv[i], "id")) {
            int64_t x;
            if (!cmd_parse_i64(v->data, v->len, &x) || x <= 0) {
                resp_write_errorf(out, "ERR client-id should be greater than 0");
                return;
            }
            id = (uint64_t)x;
        } else if (arg_is(&argv[i], "type")) {
            static const char *const types[] = {"normal", "master", "replica", "pubsub", "slave"};
            type = -1; /* a second TYPE is checked on its own */
            for (int t = 0; t < 5 && type < 0; t++) {
                if (arg_is(v, types[t])) type = t == 4 ? 2 : t;
            }
            if (type < 0) {
                resp_write_errorf(out, "ERR Unknown client type '%.*s'", (int)v->len, v->data);
                return;
            }
        } else if (arg_is(&argv[i], "user")) {
            user = v;
        } else if (arg_is(&argv[i], "addr")) {
            addr = v;
        } else if (arg_is(&argv[i], "laddr")) {
            laddr = v;
        } else if (arg_is(&argv[i], "skipme") && (arg_is(v, "yes") || arg_is(v, "no"))) {
            skipme = arg_is(v, "yes");
        } else {
            resp_write_errorf(out, "ERR syntax error");
            return;
        }
    }
    if (user != NULL && !node__is_default_user(user)) {
        resp_write_errorf(out, "ERR No such user '%.*s'", (int)user->len, user->data);
        return;
    }
    int64_t killed = 0;
    for (struct client *o = n->clients, *next; o != NULL; o = next) {
        next = o->next;
        if (o == c && skipme) continue;
        if (id != 0 && o->id != id) continue;
        if (addr != NULL && !(strlen(o->addr) == addr->len &&
                              memcmp(o->addr, addr->data, addr->len) == 0)) {
            continue;
        }
        if (laddr != NULL) continue; /* no local address is kept (CLIENT LIST: laddr=?) */
        bool pubsub = pubsub_subscribed(o);
        if (type >= 0 && type != (pubsub ? 3 : 0)) continue;
        killed++;
        if (o == c) c->close_after_reply = true;
        else client_kill(o);
    }
    if (!old_form) resp_write_int(out, killed);
    else if (killed == 0) resp_write_errorf(out, "ERR No such client");
    else resp_write_simple(out, "OK", 2);
}

static void node__client(struct client *c, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out) {
    struct node *n = c->node;
    char line[512];
    if (arg_is(&argv[1], "id") && argc == 2) {
        resp_write_int(out, (int64_t)c->id);
    } else if (arg_is(&argv[1], "getname") && argc == 2) {
        if (c->name[0]) resp_write_bulk(out, c->name, strlen(c->name));
        else resp_write_null(out);
    } else if (arg_is(&argv[1], "setname") && argc == 3) {
        for (size_t i = 0; i < argv[2].len; i++) {
            if (argv[2].data[i] <= ' ' || argv[2].data[i] > '~') {
                resp_write_errorf(out, "ERR Client names cannot contain spaces, newlines or "
                                       "special characters.");
                return;
            }
        }
        snprintf(c->name, sizeof(c->name), "%.*s", (int)argv[2].len, argv[2].data);
        resp_write_simple(out, "OK", 2);
    } else if (arg_is(&argv[1], "info") && argc == 2) {
        client_info_line(c, line, sizeof(line));
        strcat(line, "\n");
        resp_write_verbatim(out, "txt", line, strlen(line));
    } else if (arg_is(&argv[1], "list")) {
        size_t cap = 512 * (n->n_clients + 1);
        char *all = malloc(cap);
        if (all == NULL) {
            resp_write_errorf(out, "OOM out of memory");
            return;
        }
        size_t at = 0;
        for (const struct client *o = n->clients; o != NULL; o = o->next) {
            client_info_line(o, line, sizeof(line));
            at += (size_t)snprintf(all + at, cap - at, "%s\n", line);
        }
        resp_write_verbatim(out, "txt", all, at);
        free(all);
    } else if (arg_is(&argv[1], "setinfo") && argc == 4) {
        resp_write_simple(out, "OK", 2);
    } else if (arg_is(&argv[1], "kill") && argc >= 3) {
        node__client_kill(c, argc, argv, out);
    } else if (arg_is(&argv[1], "unblock")) {
        node__client_unblock(n, argc, argv, out);
    } else {
        resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                               "Try CLIENT HELP.", (int)argv[1].len, argv[1].data);
    }
}

void client_node_command(struct client *c, const struct cmd_def *def, uint32_t argc,
                         const struct resp_arg *argv, struct resp_out *out) {
    struct node *n = c->node;
    const char *name = def->name;
    if (strcmp(name, "ping") == 0) {
        node__ping(c, argc, argv, out);
    } else if (strcmp(name, "publish") == 0 || strcmp(name, "spublish") == 0 ||
               strcmp(name, "pubsub") == 0) {
        pubsub_command(c, def, argc, argv, out);
    } else if (strcmp(name, "echo") == 0) {
        resp_write_bulk(out, argv[1].data, argv[1].len);
    } else if (strcmp(name, "hello") == 0) {
        node__hello(c, argc, argv, out);
    } else if (strcmp(name, "auth") == 0) {
        node__auth(c, argc, argv, out);
    } else if (strcmp(name, "quit") == 0) {
        resp_write_simple(out, "OK", 2);
        c->close_after_reply = true;
    } else if (strcmp(name, "select") == 0) {
        int64_t db;
        if (!cmd_parse_i64(argv[1].data, argv[1].len, &db)) {
            resp_write_errorf(out, "ERR value is not an integer or out of range");
        } else if (db != 0) {
            resp_write_errorf(out, "ERR DB index is out of range");
        } else {
            resp_write_simple(out, "OK", 2);
        }
    } else if (strcmp(name, "time") == 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        char s[32];
        char us[32];
        int ls = snprintf(s, sizeof(s), "%lld", (long long)tv.tv_sec);
        int lu = snprintf(us, sizeof(us), "%lld", (long long)tv.tv_usec);
        resp_write_array(out, 2);
        resp_write_bulk(out, s, (size_t)ls);
        resp_write_bulk(out, us, (size_t)lu);
    } else if (strcmp(name, "readonly") == 0 || strcmp(name, "readwrite") == 0) {
        /* not a sign of a cluster client: plain clients use READONLY to
         * read the local replica (docs/cluster.md) */
        c->readonly = name[4] == 'o';
        resp_write_simple(out, "OK", 2);
    } else if (strcmp(name, "asking") == 0) {
        c->cluster_mode = true; /* no slot is ever migrating: nothing else to do */
        resp_write_simple(out, "OK", 2);
    } else if (strcmp(name, "cluster") == 0) {
        node_cluster_command(c, argc, argv, out);
    } else if (strcmp(name, "info") == 0) {
        node_info(n, argc > 1 ? argv[1].data : NULL, argc > 1 ? argv[1].len : 0, out);
    } else if (strcmp(name, "command") == 0) {
        node__command(argc, argv, out);
    } else if (strcmp(name, "config") == 0) {
        node__config(n, argc, argv, out);
    } else if (strcmp(name, "client") == 0) {
        node__client(c, argc, argv, out);
    } else if (strcmp(name, "script") == 0) {
        eval_script_command(c, argc, argv, out);
    } else if (strcmp(name, "slowlog") == 0) {
        slowlog_command(n, argc, argv, out);
    } else if (strcmp(name, "monitor") == 0) {
        monitor_command(c, out);
    } else {
        resp_write_errorf(out, "ERR unknown command '%s'", name);
    }
}
