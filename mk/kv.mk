# kv.mk: the keyspace (src/kv/) and its unit test.
KV_SRC := src/kv/kv.c src/kv/kv_coll.c src/kv/kv_dict.c src/kv/kv_glob.c src/kv/kv_list.c \
          src/kv/kv_stream.c \
          src/kv/kv_snapshot.c src/kv/kv_zset.c src/kv/kv_func.c

$(BUILD)/test/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC))

# The memory figure for 1M keys (16-byte keys, 64-byte values), optimized and
# without sanitizers: `make build/kv-mem && build/kv-mem` (see docs/kv.md).
$(BUILD)/kv-mem: tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -DKV_TEST_MEM_ONLY -DKV_TEST_MEM_KEYS=1000000 -Itests/unit \
		-o $@ tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC)

UNIT_TESTS += $(BUILD)/test/test_kv

# Canary: changes that do not write their bucket into a snapshot walk first;
# test_kv must then fail (scripts/kv-canary.sh checks it, naming the test).
$(BUILD)/canary/KV_WALK_NO_TOUCH/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) \
		$(UTIL_SRC)) tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,KV_WALK_NO_TOUCH,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/KV_WALK_NO_TOUCH/test_kv
EXTRA_CHECKS += scripts/kv-canary.sh

# Canary: a collection's elements changed without writing its key's bucket
# into a snapshot walk first (scripts/kv-coll-canary.sh).
$(BUILD)/canary/KV_COLL_NO_TOUCH/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) \
		$(UTIL_SRC)) tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,KV_COLL_NO_TOUCH,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/KV_COLL_NO_TOUCH/test_kv
EXTRA_CHECKS += scripts/kv-coll-canary.sh

# Canary: packed hashes and sets that ignore the configured thresholds
# (hash-max-listpack-*, set-max-listpack-*); test_kv's
# layout_thresholds_follow_the_config must fail (scripts/layout-canary.sh).
$(BUILD)/canary/LAYOUT_FIXED/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) \
		$(UTIL_SRC)) tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,LAYOUT_FIXED,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/LAYOUT_FIXED/test_kv
EXTRA_CHECKS += scripts/layout-canary.sh

# Sorted sets against a naive model (tests/unit/test_zset.c), and their
# memory figures (docs/kv.md): `make build/zset-mem && build/zset-mem`.
$(BUILD)/test/test_zset: $(call test_objs,tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC)) | \
		$(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC)) -lm

$(BUILD)/zset-mem: tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -Wno-unused-function -DZSET_TEST_MEM_ONLY -Itests/unit -o $@ \
		tests/unit/test_zset.c \
		$(KV_SRC) $(UTIL_SRC) -lm

UNIT_TESTS += $(BUILD)/test/test_zset

# Canaries of test_zset: a packed int16 score that loses its high byte
# (scripts/zset-canary.sh: zset_against_model must fail), and a large set
# that searches one element after another, whose lex ranges over mixed
# scores then differ from a packed set's (searches_depend_on_the_elements_only).
ZSET_CANARIES := ZSET_INT16_LOW_BYTE ZSET_SEARCH_LINEAR
$(BUILD)/canary/ZSET_%/test_zset: $(call test_objs,tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC)) \
		tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,ZSET_$*,tests/unit/test_zset.c $(KV_SRC) $(UTIL_SRC),-lm)

TEST_DEPS += $(foreach c,$(ZSET_CANARIES),$(BUILD)/canary/$(c)/test_zset)
EXTRA_CHECKS += scripts/zset-canary.sh

# Canary: RESTORE without the payload's checksum check (kv_dump_check); test_kv
# must then fail (scripts/dump-canary.sh checks it, naming the test).
$(BUILD)/canary/DUMP_NO_CRC/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) \
		$(UTIL_SRC)) tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,DUMP_NO_CRC,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/DUMP_NO_CRC/test_kv
EXTRA_CHECKS += scripts/dump-canary.sh

# Hashes and sets against a naive model through their three encodings
# (tests/unit/test_hset.c), and their memory figures (docs/kv.md):
# `make build/hset-mem && build/hset-mem`.
$(BUILD)/test/test_hset: $(call test_objs,tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC)) | \
		$(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC)) -lm

$(BUILD)/hset-mem: tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -Wno-unused-function -DHSET_TEST_MEM_ONLY -Itests/unit -o $@ \
		tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC) -lm

UNIT_TESTS += $(BUILD)/test/test_hset

# Canary of test_hset: an intset that is not widened for a member that
# needs more bytes (scripts/hset-canary.sh: hset_against_model must fail).
$(BUILD)/canary/HSET_INTSET_NO_WIDEN/test_hset: $(call test_objs,tests/unit/test_hset.c \
		$(KV_SRC) $(UTIL_SRC)) tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,HSET_INTSET_NO_WIDEN,tests/unit/test_hset.c $(KV_SRC) $(UTIL_SRC),-lm)

TEST_DEPS += $(BUILD)/canary/HSET_INTSET_NO_WIDEN/test_hset
EXTRA_CHECKS += scripts/hset-canary.sh

# Canary of the lists' packed nodes: a split that cuts one item late, so an
# insertion lands after the item it should precede (scripts/list-canary.sh:
# lists_of_large_items_against_model must fail).
$(BUILD)/canary/LIST_SPLIT_OFF_BY_ONE/test_kv: $(call test_objs,tests/unit/test_kv.c $(KV_SRC) \
		$(UTIL_SRC)) tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,LIST_SPLIT_OFF_BY_ONE,tests/unit/test_kv.c $(KV_SRC) $(UTIL_SRC),)

TEST_DEPS += $(BUILD)/canary/LIST_SPLIT_OFF_BY_ONE/test_kv
EXTRA_CHECKS += scripts/list-canary.sh

# The lists' memory and speed figures (docs/kv.md): `make build/list-mem &&
# build/list-mem`.
$(BUILD)/list-mem: tests/unit/list_mem.c $(KV_SRC) $(UTIL_SRC) $(HDRS) | $(BUILD)
	$(CC) $(RELEASE_CFLAGS) -Itests/unit -o $@ tests/unit/list_mem.c $(KV_SRC) $(UTIL_SRC)
