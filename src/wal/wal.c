/* wal.c: the node's write-ahead log; the format, recovery rules, group
 * commit and fail-stop contract are in wal.h and docs/wal.md.
 *
 * Layout is decided at append time: every record is encoded straight into
 * the buffer with its final place (segment, offset) already chosen, so a
 * batch is a list of chunks "write these bytes at this offset of this
 * segment (creating it first)", and wal_flush_run() needs nothing else. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "wal/wal.h"

#define WAL__SEGMENT_HEADER_BYTES (WAL_RECORD_HEADER_BYTES + WAL_SEGMENT_HEADER_PAYLOAD_BYTES)
#define WAL__SEGMENT_FILE_BYTES_MAX \
    ((uint64_t)WAL_SEGMENT_BYTES_MAX + WAL_RECORD_BYTES_MAX + 2 * WAL_SEGMENT_ALIGN_BYTES)
#define WAL__NO_SLOT UINT32_MAX
#define WAL__ZEROS_BYTES 4096

/* Flags of a group's summary in one segment. */
#define WAL__HAS_ENTRIES 1u
#define WAL__HAS_HARD_STATE 2u
#define WAL__HAS_MARK 4u

/* Outcomes of decoding one record. */
enum wal__decoded {
    WAL__DECODED = 0,
    WAL__END,        /* zeros: no more records in this segment */
    WAL__SHORT,      /* the record runs past the end of the file */
    WAL__BAD_LENGTH, /* length over record_bytes_max */
    WAL__BAD_CRC,
    WAL__BAD_TYPE,
    WAL__BAD_VERSION,
};

struct wal__record {
    uint8_t type;
    uint8_t version;
    uint32_t len;
    uint64_t group;
    uint64_t term;
    uint64_t index;
    const uint8_t *payload;
};

/* What one group has in one segment: for wal_gc(). */
struct wal__summary {
    uint32_t group; /* index into wal->groups */
    uint8_t flags;  /* WAL__HAS_* */
    uint64_t max_index;
};

struct wal__segment {
    uint64_t seq;
    uint64_t size; /* bytes records may use */
    uint64_t end;  /* at open: end of its records */
    int fd;        /* open only for the tail and a segment being left */
    uint32_t n_summary;
    uint32_t cap_summary;
    struct wal__summary *summary;
};

struct wal__group {
    uint64_t id;
    /* durable: on disk and synced (recovery, or a completed flush) */
    bool has_hs;
    bool has_mark;
    struct raft_hard_state hs;
    uint64_t hs_seq;
    uint64_t mark_index;
    uint64_t mark_term;
    uint64_t mark_seq;
    /* laid out: appended, durable or not */
    bool laid_has_hs;
    bool laid_has_mark;
    struct raft_hard_state laid_hs;
    uint64_t laid_hs_seq;
    uint64_t laid_mark_index;
    uint64_t laid_mark_term;
    uint64_t laid_mark_seq;
    uint64_t laid_last_index; /* last entry, or the mark if later; 0: none */
    /* its slot in the tail's summary and in the buffer's touch list */
    uint64_t sum_seq;
    uint32_t sum_slot;
    uint32_t touch_slot;
    uint64_t touch_gen;
};

/* Write buf bytes [start, start + len) at `offset` of segment `seq`. */
struct wal__chunk {
    uint64_t seq;
    uint64_t offset;
    uint64_t start;
    uint64_t len;
    uint64_t create_bytes; /* > 0: create and preallocate the segment first */
    int fd;
};

/* What a batch makes durable for one group. */
struct wal__touch {
    uint32_t group;
    uint64_t hs_seq;
    uint64_t mark_seq;
    struct wal_durable durable;
};

struct wal__buf {
    uint8_t *bytes;
    uint64_t len;
    uint64_t cap;
    struct wal__chunk *chunks;
    uint32_t n_chunks;
    uint32_t cap_chunks;
    struct wal__touch *touches;
    uint32_t n_touches;
    uint32_t cap_touches;
    uint64_t *retired; /* segments to delete after the sync */
    uint32_t n_retired;
    uint32_t cap_retired;
};

struct wal_batch {
    struct io *io;
    char dir[WAL_DIR_BYTES_MAX];
    struct wal__buf buf;
    /* zeros written ahead of the records in the tail (its last chunk):
     * wal__plan_zeros */
    uint64_t zero_offset, zero_len;
    int result;
    char error[WAL_ERROR_BYTES];
};

struct wal {
    struct io *io;
    struct wal_options options;
    char dir[WAL_DIR_BYTES_MAX];
    int failed;
    char error[WAL_ERROR_BYTES];
    struct wal__segment *segments; /* oldest first, consecutive seqs; last = tail */
    uint32_t n_segments;
    uint32_t cap_segments;
    uint64_t tail_offset; /* where the next record goes in the tail */
    uint64_t next_seq;    /* seq of the first segment when there is none */
    uint64_t durable_seq;
    struct wal__group *groups; /* dense, in order of first sight */
    uint32_t n_groups;
    uint32_t cap_groups;
    uint32_t *index; /* open addressing: group id -> dense slot */
    uint32_t index_cap;
    struct wal__buf buf;
    uint64_t buf_gen;
    struct wal_batch *inflight;
    /* the tail's written space: zeros were written up to zeroed_to in
     * segment zeroed_seq (wal__plan_zeros) */
    uint64_t zeroed_seq, zeroed_to;
};

/* Zeros ahead of the records (docs/wal.md, "Zeros ahead"): a preallocated
 * segment's extents are unwritten, and a sync of the first records in each
 * of them converts it, a journal commit that queues behind every other
 * commit of the file system (a snapshot's, say). A batch that leaves less
 * than WAL_ZERO_AHEAD_MIN_BYTES of written space past its records writes
 * WAL_ZERO_AHEAD_BYTES of zeros there, so most syncs write into written
 * blocks. Zeros past the last record are what a segment holds anyway. */
#define WAL_ZERO_AHEAD_BYTES (1u << 20)
#define WAL_ZERO_AHEAD_MIN_BYTES (512u << 10)
static uint8_t wal__zeros[WAL_ZERO_AHEAD_BYTES]; /* never written */

/* ---- small helpers ---- */

static void wal__put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void wal__put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t wal__get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t wal__get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool wal__all_zero(const uint8_t *p, uint64_t len) {
    for (uint64_t i = 0; i < len; i++) {
        if (p[i] != 0) return false;
    }
    return true;
}

/* Grows an array to hold `need` elements; WAL_OK or WAL_ENOMEM. */
static int wal__grow(void **array, uint32_t *cap, uint32_t need, size_t elem_bytes) {
    if (need <= *cap) return WAL_OK;
    uint64_t cap_new = *cap < 8 ? 8 : (uint64_t)*cap * 2;
    while (cap_new < need) cap_new *= 2;
    if (cap_new > UINT32_MAX) cap_new = UINT32_MAX;
    void *grown = realloc(*array, (size_t)cap_new * elem_bytes);
    if (grown == NULL) return WAL_ENOMEM;
    *array = grown;
    *cap = (uint32_t)cap_new;
    return WAL_OK;
}

static void wal__path(const char *dir, uint64_t seq, char *out, size_t out_bytes) {
    int n = snprintf(out, out_bytes, "%s/%020llu.wal", dir, (unsigned long long)seq);
    assert(n > 0 && (size_t)n < out_bytes);
    (void)n;
}

static int wal__from_io(int io_err) {
    assert(io_err < 0);
    if (io_err == -ENOSPC || io_err == -EDQUOT) return WAL_ENOSPC;
    if (io_err == -ENOMEM) return WAL_ENOMEM;
    return WAL_EIO;
}

static void wal__vformat(char *out, const char *fmt, va_list ap) {
    vsnprintf(out, WAL_ERROR_BYTES, fmt, ap);
}

__attribute__((format(printf, 3, 4))) static int wal__fail(struct wal *wal, int err,
                                                           const char *fmt, ...) {
    assert(err < 0);
    if (wal->failed != WAL_OK) return wal->failed; /* the first failure is the story */
    wal->failed = err;
    va_list ap;
    va_start(ap, fmt);
    wal__vformat(wal->error, fmt, ap);
    va_end(ap);
    return err;
}

__attribute__((format(printf, 3, 4))) static int wal__say(char *error, int err,
                                                          const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    wal__vformat(error, fmt, ap);
    va_end(ap);
    return err;
}

const char *wal_strerror(int err) {
    switch (err) {
    case WAL_OK: return "ok";
    case WAL_EINVAL: return "invalid argument";
    case WAL_ETOOBIG: return "record too big";
    case WAL_EFULL: return "append buffer full";
    case WAL_EBUSY: return "a flush is in flight";
    case WAL_ELIMIT: return "over a limit";
    case WAL_ENOMEM: return "out of memory";
    case WAL_EIO: return "i/o error";
    case WAL_ENOSPC: return "no space left on device";
    case WAL_ECORRUPT: return "corrupt log";
    default: return "unknown error";
    }
}

