/* test_script.c: the Lua engine (src/script/) over a keyspace, without a
 * node. A run leaves the keyspace as it found it (its writes are undone,
 * logically expired keys included); its SHOAL.SCRIPT, applied, gives the
 * keyspace the script itself would have made; the undo copy (kv_key_copy)
 * keeps every type and expiry. A differential test over random scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cmd/cmd.h"
#include "script/script.h"
#include "test.h"
#include "util/rand.h"

/* A clock that moves 1 ms each time it is read (every hook). */
static uint64_t fake_clock(void *ctx) { return (*(uint64_t *)ctx)++; }

struct world {
    struct kv *kv;
    struct rand rng;
    uint64_t clock;
    struct script_ctx ctx;
};

static void world_init(struct world *w, int64_t now) {
    struct kv_config kc;
    kv_config_default(&kc);
    w->kv = kv_create(&kc);
    rand_seed(&w->rng, 1);
    w->clock = 0;
    w->ctx = (struct script_ctx){.kv = w->kv, .rng = &w->rng, .now_ms = now, .seed = 42,
                                 .bulk_max = 1 << 20, .proto = 2, .time_limit_ms = 200,
                                 .clock_ms = fake_clock, .clock_ctx = &w->clock};
}

static void run_cmd(struct kv *kv, int64_t now, uint64_t seed, uint32_t argc,
                    const struct resp_arg *argv, struct resp_out *out) {
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    struct cmd_env env = {.kv = kv, .now_ms = now, .seed = seed, .bulk_max = 1 << 20};
    cmd_exec(&env, def, argc, argv, out);
}

/* EVAL body numkeys keys...; the reply in reply (NUL-terminated). */
static int eval(struct script_engine *e, struct world *w, const char *body, uint32_t nkeys,
                const char *const *keys, struct script_result *res, char *reply, size_t cap) {
    struct resp_arg argv[16];
    char num[8];
    snprintf(num, sizeof(num), "%u", nkeys);
    argv[0] = (struct resp_arg){"eval", 4};
    argv[1] = (struct resp_arg){body, strlen(body)};
    argv[2] = (struct resp_arg){num, strlen(num)};
    for (uint32_t i = 0; i < nkeys; i++) argv[3 + i] = (struct resp_arg){keys[i], strlen(keys[i])};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    int rc = script_eval(e, &w->ctx, SCRIPT_EVAL, 3 + nkeys, argv, &out, res);
    snprintf(reply, cap, "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return rc;
}

static const char *apply(struct world *w, const struct script_result *res) {
    static char text[256];
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_cmd(w->kv, 0, 0, res->argc, res->argv, &out);
    snprintf(text, sizeof(text), "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return text;
}

TEST(a_run_undoes_its_writes_and_its_entry_redoes_them) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 1000000);
    struct resp_arg set_old[] = {{"set", 3}, {"old", 3}, {"v", 1}, {"px", 2}, {"1", 1}};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_cmd(w.kv, 0, 0, 5, set_old, &out); /* expires at 1: logically expired at 1000000 */
    resp_out_free(&out);
    uint64_t before = kv_digest(w.kv);
    const char *keys[] = {"a", "s", "old", "z"};
    struct script_result res;
    char reply[512];
    CHECK(eval(e, &w,
               "redis.call('incrby', KEYS[1], 5) "
               "redis.call('sadd', KEYS[2], 'x', 'y', 'z') "
               "local p = redis.call('spop', KEYS[2]) "
               "redis.call('set', KEYS[3], 'new', 'EX', 100) "
               "redis.call('zadd', KEYS[4], 1, 'm') "
               "return {redis.call('get', KEYS[1]), p, redis.call('scard', KEYS[2])}",
               4, keys, &res, reply, sizeof(reply)) == 0);
    CHECK(strncmp(reply, "*3\r\n$1\r\n5\r\n$1\r\n", 15) == 0);
    CHECK(kv_digest(w.kv) == before); /* the run left nothing behind, even the expired key */
    CHECK(res.argc > 0 && !res.stopped);
    CHECK(strcmp(apply(&w, &res), "+OK\r\n") == 0);
    struct kv_item it;
    CHECK(kv_get(w.kv, "a", 1, 1000000, &it) == KV_OK && it.value_len == 1 && it.value[0] == '5');
    CHECK(kv_get(w.kv, "old", 3, 1000000, &it) == KV_OK && it.expire_ms == 1000000 + 100000);
    const struct kv_coll *c;
    CHECK(kv_coll_get(w.kv, "s", 1, 1000000, KV_TYPE_SET, &c) == KV_OK && kv_coll_count(c) == 2);
    /* the same entry again: its keys changed, nothing runs */
    uint64_t after = kv_digest(w.kv);
    CHECK(strcmp(apply(&w, &res), "*-1\r\n") == 0);
    CHECK(kv_digest(w.kv) == after);
    script_result_free(&res);
    /* a read-only script proposes nothing; an error keeps earlier writes */
    CHECK(eval(e, &w, "return redis.call('get', KEYS[1])", 1, keys, &res, reply,
               sizeof(reply)) == 0);
    CHECK(res.argc == 0 && strcmp(reply, "$1\r\n5\r\n") == 0);
    CHECK(eval(e, &w, "redis.call('del', KEYS[1]) error('x')", 1, keys, &res, reply,
               sizeof(reply)) == 0);
    CHECK(res.argc > 0 && strncmp(reply, "-ERR user_script:1: x script:", 29) == 0);
    CHECK(kv_digest(w.kv) == after);
    script_result_free(&res);
    /* the log's internal forms are no script's writes */
    CHECK(eval(e, &w, "return redis.pcall('shoal.exec', '0', '1', '2', 'del', KEYS[1])", 1,
               keys, &res, reply, sizeof(reply)) == 0);
    CHECK(res.argc == 0);
    CHECK(strcmp(reply, "-ERR This Redis command is not allowed from script\r\n") == 0);
    CHECK(kv_digest(w.kv) == after);
    kv_destroy(w.kv);
    script_engine_destroy(e);
}

