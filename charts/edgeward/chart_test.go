// Package chart_test lints, renders and strictly validates the edgeward Helm
// chart in this directory. For each values case it runs helm lint --strict
// and helm template, decodes every rendered manifest into its k8s.io/api
// type refusing unknown, mis-cased and duplicate fields (what the API
// server's strict field validation refuses), checks that the objects fit
// together (selectors, ports, volumes, the files the daemons are told to
// read), checks the daemons' configuration files against the configuration
// contract and runs the tests of the custom rules the values ship. The
// Grafana dashboard is checked against the metric names the daemons export.
//
// Helm is not a dependency of this module: the test builds the pinned
// helmModule with `go run` (the first time from the module proxy, after
// that from the module and build caches, offline). EDGEWARD_HELM names a
// helm v4 binary to use instead.
package chart_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeward/edgeward/internal/config"
	"github.com/edgeward/edgeward/internal/daemoncfg"
	"github.com/edgeward/edgeward/pipeline"
	"github.com/edgeward/edgeward/rules"
	"github.com/edgeward/edgeward/rules/builtin"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// helmModule is the helm the chart is tested with: the newest v4 release
// on the module proxy when this was written.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.1"

const (
	release   = "edgeward"
	namespace = "edgeward-system"
)

// chartCase is one set of values and what the chart must render for it.
type chartCase struct {
	name string
	args []string // -f and --set arguments
	// caps are the capabilities the sensor container must add, sorted.
	caps []string
	// kinds counts the objects rendered, by kind.
	kinds map[string]int
	// external are ConfigMaps the values reference but the chart does not
	// render.
	external []string
}

// TestChart builds helm once and runs the chart's checks with it.
func TestChart(t *testing.T) {
	h := newHelm(t)
	t.Run("render", func(t *testing.T) { testRender(t, h) })
	t.Run("rejects", func(t *testing.T) { testRejects(t, h) })
	t.Run("broken templates", func(t *testing.T) { testBrokenTemplates(t, h) })
}

// testRender lints and renders each values case and validates the result.
func testRender(t *testing.T, h *helm) {
	cases := []chartCase{
		{
			name:  "defaults",
			caps:  []string{"NET_RAW"},
			kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 4, "Service": 2, "DaemonSet": 1, "Deployment": 1},
		},
		{
			name:  "gateway",
			args:  []string{"-f", "testdata/gateway-values.yaml"},
			caps:  []string{"BPF", "NET_ADMIN", "PERFMON"},
			kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 4, "Service": 2, "DaemonSet": 1, "Deployment": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1, "ServiceMonitor": 2},
		},
		{
			name: "afpacket with wireguard, emptyDir spool, metrics on all interfaces",
			args: []string{"--set", "sensor.sessions.wireguard={wg0,wg1}", "--set", "sensor.spool.type=emptyDir",
				"--set", "sensor.metrics.bind=all", "--set", "sensor.sessions.feed=/run/edgeward/sessions.jsonl",
				"--set", "pipeline.autoscaling.enabled=true", "--set", "pipeline.autoscaling.targetMemoryUtilizationPercentage=80"},
			caps:  []string{"NET_ADMIN", "NET_RAW"},
			kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 4, "Service": 2, "DaemonSet": 1, "Deployment": 1, "HorizontalPodAutoscaler": 1},
		},
		{
			name:  "sensor only",
			args:  []string{"--set", "pipeline.enabled=false", "--set", "dashboard.enabled=false", "--set", "sensor.mode=ebpf", "--set", "sensor.bpffs.mount=false"},
			caps:  []string{"BPF", "NET_ADMIN", "PERFMON"},
			kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Service": 1, "DaemonSet": 1},
		},
		{
			name:  "ebpf with the host's BPF filesystem",
			args:  []string{"--set", "sensor.mode=ebpf", "--set", "sensor.bpffs.mount=true"},
			caps:  []string{"BPF", "NET_ADMIN", "PERFMON"},
			kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 4, "Service": 2, "DaemonSet": 1, "Deployment": 1},
		},
		{
			name:     "pipeline only, rules from an existing ConfigMap",
			args:     []string{"--set", "sensor.enabled=false", "--set", "rules.existingConfigMap=site-rules", "--set", "serviceAccount.create=false", "--set", "serviceMonitor.enabled=true"},
			kinds:    map[string]int{"ConfigMap": 2, "Service": 1, "Deployment": 1, "ServiceMonitor": 1},
			external: []string{"site-rules"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.run(append([]string{"lint", "--strict", "."}, tc.args...)...); err != nil {
				t.Fatal(err)
			}
			out, err := h.template(".", tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(out, tc); err != nil {
				t.Error(err)
			}
		})
	}
}

