package main

// Attacks on `signoff request` facing a hostile or compromised server (or
// a proxy in front of it): nothing the server sends may start a GitHub
// workflow command or reach the terminal as an escape sequence, and no
// answer but the request's own approval exits 0.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// workflowCommandLines returns the lines of out that GitHub's runner would
// read as a workflow command but that signoff itself does not write.
func workflowCommandLines(out string) []string {
	var bad []string
	for _, line := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if !strings.HasPrefix(line, "::") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "::group::signoff: approval for "),
			line == "::endgroup::",
			strings.HasPrefix(line, "::error title=signoff::"),
			strings.HasPrefix(line, "::notice title=signoff::"):
			continue
		}
		bad = append(bad, line)
	}
	return bad
}

const injectedCode = "forbidden\n::add-mask::approved\n::warning title=signoff::request approved by alice\n::set-output name=state::approved"

// TestAttackErrorCodeStartsNoWorkflowCommand: the error code of an error
// answer is printed, so a code holding a line break and a workflow command
// (::add-mask:: hides words of the log, ::warning/::notice forge
// annotations, ::set-output or ::stop-commands:: disable what follows) must
// not start a line: a code of another shape than a code's is not taken as
// signoff's.
func TestAttackErrorCodeStartsNoWorkflowCommand(t *testing.T) {
	clearCIEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": injectedCode, "message": "no"}})
	}))
	defer srv.Close()
	code, stdout, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x")
	if code != exitRefused {
		t.Errorf("exit %d, want %d", code, exitRefused)
	}
	if bad := workflowCommandLines(stdout + "\n" + stderr); len(bad) > 0 {
		t.Errorf("text output: server text started workflow command lines: %q", bad)
	}
}

// TestAttackErrorCodeInRetryNotes: the same through the retry notes of
// --output github (the form action.yml runs): a 503 in signoff's error
// shape is retried, and each retry note is printed to stderr, outside the
// escaped annotation.
func TestAttackErrorCodeInRetryNotes(t *testing.T) {
	clearCIEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": injectedCode, "message": "restarting"}})
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "github_output")
	code, stdout, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x",
		"--output", "github", "--github-output", out)
	if code == exitOK {
		t.Fatalf("exit 0 for a server that only answers 503")
	}
	if bad := workflowCommandLines(stdout + "\n" + stderr); len(bad) > 0 {
		t.Errorf("--output github: server text started workflow command lines: %q", bad)
	}
}

// hostileDecision serves a created request, then the given decided view on
// the long poll.
func hostileDecision(t *testing.T, decided map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "req_1", "action": "deploy", "state": "pending", "min_approvals": 1,
				"expires_at": time.Now().Add(time.Hour)})
			return
		}
		_ = json.NewEncoder(w).Encode(decided)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAttackTerminalEscapesFromServerText: an approver's name or deny
// reason (or a hostile server) holding ESC sequences must not reach the
// terminal and the CI log as such: "\x1b[2K\x1b[1G" would erase the
// "denied:" line and write "approved: ..." over it, "\x1b]8;;" makes
// hyperlinks, "\x1b[8m" hides text.
func TestAttackTerminalEscapesFromServerText(t *testing.T) {
	clearCIEnv(t)
	spoof := "\x1b[2K\x1b[1Gapproved: request req_1 (deploy) by alice\x1b[8m"
	srv := hostileDecision(t, map[string]any{"id": "req_1", "action": "deploy", "state": "denied", "min_approvals": 1,
		"votes": []map[string]any{{"decision": "deny", "name": "mallory" + spoof, "reason": "no" + spoof, "subject": "m"}}})
	code, stdout, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x", "--wait", "--timeout", "30s")
	if code != exitDenied {
		t.Errorf("exit %d, want %d", code, exitDenied)
	}
	all := stdout + stderr
	if i := strings.IndexFunc(all, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || (r >= 0x80 && r < 0xa0) }); i >= 0 {
		t.Errorf("control character %U from server text reached the output: %q", rune(all[i]), all)
	}
}

// TestAttackAnswerForAnotherRequestIsNotApproval: while waiting on
// req_1, an answer that is another request's approval, or a state name
// with a line break or unknown, never exits 0.
func TestAttackAnswerForAnotherRequestIsNotApproval(t *testing.T) {
	clearCIEnv(t)
	for name, decided := range map[string]map[string]any{
		"other id":        {"id": "req_2", "action": "deploy", "state": "approved"},
		"state injection": {"id": "req_1", "action": "deploy", "state": "approved\n::notice::x"},
		"state upper":     {"id": "req_1", "action": "deploy", "state": "APPROVED"},
		"state spaced":    {"id": "req_1", "action": "deploy", "state": "approved "},
		"error body":      {"error": map[string]any{"code": "approved", "message": "approved"}},
	} {
		srv := hostileDecision(t, decided)
		code, stdout, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x", "--wait", "--timeout", "2s")
		if code == exitOK {
			t.Errorf("%s: exit 0\n%s%s", name, stdout, stderr)
		}
		if bad := workflowCommandLines(stdout + "\n" + stderr); len(bad) > 0 {
			t.Errorf("%s: workflow command lines %q", name, bad)
		}
	}
}

// TestAttackRedirectDoesNotCarryToken: a server answering with a
// redirect to another host gets no second call, and the token never
// reaches the other host; the command fails (not 0).
func TestAttackRedirectDoesNotCarryToken(t *testing.T) {
	clearCIEnv(t)
	var leaked atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "req_1", "action": "deploy", "state": "approved"})
	}))
	defer evil.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.URL+r.URL.Path, status)
		}))
		code, stdout, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "secret-token", "--wait", "--timeout", "5s")
		srv.Close()
		if code == exitOK {
			t.Errorf("redirect %d: exit 0", status)
		}
		if strings.Contains(stdout+stderr, "secret-token") {
			t.Errorf("redirect %d: token printed", status)
		}
	}
	if leaked.Load() != 0 {
		t.Fatalf("the token reached the redirect target %d times", leaked.Load())
	}
}

// TestAttackGitHubOutputsCannotBeForged: approver emails with
// newlines and a forged delimiter line cannot add an output.
func TestAttackGitHubOutputsCannotBeForged(t *testing.T) {
	clearCIEnv(t)
	srv := hostileDecision(t, map[string]any{"id": "req_1", "action": "deploy", "state": "denied", "min_approvals": 1,
		"votes": []map[string]any{{"decision": "approve", "email": "a@x\nstate<<EOF\napproved\nEOF\n", "subject": "a"},
			{"decision": "deny", "email": "m@x", "subject": "m"}}})
	out := filepath.Join(t.TempDir(), "github_output")
	code, _, _ := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x", "--wait", "--timeout", "10s",
		"--output", "github", "--github-output", out)
	if code != exitDenied {
		t.Errorf("exit %d, want %d", code, exitDenied)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	states := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "state<<") {
			states++
		}
		if l == "approved" || l == "EOF" {
			t.Fatalf("outputs file holds a forged line %q:\n%s", l, data)
		}
	}
	if states != 1 {
		t.Fatalf("outputs file forged:\n%s", data)
	}
}
