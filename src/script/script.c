/* script.c: the Lua engine behind EVAL (see script.h and docs/scripting.md).
 *
 * Lua 5.1 (Debian's liblua5.1) with the libraries Redis 7.0 gives scripts:
 * base (less dofile, loadfile, print, require, module, getfenv, setfenv,
 * newproxy), table, string, math (random seeded as Redis seeds it),
 * cjson and bit (Debian's builds), struct and cmsgpack (lua_struct.c and
 * lua_msgpack.c: Debian ships neither for Lua 5.1). Globals and library tables are read-only as in Redis
 * 7.0.15: the global table is an empty proxy whose metatable reads a
 * hidden table and refuses writes; rawset, rawget and setmetatable know
 * the proxies. */
#include "script/script.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cmd/cmd.h"

int luaopen_cjson(lua_State *L);
int luaopen_bit(lua_State *L);
int luaopen_struct(lua_State *L);   /* lua_struct.c */
int luaopen_cmsgpack(lua_State *L); /* lua_msgpack.c */

#define SCRIPT__BUCKETS 4096u
#define SCRIPT__VERSION "7.0.0"
#define SCRIPT__VERSION_NUM 0x070000

struct script__cached {
    struct script__cached *next;
    char sha[41];
    size_t len;
    char body[];
};

struct script__key { /* a key the run touched */
    size_t off, len; /* in keys */
    char digest[17];
    bool saved;      /* copied into the undo keyspace before its first write */
};

struct script__buf {
    char *data;
    size_t len, cap;
    bool failed;
};

struct script_engine {
    lua_State *L;
    uint64_t mem_used;
    struct script__cached *buckets[SCRIPT__BUCKETS];
    uint32_t n_cached;
    uint64_t cached_bytes;
    struct kv *undo;
    /* the run in progress */
    const struct script_ctx *ctx;
    bool ro, stopped, keyspace_read;
    uint8_t resp;
    uint64_t started_ms;
    uint64_t rand48;
    struct script__key *keys;
    uint32_t n_keys, cap_keys;
    uint32_t *key_index; /* open addressing over keys: index + 1, 0 free */
    uint32_t key_index_cap;
    struct script__buf key_bytes;
    struct script__buf writes; /* per command: u32 argc, then per arg u32 len | bytes */
    uint32_t n_writes;
    char sha[41];
    char run_name[256]; /* errors name it: the script's sha, or the function */
    uint32_t libs_cached; /* libraries compiled for FCALL (registry shoal_libs) */
};

/* ---- small helpers ---- */

static bool script__buf_add(struct script__buf *b, const void *p, size_t n) {
    if (b->failed) return false;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) return !(b->failed = true);
        b->data = d;
        b->cap = cap;
    }
    if (n > 0) memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static void script__buf_free(struct script__buf *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static uint64_t script__hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* ---- SHA1 (FIPS 180-1), for script names and redis.sha1hex ---- */

static uint32_t script__rol(uint32_t v, int k) { return (v << k) | (v >> (32 - k)); }

static void script__sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) {
        w[i] = script__rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = script__rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = script__rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void script_sha1hex(const void *data, size_t len, char out[41]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64) script__sha1_block(h, p);
    uint8_t tail[128] = {0};
    if (left > 0) memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t n = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    script__sha1_block(h, tail);
    if (n == 128) script__sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* ---- rand48 (Redis's redisLrand48: math.random) ---- */

static int32_t script__lrand48(struct script_engine *e) {
    e->rand48 = (e->rand48 * 0x5DEECE66Dull + 0xB) & ((1ull << 48) - 1);
    return (int32_t)(e->rand48 >> 17);
}

static void script__srand48(struct script_engine *e, int32_t seed) {
    e->rand48 = ((uint64_t)(uint32_t)seed << 16) | 0x330E;
}

static struct script_engine *script__engine(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int script__math_random(lua_State *L) {
    struct script_engine *e = script__engine(L);
    lua_Number r = (lua_Number)(script__lrand48(e) % INT32_MAX) / (lua_Number)INT32_MAX;
    switch (lua_gettop(L)) {
    case 0: lua_pushnumber(L, r); break;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(r * u) + 1);
        break;
    }
    case 2: {
        int l = luaL_checkint(L, 1);
        int u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (u - l + 1)) + l);
        break;
    }
    default: return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int script__math_randomseed(lua_State *L) {
    script__srand48(script__engine(L), (int32_t)luaL_checkint(L, 1));
    return 0;
}

/* ---- errors as Redis shapes them ---- */

/* luaPushErrorBuff: "-CODE msg" or "msg" (code ERR) as {err="CODE msg"}. */
static void script__push_error(lua_State *L, const char *s, size_t len) {
    const char *code = "ERR";
    size_t code_len = 3;
    const char *msg = s;
    size_t msg_len = len;
    if (len > 0 && s[0] == '-') {
        const char *sp = memchr(s, ' ', len);
        if (sp == NULL) {
            msg = s + 1;
            msg_len = len - 1;
        } else {
            code = s + 1;
            code_len = (size_t)(sp - s - 1);
            msg = sp + 1;
            msg_len = len - (size_t)(sp + 1 - s);
        }
    }
    while (msg_len > 0 && (msg[msg_len - 1] == '\r' || msg[msg_len - 1] == '\n')) msg_len--;
    while (msg_len > 0 && (msg[0] == '\r' || msg[0] == '\n')) msg++, msg_len--;
    lua_newtable(L);
    lua_pushstring(L, "err");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, code, code_len);
    luaL_addchar(&b, ' ');
    luaL_addlstring(&b, msg, msg_len);
    luaL_pushresult(&b);
    lua_settable(L, -3);
}

static int script__raise(lua_State *L, const char *msg) {
    script__push_error(L, msg, strlen(msg));
    return lua_error(L);
}

#define SCRIPT__STOPPED_MSG                                                                   \
    "ERR Script stopped: it ran past the time limit (lua-time-limit, capped below the "      \
    "election timeout); nothing it wrote was applied"

static void script__hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    struct script_engine *e = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_engine");
    e = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (e == NULL || e->ctx == NULL) return;
    if (!e->stopped) {
        uint64_t now = e->ctx->clock_ms ? e->ctx->clock_ms(e->ctx->clock_ctx) : 0;
        if (now - e->started_ms <= e->ctx->time_limit_ms) return;
        e->stopped = true;
        /* every line from now on raises again: a pcall cannot swallow it */
        lua_sethook(L, script__hook, LUA_MASKLINE, 0);
    }
    script__raise(L, SCRIPT__STOPPED_MSG);
}

/* ---- RESP replies to Lua values (redisProtocolToLuaType) ---- */

static bool script__line(const char **p, const char *end, const char **s, size_t *len) {
    const char *q = *p;
    const char *nl = memchr(q, '\r', (size_t)(end - q));
    if (nl == NULL || nl + 1 >= end) return false;
    *s = q;
    *len = (size_t)(nl - q);
    *p = nl + 2;
    return true;
}

static bool script__num(const char *s, size_t len, int64_t *v) {
    return cmd_parse_i64(s, len, v);
}

/* Pushes the value of the reply element at *p; false if malformed. */
static bool script__push_reply(lua_State *L, const char **p, const char *end, uint32_t depth) {
    if (*p >= end || depth > SCRIPT_REPLY_DEPTH_MAX || !lua_checkstack(L, 6)) return false;
    char t = **p;
    (*p)++;
    const char *s;
    size_t len;
    if (!script__line(p, end, &s, &len)) return false;
    int64_t n = 0;
    switch (t) {
    case '+':
        lua_newtable(L);
        lua_pushstring(L, "ok");
        lua_pushlstring(L, s, len);
        lua_settable(L, -3);
        return true;
    case '-': {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addchar(&b, '-');
        luaL_addlstring(&b, s, len);
        luaL_pushresult(&b);
        size_t l;
        const char *m = lua_tolstring(L, -1, &l);
        script__push_error(L, m, l);
        lua_remove(L, -2);
        lua_pushstring(L, "ignore_error_stats_update");
        lua_pushboolean(L, 1);
        lua_settable(L, -3);
        return true;
    }
    case ':':
        if (!script__num(s, len, &n)) return false;
        lua_pushnumber(L, (lua_Number)n);
        return true;
    case '$':
    case '=':
        if (!script__num(s, len, &n)) return false;
        if (n < 0) {
            lua_pushboolean(L, 0);
            return true;
        }
        if ((uint64_t)(end - *p) < (uint64_t)n + 2) return false;
        if (t == '=') { /* verbatim: {verbatim_string={format=, string=}} */
            if (n < 4) return false;
            lua_newtable(L);
            lua_pushstring(L, "verbatim_string");
            lua_newtable(L);
            lua_pushstring(L, "format");
            lua_pushlstring(L, *p, 3);
            lua_settable(L, -3);
            lua_pushstring(L, "string");
            lua_pushlstring(L, *p + 4, (size_t)n - 4);
            lua_settable(L, -3);
            lua_settable(L, -3);
        } else {
            lua_pushlstring(L, *p, (size_t)n);
        }
        *p += n + 2;
        return true;
    case '*':
    case '~':
    case '%':
    case '>': {
        if (!script__num(s, len, &n)) return false;
        if (n < 0) {
            lua_pushboolean(L, 0);
            return true;
        }
        lua_newtable(L);
        if (t == '~' || t == '%') {
            lua_pushstring(L, t == '~' ? "set" : "map");
            lua_newtable(L);
        }
        for (int64_t i = 0; i < n; i++) {
            if (t == '%' || t == '~') {
                if (!script__push_reply(L, p, end, depth + 1)) return false;
                if (t == '%') {
                    if (!script__push_reply(L, p, end, depth + 1)) return false;
                } else {
                    lua_pushboolean(L, 1);
                }
                lua_settable(L, -3);
            } else {
                if (!script__push_reply(L, p, end, depth + 1)) return false;
                lua_rawseti(L, -2, (int)(i + 1));
            }
        }
        if (t == '~' || t == '%') lua_settable(L, -3);
        return true;
    }
    case '_': lua_pushnil(L); return true;
    case '#': lua_pushboolean(L, len == 1 && s[0] == 't'); return true;
    case ',': {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 63 ? len : 63), s);
        lua_newtable(L);
        lua_pushstring(L, "double");
        lua_pushnumber(L, strtod(buf, NULL));
        lua_settable(L, -3);
        return true;
    }
    case '(':
        lua_newtable(L);
        lua_pushstring(L, "big_number");
        lua_pushlstring(L, s, len);
        lua_settable(L, -3);
        return true;
    default: return false;
    }
}

