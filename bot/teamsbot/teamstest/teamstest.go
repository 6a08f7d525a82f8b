// Package teamstest is a Bot Framework stand-in for tests, in the spirit of
// slack-go's slacktest: one loopback HTTP server that plays Microsoft's
// side of a Teams bot.
//
//   - OpenID metadata and a JSON Web Key Set whose keys carry endorsements
//     (["msteams"]), as https://login.botframework.com serves them, and
//     Sign, which mints the tokens the Bot Connector would send with an
//     activity;
//   - the token endpoint (client credentials grant), which checks the
//     bot's app id, secret and scope;
//   - the connector endpoints /v3/conversations/{id}/activities[/{id}]
//     under ServiceURL, which record what the bot posts, updates and
//     deletes, answer with activity ids, and can be scripted to fail;
//   - the member lookup /v3/conversations/{id}/members/{memberId} under
//     ServiceURL, which answers with the members a test registers
//     (AddMember) in Microsoft's wire format, finds them by Teams user id,
//     Microsoft Entra object id or UPN as Teams does, and can be scripted
//     to fail (Fail with method GET);
//   - builders for the activities Teams sends (an invoke named
//     adaptiveCard/action, conversationUpdate, installationUpdate, and the
//     message an Action.Submit sends), in the shapes of Microsoft's docs.
//
// It is for tests only: keys are generated in process and nothing is
// secret.
package teamstest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults for Options.
const (
	DefaultAppID       = "00000000-0000-4000-8000-00000000b07a"
	DefaultAppPassword = "test-app-password-0123456789"
	DefaultTenantID    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	// Issuer is the issuer of Bot Connector tokens.
	Issuer = "https://api.botframework.com"
	// Scope is what the bot must ask its token for.
	Scope = "https://api.botframework.com/.default"
	// MainKeyID is the kid of the key Sign uses by default. It is
	// published with endorsements ["msteams"].
	MainKeyID = "bf-main"
)

// Options configure a Server. Zero values get the defaults above and the
// wall clock.
type Options struct {
	AppID       string
	AppPassword string
	TenantID    string
	// Now dates the tokens Sign mints; default time.Now.
	Now func() time.Time
	// DiscardBodies leaves Call.Body nil: the connector endpoints read an
	// activity's body but neither decode nor keep it. For load runs,
	// where every card update would otherwise be decoded and kept for
	// the server's life (the stand-in shares the process, its memory and
	// its garbage collector with the bot under load).
	DiscardBodies bool
}

// Answer scripts one connector (or token endpoint) answer.
type Answer struct {
	Status int
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Code is the error code in the Bot Framework error body.
	Code string
}

// Call is one request the connector endpoints answered.
type Call struct {
	// Method is POST, PUT or DELETE (activities) or GET (member lookups).
	Method string
	// Conversation is the conversation id from the path (unescaped).
	Conversation string
	// MemberID is the member id a lookup asked for (unescaped).
	MemberID string
	// ActivityID is the id from the path (PUT, DELETE, replies) or the id
	// the answer assigned (a successful POST of a new activity).
	ActivityID string
	// Body is the activity sent, decoded (nil with Options.DiscardBodies).
	Body map[string]any
	// Status is the status answered.
	Status int
	// Authorization is the header the bot sent.
	Authorization string
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Status >= 200 && c.Status < 300 }

// Card returns the Adaptive Card the call's activity carries, or nil.
func (c Call) Card() map[string]any {
	atts, _ := c.Body["attachments"].([]any)
	for _, a := range atts {
		m, _ := a.(map[string]any)
		if m["contentType"] == "application/vnd.microsoft.card.adaptive" {
			card, _ := m["content"].(map[string]any)
			return card
		}
	}
	return nil
}

type signingKey struct {
	kid          string
	priv         *rsa.PrivateKey
	endorsements []string // nil: the JWK has no endorsements member
	published    bool
}

// Server is the stand-in. Create it with NewServer and Close it when done.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string

	opts Options
	srv  *httptest.Server

	mu            sync.Mutex
	keys          []signingKey
	calls         []Call
	script        map[string][]Answer
	nextID        int
	tokens        map[string]bool
	tokenRequests int
	metadataHits  int
	// members are the members registered per conversation id.
	members map[string][]Member
}

