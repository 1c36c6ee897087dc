/* sim_nemesis.c: the fault schedule. Every few dozen ticks, until the heal
 * time, the nemesis picks one action from the seed's generator: partitions
 * (halves, an isolated leader, one-way links), healing, crashes (losing
 * unsynced writes, maybe tearing the last record) and restarts, message
 * loss, duplication and delay, slow disks, leadership transfers and
 * membership changes (add a learner, promote it, remove a voter), and
 * ambushes that crash a new leader within a tick of its election. */
#include <assert.h>
#include <string.h>

#include "sim/sim.h"

static void sim_nemesis__heal_network(struct sim *s) {
    memset(s->blocked, 0, sizeof(s->blocked));
    s->drop_percent = 0;
    s->dup_percent = 0;
    s->delay_max_us = 0;
}

static void sim_nemesis__partition(struct sim *s) {
    bool side[SIM_NODES_MAX];
    for (uint32_t i = 0; i < s->n_slots; i++) side[i] = rand_chance(&s->rng, 50);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        for (uint32_t j = 0; j < s->n_slots; j++) s->blocked[i][j] = side[i] != side[j];
    }
    s->stats.partitions++;
    sim_notef(s, "nemesis: partition");
}

static void sim_nemesis__isolate(struct sim *s, int victim) {
    if (victim < 0) return;
    for (uint32_t j = 0; j < s->n_slots; j++) {
        s->blocked[victim][j] = s->blocked[j][victim] = (int)j != victim;
    }
    s->stats.partitions++;
    sim_notef(s, "nemesis: isolate n%llu", (unsigned long long)s->nodes[victim].id);
}

static void sim_nemesis__one_way(struct sim *s) {
    uint32_t a = (uint32_t)rand_below(&s->rng, s->n_slots);
    uint32_t b = (uint32_t)rand_below(&s->rng, s->n_slots);
    if (a == b) return;
    s->blocked[a][b] = true;
    s->stats.partitions++;
    sim_notef(s, "nemesis: block n%llu -> n%llu", (unsigned long long)s->nodes[a].id,
               (unsigned long long)s->nodes[b].id);
}

void sim_nemesis_crash(struct sim *s, uint8_t slot) {
    struct sim_node *n = &s->nodes[slot];
    if (!n->alive) return;
    sim_node_crash(s, slot);
    struct sim_event ev = {.type = SIM_EV_RESTART, .node = slot};
    sim_schedule(s, s->now_us + (2 + rand_below(&s->rng, 60)) * SIM_TICK_US, &ev);
}

static void sim_nemesis__network_quality(struct sim *s) {
    static const uint32_t drops[] = {0, 5, 20, 50};
    static const uint32_t dups[] = {0, 5, 10};
    static const uint64_t delays[] = {0, 2000, 20000};
    s->drop_percent = drops[rand_below(&s->rng, 4)];
    s->dup_percent = dups[rand_below(&s->rng, 3)];
    s->delay_max_us = delays[rand_below(&s->rng, 3)];
    sim_notef(s, "nemesis: drop %u%% dup %u%% delay up to %llu us", s->drop_percent,
               s->dup_percent, (unsigned long long)s->delay_max_us);
}

static void sim_nemesis__transfer(struct sim *s, int leader) {
    if (leader < 0 || s->nodes[leader].persisting) return;
    struct raft *r = s->nodes[leader].raft;
    const struct raft_conf *conf = raft_conf(r);
    uint64_t target = conf->voters[rand_below(&s->rng, conf->n_voters)];
    if (target == raft_id(r)) return;
    if (raft_transfer_leader(r, target) == RAFT_OK) {
        s->stats.transfers++;
        sim_notef(s, "nemesis: transfer leadership n%llu -> n%llu",
                   (unsigned long long)s->nodes[leader].id, (unsigned long long)target);
    }
}

