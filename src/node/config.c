/* config.c: a node's configuration: defaults, `--key value` flags, a config
 * file of `key value` lines, and validation; see config.h.
 *
 * One table (node__keys) drives everything: the parser looks keys up in it,
 * the usage text prints it with the defaults of node_config_default(), and
 * each entry says where its field is, what kind of value it takes and its
 * bounds. Every input is bounded: NODE__ARGS_MAX command-line words, lines
 * of at most NODE__LINE_LEN_MAX bytes, NODE__FILE_LINES_MAX lines per file,
 * numbers checked for overflow digit by digit, strings against their field. */
#include "node/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "meta/map.h"
#include "wal/wal.h"

#define NODE__ARGS_MAX 256    /* words after `shoal server` */
#define NODE__LINE_BYTES 8192 /* a config-file line, newline and NUL included */
#define NODE__LINE_LEN_MAX (NODE__LINE_BYTES - 2)
#define NODE__FILE_LINES_MAX 10000 /* lines of a config file */
#define NODE__CLUSTER_LEN_MAX 8000 /* the `cluster` value */
#define NODE__SHOW_BYTES 48        /* a bad value is quoted up to this, then "..." */
#define NODE__WHERE_BYTES (NODE_PATH_BYTES + 64)
#define NODE__MB (1024ull * 1024)
/* node.c puts the WAL in `<dir>/wal`, which must fit the WAL's path limit. */
#define NODE__DIR_LEN_MAX (WAL_DIR_BYTES_MAX - sizeof("/wal"))

_Static_assert(NODE__CLUSTER_LEN_MAX < NODE__LINE_BYTES, "a cluster value fits a line");
_Static_assert(NODE__DIR_LEN_MAX < NODE_PATH_BYTES, "dir limit fits the field");
/* the longest member: "18446744073709551615=255.255.255.255:65535:65535," */
_Static_assert(NODE_PEERS_MAX * 49 < NODE__CLUSTER_LEN_MAX, "a full cluster fits the limit");

enum node__kind {
    NODE__U32,     /* decimal, min..max */
    NODE__U64,     /* decimal, min..max */
    NODE__SIZE,    /* decimal with a Redis unit (1gb, 64mb, 512k), min..max */
    NODE__BOOL,    /* yes | no */
    NODE__PORT,    /* 1..65535 */
    NODE__ADDR,    /* IPv4 literal */
    NODE__PATH,    /* string of min..field size - 1 bytes */
    NODE__CLUSTER, /* id=host:port:peer-port,... */
    NODE__ENUM,    /* one of the words of `arg` ("a|b|c"): its index, a uint8_t */
};

struct node__key {
    const char *name;
    enum node__kind kind;
    size_t offset; /* of the field in struct node_config */
    size_t size;   /* of the field */
    uint64_t min;  /* numbers: smallest value; paths: shortest length */
    uint64_t max;  /* numbers: largest value; paths: longest length */
    const char *arg;
    const char *help;
};

#define NODE__FIELD(f) offsetof(struct node_config, f), sizeof(((struct node_config *)0)->f)

