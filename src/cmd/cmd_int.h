/* cmd_int.h: internal to src/cmd/: the implementations and shared helpers. */
#ifndef SHOAL_CMD_INT_H
#define SHOAL_CMD_INT_H

#include "cmd/cmd.h"

#define CMD_ERR_SYNTAX "ERR syntax error"
#define CMD_ERR_NOT_INT "ERR value is not an integer or out of range"
#define CMD_ERR_NOT_FLOAT "ERR value is not a valid float"
#define CMD_ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define CMD_ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

#define CMD_FN(name)                                                                   \
    void name(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv, \
              struct resp_out *out)

/* strings (cmd_string.c) */
CMD_FN(cmd_get);
CMD_FN(cmd_set);
CMD_FN(cmd_setnx);
CMD_FN(cmd_setex);
CMD_FN(cmd_psetex);
CMD_FN(cmd_getset);
CMD_FN(cmd_getdel);
CMD_FN(cmd_getex);
CMD_FN(cmd_mget);
CMD_FN(cmd_mset);
CMD_FN(cmd_msetnx);
CMD_FN(cmd_append);
CMD_FN(cmd_strlen);
CMD_FN(cmd_getrange);
CMD_FN(cmd_setrange);
CMD_FN(cmd_incr);
CMD_FN(cmd_decr);
CMD_FN(cmd_incrby);
CMD_FN(cmd_decrby);
CMD_FN(cmd_incrbyfloat);
CMD_FN(cmd_lcs);
/* The live string at key for a command that reads it: true and *found, or
 * false after replying WRONGTYPE. */
bool cmd_string_item(const struct cmd_env *env, const struct resp_arg *key, struct kv_item *it,
                     bool *found, struct resp_out *out);
/* Stores buf as key's value, keeping its expiry if it existed. */
int cmd_string_put(const struct cmd_env *env, const struct resp_arg *key, const void *buf,
                   size_t len, bool existed);

/* bitmaps (cmd_bit.c) */
CMD_FN(cmd_setbit);
CMD_FN(cmd_getbit);
CMD_FN(cmd_bitcount);
CMD_FN(cmd_bitpos);
CMD_FN(cmd_bitop);
CMD_FN(cmd_bitfield);
CMD_FN(cmd_bitfield_ro);

/* HyperLogLog (cmd_hll.c) */
CMD_FN(cmd_pfadd);
CMD_FN(cmd_pfcount);
CMD_FN(cmd_pfmerge);

/* transactions (cmd_multi.c) */
CMD_FN(cmd_shoal_exec);
CMD_FN(cmd_shoal_watch);
CMD_FN(cmd_shoal_script);
CMD_FN(cmd_eval_elsewhere);
CMD_FN(cmd_shoal_execscript);
/* The keys of every command (and watched key) of the form; scripts: of
 * SHOAL.EXECSCRIPT (a script's declared keys). */
void cmd_multi_keys(uint32_t argc, const struct resp_arg *argv, bool scripts,
                    void (*cb)(void *ctx, const struct resp_arg *key), void *ctx);

/* keys (cmd_keys.c) */
CMD_FN(cmd_del);
CMD_FN(cmd_exists);
CMD_FN(cmd_type);
CMD_FN(cmd_rename);
CMD_FN(cmd_renamenx);
CMD_FN(cmd_keys_cmd);
CMD_FN(cmd_scan);
CMD_FN(cmd_randomkey);
CMD_FN(cmd_expire);
CMD_FN(cmd_pexpire);
CMD_FN(cmd_expireat);
CMD_FN(cmd_pexpireat);
CMD_FN(cmd_ttl);
CMD_FN(cmd_pttl);
CMD_FN(cmd_expiretime);
CMD_FN(cmd_pexpiretime);
CMD_FN(cmd_persist);
CMD_FN(cmd_dbsize);
CMD_FN(cmd_memory);
CMD_FN(cmd_flushdb);

