package slackbot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Socket Mode connection upkeep.
const (
	// DefaultSocketModeGrace is how long SocketModeReady keeps reporting
	// ready while no Socket Mode websocket is up, after RunSocketMode
	// starts and after a connection drops: long enough for a first
	// connection and an ordinary reconnect, short enough that a refused
	// app token shows on /readyz within a minute.
	DefaultSocketModeGrace = 30 * time.Second
	// socketBackoffMin and socketBackoffMax bound the wait between two
	// attempts to open a connection (apps.connections.open, then the
	// websocket): it doubles from the first to the cap, and starts over
	// once a connection was up.
	socketBackoffMin = time.Second
	socketBackoffMax = 2 * time.Minute
	// socketRetryAfterMax caps a wait Slack asks for with a 429.
	socketRetryAfterMax = 10 * time.Minute
)

// socketAuthErrors are the apps.connections.open error codes that mean the
// app-level token is wrong, revoked or not allowed: slack-go gives up on
// them at once (RunContext returns), signoff keeps retrying and says which
// key to fix.
var socketAuthErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true,
	"token_revoked": true, "token_expired": true, "not_allowed_token_type": true,
}

// SocketModeStatus is the state of the Socket Mode connection, for
// readiness checks and metrics.
type SocketModeStatus struct {
	// Running reports whether RunSocketMode is running.
	Running bool
	// Connected reports whether a Socket Mode websocket is up.
	Connected bool
	// Since is when Connected last changed: when the websocket came up,
	// or when RunSocketMode started or the connection dropped (and none
	// has been up since). Zero before RunSocketMode started.
	Since time.Time
	// Failures counts the connection attempts that failed since the bot
	// was created (apps.connections.open refused or failing, the
	// websocket not opening).
	Failures uint64
	// LastError is the last failure ("" when none), and AuthError
	// reports whether it was Slack refusing the app-level token.
	LastError string
	AuthError bool
}

// socketState tracks the Socket Mode connection. Safe for concurrent use.
type socketState struct {
	mu sync.Mutex
	st SocketModeStatus
	// grace is DefaultSocketModeGrace unless a test shortens it.
	grace time.Duration
}

// start marks RunSocketMode running and not connected, as of now.
func (s *socketState) start(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Running, s.st.Connected, s.st.Since = true, false, now
}

// stop marks RunSocketMode ended.
func (s *socketState) stop(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Running, s.st.Connected, s.st.Since = false, false, now
}

// up marks a websocket up.
func (s *socketState) up(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Connected, s.st.Since = true, now
}

// down marks the websocket gone; it reports whether one was up.
func (s *socketState) down(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.st.Connected
	if was {
		s.st.Connected, s.st.Since = false, now
	}
	return was
}

// failed counts a failed connection attempt.
func (s *socketState) failed(err error, auth bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Failures++
	s.st.LastError, s.st.AuthError = fmt.Sprint(err), auth
}

func (s *socketState) status() SocketModeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// SocketModeStatus returns the state of the Socket Mode connection.
func (b *Bot) SocketModeStatus() SocketModeStatus { return b.socket.status() }

// SocketModeReady is a readiness check (GET /readyz) for a server that
// receives clicks and commands over Socket Mode: it fails while no
// websocket has been up for longer than DefaultSocketModeGrace, after
// RunSocketMode started or after the connection dropped, saying why and
// which key to fix. Before RunSocketMode starts it counts from the first
// call.
func (b *Bot) SocketModeReady(context.Context) error {
	now := b.clock.Now()
	b.socket.mu.Lock()
	if b.socket.st.Since.IsZero() {
		b.socket.st.Since = now
	}
	st, grace := b.socket.st, b.socket.grace
	b.socket.mu.Unlock()
	if grace <= 0 {
		grace = DefaultSocketModeGrace
	}
	down := now.Sub(st.Since)
	if st.Connected || down <= grace {
		return nil
	}
	why := "no connection attempt has failed yet"
	if st.LastError != "" {
		why = fmt.Sprintf("%d attempts failed so far, the last with %q", st.Failures, st.LastError)
	}
	fix := "check that Slack (slack.com and wss-primary.slack.com) is reachable from signoff"
	if st.AuthError {
		fix = "Slack refuses the app-level token: fix slack.app_token (an xapp-… token with the connections:write scope) and restart"
	}
	if !st.Running {
		fix = "the Socket Mode loop is not running"
	}
	return fmt.Errorf("slack socket mode has had no connection for %s (%s), so no click or slash command reaches signoff; %s", down.Round(time.Second), why, fix)
}

// socketBackoff is the wait after the failures-th failed attempt in a row
// (1 for the first): socketBackoffMin doubled each time up to
// socketBackoffMax, or longer when Slack asked for it (a 429's
// Retry-After, up to socketRetryAfterMax).
func socketBackoff(failures int, retryAfter time.Duration) time.Duration {
	d := socketBackoffMin
	for i := 1; i < failures && d < socketBackoffMax; i++ {
		d *= 2
	}
	d = min(d, socketBackoffMax)
	return max(d, min(retryAfter, socketRetryAfterMax))
}

// isSocketAuthError reports whether err is Slack refusing the app-level
// token when a Socket Mode connection is opened.
func isSocketAuthError(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && socketAuthErrors[se.Err] {
		return true
	}
	// An error that is only Slack's error code, of no type to look for,
	// is told by its text, as slack-go's own Socket Mode client tells it.
	if err != nil && socketAuthErrors[err.Error()] {
		return true
	}
	var sc slack.StatusCodeError
	return errors.As(err, &sc) && (sc.Code == http.StatusUnauthorized || sc.Code == http.StatusForbidden || sc.Code == http.StatusNotFound)
}

// retryAfterOf returns the wait a 429 asked for, or 0.
func retryAfterOf(err error) time.Duration {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	return 0
}