static const struct node__key node__keys[] = {
    {"id", NODE__U64, NODE__FIELD(id), 1, UINT64_MAX, "N",
     "this node's id, one of the --cluster ids"},
    {"cluster", NODE__CLUSTER, NODE__FIELD(members), 1, NODE_PEERS_MAX, "LIST",
     "members: id=host:port:peer-port,..."},
    {"cluster-id", NODE__U64, NODE__FIELD(cluster_id), 1, UINT64_MAX, "N",
     "peers with another cluster id are refused"},
    {"dir", NODE__PATH, NODE__FIELD(dir), 1, NODE__DIR_LEN_MAX, "DIR",
     "data directory (WAL, snapshots), one per node"},
    {"bind", NODE__ADDR, NODE__FIELD(bind), 1, NODE_ADDR_BYTES - 1, "ADDR",
     "IPv4 address to listen on"},
    {"port", NODE__PORT, NODE__FIELD(port), 1, 65535, "PORT", "client (RESP) port"},
    {"peer-port", NODE__PORT, NODE__FIELD(peer_port), 1, 65535, "PORT", "Raft peer port"},
    {"tick-ms", NODE__U32, NODE__FIELD(tick_ms), 1, 10000, "MS",
     "Raft clock tick in milliseconds"},
    {"election-ticks", NODE__U32, NODE__FIELD(election_ticks), 2, 100000, "N",
     "election timeout in ticks, random in [e, 2e)"},
    {"heartbeat-ticks", NODE__U32, NODE__FIELD(heartbeat_ticks), 1, 100000, "N",
     "leader heartbeat in ticks, < election-ticks"},
    {"lease-read", NODE__BOOL, NODE__FIELD(lease_read), 0, 1, "yes|no",
     "reads from a leader lease (trusts clocks)"},
    {"snapshot-entries", NODE__U64, NODE__FIELD(snapshot_entries), 1, UINT64_MAX, "N",
     "snapshot after N entries, log as big as the last"},
    {"snapshot-log-bytes", NODE__SIZE, NODE__FIELD(snapshot_log_bytes), 1, UINT64_MAX / 4,
     "SIZE", "or once the log since then holds SIZE bytes"},
    {"snapshot-chunk-bytes", NODE__SIZE, NODE__FIELD(snapshot_chunk_bytes), 1, 16 << 20, "SIZE",
     "snapshot chunk sent to followers, <= 16mb"},
    {"snapshot-write-rate", NODE__SIZE, NODE__FIELD(snapshot_write_rate), 0, UINT64_MAX / 4,
     "SIZE", "snapshot bytes written per second, 0 = no limit"},
    {"shards", NODE__U32, NODE__FIELD(shards), 1, MAP_SHARDS_MAX, "N",
     "Raft groups the slots are split into"},
    {"replicas", NODE__U32, NODE__FIELD(replicas), 0, 7, "N",
     "per shard; 0: all nodes (1 shard) or 3"},
    {"leader-wait-ms", NODE__U32, NODE__FIELD(leader_wait_ms), 0, 600000, "MS",
     "wait this long for a shard's leader"},
    {"cluster-redirect", NODE__ENUM, NODE__FIELD(cluster_redirect), 0, 2, "auto|always|never",
     "who gets MOVED (docs/cluster.md)"},
    {"pipeline-order", NODE__ENUM, NODE__FIELD(pipeline_order), 0, 1, "shard|connection",
     "what a pipeline keeps in order"},
    {"maxclients", NODE__U32, NODE__FIELD(maxclients), 1, UINT32_MAX, "N",
     "client connections at once"},
    {"proto-max-bulk-len", NODE__SIZE, NODE__FIELD(proto_max_bulk_len), NODE__MB, UINT64_MAX / 4,
     "SIZE", "largest bulk string of a request, >= 1mb"},
    {"client-query-buffer-limit", NODE__SIZE, NODE__FIELD(client_query_buffer_limit), NODE__MB,
     UINT64_MAX / 4, "SIZE", "largest request, > proto-max-bulk-len"},
    {"client-output-buffer-limit", NODE__SIZE, NODE__FIELD(client_output_buffer_limit), 1,
     UINT64_MAX / 4, "SIZE", "reply bytes queued per client (hard)"},
    {"max-pending-replies", NODE__U32, NODE__FIELD(max_pending_replies), 1, UINT32_MAX, "N",
     "replies pending per connection"},
    {"peer-queue-bytes", NODE__SIZE, NODE__FIELD(peer_queue_bytes), NODE__MB, UINT64_MAX / 4,
     "SIZE", "bytes queued per peer, then drop; >= 1mb"},
    {"wal-segment-bytes", NODE__SIZE, NODE__FIELD(wal_segment_bytes), WAL_SEGMENT_BYTES_MIN,
     WAL_SEGMENT_BYTES_MAX, "SIZE", "WAL file size, a multiple of 4kb"},
    {"logfile", NODE__PATH, NODE__FIELD(logfile), 0, NODE_PATH_BYTES - 1, "FILE",
     "log file; \"\" logs to stderr"},
    {"verbose", NODE__BOOL, NODE__FIELD(verbose), 0, 1, "yes|no", "log more"},
    {"requirepass", NODE__PATH, NODE__FIELD(requirepass), 0, NODE_PASS_BYTES - 1, "PASSWORD",
     "clients AUTH first; the same on every node"},
};

