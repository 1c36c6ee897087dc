# kv.mk: the keyspace (src/kv/) and its unit test.
KV_SRC := src/kv/kv.c src/kv/kv_coll.c src/kv/kv_dict.c src/kv/kv_glob.c src/kv/kv_list.c src/kv/kv_snapshot.c

$(BUILD)/test/test_kv: tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -Itests/unit -o $@ tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC)

# The memory figure for 1M keys (16-byte keys, 64-byte values), optimized and
# without sanitizers: `make build/kv-mem && build/kv-mem` (see docs/kv.md).
$(BUILD)/kv-mem: tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -DKV_TEST_MEM_ONLY -DKV_TEST_MEM_KEYS=1000000 -Itests/unit \
		-o $@ tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC)

UNIT_TESTS += $(BUILD)/test/test_kv
