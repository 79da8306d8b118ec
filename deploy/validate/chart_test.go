package validate

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

const chartDir = "../helm/herald"

// kubeVersion is the oldest Kubernetes the chart supports (Chart.yaml's kubeVersion): the
// preStop hook's sleep action is beta, and on by default, from 1.30.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// shapes are the values CI renders the chart with: the defaults, and each file in the chart's
// ci/ directory.
func shapes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	out := map[string]string{"default": ""}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	for _, want := range []string{"cluster-redis", "cluster-nats", "cluster-amqp"} {
		if _, ok := out[want]; !ok {
			t.Errorf("no %s/ci/%s-values.yaml: every bus is rendered in CI", chartDir, want)
		}
	}
	return out
}

// values reads a values file ("" for none) and applies --set style overrides.
func values(t *testing.T, file string, set ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	if file != "" {
		v, err := chartutil.ReadValuesFile(file)
		if err != nil {
			t.Fatal(err)
		}
		vals = v.AsMap()
	}
	for _, s := range set {
		if err := strvals.ParseInto(s, vals); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return vals
}

// render renders the chart as `helm template` does, and returns its manifests.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.DryRunOption, install.ClientOnly, install.Replace = true, "client", true, true
	install.ReleaseName, install.Namespace = "herald", "notifications"
	install.KubeVersion = kubeVersion
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	return releaseutil.SplitManifests(rel.Manifest), nil
}

// decoder decodes YAML strictly into the Go types of Kubernetes and of the Prometheus
// Operator: an unknown or misspelt field, a duplicate key or a kind the API does not have is an
// error, as the API server's strict field validation would make it.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// objects are one rendering's objects, by kind and then name.
type objects map[string]map[string]runtime.Object

func decode(t *testing.T, manifests map[string]string) objects {
	t.Helper()
	out := objects{}
	for _, m := range manifests {
		obj, gvk, err := decoder.Decode([]byte(m), nil, nil)
		if err != nil {
			t.Errorf("%v\n%s", err, m)
			continue
		}
		name := obj.(interface{ GetName() string }).GetName()
		if out[gvk.Kind] == nil {
			out[gvk.Kind] = map[string]runtime.Object{}
		}
		out[gvk.Kind][name] = obj
	}
	return out
}

func (o objects) kinds() []string {
	var ks []string
	for k, objs := range o {
		ks = append(ks, fmt.Sprintf("%s×%d", k, len(objs)))
	}
	slices.Sort(ks)
	return ks
}

func only[T runtime.Object](t *testing.T, o objects, kind string) T {
	t.Helper()
	if len(o[kind]) != 1 {
		t.Fatalf("%d %s objects, want exactly one", len(o[kind]), kind)
	}
	for _, obj := range o[kind] {
		return obj.(T)
	}
	panic("unreachable")
}

// TestStrictDecoding: the decoder the chart is held to refuses what the API server would not
// take, so that passing it means something.
func TestStrictDecoding(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"wrong case":       "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 2}\n",
		"duplicate key":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ClusterIP, type: NodePort}\n",
		"unknown kind":     "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n",
		"wrong type":       "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: one}\n",
		"nested unknown":   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a, image: b, readinesProbe: {}}]}\n",
		"monitor unknown":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoint: []}\n",
		"old policy group": "apiVersion: policy/v1beta2\nkind: PodDisruptionBudget\nmetadata: {name: x}\n",
	} {
		if _, _, err := decoder.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded without an error:\n%s", name, doc)
		}
	}
}

// TestChart renders each shape and holds every object to its Kubernetes type and to what a
// Herald pod needs.
func TestChart(t *testing.T) {
	flags := serveFlags(t)
	for shape, file := range shapes(t) {
		t.Run(shape, func(t *testing.T) {
			vals := values(t, file)
			manifests, err := render(t, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := decode(t, manifests)
			t.Logf("%s: %s", shape, strings.Join(objs.kinds(), " "))
			checkShape(t, objs, vals, flags)
		})
	}
}

// TestLint runs Helm's linter on each shape; a warning fails, as `helm lint --strict` would.
func TestLint(t *testing.T) {
	for shape, file := range shapes(t) {
		t.Run(shape, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, values(t, file), "notifications", kubeVersion)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Error(m)
				} else {
					t.Log(m)
				}
			}
		})
	}
}

