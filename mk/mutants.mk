# Mutation testing of the Raft core (scripts/mutants.py, docs/raft.md
# "Mutation testing"). Not part of `make test`: a full run takes hours.
#   make mutants                          every mutant, 2,000 seeds of each simulator
#   make mutants MUTANT_ARGS="--sample 200 --seeds 300 --nsim-seeds 200"
#   make mutants MUTANT_ARGS=--list       the mutants only
# Resumable: results are cached in tests/mutants/results.jsonl by mutant id.
# `make test` runs the mutants the survivors turned into regression canaries
# (tests/mutants/canaries/*.patch, scripts/mutant-canaries.sh).
MUTANT_ARGS ?=
.PHONY: mutants mutant-canaries
mutants: deps
	nice -n 19 /usr/bin/python3 scripts/mutants.py $(MUTANT_ARGS)

mutant-canaries:
	@bash scripts/mutant-canaries.sh

EXTRA_CHECKS += scripts/mutant-canaries.sh
