package egress

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// contractLine is the example of the feed format the sensor and the demo
// generator share.
const contractLine = `{"inner":"10.99.0.11","outer":"203.0.113.50:51820","peer":"a.kim","device":"LT-0101","first_seen":"2026-11-20T13:00:00Z","last_seen":"2026-11-20T22:00:00Z"}`

func TestParseFeedLine(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	tests := []struct {
		name string
		line string
		want Session // zero with ok false
		ok   bool
		err  string // substring; "col N" asserts the column
	}{
		{name: "the contract's example", line: contractLine, ok: true, want: Session{
			Inner: netip.MustParseAddr("10.99.0.11"), Outer: netip.MustParseAddrPort("203.0.113.50:51820"), Peer: "a.kim", Device: "LT-0101",
			Source: SourceFeed, FirstSeen: utc("2026-11-20T13:00:00Z"), LastSeen: utc("2026-11-20T22:00:00Z")}},
		{name: "still connected, outer without port, extra fields", ok: true,
			line: `{"inner":"fd00::11","outer":"2001:db8::50","first_seen":"2026-11-20T13:00:00+01:00","vendor_field":{"x":1}}`,
			want: Session{Inner: netip.MustParseAddr("fd00::11"), Outer: netip.MustParseAddrPort("[2001:db8::50]:0"), Source: SourceFeed,
				FirstSeen: utc("2026-11-20T12:00:00Z"), Active: true}},
		{name: "null last_seen", ok: true, line: `{"inner":"10.0.0.1","outer":"[2001:db8::50]:443","first_seen":"2026-11-20T13:00:00Z","last_seen":null}`,
			want: Session{Inner: netip.MustParseAddr("10.0.0.1"), Outer: netip.MustParseAddrPort("[2001:db8::50]:443"), Source: SourceFeed,
				FirstSeen: utc("2026-11-20T13:00:00Z"), Active: true}},
		{name: "blank", line: "   "},
		{name: "comment", line: "# sessions exported by the ZTNA gateway"},
		{name: "no inner", line: `{"outer":"203.0.113.50","first_seen":"2026-11-20T13:00:00Z"}`, err: `"inner"`},
		{name: "bad inner", line: `{"inner":"10.99.0","outer":"203.0.113.50","first_seen":"2026-11-20T13:00:00Z"}`, err: `inner "10.99.0"`},
		{name: "no outer", line: `{"inner":"10.99.0.1","first_seen":"2026-11-20T13:00:00Z"}`, err: `"outer"`},
		{name: "bad outer", line: `{"inner":"10.99.0.1","outer":"vpn.example.com:443","first_seen":"2026-11-20T13:00:00Z"}`, err: `outer "vpn.example.com:443"`},
		{name: "unspecified outer", line: `{"inner":"10.99.0.1","outer":"0.0.0.0:1","first_seen":"2026-11-20T13:00:00Z"}`, err: "unspecified"},
		{name: "no first_seen", line: `{"inner":"10.99.0.1","outer":"203.0.113.50"}`, err: `"first_seen"`},
		{name: "bad first_seen", line: `{"inner":"10.99.0.1","outer":"203.0.113.50","first_seen":"20/11/2026"}`, err: "RFC 3339"},
		{name: "bad last_seen", line: `{"inner":"10.99.0.1","outer":"203.0.113.50","first_seen":"2026-11-20T13:00:00Z","last_seen":"later"}`, err: `last_seen "later"`},
		{name: "before 1970", line: `{"inner":"10.99.0.1","outer":"203.0.113.50","first_seen":"0000-01-01T00:00:00+01:00"}`, err: "between 1970 and 2200"},
		{name: "ends before it starts", line: `{"inner":"10.99.0.1","outer":"203.0.113.50","first_seen":"2026-11-20T13:00:00Z","last_seen":"2026-11-20T12:00:00Z"}`, err: "before first_seen"},
		{name: "JSON syntax", line: `{"inner":"10.99.0.1",,}`, err: "col 22"},
		{name: "wrong type", line: `{"inner":10,"outer":"203.0.113.50","first_seen":"2026-11-20T13:00:00Z"}`, err: "inner must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := ParseFeedLine([]byte(tc.line))
			if tc.err != "" {
				msg := ""
				if err != nil {
					msg = err.Error()
					var le *LineError
					if errors.As(err, &le) {
						msg += " col " + itoa(le.Col)
					}
				}
				if !strings.Contains(msg, tc.err) {
					t.Errorf("error %q, want one containing %q", msg, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok || !equalSession(got, tc.want) {
				t.Errorf("ParseFeedLine = %+v, %v, %v\nwant %+v, %v", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func equalSession(a, b Session) bool {
	return a.Inner == b.Inner && a.Outer == b.Outer && a.Peer == b.Peer && a.Device == b.Device && a.Source == b.Source &&
		a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) && a.Active == b.Active
}

func TestFormatFeedLineRoundTrip(t *testing.T) {
	s, _, err := ParseFeedLine([]byte(contractLine))
	if err != nil {
		t.Fatal(err)
	}
	line := FormatFeedLine(nil, s)
	if string(line) != contractLine+"\n" {
		t.Errorf("FormatFeedLine:\n%s want\n%s", line, contractLine)
	}
	s.Active, s.LastSeen, s.Outer = true, time.Time{}, netip.AddrPortFrom(s.Outer.Addr(), 0)
	back, _, err := ParseFeedLine(FormatFeedLine(nil, s))
	if err != nil || !equalSession(back, s) {
		t.Errorf("round trip: %+v, %v; want %+v", back, err, s)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func TestFeedLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.jsonl")
	writeFile(t, path, "# edgeward.sessions.v1\n"+
		contractLine+"\n"+
		`{"inner":"10.99.0.12","outer":"nowhere","first_seen":"2026-11-20T13:00:00Z"}`+"\n"+
		"\n"+
		`{"inner":"10.99.0.13",`+"\n"+
		`{"inner":"10.99.0.14","outer":"198.51.100.14:51820","peer":"b.lee","first_seen":"2026-11-20T13:00:00Z"}`+"\n"+
		strings.Repeat("x", maxFeedLine+10)+"\n"+
		`{"inner":"10.99.0.15","outer":"198.51.100.15","first_seen":"2026-11-20T13:00:00Z"}`) // no newline yet
	store := NewStore(StoreConfig{})
	f := NewFeed(path, store, nil)
	err := f.Load()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load: %v, want Errors", err)
	}
	want := []string{
		path + `:3: outer "nowhere" is not an IP address or address:port`,
		path + ":5:22: JSON: unexpected end of JSON input",
		path + ":7: line longer than 65536 bytes",
	}
	if got := strings.Split(es.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant\n%s", es.Error(), strings.Join(want, "\n"))
	}
	if store.Len() != 2 {
		t.Errorf("%d sessions loaded, want 2 (the last line has no newline yet)", store.Len())
	}
	ts := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	if s, ok := store.Lookup(netip.MustParseAddr("10.99.0.14"), ts); !ok || s.Peer != "b.lee" || !s.Active {
		t.Errorf("10.99.0.14: %+v %v", s, ok)
	}

	// The writer completes its last line and adds one: only those are read.
	appendFile(t, path, "\n"+`{"inner":"10.99.0.16","outer":"198.51.100.16","first_seen":"2026-11-20T13:00:00Z"}`+"\n")
	if err := f.Load(); err != nil {
		t.Fatalf("second Load: %v", err)
	}
	if st := f.Stats(); store.Len() != 4 || st.Lines != 4 || st.BadLines != 3 {
		t.Errorf("after the append: %d sessions, stats %+v; want 4 sessions, 4 lines, 3 bad", store.Len(), st)
	}

	// The file is replaced (log rotation): read from its start.
	tmp := path + ".new"
	writeFile(t, tmp, `{"inner":"10.99.0.17","outer":"198.51.100.17","first_seen":"2026-11-20T13:00:00Z"}`+"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := f.Load(); err != nil {
		t.Fatalf("Load after the rename: %v", err)
	}
	if _, ok := store.Lookup(netip.MustParseAddr("10.99.0.17"), ts); !ok || f.Stats().Reopened != 1 {
		t.Errorf("the replaced file was not read from its start (stats %+v)", f.Stats())
	}

	// Truncated in place and rewritten shorter: from its start too.
	writeFile(t, path, `{"inner":"10.9.0.18","outer":"198.51.100.18","first_seen":"2026-11-20T13:00:00Z"}`+"\n")
	if err := f.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Lookup(netip.MustParseAddr("10.9.0.18"), ts); !ok {
		t.Error("the truncated file was not read from its start")
	}
}

func TestFeedLoadMissing(t *testing.T) {
	f := NewFeed(filepath.Join(t.TempDir(), "none.jsonl"), NewStore(StoreConfig{}), nil)
	var es Errors
	if err := f.Load(); err == nil || errors.As(err, &es) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// waitFor polls cond until it holds or a few seconds pass: file change
// notifications arrive asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFeedRunFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.jsonl")
	writeFile(t, path, contractLine+"\n")
	store := NewStore(StoreConfig{})
	f := NewFeed(path, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, "the initial load", func() bool { return store.Len() == 1 })
	appendFile(t, path, `{"inner":"10.99.0.12","outer":"198.51.100.12","first_seen":"2026-11-20T13:00:00Z"}`+"\n")
	waitFor(t, "the appended session", func() bool { return store.Len() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func FuzzParseFeedLine(f *testing.F) {
	f.Add([]byte(contractLine))
	f.Add([]byte(`{"inner":"fd00::1","outer":"[2001:db8::1]:1","first_seen":"2026-11-20T13:00:00.5+02:00","last_seen":null}`))
	f.Add([]byte(`{"inner":"10.0.0.1",`))
	f.Add([]byte(`{"inner":"10.0.0.1","outer":"1.2.3.4","first_seen":"1970-01-01T00:30:00+01:00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok, err := ParseFeedLine(b)
		if err != nil || !ok {
			return
		}
		back, ok, err := ParseFeedLine(FormatFeedLine(nil, s))
		if err != nil || !ok {
			t.Fatalf("formatted session does not parse: %v", err)
		}
		if back.Inner != s.Inner || back.Outer != s.Outer || back.Peer != s.Peer || back.Device != s.Device ||
			!back.FirstSeen.Equal(s.FirstSeen) || back.Active != s.Active {
			t.Fatalf("round trip: %+v != %+v", back, s)
		}
	})
}