/* FUNCTION's reads, SHOAL.FUNCTION (cmd_func.c) */
CMD_FN(cmd_function);
CMD_FN(cmd_shoal_function);
/* DUMP, RESTORE, COPY, OBJECT (cmd_object.c) */
CMD_FN(cmd_dump);
CMD_FN(cmd_restore);
CMD_FN(cmd_copy);
CMD_FN(cmd_object);
/* A HELP reply: an array of simple strings. */
void cmd_reply_help(struct resp_out *out, const char *const *lines, size_t n);

/* SORT, SORT_RO (cmd_sort.c) */
CMD_FN(cmd_sort);
CMD_FN(cmd_sort_ro);
/* SORT's keys: the sorted key, and STORE's destination if any. */
void cmd_sort_keys(uint32_t argc, const struct resp_arg *argv,
                   void (*cb)(void *ctx, const struct resp_arg *key), void *ctx);

/* hashes (cmd_hash.c) */
CMD_FN(cmd_hset);
CMD_FN(cmd_hsetnx);
CMD_FN(cmd_hmset);
CMD_FN(cmd_hget);
CMD_FN(cmd_hmget);
CMD_FN(cmd_hdel);
CMD_FN(cmd_hlen);
CMD_FN(cmd_hstrlen);
CMD_FN(cmd_hexists);
CMD_FN(cmd_hkeys);
CMD_FN(cmd_hvals);
CMD_FN(cmd_hgetall);
CMD_FN(cmd_hincrby);
CMD_FN(cmd_hincrbyfloat);
CMD_FN(cmd_hrandfield);
CMD_FN(cmd_hscan);

/* sets (cmd_set.c) */
CMD_FN(cmd_sadd);
CMD_FN(cmd_srem);
CMD_FN(cmd_scard);
CMD_FN(cmd_sismember);
CMD_FN(cmd_smismember);
CMD_FN(cmd_smembers);
CMD_FN(cmd_srandmember);
CMD_FN(cmd_spop);
CMD_FN(cmd_smove);
CMD_FN(cmd_sinter);
CMD_FN(cmd_sintercard);
CMD_FN(cmd_sunion);
CMD_FN(cmd_sdiff);
CMD_FN(cmd_sinterstore);
CMD_FN(cmd_sunionstore);
CMD_FN(cmd_sdiffstore);
CMD_FN(cmd_sscan);

/* lists (cmd_list.c) */
CMD_FN(cmd_lpush);
CMD_FN(cmd_rpush);
CMD_FN(cmd_lpushx);
CMD_FN(cmd_rpushx);
CMD_FN(cmd_lpop);
CMD_FN(cmd_rpop);
CMD_FN(cmd_llen);
CMD_FN(cmd_lrange);
CMD_FN(cmd_lindex);
CMD_FN(cmd_lset);
CMD_FN(cmd_linsert);
CMD_FN(cmd_lrem);
CMD_FN(cmd_ltrim);
CMD_FN(cmd_lpos);
CMD_FN(cmd_lmove);
CMD_FN(cmd_rpoplpush);
CMD_FN(cmd_blpop);
CMD_FN(cmd_brpop);
CMD_FN(cmd_blmove);
CMD_FN(cmd_brpoplpush);
CMD_FN(cmd_blmpop);
/* A blocking command's timeout in seconds (fractions allowed), as Redis 7.0
 * parses it: false after writing the error. */
bool cmd_block_timeout(const struct resp_arg *arg, uint64_t *timeout_ms, struct resp_out *out);
/* ZMPOP's arguments from argv[at] (numkeys) on; false after the error. */
bool cmd_zmpop_args(uint32_t argc, const struct resp_arg *argv, uint32_t at, uint32_t *numkeys,
                    bool *max, int64_t *count, struct resp_out *out);
CMD_FN(cmd_bzpopmin);
CMD_FN(cmd_bzpopmax);
CMD_FN(cmd_bzmpop);
CMD_FN(cmd_lmpop);