#define NODE__KEYS_COUNT (sizeof(node__keys) / sizeof(node__keys[0]))

/* ---- errors ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int node__error(char *err, size_t err_cap,
                                                             const char *fmt, ...) {
    if (err_cap == 0) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* How many bytes of a user's string a message shows. */
static int node__shown(const char *s) {
    return (int)strnlen(s, NODE__SHOW_BYTES);
}

/* "<where>: <what>: <value>", the value cut at NODE__SHOW_BYTES. */
static int node__bad(char *err, size_t err_cap, const char *where, const char *what,
                     const char *value) {
    size_t len = strnlen(value, NODE__SHOW_BYTES + 1);
    if (len == 0) return node__error(err, err_cap, "%s: %s: \"\"", where, what);
    return node__error(err, err_cap, "%s: %s: %.*s%s", where, what, node__shown(value), value,
                       len > NODE__SHOW_BYTES ? "..." : "");
}

static int node__unknown(char *err, size_t err_cap, const char *prefix, const char *key) {
    return node__error(err, err_cap, "%s%.*s: unknown key (shoal --help lists the keys)", prefix,
                       node__shown(key), key);
}

/* ---- numbers --------------------------------------------------------- */

/* Reads decimal digits at s into *out; returns the first byte after them,
 * or NULL if there is no digit or the number overflows 64 bits. */
static const char *node__digits(const char *s, uint64_t *out) {
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10) return NULL;
        v = v * 10 + digit;
    }
    if (p == s) return NULL;
    *out = v;
    return p;
}

static bool node__parse_u64(const char *s, uint64_t *out) {
    const char *end = node__digits(s, out);
    return end != NULL && *end == '\0';
}

/* Redis's memtoll: a number with an optional unit, k=1000, kb=1024,
 * m=1000^2, mb=1024^2, g=1000^3, gb=1024^3 (any case). No sign, no fraction. */
static bool node__parse_size(const char *s, uint64_t *out) {
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},
                 {"k", 1000},       {"kb", 1024},
                 {"m", 1000000},    {"mb", 1024 * 1024},
                 {"g", 1000000000}, {"gb", 1024ull * 1024 * 1024}};
    uint64_t v;
    const char *end = node__digits(s, &v);
    if (end == NULL) return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].unit) != 0) continue;
        if (v > UINT64_MAX / units[i].mul) return false;
        *out = v * units[i].mul;
        return true;
    }
    return false;
}

/* Writes a size with the largest binary unit that divides it: 512mb, 1gb. */
static void node__format_size(uint64_t v, char *buf, size_t cap) {
    static const char *const units[] = {"gb", "mb", "kb"};
    static const uint64_t muls[] = {1024ull * 1024 * 1024, 1024 * 1024, 1024};
    for (int i = 0; i < 3; i++) {
        if (v != 0 && v % muls[i] == 0) {
            snprintf(buf, cap, "%llu%s", (unsigned long long)(v / muls[i]), units[i]);
            return;
        }
    }
    snprintf(buf, cap, "%llu", (unsigned long long)v);
}

static bool node__parse_port(const char *s, uint16_t *out) {
    uint64_t v;
    if (!node__parse_u64(s, &v) || v < 1 || v > 65535) return false;
    *out = (uint16_t)v;
    return true;
}

static bool node__is_ipv4(const char *s) {
    struct in_addr a;
    return strnlen(s, NODE_ADDR_BYTES) < NODE_ADDR_BYTES && inet_pton(AF_INET, s, &a) == 1;
}

/* ---- the cluster list ------------------------------------------------ */

