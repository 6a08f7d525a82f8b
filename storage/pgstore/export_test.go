package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// MigrateTo migrates the database behind dsn to version v only, as an older
// signoff would have left it.
func MigrateTo(ctx context.Context, dsn string, v int) (from int, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return migrate(ctx, conn, "test database", migrations, v)
}

// Commits returns how many transactions the committer has started.
func Commits(s *Store) uint64 { return s.committer.Commits() }

// Queued returns how many Update calls wait for the committer.
func Queued(s *Store) int { return s.committer.Queued() }
