/* resp.h: the Redis protocol (RESP2/RESP3) request parser and reply writer.
 * Pure: no I/O, no clock, no globals; memory comes from an allocator the
 * caller may supply. See docs/resp.md.
 *
 * Parser. A connection owns one `struct resp_parser`. It hands over bytes as
 * they arrive; the parser keeps its state between calls (nginx's style), so
 * a request may be split anywhere:
 *
 *     size_t off = 0;
 *     while (off < len) {
 *         size_t used;
 *         struct resp_cmd cmd;
 *         int rc = resp_parse(&p, buf + off, len - off, &used, &cmd);
 *         off += used;
 *         if (rc == RESP_OK) run(&cmd);          // before the next resp_parse
 *         else if (rc == RESP_NEED_MORE) break;  // off == len: read more
 *         else { reply "-ERR <resp_parser_error()>" and close; break; }
 *     }
 *
 * Two request forms, told apart by the first byte as Redis does:
 *   multibulk  `*<argc>\r\n` then argc times `$<len>\r\n<len bytes>\r\n`
 *   inline     any other first byte: one line up to `\n` (a `\r` before it
 *              is dropped), split into arguments with Redis's quoting rules
 *              (sdssplitargs): "double quotes" with \n \r \t \b \a \xHH and
 *              \<c> escapes, 'single quotes' with \' only.
 * An empty command (`*0`, a negative count, a blank line) is skipped, as
 * Redis skips it: resp_parse() never returns argc == 0.
 *
 * Ownership of a returned command. cmd->argv and the bytes it points to are
 * valid until the next call of any resp_parser_* function or resp_parse() on
 * this parser, and only while buf[0, *consumed) of the call that returned it
 * is left unchanged: an argument points either into that `buf` (a multibulk
 * command that arrived whole in one call: no copy) or into memory the parser
 * owns (a command split over calls, and every inline command). Arguments are
 * binary-safe (NUL, CR, LF allowed) and are NOT NUL-terminated.
 *
 * Bytes the parser consumed are never needed again: on RESP_NEED_MORE every
 * byte was consumed (*consumed == len) and what a partial command needs was
 * copied, so the caller may reuse its whole buffer.
 *
 * Limits (struct resp_limits) are checked as each length arrives, before
 * anything is allocated: a header such as `*1048576` or `$1099511627776`
 * costs nothing until the bytes it announces arrive; memory then grows with
 * the bytes received, never with the bytes announced.
 *
 * Writer. `struct resp_out` is a growable output buffer with a hard cap; the
 * resp_write_* functions append one reply element each, shaped for the
 * buffer's protocol version (2 or 3) as Redis shapes it (a map is an array of
 * 2N in RESP2, a null is `$-1` in RESP2 and `_` in RESP3, ...). Errors are
 * sticky: after one write fails, later writes do nothing and return the same
 * error, so a caller may check once, after a whole reply.
 */
#ifndef SHOAL_RESP_H
#define SHOAL_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes: named, 0 is success; resp_strerror() names them. */
enum resp_status {
    RESP_OK = 0,              /* a whole command is ready (parser); done (writer) */
    RESP_NEED_MORE = 1,       /* parser: every byte consumed, no command yet */
    RESP_PROTOCOL_ERROR = -1, /* parser: bad input; resp_parser_error() says what */
    RESP_ENOMEM = -2,         /* allocation failed */
    RESP_ETOOBIG = -3,        /* writer: output would exceed bytes_max */
    RESP_EINVAL = -4,         /* bad argument (inconsistent limits) */
};
const char *resp_strerror(int status);

/* Defaults of struct resp_limits, with the Redis setting each one mirrors. */
#define RESP_ARGS_MAX_DEFAULT (1024u * 1024u)       /* Redis <= 6.0 fixed limit */
#define RESP_BULK_BYTES_MAX_DEFAULT (512ull << 20)  /* proto-max-bulk-len 512mb */
#define RESP_INLINE_BYTES_MAX_DEFAULT (64u << 10)   /* PROTO_INLINE_MAX_SIZE */
#define RESP_REQUEST_BYTES_MAX_DEFAULT (1ull << 30) /* client-query-buffer-limit 1gb */
#define RESP_UNAUTH_ARGS_MAX_DEFAULT 10u            /* Redis 6.2+, before AUTH */
#define RESP_UNAUTH_BULK_BYTES_MAX_DEFAULT 16384u   /* Redis 6.2+, before AUTH */
#define RESP_ARGS_MAX_CEILING 2147483647u           /* INT_MAX, Redis 7's ceiling */
/* An idle parser or an emptied writer keeps at most this much buffer. */
#define RESP_KEEP_BYTES (64u << 10)
#define RESP_KEEP_ARGS 1024u

