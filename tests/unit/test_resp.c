/* test_resp.c: the RESP parser and writer. Every command stream is parsed
 * whole, byte by byte, split at every point and in random chunks, and the
 * transcripts (commands, then the error) must be identical; each chunk is a
 * fresh exact-size heap copy, poisoned after use, so ASan sees an overread
 * and a borrowed argument used too late shows. A tiny reference parser
 * (whole-buffer, C-string based, written independently of resp.c) is the
 * model of a differential test over random and mutated streams. Errors are
 * checked against Redis's wording; huge headers against a counting
 * allocator; the writer byte for byte in RESP2 and RESP3. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "resp/resp.h"
#include "test.h"
#include "util/rand.h"

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- transcripts ------------------------------------------------------ */

struct tx {
    char *data;
    size_t len;
    size_t cap;
};

static void tx_put(struct tx *t, const void *d, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        if (t->data == NULL) abort();
    }
    if (n > 0) memcpy(t->data + t->len, d, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void tx_printf(struct tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx_printf(struct tx *t, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    tx_put(t, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static const char *tx_str(const struct tx *t) {
    return t->data != NULL ? t->data : "";
}

static void tx_free(struct tx *t) {
    free(t->data);
    memset(t, 0, sizeof(*t));
}

static bool tx_eq(const struct tx *a, const struct tx *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* One command: `C<argc>[<len>:<bytes>...]`. */
static void tx_arg(struct tx *t, const char *d, size_t n) {
    tx_printf(t, "%zu:", n);
    tx_put(t, d, n);
}

static void tx_err(struct tx *t, const char *msg) {
    tx_printf(t, "E[%s]", msg);
}

/* ---- the parser under test, fed in chunks ----------------------------- */

enum chunking { WHOLE, BYTES, RANDOM, SPLIT };

struct feed {
    const struct resp_limits *limits; /* NULL: defaults */
    bool auth;
    enum chunking mode;
    uint64_t arg; /* RANDOM: seed; SPLIT: where */
};

static size_t chunk_size(const struct feed *f, struct rand *r, size_t off, size_t left) {
    switch (f->mode) {
    case WHOLE: return left;
    case BYTES: return 1;
    case RANDOM: {
        size_t n = 1 + rand_below(r, rand_chance(r, 20) ? 64 : 9);
        return n < left ? n : left;
    }
    case SPLIT: return off < f->arg && f->arg - off < left ? f->arg - off : left;
    }
    return left;
}

/* Parses one chunk; returns false on a contract violation. */
static bool feed_chunk(struct resp_parser *p, const char *chunk, size_t n, struct tx *t,
                       bool *stop) {
    size_t c = 0;
    while (c < n) {
        size_t used = n + 1;
        struct resp_cmd cmd;
        int rc = resp_parse(p, chunk + c, n - c, &used, &cmd);
        if (used > n - c) return false;
        c += used;
        if (rc == RESP_NEED_MORE) return c == n;
        if (rc != RESP_OK) {
            tx_err(t, resp_parser_error(p));
            *stop = true;
            size_t again = 1;
            return resp_parse(p, chunk + c, n - c, &again, &cmd) == rc && again == 0;
        }
        if (used == 0 || cmd.argc == 0) return false;
        tx_printf(t, "C%u[", cmd.argc);
        for (uint32_t i = 0; i < cmd.argc; i++)
            tx_arg(t, cmd.argv[i].data, cmd.argv[i].len);
        tx_put(t, "]", 1);
    }
    return true;
}

/* The transcript of data[0, len) fed to a fresh parser as `f` says. */
static bool run_real(const struct feed *f, const char *data, size_t len, struct tx *t) {
    struct resp_parser p;
    if (resp_parser_init(&p, f->limits, NULL) != RESP_OK) return false;
    resp_parser_set_auth_required(&p, f->auth);
    struct rand r;
    rand_seed(&r, f->arg);
    bool ok = true;
    bool stop = false;
    for (size_t off = 0; off < len && ok && !stop;) {
        size_t n = chunk_size(f, &r, off, len - off);
        char *chunk = malloc(n);
        if (chunk == NULL) abort();
        memcpy(chunk, data + off, n);
        ok = feed_chunk(&p, chunk, n, t, &stop);
        memset(chunk, 0xa5, n); /* a borrowed argument must be dead by now */
        free(chunk);
        off += n;
    }
    resp_parser_free(&p);
    return ok;
}

/* ---- the reference parser -------------------------------------------- */

/* Whole-buffer and C-string based, written from Redis's description, not
 * from resp.c. Ends the transcript at the first error; an incomplete final
 * command leaves no trace. */
struct ref {
    struct resp_limits lim;
    bool auth;
    const char *d;
    size_t len;
    size_t pos;
    struct tx *t;
};

enum { REF_CMD, REF_SKIP, REF_MORE, REF_ERR };

static int ref_err(struct ref *r, const char *what) {
    char msg[96];
    snprintf(msg, sizeof(msg), "Protocol error: %s", what);
    tx_err(r->t, msg);
    return REF_ERR;
}

/* Redis's string2ll: optional '-', no leading zeros, no "-0", < 21 chars. */
static bool ref_str2ll(const char *s, size_t n, long long *v) {
    if (n == 0 || n >= 21) return false;
    if (n == 1 && s[0] == '0') {
        *v = 0;
        return true;
    }
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == n || s[i] < '1' || s[i] > '9') return false;
    unsigned long long u = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (ULLONG_MAX - d) / 10) return false;
        u = u * 10 + d;
    }
    if (s[0] == '-') {
        if (u > 9223372036854775808ull) return false;
        *v = u == 9223372036854775808ull ? LLONG_MIN : -(long long)u;
    } else {
        if (u > 9223372036854775807ull) return false;
        *v = (long long)u;
    }
    return true;
}

/* The number on a header line whose digits start at q. */
static int ref_header(struct ref *r, size_t q, bool count, long long *v, size_t *next) {
    const char *cr = memchr(r->d + q, '\r', r->len - q);
    size_t digits = cr != NULL ? (size_t)(cr - (r->d + q)) : r->len - q;
    if (digits > r->lim.inline_bytes_max) {
        return ref_err(r, count ? "too big mbulk count string" : "too big bulk count string");
    }
    if (cr == NULL) return REF_MORE;
    size_t k = (size_t)(cr - r->d);
    if (k + 1 == r->len) return REF_MORE;
    const char *invalid = count ? "invalid multibulk length" : "invalid bulk length";
    if (r->d[k + 1] != '\n' || !ref_str2ll(r->d + q, digits, v)) return ref_err(r, invalid);
    *next = k + 2;
    return REF_CMD;
}

/* One bulk argument whose `$` is at *q; appends it to args. */
static int ref_bulk(struct ref *r, size_t start, size_t *q, struct tx *args) {
    if (*q == r->len) return REF_MORE;
    char c = r->d[*q];
    if (c != '$') {
        char what[40];
        snprintf(what, sizeof(what), "expected '$', got '%c'",
                 c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
        return ref_err(r, what);
    }
    long long n;
    size_t at;
    int rc = ref_header(r, *q + 1, false, &n, &at);
    if (rc != REF_CMD) return rc;
    if (n < 0 || (unsigned long long)n > r->lim.bulk_bytes_max) {
        return ref_err(r, "invalid bulk length");
    }
    if (r->auth && (unsigned long long)n > r->lim.unauth_bulk_bytes_max) {
        return ref_err(r, "unauthenticated bulk length");
    }
    if (at - start + (size_t)n + 2 > r->lim.request_bytes_max) {
        return ref_err(r, "too big request");
    }
    if (r->len - at < (size_t)n) return REF_MORE;
    tx_arg(args, r->d + at, (size_t)n);
    size_t end = at + (size_t)n;
    for (size_t i = 0; i < 2; i++) {
        if (end + i == r->len) return REF_MORE;
        if (r->d[end + i] != "\r\n"[i]) return ref_err(r, "expected CRLF after bulk data");
    }
    *q = end + 2;
    return REF_CMD;
}

static int ref_multibulk(struct ref *r) {
    size_t start = r->pos;
    long long count;
    size_t q;
    int rc = ref_header(r, start + 1, true, &count, &q);
    if (rc != REF_CMD) return rc;
    if (count > (long long)r->lim.args_max) return ref_err(r, "invalid multibulk length");
    if (r->auth && count > (long long)r->lim.unauth_args_max) {
        return ref_err(r, "unauthenticated multibulk length");
    }
    if (count <= 0) {
        r->pos = q;
        return REF_SKIP;
    }
    struct tx args = {0};
    for (long long i = 0; i < count && rc == REF_CMD; i++)
        rc = ref_bulk(r, start, &q, &args);
    if (rc == REF_CMD) {
        tx_printf(r->t, "C%lld[", count);
        tx_put(r->t, args.data, args.len);
        tx_put(r->t, "]", 1);
        r->pos = q;
    }
    tx_free(&args);
    return rc;
}

static bool ref_space(char c) {
    return c != '\0' && strchr(" \t\n\v\f\r", c) != NULL;
}

static int ref_hexval(char c) {
    const char *hex = "0123456789abcdef";
    const char *at = c != '\0' ? strchr(hex, c >= 'A' && c <= 'F' ? c + 32 : c) : NULL;
    return at != NULL ? (int)(at - hex) : -1;
}

/* sdssplitargs on the C string `line`, in its own pointer-walking style;
 * each argument is appended to `out` with its count checked against `max`.
 * Returns NULL or the error. */
static const char *ref_split(const char *line, uint64_t max, const char *too_many, struct tx *out,
                             uint32_t *argc) {
    const char *p = line;
    for (;;) {
        while (ref_space(*p))
            p++;
        if (*p == '\0') return NULL;
        struct tx cur = {0};
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            char ch = *p;
            if (inq && ch == '\\' && p[1] == 'x' && ref_hexval(p[2]) >= 0 &&
                ref_hexval(p[3]) >= 0) {
                char b = (char)(ref_hexval(p[2]) * 16 + ref_hexval(p[3]));
                tx_put(&cur, &b, 1);
                p += 3;
            } else if (inq && ch == '\\' && p[1] != '\0') {
                p++;
                const char *from = "nrtba", *to = "\n\r\t\b\a";
                const char *m = strchr(from, *p);
                char e = m != NULL ? to[m - from] : *p;
                tx_put(&cur, &e, 1);
            } else if (insq && ch == '\\' && p[1] == '\'') {
                p++;
                tx_put(&cur, "'", 1);
            } else if ((inq && ch == '"') || (insq && ch == '\'')) {
                if (p[1] != '\0' && !ref_space(p[1])) goto unbalanced;
                done = 1;
            } else if ((inq || insq) && ch == '\0') {
                goto unbalanced;
            } else if (inq || insq) {
                tx_put(&cur, p, 1);
            } else if (ch == ' ' || ch == '\0' || ch == '\n' || ch == '\r' || ch == '\t') {
                done = 1;
            } else if (ch == '"' || ch == '\'') {
                inq = ch == '"';
                insq = ch == '\'';
            } else {
                tx_put(&cur, p, 1);
            }
            if (*p != '\0') p++;
        }
        if (++*argc > max) {
            tx_free(&cur);
            return too_many;
        }
        tx_arg(out, cur.data != NULL ? cur.data : "", cur.len);
        tx_free(&cur);
        continue;
    unbalanced:
        tx_free(&cur);
        return "unbalanced quotes in request";
    }
}

static int ref_inline(struct ref *r) {
    const char *nl = memchr(r->d + r->pos, '\n', r->len - r->pos);
    size_t n = nl != NULL ? (size_t)(nl - (r->d + r->pos)) : r->len - r->pos;
    if (n > r->lim.inline_bytes_max) return ref_err(r, "too big inline request");
    if (nl == NULL) return REF_MORE;
    char *line = malloc(n + 1);
    if (line == NULL) abort();
    memcpy(line, r->d + r->pos, n);
    line[n] = '\0';
    if (n > 0 && line[n - 1] == '\r') line[n - 1] = '\0';
    struct tx args = {0};
    uint32_t argc = 0;
    uint64_t max = r->auth ? r->lim.unauth_args_max : r->lim.args_max;
    const char *too_many =
        r->auth ? "unauthenticated multibulk length" : "invalid multibulk length";
    const char *err = ref_split(line, max, too_many, &args, &argc);
    free(line);
    int rc = REF_SKIP;
    if (err != NULL) {
        rc = ref_err(r, err);
    } else if (argc > 0) {
        tx_printf(r->t, "C%u[", argc);
        tx_put(r->t, args.data, args.len);
        tx_put(r->t, "]", 1);
        rc = REF_CMD;
    }
    if (rc != REF_ERR) r->pos += n + 1;
    tx_free(&args);
    return rc;
}

static void run_ref(const struct resp_limits *lim, bool auth, const char *d, size_t len,
                    struct tx *t) {
    struct ref r = {.auth = auth, .d = d, .len = len, .t = t};
    if (lim != NULL) {
        r.lim = *lim;
    } else {
        resp_limits_default(&r.lim);
    }
    int rc = REF_CMD;
    while (r.pos < len && (rc == REF_CMD || rc == REF_SKIP)) {
        rc = d[r.pos] == '*' ? ref_multibulk(&r) : ref_inline(&r);
    }
}

/* ---- helpers ---------------------------------------------------------- */

/* Every chunking of `data` gives the transcript of WHOLE; it is returned. */
static bool all_chunkings(const struct resp_limits *lim, bool auth, const char *data, size_t len,
                          struct tx *whole) {
    struct feed f = {.limits = lim, .auth = auth, .mode = WHOLE};
    if (!run_real(&f, data, len, whole)) return false;
    for (int mode = BYTES; mode <= SPLIT; mode++) {
        /* every split point of a short stream, 64 of a long one */
        uint64_t tries = mode == BYTES ? 1 : mode == RANDOM ? 20 : len < 512 ? len + 1 : 64;
        for (uint64_t a = 0; a < tries; a++) {
            struct tx t = {0};
            f.mode = (enum chunking)mode;
            f.arg = mode == SPLIT && len >= 512 ? a * (len / 63) : a;
            bool same = run_real(&f, data, len, &t) && tx_eq(&t, whole);
            if (!same) {
                fprintf(stderr, "  chunking %d/%llu differs:\n  whole: %s\n  chunk: %s\n", mode,
                        (unsigned long long)a, tx_str(whole), tx_str(&t));
            }
            tx_free(&t);
            if (!same) return false;
        }
    }
    return true;
}

/* The transcript of `data` under every chunking equals `want`. */
static bool parses_as(const struct resp_limits *lim, bool auth, const char *data, size_t len,
                      const char *want, size_t want_len) {
    struct tx t = {0};
    bool ok = all_chunkings(lim, auth, data, len, &t);
    bool same = ok && t.len == want_len && (want_len == 0 || memcmp(t.data, want, want_len) == 0);
    if (ok && !same) fprintf(stderr, "  got:  %s\n  want: %s\n", tx_str(&t), want);
    tx_free(&t);
    return same;
}

static bool error_is(const struct resp_limits *lim, bool auth, const char *data, size_t len,
                     const char *msg) {
    struct tx t = {0};
    bool ok = all_chunkings(lim, auth, data, len, &t);
    char want[128];
    snprintf(want, sizeof(want), "E[%s]", msg);
    size_t n = strlen(want);
    bool same = ok && t.len >= n && memcmp(t.data + t.len - n, want, n) == 0;
    if (ok && !same) fprintf(stderr, "  got:  %s\n  want: ...%s\n", tx_str(&t), want);
    tx_free(&t);
    return same;
}

/* An allocator that counts, and fails on request. */
struct counting {
    size_t current;
    size_t peak;
    size_t biggest;
    size_t calls;
    size_t fail_at; /* the nth allocation fails; 0: never */
};

static void *counting_fn(void *ctx, void *ptr, size_t old_size, size_t new_size) {
    struct counting *c = ctx;
    if (new_size == 0) {
        free(ptr);
        c->current -= old_size;
        return NULL;
    }
    if (++c->calls == c->fail_at) return NULL;
    void *q = realloc(ptr, new_size);
    if (q == NULL) return NULL;
    c->current = c->current - old_size + new_size;
    if (c->current > c->peak) c->peak = c->current;
    if (new_size > c->biggest) c->biggest = new_size;
    return q;
}

static void small_limits(struct resp_limits *l) {
    l->args_max = 6;
    l->bulk_bytes_max = 20;
    l->inline_bytes_max = 40;
    l->request_bytes_max = 100;
    l->unauth_args_max = 3;
    l->unauth_bulk_bytes_max = 8;
}

/* ---- parser tests ----------------------------------------------------- */

TEST(multibulk_basic) {
    const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    size_t used = 0;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, in, sizeof(in) - 1, &used, &cmd) == RESP_OK);
    CHECK_EQ_U64(used, sizeof(in) - 1);
    CHECK_EQ_U64(cmd.argc, 3);
    CHECK(!cmd.is_inline);
    CHECK(cmd.argv[0].len == 3 && memcmp(cmd.argv[0].data, "SET", 3) == 0);
    CHECK(cmd.argv[2].len == 5 && memcmp(cmd.argv[2].data, "value", 5) == 0);
    /* a command that arrived whole is borrowed from the buffer: no copy */
    CHECK(cmd.argv[1].data >= in && cmd.argv[1].data < in + sizeof(in));
    CHECK(resp_parse(&p, in, 0, &used, &cmd) == RESP_NEED_MORE && used == 0);
    CHECK(resp_parse(&p, NULL, 0, &used, &cmd) == RESP_NEED_MORE);
    resp_parser_free(&p);
    CHECK(parses_as(NULL, false, LIT("*1\r\n$4\r\nPING\r\n"), LIT("C1[4:PING]")));
    CHECK(parses_as(NULL, false, LIT("*2\r\n$0\r\n\r\n$1\r\nx\r\n"), LIT("C2[0:1:x]")));
}

