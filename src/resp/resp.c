/* resp.c: the RESP request parser (a resumable state machine) and the reply
 * writer. See resp.h for the contract and docs/resp.md for the wording of
 * every error.
 *
 * Parser states, one command:
 *
 *   START ─'*'─► NUM(count) ─\r─► NUM_LF ─\n─► ARG ─'$'─► NUM(len) ─\r─► NUM_LF
 *     │                                         ▲                          │\n
 *     │                                         └── DATA_LF ◄─\r─ DATA_CR ◄─ DATA
 *     └─other─► INLINE (copy the line up to \n into the arena, then split it)
 *
 * Header lines are read one byte at a time and never buffered: the number is
 * accumulated as it arrives, with Redis's string2ll rules. Bulk data of a
 * command that arrives whole in one call is referenced in place; when a call
 * ends inside a multibulk command, what it has so far is copied into the
 * arena ("spill") and later bytes are appended there.
 *
 * Canaries: CANARY_RESP_OVERREAD compiles in a deliberate off-by-one read
 * past the end of the caller's buffer that the fuzzer must find
 * (scripts/fuzz-resp.sh). */
#include "resp/resp.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    RESP__START,
    RESP__NUM,
    RESP__NUM_LF,
    RESP__ARG,
    RESP__DATA,
    RESP__DATA_CR,
    RESP__DATA_LF,
    RESP__INLINE,
};

enum { RESP__NUM_COUNT, RESP__NUM_LEN };

/* Where one argument is: an offset into the caller's buffer (borrowed) or
 * into the arena (owned). */
struct resp__span {
    size_t off;
    size_t len;
};

/* The caller's bytes for this call. */
struct resp__in {
    const char *buf;
    size_t len;
    size_t pos;
};

#define RESP__LONG_STR_SIZE 21 /* string2ll refuses strings this long */

static const char resp__empty[1] = "";

const char *resp_strerror(int status) {
    switch (status) {
    case RESP_OK: return "ok";
    case RESP_NEED_MORE: return "need more bytes";
    case RESP_PROTOCOL_ERROR: return "protocol error";
    case RESP_ENOMEM: return "out of memory";
    case RESP_ETOOBIG: return "output buffer limit reached";
    case RESP_EINVAL: return "invalid argument";
    default: return "unknown status";
    }
}

void resp_limits_default(struct resp_limits *limits) {
    assert(limits != NULL);
    limits->args_max = RESP_ARGS_MAX_DEFAULT;
    limits->bulk_bytes_max = RESP_BULK_BYTES_MAX_DEFAULT;
    limits->inline_bytes_max = RESP_INLINE_BYTES_MAX_DEFAULT;
    limits->request_bytes_max = RESP_REQUEST_BYTES_MAX_DEFAULT;
    limits->unauth_args_max = RESP_UNAUTH_ARGS_MAX_DEFAULT;
    limits->unauth_bulk_bytes_max = RESP_UNAUTH_BULK_BYTES_MAX_DEFAULT;
}

static bool resp__limits_valid(const struct resp_limits *l) {
    if (l->args_max == 0 || l->args_max > RESP_ARGS_MAX_CEILING) return false;
    if (l->bulk_bytes_max == 0 || l->inline_bytes_max == 0) return false;
    if (l->request_bytes_max > SIZE_MAX / 4) return false;
    if (l->bulk_bytes_max >= l->request_bytes_max) return false;
    if (l->inline_bytes_max >= l->request_bytes_max) return false;
    if (l->unauth_args_max == 0 || l->unauth_args_max > l->args_max) return false;
    if (l->unauth_bulk_bytes_max > l->bulk_bytes_max) return false;
    return true;
}

/* ---- memory ---------------------------------------------------------- */