void wal_options_default(struct wal_options *options) {
    options->segment_bytes = 64u << 20;
    options->record_bytes_max = 64u << 20;
    options->buffer_bytes_max = 128u << 20;
    options->groups_max = 65536;
}

static bool wal__options_ok(const struct wal_options *o) {
    if (o->segment_bytes < WAL_SEGMENT_BYTES_MIN || o->segment_bytes > WAL_SEGMENT_BYTES_MAX)
        return false;
    if (o->segment_bytes % WAL_SEGMENT_ALIGN_BYTES != 0) return false;
    if (o->record_bytes_max < 64 || o->record_bytes_max > WAL_RECORD_BYTES_MAX) return false;
    if (o->buffer_bytes_max < (uint64_t)o->record_bytes_max + WAL_SEGMENT_ALIGN_BYTES)
        return false;
    return o->groups_max >= 1 && o->groups_max <= WAL_GROUPS_MAX;
}

/* ---- records ---- */

static bool wal__type_known(uint8_t type) {
    return type >= WAL_RECORD_SEGMENT_HEADER && type <= WAL_RECORD_SNAPSHOT_MARK;
}

/* Encodes a record whose payload is p1[n1] then p2[n2] at dst. */
static void wal__encode(uint8_t *dst, const struct wal__record *rec, const void *p1, uint32_t n1,
                        const void *p2, uint32_t n2) {
    assert(wal__type_known(rec->type));
    assert(rec->len == n1 + n2);
    wal__put32(dst + 4, rec->len);
    dst[8] = rec->type;
    dst[9] = WAL_RECORD_VERSION;
    wal__put64(dst + 10, rec->group);
    wal__put64(dst + 18, rec->term);
    wal__put64(dst + 26, rec->index);
    if (n1 > 0) memcpy(dst + WAL_RECORD_HEADER_BYTES, p1, n1);
    if (n2 > 0) memcpy(dst + WAL_RECORD_HEADER_BYTES + n1, p2, n2);
    wal__put32(dst, crc32c(0, dst + 4, WAL_RECORD_HEADER_BYTES - 4 + (size_t)rec->len));
}

#ifdef CANARY_WAL_ACCEPT_BAD_CRC
/* Canary: a reader that trusts every byte. tests/unit/test_wal.c must fail. */
static bool wal__crc_ok(const uint8_t *src, uint32_t len) {
    (void)src;
    (void)len;
    return true;
}
#else
static bool wal__crc_ok(const uint8_t *src, uint32_t len) {
    uint32_t crc = crc32c(0, src + 4, WAL_RECORD_HEADER_BYTES - 4 + (size_t)len);
    return crc == wal__get32(src);
}
#endif

/* Decodes the record at src, with `avail` bytes left in the segment. The
 * checks mirror wal__encode()'s assertions. */
static enum wal__decoded wal__decode(const uint8_t *src, uint64_t avail, uint32_t len_max,
                                     struct wal__record *rec) {
    memset(rec, 0, sizeof(*rec));
    uint64_t head = avail < WAL_RECORD_HEADER_BYTES ? avail : WAL_RECORD_HEADER_BYTES;
    if (wal__all_zero(src, head)) return WAL__END;
    if (avail < WAL_RECORD_HEADER_BYTES) return WAL__SHORT;
    rec->len = wal__get32(src + 4);
    rec->type = src[8];
    rec->version = src[9];
    rec->group = wal__get64(src + 10);
    rec->term = wal__get64(src + 18);
    rec->index = wal__get64(src + 26);
    rec->payload = src + WAL_RECORD_HEADER_BYTES;
    if (rec->len > len_max) return WAL__BAD_LENGTH;
    if (WAL_RECORD_HEADER_BYTES + (uint64_t)rec->len > avail) return WAL__SHORT;
    if (!wal__crc_ok(src, rec->len)) return WAL__BAD_CRC;
    if (!wal__type_known(rec->type)) return WAL__BAD_TYPE;
    if (rec->version != WAL_RECORD_VERSION) return WAL__BAD_VERSION;
    return WAL__DECODED;
}

/* ---- groups ---- */

static uint32_t wal__hash(uint64_t id) {
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdull;
    id ^= id >> 33;
    return (uint32_t)id;
}

static uint32_t wal__group_find(const struct wal *wal, uint64_t id) {
    if (wal->index_cap == 0) return WAL__NO_SLOT;
    uint32_t mask = wal->index_cap - 1;
    for (uint32_t i = wal__hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t slot = wal->index[i];
        if (slot == WAL__NO_SLOT || wal->groups[slot].id == id) return slot;
    }
}

static void wal__index_put(uint32_t *index, uint32_t cap, uint64_t id, uint32_t slot) {
    uint32_t mask = cap - 1;
    uint32_t i = wal__hash(id) & mask;
    while (index[i] != WAL__NO_SLOT) i = (i + 1) & mask;
    index[i] = slot;
}

/* Keeps the index at most half full. */
static int wal__index_reserve(struct wal *wal, uint32_t n_groups) {
    if ((uint64_t)n_groups * 2 <= wal->index_cap) return WAL_OK;
    uint32_t cap = wal->index_cap == 0 ? 64 : wal->index_cap * 2;
    uint32_t *index = malloc((size_t)cap * sizeof(*index));
    if (index == NULL) return WAL_ENOMEM;
    for (uint32_t i = 0; i < cap; i++) index[i] = WAL__NO_SLOT;
    for (uint32_t g = 0; g < wal->n_groups; g++) wal__index_put(index, cap, wal->groups[g].id, g);
    free(wal->index);
    wal->index = index;
    wal->index_cap = cap;
    return WAL_OK;
}

/* Finds or adds a group: WAL_OK, WAL_ELIMIT (over groups_max), WAL_ENOMEM. */
static int wal__group_get(struct wal *wal, uint64_t id, uint32_t *slot) {
    *slot = wal__group_find(wal, id);
    if (*slot != WAL__NO_SLOT) return WAL_OK;
    if (wal->n_groups >= wal->options.groups_max) return WAL_ELIMIT;
    int rc = wal__grow((void **)&wal->groups, &wal->cap_groups, wal->n_groups + 1,
                       sizeof(*wal->groups));
    if (rc == WAL_OK) rc = wal__index_reserve(wal, wal->n_groups + 1);
    if (rc != WAL_OK) return rc;
    struct wal__group *g = &wal->groups[wal->n_groups];
    memset(g, 0, sizeof(*g));
    g->id = id;
    g->sum_slot = WAL__NO_SLOT;
    g->touch_slot = WAL__NO_SLOT;
    wal__index_put(wal->index, wal->index_cap, id, wal->n_groups);
    *slot = wal->n_groups++;
    return WAL_OK;
}

/* ---- segments and the buffer ---- */

static struct wal__segment *wal__tail(struct wal *wal) {
    assert(wal->n_segments > 0);
    return &wal->segments[wal->n_segments - 1];
}

static struct wal__segment *wal__segment_of(struct wal *wal, uint64_t seq) {
    if (wal->n_segments == 0 || seq < wal->segments[0].seq) return NULL;
    uint64_t i = seq - wal->segments[0].seq;
    if (i >= wal->n_segments) return NULL;
    assert(wal->segments[i].seq == seq);
    return &wal->segments[i];
}

static int wal__segment_add(struct wal *wal, uint64_t seq, uint64_t size, int fd) {
    if (wal->n_segments >= WAL_SEGMENTS_MAX) return WAL_ELIMIT;
    assert(wal->n_segments == 0 || seq == wal__tail(wal)->seq + 1);
    int rc = wal__grow((void **)&wal->segments, &wal->cap_segments, wal->n_segments + 1,
                       sizeof(*wal->segments));
    if (rc != WAL_OK) return rc;
    struct wal__segment *seg = &wal->segments[wal->n_segments++];
    memset(seg, 0, sizeof(*seg));
    seg->seq = seq;
    seg->size = size;
    seg->fd = fd;
    return WAL_OK;
}

/* Notes that group `gi` has a record of kind `flag` in the tail. */
static int wal__summarize(struct wal *wal, uint32_t gi, uint8_t flag, uint64_t index) {
    struct wal__segment *seg = wal__tail(wal);
    struct wal__group *g = &wal->groups[gi];
    if (g->sum_seq != seg->seq) {
        int rc = wal__grow((void **)&seg->summary, &seg->cap_summary, seg->n_summary + 1,
                           sizeof(*seg->summary));
        if (rc != WAL_OK) return rc;
        seg->summary[seg->n_summary] = (struct wal__summary){.group = gi};
        g->sum_seq = seg->seq;
        g->sum_slot = seg->n_summary++;
    }
    struct wal__summary *s = &seg->summary[g->sum_slot];
    assert(s->group == gi);
    s->flags |= flag;
    if (flag == WAL__HAS_ENTRIES && index > s->max_index) s->max_index = index;
    return WAL_OK;
}

