package executor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/internal/text"
)

// HeaderSignature is the header that carries a webhook delivery's
// signature, in the form "t=<unix seconds>,v1=<hex HMAC-SHA256>".
const HeaderSignature = "Signoff-Signature"

// HeaderIdempotencyKey carries the request id (for a checkpoint sent to the
// audit.publish webhook, "checkpoint-<seq>"), the same on every attempt, so
// a receiver can recognise a repeated delivery.
const HeaderIdempotencyKey = "Idempotency-Key"

// DefaultTolerance is how far a signature's timestamp may lie from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// maxSignatureHeader bounds the header Verify is willing to parse.
const maxSignatureHeader = 4096

// Errors Verify returns (wrapped with detail); test them with errors.Is.
var (
	// ErrSignatureMalformed: the header is missing, too long, or not of the
	// form "t=<unix seconds>,v1=<64 hex digits>".
	ErrSignatureMalformed = errors.New("malformed webhook signature header")
	// ErrSignatureMismatch: no v1 value is the HMAC of the body under the
	// secret (wrong secret, or the body or timestamp was altered).
	ErrSignatureMismatch = errors.New("webhook signature does not match")
	// ErrSignatureStale: the signed timestamp lies outside the tolerance
	// (a replayed or badly delayed delivery, or a skewed clock).
	ErrSignatureStale = errors.New("webhook signature timestamp outside tolerance")
	// ErrNoSecret: Verify was called with an empty secret.
	ErrNoSecret = errors.New("no webhook secret to verify with")
)

// Sign returns the Signoff-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Signoff-Signature header against the raw request body, as
// a receiver written in Go would: the header must hold exactly one t and at
// least one v1 (several v1 values are accepted, any one matching suffices;
// unknown keys are ignored), a v1 must equal the HMAC-SHA256 of "<t>.<body>"
// under secret (compared in constant time), and t must lie within tolerance
// of now in either direction. tolerance <= 0 means DefaultTolerance.
//
// Verify does NOT remember deliveries: to refuse a replay inside the
// tolerance window, deduplicate on the body's id (the signed copy of the
// Idempotency-Key header, which is not signed and can be rewritten by
// whoever replays a captured delivery).
func Verify(header string, secret []byte, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return err
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // parseSignature checked it
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	// Abs, not negation: Sub saturates at the smallest Duration for a t
	// centuries ahead, whose negation is itself.
	skew := now.Sub(time.Unix(sec, 0)).Abs()
	if skew > tolerance {
		return fmt.Errorf("%w: signed at %s, %s away from now (tolerance %s)",
			ErrSignatureStale, time.Unix(sec, 0).UTC().Format(time.RFC3339), skew.Round(time.Second), tolerance)
	}
	return nil
}

// parseSignature splits a header into its timestamp (as sent, so the MAC is
// computed over the same digits) and its decoded v1 values.
func parseSignature(header string) (string, [][]byte, error) {
	if header == "" {
		return "", nil, fmt.Errorf("%w: header %s is missing or empty", ErrSignatureMalformed, HeaderSignature)
	}
	if len(header) > maxSignatureHeader {
		return "", nil, fmt.Errorf("%w: header is %d bytes long", ErrSignatureMalformed, len(header))
	}
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: element %q is not key=value", ErrSignatureMalformed, text.Truncate(part, maxQuoted))
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: more than one t", ErrSignatureMalformed)
			}
			if !isDigits(v) || len(v) > 18 {
				return "", nil, fmt.Errorf("%w: t=%q is not unix seconds", ErrSignatureMalformed, text.Truncate(v, maxQuoted))
			}
			ts = v
		case "v1":
			if len(v) != 2*sha256.Size {
				return "", nil, fmt.Errorf("%w: v1 is not %d hex digits", ErrSignatureMalformed, 2*sha256.Size)
			}
			b, err := hex.DecodeString(v)
			if err != nil {
				return "", nil, fmt.Errorf("%w: v1 is not hex", ErrSignatureMalformed)
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" {
		return "", nil, fmt.Errorf("%w: no t", ErrSignatureMalformed)
	}
	if len(sigs) == 0 {
		return "", nil, fmt.Errorf("%w: no v1", ErrSignatureMalformed)
	}
	return ts, sigs, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxQuoted bounds the attacker-supplied text an error quotes.
const maxQuoted = 32
