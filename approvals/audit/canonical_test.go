package audit

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// canonicalByJCS is Canonical without the quick path: encoding/json's
// output, then RFC 8785 (the way every record was canonicalized before).
func canonicalByJCS(t testing.TB, r Record) ([]byte, error) {
	t.Helper()
	raw, err := marshalNoEscape(r)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// sameAsJCS fails t unless Canonical(r) is byte for byte what jcs makes of
// r, or both refuse it.
func sameAsJCS(t testing.TB, r Record) {
	t.Helper()
	got, gotErr := Canonical(r)
	want, wantErr := canonicalByJCS(t, r)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("Canonical error %v, jcs error %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Canonical differs from RFC 8785:\n got %s\nwant %s", got, want)
	}
}

// typicalRecord is a record as signoff writes one: an actor, strings,
// integers, a list and a nested object in data.
func typicalRecord() Record {
	return Record{
		Seq: 42, Time: "2026-12-07T12:00:00.123456789Z", Type: TypeVoteApprove,
		RequestID: "req_01jfq5v3k0abcdefghijklmnop", Action: "deploy-prod",
		Actor: &Actor{
			Issuer: "https://idp.example", Subject: "sub-alice", Name: "Alice Example",
			Email: "alice@example.com", Platform: "slack", Workspace: "T1", PlatformUser: "U1",
		},
		Source: "slack",
		Data: map[string]any{
			"approvals": 2, "min_approvals": 2, "groups": []string{"sre", "release"},
			"params":  map[string]string{"service": "api", "version": "1.4.2"},
			"step_up": false, "note": nil,
		},
		Prev: strings.Repeat("a", 64),
	}
}

// TestCanonicalTakesTheQuickPath holds the field order of Record and Actor
// to RFC 8785's: encoding/json's output for a typical record is already
// canonical, so Canonical skips the second pass. Reordering the fields
// (or adding one out of order) makes this fail, not the hashes change.
func TestCanonicalTakesTheQuickPath(t *testing.T) {
	raw, err := marshalNoEscape(typicalRecord())
	if err != nil {
		t.Fatal(err)
	}
	var f topFields
	if !scanCanonical(raw, &f) {
		t.Fatalf("encoding/json's output for a typical record is not canonical (are Record's and Actor's fields in sorted order?):\n%s", raw)
	}
	sameAsJCS(t, typicalRecord())
}

// unsorted is a struct whose fields encoding/json writes out of RFC 8785's
// order: the quick path must not be taken for it.
type unsorted struct {
	Zeta  string `json:"zeta"`
	Alpha string `json:"alpha"`
}

// TestCanonicalMatchesJCS: whatever a record holds, Canonical's bytes are
// RFC 8785's, whether or not the quick path is taken.
func TestCanonicalMatchesJCS(t *testing.T) {
	data := map[string]map[string]any{
		"HTML characters":               {"v": "<a href='x'>&</a>"},
		"control characters":            {"v": "tab\there\nnew\rline\b\f\x00\x1f"},
		"quotes and backslashes":        {"v": `say "hi" \ bye`},
		"line and paragraph separators": {"v": "a\u2028b\u2029c"},
		"invalid UTF-8":                 {"v": "bad \xff\xfe byte"},
		"non-ASCII values":              {"v": "Grüße, 日本, 😀"},
		"non-ASCII names, UTF-16 order": {"\ue000": 1, "😀": 2, "é": 3, "z": 4},
		"large integers":                {"max": uint64(math.MaxUint64), "over": int64(1<<53 + 1), "at": int64(1 << 53), "neg": int64(math.MinInt64)},
		"fifteen and sixteen digits":    {"a": 999999999999999, "b": 1000000000000000},
		"floats":                        {"half": 1.5, "big": 1e21, "small": 1e-7, "whole": 2.0},
		"a struct out of order":         {"v": unsorted{Zeta: "z", Alpha: "a"}},
		"nesting":                       {"a": []any{map[string]any{"y": 1, "x": []any{nil, true, "s"}}}, "b": map[string]any{}},
		"empty strings":                 {"": "", "e": ""},
	}
	for name, d := range data {
		t.Run(name, func(t *testing.T) {
			r := typicalRecord()
			r.Data = d
			sameAsJCS(t, r)
		})
	}
	t.Run("actor fields with escapes", func(t *testing.T) {
		r := typicalRecord()
		r.Actor.Name = "Bobby \"Tables\"\n<script>"
		r.Actor.Email = "é@example.com"
		sameAsJCS(t, r)
	})
	t.Run("no actor, no data", func(t *testing.T) {
		sameAsJCS(t, Record{Seq: 1, Time: "t", Type: TypeCheckpoint, Prev: GenesisPrev})
	})
}