TEST(a_script_past_the_time_limit_is_stopped_with_nothing_to_propose) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 1000);
    w.ctx.time_limit_ms = 50; /* 50 hooks of the fake clock */
    const char *keys[] = {"k"};
    struct script_result res;
    char reply[512];
    uint64_t before = kv_digest(w.kv);
    CHECK(eval(e, &w, "redis.call('set', KEYS[1], 'x') "
                      "while true do pcall(function() while true do end end) end",
               1, keys, &res, reply, sizeof(reply)) == 0);
    CHECK(kv_digest(w.kv) == before); /* its SET undone */
    script_engine_destroy(e);
    kv_destroy(w.kv);
    CHECK(res.stopped && res.argc == 0);
    CHECK(strncmp(reply, "-ERR Script stopped", 19) == 0);
    script_result_free(&res);
}

/* SHOAL.EXECSCRIPT with one watched key (digest given) and the commands
 * of cmds (each a NULL-terminated list of words, the list ended by NULL);
 * its reply in reply. */
static int exec_multi(struct script_engine *e, struct world *w, const char *watch,
                      const char *digest, const char *const *const *cmds,
                      struct script_result *res, char *reply, size_t cap) {
    struct resp_arg argv[64];
    char nums[16][8];
    uint32_t argc = 0, n = 0;
    argv[argc++] = (struct resp_arg){"shoal.execscript", 16};
    argv[argc++] = (struct resp_arg){watch ? "1" : "0", 1};
    if (watch != NULL) {
        argv[argc++] = (struct resp_arg){watch, strlen(watch)};
        argv[argc++] = (struct resp_arg){digest, 16};
    }
    while (cmds[n] != NULL) n++;
    snprintf(nums[0], sizeof(nums[0]), "%u", n);
    argv[argc++] = (struct resp_arg){nums[0], strlen(nums[0])};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t words = 0;
        while (cmds[i][words] != NULL) words++;
        snprintf(nums[1 + i], sizeof(nums[0]), "%u", words);
        argv[argc++] = (struct resp_arg){nums[1 + i], strlen(nums[1 + i])};
        for (uint32_t j = 0; j < words; j++) {
            argv[argc++] = (struct resp_arg){cmds[i][j], strlen(cmds[i][j])};
        }
    }
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    int rc = script_exec_multi(e, &w->ctx, argc, argv, &out, res);
    snprintf(reply, cap, "%.*s", (int)resp_out_len(&out), resp_out_data(&out));
    resp_out_free(&out);
    return rc;
}

