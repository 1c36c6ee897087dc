/* test_config.c: the node's configuration. Defaults match the header; every
 * key is read from flags and from a file, flags winning; sizes take Redis's
 * units; the cluster list is parsed and checked; every refusal names the key
 * and the bad value; oversized input (a long line, a huge value, too many
 * arguments) is refused, never truncated. */
#include <stdlib.h>
#include <unistd.h>

#include "kv/kv.h"
#include "node/config.h"
#include "test.h"

#define ARGS_MAX 300
#define CLUSTER3 "1=127.0.0.1:7001:17001,2=127.0.0.1:7002:17002,3=127.0.0.1:7003:17003"
#define ONE "--id 1 --cluster " CLUSTER3 /* a valid start, then the bad part */

struct args {
    int argc;
    char *argv[ARGS_MAX];
    char text[8192];
};

/* Splits `line` on spaces (no quoting) into a->argv. */
static void split(struct args *a, const char *line) {
    snprintf(a->text, sizeof(a->text), "%s", line);
    a->argc = 0;
    for (char *tok = strtok(a->text, " "); tok != NULL; tok = strtok(NULL, " ")) {
        a->argv[a->argc++] = tok;
    }
}

static int parse(struct node_config *c, const char *line, char *err, size_t cap) {
    static struct args a; /* large; one parse at a time */
    split(&a, line);
    return node_config_parse(c, a.argc, a.argv, err, cap);
}

/* Writes `text` to a fresh file under /tmp; returns its path in buf. */
static void write_file(char *buf, size_t cap, const char *text, size_t len) {
    snprintf(buf, cap, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(buf);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) abort();
    close(fd);
}

TEST(defaults_match_the_header) {
    struct node_config c;
    memset(&c, 0xab, sizeof(c));
    node_config_default(&c);
    CHECK_EQ_U64(c.id, 0);
    CHECK_EQ_U64(c.n_members, 0);
    CHECK(strcmp(c.dir, ".") == 0);
    CHECK(strcmp(c.bind, "127.0.0.1") == 0);
    CHECK_EQ_U64(c.port, 0);
    CHECK_EQ_U64(c.peer_port, 0);
    CHECK_EQ_U64(c.cluster_id, 1);
    CHECK_EQ_U64(c.tick_ms, 20);
    CHECK_EQ_U64(c.election_ticks, 15);
    CHECK_EQ_U64(c.heartbeat_ticks, 2);
    CHECK(!c.lease_read);
    CHECK_EQ_U64(c.snapshot_entries, 100000);
    CHECK_EQ_U64(c.maxclients, 10000);
    CHECK_EQ_U64(c.proto_max_bulk_len, 512ull << 20);
    CHECK_EQ_U64(c.client_query_buffer_limit, 1ull << 30);
    CHECK_EQ_U64(c.client_output_buffer_limit, 256ull << 20);
    CHECK_EQ_U64(c.max_pending_replies, 100000);
    CHECK_EQ_U64(c.peer_queue_bytes, 64ull << 20);
    CHECK_EQ_U64(c.wal_segment_bytes, 64ull << 20);
    CHECK(c.logfile[0] == '\0');
    CHECK(!c.verbose);
}

TEST(minimal_flags_take_ports_from_the_cluster) {
    struct node_config c;
    char err[256];
    CHECK(parse(&c, "--id 2 --cluster " CLUSTER3, err, sizeof(err)) == 0);
    CHECK(err[0] == '\0');
    CHECK_EQ_U64(c.id, 2);
    CHECK_EQ_U64(c.port, 7002);
    CHECK_EQ_U64(c.peer_port, 17002);
    CHECK(strcmp(c.bind, "127.0.0.1") == 0);
    CHECK_EQ_U64(c.cluster_id, 1);
    CHECK_EQ_U64(c.n_members, 3);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_EQ_U64(c.members[i].id, i + 1);
        CHECK(strcmp(c.members[i].host, "127.0.0.1") == 0);
        CHECK_EQ_U64(c.members[i].client_port, 7001 + i);
        CHECK_EQ_U64(c.members[i].peer_port, 17001 + i);
    }
    const struct node_member *m = node_config_member(&c, 3);
    CHECK(m != NULL && m->client_port == 7003);
    CHECK(node_config_member(&c, 4) == NULL);
    CHECK(node_config_member(&c, 0) == NULL);
}

