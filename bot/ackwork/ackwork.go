// Package ackwork runs the work a chat adapter does after it has already
// answered the platform (Slack's three seconds, Teams' five): identity
// checks, votes, replies. The work is bound to the adapter's lifetime, so
// a shutdown waits for what was acknowledged and then cancels the rest.
package ackwork

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Group tracks background work. Create it with New.
type Group struct {
	timeout time.Duration
	log     *slog.Logger
	name    string

	base     context.Context
	stop     context.CancelFunc
	inflight sync.WaitGroup
	mu       sync.Mutex
	closed   bool
}

// New returns a group whose work each runs at most timeout; name labels
// its log lines and errors (e.g. "slack callback").
func New(name string, timeout time.Duration, log *slog.Logger) *Group {
	base, stop := context.WithCancel(context.Background())
	return &Group{timeout: timeout, log: log, name: name, base: base, stop: stop}
}

// Track counts work that Shutdown must wait for. It reports false (and
// counts nothing) once shutdown has begun; otherwise the caller calls done
// when finished.
func (g *Group) Track() (done func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, false
	}
	g.inflight.Add(1)
	return g.inflight.Done, true
}

// Spawn runs fn in the background with a context bound to the group's
// lifetime and timeout; a panic in fn is logged, not fatal. It reports
// false when shutdown has begun.
func (g *Group) Spawn(fn func(ctx context.Context)) bool {
	done, ok := g.Track()
	if !ok {
		return false
	}
	go func() {
		defer done()
		ctx, cancel := context.WithTimeout(g.base, g.timeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				g.log.Error(g.name+" work panicked", "panic", fmt.Sprint(p))
			}
		}()
		fn(ctx)
	}()
	return true
}

// Wait blocks until the work started so far has finished (tests use it to
// see the effects of a callback).
func (g *Group) Wait() { g.inflight.Wait() }

// Shutdown stops taking new work and waits until the work already accepted
// has finished or ctx ends; then it cancels what is left.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.inflight.Wait(); close(done) }()
	select {
	case <-done:
		g.stop()
		return nil
	case <-ctx.Done():
		g.stop()
		<-done
		return fmt.Errorf("shutdown: %s work cancelled: %w", g.name, ctx.Err())
	}
}

// Context is the group's lifetime: it ends when Shutdown gives up waiting
// or finishes.
func (g *Group) Context() context.Context { return g.base }
