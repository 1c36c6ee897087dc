/* test_wal.c: the write-ahead log on real files in a temporary directory
 * under /tmp, with real fsyncs, through io_fault (which can fail a call or
 * "crash" by cutting files back to what was synced). One test per claim of
 * wal.h, then a randomized test against an in-memory model.
 *
 * Canaries: built with -DCANARY_WAL_ACCEPT_BAD_CRC the reader skips the CRC
 * check; bad_crc_in_the_middle_is_refused must then fail. Built with
 * -DCANARY_WAL_NO_ZEROS no zeros are written ahead of the records;
 * zeros_ahead_of_the_records must then fail. */
#include <fcntl.h>
#include <ftw.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "io/io_fault.h"
#include "test.h"
#include "util/crc32c.h"
#include "util/rand.h"
#include "wal/wal.h"

#define SEGMENT_BYTES (64u * 1024)
#define SEGMENT_HEADER_BYTES (WAL_RECORD_HEADER_BYTES + WAL_SEGMENT_HEADER_PAYLOAD_BYTES)

/* ---- fixture: a temporary directory, io_posix wrapped in io_fault ---- */

/* Every fixture's directory lives under this one, which main() removes at
 * the end even when a failed CHECK returned before a fixture was freed. */
static char test_root[64];

struct fx {
    char dir[96];
    struct io posix;
    struct io_fault *fault;
    struct io *io;
    struct wal_options options;
    struct wal *wal;
    struct wal_recovered rec;
};

static int fx_init(struct fx *fx, uint64_t seed) {
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "%s/t-XXXXXX", test_root);
    if (mkdtemp(fx->dir) == NULL) return -1;
    io_posix_init(&fx->posix);
    if (io_fault_create(&fx->posix, seed, &fx->fault) != 0) return -1;
    fx->io = io_fault_io(fx->fault);
    wal_options_default(&fx->options);
    fx->options.segment_bytes = SEGMENT_BYTES;
    return 0;
}

static void fx_close(struct fx *fx) {
    wal_close(fx->wal);
    fx->wal = NULL;
}

/* Closes the WAL (if open) and opens it again, replaying into fx->rec. */
static int fx_open(struct fx *fx) {
    fx_close(fx);
    wal_recovered_free(&fx->rec);
    return wal_open(fx->io, fx->dir, &fx->options, &fx->wal, &fx->rec);
}

static int fx_unlink_cb(void *arg, const char *name) {
    struct fx *fx = arg;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    fx->posix.unlink(&fx->posix, path);
    return 0;
}

static void fx_free(struct fx *fx) {
    fx_close(fx);
    wal_recovered_free(&fx->rec);
    fx->posix.list(&fx->posix, fx->dir, fx_unlink_cb, fx);
    rmdir(fx->dir);
    io_fault_destroy(fx->fault);
}

static int count_cb(void *arg, const char *name) {
    (void)name;
    (*(int *)arg)++;
    return 0;
}

static int fx_files(struct fx *fx) {
    int n = 0;
    fx->posix.list(&fx->posix, fx->dir, count_cb, &n);
    return n;
}

static void fx_segment_path(const struct fx *fx, uint64_t seq, char *out, size_t n) {
    snprintf(out, n, "%s/%020llu.wal", fx->dir, (unsigned long long)seq);
}

/* Overwrites bytes of a segment file behind the WAL's back. */
static int fx_poke(struct fx *fx, uint64_t seq, uint64_t offset, const void *bytes, size_t n) {
    char path[256];
    fx_segment_path(fx, seq, path, sizeof(path));
    int h;
    int rc = fx->posix.open(&fx->posix, path, IO_OPEN_WRITE, &h);
    if (rc != 0) return rc;
    rc = fx->posix.pwrite(&fx->posix, h, bytes, n, offset);
    fx->posix.close(&fx->posix, h);
    return rc;
}

static int fx_peek(struct fx *fx, uint64_t seq, uint64_t offset, void *bytes, size_t n) {
    char path[256];
    fx_segment_path(fx, seq, path, sizeof(path));
    int h;
    int rc = fx->posix.open(&fx->posix, path, 0, &h);
    if (rc != 0) return rc;
    size_t got = 0;
    rc = fx->posix.pread(&fx->posix, h, bytes, n, offset, &got);
    fx->posix.close(&fx->posix, h);
    return rc != 0 ? rc : (got == n ? 0 : -1);
}

/* ---- entries whose content follows from (group, index, term) ---- */

static uint64_t mix(uint64_t group, uint64_t index, uint64_t term) {
    uint64_t x = group * 0x9e3779b97f4a7c15ull ^ index * 0xbf58476d1ce4e5b9ull ^ term;
    x ^= x >> 31;
    return x * 0x94d049bb133111ebull;
}

static uint8_t data_byte(uint64_t group, uint64_t index, uint64_t term, uint32_t j) {
    return (uint8_t)(mix(group, index, term) >> 8) + (uint8_t)(j * 7);
}

/* Builds n entries [first, first + n) of `term`, each `len` bytes (or a
 * length derived from the entry if len == UINT32_MAX, below len_max). */
static struct raft_entry *make_entries(uint64_t group, uint64_t first, uint32_t n,
                                       uint64_t term, uint32_t len, uint32_t len_max) {
    struct raft_entry *es = calloc(n, sizeof(*es));
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry *e = &es[i];
        e->index = first + i;
        e->term = term;
        e->type = (uint8_t)(e->index % 2);
        e->len = len != UINT32_MAX ? len : (uint32_t)(mix(group, e->index, term) % len_max);
        e->data = e->len > 0 ? malloc(e->len) : NULL;
        for (uint32_t j = 0; j < e->len; j++) e->data[j] = data_byte(group, e->index, term, j);
    }
    return es;
}

static void free_entries(struct raft_entry *es, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) free(es[i].data);
    free(es);
}

static int append(struct wal *wal, uint64_t group, uint64_t first, uint32_t n, uint64_t term,
                  uint32_t len) {
    struct raft_entry *es = make_entries(group, first, n, term, len, 300);
    int rc = wal_append_entries(wal, group, es, n);
    free_entries(es, n);
    return rc;
}

static bool entry_ok(const struct raft_entry *e, uint64_t group, uint64_t index, uint64_t term) {
    if (e->index != index || e->term != term || e->type != index % 2) return false;
    for (uint32_t j = 0; j < e->len; j++) {
        if (e->data[j] != data_byte(group, index, term, j)) return false;
    }
    return true;
}

static const struct wal_group_state *find_group(const struct wal_recovered *rec, uint64_t id) {
    for (uint32_t i = 0; i < rec->n_groups; i++) {
        if (rec->groups[i].group == id) return &rec->groups[i];
    }
    return NULL;
}

struct reports {
    uint32_t n;
    struct wal_durable d[512];
};