// pod is a workload's pod template with the few values the checks need.
type pod struct {
	spec   corev1.PodSpec
	labels map[string]string
	c      corev1.Container
	env    map[string]corev1.EnvVar
}

func checkShape(t *testing.T, objs objects, vals map[string]any, flags map[string]bool) {
	mode, _ := vals["mode"].(string)
	if mode == "" {
		mode = "single"
	}
	var p pod
	switch mode {
	case "single":
		if len(objs["Deployment"]) != 0 {
			t.Error("mode single renders a Deployment")
		}
		ss := only[*appsv1.StatefulSet](t, objs, "StatefulSet")
		if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 {
			t.Errorf("the SQLite StatefulSet has %v replicas, want exactly 1", ss.Spec.Replicas)
		}
		if ss.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
			ss.Spec.PodManagementPolicy == appsv1.ParallelPodManagement {
			t.Errorf("update %q, pod management %q: a StatefulSet of one must replace its pod, never run two", ss.Spec.UpdateStrategy.Type, ss.Spec.PodManagementPolicy)
		}
		if _, ok := objs["Service"][ss.Spec.ServiceName]; !ok {
			t.Errorf("the StatefulSet's service %q is not rendered", ss.Spec.ServiceName)
		}
		checkSelector(t, "StatefulSet", ss.Spec.Selector.MatchLabels, ss.Spec.Template.Labels)
		p = podOf(t, ss.Spec.Template)
		checkSQLiteVolume(t, ss, p)
	case "cluster":
		if len(objs["StatefulSet"]) != 0 {
			t.Error("mode cluster renders a StatefulSet")
		}
		d := only[*appsv1.Deployment](t, objs, "Deployment")
		want := int32(3)
		if c, ok := vals["cluster"].(map[string]any); ok && c["replicas"] != nil {
			n, _ := strconv.Atoi(fmt.Sprint(c["replicas"]))
			want = int32(n)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("Deployment replicas %v, want %d", d.Spec.Replicas, want)
		}
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Error("a rolling update may take a node down before its replacement is ready")
		}
		checkSelector(t, "Deployment", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		p = podOf(t, d.Spec.Template)
		for _, name := range []string{"HERALD_STORE", "HERALD_BUS"} {
			e, ok := p.env[name]
			if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
				t.Errorf("%s is not read from a Secret: %+v", name, e)
			}
		}
		if len(p.spec.Volumes) > 0 && slices.ContainsFunc(p.spec.Volumes, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }) {
			t.Error("cluster nodes mount a volume claim: they keep nothing")
		}
	default:
		t.Fatalf("mode %q", mode)
	}
	checkSettings(t, p, flags)
	checkProbes(t, p)
	checkGracePeriod(t, p)
	checkNoPlaintextSecrets(t, p)
	checkSecurity(t, p)
	checkServices(t, objs, p)
	checkDisruptionBudget(t, objs, p)
	checkIngress(t, objs, p)
	checkServiceMonitor(t, objs)
}

func podOf(t *testing.T, tpl corev1.PodTemplateSpec) pod {
	t.Helper()
	if len(tpl.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want Herald's alone", len(tpl.Spec.Containers))
	}
	p := pod{spec: tpl.Spec, labels: tpl.Labels, c: tpl.Spec.Containers[0], env: map[string]corev1.EnvVar{}}
	for _, e := range p.c.Env {
		if _, dup := p.env[e.Name]; dup {
			t.Errorf("%s is set twice", e.Name)
		}
		p.env[e.Name] = e
	}
	return p
}

func checkSelector(t *testing.T, what string, selector, podLabels map[string]string) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(podLabels)) {
		t.Errorf("%s selector %v does not select its pods %v", what, selector, podLabels)
	}
}

