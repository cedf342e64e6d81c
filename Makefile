# The supported build is Linux with CGO_ENABLED=0 (see README.md).
GO ?= go
export CGO_ENABLED := 0

.PHONY: test deps fmt vet unit race demo dropdemo build clean bench bench-extra apps cluster-test deb

## test: everything CI runs: tools, gofmt, vet, all tests, race detector
test: deps fmt vet unit race

## deps: install missing tools the tests use (as root on Debian/Ubuntu)
deps:
	@scripts/deps.sh

fmt:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "NOTE: running as uid $$(id -u), not root: privilege tests will be SKIPPED (they run as root; CI sets MPM_REQUIRE_ROOT=1 so they cannot skip there)."; \
	fi
	$(GO) test -count=1 -timeout 30m ./...

race:
	@CGO_ENABLED=1 scripts/race.sh ./...

## demo: run the reference daemon on its built-in demo (127.0.0.1:8080)
demo: deps build
	bin/mpmd -demo

## dropdemo: print every thread's identity before and after a drop
dropdemo: build
	@if [ "$$(id -u)" -ne 0 ]; then echo "NOTE: not root: the demo can show the threads but not drop them; run as root to see the drop."; fi
	bin/dropdemo

## bench: mpmd vs the anchors on loopback, then bench-extra, into one
## results directory, then the targets table from both (root; see bench/README.md)
bench:
	@OUT=$(CURDIR)/bench/results/$$(date +%Y%m%d-%H%M%S); export OUT; rc=0; \
	bench/run.sh || rc=$$?; \
	bench/extra.sh || rc=$$?; \
	bench/targets.sh "$$OUT" || rc=$$?; \
	exit $$rc

## bench-extra: dispatch overhead, cold start, PSS of 100 identities (root, no anchors needed)
bench-extra:
	@OUT=$(CURDIR)/bench/results/$$(date +%Y%m%d-%H%M%S); export OUT; rc=0; \
	bench/extra.sh || rc=$$?; \
	bench/targets.sh "$$OUT" || rc=$$?; \
	exit $$rc

## apps: WordPress and DokuWiki (Debian's packages, installed if missing) under mpmd, cgi and fpm (root; not part of test)
apps: build
	scripts/apps.sh

## cluster-test: HAProxy (installed if missing) in front of three mpmd nodes with PROXY v2: routing, client address, a node killed, reloads, a binary upgrade (root; not part of test)
cluster-test:
	scripts/cluster.sh

build:
	$(GO) build -o bin/mpmd ./examples/mpmd
	$(GO) build -o bin/dropdemo ./examples/dropdemo

## deb: a Debian package in bin/ (dpkg-deb of a staged tree; VERSION=... sets its version)
deb:
	scripts/deb.sh bin

clean:
	rm -rf bin
