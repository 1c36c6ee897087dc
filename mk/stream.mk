# stream.mk: streams' unit test (tests/unit/test_stream.c), their memory
# figure (docs/kv.md: `make build/stream-mem && build/stream-mem`), and the
# canary of XREADGROUP's pending entries (scripts/stream-canary.sh).
$(BUILD)/test/test_stream: $(call test_objs,tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC)) | \
		$(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC))

$(BUILD)/stream-mem: tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -Wno-unused-function -DSTREAM_TEST_MEM_ONLY -Itests/unit -o $@ \
		tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC)

UNIT_TESTS += $(BUILD)/test/test_stream

# Canary: XREADGROUP that hands out entries without recording them as
# pending (-DCANARY_XREADGROUP_NO_PEL); test_cmd's recorded replies must
# catch it (XPENDING, XACK, XCLAIM differ from redis-server's).
$(BUILD)/canary/XREADGROUP_NO_PEL/test_cmd: $(call test_objs,tests/unit/test_cmd.c $(CMD_SRC) \
		$(CMD_DEP_SRC)) tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC) $(HDRS) tests/cmd/golden.txt
	@mkdir -p $(dir $@)
	$(call unit_canary,XREADGROUP_NO_PEL,tests/unit/test_cmd.c $(CMD_SRC) $(CMD_DEP_SRC),-lm)

TEST_DEPS += $(BUILD)/canary/XREADGROUP_NO_PEL/test_cmd $(BUILD)/canary/XREADGROUP_NO_PEL/shoal
EXTRA_CHECKS += scripts/stream-canary.sh
LIVE_CHECKS += scripts/stream-canary.sh

# Canary of test_stream: a node search by first ids rather than last ids
# (a range that starts inside a node skips it); stream_against_model must
# catch it (scripts/stream-canary.sh).
$(BUILD)/canary/STREAM_SEEK_BY_MASTER/test_stream: $(call test_objs,tests/unit/test_stream.c \
		$(KV_SRC) $(UTIL_SRC)) tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,STREAM_SEEK_BY_MASTER,tests/unit/test_stream.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/STREAM_SEEK_BY_MASTER/test_stream
