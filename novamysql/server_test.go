package novamysql_test

import "github.com/nova-go/nova/novatest"

// serverOptions are the suite's cases for stores on a server.
func serverOptions() []novatest.StoreOption {
	return []novatest.StoreOption{
		novatest.WithOpenTransaction(openTx),
		novatest.WithConnectionKiller(killConns),
	}
}
