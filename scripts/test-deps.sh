#!/usr/bin/env bash
# test-deps.sh installs what the dashboard, metrics and package tests need
# beyond Go: Debian's chromium (the browser test, driven by chromedp) and
# prometheus (the scrape test), and nfpm (the .deb, from the Go module proxy,
# into ./bin). The chart library comes from npm through `make web`.
#
# It never fails the build: what it cannot install is said here, and the
# tests that need it skip saying why. Run by `make test`; idempotent and
# quick once everything is there.
set -u
cd "$(dirname "$0")/.."
mkdir -p bin
NFPM_VERSION=${NFPM_VERSION:-v2.48.0}

pkgs=()
command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
command -v prometheus >/dev/null 2>&1 || pkgs+=(prometheus)
if ((${#pkgs[@]})); then
	if [ "$(id -u)" != 0 ]; then
		echo "test-deps: not root, cannot apt-get install ${pkgs[*]}: the tests that need them will skip"
	elif ! command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: no apt-get, cannot install ${pkgs[*]}: the tests that need them will skip"
	else
		echo "test-deps: installing ${pkgs[*]} from Debian (log in bin/test-deps-apt.log)"
		# Services are not started by the install where policy-rc.d says so
		# (containers); prometheus's own service is never needed here.
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" fonts-dejavu-core; } >bin/test-deps-apt.log 2>&1; then
			echo "test-deps: apt-get install ${pkgs[*]} failed (see bin/test-deps-apt.log): the tests that need them will skip"
		fi
	fi
fi

if [ ! -x bin/nfpm ]; then
	echo "test-deps: installing nfpm $NFPM_VERSION into bin/ (go install)"
	if ! GOBIN="$PWD/bin" nice -n 10 go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" >bin/test-deps-nfpm.log 2>&1; then
		echo "test-deps: go install nfpm failed (see bin/test-deps-nfpm.log): the package test will skip"
	fi
fi
exit 0
