# chaos.mk: the fault suite on real processes (docs/chaos.md). Needs root:
# network namespaces, nftables, NFQUEUE, tmpfs.
#   make chaos [SECONDS=N] [SEED=S] [SHARDS=S] [REPLICAS=R] [NODES=N]
#       the full schedule (default 600 s) on NODES nodes (5) holding SHARDS
#       Raft groups (8) of REPLICAS replicas (3); SHARDS=1 is the layout
#       before sharding (one group on every node, unless REPLICAS is given)
#   make chaos-canaries               the suite must catch each node canary
# make test runs scripts/chaos-test.sh: the checkers' unit tests, a 50 s run
# and short runs of the three canaries (about 2 minutes).
# LEASE_TICKS_BY_CALLBACK runs with --lease-read (make chaos-canaries only;
# make test catches it with tests/integration/test_lease.py)
CHAOS_CANARIES := ACK_BEFORE_FSYNC FOLLOWER_READS SKIP_READ_INDEX LEASE_TICKS_BY_CALLBACK
CHAOS_CANARY_BINS := $(foreach c,$(CHAOS_CANARIES),$(BUILD)/canary/$(c)/shoal)
SHARDS ?= 8
NODES ?= 5

.PHONY: chaos chaos-canaries
chaos: deps $(BUILD)/shoal
	@bash scripts/chaos.sh --seconds $(SECONDS) $(if $(SEED),--seed $(SEED)) \
	  --nodes $(NODES) --shards $(SHARDS) $(if $(REPLICAS),--replicas $(REPLICAS))

chaos-canaries: deps $(BUILD)/shoal $(CHAOS_CANARY_BINS)
	@CHAOS_SHARDS=$(SHARDS) bash scripts/chaos-canaries.sh $(CHAOS_CANARIES)

TEST_DEPS += $(BUILD)/shoal $(CHAOS_CANARY_BINS)
EXTRA_CHECKS += scripts/chaos-test.sh
LIVE_CHECKS += scripts/chaos-test.sh
