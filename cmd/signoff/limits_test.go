package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/config"
)

// startLimitedServer runs serve (dev mode) with the request test config
// and the given limits.
func startLimitedServer(t *testing.T, limits config.LimitsConfig) *testServer {
	t.Helper()
	cfgPath := writeConfig(t, requestTestConfig)
	return startServeConfig(t, cfgPath, true, func(cfg *config.Config) {
		cfg.Listen = "127.0.0.1:0"
		cfg.Limits = limits
	})
}

// TestRequestOverTheLimitsExit1: the limits from the config are enforced
// by serve, and `signoff request` reports a refusal by one with exit 1
// and the server's message: at once without --wait, and with --wait when
// --timeout ends before the retry the server asks for.
func TestRequestOverTheLimitsExit1(t *testing.T) {
	clearCIEnv(t)

	t.Run("pending_per_requester", func(t *testing.T) {
		ts := startLimitedServer(t, config.LimitsConfig{RequestsPerMinute: 100, PendingPerRequester: 1, ClicksPerMinute: 30})
		tok := devToken(t, ts)
		if code, _, stderr := runCmd(t, requestArgs(ts, tok)...); code != 0 {
			t.Fatalf("first request: exit %d: %s", code, stderr)
		}
		code, _, stderr := runCmd(t, requestArgs(ts, tok)...)
		if code != exitFailure || !strings.Contains(stderr, "429 rate_limited") || !strings.Contains(stderr, "has 1 request pending") ||
			!strings.Contains(stderr, "not retried without --wait") {
			t.Fatalf("second request: exit %d: %s", code, stderr)
		}
		// --wait waits a minute at a time: a shorter --timeout gives up at once.
		start := time.Now()
		code, _, stderr = runCmd(t, requestArgs(ts, tok, "--wait", "--timeout", "20s")...)
		if code != exitFailure || !strings.Contains(stderr, "--timeout runs out before the retry it asks for (in 1m0s)") {
			t.Fatalf("--wait with a short timeout: exit %d: %s", code, stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("gave up only after %s", d)
		}
	})

	t.Run("requests_per_minute", func(t *testing.T) {
		ts := startLimitedServer(t, config.LimitsConfig{RequestsPerMinute: 2, PendingPerRequester: 100, ClicksPerMinute: 30})
		tok := devToken(t, ts)
		for i := range 2 {
			if code, _, stderr := runCmd(t, requestArgs(ts, tok)...); code != 0 {
				t.Fatalf("request %d: exit %d: %s", i+1, code, stderr)
			}
		}
		code, _, stderr := runCmd(t, requestArgs(ts, tok)...)
		if code != exitFailure || !strings.Contains(stderr, "429 rate_limited") || !strings.Contains(stderr, "more than 2 requests in the last minute") ||
			!strings.Contains(stderr, "retry in") {
			t.Fatalf("third request: exit %d: %s", code, stderr)
		}
	})
}

// TestRequestWaitRetriesAfterRetryAfter: with --wait a 429 rate_limited is
// retried once the server's Retry-After has passed, in full (not cut to
// the backoff cap), with the same Idempotency-Key.
func TestRequestWaitRetriesAfterRetryAfter(t *testing.T) {
	clearCIEnv(t)
	type call struct {
		key string
		at  time.Time
	}
	var n atomic.Int32
	calls := make(chan call, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/requests" {
			http.NotFound(w, r)
			return
		}
		calls <- call{r.Header.Get("Idempotency-Key"), time.Now()}
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			bot.WriteError(w, http.StatusTooManyRequests, api.CodeRateLimited, "too many; retry in 2 seconds (Retry-After)")
			return
		}
		bot.WriteJSON(w, http.StatusCreated, api.Request{ID: "req_1", Action: "deploy", State: api.StateApproved})
	}))
	defer srv.Close()
	code, out, stderr := runCmd(t, "request", "--server", srv.URL, "--action", "deploy", "--token", "x.y.z", "--wait", "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "approved: request req_1") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "429 rate_limited: too many; retry in 2 seconds (Retry-After); retrying in 2s") {
		t.Errorf("no retry note: %s", stderr)
	}
	first, second := <-calls, <-calls
	if d := second.at.Sub(first.at); d < 2*time.Second {
		t.Errorf("retried after %s, before the 2s Retry-After", d)
	}
	if first.key == "" || first.key != second.key {
		t.Errorf("Idempotency-Key %q then %q; want the same", first.key, second.key)
	}
}

// TestServeWiresClickLimit: limits.clicks_per_minute reaches the chat
// votes serve mounts (here the dev console's), and their refusals show in
// /metrics.
func TestServeWiresClickLimit(t *testing.T) {
	yaml := strings.NewReplacer("%LISTEN%", "127.0.0.1:0", "%IDP%", "").Replace(devLinkConfig)
	cfgPath := writeConfig(t, yaml)
	ts := startServeConfig(t, cfgPath, true, func(cfg *config.Config) { cfg.Limits.ClicksPerMinute = 2 })
	b := newConsoleBrowser(t, ts.base)
	r := createRequest(t, ts.svc, "deploy")
	for i := range 2 {
		if body := b.chatVote(r.ID, "bob", "approve"); !strings.Contains(body, "link/start?id=") {
			t.Fatalf("vote %d: not answered with a sign-in link:\n%s", i+1, body)
		}
	}
	if body := b.chatVote(r.ID, "bob", "approve"); !strings.Contains(body, "more than 2 times in the last minute") || strings.Contains(body, "link/start?id=") {
		t.Fatalf("third vote in a minute:\n%s", body)
	}
	_, metrics := b.read(b.c.Get(ts.base + "/metrics"))
	if !strings.Contains(metrics, `signoff_rate_limited_total{limit="clicks_per_minute"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", metrics)
	}
}
