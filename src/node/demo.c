/* demo.c: `shoal demo`, a local cluster of child processes; see demo.h.
 *
 * Signals: SIGINT, SIGTERM, SIGHUP and SIGCHLD are blocked before the first
 * fork and taken with sigtimedwait(), so there is no handler and no global.
 * Each child gets the original mask back before exec, its own process group
 * (a Ctrl-C in the terminal reaches the demo only, which then stops every
 * node with SIGTERM) and PR_SET_PDEATHSIG, so no node outlives a demo that
 * is killed outright. */
#include "node/demo.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meta/map.h"
#include "node/config.h"

#define DEMO__HOST "127.0.0.1"
#define DEMO__ARGS 20 /* "shoal server" and 9 flags with their values */
#define DEMO__SHARDS_MAX MAP_SHARDS_MAX
#define DEMO__REPLICAS_MAX 7
#define DEMO__NUMBER_BYTES 24
/* D/nodeI must fit the `dir` key's limit (config.c: 507 bytes). */
#define DEMO__DIR_LEN_MAX 480
#define DEMO__CLUSTER_BYTES (DEMO_NODES_MAX * 48)

_Static_assert(DEMO_NODES_MAX <= NODE_PEERS_MAX, "a demo cluster fits the config");
_Static_assert(DEMO_NODES_MAX < 10, "node directories are node1..node9");
_Static_assert(DEMO__DIR_LEN_MAX + sizeof("/node9/cmdline") < NODE_PATH_BYTES, "paths fit");

struct demo__node {
    unsigned id;
    pid_t pid; /* 0: not running */
    char dir[NODE_PATH_BYTES];
    char id_text[DEMO__NUMBER_BYTES];
    char port_text[DEMO__NUMBER_BYTES];
    char peer_port_text[DEMO__NUMBER_BYTES];
    char *argv[DEMO__ARGS + 1]; /* NULL-terminated; points into this node and the demo */
};

#define DEMO_READY_MS 20000 /* the banner waits this long for leaders at most */

struct demo {
    unsigned n_nodes;
    unsigned port;       /* client port of node 1 */
    char shards_text[DEMO__NUMBER_BYTES];
    char replicas_text[DEMO__NUMBER_BYTES];
    const char *dir_arg; /* --dir, or NULL */
    char dir[PATH_MAX];  /* absolute */
    char exe[PATH_MAX];  /* this binary */
    char cluster[DEMO__CLUSTER_BYTES];
    struct demo__node nodes[DEMO_NODES_MAX];
};

/* ---- flags ----------------------------------------------------------- */

static void demo__usage(FILE *out) {
    fprintf(out,
            "usage: shoal demo [--nodes N] [--shards S] [--replicas R] [--port P] [--dir D]\n"
            "  --nodes N     nodes to start, 1..%d (default %d)\n"
            "  --shards S    Raft groups the slots are split into, 1..%d (default: N)\n"
            "  --replicas R  replicas of each shard, 1..%d (default 3, at most N)\n"
            "  --port P   node i serves clients on P+i-1, peers on P+%d+i-1 (default %d)\n"
            "  --dir D    data directory (default: a new /tmp/shoal-demo-XXXXXX);\n"
            "             an existing D is reused: the nodes restart on their data\n",
            DEMO_NODES_MAX, DEMO_NODES_DEFAULT, DEMO__SHARDS_MAX, DEMO__REPLICAS_MAX,
            DEMO_PEER_PORT_OFFSET, DEMO_PORT_DEFAULT);
}

static bool demo__number(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) return false;
    *out = v;
    return true;
}

