// Package server is a berth control-plane peer: Raft with a BoltDB log,
// the FSM, gossip membership, leader duties and the HTTP API.
package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/fsm"
	"github.com/berth-dev/berth/fsm/state"
)

// Sentinel errors of the server.
var (
	ErrNoLeader       = errors.New("no cluster leader")
	ErrNotLeader      = errors.New("not the leader")
	ErrShutdown       = errors.New("server is shutting down")
	ErrLeaderNotReady = errors.New("leader is still catching up")
	ErrPeersTooOld    = errors.New("not every server supports this yet")
)

// Server is one control-plane peer.
type Server struct {
	config *Config
	// baseLogger carries the node name; each component adds its own.
	baseLogger *slog.Logger
	logger     *slog.Logger
	nodeID     string
	name       string

	advertiseIP string
	httpAddr    string
	raftAddr    string
	gossipAddr  string

	fsm           *fsm.FSM
	raft          *raft.Raft
	raftTransport *raft.NetworkTransport
	raftStores    *raftStores
	raftNotifyCh  chan bool

	gossip    *memberlist.Memberlist
	members   *memberTable
	memberCh  chan struct{}
	startedAt time.Time

	httpListener net.Listener
	httpServer   *http.Server
	forwarder    *http.Client

	leaderReady atomic.Bool
	// nodeLists shares node lists between scheduler views.
	nodeLists nodeListCache
	// heartbeats are the leader's per-node TTL timers (heartbeat.go).
	heartbeats heartbeatTimers
	// ipam holds node subnets chosen but not yet applied (ipam.go).
	ipam ipamReservations

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	wg           sync.WaitGroup
}

// New starts a server: it opens its data dir, listens on its ports, starts
// Raft and gossip, joins the given peers and serves HTTP.
func New(cfg *Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	applyMemoryLimit(cfg.MemoryLimit, logger)
	nodeID, err := loadOrCreateNodeID(filepath.Join(cfg.DataDir, "node-id"))
	if err != nil {
		return nil, err
	}
	s := &Server{
		config:     cfg,
		nodeID:     nodeID,
		members:    newMemberTable(),
		memberCh:   make(chan struct{}, 1),
		shutdownCh: make(chan struct{}),
		startedAt:  time.Now(),
		forwarder:  &http.Client{Timeout: 10 * time.Minute},
	}
	s.name = cfg.NodeName
	if s.name == "" {
		host, _ := os.Hostname()
		s.name = fmt.Sprintf("%s-%s", host, nodeID[:8])
	}
	s.baseLogger = logger.With("node", s.name)
	s.logger = s.baseLogger.With("component", "server")
	if s.advertiseIP, err = advertiseIP(cfg); err != nil {
		return nil, err
	}

	ok := false
	defer func() {
		if !ok {
			s.Kill()
		}
	}()
	if err := s.setupHTTPListener(); err != nil {
		return nil, err
	}
	if err := s.setupRaft(); err != nil {
		return nil, err
	}
	if err := s.setupGossip(); err != nil {
		return nil, err
	}
	s.startBackground()
	ok = true
	s.logger.Info("server started", "node_id", nodeID, "http", s.httpAddr, "raft", s.raftAddr, "gossip", s.gossipAddr)
	return s, nil
}

func (s *Server) startBackground() {
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.serveHTTP() }()
	go func() { defer s.wg.Done(); s.monitorLeadership() }()
	go func() { defer s.wg.Done(); s.bootstrapLoop() }()
	if len(s.config.Join) > 0 {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.joinLoop(s.config.Join) }()
	}
}

// NodeID is the server's stable ID (its Raft server ID).
func (s *Server) NodeID() string { return s.nodeID }

// Name is the server's gossip name.
func (s *Server) Name() string { return s.name }

// HTTPAddr is the advertised host:port of the HTTP API.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// RaftAddr is the advertised host:port of the Raft transport.
func (s *Server) RaftAddr() string { return s.raftAddr }

// GossipAddr is the advertised host:port of the gossip pool.
func (s *Server) GossipAddr() string { return s.gossipAddr }

// State returns the live state store.
func (s *Server) State() *state.StateStore { return s.fsm.State() }

// IsLeader reports whether this server leads and has caught up.
func (s *Server) IsLeader() bool {
	return s.raft != nil && s.raft.State() == raft.Leader && s.leaderReady.Load()
}

// Leader returns the leader's Raft address and server ID, if known.
func (s *Server) Leader() (raft.ServerAddress, raft.ServerID) {
	if s.raft == nil {
		return "", ""
	}
	return s.raft.LeaderWithID()
}

// Shutdown leaves the gossip pool gracefully and stops everything.
func (s *Server) Shutdown() error {
	if s.gossip != nil {
		if err := s.gossip.Leave(2 * time.Second); err != nil {
			s.logger.Warn("gossip leave failed", "error", err)
		}
	}
	s.Kill()
	return nil
}

// Kill stops the server without telling anyone, as a crash would (tests
// use it; a real crash is kill -9). The data dir stays usable.
func (s *Server) Kill() {
	s.shutdownOnce.Do(func() {
		close(s.shutdownCh)
		if s.httpServer != nil {
			s.httpServer.Close()
		} else if s.httpListener != nil {
			s.httpListener.Close()
		}
		if s.gossip != nil {
			s.gossip.Shutdown()
		}
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				s.logger.Warn("raft shutdown", "error", err)
			}
		}
		if s.raftTransport != nil {
			s.raftTransport.Close()
		}
		if s.raftStores != nil {
			s.raftStores.Close()
		}
		s.wg.Wait()
		s.logger.Info("server stopped")
	})
}

// ShutdownCh closes when the server stops.
func (s *Server) ShutdownCh() <-chan struct{} { return s.shutdownCh }

func loadOrCreateNodeID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 36 {
			return "", fmt.Errorf("node ID file %s is corrupt: %q", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node ID: %w", err)
	}
	id := generateUUID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node ID: %w", err)
	}
	return id, nil
}

func generateUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func advertiseIP(cfg *Config) (string, error) {
	if cfg.AdvertiseAddr != "" {
		return cfg.AdvertiseAddr, nil
	}
	if ip := net.ParseIP(cfg.BindAddr); ip != nil && !ip.IsUnspecified() {
		return cfg.BindAddr, nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return "", fmt.Errorf("bind address is %s and no private IP to advertise was found; set an advertise address", cfg.BindAddr)
	}
	return ip, nil
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// FatalError is the error that made the FSM stop, if any.
func (s *Server) FatalError() error { return s.fsm.Fatal() }

// WaitForLeader blocks until this server knows a ready leader, or fails
// after timeout.
func (s *Server) WaitForLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if addr, _ := s.Leader(); addr != "" && (s.raft.State() != raft.Leader || s.leaderReady.Load()) {
			return nil
		}
		select {
		case <-s.shutdownCh:
			return ErrShutdown
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w after %s", ErrNoLeader, timeout)
}
