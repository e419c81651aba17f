package novamongo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/internal/validate"
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// DefaultCollection is the collection of a store given none.
const DefaultCollection = "projections"

// maxDocument is the size past which a stored document risks MongoDB's
// limit of 16 MiB; a value whose BSON form is larger is stored as text.
const maxDocument = 16<<20 - 64<<10

// closeTimeout bounds the disconnection of a store's own client.
const closeTimeout = 10 * time.Second

// Config configures [Open]. Exactly one of URL and Client is required,
// and Database; the zero value of Collection means its default.
type Config struct {
	// URL is a MongoDB connection string
	// ("mongodb://user:password@host:27017/?replicaSet=rs0", as the
	// driver's ApplyURI reads it). The store connects with it and
	// disconnects on Close.
	URL string

	// Client is a client the caller owns, used instead of URL. The store
	// never disconnects it.
	Client *mongo.Client

	// Database names the database holding the collection: at most 63
	// bytes of UTF-8, without '/', '\', '.', ' ', '"', '$' or NUL.
	// Required.
	Database string

	// Collection names the collection holding the store's documents,
	// created by the server with its first document: at most 120 bytes
	// of UTF-8, without '$' or NUL, not starting with '.' or "system.".
	// Default [DefaultCollection].
	Collection string
}

