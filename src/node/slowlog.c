/* slowlog.c: SLOWLOG GET | LEN | RESET | HELP, as Redis 7.0 answers them.
 *
 * A node keeps the last slowlog-max-len commands whose execution took at
 * least slowlog-log-slower-than microseconds (Redis's parameters, CONFIG
 * GET/SET; -1: none, 0: every command). Execution is what Redis counts
 * too: the command's run on this node's keyspace (a write's apply on the
 * leader, a read's serve), not its wait for the Raft round, the fsync or
 * a proxied leader. An entry is Redis's: id, unix time, microseconds, the
 * arguments (at most 32, each cut to 128 bytes, with Redis's "... (N more
 * arguments)" / "... (N more bytes)"), the client's address and name.
 * It is recorded by the node that ran the command, for the client it ran
 * for (a proxied command: on the leader, for the proxying node's
 * connection). AUTH's arguments and HELLO's AUTH user and password are
 * "(redacted)", as Redis has them. A script is its EVAL's (or FCALL's)
 * entry, over its run on the leader (shard.c). shoal's internal log
 * entries (SHOAL.EXEC, SHOAL.SCRIPT, ...) are not recorded: a transaction
 * is not broken into its commands. The
 * log is in memory, this node's alone (docs/operations.md, "Slow log"). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"

#define SLOWLOG_ARGC_MAX 32
#define SLOWLOG_ARG_BYTES_MAX 128

struct slowlog_entry {
    uint64_t id;
    int64_t time_s;
    uint64_t duration_us;
    uint32_t argc;
    struct resp_arg *argv; /* argc args, their bytes after them (one block) */
    char addr[64];
    char name[64];
};

void slowlog_free(struct node *n) {
    struct slowlog *l = &n->slowlog;
    for (uint32_t i = 0; i < l->len; i++) free(l->ring[(l->head + i) % l->cap].argv);
    free(l->ring);
    memset(l, 0, sizeof(*l));
}

static void slowlog__reset(struct slowlog *l) {
    for (uint32_t i = 0; i < l->len; i++) free(l->ring[(l->head + i) % l->cap].argv);
    l->head = 0;
    l->len = 0;
}

/* The ring holds max entries (newest first from head); a smaller max drops
 * the oldest, as Redis trims its list. */
static void slowlog__fit(struct slowlog *l, uint32_t max) {
    if (max == l->cap) return;
    struct slowlog_entry *ring = max > 0 ? calloc(max, sizeof(*ring)) : NULL;
    if (max > 0 && ring == NULL) abort();
    uint32_t keep = l->len < max ? l->len : max;
    for (uint32_t i = 0; i < l->len; i++) {
        struct slowlog_entry *e = &l->ring[(l->head + i) % l->cap];
        if (i < keep) ring[i] = *e;
        else free(e->argv);
    }
    free(l->ring);
    l->ring = ring;
    l->cap = max;
    l->head = 0;
    l->len = keep;
}

static bool slowlog__skipped(const struct resp_arg *cmd) {
    return cmd->len >= 6 && strncasecmp(cmd->data, "shoal.", 6) == 0;
}

static bool slowlog__is(const struct resp_arg *a, const char *s) {
    return a->len == strlen(s) && strncasecmp(a->data, s, a->len) == 0;
}

/* Redis 7.0's redactions: every argument of AUTH, the user and password
 * after HELLO's AUTH (as HELLO reads its options: SETNAME takes one) */
static bool slowlog__redacted(uint32_t argc, const struct resp_arg *argv, uint32_t j) {
    if (slowlog__is(&argv[0], "auth")) return j >= 1;
    if (!slowlog__is(&argv[0], "hello")) return false;
    for (uint32_t k = 2; k < argc; k++) {
        uint32_t more = argc - 1 - k;
        if (slowlog__is(&argv[k], "auth") && more >= 2) {
            if (j == k + 1 || j == k + 2) return true;
            k += 2;
        } else if (slowlog__is(&argv[k], "setname") && more >= 1) {
            k++;
        } else {
            break;
        }
    }
    return false;
}

uint64_t slowlog_start(const struct node *n, const struct client *c) {
    if (c == NULL || n->cfg.redis[NODE_REDIS_SLOWLOG_SLOWER_THAN] < 0) return 0;
    return node_mono_us(n);
}

static void slowlog__record(struct node *n, const struct client *c, uint32_t argc,
                            const struct resp_arg *argv, uint64_t duration_us);

void slowlog_finish(struct node *n, const struct client *c, uint32_t argc,
                    const struct resp_arg *argv, uint64_t start) {
    if (start == 0) return; /* no client, the log is off, or no clock */
    uint64_t duration_us = node_mono_us(n) - start;
    int64_t slower = n->cfg.redis[NODE_REDIS_SLOWLOG_SLOWER_THAN];
    if ((int64_t)duration_us < slower || argc == 0 || slowlog__skipped(&argv[0])) return;
    slowlog__record(n, c, argc, argv, duration_us);
}

