package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// auditLog is a database whose audit log a Service with a signing key wrote.
type auditLog struct {
	t   *testing.T
	dir string
	db  string
	key string // private key file; the public key is key+".pub"
}

func newAuditLog(t *testing.T) *auditLog {
	t.Helper()
	dir := t.TempDir()
	l := &auditLog{t: t, dir: dir, db: filepath.Join(dir, "signoff.db"), key: filepath.Join(dir, "audit.key")}
	if code, out, stderr := runCmd(t, "audit", "keygen", "-o", l.key); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, stderr)
	}
	return l
}

// write creates n requests with a checkpoint every 4 records; with
// shutdown, the Service is then closed cleanly (a closing checkpoint).
// The store is closed either way, as after a crash or a shutdown.
func (l *auditLog) write(n int, shutdown bool) {
	l.t.Helper()
	priv, err := audit.ReadPrivateKeyFile(l.key)
	if err != nil {
		l.t.Fatal(err)
	}
	st, err := boltstore.Open(l.db, boltstore.Options{})
	if err != nil {
		l.t.Fatal(err)
	}
	defer st.Close()
	pol := &policy.Policy{Actions: map[string]*policy.Action{"deploy": {
		Name:       "deploy",
		Requesters: []policy.RequesterRule{{Issuer: "ci"}},
		Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
		TTL:        time.Hour,
	}}}
	svc := approvals.New(st, pol, approvals.Options{SigningKey: priv, CheckpointEvery: 4, Logger: testenv.DiscardLogger()})
	ctx := context.Background()
	for i := range n {
		if _, _, err := svc.Create(ctx, approvals.CreateInput{
			Requester: storage.Requester{Issuer: "ci", Subject: "repo:acme/api", Claims: map[string]string{"sub": "repo:acme/api"}},
			Action:    "deploy", Reason: fmt.Sprintf("release %d", i),
		}); err != nil {
			l.t.Fatalf("create: %v", err)
		}
	}
	if shutdown {
		if err := svc.Close(ctx); err != nil {
			l.t.Fatal(err)
		}
	}
}

// export writes the log to name (in the test's directory) and returns the
// path and its lines.
func (l *auditLog) export(name string) (string, []string) {
	l.t.Helper()
	path := filepath.Join(l.dir, name)
	if code, _, stderr := runCmd(l.t, "audit", "export", "--db", l.db, "-o", path); code != 0 {
		l.t.Fatalf("export: %d %s", code, stderr)
	}
	return path, readLines(l.t, path)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// writeLines writes lines as a JSON-lines file in dir.
func writeLines(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkpoints returns the checkpoint lines of an export, as published.
func checkpoints(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, `"type":"checkpoint"`) {
			out = append(out, l)
		}
	}
	return out
}

