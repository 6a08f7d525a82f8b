package helm

// Attacks on the Helm chart: what it renders must keep secrets in Secrets,
// values as data, and the pod hardened.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// valuesFile writes a values file for a test.
func valuesFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func configMapText(t *testing.T, ms manifests) string {
	t.Helper()
	return str(at(ms.one(t, "ConfigMap"), "data", "signoff.yaml"))
}

// TestAttackPlainSecretsRefused: every *_file key has a plain twin
// (slack.signing_secret, idp.client_secret, …); one given in `config` would
// land in the ConfigMap (readable by anyone with `get configmaps`, stored
// unencrypted in etcd, diffed in plain text by GitOps tools). The chart
// refuses it, as it refuses config.listen and config.storage.
func TestAttackPlainSecretsRefused(t *testing.T) {
	t.Parallel()
	const secret = "xoxb-REVIEW-plain-secret-in-configmap"
	vf := valuesFile(t, `
config:
  slack:
    bot_token: `+secret+`
    signing_secret: `+secret+`
    team_id: T0123ABCD
  idp:
    issuer: https://login.example.com
    client_id: signoff
    client_secret: `+secret+`
`)
	out, err := runHelm(t, "template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion, "-f", vf)
	if err != nil {
		return // refused: the property holds
	}
	if strings.Contains(out, secret) {
		i := strings.Index(out, secret)
		t.Errorf("a plain secret given in config is rendered into the ConfigMap instead of being refused:\n…%s…",
			out[max(0, i-200):min(len(out), i+80)])
	}
}

// TestAttackValueInjectsNothingIntoPodSpec: values pasted into the
// manifests (priorityClassName, service.type, ingress.className, ingress
// paths[].path / pathType, serviceMonitor.interval) are quoted: a value
// holding a newline must not add keys to the pod spec, here hostNetwork
// and hostPID, past the "hardened pod" the README promises. Values are normally the operator's,
// so this matters when values are assembled from less-trusted sources
// (GitOps PRs, per-team overlays, --set from pipelines).
func TestAttackValueInjectsNothingIntoPodSpec(t *testing.T) {
	t.Parallel()
	vf := valuesFile(t, `
priorityClassName: "high\n      hostNetwork: true\n      hostPID: true"
`)
	out, err := runHelm(t, "template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion, "-f", vf)
	if err != nil {
		return // refused: holds
	}
	var ms manifests
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o map[string]any
		if dec.Decode(&o) != nil {
			break
		}
		if o != nil {
			ms = append(ms, o)
		}
	}
	spec, _ := pod(t, ms)
	if spec["hostNetwork"] == true || spec["hostPID"] == true {
		t.Errorf("priorityClassName injected into the pod spec: hostNetwork=%v hostPID=%v (quote the value, or constrain it in values.schema.json)",
			spec["hostNetwork"], spec["hostPID"])
	}
}

// TestAttackHardeningInEveryMode: the pod is hardened in both
// storage modes, with or without the chart's ServiceAccount, with the
// examples: non-root, read-only root fs, no privilege escalation, every
// capability dropped, seccomp RuntimeDefault, no service account token,
// no host namespaces, nothing privileged.
func TestAttackHardeningInEveryMode(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"bolt":             nil,
		"postgres":         {"--set", "storage.driver=postgres", "--set", "storage.postgres.existingSecret=pg"},
		"no chart SA":      {"--set", "serviceAccount.create=false"},
		"example bolt":     {"-f", chartDir + "/examples/bolt.yaml"},
		"example postgres": {"-f", chartDir + "/examples/postgres.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ms := render(t, args...)
			checkHardened(t, ms)
			spec, c := pod(t, ms)
			for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
				if spec[k] == true {
					t.Errorf("%s is set", k)
				}
			}
			if at(c, "securityContext", "privileged") == true {
				t.Error("privileged container")
			}
			for _, sa := range ms.all("ServiceAccount") {
				if sa["automountServiceAccountToken"] != false {
					t.Errorf("ServiceAccount automountServiceAccountToken = %v", sa["automountServiceAccountToken"])
				}
			}
		})
	}
}