static void *resp__libc(void *ctx, void *ptr, size_t old_size, size_t new_size) {
    (void)ctx;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static void resp__alloc_set(struct resp_alloc *dst, const struct resp_alloc *src) {
    if (src != NULL && src->fn != NULL) {
        *dst = *src;
    } else {
        dst->fn = resp__libc;
        dst->ctx = NULL;
    }
}

/* Resizes ptr from `from` to `to` bytes (0: frees). */
static void *resp__resize(const struct resp_alloc *a, void *ptr, size_t from, size_t to) {
    if (ptr == NULL && to == 0) return NULL;
    return a->fn(a->ctx, ptr, from, to);
}

/* Next capacity: doubles from `floor`, at least `need`, and not past `hint`
 * (what the data being received is known to need) when that suffices. */
static size_t resp__grow_to(size_t cap, size_t need, size_t floor, size_t hint) {
    size_t next = cap < floor ? floor : cap;
    while (next < need)
        next = next > SIZE_MAX / 2 ? need : next * 2;
    if (hint >= need && next > hint) next = hint;
    return next;
}

/* Makes room for `extra` more arena bytes; `hint` bounds the growth. */
static int resp__arena_reserve(struct resp_parser *p, size_t extra, size_t hint) {
    assert(p->arena_len <= p->arena_cap);
    size_t need = p->arena_len + extra;
    if (need <= p->arena_cap) return RESP_OK;
    size_t cap = resp__grow_to(p->arena_cap, need, 256, hint);
    char *arena = resp__resize(&p->alloc, p->arena, p->arena_cap, cap);
    if (arena == NULL) return RESP_ENOMEM;
    p->arena = arena;
    p->arena_cap = cap;
    return RESP_OK;
}

static int resp__arena_append(struct resp_parser *p, const char *src, size_t n, size_t hint) {
    if (n == 0) return RESP_OK;
    int rc = resp__arena_reserve(p, n, hint);
    if (rc != RESP_OK) return rc;
    memcpy(p->arena + p->arena_len, src, n);
    p->arena_len += n;
    return RESP_OK;
}

/* Makes room for `need` spans; `hint` is how many the command announced. */
static int resp__spans_reserve(struct resp_parser *p, uint64_t need, uint64_t hint) {
    if (need <= p->spans_cap) return RESP_OK;
    assert(need <= RESP_ARGS_MAX_CEILING);
    size_t cap = resp__grow_to(p->spans_cap, (size_t)need, 16, (size_t)hint);
    struct resp__span *spans =
        resp__resize(&p->alloc, p->spans, p->spans_cap * sizeof(*spans), cap * sizeof(*spans));
    if (spans == NULL) return RESP_ENOMEM;
    p->spans = spans;
    p->spans_cap = (uint32_t)cap;
    return RESP_OK;
}

static int resp__argv_reserve(struct resp_parser *p, uint32_t need) {
    if (need <= p->argv_cap) return RESP_OK;
    size_t cap = p->spans_cap > need ? p->spans_cap : need;
    struct resp_arg *argv =
        resp__resize(&p->alloc, p->argv, p->argv_cap * sizeof(*argv), cap * sizeof(*argv));
    if (argv == NULL) return RESP_ENOMEM;
    p->argv = argv;
    p->argv_cap = (uint32_t)cap;
    return RESP_OK;
}

/* Releases big buffers between commands, so an idle connection holds at
 * most RESP_KEEP_BYTES + RESP_KEEP_ARGS argument slots. */
static void resp__trim(struct resp_parser *p) {
    if (p->arena_cap > RESP_KEEP_BYTES) {
        resp__resize(&p->alloc, p->arena, p->arena_cap, 0);
        p->arena = NULL;
        p->arena_cap = 0;
    }
    if (p->spans_cap > RESP_KEEP_ARGS) {
        resp__resize(&p->alloc, p->spans, p->spans_cap * sizeof(*p->spans), 0);
        p->spans = NULL;
        p->spans_cap = 0;
    }
    if (p->argv_cap > RESP_KEEP_ARGS) {
        resp__resize(&p->alloc, p->argv, p->argv_cap * sizeof(*p->argv), 0);
        p->argv = NULL;
        p->argv_cap = 0;
    }
}

/* ---- parser: setup --------------------------------------------------- */

int resp_parser_init(struct resp_parser *p, const struct resp_limits *limits,
                     const struct resp_alloc *alloc) {
    assert(p != NULL);
    memset(p, 0, sizeof(*p));
    if (limits != NULL) {
        p->limits = *limits;
    } else {
        resp_limits_default(&p->limits);
    }
    resp__alloc_set(&p->alloc, alloc);
    p->state = RESP__START;
    if (!resp__limits_valid(&p->limits)) return RESP_EINVAL;
    return RESP_OK;
}

void resp_parser_free(struct resp_parser *p) {
    assert(p != NULL);
    resp__resize(&p->alloc, p->arena, p->arena_cap, 0);
    resp__resize(&p->alloc, p->spans, p->spans_cap * sizeof(*p->spans), 0);
    resp__resize(&p->alloc, p->argv, p->argv_cap * sizeof(*p->argv), 0);
    p->arena = NULL;
    p->spans = NULL;
    p->argv = NULL;
    p->arena_cap = p->arena_len = 0;
    p->spans_cap = p->argv_cap = 0;
}

void resp_parser_reset(struct resp_parser *p) {
    assert(p != NULL);
    p->state = RESP__START;
    p->status = RESP_OK;
    p->error[0] = '\0';
    p->argc = 0;
    p->arena_len = 0;
}

void resp_parser_set_auth_required(struct resp_parser *p, bool required) {
    assert(p != NULL);
    p->auth_required = required;
}

const char *resp_parser_error(const struct resp_parser *p) {
    assert(p != NULL);
    if (p->status == RESP_ENOMEM) return resp_strerror(RESP_ENOMEM);
    return p->error;
}

size_t resp_parser_memory(const struct resp_parser *p) {
    assert(p != NULL);
    return p->arena_cap + p->spans_cap * sizeof(struct resp__span) +
           p->argv_cap * sizeof(struct resp_arg);
}

/* ---- parser: errors -------------------------------------------------- */

static int resp__fail(struct resp_parser *p, const char *msg) {
    assert(strlen(msg) < sizeof(p->error));
    snprintf(p->error, sizeof(p->error), "%s", msg);
    p->status = RESP_PROTOCOL_ERROR;
    return RESP_PROTOCOL_ERROR;
}

/* Redis prints the offending byte with %c after replacing CR and LF by
 * spaces; a NUL would cut its message short, we print a space. */
static int resp__fail_expected_dollar(struct resp_parser *p, char got) {
    if (got == '\r' || got == '\n' || got == '\0') got = ' ';
    snprintf(p->error, sizeof(p->error), "Protocol error: expected '$', got '%c'", got);
    p->status = RESP_PROTOCOL_ERROR;
    return RESP_PROTOCOL_ERROR;
}

static int resp__oom(struct resp_parser *p) {
    p->status = RESP_ENOMEM;
    p->error[0] = '\0';
    return RESP_ENOMEM;
}

/* ---- parser: header numbers (string2ll, one byte at a time) ----------- */

static void resp__num_reset(struct resp_parser *p, uint8_t kind) {
    p->num_kind = kind;
    p->num_value = 0;
    p->num_len = 0;
    p->num_digits = 0;
    p->num_neg = false;
    p->num_zero = false;
    p->num_bad = false;
}

static void resp__num_feed(struct resp_parser *p, char c) {
    if (p->num_len == 0 && c == '-') {
        p->num_neg = true;
    } else if (c < '0' || c > '9' || p->num_zero) {
        p->num_bad = true; /* not a digit, or a digit after a leading 0 */
    } else if (p->num_digits == 0 && c == '0') {
        p->num_zero = true; /* only "0" itself may start with 0; "-0" may not */
        p->num_bad |= p->num_neg;
    } else if (!p->num_bad) {
        uint64_t d = (uint64_t)(c - '0');
        if (p->num_value > (UINT64_MAX - d) / 10) p->num_bad = true;
        p->num_value = p->num_value * 10 + d;
    }
    p->num_digits += c != '-' || p->num_len > 0;
    p->num_len++;
    if (p->num_len >= RESP__LONG_STR_SIZE) p->num_bad = true;
}

/* The header's value, or false where Redis's string2ll fails. */
static bool resp__num_value(const struct resp_parser *p, int64_t *value) {
    if (p->num_bad || p->num_digits == 0) return false;
    if (!p->num_neg && p->num_value > (uint64_t)INT64_MAX) return false;
    if (p->num_neg && p->num_value > (uint64_t)INT64_MAX + 1) return false;
    *value = p->num_neg ? (int64_t)(0 - p->num_value) : (int64_t)p->num_value;
    return true;
}

/* ---- parser: multibulk ----------------------------------------------- */

static uint64_t resp__args_max(const struct resp_parser *p) {
    return p->auth_required ? p->limits.unauth_args_max : p->limits.args_max;
}

/* The `*<count>\r\n` line is complete. */
static int resp__count_done(struct resp_parser *p) {
    int64_t count;
    bool ok = resp__num_value(p, &count);
    if (!ok || count > (int64_t)p->limits.args_max) {
        return resp__fail(p, "Protocol error: invalid multibulk length");
    }
    if (p->auth_required && count > (int64_t)p->limits.unauth_args_max) {
        return resp__fail(p, "Protocol error: unauthenticated multibulk length");
    }
    if (count <= 0) {
        p->state = RESP__START; /* an empty command: skipped, as Redis does */
        return RESP_NEED_MORE;
    }
    assert((uint64_t)count <= resp__args_max(p));
    p->args_total = (uint64_t)count;
    p->state = RESP__ARG;
    return RESP_NEED_MORE;
}

/* The `$<len>\r\n` line is complete; the data starts at in->pos. Every
 * limit is checked here, before a byte of the data is stored. */
static int resp__len_done(struct resp_parser *p, const struct resp__in *in) {
    int64_t len;
    bool ok = resp__num_value(p, &len);
    if (!ok || len < 0 || (uint64_t)len > p->limits.bulk_bytes_max) {
        return resp__fail(p, "Protocol error: invalid bulk length");
    }
    if (p->auth_required && (uint64_t)len > p->limits.unauth_bulk_bytes_max) {
        return resp__fail(p, "Protocol error: unauthenticated bulk length");
    }
    if (p->request_bytes + (uint64_t)len + 2 > p->limits.request_bytes_max) {
        return resp__fail(p, "Protocol error: too big request");
    }
    if (resp__spans_reserve(p, (uint64_t)p->argc + 1, p->args_total) != RESP_OK) {
        return resp__oom(p);
    }
    p->spans[p->argc].off = p->owned ? p->arena_len : in->pos;
    p->spans[p->argc].len = (size_t)len;
    p->bulk_len = (uint64_t)len;
    p->bulk_got = 0;
    p->state = RESP__DATA;
    return RESP_NEED_MORE;
}

static int resp__num_done(struct resp_parser *p, const struct resp__in *in) {
    if (p->num_kind == RESP__NUM_COUNT) return resp__count_done(p);
    return resp__len_done(p, in);
}

/* A header line's digits, up to its `\r`. */
static int resp__on_num(struct resp_parser *p, struct resp__in *in) {
    while (in->pos < in->len) {
        char c = in->buf[in->pos];
#ifdef CANARY_RESP_OVERREAD
        /* bug: peeks at the byte after `\r` even when `\r` ends the buffer */
        if (c == '\r' && in->buf[in->pos + 1] == '\n') {
            in->pos += 2;
            p->request_bytes += 2;
            return resp__num_done(p, in);
        }
#endif
        in->pos++;
        p->request_bytes++;
        if (c == '\r') {
            p->state = RESP__NUM_LF;
            return RESP_NEED_MORE;
        }
        if (p->num_len >= p->limits.inline_bytes_max) {
            return resp__fail(p, p->num_kind == RESP__NUM_COUNT
                                     ? "Protocol error: too big mbulk count string"
                                     : "Protocol error: too big bulk count string");
        }
        resp__num_feed(p, c);
    }
    return RESP_NEED_MORE;
}

/* Redis takes any byte after the `\r` as the `\n`; we insist on `\n`. */
static int resp__on_num_lf(struct resp_parser *p, struct resp__in *in) {
    char c = in->buf[in->pos];
    if (c != '\n') {
        return resp__fail(p, p->num_kind == RESP__NUM_COUNT
                                 ? "Protocol error: invalid multibulk length"
                                 : "Protocol error: invalid bulk length");
    }
    in->pos++;
    p->request_bytes++;
    return resp__num_done(p, in);
}

static int resp__on_arg(struct resp_parser *p, struct resp__in *in) {
    char c = in->buf[in->pos];
    if (c != '$') return resp__fail_expected_dollar(p, c);
    in->pos++;
    p->request_bytes++;
    resp__num_reset(p, RESP__NUM_LEN);
    p->state = RESP__NUM;
    return RESP_NEED_MORE;
}

static int resp__on_data(struct resp_parser *p, struct resp__in *in) {
    assert(p->bulk_got <= p->bulk_len);
    uint64_t want = p->bulk_len - p->bulk_got;
    size_t avail = in->len - in->pos;
    size_t n = want < avail ? (size_t)want : avail;
    if (p->owned) {
        size_t hint = p->arena_len + (size_t)want;
        if (resp__arena_append(p, in->buf + in->pos, n, hint) != RESP_OK) return resp__oom(p);
    }
    in->pos += n;
    p->bulk_got += n;
    p->request_bytes += n;
    if (p->bulk_got == p->bulk_len) p->state = RESP__DATA_CR;
    return RESP_NEED_MORE;
}

/* Redis skips the two bytes after the data unread; we insist on CRLF. */
static int resp__on_data_crlf(struct resp_parser *p, struct resp__in *in) {
    char c = in->buf[in->pos];
    char want = p->state == RESP__DATA_CR ? '\r' : '\n';
    if (c != want) return resp__fail(p, "Protocol error: expected CRLF after bulk data");
    in->pos++;
    p->request_bytes++;
    if (p->state == RESP__DATA_CR) {
        p->state = RESP__DATA_LF;
        return RESP_NEED_MORE;
    }
    p->argc++;
    if (p->argc < p->args_total) {
        p->state = RESP__ARG;
        return RESP_NEED_MORE;
    }
    assert(p->argc == p->args_total);
    p->state = RESP__START;
    return RESP_OK;
}

/* ---- parser: inline -------------------------------------------------- */

static bool resp__isspace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int resp__hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char resp__unescape(char c) {
    switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return c;
    }
}