TEST(one_command_per_call_rest_untouched) {
    const char in[] = "*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\nPING\r\n";
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, in, sizeof(in) - 1, &used, &cmd) == RESP_OK);
    CHECK_EQ_U64(used, 11);
    CHECK(resp_parse(&p, in + 11, sizeof(in) - 12, &used, &cmd) == RESP_OK);
    CHECK(cmd.argv[0].data[0] == 'b');
    CHECK(resp_parse(&p, in + 22, sizeof(in) - 23, &used, &cmd) == RESP_OK);
    CHECK(cmd.is_inline && cmd.argc == 1 && memcmp(cmd.argv[0].data, "PING", 4) == 0);
    resp_parser_free(&p);
}

TEST(split_command_is_copied) {
    /* a command split over calls is owned by the parser: the caller may
     * overwrite its buffer after each call */
    const char in[] = "*2\r\n$3\r\nGET\r\n$6\r\nfoobar\r\n";
    size_t len = sizeof(in) - 1;
    for (size_t k = 1; k < len; k++) {
        struct resp_parser p;
        CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
        char a[64], b[64];
        memcpy(a, in, k);
        memcpy(b, in + k, len - k);
        size_t used;
        struct resp_cmd cmd;
        CHECK(resp_parse(&p, a, k, &used, &cmd) == RESP_NEED_MORE);
        CHECK_EQ_U64(used, k);
        memset(a, 'Z', sizeof(a));
        CHECK(resp_parse(&p, b, len - k, &used, &cmd) == RESP_OK);
        CHECK_EQ_U64(used, len - k);
        memset(b, 'Z', sizeof(b));
        CHECK(cmd.argc == 2 && cmd.argv[0].len == 3 && cmd.argv[1].len == 6);
        CHECK(memcmp(cmd.argv[0].data, "GET", 3) == 0);
        CHECK(memcmp(cmd.argv[1].data, "foobar", 6) == 0);
        resp_parser_free(&p);
    }
}

