package sensor_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/corpus"
	"github.com/edgeward/edgeward/sensor"
)

func readAll(t *testing.T, path string) ([]flow.Record, sensor.Stats, error) {
	t.Helper()
	var recs []flow.Record
	st, err := sensor.ReadFile(context.Background(), path, sensor.Config{}, func(r *flow.Record) {
		recs = append(recs, *r.Clone())
	})
	return recs, st, err
}

// tuple is a VLAN-blind, direction-blind conversation key, the identity
// tshark's conversation table uses.
type tuple struct {
	proto string
	a, b  string // "ip port", a < b
}

func tupleOf(proto, ip1 string, p1 int, ip2 string, p2 int) (tuple, bool) {
	x, y := fmt.Sprintf("%s %d", ip1, p1), fmt.Sprintf("%s %d", ip2, p2)
	if x > y {
		return tuple{proto, y, x}, true
	}
	return tuple{proto, x, y}, false
}

// dirCount is what the two ends of a tuple sent: [0] from tuple.a, [1] from tuple.b.
type dirCount struct{ pkts, bytes [2]uint64 }

func ourCounts(recs []flow.Record) map[tuple]*dirCount {
	m := map[tuple]*dirCount{}
	for _, r := range recs {
		k, swapped := tupleOf(r.Proto, r.Src.IP.String(), int(r.Src.Port), r.Dst.IP.String(), int(r.Dst.Port))
		c := m[k]
		if c == nil {
			c = &dirCount{}
			m[k] = c
		}
		i := 0
		if swapped {
			i = 1
		}
		c.pkts[i] += r.Src.Packets
		c.bytes[i] += r.Src.Bytes
		c.pkts[1-i] += r.Dst.Packets
		c.bytes[1-i] += r.Dst.Bytes
	}
	return m
}

// TestCorpusEveryCapture reads every corpus capture: none may panic, the
// damaged ones must say what is wrong and where, and keep the flows of the
// packets before the damage.
func TestCorpusEveryCapture(t *testing.T) {
	dir := corpus.Dir(t)
	damaged := map[string]struct {
		packets int64    // frames read before the damage
		flows   int      // flows those frames make
		msg     []string // the error must contain all of these
	}{
		"ndpi-fuzz-2021-10-13.pcap":         {1, 0, []string{"packet 2", "byte offset 237", "cut short"}},
		"sv-tls_DER-incomplete-header.pcap": {6, 2, []string{"packet 7", "byte offset 5035", "4325376"}},
		"gopacket-le-test901.pcapng":        {1, 1, []string{"packet 2", "unsupported version"}},
	}
	for _, e := range corpus.Manifest(t, dir) {
		t.Run(e.ID, func(t *testing.T) {
			recs, st, err := readAll(t, filepath.Join(dir, e.File))
			want, isDamaged := damaged[e.ID]
			switch {
			case isDamaged:
				if err == nil {
					t.Fatalf("no error for a damaged capture")
				}
				for _, m := range want.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				if st.Packets != want.packets || len(recs) != want.flows {
					t.Errorf("kept %d packets / %d flows before the damage, want %d / %d", st.Packets, len(recs), want.packets, want.flows)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if e.ID == "zeek-empty.pcap" && (st.Packets != 0 || len(recs) != 0) {
				t.Errorf("empty capture gave %d packets, %d flows", st.Packets, len(recs))
			}
		})
	}
}

// TestCorpusConversationCounts compares the number of distinct TCP and UDP
// conversations with tshark's for every capture. Tuples are counted
// VLAN-blind, as tshark's conversation table keys them; edgeward's records
// keep VLANs apart (zeek-vlan-collisions: three records, one tuple).
func TestCorpusConversationCounts(t *testing.T) {
	dir := corpus.Dir(t)
	for _, e := range corpus.Manifest(t, dir) {
		t.Run(e.ID, func(t *testing.T) {
			recs, _, _ := readAll(t, filepath.Join(dir, e.File))
			n := map[string]int{}
			for k := range ourCounts(recs) {
				n[k.proto]++
			}
			want := e.Expected.Tshark.Conversations
			if n["tcp"] != want.TCP || n["udp"] != want.UDP {
				t.Errorf("tcp/udp conversations = %d/%d, tshark %d/%d", n["tcp"], n["udp"], want.TCP, want.UDP)
			}
		})
	}
}

// TestCorpusConvOracle checks per-direction packet counts against the
// tshark oracle tables exactly, and IP-layer bytes against tshark's ip.len /
// ipv6.plen per packet when tshark is installed.
func TestCorpusConvOracle(t *testing.T) {
	dir := corpus.Dir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "expected", "*.conv.csv"))
	if len(files) == 0 {
		t.Fatal("no conv.csv oracle files in the corpus")
	}
	tshark, _ := exec.LookPath("tshark")
	if tshark == "" {
		t.Log("tshark not installed: checking packets only, not IP bytes")
	}
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), ".conv.csv")
		t.Run(id, func(t *testing.T) {
			pcap := filepath.Join(dir, "pcaps", id)
			recs, _, err := readAll(t, pcap)
			if err != nil {
				t.Fatal(err)
			}
			ours := ourCounts(recs)
			want := readConvCSV(t, f)
			if len(ours) != len(want) {
				t.Errorf("%d conversations, oracle %d", len(ours), len(want))
			}
			for k, w := range want {
				g := ours[k]
				if g == nil {
					t.Errorf("%v: missing", k)
					continue
				}
				if g.pkts != w.pkts {
					t.Errorf("%v: packets %v, oracle %v", k, g.pkts, w.pkts)
				}
			}
			if tshark == "" {
				return
			}
			for k, w := range tsharkIPBytes(t, tshark, pcap) {
				if g := ours[k]; g == nil || g.bytes != w {
					t.Errorf("%v: IP bytes %v, tshark %v", k, g, w)
				}
			}
		})
	}
}