/* The buffer's report slot for group `gi`, or NULL when out of memory. */
static struct wal__touch *wal__touch(struct wal *wal, uint32_t gi) {
    struct wal__group *g = &wal->groups[gi];
    if (g->touch_gen == wal->buf_gen) return &wal->buf.touches[g->touch_slot];
    struct wal__buf *buf = &wal->buf;
    if (wal__grow((void **)&buf->touches, &buf->cap_touches, buf->n_touches + 1,
                  sizeof(*buf->touches)) != WAL_OK)
        return NULL;
    struct wal__touch *t = &buf->touches[buf->n_touches];
    memset(t, 0, sizeof(*t));
    t->group = gi;
    t->durable.group = g->id;
    g->touch_gen = wal->buf_gen;
    g->touch_slot = buf->n_touches++;
    return t;
}

static int wal__buf_reserve(struct wal__buf *buf, uint64_t more) {
    if (buf->len + more <= buf->cap) return WAL_OK;
    uint64_t cap = buf->cap < 65536 ? 65536 : buf->cap;
    while (cap < buf->len + more) cap *= 2;
    uint8_t *grown = realloc(buf->bytes, (size_t)cap);
    if (grown == NULL) return WAL_ENOMEM;
    buf->bytes = grown;
    buf->cap = cap;
    return WAL_OK;
}

/* Encodes a record at the end of the buffer, to land at tail_offset of the
 * tail segment, which the buffer creates first if create_bytes > 0. */
static int wal__put(struct wal *wal, const struct wal__record *rec, const void *p1, uint32_t n1,
                    const void *p2, uint32_t n2, uint64_t create_bytes) {
    struct wal__buf *buf = &wal->buf;
    uint64_t size = WAL_RECORD_HEADER_BYTES + (uint64_t)rec->len;
    struct wal__segment *tail = wal__tail(wal);
    assert(wal->tail_offset + size <= tail->size);
    int rc = wal__buf_reserve(buf, size);
    if (rc != WAL_OK) return rc;
    struct wal__chunk *last = buf->n_chunks > 0 ? &buf->chunks[buf->n_chunks - 1] : NULL;
    if (create_bytes > 0 || last == NULL || last->seq != tail->seq ||
        last->offset + last->len != wal->tail_offset) {
        rc = wal__grow((void **)&buf->chunks, &buf->cap_chunks, buf->n_chunks + 1,
                       sizeof(*buf->chunks));
        if (rc != WAL_OK) return rc;
        last = &buf->chunks[buf->n_chunks++];
        *last = (struct wal__chunk){.seq = tail->seq, .offset = wal->tail_offset,
                                    .start = buf->len, .create_bytes = create_bytes, .fd = -1};
    }
    assert(last->start + last->len == buf->len);
    wal__encode(buf->bytes + buf->len, rec, p1, n1, p2, n2);
    buf->len += size;
    last->len += size;
    wal->tail_offset += size;
    return WAL_OK;
}

static uint64_t wal__align_up(uint64_t n) {
    return (n + WAL_SEGMENT_ALIGN_BYTES - 1) / WAL_SEGMENT_ALIGN_BYTES * WAL_SEGMENT_ALIGN_BYTES;
}

/* Starts the next segment, big enough for a record of `need` bytes. */
static int wal__segment_start(struct wal *wal, uint64_t need) {
    uint64_t seq = wal->n_segments > 0 ? wal__tail(wal)->seq + 1 : wal->next_seq;
    uint64_t size = wal->options.segment_bytes;
    if (wal__align_up(WAL__SEGMENT_HEADER_BYTES + need) > size)
        size = wal__align_up(WAL__SEGMENT_HEADER_BYTES + need);
    int rc = wal__segment_add(wal, seq, size, -1);
    if (rc != WAL_OK) return rc;
    wal->tail_offset = 0;
    uint8_t payload[WAL_SEGMENT_HEADER_PAYLOAD_BYTES];
    wal__put64(payload, WAL_MAGIC);
    wal__put32(payload + 8, WAL_FORMAT_VERSION);
    wal__put32(payload + 12, 0);
    wal__put64(payload + 16, seq);
    wal__put64(payload + 24, size);
    struct wal__record rec = {.type = WAL_RECORD_SEGMENT_HEADER, .len = sizeof(payload),
                              .index = seq};
    return wal__put(wal, &rec, payload, sizeof(payload), NULL, 0, size);
}

/* Lays out and buffers one record, rolling over to a new segment if the
 * tail has no room. */
static int wal__emit(struct wal *wal, const struct wal__record *rec, const void *p1, uint32_t n1,
                     const void *p2, uint32_t n2) {
    uint64_t size = WAL_RECORD_HEADER_BYTES + (uint64_t)rec->len;
    assert(rec->len <= wal->options.record_bytes_max);
    if (wal->n_segments == 0 || wal->tail_offset + size > wal__tail(wal)->size) {
        int rc = wal__segment_start(wal, size);
        if (rc != WAL_OK) return rc;
    }
    return wal__put(wal, rec, p1, n1, p2, n2, 0);
}

/* ---- appends ---- */

/* Checks that `more` bytes in `records` records fit the buffer. */
static int wal__room(const struct wal *wal, uint64_t more, uint64_t records) {
    uint64_t worst = more + (records + 1) * WAL__SEGMENT_HEADER_BYTES;
    if (wal->buf.len + worst > wal->options.buffer_bytes_max) return WAL_EFULL;
    return WAL_OK;
}

/* Validates an append of entries to a group (`g` NULL if new). */
static int wal__check_entries(const struct wal *wal, const struct wal__group *g,
                              const struct raft_entry *entries, uint32_t n, uint64_t *bytes) {
    uint64_t first = entries[0].index;
    if (first == 0) return WAL_EINVAL;
    if (g != NULL && g->laid_has_mark && first <= g->laid_mark_index) return WAL_EINVAL;
    if (g != NULL && g->laid_last_index > 0 && first > g->laid_last_index + 1) return WAL_EINVAL;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->index != first + i) return WAL_EINVAL;
        if (i > 0 && e->term < entries[i - 1].term) return WAL_EINVAL;
        if (e->len > 0 && e->data == NULL) return WAL_EINVAL;
        if ((uint64_t)e->len + 1 > wal->options.record_bytes_max) return WAL_ETOOBIG;
        total += WAL_RECORD_HEADER_BYTES + 1 + (uint64_t)e->len;
    }
    *bytes = total;
    return wal__room(wal, total, n);
}

/* Validation passed: from here on an error fails the WAL. */
static int wal__emit_entries(struct wal *wal, uint32_t gi, const struct raft_entry *entries,
                             uint32_t n) {
    struct wal__group *g = &wal->groups[gi];
    for (uint32_t i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        struct wal__record rec = {.type = WAL_RECORD_ENTRY, .len = 1 + e->len, .group = g->id,
                                  .term = e->term, .index = e->index};
        int rc = wal__emit(wal, &rec, &e->type, 1, e->data, e->len);
        if (rc == WAL_OK) rc = wal__summarize(wal, gi, WAL__HAS_ENTRIES, e->index);
        if (rc != WAL_OK) return rc;
    }
    struct wal__touch *t = wal__touch(wal, gi);
    if (t == NULL) return WAL_ENOMEM;
    t->durable.has_entries = true;
    t->durable.last_index = entries[n - 1].index;
    t->durable.last_term = entries[n - 1].term;
    g->laid_last_index = entries[n - 1].index;
    return WAL_OK;
}

int wal_append_entries(struct wal *wal, uint64_t group, const struct raft_entry *entries,
                       uint32_t n) {
    if (wal->failed != WAL_OK) return wal->failed;
    if (n == 0) return WAL_OK;
    if (entries == NULL) return WAL_EINVAL;
    uint32_t gi = wal__group_find(wal, group);
    uint64_t bytes = 0;
    int rc = wal__check_entries(wal, gi == WAL__NO_SLOT ? NULL : &wal->groups[gi], entries, n,
                                &bytes);
    if (rc == WAL_OK && gi == WAL__NO_SLOT) rc = wal__group_get(wal, group, &gi);
    if (rc == WAL_EINVAL || rc == WAL_ETOOBIG || rc == WAL_EFULL || rc == WAL_ELIMIT) return rc;
    if (rc == WAL_OK) rc = wal__emit_entries(wal, gi, entries, n);
    if (rc != WAL_OK) return wal__fail(wal, rc, "wal: append: %s", wal_strerror(rc));
    return WAL_OK;
}

