/* raft_conf.c: configurations, their encoding, and quorum arithmetic over a
 * possibly joint configuration. */
#include "raft/raft_conf.h"

#include <assert.h>
#include <string.h>

#define RAFT_CONF_VERSION 1

bool raft_conf_has(const uint64_t *ids, uint8_t n, uint64_t id) {
    for (uint8_t i = 0; i < n; i++) {
        if (ids[i] == id) return true;
    }
    return false;
}

static uint8_t *raft_conf__put_ids(uint8_t *p, const uint64_t *ids, uint8_t n) {
    for (uint8_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) *p++ = (uint8_t)(ids[i] >> (8 * b));
    }
    return p;
}

uint32_t raft_conf_encode(const struct raft_conf *conf, uint8_t *buf, uint32_t cap) {
    uint32_t need = 4 + 8u * (conf->n_voters + conf->n_outgoing + conf->n_learners);
    if (cap < need) return 0;
    uint8_t *p = buf;
    *p++ = RAFT_CONF_VERSION;
    *p++ = conf->n_voters;
    *p++ = conf->n_outgoing;
    *p++ = conf->n_learners;
    p = raft_conf__put_ids(p, conf->voters, conf->n_voters);
    p = raft_conf__put_ids(p, conf->outgoing, conf->n_outgoing);
    p = raft_conf__put_ids(p, conf->learners, conf->n_learners);
    assert((uint32_t)(p - buf) == need);
    return need;
}

static const uint8_t *raft_conf__get_ids(const uint8_t *p, uint64_t *ids, uint8_t n) {
    for (uint8_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) v |= (uint64_t)(*p++) << (8 * b);
        ids[i] = v;
    }
    return p;
}

int raft_conf_decode(const uint8_t *buf, uint32_t len, struct raft_conf *conf) {
    memset(conf, 0, sizeof(*conf));
    if (len < 4 || buf[0] != RAFT_CONF_VERSION) return RAFT_EINVAL;
    uint8_t nv = buf[1], no = buf[2], nl = buf[3];
    if (nv > RAFT_NODES_MAX || no > RAFT_NODES_MAX || nl > RAFT_NODES_MAX) return RAFT_EINVAL;
    if (len != 4 + 8u * (nv + no + nl)) return RAFT_EINVAL;
    conf->n_voters = nv;
    conf->n_outgoing = no;
    conf->n_learners = nl;
    const uint8_t *p = buf + 4;
    p = raft_conf__get_ids(p, conf->voters, nv);
    p = raft_conf__get_ids(p, conf->outgoing, no);
    p = raft_conf__get_ids(p, conf->learners, nl);
    (void)p;
    return RAFT_OK;
}

bool raft_conf_is_joint(const struct raft_conf *conf) { return conf->n_outgoing > 0; }

bool raft_conf_is_voter(const struct raft_conf *conf, uint64_t id) {
    return raft_conf_has(conf->voters, conf->n_voters, id) ||
           raft_conf_has(conf->outgoing, conf->n_outgoing, id);
}

bool raft_conf_is_member(const struct raft_conf *conf, uint64_t id) {
    return raft_conf_is_voter(conf, id) || raft_conf_has(conf->learners, conf->n_learners, id);
}

static bool raft_conf__valid_set(const uint64_t *ids, uint8_t n) {
    for (uint8_t i = 0; i < n; i++) {
        if (ids[i] == 0) return false;
        for (uint8_t j = 0; j < i; j++) {
            if (ids[i] == ids[j]) return false;
        }
    }
    return true;
}

bool raft_conf_valid(const struct raft_conf *conf) {
    if (conf->n_voters == 0) return false;
    if (!raft_conf__valid_set(conf->voters, conf->n_voters)) return false;
    if (!raft_conf__valid_set(conf->outgoing, conf->n_outgoing)) return false;
    if (!raft_conf__valid_set(conf->learners, conf->n_learners)) return false;
    for (uint8_t i = 0; i < conf->n_learners; i++) {
        if (raft_conf_is_voter(conf, conf->learners[i])) return false;
    }
    return raft_conf_members(conf, NULL) <= RAFT_NODES_MAX;
}

