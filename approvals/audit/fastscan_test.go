package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/bits"
	"slices"
	"strings"
	"testing"
)

// checkQuickScan fails when scanCanonical accepts line but scanFull does
// not call it canonical, or finds other members: the quick path must
// accept nothing that the full scan would refuse or send to jcs.
func checkQuickScan(t testing.TB, line []byte) (quick bool) {
	t.Helper()
	var q, full topFields
	if !scanCanonical(line, &q) {
		return false
	}
	if err := scanFull(line, &full); err != nil || !full.canonical {
		t.Fatalf("scanCanonical accepts %q; scanFull: canonical %v, %v", line, full.canonical, err)
	}
	if q.val != full.val || q.key != full.key || !slices.EqualFunc(q.unknown.list, full.unknown.list, bytes.Equal) ||
		len(q.unknown.m) != len(full.unknown.m) {
		t.Fatalf("%q: scanCanonical finds %+v, scanFull %+v", line, q, full)
	}
	return true
}

// checkSkipHex fails when scanQuick, skipping hash and prev, accepts line
// with 64 lower-case hex digits in both and yet scanCanonical does not
// accept it with the same members: that is the case the Verifier trusts.
func checkSkipHex(t testing.TB, line []byte) {
	t.Helper()
	var skip, q topFields
	if !scanQuick(line, &skip, true) || !isHexString(line, skip.val[fHash]) || !isHexString(line, skip.val[fPrev]) {
		return
	}
	if !checkQuickScan(t, line) {
		t.Fatalf("scanQuick skipping hash and prev accepts %q; scanCanonical does not", line)
	}
	scanCanonical(line, &q)
	if skip.val != q.val || skip.key != q.key || skip.unknown.len() != q.unknown.len() {
		t.Fatalf("%q: scanQuick skipping finds %+v, scanCanonical %+v", line, skip, q)
	}
}

// mutations returns line with one byte deleted, replaced or inserted at
// every position, for a few bytes the quick path must be careful about.
func mutations(line []byte) [][]byte {
	var out [][]byte
	for i := range line {
		out = append(out, slices.Delete(bytes.Clone(line), i, i+1))
		for _, c := range []byte{' ', '"', '\\', ',', ':', '{', '}', '[', ']', '0', '-', '.', 'e', 0x01, 0x80, 0xff} {
			r := bytes.Clone(line)
			r[i] = c
			out = append(out, r, slices.Insert(bytes.Clone(line), i, c))
		}
	}
	return out
}

// TestScanCanonicalAgreesWithScanFull: on signoff's own lines the quick
// path is taken, and on those lines changed in every way one byte allows it
// accepts only what scanFull calls canonical, with the same members.
func TestScanCanonicalAgreesWithScanFull(t *testing.T) {
	lines := buildChain(t, 13, testKey(1), 6)
	for _, l := range lines {
		if !checkQuickScan(t, l) {
			t.Fatalf("the quick path refuses signoff's own line %s", l)
		}
		checkSkipHex(t, l)
	}
	for _, l := range lines[5:8] { // a vote, a rejection with a non-ASCII name, a checkpoint
		for _, m := range mutations(l) {
			checkQuickScan(t, m)
			checkSkipHex(t, m)
		}
	}
}