/* ---- keys the run touches ---- */

static struct script__key *script__key_find(struct script_engine *e, const struct resp_arg *k) {
    if (e->key_index_cap == 0) return NULL;
    uint64_t h = script__hash(k->data, k->len);
    for (uint32_t i = 0; i < e->key_index_cap; i++) {
        uint32_t at = (uint32_t)((h + i) & (e->key_index_cap - 1));
        uint32_t v = e->key_index[at];
        if (v == 0) return NULL;
        struct script__key *x = &e->keys[v - 1];
        if (x->len == k->len && memcmp(e->key_bytes.data + x->off, k->data, k->len) == 0) return x;
    }
    return NULL;
}

static bool script__key_index_put(struct script_engine *e, uint32_t idx) {
    const struct script__key *x = &e->keys[idx];
    uint64_t h = script__hash(e->key_bytes.data + x->off, x->len);
    for (uint32_t i = 0; i < e->key_index_cap; i++) {
        uint32_t at = (uint32_t)((h + i) & (e->key_index_cap - 1));
        if (e->key_index[at] == 0) {
            e->key_index[at] = idx + 1;
            return true;
        }
    }
    return false;
}

static bool script__key_grow(struct script_engine *e) {
    if (e->n_keys == e->cap_keys) {
        uint32_t cap = e->cap_keys ? e->cap_keys * 2 : 16;
        struct script__key *k = realloc(e->keys, cap * sizeof(*k));
        if (k == NULL) return false;
        e->keys = k;
        e->cap_keys = cap;
    }
    if ((e->n_keys + 1) * 2 > e->key_index_cap) {
        uint32_t cap = e->key_index_cap ? e->key_index_cap * 2 : 64;
        uint32_t *ix = calloc(cap, sizeof(*ix));
        if (ix == NULL) return false;
        free(e->key_index);
        e->key_index = ix;
        e->key_index_cap = cap;
        for (uint32_t i = 0; i < e->n_keys; i++) (void)script__key_index_put(e, i);
    }
    return true;
}

/* The key's record, made (with its digest now) on first touch; NULL and
 * *err when the run touches too many keys or memory runs out. */
static struct script__key *script__touch(struct script_engine *e, const struct resp_arg *k,
                                         const char **err) {
    struct script__key *x = script__key_find(e, k);
    if (x != NULL) return x;
    if (e->n_keys >= SCRIPT_KEYS_MAX) {
        *err = "ERR a script touches at most 100000 keys in shoal";
        return NULL;
    }
    size_t off = e->key_bytes.len;
    if (!script__key_grow(e) || !script__buf_add(&e->key_bytes, k->data, k->len)) {
        *err = "OOM out of memory recording the script's keys";
        return NULL;
    }
    x = &e->keys[e->n_keys];
    x->off = off;
    x->len = k->len;
    x->saved = false;
    uint64_t d = kv_key_digest(e->ctx->kv, k->data, k->len, e->ctx->now_ms);
    snprintf(x->digest, sizeof(x->digest), "%016" PRIx64, d);
    (void)script__key_index_put(e, e->n_keys);
    e->n_keys++;
    return x;
}

struct script__keys_check {
    struct script_engine *e;
    bool write;
    const char *err;
};

static void script__key_cb(void *ctx, const struct resp_arg *key) {
    struct script__keys_check *kc = ctx;
    struct script_engine *e = kc->e;
    if (kc->err != NULL) return;
    if (e->ctx->key_here != NULL && !e->ctx->key_here(e->ctx->key_ctx, key)) {
        kc->err = "ERR Script attempted to access a non local key in a cluster node";
        return;
    }
    struct script__key *x = script__touch(e, key, &kc->err);
    if (x == NULL || !kc->write || x->saved) return;
    if (kv_key_copy(e->undo, e->ctx->kv, key->data, key->len) != KV_OK) {
        kc->err = "OOM out of memory keeping the script's undo copy";
        return;
    }
    x->saved = true;
}

/* ---- redis.call and redis.pcall ---- */

static bool script__record_write(struct script_engine *e, uint32_t argc,
                                 const struct resp_arg *argv) {
    uint64_t bytes = 4;
    for (uint32_t i = 0; i < argc; i++) bytes += 4 + argv[i].len;
    if (e->n_writes >= SCRIPT_WRITES_MAX || e->writes.len + bytes > SCRIPT_WRITES_BYTES_MAX) {
        return false;
    }
    uint32_t n = argc;
    if (!script__buf_add(&e->writes, &n, 4)) return false;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t l = (uint32_t)argv[i].len;
        if (!script__buf_add(&e->writes, &l, 4) ||
            !script__buf_add(&e->writes, argv[i].data, argv[i].len)) {
            return false;
        }
    }
    e->n_writes++;
    return true;
}

/* TIME's reply (seconds, microseconds) for a clock in milliseconds: a
 * script sees one time for its whole run (the leader's, when it began), as
 * its commands do; what it writes with it is replicated as written. */
static void script__write_time(int64_t now_ms, struct resp_out *out) {
    assert(now_ms >= 0);
    char s[24];
    char us[24];
    int ls = snprintf(s, sizeof(s), "%lld", (long long)(now_ms / 1000));
    int lu = snprintf(us, sizeof(us), "%lld", (long long)(now_ms % 1000) * 1000);
    assert(ls > 0 && lu > 0);
    resp_write_array(out, 2);
    resp_write_bulk(out, s, (size_t)ls);
    resp_write_bulk(out, us, (size_t)lu);
}

/* Runs one command for the script into out; NULL, or the refusal (a
 * message for script__raise). */
static const char *script__command(struct script_engine *e, uint32_t argc,
                                   const struct resp_arg *argv, struct resp_out *out) {
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    if (def == NULL) return "Unknown Redis command called from script";
    if (!cmd_arity_ok(def, argc)) return "Wrong number of args calling Redis command from script";
    if (def->exec == NULL) {
        if (strcmp(def->name, "ping") == 0 && argc <= 2) {
            if (argc == 1) resp_write_simple(out, "PONG", 4);
            else resp_write_bulk(out, argv[1].data, argv[1].len);
            return NULL;
        }
        if (strcmp(def->name, "echo") == 0) {
            resp_write_bulk(out, argv[1].data, argv[1].len);
            return NULL;
        }
        if (strcmp(def->name, "time") == 0) { /* the run's clock, as its commands see it */
            script__write_time(e->ctx->now_ms, out);
            return NULL;
        }
        return "This Redis command is not allowed from script";
    }
    /* internal forms (SHOAL.EXEC, SHOAL.SCRIPT) and EVAL itself cannot be
     * one of the writes of a SHOAL.SCRIPT */
    if ((def->flags & (CMD_NOSCRIPT | CMD_BLOCKING)) || !cmd_multi_allowed(def, argc)) {
        return "This Redis command is not allowed from script";
    }
    bool write = (def->flags & CMD_WRITE) != 0;
    if (write && def->first_key <= 0) return "This Redis command is not allowed from script";
    if (write && e->ro) return "Write commands are not allowed from read-only scripts.";
    if (write && e->ctx->oom && (def->flags & CMD_DENYOOM) && e->n_writes == 0) {
        return "-OOM command not allowed when used memory > 'maxmemory'.";
    }
    if (def->first_key <= 0) e->keyspace_read = true;
    struct script__keys_check kc = {.e = e, .write = write};
    cmd_keys(def, argc, argv, script__key_cb, &kc);
    if (kc.err != NULL) return kc.err;
    if (write && !script__record_write(e, argc, argv)) {
        return "ERR a script's writes fit in one log entry: at most 100000 commands and 64 MB";
    }
    struct cmd_env env = {.kv = e->ctx->kv, .now_ms = e->ctx->now_ms, .rng = e->ctx->rng,
                          .seed = e->ctx->seed, .bulk_max = e->ctx->bulk_max};
    cmd_exec(&env, def, argc, argv, out);
    return NULL;
}

