package api

import "time"

// Paths of the API that callers outside Client name.
const (
	// LoginConfigPath is the public discovery endpoint of `signoff login`.
	LoginConfigPath = "/v1/login-config"
)

// State is where a request stands.
type State string

// The request states. A request leaves StatePending exactly once.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateDenied    State = "denied"
	StateExpired   State = "expired"
	StateCancelled State = "cancelled"
)

// Decision is an approver's vote.
type Decision string

// The two votes.
const (
	DecisionApprove Decision = "approve"
	DecisionDeny    Decision = "deny"
)

// ExecutionStatus is how the approved action's run went.
type ExecutionStatus string

// The execution states: pending until delivered, then succeeded or failed.
const (
	ExecutionPending   ExecutionStatus = "pending"
	ExecutionSucceeded ExecutionStatus = "succeeded"
	ExecutionFailed    ExecutionStatus = "failed"
)

// Why a request left pending (Request.DecidedBy).
const (
	DecidedByQuorum    = "quorum"
	DecidedByDeny      = "deny"
	DecidedByRequester = "requester"
	DecidedByAdmin     = "admin"
	DecidedByExpiry    = "expiry"
	// DecidedByBreakGlass: approved at once by break-glass, without votes;
	// a review was opened (Request.BreakGlass).
	DecidedByBreakGlass = "break_glass"
)

// Request is a request as the API shows it: the answer of POST
// /v1/requests, GET /v1/requests/{id} and a cancel, and each entry of GET
// /v1/requests (and `signoff request --output json`).
type Request struct {
	ID           string            `json:"id"`
	Action       string            `json:"action"`
	Params       map[string]string `json:"params,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	Links        []Link            `json:"links,omitempty"`
	State        State             `json:"state"`
	Requester    Requester         `json:"requester"`
	MinApprovals int               `json:"min_approvals"`
	// Approvals counts the approve votes so far; Remaining is how many more
	// the request needs while pending.
	Approvals int        `json:"approvals"`
	Remaining int        `json:"remaining"`
	Votes     []Vote     `json:"votes,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Execution *Execution `json:"execution,omitempty"`
	// URL is where a person can see the request (the dev console in dev
	// mode), when the server knows one.
	URL string `json:"url,omitempty"`
	// DecidedBy says why the request left pending: DecidedByQuorum,
	// DecidedByDeny, DecidedByRequester or DecidedByAdmin (a cancel),
	// DecidedByExpiry.
	DecidedBy string `json:"decided_by,omitempty"`
	// Rules is the progress of each of the action's approvers.require
	// rules, in config order; absent when it has none.
	Rules []Rule `json:"rules,omitempty"`
	// BreakGlass is set on a request approved by break-glass and on the
	// review it opened.
	BreakGlass *BreakGlass `json:"break_glass,omitempty"`
}

// Rule is how far one approvers.require rule is: Have approvals counted
// toward it of the Min it needs from people in one of Groups; Needs is
// how many more (0 once it holds). One person's approval counts toward
// one rule only.
type Rule struct {
	Groups []string `json:"groups"`
	Min    int      `json:"min"`
	Have   int      `json:"have"`
	Needs  int      `json:"needs"`
}

// BreakGlass ties a break-glass request and its review: Review is set on
// the request approved by break-glass (the review it opened), Reviews on
// the review (the break-glass request it reviews). Due is when the review
// should be done; Unreviewed, when it was found still pending after Due;
// Lifted, on a review that ended without approval, when an admin lifted
// the block it held on its requester's next break-glass.
type BreakGlass struct {
	Review     string     `json:"review,omitempty"`
	Reviews    string     `json:"reviews,omitempty"`
	Due        time.Time  `json:"due"`
	Unreviewed *time.Time `json:"unreviewed,omitempty"`
	Lifted     *time.Time `json:"lifted,omitempty"`
}