// validate checks the fields, naming the wrong one; it changes nothing.
func (c Config) validate() error {
	switch {
	case c.URL == "" && c.Client == nil:
		return validate.InvalidFieldf("novamongo", "Config.URL", "one of URL and Client is required")
	case c.URL != "" && c.Client != nil:
		return validate.InvalidFieldf("novamongo", "Config.URL", "set either URL or Client, not both")
	}
	if c.URL != "" {
		if err := options.Client().ApplyURI(c.URL).Validate(); err != nil {
			return validate.InvalidFieldf("novamongo", "Config.URL", "%v", err)
		}
	}
	if msg := badName(c.Database, 63, "/\\. \"$\x00"); msg != "" {
		return validate.InvalidFieldf("novamongo", "Config.Database", "%q: %s", c.Database, msg)
	}
	if c.Collection != "" {
		msg := badName(c.Collection, 120, "$\x00")
		if msg == "" && (strings.HasPrefix(c.Collection, "system.") || strings.HasPrefix(c.Collection, ".")) {
			msg = "reserved by the server"
		}
		if msg != "" {
			return validate.InvalidFieldf("novamongo", "Config.Collection", "%q: %s", c.Collection, msg)
		}
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Collection == "" {
		c.Collection = DefaultCollection
	}
	return c
}

// QueryStore is a [cqrs.QueryStore] in a collection of a database
// speaking the MongoDB API: one document per key (see the package
// documentation for its fields). It is safe for concurrent use; of
// concurrent upserts of one key the last to arrive wins, whole.
type QueryStore struct {
	coll   *mongo.Collection
	client *mongo.Client // the client Open connected to Config.URL, disconnected by Close
}

// Open returns a query store on cfg.Collection of cfg.Database, through a
// client of cfg.URL or cfg.Client, once the server has answered; ctx
// bounds that check only. A bad cfg fails with an error matching
// nova.ErrInvalid that names the field.
func Open(ctx context.Context, cfg Config) (*QueryStore, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, owned := cfg.Client, false
	if cfg.URL != "" {
		var err error
		if client, err = mongo.Connect(options.Client().ApplyURI(cfg.URL)); err != nil {
			return nil, validate.InvalidFieldf("novamongo", "Config.URL", "%v", err)
		}
		owned = true
	}
	if err := client.Ping(ctx, nil); err != nil {
		if owned {
			_ = client.Disconnect(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("novamongo: open: %w", err)
	}
	q := &QueryStore{coll: client.Database(cfg.Database).Collection(cfg.Collection)}
	if owned {
		q.client = client
	}
	return q, nil
}

// badName says what is wrong with a database or collection name, or
// returns "".
func badName(name string, maxLen int, forbidden string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > maxLen:
		return fmt.Sprintf("longer than %d bytes", maxLen)
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case strings.ContainsAny(name, forbidden):
		return fmt.Sprintf("holds one of %q", forbidden)
	}
	return ""
}

// Collection returns the collection holding the store's documents.
func (q *QueryStore) Collection() *mongo.Collection { return q.coll }

// Close disconnects the client the store made for [Config.URL], waiting
// up to 10 seconds for operations in flight; later calls fail with
// nova.ErrClosed. It leaves alone a [Config.Client], which its owner
// disconnects.
func (q *QueryStore) Close() error {
	if q.client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := q.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return fmt.Errorf("novamongo: close: %w", err)
	}
	return nil
}

// GetRaw implements [cqrs.QueryStore].
func (q *QueryStore) GetRaw(ctx context.Context, key string) (json.RawMessage, error) {
	if err := querystore.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("novamongo: get projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, err := q.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("novamongo: projection %q: %w", key, nova.ErrNotFound)
	}
	if err != nil {
		return nil, opError(ctx, "get", key, err)
	}
	if text, ok := doc.Lookup("json").StringValueOK(); ok {
		return json.RawMessage(text), nil
	}
	v, err := doc.LookupErr("value")
	if err != nil {
		return nil, fmt.Errorf("novamongo: projection %q: document %s has neither value nor json", key, doc)
	}
	var buf bytes.Buffer
	if err := toJSON(&buf, v); err != nil {
		return nil, fmt.Errorf("novamongo: projection %q: %w", key, err)
	}
	return buf.Bytes(), nil
}

// UpsertRaw implements [cqrs.QueryStore].
func (q *QueryStore) UpsertRaw(ctx context.Context, key string, value json.RawMessage) error {
	if err := querystore.ValidateUpsert(key, value); err != nil {
		return fmt.Errorf("novamongo: upsert projection: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	doc, err := document(key, value, time.Now())
	if err != nil {
		return fmt.Errorf("novamongo: upsert projection %q: %w", key, err)
	}
	filter := bson.D{{Key: "_id", Value: key}}
	upsert := options.Replace().SetUpsert(true)
	for attempt := 1; ; attempt++ {
		_, err = q.coll.ReplaceOne(ctx, filter, doc, upsert)
		// Two upserts inserting one new key at once: the loser's insert
		// fails on the unique _id, and replacing now finds the document.
		if err == nil || !mongo.IsDuplicateKeyError(err) || attempt == 5 {
			break
		}
	}
	if err != nil {
		return opError(ctx, "upsert", key, err)
	}
	return nil
}

// document returns the document stored for key: its value as BSON when
// that is faithful, else as JSON text.
func document(key string, value []byte, now time.Time) (bson.D, error) {
	updated := bson.NewDateTimeFromTime(now)
	v, err := toBSON(value)
	if err == nil {
		doc := bson.D{{Key: "_id", Value: key}, {Key: "value", Value: v}, {Key: "updated_at", Value: updated}}
		if len(value) < 1<<20 {
			return doc, nil // no JSON of under 1 MiB grows past maxDocument
		}
		raw, err := bson.Marshal(doc)
		if err != nil {
			return nil, err
		}
		if len(raw) <= maxDocument {
			return doc, nil
		}
	} else if !errors.Is(err, errNotBSON) {
		return nil, err
	}
	return bson.D{{Key: "_id", Value: key}, {Key: "json", Value: string(value)}, {Key: "updated_at", Value: updated}}, nil
}

// opError wraps err from the driver, leaving as they are the errors
// callers compare with: ctx's, and nova.ErrClosed for a disconnected
// client.
func opError(ctx context.Context, what, key string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, mongo.ErrClientDisconnected):
		return nova.ErrClosed
	}
	return fmt.Errorf("novamongo: %s projection %q: %w", what, key, err)
}
