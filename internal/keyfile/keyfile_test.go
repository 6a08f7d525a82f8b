package keyfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/signoff-dev/signoff/internal/keyfile"
)

func write(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// TestCreateNew: the file is made with mode 0600 in a new directory, an
// existing file is left alone (fs.ErrExist), and a file whose writing
// fails is removed.
func TestCreateNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "k.pem")
	if err := keyfile.CreateNew(path, write("first")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("stat %s: %v %v", path, fi, err)
	}
	if err := keyfile.CreateNew(path, write("second")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("existing file now holds %q", b)
	}

	failed := filepath.Join(filepath.Dir(path), "failed.pem")
	boom := errors.New("boom")
	if err := keyfile.CreateNew(failed, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write: %v, want it to wrap %v", err, boom)
	}
	if _, err := os.Stat(failed); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file whose writing failed was kept: %v", err)
	}
}