/* Buffers a hard state (validated); an error fails the WAL. */
static int wal__emit_hard_state(struct wal *wal, uint32_t gi, const struct raft_hard_state *hs) {
    struct wal__group *g = &wal->groups[gi];
    uint8_t vote[8];
    wal__put64(vote, hs->vote);
    struct wal__record rec = {.type = WAL_RECORD_HARD_STATE, .len = sizeof(vote),
                              .group = g->id, .term = hs->term, .index = hs->commit};
    int rc = wal__emit(wal, &rec, vote, sizeof(vote), NULL, 0);
    if (rc == WAL_OK) rc = wal__summarize(wal, gi, WAL__HAS_HARD_STATE, 0);
    struct wal__touch *t = rc == WAL_OK ? wal__touch(wal, gi) : NULL;
    if (t == NULL) return rc != WAL_OK ? rc : WAL_ENOMEM;
    t->durable.has_hard_state = true;
    t->durable.hard_state = *hs;
    t->hs_seq = wal__tail(wal)->seq;
    g->laid_has_hs = true;
    g->laid_hs = *hs;
    g->laid_hs_seq = t->hs_seq;
    return WAL_OK;
}

int wal_append_hard_state(struct wal *wal, uint64_t group, const struct raft_hard_state *hs) {
    if (wal->failed != WAL_OK) return wal->failed;
    if (hs == NULL) return WAL_EINVAL;
    int rc = wal__room(wal, WAL_RECORD_HEADER_BYTES + 8, 1);
    uint32_t gi = WAL__NO_SLOT;
    if (rc == WAL_OK) rc = wal__group_get(wal, group, &gi);
    if (rc == WAL_EFULL || rc == WAL_ELIMIT) return rc;
    if (rc == WAL_OK) rc = wal__emit_hard_state(wal, gi, hs);
    if (rc != WAL_OK) return wal__fail(wal, rc, "wal: append: %s", wal_strerror(rc));
    return WAL_OK;
}

/* Buffers a snapshot mark (validated); an error fails the WAL. */
static int wal__emit_mark(struct wal *wal, uint32_t gi, uint64_t index, uint64_t term,
                          enum wal_mark_kind kind) {
    struct wal__group *g = &wal->groups[gi];
    uint8_t k = (uint8_t)kind;
    struct wal__record rec = {.type = WAL_RECORD_SNAPSHOT_MARK, .len = 1, .group = g->id,
                              .term = term, .index = index};
    int rc = wal__emit(wal, &rec, &k, 1, NULL, 0);
    if (rc == WAL_OK) rc = wal__summarize(wal, gi, WAL__HAS_MARK, 0);
    struct wal__touch *t = rc == WAL_OK ? wal__touch(wal, gi) : NULL;
    if (t == NULL) return rc != WAL_OK ? rc : WAL_ENOMEM;
    t->durable.has_snapshot = true;
    t->durable.snapshot_index = index;
    t->durable.snapshot_term = term;
    t->mark_seq = wal__tail(wal)->seq;
    g->laid_has_mark = true;
    g->laid_mark_index = index;
    g->laid_mark_term = term;
    g->laid_mark_seq = t->mark_seq;
    if (kind == WAL_MARK_INSTALLED || index > g->laid_last_index) g->laid_last_index = index;
    return WAL_OK;
}

int wal_append_snapshot_mark(struct wal *wal, uint64_t group, uint64_t index, uint64_t term,
                             enum wal_mark_kind kind) {
    if (wal->failed != WAL_OK) return wal->failed;
    if (index == 0) return WAL_EINVAL;
    if (kind != WAL_MARK_COMPACTED && kind != WAL_MARK_INSTALLED) return WAL_EINVAL;
    uint32_t gi = wal__group_find(wal, group);
    if (gi != WAL__NO_SLOT && wal->groups[gi].laid_has_mark) {
        const struct wal__group *g = &wal->groups[gi];
        if (index < g->laid_mark_index) return WAL_EINVAL;
        if (index == g->laid_mark_index && term != g->laid_mark_term) return WAL_EINVAL;
        if (index == g->laid_mark_index) return WAL_OK; /* the same mark again */
    }
    int rc = wal__room(wal, WAL_RECORD_HEADER_BYTES + 1, 1);
    if (rc == WAL_OK && gi == WAL__NO_SLOT) rc = wal__group_get(wal, group, &gi);
    if (rc == WAL_EFULL || rc == WAL_ELIMIT) return rc;
    if (rc == WAL_OK) rc = wal__emit_mark(wal, gi, index, term, kind);
    if (rc != WAL_OK) return wal__fail(wal, rc, "wal: append: %s", wal_strerror(rc));
    return WAL_OK;
}

/* ---- group commit ---- */

bool wal_has_pending(const struct wal *wal) {
    return wal->buf.n_chunks > 0 || wal->buf.n_retired > 0;
}

/* The zeros batch b writes ahead of its last chunk's records, if that
 * chunk is in the tail (the segment the next records go to). */
static void wal__plan_zeros(struct wal *wal, struct wal_batch *b) {
    if (b->buf.n_chunks == 0 || wal->n_segments == 0) return;
    const struct wal__chunk *c = &b->buf.chunks[b->buf.n_chunks - 1];
    const struct wal__segment *tail = wal__tail(wal);
    if (c->seq != tail->seq) return;
    uint64_t end = c->offset + c->len;
    if (wal->zeroed_seq != tail->seq || wal->zeroed_to < end) {
        wal->zeroed_seq = tail->seq;
        wal->zeroed_to = end;
    }
    uint64_t limit = tail->size;
    if (wal->zeroed_to - end >= WAL_ZERO_AHEAD_MIN_BYTES || wal->zeroed_to >= limit) return;
    b->zero_offset = wal->zeroed_to;
    b->zero_len = limit - wal->zeroed_to < WAL_ZERO_AHEAD_BYTES ? limit - wal->zeroed_to
                                                                 : WAL_ZERO_AHEAD_BYTES;
    wal->zeroed_to += b->zero_len;
}

int wal_flush_begin(struct wal *wal, struct wal_batch **batch) {
    *batch = NULL;
    if (wal->failed != WAL_OK) return wal->failed;
    if (wal->inflight != NULL) return WAL_EBUSY;
    if (!wal_has_pending(wal)) return WAL_OK;
    struct wal_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) return wal__fail(wal, WAL_ENOMEM, "wal: flush: out of memory");
    b->io = wal->io;
    memcpy(b->dir, wal->dir, sizeof(b->dir));
    b->buf = wal->buf;
    memset(&wal->buf, 0, sizeof(wal->buf));
    wal->buf_gen++; /* every group's touch slot is now stale */
    for (uint32_t i = 0; i < b->buf.n_chunks; i++) {
        struct wal__chunk *c = &b->buf.chunks[i];
        if (c->create_bytes > 0) continue;
        struct wal__segment *seg = wal__segment_of(wal, c->seq);
        assert(seg != NULL);
        assert(seg->fd >= 0);
        c->fd = seg->fd;
    }
    wal__plan_zeros(wal, b);
    wal->inflight = b;
    *batch = b;
    return WAL_OK;
}

__attribute__((format(printf, 3, 4))) static int wal__batch_fail(struct wal_batch *b, int io_err,
                                                                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char what[WAL_ERROR_BYTES];
    wal__vformat(what, fmt, ap);
    va_end(ap);
    snprintf(b->error, sizeof(b->error), "wal: %.*s: %s", WAL_ERROR_BYTES - 64, what,
             io_strerror(io_err));
    b->result = wal__from_io(io_err);
    return b->result;
}

/* Creates a segment: preallocate, write its first bytes, fsync the file
 * (data and size) and the directory (its name). */
static int wal__batch_create(struct wal_batch *b, struct wal__chunk *c, const char *path) {
    struct io *io = b->io;
    int rc = io->open(io, path, IO_OPEN_WRITE | IO_OPEN_CREATE | IO_OPEN_EXCL, &c->fd);
    if (rc != 0) return wal__batch_fail(b, rc, "create %s", path);
    rc = io->fallocate(io, c->fd, 0, c->create_bytes);
    if (rc != 0) return wal__batch_fail(b, rc, "preallocate %s", path);
    rc = io->pwrite(io, c->fd, b->buf.bytes + c->start, (size_t)c->len, c->offset);
    if (rc != 0) return wal__batch_fail(b, rc, "write %s", path);
    rc = io->fsync(io, c->fd);
    if (rc != 0) return wal__batch_fail(b, rc, "fsync %s", path);
    rc = io->dir_sync(io, b->dir);
    if (rc != 0) return wal__batch_fail(b, rc, "fsync directory %s", b->dir);
    return WAL_OK;
}

static int wal__batch_sync(struct wal_batch *b, const struct wal__chunk *c) {
    int rc = b->io->fdatasync(b->io, c->fd);
    if (rc == 0) return WAL_OK;
    char path[IO_PATH_BYTES_MAX];
    wal__path(b->dir, c->seq, path, sizeof(path));
    return wal__batch_fail(b, rc, "fdatasync %s", path);
}