/* Inside "double quotes": one escape or byte at s[*r], written at s[*w]. */
static void resp__dq_byte(char *s, size_t n, size_t *r, size_t *w) {
    size_t i = *r;
    if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' && resp__hex(s[i + 2]) >= 0 &&
        resp__hex(s[i + 3]) >= 0) {
        s[(*w)++] = (char)(resp__hex(s[i + 2]) * 16 + resp__hex(s[i + 3]));
        *r = i + 4;
    } else if (s[i] == '\\' && i + 1 < n) {
        s[(*w)++] = resp__unescape(s[i + 1]);
        *r = i + 2;
    } else {
        s[(*w)++] = s[i];
        *r = i + 1;
    }
}

/* Inside 'single quotes': only \' is an escape. */
static void resp__sq_byte(char *s, size_t n, size_t *r, size_t *w) {
    size_t i = *r;
    if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\'') {
        s[(*w)++] = '\'';
        *r = i + 2;
    } else {
        s[(*w)++] = s[i];
        *r = i + 1;
    }
}

/* One argument of an inline line s[0, n), read from *r and written unquoted
 * at *w <= *r (in place), with sdssplitargs's rules. Returns false for an
 * unterminated quote or a closing quote followed by a non-space. */
static bool resp__token(char *s, size_t n, size_t *r, size_t *w) {
    char quote = 0;
    while (*r < n) {
        char c = s[*r];
        if (quote == 0 && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
            (*r)++;
            return true;
        }
        if (quote == 0 && (c == '"' || c == '\'')) {
            quote = c;
            (*r)++;
        } else if (quote == 0) {
            s[(*w)++] = c;
            (*r)++;
        } else if (c == quote) {
            (*r)++;
            return *r == n || resp__isspace(s[*r]);
        } else if (quote == '"') {
            resp__dq_byte(s, n, r, w);
        } else {
            resp__sq_byte(s, n, r, w);
        }
        assert(*w <= *r);
    }
    return quote == 0;
}

