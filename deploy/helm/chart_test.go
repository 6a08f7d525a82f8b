// Package helm holds the tests of signoff's Helm chart (deploy/helm/signoff).
// They run the helm binary: `helm lint --strict` and `helm template`, then
// read the rendered manifests and check what the chart promises, down to
// loading the rendered configuration with signoff's own config loader, as
// the pod would.
//
// The binary is named by SIGNOFF_TEST_HELM; scripts/test builds it from
// helm's Go module and sets it. Without it the tests skip with a message,
// except under CI=true, where a missing helm is a failure.
package helm

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// envHelm names the environment variable holding the helm binary's path.
const envHelm = "SIGNOFF_TEST_HELM"

const (
	chartDir    = "signoff"
	release     = "rel"
	namespace   = "signoff"
	kubeVersion = "1.31.0"
)

// helmBinary returns the helm binary, skipping (or, under CI=true,
// failing) t when there is none.
func helmBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(envHelm)
	if bin == "" {
		const msg = envHelm + " is not set: the Helm chart tests need the helm binary; run them through " +
			"./scripts/test, which builds it, or set " + envHelm + "=/path/to/helm"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", envHelm, bin, err)
	}
	return bin
}

// runHelm runs helm with args in a home of its own and returns its stdout,
// or its error with stderr.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := helmBinary(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// manifests is the output of helm template, one map per object.
type manifests []map[string]any

// render runs helm template on the chart with extra args and parses what it
// prints.
func render(t *testing.T, args ...string) manifests {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var objs manifests
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parsing helm template output: %v\n%s", err, out)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// renderFails runs helm template expecting it to fail, and returns the
// error text.
func renderFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
	if err == nil {
		t.Fatalf("helm template %s rendered, want a refusal:\n%s", strings.Join(args, " "), out)
	}
	return err.Error()
}

func (ms manifests) all(kind string) []map[string]any {
	var out []map[string]any
	for _, o := range ms {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind, failing t unless there is exactly one.
func (ms manifests) one(t *testing.T, kind string) map[string]any {
	t.Helper()
	all := ms.all(kind)
	if len(all) != 1 {
		t.Fatalf("rendered %d %s objects, want 1", len(all), kind)
	}
	return all[0]
}

// named returns the object of kind with metadata.name name, or nil.
func (ms manifests) named(kind, name string) map[string]any {
	for _, o := range ms.all(kind) {
		if str(at(o, "metadata", "name")) == name {
			return o
		}
	}
	return nil
}

// at walks maps by key and lists by int index; nil when the path is absent.
func at(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// pod returns the Deployment's pod spec and its signoff container.
func pod(t *testing.T, ms manifests) (spec, container map[string]any) {
	t.Helper()
	dep := ms.one(t, "Deployment")
	spec = mapOf(at(dep, "spec", "template", "spec"))
	for _, c := range list(spec["containers"]) {
		if str(at(c, "name")) == "signoff" {
			return spec, mapOf(c)
		}
	}
	t.Fatal("the Deployment has no container named signoff")
	return nil, nil
}

func volume(spec map[string]any, name string) map[string]any {
	for _, v := range list(spec["volumes"]) {
		if str(at(v, "name")) == name {
			return mapOf(v)
		}
	}
	return nil
}

// mountAt returns the container's volume mount at dir, or nil.
func mountAt(container map[string]any, dir string) map[string]any {
	for _, m := range list(container["volumeMounts"]) {
		if str(at(m, "mountPath")) == dir {
			return mapOf(m)
		}
	}
	return nil
}

func envOf(container map[string]any) map[string]string {
	env := map[string]string{}
	for _, e := range list(container["env"]) {
		env[str(at(e, "name"))] = str(at(e, "value"))
	}
	return env
}

func labels(v any) map[string]string {
	out := map[string]string{}
	for k, v := range mapOf(v) {
		out[k] = str(v)
	}
	return out
}

// selects reports whether every label of selector is in podLabels.
func selects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"postgres", []string{"--set", "storage.driver=postgres", "--set", "storage.postgres.existingSecret=pg"}},
		{"example bolt", []string{"-f", chartDir + "/examples/bolt.yaml"}},
		{"example postgres", []string{"-f", chartDir + "/examples/postgres.yaml"}},
		{"everything on", []string{"--set", "serviceMonitor.enabled=true", "--set", "ingress.enabled=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Fatalf("helm lint reported problems:\n%s", out)
			}
		})
	}
}

