package executor

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/internal/text"
)

// backoff returns the delay after the given failed attempt (1-based): a
// random duration between half and all of min(base·2^(attempt-1), ceiling)
// ("equal jitter"), so that many receivers failing at once do not come back
// in lockstep, yet no retry comes sooner than half the nominal delay.
func backoff(attempt int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). It reports false for an absent or unreadable value; a
// date in the past is a zero delay. Huge values saturate (the caller caps).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxDuration/time.Second) {
			return maxDuration, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

const maxDuration = time.Duration(1<<63 - 1)

// sanitize makes text from a receiver (or an error that may quote one) safe
// to record: the secret, if it appears, is replaced; invalid UTF-8 and
// control characters (newlines, escapes) become spaces; runs of spaces
// collapse; and the result is cut to at most limit bytes on a character
// boundary, marked with text.Ellipsis.
func sanitize(s, secret string, limit int) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
		s = cutSecretPrefix(s, secret)
	}
	s = strings.ToValidUTF8(s, " ")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError ||
			unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if secret != "" {
		// Normalising may have rebuilt the secret (one with spaces in it).
		out = strings.ReplaceAll(out, secret, "[redacted]")
	}
	return text.Truncate(out, limit)
}

// cutSecretPrefix removes the end of s where it is the start of secret
// (four characters or more): text read up to a limit (a receiver's answer)
// may end inside the secret, where no whole occurrence is left to replace.
func cutSecretPrefix(s, secret string) string {
	for n := min(len(secret)-1, len(s)); n >= 4; n-- {
		if strings.HasSuffix(s, secret[:n]) {
			return s[:len(s)-n] + "[redacted]"
		}
	}
	return s
}
