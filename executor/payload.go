package executor

import (
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// DecisionApproved is the only decision a webhook is called for.
const DecisionApproved = "approved"

// Payload is the JSON body POSTed to an action's on_approve webhook. Its
// field names are part of the webhook contract (docs/webhooks.md); fields
// may be added, none renamed. Params, Links and Approvers are always
// present (possibly empty) so receivers need not test for null.
type Payload struct {
	// ID is the request id; it is also sent as the Idempotency-Key header.
	ID     string            `json:"id"`
	Action string            `json:"action"`
	Params map[string]string `json:"params"`
	Reason string            `json:"reason"`
	Links  []Link            `json:"links"`
	// Requester is the verified CI identity that asked.
	Requester Requester `json:"requester"`
	// Decision is always "approved".
	Decision  string    `json:"decision"`
	DecidedAt time.Time `json:"decided_at"`
	// Approvers are the people whose approve votes counted, in vote order.
	Approvers    []Approver `json:"approvers"`
	MinApprovals int        `json:"min_approvals"`
	// Attestation is the request's signed approval attestation, a compact
	// JWT (docs/attestations.md): the same token the requester reads. The
	// webhook signature proves the call came from signoff; the attestation
	// proves what was approved to anyone holding signoff's published keys,
	// so the receiver can pass it on. Absent when signoff signs none.
	Attestation string `json:"attestation,omitempty"`
}

// Link is a reference the requester attached to the request.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Requester is who asked: the configured issuer name, the token's subject
// and, when the issuer provides them, the person behind it.
type Requester struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Person  string `json:"person"`
	Name    string `json:"name"`
	Email   string `json:"email"`
}

// Approver is one approve vote: the approver's IdP subject, name and email,
// the chat platform they clicked on and when.
type Approver struct {
	Subject  string    `json:"subject"`
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Platform string    `json:"platform"`
	Time     time.Time `json:"time"`
}

// NewPayload builds the webhook body for an approved request. It depends
// only on the stored request, so every attempt sends the same bytes.
func NewPayload(r storage.Request) Payload {
	p := Payload{
		ID:     r.ID,
		Action: r.Action,
		Params: map[string]string{},
		Reason: r.Reason,
		Links:  []Link{},
		Requester: Requester{
			Issuer: r.Requester.Issuer, Subject: r.Requester.Subject, Person: r.Requester.Person,
			Name: r.Requester.Name, Email: r.Requester.Email,
		},
		Decision:     DecisionApproved,
		DecidedAt:    r.DecidedAt.UTC(),
		Approvers:    []Approver{},
		MinApprovals: r.MinApprovals,
		Attestation:  r.Attestation,
	}
	for k, v := range r.Params {
		p.Params[k] = v
	}
	for _, l := range r.Links {
		p.Links = append(p.Links, Link{Title: l.Title, URL: l.URL})
	}
	for _, v := range r.Votes {
		if v.Decision != storage.DecisionApprove {
			continue
		}
		p.Approvers = append(p.Approvers, Approver{
			Subject: v.Approver.Subject, Name: v.Approver.Name, Email: v.Approver.Email,
			Platform: v.Approver.Platform, Time: v.Time.UTC(),
		})
	}
	return p
}