func readConvCSV(t *testing.T, path string) map[tuple]*dirCount {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	atoi := func(r []string, c string) int { n, _ := strconv.Atoi(r[col[c]]); return n }
	out := map[tuple]*dirCount{}
	for _, r := range rows[1:] {
		k, swapped := tupleOf(strings.ToLower(r[col["proto"]]), r[col["src"]], atoi(r, "sport"), r[col["dst"]], atoi(r, "dport"))
		c := out[k]
		if c == nil {
			c = &dirCount{}
			out[k] = c
		}
		i := 0
		if swapped {
			i = 1
		}
		c.pkts[i] += uint64(atoi(r, "packets_src_to_dst"))
		c.pkts[1-i] += uint64(atoi(r, "packets_dst_to_src"))
	}
	return out
}

// tsharkIPBytes sums each packet's IP length (innermost IP header) per
// conversation direction.
func tsharkIPBytes(t *testing.T, tshark, pcap string) map[tuple][2]uint64 {
	out, err := exec.Command(tshark, "-n", "-r", pcap, "-Y", "tcp or udp", "-T", "fields", "-E", "occurrence=l",
		"-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport",
		"-e", "ip.len", "-e", "ipv6.plen").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	m := map[tuple][2]uint64{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 10 {
			continue
		}
		src, dst, proto, sp, dp := f[0], f[1], "tcp", f[4], f[5]
		if src == "" {
			src, dst = f[2], f[3]
		}
		if sp == "" {
			proto, sp, dp = "udp", f[6], f[7]
		}
		n, _ := strconv.Atoi(f[8])
		if f[8] == "" {
			n, _ = strconv.Atoi(f[9])
			n += 40
		}
		spn, _ := strconv.Atoi(sp)
		dpn, _ := strconv.Atoi(dp)
		k, swapped := tupleOf(proto, src, spn, dst, dpn)
		v := m[k]
		if swapped {
			v[1] += uint64(n)
		} else {
			v[0] += uint64(n)
		}
		m[k] = v
	}
	return m
}