// checkSQLiteVolume: the store is a file on the claim's volume, ReadWriteOnce.
func checkSQLiteVolume(t *testing.T, ss *appsv1.StatefulSet, p pod) {
	store := p.env["HERALD_STORE"].Value
	file, ok := strings.CutPrefix(store, "sqlite:")
	if !ok {
		t.Fatalf("single node store %q is not SQLite", store)
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volume claims, want one for the SQLite file", len(ss.Spec.VolumeClaimTemplates))
	}
	claim := ss.Spec.VolumeClaimTemplates[0]
	if !slices.Equal(claim.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim access modes %v, want ReadWriteOnce alone", claim.Spec.AccessModes)
	}
	if claim.Spec.Resources.Requests.Storage().IsZero() {
		t.Error("the claim requests no storage")
	}
	m := mountOf(p.c, path.Dir(file))
	if m == nil || m.Name != claim.Name || m.ReadOnly {
		t.Errorf("%s is not on the claim %q, writable: mount %+v", path.Dir(file), claim.Name, m)
	}
}

// mountOf returns the container's mount that holds dir.
func mountOf(c corev1.Container, dir string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			(best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	return best
}

func volumeOf(p pod, name string) *corev1.Volume {
	for i, v := range p.spec.Volumes {
		if v.Name == name {
			return &p.spec.Volumes[i]
		}
	}
	return nil
}

// checkSettings: every HERALD_ variable is a setting of herald serve, and durations parse.
func checkSettings(t *testing.T, p pod, flags map[string]bool) {
	for name := range p.env {
		setting, ok := strings.CutPrefix(name, "HERALD_")
		if !ok {
			continue
		}
		flag := strings.ReplaceAll(strings.ToLower(setting), "_", "-")
		if !flags[flag] {
			t.Errorf("%s is not a setting of herald serve (no --%s)", name, flag)
		}
	}
	for _, name := range []string{"HERALD_DRAIN_WINDOW", "HERALD_SHUTDOWN_TIMEOUT", "HERALD_HEARTBEAT"} {
		if e, ok := p.env[name]; ok {
			if _, err := time.ParseDuration(e.Value); err != nil {
				t.Errorf("%s=%q: %v", name, e.Value, err)
			}
		}
	}
	if p.env["HERALD_LOG_FORMAT"].Value != "json" {
		t.Error("logs are not JSON")
	}
	if len(p.c.Args) != 1 || p.c.Args[0] != "serve" || len(p.c.Command) != 0 {
		t.Errorf("the container runs %v %v, want the image's herald with serve", p.c.Command, p.c.Args)
	}
}

// portOf returns the container port a probe's named or numbered port is.
func portOf(t *testing.T, c corev1.Container, h *corev1.HTTPGetAction) int32 {
	t.Helper()
	if h.Port.StrVal == "" {
		return h.Port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == h.Port.StrVal {
			return p.ContainerPort
		}
	}
	t.Errorf("no container port named %q", h.Port.StrVal)
	return 0
}

func listenPort(t *testing.T, p pod, name string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(p.env[name].Value)
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil {
		t.Fatalf("%s=%q is not an address", name, p.env[name].Value)
	}
	return int32(n)
}

// checkProbes: liveness on /healthz and readiness on /readyz, both on the metrics listener,
// which answers when the API's port is saturated.
func checkProbes(t *testing.T, p pod) {
	metricsPort, apiPort := listenPort(t, p, "HERALD_METRICS_ADDR"), listenPort(t, p, "HERALD_ADDR")
	if metricsPort == apiPort {
		t.Fatalf("metrics and API share port %d", apiPort)
	}
	for _, probe := range []struct {
		name, path string
		p          *corev1.Probe
	}{
		{"liveness", "/healthz", p.c.LivenessProbe},
		{"readiness", "/readyz", p.c.ReadinessProbe},
		{"startup", "/healthz", p.c.StartupProbe},
	} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", probe.name)
			continue
		}
		h := probe.p.HTTPGet
		if h.Path != probe.path || portOf(t, p.c, h) != metricsPort {
			t.Errorf("%s probe asks %s on port %v, want %s on the metrics port %d", probe.name, h.Path, h.Port.String(), probe.path, metricsPort)
		}
	}
	if r := p.c.ReadinessProbe; r != nil && r.TimeoutSeconds < 3 {
		t.Errorf("readiness timeout %ds: /readyz may take 2 s to report an unreachable store", r.TimeoutSeconds)
	}
}

