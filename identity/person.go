package identity

import (
	"maps"
	"slices"

	"github.com/signoff-dev/signoff/policy"
)

// Person is the identity as policy judges an approver (eligibility,
// self-approval): its subject, email, preferred username and groups, and
// its idp.person_claims values, in claim name order, as Handles.
func (id Identity) Person() policy.Person {
	p := policy.Person{Subject: id.Subject, Email: id.Email, EmailUnverified: id.EmailUnverified, PreferredUsername: id.PreferredUsername, Groups: id.Groups}
	for _, k := range slices.Sorted(maps.Keys(id.PersonClaims)) {
		p.Handles = append(p.Handles, id.PersonClaims[k]...)
	}
	return p
}
