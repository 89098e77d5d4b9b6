# Postern — see README.md. `make demo` and `make test` are the two commands
# a fresh machine needs.
SHELL := /bin/bash
CARGO ?= cargo
STACK_BASE ?= /tmp/postern-stack
DEMO_DIR ?= /tmp/postern-demo
BENCH_CORPUS ?= $(CURDIR)/target/bench-corpus

.PHONY: models quality test-ai soak build release test unit it lint fmt demo demo-stop bench stack stack-down check-config css web-deps browser-deps \
	fuzz deb rpm test-deb test-rpm cargo-deb cargo-generate-rpm compose-check docker-build up down logs

CARGO_DEB_VERSION ?= 3.8.0
CARGO_GENERATE_RPM_VERSION ?= 0.21.1
# `docker compose` (v2 plugin) where present, else Debian's docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILES ?= -f docker-compose.yml
IMAGE ?= postern
# `make docker-build DOCKER_FEATURES=ai IMAGE=postern:ai` for the AI tier.
DOCKER_FEATURES ?=

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --locked --release

## Every test: unit tests, then the integration binary against a real
## Dovecot, Rspamd and clamd on loopback (started by scripts/test-stack.sh)
## and the dashboard in headless Chromium.
test: stack web-deps browser-deps
	POSTERN_STACK_BASE=$(STACK_BASE) $(CARGO) test --locked --workspace
	$(MAKE) test-ai

## The AI tier (--features ai) with ONNX Runtime from the PyPI wheel: unit
## tests (golden vectors, Rust against Python) and the end-to-end test.
test-ai: stack
	lib=$$(bash scripts/onnxruntime.sh) && \
	  POSTERN_AI_RUNTIME=$$lib $(CARGO) test --locked --features ai --lib && \
	  POSTERN_AI_RUNTIME=$$lib POSTERN_STACK_BASE=$(STACK_BASE) $(CARGO) test --locked --features ai --test it ai_tier

