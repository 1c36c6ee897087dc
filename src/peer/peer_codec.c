/* peer_codec.c: encoding and decoding of peer frames; see peer_codec.h. */
#include "peer/peer_codec.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"

#define PEER_FLAG_REJECT 1u

void peer_buf_free(struct peer_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int peer__reserve(struct peer_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) return RAFT_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* ---- writing ---- */

struct peer__writer {
    uint8_t *p;
};

static void peer__u8(struct peer__writer *w, uint8_t v) { *w->p++ = v; }

static void peer__u32(struct peer__writer *w, uint32_t v) {
    for (int i = 0; i < 4; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void peer__u64(struct peer__writer *w, uint64_t v) {
    for (int i = 0; i < 8; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void peer__bytes(struct peer__writer *w, const uint8_t *src, size_t len) {
    if (len > 0) memcpy(w->p, src, len);
    w->p += len;
}

/* Writes the header in front of a payload already written at
 * frame + PEER_FRAME_HEADER_BYTES. */
static void peer__seal(uint8_t *frame, uint8_t type, uint32_t payload_len) {
    struct peer__writer w = {frame};
    peer__u32(&w, payload_len);
    peer__u8(&w, PEER_VERSION);
    peer__u8(&w, type);
    uint32_t crc = crc32c(0, frame + 4, 2);
    crc = crc32c(crc, frame + PEER_FRAME_HEADER_BYTES, payload_len);
    peer__u32(&w, crc);
}

int peer_encode_hello(struct peer_buf *out, uint64_t cluster_id, uint64_t node_id) {
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES + 16) != 0) return RAFT_ENOMEM;
    uint8_t *frame = out->data + out->len;
    struct peer__writer w = {frame + PEER_FRAME_HEADER_BYTES};
    peer__u64(&w, cluster_id);
    peer__u64(&w, node_id);
    peer__seal(frame, PEER_FRAME_HELLO, 16);
    out->len += PEER_FRAME_HEADER_BYTES + 16;
    return 0;
}

int peer_encode_publish(struct peer_buf *out, bool sharded, const void *channel,
                        uint32_t channel_len, const void *message, uint32_t message_len) {
    uint64_t payload = 1 + 4 + (uint64_t)channel_len + 4 + message_len;
    if (payload > PEER_FRAME_BYTES_MAX) return RAFT_ETOOBIG;
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES + (size_t)payload) != 0) return RAFT_ENOMEM;
    uint8_t *frame = out->data + out->len;
    struct peer__writer w = {frame + PEER_FRAME_HEADER_BYTES};
    peer__u8(&w, sharded ? 1 : 0);
    peer__u32(&w, channel_len);
    peer__bytes(&w, channel, channel_len);
    peer__u32(&w, message_len);
    peer__bytes(&w, message, message_len);
    peer__seal(frame, PEER_FRAME_PUBLISH, (uint32_t)payload);
    out->len += PEER_FRAME_HEADER_BYTES + (size_t)payload;
    return 0;
}

int peer_encode_beat(struct peer_buf *out) {
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES) != 0) return RAFT_ENOMEM;
    peer__seal(out->data + out->len, PEER_FRAME_BEAT, 0);
    out->len += PEER_FRAME_HEADER_BYTES;
    return 0;
}

int peer_encode_state(struct peer_buf *out, uint8_t flags) {
    assert((flags & ~PEER_STATE_FLAGS) == 0);
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES + 1) != 0) return RAFT_ENOMEM;
    uint8_t *frame = out->data + out->len;
    frame[PEER_FRAME_HEADER_BYTES] = flags;
    peer__seal(frame, PEER_FRAME_STATE, 1);
    out->len += PEER_FRAME_HEADER_BYTES + 1;
    return 0;
}

int peer_encode_map(struct peer_buf *out, const struct peer_map_msg *m) {
    if (m->map_len > PEER_MAP_BYTES_MAX) return RAFT_ETOOBIG;
    assert(m->map_len == 0 || m->map != NULL);
    uint32_t payload = m->pull ? 8u : PEER_MAP_HEADER_BYTES + m->map_len;
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES + payload) != 0) return RAFT_ENOMEM;
    uint8_t *frame = out->data + out->len;
    struct peer__writer w = {frame + PEER_FRAME_HEADER_BYTES};
    peer__u64(&w, m->epoch);
    if (!m->pull) {
        peer__u64(&w, m->meta_leader);
        peer__u32(&w, m->map_len);
        peer__bytes(&w, m->map, m->map_len);
    }
    assert((size_t)(w.p - frame) == PEER_FRAME_HEADER_BYTES + payload);
    peer__seal(frame, m->pull ? PEER_FRAME_MAP_PULL : PEER_FRAME_MAP, payload);
    out->len += PEER_FRAME_HEADER_BYTES + payload;
    return 0;
}

