package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// The test chain: 20 lines, checkpoints (every 8 records) at seq 9 and 17.
const (
	chainLen = 20
	cpEvery  = 8
)

func testChain(t *testing.T) [][]byte {
	t.Helper()
	lines := buildChain(t, chainLen, testKey(1), cpEvery)
	if len(lines) != chainLen {
		t.Fatalf("chain has %d lines", len(lines))
	}
	for _, seq := range []int{9, 17} {
		if !bytes.Contains(lines[seq-1], []byte(`"type":"checkpoint"`)) {
			t.Fatalf("line %d is not a checkpoint: %s", seq, lines[seq-1])
		}
	}
	return lines
}

func pub(priv ed25519.PrivateKey) ed25519.PublicKey { return priv.Public().(ed25519.PublicKey) }

func TestVerifyIntactChain(t *testing.T) {
	lines := testChain(t)
	last := mustParse(t, lines[chainLen-1])

	sum, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(testKey(1))})
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Records: chainLen, LastSeq: chainLen, LastHash: last["hash"].(string), Checkpoints: 2, SignedThrough: 16, LastCheckpoint: 17}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}

	// Without a key the checkpoints are chain-checked, not signature-checked.
	sum, err = VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoints != 0 || sum.CheckpointsUnchecked != 2 || sum.SignedThrough != 0 {
		t.Errorf("summary without key %+v", sum)
	}

	// Records streamed from a store go through Add.
	v := NewVerifier(VerifyOptions{PublicKey: pub(testKey(1))})
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := v.Finish(); err != nil || s != want {
		t.Errorf("Add/Finish: %+v, %v", s, err)
	}

	// No trailing newline, CRLF line ends, and blank lines at the end are fine.
	for name, in := range map[string][]byte{
		"no final newline": bytes.TrimSuffix(jsonl(lines), []byte("\n")),
		"CRLF":             bytes.ReplaceAll(jsonl(lines), []byte("\n"), []byte("\r\n")),
		"blank tail":       append(jsonl(lines), "\n  \n\n"...),
	} {
		if s, err := VerifyJSONL(bytes.NewReader(in), VerifyOptions{}); err != nil || s.Records != chainLen {
			t.Errorf("%s: %+v, %v", name, s, err)
		}
	}

	// An empty log is consistent, but with a key it cannot be authentic.
	if s, err := VerifyJSONL(strings.NewReader(""), VerifyOptions{}); err != nil || s.Records != 0 {
		t.Errorf("empty log: %+v, %v", s, err)
	}
}

// wantChainError checks that err is a *ChainError at seq and line whose
// reason contains reason.
func wantChainError(t *testing.T, err error, seq uint64, line int, reason string) {
	t.Helper()
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *ChainError", err, err)
	}
	if ce.Seq != seq || ce.Line != line || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("got %q (seq %d, line %d); want seq %d, line %d, reason containing %q", err, ce.Seq, ce.Line, seq, line, reason)
	}
	if !strings.HasPrefix(ce.Error(), fmt.Sprintf("audit record seq %d (line %d): ", seq, line)) {
		t.Fatalf("message %q", ce.Error())
	}
}

