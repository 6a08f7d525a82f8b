package executor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/executor"
)

// Known answer, computed independently with the openssl one-liner in
// docs/webhooks.md:
//
//	{ printf '%s.' 1767225600; printf '%s' '{"id":"req_1","decision":"approved"}'; } |
//	  openssl dgst -sha256 -hmac whsec_test | awk '{print $NF}'
const (
	katSecret = "whsec_test"
	katBody   = `{"id":"req_1","decision":"approved"}`
	katHeader = "t=1767225600,v1=85164e7fe120caac7c2558aa1dad519965e129dd3bfb1916ff1cd0c9f13cbf68"
)

var katTime = time.Unix(1767225600, 0)

func TestSignKnownAnswer(t *testing.T) {
	if got := executor.Sign([]byte(katSecret), katTime, []byte(katBody)); got != katHeader {
		t.Fatalf("Sign = %q, want %q", got, katHeader)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte(katSecret)
	body := []byte(katBody)
	other := executor.Sign([]byte("rotated"), katTime, body)
	cases := []struct {
		name   string
		header string
		secret []byte
		body   []byte
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{"valid", katHeader, secret, body, katTime, 0, nil},
		{"valid, spaces and unknown keys", " t=1767225600 , v0=zz, " + katHeader[len("t=1767225600,"):], secret, body, katTime, 0, nil},
		{"one of several v1 matches", other + "," + katHeader[len("t=1767225600,"):], secret, body, katTime, 0, nil},
		{"just inside the default tolerance", katHeader, secret, body, katTime.Add(5 * time.Minute), 0, nil},
		{"wrong secret", katHeader, []byte("whsec_wrong"), body, katTime, 0, executor.ErrSignatureMismatch},
		{"altered body", katHeader, secret, []byte(katBody + " "), katTime, 0, executor.ErrSignatureMismatch},
		{"altered timestamp", "t=1767225601" + katHeader[len("t=1767225600"):], secret, body, katTime, 0, executor.ErrSignatureMismatch},
		{"stale", katHeader, secret, body, katTime.Add(5*time.Minute + time.Second), 0, executor.ErrSignatureStale},
		{"from the future", katHeader, secret, body, katTime.Add(-6 * time.Minute), 0, executor.ErrSignatureStale},
		{"custom tolerance", katHeader, secret, body, katTime.Add(31 * time.Second), 30 * time.Second, executor.ErrSignatureStale},
		{"empty header", "", secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"no v1", "t=1767225600", secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"no t", katHeader[len("t=1767225600,"):], secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"two t", "t=1767225600," + katHeader, secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"t not a number", "t=-5" + katHeader[len("t=1767225600"):], secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"v1 not hex", "t=1767225600,v1=" + strings.Repeat("z", 64), secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"v1 truncated", katHeader[:len(katHeader)-2], secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"element without =", katHeader + ",junk", secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"huge header", katHeader + "," + strings.Repeat("a=b,", 2000), secret, body, katTime, 0, executor.ErrSignatureMalformed},
		{"no secret", katHeader, nil, body, katTime, 0, executor.ErrNoSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := executor.Verify(c.header, c.secret, c.body, c.now, c.tol)
			if c.want == nil && err != nil {
				t.Fatalf("Verify: %v, want success", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzVerify: Verify never panics on any header, and a header made by Sign
// always verifies.
func FuzzVerify(f *testing.F) {
	f.Add(katHeader, []byte(katSecret), []byte(katBody), int64(0))
	f.Add("t=1,v1=", []byte("s"), []byte{}, int64(1))
	f.Add("t=99999999999999999999,v1=00", []byte("s"), []byte("{}"), int64(-1))
	f.Fuzz(func(t *testing.T, header string, secret, body []byte, skew int64) {
		now := katTime.Add(time.Duration(skew % int64(50*365*24*time.Hour))) // stay after 1970
		_ = executor.Verify(header, secret, body, now, 0)
		if len(secret) == 0 {
			return
		}
		if err := executor.Verify(executor.Sign(secret, now, body), secret, body, now, 0); err != nil {
			t.Fatalf("own signature does not verify: %v", err)
		}
	})
}
