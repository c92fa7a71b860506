package pipeline

import "github.com/edgeward/edgeward/rules"

// EnrichmentFields are the fields the pipeline adds to each flow before
// rules see it (GeoIP, ASN and anonymizer databases), declared so that rule
// files can be linted and tested against the schema the pipeline runs them
// with.
func EnrichmentFields() []rules.ExtraField {
	var f []rules.ExtraField
	for _, side := range []string{"src", "dst", "egress"} {
		f = append(f,
			rules.ExtraField{Name: side + ".geo.country", Kind: rules.KindString, Doc: "ISO 3166 alpha-2 country of the address"},
			rules.ExtraField{Name: side + ".as.number", Kind: rules.KindInt, Doc: "autonomous system number"},
			rules.ExtraField{Name: side + ".as.org", Kind: rules.KindString, Doc: "autonomous system organisation"},
		)
		for _, flag := range []string{"vpn", "hosting", "tor", "public_proxy", "residential_proxy"} {
			f = append(f, rules.ExtraField{Name: side + ".anon." + flag, Kind: rules.KindBool, Doc: "anonymizer database flag"})
		}
	}
	return append(f,
		rules.ExtraField{Name: "egress.ip", Kind: rules.KindString, Doc: "the device's public egress address, when known"},
	)
}

// Schema is the rule schema of the pipeline: the flow record and its
// enrichment.
func Schema() (*rules.Schema, error) { return rules.NewSchema(EnrichmentFields()...) }