// seqOf returns the seq of an export line.
func seqOf(t *testing.T, line string) uint64 {
	t.Helper()
	r, err := audit.ParseRecord([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

func TestAuditVerifyStrict(t *testing.T) {
	l := newAuditLog(t)
	l.write(6, false) // as a running (or crashed) server leaves it
	_, lines := l.export("running.jsonl")
	cps := checkpoints(lines)
	if len(cps) == 0 || strings.Contains(lines[len(lines)-1], `"type":"checkpoint"`) {
		t.Fatalf("want checkpoints and an unsigned tail:\n%s", strings.Join(lines, "\n"))
	}
	lastCP := seqOf(t, cps[len(cps)-1])
	pub := l.key + ".pub"

	// An unsigned tail: intact without --strict, refused with it.
	code, out, stderr := runCmd(t, "audit", "verify", "--db", l.db, "--pubkey", pub)
	if code != 0 || !strings.Contains(out, "not yet covered by a signature") {
		t.Fatalf("without --strict: %d %s %s", code, out, stderr)
	}
	code, _, stderr = runCmd(t, "audit", "verify", "--db", l.db, "--pubkey", pub, "--strict")
	want := fmt.Sprintf("audit record seq %d (line %d): unsigned: %d records (seq %d to %d) follow the last signed checkpoint (seq %d)",
		lastCP+1, lastCP+1, uint64(len(lines))-lastCP, lastCP+1, len(lines), lastCP)
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "after the server shut down cleanly") || !strings.Contains(stderr, "--anchor") {
		t.Fatalf("--strict on an unsigned tail: %d %s\nwant %q", code, stderr, want)
	}

	// --strict without --pubkey is a usage error that says why.
	code, _, stderr = runCmd(t, "audit", "verify", "--db", l.db, "--strict")
	if code != 2 || !strings.Contains(stderr, "--strict needs --pubkey") {
		t.Fatalf("--strict without --pubkey: %d %s", code, stderr)
	}

	// After a clean shutdown the log ends with the closing checkpoint.
	l.write(1, true)
	final, lines := l.export("final.jsonl")
	for _, src := range [][]string{{"--db", l.db}, {final}} {
		code, out, stderr = runCmd(t, append(append([]string{"audit", "verify"}, src...), "--pubkey", pub, "--strict")...)
		if code != 0 || !strings.Contains(out, "the log ends with a signed checkpoint") {
			t.Fatalf("--strict after a clean shutdown (%v): %d %s %s", src, code, out, stderr)
		}
	}

	// A vote forged and appended after the closing checkpoint, by someone
	// with the database but not the key, fails --strict (only).
	last, err := audit.ParseRecord([]byte(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	_, forged, err := audit.Seal(audit.Record{
		Time: audit.FormatTime(time.Now()), Type: audit.TypeVoteApprove, RequestID: "req_x", Action: "deploy",
		Actor: &audit.Actor{Issuer: "https://idp.example", Subject: "mallory", Platform: "slack"},
	}, last.Seq, last.Hash)
	if err != nil {
		t.Fatal(err)
	}
	tampered := writeLines(t, l.dir, "forged.jsonl", append(lines, string(forged)))
	if code, _, stderr := runCmd(t, "audit", "verify", tampered, "--pubkey", pub); code != 0 {
		t.Fatalf("forged tail without --strict: %d %s", code, stderr)
	}
	code, _, stderr = runCmd(t, "audit", "verify", tampered, "--pubkey", pub, "--strict")
	if seq := last.Seq + 1; code != 1 || !strings.Contains(stderr, fmt.Sprintf("audit record seq %d (line %d): unsigned: 1 record (seq %d) follows", seq, seq, seq)) {
		t.Fatalf("forged tail with --strict: %d %s", code, stderr)
	}
}

func TestAuditVerifyAnchor(t *testing.T) {
	l := newAuditLog(t)
	l.write(6, false)
	running, lines := l.export("running.jsonl")
	pub := l.key + ".pub"
	published := writeLines(t, l.dir, "published-so-far.jsonl", checkpoints(lines))

	// A running server's export, checked against the checkpoints published
	// so far.
	code, out, stderr := runCmd(t, "audit", "verify", running, "--pubkey", pub, "--anchor", published)
	if n := len(checkpoints(lines)); code != 0 || !strings.Contains(out, fmt.Sprintf("%d anchors found unchanged", n)) {
		t.Fatalf("running export with anchors: %d %s %s", code, out, stderr)
	}

	// After a clean shutdown: --strict and --anchor together pass.
	l.write(2, true)
	final, lines := l.export("final.jsonl")
	cps := checkpoints(lines)
	if len(cps) < 3 {
		t.Fatalf("want at least 3 checkpoints, got %d", len(cps))
	}
	anchors := writeLines(t, l.dir, "anchors.jsonl", cps)
	for _, src := range [][]string{{"--db", l.db}, {final}} {
		args := append(append([]string{"audit", "verify"}, src...), "--pubkey", pub, "--strict", "--anchor", anchors)
		code, out, stderr := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("%d anchors found unchanged", len(cps))) || !strings.Contains(out, "ends with a signed checkpoint") {
			t.Fatalf("%v: %d %s %s", args, code, out, stderr)
		}
	}

	// Cut right after an earlier checkpoint: chain, signatures and even
	// --strict pass, the anchors do not.
	firstCP := seqOf(t, cps[0])
	cut := writeLines(t, l.dir, "cut.jsonl", lines[:firstCP])
	if code, _, stderr := runCmd(t, "audit", "verify", cut, "--pubkey", pub, "--strict"); code != 0 {
		t.Fatalf("cut log without anchors: %d %s", code, stderr)
	}
	code, _, stderr = runCmd(t, "audit", "verify", cut, "--pubkey", pub, "--strict", "--anchor", anchors)
	want := fmt.Sprintf("the log ends at seq %d but an anchor names seq %d: the log was truncated", firstCP, seqOf(t, cps[1]))
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("cut log with anchors: %d %s\nwant %q", code, stderr, want)
	}

	// An anchor whose record was altered (and its hash recomputed, so it is
	// well formed and its signature, over data, still verifies) fails.
	r, err := audit.ParseRecord([]byte(cps[1]))
	if err != nil {
		t.Fatal(err)
	}
	r.Time = "2001-01-01T00:00:00Z"
	if r.Hash, err = audit.ComputeHash(r); err != nil {
		t.Fatal(err)
	}
	altered, err := audit.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	alteredFile := writeLines(t, l.dir, "altered.jsonl", []string{cps[0], string(altered)})
	code, _, stderr = runCmd(t, "audit", "verify", final, "--pubkey", pub, "--anchor", alteredFile)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("audit record seq %d", r.Seq)) || !strings.Contains(stderr, "is not the one the anchor on line 2 names") {
		t.Fatalf("altered anchor: %d %s", code, stderr)
	}

	// A malformed anchor file is a usage error naming the line.
	for name, tc := range map[string]struct {
		lines []string
		want  string
	}{
		"not JSON":         {[]string{cps[0], "", "checkpoint 17"}, "line 3: not an audit record"},
		"edited in place":  {[]string{strings.Replace(cps[0], `"time":"`, `"time":"1`, 1)}, "line 1: its hash does not match its content"},
		"not a checkpoint": {[]string{lines[0]}, `line 1: record seq 1 is a "request.created" record`},
		"empty":            {[]string{""}, "no anchors"},
	} {
		path := writeLines(t, l.dir, "bad.jsonl", tc.lines)
		code, _, stderr := runCmd(t, "audit", "verify", final, "--anchor", path)
		if code != 2 || !strings.Contains(stderr, "--anchor "+path+": "+tc.want) {
			t.Errorf("%s: %d %s\nwant %q", name, code, stderr, tc.want)
		}
	}
	// With --pubkey, anchors must be signed by that key.
	other := filepath.Join(l.dir, "other.key")
	runCmd(t, "audit", "keygen", "-o", other)
	code, _, stderr = runCmd(t, "audit", "verify", running, "--pubkey", other+".pub", "--anchor", anchors)
	if code != 2 || !strings.Contains(stderr, "line 1: checkpoint was signed by key id") {
		t.Fatalf("anchors signed by another key: %d %s", code, stderr)
	}
	if code, _, _ := runCmd(t, "audit", "verify", final, "--anchor", filepath.Join(l.dir, "missing.jsonl")); code != 2 {
		t.Fatalf("missing anchor file: %d", code)
	}
}