// TestScanCanonicalRefuses: lines the quick path must leave to scanFull,
// with what scanFull then says. None of them may be accepted as canonical.
func TestScanCanonicalRefuses(t *testing.T) {
	nested := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	deep := nested(maxNesting + 1)
	for _, tc := range []struct{ in, full string }{
		{`{"a":1} `, "not canonical"},
		{` {"a":1}`, "not canonical"},
		{`{"a": 1}`, "not canonical"},
		{`{"a":[1, 2]}`, "not canonical"},
		{`{"b":1,"a":2}`, "not canonical"},
		{`{"a":{"c":1,"b":2}}`, "not canonical"},
		{`{"s\u0065q":1}`, "not canonical"}, // an escaped name
		{`{"\n":1,"a":2}`, "canonical"},     // escaped, and canonical: still left to scanFull
		{"{\"\u00f6\":1,\"\u20ac\":2}", "canonical"},
		{`{"a":"\/"}`, "not canonical"},
		{`{"a":"\u0041"}`, "not canonical"},
		{`{"a":"\u001F"}`, "not canonical"},
		{`{"a":"\u000a"}`, "not canonical"},
		{`{"a":"\ud83d\ude00"}`, "not canonical"},
		{`{"a":1.0}`, "not canonical"},
		{`{"a":1e2}`, "not canonical"},
		{`{"a":-0}`, "not canonical"},
		{`{"a":1234567890123456}`, "not canonical"},
		{`{"a":1,"a":2}`, "duplicate"},
		{`{"a":{"b":1,"b":2}}`, "duplicate"},
		{`{"a":[{"b":1,"b":2}]}`, "duplicate"},
		{`{"a":1}x`, "error"},
		{`{"a":1}}`, "error"},
		{`{"a":1`, "error"},
		{`{"a":"x`, "error"},
		{`{"a":01}`, "error"},
		{`{"a":-}`, "error"},
		{`{"a":tru}`, "error"},
		{`{"a":[1,]}`, "error"},
		{`{"a":1,}`, "error"},
		{"{\"a\":\"\x01\"}", "error"},
		{"{\"a\":\"\xc3\"}", "error"},
		{"{\"a\":\"\xed\xa0\x80\"}", "error"},
		{`{"a":"\ud83d"}`, "error"},
		{`{"a":"\x"}`, "error"},
		{`[]`, "error"},
		{``, "error"},
		{deep, "error"},
	} {
		var f topFields
		if scanCanonical([]byte(tc.in), &f) {
			t.Errorf("%s: the quick path accepts it", tc.in)
		}
		err := scanTop([]byte(tc.in), &f)
		var de *duplicateKeyError
		got := "not canonical"
		switch {
		case errors.As(err, &de):
			got = "duplicate"
		case err != nil:
			got = "error"
		case f.canonical:
			got = "canonical"
		}
		if got != tc.full {
			t.Errorf("%s: scanTop says %s (%v), want %s", tc.in, got, err, tc.full)
		}
	}
	var f topFields
	if !scanCanonical([]byte(nested(maxNesting)), &f) {
		t.Error("the quick path refuses a line nested as deep as allowed")
	}
}

// rehash replaces the hash of line (an ordinary record: no other member
// is called "hash") with the SHA-256 of the line as it stands without its
// hash member, as a forger would: the hash check alone then passes, so
// whatever the verifier refuses, it refuses for another reason. It finds
// the member by its text, for lines no scanner accepts.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	at := bytes.Index(line, []byte(`,"hash":"`))
	if at < 0 || len(line) < at+74 || line[at+73] != '"' {
		t.Fatalf("no hash member in %s", line)
	}
	sum := sha256.Sum256(slices.Concat(line[:at], line[at+74:]))
	return slices.Concat(line[:at+9], []byte(hex.EncodeToString(sum[:])), line[at+73:])
}

