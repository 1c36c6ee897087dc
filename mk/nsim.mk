# The whole-node simulator (src/nsim/): node_core.c and shard.c over a
# simulated disk, network and clients. `make test` runs NSIM_SEEDS seeds
# under ASan/UBSan and checks its canaries (scripts/nsim-check.sh).
NSIM_ALL := src/nsim/nsim.c src/nsim/nsim_io.c src/nsim/nsim_main.c src/nsim/nsim_queue.c \
            src/nsim/nsim_scenario.c \
            src/node/node_host.c src/node/node_core.c src/shard/shard.c src/node/block.c \
            src/node/eval.c src/node/slowlog.c $(wildcard src/script/*.c) \
            src/shard/shard_snap.c src/shard/snapshot.c src/meta/meta.c \
            src/node/config.c src/node/config_redis.c src/router/cluster_cmds.c src/router/slot.c src/meta/map.c \
            $(CMD_SRC) $(wildcard src/kv/*.c) \
            src/resp/resp.c src/wal/wal.c src/peer/peer_codec.c $(RAFT_SRC) $(UTIL_SRC) \
            $(CHECK_SRC)
NSIM_SEEDS ?= 300
NSIM_CANARIES := ACK_BEFORE_FSYNC ACK_UNSYNCED ADVANCE_BEFORE_FSYNC WAL_ACCEPT_BAD_CRC SNAPSHOT_SILENT_FAIL \
                 WRONG_SHARD QUIET_NO_WAKE ZADD_KEEPS_SCORE BLOCK_POP_WITHOUT_LOG \
                 XREADGROUP_NO_PEL META_NO_INSTALL META_STALE READ_PAST_WAITING_WRITES \
                 BEAT_EVERYONE QUIET_LEADER_NO_WAKE QUIET_WAKE_TRUSTS_OLD
# caught by the scenarios (shoal-nsim --scenarios), not by random seeds
NSIM_SCENARIO_CANARIES := ORPHANS_FAIL_AT_ONCE APPLY_BEFORE_FRAMES FLUSH_AFTER_APPLIES

$(BUILD)/shoal-nsim: $(call release_objs,$(NSIM_ALL)) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -o $@ $(call release_objs,$(NSIM_ALL)) -lm $(LUA_LIBS)

$(BUILD)/test/shoal-nsim: $(call test_objs,$(NSIM_ALL)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,$(NSIM_ALL)) -lm $(LUA_LIBS)

$(BUILD)/canary/%/shoal-nsim: $(call release_objs,$(NSIM_ALL)) $(NSIM_ALL) $(HDRS)
	@mkdir -p $(dir $@)
	$(call canary_build,,$(NSIM_ALL),-lm $(LUA_LIBS))

TEST_DEPS += $(BUILD)/test/shoal-nsim \
             $(foreach c,$(NSIM_CANARIES) $(NSIM_SCENARIO_CANARIES),$(BUILD)/canary/$(c)/shoal-nsim)
EXTRA_CHECKS += scripts/nsim-check.sh
export NSIM_SEEDS NSIM_CANARIES NSIM_SCENARIO_CANARIES

# make nsim-soak SECONDS=N: whole-node seeds for as long as asked (release build).
.PHONY: nsim-soak
nsim-soak: deps $(BUILD)/shoal-nsim
	$(BUILD)/shoal-nsim --seconds $(SECONDS) --quiet