## Postern's decisions on the validation split of ../shared/corpus, per
## class and source (QUALITY.md): debug build with the AI tier, the test
## stack's Rspamd and clamd. Writes bench/results/quality.json, regenerates
## QUALITY.md's tables and fails below bench/quality-floor.json.
## QUALITY_CAP messages per source at most (default 300: about 2,100 messages).
QUALITY_CAP ?= 300
QUALITY_WORK ?= /tmp/corpus
quality: stack
	python3 -m unittest discover -s scripts -p 'test_quality.py'
	$(CARGO) build --locked --features ai
	set -a; . $(STACK_BASE)/peers.env; set +a; \
	  POSTERN_RSPAMD_URL=$$RSPAMD_URL POSTERN_CLAMD_ADDR=127.0.0.1:$$CLAMD_PORT \
	  POSTERN_AI_RUNTIME=$$(bash scripts/onnxruntime.sh) POSTERN_AI_MODELS=$(CURDIR)/models \
	  python3 scripts/quality.py --postern $${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug/postern \
	    --corpus ../shared/corpus --work $(QUALITY_WORK) --cap $(QUALITY_CAP)

## Retrain the AI models from ../shared/corpus (see models/README.md).
models:
	pip3 install -q scikit-learn==1.9.1 skl2onnx==1.20.0 onnxruntime==1.31.1 numpy scipy
	python3 models/train.py

## playwright-core for the browser tests, from app/web/e2e/package-lock.json.
web-deps: app/web/e2e/node_modules/.package-lock.json

app/web/e2e/node_modules/.package-lock.json: app/web/e2e/package-lock.json
	command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix app/web/e2e --no-audit --no-fund --loglevel=error

## Debian's Chromium, driven headless by the browser tests.
browser-deps:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

## The full fault soak: 1000 messages, 50 connection cuts, 3 Dovecot restarts,
## 5 SIGKILLs of Postern; prints the summary and fails on any violation.
## (`make test` runs a short one.)
soak: stack
	SOAK_MESSAGES=$${SOAK_MESSAGES:-1000} SOAK_CUTS=$${SOAK_CUTS:-50} SOAK_DOVECOT_RESTARTS=$${SOAK_DOVECOT_RESTARTS:-3} \
	  SOAK_KILLS=$${SOAK_KILLS:-5} POSTERN_STACK_BASE=$(STACK_BASE) \
	  $(CARGO) test --locked --test it soak:: -- --nocapture

## The stable fuzz targets (parse, extract, URLs, archives, QR, PDF) for longer
## than `make test` gives them: FUZZ_SECONDS per target (default 300).
fuzz:
	FUZZ_ITERS=$${FUZZ_ITERS:-100000000} FUZZ_SECONDS=$${FUZZ_SECONDS:-300} \
	  $(CARGO) test --locked --release --test it fuzz:: -- --nocapture --test-threads 1

## Rebuild the committed CSS after changing templates or app/web/input.css.
## (Tailwind's lockfile lists native binaries per platform; where a registry
## mirror lacks some, `npm ci` refuses and `npm install` resolves them.)
css:
	npm ci --prefix app/web --no-audit --no-fund --loglevel=error || npm install --prefix app/web --no-audit --no-fund --loglevel=error
	bash app/web/build.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

stack:
	bash scripts/test-stack.sh up $(STACK_BASE) dovecot rspamd clamav cyrus courier mailutils postfix >/dev/null

stack-down:
	bash scripts/test-stack.sh down $(STACK_BASE)

## Local Dovecot + a seeded demo mailbox + Postern watching it.
demo: build
	bash scripts/demo.sh $(DEMO_DIR)

demo-stop:
	-[ -s $(DEMO_DIR)/postern.pid ] && kill $$(cat $(DEMO_DIR)/postern.pid) 2>/dev/null; rm -f $(DEMO_DIR)/postern.pid
	bash scripts/test-stack.sh down $(DEMO_DIR)/stack

## Scanning throughput/latency (local pipeline per core, Rspamd alone, full
## pipeline; bench/results/pipeline.json), the worst-case hostile message
## against its 2 s CPU bound (bench/results/hostile.json), quarantine-list latency with 100k
## stored scans and 50 clients (bench/results/dashboard.json), then the IMAP
## engine end to end (bench/results/engine.json). Optimised build: the first run compiles for a while.
bench: stack
	@if [ -f ../shared/corpus/mail-train.tar.xz ] && [ ! -d $(BENCH_CORPUS)/train ]; then \
	  echo "extracting ../shared/corpus/mail-train.tar.xz for the benchmarks"; \
	  mkdir -p $(BENCH_CORPUS) && tar -xJf ../shared/corpus/mail-train.tar.xz -C $(BENCH_CORPUS); fi
	@echo "load before: $$(uptime)"
	set -a; . $(STACK_BASE)/peers.env; set +a; \
	  RSPAMD_URL=$$RSPAMD_URL CLAMD_ADDR=127.0.0.1:$$CLAMD_PORT POSTERN_AI_RUNTIME=$$(bash scripts/onnxruntime.sh) \
	  BENCH_CORPUS=$$([ -d $(BENCH_CORPUS)/train ] && echo $(BENCH_CORPUS)/train) \
	  $(CARGO) bench --locked --features ai --bench pipeline
	@echo "load before: $$(uptime)"
	$(CARGO) bench --locked --bench hostile
	@echo "load before: $$(uptime)"
	$(CARGO) bench --locked --bench dashboard
	@echo "load before: $$(uptime)"
	$(CARGO) bench --locked --bench intel
	@echo "load before: $$(uptime)"
	$(CARGO) bench --locked --bench logingest
	@echo "load before: $$(uptime)"
	PEERS_BASE=$(STACK_BASE) BENCH_CORPUS=$$([ -d $(BENCH_CORPUS)/train ] && echo $(BENCH_CORPUS)/train) \
	  $(CARGO) bench --locked --bench milter
	@echo "load before: $$(uptime)"
	PEERS_BASE=$(STACK_BASE) BENCH_CORPUS=$$([ -d $(BENCH_CORPUS)/train ] && echo $(BENCH_CORPUS)/train) \
	  $(CARGO) bench --locked --bench e2e
	@echo "load after: $$(uptime)"
	@cat bench/results/summary.md

## Packages. `make deb` builds the release binary and target/debian/postern_*.deb;
## `make rpm` the same for target/generate-rpm/postern-*.rpm.
deb: cargo-deb
	$(CARGO) deb -p postern --locked

rpm: cargo-generate-rpm release
	$(CARGO) generate-rpm -p app

cargo-deb:
	@command -v cargo-deb >/dev/null || $(CARGO) install --locked cargo-deb --version $(CARGO_DEB_VERSION)

cargo-generate-rpm:
	@command -v cargo-generate-rpm >/dev/null || $(CARGO) install --locked cargo-generate-rpm --version $(CARGO_GENERATE_RPM_VERSION)

## The .deb acceptance test (root; installs, checks and purges the package).
## It packages the debug binary `make test` built; see packaging/test-deb.sh.
test-deb: cargo-deb
	bash packaging/test-deb.sh

## The .rpm inspection test (rpm -qlp, modes, owners, %config, scriptlets;
## nothing is installed). It packages the same debug binary; see
## packaging/test-rpm.sh.
test-rpm: cargo-generate-rpm
	bash packaging/test-rpm.sh

## Validate the compose files with Debian's docker-compose (images are not pulled).
compose-check:
	@command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
	POSTERN_CONFIG_DIR=./packaging/config docker-compose -f docker-compose.yml config -q
	POSTERN_CONFIG_DIR=./packaging/config docker-compose -f docker-compose.yml -f docker-compose.ai.yml config -q
	@echo "compose files OK"

## Containers: `make up` runs Postern, Rspamd and ClamAV (docker-compose.yml;
## add the AI build with COMPOSE_FILES="-f docker-compose.yml -f docker-compose.ai.yml").
docker-build:
	docker build --build-arg FEATURES=$(DOCKER_FEATURES) -t $(IMAGE) .

up:
	@test -f $${POSTERN_CONFIG_DIR:-./config}/postern.env -a -f $${POSTERN_CONFIG_DIR:-./config}/config.yaml || { \
	  echo "no $${POSTERN_CONFIG_DIR:-./config}/postern.env or config.yaml yet:"; \
	  echo "  mkdir -p config && cp packaging/config/config.yaml packaging/config/postern.env config/"; \
	  echo "  make docker-build && docker run --rm $(IMAGE) gen-secrets   # the key for config/postern.env"; exit 1; }
	$(COMPOSE) $(COMPOSE_FILES) up -d --build

down:
	$(COMPOSE) $(COMPOSE_FILES) down

logs:
	$(COMPOSE) $(COMPOSE_FILES) logs -f --tail=200
