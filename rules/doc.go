// Package rules owns edgeward's detection language and its engine: YAML
// files of rules, lists and macros with CEL conditions typed against
// flow.Record (plus caller-declared enrichment fields), loading and linting
// with file:line:col diagnostics, in-file tests, the per-flow evaluation
// with aggregation windows and suppression, OCSF Detection Finding alerts,
// and hot reload of a rules directory. docs/rules.md is the user guide.
package rules