/* Splits the line in arena[0, n) in place into spans. */
static int resp__split(struct resp_parser *p, size_t n) {
    size_t r = 0;
    size_t w = 0;
    for (;;) {
        while (r < n && resp__isspace(p->arena[r]))
            r++;
        if (r == n) return RESP_OK;
        size_t start = w;
        if (!resp__token(p->arena, n, &r, &w)) {
            return resp__fail(p, "Protocol error: unbalanced quotes in request");
        }
        if ((uint64_t)p->argc + 1 > resp__args_max(p)) {
            return resp__fail(p, p->auth_required
                                     ? "Protocol error: unauthenticated multibulk length"
                                     : "Protocol error: invalid multibulk length");
        }
        if (resp__spans_reserve(p, (uint64_t)p->argc + 1, n / 2 + 1) != RESP_OK) {
            return resp__oom(p);
        }
        p->spans[p->argc].off = start;
        p->spans[p->argc].len = w - start;
        p->argc++;
    }
}

/* The whole line (without its `\n`) is in the arena. */
static int resp__inline_done(struct resp_parser *p) {
    size_t n = p->arena_len;
    if (n > 0 && p->arena[n - 1] == '\r') n--;
    const char *nul = n > 0 ? memchr(p->arena, '\0', n) : NULL;
    if (nul != NULL) n = (size_t)(nul - p->arena); /* Redis splits a C string */
    int rc = resp__split(p, n);
    if (rc != RESP_OK) return rc;
    p->state = RESP__START;
    return p->argc == 0 ? RESP_NEED_MORE : RESP_OK; /* a blank line is skipped */
}

