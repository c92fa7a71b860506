package inventory

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/edgeward/edgeward/internal/lineerr"
)

// ErrFormat means the file's extension names no inventory format.
var ErrFormat = errors.New("inventory file must end in .csv, .yaml or .yml")

// LineError is one device that was skipped, and where.
type LineError = lineerr.Error

// Errors lists every skipped device of a file that otherwise loaded.
type Errors = lineerr.List

// LoadFile reads an inventory file, choosing the format by extension.
// When some devices were skipped the table holds the rest and err is an
// Errors; any other error means nothing was loaded.
func LoadFile(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	return Parse(path, b)
}

// Parse reads an inventory in the format named by name's extension; name
// is also used in error messages. Errors are as for LoadFile.
func Parse(name string, src []byte) (*Table, error) {
	var raws []raw
	var errs Errors
	var err error
	// Spreadsheets export "CSV UTF-8" with a byte order mark, which would
	// otherwise become part of the first column's name.
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		raws, errs, err = parseCSV(name, src)
	case ".yaml", ".yml":
		raws, errs, err = parseYAML(name, src)
	default:
		return nil, fmt.Errorf("%s: %w", name, ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	t := newTable()
	for _, r := range raws {
		d, le := r.device(name)
		if le == nil {
			if err := t.add(d); err != nil {
				le = &LineError{File: name, Line: r.line, Col: r.col, Err: err}
			}
		}
		if le != nil {
			errs = append(errs, le)
		}
	}
	if len(errs) > 0 {
		return t, errs
	}
	return t, nil
}

// value is one cell or YAML scalar and where it was written.
type value struct {
	s         string
	line, col int
}

// raw is one device as written, before validation.
type raw struct {
	line, col int
	fields    map[string][]value
}

// columns maps accepted column and key names to the canonical field name.
var columns = map[string]string{
	"id": "id", "owner": "owner", "assigned_site": "assigned_site",
	"assigned_country": "assigned_country", "home_timezone": "home_timezone",
	"macs": "macs", "mac": "macs", "hostnames": "hostnames", "hostname": "hostnames",
	"ips": "ips", "ip": "ips", "wireguard_public_key": "wireguard_public_key",
	"vpn_peers": "vpn_peers", "vpn_peer": "vpn_peers",
}

var listFields = map[string]bool{"macs": true, "hostnames": true, "ips": true, "vpn_peers": true}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' || r == '\t' })
}

func parseCSV(name string, src []byte) ([]raw, Errors, error) {
	r := csv.NewReader(bytes.NewReader(src))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var header []string
	var out []raw
	var errs Errors
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if header == nil {
				return nil, nil, fmt.Errorf("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
			}
			errs = append(errs, &LineError{File: name, Line: pe.Line, Col: pe.Column, Err: pe.Err})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if header == nil {
			for i, h := range rec {
				c, ok := columns[strings.ToLower(strings.TrimSpace(h))]
				if !ok {
					line, col := r.FieldPos(i)
					return nil, nil, fmt.Errorf("%s:%d:%d: unknown column %q in the header (want id, owner, assigned_site, assigned_country, home_timezone, macs, hostnames, ips, wireguard_public_key, vpn_peers)", name, line, col, h)
				}
				header = append(header, c)
			}
			if !contains(header, "id") {
				return nil, nil, fmt.Errorf("%s:1: the header has no id column", name)
			}
			continue
		}
		line, col := r.FieldPos(0)
		rw := raw{line: line, col: col, fields: map[string][]value{}}
		if len(rec) > len(header) {
			_, c := r.FieldPos(len(header))
			errs = append(errs, &LineError{File: name, Line: line, Col: c, Err: fmt.Errorf("%d fields, but the header names %d", len(rec), len(header))})
			continue
		}
		for i, cell := range rec {
			cell = strings.TrimSpace(cell)
			if cell == "" {
				continue
			}
			l, c := r.FieldPos(i)
			f := header[i]
			if listFields[f] {
				for _, v := range splitList(cell) {
					rw.fields[f] = append(rw.fields[f], value{v, l, c})
				}
			} else {
				rw.fields[f] = append(rw.fields[f], value{cell, l, c})
			}
		}
		out = append(out, rw)
	}
	if header == nil {
		return nil, nil, fmt.Errorf("%s: no header row (want id,owner,assigned_site,...)", name)
	}
	return out, errs, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

func pos(n ast.Node) (line, col int) {
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		n = m.Values[0].Key
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, max(tk.Position.Column, 1)
	}
	return 0, 0
}