/* Deletes the segments wal_gc() retired, oldest first, each made durable
 * before the next, so that the segments left stay consecutive. */
static int wal__batch_retire(struct wal_batch *b) {
    for (uint32_t i = 0; i < b->buf.n_retired; i++) {
        char path[IO_PATH_BYTES_MAX];
        wal__path(b->dir, b->buf.retired[i], path, sizeof(path));
        int rc = b->io->unlink(b->io, path);
        if (rc != 0 && rc != -ENOENT) return wal__batch_fail(b, rc, "delete %s", path);
        rc = b->io->dir_sync(b->io, b->dir);
        if (rc != 0) return wal__batch_fail(b, rc, "fsync directory %s", b->dir);
    }
    return WAL_OK;
}

int wal_flush_run(struct wal_batch *b) {
    assert(b != NULL);
    assert(b->result == WAL_OK);
    const struct wal__chunk *unsynced = NULL;
    for (uint32_t i = 0; i < b->buf.n_chunks; i++) {
        struct wal__chunk *c = &b->buf.chunks[i];
        char path[IO_PATH_BYTES_MAX];
        wal__path(b->dir, c->seq, path, sizeof(path));
        if (c->create_bytes == 0) {
            int rc = b->io->pwrite(b->io, c->fd, b->buf.bytes + c->start, (size_t)c->len,
                                   c->offset);
            if (rc != 0) return wal__batch_fail(b, rc, "write %s", path);
            unsynced = c;
            continue;
        }
        /* The segment being left is complete on disk before the next exists. */
        if (unsynced != NULL && wal__batch_sync(b, unsynced) != WAL_OK) return b->result;
        unsynced = NULL;
        if (wal__batch_create(b, c, path) != WAL_OK) return b->result;
    }
    if (b->zero_len > 0) {
        /* into the tail, after its records, before their sync: the sync
         * that converts these extents is this one, not the next ones */
        const struct wal__chunk *c = &b->buf.chunks[b->buf.n_chunks - 1];
#ifdef CANARY_WAL_NO_ZEROS
        (void)wal__zeros; /* deliberate bug: nothing written ahead */
#else
        int rc = b->io->pwrite(b->io, c->fd, wal__zeros, (size_t)b->zero_len, b->zero_offset);
        if (rc != 0) {
            char path[IO_PATH_BYTES_MAX];
            wal__path(b->dir, c->seq, path, sizeof(path));
            return wal__batch_fail(b, rc, "write zeros ahead in %s", path);
        }
#endif
        if (unsynced == NULL) unsynced = c; /* a segment created by this batch */
    }
    if (unsynced != NULL && wal__batch_sync(b, unsynced) != WAL_OK) return b->result;
    return wal__batch_retire(b);
}

static void wal__buf_free(struct wal__buf *buf) {
    free(buf->bytes);
    free(buf->chunks);
    free(buf->touches);
    free(buf->retired);
    memset(buf, 0, sizeof(*buf));
}

/* Closes the files no chunk will write again: all but the tail and the
 * segments the buffer still writes to. Open files form a suffix. */
static void wal__close_left(struct wal *wal) {
    uint64_t keep = wal->n_segments > 0 ? wal__tail(wal)->seq : 0;
    if (wal->buf.n_chunks > 0 && wal->buf.chunks[0].seq < keep) keep = wal->buf.chunks[0].seq;
    for (uint32_t i = wal->n_segments; i-- > 0;) {
        struct wal__segment *seg = &wal->segments[i];
        if (seg->seq >= keep) continue;
        if (seg->fd < 0) break;
        wal->io->close(wal->io, seg->fd);
        seg->fd = -1;
    }
}

/* A completed batch: durable state moves forward, callbacks report it. */
static void wal__flush_done(struct wal *wal, struct wal_batch *b, wal_durable_cb cb, void *arg) {
    if (b->buf.n_chunks > 0) wal->durable_seq = b->buf.chunks[b->buf.n_chunks - 1].seq;
    for (uint32_t i = 0; i < b->buf.n_touches; i++) {
        const struct wal__touch *t = &b->buf.touches[i];
        struct wal__group *g = &wal->groups[t->group];
        assert(g->id == t->durable.group);
        if (t->durable.has_hard_state) {
            g->has_hs = true;
            g->hs = t->durable.hard_state;
            g->hs_seq = t->hs_seq;
        }
        if (t->durable.has_snapshot) {
            g->has_mark = true;
            g->mark_index = t->durable.snapshot_index;
            g->mark_term = t->durable.snapshot_term;
            g->mark_seq = t->mark_seq;
        }
        if (cb != NULL) cb(arg, &t->durable);
    }
    wal__close_left(wal);
}

int wal_flush_end(struct wal *wal, struct wal_batch *b, int result, wal_durable_cb cb,
                  void *arg) {
    assert(b != NULL);
    assert(wal->inflight == b);
    wal->inflight = NULL;
    for (uint32_t i = 0; i < b->buf.n_chunks; i++) { /* so that wal_close() closes them */
        const struct wal__chunk *c = &b->buf.chunks[i];
        struct wal__segment *seg = wal__segment_of(wal, c->seq);
        assert(seg != NULL);
        if (c->create_bytes > 0 && c->fd >= 0) seg->fd = c->fd;
    }
    int err = b->result != WAL_OK ? b->result : result;
    if (err != WAL_OK) {
        if (b->error[0] != '\0') {
            wal__fail(wal, err, "%s", b->error);
        } else {
            wal__fail(wal, err, "wal: flush failed: %s", wal_strerror(err));
        }
    } else if (wal->failed == WAL_OK) {
        wal__flush_done(wal, b, cb, arg);
    }
    wal__buf_free(&b->buf);
    free(b);
    return wal->failed;
}

int wal_flush(struct wal *wal, wal_durable_cb cb, void *arg) {
    struct wal_batch *b;
    int rc = wal_flush_begin(wal, &b);
    if (rc != WAL_OK || b == NULL) return rc;
    rc = wal_flush_run(b);
    return wal_flush_end(wal, b, rc, cb, arg);
}

/* ---- garbage collection ---- */

/* Why a group keeps segment `seg`: 0 (it does not), or the WAL__HAS_* kind. */
static uint8_t wal__pins(const struct wal *wal, const struct wal__segment *seg,
                         const struct wal__summary *s) {
    const struct wal__group *g = &wal->groups[s->group];
    bool mark_later = g->has_mark && g->mark_seq > seg->seq;
    if ((s->flags & WAL__HAS_ENTRIES) && !(mark_later && g->mark_index >= s->max_index))
        return WAL__HAS_ENTRIES;
    if ((s->flags & WAL__HAS_HARD_STATE) && !(g->has_hs && g->hs_seq > seg->seq))
        return WAL__HAS_HARD_STATE;
    if ((s->flags & WAL__HAS_MARK) && !mark_later) return WAL__HAS_MARK;
    return 0;
}

/* Can the oldest segment go? Never the tail, never one not all durable. */
static bool wal__oldest_retirable(const struct wal *wal, bool *entries_pin) {
    *entries_pin = false;
    if (wal->n_segments < 2) return false;
    const struct wal__segment *seg = &wal->segments[0];
    if (seg->seq >= wal->durable_seq) return false;
    bool pinned = false;
    for (uint32_t i = 0; i < seg->n_summary; i++) {
        uint8_t why = wal__pins(wal, seg, &seg->summary[i]);
        if (why == WAL__HAS_ENTRIES) *entries_pin = true;
        if (why != 0) pinned = true;
    }
    return !pinned;
}

static int wal__retire_oldest(struct wal *wal) {
    struct wal__buf *buf = &wal->buf;
    int rc = wal__grow((void **)&buf->retired, &buf->cap_retired, buf->n_retired + 1,
                       sizeof(*buf->retired));
    if (rc != WAL_OK) return rc;
    struct wal__segment *seg = &wal->segments[0];
    assert(seg->fd < 0); /* only the tail and a segment being left are open */
    buf->retired[buf->n_retired++] = seg->seq;
    for (uint32_t i = 0; i < seg->n_summary; i++) {
        struct wal__group *g = &wal->groups[seg->summary[i].group];
        if (g->sum_seq == seg->seq) g->sum_seq = 0;
    }
    free(seg->summary);
    memmove(&wal->segments[0], &wal->segments[1],
            (size_t)(wal->n_segments - 1) * sizeof(*wal->segments));
    wal->n_segments--;
    return WAL_OK;
}

/* Appends again the latest hard states and marks that live only in the
 * oldest segment, so that it stops pinning them. */
