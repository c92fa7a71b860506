// Command dropcaps opens an AF_PACKET capture on lo, drops capabilities
// with live.DropCapabilities and prints each thread's capability sets, for
// TestDropCapabilities (built with CGO_ENABLED=0, as releases are).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgeward/edgeward/sensor/live"
)

func main() {
	src, err := live.OpenAFPacket(live.AFPacketConfig{Interface: "lo"})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	defer src.Close()
	if err := live.DropCapabilities(src); err != nil {
		fmt.Println("drop:", err)
		os.Exit(1)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(b), "\n") {
			for _, k := range []string{"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:"} {
				if strings.HasPrefix(line, k) {
					fmt.Println(strings.Join(strings.Fields(line), " "))
				}
			}
		}
	}
}
