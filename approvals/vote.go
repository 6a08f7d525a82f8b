package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Source says where a vote was cast: the chat platform, the workspace or
// tenant, the platform's user id and the callback or event id.
type Source struct {
	// Platform is "slack", "teams" or "dev".
	Platform string
	// Workspace is the Slack team id or the Teams tenant id.
	Workspace string
	// PlatformUser is the Slack user id or the Teams aadObjectId.
	PlatformUser string
	// CallbackID is the platform's id for this click, for the audit log.
	CallbackID string
}

// account is the chat account the click came from.
func (s Source) account() identity.Account {
	return identity.Account{Platform: s.Platform, Workspace: s.Workspace, User: s.PlatformUser}
}

// VoteInput is one click by an approver whose chat account the adapter has
// already mapped to a linked, verified identity.
type VoteInput struct {
	RequestID string
	Approver  identity.Identity
	Source    Source
	Decision  storage.Decision
	// Reason is the approver's comment, required by some actions.
	Reason string
	// LinkedAccount, when set, is the chat account whose stored link
	// Approver was read from (the account-link flow's Resolve). The vote's
	// transaction then reads that link again and refuses the vote
	// (ErrNotLinked) unless it is still there, not stale, and names the
	// same identity, and judges the vote on the link as it reads it (its
	// groups now): a revoke, an unlink, a relink or a refresh that took
	// groups away, committed while the click was on its way, cannot be
	// outrun by it.
	LinkedAccount *identity.Account
}

// VoteResult says what a vote did.
type VoteResult struct {
	// Request as it stands after the vote.
	Request storage.Request
	// Counted is true when this call added the vote.
	Counted bool
	// Duplicate is true when the approver had already cast this same vote
	// (a double click or a retried callback): nothing changed.
	Duplicate bool
	// Decided is true when this vote decided the request.
	Decided bool
}