// TestPrepareSealsTheSameLineEitherWay: a record that takes the quick path
// and one that does not are both sealed into the line Seal writes.
func TestPrepareSealsTheSameLineEitherWay(t *testing.T) {
	quick := typicalRecord()
	slow := typicalRecord()
	slow.Data = map[string]any{"é": "needs the second pass", "v": unsorted{Zeta: "z", Alpha: "a"}}
	for name, r := range map[string]Record{"quick": quick, "slow": slow} {
		t.Run(name, func(t *testing.T) {
			p, err := Prepare(r)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := SealPrepared(p, 6, strings.Repeat("b", 64))
			if err != nil {
				t.Fatal(err)
			}
			_, want, err := Seal(r, 6, strings.Repeat("b", 64))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("prepared line differs:\n got %s\nwant %s", got, want)
			}
			if again, err := jcs.Transform(got); err != nil || !bytes.Equal(again, got) {
				t.Fatalf("sealed line is not RFC 8785 (%v):\n got %s\njcs %s", err, got, again)
			}
		})
	}
}

// FuzzCanonical: for any strings in a record's actor, data names and
// values, and any integer, Canonical's bytes are RFC 8785's.
func FuzzCanonical(f *testing.F) {
	f.Add("Alice", "note", "plain", int64(7))
	f.Add("é\u2028", "😀", "<&>\x00", int64(1<<53+1))
	f.Add("", "\ue000", "\xff", int64(-1))
	f.Fuzz(func(t *testing.T, name, key, value string, n int64) {
		r := typicalRecord()
		r.Actor.Name = name
		r.Data = map[string]any{key: value, "n": n, "list": []any{name, value, n}, "nested": map[string]any{value: key}}
		sameAsJCS(t, r)
	})
}

// nested returns depth arrays, one inside the other.
func nested(depth int) any {
	var v any = "bottom"
	for range depth {
		v = []any{v}
	}
	return v
}

// TestSealRefusesWhatVerifyCannotRead: a record nested deeper than the
// verifier reads is refused when sealed (prepared or not), never written
// as a line that would end the verifiable chain; one just inside the
// limit is sealed and verifies.
func TestSealRefusesWhatVerifyCannotRead(t *testing.T) {
	prev := strings.Repeat("c", 64)
	deep := typicalRecord()
	deep.Data = map[string]any{"d": nested(maxNesting + 2)}
	if _, line, err := Seal(deep, 3, prev); err == nil {
		t.Fatalf("Seal wrote a line nested beyond %d levels: %.80s…", maxNesting, line)
	}
	if _, err := Prepare(deep); err == nil {
		t.Fatal("Prepare took a record nested beyond the verifier's limit")
	}

	ok := typicalRecord()
	ok.Data = map[string]any{"d": nested(maxNesting - 2)}
	sealed, line, err := Seal(ok, 0, "")
	if err != nil {
		t.Fatalf("Seal refused a record within the nesting limit: %v", err)
	}
	v := NewVerifier(VerifyOptions{})
	if err := v.Add(line); err != nil {
		t.Fatalf("the sealed line does not verify: %v", err)
	}
	if sealed.Seq != 1 {
		t.Fatalf("seq %d, want 1", sealed.Seq)
	}
}

// TestSealStopsAtMaxSeq: no record gets a seq RFC 8785 cannot write
// exactly, prepared or not (Seal and SealPrepared would otherwise hash
// different numbers for it).
func TestSealStopsAtMaxSeq(t *testing.T) {
	prev := strings.Repeat("d", 64)
	r := typicalRecord()
	if _, _, err := Seal(r, MaxSeq-1, prev); err != nil {
		t.Fatalf("Seal refused seq MaxSeq: %v", err)
	}
	if _, _, err := Seal(r, MaxSeq, prev); err == nil {
		t.Fatal("Seal gave a record seq MaxSeq+1")
	}
	p, err := Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := SealPrepared(p, MaxSeq, prev); err == nil {
		t.Fatal("SealPrepared gave a record seq MaxSeq+1")
	}
}