TEST(every_key_is_read_from_flags) {
    struct node_config c;
    char err[256];
    int rc = parse(&c,
                   "--id 1 --cluster 1=10.0.0.1:6379:16379,2=10.0.0.2:6379:16379 "
                   "--cluster-id 42 --dir /var/lib/shoal --bind 0.0.0.0 --port 6380 "
                   "--peer-port 16380 --tick-ms 5 --election-ticks 30 --heartbeat-ticks 3 "
                   "--lease-read yes --snapshot-entries 77 --maxclients 12 "
                   "--proto-max-bulk-len 2mb --client-query-buffer-limit 3mb "
                   "--client-output-buffer-limit 4k --max-pending-replies 9 "
                   "--peer-queue-bytes 5mb --wal-segment-bytes 32kb --logfile /tmp/x.log "
                   "--verbose YES",
                   err, sizeof(err));
    if (rc != 0) fprintf(stderr, "  %s\n", err);
    CHECK(rc == 0);
    CHECK_EQ_U64(c.cluster_id, 42);
    CHECK(strcmp(c.dir, "/var/lib/shoal") == 0);
    CHECK(strcmp(c.bind, "0.0.0.0") == 0);
    CHECK_EQ_U64(c.port, 6380);
    CHECK_EQ_U64(c.peer_port, 16380);
    CHECK_EQ_U64(c.tick_ms, 5);
    CHECK_EQ_U64(c.election_ticks, 30);
    CHECK_EQ_U64(c.heartbeat_ticks, 3);
    CHECK(c.lease_read);
    CHECK_EQ_U64(c.snapshot_entries, 77);
    CHECK_EQ_U64(c.maxclients, 12);
    CHECK_EQ_U64(c.proto_max_bulk_len, 2 << 20);
    CHECK_EQ_U64(c.client_query_buffer_limit, 3 << 20);
    CHECK_EQ_U64(c.client_output_buffer_limit, 4000);
    CHECK_EQ_U64(c.max_pending_replies, 9);
    CHECK_EQ_U64(c.peer_queue_bytes, 5 << 20);
    CHECK_EQ_U64(c.wal_segment_bytes, 32 << 10);
    CHECK(strcmp(c.logfile, "/tmp/x.log") == 0);
    CHECK(c.verbose);
    CHECK_EQ_U64(c.n_members, 2);
    CHECK(strcmp(c.members[1].host, "10.0.0.2") == 0);
}

TEST(parse_starts_from_defaults_and_later_flags_win) {
    struct node_config c;
    char err[256];
    memset(&c, 0x5a, sizeof(c)); /* garbage: parse must not depend on it */
    CHECK(parse(&c, ONE " --tick-ms 7 --tick-ms 9 --id 3", err, sizeof(err)) == 0);
    CHECK_EQ_U64(c.tick_ms, 9);
    CHECK_EQ_U64(c.id, 3);
    CHECK_EQ_U64(c.port, 7003);
    CHECK_EQ_U64(c.maxclients, 10000);
    CHECK(c.logfile[0] == '\0');
}

TEST(file_is_read_first_and_flags_override_it) {
    static const char text[] = "# a node of the test cluster\n"
                               "\n"
                               "   # indented comment\n"
                               "id 1\r\n"
                               "cluster " CLUSTER3 "\n"
                               "  port\t7101  \n"
                               "tick-ms 50\n"
                               "logfile \"\"\n"
                               "dir \"/data/with space\"\n"
                               "verbose yes\n"
                               "proto-max-bulk-len 8mb"; /* no final newline */
    char path[64];
    write_file(path, sizeof(path), text, sizeof(text) - 1);
    char line[256];
    snprintf(line, sizeof(line), "--tick-ms 30 --config %s --id 2", path);
    struct node_config c;
    char err[256];
    int rc = parse(&c, line, err, sizeof(err));
    unlink(path);
    if (rc != 0) fprintf(stderr, "  %s\n", err);
    CHECK(rc == 0);
    CHECK_EQ_U64(c.id, 2);       /* flag over file */
    CHECK_EQ_U64(c.tick_ms, 30); /* flag over file, though given before --config */
    CHECK_EQ_U64(c.port, 7101);  /* file over the cluster's default */
    CHECK_EQ_U64(c.peer_port, 17002);
    CHECK(c.verbose);
    CHECK(c.logfile[0] == '\0');
    CHECK(strcmp(c.dir, "/data/with space") == 0);
    CHECK_EQ_U64(c.proto_max_bulk_len, 8 << 20);
    CHECK_EQ_U64(c.n_members, 3);
}

