// Package config reads the settings of the service from the environment, once, at start-up.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Settings of the service. FromEnv reads them from PORT, LOG_LEVEL and SHUTDOWN_TIMEOUT.
type Settings struct {
	// Port to listen on, on every interface, so that Kubernetes reaches the pod.
	Port int
	// LogLevel is the lowest level that is logged.
	LogLevel slog.Level
	// ShutdownTimeout is how long in-flight requests may take to finish after SIGTERM. Keep it
	// below the pod's terminationGracePeriodSeconds, so that the kubelet never sends SIGKILL.
	ShutdownTimeout time.Duration
}

// Defaults are the settings of the variables that are not set.
func Defaults() Settings {
	return Settings{Port: 8080, LogLevel: slog.LevelInfo, ShutdownTimeout: 20 * time.Second}
}

const maxPort = 65535

// FromEnv reads the settings through lookupEnv (os.LookupEnv in the service). Variables that are
// not set keep their defaults; the error names every variable whose value is invalid.
func FromEnv(lookupEnv func(string) (string, bool)) (Settings, error) {
	settings := Defaults()
	var problems []error
	if value, ok := lookupEnv("PORT"); ok {
		port, err := parsePort(value)
		problems = append(problems, err)
		settings.Port = port
	}
	if value, ok := lookupEnv("LOG_LEVEL"); ok {
		level, err := parseLevel(value)
		problems = append(problems, err)
		settings.LogLevel = level
	}
	if value, ok := lookupEnv("SHUTDOWN_TIMEOUT"); ok {
		timeout, err := parseSeconds(value)
		problems = append(problems, err)
		settings.ShutdownTimeout = timeout
	}
	if err := errors.Join(problems...); err != nil {
		return Settings{}, err
	}
	return settings, nil
}

func parsePort(value string) (int, error) {
	// ParseUint takes digits only: no sign, no spaces.
	port, err := strconv.ParseUint(value, 10, 16)
	if err != nil || port == 0 {
		return 0, fmt.Errorf("PORT must be a number from 1 to %d, got %q", maxPort, value)
	}
	return int(port), nil
}

func parseLevel(value string) (slog.Level, error) {
	var level slog.Level
	// Level names as slog prints them, in any case; "INFO+2" style offsets work too.
	if err := level.UnmarshalText([]byte(strings.TrimSpace(value))); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be DEBUG, INFO, WARN or ERROR, got %q", value)
	}
	return level, nil
}

func parseSeconds(value string) (time.Duration, error) {
	seconds, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	// The comparisons are false for NaN, and infinity is out of range.
	if err != nil || !(seconds >= 0 && seconds*float64(time.Second) < math.MaxInt64) {
		return 0, fmt.Errorf("SHUTDOWN_TIMEOUT must be a number of seconds >= 0, got %q", value)
	}
	return time.Duration(seconds * float64(time.Second)), nil
}