static void slowlog__record(struct node *n, const struct client *c, uint32_t argc,
                            const struct resp_arg *argv, uint64_t duration_us) {
    struct slowlog *l = &n->slowlog;
    slowlog__fit(l, (uint32_t)n->cfg.redis[NODE_REDIS_SLOWLOG_MAX_LEN]);
    uint64_t id = l->next_id++;
    if (l->cap == 0) return; /* Redis pushes, then trims to nothing */
    /* Redis's slowlogCreateEntry: the last kept slot says how many more */
    uint32_t kept = argc < SLOWLOG_ARGC_MAX ? argc : SLOWLOG_ARGC_MAX;
    /* each kept argument: its first `head` bytes, then text[j] */
    char text[SLOWLOG_ARGC_MAX][64];
    size_t head[SLOWLOG_ARGC_MAX], tail[SLOWLOG_ARGC_MAX];
    size_t bytes = 0;
    for (uint32_t j = 0; j < kept; j++) {
        int n_text = 0;
        head[j] = 0;
        if (kept != argc && j == kept - 1) {
            n_text = snprintf(text[j], sizeof(text[j]), "... (%u more arguments)",
                              argc - kept + 1);
        } else if (slowlog__redacted(argc, argv, j)) {
            n_text = snprintf(text[j], sizeof(text[j]), "(redacted)");
        } else if (argv[j].len > SLOWLOG_ARG_BYTES_MAX) {
            head[j] = SLOWLOG_ARG_BYTES_MAX;
            n_text = snprintf(text[j], sizeof(text[j]), "... (%zu more bytes)",
                              argv[j].len - SLOWLOG_ARG_BYTES_MAX);
        } else {
            head[j] = argv[j].len;
        }
        tail[j] = (size_t)n_text;
        bytes += head[j] + tail[j];
    }
    struct resp_arg *copy = malloc(kept * sizeof(*copy) + bytes + 1);
    if (copy == NULL) abort();
    char *at = (char *)(copy + kept);
    for (uint32_t j = 0; j < kept; j++) {
        copy[j].data = at;
        copy[j].len = head[j] + tail[j];
        if (head[j] > 0) memcpy(at, argv[j].data, head[j]);
        if (tail[j] > 0) memcpy(at + head[j], text[j], tail[j]);
        at += head[j] + tail[j];
    }
    uint32_t slot = (l->head + l->cap - 1) % l->cap; /* the newest goes first */
    if (l->len == l->cap) free(l->ring[slot].argv); /* the oldest, overwritten */
    else l->len++;
    l->head = slot;
    struct slowlog_entry *e = &l->ring[slot];
    e->id = id;
    e->time_s = (int64_t)(node_now_ms(n) / 1000);
    e->duration_us = duration_us;
    e->argc = kept;
    e->argv = copy;
    snprintf(e->addr, sizeof(e->addr), "%s", c != NULL ? c->addr : "");
    snprintf(e->name, sizeof(e->name), "%s", c != NULL ? c->name : "");
}

static const char *const slowlog__help[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
};

void slowlog_command(struct node *n, uint32_t argc, const struct resp_arg *argv,
                     struct resp_out *out) {
    struct slowlog *l = &n->slowlog;
    slowlog__fit(l, (uint32_t)n->cfg.redis[NODE_REDIS_SLOWLOG_MAX_LEN]);
    /* Redis 7.0's container errors: an unknown subcommand; a fixed arity
     * broken (the command table's check); GET's own check past 3 */
    int sub = slowlog__is(&argv[1], "help")    ? 0
              : slowlog__is(&argv[1], "reset") ? 1
              : slowlog__is(&argv[1], "len")   ? 2
              : slowlog__is(&argv[1], "get")   ? 3
                                               : -1;
    static const char *const subs[] = {"help", "reset", "len", "get"};
    if (sub < 0) {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try SLOWLOG HELP.",
                          (int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].data);
        return;
    }
    if (sub < 3 && argc != 2) {
        resp_write_errorf(out, "ERR wrong number of arguments for 'slowlog|%s' command", subs[sub]);
        return;
    }
    if (argc == 2 && slowlog__is(&argv[1], "help")) {
        size_t lines = sizeof(slowlog__help) / sizeof(slowlog__help[0]);
        resp_write_array(out, lines);
        for (size_t i = 0; i < lines; i++) {
            resp_write_simple(out, slowlog__help[i], strlen(slowlog__help[i]));
        }
    } else if (argc == 2 && slowlog__is(&argv[1], "reset")) {
        slowlog__reset(l);
        resp_write_simple(out, "OK", 2);
    } else if (argc == 2 && slowlog__is(&argv[1], "len")) {
        resp_write_int(out, l->len);
    } else if ((argc == 2 || argc == 3) && slowlog__is(&argv[1], "get")) {
        int64_t count = 10;
        if (argc == 3 && (!cmd_parse_i64(argv[2].data, argv[2].len, &count) || count < -1)) {
            resp_write_errorf(out, "ERR count should be greater than or equal to -1");
            return;
        }
        if (count == -1 || count > (int64_t)l->len) count = l->len;
        resp_write_array(out, (uint64_t)count);
        for (int64_t i = 0; i < count; i++) {
            const struct slowlog_entry *e = &l->ring[(l->head + (uint32_t)i) % l->cap];
            resp_write_array(out, 6);
            resp_write_int(out, (int64_t)e->id);
            resp_write_int(out, e->time_s);
            resp_write_int(out, (int64_t)e->duration_us);
            resp_write_array(out, e->argc);
            for (uint32_t j = 0; j < e->argc; j++) resp_write_bulk(out, e->argv[j].data, e->argv[j].len);
            resp_write_bulk(out, e->addr, strlen(e->addr));
            resp_write_bulk(out, e->name, strlen(e->name));
        }
    } else {
        resp_write_errorf(out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                               "Try SLOWLOG HELP.",
                          (int)(argv[1].len < 128 ? argv[1].len : 128), argv[1].data);
    }
}