/* Redis's parameters (config_redis.c) by their names and old aliases, in a
 * file and as flags, checked as CONFIG SET checks them. */
TEST(redis_parameters_are_read_from_file_and_flags) {
    static const char text[] = "id 1\n"
                               "cluster " CLUSTER3 "\n"
                               "zset-max-ziplist-entries 16\n"
                               "lua-time-limit 250\n"
                               "stream-node-max-bytes 8kb\n"
                               "list-max-ziplist-size -3\n"
                               "maxmemory-policy noeviction\n"
                               "appendonly no\n"
                               "save \"\"\n";
    char path[64];
    write_file(path, sizeof(path), text, sizeof(text) - 1);
    char line[256];
    snprintf(line, sizeof(line), "--config %s --zset-max-listpack-value 32", path);
    struct node_config c;
    char err[256];
    int rc = parse(&c, line, err, sizeof(err));
    unlink(path);
    if (rc != 0) fprintf(stderr, "  %s\n", err);
    CHECK(rc == 0);
    CHECK(c.redis[NODE_REDIS_ZSET_ENTRIES] == 16);
    CHECK(c.redis[NODE_REDIS_ZSET_VALUE] == 32);
    CHECK(c.redis[NODE_REDIS_BUSY_REPLY_MS] == 250);
    CHECK(c.redis[NODE_REDIS_STREAM_BYTES] == 8192);
    CHECK(c.redis[NODE_REDIS_LIST_SIZE] == -3);
    CHECK(c.redis[NODE_REDIS_HASH_ENTRIES] == 512); /* the default */
    char value[32];
    node_redis_value(&c, NODE_REDIS_APPENDONLY, value, sizeof(value));
    CHECK(strcmp(value, "yes") == 0); /* accepted, and shoal is durable all the same */
    /* Redis's ranges: a threshold past the packed format's capacity is kept
     * as set and applied up to the capacity; memory units for the -value
     * ones; Redis's strict integers */
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --zset-max-listpack-entries 1000 "
                "--hash-max-listpack-value 1kb --list-compress-depth 1 "
                "--hll-sparse-max-bytes 3000", err, sizeof(err)) == 0);
    CHECK(c.redis[NODE_REDIS_ZSET_ENTRIES] == 1000);
    CHECK(node_redis_threshold(&c, NODE_REDIS_ZSET_ENTRIES, KV_ZSET_PACK_ENTRIES) ==
          KV_ZSET_PACK_ENTRIES);
    CHECK(c.redis[NODE_REDIS_HASH_VALUE] == 1024);
    CHECK(node_redis_threshold(&c, NODE_REDIS_HASH_VALUE, KV_HASH_PACK_VALUE_BYTES) ==
          KV_HASH_PACK_VALUE_BYTES);
    CHECK(node_redis_threshold(&c, NODE_REDIS_HASH_ENTRIES, KV_HASH_PACK_ENTRIES) == 512);
    CHECK(c.redis[NODE_REDIS_LIST_COMPRESS] == 1);
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --zset-max-listpack-entries -1", err,
                sizeof(err)) != 0);
    CHECK(strstr(err, "between 0 and 9223372036854775807") != NULL);
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --hash-max-listpack-value -1", err,
                sizeof(err)) != 0);
    CHECK(strstr(err, "memory value") != NULL);
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --hash-max-listpack-entries +5", err,
                sizeof(err)) != 0);
    CHECK(strstr(err, "parsed into an integer") != NULL);
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --maxmemory-policy allkeys-lru", err,
                sizeof(err)) != 0);
    CHECK(strstr(err, "only noeviction") != NULL);
    CHECK(parse(&c, "--id 1 --cluster " CLUSTER3 " --busy-reply-threshold x", err,
                sizeof(err)) != 0);
    CHECK(strstr(err, "--busy-reply-threshold") != NULL);
    CHECK(node_redis_find("ZSET-MAX-ZIPLIST-ENTRIES", 24) == NODE_REDIS_ZSET_ENTRIES);
    CHECK(node_redis_find("nosuch", 6) == -1);
}

