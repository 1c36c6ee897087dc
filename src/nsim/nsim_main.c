/* nsim_main.c: the shoal-nsim command line (whole nodes in simulation).
 *
 *   shoal-nsim --seeds N [--start S]   run seeds S..S+N-1, stop at the first
 *                                      violation, naming seed and property
 *   shoal-nsim --seed S [--trace]      replay one seed, optionally traced
 *   shoal-nsim --seconds T [--start S] run seeds until T seconds pass (soak)
 *   --shards K                         every seed with K shards (1-4), not
 *                                      the layout the seed chooses
 *   shoal-nsim --scenarios             the scenarios (nsim_scenario.c): one
 *                                      node or three on a frozen clock, each
 *                                      checking one promise of the shard
 *   --strings-only                     string keys only (no hash or sorted-set
 *                                      register): the workload before those,
 *                                      to replay a seed recorded then
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nsim/nsim.h"

static double nsim_main__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool nsim_main__u64(const char *text, uint64_t *out) {
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0') return false;
    *out = v;
    return true;
}

static void nsim_main__add(struct nsim_stats *sum, const struct nsim_stats *s) {
    uint64_t elect_ms = s->quiet_elect_ms > sum->quiet_elect_ms ? s->quiet_elect_ms
                                                                : sum->quiet_elect_ms;
    uint64_t stepdown_ms = s->quiet_stepdown_ms > sum->quiet_stepdown_ms
                               ? s->quiet_stepdown_ms
                               : sum->quiet_stepdown_ms;
    const uint64_t *from = (const uint64_t *)s;
    uint64_t *to = (uint64_t *)sum;
    for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++) to[i] += from[i];
    sum->applied_max = s->applied_max > sum->applied_max ? s->applied_max : sum->applied_max;
    sum->quiet_elect_ms = elect_ms;
    sum->quiet_stepdown_ms = stepdown_ms;
}

int main(int argc, char **argv) {
    uint64_t seeds = 0, start = 1, seconds = 0, one = 0, shards = 0;
    bool have_one = false, trace = false, quiet = false, strings_only = false;
    bool set_get = true;
    bool set_get_asked = false;
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (strcmp(argv[i], "--seeds") == 0 && has_value && nsim_main__u64(argv[i + 1], &seeds)) {
            i++;
        } else if (strcmp(argv[i], "--start") == 0 && has_value &&
                   nsim_main__u64(argv[i + 1], &start)) {
            i++;
        } else if (strcmp(argv[i], "--seed") == 0 && has_value &&
                   nsim_main__u64(argv[i + 1], &one)) {
            have_one = true;
            i++;
        } else if (strcmp(argv[i], "--seconds") == 0 && has_value &&
                   nsim_main__u64(argv[i + 1], &seconds)) {
            i++;
        } else if (strcmp(argv[i], "--shards") == 0 && has_value &&
                   nsim_main__u64(argv[i + 1], &shards) && shards <= 4) {
            i++;
        } else if (strcmp(argv[i], "--scenarios") == 0) {
            return nsim_scenarios();
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--strings-only") == 0) {
            strings_only = true;
        } else if (strcmp(argv[i], "--set-get") == 0 || strcmp(argv[i], "--no-set-get") == 0) {
            set_get = argv[i][2] == 's';
            set_get_asked = true;
        } else {
            fprintf(stderr, "usage: shoal-nsim --seeds N [--start S] [--quiet] [--shards K] [--strings-only] [--no-set-get]\n"
                            "       shoal-nsim --seed S [--trace] [--shards K]\n"
                            "       shoal-nsim --scenarios\n"
                            "       shoal-nsim --seconds T [--start S] [--shards K]\n");
            return 2;
        }
    }
    /* the seeds recorded before SET ... GET replay with the workload they had */
    if (strings_only && !set_get_asked) set_get = false;
    if (have_one) {
        start = one;
        seeds = 1;
    }
    if (seeds == 0 && seconds == 0) seeds = 100;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct nsim_stats sum;
    memset(&sum, 0, sizeof(sum));
    double began = nsim_main__now();
    uint64_t ran = 0;
    for (uint64_t seed = start;; seed++) {
        if (seeds > 0 && ran >= seeds) break;
        if (seeds == 0 && nsim_main__now() - began >= (double)seconds) break;
        struct nsim_options opt = {.seed = seed, .trace = trace, .shards = (uint32_t)shards,
                                   .strings_only = strings_only, .set_get = set_get};
        struct nsim_stats st;
        char why[1024];
        int rc = nsim_run(&opt, &st, why, sizeof(why));
        ran++;
        nsim_main__add(&sum, &st);
        if (have_one || (!quiet && ran % 50 == 0)) {
            printf("seed %llu: %llu ms simulated, %llu events, ops ok %llu failed %llu unknown "
                   "%llu, applied %llu, kills %llu, power losses %llu (torn %llu), fsync "
                   "errors %llu, elections %llu\n",
                   (unsigned long long)seed, (unsigned long long)st.sim_ms,
                   (unsigned long long)st.events, (unsigned long long)st.ops_ok,
                   (unsigned long long)st.ops_failed, (unsigned long long)st.ops_unknown,
                   (unsigned long long)st.applied_max, (unsigned long long)st.kills,
                   (unsigned long long)st.power_losses, (unsigned long long)st.torn_writes,
                   (unsigned long long)st.fsync_errors, (unsigned long long)st.elections);
        }
        if (rc != 0) {
            printf("VIOLATION seed %llu: %s\n", (unsigned long long)seed, why);
            printf("replay: shoal-nsim --seed %llu --trace\n", (unsigned long long)seed);
            printf("seeds: %llu, violations: 1\n", (unsigned long long)ran);
            return 1;
        }
    }
    double secs = nsim_main__now() - began;
    printf("%.1f seeds/s, %.0f simulated s/s; %llu ops (ok %llu, failed %llu, unknown %llu; "
           "%llu connections closed after a timeout), "
           "%llu kills, %llu power losses (%llu torn writes), %llu fsync errors, %llu partitions, "
           "%llu slow disks, %llu full disks, %llu restarts, %llu elections, %llu snapshots "
           "(%llu failed, %llu installed from a leader), %llu frames (%llu "
           "corrupt, dropped), %llu key histories (%llu undecided); %llu seeds sharded; "
           "quiet scenario in %llu seeds: %llu groups quiet at its fault, %llu of them led by "
           "the victim, re-elected within %llu ms at most; %llu victims cut off, each "
           "stepped down within %llu ms at most\n",
           ran / secs, sum.sim_ms / 1000.0 / secs,
           (unsigned long long)(sum.ops_ok + sum.ops_failed + sum.ops_unknown),
           (unsigned long long)sum.ops_ok, (unsigned long long)sum.ops_failed,
           (unsigned long long)sum.ops_unknown, (unsigned long long)sum.conns_closed,
           (unsigned long long)sum.kills,
           (unsigned long long)sum.power_losses, (unsigned long long)sum.torn_writes,
           (unsigned long long)sum.fsync_errors, (unsigned long long)sum.partitions,
           (unsigned long long)sum.slow_disks, (unsigned long long)sum.disk_fulls,
           (unsigned long long)sum.restarts, (unsigned long long)sum.elections,
           (unsigned long long)sum.snapshots, (unsigned long long)sum.snapshot_failures,
           (unsigned long long)sum.snapshots_installed,
           (unsigned long long)sum.frames, (unsigned long long)sum.bad_frames,
           (unsigned long long)sum.histories, (unsigned long long)sum.lin_unknown,
           (unsigned long long)sum.sharded, (unsigned long long)sum.quiet_seeds,
           (unsigned long long)sum.quiet_groups, (unsigned long long)sum.quiet_led,
           (unsigned long long)sum.quiet_elect_ms, (unsigned long long)sum.quiet_cut_off,
           (unsigned long long)sum.quiet_stepdown_ms);
    printf("queue and stream workers (nsim_queue.c): %llu acknowledged operations\n",
           (unsigned long long)sum.queue_ops);
    printf("links: %llu beats, %llu of them to a node sharing no group; %llu seeds with nodes "
           "outside group 0 (pulling the map), %llu pairs of nodes sharing no group\n",
           (unsigned long long)sum.beats, (unsigned long long)sum.beats_outside,
           (unsigned long long)sum.pull_seeds, (unsigned long long)sum.unshared_pairs);
    printf("seeds: %llu, violations: 0\n", (unsigned long long)ran);
    return 0;
}
