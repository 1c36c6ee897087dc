/* cmd_hll.c: HyperLogLog (PFADD, PFCOUNT, PFMERGE) with Redis 7.0's
 * registers and estimator, so counts equal redis-server's for the same
 * elements.
 *
 * The value is a string in Redis's layout: "HYLL", an encoding byte (0
 * dense, 1 sparse), three zero bytes, an 8-byte cached cardinality (its
 * top bit set: not valid), then the registers: 16384 of 6 bits each
 * (an element's register is the low 14 bits of MurmurHash64A(element,
 * seed 0xadc83b19); its value the position of the first set bit in the
 * other 50, plus one), least significant bit first. shoal reads both of
 * Redis's encodings (so a value copied from Redis counts the same) but
 * always writes the dense one, 12,304 bytes a key (Redis keeps small ones
 * sparse, a few hundred bytes), and never fills the cache: a count is a
 * read, and a read does not change a replica's bytes. */
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
#define HLL_ERR_NOT_HLL "WRONGTYPE Key is not a valid HyperLogLog string value."
#define HLL_ERR_CORRUPT "INVALIDOBJ Corrupted HLL object detected"

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

/* Raises max[] to the registers of the HLL in it; false if it is corrupt
 * (a sparse run past the last register). */
static bool hll__merge(uint8_t *max, const struct kv_item *it) {
    const uint8_t *p = it->value;
    if (p[4] == HLL_DENSE) {
        for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
            uint8_t v = hll__dense_get(p + HLL_HDR_BYTES, i);
            if (v > max[i]) max[i] = v;
        }
        return true;
    }
    /* Sparse: 00xxxxxx a run of x+1 zeros; 01xxxxxx yyyyyyyy a run of
     * (x << 8 | y) + 1 zeros; 1vvvvvxx a run of x+1 registers at v+1. */
    uint32_t i = 0;
    size_t at = HLL_HDR_BYTES;
    while (at < it->value_len) {
        uint8_t op = p[at];
        uint32_t run;
        uint8_t v = 0;
        if ((op & 0xc0) == 0x00) {
            run = (uint32_t)(op & 0x3f) + 1;
            at++;
        } else if ((op & 0xc0) == 0x40) {
            if (at + 1 >= it->value_len) return false;
            run = ((uint32_t)(op & 0x3f) << 8 | p[at + 1]) + 1;
            at += 2;
        } else {
            run = (uint32_t)(op & 0x03) + 1;
            v = (uint8_t)(((op >> 2) & 0x1f) + 1);
            at++;
        }
        if (run > HLL_REGISTERS - i) return false;
        for (uint32_t k = 0; k < run; k++, i++) {
            if (v > max[i]) max[i] = v;
        }
    }
    return i == HLL_REGISTERS;
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

/* The dense value of registers regs (cache marked not valid). */
static void hll__encode(uint8_t *out, const uint8_t *regs) {
    memset(out, 0, HLL_DENSE_BYTES);
    memcpy(out, "HYLL", 4);
    out[4] = HLL_DENSE;
    out[15] = 0x80;
    for (uint32_t i = 0; i < HLL_REGISTERS; i++) {
        if (regs[i] != 0) hll__dense_set(out + HLL_HDR_BYTES, i, regs[i]);
    }
}

/* Reads key into regs (zeros if missing): 1 found, 0 missing, -1 after
 * replying an error. */
static int hll__load(const struct cmd_env *env, const struct resp_arg *key, uint8_t *regs,
                     struct resp_out *out) {
    struct kv_item it;
    bool found;
    if (!cmd_string_item(env, key, &it, &found, out)) return -1;
    if (!found) return 0;
    if (!hll__valid(&it)) {
        resp_write_errorf(out, "%s", HLL_ERR_NOT_HLL);
        return -1;
    }
    if (!hll__merge(regs, &it)) {
        resp_write_errorf(out, "%s", HLL_ERR_CORRUPT);
        return -1;
    }
    return 1;
}

static int hll__store(const struct cmd_env *env, const struct resp_arg *key, const uint8_t *regs,
                      bool existed) {
    uint8_t *buf = malloc(HLL_DENSE_BYTES);
    if (buf == NULL) return KV_ENOMEM;
    hll__encode(buf, regs);
    int rc = cmd_string_put(env, key, buf, HLL_DENSE_BYTES, existed);
    free(buf);
    return rc;
}

CMD_FN(cmd_pfadd) {
    uint8_t *regs = calloc(HLL_REGISTERS, 1);
    if (regs == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    int found = hll__load(env, &argv[1], regs, out);
    if (found < 0) {
        free(regs);
        return;
    }
    bool updated = found == 0; /* created */
    for (uint32_t j = 2; j < argc; j++) {
        uint32_t reg;
        uint8_t v = hll__pattern((const uint8_t *)argv[j].data, argv[j].len, &reg);
        if (v > regs[reg]) {
            regs[reg] = v;
            updated = true;
        }
    }
    int rc = updated ? hll__store(env, &argv[1], regs, found == 1) : KV_OK;
    free(regs);
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
        if (hll__load(env, &argv[j], regs, out) < 0) {
            free(regs);
            return;
        }
    }
    resp_write_int(out, (int64_t)hll__count(regs));
    free(regs);
}

CMD_FN(cmd_pfmerge) {
    uint8_t *regs = calloc(HLL_REGISTERS, 1);
    if (regs == NULL) {
        cmd_reply_kv_error(out, KV_ENOMEM);
        return;
    }
    int dest = 0;
    for (uint32_t j = 1; j < argc; j++) { /* the destination counts as a source */
        int found = hll__load(env, &argv[j], regs, out);
        if (found < 0) {
            free(regs);
            return;
        }
        if (j == 1) dest = found;
    }
    int rc = hll__store(env, &argv[1], regs, dest == 1);
    free(regs);
    if (rc != KV_OK) cmd_reply_kv_error(out, rc);
    else resp_write_simple(out, "OK", 2);
}
