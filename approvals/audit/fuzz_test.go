package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// fuzzSeedChain is a valid signed chain used as a fuzz seed.
func fuzzSeedChain(tb testing.TB) []byte {
	return jsonl(buildChain(tb, 8, testKey(1), 3))
}

// FuzzVerifyJSONL: the verifier never panics, the valid seed verifies, and
// whatever it accepts, a slow reference verifier (full RFC 8785
// canonicalization of every line, generic decoding) accepts too, so the
// fast path accepts nothing the definition of the chain rejects.
func FuzzVerifyJSONL(f *testing.F) {
	seed := fuzzSeedChain(f)
	f.Add(seed)
	lines := bytes.SplitAfter(seed, []byte("\n"))
	f.Add(bytes.Join(lines[:3], nil))
	f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1]}, nil))
	f.Add(bytes.Replace(seed, []byte(`"2025-`), []byte(`"2024-`), 1))
	f.Add(spaced(bytes.Join(lines[:2], nil)))
	f.Add([]byte(""))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"hash":"` + GenesisPrev + `","prev":"` + GenesisPrev + `","seq":1,"type":"checkpoint","data":{"seq":0}}`))
	f.Add([]byte("{\"a\":\"\\ud800\\udc00\"}\n\n"))
	key := pub(testKey(1))

	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := VerifyJSONL(bytes.NewReader(data), VerifyOptions{})
		if bytes.Equal(data, seed) && err != nil {
			t.Fatalf("the valid seed chain failed: %v", err)
		}
		var ce *ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *ChainError", err)
		}
		if err == nil {
			if rerr := referenceVerify(data); rerr != nil {
				t.Fatalf("verifier accepted what the reference rejects: %v\nsummary %+v", rerr, sum)
			}
		}
		ksum, kerr := VerifyJSONL(bytes.NewReader(data), VerifyOptions{PublicKey: key})
		if bytes.Equal(data, seed) && (kerr != nil || ksum.Checkpoints != 2) {
			t.Fatalf("the valid seed chain failed with its key: %+v %v", ksum, kerr)
		}
		if kerr == nil && err != nil {
			t.Fatalf("accepted with a key but not without: %v", err)
		}
	})
}

// referenceVerify checks the chain the slow, obvious way.
func referenceVerify(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxLineBytes)
	prev := GenesisPrev
	var seq int64
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		canon, err := jcs.Transform(line)
		if err != nil {
			return fmt.Errorf("jcs: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(canon))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return err
		}
		h, ok := m["hash"].(string)
		if !ok {
			return errors.New("no hash")
		}
		delete(m, "hash")
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			return err
		}
		c, err := jcs.Transform(b.Bytes())
		if err != nil {
			return err
		}
		sum := sha256.Sum256(c)
		if hex.EncodeToString(sum[:]) != h {
			return fmt.Errorf("hash mismatch in %s", line)
		}
		n, _ := m["seq"].(json.Number)
		s, err := n.Int64()
		if err != nil || s != seq+1 {
			return fmt.Errorf("seq %v after %d", m["seq"], seq)
		}
		if m["prev"] != prev {
			return errors.New("prev mismatch")
		}
		seq, prev = s, h
	}
	return sc.Err()
}

// FuzzScanner: the scanner agrees with gowebpki/jcs. Whatever it calls
// canonical, jcs leaves unchanged (the fast path's soundness); whatever
// object jcs accepts, the scanner accepts; whatever the scanner accepts is
// valid JSON.
func FuzzScanner(f *testing.F) {
	for _, l := range buildChain(f, 8, testKey(1), 3) {
		f.Add(l)
	}
	for _, s := range []string{
		knownCanonical,
		`{"a":"\u001f\u0000\b\t\n\f\r\"\\/","b":-0,"c":1.5,"d":1e3,"e":123456789012345,"f":1234567890123456}`,
		`{"\u0080":1,"\u00f6":2,"\u20ac":3,"` + "\U0001F600" + `":4,"` + "\ufb33" + `":5}`,
		`{"` + "\ufb33" + `":5,"` + "\U0001F600" + `":4}`,
		`{"a":"\u001F","b":"\u0041","c":"\ud83d\ude00"}`,
		`{"a":[1,{"b":null,"a":true}],"c":{}}`,
		` {"a":1} `,
		`{"a":1,"a":2}`,
		"{\"a\":\"\xed\xa0\x80\"}",
		`{"a":"\uDD00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tf topFields
		serr := scanTop(data, &tf)
		if serr == nil && !json.Valid(data) {
			t.Fatalf("scanner accepted invalid JSON %q", data)
		}
		out, jerr := jcs.Transform(data)
		if serr == nil && tf.canonical {
			if jerr != nil {
				t.Fatalf("scanner calls %q canonical, jcs rejects it: %v", data, jerr)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("scanner calls %q canonical, jcs gives %q", data, out)
			}
		}
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		if jerr == nil && len(trimmed) > 0 && trimmed[0] == '{' && serr != nil &&
			!strings.Contains(serr.Error(), "nested deeper") {
			t.Fatalf("jcs accepts %q, the scanner does not: %v", data, serr)
		}
		if jerr == nil && serr == nil {
			// The canonical output scans as canonical unless it holds what
			// the scanner leaves to jcs (non-integers, long integers).
			var cf topFields
			if err := scanTop(out, &cf); err != nil {
				t.Fatalf("scanner rejects jcs output %q: %v", out, err)
			}
		}
	})
}

// plain8 must agree with strPlain on every byte value in every lane, next
// to any neighbour (borrows between lanes are the classic pitfall).
func TestPlain8(t *testing.T) {
	for v := range 256 {
		for _, fill := range []byte{'a', 0x00, 0x1f, 0x20, 0x21, '"', '\\', 0x7f, 0x80, 0xff} {
			for lane := range 8 {
				w := bytes.Repeat([]byte{fill}, 8)
				w[lane] = byte(v)
				want := true
				for _, c := range w {
					want = want && strPlain[c]
				}
				if got := plain8(binary.LittleEndian.Uint64(w)); got != want {
					t.Fatalf("plain8(%q) = %v, want %v", w, got, want)
				}
			}
		}
	}
}
