package rules

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"time"

	"cel.dev/cel-go/common/types/ref"

	"github.com/edgeward/edgeward/flow"
)

// OCSF constants for a Detection Finding (schema 1.x).
// OCSF activity_id of an alert: the Create of a finding, and the Update
// that closes it with the detections folded into it.
const (
	ActivityCreate = 1
	ActivityUpdate = 2
)

const (
	ocsfVersion       = "1.4.0" // is_alert and connection_info.community_uid are 1.4.0's
	classUID          = 2004
	categoryUID       = 2
	analyticTypeRule  = 1
	evidenceLimit     = 5 // flows kept as evidence per alert
	statusNew         = 1
	severityUnknownID = 0
)

// Alert is an OCSF Detection Finding (class_uid 2004). One alert is
// emitted with activity_id 1 (Create) when a finding opens; if repeats
// were folded into it, one more with activity_id 2 (Update), the same
// finding_info.uid and the final count is emitted when it closes.
type Alert struct {
	ActivityID   int          `json:"activity_id"`
	ActivityName string       `json:"activity_name"`
	CategoryUID  int          `json:"category_uid"`
	CategoryName string       `json:"category_name"`
	ClassUID     int          `json:"class_uid"`
	ClassName    string       `json:"class_name"`
	TypeUID      int          `json:"type_uid"`
	TypeName     string       `json:"type_name"`
	SeverityID   int          `json:"severity_id"`
	Severity     string       `json:"severity"`
	StatusID     int          `json:"status_id"`
	Status       string       `json:"status"`
	IsAlert      bool         `json:"is_alert"`
	Time         int64        `json:"time"` // ms since the epoch, event time
	StartTime    int64        `json:"start_time"`
	EndTime      int64        `json:"end_time"`
	Count        int          `json:"count"`
	Message      string       `json:"message,omitempty"`
	Metadata     Metadata     `json:"metadata"`
	FindingInfo  FindingInfo  `json:"finding_info"`
	Evidences    []Evidence   `json:"evidences,omitempty"`
	Device       *Device      `json:"device,omitempty"`
	Unmapped     AlertDetails `json:"unmapped"`
}

// Metadata is OCSF metadata.
type Metadata struct {
	Version string  `json:"version"`
	Product Product `json:"product"`
}

// Product names the reporting product.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// FindingInfo is OCSF finding_info.
type FindingInfo struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Desc          string   `json:"desc,omitempty"`
	Types         []string `json:"types,omitempty"`
	Analytic      Analytic `json:"analytic"`
	FirstSeenTime int64    `json:"first_seen_time"`
	LastSeenTime  int64    `json:"last_seen_time"`
	Attacks       []Attack `json:"attacks,omitempty"`
}

// Analytic identifies the rule.
type Analytic struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

// Attack is one MITRE ATT&CK technique from the rule's attack.tNNNN tags;
// an attack.tNNNN.NNN tag is a sub-technique, with its parent technique.
type Attack struct {
	Technique    Technique  `json:"technique"`
	SubTechnique *Technique `json:"sub_technique,omitempty"`
	Version      string     `json:"version,omitempty"`
}

// Technique is a MITRE ATT&CK technique or sub-technique.
type Technique struct {
	UID string `json:"uid"`
}

// Evidence is one triggering flow.
type Evidence struct {
	SrcEndpoint    Endpoint        `json:"src_endpoint"`
	DstEndpoint    Endpoint        `json:"dst_endpoint"`
	ConnectionInfo ConnectionInfo  `json:"connection_info"`
	Data           json.RawMessage `json:"data"` // the flow record as exported
}

// Endpoint is an OCSF network endpoint.
type Endpoint struct {
	IP   string `json:"ip,omitempty"`
	Port int    `json:"port,omitempty"`
	MAC  string `json:"mac,omitempty"`
}

// ConnectionInfo is OCSF connection_info (network_connection_info, whose
// direction_id is required).
type ConnectionInfo struct {
	DirectionID  int    `json:"direction_id"`
	Direction    string `json:"direction,omitempty"`
	ProtocolName string `json:"protocol_name,omitempty"`
	UID          string `json:"uid,omitempty"`           // the flow record's id
	CommunityUID string `json:"community_uid,omitempty"` // the Community ID
}

