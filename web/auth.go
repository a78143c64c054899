package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sessions. A login sets a cookie holding its issue time and an HMAC of it
// under a key derived from the admin token, so every node started with the
// same token accepts it (no session table, nothing to share) and changing
// the token logs everyone out. The CSRF token of a session is another HMAC
// of the same cookie value: forms carry it, and a request from another site
// cannot know it (nor, SameSite=Strict, send the cookie at all).

const (
	cookieName = "mpmeter_console"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

type sessions struct {
	key    []byte // HMAC key derived from the admin token
	digest [32]byte
	now    func() time.Time
	ttl    time.Duration
}

func newSessions(token string, now func() time.Time, ttl time.Duration) sessions {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("mpmeter console session v1"))
	return sessions{key: m.Sum(nil), digest: sha256.Sum256([]byte(token)), now: now, ttl: ttl}
}

func (s sessions) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenOK compares a login attempt with the admin token in constant time
// (digests, so neither length nor prefix leaks).
func (s sessions) tokenOK(got string) bool {
	d := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(d[:], s.digest[:]) == 1
}

// issue is a new session's cookie value: issue time and its MAC.
func (s sessions) issue() string {
	t := strconv.FormatInt(s.now().Unix(), 10)
	return t + "." + s.mac("session", t)
}

// valid reports whether v is a cookie value issue gave, not yet expired.
func (s sessions) valid(v string) bool {
	t, sig, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac("session", t))) {
		return false
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return false
	}
	age := s.now().Sub(time.Unix(sec, 0))
	return age >= -time.Minute && age < s.ttl
}

func (s sessions) csrf(session string) string { return s.mac("csrf", session) }

type sessionKey struct{}

// csrfFrom is the CSRF token of the request's session, for forms.
func csrfFrom(ctx context.Context) string {
	v, _ := ctx.Value(sessionKey{}).(string)
	return v
}

// authed serves h only with a valid session (others go to the login page)
// and, for anything but GET, only with the session's CSRF token.
func (c *Console) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		if err != nil || !c.auth.valid(ck.Value) {
			if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" {
				http.Redirect(w, r, Prefix+"login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("HX-Redirect", Prefix+"login")
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		token := c.auth.csrf(ck.Value)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			got := r.Header.Get(csrfHeader)
			if got == "" {
				got = r.PostFormValue(csrfField)
			}
			if !hmac.Equal([]byte(got), []byte(token)) {
				http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, token)
		ctx = context.WithValue(ctx, remoteAddrKey{}, r.RemoteAddr)
		h(w, r.WithContext(ctx))
	}
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", pageData{Title: "Log in", Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !c.auth.tokenOK(r.PostFormValue("token")) {
		c.cfg.Logger.Warn("console: failed login", "remote", r.RemoteAddr)
		c.render(w, r, http.StatusUnauthorized, "login", pageData{Title: "Log in", Error: "That is not the admin token.",
			Data: map[string]string{"Next": safeNext(r.PostFormValue("next"))}})
		return
	}
	c.setCookie(w, r, c.auth.issue(), int(c.cfg.SessionTTL.Seconds()))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	c.setCookie(w, r, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix
	}
	return next
}