#define SCRIPT__ARGS_STACK 16

static int script__call_generic(lua_State *L, bool raise) {
    struct script_engine *e = script__engine(L);
    int argc = lua_gettop(L);
    if (e->stopped) return script__raise(L, SCRIPT__STOPPED_MSG);
    if (argc == 0) {
        static const char none[] = "Please specify at least one argument for this redis lib call";
        script__push_error(L, none, sizeof(none) - 1);
        return raise ? lua_error(L) : 1;
    }
    struct resp_arg stack_argv[SCRIPT__ARGS_STACK];
    struct resp_arg *argv = argc <= SCRIPT__ARGS_STACK ? stack_argv
                                                       : malloc((size_t)argc * sizeof(*argv));
    if (argv == NULL) return luaL_error(L, "out of memory");
    for (int i = 0; i < argc; i++) {
        int t = lua_type(L, i + 1);
        if (t == LUA_TNUMBER) { /* as Redis: %.17g, then the string */
            char num[64];
            snprintf(num, sizeof(num), "%.17g", (double)lua_tonumber(L, i + 1));
            lua_pushstring(L, num);
            lua_replace(L, i + 1);
        } else if (t != LUA_TSTRING) {
            if (argv != stack_argv) free(argv);
            static const char bad[] = "Lua redis lib command arguments must be strings or integers";
            script__push_error(L, bad, sizeof(bad) - 1);
            return raise ? lua_error(L) : 1;
        }
        argv[i].data = lua_tolstring(L, i + 1, &argv[i].len);
    }
    struct resp_out out;
    resp_out_init(&out, e->resp, (size_t)1 << 30, NULL);
    const char *refused = script__command(e, (uint32_t)argc, argv, &out);
    if (argv != stack_argv) free(argv);
    if (refused != NULL) {
        resp_out_free(&out);
        script__push_error(L, refused, strlen(refused));
        return raise ? lua_error(L) : 1;
    }
    if (resp_out_error(&out) != RESP_OK) {
        resp_out_free(&out);
        return script__raise(L, "ERR reply too large for a script");
    }
    const char *p = resp_out_data(&out), *end = p + resp_out_len(&out);
    bool is_error = p < end && p[0] == '-';
    bool ok = script__push_reply(L, &p, end, 0);
    resp_out_free(&out);
    if (!ok) return script__raise(L, "ERR shoal: a reply the script could not read");
    if (raise && is_error) return lua_error(L);
    return 1;
}

static int script__call(lua_State *L) { return script__call_generic(L, true); }
static int script__pcall(lua_State *L) { return script__call_generic(L, false); }

/* ---- the rest of the redis table ---- */

static int script__sha1hex_fn(lua_State *L) {
    if (lua_gettop(L) != 1) return script__raise(L, "wrong number of arguments");
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    char sha[41];
    script_sha1hex(s != NULL ? s : "", s != NULL ? len : 0, sha);
    lua_pushstring(L, sha);
    return 1;
}

/* A wrong call of error_reply or status_reply returns (not raises) the
 * error, as Redis 7.0 does. */
static int script__wrong_args(lua_State *L) {
    static const char msg[] = "wrong number or type of arguments";
    script__push_error(L, msg, sizeof(msg) - 1);
    return 1;
}

static int script__reply_table(lua_State *L, const char *field) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) return script__wrong_args(L);
    lua_newtable(L);
    lua_pushstring(L, field);
    lua_pushvalue(L, -3);
    lua_settable(L, -3);
    return 1;
}

static int script__error_reply(lua_State *L) {
    if (lua_gettop(L) != 1 || lua_type(L, -1) != LUA_TSTRING) return script__wrong_args(L);
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (len > 0 && s[0] == '-') {
        script__push_error(L, s, len);
    } else {
        lua_pushfstring(L, "-%s", s);
        const char *m = lua_tolstring(L, -1, &len);
        script__push_error(L, m, len);
    }
    return 1;
}

static int script__status_reply(lua_State *L) { return script__reply_table(L, "ok"); }

static int script__log(lua_State *L) {
    if (lua_gettop(L) < 2) return script__raise(L, "redis.log() requires two arguments or more.");
    if (!lua_isnumber(L, 1)) {
        return script__raise(L, "First argument must be a number (log level).");
    }
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3) return script__raise(L, "Invalid debug level.");
    return 0; /* shoal keeps no script log (docs/scripting.md) */
}

static int script__setresp(lua_State *L) {
    struct script_engine *e = script__engine(L);
    if (lua_gettop(L) != 1) return script__raise(L, "redis.setresp() requires one argument.");
    int resp = (int)lua_tonumber(L, -1);
    if (resp != 2 && resp != 3) return script__raise(L, "RESP version must be 2 or 3.");
    e->resp = (uint8_t)resp;
    return 0;
}

static int script__set_repl(lua_State *L) {
    if (lua_gettop(L) != 1) return script__raise(L, "redis.set_repl() requires one argument.");
    int flags = (int)lua_tonumber(L, -1);
    if (flags < 0 || flags > 3) {
        return script__raise(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                                "REPL_ALL or REPL_NONE.");
    }
    return 0; /* a script's writes are always one log entry */
}

static int script__true(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

static int script__false(lua_State *L) {
    lua_pushboolean(L, 0);
    return 1;
}

static int script__nothing(lua_State *L) {
    (void)L;
    return 0;
}

/* ---- read-only tables ---- */

/* Whether the value at idx is a proxy (registry "shoal_proxies": proxy ->
 * backing table). Pushes the backing table if so. */
static bool script__proxy_backing(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return false;
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_proxies");
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return false;
    }
    return true;
}

/* Raised from C with no position, as Redis's read-only tables do. */
static int script__readonly(lua_State *L) {
    lua_pushstring(L, "Attempt to modify a readonly table");
    return lua_error(L);
}