// TestCorpusZeekConn compares packets and IP bytes per direction, and the
// choice of initiator, with Zeek's conn.log for every Zeek baseline.
func TestCorpusZeekConn(t *testing.T) {
	dir := corpus.Dir(t)
	logs, _ := filepath.Glob(filepath.Join(dir, "expected", "*.zeek-conn.log"))
	for _, lf := range logs {
		id := strings.TrimSuffix(filepath.Base(lf), ".zeek-conn.log")
		t.Run(id, func(t *testing.T) {
			recs, _, err := readAll(t, filepath.Join(dir, "pcaps", id))
			if err != nil {
				t.Fatal(err)
			}
			ours := ourCounts(recs)
			initiator := map[tuple]string{}
			for _, r := range recs {
				k, _ := tupleOf(r.Proto, r.Src.IP.String(), int(r.Src.Port), r.Dst.IP.String(), int(r.Dst.Port))
				initiator[k] = fmt.Sprintf("%s %d", r.Src.IP, r.Src.Port)
			}
			want := map[tuple]*dirCount{}
			var keys []tuple
			for _, row := range corpus.ZeekLog(t, lf) {
				op, _ := strconv.Atoi(row["id.orig_p"])
				rp, _ := strconv.Atoi(row["id.resp_p"])
				if row["proto"] == "icmp" { // Zeek puts type/code in the ports; edgeward in "icmp"
					op, rp = 0, 0
				}
				k, swapped := tupleOf(row["proto"], row["id.orig_h"], op, row["id.resp_h"], rp)
				// Zeek keeps a lone SYN-ACK's sender as originator (history
				// "H", conn_state OTH); edgeward names its receiver, who sent
				// the SYN that was not captured.
				lonesynack := row["history"] == "H"
				if !lonesynack && initiator[k] != "" && initiator[k] != fmt.Sprintf("%s %d", row["id.orig_h"], op) {
					t.Errorf("%v: initiator %s, Zeek %s %d", k, initiator[k], row["id.orig_h"], op)
				}
				c := want[k]
				if c == nil {
					c = &dirCount{}
					want[k] = c
					keys = append(keys, k)
				}
				i := 0
				if swapped {
					i = 1
				}
				n := func(f string) uint64 { v, _ := strconv.ParseUint(row[f], 10, 64); return v }
				c.pkts[i] += n("orig_pkts")
				c.bytes[i] += n("orig_ip_bytes")
				c.pkts[1-i] += n("resp_pkts")
				c.bytes[1-i] += n("resp_ip_bytes")
			}
			sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
			for _, k := range keys {
				if g := ours[k]; g == nil || *g != *want[k] {
					t.Errorf("%v: got %+v, Zeek %+v", k, g, *want[k])
				}
			}
		})
	}
}

// TestCommunityIDMatchesZeek checks community_id against Zeek's value.
func TestCommunityIDMatchesZeek(t *testing.T) {
	dir := corpus.Dir(t)
	rows := corpus.ZeekLog(t, filepath.Join(dir, "expected", "zeek-http-get.pcap.zeek-conn-cut.log"))
	if len(rows) == 0 { // the cut log has no #fields header: take its last line
		b, _ := os.ReadFile(filepath.Join(dir, "expected", "zeek-http-get.pcap.zeek-conn-cut.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				rows = []map[string]string{{"line": line}}
			}
		}
	}
	recs, _, err := readAll(t, filepath.Join(dir, "pcaps", "zeek-http-get.pcap"))
	if err != nil || len(recs) != 1 || len(rows) != 1 {
		t.Fatalf("records %d, rows %d, err %v", len(recs), len(rows), err)
	}
	var want string
	for _, v := range rows[0] {
		for _, f := range strings.Split(v, "\t") {
			if strings.HasPrefix(f, "1:") {
				want = f
			}
		}
	}
	if want == "" || recs[0].CommunityID != want {
		t.Errorf("community_id %s, Zeek %q", recs[0].CommunityID, want)
	}
}
