/* cmd_int.h: internal to src/cmd/: the implementations and shared helpers. */
#ifndef SHOAL_CMD_INT_H
#define SHOAL_CMD_INT_H

#include "cmd/cmd.h"

#define CMD_ERR_SYNTAX "ERR syntax error"
#define CMD_ERR_NOT_INT "ERR value is not an integer or out of range"
#define CMD_ERR_NOT_FLOAT "ERR value is not a valid float"
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

/* transactions (cmd_multi.c) */
CMD_FN(cmd_shoal_exec);
CMD_FN(cmd_shoal_watch);
void cmd_multi_keys(uint32_t argc, const struct resp_arg *argv,
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
CMD_FN(cmd_flushdb);

/* helpers (cmd.c) */
bool cmd_arg_is(const struct resp_arg *arg, const char *word); /* case-insensitive */
void cmd_reply_kv_error(struct resp_out *out, int err);

#endif
