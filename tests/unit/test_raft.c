/* test_raft.c: scenario tests for the consensus core, one per claim of the
 * dissertation (Ongaro 2014) and of raft.h. Each stages its case by hand on
 * raft_net.h: which messages arrive, which replicas tick or crash. */
#include <stdio.h>

#include "raft/raft_log.h"
#include "raft_net.h"
#include "test.h"

static struct net net; /* large: one per test, reset by net_init */

static bool logs_match(struct net *n, int a, int b) {
    if (raft_last_index(n->r[a]) != raft_last_index(n->r[b])) return false;
    for (uint64_t i = 1; i <= raft_last_index(n->r[a]); i++) {
        if (raft_term_at(n->r[a], i) != raft_term_at(n->r[b], i)) return false;
    }
    return true;
}

/* §3.4: a leader is elected, replicates, and every replica applies the same
 * entries; the new leader's first entry is a no-op of its term. */
TEST(election_and_replication) {
    net_init(&net, 3, 3);
    net_tick_all(&net, 40); /* randomized timeouts: someone campaigns */
    int leader = net_leader(&net);
    CHECK(leader > 0);
    for (int id = 1; id <= 3; id++) {
        CHECK_EQ_U64(raft_term(net.r[id]), raft_term(net.r[leader]));
        CHECK_EQ_U64(raft_leader(net.r[id]), leader);
    }
    const struct raft_entry *noop = raft_entry_at(net.r[leader], 2);
    CHECK(noop != NULL && noop->len == 0 && noop->term == raft_term(net.r[leader]));
    char cmd[16];
    for (int i = 0; i < 20; i++) {
        snprintf(cmd, sizeof(cmd), "cmd%d", i);
        CHECK(net_propose(&net, leader, cmd) > 0);
    }
    net_settle(&net);
    net_tick_all(&net, 2); /* heartbeats carry the final commit index */
    for (int id = 1; id <= 3; id++) {
        CHECK_EQ_U64(net.applied_to[id], 22);
        CHECK(memcmp(net.applied[id][22].data, "cmd19", 5) == 0);
    }
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.4: a follower refuses proposals and names the leader. */
TEST(follower_rejects_proposal_with_leader_hint) {
    net_init(&net, 3, 3);
    net_elect(&net, 2);
    uint64_t index;
    uint64_t term;
    CHECK(raft_propose(net.r[1], (const uint8_t *)"x", 1, &index, &term) == RAFT_ENOTLEADER);
    CHECK_EQ_U64(raft_leader(net.r[1]), 2);
    CHECK(raft_read_index(net.r[3], 9) == RAFT_ENOTLEADER);
    CHECK_EQ_U64(raft_leader(net.r[3]), 2);
    uint64_t match = 0;
    CHECK(!raft_match_index(net.r[1], 2, &match)); /* leader only (508263bea058) */
    CHECK(raft_match_index(net.r[2], 1, &match));
    net_free(&net);
}

/* §3.6.1: a voter refuses a candidate whose log is behind its own. */
TEST(vote_requires_up_to_date_log) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "only-on-1-and-2") > 0);
    net_settle(&net);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 3);
    net_isolate(&net, 3, false);
    net_isolate(&net, 1, true); /* the leader is gone */
    net_elect(&net, 3);         /* 3 lacks entry 3: 2 must refuse */
    CHECK(raft_role(net.r[3]) != RAFT_LEADER);
    net_elect(&net, 2);
    CHECK(raft_role(net.r[2]) == RAFT_LEADER);
    net_settle(&net);
    CHECK(raft_entry_at(net.r[3], 3) != NULL);
    CHECK(memcmp(raft_entry_at(net.r[3], 3)->data, "only-on-1-and-2", 15) == 0);
    net_free(&net);
}

/* §3.6: with an even number of voters a commit needs more than half: two of
 * four holding an entry are not a majority (the leader's commit index is
 * the value that a majority of the voters' match indexes reaches). */
TEST(four_voters_commit_needs_three) {
    net_init(&net, 4, 4);
    net_elect(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    uint64_t before = raft_commit_index(net.r[1]);
    net_isolate(&net, 3, true);
    net_isolate(&net, 4, true);
    int index = net_propose(&net, 1, "on-two-of-four");
    CHECK(index > 0);
    net_settle(&net);
    CHECK(raft_entry_at(net.r[2], (uint64_t)index) != NULL);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), before);
    net_isolate(&net, 3, false);
    for (int i = 0; i < 3; i++) net_tick(&net, 1); /* heartbeats reach 3, which catches up */
    CHECK_EQ_U64(raft_commit_index(net.r[1]), (uint64_t)index);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §9.6: with pre-vote a partitioned replica does not inflate its term, and
 * rejoining does not depose a healthy leader. */
TEST(pre_vote_keeps_partitioned_node_from_disrupting) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    uint64_t term = raft_term(net.r[1]);
    net_isolate(&net, 3, true);
    for (int t = 0; t < 200; t++) {
        net_tick_all(&net, 1);
    }
    CHECK_EQ_U64(raft_term(net.r[3]), term);
    net_isolate(&net, 3, false);
    net_tick_all(&net, 30);
    CHECK_EQ_U64(net_leader(&net), 1);
    CHECK_EQ_U64(raft_term(net.r[1]), term);
    CHECK_EQ_U64(raft_leader(net.r[3]), 1);
    net_free(&net);
}

/* §6.2: check-quorum: a leader cut off from the majority steps down within
 * an election timeout, and the majority elects a new one. */
TEST(check_quorum_leader_steps_down) {
    net_init(&net, 5, 5);
    net_elect(&net, 1);
    net_isolate(&net, 1, true);
    net_tick_all(&net, 3 * (int)net.cfg.election_ticks);
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    int leader = net_leader(&net);
    CHECK(leader > 1);
    CHECK(net_propose(&net, leader, "after") > 0);
    net_settle(&net);
    CHECK(raft_commit_index(net.r[leader]) >= 4);
    net_free(&net);
}

/* Three replicas with check-quorum and lease reads, started again so the
 * configuration applies, and 1 elected. */
static void lease__elect_1(void) {
    net_init(&net, 3, 3);
    net.cfg.check_quorum = true;
    net.cfg.lease_read = true;
    for (int id = 1; id <= 3; id++) {
        net_crash(&net, id);
        net_start(&net, id, 3);
    }
    net_elect(&net, 1);
}

/* Lease reads (§6.4.1 with check-quorum). A new leader has no lease until
 * a quorum acknowledged one of its rounds; a voter that hears a leader
 * refuses to elect another for an election timeout (what makes the lease
 * safe); and a leader that started a transfer no longer answers from its
 * lease. Each check was a mutant that survived both simulators
 * (tests/mutants/: 794fdd722e57, 602728b12964 and d412c882a99f, 02513e830fe8). */
TEST(lease_needs_an_acked_round_voters_and_no_transfer) {
    lease__elect_1();
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    /* No round acknowledged yet: no lease, the read waits for one. */
    CHECK(raft_read_index(net.r[1], 1) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 0);
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    /* Past the boot quiet period, with rounds acknowledged: the lease serves
     * a read at once. */
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(raft_read_index(net.r[1], 2) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 2);
    /* Only 3's clock runs: it times out and campaigns while 1 and 2 heard
     * the leader less than a timeout ago (their clocks stand still): both
     * refuse. */
    uint64_t asked = net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE];
    for (int t = 0; t < 4 * (int)net.cfg.election_ticks; t++) net_tick(&net, 3);
    CHECK(net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE] > asked); /* it did campaign */
    CHECK(raft_role(net.r[3]) != RAFT_LEADER);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    net_free(&net);
    /* A transfer ends the lease: the next read waits for a round. */
    lease__elect_1();
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    CHECK(raft_read_index(net.r[1], 3) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    CHECK(raft_transfer_leader(net.r[1], 2) == RAFT_OK);
    CHECK(raft_read_index(net.r[1], 4) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    net_free(&net);
}

/* §6.4.1: the lease runs election_ticks - lease_drift_ticks ticks from the
 * send of the newest round a quorum acknowledged (a follower refuses votes
 * for election_ticks after hearing it; the rest is the margin for clock
 * drift): a leader cut off right after such a round serves reads from its
 * lease for exactly that long. */
TEST(the_lease_lasts_the_timeout_less_the_drift_margin) {
    lease__elect_1();
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER); /* its last round, sent now, is acknowledged */
    net_isolate(&net, 1, true);
    uint32_t window = net.cfg.election_ticks - net.cfg.lease_drift_ticks;
    for (uint32_t j = 0; j <= window; j++) {
        if (j > 0) net_tick(&net, 1);
        CHECK(raft_role(net.r[1]) == RAFT_LEADER);
        uint32_t served = net.n_reads[1];
        CHECK(raft_read_index(net.r[1], 100 + j) == RAFT_OK);
        net_flush(&net);
        CHECK_EQ_U64(net.n_reads[1] - served, j < window ? 1 : 0);
    }
    net_free(&net);
}

/* §6.4: a read is served at an index no lower than the leader's no-op,
 * even in a group of one: before its no-op commits a new leader does not
 * know that its commit index covers every entry committed before it. */
TEST(a_single_voter_serves_reads_only_from_its_noop_on) {
    net_init(&net, 1, 1);
    net_flush(&net);
    raft_campaign(net.r[1]);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    uint64_t noop = raft_last_index(net.r[1]);
    CHECK(raft_commit_index(net.r[1]) < noop);
    CHECK(raft_read_index(net.r[1], 5) == RAFT_OK);
    for (int t = 0; t < 3 && net.n_reads[1] == 0; t++) net_tick(&net, 1);
    CHECK_EQ_U64(net.n_reads[1], 1);
    CHECK_EQ_U64(net.reads[1][0].context, 5);
    CHECK(net.reads[1][0].index >= noop);
    /* and no later: the host serves it once it applied that index, and an
     * idle leader writes nothing past its no-op (55ff00b8bdd4) */
    CHECK_EQ_U64(net.reads[1][0].index, raft_commit_index(net.r[1]));
    CHECK_EQ_U64(net.reads[1][0].index, noop);
    net_free(&net);
}

/* raft.h: at most RAFT_READS_MAX reads wait for a round, and at most as
 * many confirmed ones wait for the next ready; the next is refused with
 * RAFT_ETOOBIG, not queued past the bound. */
TEST(reads_waiting_are_bounded) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 1, true); /* no round is acknowledged */
    for (uint64_t i = 0; i < RAFT_READS_MAX; i++) CHECK(raft_read_index(net.r[1], i) == RAFT_OK);
    CHECK(raft_read_index(net.r[1], RAFT_READS_MAX) == RAFT_ETOOBIG);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 0);
    net_free(&net);
    lease__elect_1();
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    /* served from the lease, held until the next ready */
    for (uint64_t i = 0; i < RAFT_READS_MAX; i++) CHECK(raft_read_index(net.r[1], i) == RAFT_OK);
    CHECK(raft_read_index(net.r[1], RAFT_READS_MAX) == RAFT_ETOOBIG);
    net_flush(&net);
    CHECK(net.n_reads[1] > 0);
    net_free(&net);
}

/* §6.4.1 across a restart: a voter that acknowledged the leader's round
 * may have promised its lease just before it crashed. Restarted, it refuses
 * votes for its first election timeout, so no other leader is elected inside
 * that lease; once its own clock has run a timeout it votes again. */
TEST(a_restarted_voter_keeps_quiet_for_a_timeout_under_leases) {
    lease__elect_1();
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    net_crash(&net, 2);
    net_start(&net, 2, 3);
    net_isolate(&net, 1, true);
    uint64_t asked = net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE];
    for (int t = 0; t < 4 * (int)net.cfg.election_ticks; t++) net_tick(&net, 3); /* 2's clock stands */
    CHECK(net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE] > asked); /* 3 did campaign */
    CHECK(raft_role(net.r[3]) != RAFT_LEADER);
    CHECK(raft_role(net.r[2]) != RAFT_LEADER);
    for (int t = 0; t < 4 * (int)net.cfg.election_ticks; t++) net_tick_all(&net, 1);
    int leader = net_leader(&net);
    CHECK(leader == 2 || leader == 3);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* The lease is timed from the send time of the newest round a quorum
 * acknowledged, kept in a ring of RAFT_ROUND_RING (64) rounds. A leader cut
 * off from its followers whose lease ran out keeps starting rounds (one per
 * read); once 64 rounds passed the acknowledged one, its ring slot holds the
 * newest round's time, which must not renew the lease. */
TEST(lease_is_not_renewed_by_a_reused_round_slot) {
    lease__elect_1();
    for (int t = 0; t < (int)net.cfg.election_ticks + 1; t++) net_tick_all(&net, 1);
    CHECK(raft_read_index(net.r[1], 1) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 1); /* from the lease */
    net_isolate(&net, 1, true);
    uint64_t ctx = 2;
    for (int t = 0; t < (int)net.cfg.election_ticks && net.n_reads[1] == ctx - 1; t++) {
        net_tick(&net, 1);
        CHECK(raft_read_index(net.r[1], ctx++) == RAFT_OK);
        net_flush(&net);
    }
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    uint64_t served = net.n_reads[1];
    CHECK(served < ctx - 1); /* the lease ran out: reads wait for a round */
    for (int i = 0; i < 2 * 64; i++) {
        CHECK(raft_read_index(net.r[1], ctx++) == RAFT_OK);
        net_flush(&net);
        CHECK_EQ_U64(net.n_reads[1], served);
    }
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    net_free(&net);
}

/* Campaigns until id leads (a term where others already voted is lost),
 * delivering only until it wins, so its first appends are still queued. */
static void campaign_until_leader(int id, int attempts) {
    for (int a = 0; a < attempts && raft_role(net.r[id]) != RAFT_LEADER; a++) {
        net_flush(&net);
        raft_campaign(net.r[id]);
        net_flush(&net);
        while (raft_role(net.r[id]) != RAFT_LEADER && net.n_queue > 0) net_deliver_at(&net, 0);
    }
}

/* Figure 3.7: a leader must not count replicas of an entry from an earlier
 * term. (a) S1 leads term 2 and puts X at index 3 on S1, S2. (b) S1 is
 * gone; S5 leads term 3 with S3, S4 and writes index 3 of term 3 on itself
 * alone. (c) S5 is gone; S1 leads term 4 and copies X to S3 and S4: X is
 * on a majority, yet not committed. (d) S1 is gone; S5 leads term 5 and
 * overwrites X: had (c) committed X, a committed entry would be lost. */
