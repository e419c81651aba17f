package bench

import (
	"os"
	"syscall"
)

// workerProcAttr puts a worker process in a process group of its own, so
// that killGroup reaches whatever it started, and has the kernel kill it
// if the thread that started it ends (the parent died).
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group p leads.
func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
