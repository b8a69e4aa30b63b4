package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/internal/hostproctest"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/structs"
)

// pausableProxy is an HTTP reverse proxy on loopback standing between an
// agent and a server: Pause cuts the agent off (the listener and every
// open connection close, new connections are refused), Resume listens
// again on the same address. The servers' own addresses in registration
// and heartbeat answers are rewritten to the proxy's, so the agent cannot
// learn a way around it.
type pausableProxy struct {
	t      *testing.T
	addr   string // host:port, stable across pauses
	target *url.URL
	rp     *httputil.ReverseProxy

	mu  sync.Mutex
	srv *http.Server
	// gate, while set, holds every request until it is closed (Release)
	gate chan struct{}
}

func newPausableProxy(t *testing.T, target string) *pausableProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pausableProxy{t: t, addr: ln.Addr().String(), target: u}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// let the transport negotiate (and undo) compression itself,
			// so that ModifyResponse sees plain JSON
			r.Out.Header.Del("Accept-Encoding")
		},
		FlushInterval:  -1, // blocking queries answer whenever they answer
		ModifyResponse: p.hideServers,
		ErrorLog:       log.New(io.Discard, "", 0), // paused connections fail by design
	}
	p.serve(ln)
	t.Cleanup(func() { p.Release(); p.Pause() })
	return p
}

// URL is the address to give the agent as its server.
func (p *pausableProxy) URL() string { return "http://" + p.addr }

