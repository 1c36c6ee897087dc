/* nsim.h: the whole-node simulator (build/shoal-nsim). Where shoal-sim
 * (src/sim/) runs bare Raft cores, this runs whole nodes: the same
 * node_core.c and shard.c as `shoal server` (WAL, recovery, snapshots,
 * command execution, replies), their peer messages encoded and decoded as
 * wire frames, and their files on a simulated disk (nsim_io.c) that loses
 * unsynced writes, tears the last one, fails fsync and runs slow, all from
 * one seed. Clients send RESP commands and their history is checked for
 * linearizability with src/check/lin.c. Internal to src/nsim/. */
#ifndef SHOAL_NSIM_H
#define SHOAL_NSIM_H

#include <stdbool.h>
#include <stdint.h>

#include "io/io.h"
#include "util/rand.h"

/* ---- the simulated file system (nsim_io.c) ---- */

struct nsim_fs;

struct nsim_fs_faults {
    uint32_t fail_syncs; /* the next N syncs fail with -EIO (and drop the dirty data) */
    bool lying;          /* syncs return 0 without reaching the disk (a crash follows) */
    bool full;           /* the disk is full: growing a file fails with -ENOSPC */
};

struct nsim_fs_stats {
    uint64_t writes, bytes_written, syncs, sync_errors, crashes, torn_writes, lost_ops;
    uint64_t enospc; /* writes refused while full */
};

struct nsim_fs *nsim_fs_create(void);
void nsim_fs_destroy(struct nsim_fs *fs);
void nsim_fs_io(struct nsim_fs *fs, struct io *io); /* the io table over fs */
struct nsim_fs_faults *nsim_fs_faults(struct nsim_fs *fs);
const struct nsim_fs_stats *nsim_fs_stats(const struct nsim_fs *fs);
/* Every handle closes. power_loss: each file keeps its synced image plus a
 * random prefix of the later writes, the last possibly torn; otherwise (the
 * process died, the kernel lives) everything written survives. Names
 * survive as of the last dir_sync() on power loss, all of them otherwise. */
void nsim_fs_crash(struct nsim_fs *fs, bool power_loss, struct rand *rng);

/* ---- the simulation (nsim.c) ---- */

struct nsim_options {
    uint64_t seed;
    bool trace; /* every event and node log line, to stdout */
    uint32_t shards; /* 0: chosen per seed (1-4); else this many */
    bool strings_only; /* no hash or sorted-set keys: the workload of the
                        * seeds recorded before they existed (replays) */
    bool set_get; /* the key with expiry is also written with SET ... GET, whose
                   * answer depends on the clock of the write's proposal, not of
                   * its place in the log (docs/nsim.md, "Expiry and
                   * linearizability"): on, except with --strings-only or
                   * --no-set-get */
};

struct nsim_stats {
    uint64_t sim_ms, ticks, events;
    uint64_t ops_ok, ops_failed, ops_unknown;
    uint64_t conns_closed; /* connections a client closed after a timeout */
    uint64_t kills, power_losses, torn_writes, fsync_errors, partitions, slow_disks;
    uint64_t disk_fulls, snapshot_failures;
    uint64_t restarts, elections, snapshots, snapshots_installed, frames, bad_frames;
    uint64_t histories, lin_unknown;
    uint64_t sharded; /* seeds with more than one shard */
    uint64_t applied_max;
    /* the quiet-group scenario: seeds that ran it, groups quiet on every
     * replica at its fault, of them led by the victim, and the slowest
     * new leader of one (ms after the fault; the sum over seeds); faults
     * that cut the victim off, and the slowest step-down of one (ms after
     * the fault until it led none of its groups; the most over seeds) */
    uint64_t quiet_seeds, quiet_groups, quiet_led, quiet_elect_ms;
    uint64_t quiet_cut_off, quiet_stepdown_ms;
    uint64_t queue_ops; /* the queue workers' acknowledged operations (nsim_queue.c) */
    /* beats sent, of them to a node sharing no group (a violation); seeds
     * whose group 0 leaves nodes out (they pull the map), and pairs of
     * nodes sharing no group (links that carry no beat) */
    uint64_t beats, beats_outside, pull_seeds, unshared_pairs;
};

/* Runs one seed; 0 if every check passed, 1 with a message in why. */
int nsim_run(const struct nsim_options *opt, struct nsim_stats *stats, char *why, size_t why_cap);

/* Runs the scenarios (nsim_scenario.c): prints `ok NAME` or `FAIL NAME: why`
 * for each, then `scenarios: N passed, N failed`; 0 if all passed. */
int nsim_scenarios(void);

#endif