TEST(inline_basic) {
    CHECK(parses_as(NULL, false, LIT("PING\r\n"), LIT("C1[4:PING]")));
    CHECK(parses_as(NULL, false, LIT("PING\n"), LIT("C1[4:PING]")));
    CHECK(parses_as(NULL, false, LIT("  SET\tk   v \r\n"), LIT("C3[3:SET1:k1:v]")));
    /* blank lines and whitespace-only lines are skipped, as Redis does */
    CHECK(parses_as(NULL, false, LIT("\r\n\n \t \r\nPING\r\n"), LIT("C1[4:PING]")));
    /* only the `\r` right before `\n` is dropped */
    CHECK(parses_as(NULL, false, LIT("a\rb\r\r\n"), LIT("C2[1:a1:b]")));
    /* \v and \f are skipped between arguments but do not end one */
    CHECK(parses_as(NULL, false, LIT("\va\vb\f\n"), LIT("C1[4:a\vb\f]")));
    /* no `\n` yet: nothing */
    CHECK(parses_as(NULL, false, LIT("PING"), LIT("")));
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, LIT("GET x\r\nrest"), &used, &cmd) == RESP_OK);
    CHECK_EQ_U64(used, 7);
    CHECK(cmd.is_inline);
    resp_parser_free(&p);
}

TEST(inline_quotes) {
    struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"SET \"a b\" 'c d'\r\n", "C3[3:SET3:a b3:c d]"},
        {"ECHO \"\\x41\\x4a\\n\\t\"\n", "C2[4:ECHO4:AJ\n\t]"},
        {"ECHO \"\\xZZ\\q\"\n", "C2[4:ECHO4:xZZq]"},
        {"ECHO \"a\\\"b\"\n", "C2[4:ECHO3:a\"b]"},
        {"ECHO 'it\\'s'\n", "C2[4:ECHO4:it's]"},
        {"ECHO 'a\\nb'\n", "C2[4:ECHO4:a\\nb]"},
        {"ECHO \"\" ''\n", "C3[4:ECHO0:0:]"},
        {"ECHO a\"b c\"\n", "C2[4:ECHO4:ab c]"},
        {"ECHO \"a\"\v\n", "C2[4:ECHO1:a]"},
        {"ECHO \"\\r\\b\\a\"\n", "C2[4:ECHO3:\r\b\a]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(parses_as(NULL, false, cases[i].in, strlen(cases[i].in), cases[i].want,
                        strlen(cases[i].want)));
    }
    /* Redis splits a C string: a NUL ends the line's arguments... */
    CHECK(parses_as(NULL, false, LIT("ECHO a\0b c\r\nPING\n"), LIT("C2[4:ECHO1:a]C1[4:PING]")));
    /* ...and inside quotes it leaves them unterminated */
    CHECK(error_is(NULL, false, LIT("ECHO \"a\0b\"\n"),
                   "Protocol error: unbalanced quotes in request"));
    const char *bad[] = {"ECHO \"abc\r\n", "ECHO 'abc\n",    "ECHO \"a\"b\n",
                         "ECHO 'a'b\n",    "ECHO \"a\\\"\n", "ECHO a\"b c\"d\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(error_is(NULL, false, bad[i], strlen(bad[i]),
                       "Protocol error: unbalanced quotes in request"));
    }
}