_Static_assert(RESP_ARGS_MAX_DEFAULT <= RESP_ARGS_MAX_CEILING, "args limit");
_Static_assert(RESP_BULK_BYTES_MAX_DEFAULT + 2 < RESP_REQUEST_BYTES_MAX_DEFAULT, "bulk limit");
_Static_assert(RESP_INLINE_BYTES_MAX_DEFAULT < RESP_REQUEST_BYTES_MAX_DEFAULT, "inline limit");
_Static_assert(RESP_UNAUTH_ARGS_MAX_DEFAULT <= RESP_ARGS_MAX_DEFAULT, "unauth args");
_Static_assert(RESP_UNAUTH_BULK_BYTES_MAX_DEFAULT <= RESP_BULK_BYTES_MAX_DEFAULT, "unauth bulk");

/* Every input bound of the parser. Exceeding one is a protocol error with
 * Redis's wording (see docs/resp.md for the table). */
struct resp_limits {
    uint32_t args_max;              /* arguments per command, 1..RESP_ARGS_MAX_CEILING */
    uint64_t bulk_bytes_max;        /* bytes of one bulk argument */
    uint32_t inline_bytes_max;      /* an inline line, and a `*`/`$` header line */
    uint64_t request_bytes_max;     /* protocol bytes of one multibulk command */
    uint32_t unauth_args_max;       /* args_max while authentication is required */
    uint64_t unauth_bulk_bytes_max; /* bulk_bytes_max while it is required */
};
void resp_limits_default(struct resp_limits *limits);

/* Allocator hook: resize `ptr` (NULL: allocate) from old_size to new_size
 * bytes; new_size 0 frees and returns NULL. Returns NULL on failure, leaving
 * `ptr` intact. NULL for the whole struct means libc realloc/free. */
struct resp_alloc {
    void *(*fn)(void *ctx, void *ptr, size_t old_size, size_t new_size);
    void *ctx;
};

/* One argument: `len` bytes at `data`, not NUL-terminated. */
struct resp_arg {
    const char *data;
    size_t len;
};

struct resp_cmd {
    uint32_t argc;               /* >= 1 */
    const struct resp_arg *argv; /* argc entries; lifetime: see the top of this file */
    bool is_inline;              /* came as an inline line (Redis refuses those from a master) */
};

struct resp__span; /* private */

/* The parser. Fields are private: use the functions below. Embed it in the
 * connection; it holds no pointer to itself, so it may be moved while no
 * command returned by it is in use. */
struct resp_parser {
    struct resp_limits limits;
    struct resp_alloc alloc;
    bool auth_required;
    uint8_t state;
    uint8_t num_kind;
    bool owned; /* the current command's bytes live in `arena` */
    bool is_inline;
    int status; /* sticky: 0, RESP_PROTOCOL_ERROR or RESP_ENOMEM */
    /* the number being read on a `*` or `$` header line (string2ll rules) */
    uint64_t num_value;
    uint32_t num_len;
    uint32_t num_digits;
    bool num_neg;
    bool num_zero;
    bool num_bad;
    /* the multibulk command being read */
    uint64_t args_total;
    uint64_t bulk_len;
    uint64_t bulk_got;
    uint64_t request_bytes;
    uint32_t argc;
    uint32_t spans_cap;
    struct resp__span *spans;
    uint32_t argv_cap;
    struct resp_arg *argv;
    char *arena;
    size_t arena_len;
    size_t arena_cap;
    char error[96];
};

/* Prepares `p`. `limits` NULL means resp_limits_default(); `alloc` NULL
 * means libc. Nothing is allocated yet. Returns RESP_OK, or RESP_EINVAL for
 * inconsistent limits (a zero limit, args_max over the ceiling, a bulk or an
 * inline line that could not fit in request_bytes_max, an unauth limit over
 * its authenticated counterpart). */
int resp_parser_init(struct resp_parser *p, const struct resp_limits *limits,
                     const struct resp_alloc *alloc) __attribute__((warn_unused_result));
/* Frees what `p` holds; `p` may be initialized again. */
void resp_parser_free(struct resp_parser *p);
/* Forgets any partial command and a sticky error; keeps limits and memory. */
void resp_parser_reset(struct resp_parser *p);
/* While set, the unauth_* limits apply (Redis's behaviour when a password is
 * required and the client has not authenticated). Default: not required. */
void resp_parser_set_auth_required(struct resp_parser *p, bool required);