static int wal__copy_forward(struct wal *wal) {
    uint64_t seq = wal->segments[0].seq;
    for (uint32_t i = 0; i < wal->segments[0].n_summary; i++) { /* emits may move the array */
        uint32_t gi = wal->segments[0].summary[i].group;
        const struct wal__group *g = &wal->groups[gi];
        int rc = WAL_OK;
        if (g->laid_has_hs && g->laid_hs_seq == seq) {
            struct raft_hard_state hs = g->laid_hs;
            rc = wal__room(wal, WAL_RECORD_HEADER_BYTES + 8, 1);
            if (rc == WAL_OK) rc = wal__emit_hard_state(wal, gi, &hs);
        }
        if (rc == WAL_OK && g->laid_has_mark && g->laid_mark_seq == seq) {
            /* COMPACTED: a copy must never drop the entries logged since. */
            rc = wal__room(wal, WAL_RECORD_HEADER_BYTES + 1, 1);
            if (rc == WAL_OK)
                rc = wal__emit_mark(wal, gi, g->laid_mark_index, g->laid_mark_term,
                                    WAL_MARK_COMPACTED);
        }
        if (rc == WAL_EFULL) return WAL_OK; /* try again at the next gc */
        if (rc != WAL_OK) return rc;
    }
    return WAL_OK;
}

int wal_gc(struct wal *wal, uint32_t *retired) {
    if (retired != NULL) *retired = 0;
    if (wal->failed != WAL_OK) return wal->failed;
    bool entries_pin = false;
    uint32_t n = 0;
    while (wal__oldest_retirable(wal, &entries_pin)) {
        int rc = wal__retire_oldest(wal);
        if (rc != WAL_OK) return wal__fail(wal, rc, "wal: gc: %s", wal_strerror(rc));
        n++;
    }
    if (wal->n_segments >= 2 && wal->segments[0].seq < wal->durable_seq && !entries_pin) {
        int rc = wal__copy_forward(wal);
        if (rc != WAL_OK) return wal__fail(wal, rc, "wal: gc: %s", wal_strerror(rc));
    }
    if (retired != NULL) *retired = n;
    return WAL_OK;
}

uint32_t wal_pinning_groups(const struct wal *wal, uint64_t *groups, uint32_t cap) {
    if (wal->n_segments < 2) return 0;
    const struct wal__segment *seg = &wal->segments[0];
    uint32_t n = 0;
    for (uint32_t i = 0; i < seg->n_summary; i++) {
        if (wal__pins(wal, seg, &seg->summary[i]) != WAL__HAS_ENTRIES) continue;
        if (n < cap) groups[n] = wal->groups[seg->summary[i].group].id;
        n++;
    }
    return n;
}

void wal_stats(const struct wal *wal, struct wal_stats *stats) {
    memset(stats, 0, sizeof(*stats));
    stats->segments = wal->n_segments;
    if (wal->n_segments > 0) {
        stats->first_seq = wal->segments[0].seq;
        stats->tail_seq = wal->segments[wal->n_segments - 1].seq;
    }
    stats->durable_seq = wal->durable_seq;
    stats->groups = wal->n_groups;
    stats->buffered_bytes = wal->buf.len;
}

int wal_failed(const struct wal *wal) { return wal->failed; }

const char *wal_error(const struct wal *wal) { return wal->error; }

void wal_close(struct wal *wal) {
    if (wal == NULL) return;
    assert(wal->inflight == NULL);
    for (uint32_t i = 0; i < wal->n_segments; i++) {
        if (wal->segments[i].fd >= 0) wal->io->close(wal->io, wal->segments[i].fd);
        free(wal->segments[i].summary);
    }
    free(wal->segments);
    free(wal->groups);
    free(wal->index);
    wal__buf_free(&wal->buf);
    free(wal);
}

/* ---- recovery ---- */

/* One group's replayed state, parallel to wal->groups while replaying. */
struct wal__replay {
    struct wal_group_state *states;
    uint32_t cap_states;
    char *error; /* recovered->error */
};

/* The segment being read. */
struct wal__scan {
    char path[IO_PATH_BYTES_MAX];
    const uint8_t *bytes;
    uint64_t len;
    uint64_t seq;
    bool last;
    bool short_file;   /* the file is shorter than its header says */
    uint64_t end;      /* after the last good record */
    uint64_t torn_end; /* torn tail: end of its non-zero bytes; else == end */
};

static int wal__corrupt(struct wal__replay *rp, const struct wal__scan *s, uint64_t offset,
                        const char *why) {
    return wal__say(rp->error, WAL_ECORRUPT, "wal: corrupt record in %s at offset %llu: %s",
                    s->path, (unsigned long long)offset, why);
}

static const char *wal__decoded_why(enum wal__decoded d) {
    switch (d) {
    case WAL__SHORT: return "record runs past the end of the segment";
    case WAL__BAD_LENGTH: return "bad length";
    case WAL__BAD_CRC: return "crc mismatch";
    case WAL__BAD_TYPE: return "unknown record type";
    case WAL__BAD_VERSION: return "unknown record version";
    case WAL__END: return "no segment header";
    case WAL__DECODED: return "ok";
    }
    return "bad record";
}

static void wal__entries_cut(struct wal_group_state *st, uint32_t keep) {
    for (uint32_t i = keep; i < st->n_entries; i++) free(st->entries[i].data);
    if (keep < st->n_entries) st->n_entries = keep;
}

/* Raft truncation: an entry at index i replaces every entry >= i. */
static int wal__replay_entry(struct wal__replay *rp, const struct wal__scan *s, uint64_t offset,
                             struct wal_group_state *st, const struct wal__record *rec) {
    uint64_t i = rec->index;
    if (rec->len < 1 || i == 0) return wal__corrupt(rp, s, offset, "bad entry");
    if (st->has_snapshot && i <= st->snapshot_index)
        return wal__corrupt(rp, s, offset, "entry at or before the snapshot mark");
    /* With no entries any index may start the log: gc may have deleted the
     * ones before it (all at or below a mark that comes later). */
    if (st->n_entries > 0) {
        uint64_t first = st->entries[0].index;
        if (i > st->entries[st->n_entries - 1].index + 1)
            return wal__corrupt(rp, s, offset, "gap in the group's log");
        wal__entries_cut(st, i > first ? (uint32_t)(i - first) : 0);
    }
    if (st->n_entries == UINT32_MAX) return wal__corrupt(rp, s, offset, "too many entries");
    /* Capacity is max(8, 2^k) with 2^k > n: regrow when n is a power of two. */
    if (st->n_entries == 0 || (st->n_entries & (st->n_entries - 1)) == 0) {
        uint64_t cap_new = st->n_entries < 8 ? 8 : (uint64_t)st->n_entries * 2;
        struct raft_entry *grown = realloc(st->entries, (size_t)cap_new * sizeof(*grown));
        if (grown == NULL) return wal__say(rp->error, WAL_ENOMEM, "wal: out of memory");
        st->entries = grown;
    }
    struct raft_entry *e = &st->entries[st->n_entries];
    *e = (struct raft_entry){.term = rec->term, .index = i, .type = rec->payload[0],
                             .len = rec->len - 1, .data = NULL};
    if (e->len > 0) {
        e->data = malloc(e->len);
        if (e->data == NULL) return wal__say(rp->error, WAL_ENOMEM, "wal: out of memory");
        memcpy(e->data, rec->payload + 1, e->len);
    }
    st->n_entries++;
    return WAL_OK;
}

/* A mark drops the entries <= m (COMPACTED) or all of them (INSTALLED).
 * The same mark again is a no-op (gc copies marks forward). */
static int wal__replay_mark(struct wal__replay *rp, const struct wal__scan *s, uint64_t offset,
                            struct wal_group_state *st, const struct wal__record *rec) {
    uint64_t m = rec->index;
    if (rec->len != 1 || m == 0 || rec->payload[0] > WAL_MARK_INSTALLED)
        return wal__corrupt(rp, s, offset, "bad snapshot mark");
    if (st->has_snapshot && m < st->snapshot_index)
        return wal__corrupt(rp, s, offset, "snapshot mark goes backwards");
    if (st->has_snapshot && m == st->snapshot_index && rec->term != st->snapshot_term)
        return wal__corrupt(rp, s, offset, "conflicting snapshot mark");
    if (st->has_snapshot && m == st->snapshot_index) return WAL_OK;
    if (st->n_entries > 0) {
        uint64_t first = st->entries[0].index;
        uint64_t last = st->entries[st->n_entries - 1].index;
        bool all = rec->payload[0] == WAL_MARK_INSTALLED || m >= last;
        uint64_t drop = all ? st->n_entries : (m >= first ? m - first + 1 : 0);
        uint32_t kept = st->n_entries - (uint32_t)drop;
        for (uint32_t i = 0; i < drop; i++) free(st->entries[i].data);
        memmove(st->entries, st->entries + drop, (size_t)kept * sizeof(*st->entries));
        st->n_entries = kept;
    }
    st->has_snapshot = true;
    st->snapshot_index = m;
    st->snapshot_term = rec->term;
    return WAL_OK;
}

