package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// newSigner is an attestation signer for https://signoff.example.com.
func newSigner(t *testing.T) *attest.Signer {
	t.Helper()
	return testenv.AttestSigner(t, "https://signoff.example.com")
}

func verifyAttestation(t *testing.T, s *attest.Signer, token, audience string, now time.Time) *attest.Claims {
	t.Helper()
	ks, err := attest.ParseKeySet(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.Verify(token, ks, attest.Expected{Issuer: s.Issuer(), Audience: audience}, attest.VerifyOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("the stored attestation does not verify: %v", err)
	}
	return c
}

// The approving vote signs the attestation in its transaction: the request
// is stored with the token, the claims are the request's, and the audit
// record names the attestation (jti, kid) without holding it.
func TestApprovalSignsTheAttestation(t *testing.T) {
	s := newSigner(t)
	h := newHarness(t, approvals.Options{Attester: s})
	h.svc.Policy().Actions["deploy-prod"].AttestationAudience = "deploy.example.com"
	r := h.create("deploy-prod", deployParams())
	res, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove)
	if err != nil || res.Request.Attestation != "" {
		t.Fatalf("first of two approvals: %v, attestation %q; want none while pending", err, res.Request.Attestation)
	}
	h.clock.Advance(90 * time.Second)
	decidedAt := h.clock.Now().UTC()
	res, err = h.vote(r.ID, approver("bob", "sre"), storage.DecisionApprove)
	if err != nil || res.Request.State != storage.StateApproved || res.Request.Attestation == "" {
		t.Fatalf("approval: %v, %+v", err, res.Request)
	}
	stored, err := h.svc.Get(context.Background(), r.ID)
	if err != nil || stored.Attestation != res.Request.Attestation {
		t.Fatalf("stored attestation %q, the vote returned %q (%v)", stored.Attestation, res.Request.Attestation, err)
	}
	c := verifyAttestation(t, s, stored.Attestation, "deploy.example.com", decidedAt.Add(time.Minute))
	if c.Subject != r.ID || c.Action != "deploy-prod" || !equalMaps(c.Params, deployParams()) ||
		!c.DecidedAt.Equal(decidedAt.Truncate(time.Second)) || !c.IssuedAt.Equal(c.DecidedAt) || !c.Expiry.Equal(c.DecidedAt.Add(attest.DefaultTTL)) {
		t.Errorf("claims %+v", c)
	}
	if c.Requester != (attest.Requester{Issuer: requester.IssuerURL, Subject: requester.Subject, Person: "octocat"}) {
		t.Errorf("requester %+v", c.Requester)
	}
	wantApprovers := []attest.Approver{
		{Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com", Platform: "slack"},
		{Issuer: "https://idp.example", Subject: "sub-bob", Email: "bob@example.com", Platform: "slack"},
	}
	if !slices.Equal(c.Approvers, wantApprovers) {
		t.Errorf("approvers %+v, want %+v", c.Approvers, wantApprovers)
	}
	recs := h.records()
	last := recs[len(recs)-1]
	noted, _ := last.Data["attestation"].(map[string]any)
	if last.Type != "request.approved" || noted["jti"] != c.ID || noted["kid"] != s.KeyID() || noted["audience"] != "deploy.example.com" ||
		noted["expires_at"] != c.Expiry.UTC().Format(time.RFC3339) {
		t.Errorf("request.approved record %+v; want data.attestation with jti %s, kid %s, the audience and expiry", last, c.ID, s.KeyID())
	}
	signature := stored.Attestation[strings.LastIndex(stored.Attestation, ".")+1:]
	for _, line := range auditText(t, h) {
		if strings.Contains(line, signature) {
			t.Fatal("the audit log holds the attestation itself")
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func auditText(t *testing.T, h *harness) []string {
	t.Helper()
	var out []string
	for _, r := range h.records() {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// An action without attestation.audience gets the default audience.
func TestAttestationDefaultAudience(t *testing.T) {
	s := newSigner(t)
	h := newHarness(t, approvals.Options{Attester: s})
	r := h.create("restart", nil)
	res, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove)
	if err != nil {
		t.Fatal(err)
	}
	c := verifyAttestation(t, s, res.Request.Attestation, attest.DefaultAudience, t0)
	if c.Audience != "signoff" || len(c.Params) != 0 {
		t.Errorf("claims %+v", c)
	}
}

// Only an approval is attested: a denied, cancelled or expired request has
// no attestation.
func TestOnlyApprovalsAreAttested(t *testing.T) {
	h := newHarness(t, approvals.Options{Attester: newSigner(t)})
	ctx := context.Background()
	denied := h.create("deploy-prod", deployParams())
	if _, err := h.vote(denied.ID, approver("alice", "sre"), storage.DecisionDeny); err != nil {
		t.Fatal(err)
	}
	cancelled := h.create("deploy-prod", deployParams())
	if _, err := h.svc.Cancel(ctx, cancelled.ID, approvals.Canceller{Issuer: requester.Issuer, Subject: requester.Subject}); err != nil {
		t.Fatal(err)
	}
	expired := h.create("restart", nil)
	h.clock.Advance(time.Hour)
	if _, err := h.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	for id, state := range map[string]storage.State{denied.ID: storage.StateDenied, cancelled.ID: storage.StateCancelled, expired.ID: storage.StateExpired} {
		got, err := h.svc.Get(ctx, id)
		if err != nil || got.State != state || got.Attestation != "" {
			t.Errorf("%s: state %s, attestation %q (%v); want %s and none", id, got.State, got.Attestation, err, state)
		}
	}
}

type failingAttester struct{}

func (failingAttester) Sign(attest.Claims) (attest.Signed, error) {
	return attest.Signed{}, errors.New("the key is gone")
}

// No approval without its attestation: when signing fails, the vote fails
// and nothing of it is stored (docs/architecture.md, invariant 3).
func TestApprovalNotStoredWhenSigningFails(t *testing.T) {
	h := newHarness(t, approvals.Options{Attester: failingAttester{}})
	r := h.create("restart", nil)
	if _, err := h.vote(r.ID, approver("alice", "sre"), storage.DecisionApprove); err == nil || !strings.Contains(err.Error(), "attestation") {
		t.Fatalf("vote with a failing signer: %v", err)
	}
	got, err := h.svc.Get(context.Background(), r.ID)
	if err != nil || got.State != storage.StatePending || len(got.Votes) != 0 {
		t.Fatalf("after the failed vote: %+v %v", got, err)
	}
	if ty := types(h.records()); !slices.Equal(ty, []string{"request.created"}) {
		t.Errorf("audit %v", ty)
	}
}
