package report

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeward/edgeward/flow"
)

// The view is what the template renders: every value already formatted
// and every list already sorted, so the output depends only on the input.

type view struct {
	Title      string
	Generated  string
	Inputs     []string // the first maxInputs
	MoreInputs int
	SensorID   string
	Site       string
	Version    string
	Period     string
	Duration   string
	Flows      string
	Bytes      string
	Devices    string
	Alerts     int
	Detections int
	Shadow     int
	Severities []sevCount
	Summary    []*alertView // the most severe first, at most summaryRows
	MoreAlerts int          // alerts not in the summary
	Timeline   timelineView
	ByDevice   []deviceRow
	ByCategory []categoryRow
	Countries  []destRow
	ASNs       []destRow
	Egress     []destRow
	Details    []*alertView
	Notes      []string
}

type sevCount struct {
	Name  string
	Short string // for the tiles
	Class string
	Count int
}

type alertView struct {
	Anchor     string
	Severity   string
	SevClass   string
	Shadow     bool
	Title      string
	Desc       string
	RuleID     string
	Category   string
	Count      int
	Value      int
	First      string
	Last       string
	Span       string
	Device     deviceView
	EgressIP   string
	EgressCC   string
	EgressName string
	EgressVia  string
	AwayFrom   string // the device's home country, when the egress is elsewhere
	Techniques []string
	Output     []kv
	Group      []kv
	Evidence   []evidenceRow
	EvidenceOf string // "5 of 37 flows" when the engine kept only the first
	Open       bool   // evidence expanded
}

type kv struct{ Key, Value string }

type deviceView struct {
	Key          string
	Label        string // what to call it: hostname, inventory id or address
	ID           string
	Owner        string
	Hostname     string
	IP           string
	MAC          string
	Vendor       string
	Site         string
	Country      string
	Unattributed bool   // no device object: Label is the flow's source address
	Unknown      bool   // a device the inventory does not know
	Sub          string // what else identifies it: owner, id, address, home country
	Short        string // the owner, or the address when there is none
}

// withSub fills Label's companion line with what Label does not already say.
func (d deviceView) withSub() deviceView {
	var parts []string
	for _, p := range []string{d.Owner, d.ID, d.IP} {
		if p != "" && p != d.Label {
			parts = append(parts, p)
		}
	}
	if d.Country != "" {
		parts = append(parts, "home "+d.Country)
	}
	d.Sub = strings.Join(parts, " · ")
	d.Unknown = d.ID == "" && d.Owner == ""
	d.Short = d.Owner
	if d.Short == "" && d.IP != d.Label {
		d.Short = d.IP
	}
	return d
}

type deviceRow struct {
	Device     deviceView
	Alerts     int
	Detections int
	MaxSev     string
	MaxClass   string
	Bar        []segment
	Categories []string
	Anchor     string // the device's most severe alert
}

type segment struct {
	Class string
	Pct   float64
	Title string
}

type categoryRow struct {
	Name       string
	Alerts     int
	Detections int
	MaxSev     string
	MaxClass   string
	Rules      []string
	Devices    int
	Anchor     string
}

type destRow struct {
	Code  string
	Name  string
	Flows string
	Bytes string
	Pct   float64 // share of all bytes, for the bar
	Share string
}

type evidenceRow struct {
	Time    string
	Date    string
	Src     string
	SrcName string
	Dst     string
	Proto   string
	App     string
	Name    string
	Country string // destination country
	AS      string // destination AS and organisation
	AppCat  string
	Out     string
	In      string
	Dur     string
	Bad     bool
}

const (
	summaryRows = 15   // alerts in the summary table
	maxDetails  = 1000 // alerts detailed with their evidence
	maxInputs   = 3    // inputs named in the header
)

// severities in report order, most severe first; index is 5 - severity_id.
var (
	sevNames = [...]string{"Critical", "High", "Medium", "Low", "Informational", "Unknown"}
	sevShort = [...]string{"Critical", "High", "Medium", "Low", "Info", "Unknown"}
)

func sevClass(id int) string {
	if id < 0 || id > 5 {
		id = 0
	}
	return "sev" + strconv.Itoa(id)
}

func sevName(id int, name string) string {
	if name != "" {
		return name
	}
	if id < 0 || id > 5 {
		id = 0
	}
	return sevNames[5-id]
}