static int script__rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (script__proxy_backing(L, 1)) return script__readonly(L);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int script__rawget(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    if (script__proxy_backing(L, 1)) lua_replace(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int script__setmetatable(lua_State *L) {
    if (script__proxy_backing(L, 1)) return script__readonly(L);
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table expected");
    if (luaL_getmetafield(L, 1, "__metatable")) {
        luaL_error(L, "cannot change a protected metatable");
    }
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* The metamethods, in Lua so that error(..., 2) names the script's line. */
static const char script__proxy_code[] =
    "local backing, strict, rawget, error, tostring = ...\n"
    "local mt = {}\n"
    "mt.__index = function(t, n)\n"
    "  local v = rawget(backing, n)\n"
    "  if v == nil and strict then\n"
    "    error(\"Script attempted to access nonexistent global variable '\"\n"
    "          ..tostring(n)..\"'\", 2)\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "mt.__newindex = function(t, n, v) error('Attempt to modify a readonly table', 2) end\n"
    "return mt\n";

/* Replaces the table at top with a read-only proxy of it (the table
 * stays reachable as the backing). Leaves the proxy on the stack. */
static void script__protect(lua_State *L, bool strict) {
    int backing = lua_gettop(L);
    lua_newtable(L); /* the proxy */
    int proxy = lua_gettop(L);
    if (luaL_loadbuffer(L, script__proxy_code, sizeof(script__proxy_code) - 1, "=shoal") != 0) {
        abort(); /* our own code */
    }
    lua_pushvalue(L, backing);
    lua_pushboolean(L, strict);
    lua_pushcfunction(L, script__rawget); /* the backing is never a proxy: a raw get */
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_error");
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_tostring");
    lua_call(L, 5, 1); /* the metatable */
    lua_newtable(L);   /* getmetatable answers an empty read-only table */
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, proxy);
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_proxies");
    lua_pushvalue(L, proxy);
    lua_pushvalue(L, backing);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_remove(L, backing);
}

static const char *const script__globals_allowed[] = {
    "assert", "collectgarbage", "error", "gcinfo", "getmetatable", "ipairs", "load",
    "loadstring", "next", "pairs", "pcall", "rawequal", "rawget", "rawset", "select",
    "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_G", "_VERSION",
    "coroutine", "string", "table", "math", "bit", "cjson", "struct", "cmsgpack", "redis",
    "__redis__err__handler", NULL};

static bool script__allowed(const char *name) {
    for (const char *const *a = script__globals_allowed; *a != NULL; a++) {
        if (strcmp(*a, name) == 0) return true;
    }
    return false;
}

static const char script__err_handler_code[] =
    "local dbg = debug\n"
    "return function(err)\n"
    "  local l = 2\n"
    "  local i = dbg.getinfo(l,'nSl')\n"
    "  if i and i.what == 'C' then\n"
    "    l = l + 1\n"
    "    i = dbg.getinfo(l,'nSl')\n"
    "  end\n"
    "  if i and i.source == '=shoal' then\n" /* a read-only table's metamethod */
    "    i = dbg.getinfo(l + 1,'nSl')\n"
    "  end\n"
    "  if type(err) ~= 'table' then\n"
    "    err = {err='ERR ' .. tostring(err)}\n"
    "  end\n"
    "  if i then\n"
    "    err['source'] = i.source\n"
    "    err['line'] = i.currentline\n"
    "  end\n"
    "  return err\n"
    "end\n";

/* loadstring and load: the chunk runs with the read-only globals. */
static int script__loadstring(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    if (lua_isfunction(L, 1)) {
        lua_pushvalue(L, LUA_GLOBALSINDEX);
        lua_setfenv(L, 1);
    }
    return lua_gettop(L);
}

static void script__lib(lua_State *L, lua_CFunction open, const char *name) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (name[0] != '\0' && lua_istable(L, -1)) {
        lua_setglobal(L, name);
    } else {
        lua_pop(L, 1);
    }
}

static void script__fn(lua_State *L, struct script_engine *e, const char *name,
                       lua_CFunction f) {
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

static void script__redis_table(lua_State *L, struct script_engine *e) {
    lua_newtable(L);
    script__fn(L, e, "call", script__call);
    script__fn(L, e, "pcall", script__pcall);
    script__fn(L, e, "sha1hex", script__sha1hex_fn);
    script__fn(L, e, "error_reply", script__error_reply);
    script__fn(L, e, "status_reply", script__status_reply);
    script__fn(L, e, "log", script__log);
    script__fn(L, e, "setresp", script__setresp);
    script__fn(L, e, "set_repl", script__set_repl);
    script__fn(L, e, "replicate_commands", script__true);
    script__fn(L, e, "breakpoint", script__false);
    script__fn(L, e, "debug", script__nothing);
    static const struct { const char *name; int v; } consts[] = {
        {"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3},
        {"REPL_NONE", 0}, {"REPL_AOF", 1}, {"REPL_SLAVE", 2}, {"REPL_REPLICA", 2},
        {"REPL_ALL", 3}, {"REDIS_VERSION_NUM", SCRIPT__VERSION_NUM}};
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
        lua_pushinteger(L, consts[i].v);
        lua_setfield(L, -2, consts[i].name);
    }
    lua_pushstring(L, SCRIPT__VERSION);
    lua_setfield(L, -2, "REDIS_VERSION");
    lua_setglobal(L, "redis");
}

static void *script__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct script_engine *e = ud;
    if (nsize == 0) {
        free(ptr);
        e->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && e->mem_used + (nsize - osize) > SCRIPT_MEMORY_BYTES_MAX) return NULL;
    void *p = realloc(ptr, nsize);
    if (p != NULL) e->mem_used = e->mem_used - osize + nsize;
    return p;
}

static lua_State *script__state(struct script_engine *e) {
    e->mem_used = 0;
    lua_State *L = lua_newstate(script__alloc, e);
    if (L == NULL) return NULL;
    lua_pushlightuserdata(L, e);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_engine");
    lua_newtable(L);
    lua_newtable(L);
    lua_pushstring(L, "k");
    lua_setfield(L, -2, "__mode"); /* weak keys */
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_proxies");
    script__lib(L, luaopen_base, "");
    script__lib(L, luaopen_table, LUA_TABLIBNAME);
    script__lib(L, luaopen_string, LUA_STRLIBNAME);
    script__lib(L, luaopen_math, LUA_MATHLIBNAME);
    script__lib(L, luaopen_debug, LUA_DBLIBNAME);
    script__lib(L, luaopen_cjson, "cjson");
    script__lib(L, luaopen_bit, "bit");
    script__lib(L, luaopen_struct, "struct");
    script__lib(L, luaopen_cmsgpack, "cmsgpack");
    lua_getglobal(L, "error");
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_error");
    lua_getglobal(L, "tostring");
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_tostring");
    lua_getglobal(L, "math");
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, script__math_random, 1);
    lua_setfield(L, -2, "random");
    lua_pushlightuserdata(L, e);
    lua_pushcclosure(L, script__math_randomseed, 1);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
    script__redis_table(L, e);
    /* the error handler, with its own reference to debug */
    if (luaL_loadbuffer(L, script__err_handler_code, sizeof(script__err_handler_code) - 1,
                        "=shoal_err_handler") != 0) {
        abort();
    }
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_err_handler");
    lua_setglobal(L, "__redis__err__handler");
    lua_getglobal(L, "loadstring");
    lua_pushcclosure(L, script__loadstring, 1);
    lua_setglobal(L, "loadstring");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, script__loadstring, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, script__rawget);
    lua_setglobal(L, "rawget");
    lua_pushcfunction(L, script__rawset);
    lua_setglobal(L, "rawset");
    lua_pushcfunction(L, script__setmetatable);
    lua_setglobal(L, "setmetatable");
    /* drop what scripts may not see */
    for (;;) {
        bool removed = false;
        lua_pushnil(L);
        while (lua_next(L, LUA_GLOBALSINDEX) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING && !script__allowed(lua_tostring(L, -1))) {
                lua_pushnil(L);
                lua_rawset(L, LUA_GLOBALSINDEX);
                removed = true;
                break;
            }
        }
        if (!removed) break;
    }
    /* library tables, then the globals, read-only */
    static const char *const libs[] = {"coroutine", "string", "table", "math", "bit", "cjson",
                                       "struct", "cmsgpack", "redis"};
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        lua_getglobal(L, libs[i]);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        script__protect(L, false);
        lua_setglobal(L, libs[i]);
    }
    lua_pushvalue(L, LUA_GLOBALSINDEX); /* the backing globals */
    lua_pushvalue(L, -1);
    script__protect(L, true);           /* backing, proxy */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_G");          /* _G names the proxy */
    lua_replace(L, LUA_GLOBALSINDEX);   /* functions made from now on see the proxy */
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_globals"); /* the backing, for KEYS/ARGV */
    return L;
}

/* ---- the cache ---- */

static uint32_t script__bucket(const char *sha) {
    return (uint32_t)(script__hash(sha, 40) % SCRIPT__BUCKETS);
}

static struct script__cached *script__find(const struct script_engine *e, const char *sha) {
    for (struct script__cached *c = e->buckets[script__bucket(sha)]; c != NULL; c = c->next) {
        if (memcmp(c->sha, sha, 40) == 0) return c;
    }
    return NULL;
}

static void script__cache_clear(struct script_engine *e) {
    for (uint32_t i = 0; i < SCRIPT__BUCKETS; i++) {
        while (e->buckets[i] != NULL) {
            struct script__cached *c = e->buckets[i];
            e->buckets[i] = c->next;
            free(c);
        }
    }
    e->n_cached = 0;
    e->cached_bytes = 0;
}

struct script_engine *script_engine_create(void) {
    struct script_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) return NULL;
    struct kv_config kc;
    kv_config_default(&kc);
    e->undo = kv_create(&kc);
    e->L = e->undo != NULL ? script__state(e) : NULL;
    if (e->L == NULL) {
        script_engine_destroy(e);
        return NULL;
    }
    return e;
}

void script_engine_destroy(struct script_engine *e) {
    if (e == NULL) return;
    if (e->L != NULL) lua_close(e->L);
    if (e->undo != NULL) kv_destroy(e->undo);
    script__cache_clear(e);
    free(e->keys);
    free(e->key_index);
    script__buf_free(&e->key_bytes);
    script__buf_free(&e->writes);
    free(e);
}

void script_flush(struct script_engine *e) {
    script__cache_clear(e);
    lua_close(e->L);
    e->L = script__state(e);
    if (e->L == NULL) abort(); /* a fresh state at start-up size */
}

uint32_t script_cached(const struct script_engine *e) { return e->n_cached; }

static void script__lower_sha(const char *sha, char out[41]) {
    for (int i = 0; i < 40; i++) out[i] = (char)tolower((unsigned char)sha[i]);
    out[40] = '\0';
}

bool script_exists(const struct script_engine *e, const char *sha, size_t len) {
    if (len != 40) return false;
    char s[41];
    script__lower_sha(sha, s);
    return script__find(e, s) != NULL;
}

const char *script_body(const struct script_engine *e, const char *sha, size_t len,
                        size_t *body_len) {
    if (len != 40) return NULL;
    char s[41];
    script__lower_sha(sha, s);
    const struct script__cached *c = script__find(e, s);
    if (c == NULL) return NULL;
    *body_len = c->len;
    return c->body;
}

/* Compiles body as the function f_<sha> in the registry and caches it. */
static int script__compile(struct script_engine *e, const char *body, size_t len,
                           const char *sha, struct resp_out *err) {
    if (script__find(e, sha) != NULL) return 0;
    if (len > SCRIPT_BODY_BYTES_MAX) {
        resp_write_errorf(err, "ERR a script is at most %u bytes in shoal", SCRIPT_BODY_BYTES_MAX);
        return -1;
    }
    if (e->n_cached >= SCRIPT_CACHE_MAX || e->cached_bytes + len > SCRIPT_CACHE_BYTES_MAX) {
        script_flush(e); /* Redis 7.0 never empties it; shoal bounds it */
    }
    lua_State *L = e->L;
    if (luaL_loadbuffer(L, body, len, "@user_script") != 0) {
        const char *m = lua_tostring(L, -1);
        resp_write_errorf(err, "ERR Error compiling script (new function): %s", m ? m : "?");
        lua_pop(L, 1);
        return -1;
    }
    char name[43] = "f_";
    memcpy(name + 2, sha, 41);
    lua_setfield(L, LUA_REGISTRYINDEX, name);
    struct script__cached *c = malloc(sizeof(*c) + len + 1);
    if (c == NULL) {
        resp_write_errorf(err, "OOM out of memory caching the script");
        return -1;
    }
    memcpy(c->sha, sha, 41);
    c->len = len;
    memcpy(c->body, body, len);
    c->body[len] = '\0';
    uint32_t b = script__bucket(sha);
    c->next = e->buckets[b];
    e->buckets[b] = c;
    e->n_cached++;
    e->cached_bytes += len;
    return 0;
}

