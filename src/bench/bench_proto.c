/* bench_proto.c: histogram, key slot, RESP replies, base64, HTTP framing
 * for `shoal bench`; see bench_proto.h. */
#include "bench/bench_proto.h"

#include <assert.h>
#include <string.h>

_Static_assert(BENCH_HIST_BUCKETS == 2304, "bucket layout as documented");
_Static_assert(BENCH_HIST_SUB_BITS >= 2, "at least two buckets per octave");

/* ---- histogram ------------------------------------------------------- */

void bench_hist_init(struct bench_hist *h) { memset(h, 0, sizeof(*h)); }

unsigned bench_hist_index(uint64_t v) {
    if (v > BENCH_HIST_VALUE_MAX) v = BENCH_HIST_VALUE_MAX;
    if (v < BENCH_HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (BENCH_HIST_SUB_BITS - 1);
    unsigned index = BENCH_HIST_SUB + (msb - BENCH_HIST_SUB_BITS) * BENCH_HIST_HALF +
                     (unsigned)((v >> shift) - BENCH_HIST_HALF);
    assert(index < BENCH_HIST_BUCKETS);
    return index;
}

void bench_hist_range(unsigned index, uint64_t *low, uint64_t *high) {
    assert(index < BENCH_HIST_BUCKETS);
    if (index < BENCH_HIST_SUB) {
        *low = *high = index;
        return;
    }
    unsigned octave = (index - BENCH_HIST_SUB) / BENCH_HIST_HALF; /* msb - SUB_BITS */
    unsigned sub = (index - BENCH_HIST_SUB) % BENCH_HIST_HALF;
    unsigned shift = octave + 1;
    *low = (uint64_t)(BENCH_HIST_HALF + sub) << shift;
    *high = *low + (UINT64_C(1) << shift) - 1;
}

void bench_hist_record(struct bench_hist *h, uint64_t value_ns) {
    h->buckets[bench_hist_index(value_ns)]++;
    h->count++;
    if (value_ns > h->max_ns) h->max_ns = value_ns;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from) {
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) into->buckets[i] += from->buckets[i];
    into->count += from->count;
    if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p) {
    assert(p > 0 && p <= 100);
    if (h->count == 0) return 0;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen < rank) continue;
        uint64_t low, high;
        bench_hist_range(i, &low, &high);
        uint64_t mid = low + (high - low) / 2;
        return mid > h->max_ns ? h->max_ns : mid;
    }
    return h->max_ns; /* counts and buckets disagree: not reached */
}

/* ---- key slot -------------------------------------------------------- */

uint16_t bench_crc16(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

unsigned bench_key_slot(const void *key, size_t len) {
    const char *k = key;
    const char *open = memchr(k, '{', len);
    if (open != NULL) {
        size_t after = (size_t)(open - k) + 1;
        const char *close = memchr(open + 1, '}', len - after);
        if (close != NULL && close > open + 1) {
            return bench_crc16(open + 1, (size_t)(close - open - 1)) & (BENCH_SLOTS - 1);
        }
    }
    return bench_crc16(k, len) & (BENCH_SLOTS - 1);
}

/* ---- RESP replies ---------------------------------------------------- */

/* The line at buf[0, len) up to CRLF: returns its length without CRLF, or
 * -1 if the CRLF has not arrived. */
static long bench__line(const char *buf, size_t len) {
    const char *lf = memchr(buf, '\n', len);
    if (lf == NULL) return -1;
    if (lf == buf || lf[-1] != '\r') return -2;
    return (long)(lf - buf) - 1;
}

static int bench__number(const char *s, size_t len, int64_t *out) {
    bool negative = len > 0 && s[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == len || len > 20) return -1;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = negative ? -v : v;
    return 0;
}

long bench_resp_header(const char *buf, size_t len, struct bench_reply *out) {
    if (len == 0) return BENCH_RESP_NEED_MORE;
    long line = bench__line(buf, len);
    if (line == -1) return BENCH_RESP_NEED_MORE;
    if (line < 0) return BENCH_RESP_PROTOCOL_ERROR;
    memset(out, 0, sizeof(*out));
    out->type = buf[0];
    size_t head = (size_t)line + 2; /* the line and its CRLF */
    const char *rest = buf + 1;
    size_t rest_len = (size_t)line - 1;
    int64_t n = 0;
    switch (out->type) {
    case '+': case '-': case ':': case ',': case '#': case '(':
        out->str = rest;
        out->len = rest_len;
        return (long)head;
    case '_':
        out->is_null = true;
        return (long)head;
    case '$': case '=': case '!':
        if (bench__number(rest, rest_len, &n) != 0 || n < -1) return BENCH_RESP_PROTOCOL_ERROR;
        if (n > BENCH_RESP_LENGTH_MAX) return BENCH_RESP_PROTOCOL_ERROR;
        if (n == -1) {
            out->is_null = true;
            return (long)head;
        }
        if (len < head + (size_t)n + 2) return BENCH_RESP_NEED_MORE;
        if (buf[head + (size_t)n] != '\r' || buf[head + (size_t)n + 1] != '\n') {
            return BENCH_RESP_PROTOCOL_ERROR;
        }
        out->str = buf + head;
        out->len = (size_t)n;
        return (long)(head + (size_t)n + 2);
    case '*': case '~': case '>': case '%':
        if (bench__number(rest, rest_len, &n) != 0 || n < -1) return BENCH_RESP_PROTOCOL_ERROR;
        if (n > BENCH_RESP_LENGTH_MAX) return BENCH_RESP_PROTOCOL_ERROR;
        out->is_null = n == -1;
        out->count = n == -1 ? 0 : (out->type == '%' ? 2 * n : n);
        return (long)head;
    default:
        return BENCH_RESP_PROTOCOL_ERROR;
    }
}

static long bench__reply(const char *buf, size_t len, struct bench_reply *out, int depth) {
    if (depth > BENCH_RESP_DEPTH_MAX) return BENCH_RESP_PROTOCOL_ERROR;
    long used = bench_resp_header(buf, len, out);
    if (used <= 0) return used;
    bool aggregate = strchr("*~>%", out->type) != NULL;
    if (!aggregate) return used;
    size_t off = (size_t)used;
    for (int64_t i = 0; i < out->count; i++) {
        struct bench_reply child;
        long c = bench__reply(buf + off, len - off, &child, depth + 1);
        if (c <= 0) return c;
        off += (size_t)c;
    }
    return (long)off;
}

long bench_resp_reply(const char *buf, size_t len, struct bench_reply *out) {
    return bench__reply(buf, len, out, 0);
}

/* ---- base64 ---------------------------------------------------------- */

size_t bench_base64(const void *in, size_t len, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    assert(o == BENCH_BASE64_LEN(len));
    return o;
}

/* ---- HTTP/1.1 responses --------------------------------------------- */

/* Case-insensitive: does the header line [line, end) start with `name`? */
static bool bench__header_is(const char *line, const char *end, const char *name) {
    size_t n = strlen(name);
    if ((size_t)(end - line) < n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != name[i]) return false;
    }
    return true;
}

