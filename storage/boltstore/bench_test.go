package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/barebolt"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// BenchmarkBarePutFsync is the baseline: bare bbolt, one writer, one small
// Put per db.Update, default fsync on every commit.
func BenchmarkBarePutFsync(b *testing.B) {
	f, err := barebolt.Open(filepath.Join(b.TempDir(), "bare.db"), 64)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// The first commit makes the bucket, before the timed loop.
	if err := f.Commit(0); err != nil {
		b.Fatal(err)
	}
	var i uint64
	for b.Loop() {
		i++
		if err := f.Commit(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkGroupCommit measures what one state change costs through Store:
// each operation is one Update that creates a request, appends an audit
// record after the current head and enqueues an outbox entry.
func BenchmarkGroupCommit(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "signoff.db"), boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var next atomic.Uint64
			op := func() error {
				return s.Update(ctx, benchChange(fmt.Sprintf("req-%08d", next.Add(1))))
			}
			commits := boltstore.Commits(s)
			if clients == 1 {
				for b.Loop() {
					if err := op(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((clients + procs - 1) / procs)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := op(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(boltstore.Commits(s)-commits)/float64(b.N), "commits/op")
		})
	}
}

var benchRecord = []byte(`{"seq":0,"time":"2025-03-14T14:09:26.535897932Z","event":"request.created",` +
	`"request":"req-00000000","actor":{"issuer":"github","subject":"repo:acme/api:ref:refs/heads/main"},` +
	`"action":"deploy","params":{"service":"api","version":"1.4.2"},"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`)

func benchChange(id string) func(storage.Tx) error {
	now := time.Date(2025, 3, 14, 14, 9, 26, 0, time.UTC)
	r := storage.Request{
		ID:           id,
		Action:       "deploy",
		Params:       map[string]string{"service": "api", "version": "1.4.2"},
		Reason:       "release 1.4.2",
		Requester:    storage.Requester{Issuer: "github", Subject: "repo:acme/api:ref:refs/heads/main", Person: "octocat"},
		State:        storage.StatePending,
		MinApprovals: 2,
		CreatedAt:    now,
		ExpiresAt:    now.Add(time.Hour),
	}
	e := storage.OutboxEntry{RequestID: id, Kind: "slack.post", Payload: []byte(`{"channel":"C123","request":"` + id + `"}`), NextAttempt: now, CreatedAt: now}
	return func(tx storage.Tx) error {
		if err := tx.CreateRequest(r); err != nil {
			return err
		}
		seq, _, err := tx.AuditHead()
		if err != nil {
			return err
		}
		if err := tx.AppendAudit(seq+1, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", benchRecord); err != nil {
			return err
		}
		_, err = tx.Enqueue(e)
		return err
	}
}
