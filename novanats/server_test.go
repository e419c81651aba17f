package novanats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova/internal/testenv"
	"github.com/nova-go/nova/novanats"
)

// private is a nats-server of the test's own: a child process (the
// binary testenv.NATSServer finds, NOVA_TEST_NATS_SERVER) on a free port,
// with JetStream storing in a directory of the test's, stopped when the
// test ends. Clients connect to url without credentials and land in an
// account with JetStream; sys is a connection to the server's system
// account, through which the test cuts clients' connections.
type private struct {
	url string
	id  string // the server's ID, for system requests
	sys *nats.Conn
	p   *testenv.Process
}

// serverOptions are the settings of a private server that tests change.
type serverOptions struct {
	// MaxPayload is the server's max_payload, in bytes.
	MaxPayload int
}

// startServer starts a private server and stops it when t ends. Its
// limits allow what the conformance suite appends: 16 MiB payloads and
// atomic batches of nova.MaxBatch events. Without nats-server 2.12 or
// later, t skips (or fails, under NOVA_REQUIRE_SERVICES).
func startServer(t testing.TB) *private {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith starts a private server whose options edit has
// changed, if edit is not nil.
func startServerWith(t testing.TB, edit func(*serverOptions)) *private {
	t.Helper()
	bin := testenv.NeedProgram(t, testenv.NATSServer)
	opts := serverOptions{MaxPayload: 16 << 20}
	if edit != nil {
		edit(&opts)
	}
	dir := t.TempDir()
	var b [12]byte
	rand.Read(b[:])
	sysPass := hex.EncodeToString(b[:])
	// Port -1: the server picks a free port and writes it to the ports
	// file, so no other process can take it between a choice and the
	// bind.
	conf := fmt.Sprintf(`host: 127.0.0.1
port: -1
ports_file_dir: %q
max_payload: %d
jetstream {
	store_dir: %q
	limits { batch { max_msgs: 10000 } }
}
accounts {
	SYS { users: [{user: sys, password: %q}] }
	NOVA { jetstream: enabled, users: [{user: nova, password: %q}] }
}
system_account: SYS
no_auth_user: nova
`, dir, opts.MaxPayload, filepath.Join(dir, "jetstream"), sysPass, sysPass+"-nova")
	confPath := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProcess(t, bin, filepath.Join(dir, "nats-server.log"), "-c", confPath)
	s := &private{p: p}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.await(ctx, dir, sysPass); err != nil {
		t.Fatalf("private nats-server (%s): %v\n%s", bin, err, p.Log())
	}
	t.Cleanup(s.sys.Close) // runs before the process is stopped
	return s
}

// await waits for the server to write its ports file and to answer, as
// the system account and with JetStream, and fills in url, id and sys.
func (s *private) await(ctx context.Context, dir, sysPass string) error {
	for s.url == "" {
		if ports, _ := filepath.Glob(filepath.Join(dir, "*.ports")); len(ports) == 1 {
			var info struct{ Nats []string }
			if b, err := os.ReadFile(ports[0]); err == nil && json.Unmarshal(b, &info) == nil && len(info.Nats) > 0 {
				s.url = info.Nats[0]
				break
			}
		}
		if err := s.pause(ctx); err != nil {
			return fmt.Errorf("no ports file: %w", err)
		}
	}
	for {
		err := s.connect(ctx, sysPass)
		if err == nil {
			return nil
		}
		if perr := s.pause(ctx); perr != nil {
			return fmt.Errorf("not ready at %s: %v (%w)", s.url, err, perr)
		}
	}
}

func (s *private) connect(ctx context.Context, sysPass string) error {
	sys, err := nats.Connect(s.url, nats.UserInfo("sys", sysPass), nats.Name("novanats test: system account"))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(s.url)
	if err == nil {
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			_, err = js.AccountInfo(ctx)
		}
		nc.Close()
	}
	if err != nil {
		sys.Close()
		return err
	}
	s.sys, s.id = sys, sys.ConnectedServerId()
	return nil
}

// pause waits a moment, or fails when ctx is done or the server has
// exited.
func (s *private) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.p.Exited():
		return errors.New("the server exited")
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}

// kick closes the server's side of the client connection cid, through
// the system account ($SYS.REQ.SERVER.<id>.KICK), and returns once the
// server has let it go, or an error when it has no such client.
func (s *private) kick(ctx context.Context, cid uint64) error {
	req, _ := json.Marshal(struct {
		CID uint64 `json:"cid"`
	}{cid})
	msg, err := s.sys.RequestWithContext(ctx, "$SYS.REQ.SERVER."+s.id+".KICK", req)
	if err != nil {
		return err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("kick client %d: %w (%q)", cid, err, msg.Data)
	}
	if resp.Error != nil {
		return fmt.Errorf("kick client %d: %d %s", cid, resp.Error.Code, resp.Error.Description)
	}
	return nil
}

var scratch atomic.Int64

// scratchConfig returns a Config for a JetStream stream no other test
// uses, on the server at url, and deletes that stream when t ends.
func scratchConfig(t testing.TB, url string) novanats.Config {
	t.Helper()
	n := scratch.Add(1)
	suffix := fmt.Sprintf("%d_%d", time.Now().UnixNano()%1e9, n)
	cfg := novanats.Config{
		URL:           url,
		StreamName:    "NOVA_TEST_" + suffix,
		SubjectPrefix: "novatest." + suffix,
		Storage:       novanats.MemoryStorage,
		// A request whose answer a dropped connection lost fails after
		// this long; short, so the connection-drop case runs quickly.
		Timeout: 4 * time.Second,
	}
	t.Cleanup(func() {
		deleteStream(t, url, cfg.StreamName)
		// The store's key-value buckets, when a test made them.
		deleteStream(t, url, "KV_"+cfg.StreamName+"_snapshots")
		deleteStream(t, url, "KV_"+cfg.StreamName+"_checkpoints")
	})
	return cfg
}

// deleteStream removes a scratch stream, if it exists.
func deleteStream(t testing.TB, url, name string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil && !errorsIsNotFound(err) {
		t.Errorf("delete stream %s: %v", name, err)
	}
}

func errorsIsNotFound(err error) bool {
	return err != nil && (err == jetstream.ErrStreamNotFound || jetstream.ErrStreamNotFound.Error() == err.Error())
}
