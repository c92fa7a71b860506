package consume

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/cputime"
	"github.com/edgeward/edgeward/internal/geofixture"
	"github.com/edgeward/edgeward/pipeline/enrich"
)

// benchMix is n flows of a working day at a company gateway, in time
// order: office and remote (VPN) laptops browsing SaaS and CDNs over TLS
// and QUIC, DNS to the office resolver, some LAN traffic, and one flow in
// a hundred from a remote-access, VPN or tunnel tool. Three remote laptops
// in ten; two of them share one home address (the built-in
// laptop_farm.shared_egress_ip fires), so about a third of the flows also
// go through the repartition topic.
func benchMix(n int) []*flow.Record {
	base := time.Date(2026, 11, 17, 13, 0, 0, 0, time.UTC)
	names := []string{"www.google.com", "outlook.office365.com", "slack.com", "github.com",
		"d3kxy1.cloudfront.net", "api.zoom.us", "update.microsoft.com", "www.nytimes.com"}
	apps := []struct{ app, cat string }{{"anydesk", "remote_access"}, {"tailscale", "vpn"}, {"ssh", "remote_access"}, {"ngrok", "tunnel"}}
	devices := make([]*flow.Device, 40)
	for i := range devices {
		devices[i] = &flow.Device{IP: netip.AddrFrom4([4]byte{10, 10, 0, byte(20 + i)}), MAC: flow.MAC{0x3c, 0x22, 0xfb, 0, 0, byte(i)},
			Vendor: "Apple, Inc.", ID: fmt.Sprintf("LT-%04d", i), Owner: "someone", AssignedSite: "nyc",
			AssignedCountry: "US", HomeTimezone: "America/New_York", MatchedBy: "mac"}
		if i%10 < 3 {
			devices[i].IP, devices[i].MAC, devices[i].MatchedBy = netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i)}), flow.MAC{}, "ip"
		}
	}
	out := make([]*flow.Record, 0, n)
	for i := range n {
		t := base.Add(time.Duration(i) * 50 * time.Millisecond)
		d := devices[i%len(devices)]
		rec := &flow.Record{
			Schema: flow.Schema, ID: fmt.Sprintf("%016x", i), CommunityID: fmt.Sprintf("1:%022x", i),
			Start: t, End: t.Add(2 * time.Second), DurationS: 2, EndReason: flow.EndFIN, Proto: "tcp", Direction: "outbound",
			Src:    flow.Endpoint{IP: d.IP, Port: uint16(40000 + i%20000), Packets: 12, Bytes: 2400, PayloadBytes: 1800},
			Dst:    flow.Endpoint{IP: netip.AddrFrom4([4]byte{93, 184, byte(i >> 8), byte(i)}), Port: 443, Packets: 14, Bytes: 18000, PayloadBytes: 17000, Name: names[i%len(names)], NameSource: "sni"},
			Sensor: &flow.Sensor{ID: "gw-nyc-1", Site: "nyc"}, Device: d,
			TCP: &flow.TCP{SrcFlags: flow.FlagSYN | flow.FlagACK | flow.FlagFIN, DstFlags: flow.FlagSYN | flow.FlagACK | flow.FlagFIN, History: "ShADadFf"},
			TLS: &flow.TLS{SNI: names[i%len(names)], Version: "1.3", ALPN: []string{"h2"}, JA4: "t13d1516h2_8daaf6152771_02713d6af862"},
		}
		if d.MatchedBy == "ip" {
			home := byte(i % len(devices))
			if home == 0 || home == 1 {
				home = 0 // LT-0000 and LT-0001 share a home
			}
			rec.Egress = &flow.Egress{IP: netip.AddrFrom4([4]byte{203, 0, 113, home}), Port: 51820, Source: "wireguard", Peer: "key"}
		}
		switch {
		case i%8 == 1:
			rec.Proto, rec.Direction, rec.TCP, rec.TLS = "udp", "internal", nil, nil
			rec.Dst = flow.Endpoint{IP: netip.MustParseAddr("10.10.0.2"), Port: 53, Packets: 1, Bytes: 120}
			rec.DNS = &flow.DNS{Query: names[i%len(names)], QType: "A", RCode: "NOERROR"}
		case i%8 == 2:
			rec.Proto, rec.TCP = "udp", nil
			rec.QUIC = &flow.QUIC{Version: "1"}
		case i%50 == 3:
			rec.Direction, rec.TLS = "internal", nil
			rec.Dst = flow.Endpoint{IP: netip.MustParseAddr("10.10.0.5"), Port: 445, Bytes: 90000}
		}
		if i%100 == 7 {
			a := apps[(i/100)%len(apps)]
			rec.App, rec.AppCategory, rec.AppSource = a.app, a.cat, "sni"
		}
		out = append(out, rec)
	}
	return out
}