static void report_cb(void *arg, const struct wal_durable *d) {
    struct reports *r = arg;
    if (r->n < 512) r->d[r->n] = *d;
    r->n++;
}

/* ---- scenario tests ---- */

/* Many groups interleaved, several batches and segments, then a restart:
 * every group gets back its entries and last hard state; the durable
 * reports name each group's last position; the log goes on after reopen. */
TEST(round_trip_many_groups) {
    struct fx fx;
    CHECK(fx_init(&fx, 1) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.n_groups, 0);
    struct reports rep = {0};
    for (uint64_t round = 0; round < 5; round++) {
        for (uint64_t g = 1; g <= 64; g++) {
            CHECK(append(fx.wal, g * 1000, round * 5 + 1, 5, round + 1, UINT32_MAX) == WAL_OK);
            struct raft_hard_state hs = {.term = round + 1, .vote = g, .commit = round * 5};
            CHECK(wal_append_hard_state(fx.wal, g * 1000, &hs) == WAL_OK);
        }
        rep.n = 0;
        CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_OK);
        CHECK_EQ_U64(rep.n, 64);
    }
    for (uint32_t i = 0; i < rep.n; i++) {
        CHECK(rep.d[i].has_entries && rep.d[i].last_index == 25 && rep.d[i].last_term == 5);
        CHECK(rep.d[i].has_hard_state && rep.d[i].hard_state.commit == 20);
    }
    struct wal_stats st;
    wal_stats(fx.wal, &st);
    CHECK(st.segments >= 2);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.n_groups, 64);
    CHECK_EQ_U64(fx.rec.truncated_bytes, 0);
    for (uint64_t g = 1; g <= 64; g++) {
        const struct wal_group_state *s = &fx.rec.groups[g - 1];
        CHECK_EQ_U64(s->group, g * 1000);
        CHECK_EQ_U64(s->n_entries, 25);
        for (uint32_t i = 0; i < 25; i++)
            CHECK(entry_ok(&s->entries[i], g * 1000, i + 1, i / 5 + 1));
        CHECK(s->has_hard_state && s->hard_state.term == 5 && s->hard_state.vote == g);
        CHECK(!s->has_snapshot);
    }
    CHECK(append(fx.wal, 3000, 26, 3, 6, 10) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(find_group(&fx.rec, 3000)->n_entries, 28);
    CHECK(entry_ok(&find_group(&fx.rec, 3000)->entries[27], 3000, 28, 6));
    fx_free(&fx);
}

/* Group commit: the records of 100 groups become durable with one pwrite
 * and one fdatasync. */
TEST(one_fdatasync_covers_every_group) {
    struct fx fx;
    CHECK(fx_init(&fx, 16) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 1, 1, 10) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK); /* creates segment 1 */
    uint64_t syncs = io_fault_calls(fx.fault, IO_FAULT_SYNC);
    uint64_t writes = io_fault_calls(fx.fault, IO_FAULT_WRITE);
    for (uint64_t g = 1; g <= 100; g++) {
        CHECK(append(fx.wal, g, g == 1 ? 2 : 1, 2, 1, 40) == WAL_OK);
        struct raft_hard_state hs = {.term = 1, .vote = g, .commit = 1};
        CHECK(wal_append_hard_state(fx.wal, g, &hs) == WAL_OK);
    }
    struct reports rep = {0};
    CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_OK);
    CHECK_EQ_U64(rep.n, 100);
    CHECK_EQ_U64(io_fault_calls(fx.fault, IO_FAULT_SYNC) - syncs, 1);
    CHECK_EQ_U64(io_fault_calls(fx.fault, IO_FAULT_WRITE) - writes, 1);
    fx_free(&fx);
}

/* A later entry at index i replaces the suffix from i, across batches and
 * inside one batch; appends that would leave a gap are refused. */
TEST(overwrite_of_a_suffix) {
    struct fx fx;
    CHECK(fx_init(&fx, 2) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 7, 1, 5, 1, 20) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 7, 3, 2, 2, 20) == WAL_OK); /* 3, 4 of term 2; 5 gone */
    CHECK(append(fx.wal, 7, 5, 2, 2, 20) == WAL_OK);
    CHECK(append(fx.wal, 7, 6, 1, 3, 20) == WAL_OK); /* 6 again, in the same batch */
    CHECK(append(fx.wal, 7, 9, 1, 3, 20) == WAL_EINVAL); /* a gap */
    CHECK(wal_failed(fx.wal) == WAL_OK);
    struct reports rep = {0};
    CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_OK);
    CHECK_EQ_U64(rep.n, 1);
    CHECK(rep.d[0].last_index == 6 && rep.d[0].last_term == 3);
    CHECK(fx_open(&fx) == WAL_OK);
    const struct wal_group_state *s = find_group(&fx.rec, 7);
    CHECK(s != NULL);
    CHECK_EQ_U64(s->n_entries, 6);
    uint64_t terms[6] = {1, 1, 2, 2, 2, 3};
    for (uint32_t i = 0; i < 6; i++) CHECK(entry_ok(&s->entries[i], 7, i + 1, terms[i]));
    CHECK(append(fx.wal, 7, 2, 1, 4, 20) == WAL_OK); /* truncation right after a restart */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    s = find_group(&fx.rec, 7);
    CHECK_EQ_U64(s->n_entries, 2);
    CHECK(entry_ok(&s->entries[1], 7, 2, 4));
    fx_free(&fx);
}

/* The last hard state wins; one never flushed is not recovered. */
TEST(hard_state_last_wins) {
    struct fx fx;
    CHECK(fx_init(&fx, 3) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    struct raft_hard_state hs[4] = {{1, 1, 0}, {2, 3, 0}, {3, 0, 4}, {9, 9, 9}};
    CHECK(wal_append_hard_state(fx.wal, 5, &hs[0]) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 5, &hs[1]) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 5, &hs[2]) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 6, &hs[0]) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 5, &hs[3]) == WAL_OK); /* dropped by close */
    CHECK(fx_open(&fx) == WAL_OK);
    const struct wal_group_state *s = find_group(&fx.rec, 5);
    CHECK(s != NULL && s->has_hard_state && s->n_entries == 0);
    CHECK(s->hard_state.term == 3 && s->hard_state.vote == 0 && s->hard_state.commit == 4);
    CHECK(find_group(&fx.rec, 6)->hard_state.term == 1);
    fx_free(&fx);
}

/* Replay of marks: a compaction mark drops the entries up to it, an
 * installed snapshot drops them all; marks never go backwards. */