// NewServer starts a stand-in on loopback.
func NewServer(opts Options) *Server {
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.AppPassword == "" {
		opts.AppPassword = DefaultAppPassword
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, script: map[string][]Answer{}, tokens: map[string]bool{}, members: map[string][]Member{}}
	s.keys = append(s.keys, signingKey{kid: MainKeyID, priv: poolKey(0), endorsements: []string{"msteams"}, published: true})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", s.metadata)
	mux.HandleFunc("GET /v1/.well-known/keys", s.jwks)
	mux.HandleFunc("POST /botframework.com/oauth2/v2.0/token", s.token)
	mux.HandleFunc("/teams/v3/conversations/", s.connector)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AppID, AppPassword and TenantID return the bot's credentials and tenant.
func (s *Server) AppID() string       { return s.opts.AppID }
func (s *Server) AppPassword() string { return s.opts.AppPassword }
func (s *Server) TenantID() string    { return s.opts.TenantID }

// OpenIDMetadataURL is the value for teams.openid_metadata_url.
func (s *Server) OpenIDMetadataURL() string { return s.URL + "/v1/.well-known/openidconfiguration" }

// TokenURL is the value for teams.token_url.
func (s *Server) TokenURL() string { return s.URL + "/botframework.com/oauth2/v2.0/token" }

// ServiceURL is the serviceUrl activities carry (like Teams', it has a
// path and ends with "/").
func (s *Server) ServiceURL() string { return s.URL + "/teams/" }

// ServiceHost is ServiceURL's host (a loopback address), the entry to add
// to teams.service_url_hosts.
func (s *Server) ServiceHost() string {
	u, _ := url.Parse(s.URL)
	return u.Hostname()
}

// AddKey adds a signing key. A published key is listed in the key set,
// with an endorsements member when endorsements is not nil; an unpublished
// one can sign tokens nobody can verify.
func (s *Server) AddKey(kid string, endorsements []string, published bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, signingKey{kid: kid, priv: poolKey(len(s.keys)), endorsements: endorsements, published: published})
}

// MetadataHits reports how often the OpenID metadata was fetched.
func (s *Server) MetadataHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metadataHits
}

// TokenRequests reports how many tokens the token endpoint issued.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// keyPool holds RSA keys generated once per process (generation is slow).
var (
	keyPoolMu sync.Mutex
	keyPool   []*rsa.PrivateKey
)

