package approvals

import (
	"fmt"
	"maps"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/storage"
)

// Attester signs the attestation of an approval (docs/attestations.md):
// a JWT saying who approved which action with which params, which a
// receiver verifies against signoff's published keys. *attest.Signer
// implements it; it sets iss, nbf, exp and jti.
type Attester interface {
	Sign(c attest.Claims) (attest.Signed, error)
}

// attest signs r's attestation as r is approved at now, inside the
// approving transaction (decide), so that the request is stored with its
// token and every reader (the requester, the webhook, an auditor) gets
// the same one. It also returns what the request.approved record says of
// it: its jti, kid and expiry, never the token, so the audit log names the
// attestation without holding a credential. Signing has no effect outside
// the transaction: when the transaction runs again, a new token replaces
// the unused one.
func (s *Service) attest(r storage.Request, now time.Time) (string, map[string]any, error) {
	audience := attest.DefaultAudience
	if a, err := s.policy.Action(r.Action); err == nil && a.AttestationAudience != "" {
		audience = a.AttestationAudience
	}
	issuer := r.Requester.IssuerURL
	if issuer == "" {
		// A request stored before the issuer URL was recorded.
		issuer = r.Requester.Issuer
	}
	c := attest.Claims{
		Subject:   r.ID,
		Audience:  audience,
		IssuedAt:  now,
		DecidedAt: now,
		Action:    r.Action,
		Params:    maps.Clone(r.Params),
		Requester: attest.Requester{Issuer: issuer, Subject: r.Requester.Subject, Person: r.Requester.Person},
		Approvers: []attest.Approver{},
	}
	for _, v := range r.Votes {
		if v.Decision == storage.DecisionApprove {
			c.Approvers = append(c.Approvers, attest.Approver{
				Issuer: v.Approver.Issuer, Subject: v.Approver.Subject, Email: v.Approver.Email, Platform: v.Approver.Platform,
			})
		}
	}
	signed, err := s.opts.Attester.Sign(c)
	if err != nil {
		return "", nil, fmt.Errorf("sign the attestation of %s: %w", r.ID, err)
	}
	return signed.Token, map[string]any{
		"jti": signed.ID, "kid": signed.KeyID, "audience": audience, "expires_at": audit.FormatTime(signed.Expiry),
	}, nil
}