/* sorted sets (cmd_zset.c) */
CMD_FN(cmd_zadd);
CMD_FN(cmd_zincrby);
CMD_FN(cmd_zrem);
CMD_FN(cmd_zcard);
CMD_FN(cmd_zscore);
CMD_FN(cmd_zmscore);
CMD_FN(cmd_zrank);
CMD_FN(cmd_zrevrank);
CMD_FN(cmd_zcount);
CMD_FN(cmd_zlexcount);
CMD_FN(cmd_zrange);
CMD_FN(cmd_zrangestore);
CMD_FN(cmd_zrevrange);
CMD_FN(cmd_zrangebyscore);
CMD_FN(cmd_zrevrangebyscore);
CMD_FN(cmd_zrangebylex);
CMD_FN(cmd_zrevrangebylex);
CMD_FN(cmd_zremrangebyrank);
CMD_FN(cmd_zremrangebyscore);
CMD_FN(cmd_zremrangebylex);
CMD_FN(cmd_zpopmin);
CMD_FN(cmd_zpopmax);
CMD_FN(cmd_zmpop);
CMD_FN(cmd_zrandmember);
CMD_FN(cmd_zunion);
CMD_FN(cmd_zinter);
CMD_FN(cmd_zdiff);
CMD_FN(cmd_zintercard);
CMD_FN(cmd_zunionstore);
CMD_FN(cmd_zinterstore);
CMD_FN(cmd_zdiffstore);
CMD_FN(cmd_zscan);

/* streams (cmd_stream.c, cmd_xgroup.c) */
CMD_FN(cmd_xadd);
CMD_FN(cmd_xlen);
CMD_FN(cmd_xrange);
CMD_FN(cmd_xrevrange);
CMD_FN(cmd_xdel);
CMD_FN(cmd_xtrim);
CMD_FN(cmd_xread);
CMD_FN(cmd_xsetid);
CMD_FN(cmd_xgroup);
CMD_FN(cmd_xreadgroup);
CMD_FN(cmd_xack);
CMD_FN(cmd_xpending);
CMD_FN(cmd_xclaim);
CMD_FN(cmd_xautoclaim);
CMD_FN(cmd_xinfo);
struct kv_sid;
struct kv_coll;
struct kv_xentry;
/* Redis's streamGenericParseIDOrReply(): missing_seq when the id has no
 * sequence; strict refuses `-` and `+`; seq_given (may be NULL: `ms-*` is
 * then invalid) is false for `ms-*`. false after the error (out may be
 * NULL: no reply). */
bool cmd_xid_parse(const struct resp_arg *a, uint64_t missing_seq, bool strict,
                   struct kv_sid *id, bool *seq_given, struct resp_out *out);
/* An interval bound: `(id` is exclusive (*exclude). */
bool cmd_xid_interval(const struct resp_arg *a, uint64_t missing_seq, struct kv_sid *id,
                      bool *exclude, struct resp_out *out);
bool cmd_xid_incr(struct kv_sid *id); /* false at the last id */
void cmd_xid_reply(struct resp_out *out, struct kv_sid id);
/* A reply whose element count is known at its end: the elements go to
 * body, cmd_defer_end() writes the header (an array, or a map of n pairs)
 * and them. */
struct cmd_defer {
    struct resp_out body;
    uint64_t n;
};
void cmd_defer_init(struct cmd_defer *d, const struct resp_out *out);
void cmd_defer_end(struct cmd_defer *d, struct resp_out *out, bool as_map);
/* An entry: [id, [field, value, ...]]. */
void cmd_xentry_reply(struct resp_out *out, const struct kv_xentry *e);
/* The live entries in [start, end] (at most count, 0: all) as an array. */
int cmd_xrange_reply(const struct kv_coll *c, struct kv_sid start, struct kv_sid end,
                     bool reverse, uint64_t count, struct resp_out *out);
/* XREAD's and XREADGROUP's options (Redis's xreadCommand()). */
#define CMD_XREAD_STREAMS_MAX 4096u
struct cmd_xread {
    int64_t timeout_ms; /* -1: no BLOCK */
    int64_t count;      /* 0: all */
    uint32_t streams_arg, n_streams;
    const struct resp_arg *group, *consumer;
    bool noack;
};
bool cmd_xread_parse(uint32_t argc, const struct resp_arg *argv, bool group,
                     struct cmd_xread *r, struct resp_out *out);
/* cmd_block_spec() of XREAD and XREADGROUP (with BLOCK). */
bool cmd_xblock_spec(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
                     struct cmd_block *spec, struct resp_out *out);

