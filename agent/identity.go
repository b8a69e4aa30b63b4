package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Identity files in the data dir; the node keeps its ID (and so its
// allocations) across agent restarts.
const (
	nodeIDFile     = "node-id"
	nodeSecretFile = "node-secret"
)

func loadIdentity(dir string) (id, secret string, err error) {
	if id, err = loadOrCreate(filepath.Join(dir, nodeIDFile)); err != nil {
		return "", "", fmt.Errorf("node id: %w", err)
	}
	if secret, err = loadOrCreate(filepath.Join(dir, nodeSecretFile)); err != nil {
		return "", "", fmt.Errorf("node secret: %w", err)
	}
	return id, secret, nil
}

func loadOrCreate(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v := newUUID()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var lookPath = exec.LookPath