// Vote records an approver's vote and decides the request when the vote
// reaches quorum (approved) or is a deny (denied). One transaction holds the
// vote, the decision, their audit records, the execution and the card
// updates. A refusal is a *RefusalError (test its sentinel with errors.Is);
// it is written to the audit log as vote.rejected with its reason, sampled
// as refused clicks from unlinked accounts are (RecordUnverifiedVote): at
// most CallbackRejectedPerMinute a minute per platform and reason, the
// ones left out counted in the next record's "dropped". Metrics count
// every refusal.
func (s *Service) Vote(ctx context.Context, in VoteInput) (VoteResult, error) {
	if in.Decision != storage.DecisionApprove && in.Decision != storage.DecisionDeny {
		s.metrics.voteRefused(ReasonInvalid)
		return VoteResult{}, refusal(ErrInvalid, ReasonInvalid, "decision %q is neither approve nor deny", in.Decision)
	}
	if in.Approver.Issuer == "" || in.Approver.Subject == "" {
		s.metrics.voteRefused(ReasonInvalid)
		return VoteResult{}, refusal(ErrInvalid, ReasonInvalid, "the approver has no verified identity; link the chat account first")
	}
	var (
		res     VoteResult
		refused *RefusalError
		expired bool // this transaction expired the request
		sample  rejectionSample
	)
	err := s.update(ctx, func(tx storage.Tx) error {
		// in is this run's own copy: with LinkedAccount its approver
		// becomes the link as this transaction reads it, and a run again
		// (the store may run a function twice) starts from the caller's.
		in := in
		res, refused, expired = VoteResult{}, nil, false
		now := s.clock.Now().UTC()
		r, err := tx.Request(in.RequestID)
		if errors.Is(err, storage.ErrNotFound) {
			refused = refusal(ErrUnknownRequest, ReasonUnknownRequest, "no request has id %q", in.RequestID)
			return s.appendRejected(tx, &sample, in, storage.Request{ID: in.RequestID}, refused, now)
		}
		if err != nil {
			return err
		}
		res.Request = r
		if prev := findVote(r, in.Approver); prev != nil && prev.Decision == in.Decision {
			res.Duplicate = true
			return nil
		}
		if r.State == storage.StatePending && !now.Before(r.ExpiresAt) && !IsBreakGlassReview(r) {
			// The expiry loop has not reached it yet; expire it now so the
			// vote cannot land after the deadline.
			if r, err = s.expireInTx(tx, r, now); err != nil {
				return err
			}
			res.Request, expired = r, true
		}
		if in.LinkedAccount != nil {
			var current identity.Identity
			if current, refused, err = linkStillHolds(tx, *in.LinkedAccount, in.Approver); err != nil {
				return err
			}
			if refused == nil {
				// Judge and record the vote on the link as it stands now:
				// groups the IdP took away since Resolve read it count no
				// more.
				in.Approver = current
			}
		}
		if refused == nil {
			refused = s.checkVote(r, in, now)
		}
		if refused != nil {
			return s.appendRejected(tx, &sample, in, r, refused, now)
		}
		action, err := s.policy.Action(r.Action)
		if err != nil {
			return fmt.Errorf("request %s names action %s, which is no longer declared: %w", r.ID, r.Action, err)
		}
		r.Votes = append(r.Votes, storage.Vote{
			Approver: identity.NewApprover(in.Source.account(), in.Approver),
			Decision: in.Decision,
			Time:     now,
			Source:   in.Source.CallbackID,
			Reason:   in.Reason,
		})
		if err := s.appendAudit(tx, voteRecord(in, r, now)); err != nil {
			return err
		}
		if d, ok := votesDecide(action, r, in); ok {
			if d.state == storage.StateApproved && action.OnApprove != nil {
				r.Execution = &storage.Execution{Status: storage.ExecutionPending, UpdatedAt: now}
				if err := s.queueExecution(tx, r); err != nil {
					return err
				}
			}
			if r, err = s.decide(tx, r, d, now); err != nil {
				return err
			}
			res.Decided = true
		} else {
			if err := tx.UpdateRequest(r); err != nil {
				return fmt.Errorf("store vote on %s: %w", r.ID, err)
			}
			r.Version++
			if err := s.queueNotify(tx, action, r, EventVoted); err != nil {
				return err
			}
		}
		res.Request, res.Counted = r, true
		return nil
	})
	if err != nil {
		// Nothing was written: a refusal's record is left out, counted.
		s.unsample(&sample, 1)
		return VoteResult{}, fmt.Errorf("vote on %s: %w", in.RequestID, err)
	}
	if refused == nil {
		// A run of the transaction refused, the one that committed
		// did not: no record was written for the refusal.
		s.unsample(&sample, 0)
	} else if !sample.admitted {
		// The committed run's refusal was left out of the sample:
		// counted now, once its reason is the one that stood.
		s.rejected.leftOut(sample.key, s.clock.Now(), 1)
	}
	if expired {
		s.metrics.decided(storage.StateExpired, 1)
	}
	if refused != nil {
		s.metrics.voteRefused(refused.Reason)
		s.log.Info("vote refused", "request", in.RequestID, "approver", in.Approver.Subject, "platform", in.Source.Platform, "reason", refused.Reason)
		return res, refused
	}
	if !res.Duplicate {
		s.watchers.notify(in.RequestID)
	}
	if res.Counted {
		s.metrics.voteCounted(in.Decision)
		if res.Decided {
			s.metrics.decided(res.Request.State, 1)
		}
		s.log.Info("vote counted", "request", in.RequestID, "approver", in.Approver.Subject, "decision", in.Decision, "state", res.Request.State)
	}
	return res, nil
}

// linkStillHolds reads, inside the vote's transaction, the link of chat
// account a, and refuses the vote unless the link is there, not stale, and
// names approver. It returns the identity the link vouches for now (its
// groups, person claims and sign-in as they stand), which the vote is
// then judged on.
func linkStillHolds(tx storage.Tx, a identity.Account, approver identity.Identity) (identity.Identity, *RefusalError, error) {
	l, err := tx.Link(a.Platform, a.Workspace, a.User)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return identity.Identity{}, refusal(ErrNotLinked, ReasonNotLinked, "your chat account is no longer linked to an identity (the link was removed while your click was on its way); link it again, then vote again"), nil
	case err != nil:
		return identity.Identity{}, nil, fmt.Errorf("read the link of the voting chat account: %w", err)
	case l.Stale:
		return identity.Identity{}, refusal(ErrNotLinked, ReasonNotLinked, "the identity provider no longer backs your chat account's link; link it again, then vote again"), nil
	case l.Issuer != approver.Issuer || l.Subject != approver.Subject:
		return identity.Identity{}, refusal(ErrNotLinked, ReasonNotLinked, "your chat account was linked to another identity while your click was on its way; vote again"), nil
	}
	return identity.FromLink(l), nil, nil
}

