package aggregate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
)

// A small bank account, the aggregate these tests drive.

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int64 `json:"amount"`
}

type Withdrawn struct {
	Amount int64 `json:"amount"`
}

// Poison is registered, but Account refuses to apply it.
type Poison struct{}

// Unregistered is never registered.
type Unregistered struct{}

var errInsufficient = errors.New("account: insufficient funds")

type Account struct {
	Owner   string
	Balance int64
	Events  int
}

func (a *Account) Apply(event any) error {
	switch e := event.(type) {
	case Opened:
		a.Owner = e.Owner
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	default:
		return fmt.Errorf("account: unexpected event %T", event)
	}
	a.Events++
	return nil
}

func (a *Account) Open(owner string) ([]any, error) {
	if a.Owner != "" {
		return nil, errors.New("account: already open")
	}
	return []any{Opened{Owner: owner}}, nil
}

func (a *Account) Deposit(n int64) ([]any, error) {
	return []any{Deposited{Amount: n}}, nil
}

func (a *Account) Withdraw(n int64) ([]any, error) {
	if n > a.Balance {
		return nil, errInsufficient
	}
	return []any{Withdrawn{Amount: n}}, nil
}

func newRegistry(t testing.TB) *nova.Registry {
	t.Helper()
	r := nova.NewRegistry(nova.RegistryOptions{})
	for _, err := range []error{
		nova.Register[Opened](r, "account.opened"),
		nova.Register[Deposited](r, "account.deposited"),
		nova.Register[Withdrawn](r, "account.withdrawn"),
		nova.Register[Poison](r, "account.poison"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// fixture is what most tests need: a store, snapshots, a report sink and
// a repository over them.
type fixture struct {
	store   *memStore
	snaps   *memSnapshots
	reports *reports
	reg     *nova.Registry
	repo    *aggregate.Repository[Account]
}

// setup builds a fixture; edit adjusts the config before the repository
// is built.
func setup(t *testing.T, edit func(*aggregate.Config)) *fixture {
	t.Helper()
	f := &fixture{store: newMemStore(), snaps: newMemSnapshots(), reports: &reports{}, reg: newRegistry(t)}
	cfg := aggregate.Config{Store: f.store, Registry: f.reg, Category: "account", ErrorFunc: f.reports.add}
	if edit != nil {
		edit(&cfg)
	}
	repo, err := aggregate.NewRepository[Account](cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = repo
	return f
}
