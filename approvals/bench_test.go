package approvals_test

// Benchmarks for the durable lifecycle on each backend, next to the floors
// set by the disk: a bare bbolt loop that commits (and fsyncs) one small put
// per iteration, and a bare PostgreSQL loop that commits one small insert.
// Run: scripts/with-postgres go test -run '^$' -bench . -benchtime 3s ./approvals/
// (without a PostgreSQL server the postgres cases skip). The figures are
// reported in the README; nothing here asserts a time.

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

// BenchmarkBareBoltPutFsync is the baseline: one writer, one durable
// bbolt transaction with one put per iteration.
func BenchmarkBareBoltPutFsync(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bare.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	value := make([]byte, 512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(i))
			return bk.Put(k[:], value)
		})
		if err != nil {
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
	alice, bob := approver("alice", "sre"), approver("bob", "sre")
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

// benchService is a service on a fresh store of the backend ("bolt" or
// "postgres"; the latter skips without a test server).
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
	clk := clock.NewFake(t0)
	return approvals.New(st, testPolicy(), approvals.Options{Clock: clk, Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)})
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
