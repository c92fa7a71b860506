package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/rules/builtin"
)

// runRules is `edgeward rules lint|test PATH...`.
func runRules(_ context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: edgeward rules lint [--builtin] PATH...\n       edgeward rules test [--builtin] [-v] PATH...\n\n"+
			"lint reports every problem in every rule file at once, as file:line:col: message.\n"+
			"test runs the tests written inside the rules (docs/rules.md).\n"+
			"PATH is a rule file or a directory of them. --builtin loads the built-in pack\n"+
			"(docs/rules-builtin.md) first, so PATHs may override its rules, lists and macros;\n"+
			"with --builtin, PATH may be omitted. Exit status 1 on any problem or failure.\n")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fs := flag.NewFlagSet("rules "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "test: list passing tests too")
	withBuiltin := fs.Bool("builtin", false, "load the built-in rule pack before PATHs (PATHs override it)")
	paths, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(paths) == 0 && !*withBuiltin {
		usage()
		return 2
	}
	schema, err := pipeline.Schema()
	if err != nil {
		fmt.Fprintf(stderr, "edgeward rules: %v\n", err)
		return 1
	}
	opts := rules.Options{Schema: schema}
	if *withBuiltin {
		opts.Builtin = builtin.FS()
	}
	empty := emptyDirs(paths)
	for _, d := range empty {
		fmt.Fprintln(stdout, d)
	}
	switch args[0] {
	case "lint":
		diags := rules.Lint(paths, opts)
		for _, d := range diags {
			fmt.Fprintln(stdout, d)
		}
		if n := len(empty) + len(diags); n > 0 {
			fmt.Fprintf(stderr, "edgeward rules lint: %d problem(s)\n", n)
			return 1
		}
		fmt.Fprintln(stderr, "edgeward rules lint: no problems")
		return 0
	case "test":
		results, err := rules.Test(paths, opts)
		if err != nil {
			var diags rules.Diagnostics
			if errors.As(err, &diags) {
				for _, d := range diags {
					fmt.Fprintln(stdout, d)
				}
			} else {
				fmt.Fprintf(stderr, "edgeward rules test: %v\n", err)
			}
			return 1
		}
		failed := 0
		for _, r := range results {
			if !r.Pass {
				failed++
			}
			if !r.Pass || *verbose {
				fmt.Fprintln(stdout, r)
			}
		}
		fmt.Fprintf(stderr, "edgeward rules test: %d passed, %d failed\n", len(results)-failed, failed)
		if failed > 0 || len(empty) > 0 {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "edgeward rules: unknown subcommand %q\n", args[0])
	usage()
	return 2
}

// emptyDirs is a problem for each of paths that is a directory without
// rule files: lint and test would check nothing there and pass, which a
// mistyped directory or files named *.yml.tmpl must not.
func emptyDirs(paths []string) rules.Diagnostics {
	var ds rules.Diagnostics
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue // Lint and Load report a path they cannot read
		}
		if files, _ := rules.RuleFiles([]string{p}); len(files) == 0 {
			ds = append(ds, rules.Diagnostic{File: p, Message: "no rule files (*.yml, *.yaml) in the directory"})
		}
	}
	return ds
}

// parseInterspersed parses flags anywhere among the positional arguments
// (`rules test DIR -v` as well as `rules test -v DIR`), which the flag
// package stops at, and returns the positional ones. After "--" every
// argument is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
