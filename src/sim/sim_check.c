/* sim_check.c: the simulator's checkers.
 *
 *   election safety      at most one leader per term
 *   leader completeness  a new leader's log holds every entry applied anywhere
 *                        that was committed in an earlier term
 *   log matching         same (index, term) in two logs => same prefix
 *   state machine safety no two replicas apply different entries at an index;
 *                        each replica applies each index once, in order
 *   durability           every acknowledged write is applied everywhere at
 *                        the end, and at the index it was acknowledged at
 *   liveness             after the faults stop a leader exists, a write
 *                        succeeds and every replica converges
 *   linearizability      each key's client history (check/lin.c) */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

static uint64_t sim_check__hash(const struct raft_entry *e) {
    uint64_t h = 1469598103934665603ull ^ e->type;
    for (uint32_t i = 0; i < e->len; i++) h = (h ^ e->data[i]) * 1099511628211ull;
    return h;
}

static void sim_check__grow_applied(struct sim *s, uint64_t index) {
    if (index < s->cap_applied) return;
    uint64_t cap = s->cap_applied == 0 ? 1024 : s->cap_applied;
    while (cap <= index) cap *= 2;
    s->applied = realloc(s->applied, cap * sizeof(*s->applied));
    if (s->applied == NULL) abort();
    memset(s->applied + s->cap_applied, 0, (cap - s->cap_applied) * sizeof(*s->applied));
    s->cap_applied = cap;
}

void sim_check_leader(struct sim *s, struct sim_node *n) {
    uint64_t term = raft_term(n->raft);
    if (term >= s->cap_terms) {
        uint64_t cap = s->cap_terms == 0 ? 256 : s->cap_terms;
        while (cap <= term) cap *= 2;
        s->leader_of_term = realloc(s->leader_of_term, cap * sizeof(uint64_t));
        if (s->leader_of_term == NULL) abort();
        memset(s->leader_of_term + s->cap_terms, 0, (cap - s->cap_terms) * sizeof(uint64_t));
        s->cap_terms = cap;
    }
    uint64_t *slot = &s->leader_of_term[term];
    if (*slot == n->id) return;
    if (*slot != 0) {
        sim_violation(s, "election safety: term %llu has leaders n%llu and n%llu",
                      (unsigned long long)term, (unsigned long long)*slot,
                      (unsigned long long)n->id);
        return;
    }
    *slot = n->id;
    s->stats.elections++;
    sim_notef(s, "n%llu leader of term %llu (last %llu)", (unsigned long long)n->id,
               (unsigned long long)term, (unsigned long long)raft_last_index(n->raft));
    for (uint64_t i = raft_snapshot_index(n->raft) + 1; i <= s->max_applied; i++) {
        const struct sim_applied *a = &s->applied[i];
        /* Only entries committed in earlier terms (§3.6.3): the leader
         * that committed an entry had a term <= term_bound. This leader's
         * first ready may come long after its election (a slow disk),
         * while later terms commit entries it need not hold. */
        if (a->term == 0 || a->term_bound >= term) continue;
        const struct raft_entry *e = raft_entry_at(n->raft, i);
        if (e == NULL || e->term != a->term || sim_check__hash(e) != a->hash) {
            sim_violation(s, "leader completeness: n%llu leads term %llu without the entry "
                          "applied at index %llu (term %llu)",
                          (unsigned long long)n->id, (unsigned long long)term,
                          (unsigned long long)i, (unsigned long long)a->term);
            return;
        }
    }
}

void sim_check_applied(struct sim *s, struct sim_node *n, const struct raft_entry *e) {
    if (e->index != n->kv.applied_index + 1) {
        sim_violation(s, "state machine safety: n%llu applies index %llu after %llu",
                      (unsigned long long)n->id, (unsigned long long)e->index,
                      (unsigned long long)n->kv.applied_index);
        return;
    }
    sim_check__grow_applied(s, e->index);
    struct sim_applied *a = &s->applied[e->index];
    uint64_t hash = sim_check__hash(e);
    if (a->term == 0) {
        a->term = e->term;
        a->hash = hash;
        a->term_bound = s->max_term_seen;
        if (e->index > s->max_applied) s->max_applied = e->index;
        return;
    }
    if (a->term != e->term || a->hash != hash) {
        sim_violation(s, "state machine safety: index %llu applied as term %llu and, on n%llu, "
                      "as term %llu with other data",
                      (unsigned long long)e->index, (unsigned long long)a->term,
                      (unsigned long long)n->id, (unsigned long long)e->term);
    }
}

void sim_check_ack(struct sim *s, uint64_t index, uint16_t client, uint32_t req) {
    if (s->n_acked == s->cap_acked) {
        s->cap_acked = s->cap_acked == 0 ? 256 : s->cap_acked * 2;
        s->acked = realloc(s->acked, s->cap_acked * sizeof(*s->acked));
        if (s->acked == NULL) abort();
    }
    s->acked[s->n_acked++] = (struct sim_acked){.index = index, .client = client, .req = req};
    assert(index <= s->max_applied);
    s->applied[index].client = client;
    s->applied[index].req = req;
}