TEST(sizes_take_redis_units) {
    static const struct {
        const char *text;
        unsigned long long bytes;
    } cases[] = {
        {"2000000", 2000000},    {"2000000b", 2000000}, {"2000k", 2000000},    {"2000kb", 2048000},
        {"3m", 3000000},         {"3mb", 3145728},      {"3MB", 3145728},      {"1g", 1000000000},
        {"1gb", 1073741824},     {"1Gb", 1073741824},   {"64mb", 64ull << 20}, {"5120K", 5120000},
        {"100gb", 100ull << 30}, {"3000KB", 3072000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[300], err[256];
        snprintf(line, sizeof(line),
                 "--id 1 --cluster 1=127.0.0.1:1:2 --client-query-buffer-limit 200gb "
                 "--peer-queue-bytes %s",
                 cases[i].text);
        struct node_config c;
        int rc = parse(&c, line, err, sizeof(err));
        if (rc != 0) fprintf(stderr, "  %s: %s\n", cases[i].text, err);
        CHECK(rc == 0);
        CHECK_EQ_U64(c.peer_queue_bytes, cases[i].bytes);
    }
}

TEST(cluster_list_is_parsed) {
    struct node_config c;
    char err[256];
    /* Spaces around members; the same ports on different hosts. */
    static struct args a;
    a.argc = 4;
    a.argv[0] = "--id";
    a.argv[1] = "7";
    a.argv[2] = "--cluster";
    a.argv[3] = " 7=10.0.0.1:7000:17000 , 9=10.0.0.2:7000:17000,"
                "18446744073709551615=10.0.0.3:1:65535 ";
    int rc = node_config_parse(&c, a.argc, a.argv, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "  %s\n", err);
    CHECK(rc == 0);
    CHECK_EQ_U64(c.n_members, 3);
    CHECK_EQ_U64(c.members[0].id, 7);
    CHECK_EQ_U64(c.members[1].id, 9);
    CHECK_EQ_U64(c.members[2].id, UINT64_MAX);
    CHECK_EQ_U64(c.members[2].client_port, 1);
    CHECK_EQ_U64(c.members[2].peer_port, 65535);
    CHECK(strcmp(c.members[2].host, "10.0.0.3") == 0);
    CHECK_EQ_U64(c.port, 7000);
    /* A later --cluster replaces the whole list. */
    CHECK(parse(&c, ONE " --cluster 1=127.0.0.1:5:6", err, sizeof(err)) == 0);
    CHECK_EQ_U64(c.n_members, 1);
    CHECK_EQ_U64(c.port, 5);
    /* NODE_PEERS_MAX (128) members fit. */
    static char line[8192];
    size_t used = (size_t)snprintf(line, sizeof(line), "--id 128 --cluster ");
    for (int i = 1; i <= NODE_PEERS_MAX; i++) {
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%d=127.0.0.1:%d:%d",
                                 i > 1 ? "," : "", i, 7000 + i, 17000 + i);
    }
    CHECK(parse(&c, line, err, sizeof(err)) == 0);
    CHECK_EQ_U64(c.n_members, NODE_PEERS_MAX);
    CHECK_EQ_U64(c.port, 7128);
}

