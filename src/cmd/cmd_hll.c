/* cmd_hll.c: HyperLogLog (PFADD, PFCOUNT, PFMERGE) with Redis 7.0's
 * registers, estimator and encodings, so counts and the stored bytes equal
 * redis-server's for the same commands.
 *
 * The value is a string in Redis's layout: "HYLL", an encoding byte (0
 * dense, 1 sparse), three unused bytes, an 8-byte cached cardinality
 * (little endian; its top bit set: not valid), then the registers. An
 * element's register is the low 14 bits of MurmurHash64A(element, seed
 * 0xadc83b19); its value the position of the first set bit in the other
 * 50, plus one.
 *
 *   dense:  16384 registers of 6 bits, least significant bit first:
 *           12,304 bytes in all.
 *   sparse: runs, in register order, of opcodes that add up to 16384:
 *           00xxxxxx            ZERO:  x+1 registers at 0 (1..64)
 *           01xxxxxx yyyyyyyy   XZERO: (x << 8 | y) + 1 at 0 (1..16384)
 *           1vvvvvxx            VAL:   x+1 registers at v+1 (1..4 at 1..32)
 *
 * Writes follow Redis 7.0 step by step, so the bytes are its bytes. PFADD
 * creates a key sparse (one XZERO: 18 bytes) and edits the runs in place:
 * the opcode that holds the register is split into at most three, then up
 * to five opcodes from the one before it are scanned to join equal
 * neighbouring VALs. The value turns dense (header kept, encoding byte 0)
 * when a register would exceed 32, or when a split would make the value
 * longer than HLL_SPARSE_BYTES_MAX. PFMERGE writes the destination (an
 * existing one, or a new sparse one) register by register in order, made
 * dense first if any of its inputs is dense. A write that changes the
 * value sets the cache's top bit and keeps its other bytes and the header's
 * unused bytes, as Redis does.
 *
 * What differs from Redis: shoal never fills the cache, because a count
 * is a read and a read must not change a replica's bytes. So after a
 * PFCOUNT of one key, Redis's GET shows the count in bytes 8..15 (and a
 * later PFADD keeps its low 7 bytes), where shoal's still shows what the
 * last write left; the registers and the encoding are the same. shoal also
 * refuses any sparse value whose runs do not add up to 16384
 * (INVALIDOBJ), even for PFADD, where Redis only checks the runs up to the
 * register it sets. And OBJECT ENCODING names a value of at most 44 bytes
 * (an HLL of a few elements) embstr, by its length, where Redis says raw. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_int.h"
#include "kv/kv.h"
#include "resp/resp.h"

#define HLL_P 14
#define HLL_Q (64 - HLL_P)
#define HLL_REGISTERS (1u << HLL_P)
#define HLL_BITS 6
#define HLL_REGISTER_MAX 63u
#define HLL_HDR_BYTES 16
#define HLL_DENSE_BYTES (HLL_HDR_BYTES + (HLL_REGISTERS * HLL_BITS + 7) / 8)
#define HLL_DENSE 0
#define HLL_SPARSE 1
#define HLL_ZERO_LEN_MAX 64u
#define HLL_XZERO_LEN_MAX 16384u
#define HLL_VAL_VALUE_MAX 32u
#define HLL_VAL_LEN_MAX 4u
/* Redis's hll-sparse-max-bytes, at its default. A compile-time constant
 * and not the configuration key: where a value turns dense shows in its
 * bytes, which every replica must write alike, and a CONFIG SET changes
 * one node only (docs/operations.md, "Redis's parameters"). */
#define HLL_SPARSE_BYTES_MAX 3000u
/* Opcodes Redis scans for VALs to join after an edit. */
#define HLL_MERGE_SCAN_OPS 5
#define HLL_ERR_NOT_HLL "WRONGTYPE Key is not a valid HyperLogLog string value."
#define HLL_ERR_CORRUPT "INVALIDOBJ Corrupted HLL object detected"

_Static_assert(HLL_DENSE_BYTES == 12304, "Redis's dense size");
_Static_assert(HLL_SPARSE_BYTES_MAX < HLL_DENSE_BYTES, "sparse is the smaller");
_Static_assert(HLL_XZERO_LEN_MAX == HLL_REGISTERS, "one XZERO covers an empty HLL");