static void sim_check__pair(struct sim *s, const struct raft *a, const struct raft *b) {
    uint64_t lo = raft_first_index(a) > raft_first_index(b) ? raft_first_index(a)
                                                            : raft_first_index(b);
    uint64_t hi = raft_last_index(a) < raft_last_index(b) ? raft_last_index(a)
                                                          : raft_last_index(b);
    uint64_t top = 0;
    for (uint64_t i = hi; i >= lo && i > 0; i--) {
        if (raft_term_at(a, i) == raft_term_at(b, i)) {
            top = i;
            break;
        }
    }
    for (uint64_t i = lo; i <= top; i++) {
        const struct raft_entry *x = raft_entry_at(a, i);
        const struct raft_entry *y = raft_entry_at(b, i);
        if (x->term != y->term || sim_check__hash(x) != sim_check__hash(y)) {
            sim_violation(s, "log matching: n%llu and n%llu agree at index %llu but differ at "
                          "%llu", (unsigned long long)raft_id(a), (unsigned long long)raft_id(b),
                          (unsigned long long)top, (unsigned long long)i);
            return;
        }
    }
}

void sim_check_logs(struct sim *s) {
    for (uint32_t i = 0; i < s->n_slots; i++) {
        for (uint32_t j = i + 1; j < s->n_slots; j++) {
            if (!s->nodes[i].alive || !s->nodes[j].alive) continue;
            if (s->nodes[i].persisting || s->nodes[j].persisting) continue;
            sim_check__pair(s, s->nodes[i].raft, s->nodes[j].raft);
        }
    }
}

void sim_check_final(struct sim *s) {
    sim_check_logs(s);
    if (s->violated) return;
    int leader = sim_leader_slot(s);
    if (leader < 0) {
        sim_violation(s, "liveness: no leader %llu ticks after the faults stopped",
                      (unsigned long long)((s->end_us - s->heal_us) / SIM_TICK_US));
        return;
    }
    if (s->last_write_ok_us < s->heal_us) {
        sim_violation(s, "liveness: no write succeeded after the faults stopped");
        return;
    }
    const struct sim_node *l = &s->nodes[leader];
    uint64_t commit = raft_commit_index(l->raft);
    uint64_t hash = sim_kv_hash(&l->kv);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        const struct sim_node *n = &s->nodes[i];
        if (!n->exists || n->removed || !raft_conf_is_member(raft_conf(l->raft), n->id)) {
            continue;
        }
        if (!n->alive || n->kv.applied_index != commit || sim_kv_hash(&n->kv) != hash) {
            sim_violation(s, "liveness: n%llu did not converge (applied %llu, leader n%llu "
                          "commit %llu)", (unsigned long long)n->id,
                          (unsigned long long)n->kv.applied_index, (unsigned long long)l->id,
                          (unsigned long long)commit);
            return;
        }
    }
    for (uint32_t i = 0; i < s->n_acked; i++) {
        const struct sim_acked *a = &s->acked[i];
        if (a->index > commit || s->applied[a->index].client != a->client ||
            s->applied[a->index].req != a->req) {
            sim_violation(s, "durability: acknowledged write c%u.%u at index %llu is lost",
                          a->client, a->req, (unsigned long long)a->index);
            return;
        }
    }
}

static void sim_check__op(const struct sim *s, const struct sim_op *op, struct lin_op *out) {
    memset(out, 0, sizeof(*out));
    out->invoke_time = op->invoke_us;
    out->complete_time = op->complete_us;
    out->kind = op->kind;
    out->completed = op->completed;
    out->arg = s->values + op->arg_off;
    out->arg_len = op->arg_len;
    out->expect_present = op->expect_present;
    out->expect = s->values + op->expect_off;
    out->expect_len = op->expect_len;
    out->found = op->found;
    out->out = s->values + op->out_off;
    out->out_len = op->out_len;
    out->cas_ok = op->cas_ok;
    out->id = ((uint64_t)op->client << 32) | op->req;
}

void sim_check_history(struct sim *s) {
    struct lin_op *ops = malloc((s->n_ops + 1) * sizeof(*ops));
    if (ops == NULL) abort();
    for (uint32_t key = 0; key < s->n_keys && !s->violated; key++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < s->n_ops; i++) {
            const struct sim_op *op = &s->ops[i];
            if (op->key != key || op->failed) continue;
            sim_check__op(s, op, &ops[n++]);
        }
        char why[256];
        enum lin_result r = lin_check(ops, n, 2000000, why, sizeof(why));
        if (r == LIN_VIOLATION) {
            sim_violation(s, "linearizability: key %u: %s", key, why);
        } else if (r == LIN_UNKNOWN) {
            s->stats.lin_unknown++;
        }
    }
    free(ops);
}

void sim_check_free(struct sim *s) {
    free(s->leader_of_term);
    free(s->applied);
    free(s->acked);
}
