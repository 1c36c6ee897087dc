# node.mk: the node's configuration (src/node/config.c) and its unit test.
# The `shoal` binary (main.c, config.c, demo.c, node.c, libuv) has its rule
# with the node's sources.
NODE_CONFIG_SRC := src/node/config.c src/node/config_redis.c

$(BUILD)/test/test_config: $(call test_objs,tests/unit/test_config.c $(NODE_CONFIG_SRC)) | \
		$(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_config.c $(NODE_CONFIG_SRC))

UNIT_TESTS += $(BUILD)/test/test_config

# The cluster map: placement, the encoding group 0 stores, group 0's voters.
$(BUILD)/test/test_map: tests/unit/test_map.c src/meta/map.c src/router/slot.c $(HDRS) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -Itests/unit -o $@ tests/unit/test_map.c src/meta/map.c src/router/slot.c

UNIT_TESTS += $(BUILD)/test/test_map
