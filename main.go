// Command berth is a Nomad-compatible container orchestrator: control-plane
// server, worker agent and command-line client in one binary.
package main

import (
	"os"

	"github.com/berth-dev/berth/command"
)

func main() {
	os.Exit(command.Execute(os.Args[1:]))
}
