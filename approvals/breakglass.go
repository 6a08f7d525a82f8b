package approvals

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Break-glass (an action's break_glass; docs/policy-cookbook.md,
// "Break-glass"):
//
//   - Create with CreateInput.BreakGlass, by a requester allowed by the
//     action's requester rules whose verified token groups include one of
//     break_glass.groups, with a reason: one transaction stores the
//     request, approves it at once (DecidedBy DecidedByBreakGlass; audited
//     request.break_glass, then request.approved), queues its execution
//     and its cards, and opens the review: a pending request of the
//     action's review action (policy.Action.ReviewAction, named
//     "<action>:review") with the same requester, params and reason,
//     approved by break_glass.review like any request. The two are tied by
//     storage.Request.BreakGlass.
//   - Until a review is approved, its requester (same issuer and subject,
//     or same issuer and person) is refused a new break-glass on any
//     action: ErrReviewPending. A pending review ends by its reviewers'
//     votes or by an admin's cancel, with a reason. A review that ended
//     without approval keeps the block until an admin lifts it with a
//     reason (LiftBlock, audited break_glass.lifted): a denial is the
//     finding that the break-glass was not justified, and a cancel
//     only closes the review, it approves nothing. The person reviewed
//     can neither cancel the review (Cancel refuses, as the requester and
//     as an admin) nor approve it (no self-approval on a review action,
//     whatever the action allows) nor lift its block.
//   - A review never expires. Its ExpiresAt is its due time (the
//     break-glass time plus break_glass.within), so the expiry loop
//     reaches it then: instead of expiring it, markUnreviewed audits
//     break_glass.unreviewed once, updates both cards, announces it again
//     in the review card's thread on every platform and conversation the
//     action notifies (an Overdue reminder, remind.go), and moves
//     ExpiresAt to reviewOpenUntil so the loop does not return to it.
//     All of it is one transaction: the announcement is queued exactly
//     when the record is written, and survives restarts like any outbox
//     entry.
//   - Break-glass is not bound by windows or freezes: createBreakGlass
//     does not call the window check the normal path makes.

// Audit record types of break-glass.
const (
	// TypeRequestBreakGlass records a request approved at once by
	// break-glass: the requester, the reason, the token groups that
	// allowed it and the review it opened.
	TypeRequestBreakGlass = "request.break_glass"
	// TypeBreakGlassUnreviewed records a break-glass request whose review
	// was still pending when it was due (break_glass.within).
	TypeBreakGlassUnreviewed = "break_glass.unreviewed"
	// TypeBreakGlassLifted records an admin lifting the block a review
	// that ended without approval (denied, cancelled) held on its
	// requester's next break-glass: the admin as actor, the reason.
	TypeBreakGlassLifted = "break_glass.lifted"
)

// DecidedByBreakGlass is the DecidedBy of a request approved by
// break-glass.
const DecidedByBreakGlass = "break_glass"

// EventUnreviewed is a notification's event when a break-glass review is
// overdue: the cards of the review and of the break-glass request are
// updated to say so.
const EventUnreviewed = "unreviewed"

// ErrReviewPending: the requester broke glass before and that review is
// not approved: still pending, or denied or cancelled and not lifted by
// an admin.
var ErrReviewPending = errors.New("break-glass review pending")

// ReasonReviewPending is the refusal reason of ErrReviewPending.
const ReasonReviewPending Reason = "review_pending"

// reviewOpenUntil is the ExpiresAt of a review once it was flagged
// unreviewed: reviews never expire, and the expiry loop must not return
// to it.
var reviewOpenUntil = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// IsBreakGlassReview reports whether r is the review of a break-glass
// request.
func IsBreakGlassReview(r storage.Request) bool {
	return r.BreakGlass != nil && r.BreakGlass.Reviews != ""
}

func (s *Service) createBreakGlass(ctx context.Context, in CreateInput, action *policy.Action) (storage.Request, bool, error) {
	if action.BreakGlass == nil {
		return storage.Request{}, false, refusal(ErrForbidden, ReasonForbidden,
			"action %s has no break_glass: ask for an approval without break-glass", action.Name)
	}
	if err := action.CheckRequester(in.Requester.Issuer, in.Requester.Claims); err != nil {
		return storage.Request{}, false, err
	}
	if !action.MayBreakGlass(in.Groups) {
		return storage.Request{}, false, refusal(ErrForbidden, ReasonForbidden, "%s", breakGlassGroupsProblem(action, in))
	}
	if err := action.CheckParams(in.Params); err != nil {
		return storage.Request{}, false, err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return storage.Request{}, false, refusal(ErrInvalid, ReasonInvalid,
			"reason is required for break-glass: say why this cannot wait for approval (it is shown to the reviewers and kept in the audit log)")
	}
	if err := checkInput(in); err != nil {
		return storage.Request{}, false, err
	}
	if in.Requester.Subject == "" {
		return storage.Request{}, false, refusal(ErrInvalid, ReasonInvalid, "the requester has no subject; the token must carry a sub claim")
	}
	reviewAction := action.ReviewAction()
	fp := fingerprint(in)
	scope := ""
	if in.IdempotencyKey != "" {
		scope = idempotencyScope(in.Requester, in.IdempotencyKey)
	}
	now := s.clock.Now().UTC()
	due := now.Add(action.BreakGlass.Within)
	bg := storage.Request{
		ID: s.opts.NewID(), Action: action.Name, Params: in.Params, Reason: in.Reason, Links: in.Links,
		Requester: in.Requester, IdempotencyScope: scope, Fingerprint: fp,
		State: storage.StatePending, MinApprovals: max(action.Approvers.MinApprovals, 1),
		CreatedAt: now, ExpiresAt: now.Add(action.TTL),
	}
	review := storage.Request{
		ID: s.opts.NewID(), Action: reviewAction.Name, Params: in.Params, Reason: in.Reason, Links: in.Links,
		Requester: in.Requester, State: storage.StatePending, MinApprovals: max(reviewAction.Approvers.MinApprovals, 1),
		CreatedAt: now, ExpiresAt: due,
		BreakGlass: &storage.BreakGlass{Reviews: bg.ID, Due: due},
	}
	bg.BreakGlass = &storage.BreakGlass{Review: review.ID, Due: due}

	// Reviews that ended without approval are found in a read transaction
	// first: finding them reads every such request of the action, which
	// must not hold the store's one writer.
	ended, err := s.endedReviewsOf(ctx, in.Requester)
	if err != nil {
		return storage.Request{}, false, err
	}
	req, created, err := s.createOnce(ctx, in, scope, fp, "break glass on action", func(tx storage.Tx) (storage.Request, error) {
		if err := s.checkReviewPending(tx, in.Requester, ended); err != nil {
			return storage.Request{}, err
		}
		// Not bound by windows or freezes, nor by the pending cap:
		// the break-glass request is never pending, and its review
		// does not count against the requester (checkPending).
		r := bg
		if err := tx.CreateRequest(r); err != nil {
			return storage.Request{}, fmt.Errorf("create request %s: %w", r.ID, err)
		}
		r.Version = 1
		if err := s.appendAudit(tx, breakGlassRecord(r, in)); err != nil {
			return storage.Request{}, err
		}
		if err := s.queueNotify(tx, action, r, EventCreated); err != nil {
			return storage.Request{}, err
		}
		if action.OnApprove != nil {
			r.Execution = &storage.Execution{Status: storage.ExecutionPending, UpdatedAt: now}
			if err := s.queueExecution(tx, r); err != nil {
				return storage.Request{}, err
			}
		}
		r, err := s.decide(tx, r, decision{
			state: storage.StateApproved,
			by:    DecidedByBreakGlass,
			record: audit.Record{
				Type: audit.TypeRequestApproved, Actor: requesterActor(r.Requester),
				Data: map[string]any{"break_glass": true, "review": review.ID},
			},
		}, now)
		if err != nil {
			return storage.Request{}, err
		}
		if err := tx.CreateRequest(review); err != nil {
			return storage.Request{}, fmt.Errorf("create review %s: %w", review.ID, err)
		}
		rec := createdRecord(review)
		rec.Data["reviews"] = bg.ID
		rec.Data["due"] = audit.FormatTime(due)
		if err := s.appendAudit(tx, rec); err != nil {
			return storage.Request{}, err
		}
		if err := s.queueNotify(tx, reviewAction, review, EventCreated); err != nil {
			return storage.Request{}, err
		}
		return r, nil
	})
	if err != nil {
		return storage.Request{}, false, err
	}
	if created {
		s.metrics.requestCreated(req.Action)
		s.metrics.decided(storage.StateApproved, 1)
		s.metrics.requestCreated(review.Action)
		s.log.Warn("break-glass: request approved without votes; review opened", "request", req.ID, "action", req.Action,
			"requester", req.Requester.Subject, "review", review.ID, "review_due", due)
		s.watchers.notify(req.ID)
		s.wakeExpiry()
	}
	return req, created, nil
}

// breakGlassGroupsProblem says why in's token groups do not allow
// break-glass on a.
func breakGlassGroupsProblem(a *policy.Action, in CreateInput) string {
	want := strings.Join(a.BreakGlass.Groups, ", ")
	if in.GroupsClaim == "" {
		return fmt.Sprintf("break-glass on %s is for members of %s, and this token carries no groups (its requesters entry %q names no groups_claim)", a.Name, want, in.Requester.Issuer)
	}
	if len(in.Groups) == 0 {
		return fmt.Sprintf("break-glass on %s is for members of %s; this token's %q claim names no groups", a.Name, want, in.GroupsClaim)
	}
	return fmt.Sprintf("break-glass on %s is for members of %s; this token's %q claim names %s", a.Name, want, in.GroupsClaim, strings.Join(in.Groups, ", "))
}

// checkReviewPending refuses, inside the create's transaction, a
// break-glass by a requester with a review not approved: still pending, or
// ended otherwise (denied, cancelled) and its block not lifted. The
// requester is the same issuer and subject, or the same issuer and person
// (a CI token's subject names a repository and branch, so the person
// behind it is compared too). Pending reviews are read here (few, and a
// concurrent break-glass of the same person is one of them); ended ones
// are the candidates endedReviewsOf found before the transaction, each
// read again here: one lifted since no longer blocks, and one that ended
// since was pending then and is among them too. (A review both opened and
// decided by a person in the milliseconds between the two would be
// missed; a review's decision is a person's click on it.)
func (s *Service) checkReviewPending(tx storage.Tx, who storage.Requester, ended []string) error {
	for _, name := range slices.Sorted(maps.Keys(s.policy.Actions)) {
		a := s.policy.Actions[name]
		if a.BreakGlass == nil {
			continue
		}
		pending, err := tx.Requests(storage.RequestFilter{States: []storage.State{storage.StatePending}, Action: policy.ReviewActionName(name)})
		if err != nil {
			return fmt.Errorf("read pending break-glass reviews: %w", err)
		}
		for _, r := range pending {
			if IsBreakGlassReview(r) && isRequesterOf(r, who) {
				groups := a.BreakGlass.Review.Groups
				return refusal(ErrReviewPending, ReasonReviewPending,
					"you broke glass with request %s (%s) and its review %s is still pending; you can break glass again once a reviewer (%s) approves that review",
					r.BreakGlass.Reviews, name, r.ID, reviewersText(groups, a.BreakGlass.Review.Users))
			}
		}
	}
	for _, id := range ended {
		r, err := tx.Request(id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read break-glass review %s: %w", id, err)
		}
		if r.State == storage.StateApproved || r.State == storage.StatePending || !r.BreakGlass.Lifted.IsZero() {
			continue
		}
		return refusal(ErrReviewPending, ReasonReviewPending,
			"you broke glass with request %s (%s) and its review %s was %s, not approved; you can break glass again once an admin lifts that block (signoff requests lift-block %s --reason …)",
			r.BreakGlass.Reviews, reviewedAction(r), r.ID, r.State, r.ID)
	}
	return nil
}

// endedReviewsOf lists, in a read transaction of its own, the break-glass
// reviews of who that are not approved and whose block is not lifted
// (pending ones too, which may end before the create's transaction), for
// checkReviewPending to read again. It reads every request of a review
// action in those states, so it runs outside the writer's transaction.
func (s *Service) endedReviewsOf(ctx context.Context, who storage.Requester) ([]string, error) {
	var ids []string
	err := s.store.View(ctx, func(tx storage.ReadTx) error {
		ids = nil
		for _, name := range slices.Sorted(maps.Keys(s.policy.Actions)) {
			if s.policy.Actions[name].BreakGlass == nil {
				continue
			}
			rs, err := tx.Requests(storage.RequestFilter{States: unapproved, Action: policy.ReviewActionName(name)})
			if err != nil {
				return err
			}
			for _, r := range rs {
				if IsBreakGlassReview(r) && isRequesterOf(r, who) && r.BreakGlass.Lifted.IsZero() {
					ids = append(ids, r.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read break-glass reviews: %w", err)
	}
	return ids, nil
}

// unapproved are the states of a review that holds its requester's block:
// every state but approved (a review never expires, but one that did
// would hold it too).
var unapproved = []storage.State{storage.StatePending, storage.StateDenied, storage.StateCancelled, storage.StateExpired}

// reviewedAction is the action whose break-glass review r is (its action
// without ":review").
func reviewedAction(r storage.Request) string {
	base, _ := strings.CutSuffix(r.Action, policy.ReviewSuffix)
	return base
}

// isRequesterOf reports whether who asked for r: the same issuer and
// subject, or the same issuer and person.
func isRequesterOf(r storage.Request, who storage.Requester) bool {
	if r.Requester.Issuer != who.Issuer {
		return false
	}
	samePerson := who.Person != "" && strings.EqualFold(strings.TrimSpace(r.Requester.Person), strings.TrimSpace(who.Person))
	return r.Requester.Subject == who.Subject || samePerson
}

// AdminPerson is an admin acting through the admin API: the token's
// issuer (the requesters entry name) and subject, the audit actor, and
// the names the no-self-review rule compares with a request's requester.
type AdminPerson struct {
	Issuer  string
	Subject string
	Actor   audit.Actor
	Person  policy.Person
}

// isReviewed reports whether admin is the person review r reviews: the
// same issuer and subject as its requester, or, as the no-self-approval
// rule matches (policy.IsSelf), the requester's person is one of the
// admin's names.
func isReviewed(r storage.Request, admin AdminPerson) bool {
	if r.Requester.Issuer == admin.Issuer && r.Requester.Subject == admin.Subject {
		return true
	}
	return policy.IsSelf(r.Requester.Person, admin.Person)
}

// LiftBlock lifts the block break-glass review id, ended without approval
// (denied, cancelled), holds on its requester's next break-glass, as
// admin, for reason (required, written to the audit log): one
// transaction stores the time on the review (BreakGlass.Lifted) and
// appends break_glass.lifted. The person reviewed may not lift it
// (ErrForbidden). A pending review (its reviewers decide it, or an admin
// cancels it first) and an approved one (it holds no block) are refused
// (ErrInvalid); lifting a block already lifted returns the review
// unchanged.
func (s *Service) LiftBlock(ctx context.Context, id string, admin AdminPerson, reason string) (storage.Request, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return storage.Request{}, refusal(ErrInvalid, ReasonInvalid, "lifting the block of %s needs a reason, for the audit log", id)
	}
	if len(reason) > MaxReasonBytes {
		return storage.Request{}, refusal(ErrInvalid, ReasonInvalid, "the reason is %d bytes; at most %d allowed", len(reason), MaxReasonBytes)
	}
	var out storage.Request
	lifted := false
	err := s.update(ctx, func(tx storage.Tx) error {
		r, err := tx.Request(id)
		if errors.Is(err, storage.ErrNotFound) {
			return refusal(ErrUnknownRequest, ReasonUnknownRequest, "no request has id %q", id)
		}
		if err != nil {
			return err
		}
		out, lifted = r, false
		if !IsBreakGlassReview(r) {
			return refusal(ErrInvalid, ReasonInvalid, "request %s is not a break-glass review: only a review that ended without approval holds a block to lift", id)
		}
		if isReviewed(r, admin) {
			return refusal(ErrForbidden, ReasonForbidden, "review %s reviews your own break-glass request %s: another admin decides whether to lift its block", id, r.BreakGlass.Reviews)
		}
		switch r.State {
		case storage.StatePending:
			return refusal(ErrInvalid, ReasonInvalid, "review %s is still pending: its reviewers decide it (or an admin cancels it, with a reason, and then lifts its block)", id)
		case storage.StateApproved:
			return refusal(ErrInvalid, ReasonInvalid, "review %s was approved: it holds no block to lift", id)
		}
		if !r.BreakGlass.Lifted.IsZero() {
			return nil
		}
		now := s.clock.Now().UTC()
		bg := *r.BreakGlass
		bg.Lifted = now
		r.BreakGlass = &bg
		if err := tx.UpdateRequest(r); err != nil {
			return fmt.Errorf("store the lifted block of %s: %w", id, err)
		}
		r.Version++
		actor := admin.Actor
		if err := s.appendAudit(tx, audit.Record{
			Time: audit.FormatTime(now), Type: TypeBreakGlassLifted, RequestID: id, Action: reviewedAction(r), Actor: &actor,
			Data: map[string]any{
				"reason": reason, "reviews": bg.Reviews,
				"requester_issuer": r.Requester.Issuer, "requester_subject": r.Requester.Subject, "requester_person": r.Requester.Person,
			},
		}); err != nil {
			return err
		}
		out, lifted = r, true
		return nil
	})
	if err != nil {
		return storage.Request{}, refusedOr(err, "lift the block of %s", id)
	}
	if lifted {
		s.watchers.notify(id)
		s.log.Warn("break-glass: an admin lifted the block of a review that ended without approval", "review", id, "break_glass_request", out.BreakGlass.Reviews,
			"requester", out.Requester.Subject, "admin", admin.Actor.Subject)
	}
	return out, nil
}

func reviewersText(groups, users []string) string {
	var parts []string
	if len(groups) > 0 {
		parts = append(parts, "groups "+strings.Join(groups, ", "))
	}
	if len(users) > 0 {
		parts = append(parts, "users "+strings.Join(users, ", "))
	}
	if len(parts) == 0 {
		return "nobody is configured"
	}
	return strings.Join(parts, "; ")
}

// breakGlassRecord is the first record of a break-glass request: what a
// request.created record says, and the groups that allowed it and the
// review it opened.
func breakGlassRecord(r storage.Request, in CreateInput) audit.Record {
	rec := createdRecord(r)
	rec.Type = TypeRequestBreakGlass
	rec.Data["groups"] = stringsAny(in.Groups)
	rec.Data["review"] = r.BreakGlass.Review
	rec.Data["review_due"] = audit.FormatTime(r.BreakGlass.Due)
	return rec
}

// markUnreviewed flags pending review r, past its due time, as
// unreviewed inside tx: audited break_glass.unreviewed (under the
// break-glass request it reviews), the cards of both updated, the review
// announced again in its card's thread, and its ExpiresAt moved out of
// the expiry loop's way. The review stays pending.
func (s *Service) markUnreviewed(tx storage.Tx, r storage.Request, now time.Time) error {
	bg := *r.BreakGlass
	bg.Unreviewed = now
	r.BreakGlass = &bg
	r.ExpiresAt = reviewOpenUntil
	if err := tx.UpdateRequest(r); err != nil {
		return fmt.Errorf("flag review %s unreviewed: %w", r.ID, err)
	}
	r.Version++
	if err := s.appendAudit(tx, audit.Record{
		Time: audit.FormatTime(now), Type: TypeBreakGlassUnreviewed, RequestID: bg.Reviews, Action: reviewedAction(r),
		Data: map[string]any{
			"review": r.ID, "due": audit.FormatTime(bg.Due),
			"requester_issuer": r.Requester.Issuer, "requester_subject": r.Requester.Subject, "requester_person": r.Requester.Person,
		},
	}); err != nil {
		return err
	}
	if err := s.notifyAction(tx, r, EventUnreviewed); err != nil {
		return err
	}
	if err := s.queueOverdue(tx, r, now); err != nil {
		return err
	}
	orig, err := tx.Request(bg.Reviews)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // the break-glass request is gone: its review's card says it all
	}
	if err != nil {
		return fmt.Errorf("read break-glass request %s: %w", bg.Reviews, err)
	}
	if orig.BreakGlass != nil {
		obg := *orig.BreakGlass
		obg.Unreviewed = now
		orig.BreakGlass = &obg
		if err := tx.UpdateRequest(orig); err != nil {
			return fmt.Errorf("flag break-glass request %s unreviewed: %w", orig.ID, err)
		}
		orig.Version++
	}
	return s.notifyAction(tx, orig, EventUnreviewed)
}

// queueOverdue queues the announcement of overdue review r: one Overdue
// reminder per conversation its action notifies, on every running
// platform, due at once. The Deliverer replies in the thread of the
// review's card there (waiting for the card if it is not posted yet).
func (s *Service) queueOverdue(tx storage.Tx, r storage.Request, now time.Time) error {
	a, err := s.policy.Action(r.Action)
	if err != nil {
		return nil // nothing to announce where no policy says where
	}
	for _, p := range s.opts.Platforms {
		for _, t := range a.Notify.Targets(p) {
			if err := s.queueReminder(tx, p, r, Reminder{Target: t, Number: 1, Overdue: true}, now, now); err != nil {
				return err
			}
		}
	}
	return nil
}