// checkHardened checks the probes and the security settings every
// rendering must have.
func checkHardened(t *testing.T, ms manifests) {
	t.Helper()
	spec, c := pod(t, ms)

	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := str(at(c, probe, "httpGet", "path")); got != want {
			t.Errorf("%s path = %q, want %q", probe, got, want)
		}
		if got := str(at(c, probe, "httpGet", "port")); got != "http" {
			t.Errorf("%s port = %q, want the named port http", probe, got)
		}
	}
	if got := at(c, "ports", 0, "name"); got != "http" {
		t.Errorf("container port name = %v, want http", got)
	}

	psc := mapOf(spec["securityContext"])
	if psc["runAsNonRoot"] != true {
		t.Errorf("pod securityContext.runAsNonRoot = %v, want true", psc["runAsNonRoot"])
	}
	if uid, ok := psc["runAsUser"].(int); !ok || uid == 0 {
		t.Errorf("pod securityContext.runAsUser = %v, want a non-root uid", psc["runAsUser"])
	}
	if psc["fsGroup"] == nil {
		t.Error("pod securityContext.fsGroup is unset: the data volume and secret files would not be readable by the non-root user")
	}
	if got := str(at(psc, "seccompProfile", "type")); got != "RuntimeDefault" {
		t.Errorf("pod seccompProfile = %q, want RuntimeDefault", got)
	}
	sc := mapOf(c["securityContext"])
	if sc["readOnlyRootFilesystem"] != true {
		t.Errorf("readOnlyRootFilesystem = %v, want true", sc["readOnlyRootFilesystem"])
	}
	if sc["allowPrivilegeEscalation"] != false {
		t.Errorf("allowPrivilegeEscalation = %v, want false", sc["allowPrivilegeEscalation"])
	}
	if sc["runAsNonRoot"] != true {
		t.Errorf("container runAsNonRoot = %v, want true", sc["runAsNonRoot"])
	}
	if drop := list(at(sc, "capabilities", "drop")); !slices.Contains(drop, any("ALL")) {
		t.Errorf("capabilities.drop = %v, want ALL", drop)
	}
	if got := str(at(sc, "seccompProfile", "type")); got != "RuntimeDefault" {
		t.Errorf("container seccompProfile = %q, want RuntimeDefault", got)
	}
	if spec["automountServiceAccountToken"] != false {
		t.Errorf("automountServiceAccountToken = %v, want false", spec["automountServiceAccountToken"])
	}

	// /tmp is writable scratch space (hot backups write a copy there).
	tmp := mountAt(c, "/tmp")
	if tmp == nil {
		t.Fatal("nothing is mounted at /tmp: with a read-only root filesystem, hot backups cannot write their copy")
	}
	if v := volume(spec, str(tmp["name"])); v == nil || v["emptyDir"] == nil {
		t.Errorf("/tmp volume = %v, want an emptyDir", v)
	}

	for _, r := range []string{"cpu", "memory"} {
		if at(c, "resources", "requests", r) == nil {
			t.Errorf("resources.requests.%s is unset", r)
		}
	}
	if at(c, "resources", "limits", "memory") == nil {
		t.Error("resources.limits.memory is unset")
	}

	// The Service reaches the pods on the named port.
	svc := ms.one(t, "Service")
	podLabels := labels(at(ms.one(t, "Deployment"), "spec", "template", "metadata", "labels"))
	if !selects(labels(at(svc, "spec", "selector")), podLabels) {
		t.Errorf("the Service's selector %v does not select the pods (%v)", at(svc, "spec", "selector"), podLabels)
	}
	if got := at(svc, "spec", "ports", 0, "targetPort"); got != "http" {
		t.Errorf("Service targetPort = %v, want http", got)
	}
}

