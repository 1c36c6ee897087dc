/* cmd_multi.c: transactions as the log sees them.
 *
 * A connection's MULTI ... EXEC (queued by the node, src/node/multi.c)
 * reaches the log as ONE command, so a transaction is one entry, applied
 * whole on every replica or not at all:
 *
 *   SHOAL.EXEC <w> <key> <digest> ... (w pairs) <n> <argc> <arg> ... (n commands)
 *
 * Each watched key comes with the digest it had when WATCH read it
 * (kv_key_digest, 16 hex digits; 0 for no key). If any differs at apply
 * time the transaction is aborted: the reply is a null array, as Redis's.
 * Then each command runs in order and its reply (or error) is one element
 * of the array reply. `SHOAL.WATCH key ...` is the read behind WATCH: it
 * answers `key digest` pairs. Both are internal, and refuse anything but
 * the form the node builds.
 *
 * A transaction that holds a script (EVAL, EVALSHA, FCALL and their _RO
 * forms) is SHOAL.EXECSCRIPT, the same form with scripts allowed among
 * the commands. It never reaches the log: the node runs it on the leader
 * as one script (script_exec_multi, src/script/script.c) and proposes the
 * SHOAL.SCRIPT of its writes (below). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"

static bool cmd_multi__count(const struct resp_arg *a, uint64_t max, uint64_t *out) {
    int64_t v;
    if (!cmd_parse_i64(a->data, a->len, &v) || v < 0 || (uint64_t)v > max) return false;
    *out = (uint64_t)v;
    return true;
}

/* PING, ECHO and UNWATCH are answered by the node outside a transaction;
 * inside one they answer here, in their place in the array (UNWATCH: OK,
 * as Redis's queued UNWATCH, which runs after EXEC has checked the watched
 * keys and so changes nothing). */
static bool cmd_multi__pure(const struct cmd_def *def, uint32_t argc) {
    return (strcmp(def->name, "ping") == 0 && argc <= 2) || strcmp(def->name, "echo") == 0 ||
           strcmp(def->name, "unwatch") == 0;
}

bool cmd_multi_allowed(const struct cmd_def *def, uint32_t argc) {
    if (def->exec == cmd_shoal_exec || def->exec == cmd_shoal_script) return false;
    if (def->flags & CMD_SCRIPT) return false; /* run by the node, never inside an entry */
    return def->exec != NULL || cmd_multi__pure(def, argc);
}

bool cmd_multi_script(const struct cmd_def *def) {
    return (def->flags & CMD_SCRIPT) && def->exec == cmd_eval_elsewhere;
}

int cmd_multi_walk(uint32_t argc, const struct resp_arg *argv, const struct cmd_multi_walk *w) {
    for (int pass = 0; pass < 2; pass++) { /* check, then call */
        uint64_t at = 1, n_watch, n_cmds;
        if (at >= argc || !cmd_multi__count(&argv[at], argc, &n_watch)) return -1;
        at++;
        if (n_watch > (argc - at) / 2) return -1;
        for (uint64_t i = 0; i < n_watch; i++, at += 2) {
            if (argv[at + 1].len != 16) return -1;
            if (pass == 1 && w->on_watch) w->on_watch(w->ctx, &argv[at], &argv[at + 1]);
        }
        if (at >= argc || !cmd_multi__count(&argv[at], argc, &n_cmds)) return -1;
        at++;
        for (uint64_t i = 0; i < n_cmds; i++) {
            uint64_t sub;
            if (at >= argc || !cmd_multi__count(&argv[at], argc - at - 1, &sub) || sub == 0) {
                return -1;
            }
            at++;
            const struct cmd_def *def = cmd_lookup(argv[at].data, argv[at].len);
            if (def == NULL || !cmd_arity_ok(def, (uint32_t)sub) ||
                !(cmd_multi_allowed(def, (uint32_t)sub) || (w->scripts && cmd_multi_script(def)))) {
                return -1;
            }
            if (pass == 1 && w->on_cmd) w->on_cmd(w->ctx, def, (uint32_t)sub, &argv[at]);
            at += sub;
        }
        if (at != argc) return -1;
    }
    return 0;
}

