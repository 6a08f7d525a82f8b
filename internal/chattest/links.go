package chattest

import (
	"context"
	"fmt"
	"sync"

	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// Links is the test double of the account-link component (tested in
// package oidc) that the adapters take as their identity resolver: a map
// from chat account to identity. Its links start at PublicURL.
type Links struct {
	mu      sync.Mutex
	ids     map[string]oidc.Identity
	stale   map[string]bool
	down    bool
	slow    bool
	stepUps []string
	asked   []linkflow.PlatformUser
	entered chan struct{}
	release chan struct{}
}

// NewLinks returns an empty link table.
func NewLinks() *Links {
	return &Links{ids: map[string]oidc.Identity{}, stale: map[string]bool{},
		entered: make(chan struct{}, 10), release: make(chan struct{})}
}

// key identifies an account; the conversation a click came from does not
// matter.
func key(p linkflow.PlatformUser) string { return p.Platform + "/" + p.Workspace + "/" + p.UserID }

// Link links account p to id.
func (l *Links) Link(p linkflow.PlatformUser, id oidc.Identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids[key(p)] = id
}

// MarkStale makes p's link stale: resolving it asks for a new sign-in.
func (l *Links) MarkStale(p linkflow.PlatformUser) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale[key(p)] = true
}

// SetDown makes Resolve fail as when the IdP cannot be reached (or work
// again).
func (l *Links) SetDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
}

// SetSlow makes Resolve announce itself on Entered and wait for Release
// (or its context) before it answers; false turns that off.
func (l *Links) SetSlow(slow bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slow = slow
}

// Entered receives a value each time a slow Resolve starts waiting.
func (l *Links) Entered() <-chan struct{} { return l.entered }

// Release lets every slow Resolve, waiting or to come, answer. It may be
// called once.
func (l *Links) Release() { close(l.release) }

// StepUps returns the step-ups begun, as "user:request:decision".
func (l *Links) StepUps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.stepUps...)
}

// Asked returns every account Resolve, Begin or BeginStepUp was asked
// about, in order.
func (l *Links) Asked() []linkflow.PlatformUser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]linkflow.PlatformUser(nil), l.asked...)
}

// required is the LinkRequiredError an unlinked or stale account gets.
func (l *Links) required(p linkflow.PlatformUser) error {
	if l.stale[key(p)] {
		return &linkflow.LinkRequiredError{URL: PublicURL + "/link/start?id=relink-" + p.UserID, Reason: linkflow.LinkReasonStale,
			Message: "your account link is no longer valid (user disabled): open the link to sign in again, then click again"}
	}
	if _, ok := l.ids[key(p)]; !ok {
		return &linkflow.LinkRequiredError{URL: PublicURL + "/link/start?id=link-" + p.UserID, Reason: linkflow.LinkReasonNotLinked,
			Message: "your chat account is not linked to your company sign-in yet: open the link to sign in once, then click again"}
	}
	return nil
}

// Resolve returns p's identity, a LinkRequiredError, or (while down) an
// error wrapping linkflow.ErrIdPUnavailable.
func (l *Links) Resolve(ctx context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	l.mu.Lock()
	l.asked = append(l.asked, p)
	slow := l.slow
	l.mu.Unlock()
	if slow {
		l.entered <- struct{}{}
		select {
		case <-l.release:
		case <-ctx.Done():
			return oidc.Identity{}, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return oidc.Identity{}, fmt.Errorf("refresh: %w", linkflow.ErrIdPUnavailable)
	}
	if err := l.required(p); err != nil {
		return oidc.Identity{}, err
	}
	return l.ids[key(p)], nil
}

// Begin returns the link that starts linking p.
func (l *Links) Begin(_ context.Context, p linkflow.PlatformUser) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, p)
	return PublicURL + "/link/start?id=link-" + p.UserID, nil
}

// BeginStepUp records the step-up and returns its link, or the
// LinkRequiredError of an unlinked or stale account.
func (l *Links) BeginStepUp(_ context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, p)
	if err := l.required(p); err != nil {
		return "", err
	}
	l.stepUps = append(l.stepUps, p.UserID+":"+requestID+":"+decision)
	return PublicURL + "/link/start?id=stepup-" + p.UserID, nil
}
