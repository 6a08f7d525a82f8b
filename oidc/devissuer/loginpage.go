package devissuer

import "html/template"

// The dev issuer's pages: plain HTML with inline style, no script and no
// external assets; everything shown goes through html/template's
// contextual escaping.

const pageStyle = `<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#eef0f4;color:#1d1d1f}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.12);border-top:6px solid #5b4bc4}
main.error{border-top-color:#c62828}
h1{font-size:1.35rem;margin:.2rem 0 .6rem}
.meta{color:#5f6672;font-size:.9rem}
ul{list-style:none;padding:0;margin:1rem 0}
li.person{display:flex;justify-content:space-between;align-items:center;gap:1rem;border:1px solid #d9dce1;border-radius:6px;padding:.6rem .8rem;margin-bottom:.5rem}
.who strong{display:block}
button{font:inherit;padding:.4rem 1rem;border-radius:6px;border:1px solid transparent;cursor:pointer}
button.signin{background:#5b4bc4;color:#fff}
button.cancel{background:#fff;border-color:#c5c9d0}
.note{background:#f7f5ff;border-left:4px solid #5b4bc4;padding:.5rem .8rem;font-size:.9rem}
</style>`

// page is the template of a dev issuer page named name: title (template
// text) heads it, main (template text, ending in a newline) is its body.
func page(name, title, main string) *template.Template {
	return template.Must(template.New(name).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>` + title + ` · signoff dev issuer</title>
` + pageStyle + `
</head>
<body>
` + main + `</body>
</html>
`))
}

var signInTemplate = page("signin", "Sign in", `<main id="signin">
<h1>Sign in to {{.ClientID}}</h1>
<p class="meta">Dev issuer {{.Issuer}} · you return to {{.Redirect}}</p>
<p class="note">Dev mode: pick who you are. There is no password; every sign-in here counts as a fresh multi-factor sign-in{{if .Fresh}} (the client asked for one){{end}}{{if .ACR}}, at level {{.ACR}}{{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="page" value="{{.Page}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<ul>
{{range .People}}<li class="person" data-person="{{.Name}}">
<span class="who"><strong>{{.Name}}</strong>{{if .Email}}{{.Email}}<br>{{end}}<span class="meta">groups: {{if .Groups}}{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}{{else}}(none){{end}}</span></span>
<button class="signin" type="submit" name="person" value="{{.Name}}">Sign in as {{.Name}}</button>
</li>
{{end}}</ul>
<button class="cancel" type="submit" name="cancel" value="1">Cancel</button>
</form>
</main>
`)

var errorTemplate = page("error", "{{.Title}}", `<main id="error" class="error">
<h1>{{.Title}}</h1>
<p>{{.Detail}}</p>
<p class="meta">signoff dev issuer</p>
</main>
`)
