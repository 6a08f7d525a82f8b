package audit

// Attacks on the audit log verifier (the "Execution and audit" part of
// the attacker's checklist): tampered, reordered, cut and forged logs.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// relink re-chains lines[from:] after an edit, as someone holding the
// database but not the key would: every later prev and hash recomputed.
func relink(t *testing.T, lines [][]byte, from int) [][]byte {
	t.Helper()
	out := copyLines(lines)
	for i := from; i < len(out); i++ {
		rec := mustRecord(t, out[i], "")
		prev := GenesisPrev
		if i > 0 {
			prev = mustParse(t, out[i-1])["hash"].(string)
		}
		_, line, err := Seal(rec, uint64(i), prev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = line
	}
	return out
}

func TestAttackTailRewriteAndTruncation(t *testing.T) {
	key := pub(testKey(1))
	base := closed(t, testChain(t)) // ends with a signed checkpoint
	anchors := mustAnchors(t, checkpointLines(base))
	if _, err := verifyBoth(t, base, VerifyOptions{PublicKey: key, Strict: true, Anchors: anchors}); err != nil {
		t.Fatalf("control: %v", err)
	}

	// Records appended after the last checkpoint: only Strict notices.
	appended := appendRecord(t, base, 3)
	if _, err := verifyBoth(t, appended, VerifyOptions{PublicKey: key, Strict: true}); !errors.Is(err, ErrUnsignedTail) {
		t.Errorf("appended after the last checkpoint, strict: %v", err)
	}

	// The tail rewritten with recomputed hashes, from a record before the
	// last checkpoint: the checkpoint no longer matches its chain.
	edited := copyLines(base)
	edited[len(edited)-3] = bytes.Replace(edited[len(edited)-3], []byte(`"deploy-prod"`), []byte(`"deploy-test"`), 1)
	edited = relink(t, edited, len(edited)-3)
	if _, err := verifyBoth(t, edited, VerifyOptions{PublicKey: key}); err == nil {
		t.Error("tail rewritten under a checkpoint verified")
	}
	// ... and with the checkpoint dropped, strict refuses the unsigned tail
	// and the anchors the truncation.
	dropped := edited[:len(edited)-1]
	if _, err := verifyBoth(t, dropped, VerifyOptions{PublicKey: key, Strict: true}); !errors.Is(err, ErrUnsignedTail) {
		t.Errorf("rewritten tail without its checkpoint, strict: %v", err)
	}
	if _, err := verifyBoth(t, dropped, VerifyOptions{PublicKey: key, Anchors: anchors}); !errors.Is(err, ErrTruncated) {
		t.Errorf("rewritten tail without its checkpoint, anchored: %v", err)
	}

	// Cut right after an earlier checkpoint: intact and signed, so only the
	// anchors catch it.
	cut := base[:9]
	if _, err := verifyBoth(t, cut, VerifyOptions{PublicKey: key, Strict: true}); err != nil {
		t.Logf("cut after checkpoint 9, strict (documented as undetectable without anchors): %v", err)
	}
	if _, err := verifyBoth(t, cut, VerifyOptions{PublicKey: key, Strict: true, Anchors: anchors}); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut after an earlier checkpoint, anchored: %v", err)
	}

	// A checkpoint moved (swapped) to another position, or duplicated.
	swapped := copyLines(base)
	swapped[8], swapped[16] = swapped[16], swapped[8]
	if _, err := verifyBoth(t, swapped, VerifyOptions{PublicKey: key}); err == nil {
		t.Error("checkpoints swapped: verified")
	}
	dup := slices.Concat(copyLines(base[:10]), [][]byte{base[9]}, copyLines(base[10:]))
	if _, err := verifyBoth(t, dup, VerifyOptions{}); err == nil {
		t.Error("a record duplicated: verified")
	}
}

// A forged log (no key given) whose records carry self-consistent hashes
// over duplicate members, at the top or nested in data, is refused, as the
// Verifier's doc promises.
func TestAttackForgedDuplicateMembersRefused(t *testing.T) {
	lines := buildChain(t, 3, nil, 0)
	for name, edit := range map[string]func([]byte) []byte{
		"nested in data": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"data":{`), []byte(`"data":{"a":1,"a":2,`), 1)
		},
		"nested twice deep": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"data":{`), []byte(`"data":{"a":{"b":"approve","b":"deny"},`), 1)
		},
		"top level type": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"type":`), []byte(`"type":"vote.deny","type":`), 1)
		},
		"escaped twin": func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"data":{`), []byte(`"data":{"a":1,"\u0061":2,`), 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			forged := copyLines(lines)
			forged[1] = rehash(t, edit(forged[1]))
			forged = relink(t, forged, 2)
			if _, err := verifyBoth(t, forged, VerifyOptions{}); err == nil {
				t.Errorf("forged line with duplicate members verified: %s", forged[1])
			}
		})
	}
}

// Deeply nested and huge input fails quickly, without crashing.
func TestAttackDeepAndHugeInput(t *testing.T) {
	for name, line := range map[string][]byte{
		"deep arrays":  []byte(`{"data":` + strings.Repeat("[", 500000) + strings.Repeat("]", 500000) + `,"hash":"` + strings.Repeat("0", 64) + `"}`),
		"deep objects": []byte(`{"data":` + strings.Repeat(`{"a":`, 150000) + "1" + strings.Repeat("}", 150000) + `}`),
		"over limit":   bytes.Repeat([]byte("a"), MaxLineBytes+10),
		"big number":   []byte(`{"seq":` + strings.Repeat("9", 400) + `}`),
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := VerifyJSONL(bytes.NewReader(line), VerifyOptions{})
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Errorf("err %v, want a ChainError", err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %s", el)
			}
		})
	}
}

// Re-serialized numbers: an integer written as 1.0000000000000001 is the
// same float and verifies, but the verifier says so (Recanonicalized).
// seq 5.0 is the same number and is treated alike.
func TestAttackNumberRespelling(t *testing.T) {
	lines := buildChain(t, 6, nil, 0)
	k := 4 // execution.succeeded: "attempt":1
	edited := copyLines(lines)
	edited[k] = bytes.Replace(edited[k], []byte(`"attempt":1,`), []byte(`"attempt":1.0000000000000001,`), 1)
	sum, err := verifyBoth(t, edited, VerifyOptions{})
	if err != nil || sum.Recanonicalized != 1 {
		t.Errorf("respelled number: %+v, %v; want verified and counted as recanonicalized", sum, err)
	}
	bad := copyLines(lines)
	bad[k] = bytes.Replace(bad[k], []byte(`"seq":5,`), []byte(`"seq":5.0,`), 1)
	if sum, err := verifyBoth(t, bad, VerifyOptions{}); err != nil || sum.Recanonicalized != 1 {
		t.Errorf("seq 5.0 (the same number): %+v, %v; want verified as recanonicalized", sum, err)
	}
	bigger := copyLines(lines)
	bigger[k] = rehash(t, bytes.Replace(bigger[k], []byte(`"attempt":1,`), []byte(`"attempt":9007199254740993,`), 1))
	if _, err := verifyBoth(t, relink(t, bigger, k+1), VerifyOptions{}); err != nil {
		t.Logf("integer beyond 2^53 in a forged record: %v", err)
	}
	_ = sha256.Sum256
	_ = hex.EncodeToString
}