static int sim_nemesis__add_node(struct sim *s) {
    if (s->n_slots >= SIM_NODES_MAX) return -1;
    uint8_t slot = (uint8_t)s->n_slots++;
    struct sim_node *n = &s->nodes[slot];
    memset(n, 0, sizeof(*n));
    n->exists = true;
    n->id = s->next_id++;
    n->compact_every = 5 + rand_below(&s->rng, 200);
    sim_node_start(s, slot);
    return slot;
}

/* One membership step: promote a caught-up learner, else add a learner,
 * else remove a voter (possibly the leader), keeping 3 to 5 voters. */
static void sim_nemesis__conf_change(struct sim *s, int leader) {
    if (leader < 0 || s->nodes[leader].persisting) return;
    struct raft *r = s->nodes[leader].raft;
    struct raft_conf target = *raft_conf(r);
    if (target.n_outgoing > 0) return;
    int added = -1, removing = -1;
    uint64_t match = 0;
    if (target.n_learners > 0) {
        uint64_t id = target.learners[0];
        if (!raft_match_index(r, id, &match) || match < raft_commit_index(r)) return;
        target.voters[target.n_voters++] = id;
        target.learners[0] = target.learners[--target.n_learners];
    } else if (target.n_voters < 5 && rand_chance(&s->rng, 60)) {
        added = sim_nemesis__add_node(s);
        if (added < 0) return;
        target.learners[target.n_learners++] = s->nodes[added].id;
    } else if (target.n_voters > 3) {
        uint32_t k = (uint32_t)rand_below(&s->rng, target.n_voters);
        for (uint32_t i = 0; i < s->n_slots; i++) {
            if (s->nodes[i].exists && s->nodes[i].id == target.voters[k]) removing = (int)i;
        }
        target.voters[k] = target.voters[--target.n_voters];
    } else {
        return;
    }
    int rc = raft_propose_conf(r, &target);
    sim_notef(s, "nemesis: conf change to %u voters %u learners: %s", target.n_voters,
               target.n_learners, raft_strerror(rc));
    if (rc != RAFT_OK) {
        if (added >= 0) {
            sim_node_crash(s, (uint8_t)added);
            s->nodes[added].removed = true;
        }
        return;
    }
    s->stats.conf_changes++;
    if (removing >= 0) s->nodes[removing].removing = true;
}

/* Stops nodes whose removal the leader has applied. */
static void sim_nemesis__reap(struct sim *s) {
    int leader = sim_leader_slot(s);
    if (leader < 0) return;
    const struct raft_conf *conf = raft_conf(s->nodes[leader].raft);
    if (conf->n_outgoing > 0) return;
    for (uint32_t i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        if (!n->exists || n->removed || !n->removing || raft_conf_is_member(conf, n->id)) {
            continue;
        }
        sim_node_crash(s, (uint8_t)i);
        n->removed = true;
        sim_notef(s, "nemesis: n%llu removed and stopped", (unsigned long long)n->id);
    }
}

static int sim_nemesis__random_alive(struct sim *s) {
    uint32_t start = (uint32_t)rand_below(&s->rng, s->n_slots);
    for (uint32_t k = 0; k < s->n_slots; k++) {
        uint32_t i = (start + k) % s->n_slots;
        if (s->nodes[i].alive) return (int)i;
    }
    return -1;
}

/* Crashes a majority (or all) of the live nodes at once; each restarts on
 * its own after 1 to 40 ticks, so the first back may have to elect a
 * leader from whatever reached their disks. */
static void sim_nemesis__crash_many(struct sim *s) {
    uint32_t alive = 0;
    for (uint32_t i = 0; i < s->n_slots; i++) alive += s->nodes[i].alive;
    uint32_t victims = rand_chance(&s->rng, 50) ? alive : alive / 2 + 1;
    sim_notef(s, "nemesis: crash %u of %u nodes", victims, alive);
    for (uint32_t k = 0; k < victims; k++) {
        int v = sim_nemesis__random_alive(s);
        if (v < 0) break;
        sim_node_crash(s, (uint8_t)v);
        struct sim_event ev = {.type = SIM_EV_RESTART, .node = (uint8_t)v};
        sim_schedule(s, s->now_us + (1 + rand_below(&s->rng, 40)) * SIM_TICK_US, &ev);
    }
}

