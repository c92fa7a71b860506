package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/edgeward/edgeward/flow"
	"github.com/edgeward/edgeward/internal/demo"
	"github.com/edgeward/edgeward/internal/findingtest"
	"github.com/edgeward/edgeward/internal/kafkatest"
	"github.com/edgeward/edgeward/internal/syncbuf"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/pipeline/consume"
	"github.com/edgeward/edgeward/rules"
	builtinpack "github.com/edgeward/edgeward/rules/builtin"
)

// pipelineRig is the demo scenario, a Kafka cluster with the pipeline's
// topics, and the findings `edgeward run` raises on the scenario.
type pipelineRig struct {
	t                                    *testing.T
	sc                                   *demo.Scenario
	dir                                  string
	c                                    *kafkatest.Cluster
	flows, alerts, dlq, repart, groupID  string
	sensorArgs, enrichArgs, pipelineArgs []string
	want                                 map[string]*findingtest.Finding
	repartitioned                        map[string]bool // rule ids
	stamp                                int64           // export stamp of the last record produce wrote
}

const rigFlowParts = 4

func newPipelineRig(t *testing.T) *pipelineRig {
	t.Helper()
	dir := t.TempDir()
	sc, err := demo.Build(demo.Options{Dir: filepath.Join(dir, "demo"), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var pfx []string
	for _, p := range sc.Internal {
		pfx = append(pfx, p.String())
	}
	r := &pipelineRig{
		t: t, sc: sc, dir: dir,
		sensorArgs: []string{"-r", sc.Capture, "--inventory", sc.Inventory, "--sessions", sc.Sessions,
			"--internal", strings.Join(pfx, ","), "--sensor-id", sc.SensorID, "--site", sc.Site,
			// edgeward sensor's default is 30m, edgeward run's 5m.
			"--active-timeout", "5m"},
		enrichArgs: []string{"--geoip", sc.GeoIP, "--asn", sc.ASN, "--anon", sc.Anon},
	}
	// What edgeward run raises on the same capture.
	out := filepath.Join(dir, "run-alerts.jsonl")
	if code, _, e := runCmd(append(append([]string{"run", "-o", out}, r.sensorArgs...), r.enrichArgs...)...); code != 0 {
		t.Fatalf("edgeward run: code %d\n%s", code, e)
	}
	r.want = findingtest.Fold(readAlertLines(t, out))
	if len(r.want) < 8 {
		t.Fatalf("edgeward run raised only %d findings", len(r.want))
	}
	schema, _ := pipeline.Schema()
	set, err := rules.Load(nil, rules.Options{Schema: schema, Builtin: builtinpack.FS()})
	if err != nil {
		t.Fatal(err)
	}
	r.repartitioned = map[string]bool{}
	for _, ids := range consume.Repartitioned(set) {
		for _, id := range ids {
			r.repartitioned[id] = true
		}
	}

	r.c = kafkatest.Start(t, kafkatest.Topic("edgeward.flows.v1", rigFlowParts), kafkatest.Topic("edgeward.alerts.v1", 2),
		kafkatest.Topic("edgeward.flows.dlq.v1", 1), kafkatest.Topic("edgeward.repartition.v1", 3))
	r.flows, r.alerts, r.dlq, r.repart = r.c.Topic("edgeward.flows.v1"), r.c.Topic("edgeward.alerts.v1"), r.c.Topic("edgeward.flows.dlq.v1"), r.c.Topic("edgeward.repartition.v1")
	r.groupID = "edgeward-pipeline-" + t.Name()
	r.c.FastGroups()
	session := "1s"
	if r.c.Real() {
		session = "6s"
	}
	cfg := filepath.Join(dir, "pipeline.yml")
	os.WriteFile(cfg, []byte("kafka:\n  session_timeout: "+session+"\n  heartbeat_interval: 100ms\n  commit_interval: 200ms\n  flush_timeout: 10s\n"), 0o644)
	r.pipelineArgs = append([]string{"pipeline", "--config", cfg, "--brokers", strings.Join(r.c.Addrs(), ","),
		"--flows-topic", r.flows, "--alerts-topic", r.alerts, "--dlq-topic", r.dlq, "--repartition-topic", r.repart,
		"--group-id", r.groupID, "--metrics-listen", ""}, r.enrichArgs...)
	return r
}

func readAlertLines(t *testing.T, path string) []*rules.Alert {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*rules.Alert
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var a rules.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, &a)
	}
	return out
}

