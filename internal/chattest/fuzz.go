package chattest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// Fuzz is what a fuzz target of either adapter runs against besides the
// adapter itself, built once (it takes a testing.TB): a fake clock at T0,
// a bolt store kept in memory where it can be, the approvals service
// logging only panics, and the audit log verified as it grows.
type Fuzz struct {
	Clock *clock.Fake
	Store storage.Store
	Svc   *approvals.Service
	// Logger keeps only the error records about panics; give it to the
	// adapter too, so Panics sees a panic recovered in background work.
	Logger *slog.Logger

	panics *panicLog
	tail   *testenv.AuditTail
}

// NewFuzz opens the store (closed when tb ends) and starts the approvals
// service with pol for platform.
func NewFuzz(tb testing.TB, pol *policy.Policy, platform string) *Fuzz {
	tb.Helper()
	st, err := boltstore.Open(filepath.Join(fuzzDir(tb), "signoff.db"), boltstore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	f := &Fuzz{Clock: clock.NewFake(T0), Store: st, panics: &panicLog{}, tail: testenv.NewAuditTail(st)}
	f.Logger = slog.New(f.panics)
	f.Svc = approvals.New(st, pol, approvals.Options{Clock: f.Clock, Logger: f.Logger, Platforms: []string{platform}})
	return f
}

// fuzzDir is a temporary directory for the store, in memory (/dev/shm)
// where there is one: a fuzz target commits often, and an fsync to disk
// would make most of its time.
func fuzzDir(tb testing.TB) string {
	if dir, err := os.MkdirTemp("/dev/shm", "signoff-fuzz-"); err == nil {
		tb.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	return tb.TempDir()
}

// Create asks for a request of action by Requester, failing tb on error
// (a request already open is returned as it is).
func (f *Fuzz) Create(tb testing.TB, action string, params map[string]string, reason string) storage.Request {
	tb.Helper()
	r, _, err := f.Svc.Create(context.Background(), approvals.CreateInput{Requester: Requester(), Action: action, Params: params, Reason: reason})
	if err != nil {
		tb.Fatalf("create %s: %v", action, err)
	}
	return r
}

// CreateEach creates one request of each action, without a reason and
// with DeployParams for deploy-prod (no parameters for any other), and
// returns their ids in the same order.
func (f *Fuzz) CreateEach(tb testing.TB, actions ...string) []string {
	tb.Helper()
	ids := make([]string, 0, len(actions))
	for _, a := range actions {
		var params map[string]string
		if a == "deploy-prod" {
			params = DeployParams()
		}
		ids = append(ids, f.Create(tb, a, params, "").ID)
	}
	return ids
}

// Panics returns the panics logged since the last call.
func (f *Fuzz) Panics() []string { return f.panics.take() }

// CheckAudit verifies the audit records written since the last check:
// each a line a verifier accepts (at most audit.MaxLineBytes), chained to
// the ones before.
func (f *Fuzz) CheckAudit(tb testing.TB) {
	tb.Helper()
	f.tail.Check(tb)
}

// AuditSeq is the sequence number of the last record CheckAudit took.
func (f *Fuzz) AuditSeq() uint64 { return f.tail.Seq() }

// panicLog is a slog handler that keeps the error records about panics.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler           { return p }
func (p *panicLog) WithGroup(string) slog.Handler                { return p }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.Contains(r.Message, "panicked") {
		return nil
	}
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	p.mu.Lock()
	defer p.mu.Unlock()
	p.panics = append(p.panics, msg)
	return nil
}

func (p *panicLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.panics
	p.panics = nil
	return out
}

// ErrNotStandIn is what an OnlyHost client answers for any other host.
var ErrNotStandIn = errors.New("fuzz: only the platform's stand-in is reachable")

// OnlyHost returns an HTTP client that reaches host (a stand-in on
// loopback) and nothing else, so no input can make an adapter under fuzzing
// call out to a host it names.
func OnlyHost(host string) *http.Client {
	return &http.Client{Transport: onlyHost{host: host}, Timeout: 10 * time.Second}
}

type onlyHost struct{ host string }

func (o onlyHost) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != o.host {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, ErrNotStandIn
	}
	return http.DefaultTransport.RoundTrip(r)
}