TEST(binary_safe) {
    /* NUL, CR, LF, '*', '$' inside keys and values round-trip */
    const char in[] = "*3\r\n$3\r\nSET\r\n$5\r\nk\0\r\n*\r\n$8\r\n\r\n$1\r\n\0\0\r\n"
                      "*2\r\n$3\r\nGET\r\n$5\r\nk\0\r\n*\r\n";
    const char want[] = "C3[3:SET5:k\0\r\n*8:\r\n$1\r\n\0\0]C2[3:GET5:k\0\r\n*]";
    CHECK(parses_as(NULL, false, in, sizeof(in) - 1, want, sizeof(want) - 1));
    /* every byte value as a one-byte argument */
    struct tx s = {0}, w = {0};
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tx_put(&s, "*1\r\n$1\r\n", 8);
        tx_put(&s, &c, 1);
        tx_put(&s, "\r\n", 2);
        tx_put(&w, "C1[1:", 5);
        tx_put(&w, &c, 1);
        tx_put(&w, "]", 1);
    }
    bool ok = parses_as(NULL, false, s.data, s.len, w.data, w.len);
    tx_free(&s);
    tx_free(&w);
    CHECK(ok);
}

TEST(pipeline_every_split_point) {
    const char in[] = "*1\r\n$4\r\nPING\r\n"
                      "*0\r\n*-1\r\n\r\n"
                      "SET a \"b c\"\r\n"
                      "*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$4\r\n\0\0\0\0\r\n"
                      "*-10\r\n"
                      "ECHO 'x y'\n"
                      "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
    const char want[] = "C1[4:PING]C3[3:SET1:a3:b c]C3[3:SET2:\r\n4:\0\0\0\0]"
                        "C2[4:ECHO3:x y]C2[4:ECHO0:]";
    CHECK(parses_as(NULL, false, in, sizeof(in) - 1, want, sizeof(want) - 1));
    /* random chunkings of a long pipeline */
    struct tx s = {0};
    for (int i = 0; i < 50; i++)
        tx_put(&s, in, sizeof(in) - 1);
    struct tx whole = {0};
    struct feed f = {.mode = WHOLE};
    CHECK(run_real(&f, s.data, s.len, &whole));
    bool ok = true;
    for (uint64_t seed = 1; seed <= 100 && ok; seed++) {
        struct tx t = {0};
        f.mode = seed % 10 == 0 ? BYTES : RANDOM;
        f.arg = seed;
        ok = run_real(&f, s.data, s.len, &t) && tx_eq(&t, &whole);
        tx_free(&t);
    }
    bool counted = whole.len == 50 * (sizeof(want) - 1);
    tx_free(&whole);
    tx_free(&s);
    CHECK(ok);
    CHECK(counted);
}

TEST(empty_commands_skipped) {
    /* Redis's "Negative multibulk length" test: *-10 is ignored */
    CHECK(parses_as(NULL, false, LIT("*-10\r\nPING\r\n"), LIT("C1[4:PING]")));
    CHECK(parses_as(NULL, false, LIT("*0\r\n*0\r\n*1\r\n$1\r\nx\r\n"), LIT("C1[1:x]")));
    CHECK(parses_as(NULL, false, LIT("*-9223372036854775808\r\n"), LIT("")));
    /* Redis's "Handle an empty query" */
    CHECK(parses_as(NULL, false, LIT("\r\nPING\r\n"), LIT("C1[4:PING]")));
}

TEST(protocol_errors_exact) {
    struct {
        const char *in;
        size_t len;
        const char *msg;
    } cases[] = {
#define E(in, msg) {in, sizeof(in) - 1, "Protocol error: " msg}
        E("*abc\r\n", "invalid multibulk length"),
        E("*\r\n", "invalid multibulk length"),
        E("*-\r\n", "invalid multibulk length"),
        E("*-0\r\n", "invalid multibulk length"),
        E("*01\r\n", "invalid multibulk length"),
        E("*+1\r\n", "invalid multibulk length"),
        E("*1 \r\n", "invalid multibulk length"),
        E("*1\rX", "invalid multibulk length"),
        E("*1048577\r\n", "invalid multibulk length"),
        E("*20000000\r\n", "invalid multibulk length"), /* Redis's protocol.tcl */
        E("*3000000000\r\n", "invalid multibulk length"),
        E("*99999999999999999999\r\n", "invalid multibulk length"),
        E("*1\r\n$-1\r\n", "invalid bulk length"),
        E("*1\r\n$\r\n", "invalid bulk length"),
        E("*1\r\n$1x\r\n", "invalid bulk length"),
        E("*1\r\n$1\r\r", "invalid bulk length"),
        E("*1\r\n$536870913\r\n", "invalid bulk length"),
        E("*1\r\n$1099511627776\r\n", "invalid bulk length"),
        E("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "expected '$', got 'f'"), /* protocol.tcl */
        E("*1\r\n\r\n", "expected '$', got ' '"),
        E("*1\r\n:1\r\n", "expected '$', got ':'"),
        E("*2\r\n$1\r\na\r\n\0", "expected '$', got ' '"),
        E("*1\r\n$3\r\nabcX", "expected CRLF after bulk data"),
        E("*1\r\n$3\r\nabc\rX", "expected CRLF after bulk data"),
        E("*1\r\n$3\r\nabc\n\r", "expected CRLF after bulk data"),
        E("SET \"a\r\n", "unbalanced quotes in request"),
#undef E
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!error_is(NULL, false, cases[i].in, cases[i].len, cases[i].msg)) {
            fprintf(stderr, "  case %zu\n", i);
            CHECK(0);
        }
    }
}

TEST(too_big_lines) {
    size_t max = RESP_INLINE_BYTES_MAX_DEFAULT;
    char *s = malloc(max + 64);
    CHECK(s != NULL);
    /* a count line: max characters wait, one more is refused */
    s[0] = '*';
    memset(s + 1, '1', max + 1);
    bool wait = parses_as(NULL, false, s, 1 + max, LIT(""));
    bool big = error_is(NULL, false, s, 2 + max, "Protocol error: too big mbulk count string");
    /* a bulk length line */
    memcpy(s, "*1\r\n$", 5);
    memset(s + 5, '2', max + 1);
    bool big_bulk = error_is(NULL, false, s, 6 + max, "Protocol error: too big bulk count string");
    /* an inline line of max bytes is fine, max + 1 without `\n` is refused */
    memset(s, 'A', max + 1);
    s[max] = '\n';
    struct tx t = {0};
    struct feed f = {.mode = WHOLE};
    bool fits = run_real(&f, s, max + 1, &t) && t.len == 2 + 1 + 6 + max + 1;
    tx_free(&t);
    s[max] = 'A';
    bool big_inline = error_is(NULL, false, s, max + 1, "Protocol error: too big inline request");
    free(s);
    CHECK(wait);
    CHECK(big);
    CHECK(big_bulk);
    CHECK(fits);
    CHECK(big_inline);
}

