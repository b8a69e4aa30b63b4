package exec

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// defaultPath is given to a task whose env has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// taskEnv is the task's environment as "K=V" strings: exactly the agent's
// env, plus PATH when it has none. The plugin's own environment never
// leaks into the task.
func taskEnv(env map[string]string) []string {
	out := make([]string, 0, len(env)+1)
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	if _, ok := env["PATH"]; !ok {
		out = append(out, "PATH="+defaultPath)
	}
	sort.Strings(out)
	return out
}

func envPath(env map[string]string) string {
	if p, ok := env["PATH"]; ok {
		return p
	}
	return defaultPath
}

// resolveHostCommand finds command as the task would: a bare name in the
// task's PATH, a relative path under the task dir, an absolute path as is.
func resolveHostCommand(command, taskDir string, env map[string]string) (string, error) {
	if filepath.IsAbs(command) {
		return command, checkExecutable(command)
	}
	if strings.Contains(command, "/") {
		p := filepath.Join(taskDir, command)
		return p, checkExecutable(p)
	}
	for _, dir := range filepath.SplitList(envPath(env)) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(taskDir, dir)
		}
		p := filepath.Join(dir, command)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in the task's PATH %q", command, envPath(env))
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("command %s: %w", path, err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("command %s: not an executable file", path)
	}
	return nil
}

// credential looks up name (a user name or numeric uid) for
// SysProcAttr.Credential; empty name means "as the plugin runs".
func credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return nil, fmt.Errorf("look up user %q: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}
