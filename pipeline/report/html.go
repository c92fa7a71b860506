package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

//go:embed report.tmpl
var reportTemplate string

// WriteHTML writes the report as one self-contained HTML document: inline
// CSS and SVG, no external resources, readable without JavaScript. Every
// string from flows and alerts is escaped by html/template. The output
// depends only on what was fed in and m.
func (r *Report) WriteHTML(w io.Writer, m Meta) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"inc":       func(i int) int { return i + 1 },
		"attackURL": attackURL,
	}).Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("report: parsing template: %w", err)
	}
	r.mu.Lock()
	v := r.build(m)
	r.mu.Unlock()
	bw := bufio.NewWriter(w)
	if err := t.Execute(bw, v); err != nil {
		return fmt.Errorf("report: writing HTML: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: writing HTML: %w", err)
	}
	return nil
}

// attackURL is the MITRE ATT&CK page of a technique id (T1219, T1021.001).
func attackURL(id string) string {
	base, sub, _ := strings.Cut(id, ".")
	digits, ok := strings.CutPrefix(base, "T")
	if !ok || !validTechnique(digits) || (sub != "" && !validTechnique(sub)) {
		return ""
	}
	u := "https://attack.mitre.org/techniques/" + base + "/"
	if sub != "" {
		u += sub + "/"
	}
	return u
}

func validTechnique(digits string) bool {
	_, err := strconv.ParseUint(digits, 10, 16)
	return err == nil
}