// checkVote applies the rules a vote must pass, in the order a person
// would want to hear about them.
func (s *Service) checkVote(r storage.Request, in VoteInput, now time.Time) *RefusalError {
	if r.State != storage.StatePending {
		return refusal(ErrNotPending, ReasonNotPending, "request %s is already %s; your vote was not counted", r.ID, r.State)
	}
	if prev := findVote(r, in.Approver); prev != nil {
		return refusal(ErrVoteChanged, ReasonVoteChanged, "you already voted %s on request %s; a vote cannot be changed", prev.Decision, r.ID)
	}
	if age := now.Sub(in.Approver.VerifiedAt); in.Approver.VerifiedAt.IsZero() || age > s.opts.GroupsMaxAge {
		return refusal(ErrStaleIdentity, ReasonStaleIdentity,
			"your identity was last confirmed by the identity provider %s ago (at most %s allowed); link your account again, then vote again",
			age.Round(time.Second), s.opts.GroupsMaxAge)
	}
	action, err := s.policy.Action(r.Action)
	if err != nil {
		return refusal(ErrNotPending, ReasonNotPending, "request %s names action %q, which is no longer declared", r.ID, r.Action)
	}
	person := in.Approver.Person()
	if !action.MayApprove(person) {
		return refusal(ErrNotEligible, ReasonNotEligible,
			"%s may not approve %s: approvers must be in one of the groups %v or be named in approvers.users", displayName(in.Approver), r.Action, action.Approvers.Groups)
	}
	if !action.Approvers.AllowSelfApproval && policy.IsSelf(r.Requester.Person, person) {
		return refusal(ErrSelfApproval, ReasonSelfApproval, "you asked for request %s yourself; someone else must approve it", r.ID)
	}
	if in.Decision == storage.DecisionDeny && action.RequireDenyReason && in.Reason == "" {
		return refusal(ErrReasonRequired, ReasonReasonRequired, "action %s requires a reason to deny; deny again with a reason", r.Action)
	}
	if in.Decision == storage.DecisionApprove && action.RequireApproveReason && in.Reason == "" {
		return refusal(ErrReasonRequired, ReasonReasonRequired, "action %s requires a reason to approve; approve again with a reason", r.Action)
	}
	if action.StepUp != nil {
		if why := stepUpProblem(action.StepUp, in.Approver, now); why != "" {
			return refusal(ErrStepUpRequired, ReasonStepUpRequired, "action %s needs a fresh sign-in at the identity provider: %s", r.Action, why)
		}
	}
	return nil
}

// stepUpProblem says what about the approver's last sign-in falls short of
// the action's step-up rule, or "" when it satisfies it.
func stepUpProblem(su *policy.StepUp, id identity.Identity, now time.Time) string {
	if id.AuthTime.IsZero() {
		return "no sign-in time is known"
	}
	if su.MaxAge > 0 && now.Sub(id.AuthTime) > su.MaxAge {
		return fmt.Sprintf("the last sign-in was %s ago (at most %s allowed)", now.Sub(id.AuthTime).Round(time.Second), su.MaxAge)
	}
	if len(su.ACRValues) > 0 && !slices.Contains(su.ACRValues, id.ACR) {
		return fmt.Sprintf("the sign-in's assurance level %q is not one of %v", id.ACR, su.ACRValues)
	}
	if su.RequireMFA && !policy.IsMultiFactor(id.AMR, su.MFAMethods) {
		return fmt.Sprintf("the sign-in did not use multi-factor authentication (methods %v: it needs two kinds of factor, e.g. a password and a one-time code, or \"mfa\")", id.AMR)
	}
	return ""
}

// votesDecide returns the decision r's votes, the latest being in's,
// reach under action's rules (policy.Action.Decide: quorum and every
// approvers.require rule): approved, denied on a deny; false while the
// request is still pending.
func votesDecide(action *policy.Action, r storage.Request, in VoteInput) (decision, bool) {
	p := Progress(action, r)
	switch p.Outcome {
	case policy.OutcomePending:
		return decision{}, false
	case policy.OutcomeApproved:
		data := map[string]any{"approvers": approverSubjects(r), "min_approvals": r.MinApprovals}
		if len(p.Rules) > 0 {
			data["rules"] = rulesRecord(p.Rules)
		}
		return decision{state: storage.StateApproved, by: "quorum", record: audit.Record{
			Type: audit.TypeRequestApproved, Actor: approverActor(in), Data: data,
		}}, true
	}
	d := decision{state: storage.StateDenied, by: "deny", record: audit.Record{Type: audit.TypeRequestDenied, Actor: approverActor(in)}}
	if in.Reason != "" {
		d.record.Data = map[string]any{"reason": in.Reason}
	}
	return d, true
}

// findVote returns the approver's earlier vote, matched by issuer and
// subject, so the same person voting from Slack and Teams counts once.
func findVote(r storage.Request, id identity.Identity) *storage.Vote {
	for i := range r.Votes {
		v := &r.Votes[i]
		if v.Approver.Issuer == id.Issuer && v.Approver.Subject == id.Subject {
			return v
		}
	}
	return nil
}

