# The front door. CMake is the build; these targets are the commands people type.
#   make run     install missing packages, build, start the API on http://127.0.0.1:8000
#   make test    install missing packages, build with sanitizers, run every suite against a real PostgreSQL
#   make test-neonlike  the same suites against a server shaped like a Neon branch (TLS verify-full, SCRAM,
#                a non-superuser owner, pgbouncer with TLS; tests/harness/cluster --neonlike)
#   make test-stress    make test (STRESS_TARGET=test-neonlike: that one) with stress-ng loading every core
#                beside it, as CI runs it (CI=true); STRESS_CPU workers, 2 per core by default
#                (tests/harness/stress, docs/testing.md)
.PHONY: all run build test test-neonlike deps db-start db-stop db-reset migrate format format-check bench clean install
.PHONY: migrate-status migrate-up migrate-down migrate-redo migrate-check migrate-dump migrate-new
.PHONY: migrate-diff migrate-lint

BUILD      ?= build/release
TEST_BUILD ?= build/test
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# suites at once: 2 per core, they mostly wait (tests/CMakeLists.txt, docs/testing.md)
CTEST_JOBS ?= $(shell echo $$(( 2 * $(JOBS) )))
PREFIX     ?= $(CURDIR)

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

run: build
	@BUILD=$(BUILD) scripts/run

test: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) -- --no-print-directory
	@tests/harness/cluster ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(CTEST_JOBS) $(CTEST_ARGS)

# labels test-neonlike leaves out (a regular expression): the suites with a private cluster of
# their own never reach the Neon-shaped server
NEONLIKE_SKIP ?= private-cluster
test-neonlike: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) -- --no-print-directory
	@tests/harness/selftest
	@tests/harness/cluster --neonlike --scan $(TEST_BUILD)/Testing/Temporary/LastTest.log \
	  ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(CTEST_JOBS) -LE '$(NEONLIKE_SKIP)' $(CTEST_ARGS)

.PHONY: test-stress
test-stress: deps
	@scripts/install-deps --stress
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) -- --no-print-directory
	@CI=true tests/harness/stress $(MAKE) --no-print-directory $(or $(STRESS_TARGET),test)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

db-start:
	@scripts/pg-cluster start .devdb >/dev/null && echo "dev database running: $$(scripts/pg-cluster url .devdb | sed 's/:[^:@]*@/:****@/')"

db-stop:
	@scripts/pg-cluster stop .devdb

db-reset:
	@scripts/pg-cluster stop .devdb; rm -rf .devdb; echo "removed .devdb/ (make run creates it again)"

migrate: build
	@BUILD=$(BUILD) scripts/run --migrate-only

# The migrate CLI against the database `make run` uses (.env's DATABASE_URL, else .devdb/):
#   make migrate-status | migrate-up | migrate-down | migrate-redo | migrate-check | migrate-dump
#   make migrate-new NAME=add_bookmarks      (ARGS="..." adds options: make migrate-up ARGS=--dry-run)
#   make migrate-diff NAME=add_bookmarks     the next migration(s) from migrations/schema.sql (scratch
#                                            databases on MIGRATE_DEV_URL, else the .devdb/ cluster)
#   make migrate-lint                        lint every file of migrations/ (no database needed)
migrate-status migrate-up migrate-down migrate-redo migrate-check migrate-dump: build
	@BUILD=$(BUILD) scripts/migrate $(@:migrate-%=%) $(ARGS)

migrate-new: build
	@test -n "$(NAME)" || { echo "usage: make migrate-new NAME=add_bookmarks" >&2; exit 2; }
	@BUILD=$(BUILD) scripts/migrate new $(NAME) $(ARGS)

migrate-diff: build
	@test -n "$(NAME)" || { echo "usage: make migrate-diff NAME=add_bookmarks" >&2; exit 2; }
	@BUILD=$(BUILD) scripts/migrate diff $(NAME) $(ARGS)

migrate-lint: build
	@BUILD=$(BUILD) scripts/migrate lint migrations/*.sql $(ARGS)

format:
	@find core db app migrate tests bench -name '*.[ch]' 2>/dev/null | xargs clang-format -i

format-check:
	@find core db app migrate tests bench -name '*.[ch]' 2>/dev/null | xargs clang-format --dry-run --Werror

# shellcheck (warning level) over every committed shell script; the docs' size and shape rules
.PHONY: shellcheck docs-check
shellcheck:
	@scripts/lint-sh

docs-check:
	@scripts/docs-check

bench: build
	@scripts/install-deps --bench
	@bench/run

clean:
	@rm -rf build

# builds the Dockerfile with podman and runs the image against a local PostgreSQL (scripts/container-test)
.PHONY: container-test
container-test:
	@scripts/container-test

# docker/compose.yaml brought up, used (CRUD, migrate again, a postgres restart under load) and torn
# down with docker-compose against podman's API, images built locally (scripts/compose-test)
.PHONY: compose-test
compose-test:
	@scripts/compose-test

# the builds users run: conventional CMake, tests on, gcc and clang, Debug and Release (scripts/ci-builds)
.PHONY: ci-builds tidy test-clang
ci-builds: deps
	@scripts/ci-builds

# clang-tidy with the committed .clang-tidy; any finding fails (scripts/tidy); TIDY_BUILD=dir reads
# another clang build's compile commands
tidy: deps
	@scripts/tidy $(TIDY_BUILD)

# the whole suite built with clang instead of gcc (ASan+UBSan as in make test)
test-clang: deps
	@CC=clang $(MAKE) --no-print-directory test TEST_BUILD=build/test-clang

# libFuzzer on every parser of untrusted input, FUZZ_SECONDS (default 60) each (tests/fuzz/run)
.PHONY: fuzz
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_ONLY="$(FUZZ_ONLY)" tests/fuzz/run

# example:begin (chaos, soak and tsan drive the Todo example (bench/workload.py): scripts/remove-example deletes them)
# chaos under load, audited (bench/chaos.sh): make chaos [CHAOS_SECONDS=60] [CHAOS_VARIANT=direct|pooler]
.PHONY: chaos
chaos: build
	@bench/chaos.sh $(or $(CHAOS_SECONDS),60) $(or $(CHAOS_VARIANT),direct)

# the mixed load for SOAK_SECONDS (default 600), RSS/fds/connections/p99 per minute (bench/soak.sh)
.PHONY: soak
soak: build
	@bench/soak.sh $(or $(SOAK_SECONDS),600)

# ThreadSanitizer: the api (coroutines, pipeline, pool, reaper, helper threads) built with
# -fsanitize=thread and run under the chaos load; a race report stops it and fails the run.
# (Criterion cannot start under TSan, Criterion#274, so the suites themselves do not run this way.)
.PHONY: tsan
tsan: deps
	@CC=clang cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE_THREAD=ON -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build/tsan -j $(JOBS) --target api migrate faultproxy -- --no-print-directory >/dev/null
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)" BUILD=build/tsan bench/chaos.sh $(or $(CHAOS_SECONDS),30) direct
# example:end

# the Helm chart: lint, render and validate without a cluster (scripts/helm-check); then run its
# migration Job and API Deployment as pods with podman kube play (scripts/kube-test)
.PHONY: helm-check kube-test
helm-check:
	@scripts/helm-check
kube-test:
	@scripts/kube-test
