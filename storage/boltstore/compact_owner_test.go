//go:build unix

package boltstore_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/signoff-dev/signoff/storage/boltstore"
)

// The compacted file takes the original's place with its mode and, where
// the process may set it (as root), its owner: compacting as root a file
// the service account owns must not leave the service a database it cannot
// open.
func TestCompactKeepsModeAndOwner(t *testing.T) {
	path, _, _ := oldStyleFile(t)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := os.Chown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	before := statOf(t, path)

	if _, err := boltstore.Compact(context.Background(), path, boltstore.Options{}); err != nil {
		t.Fatal(err)
	}
	after := statOf(t, path)
	if after.Ino == before.Ino {
		t.Fatal("the file was not replaced by a copy: this test checks nothing")
	}
	if mode := os.FileMode(after.Mode).Perm(); mode != 0o640 {
		t.Errorf("mode after compact %04o, want 0640", mode)
	}
	if after.Uid != before.Uid || after.Gid != before.Gid {
		t.Errorf("owner after compact %d:%d, want %d:%d", after.Uid, after.Gid, before.Uid, before.Gid)
	}
	if asRoot && after.Uid != nobody {
		t.Errorf("owner after compact %d, want %d", after.Uid, nobody)
	}
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t)
}