/* Parses one `id=host:port:peer-port` (NUL-terminated, trimmed). */
static int node__parse_member(char *text, struct node_member *m, const char *where, char *err,
                              size_t err_cap) {
    char *eq = strchr(text, '=');
    char *colon1 = eq ? strchr(eq + 1, ':') : NULL;
    char *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
    if (colon2 == NULL) {
        return node__bad(err, err_cap, where, "want id=host:port:peer-port, not", text);
    }
    *eq = *colon1 = *colon2 = '\0';
    memset(m, 0, sizeof(*m));
    if (!node__parse_u64(text, &m->id) || m->id == 0) {
        return node__bad(err, err_cap, where, "not a node id (1 or more)", text);
    }
    if (!node__is_ipv4(eq + 1)) {
        return node__bad(err, err_cap, where, "not an IPv4 address", eq + 1);
    }
    memcpy(m->host, eq + 1, strlen(eq + 1) + 1);
    if (!node__parse_port(colon1 + 1, &m->client_port)) {
        return node__bad(err, err_cap, where, "not a port number", colon1 + 1);
    }
    if (!node__parse_port(colon2 + 1, &m->peer_port)) {
        return node__bad(err, err_cap, where, "not a port number", colon2 + 1);
    }
    return 0;
}

static bool node__member_uses(const struct node_member *m, const char *host, uint16_t port) {
    return strcmp(m->host, host) == 0 && (m->client_port == port || m->peer_port == port);
}

/* Ids are unique; so is each host:port, client and peer ports together. */
static int node__check_members(const struct node_member *ms, uint32_t n, const char *where,
                               char *err, size_t err_cap) {
    for (uint32_t i = 0; i < n; i++) {
        const struct node_member *a = &ms[i];
        if (a->client_port == a->peer_port) {
            return node__error(err, err_cap, "%s: member %llu: port and peer-port are both %u",
                               where, (unsigned long long)a->id, (unsigned)a->client_port);
        }
        for (uint32_t j = 0; j < i; j++) {
            const struct node_member *b = &ms[j];
            if (a->id == b->id) {
                return node__error(err, err_cap, "%s: id %llu is given twice", where,
                                   (unsigned long long)a->id);
            }
            uint16_t clash = node__member_uses(b, a->host, a->client_port) ? a->client_port
                             : node__member_uses(b, a->host, a->peer_port) ? a->peer_port
                                                                           : 0;
            if (clash != 0) {
                return node__error(err, err_cap, "%s: %s:%u is used by members %llu and %llu",
                                   where, a->host, (unsigned)clash, (unsigned long long)b->id,
                                   (unsigned long long)a->id);
            }
        }
    }
    return 0;
}

static char *node__trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

/* Parses the whole list; replaces config's members only if all is well. */
static int node__parse_cluster(struct node_config *config, const char *value, const char *where,
                               char *err, size_t err_cap) {
    if (strnlen(value, NODE__CLUSTER_LEN_MAX + 1) > NODE__CLUSTER_LEN_MAX) {
        return node__error(err, err_cap, "%s: longer than %d bytes", where, NODE__CLUSTER_LEN_MAX);
    }
    char text[NODE__CLUSTER_LEN_MAX + 1];
    memcpy(text, value, strlen(value) + 1);
    struct node_member ms[NODE_PEERS_MAX];
    uint32_t n = 0;
    char *next = text;
    while (next != NULL) {
        char *item = next;
        next = strchr(item, ',');
        if (next != NULL) *next++ = '\0';
        item = node__trim(item);
        if (*item == '\0') return node__bad(err, err_cap, where, "empty member in", value);
        if (n == NODE_PEERS_MAX) {
            return node__error(err, err_cap, "%s: more than %d members", where, NODE_PEERS_MAX);
        }
        if (node__parse_member(item, &ms[n], where, err, err_cap) != 0) return -1;
        n++;
    }
    if (node__check_members(ms, n, where, err, err_cap) != 0) return -1;
    memcpy(config->members, ms, n * sizeof(ms[0]));
    config->n_members = n;
    return 0;
}

/* ---- setting one key ------------------------------------------------- */

static const struct node__key *node__find_key(const char *name) {
    for (size_t i = 0; i < NODE__KEYS_COUNT; i++) {
        if (strcmp(node__keys[i].name, name) == 0) return &node__keys[i];
    }
    return NULL;
}

