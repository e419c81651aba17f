package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novasqlite"
)

// chromiumPath is the browser the console's browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips it (fails it
// under NOVA_REQUIRE_SERVICES=1) when there is none.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else {
			msg := "no Chromium at " + chromiumPath + " or on PATH: install it (apt-get install chromium) to run the console's browser tests"
			if testenv.Required() {
				t.Fatalf("%s; NOVA_REQUIRE_SERVICES is set, so this fails instead of skipping", msg)
			}
			t.Skip(msg)
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// screenshot saves the page as docs/img/console-NAME.png when
// NOVA_CONSOLE_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("NOVA_CONSOLE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitVisible waits for sel after a click that navigates: a query made
// while the old page goes away fails with "Cannot find context", and is
// made again on the new page.
func waitVisible[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S, within time.Duration) error {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := chromedp.Do(wctx, chromedp.WaitVisible(sel))
		if err == nil || wctx.Err() != nil || !strings.Contains(err.Error(), "context") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLocation waits until the page's URL holds part: a click or a
// submit has navigated.
func waitLocation(t *testing.T, ctx context.Context, part string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, part) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not go to %s: at %s (%v)", part, loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The console in a browser, on the demo's store: find a stream, open the
// stuck run's timeline, retry it through the page and watch it finish
// once a worker (the next demo) has taken it up, and see the log page
// follow a live append.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "16"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	base, _ := startServe(t, db, serveOptions{})

	var text string
	var err error
	// Overview.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.cards`)),
	); err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "1 stuck") || !strings.Contains(text, "order-summary") {
		t.Errorf("overview:\n%s", text)
	}
	screenshot(t, ctx, "overview")

	// Find a stream by prefix and open it.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/streams"),
		chromedp.SendKeys(chromedp.CSS(`input[name=prefix]`), "order-0000"),
		chromedp.Submit(chromedp.CSS(`input[name=prefix]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "prefix=order-0000")
	if err := waitVisible(t, ctx, `//a[text()="order-00003"]`, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#streams`))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "order-00010") || strings.Contains(text, "saga-") {
		t.Errorf("prefix order-0000 lists others:\n%s", text)
	}
	screenshot(t, ctx, "streams")
	if err := chromedp.Do(ctx,
		chromedp.Click(`//a[text()="order-00003"]`),
	); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "/streams/order-00003")
	if err := waitVisible(t, ctx, chromedp.CSS(`#events`), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#events`))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "#1") || !strings.Contains(text, `"00003"`) {
		t.Errorf("stream order-00003:\n%s", text)
	}
	screenshot(t, ctx, "stream")

	// The stuck run: its timeline, then retry through the form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/sagas?status=stuck"),
		chromedp.Click(chromedp.CSS(`#runs tbody a[href="/sagas/fulfil/00002"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "/sagas/fulfil/00002")
	if err := waitVisible(t, ctx, chromedp.CSS(`#timeline`), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#timeline`))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "run_stuck") && !strings.Contains(text, "stuck") {
		t.Errorf("timeline of the stuck run:\n%s", text)
	}
	screenshot(t, ctx, "run")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#act input[name=reason]`), "warehouse released it"),
		chromedp.SendKeys(chromedp.CSS(`#act input[name=actor]`), "browser-test"),
		chromedp.Click(chromedp.CSS(`#action-retry`)),
	); err != nil {
		t.Fatal(err)
	}
	waitLocation(t, ctx, "?done=")
	if err := waitVisible(t, ctx, chromedp.CSS(`#done`), 30*time.Second); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		main, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
		t.Fatalf("retry: no confirmation at %s: %v\n%s", loc, err, main)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`))); err != nil {
		t.Fatal(err)
	}
	if text != "compensating" {
		t.Errorf("after retry the run is %q, want compensating", text)
	}
	// The console runs no workers: the next demo resumes the run, and
	// the page, watching it, shows it end.
	if code, _, stderr := runNova(t, "demo", "--store", db, "--orders", "1"); code != 0 {
		t.Fatalf("demo resuming the run: exit %d: %s", code, stderr)
	}
	if err := waitVisible(t, ctx, chromedp.CSS(`#status.compensated`), 60*time.Second); err != nil {
		_, out, _ := runNova(t, "saga", "fulfil/00002", "--store", db)
		t.Fatalf("the run page did not show the run compensated: %v; the store says:\n%s", err, out)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#timeline`))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "browser-test") {
		t.Errorf("the timeline does not name who retried:\n%s", text)
	}

	// The log follows a live append.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/log"),
		chromedp.WaitVisible(chromedp.CSS(`#follow`)),
		chromedp.Click(chromedp.CSS(`#follow`)),
		chromedp.WaitVisible(`//span[@id="live-state" and contains(text(), "following")]`),
	); err != nil {
		t.Fatal(err)
	}
	other, err := novasqlite.Open(context.Background(), novasqlite.Config{Path: db, SkipMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Append(context.Background(), "console-live-1", nova.NoStream,
		nova.EventData{ID: nova.NewEventID(), Type: "LiveAppended", Data: []byte(`{"from":"the browser test"}`)}); err != nil {
		t.Fatal(err)
	}
	lctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if err := chromedp.Do(lctx, chromedp.WaitVisible(`//tr[contains(@class, "new")]//a[text()="console-live-1"]`)); err != nil {
		t.Fatalf("the log page did not show the live append: %v", err)
	}
	screenshot(t, ctx, "log")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/projections"),
		chromedp.WaitVisible(chromedp.CSS(`#projections`)),
	); err != nil {
		t.Fatal(err)
	}

	// Rebuild the demo's projection through the page and watch it end.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#rebuild-order-summary`))); err != nil {
		t.Fatal(err)
	}
	if err := waitVisible(t, ctx, `//span[@data-k="progress" and contains(text(), "done")]`, 60*time.Second); err != nil {
		main, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
		t.Fatalf("the rebuild did not show done: %v\n%s", err, main)
	}
	if text, err = chromedp.Run(ctx, chromedp.Text(`//span[@data-k="progress"]`)); err != nil {
		t.Fatal(err)
	}
	if done, total, ok := strings.Cut(strings.Fields(text)[0], "/"); !ok || done != total || done == "0" {
		t.Errorf("rebuild progress %q, want every event of the log done", text)
	}
	screenshot(t, ctx, "projections")
}
