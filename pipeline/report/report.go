// Package report owns the self-contained HTML report of a pipeline run:
// totals, alerts by device and category, a timeline, top destinations and
// each alert with its evidence flows, in one file that opens offline.
//
// The pipeline feeds every enriched flow to Report.Flow and every alert to
// Report.Alert, then calls Report.WriteHTML once. Flows are summarised in
// bounded memory (counters, top-N tables, a coarsening time series);
// alerts are kept, up to a limit, with their evidence.
package report

import (
	"encoding/json"
	"hash/maphash"
	"maps"
	"net/netip"
	"sync"
	"time"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/rules"
)

// FlowInfo is what the report needs of a flow's enrichment.
type FlowInfo struct {
	DstCountry    string // ISO 3166 alpha-2
	DstASN        uint32
	DstASOrg      string
	EgressCountry string // of the record's egress address, when it has one
}

// Meta describes the run the report is about.
type Meta struct {
	Title     string
	Generated time.Time
	Inputs    []string // capture files, topics, ...
	SensorID  string
	Site      string
	Version   string
}

// Limits keep a report's memory bounded whatever it is fed.
const (
	maxCountries = 512     // more than there are ISO codes: exact in practice
	maxASNs      = 4096    // Space-Saving beyond that
	maxDevices   = 1 << 16 // distinct devices counted; beyond, "at least"
	maxEgress    = 4096    // egress address -> country, for alerts
	maxAlerts    = 10000   // findings kept in detail; more are counted
	recentFlows  = 8192    // slots for the enrichment of recent flows, for alerts that follow them
	topRows      = 10      // rows in the top-destination tables
)

// Report accumulates a run. It is safe for concurrent use.
type Report struct {
	mu sync.Mutex

	flows, bytes uint64
	first, last  time.Time
	volume       *series
	devices      map[deviceKey]struct{}
	devicesFull  bool
	countries    *topN[string]
	asns         *topN[uint32]
	egress       map[netip.Addr]string // egress address -> country
	egressTop    *topN[string]         // traffic by egress country

	// Enrichment of evidence flows: recent flows, and the enrichment of
	// every evidence flow seen in an alert (known once its flow has been
	// seen, before or after the alert). Both are keyed by a hash of the
	// record id: cheaper than the string, and 64 bits do not collide
	// among a few thousand ids.
	seed     maphash.Seed
	recent   recentCache
	evidence map[uint64]evidenceInfo
	pending  int // evidence entries still unknown

	alerts            map[string]*finding // by finding_info.uid
	droppedAlerts     uint64              // findings beyond maxAlerts
	droppedSev        [6]int              // of those, the ones not shadow, by 5 - severity_id
	droppedDetections int                 // their detections (count)
}

type deviceKey struct {
	id string
	ip netip.Addr
}

type evidenceInfo struct {
	fi    FlowInfo
	known bool
}

// finding is one alert with its updates folded in.
type finding struct {
	uid        string
	ruleID     string
	title      string
	desc       string
	category   string
	severityID int
	severity   string
	shadow     bool
	count      int
	first      time.Time
	last       time.Time
	value      int
	output     map[string]any
	group      map[string]any
	techniques []string
	device     *rules.Device // OCSF device, when the pipeline attached one
	evidence   []evidenceFlow
}

// evidenceFlow is one triggering flow as exported, or what OCSF said of it
// when the record could not be decoded.
type evidenceFlow struct {
	rec *flow.Record
	bad bool
}

// New returns an empty report.
func New() *Report {
	return &Report{
		volume:    newSeries(),
		devices:   make(map[deviceKey]struct{}),
		countries: newTopN[string](maxCountries),
		asns:      newTopN[uint32](maxASNs),
		egress:    make(map[netip.Addr]string),
		egressTop: newTopN[string](maxCountries),
		seed:      maphash.MakeSeed(),
		recent:    newRecentCache(recentFlows),
		evidence:  make(map[uint64]evidenceInfo),
		alerts:    make(map[string]*finding),
	}
}

// Flow counts one enriched flow. The caller may reuse rec once it returns.
func (r *Report) Flow(rec *flow.Record, fi FlowInfo) {
	b := rec.Src.Bytes + rec.Dst.Bytes
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flows++
	r.bytes += b
	if !rec.Start.IsZero() { // a record without times stays out of the timeline
		if r.first.IsZero() || rec.Start.Before(r.first) {
			r.first = rec.Start
		}
		if rec.End.After(r.last) {
			r.last = rec.End
		}
		r.volume.add(rec.Start, b)
	}
	if d := rec.Device; d != nil && !r.devicesFull {
		k := deviceKey{id: d.ID}
		if k.id == "" {
			k.ip = d.IP
		}
		if _, ok := r.devices[k]; !ok {
			if len(r.devices) >= maxDevices {
				r.devicesFull = true
			} else {
				r.devices[k] = struct{}{}
			}
		}
	}
	if fi.DstCountry != "" {
		r.countries.add(fi.DstCountry, "", b)
	}
	if fi.DstASN != 0 {
		r.asns.add(fi.DstASN, fi.DstASOrg, b)
	}
	if e := rec.Egress; e != nil && fi.EgressCountry != "" {
		r.egressTop.add(fi.EgressCountry, "", b)
		if _, ok := r.egress[e.IP]; ok || len(r.egress) < maxEgress {
			r.egress[e.IP] = fi.EgressCountry
		}
	}
	if rec.ID == "" {
		return
	}
	id := maphash.String(r.seed, rec.ID)
	if r.pending > 0 {
		if ei, ok := r.evidence[id]; ok && !ei.known {
			r.evidence[id] = evidenceInfo{fi: fi, known: true}
			r.pending--
		}
	}
	r.recent.put(id, fi)
}