int script_load(struct script_engine *e, const char *body, size_t len, char sha[41],
                struct resp_out *err) {
    script_sha1hex(body, len, sha);
    return script__compile(e, body, len, sha, err);
}

/* ---- Lua values to the reply (luaReplyToRedisReply) ---- */

static void script__write_value(struct script_engine *e, lua_State *L, struct resp_out *out,
                                uint32_t depth);

static bool script__field(lua_State *L, const char *name, int type) {
    lua_pushstring(L, name);
    lua_rawget(L, -2);
    if (lua_type(L, -1) == type) return true;
    lua_pop(L, 1);
    return false;
}

static void script__write_table(struct script_engine *e, lua_State *L, struct resp_out *out,
                                uint32_t depth) {
    size_t len;
    if (script__field(L, "err", LUA_TSTRING)) {
        const char *s = lua_tolstring(L, -1, &len);
        resp_write_error(out, s, len);
        lua_pop(L, 1);
        return;
    }
    if (script__field(L, "ok", LUA_TSTRING)) {
        const char *s = lua_tolstring(L, -1, &len);
        resp_write_simple(out, s, len);
        lua_pop(L, 1);
        return;
    }
    if (script__field(L, "double", LUA_TNUMBER)) {
        resp_write_double(out, lua_tonumber(L, -1));
        lua_pop(L, 1);
        return;
    }
    if (script__field(L, "big_number", LUA_TSTRING)) {
        const char *s = lua_tolstring(L, -1, &len);
        resp_write_bignum(out, s, len);
        lua_pop(L, 1);
        return;
    }
    bool is_map = script__field(L, "map", LUA_TTABLE);
    bool is_set = !is_map && script__field(L, "set", LUA_TTABLE);
    if (is_map || is_set) {
        uint64_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            n++;
            lua_pop(L, 1);
        }
        if (is_map) resp_write_map(out, n);
        else resp_write_set(out, n);
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            lua_pushvalue(L, -2);
            script__write_value(e, L, out, depth + 1); /* the key */
            lua_pop(L, 1);
            if (is_map) script__write_value(e, L, out, depth + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        return;
    }
    uint64_t n = 0;
    for (;;) {
        lua_rawgeti(L, -1, (int)(n + 1));
        bool nil = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (nil) break;
        n++;
    }
    resp_write_array(out, n);
    for (uint64_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)(i + 1));
        script__write_value(e, L, out, depth + 1);
        lua_pop(L, 1);
    }
}

/* Writes the value at the top of L (left there). */
static void script__write_value(struct script_engine *e, lua_State *L, struct resp_out *out,
                                uint32_t depth) {
    if (depth > SCRIPT_REPLY_DEPTH_MAX || !lua_checkstack(L, 4)) {
        resp_write_errorf(out, "ERR reached lua stack limit");
        return;
    }
    size_t len;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        const char *s = lua_tolstring(L, -1, &len);
        resp_write_bulk(out, s, len);
        break;
    }
    case LUA_TBOOLEAN:
        if (e->resp == 2) {
            if (lua_toboolean(L, -1)) resp_write_int(out, 1);
            else resp_write_null(out);
        } else {
            resp_write_bool(out, lua_toboolean(L, -1));
        }
        break;
    case LUA_TNUMBER: resp_write_int(out, (int64_t)(long long)lua_tonumber(L, -1)); break;
    case LUA_TTABLE: script__write_table(e, L, out, depth); break;
    default: resp_write_null(out); break;
    }
}

/* ---- a run ---- */

static void script__run_reset(struct script_engine *e) {
    e->n_keys = 0;
    if (e->key_index_cap > 0) memset(e->key_index, 0, e->key_index_cap * sizeof(*e->key_index));
    e->key_bytes.len = 0;
    e->key_bytes.failed = false;
    e->writes.len = 0;
    e->writes.failed = false;
    e->n_writes = 0;
    e->stopped = false;
    e->keyspace_read = false;
    e->resp = 2;
    script__srand48(e, 0);
}

/* Puts every written key back as it was: 0, or -1 (out of memory). */
static int script__undo(struct script_engine *e) {
    int rc = 0;
#ifdef CANARY_SCRIPT_NO_UNDO /* canary: the run's writes stay, then apply again */
    for (uint32_t i = 0; i < e->n_keys; i++) {
        const struct script__key *x = &e->keys[i];
        if (x->saved) (void)kv_delete(e->undo, e->key_bytes.data + x->off, x->len, INT64_MIN);
    }
    return rc;
#endif
    for (uint32_t i = 0; i < e->n_keys; i++) {
        const struct script__key *x = &e->keys[i];
        if (!x->saved) continue;
        const char *k = e->key_bytes.data + x->off;
        if (kv_key_copy(e->ctx->kv, e->undo, k, x->len) != KV_OK) rc = -1;
        (void)kv_delete(e->undo, k, x->len, INT64_MIN);
    }
    return rc;
}

