/* lua_msgpack.c: the `cmsgpack` library Redis 7.0 gives scripts
 * (cmsgpack.pack, unpack, unpack_one, unpack_limit), written for shoal from
 * the MessagePack specification (github.com/msgpack/msgpack, spec.md);
 * tests/integration/test_scripting.py compares its replies and errors with
 * redis-server 7.0.15.
 *
 * Packing, per Lua value:
 *   nil, and anything that is not a number, string, boolean or table: c0
 *   false / true: c2 / c3
 *   a number with an int64 value: the smallest integer form (positive
 *     fixint, cc cd ce cf; negative fixint, d0 d1 d2 d3); any other
 *     number: ca (float) when a float holds it exactly, else cb (double)
 *   a string: a0|len (< 32), d9, da, db (str 8/16/32)
 *   a table whose keys are exactly 1..n: an array (90|n, dc, dd) of its
 *     values; any other table: a map (80|n, de, df) of its pairs in
 *     next() order. A table nested deeper than 16 levels packs as nil
 *     (cycles end there too).
 * pack(a, b, ...) is the concatenation of each argument packed.
 *
 * Unpacking reads the same forms (bin and ext are "Bad data format");
 * uint 64 and int 64 become Lua numbers (doubles); uint 64 is read as a
 * signed int 64, as Redis does (ff ff ff ff ff ff ff ff is -1). unpack(s) returns every
 * value of s; unpack_one(s [, offset]) the next offset (-1 at the end) and
 * one value; unpack_limit(s, limit [, offset]) the next offset and at most
 * limit values (limit 0 and offset 0: all). Bounds: every read is checked
 * against the input ("Missing bytes in input."); an array or map of n
 * entries needs at least n bytes more, so a count never allocates ahead of
 * the data; nesting is bounded by Lua's C stack (8000 slots, about 4000
 * levels: "stack overflow (...)"), as in Redis. */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define MSGPACK__NEST_MAX 16

/* ---- packing ---- */

/* The packed bytes, in a userdata at a fixed stack slot: the table walk
 * pushes and pops freely, which a luaL_Buffer does not allow, and a Lua
 * error (out of memory, stack overflow) leaves nothing to free. */
struct msgpack__out {
    lua_State *L;
    int slot;
    char *data;
    size_t len, cap;
};

static void msgpack__add(struct msgpack__out *o, const void *p, size_t n) {
    if (n > o->cap - o->len) {
        size_t cap = o->cap;
        while (n > cap - o->len) {
            if (cap > SIZE_MAX / 2) luaL_error(o->L, "not enough memory");
            cap *= 2;
        }
        char *d = lua_newuserdata(o->L, cap);
        memcpy(d, o->data, o->len);
        lua_replace(o->L, o->slot);
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

static void msgpack__byte(struct msgpack__out *o, unsigned char c) { msgpack__add(o, &c, 1); }

static void msgpack__be(struct msgpack__out *o, unsigned char tag, uint64_t v, int bytes) {
    unsigned char out[9];
    out[0] = tag;
    for (int i = 0; i < bytes; i++) out[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    msgpack__add(o, out, (size_t)bytes + 1);
}

static void msgpack__int(struct msgpack__out *o, int64_t n) {
    if (n >= 0) {
        uint64_t u = (uint64_t)n;
        if (u <= 127) msgpack__byte(o, (unsigned char)u);
        else if (u <= 0xff) msgpack__be(o, 0xcc, u, 1);
        else if (u <= 0xffff) msgpack__be(o, 0xcd, u, 2);
        else if (u <= 0xffffffffu) msgpack__be(o, 0xce, u, 4);
        else msgpack__be(o, 0xcf, u, 8);
    } else {
        if (n >= -32) msgpack__byte(o, (unsigned char)(uint8_t)n);
        else if (n >= -128) msgpack__be(o, 0xd0, (uint64_t)n, 1);
        else if (n >= -32768) msgpack__be(o, 0xd1, (uint64_t)n, 2);
        else if (n >= INT32_MIN) msgpack__be(o, 0xd2, (uint64_t)n, 4);
        else msgpack__be(o, 0xd3, (uint64_t)n, 8);
    }
}

static void msgpack__number(struct msgpack__out *o, lua_Number d) {
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (lua_Number)(int64_t)d == d) {
        msgpack__int(o, (int64_t)d);
        return;
    }
    float f = (float)d;
    if ((double)f == d) {
        uint32_t u;
        memcpy(&u, &f, 4);
        msgpack__be(o, 0xca, u, 4);
    } else {
        uint64_t u;
        memcpy(&u, &d, 8);
        msgpack__be(o, 0xcb, u, 8);
    }
}

static void msgpack__len(struct msgpack__out *o, size_t n, unsigned char fix, unsigned char t16,
                         unsigned char t32) {
    if (n <= 15) msgpack__byte(o, (unsigned char)(fix | n));
    else if (n <= 0xffff) msgpack__be(o, t16, n, 2);
    else msgpack__be(o, t32, n, 4);
}

static void msgpack__string(struct msgpack__out *o, const char *s, size_t len) {
    if (len < 32) msgpack__byte(o, (unsigned char)(0xa0 | len));
    else if (len <= 0xff) msgpack__be(o, 0xd9, len, 1);
    else if (len <= 0xffff) msgpack__be(o, 0xda, len, 2);
    else msgpack__be(o, 0xdb, len, 4);
    msgpack__add(o, s, len);
}

/* Whether the table at top has exactly the keys 1..n. */
static bool msgpack__is_array(lua_State *L) {
    lua_Number max = 0;
    lua_Number count = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        lua_Number k;
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) <= 0 ||
            !(k < 2147483648.0 && (lua_Number)(int)k == k)) {
            lua_pop(L, 1);
            return false;
        }
        if (k > max) max = k;
        count++;
    }
    return max == count;
}

