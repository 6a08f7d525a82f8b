// Package chatflow is the path a verified chat click takes to a vote, the
// same for every chat platform: the clicking account's linked identity,
// the action's step-up and reason rules, the vote, and an Outcome that
// says what happened. The chat adapters (bot/slackbot, bot/teamsbot and
// the dev console's chat users) verify the callback, parse it into a
// Click and render the Outcome in their own wording and markup; the rules
// live here once. A callback an adapter refuses at verification, before
// any of that, is refused for a RejectReason and answered by WriteError;
// the reasons the platforms share are declared here too, as is the Mux
// every adapter mounts its endpoints on.
//
// A chat account alone never authorizes: a click reaches
// approvals.Service.Vote only under the identity Resolver.Resolve vouches
// for, and Vote decides who may approve (docs/architecture.md,
// invariant 2).
package chatflow

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Resolver ties a chat account to the IdP identity its votes count under.
// *linkflow.Linker implements it.
type Resolver interface {
	// Resolve returns the linked identity, or a *linkflow.LinkRequiredError
	// (with a sign-in URL, empty when sign-in links are rate-limited) when
	// the account is not linked or its link is stale.
	Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error)
	// BeginStepUp returns a single-use sign-in URL; when the sign-in
	// completes, the resolver casts decision on requestID for the account.
	BeginStepUp(ctx context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error)
}

// StoredLinks is implemented by a Resolver whose identities are the links
// kept in the approvals store (the account-link flow's Linker, and
// wrappers around it). For such a resolver the flow has the vote read the
// link again in its own transaction (approvals.VoteInput.LinkedAccount),
// so a revoke that commits between Resolve and the vote still stops it.
type StoredLinks interface {
	ResolvesStoredLinks() bool
}

var _ StoredLinks = (*linkflow.Linker)(nil)

// AccountResolver is what a chat adapter needs of the account-link flow:
// a Resolver for clicks (whose Resolve may also fail with an error
// wrapping linkflow.ErrIdPUnavailable when the IdP could not be asked),
// and sign-in links of its own. *linkflow.Linker implements it.
type AccountResolver interface {
	Resolver
	// Begin returns a single-use sign-in URL that links the account.
	Begin(ctx context.Context, p linkflow.PlatformUser) (string, error)
}

