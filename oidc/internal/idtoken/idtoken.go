// Package idtoken holds what oidc's token verifiers and the account-link
// flow (oidc/linkflow) share: reading a token's claims, the accepted
// signing algorithms, the issuer URL rule, the download timeout, random
// tokens, and how untrusted values and network errors are written into
// messages.
package idtoken

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/internal/text"
)

// AllowedAlgs are the only JWS algorithms a token may use: no
// "none", no HMAC (whose "key" an attacker could take from the issuer's
// public key set), nothing go-oidc does not support.
var AllowedAlgs = []string{gooidc.RS256, gooidc.ES256, gooidc.PS256, gooidc.EdDSA}

// AllowedJOSEAlgs are AllowedAlgs as go-jose names them.
var AllowedJOSEAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256, jose.EdDSA}

// FetchTimeout bounds one discovery or key set download, whatever the
// HTTP client's own timeout.
const FetchTimeout = jwks.DefaultFetchTimeout

// CheckIssuerURL accepts absolute https URLs, and http ones only on a
// loopback host (the dev issuer, tests).
func CheckIssuerURL(s string) error {
	if s == "" {
		return errors.New("no issuer URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %w", s, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q must be an absolute URL with a host and no query, fragment or user info", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !hostlist.IsLoopback(u.Hostname()) {
			return fmt.Errorf("issuer %q uses http; only https is trusted except on a loopback address", s)
		}
	default:
		return fmt.Errorf("issuer %q must use https", s)
	}
	return nil
}

// FormatTime writes t for a message, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// maxQuoted bounds how much of an attacker-chosen claim value is repeated
// in a message.
const maxQuoted = 120

// Quote renders an untrusted value for a message: quoted, escaped and
// truncated.
func Quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q%s", text.Cut(s, maxQuoted), text.Ellipsis)
	}
	return fmt.Sprintf("%q", s)
}

// maxCause bounds how much of an error from the network (which may hold a
// response body) is repeated in a message.
const maxCause = 300

// CauseText renders err for a message: on one line and truncated.
func CauseText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return text.Truncate(strings.Join(strings.Fields(err.Error()), " "), maxCause)
}

// SafeErr drops the response body oauth2 puts into a RetrieveError's text.
func SafeErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := "no response"
		if re.Response != nil {
			status = re.Response.Status
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("HTTP %s, error %s", status, re.ErrorCode)
		}
		return fmt.Errorf("HTTP %s", status)
	}
	return err
}

// RandomToken returns 256 random bits, base64url without padding.
func RandomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("oidc: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidToken reports whether s looks like a RandomToken.
func ValidToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
