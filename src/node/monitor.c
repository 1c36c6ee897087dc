/* monitor.c: MONITOR, as Redis's: every command this node runs for one of
 * its connections (the proxied ones of other nodes included) goes to each
 * monitoring connection as one simple string,
 *   +<unix seconds>.<microseconds> [0 <client address>] "arg" "arg" ...
 * with each argument quoted as Redis quotes it. A node shows its own
 * connections' commands: MONITOR on every node shows the cluster's
 * (docs/node.md, "MONITOR"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "node/node_int.h"

/* An argument is shown up to this many bytes, then "... (N more bytes)";
 * a command up to this many arguments. A 512 MB SET is not copied to
 * every monitor. */
#define MONITOR__ARG_BYTES_MAX 4096u
#define MONITOR__ARGS_MAX 256u

/* Commands Redis leaves out of MONITOR (its admin commands), and the ones
 * whose arguments it redacts. */
static bool monitor__skipped(const char *name, uint32_t argc, const struct resp_arg *argv) {
    static const char *const skip[] = {"monitor", "config", "slowlog", "shutdown",
                                       "shoal.prefer"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        if (strcmp(name, skip[i]) == 0) return true;
    }
    if (strcmp(name, "client") != 0 || argc < 2) return false;
    static const char *const client_skip[] = {"list", "kill", "pause", "unpause", "no-evict"};
    for (size_t i = 0; i < sizeof(client_skip) / sizeof(client_skip[0]); i++) {
        size_t len = strlen(client_skip[i]);
        if (argv[1].len == len && strncasecmp(argv[1].data, client_skip[i], len) == 0) return true;
    }
    return false;
}

static bool monitor__redacted(const char *name, uint32_t i, uint32_t argc,
                              const struct resp_arg *argv) {
#ifdef CANARY_MONITOR_NO_REDACT
    return false; /* planted: passwords shown; test_monitor.py must catch it */
#endif
    if (strcmp(name, "auth") == 0) return i >= 1;
    if (strcmp(name, "hello") != 0) return false;
    /* HELLO [protover [AUTH username password] [SETNAME name]] */
    for (uint32_t k = 2; k + 2 < argc; k++) {
        if (argv[k].len == 4 && strncasecmp(argv[k].data, "auth", 4) == 0) {
            return i == k + 1 || i == k + 2;
        }
    }
    return false;
}

/* Appends p[0..len) as Redis's sdscatrepr does: quoted, with \\ \" \n \r
 * \t \a \b escaped and other non-printable bytes as \xHH. */
static void monitor__repr(struct resp_out *line, const char *p, size_t len) {
    char buf[4 * 64 + 2];
    size_t at = 0;
    buf[at++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (at > sizeof(buf) - 6) {
            resp_write_raw(line, buf, at);
            at = 0;
        }
        switch (ch) {
        case '\\': buf[at++] = '\\'; buf[at++] = '\\'; break;
        case '"': buf[at++] = '\\'; buf[at++] = '"'; break;
        case '\n': buf[at++] = '\\'; buf[at++] = 'n'; break;
        case '\r': buf[at++] = '\\'; buf[at++] = 'r'; break;
        case '\t': buf[at++] = '\\'; buf[at++] = 't'; break;
        case '\a': buf[at++] = '\\'; buf[at++] = 'a'; break;
        case '\b': buf[at++] = '\\'; buf[at++] = 'b'; break;
        default:
            if (ch >= 0x20 && ch < 0x7f) {
                buf[at++] = (char)ch;
            } else {
                at += (size_t)snprintf(buf + at, 5, "\\x%02x", ch);
            }
        }
    }
    buf[at++] = '"';
    resp_write_raw(line, buf, at);
}

void monitor_feed(struct node *n, const struct client *from, uint32_t argc,
                  const struct resp_arg *argv) {
    if (n->n_monitors == 0 || argc == 0) return;
    /* as Redis: not a command refused before it runs (unknown, wrong
     * arity, before AUTH) */
    const struct cmd_def *def = cmd_lookup(argv[0].data, argv[0].len);
    if (def == NULL || !cmd_arity_ok(def, argc) || monitor__skipped(def->name, argc, argv)) return;
    if (!from->authed && strcmp(def->name, "auth") != 0 && strcmp(def->name, "hello") != 0) {
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct resp_out line;
    resp_out_init(&line, 2, NODE_SLOT_BYTES_MAX, NULL);
    char head[160];
    int hl = snprintf(head, sizeof(head), "+%lld.%06ld [0 %s]", (long long)tv.tv_sec,
                      (long)tv.tv_usec, from->addr);
    resp_write_raw(&line, head, (size_t)hl);
    uint32_t shown = argc < MONITOR__ARGS_MAX ? argc : MONITOR__ARGS_MAX;
    for (uint32_t i = 0; i < shown; i++) {
        resp_write_raw(&line, " ", 1);
        if (monitor__redacted(def->name, i, argc, argv)) {
            resp_write_raw(&line, "\"(redacted)\"", 12);
            continue;
        }
        size_t len = argv[i].len < MONITOR__ARG_BYTES_MAX ? argv[i].len : MONITOR__ARG_BYTES_MAX;
        monitor__repr(&line, argv[i].data, len);
        if (len < argv[i].len) {
            char more[64];
            int ml = snprintf(more, sizeof(more), "... (%zu more bytes)", argv[i].len - len);
            resp_write_raw(&line, more, (size_t)ml);
        }
    }
    if (shown < argc) {
        char more[64];
        int ml = snprintf(more, sizeof(more), " ... (%u more arguments)", argc - shown);
        resp_write_raw(&line, more, (size_t)ml);
    }
    resp_write_raw(&line, "\r\n", 2);
    for (uint32_t i = 0; resp_out_error(&line) == 0 && i < n->n_monitors; i++) {
        client_reply_now(n->monitors[i], resp_out_data(&line), resp_out_len(&line));
    }
    resp_out_free(&line);
}

void monitor_command(struct client *c, struct resp_out *out) {
    struct node *n = c->node;
    if (c->monitoring) { /* Redis ignores a second MONITOR; it gets its OK here */
        resp_write_simple(out, "OK", 2);
        return;
    }
    if (n->n_monitors == n->cap_monitors) {
        uint32_t cap = n->cap_monitors ? 2 * n->cap_monitors : 4;
        struct client **m = realloc(n->monitors, cap * sizeof(*m));
        if (m == NULL) {
            resp_write_errorf(out, "OOM out of memory for a monitor");
            return;
        }
        n->monitors = m;
        n->cap_monitors = cap;
    }
    n->monitors[n->n_monitors++] = c;
    c->monitoring = true;
    resp_write_simple(out, "OK", 2);
}

void monitor_client_gone(struct client *c) {
    if (!c->monitoring) return;
    struct node *n = c->node;
    for (uint32_t i = 0; i < n->n_monitors; i++) {
        if (n->monitors[i] == c) {
            n->monitors[i] = n->monitors[--n->n_monitors];
            break;
        }
    }
    c->monitoring = false;
}

void monitor_free(struct node *n) {
    free(n->monitors);
    n->monitors = NULL;
    n->n_monitors = n->cap_monitors = 0;
}