func displayName(id identity.Identity) string {
	for _, v := range []string{id.Email, id.Name, id.PreferredUsername} {
		if v != "" {
			return v
		}
	}
	return id.Subject
}

func approverActor(in VoteInput) *audit.Actor {
	return actorOf(in.Approver, in.Source.account())
}

// actorOf is the audit actor for id acting from chat account a: the one
// place an identity becomes an audit.Actor (whose field names the record
// format, and so every audit hash, depends on).
func actorOf(id identity.Identity, a identity.Account) *audit.Actor {
	return &audit.Actor{
		Issuer: id.Issuer, Subject: id.Subject, Name: id.Name, Email: id.Email,
		Platform: a.Platform, Workspace: a.Workspace, PlatformUser: a.User,
	}
}

func approverSubjects(r storage.Request) []any {
	out := make([]any, 0, len(r.Votes))
	for _, v := range r.Votes {
		if v.Decision == storage.DecisionApprove {
			out = append(out, v.Approver.Subject)
		}
	}
	return out
}

func voteRecord(in VoteInput, r storage.Request, now time.Time) audit.Record {
	typ := audit.TypeVoteApprove
	if in.Decision == storage.DecisionDeny {
		typ = audit.TypeVoteDeny
	}
	data := map[string]any{
		"groups":      stringsAny(in.Approver.Groups),
		"verified_at": audit.FormatTime(in.Approver.VerifiedAt),
	}
	if in.Reason != "" {
		data["reason"] = in.Reason
	}
	if !in.Approver.AuthTime.IsZero() {
		data["auth_time"] = audit.FormatTime(in.Approver.AuthTime)
	}
	if in.Approver.ACR != "" {
		data["acr"] = in.Approver.ACR
	}
	if len(in.Approver.AMR) > 0 {
		data["amr"] = stringsAny(in.Approver.AMR)
	}
	return audit.Record{
		Time: audit.FormatTime(now), Type: typ, RequestID: r.ID, Action: r.Action,
		Actor: approverActor(in), Source: in.Source.CallbackID, Data: data,
	}
}

// rejectionSample is the sampling decision (Service.rejected) for the
// vote.rejected record of one Vote call: made at its first refusal and
// kept across the runs of its transaction (a store may run it again), so
// that one refused click takes one place in the sample.
type rejectionSample struct {
	key      string
	admitted bool
	dropped  int
}

// sampleKey is the sampler's key of vote.rejected records: one window per
// platform and reason, shared with RecordUnverifiedVote.
func sampleKey(platform string, reason Reason) string {
	return "vote.rejected\x00" + platform + "\x00" + string(reason)
}

// appendRejected appends the vote.rejected record of refused inside tx
// when the sample admits it, carrying the count of records left out
// before it.
func (s *Service) appendRejected(tx storage.Tx, smp *rejectionSample, in VoteInput, r storage.Request, refused *RefusalError, now time.Time) error {
	if key := sampleKey(in.Source.Platform, refused.Reason); smp.key != key {
		// The first refusal, or a run again refused for another reason.
		s.unsample(smp, 0)
		smp.key = key
		smp.admitted, smp.dropped = s.rejected.take(key, s.clock.Now(), false)
	}
	if !smp.admitted {
		return nil
	}
	rec := rejectedRecord(in, r, refused, now)
	if smp.dropped > 0 {
		rec.Data["dropped"] = smp.dropped
	}
	return s.appendAudit(tx, rec)
}

// unsample returns an admitted place in the sample whose record was not
// written, carrying forward the records it would have counted plus extra;
// a refusal left out of the sample is counted only extra times (it was
// not counted when it was left out: a run again may refuse for another
// reason, or not at all).
func (s *Service) unsample(smp *rejectionSample, extra int) {
	switch {
	case smp.admitted:
		s.rejected.giveBack(smp.key, smp.dropped+extra)
	case smp.key != "" && extra > 0:
		s.rejected.leftOut(smp.key, s.clock.Now(), extra)
	}
	*smp = rejectionSample{}
}

func rejectedRecord(in VoteInput, r storage.Request, why *RefusalError, now time.Time) audit.Record {
	return audit.Record{
		Time: audit.FormatTime(now), Type: audit.TypeVoteRejected, RequestID: r.ID, Action: r.Action,
		Actor: approverActor(in), Source: in.Source.CallbackID,
		Data: map[string]any{"reason": string(why.Reason), "message": why.Message, "decision": string(in.Decision)},
	}
}

func stringsAny(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}
