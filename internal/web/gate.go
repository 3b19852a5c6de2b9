package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// CookieName is the cookie a browser holds once it has shown the token,
// followed by "_" and the port it was served on: browsers share cookies
// between the ports of a host, so each dashboard (one per daemon or per
// `prescient dashboard` run) keeps its own, as Jupyter does.
const CookieName = "prescient_dashboard"

// cookieName is the gate's cookie for a request to host (host:port).
func cookieName(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		return CookieName + "_" + host[i+1:]
	}
	return CookieName
}

// Gate lets a request through when it shows the token: as
// "Authorization: Bearer TOKEN" (API clients), or, for reads (GET and
// HEAD) only, as the cookie a browser got by opening a URL with
// ?token=TOKEN once (as Jupyter does). Everything else answers 401. The
// cookie holds a hash of the token, never the token; it is HttpOnly and
// SameSite=Strict, so another site's page cannot use it, and it is only
// good for reads, so a forged form cannot submit or cancel.
//
// A Gate is immutable and safe for concurrent use.
type Gate struct {
	token  []byte
	cookie []byte // hex of sha256("prescient-dashboard\x00" + token)
}

// NewGate returns a gate for token.
func NewGate(token []byte) *Gate {
	sum := sha256.Sum256(append([]byte("prescient-dashboard\x00"), token...))
	c := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(c, sum[:])
	return &Gate{token: append([]byte(nil), token...), cookie: c}
}

// NewToken returns a random token of 32 hex characters (128 bits).
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (g *Gate) bearer(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), g.token) == 1
}

func (g *Gate) cookieOK(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	c, err := r.Cookie(cookieName(r.Host))
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), g.cookie) == 1
}

// Wrap returns h behind the gate. A GET with the right ?token= gets the
// cookie and is redirected to the same URL without the token.
func (g *Gate) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Has("token") {
			if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), g.token) != 1 {
				Unauthorized(w)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName(r.Host), Value: string(g.cookie), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			u := *r.URL
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		if !g.bearer(r) && !g.cookieOK(r) {
			Unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Unauthorized answers 401 in the API's error form.
func Unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="prescient"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": "unauthorized",
		"error": "missing or wrong bearer token (a browser opens the dashboard's URL with ?token= once)"})
}