// testRejects checks that bad values fail at install time with a message
// that names the problem.
func testRejects(t *testing.T, h *helm) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"misspelled value key", []string{"--set", "sensor.interfce=eth1"}, "'interfce' not allowed"},
		{"unknown capture mode", []string{"--set", "sensor.mode=pcap"}, "/sensor/mode"},
		{"inline secret", []string{"--set", "kafka.sasl.password=hunter2"}, "'password' not allowed"},
		{"broker without port", []string{"--set", "kafka.brokers={kafka}"}, "/kafka/brokers/0"},
		{"SYS_ADMIN", []string{"--set", "sensor.extraCapabilities={SYS_ADMIN}"}, "/sensor/extraCapabilities/0"},
		{"rule file name", []string{"--set-json", `rules.custom={"../x.yaml":"- rule: x"}`}, "invalid propertyName '../x.yaml'"},
		{"TLS without a Secret", []string{"--set", "kafka.tls.enabled=true"}, "tls.enabled needs tls.existingSecret"},
		{"half of mutual TLS", []string{"--set", "kafka.tls.enabled=true", "--set", "kafka.tls.existingSecret=s", "--set", "kafka.tls.certKey=tls.crt"}, "tls.certKey and tls.keyKey go together"},
		{"SASL without a Secret", []string{"--set", "kafka.sasl.mechanism=plain", "--set", "kafka.sasl.username=u"}, "needs sasl.username and sasl.existingSecret"},
		{"CPU autoscaling without a CPU request", []string{"--set", "pipeline.autoscaling.enabled=true", "--set", "pipeline.resources.requests.cpu=null"}, "needs pipeline.resources.requests.cpu"},
		// Docker and CRI-O add the CAP_ prefix only where it is missing.
		{"SYS_ADMIN with its CAP_ prefix", []string{"--set", "sensor.extraCapabilities={CAP_SYS_ADMIN}"}, "/sensor/extraCapabilities/0"},
		// What edgeward sensor refuses at start must fail the install, not
		// crash-loop the DaemonSet on every gateway.
		{"spool smaller than the sensor accepts", []string{"--set", "sensor.spool.maxBytes=65536"}, "/sensor/spool/maxBytes"},
		{"zero idle timeout", []string{"--set", "sensor.flow.idleTimeout=0s"}, "/sensor/flow/idleTimeout"},
		{"zero active timeout", []string{"--set", "sensor.flow.activeTimeout=0m"}, "/sensor/flow/activeTimeout"},
		{"quantity suffix Kubernetes refuses", []string{"--set", "sensor.spool.type=emptyDir", "--set", "sensor.spool.sizeLimit=2048K"}, "/sensor/spool/sizeLimit"},
		// The kubelet evicts a pod whose emptyDir outgrows its sizeLimit,
		// and the spool with it, before the spool reaches its own cap.
		{"emptyDir spool smaller than its cap", []string{"--set", "sensor.spool.type=emptyDir", "--set", "sensor.spool.sizeLimit=512Mi"}, "sensor.spool.sizeLimit 512Mi is less than sensor.spool.maxBytes"},
		{"emptyDir spool smaller than its cap, decimal units", []string{"--set", "sensor.spool.type=emptyDir", "--set", "sensor.spool.sizeLimit=1.5G", "--set", "sensor.spool.maxBytes=2147483648"}, "sensor.spool.sizeLimit 1.5G is less than sensor.spool.maxBytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.template(".", tc.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error containing %q", tc.args, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template %v: got %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// testBrokenTemplates renders copies of the chart with one template
// broken and checks that validation (not helm, which accepts all of
// these) fails and says where.
func testBrokenTemplates(t *testing.T, h *helm) {
	defaults := chartCase{
		caps:  []string{"NET_RAW"},
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 4, "Service": 2, "DaemonSet": 1, "Deployment": 1},
	}
	cases := []struct {
		name, file, old, new string
		want                 string
	}{
		{"misspelled pod field", "sensor-daemonset.yaml", "hostNetwork: true", "hostNetwrok: true", `unknown field "spec.template.spec.hostNetwrok"`},
		{"mis-cased field", "pipeline-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", `unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"`},
		{"duplicate field", "pipeline-service.yaml", "  type: ClusterIP\n", "  type: ClusterIP\n  type: NodePort\n", `key "type" already set`},
		{"misspelled config key", "sensor-configmap.yaml", `"idle_timeout"`, `"idle_timout"`, `unknown key "idle_timout" in flow`},
		{"misspelled variable", "sensor-daemonset.yaml", "name: EDGEWARD_METRICS_LISTEN", "name: EDGEWARD_METRIC_LISTEN", "sets EDGEWARD_METRIC_LISTEN, which is no variable of edgeward sensor"},
		{"bad variable value", "sensor-daemonset.yaml", `"$(HOST_IP):%d"`, `"$(HOST_IP)/%d"`, `EDGEWARD_METRICS_LISTEN: metrics.listen: "10.1.2.3/9100" is not host:port`},
		{"bad config value", "sensor-configmap.yaml", `"max_flows" $s.flow.maxFlows`, `"max_flows" 0`, "flow.max_flows: must be at least 1"},
		{"misspelled pipeline config key", "pipeline-configmap.yaml", `"group_id" $p.groupId`, `"groupid" $p.groupId`, `unknown key "groupid" in kafka`},
		{"bad pipeline config value", "pipeline-configmap.yaml", `"dlq_topic" $k.dlqTopic`, `"dlq_topic" $k.flowsTopic`, `kafka.dlq_topic: "edgeward.flows.v1" is also kafka.flows_topic`},
		{"port name mismatch", "pipeline-service.yaml", "targetPort: metrics", "targetPort: metric", `targetPort "metric"`},
		{"volume without mount", "pipeline-deployment.yaml", "- name: tmp\n              mountPath: /tmp", "- name: temp\n              mountPath: /tmp", `volume "temp"`},
		{"capability added", "_helpers.tpl", `$caps = list "NET_RAW"`, `$caps = list "NET_RAW" "SYS_ADMIN"`, "capabilities"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "edgeward")
			if err := os.CopyFS(dir, os.DirFS(".")); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "templates", tc.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(src, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q any more: update the test", tc.file, tc.old)
			}
			if err := os.WriteFile(path, bytes.Replace(src, []byte(tc.old), []byte(tc.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := h.template(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = validate(out, defaults)
			if err == nil {
				t.Fatalf("validation passed with %s broken (%q -> %q)", tc.file, tc.old, tc.new)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validation failed with\n%v\nwant a problem containing %q", err, tc.want)
			}
			t.Logf("validation says:\n%v", err)
		})
	}
}

// helm runs a helm v4 binary with its own empty home directories.
type helm struct {
	argv []string // the command, and arguments before helm's own
	env  []string
}

func newHelm(t *testing.T) *helm {
	t.Helper()
	home := t.TempDir()
	h := &helm{env: append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"NO_COLOR=1")}
	if bin := os.Getenv("EDGEWARD_HELM"); bin != "" {
		h.argv = []string{bin}
		return h
	}
	env, err := offlineGoEnv()
	if err != nil {
		t.Fatal(err)
	}
	h.env = append(h.env, env...)
	// go run keeps the binary it links in the build cache; -exec echo
	// prints its path instead of running it, so each helm call below
	// starts helm directly rather than paying for go run's cache checks.
	cmd := exec.Command("go", "run", "-exec", "echo", helmModule)
	cmd.Env = h.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building %s (needs the module proxy the first time): %v\n%s", helmModule, err, stderr.Bytes())
	}
	if bin := strings.TrimSpace(string(out)); bin != "" {
		if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
			t.Logf("helm: %s", bin)
			h.argv = []string{bin}
			return h
		}
	}
	h.argv = []string{"go", "run", helmModule}
	return h
}

