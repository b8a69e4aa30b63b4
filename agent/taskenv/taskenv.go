// Package taskenv builds a task's environment the way Nomad does: the
// NOMAD_* variables (each also as BERTH_*), the node's attributes for
// interpolation, and the task's own env block interpolated against them.
package taskenv

import (
	"maps"
	"net"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// Builder collects what a task's environment is made of. Its setters return
// the Builder so calls chain; Build takes a snapshot.
type Builder struct {
	node   *structs.Node
	alloc  *structs.Allocation
	task   *structs.Task
	region string

	allocDir, localDir, secretsDir string

	hostEnv     map[string]string
	templateEnv map[string]string
	allocIP     string
}

// NewBuilder starts an environment for task of alloc on node. Any of them
// may be nil (tests, partial information); their variables are then left
// out.
func NewBuilder(node *structs.Node, alloc *structs.Allocation, task *structs.Task, region string) *Builder {
	return &Builder{node: node, alloc: alloc, task: task, region: region}
}

// SetDirs sets the alloc, local and secrets directories as the task sees
// them: "/alloc", "/local", "/secrets" inside containers and chroots, host
// paths for raw_exec.
func (b *Builder) SetDirs(allocDir, localDir, secretsDir string) *Builder {
	b.allocDir, b.localDir, b.secretsDir = allocDir, localDir, secretsDir
	return b
}

// SetHostEnv passes the agent's own environment through underneath
// everything else: only for drivers without isolation (raw_exec).
func (b *Builder) SetHostEnv(env map[string]string) *Builder {
	b.hostEnv = maps.Clone(env)
	return b
}

// SetTemplateEnv adds variables rendered by templates with envvars = true;
// as in Nomad they override the task's env block.
func (b *Builder) SetTemplateEnv(env map[string]string) *Builder {
	b.templateEnv = maps.Clone(env)
	return b
}

// SetAllocIP sets the allocation's own address in its network namespace
// (bridge mode), used for NOMAD_ALLOC_IP_<label> and NOMAD_ALLOC_ADDR_<label>.
func (b *Builder) SetAllocIP(ip string) *Builder {
	b.allocIP = ip
	return b
}

// Env is a built environment: the task's final variables and the values
// interpolation can use.
type Env struct {
	// vars is what the task gets.
	vars map[string]string
	// lookup is vars plus the node's attr.*, meta.* and node.* values.
	lookup map[string]string
}

// Build computes the environment.
func (b *Builder) Build() *Env {
	nomad := b.nomadVars()
	nodeVals := b.nodeValues()

	vars := make(map[string]string, len(b.hostEnv)+2*len(nomad)+8)
	maps.Copy(vars, b.hostEnv)
	for k, v := range nomad {
		vars[k] = v
		vars["BERTH_"+strings.TrimPrefix(k, "NOMAD_")] = v
	}

	// The env block is interpolated against the NOMAD_* variables, node
	// values and host env; it may override any of them, as in Nomad.
	base := make(map[string]string, len(vars)+len(nodeVals))
	maps.Copy(base, vars)
	maps.Copy(base, nodeVals)
	if b.task != nil {
		for k, v := range b.task.Env {
			vars[k] = replace(v, base)
		}
	}
	maps.Copy(vars, b.templateEnv)

	lookup := make(map[string]string, len(vars)+len(nodeVals))
	maps.Copy(lookup, vars)
	maps.Copy(lookup, nodeVals)
	return &Env{vars: vars, lookup: lookup}
}

// Map returns a copy of the task's environment variables.
func (e *Env) Map() map[string]string { return maps.Clone(e.vars) }

// Slice returns the variables as KEY=VALUE strings (order unspecified).
func (e *Env) Slice() []string {
	out := make([]string, 0, len(e.vars))
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

// Var returns one of the task's variables.
func (e *Env) Var(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// Lookup returns one value known to interpolation: a variable, or
// attr.*, meta.*, node.* of the node.
func (e *Env) Lookup(key string) (string, bool) {
	v, ok := e.lookup[key]
	return v, ok
}

// ReplaceEnv interpolates every ${key} in s whose key is known (a task
// variable, attr.<name>, meta.<name>, node.unique.id, node.unique.name,
// node.datacenter, node.class, node.pool, node.region). Unknown references
// are left as they are.
func (e *Env) ReplaceEnv(s string) string { return replace(s, e.lookup) }

// ReplaceConfig returns a deep copy of cfg with every string in it
// interpolated: map values, slice items, nested maps and slices.
func (e *Env) ReplaceConfig(cfg map[string]any) map[string]any {
	if cfg == nil {
		return nil
	}
	out, _ := e.replaceValue(cfg).(map[string]any)
	return out
}

func (e *Env) replaceValue(v any) any {
	switch x := v.(type) {
	case string:
		return e.ReplaceEnv(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = e.replaceValue(val)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, val := range x {
			s[i] = e.replaceValue(val)
		}
		return s
	case []map[string]any:
		s := make([]map[string]any, len(x))
		for i, val := range x {
			s[i], _ = e.replaceValue(val).(map[string]any)
		}
		return s
	case map[string]string:
		m := make(map[string]string, len(x))
		for k, val := range x {
			m[k] = e.ReplaceEnv(val)
		}
		return m
	case []string:
		s := make([]string, len(x))
		for i, val := range x {
			s[i] = e.ReplaceEnv(val)
		}
		return s
	default:
		// Numbers, bools, nil: immutable values, shared as they are.
		return v
	}
}

// replace substitutes ${key} references found in vals.
func replace(s string, vals map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		key := strings.TrimSpace(s[i+2 : i+2+j])
		b.WriteString(s[:i])
		if v, ok := vals[key]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+3+j])
		}
		s = s[i+3+j:]
	}
}

// nodeValues are the node's values interpolation knows, as Nomad names them.
func (b *Builder) nodeValues() map[string]string {
	m := map[string]string{}
	if b.region != "" {
		m["node.region"] = b.region
	}
	n := b.node
	if n == nil {
		return m
	}
	m["node.unique.id"] = n.ID
	m["node.unique.name"] = n.Name
	m["node.datacenter"] = n.Datacenter
	m["node.class"] = n.NodeClass
	m["node.pool"] = n.NodePool
	for k, v := range n.Attributes {
		m["attr."+k] = v
	}
	for k, v := range n.Meta {
		m["meta."+k] = v
	}
	return m
}

// CleanEnvVar replaces every character that is not a letter, digit or
// underscore by '_', so a label or meta key can be part of a variable name.
func CleanEnvVar(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// addLabeled sets prefix+label and, when the label is not a valid variable
// name, prefix+CleanEnvVar(label) too.
func addLabeled(m map[string]string, prefix, label, value string) {
	m[prefix+label] = value
	if c := CleanEnvVar(label); c != label {
		m[prefix+c] = value
	}
}

func hostPort(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}
