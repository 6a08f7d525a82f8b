package boltstore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The dictionary is part of the file format: values packed with it are
// read with it for as long as a file lives. Changing it would make every
// packed value unreadable, so its bytes are pinned here; a new dictionary
// takes a new first byte (pack.go) and this one stays.
func TestPackDictV1NeverChanges(t *testing.T) {
	sum := sha256.Sum256([]byte(packDictV1))
	const want = "8854213cd3d4a65e8679a8ad2a4f19011ab3d12697809699fb49d8a5c4f0727f"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("packDictV1 changed (sha256 %s, pinned %s): packed values in existing files would no longer read", got, want)
	}
	if dictV1 == nil {
		t.Fatal("packDictV1 is not a valid S2 dictionary (too short or too long)")
	}
}

// A value packed by this version reads back, forever, as it was: a packed
// audit record taken from a file is pinned here, so that a change of the
// S2 library or of the dictionary that would misread old files fails.
func TestUnpackReadsPinnedValue(t *testing.T) {
	const record = `{"action":"deploy","actor":{"issuer":"https://token.actions.githubusercontent.com","subject":"repo:acme/api:ref:refs/heads/main"},"data":{"claims":{"actor":"octocat","ref":"refs/heads/main","repository":"acme/api"},"expires_at":"2026-03-01T13:00:00Z","min_approvals":2,"params":{"service":"api"},"reason":"ship it","requester_issuer":"github","requester_person":"octocat"},"hash":"18d6f3adfd7d4733ee460ea977c08212e05b2eedff14a31557b8e9a760734f70","prev":"0000000000000000000000000000000000000000000000000000000000000000","request_id":"req_06eaih8a02o97933ab49uuqjmc","seq":1,"time":"2026-03-01T12:00:00Z","type":"request.created"}`
	const packedHex = "01f604150003146465706c6f7931961500423061636d652f6170693a7265663a3e7c0172b201146f63746f63612635103e3d003ab90111695ac10118332d303154313315001d282273657276696365223a220d5135d0147368697020690995b2d70111ce39def03f31386436663361646664376434373333656534363065613937376330383231326530356232656564666631346133313535376238653961373630373334663730591e0030fa0100525e02603665616968386130326f3937393333616234397575716a6d635e770229620032396241771500080c6564227d"
	packed, err := hex.DecodeString(packedHex)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := unpack(packed)
	if err != nil || string(got) != record {
		t.Fatalf("pinned packed value reads as %q, %v", got, err)
	}
	if now := pack([]byte(record)); !bytes.Equal(now, packed) {
		t.Logf("pack now gives %x (still readable; only the reading is pinned)", now)
	}
}

func TestPackRoundTrip(t *testing.T) {
	random := make([]byte, 300)
	rand.Read(random)
	record := []byte(`{"id":"req_06eaih8a02o97933ab49uuqjmc","action":"deploy-prod","params":{"service":"api","version":"1.4.2"},"reason":"benchmark","requester":{"issuer":"github","issuer_url":"https://token.actions.githubusercontent.com","subject":"repo:acme/api:ref:refs/heads/main","person":"octocat","claims":{"actor":"octocat","ref":"refs/heads/main","repository":"acme/api"}},"state":"pending","min_approvals":2,"version":1}`)
	for _, tc := range []struct {
		name  string
		value []byte
		first byte // the stored value's first byte, 0 when not checked
	}{
		{"empty", []byte{}, 0},
		{"short", []byte(`{"a":1}`), '{'},
		{"record", record, packedS2v1},
		{"incompressible", random, 0},
		{"starts with the raw marker", append([]byte{packedRaw}, "x"...), packedRaw},
		{"starts with the S2 marker", append([]byte{packedS2v1}, "x"...), packedRaw},
		{"incompressible, starts with the S2 marker", append([]byte{packedS2v1}, random...), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.value)
			stored := pack(in)
			if len(in) > 0 && len(stored) > 0 && &stored[0] == &in[0] {
				t.Fatal("pack returned the caller's buffer; bolt would keep it until the commit")
			}
			if tc.first != 0 && stored[0] != tc.first {
				t.Fatalf("stored value starts with %#x, want %#x", stored[0], tc.first)
			}
			if tc.name == "record" && len(stored) > len(in)/2 {
				t.Fatalf("a %d-byte record packs into %d bytes; want at most half", len(in), len(stored))
			}
			got, err := unpackCopy(stored)
			if err != nil || !bytes.Equal(got, tc.value) {
				t.Fatalf("unpack(pack(v)) = %q, %v; want %q", got, err, tc.value)
			}
		})
	}
}

// A damaged packed value is an error that says so, not a wrong record.
func TestUnpackDamaged(t *testing.T) {
	stored := pack([]byte(strings.Repeat(`{"action":"deploy","type":"request.created"}`, 4)))
	for _, damaged := range [][]byte{stored[:len(stored)/2], {packedS2v1, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, _, err := unpack(damaged); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("unpack of a damaged value: %v, want an error saying the store is damaged", err)
		}
	}
}
