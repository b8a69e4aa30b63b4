package clientapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/agent/logs"
	"github.com/berth-dev/berth/plugins/driver"
)

// fakeAllocs stands in for the agent: two allocations, one with a single
// task, one with two.
type fakeAllocs struct {
	logDir string

	mu       sync.Mutex
	signals  []string
	restarts []string
	resizes  []driver.TerminalSize
}

func (f *fakeAllocs) tasks(id string) ([]string, error) {
	switch id {
	case "single":
		return []string{"web"}, nil
	case "multi":
		return []string{"web", "sidecar"}, nil
	}
	return nil, fmt.Errorf("alloc %s: %w", id, ErrUnknownAlloc)
}

func (f *fakeAllocs) LogDir(id string) (string, error) {
	if _, err := f.tasks(id); err != nil {
		return "", err
	}
	return f.logDir, nil
}

func (f *fakeAllocs) TaskNames(id string) ([]string, error) { return f.tasks(id) }

// Exec runs a tiny "shell": it upper-cases stdin to stdout, reports on
// stderr and exits with the code given as the command's second word.
func (f *fakeAllocs) Exec(ctx context.Context, id, task string, opts *driver.ExecOptions) (int, error) {
	if opts.Command[0] == "fail" {
		return 0, errors.New("driver exploded")
	}
	if opts.Tty {
		select {
		case size := <-opts.Resize:
			f.mu.Lock()
			f.resizes = append(f.resizes, size)
			f.mu.Unlock()
		case <-time.After(5 * time.Second):
			return 0, errors.New("no resize received")
		}
	}
	data, err := io.ReadAll(opts.Stdin)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(opts.Stdout, "%s", strings.ToUpper(string(data)))
	fmt.Fprintf(opts.Stderr, "ran %s in %s/%s", strings.Join(opts.Command, " "), id, task)
	code := 0
	if len(opts.Command) > 1 {
		fmt.Sscanf(opts.Command[1], "%d", &code)
	}
	return code, nil
}

func (f *fakeAllocs) Stats(ctx context.Context, id string) (map[string]*driver.TaskResourceUsage, error) {
	return map[string]*driver.TaskResourceUsage{
		"web": {Timestamp: 100, CPU: driver.CPUUsage{Percent: 12.5, Measured: []string{"Percent"}}, Memory: driver.MemoryUsage{RSS: 1000, Measured: []string{"RSS"}},
			PIDs: map[string]*driver.TaskResourceUsage{"42": {Memory: driver.MemoryUsage{RSS: 10}}}},
		"sidecar": {Timestamp: 200, CPU: driver.CPUUsage{Percent: 2.5}, Memory: driver.MemoryUsage{RSS: 24}},
	}, nil
}

func (f *fakeAllocs) Signal(ctx context.Context, id, task, sig string) error {
	if sig == "SIGBOGUS" {
		return fmt.Errorf("signal %q: %w", sig, ErrBadRequest)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, id+"/"+task+"/"+sig)
	return nil
}

func (f *fakeAllocs) Restart(ctx context.Context, id, task string, all bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts = append(f.restarts, fmt.Sprintf("%s/%s/%v", id, task, all))
	return nil
}

// newServer serves the handler on 127.0.0.1. Nomad's client's node lookup
// (/v1/node/<id>) gets a 404, so it talks to this address directly.
func newServer(t *testing.T) (*httptest.Server, *fakeAllocs) {
	t.Helper()
	f := &fakeAllocs{logDir: t.TempDir()}
	mux := http.NewServeMux()
	mux.Handle("/v1/client/", Handler(f, nil))
	return loopbackServer(t, mux), f
}

