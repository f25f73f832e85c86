# chatd - the two commands of the README, and the chores around them.
#   make run    install what is missing, build, start chatd on the default model
#   make test   install what is missing, build, run every test
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
SOURCES     = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find engine server include tests bench -name '*.[ch]')

.PHONY: all deps build run test test-asan test-tsan format lint fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The model: $$CHATD_MODEL, else the default model in the cache (downloaded when missing).
run: build
	@sh scripts/run.sh $(BUILD)/chatd

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Under the sanitizers the portable (scalar) kernels run on three models, not all nine: the
# same code, at several times the cost. Seed and case sweeps shrink (CHATD_TEST_SEEDS).
ASAN_SKIP ?= test_forward\.(qwen2-tiny-q4_k_m|qwen3-tiny-q8_0|r1-qwen-tiny-q4_0|llama3-tiny-q6_k|llama-spm-tiny-f16|llama-spm-tiny-bf16)\.gguf_q8-kernels_2_scalar
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHATD_SANITIZE=address,undefined >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 CHATD_TEST_SEEDS=2 ctest --output-on-failure -j$(JOBS) -E '$(ASAN_SKIP)'

# The threaded parts (thread pool, forward pass, scheduler) under ThreadSanitizer.
TSAN_TESTS ?= test_sampler|test_sched|test_batching.stories260K|test_forward.stories260K.gguf_q8_2|test_forward.qwen2-tiny-q8_0.gguf_float_2
test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHATD_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	@mkdir -p build-tsan && ln -sfn "$(CURDIR)/$(BUILD)/models" build-tsan/models 2>/dev/null || true
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j$(JOBS) -R '$(TSAN_TESTS)'

format:
	@clang-format -i $(SOURCES)

lint:
	@clang-format --dry-run -Werror $(SOURCES)
	@cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	  --suppress=missingIncludeSystem --suppress=unknownMacro --inline-suppr -I include -I server engine server

# libFuzzer: FUZZ_SECONDS per harness (default 60).
FUZZ_SECONDS ?= 60
FUZZERS ?= $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHATD_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(FUZZERS)
	@sh scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-tsan build-fuzz
