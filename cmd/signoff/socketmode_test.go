package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/bot/slackbot"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
)

type noLinks struct{}

func (noLinks) Resolve(context.Context, linkflow.PlatformUser) (oidc.Identity, error) {
	return oidc.Identity{}, errors.New("not linked")
}
func (noLinks) Begin(context.Context, linkflow.PlatformUser) (string, error) { return "", nil }
func (noLinks) BeginStepUp(context.Context, linkflow.PlatformUser, string, string) (string, error) {
	return "", nil
}

// With Socket Mode on, a refused app token shows on /readyz (past the
// grace period) and in /metrics, as serve wires them.
func TestSlackSocketModeOnReadyzAndMetrics(t *testing.T) {
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
	}))
	t.Cleanup(slack.Close)
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store := testenv.OpenStore(t)
	svc := approvals.New(store, &policy.Policy{}, approvals.Options{Clock: clk, Logger: testenv.DiscardLogger(), Platforms: []string{"slack"}})
	sb, err := slackbot.New(slackbot.Options{
		Service: svc, Resolver: noLinks{}, BotToken: "xoxb-test", AppToken: "xapp-1-revoked", TeamID: "T0TEAM",
		APIURL: slack.URL + "/", Clock: clk, Logger: testenv.DiscardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	front := bot.New(bot.Options{Service: svc, Store: store, Logger: testenv.DiscardLogger()})
	watchSlackSocketMode(front, sb)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		front.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.RunSocketMode(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFailures := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for sb.SocketModeStatus().Failures < n || clk.Waiters() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no %d failed attempts: %+v", n, sb.SocketModeStatus())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitFailures(1)
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("within the grace period: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{"signoff_slack_socket_connected 0\n", "signoff_slack_socket_connection_failures_total 1\n", "# TYPE signoff_slack_socket_connection_failures_total counter\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}

	clk.Advance(slackbot.DefaultSocketModeGrace + time.Second)
	waitFailures(2)
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "slack_socket_mode") || !strings.Contains(body, "slack.app_token") {
		t.Errorf("past the grace period with a refused token: %d %s", code, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "signoff_slack_socket_connection_failures_total 2\n") {
		t.Errorf("/metrics:\n%s", metrics)
	}
}