/* Copies the line into the arena up to its `\n`; a line is at most
 * inline_bytes_max bytes (its `\r` included, its `\n` not). */
static int resp__on_inline(struct resp_parser *p, struct resp__in *in) {
    size_t max = p->limits.inline_bytes_max;
    assert(p->arena_len <= max);
    size_t avail = in->len - in->pos;
    size_t window = max - p->arena_len + 1;
    if (window > avail) window = avail;
    const char *start = in->buf + in->pos;
    const char *nl = memchr(start, '\n', window);
    size_t take = nl != NULL ? (size_t)(nl - start) : window;
    if (nl == NULL && p->arena_len + take > max) {
        return resp__fail(p, "Protocol error: too big inline request");
    }
    if (resp__arena_append(p, start, take, max) != RESP_OK) return resp__oom(p);
    in->pos += take;
    if (nl == NULL) return RESP_NEED_MORE;
    in->pos++; /* the `\n` */
    return resp__inline_done(p);
}

/* ---- parser: driver -------------------------------------------------- */

/* The first byte of a command decides its form. */
static int resp__on_start(struct resp_parser *p, struct resp__in *in) {
    resp__trim(p);
    p->argc = 0;
    p->arena_len = 0;
    p->request_bytes = 0;
    p->is_inline = in->buf[in->pos] != '*';
    if (p->is_inline) {
        p->owned = true; /* inline arguments are unquoted into the arena */
        p->state = RESP__INLINE;
        return RESP_NEED_MORE;
    }
    p->owned = false; /* borrowed from this call's buffer until it ends */
    in->pos++;
    p->request_bytes = 1;
    resp__num_reset(p, RESP__NUM_COUNT);
    p->state = RESP__NUM;
    return RESP_NEED_MORE;
}

