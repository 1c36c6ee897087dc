# peer/: the node-to-node wire format (pure).
PEER_SRC := src/peer/peer_codec.c

$(BUILD)/test/test_peer_codec: tests/unit/test_peer_codec.c $(PEER_SRC) $(RAFT_SRC) \
		$(UTIL_SRC) $(HDRS) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -Itests/unit -o $@ tests/unit/test_peer_codec.c $(PEER_SRC) \
		$(RAFT_SRC) $(UTIL_SRC)

UNIT_TESTS += $(BUILD)/test/test_peer_codec