TEST(figure_3_7_old_term_entries_are_not_committed_by_counting) {
    net_init(&net, 5, 5);
    net.cfg.max_msg_bytes = 1; /* one non-empty entry per append */
    for (int id = 1; id <= 5; id++) {
        net_crash(&net, id);
        net_start(&net, id, 5);
    }
    /* (a) */
    net_elect(&net, 1);
    CHECK_EQ_U64(raft_term(net.r[1]), 2);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 2);
    for (int id = 3; id <= 5; id++) net.link[1][id] = false;
    CHECK_EQ_U64(net_propose(&net, 1, "X"), 3);
    net_settle(&net);
    CHECK_EQ_U64(raft_term_at(net.r[2], 3), 2);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 2);
    /* (b) */
    net_crash(&net, 1);
    net_isolate(&net, 2, true);
    net_flush(&net);
    raft_campaign(net.r[5]);
    net_flush(&net);
    while (raft_role(net.r[5]) != RAFT_LEADER && net.n_queue > 0) net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[5]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_term(net.r[5]), 3);
    net_isolate(&net, 5, true); /* its no-op (index 3, term 3) stays on S5 */
    net_crash(&net, 5);
    net_settle(&net);
    CHECK_EQ_U64(net.store[5].n_log, 3);
    CHECK_EQ_U64(net.store[5].log[2].term, 3);
    CHECK_EQ_U64(raft_last_index(net.r[3]), 2);
    /* (c) */
    net_start(&net, 1, 5);
    net_heal(&net);
    net_isolate(&net, 5, true);
    /* S3 and S4 voted for S5 in term 3, so S1 wins only in term 4. */
    campaign_until_leader(1, 3);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_term(net.r[1]), 4);
    /* S1 copies X to S3 and S4 (one entry per append), but no entry of
     * term 4 reaches any follower: S2 hears nothing more, and an append of
     * the no-op that S3 or S4 would accept is dropped. */
    net.link[1][2] = false;
    for (int guard = 0; guard < 10000 && net.n_queue > 0; guard++) {
        const struct raft_msg *m = &net.queue[0].m;
        bool carries_term4 = false;
        for (uint32_t i = 0; i < m->n_entries; i++) carries_term4 |= m->entries[i].term == 4;
        bool would_accept = m->type == RAFT_MSG_APPEND && net.r[m->to] != NULL &&
                            raft_term_at(net.r[m->to], m->index) == m->log_term;
        if (carries_term4 && would_accept) {
            net.link[1][m->to] = false; /* drop it */
            net_deliver_at(&net, 0);
            net.link[1][m->to] = true;
        } else {
            net_deliver_at(&net, 0);
        }
    }
    CHECK_EQ_U64(raft_term_at(net.r[3], 3), 2);
    CHECK_EQ_U64(raft_last_index(net.r[3]), 3);
    uint64_t match = 0;
    CHECK(raft_match_index(net.r[1], 3, &match));
    CHECK_EQ_U64(match, 3);
    CHECK(raft_match_index(net.r[1], 4, &match));
    CHECK_EQ_U64(match, 3);                       /* X is on S1, S3, S4: a majority */
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 2); /* but it is not committed */
    /* (d) */
    net_crash(&net, 1);
    net_start(&net, 5, 5);
    net_isolate(&net, 5, false);
    campaign_until_leader(5, 3); /* S2-S4 voted for S1 in term 4: S5 wins term 5 */
    CHECK(raft_role(net.r[5]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_term(net.r[5]), 5);
    net_settle(&net);
    for (int id = 2; id <= 4; id++) CHECK_EQ_U64(raft_term_at(net.r[id], 3), 3);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.5, figure 3.6: after several leader changes a follower's log diverges
 * (extra uncommitted entries of old terms); the leader finds the point of
 * agreement with the conflict-term hint in a few round trips, not one per
 * entry, and the follower's log ends identical to the leader's. */
TEST(divergent_log_is_repaired_with_few_round_trips) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    CHECK(net_propose(&net, 1, "common") > 0);
    net_settle(&net);
    net_isolate(&net, 1, true);
    for (int i = 0; i < 60; i++) CHECK(net_propose(&net, 1, "stale-term-2") > 0);
    net_settle(&net);
    net_crash(&net, 1); /* 60 uncommitted entries of term 2 on S1 only */
    net_elect(&net, 2);
    for (int i = 0; i < 5; i++) CHECK(net_propose(&net, 2, "term-3") > 0);
    net_settle(&net);
    net_start(&net, 1, 3);
    net_isolate(&net, 1, false);
    uint64_t rejects_before = net.sent[RAFT_MSG_APPEND_RESP];
    uint64_t appends_before = net.sent[RAFT_MSG_APPEND];
    net_tick_all(&net, 3);
    CHECK(logs_match(&net, 1, 2));
    CHECK(raft_last_index(net.r[1]) < 20);
    CHECK(net.sent[RAFT_MSG_APPEND] - appends_before <= 12);
    CHECK(net.sent[RAFT_MSG_APPEND_RESP] - rejects_before <= 12);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.5: both logs diverge for a long stretch: after a common prefix (3..32)
 * S1 holds 60 entries of term 2 that never committed, and the leader S3
 * 61 of terms 3 and 4 at the same indexes. The follower's hint (its last
 * entry at or below the probe whose term is at most the probe's) and the
 * leader's answer to it (its last entry whose term is at most the
 * follower's) meet at the common prefix in one round trip: the leader
 * resends the divergent suffix, neither entry by entry nor from the start. */
TEST(long_divergence_on_both_sides_is_repaired_in_one_round_trip) {
    net_init(&net, 3, 3);
    net_elect(&net, 1); /* term 2: its no-op is entry 2 */
    for (int i = 0; i < 30; i++) CHECK(net_propose(&net, 1, "common") > 0);
    net_settle(&net);
    net_isolate(&net, 1, true);
    for (int i = 0; i < 60; i++) CHECK(net_propose(&net, 1, "stale-term-2") > 0);
    net_settle(&net);
    net_crash(&net, 1); /* 33..92 of term 2 on S1 only */
    net_elect(&net, 2); /* term 3: its no-op is entry 33 */
    for (int i = 0; i < 60; i++) CHECK(net_propose(&net, 2, "term-3") > 0);
    net_settle(&net);
    net_elect(&net, 3); /* term 4: no-op at 94; S3's guess for S1 is its own end */
    CHECK(raft_role(net.r[3]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_last_index(net.r[3]), 94);
    net_start(&net, 1, 3);
    CHECK_EQ_U64(raft_last_index(net.r[1]), 92);
    net_isolate(&net, 1, false);
    uint64_t appends_before = net.sent[RAFT_MSG_APPEND];
    uint64_t entries_before = net.entries_to[1];
    net_tick_all(&net, 3);
    CHECK(logs_match(&net, 1, 3));
    CHECK(net.sent[RAFT_MSG_APPEND] - appends_before <= 12);
    CHECK(net.entries_to[1] - entries_before <= 62 + 8); /* 33..94, not 1..94 */
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.5: a follower that missed a stretch of entries (S3, cut off while 60
 * entries committed) and a new leader whose first guess is its own end: the
 * rejection names the follower's last index, and the leader jumps there in
 * one round trip instead of walking back entry by entry. */
TEST(a_lagging_follower_is_caught_up_in_one_round_trip) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 60; i++) CHECK(net_propose(&net, 1, "while-3-is-away") > 0);
    net_settle(&net);
    net_elect(&net, 2); /* S2's guess for S3 is its own end, 60 entries past S3's */
    CHECK(raft_role(net.r[2]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_last_index(net.r[3]), 2);
    net_isolate(&net, 3, false);
    uint64_t appends_before = net.sent[RAFT_MSG_APPEND];
    net_tick_all(&net, 3);
    CHECK(logs_match(&net, 2, 3));
    CHECK(net.sent[RAFT_MSG_APPEND] - appends_before <= 12);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §10.2.1: once a lagging follower's probe is accepted the leader streams
 * the rest, refilling the pipeline (max_inflight_msgs appends of one entry
 * here) as each acknowledgement comes back, not one append per heartbeat. */
TEST(a_lagging_follower_is_streamed_without_waiting_for_heartbeats) {
    net_init(&net, 3, 3);
    net.cfg.max_msg_bytes = 1; /* one entry per append */
    net.cfg.max_inflight_msgs = 4;
    for (int id = 1; id <= 3; id++) {
        net_crash(&net, id);
        net_start(&net, id, 3);
    }
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 40; i++) CHECK(net_propose(&net, 1, "while-3-is-away") > 0);
    net_settle(&net);
    net_isolate(&net, 3, false);
    net_tick(&net, 1); /* one heartbeat: 3 answers, and the rest follows */
    CHECK(logs_match(&net, 1, 3));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Delivers at most max queued messages (and what they cause); true if the
 * queue ran empty: a leader and follower that keep answering each other
 * with the same probe never do. */
static bool deliver_at_most(int max) {
    net_flush(&net);
    for (int i = 0; i < max && net.n_queue > 0; i++) net_deliver_at(&net, 0);
    return net.n_queue == 0;
}

/* §3.5 and §5 together: the follower's conflicting entry (of an older
 * term) sits exactly at the leader's snapshot index. Both sides' hints stop
 * there (the leader cannot look below its snapshot), so the rejection names
 * the very index it rejected; the leader must go below it, to the
 * snapshot, not repeat the probe forever. */
TEST(conflict_at_the_leaders_snapshot_index_is_repaired_by_the_snapshot) {
    net_init(&net, 3, 3);
    net_elect(&net, 1); /* term 2: its no-op is entry 2 */
    CHECK_EQ_U64(net_propose(&net, 1, "common"), 3);
    net_settle(&net);
    net_isolate(&net, 1, true);
    CHECK_EQ_U64(net_propose(&net, 1, "stale"), 4);
    CHECK_EQ_U64(net_propose(&net, 1, "stale"), 5); /* 4 and 5 of term 2, on S1 only */
    net_crash(&net, 1);
    net_elect(&net, 2); /* term 3: its no-op is entry 4 */
    net_elect(&net, 3); /* term 4: last index 4 (term 3) when elected, no-op at 5 */
    CHECK(raft_role(net.r[3]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_term(net.r[3]), 4);
    CHECK_EQ_U64(raft_term_at(net.r[3], 4), 3);
    CHECK_EQ_U64(raft_commit_index(net.r[3]), 5);
    CHECK(raft_compact(net.r[3], 4, (const uint8_t *)"image", 5) == RAFT_OK);
    net_start(&net, 1, 3);
    net_isolate(&net, 1, false);
    /* A heartbeat answered lets S3 probe after 4 (term 3); S1 has 4 of term 2. */
    for (int t = 0; t < 3; t++) {
        raft_tick(net.r[3]);
        CHECK(deliver_at_most(200));
    }
    CHECK_EQ_U64(net.snapshots_installed[1], 1);
    CHECK_EQ_U64(raft_term_at(net.r[1], 4), 3);
    CHECK_EQ_U64(raft_last_index(net.r[1]), 5);
    CHECK_EQ_U64(raft_term_at(net.r[1], 5), 4);
    CHECK_EQ_U64(net.applied_to[1], 5);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §10.2.1: pipelining is bounded: at most max_inflight_msgs unacknowledged
 * appends per follower, at most max_msg_bytes of entries per append (or one
 * entry); everything arrives once the link delivers, and only once. */
TEST(inflight_appends_and_message_size_are_bounded) {
    net_init(&net, 3, 3);
    net.cfg.max_inflight_msgs = 4;
    net.cfg.max_msg_bytes = 100;
    for (int id = 1; id <= 3; id++) {
        net_crash(&net, id);
        net_start(&net, id, 3);
    }
    net_elect(&net, 1);
    net.max_entries_per_append = 0;
    size_t queued_before = net.n_queue;
    CHECK_EQ_U64(queued_before, 0);
    uint64_t entries_before = net.entries_to[2];
    char cmd[48];
    memset(cmd, 'v', sizeof(cmd) - 1);
    cmd[sizeof(cmd) - 1] = '\0';
    for (int i = 0; i < 100; i++) CHECK(net_propose(&net, 1, cmd) > 0);
    size_t appends_to_2 = 0;
    for (size_t i = 0; i < net.n_queue; i++) {
        const struct raft_msg *m = &net.queue[i].m;
        if (m->type != RAFT_MSG_APPEND || m->to != 2 || m->n_entries == 0) continue;
        appends_to_2++;
        uint64_t bytes = 0;
        for (uint32_t e = 0; e + 1 < m->n_entries; e++) bytes += m->entries[e].len;
        CHECK(bytes < 100); /* all but the last entry fit under the limit */
    }
    CHECK(appends_to_2 >= 1 && appends_to_2 <= 4);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(net.applied_to[2], 102);
    CHECK_EQ_U64(net.applied_to[3], 102);
    CHECK_EQ_U64(net.entries_to[2] - entries_before, 100); /* a link that loses nothing: each once */
    net_free(&net);
}

/* §6.4: ReadIndex: a new leader answers no read before its no-op commits,
 * one heartbeat round confirms every read queued before it, and a leader
 * that cannot reach a quorum answers none. */
TEST(read_index_needs_noop_and_quorum) {
    net_init(&net, 3, 3);
    net_flush(&net);
    raft_campaign(net.r[1]);
    net_flush(&net);
    while (raft_role(net.r[1]) != RAFT_LEADER && net.n_queue > 0) net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(raft_commit_index(net.r[1]) < 2); /* the no-op is not committed yet */
    CHECK(raft_read_index(net.r[1], 100) == RAFT_OK);
    net_flush(&net);
    CHECK_EQ_U64(net.n_reads[1], 0);
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    CHECK_EQ_U64(net.reads[1][0].context, 100);
    CHECK(net.reads[1][0].index >= 2);
    /* Ten reads, one round. */
    uint64_t heartbeats = net.sent[RAFT_MSG_HEARTBEAT];
    for (uint64_t c = 1; c <= 10; c++) CHECK(raft_read_index(net.r[1], c) == RAFT_OK);
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 11);
    CHECK_EQ_U64(net.sent[RAFT_MSG_HEARTBEAT] - heartbeats, 2); /* one per follower */
    /* Cut off: the read is never confirmed (it would be stale). */
    net_isolate(&net, 1, true);
    CHECK(raft_read_index(net.r[1], 200) == RAFT_OK);
    for (int t = 0; t < 3 * (int)net.cfg.election_ticks; t++) net_tick(&net, 1);
    CHECK_EQ_U64(net.n_reads[1], 11);
    net_free(&net);
}

/* Under load a leader starts a read round only when the last one is
 * answered by a quorum: reads asked while a round travels wait for the
 * next, which goes out as soon as the answers arrive; a round whose
 * answers are lost holds the next until the heartbeat timer's round. */
TEST(a_read_round_waits_for_the_one_in_flight) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_settle(&net);
    uint64_t heartbeats = net.sent[RAFT_MSG_HEARTBEAT];
    uint64_t served = net.reads_total[1];
    CHECK(raft_read_index(net.r[1], 1) == RAFT_OK);
    net_flush_one(&net, 1); /* its round goes out, unanswered yet */
    CHECK_EQ_U64(net.sent[RAFT_MSG_HEARTBEAT] - heartbeats, 2);
    CHECK(raft_read_index(net.r[1], 2) == RAFT_OK);
    net_flush_one(&net, 1);
    CHECK_EQ_U64(net.sent[RAFT_MSG_HEARTBEAT] - heartbeats, 2); /* held */
    CHECK(!raft_has_ready(net.r[1]));                          /* nothing to do meanwhile */
    net_settle(&net); /* the answers arrive: read 1 is served, read 2's round goes out */
    CHECK_EQ_U64(net.reads_total[1] - served, 2);
    CHECK_EQ_U64(net.sent[RAFT_MSG_HEARTBEAT] - heartbeats, 4);
    /* A round whose answers are lost. */
    CHECK(raft_read_index(net.r[1], 3) == RAFT_OK);
    net_flush_one(&net, 1);
    net_drop_all(&net);
    CHECK(raft_read_index(net.r[1], 4) == RAFT_OK);
    net_flush_one(&net, 1);
    CHECK_EQ_U64(net.sent[RAFT_MSG_HEARTBEAT] - heartbeats, 6);
    for (uint32_t t = 0; t < net.cfg.heartbeat_ticks; t++) net_tick(&net, 1);
    net_settle(&net);
    CHECK_EQ_U64(net.reads_total[1] - served, 4);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §5: compaction and InstallSnapshot in chunks: a follower behind the
 * leader's snapshot receives it in max_chunk_bytes pieces, restores it,
 * and continues from the log. */
/* Three replicas restarted with 1000-byte snapshot chunks (and the given
 * snapshot_read); 1 leads and applied 30 proposals that 3, cut off, lacks. */
static void snapshot_scene(raft_snapshot_read_fn read, raft_snapshot_recv_fn recv, void *ctx) {
    net_init(&net, 3, 3);
    net.cfg.max_chunk_bytes = 1000;
    net.cfg.snapshot_read = read;
    net.cfg.snapshot_recv = recv;
    net.cfg.snapshot_ctx = ctx;
    for (int id = 1; id <= 3; id++) {
        net_crash(&net, id);
        net_start(&net, id, 3);
    }
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 30; i++) (void)net_propose(&net, 1, "before-snapshot");
    net_settle(&net);
}

TEST(snapshot_is_sent_in_chunks_and_installed) {
    snapshot_scene(NULL, NULL, NULL);
    uint64_t applied = raft_applied_index(net.r[1]);
    CHECK_EQ_U64(applied, 32);
    static uint8_t image[10500];
    for (size_t i = 0; i < sizeof(image); i++) image[i] = (uint8_t)(i * 7);
    CHECK(raft_compact(net.r[1], applied + 1, image, sizeof(image)) == RAFT_EINVAL);
    CHECK(raft_compact(net.r[1], applied - 2, image, sizeof(image)) == RAFT_OK); /* behind */
    CHECK(raft_compact(net.r[1], applied - 2, image, sizeof(image)) == RAFT_EINVAL);
    CHECK(raft_compact(net.r[1], applied, image, sizeof(image)) == RAFT_OK);
    raft_snapshot_external(net.r[1]); /* no snapshot_read: a no-op (b738fc316582) */
    CHECK_EQ_U64(raft_first_index(net.r[1]), 33);
    CHECK(raft_entry_at(net.r[1], 10) == NULL);
    net_isolate(&net, 3, false);
    uint64_t chunks_before = net.sent[RAFT_MSG_SNAPSHOT];
    net_tick_all(&net, 5);
    CHECK_EQ_U64(net.sent[RAFT_MSG_SNAPSHOT] - chunks_before, 11); /* ceil(10500 / 1000) */
    CHECK_EQ_U64(net.snapshots_installed[3], 1);
    CHECK(net.store[3].has_snapshot);
    CHECK_EQ_U64(net.store[3].snap.index, 32);
    CHECK_EQ_U64(net.store[3].snap_size, sizeof(image));
    CHECK(memcmp(net.store[3].snap_data, image, sizeof(image)) == 0);
    CHECK(net_propose(&net, 1, "after-snapshot") > 0);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(net.applied_to[3], 33);
    CHECK(memcmp(net.applied[3][33].data, "after-snapshot", 14) == 0);
    net_free(&net);
}

static uint8_t ext_image[10500];
static uint32_t ext_reads;

static void ext_read(void *ctx, uint64_t offset, uint8_t *buf, uint32_t len) {
    if (ctx != &ext_reads || offset + len > sizeof(ext_image)) return; /* no read: caught below */
    memcpy(buf, ext_image + offset, len);
    ext_reads++;
}

/* Replica 3 installed ext_image as the snapshot at `applied`, and the log
 * goes on from there. */
static void ext_installed_then_replicated(int *test__failed, uint64_t applied) {
    CHECK_EQ_U64(net.snapshots_installed[3], 1);
    CHECK_EQ_U64(net.store[3].snap_size, sizeof(ext_image));
    CHECK(memcmp(net.store[3].snap_data, ext_image, sizeof(ext_image)) == 0);
    CHECK(net_propose(&net, 1, "after-snapshot") > 0);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(net.applied_to[3], applied + 1);
}

/* A snapshot the caller keeps (shoal keeps it in its file): compaction
 * keeps no copy, and every chunk a follower needs is read through
 * config.snapshot_read. */
TEST(external_snapshot_is_read_through_the_callback) {
    snapshot_scene(ext_read, NULL, &ext_reads);
    uint64_t applied = raft_applied_index(net.r[1]);
    CHECK_EQ_U64(applied, 32);
    for (size_t i = 0; i < sizeof(ext_image); i++) ext_image[i] = (uint8_t)(i * 13 + 1);
    CHECK(raft_compact_external(net.r[1], applied + 1, sizeof(ext_image)) == RAFT_EINVAL);
    CHECK(raft_compact_external(net.r[1], applied, RAFT_SNAPSHOT_BYTES_MAX + 1) == RAFT_ETOOBIG);
    /* the limit itself is allowed (7de4dfce57b5); replaced at once below */
    CHECK(raft_compact_external(net.r[1], applied - 1, RAFT_SNAPSHOT_BYTES_MAX) == RAFT_OK);
    CHECK(raft_compact_external(net.r[1], applied, sizeof(ext_image)) == RAFT_OK);
    CHECK(raft_entry_at(net.r[1], 10) == NULL);
    CHECK_EQ_U64(ext_reads, 0);
    net_isolate(&net, 3, false);
    net_tick_all(&net, 5);
    CHECK_EQ_U64(ext_reads, 11); /* ceil(10500 / 1000), nothing else */
    ext_installed_then_replicated(test__failed, applied);
    /* Without a snapshot_read there is nowhere to read from. */
    net.cfg.snapshot_read = NULL;
    net_crash(&net, 2);
    net_start(&net, 2, 3);
    CHECK(raft_compact_external(net.r[2], 2, 100) == RAFT_EINVAL);
    net_free(&net);
}

/* The follower's side of a snapshot kept by the caller: chunks go to
 * config.snapshot_recv in order as they arrive (nothing is held whole in
 * memory; the ready that installs it carries no bytes), several are in
 * flight at once (max_snapshot_inflight), and a chunk the receiver cannot
 * store (a full disk) makes the transfer start over, not stop. */
static uint8_t sink[10500];
static uint64_t sink_next;
static uint32_t sink_calls, sink_fail_at, sink_out_of_order;

static int sink_recv(void *ctx, const struct raft_snapshot_meta *meta, uint64_t size,
                     uint64_t offset, const uint8_t *buf, uint32_t len) {
    (void)meta;
    if (ctx != &ext_reads) return -1;
    sink_calls++;
    if (sink_calls == sink_fail_at) return -1; /* ENOSPC, once */
    if (offset == 0) sink_next = 0;
    if (offset != sink_next || size != sizeof(sink) || offset + len > size) {
        sink_out_of_order++;
        return -1;
    }
    memcpy(sink + offset, buf, len);
    sink_next += len;
    return 0;
}

TEST(received_snapshot_streams_to_the_caller_and_survives_a_failed_chunk) {
    snapshot_scene(ext_read, sink_recv, &ext_reads);
    net.recv_sink = sink;
    uint64_t applied = raft_applied_index(net.r[1]);
    for (size_t i = 0; i < sizeof(ext_image); i++) ext_image[i] = (uint8_t)(i * 31 + 5);
    CHECK(raft_compact_external(net.r[1], applied, sizeof(ext_image)) == RAFT_OK);
    CHECK(!raft_snapshot_sending(net.r[1]));
    sink_calls = 0;
    sink_fail_at = 5; /* the 5th chunk cannot be stored */
    net_isolate(&net, 3, false);
    net_tick_all(&net, 3 * (int)net.cfg.election_ticks);
    CHECK_EQ_U64(sink_out_of_order, 0);
    CHECK(sink_calls > 11); /* ceil(10500 / 1000) and the ones sent again */
    CHECK(memcmp(sink, ext_image, sizeof(ext_image)) == 0);
    ext_installed_then_replicated(test__failed, applied);
    /* snapshot_recv without snapshot_read is refused */
    net.cfg.snapshot_read = NULL;
    struct raft_hard_state hs = {0};
    struct raft_config cfg = net.cfg;
    cfg.id = 9;
    struct raft_conf conf = {.n_voters = 1, .voters = {9}};
    CHECK(raft_create(&cfg, &hs, NULL, NULL, 0, NULL, 0, &conf) == NULL);
    net_free(&net);
}

/* §5: a snapshot may be empty (a state machine with nothing in it): its one
 * chunk starts at its end, offset 0 of 0 bytes, and is installed. */
TEST(an_empty_snapshot_is_sent_and_installed) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 5; i++) CHECK(net_propose(&net, 1, "x") > 0);
    net_settle(&net);
    uint64_t applied = raft_applied_index(net.r[1]);
    CHECK(raft_compact(net.r[1], applied, (const uint8_t *)"", 0) == RAFT_OK);
    net_isolate(&net, 3, false);
    net_tick_all(&net, 3);
    CHECK_EQ_U64(net.snapshots_installed[3], 1);
    CHECK_EQ_U64(net.store[3].snap_size, 0);
    CHECK_EQ_U64(net.applied_to[3], raft_applied_index(net.r[1]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* raft.h: a snapshot received into memory may not exceed
 * RAFT_SNAPSHOT_MEMORY_BYTES_MAX; one streamed to the caller (snapshot_recv)
 * has no cap tied to memory. A first chunk declaring one byte more is
 * dropped unanswered by the first, and stored and answered by the second. */
static bool snapshot_over_memory_cap_is_answered(int to) {
    uint64_t resps = net.sent[RAFT_MSG_SNAPSHOT_RESP];
    uint8_t chunk[4] = {1, 2, 3, 4};
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = (uint64_t)to,
                         .term = raft_term(net.r[1]), .chunk = chunk, .chunk_len = 4,
                         .snapshot_size = RAFT_SNAPSHOT_MEMORY_BYTES_MAX + 1ull};
    m.snapshot.index = raft_last_index(net.r[1]) + 100;
    m.snapshot.term = raft_term(net.r[1]);
    int rc = raft_step(net.r[to], &m);
    assert(rc == RAFT_OK);
    (void)rc;
    net_flush(&net);
    net_drop_all(&net);
    return net.sent[RAFT_MSG_SNAPSHOT_RESP] > resps;
}

TEST(a_snapshot_over_the_memory_cap_is_refused_unless_streamed) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    CHECK(!snapshot_over_memory_cap_is_answered(2));
    net_free(&net);
    snapshot_scene(ext_read, sink_recv, &ext_reads);
    sink_calls = 0;
    sink_fail_at = 0;
    sink_out_of_order = 0;
    CHECK(snapshot_over_memory_cap_is_answered(2));
    CHECK_EQ_U64(sink_calls, 1); /* handed to the caller (which refuses this size) */
    net_free(&net);
}

/* A pipelined leader (raft_advance_unsynced) hands its entries out and
 * goes on, but counts itself towards their commit only once the caller
 * reports them durable: a follower's acknowledgement alone is one vote of
 * three. */
TEST(pipelined_leader_counts_itself_once_persisted) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_settle(&net);
    struct raft *l = net.r[1];
    CHECK(raft_can_advance_unsynced(net.r[2])); /* followers pipeline too (next test) */
    net_isolate(&net, 3, true);
    uint64_t idx = 0, term = 0;
    CHECK(raft_propose(l, (const uint8_t *)"p1", 2, &idx, &term) == RAFT_OK);
    CHECK(raft_can_advance_unsynced(l));
    struct raft_ready rd;
    raft_ready(l, &rd);
    CHECK_EQ_U64(rd.n_entries, 1);
    net__persist(&net, 1, &rd);
    for (uint32_t i = 0; i < rd.n_messages; i++) net__enqueue(&net, &rd.messages[i]);
    net__apply(&net, 1, &rd);
    raft_advance_unsynced(l);
    CHECK_EQ_U64(raft_durable_index(l), idx - 1);
    net_settle(&net); /* follower 2 stores it and acknowledges */
    uint64_t match = 0;
    CHECK(raft_match_index(l, 2, &match));
    CHECK_EQ_U64(match, idx);
    CHECK(raft_commit_index(l) < idx);
    raft_persisted(l, idx, term + 1); /* not that entry: ignored */
    CHECK_EQ_U64(raft_durable_index(l), idx - 1);
    CHECK(raft_commit_index(l) < idx);
    raft_persisted(l, idx, term);
    CHECK_EQ_U64(raft_durable_index(l), idx);
    CHECK_EQ_U64(raft_commit_index(l), idx);
    net_settle(&net);
    CHECK_EQ_U64(net.applied_to[2], idx);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* A pipelined follower (raft_advance_unsynced) stores, applies and goes
 * on, but acknowledges an append only once the caller reports it durable:
 * an acknowledgement is a vote for the commit, and the follower may lose
 * what is not on its disk. */
TEST(pipelined_follower_acknowledges_only_durable_entries) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_settle(&net);
    struct raft *l = net.r[1];
    struct raft *f = net.r[2];
    net_isolate(&net, 3, true);
    uint64_t idx = 0, term = 0;
    CHECK(raft_propose(l, (const uint8_t *)"p1", 2, &idx, &term) == RAFT_OK);
    net_flush_one(&net, 1); /* the leader's own copy is durable: one vote of three */
    while (net.n_queue > 0) net__deliver(&net, 0, false); /* to 2, not yet run */
    CHECK(raft_has_ready(f));
    CHECK(raft_can_advance_unsynced(f));
    struct raft_ready rd;
    raft_ready(f, &rd);
    CHECK_EQ_U64(rd.n_entries, 1);
    for (uint32_t i = 0; i < rd.n_messages; i++) {
        const struct raft_msg *m = &rd.messages[i];
        CHECK(!(m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index >= idx));
    }
    net__persist(&net, 2, &rd);
    for (uint32_t i = 0; i < rd.n_messages; i++) net__enqueue(&net, &rd.messages[i]);
    net__apply(&net, 2, &rd);
    raft_advance_unsynced(f);
    CHECK_EQ_U64(raft_durable_index(f), idx - 1);
    while (net.n_queue > 0) net__deliver(&net, 0, true);
    CHECK(raft_commit_index(l) < idx); /* nothing durable on 2 was claimed */
    /* still nothing to say until the caller reports the entry durable */
    CHECK(!raft_has_ready(f));
    raft_persisted(f, idx, term);
    CHECK_EQ_U64(raft_durable_index(f), idx);
    CHECK(raft_has_ready(f));
    net_settle(&net);
    CHECK_EQ_U64(raft_commit_index(l), idx);
    CHECK_EQ_U64(net.applied_to[2], idx);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Runs replica id's readies as a pipelined leader does: handed to storage
 * and sent at once, durable only when the test calls raft_persisted(). */
static void flush_unsynced(int id) {
    struct raft *r = net.r[id];
    while (raft_has_ready(r)) {
        bool unsynced = raft_can_advance_unsynced(r);
        struct raft_ready rd;
        raft_ready(r, &rd);
        net__persist(&net, id, &rd);
        for (uint32_t i = 0; i < rd.n_messages; i++) net__enqueue(&net, &rd.messages[i]);
        net__apply(&net, id, &rd);
        if (unsynced) {
            raft_advance_unsynced(r);
        } else {
            raft_advance(r);
        }
    }
}

/* Delivers everything queued; replica id's readies are pipelined. */
static void settle_unsynced(int id) {
    for (int o = 1; o <= net.n; o++) {
        if (o != id) net_flush_one(&net, o);
    }
    flush_unsynced(id);
    for (int guard = 0; guard < 10000 && net.n_queue > 0; guard++) {
        bool to_id = net.queue[0].m.to == (uint64_t)id;
        net__deliver(&net, 0, !to_id);
        if (to_id) flush_unsynced(id);
    }
}

/* A new leader's no-op is an entry like any other: a pipelined leader
 * (raft_advance_unsynced) hands it out before its own write is durable and
 * counts itself towards it only once raft_persisted() says so; one
 * follower's acknowledgement is one vote of three. */
TEST(a_new_leaders_noop_counts_the_leader_once_persisted) {
    net_init(&net, 3, 3);
    net_flush(&net);
    net_isolate(&net, 3, true);
    raft_campaign(net.r[1]);
    net_flush(&net);
    while (raft_role(net.r[1]) != RAFT_LEADER && net.n_queue > 0) {
        bool to_1 = net.queue[0].m.to == 1;
        net__deliver(&net, 0, !to_1);
        if (to_1 && raft_role(net.r[1]) != RAFT_LEADER) flush_unsynced(1);
    }
    struct raft *l = net.r[1];
    CHECK(raft_role(l) == RAFT_LEADER);
    uint64_t noop = raft_last_index(l);
    CHECK_EQ_U64(raft_term_at(l, noop), raft_term(l));
    CHECK_EQ_U64(raft_durable_index(l), noop - 1);
    settle_unsynced(1); /* follower 2 stores the no-op and acknowledges */
    CHECK_EQ_U64(raft_durable_index(l), noop - 1);
    uint64_t match = 0;
    CHECK(raft_match_index(l, 2, &match));
    CHECK_EQ_U64(match, noop);
    CHECK(raft_commit_index(l) < noop);
    raft_persisted(l, noop, raft_term(l));
    CHECK_EQ_U64(raft_commit_index(l), noop);
    settle_unsynced(1);
    CHECK_EQ_U64(net.applied_to[2], noop);
    CHECK(!net.safety_violated);
    net_free(&net);
}

static struct raft_conf conf_of(const uint64_t *voters, int nv, const uint64_t *learners, int nl) {
    struct raft_conf c = {0};
    for (int i = 0; i < nv; i++) c.voters[c.n_voters++] = voters[i];
    for (int i = 0; i < nl; i++) c.learners[c.n_learners++] = learners[i];
    return c;
}

/* §4.3: joint consensus. A learner joins and catches up without voting; it
 * is promoted through the joint configuration; then the leader removes
 * itself, hands over, and the group goes on without it. */
TEST(joint_consensus_learner_promotion_and_leader_removal) {
    net_init(&net, 4, 3); /* 4 starts empty, outside the configuration */
    net_elect(&net, 1);
    for (int i = 0; i < 10; i++) CHECK(net_propose(&net, 1, "data") > 0);
    net_settle(&net);
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add_learner = conf_of(v123, 3, l4, 1);
    CHECK(raft_propose_conf(net.r[1], &add_learner) == RAFT_OK);
    CHECK(raft_propose_conf(net.r[1], &add_learner) == RAFT_EBUSY); /* one at a time */
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK(raft_conf(net.r[1])->n_learners == 1);
    CHECK(!raft_is_voter(net.r[1], 4));
    CHECK_EQ_U64(net.applied_to[4], raft_applied_index(net.r[1])); /* caught up */
    uint64_t match4 = 0;
    CHECK(raft_match_index(net.r[1], 4, &match4));
    CHECK_EQ_U64(match4, raft_last_index(net.r[1]));
    /* Promote 4: the leader enters the joint configuration and leaves it. */
    const uint64_t v1234[] = {1, 2, 3, 4};
    struct raft_conf promote = conf_of(v1234, 4, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &promote) == RAFT_OK);
    CHECK(raft_conf_is_voter(raft_conf(net.r[1]), 1));
    bool saw_joint = false;
    net_flush(&net);
    for (int guard = 0; guard < 10000 && net.n_queue > 0; guard++) {
        net_deliver_at(&net, 0);
        saw_joint |= raft_conf(net.r[1])->n_outgoing > 0;
    }
    net_tick_all(&net, 3);
    CHECK(saw_joint);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_outgoing, 0);
    CHECK(raft_is_voter(net.r[1], 4));
    CHECK(raft_is_voter(net.r[3], 4));
    /* Remove the leader itself. */
    const uint64_t v234[] = {2, 3, 4};
    struct raft_conf without1 = conf_of(v234, 3, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &without1) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 4 * (int)net.cfg.election_ticks);
    int leader = net_leader(&net);
    CHECK(leader >= 2 && leader <= 4);
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    CHECK(!raft_is_voter(net.r[leader], 1));
    CHECK(net_propose(&net, leader, "without-1") > 0);
    net_settle(&net);
    net_tick_all(&net, 2);
    uint64_t last = raft_last_index(net.r[leader]);
    for (int id = 2; id <= 4; id++) CHECK_EQ_U64(net.applied_to[id], last);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §4.1: a new leader proposes no configuration before an entry of its own
 * term is committed: until then it cannot know that the latest
 * configuration in its log is the latest committed one (the correction to
 * single-server changes; with joint consensus and configurations taking
 * effect when applied it is defence in depth, and raft.h's contract). */
TEST(a_new_leader_changes_the_configuration_only_after_its_first_commit) {
    net_init(&net, 4, 3); /* 4 starts empty, outside the configuration */
    campaign_until_leader(1, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(raft_commit_index(net.r[1]) < raft_last_index(net.r[1])); /* its no-op waits */
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add_learner = conf_of(v123, 3, l4, 1);
    CHECK(raft_propose_conf(net.r[1], &add_learner) == RAFT_EBUSY);
    net_settle(&net);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), raft_last_index(net.r[1]));
    CHECK(raft_propose_conf(net.r[1], &add_learner) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK(raft_conf(net.r[1])->n_learners == 1);
    CHECK_EQ_U64(net.applied_to[4], raft_applied_index(net.r[1]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* A group of one voter: nothing is sent, so a proposal's unpersisted entry
 * alone must make a ready; once persisted it is committed by the leader's
 * own vote and applied. */
TEST(a_single_voter_commits_and_applies_its_own_entries) {
    net_init(&net, 1, 1);
    net_elect(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    for (int i = 0; i < 3; i++) {
        int index = net_propose(&net, 1, "alone");
        CHECK(index > 0);
        CHECK_EQ_U64(raft_commit_index(net.r[1]), (uint64_t)index);
        CHECK_EQ_U64(net.applied_to[1], (uint64_t)index);
    }
    CHECK(!raft_has_ready(net.r[1]));
    CHECK_EQ_U64(net.n_queue, 0);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §4: the leader keeps no progress for a member it removed. S3 is removed,
 * loses its disk, and an empty replica under its id is added back as a
 * learner: the leader must start it from nothing (match 0, probing), not
 * from what the old S3 had, or it counts entries S3 no longer has and
 * probes above S3's empty log forever. */
TEST(a_member_removed_and_added_again_starts_from_nothing) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    for (int i = 0; i < 5; i++) CHECK(net_propose(&net, 1, "data") > 0);
    net_settle(&net);
    uint64_t match = 0;
    CHECK(raft_match_index(net.r[1], 3, &match));
    CHECK_EQ_U64(match, 7);
    const uint64_t v12[] = {1, 2};
    struct raft_conf without3 = conf_of(v12, 2, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &without3) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_voters, 2);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_outgoing, 0);
    CHECK(!raft_match_index(net.r[1], 3, &match));
    net_crash(&net, 3);
    struct net_store *st = &net.store[3];
    for (uint32_t i = 0; i < st->n_log; i++) free(st->log[i].data);
    free(st->snap_data);
    memset(st, 0, sizeof(*st));
    net_start(&net, 3, 2); /* empty, outside the configuration */
    const uint64_t l3[] = {3};
    struct raft_conf add3 = conf_of(v12, 2, l3, 1);
    CHECK(raft_propose_conf(net.r[1], &add3) == RAFT_OK);
    net_flush(&net);
    /* Until the leader applies the change, 3 is no member; then it is new. */
    while (!raft_match_index(net.r[1], 3, &match) && net.n_queue > 0) net_deliver_at(&net, 0);
    CHECK(raft_match_index(net.r[1], 3, &match));
    CHECK_EQ_U64(match, 0);
    for (int t = 0; t < 3; t++) {
        raft_tick(net.r[1]);
        CHECK(deliver_at_most(500));
    }
    CHECK_EQ_U64(raft_last_index(net.r[3]), raft_last_index(net.r[1]));
    CHECK(logs_match(&net, 1, 3));
    CHECK(raft_match_index(net.r[1], 3, &match));
    CHECK_EQ_U64(match, raft_last_index(net.r[1]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Configurations take effect when applied (as in etcd), so a replica that
 * knows a configuration entry is committed but has not applied it yet does
 * not campaign: on the old configuration it could be elected by voters the
 * new one no longer has. S2 learns that the
 * change is committed, its host has not taken the ready yet, and its
 * election timer runs out. */
TEST(a_committed_unapplied_configuration_blocks_campaigning) {
    net_init(&net, 4, 3);
    net_elect(&net, 1);
    net_settle(&net);
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add4 = conf_of(v123, 3, l4, 1);
    CHECK(raft_propose_conf(net.r[1], &add4) == RAFT_OK);
    uint64_t k = raft_last_index(net.r[1]);
    net_flush(&net);
    /* S2 stores the entry; everything else flows until the leader commits it. */
    for (int guard = 0; guard < 1000 && raft_commit_index(net.r[1]) < k; guard++) {
        size_t i = 0;
        while (i < net.n_queue && net.queue[i].m.to == 2 && net.queue[i].m.n_entries == 0) i++;
        CHECK(i < net.n_queue);
        net_deliver_at(&net, i);
    }
    CHECK_EQ_U64(raft_commit_index(net.r[1]), k);
    /* The leader's commit reaches S2, whose host does not take the ready. */
    for (size_t i = 0; i < net.n_queue; i++) {
        if (net.queue[i].m.to == 2) CHECK(raft_step(net.r[2], &net.queue[i].m) == RAFT_OK);
    }
    net_drop_all(&net);
    CHECK_EQ_U64(raft_commit_index(net.r[2]), k);
    CHECK(raft_applied_index(net.r[2]) < k);
    for (uint32_t t = 0; t < 3 * net.cfg.election_ticks; t++) raft_tick(net.r[2]);
    CHECK(raft_role(net.r[2]) == RAFT_FOLLOWER);
    net_flush_one(&net, 2);
    CHECK_EQ_U64(raft_applied_index(net.r[2]), k);
    CHECK_EQ_U64(raft_conf(net.r[2])->n_learners, 1);
    net_drop_all(&net);
    net_free(&net);
}

/* §3.10: leadership transfer: the target is caught up first, then told to
 * campaign at once; it wins the next term; the old leader refuses
 * proposals meanwhile. */
TEST(leadership_transfer_catches_up_then_hands_over) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    uint64_t term = raft_term(net.r[1]);
    net_isolate(&net, 3, true);
    for (int i = 0; i < 5; i++) CHECK(net_propose(&net, 1, "x") > 0);
    net_settle(&net);
    net_isolate(&net, 3, false);
    CHECK(raft_transfer_leader(net.r[1], 3) == RAFT_OK);
    uint64_t index;
    CHECK(raft_propose(net.r[1], (const uint8_t *)"y", 1, &index, NULL) == RAFT_EBUSY);
    net_settle(&net);
    CHECK(raft_role(net.r[3]) == RAFT_LEADER);
    CHECK_EQ_U64(raft_term(net.r[3]), term + 1);
    CHECK(raft_entry_at(net.r[3], 7) != NULL); /* it had caught up */
    CHECK(raft_propose(net.r[1], (const uint8_t *)"y", 1, &index, NULL) == RAFT_ENOTLEADER);
    CHECK_EQ_U64(raft_leader(net.r[1]), 3);
    CHECK(raft_transfer_leader(net.r[3], 9) == RAFT_EINVAL); /* not a member */
    net_free(&net);
}

/* §3.8: the term and vote survive a restart: a replica that voted in a
 * term does not vote for someone else in it after restarting. */
TEST(vote_survives_restart) {
    net_init(&net, 3, 3);
    net_isolate(&net, 3, true);
    net_elect(&net, 1);
    uint64_t term = raft_term(net.r[2]);
    CHECK_EQ_U64(net.store[2].hard.vote, 1);
    CHECK_EQ_U64(net.store[2].hard.term, term);
    net_crash(&net, 2);
    net_start(&net, 2, 3);
    CHECK_EQ_U64(raft_term(net.r[2]), term);
    /* A vote request from 3 for the same term must be refused. */
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = term,
                         .log_term = 9, .index = 99};
    CHECK(raft_step(net.r[2], &m) == RAFT_OK);
    struct raft_ready rd;
    raft_ready(net.r[2], &rd);
    bool granted = false;
    for (uint32_t i = 0; i < rd.n_messages; i++) {
        if (rd.messages[i].type == RAFT_MSG_VOTE_RESP && !rd.messages[i].reject) granted = true;
    }
    raft_advance(net.r[2]);
    CHECK(!granted);
    net_free(&net);
}

/* §3.4, §4: a candidate counts the votes of its configuration's voters, each
 * once: a grant from a replica outside the configuration (a member removed
 * since the request, or a stray peer) is ignored, and a voter's first
 * answer stands against a late duplicate. */
TEST(a_candidate_counts_each_voter_once_and_no_stranger) {
    net_init(&net, 5, 5);
    net.cfg.pre_vote = false;
    for (int id = 1; id <= 5; id++) {
        net_crash(&net, id);
        net_start(&net, id, 5);
    }
    net_flush(&net);
    for (int id = 2; id <= 5; id++) net_isolate(&net, id, true);
    raft_campaign(net.r[1]);
    net_flush(&net);
    net_drop_all(&net);
    CHECK(raft_role(net.r[1]) == RAFT_CANDIDATE);
    uint64_t term = raft_term(net.r[1]);
    struct raft_msg grant = {.type = RAFT_MSG_VOTE_RESP, .from = 7, .to = 1, .term = term};
    CHECK(raft_step(net.r[1], &grant) == RAFT_OK); /* 7 is not a member */
    net_flush(&net);
    CHECK(raft_role(net.r[1]) == RAFT_CANDIDATE);
    struct raft_msg no = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = term,
                          .reject = true};
    CHECK(raft_step(net.r[1], &no) == RAFT_OK);
    net_flush(&net);
    grant.from = 3;
    CHECK(raft_step(net.r[1], &grant) == RAFT_OK);
    net_flush(&net);
    grant.from = 2; /* a duplicate that contradicts 2's answer */
    CHECK(raft_step(net.r[1], &grant) == RAFT_OK);
    net_flush(&net);
    CHECK(raft_role(net.r[1]) == RAFT_CANDIDATE); /* 1 and 3 of 5 */
    grant.from = 4;
    CHECK(raft_step(net.r[1], &grant) == RAFT_OK);
    net_flush(&net);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    net_free(&net);
}

/* Bad input is refused with a named error and changes nothing. */
TEST(bad_input_is_refused) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    uint64_t term = raft_term(net.r[2]);
    struct raft_msg wrong_to = {.type = RAFT_MSG_APPEND, .from = 1, .to = 3, .term = term};
    CHECK(raft_step(net.r[2], &wrong_to) == RAFT_EINVAL);
    struct raft_msg bad_type = {.type = 77, .from = 1, .to = 2, .term = term};
    CHECK(raft_step(net.r[2], &bad_type) == RAFT_EINVAL);
    struct raft_msg past_types = {.type = RAFT_MSG_TYPE_COUNT, .from = 1, .to = 2,
                                  .term = term + 3};
    CHECK(raft_step(net.r[2], &past_types) == RAFT_EINVAL);
    CHECK_EQ_U64(raft_term(net.r[2]), term); /* its term moves nothing */
    struct raft_entry no_data = {.term = term, .index = 3, .len = 4, .data = NULL};
    struct raft_msg hollow = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = term,
                              .index = 2, .log_term = term, .n_entries = 1, .entries = &no_data};
    CHECK(raft_step(net.r[2], &hollow) == RAFT_EINVAL);
    /* a previous entry past our log, named with term 0, matches nothing
     * (0d72c96a6851 took it as a match and appended past the end) */
    struct raft_entry beyond = {.term = term, .index = 8};
    struct raft_msg far = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = term,
                           .index = 7, .log_term = 0, .n_entries = 1, .entries = &beyond};
    CHECK(raft_step(net.r[2], &far) == RAFT_OK);
    CHECK_EQ_U64(raft_last_index(net.r[2]), 2);
    struct raft_entry falling[2] = {{.term = term, .index = 3}, {.term = term - 1, .index = 4}};
    struct raft_msg backwards = hollow;
    backwards.n_entries = 2;
    backwards.entries = falling; /* terms must not decrease (d307518c97e8) */
    CHECK(raft_step(net.r[2], &backwards) == RAFT_EINVAL);
    struct raft_entry gap = {.term = term, .index = 9, .len = 0};
    struct raft_msg gapped = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = term,
                              .index = 2, .log_term = term, .n_entries = 1, .entries = &gap};
    CHECK(raft_step(net.r[2], &gapped) == RAFT_EINVAL);
    struct raft_entry future = {.term = term + 5, .index = 3, .len = 0};
    struct raft_msg from_future = gapped;
    from_future.entries = &future;
    CHECK(raft_step(net.r[2], &from_future) == RAFT_EINVAL);
    CHECK_EQ_U64(raft_last_index(net.r[2]), 2);
    uint64_t index;
    CHECK(raft_propose(net.r[1], (const uint8_t *)"", 0, &index, NULL) == RAFT_EINVAL);
    static uint8_t big[4 * 1024 * 1024 + 1];
    CHECK(raft_propose(net.r[1], big, sizeof(big), &index, NULL) == RAFT_ETOOBIG);
    struct raft_conf empty = {0};
    CHECK(raft_propose_conf(net.r[1], &empty) == RAFT_EINVAL);
    const uint64_t v12[] = {1, 2};
    const uint64_t l3[] = {3};
    struct raft_conf demote = conf_of(v12, 2, l3, 1);
    CHECK(raft_propose_conf(net.r[1], &demote) == RAFT_EINVAL);
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 0;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, NULL) == NULL);
    cfg.id = 1;
    cfg.heartbeat_ticks = cfg.election_ticks;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, NULL) == NULL);
    CHECK(raft_strerror(RAFT_ENOTLEADER) != NULL);
    net_free(&net);
}

