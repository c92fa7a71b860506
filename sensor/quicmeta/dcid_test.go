package quicmeta

import (
	"errors"
	"testing"
)

// TestAssemblerServerChosenDCID: once the server's first Initial arrives,
// the client sends to the connection ID the server chose, but its Initials
// stay protected with the keys of the DCID of its first Initial (RFC 9000
// section 7.2, RFC 9001 section 5.2). A ClientHello whose second part is
// (re)sent after that point must still be reassembled.
func TestAssemblerServerChosenDCID(t *testing.T) {
	var p Parser
	var in Initial
	if err := p.Parse(mustHex(t, rfc9001ClientInitial), &in); err != nil {
		t.Fatal(err)
	}
	hello := in.Crypto[0].Data
	odcid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	serverCID := []byte{9, 9, 9, 9}
	p1 := sealInitial(t, Version1, odcid, 0, cryptoFrame(0, hello[:100]))
	p2 := sealInitialKeys(t, Version1, odcid, serverCID, 1, append([]byte{frameAck, 0, 0, 0, 0}, cryptoFrame(100, hello[100:])...))
	var a Assembler
	if err := a.AddDatagram(p1); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("first Initial: %v, want ErrNeedMore", err)
	}
	if err := a.AddDatagram(p2); err != nil {
		t.Fatalf("Initial to the server's connection ID: %v", err)
	}
	if a.Hello.ServerName != "example.com" {
		t.Errorf("SNI %q, want example.com", a.Hello.ServerName)
	}

	// After a Retry the client derives new keys from the Retry's source
	// connection ID, the DCID of its next Initials.
	retryCID := []byte{7, 7, 7, 7, 7, 7, 7, 7}
	a.Reset()
	if err := a.AddDatagram(p1); !errors.Is(err, ErrNeedMore) {
		t.Fatalf("first Initial: %v, want ErrNeedMore", err)
	}
	p3 := sealInitial(t, Version1, retryCID, 2, cryptoFrame(0, hello))
	if err := a.AddDatagram(p3); err != nil {
		t.Fatalf("Initial after a Retry: %v", err)
	}
	if a.Hello.ServerName != "example.com" {
		t.Errorf("after a Retry: SNI %q, want example.com", a.Hello.ServerName)
	}
}
