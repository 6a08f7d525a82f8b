package bot

// The limits of the CI API (config section limits; README.md "Limits"):
//
//   - limits.requests_per_minute, per requester identity (the token's
//     issuer name and subject): POST /v1/requests beyond it is answered
//     429 rate_limited with Retry-After, the seconds until the next one is
//     allowed. An idempotent retry of a request already created (same
//     Idempotency-Key, same body) is still answered 200 with that request
//     when the limit is reached: it creates nothing, and a client riding
//     out a failure must be able to learn what became of its first try.
//     A retry that gets through while under the limit counts like any
//     call.
//   - limits.pending_per_requester, enforced by approvals in the
//     transaction that creates (approvals.ErrTooManyPending), so
//     concurrent creates cannot together exceed it: 429 rate_limited with
//     Retry-After: 60. A slot frees when one of the requester's pending
//     requests is decided, cancelled or expires, which nobody can
//     foresee; 60 seconds is a poll interval, and the message says what
//     to do.
//
//   - at most MaxLongPollsPerRequester long polls (GET with ?wait=) of
//     one requester identity at a time: each holds a connection, a
//     goroutine and a store read every ReplicaPoll. The next is answered
//     429 rate_limited with Retry-After: 5 (signoff request waits and
//     polls again). It is no config key: a requester has at most
//     limits.pending_per_requester requests to wait for, and a wait on a
//     decided one answers at once.
//
// The chat adapters enforce limits.clicks_per_minute (package
// bot/chatlimit). Refusals by each limit are counted in /metrics as
// signoff_rate_limited_total{limit}.

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/internal/ratelimit"
	"github.com/signoff-dev/signoff/oidc"
)

// The limit label values of signoff_rate_limited_total: the names of the
// limits' config keys.
const (
	LimitRequestsPerMinute   = "requests_per_minute"
	LimitPendingPerRequester = "pending_per_requester"
	LimitClicksPerMinute     = "clicks_per_minute"
	LimitLongPolls           = "long_polls_per_requester"
)

// MaxLongPollsPerRequester is how many long polls one requester identity
// may hold open at a time.
const MaxLongPollsPerRequester = 50

// longPollRetryAfter is the Retry-After of a long poll over the cap.
const longPollRetryAfter = 5 * time.Second

// pendingRetryAfter is the Retry-After of a refusal by the pending cap.
const pendingRetryAfter = time.Minute

// limitCounters counts the API calls each limit refused.
type limitCounters struct {
	requests, pending, longPolls atomic.Uint64
}

// longPolls counts the long polls each requester identity holds open.
type longPolls struct {
	mu   sync.Mutex
	open map[string]int
}

// enter takes a long poll for key and reports whether it is within the
// cap; the caller that got true calls leave when the poll ends.
func (l *longPolls) enter(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[string]int{}
	}
	if l.open[key] >= MaxLongPollsPerRequester {
		return false
	}
	l.open[key]++
	return true
}

func (l *longPolls) leave(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// requesterKey names a requester identity in the requests limiter.
func requesterKey(tok *oidc.RequesterToken) string {
	return tok.IssuerName + "\x00" + tok.Subject
}

// requestsLimitMessage says why a create was refused and when to retry.
func (s *Server) requestsLimitMessage(tok *oidc.RequesterToken, retryAfter time.Duration) string {
	return fmt.Sprintf("this requester (issuer %s, subject %s) asked for more than %d requests in the last minute (limits.requests_per_minute); retry in %d seconds (Retry-After)",
		tok.IssuerName, truncate(tok.Subject, 200), s.requests.PerMinute(), ratelimit.Seconds(retryAfter))
}

// rateLimited answers 429 rate_limited with Retry-After and counts the
// refusal under limit. The access log line carries the code.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, limit string, retryAfter time.Duration, msg string) {
	switch limit {
	case LimitRequestsPerMinute:
		s.limited.requests.Add(1)
	case LimitPendingPerRequester:
		s.limited.pending.Add(1)
	case LimitLongPolls:
		s.limited.longPolls.Add(1)
	}
	w.Header().Set("Retry-After", strconv.Itoa(ratelimit.Seconds(retryAfter)))
	fail(w, r, http.StatusTooManyRequests, api.CodeRateLimited, msg)
}

// rateLimitedCounts returns the refusals by each limit, by label value.
func (s *Server) rateLimitedCounts() map[string]uint64 {
	return map[string]uint64{
		LimitRequestsPerMinute:   s.limited.requests.Load(),
		LimitPendingPerRequester: s.limited.pending.Load(),
		LimitClicksPerMinute:     s.opts.Clicks.Refused(),
		LimitLongPolls:           s.limited.longPolls.Load(),
	}
}
