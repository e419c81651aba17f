// Package console is Nova's web console, served by `nova serve`: pages
// over a store's streams, its global log (followed live), its saga runs
// with their timelines and the operator's actions on them, and its
// projections with their checkpoints, lag and rebuilds; and the JSON API
// under /api/ that the pages' scripts use and scripts of your own can
// too (docs/CONSOLE.md lists it).
//
// Pages are rendered on the server with html/template from templates
// embedded in the binary, with a stylesheet and a small script (live
// updates only: every page reads without JavaScript), all served from
// /static/: nothing is loaded from elsewhere, and the Content Security
// Policy says so.
//
// Every list is paged by key (a stream name, a version, a log position,
// a saga and run ID), never by offset, so a page costs the same at the
// end of a long log as at its start. The overview's event count and head
// come from one goroutine that reads the log once and then follows it
// (Store.Subscribe), not from a count of the log on each request.
//
// Security: with [Config.Token] set every request needs the token (an
// "Authorization: Bearer" header, or the session cookie the login form
// or ?token= once sets, which holds an HMAC of the token, not the token);
// without it the console answers only requests for a loopback host name,
// which keeps DNS-rebinding pages out. Actions (operator actions on runs,
// rebuilds) are POSTs that need the CSRF cookie's value echoed in a form
// field or header (double submit) and a same-origin Origin, unless
// authenticated by the Authorization header, which a browser never sends
// of its own accord. [Config.ReadOnly] hides and refuses them with 403.
// Query parameters and bodies are read strictly (unknown or repeated
// parameters, bad values: 400 with what is wrong).
//
// The console runs no saga workers and no projection runners: it has no
// saga definitions or projection handlers for an arbitrary store. After
// an operator retries or skips a Stuck run, a worker of the application
// takes the run up; a rebuild is offered for the projections whose
// handlers the caller supplies ([Config.Rebuilds]: `nova serve` supplies
// the demo's).
//
// The package uses the standard library only. The browser tests of `nova
// serve` (cmd/nova, serve_browser_test.go) import
// github.com/chromedp/chromedp, the maintained Go client of the Chrome
// DevTools protocol, to drive a headless Chromium: a test-only
// dependency, needing no driver binary beside the browser.
package console
