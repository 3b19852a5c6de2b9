# Prescient — see README.md. Every target works on a fresh machine with
# only Go and the module proxy; tools it needs are installed into ./bin.
GO        ?= go
BIN       := bin
PRESCIENT := $(BIN)/prescient
GOBIN_ABS := $(abspath $(BIN))
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION   := v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: all build run test lint bench fmt clean

all: build

build:
	$(GO) build -o $(PRESCIENT) ./cmd/prescient

# The main job on embedded defaults.
run: build
	./scripts/run.sh

# Vet plus every test, with the race detector. Needs root for the real-cgroup
# tests (they skip, saying why, without it). Packages run one at a time (-p 1):
# several tests measure real CPU, memory, IO and network of real tasks, and on
# a 2-core machine another package's tasks running beside them skew what they
# measure. Tests within a package still run in parallel where they say so.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 20m ./...

lint: test
	GOBIN=$(GOBIN_ABS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(BIN)/staticcheck ./...

# Benchmarks with fixed seeds; compare runs with benchstat (installed here).
bench:
	GOBIN=$(GOBIN_ABS) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.txt
	$(BIN)/benchstat bench.txt

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) bench.txt
