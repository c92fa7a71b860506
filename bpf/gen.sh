#!/usr/bin/env bash
# Regenerates the eBPF objects and their Go bindings (capture_bpfel.go,
# capture_bpfel.o) from capture.c with the system clang and the Debian
# kernel and libbpf headers (apt-get install clang llvm libbpf-dev
# linux-libc-dev). The output is committed; gen_test.go checks that this
# script reproduces it byte for byte.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-.}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
unset BPF2GO_CFLAGS BPF2GO_CC BPF2GO_STRIP BPF2GO_FLAGS
exec go tool bpf2go -go-package bpf -output-dir "$out" -target bpfel \
  -cc clang -strip llvm-strip \
  -type ew_key -type ew_dir -type ew_flow -type ew_event -type ew_sample \
  -type ew_stats -type ew_event_kind -type ew_counter \
  capture capture.c -- -O2 -mcpu=v3 -Wall -Werror -I/usr/include/"$multiarch"