/* ---- keys (routing: every key of the transaction) ---- */

struct cmd_multi__keys {
    void (*cb)(void *ctx, const struct resp_arg *key);
    void *ctx;
};

static void cmd_multi__key_of_watch(void *ctx, const struct resp_arg *key,
                                    const struct resp_arg *digest) {
    (void)digest;
    struct cmd_multi__keys *k = ctx;
    k->cb(k->ctx, key);
}

static void cmd_multi__keys_of_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                                   const struct resp_arg *argv) {
    struct cmd_multi__keys *k = ctx;
    cmd_keys(def, argc, argv, k->cb, k->ctx);
}

void cmd_multi_keys(uint32_t argc, const struct resp_arg *argv, bool scripts,
                    void (*cb)(void *ctx, const struct resp_arg *key), void *ctx) {
    struct cmd_multi__keys k = {.cb = cb, .ctx = ctx};
    struct cmd_multi_walk w = {cmd_multi__key_of_watch, cmd_multi__keys_of_cmd, &k, scripts};
    (void)cmd_multi_walk(argc, argv, &w);
}

/* ---- maxmemory (Redis's denyoom) ---- */

static void cmd_multi__denyoom_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                                   const struct resp_arg *argv) {
    (void)argc;
    (void)argv;
    /* a queued script may write anything: as a command that adds data */
    if (def->flags & (CMD_DENYOOM | CMD_SCRIPT)) *(bool *)ctx = true;
}

bool cmd_denies_oom(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv) {
    if (def->flags & CMD_DENYOOM) return true;
    if (def->exec != cmd_shoal_exec && def->exec != cmd_shoal_execscript) return false;
    bool deny = false;
    struct cmd_multi_walk w = {NULL, cmd_multi__denyoom_cmd, &deny,
                               def->exec == cmd_shoal_execscript};
    (void)cmd_multi_walk(argc, argv, &w);
    return deny;
}

/* ---- SHOAL.EXEC ---- */

static void cmd_multi__hex(uint64_t v, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)v); }

struct cmd_multi__run {
    const struct cmd_env *env;
    struct resp_out *out;
    bool changed;
    uint64_t n_cmds;
};

static void cmd_multi__check(void *ctx, const struct resp_arg *key,
                             const struct resp_arg *digest) {
    struct cmd_multi__run *r = ctx;
    char now[17];
    cmd_multi__hex(kv_key_digest(r->env->kv, key->data, key->len, r->env->now_ms), now);
#ifdef CANARY_WATCH_IGNORED /* canary: EXEC runs whatever happened to the watched keys */
    (void)digest;
#else
    if (memcmp(now, digest->data, 16) != 0) r->changed = true;
#endif
}

static void cmd_multi__count_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                                 const struct resp_arg *argv) {
    (void)def, (void)argc, (void)argv;
    ((struct cmd_multi__run *)ctx)->n_cmds++;
}

void cmd_multi_run(const struct cmd_env *env, const struct cmd_def *def, uint32_t argc,
                   const struct resp_arg *argv, struct resp_out *out) {
    assert(def->exec != NULL || cmd_multi__pure(def, argc));
    if (def->exec != NULL) {
        cmd_exec(env, def, argc, argv, out);
    } else if (strcmp(def->name, "unwatch") == 0) {
        resp_write_simple(out, "OK", 2);
    } else if (argc == 1) {
        resp_write_simple(out, "PONG", 4);
    } else {
        resp_write_bulk(out, argv[1].data, argv[1].len);
    }
}

static void cmd_multi__run_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                               const struct resp_arg *argv) {
    struct cmd_multi__run *r = ctx;
    cmd_multi_run(r->env, def, argc, argv, r->out);
}

