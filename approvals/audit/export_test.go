package audit

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExportJSONL(t *testing.T) {
	lines := buildChain(t, 5, nil, 0)
	var b bytes.Buffer
	for _, l := range lines {
		if err := ExportJSONL(&b, l); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(b.Bytes(), jsonl(lines)) {
		t.Errorf("export differs from the lines")
	}
	if s, err := VerifyJSONL(&b, VerifyOptions{}); err != nil || s.Records != 5 {
		t.Errorf("verify export: %+v %v", s, err)
	}
	if err := ExportJSONL(&b, []byte("{\n}")); err == nil {
		t.Error("ExportJSONL accepted a line with a newline")
	}
	if err := ExportJSONL(failWriter{}, lines[0]); err == nil || !strings.Contains(err.Error(), "export audit record") {
		t.Errorf("write error: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCSVWriter(t *testing.T) {
	rec := Record{
		Time: "2025-03-14T09:26:53Z", Type: TypeVoteApprove, RequestID: "req_1", Action: "deploy-prod",
		Actor: &Actor{
			Issuer: "https://idp.example.com", Subject: "u-1", Name: "=HYPERLINK(\"http://evil\",\"x\")",
			Email: "a,b@example.com", Platform: "slack", Workspace: "T1", PlatformUser: "U1",
		},
		Source: "line1\nline2 \"quoted\"",
		Data:   map[string]any{"z": 1, "a": "x,y", "note": "<&>"},
	}
	sealed, line, err := Seal(rec, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	_, line2, err := Seal(Record{Time: "2025-03-14T09:27:00Z", Type: TypeIdentityLinked}, sealed.Seq, sealed.Hash)
	if err != nil {
		t.Fatal(err)
	}

	var b bytes.Buffer
	w := NewCSVWriter(&b)
	for _, l := range [][]byte{line, line2} {
		if err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	wantHeader := "seq,time,type,request_id,action,actor_issuer,actor_subject,actor_name,actor_email,actor_platform,actor_workspace,actor_platform_user,source,data,prev,hash\n"
	if !strings.HasPrefix(b.String(), wantHeader) {
		t.Fatalf("header:\n%s", b.String())
	}
	// The quoting, exactly as RFC 4180 writes it.
	wantRow1 := `1,2025-03-14T09:26:53Z,vote.approve,req_1,deploy-prod,https://idp.example.com,u-1,"'=HYPERLINK(""http://evil"",""x"")","a,b@example.com",slack,T1,U1,"line1` + "\n" +
		`line2 ""quoted""","{""a"":""x,y"",""note"":""<&>"",""z"":1}",` + GenesisPrev + "," + sealed.Hash + "\n"
	if got := strings.TrimPrefix(b.String(), wantHeader); !strings.HasPrefix(got, wantRow1) {
		t.Errorf("row 1\n got %q\nwant %q", got, wantRow1)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || len(rows[0]) != 16 {
		t.Fatalf("%d rows", len(rows))
	}
	if r := rows[2]; r[0] != "2" || r[2] != TypeIdentityLinked || r[3] != "" || r[5] != "" || r[13] != "" {
		t.Errorf("row 2: %q", r)
	}

	// Without the guard the cell is byte-faithful.
	b.Reset()
	w = NewCSVWriter(&b)
	w.FormulaGuard = false
	if err := w.Write(line); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, _ = csv.NewReader(&b).ReadAll()
	if rows[1][7] != rec.Actor.Name {
		t.Errorf("actor_name %q", rows[1][7])
	}

	// An empty export still has its header.
	b.Reset()
	if err := NewCSVWriter(&b).Flush(); err != nil || b.String() != wantHeader {
		t.Errorf("empty export %q %v", b.String(), err)
	}

	// A re-serialized line gives the same row, data canonical.
	b.Reset()
	w = NewCSVWriter(&b)
	re := spaced(bytes.Replace(line, []byte(`"<&>"`), []byte(`"\u003c\u0026\u003e"`), 1))
	if err := w.Write(re); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if !strings.Contains(b.String(), `"{""a"":""x,y"",""note"":""<&>"",""z"":1}"`) {
		t.Errorf("re-serialized row: %s", b.String())
	}

	for _, bad := range []string{`nope`, `{"seq":1,"type":2}`, `{"seq":1,"actor":{"name":"a","name":"b"}}`, `{"type":"x"}`, `{"seq":1,"type":"x","type":"y"}`} {
		if err := NewCSVWriter(&b).Write([]byte(bad)); err == nil {
			t.Errorf("CSV accepted %s", bad)
		}
	}
}

func TestFilter(t *testing.T) {
	mk := func(ts, req string) []byte {
		_, line, err := Seal(Record{Time: ts, Type: TypeRequestCreated, RequestID: req}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	early := mk("2025-03-14T08:59:59.999999999Z", "r1")
	start := mk("2025-03-14T09:00:00Z", "r1")
	mid := mk("2025-03-14T09:30:00.5Z", "r2")
	end := mk("2025-03-14T10:00:00Z", "r2")
	noReq := mk("2025-03-14T09:30:00Z", "")

	window := Filter{Since: at("2025-03-14T09:00:00Z"), Until: at("2025-03-14T10:00:00Z")}
	for _, tc := range []struct {
		f    Filter
		line []byte
		want bool
	}{
		{Filter{}, early, true},
		{window, early, false},
		{window, start, true}, // Since is inclusive
		{window, mid, true},
		{window, end, false}, // Until is exclusive
		{Filter{Since: at("2025-03-14T09:30:00Z")}, mid, true},
		{Filter{Until: at("2025-03-14T09:30:00Z")}, mid, false},
		{Filter{RequestID: "r2"}, mid, true},
		{Filter{RequestID: "r2"}, start, false},
		{Filter{RequestID: "r2"}, noReq, false},
		{Filter{RequestID: "r1", Since: window.Since, Until: window.Until}, start, true},
		{Filter{RequestID: "r1", Since: window.Since, Until: window.Until}, early, false},
		// A non-UTC offset is compared as the instant it names.
		{window, []byte(`{"seq":1,"time":"2025-03-14T10:30:00+01:00","type":"x"}`), true},
	} {
		got, err := tc.f.Match(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("%+v on %s: %v %v, want %v", tc.f, tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{`nope`, `{"seq":1,"time":"yesterday"}`, `{"seq":1}`, `{"time":"2025-03-14T09:00:00Z","time":"2025-03-14T09:00:00Z"}`} {
		if _, err := window.Match([]byte(bad)); err == nil {
			t.Errorf("Match accepted %s", bad)
		}
	}
}
