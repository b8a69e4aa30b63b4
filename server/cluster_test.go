package server_test

import (
	"fmt"

	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/servertest"
	"github.com/berth-dev/berth/server"
	"github.com/berth-dev/berth/structs"
)

func testJob(id string) *structs.Job {
	return &structs.Job{
		ID:   id,
		Name: id,
		Type: structs.JobTypeService,
		TaskGroups: []*structs.TaskGroup{{
			Name:  "web",
			Count: 1,
			Tasks: []*structs.Task{{Name: "app", Driver: "docker", Config: map[string]any{"image": "redis:7"}}},
		}},
	}
}

func client(t testing.TB, s *server.Server) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: "http://" + s.HTTPAddr(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// registerWithRetry keeps trying servers in turn until one acknowledges
// the registration, as a client riding out a failover would.
func registerWithRetry(t testing.TB, c *servertest.Cluster, id string, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	var lastErr error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		servers := c.Servers()
		s := servers[attempt%len(servers)]
		if s == nil {
			continue
		}
		if _, _, err := client(t, s).Jobs().Register(testJob(id), nil); err == nil {
			return nil
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("register %s: not acknowledged within %s: %w", id, budget, lastErr)
}

// assertJobsEverywhere checks that every running server's own state holds
// every acknowledged job, waiting for followers to catch up.
func assertJobsEverywhere(t *testing.T, c *servertest.Cluster, ids []string) {
	t.Helper()
	for _, s := range c.Servers() {
		if s == nil {
			continue
		}
		servertest.WaitFor(t, 10*time.Second, fmt.Sprintf("%s to hold all %d jobs", s.Name(), len(ids)), func() bool {
			for _, id := range ids {
				if j, _ := s.State().JobByID(nil, structs.DefaultNamespace, id); j == nil {
					return false
				}
			}
			return true
		})
	}
}

func TestClusterLeaderFailover(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	leaderIdx, leader := c.WaitForLeader(10 * time.Second)

	// Writes sent to a follower are forwarded to the leader.
	follower := c.Server((leaderIdx + 1) % 3)
	var acked []string
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("before-%d", i)
		if _, _, err := client(t, follower).Jobs().Register(testJob(id), nil); err != nil {
			if api.StatusCode(err) != 503 {
				t.Fatalf("register through follower: %v", err)
			}
			// leadership moved under load: retry like any client
			if err := registerWithRetry(t, c, id, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		acked = append(acked, id)
	}
	assertJobsEverywhere(t, c, acked)

	oldLeaderAddr := leader.RaftAddr()
	c.Kill(leaderIdx)
	newIdx, newLeader := c.WaitForLeader(10 * time.Second)
	if newLeader.RaftAddr() == oldLeaderAddr {
		t.Fatalf("killed leader still leads")
	}
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("after-%d", i)
		if err := registerWithRetry(t, c, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}

	// The old leader comes back on its data dir as a follower and catches up.
	rejoined := c.Restart(leaderIdx)
	_, l := c.WaitForLeader(10 * time.Second)
	if l.RaftAddr() == rejoined.RaftAddr() && newLeader.IsLeader() {
		t.Fatalf("two leaders")
	}
	_ = newIdx
	assertJobsEverywhere(t, c, acked)
}

func TestClusterRollingRestartLosesNoWrite(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	c.WaitForLeader(10 * time.Second)
	before, err := client(t, c.Server(0)).Operator().RaftGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		acked  []string
		failed []error
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("job-%04d", i)
			// every write must get through within the budget: the cluster
			// stays available while one server at a time restarts
			err := registerWithRetry(t, c, id, 15*time.Second)
			mu.Lock()
			if err != nil {
				failed = append(failed, err)
			} else {
				acked = append(acked, id)
			}
			mu.Unlock()
		}
	}()

	for i := 0; i < 3; i++ {
		c.Restart(i)
		c.WaitForLeader(15 * time.Second)
		// let the restarted server catch up before taking the next one down
		servertest.WaitFor(t, 15*time.Second, "restarted server to catch up", func() bool {
			_, l := c.Leader()
			s := c.Server(i)
			return l != nil && s != nil && s.State().LatestIndex() >= l.State().LatestIndex()-1
		})
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("writer did not stop")
	}

	mu.Lock()
	defer mu.Unlock()
	for _, err := range failed {
		t.Error(err)
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	t.Logf("%d writes acknowledged during the rolling restart", len(acked))
	assertJobsEverywhere(t, c, acked)

	// Restarting never bootstraps again: the configuration is unchanged.
	after, err := client(t, c.Server(0)).Operator().RaftGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := peerIDs(after), peerIDs(before); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("raft peers changed across restarts: %v, was %v", got, want)
	}
}

func peerIDs(cfg *structs.RaftConfiguration) map[string]bool {
	ids := map[string]bool{}
	for _, s := range cfg.Servers {
		ids[s.ID] = s.Voter
	}
	return ids
}

func TestClusterReplaceServerWithLostDataDir(t *testing.T) {
	c := servertest.NewCluster(t, 3)
	c.WaitForLeader(10 * time.Second)
	if err := registerWithRetry(t, c, "before", 10*time.Second); err != nil {
		t.Fatal(err)
	}

	lost := c.Server(2)
	lostID := lost.NodeID()
	c.Kill(2)
	_, leader := c.WaitForLeader(10 * time.Second)
	if err := client(t, leader).Operator().RaftRemovePeerByID(lostID, nil); err != nil {
		t.Fatalf("remove-peer: %v", err)
	}
	cfg, err := client(t, leader).Operator().RaftGetConfiguration(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 2 || peerIDs(cfg)[lostID] {
		t.Fatalf("after remove-peer: %+v", cfg.Servers)
	}

	// A fresh server (new data dir, so a new node ID) joins and is added.
	fresh := c.Replace(2, "server-3-new", t.TempDir())
	if fresh.NodeID() == lostID {
		t.Fatalf("fresh server reused the lost node ID")
	}
	servertest.WaitFor(t, 15*time.Second, "fresh server to become a voter", func() bool {
		_, l := c.Leader()
		if l == nil {
			return false
		}
		cfg, err := client(t, l).Operator().RaftGetConfiguration(nil)
		return err == nil && len(cfg.Servers) == 3 && peerIDs(cfg)[fresh.NodeID()]
	})
	if err := registerWithRetry(t, c, "after", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	assertJobsEverywhere(t, c, []string{"before", "after"})
}