// Alert records an alert. An Update (activity_id 2) carries the final
// state of the earlier alert with the same finding_info.uid (count, last
// seen time, evidence) and is folded into it, in whichever order the two
// arrive.
func (r *Report) Alert(a *rules.Alert) {
	f := findingOf(a)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.alerts[f.uid]
	switch {
	case ok:
		old.count = max(old.count, f.count)
		if f.last.After(old.last) {
			old.last = f.last
		}
		if f.first.Before(old.first) {
			old.first = f.first
		}
		if len(f.evidence) >= len(old.evidence) {
			old.evidence = f.evidence
		}
		old.value = max(old.value, f.value)
	case len(r.alerts) < maxAlerts:
		r.alerts[f.uid] = f
	case a.ActivityID == rules.ActivityUpdate:
		// The Update of a finding beyond the limit: its Create counted the
		// finding and its first detection, this adds the repeats folded
		// into it (in whichever order the two arrive).
		if !f.shadow {
			r.droppedDetections += f.count - 1
		}
		return
	default:
		r.droppedAlerts++
		if !f.shadow {
			r.droppedSev[5-clampSev(f.severityID)]++
			r.droppedDetections++
		}
		return
	}
	for _, ev := range f.evidence {
		if !ev.bad {
			r.wantEvidence(ev.rec.ID)
		}
	}
}

func (r *Report) wantEvidence(recID string) {
	if recID == "" {
		return
	}
	id := maphash.String(r.seed, recID)
	if _, ok := r.evidence[id]; ok {
		return
	}
	if fi, ok := r.recent.get(id); ok {
		r.evidence[id] = evidenceInfo{fi: fi, known: true}
		return
	}
	r.evidence[id] = evidenceInfo{}
	r.pending++
}

// evidenceOf is the enrichment of an evidence flow, when its flow was seen.
func (r *Report) evidenceOf(recID string) (FlowInfo, bool) {
	ei, ok := r.evidence[maphash.String(r.seed, recID)]
	return ei.fi, ok && ei.known
}

// recentCache remembers the enrichment of recent flows in a direct-mapped
// table: a flow overwrites whatever shared its slot, so the last flows are
// (almost all) there, at the cost of one array access per flow and no map.
type recentCache struct {
	keys []uint64 // 0: empty (a hash of 0 is stored as 1)
	fis  []FlowInfo
}

func newRecentCache(n int) recentCache {
	return recentCache{keys: make([]uint64, n), fis: make([]FlowInfo, n)}
}

func (c *recentCache) put(k uint64, fi FlowInfo) {
	k = max(k, 1)
	i := k % uint64(len(c.keys))
	c.keys[i], c.fis[i] = k, fi
}

func (c *recentCache) get(k uint64) (FlowInfo, bool) {
	k = max(k, 1)
	i := k % uint64(len(c.keys))
	if c.keys[i] != k {
		return FlowInfo{}, false
	}
	return c.fis[i], true
}

// findingOf copies what the report shows of an alert: the engine may keep
// and change the alert after emitting it.
func findingOf(a *rules.Alert) *finding {
	fi := &a.FindingInfo
	f := &finding{
		uid:        fi.UID,
		ruleID:     fi.Analytic.UID,
		title:      fi.Title,
		desc:       fi.Desc,
		severityID: a.SeverityID,
		severity:   a.Severity,
		shadow:     !a.IsAlert || a.Unmapped.Mode == "shadow",
		count:      max(a.Count, 1),
		first:      msTime(fi.FirstSeenTime, a.StartTime, a.Time),
		last:       msTime(fi.LastSeenTime, a.EndTime, a.Time),
		value:      a.Unmapped.Value,
		output:     maps.Clone(a.Unmapped.Output),
		group:      maps.Clone(a.Unmapped.Group),
	}
	if f.uid == "" { // not from the engine; keep it apart from the others
		f.uid = fi.Analytic.UID + "\x00" + f.first.String()
	}
	if len(fi.Types) > 0 {
		f.category = fi.Types[0]
	}
	if f.title == "" {
		f.title = a.Message
	}
	for _, at := range fi.Attacks {
		id := at.Technique.UID
		if st := at.SubTechnique; st != nil && st.UID != "" {
			id = st.UID // T1021.001 says more than T1021
		}
		if id != "" {
			f.techniques = append(f.techniques, id)
		}
	}
	if a.Device != nil {
		d := *a.Device
		f.device = &d
	}
	for i := range a.Evidences {
		ev := &a.Evidences[i]
		rec := new(flow.Record)
		if err := json.Unmarshal(ev.Data, rec); err != nil || len(ev.Data) == 0 {
			f.evidence = append(f.evidence, evidenceFlow{rec: fromOCSF(ev), bad: true})
			continue
		}
		f.evidence = append(f.evidence, evidenceFlow{rec: rec})
	}
	return f
}

// fromOCSF rebuilds what it can of a flow whose record did not decode.
func fromOCSF(ev *rules.Evidence) *flow.Record {
	rec := &flow.Record{ID: ev.ConnectionInfo.UID, Proto: ev.ConnectionInfo.ProtocolName, CommunityID: ev.ConnectionInfo.CommunityUID}
	rec.Src.IP, _ = netip.ParseAddr(ev.SrcEndpoint.IP)
	rec.Src.Port = uint16(ev.SrcEndpoint.Port)
	rec.Dst.IP, _ = netip.ParseAddr(ev.DstEndpoint.IP)
	rec.Dst.Port = uint16(ev.DstEndpoint.Port)
	return rec
}

// msTime is the first non-zero of the alert's millisecond times, in UTC.
func msTime(ms ...int64) time.Time {
	for _, v := range ms {
		if v != 0 {
			return time.UnixMilli(v).UTC()
		}
	}
	return time.Time{}
}
