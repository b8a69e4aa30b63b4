package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/berth-dev/berth/fsm"
)

const (
	raftDirName       = "raft"
	raftLogCacheSize  = 64
	snapshotsRetained = 2
)

// raftStores are the durable parts of Raft: the BoltDB log/stable store.
type raftStores struct {
	bolt *raftboltdb.BoltStore
}

func (r *raftStores) Close() {
	if r.bolt != nil {
		r.bolt.Close()
	}
}

func (s *Server) setupRaft() error {
	cfg := s.config
	var err error
	s.fsm, err = fsm.New(fsm.Config{
		Logger: s.baseLogger,
		OnFatal: func(err error) {
			// Apply runs on Raft's goroutine; shutting Raft down from it
			// would wait on itself.
			go func() {
				s.logger.Error("stopping server: the FSM cannot go on", "error", err)
				s.Kill()
			}()
		},
	})
	if err != nil {
		return err
	}

	raftDir := filepath.Join(cfg.DataDir, raftDirName)
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("create raft dir: %w", err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	s.raftStores = &raftStores{bolt: bolt}
	logStore, err := raft.NewLogCache(raftLogCacheSize, bolt)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, snapshotsRetained, newHCLog(s.baseLogger, "raft"))
	if err != nil {
		return fmt.Errorf("open raft snapshots: %w", err)
	}

	bind := hostPort(cfg.BindAddr, cfg.RaftPort)
	var advertise net.Addr
	if cfg.RaftPort != 0 {
		advertise = &net.TCPAddr{IP: net.ParseIP(s.advertiseIP), Port: cfg.RaftPort}
	} else if ip := net.ParseIP(cfg.BindAddr); ip.IsUnspecified() {
		return errors.New("a random raft port needs a specific bind address")
	}
	s.raftTransport, err = raft.NewTCPTransportWithLogger(bind, advertise, 3, 10*time.Second, newHCLog(s.baseLogger, "raft-net"))
	if err != nil {
		return fmt.Errorf("raft transport on %s: %w", bind, err)
	}
	s.raftAddr = string(s.raftTransport.LocalAddr())

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.nodeID)
	rc.Logger = newHCLog(s.baseLogger, "raft")
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.RaftLeaderLeaseTimeout
	rc.CommitTimeout = cfg.RaftCommitTimeout
	if cfg.RaftSnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.RaftSnapshotThreshold
	}
	s.raftNotifyCh = make(chan bool, 16)
	rc.NotifyCh = s.raftNotifyCh

	s.raft, err = raft.NewRaft(rc, s.fsm, logStore, bolt, snaps, s.raftTransport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

// hasRaftState reports whether this server has ever been part of a Raft
// configuration (bootstrapped, or added by a leader).
func (s *Server) hasRaftState() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return len(f.Configuration().Servers) > 0
}

// raftApply commits a command through Raft and returns its log index and
// the FSM's result.
func (s *Server) raftApply(t fsm.MessageType, payload any) (uint64, any, error) {
	if err := s.checkPeersSupport(t); err != nil {
		return 0, nil, err
	}
	buf, err := fsm.Encode(t, payload)
	if err != nil {
		return 0, nil, err
	}
	f := s.raft.Apply(buf, s.config.ApplyTimeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			// the entry never reached the log: safe to send again
			return 0, nil, fmt.Errorf("%w: %w: %v", ErrNotLeader, errNotApplied, err)
		case errors.Is(err, raft.ErrLeadershipLost):
			// the entry may or may not commit: the client must decide
			return 0, nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, nil, ErrShutdown
		}
		return 0, nil, fmt.Errorf("raft apply %s: %w", t, err)
	}
	if err, ok := f.Response().(error); ok {
		return f.Index(), nil, err
	}
	return f.Index(), f.Response(), nil
}