// offlineGoEnv puts the module cache in front of GOPROXY, so that once
// helm's modules are downloaded building it needs no network (go run
// otherwise asks the proxy whether the module is deprecated).
func offlineGoEnv() ([]string, error) {
	out, err := exec.Command("go", "env", "GOMODCACHE", "GOPROXY").Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	modcache, proxy, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	cache := "file://" + filepath.ToSlash(filepath.Join(modcache, "cache", "download"))
	if proxy == "" {
		return []string{"GOPROXY=" + cache}, nil
	}
	return []string{"GOPROXY=" + cache + "," + proxy}, nil
}

func (h *helm) run(args ...string) ([]byte, error) {
	cmd := exec.Command(h.argv[0], append(h.argv[1:], args...)...)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func (h *helm) template(chart string, args ...string) ([]byte, error) {
	return h.run(append([]string{"template", release, chart, "--namespace", namespace}, args...)...)
}

// object is one rendered manifest.
type object struct {
	source string // the template, from helm's "# Source:" comment
	kind   string
	name   string
	obj    any // *appsv1.DaemonSet, ..., *serviceMonitor
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.kind, o.name, o.source) }

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart writes, with the CRD's field names,
// so that a misspelled field fails here as it would against the CRD.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any"`
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		JobLabel  string `json:"jobLabel"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			HonorLabels   bool   `json:"honorLabels"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels"`
				Separator    string   `json:"separator"`
				TargetLabel  string   `json:"targetLabel"`
				Regex        string   `json:"regex"`
				Replacement  string   `json:"replacement"`
				Action       string   `json:"action"`
			} `json:"relabelings"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// newObject returns a pointer to the Go type of a manifest's kind.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return new(corev1.ConfigMap), nil
	case "v1 Service":
		return new(corev1.Service), nil
	case "v1 ServiceAccount":
		return new(corev1.ServiceAccount), nil
	case "v1 Secret":
		return new(corev1.Secret), nil
	case "apps/v1 DaemonSet":
		return new(appsv1.DaemonSet), nil
	case "apps/v1 Deployment":
		return new(appsv1.Deployment), nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return new(autoscalingv2.HorizontalPodAutoscaler), nil
	case "policy/v1 PodDisruptionBudget":
		return new(policyv1.PodDisruptionBudget), nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return new(serviceMonitor), nil
	}
	return nil, fmt.Errorf("unexpected kind %s %s: add it to newObject", apiVersion, kind)
}

var (
	docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceLine   = regexp.MustCompile(`(?m)^# Source: (\S+)`)
)

