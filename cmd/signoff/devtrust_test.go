package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/config"
)

// productionIssuer stands in for a CI issuer in configs that tests start
// without --dev.
const productionIssuer = "https://ci.example.com"

// withoutDevTrust points the requester named dev at productionIssuer, so
// that serve starts without --dev.
func withoutDevTrust(cfg *config.Config) {
	for i := range cfg.Requesters {
		if cfg.Requesters[i].Name == devRequesterName {
			cfg.Requesters[i].Issuer = productionIssuer
		}
	}
}

// productionExampleConfig writes config.example.yaml with its dev
// requester pointed at productionIssuer and returns the file's path.
func productionExampleConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	const devIssuer = "issuer: http://127.0.0.1:8080/dev/oidc"
	if strings.Count(string(data), devIssuer) != 1 {
		t.Fatalf("config.example.yaml no longer has exactly one %q", devIssuer)
	}
	path := filepath.Join(t.TempDir(), "signoff.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), devIssuer, "issuer: "+productionIssuer, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startProdServer runs serve without --dev with the request test config,
// its dev requester pointed at productionIssuer.
func startProdServer(t *testing.T) *testServer {
	t.Helper()
	cfgPath := writeConfig(t, requestTestConfig)
	return startServeConfig(t, cfgPath, false, withoutDevTrust)
}

// TestServeRefusesDevIssuerWithoutDev: a server started without --dev does
// not start while a requester's issuer is a dev-mode issuer URL (its
// tokens would be minted by any `serve --dev` on the machine); the message
// names the key and both ways out. With --dev the same file starts.
func TestServeRefusesDevIssuerWithoutDev(t *testing.T) {
	t.Setenv("SIGNOFF_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNOFF_STORAGE_PATH", filepath.Join(t.TempDir(), "data", "signoff.db"))
	for name, path := range map[string]string{"example": exampleConfig, "tests": writeConfig(t, requestTestConfig)} {
		code, stderr := runServeBriefly(t, "--config", path)
		for _, want := range []string{"requesters[0].issuer", "http://127.0.0.1:8080/dev/oidc", "dev-mode issuer URL",
			"remove this requester", "run `signoff serve --dev`", "config.example.yaml lists this requester"} {
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Fatalf("%s: serve without --dev: exit %d, want 2 and %q in:\n%s", name, code, want, stderr)
			}
		}
		if _, err := os.Stat(os.Getenv("SIGNOFF_STORAGE_PATH")); err == nil {
			t.Fatalf("%s: the refused start created the database", name)
		}
	}

	// A renamed entry at the dev issuer's path, and the dev entry at
	// another path, are refused as well.
	cfg := writeConfig(t, strings.Replace(requestTestConfig, devRequestersYAML,
		`requesters:
  - {name: dev, issuer: "http://localhost:9000/issuer", audience: signoff, person_claim: sub}
  - {name: local, issuer: "http://[::1]:8080/dev/oidc/", audience: signoff, person_claim: sub}
  - {name: sidecar, issuer: "http://127.0.0.1:5556/dex", audience: signoff, person_claim: sub}
`, 1))
	code, stderr := runServeBriefly(t, "--config", cfg)
	if code != exitUsage || !strings.Contains(stderr, "requesters[0].issuer") || !strings.Contains(stderr, "requesters[1].issuer") || strings.Contains(stderr, "requesters[2]") {
		t.Fatalf("serve without --dev: exit %d:\n%s", code, stderr)
	}

	// In-process, with --dev, the dev requester is what dev mode serves.
	ts := startServeConfig(t, writeConfig(t, requestTestConfig), true)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestConfigCheckDevTrust: config check checks for a production start, so
// it reports the dev requester as serve would; with --dev it checks for
// `serve --dev`, which trusts it but refuses a listen address that is not
// loopback.
func TestConfigCheckDevTrust(t *testing.T) {
	code, _, stderr := runCmd(t, "config", "check", "--config", exampleConfig)
	for _, want := range []string{"has problems", "requesters[0].issuer", "dev-mode issuer URL", "remove this requester", "add --dev"} {
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Fatalf("config check without --dev: exit %d, want 2 and %q in:\n%s", code, want, stderr)
		}
	}
	if code, out, stderr := runCmd(t, "config", "check", "--dev", "--config", exampleConfig); code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("config check --dev: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := runCmd(t, "config", "check", "--config", productionExampleConfig(t)); code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("config check of a production config: exit %d\n%s\n%s", code, out, stderr)
	}
	t.Setenv("SIGNOFF_LISTEN", "0.0.0.0:8080")
	if code, _, stderr := runCmd(t, "config", "check", "--dev", "--config", exampleConfig); code != exitUsage || !strings.Contains(stderr, "only listens on loopback") {
		t.Fatalf("config check --dev on 0.0.0.0: exit %d\n%s", code, stderr)
	}
}

func TestIsDevIssuerURL(t *testing.T) {
	for _, tc := range []struct {
		name, issuer string
		want         bool
	}{
		{"dev", "http://127.0.0.1:8080/dev/oidc", true},
		{"ci", "http://127.0.0.1:8080/dev/oidc", true},
		{"ci", "http://localhost/dev/oidc/", true},
		{"ci", "http://LOCALHOST:1234/dev/oidc", true},
		{"ci", "http://[::1]:8080/dev/oidc", true},
		{"ci", "http://127.9.9.9:8080/dev/oidc", true},
		{"ci", "https://127.0.0.1:8443/dev/oidc", true},
		{"dev", "http://127.0.0.1:9999/elsewhere", true},
		{"dev", "http://localhost:8080", true},
		{"dev", "https://dev-issuer.example.com/dev/oidc", false},
		{"ci", "https://ci.example.com/dev/oidc", false},
		{"ci", "http://127.0.0.1.evil.example/dev/oidc", false},
		{"ci", "http://127.0.0.1:5556/dex", false},
		{"ci", "http://127.0.0.1:8080/dev/oidc/other", false},
		{"github", "https://token.actions.githubusercontent.com", false},
	} {
		if got, why := isDevIssuerURL(config.RequesterConfig{Name: tc.name, Issuer: tc.issuer}); got != tc.want || got != (why != "") {
			t.Errorf("%s %s: %v (%q), want %v", tc.name, tc.issuer, got, why, tc.want)
		}
	}
}

// TestServeMissingConfigSaysWhatToMount: the container image's default
// command names a config file the image does not hold; without it, serve
// says to write or mount one there.
func TestServeMissingConfigSaysWhatToMount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "signoff.yaml")
	code, stderr := runServeBriefly(t, "--config", path)
	if code != exitUsage || !strings.Contains(stderr, path+" does not exist") || !strings.Contains(stderr, "mount yours at that path") {
		t.Fatalf("serve with a missing config: exit %d: %s", code, stderr)
	}
}

// runServeBriefly runs `signoff serve args…` in-process and stops it after
// a few seconds if it started after all; it returns the exit code and
// stderr.
func runServeBriefly(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"serve"}, args...), strings.NewReader(""), &out, &errOut)
	if ctx.Err() != nil {
		t.Errorf("serve %v started and ran until stopped (exit %d)", args, code)
	}
	return code, errOut.String()
}

// writeConfig writes yaml to a temporary file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signoff.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