/* Skips a chunked body at buf[0, len): bytes it spans, 0 for more, -1 bad. */
static long bench__chunked(const char *buf, size_t len) {
    size_t off = 0;
    for (int chunks = 0; chunks < 1 << 20; chunks++) {
        const char *lf = memchr(buf + off, '\n', len - off);
        if (lf == NULL) return len - off > 64 ? -1 : 0;
        uint64_t size = 0;
        const char *p = buf + off;
        int digits = 0;
        for (; p < lf; p++, digits++) {
            char c = *p;
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) break;
            if (digits >= 12) return -1;
            size = size * 16 + (uint64_t)d;
        }
        if (digits == 0) return -1;
        off = (size_t)(lf - buf) + 1;
        if (size == 0) { /* last chunk; no trailers expected: one CRLF */
            if (len - off < 2) return 0;
            return buf[off] == '\r' && buf[off + 1] == '\n' ? (long)(off + 2) : -1;
        }
        if (len - off < size + 2) return 0;
        off += size + 2;
    }
    return -1;
}

long bench_http_response(const char *buf, size_t len, int *status, const char **body,
                         size_t *body_len) {
    size_t scan = len < BENCH_HTTP_HEAD_MAX ? len : BENCH_HTTP_HEAD_MAX;
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    if (end == NULL) return len >= BENCH_HTTP_HEAD_MAX ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    if (head < 12 || memcmp(buf, "HTTP/1.", 7) != 0) return -1;
    int s = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') return -1;
        s = s * 10 + (buf[i] - '0');
    }
    long content_length = -1;
    bool chunked = false;
    for (const char *line = memchr(buf, '\n', head) + 1; line < end;) {
        const char *eol = memchr(line, '\r', (size_t)(end - line) + 1);
        if (bench__header_is(line, eol, "content-length:")) {
            int64_t n;
            const char *v = line + 15;
            while (v < eol && *v == ' ') v++;
            if (bench__number(v, (size_t)(eol - v), &n) != 0 || n < 0 || n > (1 << 30)) return -1;
            content_length = (long)n;
        } else if (bench__header_is(line, eol, "transfer-encoding:")) {
            chunked = memmem(line, (size_t)(eol - line), "chunked", 7) != NULL;
        }
        line = eol + 2;
    }
    *status = s;
    *body = NULL;
    *body_len = 0;
    if (chunked) {
        long c = bench__chunked(buf + head, len - head);
        return c <= 0 ? c : (long)head + c;
    }
    if (content_length < 0) return s == 204 || s == 304 ? (long)head : -1;
    if (len - head < (size_t)content_length) return 0;
    *body = buf + head;
    *body_len = (size_t)content_length;
    return (long)(head + (size_t)content_length);
}
