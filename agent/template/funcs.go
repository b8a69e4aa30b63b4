package template

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/berth-dev/berth/agent/taskenv"
)

// funcs returns the template functions: env and file, pure helpers from
// consul-template, and stubs for the data sources berth lacks.
// file reads go through tr, which records them as the render's Deps.
func funcs(taskDir string, env *taskenv.Env, errMissing bool, tr *tracker) template.FuncMap {
	m := template.FuncMap{
		"env": func(name string) (string, error) {
			if env != nil {
				if v, ok := env.Var(name); ok {
					return v, nil
				}
			}
			if errMissing {
				return "", fmt.Errorf("%w: %s", ErrMissingEnv, name)
			}
			return "", nil
		},
		"file": func(p string) (string, error) {
			full, err := resolve(taskDir, env, p)
			if err != nil {
				return "", fmt.Errorf("file %q: %w", p, err)
			}
			data, err := tr.readInside(taskDir, full)
			if err != nil {
				return "", fmt.Errorf("file %q: %w", p, err)
			}
			return string(data), nil
		},
		"toUpper":    strings.ToUpper,
		"toLower":    strings.ToLower,
		"toTitle":    strings.ToTitle,
		"trimSpace":  strings.TrimSpace,
		"trim":       func(cut, s string) string { return strings.Trim(s, cut) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"split":      func(sep, s string) []string { return strings.Split(s, sep) },
		"join":       func(sep string, parts []string) string { return strings.Join(parts, sep) },
		"replaceAll": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"parseInt":   func(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) },
		"parseUint":  func(s string) (uint64, error) { return strconv.ParseUint(strings.TrimSpace(s), 10, 64) },
		"parseFloat": func(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) },
		"parseBool":  func(s string) (bool, error) { return strconv.ParseBool(strings.TrimSpace(s)) },
		"parseJSON": func(s string) (any, error) {
			var v any
			err := json.Unmarshal([]byte(s), &v)
			return v, err
		},
		"base64Encode": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"base64Decode": func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			return string(b), err
		},
		"base64URLEncode": func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) },
		"base64URLDecode": func(s string) (string, error) {
			b, err := base64.URLEncoding.DecodeString(s)
			return string(b), err
		},
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"toJSONPretty": func(v any) (string, error) {
			b, err := json.MarshalIndent(v, "", "  ")
			return string(b), err
		},
		"sockaddr": unsupported("sockaddr"),
	}
	for _, name := range []string{
		"key", "keyOrDefault", "keyExists", "ls", "safeLs", "tree", "safeTree",
		"service", "services", "connect", "caRoot", "caLeaf", "node", "nodes",
		"secret", "secrets", "pkiCert",
		"nomadVar", "nomadVarList", "nomadVarListSafe", "nomadVarExists",
		"nomadService", "nomadServices",
	} {
		m[name] = unsupported(name)
	}
	return m
}

func unsupported(name string) func(...any) (string, error) {
	return func(...any) (string, error) {
		return "", fmt.Errorf("%s: %w", name, ErrNotSupported)
	}
}
