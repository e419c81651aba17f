package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/console"
	"github.com/nova-go/nova/internal/services"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// fixture is a console over a SQLite store holding streams, a completed
// and a stuck saga run, and a projection's checkpoint.
type fixture struct {
	store   nova.Store
	svc     *services.Services
	console *console.Console
	srv     *httptest.Server
	// rebuild is closed to let the fake rebuild finish.
	rebuild chan struct{}
}

type order struct{ ID string }

func setup(t *testing.T, mod func(*console.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	s, err := novasqlite.Open(ctx, novasqlite.Config{Path: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	svc, err := services.For(s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, stream := range []string{fmt.Sprintf("order-%d", i), fmt.Sprintf("user-%d", i)} {
			if _, err := s.Append(ctx, stream, nova.Any, nova.EventData{ID: nova.NewEventID(), Type: "Created",
				Data: []byte(`{"n":` + fmt.Sprint(i) + `}`), Metadata: nova.Metadata{CorrelationID: "c-" + stream}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Append(ctx, "order", nova.Any, nova.EventData{ID: nova.NewEventID(), Type: "Bare", Data: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	coord, err := saga.NewCoordinator(saga.Config{Runs: svc.Runs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	def, err := saga.Define("fulfil",
		saga.Step[order]{Name: "reserve",
			Execute: func(context.Context, saga.StepContext, *order) error { return nil },
			Compensate: func(context.Context, saga.StepContext, *order) error {
				return errors.New("warehouse unreachable")
			},
			CompensateRetry: saga.RetryPolicy{MaxAttempts: 1}},
		saga.Step[order]{Name: "charge", Execute: func(_ context.Context, _ saga.StepContext, o *order) error {
			if o.ID == "bad" {
				return saga.Permanent(errors.New("declined"))
			}
			return nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saga.Run(ctx, coord, def, "ok-1", order{ID: "ok"}); err != nil {
		t.Fatal(err)
	}
	if x, _ := saga.Run(ctx, coord, def, "stuck/1", order{ID: "bad"}); x.Status != saga.Stuck {
		t.Fatalf("run stuck/1 is %s, want stuck", x.Status)
	}
	if err := svc.Checkpoints.Save(ctx, "orders-view", nova.Position{Commit: 3}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, svc: &svc, rebuild: make(chan struct{})}
	cfg := console.Config{Store: s, Services: &svc, Backend: "sqlite", StoreLabel: "postgres://bob:xxxxx@db/x",
		HideFunc: func(m string) string { return strings.ReplaceAll(m, "s3cret", "xxxxx") },
		Rebuilds: map[string]console.RebuildFunc{"orders-view": func(ctx context.Context, progress func(int, int)) error {
			progress(5, 10)
			select {
			case <-f.rebuild:
			case <-ctx.Done():
				return ctx.Err()
			}
			progress(10, 10)
			return nil
		}},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "nova_up 1\n") }),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.console = c
	f.srv = httptest.NewServer(c)
	t.Cleanup(func() {
		c.Close()
		f.srv.Close()
	})
	return f
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) get(t *testing.T, c *http.Client, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := f.get(t, client(t), path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c := client(t)
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/", []string{"Overview", "postgres://bob:xxxxx@db/x", "stuck", "orders-view"}},
		{"/streams", []string{"order-0", "user-4", "saga-fulfil-ok-1"}},
		{"/streams?prefix=user-", []string{"user-0", "user-4"}},
		{"/streams/order-3", []string{"Created", "&#34;n&#34;: 3", "c-order-3"}},
		{"/streams/order", []string{"not JSON"}},
		{"/log?after=0", []string{"order-0", "user-4"}},
		{"/log", []string{"Follow live"}},
		{"/sagas", []string{"ok-1", "stuck/1", "completed", `href="/sagas/fulfil/stuck%2F1"`}},
		{"/sagas?status=stuck", []string{"stuck/1"}},
		{"/sagas/fulfil/ok-1", []string{"run_completed", "Timeline"}},
		{"/sagas/fulfil/stuck%2F1", []string{"warehouse unreachable", "action-retry", `name="csrf"`}},
		{"/projections", []string{"orders-view", "rebuild-orders-view"}},
		{"/metrics", []string{"nova_up 1"}},
		{"/static/console.js", []string{"EventSource"}},
		{"/static/console.css", []string{"--accent"}},
	} {
		code, body := f.get(t, c, tt.path)
		if code != 200 {
			t.Errorf("GET %s: %d, want 200: %s", tt.path, code, body)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", tt.path, w)
			}
		}
	}
	// A prefix keeps other streams out.
	if _, body := f.get(t, c, "/streams?prefix=user-"); strings.Contains(body, "order-0") {
		t.Error("/streams?prefix=user- lists order-0")
	}
	if _, body := f.get(t, c, "/sagas?status=stuck"); strings.Contains(body, "ok-1") {
		t.Error("/sagas?status=stuck lists the completed run")
	}
	if _, body := f.get(t, c, "/"); strings.Contains(body, "s3cret") {
		t.Error("the overview shows a password")
	}
}

func TestAPI(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)

	var o console.Overview
	deadline := time.Now().Add(5 * time.Second)
	for {
		o = console.Overview{}
		f.getJSON(t, "/api/overview", &o)
		if !o.Counting && o.Events > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var all int64
	for _, err := range f.store.ReadAll(context.Background(), nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if o.Events != all || o.Sagas[saga.Stuck] != 1 || o.Sagas[saga.Completed] != 1 || o.Outbox == nil || o.Backend != "sqlite" {
		t.Errorf("overview %+v, want %d events, 1 stuck, 1 completed, an outbox count", o, all)
	}

	// Streams page by page, by key: every stream once, in order.
	var names []string
	next := "limit=3"
	for next != "" {
		var p struct {
			Streams []console.StreamRow
			Next    string
		}
		f.getJSON(t, "/api/streams?"+next, &p)
		if len(p.Streams) > 3 {
			t.Fatalf("page of %d streams, limit 3", len(p.Streams))
		}
		for _, s := range p.Streams {
			names = append(names, s.Stream)
		}
		next = p.Next
	}
	var want []string
	for info, err := range f.store.Streams(context.Background(), nova.StreamsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, info.Stream)
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("paged streams %v, want %v", names, want)
	}

	// A prefix that is itself a stream lists it first.
	var sp console.StreamsPage
	f.getJSON(t, "/api/streams?prefix=order", &sp)
	if len(sp.Streams) != 6 || sp.Streams[0].Stream != "order" {
		t.Errorf("prefix order: %+v, want order and order-0..4", sp.Streams)
	}

	// A stream page by page, backwards.
	var ev console.StreamPage
	f.getJSON(t, "/api/streams/saga-fulfil-stuck%2F1?dir=backwards&limit=2", &ev)
	if len(ev.Events) != 2 || ev.Events[0].Version <= ev.Events[1].Version || ev.Next == "" {
		t.Errorf("backwards page %+v", ev)
	}
	ev = console.StreamPage{}
	f.getJSON(t, "/api/streams/order", &ev)
	if len(ev.Events) != 1 || ev.Events[0].DataBase64 == nil || ev.Events[0].Data != nil {
		t.Errorf("non-JSON data: %+v", ev.Events)
	}

	// The log from the start, then after its last position: the rest.
	var lp console.LogPage
	f.getJSON(t, "/api/log?after=0&limit=4", &lp)
	if len(lp.Events) != 4 || lp.Events[0].Position != "1" {
		t.Fatalf("log page %+v", lp)
	}
	next1 := lp.Next
	lp = console.LogPage{}
	f.getJSON(t, "/api/log?"+next1, &lp)
	if len(lp.Events) == 0 || lp.Events[0].Position != "5" {
		t.Errorf("second log page starts at %+v, want 5", lp.Events)
	}
	lp = console.LogPage{}
	f.getJSON(t, "/api/log?limit=3", &lp) // the latest page
	if len(lp.Events) != 3 || lp.Events[2].Position != fmt.Sprint(all) {
		t.Errorf("latest page %+v, want the last 3 events up to %d", lp.Events, all)
	}

	var sg console.SagasPage
	f.getJSON(t, "/api/sagas?saga=fulfil&limit=1", &sg)
	if len(sg.Runs) != 1 || sg.Next == "" || sg.Counts[saga.Stuck] != 1 {
		t.Fatalf("sagas page %+v", sg)
	}
	next2 := sg.Next
	sg = console.SagasPage{}
	f.getJSON(t, "/api/sagas?"+next2, &sg)
	if len(sg.Runs) != 1 || sg.Runs[0].Run != "stuck/1" || sg.Next != "" {
		t.Errorf("second sagas page %+v", sg)
	}

	var rp console.RunPage
	f.getJSON(t, "/api/sagas/fulfil/stuck%2F1", &rp)
	if rp.Run.Status != "stuck" || len(rp.Timeline) < 3 || rp.Timeline[0].Data == nil || len(rp.Run.Actions) != 3 {
		t.Errorf("run page %+v", rp)
	}

	var pp console.ProjectionsPage
	f.getJSON(t, "/api/projections", &pp)
	if len(pp.Projections) != 1 || pp.Projections[0].Checkpoint != "3" || pp.Projections[0].LagEvents != int(all)-3 || !pp.Projections[0].Rebuildable {
		t.Errorf("projections %+v, want orders-view at 3, lag %d", pp.Projections, all-3)
	}

	if code, body := f.get(t, client(t), "/api/nothing"); code != 404 || !strings.Contains(body, "error") {
		t.Errorf("unknown API route: %d %s", code, body)
	}
	if code, _ := f.get(t, client(t), "/api/sagas/fulfil/nope"); code != 404 {
		t.Errorf("unknown run: %d, want 404", code)
	}
	if code, _ := f.get(t, client(t), "/streams/nope"); code != 404 {
		t.Errorf("unknown stream: %d, want 404", code)
	}
}

func TestBadParams(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c := client(t)
	for _, path := range []string{
		"/streams?limit=0", "/streams?limit=1001", "/streams?limit=x", "/streams?limit=1&limit=2", "/streams?bogus=1",
		"/streams?prefix=a&after=b", "/streams?prefix=%00", "/streams/order-1?from=-1", "/streams/order-1?dir=up",
		"/log?after=x", "/log?after=1/", "/sagas?status=done", "/sagas?after_saga=a", "/sagas/fulfil/ok-1?x=1",
		"/api/streams?limit=-5", "/api/log?after=%2B1", "/api/sagas?status=STUCK", "/api/overview?x=1",
		"/api/log/live", "/api/log/live?after=zz", "/projections?page=2",
	} {
		code, body := f.get(t, c, path)
		if code != 400 {
			t.Errorf("GET %s: %d, want 400: %s", path, code, body)
			continue
		}
		if strings.HasPrefix(path, "/api/") && !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: body %s has no error field", path, body)
		}
	}
}

func TestTokenRequired(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *console.Config) { c.Token = "t0ken" })
	c := client(t)
	for _, path := range []string{"/", "/streams", "/api/overview", "/api/log/live?after=0", "/metrics", "/sagas/fulfil/ok-1"} {
		if code, _ := f.get(t, c, path); code != 401 {
			t.Errorf("GET %s without the token: %d, want 401", path, code)
		}
	}
	if code, _ := f.get(t, c, "/api/overview", "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("a wrong bearer token: %d, want 401", code)
	}
	if code, _ := f.get(t, c, "/api/overview", "Authorization", "Bearer t0ken"); code != 200 {
		t.Errorf("the bearer token: %d, want 200", code)
	}
	if code, _ := f.get(t, c, "/static/console.css"); code != 200 {
		t.Errorf("static files need no token: %d", code)
	}
	// ?token= once sets a cookie and redirects to the URL without it.
	req, _ := http.NewRequest("GET", f.srv.URL+"/streams?prefix=user-&token=t0ken", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || strings.Contains(loc, "token") || !strings.Contains(loc, "prefix=user-") {
		t.Fatalf("?token=: %d to %q", resp.StatusCode, loc)
	}
	for _, ck := range resp.Cookies() {
		if strings.Contains(ck.Value, "t0ken") {
			t.Errorf("cookie %s holds the token", ck.Name)
		}
	}
	if code, _ := f.get(t, c, "/streams"); code != 200 {
		t.Errorf("with the session cookie: %d, want 200", code)
	}
	// The login form.
	c2 := client(t)
	resp, err = c2.PostForm(f.srv.URL+"/login", url.Values{"token": {"nope"}, "next": {"/sagas"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("login with a wrong token: %d, want 401", resp.StatusCode)
	}
	resp, err = c2.PostForm(f.srv.URL+"/login", url.Values{"token": {"t0ken"}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Errorf("login: %d to %q, want 303 to / (never off-site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := f.get(t, c2, "/sagas"); code != 200 {
		t.Errorf("after login: %d, want 200", code)
	}
}

func TestNoTokenAnswersLoopbackNamesOnly(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	code, _ := f.get(t, client(t), "/", "Host", "evil.example:8080")
	if code != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example without a token: %d, want 421", code)
	}
	if code, _ := f.get(t, client(t), "/", "Host", "localhost:8080"); code != 200 {
		t.Errorf("Host localhost: %d, want 200", code)
	}
}

func TestRequireToken(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": false, "localhost:80": false, "[::1]:8080": false, "127.1.2.3:9": false,
		"0.0.0.0:8080": true, ":8080": true, "[::]:8080": true, "192.168.1.2:80": true, "example.com:80": true,
	} {
		got, err := console.RequireToken(addr)
		if err != nil || got != want {
			t.Errorf("RequireToken(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := console.RequireToken("nope"); err == nil {
		t.Error("RequireToken(nope): no error")
	}
}

// csrf loads a page with c and returns the CSRF token its form holds.
func (f *fixture) csrf(t *testing.T, c *http.Client) string {
	t.Helper()
	var v struct{ CSRF string }
	code, body := f.get(t, c, "/api/csrf")
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || v.CSRF == "" {
		t.Fatalf("/api/csrf: %d %s", code, body)
	}
	return v.CSRF
}

func (f *fixture) post(t *testing.T, c *http.Client, path string, form url.Values, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (f *fixture) status(t *testing.T, run string) saga.Status {
	info, err := f.svc.Runs.Get(context.Background(), "fulfil", run)
	if err != nil {
		t.Fatal(err)
	}
	return info.Status
}

func TestActionNeedsCSRF(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c := client(t)
	path := "/sagas/fulfil/stuck%2F1"
	form := url.Values{"action": {"retry"}, "actor": {"alice"}, "reason": {"warehouse back"}}
	if code, _, _ := f.post(t, c, path, form); code != 403 {
		t.Errorf("no CSRF cookie: %d, want 403", code)
	}
	tok := f.csrf(t, c)
	if code, _, _ := f.post(t, c, path, form); code != 403 {
		t.Errorf("no CSRF field: %d, want 403", code)
	}
	bad := url.Values{"csrf": {"wrong"}, "action": {"retry"}, "actor": {"alice"}}
	if code, _, _ := f.post(t, c, path, bad); code != 403 {
		t.Errorf("wrong CSRF field: %d, want 403", code)
	}
	form.Set("csrf", tok)
	if code, _, _ := f.post(t, c, path, form, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("cross-origin: %d, want 403", code)
	}
	// Another client (another browser) has another cookie.
	if code, _, _ := f.post(t, client(t), path, form); code != 403 {
		t.Errorf("a token without its cookie: %d, want 403", code)
	}
	if st := f.status(t, "stuck/1"); st != saga.Stuck {
		t.Fatalf("a refused action changed the run: %s", st)
	}
	// Bad input with a good token: 400, nothing done.
	for _, bad := range []url.Values{
		{"action": {"explode"}, "actor": {"alice"}},
		{"action": {"skip"}, "actor": {"alice"}},
		{"action": {"retry"}},
		{"action": {"retry"}, "actor": {"al\x00ice"}},
	} {
		bad.Set("csrf", tok)
		if code, _, body := f.post(t, c, path, bad); code != 400 {
			t.Errorf("action %v: %d, want 400: %s", bad, code, body)
		}
	}
	if st := f.status(t, "stuck/1"); st != saga.Stuck {
		t.Fatalf("a bad action changed the run: %s", st)
	}
	code, loc, _ := f.post(t, c, path, form, "Origin", f.srv.URL)
	if code != 303 || !strings.HasPrefix(loc, path+"?done=") {
		t.Fatalf("retry: %d to %q, want 303 to the run", code, loc)
	}
	if st := f.status(t, "stuck/1"); st != saga.Compensating {
		t.Errorf("after retry the run is %s, want compensating (due, for a worker)", st)
	}
	_, body := f.get(t, c, path)
	if !strings.Contains(body, "by alice") || !strings.Contains(body, "warehouse back") {
		t.Error("the timeline does not show who retried and why")
	}
	// Retrying again: the run is not stuck: 409.
	if code, _, _ := f.post(t, c, path, form); code != 409 {
		t.Errorf("retry of a run that is not stuck: %d, want 409", code)
	}
}

func TestAPIAction(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *console.Config) { c.Token = "t0ken" })
	c := client(t)
	do := func(body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/sagas/fulfil/stuck%2F1", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := `{"action":"abandon","reason":"customer gone","actor":"bob"}`
	if code, _ := do(good); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	for _, body := range []string{`{"action":"abandon","actor":"bob"}`, `{"action":"abandon","reason":"x","actor":"bob","extra":1}`,
		`{"action":"abandon"`, `{"action":"abandon","reason":"x","actor":"bob"} {}`, `[]`} {
		if code, resp := do(body, "Authorization", "Bearer t0ken"); code != 400 {
			t.Errorf("body %s: %d, want 400: %s", body, code, resp)
		}
	}
	code, resp := do(good, "Authorization", "Bearer t0ken")
	if code != 200 || !strings.Contains(resp, `"status": "failed"`) {
		t.Fatalf("abandon: %d %s", code, resp)
	}
	if st := f.status(t, "stuck/1"); st != saga.Failed {
		t.Errorf("after abandon: %s", st)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *console.Config) { c.ReadOnly = true })
	c := client(t)
	_, body := f.get(t, c, "/sagas/fulfil/stuck%2F1")
	if strings.Contains(body, "action-retry") {
		t.Error("a read-only console shows the actions")
	}
	if _, body := f.get(t, c, "/projections"); strings.Contains(body, "rebuild-orders-view") {
		t.Error("a read-only console shows the rebuild button")
	}
	tok := f.csrf(t, c)
	form := url.Values{"csrf": {tok}, "action": {"retry"}, "actor": {"alice"}}
	if code, _, _ := f.post(t, c, "/sagas/fulfil/stuck%2F1", form); code != 403 {
		t.Errorf("action on a read-only console: %d, want 403", code)
	}
	if code, _, _ := f.post(t, c, "/api/sagas/fulfil/stuck%2F1", form, csrfHeader, tok); code != 403 {
		t.Errorf("API action on a read-only console: %d, want 403", code)
	}
	if code, _, _ := f.post(t, c, "/projections/orders-view/rebuild", url.Values{"csrf": {tok}}); code != 403 {
		t.Errorf("rebuild on a read-only console: %d, want 403", code)
	}
	if st := f.status(t, "stuck/1"); st != saga.Stuck {
		t.Errorf("read-only console changed the run: %s", st)
	}
}

const csrfHeader = "X-CSRF-Token"

func TestRebuild(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c := client(t)
	tok := f.csrf(t, c)
	if code, _, body := f.post(t, c, "/api/projections/nope/rebuild", nil, csrfHeader, tok); code != 404 {
		t.Errorf("rebuild of a projection the console has no handlers for: %d, want 404: %s", code, body)
	}
	if code, _, _ := f.post(t, c, "/projections/orders-view/rebuild", nil); code != 403 {
		t.Errorf("rebuild without CSRF: %d, want 403", code)
	}
	code, loc, _ := f.post(t, c, "/projections/orders-view/rebuild", url.Values{"csrf": {tok}})
	if code != 303 || loc != "/projections" {
		t.Fatalf("rebuild: %d to %q", code, loc)
	}
	var st console.RebuildStatus
	f.getJSON(t, "/api/projections/orders-view/rebuild", &st)
	if !st.Running || st.Done != 5 || st.Total != 10 {
		t.Errorf("running rebuild: %+v", st)
	}
	if code, _, _ := f.post(t, c, "/api/projections/orders-view/rebuild", nil, csrfHeader, tok); code != 409 {
		t.Errorf("a second rebuild at once: %d, want 409", code)
	}
	close(f.rebuild)
	deadline := time.Now().Add(5 * time.Second)
	for st.Running && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		f.getJSON(t, "/api/projections/orders-view/rebuild", &st)
	}
	if st.Running || st.Done != 10 || st.Error != "" || st.EndedAt == nil {
		t.Errorf("ended rebuild: %+v", st)
	}
}

// A rebuild still running when the console closes is stopped, and Close
// waits for it (goleak checks).
func TestCloseStopsRebuild(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c := client(t)
	tok := f.csrf(t, c)
	if code, _, body := f.post(t, c, "/api/projections/orders-view/rebuild", nil, csrfHeader, tok); code != 200 {
		t.Fatalf("rebuild: %d %s", code, body)
	}
	f.console.Close()
}

func TestLiveFollowsAppends(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/log/live?after=0", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() console.EventJSON {
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e console.EventJSON
				if err := json.Unmarshal([]byte(d), &e); err != nil {
					t.Fatal(err)
				}
				return e
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return console.EventJSON{}
	}
	if e := next(); e.Position != "1" {
		t.Errorf("first event at %s, want 1", e.Position)
	}
	n := 0
	for _, err := range f.store.ReadAll(context.Background(), nova.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	for range n - 1 { // caught up
		next()
	}
	if _, err := f.store.Append(context.Background(), "live-1", nova.NoStream, nova.EventData{ID: nova.NewEventID(), Type: "Live", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if last := next(); last.Stream != "live-1" || last.Type != "Live" || last.Position != fmt.Sprint(n+1) {
		t.Errorf("live event %+v, want live-1 at %d", last, n+1)
	}
}

// Closing the console ends live streams, so that the server's shutdown
// does not wait for them.
func TestCloseEndsLiveStreams(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	var wg sync.WaitGroup
	for range 3 {
		resp, err := http.Get(f.srv.URL + "/api/log/live?after=0")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body)
		})
	}
	f.console.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("live streams did not end when the console closed")
	}
}