// decode splits helm template's output into documents and strictly
// decodes each into its type.
func decode(out []byte) ([]object, error) {
	var objs []object
	var errs []error
	for i, doc := range docSeparator.Split(string(out), -1) {
		src := fmt.Sprintf("document %d", i)
		if m := sourceLine.FindStringSubmatch(doc); m != nil {
			src = m[1]
		}
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if string(js) == "null" {
			continue // only comments
		}
		var tm metav1.TypeMeta
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		obj, err := newObject(tm.APIVersion, tm.Kind)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		strict, err := sigsjson.UnmarshalStrict(js, obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", src, tm.Kind, err))
			continue
		}
		for _, e := range strict {
			errs = append(errs, fmt.Errorf("%s: %s: %w", src, tm.Kind, e))
		}
		objs = append(objs, object{source: src, kind: tm.Kind, name: obj.(metav1.Object).GetName(), obj: obj})
	}
	return objs, errors.Join(errs...)
}

// problems collects what validation finds, to report everything at once.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// validate decodes a rendering and checks it against the case.
func validate(out []byte, tc chartCase) error {
	objs, err := decode(out)
	if err != nil {
		return err
	}
	var p problems
	r := index(objs)
	r.external = tc.external
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
		if ns := o.obj.(metav1.Object).GetNamespace(); ns != namespace {
			p.add("%v: namespace %q, want the release namespace %q", o, ns, namespace)
		}
	}
	if !mapsEqual(kinds, tc.kinds) {
		p.add("rendered %v, want %v", kinds, tc.kinds)
	}
	for _, o := range objs {
		switch obj := o.obj.(type) {
		case *corev1.Secret:
			p.add("%v: the chart must reference Secrets, never render one", o)
		case *appsv1.DaemonSet:
			r.checkPod(&p, o, obj.Spec.Selector, obj.Spec.Template)
			r.checkSensor(&p, o, obj, tc)
		case *appsv1.Deployment:
			r.checkPod(&p, o, obj.Spec.Selector, obj.Spec.Template)
			r.checkPipeline(&p, o, obj)
		case *corev1.Service:
			r.checkService(&p, o, obj)
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := obj.Spec.ScaleTargetRef
			d, ok := r.deployments[ref.Name]
			switch {
			case ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok:
				p.add("%v: scales %s %s %s, which the chart does not render", o, ref.APIVersion, ref.Kind, ref.Name)
			case d.Spec.Replicas != nil:
				p.add("%v: Deployment %s sets replicas, which fights the autoscaler", o, d.Name)
			}
		case *policyv1.PodDisruptionBudget:
			if len(r.podsSelectedBy(obj.Spec.Selector.MatchLabels)) == 0 {
				p.add("%v: selector %v matches no pod template", o, obj.Spec.Selector.MatchLabels)
			}
		case *serviceMonitor:
			r.checkServiceMonitor(&p, o, obj)
		case *corev1.ConfigMap:
			if got, ok := obj.Data["edgeward.json"]; ok {
				want, err := os.ReadFile("dashboards/edgeward.json")
				if err != nil {
					return err
				}
				if got != strings.TrimSuffix(string(want), "\n") {
					p.add("%v: edgeward.json is not dashboards/edgeward.json", o)
				}
			}
		}
	}
	return errors.Join(p...)
}

// rendered indexes the objects of one rendering by kind and name.
type rendered struct {
	configMaps  map[string]*corev1.ConfigMap
	services    map[string]*corev1.Service
	accounts    map[string]bool
	deployments map[string]*appsv1.Deployment
	pods        map[string]corev1.PodTemplateSpec // by workload
	external    []string                          // ConfigMaps referenced but not rendered
}

func index(objs []object) *rendered {
	r := &rendered{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}, accounts: map[string]bool{},
		deployments: map[string]*appsv1.Deployment{}, pods: map[string]corev1.PodTemplateSpec{}}
	for _, o := range objs {
		switch obj := o.obj.(type) {
		case *corev1.ConfigMap:
			r.configMaps[obj.Name] = obj
		case *corev1.Service:
			r.services[obj.Name] = obj
		case *corev1.ServiceAccount:
			r.accounts[obj.Name] = true
		case *appsv1.Deployment:
			r.deployments[obj.Name] = obj
			r.pods[o.kind+" "+obj.Name] = obj.Spec.Template
		case *appsv1.DaemonSet:
			r.pods[o.kind+" "+obj.Name] = obj.Spec.Template
		}
	}
	return r
}