static uint64_t peer__raft_size(const struct raft_msg *m, uint32_t conf_len) {
    uint64_t size = 8 + 1 + 1 + 8 * 8 + 4;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        size += PEER_ENTRY_BYTES_MIN + (uint64_t)m->entries[i].len;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) size += 8 + 8 + 4 + conf_len + 8 + 8 + 4 + m->chunk_len;
    if (m->type == RAFT_MSG_SNAPSHOT_RESP) size += 8 + 8 + 8 + 8;
    return size;
}

int peer_encode_raft(struct peer_buf *out, uint64_t group, const struct raft_msg *m) {
    uint8_t conf[RAFT_CONF_BYTES + 4];
    uint32_t conf_len = 0;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        conf_len = raft_conf_encode(&m->snapshot.conf, conf, sizeof(conf));
        if (conf_len == 0) return RAFT_EINVAL;
    }
    uint64_t size = peer__raft_size(m, conf_len);
    if (size > PEER_FRAME_BYTES_MAX) return RAFT_ETOOBIG;
    if (peer__reserve(out, PEER_FRAME_HEADER_BYTES + size) != 0) return RAFT_ENOMEM;
    uint8_t *frame = out->data + out->len;
    struct peer__writer w = {frame + PEER_FRAME_HEADER_BYTES};
    peer__u64(&w, group);
    peer__u8(&w, m->type);
    peer__u8(&w, m->reject ? PEER_FLAG_REJECT : 0);
    peer__u64(&w, m->from);
    peer__u64(&w, m->to);
    peer__u64(&w, m->term);
    peer__u64(&w, m->log_term);
    peer__u64(&w, m->index);
    peer__u64(&w, m->commit);
    peer__u64(&w, m->context);
    peer__u64(&w, m->reject_hint);
    peer__u32(&w, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        peer__u64(&w, e->term);
        peer__u64(&w, e->index);
        peer__u8(&w, e->type);
        peer__u32(&w, e->len);
        peer__bytes(&w, e->data, e->len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        peer__u64(&w, m->snapshot.index);
        peer__u64(&w, m->snapshot.term);
        peer__u32(&w, conf_len);
        peer__bytes(&w, conf, conf_len);
        peer__u64(&w, m->snapshot_size);
        peer__u64(&w, m->chunk_offset);
        peer__u32(&w, m->chunk_len);
        peer__bytes(&w, m->chunk, m->chunk_len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT_RESP) {
        peer__u64(&w, m->snapshot.index);
        peer__u64(&w, m->snapshot.term);
        peer__u64(&w, m->snapshot_size);
        peer__u64(&w, m->chunk_offset);
    }
    assert((uint64_t)(w.p - frame) == PEER_FRAME_HEADER_BYTES + size);
    peer__seal(frame, PEER_FRAME_RAFT, (uint32_t)size);
    out->len += PEER_FRAME_HEADER_BYTES + size;
    return 0;
}

/* ---- reading ---- */

struct peer__reader {
    const uint8_t *p;
    const uint8_t *end;
    bool short_read;
};

static uint64_t peer__get(struct peer__reader *r, int bytes) {
    if (r->end - r->p < bytes) {
        r->short_read = true;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

static const uint8_t *peer__take(struct peer__reader *r, uint64_t len) {
    if ((uint64_t)(r->end - r->p) < len) {
        r->short_read = true;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += len;
    return at;
}

static enum peer_parse_result peer__fail(char *why, size_t why_cap, const char *reason) {
    if (why_cap > 0) snprintf(why, why_cap, "peer frame: %s", reason);
    return PEER_EPROTO;
}

static enum peer_parse_result peer__decode_entries(struct peer__reader *r, struct raft_msg *m,
                                                   char *why, size_t why_cap) {
    uint64_t left = (uint64_t)(r->end - r->p);
    if (m->n_entries > left / PEER_ENTRY_BYTES_MIN) {
        return peer__fail(why, why_cap, "entry count exceeds the frame");
    }
    if (m->n_entries == 0) return PEER_OK;
    m->entries = calloc(m->n_entries, sizeof(*m->entries));
    if (m->entries == NULL) return peer__fail(why, why_cap, "out of memory");
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct raft_entry *e = &m->entries[i];
        e->term = peer__get(r, 8);
        e->index = peer__get(r, 8);
        e->type = (uint8_t)peer__get(r, 1);
        e->len = (uint32_t)peer__get(r, 4);
        e->data = (uint8_t *)peer__take(r, e->len);
        if (r->short_read) return peer__fail(why, why_cap, "entry runs past the frame");
        if (e->type > RAFT_ENTRY_CONF) return peer__fail(why, why_cap, "unknown entry type");
        if (e->len == 0) e->data = NULL;
    }
    return PEER_OK;
}

static enum peer_parse_result peer__decode_snapshot(struct peer__reader *r, struct raft_msg *m,
                                                    char *why, size_t why_cap) {
    m->snapshot.index = peer__get(r, 8);
    m->snapshot.term = peer__get(r, 8);
    uint32_t conf_len = (uint32_t)peer__get(r, 4);
    const uint8_t *conf = peer__take(r, conf_len);
    m->snapshot_size = peer__get(r, 8);
    m->chunk_offset = peer__get(r, 8);
    m->chunk_len = (uint32_t)peer__get(r, 4);
    m->chunk = (uint8_t *)peer__take(r, m->chunk_len);
    if (r->short_read) return peer__fail(why, why_cap, "snapshot chunk runs past the frame");
    if (raft_conf_decode(conf, conf_len, &m->snapshot.conf) != RAFT_OK) {
        return peer__fail(why, why_cap, "bad snapshot configuration");
    }
    if (m->snapshot_size > RAFT_SNAPSHOT_BYTES_MAX || m->chunk_offset > m->snapshot_size ||
        m->chunk_len > m->snapshot_size - m->chunk_offset) {
        return peer__fail(why, why_cap, "snapshot chunk outside the snapshot");
    }
    if (m->chunk_len == 0) m->chunk = NULL;
    return PEER_OK;
}

static enum peer_parse_result peer__decode_raft(struct peer__reader *r, struct peer_frame *f,
                                                char *why, size_t why_cap) {
    struct raft_msg *m = &f->msg;
    f->group = peer__get(r, 8);
    m->type = (uint8_t)peer__get(r, 1);
    uint8_t flags = (uint8_t)peer__get(r, 1);
    m->reject = (flags & PEER_FLAG_REJECT) != 0;
    m->from = peer__get(r, 8);
    m->to = peer__get(r, 8);
    m->term = peer__get(r, 8);
    m->log_term = peer__get(r, 8);
    m->index = peer__get(r, 8);
    m->commit = peer__get(r, 8);
    m->context = peer__get(r, 8);
    m->reject_hint = peer__get(r, 8);
    m->n_entries = (uint32_t)peer__get(r, 4);
    if (r->short_read) return peer__fail(why, why_cap, "raft message header runs past the frame");
    if (m->type == 0 || m->type >= RAFT_MSG_TYPE_COUNT || (flags & ~PEER_FLAG_REJECT) != 0) {
        return peer__fail(why, why_cap, "unknown raft message type or flags");
    }
    enum peer_parse_result rc = peer__decode_entries(r, m, why, why_cap);
    if (rc == PEER_OK && m->type == RAFT_MSG_SNAPSHOT) rc = peer__decode_snapshot(r, m, why, why_cap);
    if (rc == PEER_OK && m->type == RAFT_MSG_SNAPSHOT_RESP) {
        m->snapshot.index = peer__get(r, 8);
        m->snapshot.term = peer__get(r, 8);
        m->snapshot_size = peer__get(r, 8);
        m->chunk_offset = peer__get(r, 8);
        if (r->short_read) rc = peer__fail(why, why_cap, "snapshot answer runs past the frame");
    }
    if (rc == PEER_OK && r->p != r->end) rc = peer__fail(why, why_cap, "trailing bytes");
    return rc;
}

/* MAP_PULL: exactly an epoch. MAP: epoch, leader, and a map of map_len
 * bytes, at most PEER_MAP_BYTES_MAX, ending the frame. */
static enum peer_parse_result peer__decode_map(struct peer__reader *r, struct peer_frame *f,
                                               char *why, size_t why_cap) {
    struct peer_map_msg *m = &f->map;
    m->pull = f->type == PEER_FRAME_MAP_PULL;
    m->epoch = peer__get(r, 8);
    if (!m->pull) {
        m->meta_leader = peer__get(r, 8);
        m->map_len = (uint32_t)peer__get(r, 4);
    }
    if (r->short_read) return peer__fail(why, why_cap, "map frame header runs past the frame");
    if (m->map_len > PEER_MAP_BYTES_MAX) return peer__fail(why, why_cap, "map too long");
    if ((uint64_t)(r->end - r->p) != m->map_len) {
        return peer__fail(why, why_cap, "map length does not match the frame");
    }
    m->map = m->map_len > 0 ? r->p : NULL;
    r->p += m->map_len;
    return PEER_OK;
}

enum peer_parse_result peer_decode(const uint8_t *buf, size_t len, size_t *consumed,
                                   struct peer_frame *f, char *why, size_t why_cap) {
    memset(f, 0, sizeof(*f));
    if (why_cap > 0) why[0] = '\0';
    if (len < PEER_FRAME_HEADER_BYTES) return PEER_NEED_MORE;
    struct peer__reader hr = {buf, buf + PEER_FRAME_HEADER_BYTES, false};
    uint32_t payload_len = (uint32_t)peer__get(&hr, 4);
    uint8_t version = (uint8_t)peer__get(&hr, 1);
    uint8_t type = (uint8_t)peer__get(&hr, 1);
    uint32_t crc = (uint32_t)peer__get(&hr, 4);
    if (payload_len > PEER_FRAME_BYTES_MAX) return peer__fail(why, why_cap, "frame too long");
    if (version != PEER_VERSION) return peer__fail(why, why_cap, "unsupported version");
    if (len - PEER_FRAME_HEADER_BYTES < payload_len) return PEER_NEED_MORE;
    const uint8_t *payload = buf + PEER_FRAME_HEADER_BYTES;
    uint32_t want = crc32c(crc32c(0, buf + 4, 2), payload, payload_len);
    if (want != crc) return peer__fail(why, why_cap, "crc mismatch");
    struct peer__reader r = {payload, payload + payload_len, false};
    f->type = type;
    enum peer_parse_result rc;
    if (type == PEER_FRAME_HELLO) {
        f->cluster_id = peer__get(&r, 8);
        f->node_id = peer__get(&r, 8);
        rc = r.short_read || r.p != r.end ? peer__fail(why, why_cap, "bad hello") : PEER_OK;
    } else if (type == PEER_FRAME_RAFT) {
        rc = peer__decode_raft(&r, f, why, why_cap);
    } else if (type == PEER_FRAME_PUBLISH) {
        uint8_t flags = (uint8_t)peer__get(&r, 1);
        f->sharded = (flags & 1) != 0;
        f->channel_len = (uint32_t)peer__get(&r, 4);
        if (!r.short_read && (size_t)(r.end - r.p) >= f->channel_len) {
            f->channel = r.p;
            r.p += f->channel_len;
            f->message_len = (uint32_t)peer__get(&r, 4);
            if (!r.short_read && (size_t)(r.end - r.p) == f->message_len) {
                f->message = r.p;
                r.p += f->message_len;
            }
        }
        rc = f->message == NULL || (flags & ~1u) ? peer__fail(why, why_cap, "bad publish")
                                                 : PEER_OK;
    } else if (type == PEER_FRAME_MAP_PULL || type == PEER_FRAME_MAP) {
        rc = peer__decode_map(&r, f, why, why_cap);
    } else if (type == PEER_FRAME_BEAT) {
        rc = payload_len == 0 ? PEER_OK : peer__fail(why, why_cap, "bad beat");
    } else if (type == PEER_FRAME_STATE) {
        f->state = (uint8_t)peer__get(&r, 1);
        rc = r.short_read || r.p != r.end || (f->state & ~PEER_STATE_FLAGS)
                 ? peer__fail(why, why_cap, "bad state")
                 : PEER_OK;
    } else {
        rc = peer__fail(why, why_cap, "unknown frame type");
    }
    if (rc != PEER_OK) {
        peer_frame_release(f);
        return rc;
    }
    *consumed = PEER_FRAME_HEADER_BYTES + (size_t)payload_len;
    return PEER_OK;
}

void peer_frame_release(struct peer_frame *f) {
    free(f->msg.entries);
    f->msg.entries = NULL;
    f->msg.n_entries = 0;
}