TEST(a_transaction_with_scripts_is_one_run_undone_and_one_entry) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 1000);
    struct resp_arg set_a[] = {{"set", 3}, {"a", 1}, {"1", 1}};
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    run_cmd(w.kv, 0, 0, 3, set_a, &out);
    resp_out_free(&out);
    char digest[17];
    snprintf(digest, sizeof(digest), "%016llx",
             (unsigned long long)kv_key_digest(w.kv, "a", 1, 1000));
    static const char *const incr[] = {"incr", "a", NULL};
    static const char *const script[] = {"eval", "return redis.call('incrby', KEYS[1], 10)",
                                         "1", "a", NULL};
    static const char *const get[] = {"get", "a", NULL};
    static const char *const late[] = {"eval", "redis.call('set', KEYS[1], 'x') error('late')",
                                       "1", "b", NULL};
    static const char *const nosha[] = {"evalsha", "ffffffffffffffffffffffffffffffffffffffff",
                                        "0", NULL};
    static const char *const wrong[] = {"lpush", "b", "y", NULL};
    static const char *const *const cmds[] = {incr, script, get, late, nosha, wrong, NULL};
    uint64_t before = kv_digest(w.kv);
    struct script_result res;
    char reply[1024];
    CHECK(exec_multi(e, &w, "a", digest, cmds, &res, reply, sizeof(reply)) == 0);
    CHECK(kv_digest(w.kv) == before); /* every write of the run undone */
    /* each command's reply in place, errors included (Redis's EXEC) */
    CHECK(strncmp(reply, "*6\r\n:2\r\n:12\r\n$2\r\n12\r\n-ERR user_script:1: late script: ", 51) ==
          0);
    CHECK(strstr(reply, "\r\n-NOSCRIPT No matching script. Please use EVAL.\r\n-WRONGTYPE ") !=
          NULL);
    CHECK(res.argc > 0 && !res.stopped);
    CHECK(strcmp(apply(&w, &res), "+OK\r\n") == 0); /* one entry: the writes redone */
    struct kv_item it;
    CHECK(kv_get(w.kv, "a", 1, 1000, &it) == KV_OK && it.value_len == 2 &&
          memcmp(it.value, "12", 2) == 0);
    CHECK(kv_get(w.kv, "b", 1, 1000, &it) == KV_OK && it.value_len == 1 && it.value[0] == 'x');
    script_result_free(&res);
    /* the watched key changed since: a null array, nothing to propose */
    uint64_t after = kv_digest(w.kv);
    CHECK(exec_multi(e, &w, "a", digest, cmds, &res, reply, sizeof(reply)) == 0);
    CHECK(strcmp(reply, "*-1\r\n") == 0 && res.argc == 0);
    CHECK(kv_digest(w.kv) == after);
    /* a script stopped at the time limit stops the whole transaction */
    w.ctx.time_limit_ms = 50;
    static const char *const spin[] = {"eval", "while true do end", "0", NULL};
    static const char *const *const stopped[] = {incr, spin, get, NULL};
    CHECK(exec_multi(e, &w, NULL, NULL, stopped, &res, reply, sizeof(reply)) == 0);
    CHECK(strncmp(reply, "-ERR Script stopped", 19) == 0);
    CHECK(strstr(reply, "nothing of the transaction was applied") != NULL);
    CHECK(res.stopped && res.argc == 0);
    CHECK(kv_digest(w.kv) == after);
    /* a keyless write has no undo: its element is an error */
    static const char *const flush[] = {"flushall", NULL};
    static const char *const *const flushing[] = {incr, flush, NULL};
    CHECK(exec_multi(e, &w, NULL, NULL, flushing, &res, reply, sizeof(reply)) == 0);
    CHECK(strncmp(reply, "*2\r\n:13\r\n-ERR 'flushall' cannot run", 35) == 0);
    CHECK(kv_digest(w.kv) == after);
    script_result_free(&res);
    kv_destroy(w.kv);
    script_engine_destroy(e);
}

