/* lua_struct.c: the `struct` library Redis 7.0 gives scripts (struct.pack,
 * struct.unpack, struct.size), written for shoal from its documented
 * format; tests/integration/test_scripting.py compares its replies and
 * errors with redis-server 7.0.15.
 *
 * A format is a string of options, each an optional count after a letter:
 *
 *   >  <        big / little endian (default: little, the machine's)
 *   ![n]        alignment n (a power of 2; default 8, the largest native)
 *   x           one zero byte of padding
 *   b B         signed / unsigned char          h H   short (2 bytes)
 *   l L         long (8 bytes)                  T     size_t (8 bytes)
 *   i[n] I[n]   signed / unsigned int of n bytes (default 4, at most 32)
 *   f d         float / double, in the byte order
 *   c[n]        n bytes of a string; c0: the string's length (pack), or the
 *               count just unpacked (unpack)
 *   s           a zero-terminated string
 *   (space)     ignored
 *
 * Integers are aligned to min(size, alignment) from the start of the data.
 * Bounds: every read is checked against the data ("data string too
 * short"); counts are at most INT_MAX ("integral size overflow"); integers
 * are at most 32 bytes; unpack's results are bounded by Lua's C stack
 * ("too many results"). Integers wider than 8 bytes carry the low 8 bytes
 * of the value (pack writes zeros above them; unpack keeps the low 8
 * bytes), as Redis's build does on x86-64. */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define STRUCT__INT_BYTES_MAX 32
#define STRUCT__ALIGN_DEFAULT 8

struct struct__opts {
    bool big;
    size_t align;
};

/* The count after an option, or dflt when there is none. */
static int struct__count(lua_State *L, const char **fmt, int dflt) {
    if (!isdigit((unsigned char)**fmt)) return dflt;
    int n = 0;
    while (isdigit((unsigned char)**fmt)) {
        int digit = **fmt - '0';
        if (n > (INT_MAX - digit) / 10) return luaL_error(L, "integral size overflow");
        n = n * 10 + digit;
        (*fmt)++;
    }
    return n;
}

/* The size in bytes of option opt (0 for those without one). */
static size_t struct__size(lua_State *L, int opt, const char **fmt) {
    switch (opt) {
    case 'b': case 'B': case 'x': return 1;
    case 'h': case 'H': return 2;
    case 'l': case 'L': case 'T': return 8;
    case 'f': return sizeof(float);
    case 'd': return sizeof(double);
    case 'c': return (size_t)struct__count(L, fmt, 1);
    case 'i': case 'I': {
        int n = struct__count(L, fmt, 4);
        if (n > STRUCT__INT_BYTES_MAX) {
            return (size_t)luaL_error(L, "integral size %d is larger than limit of %d", n,
                                      STRUCT__INT_BYTES_MAX);
        }
        return (size_t)n;
    }
    default: return 0;
    }
}

/* Padding before an item of size bytes at offset at. */
static size_t struct__pad(size_t at, const struct struct__opts *o, int opt, size_t size) {
    if (size == 0 || opt == 'c') return 0;
    if (size > o->align) size = o->align;
    return (size - (at & (size - 1))) & (size - 1);
}

/* The options that are not items: endianness, alignment, space. */
static void struct__control(lua_State *L, int opt, const char **fmt, struct struct__opts *o) {
    switch (opt) {
    case ' ': return;
    case '>': o->big = true; return;
    case '<': o->big = false; return;
    case '!': {
        int a = struct__count(L, fmt, STRUCT__ALIGN_DEFAULT);
        if (a <= 0 || (a & (a - 1)) != 0) luaL_error(L, "alignment %d is not a power of 2", a);
        o->align = (size_t)a;
        return;
    }
    default: {
        const char *msg = lua_pushfstring(L, "invalid format option '%c'", opt);
        luaL_argerror(L, 1, msg);
    }
    }
}

static void struct__defaults(struct struct__opts *o) {
    o->big = false;
    o->align = 1;
}

static bool struct__is_int(int opt) { return strchr("bBhHlLTiI", opt) != NULL && opt != 0; }

static void struct__put_int(lua_State *L, luaL_Buffer *b, int arg, bool big, size_t size) {
    lua_Number n = luaL_checknumber(L, arg);
    uint64_t v;
    if (n < 0) {
        v = n >= -9223372036854775808.0 ? (uint64_t)(int64_t)n : (uint64_t)INT64_MIN;
    } else {
        v = n < 18446744073709551616.0 ? (uint64_t)n : 0;
    }
    char bytes[STRUCT__INT_BYTES_MAX];
    for (size_t i = 0; i < size; i++) {
        bytes[big ? size - 1 - i : i] = (char)(i < 8 ? (v >> (8 * i)) & 0xff : 0);
    }
    luaL_addlstring(b, bytes, size);
}

static lua_Number struct__get_int(const char *p, bool big, bool is_signed, size_t size) {
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) { /* from the most significant byte */
        v = (v << 8) | (unsigned char)p[big ? i : size - 1 - i];
    }
    if (!is_signed || size == 0) return (lua_Number)v;
    uint64_t sign = ~(uint64_t)0 << ((size * 8 - 1) & 63);
    if (v & sign) v |= sign;
    return (lua_Number)(int64_t)v;
}

/* Bytes of a float or double in the machine's (little) order, flipped for
 * big endian. */
static void struct__order(char *p, size_t size, bool big) {
    if (!big) return;
    for (size_t i = 0; i < size / 2; i++) {
        char t = p[i];
        p[i] = p[size - 1 - i];
        p[size - 1 - i] = t;
    }
}

