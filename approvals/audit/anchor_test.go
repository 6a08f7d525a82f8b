package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// closed returns lines with a closing checkpoint appended, as
// approvals.Service.Close writes on a clean shutdown.
func closed(t *testing.T, lines [][]byte) [][]byte {
	t.Helper()
	last := mustParse(t, lines[len(lines)-1])
	seq, hash := uint64(len(lines)), last["hash"].(string)
	cp := NewCheckpoint(testKey(1), seq, hash)
	cp.Time = FormatTime(testEpoch)
	_, line, err := Seal(cp, seq, hash)
	if err != nil {
		t.Fatal(err)
	}
	return append(copyLines(lines), line)
}

// appendRecord appends sample record i, sealed, as someone holding the log
// (but not the key) could.
func appendRecord(t *testing.T, lines [][]byte, i int) [][]byte {
	t.Helper()
	last := mustParse(t, lines[len(lines)-1])
	_, line, err := Seal(sampleRecord(i), uint64(len(lines)), last["hash"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return append(copyLines(lines), line)
}

// checkpointLines returns the checkpoint lines of lines, as an anchor file.
func checkpointLines(lines [][]byte) []byte {
	var out [][]byte
	for _, l := range lines {
		if bytes.Contains(l, []byte(`"type":"checkpoint"`)) {
			out = append(out, l)
		}
	}
	return jsonl(out)
}

func mustAnchors(t *testing.T, file []byte) []Anchor {
	t.Helper()
	a, err := ReadAnchors(bytes.NewReader(file), pub(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// verifyBoth verifies lines as an export and record by record (as from a
// store), checks both agree, and returns the result.
func verifyBoth(t *testing.T, lines [][]byte, opts VerifyOptions) (Summary, error) {
	t.Helper()
	sum, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), opts)
	v := NewVerifier(opts)
	var addErr error
	for _, l := range lines {
		if addErr = v.Add(l); addErr != nil {
			break
		}
	}
	sum2, err2 := v.Finish()
	if sum != sum2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("VerifyJSONL: %+v, %v; Add/Finish: %+v, %v", sum, err, sum2, err2)
	}
	return sum, err
}

func TestVerifyStrict(t *testing.T) {
	base := testChain(t) // checkpoints at 9 and 17, then records 18…20
	key := pub(testKey(1))
	strict := VerifyOptions{PublicKey: key, Strict: true}

	t.Run("unsigned tail fails and names its first seq", func(t *testing.T) {
		sum, err := verifyBoth(t, base, strict)
		wantChainError(t, err, 18, 18, "3 records (seq 18 to 20) follow the last signed checkpoint (seq 17)")
		if !errors.Is(err, ErrUnsignedTail) || sum.LastCheckpoint != 17 || sum.LastSeq != 20 {
			t.Errorf("%+v %v", sum, err)
		}
		// Without Strict the same log passes: the rule is Strict's.
		if _, err := verifyBoth(t, base, VerifyOptions{PublicKey: key}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("clean shutdown passes", func(t *testing.T) {
		sum, err := verifyBoth(t, closed(t, base), strict)
		if err != nil || sum.LastCheckpoint != 21 || sum.LastSeq != 21 || sum.Checkpoints != 3 {
			t.Fatalf("%+v %v", sum, err)
		}
	})
	t.Run("forged record after the closing checkpoint fails", func(t *testing.T) {
		forged := appendRecord(t, closed(t, base), 1) // a vote.approve
		_, err := verifyBoth(t, forged, strict)
		wantChainError(t, err, 22, 22, "1 record (seq 22) follows the last signed checkpoint (seq 21)")
	})
	t.Run("a checkpoint signed by another key does not end the tail", func(t *testing.T) {
		lines := copyLines(base)
		last := mustParse(t, lines[19])
		_, line, err := Seal(NewCheckpoint(testKey(2), 20, last["hash"].(string)), 20, last["hash"].(string))
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifyBoth(t, append(lines, line), strict)
		wantChainError(t, err, 21, 21, "signed by key id")
	})
	t.Run("needs a public key", func(t *testing.T) {
		_, err := verifyBoth(t, closed(t, base), VerifyOptions{Strict: true})
		if !errors.Is(err, ErrUnsignedTail) || !strings.Contains(err.Error(), "needs the public key") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("chain problems come first", func(t *testing.T) {
		lines := copyLines(base)
		lines[4] = bytes.Replace(lines[4], []byte("payments"), []byte("paymentz"), 1)
		_, err := verifyBoth(t, lines, strict)
		wantChainError(t, err, 5, 5, "hash mismatch")
	})
}

func TestVerifyAnchors(t *testing.T) {
	base := testChain(t)
	key := pub(testKey(1))
	final := closed(t, base)           // checkpoints at 9, 17 and 21
	anchors := checkpointLines(final)  // as published when each was made
	early := checkpointLines(base[:9]) // only the first

	t.Run("intact log with its own checkpoints as anchors", func(t *testing.T) {
		for _, opts := range []VerifyOptions{
			{Anchors: mustAnchors(t, anchors)},
			{Anchors: mustAnchors(t, anchors), PublicKey: key, Strict: true},
		} {
			sum, err := verifyBoth(t, final, opts)
			if err != nil || sum.Anchors != 3 {
				t.Fatalf("%+v %v", sum, err)
			}
		}
		// A running server's log (unsigned tail) passes with the anchors
		// published so far, without Strict.
		sum, err := verifyBoth(t, base, VerifyOptions{Anchors: mustAnchors(t, checkpointLines(base)), PublicKey: key})
		if err != nil || sum.Anchors != 2 {
			t.Fatalf("%+v %v", sum, err)
		}
		// Any order, repeats allowed.
		a := mustAnchors(t, anchors)
		a = append([]Anchor{a[2], a[0]}, a...)
		if sum, err := verifyBoth(t, final, VerifyOptions{Anchors: a}); err != nil || sum.Anchors != 5 {
			t.Fatalf("%+v %v", sum, err)
		}
	})
	t.Run("log cut right after an earlier checkpoint", func(t *testing.T) {
		cut := base[:9] // ends with the checkpoint at seq 9
		// Cut there, the log is intact and even passes Strict …
		if _, err := verifyBoth(t, cut, VerifyOptions{PublicKey: key, Strict: true, Anchors: mustAnchors(t, early)}); err != nil {
			t.Fatal(err)
		}
		// … but not against the checkpoints published after it.
		for _, opts := range []VerifyOptions{
			{Anchors: mustAnchors(t, anchors)},
			{Anchors: mustAnchors(t, anchors), PublicKey: key, Strict: true},
		} {
			_, err := verifyBoth(t, cut, opts)
			var ce *ChainError
			if !errors.Is(err, ErrTruncated) || !errors.As(err, &ce) ||
				ce.Reason != "the log ends at seq 9 but an anchor names seq 17: the log was truncated (the anchor on line 2)" {
				t.Fatalf("%v", err)
			}
		}
		// An empty log is truncated too.
		if _, err := VerifyJSONL(bytes.NewReader(nil), VerifyOptions{Anchors: mustAnchors(t, anchors)}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("empty log: %v", err)
		}
	})
	t.Run("log rewritten from an earlier checkpoint", func(t *testing.T) {
		// Records 10… replaced, the checkpoint at 17 re-signed with another
		// key: the chain is intact, but 17 is not the published checkpoint.
		lines := copyLines(base[:9])
		for i := 100; len(lines) < 16; i++ {
			lines = appendRecord(t, lines, i)
		}
		last := mustParse(t, lines[15])
		_, line, err := Seal(NewCheckpoint(testKey(2), 16, last["hash"].(string)), 16, last["hash"].(string))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		if _, err := verifyBoth(t, lines, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = verifyBoth(t, lines, VerifyOptions{Anchors: mustAnchors(t, anchors)})
		wantChainError(t, err, 17, 17, "is not the one the anchor on line 2 names")
		if !errors.Is(err, ErrAnchorMismatch) {
			t.Fatal(err)
		}
	})
	t.Run("no checkpoint where an anchor names one", func(t *testing.T) {
		// The checkpoint at 9 dropped and the rest resealed.
		lines := copyLines(base[:8])
		for i := 8; len(lines) < 17; i++ {
			lines = appendRecord(t, lines, i)
		}
		_, err := verifyBoth(t, lines, VerifyOptions{Anchors: mustAnchors(t, early)})
		wantChainError(t, err, 9, 9, `the anchor on line 1 names a checkpoint at seq 9, but the log holds a "vote.approve" record there`)
	})
	t.Run("altered anchor", func(t *testing.T) {
		// Its time changed and its hash recomputed: the anchor is well formed
		// and its signature (over data) still verifies, but the log does not
		// hold it.
		r, err := ParseRecord(base[8])
		if err != nil {
			t.Fatal(err)
		}
		r.Time = FormatTime(testEpoch.Add(1))
		altered := reseal(t, r, r.Seq, r.Prev)
		a := mustAnchors(t, jsonl([][]byte{altered}))
		_, err = verifyBoth(t, base, VerifyOptions{Anchors: a, PublicKey: key})
		wantChainError(t, err, 9, 9, "is not the one the anchor on line 1 names")
	})
}

func TestVerifyReadAnchors(t *testing.T) {
	base := testChain(t)
	cp9, cp17 := base[8], base[16]

	// Re-serialized (spaced, as another tool may write) and CRLF is fine.
	a, err := ReadAnchors(strings.NewReader("\r\n"+string(spaced(cp9))+"\r\n\n"+string(cp17)+"\r\n"), pub(testKey(1)))
	if err != nil || len(a) != 2 || a[0].Seq != 9 || a[0].Line != 2 || a[1].Seq != 17 || a[1].Line != 4 || a[1].Hash != hashOf(t, cp17) {
		t.Fatalf("%+v %v", a, err)
	}
	// With a re-serialized anchor the intact log still passes.
	if _, err := VerifyJSONL(bytes.NewReader(jsonl(base)), VerifyOptions{Anchors: a}); err != nil {
		t.Fatal(err)
	}

	altered := bytes.Replace(cp9, []byte(`"time":"2025`), []byte(`"time":"2024`), 1)
	other := closed(t, buildChain(t, 3, nil, 0))[3] // a checkpoint of another log
	forged := reseal(t, func() Record {
		r, _ := ParseRecord(cp9)
		r.Data["signature"] = mustParse(t, other)["data"].(map[string]any)["signature"]
		return r
	}(), 9, mustParse(t, cp9)["prev"].(string))
	for name, tc := range map[string]struct {
		file string
		line int
		want string
	}{
		"not JSON":                {string(cp9) + "\n{\"seq\":\n", 2, "not an audit record"},
		"altered, hash kept":      {string(altered), 1, "hash does not match its content"},
		"not a checkpoint":        {string(base[0]), 1, `is a "request.created" record; an anchor must be a "checkpoint" record`},
		"forged signature":        {string(forged), 1, "signature does not verify"},
		"contradicting repeats":   {string(cp9) + "\n" + string(reseal(t, mustRecord(t, cp9, "2020-01-01T00:00:00Z"), 9, mustParse(t, cp9)["prev"].(string))), 2, "names seq 9 like line 1, but with another hash"},
		"empty":                   {"\n\n", 0, "no anchors"},
		"checkpoint not covering": {string(reseal(t, mustData(t, cp9, "seq", 7), 9, mustParse(t, cp9)["prev"].(string))), 1, "does not cover the record just before it"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadAnchors(strings.NewReader(tc.file), pub(testKey(1)))
			var ae *AnchorError
			if !errors.As(err, &ae) {
				t.Fatalf("%v (%T)", err, err)
			}
			if ae.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q (line %d); want line %d, %q", err, ae.Line, tc.line, tc.want)
			}
		})
	}

	// The signature is checked only with a key.
	if _, err := ReadAnchors(bytes.NewReader(cp9), pub(testKey(2))); err == nil || !strings.Contains(err.Error(), "line 1: checkpoint was signed by key id") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := ReadAnchors(bytes.NewReader(forged), nil); err != nil {
		t.Fatalf("no key: %v", err)
	}
}

// mustRecord parses line and sets its time.
func mustRecord(t *testing.T, line []byte, time string) Record {
	t.Helper()
	r, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	r.Time = time
	return r
}

// mustData parses line and sets one member of its data.
func mustData(t *testing.T, line []byte, name string, val any) Record {
	t.Helper()
	r, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	r.Data[name] = val
	return r
}
