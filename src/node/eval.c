/* eval.c: scripts on the node: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and
 * SCRIPT (docs/scripting.md). The Lua engine (src/script/) is pure; this
 * file gives it the shard's keyspace, the clock and the shard test, and
 * shard.c moves a job through the log:
 *
 *   1. eval_start queues the job as a read: it waits for a ReadIndex, so
 *      its run sees every write acknowledged before it;
 *   2. at the read point shard.c calls eval_run: the script runs against
 *      the applied keyspace, which it leaves as it found it. No writes:
 *      the reply goes to the client now. Writes: the reply is kept and
 *      SHOAL.SCRIPT is queued as a write;
 *   3. when that entry applies (on every replica, this one included) its
 *      digests are checked: +OK, and the client gets the kept reply; a
 *      null (a key changed between the run and the entry), and the job
 *      runs again (eval_retry), this time only once nothing else of the
 *      shard is in flight, so that the next entry follows the state the
 *      run saw. A script that read the whole keyspace (DBSIZE, KEYS, SCAN)
 *      and wrote waits for that before its first run is proposed.
 *
 * A script that errors after writes keeps them (Redis does); one stopped at
 * the time limit keeps none. The engine's scripts cache is this node's, as
 * in Redis Cluster: a proxy that knows an EVALSHA's script forwards it as
 * EVAL (eval_sha_to_body). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_int.h"
#include "script/script.h"

struct eval_job {
    unsigned mode; /* enum script_mode */
    uint32_t argc;
    struct resp_arg *argv; /* node_argv_copy of the EVAL */
    uint32_t tries;
    bool quiesce; /* run only when nothing else of the shard is in flight */
    char *reply;
    size_t reply_len;
};

static struct script_engine *eval__engine(struct node *n) {
    if (n->scripts == NULL) n->scripts = script_engine_create();
    return n->scripts;
}

void eval_free(struct node *n) {
    script_engine_destroy(n->scripts);
    n->scripts = NULL;
}

void eval_job_free(struct eval_job *j) {
    if (j == NULL) return;
    free(j->argv);
    free(j->reply);
    free(j);
}

void eval_start(struct client *c, struct shard *s, struct slot *slot, const struct cmd_def *def,
                uint32_t argc, const struct resp_arg *argv) {
    struct eval_job *j = calloc(1, sizeof(*j));
    if (j != NULL) j->argv = node_argv_copy(argc, argv);
    if (j == NULL || j->argv == NULL) {
        free(j);
        slot_set_error(c, slot, "OOM out of memory for the script");
        return;
    }
    j->mode = script_mode(def->name);
    j->argc = argc;
    c->evals_pending++; /* until answered (shard.c): a pipelined command waits */
    shard_eval(c->node, s, c, slot, false, argc, argv, j);
}

bool eval_quiet(const struct shard *s) {
    if (s->applied != raft_last_index(s->raft)) return false;
    for (uint32_t i = 0; i < s->n_queued; i++) {
        if (s->queued[i].is_write && s->queued[i].c != NULL) return false;
    }
    return true;
}

bool eval_ready(const struct shard *s, const struct eval_job *j) {
    return !j->quiesce || eval_quiet(s);
}

bool eval_retry(struct eval_job *j) {
    if (j->tries >= EVAL_TRIES_MAX) return false;
    j->tries++;
    j->quiesce = true;
    free(j->reply);
    j->reply = NULL;
    j->reply_len = 0;
    return true;
}

void eval_job_argv(const struct eval_job *j, uint32_t *argc, const struct resp_arg **argv) {
    *argc = j->argc;
    *argv = j->argv;
}

bool eval_keep_reply(struct eval_job *j, const struct resp_out *out) {
    size_t len = resp_out_len(out);
    free(j->reply);
    j->reply = malloc(len ? len : 1);
    if (j->reply == NULL) return false;
    memcpy(j->reply, resp_out_data(out), len);
    j->reply_len = len;
    return true;
}

const char *eval_reply(const struct eval_job *j, size_t *len) {
    *len = j->reply_len;
    return j->reply;
}

