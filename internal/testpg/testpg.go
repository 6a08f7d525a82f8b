// Package testpg gives a test a PostgreSQL schema of its own in the
// throwaway server the test command starts (scripts/with-postgres, called by
// scripts/test), so that PostgreSQL suites run in parallel without seeing
// each other's tables.
//
// The server is named by the environment variable SIGNOFF_TEST_POSTGRES (a
// DSN in URL form). Without it a test that asks for a schema is skipped with a
// message saying how to run it, except under CI=true, where a missing server
// is a failure: CI must never pass by skipping the PostgreSQL suites.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "SIGNOFF_TEST_POSTGRES"

// ServerDSN returns the test server's DSN, skipping (or, under CI=true,
// failing) t when there is none.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn != "" {
		return dsn
	}
	const msg = EnvDSN + " is not set: this test needs PostgreSQL; run it through ./scripts/test, " +
		"or scripts/with-postgres go test …, which start a throwaway server (Debian: apt-get install postgresql)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Schema creates a new, empty schema in the test server and returns a DSN
// whose connections use it (search_path), with the schema's name. The schema
// and everything in it is dropped when the test ends.
func Schema(t testing.TB) (dsn, schema string) {
	t.Helper()
	server := ServerDSN(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema = "t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL (%s): %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s is not a URL DSN: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}