/* Each bad command line and the exact message it must give. */
static const struct {
    const char *line;
    const char *message;
} refusals[] = {
    /* required keys and this node's place */
    {"", "cluster: missing: list every member as --cluster id=host:port:peer-port,..."},
    {"--cluster " CLUSTER3, "id: missing: give this node's id (cluster ids: 1, 2, 3)"},
    {"--id 4 --cluster " CLUSTER3, "id: 4 is not in the cluster (ids: 1, 2, 3)"},
    {ONE " --peer-port 7001", "port and peer-port are both 7001"},
    /* numbers */
    {"--id 0 --cluster " CLUSTER3, "--id: must be at least 1: 0"},
    {"--id x1 --cluster " CLUSTER3, "--id: not a number: x1"},
    {"--id -1 --cluster " CLUSTER3, "--id: not a number: -1"},
    {"--id 18446744073709551616 --cluster " CLUSTER3, "--id: not a number: 18446744073709551616"},
    {ONE " --cluster-id 0", "--cluster-id: must be at least 1: 0"},
    {ONE " --tick-ms 0", "--tick-ms: must be at least 1: 0"},
    {ONE " --tick-ms 10001", "--tick-ms: must be at most 10000: 10001"},
    {ONE " --tick-ms 20ms", "--tick-ms: not a number: 20ms"},
    {ONE " --election-ticks 1", "--election-ticks: must be at least 2: 1"},
    {ONE " --heartbeat-ticks 0", "--heartbeat-ticks: must be at least 1: 0"},
    {ONE " --heartbeat-ticks 15", "heartbeat-ticks (15) must be less than election-ticks (15)"},
    {ONE " --election-ticks 3 --heartbeat-ticks 4",
     "heartbeat-ticks (4) must be less than election-ticks (3)"},
    {ONE " --maxclients 0", "--maxclients: must be at least 1: 0"},
    {ONE " --maxclients 4294967296", "--maxclients: must be at most 4294967295: 4294967296"},
    {ONE " --max-pending-replies 0", "--max-pending-replies: must be at least 1: 0"},
    {ONE " --snapshot-entries 0", "--snapshot-entries: must be at least 1: 0"},
    /* sizes */
    {ONE " --proto-max-bulk-len 1tb", "--proto-max-bulk-len: not a size: 1tb"},
    {ONE " --proto-max-bulk-len 1.5mb", "--proto-max-bulk-len: not a size: 1.5mb"},
    {ONE " --proto-max-bulk-len mb", "--proto-max-bulk-len: not a size: mb"},
    {ONE " --proto-max-bulk-len -1mb", "--proto-max-bulk-len: not a size: -1mb"},
    {ONE " --proto-max-bulk-len 1000k", "--proto-max-bulk-len: must be at least 1mb: 1000k"},
    {ONE " --peer-queue-bytes 99999999999gb", "--peer-queue-bytes: not a size: 99999999999gb"},
    {ONE " --client-output-buffer-limit 0", "--client-output-buffer-limit: must be at least 1: 0"},
    {ONE " --proto-max-bulk-len 1gb",
     "proto-max-bulk-len (1gb) must be less than client-query-buffer-limit (1gb)"},
    {ONE " --client-query-buffer-limit 100mb",
     "proto-max-bulk-len (512mb) must be less than client-query-buffer-limit (100mb)"},
    {ONE " --wal-segment-bytes 8kb", "--wal-segment-bytes: must be at least 16kb: 8kb"},
    {ONE " --wal-segment-bytes 2gb", "--wal-segment-bytes: must be at most 1gb: 2gb"},
    {ONE " --wal-segment-bytes 100000", "wal-segment-bytes: not a multiple of 4kb: 100000"},
    /* booleans, ports, addresses */
    {ONE " --lease-read true", "--lease-read: not yes or no: true"},
    {ONE " --verbose 1", "--verbose: not yes or no: 1"},
    {ONE " --port 99999", "--port: not a port number: 99999"},
    {ONE " --port 0", "--port: not a port number: 0"},
    {ONE " --peer-port http", "--peer-port: not a port number: http"},
    {ONE " --bind localhost", "--bind: not an IPv4 address: localhost"},
    {ONE " --bind 1.2.3.256", "--bind: not an IPv4 address: 1.2.3.256"},
    /* the cluster list */
    {"--id 1 --cluster 1=127.0.0.1:7001", "--cluster: want id=host:port:peer-port, not: "
                                          "1=127.0.0.1:7001"},
    {"--id 1 --cluster 127.0.0.1:7001:17001", "--cluster: want id=host:port:peer-port, not: "
                                              "127.0.0.1:7001:17001"},
    {"--id 1 --cluster 0=127.0.0.1:7001:17001", "--cluster: not a node id (1 or more): 0"},
    {"--id 1 --cluster a=127.0.0.1:7001:17001", "--cluster: not a node id (1 or more): a"},
    {"--id 1 --cluster 1=localhost:7001:17001", "--cluster: not an IPv4 address: localhost"},
    {"--id 1 --cluster 1=::1:7001:17001", "--cluster: not an IPv4 address: \"\""},
    {"--id 1 --cluster 1=127.0.0.1:70001:17001", "--cluster: not a port number: 70001"},
    {"--id 1 --cluster 1=127.0.0.1:7001:0", "--cluster: not a port number: 0"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001:5", "--cluster: not a port number: 17001:5"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001,,2=127.0.0.1:7002:17002",
     "--cluster: empty member in: 1=127.0.0.1:7001:17001,,2=127.0.0.1:7002:17002"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001,", "--cluster: empty member in: "
                                                 "1=127.0.0.1:7001:17001,"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001,1=127.0.0.1:7002:17002",
     "--cluster: id 1 is given twice"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001,2=127.0.0.1:7001:17002",
     "--cluster: 127.0.0.1:7001 is used by members 1 and 2"},
    {"--id 1 --cluster 1=127.0.0.1:7001:17001,2=127.0.0.1:17001:7002",
     "--cluster: 127.0.0.1:17001 is used by members 1 and 2"},
    {"--id 1 --cluster 1=127.0.0.1:7001:7001", "--cluster: member 1: port and peer-port are "
                                               "both 7001"},
    /* the shape of the command line */
    {"--id", "--id: missing value"},
    {ONE " extra", "unexpected argument: extra (flags are --key value)"},
    {"id 1", "unexpected argument: id (flags are --key value)"},
    {"-- 1", "unexpected argument: -- (flags are --key value)"},
    {ONE " --no-such-key 5", "--no-such-key: unknown key (shoal --help lists the keys)"},
    {"--id=1", "--id=1: flags are --key value, not --key=value"},
    {"--config /nonexistent/shoal.conf",
     "--config: cannot open /nonexistent/shoal.conf: No such file or directory"},
    {"--config /a --config /b", "--config: given twice"},
    {"--dir " /* empty via the test below */, "--dir: missing value"},
};

