package ssf_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/ssf"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
)

// claimsVerifier hands the receiver the SET whose claims are the request
// body, unsigned: it lets the fuzzer reach the reading of events and
// subjects, which only ever sees verified SETs in production.
type claimsVerifier struct{}

func (claimsVerifier) Verify(_ context.Context, raw string) (*oidc.SET, error) {
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
		SubID  json.RawMessage            `json:"sub_id"`
		IAT    float64                    `json:"iat"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil || len(c.Events) == 0 {
		return nil, &oidc.SETError{Code: oidc.SETErrInvalidRequest, Reason: oidc.SETReasonMalformed, Message: "not a SET"}
	}
	iat := time.Unix(int64(c.IAT), 0)
	return &oidc.SET{Issuer: transmitter, ID: "fuzz", IssuedAt: iat, AcceptUntil: iat.Add(time.Hour), Events: c.Events, SubID: c.SubID}, nil
}

// recordingLinks accepts every signal and checks what it is given.
type recordingLinks struct{ t *testing.T }

func (l recordingLinks) MarkIdentitiesStale(_ context.Context, sig approvals.StaleSignal) (approvals.StaleResult, error) {
	if sig.ID == "" || sig.Scope == "" {
		l.t.Errorf("signal without an id: %+v", sig)
	}
	for _, m := range sig.Subjects {
		if m.Subject == "" && !strings.Contains(m.Email, "@") {
			l.t.Errorf("a subject that can match nothing reached approvals: %+v", m)
		}
		if m.Subject != "" && m.Issuer == "" {
			l.t.Errorf("an iss_sub subject without an issuer: %+v", m)
		}
	}
	if len(sig.Subjects) > 0 && sig.Reason == "" {
		l.t.Error("a signal with subjects but no reason")
	}
	return approvals.StaleResult{}, nil
}

// FuzzEventsAndSubjects: whatever events and subjects a SET carries, the
// receiver answers 202 or 400 with an RFC 8935 code, never panics, and
// hands approvals only subjects that can match an identity.
func FuzzEventsAndSubjects(f *testing.F) {
	for _, seed := range []string{
		`{"iat":1,"sub_id":{"format":"iss_sub","iss":"https://idp.example.com","sub":"a"},"events":{"` + ssf.EventSessionRevoked + `":{}}}`,
		`{"iat":1,"events":{"` + ssf.EventAccountDisabled + `":{"subject":{"format":"email","email":"a@example.com"}}}}`,
		`{"iat":1,"sub_id":{"format":"complex","user":{"format":"email","email":"a@b"}},"events":{"` + ssf.EventCredentialChange + `":{"event_timestamp":1e300}}}`,
		`{"iat":1,"sub_id":{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[]},{"format":"opaque","id":"x"}]},"events":{"` + ssf.EventAccountPurged + `":null}}`,
		`{"iat":1,"sub_id":{"format":"complex","user":{"format":"complex","user":{}}},"events":{"` + ssf.EventSessionRevoked + `":{"subject":[]}}}`,
		`{"iat":1,"events":{"` + ssf.EventVerification + `":{"state":"x"}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, err := ssf.New(ssf.Options{Verifier: claimsVerifier{}, Links: recordingLinks{t}, IdPIssuer: idpIssuer, Logger: testenv.DiscardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, ssf.Path, strings.NewReader(body))
		req.Header.Set("Content-Type", ssf.ContentType)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusAccepted:
		case http.StatusBadRequest:
			var a struct {
				Err         oidc.SETCode
				Description string
			}
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || a.Err != oidc.SETErrInvalidRequest || a.Description == "" {
				t.Errorf("400 body %q", w.Body.String())
			}
		default:
			t.Errorf("status %d for %q", w.Code, body)
		}
	})
}
