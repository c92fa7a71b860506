package pipeline

import "github.com/edgeward/edgeward/rules"

// Input is the rule input of the flow last processed, enriched, e.g. for a
// rules.Matcher that routes the flow after Process; valid until the next
// call to Process.
func (p *Pipeline) Input() *rules.Input { return &p.in }
