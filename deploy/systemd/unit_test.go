// Package systemd holds the tests of signoff's systemd unit
// (deploy/systemd/signoff.service): its hardening directives, its
// credentials against signoff's secret keys, the example config against
// signoff's config loader, and `systemd-analyze verify` and `security`
// when systemd-analyze is installed (Debian package systemd; without it
// those two skip, except under CI=true, where it is a failure).
package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/internal/testenv"
)

const (
	unitFile      = "signoff.service"
	exampleConfig = "signoff.example.yaml"
	// credentialsDir is where systemd hands a system service its
	// credentials: /run/credentials/UNIT.
	credentialsDir = "/run/credentials/" + unitFile + "/"
	binary         = "/usr/local/bin/signoff"
)

// unit is a unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, data []byte) unit {
	t.Helper()
	u := unit{}
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", unitFile, n, line)
			}
			if strings.HasSuffix(v, `\`) {
				t.Fatalf("%s:%d: continued lines are not expected here", unitFile, n)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func readUnit(t *testing.T) (unit, []byte) {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	return parseUnit(t, data), data
}

// last is the value systemd uses for a single-valued key.
func (u unit) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func TestHardening(t *testing.T) {
	u, _ := readUnit(t)
	for key, want := range map[string]string{
		"Type":                    "exec",
		"DynamicUser":             "yes",
		"StateDirectory":          "signoff",
		"ConfigurationDirectory":  "signoff",
		"WorkingDirectory":        "/var/lib/signoff",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"RestrictNamespaces":      "yes",
		"RestrictRealtime":        "yes",
		"RestrictSUIDSGID":        "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"SystemCallArchitectures": "native",
		"UMask":                   "0077",
		"Restart":                 "on-failure",
		// signoff's exit status for a config it refuses.
		"RestartPreventExitStatus": "2",
	} {
		got, ok := u.last("Service", key)
		if !ok {
			t.Errorf("[Service] %s is not set, want %s=%s", key, key, want)
		} else if got != want {
			t.Errorf("[Service] %s=%s, want %s=%s", key, got, key, want)
		}
	}
	if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter = %v, want @system-service among them", u["Service"]["SystemCallFilter"])
	}

	// signoff stops within 10 s of SIGTERM; systemd must wait a little longer.
	stop, _ := u.last("Service", "TimeoutStopSec")
	d, err := time.ParseDuration(stop)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", stop, err)
	}
	if d <= 10*time.Second || d > time.Minute {
		t.Errorf("TimeoutStopSec=%s, want a little above signoff's 10 s shutdown", d)
	}

	execStart, _ := u.last("Service", "ExecStart")
	if want := binary + " serve --config /etc/signoff/signoff.yaml"; execStart != want {
		t.Errorf("ExecStart=%s, want %s", execStart, want)
	}
	if got, _ := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("WantedBy=%s, want multi-user.target", got)
	}
}

// credentials returns the unit's LoadCredential= entries: id → source.
func credentials(t *testing.T, u unit) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range u["Service"]["LoadCredential"] {
		id, src, _ := strings.Cut(v, ":")
		if _, dup := out[id]; dup {
			t.Errorf("LoadCredential %s is listed twice", id)
		}
		out[id] = src
	}
	return out
}

// credentialFor names the credential of each secret key outside actions.
// A new secret key fails TestCredentialsCoverSecretKeys until it has one.
var credentialFor = map[string]string{
	"storage.dsn_file":              "postgres-dsn",
	"idp.client_secret_file":        "idp-client-secret",
	"idp.token_encryption_key_file": "idp-token-key",
	"slack.bot_token_file":          "slack-bot-token",
	"slack.signing_secret_file":     "slack-signing-secret",
	"slack.app_token_file":          "slack-app-token",
	"teams.app_password_file":       "teams-app-password",
	"audit.signing_key_file":        "audit-signing-key",
	"ssf.bearer_token_file":         "ssf-bearer-token",
	"attest.signing_key_file":       "attest-signing-key",

	"audit.publish.webhook.secret_file": "audit-publish-webhook-secret",
}

// TestCredentialsCoverSecretKeys: every secret key of the config (outside
// actions, whose webhook secrets are the operator's own) has a credential,
// read from the system credential store by a name of signoff's own (a
// relative source, so that a missing file is skipped rather than failing
// the start).
func TestCredentialsCoverSecretKeys(t *testing.T) {
	u, _ := readUnit(t)
	creds := credentials(t, u)
	var fileKeys []string
	for _, k := range config.EnvKeys() {
		if strings.HasSuffix(k, "_file") {
			fileKeys = append(fileKeys, k)
		}
	}
	if len(fileKeys) == 0 {
		t.Fatal("config.EnvKeys lists no *_file keys")
	}
	for _, k := range fileKeys {
		id, ok := credentialFor[k]
		if !ok {
			t.Errorf("the secret key %s has no credential: add LoadCredential=NAME:signoff.NAME to %s and NAME to credentialFor", k, unitFile)
			continue
		}
		src, ok := creds[id]
		if !ok {
			t.Errorf("%s: no LoadCredential=%s:… in %s", k, id, unitFile)
			continue
		}
		if want := "signoff." + id; src != want {
			t.Errorf("LoadCredential=%s:%s, want the credential store name %s (an absolute path fails the start when the file is missing)", id, src, want)
		}
	}
	for id := range creds {
		if !slices.Contains(fileKeys, keyOf(id)) {
			t.Errorf("LoadCredential=%s matches no secret key of the config", id)
		}
	}
}

func keyOf(id string) string {
	for k, v := range credentialFor {
		if v == id {
			return k
		}
	}
	return ""
}

// TestExampleConfig loads the example config as the service would: with
// the credentials it names laid out in a directory standing for
// /run/credentials/signoff.service, and the database under the state
// directory.
func TestExampleConfig(t *testing.T) {
	u, _ := readUnit(t)
	creds := credentials(t, u)
	text, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(text, &raw); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var walk func(v any, key string)
	found := 0
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(x, strings.TrimPrefix(key+"."+k, "."))
			}
		case string:
			if !strings.HasSuffix(key, "_file") {
				return
			}
			found++
			id, ok := strings.CutPrefix(v, credentialsDir)
			if !ok {
				t.Errorf("%s = %s, want a path under %s", key, v, credentialsDir)
				return
			}
			if _, ok := creds[id]; !ok {
				t.Errorf("%s = %s, but the unit loads no credential %s", key, v, id)
			}
			if err := os.WriteFile(filepath.Join(dir, id), []byte(testenv.SecretFileContent(id)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk(raw, "")
	if found < 3 {
		t.Fatalf("the example names %d secret files; it is meant to show several", found)
	}
	if t.Failed() {
		t.FailNow()
	}

	data := strings.ReplaceAll(string(text), credentialsDir, dir+"/")
	cfg, err := config.LoadAndValidate(config.LoadOptions{Path: exampleConfig, Data: []byte(data), LookupEnv: config.EnvMap(nil)})
	if err != nil {
		t.Fatalf("signoff refuses %s: %v", exampleConfig, err)
	}
	if _, err := cfg.Policy(); err != nil {
		t.Fatalf("%s: %v", exampleConfig, err)
	}
	state, _ := u.last("Service", "StateDirectory")
	if want := "/var/lib/" + state + "/"; !strings.HasPrefix(cfg.Storage.Path, want) {
		t.Errorf("storage.path = %s, want it under the state directory %s", cfg.Storage.Path, want)
	}
	if got := cfg.Slack.BotToken.Reveal(); got != strings.TrimSpace(testenv.SecretFileContent("slack-bot-token")) {
		t.Errorf("slack.bot_token = %q, want the slack-bot-token credential's content", got)
	}
}

// systemdAnalyze returns the systemd-analyze binary, skipping (or, under
// CI=true, failing) t when there is none.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return bin
	}
	const msg = "systemd-analyze not found: checking the unit needs it (Debian: apt-get install systemd); ./scripts/test installs it when it may"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// verifiable writes the unit into a directory of its own with ExecStart's
// binary replaced by an executable that exists, since verify checks it.
func verifiable(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	stub := filepath.Join(dir, "signoff")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, unitFile)
	if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte(binary), []byte(stub)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	bin := systemdAnalyze(t)
	_, data := readUnit(t)
	p := verifiable(t, data)
	out, err := exec.Command(bin, "verify", "--man=no", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify only warns about unknown keys and bad values, and may mention
	// other units of the host: any line about ours is a problem.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, unitFile) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitFile) + `: ([0-9.]+)`)

func TestSystemdAnalyzeSecurity(t *testing.T) {
	bin := systemdAnalyze(t)
	_, data := readUnit(t)
	p := verifiable(t, data)
	out, err := exec.Command(bin, "security", "--offline=true", "--no-pager", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no overall exposure level:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	// 0 is fully locked down, 10 unprotected; a network service that keeps
	// a database scores about 1.5 with this unit.
	if level > 2.5 {
		t.Errorf("exposure level %.1f, want at most 2.5:\n%s", level, out)
	}
}
