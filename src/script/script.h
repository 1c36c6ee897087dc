/* script.h: Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT) as
 * Redis 7.0 runs it, over one keyspace, without I/O: the caller passes the
 * keyspace, the time, a monotonic clock for the time limit and a test for
 * "is this key in my shard". See docs/scripting.md.
 *
 * A run executes every redis.call at once against the keyspace (a script
 * reads its own writes) while it records, in order:
 *   - each key it touches (read or written), with its digest
 *     (kv_key_digest) as it was before the script touched it;
 *   - a copy of each key before its first write, in an undo keyspace;
 *   - every write command, as argv.
 * When the script ends (returns, errors, or is stopped at the time limit)
 * every written key is put back from the undo copy: the keyspace is as it
 * was before the run, and the caller gets the reply and, if the script
 * wrote, one command that replays the writes:
 *
 *   SHOAL.SCRIPT <now_ms> <seed> <w> <key> <digest> ... <n> <argc> <arg> ... (n commands)
 *
 * which the caller proposes as one log entry. Its apply (cmd_multi.c)
 * runs the n commands with the run's now_ms and seed if every key still
 * has its digest, else none. A stopped script records no command.
 *
 * Ownership: the engine owns its Lua state and script cache; a result
 * owns its argv (script_result_free). One engine per node; single thread. */
#ifndef SHOAL_SCRIPT_H
#define SHOAL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "resp/resp.h"

/* Limits. */
#define SCRIPT_BODY_BYTES_MAX (4u << 20)     /* one script's source */
#define SCRIPT_CACHE_MAX 10000u              /* scripts cached (then the cache is emptied) */
#define SCRIPT_CACHE_BYTES_MAX (64u << 20)   /* their sources' bytes (idem) */
#define SCRIPT_MEMORY_BYTES_MAX (512ull << 20) /* the Lua heap */
#define SCRIPT_WRITES_MAX 100000u            /* write commands of one run */
#define SCRIPT_WRITES_BYTES_MAX (64u << 20)  /* their bytes: one log entry */
#define SCRIPT_KEYS_MAX 100000u              /* keys one run touches */
#define SCRIPT_REPLY_DEPTH_MAX 1000u         /* nesting of a reply */
#define SCRIPT_HOOK_INSTRUCTIONS 10000       /* the clock is read every so many */

struct script_engine;

/* NULL if out of memory. */
struct script_engine *script_engine_create(void);
void script_engine_destroy(struct script_engine *e);

/* SCRIPT LOAD: compiles and caches body; 0 and sha (40 hex digits and a
 * NUL), or -1 after writing Redis's compile error to err. */
int script_load(struct script_engine *e, const char *body, size_t len, char sha[41],
                struct resp_out *err);
/* Whether sha (any case) is cached. */
bool script_exists(const struct script_engine *e, const char *sha, size_t len);
/* The cached body of sha, or NULL. */
const char *script_body(const struct script_engine *e, const char *sha, size_t len,
                        size_t *body_len);
/* SCRIPT FLUSH. */
void script_flush(struct script_engine *e);
uint32_t script_cached(const struct script_engine *e);

/* One run's surroundings. */
struct script_ctx {
    struct kv *kv;
    struct rand *rng;   /* reads that pick at random (SRANDMEMBER) */
    int64_t now_ms;     /* the time every command of the run sees */
    uint64_t seed;      /* the writes' seed (SPOP): carried in SHOAL.SCRIPT */
    uint64_t bulk_max;  /* proto-max-bulk-len */
    uint8_t proto;      /* the client's protocol: the reply's */
    uint32_t time_limit_ms; /* past it the script is stopped (an error) */
    uint64_t (*clock_ms)(void *ctx); /* monotonic */
    void *clock_ctx;
    /* whether key may be touched here (its shard); NULL: every key */
    bool (*key_here)(void *ctx, const struct resp_arg *key);
    void *key_ctx;
    /* past maxmemory when the run starts: a command that adds data
     * (CMD_DENYOOM) is refused until the script's first write, after which
     * it cannot stop halfway (Redis's script_oom) */
    bool oom;
};