/* ---- quiet groups (raft_quiesce, raft_wake; docs/raft.md) ---- */

static uint64_t sent_total(const struct net *n) {
    uint64_t total = 0;
    for (int t = 0; t < RAFT_MSG_TYPE_COUNT; t++) total += n->sent[t];
    return total;
}

/* Three replicas, 1 leads, two entries committed and applied everywhere,
 * then the leader quiesces and every follower agrees. */
static bool quiet__scene(void) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    bool ok = net_propose(&net, 1, "a") > 0 && net_propose(&net, 1, "b") > 0;
    net_settle(&net);
    net_tick_all(&net, 2); /* heartbeats carry the final commit index */
    ok = ok && raft_quiesce(net.r[1]);
    net_settle(&net);
    for (int id = 1; id <= 3; id++) ok = ok && raft_is_quiet(net.r[id]);
    return ok;
}

/* A quiet group sends nothing and elects nobody however long it is idle;
 * a proposal wakes the leader, its messages wake the followers, and the
 * entry commits everywhere. */
TEST(quiet_group_stops_its_timers_until_a_proposal_wakes_it) {
    CHECK(quiet__scene());
    uint64_t sent = sent_total(&net);
    uint64_t term = raft_term(net.r[1]);
    net_tick_all(&net, 10 * (int)net.cfg.election_ticks);
    CHECK_EQ_U64(sent_total(&net), sent);
    CHECK_EQ_U64(raft_term(net.r[2]), term);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    int index = net_propose(&net, 1, "c");
    CHECK(index > 0);
    CHECK(!raft_is_quiet(net.r[1]));
    net_settle(&net);
    net_tick_all(&net, 2);
    for (int id = 1; id <= 3; id++) {
        CHECK(!raft_is_quiet(net.r[id]));
        CHECK_EQ_U64(net.applied_to[id], (uint64_t)index);
    }
    /* idle again: it may go quiet again */
    CHECK(raft_quiesce(net.r[1]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Only a leader with nothing pending goes quiet. */
TEST(quiesce_is_refused_while_anything_is_pending) {
    net_init(&net, 3, 3);
    net_flush(&net);
    CHECK(!raft_quiesce(net.r[2])); /* a follower */
    raft_campaign(net.r[1]);
    net_flush(&net);
    while (raft_role(net.r[1]) != RAFT_LEADER && net.n_queue > 0) net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(!raft_quiesce(net.r[1])); /* its no-op is not committed */
    net_settle(&net);
    net_tick_all(&net, 2);
    /* a follower heard from lately lacks an entry */
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "x") > 0);
    net_settle(&net);
    CHECK(!raft_quiesce(net.r[1]));
    net_heal(&net);
    net_tick_all(&net, 2);
    /* a read waits for its round */
    CHECK(raft_read_index(net.r[1], 5) == RAFT_OK);
    CHECK(!raft_quiesce(net.r[1]));
    net_flush_one(&net, 1); /* its round is sent, not yet answered */
    CHECK(!raft_quiesce(net.r[1])); /* answers would be dropped (27a875bdbd29) */
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    /* a leadership transfer */
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "y") > 0);
    net_settle(&net);
    CHECK(raft_transfer_leader(net.r[1], 3) == RAFT_OK);
    net_heal(&net);
    CHECK(!raft_quiesce(net.r[1]));
    net_free(&net);
    /* no follower heard from in this election timeout: the leader alone is
     * no quorum holding the log (da659c2c6284) */
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_tick_all(&net, 2);
    net_isolate(&net, 1, true);
    for (uint32_t t = 0; t < net.cfg.election_ticks; t++) net_tick(&net, 1); /* one window */
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(!raft_quiesce(net.r[1]));
    net_free(&net);
    /* a pipelined leader's entry committed by its followers, applied, not
     * yet durable on the leader itself (e7c395af3790) */
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_tick_all(&net, 2);
    uint64_t index = 0, term = 0;
    CHECK(raft_propose(net.r[1], (const uint8_t *)"z", 1, &index, &term) == RAFT_OK);
    settle_unsynced(1);
    CHECK_EQ_U64(raft_applied_index(net.r[1]), index);
    CHECK(raft_durable_index(net.r[1]) < index);
    CHECK(!raft_quiesce(net.r[1]));
    raft_persisted(net.r[1], index, term);
    CHECK(raft_quiesce(net.r[1]));
    net_free(&net);
    /* lease reads: a frozen clock would stretch a lease, never quiet */
    lease__elect_1();
    net_tick_all(&net, 2);
    CHECK(!raft_quiesce(net.r[1]));
    net_free(&net);
}

