package approvals

import (
	"context"
	"errors"
	"fmt"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// StepUpVote is what the identity linker calls when a step-up sign-in for a
// vote completes: it casts that vote with the freshly signed-in identity.
// A refusal returns its message for the person and the error; success
// returns a message saying what the vote did.
func (s *Service) StepUpVote() identity.StepUpFunc {
	return func(ctx context.Context, a storage.LinkAttempt, id identity.Identity) (string, error) {
		res, err := s.Vote(ctx, VoteInput{
			RequestID: a.RequestID,
			Approver:  id,
			Decision:  storage.Decision(a.Decision),
			Source:    Source{Platform: a.Platform, Workspace: a.Workspace, PlatformUser: a.PlatformUser, CallbackID: "step-up"},
			// The sign-in updated the account's link just before: the
			// vote counts only while that link stands.
			LinkedAccount: &identity.Account{Platform: a.Platform, Workspace: a.Workspace, User: a.PlatformUser},
		})
		var refused *RefusalError
		if errors.As(err, &refused) {
			return refused.Message, err
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Your %s on request %s was counted; the request is now %s.", a.Decision, a.RequestID, res.Request.State), nil
	}
}

// StepUpPolicy tells the identity linker which step-up rule (max_age,
// acr_values) the request's action demands, to ask the IdP for it.
func (s *Service) StepUpPolicy() identity.StepUpPolicyFunc {
	return func(ctx context.Context, requestID string) (*policy.StepUp, error) {
		r, err := s.Get(ctx, requestID)
		if err != nil {
			return nil, err
		}
		act, err := s.policy.Action(r.Action)
		if err != nil {
			return nil, err
		}
		return act.StepUp, nil
	}
}

// RefuseStepUp records a step-up sign-in that did not cast its vote and
// tells the chat account in the chat (the browser page alone is easy to
// miss), in one transaction. With r.Audit it also appends a vote.rejected
// record whose actor is the identity that signed in at the chat account
// the vote was for; refusals Vote itself made are audited there already.
func (s *Service) RefuseStepUp(ctx context.Context, r identity.StepUpRefusal) error {
	a := r.Attempt
	err := s.update(ctx, func(tx storage.Tx) error {
		if r.Audit {
			rec := audit.Record{
				Type: audit.TypeVoteRejected, RequestID: a.RequestID, Source: "step-up",
				Actor: actorOf(r.Identity, identity.AttemptAccount(a)),
				Data:  map[string]any{"reason": clip(string(r.Reason)), "message": r.Message, "decision": a.Decision},
			}
			if err := s.appendNamingAction(tx, rec); err != nil {
				return err
			}
		}
		return s.queueNotice(tx, a.Platform, AccountNotice{
			Workspace: a.Workspace, User: a.PlatformUser, Conversation: a.Conversation,
			Text:   fmt.Sprintf("signoff: your %s of request %s was not counted: %s", a.Decision, a.RequestID, r.Message),
			Public: fmt.Sprintf("signoff: a %s of request %s after a fresh sign-in was not counted; the person who clicked sees why on the sign-in page.", a.Decision, a.RequestID),
		})
	})
	if err != nil {
		return fmt.Errorf("record refused step-up on %s: %w", a.RequestID, err)
	}
	s.log.Info("step-up vote refused", "request", a.RequestID, "platform", a.Platform, "platform_user", a.PlatformUser, "reason", r.Reason)
	return nil
}
