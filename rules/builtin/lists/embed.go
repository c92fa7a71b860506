// Package lists embeds the built-in list data files of this directory, so
// the sensor and the rule engine read the same copy. It holds data only;
// see README.md for the formats and sources.
package lists

import "embed"

// FS holds every *.txt list in this directory.
//
//go:embed *.txt
var FS embed.FS
