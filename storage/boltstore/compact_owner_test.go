//go:build unix

package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// compactChildPath names, in the environment of a child test process,
// the file TestCompactAsAnotherUser compacts.
const compactChildPath = "SIGNOFF_TEST_COMPACT_PATH"

// TestCompactAsAnotherUser is the child of
// TestCompactRefusesWhenItCannotKeepTheOwner: it compacts the file it is
// given and prints how that went. Run on its own it does nothing.
func TestCompactAsAnotherUser(t *testing.T) {
	path := os.Getenv(compactChildPath)
	if path == "" {
		t.Skip("run as another user by TestCompactRefusesWhenItCannotKeepTheOwner")
	}
	if _, err := boltstore.Compact(context.Background(), path, boltstore.Options{}); err != nil {
		fmt.Println("REFUSED:", err)
		return
	}
	fmt.Println("COMPACTED")
}

// A person who may write the file but cannot give the copy its owner (not
// root, not the owner: here a member of the file's group) must be refused
// before anything is replaced, not leave the service a database owned by
// someone else.
func TestCompactRefusesWhenItCannotKeepTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run compact as another user")
	}
	const nobody = 65534
	// A directory every user may enter and write (t.TempDir's parents are
	// root's alone).
	dir, err := os.MkdirTemp("", "signoff-compact-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	src, _, _ := oldStyleFile(t)
	path := filepath.Join(dir, "signoff.db")
	copyFile(t, src, path)
	chmod(t, path, 0o660)
	// Owned by root, writable by nobody's group: nobody may compact it but
	// not hand the copy to root.
	if err := os.Chown(path, 0, nobody); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "boltstore.test")
	copyFile(t, exe, bin)
	chmod(t, bin, 0o755)
	before := statOf(t, path)

	cmd := exec.Command(bin, "-test.run=^TestCompactAsAnotherUser$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), compactChildPath+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "REFUSED:") || !strings.Contains(string(out), "give the copy the original's owner") {
		t.Fatalf("compact as a group member who cannot keep the owner:\n%s\nwant a refusal naming the owner", out)
	}
	// Not replaced: the same file, its owner, group and mode as they were.
	after := statOf(t, path)
	if after.Ino != before.Ino || after.Uid != 0 || after.Gid != nobody || os.FileMode(after.Mode).Perm() != 0o660 {
		t.Fatalf("the refused compact replaced or changed the file (inode %d → %d, owner %d:%d, mode %04o)", before.Ino, after.Ino, after.Uid, after.Gid, os.FileMode(after.Mode).Perm())
	}
	left, err := filepath.Glob(filepath.Join(dir, "signoff.db.compact-*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("the refused compact left %v (%v)", left, err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
