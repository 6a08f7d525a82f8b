package approvals

import "github.com/signoff-dev/signoff/storage"

// The core's view of a request, as the edges (the chat adapters, the card
// engine) read and render it. They are the stored types under the names
// the lifecycle uses, so that an adapter reaches state only through the
// Service and never imports storage (docs/architecture.md, "One process,
// one direction of dependencies"). Only the Service changes a request; a
// value an adapter holds is a copy to render.
type (
	// Request is the core's view of one approval request and everything
	// decided about it (storage.Request).
	Request = storage.Request
	// Requester is the verified identity behind a request.
	Requester = storage.Requester
	// Approver is the identity behind a vote and where it clicked.
	Approver = storage.Approver
	// Vote is one approver's counted vote.
	Vote = storage.Vote
	// Link is a reference the requester attached (a CI run, a diff).
	Link = storage.Link
	// Execution is the run of an approved request's action.
	Execution = storage.Execution
	// Card is where a request was rendered on a chat platform.
	Card = storage.Card
	// State is where a request stands in its lifecycle.
	State = storage.State
	// Decision is an approver's vote: DecisionApprove or DecisionDeny.
	Decision = storage.Decision
	// ExecutionStatus is where the run of an approved action stands.
	ExecutionStatus = storage.ExecutionStatus
	// RequestFilter selects requests for List.
	RequestFilter = storage.RequestFilter
	// Conversation is what a chat platform told signoff about a place it
	// can post to (Teams: the service URL of a conversation); see
	// Service.RememberConversations and Service.Conversation.
	Conversation = storage.Conversation
)

// The request states. A request leaves StatePending exactly once.
const (
	StatePending   = storage.StatePending
	StateApproved  = storage.StateApproved
	StateDenied    = storage.StateDenied
	StateExpired   = storage.StateExpired
	StateCancelled = storage.StateCancelled
)

// The two votes an approver can cast.
const (
	DecisionApprove = storage.DecisionApprove
	DecisionDeny    = storage.DecisionDeny
)

// The states of an approved action's run.
const (
	ExecutionPending   = storage.ExecutionPending
	ExecutionSucceeded = storage.ExecutionSucceeded
	ExecutionFailed    = storage.ExecutionFailed
)
