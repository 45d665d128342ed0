package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// environment is a lookupEnv over a map, as os.LookupEnv is over the process's environment.
func environment(variables map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		value, ok := variables[name]
		return value, ok
	}
}

func TestDefaultsApplyWhenNothingIsSet(t *testing.T) {
	settings, err := FromEnv(environment(nil))
	if err != nil {
		t.Fatal(err)
	}

	want := Settings{Port: 8080, LogLevel: slog.LevelInfo, ShutdownTimeout: 20 * time.Second}
	if settings != want {
		t.Errorf("settings = %+v, want %+v", settings, want)
	}
}

func TestEnvironmentOverridesDefaults(t *testing.T) {
	settings, err := FromEnv(environment(map[string]string{
		"PORT": "9000", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "2.5",
	}))
	if err != nil {
		t.Fatal(err)
	}

	want := Settings{Port: 9000, LogLevel: slog.LevelDebug, ShutdownTimeout: 2500 * time.Millisecond}
	if settings != want {
		t.Errorf("settings = %+v, want %+v", settings, want)
	}
}

func TestInvalidValuesAreRefusedByName(t *testing.T) {
	cases := []struct{ name, value string }{
		{"PORT", ""},
		{"PORT", "0"},
		{"PORT", "-1"},
		{"PORT", "+80"},
		{"PORT", "65536"},
		{"PORT", "eighty"},
		{"LOG_LEVEL", "LOUD"},
		{"SHUTDOWN_TIMEOUT", "-1"},
		{"SHUTDOWN_TIMEOUT", "nan"},
		{"SHUTDOWN_TIMEOUT", "inf"},
		{"SHUTDOWN_TIMEOUT", "1e30"},
		{"SHUTDOWN_TIMEOUT", "soon"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			_, err := FromEnv(environment(map[string]string{c.name: c.value}))

			if err == nil || !strings.HasPrefix(err.Error(), c.name+" must be") {
				t.Errorf("error = %v, want one about %s", err, c.name)
			}
		})
	}
}

func TestEveryInvalidValueIsReported(t *testing.T) {
	_, err := FromEnv(environment(map[string]string{"PORT": "x", "SHUTDOWN_TIMEOUT": "y"}))

	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"PORT", "SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