/* A follower that was silent when the leader quiesced, and lacks entries,
 * answers the QUIESCE: the answer wakes the leader, whose heartbeats bring
 * it up to date. */
TEST(a_lagging_follower_answers_quiesce_and_wakes_the_leader) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "a") > 0);
    net_settle(&net);
    /* one election timeout: 3 is no longer counted active */
    for (int t = 0; t < (int)net.cfg.election_ticks; t++) {
        raft_tick(net.r[1]);
        raft_tick(net.r[2]);
        net_settle(&net);
    }
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(raft_quiesce(net.r[1]));
    net_heal(&net);
    net_settle(&net);
    CHECK(!raft_is_quiet(net.r[1]));
    CHECK(!raft_is_quiet(net.r[3]));
    net_tick_all(&net, 2);
    CHECK(logs_match(&net, 1, 3));
    CHECK_EQ_U64(raft_commit_index(net.r[3]), raft_commit_index(net.r[1]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* An answer to the leader's last heartbeat that arrives after the leader
 * went quiet (a long turn of a node hosting many groups) does not wake it:
 * with 10,000 groups a node, such answers kept every group awake. */
TEST(a_late_heartbeat_answer_does_not_wake_a_quiet_leader) {
    CHECK(quiet__scene());
    uint64_t term = raft_term(net.r[1]);
    raft_wake(net.r[1]);
    net_settle(&net); /* the followers answer the wake: a quorum is heard */
    for (int t = 0; t < (int)net.cfg.heartbeat_ticks; t++) raft_tick(net.r[1]);
    net_flush(&net); /* the next round of heartbeats goes out */
    size_t heartbeats = net.n_queue;
    CHECK(heartbeats == 2);
    for (size_t k = 0; k < heartbeats; k++) net_deliver_at(&net, 0);
    /* the followers' answers wait in the queue while the leader quiesces */
    CHECK(net.n_queue == 2);
    CHECK(net.queue[0].m.type == RAFT_MSG_HEARTBEAT_RESP);
    CHECK(raft_quiesce(net.r[1]));
    net_settle(&net);
    for (int id = 1; id <= 3; id++) CHECK(raft_is_quiet(net.r[id]));
    uint64_t sent = sent_total(&net);
    net_tick_all(&net, 10 * (int)net.cfg.election_ticks);
    CHECK_EQ_U64(sent_total(&net), sent);
    CHECK_EQ_U64(raft_term(net.r[2]), term);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* A quiet leader whose followers died, woken by the caller's failure
 * detector, does not go quiet again on what they said before it slept: a
 * member counts as active once it answers after the wake, so the leader
 * cannot quiesce without a quorum, and check-quorum steps it down at the
 * end of its window, two election timeouts after the wake (not one: a
 * node waking thousands of groups may answer late). docs/node.md, "Quiet
 * groups"; canary QUIET_WAKE_TRUSTS_OLD. */
TEST(a_woken_quiet_leader_without_a_quorum_steps_down) {
    CHECK(quiet__scene());
    net_crash(&net, 2);
    net_crash(&net, 3);
    net_tick_all(&net, 10 * (int)net.cfg.election_ticks);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER); /* quiet: nothing runs */
    raft_wake(net.r[1]);
    int window = 2 * (int)net.cfg.election_ticks;
    int ticks = 0;
    while (ticks < window && raft_role(net.r[1]) == RAFT_LEADER) {
        CHECK(!raft_quiesce(net.r[1]));
        net_tick(&net, 1);
        ticks++;
    }
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    CHECK_EQ_U64(raft_leader(net.r[1]), 0);
    CHECK_EQ_U64((uint64_t)ticks, (uint64_t)window);
    CHECK(!raft_is_quiet(net.r[1])); /* a follower now: its election timer runs */
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Liveness rests on the caller's failure detector: quiet followers of a
 * dead leader elect nobody until raft_wake(); then their election timers
 * run as before and one of them leads. */
TEST(quiet_followers_of_a_dead_leader_elect_once_woken) {
    CHECK(quiet__scene());
    net_crash(&net, 1);
    net_tick_all(&net, 10 * (int)net.cfg.election_ticks);
    CHECK_EQ_U64(net_leader(&net), 0);
    raft_wake(net.r[2]);
    raft_wake(net.r[3]);
    net_tick_all(&net, 4 * (int)net.cfg.election_ticks);
    int leader = net_leader(&net);
    CHECK(leader == 2 || leader == 3);
    CHECK(net_propose(&net, leader, "after") > 0);
    net_settle(&net);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Reads stay linearizable: a read on a quiet leader wakes it and waits
 * for a heartbeat round; a quiet leader deposed while cut off wakes on the
 * read, never confirms it, and steps down by check-quorum. */
TEST(a_read_on_a_quiet_leader_needs_a_quorum_round) {
    CHECK(quiet__scene());
    uint64_t heartbeats = net.sent[RAFT_MSG_HEARTBEAT];
    CHECK(raft_read_index(net.r[1], 42) == RAFT_OK);
    net_settle(&net);
    CHECK(net.sent[RAFT_MSG_HEARTBEAT] > heartbeats);
    CHECK_EQ_U64(net.n_reads[1], 1);
    CHECK_EQ_U64(net.reads[1][0].context, 42);
    CHECK(raft_quiesce(net.r[1]));
    net_settle(&net);
    net_isolate(&net, 1, true);
    raft_wake(net.r[2]); /* their failure detector lost the leader */
    raft_wake(net.r[3]);
    net_tick_all(&net, 4 * (int)net.cfg.election_ticks);
    int leader = net_leader(&net);
    CHECK(leader == 2 || leader == 3);
    CHECK(net_propose(&net, leader, "new") > 0);
    net_settle(&net);
    /* 1 never ticked meanwhile (quiet): it still thinks it leads */
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(raft_read_index(net.r[1], 43) == RAFT_OK);
    CHECK(!raft_is_quiet(net.r[1]));
    for (int t = 0; t < 3 * (int)net.cfg.election_ticks; t++) net_tick(&net, 1);
    CHECK_EQ_U64(net.n_reads[1], 1); /* 43 never confirmed */
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* ---- fifth triage of tests/mutants (docs/raft.md, "Mutation testing") ---- */

/* Only a configuration entry committed and not yet applied blocks a
 * campaign (a_committed_unapplied_configuration_blocks_campaigning):
 * ordinary entries a slow host has not applied yet do not, or a follower
 * whose host lags behind could never replace a dead leader. Nor do they
 * make a configuration change wait: only an unapplied configuration entry
 * does. (tests/mutants: cbd7803e81f9, 91ce221d0f08) */
TEST(unapplied_ordinary_entries_block_neither_campaigns_nor_changes) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_settle(&net);
    int k = net_propose(&net, 1, "ordinary");
    CHECK(k > 0);
    /* S2 stores the entry; everything else flows until the leader commits it. */
    for (int guard = 0; guard < 1000 && raft_commit_index(net.r[1]) < (uint64_t)k; guard++) {
        size_t i = 0;
        while (i < net.n_queue && net.queue[i].m.to == 2 && net.queue[i].m.n_entries == 0) i++;
        CHECK(i < net.n_queue);
        net_deliver_at(&net, i);
    }
    CHECK_EQ_U64(raft_commit_index(net.r[1]), (uint64_t)k);
    for (size_t i = 0; i < net.n_queue; i++) {
        if (net.queue[i].m.to == 2) CHECK(raft_step(net.r[2], &net.queue[i].m) == RAFT_OK);
    }
    net_drop_all(&net);
    CHECK_EQ_U64(raft_commit_index(net.r[2]), (uint64_t)k);
    CHECK(raft_applied_index(net.r[2]) < (uint64_t)k);
    for (uint32_t t = 0; t < 3 * net.cfg.election_ticks; t++) raft_tick(net.r[2]);
    CHECK(raft_role(net.r[2]) != RAFT_FOLLOWER); /* it campaigns */
    net_free(&net);
    /* A leader with an ordinary entry not yet committed may change the
     * configuration. */
    net_init(&net, 4, 3);
    net_elect(&net, 1);
    net_settle(&net);
    CHECK(net_propose(&net, 1, "ordinary") > 0);
    CHECK(raft_applied_index(net.r[1]) < raft_last_index(net.r[1]));
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add4 = conf_of(v123, 3, l4, 1);
    CHECK(raft_propose_conf(net.r[1], &add4) == RAFT_OK);
    net_settle(&net);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* The configuration entry the leader appended last. */
static bool last_conf(struct raft_conf *c) {
    const struct raft_entry *e = raft_entry_at(net.r[1], raft_last_index(net.r[1]));
    return e != NULL && e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, c) == RAFT_OK;
}

/* §4.3: a change of voters goes through the joint configuration (replacing
 * one voter by another too, though the count stays); a change of learners
 * alone does not (a joint entry and its leave would be two rounds for
 * nothing). Only the first n_learners learners of the target are read, and
 * a target whose joint configuration would have more than RAFT_NODES_MAX
 * members is refused with RAFT_ETOOBIG. (tests/mutants: 4c857d5083fa,
 * b6f67c081e75, dc9cc8410164, ae2048599617, 93a1bca75202) */
TEST(which_configuration_changes_go_through_the_joint_configuration) {
    net_init(&net, 4, 3);
    net_elect(&net, 1);
    net_settle(&net);
    struct raft_conf big = {0};
    for (uint64_t id = 4; id < 4 + 14; id++) big.voters[big.n_voters++] = id;
    CHECK(raft_propose_conf(net.r[1], &big) == RAFT_ETOOBIG); /* 14 new + 3 outgoing */
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add4 = conf_of(v123, 3, l4, 1);
    add4.learners[1] = 2; /* past n_learners: not read (2 is a voter) */
    CHECK(raft_propose_conf(net.r[1], &add4) == RAFT_OK);
    struct raft_conf c;
    CHECK(last_conf(&c));
    CHECK_EQ_U64(c.n_outgoing, 0);
    CHECK_EQ_U64(c.n_learners, 1);
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_learners, 1);
    const uint64_t v124[] = {1, 2, 4};
    struct raft_conf swap = conf_of(v124, 3, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &swap) == RAFT_OK);
    CHECK(last_conf(&c));
    CHECK_EQ_U64(c.n_outgoing, 3);
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK(raft_is_voter(net.r[1], 4));
    CHECK(!raft_is_voter(net.r[1], 3));
    CHECK_EQ_U64(raft_conf(net.r[1])->n_outgoing, 0);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* Five voters and 6, caught up as a learner; 1 leads. */
static void handover__scene(void) {
    net_init(&net, 6, 5);
    net_elect(&net, 1);
    net_settle(&net);
    const uint64_t v12345[] = {1, 2, 3, 4, 5};
    const uint64_t l6[] = {6};
    struct raft_conf add6 = conf_of(v12345, 5, l6, 1);
    int rc = raft_propose_conf(net.r[1], &add6);
    assert(rc == RAFT_OK);
    (void)rc;
    net_settle(&net);
    net_tick_all(&net, 3);
}

/* §4.2.2 with §3.10: a leader that removed itself hands over: once it
 * applies the configuration without it, it tells the most caught-up voter
 * to campaign at once (TimeoutNow), if that one holds its whole log, and
 * steps down; the group has a leader again without waiting for an election
 * timeout. A learner is never told (it cannot campaign), and when no voter
 * holds the whole log nobody is (it would lose the election anyway).
 * (tests/mutants: b12908920902, 615a07d5ae4f, 47eb987666b8, 7b81bbacc491,
 * 55060afacc3c, 9503d6324835, 3c401d34adff) */
TEST(a_removed_leader_hands_over_to_a_voter_holding_its_log) {
    handover__scene();
    net_isolate(&net, 5, true); /* 5 lags; 2, 3, 4 hold everything */
    const uint64_t v2345[] = {2, 3, 4, 5};
    const uint64_t l6[] = {6};
    struct raft_conf without1 = conf_of(v2345, 4, l6, 1);
    uint64_t timeouts = net.sent[RAFT_MSG_TIMEOUT_NOW];
    CHECK(raft_propose_conf(net.r[1], &without1) == RAFT_OK);
    net_settle(&net); /* no tick: no election timer runs out */
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    CHECK_EQ_U64(net.sent[RAFT_MSG_TIMEOUT_NOW] - timeouts, 1);
    int leader = net_leader(&net);
    CHECK(leader >= 2 && leader <= 4);
    CHECK(!net.safety_violated);
    net_free(&net);
    /* The leader's last entry reached only the learner: no voter holds
     * its whole log when it applies its removal. */
    handover__scene();
    CHECK(raft_propose_conf(net.r[1], &without1) == RAFT_OK);
    uint64_t joint = raft_last_index(net.r[1]);
    net_flush(&net);
    while (raft_last_index(net.r[1]) == joint && net.n_queue > 0) net_deliver_at(&net, 0);
    CHECK_EQ_U64(raft_last_index(net.r[1]), joint + 1); /* the leave entry */
    int x = net_propose(&net, 1, "x");
    CHECK(x > 0);
    for (size_t i = 0; i < net.n_queue;) {
        const struct raft_msg *m = &net.queue[i].m;
        bool drop = m->type == RAFT_MSG_APPEND && m->to != 6 && m->n_entries > 0 &&
                    m->entries[m->n_entries - 1].index == (uint64_t)x;
        if (!drop) {
            i++;
            continue;
        }
        net__free_msg(&net.queue[i]);
        memmove(&net.queue[i], &net.queue[i + 1], (net.n_queue - i - 1) * sizeof(net.queue[0]));
        net.n_queue--;
    }
    timeouts = net.sent[RAFT_MSG_TIMEOUT_NOW];
    for (int guard = 0; guard < 1000; guard++) { /* the learner acknowledges x first */
        size_t i = 0;
        while (i < net.n_queue && net.queue[i].m.to != 6 && net.queue[i].m.from != 6) i++;
        if (i == net.n_queue) break;
        net_deliver_at(&net, i);
    }
    uint64_t match6 = 0;
    CHECK(raft_match_index(net.r[1], 6, &match6));
    CHECK_EQ_U64(match6, (uint64_t)x);
    net_settle(&net);
    CHECK(raft_role(net.r[1]) != RAFT_LEADER);
    CHECK(!raft_is_voter(net.r[1], 1));
    CHECK_EQ_U64(net.sent[RAFT_MSG_TIMEOUT_NOW], timeouts);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* docs/raft.md: snapshot chunks unanswered for half an election timeout
 * (election_ticks / 2 + 1 ticks) are sent again from the last acknowledged
 * offset: not sooner (they may still be in flight), not later. A member
 * removed while it was being sent a snapshot is sent nothing more.
 * (tests/mutants: a68ae27a7678, 7a24acc5391f, 11528e80d090, 36dadbbac315) */
TEST(a_lost_snapshot_is_resent_after_half_an_election_timeout) {
    snapshot_scene(NULL, NULL, NULL);
    static uint8_t image[3000];
    memset(image, 's', sizeof(image));
    CHECK(raft_compact(net.r[1], raft_applied_index(net.r[1]), image, sizeof(image)) == RAFT_OK);
    net_isolate(&net, 3, false);
    raft_tick(net.r[1]); /* a heartbeat: 3 answers, the leader starts the snapshot */
    net_flush(&net);
    uint64_t chunks = net.sent[RAFT_MSG_SNAPSHOT];
    for (int guard = 0; guard < 100 && net.sent[RAFT_MSG_SNAPSHOT] == chunks; guard++) {
        CHECK(net.n_queue > 0);
        net_deliver_at(&net, 0);
    }
    CHECK_EQ_U64(net.sent[RAFT_MSG_SNAPSHOT] - chunks, 3);
    net_isolate(&net, 3, true); /* the chunks are lost */
    net_drop_all(&net);
    chunks = net.sent[RAFT_MSG_SNAPSHOT];
    uint32_t ticks = 0;
    while (ticks < 3 * net.cfg.election_ticks && net.sent[RAFT_MSG_SNAPSHOT] == chunks) {
        net_tick(&net, 1);
        ticks++;
    }
    CHECK_EQ_U64(ticks, net.cfg.election_ticks / 2 + 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    /* a snapshot still to send keeps the group awake, even to a member not
     * heard from in this election timeout (a456aa5d0127) */
    for (uint32_t t = 0; t < net.cfg.election_ticks; t++) net_tick(&net, 1);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(!raft_quiesce(net.r[1]));
    /* 3 is removed: nothing more is sent to it. */
    const uint64_t v12[] = {1, 2};
    struct raft_conf without3 = conf_of(v12, 2, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &without3) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_voters, 2);
    CHECK_EQ_U64(raft_conf(net.r[1])->n_outgoing, 0);
    chunks = net.sent[RAFT_MSG_SNAPSHOT];
    for (uint32_t t = 0; t < 3 * net.cfg.election_ticks; t++) net_tick(&net, 1);
    CHECK_EQ_U64(net.sent[RAFT_MSG_SNAPSHOT], chunks);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* raft.h: a ready carries the hard state whenever term, vote or commit
 * changed, each alone. A commit index that moved alone is persisted by the
 * ready that moved it; so is a term learned from a message that needs no
 * answer (a late answer from a newer term), and a vote granted in a term
 * the replica already knew: both survive a restart. (tests/mutants:
 * c145bebfb6d1, 5209b6adf31e, a621568fc5f8) */
TEST(term_vote_and_commit_are_persisted_when_they_change_alone) {
    net_init(&net, 3, 3);
    net_isolate(&net, 3, true);
    net_elect(&net, 1);
    net_isolate(&net, 3, false);
    net_tick_all(&net, 2); /* 3 learns the term from a heartbeat: no vote in it */
    int k = net_propose(&net, 1, "x");
    CHECK(k > 0);
    for (int guard = 0; guard < 100 && raft_commit_index(net.r[1]) < (uint64_t)k; guard++) {
        CHECK(net.n_queue > 0);
        net_deliver_at(&net, 0);
    }
    CHECK_EQ_U64(raft_commit_index(net.r[1]), (uint64_t)k);
    CHECK_EQ_U64(net.store[1].hard.commit, (uint64_t)k); /* the ready that moved it, alone */
    net_settle(&net);
    net_tick_all(&net, 2);
    for (int id = 1; id <= 3; id++) {
        CHECK_EQ_U64(raft_commit_index(net.r[id]), (uint64_t)k);
        CHECK_EQ_U64(net.store[id].hard.commit, (uint64_t)k);
    }
    uint64_t term = raft_term(net.r[3]);
    CHECK_EQ_U64(net.store[3].hard.vote, 0);
    struct raft_msg late = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 3, .term = term + 1};
    CHECK(raft_step(net.r[3], &late) == RAFT_OK);
    CHECK_EQ_U64(raft_term(net.r[3]), term + 1);
    CHECK(raft_has_ready(net.r[3]));
    net_flush_one(&net, 3);
    CHECK_EQ_U64(net.store[3].hard.term, term + 1);
    net_crash(&net, 3);
    net_start(&net, 3, 3);
    CHECK_EQ_U64(raft_term(net.r[3]), term + 1);
    /* now a vote alone: 3 knows the term, has no leader and no vote in it */
    struct raft_msg ask = {.type = RAFT_MSG_VOTE, .from = 2, .to = 3, .term = term + 1,
                           .index = 99, .log_term = term + 1};
    CHECK(raft_step(net.r[3], &ask) == RAFT_OK);
    net_flush_one(&net, 3);
    CHECK_EQ_U64(net.store[3].hard.vote, 2);
    net_crash(&net, 3);
    net_start(&net, 3, 3);
    CHECK_EQ_U64(raft_term(net.r[3]), term + 1);
    ask.from = 1;
    CHECK(raft_step(net.r[3], &ask) == RAFT_OK); /* a second candidate is refused */
    struct raft_ready rd;
    raft_ready(net.r[3], &rd);
    CHECK_EQ_U64(rd.n_messages, 1);
    CHECK(rd.messages[0].type == RAFT_MSG_VOTE_RESP && rd.messages[0].reject);
    raft_advance(net.r[3]);
    net_drop_all(&net);
    net_free(&net);
}

/* raft_persisted(index, term) makes durable the log up to index and no
 * further: a pipelined leader with two writes in flight counts the first
 * alone when it alone is reported; a report past what was handed out
 * counts what was handed out. (tests/mutants: 0b166954e9de, 2dbae667c86b) */
TEST(persisted_counts_up_to_the_reported_index_only) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_settle(&net);
    struct raft *l = net.r[1];
    uint64_t before = raft_durable_index(l);
    uint64_t a = 0, b = 0, c = 0, term = 0;
    CHECK(raft_propose(l, (const uint8_t *)"p1", 2, &a, &term) == RAFT_OK);
    flush_unsynced(1);
    CHECK(raft_propose(l, (const uint8_t *)"p2", 2, &b, &term) == RAFT_OK);
    flush_unsynced(1);
    CHECK_EQ_U64(raft_durable_index(l), before);
    raft_persisted(l, a, term);
    CHECK_EQ_U64(raft_durable_index(l), a);
    CHECK(raft_propose(l, (const uint8_t *)"p3", 2, &c, &term) == RAFT_OK); /* not handed out */
    raft_persisted(l, c, term);
    CHECK_EQ_U64(raft_durable_index(l), b);
    net_settle(&net);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* raft.h: at most RAFT_READS_MAX confirmed reads wait for the next ready.
 * A group of one whose reads waited for its no-op, and whose next ready
 * is already full of reads served at once, serves the waiting ones in the
 * ready after (they must not wait for a round that no follower will ever
 * answer). (tests/mutants: 527b841f7b3b) */
TEST(reads_confirmed_while_the_ready_is_full_are_served_in_the_next) {
    net_init(&net, 1, 1);
    net_flush(&net);
    raft_campaign(net.r[1]);
    struct raft *l = net.r[1];
    CHECK(raft_role(l) == RAFT_LEADER);
    uint64_t noop = raft_last_index(l);
    for (uint64_t i = 0; i < 10; i++) CHECK(raft_read_index(l, 100000 + i) == RAFT_OK);
    struct raft_ready rd;
    raft_ready(l, &rd); /* the no-op is written; advancing commits it */
    net__persist(&net, 1, &rd);
    net__apply(&net, 1, &rd);
    raft_advance(l);
    CHECK_EQ_U64(raft_commit_index(l), noop);
    CHECK_EQ_U64(net.reads_total[1], 0);
    uint64_t served_now = 0;
    while (raft_read_index(l, served_now) == RAFT_OK) served_now++;
    CHECK_EQ_U64(served_now, RAFT_READS_MAX);
    /* no tick: the full ready itself asks for the round that serves the
     * rest (e1b14d913ae7, e9405a8a950b waited for the next tick) */
    net_flush(&net);
    CHECK_EQ_U64(net.reads_total[1], RAFT_READS_MAX + 10);
    for (int t = 0; t < 3; t++) net_tick(&net, 1);
    CHECK_EQ_U64(net.reads_total[1], RAFT_READS_MAX + 10);
    net_free(&net);
}

/* raft.h: a ready's messages stay valid until raft_advance(), whatever the
 * host does in between: an append built for a lagging follower carries its
 * own copy of the entries, so a compaction and a tick that free the log's
 * memory before the host takes the ready do not change what is sent (the
 * freed memory is written over here, as the allocator would). The follower
 * applies exactly the leader's bytes. (tests/mutants: 86c45bfcdd94) */
TEST(an_append_keeps_its_entries_when_the_log_is_compacted_before_the_ready) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    char cmd[64];
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof(cmd), "entry-%d-0123456789abcdefghijklmnopqrstuv", i);
        CHECK(net_propose(&net, 1, cmd) > 0);
    }
    net_settle(&net);
    uint64_t applied = raft_applied_index(net.r[1]);
    CHECK(raft_last_index(net.r[3]) < applied);
    net_isolate(&net, 3, false);
    raft_tick(net.r[1]); /* a heartbeat; 3 answers */
    net_flush(&net);
    /* up to 3's refusal of the leader's guess (its end) */
    for (int guard = 0; guard < 20 && net.n_queue > 0; guard++) {
        const struct raft_msg *m = &net.queue[0].m;
        if (m->type == RAFT_MSG_APPEND_RESP && m->from == 3 && m->reject) break;
        net_deliver_at(&net, 0);
    }
    CHECK(net.n_queue > 0 && net.queue[0].m.reject);
    net__deliver(&net, 0, false); /* the leader builds the append for 3, not yet taken */
    CHECK(raft_compact(net.r[1], applied, (const uint8_t *)"img", 3) == RAFT_OK);
    raft_tick(net.r[1]); /* frees the log's released memory */
    static void *scribble[64];
    for (int i = 0; i < 64; i++) { /* slabs start at RAFT_LOG_SLAB_BYTES_MIN */
        size_t size = sizeof(struct raft_log_slab) + RAFT_LOG_SLAB_BYTES_MIN + (size_t)(i % 4) * 16;
        scribble[i] = malloc(size);
        CHECK(scribble[i] != NULL);
        memset(scribble[i], 0xee, size);
    }
    for (int i = 0; i < 64; i++) free(scribble[i]);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK(net.applied_to[3] >= applied);
    for (uint64_t i = 1; i <= applied; i++) {
        const struct net_applied *a = &net.applied[1][i];
        const struct net_applied *b = &net.applied[3][i];
        if (b->term == 0 || a->term == 0) continue;
        CHECK_EQ_U64(a->len, b->len);
        CHECK(memcmp(a->data, b->data, a->len < sizeof(a->data) ? a->len : sizeof(a->data)) == 0);
    }
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* raft_log.h: past RAFT_LOG_MAP_BYTES the entries' array is a mapping that
 * grows without a copy and, once compaction has emptied it, is trimmed back
 * in steps by raft_log_release(); every entry reads back unchanged through
 * the growth, the compaction and the trimming. */
TEST(a_long_log_grows_mapped_and_is_trimmed_after_compaction) {
    struct raft_log log;
    raft_log_init(&log, 0, 0);
    const uint64_t n = 600000; /* 19 MB of entries: mapped from 4 MB on */
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t v = i * 2654435761u;
        struct raft_entry e = {.term = 1 + i / 100000, .index = i, .type = RAFT_ENTRY_NORMAL,
                               .len = sizeof(v), .data = (uint8_t *)&v};
        CHECK(raft_log_append(&log, &e) == RAFT_OK);
    }
    CHECK(log.mapped);
    CHECK(log.capacity >= n);
    for (uint64_t i = 1; i <= n; i += 997) {
        const struct raft_entry *e = raft_log_entry(&log, i);
        uint64_t v;
        CHECK(e != NULL && e->index == i && e->len == sizeof(v));
        memcpy(&v, e->data, sizeof(v));
        CHECK_EQ_U64(v, i * 2654435761u);
    }
    log.stable = log.durable = log.committed = log.applied = n;
    uint64_t keep_from = n - 1000;
    raft_log_compact(&log, keep_from, raft_log_term(&log, keep_from));
    uint64_t before = log.capacity;
    int calls = 0;
    while (raft_log_release(&log, RAFT_LOG_RELEASE_SLABS) && calls < 10000) calls++;
    CHECK(calls < 10000);
    CHECK(log.capacity < before);
    CHECK(log.capacity * sizeof(struct raft_entry) <
          RAFT_LOG_MAP_BYTES + RAFT_LOG_TRIM_BYTES); /* back to its floor */
    CHECK_EQ_U64(raft_log_last_index(&log), n);
    for (uint64_t i = keep_from + 1; i <= n; i++) {
        const struct raft_entry *e = raft_log_entry(&log, i);
        uint64_t v;
        CHECK(e != NULL && e->index == i);
        memcpy(&v, e->data, sizeof(v));
        CHECK_EQ_U64(v, i * 2654435761u);
    }
    for (uint64_t i = n + 1; i <= n + 300000; i++) { /* grows again */
        uint64_t v = i;
        struct raft_entry e = {.term = 9, .index = i, .type = RAFT_ENTRY_NORMAL,
                               .len = sizeof(v), .data = (uint8_t *)&v};
        CHECK(raft_log_append(&log, &e) == RAFT_OK);
    }
    CHECK_EQ_U64(raft_log_term(&log, n + 300000), 9);
    CHECK_EQ_U64(raft_log_term(&log, n), 1 + n / 100000);
    raft_log_free(&log);
}

/* A group of RAFT_NODES_MAX members (the progress table full): a term change
 * resets every member's progress and the election timer; the follower then
 * waits out its timeout before it campaigns. (A reset one slot past the
 * table writes over the fields after it: the randomized timeout among them.) */
TEST(a_full_group_keeps_its_election_timer_through_a_term_change) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.seed = 7;
    struct raft_conf conf = {0};
    for (uint64_t v = 1; v <= RAFT_NODES_MAX; v++) conf.voters[conf.n_voters++] = v;
    struct raft *r = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &conf);
    CHECK(r != NULL);
    struct raft_ready rd;
    raft_ready(r, &rd); /* the bootstrap configuration, applied */
    CHECK_EQ_U64(rd.n_committed, 1);
    raft_advance(r);
    struct raft_msg hb = {.type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 5, .commit = 1};
    CHECK(raft_step(r, &hb) == RAFT_OK);
    CHECK_EQ_U64(raft_term(r), 5);
    CHECK_EQ_U64(raft_leader(r), 2);
    for (uint32_t i = 0; i + 1 < cfg.election_ticks; i++) raft_tick(r);
    CHECK(raft_role(r) == RAFT_FOLLOWER);
    CHECK_EQ_U64(raft_term(r), 5);
    raft_ready(r, &rd);
    for (uint32_t i = 0; i < rd.n_messages; i++) {
        CHECK(rd.messages[i].type == RAFT_MSG_HEARTBEAT_RESP);
    }
    raft_advance(r);
    raft_destroy(r);
}