// reseal returns the sealed line for rec as record seq after prevHash,
// whatever prevHash is (Seal itself forces 64 zeros for seq 1).
func reseal(t *testing.T, rec Record, seq uint64, prevHash string) []byte {
	t.Helper()
	rec.Seq, rec.Prev, rec.Hash = seq, prevHash, ""
	h, err := ComputeHash(rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.Hash = h
	line, err := Canonical(rec)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func hashOf(t *testing.T, line []byte) string { return mustParse(t, line)["hash"].(string) }

func TestVerifyDetectsTampering(t *testing.T) {
	base := testChain(t)
	const k = 5 // an ordinary record

	cases := []struct {
		name   string
		mutate func(lines [][]byte) [][]byte
		seq    uint64
		line   int
		reason string
	}{
		{"edit a field", func(l [][]byte) [][]byte {
			l[k-1] = bytes.Replace(l[k-1], []byte(`"time":"2025-`), []byte(`"time":"2024-`), 1)
			return l
		}, k, k, "hash mismatch: record was changed after it was written"},
		{"edit a field and its hash", func(l [][]byte) [][]byte {
			r, err := ParseRecord(l[k-1])
			if err != nil {
				t.Fatal(err)
			}
			r.Action = "deploy-dev"
			l[k-1] = reseal(t, r, r.Seq, r.Prev)
			return l
		}, k + 1, k + 1, "prev does not match the hash of record 5"},
		{"delete a record", func(l [][]byte) [][]byte {
			return append(l[:k-1], l[k:]...)
		}, k, k, "found seq 6 where seq 5 was expected"},
		{"delete the first record", func(l [][]byte) [][]byte {
			return l[1:]
		}, 1, 1, "does not start at seq 1"},
		{"insert a forged record with a wrong prev", func(l [][]byte) [][]byte {
			forged := reseal(t, sampleRecord(1), k, strings.Repeat("ab", 32))
			return append(l[:k-1], append([][]byte{forged}, l[k-1:]...)...)
		}, k, k, "prev does not match the hash of record 4"},
		{"insert a forged record that links", func(l [][]byte) [][]byte {
			forged := reseal(t, sampleRecord(1), k, hashOf(t, l[k-2]))
			return append(l[:k-1], append([][]byte{forged}, l[k-1:]...)...)
		}, k + 1, k + 1, "found seq 5 again after seq 5"},
		{"swap two records", func(l [][]byte) [][]byte {
			l[k-1], l[k] = l[k], l[k-1]
			return l
		}, k, k, "found seq 6 where seq 5 was expected"},
		{"duplicate a record", func(l [][]byte) [][]byte {
			return append(l[:k], append([][]byte{l[k-1]}, l[k:]...)...)
		}, k + 1, k + 1, "found seq 5 again after seq 5"},
		{"change the first prev", func(l [][]byte) [][]byte {
			l[0] = bytes.Replace(l[0], []byte(`"prev":"0000`), []byte(`"prev":"1000`), 1)
			return l
		}, 1, 1, "hash mismatch"},
		{"replace the first record, hash recomputed", func(l [][]byte) [][]byte {
			l[0] = reseal(t, sampleRecord(0), 1, strings.Repeat("1", 64))
			return l
		}, 1, 1, "prev of seq 1 is not 64 zeros"},
		{"change a checkpoint", func(l [][]byte) [][]byte {
			l[8] = bytes.Replace(l[8], []byte(`"key_id":"`), []byte(`"key_id":"0`), 1)
			return l
		}, 9, 9, "hash mismatch"},
		{"change a hash to upper case", func(l [][]byte) [][]byte {
			h := hashOf(t, l[k-1])
			l[k-1] = bytes.Replace(l[k-1], []byte(h), []byte(strings.ToUpper(h)), 1)
			return l
		}, k, k, "hash is missing or not 64 lower-case hex digits"},
		{"remove a hash", func(l [][]byte) [][]byte {
			h := hashOf(t, l[k-1])
			l[k-1] = bytes.Replace(l[k-1], []byte(`"hash":"`+h+`",`), nil, 1)
			return l
		}, k, k, "hash is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := c.mutate(copyLines(base))
			_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{})
			wantChainError(t, err, c.seq, c.line, c.reason)
			// The same with the signature checked.
			_, err = VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(testKey(1))})
			wantChainError(t, err, c.seq, c.line, c.reason)
		})
	}
}