/* Returns -1 to go on, or an exit code (0 after --help, 2 for bad flags). */
static int demo__parse(struct demo *d, int argc, char **argv) {
    unsigned long nodes = DEMO_NODES_DEFAULT, port = DEMO_PORT_DEFAULT, shards = 0, replicas = 3;
    for (int i = 0; i < argc; i += 2) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            demo__usage(stdout);
            return 0;
        }
        bool is_nodes = strcmp(flag, "--nodes") == 0;
        bool is_port = strcmp(flag, "--port") == 0;
        bool is_shards = strcmp(flag, "--shards") == 0;
        bool is_replicas = strcmp(flag, "--replicas") == 0;
        if (is_shards || is_replicas) {
            unsigned long max = is_shards ? DEMO__SHARDS_MAX : DEMO__REPLICAS_MAX;
            unsigned long *v = is_shards ? &shards : &replicas;
            if (i + 1 == argc || !demo__number(argv[i + 1], max, v) || *v < 1) {
                fprintf(stderr, "shoal demo: %s: not a number from 1 to %lu: %.64s\n", flag, max,
                        i + 1 < argc ? argv[i + 1] : "(missing)");
                return 2;
            }
            continue;
        }
        if (!is_nodes && !is_port && strcmp(flag, "--dir") != 0) {
            fprintf(stderr, "shoal demo: unknown flag: %.64s\n", flag);
            demo__usage(stderr);
            return 2;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "shoal demo: %s: missing value\n", flag);
            return 2;
        }
        const char *value = argv[i + 1];
        bool ok = is_nodes  ? demo__number(value, DEMO_NODES_MAX, &nodes) && nodes >= 1
                  : is_port ? demo__number(value, 65535, &port) && port >= 1
                            : value[0] != '\0';
        if (!is_nodes && !is_port) d->dir_arg = value;
        if (!ok && is_nodes) {
            fprintf(stderr, "shoal demo: --nodes: not a number from 1 to %d: %.64s\n",
                    DEMO_NODES_MAX, value);
        } else if (!ok) {
            fprintf(stderr, "shoal demo: %s: %s: %.64s\n", flag,
                    is_port ? "not a port number" : "empty", value);
        }
        if (!ok) return 2;
    }
    if (port + DEMO_PEER_PORT_OFFSET + nodes - 1 > 65535) {
        fprintf(stderr, "shoal demo: --port: %lu leaves no room for peer ports (%lu+%d)\n", port,
                port, DEMO_PEER_PORT_OFFSET);
        return 2;
    }
    d->n_nodes = (unsigned)nodes;
    d->port = (unsigned)port;
    snprintf(d->shards_text, sizeof(d->shards_text), "%lu", shards != 0 ? shards : nodes);
    snprintf(d->replicas_text, sizeof(d->replicas_text), "%lu",
             replicas < nodes ? replicas : nodes);
    return -1;
}

/* ---- setup ----------------------------------------------------------- */

/* True if nothing listens on (or holds) 127.0.0.1:port. SO_REUSEADDR as a
 * server sets it, so a port in TIME_WAIT counts as free. */
static bool demo__port_free(unsigned port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, DEMO__HOST, &a.sin_addr);
    bool is_free = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return is_free;
}

static int demo__check_ports(const struct demo *d) {
    int busy = 0;
    for (unsigned i = 0; i < d->n_nodes; i++) {
        unsigned ports[2] = {d->port + i, d->port + DEMO_PEER_PORT_OFFSET + i};
        for (int k = 0; k < 2; k++) {
            if (demo__port_free(ports[k])) continue;
            fprintf(stderr, "shoal demo: port %u (node %u's %s port) is in use on %s\n", ports[k],
                    i + 1, k == 0 ? "client" : "peer", DEMO__HOST);
            busy++;
        }
    }
    if (busy > 0) {
        fprintf(stderr, "shoal demo: stop what uses it (an earlier demo?) or choose other "
                        "ports with --port\n");
    }
    return busy > 0 ? -1 : 0;
}

