# The front door. CMake is the build; these targets are the commands people type.
#   make run     install missing packages, build, start the API on http://127.0.0.1:8000
#   make test    install missing packages, build with sanitizers, run every suite against a real PostgreSQL
#   make test-neonlike  the same suites against a server shaped like a Neon branch (TLS verify-full, SCRAM,
#                a non-superuser owner, pgbouncer with TLS; tests/harness/cluster --neonlike)
.PHONY: all run build test test-neonlike deps db-start db-stop db-reset migrate format format-check bench clean install
.PHONY: migrate-status migrate-up migrate-down migrate-redo migrate-check migrate-dump migrate-new

BUILD      ?= build/release
TEST_BUILD ?= build/test
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
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
	@tests/harness/cluster ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-neonlike: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS) -- --no-print-directory
	@tests/harness/selftest
	@tests/harness/cluster --neonlike --scan $(TEST_BUILD)/Testing/Temporary/LastTest.log \
	  ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

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
migrate-status migrate-up migrate-down migrate-redo migrate-check migrate-dump: build
	@BUILD=$(BUILD) scripts/migrate $(@:migrate-%=%) $(ARGS)

migrate-new: build
	@test -n "$(NAME)" || { echo "usage: make migrate-new NAME=add_bookmarks" >&2; exit 2; }
	@BUILD=$(BUILD) scripts/migrate new $(NAME) $(ARGS)

format:
	@find core db app migrate tests bench -name '*.[ch]' 2>/dev/null | xargs clang-format -i

format-check:
	@find core db app migrate tests bench -name '*.[ch]' 2>/dev/null | xargs clang-format --dry-run --Werror

bench: build
	@scripts/install-deps --bench
	@bench/run

clean:
	@rm -rf build

# builds the Dockerfile with podman and runs the image against a local PostgreSQL (scripts/container-test)
.PHONY: container-test
container-test:
	@scripts/container-test
