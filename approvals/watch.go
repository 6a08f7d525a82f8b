package approvals

import (
	"context"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// crossReplicaPoll bounds how long Wait can miss a change committed by
// another replica sharing the store (which cannot wake this process's
// watchers). Within one process, watchers wake on commit.
const crossReplicaPoll = 2 * time.Second

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

// Wait blocks until the request has left pending or ctx ends, and returns
// the request as last read. It wakes on commits in this process and, to see
// other replicas' commits, re-reads at most every couple of seconds; it
// never busy-loops. When ctx ends first it returns the still-pending
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
		timer := time.NewTimer(crossReplicaPoll)
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
