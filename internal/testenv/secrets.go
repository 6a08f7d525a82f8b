package testenv

import (
	"strings"
	"sync"

	"github.com/signoff-dev/signoff/approvals/audit"
)

// SecretFileContent is what a test writes into the secret file called name
// (a file name such as "audit-signing-key", or the config key naming it,
// such as "storage.dsn_file") for signoff to accept it: an Ed25519
// checkpoint key where an audit signing key belongs, a PostgreSQL
// connection string where a DSN does, else a placeholder that names the
// file and is long enough for every key's minimum.
func SecretFileContent(name string) string {
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(lower, "audit") && strings.Contains(lower, "signing"):
		return auditKeyPEM()
	case strings.Contains(lower, "dsn"):
		return "host=db.example.com user=signoff password=placeholder dbname=signoff sslmode=verify-full\n"
	}
	return "value-of-" + name + "-0123456789abcdef0123456789abcdef\n"
}

// auditKeyPEM is one Ed25519 checkpoint key for the whole test binary.
var auditKeyPEM = sync.OnceValue(func() string {
	priv, err := audit.GenerateKey()
	if err != nil {
		panic(err)
	}
	var b strings.Builder
	if err := audit.WritePrivateKeyPEM(&b, priv); err != nil {
		panic(err)
	}
	return b.String()
})
