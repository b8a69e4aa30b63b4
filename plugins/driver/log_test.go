package driver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPluginLoggerWritesHCLogJSON checks the keys and formats go-plugin
// parses from a plugin's stderr to re-log lines at their level.
func TestPluginLoggerWritesHCLogJSON(t *testing.T) {
	var buf bytes.Buffer
	logger := NewPluginLogger(&buf, slog.LevelDebug)
	logger.Debug("pulling image", "image", "nginx")
	logger.Warn("slow pull", slog.Group("registry", "host", "docker.io"))
	logger.Error("pull failed")

	dec := json.NewDecoder(&buf)
	var levels, messages []string
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("not one JSON object per line: %v", err)
		}
		ts, _ := line["@timestamp"].(string)
		if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
			t.Errorf("@timestamp %q: %v", ts, err)
		}
		levels = append(levels, line["@level"].(string))
		messages = append(messages, line["@message"].(string))
		if line["@message"] == "pulling image" && line["image"] != "nginx" {
			t.Errorf("attribute lost: %v", line)
		}
	}
	if diff := cmp.Diff([]string{"debug", "warn", "error"}, levels); diff != "" {
		t.Errorf("levels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pulling image", "slow pull", "pull failed"}, messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}
