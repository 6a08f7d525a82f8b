package slackbot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/bot/chatflow"
)

// Slack's signature headers.
const (
	headerSignature = "X-Slack-Signature"
	headerTimestamp = "X-Slack-Request-Timestamp"
)

// Reasons a callback is refused, as written to callback.rejected records,
// besides chatflow's (RejectBadSignature, RejectBodyTooLarge,
// RejectUnreadableBody) and the workspace checks' (tenantProblem,
// rejectForeignUser).
const (
	rejectMissingHeaders chatflow.RejectReason = "missing_headers"
	rejectBadTimestamp   chatflow.RejectReason = "bad_timestamp"
	rejectStaleTimestamp chatflow.RejectReason = "stale_timestamp"
	rejectNoSecret       chatflow.RejectReason = "no_signing_secret"
)

// signatureError is a callback that failed verification; Reason is the
// stable code for the audit record.
type signatureError struct {
	Reason chatflow.RejectReason
	Detail string
}

func (e *signatureError) Error() string { return "slack signature: " + e.Detail }

// verifySignature checks Slack's v0 request signature: X-Slack-Signature
// must be "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body))
// over the raw body, and X-Slack-Request-Timestamp within SignatureWindow
// of now. The comparison is constant-time. Any problem is a
// *signatureError.
//
// This is the check slack.NewSecretsVerifier makes (the tests prove the
// two agree), except that the timestamp is compared with the bot's clock
// rather than the wall clock, so the window follows the injected clock.
func verifySignature(h http.Header, body []byte, secret string, now time.Time) error {
	if secret == "" {
		return &signatureError{rejectNoSecret, "no signing secret is configured, so no HTTP callback can be verified"}
	}
	sig, ts := h.Get(headerSignature), h.Get(headerTimestamp)
	if sig == "" || ts == "" {
		return &signatureError{rejectMissingHeaders, "the X-Slack-Signature or X-Slack-Request-Timestamp header is missing"}
	}
	if len(ts) > 12 || strings.TrimLeft(ts, "0123456789") != "" {
		return &signatureError{rejectBadTimestamp, "X-Slack-Request-Timestamp is not a Unix time"}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return &signatureError{rejectBadTimestamp, "X-Slack-Request-Timestamp is not a Unix time"}
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return &signatureError{chatflow.RejectBadSignature, "X-Slack-Signature is not a v0 signature"}
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return &signatureError{chatflow.RejectBadSignature, "X-Slack-Signature is malformed"}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(mac, "v0:"+ts+":")
	_, _ = mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return &signatureError{chatflow.RejectBadSignature, "the signature does not match the body and signing secret"}
	}
	if d := now.Sub(time.Unix(sec, 0)).Abs(); d > SignatureWindow {
		return &signatureError{rejectStaleTimestamp, fmt.Sprintf("the timestamp is %s away from now (at most %s allowed)", d.Round(time.Second), SignatureWindow)}
	}
	return nil
}

// readBody reads at most limit bytes of r's body. A longer body is a
// *signatureError with reason body_too_large: it cannot be verified.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &signatureError{chatflow.RejectBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit)}
		}
		return nil, &signatureError{chatflow.RejectUnreadableBody, "the body could not be read"}
	}
	return body, nil
}

// replayCache remembers the signatures of verified callbacks for as long
// as their timestamp is acceptable, so that a replay of the same signed
// callback is acknowledged but not acted on twice. (approvals counts a
// vote once per approver anyway; this also spares the identity check and
// the reply.)
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // signature → when it may be forgotten
}

// maxReplayEntries bounds the cache; verified callbacks only come from
// Slack, so it is never reached in practice.
const maxReplayEntries = 100_000

func newReplayCache() *replayCache { return &replayCache{seen: map[string]time.Time{}} }

// replayed reports whether sig was seen before and, if not, remembers it.
func (c *replayCache) replayed(sig string, now time.Time) bool {
	sig = strings.ToLower(sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.seen[sig]; ok && now.Before(until) {
		return true
	}
	if len(c.seen) >= maxReplayEntries/2 {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= maxReplayEntries {
			clear(c.seen)
		}
	}
	// A timestamp is accepted up to SignatureWindow either side of now.
	c.seen[sig] = now.Add(2*SignatureWindow + time.Minute)
	return false
}