enum script_mode {
    SCRIPT_EVAL = 0,
    SCRIPT_SHA = 1 << 0,      /* argv[1] is a sha */
    SCRIPT_RO = 1 << 1,       /* EVAL_RO, EVALSHA_RO, FCALL_RO: no writes */
    SCRIPT_FCALL = 1 << 2,    /* FCALL, FCALL_RO: argv[1] names a function of ctx->kv */
    SCRIPT_MULTI = 1 << 3,    /* SHOAL.EXECSCRIPT: a transaction (script_exec_multi) */
};

/* The mode of a command of the table, by its (lower-case) name: eval,
 * evalsha, eval_ro, evalsha_ro, fcall, fcall_ro, shoal.execscript. */
unsigned script_mode(const char *name);

struct script_result {
    /* SHOAL.SCRIPT ..., or argc 0 if the run wrote nothing */
    uint32_t argc;
    struct resp_arg *argv;
    bool keyspace_read; /* a command read the whole keyspace (DBSIZE, KEYS, SCAN...) */
    bool stopped;       /* stopped at the time limit */
    char *mem;
};

/* EVAL/EVALSHA/EVAL_RO/EVALSHA_RO with its full argv (argc >= 3, checked by
 * the table's arity): writes the reply (or the argument error) to reply,
 * fills res. Returns 0, or -1 if a written key could not be put back (out
 * of memory): the keyspace no longer matches the log; the caller stops. */
int script_eval(struct script_engine *e, const struct script_ctx *ctx, unsigned mode,
                uint32_t argc, const struct resp_arg *argv, struct resp_out *reply,
                struct script_result *res) __attribute__((warn_unused_result));
void script_result_free(struct script_result *res);

/* A transaction that holds a script, SHOAL.EXECSCRIPT's full argv (the
 * form of SHOAL.EXEC, cmd.h's cmd_multi_walk, scripts allowed), run as one
 * script: one recorded run over ctx in which
 *   - each watched key is touched and compared with the digest WATCH read:
 *     one differs, and the reply is a null array (nothing runs);
 *   - then each command runs in order: a script (EVAL, EVALSHA, FCALL and
 *     their _RO forms, with their KEYS and ARGV) as script_eval runs it,
 *     its reply converted from Lua; any other as redis.call runs it, its
 *     reply written as the command writes it (Redis's bytes). An error,
 *     of a script or a command, is that command's element; the others
 *     run (Redis's EXEC). A keyless write (FLUSHALL) answers an error.
 * The reply is EXEC's array; res as script_eval's, over the whole run:
 * one SHOAL.SCRIPT of every write, with the digests of every key touched,
 * the watched ones included. A script stopped at the time limit stops the
 * transaction: the reply is one error and nothing is recorded. Returns 0,
 * or -1 as script_eval. */
int script_exec_multi(struct script_engine *e, const struct script_ctx *ctx, uint32_t argc,
                      const struct resp_arg *argv, struct resp_out *reply,
                      struct script_result *res) __attribute__((warn_unused_result));

/* FUNCTION LOAD's check: parses the `#!lua name=<lib>` line, compiles the
 * code and runs it with Redis 7.0's load-time globals (redis.
 * register_function, redis.log), with a budget of 10M Lua instructions.
 * 0 and *rec (malloc'd, *rec_len bytes): the library record of kv.h
 * ("Function libraries") for SHOAL.FUNCTION; or -1 after writing Redis's
 * error to err. Deterministic: the same code gives the same record. */
int script_library_check(struct script_engine *e, const char *code, size_t len, char **rec,
                         size_t *rec_len, struct resp_out *err);

/* SHA1 of data as 40 lower-case hex digits and a NUL (redis.sha1hex). */
void script_sha1hex(const void *data, size_t len, char out[41]);

#endif
