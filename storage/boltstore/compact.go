package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// compactTxBytes bounds how many bytes of keys and values one transaction
// of the copy writes, so that compacting a large file does not hold all of
// it in memory at once.
const compactTxBytes = 64 << 20

// CompactResult says what Compact did.
type CompactResult struct {
	// Before and After are the file's sizes in bytes.
	Before, After int64
	// Keys is how many keys (in every bucket) were copied and compared.
	Keys int
}

// Compact rewrites the store file at path with every page filled and every
// request and audit record packed (pack.go): bbolt never shrinks a file,
// and files written before signoff filled the pages of its appended
// buckets and packed its records (docs/performance.md) take three times
// the space. The copy has the same buckets, keys, values (as they read)
// and bucket sequences; it is compared with the original key by key, made durable,
// and only then renamed over the original in the same directory (the
// directory is synced too), so path always holds either the old file or a
// complete, checked copy. On any failure the original is left as it was
// and the partial copy removed.
//
// Compact holds the file's lock from start to end: it fails with an error
// wrapping storage.ErrLocked while a server uses the file, and no server
// can start on it meanwhile. It needs free space for the copy (at most the
// file's size) in path's directory. The copy keeps the original's mode and
// owner; where it cannot (not run as the owner or root), Compact fails
// before replacing anything. A symbolic link is followed: the file it
// names is compacted in its own directory.
func Compact(ctx context.Context, path string, opts Options) (CompactResult, error) {
	var res CompactResult
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("compact store %s: %w", path, err)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return res, fmt.Errorf("compact store %s: %w", path, err)
	}
	src, err := Open(target, Options{LockTimeout: opts.LockTimeout})
	if err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	defer src.Close()
	info, err := os.Stat(target)
	if err != nil {
		return res, fmt.Errorf("compact store %s: %w", target, err)
	}
	res.Before = info.Size()

	tmp, err := os.CreateTemp(filepath.Dir(target), filepath.Base(target)+".compact-*")
	if err != nil {
		return res, fmt.Errorf("compact store %s: create the copy next to it: %w", target, err)
	}
	tmpPath := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmpPath)
		}
	}()
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("compact store %s: %w", target, err)
	}
	if res.Keys, err = copyCompacted(ctx, src.db, tmpPath, info.Mode().Perm()); err != nil {
		return res, fmt.Errorf("compact store %s: %w", target, err)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("compact store %s: %w", target, err)
	}
	// The copy takes the original's place, so it takes its permissions and
	// owner too (os.CreateTemp made it 0600, owned by whoever runs this).
	if err := os.Chmod(tmpPath, info.Mode().Perm()); err != nil {
		return res, fmt.Errorf("compact store %s: give the copy the original's mode %04o: %w", target, info.Mode().Perm(), err)
	}
	if err := keepOwner(tmpPath, info); err != nil {
		return res, fmt.Errorf("compact store %s: %w", target, err)
	}
	if err := os.Rename(tmpPath, target); err != nil {
		return res, fmt.Errorf("compact store %s: replace it with the copy: %w", target, err)
	}
	renamed = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return res, fmt.Errorf("compact store %s: the copy replaced it, but syncing its directory failed: %w", target, err)
	}
	if info, err = os.Stat(target); err == nil {
		res.After = info.Size()
	}
	return res, nil
}

