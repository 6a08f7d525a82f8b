package approvals_test

// Benchmarks for the durable lifecycle, next to the floor set by the disk:
// a bare bbolt loop that commits (and fsyncs) one small put per iteration.
// Run: go test -run '^$' -bench . -benchtime 3s ./approvals/
// The figures are reported in the README; nothing here asserts a time.

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
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

// BenchmarkCreate measures durable creates (policy check, request, audit
// record, outbox entries in one commit) at 1 and 32 concurrent clients.
func BenchmarkCreate(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			svc, _ := benchService(b)
			in := approvals.CreateInput{Requester: requester, Action: "deploy-prod", Params: deployParams(), Reason: "benchmark"}
			runClients(b, clients, func() {
				if _, _, err := svc.Create(context.Background(), in); err != nil {
					b.Error(err)
					return
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkCycle measures one whole request: create, two approvals that
// reach quorum, the decision and the queued execution (three commits).
func BenchmarkCycle(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			svc, _ := benchService(b)
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
		})
	}
}

func benchService(b *testing.B) (*approvals.Service, *boltstore.Store) {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "signoff.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clk := clock.NewFake(t0)
	return approvals.New(st, testPolicy(), approvals.Options{Clock: clk, Platforms: []string{"slack"}, Logger: slog.New(slog.DiscardHandler)}), st
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