TEST(snapshot_mark_replay_rules) {
    struct fx fx;
    CHECK(fx_init(&fx, 4) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    const enum wal_mark_kind compacted = WAL_MARK_COMPACTED;
    const enum wal_mark_kind installed = WAL_MARK_INSTALLED;
    CHECK(append(fx.wal, 1, 1, 10, 1, 8) == WAL_OK);
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 4, 1, compacted) == WAL_OK); /* keeps 5..10 */
    CHECK(append(fx.wal, 2, 1, 10, 1, 8) == WAL_OK);
    CHECK(wal_append_snapshot_mark(fx.wal, 2, 6, 2, installed) == WAL_OK); /* drops all */
    CHECK(append(fx.wal, 3, 1, 3, 1, 8) == WAL_OK);
    CHECK(wal_append_snapshot_mark(fx.wal, 3, 20, 5, installed) == WAL_OK);
    CHECK(append(fx.wal, 3, 22, 1, 5, 8) == WAL_EINVAL); /* must follow the snapshot */
    CHECK(append(fx.wal, 3, 21, 2, 5, 8) == WAL_OK);
    CHECK(append(fx.wal, 1, 4, 1, 1, 8) == WAL_EINVAL);                       /* at the mark */
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 3, 1, compacted) == WAL_EINVAL); /* backwards */
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 4, 2, compacted) == WAL_EINVAL); /* other term */
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 4, 1, compacted) == WAL_OK);     /* a no-op */
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 5, 1, 7) == WAL_EINVAL);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    const struct wal_group_state *s = find_group(&fx.rec, 1);
    CHECK(s->has_snapshot && s->snapshot_index == 4 && s->snapshot_term == 1);
    CHECK_EQ_U64(s->n_entries, 6);
    CHECK(entry_ok(&s->entries[0], 1, 5, 1));
    s = find_group(&fx.rec, 2);
    CHECK(s->has_snapshot && s->snapshot_index == 6 && s->n_entries == 0);
    s = find_group(&fx.rec, 3);
    CHECK(s->snapshot_index == 20 && s->n_entries == 2);
    CHECK(entry_ok(&s->entries[0], 3, 21, 5));
    fx_free(&fx);
}

/* gc retires segments whose records are all obsolete, the next flush
 * deletes them; a group whose only hard state sits in the oldest segment
 * is copied forward; groups whose entries pin a segment are named. */
TEST(snapshot_marks_and_gc_delete_segments) {
    struct fx fx;
    CHECK(fx_init(&fx, 5) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    struct raft_hard_state idle = {.term = 7, .vote = 7, .commit = 0};
    CHECK(wal_append_hard_state(fx.wal, 3, &idle) == WAL_OK); /* never written again */
    for (uint64_t i = 1; i <= 150; i += 10) {
        CHECK(append(fx.wal, 1, i, 10, 1, 1000) == WAL_OK);
        CHECK(append(fx.wal, 2, i, 10, 1, 1000) == WAL_OK);
        CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    }
    struct wal_stats st;
    wal_stats(fx.wal, &st);
    CHECK(st.segments >= 5);
    CHECK_EQ_U64(fx_files(&fx), st.segments);
    uint32_t retired = 99;
    CHECK(wal_gc(fx.wal, &retired) == WAL_OK);
    CHECK_EQ_U64(retired, 0);
    uint64_t pins[4];
    CHECK_EQ_U64(wal_pinning_groups(fx.wal, pins, 4), 2);
    struct raft_hard_state hs = {.term = 1, .vote = 1, .commit = 150};
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 150, 1, WAL_MARK_COMPACTED) == WAL_OK);
    CHECK(wal_append_snapshot_mark(fx.wal, 2, 100, 1, WAL_MARK_COMPACTED) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 1, &hs) == WAL_OK);
    CHECK(wal_append_hard_state(fx.wal, 2, &hs) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_gc(fx.wal, &retired) == WAL_OK); /* group 3's hard state pins segment 1 */
    CHECK_EQ_U64(retired, 0);
    CHECK(wal_has_pending(fx.wal)); /* ... so it was copied forward */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_gc(fx.wal, &retired) == WAL_OK);
    CHECK(retired >= 2);
    CHECK_EQ_U64(wal_pinning_groups(fx.wal, pins, 4), 1);
    CHECK_EQ_U64(pins[0], 2);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK); /* deletes them */
    wal_stats(fx.wal, &st);
    CHECK_EQ_U64(fx_files(&fx), st.segments);
    CHECK(st.first_seq > 1);
    CHECK(fx_open(&fx) == WAL_OK);
    const struct wal_group_state *s = find_group(&fx.rec, 2);
    CHECK(s->has_snapshot && s->snapshot_index == 100 && s->n_entries == 50);
    CHECK(entry_ok(&s->entries[0], 2, 101, 1));
    CHECK(s->has_hard_state && s->hard_state.commit == 150);
    s = find_group(&fx.rec, 1);
    CHECK(s->has_snapshot && s->snapshot_index == 150 && s->n_entries == 0);
    s = find_group(&fx.rec, 3);
    CHECK(s != NULL && s->has_hard_state && s->hard_state.term == 7);
    CHECK(wal_append_snapshot_mark(fx.wal, 2, 150, 1, WAL_MARK_COMPACTED) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_gc(fx.wal, &retired) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_gc(fx.wal, &retired) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    wal_stats(fx.wal, &st);
    CHECK(st.segments <= 2);
    CHECK_EQ_U64(fx_files(&fx), st.segments);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(find_group(&fx.rec, 2)->n_entries == 0 && find_group(&fx.rec, 3)->has_hard_state);
    fx_free(&fx);
}

static int seq_cb(void *arg, const char *name) {
    bool *seen = arg;
    unsigned long long seq = strtoull(name, NULL, 10);
    if (seq < 64) seen[seq] = true;
    return 0;
}

/* One batch spans many segments, a record larger than a segment gets one
 * of its own; files are consecutive; everything comes back. */
TEST(rollover_across_segments) {
    struct fx fx;
    CHECK(fx_init(&fx, 6) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 100, 1, 3000) == WAL_OK); /* ~300 KB in one batch */
    struct reports rep = {0};
    CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_OK);
    CHECK(rep.n == 1 && rep.d[0].last_index == 100);
    CHECK(append(fx.wal, 1, 101, 1, 1, 100 * 1024) == WAL_OK); /* bigger than a segment */
    CHECK(append(fx.wal, 1, 102, 50, 1, UINT32_MAX) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    struct wal_stats st;
    wal_stats(fx.wal, &st);
    CHECK(st.segments >= 7 && st.segments < 64);
    bool seen[64] = {0};
    fx.posix.list(&fx.posix, fx.dir, seq_cb, seen);
    for (uint64_t seq = 1; seq <= st.segments; seq++) CHECK(seen[seq]);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.segments, st.segments);
    const struct wal_group_state *s = find_group(&fx.rec, 1);
    CHECK_EQ_U64(s->n_entries, 151);
    for (uint32_t i = 0; i < 151; i++) CHECK(entry_ok(&s->entries[i], 1, i + 1, 1));
    CHECK_EQ_U64(s->entries[100].len, 100 * 1024);
    fx_free(&fx);
}