func poolKey(i int) *rsa.PrivateKey {
	keyPoolMu.Lock()
	defer keyPoolMu.Unlock()
	for len(keyPool) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("teamstest: generate key: %v", err))
		}
		keyPool = append(keyPool, k)
	}
	return keyPool[i]
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.metadataHits++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                Issuer,
		"authorization_endpoint":                "https://invalid.botframework.com",
		"jwks_uri":                              s.URL + "/v1/.well-known/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []any
	for _, k := range s.keys {
		if !k.published {
			continue
		}
		raw, err := json.Marshal(jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Use: "sig"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if k.endorsements != nil {
			m["endorsements"] = k.endorsements
		}
		keys = append(keys, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// Claims are a token's claims.
type Claims map[string]any

// TokenClaims returns the claims the Bot Connector puts in a token sent
// with an activity from serviceURL, dated by Options.Now.
func (s *Server) TokenClaims(serviceURL string) Claims {
	now := s.opts.Now()
	return Claims{
		"iss":        Issuer,
		"aud":        s.opts.AppID,
		"serviceurl": serviceURL,
		"nbf":        now.Add(-5 * time.Minute).Unix(),
		"iat":        now.Add(-5 * time.Minute).Unix(),
		"exp":        now.Add(time.Hour).Unix(),
	}
}

// Sign mints a token with claims, signed RS256 by the key kid (MainKeyID
// when empty). kid "none" makes an unsigned token (alg none).
func (s *Server) Sign(claims Claims, kid string) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("teamstest: encode claims: %v", err))
	}
	if kid == "none" {
		return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(string(payload)) + "."
	}
	if kid == "" {
		kid = MainKeyID
	}
	s.mu.Lock()
	var key *rsa.PrivateKey
	for _, k := range s.keys {
		if k.kid == kid {
			key = k.priv
		}
	}
	s.mu.Unlock()
	if key == nil {
		panic("teamstest: no key " + kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		panic(fmt.Sprintf("teamstest: signer: %v", err))
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(fmt.Sprintf("teamstest: sign: %v", err))
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(fmt.Sprintf("teamstest: serialize: %v", err))
	}
	return out
}

// Authorization returns the Authorization header the Bot Connector sends
// with activity: a fresh token for its serviceUrl.
func (s *Server) Authorization(activity map[string]any) string {
	su, _ := activity["serviceUrl"].(string)
	return "Bearer " + s.Sign(s.TokenClaims(su), "")
}

func b64(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	f := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.script["TOKEN"]; len(q) > 0 {
		a := q[0]
		s.script["TOKEN"] = q[1:]
		writeJSON(w, a.Status, map[string]any{"error": a.Code, "error_description": "scripted failure"})
		return
	}
	switch {
	case f.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type"})
	case f.Get("client_id") != s.opts.AppID || f.Get("client_secret") != s.opts.AppPassword:
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
	case f.Get("scope") != Scope:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_scope"})
	default:
		s.tokenRequests++
		tok := fmt.Sprintf("bot-access-token-%d", s.tokenRequests)
		s.tokens[tok] = true
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
	}
}

// Fail queues answers for the next connector calls of method (POST, PUT,
// DELETE; GET for member lookups) or of the token endpoint ("TOKEN").
func (s *Server) Fail(method string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[method] = append(s.script[method], answers...)
}

func (s *Server) connector(w http.ResponseWriter, r *http.Request) {
	// /teams/v3/conversations/{conversation}/activities[/{activity}]
	// /teams/v3/conversations/{conversation}/members/{member}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/teams/v3/conversations/")
	parts := strings.Split(rest, "/")
	if len(parts) == 3 && parts[1] == "members" {
		s.member(w, r, parts[0], parts[2])
		return
	}
	if len(parts) < 2 || parts[1] != "activities" || len(parts) > 3 {
		writeJSON(w, http.StatusNotFound, errBody("NotFound", "no such endpoint"))
		return
	}
	conv, err := url.PathUnescape(parts[0])
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("BadArgument", "bad conversation id"))
		return
	}
	activityID := ""
	if len(parts) == 3 {
		if activityID, err = url.PathUnescape(parts[2]); err != nil {
			writeJSON(w, http.StatusBadRequest, errBody("BadArgument", "bad activity id"))
			return
		}
	}
	call := Call{Method: r.Method, Conversation: conv, ActivityID: activityID, Authorization: r.Header.Get("Authorization")}
	if r.Body != nil {
		raw, _ := io.ReadAll(r.Body)
		if !s.opts.DiscardBodies {
			_ = json.Unmarshal(raw, &call.Body)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tokens[strings.TrimPrefix(call.Authorization, "Bearer ")] {
		call.Status = http.StatusUnauthorized
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusUnauthorized, errBody("Unauthorized", "Authorization has been denied for this request."))
		return
	}
	if q := s.script[r.Method]; len(q) > 0 {
		a := q[0]
		s.script[r.Method] = q[1:]
		call.Status = a.Status
		s.calls = append(s.calls, call)
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		writeJSON(w, a.Status, errBody(firstNonEmpty(a.Code, http.StatusText(a.Status)), "scripted failure"))
		return
	}
	call.Status = http.StatusOK
	switch r.Method {
	case http.MethodPost:
		s.nextID++
		id := strconv.FormatInt(1772366400000+int64(s.nextID), 10)
		if activityID == "" {
			call.ActivityID = id
		}
		call.Status = http.StatusCreated
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusCreated, map[string]any{"id": id})
	case http.MethodPut:
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusOK, map[string]any{"id": activityID})
	case http.MethodDelete:
		s.calls = append(s.calls, call)
		w.WriteHeader(http.StatusOK)
	default:
		call.Status = http.StatusMethodNotAllowed
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusMethodNotAllowed, errBody("MethodNotAllowed", r.Method))
	}
}