// published folds the alerts topic.
func (r *pipelineRig) published() map[string]*findingtest.Finding {
	r.t.Helper()
	var alerts []*rules.Alert
	for _, m := range r.c.Records(r.alerts) {
		var a rules.Alert
		if err := json.Unmarshal(m.Value, &a); err != nil {
			r.t.Fatalf("alerts partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		alerts = append(alerts, &a)
	}
	return findingtest.Fold(alerts)
}

// check compares the published findings with edgeward run's: the same
// findings (uid and final count), none lost, none extra. That holds for the
// repartitioned rules too: the repartition stage evaluates their flows in
// the sensor's export order (the reorder buffer), as edgeward run does.
func (r *pipelineRig) check(got map[string]*findingtest.Finding) {
	r.t.Helper()
	findingtest.Compare(r.t, got, r.want, "edgeward run")
	repartitioned := 0
	for _, w := range r.want {
		if r.repartitioned[w.Rule] {
			repartitioned++
		}
	}
	if repartitioned == 0 {
		r.t.Errorf("the scenario raises no repartitioned rule")
	}
}

// waitCommitted waits until the pipeline's groups have committed every
// record of the flows and repartition topics.
func (r *pipelineRig) waitCommitted(timeout time.Duration) {
	r.t.Helper()
	r.c.WaitCommitted(timeout, r.groupID, r.flows, r.groupID+".repartition", r.repart)
}

// waitMembers waits until the flows group is stable with n members, each
// owning partitions.
func (r *pipelineRig) waitMembers(n int, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	cl := r.c.Client()
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{r.groupID}
		resp, err := req.RequestWith(context.Background(), cl)
		if err == nil && len(resp.Groups) == 1 {
			g := resp.Groups[0]
			owning := 0
			for _, m := range g.Members {
				var a kmsg.ConsumerMemberAssignment
				if a.ReadFrom(m.MemberAssignment) == nil && len(a.Topics) > 0 && len(a.Topics[0].Partitions) > 0 {
					owning++
				}
			}
			if g.State == "Stable" && len(g.Members) == n && owning == n {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the group did not settle with %d members in %v", n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPipeline runs `edgeward pipeline` in this process until stop.
func (r *pipelineRig) startPipeline(extra ...string) (stop func() string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out bytes.Buffer
	var errOut syncbuf.Buffer // the pipeline's goroutines log to it
	go func() {
		done <- run(ctx, append(append([]string(nil), r.pipelineArgs...), extra...), &out, &errOut)
	}()
	stopped := false
	var code int
	stop = func() string {
		if !stopped {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				r.t.Fatal("the pipeline did not stop")
			}
			stopped = true
			if code != 0 {
				r.t.Errorf("pipeline: code %d\n%s", code, errOut.String())
			}
		}
		return errOut.String()
	}
	r.t.Cleanup(func() { stop() })
	return stop
}

// runSensor runs `edgeward sensor` on the demo capture to the end.
func (r *pipelineRig) runSensor() {
	r.t.Helper()
	args := append([]string{"sensor", "--brokers", strings.Join(r.c.Addrs(), ","), "--flows-topic", r.flows,
		"--spool-dir", filepath.Join(r.dir, "spool"), "--metrics-listen", ""}, r.sensorArgs...)
	code, _, e := runCmd(args...)
	if code != 0 || !strings.Contains(e, " 0 left in the spool") {
		r.t.Fatalf("sensor: code %d\n%s", code, e)
	}
	r.t.Logf("sensor: %s", e[strings.LastIndex(e, "edgeward sensor:"):])
}

// TestPipelineEndToEnd is the end-to-end acceptance test: the sensor on
// the demo capture -> Kafka -> two pipeline instances -> alerts topic; the
// findings are those of edgeward run on the same capture (same uids and
// counts, none lost, repeats folded).
func TestPipelineEndToEnd(t *testing.T) {
	r := newPipelineRig(t)
	stopA := r.startPipeline()
	stopB := r.startPipeline()
	r.waitMembers(2, 30*time.Second)
	r.runSensor()
	r.waitCommitted(60 * time.Second)
	ea, eb := stopA(), stopB()
	got := r.published()
	r.check(got)
	if t.Failed() {
		t.Logf("A:\n%s\nB:\n%s", ea, eb)
	}
	t.Logf("%d findings published; edgeward run raised %d\n%s\n%s", len(got), len(r.want), ea[strings.LastIndex(ea, "edgeward pipeline:"):], eb[strings.LastIndex(eb, "edgeward pipeline:"):])
	for _, e := range []string{ea, eb} {
		if !strings.Contains(e, "records consumed") || strings.Contains(e, "level=ERROR") {
			t.Errorf("pipeline stderr:\n%s", e)
		}
	}
	if recs := r.c.Records(r.dlq); len(recs) != 0 {
		t.Errorf("%d dead letters", len(recs))
	}
}

// helperArgsEnv passes the arguments of `edgeward pipeline` to
// TestPipelineHelperProcess.
const helperArgsEnv = "EDGEWARD_TEST_PIPELINE_ARGS"

// TestPipelineHelperProcess is not a test: TestPipelineCrash runs the test
// binary through it as `edgeward pipeline`, so that it can kill it.
func TestPipelineHelperProcess(t *testing.T) {
	env := os.Getenv(helperArgsEnv)
	if env == "" {
		t.Skip("the pipeline process of TestPipelineCrash")
	}
	var args []string
	if err := json.Unmarshal([]byte(env), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// readFlows runs edgeward flows on the demo capture.
func (r *pipelineRig) readFlows() []*flow.Record {
	r.t.Helper()
	out := filepath.Join(r.dir, "flows.jsonl")
	if code, _, e := runCmd(append([]string{"flows", "-o", out}, r.sensorArgs...)...); code != 0 {
		r.t.Fatalf("flows: %s", e)
	}
	f, err := os.Open(out)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	var recs []*flow.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var rec flow.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			r.t.Fatal(err)
		}
		recs = append(recs, &rec)
	}
	return recs
}

// produce writes records to the flows topic as the sensor does: binary,
// keyed by device (inventory id, else address, else initiator).
func (r *pipelineRig) produce(recs []*flow.Record) {
	r.t.Helper()
	cl := r.c.Client()
	var krs []*kgo.Record
	for _, rec := range recs {
		key := rec.Src.IP.String()
		if d := rec.Device; d != nil && d.ID != "" {
			key = d.ID
		} else if d != nil && d.IP.IsValid() {
			key = d.IP.String()
		}
		r.stamp++ // as the sensor's exporter stamps records, in export order
		krs = append(krs, &kgo.Record{Topic: r.flows, Key: []byte(key), Value: rec.AppendBinary(nil),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(flow.ContentType)},
				{Key: flow.HeaderExported, Value: strconv.AppendInt(nil, r.stamp, 10)}}})
	}
	if err := cl.ProduceSync(context.Background(), krs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// metric scrapes one unlabelled metric from a /metrics endpoint; -1 when
// it cannot.
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestPipelineCrash is the crash acceptance test: of two pipeline
// instances, one is killed (SIGKILL) while it works through the second
// half of the stream; the survivor takes its partitions over, rebuilds
// their rule state from history, and no finding is lost or miscounted.
func TestPipelineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two pipelines")
	}
	r := newPipelineRig(t)
	recs := r.readFlows()
	half := len(recs) / 2

	addrA := freeAddr(t)
	args, _ := json.Marshal(append(append([]string(nil), r.pipelineArgs...), "--metrics-listen", addrA))
	a := exec.Command(os.Args[0], "-test.run=^TestPipelineHelperProcess$")
	a.Env = append(os.Environ(), helperArgsEnv+"="+string(args))
	var aErr bytes.Buffer
	a.Stderr = &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			a.Process.Kill()
			a.Wait()
		}
	}()
	stopB := r.startPipeline()
	r.waitMembers(2, 30*time.Second)

	r.produce(recs[:half])
	r.waitCommitted(60 * time.Second)
	before := metric(addrA, "edgeward_consumed_records_total")
	if before <= 0 {
		t.Fatalf("instance A consumed %v records of the first half\n%s", before, aErr.String())
	}
	// The second half in four parts; A dies once it is into it.
	quarter := (len(recs) - half) / 4
	r.produce(recs[half : half+2*quarter])
	deadline := time.Now().Add(30 * time.Second)
	for metric(addrA, "edgeward_consumed_records_total") <= before {
		if time.Now().After(deadline) {
			t.Fatalf("instance A does not consume the second half\n%s", aErr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	killed = true
	r.produce(recs[half+2*quarter:])
	r.waitMembers(1, 30*time.Second)
	r.waitCommitted(60 * time.Second)
	eb := stopB()
	if !strings.Contains(eb, "rebuilding rule state") {
		t.Errorf("the survivor did not rebuild the partitions it took over:\n%s", eb)
	}
	r.check(r.published())
}

func TestPipelineConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bad.yml")
	os.WriteFile(cfgFile, []byte("kafka:\n  alerts_topic: edgeward.flows.v1\n  session_timeout: 1s\n  heartbeat_interval: 2s\n  rebuild: -1h\n  sasl: {mechanism: plain}\nrules:\n  builtin: false\nmetrics:\n  listen: nowhere\n"), 0o644)
	t.Setenv("EDGEWARD_BROKERS", "nohost")
	code, _, e := runCmd("pipeline", "--config", cfgFile, "--group-id", "")
	if code != 2 {
		t.Fatalf("code %d, want 2\n%s", code, e)
	}
	for _, want := range []string{
		"problem(s) in the configuration",
		`EDGEWARD_BROKERS: kafka.brokers: "nohost" is not host:port`,
		"--group-id: kafka.group_id: must not be empty",
		cfgFile + `:2:17: kafka.alerts_topic: "edgeward.flows.v1" is also kafka.flows_topic`,
		cfgFile + ":5:12: kafka.rebuild: must not be negative",
		cfgFile + ":4:23: kafka.heartbeat_interval: must be shorter than session_timeout",
		"kafka.sasl.username: needed with a SASL mechanism",
		"rules.builtin: no rules: builtin is false and paths is empty",
		`metrics.listen: "nowhere" is not host:port`,
	} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}

	bad := filepath.Join(dir, "rules.yml")
	os.WriteFile(bad, []byte("- rule: x\n  title: x\n  severity: low\n  category: c\n  match: nope ==\n"), 0o644)
	t.Setenv("EDGEWARD_BROKERS", "127.0.0.1:9092")
	if code, _, e := runCmd("pipeline", "--rules", bad, "--metrics-listen", ""); code != 2 || !strings.Contains(e, "problem(s) in the rules") || !strings.Contains(e, bad+":5:") {
		t.Errorf("bad rules: code %d\n%s", code, e)
	}
	if code, _, e := runCmd("help", "pipeline"); code != 0 || !strings.Contains(e, "-repartition-topic") {
		t.Errorf("help pipeline: code %d\n%s", code, e)
	}
}

// TestPipelineSecretNotLogged: the SASL password reaches the log only
// redacted. Kafka is unreachable; the pipeline starts, retries, and stops.
func TestPipelineSecretNotLogged(t *testing.T) {
	t.Setenv("EDGEWARD_KAFKA_SASL_MECHANISM", "plain")
	t.Setenv("EDGEWARD_KAFKA_SASL_USERNAME", "u")
	t.Setenv("EDGEWARD_KAFKA_SASL_PASSWORD", "hunter2")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var e syncbuf.Buffer
	code := run(ctx, []string{"pipeline", "--brokers", "127.0.0.1:1", "--metrics-listen", ""}, io.Discard, &e)
	out := e.String()
	if code != 0 || strings.Contains(out, "hunter2") || !strings.Contains(out, "kafka.sasl.password=REDACTED") {
		t.Errorf("code %d, stderr:\n%s", code, out)
	}
}
