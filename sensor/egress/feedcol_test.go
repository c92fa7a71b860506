package egress

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A feed line's column counts from the start of the line as written,
// leading blanks included: an operator goes to file:line:col.
func TestParseFeedLineColumnWithIndent(t *testing.T) {
	_, _, err := ParseFeedLine([]byte(`    {"inner":"10.99.0.1",,}`))
	var le *LineError
	if !errors.As(err, &le) || le.Col != 26 {
		t.Errorf("error %v (col %d), want col 26, the second comma", err, colOf(le))
	}
}

func colOf(le *LineError) int {
	if le == nil {
		return 0
	}
	return le.Col
}

// A line that is JSON but not an object names what is wrong, not an
// empty field name.
func TestParseFeedLineNotAnObject(t *testing.T) {
	for _, line := range []string{`["10.99.0.1"]`, `"10.99.0.1"`, `42`} {
		_, _, err := ParseFeedLine([]byte(line))
		if err == nil || strings.HasPrefix(err.Error(), " ") || !strings.Contains(err.Error(), "object") {
			t.Errorf("%s: error %q, want one saying a line is a JSON object", line, err)
		}
	}
}

// A closed session without a usable LastSeen (the Store reads it as ending
// where it started) is written as a line ParseFeedLine accepts.
func TestFormatFeedLineClosedWithoutEnd(t *testing.T) {
	s := sess("10.99.0.11", "203.0.113.50:51820", "a.kim", at(10, 0), time.Time{}, false)
	for _, last := range []time.Time{{}, at(9, 0)} {
		s.LastSeen = last
		line := FormatFeedLine(nil, s)
		back, ok, err := ParseFeedLine(line)
		if err != nil || !ok || back.Active || !back.LastSeen.Equal(s.FirstSeen) {
			t.Errorf("LastSeen %v: %s read back as %+v, %v, %v; want closed at its start", last, line, back, ok, err)
		}
	}
}
