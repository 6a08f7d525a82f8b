package attest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/attest"
)

// FuzzVerify: whatever a receiver is handed, Verify neither panics nor
// accepts anything but an attestation signed by a published key that
// says what the receiver expects.
func FuzzVerify(f *testing.F) {
	s := newSigner(f, ecKey(f))
	ks := keySet(f, s)
	good := sign(f, s, approval()).Token
	f.Add(good)
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add(good[:len(good)-4])
	f.Add("e30.e30.")
	f.Add(`eyJhbGciOiJub25lIn0.e30.`)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := attest.Verify(token, ks, want, attest.VerifyOptions{Now: func() time.Time { return decided.Add(time.Minute) }})
		if err != nil {
			return
		}
		if c.Audience != want.Audience || c.Issuer != issuer || c.Action != want.Action || c.Params["service"] != "api" {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