// checkGracePeriod: Kubernetes waits for the preStop sleep, the drain window and the shutdown
// timeout before it kills the process.
func checkGracePeriod(t *testing.T, p pod) {
	drain, shutdown := 10*time.Second, 10*time.Second // herald serve's defaults
	if e, ok := p.env["HERALD_DRAIN_WINDOW"]; ok {
		drain, _ = time.ParseDuration(e.Value)
	}
	if e, ok := p.env["HERALD_SHUTDOWN_TIMEOUT"]; ok {
		shutdown, _ = time.ParseDuration(e.Value)
	}
	var preStop time.Duration
	if l := p.c.Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			t.Error("preStop is not a sleep: the image has no shell to run a command")
		} else {
			preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	if preStop == 0 {
		t.Error("no preStop pause: the drain starts while the endpoints still route new clients here")
	}
	need := preStop + drain + shutdown
	g := p.spec.TerminationGracePeriodSeconds
	if g == nil || time.Duration(*g)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %v is shorter than preStop %s + drain %s + shutdown %s", g, preStop, drain, shutdown)
	}
}

var (
	secretName   = regexp.MustCompile(`(?i)secret|password|passwd|token|credential|_keys?$|^HERALD_(STORE|BUS)$`)
	urlWithCreds = regexp.MustCompile(`://[^/@\s]*:[^/@\s]*@`)
	keyMaterial  = regexp.MustCompile(`^[A-Za-z0-9+/=_-]{32,}$|sha256:[0-9a-f]{16,}`)
)

// checkNoPlaintextSecrets: secrets reach the pod from Secrets only, never as a value in the
// pod spec (which anyone who may read the Deployment can read).
func checkNoPlaintextSecrets(t *testing.T, p pod) {
	for name, e := range p.env {
		if e.Value == "" {
			continue
		}
		plainOK := strings.HasSuffix(name, "_FILE") || name == "HERALD_JWT_PUBLIC_KEYS" ||
			name == "HERALD_STORE" && strings.HasPrefix(e.Value, "sqlite:")
		if secretName.MatchString(name) && !plainOK {
			t.Errorf("%s has a value in the pod spec; it must come from a Secret", name)
		}
		if urlWithCreds.MatchString(e.Value) || !path.IsAbs(e.Value) && keyMaterial.MatchString(e.Value) {
			t.Errorf("%s=%q looks like a credential in clear", name, e.Value)
		}
	}
	for name, dir := range map[string]string{"HERALD_JWT_SECRET_FILE": "", "HERALD_PUBLISHER_KEY_FILE": ""} {
		e, ok := p.env[name]
		if !ok {
			continue
		}
		dir = path.Dir(e.Value)
		m := mountOf(p.c, dir)
		if m == nil {
			t.Errorf("%s=%s is on no volume", name, e.Value)
			continue
		}
		if v := volumeOf(p, m.Name); v == nil || v.Secret == nil || !m.ReadOnly {
			t.Errorf("%s=%s is not on a read-only Secret volume (mount %+v)", name, e.Value, m)
		} else if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
			t.Errorf("%s's Secret volume is readable by others: mode %v", name, v.Secret.DefaultMode)
		}
	}
	if p.env["HERALD_JWT_SECRET_FILE"].Value == "" && p.env["HERALD_PUBLISHER_KEY_FILE"].Value == "" &&
		p.env["HERALD_JWT_PUBLIC_KEYS"].Value == "" && p.env["HERALD_JWKS_URL"].Value == "" && p.env["HERALD_JWT_SECRET"].ValueFrom == nil {
		t.Error("no authentication: Herald refuses to listen on the pod's interfaces in dev mode")
	}
}