TEST(every_refusal_names_the_key_and_the_value) {
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct node_config c;
        char err[512];
        int rc = parse(&c, refusals[i].line, err, sizeof(err));
        if (rc != -1 || strcmp(err, refusals[i].message) != 0) {
            fprintf(stderr, "  case %zu: %s\n    got  (%d) %s\n    want %s\n", i, refusals[i].line,
                    rc, rc ? err : "", refusals[i].message);
        }
        CHECK(rc == -1);
        CHECK(strcmp(err, refusals[i].message) == 0);
    }
}

TEST(empty_and_oversized_values_are_refused) {
    struct node_config c;
    char err[512];
    static char huge[1 << 20];
    memset(huge, '9', sizeof(huge) - 1);
    char *argv[] = {"--id", "1", "--cluster", CLUSTER3, "--dir", "", NULL};
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "--dir: empty") == 0);
    argv[5] = huge; /* a megabyte of digits as a path: too long, shown cut */
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strncmp(err, "--dir: longer than 507 bytes: 999", 33) == 0);
    CHECK(strlen(err) < 120);
    CHECK(strcmp(err + strlen(err) - 3, "...") == 0);
    argv[4] = "--snapshot-entries"; /* as a number: overflow */
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strncmp(err, "--snapshot-entries: not a number: 999", 37) == 0);
    argv[4] = "--logfile";
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strncmp(err, "--logfile: longer than 1023 bytes: ", 35) == 0);
    argv[4] = "--cluster";
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "--cluster: longer than 8000 bytes") == 0);
    /* A path that just fits, and one byte more. */
    memset(huge, 'd', 507);
    huge[507] = '\0';
    argv[4] = "--dir";
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == 0);
    CHECK_EQ_U64(strlen(c.dir), 507);
    huge[507] = 'd';
    huge[508] = '\0';
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    /* NODE_PEERS_MAX + 1 members. */
    static char line[8192];
    size_t used = (size_t)snprintf(line, sizeof(line), "--id 1 --cluster ");
    for (int i = 1; i <= NODE_PEERS_MAX + 1; i++) {
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%d=127.0.0.1:%d:%d",
                                 i > 1 ? "," : "", i, 7000 + i, 17000 + i);
    }
    CHECK(parse(&c, line, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "--cluster: more than 128 members") == 0);
}