static int demo__mkdir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "shoal demo: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* Creates (or reuses) the demo's directory and one directory per node. */
static int demo__make_dirs(struct demo *d) {
    if (d->dir_arg == NULL) {
        snprintf(d->dir, sizeof(d->dir), "/tmp/shoal-demo-XXXXXX");
        if (mkdtemp(d->dir) == NULL) {
            fprintf(stderr, "shoal demo: cannot create a directory in /tmp: %s\n",
                    strerror(errno));
            return -1;
        }
    } else if (demo__mkdir(d->dir_arg) != 0) {
        return -1;
    } else if (realpath(d->dir_arg, d->dir) == NULL) {
        fprintf(stderr, "shoal demo: %.200s: %s\n", d->dir_arg, strerror(errno));
        return -1;
    }
    if (strlen(d->dir) > DEMO__DIR_LEN_MAX) {
        fprintf(stderr, "shoal demo: --dir: longer than %d bytes\n", DEMO__DIR_LEN_MAX);
        return -1;
    }
    for (unsigned i = 0; i < d->n_nodes; i++) {
        struct demo__node *n = &d->nodes[i];
        int w = snprintf(n->dir, sizeof(n->dir), "%s/node%u", d->dir, i + 1);
        assert(w > 0 && (size_t)w < sizeof(n->dir)); /* DEMO__DIR_LEN_MAX */
        if (w <= 0 || (size_t)w >= sizeof(n->dir) || demo__mkdir(n->dir) != 0) return -1;
    }
    return 0;
}

/* Fills every node's server command line, and checks the server would take
 * it (node_config_parse), so a mistake here shows now, not in a log. */
static int demo__command_lines(struct demo *d) {
    size_t used = 0;
    for (unsigned i = 0; i < d->n_nodes; i++) {
        int w =
            snprintf(d->cluster + used, sizeof(d->cluster) - used, "%s%u=%s:%u:%u", i ? "," : "",
                     i + 1, DEMO__HOST, d->port + i, d->port + DEMO_PEER_PORT_OFFSET + i);
        assert(w > 0 && (size_t)w < sizeof(d->cluster) - used);
        used += (size_t)w;
    }
    for (unsigned i = 0; i < d->n_nodes; i++) {
        struct demo__node *n = &d->nodes[i];
        n->id = i + 1;
        snprintf(n->id_text, sizeof(n->id_text), "%u", n->id);
        snprintf(n->port_text, sizeof(n->port_text), "%u", d->port + i);
        snprintf(n->peer_port_text, sizeof(n->peer_port_text), "%u",
                 d->port + DEMO_PEER_PORT_OFFSET + i);
        char *argv[DEMO__ARGS + 1] = {
            d->exe,      "server",   "--id",         n->id_text,    "--bind",
            DEMO__HOST,  "--port",   n->port_text,   "--peer-port", n->peer_port_text,
            "--cluster", d->cluster, "--cluster-id", "1",           "--dir",
            n->dir,      "--shards", d->shards_text, "--replicas", d->replicas_text, NULL};
        memcpy(n->argv, argv, sizeof(argv));
        struct node_config config;
        char err[256];
        if (node_config_parse(&config, DEMO__ARGS - 2, n->argv + 2, err, sizeof(err)) != 0) {
            fprintf(stderr, "shoal demo: node %u: %s\n", n->id, err);
            return -1;
        }
    }
    return 0;
}