static int resp__step(struct resp_parser *p, struct resp__in *in) {
    assert(in->pos < in->len);
    switch (p->state) {
    case RESP__START: return resp__on_start(p, in);
    case RESP__NUM: return resp__on_num(p, in);
    case RESP__NUM_LF: return resp__on_num_lf(p, in);
    case RESP__ARG: return resp__on_arg(p, in);
    case RESP__DATA: return resp__on_data(p, in);
    case RESP__DATA_CR: return resp__on_data_crlf(p, in);
    case RESP__DATA_LF: return resp__on_data_crlf(p, in);
    case RESP__INLINE: return resp__on_inline(p, in);
    default: assert(0 && "bad parser state"); return resp__fail(p, "Protocol error");
    }
}

/* The call ends inside a multibulk command whose bytes are still borrowed:
 * copy what the command has so far (finished arguments, and the current
 * one's data) into the arena, which then owns the command. */
static int resp__spill(struct resp_parser *p, const struct resp__in *in) {
    bool current = p->state == RESP__DATA || p->state == RESP__DATA_CR;
    current |= p->state == RESP__DATA_LF;
    uint32_t n = p->argc + (current ? 1 : 0);
    size_t total = current ? (size_t)p->bulk_got : 0;
    for (uint32_t i = 0; i < p->argc; i++)
        total += p->spans[i].len;
    size_t hint = total + (current ? (size_t)(p->bulk_len - p->bulk_got) : 0);
    assert(p->arena_len == 0);
    if (resp__arena_reserve(p, total, hint) != RESP_OK) return resp__oom(p);
    for (uint32_t i = 0; i < n; i++) {
        size_t len = i < p->argc ? p->spans[i].len : (size_t)p->bulk_got;
        if (len > 0) memcpy(p->arena + p->arena_len, in->buf + p->spans[i].off, len);
        p->spans[i].off = p->arena_len;
        p->arena_len += len;
    }
    assert(p->arena_len == total);
    p->owned = true;
    return RESP_NEED_MORE;
}

static int resp__emit(struct resp_parser *p, const struct resp__in *in, struct resp_cmd *cmd) {
    assert(p->argc > 0);
    if (resp__argv_reserve(p, p->argc) != RESP_OK) return resp__oom(p);
    const char *base = p->owned ? p->arena : in->buf;
    for (uint32_t i = 0; i < p->argc; i++) {
        p->argv[i].data = base != NULL ? base + p->spans[i].off : resp__empty;
        p->argv[i].len = p->spans[i].len;
    }
    cmd->argc = p->argc;
    cmd->argv = p->argv;
    cmd->is_inline = p->is_inline;
    return RESP_OK;
}

int resp_parse(struct resp_parser *p, const void *buf, size_t len, size_t *consumed,
               struct resp_cmd *cmd) {
    assert(p != NULL && consumed != NULL && cmd != NULL);
    assert(buf != NULL || len == 0);
    *consumed = 0;
    if (p->status != RESP_OK) return p->status;
    /* between calls a command in progress is owned, never borrowed */
    assert(p->owned || p->state == RESP__START);
    struct resp__in in = {.buf = buf, .len = len, .pos = 0};
    int rc = RESP_NEED_MORE;
    while (rc == RESP_NEED_MORE && in.pos < in.len)
        rc = resp__step(p, &in);
    if (rc == RESP_NEED_MORE && !p->owned && p->state != RESP__START) rc = resp__spill(p, &in);
    if (rc == RESP_OK) rc = resp__emit(p, &in, cmd);
    assert(in.pos <= len);
    assert(rc != RESP_NEED_MORE || in.pos == len);
    *consumed = in.pos;
    return rc;
}

