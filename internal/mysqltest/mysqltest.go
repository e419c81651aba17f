// Package mysqltest gives a test a scratch MySQL/MariaDB database of its
// own on the test server (testenv.MySQL, NOVA_TEST_MYSQL_DSN), dropped
// when the test ends. It is imported by tests only; the go-sql-driver
// client is the one novamysql uses.
package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamysql"
)

// Scratch creates a database named prefix followed by 12 random hex
// digits, dropped when t ends, and returns the driver configuration that
// connects to it. It skips t, or fails it under NOVA_REQUIRE_SERVICES,
// when no server answers. The test server's address may be a DSN or a
// mysql:// URL.
func Scratch(t testing.TB, prefix string) *mysql.Config {
	t.Helper()
	addr := testenv.Need(t, testenv.MySQL)
	dsn := addr
	if strings.HasPrefix(addr, "mysql://") {
		var err error
		if dsn, err = novamysql.ParseURL(addr); err != nil {
			t.Fatalf("%s: %v", testenv.MySQL.Env, err)
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", testenv.MySQL.Env, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if err := exec(cfg, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create scratch database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(cfg, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop scratch database %s: %v", name, err)
		}
	})
	cfg = cfg.Clone()
	cfg.DBName = name
	return cfg
}

// URL returns cfg as the mysql:// URL the CLI takes.
func URL(cfg *mysql.Config) string {
	u := url.URL{Scheme: "mysql", User: url.User(cfg.User), Host: cfg.Addr, Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	}
	return u.String()
}

// exec runs one statement on a connection of its own to the server.
func exec(cfg *mysql.Config, stmt string) error {
	c := cfg.Clone()
	c.DBName = ""
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