TEST(errors_are_sticky) {
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    CHECK(resp_parser_error(&p)[0] == '\0');
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, LIT("*x\r\nPING\r\n"), &used, &cmd) == RESP_PROTOCOL_ERROR);
    CHECK(used <= 4);
    CHECK(strcmp(resp_parser_error(&p), "Protocol error: invalid multibulk length") == 0);
    CHECK(resp_parse(&p, LIT("PING\r\n"), &used, &cmd) == RESP_PROTOCOL_ERROR);
    CHECK_EQ_U64(used, 0);
    resp_parser_reset(&p);
    CHECK(resp_parse(&p, LIT("PING\r\n"), &used, &cmd) == RESP_OK);
    resp_parser_free(&p);
}

TEST(unauthenticated_limits) {
    /* Redis 6.2+: before AUTH, 10 arguments of 16 KiB at most */
    CHECK(
        error_is(NULL, true, LIT("*100\r\n"), "Protocol error: unauthenticated multibulk length"));
    CHECK(error_is(NULL, true, LIT("*1\r\n$100000000\r\n"),
                   "Protocol error: unauthenticated bulk length"));
    CHECK(error_is(NULL, true, LIT("*1\r\n$16385\r\n"),
                   "Protocol error: unauthenticated bulk length"));
    CHECK(error_is(NULL, true, LIT("*2000000\r\n"), "Protocol error: invalid multibulk length"));
    CHECK(error_is(NULL, true, LIT("a b c d e f g h i j k\n"),
                   "Protocol error: unauthenticated multibulk length"));
    CHECK(parses_as(NULL, true, LIT("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"), LIT("C2[4:AUTH2:pw]")));
    CHECK(parses_as(NULL, false, LIT("a b c d e f g h i j k\n"),
                    LIT("C11[1:a1:b1:c1:d1:e1:f1:g1:h1:i1:j1:k]")));
    /* switching mid-connection applies to the next header */
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    resp_parser_set_auth_required(&p, true);
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, LIT("*11\r\n"), &used, &cmd) == RESP_PROTOCOL_ERROR);
    resp_parser_reset(&p);
    resp_parser_set_auth_required(&p, false);
    CHECK(resp_parse(&p, LIT("*11\r\n"), &used, &cmd) == RESP_NEED_MORE);
    resp_parser_free(&p);
}

TEST(limits_configurable) {
    struct resp_limits l;
    resp_limits_default(&l);
    CHECK_EQ_U64(l.args_max, 1024 * 1024);
    CHECK_EQ_U64(l.bulk_bytes_max, 512ull << 20);
    CHECK_EQ_U64(l.inline_bytes_max, 65536);
    CHECK_EQ_U64(l.request_bytes_max, 1ull << 30);
    small_limits(&l);
    CHECK(error_is(&l, false, LIT("*7\r\n"), "Protocol error: invalid multibulk length"));
    CHECK(parses_as(&l, false, LIT("*6\r\n$0\r\n"), LIT("")));
    CHECK(error_is(&l, false, LIT("*1\r\n$21\r\n"), "Protocol error: invalid bulk length"));
    CHECK(error_is(&l, true, LIT("*1\r\n$9\r\n"), "Protocol error: unauthenticated bulk length"));
    CHECK(error_is(&l, true, LIT("*4\r\n"), "Protocol error: unauthenticated multibulk length"));
    CHECK(parses_as(&l, false, LIT("*1\r\n$20\r\n01234567890123456789\r\n"),
                    LIT("C1[20:01234567890123456789]")));
    /* request_bytes_max counts every protocol byte of one command */
    CHECK(error_is(&l, false,
                   LIT("*5\r\n$20\r\n01234567890123456789\r\n$20\r\n01234567890123456789"
                       "\r\n$20\r\n01234567890123456789\r\n$20\r\n"),
                   "Protocol error: too big request"));
    /* 40-byte inline lines pass, 41 do not */
    CHECK(parses_as(&l, false, LIT("0123456789012345678901234567890123456789\n"),
                    LIT("C1[40:0123456789012345678901234567890123456789]")));
    CHECK(error_is(&l, false, LIT("01234567890123456789012345678901234567890\n"),
                   "Protocol error: too big inline request"));
    CHECK(error_is(&l, false, LIT("a b c d e f g\n"), "Protocol error: invalid multibulk length"));
    char line[64] = "*1\r\n$";
    memset(line + 5, '0', 41); /* 41 > inline_bytes_max characters */
    CHECK(error_is(&l, false, line, 5 + 41, "Protocol error: too big bulk count string"));
    line[5 + 40] = '\r';
    CHECK(error_is(&l, false, line, 5 + 41 + 1, "Protocol error: invalid bulk length"));
    /* inconsistent limits are refused */
    struct resp_parser p;
    struct resp_limits bad = l;
    bad.args_max = 0;
    CHECK(resp_parser_init(&p, &bad, NULL) == RESP_EINVAL);
    bad = l;
    bad.bulk_bytes_max = bad.request_bytes_max;
    CHECK(resp_parser_init(&p, &bad, NULL) == RESP_EINVAL);
    bad = l;
    bad.unauth_args_max = bad.args_max + 1;
    CHECK(resp_parser_init(&p, &bad, NULL) == RESP_EINVAL);
    bad = l;
    bad.args_max = RESP_ARGS_MAX_CEILING + 1u;
    CHECK(resp_parser_init(&p, &bad, NULL) == RESP_EINVAL);
}

TEST(huge_bulk_header_allocates_nothing) {
    struct counting c = {0};
    struct resp_alloc a = {counting_fn, &c};
    struct resp_parser p;
    /* default limits: 2^40 is refused at once */
    CHECK(resp_parser_init(&p, NULL, &a) == RESP_OK);
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, LIT("*1\r\n$1099511627776\r\n"), &used, &cmd) == RESP_PROTOCOL_ERROR);
    CHECK(strcmp(resp_parser_error(&p), "Protocol error: invalid bulk length") == 0);
    CHECK_EQ_U64(c.calls, 0);
    resp_parser_free(&p);
    /* limits that allow 2^40: it waits, and memory follows the bytes that
     * arrive, not the bytes announced */
    struct resp_limits l;
    resp_limits_default(&l);
    l.bulk_bytes_max = 1ull << 41;
    l.request_bytes_max = 1ull << 42;
    CHECK(resp_parser_init(&p, &l, &a) == RESP_OK);
    CHECK(resp_parse(&p, LIT("*1\r\n$1099511627776\r\n"), &used, &cmd) == RESP_NEED_MORE);
    CHECK(resp_parser_memory(&p) < 4096);
    char chunk[4096];
    memset(chunk, 'v', sizeof(chunk));
    size_t fed = 0;
    for (int i = 0; i < 64; i++) {
        CHECK(resp_parse(&p, chunk, sizeof(chunk), &used, &cmd) == RESP_NEED_MORE);
        fed += used;
    }
    CHECK(c.peak <= 2 * fed + 4096);
    CHECK(c.biggest <= 2 * fed);
    CHECK(resp_parser_memory(&p) == c.current);
    resp_parser_free(&p);
    CHECK_EQ_U64(c.current, 0);
}

TEST(huge_array_header_allocates_nothing) {
    struct counting c = {0};
    struct resp_alloc a = {counting_fn, &c};
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, &a) == RESP_OK);
    size_t used;
    struct resp_cmd cmd;
    /* 1M arguments is within the default limit: accepted, nothing allocated */
    CHECK(resp_parse(&p, LIT("*1048576\r\n"), &used, &cmd) == RESP_NEED_MORE);
    CHECK_EQ_U64(c.peak, 0);
    for (int i = 0; i < 1000; i++) {
        CHECK(resp_parse(&p, LIT("$1\r\nx\r\n"), &used, &cmd) == RESP_NEED_MORE);
    }
    /* 1000 one-byte arguments: slots for ~1024, not for 1M */
    CHECK(c.peak < 64 * 1024);
    CHECK(c.biggest < 32 * 1024);
    resp_parser_free(&p);
    /* the whole 1M-argument command does parse (bytes are real here) */
    struct tx s = {0};
    tx_put(&s, "*1048576\r\n", 10);
    for (int i = 0; i < 1048576; i++)
        tx_put(&s, "$0\r\n\r\n", 6);
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    int rc = resp_parse(&p, s.data, s.len, &used, &cmd);
    bool whole = rc == RESP_OK && used == s.len && cmd.argc == 1048576;
    resp_parser_free(&p);
    tx_free(&s);
    CHECK(whole);
}

