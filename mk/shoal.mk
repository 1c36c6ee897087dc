# The shoal binary: `shoal server` (a node) and `shoal demo`.
NODE_SRC := src/node/node.c src/node/node_host.c src/node/node_core.c src/node/client_cmds.c \
            src/node/multi.c src/node/eval.c src/node/block.c src/node/wait.c src/node/memory.c \
            src/node/pubsub.c src/node/info.c src/node/config.c src/node/config_redis.c \
            src/node/slowlog.c src/node/monitor.c src/node/demo.c src/node/main.c \
            src/transport/client.c src/transport/peer.c src/transport/proxy.c \
            src/shard/shard.c src/shard/shard_snap.c src/shard/snapshot.c \
            src/meta/meta.c src/meta/meta_cmd.c src/meta/map.c \
            src/router/route.c src/router/slot.c src/router/gather.c src/router/cluster_cmds.c
NODE_SRC += $(BENCH_SRC)
SCRIPT_SRC := $(wildcard src/script/*.c)
SHOAL_ALL := $(NODE_SRC) $(CMD_SRC) $(SCRIPT_SRC) \
             $(wildcard src/kv/*.c) src/resp/resp.c src/wal/wal.c src/io/io_posix.c \
             src/peer/peer_codec.c $(RAFT_SRC) $(UTIL_SRC)
SHOAL_LIBS := -luv -lm -lpthread $(LUA_LIBS)
# The release binary allocates with jemalloc (Debian's libjemalloc): GETs
# cost 15-25% less CPU than on glibc's malloc, whose per-size caches hold 7
# blocks and send the rest of a pipelined burst's small allocations through
# _int_malloc (11% of the nodes' time under GET, perf; docs/performance.md).
# The sanitized builds keep ASan's allocator.
$(BUILD)/shoal: $(call release_objs,$(SHOAL_ALL)) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -o $@ $(call release_objs,$(SHOAL_ALL)) $(SHOAL_LIBS) -ljemalloc

$(BUILD)/test/shoal: $(call test_objs,$(SHOAL_ALL)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,$(SHOAL_ALL)) $(SHOAL_LIBS)

# make test runs the integration suite against the sanitized binary, but
# for test_large.py's 300 MiB snapshot test, which runs the release binary
# (a link only: the node canaries below build its objects anyway).
TEST_DEPS += $(BUILD)/test/shoal $(BUILD)/shoal
EXTRA_CHECKS += scripts/integration.sh
LIVE_CHECKS += scripts/integration.sh

# Node canaries (deliberate bugs for the fault suites; see docs/node.md):
# ACK_BEFORE_FSYNC (OK before the write is durable and committed),
# FOLLOWER_READS (followers answer reads from their replica),
# SKIP_READ_INDEX (a leader reads without confirming its leadership).
$(BUILD)/canary/%/shoal: $(call release_objs,$(SHOAL_ALL)) $(SHOAL_ALL) $(HDRS)
	@mkdir -p $(dir $@)
	$(call canary_build,,$(SHOAL_ALL),$(SHOAL_LIBS))

# The blocking pops' canary: the leader pops for a blocked client without
# a log entry; the work-queue check of test_blocking.py must catch it
# (scripts/block-canary.sh).
TEST_DEPS += $(BUILD)/canary/BLOCK_POP_WITHOUT_LOG/shoal
EXTRA_CHECKS += scripts/block-canary.sh
LIVE_CHECKS += scripts/block-canary.sh

# requirepass's canary: commands run before AUTH; test_auth.py must catch
# it (scripts/auth-canary.sh).
TEST_DEPS += $(BUILD)/canary/AUTH_SKIPPED/shoal
EXTRA_CHECKS += scripts/auth-canary.sh
LIVE_CHECKS += scripts/auth-canary.sh

# Lease reads' canary: Raft ticked once per timer callback, however long
# the loop was held; test_lease.py must catch the stale read it serves
# after a SIGSTOP (scripts/lease-canary.sh).
TEST_DEPS += $(BUILD)/canary/LEASE_TICKS_BY_CALLBACK/shoal
EXTRA_CHECKS += scripts/lease-canary.sh
LIVE_CHECKS += scripts/lease-canary.sh

# WAIT's canary: a leader that counts every follower whatever it holds;
# the WAIT test of test_generic.py must catch it (scripts/wait-canary.sh).
TEST_DEPS += $(BUILD)/canary/WAIT_ANY_MATCH/shoal
EXTRA_CHECKS += scripts/wait-canary.sh
LIVE_CHECKS += scripts/wait-canary.sh

# Scripting's node canary: the leader keeps a script's writes from its run
# (no undo), so they are applied before the entry commits and again when
# it applies; test_scripting.py must catch it (scripts/script-canary.sh).
TEST_DEPS += $(BUILD)/canary/SCRIPT_NO_UNDO/shoal
EXTRA_CHECKS += scripts/script-canary.sh
LIVE_CHECKS += scripts/script-canary.sh

# The access clock's canary: no command touches its keys' clocks; the
# OBJECT IDLETIME test of test_idletime.py must catch it
# (scripts/idletime-canary.sh).
TEST_DEPS += $(BUILD)/canary/NO_TOUCH/shoal
EXTRA_CHECKS += scripts/idletime-canary.sh
LIVE_CHECKS += scripts/idletime-canary.sh

# Functions' canary: FUNCTION LOAD applied on the receiving node only, not
# through the log; test_functions.py must catch it (scripts/function-canary.sh).
TEST_DEPS += $(BUILD)/canary/FUNCTION_LOCAL_ONLY/shoal
EXTRA_CHECKS += scripts/function-canary.sh
LIVE_CHECKS += scripts/function-canary.sh

# The map pull's canary: a node outside group 0 never pulls the map;
# test_many_nodes.py must catch it (scripts/pull-canary.sh).
TEST_DEPS += $(BUILD)/canary/META_NO_PULL/shoal
EXTRA_CHECKS += scripts/pull-canary.sh
LIVE_CHECKS += scripts/pull-canary.sh

# The WAL unpin rule's canary: busy groups are made to snapshot when they
# keep the oldest WAL segment, as quiet ones are; test_protocol.py's
# snapshot-count test must catch it by the forced count (scripts/snap-canary.sh).
TEST_DEPS += $(BUILD)/canary/SNAP_FORCE_BUSY/shoal
EXTRA_CHECKS += scripts/snap-canary.sh
LIVE_CHECKS += scripts/snap-canary.sh

# The beat rule's canary: every node beats all of its peers, not only the
# nodes it shares a group with; test_many_nodes.py must catch it
# (scripts/beat-canary.sh). shoal-nsim catches it too (mk/nsim.mk).
TEST_DEPS += $(BUILD)/canary/BEAT_EVERYONE/shoal
EXTRA_CHECKS += scripts/beat-canary.sh
LIVE_CHECKS += scripts/beat-canary.sh

# The quiet leader's step-down rule's canary: a lost link wakes only the
# groups that peer led here, not those this node leads with a replica
# there, so a quiet leader whose followers died leads on alone;
# test_sharding.py's quiet-leader test must catch it
# (scripts/quiet-canary.sh). shoal-nsim catches it too (mk/nsim.mk).
TEST_DEPS += $(BUILD)/canary/QUIET_LEADER_NO_WAKE/shoal
EXTRA_CHECKS += scripts/quiet-canary.sh
LIVE_CHECKS += scripts/quiet-canary.sh

# maxmemory's canary: a leader looks at its own node's memory only, not at
# the nodes of the shard's other replicas; test_maxmemory.py must catch it
# (scripts/oom-canary.sh).
TEST_DEPS += $(BUILD)/canary/OOM_LOCAL_ONLY/shoal
EXTRA_CHECKS += scripts/oom-canary.sh
LIVE_CHECKS += scripts/oom-canary.sh

# The pipeline order's canary: a shard's command goes to its new leader
# while an earlier one of that shard is in flight on the old route;
# test_pipeline_order.py must catch it (scripts/pipeline-canary.sh).
TEST_DEPS += $(BUILD)/canary/PIPELINE_SHARD_ROUTE/shoal
EXTRA_CHECKS += scripts/pipeline-canary.sh
LIVE_CHECKS += scripts/pipeline-canary.sh

# MONITOR's canary: passwords shown unredacted; test_monitor.py must catch
# it (scripts/monitor-canary.sh).
TEST_DEPS += $(BUILD)/canary/MONITOR_NO_REDACT/shoal
EXTRA_CHECKS += scripts/monitor-canary.sh
LIVE_CHECKS += scripts/monitor-canary.sh

# The per-turn budget's canary: a connection runs its whole input in one
# loop turn; test_pipeline_order.py must catch it (scripts/turn-canary.sh).
TEST_DEPS += $(BUILD)/canary/NO_TURN_BUDGET/shoal
EXTRA_CHECKS += scripts/turn-canary.sh
LIVE_CHECKS += scripts/turn-canary.sh

# The blocked pipeline's canary: a later command runs while the
# connection's forwarded BLPOP is blocked; test_pipeline_order.py must
# catch it (scripts/blocked-canary.sh).
TEST_DEPS += $(BUILD)/canary/BLOCKED_OVERTAKEN/shoal
EXTRA_CHECKS += scripts/blocked-canary.sh
LIVE_CHECKS += scripts/blocked-canary.sh
