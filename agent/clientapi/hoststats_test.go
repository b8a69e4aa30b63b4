package clientapi

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/agent/hoststats"
	"github.com/berth-dev/berth/api"
)

func hostStatsServer(t *testing.T, opts ...Option) *httptest.Server {
	t.Helper()
	return loopbackServer(t, Handler(&fakeAllocs{logDir: t.TempDir()}, nil, opts...))
}

// memTotalBytes reads MemTotal from /proc/meminfo without the package
// under test.
func memTotalBytes(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// TestNomadClientHostStats reads this host's real stats with Nomad's own
// client, as `nomad node status -stats` does.
func TestNomadClientHostStats(t *testing.T) {
	want := memTotalBytes(t)
	dataDir := t.TempDir()
	srv := hostStatsServer(t, WithHostStats(hoststats.New(hoststats.Options{DataDir: dataDir}), "node-1"))
	before := time.Now()
	s, err := nomadClient(t, srv.URL).Nodes().Stats("node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory == nil || s.Memory.Total != want || s.Memory.Used > s.Memory.Total || s.Memory.Available == 0 {
		t.Fatalf("memory %+v, MemTotal %d bytes", s.Memory, want)
	}
	if len(s.CPU) == 0 || !strings.HasPrefix(s.CPU[0].CPU, "cpu") {
		t.Fatalf("cpu %+v", s.CPU)
	}
	for _, c := range s.CPU {
		if sum := c.User + c.System + c.Idle; c.Idle < 0 || sum > 100.0001 {
			t.Fatalf("cpu %+v sums to %v%%", c, sum)
		}
	}
	if s.Uptime == 0 {
		t.Fatal("uptime 0")
	}
	a := s.AllocDirStats
	if a == nil || a.Size == 0 || a.Mountpoint == "" || a.UsedPercent <= 0 || a.UsedPercent > 100 {
		t.Fatalf("alloc dir stats %+v", a)
	}
	// the data dir's filesystem is among the disks, unless it is a
	// memory filesystem (a TMPDIR on tmpfs), which disk stats leave out
	if strings.HasPrefix(a.Device, "/dev/") {
		found := false
		for _, d := range s.DiskStats {
			found = found || (d.Device == a.Device && d.Size == a.Size)
		}
		if !found {
			t.Fatalf("no disk entry for %s (%s) among %d disks", a.Device, a.Mountpoint, len(s.DiskStats))
		}
	} else {
		t.Logf("data dir %s is on %s (%s): not a block device", dataDir, a.Device, a.Mountpoint)
	}
	// Timestamp is not in Nomad's client type: read it with berth's
	bc, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := bc.Nodes().Stats("node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts := time.Unix(0, bs.Timestamp); ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Fatalf("timestamp %v, requested at %v", ts, before)
	}
}

type failingHostStats struct{}

func (failingHostStats) Collect(context.Context) (*api.HostStats, error) {
	return nil, errors.New("proc exploded")
}

func TestHostStatsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		url  string
		code int
	}{
		{"not configured", nil, "/v1/client/stats", http.StatusNotImplemented},
		{"another node", []Option{WithHostStats(failingHostStats{}, "node-1")}, "/v1/client/stats?node_id=node-2", http.StatusNotFound},
		{"collector fails", []Option{WithHostStats(failingHostStats{}, "node-1")}, "/v1/client/stats?node_id=node-1", http.StatusInternalServerError},
		{"collector fails, no node_id", []Option{WithHostStats(failingHostStats{}, "node-1")}, "/v1/client/stats", http.StatusInternalServerError},
	} {
		srv := hostStatsServer(t, tc.opts...)
		resp, err := http.Get(srv.URL + tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
}