/* A group that removed a member goes quiet once the rest hold its log:
 * the removed member's old progress (left behind the table) is no one's to
 * wait for (1fbce28e52f3 read it and never let the group rest). */
TEST(a_group_that_removed_a_member_goes_quiet) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    CHECK(net_propose(&net, 1, "data") > 0);
    net_settle(&net);
    const uint64_t v12[] = {1, 2};
    struct raft_conf without3 = conf_of(v12, 2, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &without3) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 2);
    uint64_t match = 0;
    CHECK(!raft_match_index(net.r[1], 3, &match));
    net_crash(&net, 3);
    CHECK(net_propose(&net, 1, "after") > 0);
    net_settle(&net);
    net_tick_all(&net, 2);
    uint64_t told = net.sent[RAFT_MSG_QUIESCE];
    CHECK(raft_quiesce(net.r[1]));
    net_flush(&net);
    CHECK_EQ_U64(net.sent[RAFT_MSG_QUIESCE] - told, 1); /* 2 only (0191ecfc45c3) */
    net_settle(&net);
    CHECK(raft_is_quiet(net.r[2]));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* A snapshot at index carries the configuration applied at index: the log
 * is compacted at a configuration entry (it is in force), never behind one
 * already applied (the snapshot would carry the later configuration).
 * (237129581ca3, 772e742bb7f0) */
