package bot

import (
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// RequestView is a request as the HTTP API returns it (GET, POST and cancel
// answers, and `signoff request --output json`). Field names are part of the
// API contract.
type RequestView struct {
	ID           string            `json:"id"`
	Action       string            `json:"action"`
	Params       map[string]string `json:"params,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	Links        []storage.Link    `json:"links,omitempty"`
	State        storage.State     `json:"state"`
	Requester    RequesterView     `json:"requester"`
	MinApprovals int               `json:"min_approvals"`
	// Approvals counts the approve votes so far; Remaining is how many more
	// the request needs while pending.
	Approvals int            `json:"approvals"`
	Remaining int            `json:"remaining"`
	Votes     []VoteView     `json:"votes,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`
	DecidedAt *time.Time     `json:"decided_at,omitempty"`
	Execution *ExecutionView `json:"execution,omitempty"`
	// URL is where a person can see the request (the dev console in dev
	// mode), when known.
	URL string `json:"url,omitempty"`
	// DecidedBy says why the request left pending: "quorum", "deny",
	// "requester" or "admin" (a cancel), "expiry".
	DecidedBy string `json:"decided_by,omitempty"`
}

// RequesterView is who asked.
type RequesterView struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Person  string `json:"person,omitempty"`
	Name    string `json:"name,omitempty"`
}

// VoteView is one counted vote.
type VoteView struct {
	Decision storage.Decision `json:"decision"`
	Name     string           `json:"name,omitempty"`
	Email    string           `json:"email,omitempty"`
	Subject  string           `json:"subject"`
	Platform string           `json:"platform,omitempty"`
	Time     time.Time        `json:"time"`
	Reason   string           `json:"reason,omitempty"`
}

// ExecutionView is the state of the approved action's run.
type ExecutionView struct {
	Status    storage.ExecutionStatus `json:"status"`
	Attempts  int                     `json:"attempts"`
	LastError string                  `json:"last_error,omitempty"`
}

// CreateRequestBody is the body of POST /v1/requests.
type CreateRequestBody struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Links  []storage.Link    `json:"links,omitempty"`
}

// NewRequestView renders a stored request for the API.
func NewRequestView(r storage.Request, url string) RequestView {
	v := RequestView{
		ID: r.ID, Action: r.Action, Params: r.Params, Reason: r.Reason, Links: r.Links, State: r.State,
		Requester:    RequesterView{Issuer: r.Requester.Issuer, Subject: r.Requester.Subject, Person: r.Requester.Person, Name: r.Requester.Name},
		MinApprovals: r.MinApprovals, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, URL: url, DecidedBy: r.DecidedBy,
	}
	for _, vote := range r.Votes {
		if vote.Decision == storage.DecisionApprove {
			v.Approvals++
		}
		v.Votes = append(v.Votes, VoteView{
			Decision: vote.Decision, Name: vote.Approver.Name, Email: vote.Approver.Email, Subject: vote.Approver.Subject,
			Platform: vote.Approver.Platform, Time: vote.Time, Reason: vote.Reason,
		})
	}
	if r.State == storage.StatePending {
		v.Remaining = max(r.MinApprovals-v.Approvals, 0)
	}
	if !r.DecidedAt.IsZero() {
		t := r.DecidedAt
		v.DecidedAt = &t
	}
	if r.Execution != nil {
		v.Execution = &ExecutionView{Status: r.Execution.Status, Attempts: r.Execution.Attempts, LastError: r.Execution.LastError}
	}
	return v
}
