package pluginproc

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// HCLogTimeFormat is the @timestamp layout go-plugin parses.
const HCLogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewPluginLogger returns the logger a plugin process logs with: one
// hclog-style JSON object per line ("@level", "@message", "@timestamp" and
// the attributes) on w, normally os.Stderr, which go-plugin in the agent
// reads and re-logs at the same level.
func NewPluginLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(HCLogTimeFormat))
			case slog.LevelKey:
				return slog.String("@level", hclogLevelName(a.Value.Any()))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			}
			return a
		},
	}))
}

func hclogLevelName(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return "info"
	}
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// slogHCLog is the hclog.Logger go-plugin wants, writing through slog.
type slogHCLog struct {
	logger *slog.Logger
	name   string
	args   []any
}

// NewHCLogger returns an hclog.Logger (what go-plugin logs through) that
// writes to logger; name is the hclog name.
func NewHCLogger(logger *slog.Logger, name string) hclog.Logger {
	return &slogHCLog{logger: logger, name: name}
}

func (h *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	sl := slog.LevelInfo
	switch level {
	case hclog.Trace, hclog.Debug:
		sl = slog.LevelDebug
	case hclog.Warn:
		sl = slog.LevelWarn
	case hclog.Error:
		sl = slog.LevelError
	}
	if !h.logger.Enabled(context.Background(), sl) {
		return
	}
	for i, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	h.logger.Log(context.Background(), sl, msg, args...)
}

func (h *slogHCLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHCLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHCLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHCLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHCLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *slogHCLog) enabled(l slog.Level) bool     { return h.logger.Enabled(context.Background(), l) }
func (h *slogHCLog) IsTrace() bool                 { return false }
func (h *slogHCLog) IsDebug() bool                 { return h.enabled(slog.LevelDebug) }
func (h *slogHCLog) IsInfo() bool                  { return h.enabled(slog.LevelInfo) }
func (h *slogHCLog) IsWarn() bool                  { return h.enabled(slog.LevelWarn) }
func (h *slogHCLog) IsError() bool                 { return h.enabled(slog.LevelError) }
func (h *slogHCLog) ImpliedArgs() []any            { return h.args }
func (h *slogHCLog) Name() string                  { return h.name }
func (h *slogHCLog) SetLevel(hclog.Level)          {}

func (h *slogHCLog) With(args ...any) hclog.Logger {
	return &slogHCLog{logger: h.logger.With(args...), name: h.name, args: append(append([]any(nil), h.args...), args...)}
}

func (h *slogHCLog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *slogHCLog) ResetNamed(name string) hclog.Logger {
	return &slogHCLog{logger: h.logger, name: name, args: h.args}
}

func (h *slogHCLog) GetLevel() hclog.Level {
	if h.IsDebug() {
		return hclog.Debug
	}
	return hclog.Info
}

func (h *slogHCLog) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(nil), "", 0)
}

func (h *slogHCLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return lineWriter{h}
}

// lineWriter logs each write as one Info line.
type lineWriter struct{ h *slogHCLog }

func (w lineWriter) Write(p []byte) (int, error) {
	w.h.Info(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