// benchEnricher loads GeoIP, ASN and anonymizer fixtures for benchMix's
// addresses.
func benchEnricher(b testing.TB) *enrich.Enricher {
	b.Helper()
	dir := b.TempDir()
	nets := []geofixture.Network{
		{Prefix: netip.MustParsePrefix("93.184.0.0/17"), Country: "US", ASN: 15133, ASOrg: "Edgecast Inc."},
		{Prefix: netip.MustParsePrefix("93.184.128.0/17"), Country: "IE", ASN: 16509, ASOrg: "Amazon.com, Inc."},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "US", ASN: 7922, ASOrg: "Comcast Cable Communications, LLC"},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "DE", ASN: 64501, ASOrg: "Fernhost GmbH", Hosting: true},
	}
	geo, asn, anon := filepath.Join(dir, "geo.mmdb"), filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "anon.mmdb")
	for _, w := range []struct {
		path  string
		write func(string, []geofixture.Network) error
	}{{geo, geofixture.WriteCountry}, {asn, geofixture.WriteASN}, {anon, geofixture.WriteAnon}} {
		if err := w.write(w.path, nets); err != nil {
			b.Fatal(err)
		}
	}
	enr, err := enrich.New(enrich.Config{GeoIP: geo, ASN: asn, Anon: anon})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { enr.Close() })
	return enr
}

// benchValues encodes benchMix in the wire format, rounds times over so
// that event time keeps moving forward, with the sensor's message keys.
func benchValues(n int) (keys, values [][]byte) {
	const day = 8192
	mix := benchMix(day)
	span := mix[day-1].End.Sub(mix[0].Start) + time.Minute
	for i := range n {
		r := mix[i%day]
		shift := time.Duration(i/day) * span
		start, end := r.Start, r.End
		r.Start, r.End = start.Add(shift), end.Add(shift)
		keys = append(keys, []byte(deviceKey(r)))
		values = append(values, r.AppendBinary(nil))
		r.Start, r.End = start, end
	}
	return keys, values
}

// reportCPU reports flows per second of wall clock and of CPU time, and
// the CPU time per flow.
func reportCPU(b *testing.B, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "flows/s")
	if cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "flows/cpu-s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/flow")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDecodeProcess is the per-flow cost of the pipeline without a
// broker: a partition worker decodes the binary record, enriches it
// (GeoIP, ASN, anonymizer fixtures), runs the built-in pack, routes it to
// the repartition topic when a rule keyed by something else than the
// device needs it, and encodes the alerts; publishing is left out.
//
//	go test ./pipeline/consume -run '^$' -bench DecodeProcess -benchtime 1000000x
func BenchmarkDecodeProcess(b *testing.B) {
	c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Rules: builtinRules(b), Enrich: benchEnricher(b)})
	if err != nil {
		b.Fatal(err)
	}
	w := newWorker(c.flows, 0)
	w.reset()
	_, values := benchValues(8192 * 8)
	headers := []kafka.Header{{Key: HeaderContentType, Value: []byte(flow.ContentType)}}
	alerts, forwarded := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cputime.Now(), time.Now()
	for i := range b.N {
		w.val = append(w.val[:0], values[i%len(values)]...)
		w.flow(int64(i), headers)
		if len(w.out) >= 1000 { // a batch: what publish would send
			alerts += w.nAlerts
			forwarded += len(w.out) - w.nAlerts
			w.resetBatch()
		}
	}
	reportCPU(b, b.N, time.Since(t0), cputime.Now()-cpu0)
	if w.n.forwarded == 0 || c.stats.dlq.Load() != 0 {
		b.Fatalf("forwarded %d, dead letters %d", w.n.forwarded, c.stats.dlq.Load())
	}
	b.ReportMetric(float64(w.n.forwarded)/float64(b.N), "forwarded/flow")
}

// BenchmarkPipelineKafka is the pipeline through Kafka: the flows are in
// the flows topic (4 partitions) first, then one Consumer reads them,
// decodes, enriches, runs the built-in pack, forwards a third of them
// through the repartition topic and runs the egress rule there, publishes
// alerts with acks=all, and commits, until every record of both topics is
// committed. The in-process broker runs in the same process, so the CPU
// time includes it serving the fetches and taking the writes.
//
//	go test ./pipeline/consume -run '^$' -bench PipelineKafka -benchtime 200000x
func BenchmarkPipelineKafka(b *testing.B) {
	h := newHarness(b)
	h.groupID = fmt.Sprintf("bench-%d", b.N)
	keys, values := benchValues(b.N)
	cl := h.c.Client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerBatchMaxBytes(16<<20))
	hdr := []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(flow.ContentType)}}
	for i := 0; i < b.N; i += 10000 {
		var recs []*kgo.Record
		for j := i; j < min(i+10000, b.N); j++ {
			recs = append(recs, &kgo.Record{Topic: h.flows, Key: keys[j], Value: values[j], Headers: hdr})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	cfg := h.config(nil)
	cfg.Enrich, cfg.Logger = benchEnricher(b), nil
	b.ResetTimer()
	cpu0, t0 := cputime.Now(), time.Now()
	in := h.start(cfg)
	h.waitDone(10 * time.Minute)
	in.close(b)
	wall, cpu := time.Since(t0), cputime.Now()-cpu0
	b.StopTimer()
	reportCPU(b, b.N, wall, cpu)
	if st := in.c.Stats(); st.Consumed != uint64(b.N) || st.Forwarded == 0 {
		b.Fatalf("stats %+v for %d records", st, b.N)
	}
}
