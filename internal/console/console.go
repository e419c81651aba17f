package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/services"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// RebuildFunc rebuilds one projection's read model, calling progress after
// each commit with the events handled and the log's length when it
// began (see projection.Runner.Rebuild).
type RebuildFunc func(ctx context.Context, progress func(done, total int)) error

// Config configures a [Console]. Store is required; every other field
// has a default.
type Config struct {
	// Store is the event store the console shows. The console does not
	// close it.
	Store nova.Store
	// Services are the store's saga runs, checkpoints and query stores;
	// nil for a store that keeps events only (the sagas and projections
	// pages then say so).
	Services *services.Services
	// Backend names the store's backend ("sqlite", "postgres", ...), and
	// StoreLabel the store as pages show it: with its password already
	// hidden by the caller.
	Backend    string
	StoreLabel string
	// HideFunc hides secrets (a store URL's password) in error messages
	// before they are shown; nil shows them as they are.
	HideFunc func(string) string
	// Token, when set, is required of every request: as "Authorization:
	// Bearer TOKEN", or the session cookie the login form (or ?token=
	// once) sets. Empty: no authentication, for a loopback address only
	// (the caller enforces that; see [RequireToken]).
	Token string
	// ReadOnly hides the operator actions and rebuilds and refuses them
	// with 403.
	ReadOnly bool
	// Rebuilds are the projections the console can rebuild, by name. A
	// rebuild needs the projection's handlers, which only the program
	// that defines the projection has.
	Rebuilds map[string]RebuildFunc
	// Metrics, when set, is served at /metrics (behind the token).
	Metrics http.Handler
	// Logger logs failed requests and background errors; nil discards.
	Logger *slog.Logger
}

// Console is the web console's http.Handler. Close stops its background
// work and its live streams.
type Console struct {
	cfg    Config
	mux    *http.ServeMux
	pages  map[string]*template.Template
	log    *slog.Logger
	ctx    context.Context // ends at Close: live streams and rebuilds stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	head   *headWatch
	// session is the value of the session cookie: an HMAC of the token,
	// so that the cookie never holds the token itself.
	session string

	mu       sync.Mutex
	rebuilds map[string]*rebuildState
}

