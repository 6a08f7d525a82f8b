package linkflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// Sweep pacing (LinkerOptions.SweepInterval, SweepConcurrency, and the
// backoff of RunSweep while the IdP or the chat platform is unavailable).
const (
	// DefaultSweepConcurrency is how many links one sweep pass refreshes
	// at once: enough to get through thousands of links in a pass, few
	// enough not to look like a flood to the IdP's token endpoint.
	DefaultSweepConcurrency = 4
	// MinSweepInterval and MaxSweepInterval bound the default sweep
	// interval, GroupsMaxAge/4.
	MinSweepInterval = time.Minute
	MaxSweepInterval = time.Hour
	// SweepRetry is how long RunSweep waits after a pass the IdP's
	// unavailability stopped; it doubles with every such pass in a row, up
	// to MaxSweepBackoff or the sweep interval, whichever is longer.
	SweepRetry = time.Minute
	// MaxSweepBackoff caps the wait between passes while the IdP stays
	// unavailable (when the sweep interval is shorter).
	MaxSweepBackoff = 30 * time.Minute
)

// defaultSweepInterval is groupsMaxAge/4 within [MinSweepInterval,
// MaxSweepInterval]: with the default groups_max_age of 24h, a pass every
// hour, so a person disabled at the IdP shows as stale at most about an
// hour after their groups came due.
func defaultSweepInterval(groupsMaxAge time.Duration) time.Duration {
	return min(max(groupsMaxAge/4, MinSweepInterval), MaxSweepInterval)
}

// SweepInterval is how often RunSweep starts a pass while the IdP answers.
func (l *Linker) SweepInterval() time.Duration { return l.opts.SweepInterval }

// KeepsRefreshTokens reports whether this Linker keeps (sealed) refresh
// tokens, without which neither a click nor the sweep can refresh a link.
func (l *Linker) KeepsRefreshTokens() bool { return l.sealer != nil }

// SweepResult is what one sweep pass found and did.
type SweepResult struct {
	// Due counts the links whose groups were older than GroupsMaxAge and
	// that a click would refresh: not stale, not expired, made at the
	// configured issuer.
	Due int
	// Refreshed counts those refreshed at the IdP (their groups and
	// VerifiedAt are current now).
	Refreshed int
	// MarkedStale counts those the IdP refused to refresh: they are stale
	// now, and their next click asks for a sign-in.
	MarkedStale int
	// NeedSignIn counts due links without a usable refresh token (none
	// kept, or it does not open): they were left alone, and their next
	// click asks for a sign-in.
	NeedSignIn int
	// Failed counts refreshes that failed otherwise (the store, a link
	// changed meanwhile); they are tried again at the next pass.
	Failed int
	// NotTried counts due links left for the next pass because the IdP
	// was unavailable.
	NotTried int
}

// Sweep refreshes, at the IdP, every link whose groups are older than
// GroupsMaxAge, as a click on it would (the same refresh, under the same
// per-account lock): new groups and a rotated refresh token are stored
// (identity.refreshed when the groups changed), and a link the IdP refuses
// to refresh (user disabled, consent revoked) is marked stale
// (identity.stale). So a person removed at the IdP shows as stale in the
// links listing before they click. Stale links, links older than
// LinkMaxAge and links made at another issuer are left alone (a click
// refuses them anyway), and so are links without a usable refresh token
// (counted in NeedSignIn).
//
// At most SweepConcurrency refreshes run at once, oldest VerifiedAt first.
// When the IdP is unavailable, or the chat platform that is asked before
// a refresh whether an account is still its person's (recheckBinding),
// the pass stops starting refreshes and returns an error wrapping
// ErrIdPUnavailable or ErrDirectoryUnavailable; what it had not tried is
// left as it is. One pass runs at a time; a second call waits for the
// first.
func (l *Linker) Sweep(ctx context.Context) (SweepResult, error) {
	select {
	case l.sweepGate <- struct{}{}:
	case <-ctx.Done():
		return SweepResult{}, ctx.Err()
	}
	defer func() { <-l.sweepGate }()

	var res SweepResult
	var all []storage.IdentityLink
	err := l.opts.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		all, err = tx.Links(storage.LinkFilter{})
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			l.counters.sweepDone(SweepFailed, 0)
		}
		return res, fmt.Errorf("oidc: sweep: read links: %w", err)
	}
	now := l.clock.Now()
	var due []storage.IdentityLink
	for _, link := range all {
		if !l.sweepDue(link, now) {
			continue
		}
		res.Due++
		if l.sealer == nil || len(link.RefreshToken) == 0 {
			res.NeedSignIn++
			continue
		}
		due = append(due, link)
	}
	slices.SortFunc(due, func(a, b storage.IdentityLink) int { return a.VerifiedAt.Compare(b.VerifiedAt) })

	var (
		mu          sync.Mutex
		unavailable error
		wg          sync.WaitGroup
	)
	sem := make(chan struct{}, l.opts.SweepConcurrency)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return unavailable != nil
	}