/* MurmurHash64A (Austin Appleby's, public domain), little-endian reads. */
static uint64_t hll__murmur64a(const uint8_t *p, size_t len, uint64_t seed) {
    const uint64_t m = UINT64_C(0xc6a4a7935bd1e995);
    const int r = 47;
    uint64_t h = seed ^ ((uint64_t)len * m);
    size_t blocks = len / 8;
    for (size_t i = 0; i < blocks; i++) {
        uint64_t k = 0;
        for (int b = 7; b >= 0; b--) k = (k << 8) | p[i * 8 + (size_t)b];
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const uint8_t *tail = p + blocks * 8;
    size_t rest = len & 7;
    if (rest > 0) {
        for (size_t b = rest; b > 0; b--) h ^= (uint64_t)tail[b - 1] << (8 * (b - 1));
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/* The register an element falls in, and the value it offers it. */
static uint8_t hll__pattern(const uint8_t *ele, size_t len, uint32_t *reg) {
    uint64_t hash = hll__murmur64a(ele, len, UINT64_C(0xadc83b19));
    *reg = (uint32_t)(hash & (HLL_REGISTERS - 1));
    hash >>= HLL_P;
    hash |= UINT64_C(1) << HLL_Q; /* the count stops at Q + 1 */
    uint8_t count = 1;
    while ((hash & 1) == 0) {
        count++;
        hash >>= 1;
    }
    return count;
}

static uint8_t hll__dense_get(const uint8_t *regs, uint32_t i) {
    uint8_t v = 0;
    for (uint32_t k = 0; k < HLL_BITS; k++) {
        uint32_t bit = i * HLL_BITS + k;
        v |= (uint8_t)(((regs[bit >> 3] >> (bit & 7)) & 1) << k);
    }
    return v;
}

static void hll__dense_set(uint8_t *regs, uint32_t i, uint8_t v) {
    for (uint32_t k = 0; k < HLL_BITS; k++) {
        uint32_t bit = i * HLL_BITS + k;
        uint8_t mask = (uint8_t)(1u << (bit & 7));
        if ((v >> k) & 1) regs[bit >> 3] |= mask;
        else regs[bit >> 3] &= (uint8_t)~mask;
    }
}

/* A string that is an HLL: the header and a dense length, or a sparse one. */
static bool hll__valid(const struct kv_item *it) {
    const uint8_t *p = it->value;
    if (it->value_len < HLL_HDR_BYTES || memcmp(p, "HYLL", 4) != 0) return false;
    if (p[4] > HLL_SPARSE) return false;
    return p[4] != HLL_DENSE || it->value_len == HLL_DENSE_BYTES;
}

/* The registers one sparse opcode at p covers (with *value their value)
 * and its length in bytes; 0 registers if a 2-byte XZERO is cut at end. */
static uint32_t hll__op(const uint8_t *p, const uint8_t *end, uint8_t *value, size_t *op_bytes) {
    *value = 0;
    *op_bytes = 1;
    if ((p[0] & 0xc0) == 0x00) return (uint32_t)(p[0] & 0x3f) + 1;
    if ((p[0] & 0x80) != 0) {
        *value = (uint8_t)(((p[0] >> 2) & 0x1f) + 1);
        return (uint32_t)(p[0] & 0x03) + 1;
    }
    *op_bytes = 2;
    if (p + 1 >= end) return 0;
    return ((uint32_t)(p[0] & 0x3f) << 8 | p[1]) + 1;
}

/* Walks the sparse runs of value p[0, len), raising max[] to them when
 * max is not NULL; false if they do not add up to exactly 16384. */
static bool hll__sparse_walk(const uint8_t *p, size_t len, uint8_t *max) {
    const uint8_t *end = p + len;
    const uint8_t *at = p + HLL_HDR_BYTES;
    uint32_t i = 0;
    while (at < end) {
        uint8_t v;
        size_t op_bytes;
        uint32_t run = hll__op(at, end, &v, &op_bytes);
        if (run == 0 || run > HLL_REGISTERS - i) return false;
        if (max != NULL) {
            for (uint32_t k = i; k < i + run; k++) {
                if (v > max[k]) max[k] = v;
            }
        }
        i += run;
        at += op_bytes;
    }
    return i == HLL_REGISTERS;
}

/* Raises max[] to the registers of the HLL in it; false if it is corrupt. */
static bool hll__merge(uint8_t *max, const struct kv_item *it) {
    const uint8_t *p = it->value;
    if (p[4] == HLL_SPARSE) return hll__sparse_walk(p, it->value_len, max);
    for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
        uint8_t v = hll__dense_get(p + HLL_HDR_BYTES, i);
        if (v > max[i]) max[i] = v;
    }
    return true;
}

/* The estimator of Ertl ("New cardinality estimation algorithms for
 * HyperLogLog sketches", 2017), as Redis 7.0 computes it. */
static double hll__sigma(double x) {
    if (x == 1.0) return INFINITY;
    double y = 1.0;
    double z = x;
    double prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (prev != z);
    return z;
}

static double hll__tau(double x) {
    if (x == 0.0 || x == 1.0) return 0.0;
    double y = 1.0;
    double z = 1 - x;
    double prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (prev != z);
    return z / 3;
}

static uint64_t hll__count(const uint8_t *regs) {
    double m = HLL_REGISTERS;
    int histo[64] = {0};
    for (uint32_t i = 0; i < HLL_REGISTERS; i++) histo[regs[i]]++;
    double z = m * hll__tau((m - histo[HLL_Q + 1]) / m);
    for (int j = HLL_Q; j >= 1; --j) {
        z += histo[j];
        z *= 0.5;
    }
    z += m * hll__sigma(histo[0] / m);
    return (uint64_t)llroundl(0.721347520444481703680 /* 1 / (2 ln 2) */ * m * m / z);
}

/* An HLL value being written: len bytes in buf, which holds cap. A
 * sparse value never grows past max(its length when read,
 * HLL_SPARSE_BYTES_MAX), its capacity: a split that would make it longer
 * than HLL_SPARSE_BYTES_MAX turns it dense instead. */
struct hll__value {
    uint8_t *buf;
    size_t len;
    size_t cap;
};

enum { HLL__SAME = 0, HLL__CHANGED = 1, HLL__PROMOTE = 2 };

/* A new key's value: sparse, every register 0 (one XZERO), cache 0. */
static bool hll__value_empty(struct hll__value *v) {
    v->cap = HLL_SPARSE_BYTES_MAX;
    v->buf = calloc(v->cap, 1);
    if (v->buf == NULL) return false;
    memcpy(v->buf, "HYLL", 4);
    v->buf[4] = HLL_SPARSE;
    v->buf[HLL_HDR_BYTES] = (uint8_t)(0x40 | ((HLL_XZERO_LEN_MAX - 1) >> 8));
    v->buf[HLL_HDR_BYTES + 1] = (uint8_t)((HLL_XZERO_LEN_MAX - 1) & 0xff);
    v->len = HLL_HDR_BYTES + 2;
    return true;
}

/* A copy of an existing (checked) value, with room to grow. */
static bool hll__value_copy(struct hll__value *v, const struct kv_item *it) {
    v->cap = it->value_len > HLL_SPARSE_BYTES_MAX ? it->value_len : HLL_SPARSE_BYTES_MAX;
    v->buf = malloc(v->cap);
    if (v->buf == NULL) return false;
    memcpy(v->buf, it->value, it->value_len);
    v->len = it->value_len;
    return true;
}

/* Turns a valid sparse value dense: the header as it was (magic, unused
 * bytes, cache) but for the encoding byte, then the registers. */
static bool hll__to_dense(struct hll__value *v) {
    assert(v->buf[4] == HLL_SPARSE);
    uint8_t *dense = calloc(HLL_DENSE_BYTES, 1);
    if (dense == NULL) return false;
    memcpy(dense, v->buf, HLL_HDR_BYTES);
    dense[4] = HLL_DENSE;
    const uint8_t *end = v->buf + v->len;
    const uint8_t *at = v->buf + HLL_HDR_BYTES;
    uint32_t i = 0;
    while (at < end) {
        uint8_t value;
        size_t op_bytes;
        uint32_t run = hll__op(at, end, &value, &op_bytes);
        assert(run > 0 && run <= HLL_REGISTERS - i); /* checked when read */
        for (uint32_t k = 0; value != 0 && k < run; k++) {
            hll__dense_set(dense + HLL_HDR_BYTES, i + k, value);
        }
        i += run;
        at += op_bytes;
    }
    assert(i == HLL_REGISTERS);
    free(v->buf);
    v->buf = dense;
    v->len = HLL_DENSE_BYTES;
    v->cap = HLL_DENSE_BYTES;
    return true;
}

static uint8_t hll__val_op(uint32_t value, uint32_t run) {
    assert(value >= 1 && value <= HLL_VAL_VALUE_MAX);
    assert(run >= 1 && run <= HLL_VAL_LEN_MAX);
    return (uint8_t)(0x80 | (value - 1) << 2 | (run - 1));
}

/* Writes a run of zeros (ZERO up to 64, else XZERO) at n; its length. */
static size_t hll__zeros_op(uint8_t *n, uint32_t run) {
    assert(run >= 1 && run <= HLL_XZERO_LEN_MAX);
    if (run <= HLL_ZERO_LEN_MAX) {
        n[0] = (uint8_t)(run - 1);
        return 1;
    }
    n[0] = (uint8_t)(0x40 | (run - 1) >> 8);
    n[1] = (uint8_t)((run - 1) & 0xff);
    return 2;
}

/* Joins equal neighbouring VALs (up to 4 registers a VAL) among the
 * HLL_MERGE_SCAN_OPS opcodes from p on, as Redis after each edit: a join
 * looks again at the same place (and counts as one of the five). */
static void hll__join_vals(struct hll__value *v, uint8_t *p) {
    uint8_t *end = v->buf + v->len;
    for (int scanned = 0; p < end && scanned < HLL_MERGE_SCAN_OPS; scanned++) {
        if ((p[0] & 0xc0) == 0x40) {
            p += 2;
            continue;
        }
        if ((p[0] & 0x80) == 0 || p + 1 >= end || (p[1] & 0x80) == 0) {
            p++;
            continue;
        }
        uint8_t v1;
        uint8_t v2;
        size_t op_bytes;
        uint32_t run = hll__op(p, end, &v1, &op_bytes) + hll__op(p + 1, end, &v2, &op_bytes);
        if (v1 != v2 || run > HLL_VAL_LEN_MAX) {
            p++;
            continue;
        }
        p[1] = hll__val_op(v1, run);
        memmove(p, p + 1, (size_t)(end - p - 1));
        end--;
        v->len--;
    }
}

/* The opcodes that replace the one at p (first register first, span
 * registers, value cur) to set register index to count; their length. */
static size_t hll__split(uint8_t *seq, uint32_t first, uint32_t span, uint8_t cur, uint32_t index,
                         uint8_t count) {
    uint32_t last = first + span - 1;
    size_t n = 0;
    if (index != first) {
        if (cur == 0) n += hll__zeros_op(seq + n, index - first);
        else seq[n++] = hll__val_op(cur, index - first);
    }
    seq[n++] = hll__val_op(count, 1);
    if (index != last) {
        if (cur == 0) n += hll__zeros_op(seq + n, last - index);
        else seq[n++] = hll__val_op(cur, last - index);
    }
    return n;
}

/* Sets register index of a valid sparse value to count if that raises
 * it, in place: HLL__SAME, HLL__CHANGED, or HLL__PROMOTE when the value
 * must turn dense first (count above a VAL's 32, or a split that would
 * pass HLL_SPARSE_BYTES_MAX), nothing changed then. */
static int hll__sparse_set(struct hll__value *v, uint32_t index, uint8_t count) {
    assert(v->buf[4] == HLL_SPARSE);
    assert(index < HLL_REGISTERS && count >= 1);
    if (count > HLL_VAL_VALUE_MAX) return HLL__PROMOTE;
    uint8_t *sparse = v->buf + HLL_HDR_BYTES;
    uint8_t *end = v->buf + v->len;
    uint8_t *p = sparse;
    uint8_t *prev = NULL;
    uint32_t first = 0;
    uint32_t span = 0;
    uint8_t cur = 0;
    size_t op_bytes = 0;
    while (p < end) { /* the opcode that covers index */
        span = hll__op(p, end, &cur, &op_bytes);
        if (index < first + span) break;
        prev = p;
        p += op_bytes;
        first += span;
    }
    assert(p < end && span > 0); /* the runs were checked when read */
    if (cur >= count) return HLL__SAME;
    if (span == 1 && op_bytes == 1) {
        p[0] = hll__val_op(count, 1); /* a VAL or ZERO of one register */
    } else {
        uint8_t seq[5];
        size_t seq_len = hll__split(seq, first, span, cur, index, count);
        if (seq_len > op_bytes && v->len + (seq_len - op_bytes) > HLL_SPARSE_BYTES_MAX) {
            return HLL__PROMOTE;
        }
        assert(v->len + seq_len - op_bytes <= v->cap);
        memmove(p + seq_len, p + op_bytes, (size_t)(end - p) - op_bytes);
        memcpy(p, seq, seq_len);
        v->len = v->len + seq_len - op_bytes;
    }
    hll__join_vals(v, prev != NULL ? prev : sparse);
    return HLL__CHANGED;
}

/* Raises register index to count in either encoding, turning a sparse
 * value dense when it must: HLL__SAME, HLL__CHANGED, or -1 out of memory. */
static int hll__set(struct hll__value *v, uint32_t index, uint8_t count) {
    if (v->buf[4] == HLL_SPARSE) {
        int rc = hll__sparse_set(v, index, count);
        if (rc != HLL__PROMOTE) return rc;
        if (!hll__to_dense(v)) return -1;
    }
    assert(v->len == HLL_DENSE_BYTES);
    uint8_t *regs = v->buf + HLL_HDR_BYTES;
    if (hll__dense_get(regs, index) >= count) return HLL__SAME;
    hll__dense_set(regs, index, count);
    return HLL__CHANGED;
}

/* Reads key into regs (zeros if missing): 1 found, 0 missing, -1 after
 * replying an error. With it not NULL, the item is left there. */
static int hll__load(const struct cmd_env *env, const struct resp_arg *key, uint8_t *regs,
                     struct kv_item *it, struct resp_out *out) {
    struct kv_item own;
    if (it == NULL) it = &own;
    bool found;
    if (!cmd_string_item(env, key, it, &found, out)) return -1;
    if (!found) return 0;
    if (!hll__valid(it)) {
        resp_write_errorf(out, "%s", HLL_ERR_NOT_HLL);
        return -1;
    }
    bool ok = regs != NULL ? hll__merge(regs, it)
                           : it->value[4] == HLL_DENSE ||
                                 hll__sparse_walk(it->value, it->value_len, NULL);
    if (!ok) {
        resp_write_errorf(out, "%s", HLL_ERR_CORRUPT);
        return -1;
    }
    return 1;
}

/* Stores v under key with the cache marked not valid (the value changed). */
static int hll__store(const struct cmd_env *env, const struct resp_arg *key, struct hll__value *v,
                      bool existed) {
#ifdef CANARY_HLL_ALWAYS_DENSE
    /* the deliberate bug: every HLL written dense, as shoal once did */
    if (v->buf[4] == HLL_SPARSE && !hll__to_dense(v)) return KV_ENOMEM;
#endif
    v->buf[15] |= 0x80;
    return cmd_string_put(env, key, v->buf, v->len, existed);
}

CMD_FN(cmd_pfadd) {
    struct kv_item it;
    int found = hll__load(env, &argv[1], NULL, &it, out);
    if (found < 0) return;
    struct hll__value v;
    if (!(found == 1 ? hll__value_copy(&v, &it) : hll__value_empty(&v))) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    bool updated = found == 0; /* created */
    int rc = KV_OK;
    for (uint32_t j = 2; j < argc && rc == KV_OK; j++) {
        uint32_t reg;
        uint8_t count = hll__pattern((const uint8_t *)argv[j].data, argv[j].len, &reg);
        int set = hll__set(&v, reg, count);
        if (set < 0) rc = KV_ENOMEM;
        else if (set == HLL__CHANGED) updated = true;
    }
    if (rc == KV_OK && updated) rc = hll__store(env, &argv[1], &v, found == 1);
    free(v.buf);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_int(out, updated ? 1 : 0);
}

CMD_FN(cmd_pfcount) {
    uint8_t *regs = calloc(HLL_REGISTERS, 1);
    if (regs == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    for (uint32_t j = 1; j < argc; j++) {
        if (hll__load(env, &argv[j], regs, NULL, out) < 0) {
            free(regs);
            return;
        }
    }
    resp_write_int(out, (int64_t)hll__count(regs));
    free(regs);
}

/* Writes the registers max[] into v as Redis's PFMERGE does: dense first
 * if any input was, then each non-zero register in order. */
static int hll__write_merged(struct hll__value *v, const uint8_t *max, bool any_dense) {
    if (any_dense && v->buf[4] == HLL_SPARSE && !hll__to_dense(v)) return KV_ENOMEM;
    for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
        if (max[i] != 0 && hll__set(v, i, max[i]) < 0) return KV_ENOMEM;
    }
    return KV_OK;
}

CMD_FN(cmd_pfmerge) {
    uint8_t *regs = calloc(HLL_REGISTERS, 1);
    if (regs == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    struct kv_item it;
    bool any_dense = false;
    int dest = 0;
    for (uint32_t j = 1; j < argc; j++) { /* the destination counts as a source */
        int found = hll__load(env, &argv[j], regs, &it, out);
        if (found < 0) {
            free(regs);
            return;
        }
        if (found == 1 && it.value[4] == HLL_DENSE) any_dense = true;
        if (j == 1) dest = found;
    }
    /* the destination once more, for its bytes (checked above) */
    if (dest == 1 && hll__load(env, &argv[1], NULL, &it, out) != 1) {
        free(regs);
        return;
    }
    struct hll__value v;
    int rc = KV_ENOMEM;
    if (dest == 1 ? hll__value_copy(&v, &it) : hll__value_empty(&v)) {
        rc = hll__write_merged(&v, regs, any_dense);
        if (rc == KV_OK) rc = hll__store(env, &argv[1], &v, dest == 1);
        free(v.buf);
    }
    free(regs);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_simple(out, "OK", 2);
}
