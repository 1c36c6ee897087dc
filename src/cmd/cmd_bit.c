/* cmd_bit.c: bitmaps on strings, as Redis 7.0 answers them: SETBIT, GETBIT,
 * BITCOUNT, BITPOS and BITOP. Bit 0 is the most significant bit of the
 * first byte. A missing key reads as an endless run of zero bits; a write
 * past the end grows the string with zero bytes, up to proto-max-bulk-len.
 * The order of the checks (which error wins when several apply, what a
 * missing key answers to a malformed range) follows Redis, and
 * tests/cmd/commands.txt records it from a real redis-server. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd/cmd_int.h"
#include "kv/kv.h"
#include "resp/resp.h"

#define CMD_ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"
#define CMD_ERR_BIT_VALUE "ERR bit is not an integer or out of range"

/* A bit offset of SETBIT or GETBIT: an integer >= 0 whose byte is below
 * proto-max-bulk-len; false after replying the error. */
static bool cmd__bit_offset(const struct cmd_env *env, const struct resp_arg *arg,
                            uint64_t *offset, struct resp_out *out) {
    int64_t v;
    if (!cmd_parse_i64(arg->data, arg->len, &v) || v < 0 || (uint64_t)(v >> 3) >= env->bulk_max) {
        resp_write_errorf(out, "%s", CMD_ERR_BIT_OFFSET);
        return false;
    }
    *offset = (uint64_t)v;
    return true;
}

static int cmd__bit_at(const uint8_t *p, size_t len, uint64_t bit) {
    uint64_t byte = bit >> 3;
    if (byte >= len) return 0;
    return (p[byte] >> (7 - (bit & 7))) & 1;
}

CMD_FN(cmd_getbit) {
    (void)argc;
    uint64_t offset;
    if (!cmd__bit_offset(env, &argv[2], &offset, out)) return;
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    resp_write_int(out, found ? cmd__bit_at(it.value, it.value_len, offset) : 0);
}

CMD_FN(cmd_setbit) {
    (void)argc;
    uint64_t offset;
    if (!cmd__bit_offset(env, &argv[2], &offset, out)) return;
    int64_t on;
    if (!cmd_parse_i64(argv[3].data, argv[3].len, &on) || (on != 0 && on != 1)) {
        resp_write_errorf(out, "%s", CMD_ERR_BIT_VALUE);
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    size_t old_len = found ? it.value_len : 0;
    size_t byte = (size_t)(offset >> 3);
    size_t len = byte + 1 > old_len ? byte + 1 : old_len; /* grows even to clear a bit */
    int old = found ? cmd__bit_at(it.value, it.value_len, offset) : 0;
    uint8_t *buf = calloc(1, len);
    if (buf == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    if (old_len > 0) memcpy(buf, it.value, old_len);
    uint8_t mask = (uint8_t)(1u << (7 - (offset & 7)));
    buf[byte] = on ? (uint8_t)(buf[byte] | mask) : (uint8_t)(buf[byte] & ~mask);
    int rc = cmd_string_put(env, &argv[1], buf, len, found);
    free(buf);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, old);
}

/* A range of BITCOUNT or BITPOS as Redis resolves it: start and end in
 * bytes or (BIT) in bits, negative from the end, clamped to the string;
 * converted to the inclusive bit range [*first, *last], or *empty. */
static void cmd__bit_range(int64_t start, int64_t end, bool in_bits, size_t len, uint64_t *first,
                           uint64_t *last, bool *empty) {
    int64_t total = (int64_t)len * (in_bits ? 8 : 1);
    if (start < 0) start = total + start;
    if (end < 0) end = total + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= total) end = total - 1;
    *empty = start > end;
    if (*empty) return;
    *first = in_bits ? (uint64_t)start : (uint64_t)start * 8;
    *last = in_bits ? (uint64_t)end : (uint64_t)end * 8 + 7;
}