static int wal__replay_states_reserve(struct wal *wal, struct wal__replay *rp) {
    uint32_t old = rp->cap_states;
    if (wal->n_groups <= old) return WAL_OK;
    int rc = wal__grow((void **)&rp->states, &rp->cap_states, wal->n_groups,
                       sizeof(*rp->states));
    if (rc != WAL_OK) return wal__say(rp->error, rc, "wal: out of memory");
    memset(rp->states + old, 0, (size_t)(rp->cap_states - old) * sizeof(*rp->states));
    return WAL_OK;
}

/* Replays one good record into its group's state. */
static int wal__replay(struct wal *wal, struct wal__replay *rp, const struct wal__scan *s,
                       uint64_t offset, const struct wal__record *rec) {
    if (rec->type == WAL_RECORD_SEGMENT_HEADER)
        return wal__corrupt(rp, s, offset, "segment header inside a segment");
    uint32_t gi;
    int rc = wal__group_get(wal, rec->group, &gi);
    if (rc == WAL_ELIMIT)
        return wal__say(rp->error, rc, "wal: %s at offset %llu: more than %u groups", s->path,
                        (unsigned long long)offset, wal->options.groups_max);
    if (rc == WAL_OK) rc = wal__replay_states_reserve(wal, rp);
    if (rc != WAL_OK) return wal__say(rp->error, rc, "wal: out of memory");
    struct wal_group_state *st = &rp->states[gi];
    struct wal__group *g = &wal->groups[gi];
    st->group = rec->group;
    if (rec->type == WAL_RECORD_ENTRY) {
        rc = wal__replay_entry(rp, s, offset, st, rec);
        if (rc == WAL_OK) rc = wal__summarize(wal, gi, WAL__HAS_ENTRIES, rec->index);
    } else if (rec->type == WAL_RECORD_HARD_STATE) {
        if (rec->len != 8) return wal__corrupt(rp, s, offset, "bad hard state");
        st->has_hard_state = true;
        st->hard_state = (struct raft_hard_state){
            .term = rec->term, .vote = wal__get64(rec->payload), .commit = rec->index};
        g->has_hs = true;
        g->hs = st->hard_state;
        g->hs_seq = s->seq;
        rc = wal__summarize(wal, gi, WAL__HAS_HARD_STATE, 0);
    } else {
        rc = wal__replay_mark(rp, s, offset, st, rec);
        g->has_mark = st->has_snapshot;
        g->mark_index = st->snapshot_index;
        g->mark_term = st->snapshot_term;
        g->mark_seq = s->seq;
        if (rc == WAL_OK) rc = wal__summarize(wal, gi, WAL__HAS_MARK, 0);
    }
    if (rc == WAL_ENOMEM) return wal__say(rp->error, rc, "wal: out of memory");
    return rc;
}

/* A bad record at `offset` is a torn write if it is in the last segment
 * and either fails its CRC with only zeros after it, or is cut by the end
 * of a file shorter than its header says (preallocation lost). Else it is
 * corruption. (A prefix of a record cannot look like a bad length: the
 * length's low bytes come first.) */
static int wal__bad_record(struct wal__replay *rp, struct wal__scan *s, uint64_t offset,
                           enum wal__decoded d, const struct wal__record *rec) {
    uint64_t extent = s->len;
    if (d == WAL__BAD_CRC) extent = offset + WAL_RECORD_HEADER_BYTES + rec->len;
    bool torn = s->last && ((d == WAL__SHORT && s->short_file) || d == WAL__BAD_CRC) &&
                wal__all_zero(s->bytes + extent, s->len - extent);
    if (!torn) {
        char why[96];
        snprintf(why, sizeof(why), "%s", wal__decoded_why(d));
        if (d == WAL__BAD_LENGTH) snprintf(why, sizeof(why), "bad length %u", rec->len);
        if (d == WAL__BAD_TYPE) snprintf(why, sizeof(why), "unknown record type %u", rec->type);
        if (d == WAL__BAD_VERSION)
            snprintf(why, sizeof(why), "unknown record version %u", rec->version);
        return wal__corrupt(rp, s, offset, why);
    }
    uint64_t nonzero_end = extent;
    while (nonzero_end > offset && s->bytes[nonzero_end - 1] == 0) nonzero_end--;
    s->end = offset;
    s->torn_end = nonzero_end;
    return WAL_OK;
}

/* Checks the first record of a segment; sets *size to the bytes records
 * may use. A torn header in the last segment leaves s->end = 0. */
static int wal__scan_header(struct wal__replay *rp, struct wal__scan *s, uint32_t len_max,
                            uint64_t *size) {
    struct wal__record rec;
    s->short_file = true; /* not known yet: a cut header in the last segment is torn */
    enum wal__decoded d = wal__decode(s->bytes, s->len, len_max, &rec);
    if (d == WAL__END && s->last && wal__all_zero(s->bytes, s->len)) {
        s->end = s->torn_end = 0; /* created, never written */
        return WAL_OK;
    }
    if (d != WAL__DECODED) return wal__bad_record(rp, s, 0, d, &rec);
    const uint8_t *p = rec.payload;
    bool ok = rec.type == WAL_RECORD_SEGMENT_HEADER &&
              rec.len == WAL_SEGMENT_HEADER_PAYLOAD_BYTES && wal__get64(p) == WAL_MAGIC &&
              wal__get64(p + 16) == s->seq && wal__get64(p + 24) >= WAL__SEGMENT_HEADER_BYTES;
    if (!ok) return wal__corrupt(rp, s, 0, "bad segment header");
    if (wal__get32(p + 8) != WAL_FORMAT_VERSION)
        return wal__corrupt(rp, s, 0, "unknown segment format version");
    *size = wal__get64(p + 24);
    if (*size > s->len && !s->last) return wal__corrupt(rp, s, s->len, "segment truncated");
    s->short_file = *size > s->len;
    if (*size < s->len) s->len = *size; /* bytes past the declared size are not ours */
    s->end = s->torn_end = WAL__SEGMENT_HEADER_BYTES;
    return WAL_OK;
}

/* Reads the records of one segment after its header. */
static int wal__scan_records(struct wal *wal, struct wal__replay *rp, struct wal__scan *s) {
    uint64_t pos = s->end;
    while (pos < s->len) {
        struct wal__record rec;
        enum wal__decoded d =
            wal__decode(s->bytes + pos, s->len - pos, wal->options.record_bytes_max, &rec);
        if (d == WAL__END) {
            uint64_t z = pos;
            while (z < s->len && s->bytes[z] == 0) z++;
            if (z < s->len) return wal__corrupt(rp, s, z, "data after the end of the records");
            break;
        }
        if (d != WAL__DECODED) return wal__bad_record(rp, s, pos, d, &rec);
        int rc = wal__replay(wal, rp, s, pos, &rec);
        if (rc != WAL_OK) return rc;
        pos += WAL_RECORD_HEADER_BYTES + (uint64_t)rec.len;
    }
    s->end = s->torn_end = pos;
    return WAL_OK;
}

/* Reads a whole segment file into memory: *bytes (caller frees), *len. */
static int wal__read_file(struct wal *wal, struct wal__replay *rp, const char *path, int fd,
                          uint8_t **bytes, uint64_t *len) {
    uint64_t size;
    int rc = wal->io->size(wal->io, fd, &size);
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: size of %s: %s", path,
                        io_strerror(rc));
    if (size > WAL__SEGMENT_FILE_BYTES_MAX)
        return wal__say(rp->error, WAL_ECORRUPT, "wal: %s: segment of %llu bytes is too large",
                        path, (unsigned long long)size);
    *bytes = malloc(size > 0 ? (size_t)size : 1);
    if (*bytes == NULL) return wal__say(rp->error, WAL_ENOMEM, "wal: out of memory");
    size_t got = 0;
    rc = wal->io->pread(wal->io, fd, *bytes, (size_t)size, 0, &got);
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: read %s: %s", path, io_strerror(rc));
    *len = got;
    return WAL_OK;
}

/* Opens, reads and replays segment `seq`; adds it to wal->segments. */
static int wal__load_segment(struct wal *wal, struct wal__replay *rp, struct wal__scan *s) {
    wal__path(wal->dir, s->seq, s->path, sizeof(s->path));
    int fd;
    int rc = wal->io->open(wal->io, s->path, IO_OPEN_WRITE, &fd);
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: open %s: %s", s->path,
                        io_strerror(rc));
    rc = wal__segment_add(wal, s->seq, 0, fd);
    if (rc != WAL_OK) {
        wal->io->close(wal->io, fd);
        return wal__say(rp->error, rc, "wal: %s: %s", s->path, wal_strerror(rc));
    }
    uint8_t *bytes = NULL;
    rc = wal__read_file(wal, rp, s->path, fd, &bytes, &s->len);
    s->bytes = bytes;
    uint64_t size = 0;
    if (rc == WAL_OK) rc = wal__scan_header(rp, s, wal->options.record_bytes_max, &size);
    if (rc == WAL_OK && s->end > 0) rc = wal__scan_records(wal, rp, s);
    free(bytes);
    s->bytes = NULL;
    struct wal__segment *seg = wal__tail(wal);
    seg->size = size;
    seg->end = s->end;
    if (!s->last) {
        wal->io->close(wal->io, seg->fd);
        seg->fd = -1;
    }
    return rc;
}