static const char *const snippets[] = {
    "redis.call('incr', KEYS[1])",
    "redis.call('rpush', KEYS[2], 'a', 'b')",
    "redis.call('lpop', KEYS[2])",
    "redis.call('hset', KEYS[3], 'f' .. math.random(3), 'v')",
    "redis.call('hdel', KEYS[3], 'f1')",
    "redis.call('sadd', KEYS[4], 'm1', 'm2', 'm3')",
    "redis.call('spop', KEYS[4])",
    "redis.call('zadd', KEYS[1] .. 'z', math.random(9), 'm' .. math.random(5))",
    "redis.call('del', KEYS[math.random(4)])",
    "redis.call('set', KEYS[1], 'x', 'PX', 50)",
    "redis.call('expire', KEYS[2], 1000)",
    "redis.call('rename', KEYS[3], KEYS[4])",
    "redis.pcall('incr', KEYS[2])",
    "redis.call('get', KEYS[1])",
};

/* Random scripts over a random keyspace: the run never changes it; the
 * entry applied to it equals the script's own effect (the keyspace of a
 * second engine whose run's writes are kept by applying the entry to a
 * copy made key by key). */
TEST(random_scripts_leave_the_keyspace_and_their_entries_redo_them) {
    struct script_engine *e = script_engine_create();
    struct world w;
    world_init(&w, 10000);
    struct rand r;
    rand_seed(&r, 7);
    const char *keys[] = {"k1", "k2", "k3", "k4", "k1z"};
    for (int iter = 0; iter < 300; iter++) {
        char body[2048] = "";
        int n = 1 + (int)(rand_u64(&r) % 6);
        for (int i = 0; i < n; i++) {
            strcat(body, snippets[rand_u64(&r) % (sizeof(snippets) / sizeof(snippets[0]))]);
            strcat(body, "\n");
        }
        if (rand_u64(&r) % 5 == 0) strcat(body, "error('late')\n");
        uint64_t before = kv_digest(w.kv);
        struct script_result res;
        char reply[1024];
        CHECK(eval(e, &w, body, 5, keys, &res, reply, sizeof(reply)) == 0);
        CHECK(kv_digest(w.kv) == before);
        if (res.argc > 0) CHECK(strcmp(apply(&w, &res), "+OK\r\n") == 0);
        script_result_free(&res);
        w.ctx.now_ms += 7;
        w.ctx.seed++;
    }
    kv_destroy(w.kv);
    script_engine_destroy(e);
}