// build makes the view; the caller holds r.mu.
func (r *Report) build(m Meta) *view {
	v := &view{
		Title:    cmp.Or(m.Title, "edgeward report"),
		Inputs:   m.Inputs[:min(len(m.Inputs), maxInputs)],
		SensorID: m.SensorID,
		Site:     m.Site,
		Version:  m.Version,
		Flows:    fmtInt(r.flows),
		Bytes:    fmtBytes(r.bytes),
		Devices:  fmtInt(uint64(len(r.devices))),
	}
	v.MoreInputs = len(m.Inputs) - len(v.Inputs)
	if !m.Generated.IsZero() {
		v.Generated = m.Generated.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	if r.devicesFull {
		v.Devices = "≥ " + v.Devices
	}
	fs := r.sorted()
	lo, hi := r.first, r.last
	for _, f := range fs {
		if !f.first.IsZero() && (lo.IsZero() || f.first.Before(lo)) {
			lo = f.first
		}
		if f.last.After(hi) {
			hi = f.last
		}
	}
	if !lo.IsZero() {
		v.Period = fmtTime(lo) + " – " + fmtTime(hi) + " UTC"
		v.Duration = fmtDur(hi.Sub(lo))
	}

	sev := r.droppedSev
	for _, n := range sev {
		v.Alerts += n
	}
	v.Detections += r.droppedDetections
	all := make([]*alertView, len(fs))
	for i, f := range fs {
		all[i] = r.alertView(i, f)
		if i >= maxDetails {
			all[i].Anchor = "details" // not detailed: link to the list
		}
		if f.shadow {
			v.Shadow++
			continue
		}
		v.Alerts++
		v.Detections += f.count
		sev[5-clampSev(f.severityID)]++
	}
	for i, n := range sev {
		if i == 5 && n == 0 {
			continue // no "Unknown" tile unless something was unknown
		}
		v.Severities = append(v.Severities, sevCount{Name: sevNames[i], Short: sevShort[i], Class: sevClass(5 - i), Count: n})
	}
	v.Details = all[:min(len(all), maxDetails)]
	v.Summary = all[:min(len(all), summaryRows)]
	v.MoreAlerts = len(v.Details) - len(v.Summary)
	v.ByDevice = byDevice(fs, all)
	v.ByCategory = byCategory(fs, all)
	country := func(k string) (string, string) { return k, countryName(k) }
	v.Countries = destRows(r.countries, r.bytes, country)
	v.ASNs = destRows(r.asns, r.bytes, func(k uint32) (string, string) { return "AS" + strconv.FormatUint(uint64(k), 10), "" })
	v.Egress = destRows(r.egressTop, r.bytes, country)
	v.Timeline = r.timeline(fs, lo, hi)

	if r.asns.evicted > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("More than %s distinct autonomous systems: AS byte counts are upper bounds (Space-Saving).", fmtInt(maxASNs)))
	}
	if r.devicesFull {
		v.Notes = append(v.Notes, fmt.Sprintf("More than %s distinct devices: only the first were counted.", fmtInt(maxDevices)))
	}
	if n := len(all) - len(v.Details); n > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%s less severe alerts are counted above but not detailed.", fmtInt(uint64(n))))
	}
	if r.droppedAlerts > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%s alerts beyond the first %s are not shown.", fmtInt(r.droppedAlerts), fmtInt(maxAlerts)))
	}
	bad := 0
	for _, f := range fs {
		for _, e := range f.evidence {
			if e.bad {
				bad++
			}
		}
	}
	if bad > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d evidence flow records could not be decoded; their OCSF endpoints are shown instead.", bad))
	}
	return v
}

func clampSev(id int) int {
	if id < 0 || id > 5 {
		return 0
	}
	return id
}

// sorted returns the findings most severe first: alerts before shadow
// findings, then severity, count, first seen and uid.
func (r *Report) sorted() []*finding {
	fs := make([]*finding, 0, len(r.alerts))
	for _, f := range r.alerts {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *finding) int {
		if a.shadow != b.shadow {
			if a.shadow {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(clampSev(b.severityID), clampSev(a.severityID)),
			cmp.Compare(b.count, a.count),
			a.first.Compare(b.first),
			cmp.Compare(a.uid, b.uid),
		)
	})
	return fs
}

