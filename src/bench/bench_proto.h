/* bench_proto.h: the pure parts of `shoal bench` (the load generator):
 * a latency histogram with log buckets, Redis Cluster's key slot (CRC16),
 * a RESP reply parser, base64, and an HTTP/1.1 response framer. No I/O, no
 * clock, no globals, no allocation; tests/unit/test_bench.c covers them.
 *
 * Histogram. Values are nanoseconds. Below 2^BENCH_HIST_SUB_BITS a value has
 * its own bucket; above, every power of two is split into 2^(SUB_BITS-1)
 * equal buckets (HdrHistogram's layout with 2 significant decimal digits),
 * so a reported percentile is within 1/64 (1.6%) of the true value. Values
 * above BENCH_HIST_VALUE_MAX land in the last bucket. 18 KiB per histogram;
 * each thread of the load generator owns one and they are merged at the end.
 */
#ifndef SHOAL_BENCH_PROTO_H
#define SHOAL_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- histogram ------------------------------------------------------- */

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)   /* 128 exact values */
#define BENCH_HIST_HALF (BENCH_HIST_SUB / 2)         /* buckets per octave */
#define BENCH_HIST_MSB_MAX 40                        /* 2^41 ns: 36 minutes */
#define BENCH_HIST_VALUE_MAX ((UINT64_C(1) << (BENCH_HIST_MSB_MAX + 1)) - 1)
#define BENCH_HIST_BUCKETS \
    (BENCH_HIST_SUB + (BENCH_HIST_MSB_MAX - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_HALF)

struct bench_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t value_ns);
/* into += from (both initialized). */
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* The value at percentile p (0 < p <= 100): the midpoint of the bucket that
 * holds the ceil(p% * count)-th smallest value; 0 for an empty histogram. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
/* Bucket index of a value, and the [low, high] range of values in a bucket. */
unsigned bench_hist_index(uint64_t value_ns);
void bench_hist_range(unsigned index, uint64_t *low, uint64_t *high);

/* ---- Redis Cluster key slot ----------------------------------------- */

#define BENCH_SLOTS 16384u

/* CRC16-CCITT (XMODEM), Redis's cluster CRC: crc16("123456789") = 0x31c3. */
uint16_t bench_crc16(const void *buf, size_t len);
/* The slot of a key, with hash tags: if the key holds `{` and a later `}`
 * with at least one byte between, only those bytes are hashed. */
unsigned bench_key_slot(const void *key, size_t len);

/* ---- RESP replies ---------------------------------------------------- */

enum bench_resp_status {
    BENCH_RESP_NEED_MORE = 0,       /* the reply is not complete yet */
    BENCH_RESP_PROTOCOL_ERROR = -1, /* not a RESP reply, or nested too deep */
};
#define BENCH_RESP_DEPTH_MAX 8     /* CLUSTER SLOTS nests 3 deep */
#define BENCH_RESP_LENGTH_MAX (512ll << 20)

/* One reply element. For + - : $ (and RESP3 , # ( = _ !), str/len is the
 * line or the bulk payload (not NUL-terminated; str NULL for a null); for
 * * % ~ > it is unset and `count` is the number of elements. */
struct bench_reply {
    char type;       /* first byte: + - : $ * and RESP3 types */
    bool is_null;    /* $-1, *-1, _ */
    int64_t count;   /* aggregates: elements (a map counts keys and values) */
    const char *str; /* into the caller's buffer */
    size_t len;
};

/* Parses one whole reply at buf[0, len) (nested aggregates included) and
 * fills *out with its top element. Returns the bytes it spans (> 0),
 * BENCH_RESP_NEED_MORE if it is not all there, or BENCH_RESP_PROTOCOL_ERROR.
 * Nothing is copied: out->str points into buf. */
long bench_resp_reply(const char *buf, size_t len, struct bench_reply *out);
/* Parses only the first element's header (for walking an aggregate): for an
 * aggregate, the bytes up to its first child; otherwise as bench_resp_reply. */
long bench_resp_header(const char *buf, size_t len, struct bench_reply *out);

/* ---- base64 ---------------------------------------------------------- */

#define BENCH_BASE64_LEN(n) ((((n) + 2) / 3) * 4)
/* Standard alphabet with padding; writes BENCH_BASE64_LEN(len) bytes (no
 * NUL) to out and returns that length. */
size_t bench_base64(const void *in, size_t len, char *out);

/* ---- HTTP/1.1 responses --------------------------------------------- */

#define BENCH_HTTP_HEAD_MAX 8192u

/* Frames one HTTP/1.1 response at buf[0, len): status line, headers, then a
 * body sized by Content-Length or chunked transfer coding. Returns the bytes
 * of the whole response (> 0) with *status set, 0 if it is not all there,
 * -1 if it is not a response this client understands (no length, a head
 * longer than BENCH_HTTP_HEAD_MAX, bad chunk sizes). *body and *body_len are set
 * for a Content-Length body (the chunked body is not joined: NULL, 0). */
long bench_http_response(const char *buf, size_t len, int *status, const char **body,
                         size_t *body_len);

#endif
