package pgstore_test

import (
	"context"
	"testing"

	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/pgstore"
	"github.com/signoff-dev/signoff/storage/storagetest"
)

// open opens a store on dsn, failing the test if it cannot.
func open(t *testing.T, dsn string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		dsn, _ := testpg.Schema(t)
		return open(t, dsn, pgstore.Options{})
	})
}

func TestConformanceReopen(t *testing.T) {
	dsn, _ := testpg.Schema(t)
	storagetest.RunReopen(t, func(t *testing.T, _ string) storage.Store {
		return open(t, dsn, pgstore.Options{})
	})
}

// TestConformanceShared runs the concurrent cases through three stores on
// one database, each with its own connection pool, as three replicas.
func TestConformanceShared(t *testing.T) {
	storagetest.RunShared(t, func(t *testing.T) []storage.Store {
		dsn, _ := testpg.Schema(t)
		var stores []storage.Store
		for range 3 {
			stores = append(stores, open(t, dsn, pgstore.Options{}))
		}
		return stores
	})
}