func (r *Report) alertView(i int, f *finding) *alertView {
	av := &alertView{
		Anchor:     "alert-" + strconv.Itoa(i+1),
		Severity:   sevName(f.severityID, f.severity),
		SevClass:   sevClass(f.severityID),
		Shadow:     f.shadow,
		Title:      f.title,
		Desc:       f.desc,
		RuleID:     f.ruleID,
		Category:   f.category,
		Count:      f.count,
		Value:      f.value,
		Techniques: f.techniques,
		Output:     kvs(f.output),
		Group:      kvs(f.group),
		Device:     f.deviceView(),
		Open:       !f.shadow && f.severityID >= 4,
	}
	if !f.first.IsZero() {
		av.First = fmtTime(f.first)
		av.Last = fmtTime(f.last)
		if d := f.last.Sub(f.first); d > 0 {
			av.Span = fmtDur(d)
		}
	}
	for _, e := range f.evidence {
		if eg := e.rec.Egress; eg != nil && av.EgressIP == "" {
			av.EgressIP = eg.IP.String()
			av.EgressVia = eg.Source
			av.EgressCC = r.egress[eg.IP]
		}
		av.Evidence = append(av.Evidence, r.evidenceRow(&e))
	}
	if cc, ok := f.output["egress.geo.country"].(string); ok && cc != "" {
		av.EgressCC = cc
	}
	if av.EgressCC != "" {
		av.EgressName = countryName(av.EgressCC)
		if home := av.Device.Country; home != "" && home != av.EgressCC {
			av.AwayFrom = home
		}
	}
	if f.count > len(f.evidence) && len(f.evidence) > 0 {
		av.EvidenceOf = fmt.Sprintf("first %d of %s detections", len(f.evidence), fmtInt(uint64(f.count)))
	}
	return av
}

func (f *finding) deviceView() deviceView {
	for _, e := range f.evidence {
		if d := e.rec.Device; d != nil {
			dv := deviceView{
				ID: d.ID, Owner: d.Owner, Hostname: d.Hostname, Vendor: d.Vendor,
				Site: d.AssignedSite, Country: d.AssignedCountry,
			}
			if d.IP.IsValid() {
				dv.IP = d.IP.String()
			}
			if !d.MAC.IsZero() {
				dv.MAC = d.MAC.String()
			}
			dv.Label = cmp.Or(d.Hostname, d.ID, dv.IP, dv.MAC)
			dv.Key = "ip:" + dv.IP
			if d.ID != "" {
				dv.Key = "id:" + d.ID
			}
			return dv.withSub()
		}
	}
	if d := f.device; d != nil {
		dv := deviceView{ID: d.UID, Hostname: d.Hostname, IP: d.IP, MAC: d.MAC}
		dv.Label = cmp.Or(d.Hostname, d.UID, d.IP, d.MAC)
		dv.Key = "ip:" + d.IP
		if d.UID != "" {
			dv.Key = "id:" + d.UID
		}
		return dv.withSub()
	}
	if len(f.evidence) > 0 && f.evidence[0].rec.Src.IP.IsValid() {
		ip := f.evidence[0].rec.Src.IP.String()
		return deviceView{Key: "ip:" + ip, Label: ip, IP: ip, Unattributed: true}
	}
	return deviceView{Key: "none", Label: "no device", Unattributed: true}
}

func (r *Report) evidenceRow(e *evidenceFlow) evidenceRow {
	rec := e.rec
	row := evidenceRow{
		Src:     endpoint(rec.Src.IP, rec.Src.Port),
		SrcName: rec.Src.Hostname,
		Dst:     endpoint(rec.Dst.IP, rec.Dst.Port),
		Proto:   rec.Proto,
		Bad:     e.bad,
	}
	if !e.bad {
		row.Out, row.In = fmtBytes(rec.Src.Bytes), fmtBytes(rec.Dst.Bytes)
		row.Dur = fmtDur(rec.End.Sub(rec.Start))
	}
	if !rec.Start.IsZero() {
		row.Time = rec.Start.UTC().Format("15:04:05")
		row.Date = rec.Start.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	if rec.Dst.Port != 0 {
		row.Proto += "/" + strconv.Itoa(int(rec.Dst.Port))
	}
	row.App, row.AppCat = rec.App, rec.AppCategory
	row.Name = recordName(rec)
	if fi, ok := r.evidenceOf(rec.ID); ok && !e.bad {
		row.Country = fi.DstCountry
		if fi.DstASN != 0 {
			row.AS = strings.TrimSpace("AS" + strconv.FormatUint(uint64(fi.DstASN), 10) + " " + fi.DstASOrg)
		}
	}
	return row
}

// recordName is the best name the record has for its destination.
func recordName(rec *flow.Record) string {
	if rec.Dst.Name != "" {
		return rec.Dst.Name
	}
	if t := rec.TLS; t != nil && t.SNI != "" {
		return t.SNI
	}
	if h := rec.HTTP; h != nil && h.Host != "" {
		return h.Host
	}
	if d := rec.DNS; d != nil && d.Query != "" {
		return d.Query
	}
	if s := rec.SOCKS; s != nil {
		return s.Target
	}
	return ""
}

func endpoint(ip netip.Addr, port uint16) string {
	if !ip.IsValid() {
		return "?"
	}
	if port == 0 {
		return ip.String()
	}
	return netip.AddrPortFrom(ip, port).String()
}

func kvs(m map[string]any) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{Key: k, Value: fmtValue(v)})
	}
	slices.SortFunc(out, func(a, b kv) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case string:
		return x
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = fmtValue(e)
		}
		return strings.Join(s, ", ")
	case []string:
		return strings.Join(x, ", ")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func byDevice(fs []*finding, avs []*alertView) []deviceRow {
	idx := map[string]int{}
	var rows []deviceRow
	cats := map[string]map[string]bool{}
	var sev [][6]int
	for i, f := range fs {
		if f.shadow {
			continue
		}
		dv := avs[i].Device
		j, ok := idx[dv.Key]
		if !ok {
			j = len(rows)
			idx[dv.Key] = j
			// fs is sorted most severe first: the first alert of a device
			// is its most severe.
			rows = append(rows, deviceRow{Device: dv, MaxSev: avs[i].Severity, MaxClass: avs[i].SevClass, Anchor: avs[i].Anchor})
			sev = append(sev, [6]int{})
			cats[dv.Key] = map[string]bool{}
		}
		rows[j].Alerts++
		rows[j].Detections += f.count
		sev[j][5-clampSev(f.severityID)]++
		if f.category != "" {
			cats[dv.Key][f.category] = true
		}
	}
	for j := range rows {
		rows[j].Categories = sortedKeys(cats[rows[j].Device.Key])
		for s, n := range sev[j] {
			if n > 0 {
				rows[j].Bar = append(rows[j].Bar, segment{
					Class: sevClass(5 - s),
					Pct:   100 * float64(n) / float64(rows[j].Alerts),
					Title: fmt.Sprintf("%d %s", n, sevNames[s]),
				})
			}
		}
	}
	// Most severe device first, then the one with most alerts.
	slices.SortStableFunc(rows, func(a, b deviceRow) int {
		return cmp.Or(
			cmp.Compare(b.MaxClass, a.MaxClass),
			cmp.Compare(b.Alerts, a.Alerts),
			cmp.Compare(a.Device.Key, b.Device.Key),
		)
	})
	return rows
}