// New returns a console over cfg.Store and starts its one background
// goroutine, which follows the log's head for the overview. Close stops
// it.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil {
		return nil, errors.New("console: Config.Store is nil")
	}
	if cfg.HideFunc == nil {
		cfg.HideFunc = func(s string) string { return s }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{cfg: cfg, pages: pages, log: cfg.Logger, ctx: ctx, cancel: cancel,
		rebuilds: make(map[string]*rebuildState)}
	if cfg.Token != "" {
		m := hmac.New(sha256.New, []byte(cfg.Token))
		m.Write([]byte("nova console session"))
		c.session = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	c.head = newHeadWatch(cfg.Store)
	c.wg.Go(func() { c.head.run(ctx, c.log) })
	c.routes()
	return c, nil
}

// Close stops the head watcher, ends every live stream and stops running
// rebuilds, and waits for them.
func (c *Console) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// RequireToken reports whether addr, a listen address, needs a token: any
// address that is not a loopback one (an empty host listens on every
// interface).
func RequireToken(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true, err
	}
	if strings.EqualFold(host, "localhost") {
		return false, nil
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback(), nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)

	m.HandleFunc("GET /{$}", c.show("overview", c.overviewView))
	m.HandleFunc("GET /streams", c.show("streams", c.streamsView))
	m.HandleFunc("GET /streams/{id...}", c.show("stream", c.streamView))
	m.HandleFunc("GET /log", c.show("log", c.logView))
	m.HandleFunc("GET /sagas", c.show("sagas", c.sagasView))
	m.HandleFunc("GET /sagas/{saga}/{run...}", c.page(c.runPage))
	m.HandleFunc("POST /sagas/{saga}/{run...}", c.page(c.runAction))
	m.HandleFunc("GET /projections", c.show("projections", c.projectionsView))
	m.HandleFunc("POST /projections/{name}/rebuild", c.page(c.rebuildForm))

	m.HandleFunc("GET /api/overview", c.serve(c.overviewView))
	m.HandleFunc("GET /api/streams", c.serve(c.streamsView))
	m.HandleFunc("GET /api/streams/{id...}", c.serve(c.streamView))
	m.HandleFunc("GET /api/log", c.serve(c.logView))
	m.HandleFunc("GET /api/log/live", c.live)
	m.HandleFunc("GET /api/sagas", c.serve(c.sagasView))
	m.HandleFunc("GET /api/sagas/{saga}/{run...}", c.serve(c.runView))
	m.HandleFunc("POST /api/sagas/{saga}/{run...}", c.api(c.apiAction))
	m.HandleFunc("GET /api/projections", c.serve(c.projectionsView))
	m.HandleFunc("GET /api/projections/{name}/rebuild", c.api(c.apiRebuildStatus))
	m.HandleFunc("POST /api/projections/{name}/rebuild", c.api(c.apiRebuild))
	m.HandleFunc("GET /api/csrf", c.apiCSRF)
	m.HandleFunc("/api/", c.api(func(*http.Request) (any, error) { return nil, errNotFound("no such API route") }))
	if c.cfg.Metrics != nil {
		m.Handle("GET /metrics", c.cfg.Metrics)
	}
	c.mux = m
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP authenticates the request, sets the security headers and
// routes it.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make a form's Origin "null"
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
	if c.cfg.Token == "" && !loopbackHost(r.Host) {
		// Without a token the console listens on loopback only; a
		// request naming another host is a DNS-rebinding page's.
		http.Error(w, "console: this console answers requests for localhost only (start it with --token to serve other names)", http.StatusMisdirectedRequest)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login" {
		c.mux.ServeHTTP(w, r)
		return
	}
	if c.cfg.Token != "" && !c.authenticated(w, r) {
		return
	}
	c.mux.ServeHTTP(w, r)
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const (
	sessionCookie = "nova_session"
	csrfCookie    = "nova_csrf"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// bearer reports whether r carries the token in its Authorization header.
func (c *Console) bearer(r *http.Request) bool {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && equal(t, c.cfg.Token)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authenticated checks the token, from the Authorization header, the
// session cookie or, once, ?token= (which sets the cookie and redirects to
// the URL without it, so that the token leaves the address bar). It
// answers 401 itself when the request is not authenticated.
func (c *Console) authenticated(w http.ResponseWriter, r *http.Request) bool {
	if c.bearer(r) {
		return true
	}
	if ck, err := r.Cookie(sessionCookie); err == nil && equal(ck.Value, c.session) {
		return true
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" && r.Method == http.MethodGet && equal(t, c.cfg.Token) {
		c.setSession(w, r)
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="nova console"`)
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
		writeJSON(w, http.StatusUnauthorized, errorJSON{Error: "console: a token is required: send Authorization: Bearer TOKEN"})
		return false
	}
	c.render(w, r, http.StatusUnauthorized, "login", c.base(r, "Sign in", loginData{Next: r.URL.RequestURI()}))
	return false
}

func (c *Console) setSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: c.session, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// csrfToken returns the request's CSRF token, from its cookie, or sets a
// new cookie and returns its value.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	// A cookie set now is sent from the next request on: keep it for
	// this one's forms.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// checkCSRF guards a POST: a request authenticated by its Authorization
// header needs nothing more (a browser never sends one of its own accord);
// any other needs the CSRF cookie's value in the form field csrf or the
// X-CSRF-Token header (double submit), and an Origin, when it sends one,
// of this host.
func (c *Console) checkCSRF(r *http.Request) error {
	if c.cfg.Token != "" && c.bearer(r) {
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		if !sameOrigin(o, r.Host) {
			return errForbidden("console: cross-origin request refused (Origin " + o + ")")
		}
	}
	ck, err := r.Cookie(csrfCookie)
	if err != nil || ck.Value == "" {
		return errForbidden("console: missing CSRF cookie: load the page (or GET /api/csrf) first")
	}
	sent := r.Header.Get(csrfHeader)
	if sent == "" {
		sent = r.PostFormValue(csrfField)
	}
	if !equal(sent, ck.Value) {
		return errForbidden("console: CSRF token missing or wrong: reload the page and try again")
	}
	return nil
}

func sameOrigin(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(rest, host)
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errForbidden(msg string) error { return &httpError{http.StatusForbidden, msg} }
func errNotFound(msg string) error  { return &httpError{http.StatusNotFound, msg} }
func errConflict(msg string) error  { return &httpError{http.StatusConflict, msg} }

// readOnly refuses an action on a read-only console.
func (c *Console) readOnly() error {
	if c.cfg.ReadOnly {
		return errForbidden("console: read-only: actions are turned off (started with --read-only)")
	}
	return nil
}

// status returns the HTTP status of err and its message, secrets hidden.
func (c *Console) status(err error) (int, string) {
	msg := c.cfg.HideFunc(err.Error())
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, msg
	case errors.Is(err, errBadRequest), errors.Is(err, nova.ErrInvalid):
		return http.StatusBadRequest, msg
	case errors.Is(err, nova.ErrNotFound):
		return http.StatusNotFound, msg
	case errors.Is(err, nova.ErrConcurrency):
		return http.StatusConflict, msg
	case errors.Is(err, context.Canceled):
		return 499, msg
	}
	return http.StatusInternalServerError, msg
}

// headWatch follows the global log to know its length and head, and the
// positions of its last events, without reading the log on each request.
type headWatch struct {
	store nova.Store
	mu    sync.Mutex
	count int64
	head  nova.Position
	// caught is set once the watch has read the log to its head.
	caught bool
	// recent are the positions of the last events, oldest first: the
	// log page's latest page starts after recent[len-limit-1].
	recent []nova.Position
	err    string
}

const recentKept = MaxLimit + 1

func newHeadWatch(s nova.Store) *headWatch { return &headWatch{store: s} }

// run follows the log until ctx ends, starting over after an error.
func (h *headWatch) run(ctx context.Context, log *slog.Logger) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := h.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		h.mu.Lock()
		h.err = err.Error()
		h.mu.Unlock()
		log.Warn("console: following the log", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// follow counts the log from where it stands: first ReadAll to the head
// (which tells when it has caught up), then Subscribe.
func (h *headWatch) follow(ctx context.Context) error {
	h.mu.Lock()
	from := h.head
	h.mu.Unlock()
	if !h.caughtUp() {
		for {
			n := 0
			for e, err := range h.store.ReadAll(ctx, nova.ReadAllOptions{From: from, Limit: 10_000}) {
				if err != nil {
					return err
				}
				h.add(e.Position)
				from = e.Position
				n++
			}
			if n < 10_000 {
				break
			}
		}
		h.mu.Lock()
		h.caught, h.err = true, ""
		h.mu.Unlock()
	}
	for e, err := range h.store.Subscribe(ctx, nova.SubscribeOptions{From: from}) {
		if err != nil {
			return err
		}
		h.add(e.Position)
	}
	return ctx.Err()
}

func (h *headWatch) caughtUp() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.caught
}

func (h *headWatch) add(p nova.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count++
	h.head = p
	if len(h.recent) == recentKept {
		copy(h.recent, h.recent[1:])
		h.recent = h.recent[:recentKept-1]
	}
	h.recent = append(h.recent, p)
}

// headInfo is what the watch knows.
type headInfo struct {
	Count  int64
	Head   nova.Position
	Caught bool
	Err    string
}

func (h *headWatch) info() headInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return headInfo{Count: h.count, Head: h.head, Caught: h.caught, Err: h.err}
}

// before returns the position after which the last n events start.
func (h *headWatch) before(n int) nova.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recent) <= n {
		return nova.Start
	}
	return h.recent[len(h.recent)-n-1]
}