TEST(compaction_stops_at_an_applied_configuration_entry) {
    net_init(&net, 4, 3); /* 4 starts empty, outside the configuration */
    net_elect(&net, 1);
    for (int i = 0; i < 3; i++) CHECK(net_propose(&net, 1, "data") > 0);
    net_settle(&net);
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add_learner = conf_of(v123, 3, l4, 1);
    CHECK(raft_propose_conf(net.r[1], &add_learner) == RAFT_OK);
    uint64_t conf_index = raft_last_index(net.r[1]);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(raft_applied_index(net.r[1]), conf_index);
    CHECK(raft_entry_at(net.r[1], conf_index)->type == RAFT_ENTRY_CONF);
    CHECK(raft_compact(net.r[1], conf_index - 1, (const uint8_t *)"img", 3) == RAFT_EBUSY);
    CHECK(raft_compact(net.r[1], conf_index, (const uint8_t *)"img", 3) == RAFT_OK);
    CHECK_EQ_U64(raft_snapshot_index(net.r[1]), conf_index);
    CHECK(!net.safety_violated);
    net_free(&net);
}

static void drain_readies(struct raft *r) {
    for (int guard = 0; guard < 100 && raft_has_ready(r); guard++) {
        struct raft_ready rd;
        raft_ready(r, &rd);
        raft_advance(r);
    }
}

/* A quiet leader of RAFT_NODES_MAX voters (the progress table full), whose
 * followers' answers the test writes by hand, is woken by a proposal and
 * takes it: waking marks every member of the table active, and nothing
 * past it (7ce44878282c wrote one slot past the table, over the fields
 * after it: a transfer seemed in progress and the proposal was refused). */
TEST(a_full_groups_quiet_leader_wakes_and_takes_a_proposal) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.seed = 7;
    struct raft_conf conf = {0};
    for (uint64_t v = 1; v <= RAFT_NODES_MAX; v++) conf.voters[conf.n_voters++] = v;
    struct raft *r = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &conf);
    CHECK(r != NULL);
    drain_readies(r);
    raft_campaign(r);
    drain_readies(r);
    uint64_t term = raft_term(r);
    for (uint64_t v = 2; v <= RAFT_NODES_MAX; v++) {
        struct raft_msg grant = {.type = RAFT_MSG_VOTE_RESP, .from = v, .to = 1, .term = term};
        CHECK(raft_step(r, &grant) == RAFT_OK);
    }
    CHECK(raft_role(r) == RAFT_LEADER);
    drain_readies(r);
    uint64_t noop = raft_last_index(r);
    for (uint64_t v = 2; v <= RAFT_NODES_MAX; v++) {
        struct raft_msg ack = {.type = RAFT_MSG_APPEND_RESP, .from = v, .to = 1, .term = term,
                               .index = noop};
        CHECK(raft_step(r, &ack) == RAFT_OK);
        /* 8 of 16 is no majority, 9 is (232b1219af53, 9eb4ea0941d1 read or
         * wrote one value past the 16 sorted) */
        if (v == RAFT_NODES_MAX / 2) CHECK(raft_commit_index(r) < noop);
        if (v == RAFT_NODES_MAX / 2 + 1) CHECK_EQ_U64(raft_commit_index(r), noop);
    }
    CHECK_EQ_U64(raft_commit_index(r), noop);
    drain_readies(r);
    CHECK(raft_quiesce(r));
    drain_readies(r);
    CHECK(raft_is_quiet(r));
    uint64_t index = 0;
    CHECK(raft_propose(r, (const uint8_t *)"w", 1, &index, NULL) == RAFT_OK);
    CHECK(!raft_is_quiet(r));
    CHECK(!raft_transferring(r));
    CHECK_EQ_U64(index, noop + 1);
    drain_readies(r);
    raft_destroy(r);
}

