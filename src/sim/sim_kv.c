/* sim_kv.c: the simulator's key-value state machine (put, get,
 * compare-and-set, append over a handful of keys) and its command codec. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

#define SIM_CMD_VERSION 1

static uint8_t *sim__put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static const uint8_t *sim__get32(const uint8_t *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) *v |= (uint32_t)p[i] << (8 * i);
    return p + 4;
}

/* version | kind | key | client(2) | req(4) | expect_present | arg_len(4) | arg |
 * expect_len(4) | expect */
uint32_t sim_cmd_encode(const struct sim_cmd *cmd, uint8_t *buf, uint32_t cap) {
    uint32_t need = 1 + 1 + 1 + 2 + 4 + 1 + 4 + cmd->arg_len + 4 + cmd->expect_len;
    if (cap < need) return 0;
    assert(cmd->arg_len <= sizeof(cmd->arg));
    assert(cmd->expect_len <= sizeof(cmd->expect));
    uint8_t *p = buf;
    *p++ = SIM_CMD_VERSION;
    *p++ = cmd->kind;
    *p++ = cmd->key;
    *p++ = (uint8_t)cmd->client;
    *p++ = (uint8_t)(cmd->client >> 8);
    p = sim__put32(p, cmd->req);
    *p++ = cmd->expect_present;
    p = sim__put32(p, cmd->arg_len);
    memcpy(p, cmd->arg, cmd->arg_len);
    p += cmd->arg_len;
    p = sim__put32(p, cmd->expect_len);
    memcpy(p, cmd->expect, cmd->expect_len);
    p += cmd->expect_len;
    assert((uint32_t)(p - buf) == need);
    return need;
}

bool sim_cmd_decode(const uint8_t *buf, uint32_t len, struct sim_cmd *cmd) {
    memset(cmd, 0, sizeof(*cmd));
    if (len < 18 || buf[0] != SIM_CMD_VERSION) return false;
    const uint8_t *p = buf + 1;
    cmd->kind = *p++;
    cmd->key = *p++;
    cmd->client = (uint16_t)(p[0] | (p[1] << 8));
    p += 2;
    p = sim__get32(p, &cmd->req);
    cmd->expect_present = *p++;
    p = sim__get32(p, &cmd->arg_len);
    if (cmd->arg_len > sizeof(cmd->arg) || (uint32_t)(p - buf) + cmd->arg_len + 4 > len) {
        return false;
    }
    memcpy(cmd->arg, p, cmd->arg_len);
    p += cmd->arg_len;
    p = sim__get32(p, &cmd->expect_len);
    if (cmd->expect_len > sizeof(cmd->expect) || (uint32_t)(p - buf) + cmd->expect_len != len) {
        return false;
    }
    memcpy(cmd->expect, p, cmd->expect_len);
    return cmd->key < SIM_KEYS_MAX && cmd->kind <= SIM_OP_APPEND;
}

void sim_kv_read(const struct sim_kv *kv, uint8_t key, struct sim_result *res) {
    assert(key < SIM_KEYS_MAX);
    const struct sim_value *v = &kv->keys[key];
    res->ok = true;
    res->found = v->present;
    res->len = v->present ? v->len : 0;
    res->value = v->bytes;
}

void sim_kv_apply(struct sim_kv *kv, const struct sim_cmd *cmd, struct sim_result *res) {
    struct sim_value *v = &kv->keys[cmd->key];
    memset(res, 0, sizeof(*res));
    res->ok = true;
    switch (cmd->kind) {
    case SIM_OP_PUT:
        v->present = true;
        v->len = cmd->arg_len;
        memcpy(v->bytes, cmd->arg, cmd->arg_len);
        break;
    case SIM_OP_APPEND:
        if (!v->present) v->len = 0;
        if (v->len + cmd->arg_len > SIM_VALUE_BYTES_MAX) {
            res->ok = false; /* full: refused, deterministically on every replica */
            break;
        }
        v->present = true;
        memcpy(v->bytes + v->len, cmd->arg, cmd->arg_len);
        v->len += cmd->arg_len;
        break;
    case SIM_OP_CAS: {
        bool match = cmd->expect_present
                         ? v->present && v->len == cmd->expect_len &&
                               memcmp(v->bytes, cmd->expect, v->len) == 0
                         : !v->present;
        res->ok = match;
        if (match) {
            v->present = true;
            v->len = cmd->arg_len;
            memcpy(v->bytes, cmd->arg, cmd->arg_len);
        }
        break;
    }
    default:
        sim_kv_read(kv, cmd->key, res);
        break;
    }
}

uint64_t sim_kv_save(const struct sim_kv *kv, uint8_t **out) {
    uint64_t size = 8;
    for (int k = 0; k < SIM_KEYS_MAX; k++) size += 5 + kv->keys[k].len;
    uint8_t *buf = malloc(size);
    if (buf == NULL) abort();
    uint8_t *p = buf;
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(kv->applied_index >> (8 * i));
    for (int k = 0; k < SIM_KEYS_MAX; k++) {
        const struct sim_value *v = &kv->keys[k];
        *p++ = v->present;
        p = sim__put32(p, v->len);
        memcpy(p, v->bytes, v->len);
        p += v->len;
    }
    assert((uint64_t)(p - buf) == size);
    *out = buf;
    return size;
}

bool sim_kv_load(struct sim_kv *kv, const uint8_t *data, uint64_t len) {
    memset(kv, 0, sizeof(*kv));
    if (len < 8) return false;
    const uint8_t *p = data;
    const uint8_t *end = data + len;
    for (int i = 0; i < 8; i++) kv->applied_index |= (uint64_t)(*p++) << (8 * i);
    for (int k = 0; k < SIM_KEYS_MAX; k++) {
        struct sim_value *v = &kv->keys[k];
        if (end - p < 5) return false;
        v->present = *p++;
        p = sim__get32(p, &v->len);
        if (v->len > SIM_VALUE_BYTES_MAX || (uint64_t)(end - p) < v->len) return false;
        memcpy(v->bytes, p, v->len);
        p += v->len;
    }
    return p == end;
}

uint64_t sim_kv_hash(const struct sim_kv *kv) {
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < SIM_KEYS_MAX; k++) {
        const struct sim_value *v = &kv->keys[k];
        h = (h ^ (uint64_t)(v->present + 2 * v->len)) * 1099511628211ull;
        for (uint32_t i = 0; i < v->len; i++) h = (h ^ v->bytes[i]) * 1099511628211ull;
    }
    return h;
}
