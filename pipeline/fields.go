package pipeline

import "github.com/edgeward/edgeward/rules"

// Sides are the addresses of a flow the pipeline enriches: the two
// endpoints and, for a remote device behind the corporate VPN, its public
// egress address (flow.Record.Egress).
var Sides = []string{"src", "dst", "egress"}

// AnonFlags are the anonymizer database flags, as rule fields
// <side>.anon.<flag>.
var AnonFlags = []string{"vpn", "hosting", "tor", "public_proxy", "residential_proxy"}

// IntelKinds are the kinds of intel list; a flow that matches a list of
// kind k has the field intel.<k> set to that list's name.
var IntelKinds = []string{"ip", "domain", "asn", "ja4"}

// EnrichmentFields are the fields the pipeline adds to each flow before
// rules see it (GeoIP, ASN and anonymizer databases, intel lists),
// declared so that rule files can be linted and tested against the schema
// the pipeline runs them with.
func EnrichmentFields() []rules.ExtraField {
	var f []rules.ExtraField
	for _, side := range Sides {
		f = append(f,
			rules.ExtraField{Name: side + ".geo.country", Kind: rules.KindString, Doc: "ISO 3166 alpha-2 country of the address"},
			rules.ExtraField{Name: side + ".as.number", Kind: rules.KindInt, Doc: "autonomous system number"},
			rules.ExtraField{Name: side + ".as.org", Kind: rules.KindString, Doc: "autonomous system organisation"},
		)
		for _, flag := range AnonFlags {
			f = append(f, rules.ExtraField{Name: side + ".anon." + flag, Kind: rules.KindBool, Doc: "anonymizer database flag; set (true or false) when an anonymizer database is loaded"})
		}
	}
	for _, k := range IntelKinds {
		f = append(f, rules.ExtraField{Name: "intel." + k, Kind: rules.KindString, Doc: "name of the intel list of kind " + k + " the flow matched"})
	}
	return f
}

// Schema is the rule schema of the pipeline: the flow record and its
// enrichment.
func Schema() (*rules.Schema, error) { return rules.NewSchema(EnrichmentFields()...) }