/* A crash and an almost immediate restart (a process supervisor). */
static void sim_nemesis__bounce(struct sim *s, int victim) {
    if (victim < 0) return;
    sim_node_crash(s, (uint8_t)victim);
    struct sim_event ev = {.type = SIM_EV_RESTART, .node = (uint8_t)victim};
    sim_schedule(s, s->now_us + rand_below(&s->rng, 3 * SIM_TICK_US), &ev);
}

static void sim_nemesis__act(struct sim *s) {
    uint64_t r = rand_below(&s->rng, 100);
    int leader = sim_leader_slot(s);
    if (r < 12) {
        sim_nemesis__partition(s);
    } else if (r < 18) {
        sim_nemesis__isolate(s, leader);
    } else if (r < 22) {
        sim_nemesis__one_way(s);
    } else if (r < 32) {
        sim_nemesis__heal_network(s);
        sim_notef(s, "nemesis: heal network");
    } else if (r < 42) {
        int victim = rand_chance(&s->rng, 40) ? leader : sim_nemesis__random_alive(s);
        if (victim >= 0) sim_nemesis_crash(s, (uint8_t)victim);
    } else if (r < 50) {
        sim_nemesis__bounce(s, rand_chance(&s->rng, 50) ? leader : sim_nemesis__random_alive(s));
    } else if (r < 54) {
        sim_nemesis__crash_many(s);
    } else if (r < 60) {
        sim_nemesis__network_quality(s);
    } else if (r < 64) {
        int victim = sim_nemesis__random_alive(s);
        if (victim >= 0) s->nodes[victim].slow_disk = !s->nodes[victim].slow_disk;
    } else if (r < 72) {
        sim_nemesis__transfer(s, leader);
    } else if (r < 82) {
        sim_nemesis__conf_change(s, leader);
    } else if (r < 88) {
        s->ambush = true;
        sim_notef(s, "nemesis: ambush the next new leader");
    }
}

void sim_nemesis_step(struct sim *s) {
    if (s->healed || s->violated) return;
    sim_check_logs(s);
    sim_nemesis__reap(s);
    sim_nemesis__act(s);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        if (s->nodes[i].alive && !s->nodes[i].persisting) sim_node_pump(s, (uint8_t)i);
    }
    struct sim_event ev = {.type = SIM_EV_NEMESIS};
    sim_schedule(s, s->now_us + (5 + rand_below(&s->rng, 35)) * SIM_TICK_US, &ev);
}

/* Leader churn at its worst moment: a new leader dies within a tick of
 * winning, often after some followers took its first appends and before
 * its no-op reached a majority (where figure 3.7's bug lives). */
void sim_nemesis_new_leader(struct sim *s, uint8_t slot) {
    if (!s->ambush || s->healed) return;
    s->ambush = false;
    struct sim_event ev = {.type = SIM_EV_CRASH, .node = slot};
    sim_schedule(s, s->now_us + rand_below(&s->rng, SIM_TICK_US), &ev);
    sim_notef(s, "nemesis: ambush n%llu, new leader", (unsigned long long)s->nodes[slot].id);
}

void sim_nemesis_heal(struct sim *s) {
    s->healed = true;
    sim_nemesis__heal_network(s);
    for (uint32_t i = 0; i < s->n_slots; i++) {
        struct sim_node *n = &s->nodes[i];
        n->slow_disk = false;
        if (n->exists && !n->alive && !n->removed) sim_node_start(s, (uint8_t)i);
    }
    sim_notef(s, "nemesis: faults stop; everything healed and restarted");
    /* keep reaping removed nodes after the heal */
    struct sim_event ev = {.type = SIM_EV_NEMESIS_REAP};
    sim_schedule(s, s->now_us + 20 * SIM_TICK_US, &ev);
}

void sim_nemesis_reap(struct sim *s) {
    sim_nemesis__reap(s);
    struct sim_event ev = {.type = SIM_EV_NEMESIS_REAP};
    sim_schedule(s, s->now_us + 20 * SIM_TICK_US, &ev);
}