/* BYTE or BIT: false after replying a syntax error. */
static bool cmd__bit_unit(const struct resp_arg *arg, bool *in_bits, struct resp_out *out) {
    if (arg->len == 3 && strncasecmp(arg->data, "bit", 3) == 0) {
        *in_bits = true;
    } else if (arg->len == 4 && strncasecmp(arg->data, "byte", 4) == 0) {
        *in_bits = false;
    } else {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return false;
    }
    return true;
}

/* Set bits in [first, last] of p: whole bytes by popcount, the edges bit
 * by bit. */
static uint64_t cmd__popcount(const uint8_t *p, uint64_t first, uint64_t last) {
    uint64_t count = 0;
    uint64_t bit = first;
    while (bit <= last && (bit & 7) != 0) count += (uint64_t)cmd__bit_at(p, SIZE_MAX, bit++);
    while (bit + 63 <= last) {
        uint64_t word;
        memcpy(&word, p + (bit >> 3), 8);
        count += (uint64_t)__builtin_popcountll(word);
        bit += 64;
    }
    while (bit + 7 <= last) {
        count += (uint64_t)__builtin_popcount(p[bit >> 3]);
        bit += 8;
    }
    while (bit <= last) count += (uint64_t)cmd__bit_at(p, SIZE_MAX, bit++);
    return count;
}

CMD_FN(cmd_bitcount) {
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (!found) { /* whatever the other arguments say */
        resp_write_int(out, 0);
        return;
    }
    int64_t start = 0;
    int64_t end = -1;
    bool in_bits = false;
    if (argc == 4 || argc == 5) {
        if (!cmd_parse_i64(argv[2].data, argv[2].len, &start) ||
            !cmd_parse_i64(argv[3].data, argv[3].len, &end)) {
            resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
            return;
        }
        if (start < 0 && end < 0 && start > end) {
            resp_write_int(out, 0);
            return;
        }
        if (argc == 5 && !cmd__bit_unit(&argv[4], &in_bits, out)) return;
    } else if (argc != 2) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    uint64_t first = 0;
    uint64_t last = 0;
    bool empty;
    cmd__bit_range(start, end, in_bits, it.value_len, &first, &last, &empty);
    resp_write_int(out, empty ? 0 : (int64_t)cmd__popcount(it.value, first, last));
}

/* The first bit equal to want in [first, last] of p, or -1. */
static int64_t cmd__bitpos_in(const uint8_t *p, uint64_t first, uint64_t last, int want) {
    uint8_t skip = want ? 0x00 : 0xff; /* a byte with no bit of interest */
    uint64_t bit = first;
    while (bit <= last) {
        if ((bit & 7) == 0 && bit + 7 <= last && p[bit >> 3] == skip) {
            bit += 8;
            continue;
        }
        if (cmd__bit_at(p, SIZE_MAX, bit) == want) return (int64_t)bit;
        bit++;
    }
    return -1;
}

CMD_FN(cmd_bitpos) {
    int64_t want;
    if (!cmd_parse_i64(argv[2].data, argv[2].len, &want)) {
        resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
        return;
    }
    if (want != 0 && want != 1) {
        resp_write_errorf(out, "ERR The bit argument must be 1 or 0.");
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) return;
    if (!found) { /* endless zeros */
        resp_write_int(out, want ? -1 : 0);
        return;
    }
    int64_t start = 0;
    int64_t end = -1;
    bool in_bits = false;
    bool end_given = false;
    if (argc >= 4 && argc <= 6) {
        if (!cmd_parse_i64(argv[3].data, argv[3].len, &start)) {
            resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
            return;
        }
        if (argc == 6 && !cmd__bit_unit(&argv[5], &in_bits, out)) return;
        if (argc >= 5) {
            if (!cmd_parse_i64(argv[4].data, argv[4].len, &end)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                return;
            }
            end_given = true;
        }
    } else if (argc != 3) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    uint64_t first = 0;
    uint64_t last = 0;
    bool empty;
    cmd__bit_range(start, end, in_bits, it.value_len, &first, &last, &empty);
    if (empty) {
        resp_write_int(out, -1);
        return;
    }
    int64_t pos = cmd__bitpos_in(it.value, first, last, (int)want);
    /* Looking for a clear bit with no end given, the string continues with
     * zeros: the first one is just past the range (which then ends at the
     * string's end). */
    if (pos < 0 && want == 0 && !end_given) pos = (int64_t)last + 1;
    resp_write_int(out, pos);
}

