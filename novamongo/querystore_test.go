package novamongo_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novamongo"
	"github.com/nova-go/nova/novatest"
)

// The tests run against the server of the MongoDB API at
// NOVA_TEST_MONGO_URI (default mongodb://127.0.0.1:27017; CI runs FerretDB
// there as a process), and skip, or fail under NOVA_REQUIRE_SERVICES, when
// nothing listens there.
func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.Main(m)) }

// serverURI returns the address of the server the tests use, skipping t
// when it cannot be reached.
func serverURI(t *testing.T) string {
	t.Helper()
	return testenv.Need(t, testenv.Mongo)
}

// scratchDB returns a database of t's own on a client of the test
// server, dropped, and the client disconnected, when t ends.
func scratchDB(t *testing.T) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(serverURI(t)))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	db := client.Database("novatest_" + hex.EncodeToString(b[:]))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("drop scratch database %s: %v", db.Name(), err)
		}
		if err := client.Disconnect(ctx); err != nil {
			t.Errorf("disconnect: %v", err)
		}
	})
	return db
}

func newQueryStore(t *testing.T, db *mongo.Database, collection string) *novamongo.QueryStore {
	t.Helper()
	qs, err := novamongo.Open(context.Background(), novamongo.Config{Client: db.Client(), Database: db.Name(), Collection: collection})
	if err != nil {
		t.Fatalf("Open(Collection %q): %v", collection, err)
	}
	return qs
}

func TestQueryStore(t *testing.T) {
	t.Parallel()
	novatest.RunQueryStore(t, func(t *testing.T) cqrs.QueryStore {
		return newQueryStore(t, scratchDB(t), "")
	}, novatest.WithScale(testenv.ServerScale()))
}