// copyCompacted writes src into a new bbolt file at dstPath with full
// pages, compares the two, and syncs the copy. It returns the number of
// keys compared.
func copyCompacted(ctx context.Context, src *bbolt.DB, dstPath string, mode os.FileMode) (int, error) {
	// The copy is synced once at the end instead of at every commit: until
	// then it is a scratch file nobody else knows of.
	dst, err := bbolt.Open(dstPath, mode, &bbolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("open the copy %s: %w", dstPath, err)
	}
	defer dst.Close()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := copyRepacked(dst, src); err != nil {
		return 0, fmt.Errorf("copy into %s: %w", dstPath, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var keys int
	err = src.View(func(stx *bbolt.Tx) error {
		return dst.View(func(dtx *bbolt.Tx) error {
			n, err := sameBuckets(stx.Cursor(), dtx.Cursor(), stx.Bucket, dtx.Bucket, "", false)
			keys = n
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("check the copy %s against the original: %w", dstPath, err)
	}
	if err := dst.Sync(); err != nil {
		return 0, fmt.Errorf("sync the copy %s: %w", dstPath, err)
	}
	if err := dst.Close(); err != nil {
		return 0, fmt.Errorf("close the copy %s: %w", dstPath, err)
	}
	return keys, nil
}

// sameBuckets walks two cursors in step and fails at the first key, value,
// nested bucket or bucket sequence that differs, naming where. Values of a
// packed bucket (packed true) are compared as they read, since the copy
// packs them anew. It returns how many keys it compared.
func sameBuckets(a, b *bbolt.Cursor, aBucket, bBucket func([]byte) *bbolt.Bucket, where string, packed bool) (int, error) {
	n := 0
	ak, av := a.First()
	bk, bv := b.First()
	for ; ak != nil || bk != nil; ak, av, bk, bv, n = nextPair(a, b, n) {
		if !bytes.Equal(ak, bk) {
			return n, fmt.Errorf("%skeys differ after %d keys: %q in the original, %q in the copy", where, n, ak, bk)
		}
		if (av == nil) != (bv == nil) {
			return n, fmt.Errorf("%skey %q is a bucket in one file only", where, ak)
		}
		if av != nil {
			if !sameValue(av, bv, packed) {
				return n, fmt.Errorf("%svalue of key %q differs", where, ak)
			}
			continue
		}
		sa, sb := aBucket(ak), bBucket(ak)
		if sa == nil || sb == nil {
			return n, fmt.Errorf("%sbucket %q is missing", where, ak)
		}
		if sa.Sequence() != sb.Sequence() {
			return n, fmt.Errorf("bucket %q: sequence %d in the original, %d in the copy", ak, sa.Sequence(), sb.Sequence())
		}
		inner, err := sameBuckets(sa.Cursor(), sb.Cursor(), sa.Bucket, sb.Bucket, fmt.Sprintf("bucket %q: ", ak), where == "" && isPackedBucket(ak))
		n += inner
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sameValue reports whether two stored values are the same value: the same
// bytes, or in a packed bucket the same bytes once unpacked.
func sameValue(a, b []byte, packed bool) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if !packed {
		return false
	}
	ua, _, errA := unpack(a)
	ub, _, errB := unpack(b)
	return errA == nil && errB == nil && bytes.Equal(ua, ub)
}

// isPackedBucket reports whether the top-level bucket name holds packed
// values (pack.go).
func isPackedBucket(name []byte) bool {
	return bytes.Equal(name, bucketRequests) || bytes.Equal(name, bucketAudit)
}

// copyRepacked copies every bucket of src into dst, key by key in key
// order, with full pages and the buckets' sequences, committing every
// compactTxBytes. Values of the packed buckets are packed anew, so a file
// from schema version 1 comes out with packed values.
func copyRepacked(dst, src *bbolt.DB) error {
	c := &copier{dst: dst}
	err := src.View(func(stx *bbolt.Tx) error {
		return stx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return c.bucket([][]byte{name}, b, isPackedBucket(name))
		})
	})
	if c.tx == nil {
		return err
	}
	if err != nil {
		_ = c.tx.Rollback()
		return err
	}
	return c.tx.Commit()
}

// copier writes into dst in transactions of at most compactTxBytes.
type copier struct {
	dst  *bbolt.DB
	tx   *bbolt.Tx
	size int
}

// bucket copies src, found at path, and everything in it.
func (c *copier) bucket(path [][]byte, src *bbolt.Bucket, packed bool) error {
	b, err := c.target(path, 0)
	if err != nil {
		return err
	}
	if err := b.SetSequence(src.Sequence()); err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if v == nil {
			return c.bucket(append(slices.Clip(path), k), src.Bucket(k), false)
		}
		if packed {
			u, _, err := unpack(v)
			if err != nil {
				return fmt.Errorf("bucket %q key %q: %w", path[len(path)-1], k, err)
			}
			v = pack(u)
		}
		b, err := c.target(path, len(k)+len(v))
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
}

// target returns the bucket at path in the current write transaction,
// first committing it and beginning another when adding n bytes would pass
// compactTxBytes. Buckets are created as needed, with full pages.
func (c *copier) target(path [][]byte, n int) (*bbolt.Bucket, error) {
	if c.tx != nil && c.size+n > compactTxBytes {
		if err := c.tx.Commit(); err != nil {
			return nil, err
		}
		c.tx = nil
	}
	if c.tx == nil {
		tx, err := c.dst.Begin(true)
		if err != nil {
			return nil, err
		}
		c.tx, c.size = tx, 0
	}
	c.size += n
	b, err := c.tx.CreateBucketIfNotExists(path[0])
	for _, name := range path[1:] {
		if err != nil {
			break
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	if err != nil {
		return nil, err
	}
	b.FillPercent = 1.0
	return b, nil
}

// nextPair advances both cursors and counts the key just compared.
func nextPair(a, b *bbolt.Cursor, n int) (ak, av, bk, bv []byte, _ int) {
	ak, av = a.Next()
	bk, bv = b.Next()
	return ak, av, bk, bv, n + 1
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) {
		// Some file systems cannot sync a directory; the rename stands.
		return nil
	}
	return err
}
