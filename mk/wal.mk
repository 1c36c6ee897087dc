# wal.mk: the node's write-ahead log (src/wal/) and the file half of the io
# layer (src/io/): sources, the unit test, and its canary. Included by the
# Makefile after UNIT_TESTS and EXTRA_CHECKS are defined.
IO_SRC := src/io/io_posix.c src/io/io_fault.c
WAL_SRC := src/wal/wal.c
WAL_TEST_SRC := tests/unit/test_wal.c $(WAL_SRC) $(IO_SRC) src/util/crc32c.c

$(BUILD)/test/test_wal: $(call test_objs,$(WAL_TEST_SRC)) | $(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,$(WAL_TEST_SRC))

# Canary: a reader that skips the CRC check; test_wal must then fail
# (scripts/wal-canary.sh checks that it does, naming the test that caught it).
$(BUILD)/canary/WAL_ACCEPT_BAD_CRC/test_wal: $(call test_objs,$(WAL_TEST_SRC)) $(WAL_TEST_SRC) \
		$(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,WAL_ACCEPT_BAD_CRC,$(WAL_TEST_SRC),)

# Canary: no zeros written ahead of the records; zeros_ahead_of_the_records
# must then fail (scripts/wal-zeros-canary.sh).
$(BUILD)/canary/WAL_NO_ZEROS/test_wal: $(call test_objs,$(WAL_TEST_SRC)) $(WAL_TEST_SRC) \
		$(HDRS)
	@mkdir -p $(dir $@)
	$(call unit_canary,WAL_NO_ZEROS,$(WAL_TEST_SRC),)

UNIT_TESTS += $(BUILD)/test/test_wal
TEST_DEPS += $(BUILD)/canary/WAL_ACCEPT_BAD_CRC/test_wal $(BUILD)/canary/WAL_NO_ZEROS/test_wal
EXTRA_CHECKS += scripts/wal-canary.sh scripts/wal-zeros-canary.sh