struct eval__here {
    const struct node *n;
    uint32_t shard;
};

static bool eval__key_here(void *ctx, const struct resp_arg *key) {
    const struct eval__here *h = ctx;
    return map_shard_of_slot(&h->n->map, slot_of_key(key->data, key->len)) == h->shard;
}

static uint64_t eval__clock(void *ctx) { return node_mono_ms(ctx); }

void eval_run(struct shard *s, struct eval_job *j, uint8_t proto, struct resp_out *out,
              struct script_result *res) {
    struct node *n = s->node;
    memset(res, 0, sizeof(*res));
    struct script_engine *e = eval__engine(n);
    if (e == NULL) {
        resp_write_errorf(out, "OOM out of memory for the Lua engine");
        return;
    }
    /* a script blocks the loop, and with it this node's heartbeats: it
     * stops well before a follower would call an election */
    uint32_t limit = n->cfg.tick_ms * n->cfg.election_ticks / 2;
    /* busy-reply-threshold (alias lua-time-limit; CONFIG SET takes it) */
    int64_t busy = n->cfg.redis[NODE_REDIS_BUSY_REPLY_MS];
    if (busy > 0 && busy < (int64_t)limit) limit = (uint32_t)busy;
    struct eval__here here = {.n = n, .shard = s->index};
    struct script_ctx ctx = {
        .kv = s->kv,
        .rng = &s->rng,
        .now_ms = (int64_t)node_now_ms(n),
        .seed = rand_u64(&s->rng) >> 1, /* carried in the entry: < 2^63 */
        .bulk_max = KV_VALUE_BYTES_LIMIT,
        .proto = proto,
        .time_limit_ms = limit,
        .clock_ms = eval__clock,
        .clock_ctx = n,
        .key_here = eval__key_here,
        .key_ctx = &here,
        .oom = node_oom(n, s->index),
    };
    int rc = j->mode & SCRIPT_MULTI ? script_exec_multi(e, &ctx, j->argc, j->argv, out, res)
                                    : script_eval(e, &ctx, j->mode, j->argc, j->argv, out, res);
    if (rc != 0) {
        node_fatal(n, "group %llu: a script's written key could not be put back (out of "
                      "memory): the keyspace no longer matches the log",
                   (unsigned long long)s->group);
    }
    if (res->stopped) n->stats.scripts_stopped++;
    n->stats.scripts++;
}

/* ---- SCRIPT ---- */

static bool eval__is(const struct resp_arg *a, const char *w) {
    size_t len = strlen(w);
    return a->len == len && strncasecmp(a->data, w, len) == 0;
}

static const char *const eval__help[] = {
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
};

static void eval__arity(struct resp_out *out, const char *sub) {
    resp_write_errorf(out, "ERR wrong number of arguments for 'script|%s' command", sub);
}

