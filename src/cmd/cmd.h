/* cmd.h: the command table and the execution of keyspace commands (pure:
 * no I/O, no clock; time and randomness are passed in).
 *
 * A command reaches the keyspace in one of two ways:
 *   - a write (CMD_WRITE) is encoded with cmd_entry_encode() together with
 *     the leader's clock reading, proposed through Raft, and executed by
 *     cmd_exec() on every replica when its entry is applied, with the
 *     entry's timestamp as now_ms: every replica computes the same result
 *     (relative expiries become the same absolute times);
 *   - a read (CMD_READONLY) is executed by cmd_exec() on one replica once a
 *     ReadIndex confirmed it is current, with that node's clock.
 * Commands flagged CMD_NODE (PING, INFO, CLIENT, ...) are answered by the
 * node itself and never reach cmd_exec().
 *
 * Replies follow Redis 7.0 byte for byte, including error wording. */
#ifndef SHOAL_CMD_H
#define SHOAL_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "resp/resp.h"

enum cmd_flags {
    CMD_WRITE = 1 << 0,    /* changes the keyspace: goes through the log */
    CMD_READONLY = 1 << 1, /* reads the keyspace: needs a ReadIndex */
    CMD_NODE = 1 << 2,     /* answered by the node (connection, server state) */
    CMD_FAST = 1 << 3,     /* O(1) or O(log n) (COMMAND INFO's "fast") */
    CMD_ADMIN = 1 << 4,
    CMD_NOSCRIPT = 1 << 5,
    CMD_LOADING = 1 << 6,  /* allowed while loading (COMMAND INFO) */
    CMD_STALE = 1 << 7,    /* allowed with stale data (COMMAND INFO) */
    CMD_NUMKEYS = 1 << 8,  /* argv[first_key] is a key count, the keys follow it */
    CMD_DSTKEY = 1 << 9,   /* with CMD_NUMKEYS: argv[1] is a key too (ZUNIONSTORE) */
    CMD_BLOCKING = 1 << 10, /* may wait for its keys (BLPOP, BLMOVE, ...): see cmd_block */
    CMD_STREAMKEYS = 1 << 11, /* the keys follow STREAMS (XREAD, XREADGROUP): movable */
    CMD_SCRIPT = 1 << 12,  /* EVAL and friends: run by the node's Lua engine (src/script/) */
    CMD_NOTOUCH = 1 << 13, /* leaves its keys' access clocks (Redis's LOOKUP_NOTOUCH) */
    CMD_DENYOOM = 1 << 14, /* may add data: refused past maxmemory (Redis's "denyoom") */
};

struct cmd_env;

/* A keyspace command's implementation (NULL for CMD_NODE commands). */
typedef void (*cmd_fn)(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                       struct resp_out *out);

struct cmd_def {
    const char *name;    /* lower case */
    cmd_fn exec;
    int32_t arity;       /* Redis's convention: N exactly, -N at least N */
    uint32_t flags;      /* enum cmd_flags */
    int8_t first_key;    /* 0: no keys */
    int8_t last_key;     /* -1: the last argument */
    int8_t key_step;
    const char *group;   /* COMMAND DOCS */
    const char *summary; /* COMMAND DOCS */
    const char *since;   /* COMMAND DOCS */
};

/* The table, and its size. */
extern const struct cmd_def cmd_table[];
extern const uint32_t cmd_table_count;

/* The command named name[0, len), case-insensitive, or NULL. */
const struct cmd_def *cmd_lookup(const char *name, size_t len);

/* Whether the command may add data, so that a node past its maxmemory
 * refuses it (Redis's "denyoom"): CMD_DENYOOM, and a transaction
 * (SHOAL.EXEC, SHOAL.EXECSCRIPT) that holds such a command or a script, as
 * Redis refuses an EXEC whose queue holds one. */
bool cmd_denies_oom(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv);

/* Whether the command may be queued in a transaction (SHOAL.EXEC). */
bool cmd_multi_allowed(const struct cmd_def *def, uint32_t argc);
/* Whether it is a script (EVAL, EVALSHA, FCALL and their _RO forms): it may
 * be queued too, and makes the transaction a SHOAL.EXECSCRIPT, which the
 * node runs on the leader as one script (cmd_multi.c). */
bool cmd_multi_script(const struct cmd_def *def);

/* The form of SHOAL.EXEC and SHOAL.EXECSCRIPT, from argv[1]:
 *   <w> <key> <digest> ... (w pairs) <n> <argc> <arg> ... (n commands)
 * cmd_multi_walk checks the whole form first (each command known, of a
 * right arity, allowed in a transaction: scripts only if `scripts`), then
 * calls on_watch for each pair and on_cmd for each command, in order
 * (either may be NULL); 0, or -1 if malformed (nothing called). */