/* After the scan: zero a torn tail, or remove a tail whose header is torn
 * (the previous segment becomes the tail again). */
static int wal__repair_tail(struct wal *wal, struct wal__replay *rp, const struct wal__scan *s,
                            uint64_t *truncated) {
    struct wal__segment *tail = wal__tail(wal);
    *truncated = s->torn_end - s->end;
    if (s->end > 0 && s->torn_end > s->end) {
        uint64_t n = s->torn_end - s->end;
        uint8_t *zeros = calloc(1, (size_t)n);
        if (zeros == NULL) return wal__say(rp->error, WAL_ENOMEM, "wal: out of memory");
        int rc = wal->io->pwrite(wal->io, tail->fd, zeros, (size_t)n, s->end);
        free(zeros);
        if (rc == 0) rc = wal->io->fdatasync(wal->io, tail->fd);
        if (rc != 0)
            return wal__say(rp->error, wal__from_io(rc), "wal: zero torn tail of %s: %s",
                            s->path, io_strerror(rc));
    }
    if (s->end > 0 && s->short_file) { /* preallocation lost in a crash: redo it */
        int rc = wal->io->fallocate(wal->io, tail->fd, 0, tail->size);
        if (rc == 0) rc = wal->io->fsync(wal->io, tail->fd);
        if (rc != 0)
            return wal__say(rp->error, wal__from_io(rc), "wal: preallocate %s: %s", s->path,
                            io_strerror(rc));
    }
    wal->tail_offset = s->end;
    wal->durable_seq = tail->seq;
    if (s->end > 0) return WAL_OK;
    wal->io->close(wal->io, tail->fd);
    free(tail->summary);
    wal->n_segments--;
    wal->next_seq = s->seq;
    int rc = wal->io->unlink(wal->io, s->path);
    if (rc == 0) rc = wal->io->dir_sync(wal->io, wal->dir);
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: remove torn %s: %s", s->path,
                        io_strerror(rc));
    if (wal->n_segments == 0) {
        wal->durable_seq = 0;
        return WAL_OK;
    }
    tail = wal__tail(wal);
    char path[IO_PATH_BYTES_MAX];
    wal__path(wal->dir, tail->seq, path, sizeof(path));
    rc = wal->io->open(wal->io, path, IO_OPEN_WRITE, &tail->fd);
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: open %s: %s", path, io_strerror(rc));
    wal->tail_offset = tail->end;
    wal->durable_seq = tail->seq;
    return WAL_OK;
}

/* Segment names found in the directory. */
struct wal__listing {
    uint64_t *seqs;
    uint32_t n;
    uint32_t cap;
    int err;
};

static bool wal__parse_name(const char *name, uint64_t *seq) {
    if (strlen(name) != WAL_SEGMENT_NAME_DIGITS + 4) return false;
    if (strcmp(name + WAL_SEGMENT_NAME_DIGITS, ".wal") != 0) return false;
    uint64_t v = 0;
    for (int i = 0; i < WAL_SEGMENT_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    *seq = v;
    return v > 0;
}

static int wal__list_cb(void *arg, const char *name) {
    struct wal__listing *l = arg;
    uint64_t seq;
    if (!wal__parse_name(name, &seq)) return 0;
    if (l->n >= WAL_SEGMENTS_MAX) return l->err = WAL_ELIMIT;
    if (wal__grow((void **)&l->seqs, &l->cap, l->n + 1, sizeof(*l->seqs)) != WAL_OK)
        return l->err = WAL_ENOMEM;
    l->seqs[l->n++] = seq;
    return 0;
}

static int wal__cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int wal__list(struct wal *wal, struct wal__replay *rp, struct wal__listing *l) {
    int rc = wal->io->list(wal->io, wal->dir, wal__list_cb, l);
    if (l->err != WAL_OK)
        return wal__say(rp->error, l->err, "wal: %s: %s", wal->dir,
                        l->err == WAL_ELIMIT ? "too many segments" : "out of memory");
    if (rc != 0)
        return wal__say(rp->error, wal__from_io(rc), "wal: list %s: %s", wal->dir,
                        io_strerror(rc));
    if (l->n > 1) qsort(l->seqs, l->n, sizeof(*l->seqs), wal__cmp_u64);
    for (uint32_t i = 1; i < l->n; i++) {
        if (l->seqs[i] != l->seqs[i - 1] + 1)
            return wal__say(rp->error, WAL_ECORRUPT, "wal: %s: missing segment %020llu",
                            wal->dir, (unsigned long long)(l->seqs[i - 1] + 1));
    }
    return WAL_OK;
}

static int wal__cmp_group(const void *a, const void *b) {
    uint64_t x = ((const struct wal_group_state *)a)->group;
    uint64_t y = ((const struct wal_group_state *)b)->group;
    return x < y ? -1 : x > y;
}

/* Hands the replayed states to `out`, and sets what appends validate. */
static void wal__recovered_take(struct wal *wal, struct wal__replay *rp,
                                struct wal_recovered *out) {
    for (uint32_t gi = 0; gi < wal->n_groups; gi++) {
        struct wal__group *g = &wal->groups[gi];
        const struct wal_group_state *st = &rp->states[gi];
        g->laid_has_hs = g->has_hs;
        g->laid_hs = g->hs;
        g->laid_hs_seq = g->hs_seq;
        g->laid_has_mark = g->has_mark;
        g->laid_mark_index = g->mark_index;
        g->laid_mark_term = g->mark_term;
        g->laid_mark_seq = g->mark_seq;
        g->laid_last_index = st->n_entries > 0 ? st->entries[st->n_entries - 1].index
                                               : (st->has_snapshot ? st->snapshot_index : 0);
    }
    out->n_groups = wal->n_groups;
    out->groups = rp->states;
    rp->states = NULL;
    if (out->n_groups > 0) qsort(out->groups, out->n_groups, sizeof(*out->groups), wal__cmp_group);
}

static void wal__states_free(struct wal_group_state *states, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < states[i].n_entries; j++) free(states[i].entries[j].data);
        free(states[i].entries);
    }
    free(states);
}

void wal_recovered_free(struct wal_recovered *recovered) {
    wal__states_free(recovered->groups, recovered->n_groups);
    recovered->groups = NULL;
    recovered->n_groups = 0;
}

static int wal__load(struct wal *wal, struct wal__replay *rp, struct wal_recovered *out) {
    struct wal__listing l = {0};
    int rc = wal__list(wal, rp, &l);
    struct wal__scan *s = calloc(1, sizeof(*s));
    if (rc == WAL_OK && s == NULL) rc = wal__say(rp->error, WAL_ENOMEM, "wal: out of memory");
    for (uint32_t i = 0; rc == WAL_OK && i < l.n; i++) {
        memset(s, 0, sizeof(*s));
        s->seq = l.seqs[i];
        s->last = i + 1 == l.n;
        rc = wal__load_segment(wal, rp, s);
    }
    if (rc == WAL_OK && l.n > 0) rc = wal__repair_tail(wal, rp, s, &out->truncated_bytes);
    out->segments = l.n;
    if (l.n == 0) wal->next_seq = 1;
    free(s);
    free(l.seqs);
    return rc;
}

int wal_open(struct io *io, const char *dir, const struct wal_options *options,
             struct wal **out, struct wal_recovered *recovered) {
    memset(recovered, 0, sizeof(*recovered));
    *out = NULL;
    struct wal_options o;
    wal_options_default(&o);
    if (options != NULL) o = *options;
    if (io == NULL || io->version < 1 || dir == NULL || !wal__options_ok(&o))
        return wal__say(recovered->error, WAL_EINVAL, "wal: bad options");
    if (strnlen(dir, WAL_DIR_BYTES_MAX) >= WAL_DIR_BYTES_MAX)
        return wal__say(recovered->error, WAL_EINVAL, "wal: directory path too long");
    struct wal *wal = calloc(1, sizeof(*wal));
    if (wal == NULL) return wal__say(recovered->error, WAL_ENOMEM, "wal: out of memory");
    wal->io = io;
    wal->options = o;
    memcpy(wal->dir, dir, strlen(dir) + 1);
    wal->buf_gen = 1;
    struct wal__replay rp = {.error = recovered->error};
    int rc = wal__load(wal, &rp, recovered);
    if (rc != WAL_OK) {
        wal__states_free(rp.states, wal->n_groups < rp.cap_states ? wal->n_groups
                                                                   : rp.cap_states);
        wal_close(wal);
        return rc;
    }
    wal__recovered_take(wal, &rp, recovered);
    *out = wal;
    return WAL_OK;
}