enum cmd__bitop { CMD_BITOP_AND, CMD_BITOP_OR, CMD_BITOP_XOR, CMD_BITOP_NOT };

CMD_FN(cmd_bitop) {
    static const char *const names[] = {"and", "or", "xor", "not"};
    int op = -1;
    for (int i = 0; i < 4; i++) {
        if (argv[1].len == strlen(names[i]) && strncasecmp(argv[1].data, names[i], argv[1].len) == 0) {
            op = i;
        }
    }
    if (op < 0) {
        resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
        return;
    }
    uint32_t n = argc - 3;
    if (op == CMD_BITOP_NOT && n != 1) {
        resp_write_errorf(out, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    struct kv_item *src = calloc(n, sizeof(*src));
    if (src == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool found;
        if (!cmd_string_item(env, &argv[3 + i], &src[i], &found, out)) {
            free(src);
            return;
        }
        if (!found) src[i].value_len = 0; /* zeros */
        if (src[i].value_len > len) len = src[i].value_len;
    }
    bool existed = kv_exists(env->kv, argv[2].data, argv[2].len, env->now_ms);
    if (len == 0) { /* every source empty or missing: the destination goes */
        if (existed) (void)kv_delete(env->kv, argv[2].data, argv[2].len, env->now_ms);
        free(src);
        resp_write_int(out, 0);
        return;
    }
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        free(src);
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    for (size_t b = 0; b < len; b++) {
        uint8_t v = b < src[0].value_len ? src[0].value[b] : 0;
        if (op == CMD_BITOP_NOT) v = (uint8_t)~v;
        for (uint32_t i = 1; i < n; i++) {
            uint8_t x = b < src[i].value_len ? src[i].value[b] : 0;
            if (op == CMD_BITOP_AND) v &= x;
            else if (op == CMD_BITOP_OR) v |= x;
            else v ^= x;
        }
        buf[b] = v;
    }
    free(src);
    /* a new value: any expiry of the destination goes, as with SET */
    int rc = kv_set(env->kv, argv[2].data, argv[2].len, buf, len, KV_NO_EXPIRY, 0, env->now_ms);
    free(buf);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, (int64_t)len);
}

/* ---- BITFIELD, BITFIELD_RO ---- */

enum cmd__bf_op { CMD_BF_GET, CMD_BF_SET, CMD_BF_INCRBY };
enum cmd__bf_overflow { CMD_BF_WRAP, CMD_BF_SAT, CMD_BF_FAIL };

struct cmd__bf {
    uint8_t op;       /* enum cmd__bf_op */
    uint8_t overflow; /* enum cmd__bf_overflow, in force at this op */
    bool sign;
    uint8_t bits;    /* 1-64 signed, 1-63 unsigned */
    uint64_t offset; /* in bits */
    int64_t value;   /* SET's value, INCRBY's increment */
};

#define CMD_ERR_BF_TYPE                                                                  \
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported " \
    "but i64 is."

static bool cmd__bf_type(const struct resp_arg *arg, bool *sign, uint8_t *bits,
                         struct resp_out *out) {
    int64_t n;
    if (arg->len < 2 || (arg->data[0] != 'i' && arg->data[0] != 'u') ||
        !cmd_parse_i64(arg->data + 1, arg->len - 1, &n) || n < 1 ||
        n > (arg->data[0] == 'i' ? 64 : 63)) {
        resp_write_errorf(out, "%s", CMD_ERR_BF_TYPE);
        return false;
    }
    *sign = arg->data[0] == 'i';
    *bits = (uint8_t)n;
    return true;
}

/* An offset in bits, or `#N`: N fields of this width. */
static bool cmd__bf_offset(const struct cmd_env *env, const struct resp_arg *arg, uint8_t bits,
                           uint64_t *offset, struct resp_out *out) {
    bool fields = arg->len > 0 && arg->data[0] == '#';
    int64_t v;
    bool ok = cmd_parse_i64(arg->data + fields, arg->len - fields, &v);
    if (ok && fields) ok = !__builtin_mul_overflow(v, (int64_t)bits, &v);
    if (!ok || v < 0 || (uint64_t)(v >> 3) >= env->bulk_max) {
        resp_write_errorf(out, "%s", CMD_ERR_BIT_OFFSET);
        return false;
    }
    *offset = (uint64_t)v;
    return true;
}

/* The field's bits as an unsigned number (bits past len read as zeros). */
static uint64_t cmd__bf_read(const uint8_t *p, size_t len, uint64_t offset, uint8_t bits) {
    uint64_t v = 0;
    for (uint8_t i = 0; i < bits; i++) v = (v << 1) | (uint64_t)cmd__bit_at(p, len, offset + i);
    return v;
}

static void cmd__bf_write(uint8_t *p, uint64_t offset, uint8_t bits, uint64_t v) {
    for (uint8_t i = 0; i < bits; i++) {
        uint64_t bit = offset + i;
        uint8_t mask = (uint8_t)(1u << (7 - (bit & 7)));
        if ((v >> (bits - 1 - i)) & 1) p[bit >> 3] |= mask;
        else p[bit >> 3] &= (uint8_t)~mask;
    }
}

static int64_t cmd__bf_signed(uint64_t raw, uint8_t bits) {
    if (bits == 64) return (int64_t)raw;
    uint64_t sign = UINT64_C(1) << (bits - 1);
    return (int64_t)((raw ^ sign) - sign); /* sign-extended */
}

/* value + incr in the field's type under the overflow rule: false if it
 * overflowed and the rule is FAIL; else *out holds the bits to store. */
static bool cmd__bf_add(const struct cmd__bf *f, __int128 value, int64_t incr, uint64_t *raw) {
    __int128 r = value + incr;
    __int128 max = f->sign ? ((__int128)1 << (f->bits - 1)) - 1 : ((__int128)1 << f->bits) - 1;
    __int128 min = f->sign ? -((__int128)1 << (f->bits - 1)) : 0;
    uint64_t mask = f->bits == 64 ? UINT64_MAX : (UINT64_C(1) << f->bits) - 1;
    if (r >= min && r <= max) {
        *raw = (uint64_t)r & mask;
        return true;
    }
    if (f->overflow == CMD_BF_FAIL) return false;
    if (f->overflow == CMD_BF_SAT) *raw = (uint64_t)(r > max ? max : min) & mask;
    else *raw = (uint64_t)r & mask; /* WRAP: two's complement, modulo 2^bits */
    return true;
}

static void cmd__bitfield(const struct cmd_env *env, uint32_t argc, const struct resp_arg *argv,
                          struct resp_out *out, bool readonly_cmd) {
    struct cmd__bf *ops = calloc(argc, sizeof(*ops));
    if (ops == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    uint32_t n = 0;
    uint8_t overflow = CMD_BF_WRAP;
    bool writes = false;
    uint64_t highest = 0; /* the last bit a write reaches */
    for (uint32_t j = 2; j < argc; j++) {
        const struct resp_arg *a = &argv[j];
        uint32_t rest = argc - j - 1;
        struct cmd__bf f = {.overflow = overflow};
        if (a->len == 3 && strncasecmp(a->data, "get", 3) == 0 && rest >= 2) {
            f.op = CMD_BF_GET;
        } else if (a->len == 3 && strncasecmp(a->data, "set", 3) == 0 && rest >= 3) {
            f.op = CMD_BF_SET;
        } else if (a->len == 6 && strncasecmp(a->data, "incrby", 6) == 0 && rest >= 3) {
            f.op = CMD_BF_INCRBY;
        } else if (a->len == 8 && strncasecmp(a->data, "overflow", 8) == 0 && rest >= 1) {
            const struct resp_arg *t = &argv[++j];
            if (t->len == 4 && strncasecmp(t->data, "wrap", 4) == 0) overflow = CMD_BF_WRAP;
            else if (t->len == 3 && strncasecmp(t->data, "sat", 3) == 0) overflow = CMD_BF_SAT;
            else if (t->len == 4 && strncasecmp(t->data, "fail", 4) == 0) overflow = CMD_BF_FAIL;
            else {
                resp_write_errorf(out, "ERR Invalid OVERFLOW type specified");
                free(ops);
                return;
            }
            continue;
        } else {
            resp_write_errorf(out, "%s", CMD_ERR_SYNTAX);
            free(ops);
            return;
        }
        if (!cmd__bf_type(&argv[j + 1], &f.sign, &f.bits, out) ||
            !cmd__bf_offset(env, &argv[j + 2], f.bits, &f.offset, out)) {
            free(ops);
            return;
        }
        if (f.op != CMD_BF_GET) {
            writes = true;
            if (f.offset + f.bits - 1 > highest) highest = f.offset + f.bits - 1;
            if (!cmd_parse_i64(argv[j + 3].data, argv[j + 3].len, &f.value)) {
                resp_write_errorf(out, "%s", CMD_ERR_NOT_INT);
                free(ops);
                return;
            }
        }
        ops[n++] = f;
        j += f.op == CMD_BF_GET ? 2 : 3;
    }
    if (writes && readonly_cmd) {
        resp_write_errorf(out, "ERR BITFIELD_RO only supports the GET subcommand");
        free(ops);
        return;
    }
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, &argv[1], &it, &found, out)) {
        free(ops);
        return;
    }
    size_t len = found ? it.value_len : 0;
    uint8_t *buf = NULL;
    if (writes) { /* the string grows to the last bit written, even if no write happens */
        size_t need = (size_t)(highest >> 3) + 1;
        if (need > len) len = need;
        buf = calloc(1, len);
        if (buf == NULL) {
            free(ops);
            cmd_reply_kv_error(out, KV_ENOMEM);
            return;
        }
        if (found && it.value_len > 0) memcpy(buf, it.value, it.value_len);
    }
    const uint8_t *p = writes ? buf : (found ? it.value : NULL);
    /* The replies are worked out first: a store that fails (out of memory)
     * is then answered with its error instead of the replies. */
    int64_t *res = calloc(n ? n : 1, sizeof(*res));
    bool *nil = calloc(n ? n : 1, sizeof(*nil));
    if (res == NULL || nil == NULL) {
        free(res);
        free(nil);
        free(buf);
        free(ops);
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct cmd__bf *f = &ops[i];
        uint64_t raw = p != NULL ? cmd__bf_read(p, len, f->offset, f->bits) : 0;
        __int128 old = f->sign ? (__int128)cmd__bf_signed(raw, f->bits) : (__int128)raw;
        res[i] = (int64_t)old;
        if (f->op == CMD_BF_GET) continue;
        uint64_t stored;
        bool ok;
        if (f->op == CMD_BF_SET) {
            /* an unsigned field takes the value's bits as unsigned: -1 is
             * 2^64 - 1, past any unsigned maximum */
            __int128 v = f->sign ? (__int128)f->value : (__int128)(uint64_t)f->value;
            ok = cmd__bf_add(f, v, 0, &stored);
        } else {
            ok = cmd__bf_add(f, old, f->value, &stored);
        }
        if (!ok) {
            nil[i] = true;
            continue;
        }
        cmd__bf_write(buf, f->offset, f->bits, stored);
        if (f->op == CMD_BF_INCRBY) {
            res[i] = f->sign ? cmd__bf_signed(stored, f->bits) : (int64_t)stored;
        }
    }
    int rc = writes ? cmd_string_put(env, &argv[1], buf, len, found) : KV_OK;
    if (rc != KV_OK) {
        cmd_reply_kv_error(out, rc);
    } else {
        resp_write_array(out, n);
        for (uint32_t i = 0; i < n; i++) {
            if (nil[i]) resp_write_null(out);
            else resp_write_int(out, res[i]);
        }
    }
    free(res);
    free(nil);
    free(buf);
    free(ops);
}

CMD_FN(cmd_bitfield) { cmd__bitfield(env, argc, argv, out, false); }
CMD_FN(cmd_bitfield_ro) { cmd__bitfield(env, argc, argv, out, true); }
