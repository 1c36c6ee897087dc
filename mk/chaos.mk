# chaos.mk: the fault suite on real processes (docs/chaos.md). Needs root:
# network namespaces, nftables, NFQUEUE, tmpfs.
#   make chaos [SECONDS=N] [SEED=S]   the full schedule (default 600 s)
#   make chaos-canaries               the suite must catch each node canary
# make test runs scripts/chaos-test.sh: the checkers' unit tests, a 50 s run
# and short runs of the three canaries (about 2 minutes).
CHAOS_CANARIES := ACK_BEFORE_FSYNC FOLLOWER_READS SKIP_READ_INDEX
CHAOS_CANARY_BINS := $(foreach c,$(CHAOS_CANARIES),$(BUILD)/canary/$(c)/shoal)

.PHONY: chaos chaos-canaries
chaos: deps $(BUILD)/shoal
	@bash scripts/chaos.sh --seconds $(SECONDS) $(if $(SEED),--seed $(SEED))

chaos-canaries: deps $(BUILD)/shoal $(CHAOS_CANARY_BINS)
	@bash scripts/chaos-canaries.sh $(CHAOS_CANARIES)

TEST_DEPS += $(BUILD)/shoal $(CHAOS_CANARY_BINS)
EXTRA_CHECKS += scripts/chaos-test.sh