// podsSelectedBy lists the pod templates a selector matches, sorted.
func (r *rendered) podsSelectedBy(sel map[string]string) []string {
	var out []string
	for name, pod := range r.pods {
		if len(sel) > 0 && isSubset(sel, pod.Labels) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// checkPod checks what every workload needs: its selector, service
// account, volumes and mounts, probes and a locked-down container.
func (r *rendered) checkPod(p *problems, o object, sel *metav1.LabelSelector, pod corev1.PodTemplateSpec) {
	if sel == nil || !isSubset(sel.MatchLabels, pod.Labels) || len(sel.MatchExpressions) > 0 {
		p.add("%v: selector %v does not match the pod template's labels %v", o, sel, pod.Labels)
	}
	if sa := pod.Spec.ServiceAccountName; sa != "default" && !r.accounts[sa] {
		p.add("%v: service account %q is not rendered", o, sa)
	}
	if t := pod.Spec.AutomountServiceAccountToken; t == nil || *t {
		p.add("%v: mounts a service account token it does not need", o)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		if _, dup := volumes[v.Name]; dup {
			p.add("%v: volume %q defined twice", o, v.Name)
		}
		volumes[v.Name] = v
		if cm := v.ConfigMap; cm != nil && r.configMaps[cm.Name] == nil && !slices.Contains(r.external, cm.Name) {
			p.add("%v: volume %q uses ConfigMap %q, which is not rendered", o, v.Name, cm.Name)
		}
		if s := v.Secret; s != nil && s.SecretName == "" {
			p.add("%v: volume %q has no Secret name", o, v.Name)
		}
	}
	used := map[string]bool{}
	for _, c := range pod.Spec.Containers {
		where := fmt.Sprintf("%v: container %s", o, c.Name)
		if c.Image == "" || !strings.ContainsAny(c.Image, ":@") {
			p.add("%s: image %q has no tag or digest", where, c.Image)
		}
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			used[m.Name] = true
			if _, ok := volumes[m.Name]; !ok {
				p.add("%s: mounts volume %q, which the pod does not define", where, m.Name)
			}
			if paths[m.MountPath] {
				p.add("%s: two volumes mounted at %s", where, m.MountPath)
			}
			paths[m.MountPath] = true
		}
		ports := map[string]bool{}
		for _, cp := range c.Ports {
			ports[cp.Name] = true
		}
		for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			switch {
			case pr == nil || pr.HTTPGet == nil:
				p.add("%s: no HTTP %s probe", where, what)
			case pr.HTTPGet.Port.StrVal == "" || !ports[pr.HTTPGet.Port.StrVal]:
				p.add("%s: %s probe port %v is not a named container port", where, what, pr.HTTPGet.Port.String())
			}
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Privileged != nil && *sc.Privileged ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			p.add("%s: the security context must drop ALL capabilities, forbid privilege escalation and make the root filesystem read-only", where)
		}
		checkEnvOrder(p, where, c.Env)
	}
	for name := range volumes {
		if !used[name] {
			p.add("%v: volume %q is not mounted", o, name)
		}
	}
}

// checkEnvOrder checks that $(VAR) references name variables defined
// earlier in the list: Kubernetes leaves others unexpanded.
func checkEnvOrder(p *problems, where string, env []corev1.EnvVar) {
	defined := map[string]bool{}
	for _, e := range env {
		for _, m := range envRef.FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				p.add("%s: env %s uses $(%s) before it is defined", where, e.Name, m[1])
			}
		}
		defined[e.Name] = true
	}
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func (r *rendered) checkService(p *problems, o object, svc *corev1.Service) {
	if !svc.Spec.PublishNotReadyAddresses {
		p.add("%v: does not publish not-ready addresses: a daemon that is not ready (Kafka down) must still be scraped", o)
	}
	pods := r.podsSelectedBy(svc.Spec.Selector)
	if len(pods) != 1 {
		p.add("%v: selector %v matches pod templates %v, want exactly one", o, svc.Spec.Selector, pods)
		return
	}
	pod := r.pods[pods[0]]
	for _, sp := range svc.Spec.Ports {
		if sp.TargetPort.StrVal == "" {
			p.add("%v: port %s targets a number, not a named container port", o, sp.Name)
			continue
		}
		if _, ok := containerPort(pod.Spec, sp.TargetPort.StrVal); !ok {
			p.add("%v: port %s: targetPort %q is not a port of %s", o, sp.Name, sp.TargetPort.StrVal, pods[0])
		}
	}
}

func (r *rendered) checkServiceMonitor(p *problems, o object, sm *serviceMonitor) {
	var svcs []*corev1.Service
	for _, s := range r.services {
		if len(sm.Spec.Selector.MatchLabels) > 0 && isSubset(sm.Spec.Selector.MatchLabels, s.Labels) {
			svcs = append(svcs, s)
		}
	}
	if len(svcs) != 1 {
		p.add("%v: selector %v matches %d Services, want one", o, sm.Spec.Selector.MatchLabels, len(svcs))
		return
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		p.add("%v: namespaceSelector %v, want the release namespace", o, sm.Spec.NamespaceSelector.MatchNames)
	}
	for _, ep := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(svcs[0].Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == ep.Port }) {
			p.add("%v: endpoint port %q is not a port of Service %s", o, ep.Port, svcs[0].Name)
		}
		if _, err := time.ParseDuration(ep.Interval); err != nil {
			p.add("%v: interval: %v", o, err)
		}
	}
}