struct cmd_multi_walk {
    void (*on_watch)(void *ctx, const struct resp_arg *key, const struct resp_arg *digest);
    void (*on_cmd)(void *ctx, const struct cmd_def *def, uint32_t argc,
                   const struct resp_arg *argv);
    void *ctx;
    bool scripts;
};
int cmd_multi_walk(uint32_t argc, const struct resp_arg *argv, const struct cmd_multi_walk *w);

/* Whether argc fits the command's arity. */
bool cmd_arity_ok(const struct cmd_def *def, uint32_t argc);

/* Writes Redis's errors for an unknown command and a wrong arity. */
void cmd_reply_unknown(struct resp_out *out, uint32_t argc, const struct resp_arg *argv);
void cmd_reply_arity(struct resp_out *out, const struct cmd_def *def);

/* COMMAND GETKEYS answers at most this many keys. */
#define CMD_GETKEYS_MAX 100000u
/* The keys of a command, from its key spec: calls cb for each. */
void cmd_keys(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
              void (*cb)(void *ctx, const struct resp_arg *key), void *ctx);

/* ---- blocking commands ------------------------------------------------
 *
 * A CMD_BLOCKING command (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) is
 * executed by cmd_exec() as Redis executes it inside MULTI: it never
 * waits. It pops if one of its keys holds something, answers an error
 * (WRONGTYPE, syntax), or answers a null (RESP2 `*-1` or `$-1`, RESP3 `_`)
 * when every key it waits on is empty: "would block". The waiting itself
 * is the node's (src/node/block.c): it holds the client and sends the same
 * command through the log again when one of the keys may hold something.
 * So a blocking pop is always an ordinary write, applied alike on every
 * replica, and the framework knows nothing of lists: a blocking command
 * of another type (BZPOPMIN) needs a table entry, cmd_exec's would-block
 * null, and a case in cmd_block_spec. */
struct cmd_block {
    uint64_t timeout_ms;  /* 0: wait forever; saturated at UINT64_MAX */
    uint32_t key_first;   /* the keys it waits on: argv[key_first, key_first + key_count) */
    uint32_t key_count;
    uint32_t numkeys_arg; /* the argument holding key_count (BLMPOP), or 0 */
    uint8_t type;         /* the kv type those keys must hold (KV_TYPE_LIST) */
    bool ids_follow;      /* key i's id is argv[key_first + key_count + i] (XREAD) */
};

/* Whether this call of a CMD_BLOCKING command may wait: XREAD and
 * XREADGROUP only with BLOCK (without, they are a read and a write). */
bool cmd_block_wanted(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv);

/* Before a client first waits: XREAD's `$` ids become the stream's last id
 * now (Redis does the same), so a later attempt through the log does not
 * skip what was added meanwhile. Rewrites argv[i] to point into bufs
 * (CMD_XID_BYTES per key of spec). */
#define CMD_XID_BYTES 48u
void cmd_block_resolve(const struct kv *kv, int64_t now_ms, const struct cmd_def *def,
                       const struct cmd_block *spec, struct resp_arg *argv, char *bufs);

/* How many attempts key i of a waiting command may usefully get now: the
 * elements of a list or sorted set; for XREAD, unbounded if the stream has
 * an entry after the waiter's id, else 0; for XREADGROUP, the entries after
 * the group's last id (at most CMD_XREADGROUP_READY_MAX; 1 if the group is
 * gone: the attempt answers NOGROUP). */
#define CMD_XREADGROUP_READY_MAX 1024u
uint64_t cmd_block_available(const struct kv *kv, int64_t now_ms, const struct cmd_def *def,
                             const struct cmd_block *spec, uint32_t argc,
                             const struct resp_arg *argv, uint32_t i);

/* Checks a CMD_BLOCKING command's arguments (all but the keyspace) in
 * Redis's order and fills *spec; false after writing the error to out. */
bool cmd_block_spec(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
                    struct cmd_block *spec, struct resp_out *out);

/* Whether a reply is a null: RESP2 `*-1` or `$-1`, RESP3 `_`. A blocking
 * command's null is "would block" (see above). */
bool cmd_reply_is_null(const char *data, size_t len);

/* Where a command runs. */
struct cmd_env {
    struct kv *kv;
    int64_t now_ms;       /* the entry's timestamp (writes) or the clock (reads) */
    struct rand *rng;     /* reads only (RANDOMKEY, SRANDMEMBER): replicas differ */
    uint64_t seed;        /* writes: the same on every replica for one log entry (SPOP) */
    uint64_t bulk_max;    /* proto-max-bulk-len: largest string a command may build */
};