/* A crash during the fsync of a batch loses that batch (never reported
 * durable) and nothing before it. */
TEST(crash_loses_only_unsynced_records) {
    struct fx fx;
    CHECK(fx_init(&fx, 7) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 10, 1, 100) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 1, 11, 10, 1, 100) == WAL_OK);
    CHECK(append(fx.wal, 2, 1, 5, 1, 100) == WAL_OK);
    io_fault_arm(fx.fault, IO_FAULT_SYNC, 1, IO_FAULT_CRASH, 0);
    struct reports rep = {0};
    CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_EIO);
    CHECK_EQ_U64(rep.n, 0);
    io_fault_restart(fx.fault);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.truncated_bytes, 0);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 10);
    CHECK(find_group(&fx.rec, 2) == NULL);
    fx_free(&fx);
}

/* Bytes [from, to) of the file are in extents FIEMAP reports written (not
 * unwritten, not a hole); -1 if FIEMAP is not supported. */
static int written_range(const char *path, uint64_t from, uint64_t to) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    enum { EXTENTS = 64 };
    struct fiemap *fm = calloc(1, sizeof(*fm) + EXTENTS * sizeof(struct fiemap_extent));
    if (fm == NULL) abort();
    fm->fm_start = from;
    fm->fm_length = to - from;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = EXTENTS;
    int rc = ioctl(fd, FS_IOC_FIEMAP, fm);
    close(fd);
    if (rc != 0) {
        free(fm);
        return -1;
    }
    uint64_t at = from; /* covered by written extents up to here */
    for (uint32_t i = 0; i < fm->fm_mapped_extents && at < to; i++) {
        const struct fiemap_extent *e = &fm->fm_extents[i];
        if (e->fe_logical > at) break; /* a hole */
        if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) break;
        if (e->fe_logical + e->fe_length > at) at = e->fe_logical + e->fe_length;
    }
    free(fm);
    return at >= to ? 1 : 0;
}

/* Zeros ahead (wal.c, wal__plan_zeros): after a flush at least
 * WAL_ZERO_AHEAD_MIN_BYTES past the last record are written blocks, in a
 * new segment and as the records move on, so the syncs of the next
 * batches convert no extent; what recovery reads is unchanged. */
TEST(zeros_ahead_of_the_records) {
    struct fx fx;
    CHECK(fx_init(&fx, 21) == 0);
    fx.options.segment_bytes = 8u << 20;
    CHECK(fx_open(&fx) == WAL_OK);
    char path[160];
    snprintf(path, sizeof(path), "%s/00000000000000000001.wal", fx.dir);
    uint64_t index = 1;
    for (int round = 0; round < 12; round++) { /* 12 x 100 KB: past the first megabyte */
        CHECK(append(fx.wal, 1, index, 10, 1, 10 * 1024) == WAL_OK);
        index += 10;
        CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
        struct wal_stats st;
        wal_stats(fx.wal, &st);
        CHECK_EQ_U64(st.segments, 1);
        uint64_t end = SEGMENT_HEADER_BYTES + (index - 1) * (WAL_RECORD_HEADER_BYTES + 1 + 10 * 1024);
        int w = written_range(path, end, end + (512u << 10));
        CHECK(w >= 0); /* FIEMAP works here (ext4 under /tmp) */
        if (w != 1) {
            fprintf(stderr, "round %d: bytes %llu-%llu past the records are not written\n", round,
                    (unsigned long long)end, (unsigned long long)(end + (512u << 10)));
        }
        CHECK(w == 1);
    }
    CHECK(written_range(path, 6u << 20, 7u << 20) == 0); /* not the whole segment */
    CHECK(fx_open(&fx) == WAL_OK);
    const struct wal_group_state *g = find_group(&fx.rec, 1);
    CHECK(g != NULL && g->n_entries == index - 1);
    fx_free(&fx);
}

/* A write torn in the middle of the last record is cut (zeroed) on open,
 * and the log takes new records right there. */
TEST(torn_final_record_is_truncated) {
    struct fx fx;
    CHECK(fx_init(&fx, 8) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 10, 1, 100) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 1, 11, 1, 1, 500) == WAL_OK);
    io_fault_arm(fx.fault, IO_FAULT_SYNC, 1, IO_FAULT_FAIL, -EIO);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_EIO); /* written, not synced */
    CHECK(io_fault_crash(fx.fault, 100) == 0);       /* 100 bytes of it survive */
    io_fault_restart(fx.fault);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.truncated_bytes, 100);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 10);
    uint8_t tail[100];
    uint64_t end = SEGMENT_HEADER_BYTES + 10 * (WAL_RECORD_HEADER_BYTES + 101);
    CHECK(fx_peek(&fx, 1, end, tail, sizeof(tail)) == 0);
    for (size_t i = 0; i < sizeof(tail); i++) CHECK(tail[i] == 0);
    CHECK(append(fx.wal, 1, 11, 1, 2, 5) == WAL_OK); /* shorter than the torn bytes */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.truncated_bytes, 0);
    const struct wal_group_state *s = find_group(&fx.rec, 1);
    CHECK_EQ_U64(s->n_entries, 11);
    CHECK(entry_ok(&s->entries[10], 1, 11, 2));
    fx_free(&fx);
}

/* A crash while the first bytes of a new segment were unsynced: the torn
 * segment is removed and the log goes on in the previous one. */
TEST(torn_segment_header_removes_the_segment) {
    struct fx fx;
    CHECK(fx_init(&fx, 9) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 10, 1, 6000) == WAL_OK); /* ~60 KB of 64 */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 1, 11, 2, 1, 6000) == WAL_OK); /* rolls over to segment 2 */
    io_fault_arm(fx.fault, IO_FAULT_SYNC, 1, IO_FAULT_FAIL, -EIO); /* segment 2's fsync */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_EIO);
    CHECK(io_fault_crash(fx.fault, 10) == 0); /* 10 bytes of its header survive */
    io_fault_restart(fx.fault);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx.rec.segments, 2);
    CHECK_EQ_U64(fx.rec.truncated_bytes, 10);
    CHECK_EQ_U64(fx_files(&fx), 1);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 10);
    CHECK(append(fx.wal, 1, 11, 3, 2, 6000) == WAL_OK); /* segment 2 again */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(fx_files(&fx), 2);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 13);
    CHECK(entry_ok(&find_group(&fx.rec, 1)->entries[12], 1, 13, 2));
    fx_free(&fx);
}

/* Three records, the middle one's payload damaged: no torn tail, but
 * corruption; the open is refused naming the file and the offset. This is
 * the test the CANARY_WAL_ACCEPT_BAD_CRC build must fail. */
