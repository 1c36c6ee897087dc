/* cmd.c: the command table, lookup, arity and key specs, the log-entry
 * codec of writes, and shared helpers. See cmd.h. */
#include "cmd/cmd.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/cmd_int.h"

#define W (CMD_WRITE)
#define R (CMD_READONLY)
#define N (CMD_NODE)
#define F (CMD_FAST)
#define D (CMD_DENYOOM)

/* name, exec, arity, flags, first key, last key, step, group, summary, since */
const struct cmd_def cmd_table[] = {
    /* strings */
    {"append", cmd_append, 3, W | F | D, 1, 1, 1, "string", "Append a value to a key", "2.0.0"},
    {"decr", cmd_decr, 2, W | F | D, 1, 1, 1, "string", "Decrement the integer value of a key by one", "1.0.0"},
    {"decrby", cmd_decrby, 3, W | F | D, 1, 1, 1, "string", "Decrement the integer value of a key by the given number", "1.0.0"},
    {"get", cmd_get, 2, R | F, 1, 1, 1, "string", "Get the value of a key", "1.0.0"},
    {"getdel", cmd_getdel, 2, W | F, 1, 1, 1, "string", "Get the value of a key and delete the key", "6.2.0"},
    {"getex", cmd_getex, -2, W | F, 1, 1, 1, "string", "Get the value of a key and optionally set its expiration", "6.2.0"},
    {"getrange", cmd_getrange, 4, R, 1, 1, 1, "string", "Get a substring of the string stored at a key", "2.4.0"},
    {"getset", cmd_getset, 3, W | F | D, 1, 1, 1, "string", "Set the string value of a key and return its old value", "1.0.0"},
    {"incr", cmd_incr, 2, W | F | D, 1, 1, 1, "string", "Increment the integer value of a key by one", "1.0.0"},
    {"incrby", cmd_incrby, 3, W | F | D, 1, 1, 1, "string", "Increment the integer value of a key by the given amount", "1.0.0"},
    {"incrbyfloat", cmd_incrbyfloat, 3, W | F | D, 1, 1, 1, "string", "Increment the float value of a key by the given amount", "2.6.0"},
    {"lcs", cmd_lcs, -3, R, 1, 2, 1, "string", "Find longest common substring", "7.0.0"},
    {"mget", cmd_mget, -2, R | F, 1, -1, 1, "string", "Get the values of all the given keys", "1.0.0"},
    {"mset", cmd_mset, -3, W | D, 1, -1, 2, "string", "Set multiple keys to multiple values", "1.0.1"},
    {"msetnx", cmd_msetnx, -3, W | D, 1, -1, 2, "string", "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1"},
    {"psetex", cmd_psetex, 4, W | D, 1, 1, 1, "string", "Set the value and expiration in milliseconds of a key", "2.6.0"},
    {"set", cmd_set, -3, W | D, 1, 1, 1, "string", "Set the string value of a key", "1.0.0"},
    {"setex", cmd_setex, 4, W | D, 1, 1, 1, "string", "Set the value and expiration of a key", "2.0.0"},
    {"setnx", cmd_setnx, 3, W | F | D, 1, 1, 1, "string", "Set the value of a key, only if the key does not exist", "1.0.0"},
    {"setrange", cmd_setrange, 4, W | D, 1, 1, 1, "string", "Overwrite part of a string at key starting at the specified offset", "2.2.0"},
    {"strlen", cmd_strlen, 2, R | F, 1, 1, 1, "string", "Get the length of the value stored in a key", "2.2.0"},
    /* bitmaps */
    {"bitcount", cmd_bitcount, -2, R, 1, 1, 1, "bitmap", "Count set bits in a string", "2.6.0"},
    {"bitfield", cmd_bitfield, -2, W | D, 1, 1, 1, "bitmap", "Perform arbitrary bitfield integer operations on strings", "3.2.0"},
    {"bitfield_ro", cmd_bitfield_ro, -2, R, 1, 1, 1, "bitmap", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", "6.0.0"},
    {"bitop", cmd_bitop, -4, W | D, 2, -1, 1, "bitmap", "Perform bitwise operations between strings", "2.6.0"},
    {"bitpos", cmd_bitpos, -3, R, 1, 1, 1, "bitmap", "Find first bit set or clear in a string", "2.8.7"},
    {"getbit", cmd_getbit, 3, R | F, 1, 1, 1, "bitmap", "Returns the bit value at offset in the string value stored at key", "2.2.0"},
    {"setbit", cmd_setbit, 4, W | D, 1, 1, 1, "bitmap", "Sets or clears the bit at offset in the string value stored at key", "2.2.0"},
    /* HyperLogLog */
    {"pfadd", cmd_pfadd, -2, W | F | D, 1, 1, 1, "hyperloglog", "Adds the specified elements to the specified HyperLogLog.", "2.8.9"},
    {"pfcount", cmd_pfcount, -2, R, 1, -1, 1, "hyperloglog", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", "2.8.9"},
    {"pfmerge", cmd_pfmerge, -2, W | D, 1, -1, 1, "hyperloglog", "Merge N different HyperLogLogs into a single one.", "2.8.9"},
    /* hashes */
    {"hdel", cmd_hdel, -3, W | F, 1, 1, 1, "hash", "Delete one or more hash fields", "2.0.0"},
    {"hexists", cmd_hexists, 3, R | F, 1, 1, 1, "hash", "Determine if a hash field exists", "2.0.0"},
    {"hget", cmd_hget, 3, R | F, 1, 1, 1, "hash", "Get the value of a hash field", "2.0.0"},
    {"hgetall", cmd_hgetall, 2, R, 1, 1, 1, "hash", "Get all the fields and values in a hash", "2.0.0"},
    {"hincrby", cmd_hincrby, 4, W | F | D, 1, 1, 1, "hash", "Increment the integer value of a hash field by the given number", "2.0.0"},
    {"hincrbyfloat", cmd_hincrbyfloat, 4, W | F | D, 1, 1, 1, "hash", "Increment the float value of a hash field by the given amount", "2.6.0"},
    {"hkeys", cmd_hkeys, 2, R, 1, 1, 1, "hash", "Get all the fields in a hash", "2.0.0"},
    {"hlen", cmd_hlen, 2, R | F, 1, 1, 1, "hash", "Get the number of fields in a hash", "2.0.0"},
    {"hmget", cmd_hmget, -3, R | F, 1, 1, 1, "hash", "Get the values of all the given hash fields", "2.0.0"},
    {"hmset", cmd_hmset, -4, W | F | D, 1, 1, 1, "hash", "Set multiple hash fields to multiple values", "2.0.0"},
    {"hrandfield", cmd_hrandfield, -2, R, 1, 1, 1, "hash", "Get one or multiple random fields from a hash", "6.2.0"},
    {"hscan", cmd_hscan, -3, R, 1, 1, 1, "hash", "Incrementally iterate hash fields and associated values", "2.8.0"},
    {"hset", cmd_hset, -4, W | F | D, 1, 1, 1, "hash", "Set the string value of a hash field", "2.0.0"},
    {"hsetnx", cmd_hsetnx, 4, W | F | D, 1, 1, 1, "hash", "Set the value of a hash field, only if the field does not exist", "2.0.0"},
    {"hstrlen", cmd_hstrlen, 3, R | F, 1, 1, 1, "hash", "Get the length of the value of a hash field", "3.2.0"},
    {"hvals", cmd_hvals, 2, R, 1, 1, 1, "hash", "Get all the values in a hash", "2.0.0"},
    /* lists */
    {"blmove", cmd_blmove, 6, W | CMD_BLOCKING | D, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", "6.2.0"},
    {"blmpop", cmd_blmpop, -5, W | CMD_BLOCKING | CMD_NUMKEYS, 2, 2, 1, "list", "Pop elements from a list, or block until one is available", "7.0.0"},
    {"blpop", cmd_blpop, -3, W | CMD_BLOCKING, 1, -2, 1, "list", "Remove and get the first element in a list, or block until one is available", "2.0.0"},
    {"brpop", cmd_brpop, -3, W | CMD_BLOCKING, 1, -2, 1, "list", "Remove and get the last element in a list, or block until one is available", "2.0.0"},
    {"brpoplpush", cmd_brpoplpush, 4, W | CMD_BLOCKING | D, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it; or block until one is available", "2.2.0"},
    {"lindex", cmd_lindex, 3, R, 1, 1, 1, "list", "Get an element from a list by its index", "1.0.0"},
    {"linsert", cmd_linsert, 5, W | D, 1, 1, 1, "list", "Insert an element before or after another element in a list", "2.2.0"},
    {"llen", cmd_llen, 2, R | F, 1, 1, 1, "list", "Get the length of a list", "1.0.0"},
    {"lmove", cmd_lmove, 5, W | D, 1, 2, 1, "list", "Pop an element from a list, push it to another list and return it", "6.2.0"},
    {"lmpop", cmd_lmpop, -4, W | CMD_NUMKEYS, 1, 1, 1, "list", "Pop elements from a list", "7.0.0"},
    {"lpop", cmd_lpop, -2, W | F, 1, 1, 1, "list", "Remove and get the first elements in a list", "1.0.0"},
    {"lpos", cmd_lpos, -3, R, 1, 1, 1, "list", "Return the index of matching elements on a list", "6.0.6"},
    {"lpush", cmd_lpush, -3, W | F | D, 1, 1, 1, "list", "Prepend one or multiple elements to a list", "1.0.0"},
    {"lpushx", cmd_lpushx, -3, W | F | D, 1, 1, 1, "list", "Prepend an element to a list, only if the list exists", "2.2.0"},
    {"lrange", cmd_lrange, 4, R, 1, 1, 1, "list", "Get a range of elements from a list", "1.0.0"},
    {"lrem", cmd_lrem, 4, W, 1, 1, 1, "list", "Remove elements from a list", "1.0.0"},
    {"lset", cmd_lset, 4, W | D, 1, 1, 1, "list", "Set the value of an element in a list by its index", "1.0.0"},
    {"ltrim", cmd_ltrim, 4, W, 1, 1, 1, "list", "Trim a list to the specified range", "1.0.0"},
    {"rpop", cmd_rpop, -2, W | F, 1, 1, 1, "list", "Remove and get the last elements in a list", "1.0.0"},
    {"rpoplpush", cmd_rpoplpush, 3, W | D, 1, 2, 1, "list", "Remove the last element in a list, prepend it to another list and return it", "1.2.0"},
    {"rpush", cmd_rpush, -3, W | F | D, 1, 1, 1, "list", "Append one or multiple elements to a list", "1.0.0"},
    {"rpushx", cmd_rpushx, -3, W | F | D, 1, 1, 1, "list", "Append an element to a list, only if the list exists", "2.2.0"},
    /* sets */
    {"sadd", cmd_sadd, -3, W | F | D, 1, 1, 1, "set", "Add one or more members to a set", "1.0.0"},
    {"scard", cmd_scard, 2, R | F, 1, 1, 1, "set", "Get the number of members in a set", "1.0.0"},
    {"sdiff", cmd_sdiff, -2, R, 1, -1, 1, "set", "Subtract multiple sets", "1.0.0"},
    {"sdiffstore", cmd_sdiffstore, -3, W | D, 1, -1, 1, "set", "Subtract multiple sets and store the resulting set in a key", "1.0.0"},
    {"sinter", cmd_sinter, -2, R, 1, -1, 1, "set", "Intersect multiple sets", "1.0.0"},
    {"sintercard", cmd_sintercard, -3, R | CMD_NUMKEYS, 1, 1, 1, "set", "Intersect multiple sets and return the cardinality of the result", "7.0.0"},
    {"sinterstore", cmd_sinterstore, -3, W | D, 1, -1, 1, "set", "Intersect multiple sets and store the resulting set in a key", "1.0.0"},
    {"sismember", cmd_sismember, 3, R | F, 1, 1, 1, "set", "Determine if a given value is a member of a set", "1.0.0"},
    {"smembers", cmd_smembers, 2, R, 1, 1, 1, "set", "Get all the members in a set", "1.0.0"},
    {"smismember", cmd_smismember, -3, R | F, 1, 1, 1, "set", "Returns the membership associated with the given elements for a set", "6.2.0"},
    {"smove", cmd_smove, 4, W | F, 1, 2, 1, "set", "Move a member from one set to another", "1.0.0"},
    {"spop", cmd_spop, -2, W | F, 1, 1, 1, "set", "Remove and return one or multiple random members from a set", "1.0.0"},
    {"srandmember", cmd_srandmember, -2, R, 1, 1, 1, "set", "Get one or multiple random members from a set", "1.0.0"},
    {"srem", cmd_srem, -3, W | F, 1, 1, 1, "set", "Remove one or more members from a set", "1.0.0"},
    {"sscan", cmd_sscan, -3, R, 1, 1, 1, "set", "Incrementally iterate Set elements", "2.6.0"},
    {"sunion", cmd_sunion, -2, R, 1, -1, 1, "set", "Add multiple sets", "1.0.0"},
    {"sunionstore", cmd_sunionstore, -3, W | D, 1, -1, 1, "set", "Add multiple sets and store the resulting set in a key", "1.0.0"},
    /* sorted sets */
    {"zadd", cmd_zadd, -4, W | F | D, 1, 1, 1, "sorted_set", "Add one or more members to a sorted set, or update its score if it already exists", "1.2.0"},
    {"zcard", cmd_zcard, 2, R | F, 1, 1, 1, "sorted_set", "Get the number of members in a sorted set", "1.2.0"},
    {"zcount", cmd_zcount, 4, R | F, 1, 1, 1, "sorted_set", "Count the members in a sorted set with scores within the given values", "2.0.0"},
    {"zdiff", cmd_zdiff, -3, R | CMD_NUMKEYS, 1, 1, 1, "sorted_set", "Subtract multiple sorted sets", "6.2.0"},
    {"zdiffstore", cmd_zdiffstore, -4, W | CMD_NUMKEYS | CMD_DSTKEY | D, 2, 2, 1, "sorted_set", "Subtract multiple sorted sets and store the resulting sorted set in a new key", "6.2.0"},
    {"zincrby", cmd_zincrby, 4, W | F | D, 1, 1, 1, "sorted_set", "Increment the score of a member in a sorted set", "1.2.0"},
    {"zinter", cmd_zinter, -3, R | CMD_NUMKEYS, 1, 1, 1, "sorted_set", "Intersect multiple sorted sets", "6.2.0"},
    {"zintercard", cmd_zintercard, -3, R | CMD_NUMKEYS, 1, 1, 1, "sorted_set", "Intersect multiple sorted sets and return the cardinality of the result", "7.0.0"},
    {"zinterstore", cmd_zinterstore, -4, W | CMD_NUMKEYS | CMD_DSTKEY | D, 2, 2, 1, "sorted_set", "Intersect multiple sorted sets and store the resulting sorted set in a new key", "2.0.0"},
    {"zlexcount", cmd_zlexcount, 4, R | F, 1, 1, 1, "sorted_set", "Count the number of members in a sorted set between a given lexicographical range", "2.8.9"},
    {"bzmpop", cmd_bzmpop, -5, W | CMD_BLOCKING | CMD_NUMKEYS, 2, 2, 1, "sorted_set", "Remove and return members with scores in a sorted set or block until one is available", "7.0.0"},
    {"bzpopmax", cmd_bzpopmax, -3, W | CMD_BLOCKING, 1, -2, 1, "sorted_set", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", "5.0.0"},
    {"bzpopmin", cmd_bzpopmin, -3, W | CMD_BLOCKING, 1, -2, 1, "sorted_set", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", "5.0.0"},
    {"zmpop", cmd_zmpop, -4, W | CMD_NUMKEYS, 1, 1, 1, "sorted_set", "Remove and return members with scores in a sorted set", "7.0.0"},
    {"zmscore", cmd_zmscore, -3, R | F, 1, 1, 1, "sorted_set", "Get the score associated with the given members in a sorted set", "6.2.0"},
    {"zpopmax", cmd_zpopmax, -2, W | F, 1, 1, 1, "sorted_set", "Remove and return members with the highest scores in a sorted set", "5.0.0"},
    {"zpopmin", cmd_zpopmin, -2, W | F, 1, 1, 1, "sorted_set", "Remove and return members with the lowest scores in a sorted set", "5.0.0"},
    {"zrandmember", cmd_zrandmember, -2, R, 1, 1, 1, "sorted_set", "Get one or multiple random elements from a sorted set", "6.2.0"},
    {"zrange", cmd_zrange, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set", "1.2.0"},
    {"zrangebylex", cmd_zrangebylex, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set, by lexicographical range", "2.8.9"},
    {"zrangebyscore", cmd_zrangebyscore, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set, by score", "1.0.5"},
    {"zrangestore", cmd_zrangestore, -5, W | D, 1, 2, 1, "sorted_set", "Store a range of members from sorted set into another key", "6.2.0"},
    {"zrank", cmd_zrank, 3, R | F, 1, 1, 1, "sorted_set", "Determine the index of a member in a sorted set", "2.0.0"},
    {"zrem", cmd_zrem, -3, W | F, 1, 1, 1, "sorted_set", "Remove one or more members from a sorted set", "1.2.0"},
    {"zremrangebylex", cmd_zremrangebylex, 4, W, 1, 1, 1, "sorted_set", "Remove all members in a sorted set between the given lexicographical range", "2.8.9"},
    {"zremrangebyrank", cmd_zremrangebyrank, 4, W, 1, 1, 1, "sorted_set", "Remove all members in a sorted set within the given indexes", "2.0.0"},
    {"zremrangebyscore", cmd_zremrangebyscore, 4, W, 1, 1, 1, "sorted_set", "Remove all members in a sorted set within the given scores", "1.2.0"},
    {"zrevrange", cmd_zrevrange, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set, by index, with scores ordered from high to low", "1.2.0"},
    {"zrevrangebylex", cmd_zrevrangebylex, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", "2.8.9"},
    {"zrevrangebyscore", cmd_zrevrangebyscore, -4, R, 1, 1, 1, "sorted_set", "Return a range of members in a sorted set, by score, with scores ordered from high to low", "2.2.0"},
    {"zrevrank", cmd_zrevrank, 3, R | F, 1, 1, 1, "sorted_set", "Determine the index of a member in a sorted set, with scores ordered from high to low", "2.0.0"},
    {"zscan", cmd_zscan, -3, R, 1, 1, 1, "sorted_set", "Incrementally iterate sorted sets elements and associated scores", "2.8.0"},
    {"zscore", cmd_zscore, 3, R | F, 1, 1, 1, "sorted_set", "Get the score associated with the given member in a sorted set", "1.2.0"},
    {"zunion", cmd_zunion, -3, R | CMD_NUMKEYS, 1, 1, 1, "sorted_set", "Add multiple sorted sets", "6.2.0"},
    {"zunionstore", cmd_zunionstore, -4, W | CMD_NUMKEYS | CMD_DSTKEY | D, 2, 2, 1, "sorted_set", "Add multiple sorted sets and store the resulting sorted set in a new key", "2.0.0"},
    /* keys */
    {"copy", cmd_copy, -3, W | D, 1, 2, 1, "generic", "Copy a key", "6.2.0"},
    {"del", cmd_del, -2, W, 1, -1, 1, "generic", "Delete a key", "1.0.0"},
    {"dump", cmd_dump, 2, R, 1, 1, 1, "generic", "Return a serialized version of the value stored at the specified key.", "2.6.0"},
    {"exists", cmd_exists, -2, R | F | CMD_NOTOUCH, 1, -1, 1, "generic", "Determine if a key exists", "1.0.0"},
    {"expire", cmd_expire, -3, W | F, 1, 1, 1, "generic", "Set a key's time to live in seconds", "1.0.0"},
    {"expireat", cmd_expireat, -3, W | F, 1, 1, 1, "generic", "Set the expiration for a key as a UNIX timestamp", "1.2.0"},
    {"expiretime", cmd_expiretime, 2, R | F | CMD_NOTOUCH, 1, 1, 1, "generic", "Get the expiration Unix timestamp for a key", "7.0.0"},
    {"keys", cmd_keys_cmd, 2, R, 0, 0, 0, "generic", "Find all keys matching the given pattern", "1.0.0"},
    {"object", cmd_object, -2, R | CMD_NOTOUCH, 2, 2, 1, "generic", "A container for object introspection commands", "2.2.3"},
    {"persist", cmd_persist, 2, W | F, 1, 1, 1, "generic", "Remove the expiration from a key", "2.2.0"},
    {"pexpire", cmd_pexpire, -3, W | F, 1, 1, 1, "generic", "Set a key's time to live in milliseconds", "2.6.0"},
    {"pexpireat", cmd_pexpireat, -3, W | F, 1, 1, 1, "generic", "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0"},
    {"pexpiretime", cmd_pexpiretime, 2, R | F | CMD_NOTOUCH, 1, 1, 1, "generic", "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0"},
    {"pttl", cmd_pttl, 2, R | F | CMD_NOTOUCH, 1, 1, 1, "generic", "Get the time to live for a key in milliseconds", "2.6.0"},
    {"randomkey", cmd_randomkey, 1, R, 0, 0, 0, "generic", "Return a random key from the keyspace", "1.0.0"},
    {"rename", cmd_rename, 3, W, 1, 2, 1, "generic", "Rename a key", "1.0.0"},
    {"renamenx", cmd_renamenx, 3, W | F, 1, 2, 1, "generic", "Rename a key, only if the new key does not exist", "1.0.0"},
    {"restore", cmd_restore, -4, W | CMD_NOTOUCH | D, 1, 1, 1, "generic", "Create a key using the provided serialized value, previously obtained using DUMP.", "2.6.0"},
    {"scan", cmd_scan, -2, R, 0, 0, 0, "generic", "Incrementally iterate the keys space", "2.8.0"},
    {"touch", cmd_exists, -2, R | F, 1, -1, 1, "generic", "Alters the last access time of a key(s). Returns the number of existing keys specified.", "3.2.1"},
    {"sort", cmd_sort, -2, W | D, 1, 1, 1, "generic", "Sort the elements in a list, set or sorted set", "1.0.0"},
    {"sort_ro", cmd_sort_ro, -2, R, 1, 1, 1, "generic", "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", "7.0.0"},
    {"ttl", cmd_ttl, 2, R | F | CMD_NOTOUCH, 1, 1, 1, "generic", "Get the time to live for a key in seconds", "1.0.0"},
    {"type", cmd_type, 2, R | F | CMD_NOTOUCH, 1, 1, 1, "generic", "Determine the type stored at key", "1.0.0"},
    {"unlink", cmd_del, -2, W | F, 1, -1, 1, "generic", "Delete a key asynchronously in another thread", "4.0.0"},
    /* server (keyspace) */
    {"dbsize", cmd_dbsize, 1, R | F, 0, 0, 0, "server", "Return the number of keys in the selected database", "1.0.0"},
    {"flushall", cmd_flushdb, -1, W, 0, 0, 0, "server", "Remove all keys from all databases", "1.0.0"},
    {"flushdb", cmd_flushdb, -1, W, 0, 0, 0, "server", "Remove all keys from the current database", "1.0.0"},
    /* transactions: MULTI ... EXEC is queued by the node and reaches the
     * log as one SHOAL.EXEC (cmd_multi.c); SHOAL.WATCH is WATCH's read */
    {"shoal.exec", cmd_shoal_exec, -3, W | CMD_NOTOUCH, 1, -1, 1, "transactions", "Internal: a transaction as one log entry", "0.1.0"},
    {"shoal.execscript", cmd_shoal_execscript, -3, W | CMD_SCRIPT | CMD_NOSCRIPT | CMD_NOTOUCH, 1, -1, 1, "transactions", "Internal: a transaction that holds a script, run by the node as one script", "0.1.0"},
    {"shoal.watch", cmd_shoal_watch, -2, R | CMD_NOTOUCH, 1, -1, 1, "transactions", "Internal: the digests WATCH compares at EXEC", "0.1.0"},
    /* scripting: EVAL and friends are routed by their keys like writes and
     * run by the node (src/node/eval.c, src/script/); what a script
     * writes reaches the log as one SHOAL.SCRIPT (cmd_multi.c) */
    {"eval", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Execute a Lua script server side", "2.6.0"},
    {"evalsha", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Execute a Lua script server side", "2.6.0"},
    {"eval_ro", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Execute a read-only Lua script server side", "7.0.0"},
    {"evalsha_ro", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Execute a read-only Lua script server side", "7.0.0"},
    {"script", NULL, -2, N | CMD_NOSCRIPT, 0, 0, 0, "scripting", "A container for Lua scripts management commands", "2.6.0"},
    {"shoal.script", cmd_shoal_script, -6, W | CMD_NOSCRIPT | CMD_NOTOUCH, 1, -1, 1, "scripting", "Internal: a script's writes as one log entry", "0.1.0"},
    /* functions: FCALL runs as EVAL does; FUNCTION's reads run here, its
     * writes reach the log as SHOAL.FUNCTION, checked by the node first
     * (cmd_func.c, src/node/eval.c) */
    {"fcall", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Invoke a function", "7.0.0"},
    {"fcall_ro", cmd_eval_elsewhere, -3, W | CMD_SCRIPT | CMD_NUMKEYS | CMD_NOSCRIPT, 2, 2, 1, "scripting", "Invoke a read-only function", "7.0.0"},
    {"function", cmd_function, -2, R | CMD_NOSCRIPT, 0, 0, 0, "scripting", "A container for function commands", "7.0.0"},
    {"shoal.function", cmd_shoal_function, -2, W | CMD_NOSCRIPT, 0, 0, 0, "scripting", "Internal: FUNCTION LOAD, DELETE, FLUSH, RESTORE as one log entry", "0.1.0"},
    {"multi", NULL, 1, N | F, 0, 0, 0, "transactions", "Mark the start of a transaction block", "1.2.0"},
    {"exec", NULL, 1, N, 0, 0, 0, "transactions", "Execute all commands issued after MULTI", "1.2.0"},
    {"discard", NULL, 1, N | F, 0, 0, 0, "transactions", "Discard all commands issued after MULTI", "2.0.0"},
    {"watch", NULL, -2, N | F, 1, -1, 1, "transactions", "Watch the given keys to determine execution of the MULTI/EXEC block", "2.2.0"},
    {"unwatch", NULL, 1, N | F, 0, 0, 0, "transactions", "Forget about all watched keys", "2.2.0"},
    /* streams */
    {"xack", cmd_xack, -4, W | F, 1, 1, 1, "stream", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", "5.0.0"},
    {"xadd", cmd_xadd, -5, W | F | D, 1, 1, 1, "stream", "Appends a new entry to a stream", "5.0.0"},
    {"xautoclaim", cmd_xautoclaim, -6, W | F, 1, 1, 1, "stream", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", "6.2.0"},
    {"xclaim", cmd_xclaim, -6, W | F, 1, 1, 1, "stream", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", "5.0.0"},
    {"xdel", cmd_xdel, -3, W | F, 1, 1, 1, "stream", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", "5.0.0"},
    {"xgroup", cmd_xgroup, -2, W, 2, 2, 1, "stream", "A container for consumer groups commands", "5.0.0"},
    {"xinfo", cmd_xinfo, -2, R, 2, 2, 1, "stream", "A container for stream introspection commands", "5.0.0"},
    {"xlen", cmd_xlen, 2, R | F, 1, 1, 1, "stream", "Return the number of entries in a stream", "5.0.0"},
    {"xpending", cmd_xpending, -3, R, 1, 1, 1, "stream", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", "5.0.0"},
    {"xrange", cmd_xrange, -4, R, 1, 1, 1, "stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval", "5.0.0"},
    {"xread", cmd_xread, -4, R | CMD_BLOCKING | CMD_STREAMKEYS, 1, 1, 1, "stream", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", "5.0.0"},
    {"xreadgroup", cmd_xreadgroup, -7, W | CMD_BLOCKING | CMD_STREAMKEYS, 1, 1, 1, "stream", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", "5.0.0"},
    {"xrevrange", cmd_xrevrange, -4, R, 1, 1, 1, "stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", "5.0.0"},
    {"xsetid", cmd_xsetid, -3, W | F | D, 1, 1, 1, "stream", "An internal command for replicating stream values", "5.0.0"},
    {"xtrim", cmd_xtrim, -4, W, 1, 1, 1, "stream", "Trims the stream to (approximately if '~' is passed) a certain size", "5.0.0"},
    /* pub/sub: answered by the node (src/node/pubsub.c) */
    {"subscribe", NULL, -2, N, 0, 0, 0, "pubsub", "Listen for messages published to the given channels", "2.0.0"},
    {"unsubscribe", NULL, -1, N, 0, 0, 0, "pubsub", "Stop listening for messages posted to the given channels", "2.0.0"},
    {"psubscribe", NULL, -2, N, 0, 0, 0, "pubsub", "Listen for messages published to channels matching the given patterns", "2.0.0"},
    {"punsubscribe", NULL, -1, N, 0, 0, 0, "pubsub", "Stop listening for messages posted to channels matching the given patterns", "2.0.0"},
    {"ssubscribe", NULL, -2, N, 1, -1, 1, "pubsub", "Listen for messages published to the given shard channels", "7.0.0"},
    {"sunsubscribe", NULL, -1, N, 1, -1, 1, "pubsub", "Stop listening for messages posted to the given shard channels", "7.0.0"},
    {"publish", NULL, 3, N | F, 0, 0, 0, "pubsub", "Post a message to a channel", "2.0.0"},
    {"spublish", NULL, 3, N | F, 1, 1, 1, "pubsub", "Post a message to a shard channel", "7.0.0"},
    {"pubsub", NULL, -2, N, 0, 0, 0, "pubsub", "A container for Pub/Sub commands", "2.8.0"},
    {"memory", cmd_memory, -2, R | CMD_NOTOUCH, 2, 2, 1, "server", "A container for memory diagnostics commands (USAGE only)", "4.0.0"},
    /* answered by the node */
    {"asking", NULL, 1, N | F, 0, 0, 0, "cluster", "Sent by cluster clients after an -ASK redirect", "3.0.0"},
    {"client", NULL, -2, N, 0, 0, 0, "connection", "A container for client connection commands", "2.4.0"},
    {"cluster", NULL, -2, N, 0, 0, 0, "cluster", "A container for Redis Cluster commands", "3.0.0"},
    {"shoal.prefer", NULL, 3, N, 0, 0, 0, "cluster", "Sets the replica a shard's leadership goes to, through the meta group (docs/cluster.md)", "0.1.0"},
    {"command", NULL, -1, N, 0, 0, 0, "server", "Get array of Redis command details", "2.8.13"},
    {"config", NULL, -2, N, 0, 0, 0, "server", "A container for server configuration commands", "2.0.0"},
    {"slowlog", NULL, -2, N, 0, 0, 0, "server", "A container for slow log commands", "2.2.12"},
    {"echo", NULL, 2, N | F, 0, 0, 0, "connection", "Echo the given string", "1.0.0"},
    {"hello", NULL, -1, N | F, 0, 0, 0, "connection", "Handshake with Redis", "6.0.0"},
    {"auth", NULL, -2, N | F, 0, 0, 0, "connection", "Authenticate to the server", "1.0.0"},
    {"info", NULL, -1, N, 0, 0, 0, "server", "Get information and statistics about the server", "1.0.0"},
    {"ping", NULL, -1, N | F, 0, 0, 0, "connection", "Ping the server", "1.0.0"},
    {"monitor", NULL, 1, N, 0, 0, 0, "server", "Listen for all requests received by the server in real time", "1.0.0"},
    {"quit", NULL, -1, N | F, 0, 0, 0, "connection", "Close the connection", "1.0.0"},
    {"readonly", NULL, 1, N | F, 0, 0, 0, "cluster", "Enables read queries for a connection to a cluster replica node", "3.0.0"},
    {"readwrite", NULL, 1, N | F, 0, 0, 0, "cluster", "Disables read queries for a connection to a cluster replica node", "3.0.0"},
    {"select", NULL, 2, N | F, 0, 0, 0, "connection", "Change the selected database for the current connection", "1.0.0"},
    {"time", NULL, 1, N | F, 0, 0, 0, "server", "Return the current server time", "2.6.0"},
    {"wait", NULL, 3, N, 0, 0, 0, "generic", "Wait for the synchronous replication of all the write commands sent in the context of the current connection", "3.0.0"},
};
const uint32_t cmd_table_count = sizeof(cmd_table) / sizeof(cmd_table[0]);

#undef W
#undef R
#undef N
#undef F
#undef D

/* Lookup by name: an open-addressing table of the command table's indexes
 * (plus one), hashed on the lower-cased name, filled before main() runs.
 * Every command and every applied log entry looks its name up; the linear
 * scan of 150 names this replaced cost a strlen and a strncasecmp per
 * entry passed. */
#define CMD_NAME_BYTES_MAX 32u
#define CMD_LOOKUP_SLOTS 1024u
static uint16_t cmd__slots[CMD_LOOKUP_SLOTS];
static uint8_t cmd__name_len[CMD_LOOKUP_SLOTS];

static uint32_t cmd__name_hash(const char *name, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a over the lower-cased bytes */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        h = (h ^ c) * 16777619u;
    }
    return h;
}

__attribute__((constructor)) static void cmd__lookup_init(void) {
    _Static_assert(CMD_LOOKUP_SLOTS < UINT16_MAX, "indexes fit");
    assert(cmd_table_count * 2 < CMD_LOOKUP_SLOTS);
    for (uint32_t i = 0; i < cmd_table_count; i++) {
        size_t len = strlen(cmd_table[i].name);
        assert(len > 0 && len <= CMD_NAME_BYTES_MAX);
        uint32_t at = cmd__name_hash(cmd_table[i].name, len) & (CMD_LOOKUP_SLOTS - 1);
        while (cmd__slots[at] != 0) at = (at + 1) & (CMD_LOOKUP_SLOTS - 1);
        cmd__slots[at] = (uint16_t)(i + 1);
        cmd__name_len[at] = (uint8_t)len;
    }
}

const struct cmd_def *cmd_lookup(const char *name, size_t len) {
    if (len == 0 || len > CMD_NAME_BYTES_MAX) return NULL;
    uint32_t at = cmd__name_hash(name, len) & (CMD_LOOKUP_SLOTS - 1);
    for (; cmd__slots[at] != 0; at = (at + 1) & (CMD_LOOKUP_SLOTS - 1)) {
        const struct cmd_def *d = &cmd_table[cmd__slots[at] - 1];
        if (cmd__name_len[at] == len && strncasecmp(d->name, name, len) == 0) return d;
    }
    return NULL;
}

bool cmd_arity_ok(const struct cmd_def *def, uint32_t argc) {
    if (def->arity >= 0) return argc == (uint32_t)def->arity;
    return argc >= (uint32_t)-def->arity;
}

/* Redis 7.0's unknown-command error: the name cut to 48 bytes, then quoted
 * arguments while the list is under 128 bytes, each cut to what is left. */
void cmd_reply_unknown(struct resp_out *out, uint32_t argc, const struct resp_arg *argv) {
    char args[512];
    size_t n = 0;
    for (uint32_t i = 1; i < argc && n < 128; i++) {
        int room = 128 - (int)n;
        int w = snprintf(args + n, sizeof(args) - n, "'%.*s' ",
                         (int)(argv[i].len < (size_t)room ? argv[i].len : (size_t)room),
                         argv[i].data);
        if (w < 0) break;
        n += (size_t)w;
    }
    args[n] = '\0';
    resp_write_errorf(out, "ERR unknown command '%.*s', with args beginning with: %s",
                      (int)(argv[0].len < 48 ? argv[0].len : 48), argv[0].data, args);
}

void cmd_reply_arity(struct resp_out *out, const struct cmd_def *def) {
    resp_write_errorf(out, "ERR wrong number of arguments for '%s' command", def->name);
}

void cmd_keys(const struct cmd_def *def, uint32_t argc, const struct resp_arg *argv,
              void (*cb)(void *ctx, const struct resp_arg *key), void *ctx) {
    if (def->first_key <= 0) return;
    if (def->exec == cmd_shoal_exec || def->exec == cmd_shoal_execscript) {
        /* the keys of every command inside */
        cmd_multi_keys(argc, argv, def->exec == cmd_shoal_execscript, cb, ctx);
        return;
    }
    if (def->exec == cmd_sort) { /* STORE's destination is a key too */
        cmd_sort_keys(argc, argv, cb, ctx);
        return;
    }
    if (def->flags & CMD_STREAMKEYS) {
        uint32_t first, count;
        if (!cmd_xread_keys(argc, argv, &first, &count)) return;
        for (uint32_t i = 0; i < count; i++) cb(ctx, &argv[first + i]);
        return;
    }
    if (def->exec == cmd_shoal_script) { /* past now_ms and seed: a SHOAL.EXEC */
        if (argc > 2) cmd_multi_keys(argc - 2, argv + 2, false, cb, ctx);
        return;
    }
    if (def->flags & CMD_NUMKEYS) {
        int64_t numkeys = 0;
        uint32_t at = (uint32_t)def->first_key;
        if ((def->flags & CMD_DSTKEY) && argc > 1) cb(ctx, &argv[1]);
        if (at >= argc || !cmd_parse_i64(argv[at].data, argv[at].len, &numkeys)) return;
        for (int64_t i = 0; i < numkeys && at + 1 + i < argc; i++) cb(ctx, &argv[at + 1 + i]);
        return;
    }
    int64_t last = def->last_key < 0 ? (int64_t)argc + def->last_key : def->last_key;
    for (int64_t i = def->first_key; i <= last && i < (int64_t)argc; i += def->key_step) {
        cb(ctx, &argv[i]);
    }
}

bool cmd_arg_is(const struct resp_arg *arg, const char *word) {
    size_t len = strlen(word);
    return arg->len == len && strncasecmp(arg->data, word, len) == 0;
}

void cmd_reply_kv_error(struct resp_out *out, int err) {
    switch (err) {
    case KV_ETOOBIG: resp_write_errorf(out, "%s", CMD_ERR_TOO_BIG); break;
    case KV_EFULL: resp_write_errorf(out, "OOM command not allowed: the keyspace is full"); break;
    case KV_ENOMEM: resp_write_errorf(out, "OOM command not allowed when used memory > 'maxmemory'."); break;
    case KV_EWRONGTYPE: cmd_reply_wrongtype(out); break;
    default: resp_write_errorf(out, "ERR %s", kv_strerror(err)); break;
    }
}

void cmd_reply_wrongtype(struct resp_out *out) { resp_write_errorf(out, "%s", CMD_ERR_WRONGTYPE); }

bool cmd_parse_i64(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 20) return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool negative = s[0] == '-';
    if (negative) i++;
    if (i >= len || s[i] < '1' || s[i] > '9') return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

static void cmd__touch_cb(void *ctx, const struct resp_arg *key) {
    const struct cmd_env *env = ctx;
#ifdef CANARY_NO_TOUCH /* canary: no command touches its keys (scripts/idletime-canary.sh) */
    (void)env, (void)key;
#else
    (void)kv_touch(env->kv, key->data, key->len, env->now_ms);
#endif
}

/* The touch follows the command: a key it made is touched too (Redis's
 * createObject() stamps it), one it deleted is not found. A write touches
 * with its entry's timestamp on every replica, a read with the clock of the
 * replica that serves it (a follower proxies reads to the leader, so the
 * leader's clock is what OBJECT IDLETIME tells). The clock is no part of
 * the content (kv.h), so replicas may differ in it and nothing else. */
void cmd_exec(const struct cmd_env *env, const struct cmd_def *def, uint32_t argc,
              const struct resp_arg *argv, struct resp_out *out) {
    assert(def->exec != NULL);
    assert(cmd_arity_ok(def, argc));
    def->exec(env, argc, argv, out);
    if (!(def->flags & CMD_NOTOUCH)) cmd_keys(def, argc, argv, cmd__touch_cb, (void *)env);
}

/* ---- log entries ---- */

size_t cmd_entry_size(uint32_t argc, const struct resp_arg *argv) {
    size_t size = 1 + 8 + 4;
    for (uint32_t i = 0; i < argc; i++) size += 4 + argv[i].len;
    return size;
}

static uint8_t *cmd__put(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint64_t cmd__get(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void cmd_entry_encode(uint8_t *buf, int64_t now_ms, uint32_t argc, const struct resp_arg *argv) {
    uint8_t *p = buf;
    *p++ = CMD_ENTRY_VERSION;
    p = cmd__put(p, (uint64_t)now_ms, 8);
    p = cmd__put(p, argc, 4);
    for (uint32_t i = 0; i < argc; i++) {
        assert(argv[i].len <= UINT32_MAX);
        p = cmd__put(p, argv[i].len, 4);
        if (argv[i].len > 0) memcpy(p, argv[i].data, argv[i].len);
        p += argv[i].len;
    }
    assert((size_t)(p - buf) == cmd_entry_size(argc, argv));
}

int cmd_entry_arg(const uint8_t *buf, size_t len, uint32_t i, struct resp_arg *out) {
    if (len < 13 || buf[0] != CMD_ENTRY_VERSION) return -1;
    uint32_t n = (uint32_t)cmd__get(buf + 9, 4);
    if (i >= n) return -1;
    size_t at = 13;
    for (uint32_t k = 0;; k++) {
        if (len - at < 4) return -1;
        uint64_t l = cmd__get(buf + at, 4);
        at += 4;
        if (len - at < l) return -1;
        if (k == i) {
            out->data = (const char *)buf + at;
            out->len = (size_t)l;
            return 0;
        }
        at += l;
    }
}

int cmd_entry_clock(const uint8_t *buf, size_t len, int64_t *now_ms) {
    if (len < 13 || buf[0] != CMD_ENTRY_VERSION) return -1;
    *now_ms = (int64_t)cmd__get(buf + 1, 8);
    return 0;
}

int cmd_entry_decode(const uint8_t *buf, size_t len, int64_t *now_ms, uint32_t *argc,
                     struct resp_arg **argv) {
    *argv = NULL;
    if (cmd_entry_clock(buf, len, now_ms) != 0) return -1;
    uint32_t n = (uint32_t)cmd__get(buf + 9, 4);
    if (n == 0 || n > CMD_ENTRY_ARGS_MAX || n > (len - 13) / 4) return -1;
    struct resp_arg *args = calloc(n, sizeof(*args));
    if (args == NULL) return -1;
    size_t at = 13;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 4) goto fail;
        uint64_t l = cmd__get(buf + at, 4);
        at += 4;
        if (len - at < l) goto fail;
        args[i].data = (const char *)buf + at;
        args[i].len = (size_t)l;
        at += l;
    }
    if (at != len) goto fail;
    *argc = n;
    *argv = args;
    return 0;
fail:
    free(args);
    return -1;
}