/* Writes one argument as a shell word: as is when it is plain, else quoted. */
static void demo__shell_word(FILE *out, const char *arg) {
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_-./:=,@%+";
    if (arg[0] != '\0' && strspn(arg, plain) == strlen(arg)) {
        fputs(arg, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

static void demo__print_command(FILE *out, const struct demo__node *n) {
    for (int i = 0; n->argv[i] != NULL; i++) {
        if (i > 0) fputc(' ', out);
        demo__shell_word(out, n->argv[i]);
    }
    fputc('\n', out);
}

static int demo__write_cmdline(const struct demo__node *n) {
    char path[NODE_PATH_BYTES + 16];
    snprintf(path, sizeof(path), "%s/cmdline", n->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "shoal demo: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    demo__print_command(f, n);
    if (fclose(f) != 0) {
        fprintf(stderr, "shoal demo: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- children -------------------------------------------------------- */

/* In the child: never returns. Only async-signal-safe calls until exec. */
static void demo__child(const struct demo__node *n, int log_fd, int null_fd,
                        const sigset_t *old_mask, pid_t parent) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1); /* the demo died before prctl */
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) _exit(126);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execv("/proc/self/exe", n->argv);
    static const char msg[] = "shoal demo: cannot exec /proc/self/exe\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

static int demo__start(struct demo__node *n, const sigset_t *old_mask) {
    char path[NODE_PATH_BYTES + 16];
    snprintf(path, sizeof(path), "%s/log", n->dir);
    int log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "shoal demo: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        fprintf(stderr, "shoal demo: cannot open /dev/null: %s\n", strerror(errno));
        close(log_fd);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) demo__child(n, log_fd, null_fd, old_mask, parent);
    int fork_errno = errno;
    close(log_fd);
    close(null_fd);
    if (pid < 0) {
        fprintf(stderr, "shoal demo: cannot start node %u: %s\n", n->id, strerror(fork_errno));
        return -1;
    }
    n->pid = pid;
    return 0;
}

static unsigned demo__running(const struct demo *d) {
    unsigned running = 0;
    for (unsigned i = 0; i < d->n_nodes; i++)
        running += d->nodes[i].pid != 0;
    return running;
}

static void demo__print_exit(const struct demo__node *n, int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        printf("node %u exited (status %d: killed by signal %d, %s)\n", n->id, 128 + sig, sig,
               strsignal(sig));
    } else {
        printf("node %u exited (status %d)\n", n->id, WEXITSTATUS(status));
    }
    fflush(stdout);
}

/* Collects every child that has exited; prints each unless quiet. */
static void demo__reap(struct demo *d, bool quiet) {
    for (unsigned round = 0; round <= DEMO_NODES_MAX; round++) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (unsigned i = 0; i < d->n_nodes; i++) {
            struct demo__node *n = &d->nodes[i];
            if (n->pid != pid) continue;
            n->pid = 0;
            if (!quiet) demo__print_exit(n, status);
        }
    }
}

static void demo__signal_all(const struct demo *d, int sig) {
    for (unsigned i = 0; i < d->n_nodes; i++) {
        if (d->nodes[i].pid != 0) kill(d->nodes[i].pid, sig);
    }
}

static double demo__now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* SIGTERM to every node; SIGKILL to those still running after
 * DEMO_STOP_SECONDS, or at once on a second SIGINT or SIGTERM. */
static void demo__stop(struct demo *d, const sigset_t *set) {
    unsigned running = demo__running(d);
    if (running > 0) {
        printf("shoal demo: stopping %u node%s\n", running, running == 1 ? "" : "s");
        fflush(stdout);
    }
    demo__signal_all(d, SIGTERM);
    double deadline = demo__now_seconds() + DEMO_STOP_SECONDS;
    for (;;) {
        demo__reap(d, true);
        double left = deadline - demo__now_seconds();
        if (demo__running(d) == 0 || left <= 0) break;
        struct timespec wait = {.tv_sec = (time_t)left,
                                .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        int sig = sigtimedwait(set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) break;
    }
    for (unsigned i = 0; i < d->n_nodes; i++) {
        struct demo__node *n = &d->nodes[i];
        if (n->pid == 0) continue;
        printf("node %u did not stop: killed with SIGKILL\n", n->id);
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
    }
    printf("shoal demo: stopped\n");
    fflush(stdout);
}

/* Waits for a signal, reporting nodes that exit. Runs until SIGINT, SIGTERM
 * or SIGHUP (returns 0) or until no node is left (returns 1): the one loop
 * here without a bound, as a supervisor's must be. */
static int demo__supervise(struct demo *d, const sigset_t *set) {
    for (;;) {
        struct timespec wait = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(set, NULL, &wait);
        demo__reap(d, false);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            demo__stop(d, set);
            return 0;
        }
        if (demo__running(d) == 0) {
            printf("shoal demo: every node has exited; see the logs in %s\n", d->dir);
            fflush(stdout);
            return 1;
        }
    }
}

/* Takes signals still pending (a third Ctrl-C), so that restoring the
 * mask does not kill the process after a clean stop. */
static void demo__drain(const sigset_t *set) {
    struct timespec zero = {0, 0};
    for (int i = 0; i < 8 && sigtimedwait(set, NULL, &zero) > 0; i++) {
    }
}

/* ---- waiting for the cluster ------------------------------------------ */

/* Whether the node on this port answers CLUSTER INFO with cluster_state:ok
 * (a leader for every shard it knows of) within about 500 ms. */
static bool demo__node_ready(unsigned port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char ask[] = "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n";
    char reply[2048] = "";
    size_t got = 0;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              write(fd, ask, sizeof(ask) - 1) == (ssize_t)(sizeof(ask) - 1);
    while (ok && got < sizeof(reply) - 1 && strstr(reply, "cluster_known_nodes") == NULL) {
        ssize_t r = read(fd, reply + got, sizeof(reply) - 1 - got);
        if (r <= 0) ok = false;
        else got += (size_t)r;
        reply[got] = '\0';
    }
    close(fd);
    return ok && strstr(reply, "cluster_state:ok") != NULL;
}

/* Waits until every node is ready (DEMO_READY_MS at most), so that a
 * command sent the moment the banner appears is served at once. Returns
 * the signal that interrupted the wait, or 0. */
static int demo__wait_ready(struct demo *d, const sigset_t *set) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned ready = 0; ready < d->n_nodes;) {
        ready = 0;
        for (unsigned i = 0; i < d->n_nodes; i++) ready += demo__node_ready(d->port + i);
        if (ready == d->n_nodes) break;
        struct timespec now, nap = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 > DEMO_READY_MS) {
            printf("shoal demo: %u of %u nodes have a leader for every shard after %d s; "
                   "see the logs\n", ready, d->n_nodes, DEMO_READY_MS / 1000);
            break;
        }
        int sig = sigtimedwait(set, NULL, &nap);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) return sig;
        demo__reap(d, false);
        if (demo__running(d) < d->n_nodes) break; /* said why; the banner still helps */
    }
    return 0;
}

