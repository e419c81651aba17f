package novamysql_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	const dsn = "root@tcp(127.0.0.1:1)/x"
	for _, tc := range []struct {
		name  string
		cfg   novamysql.Config
		field string
	}{
		{"nothing to connect to", novamysql.Config{}, "DB"},
		{"bad DSN", novamysql.Config{DSN: "user@tcp(host"}, "DSN"},
		{"bad URL", novamysql.Config{DSN: "mysql://u@h:3306/a/b"}, "DSN"},
		{"prefix with a dash", novamysql.Config{DSN: dsn, TablePrefix: "my-app_"}, "TablePrefix"},
		{"prefix with a quote", novamysql.Config{DSN: dsn, TablePrefix: "a`b"}, "TablePrefix"},
		{"long prefix", novamysql.Config{DSN: dsn, TablePrefix: strings.Repeat("p", 33)}, "TablePrefix"},
		{"negative poll interval", novamysql.Config{DSN: dsn, PollInterval: -time.Second}, "PollInterval"},
		{"negative page size", novamysql.Config{DSN: dsn, PageSize: -1}, "PageSize"},
		{"huge page size", novamysql.Config{DSN: dsn, PageSize: 1 << 30}, "PageSize"},
		{"negative group", novamysql.Config{DSN: dsn, MaxGroup: -1}, "MaxGroup"},
		{"huge group", novamysql.Config{DSN: dsn, MaxGroup: 1 << 20}, "MaxGroup"},
		{"negative writers", novamysql.Config{DSN: dsn, Writers: -1}, "Writers"},
		{"too many writers", novamysql.Config{DSN: dsn, Writers: 65}, "Writers"},
		{"DB and DSN", novamysql.Config{DSN: dsn, DB: new(sql.DB)}, "DSN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := novamysql.Open(context.Background(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("error %v does not match nova.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "Config."+tc.field) {
				t.Errorf("error %q does not name Config.%s", err, tc.field)
			}
			if _, err := novamysql.Migrate(context.Background(), tc.cfg); !errors.Is(err, nova.ErrInvalid) {
				t.Errorf("Migrate: %v, want nova.ErrInvalid", err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, want string
	}{
		{"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test"},
		{"mysql://root@localhost/test", "root@tcp(localhost:3306)/test"},
		{"mysql://nova:s%40cr%2Ft@db:3307/app?parseTime=true", "nova:s@cr/t@tcp(db:3307)/app?parseTime=true"},
		{"mysql://u:p@[::1]:3306/d", "u:p@tcp([::1]:3306)/d"},
		{"mysql://u@h/", "u@tcp(h:3306)/"},
	} {
		got, err := novamysql.ParseURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"postgres://u@h/d",
		"mysql://",
		"mysql://u@h/a/b",
		"mysql://u@h/d?parseTime=maybe",
		"mysql://u@h:port/d",
		"::not a url",
	} {
		if got, err := novamysql.ParseURL(bad); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ParseURL(%q) = %q, %v; want an error matching nova.ErrInvalid", bad, got, err)
		}
	}
	// The password never appears in an error.
	if _, err := novamysql.Open(context.Background(), novamysql.Config{DSN: "mysql://u:hunter2@h:x/d"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open with a bad URL: %v; want an error without the password", err)
	}
}

// TestOpenURL opens a store from a mysql:// URL, as the CLI does with
// --store, and reads back what it appended through a second store opened
// from the equivalent DSN.
func TestOpenURL(t *testing.T) {
	t.Parallel()
	name, dsn := scratchDB(t)
	_, cfg := admin(t)
	u := "mysql://" + cfg.User
	if cfg.Passwd != "" {
		u += ":" + cfg.Passwd
	}
	u += "@" + cfg.Addr + "/" + name + "?parseTime=true"
	s := open(t, novamysql.Config{DSN: u})
	res := novatest.MustAppend(t, s, "url", nova.NoStream, novatest.Events("e", 2)...)
	v, err := novamysql.Migrate(context.Background(), novamysql.Config{DSN: u})
	if err != nil || v != novamysql.SchemaVersion {
		t.Fatalf("Migrate(%s) = %d, %v", u, v, err)
	}
	s2 := open(t, novamysql.Config{DSN: dsn, SkipMigrate: true})
	got := novatest.MustReadAll(t, s2)
	if len(got) != 2 || got[1].Position != res.Position || got[0].RecordedAt.IsZero() {
		t.Fatalf("through the DSN the log holds %d events, want the 2 appended through the URL", len(got))
	}
}

// A store URL is read strictly: a ';' (which would hide what follows it),
// an unknown or repeated parameter, or a fragment is refused, naming the
// known parameters.
func TestParseURLRefusesMalformedURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"mysql://u@h/d?parseTime=true;tls=true", "semicolon"},
		{"mysql://u@h/d?parsetime=true", `unknown parameter "parsetime"`},
		{"mysql://u@h/d?parsetime=true", "parseTime, "},
		{"mysql://u@h/d?tls=true&tls=false", `"tls" is given twice`},
		{"mysql://u:hunter2@h/d#x", "fragment"},
	} {
		_, err := novamysql.ParseURL(tt.url)
		if !errors.Is(err, nova.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q): %v, want nova.ErrInvalid saying %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q): error %q shows the password", tt.url, err)
		}
	}
}

// SkipMigrate on a database without the store's tables creates nothing
// and says how to create them.
func TestSkipMigrateCreatesNothing(t *testing.T) {
	t.Parallel()
	name, dsn := scratchDB(t)
	_, err := novamysql.Open(context.Background(), novamysql.Config{DSN: dsn, SkipMigrate: true})
	if !errors.Is(err, novamysql.ErrSchemaOutdated) || !strings.Contains(err.Error(), "no nova store") || !strings.Contains(err.Error(), "nova migrate") {
		t.Fatalf("Open: %v, want ErrSchemaOutdated saying there is no store and how to create one", err)
	}
	db, _ := admin(t)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = ?`, name).Scan(&n); err != nil || n != 0 {
		t.Errorf("Open with SkipMigrate left %d tables in %s (%v), want none", n, name, err)
	}
}