func byCategory(fs []*finding, avs []*alertView) []categoryRow {
	idx := map[string]int{}
	var rows []categoryRow
	rulesOf := map[string]map[string]bool{}
	devs := map[string]map[string]bool{}
	for i, f := range fs {
		if f.shadow {
			continue
		}
		c := cmp.Or(f.category, "uncategorised")
		j, ok := idx[c]
		if !ok {
			j = len(rows)
			idx[c] = j
			rows = append(rows, categoryRow{Name: c, MaxSev: avs[i].Severity, MaxClass: avs[i].SevClass, Anchor: avs[i].Anchor})
			rulesOf[c], devs[c] = map[string]bool{}, map[string]bool{}
		}
		rows[j].Alerts++
		rows[j].Detections += f.count
		rulesOf[c][f.title] = true
		devs[c][avs[i].Device.Key] = true
	}
	for j := range rows {
		rows[j].Rules = sortedKeys(rulesOf[rows[j].Name])
		rows[j].Devices = len(devs[rows[j].Name])
	}
	slices.SortStableFunc(rows, func(a, b categoryRow) int {
		return cmp.Or(
			cmp.Compare(b.MaxClass, a.MaxClass),
			cmp.Compare(b.Alerts, a.Alerts),
			cmp.Compare(a.Name, b.Name),
		)
	})
	return rows
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// destRows is the top of t, each with its share of all bytes.
func destRows[K cmp.Ordered](t *topN[K], total uint64, name func(K) (string, string)) []destRow {
	var rows []destRow
	for _, e := range t.top(topRows) {
		code, n := name(e.key)
		row := destRow{Code: code, Name: cmp.Or(e.label, n), Flows: fmtInt(e.flows), Bytes: fmtBytes(e.bytes)}
		if total > 0 {
			row.Pct = math.Round(1000*float64(e.bytes)/float64(total)) / 10
			row.Share = strconv.FormatFloat(row.Pct, 'f', 1, 64) + "%"
		}
		rows = append(rows, row)
	}
	return rows
}

// fmtInt formats n with thousands separators.
func fmtInt(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// fmtBytes formats a byte count in SI units.
func fmtBytes(n uint64) string {
	const units = "kMGTPE"
	if n < 1000 {
		return strconv.FormatUint(n, 10) + " B"
	}
	f := float64(n)
	i := -1
	for f >= 999.5 && i < len(units)-1 {
		f /= 1000
		i++
	}
	prec := 1
	if f >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(f, 'f', prec, 64) + " " + units[i:i+1] + "B"
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// fmtDur formats a duration to two units: "2h 05m", "3m 12s", "4.2s".
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
}