static int node__set_number(struct node_config *config, const struct node__key *k,
                            const char *value, const char *where, char *err, size_t err_cap) {
    uint64_t v;
    bool is_size = k->kind == NODE__SIZE;
    bool ok = is_size ? node__parse_size(value, &v) : node__parse_u64(value, &v);
    if (!ok) return node__bad(err, err_cap, where, is_size ? "not a size" : "not a number", value);
    if (v < k->min || v > k->max) {
        uint64_t bound = v < k->min ? k->min : k->max;
        char text[32], what[64];
        if (is_size) {
            node__format_size(bound, text, sizeof(text));
        } else {
            snprintf(text, sizeof(text), "%llu", (unsigned long long)bound);
        }
        snprintf(what, sizeof(what), "must be at %s %s", v < k->min ? "least" : "most", text);
        return node__bad(err, err_cap, where, what, value);
    }
    char *field = (char *)config + k->offset;
    if (k->size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(field, &v32, sizeof(v32));
    } else {
        assert(k->size == sizeof(uint64_t));
        memcpy(field, &v, sizeof(v));
    }
    return 0;
}

static int node__set_string(struct node_config *config, const struct node__key *k,
                            const char *value, const char *where, char *err, size_t err_cap) {
    size_t len = strnlen(value, k->size);
    if (k->kind == NODE__ADDR && !node__is_ipv4(value)) {
        return node__bad(err, err_cap, where, "not an IPv4 address", value);
    }
    if (len < k->min) return node__error(err, err_cap, "%s: empty", where);
    if (len > k->max || len == k->size) {
        char what[48];
        snprintf(what, sizeof(what), "longer than %llu bytes", (unsigned long long)k->max);
        return node__bad(err, err_cap, where, what, value);
    }
    memcpy((char *)config + k->offset, value, len + 1);
    return 0;
}

static int node__set(struct node_config *config, const struct node__key *k, const char *value,
                     const char *where, char *err, size_t err_cap) {
    assert(k->offset + k->size <= sizeof(*config));
    char *field = (char *)config + k->offset;
    switch (k->kind) {
    case NODE__U32:
    case NODE__U64:
    case NODE__SIZE: return node__set_number(config, k, value, where, err, err_cap);
    case NODE__BOOL:
        assert(k->size == sizeof(bool));
        if (strcasecmp(value, "yes") != 0 && strcasecmp(value, "no") != 0) {
            return node__bad(err, err_cap, where, "not yes or no", value);
        }
        *(bool *)field = strcasecmp(value, "yes") == 0;
        return 0;
    case NODE__ENUM: {
        assert(k->size == sizeof(uint8_t));
        const char *w = k->arg;
        for (uint8_t i = 0; i <= k->max; i++) {
            size_t len = strcspn(w, "|");
            if (strlen(value) == len && strncasecmp(value, w, len) == 0) {
                *(uint8_t *)field = i;
                return 0;
            }
            w += len + (w[len] == '|');
        }
        return node__bad(err, err_cap, where, "not one of the allowed words", value);
    }
    case NODE__PORT:
        assert(k->size == sizeof(uint16_t));
        if (!node__parse_port(value, (uint16_t *)field)) {
            return node__bad(err, err_cap, where, "not a port number", value);
        }
        return 0;
    case NODE__ADDR:
    case NODE__PATH: return node__set_string(config, k, value, where, err, err_cap);
    case NODE__CLUSTER: return node__parse_cluster(config, value, where, err, err_cap);
    }
    assert(0 && "unknown kind");
    return -1;
}

/* One of Redis's parameters (config_redis.c), as CONFIG SET checks it. */
static int node__set_redis(struct node_config *config, int param, const char *value,
                           const char *where, char *err, size_t err_cap) {
    char why[256];
    if (node_redis_set(config, param, value, strlen(value), why, sizeof(why)) != 0) {
        return node__bad(err, err_cap, where, why, value);
    }
    return 0;
}

/* ---- the config file ------------------------------------------------- */

/* Reads one line into buf (without its newline). Returns 1, 0 at the end
 * of the file, -1 for a line over NODE__LINE_LEN_MAX, -2 for a NUL byte. */
static int node__read_line(FILE *f, char *buf, size_t cap) {
    assert(cap == NODE__LINE_BYTES);
    size_t len = 0;
    int c = getc(f);
    if (c == EOF) return 0;
    for (; c != EOF && c != '\n'; c = getc(f)) {
        if (c == '\0') return -2;
        if (len == NODE__LINE_LEN_MAX) return -1;
        buf[len++] = (char)c;
    }
    if (len > 0 && buf[len - 1] == '\r') len--;
    buf[len] = '\0';
    return 1;
}

