package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/config"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

const witnessTestSecret = "witness-secret-for-tests-0123456789"

// witnessStore is a webhook witness on loopback, as docs/auditors.md
// describes one: it checks each delivery's signature with executor.Verify
// and keeps the first line of each seq, in the order received.
type witnessStore struct {
	t    *testing.T
	mu   sync.Mutex
	kept map[uint64]string
	file []string
	got  chan uint64
}

func newWitnessStore(t *testing.T) (*witnessStore, *httptest.Server) {
	w := &witnessStore{t: t, kept: map[uint64]string{}, got: make(chan uint64, 100)}
	srv := httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(srv.Close)
	return w, srv
}

func (w *witnessStore) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(rw, "unreadable", http.StatusBadRequest)
		return
	}
	if err := executor.Verify(r.Header.Get(executor.HeaderSignature), []byte(witnessTestSecret), body, time.Now(), 0); err != nil {
		w.t.Errorf("witness: %v", err)
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	a, err := audit.ParseAnchor(body)
	if err != nil || r.Header.Get("Content-Type") != "application/json" {
		w.t.Errorf("witness: not a checkpoint (%s): %v", r.Header.Get("Content-Type"), err)
		http.Error(rw, "not a checkpoint", http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	if prev, ok := w.kept[a.Seq]; ok && prev != string(body) {
		w.t.Errorf("witness: a second, different line for seq %d", a.Seq)
	} else if !ok {
		w.kept[a.Seq] = string(body)
		w.file = append(w.file, string(body))
	}
	w.mu.Unlock()
	w.got <- a.Seq
	rw.WriteHeader(http.StatusNoContent)
}

// waitFor waits until the witness holds seq.
func (w *witnessStore) waitFor(seq uint64) {
	w.t.Helper()
	for {
		w.mu.Lock()
		_, ok := w.kept[seq]
		w.mu.Unlock()
		if ok {
			return
		}
		testenv.Receive(w.t, w.got, fmt.Sprintf("checkpoint seq %d at the witness", seq))
	}
}

func (w *witnessStore) holds(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.kept[seq]
	return ok
}

// writeAnchors writes what the witness kept as an anchor file.
func (w *witnessStore) writeAnchors(path string) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := os.WriteFile(path, []byte(strings.Join(w.file, "\n")+"\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// TestAuditPublishWebhookAnchorsTheLog: a server configured with
// audit.publish.webhook sends each signed checkpoint to the witness as it
// is made, in order; the closing checkpoint of a shutdown goes out when the
// server starts again; and `signoff audit verify --anchor` with the
// witness's lines accepts the log and refuses it cut short.
func TestAuditPublishWebhookAnchorsTheLog(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	if code, out, stderr := runCmd(t, "audit", "keygen", "-o", key); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, stderr)
	}
	witness, srv := newWitnessStore(t)
	cfgPath := writeConfig(t, requestTestConfig+`audit:
  signing_key_file: `+key+`
  checkpoint_every: 2
  publish:
    webhook: {url: "`+srv.URL+`/checkpoints", secret: `+witnessTestSecret+`, timeout: 5s}
`)
	db := filepath.Join(dir, "signoff.db")
	start := func() *testServer {
		ts := startServeConfig(t, cfgPath, true, func(c *config.Config) { c.Storage.Path = db })
		ts.logOnFailure(t)
		return ts
	}

	ts := start()
	for range 3 { // records 1 and 2, checkpoint 3, record 4, checkpoint 5
		if _, _, err := ts.svc.Create(context.Background(), approvals.CreateInput{
			Requester: storage.Requester{Issuer: "dev", Subject: "dev-user", Person: "dev-user", Claims: map[string]string{"sub": "dev-user"}},
			Action:    "deploy", Params: map[string]string{"service": "api"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	witness.waitFor(3)
	witness.waitFor(5)
	if err := ts.stop(); err != nil { // the closing checkpoint, seq 6
		t.Fatal(err)
	}
	if witness.holds(6) {
		t.Fatal("the closing checkpoint was sent after the loops stopped")
	}

	ts = start()
	witness.waitFor(6) // sent by the next start
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	anchors := filepath.Join(dir, "checkpoints.jsonl")
	witness.writeAnchors(anchors)
	code, out, stderr := runCmd(t, "audit", "verify", "--db", db, "--pubkey", key+".pub", "--strict", "--anchor", anchors)
	if code != 0 || !strings.Contains(out, "3 anchors found unchanged") {
		t.Fatalf("verify against the witness: %d %s %s", code, out, stderr)
	}

	// The log cut after checkpoint 5 is intact and signed, but the witness
	// holds checkpoint 6.
	export := filepath.Join(dir, "audit.jsonl")
	if code, _, stderr := runCmd(t, "audit", "export", "--db", db, "-o", export); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.jsonl")
	if err := os.WriteFile(cut, []byte(strings.Join(strings.SplitAfter(string(data), "\n")[:5], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCmd(t, "audit", "verify", cut, "--pubkey", key+".pub", "--strict"); code != 0 {
		t.Fatalf("the cut log alone: exit %d, want 0 (nothing else notices)", code)
	}
	code, _, stderr = runCmd(t, "audit", "verify", cut, "--pubkey", key+".pub", "--anchor", anchors)
	if code != 1 || !strings.Contains(stderr, "truncated") {
		t.Fatalf("the cut log against the witness: %d %s", code, stderr)
	}
}
