# The front door. CMake is the build; these targets are the commands people type.
#   make run     install missing packages, build, start the API on http://127.0.0.1:8000
#   make test    install missing packages, build with sanitizers, run every suite against a real PostgreSQL
.PHONY: all run build test deps db-start db-stop db-reset migrate format format-check bench clean install

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

# the Helm chart: lint, render and validate without a cluster (scripts/helm-check); then run its
# migration Job and API Deployment as pods with podman kube play (scripts/kube-test)
.PHONY: helm-check kube-test
helm-check:
	@scripts/helm-check
kube-test:
	@scripts/kube-test
