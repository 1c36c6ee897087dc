/* fuzz_resp.c: libFuzzer target for the RESP parser (src/resp/resp.c).
 *
 * Input: byte 0 picks the chunking (bits 0-1: whole, byte by byte, random
 * 1..8, random 1..64), the limits (bit 2: small ones) and whether
 * authentication is required (bit 3); byte 1 seeds the chunk sizes; the rest
 * is the byte stream of a connection. Each chunk is handed over as a fresh
 * heap copy of exactly its size, so ASan sees any read past its end.
 *
 * Invariants checked (abort() on violation):
 *   - *consumed <= len; RESP_NEED_MORE consumes everything; errors are
 *     sticky and consume nothing; a command has 1..args_max arguments, each
 *     within its limit;
 *   - the parser's memory is linear in the bytes fed, never in the lengths
 *     announced (and -malloc_limit_mb catches any single huge allocation);
 *   - the transcript (commands, then the error) does not depend on the
 *     chunking: it equals the transcript of the stream fed whole;
 *   - each command, re-serialized by the writer as a multibulk request,
 *     re-parses in one call to the same arguments.
 *
 * Build: clang-14 -fsanitize=fuzzer,address,undefined (scripts/fuzz-resp.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp/resp.h"

static void fuzz_check(bool ok, const char *what, int line) {
    if (ok) return;
    fprintf(stderr, "fuzz_resp: invariant failed: %s (line %d)\n", what, line);
    abort();
}

#define FUZZ_ASSERT(cond) fuzz_check((cond), #cond, __LINE__)

struct digest {
    uint64_t hash; /* FNV-1a over the transcript */
    uint64_t commands;
    int status; /* the last status */
};

static void digest_bytes(struct digest *d, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        d->hash ^= p[i];
        d->hash *= 0x100000001b3ull;
    }
}

static void digest_u64(struct digest *d, uint64_t v) {
    digest_bytes(d, &v, sizeof(v));
}

static void fuzz_limits(struct resp_limits *l, bool small) {
    resp_limits_default(l);
    if (!small) return;
    l->args_max = 8;
    l->bulk_bytes_max = 64;
    l->inline_bytes_max = 48;
    l->request_bytes_max = 256;
    l->unauth_args_max = 3;
    l->unauth_bulk_bytes_max = 16;
}

/* The writer's multibulk form of cmd parses back to the same arguments. */
static void check_round_trip(const struct resp_cmd *cmd) {
    struct resp_out out;
    resp_out_init(&out, 2, 1 << 20, NULL);
    FUZZ_ASSERT(resp_write_array(&out, cmd->argc) == RESP_OK);
    for (uint32_t i = 0; i < cmd->argc; i++) {
        FUZZ_ASSERT(resp_write_bulk(&out, cmd->argv[i].data, cmd->argv[i].len) == RESP_OK);
    }
    struct resp_parser p;
    FUZZ_ASSERT(resp_parser_init(&p, NULL, NULL) == RESP_OK);
    size_t used = 0;
    struct resp_cmd again;
    int rc = resp_parse(&p, resp_out_data(&out), resp_out_len(&out), &used, &again);
    FUZZ_ASSERT(rc == RESP_OK);
    FUZZ_ASSERT(used == resp_out_len(&out));
    FUZZ_ASSERT(again.argc == cmd->argc && !again.is_inline);
    for (uint32_t i = 0; i < cmd->argc; i++) {
        FUZZ_ASSERT(again.argv[i].len == cmd->argv[i].len);
        FUZZ_ASSERT(cmd->argv[i].len == 0 ||
                    memcmp(again.argv[i].data, cmd->argv[i].data, cmd->argv[i].len) == 0);
    }
    resp_parser_free(&p);
    resp_out_free(&out);
}

