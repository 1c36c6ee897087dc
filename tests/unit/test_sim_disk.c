/* test_sim_disk.c: the simulator's disk: replay semantics, a torn final
 * record cut on recovery, and corruption elsewhere refused with the offset. */
#include <stdlib.h>

#include "sim/sim.h"
#include "test.h"

static void put_entry(struct sim_disk *d, uint64_t term, uint64_t index, const char *data) {
    struct raft_entry e = {.term = term, .index = index, .type = RAFT_ENTRY_NORMAL,
                           .len = (uint32_t)strlen(data), .data = (uint8_t *)data};
    sim_disk_write_entry(d, &e);
}

TEST(replay_overwrites_suffix) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    put_entry(&d, 1, 2, "b");
    put_entry(&d, 1, 3, "c");
    put_entry(&d, 2, 2, "B"); /* a new leader overwrote from index 2 */
    struct raft_hard_state hs = {.term = 2, .vote = 3, .commit = 2};
    sim_disk_write_hard_state(&d, &hs);
    sim_disk_sync(&d);
    struct sim_recovered rec;
    char why[128];
    CHECK(sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK_EQ_U64(rec.n_entries, 2);
    CHECK_EQ_U64(rec.entries[1].term, 2);
    CHECK(rec.entries[1].data[0] == 'B');
    CHECK(rec.has_hard_state);
    CHECK_EQ_U64(rec.hard.vote, 3);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

TEST(torn_tail_is_cut) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    sim_disk_sync(&d);
    uint64_t synced = d.len;
    put_entry(&d, 1, 2, "bbbbbbbb");
    sim_disk_crash(&d, 5); /* 5 bytes of the second record reached the disk */
    CHECK_EQ_U64(d.len, synced + 5);
    struct sim_recovered rec;
    char why[128];
    CHECK(sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK_EQ_U64(rec.n_entries, 1);
    CHECK_EQ_U64(rec.truncated_bytes, 5);
    CHECK_EQ_U64(d.len, synced);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

TEST(crash_loses_unsynced) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    sim_disk_sync(&d);
    put_entry(&d, 1, 2, "b");
    sim_disk_crash(&d, 0);
    struct sim_recovered rec;
    char why[128];
    CHECK(sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK_EQ_U64(rec.n_entries, 1);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

TEST(corruption_in_the_middle_stops_with_offset) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    uint64_t second = d.len;
    put_entry(&d, 1, 2, "b");
    put_entry(&d, 1, 3, "c");
    sim_disk_sync(&d);
    d.bytes[second + 10] ^= 0x40; /* flip a bit inside the second record */
    struct sim_recovered rec;
    char why[128] = "";
    CHECK(!sim_disk_recover(&d, &rec, why, sizeof(why)));
    char expect[64];
    snprintf(expect, sizeof(expect), "offset %llu", (unsigned long long)second);
    CHECK(strstr(why, expect) != NULL);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

TEST(snapshot_keeps_matching_suffix) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    put_entry(&d, 1, 2, "b");
    put_entry(&d, 1, 3, "c");
    struct raft_snapshot_meta meta = {.index = 2, .term = 1};
    meta.conf.n_voters = 1;
    meta.conf.voters[0] = 1;
    sim_disk_write_snapshot(&d, &meta, (const uint8_t *)"SNAP", 4);
    sim_disk_sync(&d);
    struct sim_recovered rec;
    char why[128];
    CHECK(sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK(rec.has_snapshot);
    CHECK_EQ_U64(rec.snapshot.index, 2);
    CHECK_EQ_U64(rec.snapshot_size, 4);
    CHECK_EQ_U64(rec.n_entries, 1);
    CHECK_EQ_U64(rec.entries[0].index, 3);
    sim_recovered_free(&rec);
    /* a snapshot from a leader, at a point our log does not have, replaces it */
    struct raft_snapshot_meta other = meta;
    other.index = 3;
    other.term = 5;
    sim_disk_write_snapshot(&d, &other, (const uint8_t *)"X", 1);
    sim_disk_sync(&d);
    CHECK(sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK_EQ_U64(rec.n_entries, 0);
    CHECK_EQ_U64(rec.snapshot.term, 5);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

TEST(gap_after_snapshot_is_corruption) {
    struct sim_disk d = {0};
    put_entry(&d, 1, 1, "a");
    put_entry(&d, 1, 3, "c"); /* index 2 is missing */
    sim_disk_sync(&d);
    struct sim_recovered rec;
    char why[128] = "";
    CHECK(!sim_disk_recover(&d, &rec, why, sizeof(why)));
    CHECK(strstr(why, "offset") != NULL);
    sim_recovered_free(&rec);
    sim_disk_free(&d);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(replay_overwrites_suffix),
        TEST_ENTRY(torn_tail_is_cut),
        TEST_ENTRY(crash_loses_unsynced),
        TEST_ENTRY(corruption_in_the_middle_stops_with_offset),
        TEST_ENTRY(snapshot_keeps_matching_suffix),
        TEST_ENTRY(gap_after_snapshot_is_corruption),
    };
    return test_run("sim_disk", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
