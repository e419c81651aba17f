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
)

var _ cqrs.QueryStore = (*QueryStore)(nil)

// DefaultCollection is the collection of a store given none.
const DefaultCollection = "projections"

// maxDocument is the size past which a stored document risks MongoDB's
// limit of 16 MiB; a value whose BSON form is larger is stored as text.
const maxDocument = 16<<20 - 64<<10

// closeTimeout bounds the disconnection of a store's own client.
const closeTimeout = 10 * time.Second

// QueryStore is a [cqrs.QueryStore] in a collection of a database
// speaking the MongoDB API: one document per key (see the package
// documentation for its fields). It is safe for concurrent use; of
// concurrent upserts of one key the last to arrive wins, whole.
type QueryStore struct {
	coll   *mongo.Collection
	client *mongo.Client // the client Open connected, closed by Close
}

// NewQueryStore returns a query store on collection ("" means
// [DefaultCollection]) of db, whose client the caller owns. The
// collection is created by the server with its first document. A bad
// collection name (empty after the default, longer than 120
// bytes, not UTF-8, holding '$' or NUL, or starting with "system.")
// fails with an error matching nova.ErrInvalid.
func NewQueryStore(db *mongo.Database, collection string) (*QueryStore, error) {
	if collection == "" {
		collection = DefaultCollection
	}
	if msg := badName(collection, 120, "$\x00"); msg != "" || strings.HasPrefix(collection, "system.") || strings.HasPrefix(collection, ".") {
		if msg == "" {
			msg = "reserved by the server"
		}
		return nil, nova.Invalidf("novamongo", "collection name %q: %s", collection, msg)
	}
	return &QueryStore{coll: db.Collection(collection)}, nil
}

// Open connects to the server at uri, a MongoDB connection string
// ("mongodb://user:password@host:27017/?replicaSet=rs0", as the driver's
// ApplyURI reads it), checks that it answers, and returns a query store
// on collection ("" means [DefaultCollection]) of database that owns the
// connection: [QueryStore.Close] closes it. A bad uri, database or
// collection fails with an error matching nova.ErrInvalid. ctx bounds the
// connection check only.
func Open(ctx context.Context, uri, database, collection string) (*QueryStore, error) {
	if msg := badName(database, 63, "/\\. \"$\x00"); msg != "" {
		return nil, nova.Invalidf("novamongo", "database name %q: %s", database, msg)
	}
	opts := options.Client().ApplyURI(uri)
	if err := opts.Validate(); err != nil {
		return nil, nova.Invalidf("novamongo", "connection string: %v", err)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, nova.Invalidf("novamongo", "connection string: %v", err)
	}
	q, err := NewQueryStore(client.Database(database), collection)
	if err == nil {
		if err = client.Ping(ctx, nil); err != nil {
			err = fmt.Errorf("novamongo: open: %w", err)
		}
	}
	if err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	q.client = client
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

// Close disconnects the client of a store from [Open], waiting up to 10
// seconds for operations in flight; later calls fail with
// nova.ErrClosed. It leaves alone the client of a store from
// [NewQueryStore], which its owner disconnects.
func (q *QueryStore) Close() error {
	if q == nil || q.client == nil {
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