dispatch:
	for i, link := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			res.NotTried += len(due) - i
			mu.Unlock()
			break dispatch
		}
		if stopped() {
			<-sem
			mu.Lock()
			res.NotTried += len(due) - i
			mu.Unlock()
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcome, err := l.sweepOne(ctx, link)
			mu.Lock()
			defer mu.Unlock()
			switch outcome {
			case sweepRefreshed:
				res.Refreshed++
			case sweepStale:
				res.MarkedStale++
			case sweepNeedSignIn:
				res.NeedSignIn++
			case sweepUnavailable:
				res.NotTried++
				if unavailable == nil {
					unavailable = err
				}
			case sweepFailed:
				res.Failed++
			}
		}()
	}
	wg.Wait()

	switch {
	case unavailable != nil && errors.Is(unavailable, ErrDirectoryUnavailable):
		l.counters.sweepDone(SweepChatUnavailable, res.NeedSignIn)
		l.log.Warn("link sweep stopped: the chat platform cannot be asked who owns the accounts; links not yet tried were left as they are",
			"due", res.Due, "refreshed", res.Refreshed, "marked_stale", res.MarkedStale, "not_tried", res.NotTried, "err", unavailable)
		return res, fmt.Errorf("oidc: sweep stopped: %w", unavailable)
	case unavailable != nil:
		l.counters.sweepDone(SweepIdPUnavailable, res.NeedSignIn)
		l.log.Warn("link sweep stopped: the identity provider is unavailable; nothing was marked stale",
			"due", res.Due, "refreshed", res.Refreshed, "marked_stale", res.MarkedStale, "not_tried", res.NotTried, "err", unavailable)
		return res, fmt.Errorf("oidc: sweep stopped: %w", unavailable)
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	l.counters.sweepDone(SweepCompleted, res.NeedSignIn)
	if res.Due > 0 {
		l.log.Info("link sweep finished", "due", res.Due, "refreshed", res.Refreshed, "marked_stale", res.MarkedStale,
			"need_sign_in", res.NeedSignIn, "failed", res.Failed)
	}
	return res, nil
}

// sweepDue reports whether a click on link would refresh it at the IdP:
// usable (not stale, not expired, this issuer) with groups older than
// GroupsMaxAge.
func (l *Linker) sweepDue(link storage.IdentityLink, now time.Time) bool {
	return !link.Stale && link.Issuer == l.opts.Issuer &&
		now.Sub(link.LinkedAt) <= l.opts.LinkMaxAge &&
		now.Sub(link.VerifiedAt) > l.opts.GroupsMaxAge
}

// What refreshing one link in a sweep came to.
type sweepOutcome int

const (
	sweepSkipped sweepOutcome = iota // no longer due (a click refreshed it, it was unlinked)
	sweepRefreshed
	sweepStale
	sweepNeedSignIn
	sweepUnavailable
	sweepFailed
)

// sweepOne refreshes one link, under its chat account's lock, after
// reading it again: a click may have refreshed it meanwhile, an operator
// revoked it, or another sign-in replaced it.
func (l *Linker) sweepOne(ctx context.Context, listed storage.IdentityLink) (sweepOutcome, error) {
	p := PlatformUser{Platform: listed.Platform, Workspace: listed.Workspace, UserID: listed.PlatformUser, Conversation: listed.Conversation}
	unlock, err := l.lockUser(ctx, p)
	if err != nil {
		return sweepSkipped, err
	}
	defer unlock()
	var link storage.IdentityLink
	err = l.opts.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		link, err = tx.Link(p.Platform, p.Workspace, p.UserID)
		return err
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return sweepSkipped, nil
	case err != nil:
		if ctx.Err() != nil {
			return sweepSkipped, err
		}
		l.log.Warn("link sweep: reading a link failed; it is tried again at the next pass", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "err", err)
		return sweepFailed, err
	}
	if link.Subject != listed.Subject || !l.sweepDue(link, l.clock.Now()) {
		return sweepSkipped, nil
	}
	_, err = l.refreshGroups(ctx, p, link, refreshBySweep)
	var refused *refreshRefusedError
	switch {
	case err == nil:
		return sweepRefreshed, nil
	case errors.Is(err, errNoRefreshToken), errors.Is(err, errRefreshTokenUnreadable):
		return sweepNeedSignIn, nil
	case errors.As(err, &refused) && refused.markErr == nil:
		return sweepStale, nil
	case errors.Is(err, ErrIdPUnavailable), errors.Is(err, ErrDirectoryUnavailable):
		return sweepUnavailable, err
	case ctx.Err() != nil:
		return sweepSkipped, err
	}
	l.log.Warn("link sweep: refreshing a link failed; it is tried again at the next pass", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "err", err)
	return sweepFailed, err
}

// sweepBackoff is the wait after the n-th pass in a row (n ≥ 1) that the
// IdP's unavailability stopped: SweepRetry, doubling, at most the longer
// of MaxSweepBackoff and the sweep interval.
func (l *Linker) sweepBackoff(n int) time.Duration {
	limit := max(MaxSweepBackoff, l.opts.SweepInterval)
	d := SweepRetry
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// RunSweep runs a Sweep pass at once and then every SweepInterval (on the
// Linker's clock) until ctx ends. A pass the IdP's unavailability stopped
// is followed by the next one after SweepRetry, doubling with every such
// pass in a row (see sweepBackoff), so an IdP outage is not met with a
// stream of refreshes; the first pass that gets through returns to the
// interval. Other failures are logged and retried at the next interval.
//
// Each process sweeps on its own; with several replicas sharing one
// database, two could refresh one link at the same instant (see lockUser).
func (l *Linker) RunSweep(ctx context.Context) {
	failures := 0
	for {
		wait := l.opts.SweepInterval
		_, err := l.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrIdPUnavailable), errors.Is(err, ErrDirectoryUnavailable):
			failures++
			wait = l.sweepBackoff(failures)
			l.log.Info("link sweep: next pass after backoff", "in", wait, "passes_stopped_in_a_row", failures)
		case err != nil:
			failures = 0
			l.log.Warn("link sweep failed; it runs again at the next interval", "in", wait, "err", err)
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-l.clock.After(wait):
		}
	}
}