// Mux is where a chat adapter's Register mounts its callback endpoints:
// *http.ServeMux and *bot.Server both fit.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Options configure a Flow. Service and Resolver are required.
type Options struct {
	Service  *approvals.Service
	Resolver Resolver
	// StepUpFirst: a click on a pending request whose action has a
	// step-up rule is answered with a step-up sign-in link before any
	// vote, and the link casts the vote once the sign-in completes (the
	// chat platforms). Without it the vote is tried first, and a step-up
	// link is made only when Vote refuses the vote for want of a fresh
	// sign-in (the dev console).
	StepUpFirst bool
	// ReasonDialog: the platform asks for the reason in a dialog of its
	// own after the click (Slack), so a click without a reason on an
	// action that wants one is answered with ReasonNeeded. Without it the
	// reason comes with the click, and Vote refuses a missing one.
	ReasonDialog bool
	// Later runs work the clicker need not wait for (the audit record of
	// a click from an account without a usable link), after the answer.
	// nil runs it before Click returns.
	Later func(fn func(ctx context.Context)) bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Flow runs clicks. It is safe for concurrent use.
type Flow struct {
	opts Options
	log  *slog.Logger
}

// New returns a Flow.
func New(opts Options) *Flow {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Flow{opts: opts, log: log}
}

// Click is one vote attempt, parsed from a verified callback.
type Click struct {
	// Account is the clicking chat account, with the conversation it
	// clicked in.
	Account linkflow.PlatformUser
	// Source names the click in the vote and in audit records.
	Source    approvals.Source
	RequestID string
	Decision  storage.Decision
	// Reason is the approver's comment ("" when none came with the click).
	Reason string
}

// Kind is what a click came to.
type Kind int

const (
	// Counted: the vote was added; Outcome.Request is the request after
	// it and Outcome.Approvals its approve votes.
	Counted Kind = iota + 1
	// Duplicate: the approver had already cast this same vote; nothing
	// changed.
	Duplicate
	// Refused: Vote refused the vote (Outcome.Refusal says why, and it is
	// in the audit log).
	Refused
	// SignInNeeded: the account is not linked or its link is stale.
	// Outcome.Message says so and Outcome.SignInURL is a sign-in link
	// meant for the clicker alone (empty when sign-in links are
	// rate-limited). The click is in the audit log (sampled).
	SignInNeeded
	// StepUpNeeded: the action wants a fresh sign-in; Outcome.SignInURL
	// casts the vote once it completes. Outcome.Refusal is Vote's refusal
	// when the vote was tried first (without Options.StepUpFirst).
	StepUpNeeded
	// ReasonNeeded: the action wants a reason the click did not carry and
	// the platform asks for it (Options.ReasonDialog); Outcome.Request and
	// Outcome.Action are what the dialog shows. Nothing was counted.
	ReasonNeeded
	// StepUpAndReason: the action wants both a reason and a fresh
	// sign-in, which a chat vote cannot carry together; Outcome.Action
	// names it. Nothing was counted.
	StepUpAndReason
	// IdentityUnavailable: the account's identity could not be
	// confirmed (the IdP or the resolver failed; Outcome.Err says how).
	// Outcome.Refusal is set when this happened making a step-up link
	// after Vote refused the vote for want of one.
	IdentityUnavailable
	// Failed: the vote could not be recorded (Outcome.Err).
	Failed
)

// Outcome is what a click did, for the adapter to render.
type Outcome struct {
	Kind Kind
	// Approver is the identity the click counted under, once resolved.
	Approver oidc.Identity
	// Request is the request after the vote (Counted, Duplicate) or as
	// read before it (ReasonNeeded, StepUpAndReason).
	Request storage.Request
	// Approvals counts the approve votes on Request (Counted).
	Approvals int
	// Action is the request's action (ReasonNeeded, StepUpAndReason).
	Action *policy.Action
	// Refusal is Vote's refusal (Refused; see StepUpNeeded and
	// IdentityUnavailable).
	Refusal *approvals.RefusalError
	// Message is the resolver's explanation (SignInNeeded).
	Message string
	// SignInURL is a sign-in link for the clicker alone (SignInNeeded,
	// StepUpNeeded).
	SignInURL string
	// Err is the cause (IdentityUnavailable, Failed).
	Err error
}

// Click runs a click: it applies the action's step-up and reason rules
// the platform asks for (see Options), then Cast. Unknown or decided
// requests go through Vote too: approvals refuses them and writes the
// refusal to the audit log.
func (f *Flow) Click(ctx context.Context, c Click) Outcome {
	if f.opts.StepUpFirst || f.opts.ReasonDialog {
		if o, ok := f.beforeVote(ctx, c); ok {
			return o
		}
	}
	return f.Cast(ctx, c)
}

// beforeVote answers a click on a pending request whose action wants a
// fresh sign-in or a reason first; ok is false when the click goes on to
// the vote.
func (f *Flow) beforeVote(ctx context.Context, c Click) (o Outcome, ok bool) {
	req, err := f.opts.Service.Get(ctx, c.RequestID)
	if err != nil || req.State != storage.StatePending {
		return Outcome{}, false
	}
	action, err := f.opts.Service.Policy().Action(req.Action)
	if err != nil || action == nil {
		return Outcome{}, false
	}
	needsReason := NeedsReason(action, c.Decision)
	if f.opts.StepUpFirst && action.StepUp != nil {
		if needsReason {
			return Outcome{Kind: StepUpAndReason, Request: req, Action: action}, true
		}
		return f.stepUp(ctx, c, nil), true
	}
	if f.opts.ReasonDialog && needsReason && c.Reason == "" {
		return Outcome{Kind: ReasonNeeded, Request: req, Action: action}, true
	}
	return Outcome{}, false
}

// NeedsReason reports whether action a wants a reason for decision d.
func NeedsReason(a *policy.Action, d storage.Decision) bool {
	return (d == storage.DecisionDeny && a.RequireDenyReason) || (d == storage.DecisionApprove && a.RequireApproveReason)
}

// Cast resolves the clicking account to its linked identity and votes,
// without the rules Click applies first: for a vote whose reason dialog
// just completed (the rules were applied when it opened).
func (f *Flow) Cast(ctx context.Context, c Click) Outcome {
	id, err := f.opts.Resolver.Resolve(ctx, c.Account)
	if err != nil {
		return f.identityProblem(ctx, c, err)
	}
	in := approvals.VoteInput{
		RequestID: c.RequestID, Approver: id, Source: c.Source, Decision: c.Decision, Reason: c.Reason,
	}
	if sl, ok := f.opts.Resolver.(StoredLinks); ok && sl.ResolvesStoredLinks() {
		acct := c.Account.Account()
		in.LinkedAccount = &acct
	}
	res, err := f.opts.Service.Vote(ctx, in)
	var refused *approvals.RefusalError
	switch {
	case errors.As(err, &refused):
		if !f.opts.StepUpFirst && errors.Is(err, approvals.ErrStepUpRequired) {
			o := f.stepUp(ctx, c, refused)
			o.Approver = id
			return o
		}
		return Outcome{Kind: Refused, Approver: id, Refusal: refused}
	case err != nil:
		return Outcome{Kind: Failed, Approver: id, Err: err}
	case res.Duplicate:
		return Outcome{Kind: Duplicate, Approver: id, Request: res.Request}
	}
	return Outcome{Kind: Counted, Approver: id, Request: res.Request, Approvals: cards.Approvals(res.Request)}
}

// stepUp makes a step-up sign-in link; refused is the vote's refusal that
// asked for it, if any.
func (f *Flow) stepUp(ctx context.Context, c Click, refused *approvals.RefusalError) Outcome {
	u, err := f.opts.Resolver.BeginStepUp(ctx, c.Account, c.RequestID, string(c.Decision))
	if err != nil {
		o := f.identityProblem(ctx, c, err)
		if o.Kind == IdentityUnavailable {
			o.Refusal = refused
		}
		return o
	}
	return Outcome{Kind: StepUpNeeded, SignInURL: u, Refusal: refused}
}

// identityProblem maps a resolver's error to the outcome. A link problem
// (*linkflow.LinkRequiredError) is written to the audit log as vote.rejected,
// sampled (approvals.Service.RecordUnverifiedVote), through Options.Later.
func (f *Flow) identityProblem(ctx context.Context, c Click, err error) Outcome {
	var lr *linkflow.LinkRequiredError
	if !errors.As(err, &lr) {
		return Outcome{Kind: IdentityUnavailable, Err: err}
	}
	reason := approvals.ReasonStaleIdentity
	if lr.Reason == linkflow.LinkReasonNotLinked {
		reason = approvals.ReasonNotLinked
	}
	uv := approvals.UnverifiedVote{
		RequestID: c.RequestID, Source: c.Source, Decision: c.Decision,
		Reason: reason, Detail: string(lr.Reason), Message: lr.Message,
	}
	record := func(ctx context.Context) {
		if aerr := f.opts.Service.RecordUnverifiedVote(ctx, uv); aerr != nil {
			f.log.Error("could not audit a vote from an unlinked account", "platform", c.Source.Platform, "request", c.RequestID, "err", aerr)
		}
	}
	// Later refuses once shutdown began: the record is then written now,
	// not dropped.
	if f.opts.Later == nil || !f.opts.Later(record) {
		record(ctx)
	}
	return Outcome{Kind: SignInNeeded, Message: lr.Message, SignInURL: lr.URL}
}
