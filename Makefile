# subq: `make` builds build/libsubq.a and ./subq; `make test` runs the tests
# (plain and under AddressSanitizer/UBSan); `make deps` installs Debian packages.

CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O3
BUILD   ?= build
BLASINC ?= /usr/include/x86_64-linux-gnu/openblas-openmp
BLASLIB ?= /usr/lib/x86_64-linux-gnu/openblas-openmp

CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) -fopenmp -Wall -Wextra -Wno-unused-parameter \
             -I$(BLASINC) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS_ALL = -fopenmp -L$(BLASLIB) -Wl,-rpath,$(BLASLIB) $(EXTRA_LDFLAGS)
LDLIBS_ALL  = -lopenblas -lm

# nvcc (PATH or /usr/local/cuda) decides whether the CUDA part is built; NVCC= on the command line turns it off.
ifeq ($(origin NVCC),undefined)
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
endif

LIB_SRC  = $(wildcard src/core/*.c src/ops/*.c src/layers/*.c src/blocks/*.c src/model/*.c \
                      src/train/*.c src/tasks/*.c)
CLI_SRC  = $(wildcard src/cli/*.c) $(if $(NVCC),$(wildcard src/cli/gpu/*.c),$(wildcard src/cli/nogpu/*.c))
REF_SRC  = $(wildcard tests/ref_*.c)
TREF_SRC = tests/harness.c tests/optest.c $(REF_SRC)
TEST_SRC = $(wildcard tests/test_*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o) $(REF_SRC:%.c=$(BUILD)/%.o)
TREF_OBJ = $(TREF_SRC:%.c=$(BUILD)/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      = $(BUILD)/libsubq.a

# The CUDA part (src/cuda) is built when nvcc is found: build/libsubq_cuda.a
# linked into ./subq (bench ops --device cuda), and build/cuda-tests/test_cuda
# (run by `make test-cuda` on a GPU machine).
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVFLAGS    = -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
             -I$(BLASINC) -Xcompiler -Wall,-Wno-unused-parameter,-fopenmp -MMD -MP
CUDA_SRC   = $(wildcard src/cuda/*.cu)
CUDA_OBJ   = $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_LIB   = $(BUILD)/libsubq_cuda.a
CUDA_TEST  = $(BUILD)/cuda-tests/test_cuda
CUDA_LDLIBS = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart
ifneq ($(NVCC),)
CUDA_ALL = $(CUDA_TEST)
# The CUDA entry points' argument checks and the bf16 checks' tolerances need no GPU: part of
# `make test` when nvcc is found.
CUDA_HOST_TEST = $(BUILD)/tests/test_cuda_host $(BUILD)/tests/test_bf16_cond
endif

ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g

.SECONDARY:
.PHONY: all lib tests test test-fast asan run bench deps bench-deps clean help cuda test-cuda
all: subq tests $(BUILD)/examples/mlstm_example $(CUDA_ALL)

help:
	@echo "make            build ./subq and the tests"
	@echo "make deps       install the Debian packages subq needs (apt-get)"
	@echo "make run        build and run the main job (subq compare at its defaults)"
	@echo "make test       run the tests, plain and under ASan/UBSan"
	@echo "make test-fast  run the tests once, plain build only"
	@echo "make bench-deps install what the peer comparison (bench/cpu_peers.sh) needs"
	@echo "make test-cuda  build (nvcc) and run the CUDA tests on this machine's GPU"

lib: $(LIB)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

SUBQ_CUDA = $(if $(NVCC),$(CUDA_LIB))
$(BUILD)/subq: $(CLI_OBJ) $(LIB) $(SUBQ_CUDA)
	$(CC) $(LDFLAGS_ALL) $(CLI_OBJ) $(SUBQ_CUDA) $(LIB) $(LDLIBS_ALL) $(if $(NVCC),$(CUDA_LDLIBS) -lstdc++) -o $@

subq: $(BUILD)/subq
	cp $(BUILD)/subq subq

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TREF_OBJ) $(LIB)
	$(CC) $(LDFLAGS_ALL) $< $(TREF_OBJ) $(LIB) $(LDLIBS_ALL) -o $@

tests: $(TEST_BIN) $(CUDA_HOST_TEST)

$(BUILD)/tests/test_cuda_host: tests/cuda_host/test_cuda_host.c $(BUILD)/tests/harness.o $(CUDA_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) $< $(BUILD)/tests/harness.o $(CUDA_LIB) $(LIB) $(LDLIBS_ALL) $(CUDA_LDLIBS) \
	  -lstdc++ -o $@

BF16_COND_SRC = tests/cuda_host/test_bf16_cond.c tests/cuda/bf16_cond.c tests/cuda/cuda_util.c
$(BUILD)/tests/test_bf16_cond: $(BF16_COND_SRC) tests/cuda/bf16_cond.h $(BUILD)/tests/harness.o $(CUDA_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) $(BF16_COND_SRC) $(BUILD)/tests/harness.o $(CUDA_LIB) $(LIB) $(LDLIBS_ALL) \
	  $(CUDA_LDLIBS) -lstdc++ -o $@

$(BUILD)/src/cuda/%.o: src/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(CUDA_LIB): $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

CUDA_TEST_SRC = $(wildcard tests/cuda/*.c)
$(CUDA_TEST): $(CUDA_TEST_SRC) tests/cuda/cuda_util.h tests/cuda/bf16_cond.h $(TREF_OBJ) $(CUDA_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) $(CUDA_TEST_SRC) $(TREF_OBJ) $(CUDA_LIB) $(LIB) $(LDLIBS_ALL) $(CUDA_LDLIBS) -lstdc++ -o $@

cuda:
	@[ -n "$(NVCC)" ] || { echo "make cuda: nvcc not found (install the CUDA toolkit or set NVCC=)"; exit 2; }
	$(MAKE) --no-print-directory $(CUDA_TEST) subq

# The CUDA tests: run on a machine with an NVIDIA GPU (sm_90: H100/H200).
test-cuda: cuda
	$(CUDA_TEST)

$(BUILD)/examples/%: $(BUILD)/examples/%.o $(LIB)
	$(CC) $(LDFLAGS_ALL) $< $(LIB) $(LDLIBS_ALL) -o $@

test-fast: tests
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} tests/run.sh $(BUILD)/tests

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 EXTRA_CFLAGS="$(ASAN_FLAGS)" EXTRA_LDFLAGS="$(ASAN_FLAGS)" tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} tests/run.sh build-asan/tests

# The README's test command: the suite plain, then under the sanitizers.
test: all
	@set -e; tests/run.sh $(BUILD)/tests | tee $(BUILD)/test.log; \
	 $(MAKE) --no-print-directory asan | tee $(BUILD)/asan.log; \
	 p1=$$(tail -n 1 $(BUILD)/test.log); p2=$$(tail -n 1 $(BUILD)/asan.log); \
	 echo "plain: $$p1"; echo "asan+ubsan: $$p2"; \
	 a=$$(( $${p1%% passed*} + $${p2%% passed*} )); \
	 f1=$${p1#*passed, }; f2=$${p2#*passed, }; b=$$(( $${f1%% failed*} + $${f2%% failed*} )); \
	 echo "$$a passed, $$b failed"; test $$b -eq 0

run: all
	./subq compare

bench: all
	./subq bench ops --json $(BUILD)/bench_ops.json

DEB_PKGS = build-essential libopenblas-openmp-dev gnuplot-nox
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	 if [ -n "$$missing" ]; then \
	   SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	   echo "installing:$$missing"; \
	   $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	 else echo "deps: all Debian packages present"; fi

bench-deps: deps
	@dpkg -s python3-torch >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q python3-torch; }

clean:
	rm -rf build build-asan subq

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TREF_OBJ:.o=.d) $(TEST_BIN:=.d) $(CUDA_OBJ:.o=.d)