static void script__set_args(lua_State *L, const char *name, uint32_t n,
                             const struct resp_arg *v) {
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_globals");
    lua_newtable(L);
    for (uint32_t i = 0; i < n; i++) {
        lua_pushlstring(L, v[i].data, v[i].len);
        lua_rawseti(L, -2, (int)(i + 1));
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* The error of a failed run (the value at top), as luaCallFunction words it. */
static void script__write_run_error(struct script_engine *e, lua_State *L,
                                    struct resp_out *out) {
    if (e->stopped) {
        resp_write_errorf(out, "%s", SCRIPT__STOPPED_MSG);
        return;
    }
    if (!lua_istable(L, -1)) {
        const char *m = lua_isstring(L, -1) ? lua_tostring(L, -1) : "execution failure";
        resp_write_errorf(out, "ERR Error running script %s, %.100s", e->run_name, m);
        return;
    }
    lua_getfield(L, -1, "err");
    lua_getfield(L, -2, "source");
    lua_getfield(L, -3, "line");
    const char *msg = lua_tostring(L, -3);
    const char *source = lua_tostring(L, -2);
    const char *line = lua_tostring(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, msg ? msg : "");
    if (line != NULL && source != NULL) {
        luaL_addstring(&b, " script: ");
        luaL_addstring(&b, e->run_name);
        luaL_addstring(&b, ", on ");
        luaL_addstring(&b, source);
        luaL_addchar(&b, ':');
        luaL_addstring(&b, line);
        luaL_addchar(&b, '.');
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    resp_write_error(out, s, len);
    lua_pop(L, 4);
}

/* SHOAL.SCRIPT from the recorded keys and writes. */
static int script__build(struct script_engine *e, struct script_result *res) {
    uint64_t argc = 5 + 2 * (uint64_t)e->n_keys;
    uint64_t bytes = 64 + e->key_bytes.len + 17 * (uint64_t)e->n_keys + e->writes.len;
    for (size_t at = 0; at < e->writes.len;) {
        uint32_t n;
        memcpy(&n, e->writes.data + at, 4);
        at += 4;
        argc += 1 + n;
        bytes += 12;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l;
            memcpy(&l, e->writes.data + at, 4);
            at += 4 + l;
        }
    }
    res->argv = calloc(argc, sizeof(*res->argv));
    res->mem = malloc(bytes);
    if (res->argv == NULL || res->mem == NULL) return -1;
    char *m = res->mem;
    uint32_t a = 0;
#define SCRIPT__NUM(fmt, v)                                   \
    do {                                                      \
        int l_ = sprintf(m, fmt, v);                          \
        res->argv[a++] = (struct resp_arg){m, (size_t)l_};    \
        m += l_ + 1;                                          \
    } while (0)
    res->argv[a++] = (struct resp_arg){"shoal.script", 12};
    SCRIPT__NUM("%" PRId64, e->ctx->now_ms);
    SCRIPT__NUM("%" PRIu64, e->ctx->seed);
    SCRIPT__NUM("%" PRIu32, e->n_keys);
    for (uint32_t i = 0; i < e->n_keys; i++) {
        res->argv[a++] = (struct resp_arg){e->key_bytes.data + e->keys[i].off, e->keys[i].len};
        res->argv[a++] = (struct resp_arg){e->keys[i].digest, 16};
    }
    SCRIPT__NUM("%" PRIu32, e->n_writes);
    for (size_t at = 0; at < e->writes.len;) {
        uint32_t n;
        memcpy(&n, e->writes.data + at, 4);
        at += 4;
        SCRIPT__NUM("%" PRIu32, n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l;
            memcpy(&l, e->writes.data + at, 4);
            res->argv[a++] = (struct resp_arg){e->writes.data + at + 4, l};
            at += 4 + l;
        }
    }
#undef SCRIPT__NUM
    assert(a == argc);
    /* the keys' bytes and digests and the writes must outlive the engine's
     * next run: copy them into mem */
    for (uint32_t i = 1; i < a; i++) {
        const char *d = res->argv[i].data;
        if (d >= res->mem && d < res->mem + bytes) continue;
        memcpy(m, d, res->argv[i].len);
        res->argv[i].data = m;
        m += res->argv[i].len;
    }
    assert((uint64_t)(m - res->mem) <= bytes);
    res->argc = (uint32_t)argc;
    return 0;
}

void script_result_free(struct script_result *res) {
    free(res->argv);
    free(res->mem);
    memset(res, 0, sizeof(*res));
}

/* EVAL's numkeys as Redis checks it: true, or false after the error. */
static bool script__numkeys(uint32_t argc, const struct resp_arg *argv, int64_t *numkeys,
                            struct resp_out *out) {
    if (!cmd_parse_i64(argv[2].data, argv[2].len, numkeys)) {
        resp_write_errorf(out, "ERR value is not an integer or out of range");
        return false;
    }
    if (*numkeys > (int64_t)argc - 3) {
        resp_write_errorf(out, "ERR Number of keys can't be greater than number of args");
        return false;
    }
    if (*numkeys < 0) {
        resp_write_errorf(out, "ERR Number of keys can't be negative");
        return false;
    }
    return true;
}

/* Begins a recorded run over ctx: no key touched, nothing written, the
 * time limit's clock started. */
static void script__begin(struct script_engine *e, const struct script_ctx *ctx) {
    assert(e->ctx == NULL);
    e->ctx = ctx;
    script__run_reset(e);
    e->started_ms = ctx->clock_ms ? ctx->clock_ms(ctx->clock_ctx) : 0;
}

/* Within the run begun, calls the function at the top of L (the error
 * handler below it, base below both) with nargs arguments above it, and
 * writes its reply (or its error) to reply. Each call starts as a script
 * does: RESP2 for redis.call's replies, math.random reseeded. */
static void script__call_fn(struct script_engine *e, bool ro, int base, int nargs,
                            struct resp_out *reply) {
    lua_State *L = e->L;
    assert(e->ctx != NULL);
    e->ro = ro;
    e->resp = 2;
    script__srand48(e, 0);
    lua_sethook(L, script__hook, LUA_MASKCOUNT, SCRIPT_HOOK_INSTRUCTIONS);
    int rc = lua_pcall(L, nargs, 1, base + 1);
    lua_sethook(L, NULL, 0, 0);
    if (rc != 0) script__write_run_error(e, L, reply);
    else script__write_value(e, L, reply, 0);
    lua_settop(L, base);
    lua_gc(L, LUA_GCSTEP, 1);
}

/* Ends the run: puts every written key back and fills res (the
 * SHOAL.SCRIPT of its writes, none if it was stopped). */
static int script__end(struct script_engine *e, struct resp_out *reply,
                       struct script_result *res) {
    assert(e->ctx != NULL);
    res->stopped = e->stopped;
    res->keyspace_read = e->keyspace_read;
    int undo_rc = script__undo(e);
    int built = 0;
    if (!e->stopped && e->n_writes > 0) built = script__build(e, res);
    e->ctx = NULL;
    if (built != 0) {
        script_result_free(res);
        resp_out_consume(reply, resp_out_len(reply));
        resp_write_errorf(reply, "OOM out of memory for the script's log entry");
    }
    return undo_rc;
}

static int script__prepare_fcall(struct script_engine *e, const struct kv *kv, unsigned mode,
                                 uint32_t argc, const struct resp_arg *argv,
                                 struct resp_out *reply, int *base, bool *ro);

/* Pushes the error handler and the function of EVAL/EVALSHA/FCALL (mode)
 * with its arguments (KEYS and ARGV set, or pushed for FCALL): the number
 * of arguments, *base (the stack below) and *ro; or -1 after writing the
 * argument error (nothing pushed). */
static int script__prepare(struct script_engine *e, const struct kv *kv, unsigned mode,
                           uint32_t argc, const struct resp_arg *argv, struct resp_out *reply,
                           int *base, bool *ro) {
    assert(argc >= 3);
    if (mode & SCRIPT_FCALL) return script__prepare_fcall(e, kv, mode, argc, argv, reply, base, ro);
    int64_t numkeys;
    if (!script__numkeys(argc, argv, &numkeys, reply)) return -1;
    if (mode & SCRIPT_SHA) {
        if (argv[1].len != 40 || !script_exists(e, argv[1].data, 40)) {
            resp_write_errorf(reply, "NOSCRIPT No matching script. Please use EVAL.");
            return -1;
        }
        script__lower_sha(argv[1].data, e->sha);
    } else {
        char sha[41];
        if (script_load(e, argv[1].data, argv[1].len, sha, reply) != 0) return -1;
        memcpy(e->sha, sha, 41);
    }
    memcpy(e->run_name, e->sha, 41);
    lua_State *L = e->L;
    *base = lua_gettop(L);
    *ro = (mode & SCRIPT_RO) != 0;
    script__set_args(L, "KEYS", (uint32_t)numkeys, argv + 3);
    script__set_args(L, "ARGV", argc - 3 - (uint32_t)numkeys, argv + 3 + numkeys);
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_err_handler");
    char name[43] = "f_";
    memcpy(name + 2, e->sha, 41);
    lua_getfield(L, LUA_REGISTRYINDEX, name);
    assert(lua_isfunction(L, -1));
    return 0;
}

int script_eval(struct script_engine *e, const struct script_ctx *ctx, unsigned mode,
                uint32_t argc, const struct resp_arg *argv, struct resp_out *reply,
                struct script_result *res) {
    assert(argc >= 3);
    assert(!(mode & SCRIPT_MULTI));
    memset(res, 0, sizeof(*res));
    int base = 0;
    bool ro = false;
    int nargs = script__prepare(e, ctx->kv, mode, argc, argv, reply, &base, &ro);
    if (nargs < 0) return 0;
    script__begin(e, ctx);
    script__call_fn(e, ro, base, nargs, reply);
    return script__end(e, reply, res);
}

unsigned script_mode(const char *name) {
    size_t len = strlen(name);
    if (strcmp(name, "shoal.execscript") == 0) return SCRIPT_MULTI;
    unsigned mode = SCRIPT_EVAL;
    if (strncmp(name, "evalsha", 7) == 0) mode |= SCRIPT_SHA;
    if (strncmp(name, "fcall", 5) == 0) mode |= SCRIPT_FCALL;
    if (len > 3 && strcmp(name + len - 3, "_ro") == 0) mode |= SCRIPT_RO;
    return mode;
}

/* ---- a transaction that holds a script ---- */

struct script__multi {
    struct script_engine *e;
    struct resp_out *reply;
    bool changed;    /* a watched key is not as WATCH read it */
    const char *err; /* recording a watched key failed */
    uint64_t n_cmds;
};

/* A watched key: touched (its digest is carried in the entry, so a change
 * before the entry applies makes the run go again) and compared. */
static void script__multi_watch(void *ctx, const struct resp_arg *key,
                                const struct resp_arg *digest) {
    struct script__multi *m = ctx;
    if (m->err != NULL) return;
    assert(digest->len == 16);
    const struct script__key *x = script__touch(m->e, key, &m->err);
    if (x != NULL && memcmp(x->digest, digest->data, 16) != 0) m->changed = true;
}

static void script__multi_count(void *ctx, const struct cmd_def *def, uint32_t argc,
                                const struct resp_arg *argv) {
    (void)def, (void)argc, (void)argv;
    ((struct script__multi *)ctx)->n_cmds++;
}

/* A command of the transaction, as redis.call runs one (keys recorded,
 * writes recorded and undone later), its reply written as it is: in the
 * client's protocol, no conversion through Lua. */
static void script__multi_native(struct script_engine *e, const struct cmd_def *def,
                                 uint32_t argc, const struct resp_arg *argv,
                                 struct resp_out *out) {
    bool write = (def->flags & CMD_WRITE) != 0;
    if (write && def->first_key <= 0) { /* FLUSHALL: no key, so no undo copy */
        resp_write_errorf(out, "ERR '%s' cannot run in a transaction that holds a script "
                               "in shoal", def->name);
        return;
    }
    if (def->exec != NULL && def->first_key <= 0) e->keyspace_read = true;
    struct script__keys_check kc = {.e = e, .write = write};
    cmd_keys(def, argc, argv, script__key_cb, &kc);
    if (kc.err != NULL) {
        resp_write_errorf(out, "%s", kc.err);
        return;
    }
    if (write && !script__record_write(e, argc, argv)) {
        resp_write_errorf(out, "ERR a transaction's writes fit in one log entry: at most "
                               "100000 commands and 64 MB");
        return;
    }
    /* a write sees what it will see when the entry applies: no generator */
    struct cmd_env env = {.kv = e->ctx->kv, .now_ms = e->ctx->now_ms,
                          .rng = write ? NULL : e->ctx->rng, .seed = e->ctx->seed,
                          .bulk_max = e->ctx->bulk_max};
    cmd_multi_run(&env, def, argc, argv, out);
}

static void script__multi_cmd(void *ctx, const struct cmd_def *def, uint32_t argc,
                              const struct resp_arg *argv) {
    struct script__multi *m = ctx;
    struct script_engine *e = m->e;
    if (e->stopped) return; /* the reply is replaced by the stop's error */
    if (!cmd_multi_script(def)) {
        script__multi_native(e, def, argc, argv, m->reply);
        return;
    }
    int base = 0;
    bool ro = false;
    int nargs = script__prepare(e, e->ctx->kv, script_mode(def->name), argc, argv, m->reply,
                                &base, &ro);
    if (nargs >= 0) script__call_fn(e, ro, base, nargs, m->reply);
}

#define SCRIPT__MULTI_STOPPED_MSG                                                             \
    "ERR Script stopped: it ran past the time limit (lua-time-limit, capped below the "      \
    "election timeout); nothing of the transaction was applied"

int script_exec_multi(struct script_engine *e, const struct script_ctx *ctx, uint32_t argc,
                      const struct resp_arg *argv, struct resp_out *reply,
                      struct script_result *res) {
    memset(res, 0, sizeof(*res));
    struct script__multi m = {.e = e, .reply = reply};
    struct cmd_multi_walk watch = {script__multi_watch, script__multi_count, &m, true};
    script__begin(e, ctx);
    if (cmd_multi_walk(argc, argv, &watch) != 0) {
        resp_write_errorf(reply, "ERR SHOAL.EXECSCRIPT: not a transaction the node built");
    } else if (m.err != NULL) {
        resp_write_errorf(reply, "%s", m.err);
    } else if (m.changed) {
        resp_write_null_array(reply); /* a watched key changed: nothing runs */
    } else {
        resp_write_array(reply, m.n_cmds);
        struct cmd_multi_walk run = {NULL, script__multi_cmd, &m, true};
        (void)cmd_multi_walk(argc, argv, &run);
        if (e->stopped) { /* the replies before it describe writes never applied */
            resp_out_consume(reply, resp_out_len(reply));
            resp_write_errorf(reply, "%s", SCRIPT__MULTI_STOPPED_MSG);
        }
    }
    return script__end(e, reply, res);
}

/* ---- functions: FUNCTION LOAD's check, FCALL ---- */

#define SCRIPT__LOAD_HOOKS_MAX 1000 /* a library's load: 10M Lua instructions */
#define SCRIPT__LIBS_CACHED_MAX 1000u
#define SCRIPT__NAME_ERR                                                                      \
    "Library names can only contain letters, numbers, or underscores(_) and must be at "   \
    "least one character long"

static bool script__name_ok(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_') return false;
    }
    return true;
}

/* The shebang line `#!lua name=<lib>`: 0 and the name, or -1 after the
 * error (Redis's words). */
static int script__lib_meta(const char *code, size_t len, const char **name, size_t *name_len,
                            struct resp_out *err) {
    if (len < 2 || memcmp(code, "#!", 2) != 0) {
        resp_write_errorf(err, "ERR Missing library metadata");
        return -1;
    }
    const char *nl = memchr(code, '\n', len);
    if (nl == NULL) {
        resp_write_errorf(err, "ERR Invalid library metadata");
        return -1;
    }
    const char *engine = NULL, *p = code;
    size_t engine_len = 0;
    *name = NULL;
    while (p < nl) {
        while (p < nl && *p == ' ') p++;
        const char *t = p;
        while (p < nl && *p != ' ') p++;
        size_t tl = (size_t)(p - t);
        if (tl == 0) break;
        if (engine == NULL) {
            engine = t + 2;
            engine_len = tl - 2;
        } else if (tl >= 5 && memcmp(t, "name=", 5) == 0) {
            *name = t + 5;
            *name_len = tl - 5;
        } else {
            resp_write_errorf(err, "ERR Invalid metadata value given: %.*s",
                              (int)(tl < 200 ? tl : 200), t);
            return -1;
        }
    }
    if (*name == NULL) {
        resp_write_errorf(err, "ERR Library name was not given");
        return -1;
    }
    if (engine_len != 3 || strncasecmp(engine, "lua", 3) != 0) {
        resp_write_errorf(err, "ERR Engine '%.*s' not found",
                          (int)(engine_len < 100 ? engine_len : 100), engine);
        return -1;
    }
    if (!script__name_ok(*name, *name_len)) {
        resp_write_errorf(err, "ERR " SCRIPT__NAME_ERR);
        return -1;
    }
    return 0;
}

static const char *const script__fn_flag_names[] = {"no-writes", "allow-oom", "allow-stale",
                                                    "no-cluster", "allow-cross-slot-keys"};

/* The flags table at idx: the bits, or -1. */
static int script__fn_flags(lua_State *L, int idx) {
    int flags = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t n;
        const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        int bit = -1;
        for (int i = 0; f != NULL && i < 5; i++) {
            if (strlen(script__fn_flag_names[i]) == n && memcmp(f, script__fn_flag_names[i], n) == 0) {
                bit = i;
            }
        }
        lua_pop(L, 1);
        if (bit < 0) {
            lua_pop(L, 1);
            return -1;
        }
        flags |= 1 << bit;
    }
    return flags;
}

