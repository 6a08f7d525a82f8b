package slackbot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// socketSlack stands in for Slack's side of Socket Mode: the Web API
// method apps.connections.open, in its wire format (`{"ok":true,"url":…}`,
// `{"ok":false,"error":"invalid_auth"}`, or an HTTP error), and the
// websocket it points to, which says hello and stays open until the test
// drops it.
type socketSlack struct {
	srv *httptest.Server

	mu sync.Mutex
	// answers are the next answers of apps.connections.open; "ok" when
	// none is left.
	answers []func(w http.ResponseWriter)
	opens   []string // the Authorization header of each call
	conns   []*websocket.Conn
}

func newSocketSlack(t *testing.T) *socketSlack {
	s := &socketSlack{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.opens = append(s.opens, r.Header.Get("Authorization"))
		var answer func(http.ResponseWriter)
		if len(s.answers) > 0 {
			answer, s.answers = s.answers[0], s.answers[1:]
		}
		s.mu.Unlock()
		if answer != nil {
			answer(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=t-1"})
	})
	// Slack's client sends Origin https://api.slack.com.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("GET /link/", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		_ = c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A0SIGNOFF"}})
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.dropAll()
		s.srv.Close()
	})
	return s
}

// script queues answers of apps.connections.open.
func (s *socketSlack) script(answers ...func(http.ResponseWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = append(s.answers, answers...)
}

func (s *socketSlack) openCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.opens...)
}

// dropAll closes every websocket, as a network failure would.
func (s *socketSlack) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

func readyz(t *testing.T, front *bot.Server) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// apps.connections.open answering invalid_auth, then HTTP 500, then ok:
// each failure is logged (the auth one naming slack.app_token) and
// retried on the bot's clock with a growing wait; /readyz stays ready
// within the grace period, is not ready past it while no websocket is up,
// and is ready again once connected; the status (what /metrics shows)
// follows. A dropped connection is noticed and reopened.
func TestSocketModeRetriesRefusedAndFailingConnections(t *testing.T) {
	e := newEnv(t)
	sm := newSocketSlack(t)
	logs := &testenv.LogBuffer{}
	b, err := New(Options{
		Service: e.svc, Resolver: e.links, BotToken: "xoxb-test", AppToken: "xapp-1-test", TeamID: testTeam,
		APIURL: sm.srv.URL + "/", Clock: e.clock, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	b.socket.grace = 1500 * time.Millisecond
	front := bot.New(bot.Options{Store: testenv.OpenStore(t), Logger: testenv.DiscardLogger()})
	front.AddReadinessCheck("slack_socket_mode", b.SocketModeReady)

	sm.script(
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		},
		func(w http.ResponseWriter) { http.Error(w, "upstream failure", http.StatusInternalServerError) },
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.RunSocketMode(ctx) }()
	// waiting reports whether RunSocketMode waits on the clock after n
	// failed attempts.
	waiting := func(n uint64) func() bool {
		return func() bool { return b.SocketModeStatus().Failures == n && e.clock.Waiters() == 1 }
	}

	// invalid_auth: slack-go would stop here for good.
	testenv.Eventually(t, "the invalid_auth failure", waiting(1))
	st := b.SocketModeStatus()
	if st.Connected || !st.Running || !st.AuthError || st.LastError != "invalid_auth" {
		t.Errorf("after invalid_auth: %+v", st)
	}
	if !strings.Contains(logs.String(), "slack.app_token") || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the auth failure does not name slack.app_token:\n%s", logs)
	}
	if code, body := readyz(t, front); code != http.StatusOK {
		t.Errorf("within the grace period: %d %s", code, body)
	}

	// One second later (the first wait): 500, logged, retried after 2s.
	e.clock.Advance(time.Second)
	testenv.Eventually(t, "the HTTP 500 failure", waiting(2))
	if st := b.SocketModeStatus(); st.Connected || st.AuthError || !strings.Contains(st.LastError, "500") {
		t.Errorf("after 500: %+v", st)
	}
	// Past the grace period, still no websocket: not ready, and why.
	e.clock.Advance(time.Second)
	code, body := readyz(t, front)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "slack_socket_mode") || !strings.Contains(body, "no connection for 2s") {
		t.Errorf("past the grace period: %d %s", code, body)
	}
	if n := len(sm.openCalls()); n != 2 {
		t.Errorf("%d apps.connections.open calls before the wait ran out, want 2", n)
	}

	// The second wait (2s) runs out: the third attempt connects.
	e.clock.Advance(time.Second)
	testenv.Eventually(t, "a connection", func() bool { return b.SocketModeStatus().Connected })
	if code, body := readyz(t, front); code != http.StatusOK {
		t.Errorf("connected: %d %s", code, body)
	}
	if st := b.SocketModeStatus(); st.Failures != 2 {
		t.Errorf("failures %d, want 2", st.Failures)
	}
	for i, auth := range sm.openCalls() {
		if auth != "Bearer xapp-1-test" {
			t.Errorf("apps.connections.open call %d with Authorization %q, want the app-level token", i, auth)
		}
	}

	// The connection drops and apps.connections.open fails once: noticed,
	// counted, retried after the first wait again (a connection was up).
	sm.script(func(w http.ResponseWriter) { http.Error(w, "unavailable", http.StatusServiceUnavailable) })
	sm.dropAll()
	testenv.Eventually(t, "the drop and the failed reconnect", waiting(3))
	if st := b.SocketModeStatus(); st.Connected {
		t.Errorf("after the drop: %+v", st)
	}
	if code, _ := readyz(t, front); code != http.StatusOK {
		t.Errorf("a drop within the grace period made /readyz fail: %d", code)
	}
	e.clock.Advance(time.Second)
	testenv.Eventually(t, "the reconnection", func() bool { return b.SocketModeStatus().Connected })
	if !strings.Contains(logs.String(), "connection lost") {
		t.Errorf("the drop was not logged:\n%s", logs)
	}

	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("RunSocketMode: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunSocketMode did not stop")
	}
	if st := b.SocketModeStatus(); st.Running || st.Connected {
		t.Errorf("after stop: %+v", st)
	}
}

func TestSocketBackoff(t *testing.T) {
	var got []string
	for n := 1; n <= 10; n++ {
		got = append(got, socketBackoff(n, 0).String())
	}
	if want := "1s 2s 4s 8s 16s 32s 1m4s 2m0s 2m0s 2m0s"; strings.Join(got, " ") != want {
		t.Errorf("backoff %s, want %s", strings.Join(got, " "), want)
	}
	if d := socketBackoff(1, 30*time.Second); d != 30*time.Second {
		t.Errorf("a 429's Retry-After: %s", d)
	}
	if d := socketBackoff(1, time.Hour); d != socketRetryAfterMax {
		t.Errorf("a long Retry-After is capped: %s", d)
	}
	for _, c := range []struct {
		err  error
		auth bool
	}{
		{fmt.Errorf("open: %w", slack.SlackErrorResponse{Err: "invalid_auth"}), true},
		{slack.StatusCodeError{Code: http.StatusNotFound, Status: "404 Not Found"}, true},
		{errString("token_revoked"), true},
		{errString("slack server error: 500 Internal Server Error"), false},
	} {
		if got := isSocketAuthError(c.err); got != c.auth {
			t.Errorf("isSocketAuthError(%v) = %v", c.err, got)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