// Member is a member of a conversation, as the member lookup answers for
// it (Microsoft's TeamsChannelAccount).
type Member struct {
	// ID is the Teams user id ("29:1…").
	ID string
	// Name is the display name.
	Name               string
	GivenName, Surname string
	Email              string
	UserPrincipalName  string
	// AADObjectID is the Microsoft Entra object id.
	AADObjectID string
	// TenantID is the member's tenant; default the server's. OmitTenant
	// leaves it out of the answer.
	TenantID   string
	OmitTenant bool
	// UserRole is "user" (the default), "guest" or "anonymous".
	UserRole string
	// ObjectIDKey is the JSON member the object id is served under:
	// "objectId" (the default, as Microsoft's REST reference shows) or
	// "aadObjectId" (the name the Bot Framework SDKs' ChannelAccount
	// uses).
	ObjectIDKey string
	// Extra is merged into the answer last, to serve answers Teams would
	// not give (for tests of the bot's checks).
	Extra map[string]any
}

// Member returns u as a conversation member with email as both its email
// address and its UPN.
func (u User) Member(email string) Member {
	return Member{ID: u.ID, Name: u.Name, AADObjectID: u.AADObjectID, Email: email, UserPrincipalName: email}
}

// AddMember registers m as a member of conversation (replacing a member
// with the same Teams user id). A team's members are not members of its
// channels here: register them in each conversation a lookup names.
func (s *Server) AddMember(conversation string, m Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.members[conversation]
	for i := range list {
		if list[i].ID == m.ID {
			list[i] = m
			return
		}
	}
	s.members[conversation] = append(list, m)
}