// Values are documents the server can query where that is faithful, and
// JSON text where it is not; either way they come back with their
// meaning.
func TestQueryStoreDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := scratchDB(t)
	qs := newQueryStore(t, db, "")
	tests := []struct {
		value string
		field string // where the document holds the value
		want  string // GetRaw, when not value itself
	}{
		{`{"status":"paid","total":4200,"lines":[{"sku":"a","qty":2}],"note":null,"ok":true}`, "value", ""},
		{`{"b":1,"a":{"z":[],"y":{}}}`, "value", ""}, // key order kept
		{`{"ratio":0.25,"big":-9223372036854775808,"e":1e300}`, "value", `{"ratio":0.25,"big":-9223372036854775808,"e":1e+300}`},
		{`{"n":18446744073709551616}`, "value", `{"n":18446744073709552000}`}, // past int64: a double
		{`"text <&> é 🚀"`, "value", ""},
		{` [ 1 , "two" ] `, "value", `[1,"two"]`},
		{`null`, "value", ""},
		{`{"$set":1}`, "json", ""},
		{`{"a":{"b.c":1}}`, "json", ""},
		{`{"":1}`, "json", ""},
		{`{"a":1,"a":2}`, "json", ""},
		{`{"k\u0000":1}`, "json", ""},
		{`["\ud800"]`, "json", ""},
		{`1E400`, "json", ""},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), "json", ""},
		{`{"k":"\u0000"}`, "value", `{"k":"\u0000"}`},
	}
	for i, tt := range tests {
		key := fmt.Sprint("doc-", i)
		if err := qs.UpsertRaw(ctx, key, json.RawMessage(tt.value)); err != nil {
			t.Fatalf("UpsertRaw(%s): %v", tt.value, err)
		}
		doc, err := qs.Collection().FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := doc.LookupErr(tt.field); err != nil {
			t.Errorf("%s is stored as %s, want it in field %s", tt.value, doc, tt.field)
		}
		if _, err := doc.LookupErr("updated_at"); err != nil {
			t.Errorf("%s: no updated_at in %s", tt.value, doc)
		}
		want := tt.want
		if want == "" {
			want = tt.value
		}
		if tt.field == "json" || tt.want != "" {
			if got, err := qs.GetRaw(ctx, key); err != nil || string(got) != want {
				t.Errorf("GetRaw = %s, %v; want %s", got, err, want)
			}
		} else if got, err := qs.GetRaw(ctx, key); err != nil || !jsonEqual(got, []byte(want)) {
			t.Errorf("GetRaw = %s, %v; want %s", got, err, want)
		}
	}
	// The server can query the documents by their fields.
	n, err := qs.Collection().CountDocuments(ctx, bson.D{{Key: "value.status", Value: "paid"}})
	if err != nil || n != 1 {
		t.Errorf("documents with value.status paid: %d, %v; want 1", n, err)
	}
	// An upsert replaces a document of one form by the other.
	if err := qs.UpsertRaw(ctx, "doc-0", json.RawMessage(`{"$set":2}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "doc-0"); err != nil || string(got) != `{"$set":2}` {
		t.Fatalf("GetRaw after a change of form = %s, %v", got, err)
	}
	// A document another program wrote with a type this store never
	// writes is an error, not a panic.
	if _, err := qs.Collection().InsertOne(ctx, bson.D{{Key: "_id", Value: "foreign"}, {Key: "value", Value: bson.NewObjectID()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := qs.GetRaw(ctx, "foreign"); err == nil || errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("GetRaw of a foreign document = %v, want an error", err)
	}
}

func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return fmt.Sprint(va) == fmt.Sprint(vb)
}

func TestOpenBadConfig(t *testing.T) {
	t.Parallel()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never dialled
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	const url = "mongodb://127.0.0.1:1"
	tests := []struct {
		name  string
		cfg   novamongo.Config
		field string
	}{
		{"no URL nor client", novamongo.Config{Database: "db"}, "Config.URL"},
		{"URL and client", novamongo.Config{URL: url, Client: client, Database: "db"}, "Config.URL"},
		{"URL of another scheme", novamongo.Config{URL: "http://127.0.0.1:1", Database: "db"}, "Config.URL"},
		{"URL with a bad option", novamongo.Config{URL: url + "/?connectTimeoutMS=x", Database: "db"}, "Config.URL"},
		{"no database", novamongo.Config{URL: url}, "Config.Database"},
		{"database with a dot", novamongo.Config{Client: client, Database: "a.b"}, "Config.Database"},
		{"database with a slash", novamongo.Config{URL: url, Database: "a/b"}, "Config.Database"},
	}
	for _, name := range []string{"a$b", "a\x00b", "system.views", ".a", "\xff", strings.Repeat("c", 121)} {
		tests = append(tests, struct {
			name  string
			cfg   novamongo.Config
			field string
		}{"collection " + name, novamongo.Config{Client: client, Database: "db", Collection: name}, "Config.Collection"})
	}
	for _, tt := range tests {
		qs, err := novamongo.Open(context.Background(), tt.cfg)
		var ie *nova.InvalidError
		if !errors.As(err, &ie) || ie.Field != tt.field {
			if qs != nil {
				qs.Close()
			}
			t.Errorf("%s: Open = %v, want an *nova.InvalidError naming %s", tt.name, err, tt.field)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := scratchDB(t)
	qs, err := novamongo.Open(ctx, novamongo.Config{URL: serverURI(t), Database: db.Name(), Collection: "views"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := qs.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := qs.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("GetRaw after Close = %v, want nova.ErrClosed", err)
	}
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`1`)); !errors.Is(err, nova.ErrClosed) {
		t.Errorf("UpsertRaw after Close = %v, want nova.ErrClosed", err)
	}
	// A store on Config.Client leaves the caller's client connected; one
	// given no Collection uses DefaultCollection.
	if def := newQueryStore(t, db, ""); def.Collection().Name() != novamongo.DefaultCollection {
		t.Errorf("collection %q, want %q", def.Collection().Name(), novamongo.DefaultCollection)
	}
	qs = newQueryStore(t, db, "views")
	if err := qs.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := qs.GetRaw(ctx, "k"); err != nil || string(got) != `{"v":1}` {
		t.Fatalf("GetRaw after closing a store on the caller's client = %s, %v", got, err)
	}
	// No server: Open fails within ctx and leaves nothing running.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if qs, err := novamongo.Open(short, novamongo.Config{URL: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500", Database: "db"}); err == nil {
		qs.Close()
		t.Fatal("Open of a closed port succeeded")
	}
}