func TestVerifyMalformedInput(t *testing.T) {
	base := testChain(t)
	export := jsonl(base)

	// Truncated in the middle of line 12.
	start := 0
	for _, l := range base[:11] {
		start += len(l) + 1
	}
	_, err := VerifyJSONL(bytes.NewReader(export[:start+len(base[11])/2]), VerifyOptions{})
	wantChainError(t, err, 12, 12, "malformed record")

	// Truncated at a line end: undetectable from the file alone (the
	// records after the last checkpoint are unsigned), but the summary
	// shows how far the signature reaches.
	sum, err := VerifyJSONL(bytes.NewReader(export[:start]), VerifyOptions{PublicKey: pub(testKey(1))})
	if err != nil || sum.LastSeq != 11 || sum.SignedThrough != 8 {
		t.Errorf("truncated at a line end: %+v %v", sum, err)
	}

	for name, tc := range map[string]struct {
		line   string
		reason string
	}{
		"not JSON":        {"hello", "malformed record"},
		"array":           {"[1,2]", "must be a JSON object"},
		"trailing data":   {`{"seq":1} x`, "malformed record"},
		"invalid UTF-8":   {"{\"seq\":1,\"type\":\"\xff\"}", "malformed record"},
		"lone surrogate":  {`{"seq":1,"type":"\udc00"}`, "malformed record"},
		"deep nesting":    {`{"data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, "nested deeper"},
		"control char":    {"{\"seq\":1,\"type\":\"a\tb\"}", "control character"},
		"no hash":         {`{"prev":"` + GenesisPrev + `","seq":1,"type":"x"}`, "hash is missing"},
		"number too big":  {`{"hash":"` + GenesisPrev + `","seq":1e400}`, "malformed record"},
		"unsealed record": {`{"hash":"` + GenesisPrev + `","prev":"` + GenesisPrev + `","seq":1,"type":"x"}`, "hash mismatch"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyJSONL(strings.NewReader(tc.line+"\n"), VerifyOptions{})
			wantChainError(t, err, 1, 1, tc.reason)
		})
	}

	// A blank line inside the log.
	in := append(append(jsonl(base[:3]), '\n'), jsonl(base[3:])...)
	_, err = VerifyJSONL(bytes.NewReader(in), VerifyOptions{})
	wantChainError(t, err, 4, 4, "blank line")

	// A line longer than MaxLineBytes.
	long := append(jsonl(base[:2]), bytes.Repeat([]byte("x"), MaxLineBytes+10)...)
	_, err = VerifyJSONL(bytes.NewReader(long), VerifyOptions{})
	wantChainError(t, err, 3, 3, "line longer than")

	// Errors are sticky.
	v := NewVerifier(VerifyOptions{})
	first := v.Add([]byte("nope"))
	if err := v.Add(base[0]); err != first {
		t.Errorf("second Add returned %v, want the first error %v", err, first)
	}
	if _, err := v.Finish(); err != first {
		t.Errorf("Finish returned %v, want the first error", err)
	}
}

// A record whose line repeats a member is refused even when its hash is
// consistent with its bytes (what someone forging a log would produce).
func TestVerifyRefusesDuplicateKeys(t *testing.T) {
	base := testChain(t)
	// selfConsistent rewrites line (a modified record line) so its hash is
	// the SHA-256 of its own bytes without the hash member, as a naive
	// fast path would compute it.
	selfConsistent := func(t *testing.T, line []byte) []byte {
		i := bytes.Index(line, []byte(`,"hash":"`))
		if i < 0 {
			t.Fatalf("no hash in %s", line)
		}
		member := line[i : i+len(`,"hash":"`)+64+1]
		sum := sha256.Sum256(bytes.Replace(line, member, nil, 1))
		return bytes.Replace(line, member[len(`,"hash":"`):len(member)-1], []byte(hex.EncodeToString(sum[:])), 1)
	}
	cases := map[string]func(l []byte) []byte{
		// {…"type":"vote.approve","type":"vote.deny"}: adjacent, so still
		// sorted apart from the repeat.
		"top level, adjacent": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"type":"vote.approve"`), []byte(`"type":"vote.approve","type":"vote.deny"`), 1)
		},
		"top level, apart": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`{"action":"deploy-prod"`), []byte(`{"type":"vote.deny","action":"deploy-prod"`), 1)
		},
		"top level, escaped name": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"type":"vote.approve"`), []byte(`"type":"vote.approve","typ\u0065":"vote.deny"`), 1)
		},
		"nested, adjacent": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"required":2`), []byte(`"required":2,"required":1`), 1)
		},
		"nested, apart": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"data":{"approvals":`), []byte(`"data":{"required":1,"approvals":`), 1)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			lines := copyLines(base)
			const k = 2 // a vote.approve
			changed := mutate(lines[k-1])
			if bytes.Equal(changed, lines[k-1]) {
				t.Fatalf("mutation did not apply to %s", lines[k-1])
			}
			lines[k-1] = selfConsistent(t, changed)
			_, err := VerifyJSONL(bytes.NewReader(jsonl(lines[:k])), VerifyOptions{})
			wantChainError(t, err, k, k, "duplicate key")
		})
	}
}

