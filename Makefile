.PHONY: build test bench fuzz

build:
	CGO_ENABLED=0 go build -o edgeward ./cmd/edgeward

test:
	scripts/test.sh

# edgeward flows vs softflowd on the same capture, packets/s per core.
bench:
	scripts/bench.sh

# Each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)
