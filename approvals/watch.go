package approvals

import (
	"context"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// hub wakes goroutines waiting on a request when it changes.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: make(map[string]map[chan struct{}]struct{})} }

func (h *hub) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = make(map[chan struct{}]struct{})
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(ids ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		for ch := range h.subs[id] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Watch returns a channel that receives a value whenever the request
// changes (a vote, a decision, an execution result), and a function to stop
// watching. It does not poll the store.
func (s *Service) Watch(id string) (<-chan struct{}, func()) {
	return s.watchers.subscribe(id)
}

// RelayChanges wakes this process's watchers (Watch, Wait) when another
// replica sharing the store commits a change to a request, until ctx ends.
// It needs a store that is a storage.ChangeFeed (PostgreSQL); on any other
// it returns nil at once, since one process's commits already wake its
// watchers.
func (s *Service) RelayChanges(ctx context.Context) error {
	feed, ok := s.store.(storage.ChangeFeed)
	if !ok {
		return nil
	}
	return feed.WatchRequests(ctx, func(id string) { s.watchers.notify(id) })
}

// Wait blocks until the request has left pending or ctx ends, and returns
// the request as last read. It wakes on commits in this process, on other
// replicas' commits that RelayChanges relays, and, in case a notice was
// missed, re-reads every Options.ReplicaPoll; it never busy-loops. When ctx ends first it returns the still-pending
// request and ctx's error.
func (s *Service) Wait(ctx context.Context, id string) (storage.Request, error) {
	changed, stop := s.watchers.subscribe(id)
	defer stop()
	for {
		r, err := s.Get(ctx, id)
		if err != nil {
			return r, err
		}
		if r.State != storage.StatePending {
			return r, nil
		}
		timer := time.NewTimer(s.opts.ReplicaPoll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return r, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}