// directionIDs map a flow's direction (flow.Record.Direction) to OCSF
// direction_id: traffic between internal addresses is Lateral, between
// external ones Other; no direction stays 0, Unknown.
var directionIDs = map[string]struct {
	id   int
	name string
}{
	"inbound":  {1, "Inbound"},
	"outbound": {2, "Outbound"},
	"internal": {3, "Lateral"},
	"external": {99, "External"},
}

// Device is the OCSF device the flow belongs to (from enrichment).
type Device struct {
	UID      string `json:"uid,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	IP       string `json:"ip,omitempty"`
	MAC      string `json:"mac,omitempty"`
	TypeID   int    `json:"type_id"`
}

// AlertDetails carries what OCSF has no place for.
type AlertDetails struct {
	Mode   string         `json:"mode"`             // "alert" or "shadow"
	Group  map[string]any `json:"group,omitempty"`  // group_by / suppress key values
	Output map[string]any `json:"output,omitempty"` // the rule's output fields
	Value  int            `json:"value,omitempty"`  // aggregate value that fired
	Tags   []string       `json:"tags,omitempty"`
}

var severityIDs = map[string]int{"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
var severityNames = map[string]string{"info": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}

// findingUID is deterministic so that reprocessing the same flows yields
// the same finding: sha256(rule id, group key, window start).
func findingUID(ruleID, groupKey string, windowStart time.Time) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	h.Write([]byte(groupKey))
	h.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(windowStart.UnixNano()))
	h.Write(b[:])
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// detach copies the strings of an alert that is kept open (suppression)
// out of the flow record they came from: a decoder may back a record's
// strings with buffers shared by many records (flow.Decoder), which an
// open alert would otherwise keep alive for as long as it stays open.
func (a *Alert) detach() {
	if d := a.Device; d != nil {
		d.UID, d.Hostname, d.IP, d.MAC = strings.Clone(d.UID), strings.Clone(d.Hostname), strings.Clone(d.IP), strings.Clone(d.MAC)
	}
	for _, m := range []map[string]any{a.Unmapped.Group, a.Unmapped.Output} {
		for k, v := range m {
			if s, ok := v.(string); ok {
				m[k] = strings.Clone(s)
			}
		}
	}
}

// jsonValue is a field's value as an alert's group and output carry it.
// JSON has no NaN or infinity, which a double field can hold (the binary
// wire format carries any float64): they are null, as in the flow record's
// own JSON, rather than an alert that does not encode and is lost.
func jsonValue(v ref.Val) any {
	x := nativeValue(v)
	if f, ok := x.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil
	}
	return x
}

func evidenceOf(rec *flow.Record) Evidence {
	e := Evidence{
		SrcEndpoint: endpointOf(&rec.Src),
		DstEndpoint: endpointOf(&rec.Dst),
		ConnectionInfo: ConnectionInfo{ // clones: see detach
			ProtocolName: strings.Clone(rec.Proto), UID: strings.Clone(rec.ID), CommunityUID: strings.Clone(rec.CommunityID),
		},
		Data: rec.AppendJSON(nil),
	}
	if d, ok := directionIDs[rec.Direction]; ok {
		e.ConnectionInfo.DirectionID, e.ConnectionInfo.Direction = d.id, d.name
	}
	return e
}

// deviceOf maps the sensor's device to the OCSF device; type_id 0 is
// Unknown (the sensor cannot tell a laptop from a server).
func deviceOf(d *flow.Device) *Device {
	od := &Device{UID: d.ID, Hostname: d.Hostname}
	if d.IP.IsValid() {
		od.IP = d.IP.String()
	}
	if !d.MAC.IsZero() {
		od.MAC = d.MAC.String()
	}
	return od
}

func endpointOf(ep *flow.Endpoint) Endpoint {
	e := Endpoint{Port: int(ep.Port)}
	if ep.IP.IsValid() {
		e.IP = ep.IP.String()
	}
	if !ep.MAC.IsZero() {
		e.MAC = ep.MAC.String()
	}
	return e
}
