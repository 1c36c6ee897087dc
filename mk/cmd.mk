# cmd/: the command table and keyspace commands (pure). Its test replays
# replies recorded from a real redis-server (tests/cmd/golden.txt).
CMD_SRC := $(wildcard src/cmd/*.c)
# kv and resp sources by wildcard: their fragments sort after this one.
CMD_DEP_SRC := $(wildcard src/kv/*.c) src/resp/resp.c src/util/crc32c.c src/router/slot.c

$(BUILD)/test/test_cmd: $(call test_objs,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC)) \
		tests/cmd/golden.txt | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC)) -lm

UNIT_TESTS += $(BUILD)/test/test_cmd

# Re-records tests/cmd/golden.txt from the redis-server on this machine.
.PHONY: golden
golden: deps
	/usr/bin/python3 tests/cmd/gen_golden.py

# Canary: SHOAL.EXEC that ignores the watched digests; test_cmd must fail
# (scripts/cmd-canary.sh checks it, naming the test).
$(BUILD)/canary/WATCH_IGNORED/test_cmd: $(call test_objs,tests/unit/test_cmd.c $(CMD_SRC) \
		$(CMD_DEP_SRC)) tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC) $(HDRS) tests/cmd/golden.txt
	@mkdir -p $(dir $@)
	$(call unit_canary,WATCH_IGNORED,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC),-lm)

TEST_DEPS += $(BUILD)/canary/WATCH_IGNORED/test_cmd
EXTRA_CHECKS += scripts/cmd-canary.sh

# Canary: SHOAL.SCRIPT that ignores the digests of the script's keys
# (scripts/script-canary.sh, with the node's SCRIPT_NO_UNDO in shoal.mk).
$(BUILD)/canary/SCRIPT_DIGEST_IGNORED/test_cmd: $(call test_objs,tests/unit/test_cmd.c \
		$(CMD_SRC) $(CMD_DEP_SRC)) tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC) $(HDRS) \
		tests/cmd/golden.txt
	@mkdir -p $(dir $@)
	$(call unit_canary,SCRIPT_DIGEST_IGNORED,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC),-lm)

TEST_DEPS += $(BUILD)/canary/SCRIPT_DIGEST_IGNORED/test_cmd

# The Lua engine (src/script/) over a keyspace: undo, entries, time limit.
$(BUILD)/test/test_script: $(call test_objs,tests/unit/test_script.c $(wildcard src/script/*.c) \
		$(CMD_SRC) $(CMD_DEP_SRC)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_script.c $(wildcard src/script/*.c) \
		$(CMD_SRC) $(CMD_DEP_SRC)) -lm $(LUA_LIBS)

UNIT_TESTS += $(BUILD)/test/test_script

# Canary: every HyperLogLog written dense (-DCANARY_HLL_ALWAYS_DENSE, the
# old behaviour); test_cmd's hll_sparse_until_redis_limits and
# tests/integration/test_hll.py's byte comparison with redis-server must
# catch it (scripts/hll-canary.sh).
$(BUILD)/canary/HLL_ALWAYS_DENSE/test_cmd: $(call test_objs,tests/unit/test_cmd.c $(CMD_SRC) \
		$(CMD_DEP_SRC)) tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC) $(HDRS) tests/cmd/golden.txt
	@mkdir -p $(dir $@)
	$(call unit_canary,HLL_ALWAYS_DENSE,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC),-lm)

TEST_DEPS += $(BUILD)/canary/HLL_ALWAYS_DENSE/test_cmd $(BUILD)/canary/HLL_ALWAYS_DENSE/shoal
EXTRA_CHECKS += scripts/hll-canary.sh
LIVE_CHECKS += scripts/hll-canary.sh