func (p *pausableProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (p *pausableProxy) handle(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// Stall holds every request (open or new) until Release, without failing
// any: to the agent the servers look slow, not gone, as they do to an
// agent whose process or machine was suspended.
func (p *pausableProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate == nil {
		p.gate = make(chan struct{})
	}
}

// Release lets the held requests through.
func (p *pausableProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// Pause closes the listener and every connection through the proxy.
func (p *pausableProxy) Pause() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Resume listens again on the proxy's address (retrying briefly: the
// port was just released).
func (p *pausableProxy) Resume() {
	p.t.Helper()
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("proxy cannot listen again on %s: %v", p.addr, err)
}

// hideServers rewrites the Servers list of registration and heartbeat
// answers to the proxy's own address.
func (p *pausableProxy) hideServers(resp *http.Response) error {
	path := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK || !(strings.HasSuffix(path, "/heartbeat") || strings.HasSuffix(path, "/client/node/register")) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read %s answer: %w", path, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return fmt.Errorf("decode %s answer: %w", path, err)
	}
	if _, ok := fields["Servers"]; ok {
		fields["Servers"], _ = json.Marshal([]string{p.addr})
		if body, err = json.Marshal(fields); err != nil {
			return fmt.Errorf("encode %s answer: %w", path, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// processGone reports whether no process has the PID (a zombie still
// counts as present: its parent has not reaped it).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("task PID file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("task PID file %s holds %q", path, b)
	}
	return pid
}

// An agent cut off from the servers for less than its group's
// disconnect.lost_after is marked disconnected, its allocation unknown,
// and a replacement runs elsewhere; when it gets through again the
// servers see the original running and stop the replacement.
func TestAgentDisconnectedAllocKeptOnReconnect(t *testing.T) {
	testDisconnectReconnect(t, (*pausableProxy).Pause, (*pausableProxy).Resume)
}

// The same when the agent saw no failure at all: its requests were only
// held (a suspended process or machine, a stalled network) until the
// servers had marked the node disconnected; its next heartbeat then
// "succeeds" and the servers must still hear the original is running.
func TestAgentStalledAllocKeptOnReconnect(t *testing.T) {
	testDisconnectReconnect(t, (*pausableProxy).Stall, (*pausableProxy).Release)
}

// testDisconnectReconnect runs the scenario with cut and restore as the
// ways the agent loses and regains contact through its proxy.
func testDisconnectReconnect(t *testing.T, cut, restore func(*pausableProxy)) {
	const lostAfter = 30 * time.Second
	c := cluster(t, 1)
	cl := apiClient(t, c)
	proxy := newPausableProxy(t, c.HTTPAddrs()[0])

	// agent A reaches the servers only through the proxy: no gossip
	dA := hostproctest.New("raw_exec")
	cfgA := agentConfig(t, c, "agent-a", t.TempDir(), dA)
	cfgA.Join, cfgA.GossipPort, cfgA.Servers = nil, -1, []string{proxy.URL()}
	a := startAgent(t, cfgA)

	// the job is placed while A is the only node
	job := testJob("web", structs.JobTypeService, 1,
		shTask("web", `echo $$ > "$NOMAD_ALLOC_DIR/pid"; exec sleep 120`))
	job.TaskGroups[0].Disconnect = &structs.DisconnectStrategy{LostAfter: lostAfter, Replace: true}
	if _, _, err := cl.Jobs().Register(job, nil); err != nil {
		t.Fatal(err)
	}
	var origID string
	servertest.WaitFor(t, 20*time.Second, "original alloc running on A", func() bool {
		al := jobAllocs(t, cl, job.ID)
		if len(al) == 1 && al[0].NodeID == a.NodeID() && al[0].ClientStatus == structs.AllocClientStatusRunning {
			origID = al[0].ID
			return true
		}
		return false
	})
	origTask := origID + "/web"

	dirB := t.TempDir()
	dB := hostproctest.New("raw_exec")
	b := startAgent(t, agentConfig(t, c, "agent-b", dirB, dB))

	cut(proxy)
	cutAt := time.Now()
	servertest.WaitFor(t, 15*time.Second, "A disconnected and its alloc unknown", func() bool {
		n, _, err := cl.Nodes().Info(a.NodeID(), nil)
		if err != nil || n.Status != structs.NodeStatusDisconnected {
			return false
		}
		orig, _, err := cl.Allocations().Info(origID, nil)
		return err == nil && orig.ClientStatus == structs.AllocClientStatusUnknown
	})
	t.Logf("A disconnected %s after the cut", time.Since(cutAt).Round(time.Millisecond))
	var replID string
	servertest.WaitFor(t, 15*time.Second, "replacement running on B", func() bool {
		for _, al := range jobAllocs(t, cl, job.ID) {
			if al.ID != origID && al.NodeID == b.NodeID() && al.ClientStatus == structs.AllocClientStatusRunning {
				replID = al.ID
				return true
			}
		}
		return false
	})
	repl, _, err := cl.Allocations().Info(replID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if repl.PreviousAllocation != origID {
		t.Errorf("replacement's previous alloc %q, want the original %s", repl.PreviousAllocation, origID)
	}
	replPID := readPID(t, filepath.Join(dirB, "alloc", replID, "alloc", "pid"))
	// still within the window: A is disconnected, not down, and its task
	// was left alone
	if n, _, err := cl.Nodes().Info(a.NodeID(), nil); err != nil || n.Status != structs.NodeStatusDisconnected {
		t.Fatalf("A's node during the window: %v (err %v), want disconnected", n, err)
	}
	if ids := dA.TaskIDs(); len(ids) != 1 || ids[0] != origTask {
		t.Fatalf("A's driver runs %v during the cut, want only %s", ids, origTask)
	}

	restore(proxy)
	back := time.Now()
	var seen string // the servers' view at the last look, for a failure
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", seen)
		}
	}()
	servertest.WaitFor(t, 15*time.Second, "A ready, original running, replacement stopped", func() bool {
		n, _, err := cl.Nodes().Info(a.NodeID(), nil)
		orig, _, err2 := cl.Allocations().Info(origID, nil)
		r, _, err3 := cl.Allocations().Info(replID, nil)
		if err = errors.Join(err, err2, err3); err != nil {
			seen = err.Error()
			return false
		}
		seen = fmt.Sprintf("node A %s; original %s/%s; replacement %s/%s",
			n.Status, orig.DesiredStatus, orig.ClientStatus, r.DesiredStatus, r.ClientStatus)
		return n.Status == structs.NodeStatusReady &&
			orig.ClientStatus == structs.AllocClientStatusRunning && orig.DesiredStatus == structs.AllocDesiredStatusRun &&
			r.DesiredStatus == structs.AllocDesiredStatusStop && r.ClientStatus == structs.AllocClientStatusComplete
	})
	t.Logf("reconciled %s after contact came back (%s after the cut, window %s)",
		time.Since(back).Round(time.Millisecond), time.Since(cutAt).Round(time.Millisecond), lostAfter)
	if time.Since(cutAt) >= lostAfter {
		t.Fatalf("the check ran past the disconnect window; the result says nothing")
	}
	servertest.WaitFor(t, 10*time.Second, "no task of the job left on B", func() bool {
		return len(dB.TaskIDs()) == 0 && processGone(replPID)
	})

	// settled: nothing else is placed, the original was never restarted
	time.Sleep(time.Second)
	running := 0
	for _, al := range jobAllocs(t, cl, job.ID) {
		if al.ID != origID && al.ID != replID {
			t.Errorf("unexpected alloc %s on node %s (%s/%s)", al.ID, al.NodeID, al.DesiredStatus, al.ClientStatus)
		}
		if al.ClientStatus == structs.AllocClientStatusRunning {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d allocs running, want only the original", running)
	}
	if ids := dA.TaskIDs(); len(ids) != 1 || ids[0] != origTask || dA.Starts(origTask) != 1 {
		t.Errorf("A's driver runs %v, original started %d times; want the original, started once", ids, dA.Starts(origTask))
	}
	if len(dB.TaskIDs()) != 0 {
		t.Errorf("B's driver still runs %v", dB.TaskIDs())
	}
}
