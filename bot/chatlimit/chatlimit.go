// Package chatlimit is the limit on clicks and commands per chat account
// (config limits.clicks_per_minute) that the chat adapters share: the
// Slack and Teams adapters and the dev console ask one Limiter before a
// click or command does any work, and over the limit they answer the
// person privately with Limiter's message instead: no vote, nothing
// reaches approvals, nothing is written to the audit log. A flood of
// clicks from one account therefore grows the audit log by at most the
// limit per minute.
//
// Where the private answer itself costs a call to the chat platform (a
// Slack click's reply is a chat.postEphemeral), the adapter asks Tell
// first: an account over the limit is told once a minute, so a flood of
// clicks costs the workspace's rate limits one call a minute, not one a
// click.
package chatlimit

import (
	"fmt"
	"sync/atomic"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/ratelimit"
)

// Limiter counts the clicks and commands of each chat account (platform,
// workspace or tenant, user id). A nil *Limiter allows everything. It is
// safe for concurrent use.
type Limiter struct {
	keyed *ratelimit.Limiter
	// told allows one "over the limit" answer per account and minute.
	told    *ratelimit.Limiter
	refused atomic.Uint64
}

// New returns a Limiter allowing perMinute clicks and commands per chat
// account and minute (a burst of perMinute, refilled evenly over the
// minute), on clk (the wall clock when nil). perMinute <= 0 returns nil:
// no limit.
func New(perMinute int, clk clock.Clock) *Limiter {
	keyed := ratelimit.New(perMinute, clk)
	if keyed == nil {
		return nil
	}
	return &Limiter{keyed: keyed, told: ratelimit.New(1, clk)}
}

// Allow takes one click or command from the account. It returns "" when
// the click may go on, or else the plain-text message to show that person
// privately (it says when to try again).
func (l *Limiter) Allow(platform, workspace, user string) (refusal string) {
	if l == nil {
		return ""
	}
	wait, ok := l.keyed.Allow(key(platform, workspace, user))
	if ok {
		return ""
	}
	l.refused.Add(1)
	return fmt.Sprintf("You clicked or sent commands more than %d times in the last minute, so this one was not acted on and nothing was counted. Try again in %d seconds.",
		l.keyed.PerMinute(), ratelimit.Seconds(wait))
}

// Tell reports whether an account whose click Allow refused should be
// told so now: the first refusal of a minute is, the others of that
// minute are dropped without an answer. Adapters whose answer is free
// (an HTTP response) answer every refusal and need not ask.
func (l *Limiter) Tell(platform, workspace, user string) bool {
	if l == nil {
		return true
	}
	_, ok := l.told.Allow(key(platform, workspace, user))
	return ok
}

// key names a chat account.
func key(platform, workspace, user string) string {
	return platform + "\x00" + workspace + "\x00" + user
}

// Refused returns how many clicks and commands were refused so far.
func (l *Limiter) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}

// PerMinute returns the limit; 0 for a nil Limiter.
func (l *Limiter) PerMinute() int {
	if l == nil {
		return 0
	}
	return l.keyed.PerMinute()
}