static void msgpack__value(lua_State *L, struct msgpack__out *o, int level);

/* Packs the table at top (left there). */
static void msgpack__table(lua_State *L, struct msgpack__out *o, int level) {
    luaL_checkstack(L, 4, "in function msgpack__table");
    bool array = msgpack__is_array(L);
    size_t n = 0;
    if (array) {
        n = lua_objlen(L, -1);
        msgpack__len(o, n, 0x90, 0xdc, 0xdd);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (int)i);
            msgpack__value(L, o, level + 1);
            lua_pop(L, 1);
        }
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        n++;
    }
    msgpack__len(o, n, 0x80, 0xde, 0xdf);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pushvalue(L, -2);
        msgpack__value(L, o, level + 1); /* the key */
        lua_pop(L, 1);
        msgpack__value(L, o, level + 1);
        lua_pop(L, 1);
    }
}

/* Packs the value at top (left there). */
static void msgpack__value(lua_State *L, struct msgpack__out *o, int level) {
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE && level >= MSGPACK__NEST_MAX) t = LUA_TNIL;
    switch (t) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        msgpack__string(o, s, len);
        break;
    }
    case LUA_TBOOLEAN: msgpack__byte(o, lua_toboolean(L, -1) ? 0xc3 : 0xc2); break;
    case LUA_TNUMBER: msgpack__number(o, lua_tonumber(L, -1)); break;
    case LUA_TTABLE: msgpack__table(L, o, level); break;
    default: msgpack__byte(o, 0xc0); break;
    }
}

static int msgpack__pack(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return luaL_argerror(L, 0, "MessagePack pack needs input.");
    if (!lua_checkstack(L, 8)) {
        return luaL_argerror(L, 0, "Too many arguments for MessagePack pack.");
    }
    struct msgpack__out o = {.L = L, .slot = n + 1, .cap = 256};
    o.data = lua_newuserdata(L, o.cap);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        msgpack__value(L, &o, 0);
        lua_pop(L, 1);
    }
    lua_pushlstring(L, o.data, o.len);
    return 1;
}

int luaopen_cmsgpack(lua_State *L);
/* ---- unpacking ---- */

enum msgpack__err { MSGPACK__OK, MSGPACK__EOF, MSGPACK__BADFMT };

struct msgpack__in {
    const unsigned char *p;
    size_t left;
    enum msgpack__err err;
};

static bool msgpack__need(struct msgpack__in *c, size_t n) {
    if (c->left >= n) return true;
    c->err = MSGPACK__EOF;
    return false;
}

static uint64_t msgpack__get_be(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
    return v;
}

static void msgpack__consume(struct msgpack__in *c, size_t n) {
    c->p += n;
    c->left -= n;
}

