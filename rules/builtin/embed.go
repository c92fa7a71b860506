// Package builtin is edgeward's built-in rule pack: the YAML rules and
// rule lists of this directory, embedded so the binary needs no files.
// docs/rules-builtin.md documents every rule; docs/rules.md says how user
// rule files override built-in rules, lists and macros.
//
// The subdirectory lists/ is not part of the pack: it holds the sensor's
// application-identification data (package lists).
package builtin

import (
	"embed"
	"io/fs"

	// laptop_farm.off_hours reads hours in each device's home time zone;
	// the IANA database is embedded so hosts without tzdata work too.
	_ "time/tzdata"
)

//go:embed *.yml *.txt
var files embed.FS

// FS returns the pack for rules.Options.Builtin.
func FS() fs.FS { return files }
