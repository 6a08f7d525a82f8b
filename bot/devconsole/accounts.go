package devconsole

import (
	"context"
	"fmt"

	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// Accounts is the account directory of the "Chat users" panel: the
// pretend chat account of each dev approver carries that approver's email,
// as a Slack profile or a Teams member would. Linking one of them while
// signed in at the dev issuer as someone else is refused, as it is on the
// real platforms. *Accounts implements linkflow.AccountDirectory.
type Accounts struct {
	approvers []Approver
}

// NewAccounts returns the directory of approvers' pretend chat accounts.
func NewAccounts(approvers []Approver) *Accounts {
	return &Accounts{approvers: approvers}
}

// LookupAccount returns the pretend chat account p: the dev approver whose
// name is p's user id.
func (a *Accounts) LookupAccount(_ context.Context, p linkflow.PlatformUser) (linkflow.ChatAccount, error) {
	if p.Platform != ChatPlatform || p.Workspace != ChatWorkspace {
		return linkflow.ChatAccount{}, fmt.Errorf("devconsole: %s is not a dev console chat account: %w", p, linkflow.ErrAccountNotFound)
	}
	for _, ap := range a.approvers {
		if ap.Name == p.UserID {
			return linkflow.ChatAccount{DisplayName: ap.Name, Handle: ap.Name, Email: ap.Email, WorkspaceName: "dev console"}, nil
		}
	}
	return linkflow.ChatAccount{}, fmt.Errorf("devconsole: no dev approver is named %q: %w", p.UserID, linkflow.ErrAccountNotFound)
}