// checkSecurity: non-root, read-only root filesystem, no privilege, no API token; /tmp is an
// emptyDir (SQLite's temporary files).
func checkSecurity(t *testing.T, p pod) {
	ps, cs := p.spec.SecurityContext, p.c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatal("no security context")
	}
	nonRoot := (cs.RunAsNonRoot != nil && *cs.RunAsNonRoot) || (ps.RunAsNonRoot != nil && *ps.RunAsNonRoot)
	if !nonRoot {
		t.Error("runAsNonRoot is not set")
	}
	for _, uid := range []*int64{ps.RunAsUser, cs.RunAsUser} {
		if uid != nil && *uid == 0 {
			t.Error("runs as uid 0")
		}
	}
	if cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
		t.Error("the root filesystem is writable")
	}
	if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
		t.Error("privilege escalation is allowed")
	}
	if cs.Privileged != nil && *cs.Privileged {
		t.Error("privileged")
	}
	if cs.Capabilities == nil || !slices.Contains(cs.Capabilities.Drop, "ALL") || len(cs.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v, want all dropped", cs.Capabilities)
	}
	if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("no RuntimeDefault seccomp profile")
	}
	if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a Kubernetes API token it never uses")
	}
	if m := mountOf(p.c, "/tmp"); m == nil || m.MountPath != "/tmp" || volumeOf(p, m.Name) == nil || volumeOf(p, m.Name).EmptyDir == nil {
		t.Error("/tmp is not a writable emptyDir")
	}
	res := p.c.Resources
	if res.Requests.Cpu().IsZero() || res.Requests.Memory().IsZero() || res.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit", res)
	}
}

// checkServices: the API Service reaches the API port, the metrics Service the metrics port.
func checkServices(t *testing.T, objs objects, p pod) {
	ports := map[string]int32{}
	for _, cp := range p.c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	want := map[int32]bool{listenPort(t, p, "HERALD_ADDR"): false, listenPort(t, p, "HERALD_METRICS_ADDR"): false}
	for name, obj := range objs["Service"] {
		s := obj.(*corev1.Service)
		checkSelector(t, "Service "+name, s.Spec.Selector, p.labels)
		for _, sp := range s.Spec.Ports {
			target := sp.TargetPort.IntVal
			if sp.TargetPort.StrVal != "" {
				n, ok := ports[sp.TargetPort.StrVal]
				if !ok {
					t.Errorf("Service %s targets port %q, which the pod does not have", name, sp.TargetPort.StrVal)
				}
				target = n
			}
			if _, ok := want[target]; !ok {
				t.Errorf("Service %s targets port %d, where Herald does not listen", name, target)
			}
			want[target] = true
		}
	}
	for port, served := range want {
		if !served {
			t.Errorf("no Service reaches port %d", port)
		}
	}
}

func checkDisruptionBudget(t *testing.T, objs objects, p pod) {
	pdb := only[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	checkSelector(t, "PodDisruptionBudget", pdb.Spec.Selector.MatchLabels, p.labels)
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
}

// checkIngress: through ingress-nginx, streams are not buffered, and an idle one (a heartbeat
// every --heartbeat) outlives nginx's read timeout.
func checkIngress(t *testing.T, objs objects, p pod) {
	if len(objs["Ingress"]) == 0 {
		return
	}
	ing := only[*networkingv1.Ingress](t, objs, "Ingress")
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		return
	}
	a := ing.Annotations
	if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
		t.Error("ingress-nginx buffers responses: events would wait in the proxy")
	}
	heartbeat := 15 * time.Second
	if e, ok := p.env["HERALD_HEARTBEAT"]; ok {
		heartbeat, _ = time.ParseDuration(e.Value)
	}
	for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		s, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/"+k])
		if err != nil || time.Duration(s)*time.Second < 2*heartbeat {
			t.Errorf("%s %q: want at least two heartbeats (%s) so idle streams stay open", k, a["nginx.ingress.kubernetes.io/"+k], 2*heartbeat)
		}
	}
	for _, r := range ing.Spec.Rules {
		for _, path := range r.HTTP.Paths {
			svc, ok := objs["Service"][path.Backend.Service.Name].(*corev1.Service)
			if !ok {
				t.Errorf("the Ingress sends %s to Service %q, which is not rendered", path.Path, path.Backend.Service.Name)
				continue
			}
			for _, sp := range svc.Spec.Ports {
				if sp.Name == path.Backend.Service.Port.Name || sp.Port == path.Backend.Service.Port.Number {
					if got := sp.TargetPort.String(); got != "http" {
						t.Errorf("the Ingress reaches port %s, not the API", got)
					}
				}
			}
		}
	}
}

