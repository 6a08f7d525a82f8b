// Package storage declares what signoff keeps durable and the contract every
// backend honours: the Store interface, its value types and sentinel errors.
//
// Backends live in subpackages (storage/boltstore is the embedded default) and
// prove themselves against storage/storagetest. A backend stores and indexes
// records; it never decides anything about them: which state a request may move
// to, what an audit record says or how it is hashed all belong to the
// approvals package.
//
// The contract, in short:
//   - Every change goes through Store.Update. Everything one Update function
//     writes (a request's new state, its audit records and its outbox entries)
//     commits together and durably, or not at all.
//   - An Update function may run more than once (a backend may group several
//     callers into one commit and re-run one on its own when a neighbour
//     fails). It must therefore be free of side effects outside the Tx and
//     must reset anything it reports to its caller each time it starts.
//   - UpdateRequest is compare-and-swap on Request.Version: it fails with
//     ErrConflict when the stored version is not the one the caller read.
//   - AppendAudit takes exactly the next sequence number after AuditHead; any
//     other number is ErrConflict, so two writers can never fork the chain.
//   - A Tx call that refuses (ErrNotFound, ErrAlreadyExists, ErrConflict)
//     leaves the transaction usable: the caller may read on and decide.
//   - Update checks ctx before it starts; once a commit has begun it runs to
//     completion and reports its real result, so a caller never mistakes a
//     landed change for a lost one. A panicking fn writes nothing.
//   - An Update or View function must not call back into the Store.
//   - A limit <= 0 means no cap.
//   - Times are stored in UTC with nanosecond precision.
package storage

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound means the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a record with the same identity (request id or
	// idempotency scope) is stored already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means a compare-and-swap lost: the record changed since it
	// was read, or an audit sequence number is not the next one. The caller
	// re-reads and retries.
	ErrConflict = errors.New("conflict")
	// ErrLocked means the database is held by another process.
	ErrLocked = errors.New("locked by another process")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable means the database cannot be used right now (a
	// database server that cannot be reached yet); the call may succeed
	// later.
	ErrUnavailable = errors.New("database unavailable")
)

// State is where a request stands in its lifecycle.
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

// The two votes an approver can cast.
const (
	DecisionApprove Decision = "approve"
	DecisionDeny    Decision = "deny"
)

// ExecutionStatus tracks the action run after an approval.
type ExecutionStatus string

// Execution states: pending until delivered, then succeeded or failed.
const (
	ExecutionPending   ExecutionStatus = "pending"
	ExecutionSucceeded ExecutionStatus = "succeeded"
	ExecutionFailed    ExecutionStatus = "failed"
)

// Requester is the verified identity behind a CI request.
type Requester struct {
	// Issuer is the configured name of the trusted issuer (e.g. "github").
	Issuer string `json:"issuer"`
	// IssuerURL is the token's iss claim.
	IssuerURL string `json:"issuer_url,omitempty"`
	Subject   string `json:"subject"`
	// Person is the human behind the request (the issuer's person_claim,
	// e.g. GitHub's actor), used to refuse self-approval.
	Person string `json:"person,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	// Claims holds the string claims the policy matched against.
	Claims map[string]string `json:"claims,omitempty"`
}

// Approver is the identity behind a vote: who the IdP says they are and
// where they clicked.
type Approver struct {
	Issuer            string    `json:"issuer"`
	Subject           string    `json:"subject"`
	Name              string    `json:"name,omitempty"`
	Email             string    `json:"email,omitempty"`
	PreferredUsername string    `json:"preferred_username,omitempty"`
	Groups            []string  `json:"groups,omitempty"`
	VerifiedAt        time.Time `json:"verified_at"`
	// Platform is slack, teams or dev.
	Platform string `json:"platform"`
	// Workspace is the Slack team id or the Teams tenant id.
	Workspace string `json:"workspace,omitempty"`
	// PlatformUser is the Slack user id or the Teams aadObjectId.
	PlatformUser string `json:"platform_user,omitempty"`
}

// Link is a reference the requester attached (a CI run, a diff).
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Vote is one approver's counted vote on a request.
type Vote struct {
	Approver Approver  `json:"approver"`
	Decision Decision  `json:"decision"`
	Time     time.Time `json:"time"`
	// Source is the platform's callback or event id.
	Source string `json:"source,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Execution records the run of an approved request's action.
type Execution struct {
	Status    ExecutionStatus `json:"status"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Card is where a request was rendered on a chat platform, so that later
// state changes can update the same message.
type Card struct {
	Platform string `json:"platform"`
	// Conversation is the Slack channel id or the Teams conversation id.
	Conversation string `json:"conversation"`
	// MessageID is the Slack ts or the Teams activity id.
	MessageID string `json:"message_id"`
	// ServiceURL is the Teams service URL the card was posted through.
	ServiceURL string `json:"service_url,omitempty"`
}

// Request is one approval request and everything decided about it.
type Request struct {
	ID        string            `json:"id"`
	Action    string            `json:"action"`
	Params    map[string]string `json:"params,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Links     []Link            `json:"links,omitempty"`
	Requester Requester         `json:"requester"`

	// IdempotencyScope is empty or unique across all requests: the requester
	// and the key they sent. Fingerprint is a digest of the request body that
	// came with it, so a retry with a different body can be refused.
	IdempotencyScope string `json:"idempotency_scope,omitempty"`
	Fingerprint      string `json:"fingerprint,omitempty"`

	State        State     `json:"state"`
	MinApprovals int       `json:"min_approvals"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	DecidedAt    time.Time `json:"decided_at,omitzero"`
	// DecidedBy says why the request left pending: "quorum", a deny, the
	// requester's cancel or "expiry".
	DecidedBy string     `json:"decided_by,omitempty"`
	Votes     []Vote     `json:"votes,omitempty"`
	Execution *Execution `json:"execution,omitempty"`
	Cards     []Card     `json:"cards,omitempty"`
	// Attestation is the signed approval attestation (a compact JWT,
	// docs/attestations.md), written in the transaction that approves the
	// request when signoff signs attestations; empty otherwise.
	Attestation string `json:"attestation,omitempty"`
	// BreakGlass is set on a request approved by break-glass and on the
	// review it opened; nil on every other request.
	BreakGlass *BreakGlass `json:"break_glass,omitempty"`

	// Version is the compare-and-swap token. CreateRequest stores version 1;
	// UpdateRequest requires the stored version and stores Version+1.
	Version uint64 `json:"version"`
}

// BreakGlass ties a break-glass request to its review (docs/policy-cookbook.md,
// "Break-glass"): Review is set on the request approved by break-glass,
// Reviews on the review request it opened.
type BreakGlass struct {
	// Review is the id of the review opened for this break-glass request.
	Review string `json:"review,omitempty"`
	// Reviews is the id of the break-glass request this request reviews.
	Reviews string `json:"reviews,omitempty"`
	// Due is when the review should be done: the break-glass time plus
	// break_glass.within.
	Due time.Time `json:"due,omitzero"`
	// Unreviewed is when the review was found still pending after Due
	// (audited break_glass.unreviewed); zero until then.
	Unreviewed time.Time `json:"unreviewed,omitzero"`
	// Lifted, on a review that ended without approval (denied,
	// cancelled), is when an admin lifted the block it holds on its
	// requester's next break-glass (audited break_glass.lifted); zero
	// until then.
	Lifted time.Time `json:"lifted,omitzero"`
}

// OutboxEntry is a piece of work a committed state change owes the outside
// world: a chat message to post or update, an action to execute. It is
// written in the same transaction as the change that caused it and removed
// only once delivered.
type OutboxEntry struct {
	// ID is assigned by the store on Enqueue and increases with every entry,
	// so delivery order can follow commit order.
	ID        uint64 `json:"id"`
	RequestID string `json:"request_id"`
	// Kind says who delivers it (e.g. "execute", "slack.post", "teams.update").
	Kind string `json:"kind"`
	// Payload is opaque to the store.
	Payload     []byte    `json:"payload,omitempty"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	// LeaseUntil marks an entry claimed by a worker until then.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// IdentityLink ties a chat account (platform, workspace, platform user) to
// the identity the company's IdP vouched for. A vote from that chat account
// counts only through this identity (docs/architecture.md, invariant 2). A link made in one
// workspace never authorizes in another: the workspace is part of the key.
type IdentityLink struct {
	Platform     string `json:"platform"`
	Workspace    string `json:"workspace"`
	PlatformUser string `json:"platform_user"`

	Issuer            string   `json:"issuer"`
	Subject           string   `json:"subject"`
	Email             string   `json:"email,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// EmailUnverified: the IdP did not vouch for Email when it last sent
	// it; false for links made before signoff recorded this.
	EmailUnverified bool `json:"email_unverified,omitempty"`

	// LinkedAt is when the browser sign-in made the link; VerifiedAt when the
	// IdP last confirmed the identity and groups (a sign-in or a refresh).
	LinkedAt   time.Time `json:"linked_at"`
	VerifiedAt time.Time `json:"verified_at"`
	// AuthTime, ACR and AMR describe the last interactive sign-in.
	AuthTime time.Time `json:"auth_time,omitzero"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
	// RefreshToken is sealed by the oidc package (AES-256-GCM); the store
	// never sees it in clear.
	RefreshToken []byte `json:"refresh_token,omitempty"`
	// Stale marks a link the IdP no longer backs (refresh refused); the
	// person must link again.
	Stale       bool   `json:"stale,omitempty"`
	StaleReason string `json:"stale_reason,omitempty"`
	// PersonClaims holds the values of the ID token claims the operator
	// listed in idp.person_claims (e.g. a GitHub login kept in a custom
	// attribute), so that self-approval can be judged across identity
	// systems.
	PersonClaims map[string][]string `json:"person_claims,omitempty"`
	// MatchedBy says how signoff proved that the chat account and the IdP
	// identity belong to the same person when the link was made: "email"
	// (the chat platform's email equals the IdP's verified email), "oid"
	// (the Teams account's Entra object id equals the IdP's oid claim) or
	// "none" (idp.link_match: none). Empty on links made before signoff
	// checked this; they are checked at their next use.
	MatchedBy string `json:"matched_by,omitempty"`
	// Conversation is where the account clicked when it linked (a Teams
	// conversation id): later notices to the account go there.
	Conversation string `json:"conversation,omitempty"`
}

// LinkAttempt is a pending browser sign-in: an account link or a step-up
// for one vote. Its ID is single use and expires.
type LinkAttempt struct {
	// ID is unguessable (at least 128 random bits) and is the key.
	ID string `json:"id"`
	// Purpose is "link" or "step_up".
	Purpose      string `json:"purpose"`
	Platform     string `json:"platform"`
	Workspace    string `json:"workspace"`
	PlatformUser string `json:"platform_user"`
	// RequestID and Decision say which vote a step-up sign-in completes.
	RequestID string `json:"request_id,omitempty"`
	Decision  string `json:"decision,omitempty"`
	// Conversation is where the chat account clicked (a Teams conversation
	// id): the platform's member lookup needs it to confirm who owns the
	// account.
	Conversation string `json:"conversation,omitempty"`
	// State, Nonce and PKCEVerifier are set when the browser starts the
	// flow; BrowserBinding is a digest of the cookie that ties the attempt
	// to that browser.
	State          string    `json:"state,omitempty"`
	Nonce          string    `json:"nonce,omitempty"`
	PKCEVerifier   string    `json:"pkce_verifier,omitempty"`
	BrowserBinding string    `json:"browser_binding,omitempty"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// LinkFilter selects identity links for listing. Zero values match all.
type LinkFilter struct {
	Platform  string
	Workspace string
	// Subject selects the links of one IdP identity.
	Subject string
}

// Conversation is what a chat platform told signoff about a place it can
// post to: Teams gives each conversation a service URL (learned from
// installation and conversationUpdate activities) that later posts must
// use.
type Conversation struct {
	Platform string `json:"platform"`
	// ID is the Slack channel id or the Teams conversation id.
	ID         string    `json:"id"`
	ServiceURL string    `json:"service_url,omitempty"`
	TenantID   string    `json:"tenant_id,omitempty"`
	Name       string    `json:"name,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Nonce is a value that may be used once within its scope until it
// expires, such as the jti of a Security Event Token from one issuer.
// Recording it (Tx.RecordNonce) in the same transaction as the change it
// allows makes a replay fail on every replica and after a restart, for as
// long as the nonce is kept.
type Nonce struct {
	// Scope is what the value is unique within (e.g. "ssf" and the issuer).
	Scope string `json:"scope"`
	// Value is the one-time value.
	Value string `json:"value"`
	// ExpiresAt is when the nonce may be forgotten: a use after it is no
	// longer refused by the store, so the caller must refuse such uses
	// itself (e.g. by the age of what carries the value).
	ExpiresAt time.Time `json:"expires_at"`
}

// RequestFilter selects requests for listing. Zero values match everything.
type RequestFilter struct {
	States []State
	// Action selects the requests of one action; "" all of them.
	Action string
	// Limit caps the result (after the other filters); 0 means no cap.
	Limit int
}

// ReadTx is a consistent read-only view of the store.
type ReadTx interface {
	// Request returns the request with the given id, or ErrNotFound.
	Request(id string) (Request, error)
	// RequestByIdempotencyScope returns the request created with that scope,
	// or ErrNotFound.
	RequestByIdempotencyScope(scope string) (Request, error)
	// Requests lists requests matching f, newest first.
	Requests(f RequestFilter) ([]Request, error)
	// PendingExpiring returns up to limit pending requests whose ExpiresAt
	// is at or before t, soonest first.
	PendingExpiring(t time.Time, limit int) ([]Request, error)
	// PendingOf returns the pending requests of one requester (issuer and
	// subject, compared exactly), oldest first, without reading anyone
	// else's: the per-requester cap is checked in every create.
	PendingOf(issuer, subject string) ([]Request, error)
	// AuditHead returns the last audit record's sequence number and hash;
	// (0, "") when the log is empty.
	AuditHead() (seq uint64, hash string, err error)
	// Outbox returns one outbox entry, or ErrNotFound.
	Outbox(id uint64) (OutboxEntry, error)
	// DueOutbox returns up to limit entries whose Kind starts with
	// kindPrefix ("" for all) and whose NextAttempt and LeaseUntil are both
	// at or before now, in ID order. Filtering happens in the store, so a
	// backlog of one kind never hides due entries of another.
	DueOutbox(now time.Time, kindPrefix string, limit int) ([]OutboxEntry, error)
	// Link returns the link of one chat account, or ErrNotFound.
	Link(platform, workspace, platformUser string) (IdentityLink, error)
	// Links lists links matching f, ordered by platform, workspace, user.
	Links(f LinkFilter) ([]IdentityLink, error)
	// LinkAttempt returns a pending sign-in by id, or ErrNotFound.
	LinkAttempt(id string) (LinkAttempt, error)
	// Conversation returns what is known of a platform's conversation, or
	// ErrNotFound.
	Conversation(platform, id string) (Conversation, error)
	// Conversations lists the conversations of one platform ("" for all),
	// ordered by platform and id.
	Conversations(platform string) ([]Conversation, error)
}

// Tx is a read-write transaction. Nothing written through it is visible to
// anyone else until the Update function returns nil and the commit succeeds.
type Tx interface {
	ReadTx
	// CreateRequest stores a new request with Version 1. A request with the
	// same ID, or a non-empty IdempotencyScope already taken, is
	// ErrAlreadyExists.
	CreateRequest(r Request) error
	// UpdateRequest replaces a request if the stored Version equals
	// r.Version (else ErrConflict), storing it with Version+1.
	UpdateRequest(r Request) error
	// AppendAudit adds the audit record with the given sequence number and
	// hash. seq must be AuditHead()+1 (else ErrConflict). The record bytes are
	// stored exactly as given.
	AppendAudit(seq uint64, hash string, record []byte) error
	// Enqueue adds an outbox entry and returns it with its assigned ID.
	Enqueue(e OutboxEntry) (OutboxEntry, error)
	// PutOutbox replaces an existing outbox entry (attempts, next attempt,
	// lease); ErrNotFound if it was deleted.
	PutOutbox(e OutboxEntry) error
	// DeleteOutbox removes a delivered entry; ErrNotFound if absent.
	DeleteOutbox(id uint64) error
	// PutLink creates or replaces the link of l's chat account.
	PutLink(l IdentityLink) error
	// DeleteLink removes a chat account's link; ErrNotFound if absent.
	DeleteLink(platform, workspace, platformUser string) error
	// CreateLinkAttempt stores a new attempt; ErrAlreadyExists if the id is
	// taken.
	CreateLinkAttempt(a LinkAttempt) error
	// PutLinkAttempt replaces an existing attempt; ErrNotFound if absent.
	PutLinkAttempt(a LinkAttempt) error
	// DeleteLinkAttempt removes an attempt (it is used up); ErrNotFound if
	// absent.
	DeleteLinkAttempt(id string) error
	// DeleteExpiredLinkAttempts removes attempts whose ExpiresAt is before t
	// and returns how many.
	DeleteExpiredLinkAttempts(t time.Time) (int, error)
	// PutConversation creates or replaces a conversation reference.
	PutConversation(c Conversation) error
	// RecordNonce stores n and reports true, unless a nonce with the same
	// Scope and Value is stored whose ExpiresAt is after now: then it
	// stores nothing and reports false (a replay). An expired duplicate is
	// replaced. Scope and Value must not be empty.
	RecordNonce(n Nonce, now time.Time) (bool, error)
	// DeleteExpiredNonces removes up to limit nonces whose ExpiresAt is
	// before t, soonest first, and returns how many.
	DeleteExpiredNonces(t time.Time, limit int) (int, error)
}

// Store is a durable backend. Implementations are safe for concurrent use.
type Store interface {
	// Update runs fn in a read-write transaction and commits durably if it
	// returns nil. fn may run more than once (see the package doc).
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(ReadTx) error) error
	// AuditRecords calls fn with every audit record whose sequence number is
	// at least from, in order, without holding one long transaction.
	// Returning an error from fn stops the walk with that error.
	AuditRecords(ctx context.Context, from uint64, fn func(seq uint64, record []byte) error) error
	// Ping reports whether the store is open and usable.
	Ping(ctx context.Context) error
	// Close releases the store; it waits for commits in flight.
	Close() error
}