static void msgpack__decode(lua_State *L, struct msgpack__in *c);

static void msgpack__decode_array(lua_State *L, struct msgpack__in *c, uint64_t n) {
    lua_newtable(L);
    luaL_checkstack(L, 1, "in function mp_decode_to_lua_array");
    for (uint64_t i = 1; i <= n; i++) {
        lua_pushnumber(L, (lua_Number)i);
        msgpack__decode(L, c);
        if (c->err != MSGPACK__OK) return;
        lua_settable(L, -3);
    }
}

static void msgpack__decode_map(lua_State *L, struct msgpack__in *c, uint64_t n) {
    lua_newtable(L);
    for (uint64_t i = 0; i < n; i++) {
        msgpack__decode(L, c); /* the key */
        if (c->err != MSGPACK__OK) return;
        msgpack__decode(L, c);
        if (c->err != MSGPACK__OK) return;
        lua_settable(L, -3);
    }
}

/* A string, array or map whose count takes bytes bytes after the tag. */
static void msgpack__decode_sized(lua_State *L, struct msgpack__in *c, int kind, int bytes) {
    if (!msgpack__need(c, 1 + (size_t)bytes)) return;
    uint64_t n = msgpack__get_be(c->p + 1, bytes);
    if (kind == 's') {
        if (n > c->left - 1 - (size_t)bytes) {
            c->err = MSGPACK__EOF;
            return;
        }
        lua_pushlstring(L, (const char *)c->p + 1 + bytes, (size_t)n);
        msgpack__consume(c, 1 + (size_t)bytes + (size_t)n);
        return;
    }
    msgpack__consume(c, 1 + (size_t)bytes);
    if (kind == 'a') msgpack__decode_array(L, c, n);
    else msgpack__decode_map(L, c, n);
}

/* A number of bytes bytes after the tag: u unsigned, i signed, f float. */
static void msgpack__decode_number(lua_State *L, struct msgpack__in *c, int kind, int bytes) {
    if (!msgpack__need(c, 1 + (size_t)bytes)) return;
    uint64_t v = msgpack__get_be(c->p + 1, bytes);
    lua_Number n;
    if (kind == 'u' && bytes == 8) {
        n = (lua_Number)(int64_t)v; /* Redis reads uint 64 as signed: ff.. is -1 */
    } else if (kind == 'u') {
        n = (lua_Number)v;
    } else if (kind == 'i') {
        int shift = 64 - 8 * bytes;
        n = (lua_Number)((int64_t)(v << shift) >> shift);
    } else if (bytes == 4) {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, 4);
        n = (lua_Number)f;
    } else {
        double d;
        memcpy(&d, &v, 8);
        n = (lua_Number)d;
    }
    lua_pushnumber(L, n);
    msgpack__consume(c, 1 + (size_t)bytes);
}

/* Pushes the next value, or sets c->err. */
static void msgpack__decode(lua_State *L, struct msgpack__in *c) {
    luaL_checkstack(L, 1,
                    "too many return values at once; use unpack_one or unpack_limit instead.");
    if (!msgpack__need(c, 1)) return;
    unsigned char t = c->p[0];
    switch (t) {
    case 0xc0: lua_pushnil(L); msgpack__consume(c, 1); return;
    case 0xc2: lua_pushboolean(L, 0); msgpack__consume(c, 1); return;
    case 0xc3: lua_pushboolean(L, 1); msgpack__consume(c, 1); return;
    case 0xca: msgpack__decode_number(L, c, 'f', 4); return;
    case 0xcb: msgpack__decode_number(L, c, 'f', 8); return;
    case 0xcc: msgpack__decode_number(L, c, 'u', 1); return;
    case 0xcd: msgpack__decode_number(L, c, 'u', 2); return;
    case 0xce: msgpack__decode_number(L, c, 'u', 4); return;
    case 0xcf: msgpack__decode_number(L, c, 'u', 8); return;
    case 0xd0: msgpack__decode_number(L, c, 'i', 1); return;
    case 0xd1: msgpack__decode_number(L, c, 'i', 2); return;
    case 0xd2: msgpack__decode_number(L, c, 'i', 4); return;
    case 0xd3: msgpack__decode_number(L, c, 'i', 8); return;
    case 0xd9: msgpack__decode_sized(L, c, 's', 1); return;
    case 0xda: msgpack__decode_sized(L, c, 's', 2); return;
    case 0xdb: msgpack__decode_sized(L, c, 's', 4); return;
    case 0xdc: msgpack__decode_sized(L, c, 'a', 2); return;
    case 0xdd: msgpack__decode_sized(L, c, 'a', 4); return;
    case 0xde: msgpack__decode_sized(L, c, 'm', 2); return;
    case 0xdf: msgpack__decode_sized(L, c, 'm', 4); return;
    default: break;
    }
    if (t < 0x80) { /* positive fixint */
        lua_pushnumber(L, (lua_Number)t);
        msgpack__consume(c, 1);
    } else if (t >= 0xe0) { /* negative fixint */
        lua_pushnumber(L, (lua_Number)(int8_t)t);
        msgpack__consume(c, 1);
    } else if ((t & 0xe0) == 0xa0) { /* fixstr */
        size_t n = t & 0x1f;
        if (!msgpack__need(c, 1 + n)) return;
        lua_pushlstring(L, (const char *)c->p + 1, n);
        msgpack__consume(c, 1 + n);
    } else if ((t & 0xf0) == 0x90) {
        msgpack__consume(c, 1);
        msgpack__decode_array(L, c, t & 0x0f);
    } else if ((t & 0xf0) == 0x80) {
        msgpack__consume(c, 1);
        msgpack__decode_map(L, c, t & 0x0f);
    } else {
        c->err = MSGPACK__BADFMT; /* c1, bin, ext, fixext */
    }
}

