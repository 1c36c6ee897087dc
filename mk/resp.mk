# resp: the RESP2/RESP3 request parser and reply writer (src/resp/).
RESP_SRC := src/resp/resp.c

$(BUILD)/test/test_resp: $(call test_objs,tests/unit/test_resp.c $(RESP_SRC)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_resp.c $(RESP_SRC)) -lm

UNIT_TESTS += $(BUILD)/test/test_resp
# scripts/fuzz-resp.sh builds the libFuzzer target with clang-14 itself, runs
# it on tests/fuzz/corpus/resp (about 20 s) and checks that the canary build
# (-DCANARY_RESP_OVERREAD) crashes within 60 s.
EXTRA_CHECKS += scripts/fuzz-resp.sh

.PHONY: fuzz-resp
# make fuzz-resp SECONDS=N: fuzz the parser for N seconds (default $(SECONDS)).
fuzz-resp:
	@bash scripts/fuzz-resp.sh $(SECONDS)
