package storage

import (
	"context"
	"io"
)

// Backuper is a capability a backend may have beyond Store: copying its
// whole database while it serves (a hot backup). Callers type-assert a
// Store to it:
//
//	if b, ok := store.(storage.Backuper); ok { … }
//
// A backend that does not implement it is backed up with its own tools
// (PostgreSQL: pg_dump); the admin API answers 501 for it.
type Backuper interface {
	// Snapshot calls fn with a consistent, read-only image of the whole
	// database as it stood when Snapshot began: every change committed
	// before is in it, none committed after. Writers go on while fn runs,
	// but the image pins what it covers (bbolt: a commit that must enlarge
	// the file's memory map waits until fn returns), so fn should stream
	// the image out and return, and must never wait for a writer. fn must
	// not keep the BackupImage after it returns, nor call back into the
	// store. Snapshot returns fn's error, or why the image could not be
	// taken.
	Snapshot(ctx context.Context, fn func(BackupImage) error) error
}

// BackupImage is a database image being copied (see Backuper).
type BackupImage interface {
	// Size is the exact number of bytes WriteTo writes.
	Size() int64
	// WriteTo writes the image: a file the backend opens as it opens its
	// own (for the bbolt backend, a bbolt file). It stops with the
	// Snapshot's ctx error once that ctx is done. It may be called once.
	WriteTo(w io.Writer) (int64, error)
}