// Requester is who asked: the configured issuer name and the token's
// subject, and the person behind it when the issuer names one.
type Requester struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Person  string `json:"person,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Vote is one counted vote.
type Vote struct {
	Decision Decision  `json:"decision"`
	Name     string    `json:"name,omitempty"`
	Email    string    `json:"email,omitempty"`
	Subject  string    `json:"subject"`
	Platform string    `json:"platform,omitempty"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
}

// Execution is the state of the approved action's run.
type Execution struct {
	Status    ExecutionStatus `json:"status"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
}

// Link is a reference the requester attached to a request (a CI run, a
// diff), shown to the approvers.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// CreateRequest is the body of POST /v1/requests.
type CreateRequest struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Links  []Link            `json:"links,omitempty"`
	// BreakGlass asks for approval at once, reviewed afterwards (the
	// action's break_glass); Reason is then required.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// ReasonBody is the body of an admin's cancel (POST
// /v1/requests/{id}/cancel, reason required) and of a revoke (DELETE
// /v1/links/…, reason optional).
type ReasonBody struct {
	Reason string `json:"reason"`
}

// Listing limits of GET /v1/requests.
const (
	// DefaultRequestsLimit is how many requests a listing returns without
	// ?limit.
	DefaultRequestsLimit = 100
	// MaxRequestsLimit caps ?limit.
	MaxRequestsLimit = 1000
)

// RequestList is the answer of GET /v1/requests, newest first. Truncated
// says that more requests matched than the limit let through.
type RequestList struct {
	Requests  []Request `json:"requests"`
	Truncated bool      `json:"truncated,omitempty"`
}

// LinkedAccount is a chat account linked to an IdP identity, as GET
// /v1/links lists it: the chat account, the identity it votes as, the
// groups the IdP last confirmed and how fresh they are. Never the refresh
// token.
type LinkedAccount struct {
	Platform  string `json:"platform"`
	Workspace string `json:"workspace"`
	// User is the Slack user id or the Teams aadObjectId.
	User    string   `json:"user"`
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Name    string   `json:"name,omitempty"`
	Groups  []string `json:"groups"`
	// VerifiedAt is when the IdP last confirmed the identity and groups;
	// LinkedAt when the person signed in to make the link.
	VerifiedAt time.Time `json:"verified_at"`
	LinkedAt   time.Time `json:"linked_at"`
	// Stale marks a link the IdP stopped backing: its clicks count
	// nothing until the person links again.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"stale_reason,omitempty"`
	// MatchedBy says how the chat account was proved to be the identity's
	// ("email", "oid", "none"); empty for a link made before signoff
	// checked this, which is checked at its next click.
	MatchedBy string `json:"matched_by,omitempty"`
}

// LinkedAccounts is the answer of GET /v1/links.
type LinkedAccounts struct {
	Links []LinkedAccount `json:"links"`
}

// Revoked is the answer of a successful DELETE /v1/links/….
type Revoked struct {
	Revoked LinkedAccount `json:"revoked"`
}

// Attestation is the answer of GET /v1/requests/{id}/attestation: the
// approval attestation signoff signed when the request was approved, a
// compact JWT (docs/attestations.md). The same token reaches the action's
// webhook.
type Attestation struct {
	Attestation string `json:"attestation"`
}

// LoginConfig is the answer of GET /v1/login-config: what `signoff login`
// needs to sign a person in at the company IdP. It is public: the issuer
// and a public client's id are no secrets.
type LoginConfig struct {
	// Issuer is idp.issuer.
	Issuer string `json:"issuer"`
	// ClientID is idp.cli_client_id, the command line's public client.
	ClientID string `json:"client_id"`
	// Scopes are requested at sign-in (idp.scopes).
	Scopes []string `json:"scopes"`
	// GroupsClaim is idp.groups_claim, so the command line can show the
	// groups signoff will see.
	GroupsClaim string `json:"groups_claim,omitempty"`
}