/* ---- writer ---------------------------------------------------------- */

void resp_out_init(struct resp_out *out, uint8_t proto, size_t bytes_max,
                   const struct resp_alloc *alloc) {
    assert(out != NULL);
    assert(proto == 2 || proto == 3);
    memset(out, 0, sizeof(*out));
    out->proto = proto;
    out->bytes_max = bytes_max;
    resp__alloc_set(&out->alloc, alloc);
}

void resp_out_free(struct resp_out *out) {
    assert(out != NULL);
    resp__resize(&out->alloc, out->data, out->cap, 0);
    out->data = NULL;
    out->cap = out->len = out->head = 0;
}

uint8_t resp_out_proto(const struct resp_out *out) { return out->proto; }

void resp_out_set_proto(struct resp_out *out, uint8_t proto) {
    assert(proto == 2 || proto == 3);
    out->proto = proto;
}

size_t resp_out_len(const struct resp_out *out) {
    assert(out->head <= out->len);
    return out->len - out->head;
}

const char *resp_out_data(const struct resp_out *out) {
    return out->data != NULL ? out->data + out->head : resp__empty;
}

int resp_out_error(const struct resp_out *out) {
    return out->error;
}

void resp_out_consume(struct resp_out *out, size_t n) {
    assert(n <= resp_out_len(out));
    out->head += n;
    if (out->head < out->len) return;
    out->head = out->len = 0;
    if (out->cap > RESP_KEEP_BYTES) resp_out_free(out); /* after a big reply */
}

