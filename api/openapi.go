package api

import (
	"bytes"
	_ "embed"
)

// OpenAPIPath is where the server serves OpenAPI (public, like
// LoginConfigPath).
const OpenAPIPath = "/v1/openapi.json"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the /v1 API (JSON), a copy
// the caller may keep or change. It is written by hand beside the types it
// describes; tests hold it to them (every Code in the error code enum,
// every wire type's fields in its schema) and to the routes the server
// registers.
func OpenAPI() []byte { return bytes.Clone(openAPI) }
