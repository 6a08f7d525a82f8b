package approvals

import (
	"context"
	"errors"
	"fmt"

	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// StepUpVote is what the identity linker calls when a step-up sign-in for a
// vote completes: it casts that vote with the freshly signed-in identity.
// A refusal returns its message for the person and the error; success
// returns a message saying what the vote did.
func (s *Service) StepUpVote() oidc.StepUpFunc {
	return func(ctx context.Context, a storage.LinkAttempt, id oidc.Identity) (string, error) {
		res, err := s.Vote(ctx, VoteInput{
			RequestID: a.RequestID,
			Approver:  id,
			Decision:  storage.Decision(a.Decision),
			Source:    Source{Platform: a.Platform, Workspace: a.Workspace, PlatformUser: a.PlatformUser, CallbackID: "step-up"},
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
func (s *Service) StepUpPolicy() oidc.StepUpPolicyFunc {
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
