# bench.mk: `shoal bench` (src/bench/, linked into the shoal binary through
# NODE_SRC in shoal.mk), its unit test, and `make bench` / `make bench-quick`
# (bench/bench.py: shoal, redis-server, Redis Cluster and etcd side by side),
# and `make bench-large` (bench/bench_large.py: shoal against redis-server at
# large key counts).
BENCH_SRC := src/bench/bench.c src/bench/bench_loop.c src/bench/bench_proto.c

$(BUILD)/test/test_bench: $(call test_objs,tests/unit/test_bench.c src/bench/bench_proto.c) | \
		$(BUILD)/test
	$(CC) $(TEST_CFLAGS) -o $@ $(call test_objs,tests/unit/test_bench.c src/bench/bench_proto.c)

UNIT_TESTS += $(BUILD)/test/test_bench

# A shoal with frame pointers for `perf record -g` (bench/profile.sh). SHOAL_ALL
# is defined by shoal.mk, read after this file: only the recipe may use it, so
# the rule depends on build/shoal, which depends on the sources.
$(BUILD)/prof/shoal: $(BUILD)/shoal
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -fno-omit-frame-pointer -o $@ $(SHOAL_ALL) $(SHOAL_LIBS) -ljemalloc

.PHONY: bench bench-quick bench-profile bench-check bench-large
# The full run (about 20 minutes on 2 cores): bench/results/<date>-bench.md/.png
bench:
	@bash scripts/deps-bench.sh
	@$(MAKE) --no-print-directory $(BUILD)/shoal
	@/usr/bin/python3 bench/bench.py

# The reduced run (under 2 minutes): prints the ratio table.
bench-quick:
	@bash scripts/deps-bench.sh
	@$(MAKE) --no-print-directory $(BUILD)/shoal
	@/usr/bin/python3 bench/bench.py --quick

# shoal against redis-server at 1M, 5M and 20M keys of 100-byte values
# (throughput ratios, snapshots, memory during a snapshot, restart, a new
# replica): bench/results/<date>-bench-large.md/.json. Not part of make test.
# Flags for bench/bench_large.py: make bench-large BENCH_LARGE_FLAGS="--sizes 1000000".
bench-large:
	@bash scripts/deps-bench.sh
	@$(MAKE) --no-print-directory $(BUILD)/shoal
	@/usr/bin/python3 bench/bench_large.py $(BENCH_LARGE_FLAGS)

# shoal bench against redis-benchmark on one redis-server: the ratios.
bench-check:
	@bash scripts/deps-bench.sh
	@$(MAKE) --no-print-directory $(BUILD)/shoal
	@/usr/bin/python3 bench/check_loadgen.py

# perf record -g on the shoal leader under SET and GET (docs/performance.md).
bench-profile:
	@bash scripts/deps-bench.sh
	@$(MAKE) --no-print-directory $(BUILD)/shoal $(BUILD)/prof/shoal
	@/usr/bin/python3 bench/profile.py