TEST(memory_is_trimmed_between_commands) {
    struct counting c = {0};
    struct resp_alloc a = {counting_fn, &c};
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, &a) == RESP_OK);
    size_t n = (1 << 20) + 1000; /* not a power of 2: doubling would overshoot */
    char *big = malloc(n);
    CHECK(big != NULL);
    memset(big, 'b', n);
    size_t used;
    struct resp_cmd cmd;
    CHECK(resp_parse(&p, LIT("*1\r\n$1049576\r\nab"), &used, &cmd) == RESP_NEED_MORE);
    CHECK(resp_parse(&p, big, n - 2, &used, &cmd) == RESP_NEED_MORE);
    free(big);
    CHECK(resp_parse(&p, LIT("\r\n"), &used, &cmd) == RESP_OK);
    CHECK(cmd.argv[0].len == n && cmd.argv[0].data[0] == 'a' && cmd.argv[0].data[n - 1] == 'b');
    CHECK(c.current >= n && c.current < n + 4096); /* the arena did not double past n */
    CHECK(resp_parse(&p, LIT("PING\r\n"), &used, &cmd) == RESP_OK);
    CHECK(resp_parser_memory(&p) <= RESP_KEEP_BYTES + 4096);
    resp_parser_free(&p);
    CHECK_EQ_U64(c.current, 0);
}

TEST(out_of_memory_is_sticky) {
    const char in[] = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    for (size_t fail_at = 1; fail_at <= 4; fail_at++) {
        struct counting c = {.fail_at = fail_at};
        struct resp_alloc a = {counting_fn, &c};
        struct resp_parser p;
        CHECK(resp_parser_init(&p, NULL, &a) == RESP_OK);
        int rc = RESP_NEED_MORE;
        size_t used;
        struct resp_cmd cmd;
        for (size_t i = 0; i < sizeof(in) - 1 && rc == RESP_NEED_MORE; i++) {
            rc = resp_parse(&p, in + i, 1, &used, &cmd);
        }
        if (c.calls >= fail_at) {
            CHECK(rc == RESP_ENOMEM);
            CHECK(strcmp(resp_parser_error(&p), "out of memory") == 0);
            CHECK(resp_parse(&p, LIT("PING\r\n"), &used, &cmd) == RESP_ENOMEM && used == 0);
        }
        resp_parser_free(&p);
        CHECK_EQ_U64(c.current, 0);
    }
}

/* ---- differential test against the reference parser ------------------ */

static const char nasty[] = "\r\n*$-0123456789\"'\\ \t\0xAb";

static void gen_bytes(struct rand *r, struct tx *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = rand_chance(r, 30) ? nasty[rand_below(r, sizeof(nasty) - 1)]
                                    : (char)('a' + rand_below(r, 26));
        tx_put(s, &c, 1);
    }
}

/* A header number, sometimes with leading zeros that make the line long. */
static void gen_header(struct rand *r, struct tx *s, char prefix, uint64_t n) {
    tx_put(s, &prefix, 1);
    if (rand_chance(r, 3)) {
        for (uint64_t z = 1 + rand_below(r, 50); z > 0; z--)
            tx_put(s, "0", 1);
    }
    tx_printf(s, "%llu\r\n", (unsigned long long)n);
}

static void gen_multibulk(struct rand *r, struct tx *s, const struct resp_limits *l) {
    uint64_t argc = rand_chance(r, 3) ? l->args_max + 1 : 1 + rand_below(r, 6);
    gen_header(r, s, '*', argc);
    uint64_t n = argc < 7 ? argc : 2;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = rand_chance(r, 3) ? (size_t)l->bulk_bytes_max + 1 : rand_below(r, 12);
        if (rand_chance(r, 25)) len = rand_below(r, l->bulk_bytes_max + 1);
        if (len > 64) len = 64;
        gen_header(r, s, '$', len);
        gen_bytes(r, s, len);
        tx_put(s, "\r\n", 2);
    }
}

static void gen_inline(struct rand *r, struct tx *s) {
    static const char *pieces[] = {"\\x41", "\\x4", "\\n", "\\\"", "\\'", "\\\\", "\\q",
                                   " ",     "\t",   "\r",  "\v",   "'",   "\""};
    uint64_t argc = rand_below(r, 5);
    for (uint64_t i = 0; i < argc; i++) {
        tx_put(s, rand_chance(r, 80) ? " " : "\t", 1);
        int q = (int)rand_below(r, 3);
        if (q == 1) tx_put(s, "\"", 1);
        if (q == 2) tx_put(s, "'", 1);
        for (uint64_t k = rand_below(r, 5); k > 0; k--) {
            if (rand_chance(r, 40)) {
                const char *piece = pieces[rand_below(r, sizeof(pieces) / sizeof(pieces[0]))];
                tx_put(s, piece, strlen(piece));
            } else {
                gen_bytes(r, s, 1);
            }
        }
        if (q == 1 && rand_chance(r, 90)) tx_put(s, "\"", 1);
        if (q == 2 && rand_chance(r, 90)) tx_put(s, "'", 1);
    }
    if (rand_chance(r, 10)) gen_bytes(r, s, 30);
    if (rand_chance(r, 50)) tx_put(s, "\r", 1);
    tx_put(s, "\n", 1);
}

static void gen_stream(struct rand *r, struct tx *s, const struct resp_limits *l) {
    static const char *empties[] = {"*0\r\n", "*-1\r\n", "\r\n", "\n", "  \r\n", "*-0\r\n"};
    for (uint64_t n = 1 + rand_below(r, 6); n > 0; n--) {
        uint64_t kind = rand_below(r, 10);
        if (kind < 6) {
            gen_multibulk(r, s, l);
        } else if (kind < 9) {
            gen_inline(r, s);
        } else {
            const char *e = empties[rand_below(r, sizeof(empties) / sizeof(empties[0]))];
            tx_put(s, e, strlen(e));
        }
    }
}

static void mutate(struct rand *r, struct tx *s) {
    for (uint64_t k = 1 + rand_below(r, 3); k > 0 && s->len > 0; k--) {
        size_t at = rand_below(r, s->len);
        char c = nasty[rand_below(r, sizeof(nasty) - 1)];
        switch (rand_below(r, 4)) {
        case 0: s->data[at] = c; break;
        case 1:
            memmove(s->data + at, s->data + at + 1, s->len - at - 1);
            s->len--;
            break;
        case 2: s->len = at; break;
        default:
            tx_put(s, &c, 1);
            memmove(s->data + at + 1, s->data + at, s->len - at - 1);
            s->data[at] = c;
            break;
        }
    }
}