static void check_command(const struct resp_limits *l, bool auth, const struct resp_cmd *cmd,
                          struct digest *d) {
    FUZZ_ASSERT(cmd->argc >= 1);
    FUZZ_ASSERT(cmd->argc <= (auth ? l->unauth_args_max : l->args_max));
    uint64_t bulk_max = auth ? l->unauth_bulk_bytes_max : l->bulk_bytes_max;
    digest_u64(d, cmd->argc);
    for (uint32_t i = 0; i < cmd->argc; i++) {
        FUZZ_ASSERT(cmd->argv[i].data != NULL);
        FUZZ_ASSERT(cmd->is_inline ? cmd->argv[i].len <= l->inline_bytes_max
                                   : cmd->argv[i].len <= bulk_max);
        digest_u64(d, cmd->argv[i].len);
        digest_bytes(d, cmd->argv[i].data, cmd->argv[i].len);
    }
    d->commands++;
}

/* Feeds one chunk; returns false once the parser is in error. */
static bool feed(struct resp_parser *p, const struct resp_limits *l, bool auth,
                 const unsigned char *chunk, size_t n, bool round_trip, struct digest *d) {
    size_t off = 0;
    while (off < n) {
        size_t used = SIZE_MAX;
        struct resp_cmd cmd;
        int rc = resp_parse(p, chunk + off, n - off, &used, &cmd);
        FUZZ_ASSERT(used <= n - off);
        off += used;
        d->status = rc;
        if (rc == RESP_NEED_MORE) {
            FUZZ_ASSERT(off == n);
            return true;
        }
        if (rc != RESP_OK) {
            FUZZ_ASSERT(rc == RESP_PROTOCOL_ERROR);
            const char *msg = resp_parser_error(p);
            FUZZ_ASSERT(strncmp(msg, "Protocol error: ", 16) == 0);
            digest_bytes(d, msg, strlen(msg));
            size_t again = 1;
            FUZZ_ASSERT(resp_parse(p, chunk + off, n - off, &again, &cmd) == rc && again == 0);
            return false;
        }
        FUZZ_ASSERT(used > 0);
        check_command(l, auth, &cmd, d);
        if (round_trip) check_round_trip(&cmd);
    }
    return true;
}

static size_t chunk_len(int mode, uint32_t *seed, size_t left) {
    *seed = *seed * 1103515245u + 12345u;
    size_t n = left;
    if (mode == 1) n = 1;
    if (mode == 2) n = 1 + (*seed >> 16) % 8;
    if (mode == 3) n = 1 + (*seed >> 16) % 64;
    return n < left ? n : left;
}

/* Parses data[0, len) in chunks as `mode` says; returns its digest. */
static struct digest run(const struct resp_limits *l, bool auth, int mode, uint32_t seed,
                         const unsigned char *data, size_t len, bool round_trip) {
    struct digest d = {.hash = 0xcbf29ce484222325ull, .status = RESP_NEED_MORE};
    struct resp_parser p;
    FUZZ_ASSERT(resp_parser_init(&p, l, NULL) == RESP_OK);
    resp_parser_set_auth_required(&p, auth);
    bool going = true;
    for (size_t off = 0; off < len && going;) {
        size_t n = chunk_len(mode, &seed, len - off);
        unsigned char *chunk = malloc(n);
        FUZZ_ASSERT(chunk != NULL);
        memcpy(chunk, data + off, n);
        going = feed(&p, l, auth, chunk, n, round_trip, &d);
        free(chunk);
        off += n;
        FUZZ_ASSERT(resp_parser_memory(&p) <= 20 * off + (128u << 10));
    }
    resp_parser_free(&p);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int mode = data[0] & 3;
    bool small = (data[0] & 4) != 0;
    bool auth = (data[0] & 8) != 0;
    struct resp_limits l;
    fuzz_limits(&l, small);
    const unsigned char *stream = data + 2;
    size_t len = size - 2;
    struct digest chunked = run(&l, auth, mode, data[1], stream, len, true);
    if (mode == 0) return 0;
    struct digest whole = run(&l, auth, 0, 0, stream, len, false);
    FUZZ_ASSERT(chunked.commands == whole.commands);
    FUZZ_ASSERT(chunked.hash == whole.hash);
    FUZZ_ASSERT((chunked.status < 0) == (whole.status < 0));
    return 0;
}
