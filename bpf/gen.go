// Package bpf holds edgeward's eBPF programs (capture.c, with the ABI in
// edgeward.h) and their bpf2go-generated Go bindings and objects, committed
// so that building edgeward needs no clang. sensor/live loads and attaches
// them; run gen.sh (go generate) after changing the C sources.
package bpf

//go:generate bash gen.sh
