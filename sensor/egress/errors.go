package egress

import (
	"fmt"
	"strings"
)

// LineError is one line of a session source that was skipped, and where.
// Col is 0 when the position inside the line is not known.
type LineError struct {
	File      string
	Line, Col int
	Err       error
}

func (e *LineError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Errors lists the skipped lines of a source that otherwise loaded.
type Errors []*LineError

// maxErrors bounds the lines one load reports; the rest are only counted.
const maxErrors = 100

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// orNil returns es as an error, or nil when it is empty.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es *Errors) add(e *LineError) {
	if len(*es) < maxErrors {
		*es = append(*es, e)
	}
}