// TestVerifyQuickPathRefusals: lines made to pass the hash check and get
// past a hurried scan are refused all the same, for the right reason.
func TestVerifyQuickPathRefusals(t *testing.T) {
	base := testChain(t)
	const k = 5 // an ordinary record; its hash and its successor's prev
	prevK := hashOf(t, base[k-2])
	hashK := hashOf(t, base[k-1])
	for _, c := range []struct {
		name   string
		line   func(l []byte) []byte // record k, changed
		seq    uint64
		reason string
	}{
		{"a repeated top-level member", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"seq":5,`), []byte(`"seq":5,"seq":5,`), 1))
		}, k, "duplicate key \"seq\" (JSON readers disagree on which value counts"},
		{"a repeated member in data", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"data":{`), []byte(`"data":{"a":1,"a":1,`), 1))
		}, k, "duplicate key \"a\" (JSON readers disagree"},
		{"a repeated member, escaped", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"type":"`), []byte(`"t\u0079pe":"x","type":"`), 1))
		}, k, "duplicate key \"type\""},
		{"white space", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"seq":5`), []byte(`"seq": 5`), 1))
		}, k, "hash mismatch"},
		{"members out of order", func(l []byte) []byte {
			l = bytes.Replace(l, []byte(`"prev":"`+prevK+`",`), nil, 1)
			return rehash(t, bytes.Replace(l, []byte(`{`), []byte(`{"prev":"`+prevK+`",`), 1))
		}, k, "hash mismatch"},
		{"a non-canonical escape", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"action":"deploy-prod"`), []byte(`"action":"deploy\/prod"`), 1))
		}, k, "hash mismatch"},
		{"a float", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"seq":5`), []byte(`"seq":5.0`), 1))
		}, k, "hash mismatch"},
		{"trailing bytes", func(l []byte) []byte { return append(l, '}') }, k, "unexpected data after the record"},
		{"trailing space", func(l []byte) []byte { return append(l, ' ') }, 0, ""}, // re-serialized, still valid
		{"a tampered field", func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"deploy-prod"`), []byte(`"deploy-dev"`), 1)
		}, k, "hash mismatch: record was changed"},
		{"a tampered hash", func(l []byte) []byte {
			return bytes.Replace(l, []byte(hashK), []byte(strings.Repeat("0", 64)), 1)
		}, k, "hash mismatch: record was changed"},
		{"a wrong prev", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(prevK), []byte(strings.Repeat("ab", 32)), 1))
		}, k, "prev does not match the hash of record 4"},
		{"a prev in upper case", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(prevK), []byte(strings.ToUpper(prevK)), 1))
		}, k, "prev is missing or not 64 lower-case hex digits"},
		{"a prev with an escape", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(prevK), []byte(`\"`+prevK[2:]), 1))
		}, k, "prev is missing or not 64 lower-case hex digits"},
		{"a short prev", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(prevK), []byte(prevK[1:]), 1))
		}, k, "prev is missing or not 64 lower-case hex digits"},
		{"a prev that is two members", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(prevK), []byte(`abc","prew":"`+prevK[:51]), 1))
		}, k, "prev is missing or not 64 lower-case hex digits"},
		{"a hash that is two members", func(l []byte) []byte {
			return bytes.Replace(l, []byte(hashK), []byte(`abc","hasi":"`+hashK[:51]), 1)
		}, k, "hash is missing or not 64 lower-case hex digits"},
		{"a wrong seq", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"seq":5`), []byte(`"seq":6`), 1))
		}, k, "found seq 6 where seq 5 was expected"},
		{"a seq as a string", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"seq":5`), []byte(`"seq":"5"`), 1))
		}, k, "seq is missing or not a positive integer"},
		{"a type that is not a string", func(l []byte) []byte {
			return rehash(t, bytes.Replace(l, []byte(`"type":"execution.succeeded"`), []byte(`"type":1`), 1))
		}, k, "type is missing or not a string"},
		{"a hash with an escape", func(l []byte) []byte {
			return bytes.Replace(l, []byte(hashK), []byte(`\u0030`+hashK[6:]), 1)
		}, k, "hash is missing or not 64 lower-case hex digits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := copyLines(base)
			lines[k-1] = c.line(lines[k-1])
			if bytes.Equal(lines[k-1], base[k-1]) {
				t.Fatal("the line did not change")
			}
			_, err := VerifyJSONL(bytes.NewReader(jsonl(lines)), VerifyOptions{PublicKey: pub(testKey(1))})
			if c.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantChainError(t, err, c.seq, k, c.reason)
		})
	}
}

// TestSpecial8FirstMark: the lowest mark of special8 is exact (the marks
// above it may not be), which is what plainEnd relies on.
func TestSpecial8FirstMark(t *testing.T) {
	fills := []byte{'a', 0x00, 0x01, 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 0x7f, 0x80, 0xff}
	for v := range 256 {
		for _, after := range fills {
			for lane := range 8 {
				w := bytes.Repeat([]byte{after}, 8)
				for i := range lane {
					w[i] = 'a'
				}
				w[lane] = byte(v)
				want := 8
				for i, c := range w {
					if !strPlain[c] {
						want = i
						break
					}
				}
				if got := bits.TrailingZeros64(special8(binary.LittleEndian.Uint64(w))) >> 3; got != want {
					t.Fatalf("special8(%q): first mark at %d, want %d", w, got, want)
				}
			}
		}
	}
}

// FuzzScanCanonical: whatever the quick path accepts, scanFull calls
// canonical and reads the same members from; so does scanCanonical from
// what scanQuick accepts skipping hash and prev when they are hex.
func FuzzScanCanonical(f *testing.F) {
	for _, l := range buildChain(f, 8, testKey(1), 3) {
		f.Add(l)
	}
	f.Add([]byte(knownCanonical))
	f.Add([]byte(`{"a":[],"b":{},"c":[1,[2],{"d":3}],"e":"\u001f\n","f":-12,"g":true,"h":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkQuickScan(t, data)
		checkSkipHex(t, data)
	})
}
