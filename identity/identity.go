// Package identity is who a person is to signoff's core: the Identity an
// OpenID Provider vouched for, the chat Account it acts from, and the
// records and hooks by which the account-link flow hands its outcomes to
// the request lifecycle.
//
// The oidc package fills these types (it verifies sign-ins) and the
// approvals package consumes them (it counts votes and writes the audit
// log); neither imports the other. This package imports neither of them,
// nor any chat adapter: only storage, whose records it converts to and
// from, and policy, for the step-up rule. The conversions between an
// Identity and the stored records (FromLink, NewLink, NewApprover) are
// here, once.
package identity

import (
	"context"
	"time"

	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Identity is a person as an OpenID Provider vouched for them.
type Identity struct {
	// Issuer is the provider's issuer URL (the iss claim).
	Issuer            string   `json:"issuer"`
	Subject           string   `json:"subject"`
	Email             string   `json:"email,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// EmailUnverified: the provider did not vouch for Email
	// (policy.Person.EmailUnverified): it names the person for the
	// self-approval check only.
	EmailUnverified bool `json:"email_unverified,omitempty"`
	// PersonClaims holds the idp.person_claims values of this identity
	// (claim name → value): the names the person may have in the
	// requesters' identity systems, compared for self-approval.
	PersonClaims map[string][]string `json:"person_claims,omitempty"`
	// VerifiedAt is when the provider last confirmed this identity and its
	// groups (a login or a token refresh).
	VerifiedAt time.Time `json:"verified_at"`
	// AuthTime, ACR and AMR describe the last interactive sign-in, when
	// known (step-up checks use them).
	AuthTime time.Time `json:"auth_time,omitempty"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
}

// Account names a chat account: the platform ("slack", "teams", "dev"),
// the workspace (the Slack team id, the Teams tenant id) and the
// platform's user id (the Slack user id, the Teams aadObjectId).
type Account struct {
	Platform  string
	Workspace string
	User      string
}

// LinkRefusal is a sign-in that did not prove to be the chat account's
// owner: the account the link was for, the identity that signed in, and
// why they do not belong together. It never holds a token.
type LinkRefusal struct {
	// Account is the chat account the sign-in link was for; Conversation
	// is where it clicked.
	Account      Account
	Conversation string
	// AccountName and AccountEmail are the chat platform's record of the
	// account, when it could be read.
	AccountName, AccountEmail string
	// Identity is who signed in at the IdP.
	Identity Identity
	// Reason is a short stable code (oidc/linkflow's Refusal… constants);
	// Message says what did not match, for people.
	Reason  LinkRefusalReason
	Message string
}

// LinkRefusalReason is why a sign-in was refused as the chat account's
// owner (LinkRefusal.Reason). The type lives here, beside the field, so
// that approvals can audit a refusal without importing oidc; its values
// are declared once, as oidc/linkflow's Refusal… constants, which decide
// them. The audit log's identity.link_refused records carry it as a
// string.
type LinkRefusalReason string

// StepUpRefusal is a step-up sign-in whose vote was not cast.
type StepUpRefusal struct {
	// Attempt names the chat account, the request and the decision.
	Attempt storage.LinkAttempt
	// Identity is who signed in (possibly not the linked identity).
	Identity Identity
	// Reason is a short stable code (oidc/linkflow's StepUpRefusal…
	// constants); Message says why, for people.
	Reason  StepUpRefusalReason
	Message string
	// Audit asks for a vote.rejected record; false when the refusal was
	// audited already (approvals.Vote refused the vote).
	Audit bool
}

// StepUpRefusalReason is why a step-up sign-in did not cast its vote
// (StepUpRefusal.Reason). Like LinkRefusalReason, the type lives here,
// beside the field, and its values are declared once, as oidc/linkflow's
// StepUpRefusal… constants, which decide them. The audit log's
// vote.rejected records carry it as a string.
type StepUpRefusalReason string

// StepUpFunc completes a vote after a step-up sign-in: attempt names the
// request, the decision and the chat account; id is the identity from the
// fresh ID token (VerifiedAt now, AuthTime, ACR and AMR of that sign-in).
// approvals.Service.StepUpVote is one. On success message is shown to
// the approver. On a refusal it returns the refusal's message (shown, with
// a 403) and the error; on an internal failure an empty message and the
// error (a generic page is shown, the error is logged).
type StepUpFunc func(ctx context.Context, attempt storage.LinkAttempt, id Identity) (message string, err error)

// StepUpPolicyFunc returns the step-up rule of a request's action (nil when
// it has none); the link flow asks the IdP for max_age and acr_values
// accordingly. The checks themselves are approvals' (Vote).
type StepUpPolicyFunc func(ctx context.Context, requestID string) (*policy.StepUp, error)
