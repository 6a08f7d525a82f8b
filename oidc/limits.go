package oidc

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimitedUsers bounds the per-account limiter map. Only chat accounts
// whose callbacks were verified reach it; when it fills up, limiters idle
// for a minute are dropped (they are full again by then anyway).
const maxLimitedUsers = 10_000

// userLimiter gives each chat account a token bucket of perMinute sign-in
// links, refilled evenly over a minute, on the Linker's clock.
type userLimiter struct {
	perMinute int
	mu        sync.Mutex
	m         map[string]*userBucket
}

type userBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newUserLimiter(perMinute int) *userLimiter {
	return &userLimiter{perMinute: perMinute, m: map[string]*userBucket{}}
}

// allow takes one token for p at now; when none is left it reports how
// long until one is.
func (u *userLimiter) allow(p PlatformUser, now time.Time) (wait time.Duration, ok bool) {
	key := p.Platform + "\x00" + p.Workspace + "\x00" + p.UserID
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.m[key]
	if b == nil {
		if len(u.m) >= maxLimitedUsers {
			for k, v := range u.m {
				if now.Sub(v.last) >= time.Minute {
					delete(u.m, k)
				}
			}
			if len(u.m) >= maxLimitedUsers {
				clear(u.m)
			}
		}
		b = &userBucket{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(u.perMinute)), u.perMinute)}
		u.m[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}
