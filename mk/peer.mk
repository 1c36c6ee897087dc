# peer/: the node-to-node wire format (pure).
PEER_SRC := src/peer/peer_codec.c

$(BUILD)/test/test_peer_codec: $(call test_objs,tests/unit/test_peer_codec.c $(PEER_SRC) \
		$(RAFT_SRC) $(UTIL_SRC)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_peer_codec.c $(PEER_SRC) \
		$(RAFT_SRC) $(UTIL_SRC))

UNIT_TESTS += $(BUILD)/test/test_peer_codec
