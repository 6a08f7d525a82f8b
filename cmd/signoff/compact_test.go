package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signoff compact refuses a file a server holds, compacts it once the
// server stopped, and the audit chain verifies as before; every request
// acknowledged before is still there after a restart.
func TestCompactCommand(t *testing.T) {
	isolateLogin(t)
	db := filepath.Join(t.TempDir(), "data", "signoff.db")
	ts := startAdminServer(t, db)
	creator := devToken(t, ts)
	client := &http.Client{Timeout: 10 * time.Second}
	var ids []string
	for i := range 40 {
		id := apiCreate(client, ts.base, creator, "compact-"+strings.Repeat("x", i))
		if id == "" {
			t.Fatalf("create %d was not acknowledged", i)
		}
		ids = append(ids, id)
	}

	code, _, errOut := runCmd(t, "compact", "--db", db)
	if code != exitFailure || !strings.Contains(errOut, "stop the signoff server") {
		t.Fatalf("compact of a served file: exit %d, want %d naming what to do\n%s", code, exitFailure, errOut)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(t, "compact", "--db", db)
	if code != 0 || !strings.Contains(out, "compacted "+db) || !strings.Contains(out, "keys copied and compared") {
		t.Fatalf("compact: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "audit", "verify", "--db", db)
	if code != 0 {
		t.Fatalf("audit verify after compact: exit %d\n%s\n%s", code, out, errOut)
	}

	ts = startAdminServer(t, db)
	admin := adminDevToken(t, ts)
	for _, id := range ids {
		req, _ := http.NewRequest(http.MethodGet, ts.base+"/v1/requests/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %s after compact: HTTP %d", id, resp.StatusCode)
		}
	}
}

func TestCompactCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compact"}, "either --db FILE"},
		{[]string{"compact", "--db", "a.db", "--config", "b.yaml"}, "not both"},
		{[]string{"compact", "--db", filepath.Join(t.TempDir(), "missing.db")}, "pass the storage.path of a stopped signoff server"},
	} {
		code, _, errOut := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tc.args, code, exitUsage, tc.want, errOut)
		}
	}
}