void eval_script_command(struct client *c, uint32_t argc, const struct resp_arg *argv,
                         struct resp_out *out) {
    struct node *n = c->node;
    const struct resp_arg *sub = &argv[1];
    struct script_engine *e = eval__engine(n);
    if (e == NULL) {
        resp_write_errorf(out, "OOM out of memory for the Lua engine");
        return;
    }
    if (eval__is(sub, "help") && argc == 2) {
        size_t lines = sizeof(eval__help) / sizeof(eval__help[0]);
        resp_write_array(out, lines);
        for (size_t i = 0; i < lines; i++) {
            resp_write_simple(out, eval__help[i], strlen(eval__help[i]));
        }
    } else if (eval__is(sub, "load")) {
        if (argc != 3) return eval__arity(out, "load");
        char sha[41];
        if (script_load(e, argv[2].data, argv[2].len, sha, out) == 0) {
            resp_write_bulk(out, sha, 40);
        }
    } else if (eval__is(sub, "exists")) {
        if (argc < 3) return eval__arity(out, "exists");
        resp_write_array(out, argc - 2);
        for (uint32_t i = 2; i < argc; i++) {
            resp_write_int(out, script_exists(e, argv[i].data, argv[i].len) ? 1 : 0);
        }
    } else if (eval__is(sub, "flush")) {
        bool mode_ok = argc == 2 || (argc == 3 && (eval__is(&argv[2], "sync") ||
                                                    eval__is(&argv[2], "async")));
        if (!mode_ok) {
            resp_write_errorf(out, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            return;
        }
        script_flush(e);
        resp_write_simple(out, "OK", 2);
    } else if (eval__is(sub, "kill")) {
        if (argc != 2) return eval__arity(out, "kill");
        /* A script runs within one turn of the loop, so none is ever running
         * when a command is read: the time limit stops long ones. */
        resp_write_errorf(out, "NOTBUSY No scripts in execution right now.");
    } else if (eval__is(sub, "debug")) {
        resp_write_errorf(out, "ERR SCRIPT DEBUG is not supported by shoal");
    } else {
        resp_write_errorf(out, "ERR unknown subcommand '%.*s'. Try SCRIPT HELP.",
                          (int)(sub->len < 128 ? sub->len : 128), sub->data);
    }
}

/* EVALSHA or EVALSHA_RO at argv[0] whose script e has: rewrites
 * copy[0, 2) as EVAL or EVAL_RO with the body (the engine's); false if
 * it is not one, or e has not the script. */
static bool eval__sha_body(const struct script_engine *e, const struct resp_arg *argv,
                           struct resp_arg *copy) {
    if (argv[0].len < 7 || strncasecmp(argv[0].data, "evalsha", 7) != 0) return false;
    size_t len;
    const char *body = script_body(e, argv[1].data, argv[1].len, &len);
    if (body == NULL) return false;
    bool ro = argv[0].len == 10; /* evalsha_ro */
    copy[0] = ro ? (struct resp_arg){"eval_ro", 7} : (struct resp_arg){"eval", 4};
    copy[1] = (struct resp_arg){body, len};
    return true;
}

struct eval__bodies {
    const struct script_engine *e;
    const struct resp_arg *argv; /* the transaction's */
    struct resp_arg *copy;
    bool any;
};

static void eval__body_of_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                              const struct resp_arg *argv) {
    struct eval__bodies *b = ctx;
    if (!cmd_multi_script(def) || argc < 3) return;
    size_t at = (size_t)(argv - b->argv);
    if (eval__sha_body(b->e, argv, b->copy + at)) b->any = true;
}

struct resp_arg *eval_sha_to_body(struct node *n, uint32_t argc, const struct resp_arg *argv) {
    if (n->scripts == NULL || argc < 3) return NULL;
    bool multi = argv[0].len == 16 && strncasecmp(argv[0].data, "shoal.execscript", 16) == 0;
    struct resp_arg *copy = malloc(argc * sizeof(*copy));
    if (copy == NULL) return NULL;
    memcpy(copy, argv, argc * sizeof(*copy));
    bool any = false;
    if (multi) { /* every EVALSHA of the transaction */
        struct eval__bodies b = {.e = n->scripts, .argv = argv, .copy = copy};
        struct cmd_multi_walk w = {NULL, eval__body_of_cmd, &b, true};
        any = cmd_multi_walk(argc, argv, &w) == 0 && b.any;
    } else {
        any = eval__sha_body(n->scripts, argv, copy);
    }
    if (!any) {
        free(copy);
        return NULL;
    }
    return copy;
}

/* ---- FUNCTION LOAD, DELETE, FLUSH, RESTORE ---- */

void eval_function_free(struct eval_function *f) {
    free(f->mem);
    memset(f, 0, sizeof(*f));
}

/* FUNCTION LOAD [REPLACE] <code>: the library checked by this node's
 * engine, as SHOAL.FUNCTION LOAD <0|1> <record>. */
