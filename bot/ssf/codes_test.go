package ssf_test

import (
	"testing"

	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/oidc"
)

// TestRefusalCodesAreRFC8935s: the err codes a refused push is answered
// with are RFC 8935's (§2.4), spelled as the RFC registers them;
// transmitters act on them. The other tests compare answers with the
// constants, so only this one sees a constant's value change.
func TestRefusalCodesAreRFC8935s(t *testing.T) {
	for code, want := range map[oidc.SETCode]string{
		oidc.SETErrInvalidRequest:   "invalid_request",
		oidc.SETErrInvalidKey:       "invalid_key",
		oidc.SETErrInvalidIssuer:    "invalid_issuer",
		oidc.SETErrInvalidAudience:  "invalid_audience",
		ssf.ErrAuthenticationFailed: "authentication_failed",
	} {
		if string(code) != want {
			t.Errorf("code %q, want %q", code, want)
		}
	}
}
