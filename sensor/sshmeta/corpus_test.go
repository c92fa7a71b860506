package sshmeta

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/edgeward/edgeward/internal/corpus"
)

// TestCorpusNDPISSH compares with nDPI's reference for ndpi-ssh.pcap, which
// lists two banners per flow as Hostname/SNI and Server. nDPI assigns them
// in the order they appear, but in the flow from port 58395 the server
// (port 22, the SYN-ACK sender) speaks first, so there the pair is compared
// without order and the direction is checked against the packets: the
// server sends OpenSSH_5.3 in frame 4, the client OpenSSH_5.6 in frame 6.
func TestCorpusNDPISSH(t *testing.T) {
	dir := corpus.Dir(t)
	tests := []struct {
		clientPort     uint16
		client, server string
	}{
		{58395, "SSH-2.0-OpenSSH_5.6", "SSH-2.0-OpenSSH_5.3"},
		{58496, "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.11", "SSH-2.0-APACHE-SSHD-2.5.0"},
	}
	streams := corpus.TCPStreams(corpus.ReadCapture(t, filepath.Join(dir, "pcaps", "ndpi-ssh.pcap")))
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.clientPort)), func(t *testing.T) {
			for _, s := range streams {
				if s.Client.Port() != tt.clientPort {
					continue
				}
				var c, sv Ident
				if _, err := Parse(s.C2S, &c); err != nil {
					t.Errorf("client: %v", err)
				}
				if _, err := Parse(s.S2C, &sv); err != nil {
					t.Errorf("server: %v", err)
				}
				if c.String() != tt.client || sv.String() != tt.server {
					t.Errorf("banners client %q server %q, want %q and %q", c, sv, tt.client, tt.server)
				}
				return
			}
			t.Errorf("no stream from client port %d", tt.clientPort)
		})
	}
}

// TestCorpusNotSSH checks that the first bytes of every non-SSH TCP stream
// in the corpus are never taken for an SSH identification.
func TestCorpusNotSSH(t *testing.T) {
	dir := corpus.Dir(t)
	for _, e := range corpus.Manifest(t, dir) {
		if e.ID == "ndpi-ssh.pcap" {
			continue
		}
		for _, s := range corpus.TCPStreams(corpus.ReadCapture(t, filepath.Join(dir, e.File))) {
			for _, b := range [][]byte{s.C2S, s.S2C} {
				var id Ident
				if _, err := Parse(b, &id); err == nil {
					t.Errorf("%s %v: %q taken for SSH", e.ID, s.Client, id.String())
				}
			}
		}
	}
}