static int struct__pack(lua_State *L) {
    const char *fmt = luaL_checkstring(L, 1);
    struct struct__opts o;
    struct__defaults(&o);
    int arg = 2;
    size_t total = 0;
    lua_pushnil(L); /* the buffer's place on the stack, above the arguments */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (*fmt != '\0') {
        int opt = (unsigned char)*fmt++;
        size_t size = struct__size(L, opt, &fmt);
        size_t pad = struct__pad(total, &o, opt, size);
        total += pad;
        for (; pad > 0; pad--) luaL_addchar(&b, '\0');
        if (struct__is_int(opt)) {
            struct__put_int(L, &b, arg++, o.big, size);
        } else if (opt == 'x') {
            luaL_addchar(&b, '\0');
        } else if (opt == 'f') {
            float f = (float)luaL_checknumber(L, arg++);
            struct__order((char *)&f, sizeof(f), o.big);
            luaL_addlstring(&b, (const char *)&f, sizeof(f));
        } else if (opt == 'd') {
            double d = (double)luaL_checknumber(L, arg++);
            struct__order((char *)&d, sizeof(d), o.big);
            luaL_addlstring(&b, (const char *)&d, sizeof(d));
        } else if (opt == 'c' || opt == 's') {
            size_t len;
            const char *s = luaL_checklstring(L, arg++, &len);
            if (size == 0) size = len;
            /* names the next argument, as Redis's does */
            luaL_argcheck(L, len >= size, arg, "string too short");
            luaL_addlstring(&b, s, size);
            if (opt == 's') {
                luaL_addchar(&b, '\0');
                size++;
            }
        } else {
            struct__control(L, opt, &fmt, &o);
        }
        total += size;
    }
    luaL_pushresult(&b);
    return 1;
}

/* Pushes the item opt of size bytes at data + at; returns its size
 * (which c0 and s learn from the data) and counts the results in *n. */
static size_t struct__unpack_item(lua_State *L, int opt, size_t size, const char *data,
                                  size_t len, size_t at, const struct struct__opts *o, int *n) {
    if (struct__is_int(opt)) {
        lua_pushnumber(L, struct__get_int(data + at, o->big, islower(opt) != 0, size));
        (*n)++;
    } else if (opt == 'f') {
        float f;
        memcpy(&f, data + at, sizeof(f));
        struct__order((char *)&f, sizeof(f), o->big);
        lua_pushnumber(L, (lua_Number)f);
        (*n)++;
    } else if (opt == 'd') {
        double d;
        memcpy(&d, data + at, sizeof(d));
        struct__order((char *)&d, sizeof(d), o->big);
        lua_pushnumber(L, (lua_Number)d);
        (*n)++;
    } else if (opt == 'c') {
        if (size == 0) {
            if (*n == 0 || !lua_isnumber(L, -1)) luaL_error(L, "format 'c0' needs a previous size");
            lua_Number want = lua_tonumber(L, -1);
            size = want >= 0 && want < 18446744073709551616.0 ? (size_t)want : SIZE_MAX;
            lua_pop(L, 1);
            (*n)--;
            luaL_argcheck(L, size <= len && at <= len - size, 2, "data string too short");
        }
        lua_pushlstring(L, data + at, size);
        (*n)++;
    } else if (opt == 's') {
        const char *end = memchr(data + at, '\0', len - at);
        if (end == NULL) luaL_error(L, "unfinished string in data");
        size = (size_t)(end - (data + at)) + 1;
        lua_pushlstring(L, data + at, size - 1);
        (*n)++;
    }
    return size;
}

static int struct__unpack(lua_State *L) {
    const char *fmt = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    size_t at = (size_t)luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, at > 0, 3, "offset must be 1 or greater");
    at--;
    struct struct__opts o;
    struct__defaults(&o);
    int n = 0;
    while (*fmt != '\0') {
        int opt = (unsigned char)*fmt++;
        size_t size = struct__size(L, opt, &fmt);
        at += struct__pad(at, &o, opt, size);
        luaL_argcheck(L, size <= len && at <= len - size, 2, "data string too short");
        luaL_checkstack(L, 2, "too many results"); /* the item and the next position */
        if (struct__is_int(opt) || strchr("fdcs", opt) != NULL) {
            size = struct__unpack_item(L, opt, size, data, len, at, &o, &n);
        } else if (opt != 'x') {
            struct__control(L, opt, &fmt, &o);
        }
        at += size;
    }
    lua_pushinteger(L, (lua_Integer)(at + 1));
    return n + 1;
}

static int struct__size_fn(lua_State *L) {
    const char *fmt = luaL_checkstring(L, 1);
    struct struct__opts o;
    struct__defaults(&o);
    size_t at = 0;
    while (*fmt != '\0') {
        int opt = (unsigned char)*fmt++;
        size_t size = struct__size(L, opt, &fmt);
        at += struct__pad(at, &o, opt, size);
        if (opt == 's') luaL_argerror(L, 1, "option 's' has no fixed size");
        else if (opt == 'c' && size == 0) luaL_argerror(L, 1, "option 'c0' has no fixed size");
        if (!isalnum(opt)) struct__control(L, opt, &fmt, &o);
        at += size;
    }
    lua_pushinteger(L, (lua_Integer)at);
    return 1;
}

int luaopen_struct(lua_State *L);

int luaopen_struct(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"pack", struct__pack}, {"unpack", struct__unpack}, {"size", struct__size_fn},
        {NULL, NULL}};
    luaL_register(L, "struct", fns);
    return 1;
}
