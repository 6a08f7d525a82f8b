package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/loadrig"
)

// TestModesSummarize runs each mode briefly against signoff in process and
// checks the summary line: every key present with a number, every request
// answered as expected. Nothing here asserts a time.
func TestModesSummarize(t *testing.T) {
	for _, mode := range []string{modeCreate, modeSlackClick, modeTeamsInvoke} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			c := config{mode: mode, rig: true, rate: 20, duration: time.Second, approvers: loadrig.DefaultApprovers,
				dir: t.TempDir(), bareCommits: 50}
			if err := run(context.Background(), c, &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			got := map[string]string{}
			for _, field := range strings.Fields(lines[len(lines)-1]) {
				k, v, ok := strings.Cut(field, "=")
				if !ok {
					t.Fatalf("summary field %q is not key=value:\n%s", field, out.String())
				}
				got[k] = v
			}
			if got["mode"] != mode {
				t.Errorf("mode=%q, want %q", got["mode"], mode)
			}
			for _, k := range []string{"rate", "n", "p50_ms", "p95_ms", "p99_ms", "errors", "bare_commit_p99_ms", "ratio_p99"} {
				if _, err := strconv.ParseFloat(got[k], 64); err != nil {
					t.Errorf("%s=%q is not a number", k, got[k])
				}
			}
			if got["errors"] != "0" || got["n"] == "0" {
				t.Errorf("errors=%s n=%s, want no errors and some answers:\n%s", got["errors"], got["n"], out.String())
			}
		})
	}
}

// TestCheckRefuses: the click modes need a rate; a create against a server
// needs a loopback address and a token.
func TestCheckRefuses(t *testing.T) {
	ok := config{mode: modeSlackClick, rate: 1, duration: time.Second, approvers: 1, bareCommits: 1}
	if err := ok.check(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, c := range map[string]config{
		"click without rate": {mode: modeTeamsInvoke, duration: time.Second, approvers: 1, bareCommits: 1},
		"unknown mode":       {mode: "deny-click", rate: 1, duration: time.Second, approvers: 1, bareCommits: 1},
		"remote server":      {mode: modeCreate, server: "http://192.0.2.1:8080", token: "t", clients: 1, requests: 1, duration: time.Second, bareCommits: 1},
		"no token":           {mode: modeCreate, server: "http://127.0.0.1:8080", clients: 1, requests: 1, duration: time.Second, bareCommits: 1},
	} {
		if err := c.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestProfilesWritten: --cpuprofile, --trace, --blockprofile and
// --mutexprofile each leave a non-empty file covering the load.
func TestProfilesWritten(t *testing.T) {
	dir := t.TempDir()
	c := config{mode: modeTeamsInvoke, rate: 20, duration: time.Second, approvers: 2, dir: t.TempDir(), bareCommits: 10,
		cpuProfile: filepath.Join(dir, "cpu.pprof"), traceFile: filepath.Join(dir, "trace.out"),
		blockProfile: filepath.Join(dir, "block.pprof"), mutexProfile: filepath.Join(dir, "mutex.pprof")}
	var out bytes.Buffer
	if err := run(context.Background(), c, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, f := range []string{c.cpuProfile, c.traceFile, c.blockProfile, c.mutexProfile} {
		st, err := os.Stat(f)
		if err != nil {
			t.Errorf("profile not written: %v", err)
			continue
		}
		if st.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

// TestProfileFileUnwritable: a profile that cannot be created fails the
// run before any load is sent.
func TestProfileFileUnwritable(t *testing.T) {
	c := config{mode: modeTeamsInvoke, rate: 20, duration: time.Second, approvers: 1, dir: t.TempDir(), bareCommits: 10,
		cpuProfile: filepath.Join(t.TempDir(), "missing", "cpu.pprof")}
	var out bytes.Buffer
	if err := run(context.Background(), c, &out); err == nil {
		t.Fatalf("run succeeded with an unwritable --cpuprofile:\n%s", out.String())
	}
	if strings.Contains(out.String(), "requests:") {
		t.Errorf("load was sent although the profile could not be created:\n%s", out.String())
	}
}

// A load run whose every create is refused by the server's per-requester
// limits says so, naming the keys to raise, rather than blaming the token.
func TestAllRateLimitedNamesTheLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"rate_limited","message":"too many"}}`))
	}))
	defer srv.Close()
	c := config{mode: modeCreate, server: srv.URL, token: "t", action: "deploy-prod", params: `{"service":"api"}`,
		clients: 2, requests: 4, duration: 10 * time.Second, dir: t.TempDir(), bareCommits: 5}
	var out bytes.Buffer
	err := run(context.Background(), c, &out)
	if err == nil || !strings.Contains(err.Error(), "limits.requests_per_minute") || !strings.Contains(err.Error(), "limits.pending_per_requester") {
		t.Fatalf("every create answered 429: %v\n%s", err, out.String())
	}
}