// TestAttackSecretsOnlyInSecrets: secret material given the intended
// way (secrets.files, storage.postgres.dsn) lands only in Secrets, mounted
// as read-only files; never in the ConfigMap, an env value, an annotation
// or a label, and no env var is fed from a Secret.
func TestAttackSecretsOnlyInSecrets(t *testing.T) {
	t.Parallel()
	const token, dsn = "xoxb-REVIEW-file-secret", "postgres://signoff:REVIEW-pw@db:5432/signoff"
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := render(t, "--set", "storage.driver=postgres", "--set", "storage.postgres.dsn="+dsn,
		"--set-file", "secrets.files.slack-bot-token="+tokFile,
		"--set", "config.slack.bot_token_file=/run/secrets/signoff/slack-bot-token",
		"--set", "config.slack.team_id=T0123ABCD")
	for _, o := range ms {
		if o["kind"] == "Secret" {
			continue
		}
		b, _ := yaml.Marshal(o)
		if strings.Contains(string(b), token) || strings.Contains(string(b), dsn) || strings.Contains(string(b), "REVIEW-pw") {
			t.Errorf("a secret appears in the %v %v", o["kind"], at(o, "metadata", "name"))
		}
	}
	_, c := pod(t, ms)
	for _, e := range list(c["env"]) {
		if at(e, "valueFrom") != nil {
			t.Errorf("env %v is fed from a Secret or field: %v", at(e, "name"), at(e, "valueFrom"))
		}
	}
	for _, m := range list(c["volumeMounts"]) {
		p := str(at(m, "mountPath"))
		if strings.HasPrefix(p, "/run/secrets") && at(m, "readOnly") != true {
			t.Errorf("secret mount %s is writable", p)
		}
	}
}

// TestAttackConfigValuesAreData: strings in config (and pod
// annotations / labels) that hold template text, YAML syntax or newlines
// are rendered as data: the ConfigMap's YAML reads back the same string,
// nothing is evaluated, no key is added.
func TestAttackConfigValuesAreData(t *testing.T) {
	t.Parallel()
	evil := "x\"\n  listen: 0.0.0.0:1\nstorage: {driver: bolt, path: /tmp/evil.db}\n{{ .Release.Name }} {{ fail \"boom\" }}"
	b, _ := yaml.Marshal(map[string]any{
		"config":         map[string]any{"public_url": evil, "actions": map[string]any{"a": map[string]any{"description": evil}}},
		"podAnnotations": map[string]any{"review": evil},
		"podLabels":      map[string]any{"review": "x"},
	})
	ms := render(t, "-f", valuesFile(t, string(b)))
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(configMapText(t, ms)), &cfg); err != nil {
		t.Fatalf("the ConfigMap's YAML does not parse: %v", err)
	}
	if cfg["public_url"] != evil || at(cfg, "actions", "a", "description") != evil {
		t.Errorf("config strings changed in rendering: %q", cfg["public_url"])
	}
	if cfg["listen"] != ":8080" || at(cfg, "storage", "path") != "/data/signoff.db" {
		t.Errorf("listen %v, storage %v: a config string changed what the chart sets", cfg["listen"], cfg["storage"])
	}
	dep := ms.one(t, "Deployment")
	if str(at(dep, "spec", "template", "metadata", "annotations", "review")) != evil {
		t.Error("the pod annotation changed in rendering")
	}
}

// TestAttackBoltSingleReplica: attempts to get a second bbolt pod are
// refused: replicaCount 2 or 3 with bolt, a driver spelled differently, a
// string replica count.
func TestAttackBoltSingleReplica(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--set", "replicaCount=2"},
		{"--set", "replicaCount=3", "--set", "storage.driver=bolt"},
		{"--set", "storage.driver=Bolt", "--set", "replicaCount=2"},
		{"--set-string", "replicaCount=2"},
		{"--set", "replicaCount=-1"},
	} {
		renderFails(t, args...)
	}
	dep := render(t, "--set", "replicaCount=1").one(t, "Deployment")
	if str(at(dep, "spec", "strategy", "type")) != "Recreate" {
		t.Errorf("bolt strategy %v, want Recreate", at(dep, "spec", "strategy"))
	}
}