/* raft.h: raft_snapshot_sending() is true while an active follower holds
 * part of the current snapshot, false before the first chunk is
 * acknowledged and once the whole is. (ded9def0e1f9 never said true.) */
TEST(a_snapshot_part_acknowledged_is_being_sent) {
    snapshot_scene(NULL, NULL, NULL);
    static uint8_t image[10500];
    memset(image, 'i', sizeof(image));
    CHECK(raft_compact(net.r[1], raft_applied_index(net.r[1]), image, sizeof(image)) == RAFT_OK);
    CHECK(!raft_snapshot_sending(net.r[1]));
    net_isolate(&net, 3, false);
    raft_tick(net.r[1]);
    net_flush(&net);
    uint64_t chunks = net.sent[RAFT_MSG_SNAPSHOT];
    bool sending = false, started = false;
    for (int guard = 0; guard < 1000 && net.n_queue > 0 && !sending; guard++) {
        net_deliver_at(&net, 0);
        sending = raft_snapshot_sending(net.r[1]);
        if (!started && net.sent[RAFT_MSG_SNAPSHOT] > chunks) {
            started = true;
            CHECK(!sending); /* sent, none acknowledged (39fabf2b1152) */
        }
    }
    CHECK(started);
    CHECK(sending);
    CHECK_EQ_U64(net.snapshots_installed[3], 0);
    net_settle(&net);
    net_tick_all(&net, 2);
    CHECK_EQ_U64(net.snapshots_installed[3], 1);
    CHECK(!raft_snapshot_sending(net.r[1]));
    net_free(&net);
}

/* raft.h: after raft_snapshot_external() the snapshot's bytes are the
 * caller's: the in-memory copy is dropped and every chunk is read through
 * config.snapshot_read (d4d5861ac8b6 kept sending from memory). */
TEST(a_snapshot_made_external_is_read_through_the_callback) {
    snapshot_scene(ext_read, NULL, &ext_reads);
    uint64_t applied = raft_applied_index(net.r[1]);
    for (size_t i = 0; i < sizeof(ext_image); i++) ext_image[i] = (uint8_t)(i * 17 + 3);
    CHECK(raft_compact(net.r[1], applied, ext_image, sizeof(ext_image)) == RAFT_OK);
    raft_snapshot_external(net.r[1]);
    ext_reads = 0;
    net_isolate(&net, 3, false);
    net_tick_all(&net, 5);
    CHECK_EQ_U64(ext_reads, 11); /* ceil(10500 / 1000) */
    ext_installed_then_replicated(test__failed, applied);
    net_free(&net);
}

/* raft.h: a configuration's encoding (in CONF entries, snapshots and the
 * peer frame) decodes to what was encoded; a short buffer, another version,
 * counts past RAFT_NODES_MAX or a length that does not match the counts is
 * RAFT_EINVAL. (d55d038d6774, e4d2fa1a4f57) */
TEST(a_configuration_encoding_round_trips_and_bad_ones_are_refused) {
    const uint64_t v12[] = {1, 2};
    const uint64_t l9[] = {9};
    struct raft_conf conf = conf_of(v12, 2, l9, 1);
    uint8_t buf[RAFT_CONF_BYTES + 4];
    uint32_t len = raft_conf_encode(&conf, buf, sizeof(buf));
    CHECK_EQ_U64(len, 4 + 3 * 8);
    CHECK(raft_conf_encode(&conf, buf, len - 1) == 0);
    struct raft_conf back;
    CHECK(raft_conf_decode(buf, len, &back) == RAFT_OK);
    CHECK_EQ_U64(back.n_voters, 2);
    CHECK_EQ_U64(back.voters[1], 2);
    CHECK_EQ_U64(back.n_outgoing, 0);
    CHECK_EQ_U64(back.n_learners, 1);
    CHECK_EQ_U64(back.learners[0], 9);
    CHECK(raft_conf_decode(buf, len - 1, &back) == RAFT_EINVAL);
    CHECK(raft_conf_decode(buf, 3, &back) == RAFT_EINVAL);
    buf[0]++;
    CHECK(raft_conf_decode(buf, len, &back) == RAFT_EINVAL);
    buf[0]--;
    const uint8_t empty[4] = {buf[0], 0, 0, 0};
    CHECK(raft_conf_decode(empty, 4, &back) == RAFT_OK);
    CHECK_EQ_U64(back.n_voters, 0);
    const uint8_t too_many[4] = {buf[0], RAFT_NODES_MAX + 1, 0, 0};
    CHECK(raft_conf_decode(too_many, 4, &back) == RAFT_EINVAL);
    struct raft_conf full = {0}; /* each count at RAFT_NODES_MAX (7506c80f88a0) */
    for (uint64_t i = 0; i < RAFT_NODES_MAX; i++) {
        full.voters[i] = 100 + i;
        full.outgoing[i] = 200 + i;
        full.learners[i] = 300 + i;
    }
    full.n_voters = full.n_outgoing = full.n_learners = RAFT_NODES_MAX;
    len = raft_conf_encode(&full, buf, sizeof(buf));
    CHECK(len > 0);
    CHECK(raft_conf_decode(buf, len, &back) == RAFT_OK);
    CHECK_EQ_U64(back.n_outgoing, RAFT_NODES_MAX);
    CHECK_EQ_U64(back.learners[RAFT_NODES_MAX - 1], 300 + RAFT_NODES_MAX - 1);
}

/* §3.4: a candidate wins with the last vote it needs even after a refusal
 * (3f024cb43ce1 counted the election lost while a quorum was still
 * possible), and one refused by a majority is a follower again at once
 * (2d05a259d788 stayed a candidate until its timer). */
TEST(a_candidate_wins_after_one_refusal_and_steps_down_after_a_majority) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 2, true);
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "only-on-1") > 0); /* 1's log is longer */
    net_heal(&net);
    raft_campaign(net.r[3]); /* forced: a transfer's campaign */
    net_flush(&net);
    CHECK(raft_role(net.r[3]) == RAFT_CANDIDATE);
    CHECK_EQ_U64(net.n_queue, 2);
    CHECK_EQ_U64(net.queue[0].m.to, 1);
    net_deliver_at(&net, 0); /* 1 refuses: 3 lacks its entry */
    net_deliver_at(&net, 0); /* 2 grants */
    CHECK(net.queue[0].m.from == 1 && net.queue[0].m.reject);
    net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[3]) == RAFT_CANDIDATE);
    net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[3]) == RAFT_LEADER);
    net_settle(&net);
    CHECK(!net.safety_violated);
    net_free(&net);
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 3, true);
    CHECK(net_propose(&net, 1, "on-1-and-2") > 0);
    net_settle(&net);
    net_heal(&net);
    raft_campaign(net.r[3]);
    net_flush(&net);
    for (int i = 0; i < 4 && net.n_queue > 0; i++) net_deliver_at(&net, 0);
    CHECK(raft_role(net.r[3]) == RAFT_FOLLOWER);
    net_free(&net);
}

/* raft_create() refuses what it cannot run on (raft.h): a configuration
 * one past a limit, a stored snapshot without a valid configuration, over
 * its limit or with no bytes to read, stored entries with a gap or a
 * falling term, a group configuration with a repeated id; and it counts
 * only the ids within a configuration's counts, each once. */
TEST(creation_refuses_bad_configurations_and_storage) {
    struct raft_config cfg;
    struct raft *ok;
    /* the limits of the configuration, at and one past (d048e7580701,
     * 936170a2296a: a drift of a whole timeout leaves no lease) */
    const uint64_t v1[] = {1};
    struct raft_conf alone = conf_of(v1, 1, NULL, 0);
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.max_snapshot_inflight = RAFT_SNAPSHOT_INFLIGHT_MAX;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &alone);
    CHECK(ok != NULL);
    raft_destroy(ok);
    cfg.max_snapshot_inflight = RAFT_SNAPSHOT_INFLIGHT_MAX + 1;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &alone) == NULL);
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.lease_drift_ticks = cfg.election_ticks - 1;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &alone);
    CHECK(ok != NULL);
    raft_destroy(ok);
    cfg.lease_drift_ticks = cfg.election_ticks;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &alone) == NULL);
    /* a stored snapshot with no valid configuration, or over its limit, is
     * refused (c4410c3e5651, 70c67bedcfa2) */
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.snapshot_read = ext_read;
    cfg.snapshot_ctx = &ext_reads;
    struct raft_snapshot_meta snap = {.index = 5, .term = 2, .conf = alone};
    ok = raft_create(&cfg, NULL, &snap, NULL, 100, NULL, 0, NULL);
    CHECK(ok != NULL);
    raft_destroy(ok);
    struct raft_snapshot_meta no_conf = {.index = 5, .term = 2};
    CHECK(raft_create(&cfg, NULL, &no_conf, NULL, 100, NULL, 0, NULL) == NULL);
    CHECK(raft_create(&cfg, NULL, &snap, NULL, RAFT_SNAPSHOT_BYTES_MAX + 1, NULL, 0, NULL) ==
          NULL);
    /* its bytes: given, or readable through snapshot_read, or none at all
     * (f6ec06565ca5, 8bcdaa24d577) */
    cfg.snapshot_read = NULL;
    CHECK(raft_create(&cfg, NULL, &snap, NULL, 100, NULL, 0, NULL) == NULL);
    ok = raft_create(&cfg, NULL, &snap, NULL, 0, NULL, 0, NULL);
    CHECK(ok != NULL);
    raft_destroy(ok);
    /* stored entries must follow each other, terms never falling
     * (19122a897a88, 0c24b8ee35dd) */
    struct raft_entry stored[2] = {{.term = 2, .index = 1}, {.term = 2, .index = 3}};
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, stored, 2, NULL) == NULL);
    stored[1].index = 2;
    stored[1].term = 1;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, stored, 2, NULL) == NULL);
    stored[1].term = 2;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, stored, 2, NULL);
    CHECK(ok != NULL);
    raft_destroy(ok);
    /* ids past a configuration's counts are no members (40ec026555f1) */
    struct raft_conf counted = alone;
    counted.voters[1] = 2;
    counted.learners[0] = 3;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &counted);
    CHECK(ok != NULL);
    CHECK(raft_is_voter(ok, 1));
    CHECK(!raft_is_voter(ok, 2));
    CHECK(!raft_conf_is_member(raft_conf(ok), 3));
    CHECK(raft_conf_is_member(raft_conf(ok), 1)); /* a voter (33ad1f452912) */
    raft_destroy(ok);
    counted.n_learners = 1;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &counted);
    CHECK(ok != NULL);
    CHECK(raft_conf_is_member(raft_conf(ok), 3)); /* a learner */
    raft_destroy(ok);
    /* members are counted once: a joint configuration of 16 voters and 15
     * of them outgoing has 16 members (3e90dce8e1fd) */
    struct raft_conf joint16 = {0};
    for (uint64_t v = 1; v <= RAFT_NODES_MAX; v++) joint16.voters[joint16.n_voters++] = v;
    for (uint64_t v = 1; v < RAFT_NODES_MAX; v++) joint16.outgoing[joint16.n_outgoing++] = v;
    ok = raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &joint16);
    CHECK(ok != NULL);
    raft_destroy(ok);
    /* an outgoing set holds no zero or repeated id (49877191fcde) */
    struct raft_conf twice = alone;
    twice.outgoing[0] = twice.outgoing[1] = 1;
    twice.n_outgoing = 2;
    CHECK(raft_create(&cfg, NULL, NULL, NULL, 0, NULL, 0, &twice) == NULL);
}

/* ---- no redundant traffic (tests/mutants: the "benign" survivors) ---- */

static uint64_t appends_rejected; /* APPEND_RESP rejections delivered by settle_counting */

/* net_settle, counting the rejected appends on their way. */
static void settle_counting(void) {
    net_flush(&net);
    for (int guard = 0; net.n_queue > 0; guard++) {
        assert(guard < NET_QUEUE_MAX);
        if (net.queue[0].m.type == RAFT_MSG_APPEND_RESP && net.queue[0].m.reject) appends_rejected++;
        net_deliver_at(&net, 0);
    }
}

static void tick_all_counting(int ticks) {
    for (int t = 0; t < ticks; t++) {
        for (int id = 1; id <= net.n; id++) {
            if (net.r[id] != NULL) raft_tick(net.r[id]);
        }
        settle_counting();
    }
}

/* Steps a hand-made answer into the leader 1 and returns how many messages
 * it sent in reply (its readies run). */
static uint64_t answer_to_1(uint8_t type, uint64_t from, uint64_t index, bool reject,
                            uint64_t hint) {
    struct raft_msg m = {0};
    m.type = type;
    m.from = from;
    m.to = 1;
    m.term = raft_term(net.r[1]);
    m.index = index;
    m.reject = reject;
    m.reject_hint = hint;
    m.log_term = hint > 0 ? raft_term_at(net.r[1], hint) : 0;
    uint64_t before = sent_total(&net);
    int rc = raft_step(net.r[1], &m);
    assert(rc == RAFT_OK);
    (void)rc;
    net_flush_one(&net, 1);
    return sent_total(&net) - before;
}

/* raft.h, "Traffic": over a link that loses nothing a leader sends each
 * entry once and nothing a follower is known to hold. A new leader's first
 * append to followers holding its whole log carries its no-op alone and is
 * not refused; a caught-up follower's heartbeat answer draws no append; a
 * commit reaches the followers without a refusal. (Survivors a08c04c2ed7a,
 * 61d15ed5c39b, 61e220e19edb, 69feea2e8667; c1950ab197ad: the bootstrap
 * entry starts committed.) */
TEST(a_leader_sends_each_entry_once_and_nothing_a_follower_holds) {
    net_init(&net, 3, 3);
    for (int id = 1; id <= 3; id++) CHECK_EQ_U64(raft_commit_index(net.r[id]), 1);
    net_flush(&net);
    appends_rejected = 0;
    raft_campaign(net.r[1]);
    settle_counting();
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK_EQ_U64(net.entries_to[2], 1); /* the no-op, once */
    CHECK_EQ_U64(net.entries_to[3], 1);
    CHECK_EQ_U64(appends_rejected, 0);
    for (int i = 0; i < 5; i++) CHECK(net_propose(&net, 1, "x") > 0);
    settle_counting();
    uint64_t appends = net.sent[RAFT_MSG_APPEND];
    tick_all_counting(3); /* heartbeats only: everyone holds everything */
    CHECK_EQ_U64(net.sent[RAFT_MSG_APPEND], appends);
    CHECK_EQ_U64(net.entries_to[2], 6);
    CHECK_EQ_U64(net.entries_to[3], 6);
    CHECK_EQ_U64(appends_rejected, 0);
    CHECK_EQ_U64(net.applied_to[2], 7);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* raft.h, "Traffic": a lost append costs one refusal, and the leader
 * resends from the follower's last acknowledged entry on (§3.5), no more
 * and no later; a duplicated or late answer (an acknowledgement or a
 * refusal of what the follower is known to hold, a refusal of a probe
 * already answered) draws nothing. (Survivors 49dba55b6dda, 30555f53228e,
 * 2bfa5414ddb7, 9b20f8e0d356, b96bcfbbe729, 7daefa52f056.) */
TEST(a_lost_append_costs_one_refusal_and_stale_answers_draw_nothing) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    CHECK_EQ_U64(net_propose(&net, 1, "a"), 3);
    net_settle(&net);
    uint64_t match = 0;
    CHECK(raft_match_index(net.r[1], 3, &match));
    CHECK_EQ_U64(match, 3);
    /* Stale answers from 3, which is known to hold 1..3. */
    CHECK_EQ_U64(answer_to_1(RAFT_MSG_APPEND_RESP, 3, 3, false, 0), 0); /* a duplicated ack */
    CHECK_EQ_U64(answer_to_1(RAFT_MSG_APPEND_RESP, 3, 2, false, 0), 0); /* a late one */
    CHECK_EQ_U64(answer_to_1(RAFT_MSG_APPEND_RESP, 3, 3, true, 2), 0); /* refuses what it holds */
    CHECK_EQ_U64(answer_to_1(RAFT_MSG_APPEND_RESP, 3, 2, true, 2), 0);
    /* 4 is lost on its way to 3; 5 is refused; 4 and 5 are resent. */
    uint64_t entries = net.entries_to[3];
    net.link[1][3] = false;
    CHECK_EQ_U64(net_propose(&net, 1, "b"), 4);
    net.link[1][3] = true;
    CHECK_EQ_U64(net_propose(&net, 1, "c"), 5);
    /* The refusal of 5 (after 4) is answered by a probe from 4. */
    while (net.n_queue > 0 && !(net.queue[0].m.type == RAFT_MSG_APPEND_RESP &&
                                net.queue[0].m.from == 3 && net.queue[0].m.reject)) {
        net_deliver_at(&net, 0);
    }
    CHECK(net.n_queue > 0);
    struct raft_msg refusal = net.queue[0].m;
    size_t older = net.n_queue - 1; /* what was queued before the refusal's answer */
    net_deliver_at(&net, 0);
    bool probed = false;
    for (size_t i = older; i < net.n_queue; i++) {
        const struct raft_msg *m = &net.queue[i].m;
        if (m->type != RAFT_MSG_APPEND || m->to != 3) continue;
        CHECK_EQ_U64(m->index, 3);
        probed = true;
    }
    CHECK(probed);
    /* The same refusal again (duplicated) while the probe is out: nothing. */
    uint64_t before = sent_total(&net);
    CHECK(raft_step(net.r[1], &refusal) == RAFT_OK);
    net_flush_one(&net, 1);
    CHECK_EQ_U64(sent_total(&net) - before, 0);
    /* An old acknowledgement while probing: nothing either. */
    CHECK_EQ_U64(answer_to_1(RAFT_MSG_APPEND_RESP, 3, 3, false, 0), 0);
    net_settle(&net);
    CHECK_EQ_U64(net.entries_to[3] - entries, 4); /* 4 (lost), 5 (refused), 4 and 5 */
    CHECK(logs_match(&net, 1, 3));
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.5: a new member with an empty log refuses the first probe once and
 * is then sent the log from its first entry. (Survivor 2b0b10f3518c.) */
TEST(an_empty_member_refuses_one_probe) {
    net_init(&net, 4, 3);
    net_elect(&net, 1);
    for (int i = 0; i < 3; i++) CHECK(net_propose(&net, 1, "data") > 0);
    net_settle(&net);
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l4[] = {4};
    struct raft_conf add4 = conf_of(v123, 3, l4, 1);
    appends_rejected = 0;
    CHECK(raft_propose_conf(net.r[1], &add4) == RAFT_OK);
    settle_counting();
    tick_all_counting(3);
    CHECK(logs_match(&net, 1, 4));
    CHECK_EQ_U64(appends_rejected, 1);
    CHECK(!net.safety_violated);
    net_free(&net);
}

/* §3.3: a server answers a request of an older term with its own, so a
 * stale leader's append deposes it at once (no tick needed). (Survivor
 * 3bd5c118cebe.) */
TEST(a_stale_leaders_append_is_answered_with_the_newer_term) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 1, true);
    net_elect(&net, 2);
    CHECK(raft_role(net.r[2]) == RAFT_LEADER);
    net_isolate(&net, 1, false);
    CHECK(raft_role(net.r[1]) == RAFT_LEADER);
    CHECK(net_propose(&net, 1, "stale") > 0);
    net_settle(&net);
    CHECK(raft_role(net.r[1]) == RAFT_FOLLOWER);
    CHECK_EQ_U64(raft_term(net.r[1]), raft_term(net.r[2]));
    net_free(&net);
}