TEST(too_many_arguments_are_refused) {
    static struct args a;
    a.argc = 258;
    for (int i = 0; i < a.argc; i += 2) {
        a.argv[i] = "--tick-ms";
        a.argv[i + 1] = "5";
    }
    struct node_config c;
    char err[256];
    CHECK(node_config_parse(&c, a.argc, a.argv, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "more than 256 arguments") == 0);
}

TEST(small_error_buffers_are_cut_not_overrun) {
    struct node_config c;
    char err[8];
    memset(err, 'x', sizeof(err));
    CHECK(parse(&c, "--port 99999", err, sizeof(err)) == -1);
    CHECK(strcmp(err, "--port:") == 0);
    CHECK(parse(&c, "--port 99999", NULL, 0) == -1);
}

/* Parses a config file holding `text`; returns the message of the refusal,
 * with the temporary path replaced by FILE. */
static int parse_file(const char *text, size_t len, char *msg, size_t cap) {
    char path[64];
    write_file(path, sizeof(path), text, len);
    char *argv[] = {"--config", path, "--id", "1", "--cluster", CLUSTER3};
    struct node_config c;
    char err[512];
    int rc = node_config_parse(&c, 6, argv, err, sizeof(err));
    unlink(path);
    size_t plen = strlen(path);
    if (rc != 0 && strncmp(err, path, plen) == 0) {
        snprintf(msg, cap, "FILE%s", err + plen);
    } else {
        snprintf(msg, cap, "%s", rc ? err : "");
    }
    return rc;
}

TEST(bad_config_files_are_refused_with_file_and_line) {
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"port 7001\nno-such-key 5\n", "FILE:2: no-such-key: unknown key (shoal --help lists "
                                       "the keys)"},
        {"\n\n  port\n", "FILE:3: port: missing value"},
        {"port 99999\n", "FILE:1: port: not a port number: 99999"},
        {"# x\nconfig /etc/shoal.conf\n", "FILE:2: config: not in a file"},
        {"logfile \"/tmp/a\n", "FILE:1: logfile: unclosed quote: \"/tmp/a"},
        {"logfile \"\n", "FILE:1: logfile: unclosed quote: \""},
        {"--port 7001\n", "FILE:1: --port: unknown key (shoal --help lists the keys)"},
        {"port 7001 # client port\n", "FILE:1: port: not a port number: 7001 # client port"},
        {"verbose maybe\n", "FILE:1: verbose: not yes or no: maybe"},
        {"cluster 1=127.0.0.1:1:1\n", "FILE:1: cluster: member 1: port and peer-port are both 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[512];
        int rc = parse_file(cases[i].text, strlen(cases[i].text), msg, sizeof(msg));
        if (rc != -1 || strcmp(msg, cases[i].message) != 0) {
            fprintf(stderr, "  case %zu: got (%d) %s\n    want %s\n", i, rc, msg,
                    cases[i].message);
        }
        CHECK(rc == -1);
        CHECK(strcmp(msg, cases[i].message) == 0);
    }
}

TEST(long_lines_nul_bytes_and_long_files_are_refused) {
    static char text[1 << 17];
    char msg[512];
    /* A line of 8190 bytes is the longest accepted. */
    size_t len = (size_t)snprintf(text, sizeof(text), "# ");
    memset(text + len, 'c', 8190 - len);
    text[8190] = '\n';
    CHECK(parse_file(text, 8191, msg, sizeof(msg)) == 0);
    /* 8191 bytes is too long, newline or not; so is a huge one. */
    memset(text, 'c', 8191);
    text[0] = '#';
    text[8191] = '\n';
    CHECK(parse_file(text, 8192, msg, sizeof(msg)) == -1);
    CHECK(strcmp(msg, "FILE:1: line longer than 8190 bytes") == 0);
    CHECK(parse_file(text, 8191, msg, sizeof(msg)) == -1);
    memcpy(text, "\ndir ", 5);
    memset(text + 5, 'd', sizeof(text) - 5);
    CHECK(parse_file(text, sizeof(text), msg, sizeof(msg)) == -1);
    CHECK(strcmp(msg, "FILE:2: line longer than 8190 bytes") == 0);
    /* A NUL byte. */
    CHECK(parse_file("port 7001\nport 70\0001\n", 20, msg, sizeof(msg)) == -1);
    CHECK(strcmp(msg, "FILE:2: NUL byte in line") == 0);
    /* 10000 lines are read; the next is refused. */
    memset(text, '\n', 10000);
    CHECK(parse_file(text, 10000, msg, sizeof(msg)) == 0);
    CHECK(parse_file(text, 10001, msg, sizeof(msg)) == -1);
    CHECK(strcmp(msg, "FILE: more than 10000 lines") == 0);
}