func parseYAML(name string, src []byte) ([]raw, Errors, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		var ye yamlError
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			p := ye.GetToken().Position
			return nil, nil, fmt.Errorf("%s:%d:%d: YAML: %s", name, p.Line, p.Column, ye.GetMessage())
		}
		return nil, nil, fmt.Errorf("%s: YAML: %w", name, err)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		// As an empty CSV file has no header row: most likely a file being
		// rewritten, and the inventory in use is kept. An inventory meant
		// to be empty says so.
		return nil, nil, fmt.Errorf("%s: the file is empty (for an empty inventory write \"devices: []\")", name)
	}
	var devices ast.Node
	body := f.Docs[0].Body
	switch m := body.(type) {
	case *ast.MappingNode:
		for _, kv := range m.Values {
			if kv.Key.String() == "devices" {
				devices = kv.Value
			}
		}
	case *ast.MappingValueNode:
		if m.Key.String() == "devices" {
			devices = m.Value
		}
	}
	if devices == nil {
		l, c := pos(body)
		return nil, nil, fmt.Errorf("%s:%d:%d: want a top-level \"devices:\" list", name, l, c)
	}
	if _, ok := devices.(*ast.NullNode); ok {
		return nil, nil, nil
	}
	seq, ok := devices.(*ast.SequenceNode)
	if !ok {
		l, c := pos(devices)
		return nil, nil, fmt.Errorf("%s:%d:%d: \"devices\" must be a list of devices", name, l, c)
	}
	var out []raw
	var errs Errors
	for _, item := range seq.Values {
		l, c := pos(item)
		var kvs []*ast.MappingValueNode
		switch m := item.(type) {
		case *ast.MappingNode:
			kvs = m.Values
		case *ast.MappingValueNode:
			kvs = []*ast.MappingValueNode{m}
		default:
			errs = append(errs, &LineError{File: name, Line: l, Col: c, Err: errors.New("a device must be a mapping of id, owner, ...")})
			continue
		}
		rw := raw{line: l, col: c, fields: map[string][]value{}}
		var bad *LineError
		for _, kv := range kvs {
			kl, kc := pos(kv.Key)
			f, ok := columns[kv.Key.String()]
			if !ok {
				bad = &LineError{File: name, Line: kl, Col: kc, Err: fmt.Errorf("unknown key %q", kv.Key.String())}
				break
			}
			vals, err := scalars(kv.Value, listFields[f])
			if err != nil {
				vl, vc := pos(kv.Value)
				bad = &LineError{File: name, Line: vl, Col: vc, Err: fmt.Errorf("%s: %v", f, err)}
				break
			}
			rw.fields[f] = append(rw.fields[f], vals...)
		}
		if bad != nil {
			errs = append(errs, bad)
			continue
		}
		out = append(out, rw)
	}
	return out, errs, nil
}

func scalars(n ast.Node, list bool) ([]value, error) {
	switch v := n.(type) {
	case *ast.NullNode:
		return nil, nil
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.LiteralNode:
		l, c := pos(n)
		s := v.GetToken().Value
		switch v := v.(type) {
		case *ast.StringNode:
			s = v.Value
		case *ast.LiteralNode: // | or >: the token is the indicator
			s = v.Value.Value
		}
		return []value{{s, l, c}}, nil
	case *ast.SequenceNode:
		if !list {
			return nil, errors.New("want a single value, not a list")
		}
		var out []value
		for _, e := range v.Values {
			vs, err := scalars(e, false)
			if err != nil {
				return nil, err
			}
			out = append(out, vs...)
		}
		return out, nil
	}
	return nil, errors.New("want a string")
}

