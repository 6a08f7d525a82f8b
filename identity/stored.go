package identity

import (
	"maps"
	"slices"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// The stored records keep their own copies of an identity's fields (with
// their own JSON names, which stored data and audit hashes depend on);
// these functions are the one place that maps between them. Each copies
// slices and maps, so the result shares no memory with its argument.

// FromLink is the identity a link vouches for.
func FromLink(l storage.IdentityLink) Identity {
	return Identity{
		Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, EmailUnverified: l.EmailUnverified, Name: l.Name,
		PreferredUsername: l.PreferredUsername, Groups: slices.Clone(l.Groups),
		PersonClaims: maps.Clone(l.PersonClaims),
		VerifiedAt:   l.VerifiedAt, AuthTime: l.AuthTime, ACR: l.ACR, AMR: slices.Clone(l.AMR),
	}
}

// LinkAccount is the chat account a link is for.
func LinkAccount(l storage.IdentityLink) Account {
	return Account{Platform: l.Platform, Workspace: l.Workspace, User: l.PlatformUser}
}

// AttemptAccount is the chat account a sign-in attempt is for.
func AttemptAccount(a storage.LinkAttempt) Account {
	return Account{Platform: a.Platform, Workspace: a.Workspace, User: a.PlatformUser}
}

// NewLink links chat account a to id as of linkedAt (VerifiedAt is id's).
// The caller adds what only the link flow knows: MatchedBy and the sealed
// refresh token.
func NewLink(a Account, id Identity, linkedAt time.Time) storage.IdentityLink {
	return storage.IdentityLink{
		Platform: a.Platform, Workspace: a.Workspace, PlatformUser: a.User,
		Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailUnverified: id.EmailUnverified, Name: id.Name, PreferredUsername: id.PreferredUsername,
		Groups: slices.Clone(id.Groups), LinkedAt: linkedAt, VerifiedAt: id.VerifiedAt,
		AuthTime: id.AuthTime, ACR: id.ACR, AMR: slices.Clone(id.AMR),
		PersonClaims: maps.Clone(id.PersonClaims),
	}
}

// NewApprover is id as it votes from chat account a: the approver a
// stored vote names (VerifiedAt in UTC).
func NewApprover(a Account, id Identity) storage.Approver {
	return storage.Approver{
		Issuer: id.Issuer, Subject: id.Subject, Name: id.Name, Email: id.Email,
		PreferredUsername: id.PreferredUsername, Groups: slices.Clone(id.Groups), VerifiedAt: id.VerifiedAt.UTC(),
		Platform: a.Platform, Workspace: a.Workspace, PlatformUser: a.User,
	}
}