// loopbackServer serves h on 127.0.0.1 (httptest's default may pick
// another address family) until the test ends.
func loopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func writeLog(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLogsPlainAndFrames(t *testing.T) {
	srv, f := newServer(t)
	writeLog(t, f.logDir, "web.stdout.0", "hello ")
	writeLog(t, f.logDir, "web.stdout.1", "world")
	writeLog(t, f.logDir, "web.stderr.0", "err")

	code, body := get(t, srv.URL+"/v1/client/fs/logs/single?type=stdout&plain=true")
	if code != 200 || body != "hello world" {
		t.Fatalf("plain: %d %q", code, body)
	}
	code, body = get(t, srv.URL+"/v1/client/fs/logs/multi?task=web&type=stdout&origin=end&offset=3&plain=true")
	if code != 200 || body != "rld" {
		t.Fatalf("origin end: %d %q", code, body)
	}
	code, body = get(t, srv.URL+"/v1/client/fs/logs/single?task=web&type=stderr")
	if code != 200 {
		t.Fatalf("frames: %d %q", code, body)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	var got bytes.Buffer
	for {
		var fr logs.StreamFrame
		if err := dec.Decode(&fr); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if fr.File != "alloc/logs/web.stderr.0" {
			t.Errorf("frame file %q", fr.File)
		}
		got.Write(fr.Data)
	}
	if got.String() != "err" {
		t.Fatalf("frames data %q", got.String())
	}
}

func TestLogsErrors(t *testing.T) {
	srv, _ := newServer(t)
	cases := map[string]int{
		"/v1/client/fs/logs/nope?type=stdout&task=web":               404,
		"/v1/client/fs/logs/single?type=stdout&task=db":              404,
		"/v1/client/fs/logs/multi?type=stdout":                       400,
		"/v1/client/fs/logs/single?type=stdin":                       400,
		"/v1/client/fs/logs/single?type=stdout&origin=middle":        400,
		"/v1/client/fs/logs/single?type=stdout&offset=-1":            400,
		"/v1/client/fs/logs/single?type=stdout&offset=abc":           400,
		"/v1/client/fs/logs/single?type=stdout&follow=maybe":         400,
		"/v1/client/allocation/nope/stats":                           404,
		"/v1/client/allocation/single/exec?task=web&command=[\"x\"]": 400, // not a websocket: upgrade refused
	}
	for path, want := range cases {
		if code, body := get(t, srv.URL+path); code != want {
			t.Errorf("%s: %d %q, want %d", path, code, body, want)
		}
	}
}

func TestLogsFollowWithHeartbeat(t *testing.T) {
	old := heartbeatInterval
	heartbeatInterval = 50 * time.Millisecond
	t.Cleanup(func() { heartbeatInterval = old })

	srv, f := newServer(t)
	writeLog(t, f.logDir, "web.stdout.0", "first\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/client/fs/logs/single?type=stdout&follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	var data strings.Builder
	heartbeats := 0
	appended := false
	for data.String() != "first\nsecond\n" || heartbeats == 0 {
		var fr logs.StreamFrame
		if err := dec.Decode(&fr); err != nil {
			t.Fatalf("decode after %q, %d heartbeats: %v", data.String(), heartbeats, err)
		}
		if fr.IsHeartbeat() {
			heartbeats++
		}
		data.Write(fr.Data)
		if !appended && data.String() == "first\n" {
			appended = true
			fh, err := os.OpenFile(filepath.Join(f.logDir, "web.stdout.0"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fh.WriteString("second\n")
			fh.Close()
		}
	}
}

func TestStatsSignalRestart(t *testing.T) {
	srv, f := newServer(t)
	code, body := get(t, srv.URL+"/v1/client/allocation/multi/stats")
	if code != 200 {
		t.Fatalf("stats %d %s", code, body)
	}
	var usage AllocResourceUsage
	if err := json.Unmarshal([]byte(body), &usage); err != nil {
		t.Fatal(err)
	}
	if usage.ResourceUsage.MemoryStats.RSS != 1024 || usage.ResourceUsage.CpuStats.Percent != 15 || usage.Timestamp != 200 {
		t.Fatalf("sum wrong: %+v %+v %d", usage.ResourceUsage.MemoryStats, usage.ResourceUsage.CpuStats, usage.Timestamp)
	}
	if usage.Tasks["web"].Pids["42"].MemoryStats.RSS != 10 || usage.Tasks["web"].ResourceUsage.CpuStats.Measured[0] != "Percent" {
		t.Fatalf("task usage wrong: %+v", usage.Tasks["web"])
	}

	put := func(path, body string) (int, string) {
		req, _ := http.NewRequest("PUT", srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/v1/client/allocation/multi/signal", `{"Task":"web","Signal":"SIGHUP"}`, 200},
		{"/v1/client/allocation/multi/signal", `{"Signal":"SIGUSR1"}`, 200},
		{"/v1/client/allocation/multi/signal", `{"Task":"db","Signal":"SIGHUP"}`, 404},
		{"/v1/client/allocation/multi/signal", `{"Task":"web","Signal":"SIGBOGUS"}`, 400},
		{"/v1/client/allocation/multi/signal", `{not json`, 400},
		{"/v1/client/allocation/nope/signal", `{"Signal":"SIGHUP"}`, 404},
		{"/v1/client/allocation/multi/restart", `{"TaskName":"sidecar"}`, 200},
		{"/v1/client/allocation/multi/restart", `{"AllTasks":true}`, 200},
		{"/v1/client/allocation/multi/restart", `{"TaskName":"web","AllTasks":true}`, 400},
		{"/v1/client/allocation/nope/restart", `{}`, 404},
	} {
		if code, body := put(c.path, c.body); code != c.want {
			t.Errorf("%s %s: %d %q, want %d", c.path, c.body, code, body, c.want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.signals, ",") != "multi/web/SIGHUP,multi//SIGUSR1" {
		t.Errorf("signals %v", f.signals)
	}
	if strings.Join(f.restarts, ",") != "multi/sidecar/false,multi//true" {
		t.Errorf("restarts %v", f.restarts)
	}
}

func dialExec(t *testing.T, srv *httptest.Server, alloc string, q url.Values) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/client/allocation/" + alloc + "/exec?" + q.Encode()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(u, nil)
}

func TestExecWebsocket(t *testing.T) {
	srv, f := newServer(t)
	q := url.Values{"task": {"web"}, "tty": {"true"}, "command": {`["sh","7"]`}}
	conn, _, err := dialExec(t, srv, "multi", q)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	send := func(v ExecStreamingInput) {
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(ExecStreamingInput{}) // heartbeat
	send(ExecStreamingInput{TTYSize: &TerminalSize{Height: 40, Width: 120}})
	send(ExecStreamingInput{Stdin: &ExecStreamingIOOperation{Data: []byte("hello ")}})
	send(ExecStreamingInput{Stdin: &ExecStreamingIOOperation{Data: []byte("exec")}})
	send(ExecStreamingInput{Stdin: &ExecStreamingIOOperation{Close: true}})
	var stdout, stderr strings.Builder
	exit := -1
	for exit < 0 {
		var out ExecStreamingOutput
		if err := conn.ReadJSON(&out); err != nil {
			t.Fatalf("read: %v (stdout %q)", err, stdout.String())
		}
		switch {
		case out.Stdout != nil:
			stdout.Write(out.Stdout.Data)
		case out.Stderr != nil:
			stderr.Write(out.Stderr.Data)
		case out.Exited && out.Result != nil:
			exit = out.Result.ExitCode
		}
	}
	if stdout.String() != "HELLO EXEC" || stderr.String() != "ran sh 7 in multi/web" || exit != 7 {
		t.Fatalf("stdout %q stderr %q exit %d", stdout.String(), stderr.String(), exit)
	}
	f.mu.Lock()
	if len(f.resizes) != 1 || f.resizes[0] != (driver.TerminalSize{Height: 40, Width: 120}) {
		t.Errorf("resizes %v", f.resizes)
	}
	f.mu.Unlock()
	// The server closes normally after the exit frame.
	_, _, err = conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after exit: %v", err)
	}
}

func TestExecErrors(t *testing.T) {
	srv, _ := newServer(t)
	for _, c := range []struct {
		alloc string
		q     url.Values
		want  int
	}{
		{"nope", url.Values{"task": {"web"}, "command": {`["sh"]`}}, 404},
		{"multi", url.Values{"task": {"db"}, "command": {`["sh"]`}}, 404},
		{"multi", url.Values{"command": {`["sh"]`}}, 400},
		{"multi", url.Values{"task": {"web"}, "command": {`sh`}}, 400},
		{"multi", url.Values{"task": {"web"}, "command": {`[]`}}, 400},
		{"multi", url.Values{"task": {"web"}, "tty": {"x"}, "command": {`["sh"]`}}, 400},
	} {
		_, resp, err := dialExec(t, srv, c.alloc, c.q)
		if err == nil || resp == nil || resp.StatusCode != c.want {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Errorf("%s %v: status %d err %v, want %d", c.alloc, c.q, code, err, c.want)
		}
	}
	// A driver error after the upgrade is a close frame carrying the text.
	conn, _, err := dialExec(t, srv, "single", url.Values{"task": {"web"}, "command": {`["fail"]`}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr || ce.Text != "driver exploded" {
		t.Fatalf("err = %v", err)
	}
}
