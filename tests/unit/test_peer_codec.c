/* test_peer_codec.c: the peer wire format. Random messages round-trip
 * exactly; every prefix of a frame is "need more"; every flipped bit is
 * refused; lengths beyond the limits are refused before buffering. */
#include <stdlib.h>

#include "peer/peer_codec.h"
#include "test.h"
#include "util/crc32c.h"
#include "util/rand.h"

static uint8_t pool[1 << 16];

static void random_msg(struct rand *r, struct raft_msg *m, struct raft_entry *ents) {
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)(1 + rand_below(r, RAFT_MSG_TYPE_COUNT - 1));
    m->from = 1 + rand_below(r, 5);
    m->to = 1 + rand_below(r, 5);
    m->term = rand_u64(r);
    m->log_term = rand_u64(r);
    m->index = rand_u64(r);
    m->commit = rand_u64(r);
    m->context = rand_u64(r);
    m->reject = rand_chance(r, 30);
    m->reject_hint = rand_u64(r);
    if (m->type == RAFT_MSG_APPEND) {
        m->n_entries = (uint32_t)rand_below(r, 8);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            ents[i].term = rand_below(r, 100);
            ents[i].index = m->index + 1 + i;
            ents[i].type = (uint8_t)rand_below(r, 2);
            ents[i].len = (uint32_t)rand_below(r, 300);
            ents[i].data = ents[i].len ? pool + rand_below(r, sizeof(pool) - 300) : NULL;
        }
        m->entries = ents;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        m->snapshot.index = rand_u64(r);
        m->snapshot.term = rand_u64(r);
        m->snapshot.conf.n_voters = 3;
        for (int i = 0; i < 3; i++) m->snapshot.conf.voters[i] = (uint64_t)i + 1;
        m->snapshot.conf.n_learners = 1;
        m->snapshot.conf.learners[0] = 9;
        m->snapshot_size = 5000;
        m->chunk_offset = rand_below(r, 4000);
        m->chunk_len = (uint32_t)rand_below(r, 1000);
        m->chunk = m->chunk_len ? pool + 7 : NULL;
    }
    if (m->type == RAFT_MSG_SNAPSHOT_RESP) {
        m->snapshot.index = rand_u64(r);
        m->snapshot.term = rand_u64(r);
        m->snapshot_size = rand_u64(r);
        m->chunk_offset = rand_u64(r);
    }
}

static bool msg_equal(const struct raft_msg *a, const struct raft_msg *b) {
    if (a->type != b->type || a->from != b->from || a->to != b->to || a->term != b->term ||
        a->log_term != b->log_term || a->index != b->index || a->commit != b->commit ||
        a->context != b->context || a->reject != b->reject ||
        a->reject_hint != b->reject_hint || a->n_entries != b->n_entries) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i];
        const struct raft_entry *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type ||
            x->len != y->len || (x->len && memcmp(x->data, y->data, x->len) != 0)) {
            return false;
        }
    }
    /* every field the core reads for this type must survive (a snapshot
     * answer without its offset once stalled every install after a chunk) */
    if (a->type == RAFT_MSG_SNAPSHOT_RESP) {
        return a->snapshot.index == b->snapshot.index && a->snapshot.term == b->snapshot.term &&
               a->snapshot_size == b->snapshot_size && a->chunk_offset == b->chunk_offset;
    }
    if (a->type != RAFT_MSG_SNAPSHOT) return true;
    return a->snapshot.index == b->snapshot.index && a->snapshot.term == b->snapshot.term &&
           b->snapshot.conf.n_voters == 3 && b->snapshot.conf.learners[0] == 9 &&
           a->snapshot_size == b->snapshot_size && a->chunk_offset == b->chunk_offset &&
           a->chunk_len == b->chunk_len &&
           (a->chunk_len == 0 || memcmp(a->chunk, b->chunk, a->chunk_len) == 0);
}

