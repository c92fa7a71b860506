package appid

import "testing"

// TestEphemeralClientPortNamesNothing: a browsing flow (a DNS query, a QUIC
// connection to a web site) whose client happened to pick an ephemeral
// source port that a VPN uses as a listening port (Linux 32768-60999 and
// Windows 49152-65535 both hold 41641 and 51820) is not a VPN: the port is
// the server's evidence, not the client's. schema.md: "browsing captures
// never labelled remote_access/tunnel/vpn".
func TestEphemeralClientPortNamesNothing(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []Input{
		{Proto: UDP, ClientPort: 51820, ServerPort: 53},
		{Proto: UDP, ClientPort: 41641, ServerPort: 443, QUIC: true, SNI: "www.wikipedia.org"},
		{Proto: UDP, ClientPort: 51820, ServerPort: 123},
	} {
		if got := id.Identify(&in); got.App != "" {
			t.Errorf("Identify(client port %d -> server port %d) = %+v, want no application", in.ClientPort, in.ServerPort, got)
		}
	}
}

// TestDomainHostPortAndTrailingDot: an HTTP Host "name.:port" (a
// fully-qualified name with a port) matches like "name".
func TestDomainHostPortAndTrailingDot(t *testing.T) {
	id, err := New()
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Proto: TCP, ServerPort: 8080, HTTPHost: "relay.anydesk.com.:8080"}
	if got := id.Identify(&in); got.App != "anydesk" {
		t.Errorf("Identify(Host %q) = %+v, want anydesk", in.HTTPHost, got)
	}
}