TEST(a_directory_as_config_file_is_refused) {
    char *argv[] = {"--config", "/tmp", "--id", "1", "--cluster", CLUSTER3};
    struct node_config c;
    char err[256];
    CHECK(node_config_parse(&c, 6, argv, err, sizeof(err)) == -1);
    CHECK(strcmp(err, "--config: cannot read /tmp: Is a directory") == 0);
}

TEST(usage_lists_every_key_with_its_default) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    CHECK(out != NULL);
    node_config_usage(out);
    fclose(out);
    static const char *const lines[] = {
        "--config FILE ",
        "--id N ",
        "--cluster LIST ",
        "--cluster-id N                     1 ",
        "--dir DIR                          . ",
        "--bind ADDR                        127.0.0.1 ",
        "--port PORT                        from cluster ",
        "--peer-port PORT                   from cluster ",
        "--tick-ms MS                       20 ",
        "--election-ticks N                 15 ",
        "--heartbeat-ticks N                2 ",
        "--lease-read yes|no                no ",
        "--snapshot-entries N               100000 ",
        "--shards N                         1 ",
        "--replicas N                       0 ",
        "--leader-wait-ms MS                2000 ",
        "--cluster-redirect auto|always|never auto ",
        "--maxclients N                     10000 ",
        "--proto-max-bulk-len SIZE          512mb ",
        "--client-query-buffer-limit SIZE   1gb ",
        "--client-output-buffer-limit SIZE  256mb ",
        "--max-pending-replies N            100000 ",
        "--peer-queue-bytes SIZE            64mb ",
        "--wal-segment-bytes SIZE           64mb ",
        "--logfile FILE                     \"\" ",
        "--verbose yes|no                   no ",
        "--requirepass PASSWORD             \"\" ",
    };
    int missing = 0;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (strstr(buf, lines[i]) == NULL) {
            fprintf(stderr, "  usage lacks: %s\n", lines[i]);
            missing++;
        }
    }
    /* Every line fits 100 columns. */
    size_t longest = 0;
    for (char *p = buf; *p != '\0';) {
        size_t n = strcspn(p, "\n");
        if (n > longest) longest = n;
        p += n + (p[n] == '\n');
    }
    free(buf);
    CHECK_EQ_U64(missing, 0);
    CHECK(longest < 100);
}

int main(void) {
    static const struct test_case cases[] = {
        TEST_ENTRY(defaults_match_the_header),
        TEST_ENTRY(minimal_flags_take_ports_from_the_cluster),
        TEST_ENTRY(every_key_is_read_from_flags),
        TEST_ENTRY(parse_starts_from_defaults_and_later_flags_win),
        TEST_ENTRY(file_is_read_first_and_flags_override_it),
        TEST_ENTRY(sizes_take_redis_units),
        TEST_ENTRY(cluster_list_is_parsed),
        TEST_ENTRY(every_refusal_names_the_key_and_the_value),
        TEST_ENTRY(empty_and_oversized_values_are_refused),
        TEST_ENTRY(too_many_arguments_are_refused),
        TEST_ENTRY(small_error_buffers_are_cut_not_overrun),
        TEST_ENTRY(bad_config_files_are_refused_with_file_and_line),
        TEST_ENTRY(long_lines_nul_bytes_and_long_files_are_refused),
        TEST_ENTRY(a_directory_as_config_file_is_refused),
        TEST_ENTRY(redis_parameters_are_read_from_file_and_flags),
        TEST_ENTRY(usage_lists_every_key_with_its_default),
    };
    return test_run("test_config", cases, (int)(sizeof(cases) / sizeof(cases[0])));
}
