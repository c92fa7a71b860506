package egress

import "github.com/edgeward/edgeward/internal/lineerr"

// LineError is one line of a session source that was skipped, and where.
type LineError = lineerr.Error

// Errors lists the skipped lines of a source that otherwise loaded (at
// most lineerr.Max of them).
type Errors = lineerr.List