// checkServiceMonitor: it selects the metrics Service, on a port it has.
func checkServiceMonitor(t *testing.T, objs objects) {
	if len(objs["ServiceMonitor"]) == 0 {
		return
	}
	sm := only[*monitoringv1.ServiceMonitor](t, objs, "ServiceMonitor")
	sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
	var matched []string
	for name, obj := range objs["Service"] {
		s := obj.(*corev1.Service)
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		matched = append(matched, name)
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("ServiceMonitor scrapes port %q, which Service %s does not have", ep.Port, name)
			}
			if ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor scrapes %s", ep.Path)
			}
		}
	}
	if len(matched) != 1 || !strings.HasSuffix(matched[0], "-metrics") {
		t.Errorf("ServiceMonitor selects %v, want the metrics Service alone", matched)
	}
}

// TestChartRefuses: values that would put secret material in the pod spec, or deploy a broken
// shape, fail the render with a message naming the value.
func TestChartRefuses(t *testing.T) {
	const hexSecret = "8d3b6f0c1e2a4f5b9c7d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d"
	cluster := filepath.Join(chartDir, "ci", "cluster-redis-values.yaml")
	for _, c := range []struct {
		name string
		file string
		set  []string
		want string // in the error
	}{
		{"jwt secret as a value", "", []string{"auth.jwtSecret=" + hexSecret}, "jwtSecret"},
		{"jwt secret as the Secret's name", "", []string{"auth.jwtSecret.existingSecret=" + hexSecret}, "key material"},
		{"publisher key as the Secret's name", "", []string{"auth.publisherKeys.existingSecret=billing=sha256:" + hexSecret}, "publisherKeys"},
		{"secret as the key's name", "", []string{"auth.jwtSecret.key=" + "s3cr3t+/" + hexSecret}, "auth.jwtSecret.key"},
		{"store URL as the Secret's name", cluster, []string{"cluster.store.existingSecret=postgres://herald:hunter2@db/herald"}, "cluster.store"},
		{"bus URL as the Secret's name", cluster, []string{"cluster.bus.existingSecret=amqp://guest:guest@rabbitmq:5672/"}, "cluster.bus"},
		{"jwt secret in config", "", []string{"config.jwt-secret=" + hexSecret}, "config.jwt-secret"},
		{"publisher keys in config", "", []string{"config.publisher-keys=billing=sha256:" + hexSecret}, "config.publisher-keys"},
		{"store in config", cluster, []string{"config.store=postgres://herald:hunter2@db/herald"}, "config.store"},
		{"password in a config URL", "", []string{"config.jwks-refresh=redis://:hunter2@redis:6379"}, "password"},
		{"secret in extraEnv", "", []string{"extraEnv[0].name=HERALD_JWT_SECRET", "extraEnv[0].value=" + hexSecret}, "valueFrom"},
		{"password in extraEnv", "", []string{"extraEnv[0].name=DATABASE_URL", "extraEnv[0].value=postgres://u:hunter2@db/x"}, "password"},
		{"no authentication", "", []string{"auth.jwtSecret.existingSecret="}, "auth"},
		{"cluster without a store", "", []string{"mode=cluster", "cluster.bus.existingSecret=herald-bus"}, "cluster.store"},
		{"cluster without a bus", "", []string{"mode=cluster", "cluster.store.existingSecret=herald-store"}, "cluster.bus"},
		{"unknown bus", cluster, []string{"cluster.bus.kind=kafka"}, "kind"},
		{"unknown shape", "", []string{"mode=multi"}, "mode"},
		{"two SQLite replicas", "", []string{"replicas=2"}, "replicas"},
		{"chart-managed setting", "", []string{"config.drain-window=1m"}, "drainWindowSeconds"},
		{"insecure", "", []string{"config.insecure=true"}, "config.insecure"},
		{"ingress without a host", "", []string{"ingress.enabled=true"}, "ingress.host"},
		{"misspelt value", "", []string{"persistance.size=1Gi"}, "persistance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, values(t, c.file, c.set...))
			if err == nil {
				t.Fatalf("rendered with %v", c.set)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not name %q: %v", c.want, err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), hexSecret) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}