/* ---- the command ----------------------------------------------------- */

static void demo__banner(const struct demo *d) {
    printf("shoal demo: %u node%s, data in %s\n", d->n_nodes, d->n_nodes == 1 ? "" : "s", d->dir);
    for (unsigned i = 0; i < d->n_nodes; i++) {
        printf("  node %u: redis-cli -p %u   (log: %s/log)\n", i + 1, d->port + i,
               d->nodes[i].dir);
    }
    printf("Any node accepts every command (followers forward to the leader).\n");
    printf("Stop with Ctrl-C. To restart a killed node, run the line in its "
           "%s/nodeI/cmdline; node 1's:\n  ",
           d->dir);
    demo__print_command(stdout, &d->nodes[0]);
    fflush(stdout);
}

/* Everything before the first fork; prints why on failure. */
static int demo__prepare(struct demo *d) {
    ssize_t len = readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1);
    if (len <= 0) {
        fprintf(stderr, "shoal demo: cannot find this binary: %s\n", strerror(errno));
        return -1;
    }
    d->exe[len] = '\0';
    if (demo__check_ports(d) != 0) return -1;
    if (demo__make_dirs(d) != 0) return -1;
    if (demo__command_lines(d) != 0) return -1;
    for (unsigned i = 0; i < d->n_nodes; i++) {
        if (demo__write_cmdline(&d->nodes[i]) != 0) return -1;
    }
    return 0;
}

int node_demo(int argc, char **argv) {
    assert(argc >= 0);
    struct demo *d = calloc(1, sizeof(*d)); /* about 20 KiB: not on the stack */
    if (d == NULL) return 1;
    int rc = demo__parse(d, argc, argv);
    if (rc == -1) rc = demo__prepare(d) == 0 ? -1 : 1;
    if (rc != -1) {
        free(d);
        return rc;
    }
    sigset_t set, old_mask;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old_mask);
    for (unsigned i = 0; i < d->n_nodes && rc == -1; i++) {
        if (demo__start(&d->nodes[i], &old_mask) != 0) rc = 1;
    }
    if (rc == 1) {
        demo__stop(d, &set);
    } else if (demo__wait_ready(d, &set) != 0) {
        demo__stop(d, &set);
        rc = 0;
    } else {
        demo__banner(d);
        rc = demo__supervise(d, &set);
    }
    demo__drain(&set);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    free(d);
    return rc;
}