/* Parses at most one command from buf[0, len). Sets *consumed to the bytes
 * taken (<= len) and returns:
 *   RESP_OK              a command is in *cmd; bytes after it are untouched;
 *   RESP_NEED_MORE       *consumed == len; call again with more bytes;
 *   RESP_PROTOCOL_ERROR  bad input: resp_parser_error() has Redis's message;
 *   RESP_ENOMEM          an allocation failed.
 * The two errors are sticky: later calls consume nothing and return the same
 * error until resp_parser_reset(); the caller replies and closes. `buf` may
 * be NULL when len is 0. */
int resp_parse(struct resp_parser *p, const void *buf, size_t len, size_t *consumed,
               struct resp_cmd *cmd) __attribute__((warn_unused_result));
/* The message for the sticky error, without the "ERR " code: reply with
 * `-ERR <message>\r\n` as Redis does. "" while there is no error. */
const char *resp_parser_error(const struct resp_parser *p);
/* Bytes of heap the parser holds now (buffers, argument arrays). */
size_t resp_parser_memory(const struct resp_parser *p);

/* The writer. Fields are private. */
struct resp_out {
    char *data;
    size_t head; /* data[head, len) is pending output */
    size_t len;
    size_t cap;
    size_t bytes_max; /* hard cap on pending bytes */
    uint8_t proto;    /* 2 or 3 */
    int error;        /* sticky: 0, RESP_ETOOBIG or RESP_ENOMEM */
    struct resp_alloc alloc;
};

/* Prepares an empty buffer for protocol `proto` (2 or 3) that refuses to hold
 * more than `bytes_max` pending bytes. `alloc` NULL means libc. */
void resp_out_init(struct resp_out *out, uint8_t proto, size_t bytes_max,
                   const struct resp_alloc *alloc);
void resp_out_free(struct resp_out *out);
/* Switches the protocol for the following writes (HELLO 3). */
void resp_out_set_proto(struct resp_out *out, uint8_t proto);
/* The protocol the buffer writes (2 or 3). */
uint8_t resp_out_proto(const struct resp_out *out);
/* The pending bytes: resp_out_len() of them at resp_out_data(). The pointer
 * is valid until the next resp_out_* or resp_write_* call. The caller
 * compares resp_out_len() with its client output-buffer limit. */
size_t resp_out_len(const struct resp_out *out);
const char *resp_out_data(const struct resp_out *out);
/* The first n <= resp_out_len() pending bytes were sent: drop them. */
void resp_out_consume(struct resp_out *out, size_t n);
/* The sticky error (0 if none). A writer in error holds a truncated reply:
 * the connection must be closed. */
int resp_out_error(const struct resp_out *out);

/* Each appends one element whole, or nothing, and returns RESP_OK or the
 * sticky error. Strings for simple strings and errors have CR and LF
 * replaced by spaces (as Redis does), so the reply stays well-formed. */
int resp_write_simple(struct resp_out *out, const char *s, size_t len); /* +OK */
/* `s` starts with the error code: "ERR syntax error", "MOVED 3999 h:p". */
int resp_write_error(struct resp_out *out, const char *s, size_t len);
int resp_write_errorf(struct resp_out *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int resp_write_int(struct resp_out *out, int64_t value);                 /* :42 */
int resp_write_bulk(struct resp_out *out, const void *data, size_t len); /* $3 foo */
int resp_write_null(struct resp_out *out);                               /* RESP2 $-1, RESP3 _ */
int resp_write_null_array(struct resp_out *out);                         /* RESP2 *-1, RESP3 _ */
int resp_write_array(struct resp_out *out, uint64_t count);              /* *N */
int resp_write_map(struct resp_out *out, uint64_t pairs);                /* RESP3 %N, RESP2 *2N */
int resp_write_set(struct resp_out *out, uint64_t count);                /* RESP3 ~N, RESP2 *N */
int resp_write_push(struct resp_out *out, uint64_t count);               /* RESP3 >N, RESP2 *N */
/* RESP3 `,<d>`; RESP2 a bulk string. Formatted as Redis 7.0's
 * addReplyDouble: "%.17g", with "inf", "-inf" and "nan" spelled out. */
int resp_write_double(struct resp_out *out, double value);
int resp_write_bool(struct resp_out *out, bool value); /* RESP3 #t/#f, RESP2 :1/:0 */
/* RESP3 `=<len+4>\r\n<fmt>:<data>`; RESP2 a bulk of data. fmt: 3 chars. */
int resp_write_verbatim(struct resp_out *out, const char *fmt, const void *data, size_t len);
/* RESP3 `(<digits>`; RESP2 a bulk string. digits: [-]0-9+. */
int resp_write_bignum(struct resp_out *out, const char *digits, size_t len);
/* Bytes already in RESP form (a proxied reply), appended as they are. */
int resp_write_raw(struct resp_out *out, const void *data, size_t len);

#endif