TEST(bad_crc_in_the_middle_is_refused) {
    struct fx fx;
    CHECK(fx_init(&fx, 10) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 3, 1, 50) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    fx_close(&fx);
    uint64_t second = SEGMENT_HEADER_BYTES + WAL_RECORD_HEADER_BYTES + 51;
    uint8_t byte;
    CHECK(fx_peek(&fx, 1, second + 40, &byte, 1) == 0);
    byte ^= 0x10;
    CHECK(fx_poke(&fx, 1, second + 40, &byte, 1) == 0);
    CHECK(fx_open(&fx) == WAL_ECORRUPT);
    CHECK(fx.wal == NULL);
    char expect[256];
    char path[128];
    fx_segment_path(&fx, 1, path, sizeof(path));
    snprintf(expect, sizeof(expect), "wal: corrupt record in %s at offset %llu: crc mismatch",
             path, (unsigned long long)second);
    if (strcmp(fx.rec.error, expect) != 0) fprintf(stderr, "  got: %s\n", fx.rec.error);
    CHECK(strcmp(fx.rec.error, expect) == 0);
    fx_free(&fx);
}

/* Other corruption: a bad length, an unknown type (with a good CRC), a
 * damaged record at the end of a segment that is not the last, a missing
 * segment: all refused with the offset or the segment named. */
TEST(other_corruption_is_refused) {
    struct fx fx;
    CHECK(fx_init(&fx, 11) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 3, 1, 50) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    fx_close(&fx);
    uint64_t second = SEGMENT_HEADER_BYTES + WAL_RECORD_HEADER_BYTES + 51;
    uint8_t rec[WAL_RECORD_HEADER_BYTES + 51];
    CHECK(fx_peek(&fx, 1, second, rec, sizeof(rec)) == 0);
    uint8_t bad_len[4] = {0xff, 0xff, 0xff, 0x7f};
    CHECK(fx_poke(&fx, 1, second + 4, bad_len, 4) == 0);
    CHECK(fx_open(&fx) == WAL_ECORRUPT);
    CHECK(strstr(fx.rec.error, "at offset 151: bad length") != NULL);
    uint8_t typed[sizeof(rec)];
    memcpy(typed, rec, sizeof(rec));
    typed[8] = 9;
    uint32_t crc = crc32c(0, typed + 4, sizeof(typed) - 4);
    for (int i = 0; i < 4; i++) typed[i] = (uint8_t)(crc >> (8 * i));
    CHECK(fx_poke(&fx, 1, second, typed, sizeof(typed)) == 0);
    CHECK(fx_open(&fx) == WAL_ECORRUPT);
    CHECK(strstr(fx.rec.error, "at offset 151: unknown record type 9") != NULL);
    CHECK(fx_poke(&fx, 1, second, rec, sizeof(rec)) == 0); /* repaired */
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 4, 30, 1, 6000) == WAL_OK); /* segments 2 to 4 */
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    fx_close(&fx);
    uint64_t last = SEGMENT_HEADER_BYTES + 3 * (WAL_RECORD_HEADER_BYTES + 51) +
                    9 * (WAL_RECORD_HEADER_BYTES + 6001); /* the last record of segment 1 */
    uint8_t flip = 0x55;
    CHECK(fx_poke(&fx, 1, last + 20, &flip, 1) == 0); /* only zeros follow it there */
    CHECK(fx_open(&fx) == WAL_ECORRUPT);
    CHECK(strstr(fx.rec.error, "00000000000000000001.wal at offset") != NULL);
    CHECK(strstr(fx.rec.error, "crc mismatch") != NULL);
    char path[128];
    fx_segment_path(&fx, 2, path, sizeof(path));
    CHECK(fx.posix.unlink(&fx.posix, path) == 0);
    CHECK(fx_open(&fx) == WAL_ECORRUPT);
    CHECK(strstr(fx.rec.error, "missing segment 00000000000000000002") != NULL);
    fx_free(&fx);
}

/* fsyncgate: a failed fdatasync fails the WAL for good, even once the disk
 * would work again; what was durable before is still there on restart. */
TEST(fsync_failure_fails_the_wal_for_good) {
    struct fx fx;
    CHECK(fx_init(&fx, 12) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 5, 1, 10) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 1, 6, 5, 1, 10) == WAL_OK);
    io_fault_arm(fx.fault, IO_FAULT_SYNC, 1, IO_FAULT_FAIL, -EIO);
    struct reports rep = {0};
    CHECK(wal_flush(fx.wal, report_cb, &rep) == WAL_EIO);
    CHECK_EQ_U64(rep.n, 0);
    CHECK(wal_failed(fx.wal) == WAL_EIO);
    CHECK(strstr(wal_error(fx.wal), "fdatasync") != NULL);
    CHECK(strstr(wal_error(fx.wal), "input/output error") != NULL);
    struct raft_hard_state hs = {1, 1, 1};
    CHECK(append(fx.wal, 1, 11, 1, 1, 10) == WAL_EIO);
    CHECK(wal_append_hard_state(fx.wal, 1, &hs) == WAL_EIO);
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 3, 1, WAL_MARK_COMPACTED) == WAL_EIO);
    struct wal_batch *b = NULL;
    CHECK(wal_flush_begin(fx.wal, &b) == WAL_EIO && b == NULL);
    CHECK(wal_gc(fx.wal, NULL) == WAL_EIO);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_EIO);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(find_group(&fx.rec, 1)->n_entries >= 5);
    fx_free(&fx);
}

/* ENOSPC on a write, and on preallocating a new segment: reported as
 * WAL_ENOSPC, and fail-stop like any write error. */
TEST(enospc_is_reported) {
    struct fx fx;
    CHECK(fx_init(&fx, 13) == 0);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 5, 1, 10) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(append(fx.wal, 1, 6, 5, 1, 10) == WAL_OK);
    io_fault_arm(fx.fault, IO_FAULT_WRITE, 1, IO_FAULT_FAIL, -ENOSPC);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_ENOSPC);
    CHECK(strstr(wal_error(fx.wal), "no space left on device") != NULL);
    CHECK(append(fx.wal, 1, 6, 1, 1, 10) == WAL_ENOSPC);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 5);
    CHECK(append(fx.wal, 1, 6, 10, 1, 7000) == WAL_OK); /* needs segment 2 */
    io_fault_arm(fx.fault, IO_FAULT_ALLOCATE, 1, IO_FAULT_FAIL, -ENOSPC);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_ENOSPC);
    CHECK(strstr(wal_error(fx.wal), "preallocate") != NULL);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(find_group(&fx.rec, 1)->n_entries >= 5);
    fx_free(&fx);
}

