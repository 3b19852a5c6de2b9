# Prescient — see README.md. Every target works on a fresh machine with
# only Go and the module proxy; tools it needs are installed into ./bin.
GO        ?= go
BIN       := bin
PRESCIENT := $(BIN)/prescient
GOBIN_ABS := $(abspath $(BIN))
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION   := v0.0.0-20260908200009-22c9c6c9d4da
NFPM_VERSION        := v2.48.0
PRESCIENT_VERSION   ?= 0.1.0+git$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

.PHONY: all build run test test-deps soak lint bench fmt clean web package

all: build

build: web
	$(GO) build -o $(PRESCIENT) ./cmd/prescient

# The dashboard's chart library: uPlot from the npm registry (the version
# in web/package-lock.json), bundled into the binary with its licence
# (internal/web/assets/vendor, embedded by go:embed). Without it the
# dashboard works with tables only.
WEB_VENDOR := internal/web/assets/vendor
web: $(WEB_VENDOR)/uPlot.iife.min.js

$(WEB_VENDOR)/uPlot.iife.min.js: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(WEB_VENDOR)
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css $(WEB_VENDOR)/
	cp web/node_modules/uplot/LICENSE $(WEB_VENDOR)/uPlot.LICENSE
	touch $@

# The main job on embedded defaults.
run: build
	./scripts/run.sh

# Vet plus every test, with the race detector. Needs root for the real-cgroup
# tests (they skip, saying why, without it). Packages run one at a time (-p 1):
# several tests measure real CPU, memory, IO and network of real tasks, and on
# a 2-core machine another package's tasks running beside them skew what they
# measure. Tests within a package still run in parallel where they say so.
test: web test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 20m ./...
	$(MAKE) test-k8s

# The soak (minutes, not in CI): 500 tasks of mixed shapes, shell-wrapped
# OOM kills among them, the daemon killed with SIGKILL 100 times and
# restarted; every accepted task must end exactly once, recorded. A short
# version (40 tasks, 4 kills) runs in make test.
soak:
	PRESCIENT_SOAK=full $(GO) test -race -count=1 -timeout 60m -run '^TestSoak$$' -v ./internal/daemon/

# The .deb: the binary, the systemd unit, the default config (serve's
# defaults as root, from --print-config), man pages and shell completions
# generated from the command line, the example Prometheus and Grafana
# files; built by nfpm (from the Go module proxy, into ./bin). Into dist/.
package: web
	mkdir -p dist
	$(GO) build -trimpath -o dist/prescient ./cmd/prescient
	rm -rf dist/man dist/completions
	dist/prescient gendocs dist
	gzip -9nf dist/man/*.1
	env -u PRESCIENT_STATE_DIR -u PRESCIENT_SOCKET dist/prescient serve --state-dir /var/lib/prescient --print-config > dist/config.yaml
	test -x $(BIN)/nfpm || GOBIN=$(GOBIN_ABS) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	rm -f dist/*.deb
	PRESCIENT_VERSION=$(PRESCIENT_VERSION) PRESCIENT_ARCH=$$($(GO) env GOARCH) $(BIN)/nfpm package --config deploy/nfpm.yaml --packager deb --target dist/
	@ls -l dist/*.deb

# What the browser, Prometheus and package tests need (chromium and
# prometheus from Debian, nfpm into ./bin); what cannot be installed is
# said, and those tests skip saying why.
test-deps:
	./scripts/test-deps.sh

lint: test
	GOBIN=$(GOBIN_ABS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(BIN)/staticcheck ./...

# Benchmarks with fixed seeds; compare runs with benchstat (installed here).
bench:
	GOBIN=$(GOBIN_ABS) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.txt
	$(BIN)/benchstat bench.txt

# The real job mix (docs/benchmarks.md, "Real job mix"): 24 real programs run
# by no scheduler, Prescient (predict cold and warm, fit) and, where installed,
# Slurm, one runner at a time. Root, and the whole machine for ~35-40 minutes.
# Pick runners, repeats or jobs with BENCHMIX_FLAGS, e.g.
#   make bench-mix BENCHMIX_FLAGS='--repeat 3'
# Slurm runs when sbatch and SLURM_CONF are there (harness: JOBMIX_HARNESS).
BENCHMIX_FLAGS ?=
.PHONY: bench-mix
bench-mix: build
	$(GO) build -o $(BIN)/benchmix ./cmd/benchmix
	$(BIN)/benchmix --prescient $(PRESCIENT) $(BENCHMIX_FLAGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) bench.txt dist $(WEB_VENDOR) web/node_modules

# The Kubernetes parts (k8s/, docs/kubernetes.md). k8s-up brings up a local
# single-node cluster with Prescient installed (root; the cluster's binaries
# are built from the module proxy once per machine and cached, see
# scripts/k8s/build.sh); k8s-down stops it and undoes its host changes.
# test-k8s runs the k8s module's unit tests, then the real-cluster tests on a
# cluster of their own; when the binaries cannot be built it says SKIP, loudly.
.PHONY: k8s-up k8s-down test-k8s
k8s-up:
	./scripts/k8s/up.sh

k8s-down:
	./scripts/k8s/down.sh

test-k8s:
	cd k8s && $(GO) vet ./... && $(GO) test -race -count=1 ./internal/...
	@if ./scripts/k8s/build.sh; then \
		cd k8s && PRESCIENT_K8S_E2E=1 $(GO) test -count=1 -v -timeout 40m ./e2e/; \
	else \
		echo "SKIP test-k8s: the real-cluster tests did not run: scripts/k8s/build.sh could not build the cluster's binaries (output above)"; \
	fi
