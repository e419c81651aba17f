//go:build !linux

package bench

import (
	"os"
	"syscall"
)

// workerProcAttr sets nothing where process groups and parent-death
// signals are not at hand: a worker process also stops when its standard
// input ends, as it does when the parent exits.
func workerProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills p.
func killGroup(p *os.Process) { _ = p.Kill() }