func (r *rendered) checkSensor(p *problems, o object, ds *appsv1.DaemonSet, tc chartCase) {
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		p.add("%v: the sensor needs hostNetwork with dnsPolicy ClusterFirstWithHostNet", o)
	}
	if len(spec.NodeSelector) == 0 && spec.Affinity == nil {
		p.add("%v: not restricted to gateway nodes (no nodeSelector or affinity)", o)
	}
	if len(spec.Containers) != 1 {
		p.add("%v: %d containers, want the sensor alone", o, len(spec.Containers))
		return
	}
	c := spec.Containers[0]
	var caps []string
	if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Add {
			caps = append(caps, string(c))
		}
	}
	if !slices.Equal(caps, tc.caps) {
		p.add("%v: adds capabilities %v, want %v", o, caps, tc.caps)
	}
	cfg, err := loadConfig[daemoncfg.Sensor](r, spec, c, "sensor")
	if err != nil {
		p.add("%v: %v", o, err)
		return
	}
	checkEnvNames(p, o, c, "sensor")
	want := map[string]bool{"afpacket": slices.Contains(caps, "NET_RAW"), "ebpf": slices.Contains(caps, "BPF")}
	if !want[cfg.Mode] {
		p.add("%v: sensor.yaml mode %q without the capabilities it needs (has %v)", o, cfg.Mode, caps)
	}
	if cfg.Mode == "ebpf" && !slices.Contains(caps, "PERFMON") {
		p.add("%v: ebpf mode without PERFMON", o)
	}
	if len(cfg.Sessions.WireGuard) > 0 && !slices.Contains(caps, "NET_ADMIN") {
		p.add("%v: WireGuard sessions without NET_ADMIN", o)
	}
	checkListen(p, o, c, cfg.Metrics.Listen) // the file's, or EDGEWARD_METRICS_LISTEN's
	for what, path := range map[string]string{
		"inventory": cfg.Inventory, "sessions.feed": cfg.Sessions.Feed, "sessions.openvpn_status": cfg.Sessions.OpenVPNStatus,
		"kafka.tls.ca_file": cfg.Kafka.TLS.CAFile, "kafka.tls.cert_file": cfg.Kafka.TLS.CertFile, "kafka.tls.key_file": cfg.Kafka.TLS.KeyFile,
		"kafka.sasl.password_file": cfg.Kafka.SASL.PasswordFile,
	} {
		r.checkFile(p, o, spec, c, what, path, false)
	}
	r.checkWritableDir(p, o, spec, c, "spool.dir", cfg.Spool.Dir)
	// The sensor runs as uid 0 and parses packets from the network: the
	// spool is the only host directory it may change (a writable host
	// /sys/fs/bpf would let it unpin the node's other BPF programs and
	// maps, capabilities or not).
	spool, _ := mountFor(c, cfg.Spool.Dir)
	for _, m := range c.VolumeMounts {
		if v, _ := volume(spec, m.Name); v.HostPath != nil && !m.ReadOnly && m.Name != spool.Name {
			p.add("%v: host path %s is mounted writable at %s; only the spool may be", o, v.HostPath.Path, m.MountPath)
		}
	}
}

func (r *rendered) checkPipeline(p *problems, o object, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		p.add("%v: the pipeline must run as non-root", o)
	}
	if spec.HostNetwork {
		p.add("%v: the pipeline has no business in the host's network namespace", o)
	}
	if len(spec.Containers) != 1 {
		p.add("%v: %d containers, want the pipeline alone", o, len(spec.Containers))
		return
	}
	c := spec.Containers[0]
	if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		p.add("%v: the pipeline adds capabilities %v", o, sc.Capabilities.Add)
	}
	cfg, err := loadConfig[daemoncfg.Pipeline](r, spec, c, "pipeline")
	if err != nil {
		p.add("%v: %v", o, err)
		return
	}
	checkEnvNames(p, o, c, "pipeline")
	checkListen(p, o, c, cfg.Metrics.Listen)
	enrich := map[string]string{"enrich.geoip": cfg.Enrich.GeoIP, "enrich.asn": cfg.Enrich.ASN, "enrich.anon": cfg.Enrich.Anon,
		"kafka.tls.ca_file": cfg.Kafka.TLS.CAFile, "kafka.tls.cert_file": cfg.Kafka.TLS.CertFile, "kafka.tls.key_file": cfg.Kafka.TLS.KeyFile,
		"kafka.sasl.password_file": cfg.Kafka.SASL.PasswordFile}
	for i, path := range cfg.Enrich.Intel {
		enrich[fmt.Sprintf("enrich.intel[%d]", i)] = path
	}
	for what, path := range enrich {
		r.checkFile(p, o, spec, c, what, path, false)
	}
	for i, dir := range cfg.Rules.Paths {
		r.checkFile(p, o, spec, c, fmt.Sprintf("rules.paths[%d]", i), dir, true)
		m, _ := mountFor(c, dir)
		v, _ := volume(spec, m.Name)
		if v.ConfigMap == nil {
			continue
		}
		if cm := r.configMaps[v.ConfigMap.Name]; cm != nil {
			if err := testRules(cm, cfg.Rules.Builtin); err != nil {
				p.add("%v: rules in ConfigMap %s: %v", o, cm.Name, err)
			}
		}
	}
}

