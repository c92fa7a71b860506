package synth

import (
	"encoding/binary"
	"fmt"
	"time"
)

// DHCP message types (RFC 2132 option 53) the script sends.
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
)

// scriptDHCP scripts a client acquiring an address: DISCOVER, OFFER,
// REQUEST, ACK, all broadcast (RFC 2131 section 4.4.1, with the BROADCAST
// flag set as clients without an address do).
func (fs *flowState) scriptDHCP() error {
	f := &fs.flow
	d := f.DHCP
	if len(d.Hostname) > 255 || len(d.VendorClass) > 255 {
		return fmt.Errorf("DHCP hostname or vendor class longer than 255 bytes: %w", ErrBadFlow)
	}
	fs.setupHeaders()
	r := fs.rng
	xid := r.Uint32()
	rtt := int64(f.RTT)
	t := f.Start.UnixNano()
	for _, typ := range []byte{dhcpDiscover, dhcpOffer, dhcpRequest, dhcpAck} {
		dir := c2s
		if typ == dhcpOffer || typ == dhcpAck {
			dir = s2c
			t += rtt + fs.logBetween(100*time.Microsecond, 5*time.Millisecond)
		} else if typ == dhcpRequest {
			t += fs.between(100*time.Microsecond, 2*time.Millisecond)
		}
		off := fs.streams[dir].size
		start := len(fs.lit)
		fs.lit = fs.appendDHCP(fs.lit, typ, xid, uint16((t-f.Start.UnixNano())/int64(time.Second)))
		fs.addLit(dir, start, len(fs.lit))
		fs.datagram(dir, t, off)
	}
	return nil
}

// appendDHCP appends one BOOTP message with DHCP options (RFC 2131 section
// 2, RFC 2132), padded to the 300 bytes BOOTP relays expect.
func (fs *flowState) appendDHCP(b []byte, typ byte, xid uint32, secs uint16) []byte {
	f := &fs.flow
	d := f.DHCP
	server := f.Server.Addr().As4()
	start := len(b)
	op := byte(1) // BOOTREQUEST
	if typ == dhcpOffer || typ == dhcpAck {
		op = 2
	}
	b = append(b, op, 1, 6, 0) // htype Ethernet, hlen 6, hops
	b = binary.BigEndian.AppendUint32(b, xid)
	if op == 2 {
		secs = 0
	}
	b = binary.BigEndian.AppendUint16(b, secs)
	b = append(b, 0x80, 0)    // flags: BROADCAST
	b = append(b, 0, 0, 0, 0) // ciaddr
	if op == 2 {
		a := d.Addr.As4()
		b = append(b, a[:]...)      // yiaddr
		b = append(b, server[:]...) // siaddr
	} else {
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	b = append(b, 0, 0, 0, 0) // giaddr
	b = append(b, f.ClientMAC[:]...)
	b = append(b, make([]byte, 10+64+128)...) // chaddr padding, sname, file
	b = append(b, 99, 130, 83, 99)            // magic cookie

	b = append(b, 53, 1, typ)
	switch op {
	case 1:
		b = append(b, 61, 7, 1) // client identifier: hardware type and MAC
		b = append(b, f.ClientMAC[:]...)
		if typ == dhcpRequest {
			a := d.Addr.As4()
			b = append(b, 50, 4)
			b = append(b, a[:]...)
			b = append(b, 54, 4)
			b = append(b, server[:]...)
		}
		b = append(b, 57, 2, 0x05, 0xdc) // maximum message size 1500
		if d.Hostname != "" {
			b = append(b, 12, byte(len(d.Hostname)))
			b = append(b, d.Hostname...)
		}
		if d.VendorClass != "" {
			b = append(b, 60, byte(len(d.VendorClass)))
			b = append(b, d.VendorClass...)
		}
		b = append(b, 55, 7, 1, 3, 6, 15, 28, 42, 119) // parameter request list
	default:
		lease := d.Lease
		if lease <= 0 {
			lease = 24 * time.Hour
		}
		bits := d.Prefix
		if bits <= 0 || bits > 32 {
			bits = 24
		}
		router, dns := server, server
		if d.Router.Is4() {
			router = d.Router.As4()
		}
		if d.DNS.Is4() {
			dns = d.DNS.As4()
		}
		b = append(b, 54, 4)
		b = append(b, server[:]...)
		b = append(b, 51, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(lease/time.Second))
		b = append(b, 58, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(lease/2/time.Second))
		b = append(b, 1, 4)
		b = binary.BigEndian.AppendUint32(b, ^uint32(0)<<(32-bits))
		b = append(b, 3, 4)
		b = append(b, router[:]...)
		b = append(b, 6, 4)
		b = append(b, dns[:]...)
	}
	b = append(b, 255)
	for len(b)-start < 300 {
		b = append(b, 0)
	}
	return b
}
