package ackwork

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestShutdownWaitsThenRefuses(t *testing.T) {
	g := New("test", time.Minute, slog.New(slog.DiscardHandler))
	release, finished := make(chan struct{}), make(chan struct{})
	if !g.Spawn(func(context.Context) { <-release; close(finished) }) {
		t.Fatal("spawn refused before shutdown")
	}
	g.Spawn(func(context.Context) { panic("boom") }) // logged, not fatal
	shut := make(chan error, 1)
	go func() { shut <- g.Shutdown(context.Background()) }()
	// Shutdown has begun (or is about to): new work is refused once it has.
	deadline := time.Now().Add(5 * time.Second)
	for g.Spawn(func(context.Context) {}) {
		if time.Now().After(deadline) {
			t.Fatal("spawn still accepted after Shutdown began")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-shut:
		t.Fatal("Shutdown returned before the accepted work finished")
	default:
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	<-finished
}

func TestShutdownCancelsWhatOutlivesItsDeadline(t *testing.T) {
	g := New("test", time.Minute, slog.New(slog.DiscardHandler))
	cancelled := make(chan struct{})
	g.Spawn(func(ctx context.Context) { <-ctx.Done(); close(cancelled) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v, want the deadline", err)
	}
	<-cancelled
}
