package linkflow

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/signoff-dev/signoff/internal/webpage"
)

// pageError is a page of the link flow: a result or a refusal. Pages are
// plain HTML with inline style, no script and no external assets.
type pageError struct {
	status int
	// outcome is "linked", "voted" or "error"; tests and the browser test
	// read it from the page.
	outcome    string
	title      string
	paragraphs []string
	facts      []fact
	retry      string
	// form, when set, is the page's one button (a POST back to signoff).
	form *pageForm
}

// pageForm is a confirmation button: a POST to Action carrying the hidden
// fields.
type pageForm struct {
	Action string
	Fields []fact
	Button string
}

// fact is one row of a page's summary table.
type fact struct {
	Name, Value string
}

func errorPage(status int, title, what, retry string) *pageError {
	return &pageError{status: status, outcome: "error", title: title, paragraphs: []string{what}, retry: retry}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · signoff</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d1d1f}
main{max-width:40rem;margin:3rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
main.ok{border-top:6px solid #2e7d32}main.error{border-top:6px solid #c62828}
h1{font-size:1.4rem;margin:.2rem 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dt{font-weight:600;color:#555}dd{margin:0;word-break:break-word}
.retry{background:#fff8e1;border-left:4px solid #f9a825;padding:.6rem .8rem}
footer{margin-top:1.5rem;color:#777;font-size:.85rem}
</style>
</head>
<body>
<main id="result" class="{{.Class}}" data-outcome="{{.Outcome}}">
<h1>{{.Title}}</h1>
{{range .Paragraphs}}<p>{{.}}</p>
{{end}}{{if .Facts}}<dl>
{{range .Facts}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>
{{end}}</dl>
{{end}}{{with .Form}}<form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<button type="submit" id="continue" style="font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:0;background:#1565c0;color:#fff;cursor:pointer">{{.Button}}</button>
</form>
{{end}}{{if .Retry}}<p class="retry"><strong>What to do:</strong> {{.Retry}}</p>
{{end}}<footer>signoff · account link</footer>
</main>
</body>
</html>
`))

// setPageHeaders forbids caching, framing, scripts and referrers on every
// link-flow response; forms are forbidden too, except where setFormTargets
// allows one.
func setPageHeaders(w http.ResponseWriter) {
	webpage.SetHeaders(w, "'none'")
}

// allowFormRedirects lifts form-action on a page with a form: browsers
// apply it to every redirect after the submission, and the IdP may send
// the browser on through origins signoff cannot know (a federated login).
// The page carries no script and escapes everything it shows, so no
// other form can appear on it.
func allowFormRedirects(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
}

// renderPage writes p with its status code.
func (l *Linker) renderPage(w http.ResponseWriter, p *pageError) {
	class := "error"
	if p.status < 300 {
		class = "ok"
	}
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, map[string]any{
		"Title": p.title, "Class": class, "Outcome": p.outcome,
		"Paragraphs": p.paragraphs, "Facts": p.facts, "Retry": p.retry, "Form": p.form,
	})
	setPageHeaders(w)
	if p.form != nil {
		allowFormRedirects(w)
	}
	if err != nil {
		l.log.Error("rendering a link-flow page failed", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("signoff could not render this page; go back to the chat and try again.\n"))
		return
	}
	webpage.WriteHTML(w, p.status, buf.Bytes())
}