static uint32_t raft_conf__add_unique(uint64_t *out, uint32_t n, const uint64_t *ids,
                                      uint8_t count) {
    for (uint8_t i = 0; i < count; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < n; j++) seen = seen || out[j] == ids[i];
        if (!seen) {
            if (out != NULL && n < 3 * RAFT_NODES_MAX) out[n] = ids[i];
            n++;
        }
    }
    return n;
}

uint32_t raft_conf_members(const struct raft_conf *conf, uint64_t *out) {
    uint64_t scratch[3 * RAFT_NODES_MAX];
    uint64_t *dst = out != NULL ? out : scratch;
    uint32_t n = 0;
    n = raft_conf__add_unique(dst, n, conf->voters, conf->n_voters);
    n = raft_conf__add_unique(dst, n, conf->outgoing, conf->n_outgoing);
    n = raft_conf__add_unique(dst, n, conf->learners, conf->n_learners);
    return n;
}

/* The largest value that a majority of `ids` has reached, given each
 * member's value from `value_of`; UINT64_MAX for an empty set (it agrees to
 * anything, so a non-joint conf is the min over one set). */
static uint64_t raft_conf__majority_value(const uint64_t *ids, uint8_t n,
                                          uint64_t (*value_of)(void *, uint64_t), void *ctx) {
    if (n == 0) return UINT64_MAX;
    /* zeroed: a slot past n reads 0 (agrees to nothing), never stack garbage */
    uint64_t values[RAFT_NODES_MAX] = {0};
    for (uint8_t i = 0; i < n; i++) values[i] = value_of(ctx, ids[i]);
    /* insertion sort, descending: n <= 16 */
    for (uint8_t i = 1; i < n; i++) {
        uint64_t v = values[i];
        int j = i - 1;
        while (j >= 0 && values[j] < v) {
            values[j + 1] = values[j];
            j--;
        }
        values[j + 1] = v;
    }
    return values[n / 2];
}

uint64_t raft_conf_quorum_value(const struct raft_conf *conf,
                                uint64_t (*value_of)(void *, uint64_t), void *ctx) {
    uint64_t a = raft_conf__majority_value(conf->voters, conf->n_voters, value_of, ctx);
    uint64_t b = raft_conf__majority_value(conf->outgoing, conf->n_outgoing, value_of, ctx);
    return a < b ? a : b;
}

static enum raft_vote_result raft_conf__tally_one(const uint64_t *ids, uint8_t n,
                                                  int (*vote_of)(void *, uint64_t), void *ctx) {
    if (n == 0) return RAFT_VOTE_WON;
    uint32_t granted = 0, rejected = 0;
    for (uint8_t i = 0; i < n; i++) {
        int v = vote_of(ctx, ids[i]);
        if (v > 0) granted++;
        if (v < 0) rejected++;
    }
    uint32_t quorum = n / 2u + 1u;
    if (granted >= quorum) return RAFT_VOTE_WON;
    if (n - rejected < quorum) return RAFT_VOTE_LOST;
    return RAFT_VOTE_PENDING;
}

enum raft_vote_result raft_conf_tally(const struct raft_conf *conf,
                                      int (*vote_of)(void *, uint64_t), void *ctx) {
    enum raft_vote_result a = raft_conf__tally_one(conf->voters, conf->n_voters, vote_of, ctx);
    enum raft_vote_result b =
        raft_conf__tally_one(conf->outgoing, conf->n_outgoing, vote_of, ctx);
    if (a == RAFT_VOTE_LOST || b == RAFT_VOTE_LOST) return RAFT_VOTE_LOST;
    if (a == RAFT_VOTE_WON && b == RAFT_VOTE_WON) return RAFT_VOTE_WON;
    return RAFT_VOTE_PENDING;
}
