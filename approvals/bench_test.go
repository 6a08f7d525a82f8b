package approvals_test

// Benchmarks for the durable lifecycle on each backend, next to the floors
// set by the disk: a bare bbolt loop that commits (and fsyncs) one small put
// per iteration, and a bare PostgreSQL loop that commits one small insert.
// Run: scripts/with-postgres go test -run '^$' -bench . -benchtime 3s ./approvals/
// (without a PostgreSQL server the postgres cases skip). The figures are
// reported in docs/performance.md; nothing here asserts a time.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/barebolt"
	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

// BenchmarkBareBoltPutFsync is the baseline: one writer, one durable
// bbolt transaction with one put per iteration.
func BenchmarkBareBoltPutFsync(b *testing.B) {
	f, err := barebolt.Open(filepath.Join(b.TempDir(), "bare.db"), 512)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Commit(uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkBarePostgresInsertCommit is PostgreSQL's baseline: one writer,
// one committed transaction with one small insert per iteration.
func BenchmarkBarePostgresInsertCommit(b *testing.B) {
	dsn, _ := testpg.Schema(b)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE bare (k bigint PRIMARY KEY, v bytea NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO bare VALUES ($1, $2)`, i, value)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// backends are the stores the lifecycle benchmarks run on.
var backends = []string{"bolt", "postgres"}

// onBackends runs bench as a sub-benchmark on each backend at 1 and 32
// concurrent clients.
func onBackends(b *testing.B, bench func(b *testing.B, backend string, clients int)) {
	b.Helper()
	for _, backend := range backends {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("store=%s/clients=%d", backend, clients), func(b *testing.B) {
				bench(b, backend, clients)
			})
		}
	}
}

// BenchmarkCreate measures durable creates (policy check, request, audit
// record, outbox entries in one commit) on each backend at 1 and 32
// concurrent clients.
func BenchmarkCreate(b *testing.B) {
	onBackends(b, benchCreate)
}

func benchCreate(b *testing.B, backend string, clients int) {
	svc := benchService(b, backend)
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "benchmark"}
	runClients(b, clients, func() {
		if _, _, err := svc.Create(context.Background(), in); err != nil {
			b.Error(err)
			return
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkCycle measures one whole request on each backend: create, two
// approvals that reach quorum, the decision and the queued execution
// (three commits).
func BenchmarkCycle(b *testing.B) {
	onBackends(b, benchCycle)
}

func benchCycle(b *testing.B, backend string, clients int) {
	svc := benchService(b, backend)
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "benchmark"}
	// Confirmed by the IdP just now: the service runs on the wall clock.
	alice, bob := approver("alice", "sre"), approver("bob", "sre")
	alice.VerifiedAt, bob.VerifiedAt = time.Now(), time.Now()
	runClients(b, clients, func() {
		ctx := context.Background()
		r, _, err := svc.Create(ctx, in)
		if err != nil {
			b.Error(err)
			return
		}
		for _, who := range []string{"alice", "bob"} {
			id := alice
			if who == "bob" {
				id = bob
			}
			if _, err := svc.Vote(ctx, approvals.VoteInput{RequestID: r.ID, Approver: id, Decision: storage.DecisionApprove, Source: approvals.Source{Platform: "dev"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// BenchmarkStoreBytesPerRequest creates b.N requests (32 clients, the clock
// moving a millisecond every few creates as under real load) and reports
// the bbolt file's size divided by b.N, the figure a lean database keeps
// low. The requests stay pending, so their index entries count too; the
// outbox is empty (no chat platform), as it is once entries are delivered.
// Run it with -benchtime 200000x for the figure in docs/performance.md.
func BenchmarkStoreBytesPerRequest(b *testing.B) {
	svc, clk, st, path := benchBoltService(b, nil)
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "benchmark"}
	var made atomic.Int64
	runClients(b, 32, func() {
		if made.Add(1)%4 == 0 {
			clk.Advance(time.Millisecond)
		}
		if _, _, err := svc.Create(context.Background(), in); err != nil {
			b.Error(err)
		}
	})
	b.ReportMetric(float64(fileSize(b, path))/float64(b.N), "bytes/request")
	reportBuckets(b, st, path)
}

// reportBuckets closes the store and reports, per bucket that
// holds anything, the bytes of the pages it takes up per request (b.N):
// where the file's size goes.
func reportBuckets(b *testing.B, st *boltstore.Store, path string) {
	b.Helper()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			st := bk.Stats()
			if used := st.BranchAlloc + st.LeafAlloc; used > 0 {
				b.ReportMetric(float64(used)/float64(b.N), string(name)+"-bytes/request")
			}
			return nil
		})
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreateWithHistory compares durable creates at 32 clients on two
// bbolt stores: one that already holds a history of decided requests (each
// created, then expired: its record, its time index entry and two audit
// records) and one that started empty. It alternates between them, 500
// creates at a time, so that both see the same disk and the same
// neighbours on a shared machine, and reports both rates and their ratio
// (history/empty): a create's cost must not grow with history. The
// history's size is SIGNOFF_BENCH_HISTORY (default 20,000, so that the
// test command's single iteration stays short; docs/performance.md uses
// 1,000,000). The stores are filled once, before the sub-benchmark, and
// reused across its rounds.
func BenchmarkCreateWithHistory(b *testing.B) {
	history := 20_000
	if v := os.Getenv("SIGNOFF_BENCH_HISTORY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("SIGNOFF_BENCH_HISTORY=%q: want a whole number of requests", v)
		}
		history = n
	}
	in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "benchmark"}
	empty, emptyClock, _, _ := benchBoltService(b, nil)
	full, clk, _, path := benchBoltService(b, nil)
	fillHistory(b, full, clk, in, history)
	size := fileSize(b, path)
	b.Run(fmt.Sprintf("stored=%d", history), func(b *testing.B) {
		var onEmpty, onFull time.Duration
		for done := 0; done < b.N; {
			chunk := min(500, b.N-done)
			onEmpty += timeCreates(b, empty, emptyClock, in, chunk)
			onFull += timeCreates(b, full, clk, in, chunk)
			done += chunk
		}
		b.ReportMetric(float64(b.N)/onEmpty.Seconds(), "empty-creates/s")
		b.ReportMetric(float64(b.N)/onFull.Seconds(), "history-creates/s")
		b.ReportMetric(onEmpty.Seconds()/onFull.Seconds(), "history/empty")
		if history > 0 {
			b.ReportMetric(float64(size)/float64(history), "history-bytes/request")
		}
	})
}

// timeCreates makes n creates through svc from 32 goroutines and returns
// how long they took. The service's clock moves a millisecond every four
// creates, as under real load, so that ids follow one another.
func timeCreates(b *testing.B, svc *approvals.Service, clk *clock.Fake, in approvals.CreateInput, n int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(32, n) {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if i%4 == 0 {
					clk.Advance(time.Millisecond)
				}
				if _, _, err := svc.Create(context.Background(), in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// fillHistory creates n requests through svc at 32 clients and then lets
// them all expire, leaving the clock at a time when none is pending.
func fillHistory(b *testing.B, svc *approvals.Service, clk *clock.Fake, in approvals.CreateInput, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	ctx := context.Background()
	var made atomic.Int64
	work := make(chan struct{})
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			for range work {
				if _, _, err := svc.Create(ctx, in); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range n {
		if made.Add(1)%8 == 0 {
			clk.Advance(time.Millisecond)
		}
		work <- struct{}{}
	}
	close(work)
	for range 32 {
		if err := <-errs; err != nil {
			b.Fatalf("fill history: %v", err)
		}
	}
	clk.Advance(2 * time.Hour)
	if expired, err := svc.ExpireDue(ctx); err != nil || expired != n {
		b.Fatalf("fill history: expired %d of %d: %v", expired, n, err)
	}
}

// benchBoltService is a service on a fresh bbolt store with the given chat
// platforms, with its fake clock, the store and the store's file.
func benchBoltService(b *testing.B, platforms []string) (*approvals.Service, *clock.Fake, *boltstore.Store, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "signoff.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clk := clock.NewFake(t0)
	return approvals.New(st, testPolicy(), approvals.Options{Clock: clk, Platforms: platforms, Logger: slog.New(slog.DiscardHandler)}), clk, st, path
}

func fileSize(b *testing.B, path string) int64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// benchService is a service on a fresh store of the backend ("bolt" or
// "postgres"; the latter skips without a test server) that posts cards to
// Slack (an outbox entry per create). It runs on the wall clock, as a
// server does: request ids begin with their creation millisecond, and a
// clock held still would make every id of a run share one millisecond and
// land in the B+trees at random places, which no server does.
func benchService(b *testing.B, backend string) *approvals.Service {
	b.Helper()
	var st storage.Store
	var err error
	if backend == "postgres" {
		dsn, _ := testpg.Schema(b)
		st, err = pgstore.Open(context.Background(), dsn, pgstore.Options{})
	} else {
		st, err = boltstore.Open(filepath.Join(b.TempDir(), "signoff.db"), boltstore.Options{})
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return approvals.New(st, testPolicy(), approvals.Options{Clock: clock.Real{}, Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)})
}

// runClients runs b.N calls of fn spread over exactly clients goroutines.
func runClients(b *testing.B, clients int, fn func()) {
	b.Helper()
	var next atomic.Int64
	done := make(chan struct{})
	b.ResetTimer()
	for c := 0; c < clients; c++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for next.Add(1) <= int64(b.N) {
				fn()
			}
		}()
	}
	for c := 0; c < clients; c++ {
		<-done
	}
	b.StopTimer()
}