/* a + b, saturated: an impossible size fails the bytes_max check. */
static size_t resp__add(size_t a, size_t b) {
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Room for n more bytes at the end, or NULL (and the sticky error). */
static char *resp__out_room(struct resp_out *out, size_t n) {
    if (out->error != 0) return NULL;
    size_t pending = out->len - out->head;
    if (n > out->bytes_max - pending) {
        out->error = RESP_ETOOBIG;
        return NULL;
    }
    if (out->head > 0 && out->head >= pending && out->len + n > out->cap) {
        memmove(out->data, out->data + out->head, pending); /* half is dead */
        out->head = 0;
        out->len = pending;
    }
    if (out->len + n > out->cap) {
        size_t cap = resp__grow_to(out->cap, out->len + n, 256, SIZE_MAX);
        char *data = resp__resize(&out->alloc, out->data, out->cap, cap);
        if (data == NULL) {
            out->error = RESP_ENOMEM;
            return NULL;
        }
        out->data = data;
        out->cap = cap;
    }
    char *at = out->data + out->len;
    out->len += n;
    return at;
}

/* Decimal digits of v into buf (at least 20 bytes, no NUL); returns length. */
static size_t resp__u64(char *buf, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* `<prefix><value>\r\n` as one piece. */
static int resp__line_num(struct resp_out *out, char prefix, bool neg, uint64_t magnitude) {
    char line[24];
    size_t n = 0;
    line[n++] = prefix;
    if (neg) line[n++] = '-';
    n += resp__u64(line + n, magnitude);
    char *at = resp__out_room(out, n + 2);
    if (at == NULL) return out->error;
    memcpy(at, line, n);
    memcpy(at + n, "\r\n", 2);
    return RESP_OK;
}

static int resp__put(struct resp_out *out, const void *data, size_t len) {
    char *at = resp__out_room(out, len);
    if (at == NULL) return out->error;
    if (len > 0) memcpy(at, data, len);
    return RESP_OK;
}

/* `<prefix><s with CR/LF as spaces>\r\n`. */
static int resp__line_text(struct resp_out *out, char prefix, const char *s, size_t len) {
    char *at = resp__out_room(out, resp__add(len, 3));
    if (at == NULL) return out->error;
    at[0] = prefix;
    for (size_t i = 0; i < len; i++)
        at[1 + i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    memcpy(at + 1 + len, "\r\n", 2);
    return RESP_OK;
}

int resp_write_simple(struct resp_out *out, const char *s, size_t len) {
    assert(s != NULL || len == 0);
    return resp__line_text(out, '+', s, len);
}

int resp_write_error(struct resp_out *out, const char *s, size_t len) {
    assert(s != NULL || len == 0);
    return resp__line_text(out, '-', s, len);
}

int resp_write_errorf(struct resp_out *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *at = resp__out_room(out, (size_t)n + 3);
    if (at == NULL) return out->error;
    va_start(ap, fmt);
    vsnprintf(at + 1, (size_t)n + 1, fmt, ap); /* its NUL lands on at[n+1] */
    va_end(ap);
    at[0] = '-';
    for (int i = 1; i <= n; i++) {
        if (at[i] == '\r' || at[i] == '\n') at[i] = ' ';
    }
    memcpy(at + 1 + n, "\r\n", 2);
    return RESP_OK;
}

int resp_write_int(struct resp_out *out, int64_t value) {
    bool neg = value < 0;
    uint64_t magnitude = neg ? 0 - (uint64_t)value : (uint64_t)value;
    return resp__line_num(out, ':', neg, magnitude);
}

int resp_write_bulk(struct resp_out *out, const void *data, size_t len) {
    assert(data != NULL || len == 0);
    char head[24];
    head[0] = '$';
    size_t h = 1 + resp__u64(head + 1, len);
    head[h++] = '\r';
    head[h++] = '\n';
    char *at = resp__out_room(out, resp__add(len, h + 2));
    if (at == NULL) return out->error;
    memcpy(at, head, h);
    if (len > 0) memcpy(at + h, data, len);
    memcpy(at + h + len, "\r\n", 2);
    return RESP_OK;
}

int resp_write_null(struct resp_out *out) {
    return out->proto == 2 ? resp__put(out, "$-1\r\n", 5) : resp__put(out, "_\r\n", 3);
}

int resp_write_null_array(struct resp_out *out) {
    return out->proto == 2 ? resp__put(out, "*-1\r\n", 5) : resp__put(out, "_\r\n", 3);
}

int resp_write_array(struct resp_out *out, uint64_t count) {
    return resp__line_num(out, '*', false, count);
}

int resp_write_map(struct resp_out *out, uint64_t pairs) {
    if (out->proto == 3) return resp__line_num(out, '%', false, pairs);
    assert(pairs <= UINT64_MAX / 2);
    return resp__line_num(out, '*', false, pairs * 2);
}

int resp_write_set(struct resp_out *out, uint64_t count) {
    return resp__line_num(out, out->proto == 3 ? '~' : '*', false, count);
}

int resp_write_push(struct resp_out *out, uint64_t count) {
    return resp__line_num(out, out->proto == 3 ? '>' : '*', false, count);
}

/* Redis 7.0's text of a double: explicit inf/-inf (libc spellings vary),
 * "nan" for every NaN (glibc may say "-nan"), else "%.17g". */
static size_t resp__double_text(char *buf, size_t cap, double value) {
    int n;
    if (isnan(value)) {
        n = snprintf(buf, cap, "nan");
    } else if (isinf(value)) {
        n = snprintf(buf, cap, "%s", value > 0 ? "inf" : "-inf");
    } else {
        n = snprintf(buf, cap, "%.17g", value);
    }
    assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

int resp_write_double(struct resp_out *out, double value) {
    char text[64];
    size_t n = resp__double_text(text, sizeof(text), value);
    if (out->proto == 2) return resp_write_bulk(out, text, n);
    return resp__line_text(out, ',', text, n);
}

int resp_write_bool(struct resp_out *out, bool value) {
    if (out->proto == 2) return resp__put(out, value ? ":1\r\n" : ":0\r\n", 4);
    return resp__put(out, value ? "#t\r\n" : "#f\r\n", 4);
}

int resp_write_verbatim(struct resp_out *out, const char *fmt, const void *data, size_t len) {
    assert(fmt != NULL && strlen(fmt) == 3);
    assert(data != NULL || len == 0);
    if (out->proto == 2) return resp_write_bulk(out, data, len);
    char head[32];
    head[0] = '=';
    size_t h = 1 + resp__u64(head + 1, len + 4);
    memcpy(head + h, "\r\n", 2);
    memcpy(head + h + 2, fmt, 3);
    head[h + 5] = ':';
    h += 6;
    char *at = resp__out_room(out, resp__add(len, h + 2));
    if (at == NULL) return out->error;
    memcpy(at, head, h);
    if (len > 0) memcpy(at + h, data, len);
    memcpy(at + h + len, "\r\n", 2);
    return RESP_OK;
}

int resp_write_bignum(struct resp_out *out, const char *digits, size_t len) {
    assert(digits != NULL && len > 0);
    if (out->proto == 2) return resp_write_bulk(out, digits, len);
    return resp__line_text(out, '(', digits, len);
}

int resp_write_raw(struct resp_out *out, const void *data, size_t len) {
    assert(data != NULL || len == 0);
    return resp__put(out, data, len);
}