/* A value may be put in double quotes (`logfile ""`); they are removed. */
static int node__unquote(char **value, const char *where, char *err, size_t err_cap) {
    char *v = *value;
    if (v[0] != '"') return 0;
    size_t len = strlen(v);
    if (len < 2 || v[len - 1] != '"') return node__bad(err, err_cap, where, "unclosed quote", v);
    v[len - 1] = '\0';
    *value = v + 1;
    return 0;
}

/* Applies one line: blank, `# comment`, or `key value`. */
static int node__file_line(struct node_config *config, const char *path, unsigned line_no,
                           char *line, char *err, size_t err_cap) {
    char *key = node__trim(line);
    if (*key == '\0' || *key == '#') return 0;
    char *value = key + strcspn(key, " \t");
    if (*value != '\0') *value++ = '\0';
    value = node__trim(value);
    char where[NODE__WHERE_BYTES];
    snprintf(where, sizeof(where), "%s:%u: %s", path, line_no, key);
    if (strcmp(key, "config") == 0) return node__error(err, err_cap, "%s: not in a file", where);
    const struct node__key *k = node__find_key(key);
    int redis = k == NULL ? node_redis_find(key, strlen(key)) : -1;
    if (k == NULL && redis < 0) {
        snprintf(where, sizeof(where), "%s:%u: ", path, line_no);
        return node__unknown(err, err_cap, where, key);
    }
    if (*value == '\0' && redis < 0) return node__error(err, err_cap, "%s: missing value", where);
    if (node__unquote(&value, where, err, err_cap) != 0) return -1;
    if (redis >= 0) return node__set_redis(config, redis, value, where, err, err_cap);
    return node__set(config, k, value, where, err, err_cap);
}

static int node__read_file(struct node_config *config, const char *path, char *err,
                           size_t err_cap) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return node__error(err, err_cap, "--config: cannot open %s: %s", path, strerror(errno));
    }
    char line[NODE__LINE_BYTES];
    int rc = 0;
    unsigned line_no = 0;
    while (rc == 0) {
        int got = node__read_line(f, line, sizeof(line));
        if (got == 0) break;
        line_no++;
        if (line_no > NODE__FILE_LINES_MAX) {
            rc = node__error(err, err_cap, "%s: more than %d lines", path, NODE__FILE_LINES_MAX);
        } else if (got == -1) {
            rc = node__error(err, err_cap, "%s:%u: line longer than %d bytes", path, line_no,
                             NODE__LINE_LEN_MAX);
        } else if (got == -2) {
            rc = node__error(err, err_cap, "%s:%u: NUL byte in line", path, line_no);
        } else {
            rc = node__file_line(config, path, line_no, line, err, err_cap);
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = node__error(err, err_cap, "--config: cannot read %s: %s", path, strerror(errno));
    }
    fclose(f);
    return rc;
}

/* ---- flags ----------------------------------------------------------- */

/* Checks the shape (`--key value` pairs) and finds `--config FILE`. */
static int node__scan_flags(int argc, char **argv, const char **config_path, char *err,
                            size_t err_cap) {
    if (argc > NODE__ARGS_MAX) {
        return node__error(err, err_cap, "more than %d arguments", NODE__ARGS_MAX);
    }
    *config_path = NULL;
    for (int i = 0; i < argc; i += 2) {
        int shown = node__shown(argv[i]);
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            return node__error(err, err_cap, "unexpected argument: %.*s (flags are --key value)",
                               shown, argv[i]);
        }
        if (strchr(argv[i], '=') != NULL) {
            return node__error(err, err_cap, "%.*s: flags are --key value, not --key=value", shown,
                               argv[i]);
        }
        if (i + 1 == argc) {
            return node__error(err, err_cap, "%.*s: missing value", shown, argv[i]);
        }
        if (strcmp(argv[i], "--config") != 0) continue;
        if (*config_path != NULL) return node__error(err, err_cap, "--config: given twice");
        *config_path = argv[i + 1];
    }
    return 0;
}

