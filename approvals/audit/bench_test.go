package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// benchRecords is the size of the benchmark chain: realistic records
// (350-600 bytes each), a signed checkpoint after every 1000th.
const benchRecords = 10000

var benchChain = sync.OnceValue(func() [][]byte {
	return buildChain(&testing.B{}, benchRecords, testKey(1), 1000)
})

func benchBytes(lines [][]byte) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	return n
}

func reportRecords(b *testing.B, records int) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
}

// BenchmarkVerifyPerRecord verifies the chain record by record (as from a
// store), checkpoint signatures included. Compare with BenchmarkBareSHA256.
func BenchmarkVerifyPerRecord(b *testing.B) {
	lines := benchChain()
	key := pub(testKey(1))
	b.SetBytes(benchBytes(lines))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		v := NewVerifier(VerifyOptions{PublicKey: key})
		for _, l := range lines {
			if err := v.Add(l); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := v.Finish(); err != nil {
			b.Fatal(err)
		}
		n += len(lines)
	}
	reportRecords(b, n)
}

// BenchmarkBareSHA256 hashes the same lines and nothing else: the floor
// for any verifier.
func BenchmarkBareSHA256(b *testing.B) {
	lines := benchChain()
	b.SetBytes(benchBytes(lines))
	n := 0
	var sink byte
	for b.Loop() {
		for _, l := range lines {
			sum := sha256.Sum256(l)
			sink ^= sum[0]
		}
		n += len(lines)
	}
	_ = sink
	reportRecords(b, n)
}

// BenchmarkVerifyJSONL is the streaming verifier over the export file.
func BenchmarkVerifyJSONL(b *testing.B) {
	lines := benchChain()
	export := jsonl(lines)
	key := pub(testKey(1))
	b.SetBytes(int64(len(export)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := VerifyJSONL(bytes.NewReader(export), VerifyOptions{PublicKey: key}); err != nil {
			b.Fatal(err)
		}
		n += len(lines)
	}
	reportRecords(b, n)
}

// BenchmarkVerifyReserialized is the slow path: every line re-serialized
// (members reordered, spaces added) and so fully canonicalized.
func BenchmarkVerifyReserialized(b *testing.B) {
	lines := benchChain()[:2000]
	var re [][]byte
	for _, l := range lines {
		r, err := ParseRecord(l)
		if err != nil {
			b.Fatal(err)
		}
		j, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		re = append(re, spaced(j))
	}
	b.SetBytes(benchBytes(re))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		v := NewVerifier(VerifyOptions{})
		for _, l := range re {
			if err := v.Add(l); err != nil {
				b.Fatal(err)
			}
		}
		n += len(re)
	}
	reportRecords(b, n)
}

// BenchmarkSeal is the write path: canonicalize, hash, insert the hash.
func BenchmarkSeal(b *testing.B) {
	recs := make([]Record, 60)
	for i := range recs {
		recs[i] = sampleRecord(i)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := Seal(recs[n%len(recs)], uint64(n), GenesisPrev); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportRecords(b, n)
}

// BenchmarkVerifyVsSHA256 alternates verifying the chain and bare-hashing
// its lines, 100 records at a time, and reports the ratio of the two times:
// on a shared machine the ratio is steadier than either figure alone. The
// two take turns going first in each chunk: whichever reads a chunk first
// brings it into the cache for the other, and the ratio should not count
// that for either side.
func BenchmarkVerifyVsSHA256(b *testing.B) {
	lines := benchChain()
	key := pub(testKey(1))
	var verify, bare time.Duration
	var sink byte
	hashChunk := func(chunk [][]byte) time.Duration {
		t0 := time.Now()
		for _, l := range chunk {
			sum := sha256.Sum256(l)
			sink ^= sum[0]
		}
		return time.Since(t0)
	}
	for b.Loop() {
		v := NewVerifier(VerifyOptions{PublicKey: key})
		for i := 0; i < len(lines); i += 100 {
			chunk := lines[i:min(i+100, len(lines))]
			hashFirst := (i/100)%2 == 1
			if hashFirst {
				bare += hashChunk(chunk)
			}
			t0 := time.Now()
			for _, l := range chunk {
				if err := v.Add(l); err != nil {
					b.Fatal(err)
				}
			}
			verify += time.Since(t0)
			if !hashFirst {
				bare += hashChunk(chunk)
			}
		}
	}
	_ = sink
	b.ReportMetric(float64(verify)/float64(bare), "verify/sha256")
}

// BenchmarkScanTop is the scan alone (validation, canonical check, field
// positions) over the chain's lines: with the hash, most of a verify.
func BenchmarkScanTop(b *testing.B) {
	lines := benchChain()
	b.SetBytes(benchBytes(lines))
	n := 0
	var f topFields
	for b.Loop() {
		for _, l := range lines {
			if err := scanTop(l, &f); err != nil || !f.canonical {
				b.Fatal(err)
			}
		}
		n += len(lines)
	}
	reportRecords(b, n)
}
