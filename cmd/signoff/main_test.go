package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

const exampleConfig = "../../config.example.yaml"

// runCmd runs one signoff command line in-process.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// startServer runs `signoff serve` in-process and returns its address and a
// stop function that waits for a clean exit.
func startServer(t *testing.T, args ...string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		cfg, err := loadConfig(exampleConfig)
		if err != nil {
			done <- err
			return
		}
		withoutDevTrust(cfg) // a start without --dev refuses the dev requester
		done <- serve(ctx, cfg, serveOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, ready: ready})
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited at start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	var stopped bool
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("serve did not stop within 15s of its signal")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

// TestServeThenLifecycleExportVerify is the core issue's "done when": the
// server starts with config.example.yaml, stops gracefully, and a request
// created and approved against that same real store exports and verifies.
func TestServeThenLifecycleExportVerify(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "signoff.db")
	t.Setenv("SIGNOFF_STORAGE_PATH", dbPath)
	t.Setenv("SIGNOFF_LISTEN", "127.0.0.1:0")

	addr, stop := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	// While the server holds the database, an offline export says so.
	code, _, stderr := runCmd(t, "audit", "export", "--db", dbPath)
	if code == 0 || !strings.Contains(stderr, "locked by another signoff process") || !strings.Contains(stderr, dbPath) {
		t.Fatalf("export while serving: code %d, stderr %q", code, stderr)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// Create and approve through the lifecycle API on the same store.
	cfg, err := loadConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := cfg.Policy()
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := approvals.New(st, pol, approvals.Options{})
	ctx := context.Background()
	req, _, err := svc.Create(ctx, approvals.CreateInput{
		Requester: storage.Requester{Issuer: "dev", IssuerURL: "http://127.0.0.1:8080/dev/oidc", Subject: "dev-user", Person: "dev-user", Claims: map[string]string{"sub": "dev-user"}},
		Action:    "deploy-prod",
		Params:    map[string]string{"service": "api", "version": "1.4.2"},
		Reason:    "release <1.4.2> & friends",
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	res, err := svc.Vote(ctx, approvals.VoteInput{
		RequestID: req.ID, Decision: storage.DecisionApprove, Source: approvals.Source{Platform: "dev", PlatformUser: "alice"},
		Approver: oidc.Identity{Issuer: "http://127.0.0.1:8080/dev/oidc", Subject: "alice", Email: "alice@example.com", Groups: []string{"sre"}, VerifiedAt: time.Now()},
	})
	if err != nil || res.Request.State != storage.StateApproved {
		t.Fatalf("approve: %+v %v", res.Request.State, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	export := filepath.Join(dir, "audit.jsonl")
	if code, _, stderr := runCmd(t, "audit", "export", "--db", dbPath, "-o", export); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	if code, out, stderr := runCmd(t, "audit", "verify", export); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify export: %d %s %s", code, out, stderr)
	}
	if code, out, _ := runCmd(t, "audit", "verify", "--db", dbPath); code != 0 || !strings.Contains(out, "3 records") {
		t.Fatalf("verify db: %d %s", code, out)
	}
	code, out, _ := runCmd(t, "audit", "export", "--db", dbPath, "--format", "csv", "--request", req.ID)
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, "request.approved") {
		t.Fatalf("csv export: %d\n%s", code, out)
	}

	// Tamper with one record of the export: verify names its seq, exit 1.
	data, _ := os.ReadFile(export)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	lines[1] = strings.Replace(lines[1], `"alice"`, `"mallory"`, 1)
	if err := os.WriteFile(export, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd(t, "audit", "verify", export)
	if code != 1 || !strings.Contains(stderr, "seq 2") {
		t.Fatalf("verify tampered export: code %d, %s", code, stderr)
	}
}

func TestServeStopsPromptlyAndSignsClosingCheckpoint(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	if code, out, stderr := runCmd(t, "audit", "keygen", "-o", key); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, "audit", "keygen", "-o", key); code != 2 || !strings.Contains(stderr, "never overwrites") {
		t.Fatalf("keygen over an existing key: %d %s", code, stderr)
	}
	dbPath := filepath.Join(dir, "signoff.db")
	t.Setenv("SIGNOFF_STORAGE_PATH", dbPath)
	t.Setenv("SIGNOFF_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNOFF_AUDIT_SIGNING_KEY_FILE", key)

	// Seed one record so there is something to sign.
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := loadConfig(exampleConfig)
	pol, _ := cfg.Policy()
	svc := approvals.New(st, pol, approvals.Options{})
	if _, _, err := svc.Create(context.Background(), approvals.CreateInput{
		Requester: storage.Requester{Issuer: "dev", Subject: "dev-user", Claims: map[string]string{"sub": "dev-user"}}, Action: "deploy-prod",
		Params: map[string]string{"service": "api", "version": "1"},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	_, stop := startServer(t)
	began := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("shutdown took %s; docs/architecture.md (invariant 10) asks for under 10s", took)
	}
	code, out, stderr := runCmd(t, "audit", "verify", "--db", dbPath, "--pubkey", key+".pub")
	if code != 0 || !strings.Contains(out, "1 signed checkpoints verified") {
		t.Fatalf("verify with pubkey: %d %s %s", code, out, stderr)
	}
	// Another key's public half must not verify the log.
	other := filepath.Join(dir, "other.key")
	runCmd(t, "audit", "keygen", "-o", other)
	if code, _, _ := runCmd(t, "audit", "verify", "--db", dbPath, "--pubkey", other+".pub"); code != 1 {
		t.Fatalf("verify with the wrong key: exit %d, want 1", code)
	}
}

func TestServeRefusesLockedDatabase(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "signoff.db")
	st, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t.Setenv("SIGNOFF_STORAGE_PATH", dbPath)
	t.Setenv("SIGNOFF_LISTEN", "127.0.0.1:0")
	code, _, stderr := runCmd(t, "serve", "--config", productionExampleConfig(t))
	if code == 0 || !strings.Contains(stderr, "locked by another signoff process") {
		t.Fatalf("serve on a locked database: %d %s", code, stderr)
	}
}

func TestDevModeRefusesNonLoopback(t *testing.T) {
	t.Setenv("SIGNOFF_LISTEN", "0.0.0.0:8080")
	t.Setenv("SIGNOFF_STORAGE_PATH", filepath.Join(t.TempDir(), "x.db"))
	code, _, stderr := runCmd(t, "serve", "--dev", "--config", exampleConfig)
	if code != 2 || !strings.Contains(stderr, "only listens on loopback") {
		t.Fatalf("dev on 0.0.0.0: %d %s", code, stderr)
	}
}

func TestConfigCheck(t *testing.T) {
	code, out, stderr := runCmd(t, "config", "check", "--dev", "--config", exampleConfig)
	if code != 0 || !strings.Contains(out, "deploy-prod") {
		t.Fatalf("config check example: %d\n%s\n%s", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:8080\nactions:\n  deploy:\n    approvers: {min_approvals: 0}\n    ttl: -1h\n    bogus: 1\n"), 0o600)
	code, _, stderr = runCmd(t, "config", "check", "--config", bad)
	if code != 2 || !strings.Contains(stderr, "actions.deploy.") {
		t.Fatalf("config check bad: %d %s", code, stderr)
	}
	// The unknown key (bogus) does not hide the rest: min_approvals and
	// ttl are reported with it.
	for _, want := range []string{"actions.deploy.bogus", "actions.deploy.ttl", "actions.deploy.approvers"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check names %s? stderr:\n%s", want, stderr)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "verify"},
		{"audit", "export"},
		{"audit", "export", "--db", "x", "--format", "xml"},
		{"audit", "export", "--db", "x", "--since", "yesterday"},
		{"serve"},
		{"nope"},
		{"version", "--bogus"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, stderr)
		}
	}
	if code, out, _ := runCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "signoff ") {
		t.Errorf("version: %d %q", code, out)
	}
}