static int node__apply_flags(struct node_config *config, int argc, char **argv, char *err,
                             size_t err_cap) {
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *name = argv[i] + 2;
        if (strcmp(name, "config") == 0) continue;
        const struct node__key *k = node__find_key(name);
        int redis = k == NULL ? node_redis_find(name, strlen(name)) : -1;
        if (k == NULL && redis < 0) return node__unknown(err, err_cap, "", argv[i]);
        char where[NODE__WHERE_BYTES];
        snprintf(where, sizeof(where), "--%s", k != NULL ? k->name : name);
        if (redis >= 0) {
            if (node__set_redis(config, redis, argv[i + 1], where, err, err_cap) != 0) return -1;
            continue;
        }
        if (node__set(config, k, argv[i + 1], where, err, err_cap) != 0) return -1;
    }
    return 0;
}

/* ---- validation ------------------------------------------------------ */

static void node__list_ids(const struct node_config *config, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < config->n_members && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "",
                         (unsigned long long)config->members[i].id);
        if (n < 0) return;
        used += (size_t)n;
    }
}

/* Fills the ports left to the cluster entry and checks this node's place. */
static int node__resolve_self(struct node_config *config, char *err, size_t err_cap) {
    if (config->n_members == 0) {
        return node__error(err, err_cap,
                           "cluster: missing: list every member as "
                           "--cluster id=host:port:peer-port,...");
    }
    char ids[NODE_PEERS_MAX * 22];
    node__list_ids(config, ids, sizeof(ids));
    if (config->id == 0) {
        return node__error(err, err_cap, "id: missing: give this node's id (cluster ids: %s)",
                           ids);
    }
    const struct node_member *self = node_config_member(config, config->id);
    if (self == NULL) {
        return node__error(err, err_cap, "id: %llu is not in the cluster (ids: %s)",
                           (unsigned long long)config->id, ids);
    }
    if (config->port == 0) config->port = self->client_port;
    if (config->peer_port == 0) config->peer_port = self->peer_port;
    if (config->port == config->peer_port) {
        return node__error(err, err_cap, "port and peer-port are both %u", (unsigned)config->port);
    }
    return 0;
}

static int node__check_limits(const struct node_config *c, char *err, size_t err_cap) {
    if (c->heartbeat_ticks >= c->election_ticks) {
        return node__error(err, err_cap,
                           "heartbeat-ticks (%u) must be less than election-ticks (%u)",
                           (unsigned)c->heartbeat_ticks, (unsigned)c->election_ticks);
    }
    if (c->proto_max_bulk_len >= c->client_query_buffer_limit) {
        char bulk[32], query[32];
        node__format_size(c->proto_max_bulk_len, bulk, sizeof(bulk));
        node__format_size(c->client_query_buffer_limit, query, sizeof(query));
        return node__error(err, err_cap,
                           "proto-max-bulk-len (%s) must be less than "
                           "client-query-buffer-limit (%s)",
                           bulk, query);
    }
    if (c->wal_segment_bytes % WAL_SEGMENT_ALIGN_BYTES != 0) {
        return node__error(err, err_cap, "wal-segment-bytes: not a multiple of 4kb: %llu",
                           (unsigned long long)c->wal_segment_bytes);
    }
    return 0;
}

/* ---- public ---------------------------------------------------------- */

void node_config_default(struct node_config *config) {
    assert(config != NULL);
    memset(config, 0, sizeof(*config));
    snprintf(config->dir, sizeof(config->dir), ".");
    snprintf(config->bind, sizeof(config->bind), "127.0.0.1");
    config->cluster_id = 1;
    config->tick_ms = 20;
    config->election_ticks = 15;
    config->heartbeat_ticks = 2;
    config->lease_read = false;
    config->snapshot_entries = 100000;
    config->snapshot_log_bytes = 512ull << 20;
    config->snapshot_chunk_bytes = 1u << 20;
    config->snapshot_write_rate = 128ull << 20;
    config->shards = 1;
    config->replicas = 0; /* every node with one shard (as before sharding), else 3 */
    config->leader_wait_ms = 2000;
    config->cluster_redirect = NODE_REDIRECT_AUTO;
    config->pipeline_order = NODE_ORDER_SHARD;
    config->maxclients = 10000;
    config->proto_max_bulk_len = 512 * NODE__MB;
    config->client_query_buffer_limit = 1024 * NODE__MB;
    config->client_output_buffer_limit = 256 * NODE__MB;
    config->max_pending_replies = 100000;
    config->peer_queue_bytes = 64 * NODE__MB;
    config->wal_segment_bytes = 64 * NODE__MB;
    config->verbose = false;
    node_redis_defaults(config);
}

