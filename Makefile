# distkv — build, run, test.
#
#   make            build build/distkv and build/distkv-bench (installs missing packages first)
#   make run        one node, one shard, data in ./data, on 127.0.0.1:8080
#   make run-multi  the example cluster of sharding.toml (or CONFIG=file) in the background
#   make run-multi-ha  the same with a local etcd and automatic failover
#   make stop       stop the processes started by run-multi
#   make test       every test; ends with "N passed, N failed"
#   make test-asan  the same suite under AddressSanitizer + UBSan
#   make test-tsan  the unit tests and the cluster tests' threaded paths under ThreadSanitizer
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (see RELIABILITY.md)
#   make chaos      a replicated cluster under load and faults, checked for linearizability
#   make bench-storage / bench / load-test   benchmarks (see BENCHMARKS.md)

CXX      ?= g++
CC       ?= gcc
BUILD    ?= build
SANITIZE ?=

PACKAGES := libuv1-dev node-llhttp libtoml11-dev libxxhash-dev doctest-dev g++ make curl \
            libssl-dev openssl nlohmann-json3-dev
# Only the tests need these: a browser for the cluster page's test, etcd for failover's,
# clang and its libFuzzer runtime for the fuzz targets, python3 for the chaos run.
TEST_PACKAGES := chromium etcd-server clang libclang-rt-14-dev python3
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

OPT      ?= -O2
WARN     := -Wall -Wextra -Werror
CPPFLAGS := -I. -I$(LLHTTP_INC) -MMD -MP
CXXFLAGS := -std=c++20 $(OPT) -g $(WARN) $(SANITIZE) -pthread
CFLAGS   := $(OPT) -g $(SANITIZE)
LDFLAGS  := $(SANITIZE) -pthread
LDLIBS   := -luv -lxxhash -lssl -lcrypto