// device validates one raw entry.
func (r raw) device(file string) (*Device, *LineError) {
	d := &Device{File: file, Line: r.line}
	fail := func(v value, format string, args ...any) (*Device, *LineError) {
		return nil, &LineError{File: file, Line: v.line, Col: v.col, Err: fmt.Errorf(format, args...)}
	}
	one := func(f string) (value, bool) {
		vs := r.fields[f]
		if len(vs) == 0 {
			return value{}, false
		}
		return vs[0], true
	}
	id, ok := one("id")
	if !ok {
		return nil, &LineError{File: file, Line: r.line, Col: r.col, Err: errors.New("device has no id")}
	}
	if strings.TrimSpace(id.s) == "" { // YAML's id: "" (an empty CSV cell is absent)
		return fail(id, "device has no id")
	}
	d.ID = id.s
	if v, ok := one("owner"); ok {
		d.Owner = v.s
	}
	if v, ok := one("assigned_site"); ok {
		d.AssignedSite = v.s
	}
	if v, ok := one("assigned_country"); ok {
		cc := strings.ToUpper(v.s)
		if !isCountry(cc) {
			return fail(v, "assigned_country %q is not an ISO 3166-1 alpha-2 code (e.g. DE, US)", v.s)
		}
		d.AssignedCountry = cc
	}
	if v, ok := one("home_timezone"); ok {
		if v.s == "Local" || strings.HasPrefix(v.s, "/") {
			return fail(v, "home_timezone %q is not an IANA time zone name (e.g. Europe/Berlin)", v.s)
		}
		loc, err := time.LoadLocation(v.s)
		if err != nil {
			return fail(v, "home_timezone %q is not an IANA time zone name (e.g. Europe/Berlin): %v", v.s, err)
		}
		d.HomeTimezone, d.Location = v.s, loc
	}
	for _, v := range r.fields["macs"] {
		hw, err := net.ParseMAC(v.s)
		if err != nil || len(hw) != 6 {
			return fail(v, "mac %q is not a 48-bit MAC address (e.g. dc:a6:32:01:02:03)", v.s)
		}
		m := [6]byte(hw)
		if m == [6]byte{} || m[0]&1 != 0 {
			return fail(v, "mac %q is a zero or multicast address and cannot identify a device", v.s)
		}
		d.MACs = append(d.MACs, m)
	}
	for _, v := range r.fields["hostnames"] {
		h := strings.ToLower(strings.TrimSuffix(v.s, "."))
		if !validHostname(h) {
			return fail(v, "hostname %q is not a valid host name", v.s)
		}
		d.Hostnames = append(d.Hostnames, h)
	}
	for _, v := range r.fields["ips"] {
		ip, err := netip.ParseAddr(v.s)
		if err != nil {
			return fail(v, "ip %q is not an IP address: %v", v.s, err)
		}
		if ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return fail(v, "ip %q is an unspecified, multicast or broadcast address and cannot identify a device", v.s)
		}
		// Flow addresses carry no zone: fe80::1%eth0 is matched as fe80::1.
		d.IPs = append(d.IPs, ip.Unmap().WithZone(""))
	}
	if v, ok := one("wireguard_public_key"); ok {
		k, err := base64.StdEncoding.DecodeString(v.s)
		if err != nil || len(k) != 32 {
			return fail(v, "wireguard_public_key is not a base64 32-byte key (as printed by `wg pubkey`)")
		}
		d.WireGuardKey = v.s
	}
	for _, v := range r.fields["vpn_peers"] {
		d.VPNPeers = append(d.VPNPeers, v.s)
	}
	// A remote device may be known only by its VPN identity: the sensor
	// then finds it through its VPN session (sensor/egress).
	if len(d.MACs)+len(d.Hostnames)+len(d.IPs)+len(d.VPNPeers) == 0 && d.WireGuardKey == "" {
		return nil, &LineError{File: file, Line: r.line, Col: r.col, Err: fmt.Errorf("device %q has no macs, hostnames, ips, wireguard_public_key or vpn_peers to match it by", d.ID)}
	}
	return d, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > maxHostname {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// countries is ISO 3166-1 alpha-2 (officially assigned codes) plus XK,
// the user-assigned code in common use for Kosovo.
const countries = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK"

func isCountry(cc string) bool {
	return len(cc) == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && strings.Contains(countries, cc)
}
