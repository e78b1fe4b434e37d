# Thin wrapper over CMake; see README.md. `make demo` and `make test` set up a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all build deps deps-bench demo test check check-sanitize bench fuzz format format-check clean

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

# Debian packages, then Azurite (the storage emulator the Azure tests run against) from npm into the tree.
deps:
	tools/bootstrap.sh base
	tools/bootstrap-azurite.sh

deps-bench:
	tools/bootstrap.sh bench

# STORE=azurite runs the datastore part against Azurite instead of the local store.
STORE ?= local
demo: deps build
	STORE=$(STORE) tools/demo.sh $(BUILD)/tools/ccr

# Every test: the release build, then the unit/fuzz/integration suite again under ASan+UBSan
# (leaving out the multi-GiB cases, which the release pass runs).
test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)
	$(MAKE) check-sanitize

check: test

check-sanitize:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCCR_SANITIZE=ON -DCCR_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
		ctest --output-on-failure -j $(JOBS) -LE large $(CTEST_ARGS)

bench: deps-bench build
	bench/run.sh $(BUILD)

# libFuzzer targets (clang). Run one with e.g. build-fuzz/tests/fuzz_ccr1_header tests/fuzz/corpus/fuzz_ccr1_header
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCCR_FUZZ=ON -DCCR_JEMALLOC=OFF -DCCR_BENCH=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