// secretMount is a Secret volume mounted in the container.
type secretMount struct {
	dir    string
	secret string
	// items maps a file name in dir to the key in the Secret; nil means
	// every key, under its own name.
	items map[string]string
}

func secretMounts(t *testing.T, spec, c map[string]any) []secretMount {
	t.Helper()
	var out []secretMount
	for _, m := range list(c["volumeMounts"]) {
		v := volume(spec, str(at(m, "name")))
		if v == nil {
			t.Fatalf("volume mount %v names no volume", m)
		}
		if v["secret"] == nil {
			continue
		}
		if at(m, "readOnly") != true {
			t.Errorf("secret volume %s is mounted writable", str(at(m, "name")))
		}
		sm := secretMount{dir: str(at(m, "mountPath")), secret: str(at(v, "secret", "secretName"))}
		if items := list(at(v, "secret", "items")); items != nil {
			sm.items = map[string]string{}
			for _, it := range items {
				sm.items[str(at(it, "path"))] = str(at(it, "key"))
			}
		}
		out = append(out, sm)
	}
	return out
}

// fileRefs returns the values of every *_file key in a decoded YAML value,
// by key path.
func fileRefs(v any, prefix string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			key := strings.TrimPrefix(prefix+"."+k, ".")
			if s, ok := x.(string); ok && strings.HasSuffix(k, "_file") {
				out[key] = s
				continue
			}
			fileRefs(x, key, out)
		}
	case []any:
		for i, x := range v {
			fileRefs(x, fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	}
}

// loadedConfig is what checkConfig found.
type loadedConfig struct {
	cfg *config.Config
	// refs maps each *_file key (and SIGNOFF_*_FILE variable) to the path
	// the pod reads.
	refs map[string]string
}

