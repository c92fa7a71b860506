//go:build tools

// Package tools pins modules that packages under construction import, so
// that parallel work shares one go.mod. Remove entries once real code
// imports them.
package tools

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/cilium/ebpf/link"
	_ "github.com/cilium/ebpf/ringbuf"
	_ "github.com/gopacket/gopacket/afpacket"
	_ "github.com/maxmind/mmdbwriter"
	_ "github.com/oschwald/maxminddb-golang/v2"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/segmentio/kafka-go/compress/lz4"
	_ "github.com/segmentio/kafka-go/sasl/scram"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/vishvananda/netlink"
	_ "golang.zx2c4.com/wireguard/wgctrl"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/api/autoscaling/v2"
	_ "sigs.k8s.io/yaml"
)
