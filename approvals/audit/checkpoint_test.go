package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointMessage(t *testing.T) {
	h := strings.Repeat("ab", 32)
	want := "signoff-checkpoint/v1\n18446744073709551615\n" + h
	if got := string(CheckpointMessage(^uint64(0), h)); got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestKeyID(t *testing.T) {
	p := pub(testKey(1))
	sum := sha256.Sum256(p)
	if got := KeyID(p); got != hex.EncodeToString(sum[:])[:16] || len(got) != 16 {
		t.Errorf("KeyID = %s", got)
	}
}

func TestNewCheckpoint(t *testing.T) {
	key := testKey(3)
	h := strings.Repeat("0f", 32)
	cp := NewCheckpoint(key, 41, h)
	if cp.Type != TypeCheckpoint || cp.Time == "" {
		t.Fatalf("checkpoint %+v", cp)
	}
	if _, ok := cp.Data["seq"].(uint64); !ok {
		t.Errorf("data.seq is %T, want uint64", cp.Data["seq"])
	}
	sig, err := base64.StdEncoding.DecodeString(cp.Data["signature"].(string))
	if err != nil || !ed25519.Verify(pub(key), CheckpointMessage(41, h), sig) {
		t.Errorf("signature does not verify: %v", err)
	}
	if cp.Data["key_id"] != KeyID(pub(key)) || cp.Data["hash"] != h {
		t.Errorf("data %+v", cp.Data)
	}
	// data.seq is written as a JSON integer and read back without floats.
	_, line, err := Seal(cp, 41, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(line, []byte(`"seq":41,"signature"`)) {
		t.Errorf("line %s", line)
	}
	r, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := r.Data["seq"].(json.Number); !ok || n.String() != "41" {
		t.Errorf("read back data.seq %#v", r.Data["seq"])
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privPath := filepath.Join(dir, "signing.pem")
	if err := WritePrivateKeyFile(privPath, priv); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(privPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v", fi.Mode(), err)
	}
	if err := WritePrivateKeyFile(privPath, priv); err == nil {
		t.Error("WritePrivateKeyFile overwrote an existing file")
	}
	got, err := ReadPrivateKeyFile(privPath)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("read private key: %v", err)
	}
	data, _ := os.ReadFile(privPath)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("private key file:\n%s", data)
	}

	var b bytes.Buffer
	if err := WritePublicKeyPEM(&b, pub(priv)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("public key PEM:\n%s", b.String())
	}
	pubPath := filepath.Join(dir, "signing.pub.pem")
	if err := os.WriteFile(pubPath, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	gotPub, err := ReadPublicKeyFile(pubPath)
	if err != nil || !gotPub.Equal(pub(priv)) {
		t.Fatalf("read public key: %v", err)
	}

	// Mix-ups give a message that says what to do.
	if _, err := ReadPublicKeyFile(privPath); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("public key read from a private key file: %v", err)
	}
	if _, err := ReadPrivateKeyFile(pubPath); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("private key read from a public key file: %v", err)
	}
	if _, err := ReadPrivateKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := ParsePrivateKeyPEM([]byte("not pem")); err == nil {
		t.Error("garbage accepted as a private key")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	if _, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Errorf("ECDSA key accepted: %v", err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder})); err == nil || !strings.Contains(err.Error(), "Ed25519") {
		t.Errorf("ECDSA public key accepted: %v", err)
	}
	if err := WritePrivateKeyPEM(&b, ed25519.PrivateKey{1, 2}); err == nil {
		t.Error("short private key written")
	}
}