/* §6.4: a read's index is the leader's commit index when it is asked
 * (once the term has an entry committed), also when a later entry commits
 * before the read's heartbeat round is acknowledged. (Survivors
 * 4c2e925ff906, dafe7f60fa17.) */
TEST(a_read_index_is_the_commit_index) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    CHECK(net_propose(&net, 1, "x") > 0);
    net_settle(&net);
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 3);
    CHECK(raft_read_index(net.r[1], 7) == RAFT_OK);
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 1);
    CHECK_EQ_U64(net.reads[1][0].index, 3);
    /* A read at 3, then 4 proposed: the appends and their answers overtake
     * the heartbeats, so 4 commits while the read's round is out. */
    CHECK(raft_read_index(net.r[1], 8) == RAFT_OK);
    CHECK_EQ_U64(net_propose(&net, 1, "y"), 4);
    for (int guard = 0; guard < 100; guard++) {
        size_t i = 0;
        while (i < net.n_queue && (net.queue[i].m.type == RAFT_MSG_HEARTBEAT ||
                                   net.queue[i].m.type == RAFT_MSG_HEARTBEAT_RESP)) {
            i++;
        }
        if (i == net.n_queue) break;
        net_deliver_at(&net, i);
    }
    CHECK_EQ_U64(raft_commit_index(net.r[1]), 4);
    CHECK_EQ_U64(net.n_reads[1], 1);
    net_settle(&net);
    CHECK_EQ_U64(net.n_reads[1], 2);
    CHECK_EQ_U64(net.reads[1][1].context, 8);
    CHECK_EQ_U64(net.reads[1][1].index, 3);
    net_free(&net);
}

/* §3.4: a candidate asks each other voter once per campaign, also after
 * the configuration lost a member (the progress table shrank: learners 4
 * and 5, then 5 promoted and 4 removed). (Survivor 217f9edf04e2.) */
TEST(a_campaign_asks_each_voter_once) {
    net_init(&net, 5, 3);
    net_elect(&net, 1);
    const uint64_t v123[] = {1, 2, 3};
    const uint64_t l45[] = {4, 5};
    struct raft_conf learners = conf_of(v123, 3, l45, 2);
    CHECK(raft_propose_conf(net.r[1], &learners) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 2);
    const uint64_t v1235[] = {1, 2, 3, 5};
    struct raft_conf promoted = conf_of(v1235, 4, NULL, 0);
    CHECK(raft_propose_conf(net.r[1], &promoted) == RAFT_OK);
    net_settle(&net);
    net_tick_all(&net, 3);
    CHECK_EQ_U64(raft_conf(net.r[3])->n_voters, 4);
    CHECK_EQ_U64(raft_conf(net.r[3])->n_outgoing, 0);
    CHECK_EQ_U64(raft_conf(net.r[3])->n_learners, 0);
    net_isolate(&net, 3, true);
    uint64_t asked = net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE];
    raft_campaign(net.r[3]);
    net_flush_one(&net, 3);
    CHECK_EQ_U64(net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE] - asked, 3);
    net_free(&net);
}

/* raft.h: a follower campaigns after a randomized timeout in
 * [election_ticks, 2 * election_ticks) ticks without a leader. (Survivor
 * e1d051e44a45: one tick late.) */
TEST(the_election_timeout_is_in_its_range) {
    for (uint64_t seed = 1; seed <= 30; seed++) {
        net_init(&net, 3, 3);
        net.cfg.seed = seed;
        net_crash(&net, 1);
        net_start(&net, 1, 3);
        net_isolate(&net, 1, true);
        net_flush(&net);
        uint64_t asked = net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE];
        int ticks = 0;
        while (net.sent[RAFT_MSG_PRE_VOTE] + net.sent[RAFT_MSG_VOTE] == asked && ticks < 100) {
            raft_tick(net.r[1]);
            net_flush(&net);
            ticks++;
        }
        CHECK(ticks >= (int)net.cfg.election_ticks);
        CHECK(ticks < 2 * (int)net.cfg.election_ticks);
        net_free(&net);
    }
}

/* §3.3: a server answers a request of an older term (an append, a
 * heartbeat, a pre-vote) with its own term and drops an older answer
 * silently. §9.6: a pre-vote is granted only for a term above the voter's
 * own; a follower that hears its leader refuses one in its own term.
 * (Survivors 329b3a408b60, 2c4f95670043, 882bd06ac621, e3e1237dcd6b.) */
TEST(stale_answers_are_dropped_and_a_pre_vote_needs_a_newer_term) {
    net_init(&net, 3, 3);
    net_elect(&net, 1);
    net_isolate(&net, 1, true);
    net_elect(&net, 2); /* a newer term; 3 follows 2 */
    net_isolate(&net, 1, false);
    uint64_t term = raft_term(net.r[3]);
    CHECK(term > 2);
    CHECK_EQ_U64(raft_leader(net.r[3]), 2);
    static const uint8_t answers[] = {RAFT_MSG_APPEND_RESP, RAFT_MSG_HEARTBEAT_RESP,
                                      RAFT_MSG_VOTE_RESP, RAFT_MSG_PRE_VOTE_RESP,
                                      RAFT_MSG_SNAPSHOT_RESP};
    for (size_t i = 0; i < sizeof(answers); i++) {
        struct raft_msg m = {0};
        m.type = answers[i];
        m.from = 1;
        m.to = 3;
        m.term = term - 1;
        uint64_t before = sent_total(&net);
        CHECK(raft_step(net.r[3], &m) == RAFT_OK);
        net_flush_one(&net, 3);
        CHECK_EQ_U64(sent_total(&net) - before, 0);
    }
    /* A pre-vote of an older term is refused (with 3's term). */
    struct raft_msg pv = {0};
    pv.type = RAFT_MSG_PRE_VOTE;
    pv.from = 1;
    pv.to = 3;
    pv.term = term - 1;
    pv.index = raft_last_index(net.r[3]);
    pv.log_term = raft_term_at(net.r[3], pv.index);
    net_drop_all(&net);
    CHECK(raft_step(net.r[3], &pv) == RAFT_OK);
    net_flush_one(&net, 3);
    CHECK_EQ_U64(net.n_queue, 1);
    CHECK(net.queue[0].m.type == RAFT_MSG_PRE_VOTE_RESP && net.queue[0].m.reject);
    CHECK_EQ_U64(net.queue[0].m.term, term);
    /* One in 3's own term, with a log as long: refused, 3 follows 2. */
    net_drop_all(&net);
    pv.term = term;
    CHECK(raft_step(net.r[3], &pv) == RAFT_OK);
    net_flush_one(&net, 3);
    CHECK_EQ_U64(net.n_queue, 1);
    CHECK(net.queue[0].m.type == RAFT_MSG_PRE_VOTE_RESP && net.queue[0].m.reject);
    net_drop_all(&net);
    net_free(&net);
}

/* §5 (chunked InstallSnapshot): at most max_snapshot_inflight chunks are
 * unacknowledged at a time. (Survivor 8c439b62dbb7.) */
TEST(snapshot_chunks_in_flight_are_bounded) {
    snapshot_scene(NULL, NULL, NULL);
    static uint8_t image[10500];
    memset(image, 'w', sizeof(image));
    CHECK(raft_compact(net.r[1], raft_applied_index(net.r[1]), image, sizeof(image)) == RAFT_OK);
    net_isolate(&net, 3, false);
    raft_tick(net.r[1]);
    net_flush(&net);
    uint64_t chunks = net.sent[RAFT_MSG_SNAPSHOT];
    for (int guard = 0; guard < 100 && net.sent[RAFT_MSG_SNAPSHOT] == chunks; guard++) {
        CHECK(net.n_queue > 0);
        net_deliver_at(&net, 0);
    }
    CHECK_EQ_U64(net.sent[RAFT_MSG_SNAPSHOT] - chunks, net.cfg.max_snapshot_inflight);
    net_settle(&net);
    CHECK_EQ_U64(net.sent[RAFT_MSG_SNAPSHOT] - chunks, 11); /* ceil(10500 / 1000), each once */
    CHECK_EQ_U64(net.snapshots_installed[3], 1);
    net_free(&net);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(election_and_replication),
        TEST_ENTRY(follower_rejects_proposal_with_leader_hint),
        TEST_ENTRY(vote_requires_up_to_date_log),
        TEST_ENTRY(four_voters_commit_needs_three),
        TEST_ENTRY(pre_vote_keeps_partitioned_node_from_disrupting),
        TEST_ENTRY(check_quorum_leader_steps_down),
        TEST_ENTRY(lease_needs_an_acked_round_voters_and_no_transfer),
        TEST_ENTRY(lease_is_not_renewed_by_a_reused_round_slot),
        TEST_ENTRY(the_lease_lasts_the_timeout_less_the_drift_margin),
        TEST_ENTRY(a_restarted_voter_keeps_quiet_for_a_timeout_under_leases),
        TEST_ENTRY(reads_waiting_are_bounded),
        TEST_ENTRY(a_single_voter_serves_reads_only_from_its_noop_on),
        TEST_ENTRY(figure_3_7_old_term_entries_are_not_committed_by_counting),
        TEST_ENTRY(divergent_log_is_repaired_with_few_round_trips),
        TEST_ENTRY(long_divergence_on_both_sides_is_repaired_in_one_round_trip),
        TEST_ENTRY(a_lagging_follower_is_caught_up_in_one_round_trip),
        TEST_ENTRY(a_lagging_follower_is_streamed_without_waiting_for_heartbeats),
        TEST_ENTRY(conflict_at_the_leaders_snapshot_index_is_repaired_by_the_snapshot),
        TEST_ENTRY(inflight_appends_and_message_size_are_bounded),
        TEST_ENTRY(read_index_needs_noop_and_quorum),
        TEST_ENTRY(a_read_round_waits_for_the_one_in_flight),
        TEST_ENTRY(snapshot_is_sent_in_chunks_and_installed),
        TEST_ENTRY(external_snapshot_is_read_through_the_callback),
        TEST_ENTRY(received_snapshot_streams_to_the_caller_and_survives_a_failed_chunk),
        TEST_ENTRY(a_snapshot_over_the_memory_cap_is_refused_unless_streamed),
        TEST_ENTRY(an_empty_snapshot_is_sent_and_installed),
        TEST_ENTRY(pipelined_leader_counts_itself_once_persisted),
        TEST_ENTRY(pipelined_follower_acknowledges_only_durable_entries),
        TEST_ENTRY(a_new_leaders_noop_counts_the_leader_once_persisted),
        TEST_ENTRY(joint_consensus_learner_promotion_and_leader_removal),
        TEST_ENTRY(a_new_leader_changes_the_configuration_only_after_its_first_commit),
        TEST_ENTRY(a_single_voter_commits_and_applies_its_own_entries),
        TEST_ENTRY(a_member_removed_and_added_again_starts_from_nothing),
        TEST_ENTRY(a_committed_unapplied_configuration_blocks_campaigning),
        TEST_ENTRY(leadership_transfer_catches_up_then_hands_over),
        TEST_ENTRY(vote_survives_restart),
        TEST_ENTRY(a_candidate_counts_each_voter_once_and_no_stranger),
        TEST_ENTRY(bad_input_is_refused),
        TEST_ENTRY(creation_refuses_bad_configurations_and_storage),
        TEST_ENTRY(quiet_group_stops_its_timers_until_a_proposal_wakes_it),
        TEST_ENTRY(quiesce_is_refused_while_anything_is_pending),
        TEST_ENTRY(a_lagging_follower_answers_quiesce_and_wakes_the_leader),
        TEST_ENTRY(a_late_heartbeat_answer_does_not_wake_a_quiet_leader),
        TEST_ENTRY(a_woken_quiet_leader_without_a_quorum_steps_down),
        TEST_ENTRY(quiet_followers_of_a_dead_leader_elect_once_woken),
        TEST_ENTRY(a_read_on_a_quiet_leader_needs_a_quorum_round),
        TEST_ENTRY(unapplied_ordinary_entries_block_neither_campaigns_nor_changes),
        TEST_ENTRY(which_configuration_changes_go_through_the_joint_configuration),
        TEST_ENTRY(a_removed_leader_hands_over_to_a_voter_holding_its_log),
        TEST_ENTRY(a_lost_snapshot_is_resent_after_half_an_election_timeout),
        TEST_ENTRY(term_vote_and_commit_are_persisted_when_they_change_alone),
        TEST_ENTRY(persisted_counts_up_to_the_reported_index_only),
        TEST_ENTRY(reads_confirmed_while_the_ready_is_full_are_served_in_the_next),
        TEST_ENTRY(an_append_keeps_its_entries_when_the_log_is_compacted_before_the_ready),
        TEST_ENTRY(a_long_log_grows_mapped_and_is_trimmed_after_compaction),
        TEST_ENTRY(a_full_group_keeps_its_election_timer_through_a_term_change),
        TEST_ENTRY(a_group_that_removed_a_member_goes_quiet),
        TEST_ENTRY(compaction_stops_at_an_applied_configuration_entry),
        TEST_ENTRY(a_full_groups_quiet_leader_wakes_and_takes_a_proposal),
        TEST_ENTRY(a_snapshot_part_acknowledged_is_being_sent),
        TEST_ENTRY(a_snapshot_made_external_is_read_through_the_callback),
        TEST_ENTRY(a_configuration_encoding_round_trips_and_bad_ones_are_refused),
        TEST_ENTRY(a_candidate_wins_after_one_refusal_and_steps_down_after_a_majority),
        TEST_ENTRY(a_leader_sends_each_entry_once_and_nothing_a_follower_holds),
        TEST_ENTRY(a_lost_append_costs_one_refusal_and_stale_answers_draw_nothing),
        TEST_ENTRY(an_empty_member_refuses_one_probe),
        TEST_ENTRY(a_stale_leaders_append_is_answered_with_the_newer_term),
        TEST_ENTRY(a_read_index_is_the_commit_index),
        TEST_ENTRY(a_campaign_asks_each_voter_once),
        TEST_ENTRY(the_election_timeout_is_in_its_range),
        TEST_ENTRY(stale_answers_are_dropped_and_a_pre_vote_needs_a_newer_term),
        TEST_ENTRY(snapshot_chunks_in_flight_are_bounded),
    };
    return test_run("test_raft", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