int node_config_parse(struct node_config *config, int argc, char **argv, char *err,
                      size_t err_cap) {
    assert(config != NULL);
    assert(argc >= 0 && (argc == 0 || argv != NULL));
    if (err_cap > 0) err[0] = '\0';
    node_config_default(config);
    const char *path = NULL;
    if (node__scan_flags(argc, argv, &path, err, err_cap) != 0) return -1;
    if (path != NULL && node__read_file(config, path, err, err_cap) != 0) return -1;
    if (node__apply_flags(config, argc, argv, err, err_cap) != 0) return -1;
    if (node__resolve_self(config, err, err_cap) != 0) return -1;
    if (node__check_limits(config, err, err_cap) != 0) return -1;
    assert(node_config_member(config, config->id) != NULL);
    assert(config->port != 0 && config->peer_port != 0);
    return 0;
}

static void node__format_default(const struct node__key *k, const struct node_config *d, char *buf,
                                 size_t cap) {
    const char *field = (const char *)d + k->offset;
    uint64_t v = 0;
    if (k->kind == NODE__U32) {
        uint32_t v32;
        memcpy(&v32, field, sizeof(v32));
        v = v32;
    } else if (k->kind == NODE__U64 || k->kind == NODE__SIZE) {
        memcpy(&v, field, sizeof(v));
    }
    switch (k->kind) {
    case NODE__U32:
    case NODE__U64:
        if (v == 0 && k->kind == NODE__U64) /* id: no default */
            snprintf(buf, cap, "(required)");
        else
            snprintf(buf, cap, "%llu", (unsigned long long)v);
        break;
    case NODE__SIZE: node__format_size(v, buf, cap); break;
    case NODE__BOOL: snprintf(buf, cap, "%s", *(const bool *)field ? "yes" : "no"); break;
    case NODE__PORT: snprintf(buf, cap, "from cluster"); break;
    case NODE__ADDR:
    case NODE__PATH: snprintf(buf, cap, "%s", *field ? field : "\"\""); break;
    case NODE__CLUSTER: snprintf(buf, cap, "(required)"); break;
    case NODE__ENUM: {
        const char *w = k->arg;
        for (uint8_t i = 0; i < *(const uint8_t *)field && w[strcspn(w, "|")] == '|'; i++) {
            w += strcspn(w, "|") + 1;
        }
        snprintf(buf, cap, "%.*s", (int)strcspn(w, "|"), w);
        break;
    }
    }
}

void node_config_usage(FILE *out) {
    struct node_config d;
    node_config_default(&d);
    fprintf(out, "Server keys: flags `--key value`, or `key value` lines in the --config\n"
                 "file (`#` starts a comment line); flags win over the file. Sizes take\n"
                 "Redis's units: k=1000, kb=1024, m, mb, g, gb. Booleans are yes or no.\n");
    fprintf(out, "  %-34s %-13s %s\n", "KEY", "DEFAULT", "MEANING");
    fprintf(out, "  %-34s %-13s %s\n", "--config FILE", "none", "read the keys from FILE first");
    for (size_t i = 0; i < NODE__KEYS_COUNT; i++) {
        const struct node__key *k = &node__keys[i];
        char flag[64], def[32];
        snprintf(flag, sizeof(flag), "--%s %s", k->name, k->arg);
        node__format_default(k, &d, def, sizeof(def));
        fprintf(out, "  %-34s %-13s %s\n", flag, def, k->help);
    }
}

const struct node_member *node_config_member(const struct node_config *config, uint64_t id) {
    assert(config != NULL);
    assert(config->n_members <= NODE_PEERS_MAX);
    for (uint32_t i = 0; i < config->n_members; i++) {
        if (config->members[i].id == id) return &config->members[i];
    }
    return NULL;
}

uint32_t node_config_replicas(const struct node_config *config) {
    uint32_t r = config->replicas;
    if (r == 0) r = config->shards <= 1 ? config->n_members : 3;
    return r < config->n_members ? r : config->n_members;
}
