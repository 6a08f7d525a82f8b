package bot

// The API's description.
//
//	GET /v1/openapi.json   public: the OpenAPI 3.1 document of the /v1 API (api.OpenAPI)
//
// Public like /v1/login-config: it holds no secrets, only what the
// documentation says. It changes only with the server's version, so it is
// cacheable (an hour, then revalidated by its ETag), and any origin may
// read it (no credentials are involved), so that an OpenAPI viewer in a
// browser can load it.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/signoff-dev/signoff/api"
)

func (s *Server) mountOpenAPI() {
	doc := api.OpenAPI()
	sum := sha256.Sum256(doc)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	s.mux.HandleFunc("GET "+api.OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		if etagMatches(r.Header.Values("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(doc)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(doc)
		}
	})
	s.mux.HandleFunc(api.OpenAPIPath, methodNotAllowed("GET, HEAD"))
}

// etagMatches reports whether an If-None-Match header names etag: "*", or
// etag among its comma-separated tags, weak or strong (RFC 9110, 13.1.2).
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}
