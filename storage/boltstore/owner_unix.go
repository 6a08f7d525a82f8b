//go:build unix

package boltstore

import (
	"fmt"
	"os"
	"syscall"
)

// keepOwner gives the file at path the owner and group of the file info
// describes. Compact replaces a store file with a copy it made; run as root
// on a file the service account owns, the copy would otherwise belong to
// root and the service could no longer open its own database.
func keepOwner(path string, info os.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the copy the original's owner (uid %d, gid %d): %w; run compact as the file's owner or as root", st.Uid, st.Gid, err)
	}
	return nil
}
