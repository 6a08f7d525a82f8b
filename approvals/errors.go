package approvals

import (
	"errors"
	"fmt"
)

// Sentinel errors for refusals. Every refusal the service returns wraps one
// of them (test with errors.Is) inside a *RefusalError that carries a
// message meant for the person refused.
var (
	// ErrUnknownRequest: no request has that id.
	ErrUnknownRequest = errors.New("unknown request")
	// ErrNotPending: the request was already decided, expired or cancelled.
	ErrNotPending = errors.New("request is no longer pending")
	// ErrNotEligible: the approver holds none of the approver groups and is
	// not named as an approver.
	ErrNotEligible = errors.New("not eligible to approve")
	// ErrSelfApproval: the approver is the person who asked.
	ErrSelfApproval = errors.New("self-approval is not allowed")
	// ErrStaleIdentity: the approver's identity was last verified with the
	// IdP too long ago; they must re-link (or be refreshed) first.
	ErrStaleIdentity = errors.New("approver identity is stale")
	// ErrVoteChanged: the approver already voted the other way.
	ErrVoteChanged = errors.New("vote already cast")
	// ErrReasonRequired: the action demands a reason for this vote.
	ErrReasonRequired = errors.New("reason required")
	// ErrStepUpRequired: the action demands a recent (MFA) sign-in at the IdP.
	ErrStepUpRequired = errors.New("step-up sign-in required")
	// ErrForbidden: the caller may not do this to the request (e.g. cancel
	// someone else's request).
	ErrForbidden = errors.New("forbidden")
	// ErrIdempotencyConflict: the idempotency key was used before with a
	// different request body.
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
	// ErrInvalid: the request input is malformed (too long, bad link URL).
	ErrInvalid = errors.New("invalid request")
	// ErrTooManyPending: the requester already has as many pending
	// requests as Options.PendingPerRequester allows.
	ErrTooManyPending = errors.New("too many pending requests")
)

// Reason is why the service refused an operation: one of the Reason…
// constants below, stable across releases. The audit
// log's vote.rejected records carry it as a string; the HTTP API maps each
// to its own error code (bot.Server.serviceError). Nothing recognises a
// refusal by its message.
type Reason string

// Refusal reasons, stable strings written to the audit log's vote.rejected
// records and returned by RefusalError.Reason.
const (
	ReasonUnknownRequest  Reason = "unknown_request"
	ReasonNotPending      Reason = "not_pending"
	ReasonNotEligible     Reason = "not_eligible"
	ReasonSelfApproval    Reason = "self_approval"
	ReasonStaleIdentity   Reason = "stale_identity"
	ReasonVoteChanged     Reason = "vote_changed"
	ReasonReasonRequired  Reason = "reason_required"
	ReasonStepUpRequired  Reason = "step_up_required"
	ReasonForbidden       Reason = "forbidden"
	ReasonIdempotencyConf Reason = "conflict"
	ReasonInvalid         Reason = "invalid_request"
	ReasonTooManyPending  Reason = "too_many_pending"
	// ReasonNotLinked is the vote.rejected reason for a click from a chat
	// account that is not linked to an IdP identity (UnverifiedVote), and
	// of the ErrNotLinked refusal of a vote whose link went away before it
	// was stored.
	ReasonNotLinked Reason = "not_linked"
)

// RefusalError is a refused operation: why (a stable Reason and a sentinel
// to test with errors.Is) and what to tell the person.
type RefusalError struct {
	Reason  Reason
	Message string
	err     error
}

func (e *RefusalError) Error() string { return e.Message }

// Unwrap returns the sentinel error (ErrNotEligible, …).
func (e *RefusalError) Unwrap() error { return e.err }

// refusedOr returns the *RefusalError err carries as it is (its message is
// for the person refused), or err wrapped with what failed.
func refusedOr(err error, format string, args ...any) error {
	var refused *RefusalError
	if errors.As(err, &refused) {
		return refused
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func refusal(sentinel error, reason Reason, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: reason, Message: fmt.Sprintf(format, args...), err: sentinel}
}