/* redis.register_function(name, callback) or ({function_name=, callback=,
 * flags=, description=}): appends {name, fn, flags, desc} to the load's
 * list (upvalue 1). */
static int script__register_function(lua_State *L) {
    int n = lua_gettop(L);
    int name_idx = 0, fn_idx = 0, desc_idx = 0, flags = 0;
    if (n == 1 && lua_istable(L, 1)) {
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            int v = lua_gettop(L);
            if (strcmp(k, "function_name") == 0) {
                if (!lua_isstring(L, v)) {
                    return script__raise(L, "function_name argument given to "
                                            "redis.register_function must be a string");
                }
                name_idx = 1;
            } else if (strcmp(k, "callback") == 0) {
                if (!lua_isfunction(L, v)) {
                    return script__raise(L, "callback argument given to "
                                            "redis.register_function must be a function");
                }
                fn_idx = 1;
            } else if (strcmp(k, "description") == 0) {
                if (!lua_isstring(L, v)) {
                    return script__raise(L, "description argument given to "
                                            "redis.register_function must be a string");
                }
                desc_idx = 1;
            } else if (strcmp(k, "flags") == 0) {
                if (!lua_istable(L, v)) {
                    return script__raise(L, "flags argument to redis.register_function must "
                                            "be a table representing function flags");
                }
                flags = script__fn_flags(L, v);
                if (flags < 0) return script__raise(L, "unknown flag given");
            } else {
                return script__raise(L, "unknown argument given to redis.register_function");
            }
            lua_pop(L, 1);
        }
        lua_getfield(L, 1, "function_name"); /* at n + 1, n + 2, n + 3 */
        lua_getfield(L, 1, "callback");
        lua_getfield(L, 1, "description");
        name_idx = name_idx ? n + 1 : 0;
        fn_idx = fn_idx ? n + 2 : 0;
        desc_idx = desc_idx ? n + 3 : 0;
        if (name_idx == 0) {
            return script__raise(L, "redis.register_function must get a function name argument");
        }
        if (fn_idx == 0) return script__raise(L, "redis.register_function must get a callback argument");
    } else if (n == 2) {
        if (!lua_isstring(L, 1)) {
            return script__raise(L, "first argument to redis.register_function must be a string");
        }
        if (!lua_isfunction(L, 2)) {
            return script__raise(L, "second argument to redis.register_function must be a function");
        }
        name_idx = 1;
        fn_idx = 2;
    } else {
        return script__raise(L, "wrong number of arguments to redis.register_function");
    }
    size_t name_len;
    const char *name = lua_tolstring(L, name_idx, &name_len);
    if (!script__name_ok(name, name_len)) return script__raise(L, SCRIPT__NAME_ERR);
    int list = lua_upvalueindex(1);
    int count = (int)lua_objlen(L, list);
    for (int i = 1; i <= count; i++) {
        lua_rawgeti(L, list, i);
        lua_getfield(L, -1, "name");
        bool same = lua_rawequal(L, -1, name_idx) ||
                    (lua_tostring(L, -1) != NULL && strcmp(lua_tostring(L, -1), name) == 0);
        lua_pop(L, 2);
        if (same) return script__raise(L, "Function already exists in the library");
    }
    if (count >= (int)KV_LIB_FUNCS_MAX) return script__raise(L, "too many functions in a library");
    lua_newtable(L);
    lua_pushlstring(L, name, name_len);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, fn_idx);
    lua_setfield(L, -2, "fn");
    lua_pushinteger(L, flags);
    lua_setfield(L, -2, "flags");
    if (desc_idx != 0) {
        lua_pushstring(L, lua_tostring(L, desc_idx));
        lua_setfield(L, -2, "desc");
    }
    lua_rawseti(L, list, count + 1);
    return 0;
}

