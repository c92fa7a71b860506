// Package corpus locates the shared packet-capture corpus (real captures
// from other projects with their reference outputs) for tests, and reads
// its manifest and Zeek logs.
package corpus

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir returns the corpus directory from EDGEWARD_CORPUS or ../shared/corpus
// beside the repository, or skips the test with a message saying so.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EDGEWARD_CORPUS"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(d, "manifest.jsonl")); err != nil {
		t.Skipf("capture corpus not found (set EDGEWARD_CORPUS or place it at %s): %v", d, err)
	}
	return d
}

// Entry is one manifest line; only the fields tests use are decoded.
type Entry struct {
	File string `json:"file"`
	ID   string `json:"id"`
	// Reference is expected_reference: facts from the source projects'
	// own reference files, left raw (its shape varies by source).
	Reference json.RawMessage `json:"expected_reference"`
	Expected  struct {
		Tshark struct {
			Conversations struct {
				TCP int `json:"tcp"`
				UDP int `json:"udp"`
			} `json:"tshark_conversations"`
			TLSClientHellos  int      `json:"tls_client_hellos"`
			QUICClientHellos int      `json:"quic_client_hellos"`
			SNI              []string `json:"tls_sni"`
			JA3              []string `json:"ja3"`
			DNSQueryNames    []string `json:"dns_query_names"`
			HTTPHosts        []string `json:"http_hosts"`
			Error            string   `json:"error"`
		} `json:"tshark_4_0"`
	} `json:"expected_here"`
}

// Manifest reads manifest.jsonl.
func Manifest(t testing.TB, dir string) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for line := 1; sc.Scan(); line++ {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest.jsonl:%d: %v", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("manifest.jsonl: %v", err)
	}
	return out
}

// ZeekLog reads a Zeek ASCII log into rows keyed by column name. Column
// names are normalised to use '.' (some baselines use '_' scope separators).
func ZeekLog(t testing.TB, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	var rows []map[string]string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
			for i, f := range fields {
				fields[i] = strings.Replace(strings.Replace(f, "id_orig", "id.orig", 1), "id_resp", "id.resp", 1)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || fields == nil {
			continue
		}
		vals := strings.Split(line, "\t")
		row := make(map[string]string, len(fields))
		for i, f := range fields {
			if i < len(vals) {
				row[f] = vals[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// ReferenceJA4 returns every TLS/QUIC client JA4 the reference files list
// for the capture (FoxIO's "JA4" lists and nDPI's "ja4" lists), and whether
// each comes from nDPI, whose JA4 has known deviations from the FoxIO spec.
func (e *Entry) ReferenceJA4() (foxio, ndpi []string) {
	var ref map[string]map[string]any
	_ = json.Unmarshal(e.Reference, &ref)
	for src, facts := range ref {
		for k, v := range facts {
			list, ok := v.([]any)
			if !ok || (k != "JA4" && k != "ja4") {
				continue
			}
			for _, x := range list {
				if s, ok := x.(string); ok {
					if src == "ndpi_reference_out" {
						ndpi = append(ndpi, s)
					} else {
						foxio = append(foxio, s)
					}
				}
			}
		}
	}
	return foxio, ndpi
}
