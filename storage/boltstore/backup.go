package boltstore

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
)

var _ storage.Backuper = (*Store)(nil)

// Snapshot implements storage.Backuper: fn gets the database as one bolt
// read transaction sees it, and its WriteTo is bbolt's Tx.WriteTo, which
// writes a complete bbolt file of exactly Size bytes (the transaction's
// meta page twice, then every page it covers). The copy opens with Open
// like the original.
//
// A read transaction lets writers commit, with one exception: a commit
// that must enlarge the memory map (the file outgrew it; the map doubles
// up to 1 GiB, then grows by 1 GiB) waits until every read transaction
// has ended, this one included. Pages the transaction covers are not
// reused until it ends, so the file may grow while a long copy runs. So
// fn should copy at the speed of its writer and never wait for a commit;
// ctx stops the copy. Close waits for a copy in progress.
func (s *Store) Snapshot(ctx context.Context, fn func(storage.BackupImage) error) error {
	return s.read(ctx, "back up", func(tx *bbolt.Tx) error {
		img := &image{tx: tx, ctx: ctx, path: s.path}
		err := fn(img)
		img.tx = nil // fn must not keep it
		return err
	})
}

// image is a storage.BackupImage over a bolt read transaction.
type image struct {
	tx      *bbolt.Tx
	ctx     context.Context
	path    string
	written bool
}

func (i *image) Size() int64 {
	if i.tx == nil {
		return 0
	}
	return i.tx.Size()
}

func (i *image) WriteTo(w io.Writer) (int64, error) {
	switch {
	case i.tx == nil:
		return 0, fmt.Errorf("back up store %s: the image was used after its Snapshot returned", i.path)
	case i.written:
		return 0, fmt.Errorf("back up store %s: the image was already written", i.path)
	}
	i.written = true
	n, err := i.tx.WriteTo(&ctxWriter{ctx: i.ctx, w: w})
	if err != nil {
		// bbolt words some write errors with %s; keep ctx's in the chain
		// so callers can tell a cancelled copy from a failed one.
		if cerr := i.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("back up store %s: %w", i.path, cerr)
		}
		return n, fmt.Errorf("back up store %s: %w", i.path, err)
	}
	return n, nil
}