TEST(differential_against_reference) {
    struct resp_limits small;
    small_limits(&small);
    int failures = 0;
    for (uint64_t seed = 1; seed <= 3000 && failures == 0; seed++) {
        struct rand r;
        rand_seed(&r, seed);
        const struct resp_limits *l = seed % 4 == 0 ? NULL : &small;
        struct resp_limits dl;
        resp_limits_default(&dl);
        bool auth = seed % 5 == 0;
        struct tx s = {0}, want = {0}, got = {0};
        gen_stream(&r, &s, l != NULL ? l : &small);
        if (rand_chance(&r, 50)) mutate(&r, &s);
        run_ref(l, auth, s.data, s.len, &want);
        struct feed f = {
            .limits = l, .auth = auth, .mode = seed % 7 == 0 ? BYTES : RANDOM, .arg = seed};
        if (!run_real(&f, s.data, s.len, &got) || !tx_eq(&got, &want)) {
            fprintf(stderr, "  seed %llu: stream of %zu bytes\n  want: %s\n  got:  %s\n",
                    (unsigned long long)seed, s.len, tx_str(&want), tx_str(&got));
            failures++;
        }
        tx_free(&s);
        tx_free(&want);
        tx_free(&got);
    }
    CHECK_EQ_U64(failures, 0);
}

/* ---- writer tests ----------------------------------------------------- */

static bool out_is(struct resp_out *o, const char *want, size_t len) {
    bool same = resp_out_len(o) == len && memcmp(resp_out_data(o), want, len) == 0;
    if (!same) {
        fprintf(stderr, "  out: \"%.*s\" (%zu bytes) want %zu bytes\n", (int)resp_out_len(o),
                resp_out_data(o), resp_out_len(o), len);
    }
    resp_out_consume(o, resp_out_len(o));
    return same;
}

TEST(writer_resp2) {
    struct resp_out o;
    resp_out_init(&o, 2, 1 << 20, NULL);
    CHECK(resp_write_simple(&o, LIT("OK")) == RESP_OK && out_is(&o, LIT("+OK\r\n")));
    CHECK(resp_write_error(&o, LIT("ERR bad\r\nthing")) == RESP_OK &&
          out_is(&o, LIT("-ERR bad  thing\r\n")));
    CHECK(resp_write_errorf(&o, "MOVED %d %s:%d", 3999, "127.0.0.1", 6381) == RESP_OK &&
          out_is(&o, LIT("-MOVED 3999 127.0.0.1:6381\r\n")));
    CHECK(resp_write_errorf(&o, "ERR %s", "a\nb") == RESP_OK && out_is(&o, LIT("-ERR a b\r\n")));
    CHECK(resp_write_int(&o, 0) == RESP_OK && out_is(&o, LIT(":0\r\n")));
    CHECK(resp_write_int(&o, -42) == RESP_OK && out_is(&o, LIT(":-42\r\n")));
    CHECK(resp_write_int(&o, INT64_MIN) == RESP_OK);
    CHECK(out_is(&o, LIT(":-9223372036854775808\r\n")));
    CHECK(resp_write_int(&o, INT64_MAX) == RESP_OK && out_is(&o, LIT(":9223372036854775807\r\n")));
    CHECK(resp_write_bulk(&o, "a\0\r\nb", 5) == RESP_OK && out_is(&o, LIT("$5\r\na\0\r\nb\r\n")));
    CHECK(resp_write_bulk(&o, NULL, 0) == RESP_OK && out_is(&o, LIT("$0\r\n\r\n")));
    CHECK(resp_write_null(&o) == RESP_OK && out_is(&o, LIT("$-1\r\n")));
    CHECK(resp_write_null_array(&o) == RESP_OK && out_is(&o, LIT("*-1\r\n")));
    CHECK(resp_write_array(&o, 3) == RESP_OK && out_is(&o, LIT("*3\r\n")));
    CHECK(resp_write_array(&o, 0) == RESP_OK && out_is(&o, LIT("*0\r\n")));
    CHECK(resp_write_map(&o, 2) == RESP_OK && out_is(&o, LIT("*4\r\n")));
    CHECK(resp_write_set(&o, 2) == RESP_OK && out_is(&o, LIT("*2\r\n")));
    CHECK(resp_write_push(&o, 3) == RESP_OK && out_is(&o, LIT("*3\r\n")));
    CHECK(resp_write_double(&o, 1.5) == RESP_OK && out_is(&o, LIT("$3\r\n1.5\r\n")));
    CHECK(resp_write_double(&o, 0.1) == RESP_OK &&
          out_is(&o, LIT("$19\r\n0.10000000000000001\r\n")));
    CHECK(resp_write_double(&o, INFINITY) == RESP_OK && out_is(&o, LIT("$3\r\ninf\r\n")));
    CHECK(resp_write_double(&o, -INFINITY) == RESP_OK && out_is(&o, LIT("$4\r\n-inf\r\n")));
    CHECK(resp_write_double(&o, NAN) == RESP_OK && out_is(&o, LIT("$3\r\nnan\r\n")));
    CHECK(resp_write_double(&o, -NAN) == RESP_OK && out_is(&o, LIT("$3\r\nnan\r\n")));
    CHECK(resp_write_bool(&o, true) == RESP_OK && out_is(&o, LIT(":1\r\n")));
    CHECK(resp_write_bool(&o, false) == RESP_OK && out_is(&o, LIT(":0\r\n")));
    CHECK(resp_write_verbatim(&o, "txt", LIT("hello")) == RESP_OK &&
          out_is(&o, LIT("$5\r\nhello\r\n")));
    CHECK(resp_write_bignum(&o, LIT("1234567890123456789012")) == RESP_OK &&
          out_is(&o, LIT("$22\r\n1234567890123456789012\r\n")));
    CHECK(resp_write_raw(&o, LIT("+PONG\r\n")) == RESP_OK && out_is(&o, LIT("+PONG\r\n")));
    CHECK(resp_out_error(&o) == 0);
    resp_out_free(&o);
}

TEST(writer_resp3) {
    struct resp_out o;
    resp_out_init(&o, 2, 1 << 20, NULL);
    resp_out_set_proto(&o, 3);
    CHECK(resp_write_null(&o) == RESP_OK && out_is(&o, LIT("_\r\n")));
    CHECK(resp_write_null_array(&o) == RESP_OK && out_is(&o, LIT("_\r\n")));
    CHECK(resp_write_map(&o, 2) == RESP_OK && out_is(&o, LIT("%2\r\n")));
    CHECK(resp_write_set(&o, 2) == RESP_OK && out_is(&o, LIT("~2\r\n")));
    CHECK(resp_write_push(&o, 3) == RESP_OK && out_is(&o, LIT(">3\r\n")));
    CHECK(resp_write_array(&o, 1) == RESP_OK && out_is(&o, LIT("*1\r\n")));
    CHECK(resp_write_double(&o, 1.5) == RESP_OK && out_is(&o, LIT(",1.5\r\n")));
    CHECK(resp_write_double(&o, 3.0) == RESP_OK && out_is(&o, LIT(",3\r\n")));
    CHECK(resp_write_double(&o, -0.0) == RESP_OK && out_is(&o, LIT(",-0\r\n")));
    CHECK(resp_write_double(&o, 1e17) == RESP_OK && out_is(&o, LIT(",1e+17\r\n")));
    CHECK(resp_write_double(&o, 0.1) == RESP_OK && out_is(&o, LIT(",0.10000000000000001\r\n")));
    CHECK(resp_write_double(&o, INFINITY) == RESP_OK && out_is(&o, LIT(",inf\r\n")));
    CHECK(resp_write_double(&o, -INFINITY) == RESP_OK && out_is(&o, LIT(",-inf\r\n")));
    CHECK(resp_write_double(&o, NAN) == RESP_OK && out_is(&o, LIT(",nan\r\n")));
    CHECK(resp_write_bool(&o, true) == RESP_OK && out_is(&o, LIT("#t\r\n")));
    CHECK(resp_write_bool(&o, false) == RESP_OK && out_is(&o, LIT("#f\r\n")));
    CHECK(resp_write_verbatim(&o, "txt", LIT("hello")) == RESP_OK &&
          out_is(&o, LIT("=9\r\ntxt:hello\r\n")));
    CHECK(resp_write_verbatim(&o, "mkd", NULL, 0) == RESP_OK && out_is(&o, LIT("=4\r\nmkd:\r\n")));
    CHECK(resp_write_bignum(&o, LIT("-1234567890123456789012")) == RESP_OK &&
          out_is(&o, LIT("(-1234567890123456789012\r\n")));
    /* unchanged in RESP3 */
    CHECK(resp_write_simple(&o, LIT("OK")) == RESP_OK && out_is(&o, LIT("+OK\r\n")));
    CHECK(resp_write_int(&o, 7) == RESP_OK && out_is(&o, LIT(":7\r\n")));
    CHECK(resp_write_bulk(&o, LIT("v")) == RESP_OK && out_is(&o, LIT("$1\r\nv\r\n")));
    /* a whole HELLO-like reply */
    CHECK(resp_write_map(&o, 2) == RESP_OK);
    CHECK(resp_write_bulk(&o, LIT("proto")) == RESP_OK);
    CHECK(resp_write_int(&o, 3) == RESP_OK);
    CHECK(resp_write_bulk(&o, LIT("modules")) == RESP_OK);
    CHECK(resp_write_array(&o, 0) == RESP_OK);
    CHECK(out_is(&o, LIT("%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n")));
    resp_out_free(&o);
}