/* Executes a CMD_WRITE or CMD_READONLY command whose arity was checked and
 * writes its reply to out. Writes are deterministic given (keyspace,
 * now_ms, argv). Then, unless CMD_NOTOUCH, marks each of its keys that
 * exists as accessed at now_ms (kv_touch: OBJECT IDLETIME), as Redis's
 * lookupKey() does for every key a command reads or writes. */
void cmd_exec(const struct cmd_env *env, const struct cmd_def *def, uint32_t argc,
              const struct resp_arg *argv, struct resp_out *out);
/* Runs one command of a transaction as SHOAL.EXEC does: cmd_exec, or the
 * answer in place of PING, ECHO and UNWATCH (cmd_multi_allowed's). */
void cmd_multi_run(const struct cmd_env *env, const struct cmd_def *def, uint32_t argc,
                   const struct resp_arg *argv, struct resp_out *out);

/* ---- the log entry of a write ------------------------------------------
 *
 *   u8 version (1) | i64 now_ms | u32 argc | argc * (u32 len | len bytes)
 *
 * little-endian. cmd_entry_decode() checks every length against the entry
 * before using it; argv points into the entry (no copy). */
#define CMD_ENTRY_VERSION 1
#define CMD_ENTRY_ARGS_MAX (1u << 20)

/* Bytes cmd_entry_encode() will write. */
size_t cmd_entry_size(uint32_t argc, const struct resp_arg *argv);
/* Encodes into buf (of cmd_entry_size() bytes). */
void cmd_entry_encode(uint8_t *buf, int64_t now_ms, uint32_t argc, const struct resp_arg *argv);
/* Argument i of an encoded entry, without decoding the rest or allocating:
 * 0, or -1 if the entry is malformed or has no argument i. */
int cmd_entry_arg(const uint8_t *buf, size_t len, uint32_t i, struct resp_arg *out);
/* The clock an entry carries (the proposing leader's ms); -1 if malformed. */
int cmd_entry_clock(const uint8_t *buf, size_t len, int64_t *now_ms);
/* Decodes; *argv is allocated (free() it). Returns 0 or -1 on a malformed
 * entry (which a replica treats as corruption: it stops). */
int cmd_entry_decode(const uint8_t *buf, size_t len, int64_t *now_ms, uint32_t *argc,
                     struct resp_arg **argv) __attribute__((warn_unused_result));

/* Pops from sorted sets, as Redis 7.0's genericZpopCommand(): from the
 * first of keys[0, nkeys) that exists (WRONGTYPE if it is not a sorted
 * set), up to count elements (-1: one) from the lowest (or the highest,
 * max), each member then its score; the reply's shape: emit_key puts the
 * key first (ZMPOP, BZPOPMIN), nested makes each element a 2-array and
 * the elements one array (ZMPOP; ZPOPMIN with a count in RESP3); with no
 * key, a null array (nil_when_empty) or an empty one. A write: run it where
 * writes run (the log's apply), as ZPOPMIN/ZMPOP do; the blocking forms
 * call it when their key has elements. */
void cmd_zset_pop(const struct cmd_env *env, const struct resp_arg *keys, uint32_t nkeys,
                  bool max, int64_t count, bool emit_key, bool nested, bool nil_when_empty,
                  struct resp_out *out);

/* XREAD's and XREADGROUP's keys, as Redis's xreadGetKeys(): true with
 * argv[*first, *first + *count), false if there are none. */
bool cmd_xread_keys(uint32_t argc, const struct resp_arg *argv, uint32_t *first,
                    uint32_t *count);

/* Redis's string2ll: strict decimal, no sign '+', no leading zeros or
 * spaces, within int64. */
bool cmd_parse_i64(const char *s, size_t len, int64_t *out);

/* ---- FUNCTION (cmd_func.c) ---- */

/* FUNCTION's subcommand and arity checked as Redis does: true, or false
 * after writing the error to out. */
bool cmd_function_args_ok(uint32_t argc, const struct resp_arg *argv, struct resp_out *out);
/* Whether it is LOAD, DELETE, FLUSH or RESTORE (the node makes those a
 * SHOAL.FUNCTION entry). */
bool cmd_function_is_write(uint32_t argc, const struct resp_arg *argv);
/* Of those, LOAD and RESTORE add a library (Redis's denyoom ones). */
bool cmd_function_adds(uint32_t argc, const struct resp_arg *argv);
/* A FUNCTION DUMP payload's block of libraries (version, checksum and
 * every record checked): true and *block, or false. */
bool cmd_function_payload(const uint8_t *p, size_t len, const uint8_t **block,
                          size_t *block_len);

#endif