/* Limits and bad arguments are refused without failing the WAL. */
TEST(bad_input_is_refused) {
    struct fx fx;
    CHECK(fx_init(&fx, 14) == 0);
    fx.options.record_bytes_max = 4096;
    fx.options.buffer_bytes_max = 4096 + 4096;
    fx.options.groups_max = 3;
    fx.options.segment_bytes = 1000; /* not a multiple of 4 KiB */
    CHECK(fx_open(&fx) == WAL_EINVAL);
    fx.options.segment_bytes = SEGMENT_BYTES;
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK(append(fx.wal, 1, 1, 1, 1, 5000) == WAL_ETOOBIG);
    CHECK(append(fx.wal, 1, 0, 1, 1, 5) == WAL_EINVAL);
    struct raft_entry es[2] = {{.term = 2, .index = 1}, {.term = 1, .index = 2}};
    CHECK(wal_append_entries(fx.wal, 1, es, 2) == WAL_EINVAL); /* term goes down */
    es[1] = (struct raft_entry){.term = 2, .index = 3};
    CHECK(wal_append_entries(fx.wal, 1, es, 2) == WAL_EINVAL); /* not consecutive */
    CHECK(wal_append_snapshot_mark(fx.wal, 1, 0, 1, WAL_MARK_COMPACTED) == WAL_EINVAL);
    for (uint64_t g = 1; g <= 3; g++) CHECK(append(fx.wal, g, 1, 1, 1, 5) == WAL_OK);
    CHECK(append(fx.wal, 4, 1, 1, 1, 5) == WAL_ELIMIT);
    CHECK(append(fx.wal, 1, 2, 1, 1, 4000) == WAL_OK);
    CHECK(append(fx.wal, 1, 3, 1, 1, 4000) == WAL_EFULL);
    struct wal_batch *b;
    CHECK(wal_flush_begin(fx.wal, &b) == WAL_OK && b != NULL);
    struct wal_batch *b2;
    CHECK(wal_flush_begin(fx.wal, &b2) == WAL_EBUSY);
    CHECK(append(fx.wal, 1, 3, 1, 1, 4000) == WAL_OK); /* the buffer is free again */
    CHECK(wal_flush_end(fx.wal, b, wal_flush_run(b), NULL, NULL) == WAL_OK);
    CHECK(wal_flush(fx.wal, NULL, NULL) == WAL_OK);
    CHECK(wal_failed(fx.wal) == WAL_OK);
    CHECK(fx_open(&fx) == WAL_OK);
    CHECK_EQ_U64(find_group(&fx.rec, 1)->n_entries, 3);
    fx.options.groups_max = 2; /* the log holds 3 groups */
    CHECK(fx_open(&fx) == WAL_ELIMIT);
    fx_free(&fx);
}

struct worker {
    struct wal_batch *batch;
    int result;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    w->result = wal_flush_run(w->batch);
    return NULL;
}

/* Group commit as the node runs it: wal_flush_run() on a worker thread
 * while the owner keeps appending into the next batch (io_posix, which is
 * thread-safe). Every batch reports, and everything comes back. */
