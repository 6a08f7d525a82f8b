// Package ratelimit keeps a token bucket per key (a CI requester, a chat
// account) on an injectable clock, in bounded memory. It is the one
// limiter behind signoff's limits: requests per requester on the CI API,
// clicks and commands per chat account, sign-in links per chat account.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/signoff-dev/signoff/clock"
)

// DefaultMaxKeys bounds how many keys a Limiter remembers.
const DefaultMaxKeys = 10_000

// Limiter gives each key a bucket of perMinute tokens, refilled evenly over
// a minute (one every minute/perMinute), so a key may spend its whole
// minute at once and then one more every refill interval.
//
// Memory stays bounded: a key unused for a minute is forgotten (its bucket
// is full again by then, so forgetting it changes nothing), and beyond
// MaxKeys keys the least recently used one is forgotten, which errs on the
// side of allowing (that key starts again with a full bucket). Only
// authenticated callers should reach a Limiter, so the number of keys is
// the number of real identities active in the last minute.
//
// A nil *Limiter allows everything. It is safe for concurrent use.
type Limiter struct {
	perMinute int
	every     rate.Limit
	// idle is how long a bucket takes to fill up from empty.
	idle    time.Duration
	clock   clock.Clock
	maxKeys int

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  *list.List               // most recently used first
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// New returns a Limiter allowing each key perMinute events a minute, on
// clk (the wall clock when nil). perMinute <= 0 returns nil: no limit.
func New(perMinute int, clk clock.Clock) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Limiter{
		perMinute: perMinute,
		every:     rate.Every(time.Minute / time.Duration(perMinute)),
		idle:      time.Minute,
		clock:     clk,
		maxKeys:   DefaultMaxKeys,
		keys:      map[string]*list.Element{},
		lru:       list.New(),
	}
}

// PerMinute returns the limit per key and minute; 0 for a nil Limiter.
func (l *Limiter) PerMinute() int {
	if l == nil {
		return 0
	}
	return l.perMinute
}

// Allow takes one token from key's bucket. When none is left it takes
// nothing and reports how long until one is: a refused call does not
// push the next allowed one further out.
func (l *Limiter) Allow(key string) (retryAfter time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)
	var b *bucket
	if e, found := l.keys[key]; found {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		for l.lru.Len() >= l.maxKeys {
			l.forget(l.lru.Back())
		}
		b = &bucket{key: key, lim: rate.NewLimiter(l.every, l.perMinute)}
		l.keys[key] = l.lru.PushFront(b)
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// forgetIdle drops the buckets unused for l.idle, oldest first.
func (l *Limiter) forgetIdle(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		if now.Sub(e.Value.(*bucket).last) < l.idle {
			return
		}
		l.forget(e)
	}
}

func (l *Limiter) forget(e *list.Element) {
	delete(l.keys, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// Len returns how many keys the Limiter remembers.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// Seconds rounds a retry delay up to whole seconds, at least one: the
// value of a Retry-After header, and what a person is told to wait.
func Seconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
