package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// TestSnapshot: the image's Size is exactly what WriteTo writes, a write
// begun while the image is held stays out of it, and the copy opens as a
// store holding what was committed before the snapshot.
func TestSnapshot(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	var st storage.Store = s
	b, ok := st.(storage.Backuper)
	if !ok {
		t.Fatal("boltstore does not implement storage.Backuper")
	}
	createInOrder(t, s, 3)
	var copied bytes.Buffer
	var size int64
	written := make(chan error, 1)
	err := b.Snapshot(t.Context(), func(img storage.BackupImage) error {
		size = img.Size()
		// A write begun meanwhile. It is not waited for here: a commit
		// that must enlarge bbolt's memory map waits for the image to be
		// released (see Snapshot).
		go func() { written <- s.Update(t.Context(), createAndLog("r003")) }()
		n, err := img.WriteTo(&copied)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("WriteTo wrote %d bytes, Size said %d", n, size)
		}
		if _, err := img.WriteTo(io.Discard); err == nil {
			return errors.New("a second WriteTo of the same image was accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatalf("the write begun during the snapshot: %v", err)
	}
	if int64(copied.Len()) != size || size == 0 {
		t.Fatalf("copied %d bytes, Size %d", copied.Len(), size)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, copied.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, path, boltstore.Options{ReadOnly: true})
	defer c.Close()
	checkCreated(t, c, 3)
	checkMissing(t, c, "r003", "the copy holds a request committed after the snapshot began")
}

// TestSnapshotStops: fn's error comes back as is; a cancelled ctx stops
// the copy with ctx's error; a kept image cannot be written later.
func TestSnapshotStops(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	if err := s.Update(t.Context(), createAndLog("r000")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Snapshot(t.Context(), func(storage.BackupImage) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	err := s.Snapshot(ctx, func(img storage.BackupImage) error {
		cancel()
		_, err := img.WriteTo(io.Discard)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled mid-copy: %v", err)
	}

	var kept storage.BackupImage
	if err := s.Snapshot(t.Context(), func(img storage.BackupImage) error { kept = img; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.WriteTo(io.Discard); err == nil {
		t.Error("an image used after its Snapshot returned was written")
	}
}