// An export re-serialized by another tool — members reordered, spaces
// added, non-ASCII and HTML characters escaped — still verifies, through
// full canonicalization.
func TestVerifyReserializedExport(t *testing.T) {
	// The chain's records, with record 1 replaced by the known-answer
	// record (HTML characters, U+2028, non-ASCII), resealed and re-signed.
	base := testChain(t)
	out := make([][]byte, len(base))
	lines := [][]byte{}
	prevSeq, prevHash := uint64(0), ""
	for i := range base {
		r, err := ParseRecord(base[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			r = knownRecord()
		}
		if r.Type == TypeCheckpoint {
			r = NewCheckpoint(testKey(1), prevSeq, prevHash)
		}
		sealed, line, err := Seal(r, prevSeq, prevHash)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		prevSeq, prevHash = sealed.Seq, sealed.Hash
		re, err := json.Marshal(sealed) // struct order, HTML escaping
		if err != nil {
			t.Fatal(err)
		}
		out[i] = asciiEscape(spaced(re))
	}
	if bytes.Equal(jsonl(out), jsonl(lines)) {
		t.Fatal("re-serialization changed nothing")
	}
	if !bytes.Contains(out[0], []byte(`\u003c`)) || !bytes.Contains(out[0], []byte(`\u00eb`)) || !bytes.Contains(out[0], []byte(`": `)) {
		t.Fatalf("re-serialized line 1 lacks the expected escapes: %s", out[0])
	}
	sum, err := VerifyJSONL(bytes.NewReader(jsonl(out)), VerifyOptions{PublicKey: pub(testKey(1))})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Recanonicalized != chainLen || sum.Checkpoints != 2 || sum.LastHash != prevHash {
		t.Errorf("summary %+v", sum)
	}
	if sum, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(testKey(1))}); err != nil || sum.Recanonicalized != 0 {
		t.Errorf("canonical lines: %+v %v", sum, err)
	}
	// And a change in a re-serialized record is still caught.
	out[6] = bytes.Replace(out[6], []byte(`"deploy-prod"`), []byte(`"deploy-dev"`), 1)
	_, err = VerifyJSONL(bytes.NewReader(jsonl(out)), VerifyOptions{})
	wantChainError(t, err, 7, 7, "hash mismatch")
}

// spaced adds a space after every ':' and ',' outside strings.
func spaced(b []byte) []byte {
	var out []byte
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		out = append(out, c)
		switch {
		case in && c == '\\':
			i++
			out = append(out, b[i])
		case c == '"':
			in = !in
		case !in && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// asciiEscape writes every non-ASCII character as \uXXXX (a surrogate pair
// beyond the BMP), as Python's json.dumps does by default. Non-ASCII bytes
// only occur inside strings.
func asciiEscape(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r < 0x80:
			out = append(out, byte(r))
		case r < 0x10000:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		}
	}
	return out
}

