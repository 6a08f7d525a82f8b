package systemd

// Attacks on the systemd unit: secrets only through credentials, the
// sandbox in place.

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/signoff-dev/signoff/config"
)

// TestAttackNoSecretsOutsideCredentials: the unit hands secrets over
// only as credentials: no Environment=/EnvironmentFile=/PassEnvironment=
// that could carry one (environment is readable in /proc by the same uid
// and is inherited by children), no SetCredential= with an inline value
// (which would sit in the world-readable unit file), and every
// LoadCredential source is a credential-store name, not a path into a
// world-readable place.
func TestAttackNoSecretsOutsideCredentials(t *testing.T) {
	u, _ := readUnit(t)
	for _, k := range []string{"Environment", "EnvironmentFile", "PassEnvironment", "SetCredential", "SetCredentialEncrypted"} {
		if vs := u["Service"][k]; len(vs) > 0 {
			t.Errorf("[Service] %s=%q: secrets must come only through LoadCredential", k, vs)
		}
	}
	for id, src := range credentials(t, u) {
		if strings.HasPrefix(src, "/") || strings.Contains(src, "/") {
			t.Errorf("LoadCredential=%s:%s is a path, not a credential-store name", id, src)
		}
	}
}

// TestAttackSandbox: the directives the brief asks about, and the
// identity: never root, no capabilities, private /tmp, read-only OS, state
// only in a 0700 directory, files created 0600.
func TestAttackSandbox(t *testing.T) {
	u, _ := readUnit(t)
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"DynamicUser": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"StateDirectoryMode": "0700", "UMask": "0077", "ProtectProc": "invisible",
		"PrivateDevices": "yes", "ProtectHome": "yes", "RestrictSUIDSGID": "yes",
		"SystemCallFilter": "~@privileged", "RemoveIPC": "yes",
	}
	for k, v := range want {
		if got, _ := u.last("Service", k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"User", "Group", "SupplementaryGroups", "ReadWritePaths", "BindPaths", "PermissionsStartOnly"} {
		if vs := u["Service"][k]; len(vs) > 0 {
			t.Errorf("%s=%q widens the sandbox or changes the identity", k, vs)
		}
	}
	if got, _ := u.last("Service", "ExecStart"); strings.HasPrefix(got, "+") || strings.HasPrefix(got, "!") {
		t.Errorf("ExecStart=%s runs with full privileges", got)
	}
}

// TestAttackExampleConfigHasNoPlainSecrets: the example config names
// every secret through a *_file key under /run/credentials/UNIT/ (readable
// by the service alone) and sets none of their plain twins, and listens on
// loopback only (the reverse proxy terminates TLS).
func TestAttackExampleConfigHasNoPlainSecrets(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	get := func(key string) (any, bool) {
		var v any = doc
		for _, p := range strings.Split(key, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[p]; !ok {
				return nil, false
			}
		}
		return v, true
	}
	for _, k := range config.EnvKeys() {
		if !strings.HasSuffix(k, "_file") {
			continue
		}
		if v, ok := get(strings.TrimSuffix(k, "_file")); ok && v != nil && v != "" {
			t.Errorf("the example sets the plain secret %s", strings.TrimSuffix(k, "_file"))
		}
		if v, ok := get(k); ok {
			if s, _ := v.(string); !strings.HasPrefix(s, credentialsDir) {
				t.Errorf("%s=%v is not under %s", k, v, credentialsDir)
			}
		}
	}
	if l, _ := get("listen"); !strings.HasPrefix(l.(string), "127.0.0.1:") {
		t.Errorf("listen %v is not loopback", l)
	}
}