// RemoveMember removes the member with Teams user id id from
// conversation.
func (s *Server) RemoveMember(conversation, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.members[conversation]
	for i := range list {
		if list[i].ID == id {
			s.members[conversation] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

// Lookups returns the member lookups made, in order (failed ones too).
func (s *Server) Lookups() []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == http.MethodGet {
			out = append(out, c)
		}
	}
	return out
}

// member answers GET /v3/conversations/{conversation}/members/{member}.
// Like Teams it finds the member by Teams user id, Microsoft Entra object
// id or UPN (the last two without regard to case).
func (s *Server) member(w http.ResponseWriter, r *http.Request, rawConv, rawMember string) {
	conv, err1 := url.PathUnescape(rawConv)
	id, err2 := url.PathUnescape(rawMember)
	if err1 != nil || err2 != nil || conv == "" || id == "" {
		writeJSON(w, http.StatusBadRequest, errBody("BadArgument", "bad conversation or member id"))
		return
	}
	call := Call{Method: r.Method, Conversation: conv, MemberID: id, Authorization: r.Header.Get("Authorization")}
	s.mu.Lock()
	defer s.mu.Unlock()
	record := func(status int) {
		call.Status = status
		s.calls = append(s.calls, call)
	}
	if !s.tokens[strings.TrimPrefix(call.Authorization, "Bearer ")] {
		record(http.StatusUnauthorized)
		writeJSON(w, http.StatusUnauthorized, errBody("Unauthorized", "Authorization has been denied for this request."))
		return
	}
	if r.Method != http.MethodGet {
		record(http.StatusMethodNotAllowed)
		writeJSON(w, http.StatusMethodNotAllowed, errBody("MethodNotAllowed", r.Method))
		return
	}
	if q := s.script[http.MethodGet]; len(q) > 0 {
		a := q[0]
		s.script[http.MethodGet] = q[1:]
		record(a.Status)
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		writeJSON(w, a.Status, errBody(firstNonEmpty(a.Code, http.StatusText(a.Status)), "scripted failure"))
		return
	}
	list, ok := s.members[conv]
	if !ok {
		record(http.StatusNotFound)
		writeJSON(w, http.StatusNotFound, errBody("ConversationNotFound", "Conversation not found."))
		return
	}
	for _, m := range list {
		if m.ID == id || (m.AADObjectID != "" && strings.EqualFold(m.AADObjectID, id)) ||
			(m.UserPrincipalName != "" && strings.EqualFold(m.UserPrincipalName, id)) {
			record(http.StatusOK)
			writeJSON(w, http.StatusOK, s.memberJSON(m))
			return
		}
	}
	record(http.StatusNotFound)
	writeJSON(w, http.StatusNotFound, errBody("MemberNotFoundInConversation", "The member could not be found in the conversation."))
}

// memberJSON is m in the member lookup's wire format (s.mu held).
func (s *Server) memberJSON(m Member) map[string]any {
	out := map[string]any{"id": m.ID, "userRole": firstNonEmpty(m.UserRole, "user")}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("name", m.Name)
	set("givenName", m.GivenName)
	set("surname", m.Surname)
	set("email", m.Email)
	set("userPrincipalName", m.UserPrincipalName)
	set(firstNonEmpty(m.ObjectIDKey, "objectId"), m.AADObjectID)
	if !m.OmitTenant {
		set("tenantId", firstNonEmpty(m.TenantID, s.opts.TenantID))
	}
	maps.Copy(out, m.Extra)
	return out
}

// Calls returns every connector call, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// OK returns the successful connector calls of method, in order.
func (s *Server) OK(method string) []Call {
	return slices.DeleteFunc(s.Calls(), func(c Call) bool { return c.Method != method || !c.OK() })
}

// Posted returns the new activities posted (not replies), in order.
func (s *Server) Posted() []Call {
	return slices.DeleteFunc(s.OK(http.MethodPost), func(c Call) bool { return c.Card() == nil })
}

// Replies returns the text of the messages without a card posted (replies
// to clicks and notices to accounts), in order.
func (s *Server) Replies() []string {
	var out []string
	for _, c := range s.OK(http.MethodPost) {
		if c.Card() == nil {
			t, _ := c.Body["text"].(string)
			out = append(out, t)
		}
	}
	return out
}

func errBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// User is a Teams user as activities name them.
type User struct {
	// ID is the Teams user id ("29:1…").
	ID   string
	Name string
	// AADObjectID is the Microsoft Entra object id signoff links on.
	AADObjectID string
}

// NewUser returns a user whose ids derive from name.
func NewUser(name string) User {
	return User{ID: "29:1" + name + "-teams-id", Name: name, AADObjectID: "aad-" + name}
}

// Place is where an activity happens: a channel of a team, a group chat
// or a personal chat.
type Place struct {
	// Conversation is the conversation id (a channel's "19:…@thread.tacv2").
	Conversation string
	// Type is "channel", "groupChat" or "personal"; default "channel".
	Type string
	// TeamID and TeamName name the team of a channel.
	TeamID, TeamName string
	// ChannelName names the channel.
	ChannelName string
	// TenantID overrides the server's tenant.
	TenantID string
	// ServiceURL overrides the server's service URL.
	ServiceURL string
}

var activitySeq struct {
	sync.Mutex
	n int
}

func nextActivityID() string {
	activitySeq.Lock()
	defer activitySeq.Unlock()
	activitySeq.n++
	return fmt.Sprintf("f:%019d", 4000000000000000000+int64(activitySeq.n))
}

// base is what every activity from Teams carries.
func (s *Server) base(typ string, p Place, from User) map[string]any {
	tenant := firstNonEmpty(p.TenantID, s.opts.TenantID)
	kind := firstNonEmpty(p.Type, "channel")
	now := s.opts.Now().UTC()
	conv := map[string]any{"conversationType": kind, "tenantId": tenant, "id": p.Conversation}
	if kind != "personal" {
		conv["isGroup"] = true
	}
	cd := map[string]any{"tenant": map[string]any{"id": tenant}}
	if kind == "channel" {
		cd["channel"] = map[string]any{"id": p.Conversation, "name": p.ChannelName}
		if p.TeamID != "" {
			cd["team"] = map[string]any{"id": p.TeamID, "name": p.TeamName, "aadGroupId": "0f0a0b0c-0000-4000-8000-000000000001"}
		}
	}
	a := map[string]any{
		"type":           typ,
		"id":             nextActivityID(),
		"timestamp":      now.Format("2006-01-02T15:04:05.0000000Z"),
		"localTimestamp": now.In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05.000-07:00"),
		"serviceUrl":     firstNonEmpty(p.ServiceURL, s.ServiceURL()),
		"channelId":      "msteams",
		"from":           map[string]any{"id": from.ID, "name": from.Name, "aadObjectId": from.AADObjectID},
		"conversation":   conv,
		"recipient":      map[string]any{"id": "28:" + s.opts.AppID, "name": "signoff"},
		"entities":       []any{map[string]any{"locale": "en-US", "country": "US", "platform": "Web", "timezone": "Europe/Berlin", "type": "clientInfo"}},
		"channelData":    cd,
		"locale":         "en-US",
		"localTimezone":  "Europe/Berlin",
	}
	return a
}

// Click describes a press of a card's button.
type Click struct {
	Place Place
	User  User
	// ReplyToID is the card's activity id.
	ReplyToID string
	// Verb is the Action.Execute verb ("approve", "deny").
	Verb string
	// Data is the action's data (inputs merged in).
	Data map[string]any
}

// Invoke returns the adaptiveCard/action invoke Teams sends when an
// Action.Execute button is pressed.
func (s *Server) Invoke(c Click) map[string]any {
	a := s.base("invoke", c.Place, c.User)
	a["name"] = "adaptiveCard/action"
	if c.ReplyToID != "" {
		a["replyToId"] = c.ReplyToID
		conv := a["conversation"].(map[string]any)
		if conv["conversationType"] == "channel" {
			conv["id"] = c.Place.Conversation + ";messageid=" + c.ReplyToID
		}
		cd := a["channelData"].(map[string]any)
		cd["source"] = map[string]any{"name": "message"}
		cd["legacy"] = map[string]any{"replyToId": "1:1" + c.ReplyToID}
	}
	a["value"] = map[string]any{
		"action": map[string]any{
			"type":  "Action.Execute",
			"title": strings.ToUpper(c.Verb[:1]) + c.Verb[1:],
			"verb":  c.Verb,
			"data":  maps.Clone(c.Data),
		},
		"trigger": "manual",
	}
	return a
}

// SubmitMessage returns the message activity an Action.Submit sends (the
// card's fallback on clients without Universal Actions): value is the
// button's data.
func (s *Server) SubmitMessage(c Click) map[string]any {
	a := s.base("message", c.Place, c.User)
	a["text"] = ""
	a["textFormat"] = "plain"
	if c.ReplyToID != "" {
		a["replyToId"] = c.ReplyToID
	}
	a["value"] = maps.Clone(c.Data)
	return a
}

// BotAdded returns the conversationUpdate Teams sends when the bot is
// added to a team (in its General channel, p.Conversation) or a chat.
func (s *Server) BotAdded(p Place, by User) map[string]any {
	a := s.base("conversationUpdate", p, by)
	a["membersAdded"] = []any{map[string]any{"id": "28:" + s.opts.AppID}}
	cd := a["channelData"].(map[string]any)
	if p.TeamID != "" {
		cd["eventType"] = "teamMemberAdded"
		delete(cd, "channel")
	}
	return a
}

// ChannelCreated returns the conversationUpdate Teams sends when a channel
// is created in a team the bot is in.
func (s *Server) ChannelCreated(p Place, by User) map[string]any {
	a := s.base("conversationUpdate", Place{Conversation: p.TeamID, TeamID: p.TeamID, TeamName: p.TeamName, TenantID: p.TenantID, ServiceURL: p.ServiceURL}, by)
	cd := a["channelData"].(map[string]any)
	cd["eventType"] = "channelCreated"
	cd["channel"] = map[string]any{"id": p.Conversation, "name": p.ChannelName}
	return a
}

// Installed returns the installationUpdate Teams sends when the app is
// installed in p.
func (s *Server) Installed(p Place, by User) map[string]any {
	a := s.base("installationUpdate", p, by)
	a["action"] = "add"
	cd := a["channelData"].(map[string]any)
	cd["source"] = map[string]any{"name": "message"}
	return a
}