static void script__load_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_load_hooks");
    lua_Integer n = lua_tointeger(L, -1) + 1;
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_load_hooks");
    if (n > SCRIPT__LOAD_HOOKS_MAX) {
        lua_sethook(L, script__load_hook, LUA_MASKLINE, 0);
        script__raise(L, "loading the library ran past 10M Lua instructions");
    }
}

/* The load's redis table: register_function, log and the constants only,
 * read-only and strict (as Redis 7.0's). Leaves it on the stack. */
static void script__load_redis(lua_State *L, struct script_engine *e) {
    lua_newtable(L);
    lua_newtable(L); /* the registrations */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_load_list");
    lua_pushcclosure(L, script__register_function, 1);
    lua_setfield(L, -2, "register_function");
    script__fn(L, e, "log", script__log);
    static const struct { const char *name; int v; } consts[] = {
        {"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3},
        {"REDIS_VERSION_NUM", SCRIPT__VERSION_NUM}};
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
        lua_pushinteger(L, consts[i].v);
        lua_setfield(L, -2, consts[i].name);
    }
    lua_pushstring(L, SCRIPT__VERSION);
    lua_setfield(L, -2, "REDIS_VERSION");
    script__protect(L, true);
}

/* Compiles and runs a library's code (after its shebang line): 0 and, on
 * the stack, the list of its registrations ({name, fn, flags, desc}), or -1
 * after Redis's error. The functions' globals are then the script globals
 * (less KEYS and ARGV), as at FCALL. */
static int script__lib_compile(struct script_engine *e, const char *code, size_t len,
                               struct resp_out *err) {
    lua_State *L = e->L;
    const char *name;
    size_t name_len;
    if (script__lib_meta(code, len, &name, &name_len, err) != 0) return -1;
    if (len > SCRIPT_BODY_BYTES_MAX) {
        resp_write_errorf(err, "ERR a library is at most %u bytes in shoal", SCRIPT_BODY_BYTES_MAX);
        return -1;
    }
    const char *nl = memchr(code, '\n', len);
    /* the shebang line stays a line (an empty one), so line numbers match */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, nl, len - (size_t)(nl - code));
    luaL_pushresult(&b);
    size_t body_len;
    const char *body = lua_tolstring(L, -1, &body_len);
    int rc = luaL_loadbuffer(L, body, body_len, "@user_function");
    lua_remove(L, -2);
    if (rc != 0) {
        resp_write_errorf(err, "ERR Error compiling function: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    int chunk = lua_gettop(L);
    lua_newtable(L); /* the globals' backing: only redis while loading */
    int backing = lua_gettop(L);
    script__load_redis(L, e);
    lua_setfield(L, backing, "redis");
    lua_pushvalue(L, backing);
    script__protect(L, true);
    lua_setfenv(L, chunk);
    lua_pushinteger(L, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, "shoal_load_hooks");
    lua_pushvalue(L, chunk);
    lua_sethook(L, script__load_hook, LUA_MASKCOUNT, SCRIPT_HOOK_INSTRUCTIONS);
    rc = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    if (rc != 0) {
        const char *m = NULL;
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            m = lua_tostring(L, -1);
            resp_write_errorf(err, "ERR Error registering functions: %s", m ? m : "?");
        } else {
            m = lua_tostring(L, -1);
            resp_write_errorf(err, "ERR Error registering functions: ERR %s", m ? m : "?");
        }
        lua_settop(L, chunk - 1);
        return -1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_load_list");
    if (lua_objlen(L, -1) == 0) {
        resp_write_errorf(err, "ERR No functions registered");
        lua_settop(L, chunk - 1);
        return -1;
    }
    /* from now on the functions see the script globals */
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_globals");
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k != NULL && strcmp(k, "KEYS") != 0 && strcmp(k, "ARGV") != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, backing);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_replace(L, chunk); /* the list where the chunk was */
    lua_settop(L, chunk);
    return 0;
}

int script_library_check(struct script_engine *e, const char *code, size_t len, char **rec,
                         size_t *rec_len, struct resp_out *err) {
    lua_State *L = e->L;
    int base = lua_gettop(L);
    *rec = NULL;
    if (script__lib_compile(e, code, len, err) != 0) {
        lua_settop(L, base);
        return -1;
    }
    const char *name;
    size_t name_len;
    (void)script__lib_meta(code, len, &name, &name_len, err);
    struct script__buf out = {0};
    uint32_t v = (uint32_t)name_len;
    script__buf_add(&out, &v, 4);
    script__buf_add(&out, name, name_len);
    v = (uint32_t)len;
    script__buf_add(&out, &v, 4);
    script__buf_add(&out, code, len);
    uint32_t n = (uint32_t)lua_objlen(L, -1);
    script__buf_add(&out, &n, 4);
    for (uint32_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (int)i);
        size_t fl, dl = 0;
        lua_getfield(L, -1, "name");
        const char *fname = lua_tolstring(L, -1, &fl);
        v = (uint32_t)fl;
        script__buf_add(&out, &v, 4);
        script__buf_add(&out, fname, fl);
        lua_getfield(L, -2, "flags");
        v = (uint32_t)lua_tointeger(L, -1);
        script__buf_add(&out, &v, 4);
        lua_getfield(L, -3, "desc");
        const char *desc = lua_tolstring(L, -1, &dl);
        v = desc != NULL ? (uint32_t)dl + 1 : 0;
        script__buf_add(&out, &v, 4);
        if (desc != NULL) script__buf_add(&out, desc, dl);
        lua_pop(L, 4);
    }
    lua_settop(L, base);
    if (out.failed || out.len > KV_LIB_BYTES_MAX) {
        script__buf_free(&out);
        resp_write_errorf(err, "ERR a library is at most %u bytes in shoal", KV_LIB_BYTES_MAX);
        return -1;
    }
    *rec = out.data;
    *rec_len = out.len;
    return 0;
}

/* Pushes function fname of library lib (compiled once per code, cached
 * by the code's sha1); false after the error. */
static bool script__lib_function(struct script_engine *e, const struct kv_lib *lib,
                                 const struct resp_arg *fname, struct resp_out *reply) {
    lua_State *L = e->L;
    char sha[41];
    script_sha1hex(lib->code, lib->code_len, sha);
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_libs");
    if (!lua_istable(L, -1) || e->libs_cached >= SCRIPT__LIBS_CACHED_MAX) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "shoal_libs");
        e->libs_cached = 0;
    }
    lua_getfield(L, -1, sha);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (script__lib_compile(e, lib->code, lib->code_len, reply) != 0) {
            lua_pop(L, 1);
            return false;
        }
        lua_newtable(L); /* name -> function */
        for (int i = 1; i <= (int)lua_objlen(L, -2); i++) {
            lua_rawgeti(L, -2, i);
            lua_getfield(L, -1, "name");
            lua_getfield(L, -2, "fn");
            lua_rawset(L, -4);
            lua_pop(L, 1);
        }
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, sha);
        e->libs_cached++;
    }
    lua_pushlstring(L, fname->data, fname->len);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        resp_write_errorf(reply, "ERR Function not found");
        return false;
    }
    return true;
}

static void script__push_strings(lua_State *L, uint32_t n, const struct resp_arg *v) {
    lua_createtable(L, (int)n, 0);
    for (uint32_t i = 0; i < n; i++) {
        lua_pushlstring(L, v[i].data, v[i].len);
        lua_rawseti(L, -2, (int)(i + 1));
    }
}

static int script__prepare_fcall(struct script_engine *e, const struct kv *kv, unsigned mode,
                                 uint32_t argc, const struct resp_arg *argv,
                                 struct resp_out *reply, int *base, bool *ro) {
    struct kv_fn fn;
    const struct kv_lib *lib = kv_fn_find(kv, argv[1].data, argv[1].len, &fn);
    if (lib == NULL) {
        resp_write_errorf(reply, "ERR Function not found");
        return -1;
    }
    int64_t numkeys;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &numkeys)) {
        resp_write_errorf(reply, "ERR Bad number of keys provided");
        return -1;
    }
    if (numkeys > (int64_t)argc - 3) {
        resp_write_errorf(reply, "ERR Number of keys can't be greater than number of args");
        return -1;
    }
    if (numkeys < 0) {
        resp_write_errorf(reply, "ERR Number of keys can't be negative");
        return -1;
    }
    bool no_writes = (fn.flags & KV_FN_NO_WRITES) != 0;
    if ((mode & SCRIPT_RO) && !no_writes) {
        resp_write_errorf(reply, "ERR Can not execute a script with write flag using *_ro command.");
        return -1;
    }
    snprintf(e->run_name, sizeof(e->run_name), "%.*s", (int)fn.name_len, fn.name);
    lua_State *L = e->L;
    *base = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "shoal_err_handler");
    if (!script__lib_function(e, lib, &argv[1], reply)) {
        lua_settop(L, *base);
        return -1;
    }
    script__push_strings(L, (uint32_t)numkeys, argv + 3);
    script__push_strings(L, argc - 3 - (uint32_t)numkeys, argv + 3 + numkeys);
    *ro = (mode & SCRIPT_RO) || no_writes;
    return 2;
}