TEST(flush_on_a_worker_while_appending) {
    struct fx fx;
    CHECK(fx_init(&fx, 15) == 0);
    struct wal_recovered rec;
    struct wal *wal;
    CHECK(wal_open(&fx.posix, fx.dir, &fx.options, &wal, &rec) == WAL_OK);
    wal_recovered_free(&rec);
    uint64_t next[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct reports rep = {0};
    for (int round = 0; round < 30; round++) {
        struct worker w = {0};
        CHECK(wal_flush_begin(wal, &w.batch) == WAL_OK);
        pthread_t t;
        memset(&t, 0, sizeof(t));
        if (w.batch != NULL) CHECK(pthread_create(&t, NULL, worker_main, &w) == 0);
        for (uint64_t g = 0; g < 8; g++) {
            CHECK(append(wal, g, next[g], 4, 1, UINT32_MAX) == WAL_OK);
            next[g] += 4;
        }
        if (w.batch == NULL) continue;
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(wal_flush_end(wal, w.batch, w.result, report_cb, &rep) == WAL_OK);
    }
    CHECK(wal_flush(wal, report_cb, &rep) == WAL_OK);
    CHECK_EQ_U64(rep.n, 8 * 30);
    wal_close(wal);
    CHECK(wal_open(&fx.posix, fx.dir, &fx.options, &wal, &rec) == WAL_OK);
    for (uint64_t g = 0; g < 8; g++) {
        const struct wal_group_state *s = find_group(&rec, g);
        CHECK_EQ_U64(s->n_entries, 120);
        for (uint32_t i = 0; i < 120; i++) CHECK(entry_ok(&s->entries[i], g, i + 1, 1));
    }
    wal_recovered_free(&rec);
    wal_close(wal);
    fx_free(&fx);
}

/* ---- randomized: the WAL against a model of what must be durable ---- */

#define MODEL_GROUPS 6
#define MODEL_ENTRIES 512
#define MODEL_OPS 4096
#define MODEL_LEN_MAX 700

struct mgroup {
    bool has_hs;
    struct raft_hard_state hs;
    bool has_mark;
    uint64_t mark_index;
    uint64_t mark_term;
    uint64_t first; /* index of terms[0] */
    uint32_t n;
    uint64_t terms[MODEL_ENTRIES];
    uint64_t term; /* generator's current term */
};

struct model {
    struct mgroup g[MODEL_GROUPS];
};

enum { OP_ENTRY, OP_HS, OP_MARK };

/* One record: the model's unit, so that torn batches are prefixes. */
struct op {
    int kind;
    int group;
    uint64_t a, b, c; /* entry: index, term; hs: term, vote, commit; mark: index, term, kind */
};

static uint64_t mg_last(const struct mgroup *g) {
    return g->n > 0 ? g->first + g->n - 1 : (g->has_mark ? g->mark_index : 0);
}

static void model_apply(struct model *m, const struct op *op) {
    struct mgroup *g = &m->g[op->group];
    if (op->kind == OP_HS) {
        g->has_hs = true;
        g->hs = (struct raft_hard_state){op->a, op->b, op->c};
    } else if (op->kind == OP_ENTRY) {
        if (g->n == 0 || op->a < g->first) {
            g->first = op->a;
            g->n = 0;
        }
        g->n = (uint32_t)(op->a - g->first);
        g->terms[g->n++] = op->b;
    } else {
        uint64_t mi = op->a;
        if (g->has_mark && mi == g->mark_index) return;
        if (op->c == WAL_MARK_INSTALLED || g->n == 0 || mi >= mg_last(g)) {
            g->n = 0;
        } else if (mi >= g->first) {
            uint32_t drop = (uint32_t)(mi - g->first + 1);
            memmove(g->terms, g->terms + drop, (g->n - drop) * sizeof(g->terms[0]));
            g->n -= drop;
            g->first = mi + 1;
        }
        g->has_mark = true;
        g->mark_index = mi;
        g->mark_term = op->b;
    }
}

static bool model_matches(const struct model *m, const struct wal_recovered *rec) {
    uint32_t seen = 0;
    for (int gi = 0; gi < MODEL_GROUPS; gi++) {
        const struct mgroup *g = &m->g[gi];
        const struct wal_group_state *s = find_group(rec, 100 + (uint64_t)gi);
        if (!g->has_hs && !g->has_mark && g->n == 0) {
            if (s != NULL) return false;
            continue;
        }
        if (s == NULL) return false;
        seen++;
        if (s->has_hard_state != g->has_hs || s->has_snapshot != g->has_mark) return false;
        if (g->has_hs && memcmp(&s->hard_state, &g->hs, sizeof(g->hs)) != 0) return false;
        if (g->has_mark && s->snapshot_index != g->mark_index) return false;
        if (g->has_mark && s->snapshot_term != g->mark_term) return false;
        if (s->n_entries != g->n) return false;
        for (uint32_t i = 0; i < g->n; i++) {
            const struct raft_entry *e = &s->entries[i];
            if (!entry_ok(e, 100 + (uint64_t)gi, g->first + i, g->terms[i])) return false;
            if (e->len != mix(100 + (uint64_t)gi, e->index, e->term) % MODEL_LEN_MAX) return false;
        }
    }
    return seen == rec->n_groups;
}

struct sim {
    struct fx fx;
    struct rand rng;
    struct model durable;    /* what completed flushes made durable */
    struct model laid;       /* durable + everything appended since */
    struct op ops[MODEL_OPS]; /* appended since `durable`, in order */
    uint32_t n_ops;
    uint64_t flushes;
    uint64_t crashes;
    uint64_t torn;     /* restarts that cut a torn tail */
    uint64_t partial;  /* restarts that kept part of the batch in flight */
    uint64_t retired;  /* segments gc retired */
};

struct sim_totals {
    uint64_t rounds, flushes, crashes, torn, partial, retired;
};

static int sim_push(struct sim *s, struct op op) {
    if (s->n_ops >= MODEL_OPS) return -1;
    s->ops[s->n_ops++] = op;
    model_apply(&s->laid, &op);
    return 0;
}

/* Appends 1..6 entries to group gi: at its end, or overwriting a suffix
 * with a new term (a new leader). Marks old entries away when full. */
static int sim_append_entries(struct sim *s, int gi) {
    struct mgroup *g = &s->laid.g[gi];
    uint64_t last = mg_last(g);
    uint64_t lo = g->has_mark ? g->mark_index + 1 : 1;
    if (g->n > 0 && g->first > lo) lo = g->first;
    uint64_t first = last + 1;
    if (last + 1 > lo && rand_chance(&s->rng, 25)) first = lo + rand_below(&s->rng, last + 1 - lo);
    if (first <= last || g->term == 0) g->term++;
    uint32_t n = 1 + (uint32_t)rand_below(&s->rng, 6);
    if (g->n + n + 8 > MODEL_ENTRIES) return 0;
    struct raft_entry *es = make_entries(100 + (uint64_t)gi, first, n, g->term, UINT32_MAX,
                                         MODEL_LEN_MAX);
    int rc = wal_append_entries(s->fx.wal, 100 + (uint64_t)gi, es, n);
    free_entries(es, n);
    uint64_t term = g->term;
    for (uint32_t i = 0; rc == WAL_OK && i < n; i++)
        rc = sim_push(s, (struct op){OP_ENTRY, gi, first + i, term, 0});
    return rc;
}

/* A mark at an entry of the log (local compaction), or a snapshot from
 * the leader replacing the log: past its end, or inside it (a follower
 * whose uncommitted tail diverged). */
static int sim_mark(struct sim *s, int gi) {
    struct mgroup *g = &s->laid.g[gi];
    uint64_t index;
    uint64_t term;
    enum wal_mark_kind kind = WAL_MARK_COMPACTED;
    if (g->n > 0 && rand_chance(&s->rng, 75)) {
        uint32_t k = (uint32_t)rand_below(&s->rng, g->n);
        index = g->first + k;
        term = g->terms[k];
    } else {
        uint64_t lo = g->has_mark ? g->mark_index + 1 : 1;
        index = lo + rand_below(&s->rng, mg_last(g) + 5 - lo);
        term = ++g->term;
        kind = WAL_MARK_INSTALLED;
    }
    int rc = wal_append_snapshot_mark(s->fx.wal, 100 + (uint64_t)gi, index, term, kind);
    if (rc != WAL_OK) return rc;
    return sim_push(s, (struct op){OP_MARK, gi, index, term, kind});
}

static int sim_hard_state(struct sim *s, int gi) {
    struct mgroup *g = &s->laid.g[gi];
    struct raft_hard_state hs = {g->term, rand_below(&s->rng, 5), mg_last(g)};
    int rc = wal_append_hard_state(s->fx.wal, 100 + (uint64_t)gi, &hs);
    if (rc != WAL_OK) return rc;
    return sim_push(s, (struct op){OP_HS, gi, hs.term, hs.vote, hs.commit});
}

static int sim_appends(struct sim *s) {
    uint32_t n = 1 + (uint32_t)rand_below(&s->rng, 8);
    for (uint32_t i = 0; i < n; i++) {
        int gi = (int)rand_below(&s->rng, MODEL_GROUPS);
        uint64_t r = rand_below(&s->rng, 100);
        int rc;
        if (s->laid.g[gi].n > MODEL_ENTRIES / 2 || r < 8) {
            rc = sim_mark(s, gi);
        } else if (r < 25) {
            rc = sim_hard_state(s, gi);
        } else {
            rc = sim_append_entries(s, gi);
        }
        if (rc != WAL_OK) return rc;
    }
    return 0;
}

/* The first k ops reached the disk: the durable model moves past them. */
static void sim_durable(struct sim *s, uint32_t k) {
    for (uint32_t i = 0; i < k; i++) model_apply(&s->durable, &s->ops[i]);
    memmove(s->ops, s->ops + k, (s->n_ops - k) * sizeof(s->ops[0]));
    s->n_ops -= k;
}

/* After a restart: the recovered log must be the durable model plus a
 * prefix of the first `k` ops (the batch being synced when it crashed). */
static bool sim_recovered(struct sim *s, uint32_t k) {
    struct model *m = malloc(sizeof(*m));
    *m = s->durable;
    uint32_t p = 0;
    bool ok = model_matches(m, &s->fx.rec);
    while (!ok && p < k) {
        model_apply(m, &s->ops[p++]);
        ok = model_matches(m, &s->fx.rec);
    }
    free(m);
    if (!ok) return false;
    if (s->fx.rec.truncated_bytes > 0) s->torn++;
    if (p > 0 && p < k) s->partial++;
    sim_durable(s, p);
    s->n_ops = 0; /* the rest was lost with the process */
    s->laid = s->durable;
    return true;
}

/* A flush, sometimes split so that appends land while it is in flight,
 * sometimes crashing during one of its syncs (torn or not). */
static int sim_flush(struct sim *s, bool crash) {
    struct wal_batch *b;
    int rc = wal_flush_begin(s->fx.wal, &b);
    if (rc != WAL_OK || b == NULL) return rc;
    uint32_t k = s->n_ops;
    if (rand_chance(&s->rng, 30) && sim_appends(s) != 0) return -1;
    if (crash) {
        enum io_fault_action a = rand_chance(&s->rng, 50) ? IO_FAULT_CRASH_TEAR : IO_FAULT_CRASH;
        io_fault_arm(s->fx.fault, IO_FAULT_SYNC, 1 + (uint32_t)rand_below(&s->rng, 3), a, 0);
    }
    rc = wal_flush_run(b);
    rc = wal_flush_end(s->fx.wal, b, rc, NULL, NULL);
    if (rc == WAL_OK) {
        s->flushes++;
        sim_durable(s, k);
        if (crash) io_fault_arm(s->fx.fault, IO_FAULT_SYNC, 0, IO_FAULT_CRASH, 0);
        return 0;
    }
    if (!crash || !io_fault_is_down(s->fx.fault)) return -1;
    s->crashes++;
    io_fault_restart(s->fx.fault);
    if (fx_open(&s->fx) != WAL_OK) return -2;
    return sim_recovered(s, k) ? 0 : -3;
}

static int sim_round(struct sim *s) {
    if (sim_appends(s) != WAL_OK) return -1;
    uint64_t r = rand_below(&s->rng, 100);
    if (r < 55) return sim_flush(s, false);
    if (r < 70) return sim_flush(s, true);
    if (r < 78) { /* power cut between flushes: the buffer is lost */
        if (io_fault_crash(s->fx.fault, IO_FAULT_KEEP_RANDOM) != 0) return -4;
        io_fault_restart(s->fx.fault);
        s->crashes++;
        if (fx_open(&s->fx) != WAL_OK) return -2;
        return sim_recovered(s, 0) ? 0 : -3;
    }
    if (r < 85) { /* clean restart */
        if (fx_open(&s->fx) != WAL_OK) return -2;
        return sim_recovered(s, 0) ? 0 : -3;
    }
    uint32_t retired;
    int rc = wal_gc(s->fx.wal, &retired);
    s->retired += retired;
    return rc;
}

static int sim_run(uint64_t seed, uint32_t rounds, struct sim_totals *totals) {
    struct sim *s = calloc(1, sizeof(*s));
    if (fx_init(&s->fx, seed) != 0) return -9;
    s->fx.options.segment_bytes = 16 * 1024;
    rand_seed(&s->rng, seed);
    int rc = fx_open(&s->fx);
    uint32_t round = 0;
    for (; rc == 0 && round < rounds; round++) rc = sim_round(s);
    if (rc == 0) rc = fx_open(&s->fx) == WAL_OK && sim_recovered(s, 0) ? 0 : -3;
    if (rc != 0) {
        const char *what = rc == -3   ? "recovered log is no prefix of what was written"
                           : rc == -2 ? "reopen failed"
                                      : "a WAL call failed";
        fprintf(stderr, "  randomized: seed %llu failed in round %u: %s (%d; %s); %llu "
                "flushes, %llu crashes; replay with WAL_SEED=%llu\n",
                (unsigned long long)seed, round, what, rc,
                s->fx.wal != NULL ? wal_error(s->fx.wal) : s->fx.rec.error,
                (unsigned long long)s->flushes, (unsigned long long)s->crashes,
                (unsigned long long)seed);
    }
    totals->rounds += round;
    totals->flushes += s->flushes;
    totals->crashes += s->crashes;
    totals->torn += s->torn;
    totals->partial += s->partial;
    totals->retired += s->retired;
    fx_free(&s->fx);
    free(s);
    return rc;
}

/* Random appends, overwrites, marks, flushes (some in flight while
 * appending), gc, clean restarts and crashes (some tearing the last
 * write): after every restart the log holds exactly what completed flushes
 * made durable, plus at most a prefix of the batch that was being synced. */
TEST(randomized_against_a_model) {
    const char *env_seed = getenv("WAL_SEED");   /* replay one seed */
    const char *env_seeds = getenv("WAL_SEEDS"); /* or run more of them */
    uint64_t first = env_seed != NULL ? strtoull(env_seed, NULL, 10) : 1;
    uint64_t seeds = env_seed != NULL ? 1 : 4;
    if (env_seeds != NULL) seeds = strtoull(env_seeds, NULL, 10);
    struct sim_totals t = {0};
    for (uint64_t seed = first; seed < first + seeds; seed++) CHECK(sim_run(seed, 300, &t) == 0);
    printf("randomized: %llu seeds, %llu rounds, %llu flushes, %llu crashes (%llu torn tails "
           "cut, %llu kept part of a batch), %llu segments retired\n",
           (unsigned long long)seeds, (unsigned long long)t.rounds,
           (unsigned long long)t.flushes, (unsigned long long)t.crashes,
           (unsigned long long)t.torn, (unsigned long long)t.partial,
           (unsigned long long)t.retired);
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(test_root, sizeof(test_root), "/tmp/shoal-wal-XXXXXX");
    if (mkdtemp(test_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    static const struct test_case cases[] = {
        TEST_ENTRY(round_trip_many_groups),
        TEST_ENTRY(one_fdatasync_covers_every_group),
        TEST_ENTRY(overwrite_of_a_suffix),
        TEST_ENTRY(hard_state_last_wins),
        TEST_ENTRY(snapshot_mark_replay_rules),
        TEST_ENTRY(snapshot_marks_and_gc_delete_segments),
        TEST_ENTRY(rollover_across_segments),
        TEST_ENTRY(crash_loses_only_unsynced_records),
        TEST_ENTRY(torn_final_record_is_truncated),
        TEST_ENTRY(torn_segment_header_removes_the_segment),
        TEST_ENTRY(bad_crc_in_the_middle_is_refused),
        TEST_ENTRY(zeros_ahead_of_the_records),
        TEST_ENTRY(other_corruption_is_refused),
        TEST_ENTRY(fsync_failure_fails_the_wal_for_good),
        TEST_ENTRY(enospc_is_reported),
        TEST_ENTRY(bad_input_is_refused),
        TEST_ENTRY(flush_on_a_worker_while_appending),
        TEST_ENTRY(randomized_against_a_model),
    };
    int rc = test_run("test_wal", cases, (int)(sizeof(cases) / sizeof(cases[0])));
    nftw(test_root, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
