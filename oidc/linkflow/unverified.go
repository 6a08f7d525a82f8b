package linkflow

import (
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
)

// ReadUnverifiedIdentity reads an approver's ID-token claims (a JSON
// object) that were NOT verified, the way the link flow reads verified
// ones: sub (required), email, name, preferred_username, the groups in
// groupsClaim (DefaultGroupsClaim when empty) and the values of
// personClaims (idp.person_claims; DefaultPersonClaims when nil), and
// whether the email is vouched for as the link flow decides it (with
// assumeEmailVerified, idp.email_verified: assumed). The identity's
// VerifiedAt is zero.
//
// It exists for previews (`signoff policy explain --approver-claims`):
// what it returns MUST NOT authorize anything.
func ReadUnverifiedIdentity(claims []byte, groupsClaim string, personClaims []string, assumeEmailVerified bool) (identity.Identity, error) {
	m, err := idtoken.Decode(claims)
	if err != nil {
		return identity.Identity{}, fmt.Errorf("the claims are not a JSON object: %s", idtoken.CauseText(err))
	}
	if groupsClaim == "" {
		groupsClaim = DefaultGroupsClaim
	}
	if personClaims == nil {
		personClaims = DefaultPersonClaims
	}
	c := &idpClient{groupsClaim: groupsClaim, personClaims: personClaims}
	out, err := c.readClaims(m)
	if err != nil {
		return identity.Identity{}, err
	}
	return out.asIdentity(time.Time{}, assumeEmailVerified), nil
}
