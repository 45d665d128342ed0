// Package logs writes JSON logs: one object per line, with time, level, logger and message.
package logs

import (
	"io"
	"log/slog"
)

const (
	// LoggerKey is the field that names the part of the job that logged the record.
	LoggerKey = "logger"
	// MessageKey is the field of the message (slog calls it "msg").
	MessageKey = "message"
	// TimeFormat is RFC 3339 in UTC with milliseconds.
	TimeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// NewHandler returns a handler that writes each record at level or above to w as one JSON
// object per line. Give it a name with Named before logging through it.
func NewHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replace})
}

// Named returns a logger whose records carry name in the "logger" field, e.g. "main" or
// "http.access".
func Named(handler slog.Handler, name string) *slog.Logger {
	return slog.New(handler.WithAttrs([]slog.Attr{slog.String(LoggerKey, name)}))
}

// replace renames slog's "msg" to "message" and writes the time in UTC.
func replace(groups []string, attr slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return attr
	}
	switch {
	case attr.Key == slog.MessageKey:
		attr.Key = MessageKey
	case attr.Key == slog.TimeKey && attr.Value.Kind() == slog.KindTime:
		attr.Value = slog.StringValue(attr.Value.Time().UTC().Format(TimeFormat))
	}
	return attr
}
