/* main.c: the `shoal` binary: `shoal server [flags]` runs one node,
 * `shoal demo` starts a local cluster, `shoal --help`, `shoal --version`. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "node/config.h"
#include "node/demo.h"
#include "node/node.h"

#define MAIN_VERSION "0.1.0"
#define MAIN_ERROR_BYTES 1280 /* a config error names a file path and a value */

static void main__usage(FILE *out) {
    fprintf(out, "usage: shoal <command> [flags]\n"
                 "\n"
                 "Commands:\n"
                 "  shoal server [flags]   run one node of a cluster (flags below)\n"
                 "  shoal demo [--nodes N] [--port P] [--dir D]\n"
                 "                         start N local nodes (default 3, client ports 7001..)\n"
                 "                         and supervise them until Ctrl-C\n"
                 "  shoal bench [flags]    a load generator for RESP servers, Redis Cluster\n"
                 "                         and etcd (shoal bench --help)\n"
                 "  shoal help, --help     this text\n"
                 "  shoal --version        print the version\n"
                 "\n"
                 "Example, a three-node cluster on one machine (one line per node):\n"
                 "  shoal server --id 1 --dir /var/lib/shoal/1 \\\n"
                 "    --cluster 1=127.0.0.1:7001:17001,2=127.0.0.1:7002:17002,"
                 "3=127.0.0.1:7003:17003\n"
                 "\n");
    node_config_usage(out);
}

/* True if `--help` (or -h) stands where a key would (every key takes one
 * value, so keys are at even positions). */
static int main__wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    }
    return 0;
}

static int main__server(int argc, char **argv) {
    if (main__wants_help(argc, argv)) {
        main__usage(stdout);
        return 0;
    }
    struct node_config config;
    char err[MAIN_ERROR_BYTES];
    if (node_config_parse(&config, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal server: %s\n", err);
        fprintf(stderr, "(shoal --help lists every key)\n");
        return 2;
    }
    return node_run(&config) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        main__usage(stdout);
        return 0;
    }
    const char *command = argv[1];
    if (strcmp(command, "server") == 0) return main__server(argc - 2, argv + 2);
    if (strcmp(command, "demo") == 0) return node_demo(argc - 2, argv + 2);
    if (strcmp(command, "bench") == 0) return bench_main(argc - 2, argv + 2);
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        main__usage(stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
        printf("shoal %s\n", MAIN_VERSION);
        return 0;
    }
    fprintf(stderr, "shoal: unknown command: %.64s (shoal --help lists them)\n", command);
    return 2;
}
