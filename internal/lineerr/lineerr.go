// Package lineerr reports the lines of a file that a loader skipped while
// loading the rest: the inventory, the VPN session sources. Each says
// file:line[:col] and why, as compilers do, so that an operator can go
// straight to the line.
package lineerr

import (
	"fmt"
	"strings"
)

// Error is one skipped line, and where. Col is 0 when the position inside
// the line is not known.
type Error struct {
	File      string
	Line, Col int
	Err       error
}

func (e *Error) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// List is the skipped lines of a file that otherwise loaded, one per line
// of its message.
type List []*Error

// Max bounds the lines Add keeps: a file broken throughout reports its
// first Max lines, not a message the size of the file.
const Max = 100

// Add appends e unless the list holds Max lines already.
func (l *List) Add(e *Error) {
	if len(*l) < Max {
		*l = append(*l, e)
	}
}

// Err returns the list as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l List) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}