CMD_FN(cmd_shoal_exec) {
    struct cmd_multi__run r = {.env = env, .out = out};
    struct cmd_multi_walk check = {cmd_multi__check, cmd_multi__count_cmd, &r, false};
    if (cmd_multi_walk(argc, argv, &check) != 0) {
        resp_write_errorf(out, "ERR SHOAL.EXEC: not a transaction the node built");
        return;
    }
    if (r.changed) {
        resp_write_null_array(out); /* a watched key changed: nothing runs */
        return;
    }
    resp_write_array(out, r.n_cmds);
    struct cmd_multi_walk run = {NULL, cmd_multi__run_cmd, &r, false};
    (void)cmd_multi_walk(argc, argv, &run);
}

/* ---- SHOAL.WATCH ---- */

CMD_FN(cmd_shoal_watch) {
    resp_write_array(out, (uint64_t)(argc - 1) * 2);
    for (uint32_t i = 1; i < argc; i++) {
        char hex[17];
        cmd_multi__hex(kv_key_digest(env->kv, argv[i].data, argv[i].len, env->now_ms), hex);
        resp_write_bulk(out, argv[i].data, argv[i].len);
        resp_write_bulk(out, hex, 16);
    }
}

/* ---- SHOAL.SCRIPT ----
 *
 *   SHOAL.SCRIPT <now_ms> <seed> <w> <key> <digest> ... <n> <argc> <arg> ...
 *
 * A script's writes (src/script/script.h): past now_ms and seed, the form
 * of SHOAL.EXEC. The leader ran the script with this now_ms and seed and
 * took each key's digest before the script touched it; if every key still
 * has it here, the writes run with the same now_ms and seed (so SPOP picks
 * the same members, an EX the same expiry) and the reply is +OK; else
 * none runs and the reply is a null array: the leader runs the script
 * again. The writes' own replies are not kept: the client's reply is the
 * one the leader's run produced, which the same writes on the same keys
 * reproduce. */

CMD_FN(cmd_shoal_script) {
    int64_t now_ms, seed;
    if (argc < 6 || !cmd_parse_i64(argv[1].data, argv[1].len, &now_ms) ||
        !cmd_parse_i64(argv[2].data, argv[2].len, &seed)) {
        resp_write_errorf(out, "ERR SHOAL.SCRIPT: not a script the node built");
        return;
    }
    struct cmd_env at = *env;
    at.now_ms = now_ms;
    at.seed = (uint64_t)seed;
    struct cmd_multi__run r = {.env = &at, .out = out};
    struct cmd_multi_walk check = {cmd_multi__check, cmd_multi__count_cmd, &r, false};
    if (cmd_multi_walk(argc - 2, argv + 2, &check) != 0) {
        resp_write_errorf(out, "ERR SHOAL.SCRIPT: not a script the node built");
        return;
    }
#ifdef CANARY_SCRIPT_DIGEST_IGNORED /* canary: a script's writes run whatever changed its keys */
    r.changed = false;
#endif
    if (r.changed) {
        resp_write_null_array(out);
        return;
    }
    struct resp_out discard;
    resp_out_init(&discard, resp_out_proto(out), (size_t)1 << 30, NULL);
    r.out = &discard;
    struct cmd_multi_walk run = {NULL, cmd_multi__run_cmd, &r, false};
    (void)cmd_multi_walk(argc - 2, argv + 2, &run);
    resp_out_free(&discard);
    resp_write_simple(out, "OK", 2);
}

CMD_FN(cmd_eval_elsewhere) {
    (void)env, (void)argc;
    resp_write_errorf(out, "ERR '%.*s' is run by the node, not inside a log entry",
                      (int)(argv[0].len < 32 ? argv[0].len : 32), argv[0].data);
}

CMD_FN(cmd_shoal_execscript) {
    (void)env, (void)argc, (void)argv;
    resp_write_errorf(out, "ERR SHOAL.EXECSCRIPT is run by the node, not inside a log entry");
}