STORAGE_SRCS := $(sort $(wildcard storage/*.cc))
NET_SRCS     := $(sort $(wildcard net/*.cc))
# src/ is built as one library per folder; a folder may use only the ones
# below it (main -> node -> replication -> cluster, shard -> api, obs).
# The client library (src/client) uses net/ only; the command line's client
# commands (src/cli) use the client library.
SRC_LAYERS   := node replication cluster shard api obs client cli
layer_srcs    = $(sort $(wildcard src/$(1)/*.cc))
BENCH_SRCS   := $(filter-out bench/storage_bench.cc bench/compaction_bench.cc bench/main.cc,$(sort $(wildcard bench/*.cc)))
CLUSTER_SRCS := $(sort $(wildcard tests/cluster/*.cc))
# Unit tests: one binary per layer, linked only against that layer and the
# ones below it, so a test cannot lean on code its layer must not use.
TEST_MAIN    := $(BUILD)/tests/unit/doctest_main.o
unit_srcs     = $(sort $(wildcard tests/unit/$(1)/*.cc))
UNIT_LAYERS  := storage net obs api shard cluster replication node client bench
UNIT_BINS    := $(foreach l,$(UNIT_LAYERS),$(if $(call unit_srcs,$(l)),$(BUILD)/$(l)-unit-tests))
LLHTTP_OBJS  := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o

obj = $(patsubst %.cc,$(BUILD)/%.o,$(1))

STORAGE_LIB := $(BUILD)/libstorage.a
NET_LIB     := $(BUILD)/libnet.a
BENCH_LIB   := $(BUILD)/libbench.a
lib         = $(BUILD)/lib$(1).a

# What each layer links against: itself and the layers below it, in link order.
LINK_storage     := storage
LINK_net         := net obs
LINK_obs         := obs
LINK_api         := api net obs storage
LINK_shard       := shard net obs storage
LINK_cluster     := cluster api net obs storage
LINK_replication := replication cluster shard api net obs storage
LINK_node        := node replication cluster shard api net obs storage
LINK_client      := client net obs
LINK_cli         := cli client net obs
LINK_bench       := bench net obs
link_libs        = $(foreach l,$(LINK_$(1)),$(call lib,$(l)))

DEPS_STAMP := $(BUILD)/.packages
TEST_DEPS_STAMP := $(BUILD)/.test-packages

.PHONY: all run run-multi run-multi-ha stop remove-all test test-asan unit-test cluster-test build-tests \
        bench bench-storage bench-compaction load-test clean packages fuzz fuzz-build fuzz-regress fuzz-binaries \
        test-tsan tsan-run chaos

all: $(BUILD)/distkv $(BUILD)/distkv-bench

# --- packages -------------------------------------------------------------
# Installs what is missing, once per build directory. apt-get update only runs
# when a plain install fails (a fresh machine has no package lists yet).
packages: $(DEPS_STAMP)
$(DEPS_STAMP): PKGS = $(PACKAGES)
$(TEST_DEPS_STAMP): PKGS = $(TEST_PACKAGES)
# The test packages wait for the build's (make -j runs the two recipes at once
# otherwise, and the second apt-get finds dpkg locked); apt-get also waits for a
# lock another program holds instead of failing at once.
$(TEST_DEPS_STAMP): | $(DEPS_STAMP)
$(DEPS_STAMP) $(TEST_DEPS_STAMP):
	@mkdir -p $(@D)
	@missing=""; for p in $(PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $$missing >/dev/null || \
	  { $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q $$missing >/dev/null; } || exit 1; \
	fi
	@touch $@

# --- objects --------------------------------------------------------------
$(BUILD)/%.o: %.cc | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# llhttp ships as C sources; they are compiled into the binary as the design asks.
# Strict mode checks the CRLF after each chunk's data (lenient mode skips any two bytes).
$(BUILD)/llhttp/%.o: Makefile | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) -I$(LLHTTP_INC) $(CFLAGS) -DLLHTTP_STRICT_MODE=1 -c $(LLHTTP_SRC)/$*.c -o $@

$(STORAGE_LIB): $(call obj,$(STORAGE_SRCS))
	@rm -f $@; ar rcs $@ $^
$(NET_LIB): $(call obj,$(NET_SRCS)) $(LLHTTP_OBJS)
	@rm -f $@; ar rcs $@ $^
define src_layer_lib
$(call lib,$(1)): $(call obj,$(call layer_srcs,$(1)))
	@rm -f $$@; ar rcs $$@ $$^
endef
$(foreach l,$(SRC_LAYERS),$(eval $(call src_layer_lib,$(l))))
$(BENCH_LIB): $(call obj,$(BENCH_SRCS))
	@rm -f $@; ar rcs $@ $^

# The cluster page (/ui) is compiled into the node as one C++ raw string.
UI_PAGE := src/node/ui/page.html
$(BUILD)/gen/ui_page.cc: $(UI_PAGE)
	@mkdir -p $(@D)
	@! grep -q ')distkv_ui"' $< || { echo "$<: contains the raw-string delimiter" >&2; exit 1; }
	@{ printf '// Generated from $< by the Makefile.\n#include "src/node/ui_page.h"\n'; \
	  printf 'namespace distkv {\nstd::string_view UiPage() {\n  static const char kPage[] = R"distkv_ui('; \
	  cat $<; printf ')distkv_ui";\n  return {kPage, sizeof kPage - 1};\n}\n}  // namespace distkv\n'; } >$@
$(BUILD)/gen/ui_page.o: $(BUILD)/gen/ui_page.cc
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@
$(call lib,node): $(BUILD)/gen/ui_page.o

# --- binaries -------------------------------------------------------------
$(BUILD)/distkv: $(call obj,src/main.cc) $(call lib,cli) $(call lib,client) $(call link_libs,node)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/distkv-bench: $(call obj,bench/main.cc) $(BENCH_LIB) $(NET_LIB) $(call lib,obs)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/storage-bench: $(call obj,bench/storage_bench.cc) $(STORAGE_LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/compaction-bench: $(call obj,bench/compaction_bench.cc) $(STORAGE_LIB)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

define unit_test_bin
$(BUILD)/$(1)-unit-tests: $(TEST_MAIN) $(call obj,$(call unit_srcs,$(1))) $(call link_libs,$(1))
	$(CXX) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)
endef
$(foreach l,$(UNIT_LAYERS),$(eval $(call unit_test_bin,$(l))))

$(call obj,$(CLUSTER_SRCS)): | $(TEST_DEPS_STAMP)
$(BUILD)/cluster-tests: $(TEST_MAIN) $(call obj,$(CLUSTER_SRCS)) $(BENCH_LIB) $(call lib,client) $(NET_LIB) $(call lib,obs)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- tests ----------------------------------------------------------------
# Unit tests, cluster tests, the fuzz targets over their corpora, the
# consistency checker's tests and two short chaos runs (CHAOS_DURATION seconds
# each): without etcd (with migrations) and with etcd (with failovers and migrations).
CHAOS_DURATION ?= 20
test: $(UNIT_BINS) $(BUILD)/cluster-tests $(BUILD)/distkv $(BUILD)/distkv-bench fuzz-build
	@DISTKV_BIN=$(abspath $(BUILD)/distkv) DISTKV_BENCH_BIN=$(abspath $(BUILD)/distkv-bench) \
	  CHAOS_DURATION=$(CHAOS_DURATION) CLUSTER_TESTS_BIN=$(abspath $(BUILD)/cluster-tests) \
	  tests/run.sh $(UNIT_BINS) $(BUILD)/cluster-tests tests/cluster-tests-tls.sh \
	  tests/check_layers.py tests/fuzz/run.sh tests/chaos/checker_test.py \
	  "tests/chaos/chaos.py --mode static" \
	  "tests/chaos/chaos.py --mode etcd"

# Every binary and test binary, without running anything.
build-tests: all $(UNIT_BINS) $(BUILD)/cluster-tests

unit-test: $(UNIT_BINS)
	@tests/run.sh $(UNIT_BINS)

cluster-test: $(BUILD)/cluster-tests $(BUILD)/distkv $(BUILD)/distkv-bench
	@DISTKV_BIN=$(abspath $(BUILD)/distkv) DISTKV_BENCH_BIN=$(abspath $(BUILD)/distkv-bench) \
	  tests/run.sh $(BUILD)/cluster-tests

# The same suite, instrumented, in its own build directory. (g++ 12 warns
# "may be used uninitialized" inside libstdc++'s std::regex when ASan is on at
# -O1, a known false positive; that one warning is off in this build only.)
test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-maybe-uninitialized" test

# --- fuzzing --------------------------------------------------------------
# libFuzzer targets (tests/fuzz/*_fuzz.cc), built with clang, ASan and UBSan
# in their own build directory. `make fuzz` runs each for FUZZ_SECONDS,
# adding what it finds to build-fuzz/corpus/<target> (the tree's seeds in
# tests/fuzz/corpus/<target> are read, never written); a crash stops the run
# and leaves its input in build-fuzz/crashes/. `make test` replays the tree's
# corpora once (fuzz-regress).
FUZZ_CXX      ?= clang++
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  := $(basename $(notdir $(wildcard tests/fuzz/*_fuzz.cc)))
FUZZ_BINS     := $(foreach t,$(FUZZ_TARGETS),$(BUILD)/fuzz/$(t))
FUZZ_LINK_http_server_fuzz      := $(LINK_net)
FUZZ_LINK_record_fuzz           := storage
FUZZ_LINK_segment_recovery_fuzz := storage
FUZZ_LINK_frame_fuzz            := $(LINK_replication)
FUZZ_LINK_config_fuzz           := $(LINK_cluster)
FUZZ_LINK_manifest_fuzz         := storage
FUZZ_LINK_hint_fuzz             := storage
FUZZ_LINK_client_json_fuzz      := client $(LINK_api)
FUZZ_LINK_api_fuzz              := $(LINK_api)
define fuzz_bin
$(BUILD)/fuzz/$(1): $(call obj,tests/fuzz/$(1).cc) $(foreach l,$(FUZZ_LINK_$(1)),$(call lib,$(l)))
	@mkdir -p $$(@D)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $$@ $$^ $(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_bin,$(t))))
fuzz-binaries: $(FUZZ_BINS)

fuzz-build: | $(DEPS_STAMP) $(TEST_DEPS_STAMP)
	@$(MAKE) --no-print-directory BUILD=build-fuzz CXX="$(FUZZ_CXX)" CC="$(FUZZ_CC)" OPT=-O1 \
	  SANITIZE="-fsanitize=address,undefined -fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
	  fuzz-binaries

fuzz-regress: fuzz-build
	@tests/fuzz/run.sh regress build-fuzz/fuzz $(FUZZ_TARGETS)

fuzz: fuzz-build
	@tests/fuzz/run.sh fuzz build-fuzz/fuzz $(FUZZ_TARGETS)

# ThreadSanitizer (gcc's libtsan): every unit test, and the cluster tests whose
# nodes run the commit pipeline's worker thread, compactions and snapshots
# hard (TSAN_CLUSTER_TESTS), against a TSan-built distkv; a report in a node's
# log fails the test.
TSAN_CLUSTER_TESTS ?= durability*,replication*,pipelining*,compaction*,resync*
test-tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT=-O1 SANITIZE="-fsanitize=thread" tsan-run
tsan-run: $(UNIT_BINS) $(BUILD)/cluster-tests $(BUILD)/distkv $(BUILD)/distkv-bench
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  DISTKV_BIN=$(abspath $(BUILD)/distkv) DISTKV_BENCH_BIN=$(abspath $(BUILD)/distkv-bench) \
	  tests/run.sh $(UNIT_BINS) "$(BUILD)/cluster-tests -tc=$(TSAN_CLUSTER_TESTS)"

# A replicated cluster under load and faults, its history checked
# (tests/chaos/chaos.py; make chaos DURATION=600 for a long run): one run per
# MODE, static (migrations) then etcd (failovers and migrations).
DURATION ?= 60
MODE ?= static etcd
chaos: $(BUILD)/distkv | $(TEST_DEPS_STAMP)
	@status=0; for m in $(MODE); do \
	  DISTKV_BIN=$(abspath $(BUILD)/distkv) tests/chaos/chaos.py --mode $$m --duration $(DURATION) \
	    || status=1; done; exit $$status

# --- running --------------------------------------------------------------
run: $(BUILD)/distkv
	$(BUILD)/distkv serve --data ./data --listen 127.0.0.1:8080

CONFIG ?= sharding.toml
run-multi: all
	@scripts/cluster.sh start $(CONFIG)

# The same cluster with a local etcd and automatic failover (see README, Failover).
run-multi-ha: all $(TEST_DEPS_STAMP)
	@scripts/cluster.sh start-ha $(CONFIG)

stop:
	@scripts/cluster.sh stop

remove-all: stop
	rm -rf data run

# --- benchmarks -----------------------------------------------------------
bench-storage: $(BUILD)/storage-bench
	$(BUILD)/storage-bench

bench-compaction: $(BUILD)/compaction-bench
	$(BUILD)/compaction-bench

load-test: all
	@scripts/load-test.sh

bench: all
	@scripts/bench.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
