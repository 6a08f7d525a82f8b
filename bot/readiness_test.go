package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// A readiness check added by a component decides /readyz with the store:
// 503 not_ready naming the check while it fails, 200 once it passes.
func TestReadinessChecks(t *testing.T) {
	front := bot.New(bot.Options{Store: testenv.OpenStore(t), Logger: slog.New(slog.DiscardHandler)})
	if rec := get(t, front, "/readyz"); rec.Code != http.StatusOK {
		t.Fatalf("no checks: %d %s", rec.Code, rec.Body)
	}
	var down atomic.Bool
	down.Store(true)
	front.AddReadinessCheck("socket", func(context.Context) error {
		if down.Load() {
			return errors.New("no connection for 45s; fix slack.app_token")
		}
		return nil
	})
	front.AddReadinessCheck("always", func(context.Context) error { return nil })
	rec := get(t, front, "/readyz")
	var body api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || body.Error.Code != "not_ready" ||
		!strings.Contains(body.Error.Message, "socket: no connection for 45s; fix slack.app_token") || strings.Contains(body.Error.Message, "always") {
		t.Errorf("failing check: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, front, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("/healthz follows readiness: %d", rec.Code)
	}
	down.Store(false)
	if rec := get(t, front, "/readyz"); rec.Code != http.StatusOK {
		t.Errorf("passing checks: %d %s", rec.Code, rec.Body)
	}
}

// Metric families added by a component appear in /metrics, in the
// exposition format, at every scrape.
func TestAddedMetrics(t *testing.T) {
	front := bot.New(bot.Options{Store: testenv.OpenStore(t), Logger: slog.New(slog.DiscardHandler)})
	var connected atomic.Int64
	front.AddMetrics(func() []bot.Metric {
		return []bot.Metric{
			{Name: "signoff_test_connected", Type: "gauge", Help: "Up.", Samples: []bot.MetricSample{{Value: float64(connected.Load())}}},
			{Name: "signoff_test_failures_total", Type: "counter", Help: "Failures.", Samples: []bot.MetricSample{{Labels: []string{"kind", `a"b`}, Value: 3}}},
			{Name: "signoff_test_empty", Type: "gauge", Help: "No samples: left out."},
			{Name: "other_prefix", Type: "gauge", Help: "Not signoff's: left out.", Samples: []bot.MetricSample{{Value: 1}}},
		}
	})
	scrape := func() string {
		rec := get(t, front, "/metrics")
		checkExposition(t, rec.Body.String())
		return rec.Body.String()
	}
	text := scrape()
	for _, want := range []string{
		"# TYPE signoff_test_connected gauge\n", "signoff_test_connected 0\n",
		"# TYPE signoff_test_failures_total counter\n", `signoff_test_failures_total{kind="a\"b"} 3` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	if strings.Contains(text, "signoff_test_empty") || strings.Contains(text, "other_prefix") {
		t.Errorf("families left out appear:\n%s", text)
	}
	connected.Store(1)
	if text := scrape(); !strings.Contains(text, "signoff_test_connected 1\n") {
		t.Errorf("not collected at scrape time:\n%s", text)
	}
}

// The probe is unauthenticated: when the store is down it answers 503
// not_ready without the store's error, which names the database host and
// role; the log keeps the error for the operator.
func TestReadyzHidesTheStoresError(t *testing.T) {
	var logs strings.Builder
	st := &pingFails{Store: testenv.OpenStore(t), err: errors.New(`failed to connect to user=signoff database=signoff: 10.0.3.7:5432 (db.internal.example): password authentication failed`)}
	front := bot.New(bot.Options{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec := get(t, front, "/readyz")
	var body api.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusServiceUnavailable || body.Error.Code != "not_ready" || !strings.Contains(body.Error.Message, "store is not available") {
		t.Fatalf("/readyz with the store down: %d %s", rec.Code, rec.Body)
	}
	for _, secret := range []string{"db.internal.example", "10.0.3.7", "user=signoff", "password"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("/readyz shows %q to anyone: %s", secret, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "db.internal.example") {
		t.Errorf("the log lost the store's error: %s", logs.String())
	}
}

// pingFails is a store whose ping fails with err, the way an unreachable
// PostgreSQL does (naming the host and the role).
type pingFails struct {
	storage.Store
	err error
}

func (p *pingFails) Ping(context.Context) error { return p.err }
