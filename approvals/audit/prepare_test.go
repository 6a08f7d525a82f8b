package audit

import (
	"bytes"
	"testing"
)

// TestSealPreparedMatchesSeal: a prepared record seals to exactly the
// bytes and hash Seal gives, whatever its content and chain position,
// including nested members named seq, prev and hash.
func TestSealPreparedMatchesSeal(t *testing.T) {
	recs := []Record{
		{Time: "2026-03-01T12:00:00Z", Type: TypeRequestCreated, RequestID: "req_1", Action: "deploy",
			Actor: &Actor{Issuer: "https://idp", Subject: "alice"}, Data: map[string]any{"reason": "<&> \u2028", "seq": 7, "prev": "x", "hash": "y"}},
		{Time: "2026-03-01T12:00:00Z", Type: TypeCheckpoint, Data: map[string]any{"seq": uint64(41), "hash": GenesisPrev, "signature": "s", "key_id": "k"}},
		{Time: "t", Type: "x"},
		{Time: "2026-03-01T12:00:00Z", Type: TypeVoteRejected, Source: `"seq":0,"prev":""`, Data: map[string]any{"nested": map[string]any{"prev": "", "seq": 0}}},
	}
	for i, r := range recs {
		for _, at := range []struct {
			seq  uint64
			prev string
		}{{0, ""}, {1, GenesisPrev}, {99, "ab" + GenesisPrev[2:]}, {1<<53 - 2, GenesisPrev}} {
			want, wantLine, err := Seal(r, at.seq, at.prev)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Prepare(r)
			if err != nil {
				t.Fatal(err)
			}
			got, line, err := SealPrepared(p, at.seq, at.prev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(line, wantLine) || got.Hash != want.Hash || got.Seq != want.Seq || got.Prev != want.Prev {
				t.Fatalf("record %d at seq %d:\n got %s\nwant %s", i, at.seq, line, wantLine)
			}
		}
	}
}

func BenchmarkSealPrepared(b *testing.B) {
	r := Record{Time: "2026-03-01T12:00:00Z", Type: TypeRequestCreated, RequestID: "req_1", Action: "deploy",
		Actor: &Actor{Issuer: "https://idp", Subject: "alice"}, Data: map[string]any{"reason": "ship it", "params": map[string]string{"service": "api"}}}
	p, _ := Prepare(r)
	for i := 0; i < b.N; i++ {
		if _, _, err := SealPrepared(p, uint64(i), GenesisPrev); err != nil {
			b.Fatal(err)
		}
	}
}
