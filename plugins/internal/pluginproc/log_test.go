package pluginproc

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// TestHCLoggerMapsLevels: what go-plugin logs through the adapter lands in
// slog at the matching level, with its arguments (hclog.Fmt formatted).
func TestHCLoggerMapsLevels(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := NewHCLogger(logger, "mem").With("plugin_pid", 7)
	h.Trace("trace line")
	h.Debug("debug line")
	h.Info("info line", "port", hclog.Fmt("%d/%s", 8080, "tcp"))
	h.Warn("warn line")
	h.Error("error line")
	h.StandardLogger(nil).Print("stdlib line")

	type line struct {
		Level, Msg, Port string
		PluginPID        int `json:"plugin_pid"`
	}
	var got []line
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	want := []line{
		{"DEBUG", "trace line", "", 7}, {"DEBUG", "debug line", "", 7}, {"INFO", "info line", "8080/tcp", 7},
		{"WARN", "warn line", "", 7}, {"ERROR", "error line", "", 7}, {"INFO", "stdlib line", "", 7},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged lines (-want +got):\n%s", diff)
	}
	if h.Name() != "mem" || h.Named("sub").Name() != "mem.sub" {
		t.Errorf("names %q, %q", h.Name(), h.Named("sub").Name())
	}
}

func TestPluginLoggerWritesHCLogJSON(t *testing.T) {
	var buf bytes.Buffer
	NewPluginLogger(&buf, slog.LevelInfo).Warn("slow", "alloc_id", "a1")
	NewPluginLogger(&buf, slog.LevelInfo).Debug("dropped below the level")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not exactly one JSON line: %v (%q)", err, buf.String())
	}
	if _, err := time.Parse(HCLogTimeFormat, line["@timestamp"].(string)); err != nil {
		t.Errorf("@timestamp: %v", err)
	}
	delete(line, "@timestamp")
	if diff := cmp.Diff(map[string]any{"@level": "warn", "@message": "slow", "alloc_id": "a1"}, line); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}
