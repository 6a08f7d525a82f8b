package boltstore

import "go.etcd.io/bbolt"

// Commits returns how many bolt write transactions the committer has run.
func Commits(s *Store) uint64 { return s.committer.Commits() }

// Queued returns how many Update calls wait for the committer.
func Queued(s *Store) int { return s.committer.Queued() }

// Closing reports whether Close has begun.
func Closing(s *Store) bool { return s.committer.Closed() }

// DB returns the underlying bolt database.
func DB(s *Store) *bbolt.DB { return s.db }

// LinkKey is the key an identity link is stored under.
var LinkKey = linkKey

// SameFiles compares two bbolt files as Compact compares the copy with the
// original.
func SameFiles(a, b *bbolt.DB) (int, error) {
	var n int
	err := a.View(func(atx *bbolt.Tx) error {
		return b.View(func(btx *bbolt.Tx) error {
			var err error
			n, err = sameBuckets(atx.Cursor(), btx.Cursor(), atx.Bucket, btx.Bucket, "", false)
			return err
		})
	})
	return n, err
}