/* SCAN's options, and those of HSCAN and SSCAN (cmd_keys.c) */
struct cmd_scan_options {
    int64_t count;
    const struct resp_arg *match; /* NULL: every element */
    const struct resp_arg *type;  /* SCAN TYPE, or NULL */
};
/* Parses argv[from..] as Redis 7.0's scanGenericCommand(); false after
 * replying an error. */
bool cmd_parse_scan_options(uint32_t argc, const struct resp_arg *argv, uint32_t from,
                            bool allow_type, struct cmd_scan_options *opt, struct resp_out *out);
/* Redis's parseScanCursorOrReply(): strtoull of the whole argument. */
bool cmd_parse_cursor(const struct resp_arg *arg, uint64_t *cursor);
/* A SCAN reply's head: the array of 2 and the next cursor; the caller
 * writes the elements' array. */
void cmd_reply_cursor(struct resp_out *out, uint64_t next);

/* Redis's string2ld() and ld2string(LD_STR_HUMAN) (cmd_string.c). */
bool cmd_parse_ld(const char *s, size_t len, long double *out);
int cmd_format_ld(char *buf, size_t cap, long double v);

/* collections (cmd_coll.c) */
/* The collection of `type` at key for a read: true with *c (NULL if no live
 * key), or false after replying WRONGTYPE. */
bool cmd_coll_read(const struct cmd_env *env, const struct resp_arg *key, uint8_t type,
                   const struct kv_coll **c, struct resp_out *out);
/* The same for a write (see kv_coll_open()); false after replying an
 * error. */
bool cmd_coll_write(const struct cmd_env *env, const struct resp_arg *key, uint8_t type,
                    bool create, struct kv_coll **c, struct resp_out *out);
/* Element views gathered for one reply (valid while the collection is not
 * changed). The bytes of a transient view (an intset's member) are copied
 * into blocks the list owns. */
struct cmd_elems_block;
struct cmd_elems {
    struct kv_elem *v;
    uint64_t n, cap;
    bool failed; /* out of memory */
    struct cmd_elems_block *blocks;
};
bool cmd_elems_push(struct cmd_elems *l, const struct kv_elem *e);
void cmd_elems_free(struct cmd_elems *l);
/* HSCAN/SSCAN after the command's own argument checks: key at argv[1],
 * cursor at argv[2]. pairs: reply field and value (HSCAN). */
void cmd_coll_scan(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                   uint8_t type, bool pairs, struct resp_out *out);
/* Writes a collection's fields (and values), as an array (or a map with
 * values in RESP3 when as_map). */
void cmd_reply_elems(struct resp_out *out, const struct cmd_elems *l, bool fields, bool values,
                     bool as_map);

/* Every element of c (views); false if out of memory (l->failed). */
bool cmd_coll_all(const struct kv_coll *c, struct cmd_elems *l);
/* HRANDFIELD/SRANDMEMBER with a count (not 0): Redis 7.0's replies; a
 * negative count allows repeats. values: HRANDFIELD WITHVALUES. */
void cmd_coll_random(const struct cmd_env *env, const struct kv_coll *c, int64_t count,
                     bool values, struct resp_out *out);

/* One element at random (c not empty): a view into c (or into *text, for
 * an intset's member). */
void cmd_coll_random_one(const struct cmd_env *env, const struct kv_coll *c,
                         struct kv_elem *e, struct kv_elem_text *text);
/* Elements one HRANDFIELD/SRANDMEMBER/SPOP reply may hold: a reply the node
 * could not send whole is refused before it is built. */
#define CMD_RANDOM_REPLY_MAX (1u << 20)
bool cmd_parse_random_count(const struct resp_arg *arg, int64_t *count, struct resp_out *out);
bool cmd_random_count_ok(int64_t count, uint64_t size, struct resp_out *out);

/* helpers (cmd.c) */
bool cmd_arg_is(const struct resp_arg *arg, const char *word); /* case-insensitive */
void cmd_reply_kv_error(struct resp_out *out, int err);
void cmd_reply_wrongtype(struct resp_out *out);

#endif
