package console

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nova-go/nova/saga"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"overview", "streams", "stream", "log", "sagas", "run", "projections", "login", "error"}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000")
	},
	"timep": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000")
	},
	"path":     url.PathEscape,
	"runpath":  runPath,
	"statuses": func() []saga.Status { return Statuses },
	"short": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	},
	"trim": func(s string) string { return strings.TrimPrefix(s, "saga.") },
	"dash": func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	},
}

// runPath is a run's page: /sagas/SAGA/RUN, each part escaped (a run ID
// may hold '/').
func runPath(sagaName, run string) string {
	return "/sagas/" + url.PathEscape(sagaName) + "/" + url.PathEscape(run)
}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// base is what every page gets: the layout's fields and the page's own
// data in Data.
type base struct {
	Title    string
	Nav      string
	Store    string
	Backend  string
	ReadOnly bool
	CSRF     string
	Auth     bool
	Data     any
}

func (c *Console) base(r *http.Request, title string, data any) *base {
	nav, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return &base{Title: title, Nav: nav, Store: c.cfg.StoreLabel, Backend: c.cfg.Backend, ReadOnly: c.cfg.ReadOnly,
		Auth: c.cfg.Token != "", Data: data}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, b *base) {
	b.CSRF = c.csrfToken(w, r)
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, b); err != nil {
		c.log.Error("console: render", "page", page, "err", err)
		http.Error(w, "console: render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageFunc renders a page, or returns an error shown on the error page
// with its status.
type pageFunc func(w http.ResponseWriter, r *http.Request) error

func (c *Console) page(f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			status, msg := c.status(err)
			if status >= 500 {
				c.log.Error("console: page", "path", r.URL.Path, "err", msg)
			}
			c.render(w, r, status, "error", c.base(r, http.StatusText(status), errorData{Status: status, Message: msg}))
		}
	}
}

type errorData struct {
	Status  int
	Message string
}

type errorJSON struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiFunc returns what an API route answers with 200, or an error.
type apiFunc func(r *http.Request) (any, error)

func (c *Console) api(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			status, msg := c.status(err)
			if status >= 500 {
				c.log.Error("console: api", "path", r.URL.Path, "err", msg)
			}
			writeJSON(w, status, errorJSON{Error: msg})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// Pages.

// A view is what a page and its API route both show: it checks r's query,
// reads the data, and names the page's title.
type view func(r *http.Request) (data any, title string, err error)

// show renders the data of v in the page template tmpl.
func (c *Console) show(tmpl string, v view) http.HandlerFunc {
	return c.page(func(w http.ResponseWriter, r *http.Request) error {
		data, title, err := v(r)
		if err != nil {
			return err
		}
		c.render(w, r, http.StatusOK, tmpl, c.base(r, title, data))
		return nil
	})
}

// serve answers with the data of v as JSON.
func (c *Console) serve(v view) http.HandlerFunc {
	return c.api(func(r *http.Request) (any, error) {
		data, _, err := v(r)
		return data, err
	})
}

func (c *Console) overviewView(r *http.Request) (any, string, error) {
	if err := known(r.URL.Query()); err != nil {
		return nil, "", err
	}
	o, err := c.overview(r.Context())
	return o, "Overview", err
}

func (c *Console) streamsView(r *http.Request) (any, string, error) {
	q, err := ParseStreamsQuery(r.URL.Query())
	if err != nil {
		return nil, "", err
	}
	p, err := c.streams(r.Context(), q)
	return p, "Streams", err
}

func (c *Console) streamView(r *http.Request) (any, string, error) {
	q, err := ParseEventsQuery(r.URL.Query())
	if err != nil {
		return nil, "", err
	}
	p, err := c.stream(r.Context(), r.PathValue("id"), q)
	return p, "Stream " + p.Stream, err
}

func (c *Console) logView(r *http.Request) (any, string, error) {
	q, err := ParseLogQuery(r.URL.Query())
	if err != nil {
		return nil, "", err
	}
	p, err := c.logEvents(r.Context(), q)
	return p, "Log", err
}

func (c *Console) sagasView(r *http.Request) (any, string, error) {
	q, err := ParseSagasQuery(r.URL.Query())
	if err != nil {
		return nil, "", err
	}
	p, err := c.sagas(r.Context(), q)
	return p, "Sagas", err
}

func (c *Console) projectionsView(r *http.Request) (any, string, error) {
	if err := known(r.URL.Query()); err != nil {
		return nil, "", err
	}
	p, err := c.projections(r.Context())
	return p, "Projections", err
}

// runView is the run's API route; its page (runPage) also takes ?done=.
func (c *Console) runView(r *http.Request) (any, string, error) {
	if err := known(r.URL.Query()); err != nil {
		return nil, "", err
	}
	p, err := c.run(r.Context(), r.PathValue("saga"), r.PathValue("run"))
	return p, "", err
}

// runData is the run page: the run, and the message of the action just
// taken (?done=).
type runData struct {
	RunPage
	Done string
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := known(q, "done"); err != nil {
		return err
	}
	done, err := text(q, "done", maxText)
	if err != nil {
		return err
	}
	p, err := c.run(r.Context(), r.PathValue("saga"), r.PathValue("run"))
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "run", c.base(r, "Run "+p.Run.Saga+"/"+p.Run.Run, runData{RunPage: p, Done: done}))
	return nil
}