TEST(sha1_matches_known_digests) {
    char sha[41];
    script_sha1hex("", 0, sha);
    CHECK(strcmp(sha, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0);
    script_sha1hex("abc", 3, sha);
    CHECK(strcmp(sha, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
    char big[1000];
    memset(big, 'a', sizeof(big));
    script_sha1hex(big, 56, sha); /* the padding spills into a second block */
    CHECK(strcmp(sha, "c2db330f6083854c99d4b5bfb6e8f29f201be699") == 0);
}

/* ---- struct and cmsgpack (lua_struct.c, lua_msgpack.c) on hostile input ---- */

int luaopen_struct(lua_State *L);
int luaopen_cmsgpack(lua_State *L);

static lua_State *libs_state(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_struct);
    lua_call(L, 0, 0);
    lua_pushcfunction(L, luaopen_cmsgpack);
    lua_call(L, 0, 0);
    return L;
}

/* Calls lib.fn(data, extra...) protected; the stack is left as found.
 * Returns lua_pcall's code. */
static int call_on(lua_State *L, const char *lib, const char *fn, const char *data, size_t len,
                   int nextra, const lua_Number *extra, const char *fmt) {
    int top = lua_gettop(L);
    lua_getglobal(L, lib);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    int nargs = 1;
    if (fmt != NULL) {
        lua_pushstring(L, fmt);
        nargs++;
    }
    lua_pushlstring(L, data, len);
    for (int i = 0; i < nextra; i++) lua_pushnumber(L, extra[i]);
    int rc = lua_pcall(L, nargs + nextra, LUA_MULTRET, 0);
    lua_settop(L, top);
    return rc;
}

/* Random bytes, and corrupted (flipped, truncated) packings of random
 * values, through every unpacking function: each answers values or a Lua
 * error (ASan/UBSan watch the reads), never a crash or an out-of-memory. */
TEST(msgpack_and_struct_unpack_random_and_corrupt_bytes_without_crashing) {
    lua_State *L = libs_state();
    struct rand r;
    rand_seed(&r, 7);
    static const char *const formats[] = {"i", ">I3", "bc0", "s", "!4hd", "c0", "<i16 f",
                                          "l!8xT", "Bc0s", "!2bhilfd"};
    unsigned errors = 0, values = 0;
    char data[96];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rand_below(&r, sizeof(data) + 1);
        if (rand_chance(&r, 50)) { /* a valid packing, corrupted */
            char code[200];
            snprintf(code, sizeof(code),
                     "return cmsgpack.pack({%d, 'str%d', {a=%d, b={1.5, -%d, true}}, %d.25, "
                     "string.rep('x', %d)}, -%d)",
                     iter, iter, iter * 7, iter, iter, iter % 300, iter * 1000);
            CHECK(luaL_dostring(L, code) == 0);
            size_t n;
            const char *p = lua_tolstring(L, -1, &n);
            if (n > sizeof(data)) n = sizeof(data);
            memcpy(data, p, n);
            lua_pop(L, 1);
            len = rand_below(&r, n + 1);
            for (uint64_t f = rand_below(&r, 4); f > 0 && len > 0; f--) {
                data[rand_below(&r, len)] ^= (char)(1u << rand_below(&r, 8));
            }
        } else {
            for (size_t i = 0; i < len; i++) data[i] = (char)rand_u64(&r);
        }
        lua_Number extra[2] = {(lua_Number)rand_below(&r, 100) - 10,
                               (lua_Number)rand_below(&r, len + 3)};
        int rcs[5] = {
            call_on(L, "cmsgpack", "unpack", data, len, 0, NULL, NULL),
            call_on(L, "cmsgpack", "unpack_one", data, len, 1, extra + 1, NULL),
            call_on(L, "cmsgpack", "unpack_limit", data, len, 2, extra, NULL),
            call_on(L, "struct", "unpack", data, len, 1, extra + 1,
                    formats[rand_below(&r, sizeof(formats) / sizeof(formats[0]))]),
            call_on(L, "struct", "unpack", data, len, 0, NULL, formats[iter % 10]),
        };
        for (int i = 0; i < 5; i++) {
            CHECK(rcs[i] == 0 || rcs[i] == LUA_ERRRUN);
            if (rcs[i] == 0) values++;
            else errors++;
        }
        CHECK(lua_gettop(L) == 0);
    }
    CHECK(values > 1000); /* both outcomes happened */
    CHECK(errors > 1000);
    lua_close(L);
}

/* Deep nesting ends in a Lua error at Lua's C stack (about 4000 levels, as
 * Redis), and packing a cycle ends at 16 levels (nil below). */
TEST(msgpack_nesting_is_bounded) {
    lua_State *L = libs_state();
    static char deep[200001];
    memset(deep, (char)0x91, sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = 1;
    CHECK(call_on(L, "cmsgpack", "unpack", deep, sizeof(deep), 0, NULL, NULL) == LUA_ERRRUN);
    for (size_t i = 0; i + 1 < sizeof(deep); i += 2) deep[i] = (char)0x81, deep[i + 1] = 1;
    CHECK(call_on(L, "cmsgpack", "unpack", deep, sizeof(deep), 0, NULL, NULL) == LUA_ERRRUN);
    CHECK(luaL_dostring(L, "local t = {} t[1] = t return cmsgpack.pack(t)") == 0);
    size_t n;
    const char *p = lua_tolstring(L, -1, &n);
    CHECK(n == 17); /* 16 arrays of one, then nil */
    CHECK((unsigned char)p[0] == 0x91 && (unsigned char)p[15] == 0x91);
    CHECK((unsigned char)p[16] == 0xc0);
    lua_close(L);
}

/* pack(unpack(pack(v))) == pack(v) over random nested arrays and scalars. */
TEST(msgpack_round_trips) {
    lua_State *L = libs_state();
    static const char code[] =
        "local seed = ...\n"
        "local x = seed\n"
        "local function rnd(n) x = (x * 1103515245 + 12345) % 2147483648 return x % n end\n"
        "local function value(d)\n"
        "  local k = rnd(d > 3 and 6 or 8)\n"
        "  if k == 0 then return rnd(2) == 0 end\n"
        "  if k == 1 then return rnd(2^31) - 2^30 end\n"
        "  if k == 2 then return (rnd(2^31) - 2^30) * 2^rnd(40) end\n"
        "  if k == 3 then return rnd(1000) / 7 end\n"
        "  if k == 4 then return string.rep('s', rnd(300)) end\n"
        "  if k == 5 then return rnd(70000) end\n"
        "  local t = {}\n"
        "  for i = 1, rnd(20) do t[i] = value(d + 1) end\n"
        "  if k == 7 then t = {m = t, [1.5] = 'f'} end\n"
        "  return t\n"
        "end\n"
        "for i = 1, 200 do\n"
        "  local p = cmsgpack.pack(value(0), value(0))\n"
        "  local again = cmsgpack.pack(cmsgpack.unpack(p))\n"
        "  if #again ~= #p then return 'differs at ' .. i end\n"
        "end\n"
        "return 'ok'\n";
    for (int seed = 1; seed <= 20; seed++) {
        CHECK(luaL_loadstring(L, code) == 0);
        lua_pushinteger(L, seed);
        CHECK(lua_pcall(L, 1, 1, 0) == 0);
        CHECK(strcmp(lua_tostring(L, -1), "ok") == 0);
        lua_pop(L, 1);
    }
    lua_close(L);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(a_run_undoes_its_writes_and_its_entry_redoes_them),
        TEST_ENTRY(a_script_past_the_time_limit_is_stopped_with_nothing_to_propose),
        TEST_ENTRY(random_scripts_leave_the_keyspace_and_their_entries_redo_them),
        TEST_ENTRY(a_transaction_with_scripts_is_one_run_undone_and_one_entry),
        TEST_ENTRY(sha1_matches_known_digests),
        TEST_ENTRY(msgpack_and_struct_unpack_random_and_corrupt_bytes_without_crashing),
        TEST_ENTRY(msgpack_nesting_is_bounded),
        TEST_ENTRY(msgpack_round_trips),
    };
    return test_run("test_script", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
