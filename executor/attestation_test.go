package executor_test

import (
	"encoding/json"
	"testing"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/attesttest"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// The webhook body carries the request's attestation: the very token
// stored with the approval, which a stock JWT library verifies with the
// published keys.
func TestPayloadCarriesTheAttestation(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL+"/hook", executor.Options{})
	signer := testenv.AttestSigner(t, "https://signoff.example.com")
	h.attester = signer
	h.reopen()
	r := h.approve("deploy", map[string]string{"service": "api"})
	if r.Attestation == "" {
		t.Fatal("the approved request has no attestation")
	}
	h.runOnce(1)
	calls := rc.deliveries()
	if len(calls) != 1 || calls[0].sigErr != nil {
		t.Fatalf("deliveries %+v", calls)
	}
	var p executor.Payload
	if err := json.Unmarshal(calls[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Attestation != r.Attestation {
		t.Fatalf("the webhook's attestation is not the stored one:\n%s\n%s", p.Attestation, r.Attestation)
	}
	claims := attesttest.Claims(t, p.Attestation, signer.JWKS(), "https://signoff.example.com", "signoff", t0)
	if claims["sub"] != p.ID || claims["action"] != p.Action {
		t.Errorf("claims %v for payload %+v", claims, p)
	}
}