static bool eval__function_load(struct script_engine *e, uint32_t argc,
                                const struct resp_arg *argv, struct eval_function *f,
                                struct resp_out *out) {
    bool replace = false;
    for (uint32_t i = 2; i + 1 < argc; i++) {
        if (!eval__is(&argv[i], "replace")) {
            resp_write_errorf(out, "ERR Unknown option given: %.*s",
                              (int)(argv[i].len < 128 ? argv[i].len : 128), argv[i].data);
            return false;
        }
        replace = true;
    }
    size_t len;
    if (script_library_check(e, argv[argc - 1].data, argv[argc - 1].len, &f->mem, &len, out) != 0) {
        return false;
    }
    f->argc = 4;
    f->argv[2] = replace ? (struct resp_arg){"1", 1} : (struct resp_arg){"0", 1};
    f->argv[3] = (struct resp_arg){f->mem, len};
    return true;
}

/* FUNCTION RESTORE <payload> [policy]: every library checked again here
 * (its record made anew from its code), as SHOAL.FUNCTION RESTORE
 * <policy> <block>. */
static bool eval__function_restore(struct script_engine *e, uint32_t argc,
                                   const struct resp_arg *argv, struct eval_function *f,
                                   struct resp_out *out) {
    const struct resp_arg *policy = argc == 4 ? &argv[3] : NULL;
    if (policy != NULL && !eval__is(policy, "flush") && !eval__is(policy, "append") &&
        !eval__is(policy, "replace")) {
        resp_write_errorf(out, "ERR Wrong restore policy given, value should be either FLUSH, "
                               "APPEND or REPLACE.");
        return false;
    }
    const uint8_t *block;
    size_t block_len;
    struct kv_config kc;
    kv_config_default(&kc);
    struct kv *in = kv_create(&kc);
    if (!cmd_function_payload((const uint8_t *)argv[2].data, argv[2].len, &block, &block_len) ||
        in == NULL || kv_libs_block_load(in, block, block_len) != KV_OK) {
        kv_destroy(in);
        resp_write_errorf(out, "ERR DUMP payload version or checksum are wrong");
        return false;
    }
    struct kv *checked = kv_create(&kc);
    bool ok = checked != NULL;
    for (uint32_t i = 0; ok && i < kv_lib_count(in); i++) {
        const struct kv_lib *lib = kv_lib_at(in, i);
        char *rec = NULL;
        size_t rec_len;
        ok = script_library_check(e, lib->code, lib->code_len, &rec, &rec_len, out) == 0;
        if (ok && kv_lib_put(checked, (const uint8_t *)rec, rec_len) != KV_OK) {
            resp_write_errorf(out, "ERR DUMP payload version or checksum are wrong");
            ok = false;
        }
        free(rec);
    }
    if (ok) {
        size_t len = (size_t)kv_libs_block_bytes(checked);
        f->mem = malloc(len);
        if (f->mem != NULL) kv_libs_block_write(checked, (uint8_t *)f->mem);
        else resp_write_errorf(out, "OOM out of memory for FUNCTION RESTORE");
        ok = f->mem != NULL;
        f->argc = 4;
        f->argv[2] = policy != NULL ? *policy : (struct resp_arg){"append", 6};
        f->argv[3] = (struct resp_arg){f->mem, len};
    }
    kv_destroy(in);
    kv_destroy(checked);
    return ok;
}

bool eval_function_prepare(struct node *n, uint32_t argc, const struct resp_arg *argv,
                           struct eval_function *f, struct resp_out *out) {
    memset(f, 0, sizeof(*f));
    if (!cmd_function_args_ok(argc, argv, out)) return false;
    struct script_engine *e = eval__engine(n);
    if (e == NULL) {
        resp_write_errorf(out, "OOM out of memory for the Lua engine");
        return false;
    }
    f->argv[0] = (struct resp_arg){"shoal.function", 14};
    f->argv[1] = argv[1];
    f->argc = 2;
    if (eval__is(&argv[1], "load")) return eval__function_load(e, argc, argv, f, out);
    if (eval__is(&argv[1], "restore")) return eval__function_restore(e, argc, argv, f, out);
    if (eval__is(&argv[1], "delete")) f->argv[f->argc++] = argv[2];
    return true; /* FLUSH [SYNC|ASYNC]: the mode changes nothing here */
}