/* Decodes up to limit values of the string at 1 from offset (limit 0 and
 * offset 0: all of them, and no offset returned). */
static int msgpack__unpack_from(lua_State *L, int limit, int offset) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    bool all = limit == 0 && offset == 0;
    if (offset < 0 || limit < 0) {
        /* the length where the limit is meant: Redis's wording */
        return luaL_error(L, "Invalid request to unpack with offset of %d and limit of %d.",
                          offset, (int)len);
    }
    if ((size_t)offset > len) {
        return luaL_error(L, "Start offset %d greater than input length %d.", offset, (int)len);
    }
    if (all) limit = INT_MAX;
    struct msgpack__in c = {.p = (const unsigned char *)s + offset, .left = len - (size_t)offset};
    int count = 0;
    for (; c.left > 0 && count < limit; count++) {
        msgpack__decode(L, &c);
        if (c.err == MSGPACK__EOF) return luaL_error(L, "Missing bytes in input.");
        if (c.err == MSGPACK__BADFMT) return luaL_error(L, "Bad data format in input.");
    }
    if (all) return count;
    luaL_checkstack(L, 1, "in function mp_unpack_full");
    lua_pushinteger(L, c.left == 0 ? -1 : (lua_Integer)(int)(len - c.left));
    lua_insert(L, 2); /* the offset first, then the values */
    return count + 1;
}

static int msgpack__unpack(lua_State *L) { return msgpack__unpack_from(L, 0, 0); }

static int msgpack__unpack_one(lua_State *L) {
    int offset = (int)luaL_optinteger(L, 2, 0);
    lua_settop(L, 1);
    return msgpack__unpack_from(L, 1, offset);
}

static int msgpack__unpack_limit(lua_State *L) {
    int limit = (int)luaL_checkinteger(L, 2);
    int offset = (int)luaL_optinteger(L, 3, 0);
    lua_settop(L, 1);
    return msgpack__unpack_from(L, limit, offset);
}

int luaopen_cmsgpack(lua_State *L) {
    static const luaL_Reg fns[] = {{"pack", msgpack__pack},
                                   {"unpack", msgpack__unpack},
                                   {"unpack_one", msgpack__unpack_one},
                                   {"unpack_limit", msgpack__unpack_limit},
                                   {NULL, NULL}};
    luaL_register(L, "cmsgpack", fns);
    lua_pushstring(L, "cmsgpack");
    lua_setfield(L, -2, "_NAME");
    lua_pushstring(L, "lua-cmsgpack 0.4.0");
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, "Copyright (C) 2012, Salvatore Sanfilippo");
    lua_setfield(L, -2, "_COPYRIGHT");
    lua_pushstring(L, "MessagePack C implementation for Lua");
    lua_setfield(L, -2, "_DESCRIPTION");
    return 1;
}