// maxForm bounds a form's or a JSON body's size.
const maxForm = 16 << 10

func (c *Console) runAction(w http.ResponseWriter, r *http.Request) error {
	if err := c.readOnly(); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return badf("form: %v", err)
	}
	if err := c.checkCSRF(r); err != nil {
		return err
	}
	a := Action{Action: r.PostForm.Get("action"), Reason: r.PostForm.Get("reason"), Actor: r.PostForm.Get("actor")}
	name, id := r.PathValue("saga"), r.PathValue("run")
	row, err := c.act(r.Context(), name, id, a)
	if err != nil {
		return err
	}
	msg := a.Action + " by " + strings.TrimSpace(a.Actor) + ": now " + row.Status
	if row.DueAt != nil {
		msg += ", due: a worker takes it from here"
	}
	http.Redirect(w, r, runPath(name, id)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

func (c *Console) rebuildForm(w http.ResponseWriter, r *http.Request) error {
	if err := c.readOnly(); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return badf("form: %v", err)
	}
	if err := c.checkCSRF(r); err != nil {
		return err
	}
	if _, err := c.startRebuild(r.PathValue("name")); err != nil {
		return err
	}
	http.Redirect(w, r, "/projections", http.StatusSeeOther)
	return nil
}

type loginData struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", c.base(r, "Sign in", loginData{Next: safeNext(r.URL.Query().Get("next"))}))
}

// login checks the token of the login form and sets the session cookie.
// The form needs no CSRF token: it grants nothing without the token.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "login", c.base(r, "Sign in", loginData{Error: "form: " + err.Error()}))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if c.cfg.Token == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !equal(r.PostForm.Get("token"), c.cfg.Token) {
		c.render(w, r, http.StatusUnauthorized, "login", c.base(r, "Sign in", loginData{Next: next, Error: "wrong token"}))
		return
	}
	c.setSession(w, r)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a redirect on this site: a path, not a URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// API.

// apiAction takes {"action", "reason", "actor"} as JSON.
func (c *Console) apiAction(r *http.Request) (any, error) {
	if err := c.readOnly(); err != nil {
		return nil, err
	}
	if err := c.checkCSRF(r); err != nil {
		return nil, err
	}
	a, err := decodeAction(r)
	if err != nil {
		return nil, err
	}
	return c.act(r.Context(), r.PathValue("saga"), r.PathValue("run"), a)
}

// decodeAction reads an action from a JSON body: one object, known
// fields only, at most maxForm bytes.
func decodeAction(r *http.Request) (Action, error) {
	var a Action
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return a, badf("Content-Type %q: send application/json", ct)
		}
	}
	return DecodeAction(io.LimitReader(r.Body, maxForm+1))
}

// DecodeAction reads an action from a JSON body: one object with known
// fields only, at most 16 KiB.
func DecodeAction(body io.Reader) (Action, error) {
	var a Action
	b, err := io.ReadAll(io.LimitReader(body, maxForm+1))
	if err != nil {
		return a, badf("body: %v", err)
	}
	if len(b) > maxForm {
		return a, badf("body: longer than %d bytes", maxForm)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, badf("body: want a JSON object {\"action\", \"reason\", \"actor\"}: %v", err)
	}
	if dec.More() {
		return a, badf("body: one JSON object only")
	}
	if err := a.Check(); err != nil {
		return a, err
	}
	return a, nil
}

func (c *Console) apiRebuildStatus(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if s := c.rebuildStatus(name); s != nil {
		return s, nil
	}
	if _, ok := c.cfg.Rebuilds[name]; !ok {
		return nil, errNotFound("console: no rebuild of " + name)
	}
	return RebuildStatus{Projection: name}, nil
}

func (c *Console) apiRebuild(r *http.Request) (any, error) {
	if err := c.readOnly(); err != nil {
		return nil, err
	}
	if err := c.checkCSRF(r); err != nil {
		return nil, err
	}
	return c.startRebuild(r.PathValue("name"))
}

// apiCSRF returns the CSRF token (and sets its cookie), for scripts that
// post without a bearer token.
func (c *Console) apiCSRF(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		CSRF   string `json:"csrf"`
		Header string `json:"header"`
	}{c.csrfToken(w, r), csrfHeader})
}