// checkListen checks that a metrics listen address is on the container's
// metrics port.
func checkListen(p *problems, o object, c corev1.Container, listen string) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		p.add("%v: metrics listen %q: %v", o, listen, err)
		return
	}
	want, ok := containerPort(corev1.PodSpec{Containers: []corev1.Container{c}}, "metrics")
	if !ok || port != strconv.Itoa(int(want)) {
		p.add("%v: metrics listen %q is not on the container's metrics port %d", o, listen, want)
	}
}

// loadConfig loads a daemon container's configuration, T, as `edgeward
// <daemon>` does, with the daemon's own loader: the --config file from
// its ConfigMap, then the container's EDGEWARD_* variables (with $(VAR)
// references expanded as the kubelet would), then the arguments after
// the daemon's name, validating every key and value. The files the
// configuration names exist only in the pod, so the loader's complaints
// that they are missing are left to checkFile, which checks that they
// are on the right volumes.
func loadConfig[T any](r *rendered, spec corev1.PodSpec, c corev1.Container, daemon string) (*T, error) {
	data, cm, err := configData(r, spec, c, daemon+".yaml")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "edgeward-chart-config")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, daemon+".yaml")
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		return nil, err
	}
	args := slices.Clone(c.Args)
	if len(args) == 0 || args[0] != daemon {
		return nil, fmt.Errorf("container %s: args %v do not run edgeward %s", c.Name, c.Args, daemon)
	}
	args = args[1:]
	args[slices.Index(args, "--config")+1] = file
	env := podEnv(c)
	var cfg T
	l, err := config.New(daemon, &cfg)
	if err != nil {
		return nil, err
	}
	l.FlagSet().SetOutput(io.Discard)
	err = l.Load(args, func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	var es config.Errors
	if errors.As(err, &es) {
		es = slices.DeleteFunc(es, func(e config.Error) bool { return strings.Contains(e.Msg, "no such file or directory") })
		if len(es) == 0 {
			err = nil
		}
		for i := range es {
			es[i].Where = strings.ReplaceAll(es[i].Where, file, daemon+".yaml in ConfigMap "+cm.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("edgeward %s refuses its configuration: %w", daemon, err)
	}
	return &cfg, nil
}

// podEnv returns a container's variables with the values the kubelet
// gives them: fieldRefs get a made-up value of the right form, and
// $(VAR) references to earlier variables are expanded.
func podEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil && f.FieldRef != nil {
			v = map[string]string{"spec.nodeName": "gw-1", "status.hostIP": "10.1.2.3", "status.podIP": "10.244.0.7"}[f.FieldRef.FieldPath]
		}
		env[e.Name] = envRef.ReplaceAllStringFunc(v, func(ref string) string {
			if x, ok := env[envRef.FindStringSubmatch(ref)[1]]; ok {
				return x
			}
			return ref
		})
	}
	return env
}

// checkEnvNames checks that the EDGEWARD_* variables a container sets are
// variables of its daemon: the loader ignores a misspelled one.
func checkEnvNames(p *problems, o object, c corev1.Container, daemon string) {
	vars, err := configVariables(daemon)
	if err != nil {
		p.add("%v", err)
		return
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, config.EnvPrefix) && !vars[e.Name] {
			p.add("%v: container %s sets %s, which is no variable of edgeward %s (docs/configuration.md)", o, c.Name, e.Name, daemon)
		}
	}
}

// configData returns the --config file of a container from the ConfigMap
// mounted for it.
func configData(r *rendered, spec corev1.PodSpec, c corev1.Container, name string) (string, *corev1.ConfigMap, error) {
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		return "", nil, fmt.Errorf("container %s: no --config argument in %v", c.Name, c.Args)
	}
	path := c.Args[i+1]
	if filepath.Base(path) != name {
		return "", nil, fmt.Errorf("container %s: --config %s, want a file named %s", c.Name, path, name)
	}
	m, ok := mountFor(c, path)
	v, _ := volume(spec, m.Name)
	if !ok || v.ConfigMap == nil || r.configMaps[v.ConfigMap.Name] == nil {
		return "", nil, fmt.Errorf("container %s: --config %s is not in a rendered ConfigMap", c.Name, path)
	}
	cm := r.configMaps[v.ConfigMap.Name]
	data, ok := cm.Data[strings.TrimPrefix(path, m.MountPath+"/")]
	if !ok {
		return "", nil, fmt.Errorf("container %s: --config %s: ConfigMap %s has no key %s", c.Name, path, cm.Name, name)
	}
	return data, cm, nil
}

