// Package signoff holds files that ship inside the signoff binary.
package signoff

import _ "embed"

// ExampleConfig is config.example.yaml, which `signoff serve --dev` loads
// when run outside a checkout that has the file.
//
//go:embed config.example.yaml
var ExampleConfig []byte
