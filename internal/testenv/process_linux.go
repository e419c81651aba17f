package testenv

import "syscall"

// dieWithParent makes the kernel kill the child when the thread that
// started it ends, as when the test process dies.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
