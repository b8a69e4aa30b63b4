package corpus

import (
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/containerdtest"
	"github.com/berth-dev/berth/internal/netlab"
)

// Environment of the re-executed test process that runs inside its own
// network (and mount) namespace.
const (
	netnsChildEnv = "BERTH_CORPUS_IN_NETNS"
	berthBinEnv   = "BERTH_CORPUS_BINARY"
)

// inOwnNetns re-runs the calling test in a child process with fresh
// network and mount namespaces, so the bridge, routes and nftables table
// the network plugin installs for bridge-mode groups never touch the
// host's network, and every mount disappears with the child. It returns
// true in the child, where the test body runs; in the parent it waits for
// the child and reports its result.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if netlab.IsRerunChild(t, netnsChildEnv) {
		// the parent's binary: used, not removed by this process's TestMain
		if b := os.Getenv(berthBinEnv); b != "" {
			berthOnce.Do(func() { berthBin = b })
			t.Cleanup(func() { berthBin = "" })
		}
		return true
	}
	containerdtest.Require(t)
	netlab.RequireTools(t, "ip", "nft")
	requireCorpus(t)
	bin := berthBinary(t)
	netlab.RerunInOwnNetns(t, netnsChildEnv, 3*time.Minute, berthBinEnv+"="+bin)
	return false
}
