package devconsole

// pageHTML is the console's page. Everything it shows from a request
// goes through html/template's contextual escaping.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>signoff dev console</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d1f23; }
header { background: #1d1f23; color: #fff; padding: 12px 24px; display: flex; justify-content: space-between; align-items: center; }
header a { color: #9ecbff; }
main { max-width: 860px; margin: 24px auto; padding: 0 16px; }
.flash { padding: 10px 14px; border-radius: 6px; margin-bottom: 16px; }
.flash.ok { background: #e3f6e8; border: 1px solid #8fd19e; }
.flash.err { background: #fdecea; border: 1px solid #f5a8a0; }
.card { background: #fff; border: 1px solid #d9dce1; border-radius: 8px; padding: 16px 20px; margin-bottom: 16px; }
.card h2 { margin: 0 0 4px; font-size: 18px; }
.state { display: inline-block; font-size: 12px; font-weight: 600; text-transform: uppercase; padding: 2px 8px; border-radius: 10px; background: #e8eaed; }
.state.pending { background: #fff3c4; } .state.approved { background: #c9f0d3; } .state.denied { background: #fbd0cb; }
.meta { color: #5f6672; font-size: 13px; }
table.params { border-collapse: collapse; margin: 8px 0; }
table.params td { padding: 2px 12px 2px 0; vertical-align: top; }
table.params td:first-child { color: #5f6672; }
.reason { white-space: pre-wrap; background: #f7f8fa; border-left: 3px solid #c5c9d0; padding: 6px 10px; margin: 8px 0; }
ul.votes { margin: 6px 0; padding-left: 20px; }
form.vote { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 10px; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid transparent; cursor: pointer; }
button.approve { background: #1f883d; color: #fff; } button.deny { background: #cf222e; color: #fff; }
input[type=text] { font: inherit; padding: 5px 8px; border: 1px solid #c5c9d0; border-radius: 6px; min-width: 220px; }
select { font: inherit; padding: 5px; }
button.chat-approve { background: #1f883d; color: #fff; } button.chat-deny { background: #cf222e; color: #fff; }
button.link { background: #0969da; color: #fff; }
form.chat { border-top: 1px dashed #d9dce1; padding-top: 10px; }
ul.chat-users { list-style: none; padding: 0; margin: 8px 0 0; }
li.chat-user { display: flex; justify-content: space-between; align-items: center; gap: 12px; padding: 8px 0; border-top: 1px solid #eceef1; }
li.chat-user form { margin: 0; }
.flash a { font-weight: 600; }
.flash code { display: block; word-break: break-all; font-size: 12px; margin-top: 4px; }
.empty { color: #5f6672; text-align: center; padding: 40px 0; }
</style>
</head>
<body>
<header><strong>signoff · dev console</strong><a href="/dev">Refresh</a></header>
<main>
{{if .Flash}}<div class="flash {{.FlashKind}}" role="status">{{.Flash}}{{if .FlashLink}}<br><a class="signin-link" href="{{.FlashLink}}" rel="noreferrer">Open the sign-in link</a> (as the chat adapters would send it)<code>{{.FlashLink}}</code>{{end}}</div>{{end}}
{{if not .Cards}}<p class="empty">No requests yet. Create one with the <code>signoff request</code> command signoff printed at start, then refresh.</p>{{end}}
{{range .Cards}}
<section class="card" id="{{.ID}}" data-state="{{.State}}">
  <h2>{{.Action}} <span class="state {{.State}}">{{.State}}</span></h2>
  <div class="meta">{{.ID}} · requested by <strong>{{if .Requester.Name}}{{.Requester.Name}}{{else}}{{.Requester.Subject}}{{end}}</strong> ({{.Requester.Issuer}}) · {{fmtTime .CreatedAt}}
  {{if .Pending}} · expires {{since $.Now .ExpiresAt}}{{end}}</div>
  {{if .Params}}<table class="params">{{range sortedParams .Params}}<tr><td>{{index . 0}}</td><td><code>{{index . 1}}</code></td></tr>{{end}}</table>{{end}}
  {{if .Reason}}<div class="reason">{{.Reason}}</div>{{end}}
  {{if .Links}}<div>{{range .Links}}<a href="{{safeURL .URL}}" rel="noopener noreferrer nofollow" target="_blank">{{if .Title}}{{.Title}}{{else}}{{.URL}}{{end}}</a> {{end}}</div>{{end}}
  <div class="meta">{{.Approvals}} of {{.MinApprovals}} approvals{{if .Pending}} · {{.Remaining}} more needed{{end}}{{if .Execution}} · execution {{.Execution.Status}}{{if .Execution.LastError}} ({{.Execution.LastError}}){{end}}{{end}}</div>
  {{if .Votes}}<ul class="votes">{{range .Votes}}<li>{{.Approver.Name}} voted <strong>{{.Decision}}</strong> via {{.Approver.Platform}} at {{fmtTime .Time}}{{if .Reason}}: “{{.Reason}}”{{end}}</li>{{end}}</ul>{{end}}
  {{if .Pending}}
  <form class="vote" method="post" action="/dev/vote">
    <input type="hidden" name="csrf" value="{{$.CSRF}}">
    <input type="hidden" name="request" value="{{.ID}}">
    <label>as <select name="approver">{{range $.Approvers}}<option value="{{.Name}}">{{.Name}}{{if .Groups}} ({{join .Groups ", "}}){{end}}</option>{{end}}</select></label>
    <input type="text" name="reason" placeholder="reason (optional)" maxlength="500">
    <button class="approve" type="submit" name="decision" value="approve">Approve</button>
    <button class="deny" type="submit" name="decision" value="deny">Deny</button>
  </form>
  {{if $.ChatUsers}}
  <form class="vote chat" method="post" action="/dev/chat-vote">
    <input type="hidden" name="csrf" value="{{$.CSRF}}">
    <input type="hidden" name="request" value="{{.ID}}">
    <label>as chat user <select name="chat_user">{{range $.ChatUsers}}<option value="{{.Name}}">chat:{{.Name}}{{if not .Linked}} (not linked){{end}}</option>{{end}}</select></label>
    <input type="text" name="reason" placeholder="reason (optional)" maxlength="500">
    <button class="chat-approve" type="submit" name="decision" value="approve">Approve</button>
    <button class="chat-deny" type="submit" name="decision" value="deny">Deny</button>
  </form>
  {{end}}
  {{end}}
</section>
{{end}}
{{if .ChatUsers}}
<section class="card" id="chat-users">
  <h2>Chat users</h2>
  <div class="meta">Pretend chat accounts (platform dev, workspace dev), one per dev approver. Like a Slack or Teams click, a vote "as chat user" counts only through the identity the account is linked to; Link runs the real sign-in flow.</div>
  <ul class="chat-users">
  {{range .ChatUsers}}<li class="chat-user" data-chat-user="{{.Name}}" data-linked="{{.Linked}}">
    <span><strong>chat:{{.Name}}</strong> ·
    {{if .Problem}}{{.Problem}}{{else if .Linked}}linked to <strong class="identity">{{.Who}}</strong> ({{.Link.Subject}} at {{.Link.Issuer}}) · groups {{if .Link.Groups}}{{join .Link.Groups ", "}}{{else}}(none){{end}} · verified {{.VerifiedAgo}} ago{{if .Link.Stale}} · <strong>stale</strong>{{if .Link.StaleReason}}: {{.Link.StaleReason}}{{end}}{{end}}{{else}}<span class="unlinked">not linked</span>{{end}}</span>
    <form method="post" action="/dev/link">
      <input type="hidden" name="csrf" value="{{$.CSRF}}">
      <input type="hidden" name="chat_user" value="{{.Name}}">
      <button class="link" type="submit">{{if .Linked}}Link again{{else}}Link{{end}}</button>
    </form>
  </li>
  {{end}}</ul>
</section>
{{end}}
{{if .Webhooks}}
<section class="card" id="webhooks">
  <h2>Webhook calls received</h2>
  <div class="meta">The built-in receiver at /dev/webhook stands in for your deploy system; it checks each call's Signoff-Signature.</div>
  <ul class="votes">{{range .Webhooks}}<li data-request="{{.RequestID}}">{{fmtTime .Time}} · {{.Action}} · {{.RequestID}} · {{if .SignatureValid}}<strong>signature valid</strong>{{else}}<strong>refused</strong>: {{.Problem}}{{end}}</li>{{end}}</ul>
</section>
{{end}}
</main>
</body>
</html>
`