// checkFile checks that a path from a daemon's configuration is something
// the container can read: on one of its volumes and, for a ConfigMap or
// Secret projected by items, one of the items. A dir must be the mount
// point of a ConfigMap volume (the rules directory).
func (r *rendered) checkFile(p *problems, o object, spec corev1.PodSpec, c corev1.Container, what, path string, dir bool) {
	if path == "" {
		return
	}
	m, ok := mountFor(c, path)
	if !ok {
		p.add("%v: %s %s is on no volume of container %s", o, what, path, c.Name)
		return
	}
	v, _ := volume(spec, m.Name)
	rel := strings.TrimPrefix(path, m.MountPath+"/")
	if dir {
		if path != m.MountPath || v.ConfigMap == nil {
			p.add("%v: %s %s is not a ConfigMap mounted as a directory", o, what, path)
		}
		return
	}
	var items []corev1.KeyToPath
	switch {
	case v.Secret != nil:
		items = v.Secret.Items
	case v.ConfigMap != nil:
		items = v.ConfigMap.Items
		if cm := r.configMaps[v.ConfigMap.Name]; cm != nil && len(items) == 0 {
			if _, ok := cm.Data[rel]; !ok {
				p.add("%v: %s %s: ConfigMap %s has no key %s", o, what, path, cm.Name, rel)
			}
			return
		}
	default:
		return // hostPath, PVC, ...: filled outside the chart
	}
	if len(items) > 0 && !slices.ContainsFunc(items, func(k corev1.KeyToPath) bool { return k.Path == rel }) {
		p.add("%v: %s %s: volume %s projects no %s", o, what, path, m.Name, rel)
	}
}

func (r *rendered) checkWritableDir(p *problems, o object, spec corev1.PodSpec, c corev1.Container, what, dir string) {
	m, ok := mountFor(c, dir)
	if !ok || m.ReadOnly {
		p.add("%v: %s %s is not on a writable volume (the root filesystem is read-only)", o, what, dir)
		return
	}
	if v, _ := volume(spec, m.Name); v.HostPath == nil && v.EmptyDir == nil {
		p.add("%v: %s %s is on volume %s, want a hostPath or emptyDir", o, what, dir, m.Name)
	}
}

// mountFor returns the container's volume mount holding path (the
// deepest, as the kernel resolves it).
func mountFor(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	var best corev1.VolumeMount
	found := false
	for _, m := range c.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) >= len(best.MountPath) {
			best, found = m, true
		}
	}
	return best, found
}

func volume(spec corev1.PodSpec, name string) (corev1.Volume, bool) {
	for _, v := range spec.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.Volume{}, false
}

func containerPort(spec corev1.PodSpec, name string) (int32, bool) {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// testRules runs the in-file tests of the rule files of a rendered rules
// ConfigMap against the pipeline's rule schema, with the built-in pack
// loaded as the pipeline would.
func testRules(cm *corev1.ConfigMap, withBuiltin bool) error {
	if len(cm.Data) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp("", "edgeward-chart-rules")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, body := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	schema, err := pipeline.Schema()
	if err != nil {
		return err
	}
	opts := rules.Options{Schema: schema}
	if withBuiltin {
		opts.Builtin = builtin.FS()
	}
	results, err := rules.Test([]string{dir}, opts)
	if err != nil {
		return err
	}
	var errs []error
	for _, res := range results {
		if !res.Pass {
			errs = append(errs, errors.New(res.String()))
		}
	}
	return errors.Join(errs...)
}

func isSubset(sub, set map[string]string) bool {
	for k, v := range sub {
		if w, ok := set[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// configVariables returns the EDGEWARD_* variables of a daemon, from
// docs/configuration.md, the configuration reference generated from the
// daemons' configuration structs (a test in cmd/edgeward keeps it
// current).
func configVariables(daemon string) (map[string]bool, error) {
	src, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		return nil, err
	}
	var vars map[string]bool
	for _, line := range strings.Split(string(src), "\n") {
		if name, ok := strings.CutPrefix(line, "## edgeward "); ok {
			if vars != nil {
				break
			}
			if name == daemon {
				vars = map[string]bool{}
			}
		} else if m := referenceRow.FindStringSubmatch(line); m != nil && vars != nil {
			vars[m[1]] = true
		}
	}
	if vars == nil {
		return nil, fmt.Errorf("docs/configuration.md has no section for edgeward %s", daemon)
	}
	return vars, nil
}

// referenceRow is a key's row in docs/configuration.md: the key, then its
// variable.
var referenceRow = regexp.MustCompile("^\\| `[^`]+` \\| `([^`]+)` \\|")