TEST(writer_hard_cap_is_sticky) {
    struct resp_out o;
    resp_out_init(&o, 2, 10, NULL);
    CHECK(resp_write_simple(&o, LIT("OK")) == RESP_OK);
    CHECK(resp_write_bulk(&o, LIT("hello")) == RESP_ETOOBIG);
    CHECK_EQ_U64(resp_out_len(&o), 5); /* nothing partial */
    CHECK(resp_write_simple(&o, LIT("x")) == RESP_ETOOBIG);
    CHECK(resp_out_error(&o) == RESP_ETOOBIG);
    CHECK(out_is(&o, LIT("+OK\r\n")));
    CHECK(resp_write_simple(&o, LIT("x")) == RESP_ETOOBIG);
    resp_out_free(&o);
    /* exactly at the cap is fine */
    resp_out_init(&o, 2, 11, NULL);
    CHECK(resp_write_bulk(&o, LIT("hello")) == RESP_OK);
    CHECK(resp_write_raw(&o, NULL, 0) == RESP_OK);
    CHECK(resp_write_raw(&o, "x", 1) == RESP_ETOOBIG);
    resp_out_free(&o);
    /* allocation failure */
    struct counting c = {.fail_at = 1};
    struct resp_alloc a = {counting_fn, &c};
    resp_out_init(&o, 3, 1 << 20, &a);
    CHECK(resp_write_int(&o, 1) == RESP_ENOMEM);
    CHECK(resp_write_int(&o, 1) == RESP_ENOMEM);
    CHECK_EQ_U64(resp_out_len(&o), 0);
    resp_out_free(&o);
}

TEST(writer_consume_and_compact) {
    struct counting c = {0};
    struct resp_alloc a = {counting_fn, &c};
    struct resp_out o;
    resp_out_init(&o, 2, 1 << 20, &a);
    struct tx want = {0};
    struct rand r;
    rand_seed(&r, 7);
    size_t sent = 0;
    for (int i = 0; i < 5000; i++) {
        CHECK(resp_write_int(&o, i) == RESP_OK);
        tx_printf(&want, ":%d\r\n", i);
        size_t n = rand_below(&r, resp_out_len(&o) + 1);
        CHECK(memcmp(resp_out_data(&o), want.data + sent, n) == 0);
        resp_out_consume(&o, n);
        sent += n;
    }
    CHECK_EQ_U64(sent + resp_out_len(&o), want.len);
    CHECK(memcmp(resp_out_data(&o), want.data + sent, resp_out_len(&o)) == 0);
    CHECK(c.peak < 64 * 1024);
    tx_free(&want);
    /* a big reply is released once sent */
    char *big = calloc(1, 1 << 19);
    CHECK(big != NULL);
    CHECK(resp_write_bulk(&o, big, 1 << 19) == RESP_OK);
    free(big);
    resp_out_consume(&o, resp_out_len(&o));
    CHECK_EQ_U64(c.current, 0);
    resp_out_free(&o);
}

TEST(writer_output_parses_back) {
    struct rand r;
    rand_seed(&r, 11);
    struct resp_out o;
    resp_out_init(&o, 2, 1 << 20, NULL);
    struct resp_parser p;
    CHECK(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    for (int i = 0; i < 200; i++) {
        char args[8][32];
        size_t lens[8];
        uint64_t argc = 1 + rand_below(&r, 8);
        CHECK(resp_write_array(&o, argc) == RESP_OK);
        for (uint64_t k = 0; k < argc; k++) {
            lens[k] = rand_below(&r, 32);
            for (size_t b = 0; b < lens[k]; b++)
                args[k][b] = (char)rand_below(&r, 256);
            CHECK(resp_write_bulk(&o, args[k], lens[k]) == RESP_OK);
        }
        size_t used;
        struct resp_cmd cmd;
        CHECK(resp_parse(&p, resp_out_data(&o), resp_out_len(&o), &used, &cmd) == RESP_OK);
        CHECK_EQ_U64(used, resp_out_len(&o));
        CHECK_EQ_U64(cmd.argc, argc);
        for (uint64_t k = 0; k < argc; k++) {
            CHECK(cmd.argv[k].len == lens[k]);
            CHECK(lens[k] == 0 || memcmp(cmd.argv[k].data, args[k], lens[k]) == 0);
        }
        resp_out_consume(&o, used);
    }
    resp_parser_free(&p);
    resp_out_free(&o);
}

TEST(strerror_names_every_status) {
    int codes[] = {RESP_OK,     RESP_NEED_MORE, RESP_PROTOCOL_ERROR,
                   RESP_ENOMEM, RESP_ETOOBIG,   RESP_EINVAL};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        CHECK(strcmp(resp_strerror(codes[i]), "unknown status") != 0);
    }
    CHECK(strcmp(resp_strerror(42), "unknown status") == 0);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(multibulk_basic),
        TEST_ENTRY(one_command_per_call_rest_untouched),
        TEST_ENTRY(split_command_is_copied),
        TEST_ENTRY(inline_basic),
        TEST_ENTRY(inline_quotes),
        TEST_ENTRY(binary_safe),
        TEST_ENTRY(pipeline_every_split_point),
        TEST_ENTRY(empty_commands_skipped),
        TEST_ENTRY(protocol_errors_exact),
        TEST_ENTRY(too_big_lines),
        TEST_ENTRY(errors_are_sticky),
        TEST_ENTRY(unauthenticated_limits),
        TEST_ENTRY(limits_configurable),
        TEST_ENTRY(huge_bulk_header_allocates_nothing),
        TEST_ENTRY(huge_array_header_allocates_nothing),
        TEST_ENTRY(memory_is_trimmed_between_commands),
        TEST_ENTRY(out_of_memory_is_sticky),
        TEST_ENTRY(differential_against_reference),
        TEST_ENTRY(writer_resp2),
        TEST_ENTRY(writer_resp3),
        TEST_ENTRY(writer_hard_cap_is_sticky),
        TEST_ENTRY(writer_consume_and_compact),
        TEST_ENTRY(writer_output_parses_back),
        TEST_ENTRY(strerror_names_every_status),
    };
    return test_run("test_resp", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