func TestVerifyCheckpoints(t *testing.T) {
	base := testChain(t)
	key := testKey(1)

	t.Run("wrong public key", func(t *testing.T) {
		_, err := VerifyJSONL(bytes.NewReader(jsonl(base)), VerifyOptions{PublicKey: pub(testKey(2))})
		wantChainError(t, err, 9, 9, "signed by key id")
	})

	// replaceCheckpoint puts cp (sealed after record 8) at seq 9 and
	// reseals the records after it so the chain itself stays intact.
	replaceCheckpoint := func(t *testing.T, cp Record) [][]byte {
		lines := copyLines(base[:8])
		end := chainEnd{seq: 8, hash: mustParse(t, lines[7])["hash"].(string)}
		for i := 8; i < len(base); i++ {
			r := cp
			if i > 8 {
				var err error
				if r, err = ParseRecord(base[i]); err != nil {
					t.Fatal(err)
				}
				if r.Type == TypeCheckpoint { // a later checkpoint, re-signed
					r = NewCheckpoint(key, end.seq, end.hash)
				}
			}
			_, line := end.seal(t, r)
			lines = append(lines, line)
		}
		return lines
	}
	hash8 := hashOf(t, base[7])
	hash7 := hashOf(t, base[6])

	t.Run("forged signature claiming the right key id", func(t *testing.T) {
		cp := NewCheckpoint(testKey(2), 8, hash8)
		cp.Data["key_id"] = KeyID(pub(key))
		lines := replaceCheckpoint(t, cp)
		_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(key)})
		wantChainError(t, err, 9, 9, "signature does not verify")
		// Without a key, the chain is fine.
		if _, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{}); err != nil {
			t.Errorf("without a key: %v", err)
		}
	})
	t.Run("hash not the chain's", func(t *testing.T) {
		lines := replaceCheckpoint(t, NewCheckpoint(key, 8, hash7))
		for _, opts := range []VerifyOptions{{}, {PublicKey: pub(key)}} {
			_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), opts)
			wantChainError(t, err, 9, 9, "checkpoint hash does not match the chain's hash at seq 8")
		}
	})
	t.Run("covers an earlier record", func(t *testing.T) {
		lines := replaceCheckpoint(t, NewCheckpoint(key, 7, hash7))
		_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(key)})
		wantChainError(t, err, 9, 9, "checkpoint covers seq 7")
	})
	t.Run("malformed data", func(t *testing.T) {
		for name, mutate := range map[string]func(cp *Record){
			"seq as string":  func(cp *Record) { cp.Data["seq"] = "8" },
			"seq as float":   func(cp *Record) { cp.Data["seq"] = 8.5 },
			"missing key_id": func(cp *Record) { delete(cp.Data, "key_id") },
			"extra member":   func(cp *Record) { cp.Data["note"] = "x" },
			"bad signature":  func(cp *Record) { cp.Data["signature"] = base64.StdEncoding.EncodeToString([]byte("short")) },
			"no data":        func(cp *Record) { cp.Data = nil },
		} {
			cp := NewCheckpoint(key, 8, hash8)
			mutate(&cp)
			lines := replaceCheckpoint(t, cp)
			_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(key)})
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != 9 || !strings.Contains(ce.Reason, "malformed checkpoint") {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("first record", func(t *testing.T) {
		cp := NewCheckpoint(key, 0, GenesisPrev)
		_, line, err := Seal(cp, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = VerifyJSONL(bytes.NewReader(jsonl([][]byte{line})), VerifyOptions{PublicKey: pub(key)})
		wantChainError(t, err, 1, 1, "")
	})
	t.Run("no checkpoint with a key", func(t *testing.T) {
		plain := buildChain(t, 5, nil, 0)
		sum, err := VerifyJSONL(bytes.NewReader(jsonl(plain)), VerifyOptions{PublicKey: pub(key)})
		if !errors.Is(err, ErrNoCheckpoint) || sum.Records != 5 {
			t.Fatalf("got %+v, %v; want ErrNoCheckpoint", sum, err)
		}
		if !strings.Contains(err.Error(), "no signed checkpoint found") {
			t.Errorf("message %q", err)
		}
		if _, err := VerifyJSONL(bytes.NewReader(nil), VerifyOptions{PublicKey: pub(key)}); !errors.Is(err, ErrNoCheckpoint) {
			t.Errorf("empty log with a key: %v", err)
		}
	})
	t.Run("checkpoint right after a checkpoint", func(t *testing.T) {
		lines := copyLines(base[:9])
		seq, hash := uint64(9), hashOf(t, lines[8])
		_, line, err := Seal(NewCheckpoint(key, seq, hash), seq, hash)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		sum, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(key)})
		if err != nil || sum.Checkpoints != 2 || sum.SignedThrough != 9 {
			t.Errorf("%+v %v", sum, err)
		}
	})
}

// Many members, and a repeat among them, are handled in linear time.
func TestManyMembers(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"seq":1`)
	for i := range 50000 {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	b.WriteString(`,"k7":0}`)
	var f topFields
	err := scanTop(b.Bytes(), &f)
	var dup *duplicateKeyError
	if !errors.As(err, &dup) || dup.key != "k7" {
		t.Fatalf("got %v, want a duplicate k7", err)
	}
	actor := []byte(strings.Replace(b.String(), `{"seq":1`, `{"seq":1,"type":"x","actor":{"a":0`, 1) + "}")
	if err := NewCSVWriter(&bytes.Buffer{}).Write(actor); err == nil || !strings.Contains(err.Error(), `actor: duplicate key "k7"`) {
		t.Errorf("CSV of an actor with a repeated member: %v", err)
	}
}