TEST(random_messages_round_trip_in_one_stream) {
    struct rand r;
    rand_seed(&r, 1);
    for (size_t i = 0; i < sizeof(pool); i++) pool[i] = (uint8_t)rand_u64(&r);
    static struct raft_msg msgs[500];
    static struct raft_entry ents[500][8];
    static uint64_t groups[500];
    struct peer_buf out = {0};
    CHECK(peer_encode_hello(&out, 77, 3) == 0);
    for (int i = 0; i < 500; i++) {
        random_msg(&r, &msgs[i], ents[i]);
        groups[i] = rand_u64(&r);
        CHECK(peer_encode_raft(&out, groups[i], &msgs[i]) == 0);
    }
    size_t at = 0;
    size_t used = 0;
    struct peer_frame f;
    char why[128];
    CHECK(peer_decode(out.data, out.len, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK(f.type == PEER_FRAME_HELLO && f.cluster_id == 77 && f.node_id == 3);
    at += used;
    for (int i = 0; i < 500; i++) {
        enum peer_parse_result rc = peer_decode(out.data + at, out.len - at, &used, &f, why,
                                                sizeof(why));
        if (rc != PEER_OK) fprintf(stderr, "  message %d: %s\n", i, why);
        CHECK(rc == PEER_OK);
        CHECK(f.type == PEER_FRAME_RAFT);
        CHECK_EQ_U64(f.group, groups[i]);
        CHECK(msg_equal(&msgs[i], &f.msg));
        peer_frame_release(&f);
        at += used;
    }
    CHECK_EQ_U64(at, out.len);
    peer_buf_free(&out);
}

TEST(every_prefix_needs_more_and_every_bit_flip_is_refused) {
    struct rand r;
    rand_seed(&r, 2);
    for (int round = 0; round < 20; round++) {
        struct raft_msg m;
        struct raft_entry ents[8];
        random_msg(&r, &m, ents);
        struct peer_buf out = {0};
        CHECK(peer_encode_raft(&out, 5, &m) == 0);
        struct peer_frame f;
        size_t used = 0;
        char why[128];
        for (size_t len = 0; len < out.len; len++) {
            enum peer_parse_result rc = peer_decode(out.data, len, &used, &f, why, sizeof(why));
            CHECK(rc == PEER_NEED_MORE || (rc == PEER_EPROTO && len >= 4));
        }
        size_t flips = out.len < 400 ? out.len * 8 : 400;
        for (size_t k = 0; k < flips; k++) {
            size_t bit = out.len * 8 <= 400 ? k : rand_below(&r, out.len * 8);
            out.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            enum peer_parse_result rc = peer_decode(out.data, out.len, &used, &f, why,
                                                    sizeof(why));
            /* a flipped length may just ask for more bytes; nothing is accepted */
            CHECK(rc != PEER_OK);
            CHECK(rc == PEER_NEED_MORE || why[0] != '\0');
            out.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        CHECK(peer_decode(out.data, out.len, &used, &f, why, sizeof(why)) == PEER_OK);
        peer_frame_release(&f);
        peer_buf_free(&out);
    }
}

/* Writes a header and a correct CRC around an arbitrary payload. */
static size_t forge(uint8_t *buf, uint8_t type, const uint8_t *payload, uint32_t len) {
    for (int i = 0; i < 4; i++) buf[i] = (uint8_t)(len >> (8 * i));
    buf[4] = PEER_VERSION;
    buf[5] = type;
    memcpy(buf + PEER_FRAME_HEADER_BYTES, payload, len);
    uint32_t crc = crc32c(crc32c(0, buf + 4, 2), payload, len);
    for (int i = 0; i < 4; i++) buf[6 + i] = (uint8_t)(crc >> (8 * i));
    return PEER_FRAME_HEADER_BYTES + len;
}

TEST(hostile_lengths_are_refused_before_buffering) {
    uint8_t hdr[PEER_FRAME_HEADER_BYTES] = {0xff, 0xff, 0xff, 0x7f, PEER_VERSION,
                                            PEER_FRAME_RAFT, 0, 0, 0, 0};
    struct peer_frame f;
    size_t used;
    char why[128];
    CHECK(peer_decode(hdr, sizeof(hdr), &used, &f, why, sizeof(why)) == PEER_EPROTO);
    CHECK(strstr(why, "too long") != NULL);
    hdr[0] = 1;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = 0;
    hdr[4] = 9; /* a version from the future */
    CHECK(peer_decode(hdr, sizeof(hdr), &used, &f, why, sizeof(why)) == PEER_EPROTO);
    CHECK(strstr(why, "version") != NULL);
    /* A RAFT frame claiming four billion entries in a few bytes: refused
     * without allocating for them. */
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3};
    struct peer_buf out = {0};
    CHECK(peer_encode_raft(&out, 1, &m) == 0);
    uint8_t payload[256];
    uint32_t plen = (uint32_t)(out.len - PEER_FRAME_HEADER_BYTES);
    memcpy(payload, out.data + PEER_FRAME_HEADER_BYTES, plen);
    memset(payload + plen - 4, 0xff, 4); /* n_entries */
    uint8_t frame[300];
    size_t flen = forge(frame, PEER_FRAME_RAFT, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    CHECK(strstr(why, "entry count") != NULL);
    /* An entry whose length runs past the frame. */
    struct raft_entry e = {.term = 3, .index = 1, .len = 4, .data = (uint8_t *)"abcd"};
    m.n_entries = 1;
    m.entries = &e;
    out.len = 0;
    CHECK(peer_encode_raft(&out, 1, &m) == 0);
    plen = (uint32_t)(out.len - PEER_FRAME_HEADER_BYTES);
    memcpy(payload, out.data + PEER_FRAME_HEADER_BYTES, plen);
    payload[plen - 4 - 4] = 200; /* the entry's len field */
    flen = forge(frame, PEER_FRAME_RAFT, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    /* Unknown frame type with a valid CRC. */
    flen = forge(frame, 99, payload, 4);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    peer_buf_free(&out);
}

TEST(publish_frames_round_trip_and_lengths_are_checked) {
    struct peer_buf out = {0};
    CHECK(peer_encode_publish(&out, false, "news", 4, "hello world", 11) == 0);
    CHECK(peer_encode_publish(&out, true, "{s}x", 4, "", 0) == 0);
    struct peer_frame f;
    size_t used = 0, at = 0;
    char why[128];
    CHECK(peer_decode(out.data, out.len, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK_EQ_U64(f.type, PEER_FRAME_PUBLISH);
    CHECK(!f.sharded);
    CHECK(f.channel_len == 4 && memcmp(f.channel, "news", 4) == 0);
    CHECK(f.message_len == 11 && memcmp(f.message, "hello world", 11) == 0);
    peer_frame_release(&f);
    at = used;
    CHECK(peer_decode(out.data + at, out.len - at, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK(f.sharded && f.channel_len == 4 && f.message_len == 0);
    peer_frame_release(&f);
    CHECK_EQ_U64(at + used, out.len);
    /* a channel length running past the frame is refused */
    out.len = 0;
    CHECK(peer_encode_publish(&out, false, "abc", 3, "m", 1) == 0);
    uint8_t payload[64], frame[128];
    uint32_t plen = (uint32_t)(out.len - PEER_FRAME_HEADER_BYTES);
    memcpy(payload, out.data + PEER_FRAME_HEADER_BYTES, plen);
    CHECK(payload[1] == 3);
    payload[1] = 60; /* the channel length (after the sharded flag) */
    size_t flen = forge(frame, PEER_FRAME_PUBLISH, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    peer_buf_free(&out);
}

TEST(oversized_message_is_not_encoded) {
    static uint8_t big[PEER_FRAME_BYTES_MAX];
    struct raft_entry e = {.term = 1, .index = 1, .len = PEER_FRAME_BYTES_MAX, .data = big};
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
                         .n_entries = 1, .entries = &e};
    struct peer_buf out = {0};
    CHECK(peer_encode_raft(&out, 1, &m) == RAFT_ETOOBIG);
    CHECK_EQ_U64(out.len, 0);
    peer_buf_free(&out);
}

TEST(beat_round_trips_and_a_beat_with_a_payload_is_refused) {
    struct peer_buf out = {0};
    CHECK(peer_encode_beat(&out) == 0);
    CHECK_EQ_U64(out.len, PEER_FRAME_HEADER_BYTES);
    struct peer_frame f;
    size_t used = 0;
    char why[128];
    CHECK(peer_decode(out.data, out.len, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK_EQ_U64(f.type, PEER_FRAME_BEAT);
    CHECK_EQ_U64(used, PEER_FRAME_HEADER_BYTES);
    peer_frame_release(&f);
    uint8_t frame[64];
    uint8_t payload[4] = {1, 2, 3, 4};
    size_t flen = forge(frame, PEER_FRAME_BEAT, payload, sizeof(payload));
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    peer_buf_free(&out);
}

/* The node state (maxmemory, docs/node.md): both flag values round-trip;
 * no payload, a longer one and an unknown flag bit are refused. */
TEST(state_round_trips_and_bad_payloads_are_refused) {
    struct peer_buf out = {0};
    CHECK(peer_encode_state(&out, PEER_STATE_OOM) == 0);
    CHECK(peer_encode_state(&out, 0) == 0);
    CHECK_EQ_U64(out.len, 2 * (PEER_FRAME_HEADER_BYTES + 1));
    struct peer_frame f;
    size_t used = 0, at = 0;
    char why[128];
    for (int i = 0; i < 2; i++) {
        CHECK(peer_decode(out.data + at, out.len - at, &used, &f, why, sizeof(why)) == PEER_OK);
        CHECK_EQ_U64(f.type, PEER_FRAME_STATE);
        CHECK_EQ_U64(f.state, i == 0 ? PEER_STATE_OOM : 0);
        peer_frame_release(&f);
        at += used;
    }
    uint8_t frame[64];
    uint8_t payload[2] = {1, 0};
    size_t flen = forge(frame, PEER_FRAME_STATE, payload, 0);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    flen = forge(frame, PEER_FRAME_STATE, payload, 2);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    payload[0] = 2;
    flen = forge(frame, PEER_FRAME_STATE, payload, 1);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    peer_buf_free(&out);
}

/* The map pull (docs/cluster.md, "Pull by version"): a pull and the two
 * answers round-trip; a map length over PEER_MAP_BYTES_MAX, one that does
 * not end the frame exactly, a pull with bytes after its epoch and every
 * cut of a header are refused; an oversized map is not encoded. */
TEST(map_pull_frames_round_trip_and_bad_lengths_are_refused) {
    struct peer_buf out = {0};
    static const uint8_t map[] = "SHMAP-not-decoded-here";
    struct peer_map_msg pull = {.pull = true, .epoch = 0};
    struct peer_map_msg same = {.epoch = 7, .meta_leader = 3};
    struct peer_map_msg full = {.epoch = 8, .meta_leader = 2, .map = map, .map_len = 20};
    CHECK(peer_encode_map(&out, &pull) == 0);
    CHECK_EQ_U64(out.len, PEER_FRAME_HEADER_BYTES + 8);
    CHECK(peer_encode_map(&out, &same) == 0);
    CHECK(peer_encode_map(&out, &full) == 0);
    struct peer_frame f;
    size_t used = 0, at = 0;
    char why[128];
    CHECK(peer_decode(out.data, out.len, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK_EQ_U64(f.type, PEER_FRAME_MAP_PULL);
    CHECK(f.map.pull && f.map.epoch == 0 && f.map.map_len == 0);
    at += used;
    CHECK(peer_decode(out.data + at, out.len - at, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK_EQ_U64(f.type, PEER_FRAME_MAP);
    CHECK(!f.map.pull && f.map.epoch == 7 && f.map.meta_leader == 3);
    CHECK(f.map.map_len == 0 && f.map.map == NULL);
    at += used;
    CHECK(peer_decode(out.data + at, out.len - at, &used, &f, why, sizeof(why)) == PEER_OK);
    CHECK(f.map.epoch == 8 && f.map.meta_leader == 2 && f.map.map_len == 20);
    CHECK(memcmp(f.map.map, map, 20) == 0);
    CHECK_EQ_U64(at + used, out.len);
    /* the MAP frame's payload, to forge bad ones from */
    uint8_t payload[64], frame[128];
    uint32_t plen = (uint32_t)(out.len - at - PEER_FRAME_HEADER_BYTES);
    CHECK_EQ_U64(plen, PEER_MAP_HEADER_BYTES + 20);
    memcpy(payload, out.data + at + PEER_FRAME_HEADER_BYTES, plen);
    /* map_len one more, one less than the bytes that follow */
    payload[16] = 21;
    size_t flen = forge(frame, PEER_FRAME_MAP, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    CHECK(strstr(why, "map length") != NULL);
    payload[16] = 19;
    flen = forge(frame, PEER_FRAME_MAP, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    /* a map_len over the limit, whatever follows */
    uint32_t huge = PEER_MAP_BYTES_MAX + 1;
    for (int i = 0; i < 4; i++) payload[16 + i] = (uint8_t)(huge >> (8 * i));
    flen = forge(frame, PEER_FRAME_MAP, payload, plen);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    CHECK(strstr(why, "map too long") != NULL);
    /* every cut of the MAP header, and a pull of 7 or 9 bytes */
    for (uint32_t cut = 0; cut < PEER_MAP_HEADER_BYTES; cut++) {
        flen = forge(frame, PEER_FRAME_MAP, payload, cut);
        CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    }
    flen = forge(frame, PEER_FRAME_MAP_PULL, payload, 7);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    flen = forge(frame, PEER_FRAME_MAP_PULL, payload, 9);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_EPROTO);
    flen = forge(frame, PEER_FRAME_MAP_PULL, payload, 8);
    CHECK(peer_decode(frame, flen, &used, &f, why, sizeof(why)) == PEER_OK);
    /* a map over the limit is not encoded, and out is unchanged */
    size_t before = out.len;
    full.map_len = PEER_MAP_BYTES_MAX + 1;
    CHECK(peer_encode_map(&out, &full) == RAFT_ETOOBIG);
    CHECK_EQ_U64(out.len, before);
    peer_buf_free(&out);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(beat_round_trips_and_a_beat_with_a_payload_is_refused),
        TEST_ENTRY(state_round_trips_and_bad_payloads_are_refused),
        TEST_ENTRY(random_messages_round_trip_in_one_stream),
        TEST_ENTRY(every_prefix_needs_more_and_every_bit_flip_is_refused),
        TEST_ENTRY(hostile_lengths_are_refused_before_buffering),
        TEST_ENTRY(publish_frames_round_trip_and_lengths_are_checked),
        TEST_ENTRY(oversized_message_is_not_encoded),
        TEST_ENTRY(map_pull_frames_round_trip_and_bad_lengths_are_refused),
    };
    return test_run("test_peer_codec", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
