package agent

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/api"
)

// serverList is the agent's view of the servers' HTTP addresses: the
// configured ones, those gossip reports and those the servers list in
// heartbeat answers. Calls go to the current one; on failure the agent
// moves to the next.
type serverList struct {
	mu      sync.Mutex
	addrs   []string
	cur     int
	clients map[string]*api.Client
}

func newServerList(addrs []string) *serverList {
	s := &serverList{clients: map[string]*api.Client{}}
	s.merge(addrs)
	return s
}

func normalize(addr string) string {
	addr = strings.TrimSuffix(addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr
}

// merge adds addresses not yet known.
func (s *serverList) merge(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		if a == "" {
			continue
		}
		a = normalize(a)
		if !slices.Contains(s.addrs, a) {
			s.addrs = append(s.addrs, a)
		}
	}
}

// remove forgets an address gossip says is gone (never the last one).
func (s *serverList) remove(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr = normalize(addr)
	if i := slices.Index(s.addrs, addr); i >= 0 && len(s.addrs) > 1 {
		s.addrs = slices.Delete(s.addrs, i, i+1)
		if s.cur >= len(s.addrs) {
			s.cur = 0
		}
	}
}

func (s *serverList) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.addrs)
}

func (s *serverList) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.addrs)
}

var errNoServers = errors.New("no servers known")

// client returns a client for the current server.
func (s *serverList) client() (*api.Client, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) == 0 {
		return nil, "", errNoServers
	}
	addr := s.addrs[s.cur%len(s.addrs)]
	c := s.clients[addr]
	if c == nil {
		var err error
		if c, err = api.NewClient(&api.Config{Address: addr}); err != nil {
			return nil, "", err
		}
		s.clients[addr] = c
	}
	return c, addr, nil
}

// failed moves on from addr if it is still the current server.
func (s *serverList) failed(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) > 0 && s.addrs[s.cur%len(s.addrs)] == addr {
		s.cur = (s.cur + 1) % len(s.addrs)
	}
}

// retryable reports errors worth trying on another server: the
// connection failed or the server could not answer (no leader, 5xx).
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	code := api.StatusCode(err)
	return code == 0 || code >= 500
}

// call runs fn against the current server, moving through the others on
// retryable errors (each server at most once).
func (a *Agent) call(fn func(c *api.ClientNodes) error) error {
	var err error
	n := max(a.servers.len(), 1)
	for i := 0; i < n; i++ {
		c, addr, cerr := a.servers.client()
		if cerr != nil {
			return cerr
		}
		err = fn(c.ClientNodes())
		if !retryable(err) || a.ctx.Err() != nil {
			return err
		}
		a.logger.Debug("server call failed, trying the next", "server", addr, "error", err)
		a.servers.failed(addr)
	}
	return err
}