// checkConfig does what the pod does at start: it reads the config file the
// container's --config names from the ConfigMap mounted there, applies the
// container's SIGNOFF_* environment, and loads it with signoff's config
// loader, with every secret file the config names read from the Secret
// mounted at that path (the rendered Secret's content; a placeholder for a
// Secret the release does not create). It fails t unless every *_file key
// points into a mounted Secret holding that file, and unless the config
// loads, validates and builds its policy, as `signoff config check` does.
func checkConfig(t *testing.T, ms manifests) loadedConfig {
	t.Helper()
	spec, c := pod(t, ms)

	args := list(c["args"])
	i := slices.Index(args, any("--config"))
	if len(args) == 0 || args[0] != "serve" || i < 0 || i+1 >= len(args) {
		t.Fatalf("container args = %v, want serve --config FILE", args)
	}
	cfgPath := str(args[i+1])
	cm := mountAt(c, path.Dir(cfgPath))
	if cm == nil {
		t.Fatalf("nothing is mounted at %s, where --config %s lives", path.Dir(cfgPath), cfgPath)
	}
	cmVol := volume(spec, str(cm["name"]))
	cmName := str(at(cmVol, "configMap", "name"))
	if cmName == "" {
		t.Fatalf("the volume at %s is not a ConfigMap: %v", path.Dir(cfgPath), cmVol)
	}
	key := path.Base(cfgPath)
	for _, it := range list(at(cmVol, "configMap", "items")) {
		if str(at(it, "path")) == key {
			key = str(at(it, "key"))
		}
	}
	cmObj := ms.named("ConfigMap", cmName)
	if cmObj == nil {
		t.Fatalf("the ConfigMap %s mounted at %s is not rendered", cmName, path.Dir(cfgPath))
	}
	text, ok := at(cmObj, "data", key).(string)
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, key)
	}

	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("the rendered config is not YAML: %v\n%s", err, text)
	}
	env := envOf(c)
	refs := map[string]string{}
	fileRefs(raw, "", refs)
	for k, v := range env {
		if strings.HasPrefix(k, config.EnvPrefix) && strings.HasSuffix(k, "_FILE") {
			refs["$"+k] = v
		}
	}

	// Lay each mounted Secret out in a directory of its own, as the
	// kubelet would.
	root := t.TempDir()
	mounts := secretMounts(t, spec, c)
	var replace []string
	for n, m := range mounts {
		dir := filepath.Join(root, fmt.Sprint(n))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		replace = append(replace, m.dir+"/", dir+"/")
		s := ms.named("Secret", m.secret)
		for ref, p := range refs {
			name, ok := strings.CutPrefix(p, m.dir+"/")
			if !ok {
				continue
			}
			secretKey := name
			if m.items != nil {
				if secretKey, ok = m.items[name]; !ok {
					t.Errorf("%s = %s, but the Secret %s is mounted at %s without a file %s", ref, p, m.secret, m.dir, name)
					continue
				}
			}
			content := testenv.SecretFileContent(ref)
			if s != nil {
				enc, ok := at(s, "data", secretKey).(string)
				if !ok {
					t.Errorf("%s = %s, but the Secret %s has no key %s", ref, p, m.secret, secretKey)
					continue
				}
				b, err := base64.StdEncoding.DecodeString(enc)
				if err != nil {
					t.Fatalf("Secret %s key %s: %v", m.secret, secretKey, err)
				}
				content = string(b)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for ref, p := range refs {
		if !slices.ContainsFunc(mounts, func(m secretMount) bool { return strings.HasPrefix(p, m.dir+"/") }) {
			t.Errorf("%s = %s, which is in no mounted Secret", ref, p)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Point the loader at the laid-out files.
	r := strings.NewReplacer(replace...)
	for k, v := range env {
		env[k] = r.Replace(v)
	}
	cfg, err := config.LoadAndValidate(config.LoadOptions{
		Path:      cfgPath,
		Data:      []byte(r.Replace(text)),
		LookupEnv: config.EnvMap(env),
	})
	if err != nil {
		t.Fatalf("signoff refuses the rendered config:\n%v\n--- %s (ConfigMap %s)\n%s", err, cfgPath, cmName, text)
	}
	if _, err := cfg.Policy(); err != nil {
		t.Fatalf("the rendered config's policy does not build: %v\n%s", err, text)
	}
	return loadedConfig{cfg: cfg, refs: refs}
}

func TestBoltDefaults(t *testing.T) {
	t.Parallel()
	ms := render(t)
	checkHardened(t, ms)

	dep := ms.one(t, "Deployment")
	if got := at(dep, "spec", "replicas"); got != 1 {
		t.Errorf("replicas = %v, want 1", got)
	}
	if got := str(at(dep, "spec", "strategy", "type")); got != "Recreate" {
		t.Errorf("strategy = %q, want Recreate: bbolt lets one process open the file", got)
	}

	// The database lives on the chart's PersistentVolumeClaim at the path
	// the config names.
	spec, c := pod(t, ms)
	pvc := ms.one(t, "PersistentVolumeClaim")
	data := mountAt(c, "/data")
	if data == nil {
		t.Fatal("nothing is mounted at /data")
	}
	if got, want := str(at(volume(spec, str(data["name"])), "persistentVolumeClaim", "claimName")), str(at(pvc, "metadata", "name")); got != want {
		t.Errorf("/data is claim %q, want the chart's PVC %q", got, want)
	}
	if at(pvc, "spec", "resources", "requests", "storage") == nil {
		t.Error("the PVC requests no storage size")
	}

	lc := checkConfig(t, ms)
	if lc.cfg.Storage.Driver != config.DriverBolt || lc.cfg.Storage.Path != "/data/signoff.db" {
		t.Errorf("storage = %s %s, want bolt /data/signoff.db", lc.cfg.Storage.Driver, lc.cfg.Storage.Path)
	}
	if lc.cfg.Listen != ":8080" {
		t.Errorf("listen = %q, want :8080 (every interface, the container port)", lc.cfg.Listen)
	}
	// The image sets SIGNOFF_STORAGE_PATH and SIGNOFF_LISTEN; the chart's
	// own values must win over them.
	env := envOf(c)
	if env["SIGNOFF_STORAGE_PATH"] != "/data/signoff.db" || env["SIGNOFF_LISTEN"] != ":8080" {
		t.Errorf("env = %v, want SIGNOFF_STORAGE_PATH=/data/signoff.db and SIGNOFF_LISTEN=:8080", env)
	}

	for _, kind := range []string{"PodDisruptionBudget", "ServiceMonitor", "Ingress", "Secret"} {
		if n := len(ms.all(kind)); n != 0 {
			t.Errorf("rendered %d %s by default, want none", n, kind)
		}
	}
}

func TestBoltRefusesReplicas(t *testing.T) {
	t.Parallel()
	msg := renderFails(t, "--set", "replicaCount=2")
	for _, want := range []string{"replicaCount is 2", "bolt", "storage.driver=postgres"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not say %q:\n%s", want, msg)
		}
	}
	// 0 scales the one replica down; that is allowed.
	if got := at(render(t, "--set", "replicaCount=0").one(t, "Deployment"), "spec", "replicas"); got != 0 {
		t.Errorf("replicas = %v, want 0", got)
	}
}

func TestBoltWithoutPersistence(t *testing.T) {
	t.Parallel()
	ms := render(t, "--set", "storage.persistence.enabled=false")
	if n := len(ms.all("PersistentVolumeClaim")); n != 0 {
		t.Errorf("rendered %d PVCs with persistence off", n)
	}
	spec, c := pod(t, ms)
	if v := volume(spec, str(mountAt(c, "/data")["name"])); v == nil || v["emptyDir"] == nil {
		t.Errorf("/data volume = %v, want an emptyDir", v)
	}

	ms = render(t, "--set", "storage.persistence.existingClaim=my-claim")
	if n := len(ms.all("PersistentVolumeClaim")); n != 0 {
		t.Errorf("rendered %d PVCs with an existing claim", n)
	}
	spec, c = pod(t, ms)
	if got := str(at(volume(spec, str(mountAt(c, "/data")["name"])), "persistentVolumeClaim", "claimName")); got != "my-claim" {
		t.Errorf("/data claim = %q, want my-claim", got)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://signoff:pw@db.example.com:5432/signoff?sslmode=verify-full\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		replicas int
	}{
		{"default replicas", []string{"--set", "storage.driver=postgres", "--set-file", "storage.postgres.dsn=" + dsnFile}, 2},
		{"three replicas", []string{"--set", "storage.driver=postgres", "--set-file", "storage.postgres.dsn=" + dsnFile, "--set", "replicaCount=3"}, 3},
		{"existing secret", []string{"--set", "storage.driver=postgres", "--set", "storage.postgres.existingSecret=db-app", "--set", "storage.postgres.secretKey=uri"}, 2},
		{"example", []string{"-f", chartDir + "/examples/postgres.yaml"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms := render(t, tc.args...)
			checkHardened(t, ms)

			dep := ms.one(t, "Deployment")
			if got := at(dep, "spec", "replicas"); got != tc.replicas {
				t.Errorf("replicas = %v, want %d", got, tc.replicas)
			}
			if got := str(at(dep, "spec", "strategy", "type")); got != "RollingUpdate" {
				t.Errorf("strategy = %q, want RollingUpdate", got)
			}
			if n := len(ms.all("PersistentVolumeClaim")); n != 0 {
				t.Errorf("rendered %d PVCs with postgres, want none", n)
			}
			spec, c := pod(t, ms)
			if m := mountAt(c, "/data"); m != nil {
				t.Errorf("/data is mounted with postgres: %v", m)
			}

			pdb := ms.one(t, "PodDisruptionBudget")
			if at(pdb, "spec", "minAvailable") == nil && at(pdb, "spec", "maxUnavailable") == nil {
				t.Error("the PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
			}
			podLabels := labels(at(dep, "spec", "template", "metadata", "labels"))
			if !selects(labels(at(pdb, "spec", "selector", "matchLabels")), podLabels) {
				t.Errorf("the PodDisruptionBudget does not select the pods")
			}

			lc := checkConfig(t, ms)
			if lc.cfg.Storage.Driver != config.DriverPostgres {
				t.Errorf("storage.driver = %q, want postgres", lc.cfg.Storage.Driver)
			}
			if lc.cfg.Storage.DSN == "" {
				t.Error("the DSN was not read from its file")
			}
			dsnPath := lc.refs["storage.dsn_file"]
			if dsnPath == "" || lc.refs["$SIGNOFF_STORAGE_DSN_FILE"] != dsnPath {
				t.Errorf("storage.dsn_file = %q, SIGNOFF_STORAGE_DSN_FILE = %q: want the same mounted file", dsnPath, lc.refs["$SIGNOFF_STORAGE_DSN_FILE"])
			}
			// The DSN is in its own Secret volume.
			var found bool
			for _, m := range secretMounts(t, spec, c) {
				if strings.HasPrefix(dsnPath, m.dir+"/") {
					found = true
					if want := "signoff-postgres"; tc.name != "existing secret" && tc.name != "example" && !strings.HasSuffix(m.secret, want) {
						t.Errorf("DSN Secret = %q, want the chart's %s", m.secret, want)
					}
				}
			}
			if !found {
				t.Errorf("the DSN file %s is in no mounted Secret", dsnPath)
			}
		})
	}
}

func TestPostgresSingleReplicaHasNoPDB(t *testing.T) {
	t.Parallel()
	ms := render(t, "--set", "storage.driver=postgres", "--set", "storage.postgres.existingSecret=pg", "--set", "replicaCount=1")
	if n := len(ms.all("PodDisruptionBudget")); n != 0 {
		t.Errorf("rendered %d PodDisruptionBudgets for one replica: it would block node drains", n)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown driver", []string{"--set", "storage.driver=mysql"}, "storage/driver"},
		{"postgres without a DSN", []string{"--set", "storage.driver=postgres"}, "no DSN is given"},
		{"storage in config", []string{"--set", "config.storage.driver=postgres"}, "config.storage is set by the chart"},
		{"listen in config", []string{"--set", "config.listen=:9000"}, "config.listen is set by the chart"},
		{"secret file not provided", []string{"--set", "config.slack.bot_token_file=/run/secrets/signoff/slack-bot-token"}, `secrets.files has no "slack-bot-token"`},
		{"negative replicas", []string{"--set", "replicaCount=-1"}, "replicaCount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if msg := renderFails(t, tc.args...); !strings.Contains(msg, tc.want) {
				t.Errorf("refusal does not say %q:\n%s", tc.want, msg)
			}
		})
	}
}

// exampleSecretFiles returns the secret file names an example values file's
// config points at under the chart's default secrets.mountPath.
func exampleSecretFiles(t *testing.T, example string) []string {
	t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	fileRefs(values["config"], "", refs)
	var names []string
	for _, p := range refs {
		if name, ok := strings.CutPrefix(p, "/run/secrets/signoff/"); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestSecretFilesFromValues installs the bolt example with its secret files
// given as --set-file: the chart creates the Secret, mounts it, and each
// *_file key of the config reads its own file's content.
func TestSecretFilesFromValues(t *testing.T) {
	t.Parallel()
	example := chartDir + "/examples/bolt.yaml"
	names := exampleSecretFiles(t, example)
	if len(names) < 3 {
		t.Fatalf("the bolt example names %d secret files (%v); the test expects several", len(names), names)
	}
	dir := t.TempDir()
	args := []string{"-f", example, "--set", "secrets.existingSecret="}
	for _, n := range names {
		p := filepath.Join(dir, n)
		// Distinct contents, each of its key's shape.
		if err := os.WriteFile(p, []byte(testenv.SecretFileContent(n)), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--set-file", "secrets.files."+n+"="+p)
	}
	ms := render(t, args...)
	checkHardened(t, ms)
	lc := checkConfig(t, ms)

	secret := ms.one(t, "Secret")
	for _, n := range names {
		if at(secret, "data", n) == nil {
			t.Errorf("the chart's Secret has no %s", n)
		}
	}
	cfg := lc.cfg
	for key, got := range map[string]string{
		"slack.bot_token":                               cfg.Slack.BotToken.Reveal(),
		"slack.signing_secret":                          cfg.Slack.SigningSecret.Reveal(),
		"idp.client_secret":                             cfg.IdP.ClientSecret.Reveal(),
		"actions.deploy-prod.on_approve.webhook.secret": cfg.Actions["deploy-prod"].OnApprove.Webhook.Secret.Reveal(),
	} {
		if !strings.HasPrefix(got, "value-of-") {
			t.Errorf("%s = %q, want the content of its secret file", key, got)
		}
	}
	if got := cfg.Slack.BotToken.Reveal(); !strings.Contains(got, "slack-bot-token") {
		t.Errorf("slack.bot_token holds %q, another file's content", got)
	}

	// The example's Ingress routes to the Service's port.
	ing := ms.one(t, "Ingress")
	svc := ms.one(t, "Service")
	backend := at(ing, "spec", "rules", 0, "http", "paths", 0, "backend", "service")
	if str(at(backend, "name")) != str(at(svc, "metadata", "name")) || str(at(backend, "port", "name")) != "http" {
		t.Errorf("Ingress backend = %v, want the Service's http port", backend)
	}
}

func TestExistingConfigMapAndSecret(t *testing.T) {
	t.Parallel()
	ms := render(t,
		"--set", "existingConfigMap=my-config", "--set", "existingConfigMapKey=config.yaml",
		"--set", "secrets.existingSecret=my-secrets")
	if n := len(ms.all("ConfigMap")); n != 0 {
		t.Errorf("rendered %d ConfigMaps with existingConfigMap", n)
	}
	if n := len(ms.all("Secret")); n != 0 {
		t.Errorf("rendered %d Secrets with secrets.existingSecret", n)
	}
	spec, c := pod(t, ms)
	args := list(c["args"])
	if got := str(args[len(args)-1]); got != "/etc/signoff/config.yaml" {
		t.Errorf("--config %s, want /etc/signoff/config.yaml", got)
	}
	cm := volume(spec, str(mountAt(c, "/etc/signoff")["name"]))
	if got := str(at(cm, "configMap", "name")); got != "my-config" {
		t.Errorf("config volume = %v, want the ConfigMap my-config", cm)
	}
	mounts := secretMounts(t, spec, c)
	if len(mounts) != 1 || mounts[0].secret != "my-secrets" || mounts[0].dir != "/run/secrets/signoff" {
		t.Errorf("secret mounts = %+v, want my-secrets at /run/secrets/signoff", mounts)
	}
	// Listen and storage come from the environment, which wins over
	// whatever the existing ConfigMap says.
	env := envOf(c)
	if env["SIGNOFF_LISTEN"] == "" || env["SIGNOFF_STORAGE_DRIVER"] != "bolt" || env["SIGNOFF_STORAGE_PATH"] == "" {
		t.Errorf("env = %v, want SIGNOFF_LISTEN, SIGNOFF_STORAGE_DRIVER and SIGNOFF_STORAGE_PATH", env)
	}
}

func TestServiceMonitor(t *testing.T) {
	t.Parallel()
	ms := render(t, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus")
	sm := ms.one(t, "ServiceMonitor")
	if got := str(sm["apiVersion"]); got != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion = %q", got)
	}
	if got := str(at(sm, "metadata", "labels", "release")); got != "prometheus" {
		t.Errorf("labels.release = %q, want prometheus", got)
	}
	ep := at(sm, "spec", "endpoints", 0)
	if str(at(ep, "port")) != "http" || str(at(ep, "path")) != "/metrics" {
		t.Errorf("endpoint = %v, want port http path /metrics", ep)
	}
	svc := ms.one(t, "Service")
	if !selects(labels(at(sm, "spec", "selector", "matchLabels")), labels(at(svc, "metadata", "labels"))) {
		t.Error("the ServiceMonitor does not select the Service")
	}
}

// TestChecksumsRollPods: a change to the rendered config changes the pod
// template, so pods restart to read it.
func TestChecksumsRollPods(t *testing.T) {
	t.Parallel()
	a := at(render(t).one(t, "Deployment"), "spec", "template", "metadata", "annotations", "checksum/config")
	b := at(render(t, "--set", "config.log.level=debug").one(t, "Deployment"), "spec", "template", "metadata", "annotations", "checksum/config")
	if a == nil || a == b {
		t.Errorf("checksum/config = %v before and %v after a config change, want two different values", a, b)
	}
}
