package procgroup

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startGroup starts sh leading its own group, with a background sleep in
// it; sh prints the sleep's pid and then waits or exits.
func startGroup(t *testing.T, script string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 60 & echo $!; "+script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL); syscall.Wait4(pid, nil, syscall.WNOHANG, nil) })
	return cmd, pid
}

// alive reports whether pid runs (a zombie does not: nothing here reaps
// the orphaned sleep).
func alive(pid int) bool {
	b, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	return err == nil && len(b) > 0 && b[0] != 'Z'
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
	}
}

// Kill reaches what the leader started, while the leader runs and after
// it has ended (not yet reaped).
func TestKill(t *testing.T) {
	t.Run("leader running", func(t *testing.T) {
		cmd, bg := startGroup(t, "sleep 60")
		g := Watch(cmd.Process.Pid)
		g.Kill()
		<-g.Exited()
		g.Release()
		cmd.Wait()
		waitDead(t, bg)
	})
	t.Run("leader ended", func(t *testing.T) {
		cmd, bg := startGroup(t, "exit 0")
		g := Watch(cmd.Process.Pid)
		select {
		case <-g.Exited():
		case <-time.After(5 * time.Second):
			t.Fatal("the leader's end was not reported")
		}
		if !alive(bg) {
			t.Fatal("the background process ended with its leader")
		}
		g.Kill()
		g.Release()
		cmd.Wait()
		waitDead(t, bg)
	})
}

// After Release, Kill sends nothing: the caller may have reaped the
// leader, and the group's id may be another's.
func TestNoKillAfterRelease(t *testing.T) {
	cmd, bg := startGroup(t, "exit 0")
	g := Watch(cmd.Process.Pid)
	<-g.Exited()
	g.Release()
	cmd.Wait()
	g.Kill()
	time.Sleep(100 * time.Millisecond)
	if !alive(bg) {
		t.Error("Kill after Release signalled the group")
	}
}
